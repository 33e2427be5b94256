/* SPDX-License-Identifier: MIT */
#include "keys.h"

#include "crl.h"
#include "secure.h"

#include <gnutls/gnutls.h>
#include <gnutls/pkcs12.h>
#include <gnutls/x509.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <string.h>

/* clang-format would put spaces into the quark's name. */
/* clang-format off */
G_DEFINE_QUARK(shimmer-keys-error-quark, shimmer_keys_error)
/* clang-format on */

#define STATIC_KEY_LABEL      "OpenVPN Static key V1"
#define TC_V2_CLIENT_LABEL    "OpenVPN tls-crypt-v2 client key"
#define TC_V2_SERVER_LABEL    "OpenVPN tls-crypt-v2 server key"
#define STATIC_KEY_HEX_DIGITS (2 * SHIMMER_STATIC_KEY_LEN)
#define FINGERPRINT_LEN       32

/*
 * Key material is small (a large CA bundle is a few hundred KiB). The cap keeps
 * every length inside gnutls_datum_t's unsigned int and turns a mistaken path
 * (a disk image, a log file) into a clear error instead of a long parse.
 */
#define MAX_INPUT_LEN ((gsize)64 * 1024 * 1024)

/* The header declares no error codes: every failure is "this data is not
 * acceptable", and the message says why. */
#define KEYS_ERROR_INVALID 0

G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_crt_t, gnutls_x509_crt_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_crl_t, gnutls_x509_crl_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_x509_privkey_t, gnutls_x509_privkey_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_pkcs12_t, gnutls_pkcs12_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(gnutls_pkcs12_bag_t, gnutls_pkcs12_bag_deinit, NULL)

static void set_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void set_error(GError **error, const char *format, ...)
{
    va_list ap;

    va_start(ap, format);
    g_autofree char *message = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_set_error_literal(error, SHIMMER_KEYS_ERROR, KEYS_ERROR_INVALID, message);
}

static gboolean check_input_size(gsize len, const char *what, GError **error)
{
    if (len > MAX_INPUT_LEN) {
        set_error(error, "%s is too large (%" G_GSIZE_FORMAT " bytes)", what, len);
        return FALSE;
    }
    return TRUE;
}

/*
 * Heap memory that may hold secrets (decoded keys, their base64 text, PKCS#12
 * DER with an unencrypted key). g_auto() clears it on every exit path, and the
 * whole allocation is wiped, not just the part that was used.
 */
typedef struct {
    guint8 *p;
    gsize size; /* allocated */
    gsize len;  /* used */
} SecretBuf;

static void secret_buf_clear(SecretBuf *b)
{
    shimmer_free_secret(b->p, b->size);
    b->p = NULL;
    b->size = 0;
    b->len = 0;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SecretBuf, secret_buf_clear)

static void secret_buf_alloc(SecretBuf *b, gsize size)
{
    secret_buf_clear(b);
    b->p = g_malloc(size);
    b->size = size;
}

/* The static key while it is being decoded, so that g_auto() wipes it. */
typedef struct {
    guint8 b[SHIMMER_STATIC_KEY_LEN];
} StaticKeyTmp;

static void static_key_tmp_clear(StaticKeyTmp *t)
{
    shimmer_wipe(t, sizeof *t);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(StaticKeyTmp, static_key_tmp_clear)

/* ---- Lines ---------------------------------------------------------------- */

/* Whitespace that may surround any line; '\r' covers CRLF files. */
static gboolean is_line_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

typedef struct {
    const char *data;
    gsize len;
    gsize pos;    /* start of the next line */
    guint lineno; /* 1-based number of the line last returned */
} LineReader;

typedef struct {
    const char *start; /* first byte of the raw line */
    const char *text;  /* the line without surrounding whitespace */
    gsize text_len;
    guint lineno;
} Line;

static void line_reader_init(LineReader *r, const void *data, gsize len, guint first_lineno)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->lineno = first_lineno - 1;
}

static gboolean line_next(LineReader *r, Line *line)
{
    if (r->pos >= r->len)
        return FALSE;

    const char *start = r->data + r->pos;
    gsize rest = r->len - r->pos;
    const char *nl = memchr(start, '\n', rest);
    gsize raw_len = nl != NULL ? (gsize)(nl - start) : rest;

    r->pos += nl != NULL ? raw_len + 1 : raw_len;
    r->lineno++;

    const char *b = start;
    const char *e = start + raw_len;
    while (b < e && is_line_space(*b))
        b++;
    while (e > b && is_line_space(e[-1]))
        e--;

    line->start = start;
    line->text = b;
    line->text_len = (gsize)(e - b);
    line->lineno = r->lineno;
    return TRUE;
}

static gboolean line_has_prefix(const Line *line, const char *prefix)
{
    gsize n = strlen(prefix);
    return line->text_len >= n && memcmp(line->text, prefix, n) == 0;
}

static gboolean line_is_ignorable(const Line *line)
{
    return line->text_len == 0 || line->text[0] == '#';
}

/* A UTF-8 byte order mark, which some Windows editors put in front of text
 * files; it is not "text before the BEGIN line". */
static void skip_bom(const void **data, gsize *len)
{
    if (*len >= 3 && memcmp(*data, "\xef\xbb\xbf", 3) == 0) {
        *data = (const char *)*data + 3;
        *len -= 3;
    }
}

static gboolean looks_like_der(const void *data, gsize len)
{
    /* Every DER structure we accept (certificate, key, PKCS#12) is a SEQUENCE. */
    return len >= 2 && ((const guint8 *)data)[0] == 0x30;
}

/* ---- PEM armour ----------------------------------------------------------- */

/*
 * A PEM block found by line scanning. Lines are matched whole (after trimming),
 * so a marker in the middle of a line is not a marker, and a BEGIN without a
 * matching END is reported instead of being silently skipped: GnuTLS's own
 * scanners search for substrings and would ignore a truncated final block.
 */
