/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for proxy.h: the HTTP CONNECT and SOCKS5 negotiations driven
 * byte by byte, against well-behaved, malformed and hostile proxy answers,
 * the Digest response against the published examples of RFC 2617 and
 * RFC 7616, and the SOCKS5 UDP header. The real proxies (tinyproxy, dante,
 * microsocks) are in tests/lab/test_proxy.py.
 */
#include <string.h>

#include "proxy.h"

static const guint8 RANDOM[SHIMMER_PROXY_RANDOM_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                        9, 10, 11, 12, 13, 14, 15, 16};

static void header_free(gpointer p)
{
    ShimmerHttpHeader *h = p;
    g_free(h->name);
    g_free(h->content);
    g_free(h);
}

static ShimmerProxy *proxy_new(ShimmerProxyType type, ShimmerProxyAuth auth, const char *user,
                               const char *pass)
{
    ShimmerProxy *p = g_new0(ShimmerProxy, 1);
    p->type = type;
    p->host = g_strdup("proxy.example");
    p->port = type == SHIMMER_PROXY_HTTP ? 3128 : 1080;
    p->auth = auth;
    p->username = g_strdup(user);
    p->password = g_strdup(pass);
    p->custom_headers = g_ptr_array_new_with_free_func(header_free);
    return p;
}

static void add_header(ShimmerProxy *p, const char *name, const char *content)
{
    ShimmerHttpHeader *h = g_new0(ShimmerHttpHeader, 1);
    h->name = g_strdup(name);
    h->content = g_strdup(content);
    g_ptr_array_add(p->custom_headers, h);
}

/* The pending bytes as a string, then marked sent. */
static char *take(ShimmerProxyClient *c)
{
    gsize len;
    const guint8 *d = shimmer_proxy_client_pending(c, &len);
    char *s = g_strndup((const char *)d, len);
    shimmer_proxy_client_sent(c, len);
    return s;
}

static GBytes *take_bytes(ShimmerProxyClient *c)
{
    gsize len;
    const guint8 *d = shimmer_proxy_client_pending(c, &len);
    GBytes *b = g_bytes_new(d, len);
    shimmer_proxy_client_sent(c, len);
    return b;
}

static ShimmerProxyStatus feed_str(ShimmerProxyClient *c, const char *s, gsize *used,
                                   GError **error)
{
    return shimmer_proxy_client_feed(c, (const guint8 *)s, strlen(s), used, error);
}

/* Feeds LEN bytes one at a time: the answer to every split is the same. */
static ShimmerProxyStatus feed_bytewise(ShimmerProxyClient *c, const guint8 *d, gsize len,
                                        gsize *used_total, GError **error)
{
    ShimmerProxyStatus st = SHIMMER_PROXY_STATUS_WANT_MORE;
    *used_total = 0;
    for (gsize i = 0; i < len; i++) {
        gsize used = 0;
        st = shimmer_proxy_client_feed(c, d + i, 1, &used, error);
        *used_total += used;
        if (st != SHIMMER_PROXY_STATUS_WANT_MORE)
            break;
    }
    return st;
}

/* ---------- HTTP ---------- */

static void test_http_plain(void)
{
    g_autoptr(ShimmerProxy) p = proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "vpn.example.org", 1194, SHIMMER_PROXY_CONNECT_TCP, &error);
    g_assert_no_error(error);
    gsize len;
    shimmer_proxy_client_pending(c, &len);
    g_assert_cmpuint(len, ==, 0);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autofree char *req = take(c);
    g_assert_cmpstr(req, ==,
                    "CONNECT vpn.example.org:1194 HTTP/1.0\r\n"
                    "Host: vpn.example.org:1194\r\n"
                    "\r\n");
    g_assert_cmpstr(shimmer_proxy_client_get_auth_name(c), ==, "none");
    /* The server's first bytes may come in the same read as the answer. */
    const char *answer = "HTTP/1.0 200 Connection established\r\n"
                         "Proxy-agent: tinyproxy/1.11.1\r\n\r\n";
    g_autoptr(GByteArray) both = g_byte_array_new();
    g_byte_array_append(both, (const guint8 *)answer, (guint)strlen(answer));
    g_byte_array_append(both, (const guint8 *)"\x00\x2a\x38", 3);
    gsize used = 0;
    ShimmerProxyStatus st = shimmer_proxy_client_feed(c, both->data, both->len, &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
    g_assert_cmpuint(used, ==, strlen(answer));
    ShimmerSocksAddr relay;
    g_assert_false(shimmer_proxy_client_get_relay(c, &relay));
}

