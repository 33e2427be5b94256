/* SPDX-License-Identifier: MIT */
/*
 * Tests for the configuration-time key checks (src/keys.c), against the
 * throwaway PKI in tests/data and broken variants of it built here.
 */
#include "keys.h"

#include "config.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

/* ---- Helpers ---------------------------------------------------------------- */

static char *data_path(const char *name)
{
    const char *srcdir = g_getenv("SHIMMER_TEST_SRCDIR");

    if (srcdir == NULL)
        g_error("SHIMMER_TEST_SRCDIR is not set (run the test through meson test)");
    return g_build_filename(srcdir, "data", name, NULL);
}

/* A fixture's bytes, NUL terminated so that text fixtures work as strings. */
static char *load(const char *name, gsize *len)
{
    g_autofree char *path = data_path(name);
    g_autoptr(GError) error = NULL;
    char *contents = NULL;
    gsize n = 0;

    if (!g_file_get_contents(path, &contents, &n, &error))
        g_error("cannot read fixture %s: %s", path, error->message);
    if (len != NULL)
        *len = n;
    return contents;
}

static char *load_text(const char *name)
{
    return load(name, NULL);
}

static char *replace(const char *s, const char *from, const char *to, guint limit)
{
    GString *g = g_string_new(s);
    guint n = g_string_replace(g, from, to, limit);

    g_assert_cmpuint(n, >, 0); /* the variant must differ from the original */
    return g_string_free(g, FALSE);
}

/* The LINENO'th line (1-based) of TEXT without its terminator. */
static char *nth_line(const char *text, guint lineno)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    g_assert_cmpuint(g_strv_length(lines), >=, lineno);
    return g_strdup(lines[lineno - 1]);
}

/* TEXT without its line LINENO. */
static char *drop_line(const char *text, guint lineno)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    GString *g = g_string_new(NULL);

    for (guint i = 0; lines[i] != NULL; i++) {
        if (i + 1 == lineno)
            continue;
        g_string_append(g, lines[i]);
        if (lines[i + 1] != NULL)
            g_string_append_c(g, '\n');
    }
    return g_string_free(g, FALSE);
}

static void hex_decode(const char *hex, guint8 *out, gsize n)
{
    g_assert_cmpuint(strlen(hex), ==, 2 * n);
    for (gsize i = 0; i < n; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);

        g_assert_cmpint(hi, >=, 0);
        g_assert_cmpint(lo, >=, 0);
        out[i] = (guint8)(hi * 16 + lo);
    }
}

/* Decodes the body of the first PEM block in TEXT independently of the code
 * under test: the lines between BEGIN and END, through g_base64_decode(). */
static guint8 *pem_body_decode(const char *text, gsize *len)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GString) b64 = g_string_new(NULL);
    gboolean inside = FALSE;

    for (guint i = 0; lines[i] != NULL; i++) {
        g_strstrip(lines[i]);
        if (g_str_has_prefix(lines[i], "-----BEGIN ")) {
            inside = TRUE;
        } else if (g_str_has_prefix(lines[i], "-----END ")) {
            break;
        } else if (inside) {
            g_string_append(b64, lines[i]);
        }
    }
    g_assert_true(inside);
    return g_base64_decode(b64->str, len);
}

/* PEM armour around BYTES, 64 characters a line, as OpenVPN writes it. */
static char *pem_encode(const char *label, const guint8 *bytes, gsize len)
{
    g_autofree char *b64 = g_base64_encode(bytes, len);
    GString *g = g_string_new(NULL);
    gsize n = strlen(b64);

    g_string_append_printf(g, "-----BEGIN %s-----\n", label);
    for (gsize i = 0; i < n; i += 64)
        g_string_append_printf(g, "%.*s\n", (int)MIN(64, n - i), b64 + i);
    g_string_append_printf(g, "-----END %s-----\n", label);
    return g_string_free(g, FALSE);
}

/* Error messages must never quote key material: no long runs of hex digits
 * with letters among them (a plain decimal number such as a size is fine), nor
 * of base64 characters. */
static void assert_no_key_material(const char *message)
{
    gsize hex_run = 0;
    gboolean hex_letter = FALSE;
    gsize b64_run = 0;

    for (const char *p = message; *p != '\0'; p++) {
        if (g_ascii_isxdigit(*p)) {
            hex_run++;
            hex_letter = hex_letter || !g_ascii_isdigit(*p);
        } else {
            hex_run = 0;
            hex_letter = FALSE;
        }
        b64_run = (g_ascii_isalnum(*p) || *p == '+' || *p == '/') ? b64_run + 1 : 0;
        if ((hex_run >= 8 && hex_letter) || b64_run >= 16)
            g_error("error message may quote key material: %s", message);
    }
}

/* Checks a failed call: FALSE, an error in our domain, a message containing
 * NEEDLE and quoting nothing. Frees the error. */
#define assert_fails(ok, error, needle)                                                            \
    do {                                                                                           \
        g_assert_false(ok);                                                                        \
        g_assert_error((error), SHIMMER_KEYS_ERROR, 0);                                            \
        g_test_message("expected failure: %s", (error)->message);                                  \
        if (strstr((error)->message, (needle)) == NULL)                                            \
            g_error("message \"%s\" does not contain \"%s\"", (error)->message, (needle));         \
        assert_no_key_material((error)->message);                                                  \
        g_clear_error(&(error));                                                                   \
    } while (0)

#define assert_ok(ok, error)                                                                       \
    do {                                                                                           \
        gboolean ok_ = (ok);                                                                       \
        g_assert_no_error(error);                                                                  \
        g_assert_true(ok_);                                                                        \
    } while (0)

/* ---- Static keys ------------------------------------------------------------- */

/* Line numbers in ta.key/tc.key: 3 comment lines, BEGIN, 16 hex lines, END. */
#define SK_BEGIN_LINE     4
#define SK_FIRST_HEX_LINE 5
#define SK_LAST_HEX_LINE  20

static void check_static_fixture(const char *name)
{
    g_autofree char *text = load_text(name);
    g_autofree char *first = nth_line(text, SK_FIRST_HEX_LINE);
    g_autofree char *last = nth_line(text, SK_LAST_HEX_LINE);
    g_autoptr(GError) error = NULL;
    guint8 key[SHIMMER_STATIC_KEY_LEN];
    guint8 expect[16];

    g_autofree char *begin = nth_line(text, SK_BEGIN_LINE);

    g_assert_true(g_str_has_prefix(begin, "-----BEGIN OpenVPN Static"));
    assert_ok(shimmer_keys_parse_static(text, strlen(text), key, &error), error);

    hex_decode(first, expect, sizeof expect);
    g_assert_cmpmem(key, 16, expect, 16);
    hex_decode(last, expect, sizeof expect);
    g_assert_cmpmem(key + SHIMMER_STATIC_KEY_LEN - 16, 16, expect, 16);
}

static void test_static_fixtures(void)
{
    check_static_fixture("ta.key");
    check_static_fixture("tc.key");

    /* The two fixtures are different keys. */
    g_autofree char *ta = load_text("ta.key");
    g_autofree char *tc = load_text("tc.key");
    guint8 k1[SHIMMER_STATIC_KEY_LEN];
    guint8 k2[SHIMMER_STATIC_KEY_LEN];
    g_autoptr(GError) error = NULL;

    assert_ok(shimmer_keys_parse_static(ta, strlen(ta), k1, &error), error);
    assert_ok(shimmer_keys_parse_static(tc, strlen(tc), k2, &error), error);
    g_assert_true(memcmp(k1, k2, sizeof k1) != 0);
}

