/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Memory that holds secrets: wiped before it is released. */

/* Wipes LEN bytes at P in a way the compiler cannot elide. */
void shimmer_wipe(void *p, gsize len);

/* g_free() after wiping strlen(S) bytes; NULL is fine. */
void shimmer_str_free_secret(char *s);

/* g_free() after wiping LEN bytes; NULL is fine. */
void shimmer_free_secret(void *p, gsize len);

/* Allocates a copy of LEN bytes plus a NUL terminator. */
char *shimmer_memdup0(const void *p, gsize len);

G_END_DECLS