static void test_http_bytewise(void)
{
    g_autoptr(ShimmerProxy) p = proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "10.1.2.3", 443, SHIMMER_PROXY_CONNECT_TCP, &error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_free(take(c));
    /* Bare LF line ends, a folded header, and a 1xx before the answer. */
    const char *answer = "HTTP/1.1 100 Continue\r\n\r\n"
                         "HTTP/1.1 200 OK\nVia: a,\n  b\n\nDATA";
    gsize used = 0;
    ShimmerProxyStatus st = feed_bytewise(c, (const guint8 *)answer, strlen(answer), &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
    g_assert_cmpuint(used, ==, strlen(answer) - 4);
    /* Once done it takes nothing more. */
    st = feed_str(c, "DATA", &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
    g_assert_cmpuint(used, ==, 0);
}

static void test_http_options(void)
{
    g_autoptr(ShimmerProxy) p = proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    p->http_version = g_strdup("1.1");
    p->user_agent = g_strdup("Mozilla/5.0 (Shimmer)");
    add_header(p, "X-Corp", "blue team");
    add_header(p, "X-Whole: one line", NULL);
    add_header(p, "host", "front.example:443");
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "2001:db8::7", 1194, SHIMMER_PROXY_CONNECT_TCP, &error);
    g_assert_no_error(error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autofree char *req = take(c);
    /* The custom Host replaces ours; an IPv6 address goes in brackets. */
    g_assert_cmpstr(req, ==,
                    "CONNECT [2001:db8::7]:1194 HTTP/1.1\r\n"
                    "X-Corp: blue team\r\n"
                    "X-Whole: one line\r\n"
                    "host: front.example:443\r\n"
                    "User-Agent: Mozilla/5.0 (Shimmer)\r\n"
                    "\r\n");
}

static void test_http_basic(void)
{
    g_autoptr(ShimmerProxy) p =
        proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_BASIC, "Aladdin", "open sesame");
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "vpn.example.org", 1194, SHIMMER_PROXY_CONNECT_TCP, &error);
    g_assert_no_error(error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autofree char *req = take(c);
    /* RFC 7617's example credentials, sent with the first request. */
    g_assert_nonnull(
        strstr(req, "\r\nProxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"));
    g_assert_true(g_str_has_suffix(req, "\r\n\r\n"));
    g_assert_cmpstr(shimmer_proxy_client_get_auth_name(c), ==, "basic");
    gsize used;
    ShimmerProxyStatus st = feed_str(c,
                                     "HTTP/1.0 407 Proxy Authentication Required\r\n"
                                     "Proxy-Authenticate: Basic realm=\"corp\"\r\n\r\n",
                                     &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
    g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH);
    g_assert_nonnull(strstr(error->message, "refused the user name or password"));
    g_assert_nonnull(strstr(error->message, "'HTTP/1.0 407 Proxy Authentication Required'"));
    g_assert_null(strstr(error->message, "sesame"));
    g_assert_null(strstr(error->message, "QWxh"));
    /* tinyproxy answers wrong credentials with 401: a refusal too. */
    g_autoptr(ShimmerProxyClient) c401 =
        shimmer_proxy_client_new(p, "vpn.example.org", 1194, SHIMMER_PROXY_CONNECT_TCP, NULL);
    shimmer_proxy_client_begin(c401, RANDOM);
    g_autoptr(GError) e401 = NULL;
    st = feed_str(c401, "HTTP/1.0 401 Unauthorized\r\n\r\n", &used, &e401);
    g_assert_error(e401, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH);
    g_assert_nonnull(strstr(e401->message, "'HTTP/1.0 401 Unauthorized'"));
    /* A failed negotiation takes nothing more. */
    g_clear_error(&error);
    st = feed_str(c, "HTTP/1.0 200 OK\r\n\r\n", &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
}

static void test_http_auto_basic(void)
{
    g_autoptr(ShimmerProxy) p =
        proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_AUTO, "user", "secret-pw");
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "vpn.example.org", 443, SHIMMER_PROXY_CONNECT_TCP, &error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autofree char *first = take(c);
    g_assert_null(strstr(first, "Proxy-Authorization"));
    gsize used;
    /* Several challenges in two headers; NTLM and Negotiate are skipped. */
    ShimmerProxyStatus st = feed_str(c,
                                     "HTTP/1.1 407 Proxy Authentication Required\r\n"
                                     "Proxy-Authenticate: NTLM\r\n"
                                     "Proxy-Authenticate: Negotiate YIIBhQYGKwYBBQUCoIIBeTCC==, "
                                     "Basic realm=\"Squid\"\r\n"
                                     "Content-Length: 3\r\n\r\nabc",
                                     &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_RECONNECT);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autofree char *second = take(c);
    g_assert_nonnull(strstr(second, "Proxy-Authorization: Basic dXNlcjpzZWNyZXQtcHc=\r\n"));
    st = feed_str(c, "HTTP/1.1 200 Connection established\r\n\r\n", &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
}

static void test_http_auto_nct(void)
{
    g_autoptr(ShimmerProxy) p =
        proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_AUTO_NCT, "user", "pw");
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "vpn.example.org", 443, SHIMMER_PROXY_CONNECT_TCP, &error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_free(take(c));
    gsize used;
    ShimmerProxyStatus st = feed_str(c,
                                     "HTTP/1.1 407 Denied\r\n"
                                     "Proxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
                                     &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
    g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH);
    g_assert_nonnull(strstr(error->message, "clear text"));
}

/* Digest with the values of a challenge: the header must carry the
 * response that the published algorithm gives for them. */
static void test_http_auto_digest(void)
{
    g_autoptr(ShimmerProxy) p =
        proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_AUTO_NCT, "Mufasa", "Circle of Life");
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "vpn.example.org", 1194, SHIMMER_PROXY_CONNECT_TCP, &error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_free(take(c));
    gsize used;
    ShimmerProxyStatus st = feed_str(
        c,
        "HTTP/1.1 407 Proxy Authentication Required\r\n"
        "Proxy-Authenticate: Basic realm=\"a\", Digest realm=\"corp \\\"proxy\\\"\", "
        "nonce=\"n0nce\", qop=\"auth-int, auth\", opaque=\"0p\", algorithm=MD5-sess\r\n\r\n",
        &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_RECONNECT);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autofree char *req = take(c);
    g_assert_cmpstr(shimmer_proxy_client_get_auth_name(c), ==, "digest");
    const char *cnonce = "0102030405060708090a0b0c0d0e0f10";
    char expect[65];
    g_assert_true(shimmer_proxy_digest_response("MD5-sess", "Mufasa", "corp \"proxy\"",
                                                "Circle of Life", "n0nce", "00000001", cnonce,
                                                "auth", "CONNECT", "vpn.example.org:1194", expect));
    g_autofree char *line = g_strdup_printf(
        "Proxy-Authorization: Digest username=\"Mufasa\", realm=\"corp \\\"proxy\\\"\", "
        "nonce=\"n0nce\", uri=\"vpn.example.org:1194\", algorithm=MD5-sess, response=\"%s\", "
        "qop=auth, nc=00000001, cnonce=\"%s\", opaque=\"0p\"\r\n",
        expect, cnonce);
    g_assert_nonnull(strstr(req, line));
    g_assert_null(strstr(req, "Circle"));

    /* A stale nonce is answered once more; then it is a refusal. */
    const char *stale = "HTTP/1.1 407 Stale\r\n"
                        "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n2\", stale=true\r\n\r\n";
    st = feed_str(c, stale, &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_RECONNECT);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autofree char *again = take(c);
    g_assert_nonnull(strstr(again, "nonce=\"n2\""));
    g_assert_null(strstr(again, "qop="));
    st = feed_str(c, stale, &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
    g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH);
}

