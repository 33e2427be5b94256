/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the byte-level parsers: the plain control packet
 * (parse, and a rebuild that must give back the same bytes), the first-byte
 * classifier, the TCP splitter (fed in chunks, with the stream rebuilt from
 * what it hands out), control-channel unwrapping in every mode and role, and
 * the data channel (open V1/V2, packet-id peek, and seal/open round trips).
 *
 * The keys below are random bytes made for this file: they protect nothing.
 * Seeds wrapped and sealed with them are in tests/fuzz/seeds/packet/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ctlwrap.h"
#include "datachan.h"
#include "packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort loudly when an invariant breaks: libFuzzer reports it as a crash. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            g_error("fuzz-packet: %s:%d: %s", __FILE__, __LINE__, #cond);                          \
    } while (0)

static const guint8 fz_static_key[256] = {
    0x0e, 0xb3, 0xf1, 0xa4, 0x2c, 0xe8, 0x22, 0xa6, 0xa3, 0xa2, 0x0d, 0xac, 0xd2, 0x93, 0x16, 0x9e,
    0xf1, 0xc4, 0x4e, 0x76, 0xb4, 0x14, 0xbb, 0x4d, 0x82, 0xdf, 0xbd, 0x17, 0x73, 0xef, 0x1b, 0x2a,
    0x7b, 0x5d, 0x6e, 0xa8, 0x13, 0x33, 0xb0, 0x03, 0xd8, 0xb9, 0x87, 0x30, 0x49, 0xef, 0xf5, 0xfd,
    0xa3, 0xbd, 0x05, 0xde, 0x6a, 0x0d, 0x98, 0x61, 0xad, 0x9a, 0x1d, 0xa1, 0xd5, 0xe5, 0xdc, 0x31,
    0xc4, 0x21, 0x3e, 0xed, 0x31, 0x3c, 0x18, 0xbb, 0xb5, 0x59, 0xf4, 0xf6, 0xd0, 0x62, 0x4f, 0x03,
    0x97, 0xde, 0xae, 0xd1, 0xa6, 0xb5, 0x3d, 0x2b, 0x7c, 0xe9, 0x98, 0x30, 0x16, 0xf4, 0xdd, 0xc1,
    0x29, 0x6b, 0x7a, 0x0e, 0x91, 0xeb, 0xb0, 0x8d, 0x16, 0x0f, 0x51, 0xfb, 0xc4, 0xe5, 0x2d, 0xcd,
    0x38, 0xfc, 0x5c, 0x6a, 0x60, 0x82, 0x6b, 0xef, 0xd3, 0x04, 0x7a, 0x5d, 0xf0, 0xc5, 0x8f, 0x50,
    0xb8, 0x8c, 0x06, 0x42, 0xf3, 0xff, 0xab, 0xd9, 0x9e, 0xbc, 0x5a, 0xd5, 0x36, 0x53, 0x84, 0xb0,
    0xa4, 0x67, 0x80, 0x4b, 0x14, 0x69, 0xb6, 0xff, 0x95, 0x65, 0x7a, 0xab, 0xb5, 0xc1, 0x5b, 0x07,
    0x13, 0xc5, 0x44, 0xd4, 0x15, 0xfd, 0xca, 0x6f, 0x31, 0x79, 0xbb, 0xa1, 0x2f, 0x99, 0x53, 0x4b,
    0x2b, 0xd3, 0x89, 0x18, 0xef, 0x73, 0xef, 0x6a, 0x33, 0xa9, 0xf1, 0xef, 0xdb, 0x81, 0xfc, 0x6b,
    0x1e, 0x7f, 0xbd, 0x0d, 0x6c, 0xed, 0xfa, 0xb2, 0x8c, 0xa5, 0x68, 0xd8, 0x55, 0x1f, 0x7c, 0x90,
    0x41, 0xf6, 0x27, 0x68, 0x63, 0x59, 0x1b, 0x17, 0x1a, 0x9b, 0x4d, 0xe3, 0xd1, 0x3c, 0xc4, 0xc8,
    0xde, 0xac, 0x4b, 0x76, 0x08, 0x2a, 0x8a, 0x86, 0xb5, 0x28, 0x2e, 0x83, 0x4f, 0x76, 0xd6, 0xaf,
    0x56, 0x2a, 0x6a, 0xbd, 0x3a, 0x53, 0x7f, 0xb0, 0xb4, 0xe3, 0x55, 0xdf, 0x4d, 0x63, 0xd4, 0x9b,
};

