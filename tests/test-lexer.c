/* SPDX-License-Identifier: MIT */
/* Unit tests for the configuration tokenizer (src/lexer.c). */
#include <string.h>

#include <glib.h>

#include "lexer.h"

/*
 * Helpers. The input is copied into a heap buffer of exactly LEN bytes with
 * no NUL after it, so that ASan flags any read past the end.
 */

static GPtrArray *lex_n(const char *text, gsize len, guint first_line)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *copy = g_memdup2(text, len);
    guint error_line = 0;
    GPtrArray *items = shimmer_lex(copy, len, first_line, &error_line, &error);

    g_assert_no_error(error);
    g_assert_nonnull(items);
    g_assert_cmpuint(error_line, ==, 0); /* untouched on success */
    return items;
}

static GPtrArray *lex(const char *text)
{
    return lex_n(text, strlen(text), 1);
}

/* Expects TEXT to fail on line LINE with exactly the message MESSAGE. */
static void lex_fail_n(const char *text, gsize len, guint first_line, guint line,
                       const char *message)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *copy = g_memdup2(text, len);
    guint error_line = 0;
    GPtrArray *items = shimmer_lex(copy, len, first_line, &error_line, &error);

    g_assert_null(items);
    g_assert_error(error, SHIMMER_LEXER_ERROR, 0);
    g_assert_cmpstr(error->message, ==, message);
    g_assert_cmpuint(error_line, ==, line);
}

static void lex_fail(const char *text, guint line, const char *message)
{
    lex_fail_n(text, strlen(text), 1, line, message);
}

static ShimmerItem *item_at(GPtrArray *items, guint i)
{
    g_assert_cmpuint(i, <, items->len);
    return g_ptr_array_index(items, i);
}

/* Checks that item I is a directive on LINE with the NULL-terminated
 * argument list that follows. */
static void assert_directive(GPtrArray *items, guint i, guint line, ...)
{
    ShimmerItem *item = item_at(items, i);
    g_autoptr(GPtrArray) want = g_ptr_array_new();
    va_list ap;
    const char *arg;

    va_start(ap, line);
    while ((arg = va_arg(ap, const char *)) != NULL)
        g_ptr_array_add(want, (gpointer)arg);
    va_end(ap);

    g_assert_cmpint(item->kind, ==, SHIMMER_ITEM_DIRECTIVE);
    g_assert_cmpuint(item->line, ==, line);
    g_assert_cmpuint(item->end_line, ==, line);
    g_assert_null(item->block_name);
    g_assert_null(item->body);
    g_assert_cmpuint(item->argc, ==, want->len);
    g_assert_nonnull(item->argv);
    for (guint k = 0; k < want->len; k++)
        g_assert_cmpstr(item->argv[k], ==, g_ptr_array_index(want, k));
    g_assert_null(item->argv[item->argc]);
}

static void assert_block(GPtrArray *items, guint i, guint line, guint end_line, const char *name,
                         const char *body)
{
    ShimmerItem *item = item_at(items, i);

    g_assert_cmpint(item->kind, ==, SHIMMER_ITEM_BLOCK);
    g_assert_cmpuint(item->line, ==, line);
    g_assert_cmpuint(item->end_line, ==, end_line);
    g_assert_cmpstr(item->block_name, ==, name);
    g_assert_cmpstr(item->body, ==, body);
    g_assert_cmpuint(item->body_len, ==, strlen(body));
    g_assert_null(item->argv);
    g_assert_cmpuint(item->argc, ==, 0);
}

/* Tests. */

static void test_empty(void)
{
    g_autoptr(GPtrArray) a = lex("");
    g_autoptr(GPtrArray) b = lex("\n\n  \t \n\t\n");
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) c = shimmer_lex(NULL, 0, 1, NULL, &error);

    g_assert_cmpuint(a->len, ==, 0);
    g_assert_cmpuint(b->len, ==, 0);
    g_assert_no_error(error);
    g_assert_nonnull(c);
    g_assert_cmpuint(c->len, ==, 0);
}

