/* SPDX-License-Identifier: MIT */
/*
 * The server runner: sockets, the tun and its configuration around one
 * dispatcher. See server.h.
 */
#include "server.h"

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
#include "route-table.h"
#include "secure.h"

#define BATCH    32
#define PKT_SIZE (SHIMMER_ENGINE_MAX_PACKET + 64)
/* What a TCP connection may have waiting to be written before its packets
 * are dropped. */
#define TCP_OUT_LIMIT (4 * 1024 * 1024)
/* How long a stop waits for the clients to ack their RESTART. */
#define STOP_WAIT_MS 3000

typedef struct {
    ShimmerServer *s;
    int fd;
    ShimmerLinkAddr addr;
    GSource *in, *out;
    ShimmerTcpSplitter *splitter;
    GByteArray *pending;
} Conn;

struct ShimmerServer {
    const ShimmerConfig *cfg;
    ShimmerServerOptions opts;
    char *tun_name_opt;
    ShimmerServerCallbacks cb;
    ShimmerDispatch *d;
    bool tcp;

    int sock; /* UDP socket or TCP listener */
    int sock_family;
    GSource *sock_source;
    GHashTable *conns; /* ShimmerLinkAddr* -> Conn* */
    char *listen_text;

    ShimmerTun *tun;
    GSource *tun_source;
    ShimmerNetcfg *net;
    GHashTable *iroutes; /* prefix text -> TRUE: routed into the tun */

    guint mss4, mss6; /* mssfix: TCP SYNs in both directions */
    GSource *timer;
    guint stop_timeout;
    bool stopping;
    bool finished;

