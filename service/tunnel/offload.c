/* SPDX-License-Identifier: MIT */
#include "tunnel/offload.h"

#include <string.h>

#include "bytes.h"

G_STATIC_ASSERT(sizeof(ShimmerVnetHdr) == SHIMMER_VNET_HDR_LEN);

#define PROTO_TCP 6
#define PROTO_UDP 17

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

/* ---------- checksums ---------- */

/* The one's complement sum of BUF[0..LEN) in the host's byte order, in 64
 * bits with the carries folded back in (RFC 1071: the sum does not depend on
 * the order in which the words are added, and a sum taken over little-endian
 * words is the byte-swapped big-endian one). LEN's parity matters only for
 * the last byte; callers add ranges that start at even offsets. */
static guint64 sum_raw(const guint8 *p, gsize len, guint64 sum)
{
    while (len >= 8) {
        guint64 v;
        memcpy(&v, p, 8);
        sum += v;
        sum += sum < v; /* end-around carry */
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        guint32 v;
        memcpy(&v, p, 4);
        sum += v;
        sum += sum < v;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        guint16 v;
        memcpy(&v, p, 2);
        sum += v;
        sum += sum < v;
        p += 2;
        len -= 2;
    }
    if (len > 0) {
        /* The last byte is the first of a word padded with zero. */
        guint16 v = 0;
        memcpy(&v, p, 1);
        sum += v;
        sum += sum < v;
    }
    return sum;
}

static guint16 fold64(guint64 sum)
{
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)sum;
}

/* Folded and in network order as a host integer. */
static guint16 sum_be(const guint8 *p, gsize len)
{
    return GUINT16_FROM_BE(fold64(sum_raw(p, len, 0)));
}

guint16 shimmer_offload_csum(const guint8 *buf, gsize len)
{
    return sum_be(buf, len);
}

static guint16 add16(guint32 a, guint32 b)
{
    guint32 s = a + b;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return (guint16)s;
}

/* The pseudo header's sum (folded, not inverted) for an L4LEN-byte
 * transport segment of PROTO in the IP packet IP. */
static guint16 pseudo_sum(const guint8 *ip, guint proto, gsize l4len)
{
    guint32 s = proto + (guint32)l4len;
    if (ip[0] >> 4 == 4)
        s += sum_be(ip + 12, 8);
    else
        s += sum_be(ip + 8, 32);
    return add16(s, 0);
}

static void ipv4_fix_checksum(guint8 *ip, gsize ihl)
{
    ip[10] = ip[11] = 0;
    shimmer_write_be16(ip + 10, (guint16)~sum_be(ip, ihl));
}

/* Computes the full transport checksum of the segment at IP (IHL bytes of
 * IP header, then L4LEN bytes) into its field at CSUM_OFF from the
 * transport header. */
static void l4_checksum(guint8 *ip, gsize ihl, guint proto, gsize l4len, gsize csum_off)
{
    guint8 *l4 = ip + ihl;
    l4[csum_off] = l4[csum_off + 1] = 0;
    guint16 c = (guint16)~add16(pseudo_sum(ip, proto, l4len), sum_be(l4, l4len));
    if (proto == PROTO_UDP && c == 0)
        c = 0xffff; /* 0 means "no checksum" in UDP */
    shimmer_write_be16(l4 + csum_off, c);
}

gboolean shimmer_offload_finish_checksum(const ShimmerVnetHdr *h, guint8 *pkt, gsize len)
{
    if (!(h->flags & SHIMMER_VNET_F_NEEDS_CSUM))
        return TRUE;
    gsize start = h->csum_start, off = h->csum_offset;
    if (start >= len || off + 2 > len - start)
        return FALSE;
    /* The field holds the pseudo header's sum already. */
    guint16 c = (guint16)~sum_be(pkt + start, len - start);
    if (off == 6 && c == 0)
        c = 0xffff; /* UDP */
    shimmer_write_be16(pkt + start + off, c);
    return TRUE;
}

