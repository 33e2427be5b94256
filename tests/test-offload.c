/* SPDX-License-Identifier: MIT */
/*
 * service/tunnel/offload.c: checksums, cutting super-packets from a tun with
 * TSO/USO into segments, and gluing segments back for the tun.
 *
 * Packets are built here from scratch with checksums computed by a plain
 * reference implementation (RFC 1071, word by word), independent of the
 * module's own.
 */
#include <string.h>

#include "bytes.h"
#include "tunnel/offload.h"

/* ---- reference checksum, word by word ---- */

static guint32 ref_sum(const guint8 *p, gsize len, guint32 sum)
{
    for (gsize i = 0; i + 1 < len; i += 2)
        sum += (guint32)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (guint32)p[len - 1] << 8;
    return sum;
}

static guint16 ref_fold(guint32 sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)sum;
}

/* The transport checksum of the packet at IP is right. */
static gboolean l4_ok(const guint8 *ip, gsize len)
{
    guint v = ip[0] >> 4;
    gsize ihl = v == 4 ? (gsize)(ip[0] & 15) * 4 : 40;
    guint proto = v == 4 ? ip[9] : ip[6];
    gsize l4len = len - ihl;
    guint32 s = proto + (guint32)l4len;
    s = v == 4 ? ref_sum(ip + 12, 8, s) : ref_sum(ip + 8, 32, s);
    s = ref_sum(ip + ihl, l4len, s);
    return ref_fold(s) == 0xffff;
}

static gboolean ipv4_ok(const guint8 *ip)
{
    return ref_fold(ref_sum(ip, (gsize)(ip[0] & 15) * 4, 0)) == 0xffff;
}

/* ---- packet builders ---- */

typedef struct {
    guint version;
    guint proto;
    gsize opts; /* TCP option bytes (a multiple of 4) */
    guint32 seq;
    guint8 flags; /* TCP */
    guint16 id;   /* IPv4 */
    guint16 sport;
    guint8 last_addr; /* varies the flow */
} Spec;

static void fill(guint8 *p, gsize len, guint seed)
{
    guint32 x = seed * 2654435761u + 1;
    for (gsize i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (guint8)x;
    }
}

static gsize header_len(const Spec *s)
{
    return (s->version == 4 ? 20 : 40) + (s->proto == 6 ? 20 + s->opts : 8);
}

/* A complete, checksummed packet with PAYLOAD bytes of PAYLOAD_SEED. */
static gsize build(const Spec *s, gsize payload, guint payload_seed, guint8 *out)
{
    gsize ihl = s->version == 4 ? 20 : 40;
    gsize hdr = header_len(s);
    gsize len = hdr + payload;
    memset(out, 0, hdr);
    if (s->version == 4) {
        out[0] = 0x45;
        out[1] = 0x10;
        shimmer_write_be16(out + 2, (guint16)len);
        shimmer_write_be16(out + 4, s->id);
        out[6] = 0x40; /* DF */
        out[8] = 64;
        out[9] = (guint8)s->proto;
        guint8 a[8] = {10, 0, 0, 1, 10, 0, 0, s->last_addr};
        memcpy(out + 12, a, 8);
    } else {
        out[0] = 0x60;
        out[1] = 0x0a;
        out[3] = 0x42;
        shimmer_write_be16(out + 4, (guint16)(len - 40));
        out[6] = (guint8)s->proto;
        out[7] = 64;
        out[8] = 0xfd;
        out[39] = s->last_addr;
        out[23] = 1;
    }
    guint8 *l4 = out + ihl;
    shimmer_write_be16(l4, s->sport);
    shimmer_write_be16(l4 + 2, 5201);
    if (s->proto == 6) {
        shimmer_write_be32(l4 + 4, s->seq);
        shimmer_write_be32(l4 + 8, 0x01020304);
        l4[12] = (guint8)((20 + s->opts) / 4 << 4);
        l4[13] = s->flags;
        shimmer_write_be16(l4 + 14, 512);
        for (gsize i = 0; i < s->opts; i++)
            l4[20 + i] = i % 4 == 0 ? 1 : (guint8)(0x30 + i); /* NOPs and bytes */
    } else {
        shimmer_write_be16(l4 + 4, (guint16)(len - ihl));
    }
    fill(out + hdr, payload, payload_seed);
    if (s->version == 4)
        shimmer_write_be16(out + 10, (guint16)~ref_fold(ref_sum(out, 20, 0)));
    gsize l4len = len - ihl;
    guint32 sum = s->proto + (guint32)l4len;
    sum = s->version == 4 ? ref_sum(out + 12, 8, sum) : ref_sum(out + 8, 32, sum);
    sum = ref_sum(l4, l4len, sum);
    guint16 c = (guint16)~ref_fold(sum);
    if (s->proto == 17 && c == 0)
        c = 0xffff;
    shimmer_write_be16(l4 + (s->proto == 6 ? 16 : 6), c);
    g_assert_true(l4_ok(out, len));
    return len;
}

