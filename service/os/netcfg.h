/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * The network configuration of one tunnel, applied through rtnetlink.
 *
 * A ShimmerNetcfg is a netlink connection to the kernel in the network
 * namespace the caller is in when it is created, plus an undo list. Every
 * address and route it adds successfully is recorded; shimmer_netcfg_rollback()
 * removes them all, newest first, sending the kernel back exactly the request
 * that added each one. That also works after the tun device is gone: the
 * kernel already dropped the device's addresses and routes then, and what is
 * left (a host route to the VPN server through the original gateway) is
 * removed. Things that exist already are never adopted: an add fails with
 * G_IO_ERROR_EXISTS instead of taking over someone else's route, so a rollback
 * removes only what this object created. Link settings (MTU, up/down) are not
 * recorded: they live and die with the tun device.
 *
 * One ShimmerNetcfg per tunnel session: create it before configuring, roll it
 * back when the session ends, free it. Calls are synchronous (the kernel
 * answers rtnetlink requests at once) and are bounded by a 5 s timeout. An
 * object is for one thread at a time.
 *
 * Interfaces are named by index (shimmer_tun_get_ifindex()), which the kernel
 * does not reuse soon, so an undo entry cannot hit a device that took the
 * old one's name. Messages name them ("tun0") as they were when the change
 * was made.
 *
 * Every function returns FALSE with ERROR set on failure, in the G_IO_ERROR
 * domain, the code derived from the kernel's errno (G_IO_ERROR_EXISTS for
 * EEXIST, G_IO_ERROR_PERMISSION_DENIED for EPERM, ...), the message naming
 * the object: "cannot add route 10.9.0.0/16 via tun0: File exists". When the
 * kernel explains itself (extended ack) the explanation follows in
 * parentheses. Bad arguments give G_IO_ERROR_INVALID_ARGUMENT and no request.
 */

typedef struct _ShimmerNetcfg ShimmerNetcfg;

/* Opens a NETLINK_ROUTE socket (close-on-exec) in the current network
 * namespace, with an empty undo list. */
ShimmerNetcfg *shimmer_netcfg_new(GError **error);

/* Closes the socket and frees NC. It does NOT roll back: what is left in the
 * undo list stays configured (call shimmer_netcfg_rollback() first). That
 * keeps a forked child, or a daemon handing its tunnel over, from tearing
 * down the network as a side effect of cleaning up memory. NULL is ignored. */
void shimmer_netcfg_free(ShimmerNetcfg *nc);

/* Sets the MTU of interface IFINDEX. For IPv6 on the interface the kernel
 * needs at least 1280 and disables IPv6 on it below that. */
gboolean shimmer_netcfg_link_set_mtu(ShimmerNetcfg *nc, int ifindex, guint mtu, GError **error);

/* Brings interface IFINDEX administratively up (UP TRUE) or down. */
gboolean shimmer_netcfg_link_set_up(ShimmerNetcfg *nc, int ifindex, gboolean up, GError **error);

/*
 * Adds address LOCAL (IPv4 or IPv6) to interface IFINDEX and records it.
 * - Without PEER (topology subnet, IPv6): LOCAL/PREFIX_LEN, as
 *   `ip addr add 10.8.0.2/24 dev tun0`; the kernel adds the prefix route.
 * - With PEER (topology net30 and p2p): LOCAL on this side, PEER on the far
 *   side, PREFIX_LEN applying to PEER (32 for a single peer), as
 *   `ip addr add 10.8.0.6 peer 10.8.0.5/32 dev tun0`; the kernel adds the
 *   route to PEER through the interface.
 * PEER must be of LOCAL's family; PREFIX_LEN at most 32 or 128. IPv6
 * addresses skip duplicate address detection: nobody else is on a tunnel,
 * and a tentative address would fail the first packets.
 */
gboolean shimmer_netcfg_addr_add(ShimmerNetcfg *nc, int ifindex, GInetAddress *local,
                                 guint prefix_len, GInetAddress *peer, GError **error);

/* Removes an address given as it was added, and drops it from the undo list
 * (also when the kernel says it was gone already). */
gboolean shimmer_netcfg_addr_remove(ShimmerNetcfg *nc, int ifindex, GInetAddress *local,
                                    guint prefix_len, GInetAddress *peer, GError **error);

/*
 * Adds a unicast route to DEST in the main table and records it.
 * - IFINDEX > 0 and GATEWAY NULL: DEST is reached directly through the
 *   interface (the usual route into a tun device).
 * - GATEWAY set: through that next hop; IFINDEX > 0 pins the interface (needed
 *   for IPv6 link-local gateways), 0 lets the kernel find it.
 * METRIC is the route priority; 0 takes the kernel's default (0 for IPv4,
 * 1024 for IPv6). DEST must have no bits set beyond its length
 * (GInetAddressMask ensures that) and GATEWAY must be of its family.
 * An identical route (same destination and metric) fails with
 * G_IO_ERROR_EXISTS and is left alone.
 */
