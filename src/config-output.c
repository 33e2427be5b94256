/* SPDX-License-Identifier: MIT */
/*
 * Writing a parsed configuration back out: as normalized JSON (secrets
 * redacted) for `shimmerctl check --json`, and as a self-contained .ovpn for
 * `shimmerctl check --inline`.
 */
#include "config.h"

#include <string.h>

#include "config-private.h"
#include "keys.h"
#include "textsafe.h"

/* ---------- a minimal JSON writer ---------- */

typedef struct {
    GString *s;
    guint depth;
    bool need_comma;
} Json;

static void json_indent(Json *j)
{
    g_string_append_c(j->s, '\n');
    for (guint i = 0; i < j->depth; i++)
        g_string_append(j->s, "  ");
}

void shimmer_json_append_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const char *p = s; *p;) {
        guchar c = (guchar)*p;
        if (c >= 0x80) {
            /* Valid JSON must be UTF-8; a terminal must not obey what is
             * in it: C1 and bidirectional-text controls go as escapes. */
            gunichar u = g_utf8_get_char_validated(p, -1);
            if (u == (gunichar)-1 || u == (gunichar)-2) {
                g_string_append(out, "\\ufffd");
                p++;
                continue;
            }
            const char *next = g_utf8_next_char(p);
            if (shimmer_text_is_control(u))
                g_string_append_printf(out, "\\u%04x", u);
            else
                g_string_append_len(out, p, next - p);
            p = next;
            continue;
        }
        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                g_string_append_printf(out, "\\u%04x", c);
            else
                g_string_append_c(out, (char)c);
        }
        p++;
    }
    g_string_append_c(out, '"');
}

static void json_string(Json *j, const char *v)
{
    shimmer_json_append_string(j->s, v);
}

static void json_key(Json *j, const char *key)
{
    if (j->need_comma)
        g_string_append_c(j->s, ',');
    json_indent(j);
    if (key != NULL) {
        json_string(j, key);
        g_string_append(j->s, ": ");
    }
    j->need_comma = true;
}

static void json_open(Json *j, const char *key, char bracket)
{
    if (key != NULL || j->depth > 0)
        json_key(j, key);
    g_string_append_c(j->s, bracket);
    j->depth++;
    j->need_comma = false;
}

static void json_close(Json *j, char bracket)
{
    j->depth--;
    if (j->need_comma)
        json_indent(j);
    g_string_append_c(j->s, bracket);
    j->need_comma = true;
}

static void json_str(Json *j, const char *key, const char *v)
{
    json_key(j, key);
    if (v == NULL)
        g_string_append(j->s, "null");
    else if (!g_utf8_validate(v, -1, NULL)) {
        g_autofree char *fixed = g_utf8_make_valid(v, -1);
        json_string(j, fixed);
    } else
        json_string(j, v);
}

static void json_int(Json *j, const char *key, gint64 v)
{
    json_key(j, key);
    g_string_append_printf(j->s, "%" G_GINT64_FORMAT, v);
}

static void json_bool(Json *j, const char *key, bool v)
{
    json_key(j, key);
    g_string_append(j->s, v ? "true" : "false");
}

/* Optional values: -1 (or the given sentinel) means "not set" and is omitted. */
static void json_opt_int(Json *j, const char *key, gint64 v)
{
    if (v >= 0)
        json_int(j, key, v);
}

static void json_opt_str(Json *j, const char *key, const char *v)
{
    if (v != NULL)
        json_str(j, key, v);
}

static void json_opt_true(Json *j, const char *key, bool v)
{
    if (v)
        json_bool(j, key, true);
}

static void json_strv(Json *j, const char *key, GPtrArray *a)
{
    if (a == NULL || a->len == 0)
        return;
    json_open(j, key, '[');
    for (guint i = 0; i < a->len; i++)
        json_str(j, NULL, g_ptr_array_index(a, i));
    json_close(j, ']');
}

/* ---------- the configuration ---------- */

static const char *transport_name(ShimmerTransport t, ShimmerFamily f)
{
    static const char *const names[2][3] = {{"udp", "udp4", "udp6"}, {"tcp", "tcp4", "tcp6"}};
    return names[t == SHIMMER_TRANSPORT_TCP][f];
}

