/* SPDX-License-Identifier: MIT */
/*
 * HTTP CONNECT and SOCKS5 negotiation as a byte machine. See proxy.h.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <nettle/md5.h>
#include <nettle/sha2.h>
#include <string.h>

#include "secure.h"
#include "textsafe.h"

G_DEFINE_QUARK(shimmer - proxy - error - quark, shimmer_proxy_error)

/* The bounds on what the profile puts into a request (so that a request,
 * with a Digest answer to an answer head of at most 8 KiB, always fits the
 * 64 KiB output buffer). */
#define MAX_PROFILE_HEADERS 16384
#define MAX_HTTP_CREDENTIAL 1024
/* Quoted text from the proxy in a message is cut here. */
#define QUOTE_MAX 200
/* RFC 1928: VER REP RSV ATYP, a name of up to 255 bytes with its length, a port. */
#define SOCKS_REPLY_MAX (4 + 1 + 255 + 2)
/* Authentication after a 407 is tried at most this often per negotiation
 * (once, and once more for a Digest nonce the proxy calls stale). */
#define MAX_AUTH_ROUNDS 2

typedef enum {
    ST_IDLE,         /* begin() not called, or the negotiation is over */
    ST_HTTP_HEAD,    /* reading the answer's status line and headers */
    ST_SOCKS_METHOD, /* VER METHOD */
    ST_SOCKS_AUTH,   /* VER STATUS (RFC 1929) */
    ST_SOCKS_REPLY,  /* VER REP RSV ATYP BND.ADDR BND.PORT */
    ST_DONE,
    ST_FAILED,
} State;

typedef enum {
    SCHEME_NONE,
    SCHEME_BASIC,
    SCHEME_DIGEST,
} Scheme;

/* What a Digest challenge told us (the values as the proxy sent them,
 * unquoted). */
typedef struct {
    char *realm;
    char *nonce;
    char *opaque;
    char *algorithm;
    gboolean qop_auth; /* qop offered and holds "auth" */
    gboolean stale;
} Digest;

struct ShimmerProxyClient {
    ShimmerProxyType type;
    ShimmerProxyCommand command;
    ShimmerProxyAuth auth;
    char *host;
    guint16 port;
    char *username; /* secret-adjacent: wiped too */
    char *password; /* secret */
    char *http_version;
    char *user_agent;
    GPtrArray *headers; /* char*: whole header lines */

    State state;
    /* The scheme the next request carries, and the one this one did. */
    Scheme scheme;
    Scheme sent;
    guint auth_rounds;
    Digest digest;
    char cnonce[2 * SHIMMER_PROXY_RANDOM_LEN + 1];

    ShimmerSecretBuf out; /* pending bytes to the proxy */
    GByteArray *in;       /* bytes of the answer read so far */
    ShimmerSocksAddr relay;
};

/* ---------- helpers ---------- */

static void digest_clear(Digest *d)
{
    g_clear_pointer(&d->realm, g_free);
    g_clear_pointer(&d->nonce, g_free);
    g_clear_pointer(&d->opaque, g_free);
    g_clear_pointer(&d->algorithm, g_free);
    d->qop_auth = FALSE;
    d->stale = FALSE;
}

/* TEXT (LEN bytes) for a message: cut, controls escaped, in quotes. */
static char *quote(const char *text, gsize len)
{
    GString *s = g_string_new("'");
    gboolean cut = len > QUOTE_MAX;
    shimmer_text_append_escaped(s, text, (gssize)MIN(len, QUOTE_MAX), FALSE);
    g_string_append(s, cut ? "...'" : "'");
    return g_string_free(s, FALSE);
}

static gboolean has_controls(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((guchar)*s < 0x20 || *s == 0x7f)
            return TRUE;
    }
    return FALSE;
}

static void out_text(ShimmerProxyClient *c, const char *text)
{
    /* The buffer's limit is far above any request we make. */
    if (!shimmer_secret_buf_append(&c->out, text, strlen(text)))
        g_warn_if_reached();
}

static void out_bytes(ShimmerProxyClient *c, const guint8 *data, gsize len)
{
    if (!shimmer_secret_buf_append(&c->out, data, len))
        g_warn_if_reached();
}

static ShimmerProxyStatus fail(ShimmerProxyClient *c, GError **error, ShimmerProxyError code,
                               const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static ShimmerProxyStatus fail(ShimmerProxyClient *c, GError **error, ShimmerProxyError code,
                               const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, SHIMMER_PROXY_ERROR, code, msg);
    c->state = ST_FAILED;
    shimmer_secret_buf_reset(&c->out);
    g_byte_array_set_size(c->in, 0);
    return SHIMMER_PROXY_STATUS_ERROR;
}

static gboolean is_ipv6_literal(const char *host)
{
    guint8 a[16];
    return inet_pton(AF_INET6, host, a) == 1;
}

/* host:port, with an IPv6 address in brackets (RFC 9112 3.2.3). */
static char *authority(const ShimmerProxyClient *c)
{
    return g_strdup_printf(is_ipv6_literal(c->host) ? "[%s]:%u" : "%s:%u", c->host, c->port);
}

/* ---------- checks ---------- */

static gboolean have_credentials(const ShimmerProxy *p)
{
    return p->username != NULL && p->password != NULL;
}

