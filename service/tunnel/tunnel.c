/* SPDX-License-Identifier: MIT */
/*
 * The client runner: sockets, the tun and the network configuration around
 * one engine. See client.h.
 */
#include "tunnel.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mss.h"
#include "os/netcfg.h"
#include "os/tun.h"
#include "packet.h"
#include "proxy.h"
#include "secure.h"
#include "tunnel/datapath.h"
#include "tunnel/deadline.h"
#include "tunnel/ipconfig.h"
#include "tunnel/offload.h"
#include "tunnel/proxyconn.h"
#include "tunnel/socksudp.h"

struct ShimmerTunnel {
    const ShimmerConfig *cfg;
    ShimmerTunnelOptions opts;
    ShimmerTunnelCallbacks cb;
    ShimmerEngine *engine;

    /* transport: the socket is ours, the workers read and write it once it
     * is a link of the data path */
    int sock;
    gboolean tcp;
    gboolean tcp_connecting;
    GSource *sock_out_source; /* a TCP connect in progress */
    GCancellable *resolve_cancel;
    GSocketAddress *remote;
    char *remote_text;
    /* Through a proxy: the negotiation under way, and for UDP the relay
     * (its socket pair's other end is SOCK) and the server it is for. */
    ShimmerProxyConn *proxy_conn;
    ShimmerSocksUdp *socks_udp;
    GInetSocketAddress *socks_server;

    /* The data path: its workers move the data packets; the control
     * channel and the timers stay here. */
    ShimmerDatapath *dpath;
    ShimmerDatapathLink *link;
    /* The one peer (the server), read by the workers' route hooks. */
    ShimmerDatapathPeer *peer;
    /* A data packet that reached this thread (no peer yet) decrypts here. */
    guint8 *plain;

    /* tun */
    ShimmerTun *tun;
    gboolean tun_configured;
    ShimmerNetcfg *net;
    /* What the tunnel asks for (set at every tunnel configuration, kept
     * until the next one), applied or not. */
    ShimmerIpConfig *ip;
    /* Looking up the host names of host-name routes (cancelled with the
     * tunnel configuration they belong to). */
    GCancellable *host_cancel;

    /* What the tunnel applied, for display (NULL-terminated char* arrays). */
    GPtrArray *addresses;
    GPtrArray *routes;
    GPtrArray *dns_servers;
    GPtrArray *dns_domains;
    /* DNS applied to this link (to be reverted before the tun goes). */
    gboolean dns_applied;
    /* Cancelled when the DNS settings being applied no longer matter. */
    GCancellable *dns_cancel;
    int dns_ifindex;
    char *dns_ifname;

    /* Credentials given up front (secrets: wiped when freed). */
    char *username;
    char *password;

    GSource *timer;
    gboolean stopping;
    gboolean finished;
    /* The server refused the credentials (AUTH_FAILED, not a challenge). */
    gboolean auth_failed;
    ShimmerTunnelFailure failure;

    char *tun_name;
};

static void pump(ShimmerTunnel *c);
static gboolean on_writable(gint fd, GIOCondition cond, gpointer user);
static gboolean open_via_proxy(ShimmerTunnel *c, const ShimmerConnection *conn, GInetAddress *addr);

/* A source for FD on the default context. Marked as one that may recurse
 * (none of its callbacks runs a nested loop): GLib otherwise blocks a source
 * while it dispatches by taking its descriptor out of the poll set and
 * putting it back, and each of those signals the context's wake-up
 * descriptor, two system calls per dispatch for nothing. */
static GSource *fd_source(int fd, GIOCondition cond, gboolean (*func)(gint, GIOCondition, gpointer),
                          gpointer user)
{
    GSource *s = g_unix_fd_source_new(fd, cond);
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))func, user, NULL);
    g_source_set_can_recurse(s, TRUE);
    g_source_attach(s, NULL);
    return s;
}

static void clog_(ShimmerTunnel *c, ShimmerLogLevel lvl, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void clog_(ShimmerTunnel *c, ShimmerLogLevel lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (c->cb.log)
        c->cb.log(c->cb.user, lvl, msg);
}

/* The wall clock the engine judges certificate validity by. */
static gint64 engine_realtime(gpointer user)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static void engine_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    ShimmerTunnel *c = user;
    if (c->cb.log)
        c->cb.log(c->cb.user, level, message);
}

/* A worker saw something the engine must act on (the server's exit, a
 * renegotiation due): serve the engine's timers now. Any thread. */
static void engine_wake(gpointer user)
{
    ShimmerTunnel *c = user;
    shimmer_deadline_source_poke(c->timer);
}

/* ---------- the data path's hooks ---------- */

static ShimmerDatapathPeer *route_tun(gpointer user, const guint8 *ip, gsize len)
{
    ShimmerTunnel *c = user;
    return g_atomic_pointer_get(&c->peer);
}

/* Every data packet on our link is the server's. */
static ShimmerDatapathPeer *route_link(gpointer user, ShimmerDatapathLink *link, const guint8 *pkt,
                                       gsize len, const struct sockaddr *from, socklen_t from_len)
{
    ShimmerTunnel *c = user;
    return g_atomic_pointer_get(&c->peer);
}

/* An IP packet for the tun from this thread (rare: a data packet before
 * the workers knew the peer). */
static void tun_write(ShimmerTunnel *c, const guint8 *pkt, gsize len)
{
    if (!shimmer_datapath_write_tun(c->dpath, pkt, len))
        clog_(c, SHIMMER_LOG_DEBUG, "tun write: %s", g_strerror(errno));
}

static void on_control(gpointer user, ShimmerDatapathLink *link, const guint8 *pkt, gsize len,
                       const struct sockaddr *from, socklen_t from_len)
{
    ShimmerTunnel *c = user;
    if (link != c->link)
        return;
    gsize tun_len = 0;
    if (c->plain == NULL)
        c->plain = g_malloc(SHIMMER_ENGINE_MAX_PLAIN);
    if (shimmer_engine_recv(c->engine, pkt, len, g_get_monotonic_time(), c->plain,
                            SHIMMER_ENGINE_MAX_PLAIN, &tun_len, NULL) == SHIMMER_RECV_TUN) {
        shimmer_mss_clamp(c->plain, tun_len, shimmer_engine_get_mss(c->engine, FALSE),
                          shimmer_engine_get_mss(c->engine, TRUE));
        tun_write(c, c->plain, tun_len);
        shimmer_wipe(c->plain, tun_len);
    }
    pump(c);
}

static void transport_failed(ShimmerTunnel *c, const char *why);

