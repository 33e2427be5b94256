/* SPDX-License-Identifier: MIT */
#include "secure.h"

#include <string.h>

void shimmer_wipe(void *p, gsize len)
{
    if (p != NULL && len > 0)
        explicit_bzero(p, len);
}

void shimmer_str_free_secret(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    g_free(s);
}

void shimmer_free_secret(void *p, gsize len)
{
    if (p == NULL)
        return;
    shimmer_wipe(p, len);
    g_free(p);
}

char *shimmer_memdup0(const void *p, gsize len)
{
    char *r = g_malloc(len + 1);
    if (len > 0)
        memcpy(r, p, len);
    r[len] = '\0';
    return r;
}

void shimmer_secret_buf_init(ShimmerSecretBuf *b, gsize reserve, gsize limit)
{
    *b = (ShimmerSecretBuf){.limit = limit};
    if (reserve > 0) {
        b->cap = MIN(reserve, limit) + 1;
        b->data = g_malloc0(b->cap);
    }
}

/* Room for NEED bytes and the NUL; NEED is within the limit. */
static void secret_buf_grow(ShimmerSecretBuf *b, gsize need)
{
    if (need + 1 <= b->cap)
        return;
    gsize cap = MAX(b->cap, 64);
    while (cap < need + 1)
        cap *= 2;
    cap = MIN(cap, b->limit + 1);
    guint8 *data = g_malloc0(cap);
    if (b->len > 0)
        memcpy(data, b->data, b->len);
    shimmer_free_secret(b->data, b->cap);
    b->data = data;
    b->cap = cap;
}

gboolean shimmer_secret_buf_append(ShimmerSecretBuf *b, const void *data, gsize len)
{
    if (len > b->limit - b->len)
        return FALSE;
    if (len == 0 && b->data != NULL)
        return TRUE;
    secret_buf_grow(b, b->len + len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return TRUE;
}

gboolean shimmer_secret_buf_append_be16(ShimmerSecretBuf *b, guint16 v)
{
    guint8 be[2] = {(guint8)(v >> 8), (guint8)v};
    return shimmer_secret_buf_append(b, be, sizeof(be));
}

void shimmer_secret_buf_consume(ShimmerSecretBuf *b, gsize n)
{
    if (b->data == NULL)
        return;
    n = MIN(n, b->len);
    memmove(b->data, b->data + n, b->len - n);
    shimmer_wipe(b->data + b->len - n, n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void shimmer_secret_buf_reset(ShimmerSecretBuf *b)
{
    if (b->data != NULL)
        shimmer_wipe(b->data, b->cap);
    b->len = 0;
}

void shimmer_secret_buf_clear(ShimmerSecretBuf *b)
{
    shimmer_free_secret(b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}