/* Layout variants that must decode to the same key as ta.key. */
static void test_static_tolerant(void)
{
    g_autofree char *text = load_text("ta.key");
    g_autoptr(GError) error = NULL;
    guint8 want[SHIMMER_STATIC_KEY_LEN];
    guint8 got[SHIMMER_STATIC_KEY_LEN];

    assert_ok(shimmer_keys_parse_static(text, strlen(text), want, &error), error);

    g_autofree char *crlf = replace(text, "\n", "\r\n", 0);
    g_autofree char *no_comments = g_strdup(strstr(text, "-----BEGIN"));
    g_autofree char *blank_lines = replace(text, "-----END", "\n  \n\t\n-----END", 1);
    g_autofree char *bom = g_strconcat("\xef\xbb\xbf", text, NULL);
    g_autofree char *no_final_newline = g_strndup(text, strlen(text) - 1);
    g_autofree char *trailing_comment = g_strconcat(text, "\n# end of key\n\n", NULL);

    /* All 512 digits on one line, and the same with a space between bytes. */
    GString *one_line = g_string_new("-----BEGIN OpenVPN Static key V1-----\n");
    GString *spaced = g_string_new("-----BEGIN OpenVPN Static key V1-----\n");
    for (guint l = SK_FIRST_HEX_LINE; l <= SK_LAST_HEX_LINE; l++) {
        g_autofree char *hex = nth_line(text, l);

        g_string_append(one_line, hex);
        for (const char *p = hex; *p != '\0'; p += 2)
            g_string_append_printf(spaced, "%.2s ", p);
        g_string_append_c(spaced, '\n');
    }
    g_string_append(one_line, "\n-----END OpenVPN Static key V1-----\n");
    g_string_append(spaced, "-----END OpenVPN Static key V1-----\n");
    g_autofree char *one_line_s = g_string_free(one_line, FALSE);
    g_autofree char *spaced_s = g_string_free(spaced, FALSE);

    const char *variants[] = {
        crlf,       no_comments, blank_lines, bom, no_final_newline, trailing_comment,
        one_line_s, spaced_s,
    };
    for (gsize i = 0; i < G_N_ELEMENTS(variants); i++) {
        memset(got, 0, sizeof got);
        g_test_message("variant %" G_GSIZE_FORMAT, i);
        assert_ok(shimmer_keys_parse_static(variants[i], strlen(variants[i]), got, &error), error);
        g_assert_cmpmem(got, sizeof got, want, sizeof want);
    }

    /* Not NUL terminated: only LEN bytes are read. */
    gsize len = strlen(text);
    g_autofree char *copy = g_malloc(len);
    memcpy(copy, text, len);
    assert_ok(shimmer_keys_parse_static(copy, len, got, &error), error);
    g_assert_cmpmem(got, sizeof got, want, sizeof want);
}

static void expect_static_failure(const char *variant, const char *needle)
{
    g_autoptr(GError) error = NULL;
    guint8 out[SHIMMER_STATIC_KEY_LEN];
    gboolean ok;

    /* A failed parse leaves the output alone. */
    memset(out, 0xa5, sizeof out);
    ok = shimmer_keys_parse_static(variant, strlen(variant), out, &error);
    assert_fails(ok, error, needle);
    for (gsize i = 0; i < sizeof out; i++)
        g_assert_cmpuint(out[i], ==, 0xa5);
}

static void test_static_digit_count(void)
{
    g_autofree char *text = load_text("ta.key");
    g_autofree char *last = nth_line(text, SK_LAST_HEX_LINE);
    g_autofree char *last_minus_1 = g_strndup(last, 31);
    g_autofree char *last_minus_2 = g_strndup(last, 30);
    g_autofree char *last_plus_1 = g_strconcat(last, "a", NULL);
    g_autofree char *last_plus_line = g_strconcat(last, "\n", last, NULL);

    g_autofree char *d511 = replace(text, last, last_minus_1, 1);
    g_autofree char *d510 = replace(text, last, last_minus_2, 1);
    g_autofree char *d513 = replace(text, last, last_plus_1, 1);
    g_autofree char *d544 = replace(text, last, last_plus_line, 1);
    g_autofree char *d480 = drop_line(text, SK_LAST_HEX_LINE);
    g_autofree char *d0 = g_strdup("-----BEGIN OpenVPN Static key V1-----\n"
                                   "-----END OpenVPN Static key V1-----\n");

    expect_static_failure(d511, "expected 512 hex digits, found 511");
    expect_static_failure(d510, "expected 512 hex digits, found 510");
    expect_static_failure(d513, "expected 512 hex digits, found 513");
    expect_static_failure(d544, "expected 512 hex digits, found 544");
    expect_static_failure(d480, "expected 512 hex digits, found 480");
    expect_static_failure(d0, "expected 512 hex digits, found 0");
}

static void test_static_bad_chars(void)
{
    g_autofree char *text = load_text("ta.key");
    g_autofree char *first = nth_line(text, SK_FIRST_HEX_LINE);
    g_autofree char *first_g = g_strdup(first);
    first_g[7] = 'g';
    g_autofree char *first_dash = g_strdup(first);
    first_dash[0] = '-';
    g_autofree char *first_0x = g_strconcat("0x", first + 2, NULL);

    g_autofree char *bad_g = replace(text, first, first_g, 1);
    g_autofree char *bad_dash = replace(text, first, first_dash, 1);
    g_autofree char *bad_0x = replace(text, first, first_0x, 1);
    g_autofree char *inner_comment = replace(text, first, "# a comment inside the key", 1);

    expect_static_failure(bad_g, "not a hex digit at line 5");
    expect_static_failure(bad_dash, "not a hex digit at line 5");
    expect_static_failure(bad_0x, "not a hex digit at line 5");
    expect_static_failure(inner_comment, "not a hex digit at line 5");

    /* A NUL byte inside the data is not whitespace. */
    gsize len = strlen(text);
    g_autofree char *with_nul = g_memdup2(text, len);
    char *pos = strstr(with_nul, first);
    pos[3] = '\0';
    g_autoptr(GError) error = NULL;
    guint8 out[SHIMMER_STATIC_KEY_LEN];
    gboolean ok = shimmer_keys_parse_static(with_nul, len, out, &error);
    assert_fails(ok, error, "not a hex digit at line 5");
}

static void test_static_markers(void)
{
    g_autofree char *text = load_text("ta.key");
    g_autofree char *tc_v2 = load_text("tc-v2-client.key");
    g_autofree char *ca = load_text("ca.crt");
    const char *begin = "-----BEGIN OpenVPN Static key V1-----";
    const char *end = "-----END OpenVPN Static key V1-----";

    g_autofree char *begin_v2 = replace(text, begin, "-----BEGIN OpenVPN Static key V2-----", 1);
    g_autofree char *end_v2 = replace(text, end, "-----END OpenVPN Static key V2-----", 1);
    g_autofree char *both_v2 = replace(begin_v2, end, "-----END OpenVPN Static key V2-----", 1);
    g_autofree char *lower = replace(text, "Static key", "static key", 0);
    g_autofree char *begin_short = replace(text, begin, "-----BEGIN OpenVPN Static key V1----", 1);
    g_autofree char *begin_cut = replace(text, begin, "-----BEGIN OpenVPN Static key V1", 1);
    g_autofree char *no_begin = replace(text, begin, "", 1);
    g_autofree char *no_end = replace(text, end, "", 1);
    g_autofree char *end_cut = replace(text, end, "-----END OpenVPN Static key V1", 1);
    g_autofree char *text_before = g_strconcat("key follows\n", text, NULL);
    g_autofree char *text_after = g_strconcat(text, "trailing words\n", NULL);
    g_autofree char *twice = g_strconcat(text, text, NULL);
    g_autofree char *bare_hex = g_strndup(strstr(text, begin) + strlen(begin) + 1, 16 * 33);

    expect_static_failure(begin_v2, "does not match the BEGIN line");
    expect_static_failure(end_v2, "does not match the BEGIN line");
    expect_static_failure(both_v2, "expected an OpenVPN static key but found a PEM block labelled "
                                   "\"OpenVPN Static key V2\"");
    expect_static_failure(lower, "expected an OpenVPN static key but found");
    expect_static_failure(begin_short, "malformed PEM BEGIN line (line 4)");
    expect_static_failure(begin_cut, "malformed PEM BEGIN line (line 4)");
    expect_static_failure(no_begin, "END line without a BEGIN line");
    expect_static_failure(no_end, "has no END line");
    expect_static_failure(end_cut, "does not match the BEGIN line");
    expect_static_failure(text_before, "unexpected text before the BEGIN line (line 1)");
    expect_static_failure(text_after, "unexpected text after the END line (line 22)");
    expect_static_failure(twice, "more than one PEM block (another begins at line 25)");
    expect_static_failure(bare_hex, "no \"-----BEGIN OpenVPN Static key V1-----\" line");
    expect_static_failure("", "the data is empty");
    expect_static_failure(tc_v2, "expected an OpenVPN static key but found a tls-crypt-v2 "
                                 "client key");
    expect_static_failure(ca, "found a certificate");

    g_autoptr(GError) error = NULL;
    guint8 out[SHIMMER_STATIC_KEY_LEN];
    gboolean ok = shimmer_keys_parse_static(NULL, 0, out, &error);
    assert_fails(ok, error, "the data is empty");
}

/* ---- tls-crypt-v2 ------------------------------------------------------------- */

#define CLIENT_LABEL "OpenVPN tls-crypt-v2 client key"
#define SERVER_LABEL "OpenVPN tls-crypt-v2 server key"

