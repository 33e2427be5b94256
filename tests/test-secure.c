/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for secure.h: the secret byte buffer and the wiping cleanup of
 * secret strings. Whether freed blocks were wiped cannot be seen from here
 * (GLib has no allocator hook any more); what can be seen is that the
 * contents survive growth and consumption intact, that the limit holds,
 * and that every path frees what it allocated (ASan and LeakSanitizer in
 * the sanitizer build).
 */
#include <string.h>

#include "secure.h"

static void test_buf_grow(void)
{
    g_auto(ShimmerSecretBuf) b;
    shimmer_secret_buf_init(&b, 0, 100000);
    g_assert_null(b.data);
    g_assert_cmpuint(b.len, ==, 0);
    /* Many small appends: the buffer grows several times and keeps every
     * byte in order, NUL-terminated after the last. */
    guint8 expect[5000];
    for (guint i = 0; i < sizeof(expect); i++) {
        guint8 c = (guint8)(i * 7 + 1);
        expect[i] = c;
        g_assert_true(shimmer_secret_buf_append(&b, &c, 1));
    }
    g_assert_cmpmem(b.data, b.len, expect, sizeof(expect));
    g_assert_cmpuint(b.data[b.len], ==, 0);
    g_assert_cmpuint(b.cap, >, b.len);
    g_assert_cmpuint(b.cap, <=, 2 * (b.len + 1));
}

static void test_buf_limit(void)
{
    g_auto(ShimmerSecretBuf) b;
    shimmer_secret_buf_init(&b, 4, 10);
    g_assert_nonnull(b.data);
    g_assert_cmpuint(b.cap, ==, 5);
    g_assert_true(shimmer_secret_buf_append(&b, "0123456", 7));
    /* Past the limit: refused, nothing changes. */
    g_assert_false(shimmer_secret_buf_append(&b, "7890", 4));
    g_assert_cmpuint(b.len, ==, 7);
    g_assert_cmpstr((const char *)b.data, ==, "0123456");
    /* Up to the limit exactly: fine, and never more room than limit + 1. */
    g_assert_true(shimmer_secret_buf_append(&b, "789", 3));
    g_assert_cmpuint(b.len, ==, 10);
    g_assert_cmpuint(b.cap, ==, 11);
    g_assert_cmpstr((const char *)b.data, ==, "0123456789");
    g_assert_false(shimmer_secret_buf_append(&b, "x", 1));
    g_assert_true(shimmer_secret_buf_append(&b, "", 0));
}

/* Sized once, filled exactly: the key-method record's pattern. */
static void test_buf_presized(void)
{
    g_auto(ShimmerSecretBuf) b;
    shimmer_secret_buf_init(&b, 6, 6);
    guint8 *block = b.data;
    g_assert_true(shimmer_secret_buf_append_be16(&b, 0x0102));
    g_assert_true(shimmer_secret_buf_append(&b, "abcd", 4));
    g_assert_true(b.data == block); /* no reallocation */
    static const guint8 want[] = {1, 2, 'a', 'b', 'c', 'd'};
    g_assert_cmpmem(b.data, b.len, want, sizeof(want));
    g_assert_false(shimmer_secret_buf_append_be16(&b, 0));
}

static void test_buf_consume(void)
{
    g_auto(ShimmerSecretBuf) b;
    shimmer_secret_buf_init(&b, 0, 64);
    shimmer_secret_buf_consume(&b, 3); /* empty and unallocated: nothing */
    g_assert_true(shimmer_secret_buf_append(&b, "first\0second\0rest", 17));
    shimmer_secret_buf_consume(&b, 6);
    g_assert_cmpuint(b.len, ==, 11);
    g_assert_cmpstr((const char *)b.data, ==, "second");
    /* The vacated tail is zero, not a stale copy of what moved. */
    for (gsize i = b.len + 1; i < 17; i++)
        g_assert_cmpuint(b.data[i], ==, 0);
    shimmer_secret_buf_consume(&b, 100);
    g_assert_cmpuint(b.len, ==, 0);
    g_assert_cmpuint(b.data[0], ==, 0);
    /* Reset wipes but keeps the block; clear frees; both leave it usable. */
    g_assert_true(shimmer_secret_buf_append(&b, "token", 5));
    guint8 *block = b.data;
    gsize cap = b.cap;
    shimmer_secret_buf_reset(&b);
    g_assert_true(b.data == block);
    g_assert_cmpuint(b.len, ==, 0);
    for (gsize i = 0; i < cap; i++)
        g_assert_cmpuint(b.data[i], ==, 0);
    shimmer_secret_buf_clear(&b);
    g_assert_null(b.data);
    g_assert_cmpuint(b.cap, ==, 0);
    g_assert_true(shimmer_secret_buf_append(&b, "again", 5));
    g_assert_cmpstr((const char *)b.data, ==, "again");
}

static gboolean take_secret_early(const char *text, gboolean bail)
{
    g_auto(ShimmerSecretStr) s = g_strdup(text);
    if (bail)
        return FALSE; /* the cleanup wipes and frees here too */
    return strcmp(s, text) == 0;
}

static void test_secret_str(void)
{
    g_assert_true(take_secret_early("password", FALSE));
    g_assert_false(take_secret_early("password", TRUE));
    g_auto(ShimmerSecretStr) none = NULL;
    g_assert_null(none);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/secure/buf/grow", test_buf_grow);
    g_test_add_func("/secure/buf/limit", test_buf_limit);
    g_test_add_func("/secure/buf/presized", test_buf_presized);
    g_test_add_func("/secure/buf/consume", test_buf_consume);
    g_test_add_func("/secure/secret-str", test_secret_str);
    return g_test_run();
}
