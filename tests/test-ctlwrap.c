/* SPDX-License-Identifier: MIT */
/* Unit tests for ctlwrap.c: none, tls-auth, tls-crypt and tls-crypt-v2. */
#include <string.h>

#include <glib.h>

#include "ctlwrap.h"
#include "keys.h"
#include "packet.h"

/* Fixture keys from tests/data, loaded once. */
static guint8 ta_key[SHIMMER_STATIC_KEY_LEN];
static guint8 tc_key[SHIMMER_STATIC_KEY_LEN];
static guint8 v2_server_key[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];
static ShimmerTlsCryptV2ClientKey v2_client;

static const guint8 SID_C[8] = {0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8};
static const guint8 SID_S[8] = {0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58};

#define NOW 1700000000u

static gchar *data_path(const char *name)
{
    const char *src = g_getenv("SHIMMER_TEST_SRCDIR");
    return g_build_filename(src ? src : ".", "data", name, NULL);
}

static GBytes *read_data(const char *name)
{
    g_autofree gchar *path = data_path(name);
    gchar *contents = NULL;
    gsize len = 0;
    g_autoptr(GError) error = NULL;
    g_assert_true(g_file_get_contents(path, &contents, &len, &error));
    g_assert_no_error(error);
    return g_bytes_new_take(contents, len);
}

static void load_keys(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) ta = read_data("ta.key");
    g_autoptr(GBytes) tc = read_data("tc.key");
    g_autoptr(GBytes) s = read_data("tc-v2-server.key");
    g_autoptr(GBytes) c = read_data("tc-v2-client.key");
    gsize n;
    const void *d;

    d = g_bytes_get_data(ta, &n);
    g_assert_true(shimmer_keys_parse_static(d, n, ta_key, &error));
    d = g_bytes_get_data(tc, &n);
    g_assert_true(shimmer_keys_parse_static(d, n, tc_key, &error));
    d = g_bytes_get_data(s, &n);
    g_assert_true(shimmer_keys_parse_tls_crypt_v2_server(d, n, v2_server_key, &error));
    d = g_bytes_get_data(c, &n);
    g_assert_true(shimmer_keys_parse_tls_crypt_v2_client(d, n, &v2_client, &error));
    g_assert_no_error(error);
}

/* A plain control packet; the caller frees. */
static GBytes *plain_packet_n(guint opcode, guint key_id, const guint8 *sid, guint n_acks,
                              const guint8 *rsid, guint32 msg_pid, const char *payload,
                              gsize payload_len)
{
    ShimmerControlPacket p = {0};
    guint8 buf[512];
    gsize len;
    p.opcode = (guint8)opcode;
    p.key_id = (guint8)key_id;
    memcpy(p.session_id, sid, 8);
    p.n_acks = n_acks;
    for (guint i = 0; i < n_acks; i++)
        p.acks[i] = 7 + i;
    if (n_acks)
        memcpy(p.remote_session_id, rsid, 8);
    p.msg_pid = msg_pid;
    p.payload = (const guint8 *)payload;
    p.payload_len = payload_len;
    g_assert_cmpint(shimmer_packet_build_control(&p, buf, sizeof(buf), &len), ==,
                    SHIMMER_PACKET_OK);
    return g_bytes_new(buf, len);
}

static GBytes *plain_packet(guint opcode, guint key_id, const guint8 *sid, guint n_acks,
                            const guint8 *rsid, guint32 msg_pid, const char *payload)
{
    return plain_packet_n(opcode, key_id, sid, n_acks, rsid, msg_pid, payload,
                          payload ? strlen(payload) : 0);
}

static GBytes *a_control_packet(void)
{
    return plain_packet(SHIMMER_OP_CONTROL_V1, 2, SID_C, 3, SID_S, 42,
                        "\x16\x03\x03 some TLS bytes of a ClientHello");
}

static GBytes *wrap(ShimmerCtlwrap *w, GBytes *plain, guint32 now)
{
    gsize plen, out_len = 0;
    const guint8 *p = g_bytes_get_data(plain, &plen);
    gsize size = plen + shimmer_ctlwrap_overhead(w, shimmer_packet_opcode(p[0]));
    guint8 *out = g_malloc(size);
    g_assert_cmpint(shimmer_ctlwrap_wrap(w, p, plen, now, out, size, &out_len), ==,
                    SHIMMER_CTLWRAP_OK);
    g_assert_cmpuint(out_len, ==, size);
    return g_bytes_new_take(out, out_len);
}

/* Unwraps a heap copy of PKT[0..LEN) (so ASan sees over-reads) into a
 * buffer of exactly LEN bytes. */
static ShimmerCtlwrapError unwrap_raw(ShimmerCtlwrap *w, const guint8 *pkt, gsize len,
                                      GBytes **plain, ShimmerCtlwrapInfo *info)
{
    g_autofree guint8 *in = g_memdup2(pkt, len ? len : 1);
    g_autofree guint8 *out = g_malloc(len ? len : 1);
    gsize out_len = 99;
    ShimmerCtlwrapInfo dummy;
    ShimmerCtlwrapError e =
        shimmer_ctlwrap_unwrap(w, len ? in : NULL, len, out, len, &out_len, info ? info : &dummy);
    if (e != SHIMMER_CTLWRAP_OK)
        g_assert_cmpuint(out_len, ==, 0);
    if (plain)
        *plain = e == SHIMMER_CTLWRAP_OK ? g_bytes_new(out, out_len) : NULL;
    return e;
}

static ShimmerCtlwrapError unwrap(ShimmerCtlwrap *w, GBytes *pkt, GBytes **plain,
                                  ShimmerCtlwrapInfo *info)
{
    gsize len;
    const guint8 *d = g_bytes_get_data(pkt, &len);
    return unwrap_raw(w, d, len, plain, info);
}

/* Wraps PLAIN with TX, unwraps with RX, and checks the result is PLAIN. */
static void assert_round_trip(ShimmerCtlwrap *tx, ShimmerCtlwrap *rx, GBytes *plain)
{
    guint32 pid = shimmer_ctlwrap_get_next_pid(tx);
    g_autoptr(GBytes) wire = wrap(tx, plain, NOW);
    g_autoptr(GBytes) back = NULL;
    ShimmerCtlwrapInfo info;
    g_assert_cmpint(unwrap(rx, wire, &back, &info), ==, SHIMMER_CTLWRAP_OK);
    g_assert_true(g_bytes_equal(back, plain));
    if (shimmer_ctlwrap_get_mode(tx) != SHIMMER_CTLWRAP_NONE) {
        g_assert_true(info.has_replay);
        g_assert_cmpuint(info.replay_pid, ==, pid);
        g_assert_cmpuint(info.replay_time, ==, NOW);
    } else {
        g_assert_false(info.has_replay);
    }
}

static void assert_rejected(ShimmerCtlwrap *tx, ShimmerCtlwrap *rx, GBytes *plain,
                            ShimmerCtlwrapError want)
{
    g_autoptr(GBytes) wire = wrap(tx, plain, NOW);
    g_assert_cmpint(unwrap(rx, wire, NULL, NULL), ==, want);
}