static void test_http_auth_refusals(void)
{
    struct {
        ShimmerProxyAuth auth;
        const char *user, *pass;
        const char *challenge;
        const char *says;
    } cases[] = {
        {SHIMMER_PROXY_AUTH_NONE, NULL, NULL, "Basic realm=\"x\"", "gives none"},
        {SHIMMER_PROXY_AUTH_AUTO, NULL, NULL, "Basic realm=\"x\"", "http-proxy-user-pass"},
        {SHIMMER_PROXY_AUTH_AUTO, "u", "p", "NTLM", "NTLM is deprecated"},
        {SHIMMER_PROXY_AUTH_AUTO, "u", "p", "Digest realm=\"x\", nonce=\"y\", algorithm=SHA-512",
         "does not do"},
        {SHIMMER_PROXY_AUTH_AUTO, "u", "p", "Digest realm=\"x\"", "does not do"},
        {SHIMMER_PROXY_AUTH_AUTO, "u", "p", NULL, "no scheme"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("case %" G_GSIZE_FORMAT, i);
        g_autoptr(ShimmerProxy) p =
            proxy_new(SHIMMER_PROXY_HTTP, cases[i].auth, cases[i].user, cases[i].pass);
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerProxyClient) c =
            shimmer_proxy_client_new(p, "s.example", 1, SHIMMER_PROXY_CONNECT_TCP, &error);
        g_assert_no_error(error);
        shimmer_proxy_client_begin(c, RANDOM);
        g_free(take(c));
        g_autofree char *answer = g_strdup_printf(
            "HTTP/1.0 407 Auth\r\n%s%s%s\r\n", cases[i].challenge ? "Proxy-Authenticate: " : "",
            cases[i].challenge ? cases[i].challenge : "", cases[i].challenge ? "\r\n" : "");
        gsize used;
        ShimmerProxyStatus st = feed_str(c, answer, &used, &error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
        g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH);
        g_assert_nonnull(strstr(error->message, cases[i].says));
    }
}