/* A super-packet as the kernel hands it over: headers of the first
 * segment, all the payload, the transport checksum field holding the
 * pseudo header's sum (NEEDS_CSUM). */
static gsize build_super(const Spec *s, gsize payload, guint seed, guint mss, guint8 *out,
                         ShimmerVnetHdr *h)
{
    gsize len = build(s, payload, seed, out);
    gsize ihl = s->version == 4 ? 20 : 40;
    gsize l4len = len - ihl;
    guint32 sum = s->proto + (guint32)l4len;
    sum = s->version == 4 ? ref_sum(out + 12, 8, sum) : ref_sum(out + 8, 32, sum);
    shimmer_write_be16(out + ihl + (s->proto == 6 ? 16 : 6), ref_fold(sum));
    memset(h, 0, sizeof(*h));
    h->flags = SHIMMER_VNET_F_NEEDS_CSUM;
    h->gso_type = s->proto == 17    ? SHIMMER_VNET_GSO_UDP_L4
                  : s->version == 4 ? SHIMMER_VNET_GSO_TCPV4
                                    : SHIMMER_VNET_GSO_TCPV6;
    h->hdr_len = (guint16)header_len(s);
    h->gso_size = (guint16)mss;
    h->csum_start = (guint16)ihl;
    h->csum_offset = s->proto == 6 ? 16 : 6;
    return len;
}

/* ---- checksums ---- */

static void test_csum(void)
{
    guint8 buf[3000];
    fill(buf, sizeof(buf), 7);
    for (gsize start = 0; start < 8; start++) {
        for (gsize len = 0; len < 200; len++)
            g_assert_cmphex(shimmer_offload_csum(buf + start, len), ==,
                            ref_fold(ref_sum(buf + start, len, 0)));
        g_assert_cmphex(shimmer_offload_csum(buf + start, 2999 - start), ==,
                        ref_fold(ref_sum(buf + start, 2999 - start, 0)));
    }
    memset(buf, 0xff, 64);
    g_assert_cmphex(shimmer_offload_csum(buf, 64), ==, 0xffff);
}

static void test_finish_checksum(void)
{
    for (guint v = 4; v <= 6; v += 2) {
        for (guint proto = 6; proto <= 17; proto += 11) {
            Spec s = {.version = v, .proto = proto, .flags = 0x18, .sport = 40000, .last_addr = 2};
            guint8 pkt[2000];
            ShimmerVnetHdr h;
            gsize len = build_super(&s, 1000, 3, 1400, pkt, &h);
            g_assert_false(l4_ok(pkt, len));
            g_assert_true(shimmer_offload_finish_checksum(&h, pkt, len));
            g_assert_true(l4_ok(pkt, len));
            h.csum_start = (guint16)len;
            g_assert_false(shimmer_offload_finish_checksum(&h, pkt, len));
            h.flags = 0;
            g_assert_true(shimmer_offload_finish_checksum(&h, pkt, len));
        }
    }
}

/* ---- segmentation ---- */

#define HEADROOM 32
#define SEG_CAP  (HEADROOM + 9100)

typedef struct {
    guint8 *bufs[SHIMMER_OFFLOAD_MAX_SEGS];
    gsize lens[SHIMMER_OFFLOAD_MAX_SEGS];
} Segs;

static void segs_init(Segs *g)
{
    for (guint i = 0; i < SHIMMER_OFFLOAD_MAX_SEGS; i++)
        g->bufs[i] = g_malloc0(SEG_CAP);
}

static void segs_clear(Segs *g)
{
    for (guint i = 0; i < SHIMMER_OFFLOAD_MAX_SEGS; i++)
        g_free(g->bufs[i]);
}