typedef struct {
    const char *label;
    gsize label_len;
    const char *start; /* the BEGIN line's first dash */
    const char *end;   /* just after the END line's last dash */
    const char *body;  /* the line after BEGIN */
    gsize body_len;    /* up to the start of the END line */
    guint begin_line;
    guint end_line;
    guint stray_line; /* first line before BEGIN that is neither blank nor a
                       * '#' comment, 0 if none */
} PemBlock;

typedef enum {
    PEM_NONE,
    PEM_FOUND,
    PEM_ERROR,
} PemResult;

static gboolean pem_label_is(const PemBlock *blk, const char *label)
{
    return blk->label_len == strlen(label) && memcmp(blk->label, label, blk->label_len) == 0;
}

static gboolean pem_label_ends_with(const PemBlock *blk, const char *suffix)
{
    gsize n = strlen(suffix);
    return blk->label_len >= n && memcmp(blk->label + blk->label_len - n, suffix, n) == 0;
}

static gboolean pem_is_end_of(const Line *line, const PemBlock *blk)
{
    static const char head[] = "-----END ";
    static const char tail[] = "-----";
    gsize hl = sizeof head - 1;
    gsize tl = sizeof tail - 1;

    return line->text_len == hl + blk->label_len + tl && memcmp(line->text, head, hl) == 0 &&
           memcmp(line->text + hl, blk->label, blk->label_len) == 0 &&
           memcmp(line->text + hl + blk->label_len, tail, tl) == 0;
}

/* Finds the next block from R's position. */
static PemResult pem_next(LineReader *r, PemBlock *blk, GError **error)
{
    static const char head[] = "-----BEGIN ";
    static const char tail[] = "-----";
    const gsize hl = sizeof head - 1;
    const gsize tl = sizeof tail - 1;
    Line line;

    memset(blk, 0, sizeof *blk);
    for (;;) {
        if (!line_next(r, &line))
            return PEM_NONE;
        if (line_has_prefix(&line, "-----BEGIN"))
            break;
        if (line_has_prefix(&line, "-----END")) {
            set_error(error, "PEM END line without a BEGIN line (line %u)", line.lineno);
            return PEM_ERROR;
        }
        if (!line_is_ignorable(&line) && blk->stray_line == 0)
            blk->stray_line = line.lineno;
    }

    if (line.text_len <= hl + tl || memcmp(line.text, head, hl) != 0 ||
        memcmp(line.text + line.text_len - tl, tail, tl) != 0 || line.text[hl] == ' ' ||
        line.text[line.text_len - tl - 1] == ' ' || line.text[line.text_len - tl - 1] == '-') {
        set_error(error, "malformed PEM BEGIN line (line %u)", line.lineno);
        return PEM_ERROR;
    }
    blk->label = line.text + hl;
    blk->label_len = line.text_len - hl - tl;
    blk->start = line.text;
    blk->begin_line = line.lineno;
    blk->body = r->data + r->pos;

    for (;;) {
        if (!line_next(r, &line)) {
            set_error(error, "the PEM block that begins at line %u has no END line (truncated?)",
                      blk->begin_line);
            return PEM_ERROR;
        }
        if (line_has_prefix(&line, "-----BEGIN")) {
            set_error(error, "the PEM block that begins at line %u has no END line before line %u",
                      blk->begin_line, line.lineno);
            return PEM_ERROR;
        }
        if (line_has_prefix(&line, "-----END")) {
            if (!pem_is_end_of(&line, blk)) {
                set_error(error, "the END line (line %u) does not match the BEGIN line (line %u)",
                          line.lineno, blk->begin_line);
                return PEM_ERROR;
            }
            blk->body_len = (gsize)(line.start - blk->body);
            blk->end = line.text + line.text_len;
            blk->end_line = line.lineno;
            return PEM_FOUND;
        }
    }
}

/* What a block is, for messages. Labels are not secret, but an unknown one is
 * quoted only when it is short printable ASCII. */
