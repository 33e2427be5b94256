/* SPDX-License-Identifier: MIT */
/*
 * OpenSSL-style TLS restrictions (tls-cipher, tls-ciphersuites, tls-groups,
 * tls-cert-profile) as a GnuTLS priority string. The suites come from
 * GnuTLS's own table (gnutls_cipher_suite_info), so a name maps only to a
 * suite GnuTLS really has.
 */
#include "tlsprio.h"

#include <stdbool.h>

#include <gnutls/gnutls.h>
#include <string.h>

/* clang-format off */
G_DEFINE_QUARK(shimmer-tlsprio-error-quark, shimmer_tlsprio_error)
/* clang-format on */

#define BASE_PRIORITY "NORMAL"
/* NORMAL's groups, X25519 first (GnuTLS 3.7 puts P-256 first), as OpenSSL
 * and so OpenVPN order them: an OpenVPN 2.6 client offers an X25519 key
 * share alone, and our client offers one share too
 * (GNUTLS_KEY_SHARE_TOP). X25519 is also the cheaper key exchange in
 * Nettle: a server's handshake costs less. */
#define DEFAULT_GROUPS                                                                             \
    ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448"     \
    ":+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:+GROUP-FFDHE8192"

typedef struct {
    const char *name; /* GnuTLS's: TLS_ECDHE_RSA_AES_256_GCM_SHA384 */
    gnutls_kx_algorithm_t kx;
    gnutls_cipher_algorithm_t cipher;
    gnutls_mac_algorithm_t mac;
    bool tls13;
    bool normal; /* in GnuTLS's NORMAL: what DEFAULT, ALL and HIGH stand for */
} Suite;

/* The suites Shimmer may offer: certificate-based key exchanges, real
 * ciphers. Built once from GnuTLS's table. */
typedef struct {
    GArray *all; /* Suite */
} SuiteTable;

static bool usable_kx(gnutls_kx_algorithm_t kx)
{
    return kx == GNUTLS_KX_ECDHE_RSA || kx == GNUTLS_KX_ECDHE_ECDSA || kx == GNUTLS_KX_DHE_RSA ||
           kx == GNUTLS_KX_DHE_DSS || kx == GNUTLS_KX_RSA;
}

static bool usable_cipher(gnutls_cipher_algorithm_t c)
{
    const char *n = gnutls_cipher_get_name(c);
    return n != NULL && (g_str_has_prefix(n, "AES-") || g_str_has_prefix(n, "CAMELLIA-") ||
                         g_str_has_prefix(n, "CHACHA20-") || strcmp(n, "3DES-CBC") == 0);
}

static const SuiteTable *suites(void)
{
    static gsize once = 0;
    static SuiteTable table;
    if (g_once_init_enter(&once)) {
        table.all = g_array_new(FALSE, FALSE, sizeof(Suite));
        for (size_t i = 0;; i++) {
            unsigned char id[2];
            Suite s = {0};
            gnutls_protocol_t min;
            s.name = gnutls_cipher_suite_info(i, id, &s.kx, &s.cipher, &s.mac, &min);
            if (s.name == NULL)
                break;
            s.tls13 = min == GNUTLS_TLS1_3;
            if ((s.tls13 || usable_kx(s.kx)) && usable_cipher(s.cipher))
                g_array_append_val(table.all, s);
        }
        gnutls_priority_t p;
        if (gnutls_priority_init(&p, BASE_PRIORITY, NULL) >= 0) {
            for (unsigned int i = 0;; i++) {
                unsigned int sidx;
                int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
                if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
                    break;
                unsigned char id[2];
                const char *name =
                    rc < 0 ? NULL : gnutls_cipher_suite_info(sidx, id, NULL, NULL, NULL, NULL);
                for (guint k = 0; name != NULL && k < table.all->len; k++) {
                    Suite *t = &g_array_index(table.all, Suite, k);
                    if (strcmp(t->name, name) == 0)
                        t->normal = true;
                }
            }
            gnutls_priority_deinit(p);
        }
        g_once_init_leave(&once, 1);
    }
    return &table;
}

static const Suite *suite_at(guint i)
{
    return &g_array_index(suites()->all, Suite, i);
}

