/* SPDX-License-Identifier: MIT */
/*
 * ShimmerConfig <-> NMConnection.
 *
 * Import walks the directives of the file in order and puts each in exactly
 * one place: a vpn.data key named after it (its arguments, re-quoted), a
 * typed place (certificates in vpn.data, key material and passwords in
 * vpn.secrets, routes and never-default in the ipv4/ipv6 settings), or the
 * as-is "config-extra" text. Export writes every place back as directives in
 * a fixed order and parses the result before handing it out, so what it
 * writes always imports again, to the same connection.
 */
#include "mapping.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>

#include "lexer.h"
#include "secure.h"

/* ---------- the vpn.data keys that hold a directive's arguments ---------- */

typedef struct {
    const char *name;
    /* 0: the directive may stand alone; alone it is stored as "yes" (no
     * directive below takes "yes" as its only argument). */
    guint min_args;
    /* may be given more than once: one line of the value per directive */
    bool multi;
} DataDirective;

/* In the order export writes them. */
static const DataDirective data_directives[] = {
    {"client", 0, false},
    {"tls-client", 0, false},
    {"pull", 0, false},
    {"dev", 1, false},
    {"dev-type", 1, false},
    {"topology", 1, false},
    {"proto", 1, false},
    {"port", 1, false},
    {"rport", 1, false},
    {"lport", 1, false},
    {"remote", 1, true},
    {"remote-random", 0, false},
    {"remote-random-hostname", 0, false},
    {"connect-retry", 1, false},
    {"connect-retry-max", 1, false},
    {"connect-timeout", 1, false},
    {"server-poll-timeout", 1, false},
    {"resolv-retry", 1, false},
    {"tun-mtu", 1, false},
    {"mssfix", 0, false},
    {"mark", 1, false},
    {"remote-cert-tls", 1, false},
    {"verify-x509-name", 1, false},
    {"tls-version-min", 1, false},
    {"tls-version-max", 1, false},
    {"tls-cipher", 1, false},
    {"tls-ciphersuites", 1, false},
    {"tls-groups", 1, false},
    {"auth", 1, false},
    {"cipher", 1, false},
    {"data-ciphers", 1, false},
    {"ncp-ciphers", 1, false},
    {"data-ciphers-fallback", 1, false},
    {"comp-lzo", 0, false},
    {"compress", 0, false},
    {"allow-compression", 1, false},
    {"auth-retry", 1, false},
    {"auth-nocache", 0, false},
    {"static-challenge", 2, false},
    {"reneg-sec", 1, false},
    {"reneg-bytes", 1, false},
    {"reneg-pkts", 1, false},
    {"hand-window", 1, false},
    {"tran-window", 1, false},
    {"keepalive", 2, false},
    {"ping", 1, false},
    {"ping-restart", 1, false},
    {"ping-exit", 1, false},
    {"explicit-exit-notify", 0, false},
    {"route-gateway", 1, false},
    {"route-metric", 1, false},
    {"redirect-private", 0, false},
    {"pull-filter", 2, true},
    {"dhcp-option", 1, true},
    {"dns", 2, true},
    {"ifconfig", 2, false},
    {"ifconfig-ipv6", 2, false},
    {"block-ipv6", 0, false},
    {"http-proxy-option", 1, true},
};

static const DataDirective *data_directive(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(data_directives); i++) {
        if (strcmp(data_directives[i].name, name) == 0)
            return &data_directives[i];
    }
    return NULL;
}

/* Directives and blocks whose content is taken from the typed config. */
static const char *const typed_directives[] = {
    "ca",
    "cert",
    "key",
    "pkcs12",
    "extra-certs",
    "crl-verify",
    "askpass",
    "tls-auth",
    "tls-crypt",
    "tls-crypt-v2",
    "key-direction",
    "auth-user-pass",
    "peer-fingerprint",
    "redirect-gateway",
    "route-nopull",
    NULL,
};

static const char *const typed_blocks[] = {
    "ca",      "cert",     "key",       "pkcs12",       "extra-certs",    "crl-verify",
    "askpass", "tls-auth", "tls-crypt", "tls-crypt-v2", "auth-user-pass", "peer-fingerprint",
    NULL,
};

/* The secrets: vpn.secrets name and the inline block export writes. */
static const struct {
    const char *secret;
    const char *block;
} key_secrets[] = {
    {SHIMMER_NM_SECRET_KEY, "key"},
    {SHIMMER_NM_SECRET_PKCS12, "pkcs12"},
    {SHIMMER_NM_SECRET_TLS_AUTH, "tls-auth"},
    {SHIMMER_NM_SECRET_TLS_CRYPT, "tls-crypt"},
    {SHIMMER_NM_SECRET_TLS_CRYPT_V2, "tls-crypt-v2"},
};

/* Certificates and CRLs: not secret, kept in vpn.data as PEM. */
static const char *const pem_keys[] = {
    SHIMMER_NM_KEY_CA,
    SHIMMER_NM_KEY_CERT,
    SHIMMER_NM_KEY_EXTRA_CERTS,
    SHIMMER_NM_KEY_CRL_VERIFY,
};

static bool in_list(const char *name, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (strcmp(*list, name) == 0)
            return true;
    }
    return false;
}

/* ---------- tokens ---------- */

/* Whether the lexer would read T back as a different token without quotes. */
static bool token_needs_quotes(const char *t)
{
    if (t[0] == '\0' || t[0] == '#' || t[0] == ';')
        return true;
    for (const char *c = t; *c != '\0'; c++) {
        if (*c == ' ' || *c == '\t' || *c == '\\' || *c == '"' || *c == '\'' || *c == '\r')
            return true;
    }
    return false;
}

static void append_token(GString *out, const char *t)
{
    if (!token_needs_quotes(t)) {
        g_string_append(out, t);
        return;
    }
    g_string_append_c(out, '"');
    for (const char *c = t; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *c);
    }
    g_string_append_c(out, '"');
}

static void append_tokens(GString *out, char *const *argv, guint from, guint argc)
{
    for (guint i = from; i < argc; i++) {
        if (i > from)
            g_string_append_c(out, ' ');
        append_token(out, argv[i]);
    }
}

/* One directive back as text, quoted so that it lexes to the same tokens. */
static void append_directive(GString *out, const ShimmerItem *it)
{
    append_tokens(out, it->argv, 0, it->argc);
    g_string_append_c(out, '\n');
}

static void append_block(GString *out, const char *name, const char *body)
{
    g_string_append_printf(out, "<%s>\n%s", name, body);
    if (body[0] != '\0' && body[strlen(body) - 1] != '\n')
        g_string_append_c(out, '\n');
    g_string_append_printf(out, "</%s>\n", name);
}

/* ---------- import ---------- */