static void on_link_error(gpointer user, ShimmerDatapathLink *link, int err)
{
    ShimmerTunnel *c = user;
    if (link != c->link)
        return;
    if (c->tcp) {
        transport_failed(c, err == 0 ? "the server closed the connection" : g_strerror(err));
        return;
    }
    if (err != ECONNREFUSED) {
        clog_(c, SHIMMER_LOG_DEBUG, "UDP: %s", g_strerror(err));
        return;
    }
    /* ICMP port unreachable. Before the server ever answered, nobody
     * listens there: move on to the next remote now rather than after
     * server-poll-timeout. Later it is only a hint (a restarting server)
     * and is ignored. */
    if (shimmer_engine_get_state(c->engine) == SHIMMER_STATE_CONNECTING) {
        transport_failed(c, "connection refused (nothing listens on the server's port)");
        return;
    }
    clog_(c, SHIMMER_LOG_DEBUG, "ICMP port unreachable from the server");
}

static void datapath_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    ShimmerTunnel *c = user;
    if (c->cb.log)
        c->cb.log(c->cb.user, level, message);
}

/* ---------- transport ---------- */

static void update_peer_mss(ShimmerTunnel *c)
{
    if (c->peer != NULL)
        shimmer_datapath_peer_set_mss(c->peer, shimmer_engine_get_mss(c->engine, FALSE),
                                      shimmer_engine_get_mss(c->engine, TRUE));
}

/* The socket becomes a link of the data path with the server as its peer:
 * from now on the workers read it. */
static void attach_transport(ShimmerTunnel *c)
{
    c->link = c->tcp ? shimmer_datapath_add_tcp(c->dpath, c->sock)
                     : shimmer_datapath_add_udp(c->dpath, c->sock, TRUE);
    ShimmerDatapathPeer *peer =
        shimmer_datapath_peer_new(shimmer_engine_get_dataplane(c->engine), c->link, NULL, 0);
    g_atomic_pointer_set(&c->peer, peer);
    update_peer_mss(c);
}

static void close_transport(ShimmerTunnel *c)
{
    if (c->resolve_cancel) {
        g_cancellable_cancel(c->resolve_cancel);
        g_clear_object(&c->resolve_cancel);
    }
    g_clear_pointer(&c->proxy_conn, shimmer_proxy_conn_free);
    g_clear_pointer(&c->socks_udp, shimmer_socks_udp_free);
    if (c->sock_out_source) {
        g_source_destroy(c->sock_out_source);
        g_clear_pointer(&c->sock_out_source, g_source_unref);
    }
    ShimmerDatapathPeer *peer = g_atomic_pointer_exchange(&c->peer, NULL);
    if (peer != NULL) {
        /* No worker can still hold it when this returns. */
        shimmer_datapath_synchronize(c->dpath);
        shimmer_datapath_peer_free(peer);
    }
    if (c->link != NULL) {
        shimmer_datapath_remove_link(c->dpath, c->link);
        c->link = NULL;
    }
    if (c->sock >= 0) {
        close(c->sock);
        c->sock = -1;
    }
    c->tcp_connecting = FALSE;
}

static void transport_failed(ShimmerTunnel *c, const char *why)
{
    close_transport(c);
    shimmer_engine_transport_failed(c->engine, why, g_get_monotonic_time());
    pump(c);
}

/* A packet the engine made (control, ack, ping, exit notification). */
static void send_packet(ShimmerTunnel *c, const guint8 *pkt, gsize len)
{
    if (c->link == NULL)
        return;
    if (!shimmer_datapath_link_send(c->link, pkt, len, NULL, 0))
        clog_(c, SHIMMER_LOG_DEBUG, "send: %s",
              c->tcp ? "the connection is stuck" : g_strerror(errno));
}

/* A TCP connect finished (or failed). */
static gboolean on_writable(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerTunnel *c = user;
    g_clear_pointer(&c->sock_out_source, g_source_unref);
    int err = 0;
    socklen_t l = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err != 0) {
        transport_failed(c, g_strerror(err));
        return G_SOURCE_REMOVE;
    }
    c->tcp_connecting = FALSE;
    clog_(c, SHIMMER_LOG_INFO, "TCP connection to %s established", c->remote_text);
    attach_transport(c);
    shimmer_engine_transport_up(c->engine, TRUE, g_get_monotonic_time());
    pump(c);
    return G_SOURCE_REMOVE;
}