static guint n_suites(void)
{
    return suites()->all->len;
}

/* A set of suites: one flag per table entry. */
typedef struct {
    guint8 *in;
} Set;

static Set set_new(void)
{
    return (Set){g_malloc0(MAX(n_suites(), 1))};
}

static void set_free(Set *s)
{
    g_clear_pointer(&s->in, g_free);
}

static guint set_count(const Set *s, bool tls13)
{
    guint n = 0;
    for (guint i = 0; i < n_suites(); i++)
        n += s->in[i] && suite_at(i)->tls13 == tls13;
    return n;
}

/* The suites of a priority string, as GnuTLS will offer them. */
static bool set_from_priority(const char *prio, Set *out)
{
    gnutls_priority_t p;
    if (gnutls_priority_init(&p, prio, NULL) < 0)
        return false;
    for (unsigned int i = 0;; i++) {
        unsigned int sidx;
        int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (rc < 0)
            continue;
        unsigned char id[2];
        const char *name = gnutls_cipher_suite_info(sidx, id, NULL, NULL, NULL, NULL);
        for (guint k = 0; name != NULL && k < n_suites(); k++) {
            if (strcmp(suite_at(k)->name, name) == 0)
                out->in[k] = 1;
        }
    }
    gnutls_priority_deinit(p);
    return true;
}

/* ---------- suite names ---------- */

/* "AES256" -> "AES_256", "CAMELLIA128" -> "CAMELLIA_128"; NULL otherwise. */
static char *openssl_cipher_word(const char *w)
{
    static const char *const algs[] = {"AES", "CAMELLIA", "ARIA"};
    for (gsize i = 0; i < G_N_ELEMENTS(algs); i++) {
        gsize n = strlen(algs[i]);
        if (strncmp(w, algs[i], n) == 0 && (strcmp(w + n, "128") == 0 || strcmp(w + n, "256") == 0))
            return g_strdup_printf("%s_%s", algs[i], w + n);
    }
    return NULL;
}

/* OpenSSL's spelling (ECDHE-RSA-AES256-GCM-SHA384, AES128-SHA,
 * DES-CBC3-SHA, ECDHE-ECDSA-CHACHA20-POLY1305) to GnuTLS's; NULL if the
 * word does not look like a suite name. */
static char *from_openssl_name(const char *name)
{
    static const struct {
        const char *prefix;
        const char *kx;
    } kxs[] = {
        {"ECDHE-RSA-", "ECDHE_RSA"}, {"ECDHE-ECDSA-", "ECDHE_ECDSA"}, {"DHE-RSA-", "DHE_RSA"},
        {"EDH-RSA-", "DHE_RSA"},     {"DHE-DSS-", "DHE_DSS"},         {"EDH-DSS-", "DHE_DSS"},
    };
    const char *kx = "RSA";
    const char *rest = name;
    for (gsize i = 0; i < G_N_ELEMENTS(kxs); i++) {
        if (g_str_has_prefix(name, kxs[i].prefix)) {
            kx = kxs[i].kx;
            rest = name + strlen(kxs[i].prefix);
            break;
        }
    }
    g_auto(GStrv) w = g_strsplit(rest, "-", -1);
    guint n = g_strv_length(w);
    if (n == 2 && strcmp(w[0], "CHACHA20") == 0 && strcmp(w[1], "POLY1305") == 0)
        return g_strdup_printf("TLS_%s_CHACHA20_POLY1305", kx);
    if (n == 3 && strcmp(w[0], "DES") == 0 && strcmp(w[1], "CBC3") == 0 && strcmp(w[2], "SHA") == 0)
        return g_strdup_printf("TLS_%s_3DES_EDE_CBC_SHA1", kx);
    if (n < 1 || n > 3)
        return NULL;
    g_autofree char *alg = openssl_cipher_word(w[0]);
    if (alg == NULL)
        return NULL;
    if (n == 2 && (strcmp(w[1], "CCM") == 0 || strcmp(w[1], "CCM8") == 0))
        return g_strdup_printf("TLS_%s_%s_%s", kx, alg, w[1][3] ? "CCM_8" : "CCM");
    if (n == 3 && strcmp(w[1], "GCM") == 0 && g_str_has_prefix(w[2], "SHA"))
        return g_strdup_printf("TLS_%s_%s_GCM_%s", kx, alg, w[2]);
    if (n == 2 && g_str_has_prefix(w[1], "SHA"))
        return g_strdup_printf("TLS_%s_%s_CBC_%s", kx, alg, w[1][3] ? w[1] : "SHA1");
    return NULL;
}

