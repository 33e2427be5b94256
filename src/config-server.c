/* SPDX-License-Identifier: MIT */
/*
 * The server side of the configuration: its directives, the checks of a
 * whole server file, what the server hands out (ShimmerServerPlan, derived
 * as OpenVPN expands its `server` macro), and client-config-dir files.
 */
#include <arpa/inet.h>
#include <string.h>

#include "config-parser.h"
#include "config-private.h"
#include "secure.h"

/* ---------- addresses ---------- */

static bool ipv4_of(const char *s, guint32 *out)
{
    struct in_addr a;
    if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
        return false;
    *out = g_ntohl(a.s_addr);
    return true;
}

static char *ipv4_text(guint32 v)
{
    struct in_addr a = {g_htonl(v)};
    char buf[INET_ADDRSTRLEN];
    return g_strdup(inet_ntop(AF_INET, &a, buf, sizeof(buf)));
}

static guint netbits_of(guint32 mask)
{
    guint n = 0;
    while (n < 32 && (mask & (0x80000000u >> n)))
        n++;
    return n;
}

/* "2001:db8::/64" into the address and the bits. */
static bool ipv6_prefix_of(const char *s, struct in6_addr *addr, guint *bits)
{
    const char *slash = s != NULL ? strchr(s, '/') : NULL;
    if (slash == NULL)
        return false;
    g_autofree char *a = g_strndup(s, (gsize)(slash - s));
    guint64 b;
    if (inet_pton(AF_INET6, a, addr) != 1 || !cfg_parse_uint(slash + 1, 128, &b))
        return false;
    *bits = (guint)b;
    return true;
}

static void ipv6_add(struct in6_addr *a, guint32 n)
{
    guint64 carry = n;
    for (int i = 15; i >= 0 && carry; i--) {
        carry += a->s6_addr[i];
        a->s6_addr[i] = (guint8)carry;
        carry >>= 8;
    }
}

static char *ipv6_text(const struct in6_addr *a)
{
    char buf[INET6_ADDRSTRLEN];
    return g_strdup(inet_ntop(AF_INET6, a, buf, sizeof(buf)));
}

/* ---------- handlers ---------- */

void cfg_h_server(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv4(it->argv[1]) || !cfg_is_netmask(it->argv[2])) {
        cfg_error(p, it->line, "'server': '%s %s' is not a network and a netmask", it->argv[1],
                  it->argv[2]);
        return;
    }
    p->cfg->server_nopool = false;
    if (it->argc > 3) {
        if (strcmp(it->argv[3], "nopool") != 0) {
            cfg_error(p, it->line, "'server': unexpected argument '%s'", it->argv[3]);
            return;
        }
        p->cfg->server_nopool = true;
    }
    g_free(p->cfg->server_network);
    g_free(p->cfg->server_netmask);
    p->cfg->server_network = g_strdup(it->argv[1]);
    p->cfg->server_netmask = g_strdup(it->argv[2]);
    p->cfg->mode_server = true;
    p->cfg->tls_server = true;
    p->server_line = it->line;
}

void cfg_h_server_ipv6(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv6_prefix(it->argv[1], false)) {
        cfg_error(p, it->line, "'server-ipv6': '%s' is not an IPv6 prefix with /bits", it->argv[1]);
        return;
    }
    g_free(p->cfg->server_ipv6);
    p->cfg->server_ipv6 = g_strdup(it->argv[1]);
    p->cfg->mode_server = true;
    p->cfg->tls_server = true;
    p->server_ipv6_line = it->line;
}

void cfg_h_ifconfig_pool(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv4(it->argv[1]) || !cfg_is_ipv4(it->argv[2]) ||
        (it->argc > 3 && !cfg_is_netmask(it->argv[3]))) {
        cfg_error(p, it->line, "'ifconfig-pool': expected START END [NETMASK] addresses");
        return;
    }
    g_free(p->cfg->ifconfig_pool_start);
    g_free(p->cfg->ifconfig_pool_end);
    g_free(p->cfg->ifconfig_pool_netmask);
    p->cfg->ifconfig_pool_start = g_strdup(it->argv[1]);
    p->cfg->ifconfig_pool_end = g_strdup(it->argv[2]);
    p->cfg->ifconfig_pool_netmask = it->argc > 3 ? g_strdup(it->argv[3]) : NULL;
    p->ifconfig_pool_line = it->line;
}

