/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of shimmer_mss_clamp(). Every packet is built here byte by byte
 * and every checksum is verified by summing the pseudo-header and the whole
 * segment from scratch, so an incremental update that is off by one carry
 * cannot hide behind the code that produced it.
 */
#include <glib.h>
#include <string.h>

#include "mss.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static const guint8 src4[4] = {10, 8, 0, 2};
static const guint8 dst4[4] = {192, 0, 2, 77};
static const guint8 src6[16] = {0xfd, 0x00, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00};
static const guint8 dst6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};

/* One's complement sum of BUF as big-endian 16-bit words (odd tail padded
 * with a zero byte), added to SUM without folding. */
static guint64 sum16(guint64 sum, const guint8 *buf, gsize len)
{
    for (gsize i = 0; i + 1 < len; i += 2)
        sum += (guint)(buf[i] << 8 | buf[i + 1]);
    if (len & 1)
        sum += (guint)buf[len - 1] << 8;
    return sum;
}

static guint16 fold(guint64 sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)sum;
}

/* The one's complement sum over the pseudo-header and the TCP segment with
 * its checksum field as it stands: 0xffff exactly when the checksum is valid. */
static guint16 tcp_verify_sum(const guint8 *pkt, gboolean v6)
{
    guint64 sum = 0;
    const guint8 *tcp;
    gsize tcp_len;
    if (v6) {
        tcp_len = (gsize)(pkt[4] << 8 | pkt[5]);
        tcp = pkt + 40;
        sum = sum16(sum, pkt + 8, 32); /* source and destination */
        sum += tcp_len >> 16;
        sum += tcp_len & 0xffff;
        sum += 6;
    } else {
        gsize ihl = (gsize)(pkt[0] & 0x0f) * 4;
        tcp_len = (gsize)(pkt[2] << 8 | pkt[3]) - ihl;
        tcp = pkt + ihl;
        sum = sum16(sum, pkt + 12, 8);
        sum += 6;
        sum += tcp_len;
    }
    return fold(sum16(sum, tcp, tcp_len));
}

/* The checksum a sender computes: ~sum with the field zeroed. */
static guint16 tcp_fresh_checksum(const guint8 *pkt, gboolean v6)
{
    g_autofree guint8 *copy = NULL;
    gsize off = v6 ? 40 : (gsize)(pkt[0] & 0x0f) * 4;
    gsize total = v6 ? 40 + (gsize)(pkt[4] << 8 | pkt[5]) : (gsize)(pkt[2] << 8 | pkt[3]);
    copy = g_memdup2(pkt, total);
    copy[off + 16] = copy[off + 17] = 0;
    return (guint16)~tcp_verify_sum(copy, v6);
}

static void assert_checksum_valid(const guint8 *pkt, gboolean v6)
{
    g_assert_cmphex(tcp_verify_sum(pkt, v6), ==, 0xffff);
    gsize off = v6 ? 40 : (gsize)(pkt[0] & 0x0f) * 4;
    guint16 have = (guint16)(pkt[off + 16] << 8 | pkt[off + 17]);
    guint16 want = tcp_fresh_checksum(pkt, v6);
    /* 0x0000 and 0xffff are the same number in one's complement. */
    if (!(have == want || (have == 0xffff && want == 0) || (have == 0 && want == 0xffff)))
        g_error("checksum %04x, from scratch %04x", have, want);
}

static void set_tcp_checksum(guint8 *pkt, gboolean v6)
{
    gsize off = v6 ? 40 : (gsize)(pkt[0] & 0x0f) * 4;
    guint16 c = tcp_fresh_checksum(pkt, v6);
    pkt[off + 16] = (guint8)(c >> 8);
    pkt[off + 17] = (guint8)c;
    assert_checksum_valid(pkt, v6);
}

/* Builds a TCP segment with OPTS (padded by the caller to a multiple of 4)
 * and PAYLOAD_LEN bytes of payload, inside IPv4 (IHL 5 plus IP_OPTS_WORDS
 * words of NOP options) or IPv6. Returns the packet length. */