typedef struct {
    const ShimmerConfig *cfg;
    NMSettingVpn *s_vpn;
    NMSettingIPConfig *s_ip4;
    NMSettingIPConfig *s_ip6;
    GHashTable *values; /* data key -> GString, for data_directives */
    GString *extra;
    GString *extra_blocks; /* secret: unknown blocks may hold credentials */
    GPtrArray *notes;
    const char *filename;
    /* The top-level proxy went to the proxy-* keys: its directives (and
     * the credentials of an HTTP one) are taken from there. */
    const ShimmerProxy *proxy;
} Importer;

static void note_kept(Importer *im, const ShimmerItem *it, const char *where)
{
    if (im->notes == NULL)
        return;
    const char *name = it->kind == SHIMMER_ITEM_BLOCK ? it->block_name : it->argv[0];
    if (it->kind == SHIMMER_ITEM_DIRECTIVE &&
        (strcmp(name, "route") == 0 || strcmp(name, "route-ipv6") == 0)) {
        /* Routes say nothing secret: show them, and why they stay. */
        g_autoptr(GString) route = g_string_new(NULL);
        append_tokens(route, it->argv, 0, it->argc);
        g_ptr_array_add(im->notes,
                        g_strdup_printf("%s:%u: kept as-is in %s: '%s' (a NetworkManager route "
                                        "needs an address and prefix, and an address as gateway; "
                                        "not a default route)",
                                        im->filename, it->line, where, route->str));
        return;
    }
    if (it->end_line > it->line)
        g_ptr_array_add(im->notes, g_strdup_printf("%s:%u-%u: kept as-is in %s: <%s>", im->filename,
                                                   it->line, it->end_line, where, name));
    else
        g_ptr_array_add(im->notes, g_strdup_printf("%s:%u: kept as-is in %s: '%s'", im->filename,
                                                   it->line, where, name));
}

/* The text of a certificate or key: LF line ends, a final LF, valid UTF-8
 * (vpn.data and vpn.secrets travel over D-Bus as strings). */
static char *blob_text(const ShimmerBlob *b, const char *filename, const char *what, GError **error)
{
    GString *s = g_string_sized_new(b->len + 1);
    for (gsize i = 0; i < b->len; i++) {
        if (b->data[i] == '\r' && i + 1 < b->len && b->data[i + 1] == '\n')
            continue;
        g_string_append_c(s, (char)b->data[i]);
    }
    if (s->len == 0 || s->str[s->len - 1] != '\n')
        g_string_append_c(s, '\n');
    if (memchr(s->str, '\0', s->len) != NULL || !g_utf8_validate(s->str, (gssize)s->len, NULL)) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                    "%s:%u: '%s' is not text (PEM is expected)", filename, b->line, what);
        shimmer_wipe(s->str, s->len);
        g_string_free(s, TRUE);
        return NULL;
    }
    return g_string_free(s, FALSE);
}

static void set_secret(NMSettingVpn *s_vpn, const char *name, const char *value,
                       NMSettingSecretFlags flags)
{
    if (value != NULL)
        nm_setting_vpn_add_secret(s_vpn, name, value);
    nm_setting_set_secret_flags(NM_SETTING(s_vpn), name, flags, NULL);
}

static bool add_pem_data(Importer *im, const ShimmerBlob *b, const char *key, GError **error)
{
    if (!b->present)
        return true;
    char *text = blob_text(b, im->filename, key, error);
    if (text == NULL)
        return false;
    nm_setting_vpn_add_data_item(im->s_vpn, key, text);
    g_free(text);
    return true;
}

static bool add_key_secret(Importer *im, const ShimmerBlob *b, const char *name, GError **error)
{
    if (!b->present)
        return true;
    char *text = blob_text(b, im->filename, name, error);
    if (text == NULL)
        return false;
    set_secret(im->s_vpn, name, text, NM_SETTING_SECRET_FLAG_NONE);
    shimmer_str_free_secret(text);
    return true;
}

/* The typed parts: certificates, key material, credentials. */
static bool import_typed(Importer *im, GError **error)
{
    const ShimmerConfig *cfg = im->cfg;

    if (!add_pem_data(im, &cfg->ca, SHIMMER_NM_KEY_CA, error) ||
        !add_pem_data(im, &cfg->cert, SHIMMER_NM_KEY_CERT, error) ||
        !add_pem_data(im, &cfg->extra_certs, SHIMMER_NM_KEY_EXTRA_CERTS, error) ||
        !add_pem_data(im, &cfg->crl_verify, SHIMMER_NM_KEY_CRL_VERIFY, error))
        return false;

    if (!add_key_secret(im, &cfg->key, SHIMMER_NM_SECRET_KEY, error) ||
        !add_key_secret(im, &cfg->tls_auth, SHIMMER_NM_SECRET_TLS_AUTH, error) ||
        !add_key_secret(im, &cfg->tls_crypt, SHIMMER_NM_SECRET_TLS_CRYPT, error) ||
        !add_key_secret(im, &cfg->tls_crypt_v2, SHIMMER_NM_SECRET_TLS_CRYPT_V2, error))
        return false;

    if (cfg->pkcs12.present) {
        /* The typed blob is DER either way; the secret is the base64 an
         * inline <pkcs12> block holds. */
        char *b64 = g_base64_encode(cfg->pkcs12.data, cfg->pkcs12.len);
        GString *s = g_string_sized_new(strlen(b64) + strlen(b64) / 64 + 2);
        for (gsize i = 0, n = strlen(b64); i < n; i += 64) {
            g_string_append_len(s, b64 + i, (gssize)MIN(64, n - i));
            g_string_append_c(s, '\n');
        }
        set_secret(im->s_vpn, SHIMMER_NM_SECRET_PKCS12, s->str, NM_SETTING_SECRET_FLAG_NONE);
        shimmer_str_free_secret(b64);
        shimmer_wipe(s->str, s->len);
        g_string_free(s, TRUE);
    }

    if (cfg->key_direction >= 0) {
        char dir[8];
        g_snprintf(dir, sizeof(dir), "%d", cfg->key_direction);
        nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_KEY_DIRECTION, dir);
    }

    if (cfg->peer_fingerprints->len > 0) {
        GString *s = g_string_new(NULL);
        for (guint i = 0; i < cfg->peer_fingerprints->len; i++) {
            const guint8 *fp = (const guint8 *)cfg->peer_fingerprints->data + (gsize)i * 32;
            if (i > 0)
                g_string_append_c(s, '\n');
            for (guint k = 0; k < 32; k++)
                g_string_append_printf(s, "%s%02X", k ? ":" : "", fp[k]);
        }
        nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_PEER_FINGERPRINT, s->str);
        g_string_free(s, TRUE);
    }

    /* Credentials. A password from the file is kept in the profile; one the
     * user types is the agent's (or asked for every time with
     * auth-nocache). */
    NMSettingSecretFlags asked =
        cfg->auth_nocache ? NM_SETTING_SECRET_FLAG_NOT_SAVED : NM_SETTING_SECRET_FLAG_AGENT_OWNED;
    if (cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE) {
        for (const char *const *v = (const char *const[]){cfg->username, cfg->password, NULL};
             *v != NULL; v++) {
            if (strchr(*v, '\n') != NULL || !g_utf8_validate(*v, -1, NULL)) {
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                            "%s:%u: the user name and password of 'auth-user-pass' must be "
                            "UTF-8 text",
                            im->filename, cfg->auth_user_pass_file.line);
                return false;
            }
        }
        if (cfg->username != NULL)
            nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_USERNAME, cfg->username);
        if (cfg->password != NULL)
            set_secret(im->s_vpn, SHIMMER_NM_SECRET_PASSWORD, cfg->password,
                       NM_SETTING_SECRET_FLAG_NONE);
        else
            set_secret(im->s_vpn, SHIMMER_NM_SECRET_PASSWORD, NULL, asked);
    }

    if (cfg->askpass || cfg->key_encrypted) {
        g_autofree char *pass = NULL;
        if (cfg->askpass_file.present) {
            /* The passphrase is the first line, as OpenVPN reads it. */
            gsize n = strcspn((const char *)cfg->askpass_file.data, "\r\n");
            pass = g_strndup((const char *)cfg->askpass_file.data, n);
        }
        if (pass != NULL && pass[0] != '\0') {
            if (!g_utf8_validate(pass, -1, NULL)) {
                shimmer_wipe(pass, strlen(pass));
                g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                            "%s:%u: the 'askpass' passphrase must be UTF-8 text", im->filename,
                            cfg->askpass_file.line);
                return false;
            }
            set_secret(im->s_vpn, SHIMMER_NM_SECRET_CERT_PASS, pass, NM_SETTING_SECRET_FLAG_NONE);
        } else {
            set_secret(im->s_vpn, SHIMMER_NM_SECRET_CERT_PASS, NULL,
                       NM_SETTING_SECRET_FLAG_AGENT_OWNED);
        }
        if (pass != NULL)
            shimmer_wipe(pass, strlen(pass));
    }

    if (cfg->static_challenge != NULL)
        set_secret(im->s_vpn, SHIMMER_NM_SECRET_OTP, NULL, NM_SETTING_SECRET_FLAG_NOT_SAVED);
    return true;
}