    /* Batches: no allocation per packet. */
    guint8 rx[BATCH][PKT_SIZE];
    guint8 tx[BATCH][PKT_SIZE];
    struct sockaddr_storage names[BATCH];
    struct sockaddr_storage tx_names[BATCH];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    guint8 stream[65536];
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

/* ---------- sending ---------- */

static void conn_free(Conn *c);

static gboolean on_conn_writable(gint fd, GIOCondition cond, gpointer user)
{
    Conn *c = user;
    while (c->pending->len > 0) {
        ssize_t n = write(fd, c->pending->data, c->pending->len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return G_SOURCE_CONTINUE;
            g_clear_pointer(&c->out, g_source_unref);
            ShimmerServer *s = c->s;
            ShimmerLinkAddr a = c->addr;
            g_hash_table_remove(s->conns, &a);
            shimmer_dispatch_link_closed(s->d, &a, g_get_monotonic_time());
            pump(s);
            return G_SOURCE_REMOVE;
        }
        g_byte_array_remove_range(c->pending, 0, (guint)n);
    }
    g_clear_pointer(&c->out, g_source_unref);
    return G_SOURCE_REMOVE;
}

static void tcp_send(ShimmerServer *s, const ShimmerLinkAddr *to, const guint8 *pkt, gsize len)
{
    Conn *c = g_hash_table_lookup(s->conns, to);
    if (c == NULL)
        return;
    guint8 prefix[2] = {(guint8)(len >> 8), (guint8)len};
    if (c->pending->len == 0) {
        struct iovec v[2] = {{prefix, 2}, {(void *)pkt, len}};
        ssize_t n = writev(c->fd, v, 2);
        if (n == (ssize_t)(len + 2))
            return;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return; /* the read side will see the connection go */
        if (n < 0)
            n = 0;
        if (n < 2) {
            g_byte_array_append(c->pending, prefix + n, (guint)(2 - n));
            g_byte_array_append(c->pending, pkt, (guint)len);
        } else {
            g_byte_array_append(c->pending, pkt + (n - 2), (guint)(len - (gsize)(n - 2)));
        }
    } else {
        if (c->pending->len > TCP_OUT_LIMIT)
            return;
        g_byte_array_append(c->pending, prefix, 2);
        g_byte_array_append(c->pending, pkt, (guint)len);
    }
    if (c->out == NULL) {
        c->out = g_unix_fd_source_new(c->fd, G_IO_OUT);
        g_source_set_callback(c->out, (GSourceFunc)(void (*)(void))on_conn_writable, c, NULL);
        g_source_attach(c->out, NULL);
    }
}

static void send_to(ShimmerServer *s, const ShimmerLinkAddr *to, const guint8 *pkt, gsize len)
{
    if (s->tcp) {
        tcp_send(s, to, pkt, len);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = from_link(s, to, &ss);
    if (sendto(s->sock, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) < 0 &&
        errno != EAGAIN && errno != ENOBUFS)
        slog(s, SHIMMER_LOG_DEBUG, "send: %s", g_strerror(errno));
}

/* Sends the first N of s->tx, named by s->tx_names, in as few calls as
 * the socket takes. */
static void send_batch(ShimmerServer *s, const gsize *lens, guint n)
{
    if (n == 0)
        return;
    for (guint i = 0; i < n; i++) {
        s->iov[i].iov_base = s->tx[i];
        s->iov[i].iov_len = lens[i];
        memset(&s->msgs[i].msg_hdr, 0, sizeof(s->msgs[i].msg_hdr));
        s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
        s->msgs[i].msg_hdr.msg_iovlen = 1;
        s->msgs[i].msg_hdr.msg_name = &s->tx_names[i];
        s->msgs[i].msg_hdr.msg_namelen = s->tx_names[i].ss_family == AF_INET
                                             ? sizeof(struct sockaddr_in)
                                             : sizeof(struct sockaddr_in6);
    }
    guint sent = 0;
    while (sent < n) {
        int k = sendmmsg(s->sock, s->msgs + sent, n - sent, MSG_DONTWAIT);
        if (k <= 0)
            break; /* a full socket buffer drops, as a router would */
        sent += (guint)k;
    }
}

static void tun_write(ShimmerServer *s, guint8 *pkt, gsize len)
{
    if (s->tun == NULL)
        return;
    shimmer_mss_clamp(pkt, len, s->mss4, s->mss6);
    if (write(shimmer_tun_get_fd(s->tun), pkt, len) < 0 && errno != EAGAIN)
        slog(s, SHIMMER_LOG_DEBUG, "tun write: %s", g_strerror(errno));
}

/* ---------- receiving ---------- */

/* What the dispatcher made of one received packet. */
static void handle_result(ShimmerServer *s, ShimmerDispatchResult r, guint8 *out, gsize out_len,
                          const ShimmerLinkAddr *to)
{
    if (r == SHIMMER_DISPATCH_TUN)
        tun_write(s, out, out_len);
    else if (r == SHIMMER_DISPATCH_LINK)
        send_to(s, to, out, out_len);
}

static gboolean on_udp_readable(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerServer *s = user;
    gint64 now = g_get_monotonic_time();
    guint8 out[PKT_SIZE];
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < BATCH; i++) {
            s->iov[i].iov_base = s->rx[i];
            s->iov[i].iov_len = PKT_SIZE;
            memset(&s->msgs[i].msg_hdr, 0, sizeof(s->msgs[i].msg_hdr));
            s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
            s->msgs[i].msg_hdr.msg_iovlen = 1;
            s->msgs[i].msg_hdr.msg_name = &s->names[i];
            s->msgs[i].msg_hdr.msg_namelen = sizeof(s->names[i]);
        }
        int n = recvmmsg(fd, s->msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        gsize lens[BATCH];
        guint nout = 0;
        for (int i = 0; i < n; i++) {
            ShimmerLinkAddr from, to;
            to_link(&s->names[i], &from);
            gsize out_len = 0;
            ShimmerDispatchResult r = shimmer_dispatch_recv(
                s->d, &from, s->rx[i], s->msgs[i].msg_len, now, out, sizeof(out), &out_len, &to);
            if (r == SHIMMER_DISPATCH_TUN) {
                tun_write(s, out, out_len);
            } else if (r == SHIMMER_DISPATCH_LINK) {
                /* Batched: answers and client-to-client packets. */
                memcpy(s->tx[nout], out, out_len);
                lens[nout] = out_len;
                from_link(s, &to, &s->tx_names[nout]);
                nout++;
            }
        }
        send_batch(s, lens, nout);
        if (n < BATCH)
            break;
    }
    pump(s);
    return G_SOURCE_CONTINUE;
}

static gboolean on_tun_readable(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerServer *s = user;
    gint64 now = g_get_monotonic_time();
    for (int round = 0; round < 8; round++) {
        gsize lens[BATCH];
        guint nout = 0;
        int i = 0;
        for (; i < BATCH; i++) {
            ssize_t r = read(fd, s->rx[i], PKT_SIZE);
            if (r <= 0)
                break;
            shimmer_mss_clamp(s->rx[i], (gsize)r, s->mss4, s->mss6);
            ShimmerLinkAddr to;
            gsize len = 0;
            if (shimmer_dispatch_encrypt(s->d, s->rx[i], (gsize)r, now, s->tx[nout], PKT_SIZE, &len,
                                         &to) != SHIMMER_DISPATCH_LINK)
                continue;
            if (s->tcp) {
                tcp_send(s, &to, s->tx[nout], len);
                continue;
            }
            lens[nout] = len;
            from_link(s, &to, &s->tx_names[nout]);
            nout++;
        }
        if (!s->tcp)
            send_batch(s, lens, nout);
        if (i < BATCH)
            break;
    }
    pump(s);
    return G_SOURCE_CONTINUE;
}

static void conn_free(Conn *c)
{
    if (c->in != NULL) {
        g_source_destroy(c->in);
        g_source_unref(c->in);
    }
    if (c->out != NULL) {
        g_source_destroy(c->out);
        g_source_unref(c->out);
    }
    if (c->fd >= 0)
        close(c->fd);
    shimmer_tcp_splitter_free(c->splitter);
    g_byte_array_unref(c->pending);
    g_free(c);
}

static void conn_closed(Conn *c)
{
    ShimmerServer *s = c->s;
    ShimmerLinkAddr a = c->addr;
    /* Destroyed from its own callback: GLib keeps it alive until return. */
    g_hash_table_remove(s->conns, &a);
    shimmer_dispatch_link_closed(s->d, &a, g_get_monotonic_time());
    pump(s);
}

static gboolean on_conn_readable(gint fd, GIOCondition cond, gpointer user)
{
    Conn *c = user;
    ShimmerServer *s = c->s;
    ssize_t n = read(fd, s->stream, sizeof(s->stream));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_closed(c);
        return G_SOURCE_REMOVE;
    }
    gint64 now = g_get_monotonic_time();
    const guint8 *p = s->stream;
    gsize left = n > 0 ? (gsize)n : 0;
    guint8 out[PKT_SIZE];
    while (left > 0) {
        gsize used = 0, pkt_len = 0;
        const guint8 *pkt = NULL;
        if (shimmer_tcp_splitter_feed(c->splitter, p, left, &used, &pkt, &pkt_len) !=
            SHIMMER_PACKET_OK) {
            slog(s, SHIMMER_LOG_WARNING, "malformed TCP framing: closing the connection");
            conn_closed(c);
            return G_SOURCE_REMOVE;
        }
        p += used;
        left -= used;
        if (pkt != NULL) {
            ShimmerLinkAddr to;
            gsize out_len = 0;
            ShimmerDispatchResult r = shimmer_dispatch_recv(s->d, &c->addr, pkt, pkt_len, now, out,
                                                            sizeof(out), &out_len, &to);
            handle_result(s, r, out, out_len, &to);
        } else if (used == 0) {
            break;
        }
    }
    pump(s);
    return G_SOURCE_CONTINUE;
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
        c->splitter = shimmer_tcp_splitter_new(SHIMMER_TCP_MAX_PACKET);
        c->pending = g_byte_array_new();
        c->in = g_unix_fd_source_new(cfd, G_IO_IN);
        g_source_set_callback(c->in, (GSourceFunc)(void (*)(void))on_conn_readable, c, NULL);
        g_source_attach(c->in, NULL);
        g_hash_table_replace(s->conns, &c->addr, c);
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
    s->tun = shimmer_tun_open(name, error);
    if (s->tun == NULL)
        return FALSE;
    s->net = shimmer_netcfg_new(error);
    if (s->net == NULL)
        return FALSE;
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
    s->tun_source = g_unix_fd_source_new(shimmer_tun_get_fd(s->tun), G_IO_IN);
    g_source_set_callback(s->tun_source, (GSourceFunc)(void (*)(void))on_tun_readable, s, NULL);
    g_source_attach(s->tun_source, NULL);
    return TRUE;
}