static gsize build(guint8 *pkt, gsize cap, gboolean v6, guint ip_opt_words, guint8 flags,
                   const guint8 *opts, gsize opts_len, gsize payload_len)
{
    g_assert_cmpuint(opts_len % 4, ==, 0);
    gsize ip_len = v6 ? 40 : 20 + ip_opt_words * 4;
    gsize tcp_len = 20 + opts_len + payload_len;
    gsize total = ip_len + tcp_len;
    g_assert_cmpuint(total, <=, cap);
    memset(pkt, 0, total);
    if (v6) {
        pkt[0] = 0x60;
        pkt[4] = (guint8)(tcp_len >> 8);
        pkt[5] = (guint8)tcp_len;
        pkt[6] = 6;
        pkt[7] = 64;
        memcpy(pkt + 8, src6, 16);
        memcpy(pkt + 24, dst6, 16);
    } else {
        pkt[0] = (guint8)(0x40 | (5 + ip_opt_words));
        pkt[2] = (guint8)(total >> 8);
        pkt[3] = (guint8)total;
        pkt[4] = 0x12;
        pkt[5] = 0x34;
        pkt[6] = 0x40; /* DF */
        pkt[8] = 64;
        pkt[9] = 6;
        memcpy(pkt + 12, src4, 4);
        memcpy(pkt + 16, dst4, 4);
        memset(pkt + 20, 1, ip_opt_words * 4);
        /* The IP header checksum is not the clamp's business; leave it 0. */
    }
    guint8 *tcp = pkt + ip_len;
    tcp[0] = 0xc3; /* source port 50000 */
    tcp[1] = 0x50;
    tcp[2] = 0x01; /* destination port 443 */
    tcp[3] = 0xbb;
    tcp[4] = 0xde;
    tcp[5] = 0xad;
    tcp[6] = 0xbe;
    tcp[7] = 0xef;
    tcp[12] = (guint8)(((20 + opts_len) / 4) << 4);
    tcp[13] = flags;
    tcp[14] = 0xfa;
    tcp[15] = 0xf0;
    if (opts_len > 0)
        memcpy(tcp + 20, opts, opts_len);
    for (gsize i = 0; i < payload_len; i++)
        tcp[20 + opts_len + i] = (guint8)(i * 31 + 7);
    set_tcp_checksum(pkt, v6);
    return total;
}

static guint mss_at(const guint8 *pkt, gsize off)
{
    return (guint)(pkt[off] << 8 | pkt[off + 1]);
}

/* A Linux-style SYN: MSS, SACK permitted, timestamps, NOP, window scale. */
static const guint8 linux_opts[20] = {2,    4,    0x05, 0xb4, 4, 2, 8, 10, 0, 0,
                                      0x12, 0x34, 0,    0,    0, 0, 1, 3,  3, 7};

static void check_clamp(gboolean v6)
{
    guint8 pkt[256], before[256];
    gsize len = build(pkt, sizeof(pkt), v6, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    gsize mss_off = (v6 ? 40 : 20) + 22;
    g_assert_cmpuint(mss_at(pkt, mss_off), ==, 1460);
    memcpy(before, pkt, len);

    /* The limit for the other family must not be applied. */
    g_assert_true(shimmer_mss_clamp(pkt, len, v6 ? 9999 : 1300, v6 ? 1280 : 9999));
    g_assert_cmpuint(mss_at(pkt, mss_off), ==, v6 ? 1280 : 1300);
    assert_checksum_valid(pkt, v6);
    /* Only the MSS value and the checksum changed. */
    gsize csum_off = (v6 ? 40 : 20) + 16;
    for (gsize i = 0; i < len; i++) {
        if (i == mss_off || i == mss_off + 1 || i == csum_off || i == csum_off + 1)
            continue;
        g_assert_cmpuint(pkt[i], ==, before[i]);
    }

    /* Already small enough (also equal): untouched. */
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 1400, 1400));
    g_assert_false(shimmer_mss_clamp(pkt, len, v6 ? 1400 : 1300, v6 ? 1280 : 1400));
    g_assert_cmpmem(pkt, len, before, len);
}

static void test_ipv4_syn(void)
{
    check_clamp(FALSE);
}

static void test_ipv6_syn(void)
{
    check_clamp(TRUE);
}

/* A SYN-ACK is clamped too (the server's side of the negotiation), and so is
 * a SYN with data after the options (TFO) or options in the IP header. */
