/* SPDX-License-Identifier: MIT */
/*
 * The receive side of compression (compress.h): packets compressed by the
 * real liblzo2 and liblz4, framed as a legacy OpenVPN server frames them,
 * must come back intact; malformed and hostile packets must be refused
 * without writing past either buffer.
 */
#include <lz4.h>
#include <lzo/lzo1x.h>
#include <string.h>

#include "compframe.h"
#include "compress.h"

#define CAP        1600
#define GUARD      64
#define GUARD_BYTE 0xA5

/* A buffer with guard bytes behind its capacity. */
typedef struct {
    guint8 data[CAP + GUARD];
} Guarded;

static void guard_init(Guarded *g)
{
    memset(g->data, GUARD_BYTE, sizeof(g->data));
}

static void guard_check(const Guarded *g, gsize cap)
{
    for (gsize i = cap; i < sizeof(g->data); i++)
        g_assert_cmpuint(g->data[i], ==, GUARD_BYTE);
}

/* Text-like data that compresses well. */
static void make_packet(guint8 *p, gsize len, guint seed)
{
    static const char words[] = "GET /index.html HTTP/1.1 Host: example.net Cookie: session=";
    for (gsize i = 0; i < len; i++)
        p[i] = (guint8)words[(i + seed) % (sizeof(words) - 1)];
    if (len > 0)
        p[0] = 0x45; /* an IPv4 header starts so */
}

static gsize lzo_compress(const guint8 *in, gsize len, guint8 *out)
{
    g_assert_cmpint(lzo_init(), ==, LZO_E_OK);
    g_autofree guint8 *wrk = g_malloc(LZO1X_1_MEM_COMPRESS);
    lzo_uint n = 0;
    g_assert_cmpint(lzo1x_1_compress(in, len, out, &n, wrk), ==, LZO_E_OK);
    return n;
}

static gsize lz4_compress(const guint8 *in, gsize len, guint8 *out, gsize cap)
{
    int n = LZ4_compress_default((const char *)in, (char *)out, (int)len, (int)cap);
    g_assert_cmpint(n, >, 0);
    return (gsize)n;
}

/* Frames the compressed C[0..n) as a server does: returns the framed length. */
static gsize frame_compressed(ShimmerCompFraming framing, const guint8 *c, gsize n, guint8 *out)
{
    switch (framing) {
    case SHIMMER_COMP_LZO_NO:
        out[0] = 0x66;
        memcpy(out + 1, c, n);
        return n + 1;
    case SHIMMER_COMP_STUB:
        /* The swap: the header in front, the first byte moved last. */
        out[0] = 0x69;
        memcpy(out + 1, c + 1, n - 1);
        out[n] = c[0];
        return n + 1;
    case SHIMMER_COMP_STUB_V2:
        out[0] = 0x50;
        out[1] = 0x01;
        memcpy(out + 2, c, n);
        return n + 2;
    default:
        g_assert_not_reached();
    }
}

static ShimmerDecompResult run(ShimmerCompFraming f, ShimmerCompAlgorithm a, const guint8 *in,
                               gsize in_len, gsize cap, gsize scratch_cap, Guarded *buf,
                               Guarded *scratch, gsize *out_len)
{
    guard_init(buf);
    guard_init(scratch);
    g_assert_cmpuint(in_len, <=, cap);
    if (in_len > 0)
        memcpy(buf->data, in, in_len);
    *out_len = in_len;
    ShimmerDecompResult r =
        shimmer_decompress(f, a, buf->data, out_len, cap, scratch->data, scratch_cap);
    guard_check(buf, cap);
    guard_check(scratch, scratch_cap);
    if (r != SHIMMER_DECOMP_OK)
        g_assert_cmpuint(*out_len, ==, 0);
    return r;
}

static void check_roundtrip(ShimmerCompFraming f, ShimmerCompAlgorithm a, gsize len)
{
    guint8 plain[CAP], comp[CAP * 2], framed[CAP * 2];
    make_packet(plain, len, (guint)len);
    gsize n = a == SHIMMER_COMP_ALG_LZO ? lzo_compress(plain, len, comp)
                                        : lz4_compress(plain, len, comp, sizeof(comp));
    g_assert_cmpuint(n, <, len); /* the test data does compress */
    gsize framed_len = frame_compressed(f, comp, n, framed);
    Guarded buf, scratch;
    gsize out_len;
    g_assert_cmpint(run(f, a, framed, framed_len, CAP, CAP, &buf, &scratch, &out_len), ==,
                    SHIMMER_DECOMP_OK);
    g_assert_cmpmem(buf.data, out_len, plain, len);
}