/* IANA's spelling, with '-' or '_' (OpenVPN writes TLS-ECDHE-RSA-WITH-...),
 * to GnuTLS's: no "WITH", SHA1 spelled out, no PRF hash on TLS 1.2 ChaCha. */
static char *from_iana_name(const char *name)
{
    g_autofree char *up = g_ascii_strup(name, -1);
    g_strdelimit(up, "-", '_');
    if (!g_str_has_prefix(up, "TLS_"))
        return NULL;
    GString *s = g_string_new(up);
    g_string_replace(s, "_WITH_", "_", 1);
    if (g_str_has_suffix(s->str, "_SHA"))
        g_string_append_c(s, '1');
    if (g_str_has_suffix(s->str, "_CHACHA20_POLY1305_SHA256") && strstr(up, "_WITH_") != NULL)
        g_string_truncate(s, s->len - strlen("_SHA256"));
    return g_string_free(s, FALSE);
}

static gint find_suite(const char *gnutls_name)
{
    for (guint i = 0; gnutls_name != NULL && i < n_suites(); i++) {
        if (g_ascii_strcasecmp(suite_at(i)->name, gnutls_name) == 0)
            return (gint)i;
    }
    return -1;
}

/* Any spelling of a suite name; -1 if it is none GnuTLS has. */
static gint lookup_suite(const char *name)
{
    g_autofree char *iana = from_iana_name(name);
    gint i = find_suite(iana);
    if (i >= 0)
        return i;
    g_autofree char *openssl = from_openssl_name(name);
    return find_suite(openssl);
}

/* ---------- OpenSSL cipher-string words ---------- */

static bool kx_is(const Suite *s, const char *const *names)
{
    const char *n = gnutls_kx_get_name(s->kx);
    for (; n != NULL && *names != NULL; names++) {
        if (strcmp(n, *names) == 0)
            return true;
    }
    return false;
}

static bool cipher_prefix(const Suite *s, const char *prefix)
{
    const char *n = gnutls_cipher_get_name(s->cipher);
    return n != NULL && g_str_has_prefix(n, prefix);
}