static void test_http_hostile(void)
{
    struct {
        const char *answer;
        gsize len; /* 0: strlen */
        ShimmerProxyError code;
        const char *says;
    } cases[] = {
        {"HTTP/1.1 403 Forbidden\r\n\r\n", 0, SHIMMER_PROXY_ERROR_REFUSED,
         "answered 'HTTP/1.1 403 Forbidden'"},
        {"HTTP/1.0 502 Bad \x1b[31mGateway\r\n\r\n", 0, SHIMMER_PROXY_ERROR_REFUSED,
         "'HTTP/1.0 502 Bad \\x1b[31mGateway'"},
        {"HTTP/1.1 201 Created\r\n\r\n", 0, SHIMMER_PROXY_ERROR_REFUSED, "201"},
        {"SSH-2.0-OpenSSH_9.2\r\n\r\n", 0, SHIMMER_PROXY_ERROR_PROTOCOL, "not HTTP"},
        {"HTTP/1.1 20 OK\r\n\r\n", 0, SHIMMER_PROXY_ERROR_PROTOCOL, "not HTTP"},
        {"HTTP/1.1 2000 OK\r\n\r\n", 0, SHIMMER_PROXY_ERROR_PROTOCOL, "not HTTP"},
        {"HTTP/x.1 200 OK\r\n\r\n", 0, SHIMMER_PROXY_ERROR_PROTOCOL, "not HTTP"},
        {"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27, SHIMMER_PROXY_ERROR_PROTOCOL, "NUL"},
        {"\r\n\r\n", 0, SHIMMER_PROXY_ERROR_PROTOCOL, "empty line"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("case %" G_GSIZE_FORMAT, i);
        g_autoptr(ShimmerProxy) p =
            proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerProxyClient) c =
            shimmer_proxy_client_new(p, "s.example", 1, SHIMMER_PROXY_CONNECT_TCP, &error);
        shimmer_proxy_client_begin(c, RANDOM);
        g_free(take(c));
        gsize len = cases[i].len ? cases[i].len : strlen(cases[i].answer);
        gsize used;
        ShimmerProxyStatus st =
            shimmer_proxy_client_feed(c, (const guint8 *)cases[i].answer, len, &used, &error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
        g_assert_error(error, SHIMMER_PROXY_ERROR, (gint)cases[i].code);
        g_assert_nonnull(strstr(error->message, cases[i].says));
        /* No raw control character reaches a message. */
        for (const char *m = error->message; *m; m++)
            g_assert_cmpint((guchar)*m, >=, 0x20);
    }
}

static void test_http_oversized(void)
{
    g_autoptr(ShimmerProxy) p = proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "s.example", 1, SHIMMER_PROXY_CONNECT_TCP, &error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_free(take(c));
    /* A truncated answer only waits for more... */
    gsize used;
    ShimmerProxyStatus st = feed_str(c, "HTTP/1.1 200 OK\r\nServer: x", &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_WANT_MORE);
    g_assert_cmpuint(used, ==, 26);
    /* ...but never past the bound, however it arrives. */
    gsize n = 3 * SHIMMER_PROXY_HTTP_MAX_HEADER;
    g_autofree guint8 *junk = g_malloc(n);
    memset(junk, 'a', n);
    st = shimmer_proxy_client_feed(c, junk, n, &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
    g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(error->message, "no end within 8192 bytes"));
    g_assert_cmpuint(used, <=, SHIMMER_PROXY_HTTP_MAX_HEADER);

    /* Unsolicited bytes before begin(). */
    g_autoptr(ShimmerProxyClient) d =
        shimmer_proxy_client_new(p, "s.example", 1, SHIMMER_PROXY_CONNECT_TCP, NULL);
    g_clear_error(&error);
    st = feed_str(d, "HTTP/1.0 200 OK\r\n\r\n", &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
}

static void test_check(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxy) h = proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    g_assert_true(shimmer_proxy_check(h, FALSE, &error));
    g_assert_false(shimmer_proxy_check(h, TRUE, &error));
    g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED);
    g_assert_null(shimmer_proxy_client_new(h, "x", 1, SHIMMER_PROXY_ASSOCIATE_UDP, NULL));
    g_clear_error(&error);

    h->auth = SHIMMER_PROXY_AUTH_NTLM2;
    g_assert_false(shimmer_proxy_check(h, FALSE, &error));
    g_assert_nonnull(strstr(error->message, "ntlm2"));
    g_clear_error(&error);

    h->auth = SHIMMER_PROXY_AUTH_BASIC;
    h->auth_prompt = TRUE;
    g_assert_false(shimmer_proxy_check(h, FALSE, &error));
    g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH);
    g_assert_nonnull(strstr(error->message, "stdin"));
    g_clear_error(&error);

    h->username = g_strdup("a:b");
    h->password = g_strdup("pw");
    g_assert_false(shimmer_proxy_check(h, FALSE, &error));
    g_clear_error(&error);
    g_free(h->username);
    h->username = g_strdup("ab");
    g_assert_true(shimmer_proxy_check(h, FALSE, &error));
    g_free(h->password);
    h->password = g_strdup("p\r\nX-Evil: 1");
    g_assert_false(shimmer_proxy_check(h, FALSE, &error));
    g_clear_error(&error);

    g_autofree char *longname = g_strnfill(256, 'u');
    g_autoptr(ShimmerProxy) s =
        proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_BASIC, longname, "pw");
    g_assert_false(shimmer_proxy_check(s, TRUE, &error));
    g_assert_nonnull(strstr(error->message, "RFC 1929"));
    g_clear_error(&error);
    s->username[255] = '\0';
    g_assert_true(shimmer_proxy_check(s, TRUE, &error));

    /* Requests stay bounded: the profile's headers and credentials too. */
    g_autoptr(ShimmerProxy) big =
        proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    g_autofree char *huge = g_strnfill(20000, 'x');
    add_header(big, "X-Big", huge);
    g_assert_false(shimmer_proxy_check(big, FALSE, &error));
    g_assert_nonnull(strstr(error->message, "more than 16384 bytes"));
    g_clear_error(&error);
    g_autoptr(ShimmerProxy) bigpw =
        proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_BASIC, "u", huge);
    g_assert_false(shimmer_proxy_check(bigpw, FALSE, &error));
    g_clear_error(&error);

    /* Targets the request line could not carry. */
    g_autoptr(ShimmerProxy) n = proxy_new(SHIMMER_PROXY_HTTP, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    const char *bad[] = {"", "a b", "a\r\nX: y", "a/b", "user@host"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_null(shimmer_proxy_client_new(n, bad[i], 1, SHIMMER_PROXY_CONNECT_TCP, &error));
        g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED);
        g_clear_error(&error);
    }
    g_assert_null(shimmer_proxy_client_new(n, "ok", 0, SHIMMER_PROXY_CONNECT_TCP, &error));
    g_clear_error(&error);
}