static const char *const http_auth_names[] = {
    [SHIMMER_PROXY_AUTH_NONE] = NULL,   [SHIMMER_PROXY_AUTH_BASIC] = "basic",
    [SHIMMER_PROXY_AUTH_NTLM] = "ntlm", [SHIMMER_PROXY_AUTH_NTLM2] = "ntlm2",
    [SHIMMER_PROXY_AUTH_AUTO] = "auto", [SHIMMER_PROXY_AUTH_AUTO_NCT] = "auto-nct",
};

/* The top-level http-proxy or socks-proxy in NetworkManager-openvpn's keys.
 * (A SOCKS proxy's authfile has no inline form: the parser's inline check
 * refuses such a profile before this.) */
static bool import_proxy(Importer *im, GError **error)
{
    const ShimmerProxy *x = im->cfg->proxy;
    if (x == NULL || x->host == NULL || (x->type == SHIMMER_PROXY_SOCKS && x->auth_file != NULL))
        return true;
    bool http = x->type == SHIMMER_PROXY_HTTP;
    const char *user = http && x->auth != SHIMMER_PROXY_AUTH_NONE ? x->username : NULL;
    const char *pass = user != NULL ? x->password : NULL;
    for (const char *const *v = (const char *const[]){user, pass, NULL}; *v != NULL; v++) {
        if (strchr(*v, '\n') != NULL || !g_utf8_validate(*v, -1, NULL)) {
            g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                        "%s:%u: the HTTP proxy's user name and password must be UTF-8 text",
                        im->filename, x->line);
            return false;
        }
    }
    char port[8];
    g_snprintf(port, sizeof(port), "%u", x->port);
    nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_PROXY_TYPE, http ? "http" : "socks");
    nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_PROXY_SERVER, x->host);
    nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_PROXY_PORT, port);
    if (http && http_auth_names[x->auth] != NULL)
        nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_HTTP_PROXY_AUTH,
                                     http_auth_names[x->auth]);
    if (user != NULL)
        nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_HTTP_PROXY_USERNAME, user);
    if (pass != NULL)
        set_secret(im->s_vpn, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD, pass,
                   NM_SETTING_SECRET_FLAG_NONE);
    else if (user != NULL || (http && x->auth_prompt))
        set_secret(im->s_vpn, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD, NULL,
                   NM_SETTING_SECRET_FLAG_AGENT_OWNED);
    im->proxy = x;
    return true;
}

/* Whether IT is one of the proxy's directives or blocks the proxy-* keys
 * hold now. */
static bool proxy_item(Importer *im, const ShimmerItem *it)
{
    if (im->proxy == NULL)
        return false;
    bool http = im->proxy->type == SHIMMER_PROXY_HTTP;
    const char *name = it->kind == SHIMMER_ITEM_BLOCK ? it->block_name : it->argv[0];
    if (strcmp(name, "http-proxy-user-pass") == 0)
        return http && im->proxy->auth != SHIMMER_PROXY_AUTH_NONE;
    if (it->kind == SHIMMER_ITEM_BLOCK)
        return false;
    if (strcmp(name, http ? "http-proxy" : "socks-proxy") == 0)
        return true;
    if (strcmp(name, "http-proxy-retry") == 0 || strcmp(name, "socks-proxy-retry") == 0) {
        nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_PROXY_RETRY, "yes");
        return true;
    }
    return false;
}

static bool parse_metric(const char *s, gint64 *out)
{
    if (s == NULL || strcmp(s, "default") == 0) {
        *out = -1;
        return true;
    }
    guint64 v;
    if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT32, &v, NULL))
        return false;
    *out = (gint64)v;
    return true;
}

static const char *route_arg(const ShimmerItem *it, guint i)
{
    if (it->argc <= i || strcmp(it->argv[i], "default") == 0)
        return NULL;
    return it->argv[i];
}

/* route NETWORK [NETMASK [GATEWAY [METRIC]]] with addresses only: an
 * ipv4.routes entry. Host names, keywords (vpn_gateway, net_gateway,
 * remote_host) and default routes stay as-is. */
static bool import_route4(Importer *im, const ShimmerItem *it)
{
    const char *net = it->argv[1];
    const char *mask = route_arg(it, 2);
    const char *gw = route_arg(it, 3);
    struct in_addr a, m, g;
    gint64 metric;
    if (inet_pton(AF_INET, net, &a) != 1 || !parse_metric(route_arg(it, 4), &metric))
        return false;
    if (gw != NULL && inet_pton(AF_INET, gw, &g) != 1)
        return false;
    guint prefix = 32;
    if (mask != NULL) {
        if (inet_pton(AF_INET, mask, &m) != 1)
            return false;
        guint32 hm = ntohl(m.s_addr);
        prefix = (guint)__builtin_popcount(hm);
        if (prefix < 32 && hm != ~(G_MAXUINT32 >> prefix))
            return false;
        if ((ntohl(a.s_addr) & ~hm) != 0)
            return false;
    }
    if (prefix == 0)
        return false;
    NMIPRoute *r = nm_ip_route_new(AF_INET, net, prefix, gw, metric, NULL);
    if (r == NULL)
        return false;
    nm_setting_ip_config_add_route(im->s_ip4, r);
    nm_ip_route_unref(r);
    return true;
}

