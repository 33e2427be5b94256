/* SPDX-License-Identifier: MIT */
/*
 * service/os/udp.c on the loopback device: batches sent with and without
 * GSO arrive as the same datagrams, in order, received with and without
 * GRO; a GSO send the kernel refuses is sent again without it. Needs no
 * root: only sockets bound to 127.0.0.1.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "os/udp.h"

typedef struct {
    int tx, rx;
    struct sockaddr_in rx_addr;
} Pair;

static int bound_socket(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(fd, >=, 0);
    int buf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), ==, 0);
    socklen_t l = sizeof(*addr);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)addr, &l), ==, 0);
    return fd;
}

static void pair_open(Pair *p, gboolean connected)
{
    struct sockaddr_in tx_addr;
    p->rx = bound_socket(&p->rx_addr);
    p->tx = bound_socket(&tx_addr);
    if (connected)
        g_assert_cmpint(connect(p->tx, (struct sockaddr *)&p->rx_addr, sizeof(p->rx_addr)), ==, 0);
}

static void pair_close(Pair *p)
{
    close(p->tx);
    close(p->rx);
}

static void fill(guint8 *b, gsize len, guint seed)
{
    for (gsize i = 0; i < len; i++)
        b[i] = (guint8)(seed * 31 + i * 7 + (i >> 8));
}

/* Receives until COUNT datagrams arrived (bounded); checks each against
 * the expected lengths and contents in order. */
static guint receive_all(int fd, gboolean gro, const gsize *lens, guint count, guint *gro_bufs)
{
    g_autoptr(ShimmerUdpReceiver) r = shimmer_udp_receiver_new(8, gro ? 65536 : 2048, 8 * 64);
    guint got = 0, truncated = 0;
    for (guint tries = 0; got < count && tries < 200; tries++) {
        const ShimmerUdpDatagram *d = NULL;
        gint n = shimmer_udp_receive(r, fd, &d, &truncated, gro_bufs);
        g_assert_cmpint(n, >=, 0);
        if (n == 0) {
            g_usleep(2000);
            continue;
        }
        for (gint i = 0; i < n; i++, got++) {
            g_assert_cmpuint(got, <, count);
            g_assert_cmpuint(d[i].len, ==, lens[got]);
            guint8 want[2000];
            fill(want, lens[got], got);
            g_assert_cmpmem(d[i].data, d[i].len, want, lens[got]);
            g_assert_cmpuint(d[i].from_len, ==, sizeof(struct sockaddr_in));
        }
    }
    g_assert_cmpuint(truncated, ==, 0);
    return got;
}

/* 3 runs: 40 x 1200 bytes with a 300-byte tail, 20 x 100, then mixed
 * sizes. */
static guint make_batch(guint8 **bufs, gsize *lens, ShimmerUdpPacket *pkts,
                        const struct sockaddr *to, socklen_t to_len)
{
    guint n = 0;
    for (guint i = 0; i < 40; i++)
        lens[n++] = 1200;
    lens[n++] = 300;
    for (guint i = 0; i < 20; i++)
        lens[n++] = 100;
    static const gsize mixed[] = {1400, 1300, 1400, 1, 2, 1000, 1000, 1000};
    for (guint i = 0; i < G_N_ELEMENTS(mixed); i++)
        lens[n++] = mixed[i];
    for (guint i = 0; i < n; i++) {
        bufs[i] = g_malloc(lens[i]);
        fill(bufs[i], lens[i], i);
        pkts[i] = (ShimmerUdpPacket){bufs[i], lens[i], to, to_len};
    }
    return n;
}

static void check_send(gconstpointer data)
{
    guint mode = GPOINTER_TO_UINT(data);
    gboolean gso = mode & 1, gro = (mode & 2) != 0, connected = (mode & 4) != 0;
    Pair p;
    pair_open(&p, connected);
    ShimmerUdpCaps txcaps, rxcaps;
    shimmer_udp_setup(p.tx, gso, FALSE, &txcaps);
    shimmer_udp_setup(p.rx, FALSE, gro, &rxcaps);
    g_assert_cmpint(txcaps.gso, ==, gso);
    g_assert_cmpint(rxcaps.gro, ==, gro);
    guint8 *bufs[100];
    gsize lens[100];
    ShimmerUdpPacket pkts[100];
    guint n = make_batch(bufs, lens, pkts, connected ? NULL : (struct sockaddr *)&p.rx_addr,
                         sizeof(p.rx_addr));
    g_autoptr(ShimmerUdpSender) s = shimmer_udp_sender_new(100);
    ShimmerUdpSendResult res = {0};
    shimmer_udp_send(s, p.tx, &txcaps, pkts, n, &res);
    g_assert_cmpuint(res.sent, ==, n);
    g_assert_cmpuint(res.dropped, ==, 0);
    g_assert_cmpint(res.error, ==, 0);
    if (gso) {
        /* 41 + 20 + (1400 | 1300,1400 | 1,2 | 1000 x 3): runs glued. */
        g_assert_cmpuint(res.gso_sends, >=, 3);
        g_assert_cmpuint(res.syscalls, ==, 1);
    } else {
        g_assert_cmpuint(res.gso_sends, ==, 0);
    }
    guint gro_bufs = 0;
    g_assert_cmpuint(receive_all(p.rx, gro, lens, n, &gro_bufs), ==, n);
    if (!gro)
        g_assert_cmpuint(gro_bufs, ==, 0);
    else if (gso)
        g_assert_cmpuint(gro_bufs, >, 0); /* loopback keeps GSO buffers whole */
    for (guint i = 0; i < n; i++)
        g_free(bufs[i]);
    pair_close(&p);
}

