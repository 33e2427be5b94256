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
 *
 * The backend is chosen once, when the object is made (a quick question to
 * the bus, before the daemon serves anyone).
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

/*
 * Changes run asynchronously on the thread-default main context of the
 * caller, one after the other in the order asked for, and never wait on
 * the main loop: each D-Bus call to resolved gives up after 5 s, a
 * resolvconf run is killed after 5 s. A change is never cancelled once
 * asked for (a revert must happen even if its caller went away): a
 * cancelled CANCELLABLE only makes the result G_IO_ERROR_CANCELLED, so
 * that a caller that is gone need not be called back. Freeing the object
 * drops changes not yet started.
 */

/* Applies SERVERS (IPv4/IPv6 address strings) and DOMAINS (search domains;
 * a leading "~" marks a routing-only domain) to the link IFINDEX/IFNAME.
 * DEFAULT_ROUTE: the link should take all queries (redirect-gateway);
 * otherwise only queries for DOMAINS go there (resolved only). Remembers
 * the link so that shimmer_dns_revert() and shimmer_dns_revert_all() undo it.
 * Everything is checked before anything changes: a server that is not an
 * address or a domain that is not a name fails with
 * G_IO_ERROR_INVALID_ARGUMENT. No SERVERS: nothing to apply (an earlier
 * apply on the link is undone), success. With SHIMMER_DNS_BACKEND_NONE:
 * G_IO_ERROR_NOT_SUPPORTED, for the caller's warning. Applying again to the
 * same link replaces its settings. */
void shimmer_dns_apply(ShimmerDns *dns, int ifindex, const char *ifname, const char *const *servers,
                       const char *const *domains, gboolean default_route,
                       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
gboolean shimmer_dns_apply_finish(ShimmerDns *dns, GAsyncResult *result, GError **error);

/* Per-link resolver settings beyond servers and domains (pushed `dns
 * server N dnssec` and `transport`), as systemd-resolved spells them. NULL
 * leaves resolved's global setting. Only resolved applies them
 * (SetLinkDNSSEC, SetLinkDNSOverTLS; a resolved too old for one skips it
 * with a debug line); resolvconf cannot, see
 * shimmer_dns_backend_takes_extra(). */
typedef struct {
    const char *dnssec;       /* "yes", "no", "allow-downgrade" */
    const char *dns_over_tls; /* "yes", "no", "opportunistic" */
} ShimmerDnsExtra;

/* shimmer_dns_apply() with EXTRA (may be NULL). Values of EXTRA other than
 * the ones above fail with G_IO_ERROR_INVALID_ARGUMENT before anything
 * changes. A failure of these two calls only warns: servers and domains
 * stay applied. */
void shimmer_dns_apply_full(ShimmerDns *dns, int ifindex, const char *ifname,
                            const char *const *servers, const char *const *domains,
                            gboolean default_route, const ShimmerDnsExtra *extra,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data);

/* Whether BACKEND can apply ShimmerDnsExtra (resolved only). */
gboolean shimmer_dns_backend_takes_extra(ShimmerDnsBackend backend);

/* Undoes what shimmer_dns_apply() did to the link (found by IFINDEX, or by
 * IFNAME); success when there was nothing to undo. The link is forgotten
 * even when undoing fails (e.g. resolved left the bus): the error reports
 * it. */
void shimmer_dns_revert(ShimmerDns *dns, int ifindex, const char *ifname, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data);
gboolean shimmer_dns_revert_finish(ShimmerDns *dns, GAsyncResult *result, GError **error);

/* Undoes every link this object configured (daemon shutdown), newest
 * first; failures are logged. Finish with g_task_propagate_boolean() or
 * shimmer_dns_revert_finish(). */
void shimmer_dns_revert_all(ShimmerDns *dns, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);

/* Removes what a crashed earlier run left behind: resolvconf entries named
 * "*.shimmer" for interfaces that no longer exist (each logged). Finish
 * with shimmer_dns_revert_finish(). */
void shimmer_dns_cleanup_stale(ShimmerDns *dns, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);

/* The bus connection was replaced (the daemon reconnected to its bus):
 * resolved is reached through BUS from now on. */
void shimmer_dns_set_bus(ShimmerDns *dns, GDBusConnection *bus);

/* Whether no change is queued or under way. */
gboolean shimmer_dns_is_idle(ShimmerDns *dns);
/* For the end of a process whose main loop has stopped: runs the
 * thread-default main context until every change is done, for at most
 * TIMEOUT_MS. TRUE when all are done. */
gboolean shimmer_dns_wait_idle(ShimmerDns *dns, guint timeout_ms);

/* Where shimmer_dns_cleanup_stale() looks for resolvconf's records (one
 * file each); NULL: /run/resolvconf/interface (Debian's resolvconf) and
 * /run/resolvconf/interfaces (openresolv). For tests. */
void shimmer_dns_set_resolvconf_dir(ShimmerDns *dns, const char *dir);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerDns, shimmer_dns_free)

G_END_DECLS