/* ---- round trips ---- */

static void test_none(void)
{
    g_autoptr(ShimmerCtlwrap) a = shimmer_ctlwrap_new_none();
    g_autoptr(ShimmerCtlwrap) b = shimmer_ctlwrap_new_none();
    g_autoptr(GBytes) plain = a_control_packet();
    assert_round_trip(a, b, plain);
    g_assert_cmpuint(shimmer_ctlwrap_overhead(a, SHIMMER_OP_CONTROL_V1), ==, 0);
    g_autoptr(GBytes) wire = wrap(a, plain, NOW);
    g_assert_true(g_bytes_equal(wire, plain));
}

static const ShimmerCtlwrapDigest digests[] = {
    SHIMMER_CTLWRAP_DIGEST_SHA1,
    SHIMMER_CTLWRAP_DIGEST_SHA256,
    SHIMMER_CTLWRAP_DIGEST_SHA512,
};
static const gsize digest_lens[] = {20, 32, 64};

static void test_tls_auth(void)
{
    g_autoptr(GBytes) plain = a_control_packet();
    g_autoptr(GBytes) reset =
        plain_packet(SHIMMER_OP_HARD_RESET_CLIENT_V2, 0, SID_C, 0, NULL, 0, NULL);

    for (guint d = 0; d < G_N_ELEMENTS(digests); d++) {
        g_autoptr(ShimmerCtlwrap) k0 =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_0);
        g_autoptr(ShimmerCtlwrap) k1 =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_1);
        g_autoptr(ShimmerCtlwrap) n1 =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_NONE);
        g_autoptr(ShimmerCtlwrap) n2 =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_NONE);

        g_assert_cmpuint(shimmer_ctlwrap_overhead(k0, SHIMMER_OP_CONTROL_V1), ==,
                         digest_lens[d] + 8);
        assert_round_trip(k0, k1, plain);
        assert_round_trip(k1, k0, plain);
        assert_round_trip(k0, k1, reset);
        assert_round_trip(k1, k0, reset);
        assert_round_trip(n1, n2, plain);
        assert_round_trip(n2, n1, reset);
        /* Without a direction both ends use slot 0, like direction 0 does
         * for sending: so "none" talks to a direction-1 peer one way only. */
        assert_round_trip(n1, k1, plain);
        assert_rejected(k1, n1, plain, SHIMMER_CTLWRAP_ERR_AUTH);

        /* Layout: op | sid | hmac | pid | time | rest. */
        g_autoptr(GBytes) wire = wrap(k0, reset, NOW);
        gsize len;
        const guint8 *w = g_bytes_get_data(wire, &len);
        g_assert_cmpuint(len, ==, 14 + digest_lens[d] + 8);
        g_assert_cmpuint(w[0], ==, 0x38);
        g_assert_cmpmem(w + 1, 8, SID_C, 8);
        const guint8 *rp = w + 9 + digest_lens[d];
        g_assert_cmpuint(rp[4] << 24 | rp[5] << 16 | rp[6] << 8 | rp[7], ==, NOW);
        g_assert_cmpmem(rp + 8, 5, (const guint8 *)"\0\0\0\0\0", 5);
    }
    g_assert_null(shimmer_ctlwrap_new_tls_auth(ta_key, 7, SHIMMER_KEY_DIRECTION_0));
    g_assert_null(shimmer_ctlwrap_new_tls_auth(ta_key, SHIMMER_CTLWRAP_DIGEST_SHA1, 2));
}

static void test_tls_auth_wrong_direction(void)
{
    g_autoptr(GBytes) plain = a_control_packet();
    for (guint d = 0; d < G_N_ELEMENTS(digests); d++) {
        g_autoptr(ShimmerCtlwrap) k0 =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_0);
        g_autoptr(ShimmerCtlwrap) k0b =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_0);
        g_autoptr(ShimmerCtlwrap) k1 =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_1);
        g_autoptr(ShimmerCtlwrap) k1b =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_1);
        g_autoptr(ShimmerCtlwrap) n =
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], SHIMMER_KEY_DIRECTION_NONE);
        assert_rejected(k0, k0b, plain, SHIMMER_CTLWRAP_ERR_AUTH);
        assert_rejected(k1, k1b, plain, SHIMMER_CTLWRAP_ERR_AUTH);
        assert_rejected(n, k0, plain, SHIMMER_CTLWRAP_ERR_AUTH);
        assert_rejected(k1, n, plain, SHIMMER_CTLWRAP_ERR_AUTH);

        /* Another digest with the same key: a different length, rejected. */
        for (guint e = 0; e < G_N_ELEMENTS(digests); e++) {
            if (e == d)
                continue;
            g_autoptr(ShimmerCtlwrap) other =
                shimmer_ctlwrap_new_tls_auth(ta_key, digests[e], SHIMMER_KEY_DIRECTION_1);
            g_autoptr(GBytes) wire = wrap(k0, plain, NOW);
            g_assert_cmpint(unwrap(other, wire, NULL, NULL), !=, SHIMMER_CTLWRAP_OK);
        }
        /* The tls-crypt key in the tls-auth slot. */
        g_autoptr(ShimmerCtlwrap) wrong =
            shimmer_ctlwrap_new_tls_auth(tc_key, digests[d], SHIMMER_KEY_DIRECTION_1);
        assert_rejected(k0, wrong, plain, SHIMMER_CTLWRAP_ERR_AUTH);
    }
}

static void test_tls_crypt(void)
{
    g_autoptr(ShimmerCtlwrap) c =
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_CLIENT);
    g_autoptr(ShimmerCtlwrap) s =
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_SERVER);
    g_autoptr(ShimmerCtlwrap) c2 =
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_CLIENT);
    g_autoptr(ShimmerCtlwrap) s2 =
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_SERVER);
    g_autoptr(GBytes) plain = a_control_packet();
    g_autoptr(GBytes) reset =
        plain_packet(SHIMMER_OP_HARD_RESET_CLIENT_V2, 0, SID_C, 0, NULL, 0, NULL);
    g_autoptr(GBytes) ack = plain_packet(SHIMMER_OP_ACK_V1, 0, SID_S, 8, SID_C, 0, NULL);

    g_assert_cmpuint(shimmer_ctlwrap_overhead(c, SHIMMER_OP_CONTROL_V1), ==, 40);
    assert_round_trip(c, s, reset);
    assert_round_trip(s, c, plain);
    assert_round_trip(c, s, plain);
    assert_round_trip(s, c, ack);

    /* Each direction has its own key: a peer of the same role rejects. */
    assert_rejected(c, c2, plain, SHIMMER_CTLWRAP_ERR_AUTH);
    assert_rejected(s, s2, plain, SHIMMER_CTLWRAP_ERR_AUTH);

    /* The body is encrypted: the plaintext's payload is not on the wire. */
    g_autoptr(GBytes) wire = wrap(c, plain, NOW);
    gsize len;
    const guint8 *w = g_bytes_get_data(wire, &len);
    g_assert_null(memmem(w, len, "TLS bytes", 9));
    g_assert_cmpmem(w + 1, 8, SID_C, 8);
}