static void test_tc_v2_client_fixture(void)
{
    g_autofree char *text = load_text("tc-v2-client.key");
    gsize raw_len = 0;
    g_autofree guint8 *raw = pem_body_decode(text, &raw_len);
    g_autoptr(GError) error = NULL;
    ShimmerTlsCryptV2ClientKey key;

    memset(&key, 0xa5, sizeof key);
    assert_ok(shimmer_keys_parse_tls_crypt_v2_client(text, strlen(text), &key, &error), error);

    /* OpenVPN 2.6 wraps Kc with a tag (32), Kc (256), a timestamp metadata
     * field (9) and the length (2): 299 bytes. */
    g_assert_cmpuint(key.wkc_len, ==, 299);
    g_assert_cmpuint(key.wkc_len, ==, raw_len - SHIMMER_STATIC_KEY_LEN);
    g_assert_cmpuint(key.wkc_len, >=, SHIMMER_TLS_CRYPT_V2_MIN_WKC_LEN);
    g_assert_cmpuint(((guint)key.wkc[key.wkc_len - 2] << 8) | key.wkc[key.wkc_len - 1], ==,
                     key.wkc_len);
    g_assert_cmpmem(key.kc, SHIMMER_STATIC_KEY_LEN, raw, SHIMMER_STATIC_KEY_LEN);
    g_assert_cmpmem(key.wkc, key.wkc_len, raw + SHIMMER_STATIC_KEY_LEN, key.wkc_len);
    for (gsize i = key.wkc_len; i < sizeof key.wkc; i++)
        g_assert_cmpuint(key.wkc[i], ==, 0);

    /* CRLF, and a comment before the block. */
    g_autofree char *crlf = replace(text, "\n", "\r\n", 0);
    g_autofree char *commented = g_strconcat("# client 1\n\n", text, NULL);
    ShimmerTlsCryptV2ClientKey key2;

    assert_ok(shimmer_keys_parse_tls_crypt_v2_client(crlf, strlen(crlf), &key2, &error), error);
    g_assert_cmpuint(key2.wkc_len, ==, key.wkc_len);
    g_assert_cmpmem(&key2, sizeof key2, &key, sizeof key);
    assert_ok(shimmer_keys_parse_tls_crypt_v2_client(commented, strlen(commented), &key2, &error),
              error);
    g_assert_cmpmem(&key2, sizeof key2, &key, sizeof key);
}

static void test_tc_v2_server_fixture(void)
{
    g_autofree char *text = load_text("tc-v2-server.key");
    gsize raw_len = 0;
    g_autofree guint8 *raw = pem_body_decode(text, &raw_len);
    g_autoptr(GError) error = NULL;
    guint8 key[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];

    g_assert_cmpuint(raw_len, ==, SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN);
    assert_ok(shimmer_keys_parse_tls_crypt_v2_server(text, strlen(text), key, &error), error);
    g_assert_cmpmem(key, sizeof key, raw, raw_len);
}

static void test_tc_v2_kind(void)
{
    g_autofree char *client = load_text("tc-v2-client.key");
    g_autofree char *server = load_text("tc-v2-server.key");
    g_autofree char *ta = load_text("ta.key");
    g_autofree char *ca = load_text("ca.crt");
    g_autofree char *client_crlf = replace(client, "\n", "\r\n", 0);
    g_autofree char *client_head = g_strndup(client, strlen("-----BEGIN " CLIENT_LABEL "-----"));
    /* The first BEGIN line decides, even when a later block has the label. */
    g_autofree char *ca_then_server = g_strconcat(ca, server, NULL);

    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(client, strlen(client)), ==, 1);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(server, strlen(server)), ==, 2);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(client_crlf, strlen(client_crlf)), ==, 1);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(client_head, strlen(client_head)), ==, 1);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(ta, strlen(ta)), ==, 0);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(ca, strlen(ca)), ==, 0);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(ca_then_server, strlen(ca_then_server)), ==, 0);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind("", 0), ==, 0);
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(NULL, 0), ==, 0);
    /* Only LEN bytes count: a prefix cut inside the label is neither. */
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(client, 30), ==, 0);
}

static void expect_client_failure(const char *variant, const char *needle)
{
    g_autoptr(GError) error = NULL;
    ShimmerTlsCryptV2ClientKey key;
    gboolean ok;

    memset(&key, 0xa5, sizeof key);
    ok = shimmer_keys_parse_tls_crypt_v2_client(variant, strlen(variant), &key, &error);
    assert_fails(ok, error, needle);
    g_assert_cmpuint(key.kc[0], ==, 0xa5);
    g_assert_cmpuint(key.wkc[0], ==, 0xa5);
}

static void expect_server_failure(const char *variant, const char *needle)
{
    g_autoptr(GError) error = NULL;
    guint8 key[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];
    gboolean ok;

    memset(key, 0xa5, sizeof key);
    ok = shimmer_keys_parse_tls_crypt_v2_server(variant, strlen(variant), key, &error);
    assert_fails(ok, error, needle);
    g_assert_cmpuint(key[0], ==, 0xa5);
}

/* A synthetic client key: Kc, then WKC_LEN bytes of WKc ending in TRAILER. */
static char *make_client_key(gsize wkc_len, guint trailer)
{
    gsize n = SHIMMER_STATIC_KEY_LEN + wkc_len;
    g_autofree guint8 *raw = g_malloc(n);

    for (gsize i = 0; i < n; i++)
        raw[i] = (guint8)(i * 7 + 3);
    raw[n - 2] = (guint8)(trailer >> 8);
    raw[n - 1] = (guint8)trailer;
    return pem_encode(CLIENT_LABEL, raw, n);
}

static void test_tc_v2_client_lengths(void)
{
    g_autoptr(GError) error = NULL;
    ShimmerTlsCryptV2ClientKey key;
    const gsize min = SHIMMER_TLS_CRYPT_V2_MIN_WKC_LEN;
    const gsize max = SHIMMER_TLS_CRYPT_V2_MAX_WKC_LEN;

    /* The smallest and largest WKc are accepted, with their bytes intact. */
    const gsize good[] = {min, 300, max};
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autofree char *pem = make_client_key(good[i], (guint)good[i]);

        assert_ok(shimmer_keys_parse_tls_crypt_v2_client(pem, strlen(pem), &key, &error), error);
        g_assert_cmpuint(key.wkc_len, ==, good[i]);
        g_assert_cmpuint(key.kc[0], ==, 3);
        g_assert_cmpuint(key.kc[255], ==, (guint8)(255 * 7 + 3));
        g_assert_cmpuint(key.wkc[0], ==, (guint8)(256 * 7 + 3));
        g_assert_cmpuint(key.wkc[good[i] - 1], ==, (guint8)good[i]);
    }

    g_autofree char *short_key = make_client_key(min - 1, (guint)(min - 1));
    g_autofree char *long_key = make_client_key(max + 1, (guint)(max + 1));
    g_autofree char *off_by_one = make_client_key(300, 301);
    g_autofree char *zero = make_client_key(300, 0);
    g_autofree char *kc_only = pem_encode(CLIENT_LABEL, (const guint8 *)"", 0);

    expect_client_failure(short_key, "too short: 545 bytes, expected at least 546");
    expect_client_failure(long_key, "too long: 1281 bytes, expected at most 1280");
    expect_client_failure(off_by_one, "the wrapped key is 300 bytes but its length field says 301");
    expect_client_failure(zero, "its length field says 0");
    expect_client_failure(kc_only, "no base64 data");
}