/* RFC 2617 section 3.5 and RFC 7616 section 3.9.1. */
static void test_digest_vectors(void)
{
    char out[65];
    g_assert_true(shimmer_proxy_digest_response(NULL, "Mufasa", "testrealm@host.com",
                                                "Circle Of Life",
                                                "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
                                                "0a4f113b", "auth", "GET", "/dir/index.html", out));
    g_assert_cmpstr(out, ==, "6629fae49393a05397450978507c4ef1");
    const char *nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const char *cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    g_assert_true(shimmer_proxy_digest_response("MD5", "Mufasa", "http-auth@example.org",
                                                "Circle of Life", nonce, "00000001", cnonce, "auth",
                                                "GET", "/dir/index.html", out));
    g_assert_cmpstr(out, ==, "8ca523f5e9506fed4657c9700eebdbec");
    g_assert_true(shimmer_proxy_digest_response("SHA-256", "Mufasa", "http-auth@example.org",
                                                "Circle of Life", nonce, "00000001", cnonce, "auth",
                                                "GET", "/dir/index.html", out));
    g_assert_cmpstr(out, ==, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    g_assert_false(shimmer_proxy_digest_response("SHA-512-256", "u", "r", "p", "n", "1", "c",
                                                 "auth", "GET", "/", out));
}

/* ---------- SOCKS5 ---------- */

static void test_socks_name(void)
{
    g_autoptr(ShimmerProxy) p = proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerProxyClient) c =
        shimmer_proxy_client_new(p, "vpn.example.org", 1194, SHIMMER_PROXY_CONNECT_TCP, &error);
    g_assert_no_error(error);
    shimmer_proxy_client_begin(c, RANDOM);
    g_autoptr(GBytes) hello = take_bytes(c);
    g_assert_cmpmem(g_bytes_get_data(hello, NULL), g_bytes_get_size(hello), "\x05\x01\x00", 3);
    gsize used;
    ShimmerProxyStatus st =
        shimmer_proxy_client_feed(c, (const guint8 *)"\x05\x00", 2, &used, &error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_WANT_MORE);
    g_assert_cmpuint(used, ==, 2);
    g_autoptr(GBytes) req = take_bytes(c);
    g_assert_cmpmem(g_bytes_get_data(req, NULL), g_bytes_get_size(req),
                    "\x05\x01\x00\x03\x0fvpn.example.org\x04\xaa", 22);
    const guint8 reply[] = {5, 0, 0, 1, 10, 0, 0, 3, 0x9c, 0x40, 0xde, 0xad};
    st = shimmer_proxy_client_feed(c, reply, sizeof(reply), &used, &error);
    g_assert_no_error(error);
    g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
    g_assert_cmpuint(used, ==, 10);
}