/* ---------- parsing ---------- */

typedef struct {
    guint version;
    gsize ihl;   /* IP header */
    guint proto; /* TCP or UDP, else 0 */
    gsize l4hl;  /* transport header */
    gsize payload;
} Parsed;

/* The headers of a plain TCP or UDP packet (see offload.h) of LEN bytes,
 * whatever its IP length field says. */
static gboolean parse_headers(const guint8 *p, gsize len, Parsed *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 20)
        return FALSE;
    out->version = p[0] >> 4;
    if (out->version == 4) {
        out->ihl = (gsize)(p[0] & 15) * 4;
        if (out->ihl < 20 || out->ihl > len || (shimmer_read_be16(p + 6) & 0x3fff))
            return FALSE; /* short, or a fragment (MF or an offset) */
        out->proto = p[9];
    } else if (out->version == 6) {
        out->ihl = 40;
        if (len < 40)
            return FALSE;
        out->proto = p[6];
    } else {
        return FALSE;
    }
    gsize rest = len - out->ihl;
    if (out->proto == PROTO_TCP) {
        if (rest < 20)
            return FALSE;
        out->l4hl = (gsize)(p[out->ihl + 12] >> 4) * 4;
        if (out->l4hl < 20 || out->l4hl > rest)
            return FALSE;
    } else if (out->proto == PROTO_UDP) {
        if (rest < 8)
            return FALSE;
        out->l4hl = 8;
    } else {
        return FALSE;
    }
    out->payload = rest - out->l4hl;
    return TRUE;
}

/* As parse_headers(), and the IP length field must say LEN. */
static gboolean parse(const guint8 *p, gsize len, Parsed *out)
{
    if (!parse_headers(p, len, out))
        return FALSE;
    if (out->version == 4)
        return shimmer_read_be16(p + 2) == len;
    return (gsize)shimmer_read_be16(p + 4) + 40 == len;
}

/* ---------- segmentation ---------- */

guint shimmer_offload_segment(const ShimmerVnetHdr *h, const guint8 *pkt, gsize len, guint8 **segs,
                              guint max_segs, gsize headroom, gsize cap, gsize *seg_len)
{
    Parsed ps;
    /* The super-packet's own length fields are not trusted: the read's
     * length is the packet's. Every segment gets its own. */
    if (!parse_headers(pkt, len, &ps))
        return 0;
    gsize hdr = ps.ihl + ps.l4hl;
    gsize payload = ps.payload;
    guint gso = h->gso_type & ~SHIMMER_VNET_GSO_ECN;
    if ((gso == SHIMMER_VNET_GSO_TCPV4 && (ps.version != 4 || ps.proto != PROTO_TCP)) ||
        (gso == SHIMMER_VNET_GSO_TCPV6 && (ps.version != 6 || ps.proto != PROTO_TCP)) ||
        (gso == SHIMMER_VNET_GSO_UDP_L4 && ps.proto != PROTO_UDP) ||
        (gso != SHIMMER_VNET_GSO_TCPV4 && gso != SHIMMER_VNET_GSO_TCPV6 &&
         gso != SHIMMER_VNET_GSO_UDP_L4))
        return 0;
    gsize mss = h->gso_size;
    if (mss == 0)
        return 0;
    guint n = payload == 0 ? 1 : (guint)((payload + mss - 1) / mss);
    if (n > max_segs || headroom > cap || cap - headroom < hdr + MIN(mss, payload))
        return 0;

    guint16 id = ps.version == 4 ? shimmer_read_be16(pkt + 4) : 0;
    guint32 seq = ps.proto == PROTO_TCP ? shimmer_read_be32(pkt + ps.ihl + 4) : 0;
    guint8 flags = ps.proto == PROTO_TCP ? pkt[ps.ihl + 13] : 0;
    for (guint i = 0; i < n; i++) {
        gsize off = (gsize)i * mss;
        gsize plen = MIN(mss, payload - off);
        guint8 *d = segs[i] + headroom;
        memcpy(d, pkt, hdr);
        memcpy(d + hdr, pkt + hdr + off, plen);
        gsize l4len = ps.l4hl + plen;
        if (ps.version == 4) {
            shimmer_write_be16(d + 2, (guint16)(hdr + plen));
            shimmer_write_be16(d + 4, (guint16)(id + i));
            ipv4_fix_checksum(d, ps.ihl);
        } else {
            shimmer_write_be16(d + 4, (guint16)l4len);
        }
        guint8 *l4 = d + ps.ihl;
        if (ps.proto == PROTO_TCP) {
            shimmer_write_be32(l4 + 4, seq + (guint32)off);
            guint8 f = flags;
            if (i + 1 < n)
                f &= (guint8) ~(TCP_FIN | TCP_PSH);
            if (i > 0)
                f &= (guint8)~TCP_CWR;
            l4[13] = f;
            l4_checksum(d, ps.ihl, PROTO_TCP, l4len, 16);
        } else {
            shimmer_write_be16(l4 + 4, (guint16)l4len);
            l4_checksum(d, ps.ihl, PROTO_UDP, l4len, 6);
        }
        seg_len[i] = hdr + plen;
    }
    return n;
}