gboolean shimmer_netcfg_route_add(ShimmerNetcfg *nc, GInetAddressMask *dest, int ifindex,
                                  GInetAddress *gateway, guint32 metric, GError **error);

/* Removes a route given as it was added, and drops it from the undo list
 * (also when the kernel says it was gone already). */
gboolean shimmer_netcfg_route_remove(ShimmerNetcfg *nc, GInetAddressMask *dest, int ifindex,
                                     GInetAddress *gateway, guint32 metric, GError **error);

/* Where the kernel would send a packet for one destination right now. */
typedef struct {
    /* The outgoing interface. */
    int ifindex;
    /* The next hop, or NULL when the destination is on the link itself. */
    GInetAddress *gateway;
    /* The source address the kernel would pick, or NULL. */
    GInetAddress *source;
    /* The destination is an address of this host: no route leads there. */
    gboolean local;
} ShimmerNetcfgRoute;

/* Frees the addresses in ROUTE and zeroes it; it can be reused. */
void shimmer_netcfg_route_clear(ShimmerNetcfgRoute *route);

/* Asks the kernel how it routes to DEST now (what `ip route get DEST`
 * shows) and fills OUT, which must be zeroed or cleared. Fails with the
 * kernel's reason, e.g. "Network is unreachable" when no route matches. */
gboolean shimmer_netcfg_route_lookup(ShimmerNetcfg *nc, GInetAddress *dest, ShimmerNetcfgRoute *out,
                                     GError **error);

/*
 * Pins HOST to the path it takes now: looks up the route to HOST and adds a
 * host route (/32 or /128) with the same interface and gateway, recorded in
 * the undo list. Used for the VPN server before routes are pointed into the
 * tunnel, so that the tunnel does not carry its own packets; call it BEFORE
 * adding routes that would capture HOST. Succeeds without adding anything
 * when HOST is an address of this machine, or when a host route to HOST with
 * the same metric exists already (it is left alone and not recorded).
 */
gboolean shimmer_netcfg_pin_host_route(ShimmerNetcfg *nc, GInetAddress *host, GError **error);

/*
 * redirect-gateway def1: sends everything of FAMILY (G_SOCKET_FAMILY_IPV4 or
 * _IPV6) into the tunnel without replacing the default route, by adding the
 * two halves of the address space (0.0.0.0/1 and 128.0.0.0/1, or ::/1 and
 * 8000::/1) through interface IFINDEX and optional GATEWAY with METRIC.
 * When SERVER is set it is pinned first (shimmer_netcfg_pin_host_route()).
 * All of it is recorded; on failure what was added so far stays recorded,
 * for the caller's rollback.
 */
gboolean shimmer_netcfg_redirect_def1(ShimmerNetcfg *nc, GSocketFamily family, int ifindex,
                                      GInetAddress *gateway, guint32 metric, GInetAddress *server,
                                      GError **error);

/* The rtm_protocol of the routes shimmerd's sessions add ("proto 115" in
 * `ip route`), so that routes a crashed daemon left behind can be told from
 * everyone else's: routes through a tun device go with the device, but a
 * pinned route to the server and net_gateway routes lead through the
 * machine's own interfaces. `shimmerd --config` keeps RTPROT_STATIC: the
 * daemon's start-up must not take a foreground client's routes. */
#define SHIMMER_NETCFG_RTPROT_SHIMMERD 115

/* The protocol of the routes NC adds from now on (RTPROT_STATIC at first).
 * Removing a route (shimmer_netcfg_route_remove) matches any protocol. */
void shimmer_netcfg_set_route_protocol(ShimmerNetcfg *nc, guint8 protocol);

/* Removes every route of PROTOCOL (above RTPROT_STATIC), in every table and
 * family: what a previous run that could not roll back left behind. The
 * routes removed are appended to REMOVED (nullable) as text. One already
 * gone meanwhile counts as removed; FALSE with the first other failure. */
gboolean shimmer_netcfg_remove_stale_routes(guint8 protocol, GPtrArray *removed, GError **error);

/* How many changes the undo list holds. */
guint shimmer_netcfg_get_n_undo(ShimmerNetcfg *nc);

/*
 * Removes everything in the undo list, newest first, and empties the list.
 * Something already gone (its device deleted, or removed by someone else)
 * counts as removed. Goes on past failures so that one stuck entry does not
 * keep the others configured; returns FALSE with the first failure ("cannot
 * remove route ...: ...", followed by how many more failed) if any.
 */
gboolean shimmer_netcfg_rollback(ShimmerNetcfg *nc, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerNetcfg, shimmer_netcfg_free)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ShimmerNetcfgRoute, shimmer_netcfg_route_clear)

G_END_DECLS