static void check_segments(const Spec *s, gsize payload, guint mss)
{
    guint8 *super = g_malloc(70000);
    ShimmerVnetHdr h;
    gsize len = build_super(s, payload, 11, mss, super, &h);
    Segs g;
    segs_init(&g);
    guint n = shimmer_offload_segment(&h, super, len, g.bufs, SHIMMER_OFFLOAD_MAX_SEGS, HEADROOM,
                                      SEG_CAP, g.lens);
    guint want = (guint)((payload + mss - 1) / mss);
    g_assert_cmpuint(n, ==, want);
    gsize hdr = header_len(s);
    gsize ihl = s->version == 4 ? 20 : 40;
    guint8 *expect = g_malloc(70000);
    fill(expect, payload, 11);
    for (guint i = 0; i < n; i++) {
        const guint8 *p = g.bufs[i] + HEADROOM;
        gsize plen = MIN(mss, payload - (gsize)i * mss);
        g_assert_cmpuint(g.lens[i], ==, hdr + plen);
        g_assert_cmpmem(p + hdr, plen, expect + (gsize)i * mss, plen);
        g_assert_true(l4_ok(p, g.lens[i]));
        if (s->version == 4) {
            g_assert_true(ipv4_ok(p));
            g_assert_cmpuint(shimmer_read_be16(p + 2), ==, g.lens[i]);
            g_assert_cmpuint(shimmer_read_be16(p + 4), ==, (guint16)(s->id + i));
        } else {
            g_assert_cmpuint(shimmer_read_be16(p + 4), ==, g.lens[i] - 40);
        }
        const guint8 *l4 = p + ihl;
        if (s->proto == 6) {
            g_assert_cmpuint(shimmer_read_be32(l4 + 4), ==, s->seq + i * mss);
            guint8 f = l4[13];
            g_assert_cmphex(f & 0x10, ==, s->flags & 0x10);
            if (i + 1 < n)
                g_assert_cmphex(f & 0x09, ==, 0); /* FIN, PSH */
            else
                g_assert_cmphex(f & 0x09, ==, s->flags & 0x09);
            g_assert_cmphex(f & 0x80, ==, i == 0 ? (s->flags & 0x80) : 0); /* CWR */
            g_assert_cmpmem(l4 + 20, s->opts, super + ihl + 20, s->opts);
        } else {
            g_assert_cmpuint(shimmer_read_be16(l4 + 4), ==, g.lens[i] - ihl);
        }
    }
    g_free(expect);
    g_free(super);
    segs_clear(&g);
}

static void test_segment(void)
{
    static const gsize payloads[] = {1, 100, 1447, 1448, 1449, 2896, 10000, 63000};
    static const guint msses[] = {1448, 1000, 1, 537};
    for (guint v = 4; v <= 6; v += 2) {
        for (guint pi = 0; pi < G_N_ELEMENTS(payloads); pi++) {
            for (guint mi = 0; mi < G_N_ELEMENTS(msses); mi++) {
                gsize payload = payloads[pi];
                guint mss = msses[mi];
                if ((payload + mss - 1) / mss > SHIMMER_OFFLOAD_MAX_SEGS)
                    continue;
                Spec tcp = {.version = v,
                            .proto = 6,
                            .opts = 12,
                            .seq = 0xfffff000u,
                            .flags = 0x18 | 0x01 | 0x80,
                            .id = 0xfffe,
                            .sport = 40000,
                            .last_addr = 2};
                check_segments(&tcp, payload, mss);
                tcp.flags = 0x10;
                tcp.opts = 0;
                check_segments(&tcp, payload, mss);
                Spec udp = {.version = v, .proto = 17, .id = 7, .sport = 40001, .last_addr = 2};
                check_segments(&udp, payload, mss);
            }
        }
    }
    /* Jumbo segments (tun-mtu 9000). */
    Spec tcp = {.version = 4, .proto = 6, .opts = 12, .seq = 5, .flags = 0x10, .sport = 1};
    check_segments(&tcp, 60000, 8948);
}