/* ---------- the socket ---------- */

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
    int type = (s->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    s->sock = socket(family, type, 0);
    if (s->sock < 0 && family == AF_INET6 && cfg->local == NULL &&
        cfg->family == SHIMMER_FAMILY_ANY) {
        family = AF_INET; /* no IPv6 on this machine */
        s->sock = socket(family, type, 0);
    }
    if (s->sock < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s",
                    g_strerror(errno));
        return FALSE;
    }
    s->sock_family = family;
    int one = 1, zero = 0;
    if (s->tcp)
        setsockopt(s->sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(s->sock, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (!s->tcp) {
        int buf = 4 * 1024 * 1024;
        setsockopt(s->sock, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        setsockopt(s->sock, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    }
    if (cfg->mark >= 0)
        setsockopt(s->sock, SOL_SOCKET, SO_MARK, &cfg->mark, sizeof(int));
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
    if (bind(s->sock, (struct sockaddr *)&ss, sl) < 0 || (s->tcp && listen(s->sock, 128) < 0)) {
        int err = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot listen on port %u: %s",
                    port, g_strerror(err));
        return FALSE;
    }
    ShimmerLinkAddr la;
    to_link(&ss, &la);
    if (family == AF_INET6 && cfg->local == NULL)
        la.family = 6;
    char text[80];
    shimmer_link_addr_to_string(&la, text, sizeof(text));
    s->listen_text = g_strdup(text);
    s->sock_source = g_unix_fd_source_new(s->sock, G_IO_IN);
    g_source_set_callback(s->sock_source,
                          s->tcp ? (GSourceFunc)(void (*)(void))on_accept
                                 : (GSourceFunc)(void (*)(void))on_udp_readable,
                          s, NULL);
    g_source_attach(s->sock_source, NULL);
    return TRUE;
}

/* ---------- the loop ---------- */

static void teardown(ShimmerServer *s)
{
    if (s->sock_source != NULL) {
        g_source_destroy(s->sock_source);
        g_clear_pointer(&s->sock_source, g_source_unref);
    }
    g_hash_table_remove_all(s->conns);
    if (s->sock >= 0) {
        close(s->sock);
        s->sock = -1;
    }
    if (s->tun_source != NULL) {
        g_source_destroy(s->tun_source);
        g_clear_pointer(&s->tun_source, g_source_unref);
    }
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
    g_source_set_ready_time(s->timer, -1);
    teardown(s);
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
        if (s->cb.client_connected)
            s->cb.client_connected(s->cb.user, ev->id);
        break;
    }
    case SHIMMER_DISPATCH_EVENT_GONE:
        slog(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT " '%s' (%s) gone: %s", ev->id,
             ev->common_name ? ev->common_name : "", a, ev->reason ? ev->reason : "");
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
        break;
    }
}