gboolean shimmer_proxy_check(const ShimmerProxy *p, gboolean udp, GError **error)
{
    const char *what = p->type == SHIMMER_PROXY_HTTP ? "http-proxy" : "socks-proxy";
    if (p->type == SHIMMER_PROXY_HTTP && udp) {
        g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                    "an HTTP proxy carries TCP only (as in OpenVPN): use 'proto tcp-client' "
                    "or a socks-proxy");
        return FALSE;
    }
    if (p->auth == SHIMMER_PROXY_AUTH_NTLM || p->auth == SHIMMER_PROXY_AUTH_NTLM2) {
        g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                    "http-proxy authentication '%s' is not supported: NTLM is deprecated in "
                    "OpenVPN 2.6 and gone in 2.7; use basic, or auto for Digest",
                    p->auth == SHIMMER_PROXY_AUTH_NTLM ? "ntlm" : "ntlm2");
        return FALSE;
    }
    if (p->auth == SHIMMER_PROXY_AUTH_BASIC && !have_credentials(p)) {
        g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_AUTH,
                    "the %s's user name and password are not in the profile%s", what,
                    p->auth_prompt ? " (authfile 'stdin': shimmerd --config asks for them on its "
                                     "terminal; a service cannot)"
                                   : "");
        return FALSE;
    }
    gsize header_bytes = p->user_agent != NULL ? strlen(p->user_agent) : 0;
    for (guint i = 0; p->custom_headers != NULL && i < p->custom_headers->len; i++) {
        const ShimmerHttpHeader *h = g_ptr_array_index(p->custom_headers, i);
        header_bytes += strlen(h->name) + (h->content != NULL ? strlen(h->content) : 0) + 4;
    }
    if (header_bytes > MAX_PROFILE_HEADERS) {
        g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                    "the http-proxy-option headers have more than %d bytes", MAX_PROFILE_HEADERS);
        return FALSE;
    }
    if (have_credentials(p)) {
        if (p->type == SHIMMER_PROXY_SOCKS &&
            (strlen(p->username) > 255 || strlen(p->password) > 255 || p->username[0] == '\0')) {
            g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                        "a SOCKS5 user name must have 1 to 255 bytes, a password at most 255 "
                        "(RFC 1929)");
            return FALSE;
        }
        if (p->type == SHIMMER_PROXY_HTTP && (strlen(p->username) > MAX_HTTP_CREDENTIAL ||
                                              strlen(p->password) > MAX_HTTP_CREDENTIAL)) {
            g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                        "an HTTP proxy's user name and password may have at most %d bytes each",
                        MAX_HTTP_CREDENTIAL);
            return FALSE;
        }
        if (p->type == SHIMMER_PROXY_HTTP && strchr(p->username, ':') != NULL) {
            g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                        "an HTTP proxy's user name cannot hold ':' (RFC 7617)");
            return FALSE;
        }
        if (has_controls(p->username) || has_controls(p->password)) {
            g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                        "the %s's user name or password holds a control character", what);
            return FALSE;
        }
    }
    return TRUE;
}

/* ---------- life ---------- */

ShimmerProxyClient *shimmer_proxy_client_new(const ShimmerProxy *p, const char *host, guint16 port,
                                             ShimmerProxyCommand command, GError **error)
{
    gboolean udp = command == SHIMMER_PROXY_ASSOCIATE_UDP;
    if (!shimmer_proxy_check(p, udp, error))
        return NULL;
    if (!udp) {
        gsize l = host != NULL ? strlen(host) : 0;
        gboolean bad = l == 0 || l > 255 || port == 0;
        for (gsize i = 0; i < l && !bad; i++)
            bad = (guchar)host[i] <= 0x20 || host[i] == 0x7f || host[i] == '/' || host[i] == '@';
        if (bad) {
            g_autofree char *q = quote(host != NULL ? host : "", l);
            g_set_error(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                        "the server %s port %u cannot be named to a proxy", q, port);
            return NULL;
        }
    }
    ShimmerProxyClient *c = g_new0(ShimmerProxyClient, 1);
    c->type = p->type;
    c->command = command;
    c->auth = p->auth;
    c->host = g_strdup(host != NULL ? host : "");
    c->port = port;
    if (have_credentials(p)) {
        c->username = g_strdup(p->username);
        c->password = g_strdup(p->password);
    }
    c->http_version = g_strdup(p->http_version != NULL ? p->http_version : "1.0");
    c->user_agent = g_strdup(p->user_agent);
    c->headers = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; p->custom_headers != NULL && i < p->custom_headers->len; i++) {
        const ShimmerHttpHeader *h = g_ptr_array_index(p->custom_headers, i);
        char *line =
            h->content != NULL ? g_strdup_printf("%s: %s", h->name, h->content) : g_strdup(h->name);
        if (strpbrk(line, "\r\n") != NULL) {
            /* The parser refuses these; a header must never smuggle a line. */
            g_free(line);
            continue;
        }
        g_ptr_array_add(c->headers, line);
    }
    c->scheme = p->type == SHIMMER_PROXY_HTTP && p->auth == SHIMMER_PROXY_AUTH_BASIC ? SCHEME_BASIC
                                                                                     : SCHEME_NONE;
    shimmer_secret_buf_init(&c->out, 0, 64 * 1024);
    c->in = g_byte_array_new();
    c->state = ST_IDLE;
    return c;
}

