/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What shimmerctl prints: values of the daemon's properties for people and
 * as JSON.
 */

#include <gio/gio.h>
#include <glib.h>

G_BEGIN_DECLS

/* Opens a JSON object with "Path" and every property cached in PROXY, in
 * name order; the caller adds members and the closing brace. Strings go
 * through libshimmer's shimmer_json_append_string(). */
void ctl_json_open_object(GString *out, GDBusProxy *proxy);
/* Re-indents compact JSON for reading (strings are kept as they are). */
void ctl_json_pretty(GString *out, const char *json);

/* A property value for people: strings bare, lists joined, "-" for nothing. */
char *ctl_format_value(GVariant *v);
/* The strings joined with ", ", or "-". */
char *ctl_format_strv(const char *const *strv);
/* S, or "-" when it is NULL or empty. */
const char *ctl_or_dash(const char *s);
/* "UID (NAME)", or "UID" when the user has no name here. */
char *ctl_format_owner(guint uid);
/* Local time, or "-" for 0. */
char *ctl_format_time(guint64 unix_time);
char *ctl_format_duration(guint64 seconds);
/* "1.2 kB/s"; "-" for a negative rate (unknown). */
char *ctl_format_rate(double bytes_per_s);

/* The session states of Session1.State, for people. */
const char *ctl_state_label(const char *state);
/* disconnected or failed: the session will not change any more. */
gboolean ctl_state_is_final(const char *state);

/* "LABEL           VALUE" on standard output. */
void ctl_print_field(const char *label, const char *value);

G_END_DECLS
