/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * shimmerd's log output: one timestamped line each on stderr, or the
 * journal with its structured fields when stderr is connected to it.
 */

/* Writes "TIMESTAMP PREFIXMESSAGE" to stderr (UTC, milliseconds). */
void shimmer_log_line(const char *prefix, const char *message);

/* From now on shimmer_log_line() gathers lines and writes them together
 * when CONTEXT's loop is about to wait (or 16 KiB have gathered, or a
 * line has a prefix: warnings and errors go out at once): a server
 * taking a crowd of clients logs a few lines each, and a write per line
 * was a system call per line. Any thread may log meanwhile. */
void shimmer_log_batch_start(GMainContext *context);
/* Writes what waits and goes back to a write per line. */
void shimmer_log_batch_stop(void);

/* Sends GLib's structured log through the journal (stderr connected to
 * it) or shimmer_log_line(); debug lines only when VERBOSE. A field
 * SHIMMER_LEVEL "error" marks an error that GLib would call a warning. */
void shimmer_log_use_writer(gboolean verbose);

/* Logs MESSAGE (LEVEL, a ShimmerLogLevel) of one session or server to
 * the daemon's log: "WHAT ID (PROFILE): MESSAGE" with the structured fields
 * FIELD (e.g. SHIMMER_SESSION) = ID, SHIMMER_PROFILE, SHIMMER_OWNER_UID and
 * SHIMMER_LEVEL (which keeps errors apart from warnings: GLib has no
 * non-fatal error level). INFO_LEVEL is the GLib level of info lines.
 * Returns MESSAGE made valid UTF-8 (peers' text may be anything; D-Bus
 * strings must be UTF-8), for the listeners. */
char *shimmer_log_object(const char *what, const char *field, const char *id, const char *profile,
                         guint owner, int level, GLogLevelFlags info_level, const char *message);

G_END_DECLS