void shimmer_proxy_client_free(ShimmerProxyClient *c)
{
    if (c == NULL)
        return;
    g_free(c->host);
    shimmer_str_free_secret(c->username);
    shimmer_str_free_secret(c->password);
    g_free(c->http_version);
    g_free(c->user_agent);
    g_ptr_array_unref(c->headers);
    digest_clear(&c->digest);
    shimmer_secret_buf_clear(&c->out);
    g_byte_array_unref(c->in);
    shimmer_wipe(c->cnonce, sizeof(c->cnonce));
    g_free(c);
}

const char *shimmer_proxy_client_get_auth_name(const ShimmerProxyClient *c)
{
    if (c->type == SHIMMER_PROXY_SOCKS)
        return c->username != NULL ? "username/password" : "none";
    switch (c->scheme) {
    case SCHEME_BASIC:
        return "basic";
    case SCHEME_DIGEST:
        return "digest";
    default:
        return "none";
    }
}

gboolean shimmer_proxy_client_get_relay(const ShimmerProxyClient *c, ShimmerSocksAddr *relay)
{
    if (c->state != ST_DONE || c->command != SHIMMER_PROXY_ASSOCIATE_UDP)
        return FALSE;
    *relay = c->relay;
    return TRUE;
}

const guint8 *shimmer_proxy_client_pending(ShimmerProxyClient *c, gsize *len)
{
    *len = c->out.len;
    return c->out.data;
}

void shimmer_proxy_client_sent(ShimmerProxyClient *c, gsize n)
{
    shimmer_secret_buf_consume(&c->out, n);
}

/* ---------- Digest ---------- */

typedef struct {
    gboolean use_sha256;
    union {
        struct md5_ctx md5;
        struct sha256_ctx sha256;
    };
} Hash;

static void hash_init(Hash *h, gboolean sha256)
{
    h->use_sha256 = sha256;
    if (sha256)
        sha256_init(&h->sha256);
    else
        md5_init(&h->md5);
}

static void hash_str(Hash *h, const char *s)
{
    if (h->use_sha256)
        sha256_update(&h->sha256, strlen(s), (const guint8 *)s);
    else
        md5_update(&h->md5, strlen(s), (const guint8 *)s);
}

/* The digest as lowercase hex into OUT (65 bytes). */
static void hash_hex(Hash *h, char *out)
{
    guint8 d[SHA256_DIGEST_SIZE];
    gsize n = h->use_sha256 ? SHA256_DIGEST_SIZE : MD5_DIGEST_SIZE;
    if (h->use_sha256)
        sha256_digest(&h->sha256, n, d);
    else
        md5_digest(&h->md5, n, d);
    for (gsize i = 0; i < n; i++)
        g_snprintf(out + 2 * i, 3, "%02x", d[i]);
    shimmer_wipe(d, sizeof(d));
    shimmer_wipe(h, sizeof(*h));
}

/* H(a:b:c...) of NULL-terminated parts. */
static void hash_parts(gboolean sha256, char *out, ...)
{
    Hash h;
    hash_init(&h, sha256);
    va_list ap;
    va_start(ap, out);
    gboolean first = TRUE;
    for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *)) {
        if (!first)
            hash_str(&h, ":");
        hash_str(&h, s);
        first = FALSE;
    }
    va_end(ap);
    hash_hex(&h, out);
}

static gboolean digest_algorithm_known(const char *a)
{
    return a == NULL || g_ascii_strcasecmp(a, "MD5") == 0 ||
           g_ascii_strcasecmp(a, "MD5-sess") == 0 || g_ascii_strcasecmp(a, "SHA-256") == 0 ||
           g_ascii_strcasecmp(a, "SHA-256-sess") == 0;
}

gboolean shimmer_proxy_digest_response(const char *algorithm, const char *username,
                                       const char *realm, const char *password, const char *nonce,
                                       const char *nc, const char *cnonce, const char *qop,
                                       const char *method, const char *uri, char *out)
{
    if (!digest_algorithm_known(algorithm))
        return FALSE;
    const char *a = algorithm != NULL ? algorithm : "MD5";
    gboolean sha256 = g_ascii_strncasecmp(a, "SHA-256", 7) == 0;
    gsize al = strlen(a);
    gboolean sess = al > 5 && g_ascii_strcasecmp(a + al - 5, "-sess") == 0;
    char ha1[65], ha2[65];
    hash_parts(sha256, ha1, username, realm, password, NULL);
    if (sess) {
        char inner[65];
        memcpy(inner, ha1, sizeof(inner));
        hash_parts(sha256, ha1, inner, nonce, cnonce, NULL);
        shimmer_wipe(inner, sizeof(inner));
    }
    hash_parts(sha256, ha2, method, uri, NULL);
    if (qop != NULL)
        hash_parts(sha256, out, ha1, nonce, nc, cnonce, qop, ha2, NULL);
    else
        hash_parts(sha256, out, ha1, nonce, ha2, NULL);
    shimmer_wipe(ha1, sizeof(ha1));
    return TRUE;
}

