/* SPDX-License-Identifier: MIT */
/* Unit tests of service/ipconfig.c: the tunnel's IP configuration decided
 * from a profile and a PUSH_REPLY (what shimmerd applies, and what
 * NetworkManager's plugin gets as NetworkConfig), without touching the
 * system. */
#include <string.h>

#include "config.h"
#include "tunnel/ipconfig.h"

static ShimmerConfig *profile(const char *text)
{
    /* Only the network directives matter here; a profile without a CA is
     * still parsed in full. */
    return shimmer_config_parse("test.ovpn", "/", text, strlen(text), NULL, NULL);
}

static ShimmerConfig *push(const char *text)
{
    ShimmerConfig *p = shimmer_config_parse_push(text, strlen(text), NULL);
    g_assert_false(shimmer_config_has_errors(p));
    return p;
}

static const ShimmerIpRoute *route(const ShimmerIpConfig *ip, const char *network)
{
    for (guint i = 0; i < ip->routes->len; i++) {
        const ShimmerIpRoute *r = g_ptr_array_index(ip->routes, i);
        if (strcmp(r->network, network) == 0)
            return r;
    }
    g_error("no route %s", network);
    return NULL;
}

/* What an OpenVPN 2.6 server sends with topology subnet and IPv6. */
static const char *typical =
    "route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 120,"
    "dhcp-option DNS 10.8.0.1,dhcp-option DOMAIN corp.example,"
    "redirect-gateway def1 bypass-dhcp,route 10.9.0.0 255.255.0.0,"
    "route-ipv6 2001:db8:1::/48,"
    "ifconfig-ipv6 fd00:8::1000/64 fd00:8::1,ifconfig 10.8.0.2 255.255.255.0,"
    "peer-id 7,cipher AES-256-GCM,tun-mtu 1400";

static void test_typical_subnet(void)
{
    g_autoptr(ShimmerConfig) cfg = profile("client\ndev tun\n");
    g_autoptr(ShimmerConfig) p = push(typical);
    g_autoptr(ShimmerIpConfig) ip = shimmer_ip_config_new(cfg, p);
    g_assert_cmpuint(ip->mtu, ==, 1400);
    g_assert_cmpstr(ip->ipv4_address, ==, "10.8.0.2");
    g_assert_cmpuint(ip->ipv4_prefix, ==, 24);
    g_assert_null(ip->ipv4_peer);
    g_assert_cmpstr(ip->ipv4_gateway, ==, "10.8.0.1");
    g_assert_cmpstr(ip->ipv6_address, ==, "fd00:8::1000");
    g_assert_cmpuint(ip->ipv6_prefix, ==, 64);
    g_assert_true(ip->redirect && ip->ipv4_default && !ip->ipv6_default && ip->pin_server);
    g_assert_cmpuint(ip->routes->len, ==, 2);
    g_assert_cmpuint(route(ip, "10.9.0.0")->prefix, ==, 16);
    g_assert_false(route(ip, "10.9.0.0")->ipv6);
    g_assert_cmpuint(route(ip, "2001:db8:1::")->prefix, ==, 48);
    g_assert_true(route(ip, "2001:db8:1::")->ipv6);
    g_assert_cmpuint(ip->dns_servers->len, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(ip->dns_servers, 0), ==, "10.8.0.1");
    g_assert_cmpstr(g_ptr_array_index(ip->dns_domains, 0), ==, "corp.example");

    g_autoptr(GVariant) v =
        g_variant_ref_sink(shimmer_ip_config_to_variant(ip, "shim0", "192.0.2.1"));
    const char *s;
    guint32 u;
    gboolean b;
    g_assert_true(g_variant_lookup(v, "interface", "&s", &s));
    g_assert_cmpstr(s, ==, "shim0");
    g_assert_true(g_variant_lookup(v, "remote", "&s", &s));
    g_assert_cmpstr(s, ==, "192.0.2.1");
    g_assert_true(g_variant_lookup(v, "mtu", "u", &u));
    g_assert_cmpuint(u, ==, 1400);
    g_assert_true(g_variant_lookup(v, "ipv4-prefix", "u", &u));
    g_assert_cmpuint(u, ==, 24);
    g_assert_false(g_variant_lookup(v, "ipv4-peer", "&s", &s));
    g_assert_true(g_variant_lookup(v, "ipv4-default-route", "b", &b) && b);
    g_assert_true(g_variant_lookup(v, "ipv6-default-route", "b", &b) && !b);
    g_autoptr(GVariant) r4 = g_variant_lookup_value(v, "ipv4-routes", G_VARIANT_TYPE("a(suu)"));
    g_assert_nonnull(r4);
    g_assert_cmpuint(g_variant_n_children(r4), ==, 1);
}

