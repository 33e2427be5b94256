/* SPDX-License-Identifier: MIT */
/*
 * The server runner: sockets, the tun and its configuration around one
 * dispatcher. See server.h.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "datachan.h"
#include "mss.h"
#include "os/netcfg.h"
#include "os/tun.h"
#include "packet.h"
#include "route-table.h"
#include "secure.h"
#include "tunnel/datapath.h"
#include "tunnel/deadline.h"

/* Room for a packet of the runner's own: control packets, and data
 * packets that reach this thread (a client's first, a float, one to
 * forward between clients). */
#define PKT_SIZE (SHIMMER_ENGINE_MAX_PLAIN + 64)
/* How long a stop waits for the clients to ack their RESTART. */
#define STOP_WAIT_MS 3000

typedef struct {
    ShimmerServer *s;
    int fd;
    ShimmerLinkAddr addr;
    ShimmerDatapathLink *link;
} Conn;

/* A connected client as the workers see it: its data plane and where its
 * packets go. Replaced (not changed) when it floats. */
typedef struct {
    guint64 id;
    guint32 peer_id;
    ShimmerLinkAddr addr;
    ShimmerDatapathPeer *peer;
} Client;

/* What the workers route by: made anew at every change of the clients and
 * published whole; an old one is freed once no worker can hold it. */
typedef struct {
    guint n_ids;
    Client **by_peer_id;
    GHashTable *by_addr;       /* ShimmerLinkAddr* -> Client* */
    ShimmerRouteTable *routes; /* the clients' addresses and iroutes -> Client* */
} Routes;

struct ShimmerServer {
    const ShimmerConfig *cfg;
    ShimmerServerOptions opts;
    char *tun_name_opt;
    ShimmerServerCallbacks cb;
    ShimmerDispatch *d;
    bool tcp;

    /* UDP: one socket per worker on the same port (SO_REUSEPORT: the
     * kernel keeps each client on one of them, so its packets stay in
     * order on one worker); TCP: the listener, read here. */
    int sock; /* the first socket, or the listener */
    int *udp_socks;
    ShimmerDatapathLink **udp_links;
    guint n_udp;
    int sock_family;
    GSource *sock_source;
    GHashTable *conns; /* ShimmerLinkAddr* -> Conn* */
    char *listen_text;

    ShimmerDatapath *dpath;
    GHashTable *clients; /* guint64* -> Client* */
    Routes *routes;      /* read by the workers */
    /* New clients reach the workers' view in batches (publish_soon()). */
    guint publish_timer;
    gint64 last_publish, publish_cost;
    /* Atomic: clients wait for the view (packets from the tun no worker
     * can route come to this thread meanwhile, tun_unrouted()). */
    gint view_stale;

    ShimmerTun *tun;
    ShimmerNetcfg *net;
    GHashTable *iroutes; /* prefix text -> TRUE: routed into the tun */

    /* The handshakes of clients not in yet run on this pool
     * (shimmer_dispatch_set_offload()), one thread per processor; the
     * jobs come back through DONE, DONE_FD wakes this thread. NULL on one
     * processor. */
    GThreadPool *pool;
    GAsyncQueue *done;
    int done_fd;
    GSource *done_source;

    guint mss4, mss6; /* mssfix: TCP SYNs in both directions */
    GSource *timer;
    guint stop_timeout;
    bool stopping;
    bool finished;

    guint8 out[PKT_SIZE];
};

static void pump(ShimmerServer *s);

static void slog(ShimmerServer *s, ShimmerLogLevel level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void slog(ShimmerServer *s, ShimmerLogLevel level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (s->cb.log)
        s->cb.log(s->cb.user, level, msg);
}

/* ---------- addresses ---------- */

static void to_link(const struct sockaddr_storage *ss, ShimmerLinkAddr *a)
{
    memset(a, 0, sizeof(*a));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        a->family = 4;
        a->port = ntohs(in->sin_port);
        memcpy(a->addr, &in->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        a->port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            a->family = 4;
            memcpy(a->addr, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            a->family = 6;
            memcpy(a->addr, &in6->sin6_addr, 16);
            a->scope_id = in6->sin6_scope_id;
        }
    }
}

/* A for the socket's family (IPv4 as mapped addresses on an IPv6 socket). */
static socklen_t from_link(const ShimmerServer *s, const ShimmerLinkAddr *a,
                           struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (s->sock_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->addr, 4);
        return sizeof(*in);
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a->port);
    if (a->family == 4) {
        in6->sin6_addr.s6_addr[10] = 0xff;
        in6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(in6->sin6_addr.s6_addr + 12, a->addr, 4);
    } else {
        memcpy(&in6->sin6_addr, a->addr, 16);
        in6->sin6_scope_id = a->scope_id;
    }
    return sizeof(*in6);
}

static guint link_hash(gconstpointer k)
{
    const guint8 *b = k;
    guint32 h = 2166136261u;
    for (gsize i = 0; i < sizeof(ShimmerLinkAddr); i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static gboolean link_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(ShimmerLinkAddr)) == 0;
}

static bool ip_addrs(const guint8 *ip, gsize len, int *family, const guint8 **src,
                     const guint8 **dst)
{
    if (len >= 20 && ip[0] >> 4 == 4) {
        *family = 4;
        *src = ip + 12;
        *dst = ip + 16;
        return true;
    }
    if (len >= 40 && ip[0] >> 4 == 6) {
        *family = 6;
        *src = ip + 8;
        *dst = ip + 24;
        return true;
    }
    return false;
}

/* ---------- sending (this thread) ---------- */