/* VALUE as a quoted-string (RFC 9110 5.6.4). */
static void append_quoted(GString *s, const char *value)
{
    g_string_append_c(s, '"');
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(s, '\\');
        g_string_append_c(s, *p);
    }
    g_string_append_c(s, '"');
}

/* The Digest Proxy-Authorization line; NULL if the challenge cannot be
 * answered (checked when it was read). A secret (it proves the password). */
static char *digest_header(ShimmerProxyClient *c)
{
    const Digest *d = &c->digest;
    g_autofree char *uri = authority(c);
    const char *nc = "00000001";
    char response[65];
    if (!shimmer_proxy_digest_response(d->algorithm, c->username, d->realm, c->password, d->nonce,
                                       nc, c->cnonce, d->qop_auth ? "auth" : NULL, "CONNECT", uri,
                                       response))
        return NULL;
    GString *s = g_string_new("Proxy-Authorization: Digest username=");
    append_quoted(s, c->username);
    g_string_append(s, ", realm=");
    append_quoted(s, d->realm);
    g_string_append(s, ", nonce=");
    append_quoted(s, d->nonce);
    g_string_append(s, ", uri=");
    append_quoted(s, uri);
    if (d->algorithm != NULL)
        g_string_append_printf(s, ", algorithm=%s", d->algorithm);
    g_string_append_printf(s, ", response=\"%s\"", response);
    if (d->qop_auth)
        g_string_append_printf(s, ", qop=auth, nc=%s, cnonce=\"%s\"", nc, c->cnonce);
    if (d->opaque != NULL) {
        g_string_append(s, ", opaque=");
        append_quoted(s, d->opaque);
    }
    g_string_append(s, "\r\n");
    shimmer_wipe(response, sizeof(response));
    return g_string_free(s, FALSE);
}

/* ---------- HTTP ---------- */

static void http_request(ShimmerProxyClient *c)
{
    g_autofree char *target = authority(c);
    g_autofree char *line = g_strdup_printf("CONNECT %s HTTP/%s\r\n", target, c->http_version);
    out_text(c, line);
    gboolean host_sent = FALSE;
    for (guint i = 0; i < c->headers->len; i++) {
        const char *h = g_ptr_array_index(c->headers, i);
        host_sent |= g_ascii_strncasecmp(h, "Host:", 5) == 0;
        out_text(c, h);
        out_text(c, "\r\n");
    }
    if (!host_sent) {
        g_autofree char *host = g_strdup_printf("Host: %s\r\n", target);
        out_text(c, host);
    }
    if (c->user_agent != NULL) {
        g_autofree char *ua = g_strdup_printf("User-Agent: %s\r\n", c->user_agent);
        out_text(c, ua);
    }
    c->sent = SCHEME_NONE;
    if (c->scheme == SCHEME_BASIC && c->username != NULL) {
        gsize ul = strlen(c->username), pl = strlen(c->password);
        g_auto(ShimmerSecretStr) plain = g_malloc(ul + 1 + pl + 1);
        memcpy(plain, c->username, ul);
        plain[ul] = ':';
        memcpy(plain + ul + 1, c->password, pl + 1);
        g_auto(ShimmerSecretStr) b64 = g_base64_encode((const guchar *)plain, ul + 1 + pl);
        out_text(c, "Proxy-Authorization: Basic ");
        out_text(c, b64);
        out_text(c, "\r\n");
        c->sent = SCHEME_BASIC;
    } else if (c->scheme == SCHEME_DIGEST && c->username != NULL) {
        g_auto(ShimmerSecretStr) h = digest_header(c);
        if (h != NULL) {
            out_text(c, h);
            c->sent = SCHEME_DIGEST;
        }
    }
    out_text(c, "\r\n");
}

/* One auth-param value: a token or a quoted-string, unescaped. Moves *P. */
static char *param_value(const char **p, const char *end)
{
    const char *s = *p;
    GString *v = g_string_new(NULL);
    if (s < end && *s == '"') {
        s++;
        while (s < end && *s != '"') {
            if (*s == '\\' && s + 1 < end)
                s++;
            g_string_append_c(v, *s++);
        }
        if (s < end)
            s++;
    } else {
        while (s < end && *s != ',' && *s != ' ' && *s != '\t')
            g_string_append_c(v, *s++);
    }
    *p = s;
    return g_string_free(v, FALSE);
}