/* A kernel that refuses UDP_SEGMENT for a socket (here: one that sends
 * without checksums, which GSO needs): the run goes out one by one, and
 * that size is not tried with GSO again. */
static void test_gso_refused(void)
{
    Pair p;
    pair_open(&p, TRUE);
    int one = 1;
    g_assert_cmpint(setsockopt(p.tx, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), ==, 0);
    ShimmerUdpCaps caps, rxcaps;
    shimmer_udp_setup(p.tx, TRUE, FALSE, &caps);
    shimmer_udp_setup(p.rx, FALSE, TRUE, &rxcaps);
    g_assert_true(caps.gso);
    guint8 *bufs[100];
    gsize lens[100];
    ShimmerUdpPacket pkts[100];
    guint n = make_batch(bufs, lens, pkts, NULL, 0);
    g_autoptr(ShimmerUdpSender) s = shimmer_udp_sender_new(100);
    ShimmerUdpSendResult res = {0};
    shimmer_udp_send(s, p.tx, &caps, pkts, n, &res);
    g_assert_cmpuint(res.sent, ==, n);
    g_assert_cmpuint(res.gso_sends, ==, 0);
    g_assert_true(caps.gso_refused);
    g_assert_cmpuint(caps.gso_max_size, <=, 1200);
    guint gro_bufs = 0;
    g_assert_cmpuint(receive_all(p.rx, TRUE, lens, n, &gro_bufs), ==, n);
    g_assert_cmpuint(gro_bufs, ==, 0);
    for (guint i = 0; i < n; i++)
        g_free(bufs[i]);
    pair_close(&p);
}

/* An unconnected socket sending to two receivers in one batch: runs end
 * where the address changes. */
static void test_two_destinations(void)
{
    Pair a, b;
    pair_open(&a, FALSE);
    pair_open(&b, FALSE);
    ShimmerUdpCaps caps;
    shimmer_udp_setup(a.tx, TRUE, FALSE, &caps);
    guint8 payload[64][500];
    ShimmerUdpPacket pkts[64];
    gsize lens_a[64], lens_b[64];
    guint na = 0, nb = 0;
    for (guint i = 0; i < 64; i++) {
        gboolean to_b = (i / 8) % 2 == 1;
        guint idx = to_b ? nb : na;
        fill(payload[i], 500, idx);
        (to_b ? lens_b : lens_a)[idx] = 500;
        if (to_b)
            nb++;
        else
            na++;
        pkts[i] =
            (ShimmerUdpPacket){payload[i], 500, (struct sockaddr *)(to_b ? &b.rx_addr : &a.rx_addr),
                               sizeof(struct sockaddr_in)};
    }
    g_autoptr(ShimmerUdpSender) s = shimmer_udp_sender_new(64);
    ShimmerUdpSendResult res = {0};
    shimmer_udp_send(s, a.tx, &caps, pkts, 64, &res);
    g_assert_cmpuint(res.sent, ==, 64);
    g_assert_cmpuint(res.gso_sends, ==, 8);
    guint gro_bufs = 0;
    g_assert_cmpuint(receive_all(a.rx, FALSE, lens_a, na, &gro_bufs), ==, na);
    g_assert_cmpuint(receive_all(b.rx, FALSE, lens_b, nb, &gro_bufs), ==, nb);
    pair_close(&a);
    pair_close(&b);
}

/* A closed port behind a connected socket: the error comes back. */
static void test_refused(void)
{
    Pair p;
    pair_open(&p, TRUE);
    close(p.rx);
    ShimmerUdpCaps caps;
    shimmer_udp_setup(p.tx, TRUE, TRUE, &caps);
    guint8 data[100] = {0};
    ShimmerUdpPacket pkts[2] = {{data, 100, NULL, 0}, {data, 100, NULL, 0}};
    g_autoptr(ShimmerUdpSender) s = shimmer_udp_sender_new(2);
    ShimmerUdpSendResult res = {0};
    shimmer_udp_send(s, p.tx, &caps, pkts, 2, &res);
    g_usleep(10000);
    g_autoptr(ShimmerUdpReceiver) r = shimmer_udp_receiver_new(4, 2048, 4);
    const ShimmerUdpDatagram *d;
    guint t = 0, gb = 0;
    gint n = shimmer_udp_receive(r, p.tx, &d, &t, &gb);
    if (n >= 0) {
        /* The ICMP error may be reported on a send instead. */
        res = (ShimmerUdpSendResult){0};
        shimmer_udp_send(s, p.tx, &caps, pkts, 2, &res);
        g_assert_cmpint(res.error, ==, ECONNREFUSED);
    } else {
        g_assert_cmpint(errno, ==, ECONNREFUSED);
    }
    close(p.tx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (guint mode = 0; mode < 8; mode++) {
        g_autofree char *name =
            g_strdup_printf("/udp/send/%s-%s-%s", mode & 1 ? "gso" : "no-gso",
                            mode & 2 ? "gro" : "no-gro", mode & 4 ? "connected" : "unconnected");
        g_test_add_data_func(name, GUINT_TO_POINTER(mode), check_send);
    }
    g_test_add_func("/udp/gso-refused", test_gso_refused);
    g_test_add_func("/udp/two-destinations", test_two_destinations);
    g_test_add_func("/udp/refused", test_refused);
    return g_test_run();
}