void cfg_h_ifconfig_ipv6_pool(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv6_prefix(it->argv[1], false)) {
        cfg_error(p, it->line, "'ifconfig-ipv6-pool': '%s' is not an IPv6 address with /bits",
                  it->argv[1]);
        return;
    }
    g_free(p->cfg->ifconfig_ipv6_pool);
    p->cfg->ifconfig_ipv6_pool = g_strdup(it->argv[1]);
    p->ifconfig_ipv6_pool_line = it->line;
}

void cfg_h_ifconfig_pool_persist(Parser *p, const ShimmerItem *it)
{
    gint64 seconds = -1;
    if (it->argc > 2 && !cfg_arg_uint(p, it, 2, 0, G_MAXINT32, &seconds))
        return;
    g_free(p->cfg->ifconfig_pool_persist);
    p->cfg->ifconfig_pool_persist = g_strdup(it->argv[1]);
    p->cfg->ifconfig_pool_persist_seconds = (gint)seconds;
}

void cfg_h_push(Parser *p, const ShimmerItem *it)
{
    /* What is pushed must itself be something a client accepts from a push. */
    g_autoptr(ShimmerConfig) check =
        shimmer_config_parse_push(it->argv[1], strlen(it->argv[1]), NULL);
    for (guint i = 0; i < check->diagnostics->len; i++) {
        ShimmerDiagnostic *d = g_ptr_array_index(check->diagnostics, i);
        if (d->severity == SHIMMER_SEVERITY_ERROR)
            cfg_error(p, it->line, "'push \"%s\"': %s", it->argv[1], d->message);
        else
            cfg_warn(p, it->line, "'push \"%s\"': %s", it->argv[1], d->message);
    }
    g_ptr_array_add(p->ccd != NULL ? p->ccd->push : p->cfg->push, g_strdup(it->argv[1]));
}

void cfg_h_server_flag(Parser *p, const ShimmerItem *it)
{
    const char *n = it->argv[0];
    ShimmerConfig *cfg = p->cfg;
    if (strcmp(n, "client-to-client") == 0)
        cfg->client_to_client = true;
    else if (strcmp(n, "duplicate-cn") == 0)
        cfg->duplicate_cn = true;
    else if (strcmp(n, "username-as-common-name") == 0)
        cfg->username_as_common_name = true;
    else if (strcmp(n, "ccd-exclusive") == 0)
        cfg->ccd_exclusive = true;
    else if (strcmp(n, "multihome") == 0)
        cfg->multihome = true;
    else if (strcmp(n, "auth-user-pass-optional") == 0)
        cfg->auth_user_pass_optional = true;
    else if (strcmp(n, "force-tls-key-material-export") == 0)
        cfg->force_tls_ekm = true;
    else {
        cfg_error(p, it->line, "'%s': not a server flag", n);
        return;
    }
    g_hash_table_insert(p->flag_lines, g_strdup(n), GUINT_TO_POINTER(it->line));
}

void cfg_h_client_config_dir(Parser *p, const ShimmerItem *it)
{
    /* Only named here: the server reads one file per client when it
     * connects (shimmer_ccd_parse). */
    g_free(p->cfg->client_config_dir);
    p->cfg->client_config_dir = cfg_resolve_path(p, it->argv[1]);
}

/* auth-gen-token [LIFETIME [RENEWAL]] [external-auth] */
void cfg_h_auth_gen_token(Parser *p, const ShimmerItem *it)
{
    gint64 lifetime = 0, renewal = -1;
    bool external = false;
    guint n = 0;
    for (guint i = 1; i < it->argc; i++) {
        if (strcmp(it->argv[i], "external-auth") == 0) {
            external = true;
            continue;
        }
        if (external || n == 2) {
            cfg_error(p, it->line, "'auth-gen-token': unexpected argument '%s'", it->argv[i]);
            return;
        }
        gint64 *slot = n++ == 0 ? &lifetime : &renewal;
        if (!cfg_arg_uint(p, it, i, 0, G_MAXINT32, slot))
            return;
    }
    p->cfg->auth_gen_token = (gint)lifetime;
    p->cfg->auth_gen_token_renewal = (gint)renewal;
    p->cfg->auth_gen_token_external = external;
}