static GBytes *v3_reset(const guint8 *sid)
{
    return plain_packet(SHIMMER_OP_HARD_RESET_CLIENT_V3, 0, sid, 0, NULL, 0, NULL);
}

static ShimmerCtlwrap *new_v2_client(void)
{
    return shimmer_ctlwrap_new_tls_crypt_v2_client(v2_client.kc, v2_client.wkc, v2_client.wkc_len);
}

static void test_tls_crypt_v2(void)
{
    g_autoptr(ShimmerCtlwrap) c = new_v2_client();
    g_autoptr(ShimmerCtlwrap) s = shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key);
    g_autoptr(GBytes) reset = v3_reset(SID_C);
    g_autoptr(GBytes) back = NULL;
    ShimmerCtlwrapInfo info;
    gsize md_len;

    g_assert_nonnull(c);
    g_assert_cmpuint(shimmer_ctlwrap_overhead(c, SHIMMER_OP_HARD_RESET_CLIENT_V3), ==,
                     40 + v2_client.wkc_len);
    g_assert_cmpuint(shimmer_ctlwrap_overhead(c, SHIMMER_OP_CONTROL_V1), ==, 40);
    g_assert_null(shimmer_ctlwrap_get_metadata(s, &md_len));
    g_assert_cmpuint(md_len, ==, 0);

    /* Early negotiation: the first V3 carries 0x0f000001. */
    g_assert_cmpuint(shimmer_ctlwrap_get_next_pid(c), ==, SHIMMER_CTLWRAP_EARLY_NEG_START + 1);
    g_autoptr(GBytes) wire = wrap(c, reset, NOW);
    gsize len;
    const guint8 *w = g_bytes_get_data(wire, &len);
    /* WKc rides in the clear at the end. */
    g_assert_cmpmem(w + len - v2_client.wkc_len, v2_client.wkc_len, v2_client.wkc,
                    v2_client.wkc_len);
    g_assert_cmpint(unwrap(s, wire, &back, &info), ==, SHIMMER_CTLWRAP_OK);
    g_assert_true(g_bytes_equal(back, reset));
    g_assert_true(info.wkc_verified);
    g_assert_true(info.client_key_installed);
    g_assert_cmpuint(info.replay_pid, ==, 0x0f000001);
    const guint8 *md = shimmer_ctlwrap_get_metadata(s, &md_len);
    /* openvpn --genkey tls-crypt-v2-client writes a timestamp by default. */
    g_assert_cmpuint(md_len, ==, 9);
    g_assert_cmpuint(md[0], ==, 0x01);

    /* Both directions under Kc now. */
    g_autoptr(GBytes) sreset = plain_packet_n(SHIMMER_OP_HARD_RESET_SERVER_V2, 0, SID_S, 1, SID_C,
                                              0, "\x00\x01\x00\x02\x00\x01", 6);
    assert_round_trip(s, c, sreset);
    g_autoptr(GBytes) plain = a_control_packet();
    assert_round_trip(c, s, plain);
    assert_round_trip(s, c, plain);

    /* CONTROL_WKC_V1 with the same WKc: accepted, nothing re-installed. */
    g_autoptr(GBytes) wkc_pkt =
        plain_packet(SHIMMER_OP_CONTROL_WKC_V1, 0, SID_C, 1, SID_S, 1, NULL);
    g_autoptr(GBytes) wire2 = wrap(c, wkc_pkt, NOW);
    g_autoptr(GBytes) back2 = NULL;
    g_assert_cmpint(unwrap(s, wire2, &back2, &info), ==, SHIMMER_CTLWRAP_OK);
    g_assert_true(g_bytes_equal(back2, wkc_pkt));
    g_assert_true(info.wkc_verified);
    g_assert_false(info.client_key_installed);

    /* A stateless server meets CONTROL_WKC_V1 first: it installs from it. */
    g_autoptr(ShimmerCtlwrap) s2 = shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key);
    g_autoptr(GBytes) wire3 = wrap(c, wkc_pkt, NOW);
    g_assert_cmpint(unwrap(s2, wire3, NULL, &info), ==, SHIMMER_CTLWRAP_OK);
    g_assert_true(info.client_key_installed);

    /* A plain tls-crypt peer with Kc as its key understands the non-WKc
     * packets: tls-crypt-v2 is tls-crypt under Kc. */
    g_autoptr(ShimmerCtlwrap) tc =
        shimmer_ctlwrap_new_tls_crypt(v2_client.kc, SHIMMER_CTLWRAP_ROLE_SERVER);
    assert_round_trip(c, tc, plain);
    assert_round_trip(tc, c, plain);
}

