/* SPDX-License-Identifier: MIT */
#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/uio.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

/* What one UDP_SEGMENT send may carry: the kernel's limit on segments, and
 * a UDP payload's largest size less room for the outer headers. */
#define GSO_MAX_SEGS  64
#define GSO_MAX_BYTES (65535 - 8 - 40)

void shimmer_udp_setup(int fd, gboolean allow_gso, gboolean allow_gro, ShimmerUdpCaps *caps)
{
    memset(caps, 0, sizeof(*caps));
    caps->gso_max_size = G_MAXSIZE;
    if (allow_gso) {
        /* The option exists (Linux 4.18): reading it is enough to know. */
        int v = 0;
        socklen_t l = sizeof(v);
        caps->gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &l) == 0;
    }
    if (allow_gro) {
        int on = 1;
        caps->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0;
    }
}

/* ---------- sending ---------- */

typedef union {
    struct cmsghdr hdr;
    char buf[CMSG_SPACE(sizeof(guint16))];
} SegCmsg;

struct ShimmerUdpSender {
    guint max;
    struct mmsghdr *msgs;
    struct iovec *iov;
    SegCmsg *cmsg;
    /* msgs[i] covers packets first[i] .. first[i] + count[i] */
    guint *first;
    guint *count;
};

ShimmerUdpSender *shimmer_udp_sender_new(guint max_packets)
{
    ShimmerUdpSender *s = g_new0(ShimmerUdpSender, 1);
    s->max = MAX(max_packets, 1);
    s->msgs = g_new0(struct mmsghdr, s->max);
    s->iov = g_new0(struct iovec, s->max);
    s->cmsg = g_new0(SegCmsg, s->max);
    s->first = g_new0(guint, s->max);
    s->count = g_new0(guint, s->max);
    return s;
}

void shimmer_udp_sender_free(ShimmerUdpSender *s)
{
    if (s == NULL)
        return;
    g_free(s->msgs);
    g_free(s->iov);
    g_free(s->cmsg);
    g_free(s->first);
    g_free(s->count);
    g_free(s);
}

static gboolean same_addr(const ShimmerUdpPacket *a, const ShimmerUdpPacket *b)
{
    if (a->addr == NULL || b->addr == NULL)
        return a->addr == b->addr;
    return a->addr_len == b->addr_len &&
           (a->addr == b->addr || memcmp(a->addr, b->addr, a->addr_len) == 0);
}

/* Builds the messages for PKTS[FROM..N): runs glued with GSO where allowed,
 * one datagram per message otherwise. Returns the number of messages. */
static guint build(ShimmerUdpSender *s, const ShimmerUdpCaps *caps, const ShimmerUdpPacket *pkts,
                   guint from, guint n, gboolean gso)
{
    guint m = 0;
    for (guint i = from; i < n;) {
        const ShimmerUdpPacket *p = &pkts[i];
        guint run = 1;
        gsize total = p->len;
        if (gso && p->len < caps->gso_max_size) {
            while (i + run < n && run < GSO_MAX_SEGS) {
                const ShimmerUdpPacket *q = &pkts[i + run];
                if (q->len > p->len || total + q->len > GSO_MAX_BYTES || !same_addr(p, q))
                    break;
                total += q->len;
                run++;
                if (q->len < p->len)
                    break; /* a shorter one ends the run */
            }
        }
        struct mmsghdr *mh = &s->msgs[m];
        memset(mh, 0, sizeof(*mh));
        for (guint k = 0; k < run; k++)
            s->iov[i - from + k] = (struct iovec){(void *)pkts[i + k].data, pkts[i + k].len};
        mh->msg_hdr.msg_iov = &s->iov[i - from];
        mh->msg_hdr.msg_iovlen = run;
        mh->msg_hdr.msg_name = (void *)p->addr;
        mh->msg_hdr.msg_namelen = p->addr != NULL ? p->addr_len : 0;
        if (run > 1) {
            SegCmsg *c = &s->cmsg[m];
            memset(c, 0, sizeof(*c));
            mh->msg_hdr.msg_control = c->buf;
            mh->msg_hdr.msg_controllen = sizeof(c->buf);
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh->msg_hdr);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(guint16));
            guint16 seg = (guint16)p->len;
            memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
        }
        s->first[m] = i;
        s->count[m] = run;
        m++;
        i += run;
    }
    return m;
}