static void send_to(ShimmerServer *s, const ShimmerLinkAddr *to, const guint8 *pkt, gsize len)
{
    if (s->tcp) {
        Conn *c = g_hash_table_lookup(s->conns, to);
        if (c != NULL && !shimmer_datapath_link_send(c->link, pkt, len, NULL, 0))
            slog(s, SHIMMER_LOG_DEBUG, "a TCP connection is stuck: packet dropped");
        return;
    }
    if (s->n_udp == 0)
        return;
    struct sockaddr_storage ss;
    socklen_t sl = from_link(s, to, &ss);
    if (!shimmer_datapath_link_send(s->udp_links[0], pkt, len, (struct sockaddr *)&ss, sl))
        slog(s, SHIMMER_LOG_DEBUG, "send: %s", g_strerror(errno));
}

static void tun_write(ShimmerServer *s, guint8 *pkt, gsize len)
{
    shimmer_mss_clamp(pkt, len, s->mss4, s->mss6);
    if (!shimmer_datapath_write_tun(s->dpath, pkt, len))
        slog(s, SHIMMER_LOG_DEBUG, "tun write: %s", g_strerror(errno));
}

/* What the dispatcher made of one packet. */
static void handle_result(ShimmerServer *s, ShimmerDispatchResult r, guint8 *out, gsize out_len,
                          const ShimmerLinkAddr *to)
{
    if (r == SHIMMER_DISPATCH_TUN)
        tun_write(s, out, out_len);
    else if (r == SHIMMER_DISPATCH_LINK)
        send_to(s, to, out, out_len);
}

/* ---------- the workers' routing ---------- */

static void routes_free(Routes *r)
{
    if (r == NULL)
        return;
    g_free(r->by_peer_id);
    g_hash_table_unref(r->by_addr);
    shimmer_route_table_free(r->routes);
    g_free(r);
}

static void add_prefix(Routes *r, const char *text, Client *c)
{
    int fam;
    guint8 a[16];
    guint bits;
    if (text != NULL && shimmer_route_parse_prefix(text, &fam, a, &bits))
        shimmer_route_table_add(r->routes, fam, a, bits, c);
}

/* The host route to a client's tunnel address TEXT (IPv6: maybe with its
 * prefix length after a slash), without an allocation: the view is made
 * over every client. */
static void add_host(Routes *r, int family, const char *text, Client *c)
{
    if (text == NULL)
        return;
    char buf[INET6_ADDRSTRLEN];
    gsize n = strcspn(text, "/");
    guint8 a[16];
    if (n >= sizeof(buf))
        return;
    memcpy(buf, text, n);
    buf[n] = '\0';
    /* The table's families are 4 and 6. */
    if (inet_pton(family, buf, a) == 1)
        shimmer_route_table_add(r->routes, family == AF_INET ? 4 : 6, a,
                                family == AF_INET ? 32 : 128, c);
}

/* The workers' view of the clients, made anew over all of them. */
static void publish_routes(ShimmerServer *s)
{
    gint64 start = g_get_monotonic_time();
    if (s->publish_timer != 0) {
        g_source_remove(s->publish_timer);
        s->publish_timer = 0;
    }
    Routes *r = g_new0(Routes, 1);
    r->n_ids = 1;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v))
        r->n_ids = MAX(r->n_ids, ((Client *)v)->peer_id + 1);
    r->by_peer_id = g_new0(Client *, r->n_ids);
    r->by_addr = g_hash_table_new(link_hash, link_equal);
    r->routes = shimmer_route_table_new();
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Client *c = v;
        r->by_peer_id[c->peer_id] = c;
        g_hash_table_insert(r->by_addr, &c->addr, c);
        const char *ipv4, *ipv6;
        const GPtrArray *iroutes;
        if (!shimmer_dispatch_get_peer_routes(s->d, c->id, &ipv4, &ipv6, &iroutes))
            continue;
        add_host(r, AF_INET, ipv4, c);
        add_host(r, AF_INET6, ipv6, c);
        for (guint i = 0; iroutes != NULL && i < iroutes->len; i++)
            add_prefix(r, g_ptr_array_index(iroutes, i), c);
    }
    Routes *old = g_atomic_pointer_exchange(&s->routes, r);
    if (old != NULL) {
        /* No worker holds the old view (nor a client only it knew) after
         * this. */
        shimmer_datapath_synchronize(s->dpath);
        routes_free(old);
    }
    s->last_publish = g_get_monotonic_time();
    s->publish_cost = s->last_publish - start;
    g_atomic_int_set(&s->view_stale, 0);
}

static gboolean on_publish_timer(gpointer user)
{
    ShimmerServer *s = user;
    s->publish_timer = 0;
    publish_routes(s);
    return G_SOURCE_REMOVE;
}

/* A client joined: the view is made anew at once when the last one is old
 * enough, else once the gap has passed, so that a crowd connecting at once
 * costs a view per gap, not a view (over every client) per client. The gap
 * is 10 ms, or fifty times what making the view last took (at most a
 * fiftieth of this thread's time goes to views). Until then the
 * client's packets take the dispatcher's way on this thread. Leaving
 * clients do not wait: publish_routes() at once. */
#define PUBLISH_GAP_US 10000
static void publish_soon(ShimmerServer *s)
{
    if (s->publish_timer != 0)
        return;
    gint64 gap = MAX(PUBLISH_GAP_US, 50 * s->publish_cost);
    gint64 due = s->last_publish + gap - g_get_monotonic_time();
    if (due <= 0) {
        publish_routes(s);
        return;
    }
    g_atomic_int_set(&s->view_stale, 1);
    s->publish_timer = g_timeout_add((guint)((due + 999) / 1000), on_publish_timer, s);
}

static void client_free(Client *c)
{
    shimmer_datapath_peer_free(c->peer);
    g_free(c);
}