static void test_simple(void)
{
    g_autoptr(GPtrArray) items = lex("client\n\tremote  vpn.example.org\t1194 udp  \nverb 3\n");

    g_assert_cmpuint(items->len, ==, 3);
    assert_directive(items, 0, 1, "client", NULL);
    assert_directive(items, 1, 2, "remote", "vpn.example.org", "1194", "udp", NULL);
    assert_directive(items, 2, 3, "verb", "3", NULL);
}

static void test_comment_lines(void)
{
    g_autoptr(GPtrArray) items = lex("# hash comment\n"
                                     "; semicolon comment\n"
                                     "   # indented hash \"unterminated\n"
                                     "\t; indented semicolon 'x\n"
                                     "#remote no\n"
                                     "dev tun\n");

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 6, "dev", "tun", NULL);
}

static void test_inline_comments(void)
{
    g_autoptr(GPtrArray) items = lex("remote host 1194 # the server\n"
                                     "port 1194 ;the port\n"
                                     "proto udp#not-a-comment x;y\n"
                                     "verb 3 #\n");

    g_assert_cmpuint(items->len, ==, 4);
    assert_directive(items, 0, 1, "remote", "host", "1194", NULL);
    assert_directive(items, 1, 2, "port", "1194", NULL);
    /* Inside a token '#' and ';' are ordinary characters. */
    assert_directive(items, 2, 3, "proto", "udp#not-a-comment", "x;y", NULL);
    assert_directive(items, 3, 4, "verb", "3", NULL);
}

static void test_double_quotes(void)
{
    g_autoptr(GPtrArray) items =
        lex("x \"a b\" \"c\\\"d\" \"e\\\\f\" \"g\\h\" \"tab\there\" \"it's\"\n");

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 1, "x", "a b", "c\"d", "e\\f", "gh", "tab\there", "it's", NULL);
}

static void test_single_quotes(void)
{
    g_autoptr(GPtrArray) items = lex("x 'a\\b \"c\"' 'C:\\dir\\f.txt' 'say \"hi\"'\n");

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 1, "x", "a\\b \"c\"", "C:\\dir\\f.txt", "say \"hi\"", NULL);
}

static void test_empty_quoted(void)
{
    g_autoptr(GPtrArray) items = lex("x \"\" '' y\nz \"\"\n");

    g_assert_cmpuint(items->len, ==, 2);
    assert_directive(items, 0, 1, "x", "", "", "y", NULL);
    assert_directive(items, 1, 2, "z", "", NULL);
}

static void test_quoted_comment_chars(void)
{
    g_autoptr(GPtrArray) items = lex("x \"#a\" ';b' \"c # d\" e\n");

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 1, "x", "#a", ";b", "c # d", "e", NULL);
}

static void test_quote_inside_token(void)
{
    /* A quote only opens a quoted token at the start of a token. */
    g_autoptr(GPtrArray) items = lex("x a\"b c'd e\"f g\"\n");

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 1, "x", "a\"b", "c'd", "e\"f", "g\"", NULL);

    /* Text glued to a closing quote is refused rather than guessed at. */
    lex_fail("x \"a\"b\n", 1, "unexpected text after closing quote in 'x \"a\"b'");
    lex_fail("x 'a'b\n", 1, "unexpected text after closing quote in 'x 'a'b'");
    lex_fail("x \"a\"#c\n", 1, "unexpected text after closing quote in 'x \"a\"#c'");
}

static void test_backslash(void)
{
    g_autoptr(GPtrArray) items = lex("x a\\ b \\\"q \\#h \\;s c\\\\d \\'e\n");

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 1, "x", "a b", "\"q", "#h", ";s", "c\\d", "'e", NULL);
}