static void test_socks_literals(void)
{
    g_autoptr(ShimmerProxy) p = proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    struct {
        const char *host;
        const char *req;
        gsize len;
    } cases[] = {
        {"192.0.2.9", "\x05\x01\x00\x01\xc0\x00\x02\x09\x00\x35", 10},
        {"2001:db8::1", "\x05\x01\x00\x04\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x00\x35", 22},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(ShimmerProxyClient) c =
            shimmer_proxy_client_new(p, cases[i].host, 53, SHIMMER_PROXY_CONNECT_TCP, NULL);
        shimmer_proxy_client_begin(c, RANDOM);
        g_bytes_unref(take_bytes(c));
        gsize used;
        shimmer_proxy_client_feed(c, (const guint8 *)"\x05\x00", 2, &used, NULL);
        g_autoptr(GBytes) req = take_bytes(c);
        g_assert_cmpmem(g_bytes_get_data(req, NULL), g_bytes_get_size(req), cases[i].req,
                        cases[i].len);
        /* A bound name of 255 bytes, byte by byte. */
        guint8 reply[4 + 1 + 255 + 2] = {5, 0, 0, 3, 255};
        memset(reply + 5, 'n', 255);
        g_autoptr(GError) error = NULL;
        ShimmerProxyStatus st = feed_bytewise(c, reply, sizeof(reply), &used, &error);
        g_assert_no_error(error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
        g_assert_cmpuint(used, ==, sizeof(reply));
    }
}

static void test_socks_login(void)
{
    g_autoptr(ShimmerProxy) p =
        proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_BASIC, "alice", "s3cr3t");
    g_autoptr(GError) error = NULL;
    for (int round = 0; round < 2; round++) {
        g_autoptr(ShimmerProxyClient) c =
            shimmer_proxy_client_new(p, "10.0.0.1", 1194, SHIMMER_PROXY_CONNECT_TCP, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(shimmer_proxy_client_get_auth_name(c), ==, "username/password");
        shimmer_proxy_client_begin(c, RANDOM);
        g_autoptr(GBytes) hello = take_bytes(c);
        g_assert_cmpmem(g_bytes_get_data(hello, NULL), g_bytes_get_size(hello), "\x05\x02\x00\x02",
                        4);
        gsize used;
        ShimmerProxyStatus st =
            shimmer_proxy_client_feed(c, (const guint8 *)"\x05\x02", 2, &used, &error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_WANT_MORE);
        g_autoptr(GBytes) login = take_bytes(c);
        g_assert_cmpmem(g_bytes_get_data(login, NULL), g_bytes_get_size(login),
                        "\x01\x05"
                        "alice\x06s3cr3t",
                        14);
        if (round == 0) {
            st = shimmer_proxy_client_feed(c, (const guint8 *)"\x01\x01", 2, &used, &error);
            g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
            g_assert_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH);
            g_assert_null(strstr(error->message, "s3cr3t"));
            g_clear_error(&error);
            continue;
        }
        st = shimmer_proxy_client_feed(c, (const guint8 *)"\x01\x00", 2, &used, &error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_WANT_MORE);
        g_autoptr(GBytes) req = take_bytes(c);
        g_assert_cmpuint(g_bytes_get_size(req), ==, 10);
        st = shimmer_proxy_client_feed(c, (const guint8 *)"\x05\x00\x00\x01\0\0\0\0\0\0", 10, &used,
                                       &error);
        g_assert_no_error(error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
    }
}

static void test_socks_hostile(void)
{
    struct {
        gboolean login;
        const char *answer;
        gsize len;
        ShimmerProxyError code;
        const char *says;
    } cases[] = {
        {FALSE, "\x04\x5a", 2, SHIMMER_PROXY_ERROR_PROTOCOL, "does not speak SOCKS5"},
        {FALSE, "HTTP/1.0 400", 12, SHIMMER_PROXY_ERROR_PROTOCOL, "0x48"},
        {FALSE, "\x05\xff", 2, SHIMMER_PROXY_ERROR_AUTH, "may want a user name"},
        {TRUE, "\x05\xff", 2, SHIMMER_PROXY_ERROR_AUTH, "none of the offered"},
        {FALSE, "\x05\x02", 2, SHIMMER_PROXY_ERROR_PROTOCOL, "not offered"},
        {FALSE, "\x05\x01", 2, SHIMMER_PROXY_ERROR_PROTOCOL, "not offered"},
        {TRUE, "\x05\x02\x07\x00", 4, SHIMMER_PROXY_ERROR_PROTOCOL, "version 0x07"},
        {FALSE, "\x05\x00\x05\x05\x00\x01\0\0\0\0\0\0", 12, SHIMMER_PROXY_ERROR_REFUSED,
         "connection refused (0x05)"},
        {FALSE, "\x05\x00\x05\x02\x00\x01\0\0\0\0\0\0", 12, SHIMMER_PROXY_ERROR_REFUSED,
         "not allowed by ruleset"},
        {FALSE, "\x05\x00\x05\x00\x00\x09\0\0\0\0\0\0", 12, SHIMMER_PROXY_ERROR_PROTOCOL,
         "address type 0x09"},
        {FALSE, "\x05\x00\x04\x00\x00\x01\0\0\0\0\0\0", 12, SHIMMER_PROXY_ERROR_PROTOCOL,
         "reply has version 0x04"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("case %" G_GSIZE_FORMAT, i);
        g_autoptr(ShimmerProxy) p =
            cases[i].login ? proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_BASIC, "u", "p")
                           : proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerProxyClient) c =
            shimmer_proxy_client_new(p, "s.example", 1, SHIMMER_PROXY_CONNECT_TCP, &error);
        shimmer_proxy_client_begin(c, RANDOM);
        gsize used;
        ShimmerProxyStatus st =
            feed_bytewise(c, (const guint8 *)cases[i].answer, cases[i].len, &used, &error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
        g_assert_error(error, SHIMMER_PROXY_ERROR, (gint)cases[i].code);
        g_assert_nonnull(strstr(error->message, cases[i].says));
    }
}

static void test_socks_udp(void)
{
    g_autoptr(ShimmerProxy) p = proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_NONE, NULL, NULL);
    struct {
        const char *reply;
        gsize len;
        gboolean ok;
        guint8 family;
        guint16 port;
    } cases[] = {
        {"\x05\x00\x00\x01\x0a\x01\x02\x03\x0f\xa0", 10, TRUE, 4, 4000},
        {"\x05\x00\x00\x01\0\0\0\0\x13\x88", 10, TRUE, 0, 5000},
        {"\x05\x00\x00\x04\xfd\x5e\0\0\0\0\0\0\0\0\0\0\0\0\0\x03\x04\x00", 22, TRUE, 6, 1024},
        {"\x05\x00\x00\x01\x0a\x01\x02\x03\x00\x00", 10, FALSE, 0, 0},
        {"\x05\x00\x00\x03\x01r\x00\x35", 8, FALSE, 0, 0},
        {"\x05\x07\x00\x01\0\0\0\0\0\0", 10, FALSE, 0, 0},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("case %" G_GSIZE_FORMAT, i);
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerProxyClient) c =
            shimmer_proxy_client_new(p, NULL, 0, SHIMMER_PROXY_ASSOCIATE_UDP, &error);
        g_assert_no_error(error);
        shimmer_proxy_client_begin(c, RANDOM);
        g_bytes_unref(take_bytes(c));
        gsize used;
        shimmer_proxy_client_feed(c, (const guint8 *)"\x05\x00", 2, &used, &error);
        g_autoptr(GBytes) req = take_bytes(c);
        g_assert_cmpmem(g_bytes_get_data(req, NULL), g_bytes_get_size(req),
                        "\x05\x03\x00\x01\0\0\0\0\0\0", 10);
        ShimmerProxyStatus st = shimmer_proxy_client_feed(c, (const guint8 *)cases[i].reply,
                                                          cases[i].len, &used, &error);
        ShimmerSocksAddr relay;
        if (!cases[i].ok) {
            g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_ERROR);
            g_assert_nonnull(error);
            g_assert_false(shimmer_proxy_client_get_relay(c, &relay));
            continue;
        }
        g_assert_no_error(error);
        g_assert_cmpint(st, ==, SHIMMER_PROXY_STATUS_DONE);
        g_assert_true(shimmer_proxy_client_get_relay(c, &relay));
        g_assert_cmpuint(relay.family, ==, cases[i].family);
        g_assert_cmpuint(relay.port, ==, cases[i].port);
        if (relay.family == 4)
            g_assert_cmpmem(relay.addr, 4, "\x0a\x01\x02\x03", 4);
    }
}

