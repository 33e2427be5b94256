/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * DNS for a tunnel: through systemd-resolved's D-Bus API
 * (org.freedesktop.resolve1: SetLinkDNS, SetLinkDomains,
 * SetLinkDefaultRoute, RevertLink) when resolved is on the system bus, else
 * through resolvconf(8) when installed ("resolvconf -a IFACE.shimmer" with a
 * resolv.conf fragment on stdin, "-d" to remove), else nothing is changed
 * and the caller logs a warning.
 */

typedef enum {
    SHIMMER_DNS_BACKEND_NONE,
    SHIMMER_DNS_BACKEND_RESOLVED,
    SHIMMER_DNS_BACKEND_RESOLVCONF,
} ShimmerDnsBackend;

typedef struct ShimmerDns ShimmerDns;

/* BUS: where to look for org.freedesktop.resolve1 (NULL: the system bus; a
 * test passes a private bus with a stand-in). RESOLVCONF: the resolvconf
 * program (NULL: found in PATH). Picks the backend now: resolved when
 * org.freedesktop.resolve1 has an owner (one the bus could only activate
 * does not count: it would not be serving /etc/resolv.conf). */
ShimmerDns *shimmer_dns_new(GDBusConnection *bus, const char *resolvconf);
void shimmer_dns_free(ShimmerDns *dns);
ShimmerDnsBackend shimmer_dns_get_backend(ShimmerDns *dns);
const char *shimmer_dns_backend_name(ShimmerDnsBackend backend);

/* Applies SERVERS (IPv4/IPv6 address strings) and DOMAINS (search domains;
 * a leading "~" marks a routing-only domain) to the link IFINDEX/IFNAME.
 * DEFAULT_ROUTE: the link should take all queries (redirect-gateway);
 * otherwise only queries for DOMAINS go there (resolved only). Remembers
 * the link so that shimmer_dns_revert() and shimmer_dns_revert_all() undo it.
 * Everything is checked before anything changes: a server that is not an
 * address or a domain that is not a name fails with
 * G_IO_ERROR_INVALID_ARGUMENT. No SERVERS: nothing to apply (an earlier
 * apply on the link is undone), TRUE. With SHIMMER_DNS_BACKEND_NONE:
 * G_IO_ERROR_NOT_SUPPORTED, for the caller's warning. Applying again to the
 * same link replaces its settings. Synchronous: each D-Bus call gives up
 * after 5 s, a resolvconf run is killed after 5 s. */
gboolean shimmer_dns_apply(ShimmerDns *dns, int ifindex, const char *ifname,
                           const char *const *servers, const char *const *domains,
                           gboolean default_route, GError **error);
/* Undoes what shimmer_dns_apply() did to the link (found by IFINDEX, or by
 * IFNAME); TRUE when there was nothing to undo. The link is forgotten even
 * when undoing fails (e.g. resolved left the bus): the error reports it. */
gboolean shimmer_dns_revert(ShimmerDns *dns, int ifindex, const char *ifname, GError **error);
/* Undoes every link this object configured (daemon shutdown). */
void shimmer_dns_revert_all(ShimmerDns *dns);

/* Removes what a crashed earlier run left behind: resolvconf entries named
 * "*.shimmer" for interfaces that no longer exist. */
void shimmer_dns_cleanup_stale(ShimmerDns *dns);

/* Where shimmer_dns_cleanup_stale() looks for resolvconf's records (one
 * file each); NULL: /run/resolvconf/interface (Debian's resolvconf) and
 * /run/resolvconf/interfaces (openresolv). For tests. */
void shimmer_dns_set_resolvconf_dir(ShimmerDns *dns, const char *dir);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerDns, shimmer_dns_free)

G_END_DECLS