static void test_unterminated_quote(void)
{
    lex_fail("remote \"x\n", 1, "unterminated double quote in 'remote \"x'");
    lex_fail("verb 3\nremote 'x y\n", 2, "unterminated single quote in 'remote 'x y'");
    /* The escaped quote does not close the string. */
    lex_fail("x \"abc\\\"\n", 1, "unterminated double quote in 'x \"abc\\\"'");
    lex_fail("x \"abc\\", 1, "unterminated double quote in 'x \"abc\\'");
    /* A lone quote with nothing after it. */
    lex_fail("x \"", 1, "unterminated double quote in 'x \"'");
}

static void test_trailing_backslash(void)
{
    lex_fail("x a\\\n", 1, "trailing backslash in 'x a\\'");
    /* Without a newline, and with CRLF: the CR is not what gets escaped. */
    lex_fail("verb 1\nx \\", 2, "trailing backslash in 'x \\'");
    lex_fail("x a\\\r\n", 1, "trailing backslash in 'x a\\'");
}

static void test_bom(void)
{
    g_autoptr(GPtrArray) items = lex("\xEF\xBB\xBFremote a\n");
    g_autoptr(GPtrArray) comment = lex("\xEF\xBB\xBF# comment\nverb 3\n");
    g_autoptr(GPtrArray) block = lex("\xEF\xBB\xBF<ca>\nX\n</ca>\n");
    g_autoptr(GPtrArray) later = lex("x\n\xEF\xBB\xBFy\n");

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 1, "remote", "a", NULL);
    g_assert_cmpuint(comment->len, ==, 1);
    assert_directive(comment, 0, 2, "verb", "3", NULL);
    g_assert_cmpuint(block->len, ==, 1);
    assert_block(block, 0, 1, 3, "ca", "X\n");
    /* Only at the very start of the text is it a BOM. */
    g_assert_cmpuint(later->len, ==, 2);
    assert_directive(later, 1, 2, "\xEF\xBB\xBFy", NULL);
}

static void test_crlf(void)
{
    g_autoptr(GPtrArray) items = lex("remote a 1194\r\n\r\n# c\r\nport 1\r\nverb 3\r");

    g_assert_cmpuint(items->len, ==, 3);
    assert_directive(items, 0, 1, "remote", "a", "1194", NULL);
    assert_directive(items, 1, 4, "port", "1", NULL);
    assert_directive(items, 2, 5, "verb", "3", NULL);
}

static void test_no_final_newline(void)
{
    g_autoptr(GPtrArray) items = lex("a 1\nb 2");
    g_autoptr(GPtrArray) one = lex("client");
    g_autoptr(GPtrArray) block = lex("<ca>\nX\n</ca>");

    g_assert_cmpuint(items->len, ==, 2);
    assert_directive(items, 0, 1, "a", "1", NULL);
    assert_directive(items, 1, 2, "b", "2", NULL);
    g_assert_cmpuint(one->len, ==, 1);
    assert_directive(one, 0, 1, "client", NULL);
    g_assert_cmpuint(block->len, ==, 1);
    assert_block(block, 0, 1, 3, "ca", "X\n");
}

static void test_respects_len(void)
{
    /* Only the first LEN bytes count, even if more text follows. */
    const char *text = "remote a\nport 1\n";
    g_autoptr(GPtrArray) items = lex_n(text, 8, 1);
    g_autoptr(GPtrArray) cut = lex_n("x \"ab\" y", 6, 1);

    g_assert_cmpuint(items->len, ==, 1);
    assert_directive(items, 0, 1, "remote", "a", NULL);
    g_assert_cmpuint(cut->len, ==, 1);
    assert_directive(cut, 0, 1, "x", "ab", NULL);
    lex_fail_n("x \"ab\" y", 5, 1, 1, "unterminated double quote in 'x \"ab'");
}

static void test_dashdash(void)
{
    g_autoptr(GPtrArray) items = lex("--remote a --b\n  --verb 3\n-x\n\"--dev\" tun\n");

    g_assert_cmpuint(items->len, ==, 4);
    /* Only the directive name loses its "--". */
    assert_directive(items, 0, 1, "remote", "a", "--b", NULL);
    assert_directive(items, 1, 2, "verb", "3", NULL);
    assert_directive(items, 2, 3, "-x", NULL);
    assert_directive(items, 3, 4, "dev", "tun", NULL);

    lex_fail("--\n", 1, "missing directive name in '--'");
    lex_fail("\"\" x\n", 1, "missing directive name in '\"\" x'");
}