static ShimmerDatapathPeer *route_tun(gpointer user, const guint8 *ip, gsize len)
{
    ShimmerServer *s = user;
    Routes *r = g_atomic_pointer_get(&s->routes);
    int fam;
    const guint8 *src, *dst;
    if (r == NULL || !ip_addrs(ip, len, &fam, &src, &dst))
        return NULL;
    Client *c = shimmer_route_table_lookup(r->routes, fam, dst);
    return c != NULL ? c->peer : NULL;
}

/* A data packet by its peer id (and from the client's own address), or by
 * address for DATA_V1. Anything else (a client that floated, one not yet
 * published) goes to the dispatcher on this thread. */
static ShimmerDatapathPeer *route_link(gpointer user, ShimmerDatapathLink *link, const guint8 *pkt,
                                       gsize len, const struct sockaddr *from, socklen_t from_len)
{
    ShimmerServer *s = user;
    Routes *r = g_atomic_pointer_get(&s->routes);
    if (r == NULL)
        return NULL;
    ShimmerLinkAddr a;
    Conn *conn = shimmer_datapath_link_get_user(link);
    if (conn != NULL) {
        a = conn->addr;
    } else if (from != NULL) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, from, MIN((gsize)from_len, sizeof(ss)));
        to_link(&ss, &a);
    } else {
        return NULL;
    }
    Client *c = NULL;
    if (shimmer_packet_opcode(pkt[0]) == SHIMMER_OP_DATA_V2 && len >= 4) {
        guint32 id = (guint32)pkt[1] << 16 | (guint32)pkt[2] << 8 | pkt[3];
        if (id < r->n_ids)
            c = r->by_peer_id[id];
        else if (id == SHIMMER_DATACHAN_PEER_ID_NONE)
            c = g_hash_table_lookup(r->by_addr, &a);
    } else {
        c = g_hash_table_lookup(r->by_addr, &a);
    }
    if (c == NULL || !link_equal(&c->addr, &a))
        return NULL;
    return c->peer;
}

/* A client's packet must come from its own addresses or networks; one for
 * another client goes to the dispatcher when it forwards between clients. */
static ShimmerDatapathVerdict inbound(gpointer user, ShimmerDatapathPeer *peer, const guint8 *ip,
                                      gsize len)
{
    ShimmerServer *s = user;
    Routes *r = g_atomic_pointer_get(&s->routes);
    int fam;
    const guint8 *src, *dst;
    if (r == NULL || !ip_addrs(ip, len, &fam, &src, &dst))
        return SHIMMER_DATAPATH_DROP;
    Client *c = shimmer_route_table_lookup(r->routes, fam, src);
    if (c == NULL || c->peer != peer)
        return SHIMMER_DATAPATH_DROP;
    if (s->cfg->client_to_client) {
        Client *to = shimmer_route_table_lookup(r->routes, fam, dst);
        if (to != NULL && to != c)
            return SHIMMER_DATAPATH_TO_RUNNER;
    }
    return SHIMMER_DATAPATH_ACCEPT;
}

/* Worker thread: a packet from the tun for no client the workers know goes
 * to the dispatcher while new clients wait for the view (their first
 * replies would be lost), else it is dropped. */
static gboolean tun_unrouted(gpointer user)
{
    ShimmerServer *s = user;
    return g_atomic_int_get(&s->view_stale);
}

/* Between clients, or from the tun for a client the workers do not route
 * yet: the dispatcher encrypts it for the one it is for. */
static void on_tun_packet(gpointer user, ShimmerDatapathPeer *peer, const guint8 *ip, gsize len)
{
    ShimmerServer *s = user;
    ShimmerLinkAddr to;
    gsize n = 0;
    if (shimmer_dispatch_encrypt(s->d, ip, len, g_get_monotonic_time(), s->out, sizeof(s->out), &n,
                                 &to) == SHIMMER_DISPATCH_LINK)
        send_to(s, &to, s->out, n);
    pump(s);
}

static void conn_closed(Conn *c);

static void on_control(gpointer user, ShimmerDatapathLink *link, const guint8 *pkt, gsize len,
                       const struct sockaddr *from, socklen_t from_len)
{
    ShimmerServer *s = user;
    ShimmerLinkAddr a;
    Conn *conn = shimmer_datapath_link_get_user(link);
    if (conn != NULL) {
        a = conn->addr;
    } else if (from != NULL) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, from, MIN((gsize)from_len, sizeof(ss)));
        to_link(&ss, &a);
    } else {
        return;
    }
    ShimmerLinkAddr to;
    gsize out_len = 0;
    ShimmerDispatchResult r = shimmer_dispatch_recv(s->d, &a, pkt, len, g_get_monotonic_time(),
                                                    s->out, sizeof(s->out), &out_len, &to);
    handle_result(s, r, s->out, out_len, &to);
    shimmer_wipe(s->out, out_len);
    pump(s);
}

static void on_link_error(gpointer user, ShimmerDatapathLink *link, int err)
{
    ShimmerServer *s = user;
    Conn *conn = shimmer_datapath_link_get_user(link);
    if (conn != NULL) {
        conn_closed(conn);
        return;
    }
    slog(s, SHIMMER_LOG_DEBUG, "UDP: %s", g_strerror(err));
}

static void datapath_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    ShimmerServer *s = user;
    if (s->cb.log)
        s->cb.log(s->cb.user, level, message);
}

/* A worker saw what a client's engine must act on: serve the timers. */
static void engine_wake(gpointer user)
{
    ShimmerServer *s = user;
    shimmer_deadline_source_poke(s->timer);
}

/* ---------- clients ---------- */

