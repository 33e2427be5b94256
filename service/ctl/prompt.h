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
 * unless ECHO), or from standard input when it is not a terminal. Returns
 * NULL at end of input or when interrupted (see ctl_prompt_interrupted()).
 * The caller frees the result with shimmer_str_free_secret(). */
char *ctl_prompt_line(const char *label, gboolean echo);

/* TRUE when the last ctl_prompt_line() ended with Ctrl-C. */
gboolean ctl_prompt_interrupted(void);

G_END_DECLS