void cfg_h_auth_gen_token_secret(Parser *p, const ShimmerItem *it)
{
    ShimmerBlob *b = &p->cfg->auth_gen_token_secret;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    if (g_strstr_len((const char *)b->data, (gssize)b->len,
                     "-----BEGIN OpenVPN auth-token server key-----") == NULL) {
        cfg_error(p, it->line,
                  "'auth-gen-token-secret': not an OpenVPN auth-token server key (openvpn "
                  "--genkey auth-token)");
        return;
    }
    cfg_record_inline(p, it, b, NULL);
}

void cfg_h_tls_crypt_v2_max_age(Parser *p, const ShimmerItem *it)
{
    gint64 days;
    if (!cfg_arg_uint(p, it, 1, 1, 365000, &days))
        return;
    p->cfg->tls_crypt_v2_max_age = (gint)days;
}

void cfg_h_x509_username_field(Parser *p, const ShimmerItem *it)
{
    /* OpenVPN checks the field name only when a client connects. */
    const char *f = it->argv[1];
    for (const char *c = g_str_has_prefix(f, "ext:") ? f + 4 : f; *c; c++) {
        if (!g_ascii_isalnum(*c) && *c != '_' && *c != '-' && *c != '.') {
            cfg_error(p, it->line, "'x509-username-field': '%s' is not a field name", f);
            return;
        }
    }
    g_free(p->cfg->x509_username_field);
    p->cfg->x509_username_field = g_strdup(f);
}

void cfg_h_dh(Parser *p, const ShimmerItem *it)
{
    if (p->cfg->role == SHIMMER_ROLE_CLIENT) {
        /* OpenVPN reads it only as a server; a client never opens it. */
        cfg_warn(p, it->line, "'dh' is a server's and is ignored here");
        g_ptr_array_add(p->cfg->ignored, g_strdup("dh"));
        return;
    }
    if (it->argc > 1 && strcmp(it->argv[1], "none") == 0) {
        p->cfg->dh_none = true;
        return;
    }
    if (it->argc < 2 && g_hash_table_lookup(p->blocks, "dh") == NULL) {
        cfg_error(p, it->line, "'dh' needs 'none' or a file");
        return;
    }
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, &p->cfg->dh, false))
        return;
    if (g_strstr_len((const char *)p->cfg->dh.data, (gssize)p->cfg->dh.len,
                     "-----BEGIN DH PARAMETERS-----") == NULL &&
        g_strstr_len((const char *)p->cfg->dh.data, (gssize)p->cfg->dh.len,
                     "-----BEGIN X9.42 DH PARAMETERS-----") == NULL) {
        cfg_error(p, it->line, "'dh': not PEM DH parameters");
        return;
    }
    cfg_warn(p, it->line,
             "'dh': the parameters are not used: Shimmer offers ECDHE only (as 'dh none')");
    cfg_record_inline(p, it, &p->cfg->dh, NULL);
}

/* ---------- client-config-dir directives ---------- */

void cfg_h_ifconfig_push(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv4(it->argv[1]) || !cfg_is_ipv4(it->argv[2])) {
        cfg_error(p, it->line, "'ifconfig-push': '%s %s' are not two IPv4 addresses", it->argv[1],
                  it->argv[2]);
        return;
    }
    if (it->argc > 3)
        cfg_warn(p, it->line, "'ifconfig-push ... %s': the alias name is ignored", it->argv[3]);
    g_free(p->ccd->ifconfig_push_local);
    g_free(p->ccd->ifconfig_push_netmask);
    p->ccd->ifconfig_push_local = g_strdup(it->argv[1]);
    p->ccd->ifconfig_push_netmask = g_strdup(it->argv[2]);
    p->ccd_ifconfig_push_line = it->line;
}

void cfg_h_ifconfig_ipv6_push(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv6_prefix(it->argv[1], false) || (it->argc > 2 && !cfg_is_ipv6(it->argv[2]))) {
        cfg_error(p, it->line,
                  "'ifconfig-ipv6-push': expected an IPv6 address/bits and optionally the "
                  "server's IPv6 address");
        return;
    }
    g_free(p->ccd->ifconfig_ipv6_push);
    g_free(p->ccd->ifconfig_ipv6_push_remote);
    p->ccd->ifconfig_ipv6_push = g_strdup(it->argv[1]);
    p->ccd->ifconfig_ipv6_push_remote = it->argc > 2 ? g_strdup(it->argv[2]) : NULL;
}

