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