static void start_socket(ShimmerTunnel *c, GInetAddress *addr, guint16 port, gboolean tcp)
{
    g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, port);
    struct sockaddr_storage ss;
    g_autoptr(GError) error = NULL;
    if (!g_socket_address_to_native(sa, &ss, sizeof(ss), &error)) {
        transport_failed(c, error->message);
        return;
    }
    int family = g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
    c->sock = socket(family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->sock < 0) {
        transport_failed(c, g_strerror(errno));
        return;
    }
    if (c->cfg->mark >= 0)
        setsockopt(c->sock, SOL_SOCKET, SO_MARK, &c->cfg->mark, sizeof(int));
    /* Room for the bursts a batch of 64 KB reads and GSO sends makes. */
    int buf = 4 * 1024 * 1024;
    setsockopt(c->sock, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    setsockopt(c->sock, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    g_free(c->remote_text);
    g_autofree char *a = g_inet_address_to_string(addr);
    c->remote_text = g_strdup_printf(family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
    g_clear_object(&c->remote);
    c->remote = g_steal_pointer(&sa);
    c->tcp = tcp;
    socklen_t sl = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int rc = connect(c->sock, (struct sockaddr *)&ss, sl);
    if (rc < 0 && !(tcp && errno == EINPROGRESS)) {
        transport_failed(c, g_strerror(errno));
        return;
    }
    if (tcp) {
        c->tcp_connecting = TRUE;
        c->sock_out_source = fd_source(c->sock, G_IO_OUT, on_writable, c);
        clog_(c, SHIMMER_LOG_INFO, "connecting to %s over TCP", c->remote_text);
        return;
    }
    attach_transport(c);
    clog_(c, SHIMMER_LOG_INFO, "sending to %s over UDP", c->remote_text);
    shimmer_engine_transport_up(c->engine, FALSE, g_get_monotonic_time());
}

typedef struct {
    ShimmerTunnel *c;
    guint index;
} ResolveData;

static void on_resolved(GObject *src, GAsyncResult *res, gpointer user)
{
    ResolveData *rd = user;
    ShimmerTunnel *c = rd->c;
    guint index = rd->index;
    g_free(rd);
    g_autoptr(GError) error = NULL;
    GList *addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(src), res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    g_clear_object(&c->resolve_cancel);
    ShimmerConnection *conn = g_ptr_array_index(c->cfg->connections, index);
    GInetAddress *pick = NULL;
    for (GList *l = addrs; l != NULL && pick == NULL; l = l->next) {
        GSocketFamily f = g_inet_address_get_family(l->data);
        if (conn->family == SHIMMER_FAMILY_ANY ||
            (conn->family == SHIMMER_FAMILY_INET && f == G_SOCKET_FAMILY_IPV4) ||
            (conn->family == SHIMMER_FAMILY_INET6 && f == G_SOCKET_FAMILY_IPV6))
            pick = l->data;
    }
    if (pick == NULL) {
        g_autofree char *why = g_strdup_printf("cannot resolve %s: %s", conn->host,
                                               error ? error->message : "no usable address");
        g_resolver_free_addresses(addrs);
        transport_failed(c, why);
        return;
    }
    g_object_ref(pick);
    g_resolver_free_addresses(addrs);
    if (!open_via_proxy(c, conn, pick))
        start_socket(c, pick, conn->port, conn->transport == SHIMMER_TRANSPORT_TCP);
    g_object_unref(pick);
    pump(c);
}

static void open_transport(ShimmerTunnel *c, guint index)
{
    close_transport(c);
    ShimmerConnection *conn = g_ptr_array_index(c->cfg->connections, index);
    /* TCP through a proxy: the proxy looks the server up. */
    if (conn->proxy != NULL && conn->transport == SHIMMER_TRANSPORT_TCP) {
        open_via_proxy(c, conn, NULL);
        return;
    }
    g_autoptr(GInetAddress) literal = g_inet_address_new_from_string(conn->host);
    if (literal != NULL) {
        if (!open_via_proxy(c, conn, literal))
            start_socket(c, literal, conn->port, conn->transport == SHIMMER_TRANSPORT_TCP);
        return;
    }
    g_autofree char *host = NULL;
    if (c->cfg->remote_random_hostname) {
        /* A random label in front defeats DNS caching of a load balancer. */
        g_autoptr(GString) s = g_string_new(NULL);
        for (gsize i = 0; i < 6; i++)
            g_string_append_printf(s, "%02x", g_random_int_range(0, 256));
        host = g_strdup_printf("%s.%s", s->str, conn->host);
    } else {
        host = g_strdup(conn->host);
    }
    clog_(c, SHIMMER_LOG_INFO, "resolving %s", host);
    ResolveData *rd = g_new0(ResolveData, 1);
    rd->c = c;
    rd->index = index;
    c->resolve_cancel = g_cancellable_new();
    g_autoptr(GResolver) resolver = g_resolver_get_default();
    g_resolver_lookup_by_name_async(resolver, host, c->resolve_cancel, on_resolved, rd);
}

/* ---------- through a proxy ---------- */

static void proxy_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    ShimmerTunnel *c = user;
    if (c->cb.log)
        c->cb.log(c->cb.user, level, message);
}

static void on_socks_closed(gpointer user, const char *why)
{
    transport_failed(user, why);
}

/* SOCK is connected (here: through a proxy): it becomes the transport and
 * the engine may start. */
static void transport_ready(ShimmerTunnel *c, gboolean tcp)
{
    c->tcp = tcp;
    /* A SOCKS relay's socket pair end has no GSO or GRO: the data path's
     * probes find that and send and read datagram by datagram. */
    attach_transport(c);
    shimmer_engine_transport_up(c->engine, tcp, g_get_monotonic_time());
}

/* The proxy's socket becomes the transport, as a direct one would. */
static void on_proxy_done(gpointer user, ShimmerProxyLink *link, const GError *error)
{
    ShimmerTunnel *c = user;
    g_clear_pointer(&c->proxy_conn, shimmer_proxy_conn_free);
    if (link == NULL) {
        transport_failed(c, error->message);
        return;
    }
    ShimmerConnection *conn =
        g_ptr_array_index(c->cfg->connections, shimmer_engine_get_connection_index(c->engine));
    g_autofree char *what = shimmer_proxy_describe(conn->proxy);
    g_autofree char *via = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(link->proxy));
    gboolean tcp = link->relay == NULL;
    g_clear_object(&c->remote);
    g_free(c->remote_text);
    if (tcp) {
        c->remote = G_SOCKET_ADDRESS(g_object_ref(link->proxy));
        c->remote_text = g_strdup_printf("%s:%u via %s", conn->host, conn->port, via);
        c->sock = link->fd;
        link->fd = -1;
        clog_(c, SHIMMER_LOG_INFO, "the %s (%s) opened a TCP stream to %s:%u (authentication %s)",
              what, via, conn->host, conn->port, link->auth);
    } else {
        g_autofree char *relay = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(link->relay));
        g_autofree char *server =
            g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(c->socks_server));
        /* The datagrams go to the relay: that is the address to keep
         * outside the tunnel. */
        c->remote = G_SOCKET_ADDRESS(g_object_ref(link->relay));
        c->remote_text = g_strdup_printf("%s via %s", server, relay);
        clog_(c, SHIMMER_LOG_INFO,
              "sending to %s over UDP through the %s (relay %s, authentication %s)", server, what,
              relay, link->auth);
        g_autoptr(GError) err = NULL;
        c->socks_udp = shimmer_socks_udp_new(g_steal_pointer(&link), c->socks_server, c->cfg->mark,
                                             on_socks_closed, c, &c->sock, &err);
        if (c->socks_udp == NULL) {
            transport_failed(c, err->message);
            return;
        }
    }
    transport_ready(c, tcp);
    shimmer_proxy_link_free(link);
    pump(c);
}

/* Starts the connection through CONN's proxy, if it has one (FALSE: it
 * has not). ADDR: the server's address for UDP (the datagrams name it);
 * NULL for TCP, where the proxy looks the server's name up. */
static gboolean open_via_proxy(ShimmerTunnel *c, const ShimmerConnection *conn, GInetAddress *addr)
{
    if (conn->proxy == NULL)
        return FALSE;
    gboolean udp = conn->transport != SHIMMER_TRANSPORT_TCP;
    g_clear_object(&c->socks_server);
    g_autofree char *host = NULL;
    if (udp) {
        c->socks_server = G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(addr, conn->port));
        host = g_inet_address_to_string(addr);
    }
    ShimmerProxyConnOptions o = {
        .proxy = conn->proxy,
        .host = udp ? host : conn->host,
        .port = conn->port,
        .udp = udp,
        .mark = c->cfg->mark,
        .timeout_s = conn->connect_timeout,
        .done = on_proxy_done,
        .log = proxy_log,
        .user = c,
    };
    g_autoptr(GError) error = NULL;
    c->proxy_conn = shimmer_proxy_conn_start(&o, &error);
    if (c->proxy_conn == NULL)
        transport_failed(c, error->message);
    return TRUE;
}

/* ---------- tun configuration ---------- */

