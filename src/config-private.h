/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

/* What the parser keeps for config-output.c, not part of the typed result. */
typedef struct ShimmerConfigPrivate {
    /* line -> replacement text for --inline output (file references). */
    GHashTable *replacements;
    /* names given to ignore-unknown-option */
    GHashTable *ignore_unknown;
    /* the original text (may hold inline secrets: wiped on free) */
    char *source;
    gsize source_len;
    /* why --inline output cannot be made, or NULL */
    char *inline_error;
} ShimmerConfigPrivate;