static void test_block(void)
{
    g_autoptr(GPtrArray) items = lex("client\n"
                                     "<ca>\n"
                                     "-----BEGIN CERTIFICATE-----\n"
                                     "  indented \"quoted\" \\ back\\slash  \n"
                                     "\n"
                                     "# not a comment\n"
                                     "<key>\n"
                                     "</key>\n"
                                     "-----END CERTIFICATE-----\n"
                                     "</ca>\n"
                                     "verb 3\n"
                                     "<tls-crypt-v2>\n"
                                     "</tls-crypt-v2>\n"
                                     "\n"
                                     "dev tun\n");

    g_assert_cmpuint(items->len, ==, 5);
    assert_directive(items, 0, 1, "client", NULL);
    /* The body is verbatim: no comments, quotes, escapes, nor nested tags. */
    assert_block(items, 1, 2, 10, "ca",
                 "-----BEGIN CERTIFICATE-----\n"
                 "  indented \"quoted\" \\ back\\slash  \n"
                 "\n"
                 "# not a comment\n"
                 "<key>\n"
                 "</key>\n"
                 "-----END CERTIFICATE-----\n");
    assert_directive(items, 2, 11, "verb", "3", NULL);
    assert_block(items, 3, 12, 13, "tls-crypt-v2", "");
    assert_directive(items, 4, 15, "dev", "tun", NULL);
}

static void test_block_crlf(void)
{
    g_autoptr(GPtrArray) items = lex("<key>\r\nAAA\r\nBBB\r\n\r\n</key>\r\nverb 3\r\n");

    g_assert_cmpuint(items->len, ==, 2);
    assert_block(items, 0, 1, 5, "key", "AAA\nBBB\n\n");
    assert_directive(items, 1, 6, "verb", "3", NULL);
}

static void test_block_last_line_no_newline(void)
{
    /* The closing tag may be the last line of a body that a caller cut out
     * of a bigger file, without its newline. */
    g_autoptr(GPtrArray) items = lex("<ca>\nA\nB</ca>\n</ca>");

    g_assert_cmpuint(items->len, ==, 1);
    assert_block(items, 0, 1, 4, "ca", "A\nB</ca>\n");
}

static void test_block_tag_blanks(void)
{
    g_autoptr(GPtrArray) items = lex("  <ca>  \t\nX\n \t</ca> \nverb 3\n");

    g_assert_cmpuint(items->len, ==, 2);
    assert_block(items, 0, 1, 3, "ca", "X\n");
    assert_directive(items, 1, 4, "verb", "3", NULL);
}

static void test_block_unterminated(void)
{
    g_autoptr(GError) error = NULL;
    const char *text = "verb 3\n<key>\nsecret-key-material\n</ca>\n";
    guint line = 0;

    lex_fail(text, 2, "unterminated inline block '<key>'");
    lex_fail("<ca>", 1, "unterminated inline block '<ca>'");
    lex_fail("<ca>\n", 1, "unterminated inline block '<ca>'");
    /* Line numbers count from FIRST_LINE. */
    lex_fail_n("\n\n<ca>\nX\n", 9, 20, 22, "unterminated inline block '<ca>'");

    /* The body never shows up in the message. */
    g_assert_null(shimmer_lex(text, strlen(text), 1, &line, &error));
    g_assert_nonnull(error);
    g_assert_null(strstr(error->message, "secret"));
}

static void test_block_stray_close(void)
{
    lex_fail("verb 3\n</ca>\n", 2, "closing tag without opening tag in '</ca>'");
    lex_fail("<ca>\nX\n</ca>\n</ca>\n", 4, "closing tag without opening tag in '</ca>'");
}