static void client_add(ShimmerServer *s, guint64 id)
{
    ShimmerPeerInfo info;
    ShimmerDataPlane *dp = shimmer_dispatch_get_dataplane(s->d, id);
    if (dp == NULL || !shimmer_dispatch_get_peer(s->d, id, &info))
        return;
    shimmer_dataplane_set_wake(dp, engine_wake, s);
    Client *c = g_new0(Client, 1);
    c->id = info.id;
    c->peer_id = info.peer_id;
    c->addr = info.addr;
    ShimmerDatapathLink *link = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (s->tcp) {
        Conn *conn = g_hash_table_lookup(s->conns, &c->addr);
        link = conn != NULL ? conn->link : NULL;
    } else if (s->n_udp > 0) {
        link = s->udp_links[c->peer_id % s->n_udp];
        sl = from_link(s, &c->addr, &ss);
    }
    if (link == NULL) {
        g_free(c);
        return;
    }
    c->peer = shimmer_datapath_peer_new(dp, link, sl > 0 ? (struct sockaddr *)&ss : NULL, sl);
    shimmer_datapath_peer_set_mss(c->peer, s->mss4, s->mss6);
    Client *old = g_hash_table_lookup(s->clients, &c->id);
    g_hash_table_steal(s->clients, &c->id);
    g_hash_table_insert(s->clients, &c->id, c);
    if (old != NULL) {
        /* The old one leaves the view before it is freed. */
        publish_routes(s);
        client_free(old);
    } else {
        publish_soon(s);
    }
}

static void client_remove(ShimmerServer *s, guint64 id)
{
    Client *c = g_hash_table_lookup(s->clients, &id);
    if (c == NULL)
        return;
    g_hash_table_steal(s->clients, &id);
    publish_routes(s);
    client_free(c);
}

/* ---------- TCP connections ---------- */

static void conn_free(Conn *c)
{
    ShimmerServer *s = c->s;
    if (c->link != NULL)
        shimmer_datapath_remove_link(s->dpath, c->link);
    if (c->fd >= 0)
        close(c->fd);
    g_free(c);
}

static void conn_closed(Conn *c)
{
    ShimmerServer *s = c->s;
    ShimmerLinkAddr a = c->addr;
    /* Its clients go first: nothing may send on the link once it is gone. */
    shimmer_dispatch_link_closed(s->d, &a, g_get_monotonic_time());
    pump(s);
    g_hash_table_remove(s->conns, &a);
}

static gboolean on_accept(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerServer *s = user;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            break;
        if (s->stopping) {
            close(cfd);
            continue;
        }
        Conn *c = g_new0(Conn, 1);
        c->s = s;
        c->fd = cfd;
        to_link(&ss, &c->addr);
        g_hash_table_replace(s->conns, &c->addr, c);
        c->link = shimmer_datapath_add_tcp(s->dpath, cfd);
        shimmer_datapath_link_set_user(c->link, c);
        char a[80];
        slog(s, SHIMMER_LOG_DEBUG, "TCP connection from %s",
             shimmer_link_addr_to_string(&c->addr, a, sizeof(a)));
    }
    return G_SOURCE_CONTINUE;
}

/* ---------- the tun's configuration ---------- */

static gboolean route_into_tun(ShimmerServer *s, const char *prefix, gboolean add, GError **error)
{
    g_autoptr(GInetAddressMask) mask = g_inet_address_mask_new_from_string(prefix, error);
    if (mask == NULL)
        return FALSE;
    int ifindex = shimmer_tun_get_ifindex(s->tun);
    return add ? shimmer_netcfg_route_add(s->net, mask, ifindex, NULL, 0, error)
               : shimmer_netcfg_route_remove(s->net, mask, ifindex, NULL, 0, error);
}

/* The networks behind the clients (iroute) lead into the tun while a
 * client owning them is connected. */
static void sync_iroutes(ShimmerServer *s)
{
    if (s->net == NULL)
        return;
    g_autoptr(GPtrArray) want = shimmer_dispatch_list_iroutes(s->d);
    GHashTable *keep = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < want->len; i++) {
        const char *prefix = g_ptr_array_index(want, i);
        g_hash_table_add(keep, (gpointer)prefix);
        if (g_hash_table_contains(s->iroutes, prefix))
            continue;
        g_autoptr(GError) error = NULL;
        if (route_into_tun(s, prefix, TRUE, &error) ||
            g_error_matches(error, G_IO_ERROR, G_IO_ERROR_EXISTS)) {
            g_hash_table_add(s->iroutes, g_strdup(prefix));
            slog(s, SHIMMER_LOG_INFO, "route %s via %s (iroute)", prefix,
                 shimmer_tun_get_name(s->tun));
        } else {
            slog(s, SHIMMER_LOG_WARNING, "iroute %s: %s", prefix, error->message);
        }
    }
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, s->iroutes);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (g_hash_table_contains(keep, k))
            continue;
        g_autoptr(GError) error = NULL;
        if (!route_into_tun(s, k, FALSE, &error))
            slog(s, SHIMMER_LOG_DEBUG, "removing route %s: %s", (char *)k, error->message);
        g_hash_table_iter_remove(&it);
    }
    g_hash_table_unref(keep);
}

static gboolean add_address(ShimmerServer *s, const char *local, guint bits, GError **error)
{
    g_autoptr(GInetAddress) a = g_inet_address_new_from_string(local);
    if (a == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "bad address %s", local);
        return FALSE;
    }
    return shimmer_netcfg_addr_add(s->net, shimmer_tun_get_ifindex(s->tun), a, bits, NULL, error);
}

