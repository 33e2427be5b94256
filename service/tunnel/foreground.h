/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * `shimmerd --config FILE`: runs one client from FILE in the foreground
 * until SIGINT/SIGTERM (which sends the exit notification; a second one
 * stops waiting) or the end of the session. Credentials come from the
 * auth-user-pass file or are asked on the terminal without echo. Log lines
 * go to stderr (protocol details with VERBOSE).
 *
 * Returns the exit code: 0 stopped by a signal or the server, 1 the
 * session failed (authentication refused, certificate rejected, ...), 2 a
 * configuration that cannot be read or is refused.
 */
int shimmer_foreground_run(const char *file, gboolean verbose);

G_END_DECLS