/* route-ipv6 PREFIX [GATEWAY [METRIC]] */
static bool import_route6(Importer *im, const ShimmerItem *it)
{
    g_autofree char *addr = g_strdup(it->argv[1]);
    const char *gw = route_arg(it, 2);
    guint prefix = 128;
    char *slash = strchr(addr, '/');
    if (slash != NULL) {
        guint64 v;
        *slash = '\0';
        if (!g_ascii_string_to_unsigned(slash + 1, 10, 0, 128, &v, NULL))
            return false;
        prefix = (guint)v;
    }
    struct in6_addr a, g;
    gint64 metric;
    if (inet_pton(AF_INET6, addr, &a) != 1 || !parse_metric(route_arg(it, 3), &metric))
        return false;
    if (gw != NULL && inet_pton(AF_INET6, gw, &g) != 1)
        return false;
    if (prefix == 0)
        return false;
    for (guint bit = prefix; bit < 128; bit++) {
        if (a.s6_addr[bit / 8] & (0x80 >> (bit % 8)))
            return false;
    }
    NMIPRoute *r = nm_ip_route_new(AF_INET6, addr, prefix, gw, metric, NULL);
    if (r == NULL)
        return false;
    nm_setting_ip_config_add_route(im->s_ip6, r);
    nm_ip_route_unref(r);
    return true;
}

/* redirect-gateway: whether the tunnel takes the default route is the
 * ipv4/ipv6 never-default settings (so that NetworkManager, and a user
 * editing the connection, see it); the other flags stay in vpn.data. */
static void import_redirect(Importer *im, const ShimmerItem *it)
{
    bool v4 = true, v6 = false;
    GString *flags = g_string_new(NULL);
    for (guint i = 1; i < it->argc; i++) {
        if (strcmp(it->argv[i], "ipv6") == 0) {
            v6 = true;
        } else if (strcmp(it->argv[i], "!ipv4") == 0) {
            v4 = false;
        } else {
            if (flags->len > 0)
                g_string_append_c(flags, ' ');
            append_token(flags, it->argv[i]);
        }
    }
    nm_setting_vpn_add_data_item(im->s_vpn, SHIMMER_NM_KEY_REDIRECT_GATEWAY,
                                 flags->len > 0 ? flags->str : "yes");
    g_object_set(im->s_ip4, NM_SETTING_IP_CONFIG_NEVER_DEFAULT, !v4, NULL);
    g_object_set(im->s_ip6, NM_SETTING_IP_CONFIG_NEVER_DEFAULT, !v6, NULL);
    g_string_free(flags, TRUE);
}

static void import_data_directive(Importer *im, const DataDirective *d, const ShimmerItem *it)
{
    GString *line = g_string_new(NULL);
    if (it->argc == 1)
        g_string_append(line, "yes");
    else
        append_tokens(line, it->argv, 1, it->argc);
    GString *value = g_hash_table_lookup(im->values, d->name);
    if (value == NULL) {
        g_hash_table_insert(im->values, (gpointer)d->name, line);
        return;
    }
    /* A single-valued directive repeated with the same value (the parser
     * refuses a different one). */
    if (d->multi) {
        g_string_append_c(value, '\n');
        g_string_append_len(value, line->str, (gssize)line->len);
    }
    g_string_free(line, TRUE);
}

static void import_items(Importer *im, GPtrArray *items)
{
    for (guint i = 0; i < items->len; i++) {
        const ShimmerItem *it = g_ptr_array_index(items, i);
        if (proxy_item(im, it))
            continue;
        if (it->kind == SHIMMER_ITEM_BLOCK) {
            if (in_list(it->block_name, typed_blocks))
                continue;
            if (strcmp(it->block_name, "connection") == 0) {
                append_block(im->extra, it->block_name, it->body);
                note_kept(im, it, "vpn.data " SHIMMER_NM_KEY_CONFIG_EXTRA);
            } else {
                append_block(im->extra_blocks, it->block_name, it->body);
                note_kept(im, it, "vpn.secrets " SHIMMER_NM_SECRET_EXTRA_BLOCKS);
            }
            continue;
        }
        const char *name = it->argv[0];
        if (strcmp(name, "redirect-gateway") == 0) {
            import_redirect(im, it);
            continue;
        }
        if (in_list(name, typed_directives))
            continue;
        if (strcmp(name, "route") == 0 && import_route4(im, it))
            continue;
        if (strcmp(name, "route-ipv6") == 0 && import_route6(im, it))
            continue;
        const DataDirective *d = data_directive(name);
        if (d != NULL) {
            import_data_directive(im, d, it);
            continue;
        }
        append_directive(im->extra, it);
        note_kept(im, it, "vpn.data " SHIMMER_NM_KEY_CONFIG_EXTRA);
    }
}

static bool utf8_or_error(const char *s, gsize len, const char *filename, GError **error)
{
    if (g_utf8_validate(s, (gssize)len, NULL))
        return true;
    g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                "%s: the directives must be UTF-8 text", filename);
    return false;
}

