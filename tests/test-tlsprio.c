/* SPDX-License-Identifier: MIT */
/*
 * tls-cipher, tls-ciphersuites, tls-groups and friends as a GnuTLS priority
 * string (tlsprio.h): GnuTLS accepts what comes out, and a real handshake
 * between two in-memory GnuTLS sessions negotiates what the profile pinned,
 * against a server that would rather choose something else.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <string.h>

#include "config.h"
#include "tlsprio.h"

#define FP                                                                                         \
    "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:"      \
    "dd:ee:ff"

static ShimmerConfig *config_with(const char *lines)
{
    g_autofree char *text =
        g_strdup_printf("client\ndev tun\nremote vpn.example.net\nremote-cert-tls server\n"
                        "peer-fingerprint " FP "\n%s\n",
                        lines);
    return shimmer_config_parse("t.ovpn", NULL, text, strlen(text), NULL, NULL);
}

static char *diagnostics(const ShimmerConfig *cfg)
{
    GString *s = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, s);
    return g_string_free(s, FALSE);
}

static char *priority_for(const char *lines, GPtrArray *notes)
{
    g_autoptr(ShimmerConfig) cfg = config_with(lines);
    if (shimmer_config_has_errors(cfg)) {
        g_autofree char *d = diagnostics(cfg);
        g_error("'%s' does not parse:\n%s", lines, d);
    }
    g_autoptr(GError) error = NULL;
    char *prio = shimmer_config_tls_priority(cfg, notes, &error);
    g_assert_no_error(error);
    g_assert_nonnull(prio);
    gnutls_priority_t p;
    const char *where = NULL;
    if (gnutls_priority_init(&p, prio, &where) < 0)
        g_error("GnuTLS refuses '%s' at '%s'", prio, where);
    gnutls_priority_deinit(p);
    return prio;
}

/* The suites a priority string lets GnuTLS negotiate, one name a line. */
static char *suites_of(const char *prio)
{
    gnutls_priority_t p;
    g_assert_cmpint(gnutls_priority_init(&p, prio, NULL), ==, 0);
    GString *s = g_string_new("\n");
    for (unsigned int i = 0;; i++) {
        unsigned int sidx;
        int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (rc < 0)
            continue;
        unsigned char id[2];
        g_string_append_printf(s, "%s\n",
                               gnutls_cipher_suite_info(sidx, id, NULL, NULL, NULL, NULL));
    }
    gnutls_priority_deinit(p);
    return g_string_free(s, FALSE);
}

static void assert_has(const char *list, const char *suite, bool want)
{
    g_autofree char *needle = g_strdup_printf("\n%s\n", suite);
    if ((strstr(list, needle) != NULL) != want)
        g_error("%s %s in:%s", suite, want ? "missing" : "unexpected", list);
}

/* NORMAL's groups with X25519 first, when the profile names none. */
#define GROUPS                                                                                     \
    ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448"     \
    ":+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:+GROUP-FFDHE8192"