static void assert_addr_eq(const ShimmerSocksAddr *x, const ShimmerSocksAddr *y)
{
    g_assert_cmpuint(x->family, ==, y->family);
    g_assert_cmpmem(x->addr, sizeof(x->addr), y->addr, sizeof(y->addr));
    g_assert_cmpuint(x->port, ==, y->port);
}

static void test_socks_udp_header(void)
{
    guint8 buf[64];
    ShimmerSocksAddr a = {.family = 4, .addr = {10, 213, 0, 1}, .port = 1194};
    g_assert_cmpuint(shimmer_socks_udp_wrap(buf, 9, &a), ==, 0);
    g_assert_cmpuint(shimmer_socks_udp_wrap(buf, sizeof(buf), &a), ==, 10);
    g_assert_cmpmem(buf, 10, "\0\0\0\x01\x0a\xd5\x00\x01\x04\xaa", 10);
    ShimmerSocksAddr from;
    memcpy(buf + 10, "pkt", 3);
    g_assert_cmpuint(shimmer_socks_udp_unwrap(buf, 13, &from), ==, 10);
    assert_addr_eq(&from, &a);

    ShimmerSocksAddr b = {.family = 6, .port = 443};
    b.addr[0] = 0xfd;
    b.addr[15] = 0x02;
    g_assert_cmpuint(shimmer_socks_udp_wrap(buf, 22, &b), ==, 22);
    g_assert_cmpuint(buf[3], ==, 4);
    g_assert_cmpuint(shimmer_socks_udp_unwrap(buf, 22, &from), ==, 22);
    assert_addr_eq(&from, &b);
    g_assert_cmpuint(shimmer_socks_udp_unwrap(buf, 21, &from), ==, 0);

    ShimmerSocksAddr none = {0};
    g_assert_cmpuint(shimmer_socks_udp_wrap(buf, sizeof(buf), &none), ==, 0);

    /* Fragments, reserved bytes and names are not taken. */
    const char *bad[] = {"\0\0\x01\x01\x0a\0\0\x01\x04\xaa", "\0\x01\0\x01\x0a\0\0\x01\x04\xaa",
                         "\0\0\0\x03\x01x\x04\xaaxxx", "\0\0\0\x09\x0a\0\0\x01\x04\xaa"};
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_cmpuint(shimmer_socks_udp_unwrap((const guint8 *)bad[i], 10, &from), ==, 0);
    g_assert_cmpuint(shimmer_socks_udp_unwrap((const guint8 *)"", 0, &from), ==, 0);
}