static void test_lzo(void)
{
    for (gsize len = 100; len <= 1500; len += 350)
        check_roundtrip(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, len);
}

static void test_lz4_swap(void)
{
    for (gsize len = 100; len <= 1500; len += 350)
        check_roundtrip(SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_LZ4, len);
}

static void test_lz4_v2(void)
{
    for (gsize len = 100; len <= 1500; len += 350)
        check_roundtrip(SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4, len);
}

/* What we send (compframe.h, never compressed) the receive side takes back,
 * for every framing, including a packet that starts with the v2 escape. */
static void test_uncompressed_forms(void)
{
    const ShimmerCompFraming framings[] = {SHIMMER_COMP_NONE, SHIMMER_COMP_LZO_NO,
                                           SHIMMER_COMP_STUB, SHIMMER_COMP_STUB_V2};
    const guint8 firsts[] = {0x45, 0x60, 0x50, 0xFA, 0xFB, 0x66, 0x69};
    for (gsize f = 0; f < G_N_ELEMENTS(framings); f++) {
        for (gsize k = 0; k < G_N_ELEMENTS(firsts); k++) {
            for (gsize len = 1; len < 300; len += 97) {
                guint8 plain[CAP], framed[CAP + SHIMMER_COMPFRAME_MAX_OVERHEAD];
                make_packet(plain, len, (guint)k);
                plain[0] = firsts[k];
                gsize n = shimmer_compframe_wrap(framings[f], plain, len, framed);
                Guarded buf, scratch;
                gsize out_len;
                /* Uncompressed packets need no scratch at all. */
                guard_init(&buf);
                memcpy(buf.data, framed, n);
                out_len = n;
                g_assert_cmpint(shimmer_decompress(framings[f], SHIMMER_COMP_ALG_NONE, buf.data,
                                                   &out_len, CAP, NULL, 0),
                                ==, SHIMMER_DECOMP_OK);
                g_assert_cmpmem(buf.data, out_len, plain, len);
                guard_check(&buf, CAP);
                /* And the same with a decompressor configured. */
                g_assert_cmpint(run(framings[f], SHIMMER_COMP_ALG_LZ4, framed, n, CAP, CAP, &buf,
                                    &scratch, &out_len),
                                ==, SHIMMER_DECOMP_OK);
                g_assert_cmpmem(buf.data, out_len, plain, len);
            }
        }
    }
}

static void test_bad_headers(void)
{
    Guarded buf, scratch;
    gsize n;
    const guint8 lzo_bad[] = {0xFB, 1, 2, 3};
    g_assert_cmpint(run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, lzo_bad, sizeof(lzo_bad), CAP,
                        CAP, &buf, &scratch, &n),
                    ==, SHIMMER_DECOMP_MALFORMED);
    const guint8 swap_bad[] = {0xFA, 1, 2, 3};
    g_assert_cmpint(run(SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_LZ4, swap_bad, sizeof(swap_bad), CAP,
                        CAP, &buf, &scratch, &n),
                    ==, SHIMMER_DECOMP_MALFORMED);
    const guint8 v2_bad[] = {0x50, 0x02, 1, 2, 3}; /* LZO in the v2 framing */
    g_assert_cmpint(run(SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4, v2_bad, sizeof(v2_bad), CAP,
                        CAP, &buf, &scratch, &n),
                    ==, SHIMMER_DECOMP_MALFORMED);
    const guint8 v2_short[] = {0x50};
    g_assert_cmpint(
        run(SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4, v2_short, 1, CAP, CAP, &buf, &scratch, &n),
        ==, SHIMMER_DECOMP_MALFORMED);
    /* A header alone. */
    const guint8 lzo_only[] = {0x66};
    g_assert_cmpint(
        run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, lzo_only, 1, CAP, CAP, &buf, &scratch, &n),
        ==, SHIMMER_DECOMP_MALFORMED);
    const guint8 swap_only[] = {0x69};
    g_assert_cmpint(
        run(SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_LZ4, swap_only, 1, CAP, CAP, &buf, &scratch, &n),
        ==, SHIMMER_DECOMP_MALFORMED);
    /* Nothing at all where a header is due. */
    g_assert_cmpint(
        run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, NULL, 0, CAP, CAP, &buf, &scratch, &n), ==,
        SHIMMER_DECOMP_MALFORMED);
    /* A length beyond the buffer's capacity is a caller error, refused. */
    guard_init(&buf);
    n = CAP + 1;
    g_assert_cmpint(shimmer_decompress(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, buf.data, &n, CAP,
                                       scratch.data, CAP),
                    ==, SHIMMER_DECOMP_MALFORMED);
}