/* Does suite S have the attribute WORD? *KNOWN says whether WORD is one. */
static bool attribute(const Suite *s, const char *w, bool *known)
{
    static const char *const ecdhe[] = {"ECDHE-RSA", "ECDHE-ECDSA", NULL};
    static const char *const dhe[] = {"DHE-RSA", "DHE-DSS", NULL};
    static const char *const rsa_kx[] = {"RSA", NULL};
    static const char *const a_rsa[] = {"RSA", "ECDHE-RSA", "DHE-RSA", NULL};
    static const char *const a_ecdsa[] = {"ECDHE-ECDSA", NULL};
    static const char *const a_dss[] = {"DHE-DSS", NULL};
    const char *cipher = gnutls_cipher_get_name(s->cipher);
    const char *mac = gnutls_mac_get_name(s->mac);
    *known = true;
    if (s->tls13)
        return false; /* cipher strings never select TLS 1.3 suites */
    if (!strcmp(w, "ALL") || !strcmp(w, "DEFAULT") || !strcmp(w, "HIGH"))
        return s->normal;
    if (!strcmp(w, "kECDHE") || !strcmp(w, "kEECDH") || !strcmp(w, "ECDHE") || !strcmp(w, "EECDH"))
        return kx_is(s, ecdhe);
    if (!strcmp(w, "kDHE") || !strcmp(w, "kEDH") || !strcmp(w, "DHE") || !strcmp(w, "EDH"))
        return kx_is(s, dhe);
    if (!strcmp(w, "kRSA"))
        return kx_is(s, rsa_kx);
    if (!strcmp(w, "aRSA"))
        return kx_is(s, a_rsa);
    if (!strcmp(w, "RSA"))
        return kx_is(s, a_rsa); /* RSA key exchange or authentication */
    if (!strcmp(w, "aECDSA") || !strcmp(w, "ECDSA"))
        return kx_is(s, a_ecdsa);
    if (!strcmp(w, "aDSS") || !strcmp(w, "DSS"))
        return kx_is(s, a_dss);
    if (!strcmp(w, "AES"))
        return cipher_prefix(s, "AES-");
    if (!strcmp(w, "AES128"))
        return cipher_prefix(s, "AES-128-");
    if (!strcmp(w, "AES256"))
        return cipher_prefix(s, "AES-256-");
    if (!strcmp(w, "AESGCM"))
        return cipher_prefix(s, "AES-") && g_str_has_suffix(cipher, "-GCM");
    if (!strcmp(w, "AESCCM"))
        return cipher_prefix(s, "AES-") && strstr(cipher, "-CCM") != NULL;
    if (!strcmp(w, "AESCCM8"))
        return cipher_prefix(s, "AES-") && g_str_has_suffix(cipher, "-CCM-8");
    if (!strcmp(w, "CHACHA20"))
        return cipher_prefix(s, "CHACHA20-");
    if (!strcmp(w, "CAMELLIA"))
        return cipher_prefix(s, "CAMELLIA-");
    if (!strcmp(w, "CAMELLIA128"))
        return cipher_prefix(s, "CAMELLIA-128-");
    if (!strcmp(w, "CAMELLIA256"))
        return cipher_prefix(s, "CAMELLIA-256-");
    if (!strcmp(w, "3DES"))
        return s->cipher == GNUTLS_CIPHER_3DES_CBC;
    if (!strcmp(w, "SHA1") || !strcmp(w, "SHA"))
        return strcmp(mac, "SHA1") == 0;
    if (!strcmp(w, "SHA256"))
        return strcmp(mac, "SHA256") == 0 ||
               (strcmp(mac, "AEAD") == 0 && g_str_has_suffix(s->name, "_SHA256"));
    if (!strcmp(w, "SHA384"))
        return strcmp(mac, "SHA384") == 0 ||
               (strcmp(mac, "AEAD") == 0 && g_str_has_suffix(s->name, "_SHA384"));
    if (!strcmp(w, "TLSv1.2"))
        return strcmp(mac, "SHA1") != 0;
    if (!strcmp(w, "TLSv1") || !strcmp(w, "TLSv1.0") || !strcmp(w, "SSLv3"))
        return strcmp(mac, "SHA1") == 0;
    if (!strcmp(w, "SUITEB128") || !strcmp(w, "SUITEB128ONLY") || !strcmp(w, "SUITEB128C2"))
        return kx_is(s, a_ecdsa) &&
               (s->cipher == GNUTLS_CIPHER_AES_128_GCM ||
                (strcmp(w, "SUITEB128") == 0 && s->cipher == GNUTLS_CIPHER_AES_256_GCM));
    if (!strcmp(w, "SUITEB192"))
        return kx_is(s, a_ecdsa) && s->cipher == GNUTLS_CIPHER_AES_256_GCM;
    /* Words for what GnuTLS never offers: they select nothing. */
    static const char *const none[] = {"aNULL",
                                       "eNULL",
                                       "NULL",
                                       "COMPLEMENTOFDEFAULT",
                                       "COMPLEMENTOFALL",
                                       "MEDIUM",
                                       "LOW",
                                       "EXP",
                                       "EXPORT",
                                       "ADH",
                                       "AECDH",
                                       "aECDH",
                                       "kECDH",
                                       "kDH",
                                       "aDH",
                                       "RC4",
                                       "MD5",
                                       "DES",
                                       "SEED",
                                       "IDEA",
                                       "RC2",
                                       "PSK",
                                       "kPSK",
                                       "aPSK",
                                       "kECDHEPSK",
                                       "kDHEPSK",
                                       "kRSAPSK",
                                       "SRP",
                                       "kSRP",
                                       "aSRP",
                                       "GOST",
                                       "aGOST",
                                       "kGOST",
                                       "ARIA",
                                       "ARIA128",
                                       "ARIA256",
                                       "CAMELLIAGCM",
                                       "ECDHEPSK",
                                       "DHEPSK",
                                       "RSAPSK",
                                       "eNULL",
                                       NULL};
    for (const char *const *n = none; *n; n++) {
        if (strcmp(w, *n) == 0)
            return false;
    }
    *known = false;
    return false;
}