static void test_default(void)
{
    g_autofree char *prio = priority_for("", NULL);
    g_assert_cmpstr(prio, ==, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3" GROUPS);
    g_autofree char *v = priority_for("tls-version-min 1.3", NULL);
    g_assert_cmpstr(v, ==, "NORMAL:-VERS-ALL:+VERS-TLS1.3" GROUPS);
    /* or-highest: GnuTLS has 1.3, so the minimum stands. */
    g_autofree char *oh = priority_for("tls-version-min 1.3 or-highest", NULL);
    g_assert_cmpstr(oh, ==, "NORMAL:-VERS-ALL:+VERS-TLS1.3" GROUPS);
    g_autofree char *old = priority_for("tls-version-min 1.0\ntls-version-max 1.2", NULL);
    g_assert_cmpstr(old, ==, "NORMAL:-VERS-ALL:+VERS-TLS1.0:+VERS-TLS1.1:+VERS-TLS1.2" GROUPS);
}

/* GnuTLS sees the default groups in that order: X25519 first, and every
 * group of NORMAL still there; tls-groups replaces the list. */
static void test_default_groups(void)
{
    g_autofree char *prio = priority_for("", NULL);
    gnutls_priority_t p;
    g_assert_cmpint(gnutls_priority_init(&p, prio, NULL), ==, 0);
    const unsigned int *list = NULL;
    int n = gnutls_priority_group_list(p, &list);
    gnutls_priority_t normal;
    g_assert_cmpint(gnutls_priority_init(&normal, "NORMAL", NULL), ==, 0);
    const unsigned int *nlist = NULL;
    int nn = gnutls_priority_group_list(normal, &nlist);
    g_assert_cmpint(n, ==, nn);
    g_assert_cmpint(list[0], ==, GNUTLS_GROUP_X25519);
    for (int i = 0; i < nn; i++) {
        bool found = false;
        for (int j = 0; j < n; j++)
            found |= list[j] == nlist[i];
        g_assert_true(found);
    }
    gnutls_priority_deinit(normal);
    gnutls_priority_deinit(p);
    g_autofree char *only = priority_for("tls-groups secp384r1:X25519", NULL);
    g_assert_nonnull(strstr(only, ":-GROUP-ALL:+GROUP-SECP384R1:+GROUP-X25519"));
    g_assert_null(strstr(only, "SECP256R1"));
}

/* The three spellings of one suite restrict alike. */
static void test_suite_spellings(void)
{
    const char *spellings[] = {
        "tls-cipher TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
        "tls-cipher TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "tls-cipher ECDHE-RSA-AES256-GCM-SHA384",
        "tls-cipher tls-ecdhe-rsa-with-aes-256-gcm-sha384",
    };
    g_autofree char *first = NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(spellings); i++) {
        g_autofree char *prio = priority_for(spellings[i], NULL);
        g_autofree char *list = suites_of(prio);
        assert_has(list, "TLS_ECDHE_RSA_AES_256_GCM_SHA384", true);
        assert_has(list, "TLS_ECDHE_RSA_AES_128_GCM_SHA256", false);
        assert_has(list, "TLS_ECDHE_ECDSA_AES_256_GCM_SHA384", false);
        assert_has(list, "TLS_RSA_AES_256_GCM_SHA384", false);
        assert_has(list, "TLS_DHE_RSA_AES_256_GCM_SHA384", false);
        if (first == NULL)
            first = g_strdup(prio);
        else
            g_assert_cmpstr(prio, ==, first);
    }
}