static void test_syn_variants(void)
{
    guint8 pkt[512];
    gsize len =
        build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN | TCP_ACK, linux_opts, sizeof(linux_opts), 0);
    g_assert_true(shimmer_mss_clamp(pkt, len, 1200, 1200));
    g_assert_cmpuint(mss_at(pkt, 42), ==, 1200);
    assert_checksum_valid(pkt, FALSE);

    /* Odd-length payload: the checksum's padding byte matters. */
    len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 37);
    g_assert_true(shimmer_mss_clamp(pkt, len, 1000, 0));
    g_assert_cmpuint(mss_at(pkt, 42), ==, 1000);
    assert_checksum_valid(pkt, FALSE);

    len = build(pkt, sizeof(pkt), TRUE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 101);
    g_assert_true(shimmer_mss_clamp(pkt, len, 0, 1220));
    g_assert_cmpuint(mss_at(pkt, 62), ==, 1220);
    assert_checksum_valid(pkt, TRUE);

    /* IHL 7: the TCP header starts 8 bytes later. */
    len = build(pkt, sizeof(pkt), FALSE, 2, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    g_assert_true(shimmer_mss_clamp(pkt, len, 1300, 0));
    g_assert_cmpuint(mss_at(pkt, 28 + 22), ==, 1300);
    assert_checksum_valid(pkt, FALSE);

    /* MSS after NOPs and other options, still on an even offset. */
    static const guint8 late[12] = {1, 4, 2, 3, 3, 7, 2, 4, 0x23, 0x28, 0, 0};
    len = build(pkt, sizeof(pkt), TRUE, 0, TCP_SYN, late, sizeof(late), 0);
    g_assert_true(shimmer_mss_clamp(pkt, len, 0, 1280));
    g_assert_cmpuint(mss_at(pkt, 40 + 20 + 8), ==, 1280);
    assert_checksum_valid(pkt, TRUE);

    /* Trailing bytes after the IP packet (link padding) do not matter. */
    len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    memset(pkt + len, 0xee, 6);
    g_assert_true(shimmer_mss_clamp(pkt, len + 6, 1300, 0));
    g_assert_cmpuint(mss_at(pkt, 42), ==, 1300);
    assert_checksum_valid(pkt, FALSE);
    g_assert_cmpuint(pkt[len], ==, 0xee);
}

static void test_not_syn(void)
{
    static const guint8 flag_sets[] = {0, TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST};
    for (gboolean v6 = FALSE; v6 <= TRUE; v6++) {
        for (guint i = 0; i < G_N_ELEMENTS(flag_sets); i++) {
            guint8 pkt[256], before[256];
            gsize len =
                build(pkt, sizeof(pkt), v6, 0, flag_sets[i], linux_opts, sizeof(linux_opts), 10);
            memcpy(before, pkt, len);
            g_assert_false(shimmer_mss_clamp(pkt, len, 500, 500));
            g_assert_cmpmem(pkt, len, before, len);
        }
    }
}

static void test_zero_disables(void)
{
    for (gboolean v6 = FALSE; v6 <= TRUE; v6++) {
        guint8 pkt[256], before[256];
        gsize len = build(pkt, sizeof(pkt), v6, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
        memcpy(before, pkt, len);
        g_assert_false(shimmer_mss_clamp(pkt, len, 0, 0));
        g_assert_cmpmem(pkt, len, before, len);
    }
}

static void test_fragments(void)
{
    guint8 pkt[256], before[256];
    gsize len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    /* More fragments set, offset 0: the first fragment of a split SYN. */
    pkt[6] = 0x20;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 0));
    g_assert_cmpmem(pkt, len, before, len);
    /* A later fragment: its bytes only look like a TCP header. */
    pkt[6] = 0x00;
    pkt[7] = 0x03;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 0));
    g_assert_cmpmem(pkt, len, before, len);
    pkt[6] = 0x1f;
    pkt[7] = 0xff;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 0));
    g_assert_cmpmem(pkt, len, before, len);
}

static void test_not_tcp(void)
{
    guint8 pkt[256], before[256];
    gsize len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    pkt[9] = 17; /* UDP */
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 536));
    g_assert_cmpmem(pkt, len, before, len);

    /* IPv6 with an extension header (hop-by-hop) in front of TCP. */
    len = build(pkt, sizeof(pkt), TRUE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    pkt[6] = 0;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 536));
    g_assert_cmpmem(pkt, len, before, len);

    /* Neither version 4 nor 6. */
    len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    pkt[0] = 0x55;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 536));
    g_assert_cmpmem(pkt, len, before, len);
}