static void test_tc_v2_client_broken(void)
{
    g_autofree char *text = load_text("tc-v2-client.key");
    g_autofree char *server = load_text("tc-v2-server.key");
    g_autofree char *ta = load_text("ta.key");
    gsize raw_len = 0;
    g_autofree guint8 *raw = pem_body_decode(text, &raw_len);

    /* The fixture with its length trailer altered, in both bytes. */
    raw[raw_len - 1] ^= 0x01;
    g_autofree char *trailer_low = pem_encode(CLIENT_LABEL, raw, raw_len);
    raw[raw_len - 1] ^= 0x01;
    raw[raw_len - 2] ^= 0x80;
    g_autofree char *trailer_high = pem_encode(CLIENT_LABEL, raw, raw_len);
    raw[raw_len - 2] ^= 0x80;
    /* Re-encoding the intact bytes gives a key that parses. */
    g_autofree char *reencoded = pem_encode(CLIENT_LABEL, raw, raw_len);
    g_autoptr(GError) error = NULL;
    ShimmerTlsCryptV2ClientKey key;
    assert_ok(shimmer_keys_parse_tls_crypt_v2_client(reencoded, strlen(reencoded), &key, &error),
              error);

    g_autofree char *line2 = nth_line(text, 2);
    g_autofree char *line2_star = g_strdup(line2);
    line2_star[10] = '*';
    g_autofree char *line2_pad = g_strdup(line2);
    line2_pad[10] = '=';
    g_autofree char *line2_short = g_strndup(line2, 63);
    g_autofree char *bad_char = replace(text, line2, line2_star, 1);
    g_autofree char *mid_pad = replace(text, line2, line2_pad, 1);
    g_autofree char *odd_len = replace(text, line2, line2_short, 1);
    g_autofree char *last_line_gone = drop_line(text, 13);
    g_autofree char *no_end = drop_line(text, 14);
    g_autofree char *wrong_label = replace(text, "client key", "client-key", 0);

    expect_client_failure(trailer_low,
                          "the wrapped key is 299 bytes but its length field says 298");
    expect_client_failure(trailer_high, "its length field says 33067");
    expect_client_failure(bad_char, "invalid base64 character (line 2)");
    expect_client_failure(mid_pad, "continues after the '=' padding (line 2)");
    expect_client_failure(odd_len, "not a multiple of 4");
    expect_client_failure(last_line_gone, "too short: 528 bytes");
    expect_client_failure(no_end, "has no END line");
    expect_client_failure(wrong_label, "expected a tls-crypt-v2 client key but found a PEM block");
    expect_client_failure(server, "expected a tls-crypt-v2 client key but found a tls-crypt-v2 "
                                  "server key");
    expect_client_failure(ta, "found an OpenVPN static key");
    expect_client_failure("", "the data is empty");
}

static void test_tc_v2_server_broken(void)
{
    g_autofree char *text = load_text("tc-v2-server.key");
    g_autofree char *client = load_text("tc-v2-client.key");
    guint8 raw[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN + 1];

    memset(raw, 0x5c, sizeof raw);
    g_autofree char *k127 = pem_encode(SERVER_LABEL, raw, sizeof raw - 2);
    g_autofree char *k129 = pem_encode(SERVER_LABEL, raw, sizeof raw);
    g_autofree char *k128 = pem_encode(SERVER_LABEL, raw, sizeof raw - 1);
    g_autofree char *bad_char = replace(text, "Y/tA=", "Y/tA!", 1);
    g_autofree char *extra_pad = replace(text, "Y/tA=", "Y/tA==", 1);
    g_autofree char *text_after = g_strconcat(text, "hello\n", NULL);

    g_autoptr(GError) error = NULL;
    guint8 key[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];
    assert_ok(shimmer_keys_parse_tls_crypt_v2_server(k128, strlen(k128), key, &error), error);
    g_assert_cmpmem(key, sizeof key, raw, sizeof key);

    expect_server_failure(k127, "expected 128 bytes, found 127");
    expect_server_failure(k129, "expected 128 bytes, found 129");
    expect_server_failure(bad_char, "invalid base64 character (line 4)");
    expect_server_failure(extra_pad, "not a multiple of 4");
    expect_server_failure(text_after, "unexpected text after the END line (line 6)");
    expect_server_failure(client, "expected a tls-crypt-v2 server key but found a tls-crypt-v2 "
                                  "client key");
}

/* ---- Certificates -------------------------------------------------------------- */

static void expect_certs_failure(const char *variant, gsize len, gboolean require_one,
                                 const char *needle)
{
    g_autoptr(GError) error = NULL;
    guint n = 4242;
    gboolean ok = shimmer_keys_check_certs(variant, len, require_one, &n, &error);

    assert_fails(ok, error, needle);
    g_assert_cmpuint(n, ==, 4242);
}

static void test_certs_good(void)
{
    g_autofree char *ca = load_text("ca.crt");
    g_autofree char *server = load_text("server.crt");
    g_autofree char *client = load_text("client.crt");
    g_autofree char *key = load_text("client.key");
    g_autofree char *crl = load_text("crl.pem");
    g_autofree char *chain = g_strconcat(ca, server, client, NULL);
    g_autofree char *bag = g_strconcat("Bag Attributes\n    localKeyID: 01 02 03\n"
                                       "subject=O = Shimmer Test, CN = client.shimmer.test\n",
                                       client, NULL);
    g_autofree char *combined = g_strconcat(client, key, NULL);
    g_autofree char *ca_crl = g_strconcat(ca, crl, NULL);
    g_autofree char *crlf = replace(chain, "\n", "\r\n", 0);
    g_autofree char *x509_label = replace(ca, " CERTIFICATE-----", " X509 CERTIFICATE-----", 0);
    g_autoptr(GError) error = NULL;
    guint n = 0;

    const struct {
        const char *text;
        gboolean require_one;
        guint n;
    } cases[] = {
        {ca, TRUE, 1},     {server, TRUE, 1}, {client, TRUE, 1},
        {chain, FALSE, 3}, {bag, TRUE, 1},    {combined, TRUE, 1},
        {ca_crl, TRUE, 1}, {crlf, FALSE, 3},  {x509_label, TRUE, 1},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("case %" G_GSIZE_FORMAT, i);
        n = 0;
        assert_ok(shimmer_keys_check_certs(cases[i].text, strlen(cases[i].text),
                                           cases[i].require_one, &n, &error),
                  error);
        g_assert_cmpuint(n, ==, cases[i].n);
    }

    /* N_CERTS is optional. */
    assert_ok(shimmer_keys_check_certs(ca, strlen(ca), TRUE, NULL, &error), error);
}

static void test_certs_bad(void)
{
    g_autofree char *ca = load_text("ca.crt");
    g_autofree char *server = load_text("server.crt");
    g_autofree char *key = load_text("client.key");
    g_autofree char *crl = load_text("crl.pem");
    g_autofree char *ta = load_text("ta.key");
    g_autofree char *two = g_strconcat(ca, server, NULL);
    g_autofree char *garbage = g_strdup("-----BEGIN CERTIFICATE-----\n"
                                        "bm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n"
                                        "-----END CERTIFICATE-----\n");
    g_autofree char *ca_line2 = nth_line(ca, 2);
    g_autofree char *bad_b64 = replace(ca, ca_line2, "!!!!", 1);
    g_autofree char *odd_b64 = replace(ca, ca_line2, "AAA", 1);
    g_autofree char *missing_line = drop_line(ca, 3);
    g_autofree char *missing_lines = drop_line(missing_line, 3);
    g_autofree char *truncated = g_strndup(ca, strlen(ca) / 2);
    g_autofree char *good_then_bad = g_strconcat(ca, garbage, NULL);
    g_autofree char *trusted = replace(ca, "CERTIFICATE-----", "TRUSTED CERTIFICATE-----", 0);
    g_autofree char *end_mismatch = replace(ca, "END CERTIFICATE", "END CRL", 1);
    gsize der_len = 0;
    g_autofree guint8 *der = pem_body_decode(ca, &der_len);

    expect_certs_failure(two, strlen(two), TRUE, "expected exactly one certificate, found 2");
    expect_certs_failure(garbage, strlen(garbage), FALSE, "certificate 1 (line 1) does not decode");
    expect_certs_failure(bad_b64, strlen(bad_b64), FALSE,
                         "certificate 1 (line 1): invalid base64 character (line 2)");
    expect_certs_failure(odd_b64, strlen(odd_b64), FALSE,
                         "certificate 1 (line 1): base64 data is truncated");
    expect_certs_failure(missing_lines, strlen(missing_lines), FALSE, "does not decode");
    expect_certs_failure(good_then_bad, strlen(good_then_bad), FALSE,
                         "certificate 2 (line 13) does not decode");
    expect_certs_failure(truncated, strlen(truncated), FALSE, "has no END line (truncated?)");
    expect_certs_failure(trusted, strlen(trusted), FALSE, "TRUSTED CERTIFICATE");
    expect_certs_failure(end_mismatch, strlen(end_mismatch), FALSE, "does not match");
    expect_certs_failure(key, strlen(key), FALSE, "not a PEM certificate: found a private key");
    expect_certs_failure(crl, strlen(crl), FALSE, "not a PEM certificate: found a CRL");
    expect_certs_failure(ta, strlen(ta), FALSE, "found an OpenVPN static key");
    expect_certs_failure((const char *)der, der_len, FALSE, "looks like binary DER");
    expect_certs_failure("hello\n", 6, FALSE, "no \"-----BEGIN CERTIFICATE-----\" line");
    expect_certs_failure("", 0, FALSE, "the data is empty");
    expect_certs_failure(NULL, 0, TRUE, "the data is empty");
}

