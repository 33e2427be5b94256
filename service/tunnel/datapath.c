/* SPDX-License-Identifier: MIT */
/*
 * The data path's workers (datapath.h). Each is a thread around an epoll
 * descriptor: its tun queue, its links, and an eventfd to wake it. Buffers
 * are the worker's own and allocated once (when the tun arrives, sized by
 * its MTU); nothing is allocated per packet except copies handed to the
 * runner's thread.
 *
 * Layout of a packet buffer: HEADROOM bytes, where the virtio-net header of
 * a read lands at the end and where encryption puts its header (and TCP its
 * length prefix) once that is parsed; the IP packet; TAILROOM.
 */
#include "tunnel/datapath.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bytes.h"
#include "mss.h"
#include "os/udp.h"
#include "packet.h"
#include "secure.h"
#include "tunnel/offload.h"

#define HEADROOM 64
#define TAILROOM 16
G_STATIC_ASSERT(HEADROOM >= SHIMMER_ENGINE_HEADROOM + SHIMMER_TCP_PREFIX_LEN);
G_STATIC_ASSERT(HEADROOM >= SHIMMER_VNET_HDR_LEN);
G_STATIC_ASSERT(TAILROOM >= SHIMMER_ENGINE_TAILROOM);

/* Tun reads per batch, and segments they may be cut into. */
#define READS    16
#define SEG_POOL 256
#define TX_MAX   (READS + SEG_POOL)
/* Receive buffers per recvmmsg: 64 KB each with GRO (up to 64 datagrams
 * each), one datagram each without. */
#define RX_SLOTS_GRO 16
#define RX_SLOTS     64
#define RX_SLOT_SIZE 65536
#define RX_MAX       (RX_SLOTS_GRO * SHIMMER_OFFLOAD_MAX_SEGS)
/* Rounds of reading a ready descriptor before looking at the others. */
#define ROUNDS 4
/* A TCP link's unsent bytes beyond which packets are dropped. */
#define TCP_OUT_LIMIT (4 * 1024 * 1024)
#define TCP_READ      65536

#define PEEK(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define POKE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define BUMP(x, v) POKE(x, PEEK(x) + (v))

typedef struct Worker Worker;

struct ShimmerDatapathLink {
    ShimmerDatapath *dp;
    int fd;
    gboolean tcp;
    gboolean connected;
    guint worker;
    gpointer user;
    /* UDP: what the socket can do. The workers that send copy it per batch
     * and write back what the kernel refused, under caps_lock. */
    pthread_mutex_t caps_lock;
    ShimmerUdpCaps caps;
    /* TCP: bytes not yet written, and whether the owner watches for room. */
    pthread_mutex_t out_lock;
    GByteArray *out;
    gboolean want_out;
    ShimmerTcpSplitter *splitter; /* the owner's only */
    gint dead;
};

struct ShimmerDatapathPeer {
    ShimmerDataPlane *dataplane;
    gpointer user;
    ShimmerDatapathLink *link;
    struct sockaddr_storage to;
    socklen_t to_len;
    guint mss4, mss6;
};

typedef struct {
    ShimmerDatapathPeer *peer;
    guint8 *buf;
    gsize cap;
    gsize off, len;
} TxItem;

struct Worker {
    ShimmerDatapath *dp;
    guint index;
    guint lane;
    GThread *thread;
    int epfd;
    int evfd;
    gint stop;
    /* The runner's thread asks (req) and the worker answers (ack) at the
     * end of its next batch, after running cmd if there is one: see
     * worker_call(). */
    gint req, ack;
    void (*cmd)(Worker *w, gpointer data);
    gpointer cmd_data;
    /* The tun: the queue this worker reads (-1: none) and the one it writes
     * to (any queue takes writes). */
    gint tun_rfd, tun_wfd;
    char tun_tag; /* epoll cookie for the tun */
    char ev_tag;  /* ...and for the eventfd */
    gboolean vnet;
    ShimmerCoalescer *coal;
    /* Transmit buffers (tun-sized), replaced only while detached. */
    guint8 *rd[READS];
    gsize rd_cap;
    guint8 *seg[SEG_POOL];
    gsize seg_cap;
    gsize seg_len[SEG_POOL];
    TxItem tx[TX_MAX];
    ShimmerUdpPacket udp_out[TX_MAX];
    struct iovec tcp_iov[TX_MAX];
    guint8 tcp_prefix[TX_MAX][SHIMMER_TCP_PREFIX_LEN];
    ShimmerUdpSender *sender;
    /* Receive. */
    ShimmerUdpReceiver *receiver;
    ShimmerUdpReceiver *receiver_plain;
    guint8 *tcp_in;
    guint8 *tcp_copy;
    struct iovec *wiov;
    ShimmerDatapathStats stats;
} __attribute__((aligned(64)));

typedef struct {
    ShimmerDatapathLink *link;
    ShimmerDatapathPeer *peer; /* an IP packet an inbound hook passed on */
    int err;                   /* an error event when IS_ERROR */
    gboolean is_error;
    gboolean from_tun; /* an IP packet from the tun no worker could route */
    socklen_t from_len;
    struct sockaddr_storage from;
    gsize len;
    guint8 data[];
} Handoff;

struct ShimmerDatapath {
    ShimmerDatapathOptions opts;
    ShimmerDatapathHooks hooks;
    guint n_workers;
    Worker *workers;
    ShimmerTun *tun;
    guint coalesce;
    guint next_link_worker;
    /* Packets and errors for the runner's thread. */
    pthread_mutex_t handoff_lock; /* pthread: visible to ThreadSanitizer */
    GQueue handoff;
    int handoff_fd;
    GSource *handoff_source;
    GMainContext *context;
};

/* ---------- options ---------- */

gboolean shimmer_datapath_options_parse(const char *text, ShimmerDatapathOptions *opts,
                                        GError **error)
{
    if (text == NULL)
        return TRUE;
    g_auto(GStrv) words = g_strsplit(text, ",", -1);
    for (guint i = 0; words[i] != NULL; i++) {
        const char *w = g_strstrip(words[i]);
        if (*w == '\0')
            continue;
        if (g_str_has_prefix(w, "workers=")) {
            guint64 n = 0;
            if (!g_ascii_string_to_unsigned(w + 8, 10, 0, SHIMMER_DATAPLANE_MAX_LANES - 1, &n,
                                            NULL)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "'%s': workers= takes 0 to %d", w, SHIMMER_DATAPLANE_MAX_LANES - 1);
                return FALSE;
            }
            opts->workers = (guint)n;
        } else if (strcmp(w, "no-udp-gso") == 0) {
            opts->flags |= SHIMMER_DATAPATH_NO_UDP_GSO;
        } else if (strcmp(w, "no-udp-gro") == 0) {
            opts->flags |= SHIMMER_DATAPATH_NO_UDP_GRO;
        } else if (strcmp(w, "no-tun-offload") == 0) {
            opts->flags |= SHIMMER_DATAPATH_NO_TUN_OFFLOAD;
        } else if (strcmp(w, "no-multiqueue") == 0) {
            opts->flags |= SHIMMER_DATAPATH_NO_MULTIQUEUE;
        } else {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "unknown data path option '%s' (known: workers=N, no-udp-gso, "
                        "no-udp-gro, no-tun-offload, no-multiqueue)",
                        w);
            return FALSE;
        }
    }
    return TRUE;
}

