/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * A tunnel's IP configuration: what the profile and the server's push ask
 * for, decided in one place. The client applies it (client.c:
 * configure_tun) when it configures the network itself, and the session
 * shows it as NetworkConfig whether or not it was applied (NetworkManager
 * applies it then). Nothing here touches the system.
 *
 * The rules, OpenVPN's: pushed values win over configured ones (topology,
 * ifconfig, ifconfig-ipv6, route-gateway, redirect-gateway, tun-mtu);
 * routes are the configured ones followed by the pushed ones (route-nopull
 * empties the pushed list in the engine); `dns server` entries win over
 * dhcp-option DNS/DNS6, and pushed entries of a kind replace configured
 * ones of that kind.
 */

typedef struct {
    gboolean ipv6;
    char *network; /* "10.9.0.0", "fd00:1::" (as written) */
    guint prefix;
    guint metric;     /* 0: none given */
    gboolean outside; /* route ... net_gateway: around the tunnel, not into it */
} ShimmerIpRoute;

typedef struct {
    char *host;
    guint prefix;
    guint metric;
    gboolean outside; /* net_gateway */
} ShimmerIpHostRoute;

typedef struct {
    guint mtu;
    /* NULL when not configured. With topology subnet IPV4_PREFIX is the
     * netmask's length and there is no peer; with net30 and p2p the prefix
     * is 32 and IPV4_PEER the other end. IPV4_GATEWAY: route-gateway when
     * it is an address, else the peer. */
    char *ipv4_address;
    guint ipv4_prefix;
    char *ipv4_peer;
    char *ipv4_gateway;
    char *ipv6_address;
    guint ipv6_prefix;
    char *ipv6_gateway; /* ifconfig-ipv6's remote end */

    /* redirect-gateway: REDIRECT when given at all (DNS then takes every
     * query), IPV4_DEFAULT unless !ipv4, IPV6_DEFAULT with ipv6.
     * PIN_SERVER: the server's address must keep its route outside the
     * tunnel (not "local"). */
    gboolean redirect;
    gboolean ipv4_default;
    gboolean ipv6_default;
    gboolean pin_server;

    GPtrArray *routes; /* ShimmerIpRoute*, configured ones first, IPv4 before IPv6 */
    /* Routes of the profile to a host name (`route intranet.example.com`),
     * ShimmerIpHostRoute*: resolved by the client when the tunnel is up
     * (IPv4 addresses; each gets the route), then added to ROUTES. Pushed
     * host names are left out with a warning (a server could otherwise make
     * the client look up names of its choosing). `remote_host` is the
     * server's address. */
    GPtrArray *host_routes;
    /* Both NULL-terminated: server addresses (no port), and domains with
     * "~" before routing-only ones (dns ... resolve-domains). */
    GPtrArray *dns_servers;
    GPtrArray *dns_domains;
    /* `dns server N dnssec` and `transport` of the servers used (the first
     * in priority order that says), UNSET when none does. */
    ShimmerDnssec dnssec;
    ShimmerDnsTransport dns_transport;
    /* What was left out and why, one sentence each, for the log. */
    GPtrArray *warnings;
} ShimmerIpConfig;

/* The configuration CFG and the pushed PUSHED (shimmer_engine_get_pushed())
 * ask for. Never fails: what cannot be used is left out with a warning. */
ShimmerIpConfig *shimmer_ip_config_new(const ShimmerConfig *cfg, const ShimmerConfig *pushed);
void shimmer_ip_config_free(ShimmerIpConfig *ip);

/* Adds a resolved route to IP->routes (a host route's addresses). */
void shimmer_ip_config_add_route(ShimmerIpConfig *ip, const char *network, guint prefix,
                                 guint metric, gboolean outside);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerIpConfig, shimmer_ip_config_free)

/* The a{sv} of Session1.NetworkConfig (see dbus/org.shimmervpn.Session1.xml),
 * floating. IFNAME and REMOTE (the server's address, no port) may be NULL.
 * Routes around the tunnel are left out, and so is any value that is not
 * an address of its family. */
GVariant *shimmer_ip_config_to_variant(const ShimmerIpConfig *ip, const char *ifname,
                                       const char *remote);

G_END_DECLS