/* Compressed data with an algorithm the profile does not allow. */
static void test_not_allowed(void)
{
    guint8 plain[600], comp[1200], framed[1300];
    make_packet(plain, sizeof(plain), 3);
    gsize n = lzo_compress(plain, sizeof(plain), comp);
    gsize fl = frame_compressed(SHIMMER_COMP_LZO_NO, comp, n, framed);
    Guarded buf, scratch;
    gsize out;
    /* comp-lzo no: framing only. */
    g_assert_cmpint(
        run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_NONE, framed, fl, CAP, CAP, &buf, &scratch, &out),
        ==, SHIMMER_DECOMP_NOT_ALLOWED);
    n = lz4_compress(plain, sizeof(plain), comp, sizeof(comp));
    fl = frame_compressed(SHIMMER_COMP_STUB_V2, comp, n, framed);
    g_assert_cmpint(run(SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_NONE, framed, fl, CAP, CAP, &buf,
                        &scratch, &out),
                    ==, SHIMMER_DECOMP_NOT_ALLOWED);
    fl = frame_compressed(SHIMMER_COMP_STUB, comp, n, framed);
    g_assert_cmpint(
        run(SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_LZO, framed, fl, CAP, CAP, &buf, &scratch, &out),
        ==, SHIMMER_DECOMP_NOT_ALLOWED);
    /* The packet is not touched before the refusal is certain. */
    g_assert_cmpmem(buf.data, fl, framed, fl);
}

/* Data that decodes to more than the bound: a zip bomb in miniature. */
static void test_output_bound(void)
{
    guint8 zeros[CAP] = {0}, comp[CAP * 2], framed[CAP * 2];
    Guarded buf, scratch;
    gsize out;
    gsize n = lzo_compress(zeros, sizeof(zeros), comp);
    g_assert_cmpuint(n, <, 100);
    gsize fl = frame_compressed(SHIMMER_COMP_LZO_NO, comp, n, framed);
    /* Bounded by the scratch buffer ... */
    g_assert_cmpint(
        run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, framed, fl, CAP, 1000, &buf, &scratch, &out),
        ==, SHIMMER_DECOMP_TOO_LARGE);
    /* ... and by the packet buffer. */
    g_assert_cmpint(
        run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, framed, fl, 1000, CAP, &buf, &scratch, &out),
        ==, SHIMMER_DECOMP_TOO_LARGE);
    /* Exactly the bound is fine. */
    g_assert_cmpint(
        run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, framed, fl, CAP, CAP, &buf, &scratch, &out),
        ==, SHIMMER_DECOMP_OK);
    g_assert_cmpuint(out, ==, CAP);

    n = lz4_compress(zeros, sizeof(zeros), comp, sizeof(comp));
    fl = frame_compressed(SHIMMER_COMP_STUB_V2, comp, n, framed);
    g_assert_cmpint(run(SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4, framed, fl, CAP, 1000, &buf,
                        &scratch, &out),
                    ==, SHIMMER_DECOMP_BAD_DATA);
    /* No scratch buffer: a compressed packet cannot be decoded. */
    guard_init(&buf);
    memcpy(buf.data, framed, fl);
    out = fl;
    g_assert_cmpint(shimmer_decompress(SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4, buf.data, &out,
                                       CAP, NULL, 0),
                    ==, SHIMMER_DECOMP_TOO_LARGE);
}

