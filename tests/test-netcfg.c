/* SPDX-License-Identifier: MIT */
/*
 * The tun device and its rtnetlink configuration, against the real kernel.
 *
 * Needs root. Every test case first moves the process into a network
 * namespace of its own (unshare(CLONE_NEWNET)) and checks that it got there
 * before it creates a socket or a device, so the machine's own interfaces,
 * addresses and routes are never seen, let alone changed. An unnamed
 * namespace lives only as long as something is in it: the next case's
 * unshare, or the end of the process however it ends (an assertion abort
 * included), takes it away with every device, address and route in it.
 * Nothing is left behind to clean up, on any path.
 *
 * Addresses come from 10.213.0.0/16 and fd5e::/16 (see LAB.md). The only
 * traffic is a handful of UDP datagrams between a socket and the tun device,
 * both inside the test's namespace.
 *
 * Checks go through libnl-route's caches (RTM_GET* dumps), not through the
 * library under test.
 */
#include "os/netcfg.h"
#include "os/tun.h"

#include <net/if.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/rtnetlink.h>

#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

/* How long to wait for a packet that must come; nothing here takes more
 * than microseconds when it works. */
#define WAIT_MS 2000

static ino_t host_netns;

static ino_t current_netns(void)
{
    struct stat st;

    g_assert_no_errno(stat("/proc/thread-self/ns/net", &st));
    return st.st_ino;
}

typedef struct {
    /* The test's own view of the kernel. */
    struct nl_sock *sk;
    /* What the "machine" had configured before the VPN came up (lo, the
     * simulated uplink). Never rolled back: the namespace takes it away. */
    ShimmerNetcfg *world;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    g_assert_no_errno(unshare(CLONE_NEWNET));
    /* The guard for everything below: never configure the machine itself. */
    g_assert_cmpuint(current_netns(), !=, host_netns);

    f->sk = nl_socket_alloc();
    g_assert_nonnull(f->sk);
    g_assert_cmpint(nl_connect(f->sk, NETLINK_ROUTE), ==, 0);
    f->world = shimmer_netcfg_new(&error);
    g_assert_no_error(error);
    /* Local delivery goes through lo, which starts down in a new namespace. */
    g_assert_true(shimmer_netcfg_link_set_up(f->world, (int)if_nametoindex("lo"), TRUE, &error));
    g_assert_no_error(error);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    shimmer_netcfg_free(f->world);
    nl_socket_free(f->sk);
}

/* ---- helpers ---------------------------------------------------------------- */

static GInetAddress *ip(const char *s)
{
    GInetAddress *a = g_inet_address_new_from_string(s);

    g_assert_nonnull(a);
    return a;
}

static GInetAddressMask *net(const char *s)
{
    g_autoptr(GError) error = NULL;
    GInetAddressMask *m = g_inet_address_mask_new_from_string(s, &error);

    g_assert_no_error(error);
    return m;
}

static ShimmerTun *open_tun(const char *name)
{
    g_autoptr(GError) error = NULL;
    ShimmerTun *tun = shimmer_tun_open(name, &error);

    g_assert_no_error(error);
    g_assert_nonnull(tun);
    return tun;
}

static ShimmerNetcfg *new_netcfg(void)
{
    g_autoptr(GError) error = NULL;
    ShimmerNetcfg *nc = shimmer_netcfg_new(&error);

    g_assert_no_error(error);
    return nc;
}

/* IPv6 on a device sends router solicitations and MLD reports on its own;
 * switching it off keeps what the tun yields to exactly our datagrams. */
static void disable_ipv6(const char *ifname)
{
    g_autofree char *path = g_strdup_printf("/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, "1", 1), ==, 1);
    close(fd);
}

/* NL's bytes equal A's. A zero-length NL (a default route's missing
 * destination) equals an all-zero A. */
static gboolean nl_addr_is(struct nl_addr *nl, GInetAddress *a)
{
    gsize size = g_inet_address_get_native_size(a);
    const guint8 *bytes = g_inet_address_to_bytes(a);

    if (nl == NULL || nl_addr_get_len(nl) == 0) {
        for (gsize i = 0; i < size; i++)
            if (bytes[i] != 0)
                return FALSE;
        return TRUE;
    }
    return nl_addr_get_len(nl) == size && memcmp(nl_addr_get_binary_addr(nl), bytes, size) == 0;
}

static int af(GInetAddress *a)
{
    return g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
}

/* A route in the main table to DST with one next hop through OIF (0: any)
 * and GATEWAY (NULL: none), with priority PRIO (-1: any). */
static gboolean route_exists(Fixture *f, const char *dst, int oif, const char *gateway, gint64 prio)
{
    g_autoptr(GInetAddressMask) want = net(dst);
    g_autoptr(GInetAddress) gw = gateway != NULL ? ip(gateway) : NULL;
    GInetAddress *want_addr = g_inet_address_mask_get_address(want);
    struct nl_cache *cache = NULL;
    gboolean found = FALSE;

    g_assert_cmpint(rtnl_route_alloc_cache(f->sk, af(want_addr), 0, &cache), ==, 0);
    for (struct nl_object *o = nl_cache_get_first(cache); o != NULL && !found;
         o = nl_cache_get_next(o)) {
        struct rtnl_route *r = (struct rtnl_route *)o;
        struct nl_addr *d = rtnl_route_get_dst(r);

        if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_nnexthops(r) != 1)
            continue;
        if (d == NULL || nl_addr_get_prefixlen(d) != g_inet_address_mask_get_length(want) ||
            !nl_addr_is(d, want_addr))
            continue;
        if (prio >= 0 && rtnl_route_get_priority(r) != (guint32)prio)
            continue;

        struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);
        struct nl_addr *g = rtnl_route_nh_get_gateway(nh);

        if (oif != 0 && rtnl_route_nh_get_ifindex(nh) != oif)
            continue;
        if (gw == NULL ? g != NULL : (g == NULL || !nl_addr_is(g, gw)))
            continue;
        found = TRUE;
    }
    nl_cache_free(cache);
    return found;
}