void cfg_h_iroute(Parser *p, const ShimmerItem *it)
{
    const char *mask = it->argc > 2 ? it->argv[2] : "255.255.255.255";
    guint32 net, m;
    if (!ipv4_of(it->argv[1], &net) || !cfg_is_netmask(mask) || !ipv4_of(mask, &m)) {
        cfg_error(p, it->line, "'iroute': '%s %s' is not a network and a netmask", it->argv[1],
                  mask);
        return;
    }
    if (net & ~m) {
        cfg_error(p, it->line, "'iroute %s %s': the address has bits outside the netmask",
                  it->argv[1], mask);
        return;
    }
    ShimmerRoute *r = g_new0(ShimmerRoute, 1);
    r->network = g_strdup(it->argv[1]);
    r->netmask = g_strdup(mask);
    r->metric = -1;
    g_ptr_array_add(p->ccd->iroutes, r);
}

void cfg_h_iroute_ipv6(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv6_prefix(it->argv[1], true)) {
        cfg_error(p, it->line, "'iroute-ipv6': '%s' is not an IPv6 prefix", it->argv[1]);
        return;
    }
    ShimmerRoute6 *r = g_new0(ShimmerRoute6, 1);
    r->prefix =
        strchr(it->argv[1], '/') ? g_strdup(it->argv[1]) : g_strdup_printf("%s/128", it->argv[1]);
    r->metric = -1;
    g_ptr_array_add(p->ccd->iroutes6, r);
}

void cfg_h_ccd_flag(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[0], "disable") == 0)
        p->ccd->disable = true;
    else if (strcmp(it->argv[0], "push-reset") == 0)
        p->ccd->push_reset = true;
}

void cfg_h_push_remove(Parser *p, const ShimmerItem *it)
{
    g_ptr_array_add(p->ccd->push_remove, g_strdup(it->argv[1]));
}

/* Checks of one ccd file against its server, as OpenVPN makes them. */
void cfg_finish_ccd(Parser *p, const ShimmerConfig *server)
{
    ShimmerCcd *ccd = p->ccd;
    const ShimmerServerPlan *plan = server != NULL ? server->plan : NULL;
    if (ccd->ifconfig_push_local != NULL && plan != NULL && plan->netmask != NULL) {
        guint32 a, net, mask, given;
        if (ipv4_of(ccd->ifconfig_push_local, &a) && ipv4_of(plan->local, &net) &&
            ipv4_of(plan->netmask, &mask) && (a & mask) != (net & mask)) {
            /* OpenVPN ignores it then and takes an address from the pool. */
            cfg_warn(p, p->ccd_ifconfig_push_line,
                     "'ifconfig-push %s': outside the server's network %s/%s: ignored (the "
                     "client gets an address from the pool, as in OpenVPN)",
                     ccd->ifconfig_push_local, plan->local, plan->netmask);
            g_clear_pointer(&ccd->ifconfig_push_local, g_free);
            g_clear_pointer(&ccd->ifconfig_push_netmask, g_free);
        } else if (ipv4_of(ccd->ifconfig_push_netmask, &given) && given != mask) {
            cfg_warn(p, p->ccd_ifconfig_push_line,
                     "'ifconfig-push %s %s': with topology subnet the second address is the "
                     "netmask, the server's is %s",
                     ccd->ifconfig_push_local, ccd->ifconfig_push_netmask, plan->netmask);
        }
    }
    if (ccd->push_remove->len > 0 && ccd->push_reset)
        cfg_warn(p, 0, "'push-remove' after 'push-reset' has nothing left to remove");
}

/* ---------- the whole server file ---------- */

static guint flag_line(Parser *p, const char *name)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(p->flag_lines, name));
}

void cfg_server_plan_free(ShimmerServerPlan *plan)
{
    if (plan == NULL)
        return;
    g_free(plan->local);
    g_free(plan->netmask);
    g_free(plan->pool_start);
    g_free(plan->pool_end);
    g_free(plan->local6);
    g_free(plan->pool6_start);
    g_ptr_array_unref(plan->push);
    g_free(plan);
}