static void test_tls_crypt_v2_server_state(void)
{
    g_autoptr(ShimmerCtlwrap) c = new_v2_client();
    g_autoptr(ShimmerCtlwrap) s = shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key);
    g_autoptr(GBytes) plain = a_control_packet();
    g_autoptr(GBytes) reset = v3_reset(SID_C);
    guint8 out[512];
    gsize out_len;
    gsize plen;
    const guint8 *p = g_bytes_get_data(plain, &plen);

    /* Before a client key, a server can neither receive nor send. */
    g_autoptr(GBytes) wire = wrap(c, plain, NOW);
    g_assert_cmpint(unwrap(s, wire, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY);
    g_assert_cmpint(shimmer_ctlwrap_wrap(s, p, plen, NOW, out, sizeof(out), &out_len), ==,
                    SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY);

    /* A V3 whose WKc is fine but whose tag is not installs nothing (OpenVPN
     * 2.6 in p2p mode would keep the key; we do not trust a packet that
     * failed). */
    g_autoptr(GBytes) v3 = wrap(c, reset, NOW);
    gsize len;
    const guint8 *v3d = g_bytes_get_data(v3, &len);
    g_autofree guint8 *bad = g_memdup2(v3d, len);
    bad[30] ^= 0x40;
    g_assert_cmpint(unwrap_raw(s, bad, len, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_AUTH);
    g_autoptr(GBytes) wire2 = wrap(c, plain, NOW);
    g_assert_cmpint(unwrap(s, wire2, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY);

    /* Only a client sends the WKc opcodes. */
    g_assert_cmpint(unwrap(s, v3, NULL, NULL), ==, SHIMMER_CTLWRAP_OK);
    gsize rlen;
    const guint8 *r = g_bytes_get_data(reset, &rlen);
    g_assert_cmpint(shimmer_ctlwrap_wrap(s, r, rlen, NOW, out, sizeof(out), &out_len), ==,
                    SHIMMER_CTLWRAP_ERR_BAD_OPCODE);
    /* ...and a client never receives them. */
    g_assert_cmpint(unwrap(c, v3, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_BAD_OPCODE);

    /* A session keeps its client key: a WKc for another Kc is refused even
     * though it is genuine. */
    guint8 kc2[256], wkc2[1024];
    gsize wkc2_len;
    for (int i = 0; i < 256; i++)
        kc2[i] = (guint8)(i * 7 + 3);
    g_assert_cmpint(shimmer_ctlwrap_wrap_wkc(v2_server_key, kc2, (const guint8 *)"\x00user", 5,
                                             wkc2, sizeof(wkc2), &wkc2_len),
                    ==, SHIMMER_CTLWRAP_OK);
    g_autoptr(ShimmerCtlwrap) c2 = shimmer_ctlwrap_new_tls_crypt_v2_client(kc2, wkc2, wkc2_len);
    g_autoptr(GBytes) other = wrap(c2, reset, NOW);
    g_assert_cmpint(unwrap(s, other, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_WKC_AUTH);
    /* A fresh server takes it, with its metadata. */
    g_autoptr(ShimmerCtlwrap) s2 = shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key);
    g_assert_cmpint(unwrap(s2, other, NULL, NULL), ==, SHIMMER_CTLWRAP_OK);
    gsize md_len;
    const guint8 *md = shimmer_ctlwrap_get_metadata(s2, &md_len);
    g_assert_cmpmem(md, md_len, "\x00user", 5);
    /* And the original session still works with the original key. */
    g_autoptr(GBytes) wire3 = wrap(c, plain, NOW);
    g_assert_cmpint(unwrap(s, wire3, NULL, NULL), ==, SHIMMER_CTLWRAP_OK);
}

/* Which bytes of the 256-byte key the receiver really uses: flip each one
 * in the receiver's copy and see whether the packet still verifies. This
 * pins down the slot choice and the "first N bytes of the half" rule. */
static void test_key_bytes(void)
{
    g_autoptr(GBytes) plain = a_control_packet();
    for (guint d = 0; d < G_N_ELEMENTS(digests); d++) {
        g_autoptr(ShimmerCtlwrap) tx = shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], 0);
        g_autoptr(GBytes) wire = wrap(tx, plain, NOW);
        for (gsize i = 0; i < SHIMMER_STATIC_KEY_LEN; i++) {
            guint8 k[SHIMMER_STATIC_KEY_LEN];
            memcpy(k, ta_key, sizeof(k));
            k[i] ^= 0x01;
            /* Direction 0 sends with slot 0: its hmac half starts at 64. */
            gboolean used = i >= 64 && i < 64 + digest_lens[d];
            g_autoptr(ShimmerCtlwrap) rx = shimmer_ctlwrap_new_tls_auth(k, digests[d], 1);
            g_assert_cmpint(unwrap(rx, wire, NULL, NULL), ==,
                            used ? SHIMMER_CTLWRAP_ERR_AUTH : SHIMMER_CTLWRAP_OK);
        }
    }
    for (int role = 0; role < 2; role++) {
        g_autoptr(ShimmerCtlwrap) tx = shimmer_ctlwrap_new_tls_crypt(tc_key, role);
        g_autoptr(GBytes) wire = wrap(tx, plain, NOW);
        /* The client sends with slot 1 (bytes 128..255), the server slot 0. */
        gsize base = role == SHIMMER_CTLWRAP_ROLE_CLIENT ? 128 : 0;
        for (gsize i = 0; i < SHIMMER_STATIC_KEY_LEN; i++) {
            guint8 k[SHIMMER_STATIC_KEY_LEN];
            memcpy(k, tc_key, sizeof(k));
            k[i] ^= 0x01;
            gboolean used = (i >= base && i < base + 32) || (i >= base + 64 && i < base + 96);
            g_autoptr(ShimmerCtlwrap) rx = shimmer_ctlwrap_new_tls_crypt(k, !role);
            g_assert_cmpint(unwrap(rx, wire, NULL, NULL), ==,
                            used ? SHIMMER_CTLWRAP_ERR_AUTH : SHIMMER_CTLWRAP_OK);
        }
    }
}

/* ---- tampering ---- */

typedef struct {
    const char *name;
    ShimmerCtlwrap *tx;
    ShimmerCtlwrap *rx;
    GBytes *plain;
} Pairing;

static GPtrArray *make_pairings(void)
{
    GPtrArray *a = g_ptr_array_new();
    Pairing *p;
#define ADD(n, t, r, pl)                                                                           \
    do {                                                                                           \
        p = g_new0(Pairing, 1);                                                                    \
        p->name = n;                                                                               \
        p->tx = t;                                                                                 \
        p->rx = r;                                                                                 \
        p->plain = pl;                                                                             \
        g_ptr_array_add(a, p);                                                                     \
    } while (0)
    for (guint d = 0; d < G_N_ELEMENTS(digests); d++) {
        ADD("tls-auth 0->1", shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], 0),
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], 1), a_control_packet());
        ADD("tls-auth 1->0", shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], 1),
            shimmer_ctlwrap_new_tls_auth(ta_key, digests[d], 0),
            plain_packet(SHIMMER_OP_HARD_RESET_CLIENT_V2, 0, SID_C, 0, NULL, 0, NULL));
    }
    ADD("tls-crypt c->s", shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_CLIENT),
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_SERVER), a_control_packet());
    ADD("tls-crypt s->c", shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_SERVER),
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_CLIENT),
        plain_packet(SHIMMER_OP_ACK_V1, 0, SID_S, 1, SID_C, 0, NULL));
    ADD("tls-crypt-v2 V3", new_v2_client(), shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key),
        v3_reset(SID_C));
    ADD("tls-crypt-v2 WKC_V1", new_v2_client(),
        shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key),
        plain_packet(SHIMMER_OP_CONTROL_WKC_V1, 0, SID_C, 1, SID_S, 1, "x"));
#undef ADD
    return a;
}

static void free_pairings(GPtrArray *a)
{
    for (guint i = 0; i < a->len; i++) {
        Pairing *p = g_ptr_array_index(a, i);
        shimmer_ctlwrap_free(p->tx);
        shimmer_ctlwrap_free(p->rx);
        g_bytes_unref(p->plain);
        g_free(p);
    }
    g_ptr_array_free(a, TRUE);
}

static void test_truncation(void)
{
    GPtrArray *pairs = make_pairings();
    for (guint i = 0; i < pairs->len; i++) {
        Pairing *p = g_ptr_array_index(pairs, i);
        g_autoptr(GBytes) wire = wrap(p->tx, p->plain, NOW);
        gsize len;
        const guint8 *w = g_bytes_get_data(wire, &len);
        for (gsize cut = 0; cut < len; cut++) {
            ShimmerCtlwrapError e = unwrap_raw(p->rx, w, cut, NULL, NULL);
            if (e == SHIMMER_CTLWRAP_OK)
                g_error("%s: accepted a packet cut to %zu of %zu bytes", p->name, cut, len);
        }
        /* Extended by a byte: rejected as well. */
        g_autofree guint8 *longer = g_malloc(len + 1);
        memcpy(longer, w, len);
        longer[len] = 0;
        g_assert_cmpint(unwrap_raw(p->rx, longer, len + 1, NULL, NULL), !=, SHIMMER_CTLWRAP_OK);
        g_assert_cmpint(unwrap_raw(p->rx, w, len, NULL, NULL), ==, SHIMMER_CTLWRAP_OK);
    }
    free_pairings(pairs);
}

