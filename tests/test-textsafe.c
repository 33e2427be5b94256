/* SPDX-License-Identifier: MIT */
/* src/textsafe.c: which characters are controls, and how they are shown. */
#include "textsafe.h"

static char *escaped(const char *text, gssize len, gboolean keep_newlines)
{
    GString *out = g_string_new(NULL);
    shimmer_text_append_escaped(out, text, len, keep_newlines);
    return g_string_free(out, FALSE);
}

static void test_controls(void)
{
    for (gunichar u = 0; u < 0x20; u++)
        g_assert_true(shimmer_text_is_control(u));
    for (gunichar u = 0x7f; u <= 0x9f; u++)
        g_assert_true(shimmer_text_is_control(u));
    static const gunichar bidi[] = {0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c,
                                    0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069};
    for (gsize i = 0; i < G_N_ELEMENTS(bidi); i++) {
        g_assert_true(shimmer_text_is_bidi_control(bidi[i]));
        g_assert_true(shimmer_text_is_control(bidi[i]));
    }
    g_assert_true(shimmer_text_is_control(0x2028));
    g_assert_false(shimmer_text_is_bidi_control(0x2028));
    static const gunichar plain[] = {' ', 'a', '~', 0xa0, 0xe9, 0x200b, 0x2030, 0x4e2d, 0x1f600};
    for (gsize i = 0; i < G_N_ELEMENTS(plain); i++)
        g_assert_false(shimmer_text_is_control(plain[i]));
}

static void test_escaping(void)
{
    g_autofree char *a = escaped("red \x1b[31mtext\x1b[0m", -1, FALSE);
    g_assert_cmpstr(a, ==, "red \\x1b[31mtext\\x1b[0m");
    g_autofree char *b = escaped("a\nb\tc\rd\x7f", -1, FALSE);
    g_assert_cmpstr(b, ==, "a\\nb\\tc\\rd\\x7f");
    g_autofree char *c = escaped("a\nb", -1, TRUE);
    g_assert_cmpstr(c, ==, "a\nb");
    /* C1 CSI, a bidi override and a separator; café stays. */
    g_autofree char *d = escaped("\xc2\x9b"
                                 "2J \xe2\x80\xae"
                                 "gpj.exe caf\xc3\xa9\xe2\x80\xa8",
                                 -1, FALSE);
    g_assert_cmpstr(d, ==, "\\u009b2J \\u202egpj.exe caf\xc3\xa9\\u2028");
    /* Bytes that are not UTF-8, and a sequence cut short by LEN. */
    g_autofree char *e = escaped("\xff\xfe ok \xe2\x80", -1, FALSE);
    g_assert_cmpstr(e, ==, "\\xff\\xfe ok \\xe2\\x80");
    g_autofree char *f = escaped("caf\xc3\xa9", 4, FALSE);
    g_assert_cmpstr(f, ==, "caf\\xc3");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/textsafe/controls", test_controls);
    g_test_add_func("/textsafe/escaping", test_escaping);
    return g_test_run();
}