/* ---------- logging and the runner's thread ---------- */

static void dlog(ShimmerDatapath *dp, ShimmerLogLevel level, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static void dlog(ShimmerDatapath *dp, ShimmerLogLevel level, const char *fmt, ...)
{
    if (dp->hooks.log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    dp->hooks.log(dp->hooks.user, level, msg);
}

static void post(ShimmerDatapath *dp, Handoff *h)
{
    pthread_mutex_lock(&dp->handoff_lock);
    gboolean was_empty = g_queue_is_empty(&dp->handoff);
    g_queue_push_tail(&dp->handoff, h);
    pthread_mutex_unlock(&dp->handoff_lock);
    if (was_empty) {
        guint64 one = 1;
        if (write(dp->handoff_fd, &one, sizeof(one)) < 0) {
            /* Only when the counter is full: it is awake already. */
        }
    }
}

static void post_packet(Worker *w, ShimmerDatapathLink *link, const guint8 *pkt, gsize len,
                        const struct sockaddr *from, socklen_t from_len)
{
    Handoff *h = g_malloc(sizeof(Handoff) + len);
    h->link = link;
    h->peer = NULL;
    h->is_error = FALSE;
    h->from_tun = FALSE;
    h->err = 0;
    h->len = len;
    h->from_len = from != NULL ? MIN(from_len, (socklen_t)sizeof(h->from)) : 0;
    if (h->from_len > 0)
        memcpy(&h->from, from, h->from_len);
    memcpy(h->data, pkt, len);
    BUMP(w->stats.to_runner, 1);
    post(w->dp, h);
}

static void post_inner(Worker *w, ShimmerDatapathPeer *peer, const guint8 *ip, gsize len)
{
    Handoff *h = g_malloc0(sizeof(Handoff) + len);
    h->peer = peer;
    h->from_tun = peer == NULL;
    h->len = len;
    memcpy(h->data, ip, len);
    BUMP(w->stats.to_runner, 1);
    post(w->dp, h);
}

static void post_error(ShimmerDatapath *dp, ShimmerDatapathLink *link, int err)
{
    Handoff *h = g_malloc0(sizeof(Handoff));
    h->link = link;
    h->is_error = TRUE;
    h->err = err;
    post(dp, h);
}

static gboolean on_handoff(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerDatapath *dp = user;
    guint64 v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return G_SOURCE_CONTINUE;
    GQueue q = G_QUEUE_INIT;
    pthread_mutex_lock(&dp->handoff_lock);
    q = dp->handoff;
    g_queue_init(&dp->handoff);
    pthread_mutex_unlock(&dp->handoff_lock);
    Handoff *h;
    while ((h = g_queue_pop_head(&q)) != NULL) {
        if (h->is_error) {
            if (dp->hooks.link_error != NULL)
                dp->hooks.link_error(dp->hooks.user, h->link, h->err);
        } else if (h->peer != NULL || h->from_tun) {
            if (dp->hooks.tun_packet != NULL)
                dp->hooks.tun_packet(dp->hooks.user, h->peer, h->data, h->len);
        } else if (dp->hooks.control != NULL) {
            dp->hooks.control(dp->hooks.user, h->link, h->data, h->len,
                              h->from_len > 0 ? (struct sockaddr *)&h->from : NULL, h->from_len);
        }
        shimmer_wipe(h->data, h->len);
        g_free(h);
    }
    return G_SOURCE_CONTINUE;
}

/* Drops what is queued from LINK (it goes away). */
static void purge(ShimmerDatapath *dp, ShimmerDatapathLink *link)
{
    pthread_mutex_lock(&dp->handoff_lock);
    for (GList *l = dp->handoff.head; l != NULL;) {
        GList *next = l->next;
        Handoff *h = l->data;
        if (h->link == link) {
            g_queue_delete_link(&dp->handoff, l);
            shimmer_wipe(h->data, h->len);
            g_free(h);
        }
        l = next;
    }
    pthread_mutex_unlock(&dp->handoff_lock);
}

/* ---------- tun writes ---------- */

/* Writes the batch the coalescer holds to the tun. */
static void flush_tun(Worker *w)
{
    guint n = 0;
    struct iovec *iov = NULL;
    const ShimmerCoalescedWrite *wr = shimmer_coalescer_finish(w->coal, &n, &iov);
    int fd = g_atomic_int_get(&w->tun_wfd);
    for (guint i = 0; i < n; i++) {
        if (fd < 0) {
            BUMP(w->stats.dropped, wr[i].n_packets);
            continue;
        }
        w->wiov[0] = (struct iovec){(void *)&wr[i].hdr, SHIMMER_VNET_HDR_LEN};
        memcpy(&w->wiov[1], &iov[wr[i].first_iov], wr[i].n_iov * sizeof(struct iovec));
        ssize_t r;
        do
            r = writev(fd, w->wiov, (int)wr[i].n_iov + 1);
        while (r < 0 && errno == EINTR);
        BUMP(w->stats.tun_writes, 1);
        if (r < 0) {
            BUMP(w->stats.dropped, wr[i].n_packets);
            continue;
        }
        BUMP(w->stats.tun_packets_out, wr[i].n_packets);
        if (wr[i].n_packets > 1)
            BUMP(w->stats.tun_glued, 1);
    }
    shimmer_coalescer_reset(w->coal);
}

/* One IP packet to the tun at once (with an empty virtio-net header when
 * the tun has them). */
static void write_one(Worker *w, const guint8 *ip, gsize len)
{
    int fd = g_atomic_int_get(&w->tun_wfd);
    if (fd < 0) {
        BUMP(w->stats.dropped, 1);
        return;
    }
    ShimmerVnetHdr none = {0};
    struct iovec iov[2] = {{&none, SHIMMER_VNET_HDR_LEN}, {(void *)ip, len}};
    ssize_t r;
    do
        r = writev(fd, w->vnet ? iov : iov + 1, w->vnet ? 2 : 1);
    while (r < 0 && errno == EINTR);
    BUMP(w->stats.tun_writes, 1);
    if (r < 0)
        BUMP(w->stats.dropped, 1);
    else
        BUMP(w->stats.tun_packets_out, 1);
}

/* One IP packet for the tun: into the batch (written by flush_tun()), or
 * at once without a virtio-net header. */
static void to_tun(Worker *w, ShimmerDatapathPeer *peer, guint8 *ip, gsize len)
{
    shimmer_mss_clamp(ip, len, PEEK(peer->mss4), PEEK(peer->mss6));
    if (w->vnet) {
        if (!shimmer_coalescer_add(w->coal, ip, len)) {
            flush_tun(w);
            shimmer_coalescer_add(w->coal, ip, len);
        }
        return;
    }
    write_one(w, ip, len);
}

/* ---------- receiving ---------- */

static gboolean is_data(const guint8 *pkt, gsize len)
{
    if (len == 0)
        return FALSE;
    guint op = shimmer_packet_opcode(pkt[0]);
    return op == SHIMMER_OP_DATA_V1 || op == SHIMMER_OP_DATA_V2;
}

typedef struct {
    ShimmerDataPlane *open; /* the data plane this worker's lane is inside */
} RxBatch;

static void rx_switch(Worker *w, RxBatch *b, ShimmerDataPlane *dp)
{
    if (b->open == dp)
        return;
    if (b->open != NULL)
        shimmer_dataplane_end(b->open, w->lane);
    b->open = dp;
    if (dp != NULL)
        shimmer_dataplane_begin(dp, w->lane);
}

/* One received packet of LINK: decrypted in place and sent to the tun, or
 * passed to the runner. */
static void rx_packet(Worker *w, RxBatch *b, ShimmerDatapathLink *link, guint8 *pkt, gsize len,
                      const struct sockaddr *from, socklen_t from_len, gint64 now)
{
    ShimmerDatapath *dp = w->dp;
    ShimmerDatapathPeer *peer = NULL;
    if (is_data(pkt, len) && dp->hooks.route_link != NULL)
        peer = dp->hooks.route_link(dp->hooks.user, link, pkt, len, from, from_len);
    if (peer == NULL) {
        post_packet(w, link, pkt, len, from, from_len);
        return;
    }
    rx_switch(w, b, peer->dataplane);
    guint8 *ip = NULL;
    gsize plen = 0;
    ShimmerRecvResult r =
        shimmer_dataplane_decrypt(peer->dataplane, w->lane, pkt, len, now, &ip, &plen, NULL);
    if (r == SHIMMER_RECV_DROPPED)
        BUMP(w->stats.dropped, 1); /* replayed, forged, no key...: the engine's stats say which */
    if (r != SHIMMER_RECV_TUN)
        return;
    ShimmerDatapathVerdict v = dp->hooks.inbound != NULL
                                   ? dp->hooks.inbound(dp->hooks.user, peer, ip, plen)
                                   : SHIMMER_DATAPATH_ACCEPT;
    if (v == SHIMMER_DATAPATH_TO_RUNNER) {
        post_inner(w, peer, ip, plen);
    } else if (v != SHIMMER_DATAPATH_ACCEPT) {
        BUMP(w->stats.refused, 1);
    } else if (ip >= pkt && ip + plen <= pkt + len) {
        to_tun(w, peer, ip, plen);
    } else {
        /* Decompressed into the lane's buffer, which the next packet
         * reuses: written now, after what the batch holds. */
        if (w->vnet)
            flush_tun(w);
        shimmer_mss_clamp(ip, plen, PEEK(peer->mss4), PEEK(peer->mss6));
        write_one(w, ip, plen);
    }
}

static void rx_done(Worker *w, RxBatch *b)
{
    if (w->vnet)
        flush_tun(w);
    rx_switch(w, b, NULL);
}

static void udp_ready(Worker *w, ShimmerDatapathLink *link)
{
    ShimmerUdpReceiver *rcv = PEEK(link->caps.gro) ? w->receiver : w->receiver_plain;
    for (guint round = 0; round < ROUNDS; round++) {
        const ShimmerUdpDatagram *d = NULL;
        guint truncated = 0, gro = 0;
        gint n = shimmer_udp_receive(rcv, link->fd, &d, &truncated, &gro);
        BUMP(w->stats.udp_recv_calls, 1);
        BUMP(w->stats.dropped, truncated);
        if (n < 0) {
            int err = errno;
            if (err != EINTR)
                post_error(w->dp, link, err);
            return;
        }
        if (n == 0)
            return;
        BUMP(w->stats.udp_received, (guint)n);
        BUMP(w->stats.udp_gro_buffers, gro);
        gint64 now = g_get_monotonic_time();
        RxBatch b = {0};
        for (gint i = 0; i < n; i++)
            rx_packet(w, &b, link, d[i].data, d[i].len, link->connected ? NULL : d[i].from,
                      link->connected ? 0 : d[i].from_len, now);
        rx_done(w, &b);
    }
}

static void link_dead(Worker *w, ShimmerDatapathLink *link, int err)
{
    if (!g_atomic_int_compare_and_exchange(&link->dead, 0, 1))
        return;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, link->fd, NULL);
    post_error(w->dp, link, err);
}

static void tcp_ready(Worker *w, ShimmerDatapathLink *link)
{
    if (g_atomic_int_get(&link->dead))
        return;
    for (guint round = 0; round < ROUNDS; round++) {
        ssize_t n;
        do
            n = read(link->fd, w->tcp_in, TCP_READ);
        while (n < 0 && errno == EINTR);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            link_dead(w, link, n == 0 ? 0 : errno);
            return;
        }
        if (n < 0)
            return;
        BUMP(w->stats.tcp_reads, 1);
        gint64 now = g_get_monotonic_time();
        RxBatch b = {0};
        const guint8 *p = w->tcp_in;
        gsize left = (gsize)n;
        while (left > 0) {
            gsize used = 0;
            const guint8 *pkt = NULL;
            gsize pkt_len = 0;
            if (shimmer_tcp_splitter_feed(link->splitter, p, left, &used, &pkt, &pkt_len) !=
                SHIMMER_PACKET_OK) {
                rx_done(w, &b);
                link_dead(w, link, EPROTO);
                return;
            }
            p += used;
            left -= used;
            if (pkt == NULL) {
                if (used == 0)
                    break;
                continue;
            }
            /* In place when it lies in our buffer; a packet that straddled
             * two reads is in the splitter's, which is not ours to change. */
            guint8 *mine;
            if (pkt >= w->tcp_in && pkt + pkt_len <= w->tcp_in + TCP_READ) {
                mine = w->tcp_in + (pkt - w->tcp_in);
            } else {
                memcpy(w->tcp_copy, pkt, pkt_len);
                mine = w->tcp_copy;
                /* The copy is reused: the tun batch must not wait for it. */
                rx_packet(w, &b, link, mine, pkt_len, NULL, 0, now);
                rx_done(w, &b);
                continue;
            }
            rx_packet(w, &b, link, mine, pkt_len, NULL, 0, now);
        }
        rx_done(w, &b);
        if ((gsize)n < TCP_READ)
            return;
    }
}