/* ---------- coalescing ---------- */

typedef struct {
    guint8 *pkt;
    gsize len;
    gint next;     /* the next packet of its group; -1: last */
    gsize payload; /* bytes after the headers */
} Member;

typedef struct {
    gint first, last; /* member indices */
    guint n;
    Parsed ps;
    gboolean closed;
    gboolean glueable;
    gsize seg_size;
    gsize total_payload;
    guint32 next_seq;
    guint8 last_flags;
} Group;

struct ShimmerCoalescer {
    guint max;
    guint flags;
    Member *members;
    guint n_members;
    Group *groups;
    guint n_groups;
    struct iovec *iov;
    ShimmerCoalescedWrite *writes;
    guint n_writes;
};

ShimmerCoalescer *shimmer_coalescer_new(guint max_packets, guint flags)
{
    ShimmerCoalescer *c = g_new0(ShimmerCoalescer, 1);
    c->max = MAX(max_packets, 1);
    c->flags = flags;
    c->members = g_new0(Member, c->max);
    c->groups = g_new0(Group, c->max);
    c->iov = g_new0(struct iovec, c->max);
    c->writes = g_new0(ShimmerCoalescedWrite, c->max);
    return c;
}

void shimmer_coalescer_free(ShimmerCoalescer *c)
{
    if (c == NULL)
        return;
    g_free(c->members);
    g_free(c->groups);
    g_free(c->iov);
    g_free(c->writes);
    g_free(c);
}

void shimmer_coalescer_reset(ShimmerCoalescer *c)
{
    c->n_members = c->n_groups = c->n_writes = 0;
}

static gboolean allowed(const ShimmerCoalescer *c, const Parsed *ps)
{
    guint bit = ps->proto == PROTO_TCP
                    ? (ps->version == 4 ? SHIMMER_COALESCE_TCP4 : SHIMMER_COALESCE_TCP6)
                    : (ps->version == 4 ? SHIMMER_COALESCE_UDP4 : SHIMMER_COALESCE_UDP6);
    return (c->flags & bit) != 0;
}

/* Same flow: addresses and ports. */
static gboolean same_flow(const guint8 *a, const guint8 *b, const Parsed *pa, const Parsed *pb)
{
    if (pa->version != pb->version || pa->proto != pb->proto || pa->ihl != pb->ihl)
        return FALSE;
    if (pa->version == 4 ? memcmp(a + 12, b + 12, 8) != 0 : memcmp(a + 8, b + 8, 32) != 0)
        return FALSE;
    return memcmp(a + pa->ihl, b + pb->ihl, 4) == 0;
}