static char *pem_describe(const PemBlock *blk)
{
    static const struct {
        const char *label;
        const char *what;
    } known[] = {
        {"CERTIFICATE", "a certificate"},
        {"X509 CERTIFICATE", "a certificate"},
        {"TRUSTED CERTIFICATE", "an OpenSSL trusted certificate"},
        {"CERTIFICATE REQUEST", "a certificate request"},
        {"NEW CERTIFICATE REQUEST", "a certificate request"},
        {"X509 CRL", "a CRL"},
        {"PUBLIC KEY", "a public key"},
        {"DH PARAMETERS", "DH parameters"},
        {"PKCS7", "a PKCS#7 structure"},
        {STATIC_KEY_LABEL, "an OpenVPN static key"},
        {TC_V2_CLIENT_LABEL, "a tls-crypt-v2 client key"},
        {TC_V2_SERVER_LABEL, "a tls-crypt-v2 server key"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(known); i++) {
        if (pem_label_is(blk, known[i].label))
            return g_strdup(known[i].what);
    }
    if (pem_label_ends_with(blk, "PRIVATE KEY"))
        return g_strdup("a private key");

    gboolean printable = blk->label_len <= 64;
    for (gsize i = 0; printable && i < blk->label_len; i++)
        printable = g_ascii_isprint(blk->label[i]);
    if (printable)
        return g_strdup_printf("a PEM block labelled \"%.*s\"", (int)blk->label_len, blk->label);
    return g_strdup("a PEM block with an unreadable label");
}

/*
 * For single-block formats (static keys, tls-crypt-v2 keys): exactly one block
 * with LABEL, only blank and '#' comment lines around it. Anything else is more
 * likely a wrong file or a paste accident than something to guess about.
 */
static gboolean pem_find_only(const void *data, gsize len, const char *label, const char *what,
                              PemBlock *blk, GError **error)
{
    LineReader r;
    Line line;

    skip_bom(&data, &len);
    line_reader_init(&r, data, len, 1);
    switch (pem_next(&r, blk, error)) {
    case PEM_ERROR:
        return FALSE;
    case PEM_NONE:
        if (len == 0)
            set_error(error, "not %s: the data is empty", what);
        else
            set_error(error, "not %s: no \"-----BEGIN %s-----\" line", what, label);
        return FALSE;
    case PEM_FOUND:
        break;
    }

    if (!pem_label_is(blk, label)) {
        g_autofree char *found = pem_describe(blk);
        set_error(error, "expected %s but found %s", what, found);
        return FALSE;
    }
    if (blk->stray_line != 0) {
        set_error(error, "unexpected text before the BEGIN line (line %u)", blk->stray_line);
        return FALSE;
    }
    while (line_next(&r, &line)) {
        if (line_is_ignorable(&line))
            continue;
        if (line_has_prefix(&line, "-----BEGIN"))
            set_error(error, "more than one PEM block (another begins at line %u)", line.lineno);
        else
            set_error(error, "unexpected text after the END line (line %u)", line.lineno);
        return FALSE;
    }
    return TRUE;
}

/* ---- Base64 ---------------------------------------------------------------- */

static gboolean is_base64_char(char c)
{
    return g_ascii_isalnum(c) || c == '+' || c == '/';
}

/*
 * Checks base64 TEXT (whitespace and line breaks allowed anywhere): only the
 * alphabet, '=' only as final padding, a multiple of 4 characters. When CLEAN
 * is non-NULL (LEN + 1 bytes) the characters are copied there without the
 * whitespace, NUL terminated, and *N_CLEAN is their number.
 */
static gboolean base64_scan(const char *text, gsize len, guint first_lineno, const char *what,
                            guint8 *clean, gsize *n_clean, GError **error)
{
    guint lineno = first_lineno;
    gsize n = 0;
    gsize pad = 0;

    for (gsize i = 0; i < len; i++) {
        char c = text[i];

        if (c == '\n') {
            lineno++;
            continue;
        }
        if (is_line_space(c))
            continue;
        if (c == '=') {
            if (++pad > 2) {
                set_error(error, "%s: too much base64 padding (line %u)", what, lineno);
                return FALSE;
            }
        } else if (!is_base64_char(c)) {
            set_error(error, "%s: invalid base64 character (line %u)", what, lineno);
            return FALSE;
        } else if (pad > 0) {
            set_error(error, "%s: base64 data continues after the '=' padding (line %u)", what,
                      lineno);
            return FALSE;
        }
        if (clean != NULL)
            clean[n] = (guint8)c;
        n++;
    }

    if (n == 0) {
        set_error(error, "%s: no base64 data", what);
        return FALSE;
    }
    if (n % 4 != 0) {
        set_error(error,
                  "%s: base64 data is truncated (%" G_GSIZE_FORMAT
                  " characters, not a multiple of 4)",
                  what, n);
        return FALSE;
    }
    if (clean != NULL)
        clean[n] = '\0';
    if (n_clean != NULL)
        *n_clean = n;
    return TRUE;
}

/* GnuTLS's messages for bad base64 ("Base64 unexpected header error") do not
 * help a user find the damage; this check runs first and names the line. */
static gboolean base64_check(const char *text, gsize len, guint first_lineno, const char *what,
                             GError **error)
{
    return base64_scan(text, len, first_lineno, what, NULL, NULL, error);
}

/*
 * Decodes base64 TEXT into OUT. g_base64_decode() alone skips characters
 * outside the alphabet, so a corrupt key would decode to something; every
 * character is checked first. Both the stripped text and the result live in
 * wiped buffers, and GLib's decoder state is wiped too, since it carries the
 * last bits of the data.
 */
static gboolean base64_decode_strict(const char *text, gsize len, guint first_lineno,
                                     const char *what, SecretBuf *out, GError **error)
{
    g_auto(SecretBuf) clean = {0};
    gsize n = 0;

    secret_buf_alloc(&clean, len + 1);
    if (!base64_scan(text, len, first_lineno, what, clean.p, &n, error))
        return FALSE;
    clean.len = n;

    gint state = 0;
    guint save = 0;

    /* The bound GLib documents for g_base64_decode_step()'s output. */
    secret_buf_alloc(out, n / 4 * 3 + 3);
    out->len = g_base64_decode_step((const char *)clean.p, n, out->p, &state, &save);
    shimmer_wipe(&state, sizeof state);
    shimmer_wipe(&save, sizeof save);
    return TRUE;
}

/* ---- Static keys ---------------------------------------------------------- */

gboolean shimmer_keys_parse_static(const void *data, gsize len, guint8 out[SHIMMER_STATIC_KEY_LEN],
                                   GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(out != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    PemBlock blk;
    g_auto(StaticKeyTmp) key = {{0}};
    guint lineno;
    gsize digits = 0;

    if (!check_input_size(len, "static key", error) ||
        !pem_find_only(data, len, STATIC_KEY_LABEL, "an OpenVPN static key", &blk, error))
        return FALSE;

    lineno = blk.begin_line + 1;
    for (gsize i = 0; i < blk.body_len; i++) {
        char c = blk.body[i];

        if (c == '\n') {
            lineno++;
            continue;
        }
        if (is_line_space(c))
            continue;

        int v = g_ascii_xdigit_value(c);
        if (v < 0) {
            set_error(error, "static key: a character that is not a hex digit at line %u", lineno);
            return FALSE;
        }
        /* Keep counting past 512 so that the message gives the real count. */
        if (digits < STATIC_KEY_HEX_DIGITS) {
            if (digits % 2 == 0)
                key.b[digits / 2] = (guint8)(v << 4);
            else
                key.b[digits / 2] |= (guint8)v;
        }
        digits++;
    }
    if (digits != STATIC_KEY_HEX_DIGITS) {
        set_error(error, "static key: expected %d hex digits, found %" G_GSIZE_FORMAT,
                  STATIC_KEY_HEX_DIGITS, digits);
        return FALSE;
    }

    memcpy(out, key.b, SHIMMER_STATIC_KEY_LEN);
    return TRUE;
}

/* ---- tls-crypt-v2 --------------------------------------------------------- */

static gboolean decode_tls_crypt_v2(const void *data, gsize len, const char *label,
                                    const char *what, SecretBuf *raw, GError **error)
{
    PemBlock blk;

    if (!check_input_size(len, what, error))
        return FALSE;
    g_autofree char *article = g_strdup_printf("a %s", what);
    if (!pem_find_only(data, len, label, article, &blk, error))
        return FALSE;
    return base64_decode_strict(blk.body, blk.body_len, blk.begin_line + 1, what, raw, error);
}

gboolean shimmer_keys_parse_tls_crypt_v2_client(const void *data, gsize len,
                                                ShimmerTlsCryptV2ClientKey *out, GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(out != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    static const char what[] = "tls-crypt-v2 client key";
    const gsize min_len = SHIMMER_STATIC_KEY_LEN + SHIMMER_TLS_CRYPT_V2_MIN_WKC_LEN;
    const gsize max_len = SHIMMER_STATIC_KEY_LEN + SHIMMER_TLS_CRYPT_V2_MAX_WKC_LEN;
    g_auto(SecretBuf) raw = {0};

    if (!decode_tls_crypt_v2(data, len, TC_V2_CLIENT_LABEL, what, &raw, error))
        return FALSE;

    if (raw.len < min_len) {
        set_error(error,
                  "%s is too short: %" G_GSIZE_FORMAT " bytes, expected at least %" G_GSIZE_FORMAT,
                  what, raw.len, min_len);
        return FALSE;
    }
    if (raw.len > max_len) {
        set_error(error,
                  "%s is too long: %" G_GSIZE_FORMAT " bytes, expected at most %" G_GSIZE_FORMAT,
                  what, raw.len, max_len);
        return FALSE;
    }

    /* The trailer is what the server reads to find WKc's start in the first
     * packet; a key whose trailer disagrees would be rejected there. */
    gsize wkc_len = raw.len - SHIMMER_STATIC_KEY_LEN;
    guint trailer = ((guint)raw.p[raw.len - 2] << 8) | raw.p[raw.len - 1];
    if (trailer != wkc_len) {
        set_error(error,
                  "%s is inconsistent: the wrapped key is %" G_GSIZE_FORMAT
                  " bytes but its length field says %u",
                  what, wkc_len, trailer);
        return FALSE;
    }

    memcpy(out->kc, raw.p, SHIMMER_STATIC_KEY_LEN);
    memcpy(out->wkc, raw.p + SHIMMER_STATIC_KEY_LEN, wkc_len);
    memset(out->wkc + wkc_len, 0, sizeof out->wkc - wkc_len);
    out->wkc_len = wkc_len;
    return TRUE;
}

gboolean shimmer_keys_parse_tls_crypt_v2_server(const void *data, gsize len,
                                                guint8 out[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN],
                                                GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(out != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    static const char what[] = "tls-crypt-v2 server key";
    g_auto(SecretBuf) raw = {0};

    if (!decode_tls_crypt_v2(data, len, TC_V2_SERVER_LABEL, what, &raw, error))
        return FALSE;
    if (raw.len != SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN) {
        set_error(error, "%s: expected %d bytes, found %" G_GSIZE_FORMAT, what,
                  SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN, raw.len);
        return FALSE;
    }
    memcpy(out, raw.p, SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN);
    return TRUE;
}

int shimmer_keys_tls_crypt_v2_kind(const void *data, gsize len)
{
    static const char client[] = "-----BEGIN " TC_V2_CLIENT_LABEL "-----";
    static const char server[] = "-----BEGIN " TC_V2_SERVER_LABEL "-----";
    LineReader r;
    Line line;

    if ((data == NULL && len > 0) || len > MAX_INPUT_LEN)
        return 0;

    /* Only the first BEGIN line counts: it is what the parsers look at, and
     * this must not need a complete block to tell the caller which to call. */
    skip_bom(&data, &len);
    line_reader_init(&r, data, len, 1);
    while (line_next(&r, &line)) {
        if (!line_has_prefix(&line, "-----BEGIN"))
            continue;
        if (line.text_len == sizeof client - 1 && memcmp(line.text, client, line.text_len) == 0)
            return 1;
        if (line.text_len == sizeof server - 1 && memcmp(line.text, server, line.text_len) == 0)
            return 2;
        return 0;
    }
    return 0;
}

/* ---- Certificates and CRLs -------------------------------------------------- */

static gnutls_datum_t pem_datum(const PemBlock *blk)
{
    /* GnuTLS does not write to data it imports; the datum type just lacks const. */
    gnutls_datum_t d = {(unsigned char *)blk->start, (unsigned int)(blk->end - blk->start)};
    return d;
}

static gboolean is_cert_label(const PemBlock *blk)
{
    return pem_label_is(blk, "CERTIFICATE") || pem_label_is(blk, "X509 CERTIFICATE");
}

/* The message for data that holds none of the wanted blocks. */
static void set_not_found_error(GError **error, const char *what, const char *marker,
                                const char *other, const void *data, gsize len)
{
    if (other != NULL)
        set_error(error, "not %s: found %s", what, other);
    else if (len == 0)
        set_error(error, "not %s: the data is empty", what);
    else if (looks_like_der(data, len))
        set_error(error, "not %s: the data looks like binary DER, PEM is needed", what);
    else
        set_error(error, "not %s: no \"-----BEGIN %s-----\" line", what, marker);
}

/* What shimmer_keys_check_certs() and shimmer_keys_check_crl() look for: a
 * file of PEM blocks, the wanted ones each decoded by GnuTLS, others skipped
 * (a CA file may also carry CRLs or, in a combined file, the key: OpenVPN
 * reads such files). */
typedef struct {
    const char *item;      /* in messages: "certificate 2 (line 13) ..." */
    const char *input;     /* for check_input_size() */
    const char *not_found; /* "not a PEM certificate: ..." */
    const char *marker;    /* the BEGIN label named when none is found */
    gboolean (*wanted)(const PemBlock *blk);
    /* A block that must not be skipped: sets ERROR, returns TRUE. May be NULL. */
    gboolean (*refused)(const PemBlock *blk, GError **error);
    /* GnuTLS's result for importing the block. */
    int (*decode)(const gnutls_datum_t *d);
} PemObjectKind;

/* Checks every block of KIND in DATA; the number found goes to COUNT. */
static gboolean check_pem_objects(const void *data, gsize len, const PemObjectKind *kind,
                                  guint *count, GError **error)
{
    LineReader r;
    PemBlock blk;
    PemResult res;
    g_autofree char *other = NULL;

    *count = 0;
    if (!check_input_size(len, kind->input, error))
        return FALSE;

    line_reader_init(&r, data, len, 1);
    while ((res = pem_next(&r, &blk, error)) == PEM_FOUND) {
        if (!kind->wanted(&blk)) {
            if (kind->refused != NULL && kind->refused(&blk, error))
                return FALSE;
            if (other == NULL)
                other = pem_describe(&blk);
            continue;
        }
        gnutls_datum_t d = pem_datum(&blk);
        (*count)++;
        g_autofree char *what =
            g_strdup_printf("%s %u (line %u)", kind->item, *count, blk.begin_line);
        if (!base64_check(blk.body, blk.body_len, blk.begin_line + 1, what, error))
            return FALSE;
        int rc = kind->decode(&d);
        if (rc < 0) {
            set_error(error, "%s does not decode: %s", what, gnutls_strerror(rc));
            return FALSE;
        }
    }
    if (res == PEM_ERROR)
        return FALSE;
    if (*count == 0) {
        set_not_found_error(error, kind->not_found, kind->marker, other, data, len);
        return FALSE;
    }
    return TRUE;
}

static gboolean refuse_trusted_cert(const PemBlock *blk, GError **error)
{
    if (!pem_label_is(blk, "TRUSTED CERTIFICATE"))
        return FALSE;
    /* Skipping it would silently drop a CA the user relies on. */
    set_error(error,
              "the certificate at line %u is in OpenSSL's TRUSTED CERTIFICATE format, which is "
              "not supported",
              blk->begin_line);
    return TRUE;
}

static int decode_cert(const gnutls_datum_t *d)
{
    g_auto(gnutls_x509_crt_t) crt = NULL;
    int rc = gnutls_x509_crt_init(&crt);
    return rc < 0 ? rc : gnutls_x509_crt_import(crt, d, GNUTLS_X509_FMT_PEM);
}

static gboolean is_crl_label(const PemBlock *blk)
{
    return pem_label_is(blk, "X509 CRL");
}

static int decode_crl(const gnutls_datum_t *d)
{
    g_auto(gnutls_x509_crl_t) crl = NULL;
    int rc = gnutls_x509_crl_init(&crl);
    if (rc >= 0)
        rc = gnutls_x509_crl_import(crl, d, GNUTLS_X509_FMT_PEM);
    /* Dates that are BER but not DER: GnuTLS refuses, crl.c reads them. */
    if (rc < 0) {
        g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(d->data, d->size, NULL);
        if (set != NULL)
            rc = 0;
    }
    return rc;
}

gboolean shimmer_keys_check_certs(const void *data, gsize len, gboolean require_one, guint *n_certs,
                                  GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    static const PemObjectKind certs = {
        "certificate", "certificate data",  "a PEM certificate", "CERTIFICATE",
        is_cert_label, refuse_trusted_cert, decode_cert,
    };
    guint count;
    if (!check_pem_objects(data, len, &certs, &count, error))
        return FALSE;
    if (require_one && count != 1) {
        set_error(error, "expected exactly one certificate, found %u", count);
        return FALSE;
    }
    if (n_certs != NULL)
        *n_certs = count;
    return TRUE;
}

gboolean shimmer_keys_check_crl(const void *data, gsize len, GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    static const PemObjectKind crls = {
        "CRL", "CRL data", "a PEM CRL", "X509 CRL", is_crl_label, NULL, decode_crl,
    };
    guint count;
    return check_pem_objects(data, len, &crls, &count, error);
}

/* ---- Private keys ------------------------------------------------------------ */

/* RFC 1421 headers of a traditional ("BEGIN RSA PRIVATE KEY") block. */
typedef struct {
    gboolean encrypted; /* Proc-Type: 4,ENCRYPTED */
    gboolean dek_info;
    const char *b64; /* the base64 after the headers */
    gsize b64_len;
    guint b64_line;
} PemHeaders;

static void pem_read_headers(const PemBlock *blk, PemHeaders *h)
{
    LineReader r;
    Line line;
    gboolean any = FALSE;

    memset(h, 0, sizeof *h);
    h->b64 = blk->body;
    h->b64_len = blk->body_len;
    h->b64_line = blk->begin_line + 1;

    line_reader_init(&r, blk->body, blk->body_len, blk->begin_line + 1);
    for (;;) {
        gsize line_pos = r.pos;

        if (!line_next(&r, &line))
            break;
        /* Base64 has no ':', so the first line without one ends the headers;
         * normally a blank line does. */
        if ((line.text_len == 0 && any) || memchr(line.text, ':', line.text_len) == NULL) {
            if (any) {
                gsize from = line.text_len == 0 ? r.pos : line_pos;
                h->b64 = blk->body + from;
                h->b64_len = blk->body_len - from;
                h->b64_line = line.text_len == 0 ? line.lineno + 1 : line.lineno;
            }
            break;
        }
        any = TRUE;
        if (line_has_prefix(&line, "Proc-Type:") &&
            g_strstr_len(line.text, (gssize)line.text_len, "ENCRYPTED") != NULL)
            h->encrypted = TRUE;
        else if (line_has_prefix(&line, "DEK-Info:"))
            h->dek_info = TRUE;
    }
}

/* Without the passphrase an encrypted key cannot be fully parsed, but its
 * outer structure can, so that a corrupt file is reported now rather than
 * after the askpass prompt. */
static gboolean check_encrypted_structure(const PemBlock *blk, const PemHeaders *hdr,
                                          GError **error)
{
    if (pem_label_is(blk, "ENCRYPTED PRIVATE KEY")) {
        gnutls_datum_t d = pem_datum(blk);
        unsigned int schema = 0;
        unsigned int cipher = 0;
        char *oid = NULL;
        int rc =
            gnutls_pkcs8_info(&d, GNUTLS_X509_FMT_PEM, &schema, &cipher, NULL, NULL, NULL, &oid);

        if (rc == GNUTLS_E_UNKNOWN_CIPHER_TYPE && oid != NULL)
            set_error(error, "private key is encrypted with an unsupported scheme (OID %s)", oid);
        else if (rc < 0)
            set_error(error, "encrypted private key does not decode: %s", gnutls_strerror(rc));
        gnutls_free(oid);
        return rc >= 0;
    }

    if (!hdr->dek_info) {
        set_error(error, "encrypted private key has no DEK-Info header");
        return FALSE;
    }
    return TRUE;
}

gboolean shimmer_keys_check_private_key(const void *data, gsize len, const char *passphrase,
                                        gboolean *encrypted, GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    LineReader r;
    PemBlock blk;
    PemBlock key = {0};
    PemResult res;
    guint n_keys = 0;
    g_autofree char *other = NULL;

    if (!check_input_size(len, "private key data", error))
        return FALSE;

    /* A combined file (certificate and key) is common; only the key matters. */
    line_reader_init(&r, data, len, 1);
    while ((res = pem_next(&r, &blk, error)) == PEM_FOUND) {
        if (pem_label_ends_with(&blk, "PRIVATE KEY")) {
            if (++n_keys > 1) {
                set_error(error, "more than one private key (lines %u and %u)", key.begin_line,
                          blk.begin_line);
                return FALSE;
            }
            key = blk;
        } else if (other == NULL) {
            other = pem_describe(&blk);
        }
    }
    if (res == PEM_ERROR)
        return FALSE;
    if (n_keys == 0) {
        set_not_found_error(error, "a PEM private key", "PRIVATE KEY", other, data, len);
        return FALSE;
    }
    if (pem_label_is(&key, "OPENSSH PRIVATE KEY")) {
        set_error(error, "OpenSSH private keys are not supported; convert the key to PKCS#8");
        return FALSE;
    }

    PemHeaders hdr;
    pem_read_headers(&key, &hdr);
    gboolean is_encrypted = pem_label_is(&key, "ENCRYPTED PRIVATE KEY") || hdr.encrypted;
    if (encrypted != NULL)
        *encrypted = is_encrypted;

    if (!base64_check(hdr.b64, hdr.b64_len, hdr.b64_line,
                      is_encrypted ? "encrypted private key" : "private key", error))
        return FALSE;
    if (is_encrypted && !check_encrypted_structure(&key, &hdr, error))
        return FALSE;
    if (is_encrypted && passphrase == NULL)
        return TRUE;

    g_auto(gnutls_x509_privkey_t) pk = NULL;
    gnutls_datum_t d = pem_datum(&key);
    int rc = gnutls_x509_privkey_init(&pk);

    /* A plain key is imported without a password: given one, GnuTLS would try
     * to decrypt a plain PKCS#8 key and fail. */
    if (rc >= 0)
        rc = gnutls_x509_privkey_import2(pk, &d, GNUTLS_X509_FMT_PEM,
                                         is_encrypted ? passphrase : NULL, 0);
    if (rc == GNUTLS_E_DECRYPTION_FAILED && is_encrypted) {
        set_error(error, "private key is encrypted and the passphrase does not decrypt it");
        return FALSE;
    }
    if (rc < 0) {
        set_error(error, "%s does not decode: %s",
                  is_encrypted ? "encrypted private key" : "private key", gnutls_strerror(rc));
        return FALSE;
    }
    return TRUE;
}

/* ---- PKCS#12 ------------------------------------------------------------------ */

gboolean shimmer_keys_check_pkcs12(const void *data, gsize len, gboolean is_base64, GError **error)
{
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    /* The DER may hold a key under an empty password: treat it as secret. */
    g_auto(SecretBuf) der = {0};
    g_auto(gnutls_pkcs12_t) p12 = NULL;
    gnutls_datum_t d;
    int rc;

    if (!check_input_size(len, "PKCS#12 data", error))
        return FALSE;

    if (is_base64) {
        if (!base64_decode_strict(data, len, 1, "PKCS#12", &der, error))
            return FALSE;
        d.data = der.p;
        d.size = (unsigned int)der.len;
    } else {
        d.data = (unsigned char *)data;
        d.size = (unsigned int)len;
    }

    if (d.size == 0) {
        set_error(error, "PKCS#12 data is empty");
        return FALSE;
    }
    if (!looks_like_der(d.data, d.size)) {
        set_error(error, "not a PKCS#12 file: the data is not DER%s",
                  is_base64 ? "" : " (an inline <pkcs12> block would be base64)");
        return FALSE;
    }

    rc = gnutls_pkcs12_init(&p12);
    if (rc >= 0)
        rc = gnutls_pkcs12_import(p12, &d, GNUTLS_X509_FMT_DER, 0);
    if (rc < 0) {
        set_error(error, "PKCS#12 data does not parse: %s", gnutls_strerror(rc));
        return FALSE;
    }

    /* Import only checks the outer layer; reading the bags checks the
     * authenticated safe inside. Encrypted bags are read, not decrypted. */
    for (int i = 0;; i++) {
        g_auto(gnutls_pkcs12_bag_t) bag = NULL;

        rc = gnutls_pkcs12_bag_init(&bag);
        if (rc >= 0)
            rc = gnutls_pkcs12_get_bag(p12, i, bag);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE && i > 0)
            break;
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
            set_error(error, "PKCS#12 data holds no certificate or key");
            return FALSE;
        }
        if (rc < 0) {
            set_error(error, "PKCS#12 data does not parse: its content is damaged (%s)",
                      gnutls_strerror(rc));
            return FALSE;
        }
    }
    return TRUE;
}

/* ---- Digests and fingerprints -------------------------------------------------- */

char *shimmer_keys_sha256_hex(const void *data, gsize len)
{
    g_return_val_if_fail(data != NULL || len == 0, NULL);

    static const char hex[] = "0123456789abcdef";
    struct sha256_ctx ctx;
    guint8 digest[SHA256_DIGEST_SIZE];
    char *out = g_malloc(2 * SHA256_DIGEST_SIZE + 1);

    sha256_init(&ctx);
    if (len > 0)
        sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof digest, digest);

    for (gsize i = 0; i < sizeof digest; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    out[2 * SHA256_DIGEST_SIZE] = '\0';
    return out;
}

gboolean shimmer_keys_parse_fingerprint(const char *text, guint8 out[32], GError **error)
{
    g_return_val_if_fail(text != NULL, FALSE);
    g_return_val_if_fail(out != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    guint8 fp[FINGERPRINT_LEN];
    gsize n_bytes = 0;
    const char *begin = text;
    const char *end = text + strlen(text);
    const char *p;

    /* Surrounding whitespace comes from inline blocks and CRLF files. */
    while (begin < end && g_ascii_isspace(*begin))
        begin++;
    while (end > begin && g_ascii_isspace(end[-1]))
        end--;
    if (begin == end) {
        set_error(error, "peer fingerprint is empty");
        return FALSE;
    }

    p = begin;
    for (;;) {
        gsize col = (gsize)(p - text) + 1;

        if (end - p < 2 || !g_ascii_isxdigit(p[0]) || !g_ascii_isxdigit(p[1])) {
            set_error(error, "peer fingerprint: expected two hex digits at column %" G_GSIZE_FORMAT,
                      col);
            return FALSE;
        }
        /* Keep counting past 32 so that the message gives the real count. */
        if (n_bytes < FINGERPRINT_LEN)
            fp[n_bytes] = (guint8)(g_ascii_xdigit_value(p[0]) << 4 | g_ascii_xdigit_value(p[1]));
        n_bytes++;
        p += 2;

        if (p == end)
            break;
        if (*p != ':') {
            set_error(error,
                      "peer fingerprint: expected ':' after each pair of hex digits (column "
                      "%" G_GSIZE_FORMAT ")",
                      col + 2);
            return FALSE;
        }
        p++;
        if (p == end) {
            set_error(error, "peer fingerprint ends with ':'");
            return FALSE;
        }
    }

    if (n_bytes != FINGERPRINT_LEN) {
        set_error(error, "peer fingerprint: expected %d bytes (SHA-256), found %" G_GSIZE_FORMAT,
                  FINGERPRINT_LEN, n_bytes);
        return FALSE;
    }
    memcpy(out, fp, sizeof fp);
    return TRUE;
}

/* ---------- peer certificate usage ---------- */

#define OID_NS_CERT_TYPE "2.16.840.1.113730.1.1"
#define OID_SERVER_AUTH  "1.3.6.1.5.5.7.3.1"
#define OID_CLIENT_AUTH  "1.3.6.1.5.5.7.3.2"
#define OID_NS_SGC       "2.16.840.1.113730.4.1"
#define OID_MS_SGC       "1.3.6.1.4.1.311.10.3.3"
#define NS_SSL_CLIENT    0x80
#define NS_SSL_SERVER    0x40

/* OpenSSL's long names for the extended key usages, which OpenVPN compares
 * remote-cert-eku against besides the dotted OID. */
static const struct {
    const char *name;
    const char *oid;
} eku_names[] = {
    {"TLS Web Server Authentication", OID_SERVER_AUTH},
    {"TLS Web Client Authentication", OID_CLIENT_AUTH},
    {"Code Signing", "1.3.6.1.5.5.7.3.3"},
    {"E-mail Protection", "1.3.6.1.5.5.7.3.4"},
    {"IPSec End System", "1.3.6.1.5.5.7.3.5"},
    {"IPSec Tunnel", "1.3.6.1.5.5.7.3.6"},
    {"IPSec User", "1.3.6.1.5.5.7.3.7"},
    {"Time Stamping", "1.3.6.1.5.5.7.3.8"},
    {"OCSP Signing", "1.3.6.1.5.5.7.3.9"},
    {"Any Extended Key Usage", "2.5.29.37.0"},
    {"Netscape Server Gated Crypto", OID_NS_SGC},
    {"Microsoft Server Gated Crypto", OID_MS_SGC},
    {"ipsec Internet Key Exchange", "1.3.6.1.5.5.7.3.17"},
    {"SSH Client", "1.3.6.1.5.5.7.3.21"},
    {"SSH Server", "1.3.6.1.5.5.7.3.22"},
};

/* The EKU OIDs of CRT into OIDS; FALSE when the extension is absent. */
static gboolean cert_ekus(gnutls_x509_crt_t crt, GPtrArray *oids)
{
    for (unsigned int i = 0; i < 64; i++) {
        char oid[128];
        size_t size = sizeof(oid);
        int rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &size, NULL);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            return i > 0;
        if (rc < 0) {
            /* Present but not readable: it counts as there, matching nothing. */
            g_ptr_array_add(oids, g_strdup("?"));
            if (rc != GNUTLS_E_SHORT_MEMORY_BUFFER)
                return TRUE;
        } else {
            g_ptr_array_add(oids, g_strdup(oid));
        }
    }
    return TRUE;
}

static gboolean oids_contain(GPtrArray *oids, const char *oid)
{
    for (guint i = 0; i < oids->len; i++) {
        if (strcmp(g_ptr_array_index(oids, i), oid) == 0)
            return TRUE;
    }
    return FALSE;
}

/* The first byte of the Netscape cert type BIT STRING; FALSE when absent.
 * A present but empty or undecodable extension gives 0 (no type). */
static gboolean cert_ns_type(gnutls_x509_crt_t crt, guint8 *bits)
{
    guint8 der[16];
    size_t size = sizeof(der);
    int rc = gnutls_x509_crt_get_extension_by_oid(crt, OID_NS_CERT_TYPE, 0, der, &size, NULL);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        return FALSE;
    *bits = 0;
    /* BIT STRING: tag 3, a short length, the unused-bit count, the bits. */
    if (rc == 0 && size >= 4 && der[0] == 0x03 && der[1] == size - 2 && der[2] < 8)
        *bits = der[3];
    return TRUE;
}

/* OpenVPN's order of the key usage bits (OpenSSL's bit 0 = 0x80); the
 * GnuTLS flags use the same values for these eight. FALSE when absent. */
static gboolean cert_key_usage(gnutls_x509_crt_t crt, guint *ku)
{
    unsigned int flags = 0;
    int rc = gnutls_x509_crt_get_key_usage(crt, &flags, NULL);
    if (rc < 0)
        return FALSE;
    *ku = flags & 0xFF;
    return TRUE;
}

/* OpenSSL's X509_check_purpose for an SSL server (or client) leaf. */
static gboolean ssl_purpose_ok(gnutls_x509_crt_t crt, gboolean server)
{
    g_autoptr(GPtrArray) ekus = g_ptr_array_new_with_free_func(g_free);
    if (cert_ekus(crt, ekus)) {
        gboolean ok = server ? oids_contain(ekus, OID_SERVER_AUTH) ||
                                   oids_contain(ekus, OID_NS_SGC) || oids_contain(ekus, OID_MS_SGC)
                             : oids_contain(ekus, OID_CLIENT_AUTH);
        if (!ok)
            return FALSE;
    }
    guint8 ns;
    if (cert_ns_type(crt, &ns) && !(ns & (server ? NS_SSL_SERVER : NS_SSL_CLIENT)))
        return FALSE;
    guint ku;
    guint need = server ? (GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT |
                           GNUTLS_KEY_KEY_AGREEMENT)
                        : (GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_AGREEMENT);
    if (cert_key_usage(crt, &ku) && !(ku & need))
        return FALSE;
    return TRUE;
}

static gboolean check_ns_cert_type(gnutls_x509_crt_t crt, gboolean server, GError **error)
{
    if (ssl_purpose_ok(crt, server))
        return TRUE;
    /* OpenVPN's fallback: the Netscape type alone, whatever else says. */
    guint8 ns;
    if (cert_ns_type(crt, &ns) && (ns & (server ? NS_SSL_SERVER : NS_SSL_CLIENT)))
        return TRUE;
    set_error(error,
              "ns-cert-type %s: the certificate is not for an SSL %s (its extended key usage, "
              "Netscape cert type or key usage says otherwise)",
              server ? "server" : "client", server ? "server" : "client");
    return FALSE;
}

static gboolean check_ku(gnutls_x509_crt_t crt, const GArray *want, const char *what,
                         GError **error)
{
    guint ku;
    if (!cert_key_usage(crt, &ku)) {
        set_error(error, "%s: the certificate has no key usage extension", what);
        return FALSE;
    }
    if (want == NULL || want->len == 0)
        return TRUE;
    GString *list = g_string_new(NULL);
    for (guint i = 0; i < want->len; i++) {
        guint w = g_array_index(want, guint, i);
        if (w != 0 && (ku & w) == w) {
            g_string_free(list, TRUE);
            return TRUE;
        }
        g_string_append_printf(list, "%s%02x", i ? ", " : "", w);
    }
    set_error(error, "%s: the certificate's key usage is %02x, not one of %s", what, ku, list->str);
    g_string_free(list, TRUE);
    return FALSE;
}

static const char *eku_oid_of(const char *want)
{
    for (gsize i = 0; i < G_N_ELEMENTS(eku_names); i++) {
        if (strcmp(eku_names[i].name, want) == 0)
            return eku_names[i].oid;
    }
    return want;
}

static gboolean check_eku(gnutls_x509_crt_t crt, const char *want, const char *what, GError **error)
{
    g_autoptr(GPtrArray) ekus = g_ptr_array_new_with_free_func(g_free);
    if (!cert_ekus(crt, ekus)) {
        set_error(error, "%s: the certificate has no extended key usage extension", what);
        return FALSE;
    }
    if (oids_contain(ekus, eku_oid_of(want)))
        return TRUE;
    g_ptr_array_add(ekus, NULL);
    g_autofree char *have = g_strjoinv(", ", (char **)ekus->pdata);
    set_error(error, "%s: the certificate's extended key usage (%s) does not include %s", what,
              have, want);
    return FALSE;
}

gboolean shimmer_keys_check_cert_usage(const ShimmerCertUsage *cfg, gnutls_x509_crt_t crt,
                                       GError **error)
{
    if (cfg->remote_cert_tls != SHIMMER_CERT_ROLE_NONE) {
        gboolean server = cfg->remote_cert_tls == SHIMMER_CERT_ROLE_SERVER;
        const char *what = server ? "remote-cert-tls server" : "remote-cert-tls client";
        if (!check_ku(crt, NULL, what, error) ||
            !check_eku(crt, server ? OID_SERVER_AUTH : OID_CLIENT_AUTH, what, error))
            return FALSE;
    }
    if (cfg->ns_cert_type != SHIMMER_CERT_ROLE_NONE &&
        !check_ns_cert_type(crt, cfg->ns_cert_type == SHIMMER_CERT_ROLE_SERVER, error))
        return FALSE;
    if (cfg->remote_cert_ku_set && !check_ku(crt, cfg->remote_cert_ku, "remote-cert-ku", error))
        return FALSE;
    if (cfg->remote_cert_eku != NULL &&
        !check_eku(crt, cfg->remote_cert_eku, "remote-cert-eku", error))
        return FALSE;
    return TRUE;
}