static void test_suite_names(void)
{
    static const struct {
        const char *line;
        const char *suite;
    } cases[] = {
        {"tls-cipher ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_CHACHA20_POLY1305"},
        {"tls-cipher TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
         "TLS_ECDHE_RSA_CHACHA20_POLY1305"},
        {"tls-cipher TLS-DHE-RSA-WITH-AES-256-CBC-SHA256", "TLS_DHE_RSA_AES_256_CBC_SHA256"},
        {"tls-cipher TLS-DHE-RSA-WITH-AES-128-CBC-SHA", "TLS_DHE_RSA_AES_128_CBC_SHA1"},
        {"tls-cipher DHE-RSA-AES256-SHA", "TLS_DHE_RSA_AES_256_CBC_SHA1"},
        {"tls-cipher AES256-SHA", "TLS_RSA_AES_256_CBC_SHA1"},
        {"tls-cipher AES128-GCM-SHA256", "TLS_RSA_AES_128_GCM_SHA256"},
        {"tls-cipher ECDHE-ECDSA-AES256-SHA384", "TLS_ECDHE_ECDSA_AES_256_CBC_SHA384"},
        {"tls-cipher ECDHE-ECDSA-AES128-CCM8", "TLS_ECDHE_ECDSA_AES_128_CCM_8"},
        {"tls-cipher DES-CBC3-SHA", "TLS_RSA_3DES_EDE_CBC_SHA1"},
        {"tls-cipher CAMELLIA256-SHA", "TLS_RSA_CAMELLIA_256_CBC_SHA1"},
        {"tls-cipher EECDH+AESGCM", "TLS_ECDHE_ECDSA_AES_128_GCM_SHA256"},
        {"tls-cipher kEECDH+aECDSA+CHACHA20", "TLS_ECDHE_ECDSA_CHACHA20_POLY1305"},
        {"tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
        {"tls-ciphersuites TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_CCM_8_SHA256"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *prio = priority_for(cases[i].line, NULL);
        g_autofree char *list = suites_of(prio);
        assert_has(list, cases[i].suite, true);
    }
    /* Exclusions take suites away: no RSA key exchange, no SHA1 MACs. */
    g_autofree char *prio = priority_for("tls-cipher HIGH:!aNULL:!kRSA:!SHA1:@STRENGTH", NULL);
    g_autofree char *list = suites_of(prio);
    assert_has(list, "TLS_ECDHE_RSA_AES_256_GCM_SHA384", true);
    assert_has(list, "TLS_RSA_AES_256_GCM_SHA384", false);
    assert_has(list, "TLS_ECDHE_RSA_AES_256_CBC_SHA1", false);
    /* '!' is for good; '-' only takes away what is there so far. */
    g_autofree char *p2 = priority_for("tls-cipher -kRSA:HIGH", NULL);
    g_autofree char *l2 = suites_of(p2);
    assert_has(l2, "TLS_RSA_AES_256_GCM_SHA384", true);
    g_autofree char *p3 = priority_for("tls-cipher !kRSA:HIGH", NULL);
    g_autofree char *l3 = suites_of(p3);
    assert_has(l3, "TLS_RSA_AES_256_GCM_SHA384", false);
}

/* What GnuTLS cannot pin exactly is said, not hidden. */
static void test_notes(void)
{
    g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *prio =
        priority_for("tls-cipher ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305", notes);
    g_assert_nonnull(strstr(prio, ":-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA"));
    g_ptr_array_add(notes, NULL);
    g_autofree char *all = g_strjoinv("\n", (char **)notes->pdata);
    g_assert_nonnull(strstr(all, "TLS 1.2 also allows TLS_ECDHE_ECDSA_AES_256_GCM_SHA384, "
                                 "TLS_ECDHE_RSA_CHACHA20_POLY1305"));
    g_assert_nonnull(strstr(all, "TLS 1.3 is limited to TLS_AES_256_GCM_SHA384, "
                                 "TLS_CHACHA20_POLY1305_SHA256"));
    /* A pure restriction needs no note. */
    g_autoptr(GPtrArray) none = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *p2 = priority_for("tls-cipher DEFAULT:@SECLEVEL=0", none);
    g_assert_cmpuint(none->len, ==, 0);
    g_assert_nonnull(strstr(p2, "%PROFILE_VERY_WEAK"));
    /* And through the parser the notes are warnings at the line. */
    g_autoptr(ShimmerConfig) cfg = config_with("tls-cipher DHE-RSA-AES256-SHA");
    g_autofree char *d = diagnostics(cfg);
    g_assert_nonnull(strstr(d, "t.ovpn:6: warning: 'tls-cipher': GnuTLS applies one cipher list "
                               "to TLS 1.2 and 1.3; none of these ciphers has a TLS 1.3 suite"));
    g_assert_false(shimmer_config_has_errors(cfg));
}

static void test_groups_and_profiles(void)
{
    g_autofree char *g = priority_for("tls-groups X25519:prime256v1:secp384r1:ffdhe2048", NULL);
    g_assert_nonnull(strstr(g, ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
                               "+GROUP-FFDHE2048"));
    g_autofree char *e = priority_for("ecdh-curve secp521r1", NULL);
    g_assert_nonnull(strstr(e, ":-GROUP-ALL:+GROUP-SECP521R1"));
    /* tls-groups wins over ecdh-curve, with a warning. */
    g_autoptr(ShimmerConfig) both = config_with("ecdh-curve P-384\ntls-groups X448");
    g_autofree char *d = diagnostics(both);
    g_assert_nonnull(strstr(d, "t.ovpn:6: warning: 'ecdh-curve' is ignored"));
    g_autofree char *bp = shimmer_config_tls_priority(both, NULL, NULL);
    g_assert_nonnull(strstr(bp, "+GROUP-X448"));
    g_assert_null(strstr(bp, "SECP384R1"));
    static const struct {
        const char *profile;
        const char *keyword;
    } profiles[] = {
        {"insecure", "%PROFILE_VERY_WEAK"},
        {"legacy", "%PROFILE_LOW"},
        {"preferred", "%PROFILE_MEDIUM"},
        {"suiteb", "%PROFILE_SUITEB128"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(profiles); i++) {
        g_autofree char *line = g_strdup_printf("tls-cert-profile %s", profiles[i].profile);
        g_autofree char *p = priority_for(line, NULL);
        g_assert_nonnull(strstr(p, profiles[i].keyword));
    }
    g_autofree char *lvl = priority_for("tls-cipher DEFAULT:@SECLEVEL=3", NULL);
    g_assert_nonnull(strstr(lvl, "%PROFILE_HIGH"));
}

/* Anything not mappable is an error naming the file, line and token. */
static void test_errors(void)
{
    static const struct {
        const char *line;
        const char *error;
    } cases[] = {
        {"tls-cipher TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384:FROBNICATE",
         "t.ovpn:6: error: 'tls-cipher': 'FROBNICATE' is neither a cipher suite"},
        {"tls-cipher TLS-ECDHE-RSA-WITH-ARIA-256-GCM-SHA384", "'TLS-ECDHE-RSA-WITH-ARIA-256-GCM"},
        {"tls-cipher TLS_AES_256_GCM_SHA384", "is a TLS 1.3 suite: give it in tls-ciphersuites"},
        {"tls-cipher !aNULL:!eNULL", "t.ovpn:6: error: 'tls-cipher': '!aNULL:!eNULL' selects no"},
        {"tls-cipher HIGH:@SECLEVEL=9", "'@SECLEVEL=9' is not @STRENGTH"},
        {"tls-cipher HIGH+", "'HIGH+' is neither"},
        {"tls-ciphersuites TLS_AES_512_GCM", "t.ovpn:6: error: 'tls-ciphersuites': "
                                             "'TLS_AES_512_GCM' is not a TLS 1.3"},
        {"tls-ciphersuites ECDHE-RSA-AES256-GCM-SHA384", "is not a TLS 1.3 cipher suite"},
        {"tls-groups X25519:brainpoolP256r1", "t.ovpn:6: error: 'tls-groups': "
                                              "'brainpoolP256r1' is not a group"},
        {"ecdh-curve sect571k1", "t.ovpn:6: error: 'ecdh-curve': 'sect571k1' is not a group"},
        {"tls-cert-profile paranoid", "t.ovpn:6: error: 'tls-cert-profile': 'paranoid' is not"},
        {"tls-version-min 1.3\ntls-version-max 1.2", "t.ovpn:7: error: 'tls-version-max': "
                                                     "tls-version-min 1.3 is above"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(ShimmerConfig) cfg = config_with(cases[i].line);
        g_autofree char *d = diagnostics(cfg);
        if (!shimmer_config_has_errors(cfg) || strstr(d, cases[i].error) == NULL)
            g_error("'%s': expected '%s' in:\n%s", cases[i].line, cases[i].error, d);
    }
}

/* ---------- a handshake between two in-memory sessions ---------- */

typedef struct {
    GByteArray *to_client, *to_server;
} Wire;

typedef struct {
    Wire *wire;
    bool client;
    gnutls_session_t s;
} End;

static ssize_t end_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    End *e = ptr;
    g_byte_array_append(e->client ? e->wire->to_server : e->wire->to_client, data, (guint)len);
    return (ssize_t)len;
}

static ssize_t end_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    End *e = ptr;
    GByteArray *in = e->client ? e->wire->to_client : e->wire->to_server;
    if (in->len == 0) {
        gnutls_transport_set_errno(e->s, EAGAIN);
        return -1;
    }
    size_t n = MIN(len, in->len);
    memcpy(data, in->data, n);
    g_byte_array_remove_range(in, 0, (guint)n);
    return (ssize_t)n;
}

static char *data_path(const char *name)
{
    return g_build_filename(g_getenv("SHIMMER_TEST_SRCDIR"), "data", name, NULL);
}

typedef struct {
    int rc;
    char *suite;
    char *group;
    gnutls_protocol_t version;
} Result;

/* Connects a client with CLIENT_PRIO to a server with SERVER_PRIO (which
 * holds the test PKI's ECDSA server certificate). */
static Result handshake(const char *client_prio, const char *server_prio)
{
    g_autofree char *crt = data_path("server.crt");
    g_autofree char *key = data_path("server.key");
    gnutls_certificate_credentials_t screds, ccreds;
    g_assert_cmpint(gnutls_certificate_allocate_credentials(&screds), ==, 0);
    g_assert_cmpint(gnutls_certificate_set_x509_key_file(screds, crt, key, GNUTLS_X509_FMT_PEM), ==,
                    0);
    g_assert_cmpint(gnutls_certificate_allocate_credentials(&ccreds), ==, 0);

    Wire wire = {g_byte_array_new(), g_byte_array_new()};
    End c = {&wire, true, NULL}, s = {&wire, false, NULL};
    g_assert_cmpint(gnutls_init(&c.s, GNUTLS_CLIENT | GNUTLS_NONBLOCK), ==, 0);
    g_assert_cmpint(gnutls_init(&s.s, GNUTLS_SERVER | GNUTLS_NONBLOCK), ==, 0);
    const char *where = NULL;
    if (gnutls_priority_set_direct(c.s, client_prio, &where) < 0)
        g_error("client priority '%s' refused at '%s'", client_prio, where);
    g_assert_cmpint(gnutls_priority_set_direct(s.s, server_prio, NULL), ==, 0);
    gnutls_credentials_set(c.s, GNUTLS_CRD_CERTIFICATE, ccreds);
    gnutls_credentials_set(s.s, GNUTLS_CRD_CERTIFICATE, screds);
    /* No automatic verification of the server: the test is about what is
     * negotiated. */
    for (End *e = &c; e != NULL; e = e == &c ? &s : NULL) {
        gnutls_transport_set_ptr(e->s, e);
        gnutls_transport_set_push_function(e->s, end_push);
        gnutls_transport_set_pull_function(e->s, end_pull);
    }
    int rc_c = GNUTLS_E_AGAIN, rc_s = GNUTLS_E_AGAIN;
    for (int round = 0; round < 50 && (rc_c != 0 || rc_s != 0); round++) {
        if (rc_c != 0 && (rc_c == GNUTLS_E_AGAIN || rc_c == GNUTLS_E_INTERRUPTED))
            rc_c = gnutls_handshake(c.s);
        if (rc_s != 0 && (rc_s == GNUTLS_E_AGAIN || rc_s == GNUTLS_E_INTERRUPTED))
            rc_s = gnutls_handshake(s.s);
        if ((rc_c < 0 && rc_c != GNUTLS_E_AGAIN) || (rc_s < 0 && rc_s != GNUTLS_E_AGAIN))
            break;
    }
    Result r = {rc_c != 0 ? rc_c : rc_s, NULL, NULL, 0};
    if (r.rc == 0) {
        r.suite = g_strdup(gnutls_cipher_suite_get_name(gnutls_kx_get(c.s), gnutls_cipher_get(c.s),
                                                        gnutls_mac_get(c.s)));
        r.version = gnutls_protocol_get_version(c.s);
        if (r.version == GNUTLS_TLS1_3 || r.suite == NULL) {
            g_free(r.suite);
            r.suite = g_strdup(gnutls_cipher_get_name(gnutls_cipher_get(c.s)));
        }
        r.group = g_strdup(gnutls_group_get_name(gnutls_group_get(c.s)));
    }
    gnutls_deinit(c.s);
    gnutls_deinit(s.s);
    gnutls_certificate_free_credentials(screds);
    gnutls_certificate_free_credentials(ccreds);
    g_byte_array_unref(wire.to_client);
    g_byte_array_unref(wire.to_server);
    return r;
}

static void result_clear(Result *r)
{
    g_free(r->suite);
    g_free(r->group);
}

#define SERVER_PREFERS_256 "NORMAL:%SERVER_PRECEDENCE"

static void test_handshake_pins(void)
{
    /* Unrestricted, the server's preference wins: AES-256-GCM in TLS 1.2. */
    g_autofree char *free12 = priority_for("tls-version-max 1.2", NULL);
    Result r = handshake(free12, SERVER_PREFERS_256);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpstr(r.suite, ==, "ECDHE_ECDSA_AES_256_GCM_SHA384");
    result_clear(&r);

    /* Pinned to AES-128-GCM, the client gets it although the server would
     * rather not. */
    g_autofree char *pin12 = priority_for(
        "tls-version-max 1.2\ntls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", NULL);
    r = handshake(pin12, SERVER_PREFERS_256);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpint(r.version, ==, GNUTLS_TLS1_2);
    g_assert_cmpstr(r.suite, ==, "ECDHE_ECDSA_AES_128_GCM_SHA256");
    result_clear(&r);

    /* OpenSSL's spelling, CBC with SHA384: outside GnuTLS's NORMAL. */
    g_autofree char *cbc =
        priority_for("tls-version-max 1.2\ntls-cipher ECDHE-ECDSA-AES256-SHA384", NULL);
    r = handshake(cbc, "NORMAL:+SHA384:%SERVER_PRECEDENCE");
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpstr(r.suite, ==, "ECDHE_ECDSA_AES_256_CBC_SHA384");
    result_clear(&r);

    /* TLS 1.3: the suite and the group. */
    g_autofree char *pin13 =
        priority_for("tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256\ntls-groups secp384r1", NULL);
    r = handshake(pin13, SERVER_PREFERS_256);
    g_assert_cmpint(r.rc, ==, 0);
    g_assert_cmpint(r.version, ==, GNUTLS_TLS1_3);
    g_assert_cmpstr(r.suite, ==, "CHACHA20-POLY1305");
    g_assert_cmpstr(r.group, ==, "SECP384R1");
    result_clear(&r);

    /* A restriction the server cannot meet fails instead of falling back. */
    g_autofree char *rsa_only = priority_for("tls-version-max 1.2\ntls-cipher kRSA", NULL);
    r = handshake(rsa_only, SERVER_PREFERS_256);
    g_assert_cmpint(r.rc, <, 0);
    result_clear(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    gnutls_global_init();
    g_test_add_func("/tlsprio/default", test_default);
    g_test_add_func("/tlsprio/default-groups", test_default_groups);
    g_test_add_func("/tlsprio/suite-spellings", test_suite_spellings);
    g_test_add_func("/tlsprio/suite-names", test_suite_names);
    g_test_add_func("/tlsprio/notes", test_notes);
    g_test_add_func("/tlsprio/groups-and-profiles", test_groups_and_profiles);
    g_test_add_func("/tlsprio/errors", test_errors);
    g_test_add_func("/tlsprio/handshake-pins", test_handshake_pins);
    int rc = g_test_run();
    gnutls_global_deinit();
    return rc;
}