static gboolean is_token_char(char ch)
{
    return g_ascii_isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* Reads the challenges of one Proxy-Authenticate value (RFC 9110 11.6.1):
 * a scheme, then auth-params until the next scheme. Notes the schemes seen
 * in SCHEMES and keeps the first Digest challenge we can answer in D (the
 * first of them, SHA-256 over MD5, when there are several). */
static void parse_challenges(const char *v, gsize len, GString *schemes, gboolean *basic, Digest *d)
{
    const char *p = v, *end = v + len;
    Digest cur = {0};
    gboolean in_digest = FALSE;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *tok = p;
        while (p < end && is_token_char(*p))
            p++;
        gsize tl = (gsize)(p - tok);
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        gboolean is_param = tl > 0 && q < end && *q == '=';
        gboolean done = tl == 0;
        if (done || !is_param) {
            /* A new challenge (or the end): finish the Digest one we read. */
            if (in_digest) {
                gboolean usable =
                    cur.realm != NULL && cur.nonce != NULL && digest_algorithm_known(cur.algorithm);
                gboolean better =
                    d->nonce == NULL || (cur.algorithm != NULL &&
                                         g_ascii_strncasecmp(cur.algorithm, "SHA-256", 7) == 0 &&
                                         (d->algorithm == NULL ||
                                          g_ascii_strncasecmp(d->algorithm, "SHA-256", 7) != 0));
                if (usable && better) {
                    digest_clear(d);
                    *d = cur;
                    memset(&cur, 0, sizeof(cur));
                }
                digest_clear(&cur);
                in_digest = FALSE;
            }
            if (done)
                break;
            g_autofree char *scheme = g_strndup(tok, tl);
            if (schemes->len > 0)
                g_string_append(schemes, ", ");
            g_string_append(schemes, scheme);
            if (g_ascii_strcasecmp(scheme, "Basic") == 0)
                *basic = TRUE;
            in_digest = g_ascii_strcasecmp(scheme, "Digest") == 0;
            /* A token68 (Negotiate, NTLM) after the scheme: skip it. */
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            const char *t = p;
            while (t < end && is_token_char(*t))
                t++;
            const char *u = t;
            while (u < end && (*u == ' ' || *u == '\t'))
                u++;
            if (t > p && (u >= end || *u != '=')) {
                p = t;
                while (p < end && *p == '=')
                    p++;
            }
            continue;
        }
        p = q + 1;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        char *value = param_value(&p, end);
        if (in_digest) {
            char **slot = NULL;
            if (tl == 5 && g_ascii_strncasecmp(tok, "realm", 5) == 0)
                slot = &cur.realm;
            else if (tl == 5 && g_ascii_strncasecmp(tok, "nonce", 5) == 0)
                slot = &cur.nonce;
            else if (tl == 6 && g_ascii_strncasecmp(tok, "opaque", 6) == 0)
                slot = &cur.opaque;
            else if (tl == 9 && g_ascii_strncasecmp(tok, "algorithm", 9) == 0)
                slot = &cur.algorithm;
            if (slot != NULL && !has_controls(value)) {
                g_free(*slot);
                *slot = g_steal_pointer(&value);
            } else if (tl == 3 && g_ascii_strncasecmp(tok, "qop", 3) == 0) {
                g_auto(GStrv) opts = g_strsplit(value, ",", -1);
                for (guint i = 0; opts[i] != NULL; i++)
                    cur.qop_auth |= g_ascii_strcasecmp(g_strstrip(opts[i]), "auth") == 0;
            } else if (tl == 5 && g_ascii_strncasecmp(tok, "stale", 5) == 0) {
                cur.stale = g_ascii_strcasecmp(value, "true") == 0;
            }
        }
        g_free(value);
    }
    digest_clear(&cur);
}

