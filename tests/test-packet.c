/* SPDX-License-Identifier: MIT */
/* Unit tests for packet.c: control-packet layout, opcodes, TCP framing. */
#include <string.h>

#include <glib.h>

#include "packet.h"

static const guint8 SID_A[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
static const guint8 SID_B[8] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18};

static ShimmerControlPacket make_packet(guint opcode, guint key_id, guint n_acks,
                                        const guint8 *payload, gsize payload_len)
{
    ShimmerControlPacket p = {0};
    p.opcode = (guint8)opcode;
    p.key_id = (guint8)key_id;
    memcpy(p.session_id, SID_A, 8);
    g_assert_cmpuint(n_acks, <=, SHIMMER_PACKET_MAX_ACKS);
    p.n_acks = n_acks;
    for (guint i = 0; i < n_acks; i++)
        p.acks[i] = 0x01020300u + i;
    if (n_acks > 0)
        memcpy(p.remote_session_id, SID_B, 8);
    p.msg_pid = 0xdeadbeef;
    p.payload = payload;
    p.payload_len = payload_len;
    return p;
}

static GBytes *build(const ShimmerControlPacket *p)
{
    guint8 buf[2048];
    gsize len = 0;
    g_assert_cmpint(shimmer_packet_build_control(p, buf, sizeof(buf), &len), ==, SHIMMER_PACKET_OK);
    g_assert_cmpuint(len, ==, shimmer_packet_control_size(p));
    return g_bytes_new(buf, len);
}

static void assert_same(const ShimmerControlPacket *a, const ShimmerControlPacket *b)
{
    g_assert_cmpuint(a->opcode, ==, b->opcode);
    g_assert_cmpuint(a->key_id, ==, b->key_id);
    g_assert_cmpmem(a->session_id, 8, b->session_id, 8);
    g_assert_cmpuint(a->n_acks, ==, b->n_acks);
    for (guint i = 0; i < a->n_acks; i++)
        g_assert_cmpuint(a->acks[i], ==, b->acks[i]);
    if (a->n_acks > 0)
        g_assert_cmpmem(a->remote_session_id, 8, b->remote_session_id, 8);
    if (a->opcode != SHIMMER_OP_ACK_V1)
        g_assert_cmpuint(a->msg_pid, ==, b->msg_pid);
    g_assert_cmpmem(a->payload, a->payload_len, b->payload, b->payload_len);
}

static void test_opcodes(void)
{
    for (guint op = 0; op < 32; op++) {
        guint8 b = shimmer_packet_op_byte(op, 5);
        g_assert_cmpuint(shimmer_packet_opcode(b), ==, op);
        g_assert_cmpuint(shimmer_packet_key_id(b), ==, 5);
        gboolean ctl = op == 3 || op == 4 || op == 5 || op == 7 || op == 8 || op == 10 || op == 11;
        gboolean data = op == 6 || op == 9;
        g_assert_cmpint(shimmer_packet_opcode_is_control(op), ==, ctl);
        g_assert_cmpint(shimmer_packet_opcode_is_data(op), ==, data);
        ShimmerPacketKind k = shimmer_packet_classify(&b, 1);
        g_assert_cmpint(k, ==,
                        ctl    ? SHIMMER_PACKET_KIND_CONTROL
                        : data ? SHIMMER_PACKET_KIND_DATA
                               : SHIMMER_PACKET_KIND_INVALID);
        g_assert_nonnull(shimmer_packet_opcode_name(op));
    }
    g_assert_cmpint(shimmer_packet_classify(NULL, 0), ==, SHIMMER_PACKET_KIND_INVALID);
    g_assert_cmpstr(shimmer_packet_opcode_name(7), ==, "HARD_RESET_CLIENT_V2");
    g_assert_cmpstr(shimmer_packet_opcode_name(1), ==, "UNKNOWN");
    /* The first byte of a P_DATA_V2 with key id 1 and of the server reset. */
    g_assert_cmpuint(shimmer_packet_op_byte(SHIMMER_OP_DATA_V2, 1), ==, 0x49);
    g_assert_cmpuint(shimmer_packet_op_byte(SHIMMER_OP_HARD_RESET_SERVER_V2, 0), ==, 0x40);
    for (int e = SHIMMER_PACKET_OK; e <= SHIMMER_PACKET_ERR_INVALID; e++)
        g_assert_nonnull(shimmer_packet_error_to_string(e));
}