/* ---------- sending ---------- */

/* Writes what LINK has waiting; watches for room while some is left.
 * Called with out_lock held. */
static void tcp_write_out(ShimmerDatapathLink *link, Worker *owner)
{
    while (link->out->len > 0) {
        ssize_t n = write(link->fd, link->out->data, link->out->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && owner != NULL)
                link_dead(owner, link, errno);
            break;
        }
        g_byte_array_remove_range(link->out, 0, (guint)n);
    }
    gboolean want = link->out->len > 0 && !g_atomic_int_get(&link->dead);
    if (want != link->want_out) {
        Worker *w = &link->dp->workers[link->worker];
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = link};
        epoll_ctl(w->epfd, EPOLL_CTL_MOD, link->fd, &ev);
        link->want_out = want;
    }
}

/* Sends IOV[0..N) (whole frames) on the TCP link in one go where the socket
 * takes it; the rest waits in the link's buffer. */
static gboolean tcp_send_frames(ShimmerDatapathLink *link, struct iovec *iov, guint n,
                                Worker *counter)
{
    gboolean ok = TRUE;
    pthread_mutex_lock(&link->out_lock);
    if (g_atomic_int_get(&link->dead)) {
        pthread_mutex_unlock(&link->out_lock);
        return FALSE;
    }
    guint i = 0;
    /* Behind bytes already waiting nothing may go out first. */
    while (link->out->len == 0 && i < n) {
        guint chunk = MIN(n - i, (guint)IOV_MAX);
        ssize_t w;
        do
            w = writev(link->fd, iov + i, (int)chunk);
        while (w < 0 && errno == EINTR);
        if (counter != NULL)
            BUMP(counter->stats.tcp_writes, 1);
        if (w < 0)
            break; /* full (or broken: the reader finds out) */
        /* Skip what went out; a frame cut short keeps its tail. */
        gsize left = (gsize)w;
        while (i < n && left >= iov[i].iov_len)
            left -= iov[i++].iov_len;
        if (left > 0) {
            iov[i].iov_base = (guint8 *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
            break;
        }
    }
    for (; i < n; i++) {
        if (link->out->len + iov[i].iov_len > TCP_OUT_LIMIT) {
            /* The link is stuck: drop rather than grow without bound. */
            ok = FALSE;
            continue;
        }
        g_byte_array_append(link->out, iov[i].iov_base, (guint)iov[i].iov_len);
    }
    tcp_write_out(link, NULL);
    pthread_mutex_unlock(&link->out_lock);
    return ok;
}

static void udp_send(Worker *w, ShimmerDatapathLink *link, guint n)
{
    ShimmerUdpCaps caps;
    pthread_mutex_lock(&link->caps_lock);
    caps = link->caps;
    pthread_mutex_unlock(&link->caps_lock);
    ShimmerUdpSendResult res = {0};
    shimmer_udp_send(w->sender, link->fd, &caps, w->udp_out, n, &res);
    BUMP(w->stats.udp_send_calls, res.syscalls);
    BUMP(w->stats.udp_sent, res.sent);
    BUMP(w->stats.udp_gso_sends, res.gso_sends);
    BUMP(w->stats.dropped, res.dropped);
    if (caps.gso_refused) {
        pthread_mutex_lock(&link->caps_lock);
        gboolean news = link->caps.gso != caps.gso || link->caps.gso_max_size != caps.gso_max_size;
        link->caps.gso = caps.gso;
        link->caps.gso_max_size = MIN(link->caps.gso_max_size, caps.gso_max_size);
        pthread_mutex_unlock(&link->caps_lock);
        if (news)
            dlog(w->dp, SHIMMER_LOG_INFO,
                 caps.gso ? "UDP GSO refused by the kernel for datagrams of %zu bytes and more: "
                            "sending those one by one"
                          : "UDP GSO refused by the kernel (%zu): sending datagram by datagram",
                 caps.gso ? caps.gso_max_size : (gsize)0);
    }
    if (res.error != 0 && link->connected)
        post_error(w->dp, link, res.error);
}

/* Encrypts the items of PEER (indices IDX[0..N)) and sends them. */
static void tx_peer(Worker *w, ShimmerDatapathPeer *peer, const guint *idx, guint n, gint64 now)
{
    ShimmerDataPlane *dp = peer->dataplane;
    ShimmerDatapathLink *link = peer->link;
    shimmer_dataplane_begin(dp, w->lane);
    /* Ids in one run and a place in line: another worker may be sending
     * for this peer too. */
    shimmer_dataplane_reserve(dp, w->lane, n);
    guint k = 0;
    for (guint i = 0; i < n; i++) {
        TxItem *it = &w->tx[idx[i]];
        gsize po = 0, pl = 0;
        if (shimmer_dataplane_encrypt(dp, w->lane, it->buf, it->cap, it->off, it->len, now, &po,
                                      &pl) != SHIMMER_ENCRYPT_OK) {
            BUMP(w->stats.dropped, 1);
            continue;
        }
        if (link->tcp) {
            guint8 *p = it->buf + po - SHIMMER_TCP_PREFIX_LEN;
            shimmer_tcp_write_prefix(pl, p);
            w->tcp_iov[k++] = (struct iovec){p, pl + SHIMMER_TCP_PREFIX_LEN};
        } else {
            w->udp_out[k++] = (ShimmerUdpPacket){
                it->buf + po, pl, peer->to_len > 0 ? (struct sockaddr *)&peer->to : NULL,
                peer->to_len};
        }
    }
    shimmer_dataplane_wait_turn(dp, w->lane);
    if (k > 0) {
        if (link->tcp) {
            if (!tcp_send_frames(link, w->tcp_iov, k, w))
                BUMP(w->stats.dropped, 1);
        } else {
            udp_send(w, link, k);
        }
    }
    shimmer_dataplane_release(dp, w->lane);
    shimmer_dataplane_end(dp, w->lane);
}

/* Reads what the tun has (up to READS reads), cuts super-packets, routes
 * every packet to its peer and sends per peer. */
static void tun_ready(Worker *w)
{
    ShimmerDatapath *dp = w->dp;
    int fd = g_atomic_int_get(&w->tun_rfd);
    if (fd < 0)
        return;
    gsize vlen = w->vnet ? SHIMMER_VNET_HDR_LEN : 0;
    guint n_items = 0, seg_used = 0, reads = 0;
    for (; reads < READS && seg_used + SHIMMER_OFFLOAD_MAX_SEGS <= SEG_POOL; reads++) {
        guint8 *b = w->rd[reads];
        gsize room = w->rd_cap - HEADROOM - TAILROOM;
        ssize_t r;
        do
            r = read(fd, b + HEADROOM - vlen, room + vlen);
        while (r < 0 && errno == EINTR);
        if (r <= (ssize_t)vlen)
            break;
        gsize len = (gsize)r - vlen;
        BUMP(w->stats.tun_reads, 1);
        ShimmerVnetHdr h = {0};
        if (w->vnet)
            memcpy(&h, b + HEADROOM - vlen, sizeof(h));
        if (h.gso_type != SHIMMER_VNET_GSO_NONE) {
            guint k = shimmer_offload_segment(&h, b + HEADROOM, len, w->seg + seg_used,
                                              SEG_POOL - seg_used, HEADROOM, w->seg_cap - TAILROOM,
                                              w->seg_len + seg_used);
            BUMP(w->stats.tun_gso_reads, 1);
            if (k == 0) {
                BUMP(w->stats.dropped, 1);
                continue;
            }
            BUMP(w->stats.tun_segments, k);
            for (guint j = 0; j < k; j++)
                w->tx[n_items++] = (TxItem){NULL, w->seg[seg_used + j], w->seg_cap, HEADROOM,
                                            w->seg_len[seg_used + j]};
            seg_used += k;
            continue;
        }
        if (!w->vnet && len == room && shimmer_read_be16(b + HEADROOM + 2) != len &&
            (b[HEADROOM] >> 4) == 4) {
            /* Filled the buffer without being that long: cut short. */
            BUMP(w->stats.dropped, 1);
            continue;
        }
        if (!shimmer_offload_finish_checksum(&h, b + HEADROOM, len)) {
            BUMP(w->stats.dropped, 1);
            continue;
        }
        w->tx[n_items++] = (TxItem){NULL, b, w->rd_cap, HEADROOM, len};
    }
    if (n_items == 0)
        return;
    gint64 now = g_get_monotonic_time();
    for (guint i = 0; i < n_items; i++) {
        TxItem *it = &w->tx[i];
        it->peer = dp->hooks.route_tun != NULL
                       ? dp->hooks.route_tun(dp->hooks.user, it->buf + it->off, it->len)
                       : NULL;
        if (it->peer == NULL) {
            BUMP(w->stats.no_peer, 1);
            if (dp->hooks.tun_unrouted != NULL && dp->hooks.tun_packet != NULL &&
                dp->hooks.tun_unrouted(dp->hooks.user))
                post_inner(w, NULL, it->buf + it->off, it->len);
        } else
            shimmer_mss_clamp(it->buf + it->off, it->len, PEEK(it->peer->mss4),
                              PEEK(it->peer->mss6));
    }
    /* Per peer, in the order they first appear; a batch is nearly always
     * one peer's. */
    guint idx[TX_MAX];
    for (guint i = 0; i < n_items; i++) {
        ShimmerDatapathPeer *p = w->tx[i].peer;
        if (p == NULL)
            continue;
        guint n = 0;
        for (guint j = i; j < n_items; j++) {
            if (w->tx[j].peer == p) {
                idx[n++] = j;
                if (j > i)
                    w->tx[j].peer = NULL;
            }
        }
        w->tx[i].peer = NULL;
        tx_peer(w, p, idx, n, now);
    }
}

/* ---------- the worker ---------- */

/* At the end of a batch: runs what the runner's thread asked for and says
 * so. Everything the batch took from a route hook, a link or the tun is out
 * of use by then. */
static void worker_answer(Worker *w)
{
    gint req = g_atomic_int_get(&w->req);
    if (req == g_atomic_int_get(&w->ack))
        return;
    if (w->cmd != NULL) {
        w->cmd(w, w->cmd_data);
        w->cmd = NULL;
    }
    g_atomic_int_set(&w->ack, req);
}

static gpointer worker_main(gpointer data)
{
    Worker *w = data;
    struct epoll_event evs[16];
    while (!g_atomic_int_get(&w->stop)) {
        int n = epoll_wait(w->epfd, evs, G_N_ELEMENTS(evs), -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &w->ev_tag) {
                guint64 v;
                if (read(w->evfd, &v, sizeof(v)) < 0) {
                    /* EAGAIN: another wake got it first. */
                }
                continue;
            }
            if (tag == &w->tun_tag) {
                tun_ready(w);
                continue;
            }
            ShimmerDatapathLink *link = tag;
            if (evs[i].events & EPOLLOUT) {
                pthread_mutex_lock(&link->out_lock);
                tcp_write_out(link, w);
                pthread_mutex_unlock(&link->out_lock);
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (link->tcp)
                    tcp_ready(w, link);
                else
                    udp_ready(w, link);
            }
        }
        worker_answer(w);
    }
    worker_answer(w);
    return NULL;
}