static void test_net30_peer(void)
{
    g_autoptr(ShimmerConfig) cfg = profile("client\ndev tun\n");
    g_autoptr(ShimmerConfig) p = push("topology net30,ifconfig 10.8.0.6 10.8.0.5,route 10.8.0.1");
    g_autoptr(ShimmerIpConfig) ip = shimmer_ip_config_new(cfg, p);
    g_assert_cmpstr(ip->ipv4_address, ==, "10.8.0.6");
    g_assert_cmpuint(ip->ipv4_prefix, ==, 32);
    g_assert_cmpstr(ip->ipv4_peer, ==, "10.8.0.5");
    g_assert_cmpstr(ip->ipv4_gateway, ==, "10.8.0.5");
    g_assert_null(ip->ipv6_address);
    g_assert_false(ip->redirect);
    g_assert_cmpuint(route(ip, "10.8.0.1")->prefix, ==, 32);
    g_assert_cmpuint(ip->mtu, ==, 1500);
}

/* route-metric gives routes without their own metric one; the pushed
 * route-metric wins over the profile's. */
static void test_route_metric(void)
{
    g_autoptr(ShimmerConfig) cfg = profile("client\ndev tun\nroute-metric 50\n"
                                           "route 10.1.0.0 255.255.0.0\n"
                                           "route 10.2.0.0 255.255.0.0 default 7\n"
                                           "route-ipv6 fd01::/64\n");
    g_autoptr(ShimmerConfig) p = push("ifconfig 10.8.0.2 255.255.255.0,route 10.3.0.0 255.255.0.0");
    g_autoptr(ShimmerIpConfig) ip = shimmer_ip_config_new(cfg, p);
    g_assert_cmpuint(route(ip, "10.1.0.0")->metric, ==, 50);
    g_assert_cmpuint(route(ip, "10.2.0.0")->metric, ==, 7);
    g_assert_cmpuint(route(ip, "fd01::")->metric, ==, 50);
    g_assert_cmpuint(route(ip, "10.3.0.0")->metric, ==, 50);
    /* Configured routes come before pushed ones. */
    g_assert_cmpstr(((ShimmerIpRoute *)g_ptr_array_index(ip->routes, 0))->network, ==, "10.1.0.0");

    g_autoptr(ShimmerConfig) p2 = push("ifconfig 10.8.0.2 255.255.255.0,route-metric 9,"
                                       "route 10.3.0.0 255.255.0.0");
    g_autoptr(ShimmerIpConfig) ip2 = shimmer_ip_config_new(cfg, p2);
    g_assert_cmpuint(route(ip2, "10.1.0.0")->metric, ==, 9);
    g_assert_cmpuint(route(ip2, "10.3.0.0")->metric, ==, 9);

    g_autoptr(ShimmerConfig) plain = profile("client\ndev tun\nroute 10.1.0.0 255.255.0.0\n");
    g_autoptr(ShimmerIpConfig) ip3 = shimmer_ip_config_new(plain, p);
    g_assert_cmpuint(route(ip3, "10.1.0.0")->metric, ==, 0);
}

/* A net_gateway route leads around the tunnel: kept for shimmerd, left out
 * of NetworkConfig (NetworkManager would put it into the tunnel). */
static void test_net_gateway_route(void)
{
    g_autoptr(ShimmerConfig) cfg =
        profile("client\ndev tun\nroute 198.51.100.0 255.255.255.0 net_gateway\n");
    g_autoptr(ShimmerConfig) p = push("ifconfig 10.8.0.2 255.255.255.0,route 10.3.0.0 255.255.0.0");
    g_autoptr(ShimmerIpConfig) ip = shimmer_ip_config_new(cfg, p);
    g_assert_true(route(ip, "198.51.100.0")->outside);
    g_assert_false(route(ip, "10.3.0.0")->outside);
    g_autoptr(GVariant) v = g_variant_ref_sink(shimmer_ip_config_to_variant(ip, NULL, NULL));
    g_autoptr(GVariant) r4 = g_variant_lookup_value(v, "ipv4-routes", G_VARIANT_TYPE("a(suu)"));
    g_assert_cmpuint(g_variant_n_children(r4), ==, 1);
    const char *net;
    guint32 plen, metric;
    g_variant_get_child(r4, 0, "(&suu)", &net, &plen, &metric);
    g_assert_cmpstr(net, ==, "10.3.0.0");
    g_assert_cmpuint(plen, ==, 16);
    const char *s;
    g_assert_false(g_variant_lookup(v, "interface", "&s", &s));
}

/* Host-name routes of the profile are left for the client to look up;
 * pushed ones are not looked up (the server would choose what the client
 * asks DNS), except remote_host, which names the server itself. */
