/* SPDX-License-Identifier: MIT */
/*
 * A tunnel's IP configuration from the profile and the push. See
 * ipconfig.h.
 */
#include "ipconfig.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

static void route_free(gpointer p)
{
    ShimmerIpRoute *r = p;
    g_free(r->network);
    g_free(r);
}

void shimmer_ip_config_free(ShimmerIpConfig *ip)
{
    if (ip == NULL)
        return;
    g_free(ip->ipv4_address);
    g_free(ip->ipv4_peer);
    g_free(ip->ipv4_gateway);
    g_free(ip->ipv6_address);
    g_free(ip->ipv6_gateway);
    g_ptr_array_unref(ip->routes);
    g_ptr_array_unref(ip->host_routes);
    g_ptr_array_unref(ip->dns_servers);
    g_ptr_array_unref(ip->dns_domains);
    g_ptr_array_unref(ip->warnings);
    g_free(ip);
}

static void warn(ShimmerIpConfig *ip, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void warn(ShimmerIpConfig *ip, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(ip->warnings, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

static guint netmask_bits(const char *mask)
{
    struct in_addr a;
    if (mask == NULL || inet_pton(AF_INET, mask, &a) != 1)
        return 32;
    guint32 m = g_ntohl(a.s_addr);
    guint bits = 0;
    while (m & 0x80000000u) {
        bits++;
        m <<= 1;
    }
    return bits;
}

static gboolean is_ipv4(const char *text)
{
    struct in_addr a;
    return text != NULL && inet_pton(AF_INET, text, &a) == 1;
}

static gboolean is_ipv6(const char *text)
{
    struct in6_addr a;
    return text != NULL && inet_pton(AF_INET6, text, &a) == 1;
}

/* ---------- DNS ---------- */

static void add_unique(GPtrArray *list, const char *text)
{
    for (guint i = 0; i < list->len; i++)
        if (g_ascii_strcasecmp(g_ptr_array_index(list, i), text) == 0)
            return;
    g_ptr_array_add(list, g_strdup(text));
}

/* Domains come from the server: only plain DNS names go further (they end
 * up in the resolver's configuration and in D-Bus properties). */
static gboolean is_domain_name(const char *d)
{
    gsize len = strlen(d);
    if (len == 0 || len > 253)
        return FALSE;
    for (const char *c = d; *c; c++)
        if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_' && *c != '.')
            return FALSE;
    return TRUE;
}

static void add_domain(ShimmerIpConfig *ip, const char *prefix, const char *domain)
{
    if (!is_domain_name(domain)) {
        g_autofree char *shown = g_strescape(domain, NULL);
        warn(ip, "DNS domain \"%.64s\" is not a domain name, skipped", shown);
        return;
    }
    g_autofree char *d = g_strconcat(prefix, domain, NULL);
    add_unique(ip->dns_domains, d);
}

/* A `dns server` address may carry a port ("1.2.3.4:53", "[::1]:53"):
 * the resolver APIs take the bare address. NULL if it is not an address. */
static gboolean is_address(const char *text)
{
    g_autoptr(GInetAddress) a = g_inet_address_new_from_string(text);
    return a != NULL;
}

static char *dns_address_port(const char *text, guint *port)
{
    *port = 0;
    if (is_address(text))
        return g_strdup(text);
    g_autofree char *bare = NULL;
    const char *port_text = NULL;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close != NULL) {
            bare = g_strndup(text + 1, (gsize)(close - text - 1));
            port_text = close[1] == ':' ? close + 2 : NULL;
        }
    } else {
        const char *colon = strchr(text, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            bare = g_strndup(text, (gsize)(colon - text));
            port_text = colon + 1;
        }
    }
    if (bare == NULL || !is_address(bare))
        return NULL;
    guint64 p = 0;
    if (port_text != NULL && !g_ascii_string_to_unsigned(port_text, 10, 1, 65535, &p, NULL))
        return NULL;
    *port = (guint)p;
    return g_steal_pointer(&bare);
}

static char *dns_address(const char *text)
{
    guint port;
    return dns_address_port(text, &port);
}

static void collect_dns(ShimmerIpConfig *ip, const ShimmerConfig *cfg, const ShimmerConfig *p)
{
    const ShimmerConfig *sources[2] = {p, cfg};
    const ShimmerConfig *dns_src = NULL;
    for (int s = 0; s < 2 && dns_src == NULL; s++)
        if (sources[s]->dns_servers->len > 0)
            dns_src = sources[s];
    if (dns_src != NULL) {
        for (guint i = 0; i < dns_src->dns_servers->len; i++) {
            ShimmerDnsServer *srv = g_ptr_array_index(dns_src->dns_servers, i);
            guint used = 0;
            for (guint j = 0; j < srv->addresses->len; j++) {
                const char *text = g_ptr_array_index(srv->addresses, j);
                guint port = 0;
                g_autofree char *addr = dns_address_port(text, &port);
                if (port == 0)
                    port = srv->port;
                if (addr == NULL) {
                    warn(ip, "dns server %d: %s is not an address, skipped", srv->priority, text);
                } else if (port != 0 && port != 53) {
                    /* The system resolver takes addresses only: queries
                     * would go to port 53, where this server may not
                     * answer. */
                    warn(ip,
                         "dns server %d: %s uses port %u, which the system resolver cannot "
                         "be told; skipped",
                         srv->priority, addr, port);
                } else {
                    add_unique(ip->dns_servers, addr);
                    used++;
                }
            }
            if (used > 0 && ip->dnssec == SHIMMER_DNSSEC_UNSET)
                ip->dnssec = srv->dnssec;
            if (used > 0 && ip->dns_transport == SHIMMER_DNS_TRANSPORT_UNSET)
                ip->dns_transport = srv->transport;
            for (guint j = 0; srv->resolve_domains && j < srv->resolve_domains->len; j++)
                add_domain(ip, "~", g_ptr_array_index(srv->resolve_domains, j));
        }
    } else {
        const ShimmerConfig *opt_src = p->dhcp_options->len > 0 ? p : cfg;
        for (guint i = 0; i < opt_src->dhcp_options->len; i++) {
            ShimmerDhcpOption *o = g_ptr_array_index(opt_src->dhcp_options, i);
            if (o->value == NULL)
                continue;
            if (g_ascii_strcasecmp(o->type, "DNS") == 0 ||
                g_ascii_strcasecmp(o->type, "DNS6") == 0) {
                g_autofree char *addr = dns_address(o->value);
                if (addr == NULL)
                    warn(ip, "dhcp-option %s %s: not an address, skipped", o->type, o->value);
                else
                    add_unique(ip->dns_servers, addr);
            }
        }
    }
    const ShimmerConfig *search_src = p->dns_search_domains->len > 0 ? p : cfg;
    for (guint i = 0; i < search_src->dns_search_domains->len; i++)
        add_domain(ip, "", g_ptr_array_index(search_src->dns_search_domains, i));
    const ShimmerConfig *dom_src = p->dhcp_options->len > 0 ? p : cfg;
    for (guint i = 0; i < dom_src->dhcp_options->len; i++) {
        ShimmerDhcpOption *o = g_ptr_array_index(dom_src->dhcp_options, i);
        if (o->value != NULL && (g_ascii_strcasecmp(o->type, "DOMAIN") == 0 ||
                                 g_ascii_strcasecmp(o->type, "DOMAIN-SEARCH") == 0))
            add_domain(ip, "", o->value);
    }
}

/* ---------- addresses and routes ---------- */

static void add_route(ShimmerIpConfig *ip, gboolean ipv6, const char *network, guint prefix,
                      gint metric, gboolean outside)
{
    ShimmerIpRoute *r = g_new0(ShimmerIpRoute, 1);
    r->ipv6 = ipv6;
    r->network = g_strdup(network);
    r->prefix = prefix;
    r->metric = metric >= 0 ? (guint)metric : 0;
    r->outside = outside;
    g_ptr_array_add(ip->routes, r);
}

void shimmer_ip_config_add_route(ShimmerIpConfig *ip, const char *network, guint prefix,
                                 guint metric, gboolean outside)
{
    add_route(ip, strchr(network, ':') != NULL, network, prefix, (gint)metric, outside);
}

static void host_route_free(gpointer p)
{
    ShimmerIpHostRoute *r = p;
    g_free(r->host);
    g_free(r);
}

/* DEFAULT_METRIC: route-metric (-1 unset) for routes that give none.
 * PUSHED: SRC is the server's push. */
static void collect_routes(ShimmerIpConfig *ip, const ShimmerConfig *src, gint default_metric,
                           gboolean pushed)
{
    for (guint i = 0; i < src->routes->len; i++) {
        ShimmerRoute *r = g_ptr_array_index(src->routes, i);
        gboolean outside = r->gateway != NULL && strcmp(r->gateway, "net_gateway") == 0;
        if (!is_ipv4(r->network)) {
            if (strcmp(r->network, "vpn_gateway") == 0 || strcmp(r->network, "net_gateway") == 0) {
                warn(ip, "route %s: not supported as a destination, skipped", r->network);
            } else if (pushed && strcmp(r->network, "remote_host") != 0) {
                g_autofree char *shown = g_strescape(r->network, NULL);
                warn(ip, "route \"%.64s\" from the server is a host name: not looked up, skipped",
                     shown);
            } else {
                ShimmerIpHostRoute *h = g_new0(ShimmerIpHostRoute, 1);
                h->host = g_strdup(r->network);
                h->prefix = r->netmask ? netmask_bits(r->netmask) : 32;
                h->metric = (guint)MAX(r->metric >= 0 ? r->metric : default_metric, 0);
                h->outside = outside;
                g_ptr_array_add(ip->host_routes, h);
            }
            continue;
        }
        add_route(ip, FALSE, r->network, r->netmask ? netmask_bits(r->netmask) : 32,
                  r->metric >= 0 ? r->metric : default_metric, outside);
    }
    for (guint i = 0; i < src->routes6->len; i++) {
        ShimmerRoute6 *r = g_ptr_array_index(src->routes6, i);
        g_auto(GStrv) parts = g_strsplit(r->prefix, "/", 2);
        add_route(ip, TRUE, parts[0], parts[1] ? (guint)atoi(parts[1]) : 128,
                  r->metric >= 0 ? r->metric : default_metric, FALSE);
    }
}

ShimmerIpConfig *shimmer_ip_config_new(const ShimmerConfig *cfg, const ShimmerConfig *p)
{
    ShimmerIpConfig *ip = g_new0(ShimmerIpConfig, 1);
    ip->routes = g_ptr_array_new_with_free_func(route_free);
    ip->host_routes = g_ptr_array_new_with_free_func(host_route_free);
    ip->dns_servers = g_ptr_array_new_null_terminated(2, g_free, TRUE);
    ip->dns_domains = g_ptr_array_new_null_terminated(2, g_free, TRUE);
    ip->warnings = g_ptr_array_new_with_free_func(g_free);

    ip->mtu = p->tun_mtu ? p->tun_mtu : (cfg->tun_mtu ? cfg->tun_mtu : 1500);

    ShimmerTopology topo = p->topology ? p->topology : cfg->topology;
    const char *local = p->ifconfig_local ? p->ifconfig_local : cfg->ifconfig_local;
    const char *remote = p->ifconfig_local ? p->ifconfig_remote : cfg->ifconfig_remote;
    if (local != NULL) {
        ip->ipv4_address = g_strdup(local);
        if (topo == SHIMMER_TOPOLOGY_SUBNET) {
            ip->ipv4_prefix = netmask_bits(remote);
        } else {
            ip->ipv4_prefix = 32;
            ip->ipv4_peer = g_strdup(remote);
        }
        const char *rgw = p->route_gateway ? p->route_gateway : cfg->route_gateway;
        if (is_ipv4(rgw))
            ip->ipv4_gateway = g_strdup(rgw);
        else if (ip->ipv4_peer != NULL)
            ip->ipv4_gateway = g_strdup(ip->ipv4_peer);
    }
    const ShimmerConfig *src6 = p->ifconfig_ipv6_local ? p : cfg;
    if (src6->ifconfig_ipv6_local != NULL) {
        g_auto(GStrv) parts = g_strsplit(src6->ifconfig_ipv6_local, "/", 2);
        ip->ipv6_address = g_strdup(parts[0]);
        ip->ipv6_prefix = parts[1] ? (guint)atoi(parts[1]) : 64;
        ip->ipv6_gateway = g_strdup(src6->ifconfig_ipv6_remote);
    }

    guint redirect = p->redirect_gateway ? p->redirect_gateway : cfg->redirect_gateway;
    if (redirect & SHIMMER_REDIRECT_ENABLED) {
        ip->redirect = TRUE;
        ip->ipv4_default = !(redirect & SHIMMER_REDIRECT_NOT_IPV4);
        ip->ipv6_default = (redirect & SHIMMER_REDIRECT_IPV6) != 0;
        ip->pin_server = !(redirect & SHIMMER_REDIRECT_LOCAL);
    }

    /* route-metric: the pushed one wins, as with the other options. */
    gint metric = p->route_metric >= 0 ? p->route_metric : cfg->route_metric;
    collect_routes(ip, cfg, metric, FALSE);
    collect_routes(ip, p, metric, TRUE);
    collect_dns(ip, cfg, p);
    return ip;
}

/* ---------- NetworkConfig ---------- */

static GVariant *routes_variant(const ShimmerIpConfig *ip, gboolean ipv6)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a(suu)"));
    for (guint i = 0; i < ip->routes->len; i++) {
        ShimmerIpRoute *r = g_ptr_array_index(ip->routes, i);
        if (r->ipv6 != ipv6 || r->outside || r->prefix > (ipv6 ? 128u : 32u) ||
            !(ipv6 ? is_ipv6(r->network) : is_ipv4(r->network)))
            continue;
        g_variant_builder_add(&b, "(suu)", r->network, r->prefix, r->metric);
    }
    return g_variant_builder_end(&b);
}