/* The suites a word (or an A+B conjunction, or a suite name) selects. */
static bool select_word(const char *w, Set *out)
{
    gint idx = lookup_suite(w);
    if (idx >= 0) {
        if (suite_at((guint)idx)->tls13)
            return false;
        out->in[idx] = 1;
        return true;
    }
    g_auto(GStrv) parts = g_strsplit(w, "+", -1);
    if (parts[0] == NULL)
        return false;
    for (guint i = 0; i < n_suites(); i++) {
        bool all = true;
        for (guint k = 0; parts[k] != NULL; k++) {
            bool known;
            if (parts[k][0] == '\0')
                return false;
            bool has = attribute(suite_at(i), parts[k], &known);
            if (!known)
                return false;
            all = all && has;
        }
        if (all)
            out->in[i] = 1;
    }
    return true;
}

/* The verification profile for an OpenSSL security level. */
static const char *seclevel_profile(guint level)
{
    static const char *const p[] = {
        "%PROFILE_VERY_WEAK:%VERIFY_ALLOW_BROKEN",
        "%PROFILE_LOW:%VERIFY_ALLOW_SIGN_WITH_SHA1",
        "%PROFILE_MEDIUM",
        "%PROFILE_HIGH",
        "%PROFILE_ULTRA",
        "%PROFILE_FUTURE",
    };
    return level < G_N_ELEMENTS(p) ? p[level] : NULL;
}

/* tls-cipher: an OpenSSL cipher string, applied in order. */
static bool parse_tls_cipher(const char *text, Set *sel, const char **profile, GError **error)
{
    Set killed = set_new();
    bool ok = true;
    g_autofree char *copy = g_strdup(text);
    g_strdelimit(copy, ", ", ':');
    g_auto(GStrv) words = g_strsplit(copy, ":", -1);
    for (guint k = 0; ok && words[k] != NULL; k++) {
        const char *w = words[k];
        if (w[0] == '\0')
            continue;
        if (w[0] == '@') {
            if (strcmp(w, "@STRENGTH") == 0)
                continue; /* ordering only */
            if (g_str_has_prefix(w, "@SECLEVEL=") && w[10] >= '0' && w[10] <= '5' &&
                w[11] == '\0') {
                *profile = seclevel_profile((guint)(w[10] - '0'));
                continue;
            }
            g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_TLS_CIPHER,
                        "'%s' is not @STRENGTH or @SECLEVEL=0..5", w);
            ok = false;
            break;
        }
        char op = w[0] == '!' || w[0] == '-' || w[0] == '+' ? w[0] : 0;
        const char *body = op ? w + 1 : w;
        Set m = set_new();
        if (!select_word(body, &m)) {
            gint idx = lookup_suite(body);
            if (idx >= 0)
                g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_TLS_CIPHER,
                            "'%s' is a TLS 1.3 suite: give it in tls-ciphersuites", body);
            else
                g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_TLS_CIPHER,
                            "'%s' is neither a cipher suite GnuTLS supports nor an OpenSSL "
                            "cipher-string word Shimmer can map",
                            body);
            ok = false;
        } else {
            for (guint i = 0; i < n_suites(); i++) {
                if (!m.in[i])
                    continue;
                if (op == '!') {
                    killed.in[i] = 1;
                    sel->in[i] = 0;
                } else if (op == '-') {
                    sel->in[i] = 0;
                } else if (op == 0 && !killed.in[i]) {
                    sel->in[i] = 1;
                }
                /* '+' only moves suites already chosen to the end. */
            }
        }
        set_free(&m);
    }
    set_free(&killed);
    return ok;
}