/* ---- Private keys -------------------------------------------------------------- */

/* client.key in OpenSSL's traditional encrypted format ("openssl ec -aes128",
 * passphrase shimmer-test), which make-fixtures.sh does not produce. A
 * throwaway test key like the others. */
static const char trad_encrypted_key[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "Proc-Type: 4,ENCRYPTED\n"
    "DEK-Info: AES-128-CBC,254B4BBF9855945FE05EF701B144A31A\n"
    "\n"
    "SybogN5YQy5AUxW/JtDDm9sGPhhjMMPTqe+7yVt6xgdDzT48vvxaNIjuv/9xq5PP\n"
    "3ozx4ck4J5o4PFPSpNpXLjkhJOhw5ZeceDM2QOlAx6pG6t5tARfzxsx1erETucrS\n"
    "uoMBj8isNgpnx4s7FmtKami50YIQARyif1RC8aPgDu4=\n"
    "-----END EC PRIVATE KEY-----\n";

static char *load_passphrase(void)
{
    g_autofree char *text = load_text("client-enc.pass");

    return g_strdup(g_strchomp(text));
}

static void expect_key_ok(const char *text, gsize len, const char *passphrase,
                          gboolean want_encrypted)
{
    g_autoptr(GError) error = NULL;
    gboolean encrypted = !want_encrypted;

    assert_ok(shimmer_keys_check_private_key(text, len, passphrase, &encrypted, &error), error);
    g_assert_cmpint(encrypted, ==, want_encrypted);
}

static void expect_key_failure(const char *text, gsize len, const char *passphrase,
                               const char *needle)
{
    g_autoptr(GError) error = NULL;
    gboolean encrypted = FALSE;
    gboolean ok = shimmer_keys_check_private_key(text, len, passphrase, &encrypted, &error);

    assert_fails(ok, error, needle);
}

/* client.key as SEC1 ("openssl ec"), which make-fixtures.sh does not produce.
 * GnuTLS cannot write it: its SEC1 export leaves out the curve. */
static const char sec1_key[] = "-----BEGIN EC PRIVATE KEY-----\n"
                               "MHcCAQEEIPjgB7Q/1zCC2GhiHxJ9SHWGBHOQOHDWoncZDm8snFJ9oAoGCCqGSM49\n"
                               "AwEHoUQDQgAESWR3EGYT77/gP26Qg3Xm15XnugkVr4B1hSeyU+CL3NfN4BNIu2t/\n"
                               "f5c2kdbtJ8xwc/jBU8r7p0uGOp/4fvkoVg==\n"
                               "-----END EC PRIVATE KEY-----\n";

static void test_private_key_plain(void)
{
    g_autofree char *client = load_text("client.key");
    g_autofree char *server = load_text("server.key");
    g_autofree char *rsa = load_text("rsa.key");
    g_autofree char *cert = load_text("client.crt");
    g_autofree char *cert_key = g_strconcat(cert, client, NULL);
    g_autofree char *key_cert = g_strconcat(client, cert, NULL);
    g_autofree char *crlf = replace(rsa, "\n", "\r\n", 0);

    g_assert_true(g_str_has_prefix(client, "-----BEGIN PRIVATE KEY-----"));
    g_assert_true(g_str_has_prefix(rsa, "-----BEGIN RSA PRIVATE KEY-----"));

    const char *keys[] = {client, server, rsa, sec1_key, cert_key, key_cert, crlf};
    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_test_message("key %" G_GSIZE_FORMAT, i);
        expect_key_ok(keys[i], strlen(keys[i]), NULL, FALSE);
        /* A passphrase for a plain key is not used, and not an error. */
        expect_key_ok(keys[i], strlen(keys[i]), "unused", FALSE);
    }

    /* ENCRYPTED is optional. */
    g_autoptr(GError) error = NULL;
    assert_ok(shimmer_keys_check_private_key(client, strlen(client), NULL, NULL, &error), error);
}

static void test_private_key_encrypted(void)
{
    g_autofree char *enc = load_text("client-enc.key");
    g_autofree char *pass = load_passphrase();
    g_autofree char *with_newline = g_strconcat(pass, "\n", NULL);
    g_autoptr(GError) error = NULL;
    gboolean encrypted = FALSE;
    gboolean ok;

    g_assert_cmpstr(pass, ==, "shimmer-test");
    g_assert_true(g_str_has_prefix(enc, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));

    /* Without a passphrase an encrypted key is accepted and flagged. */
    expect_key_ok(enc, strlen(enc), NULL, TRUE);
    expect_key_ok(enc, strlen(enc), pass, TRUE);
    expect_key_ok(trad_encrypted_key, strlen(trad_encrypted_key), NULL, TRUE);
    expect_key_ok(trad_encrypted_key, strlen(trad_encrypted_key), pass, TRUE);

    const char *wrong[] = {"wrong", "", "Shimmer-test", with_newline};
    for (gsize i = 0; i < G_N_ELEMENTS(wrong); i++) {
        expect_key_failure(enc, strlen(enc), wrong[i],
                           "private key is encrypted and the passphrase does not decrypt it");
        expect_key_failure(trad_encrypted_key, strlen(trad_encrypted_key), wrong[i],
                           "private key is encrypted and the passphrase does not decrypt it");
    }

    /* ENCRYPTED is reported even when the passphrase is wrong. */
    ok = shimmer_keys_check_private_key(enc, strlen(enc), "wrong", &encrypted, &error);
    g_assert_true(encrypted);
    assert_fails(ok, error, "passphrase");

    /* A damaged encrypted key is caught without the passphrase. */
    g_autofree char *line2 = nth_line(enc, 2);
    g_autofree char *broken = replace(enc, line2, "AAAA", 1);
    g_autofree char *truncated = drop_line(enc, 7);
    g_autofree char *no_dek = replace(
        trad_encrypted_key, "DEK-Info: AES-128-CBC,254B4BBF9855945FE05EF701B144A31A\n", "", 1);
    g_autofree char *trad_bad_b64 = replace(trad_encrypted_key, "SybogN5Y", "Sybog*5Y", 1);

    expect_key_failure(broken, strlen(broken), NULL, "encrypted private key does not decode");
    expect_key_failure(broken, strlen(broken), pass, "encrypted private key does not decode");
    expect_key_failure(truncated, strlen(truncated), NULL, "has no END line");
    expect_key_failure(no_dek, strlen(no_dek), NULL, "no DEK-Info header");
    expect_key_failure(trad_bad_b64, strlen(trad_bad_b64), NULL,
                       "invalid base64 character (line 5)");
}

static void test_private_key_bad(void)
{
    g_autofree char *client = load_text("client.key");
    g_autofree char *server = load_text("server.key");
    g_autofree char *cert = load_text("client.crt");
    g_autofree char *ca = load_text("ca.crt");
    g_autofree char *ta = load_text("ta.key");
    g_autofree char *two = g_strconcat(client, server, NULL);
    g_autofree char *garbage = g_strdup("-----BEGIN PRIVATE KEY-----\n"
                                        "bm90IGEga2V5\n"
                                        "-----END PRIVATE KEY-----\n");
    g_autofree char *truncated = g_strndup(client, strlen(client) - 30);
    g_autofree char *missing_line = drop_line(client, 3);
    g_autofree char *openssh = replace(client, "PRIVATE KEY", "OPENSSH PRIVATE KEY", 0);
    gsize der_len = 0;
    g_autofree guint8 *der = pem_body_decode(client, &der_len);

    expect_key_failure(cert, strlen(cert), NULL, "not a PEM private key: found a certificate");
    expect_key_failure(ca, strlen(ca), "x", "not a PEM private key: found a certificate");
    expect_key_failure(ta, strlen(ta), NULL, "found an OpenVPN static key");
    expect_key_failure(two, strlen(two), NULL, "more than one private key (lines 1 and 6)");
    expect_key_failure(garbage, strlen(garbage), NULL, "private key does not decode");
    expect_key_failure(missing_line, strlen(missing_line), NULL, "private key does not decode");
    expect_key_failure(truncated, strlen(truncated), NULL, "has no END line");
    expect_key_failure(openssh, strlen(openssh), NULL, "OpenSSH private keys are not supported");
    expect_key_failure((const char *)der, der_len, NULL, "looks like binary DER");
    expect_key_failure("", 0, NULL, "the data is empty");
    expect_key_failure("key\n", 4, NULL, "no \"-----BEGIN PRIVATE KEY-----\" line");
}