/* IPv4: `server`, or `ifconfig` with `ifconfig-pool`. */
static bool plan_ipv4(Parser *p, ShimmerServerPlan *plan)
{
    ShimmerConfig *cfg = p->cfg;
    guint32 net, mask;
    if (cfg->server_network != NULL) {
        ipv4_of(cfg->server_network, &net);
        ipv4_of(cfg->server_netmask, &mask);
        guint bits = netbits_of(mask);
        if (net & ~mask) {
            cfg_error(p, p->server_line, "'server %s %s': the network has bits outside the mask",
                      cfg->server_network, cfg->server_netmask);
            return false;
        }
        if (bits < 16 || bits > 29) {
            cfg_error(p, p->server_line,
                      "'server %s %s': the network must be a /16 to a /29 (OpenVPN's limits for "
                      "a tun server)",
                      cfg->server_network, cfg->server_netmask);
            return false;
        }
        if (!cfg->server_nopool && cfg->ifconfig_pool_start != NULL) {
            cfg_error(p, (guint)p->ifconfig_pool_line,
                      "'ifconfig-pool' and 'server' (line %u) both define the pool: use "
                      "'server ... nopool' or drop 'ifconfig-pool'",
                      p->server_line);
            return false;
        }
        plan->local = ipv4_text(net + 1);
        plan->netmask = g_strdup(cfg->server_netmask);
        if (!cfg->server_nopool) {
            plan->pool_start = ipv4_text(net + 2);
            plan->pool_end = ipv4_text((net | ~mask) - 1);
        }
    } else if (cfg->ifconfig_local != NULL) {
        /* mode server by hand: ifconfig LOCAL NETMASK (topology subnet). */
        if (!ipv4_of(cfg->ifconfig_remote, &mask) || !cfg_is_netmask(cfg->ifconfig_remote)) {
            cfg_error(p, 0,
                      "'ifconfig %s %s': a topology subnet server gives its address and the "
                      "netmask",
                      cfg->ifconfig_local, cfg->ifconfig_remote);
            return false;
        }
        plan->local = g_strdup(cfg->ifconfig_local);
        plan->netmask = g_strdup(cfg->ifconfig_remote);
    }
    if (cfg->ifconfig_pool_start != NULL) {
        guint32 start, end;
        ipv4_of(cfg->ifconfig_pool_start, &start);
        ipv4_of(cfg->ifconfig_pool_end, &end);
        if (start > end || end - start + 1 < 2 || end - start >= 65536) {
            cfg_error(p, (guint)p->ifconfig_pool_line,
                      "'ifconfig-pool %s %s': not a range of 2 to 65536 addresses",
                      cfg->ifconfig_pool_start, cfg->ifconfig_pool_end);
            return false;
        }
        if (plan->local == NULL) {
            cfg_error(p, (guint)p->ifconfig_pool_line,
                      "'ifconfig-pool' without 'server' needs 'ifconfig' for the server's own "
                      "address");
            return false;
        }
        g_free(plan->pool_start);
        g_free(plan->pool_end);
        plan->pool_start = g_strdup(cfg->ifconfig_pool_start);
        plan->pool_end = g_strdup(cfg->ifconfig_pool_end);
    }
    if (plan->pool_start != NULL) {
        guint32 start, end;
        ipv4_of(plan->pool_start, &start);
        ipv4_of(plan->pool_end, &end);
        plan->pool_size = end - start + 1;
    }
    return true;
}