static gboolean configure_tun(ShimmerServer *s, GError **error)
{
    const ShimmerConfig *cfg = s->cfg;
    const ShimmerServerPlan *plan = cfg->plan;
    const char *name = s->opts.tun_name;
    if (name == NULL)
        name = cfg->dev == NULL || strcmp(cfg->dev, "tun") == 0 ? "tun%d" : cfg->dev;
    s->tun = shimmer_datapath_open_tun(s->dpath, name, error);
    if (s->tun == NULL)
        return FALSE;
    s->net = shimmer_netcfg_new(error);
    if (s->net == NULL)
        return FALSE;
    if (s->opts.route_protocol != 0)
        shimmer_netcfg_set_route_protocol(s->net, s->opts.route_protocol);
    int ifindex = shimmer_tun_get_ifindex(s->tun);
    guint mtu = cfg->tun_mtu ? cfg->tun_mtu : 1500;
    if (!shimmer_netcfg_link_set_mtu(s->net, ifindex, mtu, error) ||
        !shimmer_netcfg_link_set_up(s->net, ifindex, TRUE, error))
        return FALSE;
    const char *dev = shimmer_tun_get_name(s->tun);
    if (plan->local != NULL) {
        gint bits = shimmer_route_netmask_bits(plan->netmask);
        if (!add_address(s, plan->local, bits > 0 ? (guint)bits : 24, error))
            return FALSE;
        slog(s, SHIMMER_LOG_INFO, "%s: %s/%d, mtu %u", dev, plan->local, bits, mtu);
    }
    if (plan->local6 != NULL) {
        int fam;
        guint8 a[16];
        guint bits;
        g_autofree char *addr = g_strdup(plan->local6);
        char *slash = strchr(addr, '/');
        if (slash)
            *slash = '\0';
        if (!shimmer_route_parse_prefix(plan->local6, &fam, a, &bits) ||
            !add_address(s, addr, bits, error))
            return FALSE;
        slog(s, SHIMMER_LOG_INFO, "%s: %s", dev, plan->local6);
    }
    /* The server's own `route` lines: networks behind clients (with their
     * iroute), reached through the tun. */
    for (guint i = 0; i < cfg->routes->len; i++) {
        const ShimmerRoute *r = g_ptr_array_index(cfg->routes, i);
        gint bits = shimmer_route_netmask_bits(r->netmask ? r->netmask : "255.255.255.255");
        g_autofree char *prefix = g_strdup_printf("%s/%d", r->network, bits);
        g_autoptr(GError) e = NULL;
        if (bits < 0 || !route_into_tun(s, prefix, TRUE, &e))
            slog(s, SHIMMER_LOG_WARNING, "route %s: %s", prefix, e ? e->message : "bad netmask");
        else
            slog(s, SHIMMER_LOG_INFO, "route %s via %s", prefix, dev);
    }
    for (guint i = 0; i < cfg->routes6->len; i++) {
        const ShimmerRoute6 *r = g_ptr_array_index(cfg->routes6, i);
        g_autoptr(GError) e = NULL;
        if (!route_into_tun(s, r->prefix, TRUE, &e))
            slog(s, SHIMMER_LOG_WARNING, "route %s: %s", r->prefix, e->message);
        else
            slog(s, SHIMMER_LOG_INFO, "route %s via %s", r->prefix, dev);
    }
    shimmer_datapath_attach_tun(s->dpath, s->tun, mtu);
    return TRUE;
}

/* ---------- the socket ---------- */