/* A HARD_RESET_SERVER_V2 as the real OpenVPN sends it (no wrapping). */
static void test_known_vector(void)
{
    static const guint8 wire[] = {
        0x40,                                           /* op 8, key 0 */
        0x3f, 0x36, 0xa5, 0xd7, 0x6a, 0xea, 0x61, 0x9c, /* server sid */
        0x01,                                           /* one ack */
        0x00, 0x00, 0x00, 0x00,                         /* acks pid 0 */
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* our sid */
        0x00, 0x00, 0x00, 0x00,                         /* msg_pid 0 */
    };
    ShimmerControlPacket p;
    g_assert_cmpint(shimmer_packet_parse_control(wire, sizeof(wire), &p), ==, SHIMMER_PACKET_OK);
    g_assert_cmpuint(p.opcode, ==, SHIMMER_OP_HARD_RESET_SERVER_V2);
    g_assert_cmpuint(p.key_id, ==, 0);
    g_assert_cmpuint(p.n_acks, ==, 1);
    g_assert_cmpuint(p.acks[0], ==, 0);
    g_assert_cmpmem(p.remote_session_id, 8, SID_A, 8);
    g_assert_true(p.has_msg_pid);
    g_assert_cmpuint(p.msg_pid, ==, 0);
    g_assert_cmpuint(p.payload_len, ==, 0);

    /* And building the same fields gives the same bytes. */
    guint8 out[64];
    gsize len;
    g_assert_cmpint(shimmer_packet_build_control(&p, out, sizeof(out), &len), ==,
                    SHIMMER_PACKET_OK);
    g_assert_cmpmem(out, len, wire, sizeof(wire));

    /* The client's first packet: 14 bytes. */
    ShimmerControlPacket r = make_packet(SHIMMER_OP_HARD_RESET_CLIENT_V2, 0, 0, NULL, 0);
    r.msg_pid = 0;
    g_autoptr(GBytes) b = build(&r);
    g_assert_cmpuint(g_bytes_get_size(b), ==, 14);
    g_assert_cmpuint(((const guint8 *)g_bytes_get_data(b, NULL))[0], ==, 0x38);
}

static void test_round_trips(void)
{
    static const guint8 payload[] = "\x16\x03\x01 a TLS record, more or less";
    const guint ops[] = {SHIMMER_OP_SOFT_RESET_V1,        SHIMMER_OP_CONTROL_V1,
                         SHIMMER_OP_HARD_RESET_CLIENT_V2, SHIMMER_OP_HARD_RESET_SERVER_V2,
                         SHIMMER_OP_HARD_RESET_CLIENT_V3, SHIMMER_OP_CONTROL_WKC_V1};

    for (guint o = 0; o < G_N_ELEMENTS(ops); o++) {
        for (guint acks = 0; acks <= SHIMMER_PACKET_MAX_ACKS_CONTROL; acks++) {
            for (guint key_id = 0; key_id <= 7; key_id += 7) {
                for (gsize pl = 0; pl <= sizeof(payload); pl += sizeof(payload)) {
                    ShimmerControlPacket p =
                        make_packet(ops[o], key_id, acks, pl ? payload : NULL, pl);
                    ShimmerControlPacket q;
                    g_autoptr(GBytes) b = build(&p);
                    gsize len;
                    const guint8 *d = g_bytes_get_data(b, &len);
                    g_assert_cmpint(shimmer_packet_parse_control(d, len, &q), ==,
                                    SHIMMER_PACKET_OK);
                    assert_same(&p, &q);
                    g_assert_true(q.has_msg_pid);
                    /* Payload is a view into the buffer. */
                    g_assert_true(q.payload == d + len - pl);
                }
            }
        }
    }

    for (guint acks = 1; acks <= SHIMMER_PACKET_MAX_ACKS; acks++) {
        ShimmerControlPacket p = make_packet(SHIMMER_OP_ACK_V1, 3, acks, NULL, 0);
        ShimmerControlPacket q;
        g_autoptr(GBytes) b = build(&p);
        gsize len;
        const guint8 *d = g_bytes_get_data(b, &len);
        g_assert_cmpuint(len, ==, 1 + 8 + 1 + 4 * acks + 8);
        g_assert_cmpint(shimmer_packet_parse_control(d, len, &q), ==, SHIMMER_PACKET_OK);
        assert_same(&p, &q);
        g_assert_false(q.has_msg_pid);
    }
}