static const guint8 fz_v2_server_key[128] = {
    0x92, 0x8b, 0x6e, 0x6c, 0x88, 0x33, 0xd8, 0x17, 0x99, 0xfa, 0x5f, 0x32, 0xa2, 0x63, 0x2d, 0x97,
    0x16, 0xa0, 0x7a, 0xd1, 0x53, 0x47, 0x48, 0x47, 0x70, 0x0e, 0x6d, 0xea, 0xe6, 0x2c, 0x20, 0x8d,
    0x89, 0xee, 0x8e, 0x77, 0xaa, 0x93, 0xba, 0x3a, 0x2b, 0x24, 0xef, 0xaf, 0x4d, 0x36, 0x98, 0x99,
    0x33, 0xb0, 0xaa, 0x1c, 0x1f, 0xca, 0xc4, 0xe4, 0x4d, 0x36, 0xf0, 0xec, 0x4e, 0x11, 0xac, 0xdd,
    0x1e, 0x1b, 0x47, 0x7f, 0x56, 0x1b, 0xde, 0x13, 0xd4, 0x55, 0xdd, 0x7b, 0x3d, 0x8b, 0x73, 0xc8,
    0x0a, 0x0f, 0x5e, 0x94, 0x15, 0xbb, 0x04, 0x2d, 0x89, 0x0d, 0x55, 0xa8, 0x51, 0xf9, 0xa0, 0x3b,
    0x0b, 0x14, 0x94, 0x0a, 0x96, 0xee, 0x00, 0x17, 0xf2, 0x9e, 0x93, 0x53, 0xc5, 0xca, 0x00, 0x0a,
    0x16, 0x7b, 0x3a, 0x9c, 0x1c, 0x55, 0xbe, 0xab, 0xfb, 0xcb, 0x89, 0x0e, 0x5a, 0x17, 0x50, 0x35,
};