static void test_bit_flips(void)
{
    GPtrArray *pairs = make_pairings();
    for (guint i = 0; i < pairs->len; i++) {
        Pairing *p = g_ptr_array_index(pairs, i);
        g_autoptr(GBytes) wire = wrap(p->tx, p->plain, NOW);
        gsize len;
        const guint8 *w = g_bytes_get_data(wire, &len);
        g_autofree guint8 *c = g_memdup2(w, len);
        for (gsize byte = 0; byte < len; byte++) {
            for (int bit = 0; bit < 8; bit++) {
                c[byte] ^= (guint8)(1u << bit);
                ShimmerCtlwrapError e = unwrap_raw(p->rx, c, len, NULL, NULL);
                if (e == SHIMMER_CTLWRAP_OK)
                    g_error("%s: accepted a flip of bit %d of byte %zu", p->name, bit, byte);
                c[byte] ^= (guint8)(1u << bit);
            }
        }
        /* Failures left the receiver as it was: the original still passes. */
        ShimmerCtlwrapInfo info;
        g_assert_cmpint(unwrap_raw(p->rx, c, len, NULL, &info), ==, SHIMMER_CTLWRAP_OK);
    }
    free_pairings(pairs);
}

static void test_wkc(void)
{
    guint8 kc[256], md[SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN + 1], wkc[1100];
    gsize md_len, wkc_len;

    /* The fixture (made by openvpn --genkey) unwraps... */
    g_assert_cmpint(shimmer_ctlwrap_unwrap_wkc(v2_server_key, v2_client.wkc, v2_client.wkc_len, kc,
                                               md, sizeof(md), &md_len),
                    ==, SHIMMER_CTLWRAP_OK);
    g_assert_cmpmem(kc, 256, v2_client.kc, 256);
    g_assert_cmpuint(md_len, ==, 9);
    g_assert_cmpuint(md[0], ==, 0x01);
    /* ...and wrapping the same Kc and metadata gives OpenVPN's bytes back. */
    g_assert_cmpint(
        shimmer_ctlwrap_wrap_wkc(v2_server_key, kc, md, md_len, wkc, sizeof(wkc), &wkc_len), ==,
        SHIMMER_CTLWRAP_OK);
    g_assert_cmpmem(wkc, wkc_len, v2_client.wkc, v2_client.wkc_len);

    /* Every single-bit change of WKc is caught. */
    g_autofree guint8 *c = g_memdup2(v2_client.wkc, v2_client.wkc_len);
    for (gsize byte = 0; byte < v2_client.wkc_len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            c[byte] ^= (guint8)(1u << bit);
            ShimmerCtlwrapError e = shimmer_ctlwrap_unwrap_wkc(v2_server_key, c, v2_client.wkc_len,
                                                               kc, md, sizeof(md), &md_len);
            g_assert_true(e == SHIMMER_CTLWRAP_ERR_WKC_AUTH ||
                          e == SHIMMER_CTLWRAP_ERR_WKC_MALFORMED);
            c[byte] ^= (guint8)(1u << bit);
        }
    }
    /* On failure nothing of the key is left behind. */
    for (int i = 0; i < 256; i++)
        g_assert_cmpuint(kc[i], ==, 0);

    /* Another server key: only the first 32 bytes of each 64-byte half
     * (cipher at 0, hmac at 64) are key material. */
    for (gsize i = 0; i < SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN; i++) {
        guint8 sk[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];
        gboolean used = i < 32 || (i >= 64 && i < 96);
        memcpy(sk, v2_server_key, sizeof(sk));
        sk[i] ^= 0x80;
        g_assert_cmpint(shimmer_ctlwrap_unwrap_wkc(sk, v2_client.wkc, v2_client.wkc_len, kc, md,
                                                   sizeof(md), &md_len),
                        ==, used ? SHIMMER_CTLWRAP_ERR_WKC_AUTH : SHIMMER_CTLWRAP_OK);
    }

    /* Length out of range, or a length field that does not match. */
    g_assert_cmpint(shimmer_ctlwrap_unwrap_wkc(v2_server_key, v2_client.wkc, v2_client.wkc_len - 1,
                                               kc, md, sizeof(md), &md_len),
                    ==, SHIMMER_CTLWRAP_ERR_WKC_MALFORMED);
    g_assert_cmpint(
        shimmer_ctlwrap_unwrap_wkc(v2_server_key, v2_client.wkc, 289, kc, md, sizeof(md), &md_len),
        ==, SHIMMER_CTLWRAP_ERR_WKC_MALFORMED);
    /* Metadata that does not fit the caller's buffer. */
    g_assert_cmpint(shimmer_ctlwrap_unwrap_wkc(v2_server_key, v2_client.wkc, v2_client.wkc_len, kc,
                                               md, 8, &md_len),
                    ==, SHIMMER_CTLWRAP_ERR_NO_SPACE);

    /* Every metadata size round-trips, up to the 1024-byte WKc limit. */
    guint8 kc_in[256];
    for (int i = 0; i < 256; i++)
        kc_in[i] = (guint8)(255 - i);
    for (gsize n = 0; n <= SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN; n += (n < 40 ? 1 : 97)) {
        guint8 mdi[SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN];
        for (gsize i = 0; i < n; i++)
            mdi[i] = (guint8)(i * 13);
        g_assert_cmpint(
            shimmer_ctlwrap_wrap_wkc(v2_server_key, kc_in, mdi, n, wkc, sizeof(wkc), &wkc_len), ==,
            SHIMMER_CTLWRAP_OK);
        g_assert_cmpuint(wkc_len, ==, 290 + n);
        g_assert_cmpint(
            shimmer_ctlwrap_unwrap_wkc(v2_server_key, wkc, wkc_len, kc, md, sizeof(md), &md_len),
            ==, SHIMMER_CTLWRAP_OK);
        g_assert_cmpmem(kc, 256, kc_in, 256);
        g_assert_cmpmem(md, md_len, mdi, n);
    }
    {
        guint8 mdi[SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN] = {0};
        g_assert_cmpint(shimmer_ctlwrap_wrap_wkc(v2_server_key, kc_in, mdi,
                                                 SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN, wkc,
                                                 sizeof(wkc), &wkc_len),
                        ==, SHIMMER_CTLWRAP_OK);
        g_assert_cmpuint(wkc_len, ==, 1024);
        g_autoptr(ShimmerCtlwrap) tmp =
            shimmer_ctlwrap_new_tls_crypt_v2_client(kc_in, wkc, wkc_len);
        g_assert_nonnull(tmp);
    }
    g_assert_cmpint(shimmer_ctlwrap_wrap_wkc(v2_server_key, kc_in, md,
                                             SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN + 1, wkc,
                                             sizeof(wkc), &wkc_len),
                    ==, SHIMMER_CTLWRAP_ERR_INVALID);
    g_assert_cmpint(shimmer_ctlwrap_wrap_wkc(v2_server_key, kc_in, NULL, 0, wkc, 289, &wkc_len), ==,
                    SHIMMER_CTLWRAP_ERR_NO_SPACE);

    /* The client constructor checks WKc's framing. */
    g_assert_null(shimmer_ctlwrap_new_tls_crypt_v2_client(v2_client.kc, v2_client.wkc,
                                                          v2_client.wkc_len - 1));
    g_assert_null(shimmer_ctlwrap_new_tls_crypt_v2_client(v2_client.kc, v2_client.wkc, 100));
    g_assert_null(shimmer_ctlwrap_new_tls_crypt_v2_client(v2_client.kc, NULL, 300));
}