/* What must be alike for B's payload to ride on A's headers: the IP fields
 * besides length, identification and checksum, and for TCP everything but
 * the sequence number, PSH and the checksum (the options included). */
static gboolean same_headers(const guint8 *a, const guint8 *b, const Parsed *pa, const Parsed *pb)
{
    if (pa->version == 4) {
        if (a[1] != b[1] || a[8] != b[8] || (a[6] & 0x40) != (b[6] & 0x40))
            return FALSE; /* TOS, TTL, DF */
    } else {
        if (memcmp(a, b, 4) != 0 || a[7] != b[7])
            return FALSE; /* traffic class, flow label, hop limit */
    }
    if (pa->proto != PROTO_TCP)
        return TRUE;
    if (pa->l4hl != pb->l4hl)
        return FALSE;
    const guint8 *ta = a + pa->ihl, *tb = b + pb->ihl;
    if (memcmp(ta + 8, tb + 8, 4) != 0 || memcmp(ta + 14, tb + 14, 2) != 0)
        return FALSE; /* ack, window */
    if ((ta[13] & ~TCP_PSH) != (tb[13] & ~TCP_PSH) || memcmp(ta + 18, tb + 18, 2) != 0)
        return FALSE; /* flags, urgent pointer */
    return memcmp(ta + 20, tb + 20, pa->l4hl - 20) == 0;
}

/* A packet whose payload may be glued to others': TCP with ACK and only
 * PSH besides, or UDP, with a payload. */
static gboolean glueable(const guint8 *p, const Parsed *ps)
{
    if (ps->payload == 0)
        return FALSE;
    if (ps->proto == PROTO_UDP)
        return TRUE;
    guint8 f = p[ps->ihl + 13];
    return (f & ~TCP_PSH) == TCP_ACK;
}

static gint new_group(ShimmerCoalescer *c, gint member, const Parsed *ps, gboolean glue)
{
    Group *g = &c->groups[c->n_groups];
    memset(g, 0, sizeof(*g));
    g->first = g->last = member;
    g->n = 1;
    g->ps = *ps;
    g->glueable = glue;
    g->closed = !glue;
    const Member *m = &c->members[member];
    g->seg_size = ps->payload;
    g->total_payload = ps->payload;
    if (ps->proto == PROTO_TCP) {
        const guint8 *t = m->pkt + ps->ihl;
        g->next_seq = shimmer_read_be32(t + 4) + (guint32)ps->payload;
        g->last_flags = t[13];
        if (t[13] & TCP_PSH)
            g->closed = TRUE;
    }
    return (gint)c->n_groups++;
}

gboolean shimmer_coalescer_add(ShimmerCoalescer *c, guint8 *pkt, gsize len)
{
    if (c->n_members >= c->max)
        return FALSE;
    gint mi = (gint)c->n_members++;
    Member *m = &c->members[mi];
    m->pkt = pkt;
    m->len = len;
    m->next = -1;
    Parsed ps;
    if (!parse(pkt, len, &ps)) {
        Parsed none = {0};
        new_group(c, mi, &none, FALSE);
        return TRUE;
    }
    m->payload = ps.payload;
    gboolean glue = allowed(c, &ps) && glueable(pkt, &ps);
    /* The open group of its flow, if any: the latest one. */
    Group *g = NULL;
    for (gint i = (gint)c->n_groups - 1; i >= 0; i--) {
        Group *cand = &c->groups[i];
        if (cand->ps.proto != 0 && !cand->closed &&
            same_flow(c->members[cand->first].pkt, pkt, &cand->ps, &ps)) {
            g = cand;
            break;
        }
    }
    if (g != NULL && glue && same_headers(c->members[g->first].pkt, pkt, &g->ps, &ps) &&
        ps.payload <= g->seg_size && g->n < SHIMMER_OFFLOAD_MAX_SEGS &&
        (ps.version == 4 ? g->ps.ihl : 0) + g->ps.l4hl + g->total_payload + ps.payload <= 65535 &&
        (ps.proto != PROTO_TCP || shimmer_read_be32(pkt + ps.ihl + 4) == g->next_seq)) {
        c->members[g->last].next = mi;
        g->last = mi;
        g->n++;
        g->total_payload += ps.payload;
        if (ps.proto == PROTO_TCP) {
            guint8 f = pkt[ps.ihl + 13];
            g->next_seq += (guint32)ps.payload;
            g->last_flags = f;
            if (f & TCP_PSH)
                g->closed = TRUE;
        }
        /* A shorter one ends the group: only the last segment may be. */
        if (ps.payload < g->seg_size)
            g->closed = TRUE;
        return TRUE;
    }
    /* Its flow goes on in a new group, after the old one. */
    if (g != NULL)
        g->closed = TRUE;
    new_group(c, mi, &ps, glue);
    return TRUE;
}