/* Option lists that do not parse, or an MSS option that is not the MSS
 * option's shape: nothing is written. */
static void test_malformed_options(void)
{
    static const struct {
        const char *what;
        guint8 opts[12];
        gsize len;
    } cases[] = {
        {"MSS after end-of-list", {0, 0, 0, 0, 2, 4, 0x05, 0xb4}, 8},
        {"MSS option length 3", {2, 3, 0x05, 0xb4}, 4},
        {"MSS option length 5", {2, 5, 0x05, 0xb4, 0, 0, 0, 0}, 8},
        {"option length 0", {3, 0, 2, 4, 0x05, 0xb4, 0, 0}, 8},
        {"option length 1", {3, 1, 2, 4, 0x05, 0xb4, 0, 0}, 8},
        {"option running past the header", {1, 1, 1, 1, 8, 10, 2, 4, 0x05, 0xb4, 0, 0}, 8},
        {"MSS cut by the end of the header", {1, 1, 2, 4}, 4},
        {"MSS kind as the last byte", {1, 1, 1, 2}, 4},
    };
    for (gboolean v6 = FALSE; v6 <= TRUE; v6++) {
        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
            guint8 pkt[256], before[256];
            gsize len = build(pkt, sizeof(pkt), v6, 0, TCP_SYN, cases[i].opts, cases[i].len, 16);
            memcpy(before, pkt, len);
            if (shimmer_mss_clamp(pkt, len, 536, 536))
                g_error("%s (%s): clamped", cases[i].what, v6 ? "IPv6" : "IPv4");
            g_assert_cmpmem(pkt, len, before, len);
        }
    }
}

/* Headers that lie about lengths, and buffers cut anywhere: never a write,
 * never a read outside the buffer (the buffer is an exact-size heap copy so
 * that ASan sees any overrun). */
static void test_truncated(void)
{
    for (gboolean v6 = FALSE; v6 <= TRUE; v6++) {
        guint8 pkt[256];
        gsize len = build(pkt, sizeof(pkt), v6, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
        for (gsize cut = 0; cut < len; cut++) {
            g_autofree guint8 *p = g_memdup2(pkt, cut ? cut : 1);
            g_assert_false(shimmer_mss_clamp(p, cut, 536, 536));
            g_assert_cmpmem(p, cut, pkt, cut);
        }
    }

    guint8 pkt[256], before[256];
    /* IPv4 total length larger than the buffer. */
    gsize len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    pkt[3] += 4;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 0));
    g_assert_cmpmem(pkt, len, before, len);
    /* IPv4 total length that ends inside the TCP options. */
    len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    pkt[3] = 20 + 20 + 2;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 0));
    g_assert_cmpmem(pkt, len, before, len);
    /* IHL below 5 and IHL beyond the packet. */
    len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    pkt[0] = 0x44;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 536, 0));
    g_assert_cmpmem(pkt, len, before, len);
    pkt[0] = 0x4f;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, 50, 536, 0));
    g_assert_cmpmem(pkt, len, before, len);
    /* TCP data offset below 5, and beyond the segment. */
    /* (6..9 would still cover the MSS option, which comes first.) */
    static const guint bad_offsets[] = {0, 1, 2, 3, 4, 11, 12, 13, 14, 15};
    for (guint k = 0; k < G_N_ELEMENTS(bad_offsets); k++) {
        guint off = bad_offsets[k];
        len = build(pkt, sizeof(pkt), FALSE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
        pkt[20 + 12] = (guint8)(off << 4);
        memcpy(before, pkt, len);
        g_assert_false(shimmer_mss_clamp(pkt, len, 536, 0));
        g_assert_cmpmem(pkt, len, before, len);
    }
    /* IPv6 payload length beyond the buffer, and zero (jumbogram). */
    len = build(pkt, sizeof(pkt), TRUE, 0, TCP_SYN, linux_opts, sizeof(linux_opts), 0);
    pkt[5] += 1;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 0, 536));
    g_assert_cmpmem(pkt, len, before, len);
    pkt[4] = pkt[5] = 0;
    memcpy(before, pkt, len);
    g_assert_false(shimmer_mss_clamp(pkt, len, 0, 536));
    g_assert_cmpmem(pkt, len, before, len);
}