static const guint8 fz_v2_kc[256] = {
    0x0c, 0xb0, 0xf1, 0xd1, 0xf0, 0x6b, 0x50, 0x91, 0x7a, 0x84, 0xa8, 0x82, 0x3a, 0x33, 0x62, 0x7c,
    0x33, 0xf3, 0xa7, 0x74, 0x80, 0xac, 0x5d, 0x00, 0x49, 0x5a, 0x16, 0x43, 0x4e, 0x72, 0xcf, 0x9f,
    0x9e, 0x34, 0x8a, 0x23, 0xa2, 0xb1, 0xf1, 0x3b, 0x49, 0x89, 0xb1, 0x1a, 0xaa, 0x8c, 0x5d, 0xa7,
    0xa7, 0x96, 0x41, 0x7a, 0xbf, 0x42, 0x0d, 0xca, 0x45, 0xc4, 0x9f, 0x58, 0xcc, 0xe5, 0x53, 0x4f,
    0xd8, 0x61, 0x02, 0xfa, 0xb2, 0x13, 0xbf, 0x7e, 0x1e, 0xb8, 0x66, 0x4a, 0xc3, 0x2b, 0x32, 0x23,
    0x57, 0x86, 0xe0, 0x44, 0xc7, 0x6a, 0x35, 0xc7, 0x6f, 0x26, 0xa6, 0x32, 0xfa, 0xbf, 0x0d, 0x46,
    0xfa, 0xbc, 0x09, 0x74, 0xd9, 0x33, 0x23, 0x71, 0x6d, 0x58, 0xb5, 0xfc, 0xf4, 0xdc, 0x3b, 0xaf,
    0x86, 0x52, 0x11, 0x5f, 0x75, 0xb2, 0xcb, 0x4e, 0x51, 0x0a, 0x88, 0x1f, 0xa1, 0xb5, 0xb7, 0xd5,
    0xca, 0xac, 0xc3, 0x25, 0x4a, 0x82, 0x0a, 0xfa, 0xf2, 0xd4, 0xe3, 0x8b, 0xe8, 0x2c, 0xda, 0x44,
    0xe1, 0x7e, 0x97, 0x28, 0xff, 0x12, 0x2f, 0xf7, 0xc6, 0xea, 0x5f, 0xc9, 0xc8, 0x57, 0x9d, 0xa2,
    0x6a, 0x0a, 0xb0, 0xd9, 0x07, 0x5a, 0xce, 0xe9, 0x16, 0xa1, 0xf6, 0x20, 0x90, 0xc7, 0x28, 0xbb,
    0x4e, 0x23, 0x25, 0x5b, 0xc9, 0xc4, 0xbb, 0x6a, 0xbe, 0x86, 0xfc, 0xa0, 0x3a, 0x6b, 0xf0, 0xff,
    0xed, 0x4d, 0x9f, 0xfd, 0xc0, 0x83, 0x6b, 0x39, 0x99, 0x8a, 0x07, 0xe0, 0x4f, 0xd2, 0x18, 0xbb,
    0x5c, 0xfc, 0xaf, 0xdf, 0xbd, 0x25, 0x8b, 0x29, 0x44, 0xce, 0x76, 0x76, 0x28, 0x9d, 0xfc, 0x28,
    0x4b, 0x1f, 0x75, 0x5e, 0x64, 0x91, 0xa7, 0x11, 0xa0, 0x75, 0xe8, 0x8a, 0xad, 0xad, 0x16, 0x55,
    0xf8, 0x58, 0x9e, 0xd1, 0x09, 0xcd, 0x23, 0xfa, 0xcf, 0xb9, 0x85, 0xdc, 0x88, 0xd2, 0x95, 0x4f,
};

static const guint8 fz_data_key[32] = {
    0xc6, 0x77, 0xa6, 0xd4, 0x63, 0x14, 0x12, 0xc2, 0xdd, 0xbd, 0x0b, 0x70, 0xab, 0xc1, 0xd2, 0x79,
    0xf7, 0x25, 0x67, 0x8c, 0x59, 0x13, 0x6a, 0x77, 0x16, 0xd9, 0x58, 0x54, 0x61, 0xd4, 0xb5, 0xd8,
};

static const guint8 fz_data_iv[8] = {
    0x66, 0x82, 0x7f, 0xba, 0x7b, 0x05, 0xe2, 0x90,
};

/* Wrappers that keep no state across unwraps (only a v2 server learns). */
typedef struct {
    ShimmerCtlwrap *w;
    const char *name;
} Unwrapper;

static Unwrapper unwrappers[16];
static guint n_unwrappers;
static guint8 fz_wkc[SHIMMER_CTLWRAP_V2_MAX_WKC_LEN];
static gsize fz_wkc_len;
static ShimmerDatachanKey *dec_keys[3];

static void add_unwrapper(ShimmerCtlwrap *w, const char *name)
{
    CHECK(w != NULL);
    unwrappers[n_unwrappers].w = w;
    unwrappers[n_unwrappers].name = name;
    n_unwrappers++;
}

static const ShimmerDatachanCipher ciphers[3] = {
    SHIMMER_DATACHAN_AES_128_GCM,
    SHIMMER_DATACHAN_AES_256_GCM,
    SHIMMER_DATACHAN_CHACHA20_POLY1305,
};