/* ---- CRLs ------------------------------------------------------------------------ */

static void test_crl(void)
{
    g_autofree char *crl = load_text("crl.pem");
    g_autofree char *ca = load_text("ca.crt");
    g_autofree char *two = g_strconcat(crl, crl, NULL);
    g_autofree char *with_ca = g_strconcat(ca, crl, NULL);
    g_autofree char *crlf = replace(crl, "\n", "\r\n", 0);
    g_autofree char *garbage = g_strdup("-----BEGIN X509 CRL-----\n"
                                        "bm90IGEgQ1JM\n"
                                        "-----END X509 CRL-----\n");
    g_autofree char *truncated = g_strndup(crl, strlen(crl) / 2);
    g_autofree char *missing_line = drop_line(crl, 2);
    g_autofree char *then_garbage = g_strconcat(crl, garbage, NULL);
    g_autoptr(GError) error = NULL;
    gboolean ok;

    g_assert_true(g_str_has_prefix(crl, "-----BEGIN X509 CRL-----"));
    const char *good[] = {crl, two, with_ca, crlf};
    for (gsize i = 0; i < G_N_ELEMENTS(good); i++)
        assert_ok(shimmer_keys_check_crl(good[i], strlen(good[i]), &error), error);

    ok = shimmer_keys_check_crl(garbage, strlen(garbage), &error);
    assert_fails(ok, error, "CRL 1 (line 1) does not decode");
    ok = shimmer_keys_check_crl(missing_line, strlen(missing_line), &error);
    assert_fails(ok, error, "CRL 1 (line 1) does not decode");
    ok = shimmer_keys_check_crl(then_garbage, strlen(then_garbage), &error);
    assert_fails(ok, error, "CRL 2 (line ");
    ok = shimmer_keys_check_crl(truncated, strlen(truncated), &error);
    assert_fails(ok, error, "has no END line");
    ok = shimmer_keys_check_crl(ca, strlen(ca), &error);
    assert_fails(ok, error, "not a PEM CRL: found a certificate");
    ok = shimmer_keys_check_crl("", 0, &error);
    assert_fails(ok, error, "the data is empty");
}

/* ---- PKCS#12 --------------------------------------------------------------------- */

static void test_pkcs12_good(void)
{
    gsize len = 0;
    gsize enc_len = 0;
    g_autofree char *der = load("client.p12", &len);
    g_autofree char *enc = load("client-enc.p12", &enc_len);
    g_autofree char *b64 = load_text("client.p12.b64");
    g_autofree char *b64_crlf = replace(b64, "\n", "\r\n", 0);
    g_autofree char *b64_indented = replace(b64, "\n", "\n    ", 0);
    g_autofree char *b64_one_line = g_base64_encode((const guint8 *)der, len);
    g_autoptr(GError) error = NULL;

    /* The base64 fixture is the DER fixture. */
    gsize decoded_len = 0;
    g_autofree guint8 *decoded = g_base64_decode(b64, &decoded_len);
    g_assert_cmpmem(decoded, decoded_len, der, len);

    assert_ok(shimmer_keys_check_pkcs12(der, len, FALSE, &error), error);
    assert_ok(shimmer_keys_check_pkcs12(enc, enc_len, FALSE, &error), error);

    const char *texts[] = {b64, b64_crlf, b64_indented, b64_one_line};
    for (gsize i = 0; i < G_N_ELEMENTS(texts); i++)
        assert_ok(shimmer_keys_check_pkcs12(texts[i], strlen(texts[i]), TRUE, &error), error);
}

static void expect_pkcs12_failure(const void *data, gsize len, gboolean is_base64,
                                  const char *needle)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = shimmer_keys_check_pkcs12(data, len, is_base64, &error);

    assert_fails(ok, error, needle);
}

static void test_pkcs12_bad(void)
{
    gsize len = 0;
    g_autofree char *der = load("client.p12", &len);
    g_autofree char *b64 = load_text("client.p12.b64");
    g_autofree char *cert = load_text("client.crt");
    g_autofree char *line3 = nth_line(b64, 3);
    g_autofree char *line3_star = g_strdup(line3);
    line3_star[5] = '*';
    g_autofree char *line3_minus = g_strdup(line3);
    line3_minus[5] = '-';
    g_autofree char *line3_short = g_strndup(line3, 61);
    g_autofree char *bad_star = replace(b64, line3, line3_star, 1);
    g_autofree char *bad_minus = replace(b64, line3, line3_minus, 1);
    g_autofree char *odd = replace(b64, line3, line3_short, 1);
    g_autofree char *missing_line = drop_line(b64, 3);
    g_autofree char *half = g_strndup(b64, 64 * 10 + 10);
    g_autofree char *pem =
        g_strconcat("-----BEGIN PKCS12-----\n", b64, "-----END PKCS12-----\n", NULL);

    expect_pkcs12_failure(bad_star, strlen(bad_star), TRUE, "invalid base64 character (line 3)");
    expect_pkcs12_failure(bad_minus, strlen(bad_minus), TRUE, "invalid base64 character (line 3)");
    expect_pkcs12_failure(odd, strlen(odd), TRUE, "not a multiple of 4");
    expect_pkcs12_failure(missing_line, strlen(missing_line), TRUE, "PKCS#12 data does not parse");
    expect_pkcs12_failure(half, strlen(half), TRUE, "PKCS#12 data does not parse");
    expect_pkcs12_failure(pem, strlen(pem), TRUE, "invalid base64 character (line 1)");
    expect_pkcs12_failure(cert, strlen(cert), TRUE, "invalid base64 character (line 1)");
    expect_pkcs12_failure("", 0, TRUE, "no base64 data");
    expect_pkcs12_failure(" \n\t\n", 4, TRUE, "no base64 data");

    /* DER and base64 mixed up. */
    expect_pkcs12_failure(der, len, TRUE, "invalid base64 character");
    expect_pkcs12_failure(b64, strlen(b64), FALSE, "the data is not DER (an inline");

    /* Damaged DER. */
    expect_pkcs12_failure(der, len / 2, FALSE, "PKCS#12 data does not parse");
    expect_pkcs12_failure(der, 2, FALSE, "PKCS#12 data does not parse");
    g_autofree char *flipped = g_memdup2(der, len);
    g_assert_cmpint(flipped[4], ==, 0x02); /* the version INTEGER */
    flipped[4] ^= 0xff;
    expect_pkcs12_failure(flipped, len, FALSE, "PKCS#12 data does not parse");
    /* The first bag's cipher OID: the outer layer imports, the bag does not. */
    g_autofree char *bag_oid = g_memdup2(der, len);
    g_assert_cmpint(bag_oid[38], ==, 0x06);
    bag_oid[38] = 0x04;
    expect_pkcs12_failure(bag_oid, len, FALSE, "its content is damaged");
    expect_pkcs12_failure(cert, strlen(cert), FALSE, "the data is not DER");
    expect_pkcs12_failure("", 0, FALSE, "PKCS#12 data is empty");
    expect_pkcs12_failure(NULL, 0, FALSE, "PKCS#12 data is empty");
}

/* ---- SHA-256 and fingerprints ------------------------------------------------------- */