/* The end of the head in IN (the index after its empty line), or 0. */
static gsize head_end(const GByteArray *in, gsize from)
{
    const guint8 *b = in->data;
    for (gsize i = from; i < in->len; i++) {
        if (b[i] != '\n')
            continue;
        if (i + 1 < in->len && b[i + 1] == '\n')
            return i + 2;
        if (i + 2 < in->len && b[i + 1] == '\r' && b[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Parses "HTTP/x.y NNN reason". */
static gboolean status_line(const char *line, guint *code)
{
    if (strncmp(line, "HTTP/", 5) != 0 || !g_ascii_isdigit(line[5]) || line[6] != '.' ||
        !g_ascii_isdigit(line[7]) || line[8] != ' ')
        return FALSE;
    const char *s = line + 9;
    if (!g_ascii_isdigit(s[0]) || !g_ascii_isdigit(s[1]) || !g_ascii_isdigit(s[2]) ||
        (s[3] != '\0' && s[3] != ' '))
        return FALSE;
    *code = (guint)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
    return *code >= 100;
}

/* The head of an answer, LEN bytes: its lines, the last one empty. */
static ShimmerProxyStatus http_head(ShimmerProxyClient *c, const char *head, gsize len,
                                    GError **error)
{
    /* Lines without their CR; folded lines joined to the one before. */
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (gsize)(end - p));
        const char *e = nl != NULL ? nl : end;
        gsize l = (gsize)(e - p);
        if (l > 0 && p[l - 1] == '\r')
            l--;
        if (l == 0)
            break;
        if (lines->len > 1 && (p[0] == ' ' || p[0] == '\t')) {
            char *prev = g_ptr_array_index(lines, lines->len - 1);
            g_autofree char *more = g_strndup(p, l);
            lines->pdata[lines->len - 1] = g_strconcat(prev, " ", g_strstrip(more), NULL);
            g_free(prev);
        } else {
            g_ptr_array_add(lines, g_strndup(p, l));
        }
        p = e + 1;
    }
    if (lines->len == 0)
        return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                    "the HTTP proxy answered with an empty line");
    const char *sl = g_ptr_array_index(lines, 0);
    g_autofree char *q = quote(sl, strlen(sl));
    guint code = 0;
    if (!status_line(sl, &code))
        return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL, "the proxy's answer is not HTTP: %s",
                    q);
    if (code == 200)
        return SHIMMER_PROXY_STATUS_DONE;
    /* Some proxies (tinyproxy) answer wrong credentials with 401. */
    if (code == 401 && c->sent != SCHEME_NONE)
        return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                    "the HTTP proxy refused the user name or password (%s authentication): %s",
                    c->sent == SCHEME_BASIC ? "Basic" : "Digest", q);
    if (code != 407)
        return fail(c, error, SHIMMER_PROXY_ERROR_REFUSED, "the HTTP proxy answered %s", q);

    g_autoptr(GString) schemes = g_string_new(NULL);
    gboolean basic = FALSE;
    Digest d = {0};
    for (guint i = 1; i < lines->len; i++) {
        const char *h = g_ptr_array_index(lines, i);
        const char *colon = strchr(h, ':');
        if (colon == NULL || (gsize)(colon - h) != 18 ||
            g_ascii_strncasecmp(h, "Proxy-Authenticate", 18) != 0)
            continue;
        parse_challenges(colon + 1, strlen(colon + 1), schemes, &basic, &d);
    }
    const char *offered = schemes->len > 0 ? schemes->str : "no scheme";
    g_autofree char *oq = quote(offered, strlen(offered));
    if (c->sent != SCHEME_NONE) {
        gboolean stale = c->sent == SCHEME_DIGEST && d.nonce != NULL && d.stale;
        if (stale && c->auth_rounds < MAX_AUTH_ROUNDS) {
            /* The nonce expired, not the password: answer the new one. */
            digest_clear(&c->digest);
            c->digest = d;
            c->auth_rounds++;
            c->state = ST_IDLE;
            return SHIMMER_PROXY_STATUS_RECONNECT;
        }
        digest_clear(&d);
        return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                    "the HTTP proxy refused the user name or password (%s authentication): %s",
                    c->sent == SCHEME_BASIC ? "Basic" : "Digest", q);
    }
    gboolean automatic =
        c->auth == SHIMMER_PROXY_AUTH_AUTO || c->auth == SHIMMER_PROXY_AUTH_AUTO_NCT;
    if (!automatic) {
        digest_clear(&d);
        return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                    "the HTTP proxy asks for authentication (%s) but the profile gives none: "
                    "add an authfile to http-proxy (Basic), or 'auto' with credentials",
                    oq);
    }
    Scheme pick = SCHEME_NONE;
    if (d.nonce != NULL)
        pick = SCHEME_DIGEST;
    else if (basic && c->auth == SHIMMER_PROXY_AUTH_AUTO)
        pick = SCHEME_BASIC;
    if (pick == SCHEME_NONE) {
        digest_clear(&d);
        if (basic)
            return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                        "the HTTP proxy offers only Basic authentication (%s), which "
                        "'auto-nct' refuses: it sends the password in clear text",
                        oq);
        return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                    "the HTTP proxy asks for authentication Shimmer does not do (%s): only "
                    "Basic and Digest (MD5, SHA-256) are supported; NTLM is deprecated in "
                    "OpenVPN 2.6 and gone in 2.7",
                    oq);
    }
    if (c->username == NULL) {
        digest_clear(&d);
        return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                    "the HTTP proxy asks for a user name and password (%s) but the profile "
                    "gives none (http-proxy-user-pass)",
                    oq);
    }
    digest_clear(&c->digest);
    c->digest = d;
    c->scheme = pick;
    c->auth_rounds++;
    c->state = ST_IDLE;
    return SHIMMER_PROXY_STATUS_RECONNECT;
}

static ShimmerProxyStatus http_feed(ShimmerProxyClient *c, const guint8 *data, gsize len,
                                    gsize *used, GError **error)
{
    gsize offset = 0;
    while (offset < len) {
        gsize old = c->in->len;
        gsize room = SHIMMER_PROXY_HTTP_MAX_HEADER - old;
        gsize take = MIN(room, len - offset);
        g_byte_array_append(c->in, data + offset, (guint)take);
        gsize e = head_end(c->in, old >= 3 ? old - 3 : 0);
        if (e == 0) {
            offset += take;
            *used = offset;
            if (c->in->len >= SHIMMER_PROXY_HTTP_MAX_HEADER)
                return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                            "the HTTP proxy's answer has no end within %d bytes",
                            SHIMMER_PROXY_HTTP_MAX_HEADER);
            return SHIMMER_PROXY_STATUS_WANT_MORE;
        }
        offset += e - old;
        *used = offset;
        if (memchr(c->in->data, '\0', e) != NULL)
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                        "the HTTP proxy's answer holds a NUL byte");
        g_autofree char *head = g_strndup((const char *)c->in->data, e);
        g_byte_array_set_size(c->in, 0);
        /* 1xx answers are interim: the real one follows. */
        if (e >= 12 && strncmp(head, "HTTP/", 5) == 0 && head[9] == '1' && head[8] == ' ')
            continue;
        ShimmerProxyStatus st = http_head(c, head, e, error);
        if (st == SHIMMER_PROXY_STATUS_DONE)
            c->state = ST_DONE;
        return st;
    }
    *used = offset;
    return SHIMMER_PROXY_STATUS_WANT_MORE;
}

/* ---------- SOCKS5 ---------- */

