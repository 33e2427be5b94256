/* SPDX-License-Identifier: MIT */
/*
 * A CRL reader that accepts the BER time encodings OpenSSL accepts, with a
 * DER walker that checks every length against its parent before reading.
 */
#include "crl.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(shimmer-crl-error-quark, shimmer_crl_error)
/* clang-format on */

#define PEM_BEGIN     "-----BEGIN X509 CRL-----"
#define PEM_END       "-----END X509 CRL-----"
#define CRL_MAX_INPUT (64 * 1024 * 1024)

typedef struct {
    GBytes *serial; /* the INTEGER's content, leading zero bytes dropped */
} Entry;

typedef struct {
    GBytes *der;        /* the whole CRL */
    GBytes *tbs;        /* TBSCertList with its header: what is signed */
    GBytes *issuer_raw; /* the issuer Name with its header */
    char *issuer;       /* RFC 4514 string */
    char *sig_oid;      /* signatureAlgorithm, dotted */
    GBytes *signature;  /* the BIT STRING's bits */
    gint64 this_update; /* seconds since the epoch */
    gint64 next_update; /* G_MAXINT64: none */
    GArray *revoked;    /* Entry */
    bool not_der;       /* GnuTLS refuses it */
    bool verified;      /* signature checked with an issuer from `ca` */
} Crl;

struct ShimmerCrlSet {
    GPtrArray *crls; /* Crl* */
};

/* ---------- the DER walker ---------- */

typedef struct {
    const guint8 *p;
    gsize len;
} Span;

typedef struct {
    guint8 tag;
    Span whole; /* header and content */
    Span body;  /* content */
} Tlv;

/* Reads one TLV at the start of *IN (definite length, at most 4 length
 * bytes, inside *IN) and advances *IN past it. */
static bool der_next(Span *in, Tlv *out)
{
    if (in->len < 2)
        return false;
    const guint8 *p = in->p;
    guint8 tag = p[0];
    if ((tag & 0x1f) == 0x1f)
        return false; /* multi-byte tags do not occur in a CRL */
    gsize hdr = 2, n = p[1];
    if (n & 0x80) {
        gsize k = n & 0x7f;
        if (k == 0 || k > 4 || in->len < 2 + k)
            return false; /* 0: indefinite length, BER only */
        n = 0;
        for (gsize i = 0; i < k; i++)
            n = (n << 8) | p[2 + i];
        hdr += k;
    }
    if (n > in->len - hdr)
        return false;
    out->tag = tag;
    out->whole = (Span){p, hdr + n};
    out->body = (Span){p + hdr, n};
    in->p += hdr + n;
    in->len -= hdr + n;
    return true;
}

static bool der_expect(Span *in, guint8 tag, Tlv *out)
{
    Span save = *in;
    if (der_next(in, out) && out->tag == tag)
        return true;
    *in = save;
    return false;
}

static bool der_peek(const Span *in, guint8 tag)
{
    return in->len > 0 && in->p[0] == tag;
}