static void worker_free_buffers(Worker *w)
{
    for (guint i = 0; i < READS; i++) {
        if (w->rd[i] != NULL)
            shimmer_free_secret(w->rd[i], w->rd_cap);
        w->rd[i] = NULL;
    }
    for (guint i = 0; i < SEG_POOL; i++) {
        if (w->seg[i] != NULL)
            shimmer_free_secret(w->seg[i], w->seg_cap);
        w->seg[i] = NULL;
    }
    w->rd_cap = w->seg_cap = 0;
}

static void worker_size_buffers(Worker *w, guint mtu, gboolean vnet)
{
    gsize m = MAX((gsize)mtu, 1500);
    /* A read takes a whole super-packet with the header, or one packet. */
    gsize rd = HEADROOM + (vnet ? 65535 + 64 : m + 256) + TAILROOM;
    gsize seg = HEADROOM + m + 256 + TAILROOM;
    if (rd == w->rd_cap && seg == w->seg_cap)
        return;
    worker_free_buffers(w);
    w->rd_cap = rd;
    w->seg_cap = seg;
    for (guint i = 0; i < READS; i++)
        w->rd[i] = g_malloc(rd);
    for (guint i = 0; i < SEG_POOL; i++)
        w->seg[i] = g_malloc(seg);
}