static const char *socks_reply_text(guint8 rep)
{
    switch (rep) {
    case 1:
        return "general SOCKS server failure";
    case 2:
        return "connection not allowed by ruleset";
    case 3:
        return "network unreachable";
    case 4:
        return "host unreachable";
    case 5:
        return "connection refused";
    case 6:
        return "TTL expired";
    case 7:
        return "command not supported";
    case 8:
        return "address type not supported";
    default:
        return "unknown reply code";
    }
}

static void socks_request(ShimmerProxyClient *c)
{
    guint8 cmd = c->command == SHIMMER_PROXY_CONNECT_TCP ? 0x01 : 0x03;
    guint8 head[4] = {0x05, cmd, 0x00, 0x00};
    guint8 a[16];
    if (c->command == SHIMMER_PROXY_ASSOCIATE_UDP) {
        /* Where we will send from is not known yet: all zeros (RFC 1928 s. 6). */
        head[3] = 0x01;
        memset(a, 0, 4);
        out_bytes(c, head, 4);
        out_bytes(c, a, 4);
        guint8 port[2] = {0, 0};
        out_bytes(c, port, 2);
        return;
    }
    gsize alen;
    if (inet_pton(AF_INET, c->host, a) == 1) {
        head[3] = 0x01;
        alen = 4;
    } else if (inet_pton(AF_INET6, c->host, a) == 1) {
        head[3] = 0x04;
        alen = 16;
    } else {
        head[3] = 0x03;
        alen = 0;
    }
    out_bytes(c, head, 4);
    if (alen > 0) {
        out_bytes(c, a, alen);
    } else {
        guint8 l = (guint8)strlen(c->host);
        out_bytes(c, &l, 1);
        out_bytes(c, (const guint8 *)c->host, l);
    }
    guint8 port[2] = {(guint8)(c->port >> 8), (guint8)c->port};
    out_bytes(c, port, 2);
}

static ShimmerProxyStatus socks_step(ShimmerProxyClient *c, GError **error)
{
    const guint8 *b = c->in->data;
    switch (c->state) {
    case ST_SOCKS_METHOD:
        if (b[0] != 0x05)
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                        "the proxy does not speak SOCKS5 (version byte 0x%02x)", b[0]);
        if (b[1] == 0xff)
            return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                        "the SOCKS proxy accepts none of the offered methods (%s)",
                        c->username != NULL ? "none, username/password"
                                            : "none: it may want a user name and password");
        if (b[1] == 0x00) {
            socks_request(c);
            c->state = ST_SOCKS_REPLY;
        } else if (b[1] == 0x02 && c->username != NULL) {
            guint8 ul = (guint8)strlen(c->username), pl = (guint8)strlen(c->password);
            guint8 v = 0x01;
            out_bytes(c, &v, 1);
            out_bytes(c, &ul, 1);
            out_bytes(c, (const guint8 *)c->username, ul);
            out_bytes(c, &pl, 1);
            out_bytes(c, (const guint8 *)c->password, pl);
            c->state = ST_SOCKS_AUTH;
        } else {
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                        "the SOCKS proxy chose method 0x%02x, which was not offered", b[1]);
        }
        break;
    case ST_SOCKS_AUTH:
        /* RFC 1929 says version 1; some servers answer 5. */
        if (b[0] != 0x01 && b[0] != 0x05)
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                        "the SOCKS proxy's answer to the login has version 0x%02x", b[0]);
        if (b[1] != 0x00)
            return fail(c, error, SHIMMER_PROXY_ERROR_AUTH,
                        "the SOCKS proxy refused the user name or password (status 0x%02x)", b[1]);
        socks_request(c);
        c->state = ST_SOCKS_REPLY;
        break;
    case ST_SOCKS_REPLY: {
        if (b[0] != 0x05)
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                        "the SOCKS proxy's reply has version 0x%02x", b[0]);
        if (b[1] != 0x00)
            return fail(c, error, SHIMMER_PROXY_ERROR_REFUSED,
                        "the SOCKS proxy refused the %s: %s (0x%02x)",
                        c->command == SHIMMER_PROXY_CONNECT_TCP ? "connection" : "UDP association",
                        socks_reply_text(b[1]), b[1]);
        memset(&c->relay, 0, sizeof(c->relay));
        if (b[3] == 0x01 || b[3] == 0x04) {
            gsize al = b[3] == 0x01 ? 4 : 16;
            static const guint8 zero[16];
            if (memcmp(b + 4, zero, al) != 0) {
                c->relay.family = b[3] == 0x01 ? 4 : 6;
                memcpy(c->relay.addr, b + 4, al);
            }
            c->relay.port = (guint16)((b[4 + al] << 8) | b[5 + al]);
        } else if (c->command == SHIMMER_PROXY_ASSOCIATE_UDP) {
            return fail(c, error, SHIMMER_PROXY_ERROR_UNSUPPORTED,
                        "the SOCKS proxy names its UDP relay by a host name");
        }
        if (c->command == SHIMMER_PROXY_ASSOCIATE_UDP && c->relay.port == 0)
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                        "the SOCKS proxy's UDP relay has port 0");
        c->state = ST_DONE;
        return SHIMMER_PROXY_STATUS_DONE;
    }
    default:
        break;
    }
    return SHIMMER_PROXY_STATUS_WANT_MORE;
}

/* How many bytes the message of the current state has, given the first
 * LEN of them (0: not known yet). */
