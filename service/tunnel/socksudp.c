/* SPDX-License-Identifier: MIT */
/*
 * The SOCKS5 UDP relay between the tunnel and the proxy. See socksudp.h.
 */
#include "socksudp.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proxy.h"

/* The largest datagram and the IPv6 SOCKS header in front of it. */
#define DGRAM_MAX  65535
#define HEADER_MAX 22
/* Datagrams moved per wake-up each way, so that neither way starves the
 * other or the rest of the main loop. */
#define BATCH 64

struct ShimmerSocksUdp {
    int control; /* the TCP connection the association lives on */
    int udp;     /* connected to the relay */
    int pair;    /* our end; the tunnel has the other */
    ShimmerSocksAddr server;
    guint8 header[HEADER_MAX];
    gsize header_len;
    GSource *control_source;
    GSource *udp_source;
    GSource *pair_source;
    ShimmerSocksUdpClosed closed;
    gpointer user;
    guint64 dropped;
    guint8 buf[HEADER_MAX + DGRAM_MAX];
};

static GSource *watch(int fd, gboolean (*func)(gint, GIOCondition, gpointer), gpointer user)
{
    GSource *s = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))func, user, NULL);
    g_source_attach(s, NULL);
    return s;
}

static void drop_source(GSource **s)
{
    if (*s != NULL) {
        g_source_destroy(*s);
        g_clear_pointer(s, g_source_unref);
    }
}

static gboolean on_control(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerSocksUdp *u = user;
    guint8 junk[512];
    ssize_t n = read(fd, junk, sizeof(junk));
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return G_SOURCE_CONTINUE; /* nothing is expected here: ignored */
    g_clear_pointer(&u->control_source, g_source_unref);
    drop_source(&u->udp_source);
    drop_source(&u->pair_source);
    g_autofree char *why =
        g_strdup_printf("the SOCKS proxy ended the UDP association (its control connection %s)",
                        n == 0 ? "was closed" : g_strerror(errno));
    u->closed(u->user, why);
    return G_SOURCE_REMOVE;
}

/* From the tunnel to the relay: the header in front. */
static gboolean on_pair(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerSocksUdp *u = user;
    for (int i = 0; i < BATCH; i++) {
        ssize_t n = recv(fd, u->buf, DGRAM_MAX, MSG_DONTWAIT);
        if (n < 0)
            break;
        struct iovec v[2] = {{u->header, u->header_len}, {u->buf, (gsize)n}};
        struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
        /* A full socket buffer drops the datagram, as a router would. */
        (void)sendmsg(u->udp, &m, MSG_DONTWAIT);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean same_addr(const ShimmerSocksAddr *a, const ShimmerSocksAddr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

/* From the relay to the tunnel: the server's datagrams, header off. */
static gboolean on_udp(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerSocksUdp *u = user;
    for (int i = 0; i < BATCH; i++) {
        ssize_t n = recv(fd, u->buf, sizeof(u->buf), MSG_DONTWAIT);
        if (n < 0)
            break;
        ShimmerSocksAddr from;
        gsize h = shimmer_socks_udp_unwrap(u->buf, (gsize)n, &from);
        if (h == 0 || !same_addr(&from, &u->server)) {
            u->dropped++;
            continue;
        }
        (void)send(u->pair, u->buf + h, (gsize)n - h, MSG_DONTWAIT);
    }
    return G_SOURCE_CONTINUE;
}

static void to_socks_addr(GInetSocketAddress *sa, ShimmerSocksAddr *out)
{
    memset(out, 0, sizeof(*out));
    GInetAddress *a = g_inet_socket_address_get_address(sa);
    gsize len = g_inet_address_get_native_size(a);
    out->family = len == 4 ? 4 : 6;
    memcpy(out->addr, g_inet_address_to_bytes(a), len);
    out->port = g_inet_socket_address_get_port(sa);
}

ShimmerSocksUdp *shimmer_socks_udp_new(ShimmerProxyLink *link, GInetSocketAddress *server, int mark,
                                       ShimmerSocksUdpClosed closed, gpointer user, int *fd,
                                       GError **error)
{
    g_autoptr(ShimmerProxyLink) l = link;
    struct sockaddr_storage ss;
    if (!g_socket_address_to_native(G_SOCKET_ADDRESS(l->relay), &ss, sizeof(ss), error))
        return NULL;
    int udp = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int pair[2] = {-1, -1};
    if (udp < 0 || socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
        int e = errno;
        if (udp >= 0)
            close(udp);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "UDP through the proxy: %s",
                    g_strerror(e));
        return NULL;
    }
    if (mark >= 0)
        setsockopt(udp, SOL_SOCKET, SO_MARK, &mark, sizeof(int));
    int big = 4 * 1024 * 1024;
    int fds[3] = {udp, pair[0], pair[1]};
    for (int i = 0; i < 3; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    }
    if (connect(udp, (struct sockaddr *)&ss,
                g_socket_address_get_native_size(G_SOCKET_ADDRESS(l->relay))) < 0) {
        int e = errno;
        g_autofree char *r = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(l->relay));
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    "the SOCKS proxy's UDP relay %s: %s", r, g_strerror(e));
        close(udp);
        close(pair[0]);
        close(pair[1]);
        return NULL;
    }
    ShimmerSocksUdp *u = g_new0(ShimmerSocksUdp, 1);
    u->udp = udp;
    u->pair = pair[1];
    u->control = l->fd;
    l->fd = -1;
    u->closed = closed;
    u->user = user;
    to_socks_addr(server, &u->server);
    u->header_len = shimmer_socks_udp_wrap(u->header, sizeof(u->header), &u->server);
    u->control_source = watch(u->control, on_control, u);
    u->udp_source = watch(u->udp, on_udp, u);
    u->pair_source = watch(u->pair, on_pair, u);
    *fd = pair[0];
    return u;
}

guint64 shimmer_socks_udp_get_dropped(const ShimmerSocksUdp *u)
{
    return u->dropped;
}

void shimmer_socks_udp_free(ShimmerSocksUdp *u)
{
    if (u == NULL)
        return;
    drop_source(&u->control_source);
    drop_source(&u->udp_source);
    drop_source(&u->pair_source);
    close(u->control);
    close(u->udp);
    close(u->pair);
    g_free(u);
}