static void init_once(void)
{
    static gboolean done;
    if (done)
        return;
    done = TRUE;
    /* WKc with a timestamp as its metadata, as openvpn --genkey writes it. */
    static const guint8 meta[9] = {0x01, 0, 0, 0, 0, 0x65, 0x00, 0x00, 0x00};
    CHECK(shimmer_ctlwrap_wrap_wkc(fz_v2_server_key, fz_v2_kc, meta, sizeof(meta), fz_wkc,
                                   sizeof(fz_wkc), &fz_wkc_len) == SHIMMER_CTLWRAP_OK);
    add_unwrapper(shimmer_ctlwrap_new_none(), "none");
    static const ShimmerCtlwrapDigest digests[3] = {
        SHIMMER_CTLWRAP_DIGEST_SHA1, SHIMMER_CTLWRAP_DIGEST_SHA256, SHIMMER_CTLWRAP_DIGEST_SHA512};
    static const ShimmerKeyDirection dirs[3] = {SHIMMER_KEY_DIRECTION_NONE, SHIMMER_KEY_DIRECTION_0,
                                                SHIMMER_KEY_DIRECTION_1};
    for (guint d = 0; d < 3; d++)
        for (guint k = 0; k < 3; k++)
            add_unwrapper(shimmer_ctlwrap_new_tls_auth(fz_static_key, digests[d], dirs[k]),
                          "tls-auth");
    add_unwrapper(shimmer_ctlwrap_new_tls_crypt(fz_static_key, SHIMMER_CTLWRAP_ROLE_CLIENT),
                  "tls-crypt client");
    add_unwrapper(shimmer_ctlwrap_new_tls_crypt(fz_static_key, SHIMMER_CTLWRAP_ROLE_SERVER),
                  "tls-crypt server");
    add_unwrapper(shimmer_ctlwrap_new_tls_crypt_v2_client(fz_v2_kc, fz_wkc, fz_wkc_len),
                  "tls-crypt-v2 client");
    for (guint i = 0; i < 3; i++) {
        dec_keys[i] = shimmer_datachan_key_new(
            ciphers[i], SHIMMER_DATACHAN_BACKEND_DEFAULT, SHIMMER_DATACHAN_DECRYPT, fz_data_key,
            shimmer_datachan_cipher_key_len(ciphers[i]), fz_data_iv, NULL);
        CHECK(dec_keys[i] != NULL);
    }
}

/* A parsed packet rebuilds to exactly the bytes it came from (the parser
 * puts everything after the fixed fields into the payload). */
static void fuzz_plain(const guint8 *data, gsize size)
{
    ShimmerControlPacket cp;
    ShimmerPacketError err = shimmer_packet_parse_control(data, size, &cp);
    (void)shimmer_packet_error_to_string(err);
    (void)shimmer_packet_opcode_name(size ? shimmer_packet_opcode(data[0]) : 0);
    if (err != SHIMMER_PACKET_OK)
        return;
    CHECK(cp.n_acks <= SHIMMER_PACKET_MAX_ACKS);
    CHECK(cp.payload_len <= size);
    CHECK(cp.payload_len == 0 ||
          (cp.payload >= data && cp.payload + cp.payload_len == data + size));
    CHECK(shimmer_packet_control_size(&cp) == size);
    guint8 *out = g_malloc(size + 1);
    gsize out_len = 0;
    if (shimmer_packet_build_control(&cp, out, size, &out_len) == SHIMMER_PACKET_OK) {
        CHECK(out_len == size);
        CHECK(memcmp(out, data, size) == 0);
    }
    /* One byte short of room must be refused, not overrun. */
    if (size > 0)
        CHECK(shimmer_packet_build_control(&cp, out, size - 1, &out_len) != SHIMMER_PACKET_OK);
    g_free(out);
}

/* The splitter in chunks whose sizes come from the input; the packets it
 * hands out, re-prefixed, must rebuild the stream it consumed. */
