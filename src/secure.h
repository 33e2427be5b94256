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

/* A string holding a secret, wiped and freed when it goes out of scope:
 *   g_auto(ShimmerSecretStr) msg = g_strndup(...);
 * Only the bytes up to the first NUL are wiped: do not shorten the string
 * in place (g_strstrip) before it is freed. */
typedef char *ShimmerSecretStr;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(ShimmerSecretStr, shimmer_str_free_secret, NULL)

/*
 * A byte buffer for secrets that never leaves a copy behind: when it grows,
 * the old block is wiped before it is freed (a GByteArray or GString frees
 * it as it is), bytes taken from its front are wiped, and clearing wipes
 * everything. It holds at most LIMIT bytes, so a peer cannot make it grow
 * without bound; and one made with shimmer_secret_buf_init(b, n, n) is
 * allocated once, at its final size.
 *
 * The bytes are followed by a NUL that is not counted in LEN, so that a
 * buffer of text can be read as a C string.
 */
typedef struct {
    guint8 *data; /* NULL until something is appended or reserved */
    gsize len;
    gsize cap;   /* allocated bytes, the NUL included */
    gsize limit; /* LEN never exceeds it */
} ShimmerSecretBuf;

/* Starts B empty, with room for RESERVE bytes allocated now (0: none yet),
 * holding at most LIMIT bytes. */
void shimmer_secret_buf_init(ShimmerSecretBuf *b, gsize reserve, gsize limit);

/* Appends LEN bytes. FALSE (and B unchanged) if that would pass the limit. */
gboolean shimmer_secret_buf_append(ShimmerSecretBuf *b, const void *data, gsize len);

/* Appends a big-endian u16. */
gboolean shimmer_secret_buf_append_be16(ShimmerSecretBuf *b, guint16 v);

/* Removes the first N bytes (all if N >= LEN), wiping the vacated tail. */
void shimmer_secret_buf_consume(ShimmerSecretBuf *b, gsize n);

/* Wipes the contents; keeps the allocation. */
void shimmer_secret_buf_reset(ShimmerSecretBuf *b);

/* Wipes and frees; B is empty afterwards (and may be used again). */
void shimmer_secret_buf_clear(ShimmerSecretBuf *b);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ShimmerSecretBuf, shimmer_secret_buf_clear)

G_END_DECLS