static void wake_worker(Worker *w)
{
    guint64 one = 1;
    if (write(w->evfd, &one, sizeof(one)) < 0) {
        /* The counter is full: it is awake already. */
    }
}

/* Has worker W run CMD(W, DATA) (NULL: nothing) at the end of a batch that
 * ended after this call began, and waits for it. An event the worker took
 * from epoll before the caller removed its descriptor is handled in such a
 * batch or one before, so afterwards nothing of what was removed is in use.
 * The runner's thread only, one call at a time. */
static void worker_call(Worker *w, void (*cmd)(Worker *w, gpointer data), gpointer data)
{
    if (w->thread == NULL || g_atomic_int_get(&w->stop)) {
        if (cmd != NULL)
            cmd(w, data);
        return;
    }
    w->cmd = cmd;
    w->cmd_data = data;
    gint want = g_atomic_int_add(&w->req, 1) + 1;
    wake_worker(w);
    /* A batch takes microseconds; one waiting its turn behind a
     * descheduled worker at most 200 ms. */
    gulong pause = 10;
    for (guint t = 0; (gint)((guint)g_atomic_int_get(&w->ack) - (guint)want) < 0; t++) {
        g_usleep(pause);
        pause = MIN(pause * 2, 1000);
        if (t > 20000) {
            g_warning("data path worker %u does not answer", w->index);
            break;
        }
    }
}

/* ---------- the data path ---------- */