static void test_build_errors(void)
{
    guint8 buf[256];
    gsize len = 12345;
    ShimmerControlPacket p;

    p = make_packet(SHIMMER_OP_CONTROL_V1, 0, 5, NULL, 0);
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_TOO_MANY_ACKS);
    p = make_packet(SHIMMER_OP_ACK_V1, 0, SHIMMER_PACKET_MAX_ACKS, NULL, 0);
    p.n_acks = SHIMMER_PACKET_MAX_ACKS + 1;
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_TOO_MANY_ACKS);
    p = make_packet(SHIMMER_OP_ACK_V1, 0, 0, NULL, 0);
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_INVALID);
    p = make_packet(SHIMMER_OP_ACK_V1, 0, 1, (const guint8 *)"x", 1);
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_INVALID);
    p = make_packet(SHIMMER_OP_CONTROL_V1, 8, 0, NULL, 0);
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_INVALID);
    p = make_packet(SHIMMER_OP_CONTROL_V1, 0, 0, NULL, 3);
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_INVALID);
    p = make_packet(SHIMMER_OP_DATA_V2, 0, 0, NULL, 0);
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_NOT_CONTROL);
    p = make_packet(2, 0, 0, NULL, 0);
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_ERR_BAD_OPCODE);
    g_assert_cmpuint(len, ==, 12345);

    /* Every buffer that is one byte too small, or smaller, is refused and
     * left untouched. */
    p = make_packet(SHIMMER_OP_CONTROL_V1, 1, 4, (const guint8 *)"payload", 7);
    gsize need = shimmer_packet_control_size(&p);
    for (gsize size = 0; size < need; size++) {
        memset(buf, 0xee, sizeof(buf));
        g_assert_cmpint(shimmer_packet_build_control(&p, buf, size, &len), ==,
                        SHIMMER_PACKET_ERR_NO_SPACE);
        for (gsize i = 0; i < sizeof(buf); i++)
            g_assert_cmpuint(buf[i], ==, 0xee);
    }
    g_assert_cmpint(shimmer_packet_build_control(&p, NULL, 0, &len), ==,
                    SHIMMER_PACKET_ERR_NO_SPACE);
}

static void test_truncation(void)
{
    /* Without a payload every byte is a fixed field: each shorter prefix
     * must be refused. */
    for (guint op = 3; op <= 11; op++) {
        if (!shimmer_packet_opcode_is_control(op))
            continue;
        guint max =
            op == SHIMMER_OP_ACK_V1 ? SHIMMER_PACKET_MAX_ACKS : SHIMMER_PACKET_MAX_ACKS_CONTROL;
        for (guint acks = op == SHIMMER_OP_ACK_V1 ? 1 : 0; acks <= max; acks++) {
            ShimmerControlPacket p = make_packet(op, 0, acks, NULL, 0);
            ShimmerControlPacket q;
            g_autoptr(GBytes) b = build(&p);
            gsize len;
            const guint8 *d = g_bytes_get_data(b, &len);
            for (gsize cut = 0; cut < len; cut++) {
                /* A fresh heap copy, so ASan sees any read past the end. */
                g_autofree guint8 *c = g_memdup2(d, cut ? cut : 1);
                q.opcode = 99;
                g_assert_cmpint(shimmer_packet_parse_control(cut ? c : NULL, cut, &q), ==,
                                SHIMMER_PACKET_ERR_TRUNCATED);
                /* *OUT is zeroed on error. */
                g_assert_cmpuint(q.opcode, ==, 0);
            }
            g_autofree guint8 *c = g_memdup2(d, len);
            g_assert_cmpint(shimmer_packet_parse_control(c, len, &q), ==, SHIMMER_PACKET_OK);
        }
    }
}