static void test_block_malformed_tag(void)
{
    lex_fail("<CA>\nX\n</CA>\n", 1, "malformed inline block tag in '<CA>'");
    lex_fail("<ca> # c\n", 1, "malformed inline block tag in '<ca> # c'");
    lex_fail("<>\n", 1, "malformed inline block tag in '<>'");
    lex_fail("</>\n", 1, "malformed inline block tag in '</>'");
    lex_fail("<ca\n", 1, "malformed inline block tag in '<ca'");
    lex_fail("<ca_x>\n", 1, "malformed inline block tag in '<ca_x>'");
}

static void test_too_many_args(void)
{
    GString *line = g_string_new("x");
    g_autoptr(GPtrArray) items = NULL;

    for (int i = 1; i <= SHIMMER_LEXER_MAX_ARGS; i++)
        g_string_append_printf(line, " a%d", i);

    items = lex(line->str);
    g_assert_cmpuint(items->len, ==, 1);
    g_assert_cmpuint(item_at(items, 0)->argc, ==, SHIMMER_LEXER_MAX_ARGS + 1);
    g_assert_cmpstr(item_at(items, 0)->argv[SHIMMER_LEXER_MAX_ARGS], ==, "a16");

    /* A trailing comment does not count. */
    g_string_append(line, " # a17 a18");
    g_clear_pointer(&items, g_ptr_array_unref);
    items = lex(line->str);
    g_assert_cmpuint(item_at(items, 0)->argc, ==, SHIMMER_LEXER_MAX_ARGS + 1);

    g_string_truncate(line, line->len - strlen(" # a17 a18"));
    g_string_append(line, " a17");
    g_string_prepend(line, "verb 3\n");
    lex_fail(line->str, 2,
             "too many arguments (at most 16) in "
             "'x a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12 a13 a14 a15 a16 a17'");
    g_string_free(line, TRUE);
}

static void test_nul(void)
{
    g_autoptr(GError) error = NULL;
    static const char body_nul[] = "<key>\nsecret\0key\n</key>\n";
    guint line = 0;

    lex_fail_n("a\nb\0c\n", 6, 1, 2, "NUL byte in text");
    lex_fail_n("\0", 1, 1, 1, "NUL byte in text");
    /* Even in a comment, and in a block body (without quoting the body). */
    lex_fail_n("# x\0y\n", 6, 1, 1, "NUL byte in text");
    lex_fail_n(body_nul, sizeof(body_nul) - 1, 1, 2, "NUL byte in text");

    g_assert_null(shimmer_lex(body_nul, sizeof(body_nul) - 1, 1, &line, &error));
    g_assert_null(strstr(error->message, "secret"));
}

static void test_long_line(void)
{
    g_autofree char *ok = g_strnfill(SHIMMER_LEXER_MAX_LINE, 'a');
    g_autofree char *too_long = g_strnfill(SHIMMER_LEXER_MAX_LINE + 1, 'a');
    g_autofree char *ok_crlf = g_strconcat(ok, "\r\n", NULL);
    g_autofree char *long_comment = g_strconcat("verb 3\n#", ok, "\n", NULL);
    g_autofree char *long_body = g_strconcat("<ca>\n", too_long, "\n</ca>\n", NULL);
    g_autofree char *msg = g_strdup_printf("line too long (%d bytes, at most %d)",
                                           SHIMMER_LEXER_MAX_LINE + 1, SHIMMER_LEXER_MAX_LINE);
    g_autoptr(GPtrArray) a = lex(ok);
    g_autoptr(GPtrArray) b = lex(ok_crlf);

    /* Exactly the limit is fine, the line terminator not counting. */
    g_assert_cmpuint(a->len, ==, 1);
    g_assert_cmpuint(strlen(item_at(a, 0)->argv[0]), ==, SHIMMER_LEXER_MAX_LINE);
    g_assert_cmpuint(b->len, ==, 1);
    g_assert_cmpuint(strlen(item_at(b, 0)->argv[0]), ==, SHIMMER_LEXER_MAX_LINE);

    lex_fail(too_long, 1, msg);
    lex_fail(long_comment, 2, msg);
    lex_fail(long_body, 2, msg);
}

