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

/* Sends GLib's structured log through the journal (stderr connected to
 * it) or shimmer_log_line(); debug lines only when VERBOSE. A field
 * SHIMMER_LEVEL "error" marks an error that GLib would call a warning. */
void shimmer_log_use_writer(gboolean verbose);

G_END_DECLS
