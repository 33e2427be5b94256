/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Answers asked of the person at the terminal (user names, passwords,
 * challenge responses), or read one per line from standard input when it
 * is not a terminal.
 */

#include <glib.h>

G_BEGIN_DECLS

/* Reads one line: from the terminal after showing LABEL (without echo
 * unless ECHO; LABEL is shown escaped, see output.h), or from standard
 * input when it is not a terminal. Ctrl-Z stops shimmerctl with echo back
 * on, and asks again once it is resumed. Returns
 * NULL at end of input or when interrupted (see ctl_prompt_interrupted()).
 * The caller frees the result with shimmer_str_free_secret(). */
char *ctl_prompt_line(const char *label, gboolean echo);

/* TRUE when a signal ended the last ctl_prompt_line(): Ctrl-C, Ctrl-\,
 * SIGTERM or SIGHUP (the terminal is as it was before, echo included). */
gboolean ctl_prompt_interrupted(void);

G_END_DECLS