/* IPv6: `server-ipv6`, or `ifconfig-ipv6` with `ifconfig-ipv6-pool`. */
static bool plan_ipv6(Parser *p, ShimmerServerPlan *plan)
{
    ShimmerConfig *cfg = p->cfg;
    struct in6_addr base;
    guint bits;
    if (cfg->server_ipv6 != NULL) {
        ipv6_prefix_of(cfg->server_ipv6, &base, &bits);
        if (bits < 64 || bits > 124) {
            cfg_error(p, p->server_ipv6_line,
                      "'server-ipv6 %s': the prefix must be a /64 to a /124 (as in OpenVPN)",
                      cfg->server_ipv6);
            return false;
        }
        if (cfg->server_nopool) {
            cfg_error(p, p->server_ipv6_line,
                      "'server-ipv6' does not go with 'server ... nopool' (line %u)",
                      p->server_line);
            return false;
        }
        if (cfg->ifconfig_ipv6_pool != NULL) {
            cfg_error(p, p->ifconfig_ipv6_pool_line,
                      "'ifconfig-ipv6-pool' and 'server-ipv6' (line %u) both define the pool",
                      p->server_ipv6_line);
            return false;
        }
        struct in6_addr local = base;
        ipv6_add(&local, 1);
        g_autofree char *l = ipv6_text(&local);
        plan->local6 = g_strdup_printf("%s/%u", l, bits);
        ipv6_add(&base, bits < 112 ? 0x1000 : 2);
    } else if (cfg->ifconfig_ipv6_pool != NULL) {
        ipv6_prefix_of(cfg->ifconfig_ipv6_pool, &base, &bits);
        if (cfg->ifconfig_ipv6_local != NULL)
            plan->local6 = g_strdup(cfg->ifconfig_ipv6_local);
    } else {
        return true;
    }
    /* As OpenVPN: the host part's last 32 bits; never the all-zero address. */
    guint32 host = (guint32)base.s6_addr[12] << 24 | (guint32)base.s6_addr[13] << 16 |
                   (guint32)base.s6_addr[14] << 8 | base.s6_addr[15];
    if (128 - bits < 32)
        host &= (1u << (128 - bits)) - 1;
    if (host == 0) {
        ipv6_add(&base, 1);
        host = 1;
    }
    guint size = bits >= 112 ? (1u << (128 - bits)) - host : 65536;
    if (size < 2) {
        cfg_error(p, p->ifconfig_ipv6_pool_line ? p->ifconfig_ipv6_pool_line : p->server_ipv6_line,
                  "the IPv6 pool holds fewer than 2 addresses");
        return false;
    }
    plan->pool6_start = ipv6_text(&base);
    plan->pool6_bits = bits;
    if (plan->pool_size == 0 || size < plan->pool_size)
        plan->pool_size = size;
    return true;
}

/* What every client is pushed, in OpenVPN's order. */
static void plan_push(Parser *p, ShimmerServerPlan *plan)
{
    ShimmerConfig *cfg = p->cfg;
    for (guint i = 0; i < cfg->push->len; i++)
        g_ptr_array_add(plan->push, g_strdup(g_ptr_array_index(cfg->push, i)));
    if (cfg->keepalive_interval > 0) {
        plan->ping = cfg->keepalive_interval;
        plan->ping_restart = cfg->keepalive_timeout * 2;
        g_ptr_array_add(plan->push, g_strdup_printf("ping %d", cfg->keepalive_interval));
        g_ptr_array_add(plan->push, g_strdup_printf("ping-restart %d", cfg->keepalive_timeout));
    } else {
        plan->ping = cfg->ping;
        plan->ping_restart = cfg->ping_restart;
    }
    if (cfg->server_ipv6 != NULL)
        g_ptr_array_add(plan->push, g_strdup("tun-ipv6"));
    if (cfg->server_network != NULL) {
        g_ptr_array_add(plan->push, g_strdup_printf("route-gateway %s", plan->local));
        g_ptr_array_add(plan->push, g_strdup("topology subnet"));
    }
}

/* Authentication beyond the certificate: only PAM is in process. */
static void check_client_auth(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    bool pam = cfg->pam_service != NULL;
    static const char *const need_auth[] = {"username-as-common-name", "auth-user-pass-optional"};
    for (gsize i = 0; i < G_N_ELEMENTS(need_auth); i++) {
        guint line = flag_line(p, need_auth[i]);
        if (line > 0 && !pam)
            cfg_error(p, line,
                      "'%s' needs a way to check user names and passwords: add "
                      "'plugin /usr/lib/openvpn/openvpn-plugin-auth-pam.so SERVICE' (as OpenVPN, "
                      "which wants a plugin or a script for it)",
                      need_auth[i]);
    }
    if (cfg->verify_client_cert != SHIMMER_VERIFY_CLIENT_CERT_UNSET &&
        cfg->verify_client_cert != SHIMMER_VERIFY_CLIENT_CERT_REQUIRE && !pam)
        cfg_error(p, p->verify_client_cert_line,
                  "'verify-client-cert' other than require lets clients in without a "
                  "certificate: it needs the PAM plugin to check them (as OpenVPN wants a plugin "
                  "or a script)");
    gint hand_window = cfg->hand_window >= 0 ? cfg->hand_window : 60;
    if (cfg->auth_gen_token_renewal > 0 && cfg->auth_gen_token_renewal < 2 * hand_window)
        cfg_error(p, 0,
                  "'auth-gen-token': the renewal time %d must be at least twice hand-window "
                  "(%d), as OpenVPN requires",
                  cfg->auth_gen_token_renewal, hand_window);
    if (cfg->auth_gen_token >= 0 && !pam)
        cfg_warn(p, 0,
                 "'auth-gen-token' without user name and password authentication: the tokens "
                 "replace nothing");
    if (cfg->ccd_exclusive && cfg->client_config_dir == NULL)
        cfg_error(p, flag_line(p, "ccd-exclusive"),
                  "'ccd-exclusive' needs 'client-config-dir' (as in OpenVPN)");
}