static gsize socks_need(const ShimmerProxyClient *c, gboolean *bad_atyp)
{
    *bad_atyp = FALSE;
    if (c->state != ST_SOCKS_REPLY)
        return 2;
    if (c->in->len < 5)
        return 5;
    switch (c->in->data[3]) {
    case 0x01:
        return 4 + 4 + 2;
    case 0x04:
        return 4 + 16 + 2;
    case 0x03:
        return 4 + 1 + c->in->data[4] + 2;
    default:
        *bad_atyp = TRUE;
        return 5;
    }
}

static ShimmerProxyStatus socks_feed(ShimmerProxyClient *c, const guint8 *data, gsize len,
                                     gsize *used, GError **error)
{
    gsize offset = 0;
    while (offset < len) {
        gboolean bad = FALSE;
        gsize need = socks_need(c, &bad);
        if (c->in->len < need) {
            gsize take = MIN(need - c->in->len, len - offset);
            g_byte_array_append(c->in, data + offset, (guint)take);
            offset += take;
            *used = offset;
            need = socks_need(c, &bad);
        }
        if (bad && c->in->data[0] == 0x05 && c->in->data[1] == 0x00)
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                        "the SOCKS proxy's reply has address type 0x%02x", c->in->data[3]);
        if (c->in->len < need && !bad)
            continue;
        if (c->in->len > SOCKS_REPLY_MAX) /* socks_need() never asks for more */
            return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL, "the SOCKS reply is too long");
        ShimmerProxyStatus st = socks_step(c, error);
        g_byte_array_set_size(c->in, 0);
        if (st != SHIMMER_PROXY_STATUS_WANT_MORE)
            return st;
    }
    *used = offset;
    return SHIMMER_PROXY_STATUS_WANT_MORE;
}

/* ---------- the driver ---------- */

void shimmer_proxy_client_begin(ShimmerProxyClient *c, const guint8 *random)
{
    shimmer_secret_buf_reset(&c->out);
    g_byte_array_set_size(c->in, 0);
    for (gsize i = 0; i < SHIMMER_PROXY_RANDOM_LEN; i++)
        g_snprintf(c->cnonce + 2 * i, 3, "%02x", random[i]);
    if (c->type == SHIMMER_PROXY_HTTP) {
        http_request(c);
        c->state = ST_HTTP_HEAD;
        return;
    }
    guint8 hello[4] = {0x05, 0x01, 0x00, 0x02};
    if (c->username != NULL)
        hello[1] = 0x02;
    out_bytes(c, hello, c->username != NULL ? 4 : 3);
    c->state = ST_SOCKS_METHOD;
}

ShimmerProxyStatus shimmer_proxy_client_feed(ShimmerProxyClient *c, const guint8 *data, gsize len,
                                             gsize *used, GError **error)
{
    *used = 0;
    switch (c->state) {
    case ST_HTTP_HEAD:
        return http_feed(c, data, len, used, error);
    case ST_SOCKS_METHOD:
    case ST_SOCKS_AUTH:
    case ST_SOCKS_REPLY:
        return socks_feed(c, data, len, used, error);
    case ST_DONE:
        return SHIMMER_PROXY_STATUS_DONE;
    case ST_FAILED:
        g_set_error_literal(error, SHIMMER_PROXY_ERROR, SHIMMER_PROXY_ERROR_PROTOCOL,
                            "the proxy negotiation already failed");
        return SHIMMER_PROXY_STATUS_ERROR;
    case ST_IDLE:
    default:
        if (len == 0)
            return SHIMMER_PROXY_STATUS_WANT_MORE;
        return fail(c, error, SHIMMER_PROXY_ERROR_PROTOCOL,
                    "the proxy sent %" G_GSIZE_FORMAT " bytes before it was asked anything", len);
    }
}

/* ---------- UDP datagrams ---------- */

gsize shimmer_socks_udp_wrap(guint8 *buf, gsize size, const ShimmerSocksAddr *dst)
{
    gsize al = dst->family == 4 ? 4 : dst->family == 6 ? 16 : 0;
    if (al == 0 || size < 4 + al + 2)
        return 0;
    buf[0] = buf[1] = 0; /* RSV */
    buf[2] = 0;          /* FRAG: a whole datagram */
    buf[3] = al == 4 ? 0x01 : 0x04;
    memcpy(buf + 4, dst->addr, al);
    buf[4 + al] = (guint8)(dst->port >> 8);
    buf[5 + al] = (guint8)dst->port;
    return 4 + al + 2;
}

gsize shimmer_socks_udp_unwrap(const guint8 *pkt, gsize len, ShimmerSocksAddr *from)
{
    if (len < 4 || pkt[0] != 0 || pkt[1] != 0 || pkt[2] != 0)
        return 0;
    gsize al = pkt[3] == 0x01 ? 4 : pkt[3] == 0x04 ? 16 : 0;
    if (al == 0 || len < 4 + al + 2)
        return 0;
    memset(from, 0, sizeof(*from));
    from->family = al == 4 ? 4 : 6;
    memcpy(from->addr, pkt + 4, al);
    from->port = (guint16)((pkt[4 + al] << 8) | pkt[5 + al]);
    return 4 + al + 2;
}