ShimmerDatapath *shimmer_datapath_new(const ShimmerDatapathOptions *opts,
                                      const ShimmerDatapathHooks *hooks, GError **error)
{
    ShimmerDatapath *dp = g_new0(ShimmerDatapath, 1);
    if (opts != NULL)
        dp->opts = *opts;
    if (hooks != NULL)
        dp->hooks = *hooks;
    guint n = shimmer_datapath_workers_for(&dp->opts);
    pthread_mutex_init(&dp->handoff_lock, NULL);
    g_queue_init(&dp->handoff);
    dp->handoff_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (dp->handoff_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "eventfd: %s",
                    g_strerror(errno));
        g_free(dp);
        return NULL;
    }
    dp->context = g_main_context_ref_thread_default();
    dp->handoff_source = g_unix_fd_source_new(dp->handoff_fd, G_IO_IN);
    g_source_set_callback(dp->handoff_source, (GSourceFunc)(void (*)(void))on_handoff, dp, NULL);
    g_source_set_can_recurse(dp->handoff_source, TRUE);
    g_source_attach(dp->handoff_source, dp->context);

    dp->workers = g_aligned_alloc0(n, sizeof(Worker), 64);
    for (guint i = 0; i < n; i++) {
        Worker *w = &dp->workers[i];
        w->dp = dp;
        w->index = i;
        w->lane = i + 1;
        w->tun_rfd = w->tun_wfd = -1;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->epfd < 0 || w->evfd < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "epoll: %s",
                        g_strerror(errno));
            dp->n_workers = i + 1;
            shimmer_datapath_free(dp);
            return NULL;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->ev_tag};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev);
        w->sender = shimmer_udp_sender_new(TX_MAX);
        w->receiver = shimmer_udp_receiver_new(RX_SLOTS_GRO, RX_SLOT_SIZE, RX_MAX);
        w->receiver_plain = shimmer_udp_receiver_new(RX_SLOTS, RX_SLOT_SIZE, RX_SLOTS);
        w->coal = shimmer_coalescer_new(RX_MAX, 0);
        w->wiov = g_new0(struct iovec, RX_MAX + 1);
        w->tcp_in = g_malloc(TCP_READ);
        w->tcp_copy = g_malloc(SHIMMER_TCP_MAX_PACKET);
        dp->n_workers = i + 1;
        g_autofree char *name = g_strdup_printf("shimmer-dp%u", i);
        w->thread = g_thread_try_new(name, worker_main, w, error);
        if (w->thread == NULL) {
            shimmer_datapath_free(dp);
            return NULL;
        }
    }
    return dp;
}

guint shimmer_datapath_workers_for(const ShimmerDatapathOptions *opts)
{
    guint n = opts != NULL ? opts->workers : 0;
    if (n == 0)
        n = CLAMP(g_get_num_processors(), 1, 8);
    return MIN(n, SHIMMER_DATAPLANE_MAX_LANES - 1);
}

void shimmer_datapath_free(ShimmerDatapath *dp)
{
    if (dp == NULL)
        return;
    for (guint i = 0; i < dp->n_workers; i++) {
        Worker *w = &dp->workers[i];
        g_atomic_int_set(&w->stop, 1);
        if (w->evfd >= 0)
            wake_worker(w);
    }
    for (guint i = 0; i < dp->n_workers; i++) {
        Worker *w = &dp->workers[i];
        if (w->thread != NULL)
            g_thread_join(w->thread);
        if (w->epfd >= 0)
            close(w->epfd);
        if (w->evfd >= 0)
            close(w->evfd);
        worker_free_buffers(w);
        shimmer_udp_sender_free(w->sender);
        shimmer_udp_receiver_free(w->receiver);
        shimmer_udp_receiver_free(w->receiver_plain);
        shimmer_coalescer_free(w->coal);
        g_free(w->wiov);
        if (w->tcp_in != NULL)
            shimmer_free_secret(w->tcp_in, TCP_READ);
        if (w->tcp_copy != NULL)
            shimmer_free_secret(w->tcp_copy, SHIMMER_TCP_MAX_PACKET);
    }
    g_aligned_free(dp->workers);
    if (dp->handoff_source != NULL) {
        g_source_destroy(dp->handoff_source);
        g_source_unref(dp->handoff_source);
    }
    Handoff *h;
    while ((h = g_queue_pop_head(&dp->handoff)) != NULL) {
        shimmer_wipe(h->data, h->len);
        g_free(h);
    }
    pthread_mutex_destroy(&dp->handoff_lock);
    if (dp->handoff_fd >= 0)
        close(dp->handoff_fd);
    if (dp->context != NULL)
        g_main_context_unref(dp->context);
    g_free(dp);
}

guint shimmer_datapath_get_workers(const ShimmerDatapath *dp)
{
    return dp->n_workers;
}

void shimmer_datapath_synchronize(ShimmerDatapath *dp)
{
    for (guint i = 0; i < dp->n_workers; i++)
        worker_call(&dp->workers[i], NULL, NULL);
}

/* ---------- the tun ---------- */

static char *describe_offload(guint o)
{
    if (o == 0)
        return g_strdup("none");
    GString *s = g_string_new(NULL);
    static const struct {
        guint bit;
        const char *name;
    } names[] = {
        {SHIMMER_TUN_OFFLOAD_CSUM, "csum"}, {SHIMMER_TUN_OFFLOAD_TSO4, "tso4"},
        {SHIMMER_TUN_OFFLOAD_TSO6, "tso6"}, {SHIMMER_TUN_OFFLOAD_TSO_ECN, "tso-ecn"},
        {SHIMMER_TUN_OFFLOAD_USO4, "uso4"}, {SHIMMER_TUN_OFFLOAD_USO6, "uso6"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        if (o & names[i].bit)
            g_string_append_printf(s, "%s%s", s->len ? "," : "", names[i].name);
    }
    return g_string_free(s, FALSE);
}

ShimmerTun *shimmer_datapath_open_tun(ShimmerDatapath *dp, const char *name, GError **error)
{
    gboolean offload = !(dp->opts.flags & SHIMMER_DATAPATH_NO_TUN_OFFLOAD);
    guint queues = (dp->opts.flags & SHIMMER_DATAPATH_NO_MULTIQUEUE) ? 1 : dp->n_workers;
    ShimmerTun *tun = shimmer_tun_open_queues(name, queues, offload, error);
    if (tun == NULL)
        return NULL;
    if (queues > 1 && shimmer_tun_get_n_queues(tun) < queues)
        dlog(dp, SHIMMER_LOG_INFO,
             "%s: %u of %u tun queues (the device or the kernel gives no more)",
             shimmer_tun_get_name(tun), shimmer_tun_get_n_queues(tun), queues);
    if (!offload)
        return tun;
    if (!shimmer_tun_has_vnet_hdr(tun)) {
        dlog(dp, SHIMMER_LOG_INFO,
             "%s: the kernel has no virtio-net header for tun devices: no "
             "offloads",
             shimmer_tun_get_name(tun));
        return tun;
    }
    guint want = SHIMMER_TUN_OFFLOAD_CSUM | SHIMMER_TUN_OFFLOAD_TSO4 | SHIMMER_TUN_OFFLOAD_TSO6 |
                 SHIMMER_TUN_OFFLOAD_TSO_ECN | SHIMMER_TUN_OFFLOAD_USO4 | SHIMMER_TUN_OFFLOAD_USO6;
    guint got = shimmer_tun_set_offload(tun, want);
    if (got != want) {
        g_autofree char *g = describe_offload(got);
        dlog(dp, SHIMMER_LOG_INFO, "%s: the kernel refused some tun offloads; on: %s",
             shimmer_tun_get_name(tun), g);
    }
    return tun;
}

static void cmd_detach(Worker *w, gpointer data)
{
    if (w->tun_rfd >= 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->tun_rfd, NULL);
    g_atomic_int_set(&w->tun_rfd, -1);
    g_atomic_int_set(&w->tun_wfd, -1);
}

typedef struct {
    ShimmerTun *tun;
    guint mtu;
    guint coalesce;
} Attach;

static void cmd_attach(Worker *w, gpointer data)
{
    const Attach *a = data;
    gboolean vnet = shimmer_tun_has_vnet_hdr(a->tun);
    w->vnet = vnet;
    shimmer_coalescer_free(w->coal);
    w->coal = shimmer_coalescer_new(RX_MAX, a->coalesce);
    worker_size_buffers(w, a->mtu, vnet);
    guint queues = shimmer_tun_get_n_queues(a->tun);
    int rfd = w->index < queues ? shimmer_tun_get_queue_fd(a->tun, w->index) : -1;
    g_atomic_int_set(&w->tun_wfd, rfd >= 0 ? rfd : shimmer_tun_get_queue_fd(a->tun, 0));
    g_atomic_int_set(&w->tun_rfd, rfd);
    if (rfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->tun_tag};
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, rfd, &ev);
    }
}