void cfg_finish_server(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    if (!cfg->mode_server && !cfg->tls_server)
        cfg_error(p, 0, "a server configuration needs 'server' or 'mode server' with 'tls-server'");
    if (!cfg->ca.present && cfg->peer_fingerprints->len == 0)
        cfg_error(p, 0, "a server needs 'ca' (or 'peer-fingerprint')");
    if (!cfg->cert.present && !cfg->pkcs12.present)
        cfg_error(p, 0, "a server needs 'cert' and 'key'");
    if (cfg->tls_crypt_v2.present && !cfg->tls_crypt_v2_is_server_key)
        cfg_error(p, cfg->tls_crypt_v2.line, "'tls-crypt-v2': a server needs the server key");
    if (!cfg->dh_none && !cfg->dh.present)
        cfg_warn(p, 0, "no 'dh': Shimmer offers ECDHE only ('dh none')");
    if (cfg->lport < 0)
        cfg->lport = p->port_line > 0 ? p->port_value : cfg->rport;
    if (p->proto_client_line > 0)
        cfg_error(p, p->proto_client_line,
                  "a server takes 'proto udp' or 'proto tcp-server' (or tcp), not tcp-client");
    if (cfg->remote_cert_tls == SHIMMER_CERT_TLS_SERVER)
        cfg_error(p, 0,
                  "'remote-cert-tls server' on a server would refuse every client: use "
                  "'remote-cert-tls client'");
    if (cfg->tls_crypt_v2_max_age > 0)
        cfg_warn(p, 0,
                 "'tls-crypt-v2-max-age' is an OpenVPN 2.7 option: OpenVPN 2.6 refuses the "
                 "file; Shimmer honours it");
    switch (cfg->topology) {
    case SHIMMER_TOPOLOGY_NET30:
    case SHIMMER_TOPOLOGY_P2P:
        cfg_error(p, p->topology_line,
                  "'topology %s': Shimmer's server gives every client one address of a subnet "
                  "('topology subnet'); %s",
                  cfg->topology == SHIMMER_TOPOLOGY_NET30 ? "net30" : "p2p",
                  cfg->topology == SHIMMER_TOPOLOGY_NET30
                      ? "net30 spends a /30 on each client and OpenVPN 2.6 deprecates it"
                      : "p2p does not work with Windows clients");
        return;
    case SHIMMER_TOPOLOGY_UNSET:
        if (cfg->server_network != NULL)
            cfg_warn(p, p->server_line,
                     "no 'topology': OpenVPN 2.6 would use net30; Shimmer serves 'topology "
                     "subnet' (OpenVPN 2.7's default), which the clients learn from the push");
        cfg->topology = SHIMMER_TOPOLOGY_SUBNET;
        break;
    case SHIMMER_TOPOLOGY_SUBNET:
        break;
    }
    check_client_auth(p);
    if (cfg->server_network == NULL && cfg->ifconfig_pool_start == NULL &&
        cfg->client_config_dir == NULL)
        cfg_warn(p, 0,
                 "no 'server' and no 'ifconfig-pool': clients get an address only from "
                 "client-config-dir files");
    if (shimmer_config_has_errors(cfg))
        return;
    ShimmerServerPlan *plan = g_new0(ShimmerServerPlan, 1);
    plan->push = g_ptr_array_new_with_free_func(g_free);
    plan->ping = plan->ping_restart = -1;
    if (!plan_ipv4(p, plan) || !plan_ipv6(p, plan)) {
        cfg_server_plan_free(plan);
        return;
    }
    plan_push(p, plan);
    cfg->plan = plan;
}