static void fuzz_splitter(const guint8 *data, gsize size)
{
    if (size == 0)
        return;
    gsize max = 1 + (gsize)data[0] * 8; /* small maxima reach BAD_LENGTH */
    ShimmerTcpSplitter *sp = shimmer_tcp_splitter_new(max);
    GByteArray *rebuilt = g_byte_array_new();
    guint32 seed = (guint32)size * 2654435761u ^ data[0];
    gsize off = 1, complete_end = 1;
    gboolean failed = FALSE;
    while (off < size && !failed) {
        seed = seed * 1103515245u + 12345u;
        gsize want = 1 + (seed >> 16) % 97;
        gsize chunk = MIN(size - off, want);
        gsize used = 0;
        while (used < chunk) {
            gsize consumed = 0, plen = 0;
            const guint8 *p = NULL;
            ShimmerPacketError err = shimmer_tcp_splitter_feed(sp, data + off + used, chunk - used,
                                                               &consumed, &p, &plen);
            if (err != SHIMMER_PACKET_OK) {
                CHECK(err == SHIMMER_PACKET_ERR_BAD_LENGTH);
                failed = TRUE;
                break;
            }
            CHECK(consumed <= chunk - used);
            used += consumed;
            if (p != NULL) {
                CHECK(plen >= 1 && plen <= max);
                guint8 prefix[SHIMMER_TCP_PREFIX_LEN];
                CHECK(shimmer_tcp_write_prefix(plen, prefix) == SHIMMER_PACKET_OK);
                g_byte_array_append(rebuilt, prefix, sizeof(prefix));
                g_byte_array_append(rebuilt, p, (guint)plen);
                complete_end = off + used;
            } else {
                /* No packet: everything offered was taken. */
                CHECK(used == chunk);
            }
        }
        off += chunk;
    }
    CHECK(rebuilt->len == complete_end - 1);
    CHECK(rebuilt->len == 0 || memcmp(rebuilt->data, data + 1, rebuilt->len) == 0);
    if (!failed)
        CHECK(shimmer_tcp_splitter_pending(sp) == size - complete_end);
    else
        CHECK(shimmer_tcp_splitter_feed(sp, data, size, &(gsize){0}, &(const guint8 *){NULL},
                                        &(gsize){0}) == SHIMMER_PACKET_ERR_BAD_LENGTH);
    g_byte_array_unref(rebuilt);
    shimmer_tcp_splitter_free(sp);
}

static void check_unwrapped(const guint8 *out, gsize out_len, gsize in_len)
{
    CHECK(out_len <= in_len);
    fuzz_plain(out, out_len);
}

static void fuzz_unwrap(const guint8 *data, gsize size)
{
    guint8 *out = g_malloc(size + 16);
    gsize out_len;
    ShimmerCtlwrapInfo info;
    for (guint i = 0; i < n_unwrappers; i++) {
        ShimmerCtlwrapError err =
            shimmer_ctlwrap_unwrap(unwrappers[i].w, data, size, out, size + 16, &out_len, &info);
        (void)shimmer_ctlwrap_error_to_string(err);
        if (err == SHIMMER_CTLWRAP_OK)
            check_unwrapped(out, out_len, size);
        else
            CHECK(out_len == 0);
    }
    /* A v2 server learns its client key from the packet: a fresh one each time. */
    ShimmerCtlwrap *v2s = shimmer_ctlwrap_new_tls_crypt_v2_server(fz_v2_server_key);
    ShimmerCtlwrapError err =
        shimmer_ctlwrap_unwrap(v2s, data, size, out, size + 16, &out_len, &info);
    if (err == SHIMMER_CTLWRAP_OK) {
        check_unwrapped(out, out_len, size);
        gsize mlen = 0;
        const guint8 *meta = shimmer_ctlwrap_get_metadata(v2s, &mlen);
        CHECK(mlen <= SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN);
        CHECK(mlen == 0 || meta != NULL);
        /* Once learnt, a second unwrap of the same packet still works. */
        CHECK(shimmer_ctlwrap_unwrap(v2s, data, size, out, size + 16, &out_len, &info) ==
              SHIMMER_CTLWRAP_OK);
    }
    shimmer_ctlwrap_free(v2s);
    /* The WKc alone. */
    guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN];
    guint8 meta[SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN];
    gsize mlen = 0;
    if (shimmer_ctlwrap_unwrap_wkc(fz_v2_server_key, data, size, kc, meta, sizeof(meta), &mlen) ==
        SHIMMER_CTLWRAP_OK)
        CHECK(size >= SHIMMER_CTLWRAP_V2_MIN_WKC_LEN && mlen <= sizeof(meta));
    g_free(out);
}