static void pump(ShimmerServer *s)
{
    if (s->finished)
        return;
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
    gint64 d = shimmer_dispatch_next_deadline(s->d);
    g_source_set_ready_time(s->timer, d == G_MAXINT64 ? -1 : d);
}

static gboolean timer_dispatch(GSource *source, GSourceFunc callback, gpointer user)
{
    return callback(user);
}

static GSourceFuncs timer_funcs = {NULL, NULL, timer_dispatch, NULL, NULL, NULL};

static gboolean on_timer(gpointer user)
{
    ShimmerServer *s = user;
    g_source_set_ready_time(s->timer, -1);
    shimmer_dispatch_handle_timeout(s->d, g_get_monotonic_time());
    pump(s);
    return G_SOURCE_CONTINUE;
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
    if (options != NULL) {
        s->opts = *options;
        s->tun_name_opt = g_strdup(options->tun_name);
        s->opts.tun_name = s->tun_name_opt;
    }
    if (callbacks != NULL)
        s->cb = *callbacks;
    s->tcp = cfg->transport == SHIMMER_TRANSPORT_TCP;
    s->conns = g_hash_table_new_full(link_hash, link_equal, NULL, (GDestroyNotify)conn_free);
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
    s->mss4 = shimmer_dispatch_get_mss(s->d, FALSE);
    s->mss6 = shimmer_dispatch_get_mss(s->d, TRUE);
    if (s->opts.reset_rate > 0)
        shimmer_dispatch_set_rate_limit(s->d, s->opts.reset_rate,
                                        s->opts.reset_burst ? s->opts.reset_burst
                                                            : 2 * s->opts.reset_rate);
    s->timer = g_source_new(&timer_funcs, sizeof(GSource));
    g_source_set_callback(s->timer, on_timer, s, NULL);
    g_source_set_ready_time(s->timer, -1);
    g_source_attach(s->timer, NULL);
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
    teardown(s);
    if (s->timer != NULL) {
        g_source_destroy(s->timer);
        g_source_unref(s->timer);
    }
    g_hash_table_unref(s->conns);
    g_hash_table_unref(s->iroutes);
    shimmer_dispatch_free(s->d);
    g_free(s->listen_text);
    g_free(s->tun_name_opt);
    shimmer_wipe(s->rx, sizeof(s->rx));
    shimmer_wipe(s->tx, sizeof(s->tx));
    g_free(s);
}
