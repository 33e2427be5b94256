/* SPDX-License-Identifier: MIT */
/* Unit tests of service/ctl/output.c: the one escaper shimmerctl shows
 * untrusted text through (issue 9, item 3), and the printing functions
 * around it. The end-to-end cases are in tests/dbus/test_ctl_output.py. */
#include <stdio.h>
#include <string.h>

#include "output.h"

static char *escaped(const char *text, gssize len, gboolean keep_newlines)
{
    GString *out = g_string_new(NULL);
    ctl_escape_append(out, text, len, keep_newlines);
    return g_string_free(out, FALSE);
}

static void check(const char *text, const char *want)
{
    g_autofree char *got = escaped(text, -1, FALSE);
    g_assert_cmpstr(got, ==, want);
    /* Escaped text is plain ASCII or printable UTF-8: a second pass keeps it. */
    g_autofree char *again = escaped(got, -1, FALSE);
    g_assert_cmpstr(again, ==, got);
    g_assert_true(g_utf8_validate(got, -1, NULL));
}

static void test_plain_text_unchanged(void)
{
    check("", "");
    check("work profile (10.0.0.1:1194/udp)", "work profile (10.0.0.1:1194/udp)");
    check("back\\slash", "back\\slash");
    /* Printable non-ASCII stays: names and messages in any language. */
    check("\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82", /* été 日本 🙂 */
          "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82");
    check("\xc2\xa0", "\xc2\xa0");         /* U+00A0, the first after C1 */
    check("\xe2\x80\x8b", "\xe2\x80\x8b"); /* U+200B, beside the marks */
    check("\xe2\x80\xaf", "\xe2\x80\xaf"); /* U+202F, after the embeddings */
    check("\xe2\x81\xa5", "\xe2\x81\xa5"); /* U+2065, before the isolates */
    check("\xe2\x81\xaa", "\xe2\x81\xaa"); /* U+206A, after them */
    check("\xe2\x80\xa7", "\xe2\x80\xa7"); /* U+2027, before U+2028 */
}

static void test_c0_controls(void)
{
    check("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
    check("a\tb\rc\nd", "a\\tb\\rc\\nd");
    check("\x01\x07\x08\x1f\x7f", "\\x01\\x07\\x08\\x1f\\x7f");
    /* A NUL inside a counted string. */
    g_autofree char *nul = escaped("a\0b", 3, FALSE);
    g_assert_cmpstr(nul, ==, "a\\x00b");
}

static void test_c1_controls(void)
{
    check("\xc2\x9b"
          "2J",
          "\\u009b2J"); /* CSI */
    check("\xc2\x80\xc2\x9f", "\\u0080\\u009f");
    check("\xc2\x9d"
          "0;title\xc2\x9c",
          "\\u009d0;title\\u009c"); /* OSC ... ST */
}

static void test_bidi_controls(void)
{
    static const struct {
        const char *utf8;
        const char *shown;
    } cases[] = {
        {"\xd8\x9c", "\\u061c"},     {"\xe2\x80\x8e", "\\u200e"}, {"\xe2\x80\x8f", "\\u200f"},
        {"\xe2\x80\xa8", "\\u2028"}, {"\xe2\x80\xa9", "\\u2029"}, {"\xe2\x80\xaa", "\\u202a"},
        {"\xe2\x80\xab", "\\u202b"}, {"\xe2\x80\xac", "\\u202c"}, {"\xe2\x80\xad", "\\u202d"},
        {"\xe2\x80\xae", "\\u202e"}, {"\xe2\x81\xa6", "\\u2066"}, {"\xe2\x81\xa7", "\\u2067"},
        {"\xe2\x81\xa8", "\\u2068"}, {"\xe2\x81\xa9", "\\u2069"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strdup_printf("x%sy", cases[i].utf8);
        g_autofree char *want = g_strdup_printf("x%sy", cases[i].shown);
        check(text, want);
    }
}

static void test_invalid_utf8(void)
{
    check("\x9b"
          "2J",
          "\\x9b2J"); /* a lone C1 byte */
    check("a\xff"
          "b",
          "a\\xffb");
    check("\xe2\x80", "\\xe2\\x80");                    /* cut short */
    check("\xc0\x9b", "\\xc0\\x9b");                    /* overlong ESC-ish */
    check("\xed\xa0\x80", "\\xed\\xa0\\x80");           /* a surrogate */
    check("\xe2\x80\xae\xe2\x80", "\\u202e\\xe2\\x80"); /* valid, then cut */
}

static void test_newlines_kept_for_blocks(void)
{
    g_autofree char *block = escaped("f:1: error: '\x1b]0;x\x07'\nf:2: warning: ok\n", -1, TRUE);
    g_assert_cmpstr(block, ==, "f:1: error: '\\x1b]0;x\\x07'\nf:2: warning: ok\n");
    g_autofree char *line = ctl_escape("one\ntwo");
    g_assert_cmpstr(line, ==, "one\\ntwo");
}

static char *printed(void (*print)(FILE *f, gconstpointer data), gconstpointer data)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    g_assert_nonnull(f);
    print(f, data);
    g_assert_cmpint(fclose(f), ==, 0);
    return buf;
}

static void print_reason(FILE *f, gconstpointer data)
{
    ctl_print(f, "Connection failed: %s\n", (const char *)data);
}

static void print_label(FILE *f, gconstpointer data)
{
    ctl_print(f, "%s", (const char *)data);
}

static void print_lines(FILE *f, gconstpointer data)
{
    ctl_print_lines(f, data);
}

static void test_print(void)
{
    /* A server's reason cannot end the line or start another: only the
     * format's final newline is one. */
    g_autofree char *a =
        printed(print_reason, "denied\n\x1b[2K\rConnected: everything is fine\xe2\x80\xae\n");
    g_assert_cmpstr(a, ==,
                    "Connection failed: denied\\n\\x1b[2K\\rConnected: everything is "
                    "fine\\u202e\\n\n");
    g_autofree char *b = printed(print_label, "Code \xc2\x9b"
                                              "8m: ");
    g_assert_cmpstr(b, ==, "Code \\u009b8m: ");
    g_autofree char *c = printed(print_lines, "a\x1b\nb\xc2\x85\n");
    g_assert_cmpstr(c, ==, "a\\x1b\nb\\u0085\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ctl/escape/plain-text", test_plain_text_unchanged);
    g_test_add_func("/ctl/escape/c0", test_c0_controls);
    g_test_add_func("/ctl/escape/c1", test_c1_controls);
    g_test_add_func("/ctl/escape/bidi", test_bidi_controls);
    g_test_add_func("/ctl/escape/invalid-utf8", test_invalid_utf8);
    g_test_add_func("/ctl/escape/newlines", test_newlines_kept_for_blocks);
    g_test_add_func("/ctl/print", test_print);
    return g_test_run();
}
