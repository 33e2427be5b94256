/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What shimmerctl prints: values of the daemon's properties for people and
 * as JSON.
 */

#include <gio/gio.h>
#include <glib.h>
#include <stdio.h>

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

/*
 * Everything shimmerctl prints for people goes through the functions below,
 * because much of it comes from elsewhere: profile names, challenge texts
 * and directives from a profile file, AUTH_FAILED reasons, challenges and
 * log lines from a server, objects of other users. Such text could drive
 * the terminal instead of being read. Escaped as visible text are:
 *   - C0 control characters and DEL: \n \r \t, else \xNN (ESC is \x1b);
 *   - C1 control characters U+0080..U+009F (U+009B is a CSI): \u00NN;
 *   - the bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E,
 *     U+2066..U+2069) and the line and paragraph separators U+2028,
 *     U+2029: \uNNNN;
 *   - bytes that are not UTF-8: \xNN.
 * A backslash is left as it is: the escapes are for reading, not for
 * parsing back (--json is for programs).
 */

/* The one escaper: appends TEXT (LEN bytes; -1: up to its NUL) to OUT.
 * KEEP_NEWLINES: '\n' is copied as is, for a block of lines the caller
 * means as lines; otherwise it is escaped too. */
void ctl_escape_append(GString *out, const char *text, gssize len, gboolean keep_newlines);
/* TEXT escaped on one line, newly allocated. */
char *ctl_escape(const char *text);

/* Prints FORMAT (shimmerctl's own text) with its arguments on STREAM, all
 * of it escaped except a final newline: an argument cannot end the line,
 * start another or send the terminal a command. */
void ctl_print(FILE *stream, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Prints TEXT, a block of lines (diagnostics, error messages that list
 * them, indented JSON), escaped except for its newlines. */
void ctl_print_lines(FILE *stream, const char *text);

/* "LABEL           VALUE" on standard output. */
void ctl_print_field(const char *label, const char *value);

G_END_DECLS
