/* SPDX-License-Identifier: MIT */
/*
 * service/tunnel/proxyconn.c and socksudp.c on loopback: a proxy that
 * accepts and never answers (connect-timeout), one that hangs up, one that
 * is not there, and the SOCKS5 UDP relay (header on, header off, datagrams
 * not from the server dropped, the end of the control connection). The
 * negotiations with real proxies are in tests/lab/test_proxy.py.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tunnel/proxyconn.h"
#include "tunnel/socksudp.h"

typedef struct {
    gboolean done;
    ShimmerProxyLink *link;
    char *error;
} Result;

static void on_done(gpointer user, ShimmerProxyLink *link, const GError *error)
{
    Result *r = user;
    r->done = TRUE;
    r->link = link;
    r->error = error != NULL ? g_strdup(error->message) : NULL;
}

static gboolean on_deadline(gpointer user)
{
    *(gboolean *)user = TRUE;
    return G_SOURCE_REMOVE;
}

/* Runs the main loop until *FLAG or SECONDS pass. */
static void run_until(gboolean *flag, guint seconds)
{
    gboolean late = FALSE;
    guint id = g_timeout_add_seconds(seconds, on_deadline, &late);
    while (!*flag && !late)
        g_main_context_iteration(NULL, TRUE);
    if (!late)
        g_source_remove(id);
}