/* Dotted text of an OBJECT IDENTIFIER's content. */
static char *oid_text(Span b)
{
    if (b.len == 0 || b.len > 64)
        return NULL;
    GString *s = g_string_new(NULL);
    guint64 v = 0;
    bool first = true;
    for (gsize i = 0; i < b.len; i++) {
        if (v > (G_MAXUINT64 >> 7)) {
            g_string_free(s, TRUE);
            return NULL;
        }
        v = (v << 7) | (b.p[i] & 0x7f);
        if (b.p[i] & 0x80)
            continue;
        if (first) {
            guint64 a = v < 80 ? v / 40 : 2;
            g_string_append_printf(s, "%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT, a, v - a * 40);
            first = false;
        } else {
            g_string_append_printf(s, ".%" G_GUINT64_FORMAT, v);
        }
        v = 0;
    }
    if (b.p[b.len - 1] & 0x80) {
        g_string_free(s, TRUE);
        return NULL;
    }
    return g_string_free(s, FALSE);
}

static bool digits(const guint8 *p, gsize n, gint *out)
{
    gint v = 0;
    for (gsize i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* UTCTime (0x17): YYMMDDhhmm[ss](Z|+hhmm|-hhmm); GeneralizedTime (0x18):
 * YYYYMMDDhh[mm[ss[.f+]]](Z|+hhmm|-hhmm). DER wants seconds and Z and no
 * fraction; BER (and OpenSSL) accept the rest. */
static bool parse_time(const Tlv *t, gint64 *out)
{
    const guint8 *p = t->body.p;
    gsize n = t->body.len;
    gint year, mon, day, hour, min = 0, sec = 0;
    gsize i;
    if (t->tag == 0x17) {
        if (n < 11 || !digits(p, 2, &year))
            return false;
        year += year < 50 ? 2000 : 1900;
        i = 2;
    } else if (t->tag == 0x18) {
        if (n < 11 || !digits(p, 4, &year))
            return false;
        i = 4;
    } else {
        return false;
    }
    if (!digits(p + i, 2, &mon) || !digits(p + i + 2, 2, &day) || !digits(p + i + 4, 2, &hour))
        return false;
    i += 6;
    bool need_min = t->tag == 0x17;
    if (i + 2 <= n && g_ascii_isdigit(p[i])) {
        if (!digits(p + i, 2, &min))
            return false;
        i += 2;
        if (i + 2 <= n && g_ascii_isdigit(p[i])) {
            if (!digits(p + i, 2, &sec))
                return false;
            i += 2;
            if (t->tag == 0x18 && i < n && (p[i] == '.' || p[i] == ',')) {
                i++;
                gsize f = i;
                while (i < n && g_ascii_isdigit(p[i]))
                    i++;
                if (i == f)
                    return false;
            }
        }
    } else if (need_min) {
        return false;
    }
    gint offset = 0;
    if (i < n && p[i] == 'Z') {
        i++;
    } else if (i + 5 == n && (p[i] == '+' || p[i] == '-')) {
        gint oh, om;
        if (!digits(p + i + 1, 2, &oh) || !digits(p + i + 3, 2, &om) || oh > 23 || om > 59)
            return false;
        offset = (oh * 60 + om) * 60 * (p[i] == '+' ? 1 : -1);
        i += 5;
    } else {
        return false; /* a local time without zone has no meaning here */
    }
    if (i != n || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return false;
    GDateTime *dt = g_date_time_new_utc(year, mon, day, hour, min, sec == 60 ? 59 : sec);
    if (dt == NULL)
        return false;
    *out = g_date_time_to_unix(dt) - offset;
    g_date_time_unref(dt);
    return true;
}

static GBytes *span_bytes(Span s)
{
    return g_bytes_new(s.p, s.len);
}

static GBytes *serial_bytes(const guint8 *p, gsize n)
{
    while (n > 1 && p[0] == 0) {
        p++;
        n--;
    }
    return g_bytes_new(p, n);
}

static char *dn_string(Span raw)
{
    gnutls_x509_dn_t dn;
    if (gnutls_x509_dn_init(&dn) < 0)
        return NULL;
    gnutls_datum_t d = {(unsigned char *)raw.p, (unsigned int)raw.len};
    gnutls_datum_t str = {NULL, 0};
    char *out = NULL;
    if (gnutls_x509_dn_import(dn, &d) >= 0 && gnutls_x509_dn_get_str(dn, &str) >= 0) {
        out = g_strndup((const char *)str.data, str.size);
        gnutls_free(str.data);
    }
    gnutls_x509_dn_deinit(dn);
    return out;
}

/* The subject (or issuer) of CRT in the same form as dn_string(). */
static char *crt_dn_string(gnutls_x509_crt_t crt, bool issuer)
{
    gnutls_x509_dn_t dn;
    int rc = issuer ? gnutls_x509_crt_get_issuer(crt, &dn) : gnutls_x509_crt_get_subject(crt, &dn);
    gnutls_datum_t str = {NULL, 0};
    if (rc < 0 || gnutls_x509_dn_get_str(dn, &str) < 0)
        return NULL;
    char *out = g_strndup((const char *)str.data, str.size);
    gnutls_free(str.data);
    return out;
}

static void crl_free(gpointer data)
{
    Crl *c = data;
    g_bytes_unref(c->der);
    g_clear_pointer(&c->tbs, g_bytes_unref);
    g_clear_pointer(&c->issuer_raw, g_bytes_unref);
    g_free(c->issuer);
    g_free(c->sig_oid);
    g_clear_pointer(&c->signature, g_bytes_unref);
    if (c->revoked != NULL) {
        for (guint i = 0; i < c->revoked->len; i++)
            g_bytes_unref(g_array_index(c->revoked, Entry, i).serial);
        g_array_unref(c->revoked);
    }
    g_free(c);
}

/* The fields of RFC 5280's CertificateList, in order. Returns what is wrong
 * or NULL. */
static const char *parse_crl(Crl *c)
{
    gsize len;
    const guint8 *der = g_bytes_get_data(c->der, &len);
    Span all = {der, len};
    Tlv list, tbs, t;
    if (!der_expect(&all, 0x30, &list) || all.len != 0)
        return "not a DER SEQUENCE (or bytes after it)";
    Span in = list.body;
    if (!der_expect(&in, 0x30, &tbs))
        return "no TBSCertList";
    c->tbs = span_bytes(tbs.whole);
    Span f = tbs.body;
    if (der_peek(&f, 0x02)) {
        if (!der_expect(&f, 0x02, &t) || t.body.len != 1 || t.body.p[0] != 1)
            return "a version other than v2";
    }
    if (!der_expect(&f, 0x30, &t))
        return "no signature algorithm in the TBSCertList";
    g_autofree char *inner_alg = NULL;
    {
        Span a = t.body;
        Tlv o;
        if (!der_expect(&a, 0x06, &o) || (inner_alg = oid_text(o.body)) == NULL)
            return "a malformed signature algorithm";
    }
    if (!der_expect(&f, 0x30, &t))
        return "no issuer";
    c->issuer_raw = span_bytes(t.whole);
    c->issuer = dn_string(t.whole);
    if (c->issuer == NULL)
        return "an issuer name that does not decode";
    if (!der_next(&f, &t) || !parse_time(&t, &c->this_update))
        return "a thisUpdate that is not a time";
    c->next_update = G_MAXINT64;
    if (der_peek(&f, 0x17) || der_peek(&f, 0x18)) {
        if (!der_next(&f, &t) || !parse_time(&t, &c->next_update))
            return "a nextUpdate that is not a time";
    }
    c->revoked = g_array_new(FALSE, FALSE, sizeof(Entry));
    if (der_peek(&f, 0x30)) {
        if (!der_expect(&f, 0x30, &t))
            return "a malformed list of revoked certificates";
        Span r = t.body;
        while (r.len > 0) {
            Tlv e, serial, when, ext;
            if (!der_expect(&r, 0x30, &e))
                return "a malformed revoked certificate entry";
            Span ef = e.body;
            gint64 ignored;
            if (!der_expect(&ef, 0x02, &serial) || serial.body.len == 0 || serial.body.len > 64)
                return "a revoked entry without a serial number";
            if (!der_next(&ef, &when) || !parse_time(&when, &ignored))
                return "a revocation date that is not a time";
            if (ef.len > 0 && (!der_expect(&ef, 0x30, &ext) || ef.len != 0))
                return "a revoked entry with trailing data";
            Entry en = {serial_bytes(serial.body.p, serial.body.len)};
            g_array_append_val(c->revoked, en);
        }
    }
    if (der_peek(&f, 0xa0) && !der_expect(&f, 0xa0, &t))
        return "malformed CRL extensions";
    if (f.len != 0)
        return "unexpected data in the TBSCertList";
    if (!der_expect(&in, 0x30, &t))
        return "no signature algorithm";
    {
        Span a = t.body;
        Tlv o;
        if (!der_expect(&a, 0x06, &o) || (c->sig_oid = oid_text(o.body)) == NULL)
            return "a malformed signature algorithm";
    }
    if (strcmp(c->sig_oid, inner_alg) != 0)
        return "two different signature algorithms";
    if (!der_expect(&in, 0x03, &t) || t.body.len < 2 || t.body.p[0] != 0)
        return "no signature";
    c->signature = g_bytes_new(t.body.p + 1, t.body.len - 1);
    if (in.len != 0)
        return "unexpected data after the signature";
    return NULL;
}

static bool gnutls_imports(GBytes *der)
{
    gnutls_x509_crl_t crl;
    if (gnutls_x509_crl_init(&crl) < 0)
        return false;
    gsize len;
    const guint8 *p = g_bytes_get_data(der, &len);
    gnutls_datum_t d = {(unsigned char *)p, (unsigned int)len};
    int rc = gnutls_x509_crl_import(crl, &d, GNUTLS_X509_FMT_DER);
    gnutls_x509_crl_deinit(crl);
    return rc >= 0;
}

ShimmerCrlSet *shimmer_crl_set_new(const void *data, gsize len, GError **error)
{
    if (len > CRL_MAX_INPUT) {
        g_set_error(error, SHIMMER_CRL_ERROR, 0, "larger than %d bytes", CRL_MAX_INPUT);
        return NULL;
    }
    g_autoptr(ShimmerCrlSet) set = g_new0(ShimmerCrlSet, 1);
    set->crls = g_ptr_array_new_with_free_func(crl_free);
    const char *text = data;
    const char *end = text + len;
    guint n = 0;
    for (const char *p = text; p < end;) {
        const char *b = g_strstr_len(p, end - p, PEM_BEGIN);
        if (b == NULL)
            break;
        const char *e = g_strstr_len(b, end - b, PEM_END);
        n++;
        if (e == NULL) {
            g_set_error(error, SHIMMER_CRL_ERROR, 0, "CRL %u: no '%s' line", n, PEM_END);
            return NULL;
        }
        e += strlen(PEM_END);
        gnutls_datum_t pem = {(unsigned char *)b, (unsigned int)(e - b)};
        gnutls_datum_t der = {NULL, 0};
        if (gnutls_pem_base64_decode2("X509 CRL", &pem, &der) < 0) {
            g_set_error(error, SHIMMER_CRL_ERROR, 0, "CRL %u: the base64 does not decode", n);
            return NULL;
        }
        Crl *c = g_new0(Crl, 1);
        c->der = g_bytes_new(der.data, der.size);
        gnutls_free(der.data);
        g_ptr_array_add(set->crls, c);
        const char *why = parse_crl(c);
        if (why != NULL) {
            g_set_error(error, SHIMMER_CRL_ERROR, 0, "CRL %u is malformed: %s", n, why);
            return NULL;
        }
        c->not_der = !gnutls_imports(c->der);
        p = e;
    }
    if (n == 0) {
        g_set_error(error, SHIMMER_CRL_ERROR, 0, "no '%s' block", PEM_BEGIN);
        return NULL;
    }
    return g_steal_pointer(&set);
}

guint shimmer_crl_set_count(const ShimmerCrlSet *set)
{
    return set->crls->len;
}

guint shimmer_crl_set_count_not_der(const ShimmerCrlSet *set)
{
    guint n = 0;
    for (guint i = 0; i < set->crls->len; i++)
        n += ((Crl *)g_ptr_array_index(set->crls, i))->not_der;
    return n;
}

const char *shimmer_crl_set_issuer(const ShimmerCrlSet *set, guint i)
{
    return i < set->crls->len ? ((Crl *)g_ptr_array_index(set->crls, i))->issuer : NULL;
}

static bool dn_equal(GBytes *raw_a, const char *str_a, const gnutls_datum_t *raw_b,
                     const char *str_b)
{
    gsize la;
    const guint8 *a = g_bytes_get_data(raw_a, &la);
    if (la == raw_b->size && memcmp(a, raw_b->data, la) == 0)
        return true;
    /* The same name in other string types (OpenSSL compares canonically). */
    return str_a != NULL && str_b != NULL && g_ascii_strcasecmp(str_a, str_b) == 0;
}

gboolean shimmer_crl_set_verify(ShimmerCrlSet *set, const void *ca, gsize ca_len, GPtrArray *unused,
                                GError **error)
{
    gnutls_x509_crt_t *certs = NULL;
    unsigned int n = 0;
    gnutls_datum_t d = {(unsigned char *)ca, (unsigned int)MIN(ca_len, (gsize)CRL_MAX_INPUT)};
    if (ca != NULL && ca_len > 0 &&
        gnutls_x509_crt_list_import2(&certs, &n, &d, GNUTLS_X509_FMT_PEM, 0) < 0)
        n = 0;
    gboolean ok = TRUE;
    for (guint i = 0; ok && i < set->crls->len; i++) {
        Crl *c = g_ptr_array_index(set->crls, i);
        c->verified = false;
        for (unsigned int k = 0; k < n && !c->verified && ok; k++) {
            gnutls_datum_t subj = {NULL, 0};
            if (gnutls_x509_crt_get_raw_dn(certs[k], &subj) < 0)
                continue;
            g_autofree char *s = crt_dn_string(certs[k], false);
            bool same = dn_equal(c->issuer_raw, c->issuer, &subj, s);
            gnutls_free(subj.data);
            if (!same)
                continue;
            gnutls_sign_algorithm_t alg = gnutls_oid_to_sign(c->sig_oid);
            gnutls_pubkey_t key;
            if (alg == GNUTLS_SIGN_UNKNOWN) {
                g_set_error(error, SHIMMER_CRL_ERROR, 0,
                            "the CRL from %s is signed with an algorithm GnuTLS does not know "
                            "(%s)",
                            c->issuer, c->sig_oid);
                ok = FALSE;
                break;
            }
            if (gnutls_pubkey_init(&key) < 0)
                continue;
            gsize tl, sl;
            const guint8 *tbs = g_bytes_get_data(c->tbs, &tl);
            const guint8 *sig = g_bytes_get_data(c->signature, &sl);
            gnutls_datum_t td = {(unsigned char *)tbs, (unsigned int)tl};
            gnutls_datum_t sd = {(unsigned char *)sig, (unsigned int)sl};
            if (gnutls_pubkey_import_x509(key, certs[k], 0) >= 0 &&
                gnutls_pubkey_verify_data2(key, alg, 0, &td, &sd) >= 0)
                c->verified = true;
            gnutls_pubkey_deinit(key);
        }
        if (!ok)
            break;
        if (!c->verified) {
            bool issuer_known = false;
            for (unsigned int k = 0; k < n && !issuer_known; k++) {
                gnutls_datum_t subj = {NULL, 0};
                if (gnutls_x509_crt_get_raw_dn(certs[k], &subj) < 0)
                    continue;
                g_autofree char *s = crt_dn_string(certs[k], false);
                issuer_known = dn_equal(c->issuer_raw, c->issuer, &subj, s);
                gnutls_free(subj.data);
            }
            if (issuer_known) {
                g_set_error(error, SHIMMER_CRL_ERROR, 0,
                            "the CRL from %s does not carry a valid signature of its issuer",
                            c->issuer);
                ok = FALSE;
            } else if (unused != NULL) {
                g_ptr_array_add(unused, GUINT_TO_POINTER(i));
            }
        }
    }
    for (unsigned int k = 0; k < n; k++)
        gnutls_x509_crt_deinit(certs[k]);
    gnutls_free(certs);
    return ok;
}

gboolean shimmer_crl_set_check(const ShimmerCrlSet *set, gnutls_x509_crt_t crt, gint64 now,
                               GError **error)
{
    gnutls_datum_t issuer = {NULL, 0};
    if (gnutls_x509_crt_get_raw_issuer_dn(crt, &issuer) < 0) {
        g_set_error(error, SHIMMER_CRL_ERROR, 0, "the certificate's issuer does not decode");
        return FALSE;
    }
    g_autofree char *issuer_str = crt_dn_string(crt, true);
    guint8 serial[64];
    size_t serial_len = sizeof(serial);
    gboolean ok = TRUE;
    if (gnutls_x509_crt_get_serial(crt, serial, &serial_len) < 0) {
        g_set_error(error, SHIMMER_CRL_ERROR, 0, "the certificate's serial number does not decode");
        ok = FALSE;
    }
    g_autoptr(GBytes) want = ok ? serial_bytes(serial, serial_len) : NULL;
    for (guint i = 0; ok && i < set->crls->len; i++) {
        const Crl *c = g_ptr_array_index(set->crls, i);
        if (!c->verified || !dn_equal(c->issuer_raw, c->issuer, &issuer, issuer_str))
            continue;
        if (now < c->this_update) {
            g_set_error(error, SHIMMER_CRL_ERROR, 0, "the CRL from %s is not valid yet", c->issuer);
            ok = FALSE;
        } else if (now > c->next_update) {
            g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(c->next_update);
            g_autofree char *when = t ? g_date_time_format(t, "%F %T UTC") : g_strdup("?");
            g_set_error(error, SHIMMER_CRL_ERROR, 0, "the CRL from %s expired on %s", c->issuer,
                        when);
            ok = FALSE;
        }
        for (guint k = 0; ok && k < c->revoked->len; k++) {
            if (g_bytes_equal(g_array_index(c->revoked, Entry, k).serial, want)) {
                GString *hex = g_string_new(NULL);
                gsize wl;
                const guint8 *w = g_bytes_get_data(want, &wl);
                for (gsize b = 0; b < wl; b++)
                    g_string_append_printf(hex, "%02X", w[b]);
                g_set_error(error, SHIMMER_CRL_ERROR, 0,
                            "the certificate with serial number %s is revoked by the CRL from %s",
                            hex->str, c->issuer);
                g_string_free(hex, TRUE);
                ok = FALSE;
            }
        }
    }
    gnutls_free(issuer.data);
    return ok;
}

void shimmer_crl_set_free(ShimmerCrlSet *set)
{
    if (set == NULL)
        return;
    g_ptr_array_unref(set->crls);
    g_free(set);
}