/* Address LOCAL with PREFIX (and PEER, NULL: none) on IFINDEX. */
static gboolean addr_exists(Fixture *f, int ifindex, const char *local, guint prefix,
                            const char *peer)
{
    g_autoptr(GInetAddress) l = ip(local);
    g_autoptr(GInetAddress) p = peer != NULL ? ip(peer) : NULL;
    struct nl_cache *cache = NULL;
    gboolean found = FALSE;

    g_assert_cmpint(rtnl_addr_alloc_cache(f->sk, &cache), ==, 0);
    for (struct nl_object *o = nl_cache_get_first(cache); o != NULL && !found;
         o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *)o;
        struct nl_addr *ap = rtnl_addr_get_peer(a);

        if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != af(l) ||
            !nl_addr_is(rtnl_addr_get_local(a), l) || rtnl_addr_get_prefixlen(a) != (int)prefix)
            continue;
        /* libnl reports no peer when IFA_ADDRESS equals IFA_LOCAL. */
        if (p == NULL ? (ap != NULL && !nl_addr_is(ap, l)) : (ap == NULL || !nl_addr_is(ap, p)))
            continue;
        found = TRUE;
    }
    nl_cache_free(cache);
    return found;
}

static void get_link(Fixture *f, int ifindex, guint *mtu, guint *flags)
{
    struct rtnl_link *link = NULL;

    g_assert_cmpint(rtnl_link_get_kernel(f->sk, ifindex, NULL, &link), ==, 0);
    *mtu = rtnl_link_get_mtu(link);
    *flags = rtnl_link_get_flags(link);
    rtnl_link_put(link);
}

static void link_up(ShimmerNetcfg *nc, int ifindex)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(shimmer_netcfg_link_set_up(nc, ifindex, TRUE, &error));
    g_assert_no_error(error);
}

static void add_addr(ShimmerNetcfg *nc, int ifindex, const char *local, guint prefix,
                     const char *peer)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GInetAddress) l = ip(local);
    g_autoptr(GInetAddress) p = peer != NULL ? ip(peer) : NULL;

    g_assert_true(shimmer_netcfg_addr_add(nc, ifindex, l, prefix, p, &error));
    g_assert_no_error(error);
}

static void add_route(ShimmerNetcfg *nc, const char *dst, int ifindex, const char *gateway,
                      guint32 metric)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GInetAddressMask) d = net(dst);
    g_autoptr(GInetAddress) g = gateway != NULL ? ip(gateway) : NULL;

    g_assert_true(shimmer_netcfg_route_add(nc, d, ifindex, g, metric, &error));
    g_assert_no_error(error);
}

/* The namespace's stand-in for the machine's uplink: a veth pair with
 * 10.213.9.2/24 and fd5e:9::2/64 on our end and default routes through
 * 10.213.9.1 and fd5e:9::1. Nobody answers there: only route decisions are
 * tested through it, no packet is sent. Returns our end's index. */
static int make_uplink(Fixture *f)
{
    int up0, up1;

    g_assert_cmpint(rtnl_link_veth_add(f->sk, "shup0", "shup1", getpid()), ==, 0);
    up0 = (int)if_nametoindex("shup0");
    up1 = (int)if_nametoindex("shup1");
    g_assert_cmpint(up0, >, 0);
    g_assert_cmpint(up1, >, 0);
    link_up(f->world, up0);
    link_up(f->world, up1);
    add_addr(f->world, up0, "10.213.9.2", 24, NULL);
    add_addr(f->world, up0, "fd5e:9::2", 64, NULL);
    add_route(f->world, "0.0.0.0/0", 0, "10.213.9.1", 0);
    add_route(f->world, "::/0", up0, "fd5e:9::1", 0);
    return up0;
}