static void test_segment_refused(void)
{
    Spec s = {.version = 4, .proto = 6, .seq = 1, .flags = 0x10, .sport = 1, .last_addr = 2};
    guint8 *super = g_malloc(70000);
    ShimmerVnetHdr h;
    gsize len = build_super(&s, 10000, 1, 1000, super, &h);
    Segs g;
    segs_init(&g);
    /* Too many segments, no room, a zero size, a type that does not match. */
    g_assert_cmpuint(shimmer_offload_segment(&h, super, len, g.bufs, 9, HEADROOM, SEG_CAP, g.lens),
                     ==, 0);
    g_assert_cmpuint(shimmer_offload_segment(&h, super, len, g.bufs, SHIMMER_OFFLOAD_MAX_SEGS,
                                             HEADROOM, HEADROOM + 500, g.lens),
                     ==, 0);
    ShimmerVnetHdr bad = h;
    bad.gso_size = 0;
    g_assert_cmpuint(shimmer_offload_segment(&bad, super, len, g.bufs, SHIMMER_OFFLOAD_MAX_SEGS,
                                             HEADROOM, SEG_CAP, g.lens),
                     ==, 0);
    bad = h;
    bad.gso_type = SHIMMER_VNET_GSO_TCPV6;
    g_assert_cmpuint(shimmer_offload_segment(&bad, super, len, g.bufs, SHIMMER_OFFLOAD_MAX_SEGS,
                                             HEADROOM, SEG_CAP, g.lens),
                     ==, 0);
    bad.gso_type = SHIMMER_VNET_GSO_UDP_L4;
    g_assert_cmpuint(shimmer_offload_segment(&bad, super, len, g.bufs, SHIMMER_OFFLOAD_MAX_SEGS,
                                             HEADROOM, SEG_CAP, g.lens),
                     ==, 0);
    /* Truncated headers. */
    g_assert_cmpuint(shimmer_offload_segment(&h, super, 30, g.bufs, SHIMMER_OFFLOAD_MAX_SEGS,
                                             HEADROOM, SEG_CAP, g.lens),
                     ==, 0);
    g_free(super);
    segs_clear(&g);
}

/* ---- coalescing ---- */

typedef struct {
    guint8 *pkt;
    gsize len;
    guint8 *orig; /* a copy as built */
} Pkt;

static Pkt mk(const Spec *s, gsize payload, guint seed)
{
    Pkt p;
    p.pkt = g_malloc(payload + 120);
    p.len = build(s, payload, seed, p.pkt);
    p.orig = g_memdup2(p.pkt, p.len);
    return p;
}

static void pkt_free(Pkt *p)
{
    g_free(p->pkt);
    g_free(p->orig);
}

/* Gathers write W into one buffer. */
static gsize gather(const ShimmerCoalescedWrite *w, const struct iovec *iov, guint8 *out)
{
    gsize n = 0;
    for (guint i = 0; i < w->n_iov; i++) {
        memcpy(out + n, iov[w->first_iov + i].iov_base, iov[w->first_iov + i].iov_len);
        n += iov[w->first_iov + i].iov_len;
    }
    g_assert_cmpuint(n, ==, w->len);
    return n;
}

/* The flow of a packet as a string (addresses, protocol, ports). */
static char *flow_of(const guint8 *p, gsize len)
{
    guint v = p[0] >> 4;
    gsize ihl = v == 4 ? (gsize)(p[0] & 15) * 4 : 40;
    const guint8 *a = v == 4 ? p + 12 : p + 8;
    gsize alen = v == 4 ? 8 : 32;
    GString *s = g_string_new(NULL);
    for (gsize i = 0; i < alen; i++)
        g_string_append_printf(s, "%02x", a[i]);
    g_string_append_printf(s, "/%u", v == 4 ? p[9] : p[6]);
    if (len >= ihl + 4)
        g_string_append_printf(s, "/%u/%u", shimmer_read_be16(p + ihl),
                               shimmer_read_be16(p + ihl + 2));
    return g_string_free(s, FALSE);
}

/* Runs PKTS through a coalescer with FLAGS, then cuts every glued write
 * again as the kernel would: that must give back every packet exactly,
 * each once, in the order given within each flow. WANT_GROUPS (or NULL)
 * are the packets per write. Returns the number of writes. */