static void test_sha256(void)
{
    g_autofree char *empty = shimmer_keys_sha256_hex(NULL, 0);
    g_autofree char *abc = shimmer_keys_sha256_hex("abc", 3);
    /* Two blocks (FIPS 180-2 example). */
    const char *msg2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    g_autofree char *two = shimmer_keys_sha256_hex(msg2, strlen(msg2));

    g_assert_cmpstr(empty, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    g_assert_cmpstr(abc, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    g_assert_cmpstr(two, ==, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The certificate fingerprint as GnuTLS computes it, against our digest and
 * the fingerprint parser. */
static void test_sha256_certificate(void)
{
    g_autofree char *pem = load_text("ca.crt");
    gnutls_datum_t in = {(unsigned char *)pem, (unsigned int)strlen(pem)};
    gnutls_datum_t der = {NULL, 0};
    gnutls_x509_crt_t crt;
    guint8 fp[32];
    size_t fp_len = sizeof fp;

    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fp_len), ==, 0);
    g_assert_cmpuint(fp_len, ==, 32);
    gnutls_x509_crt_deinit(crt);

    g_autofree char *hex = shimmer_keys_sha256_hex(der.data, der.size);
    gnutls_free(der.data);
    g_assert_cmpuint(strlen(hex), ==, 64);
    for (const char *p = hex; *p != '\0'; p++)
        g_assert_true(g_ascii_isdigit(*p) || (*p >= 'a' && *p <= 'f'));

    guint8 from_hex[32];
    hex_decode(hex, from_hex, sizeof from_hex);
    g_assert_cmpmem(from_hex, 32, fp, 32);

    /* The same digest in peer-fingerprint notation parses back to it. */
    GString *colons = g_string_new(NULL);
    for (gsize i = 0; i < 64; i += 2)
        g_string_append_printf(colons, "%s%.2s", i > 0 ? ":" : "", hex + i);
    g_autofree char *text = g_string_free(colons, FALSE);
    g_autofree char *upper = g_ascii_strup(text, -1);
    g_autoptr(GError) error = NULL;
    guint8 out[32];

    memset(out, 0, sizeof out);
    assert_ok(shimmer_keys_parse_fingerprint(text, out, &error), error);
    g_assert_cmpmem(out, 32, fp, 32);
    memset(out, 0, sizeof out);
    assert_ok(shimmer_keys_parse_fingerprint(upper, out, &error), error);
    g_assert_cmpmem(out, 32, fp, 32);
}

#define FP_GOOD                                                                                    \
    "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:"                                             \
    "0f:1e:2d:3c:4b:5a:69:78:87:96:A5:B4:C3:D2:E1:F0"

static void test_fingerprint_good(void)
{
    static const guint8 want[32] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
        0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a,
        0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
    };
    const char *texts[] = {FP_GOOD, "  " FP_GOOD, FP_GOOD "\r\n", "\t" FP_GOOD " \n"};
    g_autoptr(GError) error = NULL;
    guint8 out[32];

    for (gsize i = 0; i < G_N_ELEMENTS(texts); i++) {
        memset(out, 0x5a, sizeof out);
        assert_ok(shimmer_keys_parse_fingerprint(texts[i], out, &error), error);
        g_assert_cmpmem(out, sizeof out, want, sizeof want);
    }
}

static void expect_fingerprint_failure(const char *text, const char *needle)
{
    g_autoptr(GError) error = NULL;
    guint8 out[32];
    gboolean ok;

    memset(out, 0x5a, sizeof out);
    ok = shimmer_keys_parse_fingerprint(text, out, &error);
    g_assert_false(ok);
    g_assert_error(error, SHIMMER_KEYS_ERROR, 0);
    if (strstr(error->message, needle) == NULL)
        g_error("message \"%s\" does not contain \"%s\"", error->message, needle);
    for (gsize i = 0; i < sizeof out; i++)
        g_assert_cmpuint(out[i], ==, 0x5a);
}

static void test_fingerprint_bad(void)
{
    /* FP_GOOD is 95 characters: 32 pairs and 31 colons. */
    g_autofree char *short31 = g_strndup(FP_GOOD, 92);
    g_autofree char *long33 = g_strconcat(FP_GOOD, ":ab", NULL);
    g_autofree char *dashes = replace(FP_GOOD, ":", "-", 0);
    g_autofree char *spaces = replace(FP_GOOD, ":", " ", 0);
    g_autofree char *one_dash = replace(FP_GOOD, "77:", "77-", 1);
    g_autofree char *no_sep = replace(FP_GOOD, ":", "", 0);
    g_autofree char *trailing = g_strconcat(FP_GOOD, ":", NULL);
    g_autofree char *leading = g_strconcat(":", FP_GOOD, NULL);
    g_autofree char *double_colon = replace(FP_GOOD, "33:", "33::", 1);
    g_autofree char *non_hex = replace(FP_GOOD, "88", "8g", 1);
    g_autofree char *single_digit = replace(FP_GOOD, "0f:", "f:", 1);
    g_autofree char *triple_digit = replace(FP_GOOD, "0f:", "0f0:", 1);
    g_autofree char *inner_space = replace(FP_GOOD, "aa:", "aa: ", 1);
    const char *sha1 = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33";

    expect_fingerprint_failure(short31, "expected 32 bytes (SHA-256), found 31");
    expect_fingerprint_failure(long33, "expected 32 bytes (SHA-256), found 33");
    expect_fingerprint_failure(sha1, "found 20");
    expect_fingerprint_failure(dashes, "expected ':' after each pair of hex digits (column 3)");
    expect_fingerprint_failure(spaces, "expected ':' after each pair of hex digits (column 3)");
    expect_fingerprint_failure(one_dash, "(column 24)");
    expect_fingerprint_failure(no_sep, "expected ':' after each pair of hex digits (column 3)");
    expect_fingerprint_failure(trailing, "ends with ':'");
    expect_fingerprint_failure(leading, "expected two hex digits at column 1");
    expect_fingerprint_failure(double_colon, "expected two hex digits at column 13");
    expect_fingerprint_failure(non_hex, "expected two hex digits at column 25");
    expect_fingerprint_failure(single_digit, "expected two hex digits at column 49");
    expect_fingerprint_failure(triple_digit, "expected ':' after each pair");
    expect_fingerprint_failure(inner_space, "expected two hex digits");
    expect_fingerprint_failure("", "peer fingerprint is empty");
    expect_fingerprint_failure(" \r\n", "peer fingerprint is empty");
    expect_fingerprint_failure("a", "expected two hex digits at column 1");
}

/* ---- Limits -------------------------------------------------------------------------- */

/* Inputs over the 64 MiB cap are refused before they are read. */
static void test_oversize(void)
{
    const gsize len = (gsize)64 * 1024 * 1024 + 1;
    g_autofree char *big = g_malloc(len);
    g_autoptr(GError) error = NULL;
    guint8 key[SHIMMER_STATIC_KEY_LEN];
    guint8 server[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];
    ShimmerTlsCryptV2ClientKey client;
    gboolean ok;

    ok = shimmer_keys_parse_static(big, len, key, &error);
    assert_fails(ok, error, "too large (67108865 bytes)");
    ok = shimmer_keys_parse_tls_crypt_v2_client(big, len, &client, &error);
    assert_fails(ok, error, "too large");
    ok = shimmer_keys_parse_tls_crypt_v2_server(big, len, server, &error);
    assert_fails(ok, error, "too large");
    ok = shimmer_keys_check_certs(big, len, FALSE, NULL, &error);
    assert_fails(ok, error, "too large");
    ok = shimmer_keys_check_private_key(big, len, NULL, NULL, &error);
    assert_fails(ok, error, "too large");
    ok = shimmer_keys_check_crl(big, len, &error);
    assert_fails(ok, error, "too large");
    ok = shimmer_keys_check_pkcs12(big, len, FALSE, &error);
    assert_fails(ok, error, "too large");
    g_assert_cmpint(shimmer_keys_tls_crypt_v2_kind(big, len), ==, 0);
}

/* ---- Main --------------------------------------------------------------------------- */

static void test_error_quark(void)
{
    g_assert_cmpstr(g_quark_to_string(SHIMMER_KEYS_ERROR), ==, "shimmer-keys-error-quark");
}

/* ---- Peer certificate usage (ns-cert-type, remote-cert-ku/eku/tls) ------- */

static gnutls_x509_crt_t load_usage_cert(const char *name)
{
    g_autofree char *rel = g_strdup_printf("usage/%s.crt", name);
    gsize len;
    g_autofree char *pem = load(rel, &len);
    gnutls_x509_crt_t crt;
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)len};
    g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), ==, 0);
    return crt;
}

static ShimmerConfig *usage_config(const char *directive)
{
    g_autofree char *text = g_strdup_printf(
        "client\ndev tun\nremote vpn.example.net\npeer-fingerprint "
        "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:"
        "dd:ee:ff\n%s\n",
        directive);
    ShimmerConfig *cfg = shimmer_config_parse("u.ovpn", NULL, text, strlen(text), NULL, NULL);
    if (shimmer_config_has_errors(cfg)) {
        GString *d = g_string_new(NULL);
        shimmer_config_format_diagnostics(cfg, d);
        g_error("'%s' does not parse:\n%s", directive, d->str);
    }
    return cfg;
}

/* Expected results are OpenVPN 2.6's (OpenSSL's purpose check, then the
 * Netscape-type fallback for ns-cert-type); `openssl verify -purpose
 * sslserver` agrees on the purpose part for every fixture. */