/* A TCP listener on 127.0.0.1; its port in *PORT. */
static int listener(guint16 *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(fd, >=, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    g_assert_cmpint(listen(fd, 4), ==, 0);
    socklen_t l = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static ShimmerProxy *http_proxy(guint16 port)
{
    ShimmerProxy *p = g_new0(ShimmerProxy, 1);
    p->type = SHIMMER_PROXY_HTTP;
    p->host = g_strdup("127.0.0.1");
    p->port = port;
    p->custom_headers = g_ptr_array_new();
    return p;
}

static ShimmerProxyConn *start(ShimmerProxy *p, guint timeout_s, Result *r)
{
    ShimmerProxyConnOptions o = {
        .proxy = p,
        .host = "vpn.example.org",
        .port = 1194,
        .mark = -1,
        .timeout_s = timeout_s,
        .done = on_done,
        .user = r,
    };
    g_autoptr(GError) error = NULL;
    ShimmerProxyConn *pc = shimmer_proxy_conn_start(&o, &error);
    g_assert_no_error(error);
    /* Never from inside start(). */
    g_assert_false(r->done);
    return pc;
}

static void test_silent_proxy(void)
{
    guint16 port;
    int lfd = listener(&port);
    g_autoptr(ShimmerProxy) p = http_proxy(port);
    Result r = {0};
    g_autoptr(ShimmerProxyConn) pc = start(p, 1, &r);
    gint64 t0 = g_get_monotonic_time();
    run_until(&r.done, 5);
    g_assert_true(r.done);
    g_assert_null(r.link);
    g_assert_nonnull(strstr(r.error, "within 1 s (connect-timeout)"));
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 900 * 1000);
    /* It did send its request: the connection is in the backlog. */
    int c = accept(lfd, NULL, NULL);
    g_assert_cmpint(c, >=, 0);
    char buf[256];
    ssize_t n = recv(c, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    g_assert_cmpint(n, >, 0);
    buf[n] = '\0';
    g_assert_true(g_str_has_prefix(buf, "CONNECT vpn.example.org:1194 HTTP/1.0\r\n"));
    close(c);
    close(lfd);
    g_free(r.error);
}

static gpointer accept_and_close(gpointer data)
{
    int lfd = GPOINTER_TO_INT(data);
    int c = accept(lfd, NULL, NULL);
    if (c >= 0) {
        char buf[512];
        (void)!read(c, buf, sizeof(buf));
        /* Half an answer, then nothing. */
        (void)!write(c, "HTTP/1.0 200", 12);
        close(c);
    }
    return NULL;
}

static void test_proxy_hangs_up(void)
{
    guint16 port;
    int lfd = listener(&port);
    GThread *t = g_thread_new("proxy", accept_and_close, GINT_TO_POINTER(lfd));
    g_autoptr(ShimmerProxy) p = http_proxy(port);
    Result r = {0};
    g_autoptr(ShimmerProxyConn) pc = start(p, 10, &r);
    run_until(&r.done, 5);
    g_thread_join(t);
    close(lfd);
    g_assert_true(r.done);
    g_assert_null(r.link);
    g_assert_nonnull(strstr(r.error, "closed the connection during the negotiation"));
    g_free(r.error);
}

static gpointer answer_with_early_bytes(gpointer data)
{
    int lfd = GPOINTER_TO_INT(data);
    int c = accept(lfd, NULL, NULL);
    if (c >= 0) {
        char buf[512];
        (void)!read(c, buf, sizeof(buf));
        /* The answer and the server's first bytes in one segment. */
        const char *a = "HTTP/1.0 200 Connection established\r\n\r\n\x00\x05"
                        "EARLY";
        (void)!write(c, a, 46);
        g_usleep(500 * 1000);
        close(c);
    }
    return NULL;
}

static void test_handoff_exact(void)
{
    guint16 port;
    int lfd = listener(&port);
    GThread *t = g_thread_new("proxy", answer_with_early_bytes, GINT_TO_POINTER(lfd));
    g_autoptr(ShimmerProxy) p = http_proxy(port);
    Result r = {0};
    g_autoptr(ShimmerProxyConn) pc = start(p, 10, &r);
    run_until(&r.done, 5);
    g_assert_null(r.error);
    g_assert_nonnull(r.link);
    g_assert_null(r.link->relay);
    g_assert_cmpstr(r.link->auth, ==, "none");
    /* What came after the answer is still in the socket for the tunnel. */
    char buf[64];
    ssize_t n = -1;
    for (int i = 0; i < 100 && n < 0; i++) {
        n = recv(r.link->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0)
            g_usleep(10 * 1000);
    }
    g_assert_cmpint(n, ==, 7);
    g_assert_cmpmem(buf, 7,
                    "\x00\x05"
                    "EARLY",
                    7);
    shimmer_proxy_link_free(r.link);
    g_thread_join(t);
    close(lfd);
}

static void test_no_proxy(void)
{
    guint16 port;
    int lfd = listener(&port);
    close(lfd); /* nothing listens there now */
    g_autoptr(ShimmerProxy) p = http_proxy(port);
    Result r = {0};
    g_autoptr(ShimmerProxyConn) pc = start(p, 10, &r);
    run_until(&r.done, 5);
    g_assert_true(r.done);
    g_assert_nonnull(strstr(r.error, "cannot connect to any of its addresses"));
    g_free(r.error);

    /* A proxy that cannot carry the connection is refused at the start. */
    ShimmerProxyConnOptions o = {.proxy = p, .host = "x", .port = 1, .udp = TRUE, .mark = -1};
    g_autoptr(GError) error = NULL;
    g_assert_null(shimmer_proxy_conn_start(&o, &error));
    g_assert_nonnull(strstr(error->message, "TCP only"));
}

/* ---------- the SOCKS5 UDP relay ---------- */

static void on_closed(gpointer user, const char *why)
{
    char **out = user;
    *out = g_strdup(why);
}

static gboolean readable(int fd)
{
    fd_set s;
    FD_ZERO(&s);
    FD_SET(fd, &s);
    struct timeval tv = {0, 0};
    return select(fd + 1, &s, NULL, NULL, &tv) > 0;
}

/* Iterates the loop until FD has a datagram or about a second passed. */
static gboolean wait_readable(int fd)
{
    for (int i = 0; i < 100; i++) {
        while (g_main_context_iteration(NULL, FALSE))
            ;
        if (readable(fd))
            return TRUE;
        g_usleep(10 * 1000);
    }
    return FALSE;
}

static void test_socks_udp_relay(void)
{
    /* The relay: a UDP socket on loopback. */
    int relay = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in ra = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    g_assert_cmpint(bind(relay, (struct sockaddr *)&ra, sizeof(ra)), ==, 0);
    socklen_t rl = sizeof(ra);
    getsockname(relay, (struct sockaddr *)&ra, &rl);
    /* The control connection: a socket pair, our end closed to end it. */
    int ctl[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), ==, 0);

    ShimmerProxyLink *link = g_new0(ShimmerProxyLink, 1);
    link->fd = ctl[0];
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    link->relay = G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(lo, ntohs(ra.sin_port)));
    g_autoptr(GInetAddress) srv_addr = g_inet_address_new_from_string("192.0.2.77");
    g_autoptr(GSocketAddress) server = g_inet_socket_address_new(srv_addr, 1194);
    char *closed = NULL;
    int tunnel_fd = -1;
    g_autoptr(GError) error = NULL;
    ShimmerSocksUdp *u = shimmer_socks_udp_new(link, G_INET_SOCKET_ADDRESS(server), -1, on_closed,
                                               &closed, &tunnel_fd, &error);
    g_assert_no_error(error);
    g_assert_cmpint(tunnel_fd, >=, 0);

    /* Out: the header names the server. */
    g_assert_cmpint(send(tunnel_fd, "hello", 5, 0), ==, 5);
    g_assert_true(wait_readable(relay));
    guint8 buf[128];
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(relay, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
    g_assert_cmpint(n, ==, 15);
    g_assert_cmpmem(buf, 10, "\0\0\0\x01\xc0\x00\x02\x4d\x04\xaa", 10);
    g_assert_cmpmem(buf + 10, 5, "hello", 5);

    /* In: the server's datagram loses its header; others are dropped. */
    const struct {
        const char *pkt;
        gsize len;
        gboolean passes;
    } in[] = {
        {"\0\0\0\x01\xc0\x00\x02\x4d\x04\xaa"
         "world",
         15, TRUE},
        {"\0\0\0\x01\xc0\x00\x02\x4e\x04\xaa"
         "other",
         15, FALSE}, /* another host */
        {"\0\0\0\x01\xc0\x00\x02\x4d\x04\xab"
         "other",
         15, FALSE}, /* another port */
        {"\0\0\x01\x01\xc0\x00\x02\x4d\x04\xaa"
         "frag",
         14, FALSE},          /* a fragment */
        {"\0\0\0", 3, FALSE}, /* truncated */
    };
    guint64 dropped = 0;
    for (gsize i = 0; i < G_N_ELEMENTS(in); i++) {
        g_assert_cmpint(sendto(relay, in[i].pkt, in[i].len, 0, (struct sockaddr *)&from, fl), ==,
                        (ssize_t)in[i].len);
        if (in[i].passes) {
            g_assert_true(wait_readable(tunnel_fd));
            n = recv(tunnel_fd, buf, sizeof(buf), 0);
            g_assert_cmpint(n, ==, 5);
            g_assert_cmpmem(buf, 5, "world", 5);
        } else {
            dropped++;
            for (int k = 0; k < 100 && shimmer_socks_udp_get_dropped(u) < dropped; k++) {
                while (g_main_context_iteration(NULL, FALSE))
                    ;
                g_usleep(5 * 1000);
            }
            g_assert_cmpuint(shimmer_socks_udp_get_dropped(u), ==, dropped);
            g_assert_false(readable(tunnel_fd));
        }
    }

    /* The proxy ends the association. */
    close(ctl[1]);
    for (int k = 0; k < 100 && closed == NULL; k++) {
        while (g_main_context_iteration(NULL, FALSE))
            ;
        g_usleep(5 * 1000);
    }
    g_assert_nonnull(closed);
    g_assert_nonnull(strstr(closed, "ended the UDP association"));
    g_free(closed);
    shimmer_socks_udp_free(u);
    close(tunnel_fd);
    close(relay);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/proxyconn/silent-proxy", test_silent_proxy);
    g_test_add_func("/proxyconn/proxy-hangs-up", test_proxy_hangs_up);
    g_test_add_func("/proxyconn/handoff-exact", test_handoff_exact);
    g_test_add_func("/proxyconn/no-proxy", test_no_proxy);
    g_test_add_func("/proxyconn/socks-udp-relay", test_socks_udp_relay);
    return g_test_run();
}