static void test_first_line(void)
{
    g_autoptr(GPtrArray) items = lex_n("a\n\n<ca>\nX\n</ca>\nb\n", 18, 100);

    g_assert_cmpuint(items->len, ==, 3);
    assert_directive(items, 0, 100, "a", NULL);
    assert_block(items, 1, 102, 104, "ca", "X\n");
    assert_directive(items, 2, 105, "b", NULL);

    lex_fail_n("a\nb \"x\n", 7, 41, 42, "unterminated double quote in 'b \"x'");
}

static void test_error_excerpt(void)
{
    /* Long lines are cut in messages, control bytes and bad UTF-8 made
     * printable. */
    g_autofree char *pad = g_strnfill(100, 'p');
    g_autofree char *text = g_strconcat("x \"", pad, NULL);
    /* 60 bytes of the line: 'x "' and 57 of the padding. */
    g_autofree char *shown = g_strnfill(57, 'p');
    g_autofree char *expect =
        g_strconcat("unterminated double quote in 'x \"", shown, "...'", NULL);

    lex_fail(text, 1, expect);
    lex_fail("x\x01y \"z\n", 1, "unterminated double quote in 'x\\x01y \"z'");
    lex_fail("x\xff \"z\n", 1, "unterminated double quote in 'x\xEF\xBF\xBD \"z'");
}

static void test_lex_line(void)
{
    g_auto(GStrv) a = NULL;
    g_auto(GStrv) b = NULL;
    g_auto(GStrv) c = NULL;
    g_auto(GStrv) d = NULL;
    g_autoptr(GError) error = NULL;
    static const char route[] = "route 10.0.0.0 255.0.0.0 \"a b\" 'c' d\\ e ; x";
    static const char many[] = "--x 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17";
    static const char comment[] = "  # just a comment";
    /* Exactly sized heap copy: ASan catches a read past the end. */
    g_autofree char *copy = g_memdup2(route, strlen(route));

    a = shimmer_lex_line(copy, strlen(route), &error);
    g_assert_no_error(error);
    g_assert_nonnull(a);
    g_assert_cmpuint(g_strv_length(a), ==, 6);
    g_assert_cmpstr(a[0], ==, "route");
    g_assert_cmpstr(a[1], ==, "10.0.0.0");
    g_assert_cmpstr(a[2], ==, "255.0.0.0");
    g_assert_cmpstr(a[3], ==, "a b");
    g_assert_cmpstr(a[4], ==, "c");
    g_assert_cmpstr(a[5], ==, "d e");

    b = shimmer_lex_line(NULL, 0, &error);
    g_assert_no_error(error);
    g_assert_nonnull(b);
    g_assert_null(b[0]);

    c = shimmer_lex_line(comment, strlen(comment), &error);
    g_assert_no_error(error);
    g_assert_nonnull(c);
    g_assert_null(c[0]);

    /* No "--" stripping and no argument limit here: that is for files. */
    d = shimmer_lex_line(many, strlen(many), &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_strv_length(d), ==, 18);
    g_assert_cmpstr(d[0], ==, "--x");
    g_assert_cmpstr(d[17], ==, "17");
}

static void test_lex_line_errors(void)
{
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    g_autoptr(GError) e4 = NULL;

    g_assert_null(shimmer_lex_line("remote \"x", 9, &e1));
    g_assert_error(e1, SHIMMER_LEXER_ERROR, 0);
    g_assert_cmpstr(e1->message, ==, "unterminated double quote in 'remote \"x'");

    g_assert_null(shimmer_lex_line("a\0b", 3, &e2));
    g_assert_error(e2, SHIMMER_LEXER_ERROR, 0);
    g_assert_cmpstr(e2->message, ==, "NUL byte in line");

    g_assert_null(shimmer_lex_line("a\nb", 3, &e3));
    g_assert_error(e3, SHIMMER_LEXER_ERROR, 0);
    g_assert_cmpstr(e3->message, ==, "newline in 'a\\x0ab'");

    g_assert_null(shimmer_lex_line("a b\\", 4, &e4));
    g_assert_error(e4, SHIMMER_LEXER_ERROR, 0);
    g_assert_cmpstr(e4->message, ==, "trailing backslash in 'a b\\'");
}