void shimmer_datapath_detach_tun(ShimmerDatapath *dp)
{
    if (dp->tun == NULL)
        return;
    for (guint i = 0; i < dp->n_workers; i++)
        worker_call(&dp->workers[i], cmd_detach, NULL);
    dp->tun = NULL;
}

gboolean shimmer_datapath_write_tun(ShimmerDatapath *dp, const guint8 *ip, gsize len)
{
    if (dp->tun == NULL)
        return FALSE;
    ShimmerVnetHdr none = {0};
    struct iovec iov[2] = {{&none, SHIMMER_VNET_HDR_LEN}, {(void *)ip, len}};
    gboolean vnet = shimmer_tun_has_vnet_hdr(dp->tun);
    ssize_t r;
    do
        r = writev(shimmer_tun_get_fd(dp->tun), vnet ? iov : iov + 1, vnet ? 2 : 1);
    while (r < 0 && errno == EINTR);
    return r >= 0;
}

void shimmer_datapath_attach_tun(ShimmerDatapath *dp, ShimmerTun *tun, guint mtu)
{
    shimmer_datapath_detach_tun(dp);
    dp->tun = tun;
    gboolean vnet = shimmer_tun_has_vnet_hdr(tun);
    guint off = shimmer_tun_get_offload(tun);
    guint coalesce = 0;
    if (vnet && (off & SHIMMER_TUN_OFFLOAD_TSO4))
        coalesce |= SHIMMER_COALESCE_TCP4;
    if (vnet && (off & SHIMMER_TUN_OFFLOAD_TSO6))
        coalesce |= SHIMMER_COALESCE_TCP6;
    if (vnet && (off & SHIMMER_TUN_OFFLOAD_USO4))
        coalesce |= SHIMMER_COALESCE_UDP4;
    if (vnet && (off & SHIMMER_TUN_OFFLOAD_USO6))
        coalesce |= SHIMMER_COALESCE_UDP6;
    dp->coalesce = coalesce;
    Attach a = {tun, mtu, coalesce};
    /* Each worker changes its own buffers, between its batches. */
    for (guint i = 0; i < dp->n_workers; i++)
        worker_call(&dp->workers[i], cmd_attach, &a);
    g_autofree char *d = shimmer_datapath_describe(dp);
    dlog(dp, SHIMMER_LOG_INFO, "data path: %s", d);
}

/* ---------- links ---------- */

static ShimmerDatapathLink *link_new(ShimmerDatapath *dp, int fd, gboolean tcp)
{
    ShimmerDatapathLink *link = g_new0(ShimmerDatapathLink, 1);
    link->dp = dp;
    link->fd = fd;
    link->tcp = tcp;
    pthread_mutex_init(&link->caps_lock, NULL);
    pthread_mutex_init(&link->out_lock, NULL);
    link->out = g_byte_array_new();
    /* Received packets of one link stay on one worker, in order. */
    link->worker = dp->next_link_worker++ % dp->n_workers;
    return link;
}

static void link_watch(ShimmerDatapath *dp, ShimmerDatapathLink *link)
{
    Worker *w = &dp->workers[link->worker];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = link};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, link->fd, &ev);
}

ShimmerDatapathLink *shimmer_datapath_add_udp(ShimmerDatapath *dp, int fd, gboolean connected)
{
    ShimmerDatapathLink *link = link_new(dp, fd, FALSE);
    link->connected = connected;
    shimmer_udp_setup(fd, !(dp->opts.flags & SHIMMER_DATAPATH_NO_UDP_GSO),
                      !(dp->opts.flags & SHIMMER_DATAPATH_NO_UDP_GRO), &link->caps);
    link_watch(dp, link);
    return link;
}

ShimmerDatapathLink *shimmer_datapath_add_tcp(ShimmerDatapath *dp, int fd)
{
    ShimmerDatapathLink *link = link_new(dp, fd, TRUE);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    link->splitter = shimmer_tcp_splitter_new(SHIMMER_TCP_MAX_PACKET);
    link_watch(dp, link);
    return link;
}

void shimmer_datapath_remove_link(ShimmerDatapath *dp, ShimmerDatapathLink *link)
{
    if (link == NULL)
        return;
    Worker *w = &dp->workers[link->worker];
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, link->fd, NULL);
    g_atomic_int_set(&link->dead, 1);
    /* Every worker: any may be sending on it. */
    shimmer_datapath_synchronize(dp);
    purge(dp, link);
    shimmer_tcp_splitter_free(link->splitter);
    if (link->out->len > 0)
        shimmer_wipe(link->out->data, link->out->len);
    g_byte_array_unref(link->out);
    pthread_mutex_destroy(&link->caps_lock);
    pthread_mutex_destroy(&link->out_lock);
    g_free(link);
}

int shimmer_datapath_link_get_fd(const ShimmerDatapathLink *link)
{
    return link->fd;
}

void shimmer_datapath_link_set_user(ShimmerDatapathLink *link, gpointer user)
{
    link->user = user;
}

gpointer shimmer_datapath_link_get_user(const ShimmerDatapathLink *link)
{
    return link->user;
}