/* One socket bound to SS (SL bytes) of FAMILY; -1 with ERROR set. */
static int bound_socket(ShimmerServer *s, int family, const struct sockaddr_storage *ss,
                        socklen_t sl, gboolean reuseport, GError **error)
{
    const ShimmerConfig *cfg = s->cfg;
    int type = (s->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = socket(family, type, 0);
    if (fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s",
                    g_strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    if (s->tcp)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (!s->tcp) {
        int buf = 4 * 1024 * 1024;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    }
    if (cfg->mark >= 0)
        setsockopt(fd, SOL_SOCKET, SO_MARK, &cfg->mark, sizeof(int));
    if (bind(fd, (const struct sockaddr *)ss, sl) < 0 || (s->tcp && listen(fd, 128) < 0)) {
        int err = errno;
        guint port = ntohs(family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                             : ((const struct sockaddr_in6 *)ss)->sin6_port);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot listen on port %u: %s",
                    port, g_strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

static gboolean open_socket(ShimmerServer *s, GError **error)
{
    const ShimmerConfig *cfg = s->cfg;
    guint16 port = (guint16)(cfg->lport > 0 ? cfg->lport : cfg->rport);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int family = cfg->family == SHIMMER_FAMILY_INET ? AF_INET : AF_INET6;
    if (cfg->local != NULL) {
        g_autoptr(GInetAddress) a = g_inet_address_new_from_string(cfg->local);
        if (a == NULL) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "'local %s': not an address (host names are not looked up)", cfg->local);
            return FALSE;
        }
        family = g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
        g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(a, port);
        if (!g_socket_address_to_native(sa, &ss, sizeof(ss), error))
            return FALSE;
    }
    if (family == AF_INET6 && cfg->local == NULL && cfg->family == SHIMMER_FAMILY_ANY) {
        int probe = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            family = AF_INET; /* no IPv6 on this machine */
        else
            close(probe);
    }
    s->sock_family = family;
    socklen_t sl;
    if (cfg->local == NULL) {
        memset(&ss, 0, sizeof(ss));
        if (family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            in->sin_port = htons(port);
            sl = sizeof(*in);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(port);
            sl = sizeof(*in6);
        }
    } else {
        sl = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    }
    if (s->tcp) {
        s->sock = bound_socket(s, family, &ss, sl, FALSE, error);
        if (s->sock < 0)
            return FALSE;
        s->sock_source = g_unix_fd_source_new(s->sock, G_IO_IN);
        g_source_set_callback(s->sock_source, (GSourceFunc)(void (*)(void))on_accept, s, NULL);
        g_source_set_can_recurse(s->sock_source, TRUE);
        g_source_attach(s->sock_source, NULL);
    } else {
        /* One per worker: the kernel spreads the clients over them by
         * address, each client always to the same one. */
        guint n = shimmer_datapath_get_workers(s->dpath);
        s->udp_socks = g_new(int, n);
        s->udp_links = g_new0(ShimmerDatapathLink *, n);
        for (guint i = 0; i < n; i++) {
            g_autoptr(GError) e = NULL;
            int fd = bound_socket(s, family, &ss, sl, n > 1, i == 0 ? error : &e);
            if (fd < 0) {
                if (i == 0)
                    return FALSE;
                slog(s, SHIMMER_LOG_INFO, "%u UDP sockets instead of %u: %s", i, n, e->message);
                break;
            }
            s->udp_socks[i] = fd;
            s->udp_links[i] = shimmer_datapath_add_udp(s->dpath, fd, FALSE);
            s->n_udp = i + 1;
        }
        s->sock = s->udp_socks[0];
    }
    ShimmerLinkAddr la;
    to_link(&ss, &la);
    if (family == AF_INET6 && cfg->local == NULL)
        la.family = 6;
    char text[80];
    shimmer_link_addr_to_string(&la, text, sizeof(text));
    s->listen_text = g_strdup(text);
    return TRUE;
}

/* ---------- the loop ---------- */

/* What the data path did, for the log. */
static void log_datapath(ShimmerServer *s)
{
    ShimmerDatapathStats st;
    shimmer_datapath_get_stats(s->dpath, &st);
    g_autofree char *text = shimmer_datapath_format_stats(&st);
    slog(s, SHIMMER_LOG_INFO, "data path counters: %s", text);
}

static void teardown(ShimmerServer *s)
{
    if (s->sock_source != NULL) {
        g_source_destroy(s->sock_source);
        g_clear_pointer(&s->sock_source, g_source_unref);
    }
    /* The workers' view goes first, then what it pointed to. */
    if (s->publish_timer != 0) {
        g_source_remove(s->publish_timer);
        s->publish_timer = 0;
    }
    Routes *r = g_atomic_pointer_exchange(&s->routes, NULL);
    shimmer_datapath_synchronize(s->dpath);
    routes_free(r);
    g_hash_table_remove_all(s->clients);
    g_hash_table_remove_all(s->conns);
    for (guint i = 0; i < s->n_udp; i++) {
        shimmer_datapath_remove_link(s->dpath, s->udp_links[i]);
        close(s->udp_socks[i]);
    }
    s->n_udp = 0;
    g_clear_pointer(&s->udp_links, g_free);
    g_clear_pointer(&s->udp_socks, g_free);
    if (s->tcp && s->sock >= 0)
        close(s->sock);
    s->sock = -1;
    shimmer_datapath_detach_tun(s->dpath);
    if (s->net != NULL) {
        g_autoptr(GError) error = NULL;
        if (!shimmer_netcfg_rollback(s->net, &error))
            slog(s, SHIMMER_LOG_WARNING, "removing the server's routes: %s", error->message);
        g_clear_pointer(&s->net, shimmer_netcfg_free);
    }
    g_hash_table_remove_all(s->iroutes);
    g_clear_pointer(&s->tun, shimmer_tun_close);
}

static void finish(ShimmerServer *s, gboolean failed, const char *reason)
{
    if (s->finished)
        return;
    s->finished = true;
    if (s->stop_timeout != 0) {
        g_source_remove(s->stop_timeout);
        s->stop_timeout = 0;
    }
    shimmer_deadline_source_set(s->timer, -1);
    teardown(s);
    log_datapath(s);
    if (s->cb.finished)
        s->cb.finished(s->cb.user, failed, reason);
}

static void handle_event(ShimmerServer *s, ShimmerDispatchEvent *ev)
{
    char a[80];
    shimmer_link_addr_to_string(&ev->addr, a, sizeof(a));
    switch (ev->type) {
    case SHIMMER_DISPATCH_EVENT_CONNECTED: {
        ShimmerPeerInfo info;
        if (shimmer_dispatch_get_peer(s->d, ev->id, &info))
            slog(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT " '%s' connected from %s: %s%s%s",
                 ev->id, info.common_name ? info.common_name : "", a, info.ipv4 ? info.ipv4 : "",
                 info.ipv6 ? " " : "", info.ipv6 ? info.ipv6 : "");
        sync_iroutes(s);
        client_add(s, ev->id);
        if (s->cb.client_connected)
            s->cb.client_connected(s->cb.user, ev->id);
        break;
    }
    case SHIMMER_DISPATCH_EVENT_GONE:
        slog(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT " '%s' (%s) gone: %s", ev->id,
             ev->common_name ? ev->common_name : "", a, ev->reason ? ev->reason : "");
        client_remove(s, ev->id);
        sync_iroutes(s);
        if (s->cb.client_gone)
            s->cb.client_gone(s->cb.user, ev->id, ev->reason);
        break;
    case SHIMMER_DISPATCH_EVENT_AUTH_REQUEST:
        if (s->cb.auth_request != NULL)
            s->cb.auth_request(s->cb.user, ev->id, ev->common_name, ev->username, ev->password);
        else
            shimmer_dispatch_auth_reply(s->d, ev->id, SHIMMER_AUTH_DENY,
                                        "the server cannot check passwords",
                                        g_get_monotonic_time());
        break;
    case SHIMMER_DISPATCH_EVENT_FLOATED:
        /* Its packets go to the new address from now on. */
        client_add(s, ev->id);
        break;
    }
}

/* ---------- handshakes on the pool ---------- */

static void run_job(gpointer data, gpointer user)
{
    ShimmerServer *s = user;
    shimmer_dispatch_job_run(data, g_get_monotonic_time());
    g_async_queue_push(s->done, data);
    guint64 one = 1;
    if (write(s->done_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        g_warning("handshake pool: %s", g_strerror(errno));
}

static void give_jobs(ShimmerServer *s)
{
    if (s->pool == NULL)
        return;
    ShimmerDispatchJob *job;
    while ((job = shimmer_dispatch_take_job(s->d)) != NULL)
        g_thread_pool_push(s->pool, job, NULL);
}

static void take_back_jobs(ShimmerServer *s)
{
    ShimmerDispatchJob *job;
    while ((job = g_async_queue_try_pop(s->done)) != NULL)
        shimmer_dispatch_job_done(s->d, job, g_get_monotonic_time());
}

static gboolean on_jobs_done(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerServer *s = user;
    guint64 v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return G_SOURCE_CONTINUE;
    take_back_jobs(s);
    pump(s);
    return G_SOURCE_CONTINUE;
}

static void start_pool(ShimmerServer *s)
{
    guint n = g_get_num_processors();
    const char *env = g_getenv("SHIMMER_HANDSHAKE_THREADS");
    if (env != NULL)
        n = (guint)g_ascii_strtoull(env, NULL, 10);
    if (n < 2)
        return; /* one processor: handshakes stay on this thread */
    s->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->done_fd < 0)
        return;
    s->pool = g_thread_pool_new(run_job, s, (gint)MIN(n, 64), FALSE, NULL);
    s->done = g_async_queue_new();
    s->done_source = g_unix_fd_source_new(s->done_fd, G_IO_IN);
    g_source_set_callback(s->done_source, (GSourceFunc)(void (*)(void))on_jobs_done, s, NULL);
    g_source_attach(s->done_source, NULL);
    shimmer_dispatch_set_offload(s->d, TRUE);
}

/* Waits for the pool's jobs and hands them back: before the dispatcher
 * goes. */
static void stop_pool(ShimmerServer *s)
{
    if (s->pool != NULL) {
        g_thread_pool_free(s->pool, FALSE, TRUE);
        s->pool = NULL;
        take_back_jobs(s);
    }
    if (s->done_source != NULL) {
        g_source_destroy(s->done_source);
        g_source_unref(s->done_source);
        s->done_source = NULL;
    }
    if (s->done_fd >= 0)
        close(s->done_fd);
    s->done_fd = -1;
    g_clear_pointer(&s->done, g_async_queue_unref);
}

static void pump(ShimmerServer *s)
{
    if (s->finished)
        return;
    give_jobs(s);
    guint8 buf[PKT_SIZE];
    for (int rounds = 0; rounds < 64; rounds++) {
        gboolean again = FALSE;
        gssize n;
        ShimmerLinkAddr to;
        while ((n = shimmer_dispatch_write_pkt(s->d, buf, sizeof(buf), &to,
                                               g_get_monotonic_time())) > 0)
            send_to(s, &to, buf, (gsize)n);
        ShimmerDispatchEvent ev;
        while (shimmer_dispatch_pop_event(s->d, &ev)) {
            again = TRUE;
            handle_event(s, &ev);
            shimmer_dispatch_event_clear(&ev);
            if (s->finished)
                return;
        }
        if (!again)
            break;
    }
    if (s->stopping && shimmer_dispatch_get_n_peers(s->d) == 0) {
        finish(s, FALSE, "stopped");
        return;
    }
    /* No system call: the source reads it on the loop's next turn. */
    shimmer_deadline_source_set(s->timer, shimmer_dispatch_next_deadline(s->d));
}

static void on_timer(gpointer user)
{
    ShimmerServer *s = user;
    shimmer_dispatch_handle_timeout(s->d, g_get_monotonic_time());
    pump(s);
}

/* ---------- public ---------- */

static gint64 server_realtime(gpointer user)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static void server_dispatch_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    ShimmerServer *s = user;
    if (s->cb.log)
        s->cb.log(s->cb.user, level, message);
}

/* Reads a client's client-config-dir file: its name is the client's common
 * name, which must not lead out of the directory. */
static ShimmerCcd *server_load_ccd(gpointer user, const char *common_name)
{
    ShimmerServer *s = user;
    const char *dir = s->cfg->client_config_dir;
    if (dir == NULL || common_name == NULL || common_name[0] == '\0' || common_name[0] == '.' ||
        strchr(common_name, '/') != NULL) {
        if (dir != NULL && common_name != NULL)
            slog(s, SHIMMER_LOG_WARNING,
                 "client-config-dir: '%s' cannot name a file: no ccd file read", common_name);
        return NULL;
    }
    g_autofree char *path = g_build_filename(dir, common_name, NULL);
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, &len, &error)) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            slog(s, SHIMMER_LOG_WARNING, "%s: %s", path, error->message);
        return NULL;
    }
    ShimmerCcd *ccd = shimmer_ccd_parse(path, text, len, s->cfg);
    g_autoptr(GString) diags = g_string_new(NULL);
    shimmer_ccd_format_diagnostics(ccd, diags);
    if (diags->len > 0)
        slog(s, shimmer_ccd_has_errors(ccd) ? SHIMMER_LOG_ERROR : SHIMMER_LOG_WARNING, "%s",
             g_strchomp(diags->str));
    if (shimmer_ccd_has_errors(ccd)) {
        /* A broken file must not let the client in as if it had none. */
        shimmer_ccd_free(ccd);
        ShimmerCcd *off = shimmer_ccd_parse(path, "disable\n", 8, s->cfg);
        return off;
    }
    return ccd;
}