NMConnection *shimmer_nm_connection_from_config(const ShimmerConfig *cfg, const char *text,
                                                gsize len, const char *id, GPtrArray *notes,
                                                GError **error)
{
    g_return_val_if_fail(cfg != NULL && !shimmer_config_has_errors(cfg), NULL);

    if (cfg->role != SHIMMER_ROLE_CLIENT) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                    "%s: this is a server configuration; NetworkManager imports client "
                    "profiles only",
                    cfg->filename);
        return NULL;
    }
    const char *why = shimmer_config_inline_error(cfg);
    if (why != NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION, "%s: %s",
                    cfg->filename, why);
        return NULL;
    }

    g_autoptr(GError) lex_error = NULL;
    guint lex_line = 0;
    g_autoptr(GPtrArray) items = shimmer_lex(text, len, 1, &lex_line, &lex_error);
    if (items == NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                    "%s:%u: error: %s", cfg->filename, lex_line, lex_error->message);
        return NULL;
    }

    g_autoptr(NMSettingVpn) s_vpn = NM_SETTING_VPN(nm_setting_vpn_new());
    g_autoptr(NMSettingIPConfig) s_ip4 = NM_SETTING_IP_CONFIG(nm_setting_ip4_config_new());
    g_autoptr(NMSettingIPConfig) s_ip6 = NM_SETTING_IP_CONFIG(nm_setting_ip6_config_new());
    g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, SHIMMER_NM_SERVICE_TYPE, NULL);
    /* Without redirect-gateway the tunnel never takes the default route. */
    g_object_set(s_ip4, NM_SETTING_IP_CONFIG_METHOD, NM_SETTING_IP4_CONFIG_METHOD_AUTO,
                 NM_SETTING_IP_CONFIG_NEVER_DEFAULT, TRUE, NM_SETTING_IP_CONFIG_IGNORE_AUTO_ROUTES,
                 cfg->route_nopull, NULL);
    g_object_set(s_ip6, NM_SETTING_IP_CONFIG_METHOD, NM_SETTING_IP6_CONFIG_METHOD_AUTO,
                 NM_SETTING_IP_CONFIG_NEVER_DEFAULT, TRUE, NM_SETTING_IP_CONFIG_IGNORE_AUTO_ROUTES,
                 cfg->route_nopull, NULL);

    Importer im = {
        .cfg = cfg,
        .s_vpn = s_vpn,
        .s_ip4 = s_ip4,
        .s_ip6 = s_ip6,
        .values = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, NULL),
        .extra = g_string_new(NULL),
        .extra_blocks = g_string_new(NULL),
        .notes = notes,
        .filename = cfg->filename,
    };
    bool ok = import_typed(&im, error) && import_proxy(&im, error);
    if (ok) {
        import_items(&im, items);
        if (cfg->tls_crypt_v2.present) {
            /* tls-crypt-v2 FILE MODE: the mode is all that is left of it. */
            for (guint i = 0; i < items->len; i++) {
                const ShimmerItem *it = g_ptr_array_index(items, i);
                if (it->kind == SHIMMER_ITEM_DIRECTIVE &&
                    strcmp(it->argv[0], "tls-crypt-v2") == 0 && it->argc > 2)
                    nm_setting_vpn_add_data_item(s_vpn, SHIMMER_NM_KEY_TLS_CRYPT_V2_MODE,
                                                 it->argv[2]);
            }
        }
        GHashTableIter iter;
        gpointer key, value;
        g_hash_table_iter_init(&iter, im.values);
        while (ok && g_hash_table_iter_next(&iter, &key, &value)) {
            GString *v = value;
            ok = utf8_or_error(v->str, v->len, cfg->filename, error);
            if (ok)
                nm_setting_vpn_add_data_item(s_vpn, key, v->str);
        }
        if (ok && im.extra->len > 0) {
            ok = utf8_or_error(im.extra->str, im.extra->len, cfg->filename, error);
            if (ok)
                nm_setting_vpn_add_data_item(s_vpn, SHIMMER_NM_KEY_CONFIG_EXTRA, im.extra->str);
        }
        if (ok && im.extra_blocks->len > 0) {
            ok = utf8_or_error(im.extra_blocks->str, im.extra_blocks->len, cfg->filename, error);
            if (ok)
                set_secret(s_vpn, SHIMMER_NM_SECRET_EXTRA_BLOCKS, im.extra_blocks->str,
                           NM_SETTING_SECRET_FLAG_NONE);
        }
    }
    {
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, im.values);
        while (g_hash_table_iter_next(&iter, NULL, &value))
            g_string_free(value, TRUE);
        g_hash_table_unref(im.values);
    }
    g_string_free(im.extra, TRUE);
    shimmer_wipe(im.extra_blocks->str, im.extra_blocks->len);
    g_string_free(im.extra_blocks, TRUE);
    if (!ok)
        return NULL;

    NMConnection *conn = nm_simple_connection_new();
    NMSetting *s_con = nm_setting_connection_new();
    g_autofree char *uuid = nm_utils_uuid_generate();
    g_object_set(s_con, NM_SETTING_CONNECTION_ID, id, NM_SETTING_CONNECTION_UUID, uuid,
                 NM_SETTING_CONNECTION_TYPE, NM_SETTING_VPN_SETTING_NAME, NULL);
    nm_connection_add_setting(conn, s_con);
    nm_connection_add_setting(conn, NM_SETTING(g_steal_pointer(&s_vpn)));
    nm_connection_add_setting(conn, NM_SETTING(g_steal_pointer(&s_ip4)));
    nm_connection_add_setting(conn, NM_SETTING(g_steal_pointer(&s_ip6)));
    return conn;
}

/* The connection's name: the file name without its .ovpn or .conf. */
static char *id_from_filename(const char *filename)
{
    char *base = g_path_get_basename(filename);
    static const char *const exts[] = {".ovpn", ".conf"};
    for (gsize i = 0; i < G_N_ELEMENTS(exts); i++) {
        if (g_str_has_suffix(base, exts[i]) && strlen(base) > strlen(exts[i])) {
            base[strlen(base) - strlen(exts[i])] = '\0';
            break;
        }
    }
    return base;
}

/* Only the errors of the parser's diagnostics, one "FILE:LINE: error: ..."
 * line each. */
static char *format_errors(const ShimmerConfig *cfg)
{
    g_autoptr(GString) all = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, all);
    GString *out = g_string_new(NULL);
    g_auto(GStrv) lines = g_strsplit(all->str, "\n", -1);
    gsize flen = strlen(cfg->filename);
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *p = lines[i];
        if (strncmp(p, cfg->filename, flen) != 0)
            continue;
        p += flen;
        if (p[0] == ':' && g_ascii_isdigit(p[1])) {
            p++;
            while (g_ascii_isdigit(*p))
                p++;
        }
        if (!g_str_has_prefix(p, ": error: "))
            continue;
        if (out->len > 0)
            g_string_append_c(out, '\n');
        g_string_append(out, lines[i]);
    }
    return g_string_free(out, FALSE);
}

static void add_warnings(const ShimmerConfig *cfg, GPtrArray *notes)
{
    g_autoptr(GString) all = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, all);
    g_auto(GStrv) lines = g_strsplit(all->str, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        if (lines[i][0] != '\0')
            g_ptr_array_add(notes, g_strdup(lines[i]));
    }
}

NMConnection *shimmer_nm_import(const char *filename, GPtrArray **notes, GError **error)
{
    g_autoptr(GBytes) bytes = NULL;
    g_autoptr(GError) local = NULL;
    if (!shimmer_config_file_loader(filename, &bytes, &local, NULL)) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_FAILED, "cannot read '%s': %s",
                    filename, local->message);
        return NULL;
    }
    gsize len = 0;
    const char *text = g_bytes_get_data(bytes, &len);
    if (text == NULL)
        text = "";

    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse(filename, NULL, text, len, shimmer_config_file_loader, NULL);
    g_autoptr(GPtrArray) out_notes = g_ptr_array_new_with_free_func(g_free);
    NMConnection *conn = NULL;
    if (shimmer_config_has_errors(cfg)) {
        g_autofree char *errors = format_errors(cfg);
        g_set_error_literal(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                            errors);
    } else {
        add_warnings(cfg, out_notes);
        g_autofree char *id = id_from_filename(filename);
        conn = shimmer_nm_connection_from_config(cfg, text, len, id, out_notes, error);
    }
    /* The file may hold inline keys. */
    if (len > 0)
        shimmer_wipe((void *)g_bytes_get_data(bytes, NULL), len);
    if (conn != NULL && notes != NULL)
        *notes = g_steal_pointer(&out_notes);
    return conn;
}