static GVariant *domains_variant(const ShimmerIpConfig *ip, gboolean routing)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_STRING_ARRAY);
    for (guint i = 0; i < ip->dns_domains->len; i++) {
        const char *d = g_ptr_array_index(ip->dns_domains, i);
        if ((d[0] == '~') == routing)
            g_variant_builder_add(&b, "s", routing ? d + 1 : d);
    }
    return g_variant_builder_end(&b);
}

GVariant *shimmer_ip_config_to_variant(const ShimmerIpConfig *ip, const char *ifname,
                                       const char *remote)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    /* A tun name is at most IFNAMSIZ of what the kernel accepted, but D-Bus
     * wants UTF-8 whatever a profile's "dev" said. */
    if (ifname != NULL && g_utf8_validate(ifname, -1, NULL))
        g_variant_builder_add(&b, "{sv}", "interface", g_variant_new_string(ifname));
    g_variant_builder_add(&b, "{sv}", "mtu", g_variant_new_uint32(ip->mtu));
    if (is_ipv4(remote) || is_ipv6(remote))
        g_variant_builder_add(&b, "{sv}", "remote", g_variant_new_string(remote));
    if (is_ipv4(ip->ipv4_address) && ip->ipv4_prefix <= 32) {
        g_variant_builder_add(&b, "{sv}", "ipv4-address", g_variant_new_string(ip->ipv4_address));
        g_variant_builder_add(&b, "{sv}", "ipv4-prefix", g_variant_new_uint32(ip->ipv4_prefix));
        if (is_ipv4(ip->ipv4_peer))
            g_variant_builder_add(&b, "{sv}", "ipv4-peer", g_variant_new_string(ip->ipv4_peer));
    }
    if (is_ipv4(ip->ipv4_gateway))
        g_variant_builder_add(&b, "{sv}", "ipv4-gateway", g_variant_new_string(ip->ipv4_gateway));
    g_variant_builder_add(&b, "{sv}", "ipv4-routes", routes_variant(ip, FALSE));
    g_variant_builder_add(&b, "{sv}", "ipv4-default-route",
                          g_variant_new_boolean(ip->ipv4_default));
    if (is_ipv6(ip->ipv6_address) && ip->ipv6_prefix <= 128) {
        g_variant_builder_add(&b, "{sv}", "ipv6-address", g_variant_new_string(ip->ipv6_address));
        g_variant_builder_add(&b, "{sv}", "ipv6-prefix", g_variant_new_uint32(ip->ipv6_prefix));
    }
    if (is_ipv6(ip->ipv6_gateway))
        g_variant_builder_add(&b, "{sv}", "ipv6-gateway", g_variant_new_string(ip->ipv6_gateway));
    g_variant_builder_add(&b, "{sv}", "ipv6-routes", routes_variant(ip, TRUE));
    g_variant_builder_add(&b, "{sv}", "ipv6-default-route",
                          g_variant_new_boolean(ip->ipv6_default));
    /* Servers are addresses and domains plain names (checked when
     * collected): all of it is ASCII. */
    g_variant_builder_add(&b, "{sv}", "dns-servers",
                          g_variant_new_strv((const char *const *)ip->dns_servers->pdata,
                                             (gssize)ip->dns_servers->len));
    g_variant_builder_add(&b, "{sv}", "dns-search", domains_variant(ip, FALSE));
    g_variant_builder_add(&b, "{sv}", "dns-routing-domains", domains_variant(ip, TRUE));
    return g_variant_builder_end(&b);
}
