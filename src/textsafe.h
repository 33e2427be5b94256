/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Text from outside (a profile, a server, another user's object) shown to
 * people: the characters a terminal or a text renderer acts on instead of
 * showing, and one escaper that shows them instead. Used by shimmerctl's
 * output, shimmerd's log lines, the JSON writer and the check on names.
 */

/* C0 and C1 controls, DEL, bidirectional-text controls (U+061C, U+200E,
 * U+200F, U+202A..U+202E, U+2066..U+2069) and the line and paragraph
 * separators U+2028/U+2029. */
gboolean shimmer_text_is_control(gunichar u);
/* Only the bidirectional-text controls among them. */
gboolean shimmer_text_is_bidi_control(gunichar u);

/* Appends LEN bytes of TEXT (-1: up to its NUL) to OUT with every control
 * shown as an escape: "\n", "\r", "\t", "\xNN" for other C0 controls, DEL
 * and bytes that are not UTF-8, "\uNNNN" for the others. A newline stays a
 * newline with KEEP_NEWLINES. Everything else is copied as it is. */
void shimmer_text_append_escaped(GString *out, const char *text, gssize len,
                                 gboolean keep_newlines);

G_END_DECLS