/* A plain packet that parses must survive wrap -> unwrap in every mode. */
static void fuzz_roundtrip_wrap(const guint8 *data, gsize size)
{
    ShimmerControlPacket cp;
    if (shimmer_packet_parse_control(data, size, &cp) != SHIMMER_PACKET_OK)
        return;
    ShimmerCtlwrap *pairs[4][2] = {
        {shimmer_ctlwrap_new_tls_auth(fz_static_key, SHIMMER_CTLWRAP_DIGEST_SHA256,
                                      SHIMMER_KEY_DIRECTION_1),
         shimmer_ctlwrap_new_tls_auth(fz_static_key, SHIMMER_CTLWRAP_DIGEST_SHA256,
                                      SHIMMER_KEY_DIRECTION_0)},
        {shimmer_ctlwrap_new_tls_crypt(fz_static_key, SHIMMER_CTLWRAP_ROLE_CLIENT),
         shimmer_ctlwrap_new_tls_crypt(fz_static_key, SHIMMER_CTLWRAP_ROLE_SERVER)},
        {shimmer_ctlwrap_new_tls_crypt(fz_static_key, SHIMMER_CTLWRAP_ROLE_SERVER),
         shimmer_ctlwrap_new_tls_crypt(fz_static_key, SHIMMER_CTLWRAP_ROLE_CLIENT)},
        {shimmer_ctlwrap_new_tls_crypt_v2_client(fz_v2_kc, fz_wkc, fz_wkc_len),
         shimmer_ctlwrap_new_tls_crypt_v2_server(fz_v2_server_key)},
    };
    gsize cap = size + 64 + SHIMMER_CTLWRAP_V2_MAX_WKC_LEN;
    guint8 *wire = g_malloc(cap), *back = g_malloc(cap);
    for (guint i = 0; i < G_N_ELEMENTS(pairs); i++) {
        gsize wlen = 0, blen = 0;
        ShimmerCtlwrapInfo info;
        ShimmerCtlwrapError err =
            shimmer_ctlwrap_wrap(pairs[i][0], data, size, 1700000000u, wire, cap, &wlen);
        if (err == SHIMMER_CTLWRAP_OK) {
            CHECK(wlen == size + shimmer_ctlwrap_overhead(pairs[i][0], cp.opcode));
            err = shimmer_ctlwrap_unwrap(pairs[i][1], wire, wlen, back, cap, &blen, &info);
            /* A v2 server needs V3/WKC_V1 first; everything else must open. */
            if (i != 3 || cp.opcode == SHIMMER_OP_HARD_RESET_CLIENT_V3 ||
                cp.opcode == SHIMMER_OP_CONTROL_WKC_V1) {
                CHECK(err == SHIMMER_CTLWRAP_OK);
                CHECK(blen == size && memcmp(back, data, size) == 0);
                CHECK(info.has_replay);
            }
        }
        shimmer_ctlwrap_free(pairs[i][0]);
        shimmer_ctlwrap_free(pairs[i][1]);
    }
    g_free(wire);
    g_free(back);
}