static void json_blob(Json *j, const char *key, const ShimmerBlob *b, const char *extra_key,
                      const char *extra_value)
{
    if (!b->present)
        return;
    json_open(j, key, '{');
    json_str(j, "source", b->is_inline ? "inline" : "file");
    if (!b->is_inline)
        json_str(j, "file", b->path);
    if (b->secret) {
        json_bool(j, "redacted", true);
    } else {
        g_autofree char *hash = shimmer_keys_sha256_hex(b->data, b->len);
        json_str(j, "sha256", hash);
    }
    if (extra_key != NULL)
        json_str(j, extra_key, extra_value);
    json_close(j, '}');
}

static void json_certs(Json *j, const char *key, const ShimmerBlob *b)
{
    if (!b->present)
        return;
    guint n = 0;
    shimmer_keys_check_certs(b->data, b->len, FALSE, &n, NULL);
    json_open(j, key, '{');
    json_str(j, "source", b->is_inline ? "inline" : "file");
    if (!b->is_inline)
        json_str(j, "file", b->path);
    json_int(j, "certificates", n);
    g_autofree char *hash = shimmer_keys_sha256_hex(b->data, b->len);
    json_str(j, "sha256", hash);
    json_close(j, '}');
}

static const char *tls_version_name(ShimmerTlsVersion v)
{
    static const char *const names[] = {NULL, "1.0", "1.1", "1.2", "1.3"};
    return (guint)v < G_N_ELEMENTS(names) ? names[v] : NULL;
}

static void json_proxy(Json *j, const ShimmerProxy *x)
{
    static const char *const auth[] = {"none", "basic", "ntlm", "ntlm2", "auto", "auto-nct"};
    if (x == NULL)
        return;
    json_open(j, x->type == SHIMMER_PROXY_HTTP ? "http-proxy" : "socks-proxy", '{');
    json_str(j, "host", x->host);
    json_int(j, "port", x->port);
    if (x->type == SHIMMER_PROXY_HTTP)
        json_str(j, "auth", auth[x->auth]);
    if (x->auth_prompt || x->auth_file != NULL || x->auth_inline) {
        json_open(j, "credentials", '{');
        json_str(j, "source", x->auth_prompt ? "prompt" : x->auth_inline ? "inline" : "file");
        json_opt_str(j, "file", x->auth_file);
        json_opt_str(j, "username", x->username);
        json_bool(j, "password-stored", x->password != NULL);
        json_close(j, '}');
    }
    json_opt_str(j, "version", x->http_version);
    json_opt_str(j, "agent", x->user_agent);
    if (x->custom_headers->len > 0) {
        json_open(j, "custom-headers", '[');
        for (guint i = 0; i < x->custom_headers->len; i++) {
            const ShimmerHttpHeader *h = g_ptr_array_index(x->custom_headers, i);
            json_open(j, NULL, '{');
            json_str(j, "name", h->name);
            json_opt_str(j, "content", h->content);
            json_close(j, '}');
        }
        json_close(j, ']');
    }
    json_close(j, '}');
}