/* tls-ciphersuites: TLS 1.3 suite names only, as OpenSSL takes them. */
static bool parse_ciphersuites(const char *text, Set *sel, GError **error)
{
    g_auto(GStrv) words = g_strsplit(text, ":", -1);
    for (guint k = 0; words[k] != NULL; k++) {
        if (words[k][0] == '\0')
            continue;
        gint idx = find_suite(words[k]);
        if (idx < 0 || !suite_at((guint)idx)->tls13) {
            g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_TLS_CIPHERSUITES,
                        "'%s' is not a TLS 1.3 cipher suite GnuTLS supports (e.g. "
                        "TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256)",
                        words[k]);
            return false;
        }
        sel->in[idx] = 1;
    }
    return true;
}

/* tls-groups / ecdh-curve: OpenSSL's group and curve names. */
static bool parse_groups(const char *text, ShimmerTlsprioError which, GString *out, GError **error)
{
    static const struct {
        const char *openssl;
        const char *gnutls;
    } names[] = {
        {"X25519", "X25519"},       {"x25519", "X25519"},       {"X448", "X448"},
        {"x448", "X448"},           {"P-256", "SECP256R1"},     {"prime256v1", "SECP256R1"},
        {"secp256r1", "SECP256R1"}, {"P-384", "SECP384R1"},     {"secp384r1", "SECP384R1"},
        {"P-521", "SECP521R1"},     {"secp521r1", "SECP521R1"}, {"ffdhe2048", "FFDHE2048"},
        {"ffdhe3072", "FFDHE3072"}, {"ffdhe4096", "FFDHE4096"}, {"ffdhe6144", "FFDHE6144"},
        {"ffdhe8192", "FFDHE8192"},
    };
    const gnutls_group_t *supported = gnutls_group_list();
    g_auto(GStrv) words = g_strsplit(text, ":", -1);
    guint n = 0;
    for (guint k = 0; words[k] != NULL; k++) {
        const char *w = words[k];
        if (w[0] == '\0')
            continue;
        const char *g = NULL;
        for (gsize i = 0; i < G_N_ELEMENTS(names) && g == NULL; i++) {
            if (strcmp(names[i].openssl, w) == 0)
                g = names[i].gnutls;
        }
        bool have = false;
        gnutls_group_t id = g != NULL ? gnutls_group_get_id(g) : GNUTLS_GROUP_INVALID;
        for (const gnutls_group_t *s = supported; id != GNUTLS_GROUP_INVALID && *s; s++)
            have |= *s == id;
        if (!have) {
            g_set_error(error, SHIMMER_TLSPRIO_ERROR, which,
                        "'%s' is not a group GnuTLS supports (X25519, X448, P-256, P-384, "
                        "P-521, ffdhe2048 ... ffdhe8192)",
                        w);
            return false;
        }
        g_string_append_printf(out, "%s+GROUP-%s", n++ ? ":" : ":-GROUP-ALL:", g);
    }
    if (n == 0) {
        g_set_error(error, SHIMMER_TLSPRIO_ERROR, which, "the list names no group");
        return false;
    }
    return true;
}

static const char *cert_profile(const char *name)
{
    if (strcmp(name, "insecure") == 0)
        return seclevel_profile(0);
    if (strcmp(name, "legacy") == 0)
        return seclevel_profile(1);
    if (strcmp(name, "preferred") == 0)
        return seclevel_profile(2);
    if (strcmp(name, "suiteb") == 0)
        return "%PROFILE_SUITEB128";
    return NULL;
}

/* Adds "+NAME" for each distinct algorithm name of the suites in SEL. */
static void append_algorithms(GString *out, const char *reset, const Set *sel,
                              const char *(*name_of)(const Suite *))
{
    g_autoptr(GPtrArray) seen = g_ptr_array_new();
    g_string_append_printf(out, ":%s", reset);
    for (guint i = 0; i < n_suites(); i++) {
        if (!sel->in[i])
            continue;
        const char *n = name_of(suite_at(i));
        if (n == NULL || g_ptr_array_find_with_equal_func(seen, n, g_str_equal, NULL))
            continue;
        g_ptr_array_add(seen, (gpointer)n);
        g_string_append_printf(out, ":+%s", n);
    }
}