/* ---------- export ---------- */

static gboolean export_fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean export_fail(GError **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION, msg);
    return FALSE;
}

static NMSettingSecretFlags secret_flags(NMSettingVpn *s_vpn, const char *name, bool *has_flags)
{
    NMSettingSecretFlags flags = NM_SETTING_SECRET_FLAG_NONE;
    g_autofree char *key = g_strdup_printf("%s-flags", name);
    *has_flags = nm_setting_vpn_get_data_item(s_vpn, key) != NULL;
    nm_setting_get_secret_flags(NM_SETTING(s_vpn), name, &flags, NULL);
    return flags;
}

/* A secret the profile stores but the connection does not carry. */
static bool secret_missing(NMSettingVpn *s_vpn, const char *name)
{
    bool has_flags;
    NMSettingSecretFlags flags = secret_flags(s_vpn, name, &has_flags);
    return has_flags && flags == NM_SETTING_SECRET_FLAG_NONE &&
           nm_setting_vpn_get_secret(s_vpn, name) == NULL;
}

gboolean shimmer_nm_connection_lacks_secrets(NMConnection *connection)
{
    NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
    if (s_vpn == NULL)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(key_secrets); i++) {
        if (secret_missing(s_vpn, key_secrets[i].secret))
            return TRUE;
    }
    return secret_missing(s_vpn, SHIMMER_NM_SECRET_EXTRA_BLOCKS) ||
           secret_missing(s_vpn, SHIMMER_NM_SECRET_PASSWORD) ||
           secret_missing(s_vpn, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD) ||
           secret_missing(s_vpn, SHIMMER_NM_SECRET_CERT_PASS);
}

/* A value that goes into an inline block verbatim: no NUL, and no line that
 * would close the block early. */
static gboolean check_block_body(const char *what, const char *name, const char *body,
                                 GError **error)
{
    g_autofree char *closing = g_strdup_printf("</%s>", name);
    const char *p = body;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        gsize n = nl ? (gsize)(nl - p) : strlen(p);
        g_autofree char *line = g_strndup(p, n);
        if (strcmp(g_strstrip(line), closing) == 0)
            return export_fail(error, "%s holds the line %s", what, closing);
        p += n + (nl ? 1 : 0);
    }
    return TRUE;
}

static gboolean export_data_directives(NMSettingVpn *s_vpn, GString *out, GError **error)
{
    for (gsize i = 0; i < G_N_ELEMENTS(data_directives); i++) {
        const DataDirective *d = &data_directives[i];
        const char *value = nm_setting_vpn_get_data_item(s_vpn, d->name);
        if (value == NULL)
            continue;
        g_auto(GStrv) lines = g_strsplit(value, "\n", -1);
        if (!d->multi && g_strv_length(lines) > 1)
            return export_fail(error, "vpn.data '%s' holds several lines; '%s' is given once",
                               d->name, d->name);
        for (guint l = 0; lines[l] != NULL; l++) {
            /* Re-tokenized, so that no value can smuggle in another line. */
            g_autoptr(GError) lex_error = NULL;
            g_auto(GStrv) tokens = shimmer_lex_line(lines[l], strlen(lines[l]), &lex_error);
            if (tokens == NULL)
                return export_fail(error, "vpn.data '%s': %s", d->name, lex_error->message);
            guint n = g_strv_length(tokens);
            if (n == 0)
                return export_fail(error, "vpn.data '%s' holds an empty line", d->name);
            append_token(out, d->name);
            if (!(n == 1 && d->min_args == 0 && strcmp(tokens[0], "yes") == 0)) {
                g_string_append_c(out, ' ');
                append_tokens(out, tokens, 0, n);
            }
            g_string_append_c(out, '\n');
        }
    }
    return TRUE;
}

static gboolean export_typed(NMSettingVpn *s_vpn, GString *out, GError **error)
{
    for (gsize i = 0; i < G_N_ELEMENTS(pem_keys); i++) {
        const char *v = nm_setting_vpn_get_data_item(s_vpn, pem_keys[i]);
        if (v == NULL)
            continue;
        g_autofree char *what = g_strdup_printf("vpn.data '%s'", pem_keys[i]);
        if (!check_block_body(what, pem_keys[i], v, error))
            return FALSE;
        append_block(out, pem_keys[i], v);
    }

    const char *fps = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_PEER_FINGERPRINT);
    if (fps != NULL) {
        g_auto(GStrv) lines = g_strsplit(fps, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            g_strstrip(lines[i]);
            if (lines[i][0] == '\0')
                continue;
            g_string_append(out, "peer-fingerprint ");
            append_token(out, lines[i]);
            g_string_append_c(out, '\n');
        }
    }

    const char *dir = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_KEY_DIRECTION);
    if (dir != NULL) {
        if (strcmp(dir, "0") != 0 && strcmp(dir, "1") != 0)
            return export_fail(error, "vpn.data '%s' is '%s', not 0 or 1",
                               SHIMMER_NM_KEY_KEY_DIRECTION, dir);
        g_string_append_printf(out, "key-direction %s\n", dir);
    }

    for (gsize i = 0; i < G_N_ELEMENTS(key_secrets); i++) {
        const char *name = key_secrets[i].secret;
        const char *v = nm_setting_vpn_get_secret(s_vpn, name);
        if (v == NULL) {
            if (secret_missing(s_vpn, name))
                return export_fail(error,
                                   "the connection does not carry its secret '%s' "
                                   "(ask NetworkManager for the secrets first)",
                                   name);
            continue;
        }
        g_autofree char *what = g_strdup_printf("the secret '%s'", name);
        if (!check_block_body(what, key_secrets[i].block, v, error))
            return FALSE;
        if (strcmp(name, SHIMMER_NM_SECRET_TLS_CRYPT_V2) == 0) {
            const char *mode =
                nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_TLS_CRYPT_V2_MODE);
            if (mode != NULL) {
                g_string_append(out, "tls-crypt-v2 [inline] ");
                append_token(out, mode);
                g_string_append_c(out, '\n');
            }
        }
        append_block(out, key_secrets[i].block, v);
    }

    /* auth-user-pass: the password inline only when the profile stores it. */
    bool has_flags;
    NMSettingSecretFlags flags = secret_flags(s_vpn, SHIMMER_NM_SECRET_PASSWORD, &has_flags);
    const char *user = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_USERNAME);
    const char *pass = nm_setting_vpn_get_secret(s_vpn, SHIMMER_NM_SECRET_PASSWORD);
    if (flags != NM_SETTING_SECRET_FLAG_NONE || (pass != NULL && pass[0] == '\0'))
        pass = NULL;
    if (user != NULL && (user[0] == '\0' || strpbrk(user, "\r\n") != NULL))
        return export_fail(error, "vpn.data '%s' must be one non-empty line",
                           SHIMMER_NM_KEY_USERNAME);
    if (pass != NULL && strpbrk(pass, "\r\n") != NULL)
        return export_fail(error, "the password must be one line");
    if (pass != NULL && user == NULL)
        return export_fail(error, "a stored password needs vpn.data '%s'", SHIMMER_NM_KEY_USERNAME);
    if (user != NULL) {
        g_string_append_printf(out, "<auth-user-pass>\n%s\n", user);
        if (pass != NULL)
            g_string_append_printf(out, "%s\n", pass);
        g_string_append(out, "</auth-user-pass>\n");
    } else if (has_flags || nm_setting_vpn_get_secret(s_vpn, SHIMMER_NM_SECRET_PASSWORD)) {
        g_string_append(out, "auth-user-pass\n");
    }

    flags = secret_flags(s_vpn, SHIMMER_NM_SECRET_CERT_PASS, &has_flags);
    const char *cert_pass = nm_setting_vpn_get_secret(s_vpn, SHIMMER_NM_SECRET_CERT_PASS);
    if (flags == NM_SETTING_SECRET_FLAG_NONE && cert_pass != NULL && cert_pass[0] != '\0') {
        if (strpbrk(cert_pass, "\r\n") != NULL)
            return export_fail(error, "the private key passphrase must be one line");
        g_string_append_printf(out, "<askpass>\n%s\n</askpass>\n", cert_pass);
    } else if (has_flags || cert_pass != NULL) {
        g_string_append(out, "askpass\n");
    }
    return TRUE;
}