static void json_connections(Json *j, const ShimmerConfig *cfg)
{
    if (cfg->connections->len == 0)
        return;
    json_open(j, "connections", '[');
    for (guint i = 0; i < cfg->connections->len; i++) {
        ShimmerConnection *c = g_ptr_array_index(cfg->connections, i);
        json_open(j, NULL, '{');
        json_str(j, "host", c->host);
        json_int(j, "port", c->port);
        json_str(j, "proto", transport_name(c->transport, c->family));
        json_int(j, "connect-timeout", c->connect_timeout);
        json_opt_int(j, "explicit-exit-notify", c->explicit_exit_notify);
        if (c->tun_mtu > 0)
            json_int(j, "tun-mtu", c->tun_mtu);
        json_opt_int(j, "mssfix", c->mssfix);
        json_opt_str(j, "local", c->local);
        json_proxy(j, c->proxy);
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_routes(Json *j, const ShimmerConfig *cfg)
{
    if (cfg->routes->len > 0) {
        json_open(j, "routes", '[');
        for (guint i = 0; i < cfg->routes->len; i++) {
            ShimmerRoute *r = g_ptr_array_index(cfg->routes, i);
            json_open(j, NULL, '{');
            json_str(j, "network", r->network);
            json_str(j, "netmask", r->netmask ? r->netmask : "255.255.255.255");
            json_opt_str(j, "gateway", r->gateway);
            json_opt_int(j, "metric", r->metric);
            json_close(j, '}');
        }
        json_close(j, ']');
    }
    if (cfg->routes6->len > 0) {
        json_open(j, "routes-ipv6", '[');
        for (guint i = 0; i < cfg->routes6->len; i++) {
            ShimmerRoute6 *r = g_ptr_array_index(cfg->routes6, i);
            json_open(j, NULL, '{');
            json_str(j, "prefix", r->prefix);
            json_opt_str(j, "gateway", r->gateway);
            json_opt_int(j, "metric", r->metric);
            json_close(j, '}');
        }
        json_close(j, ']');
    }
}

static void json_redirect(Json *j, guint flags)
{
    static const struct {
        guint flag;
        const char *name;
    } names[] = {
        {SHIMMER_REDIRECT_LOCAL, "local"},
        {SHIMMER_REDIRECT_AUTOLOCAL, "autolocal"},
        {SHIMMER_REDIRECT_DEF1, "def1"},
        {SHIMMER_REDIRECT_BYPASS_DHCP, "bypass-dhcp"},
        {SHIMMER_REDIRECT_BYPASS_DNS, "bypass-dns"},
        {SHIMMER_REDIRECT_BLOCK_LOCAL, "block-local"},
        {SHIMMER_REDIRECT_IPV6, "ipv6"},
        {SHIMMER_REDIRECT_NOT_IPV4, "!ipv4"},
    };
    if (!(flags & SHIMMER_REDIRECT_ENABLED))
        return;
    json_open(j, "redirect-gateway", '[');
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        if (flags & names[i].flag)
            json_str(j, NULL, names[i].name);
    }
    json_close(j, ']');
}

static void json_dns(Json *j, const ShimmerConfig *cfg)
{
    static const char *const dnssec[] = {NULL, "no", "yes", "optional"};
    static const char *const transport[] = {NULL, "plain", "DoH", "DoT"};
    if (cfg->dhcp_options->len > 0) {
        json_open(j, "dhcp-options", '[');
        for (guint i = 0; i < cfg->dhcp_options->len; i++) {
            ShimmerDhcpOption *o = g_ptr_array_index(cfg->dhcp_options, i);
            json_open(j, NULL, '{');
            json_str(j, "type", o->type);
            json_opt_str(j, "value", o->value);
            json_close(j, '}');
        }
        json_close(j, ']');
    }
    if (cfg->dns_search_domains->len == 0 && cfg->dns_servers->len == 0)
        return;
    json_open(j, "dns", '{');
    json_strv(j, "search-domains", cfg->dns_search_domains);
    if (cfg->dns_servers->len > 0) {
        json_open(j, "servers", '[');
        for (guint i = 0; i < cfg->dns_servers->len; i++) {
            ShimmerDnsServer *s = g_ptr_array_index(cfg->dns_servers, i);
            json_open(j, NULL, '{');
            json_int(j, "priority", s->priority);
            json_strv(j, "addresses", s->addresses);
            if (s->port > 0)
                json_int(j, "port", s->port);
            json_strv(j, "resolve-domains", s->resolve_domains);
            json_opt_str(j, "dnssec", dnssec[s->dnssec]);
            json_opt_str(j, "transport", transport[s->transport]);
            json_opt_str(j, "sni", s->sni);
            json_close(j, '}');
        }
        json_close(j, ']');
    }
    json_close(j, '}');
}

static void json_client(Json *j, const ShimmerConfig *cfg)
{
    static const char *const retry[] = {"none", "nointeract", "interact"};
    json_opt_true(j, "remote-random", cfg->remote_random);
    json_opt_true(j, "remote-random-hostname", cfg->remote_random_hostname);
    json_int(j, "connect-retry", cfg->connect_retry);
    json_int(j, "connect-retry-max-delay", cfg->connect_retry_max_delay);
    if (cfg->connect_retry_max > 0)
        json_int(j, "connect-retry-max", cfg->connect_retry_max);
    if (cfg->resolv_retry < 0)
        json_str(j, "resolv-retry", "infinite");
    else
        json_int(j, "resolv-retry", cfg->resolv_retry);
    if (cfg->lport >= 0)
        json_int(j, "lport", cfg->lport);

    if (cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE) {
        json_open(j, "auth-user-pass", '{');
        json_str(j, "mode",
                 cfg->auth_user_pass == SHIMMER_AUTH_USER_PASS_PROMPT ? "prompt" : "stored");
        if (cfg->auth_user_pass_file.present) {
            json_str(j, "source", cfg->auth_user_pass_file.is_inline ? "inline" : "file");
            if (!cfg->auth_user_pass_file.is_inline)
                json_str(j, "file", cfg->auth_user_pass_file.path);
        }
        json_opt_str(j, "username", cfg->username);
        json_bool(j, "password-stored", cfg->password != NULL);
        json_close(j, '}');
        json_str(j, "auth-retry", retry[cfg->auth_retry]);
    }
    json_opt_true(j, "auth-nocache", cfg->auth_nocache);
    if (cfg->static_challenge != NULL) {
        json_open(j, "static-challenge", '{');
        json_str(j, "text", cfg->static_challenge);
        json_bool(j, "echo", cfg->static_challenge_echo);
        json_close(j, '}');
    }
    json_opt_true(j, "route-nopull", cfg->route_nopull);
    if (cfg->pull_filters->len > 0) {
        static const char *const act[] = {"accept", "ignore", "reject"};
        json_open(j, "pull-filters", '[');
        for (guint i = 0; i < cfg->pull_filters->len; i++) {
            ShimmerPullFilter *f = g_ptr_array_index(cfg->pull_filters, i);
            json_open(j, NULL, '{');
            json_str(j, "action", act[f->action]);
            json_str(j, "text", f->text);
            json_close(j, '}');
        }
        json_close(j, ']');
    }
}

static void json_server(Json *j, const ShimmerConfig *cfg)
{
    static const char *const vcc[] = {NULL, "none", "optional", "require"};
    json_int(j, "port", cfg->lport >= 0 ? cfg->lport : cfg->rport);
    json_str(j, "proto", transport_name(cfg->transport, cfg->family));
    if (cfg->server_network != NULL) {
        json_open(j, "server", '{');
        json_str(j, "network", cfg->server_network);
        json_str(j, "netmask", cfg->server_netmask);
        json_opt_true(j, "nopool", cfg->server_nopool);
        json_close(j, '}');
    }
    json_opt_str(j, "server-ipv6", cfg->server_ipv6);
    if (cfg->ifconfig_pool_start != NULL) {
        json_open(j, "ifconfig-pool", '{');
        json_str(j, "start", cfg->ifconfig_pool_start);
        json_str(j, "end", cfg->ifconfig_pool_end);
        json_opt_str(j, "netmask", cfg->ifconfig_pool_netmask);
        json_close(j, '}');
    }
    json_strv(j, "push", cfg->push);
    json_opt_true(j, "client-to-client", cfg->client_to_client);
    json_opt_true(j, "duplicate-cn", cfg->duplicate_cn);
    json_opt_int(j, "max-clients", cfg->max_clients);
    json_opt_str(j, "ifconfig-ipv6-pool", cfg->ifconfig_ipv6_pool);
    if (cfg->ifconfig_pool_persist != NULL) {
        json_open(j, "ifconfig-pool-persist", '{');
        json_str(j, "file", cfg->ifconfig_pool_persist);
        json_opt_int(j, "seconds", cfg->ifconfig_pool_persist_seconds);
        json_close(j, '}');
    }
    json_opt_true(j, "multihome", cfg->multihome);
    json_opt_str(j, "local", cfg->local);
    json_opt_str(j, "verify-client-cert", vcc[cfg->verify_client_cert]);
    json_opt_str(j, "client-config-dir", cfg->client_config_dir);
    json_opt_true(j, "ccd-exclusive", cfg->ccd_exclusive);
    json_opt_str(j, "pam-service", cfg->pam_service);
    json_opt_true(j, "username-as-common-name", cfg->username_as_common_name);
    json_opt_true(j, "auth-user-pass-optional", cfg->auth_user_pass_optional);
    if (cfg->auth_gen_token >= 0) {
        json_open(j, "auth-gen-token", '{');
        json_int(j, "lifetime", cfg->auth_gen_token);
        json_opt_int(j, "renewal", cfg->auth_gen_token_renewal);
        json_opt_true(j, "external-auth", cfg->auth_gen_token_external);
        json_blob(j, "secret", &cfg->auth_gen_token_secret, NULL, NULL);
        json_close(j, '}');
    }
    json_opt_int(j, "tls-crypt-v2-max-age", cfg->tls_crypt_v2_max_age);
    json_opt_true(j, "force-tls-key-material-export", cfg->force_tls_ekm);
    json_opt_str(j, "x509-username-field", cfg->x509_username_field);
    if (cfg->dh_none)
        json_str(j, "dh", "none");
    else
        json_blob(j, "dh", &cfg->dh, NULL, NULL);
    const ShimmerServerPlan *plan = cfg->plan;
    if (plan == NULL)
        return;
    /* What the server hands out, derived from the above. */
    json_open(j, "plan", '{');
    json_opt_str(j, "local", plan->local);
    json_opt_str(j, "netmask", plan->netmask);
    if (plan->pool_start != NULL) {
        json_str(j, "pool-start", plan->pool_start);
        json_str(j, "pool-end", plan->pool_end);
    }
    json_opt_str(j, "local-ipv6", plan->local6);
    if (plan->pool6_start != NULL) {
        json_str(j, "pool-ipv6-start", plan->pool6_start);
        json_int(j, "pool-ipv6-bits", plan->pool6_bits);
    }
    if (plan->pool_size > 0)
        json_int(j, "pool-size", plan->pool_size);
    json_opt_int(j, "ping", plan->ping);
    json_opt_int(j, "ping-restart", plan->ping_restart);
    json_strv(j, "push", plan->push);
    json_close(j, '}');
}

static void json_pushed(Json *j, const ShimmerConfig *cfg)
{
    json_opt_int(j, "peer-id", cfg->peer_id);
    if (cfg->auth_token != NULL)
        json_str(j, "auth-token", "[redacted]");
    json_opt_str(j, "auth-token-user", cfg->auth_token_user != NULL ? "[redacted]" : NULL);
    if (cfg->protocol_flag_cc_exit || cfg->protocol_flag_tls_ekm ||
        cfg->protocol_flag_dyn_tls_crypt) {
        json_open(j, "protocol-flags", '[');
        if (cfg->protocol_flag_cc_exit)
            json_str(j, NULL, "cc-exit");
        if (cfg->protocol_flag_tls_ekm)
            json_str(j, NULL, "tls-ekm");
        if (cfg->protocol_flag_dyn_tls_crypt)
            json_str(j, NULL, "dyn-tls-crypt");
        json_close(j, ']');
    }
    json_opt_true(j, "key-derivation-tls-ekm", cfg->key_derivation_tls_ekm);
    if (cfg->push_continuation > 0)
        json_int(j, "push-continuation", cfg->push_continuation);
}

static void json_device(Json *j, const ShimmerConfig *cfg, bool push)
{
    static const char *const topo[] = {NULL, "net30", "p2p", "subnet"};
    if (!push) {
        json_str(j, "dev", cfg->dev ? cfg->dev : "tun");
        json_opt_str(j, "dev-type", cfg->dev_type);
    }
    json_opt_str(j, "topology", topo[cfg->topology]);
    if (cfg->tun_mtu > 0)
        json_int(j, "tun-mtu", cfg->tun_mtu);
    if (cfg->mssfix >= 0) {
        json_open(j, "mssfix", '{');
        json_int(j, "value", cfg->mssfix);
        json_opt_true(j, "mtu", cfg->mssfix_mtu);
        json_opt_true(j, "fixed", cfg->mssfix_fixed);
        json_close(j, '}');
    }
    json_opt_int(j, "mark", cfg->mark);
}

static void json_peer_fingerprints(Json *j, const ShimmerConfig *cfg)
{
    if (cfg->peer_fingerprints->len == 0)
        return;
    json_open(j, "peer-fingerprints", '[');
    for (guint i = 0; i < cfg->peer_fingerprints->len; i++) {
        const guint8 *fp = (const guint8 *)cfg->peer_fingerprints->data + (gsize)i * 32;
        GString *hex = g_string_new(NULL);
        for (guint k = 0; k < 32; k++)
            g_string_append_printf(hex, "%s%02X", k ? ":" : "", fp[k]);
        json_str(j, NULL, hex->str);
        g_string_free(hex, TRUE);
    }
    json_close(j, ']');
}

/* Who we are and whom we accept. */
static void json_tls(Json *j, const ShimmerConfig *cfg)
{
    json_open(j, "tls", '{');
    json_certs(j, "ca", &cfg->ca);
    json_certs(j, "cert", &cfg->cert);
    if (cfg->key.present)
        json_blob(j, "key", &cfg->key, "encrypted", cfg->key_encrypted ? "yes" : "no");
    json_blob(j, "pkcs12", &cfg->pkcs12, NULL, NULL);
    json_certs(j, "extra-certs", &cfg->extra_certs);
    json_blob(j, "crl-verify", &cfg->crl_verify, NULL, NULL);
    if (cfg->askpass) {
        json_open(j, "askpass", '{');
        json_str(j, "mode", cfg->askpass_file.present ? "stored" : "prompt");
        if (cfg->askpass_file.present) {
            json_str(j, "source", cfg->askpass_file.is_inline ? "inline" : "file");
            if (!cfg->askpass_file.is_inline)
                json_str(j, "file", cfg->askpass_file.path);
        }
        json_close(j, '}');
    }
    json_opt_str(j, "version-min", tls_version_name(cfg->tls_version_min));
    json_opt_true(j, "version-min-or-highest", cfg->tls_version_min_or_highest);
    json_opt_str(j, "version-max", tls_version_name(cfg->tls_version_max));
    json_opt_str(j, "tls-cipher", cfg->tls_cipher);
    json_opt_str(j, "tls-ciphersuites", cfg->tls_ciphersuites);
    json_opt_str(j, "tls-groups", cfg->tls_groups);
    if (cfg->remote_cert_tls != SHIMMER_CERT_TLS_UNSET)
        json_str(j, "remote-cert-tls",
                 cfg->remote_cert_tls == SHIMMER_CERT_TLS_SERVER ? "server" : "client");
    if (cfg->ns_cert_type != SHIMMER_NS_CERT_UNSET)
        json_str(j, "ns-cert-type",
                 cfg->ns_cert_type == SHIMMER_NS_CERT_SERVER ? "server" : "client");
    if (cfg->remote_cert_ku_set) {
        /* An empty list: the extension must be present, any value. */
        json_open(j, "remote-cert-ku", '[');
        for (guint i = 0; i < cfg->remote_cert_ku->len; i++) {
            g_autofree char *hex =
                g_strdup_printf("%02x", g_array_index(cfg->remote_cert_ku, guint, i));
            json_str(j, NULL, hex);
        }
        json_close(j, ']');
    }
    json_opt_str(j, "remote-cert-eku", cfg->remote_cert_eku);
    if (cfg->verify_x509_type != SHIMMER_X509_NAME_UNSET) {
        static const char *const types[] = {NULL, "subject", "name", "name-prefix"};
        json_open(j, "verify-x509-name", '{');
        json_str(j, "type", types[cfg->verify_x509_type]);
        json_str(j, "value", cfg->verify_x509_name);
        json_close(j, '}');
    }
    json_peer_fingerprints(j, cfg);
    json_close(j, '}');
}

static void json_control_channel(Json *j, const ShimmerConfig *cfg)
{
    static const char *const wraps[] = {"none", "tls-auth", "tls-crypt", "tls-crypt-v2"};
    json_open(j, "control-channel", '{');
    json_str(j, "wrap", wraps[cfg->wrap]);
    if (cfg->wrap == SHIMMER_WRAP_TLS_AUTH) {
        json_blob(j, "key", &cfg->tls_auth, NULL, NULL);
        if (cfg->key_direction >= 0)
            json_int(j, "key-direction", cfg->key_direction);
        else
            json_str(j, "key-direction", "none");
    } else if (cfg->wrap == SHIMMER_WRAP_TLS_CRYPT) {
        json_blob(j, "key", &cfg->tls_crypt, NULL, NULL);
    } else if (cfg->wrap == SHIMMER_WRAP_TLS_CRYPT_V2) {
        json_blob(j, "key", &cfg->tls_crypt_v2, "kind",
                  cfg->tls_crypt_v2_is_server_key ? "server" : "client");
    }
    json_str(j, "auth", shimmer_digest_name(cfg->auth));
    json_close(j, '}');
}

static void json_data_channel(Json *j, const ShimmerConfig *cfg, bool push)
{
    static const char *const framing[] = {NULL, "lzo", "swap", "v2"};
    static const char *const alg[] = {NULL, "lzo", "lz4"};
    static const char *const allow[] = {NULL, "no", "asym", "yes"};
    json_open(j, "data-channel", '{');
    if (!push || cfg->data_ciphers_set) {
        json_open(j, "ciphers", '[');
        for (guint i = 0; i < cfg->data_ciphers->len; i++)
            json_str(j, NULL,
                     shimmer_cipher_name(g_array_index(cfg->data_ciphers, ShimmerCipher, i)));
        json_close(j, ']');
    }
    json_opt_str(j, "cipher", cfg->cipher);
    json_opt_str(j, "fallback", cfg->data_ciphers_fallback);
    if (cfg->comp != SHIMMER_COMP_NONE || cfg->comp_migrate) {
        json_open(j, "compression", '{');
        json_opt_str(j, "framing", framing[cfg->comp]);
        json_opt_str(j, "decompress", alg[cfg->comp_alg]);
        json_opt_true(j, "migrate", cfg->comp_migrate);
        json_close(j, '}');
    }
    json_opt_str(j, "allow-compression", allow[cfg->allow_compression]);
    json_close(j, '}');
}

static void json_timers(Json *j, const ShimmerConfig *cfg)
{
    json_open(j, "timers", '{');
    json_opt_int(j, "reneg-sec", cfg->reneg_sec);
    json_opt_int(j, "reneg-sec-min", cfg->reneg_sec_min);
    json_opt_int(j, "reneg-bytes", cfg->reneg_bytes);
    json_opt_int(j, "reneg-pkts", cfg->reneg_pkts);
    json_opt_int(j, "hand-window", cfg->hand_window);
    json_opt_int(j, "tran-window", cfg->tran_window);
    if (cfg->keepalive_interval >= 0) {
        json_int(j, "keepalive-interval", cfg->keepalive_interval);
        json_int(j, "keepalive-timeout", cfg->keepalive_timeout);
    }
    json_opt_int(j, "ping", cfg->ping);
    json_opt_int(j, "ping-restart", cfg->ping_restart);
    json_opt_int(j, "ping-exit", cfg->ping_exit);
    json_opt_int(j, "explicit-exit-notify", cfg->explicit_exit_notify);
    if (cfg->replay_window > 0)
        json_int(j, "replay-window", cfg->replay_window);
    json_opt_int(j, "replay-window-seconds", cfg->replay_time);
    json_close(j, '}');
}

/* Routes, DNS and the tunnel's own addresses. */
static void json_network(Json *j, const ShimmerConfig *cfg)
{
    json_routes(j, cfg);
    json_opt_str(j, "route-gateway", cfg->route_gateway);
    json_opt_str(j, "route-ipv6-gateway", cfg->route_ipv6_gateway);
    json_opt_int(j, "route-metric", cfg->route_metric);
    json_redirect(j, cfg->redirect_gateway);
    json_dns(j, cfg);
    if (cfg->ifconfig_local != NULL) {
        json_open(j, "ifconfig", '{');
        json_str(j, "local", cfg->ifconfig_local);
        json_str(j, "remote-or-netmask", cfg->ifconfig_remote);
        json_close(j, '}');
    }
    if (cfg->ifconfig_ipv6_local != NULL) {
        json_open(j, "ifconfig-ipv6", '{');
        json_str(j, "local", cfg->ifconfig_ipv6_local);
        json_str(j, "remote", cfg->ifconfig_ipv6_remote);
        json_close(j, '}');
    }
    json_opt_true(j, "block-ipv6", cfg->block_ipv6);
}

/* What a file and a PUSH_REPLY have in common, in the order of the old
 * single function (the corpus's JSON files are sorted anyway). */
static void json_common(Json *j, const ShimmerConfig *cfg, bool push)
{
    json_device(j, cfg, push);
    if (!push) {
        json_tls(j, cfg);
        json_control_channel(j, cfg);
    }
    json_data_channel(j, cfg, push);
    json_timers(j, cfg);
    json_network(j, cfg);
}

char *shimmer_config_to_json(const ShimmerConfig *cfg)
{
    Json j = {.s = g_string_new(NULL)};
    bool push = strcmp(cfg->filename, "PUSH_REPLY") == 0 && cfg->role == SHIMMER_ROLE_UNSET;
    json_open(&j, NULL, '{');
    if (push) {
        json_str(&j, "kind", "push-reply");
        json_pushed(&j, cfg);
    } else {
        json_str(&j, "role",
                 cfg->role == SHIMMER_ROLE_SERVER   ? "server"
                 : cfg->role == SHIMMER_ROLE_CLIENT ? "client"
                                                    : "unknown");
        json_opt_true(&j, "pull", cfg->pull);
        json_connections(&j, cfg);
    }
    json_common(&j, cfg, push);
    if (!push) {
        if (cfg->role == SHIMMER_ROLE_SERVER)
            json_server(&j, cfg);
        else
            json_client(&j, cfg);
    }
    json_strv(&j, "ignored", cfg->ignored);
    json_close(&j, '}');
    g_string_append_c(j.s, '\n');
    return g_string_free(j.s, FALSE);
}

/* ---------- the self-contained .ovpn ---------- */

const char *shimmer_config_inline_error(const ShimmerConfig *cfg)
{
    if (cfg->priv != NULL && cfg->priv->inline_error != NULL)
        return cfg->priv->inline_error;
    return shimmer_config_has_errors(cfg) ? "the configuration has errors" : NULL;
}

char *shimmer_config_to_ovpn(const ShimmerConfig *cfg)
{
    if (shimmer_config_has_errors(cfg) || cfg->priv == NULL || cfg->priv->source == NULL ||
        cfg->priv->inline_error != NULL)
        return NULL;
    const char *text = cfg->priv->source;
    gsize len = cfg->priv->source_len;
    /* Drop a byte order mark: the output is plain UTF-8. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    GString *out = g_string_sized_new(len + 4096);
    g_string_append(out, "# Made self-contained by shimmerctl check --inline: every file the\n"
                         "# original named is inlined below. It may hold private keys.\n");
    guint line = 1;
    gsize pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        gsize end = nl ? (gsize)(nl - text) : len;
        gsize l = end - pos;
        if (l > 0 && text[pos + l - 1] == '\r')
            l--;
        const char *rep = g_hash_table_lookup(cfg->priv->replacements, GUINT_TO_POINTER(line));
        if (rep != NULL && rep[0] == '\0') {
            /* An overridden directive or block: left out. */
        } else if (rep != NULL) {
            g_string_append(out, rep);
            g_string_append_c(out, '\n');
        } else {
            g_string_append_len(out, text + pos, (gssize)l);
            g_string_append_c(out, '\n');
        }
        pos = nl ? end + 1 : len;
        line++;
    }
    return g_string_free(out, FALSE);
}
