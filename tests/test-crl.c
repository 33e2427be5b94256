/* SPDX-License-Identifier: MIT */
/*
 * crl.h: CRLs whose dates are BER but not DER (tests/data/usage/make-crls.py
 * builds them by hand, as some providers ship them) are read, their
 * signatures checked, and the serials they list refused; malformed and
 * hostile CRLs are refused without reading past their end.
 */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

#include "config.h"
#include "crl.h"
#include "keys.h"

static char *fixture(const char *name, gsize *len)
{
    g_autofree char *path = g_build_filename(g_getenv("SHIMMER_TEST_SRCDIR"), "data", name, NULL);
    char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, len, &error))
        g_error("%s: %s", path, error->message);
    return text;
}

static gnutls_x509_crt_t cert(const char *name)
{
    gsize len;
    g_autofree char *pem = fixture(name, &len);
    gnutls_x509_crt_t crt;
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)len};
    g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), ==, 0);
    return crt;
}

static ShimmerCrlSet *load_verified(const char *name, const char *ca)
{
    gsize len, ca_len;
    g_autofree char *pem = fixture(name, &len);
    g_autofree char *ca_pem = fixture(ca, &ca_len);
    g_autoptr(GError) error = NULL;
    ShimmerCrlSet *set = shimmer_crl_set_new(pem, len, &error);
    g_assert_no_error(error);
    g_autoptr(GPtrArray) unused = g_ptr_array_new();
    g_assert_true(shimmer_crl_set_verify(set, ca_pem, ca_len, unused, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(unused->len, ==, 0);
    return set;
}

/* 2026-01-01 00:00:00 UTC, the thisUpdate of the non-DER fixtures. */
#define T2026 G_GINT64_CONSTANT(1767225600)
/* Both fixtures are valid from when they were made until 2126. */
#define NOW (g_get_real_time() / G_USEC_PER_SEC)

/* GnuTLS itself refuses the fixture: the test is about a real gap. */
static void test_gnutls_refuses(void)
{
    gsize len;
    g_autofree char *pem = fixture("usage/crl-nonder.pem", &len);
    gnutls_x509_crl_t crl;
    g_assert_cmpint(gnutls_x509_crl_init(&crl), ==, 0);
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned int)len};
    g_assert_cmpint(gnutls_x509_crl_import(crl, &d, GNUTLS_X509_FMT_PEM), ==,
                    GNUTLS_E_ASN1_TIME_ERROR);
    gnutls_x509_crl_deinit(crl);
    g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(pem, len, NULL);
    g_assert_nonnull(set);
    g_assert_cmpuint(shimmer_crl_set_count(set), ==, 1);
    g_assert_cmpuint(shimmer_crl_set_count_not_der(set), ==, 1);
    g_assert_cmpstr(shimmer_crl_set_issuer(set, 0), ==, "O=Shimmer Test,CN=Shimmer Usage CA");
    /* And the key check of the parser accepts it now. */
    g_autoptr(GError) error = NULL;
    g_assert_true(shimmer_keys_check_crl(pem, len, &error));
    g_assert_no_error(error);
}

static void test_revoked_serials(void)
{
    const char *crls[] = {"usage/crl-nonder.pem", "usage/crl-der.pem"};
    for (gsize i = 0; i < G_N_ELEMENTS(crls); i++) {
        g_autoptr(ShimmerCrlSet) set = load_verified(crls[i], "usage/ca.crt");
        gnutls_x509_crt_t revoked = cert("usage/revoked.crt");
        gnutls_x509_crt_t client = cert("usage/client.crt");
        g_autoptr(GError) error = NULL;
        g_assert_false(shimmer_crl_set_check(set, revoked, NOW, &error));
        g_assert_error(error, SHIMMER_CRL_ERROR, 0);
        if (strstr(error->message, "is revoked by the CRL from O=Shimmer Test") == NULL)
            g_error("%s: %s", crls[i], error->message);
        g_clear_error(&error);
        g_assert_true(shimmer_crl_set_check(set, client, NOW, &error));
        g_assert_no_error(error);
        gnutls_x509_crt_deinit(revoked);
        gnutls_x509_crt_deinit(client);
    }
    /* A certificate of another CA is none of this CRL's business. */
    g_autoptr(ShimmerCrlSet) set = load_verified("usage/crl-nonder.pem", "usage/ca.crt");
    gnutls_x509_crt_t other = cert("revoked.crt");
    g_assert_true(shimmer_crl_set_check(set, other, NOW, NULL));
    gnutls_x509_crt_deinit(other);
    /* An empty CRL revokes nothing. */
    g_autoptr(ShimmerCrlSet) empty = load_verified("usage/crl-nonder-empty.pem", "usage/ca.crt");
    gnutls_x509_crt_t revoked = cert("usage/revoked.crt");
    g_assert_true(shimmer_crl_set_check(empty, revoked, NOW, NULL));
    gnutls_x509_crt_deinit(revoked);
}