ShimmerServer *shimmer_server_new(const ShimmerConfig *cfg, const ShimmerServerOptions *options,
                                  const ShimmerServerCallbacks *callbacks, GError **error)
{
    ShimmerServer *s = g_new0(ShimmerServer, 1);
    s->cfg = cfg;
    s->sock = -1;
    s->done_fd = -1;
    if (options != NULL) {
        s->opts = *options;
        s->tun_name_opt = g_strdup(options->tun_name);
        s->opts.tun_name = s->tun_name_opt;
    }
    if (callbacks != NULL)
        s->cb = *callbacks;
    s->tcp = cfg->transport == SHIMMER_TRANSPORT_TCP;
    s->conns = g_hash_table_new_full(link_hash, link_equal, NULL, (GDestroyNotify)conn_free);
    s->clients =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, (GDestroyNotify)client_free);
    ShimmerDatapathOptions dopts = {0};
    g_autoptr(GError) derr = NULL;
    if (!shimmer_datapath_options_parse(g_getenv("SHIMMER_DATAPATH"), &dopts, &derr))
        slog(s, SHIMMER_LOG_WARNING, "SHIMMER_DATAPATH: %s", derr->message);
    ShimmerDatapathHooks dhooks = {
        .route_tun = route_tun,
        .route_link = route_link,
        .inbound = inbound,
        .tun_packet = on_tun_packet,
        .tun_unrouted = tun_unrouted,
        .control = on_control,
        .link_error = on_link_error,
        .log = datapath_log,
        .user = s,
    };
    s->dpath = shimmer_datapath_new(&dopts, &dhooks, error);
    if (s->dpath == NULL) {
        g_hash_table_unref(s->conns);
        g_hash_table_unref(s->clients);
        g_free(s->tun_name_opt);
        g_free(s);
        return NULL;
    }
    s->iroutes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ShimmerDispatchHooks hooks = {
        .log = server_dispatch_log,
        .realtime = server_realtime,
        .load_ccd = server_load_ccd,
        .user = s,
    };
    s->d = shimmer_dispatch_new(cfg, &hooks, error);
    if (s->d == NULL) {
        shimmer_server_free(s);
        return NULL;
    }
    if (s->opts.check_credentials)
        shimmer_dispatch_set_check_credentials(s->d, TRUE);
    if (s->opts.ask_every_login)
        shimmer_dispatch_set_ask_every_login(s->d, TRUE);
    /* Lane 0 is this thread's, one more for every worker. */
    shimmer_dispatch_set_lanes(s->d, shimmer_datapath_get_workers(s->dpath) + 1);
    s->mss4 = shimmer_dispatch_get_mss(s->d, FALSE);
    s->mss6 = shimmer_dispatch_get_mss(s->d, TRUE);
    if (s->opts.reset_rate > 0)
        shimmer_dispatch_set_rate_limit(s->d, s->opts.reset_rate,
                                        s->opts.reset_burst ? s->opts.reset_burst
                                                            : 2 * s->opts.reset_rate);
    s->timer = shimmer_deadline_source_new(on_timer, s);
    g_source_set_can_recurse(s->timer, TRUE);
    g_source_attach(s->timer, NULL);
    start_pool(s);
    return s;
}