/* Cut anywhere, compressed data must be refused, never over-read. */
static void test_truncated(void)
{
    guint8 plain[1200], comp[2400], framed[2500];
    make_packet(plain, sizeof(plain), 11);
    const struct {
        ShimmerCompFraming f;
        ShimmerCompAlgorithm a;
    } cases[] = {
        {SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO},
        {SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_LZ4},
        {SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4},
    };
    for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
        gsize n = cases[c].a == SHIMMER_COMP_ALG_LZO
                      ? lzo_compress(plain, sizeof(plain), comp)
                      : lz4_compress(plain, sizeof(plain), comp, sizeof(comp));
        gsize fl = frame_compressed(cases[c].f, comp, n, framed);
        guint refused = 0;
        for (gsize cut = 1; cut < fl; cut++) {
            /* A shorter packet in the exact-size heap buffer lets ASan see
             * any read past its end. */
            guint8 *exact = g_memdup2(framed, cut);
            guint8 scratch[CAP];
            gsize out = cut;
            ShimmerDecompResult r =
                shimmer_decompress(cases[c].f, cases[c].a, exact, &out, cut, scratch, CAP);
            if (r != SHIMMER_DECOMP_OK)
                refused++;
            else
                /* A cut that happens to decode cannot give the whole. */
                g_assert_cmpuint(out, <, sizeof(plain));
            g_free(exact);
        }
        /* LZ4 may decode a cut of its literal tail; most cuts must fail. */
        g_assert_cmpuint(refused, >, (fl - 1) * 9 / 10);
    }
    /* Trailing bytes after a complete LZO stream. */
    gsize n = lzo_compress(plain, sizeof(plain), comp);
    comp[n] = 0;
    gsize fl = frame_compressed(SHIMMER_COMP_LZO_NO, comp, n + 1, framed);
    Guarded buf, scratch;
    gsize out;
    g_assert_cmpint(
        run(SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, framed, fl, CAP, CAP, &buf, &scratch, &out),
        ==, SHIMMER_DECOMP_BAD_DATA);
}

/* Random bytes behind every header, for every framing: refused or decoded,
 * within bounds (ASan and the guards watch). */
static void test_random(void)
{
    GRand *rng = g_rand_new_with_seed(0x5e1f);
    const ShimmerCompFraming framings[] = {SHIMMER_COMP_LZO_NO, SHIMMER_COMP_STUB,
                                           SHIMMER_COMP_STUB_V2};
    const guint8 heads[] = {0x66, 0x69, 0x50, 0xFA, 0xFB};
    for (guint round = 0; round < 3000; round++) {
        guint8 pkt[CAP];
        gsize len = (gsize)g_rand_int_range(rng, 1, 400);
        for (gsize i = 0; i < len; i++)
            pkt[i] = (guint8)g_rand_int(rng);
        pkt[0] = heads[round % G_N_ELEMENTS(heads)];
        if (len > 1 && round % 2)
            pkt[1] = 0x01;
        Guarded buf, scratch;
        gsize out;
        for (gsize f = 0; f < G_N_ELEMENTS(framings); f++) {
            for (int a = SHIMMER_COMP_ALG_NONE; a <= SHIMMER_COMP_ALG_LZ4; a++) {
                gsize bound = (gsize)g_rand_int_range(rng, 64, CAP + 1);
                ShimmerDecompResult r = run(framings[f], (ShimmerCompAlgorithm)a, pkt, len, CAP,
                                            bound, &buf, &scratch, &out);
                if (r == SHIMMER_DECOMP_OK)
                    g_assert_cmpuint(out, <=, CAP);
            }
        }
    }
    g_rand_free(rng);
}

static void test_result_strings(void)
{
    for (int r = SHIMMER_DECOMP_OK; r <= SHIMMER_DECOMP_TOO_LARGE; r++)
        g_assert_cmpstr(shimmer_decompress_result_string((ShimmerDecompResult)r), !=, "?");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/compress/lzo", test_lzo);
    g_test_add_func("/compress/lz4-swap", test_lz4_swap);
    g_test_add_func("/compress/lz4-v2", test_lz4_v2);
    g_test_add_func("/compress/uncompressed-forms", test_uncompressed_forms);
    g_test_add_func("/compress/bad-headers", test_bad_headers);
    g_test_add_func("/compress/not-allowed", test_not_allowed);
    g_test_add_func("/compress/output-bound", test_output_bound);
    g_test_add_func("/compress/truncated", test_truncated);
    g_test_add_func("/compress/random", test_random);
    g_test_add_func("/compress/result-strings", test_result_strings);
    return g_test_run();
}