static void test_parse_errors(void)
{
    guint8 buf[128] = {0};
    ShimmerControlPacket q;

    for (guint op = 0; op < 32; op++) {
        buf[0] = shimmer_packet_op_byte(op, 0);
        /* An ACK_V1 without acks ends right after n_acks. */
        gsize l = op == SHIMMER_OP_ACK_V1 ? 10 : 32;
        ShimmerPacketError e = shimmer_packet_parse_control(buf, l, &q);
        if (shimmer_packet_opcode_is_control(op))
            g_assert_cmpint(e, ==, SHIMMER_PACKET_OK);
        else if (shimmer_packet_opcode_is_data(op))
            g_assert_cmpint(e, ==, SHIMMER_PACKET_ERR_NOT_CONTROL);
        else
            g_assert_cmpint(e, ==, SHIMMER_PACKET_ERR_BAD_OPCODE);
    }

    /* n_acks 9..255 is refused before the lengths are even looked at. */
    buf[0] = shimmer_packet_op_byte(SHIMMER_OP_ACK_V1, 0);
    for (guint n = 9; n < 256; n++) {
        buf[9] = (guint8)n;
        g_assert_cmpint(shimmer_packet_parse_control(buf, sizeof(buf), &q), ==,
                        SHIMMER_PACKET_ERR_TOO_MANY_ACKS);
    }

    /* Up to 8 acks are accepted on any opcode when parsing (a peer may be
     * more generous than we are when building). */
    buf[0] = shimmer_packet_op_byte(SHIMMER_OP_CONTROL_V1, 2);
    buf[9] = 8;
    g_assert_cmpint(shimmer_packet_parse_control(buf, 1 + 8 + 1 + 32 + 8 + 4, &q), ==,
                    SHIMMER_PACKET_OK);
    g_assert_cmpuint(q.n_acks, ==, 8);
    g_assert_cmpuint(q.key_id, ==, 2);

    /* ACK_V1 followed by anything is refused. */
    ShimmerControlPacket p = make_packet(SHIMMER_OP_ACK_V1, 0, 2, NULL, 0);
    gsize len;
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_OK);
    g_assert_cmpint(shimmer_packet_parse_control(buf, len + 1, &q), ==,
                    SHIMMER_PACKET_ERR_TRAILING);
    g_assert_cmpint(shimmer_packet_parse_control(buf, len, &q), ==, SHIMMER_PACKET_OK);

    /* An ACK_V1 with no acks is odd but harmless: parsed. */
    buf[9] = 0;
    g_assert_cmpint(shimmer_packet_parse_control(buf, 10, &q), ==, SHIMMER_PACKET_OK);
    g_assert_cmpuint(q.n_acks, ==, 0);
}

static void test_random_input(void)
{
    /* Random bytes never crash the parser, and whatever it accepts it can
     * rebuild byte for byte (or refuses to build, for opcodes/ack counts we
     * never send). */
    GRand *r = g_rand_new_with_seed(0x5111);
    for (int iter = 0; iter < 20000; iter++) {
        gsize len = (gsize)g_rand_int_range(r, 0, 80);
        g_autofree guint8 *buf = g_malloc(len ? len : 1);
        for (gsize i = 0; i < len; i++)
            buf[i] = (guint8)g_rand_int(r);
        if (len > 9 && g_rand_boolean(r))
            buf[9] = (guint8)g_rand_int_range(r, 0, 6);
        if (len > 0 && g_rand_boolean(r))
            buf[0] = shimmer_packet_op_byte((guint)g_rand_int_range(r, 3, 12), buf[0]);
        ShimmerControlPacket q;
        if (shimmer_packet_parse_control(buf, len, &q) != SHIMMER_PACKET_OK)
            continue;
        guint8 out[128];
        gsize out_len;
        if (shimmer_packet_build_control(&q, out, sizeof(out), &out_len) == SHIMMER_PACKET_OK)
            g_assert_cmpmem(out, out_len, buf, len);
    }
    g_rand_free(r);
}

/* ---- TCP framing ---- */