static const char *kx_name(const Suite *s)
{
    return s->tls13 ? NULL : gnutls_kx_get_name(s->kx);
}

static const char *cipher_name(const Suite *s)
{
    return gnutls_cipher_get_name(s->cipher);
}

static const char *mac_name(const Suite *s)
{
    return gnutls_mac_get_name(s->mac);
}

/* "A, B and 3 more" of the suites in A but not in B (of one TLS version). */
static char *describe_difference(const Set *a, const Set *b, bool tls13)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < n_suites(); i++) {
        if (a->in[i] && !b->in[i] && suite_at(i)->tls13 == tls13)
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", suite_at(i)->name);
    }
    if (s->len == 0) {
        g_string_free(s, TRUE);
        return NULL;
    }
    return g_string_free(s, FALSE);
}

static bool same_set(const Set *a, const Set *b, bool tls13)
{
    for (guint i = 0; i < n_suites(); i++) {
        if (suite_at(i)->tls13 == tls13 && a->in[i] != b->in[i])
            return false;
    }
    return true;
}

static void note(GPtrArray *notes, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void note(GPtrArray *notes, const char *fmt, ...)
{
    if (notes == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(notes, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* What TLS 1.2 and 1.3 suites GnuTLS will negotiate, against the request. */
static void explain(const ShimmerTlsRestrictions *r, const char *prio, const Set *want12,
                    const Set *want13, bool v12, bool v13, GPtrArray *notes)
{
    Set eff = set_new(), normal = set_new();
    g_autofree char *normal_prio = g_strconcat(BASE_PRIORITY, NULL);
    if (!set_from_priority(prio, &eff) || !set_from_priority(normal_prio, &normal))
        goto out;
    if (r->tls_cipher != NULL && v12) {
        g_autofree char *extra = describe_difference(&eff, want12, false);
        if (extra != NULL)
            note(notes,
                 "'tls-cipher': GnuTLS enables key exchanges, ciphers and MACs separately, so "
                 "TLS 1.2 also allows %s",
                 extra);
    }
    if (r->tls_cipher != NULL && r->tls_ciphersuites == NULL && v13 &&
        !same_set(&eff, &normal, true)) {
        guint n13 = set_count(&eff, true);
        Set none = set_new();
        g_autofree char *left = describe_difference(&eff, &none, true);
        set_free(&none);
        if (n13 == 0)
            note(notes, "'tls-cipher': GnuTLS applies one cipher list to TLS 1.2 and 1.3; none of "
                        "these ciphers has a TLS 1.3 suite, so TLS 1.3 will not be negotiated");
        else
            note(notes,
                 "'tls-cipher': GnuTLS applies one cipher list to TLS 1.2 and 1.3, so TLS 1.3 is "
                 "limited to %s",
                 left != NULL ? left : "the same ciphers");
    }
    if (r->tls_ciphersuites != NULL && v13) {
        g_autofree char *extra = describe_difference(&eff, want13, true);
        if (extra != NULL)
            note(notes,
                 "'tls-ciphersuites': GnuTLS applies one cipher list to TLS 1.2 and 1.3, so "
                 "TLS 1.3 also allows %s",
                 extra);
    }
    if (r->tls_ciphersuites != NULL && r->tls_cipher == NULL && v12 &&
        !same_set(&eff, &normal, false))
        note(notes,
             "'tls-ciphersuites': GnuTLS applies one cipher list to TLS 1.2 and 1.3, so TLS 1.2 "
             "is limited to the same ciphers");
out:
    set_free(&eff);
    set_free(&normal);
}

char *shimmer_tlsprio_build(const ShimmerTlsRestrictions *r, GPtrArray *notes, GError **error)
{
    static const char *const vers[] = {NULL, "VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2",
                                       "VERS-TLS1.3"};
    ShimmerTlsVersion min = r->tls_version_min ? r->tls_version_min : SHIMMER_TLS_VERSION_1_2;
    ShimmerTlsVersion max = r->tls_version_max ? r->tls_version_max : SHIMMER_TLS_VERSION_1_3;
    if (min > max) {
        g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_VERSION,
                    "tls-version-min %s is above tls-version-max %s", vers[min] + 8, vers[max] + 8);
        return NULL;
    }
    bool v12 = min <= SHIMMER_TLS_VERSION_1_2;
    bool v13 = max >= SHIMMER_TLS_VERSION_1_3;
    GString *s = g_string_new(BASE_PRIORITY ":-VERS-ALL");
    for (int v = min; v <= (int)max; v++)
        g_string_append_printf(s, ":+%s", vers[v]);

    Set want12 = set_new(), want13 = set_new();
    const char *profile = NULL;
    bool ok = true;
    if (r->tls_cipher != NULL) {
        ok = parse_tls_cipher(r->tls_cipher, &want12, &profile, error);
        if (ok && set_count(&want12, false) == 0) {
            g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_TLS_CIPHER,
                        "'%s' selects no cipher suite", r->tls_cipher);
            ok = false;
        }
    }
    if (ok && r->tls_ciphersuites != NULL) {
        ok = parse_ciphersuites(r->tls_ciphersuites, &want13, error);
        if (ok && set_count(&want13, true) == 0) {
            g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_TLS_CIPHERSUITES,
                        "the list names no cipher suite");
            ok = false;
        }
    }
    if (ok && (r->tls_cipher != NULL || r->tls_ciphersuites != NULL)) {
        /* One cipher list serves both versions: only the ciphers of what was
         * restricted go in, which narrows the other version (noted below). */
        Set ciphers = set_new(), rest = set_new();
        for (guint i = 0; i < n_suites(); i++) {
            const Suite *x = suite_at(i);
            if (!x->tls13 && r->tls_cipher == NULL)
                want12.in[i] = x->normal;
            if (x->tls13 && r->tls_ciphersuites == NULL)
                want13.in[i] = x->normal;
            if (x->tls13 ? r->tls_ciphersuites != NULL : r->tls_cipher != NULL)
                ciphers.in[i] = x->tls13 ? want13.in[i] : want12.in[i];
            /* Key exchanges and MACs of the TLS 1.2 request (or defaults). */
            rest.in[i] = x->tls13 ? want13.in[i] : want12.in[i];
        }
        append_algorithms(s, "-CIPHER-ALL", &ciphers, cipher_name);
        append_algorithms(s, "-MAC-ALL", &rest, mac_name);
        append_algorithms(s, "-KX-ALL", &rest, kx_name);
        set_free(&ciphers);
        set_free(&rest);
    }
    if (ok && (r->tls_groups != NULL || r->ecdh_curve != NULL)) {
        bool groups = r->tls_groups != NULL;
        ok = parse_groups(
            groups ? r->tls_groups : r->ecdh_curve,
            groups ? SHIMMER_TLSPRIO_ERROR_TLS_GROUPS : SHIMMER_TLSPRIO_ERROR_ECDH_CURVE, s, error);
    } else if (ok) {
        g_string_append(s, DEFAULT_GROUPS);
    }
    if (ok && r->tls_cert_profile != NULL) {
        const char *p = cert_profile(r->tls_cert_profile);
        if (p == NULL) {
            g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_TLS_CERT_PROFILE,
                        "'%s' is not insecure, legacy, preferred or suiteb", r->tls_cert_profile);
            ok = false;
        } else if (profile == NULL) {
            profile = p;
        }
    }
    if (ok && profile != NULL)
        g_string_append_printf(s, ":%s", profile);

    if (ok) {
        gnutls_priority_t prio;
        const char *where = NULL;
        int rc = gnutls_priority_init(&prio, s->str, &where);
        if (rc < 0) {
            g_set_error(error, SHIMMER_TLSPRIO_ERROR, SHIMMER_TLSPRIO_ERROR_GNUTLS,
                        "GnuTLS refuses the priority string '%s' at '%s': %s", s->str,
                        where ? where : "?", gnutls_strerror(rc));
            ok = false;
        } else {
            gnutls_priority_deinit(prio);
            explain(r, s->str, &want12, &want13, v12, v13, notes);
        }
    }
    set_free(&want12);
    set_free(&want13);
    if (!ok) {
        g_string_free(s, TRUE);
        return NULL;
    }
    return g_string_free(s, FALSE);
}