void shimmer_udp_send(ShimmerUdpSender *s, int fd, ShimmerUdpCaps *caps,
                      const ShimmerUdpPacket *pkts, guint n, ShimmerUdpSendResult *res)
{
    n = MIN(n, s->max);
    guint from = 0;
    /* Bounded: every round sends, drops or rebuilds without GSO. */
    for (guint rounds = 0; from < n && rounds < 2 * n + 2; rounds++) {
        guint m = build(s, caps, pkts, from, n, caps->gso);
        guint done = 0;
        while (done < m) {
            res->syscalls++;
            int r = sendmmsg(fd, s->msgs + done, m - done, MSG_DONTWAIT);
            if (r > 0) {
                for (guint k = done; k < done + (guint)r; k++) {
                    res->sent += s->count[k];
                    if (s->count[k] > 1) {
                        res->gso_sends++;
                        res->gso_segments += s->count[k];
                    }
                }
                done += (guint)r;
                continue;
            }
            int err = r < 0 ? errno : EIO;
            if (err == EINTR)
                continue;
            if (s->count[done] > 1 && (err == EIO || err == EINVAL || err == EMSGSIZE)) {
                /* GSO refused for this run: EIO when the device cannot
                 * checksum, EINVAL/EMSGSIZE when a segment is larger than
                 * the path allows. Send it again one by one. */
                if (err == EIO)
                    caps->gso = FALSE;
                else
                    caps->gso_max_size = MIN(caps->gso_max_size, pkts[s->first[done]].len);
                caps->gso_refused = TRUE;
                break;
            }
            if (err == EAGAIN || err == ENOBUFS) {
                /* Full: the rest of the batch is lost, as on a full queue. */
                for (guint k = done; k < m; k++)
                    res->dropped += s->count[k];
                return;
            }
            /* This message's own error (ECONNREFUSED, ...): skip it. */
            if (res->error == 0)
                res->error = err;
            res->dropped += s->count[done];
            done++;
        }
        if (done >= m)
            return;
        from = s->first[done];
    }
}

/* ---------- receiving ---------- */

typedef union {
    struct cmsghdr hdr;
    char buf[CMSG_SPACE(sizeof(int))];
} GroCmsg;

struct ShimmerUdpReceiver {
    guint n_slots;
    gsize slot_size;
    guint8 *bufs;
    struct mmsghdr *msgs;
    struct iovec *iov;
    GroCmsg *cmsg;
    struct sockaddr_storage *from;
    guint max_datagrams;
    ShimmerUdpDatagram *out;
};

ShimmerUdpReceiver *shimmer_udp_receiver_new(guint n_slots, gsize slot_size, guint max_datagrams)
{
    ShimmerUdpReceiver *r = g_new0(ShimmerUdpReceiver, 1);
    r->n_slots = MAX(n_slots, 1);
    r->slot_size = MAX(slot_size, 64);
    r->bufs = g_malloc((gsize)r->n_slots * r->slot_size);
    r->msgs = g_new0(struct mmsghdr, r->n_slots);
    r->iov = g_new0(struct iovec, r->n_slots);
    r->cmsg = g_new0(GroCmsg, r->n_slots);
    r->from = g_new0(struct sockaddr_storage, r->n_slots);
    r->max_datagrams = MAX(max_datagrams, r->n_slots);
    r->out = g_new0(ShimmerUdpDatagram, r->max_datagrams);
    return r;
}

void shimmer_udp_receiver_free(ShimmerUdpReceiver *r)
{
    if (r == NULL)
        return;
    /* Decrypted packets lay in the slots. */
    memset(r->bufs, 0, (gsize)r->n_slots * r->slot_size);
    g_free(r->bufs);
    g_free(r->msgs);
    g_free(r->iov);
    g_free(r->cmsg);
    g_free(r->from);
    g_free(r->out);
    g_free(r);
}

static int gro_size(struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            return v;
        }
    }
    return 0;
}

gint shimmer_udp_receive(ShimmerUdpReceiver *r, int fd, const ShimmerUdpDatagram **out,
                         guint *truncated, guint *gro_buffers)
{
    *out = r->out;
    for (guint i = 0; i < r->n_slots; i++) {
        r->iov[i] = (struct iovec){r->bufs + (gsize)i * r->slot_size, r->slot_size};
        struct msghdr *mh = &r->msgs[i].msg_hdr;
        memset(mh, 0, sizeof(*mh));
        mh->msg_iov = &r->iov[i];
        mh->msg_iovlen = 1;
        mh->msg_name = &r->from[i];
        mh->msg_namelen = sizeof(r->from[i]);
        mh->msg_control = r->cmsg[i].buf;
        mh->msg_controllen = sizeof(r->cmsg[i].buf);
    }
    int n = recvmmsg(fd, r->msgs, r->n_slots, MSG_DONTWAIT, NULL);
    if (n < 0)
        return errno == EAGAIN ? 0 : -1;
    guint k = 0;
    for (int i = 0; i < n && k < r->max_datagrams; i++) {
        struct msghdr *mh = &r->msgs[i].msg_hdr;
        if (mh->msg_flags & MSG_TRUNC) {
            (*truncated)++;
            continue;
        }
        guint8 *p = r->iov[i].iov_base;
        gsize len = r->msgs[i].msg_len;
        gsize seg = (gsize)MAX(gro_size(mh), 0);
        if (seg == 0 || seg >= len)
            seg = len;
        else
            (*gro_buffers)++;
        for (gsize off = 0; off < len && k < r->max_datagrams; off += seg) {
            ShimmerUdpDatagram *d = &r->out[k++];
            d->data = p + off;
            d->len = MIN(seg, len - off);
            d->from = (const struct sockaddr *)&r->from[i];
            d->from_len = mh->msg_namelen;
        }
    }
    return (gint)k;
}