static void test_autoptr_item(void)
{
    /* Items can be stolen from the array and freed on their own. */
    g_autoptr(GPtrArray) items = lex("<key>\nK\n</key>\nverb 3\n");
    g_autoptr(ShimmerItem) block = NULL;
    g_autoptr(ShimmerItem) directive = NULL;

    g_assert_cmpuint(items->len, ==, 2);
    block = g_ptr_array_steal_index(items, 0);
    directive = g_ptr_array_steal_index(items, 0);
    g_assert_cmpstr(block->body, ==, "K\n");
    g_assert_cmpstr(directive->argv[1], ==, "3");
    shimmer_item_free(NULL);
}

static void test_many_lines(void)
{
    /* A big input stays linear and gets its line numbers right. */
    GString *s = g_string_new(NULL);
    g_autoptr(GPtrArray) items = NULL;

    for (int i = 0; i < 20000; i++)
        g_string_append_printf(s, "d%d a b \"c d\" # x\n\n", i);
    items = lex_n(s->str, s->len, 1);
    g_assert_cmpuint(items->len, ==, 20000);
    assert_directive(items, 19999, 39999, "d19999", "a", "b", "c d", NULL);
    g_string_free(s, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/lexer/empty", test_empty);
    g_test_add_func("/lexer/simple", test_simple);
    g_test_add_func("/lexer/comment-lines", test_comment_lines);
    g_test_add_func("/lexer/inline-comments", test_inline_comments);
    g_test_add_func("/lexer/double-quotes", test_double_quotes);
    g_test_add_func("/lexer/single-quotes", test_single_quotes);
    g_test_add_func("/lexer/empty-quoted", test_empty_quoted);
    g_test_add_func("/lexer/quoted-comment-chars", test_quoted_comment_chars);
    g_test_add_func("/lexer/quote-inside-token", test_quote_inside_token);
    g_test_add_func("/lexer/backslash", test_backslash);
    g_test_add_func("/lexer/unterminated-quote", test_unterminated_quote);
    g_test_add_func("/lexer/trailing-backslash", test_trailing_backslash);
    g_test_add_func("/lexer/bom", test_bom);
    g_test_add_func("/lexer/crlf", test_crlf);
    g_test_add_func("/lexer/no-final-newline", test_no_final_newline);
    g_test_add_func("/lexer/respects-len", test_respects_len);
    g_test_add_func("/lexer/dashdash", test_dashdash);
    g_test_add_func("/lexer/block", test_block);
    g_test_add_func("/lexer/block-crlf", test_block_crlf);
    g_test_add_func("/lexer/block-last-line-no-newline", test_block_last_line_no_newline);
    g_test_add_func("/lexer/block-tag-blanks", test_block_tag_blanks);
    g_test_add_func("/lexer/block-unterminated", test_block_unterminated);
    g_test_add_func("/lexer/block-stray-close", test_block_stray_close);
    g_test_add_func("/lexer/block-malformed-tag", test_block_malformed_tag);
    g_test_add_func("/lexer/too-many-args", test_too_many_args);
    g_test_add_func("/lexer/nul", test_nul);
    g_test_add_func("/lexer/long-line", test_long_line);
    g_test_add_func("/lexer/first-line", test_first_line);
    g_test_add_func("/lexer/error-excerpt", test_error_excerpt);
    g_test_add_func("/lexer/lex-line", test_lex_line);
    g_test_add_func("/lexer/lex-line-errors", test_lex_line_errors);
    g_test_add_func("/lexer/autoptr-item", test_autoptr_item);
    g_test_add_func("/lexer/many-lines", test_many_lines);

    return g_test_run();
}