/* Many SYNs with random MSS values, limits, payloads and starting checksums:
 * the incremental update must agree with a full recomputation every time,
 * including the cases where the sum wraps. */
static void test_checksum_property(void)
{
    GRand *rand = g_rand_new_with_seed(0x5eed);
    guint changed = 0;
    for (guint round = 0; round < 20000; round++) {
        gboolean v6 = g_rand_boolean(rand);
        guint8 opts[8] = {1, 1, 2, 4, 0, 0, 1, 1};
        guint mss = (guint)g_rand_int_range(rand, 0, 0x10000);
        opts[4] = (guint8)(mss >> 8);
        opts[5] = (guint8)mss;
        guint8 pkt[512];
        gsize payload = (gsize)g_rand_int_range(rand, 0, 100);
        gsize len = build(pkt, sizeof(pkt), v6, 0, TCP_SYN, opts, sizeof(opts), payload);
        gsize tcp = v6 ? 40 : 20;
        /* Random ports and sequence number reach every checksum value. */
        for (gsize i = 0; i < 8; i++)
            pkt[tcp + i] = (guint8)g_rand_int(rand);
        set_tcp_checksum(pkt, v6);
        guint limit = (guint)g_rand_int_range(rand, 0, 0x10000);
        gboolean did = shimmer_mss_clamp(pkt, len, limit, limit);
        gboolean want = limit != 0 && mss > limit;
        g_assert_cmpint(did, ==, want);
        g_assert_cmpuint(mss_at(pkt, tcp + 24), ==, want ? limit : mss);
        assert_checksum_valid(pkt, v6);
        changed += did;
    }
    g_assert_cmpuint(changed, >, 5000);
    g_rand_free(rand);
}

/* An MSS option on an odd offset inside the TCP header (legal: options are
 * not aligned; e.g. NOP, window scale, MSS). Its two bytes then fall into two
 * different 16-bit words of the checksum, so the incremental update must be
 * done with byte-swapped values. */
static void test_unaligned_option(void)
{
    static const guint8 odd[12] = {1, 1, 4, 2, 3, 3, 7, 2, 4, 0x23, 0x28, 0};
    guint bad = 0, total = 0;
    GRand *rand = g_rand_new_with_seed(0x0dd);
    for (guint round = 0; round < 2000; round++) {
        gboolean v6 = round & 1;
        guint8 pkt[256];
        gsize len = build(pkt, sizeof(pkt), v6, 0, TCP_SYN, odd, sizeof(odd),
                          (gsize)g_rand_int_range(rand, 0, 40));
        gsize tcp = v6 ? 40 : 20;
        for (gsize i = 0; i < 8; i++)
            pkt[tcp + i] = (guint8)g_rand_int(rand);
        set_tcp_checksum(pkt, v6);
        guint limit = (guint)g_rand_int_range(rand, 536, 9000);
        g_assert_true(shimmer_mss_clamp(pkt, len, limit, limit));
        g_assert_cmpuint(mss_at(pkt, tcp + 29), ==, limit);
        total++;
        if (tcp_verify_sum(pkt, v6) != 0xffff)
            bad++;
    }
    g_rand_free(rand);
    /* An MSS option at an odd offset straddles two checksum words. */
    g_assert_cmpuint(bad, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mss/ipv4-syn", test_ipv4_syn);
    g_test_add_func("/mss/ipv6-syn", test_ipv6_syn);
    g_test_add_func("/mss/syn-variants", test_syn_variants);
    g_test_add_func("/mss/not-syn", test_not_syn);
    g_test_add_func("/mss/zero-disables", test_zero_disables);
    g_test_add_func("/mss/fragments", test_fragments);
    g_test_add_func("/mss/not-tcp", test_not_tcp);
    g_test_add_func("/mss/malformed-options", test_malformed_options);
    g_test_add_func("/mss/truncated", test_truncated);
    g_test_add_func("/mss/checksum-property", test_checksum_property);
    g_test_add_func("/mss/unaligned-option", test_unaligned_option);
    return g_test_run();
}