static GByteArray *make_stream(GRand *r, GPtrArray *packets, guint n, gsize max)
{
    GByteArray *stream = g_byte_array_new();
    for (guint i = 0; i < n; i++) {
        gsize len = (gsize)g_rand_int_range(r, 1, (gint32)max + 1);
        if (i == 0)
            len = 1;
        if (i == 1)
            len = max;
        GByteArray *p = g_byte_array_sized_new((guint)len);
        for (gsize j = 0; j < len; j++) {
            guint8 b = (guint8)g_rand_int(r);
            g_byte_array_append(p, &b, 1);
        }
        guint8 prefix[2];
        g_assert_cmpint(shimmer_tcp_write_prefix(len, prefix), ==, SHIMMER_PACKET_OK);
        g_byte_array_append(stream, prefix, 2);
        g_byte_array_append(stream, p->data, p->len);
        g_ptr_array_add(packets, p);
    }
    return stream;
}

/* Feeds STREAM in chunks chosen by CHUNK (0 = random 1..300) and checks that
 * exactly PACKETS come out, in order. */
static void split_and_check(GByteArray *stream, GPtrArray *packets, gsize max, GRand *r,
                            gsize chunk)
{
    g_autoptr(ShimmerTcpSplitter) s = shimmer_tcp_splitter_new(max);
    guint next = 0;
    gsize off = 0;

    while (off < stream->len) {
        gsize n = chunk ? chunk : (gsize)g_rand_int_range(r, 1, 301);
        n = MIN(n, stream->len - off);
        /* A separate heap copy per chunk, released after use: views must
         * not outlive it and ASan would catch it if they were used later. */
        g_autofree guint8 *c = g_memdup2(stream->data + off, n);
        gsize pos = 0;
        while (pos < n) {
            gsize used;
            const guint8 *pkt;
            gsize pkt_len;
            g_assert_cmpint(shimmer_tcp_splitter_feed(s, c + pos, n - pos, &used, &pkt, &pkt_len),
                            ==, SHIMMER_PACKET_OK);
            g_assert_cmpuint(used, >, 0);
            pos += used;
            if (pkt != NULL) {
                GByteArray *want = g_ptr_array_index(packets, next);
                g_assert_cmpmem(pkt, pkt_len, want->data, want->len);
                next++;
            }
        }
        off += n;
    }
    g_assert_cmpuint(next, ==, packets->len);
    g_assert_cmpuint(shimmer_tcp_splitter_pending(s), ==, 0);
}

static void test_tcp_splitter(void)
{
    GRand *r = g_rand_new_with_seed(0x7c9);
    GPtrArray *packets = g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
    const gsize max = 1600;
    GByteArray *stream = make_stream(r, packets, 60, max);

    split_and_check(stream, packets, max, r, 1);
    split_and_check(stream, packets, max, r, 2);
    split_and_check(stream, packets, max, r, 3);
    split_and_check(stream, packets, max, r, stream->len);
    for (int i = 0; i < 20; i++)
        split_and_check(stream, packets, max, r, 0);

    g_byte_array_unref(stream);
    g_ptr_array_unref(packets);
    g_rand_free(r);
}

static void test_tcp_zero_copy(void)
{
    static const guint8 two[] = {0, 3, 'a', 'b', 'c', 0, 1, 'z'};
    g_autoptr(ShimmerTcpSplitter) s = shimmer_tcp_splitter_new(100);
    gsize used, len;
    const guint8 *pkt;

    g_assert_cmpint(shimmer_tcp_splitter_feed(s, two, sizeof(two), &used, &pkt, &len), ==,
                    SHIMMER_PACKET_OK);
    g_assert_cmpuint(used, ==, 5);
    g_assert_true(pkt == two + 2);
    g_assert_cmpuint(len, ==, 3);
    g_assert_cmpint(shimmer_tcp_splitter_feed(s, two + 5, 3, &used, &pkt, &len), ==,
                    SHIMMER_PACKET_OK);
    g_assert_cmpuint(used, ==, 3);
    g_assert_true(pkt == two + 7);

    /* Nothing to feed: nothing happens. */
    g_assert_cmpint(shimmer_tcp_splitter_feed(s, two, 0, &used, &pkt, &len), ==, SHIMMER_PACKET_OK);
    g_assert_null(pkt);
    g_assert_cmpuint(used, ==, 0);

    /* Half a packet is pending until the rest comes. */
    g_assert_cmpint(shimmer_tcp_splitter_feed(s, two, 3, &used, &pkt, &len), ==, SHIMMER_PACKET_OK);
    g_assert_null(pkt);
    g_assert_cmpuint(shimmer_tcp_splitter_pending(s), ==, 3);
}