/* Rewrites the first packet of G as the glued packet's header and fills in
 * W's virtio-net header. */
static void glue_headers(ShimmerCoalescer *c, const Group *g, ShimmerCoalescedWrite *w)
{
    guint8 *p = c->members[g->first].pkt;
    const Parsed *ps = &g->ps;
    gsize hdr = ps->ihl + ps->l4hl;
    gsize l4len = ps->l4hl + g->total_payload;
    if (ps->version == 4) {
        shimmer_write_be16(p + 2, (guint16)(hdr + g->total_payload));
        ipv4_fix_checksum(p, ps->ihl);
    } else {
        shimmer_write_be16(p + 4, (guint16)l4len);
    }
    guint8 *l4 = p + ps->ihl;
    w->hdr.flags = SHIMMER_VNET_F_NEEDS_CSUM;
    w->hdr.hdr_len = (guint16)hdr;
    w->hdr.gso_size = (guint16)g->seg_size;
    w->hdr.csum_start = (guint16)ps->ihl;
    if (ps->proto == PROTO_TCP) {
        l4[13] = (guint8)((l4[13] & ~TCP_PSH) | (g->last_flags & TCP_PSH));
        w->hdr.gso_type = ps->version == 4 ? SHIMMER_VNET_GSO_TCPV4 : SHIMMER_VNET_GSO_TCPV6;
        w->hdr.csum_offset = 16;
        /* NEEDS_CSUM: the field holds the pseudo header's sum, not inverted. */
        shimmer_write_be16(l4 + 16, pseudo_sum(p, PROTO_TCP, l4len));
    } else {
        shimmer_write_be16(l4 + 4, (guint16)MIN(l4len, 65535));
        w->hdr.gso_type = SHIMMER_VNET_GSO_UDP_L4;
        w->hdr.csum_offset = 6;
        shimmer_write_be16(l4 + 6, pseudo_sum(p, PROTO_UDP, l4len));
    }
}

const ShimmerCoalescedWrite *shimmer_coalescer_finish(ShimmerCoalescer *c, guint *n_writes,
                                                      struct iovec **iov)
{
    guint k = 0;
    c->n_writes = 0;
    for (guint gi = 0; gi < c->n_groups; gi++) {
        const Group *g = &c->groups[gi];
        ShimmerCoalescedWrite *w = &c->writes[c->n_writes++];
        memset(w, 0, sizeof(*w));
        w->first_iov = k;
        w->n_packets = g->n;
        const Member *m = &c->members[g->first];
        c->iov[k++] = (struct iovec){m->pkt, m->len};
        w->len = m->len;
        if (g->n >= 2) {
            gsize hdr = g->ps.ihl + g->ps.l4hl;
            for (gint mi = m->next; mi >= 0; mi = c->members[mi].next) {
                const Member *o = &c->members[mi];
                c->iov[k++] = (struct iovec){o->pkt + hdr, o->len - hdr};
                w->len += o->len - hdr;
            }
            glue_headers(c, g, w);
        }
        w->n_iov = k - w->first_iov;
    }
    *n_writes = c->n_writes;
    *iov = c->iov;
    return c->writes;
}