static void test_wkc_in_packet(void)
{
    /* Tampering with the WKc part of a V3 (not the tls-crypt part). */
    g_autoptr(ShimmerCtlwrap) c = new_v2_client();
    g_autoptr(ShimmerCtlwrap) s = shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key);
    g_autoptr(GBytes) reset = v3_reset(SID_C);
    g_autoptr(GBytes) wire = wrap(c, reset, NOW);
    gsize len;
    const guint8 *wd = g_bytes_get_data(wire, &len);
    g_autofree guint8 *w = g_memdup2(wd, len);
    gsize wkc_off = len - v2_client.wkc_len;

    w[wkc_off + 5] ^= 1; /* T */
    g_assert_cmpint(unwrap_raw(s, w, len, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_WKC_AUTH);
    w[wkc_off + 5] ^= 1;
    w[wkc_off + 100] ^= 1; /* encrypted Kc */
    g_assert_cmpint(unwrap_raw(s, w, len, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_WKC_AUTH);
    w[wkc_off + 100] ^= 1;
    w[len - 1] ^= 1; /* length: now it names a different start */
    g_assert_cmpint(unwrap_raw(s, w, len, NULL, NULL), !=, SHIMMER_CTLWRAP_OK);
    w[len - 1] ^= 1;
    /* A length beyond the packet. */
    w[len - 2] = 0x03;
    w[len - 1] = 0xff;
    g_assert_cmpint(unwrap_raw(s, w, len, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_TRUNCATED);
    w[len - 2] = 0x04;
    w[len - 1] = 0x01;
    g_assert_cmpint(unwrap_raw(s, w, len, NULL, NULL), ==, SHIMMER_CTLWRAP_ERR_WKC_MALFORMED);
    /* WKc stripped entirely. */
    g_assert_cmpint(unwrap_raw(s, w, wkc_off, NULL, NULL), !=, SHIMMER_CTLWRAP_OK);
}

/* ---- replay counter ---- */

static guint32 wire_pid(ShimmerCtlwrap *w, GBytes *plain, guint32 now, guint32 *time)
{
    g_autoptr(GBytes) wire = wrap(w, plain, now);
    const guint8 *d = g_bytes_get_data(wire, NULL);
    gsize off = 9;
    if (shimmer_ctlwrap_get_mode(w) == SHIMMER_CTLWRAP_TLS_AUTH)
        off += 20;
    *time = (guint32)d[off + 4] << 24 | d[off + 5] << 16 | d[off + 6] << 8 | d[off + 7];
    return (guint32)d[off] << 24 | d[off + 1] << 16 | d[off + 2] << 8 | d[off + 3];
}

static void test_replay_counter(void)
{
    g_autoptr(GBytes) plain = a_control_packet();
    g_autoptr(ShimmerCtlwrap) a =
        shimmer_ctlwrap_new_tls_auth(ta_key, SHIMMER_CTLWRAP_DIGEST_SHA1, 0);
    g_autoptr(ShimmerCtlwrap) t =
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_CLIENT);
    g_autoptr(ShimmerCtlwrap) v = new_v2_client();
    guint32 time;

    /* Starts at 1, grows by one, and the first packet's time sticks. */
    g_assert_cmpuint(wire_pid(a, plain, 100, &time), ==, 1);
    g_assert_cmpuint(time, ==, 100);
    g_assert_cmpuint(wire_pid(a, plain, 200, &time), ==, 2);
    g_assert_cmpuint(time, ==, 100);
    g_assert_cmpuint(wire_pid(t, plain, 300, &time), ==, 1);
    g_assert_cmpuint(wire_pid(t, plain, 301, &time), ==, 2);
    g_assert_cmpuint(time, ==, 300);
    g_assert_cmpuint(wire_pid(v, plain, 400, &time), ==, 0x0f000001);
    g_assert_cmpuint(wire_pid(v, plain, 400, &time), ==, 0x0f000002);

    /* Overrides. */
    shimmer_ctlwrap_set_next_pid(a, 77);
    g_assert_cmpuint(shimmer_ctlwrap_get_next_pid(a), ==, 77);
    g_assert_cmpuint(wire_pid(a, plain, 100, &time), ==, 77);
    shimmer_ctlwrap_set_next_pid(a, 0);
    g_assert_cmpuint(shimmer_ctlwrap_get_next_pid(a), ==, 1);

    /* The last pid, then exhaustion until time moves on. */
    shimmer_ctlwrap_set_next_pid(t, G_MAXUINT32);
    g_assert_cmpuint(wire_pid(t, plain, 300, &time), ==, G_MAXUINT32);
    g_assert_cmpuint(shimmer_ctlwrap_get_next_pid(t), ==, 0);
    guint8 out[512];
    gsize out_len;
    gsize plen;
    const guint8 *p = g_bytes_get_data(plain, &plen);
    g_assert_cmpint(shimmer_ctlwrap_wrap(t, p, plen, 300, out, sizeof(out), &out_len), ==,
                    SHIMMER_CTLWRAP_ERR_PID_EXHAUSTED);
    g_assert_cmpint(shimmer_ctlwrap_wrap(t, p, plen, 299, out, sizeof(out), &out_len), ==,
                    SHIMMER_CTLWRAP_ERR_PID_EXHAUSTED);
    g_assert_cmpuint(wire_pid(t, plain, 301, &time), ==, 1);
    g_assert_cmpuint(time, ==, 301);

    /* Mode none has no counter and reports no replay fields. */
    g_autoptr(ShimmerCtlwrap) n = shimmer_ctlwrap_new_none();
    ShimmerCtlwrapInfo info;
    g_assert_cmpint(unwrap(n, plain, NULL, &info), ==, SHIMMER_CTLWRAP_OK);
    g_assert_false(info.has_replay);
}

/* ---- argument and buffer errors ---- */

static void test_errors(void)
{
    GPtrArray *pairs = make_pairings();
    g_autoptr(ShimmerCtlwrap) none = shimmer_ctlwrap_new_none();
    g_ptr_array_add(pairs, NULL);
    for (guint i = 0; i < pairs->len; i++) {
        Pairing *p = g_ptr_array_index(pairs, i);
        ShimmerCtlwrap *tx = p ? p->tx : none, *rx = p ? p->rx : none;
        g_autoptr(GBytes) plain = p ? g_bytes_ref(p->plain) : a_control_packet();
        gsize plen, out_len = 0;
        const guint8 *pl = g_bytes_get_data(plain, &plen);
        gsize need = plen + shimmer_ctlwrap_overhead(tx, shimmer_packet_opcode(pl[0]));
        g_autofree guint8 *out = g_malloc(need);
        ShimmerCtlwrapInfo info;

        /* Every short output buffer, when wrapping and when unwrapping. */
        guint32 pid = shimmer_ctlwrap_get_next_pid(tx);
        for (gsize size = 0; size < need; size++)
            g_assert_cmpint(shimmer_ctlwrap_wrap(tx, pl, plen, NOW, out, size, &out_len), ==,
                            SHIMMER_CTLWRAP_ERR_NO_SPACE);
        /* Nothing was consumed by the failures. */
        g_assert_cmpuint(shimmer_ctlwrap_get_next_pid(tx), ==, pid);
        g_assert_cmpint(shimmer_ctlwrap_wrap(tx, pl, plen, NOW, out, need, &out_len), ==,
                        SHIMMER_CTLWRAP_OK);
        g_autofree guint8 *back = g_malloc(need);
        gsize back_len;
        for (gsize size = 0; size < plen; size++)
            g_assert_cmpint(shimmer_ctlwrap_unwrap(rx, out, out_len, back, size, &back_len, &info),
                            ==, SHIMMER_CTLWRAP_ERR_NO_SPACE);
        g_assert_cmpint(shimmer_ctlwrap_unwrap(rx, out, out_len, back, plen, &back_len, &info), ==,
                        SHIMMER_CTLWRAP_OK);
        g_assert_cmpmem(back, back_len, pl, plen);

        /* Too short to be a control packet, and data opcodes. */
        g_assert_cmpint(shimmer_ctlwrap_wrap(tx, pl, 8, NOW, out, need, &out_len), ==,
                        SHIMMER_CTLWRAP_ERR_INVALID);
        g_assert_cmpint(shimmer_ctlwrap_wrap(tx, NULL, 0, NOW, out, need, &out_len), ==,
                        SHIMMER_CTLWRAP_ERR_INVALID);
        g_autofree guint8 *data = g_memdup2(pl, plen);
        data[0] = shimmer_packet_op_byte(SHIMMER_OP_DATA_V2, 0);
        g_assert_cmpint(shimmer_ctlwrap_wrap(tx, data, plen, NOW, out, need, &out_len), ==,
                        SHIMMER_CTLWRAP_ERR_BAD_OPCODE);
        g_assert_cmpint(shimmer_ctlwrap_unwrap(rx, data, plen, back, need, &back_len, &info), ==,
                        SHIMMER_CTLWRAP_ERR_BAD_OPCODE);
        g_assert_cmpint(shimmer_ctlwrap_unwrap(rx, NULL, 0, back, need, &back_len, &info), ==,
                        SHIMMER_CTLWRAP_ERR_TRUNCATED);
    }
    g_ptr_array_remove_index(pairs, pairs->len - 1); /* the NULL sentinel */
    free_pairings(pairs);

    /* The WKc opcodes exist only with tls-crypt-v2. */
    g_autoptr(GBytes) v3 = v3_reset(SID_C);
    gsize len, out_len;
    const guint8 *d = g_bytes_get_data(v3, &len);
    guint8 out[512];
    ShimmerCtlwrapInfo info;
    g_autoptr(ShimmerCtlwrap) tc =
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_CLIENT);
    g_autoptr(ShimmerCtlwrap) ts =
        shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_SERVER);
    g_autoptr(ShimmerCtlwrap) ta = shimmer_ctlwrap_new_tls_auth(ta_key, 0, 0);
    g_assert_cmpint(shimmer_ctlwrap_wrap(tc, d, len, NOW, out, sizeof(out), &out_len), ==,
                    SHIMMER_CTLWRAP_ERR_BAD_OPCODE);
    g_assert_cmpint(shimmer_ctlwrap_wrap(ta, d, len, NOW, out, sizeof(out), &out_len), ==,
                    SHIMMER_CTLWRAP_ERR_BAD_OPCODE);
    g_assert_cmpint(shimmer_ctlwrap_wrap(none, d, len, NOW, out, sizeof(out), &out_len), ==,
                    SHIMMER_CTLWRAP_ERR_BAD_OPCODE);
    g_autoptr(ShimmerCtlwrap) v = new_v2_client();
    g_autoptr(GBytes) wire = wrap(v, v3, NOW);
    g_assert_cmpint(unwrap(ts, wire, NULL, &info), ==, SHIMMER_CTLWRAP_ERR_BAD_OPCODE);

    for (int e = SHIMMER_CTLWRAP_OK; e <= SHIMMER_CTLWRAP_ERR_INVALID; e++)
        g_assert_nonnull(shimmer_ctlwrap_error_to_string(e));
    shimmer_ctlwrap_free(NULL);
}