static guint coalesce_roundtrip(Pkt *pkts, guint n, guint flags, const guint *want_groups)
{
    g_autoptr(ShimmerCoalescer) c = shimmer_coalescer_new(n, flags);
    for (guint i = 0; i < n; i++)
        g_assert_true(shimmer_coalescer_add(c, pkts[i].pkt, pkts[i].len));
    guint8 dummy[1] = {0x45};
    g_assert_false(shimmer_coalescer_add(c, dummy, 1));
    guint n_writes = 0;
    struct iovec *iov = NULL;
    const ShimmerCoalescedWrite *w = shimmer_coalescer_finish(c, &n_writes, &iov);
    guint8 *buf = g_malloc(70000);
    Segs g;
    segs_init(&g);
    gboolean *used = g_new0(gboolean, n);
    g_autoptr(GHashTable) last = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    guint seen = 0;
    for (guint i = 0; i < n_writes; i++) {
        gsize len = gather(&w[i], iov, buf);
        if (want_groups != NULL)
            g_assert_cmpuint(w[i].n_packets, ==, want_groups[i]);
        guint k = 1;
        if (w[i].n_packets == 1) {
            g_assert_cmpuint(w[i].hdr.gso_type, ==, SHIMMER_VNET_GSO_NONE);
            g_assert_cmpuint(w[i].hdr.flags, ==, 0);
            memcpy(g.bufs[0] + HEADROOM, buf, len);
            g.lens[0] = len;
        } else {
            g_assert_cmphex(w[i].hdr.flags, ==, SHIMMER_VNET_F_NEEDS_CSUM);
            g_assert_cmpuint(w[i].hdr.gso_type, !=, SHIMMER_VNET_GSO_NONE);
            /* What the kernel does with it: cut it at gso_size. */
            k = shimmer_offload_segment(&w[i].hdr, buf, len, g.bufs, SHIMMER_OFFLOAD_MAX_SEGS,
                                        HEADROOM, SEG_CAP, g.lens);
            g_assert_cmpuint(k, ==, w[i].n_packets);
        }
        for (guint j = 0; j < k; j++, seen++) {
            const guint8 *got = g.bufs[j] + HEADROOM;
            gint at = -1;
            for (guint m = 0; m < n && at < 0; m++) {
                if (!used[m] && pkts[m].len == g.lens[j] &&
                    memcmp(pkts[m].orig, got, g.lens[j]) == 0)
                    at = (gint)m;
            }
            g_assert_cmpint(at, >=, 0);
            used[at] = TRUE;
            char *flow = flow_of(got, g.lens[j]);
            gpointer prev;
            if (g_hash_table_lookup_extended(last, flow, NULL, &prev))
                g_assert_cmpint(GPOINTER_TO_INT(prev), <, at + 1);
            g_hash_table_insert(last, flow, GINT_TO_POINTER(at + 1));
        }
    }
    g_assert_cmpuint(seen, ==, n);
    g_free(used);
    g_free(buf);
    segs_clear(&g);
    shimmer_coalescer_reset(c);
    return n_writes;
}

static void test_coalesce_tcp(void)
{
    for (guint v = 4; v <= 6; v += 2) {
        Pkt p[40];
        guint n = 0;
        Spec s = {.version = v,
                  .proto = 6,
                  .opts = 12,
                  .seq = 0xffffff00u,
                  .flags = 0x10,
                  .id = 100,
                  .sport = 40000,
                  .last_addr = 2};
        /* 10 full segments, the last one short with PSH. */
        for (guint i = 0; i < 10; i++) {
            s.flags = i == 9 ? 0x18 : 0x10;
            gsize pl = i == 9 ? 700 : 1448;
            p[n++] = mk(&s, pl, 100 + i);
            s.seq += (guint32)pl;
            s.id++;
        }
        const guint one_group[] = {10};
        g_assert_cmpuint(
            coalesce_roundtrip(p, n, SHIMMER_COALESCE_TCP4 | SHIMMER_COALESCE_TCP6, one_group), ==,
            1);
        /* Nothing glued when the kernel takes no TSO. */
        for (guint i = 0; i < n; i++)
            memcpy(p[i].pkt, p[i].orig, p[i].len);
        g_assert_cmpuint(coalesce_roundtrip(p, n, SHIMMER_COALESCE_UDP4, NULL), ==, 10);
        for (guint i = 0; i < n; i++)
            pkt_free(&p[i]);
    }
}

/* Groups break where gluing would change what arrives: a gap in the
 * sequence, a PSH or a short segment before the end, other options, a FIN,
 * a packet too big for the first one's size; other flows interleave. */