static void test_host_routes(void)
{
    g_autoptr(ShimmerConfig) cfg = profile("client\ndev tun\nroute-metric 5\n"
                                           "route intranet.example.com 255.255.255.0\n"
                                           "route remote_host 255.255.255.255 net_gateway\n");
    g_autoptr(ShimmerConfig) p = push("ifconfig 10.8.0.2 255.255.255.0,"
                                      "route tracker.example.net 255.255.255.255");
    g_autoptr(ShimmerIpConfig) ip = shimmer_ip_config_new(cfg, p);
    g_assert_cmpuint(ip->host_routes->len, ==, 2);
    const ShimmerIpHostRoute *h = g_ptr_array_index(ip->host_routes, 0);
    g_assert_cmpstr(h->host, ==, "intranet.example.com");
    g_assert_cmpuint(h->prefix, ==, 24);
    g_assert_cmpuint(h->metric, ==, 5);
    g_assert_false(h->outside);
    h = g_ptr_array_index(ip->host_routes, 1);
    g_assert_cmpstr(h->host, ==, "remote_host");
    g_assert_true(h->outside);
    g_assert_cmpuint(ip->routes->len, ==, 0);
    gboolean warned = FALSE;
    for (guint i = 0; i < ip->warnings->len; i++)
        warned |= strstr(g_ptr_array_index(ip->warnings, i), "tracker.example.net") != NULL;
    g_assert_true(warned);

    /* A looked-up address becomes an ordinary route (and NetworkConfig's). */
    shimmer_ip_config_add_route(ip, "192.0.2.0", 24, 5, FALSE);
    g_assert_cmpuint(route(ip, "192.0.2.0")->prefix, ==, 24);
    g_autoptr(GVariant) v = g_variant_ref_sink(shimmer_ip_config_to_variant(ip, NULL, NULL));
    g_autoptr(GVariant) r4 = g_variant_lookup_value(v, "ipv4-routes", G_VARIANT_TYPE("a(suu)"));
    g_assert_cmpuint(g_variant_n_children(r4), ==, 1);
}

/* Pushed `dns` options: they win over dhcp-option DNS; servers on another
 * port are left out (the system resolver cannot be told a port); DNSSEC and
 * the transport of the servers used. */
static void test_dns_options(void)
{
    g_autoptr(ShimmerConfig) cfg = profile("client\ndev tun\n");
    g_autoptr(ShimmerConfig) p =
        push("dhcp-option DNS 10.8.0.1,"
             "dns server 1 address 10.8.0.53 [fd00:8::53]:53,dns server 1 dnssec optional,"
             "dns server 1 transport DoT,dns server 1 resolve-domains corp.example,"
             "dns server 2 address 10.8.0.54:5353,dns server 2 dnssec no,"
             "dns search-domains lab.example,"
             "ifconfig 10.8.0.2 255.255.255.0,topology subnet");
    g_autoptr(ShimmerIpConfig) ip = shimmer_ip_config_new(cfg, p);
    g_assert_cmpuint(ip->dns_servers->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(ip->dns_servers, 0), ==, "10.8.0.53");
    g_assert_cmpstr(g_ptr_array_index(ip->dns_servers, 1), ==, "fd00:8::53");
    g_assert_cmpint(ip->dnssec, ==, SHIMMER_DNSSEC_OPTIONAL);
    g_assert_cmpint(ip->dns_transport, ==, SHIMMER_DNS_TRANSPORT_DOT);
    gboolean routing = FALSE, search = FALSE;
    for (guint i = 0; i < ip->dns_domains->len; i++) {
        routing |= g_strcmp0(g_ptr_array_index(ip->dns_domains, i), "~corp.example") == 0;
        search |= g_strcmp0(g_ptr_array_index(ip->dns_domains, i), "lab.example") == 0;
    }
    g_assert_true(routing && search);
    gboolean warned = FALSE;
    for (guint i = 0; i < ip->warnings->len; i++)
        warned |= strstr(g_ptr_array_index(ip->warnings, i), "uses port 5353") != NULL;
    g_assert_true(warned);

    /* Only a server on another port: nothing of its settings is taken. */
    g_autoptr(ShimmerConfig) p2 =
        push("dns server 1 address 10.8.0.54:5353,dns server 1 dnssec yes");
    g_autoptr(ShimmerIpConfig) ip2 = shimmer_ip_config_new(cfg, p2);
    g_assert_cmpuint(ip2->dns_servers->len, ==, 0);
    g_assert_cmpint(ip2->dnssec, ==, SHIMMER_DNSSEC_UNSET);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ipconfig/typical-subnet", test_typical_subnet);
    g_test_add_func("/ipconfig/net30-peer", test_net30_peer);
    g_test_add_func("/ipconfig/route-metric", test_route_metric);
    g_test_add_func("/ipconfig/net-gateway-route", test_net_gateway_route);
    g_test_add_func("/ipconfig/host-routes", test_host_routes);
    g_test_add_func("/ipconfig/dns-options", test_dns_options);
    return g_test_run();
}