static gboolean add_addr(ShimmerTunnel *c, int ifindex, const char *local, guint bits,
                         const char *peer, GError **error)
{
    g_autoptr(GInetAddress) l = g_inet_address_new_from_string(local);
    g_autoptr(GInetAddress) p = peer ? g_inet_address_new_from_string(peer) : NULL;
    if (l == NULL || (peer != NULL && p == NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad address %s", local);
        return FALSE;
    }
    return shimmer_netcfg_addr_add(c->net, ifindex, l, bits, p, error);
}

static gboolean add_route(ShimmerTunnel *c, int ifindex, const char *net, guint bits, guint metric,
                          GError **error)
{
    g_autofree char *text = g_strdup_printf("%s/%u", net, bits);
    g_autoptr(GInetAddressMask) mask = g_inet_address_mask_new_from_string(text, error);
    if (mask == NULL)
        return FALSE;
    return shimmer_netcfg_route_add(c->net, mask, ifindex, NULL, metric, error);
}

/* A route that must bypass the tunnel (gateway net_gateway): through the
 * interface and gateway the network is reached by now. */
static gboolean add_route_outside(ShimmerTunnel *c, const char *net, guint bits, GError **error)
{
    g_autoptr(GInetAddress) a = g_inet_address_new_from_string(net);
    g_auto(ShimmerNetcfgRoute) cur = {0};
    if (a == NULL || !shimmer_netcfg_route_lookup(c->net, a, &cur, error))
        return FALSE;
    g_autofree char *text = g_strdup_printf("%s/%u", net, bits);
    g_autoptr(GInetAddressMask) mask = g_inet_address_mask_new_from_string(text, error);
    if (mask == NULL)
        return FALSE;
    return shimmer_netcfg_route_add(c->net, mask, cur.ifindex, cur.gateway, 0, error);
}

static void clear_applied(ShimmerTunnel *c)
{
    g_ptr_array_set_size(c->addresses, 0);
    g_ptr_array_set_size(c->routes, 0);
    g_ptr_array_set_size(c->dns_servers, 0);
    g_ptr_array_set_size(c->dns_domains, 0);
}

static void copy_strings(GPtrArray *to, GPtrArray *from)
{
    g_ptr_array_set_size(to, 0);
    for (guint i = 0; i < from->len; i++)
        g_ptr_array_add(to, g_strdup(g_ptr_array_index(from, i)));
}

static void on_dns_applied(GObject *source, GAsyncResult *result, gpointer user)
{
    g_autoptr(GError) error = NULL;
    if (g_task_propagate_boolean(G_TASK(result), &error)) {
        ShimmerTunnel *c = user;
        for (guint i = 0; i < c->dns_servers->len; i++)
            clog_(c, SHIMMER_LOG_INFO, "DNS server %s on %s (%s)",
                  (char *)g_ptr_array_index(c->dns_servers, i), c->dns_ifname,
                  shimmer_dns_backend_name(shimmer_dns_get_backend(c->opts.dns)));
        for (guint i = 0; i < c->dns_domains->len; i++)
            clog_(c, SHIMMER_LOG_INFO, "DNS domain %s on %s",
                  (char *)g_ptr_array_index(c->dns_domains, i), c->dns_ifname);
        return;
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* the tunnel, or this configuration of it, is gone */
    ShimmerTunnel *c = user;
    clog_(c, SHIMMER_LOG_WARNING, "cannot configure DNS on %s: %s",
          c->dns_ifname ? c->dns_ifname : "the tunnel", error->message);
    g_ptr_array_set_size(c->dns_servers, 0);
    g_ptr_array_set_size(c->dns_domains, 0);
    if (c->cb.network_changed)
        c->cb.network_changed(c->cb.user);
}

/* Pushed `dns server N dnssec|transport` as resolved spells them; what the
 * DNS backend cannot do is said once in the log. */
static void dns_extra(ShimmerTunnel *c, const ShimmerIpConfig *ip, ShimmerDnsExtra *out)
{
    static const char *const dnssec[] = {
        [SHIMMER_DNSSEC_YES] = "yes",
        [SHIMMER_DNSSEC_NO] = "no",
        [SHIMMER_DNSSEC_OPTIONAL] = "allow-downgrade",
    };
    if (ip->dnssec != SHIMMER_DNSSEC_UNSET)
        out->dnssec = dnssec[ip->dnssec];
    if (ip->dns_transport == SHIMMER_DNS_TRANSPORT_DOT)
        out->dns_over_tls = "yes";
    else if (ip->dns_transport == SHIMMER_DNS_TRANSPORT_PLAIN)
        out->dns_over_tls = "no";
    else if (ip->dns_transport == SHIMMER_DNS_TRANSPORT_DOH)
        clog_(c, SHIMMER_LOG_WARNING,
              "the server asks for DNS over HTTPS, which the system resolver does not offer: "
              "plain DNS is used");
    if ((out->dnssec || out->dns_over_tls) &&
        !shimmer_dns_backend_takes_extra(shimmer_dns_get_backend(c->opts.dns))) {
        clog_(c, SHIMMER_LOG_WARNING,
              "the server's DNSSEC or DNS-over-TLS setting needs systemd-resolved; not applied");
        out->dnssec = out->dns_over_tls = NULL;
    }
}

static void apply_dns(ShimmerTunnel *c, int ifindex, const char *dev)
{
    const ShimmerIpConfig *ip = c->ip;
    if (c->opts.dns == NULL) {
        const ShimmerConfig *p = shimmer_engine_get_pushed(c->engine);
        for (guint i = 0; i < p->dhcp_options->len; i++) {
            ShimmerDhcpOption *o = g_ptr_array_index(p->dhcp_options, i);
            clog_(c, SHIMMER_LOG_INFO,
                  "pushed %s %s (not applied: DNS setup comes with the "
                  "shimmerd service)",
                  o->type, o->value ? o->value : "");
        }
        return;
    }
    if (ip->dns_servers->len == 0 && ip->dns_domains->len == 0)
        return;
    if (shimmer_dns_get_backend(c->opts.dns) == SHIMMER_DNS_BACKEND_NONE) {
        clog_(c, SHIMMER_LOG_WARNING,
              "the server sent DNS settings, but neither systemd-resolved nor resolvconf is "
              "available: DNS is left unchanged");
        return;
    }
    /* Shown as applied at once (the change takes milliseconds); taken
     * back, with a warning, if it fails. A revert queued later always runs
     * after it. */
    c->dns_applied = TRUE;
    c->dns_ifindex = ifindex;
    g_free(c->dns_ifname);
    c->dns_ifname = g_strdup(dev);
    copy_strings(c->dns_servers, ip->dns_servers);
    copy_strings(c->dns_domains, ip->dns_domains);
    if (c->dns_cancel == NULL)
        c->dns_cancel = g_cancellable_new();
    ShimmerDnsExtra extra = {0};
    dns_extra(c, ip, &extra);
    shimmer_dns_apply_full(c->opts.dns, ifindex, dev, (const char *const *)ip->dns_servers->pdata,
                           (const char *const *)ip->dns_domains->pdata, ip->redirect, &extra,
                           c->dns_cancel, on_dns_applied, c);
}

static void on_dns_reverted(GObject *source, GAsyncResult *result, gpointer user)
{
    g_autofree char *ifname = user;
    g_autoptr(GError) error = NULL;
    /* The tunnel may be gone by now: the daemon's log hears of it. */
    if (!g_task_propagate_boolean(G_TASK(result), &error))
        g_warning("reverting DNS on %s: %s", ifname, error->message);
}

static void revert_dns(ShimmerTunnel *c)
{
    if (c->dns_cancel != NULL) {
        g_cancellable_cancel(c->dns_cancel);
        g_clear_object(&c->dns_cancel);
    }
    if (!c->dns_applied)
        return;
    c->dns_applied = FALSE;
    shimmer_dns_revert(c->opts.dns, c->dns_ifindex, c->dns_ifname, NULL, on_dns_reverted,
                       g_strdup(c->dns_ifname));
    g_clear_pointer(&c->dns_ifname, g_free);
}

/* Sets what c->ip says on the tun: addresses, redirect-gateway, routes,
 * DNS, in that order, and lists what was applied. */
static gboolean apply_ip_config(ShimmerTunnel *c, int ifindex, const char *dev, GError **error)
{
    const ShimmerIpConfig *ip = c->ip;
    if (ip->ipv4_address != NULL) {
        if (!add_addr(c, ifindex, ip->ipv4_address, ip->ipv4_prefix, ip->ipv4_peer, error))
            return FALSE;
        g_ptr_array_add(c->addresses, g_strdup_printf("%s/%u", ip->ipv4_address, ip->ipv4_prefix));
        if (ip->ipv4_peer != NULL)
            clog_(c, SHIMMER_LOG_INFO, "%s: %s peer %s, mtu %u", dev, ip->ipv4_address,
                  ip->ipv4_peer, ip->mtu);
        else
            clog_(c, SHIMMER_LOG_INFO, "%s: %s/%u, mtu %u", dev, ip->ipv4_address, ip->ipv4_prefix,
                  ip->mtu);
    }
    if (ip->ipv6_address != NULL) {
        if (!add_addr(c, ifindex, ip->ipv6_address, ip->ipv6_prefix, NULL, error))
            return FALSE;
        g_ptr_array_add(c->addresses, g_strdup_printf("%s/%u", ip->ipv6_address, ip->ipv6_prefix));
        clog_(c, SHIMMER_LOG_INFO, "%s: %s/%u", dev, ip->ipv6_address, ip->ipv6_prefix);
    }

    if (ip->redirect) {
        /* Always the def1 way: two /1 routes override the default route
         * without deleting it, and a host route keeps the server reachable
         * outside the tunnel. */
        GInetAddress *server =
            c->remote && ip->pin_server
                ? g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(c->remote))
                : NULL;
        if (ip->ipv4_default) {
            GInetAddress *pin4 =
                server && g_inet_address_get_family(server) == G_SOCKET_FAMILY_IPV4 ? server : NULL;
            if (!shimmer_netcfg_redirect_def1(c->net, G_SOCKET_FAMILY_IPV4, ifindex, NULL, 0, pin4,
                                              error))
                return FALSE;
            g_ptr_array_add(c->routes, g_strdup("0.0.0.0/1"));
            g_ptr_array_add(c->routes, g_strdup("128.0.0.0/1"));
            clog_(c, SHIMMER_LOG_INFO, "redirect-gateway: IPv4 default through %s", dev);
        }
        if (ip->ipv6_default) {
            GInetAddress *pin6 =
                server && g_inet_address_get_family(server) == G_SOCKET_FAMILY_IPV6 ? server : NULL;
            if (!shimmer_netcfg_redirect_def1(c->net, G_SOCKET_FAMILY_IPV6, ifindex, NULL, 0, pin6,
                                              error))
                return FALSE;
            g_ptr_array_add(c->routes, g_strdup("::/1"));
            g_ptr_array_add(c->routes, g_strdup("8000::/1"));
            clog_(c, SHIMMER_LOG_INFO, "redirect-gateway: IPv6 default through %s", dev);
        }
    }
    for (guint i = 0; i < ip->routes->len; i++) {
        ShimmerIpRoute *r = g_ptr_array_index(ip->routes, i);
        gboolean ok = r->outside ? add_route_outside(c, r->network, r->prefix, error)
                                 : add_route(c, ifindex, r->network, r->prefix, r->metric, error);
        if (!ok)
            return FALSE;
        /* Only routes into the tunnel are listed; net_gateway ones lead
         * around it. */
        if (!r->outside)
            g_ptr_array_add(c->routes, g_strdup_printf("%s/%u", r->network, r->prefix));
        clog_(c, SHIMMER_LOG_INFO, "route %s/%u via %s", r->network, r->prefix,
              r->outside ? "net_gateway" : dev);
    }
    apply_dns(c, ifindex, dev);
    return TRUE;
}

/* ---------- host-name routes ---------- */

typedef struct {
    ShimmerTunnel *c; /* valid unless the lookup was cancelled */
    char *host;
    guint prefix;
    guint metric;
    gboolean outside;
} HostLookup;

static void host_lookup_free(HostLookup *h)
{
    g_free(h->host);
    g_free(h);
}

/* ADDR's network of PREFIX bits, as text (the kernel wants no host bits). */
static char *network_of(GInetAddress *addr, guint prefix)
{
    guint8 b[4];
    memcpy(b, g_inet_address_to_bytes(addr), 4);
    guint32 v = ((guint32)b[0] << 24) | ((guint32)b[1] << 16) | ((guint32)b[2] << 8) | b[3];
    v &= prefix == 0 ? 0 : 0xffffffffu << (32 - MIN(prefix, 32u));
    return g_strdup_printf("%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

/* Adds the route for each IPv4 address of a host (applied when this client
 * configures the network; always added to NetworkConfig). */
static void add_host_routes(ShimmerTunnel *c, const HostLookup *h, GList *addresses)
{
    const char *dev = shimmer_tun_get_name(c->tun);
    int ifindex = shimmer_tun_get_ifindex(c->tun);
    guint added = 0;
    for (GList *l = addresses; l != NULL; l = l->next) {
        GInetAddress *a = l->data;
        if (g_inet_address_get_family(a) != G_SOCKET_FAMILY_IPV4)
            continue;
        g_autofree char *net = network_of(a, h->prefix);
        gboolean dup = FALSE;
        for (guint i = 0; i < c->ip->routes->len && !dup; i++) {
            ShimmerIpRoute *r = g_ptr_array_index(c->ip->routes, i);
            dup = strcmp(r->network, net) == 0 && r->prefix == h->prefix;
        }
        if (dup)
            continue;
        if (!c->opts.no_netcfg) {
            g_autoptr(GError) error = NULL;
            gboolean ok = h->outside ? add_route_outside(c, net, h->prefix, &error)
                                     : add_route(c, ifindex, net, h->prefix, h->metric, &error);
            if (!ok) {
                clog_(c, SHIMMER_LOG_WARNING, "route %s (%s): %s", h->host, net, error->message);
                continue;
            }
            if (!h->outside)
                g_ptr_array_add(c->routes, g_strdup_printf("%s/%u", net, h->prefix));
        }
        shimmer_ip_config_add_route(c->ip, net, h->prefix, h->metric, h->outside);
        clog_(c, SHIMMER_LOG_INFO, "route %s: %s/%u via %s", h->host, net, h->prefix,
              h->outside ? "net_gateway" : dev);
        added++;
    }
    if (added == 0)
        clog_(c, SHIMMER_LOG_WARNING, "route %s: no IPv4 address to route", h->host);
    else if (c->cb.network_changed)
        c->cb.network_changed(c->cb.user);
}

static void on_host_resolved(GObject *src, GAsyncResult *res, gpointer user)
{
    HostLookup *h = user;
    g_autoptr(GError) error = NULL;
    GList *addresses = g_resolver_lookup_by_name_finish(G_RESOLVER(src), res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        host_lookup_free(h); /* the client may be gone */
        return;
    }
    ShimmerTunnel *c = h->c;
    if (addresses == NULL)
        clog_(c, SHIMMER_LOG_WARNING, "route %s: cannot look the name up: %s", h->host,
              error->message);
    else
        add_host_routes(c, h, addresses);
    g_resolver_free_addresses(addresses);
    host_lookup_free(h);
}

static void cancel_host_lookups(ShimmerTunnel *c)
{
    if (c->host_cancel != NULL) {
        g_cancellable_cancel(c->host_cancel);
        g_clear_object(&c->host_cancel);
    }
}

/* Starts the lookups of the plan's host-name routes; `remote_host` is the
 * server's address, at once. */
static void start_host_routes(ShimmerTunnel *c)
{
    if (c->ip->host_routes->len == 0)
        return;
    c->host_cancel = g_cancellable_new();
    g_autoptr(GResolver) resolver = g_resolver_get_default();
    for (guint i = 0; i < c->ip->host_routes->len; i++) {
        const ShimmerIpHostRoute *r = g_ptr_array_index(c->ip->host_routes, i);
        HostLookup *h = g_new0(HostLookup, 1);
        h->c = c;
        h->host = g_strdup(r->host);
        h->prefix = r->prefix;
        h->metric = r->metric;
        h->outside = r->outside;
        if (strcmp(r->host, "remote_host") == 0) {
            GInetAddress *server =
                c->remote ? g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(c->remote))
                          : NULL;
            GList one = {.data = server};
            if (server != NULL)
                add_host_routes(c, h, &one);
            host_lookup_free(h);
            continue;
        }
        clog_(c, SHIMMER_LOG_INFO, "route %s: looking the name up", r->host);
        g_resolver_lookup_by_name_async(resolver, r->host, c->host_cancel, on_host_resolved, h);
    }
}

static gboolean configure_tun(ShimmerTunnel *c, GError **error)
{
    const ShimmerConfig *cfg = c->cfg;
    if (c->tun == NULL) {
        const char *name = c->opts.tun_name;
        if (name == NULL)
            name = cfg->dev == NULL || strcmp(cfg->dev, "tun") == 0 ? "tun%d" : cfg->dev;
        c->tun = shimmer_datapath_open_tun(c->dpath, name, error);
        if (c->tun == NULL)
            return FALSE;
        clog_(c, SHIMMER_LOG_INFO, "tun device %s", shimmer_tun_get_name(c->tun));
    }
    /* What the tunnel asks for, decided once: applied below, or shown to
     * the one who configures the network instead. */
    cancel_host_lookups(c);
    g_clear_pointer(&c->ip, shimmer_ip_config_free);
    c->ip = shimmer_ip_config_new(cfg, shimmer_engine_get_pushed(c->engine));
    for (guint i = 0; i < c->ip->warnings->len; i++)
        clog_(c, SHIMMER_LOG_WARNING, "%s", (char *)g_ptr_array_index(c->ip->warnings, i));

    /* A reconnect may bring a different address: start from a clean slate. */
    revert_dns(c);
    clear_applied(c);
    if (c->net != NULL) {
        shimmer_netcfg_rollback(c->net, NULL);
        g_clear_pointer(&c->net, shimmer_netcfg_free);
    }
    c->net = shimmer_netcfg_new(error);
    if (c->net != NULL && c->opts.route_protocol != 0)
        shimmer_netcfg_set_route_protocol(c->net, c->opts.route_protocol);
    if (c->net == NULL)
        return FALSE;
    int ifindex = shimmer_tun_get_ifindex(c->tun);
    const char *dev = shimmer_tun_get_name(c->tun);
    if (!shimmer_netcfg_link_set_mtu(c->net, ifindex, c->ip->mtu, error) ||
        !shimmer_netcfg_link_set_up(c->net, ifindex, TRUE, error))
        return FALSE;
    /* The workers' buffers follow the MTU; the MSS to clamp to follows the
     * push. */
    shimmer_datapath_attach_tun(c->dpath, c->tun, c->ip->mtu);
    update_peer_mss(c);
    if (c->opts.no_netcfg) {
        clog_(c, SHIMMER_LOG_INFO,
              "%s: mtu %u, up; addresses, routes and DNS are left to the "
              "caller",
              dev, c->ip->mtu);
    } else if (!apply_ip_config(c, ifindex, dev, error)) {
        return FALSE;
    }
    c->tun_configured = TRUE;
    start_host_routes(c);
    return TRUE;
}

static void teardown_tun(ShimmerTunnel *c)
{
    cancel_host_lookups(c);
    /* DNS first: the link must still exist for the resolver to forget it. */
    revert_dns(c);
    clear_applied(c);
    if (c->net != NULL) {
        g_autoptr(GError) error = NULL;
        if (!shimmer_netcfg_rollback(c->net, &error))
            clog_(c, SHIMMER_LOG_WARNING, "removing the tunnel's routes: %s", error->message);
        g_clear_pointer(&c->net, shimmer_netcfg_free);
    }
    /* No worker reads or writes it once this returns. */
    shimmer_datapath_detach_tun(c->dpath);
    g_clear_pointer(&c->tun, shimmer_tun_close);
    c->tun_configured = FALSE;
}

/* ---------- the loop ---------- */

static void on_timer(gpointer user)
{
    ShimmerTunnel *c = user;
    shimmer_engine_handle_timeout(c->engine, g_get_monotonic_time());
    pump(c);
}

/* What the data path did, for the log (and the tests that read it). */
static void log_datapath(ShimmerTunnel *c)
{
    ShimmerDatapathStats st;
    shimmer_datapath_get_stats(c->dpath, &st);
    g_autofree char *text = shimmer_datapath_format_stats(&st);
    clog_(c, SHIMMER_LOG_INFO,
          "data path counters: %s, send-order waits timed out %" G_GUINT64_FORMAT, text,
          shimmer_dataplane_get_turn_timeouts(shimmer_engine_get_dataplane(c->engine)));
}

static void finish(ShimmerTunnel *c, ShimmerTunnelFailure failure, const char *reason)
{
    if (c->finished)
        return;
    c->finished = TRUE;
    c->failure = failure;
    close_transport(c);
    teardown_tun(c);
    log_datapath(c);
    if (c->cb.finished)
        c->cb.finished(c->cb.user, failure != SHIMMER_TUNNEL_FAILURE_NONE, reason);
}

/* Sends every packet the engine has due now. */
static void write_packets(ShimmerTunnel *c)
{
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    gssize len;
    while ((len = shimmer_engine_write_pkt(c->engine, buf, sizeof(buf), g_get_monotonic_time())) >
           0)
        send_packet(c, buf, (gsize)len);
}

static void pump(ShimmerTunnel *c)
{
    ShimmerEvent ev;
    gboolean again = TRUE;
    while (again && !c->finished) {
        again = FALSE;
        write_packets(c);
        while (shimmer_engine_pop_event(c->engine, &ev)) {
            again = TRUE;
            switch (ev.type) {
            case SHIMMER_EVENT_STATE:
                if (c->cb.state_changed)
                    c->cb.state_changed(c->cb.user, ev.state, ev.state_change.reason);
                break;
            case SHIMMER_EVENT_CONNECT:
                open_transport(c, ev.connect.index);
                break;
            case SHIMMER_EVENT_DISCONNECT_TRANSPORT:
                close_transport(c);
                break;
            case SHIMMER_EVENT_TUN_CONFIG: {
                g_autoptr(GError) error = NULL;
                if (!configure_tun(c, &error)) {
                    clog_(c, SHIMMER_LOG_ERROR, "cannot configure the tunnel: %s", error->message);
                    shimmer_event_clear(&ev);
                    finish(c, SHIMMER_TUNNEL_FAILURE_NETWORK_CONFIG, "cannot configure the tunnel");
                    return;
                }
                break;
            }
            case SHIMMER_EVENT_NEED_CREDENTIALS:
                if (c->cb.need_credentials)
                    c->cb.need_credentials(c->cb.user, &ev.credentials);
                break;
            case SHIMMER_EVENT_AUTH_FAILED:
                c->auth_failed = TRUE;
                break;
            case SHIMMER_EVENT_INFO:
                if (c->cb.info)
                    c->cb.info(c->cb.user, ev.info.text);
                break;
            case SHIMMER_EVENT_AUTH_PENDING:
                if (c->cb.auth_pending)
                    c->cb.auth_pending(c->cb.user, ev.auth_pending.timeout_s);
                break;
            case SHIMMER_EVENT_WEB_AUTH:
                if (c->cb.web_auth)
                    c->cb.web_auth(c->cb.user, &ev.web_auth);
                break;
            case SHIMMER_EVENT_AUTH_REQUEST: /* a server's */
                break;
            case SHIMMER_EVENT_EXIT: {
                ShimmerTunnelFailure failure = SHIMMER_TUNNEL_FAILURE_NONE;
                if (shimmer_engine_get_state(c->engine) == SHIMMER_STATE_FAILED)
                    failure = c->auth_failed ? SHIMMER_TUNNEL_FAILURE_AUTH
                                             : SHIMMER_TUNNEL_FAILURE_CONNECT;
                g_autofree char *reason = g_strdup(ev.exit.reason);
                shimmer_event_clear(&ev);
                /* Flush what the engine queued last (the exit notification). */
                write_packets(c);
                finish(c, failure, reason);
                return;
            }
            }
            shimmer_event_clear(&ev);
        }
    }
    if (c->finished)
        return;
    /* No system call: the source reads it on the loop's next turn. */
    shimmer_deadline_source_set(c->timer, shimmer_engine_next_deadline(c->engine));
}

ShimmerTunnel *shimmer_tunnel_new(const ShimmerConfig *cfg, const ShimmerTunnelOptions *options,
                                  const ShimmerTunnelCallbacks *callbacks, GError **error)
{
    /* A proxy that cannot carry its connection (NTLM, credentials nobody
     * gave) fails every attempt alike: say so now, not at each retry. */
    for (guint i = 0; cfg->connections != NULL && i < cfg->connections->len; i++) {
        const ShimmerConnection *conn = g_ptr_array_index(cfg->connections, i);
        g_autoptr(GError) why = NULL;
        if (conn->proxy != NULL &&
            !shimmer_proxy_check(conn->proxy, conn->transport != SHIMMER_TRANSPORT_TCP, &why)) {
            g_set_error(error, why->domain, why->code, "line %u: %s", conn->proxy->line,
                        why->message);
            return NULL;
        }
    }
    ShimmerTunnel *c = g_new0(ShimmerTunnel, 1);
    c->cfg = cfg;
    c->sock = -1;
    if (options) {
        c->opts = *options;
        /* Copied below; the caller's pointers are not kept. */
        c->opts.username = c->opts.password = NULL;
        c->opts.tun_name = NULL;
        c->tun_name = g_strdup(options->tun_name);
        c->opts.tun_name = c->tun_name;
    }
    if (callbacks)
        c->cb = *callbacks;
    ShimmerEngineHooks hooks = {.log = engine_log, .realtime = engine_realtime, .user = c};
    c->engine = shimmer_engine_new(cfg, &hooks, error);
    if (c->engine == NULL) {
        g_free(c->tun_name);
        g_free(c);
        return NULL;
    }
    ShimmerDatapathOptions dopts = {0};
    g_autoptr(GError) derr = NULL;
    if (!shimmer_datapath_options_parse(g_getenv("SHIMMER_DATAPATH"), &dopts, &derr))
        clog_(c, SHIMMER_LOG_WARNING, "SHIMMER_DATAPATH: %s", derr->message);
    ShimmerDatapathHooks dhooks = {
        .route_tun = route_tun,
        .route_link = route_link,
        .control = on_control,
        .link_error = on_link_error,
        .log = datapath_log,
        .user = c,
    };
    c->dpath = shimmer_datapath_new(&dopts, &dhooks, error);
    if (c->dpath == NULL) {
        shimmer_engine_free(c->engine);
        g_free(c->tun_name);
        g_free(c);
        return NULL;
    }
    /* Lane 0 is this thread's, one more for every worker. */
    shimmer_engine_set_lanes(c->engine, shimmer_datapath_get_workers(c->dpath) + 1);
    shimmer_dataplane_set_wake(shimmer_engine_get_dataplane(c->engine), engine_wake, c);
    if (options != NULL) {
        c->username = g_strdup(options->username);
        c->password = g_strdup(options->password);
    }
    c->addresses = g_ptr_array_new_null_terminated(4, g_free, TRUE);
    c->routes = g_ptr_array_new_null_terminated(4, g_free, TRUE);
    c->dns_servers = g_ptr_array_new_null_terminated(2, g_free, TRUE);
    c->dns_domains = g_ptr_array_new_null_terminated(2, g_free, TRUE);
    c->timer = shimmer_deadline_source_new(on_timer, c);
    g_source_set_can_recurse(c->timer, TRUE);
    g_source_attach(c->timer, NULL);
    return c;
}

void shimmer_tunnel_start(ShimmerTunnel *c)
{
    if (c->password != NULL && c->cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE) {
        /* Given up front: the engine starts connecting without asking. */
        shimmer_engine_set_credentials(c->engine, c->username, c->password, g_get_monotonic_time());
    } else {
        shimmer_engine_start(c->engine, g_get_monotonic_time());
    }
    g_clear_pointer(&c->username, g_free);
    g_clear_pointer(&c->password, shimmer_str_free_secret);
    pump(c);
}

void shimmer_tunnel_restart(ShimmerTunnel *c, const char *why)
{
    if (c->finished || c->stopping)
        return;
    ShimmerState st = shimmer_engine_get_state(c->engine);
    if (st == SHIMMER_STATE_IDLE || st == SHIMMER_STATE_RECONNECTING)
        return; /* nothing is connected yet, or a new attempt is already due */
    clog_(c, SHIMMER_LOG_INFO, "restart: %s", why);
    transport_failed(c, why);
}

static const char *const *applied(GPtrArray *list)
{
    static const char *const empty[] = {NULL};
    return list->len > 0 ? (const char *const *)list->pdata : empty;
}

const char *const *shimmer_tunnel_get_addresses(ShimmerTunnel *c)
{
    return applied(c->addresses);
}

const char *const *shimmer_tunnel_get_routes(ShimmerTunnel *c)
{
    return applied(c->routes);
}

const char *const *shimmer_tunnel_get_dns_servers(ShimmerTunnel *c)
{
    return applied(c->dns_servers);
}

const char *const *shimmer_tunnel_get_dns_domains(ShimmerTunnel *c)
{
    return applied(c->dns_domains);
}

void shimmer_tunnel_stop(ShimmerTunnel *c)
{
    if (c->finished)
        return;
    c->stopping = TRUE;
    shimmer_engine_stop(c->engine, g_get_monotonic_time());
    pump(c);
}

void shimmer_tunnel_set_credentials(ShimmerTunnel *c, const char *username, const char *password)
{
    shimmer_engine_set_credentials(c->engine, username, password, g_get_monotonic_time());
    pump(c);
}

void shimmer_tunnel_config_set_key_passphrase(ShimmerConfig *cfg, const char *passphrase)
{
    ShimmerBlob *b = &cfg->askpass_file;
    if (b->data != NULL)
        shimmer_free_secret(b->data, b->len);
    b->len = strlen(passphrase);
    b->data = (guint8 *)shimmer_memdup0(passphrase, b->len);
    b->present = TRUE;
    b->is_inline = TRUE;
    b->secret = TRUE;
    cfg->askpass = TRUE;
}

void shimmer_tunnel_set_key_passphrase(ShimmerTunnel *c, const char *passphrase)
{
    shimmer_engine_set_key_passphrase(c->engine, passphrase);
}

ShimmerEngine *shimmer_tunnel_get_engine(ShimmerTunnel *c)
{
    return c->engine;
}

const char *shimmer_tunnel_get_tun_name(ShimmerTunnel *c)
{
    return c->tun ? shimmer_tun_get_name(c->tun) : NULL;
}

const char *shimmer_tunnel_get_remote_address(ShimmerTunnel *c)
{
    return c->remote_text;
}

GVariant *shimmer_tunnel_get_network_config(ShimmerTunnel *c)
{
    if (c->ip == NULL)
        return g_variant_ref_sink(g_variant_new("a{sv}", NULL));
    g_autofree char *server = NULL;
    if (c->remote != NULL)
        server = g_inet_address_to_string(
            g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(c->remote)));
    return g_variant_ref_sink(
        shimmer_ip_config_to_variant(c->ip, shimmer_tunnel_get_tun_name(c), server));
}

ShimmerTunnelFailure shimmer_tunnel_get_failure(ShimmerTunnel *c)
{
    return c->failure;
}

guint shimmer_tunnel_max_descriptors(void)
{
    ShimmerDatapathOptions o = {0};
    if (!shimmer_datapath_options_parse(g_getenv("SHIMMER_DATAPATH"), &o, NULL))
        o.workers = 0;
    return SHIMMER_DATAPATH_DESCRIPTORS(shimmer_datapath_workers_for(&o)) + 3;
}

void shimmer_tunnel_free(ShimmerTunnel *c)
{
    if (c == NULL)
        return;
    close_transport(c);
    teardown_tun(c);
    /* The workers stop before the engine whose data plane they use goes. */
    shimmer_datapath_free(c->dpath);
    if (c->timer) {
        g_source_destroy(c->timer);
        g_source_unref(c->timer);
    }
    g_clear_object(&c->remote);
    g_clear_object(&c->socks_server);
    g_free(c->remote_text);
    g_ptr_array_unref(c->addresses);
    g_ptr_array_unref(c->routes);
    g_ptr_array_unref(c->dns_servers);
    g_ptr_array_unref(c->dns_domains);
    g_free(c->dns_ifname);
    shimmer_ip_config_free(c->ip);
    g_free(c->tun_name);
    g_free(c->username);
    shimmer_str_free_secret(c->password);
    shimmer_engine_free(c->engine);
    if (c->plain != NULL)
        shimmer_free_secret(c->plain, SHIMMER_ENGINE_MAX_PLAIN);
    g_free(c);
}