static void test_coalesce_breaks(void)
{
    Pkt p[40];
    guint n = 0;
    Spec a = {.version = 4,
              .proto = 6,
              .opts = 12,
              .seq = 1000,
              .flags = 0x10,
              .id = 1,
              .sport = 40000,
              .last_addr = 2};
    Spec b = a;
    b.sport = 40002;
    b.seq = 50000;
    Spec u = {.version = 4, .proto = 17, .id = 9, .sport = 5353, .last_addr = 2};
    /* A: 3 glued; B interleaved: 2 glued. */
    for (guint i = 0; i < 3; i++) {
        p[n] = mk(&a, 1000, n);
        n++;
        a.seq += 1000;
        a.id++;
        p[n] = mk(&b, 500, n);
        n++;
        if (i < 1) {
            b.seq += 500;
            b.id++;
        }
    }
    /* (B's third reused the sequence number: a retransmission, alone.) */
    /* A: a gap. */
    a.seq += 1;
    p[n] = mk(&a, 1000, n);
    n++;
    a.seq += 1000;
    /* A: a bigger one than the group's size. */
    p[n] = mk(&a, 1200, n);
    n++;
    a.seq += 1200;
    /* A: other options. */
    a.opts = 8;
    p[n] = mk(&a, 1200, n);
    n++;
    a.seq += 1200;
    /* A: a FIN. */
    a.flags = 0x11;
    p[n] = mk(&a, 100, n);
    n++;
    /* UDP alone (not allowed here), and something that is not TCP/UDP. */
    p[n] = mk(&u, 300, n);
    n++;
    p[n] = mk(&u, 300, n);
    p[n].pkt[9] = 1; /* ICMP */
    memcpy(p[n].orig, p[n].pkt, p[n].len);
    n++;
    const guint groups[] = {3, 2, 1, 1, 1, 1, 1, 1, 1};
    g_assert_cmpuint(
        coalesce_roundtrip(p, n, SHIMMER_COALESCE_TCP4 | SHIMMER_COALESCE_TCP6, groups), ==,
        G_N_ELEMENTS(groups));
    for (guint i = 0; i < n; i++)
        pkt_free(&p[i]);
}

static void test_coalesce_udp(void)
{
    for (guint v = 4; v <= 6; v += 2) {
        Pkt p[20];
        guint n = 0;
        Spec u = {.version = v, .proto = 17, .id = 1, .sport = 5001, .last_addr = 3};
        for (guint i = 0; i < 6; i++) {
            p[n++] = mk(&u, i == 5 ? 17 : 1200, i);
            u.id++;
        }
        /* The next one is larger: a new group. */
        p[n++] = mk(&u, 1300, 99);
        const guint groups[] = {6, 1};
        g_assert_cmpuint(
            coalesce_roundtrip(p, n, SHIMMER_COALESCE_UDP4 | SHIMMER_COALESCE_UDP6, groups), ==, 2);
        for (guint i = 0; i < n; i++)
            pkt_free(&p[i]);
    }
}

/* At most SHIMMER_OFFLOAD_MAX_SEGS segments and 64 KB per glued packet. */
static void test_coalesce_limits(void)
{
    guint total = SHIMMER_OFFLOAD_MAX_SEGS + 6;
    Pkt *p = g_new(Pkt, total);
    Spec s = {.version = 6, .proto = 6, .seq = 1, .flags = 0x10, .sport = 1, .last_addr = 2};
    for (guint i = 0; i < total; i++) {
        p[i] = mk(&s, 100, i);
        s.seq += 100;
    }
    const guint groups[] = {SHIMMER_OFFLOAD_MAX_SEGS, 6};
    coalesce_roundtrip(p, total, SHIMMER_COALESCE_TCP6, groups);
    for (guint i = 0; i < total; i++)
        pkt_free(&p[i]);
    g_free(p);

    Pkt q[12];
    Spec j = {.version = 4, .proto = 6, .seq = 1, .flags = 0x10, .sport = 1, .last_addr = 2};
    for (guint i = 0; i < 12; i++) {
        q[i] = mk(&j, 8000, i);
        j.seq += 8000;
        j.id++;
    }
    /* 8 x 8000 + headers fits 65535; the ninth does not. */
    const guint big[] = {8, 4};
    coalesce_roundtrip(q, 12, SHIMMER_COALESCE_TCP4, big);
    for (guint i = 0; i < 12; i++)
        pkt_free(&q[i]);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/offload/csum", test_csum);
    g_test_add_func("/offload/finish-checksum", test_finish_checksum);
    g_test_add_func("/offload/segment", test_segment);
    g_test_add_func("/offload/segment-refused", test_segment_refused);
    g_test_add_func("/offload/coalesce-tcp", test_coalesce_tcp);
    g_test_add_func("/offload/coalesce-breaks", test_coalesce_breaks);
    g_test_add_func("/offload/coalesce-udp", test_coalesce_udp);
    g_test_add_func("/offload/coalesce-limits", test_coalesce_limits);
    return g_test_run();
}