static void test_cert_usage(void)
{
    static const struct {
        const char *directive;
        const char *cert;
        gboolean ok;
        const char *why; /* part of the error when !ok */
    } cases[] = {
        /* ns-cert-type server */
        {"ns-cert-type server", "ns-server", TRUE, NULL},
        {"ns-cert-type server", "server", TRUE, NULL},
        {"ns-cert-type server", "no-usage", TRUE, NULL},
        {"ns-cert-type server", "ns-server-eku-client", TRUE, NULL}, /* the fallback */
        {"ns-cert-type server", "ns-client", FALSE, "not for an SSL server"},
        {"ns-cert-type server", "client", FALSE, "not for an SSL server"},
        {"ns-cert-type server", "certsign-only", FALSE, "not for an SSL server"},
        {"ns-cert-type server", "ns-client-eku-server", FALSE, "not for an SSL server"},
        {"ns-cert-type server", "codesign", FALSE, "not for an SSL server"},
        /* ns-cert-type client */
        {"ns-cert-type client", "ns-client", TRUE, NULL},
        {"ns-cert-type client", "client", TRUE, NULL},
        {"ns-cert-type client", "no-usage", TRUE, NULL},
        {"ns-cert-type client", "ns-client-eku-server", TRUE, NULL}, /* the fallback */
        {"ns-cert-type client", "ns-server", FALSE, "not for an SSL client"},
        {"ns-cert-type client", "server", FALSE, "not for an SSL client"},
        {"ns-cert-type client", "ns-server-eku-client", FALSE, "not for an SSL client"},
        /* remote-cert-ku: one value's bits all present */
        {"remote-cert-ku a0", "server", TRUE, NULL},
        {"remote-cert-ku 80", "server", TRUE, NULL},
        {"remote-cert-ku 0x20", "server", TRUE, NULL},
        {"remote-cert-ku 88", "server", FALSE, "key usage is a0, not one of 88"},
        {"remote-cert-ku 88 a0", "server", TRUE, NULL},
        {"remote-cert-ku 88", "client", TRUE, NULL},
        {"remote-cert-ku a0 a8", "client", FALSE, "key usage is 88, not one of a0, a8"},
        {"remote-cert-ku 04", "certsign-only", TRUE, NULL},
        {"remote-cert-ku", "certsign-only", TRUE, NULL},
        {"remote-cert-ku", "ns-server", FALSE, "no key usage extension"},
        {"remote-cert-ku 80", "no-usage", FALSE, "no key usage extension"},
        /* remote-cert-eku: OID or OpenSSL's long name */
        {"remote-cert-eku \"TLS Web Server Authentication\"", "server", TRUE, NULL},
        {"remote-cert-eku 1.3.6.1.5.5.7.3.1", "server", TRUE, NULL},
        {"remote-cert-eku 1.3.6.1.5.5.7.3.1", "client", FALSE, "1.3.6.1.5.5.7.3.2"},
        {"remote-cert-eku \"Code Signing\"", "codesign", TRUE, NULL},
        {"remote-cert-eku 1.3.6.1.5.5.7.3.3", "codesign", TRUE, NULL},
        {"remote-cert-eku serverAuth", "server", FALSE, "does not include serverAuth"},
        {"remote-cert-eku 1.3.6.1.5.5.7.3.1", "ns-server", FALSE, "no extended key usage"},
        /* remote-cert-tls: a key usage present and the EKU */
        {"remote-cert-tls server", "server", TRUE, NULL},
        {"remote-cert-tls server", "client", FALSE, "remote-cert-tls server"},
        {"remote-cert-tls server", "ns-server", FALSE, "no key usage extension"},
        {"remote-cert-tls client", "client", TRUE, NULL},
        {"remote-cert-tls client", "revoked", TRUE, NULL},
        /* Nothing asked: nothing checked. */
        {"verb 3", "codesign", TRUE, NULL},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(ShimmerConfig) cfg = usage_config(cases[i].directive);
        gnutls_x509_crt_t crt = load_usage_cert(cases[i].cert);
        g_autoptr(GError) error = NULL;
        ShimmerCertUsage usage;
        shimmer_config_get_cert_usage(cfg, &usage);
        gboolean ok = shimmer_keys_check_cert_usage(&usage, crt, &error);
        if (ok != cases[i].ok)
            g_error("'%s' with %s: expected %s, got %s", cases[i].directive, cases[i].cert,
                    cases[i].ok ? "success" : "failure", error ? error->message : "success");
        if (!ok) {
            g_assert_error(error, SHIMMER_KEYS_ERROR, 0);
            if (strstr(error->message, cases[i].why) == NULL)
                g_error("'%s' with %s: '%s' lacks '%s'", cases[i].directive, cases[i].cert,
                        error->message, cases[i].why);
        }
        gnutls_x509_crt_deinit(crt);
    }
    /* The main test PKI's server certificate (critical KU 88, serverAuth). */
    g_autoptr(ShimmerConfig) all = usage_config("ns-cert-type server\nremote-cert-ku 88\n"
                                                "remote-cert-eku 1.3.6.1.5.5.7.3.1\n"
                                                "remote-cert-tls server");
    gsize len;
    g_autofree char *pem = load("server.crt", &len);
    gnutls_x509_crt_t crt;
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)len};
    g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), ==, 0);
    ShimmerCertUsage all_usage;
    shimmer_config_get_cert_usage(all, &all_usage);
    g_assert_true(shimmer_keys_check_cert_usage(&all_usage, crt, NULL));
    gnutls_x509_crt_deinit(crt);
}

static void test_cert_usage_parse_errors(void)
{
    static const struct {
        const char *line;
        const char *error;
    } cases[] = {
        {"ns-cert-type both", "'ns-cert-type': 'both' is not 'server' or 'client'"},
        {"remote-cert-ku xyz", "'remote-cert-ku': 'xyz' is not a hexadecimal"},
        {"remote-cert-ku 0", "'0' can never match"},
        {"remote-cert-ku 8000", "'8000' can never match"},
        {"remote-cert-ku 12345", "'12345' is not a hexadecimal"},
        {"remote-cert-eku", "needs 1 argument"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text =
            g_strdup_printf("client\ndev tun\nremote x.example\n%s\n", cases[i].line);
        g_autoptr(ShimmerConfig) cfg =
            shimmer_config_parse("e.ovpn", NULL, text, strlen(text), NULL, NULL);
        GString *d = g_string_new(NULL);
        shimmer_config_format_diagnostics(cfg, d);
        if (strstr(d->str, cases[i].error) == NULL || strstr(d->str, "e.ovpn:4: error:") == NULL)
            g_error("'%s': expected '%s' at line 4 in:\n%s", cases[i].line, cases[i].error, d->str);
        g_string_free(d, TRUE);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/keys/error-quark", test_error_quark);
    g_test_add_func("/keys/static/fixtures", test_static_fixtures);
    g_test_add_func("/keys/static/tolerant", test_static_tolerant);
    g_test_add_func("/keys/static/digit-count", test_static_digit_count);
    g_test_add_func("/keys/static/bad-chars", test_static_bad_chars);
    g_test_add_func("/keys/static/markers", test_static_markers);
    g_test_add_func("/keys/tls-crypt-v2/client-fixture", test_tc_v2_client_fixture);
    g_test_add_func("/keys/tls-crypt-v2/server-fixture", test_tc_v2_server_fixture);
    g_test_add_func("/keys/tls-crypt-v2/kind", test_tc_v2_kind);
    g_test_add_func("/keys/tls-crypt-v2/client-lengths", test_tc_v2_client_lengths);
    g_test_add_func("/keys/tls-crypt-v2/client-broken", test_tc_v2_client_broken);
    g_test_add_func("/keys/tls-crypt-v2/server-broken", test_tc_v2_server_broken);
    g_test_add_func("/keys/certs/good", test_certs_good);
    g_test_add_func("/keys/certs/bad", test_certs_bad);
    g_test_add_func("/keys/private-key/plain", test_private_key_plain);
    g_test_add_func("/keys/private-key/encrypted", test_private_key_encrypted);
    g_test_add_func("/keys/private-key/bad", test_private_key_bad);
    g_test_add_func("/keys/crl", test_crl);
    g_test_add_func("/keys/pkcs12/good", test_pkcs12_good);
    g_test_add_func("/keys/pkcs12/bad", test_pkcs12_bad);
    g_test_add_func("/keys/sha256/vectors", test_sha256);
    g_test_add_func("/keys/sha256/certificate", test_sha256_certificate);
    g_test_add_func("/keys/fingerprint/good", test_fingerprint_good);
    g_test_add_func("/keys/fingerprint/bad", test_fingerprint_bad);
    g_test_add_func("/keys/oversize", test_oversize);
    g_test_add_func("/keys/cert-usage", test_cert_usage);
    g_test_add_func("/keys/cert-usage/parse-errors", test_cert_usage_parse_errors);

    return g_test_run();
}