gboolean shimmer_datapath_link_send(ShimmerDatapathLink *link, const guint8 *pkt, gsize len,
                                    const struct sockaddr *to, socklen_t to_len)
{
    if (len == 0 || len > SHIMMER_TCP_MAX_PACKET)
        return FALSE;
    if (link->tcp) {
        guint8 prefix[SHIMMER_TCP_PREFIX_LEN];
        shimmer_tcp_write_prefix(len, prefix);
        struct iovec iov[2] = {{prefix, sizeof(prefix)}, {(void *)pkt, len}};
        /* Both pieces are one frame: the buffer keeps them together. */
        return tcp_send_frames(link, iov, 2, NULL);
    }
    /* A control packet lost to a socket buffer the workers just filled
     * costs a retransmission a second or more later (and a renegotiation
     * waits that long): it waits a little for room instead. */
    for (guint tries = 0;; tries++) {
        ssize_t r = link->connected ? send(link->fd, pkt, len, MSG_DONTWAIT)
                                    : sendto(link->fd, pkt, len, MSG_DONTWAIT, to, to_len);
        if (r == (ssize_t)len)
            return TRUE;
        if (r >= 0 || (errno != EINTR && errno != EAGAIN && errno != ENOBUFS) || tries >= 4)
            return FALSE;
        if (errno != EINTR) {
            struct pollfd pfd = {.fd = link->fd, .events = POLLOUT};
            poll(&pfd, 1, 2);
        }
    }
}

/* ---------- peers ---------- */

ShimmerDatapathPeer *shimmer_datapath_peer_new(ShimmerDataPlane *dataplane,
                                               ShimmerDatapathLink *link, const struct sockaddr *to,
                                               socklen_t to_len)
{
    ShimmerDatapathPeer *p = g_new0(ShimmerDatapathPeer, 1);
    p->dataplane = shimmer_dataplane_ref(dataplane);
    p->link = link;
    if (to != NULL && to_len > 0 && to_len <= sizeof(p->to)) {
        memcpy(&p->to, to, to_len);
        p->to_len = to_len;
    }
    return p;
}

void shimmer_datapath_peer_set_user(ShimmerDatapathPeer *peer, gpointer user)
{
    peer->user = user;
}

gpointer shimmer_datapath_peer_get_user(const ShimmerDatapathPeer *peer)
{
    return peer->user;
}

void shimmer_datapath_peer_set_mss(ShimmerDatapathPeer *peer, guint mss4, guint mss6)
{
    POKE(peer->mss4, mss4);
    POKE(peer->mss6, mss6);
}

ShimmerDataPlane *shimmer_datapath_peer_get_dataplane(const ShimmerDatapathPeer *peer)
{
    return peer->dataplane;
}

void shimmer_datapath_peer_free(ShimmerDatapathPeer *peer)
{
    if (peer == NULL)
        return;
    shimmer_dataplane_unref(peer->dataplane);
    g_free(peer);
}

/* ---------- what happened ---------- */

void shimmer_datapath_get_stats(const ShimmerDatapath *dp, ShimmerDatapathStats *out)
{
    memset(out, 0, sizeof(*out));
    for (guint i = 0; i < dp->n_workers; i++) {
        const ShimmerDatapathStats *s = &dp->workers[i].stats;
        out->tun_reads += PEEK(s->tun_reads);
        out->tun_gso_reads += PEEK(s->tun_gso_reads);
        out->tun_segments += PEEK(s->tun_segments);
        out->tun_writes += PEEK(s->tun_writes);
        out->tun_glued += PEEK(s->tun_glued);
        out->tun_packets_out += PEEK(s->tun_packets_out);
        out->udp_send_calls += PEEK(s->udp_send_calls);
        out->udp_sent += PEEK(s->udp_sent);
        out->udp_gso_sends += PEEK(s->udp_gso_sends);
        out->udp_recv_calls += PEEK(s->udp_recv_calls);
        out->udp_received += PEEK(s->udp_received);
        out->udp_gro_buffers += PEEK(s->udp_gro_buffers);
        out->tcp_writes += PEEK(s->tcp_writes);
        out->tcp_reads += PEEK(s->tcp_reads);
        out->to_runner += PEEK(s->to_runner);
        out->no_peer += PEEK(s->no_peer);
        out->refused += PEEK(s->refused);
        out->dropped += PEEK(s->dropped);
    }
}

char *shimmer_datapath_format_stats(const ShimmerDatapathStats *st)
{
    return g_strdup_printf(
        "tun reads %" G_GUINT64_FORMAT " (super-packets %" G_GUINT64_FORMAT
        ", segments %" G_GUINT64_FORMAT "), tun writes %" G_GUINT64_FORMAT
        " (glued %" G_GUINT64_FORMAT ", packets %" G_GUINT64_FORMAT
        "), UDP sends %" G_GUINT64_FORMAT " calls (%" G_GUINT64_FORMAT
        " datagrams, GSO buffers %" G_GUINT64_FORMAT "), UDP receives %" G_GUINT64_FORMAT
        " calls (%" G_GUINT64_FORMAT " datagrams, GRO buffers %" G_GUINT64_FORMAT
        "), TCP writes %" G_GUINT64_FORMAT ", TCP reads %" G_GUINT64_FORMAT
        ", to the main loop %" G_GUINT64_FORMAT ", no peer %" G_GUINT64_FORMAT
        ", refused %" G_GUINT64_FORMAT ", dropped %" G_GUINT64_FORMAT,
        st->tun_reads, st->tun_gso_reads, st->tun_segments, st->tun_writes, st->tun_glued,
        st->tun_packets_out, st->udp_send_calls, st->udp_sent, st->udp_gso_sends,
        st->udp_recv_calls, st->udp_received, st->udp_gro_buffers, st->tcp_writes, st->tcp_reads,
        st->to_runner, st->no_peer, st->refused, st->dropped);
}

char *shimmer_datapath_describe(const ShimmerDatapath *dp)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "%u worker%s", dp->n_workers, dp->n_workers == 1 ? "" : "s");
    if (dp->tun != NULL) {
        g_autofree char *o = describe_offload(shimmer_tun_get_offload(dp->tun));
        g_string_append_printf(s, "; tun %s: %u queue%s, %s", shimmer_tun_get_name(dp->tun),
                               shimmer_tun_get_n_queues(dp->tun),
                               shimmer_tun_get_n_queues(dp->tun) == 1 ? "" : "s",
                               shimmer_tun_has_vnet_hdr(dp->tun) ? "virtio-net header" : "plain");
        if (shimmer_tun_has_vnet_hdr(dp->tun))
            g_string_append_printf(s, ", offloads %s", o);
    }
    g_string_append_printf(s, "; UDP GSO %s, GRO %s",
                           (dp->opts.flags & SHIMMER_DATAPATH_NO_UDP_GSO) ? "off" : "on",
                           (dp->opts.flags & SHIMMER_DATAPATH_NO_UDP_GRO) ? "off" : "on");
    return g_string_free(s, FALSE);
}