/* Where the kernel sends packets for DEST now. */
static void lookup(ShimmerNetcfg *nc, const char *dest, int *ifindex, char **gateway)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GInetAddress) d = ip(dest);
    g_auto(ShimmerNetcfgRoute) r = {0};

    gboolean ok = shimmer_netcfg_route_lookup(nc, d, &r, &error);

    g_assert_no_error(error);
    g_assert_true(ok);
    g_assert_false(r.local);
    *ifindex = r.ifindex;
    *gateway = r.gateway != NULL ? g_inet_address_to_string(r.gateway) : NULL;
}

static void assert_lookup(ShimmerNetcfg *nc, const char *dest, int want_ifindex,
                          const char *want_gateway)
{
    g_autofree char *gw = NULL;
    int ifindex;

    lookup(nc, dest, &ifindex, &gw);
    g_assert_cmpint(ifindex, ==, want_ifindex);
    g_assert_cmpstr(gw, ==, want_gateway);
}

/* ---- IPv4/UDP packets for the tun I/O test ------------------------------------ */

static guint16 ip_checksum(const guint8 *p, gsize len)
{
    guint32 sum = 0;

    for (gsize i = 0; i + 1 < len; i += 2)
        sum += (guint32)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)~sum;
}

/* An IPv4/UDP packet into BUF (at least 28 + LEN bytes); returns its length.
 * UDP checksum 0: "not computed", which IPv4 allows. */
static gsize make_udp4(guint8 *buf, const char *src, guint16 sport, const char *dst, guint16 dport,
                       const void *payload, gsize len)
{
    g_autoptr(GInetAddress) s = ip(src);
    g_autoptr(GInetAddress) d = ip(dst);
    gsize total = 28 + len;
    guint16 sum;

    memset(buf, 0, 28);
    buf[0] = 0x45;
    buf[2] = (guint8)(total >> 8);
    buf[3] = (guint8)total;
    buf[6] = 0x40; /* DF */
    buf[8] = 64;
    buf[9] = IPPROTO_UDP;
    memcpy(buf + 12, g_inet_address_to_bytes(s), 4);
    memcpy(buf + 16, g_inet_address_to_bytes(d), 4);
    sum = ip_checksum(buf, 20);
    buf[10] = (guint8)(sum >> 8);
    buf[11] = (guint8)sum;
    buf[20] = (guint8)(sport >> 8);
    buf[21] = (guint8)sport;
    buf[22] = (guint8)(dport >> 8);
    buf[23] = (guint8)dport;
    buf[24] = (guint8)((8 + len) >> 8);
    buf[25] = (guint8)(8 + len);
    memcpy(buf + 28, payload, len);
    return total;
}

static gboolean wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, WAIT_MS) == 1;
}

static int udp_socket(const char *addr, guint16 port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    g_autoptr(GInetAddress) a = ip(addr);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(s, >=, 0);
    memcpy(&sin.sin_addr, g_inet_address_to_bytes(a), 4);
    g_assert_no_errno(bind(s, (struct sockaddr *)&sin, sizeof(sin)));
    return s;
}

static void send_udp(int s, const char *addr, guint16 port, const char *payload)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    g_autoptr(GInetAddress) a = ip(addr);

    memcpy(&sin.sin_addr, g_inet_address_to_bytes(a), 4);
    g_assert_cmpint(sendto(s, payload, strlen(payload), 0, (struct sockaddr *)&sin, sizeof(sin)),
                    ==, (gssize)strlen(payload));
}

/* PKT is IPv4/UDP to port DPORT carrying PAYLOAD. */
static void assert_udp4(const guint8 *pkt, gsize len, guint16 dport, const char *payload)
{
    gsize plen = strlen(payload);

    g_assert_cmpuint(len, ==, 28 + plen);
    g_assert_cmphex(pkt[0], ==, 0x45);
    g_assert_cmpuint(pkt[9], ==, IPPROTO_UDP);
    g_assert_cmpuint((guint)(pkt[22] << 8 | pkt[23]), ==, dport);
    g_assert_cmpmem(pkt + 28, plen, payload, plen);
}

static void recv_udp(int s, const char *payload)
{
    char buf[256];
    gssize n;

    g_assert_true(wait_readable(s));
    n = recv(s, buf, sizeof(buf), 0);
    g_assert_cmpmem(buf, n, payload, strlen(payload));
}

/* ---- tests -------------------------------------------------------------------- */