gboolean shimmer_server_start(ShimmerServer *s, GError **error)
{
    if (!configure_tun(s, error) || !open_socket(s, error)) {
        teardown(s);
        return FALSE;
    }
    slog(s, SHIMMER_LOG_INFO, "listening on %s (%s), tun %s", s->listen_text,
         s->tcp ? "TCP" : "UDP", shimmer_tun_get_name(s->tun));
    return TRUE;
}

static gboolean on_stop_timeout(gpointer user)
{
    ShimmerServer *s = user;
    s->stop_timeout = 0;
    finish(s, FALSE, "stopped");
    return G_SOURCE_REMOVE;
}

void shimmer_server_stop(ShimmerServer *s)
{
    if (s->finished || s->stopping)
        return;
    s->stopping = true;
    if (s->sock_source != NULL && s->tcp) {
        /* No new connections; those open stay for the RESTART. */
        g_source_destroy(s->sock_source);
        g_clear_pointer(&s->sock_source, g_source_unref);
    }
    shimmer_dispatch_stop(s->d, g_get_monotonic_time());
    s->stop_timeout = g_timeout_add(STOP_WAIT_MS, on_stop_timeout, s);
    pump(s);
}

void shimmer_server_auth_reply(ShimmerServer *s, guint64 id, ShimmerAuthDecision decision,
                               const char *reason)
{
    shimmer_dispatch_auth_reply(s->d, id, decision, reason, g_get_monotonic_time());
    pump(s);
}

gboolean shimmer_server_kick(ShimmerServer *s, guint64 id, const char *message)
{
    gboolean ok = shimmer_dispatch_kick(s->d, id, message, g_get_monotonic_time());
    pump(s);
    return ok;
}

GArray *shimmer_server_list_clients(ShimmerServer *s)
{
    return shimmer_dispatch_list_peers(s->d);
}

gboolean shimmer_server_get_client(ShimmerServer *s, guint64 id, ShimmerPeerInfo *out)
{
    return shimmer_dispatch_get_peer(s->d, id, out);
}

const char *shimmer_server_get_tun_name(ShimmerServer *s)
{
    return s->tun != NULL ? shimmer_tun_get_name(s->tun) : NULL;
}

const char *shimmer_server_get_listen_address(ShimmerServer *s)
{
    return s->listen_text;
}

ShimmerDispatch *shimmer_server_get_dispatch(ShimmerServer *s)
{
    return s->d;
}

void shimmer_server_free(ShimmerServer *s)
{
    if (s == NULL)
        return;
    if (s->stop_timeout != 0)
        g_source_remove(s->stop_timeout);
    /* The jobs' lines are not told any more: the owner is going. */
    s->cb.log = NULL;
    stop_pool(s);
    teardown(s);
    /* The workers stop before the engines whose data planes they use. */
    shimmer_datapath_free(s->dpath);
    if (s->timer != NULL) {
        g_source_destroy(s->timer);
        g_source_unref(s->timer);
    }
    g_hash_table_unref(s->conns);
    g_hash_table_unref(s->clients);
    g_hash_table_unref(s->iroutes);
    shimmer_dispatch_free(s->d);
    g_free(s->listen_text);
    g_free(s->tun_name_opt);
    shimmer_wipe(s->out, sizeof(s->out));
    g_free(s);
}