/* The dates without seconds are read to the minute. */
static void test_dates(void)
{
    g_autoptr(ShimmerCrlSet) set = load_verified("usage/crl-nonder.pem", "usage/ca.crt");
    gnutls_x509_crt_t client = cert("usage/client.crt");
    g_autoptr(GError) error = NULL;
    g_assert_false(shimmer_crl_set_check(set, client, T2026 - 1, &error));
    g_assert_nonnull(strstr(error->message, "is not valid yet"));
    g_clear_error(&error);
    g_assert_true(shimmer_crl_set_check(set, client, T2026, &error));

    /* Expired on 2020-01-01 00:00 (UTCTime without seconds); it revokes the
     * client certificate, and while valid nothing else. */
    g_autoptr(ShimmerCrlSet) old = load_verified("usage/crl-nonder-expired.pem", "usage/ca.crt");
    gnutls_x509_crt_t server = cert("usage/server.crt");
    const gint64 t2020 = G_GINT64_CONSTANT(1577836800);
    g_assert_true(shimmer_crl_set_check(old, server, t2020, &error));
    g_assert_false(shimmer_crl_set_check(old, client, t2020, &error));
    g_assert_nonnull(strstr(error->message, "is revoked"));
    g_clear_error(&error);
    g_assert_false(shimmer_crl_set_check(old, server, t2020 + 1, &error));
    g_assert_nonnull(strstr(error->message, "expired on 2020-01-01 00:00:00 UTC"));
    gnutls_x509_crt_deinit(client);
    gnutls_x509_crt_deinit(server);
}