static void test_tun_open(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerTun) a = open_tun(NULL);
    g_autoptr(ShimmerTun) b = open_tun("shtun%d");
    ShimmerTun *c = open_tun("shtest7");
    guint8 buf[1500];
    gsize len = 99;
    int fd = shimmer_tun_get_fd(a);

    g_assert_cmpstr(shimmer_tun_get_name(a), ==, "tun0");
    g_assert_cmpstr(shimmer_tun_get_name(b), ==, "shtun0");
    g_assert_cmpstr(shimmer_tun_get_name(c), ==, "shtest7");
    g_assert_cmpint(shimmer_tun_get_ifindex(a), ==, (int)if_nametoindex("tun0"));
    g_assert_cmpint(shimmer_tun_get_ifindex(c), ==, (int)if_nametoindex("shtest7"));
    g_assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    g_assert_false(shimmer_tun_is_persistent(a));

    /* Nothing waiting is not an error. */
    g_assert_true(shimmer_tun_read(a, buf, sizeof(buf), &len, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(len, ==, 0);

    /* One holder per (single-queue) device. */
    g_assert_null(shimmer_tun_open("shtest7", &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_BUSY);
    g_assert_cmpstr(error->message, ==,
                    "cannot create tun device shtest7: Device or resource busy");
    g_clear_error(&error);

    /* A name that is not a tun cannot be taken over. */
    g_assert_null(shimmer_tun_open("lo", &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(error->message, ==, "cannot create tun device lo: Invalid argument");
    g_clear_error(&error);

    g_assert_null(shimmer_tun_open("a-name-far-too-long", &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_null(shimmer_tun_open("", &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    /* Not persistent: closing deletes the device. */
    shimmer_tun_close(c);
    g_assert_cmpuint(if_nametoindex("shtest7"), ==, 0);
}

static void test_tun_io(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerNetcfg) nc = new_netcfg();
    g_autoptr(ShimmerTun) tun = open_tun("shio%d");
    int ifindex = shimmer_tun_get_ifindex(tun);
    int fd = shimmer_tun_get_fd(tun);
    guint8 buf[1500];
    guint8 pkts_mem[4][128];
    ShimmerTunPacket pkts[4];
    gsize len;
    guint n;

    disable_ipv6(shimmer_tun_get_name(tun));
    g_assert_true(shimmer_netcfg_link_set_mtu(nc, ifindex, 1400, &error));
    link_up(nc, ifindex);
    add_addr(nc, ifindex, "10.213.5.2", 24, NULL);
    int s = udp_socket("10.213.5.2", 47001);

    /* A datagram to a neighbour on the tunnel's subnet comes out of the tun. */
    send_udp(s, "10.213.5.77", 47002, "hello");
    g_assert_true(wait_readable(fd));
    g_assert_true(shimmer_tun_read(tun, buf, sizeof(buf), &len, &error));
    g_assert_no_error(error);
    assert_udp4(buf, len, 47002, "hello");
    g_assert_true(shimmer_tun_read(tun, buf, sizeof(buf), &len, &error));
    g_assert_cmpuint(len, ==, 0);

    /* Too small a buffer: the packet is dropped, and said so; reading goes on. */
    send_udp(s, "10.213.5.77", 47002, "this one does not fit into twenty bytes");
    send_udp(s, "10.213.5.77", 47002, "next");
    g_assert_true(wait_readable(fd));
    g_assert_false(shimmer_tun_read(tun, buf, 20, &len, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
    g_test_message("%s", error->message);
    g_clear_error(&error);
    g_assert_true(shimmer_tun_read(tun, buf, sizeof(buf), &len, &error));
    assert_udp4(buf, len, 47002, "next");

    /* A packet written to the tun arrives at the socket. */
    len = make_udp4(buf, "10.213.5.77", 47002, "10.213.5.2", 47001, "pong", 4);
    g_assert_true(shimmer_tun_write(tun, buf, len, &error));
    g_assert_no_error(error);
    recv_udp(s, "pong");

    /* Batches, both ways. */
    for (guint i = 0; i < 4; i++) {
        char p[3] = {'b', (char)('0' + i), 0};

        pkts[i].data = pkts_mem[i];
        pkts[i].capacity = sizeof(pkts_mem[i]);
        pkts[i].len = make_udp4(pkts_mem[i], "10.213.5.77", 47002, "10.213.5.2", 47001, p, 2);
    }
    g_assert_true(shimmer_tun_write_batch(tun, pkts, 4, &n, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(n, ==, 4);
    recv_udp(s, "b0");
    recv_udp(s, "b1");
    recv_udp(s, "b2");
    recv_udp(s, "b3");

    send_udp(s, "10.213.5.77", 47002, "r0");
    send_udp(s, "10.213.5.77", 47002, "r1");
    send_udp(s, "10.213.5.77", 47002, "r2");
    g_assert_true(wait_readable(fd));
    g_assert_true(shimmer_tun_read_batch(tun, pkts, 4, &n, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(n, ==, 3);
    assert_udp4(pkts[0].data, pkts[0].len, 47002, "r0");
    assert_udp4(pkts[1].data, pkts[1].len, 47002, "r1");
    assert_udp4(pkts[2].data, pkts[2].len, 47002, "r2");
    g_assert_true(shimmer_tun_read_batch(tun, pkts, 4, &n, &error));
    g_assert_cmpuint(n, ==, 0);

    /* Not an IP packet: refused whole; the first bad one stops a batch. */
    static const guint8 junk[3] = {0, 1, 2};
    g_autofree char *want = g_strdup_printf(
        "cannot write a packet of 3 bytes to %s: Invalid argument", shimmer_tun_get_name(tun));
    g_assert_false(shimmer_tun_write(tun, junk, sizeof(junk), &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(error->message, ==, want);
    g_clear_error(&error);
    pkts[1].data = (guint8 *)junk;
    pkts[1].len = sizeof(junk);
    g_assert_false(shimmer_tun_write_batch(tun, pkts, 4, &n, &error));
    g_assert_cmpuint(n, ==, 1);
    g_clear_error(&error);

    /* A buffer exactly as long as the packet is enough. */
    send_udp(s, "10.213.5.77", 47002, "exact");
    g_assert_true(wait_readable(fd));
    g_assert_true(shimmer_tun_read(tun, buf, 28 + 5, &len, &error));
    g_assert_no_error(error);
    assert_udp4(buf, len, 47002, "exact");

    /* A device that is down takes no packets. */
    g_assert_true(shimmer_netcfg_link_set_up(nc, ifindex, FALSE, &error));
    len = make_udp4(buf, "10.213.5.77", 47002, "10.213.5.2", 47001, "down", 4);
    g_assert_false(shimmer_tun_write(tun, buf, len, &error));
    g_assert_true(error->domain == G_IO_ERROR);
    g_test_message("%s", error->message);
    g_clear_error(&error);

    close(s);
}

static void test_link(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerNetcfg) nc = new_netcfg();
    g_autoptr(ShimmerTun) tun = open_tun("shlink%d");
    int ifindex = shimmer_tun_get_ifindex(tun);
    guint mtu, flags;

    g_assert_true(shimmer_netcfg_link_set_mtu(nc, ifindex, 1400, &error));
    g_assert_no_error(error);
    g_assert_true(shimmer_netcfg_link_set_up(nc, ifindex, TRUE, &error));
    g_assert_no_error(error);
    get_link(f, ifindex, &mtu, &flags);
    g_assert_cmpuint(mtu, ==, 1400);
    g_assert_true(flags & IFF_UP);

    g_assert_true(shimmer_netcfg_link_set_up(nc, ifindex, FALSE, &error));
    g_assert_no_error(error);
    get_link(f, ifindex, &mtu, &flags);
    g_assert_false(flags & IFF_UP);
    g_assert_cmpuint(mtu, ==, 1400);

    /* Refusals name the object and carry the kernel's reason. */
    g_assert_false(shimmer_netcfg_link_set_mtu(nc, ifindex, 20, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_test_message("%s", error->message);
    g_assert_true(
        g_str_has_prefix(error->message, "cannot set MTU 20 on shlink0: Invalid argument"));
    g_clear_error(&error);

    g_assert_false(shimmer_netcfg_link_set_up(nc, 4242, TRUE, &error));
    g_test_message("%s", error->message);
    g_assert_true(g_str_has_prefix(error->message, "cannot set ifindex 4242 up: No such device"));
    g_clear_error(&error);

    g_assert_false(shimmer_netcfg_link_set_up(nc, 0, TRUE, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 0);
}

static void test_addr(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerNetcfg) nc = new_netcfg();
    g_autoptr(ShimmerTun) tun_a = open_tun("shaddr%d");
    g_autoptr(ShimmerTun) tun_b = open_tun("shaddr%d");
    g_autoptr(GInetAddress) sub = ip("10.213.5.2");
    g_autoptr(GInetAddress) missing = ip("10.213.5.3");
    int a = shimmer_tun_get_ifindex(tun_a);
    int b = shimmer_tun_get_ifindex(tun_b);

    g_assert_cmpint(a, !=, b);
    link_up(nc, a);
    link_up(nc, b);

    /* topology subnet */
    add_addr(nc, a, "10.213.5.2", 24, NULL);
    /* topology net30: local and peer */
    add_addr(nc, b, "10.213.6.6", 32, "10.213.6.5");
    /* IPv6 */
    add_addr(nc, a, "fd5e:5::2", 64, NULL);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 3);

    g_assert_true(addr_exists(f, a, "10.213.5.2", 24, NULL));
    g_assert_true(addr_exists(f, b, "10.213.6.6", 32, "10.213.6.5"));
    g_assert_true(addr_exists(f, a, "fd5e:5::2", 64, NULL));
    /* ... and the routes the kernel derives from them. */
    g_assert_true(route_exists(f, "10.213.5.0/24", a, NULL, -1));
    g_assert_true(route_exists(f, "10.213.6.5/32", b, NULL, -1));
    g_assert_true(route_exists(f, "fd5e:5::/64", a, NULL, -1));

    /* Someone's address (here: our own) is not taken over. */
    g_assert_false(shimmer_netcfg_addr_add(nc, a, sub, 24, NULL, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
    g_assert_true(g_str_has_prefix(error->message,
                                   "cannot add address 10.213.5.2/24 on shaddr0: File exists"));
    g_clear_error(&error);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 3);

    g_assert_false(shimmer_netcfg_addr_remove(nc, a, missing, 24, NULL, &error));
    g_test_message("%s", error->message);
    g_assert_true(g_str_has_prefix(error->message,
                                   "cannot remove address 10.213.5.3/24 on shaddr0: "
                                   "Cannot assign requested address"));
    g_clear_error(&error);

    g_assert_false(shimmer_netcfg_addr_add(nc, a, sub, 33, NULL, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    /* An explicit removal also leaves the undo list. */
    g_assert_true(shimmer_netcfg_addr_remove(nc, a, sub, 24, NULL, &error));
    g_assert_no_error(error);
    g_assert_false(addr_exists(f, a, "10.213.5.2", 24, NULL));
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 2);

    g_assert_true(shimmer_netcfg_rollback(nc, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 0);
    g_assert_false(addr_exists(f, b, "10.213.6.6", 32, "10.213.6.5"));
    g_assert_false(addr_exists(f, a, "fd5e:5::2", 64, NULL));
    g_assert_false(route_exists(f, "10.213.6.5/32", b, NULL, -1));
}

static void test_route(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerNetcfg) nc = new_netcfg();
    g_autoptr(ShimmerTun) tun = open_tun("shrt%d");
    g_autoptr(GInetAddressMask) dup = net("10.214.0.0/16");
    g_autoptr(GInetAddressMask) absent = net("10.216.0.0/16");
    g_autoptr(GInetAddressMask) other = net("10.217.0.0/16");
    g_autoptr(GInetAddress) far = ip("10.250.0.1");
    g_auto(ShimmerNetcfgRoute) r = {0};
    int t = shimmer_tun_get_ifindex(tun);

    g_assert_true(shimmer_netcfg_link_set_mtu(nc, t, 1400, &error));
    link_up(nc, t);
    add_addr(nc, t, "10.213.5.2", 24, NULL);
    add_addr(nc, t, "fd5e:5::2", 64, NULL);

    add_route(nc, "10.214.0.0/16", t, NULL, 50);
    add_route(nc, "fd5e:99::/48", t, NULL, 0);
    /* topology subnet: through the server's tunnel address */
    add_route(nc, "10.215.0.0/16", t, "10.213.5.1", 0);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 5);

    g_assert_true(route_exists(f, "10.214.0.0/16", t, NULL, 50));
    g_assert_true(route_exists(f, "fd5e:99::/48", t, NULL, 1024));
    g_assert_true(route_exists(f, "10.215.0.0/16", t, "10.213.5.1", 0));
    assert_lookup(nc, "10.214.3.4", t, NULL);
    assert_lookup(nc, "10.215.3.4", t, "10.213.5.1");
    assert_lookup(nc, "fd5e:99:0:1::1", t, NULL);

    /* Refusals. */
    g_assert_false(shimmer_netcfg_route_add(nc, dup, t, NULL, 50, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
    g_assert_true(g_str_has_prefix(
        error->message, "cannot add route 10.214.0.0/16 via shrt0 metric 50: File exists"));
    g_clear_error(&error);

    g_assert_false(shimmer_netcfg_route_remove(nc, absent, t, NULL, 0, &error));
    g_assert_true(g_str_has_prefix(error->message,
                                   "cannot remove route 10.216.0.0/16 via shrt0: No such process"));
    g_clear_error(&error);

    g_assert_false(shimmer_netcfg_route_add(nc, other, t, far, 0, &error));
    g_test_message("%s", error->message);
    g_assert_true(g_str_has_prefix(error->message,
                                   "cannot add route 10.217.0.0/16 via 10.250.0.1 dev shrt0: "));
    g_clear_error(&error);

    g_assert_false(shimmer_netcfg_route_add(nc, other, 0, NULL, 0, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 5);

    /* No default route in this namespace. */
    g_assert_false(shimmer_netcfg_route_lookup(nc, far, &r, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE);
    g_assert_true(g_str_has_prefix(
        error->message, "cannot look up the route to 10.250.0.1: Network is unreachable"));
    g_clear_error(&error);

    g_assert_true(shimmer_netcfg_rollback(nc, &error));
    g_assert_no_error(error);
    g_assert_false(route_exists(f, "10.214.0.0/16", 0, NULL, -1));
    g_assert_false(route_exists(f, "fd5e:99::/48", 0, NULL, -1));
    g_assert_false(route_exists(f, "10.215.0.0/16", 0, NULL, -1));
    g_assert_false(addr_exists(f, t, "10.213.5.2", 24, NULL));
    g_assert_false(addr_exists(f, t, "fd5e:5::2", 64, NULL));
}

/* Brings up a tunnel as a client would with redirect-gateway def1 (IPv4 and
 * IPv6) to a server at 10.213.77.1 / fd5e:77::1 behind the uplink. */
static void bring_up_def1(Fixture *f, ShimmerNetcfg *nc, int t, int uplink)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GInetAddress) server4 = ip("10.213.77.1");
    g_autoptr(GInetAddress) server6 = ip("fd5e:77::1");

    g_assert_true(shimmer_netcfg_link_set_mtu(nc, t, 1400, &error));
    link_up(nc, t);
    add_addr(nc, t, "10.213.5.2", 24, NULL);
    add_addr(nc, t, "fd5e:5::2", 64, NULL);

    /* Before: everything goes out through the uplink. */
    assert_lookup(nc, "10.213.77.1", uplink, "10.213.9.1");
    assert_lookup(nc, "10.213.78.1", uplink, "10.213.9.1");
    assert_lookup(nc, "fd5e:78::1", uplink, "fd5e:9::1");

    g_assert_true(
        shimmer_netcfg_redirect_def1(nc, G_SOCKET_FAMILY_IPV4, t, NULL, 0, server4, &error));
    g_assert_no_error(error);
    g_assert_true(
        shimmer_netcfg_redirect_def1(nc, G_SOCKET_FAMILY_IPV6, t, NULL, 0, server6, &error));
    g_assert_no_error(error);
    /* 2 addresses, 2 pins, 4 halves */
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 8);

    g_assert_true(route_exists(f, "0.0.0.0/1", t, NULL, 0));
    g_assert_true(route_exists(f, "128.0.0.0/1", t, NULL, 0));
    g_assert_true(route_exists(f, "10.213.77.1/32", uplink, "10.213.9.1", -1));
    g_assert_true(route_exists(f, "::/1", t, NULL, -1));
    g_assert_true(route_exists(f, "8000::/1", t, NULL, -1));
    g_assert_true(route_exists(f, "fd5e:77::1/128", uplink, "fd5e:9::1", -1));
    /* The original default routes are untouched. */
    g_assert_true(route_exists(f, "0.0.0.0/0", uplink, "10.213.9.1", -1));
    g_assert_true(route_exists(f, "::/0", uplink, "fd5e:9::1", -1));

    /* After: the server still through the uplink, everything else through
     * the tunnel. */
    assert_lookup(nc, "10.213.77.1", uplink, "10.213.9.1");
    assert_lookup(nc, "10.213.78.1", t, NULL);
    assert_lookup(nc, "200.1.2.3", t, NULL);
    assert_lookup(nc, "fd5e:77::1", uplink, "fd5e:9::1");
    assert_lookup(nc, "fd5e:78::1", t, NULL);
}

static void assert_torn_down(Fixture *f, int uplink)
{
    g_assert_false(route_exists(f, "0.0.0.0/1", 0, NULL, -1));
    g_assert_false(route_exists(f, "128.0.0.0/1", 0, NULL, -1));
    g_assert_false(route_exists(f, "10.213.77.1/32", 0, NULL, -1));
    g_assert_false(route_exists(f, "::/1", 0, NULL, -1));
    g_assert_false(route_exists(f, "8000::/1", 0, NULL, -1));
    g_assert_false(route_exists(f, "fd5e:77::1/128", 0, NULL, -1));
    /* What was there before stays. */
    g_assert_true(route_exists(f, "0.0.0.0/0", uplink, "10.213.9.1", -1));
    g_assert_true(route_exists(f, "::/0", uplink, "fd5e:9::1", -1));
    g_assert_true(addr_exists(f, uplink, "10.213.9.2", 24, NULL));
    assert_lookup(f->world, "10.213.78.1", uplink, "10.213.9.1");
    assert_lookup(f->world, "fd5e:78::1", uplink, "fd5e:9::1");
}

static void test_def1(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerNetcfg) nc = new_netcfg();
    g_autoptr(ShimmerTun) tun = open_tun("shdef%d");
    g_autoptr(GInetAddress) server4 = ip("10.213.77.1");
    g_autoptr(GInetAddress) own = ip("10.213.9.2");
    int uplink = make_uplink(f);
    int t = shimmer_tun_get_ifindex(tun);
    g_auto(ShimmerNetcfgRoute) r = {0};

    bring_up_def1(f, nc, t, uplink);

    /* Pinning again finds the pin and adds nothing. */
    g_assert_true(shimmer_netcfg_pin_host_route(nc, server4, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 8);
    /* A server on this very machine needs no pin. */
    g_assert_true(shimmer_netcfg_route_lookup(nc, own, &r, &error));
    g_assert_true(r.local);
    g_assert_true(shimmer_netcfg_pin_host_route(nc, own, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 8);

    g_assert_true(shimmer_netcfg_rollback(nc, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 0);
    assert_torn_down(f, uplink);
    g_assert_false(addr_exists(f, t, "10.213.5.2", 24, NULL));
    /* A second rollback has nothing to do. */
    g_assert_true(shimmer_netcfg_rollback(nc, &error));
    g_assert_no_error(error);
}

/* The daemon died or the tun was closed first: the device took its own
 * addresses and routes along, the pins through the uplink are still there
 * and must go. */
static void test_rollback_after_close(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerNetcfg) nc = new_netcfg();
    ShimmerTun *tun = open_tun("shgone%d");
    int uplink = make_uplink(f);
    int t = shimmer_tun_get_ifindex(tun);
    g_autofree char *name = g_strdup(shimmer_tun_get_name(tun));

    bring_up_def1(f, nc, t, uplink);
    add_route(nc, "10.214.0.0/16", t, NULL, 50);

    shimmer_tun_close(tun);
    g_assert_cmpuint(if_nametoindex(name), ==, 0);
    g_assert_false(route_exists(f, "0.0.0.0/1", 0, NULL, -1));
    g_assert_true(route_exists(f, "10.213.77.1/32", uplink, "10.213.9.1", -1));
    g_assert_true(route_exists(f, "fd5e:77::1/128", uplink, "fd5e:9::1", -1));

    g_assert_true(shimmer_netcfg_rollback(nc, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(shimmer_netcfg_get_n_undo(nc), ==, 0);
    assert_torn_down(f, uplink);
}

/* ---- main ------------------------------------------------------------------------- */

static int skip(const char *reason)
{
    printf("1..0 # SKIP %s\n", reason);
    return 77;
}

/* Whether this process may create network namespaces, tried in a child so
 * that the answer does not move the test itself anywhere. */
/* Routes of shimmerd's protocol that a run left behind (its netcfg freed
 * without a rollback, as when the process is killed) are found and removed
 * at the next start; everyone else's routes stay, and undo entries of the
 * protocol remove exactly what they added. */
static void test_stale_routes(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerNetcfg) world = new_netcfg();
    g_autoptr(ShimmerTun) tun = open_tun("shrt%d");
    int t = shimmer_tun_get_ifindex(tun);

    link_up(world, t);
    add_addr(world, t, "10.213.7.2", 24, NULL);
    add_addr(world, t, "fd5e:7::2", 64, NULL);
    /* Someone else's route (RTPROT_STATIC). */
    add_route(world, "10.231.0.0/16", t, NULL, 0);

    ShimmerNetcfg *crashed = new_netcfg();
    shimmer_netcfg_set_route_protocol(crashed, SHIMMER_NETCFG_RTPROT_SHIMMERD);
    add_route(crashed, "10.230.0.0/16", t, "10.213.7.1", 0);
    add_route(crashed, "fd5e:230::/48", t, NULL, 0);
    /* Gone without rolling back. */
    shimmer_netcfg_free(crashed);
    g_assert_true(route_exists(f, "10.230.0.0/16", t, "10.213.7.1", -1));
    g_assert_true(route_exists(f, "fd5e:230::/48", t, NULL, -1));

    g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_free);
    g_assert_true(
        shimmer_netcfg_remove_stale_routes(SHIMMER_NETCFG_RTPROT_SHIMMERD, removed, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(removed->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(removed, 0), ==,
                    "route 10.230.0.0/16 via 10.213.7.1 dev shrt0");
    g_assert_cmpstr(g_ptr_array_index(removed, 1), ==, "route fd5e:230::/48 dev shrt0");
    g_assert_false(route_exists(f, "10.230.0.0/16", t, "10.213.7.1", -1));
    g_assert_false(route_exists(f, "fd5e:230::/48", t, NULL, -1));
    g_assert_true(route_exists(f, "10.231.0.0/16", t, NULL, -1));

    /* Nothing left: nothing to do. */
    g_ptr_array_set_size(removed, 0);
    g_assert_true(
        shimmer_netcfg_remove_stale_routes(SHIMMER_NETCFG_RTPROT_SHIMMERD, removed, &error));
    g_assert_cmpuint(removed->len, ==, 0);

    /* A living session's undo list removes its own route of the protocol. */
    g_autoptr(ShimmerNetcfg) live = new_netcfg();
    shimmer_netcfg_set_route_protocol(live, SHIMMER_NETCFG_RTPROT_SHIMMERD);
    add_route(live, "10.232.0.0/16", t, NULL, 0);
    g_assert_true(route_exists(f, "10.232.0.0/16", t, NULL, -1));
    g_assert_true(shimmer_netcfg_rollback(live, &error));
    g_assert_no_error(error);
    g_assert_false(route_exists(f, "10.232.0.0/16", t, NULL, -1));
}

static gboolean can_unshare_net(void)
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return FALSE;
    if (pid == 0)
        _exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
    if (waitpid(pid, &status, 0) != pid)
        return FALSE;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
    if (geteuid() != 0)
        return skip("needs root: creates network namespaces and tun devices");
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        return skip("no usable /dev/net/tun");
    if (!can_unshare_net())
        return skip("cannot create a network namespace here");
    host_netns = current_netns();

    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/tun/open", test_tun_open);
    ADD("/tun/io", test_tun_io);
    ADD("/netcfg/link", test_link);
    ADD("/netcfg/addr", test_addr);
    ADD("/netcfg/route", test_route);
    ADD("/netcfg/redirect-def1", test_def1);
    ADD("/netcfg/rollback-after-close", test_rollback_after_close);
    ADD("/netcfg/stale-routes", test_stale_routes);
#undef ADD
    return g_test_run();
}