static void test_tcp_bad_length(void)
{
    static const guint8 zero[] = {0, 0, 1, 2};
    static const guint8 big[] = {0x00, 101, 1, 2};
    static const guint8 ok[] = {0x00, 100};
    gsize used, len;
    const guint8 *pkt;
    guint8 prefix[2];

    {
        g_autoptr(ShimmerTcpSplitter) s = shimmer_tcp_splitter_new(100);
        g_assert_cmpint(shimmer_tcp_splitter_feed(s, zero, sizeof(zero), &used, &pkt, &len), ==,
                        SHIMMER_PACKET_ERR_BAD_LENGTH);
        g_assert_null(pkt);
        /* Sticky: the stream cannot be resynchronised. */
        g_assert_cmpint(shimmer_tcp_splitter_feed(s, ok, sizeof(ok), &used, &pkt, &len), ==,
                        SHIMMER_PACKET_ERR_BAD_LENGTH);
        g_assert_cmpuint(used, ==, 0);
    }
    {
        g_autoptr(ShimmerTcpSplitter) s = shimmer_tcp_splitter_new(100);
        /* The length arrives one byte at a time. */
        g_assert_cmpint(shimmer_tcp_splitter_feed(s, big, 1, &used, &pkt, &len), ==,
                        SHIMMER_PACKET_OK);
        g_assert_cmpint(shimmer_tcp_splitter_feed(s, big + 1, 3, &used, &pkt, &len), ==,
                        SHIMMER_PACKET_ERR_BAD_LENGTH);
    }
    {
        g_autoptr(ShimmerTcpSplitter) s = shimmer_tcp_splitter_new(100);
        g_assert_cmpint(shimmer_tcp_splitter_feed(s, ok, sizeof(ok), &used, &pkt, &len), ==,
                        SHIMMER_PACKET_OK);
        g_assert_cmpuint(shimmer_tcp_splitter_pending(s), ==, 2);
    }
    {
        /* Maximum clamps to what a u16 can say. */
        g_autoptr(ShimmerTcpSplitter) s = shimmer_tcp_splitter_new(G_MAXSIZE);
        static const guint8 ffff[] = {0xff, 0xff};
        g_assert_cmpint(shimmer_tcp_splitter_feed(s, ffff, 2, &used, &pkt, &len), ==,
                        SHIMMER_PACKET_OK);
    }
    g_assert_cmpint(shimmer_tcp_write_prefix(0, prefix), ==, SHIMMER_PACKET_ERR_BAD_LENGTH);
    g_assert_cmpint(shimmer_tcp_write_prefix(65536, prefix), ==, SHIMMER_PACKET_ERR_BAD_LENGTH);
    g_assert_cmpint(shimmer_tcp_write_prefix(0x1234, prefix), ==, SHIMMER_PACKET_OK);
    g_assert_cmpuint(prefix[0], ==, 0x12);
    g_assert_cmpuint(prefix[1], ==, 0x34);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/packet/opcodes", test_opcodes);
    g_test_add_func("/packet/known-vector", test_known_vector);
    g_test_add_func("/packet/round-trips", test_round_trips);
    g_test_add_func("/packet/build-errors", test_build_errors);
    g_test_add_func("/packet/truncation", test_truncation);
    g_test_add_func("/packet/parse-errors", test_parse_errors);
    g_test_add_func("/packet/random-input", test_random_input);
    g_test_add_func("/packet/tcp/splitter", test_tcp_splitter);
    g_test_add_func("/packet/tcp/zero-copy", test_tcp_zero_copy);
    g_test_add_func("/packet/tcp/bad-length", test_tcp_bad_length);
    return g_test_run();
}