/* The proxy-* keys back as http-proxy or socks-proxy, an HTTP proxy's
 * stored credentials as an <http-proxy-user-pass> block. */
static gboolean export_proxy(NMSettingVpn *s_vpn, GString *out, GError **error)
{
    const char *type = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_PROXY_TYPE);
    const char *server = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_PROXY_SERVER);
    const char *port = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_PROXY_PORT);
    const char *retry = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_PROXY_RETRY);
    const char *auth = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_HTTP_PROXY_AUTH);
    const char *user = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_HTTP_PROXY_USERNAME);
    if (type == NULL) {
        if (server != NULL || port != NULL || auth != NULL || user != NULL)
            return export_fail(error, "vpn.data '%s' is missing (http or socks)",
                               SHIMMER_NM_KEY_PROXY_TYPE);
        return TRUE;
    }
    bool http = strcmp(type, "http") == 0;
    if (!http && strcmp(type, "socks") != 0)
        return export_fail(error, "vpn.data '%s' is '%s', not http or socks",
                           SHIMMER_NM_KEY_PROXY_TYPE, type);
    if (server == NULL || server[0] == '\0' || strpbrk(server, " \t\r\n") != NULL)
        return export_fail(error, "vpn.data '%s' must name the proxy", SHIMMER_NM_KEY_PROXY_SERVER);
    guint64 p = 0;
    if (port == NULL ? !http : !g_ascii_string_to_unsigned(port, 10, 1, 65535, &p, NULL))
        return export_fail(error, "vpn.data '%s' must be a port from 1 to 65535",
                           SHIMMER_NM_KEY_PROXY_PORT);
    if (port == NULL)
        p = 1080; /* socks-proxy's own default */
    if (!http && (auth != NULL || user != NULL))
        return export_fail(error,
                           "a SOCKS proxy takes no '%s' or '%s' here (its credentials "
                           "have no inline form)",
                           SHIMMER_NM_KEY_HTTP_PROXY_AUTH, SHIMMER_NM_KEY_HTTP_PROXY_USERNAME);
    if (retry != NULL && strcmp(retry, "yes") != 0 && strcmp(retry, "no") != 0)
        return export_fail(error, "vpn.data '%s' is '%s', not yes or no",
                           SHIMMER_NM_KEY_PROXY_RETRY, retry);
    if (auth != NULL) {
        bool known = false;
        for (gsize i = 0; i < G_N_ELEMENTS(http_auth_names); i++)
            known |= http_auth_names[i] != NULL && strcmp(http_auth_names[i], auth) == 0;
        if (!known && strcmp(auth, "none") != 0)
            return export_fail(error, "vpn.data '%s' is '%s' (basic, ntlm, ntlm2, auto, auto-nct)",
                               SHIMMER_NM_KEY_HTTP_PROXY_AUTH, auth);
        if (strcmp(auth, "none") == 0)
            auth = NULL;
    }
    bool has_flags;
    NMSettingSecretFlags flags =
        secret_flags(s_vpn, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD, &has_flags);
    const char *pass = nm_setting_vpn_get_secret(s_vpn, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD);
    if (flags != NM_SETTING_SECRET_FLAG_NONE || (pass != NULL && pass[0] == '\0'))
        pass = NULL;
    else if (pass == NULL && secret_missing(s_vpn, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD))
        return export_fail(error,
                           "the connection does not carry its secret '%s' (ask "
                           "NetworkManager for the secrets first)",
                           SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD);
    if (user != NULL && (user[0] == '\0' || strpbrk(user, "\r\n") != NULL))
        return export_fail(error, "vpn.data '%s' must be one non-empty line",
                           SHIMMER_NM_KEY_HTTP_PROXY_USERNAME);
    if (pass != NULL && strpbrk(pass, "\r\n") != NULL)
        return export_fail(error, "the HTTP proxy's password must be one line");
    if ((user != NULL || pass != NULL) && auth == NULL)
        return export_fail(error, "the HTTP proxy's credentials need vpn.data '%s'",
                           SHIMMER_NM_KEY_HTTP_PROXY_AUTH);
    if (pass != NULL && user == NULL)
        return export_fail(error, "a stored proxy password needs vpn.data '%s'",
                           SHIMMER_NM_KEY_HTTP_PROXY_USERNAME);

    g_string_append(out, http ? "http-proxy " : "socks-proxy ");
    append_token(out, server);
    g_string_append_printf(out, " %" G_GUINT64_FORMAT, p);
    if (auth != NULL) {
        bool automatic = g_str_has_prefix(auth, "auto");
        if (!automatic) {
            /* An authfile of "" with the block, or `stdin`: asked for. */
            g_string_append(out, user != NULL ? " \"\"" : " stdin");
        }
        g_string_append_printf(out, " %s", auth);
    }
    g_string_append_c(out, '\n');
    if (user != NULL && (!check_block_body("vpn.data '" SHIMMER_NM_KEY_HTTP_PROXY_USERNAME "'",
                                           "http-proxy-user-pass", user, error) ||
                         (pass != NULL && !check_block_body("the HTTP proxy's password",
                                                            "http-proxy-user-pass", pass, error))))
        return FALSE;
    if (user != NULL) {
        g_string_append_printf(out, "<http-proxy-user-pass>\n%s\n", user);
        if (pass != NULL)
            g_string_append_printf(out, "%s\n", pass);
        g_string_append(out, "</http-proxy-user-pass>\n");
    }
    if (retry != NULL && strcmp(retry, "yes") == 0)
        g_string_append(out, http ? "http-proxy-retry\n" : "socks-proxy-retry\n");
    return TRUE;
}