static void fuzz_datachan(const guint8 *data, gsize size)
{
    guint32 id = 0;
    for (int v2 = 0; v2 <= 1; v2++) {
        gboolean ok = shimmer_datachan_peek_packet_id(v2, data, size, &id);
        CHECK(ok == (size >= (v2 ? SHIMMER_DATACHAN_V2_OVERHEAD : SHIMMER_DATACHAN_V1_OVERHEAD)));
    }
    guint8 *out = g_malloc(size + 1);
    for (guint i = 0; i < 3; i++) {
        gsize out_len = 0;
        guint32 pid = 0;
        ShimmerDatachanResult r =
            shimmer_datachan_open_v2(dec_keys[i], data, size, out, size, &out_len, &pid);
        (void)shimmer_datachan_result_to_string(r);
        if (r == SHIMMER_DATACHAN_OK)
            CHECK(out_len + SHIMMER_DATACHAN_V2_OVERHEAD == size);
        r = shimmer_datachan_open_v1(dec_keys[i], data, size, out, size, &out_len, &pid);
        if (r == SHIMMER_DATACHAN_OK)
            CHECK(out_len + SHIMMER_DATACHAN_V1_OVERHEAD == size);
    }
    g_free(out);

    /* Seal the input as plaintext and open it again, both formats. */
    if (size > 4096)
        return;
    guint c = size ? data[0] % 3 : 0;
    ShimmerDatachanKey *enc = shimmer_datachan_key_new(
        ciphers[c], SHIMMER_DATACHAN_BACKEND_NETTLE, SHIMMER_DATACHAN_ENCRYPT, fz_data_key,
        shimmer_datachan_cipher_key_len(ciphers[c]), fz_data_iv, NULL);
    CHECK(enc != NULL);
    guint8 *pkt = g_malloc(size + SHIMMER_DATACHAN_V2_OVERHEAD);
    guint8 *plain = g_malloc(size + 1);
    gsize plen = 0, olen = 0;
    guint32 sid = 0, oid = 0;
    guint32 peer = size >= 4 ? ((guint32)data[1] << 16 | data[2] << 8 | data[3]) : 0;
    CHECK(shimmer_datachan_seal_v2(enc, size ? data[0] & 7 : 0, peer, data, size, pkt,
                                   size + SHIMMER_DATACHAN_V2_OVERHEAD, &plen,
                                   &sid) == SHIMMER_DATACHAN_OK);
    CHECK(shimmer_datachan_peek_packet_id(TRUE, pkt, plen, &oid) && oid == sid);
    CHECK(shimmer_datachan_open_v2(dec_keys[c], pkt, plen, plain, size, &olen, &oid) ==
          SHIMMER_DATACHAN_OK);
    CHECK(olen == size && oid == sid && memcmp(plain, data, size) == 0);
    CHECK(shimmer_datachan_seal_v1(enc, 0, data, size, pkt, size + SHIMMER_DATACHAN_V2_OVERHEAD,
                                   &plen, &sid) == SHIMMER_DATACHAN_OK);
    CHECK(shimmer_datachan_open_v1(dec_keys[c], pkt, plen, plain, size, &olen, &oid) ==
          SHIMMER_DATACHAN_OK);
    CHECK(olen == size && oid == sid && memcmp(plain, data, size) == 0);
    g_free(pkt);
    g_free(plain);
    shimmer_datachan_key_free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    /* An exact-size copy: ASan flags any read past the end. */
    guint8 *buf = size ? g_memdup2(data, size) : g_malloc(1);
    ShimmerPacketKind kind = shimmer_packet_classify(buf, size);
    if (size == 0)
        CHECK(kind == SHIMMER_PACKET_KIND_INVALID);
    else
        CHECK((kind == SHIMMER_PACKET_KIND_CONTROL) ==
                  shimmer_packet_opcode_is_control(shimmer_packet_opcode(buf[0])) &&
              (kind == SHIMMER_PACKET_KIND_DATA) ==
                  shimmer_packet_opcode_is_data(shimmer_packet_opcode(buf[0])));
    fuzz_plain(buf, size);
    fuzz_splitter(buf, size);
    fuzz_unwrap(buf, size);
    fuzz_roundtrip_wrap(buf, size);
    fuzz_datachan(buf, size);
    g_free(buf);
    return 0;
}