/* ---- bytes captured from the real OpenVPN 2.6.14 with the fixture keys ---- */

static GBytes *from_hex(const char *hex)
{
    gsize n = strlen(hex) / 2;
    guint8 *b = g_malloc(n);
    for (gsize i = 0; i < n; i++)
        b[i] =
            (guint8)(g_ascii_xdigit_value(hex[2 * i]) << 4 | g_ascii_xdigit_value(hex[2 * i + 1]));
    return g_bytes_new_take(b, n);
}

static void assert_reset(GBytes *plain, guint opcode, const char *sid_hex)
{
    ShimmerControlPacket cp;
    gsize len;
    const guint8 *d = g_bytes_get_data(plain, &len);
    g_autoptr(GBytes) sid = from_hex(sid_hex);
    g_assert_cmpint(shimmer_packet_parse_control(d, len, &cp), ==, SHIMMER_PACKET_OK);
    g_assert_cmpuint(cp.opcode, ==, opcode);
    g_assert_cmpmem(cp.session_id, 8, g_bytes_get_data(sid, NULL), 8);
    g_assert_cmpuint(cp.msg_pid, ==, 0);
}

static void test_openvpn_vectors(void)
{
    ShimmerCtlwrapInfo info;

    /* openvpn --client --tls-auth ta.key 1 --auth SHA512: HARD_RESET_CLIENT_V2. */
    {
        g_autoptr(GBytes) pkt = from_hex(
            "38d53ee28da63bc6d65a155ddb172660ecd20e449fdf36b01febb9b87a2a2c99801e5e12b5cc8bb7"
            "26f41c426b22e3ce2c98cd6f47c412c0045eb12eb5001c372860409c5649232b95000000016b0757"
            "f10000000000");
        g_autoptr(ShimmerCtlwrap) w =
            shimmer_ctlwrap_new_tls_auth(ta_key, SHIMMER_CTLWRAP_DIGEST_SHA512, 0);
        g_autoptr(GBytes) plain = NULL;
        g_assert_cmpint(unwrap(w, pkt, &plain, &info), ==, SHIMMER_CTLWRAP_OK);
        assert_reset(plain, SHIMMER_OP_HARD_RESET_CLIENT_V2, "d53ee28da63bc6d6");
        g_assert_cmpuint(info.replay_pid, ==, 1);
        g_assert_cmpuint(info.replay_time, ==, 0x6b0757f1);
        /* Our wrapper, given the same pid and time, produces the same bytes. */
        g_autoptr(ShimmerCtlwrap) k1 =
            shimmer_ctlwrap_new_tls_auth(ta_key, SHIMMER_CTLWRAP_DIGEST_SHA512, 1);
        g_autoptr(GBytes) again = wrap(k1, plain, 0x6b0757f1);
        g_assert_true(g_bytes_equal(again, pkt));
    }
    /* openvpn --client --tls-crypt tc.key. */
    {
        g_autoptr(GBytes) pkt = from_hex(
            "38db3123f2ad8dcb63000000016b0757f1a4158ca2d83fa7c76d5d35d17759ee4c50b31d5a234a38"
            "16b3195a3ccd009fd31ed451dece");
        g_autoptr(ShimmerCtlwrap) w =
            shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_SERVER);
        g_autoptr(GBytes) plain = NULL;
        g_assert_cmpint(unwrap(w, pkt, &plain, &info), ==, SHIMMER_CTLWRAP_OK);
        assert_reset(plain, SHIMMER_OP_HARD_RESET_CLIENT_V2, "db3123f2ad8dcb63");
        g_autoptr(ShimmerCtlwrap) c =
            shimmer_ctlwrap_new_tls_crypt(tc_key, SHIMMER_CTLWRAP_ROLE_CLIENT);
        g_autoptr(GBytes) again = wrap(c, plain, 0x6b0757f1);
        g_assert_true(g_bytes_equal(again, pkt));
    }
    /* openvpn --client --tls-crypt-v2 tc-v2-client.key: HARD_RESET_CLIENT_V3. */
    g_autoptr(ShimmerCtlwrap) v2s = shimmer_ctlwrap_new_tls_crypt_v2_server(v2_server_key);
    {
        g_autoptr(GBytes) pkt = from_hex(
            "508fb51e6be55be3ff0f0000016b0757f1cab186022990da48fb2b73ce5a99d7c575615080864059"
            "a2bcc2e47afe84225a090e060f7cee7917574782585aa85250ffc7c5d19f47c5f5f43650c01df2f1"
            "9900d7d29a03f41747b8f15132727a2a9658cffdec8a13eb02a31a19335707e4bbba39817bb93d4b"
            "30e2d61f58c965865bccb5d1d7b41ffe280f489532b5819018551c942031bd3e6d4bce336b1d61f2"
            "3aee1e82afafcb4c63978ed80cc14c423e6e42f3c2b91194bd2e85388fb17f41d52060979687782c"
            "22e0a72928dcb395e067d779380bde3806a7ff4a7af3b19945541c7f1a7298ce665f070ed2d932b9"
            "90b5e0822ac69a7157be0d0ae3235853bce728285e9a6004481bc39bee7bf368ec720abdbff0a4ee"
            "213a3ac49395c6ac16782a5ef4281c0682c6fa73e9b8379686e33dfcc6a9f83b419742a29c7474d5"
            "4dbeab261cffbd5b11f64f4efaccaeb994d3c50f4e492e3c372eb95d015cc2012b");
        g_autoptr(GBytes) plain = NULL;
        g_assert_cmpint(unwrap(v2s, pkt, &plain, &info), ==, SHIMMER_CTLWRAP_OK);
        assert_reset(plain, SHIMMER_OP_HARD_RESET_CLIENT_V3, "8fb51e6be55be3ff");
        g_assert_cmpuint(info.replay_pid, ==, 0x0f000001);
        g_assert_true(info.client_key_installed);
        g_autoptr(ShimmerCtlwrap) c = new_v2_client();
        g_autoptr(GBytes) again = wrap(c, plain, 0x6b0757f1);
        g_assert_true(g_bytes_equal(again, pkt));
    }
    /* openvpn --mode server --tls-crypt-v2: the stateless answer to a V3 of
     * ours, carrying the "resend WKc" TLV. */
    {
        g_autoptr(GBytes) pkt = from_hex(
            "40dfacfff9f0209776000000016b075827c675d5886ac4ecf413f3ee8378fc08fc451bc14a3e50f5"
            "ff56775005c60cee0ba754c6816bfa72a0475b6912f22aa2427bfc69243e2314");
        g_autoptr(ShimmerCtlwrap) c = new_v2_client();
        g_autoptr(GBytes) plain = NULL;
        ShimmerControlPacket cp;
        g_assert_cmpint(unwrap(c, pkt, &plain, &info), ==, SHIMMER_CTLWRAP_OK);
        gsize len;
        const guint8 *d = g_bytes_get_data(plain, &len);
        g_assert_cmpint(shimmer_packet_parse_control(d, len, &cp), ==, SHIMMER_PACKET_OK);
        g_assert_cmpuint(cp.opcode, ==, SHIMMER_OP_HARD_RESET_SERVER_V2);
        g_assert_cmpuint(cp.n_acks, ==, 1);
        g_assert_cmpuint(cp.acks[0], ==, 0);
        g_assert_cmpmem(cp.remote_session_id, 8, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
        g_assert_cmpmem(cp.payload, cp.payload_len, "\x00\x01\x00\x02\x00\x01", 6);
        g_assert_cmpuint(info.replay_pid, ==, 1);
        /* The server side of the same key (installed above) made it. */
        g_autoptr(GBytes) again = wrap(v2s, plain, 0x6b075827);
        g_assert_true(g_bytes_equal(again, pkt));
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    load_keys();
    g_test_add_func("/ctlwrap/none", test_none);
    g_test_add_func("/ctlwrap/tls-auth/round-trip", test_tls_auth);
    g_test_add_func("/ctlwrap/tls-auth/wrong-direction", test_tls_auth_wrong_direction);
    g_test_add_func("/ctlwrap/tls-crypt/round-trip", test_tls_crypt);
    g_test_add_func("/ctlwrap/tls-crypt-v2/round-trip", test_tls_crypt_v2);
    g_test_add_func("/ctlwrap/tls-crypt-v2/server-state", test_tls_crypt_v2_server_state);
    g_test_add_func("/ctlwrap/tls-crypt-v2/wkc", test_wkc);
    g_test_add_func("/ctlwrap/tls-crypt-v2/wkc-in-packet", test_wkc_in_packet);
    g_test_add_func("/ctlwrap/key-bytes", test_key_bytes);
    g_test_add_func("/ctlwrap/truncation", test_truncation);
    g_test_add_func("/ctlwrap/bit-flips", test_bit_flips);
    g_test_add_func("/ctlwrap/replay-counter", test_replay_counter);
    g_test_add_func("/ctlwrap/errors", test_errors);
    g_test_add_func("/ctlwrap/openvpn-vectors", test_openvpn_vectors);
    return g_test_run();
}