static void export_routes(NMSettingIPConfig *s_ip, int family, GString *out)
{
    if (s_ip == NULL)
        return;
    for (guint i = 0; i < nm_setting_ip_config_get_num_routes(s_ip); i++) {
        NMIPRoute *r = nm_setting_ip_config_get_route(s_ip, (int)i);
        guint prefix = nm_ip_route_get_prefix(r);
        const char *gw = nm_ip_route_get_next_hop(r);
        gint64 metric = nm_ip_route_get_metric(r);
        if (family == AF_INET) {
            char mask[INET_ADDRSTRLEN];
            struct in_addr m = {.s_addr = htonl(prefix ? ~(G_MAXUINT32 >> prefix) : 0)};
            inet_ntop(AF_INET, &m, mask, sizeof(mask));
            g_string_append_printf(out, "route %s %s", nm_ip_route_get_dest(r), mask);
        } else {
            g_string_append_printf(out, "route-ipv6 %s/%u", nm_ip_route_get_dest(r), prefix);
        }
        if (gw != NULL)
            g_string_append_printf(out, " %s", gw);
        else if (metric >= 0)
            g_string_append(out, " default");
        if (metric >= 0)
            g_string_append_printf(out, " %" G_GINT64_FORMAT, metric);
        g_string_append_c(out, '\n');
    }
}

static gboolean export_ip(NMConnection *connection, NMSettingVpn *s_vpn, GString *out,
                          GError **error)
{
    NMSettingIPConfig *s_ip4 = nm_connection_get_setting_ip4_config(connection);
    NMSettingIPConfig *s_ip6 = nm_connection_get_setting_ip6_config(connection);
    export_routes(s_ip4, AF_INET, out);
    export_routes(s_ip6, AF_INET6, out);

    /* NetworkManager's own defaults: a missing setting never-default=no. */
    const char *m6 = s_ip6 ? nm_setting_ip_config_get_method(s_ip6) : NULL;
    bool v6_off = g_strcmp0(m6, NM_SETTING_IP6_CONFIG_METHOD_IGNORE) == 0 ||
                  g_strcmp0(m6, NM_SETTING_IP6_CONFIG_METHOD_DISABLED) == 0;
    bool r4 = s_ip4 == NULL || !nm_setting_ip_config_get_never_default(s_ip4);
    bool r6 = !v6_off && (s_ip6 == NULL || !nm_setting_ip_config_get_never_default(s_ip6));
    if (r4 || r6) {
        const char *flags = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_REDIRECT_GATEWAY);
        g_string_append(out, "redirect-gateway");
        if (flags != NULL && strcmp(flags, "yes") != 0) {
            g_autoptr(GError) lex_error = NULL;
            g_auto(GStrv) tokens = shimmer_lex_line(flags, strlen(flags), &lex_error);
            if (tokens == NULL)
                return export_fail(error, "vpn.data '%s': %s", SHIMMER_NM_KEY_REDIRECT_GATEWAY,
                                   lex_error->message);
            for (guint i = 0; tokens[i] != NULL; i++) {
                if (strcmp(tokens[i], "ipv6") == 0 || strcmp(tokens[i], "!ipv4") == 0)
                    continue;
                g_string_append_c(out, ' ');
                append_token(out, tokens[i]);
            }
        }
        if (r6)
            g_string_append(out, " ipv6");
        if (!r4)
            g_string_append(out, " !ipv4");
        g_string_append_c(out, '\n');
    }
    if ((s_ip4 != NULL && nm_setting_ip_config_get_ignore_auto_routes(s_ip4)) ||
        (s_ip6 != NULL && nm_setting_ip_config_get_ignore_auto_routes(s_ip6)))
        g_string_append(out, "route-nopull\n");
    return TRUE;
}

static void append_text(GString *out, const char *text)
{
    g_string_append(out, text);
    if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
        g_string_append_c(out, '\n');
}

/* The connection's name as a comment: one line, printable. */
static void append_comment_name(GString *out, const char *id)
{
    for (const char *c = id ? id : ""; *c != '\0'; c++)
        g_string_append_c(out, (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c);
}

char *shimmer_nm_connection_to_ovpn(NMConnection *connection, GError **error)
{
    NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
    if (s_vpn == NULL ||
        g_strcmp0(nm_setting_vpn_get_service_type(s_vpn), SHIMMER_NM_SERVICE_TYPE) != 0) {
        export_fail(error, "not a Shimmer VPN connection");
        return NULL;
    }

    GString *out = g_string_sized_new(8192);
    g_string_append(out, "# Exported from the NetworkManager connection '");
    append_comment_name(out, nm_connection_get_id(connection));
    g_string_append(out, "'.\n# Self-contained: it may hold private keys and passwords.\n");

    gboolean ok = export_data_directives(s_vpn, out, error) && export_typed(s_vpn, out, error) &&
                  export_proxy(s_vpn, out, error) && export_ip(connection, s_vpn, out, error);
    if (ok) {
        const char *extra = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_CONFIG_EXTRA);
        if (extra != NULL)
            append_text(out, extra);
        const char *blocks = nm_setting_vpn_get_secret(s_vpn, SHIMMER_NM_SECRET_EXTRA_BLOCKS);
        if (blocks != NULL)
            append_text(out, blocks);
        else if (secret_missing(s_vpn, SHIMMER_NM_SECRET_EXTRA_BLOCKS))
            ok = export_fail(error,
                             "the connection does not carry its secret '%s' (ask "
                             "NetworkManager for the secrets first)",
                             SHIMMER_NM_SECRET_EXTRA_BLOCKS);
    }

    if (ok) {
        /* What we hand out must be what import takes back. */
        g_autofree char *name = g_strdup_printf("%s.ovpn", nm_connection_get_id(connection)
                                                               ? nm_connection_get_id(connection)
                                                               : "connection");
        g_autoptr(ShimmerConfig) cfg =
            shimmer_config_parse(name, NULL, out->str, out->len, NULL, NULL);
        if (shimmer_config_has_errors(cfg)) {
            g_autofree char *errors = format_errors(cfg);
            ok = export_fail(error, "the connection does not make a valid profile:\n%s", errors);
        } else if (cfg->role != SHIMMER_ROLE_CLIENT) {
            ok = export_fail(error, "the connection does not make a client profile");
        }
    }
    if (!ok) {
        shimmer_wipe(out->str, out->len);
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}