static void test_signatures(void)
{
    gsize len, ca_len, other_len;
    g_autofree char *bad = fixture("usage/crl-nonder-badsig.pem", &len);
    g_autofree char *ca = fixture("usage/ca.crt", &ca_len);
    g_autofree char *other_ca = fixture("ca.crt", &other_len);
    g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(bad, len, NULL);
    g_assert_nonnull(set);
    g_autoptr(GError) error = NULL;
    g_assert_false(shimmer_crl_set_verify(set, ca, ca_len, NULL, &error));
    g_assert_nonnull(strstr(error->message, "does not carry a valid signature"));
    g_clear_error(&error);

    /* Not from a CA we trust: left out, and so no certificate is refused. */
    gsize good_len;
    g_autofree char *good = fixture("usage/crl-nonder.pem", &good_len);
    g_autoptr(ShimmerCrlSet) foreign = shimmer_crl_set_new(good, good_len, NULL);
    g_autoptr(GPtrArray) unused = g_ptr_array_new();
    g_assert_true(shimmer_crl_set_verify(foreign, other_ca, other_len, unused, &error));
    g_assert_cmpuint(unused->len, ==, 1);
    gnutls_x509_crt_t revoked = cert("usage/revoked.crt");
    g_assert_true(shimmer_crl_set_check(foreign, revoked, NOW, NULL));
    /* Nor does a CRL whose signature was never checked. */
    g_autoptr(ShimmerCrlSet) unchecked = shimmer_crl_set_new(good, good_len, NULL);
    g_assert_true(shimmer_crl_set_check(unchecked, revoked, NOW, NULL));
    gnutls_x509_crt_deinit(revoked);

    /* The parser: a bad signature is an error, a foreign CRL a warning. */
    g_autofree char *dir = g_build_filename(g_getenv("SHIMMER_TEST_SRCDIR"), "data", "usage", NULL);
    const char *cases[][2] = {
        {"ca ca.crt\ncrl-verify crl-nonder-badsig.pem\n",
         "p.ovpn:6: error: 'crl-verify': the CRL from O=Shimmer Test,CN=Shimmer Usage CA does "
         "not carry a valid signature"},
        {"ca ../ca.crt\ncrl-verify crl-nonder.pem\n",
         "p.ovpn:6: warning: 'crl-verify': the CRL from O=Shimmer Test,CN=Shimmer Usage CA is "
         "not from a CA in 'ca' (line 5)"},
        {"ca ca.crt\ncrl-verify crl-nonder.pem\n",
         "p.ovpn:6: warning: 'crl-verify': 1 of the 1 CRLs encode their dates in a form DER "
         "does not allow"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strconcat(
            "client\ndev tun\nremote x.example\nremote-cert-tls server\n", cases[i][0], NULL);
        g_autofree char *path = g_build_filename(dir, "p.ovpn", NULL);
        g_autoptr(ShimmerConfig) cfg =
            shimmer_config_parse(path, NULL, text, strlen(text), shimmer_config_file_loader, NULL);
        GString *d = g_string_new(NULL);
        shimmer_config_format_diagnostics(cfg, d);
        g_autofree char *want = g_strconcat(path, cases[i][1] + 6, NULL);
        if (strstr(d->str, want) == NULL)
            g_error("expected '%s' in:\n%s", want, d->str);
        g_string_free(d, TRUE);
    }
}

/* A CRL in DER with the given time fields and revoked serial, signed by
 * nobody (the parser reads the structure before any signature). */
static GByteArray *der_tlv(guint8 tag, const guint8 *body, gsize n)
{
    GByteArray *a = g_byte_array_new();
    guint8 h[4] = {tag};
    gsize hl;
    if (n < 0x80) {
        h[1] = (guint8)n;
        hl = 2;
    } else if (n < 0x100) {
        h[1] = 0x81;
        h[2] = (guint8)n;
        hl = 3;
    } else {
        h[1] = 0x82;
        h[2] = (guint8)(n >> 8);
        h[3] = (guint8)n;
        hl = 4;
    }
    g_byte_array_append(a, h, (guint)hl);
    g_byte_array_append(a, body, (guint)n);
    return a;
}

static void append_tlv(GByteArray *out, guint8 tag, const void *body, gsize n)
{
    g_autoptr(GByteArray) t = der_tlv(tag, body, n);
    g_byte_array_append(out, t->data, t->len);
}

static char *unsigned_crl(guint8 time_tag, const char *time_text)
{
    static const guint8 alg[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    static const guint8 name[] = {0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03,
                                  0x55, 0x04, 0x03, 0x0c, 0x02, 'C',  'A'};
    g_autoptr(GByteArray) tbs = g_byte_array_new();
    g_byte_array_append(tbs, alg, sizeof(alg));
    g_byte_array_append(tbs, name, sizeof(name));
    append_tlv(tbs, time_tag, time_text, strlen(time_text));
    g_autoptr(GByteArray) entry = g_byte_array_new();
    append_tlv(entry, 0x02, "\x01\x02", 2);
    append_tlv(entry, 0x17, "2601010000Z", 11);
    g_autoptr(GByteArray) e = der_tlv(0x30, entry->data, entry->len);
    append_tlv(tbs, 0x30, e->data, e->len);
    g_autoptr(GByteArray) all = g_byte_array_new();
    append_tlv(all, 0x30, tbs->data, tbs->len);
    g_byte_array_append(all, alg, sizeof(alg));
    append_tlv(all, 0x03, "\x00\x30\x00", 3);
    g_autoptr(GByteArray) crl = der_tlv(0x30, all->data, all->len);
    g_autofree char *b64 = g_base64_encode(crl->data, crl->len);
    return g_strdup_printf("-----BEGIN X509 CRL-----\n%s\n-----END X509 CRL-----\n", b64);
}

static void test_time_forms(void)
{
    static const struct {
        guint8 tag;
        const char *text;
        gboolean ok;
    } cases[] = {
        {0x17, "260101000000Z", TRUE},
        {0x17, "2601010000Z", TRUE},
        {0x17, "2601010000+0100", TRUE},
        {0x17, "260101000000-0530", TRUE},
        {0x18, "20260101000000Z", TRUE},
        {0x18, "20260101000000.5Z", TRUE},
        {0x18, "202601010000Z", TRUE},
        {0x18, "2026010100Z", TRUE},
        {0x17, "26010100Z", FALSE},
        {0x17, "2601010000", FALSE},
        {0x17, "2613010000Z", FALSE},
        {0x17, "26010100a0Z", FALSE},
        {0x17, "2601010000+01", FALSE},
        {0x18, "20260101000000.Z", FALSE},
        {0x17, "2601010000Zjunk", FALSE},
        {0x16, "2601010000Z", FALSE},
        {0x17, "", FALSE},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *pem = unsigned_crl(cases[i].tag, cases[i].text);
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(pem, strlen(pem), &error);
        if ((set != NULL) != cases[i].ok)
            g_error("'%s': expected %s, got %s", cases[i].text, cases[i].ok ? "ok" : "an error",
                    error ? error->message : "ok");
        if (!cases[i].ok)
            g_assert_nonnull(strstr(error->message, "thisUpdate"));
    }
}

/* Every truncation and many corruptions of a real CRL: refused or read,
 * never a read out of bounds (the sanitizer build watches). */
static void test_hostile(void)
{
    gsize len;
    g_autofree char *pem = fixture("usage/crl-nonder.pem", &len);
    gnutls_datum_t in = {(unsigned char *)pem, (unsigned int)len}, der = {NULL, 0};
    g_assert_cmpint(gnutls_pem_base64_decode2("X509 CRL", &in, &der), ==, 0);
    guint refused = 0;
    for (unsigned int cut = 0; cut < der.size; cut++) {
        g_autofree char *b64 = g_base64_encode(der.data, cut);
        g_autofree char *p =
            g_strdup_printf("-----BEGIN X509 CRL-----\n%s\n-----END X509 CRL-----\n", b64);
        g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(p, strlen(p), NULL);
        refused += set == NULL;
    }
    g_assert_cmpuint(refused, ==, der.size);
    GRand *rng = g_rand_new_with_seed(0xc41);
    for (int round = 0; round < 4000; round++) {
        g_autofree guint8 *m = g_memdup2(der.data, der.size);
        for (int k = 0; k < 1 + round % 4; k++)
            m[g_rand_int_range(rng, 0, (gint32)der.size)] = (guint8)g_rand_int(rng);
        g_autofree char *b64 = g_base64_encode(m, der.size);
        g_autofree char *p =
            g_strdup_printf("-----BEGIN X509 CRL-----\n%s\n-----END X509 CRL-----\n", b64);
        g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(p, strlen(p), NULL);
        if (set != NULL) {
            gnutls_x509_crt_t revoked = cert("usage/revoked.crt");
            (void)shimmer_crl_set_verify(set, NULL, 0, NULL, NULL);
            (void)shimmer_crl_set_check(set, revoked, NOW, NULL);
            gnutls_x509_crt_deinit(revoked);
        }
    }
    g_rand_free(rng);
    gnutls_free(der.data);
    /* Not a CRL at all, or none in the text. */
    g_autoptr(GError) error = NULL;
    g_assert_null(shimmer_crl_set_new("", 0, &error));
    g_assert_nonnull(strstr(error->message, "no '-----BEGIN X509 CRL-----' block"));
    g_clear_error(&error);
    const char *open = "-----BEGIN X509 CRL-----\nAAAA\n";
    g_assert_null(shimmer_crl_set_new(open, strlen(open), &error));
    g_assert_nonnull(strstr(error->message, "CRL 1: no '-----END X509 CRL-----' line"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    gnutls_global_init();
    g_test_add_func("/crl/gnutls-refuses", test_gnutls_refuses);
    g_test_add_func("/crl/revoked-serials", test_revoked_serials);
    g_test_add_func("/crl/dates", test_dates);
    g_test_add_func("/crl/signatures", test_signatures);
    g_test_add_func("/crl/time-forms", test_time_forms);
    g_test_add_func("/crl/hostile", test_hostile);
    int rc = g_test_run();
    gnutls_global_deinit();
    return rc;
}