/* Random answers in random pieces: every run ends in DONE, ERROR or
 * waiting, within the bounds, and never reads past what it was given
 * (ASan in the sanitizer build). */
static void test_random_answers(void)
{
    GRand *r = g_rand_new_with_seed(20240611);
    for (int round = 0; round < 3000; round++) {
        gboolean http = round % 2 == 0;
        ShimmerProxyAuth auth = round % 3 == 0 ? SHIMMER_PROXY_AUTH_AUTO : SHIMMER_PROXY_AUTH_NONE;
        g_autoptr(ShimmerProxy) p =
            http ? proxy_new(SHIMMER_PROXY_HTTP, auth, "u", "p")
                 : proxy_new(SHIMMER_PROXY_SOCKS, SHIMMER_PROXY_AUTH_BASIC, "u", "p");
        g_autoptr(ShimmerProxyClient) c = shimmer_proxy_client_new(
            p, "s.example", 1,
            !http && round % 4 == 1 ? SHIMMER_PROXY_ASSOCIATE_UDP : SHIMMER_PROXY_CONNECT_TCP,
            NULL);
        g_assert_nonnull(c);
        shimmer_proxy_client_begin(c, RANDOM);
        /* Mostly plausible starts, then noise. */
        static const char *starts[] = {
            "HTTP/1.1 407 x\r\nProxy-Authenticate: Digest realm=\"a\", nonce=",
            "HTTP/1.0 200 ",
            "HTTP/1.1 407 x\r\nProxy-Authenticate: Basic\r\n",
            "\x05\x02\x01",
            "\x05\x00\x05\x00\x00\x03",
            "\x05\x00\x05\x00\x00\x01",
            ""};
        GByteArray *in = g_byte_array_new();
        const char *s = starts[g_rand_int_range(r, 0, G_N_ELEMENTS(starts))];
        g_byte_array_append(in, (const guint8 *)s, (guint)strlen(s));
        gsize extra = (gsize)g_rand_int_range(r, 0, 400);
        for (gsize i = 0; i < extra; i++) {
            guint8 b = (guint8)g_rand_int_range(r, 0, 256);
            if (g_rand_int_range(r, 0, 4) == 0)
                b = "\r\n\" ,=\x05\x00"[g_rand_int_range(r, 0, 9)];
            g_byte_array_append(in, &b, 1);
        }
        gsize off = 0;
        ShimmerProxyStatus st = SHIMMER_PROXY_STATUS_WANT_MORE;
        while (off < in->len && st == SHIMMER_PROXY_STATUS_WANT_MORE) {
            /* (MIN evaluates its arguments twice.) */
            gsize want = (gsize)g_rand_int_range(r, 1, 40);
            gsize piece = MIN(in->len - off, want);
            gsize used = 0;
            g_autoptr(GError) error = NULL;
            st = shimmer_proxy_client_feed(c, in->data + off, piece, &used, &error);
            g_assert_cmpuint(used, <=, piece);
            g_assert_true((st == SHIMMER_PROXY_STATUS_ERROR) == (error != NULL));
            if (st == SHIMMER_PROXY_STATUS_RECONNECT) {
                shimmer_proxy_client_begin(c, RANDOM);
                st = SHIMMER_PROXY_STATUS_WANT_MORE;
                used = piece;
            }
            gsize pl;
            shimmer_proxy_client_pending(c, &pl);
            shimmer_proxy_client_sent(c, pl);
            off += st == SHIMMER_PROXY_STATUS_WANT_MORE ? piece : used;
        }
        g_byte_array_unref(in);
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proxy/http/plain", test_http_plain);
    g_test_add_func("/proxy/http/bytewise", test_http_bytewise);
    g_test_add_func("/proxy/http/options", test_http_options);
    g_test_add_func("/proxy/http/basic", test_http_basic);
    g_test_add_func("/proxy/http/auto-basic", test_http_auto_basic);
    g_test_add_func("/proxy/http/auto-nct", test_http_auto_nct);
    g_test_add_func("/proxy/http/auto-digest", test_http_auto_digest);
    g_test_add_func("/proxy/http/auth-refusals", test_http_auth_refusals);
    g_test_add_func("/proxy/http/hostile", test_http_hostile);
    g_test_add_func("/proxy/http/oversized", test_http_oversized);
    g_test_add_func("/proxy/check", test_check);
    g_test_add_func("/proxy/digest-vectors", test_digest_vectors);
    g_test_add_func("/proxy/socks/name", test_socks_name);
    g_test_add_func("/proxy/socks/literals", test_socks_literals);
    g_test_add_func("/proxy/socks/login", test_socks_login);
    g_test_add_func("/proxy/socks/hostile", test_socks_hostile);
    g_test_add_func("/proxy/socks/udp", test_socks_udp);
    g_test_add_func("/proxy/socks/udp-header", test_socks_udp_header);
    g_test_add_func("/proxy/random-answers", test_random_answers);
    return g_test_run();
}
