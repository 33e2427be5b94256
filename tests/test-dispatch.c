/* SPDX-License-Identifier: MIT */
/*
 * The dispatcher packet by packet: the stateless cookie (its slots, its
 * binding to address and session id), replayed and spoofed first packets
 * (no state, no memory), the rate limit, tls-crypt-v2's early negotiation
 * and old path and max-age, routing by peer id, float (and a replay from
 * elsewhere that must not move a client), pools, ccd addresses and
 * iroutes, client-to-client, max-clients, TCP connections closing; and the
 * longest-prefix table and the pool on their own.
 */
#include <malloc.h>
#include <string.h>

#include "ctlwrap.h"
#include "ippool.h"
#include "keys.h"
#include "packet.h"
#include "route-table.h"
#include "server-net.h"

#define US ((gint64)G_USEC_PER_SEC)

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

/* ---------- hand-made first packets ---------- */

static ShimmerCtlwrap *client_tls_crypt(void)
{
    g_autoptr(GBytes) k = srvnet_fixture("tc.key");
    guint8 key[SHIMMER_STATIC_KEY_LEN];
    g_autoptr(GError) error = NULL;
    g_assert_true(
        shimmer_keys_parse_static(g_bytes_get_data(k, NULL), g_bytes_get_size(k), key, &error));
    return shimmer_ctlwrap_new_tls_crypt(key, SHIMMER_CTLWRAP_ROLE_CLIENT);
}

/* A wrapped control packet: OP, client SID, acks (N_ACKS of them, naming
 * REMOTE), msg pid. */
static gsize make_control(ShimmerCtlwrap *w, guint op, const guint8 sid[8], guint n_acks,
                          const guint32 *acks, const guint8 *remote, guint32 msg_pid, guint8 *out,
                          gsize cap)
{
    ShimmerControlPacket p = {0};
    p.opcode = (guint8)op;
    memcpy(p.session_id, sid, 8);
    p.n_acks = n_acks;
    for (guint i = 0; i < n_acks; i++)
        p.acks[i] = acks[i];
    if (n_acks > 0)
        memcpy(p.remote_session_id, remote, 8);
    p.has_msg_pid = op != SHIMMER_OP_ACK_V1;
    p.msg_pid = msg_pid;
    guint8 plain[256];
    gsize plain_len = 0, len = 0;
    g_assert_cmpint(shimmer_packet_build_control(&p, plain, sizeof(plain), &plain_len), ==,
                    SHIMMER_PACKET_OK);
    g_assert_cmpint(shimmer_ctlwrap_wrap(w, plain, plain_len, 1000, out, cap, &len), ==,
                    SHIMMER_CTLWRAP_OK);
    return len;
}

/* Unwraps the server's answer (tls-crypt, client side) into *CP; PLAIN
 * keeps the payload. */
static void parse_answer(ShimmerCtlwrap *w, const guint8 *pkt, gsize len, guint8 *plain,
                         ShimmerControlPacket *cp)
{
    gsize plain_len = 0;
    ShimmerCtlwrapInfo info;
    g_assert_cmpint(shimmer_ctlwrap_unwrap(w, pkt, len, plain, 2048, &plain_len, &info), ==,
                    SHIMMER_CTLWRAP_OK);
    g_assert_cmpint(shimmer_packet_parse_control(plain, plain_len, cp), ==, SHIMMER_PACKET_OK);
}

static const guint8 sid_a[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/* A reset from FROM: answered statelessly; the answer's session id (the
 * cookie) goes to COOKIE. */
static void reset_and_cookie(SrvNet *n, ShimmerCtlwrap *w, const ShimmerLinkAddr *from,
                             const guint8 sid[8], guint8 cookie[8])
{
    guint8 pkt[512], out[4096], plain[2048];
    gsize len =
        make_control(w, SHIMMER_OP_HARD_RESET_CLIENT_V2, sid, 0, NULL, NULL, 0, pkt, sizeof(pkt));
    gsize out_len = 0;
    ShimmerLinkAddr to;
    g_assert_cmpint(srvnet_inject(n, from, pkt, len, out, &out_len, &to), ==,
                    SHIMMER_DISPATCH_LINK);
    g_assert_true(memcmp(&to, from, sizeof(to)) == 0);
    ShimmerControlPacket cp;
    parse_answer(w, out, out_len, plain, &cp);
    g_assert_cmpuint(cp.opcode, ==, SHIMMER_OP_HARD_RESET_SERVER_V2);
    g_assert_cmpuint(cp.n_acks, ==, 1);
    g_assert_cmpuint(cp.acks[0], ==, 0);
    g_assert_cmpmem(cp.remote_session_id, 8, sid, 8);
    g_assert_cmpuint(cp.msg_pid, ==, 0);
    g_assert_cmpuint(cp.payload_len, ==, 0);
    memcpy(cookie, cp.session_id, 8);
}

static ShimmerDispatchResult third(SrvNet *n, ShimmerCtlwrap *w, const ShimmerLinkAddr *from,
                                   const guint8 sid[8], const guint8 cookie[8], guint32 ack)
{
    guint8 pkt[512], out[4096];
    gsize out_len = 0;
    ShimmerLinkAddr to;
    gsize len = make_control(w, SHIMMER_OP_ACK_V1, sid, 1, &ack, cookie, 0, pkt, sizeof(pkt));
    return srvnet_inject(n, from, pkt, len, out, &out_len, &to);
}

static void test_cookie(void)
{
    SrvNet *n = srvnet_new("tls-crypt tc.key\n");
    g_autoptr(ShimmerCtlwrap) w = client_tls_crypt();
    ShimmerLinkAddr a, b;
    srvnet_addr(&a, "198.51.100.7", 5000);
    srvnet_addr(&b, "198.51.100.8", 5000);
    guint8 c1[8], c2[8], c3[8];
    reset_and_cookie(n, w, &a, sid_a, c1);
    /* Deterministic within a slot; bound to the address and the session. */
    reset_and_cookie(n, w, &a, sid_a, c2);
    g_assert_cmpmem(c1, 8, c2, 8);
    reset_and_cookie(n, w, &b, sid_a, c3);
    g_assert_true(memcmp(c1, c3, 8) != 0);
    guint8 other_sid[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    reset_and_cookie(n, w, &a, other_sid, c3);
    g_assert_true(memcmp(c1, c3, 8) != 0);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);

    /* The third packet must come from the address the cookie was made for,
     * name it, and ack no more than the reset. */
    g_assert_cmpint(third(n, w, &b, sid_a, c1, 0), ==, SHIMMER_DISPATCH_DROPPED);
    guint8 wrong[8];
    memcpy(wrong, c1, 8);
    wrong[0] ^= 1;
    g_assert_cmpint(third(n, w, &a, sid_a, wrong, 0), ==, SHIMMER_DISPATCH_DROPPED);
    g_assert_cmpint(third(n, w, &a, sid_a, c1, 5), ==, SHIMMER_DISPATCH_DROPPED);
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.bad_cookie, ==, 3);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);

    /* Valid for the current slot and the two before it (hand-window 60:
     * slots of 30 s), not later. */
    n->now += 50 * US;
    g_assert_cmpint(third(n, w, &a, sid_a, c1, 0), ==, SHIMMER_DISPATCH_CONSUMED);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 1);
    guint8 c4[8];
    reset_and_cookie(n, w, &b, sid_a, c4);
    n->now += 95 * US;
    g_assert_cmpint(third(n, w, &b, sid_a, c4, 0), ==, SHIMMER_DISPATCH_DROPPED);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 1);
    srvnet_free(n);
}

/* Replayed and spoofed first packets keep nothing: no client, no memory. */
static void test_flood(void)
{
    SrvNet *n = srvnet_new("tls-crypt tc.key\n");
    shimmer_dispatch_set_rate_limit(n->d, 1000000, 1000000);
    g_autoptr(ShimmerCtlwrap) w = client_tls_crypt();
    guint8 pkt[512], out[4096];
    gsize len =
        make_control(w, SHIMMER_OP_HARD_RESET_CLIENT_V2, sid_a, 0, NULL, NULL, 0, pkt, sizeof(pkt));
    /* Warm up (first allocations of the tables) before measuring. */
    ShimmerLinkAddr from, to;
    gsize out_len;
    srvnet_addr(&from, "203.0.113.1", 1);
    srvnet_inject(n, &from, pkt, len, out, &out_len, &to);
    struct mallinfo2 before = mallinfo2();
    guint answered = 0;
    for (guint i = 0; i < 20000; i++) {
        g_autofree char *ip = g_strdup_printf("203.0.%u.%u", 113 + i / 250 % 3, i % 250 + 1);
        srvnet_addr(&from, ip, (guint16)(1024 + i));
        /* The same reset replayed from everywhere, and garbage. */
        if (srvnet_inject(n, &from, pkt, len, out, &out_len, &to) == SHIMMER_DISPATCH_LINK)
            answered++;
        guint8 junk[64];
        for (guint k = 0; k < sizeof(junk); k++)
            junk[k] = (guint8)(i * 31 + k * 7);
        junk[0] = (guint8)(SHIMMER_OP_HARD_RESET_CLIENT_V2 << 3);
        g_assert_cmpint(srvnet_inject(n, &from, junk, sizeof(junk), out, &out_len, &to), ==,
                        SHIMMER_DISPATCH_DROPPED);
        junk[0] = (guint8)(SHIMMER_OP_ACK_V1 << 3);
        g_assert_cmpint(srvnet_inject(n, &from, junk, sizeof(junk), out, &out_len, &to), ==,
                        SHIMMER_DISPATCH_DROPPED);
        junk[0] = (guint8)(SHIMMER_OP_DATA_V2 << 3);
        g_assert_cmpint(srvnet_inject(n, &from, junk, sizeof(junk), out, &out_len, &to), ==,
                        SHIMMER_DISPATCH_DROPPED);
    }
    struct mallinfo2 after = mallinfo2();
    g_assert_cmpuint(answered, ==, 20000);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
#ifndef HAVE_ASAN
    /* Nothing kept: the heap in use did not grow (a little slack for the
     * allocator's own bookkeeping). */
    g_assert_cmpint((gssize)after.uordblks - (gssize)before.uordblks, <, 4096);
#else
    (void)before;
    (void)after;
#endif
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.first_invalid, ==, 40000);
    g_assert_cmpuint(st.peers_created, ==, 0);
    srvnet_free(n);
}

static void test_rate_limit(void)
{
    SrvNet *n = srvnet_new("");
    shimmer_dispatch_set_rate_limit(n->d, 10, 20);
    g_autoptr(ShimmerCtlwrap) none = shimmer_ctlwrap_new_none();
    guint8 pkt[512], out[4096];
    gsize out_len;
    ShimmerLinkAddr from, to;
    srvnet_addr(&from, "198.51.100.1", 1194);
    gsize len = make_control(none, SHIMMER_OP_HARD_RESET_CLIENT_V2, sid_a, 0, NULL, NULL, 0, pkt,
                             sizeof(pkt));
    guint answered = 0;
    for (guint i = 0; i < 100; i++)
        answered += srvnet_inject(n, &from, pkt, len, out, &out_len, &to) == SHIMMER_DISPATCH_LINK;
    g_assert_cmpuint(answered, ==, 20); /* the burst */
    /* Half a second refills five. */
    n->now += US / 2;
    answered = 0;
    for (guint i = 0; i < 100; i++)
        answered += srvnet_inject(n, &from, pkt, len, out, &out_len, &to) == SHIMMER_DISPATCH_LINK;
    g_assert_cmpuint(answered, ==, 5);
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.resets_limited, ==, 175);
    g_assert_cmpuint(st.resets_answered, ==, 25);
    /* A limited server still lets a client that has its cookie in. */
    srvnet_free(n);
}

/* OpenVPN's connect-freq-initial MAX SECONDS sets the limit: bursts of
 * MAX, MAX / SECONDS a second after. */
static void test_connect_freq_initial(void)
{
    SrvNet *n = srvnet_new("connect-freq-initial 8 2\n");
    g_autoptr(ShimmerCtlwrap) none = shimmer_ctlwrap_new_none();
    guint8 pkt[512], out[4096];
    gsize out_len;
    ShimmerLinkAddr from, to;
    srvnet_addr(&from, "198.51.100.1", 1194);
    gsize len = make_control(none, SHIMMER_OP_HARD_RESET_CLIENT_V2, sid_a, 0, NULL, NULL, 0, pkt,
                             sizeof(pkt));
    guint answered = 0;
    for (guint i = 0; i < 100; i++)
        answered += srvnet_inject(n, &from, pkt, len, out, &out_len, &to) == SHIMMER_DISPATCH_LINK;
    g_assert_cmpuint(answered, ==, 8);
    n->now += US / 2;
    answered = 0;
    for (guint i = 0; i < 100; i++)
        answered += srvnet_inject(n, &from, pkt, len, out, &out_len, &to) == SHIMMER_DISPATCH_LINK;
    g_assert_cmpuint(answered, ==, 2);
    srvnet_free(n);
}

/* ---------- tls-crypt-v2 ---------- */

static void v2_client_key(guint8 kc[256], guint8 *wkc, gsize *wkc_len, gint64 created)
{
    g_autoptr(GBytes) sk = srvnet_fixture("tc-v2-server.key");
    guint8 server_key[128];
    g_autoptr(GError) error = NULL;
    g_assert_true(shimmer_keys_parse_tls_crypt_v2_server(g_bytes_get_data(sk, NULL),
                                                         g_bytes_get_size(sk), server_key, &error));
    for (guint i = 0; i < 256; i++)
        kc[i] = (guint8)(i * 13 + 1);
    guint8 md[9] = {0x01};
    for (int i = 0; i < 8; i++)
        md[1 + i] = (guint8)((guint64)created >> (56 - 8 * i));
    g_assert_cmpint(shimmer_ctlwrap_wrap_wkc(server_key, kc, md, sizeof(md), wkc, 1024, wkc_len),
                    ==, SHIMMER_CTLWRAP_OK);
}

static void test_v2_paths(void)
{
    SrvNet *n = srvnet_new("tls-crypt-v2 tc-v2-server.key\ntls-crypt-v2-max-age 30\n");
    guint8 kc[256], wkc[1024];
    gsize wkc_len = 0;
    v2_client_key(kc, wkc, &wkc_len, SRVNET_WALL0 - 86400);
    guint8 pkt[2048], out[4096], plain[2048];
    gsize out_len;
    ShimmerLinkAddr from, to;
    srvnet_addr(&from, "198.51.100.2", 7000);

    /* Early negotiation: answered statelessly, with the resend-WKc flag. */
    g_autoptr(ShimmerCtlwrap) early = shimmer_ctlwrap_new_tls_crypt_v2_client(kc, wkc, wkc_len);
    gsize len = make_control(early, SHIMMER_OP_HARD_RESET_CLIENT_V3, sid_a, 0, NULL, NULL, 0, pkt,
                             sizeof(pkt));
    g_assert_cmpint(srvnet_inject(n, &from, pkt, len, out, &out_len, &to), ==,
                    SHIMMER_DISPATCH_LINK);
    ShimmerControlPacket cp;
    parse_answer(early, out, out_len, plain, &cp);
    g_assert_cmpuint(cp.opcode, ==, SHIMMER_OP_HARD_RESET_SERVER_V2);
    static const guint8 tlv[6] = {0, 1, 0, 2, 0, 1};
    g_assert_cmpmem(cp.payload, cp.payload_len, tlv, sizeof(tlv));
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    /* The client's CONTROL_WKC_V1 with the cookie makes the client. */
    guint8 cookie[8];
    memcpy(cookie, cp.session_id, 8);
    guint32 ack0 = 0;
    len = make_control(early, SHIMMER_OP_CONTROL_WKC_V1, sid_a, 1, &ack0, cookie, 1, pkt,
                       sizeof(pkt));
    g_assert_cmpint(srvnet_inject(n, &from, pkt, len, out, &out_len, &to), ==,
                    SHIMMER_DISPATCH_CONSUMED);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 1);

    /* The old path (a replay counter not at 0x0f000000): the key is in the
     * reset only, so the reset itself makes the client; its engine answers
     * without the flag. */
    g_autoptr(ShimmerCtlwrap) old = shimmer_ctlwrap_new_tls_crypt_v2_client(kc, wkc, wkc_len);
    shimmer_ctlwrap_set_next_pid(old, 1);
    ShimmerLinkAddr from2;
    srvnet_addr(&from2, "198.51.100.3", 7001);
    len = make_control(old, SHIMMER_OP_HARD_RESET_CLIENT_V3, sid_a, 0, NULL, NULL, 0, pkt,
                       sizeof(pkt));
    g_assert_cmpint(srvnet_inject(n, &from2, pkt, len, out, &out_len, &to), ==,
                    SHIMMER_DISPATCH_CONSUMED);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 2);
    srvnet_run_jobs(n);
    gssize w = 0;
    gboolean found = FALSE;
    while ((w = shimmer_dispatch_write_pkt(n->d, out, sizeof(out), &to, n->now)) > 0) {
        if (memcmp(&to, &from2, sizeof(to)) != 0)
            continue;
        parse_answer(old, out, (gsize)w, plain, &cp);
        g_assert_cmpuint(cp.opcode, ==, SHIMMER_OP_HARD_RESET_SERVER_V2);
        g_assert_cmpuint(cp.payload_len, ==, 0);
        g_assert_cmpuint(cp.acks[0], ==, 0);
        found = TRUE;
    }
    g_assert_true(found);

    /* tls-crypt-v2-max-age 30: a key made 31 days ago is refused. */
    v2_client_key(kc, wkc, &wkc_len, SRVNET_WALL0 - 31 * 86400);
    g_autoptr(ShimmerCtlwrap) stale = shimmer_ctlwrap_new_tls_crypt_v2_client(kc, wkc, wkc_len);
    len = make_control(stale, SHIMMER_OP_HARD_RESET_CLIENT_V3, sid_a, 0, NULL, NULL, 0, pkt,
                       sizeof(pkt));
    ShimmerLinkAddr from3;
    srvnet_addr(&from3, "198.51.100.4", 7002);
    g_assert_cmpint(srvnet_inject(n, &from3, pkt, len, out, &out_len, &to), ==,
                    SHIMMER_DISPATCH_DROPPED);
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.refused_expired, ==, 1);
    srvnet_free(n);
}

/* ---------- clients in the simulated network ---------- */

static void test_peer_id_routing(void)
{
    SrvNet *n = srvnet_new("tls-crypt tc.key\nduplicate-cn\n");
    SrvCli *c[3];
    for (guint i = 0; i < 3; i++)
        c[i] = srvnet_add_client(n, "tls-crypt tc.key\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    for (guint i = 0; i < 3; i++) {
        g_assert_cmpint(shimmer_engine_get_pushed(c[i]->e)->peer_id, ==, (gint)i);
        g_assert_true(srvnet_client_send(c[i], NULL, "10.8.0.1", 100, (guint8)i));
    }
    srvnet_pump(n);
    g_assert_cmpuint(n->srv_tun->len, ==, 3);
    /* Pool addresses in order. */
    g_assert_cmpstr(srvnet_client_ip(c[0]), ==, "10.8.0.2");
    g_assert_cmpstr(srvnet_client_ip(c[1]), ==, "10.8.0.3");
    g_assert_cmpstr(srvnet_client_ip(c[2]), ==, "10.8.0.4");
    /* A DATA_V2 naming a peer id nobody has. */
    guint8 junk[64] = {(guint8)(SHIMMER_OP_DATA_V2 << 3), 0, 0, 9};
    guint8 out[4096];
    gsize out_len;
    ShimmerLinkAddr to;
    g_assert_cmpint(srvnet_inject(n, &c[0]->addr, junk, sizeof(junk), out, &out_len, &to), ==,
                    SHIMMER_DISPATCH_DROPPED);
    /* A client's packet may only carry its own source address. */
    guint before = n->srv_tun->len;
    g_assert_true(srvnet_client_send(c[1], "10.8.0.2", "10.8.0.1", 100, 1));
    srvnet_pump(n);
    g_assert_cmpuint(n->srv_tun->len, ==, before);
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.bad_source, ==, 1);
    g_assert_cmpuint(st.no_peer, ==, 1);
    /* The tun side: packets for each client's address reach that client. */
    for (guint i = 0; i < 3; i++)
        g_assert_cmpint(srvnet_server_send(n, "10.8.0.1", srvnet_client_ip(c[i]), 80, 3), ==,
                        SHIMMER_DISPATCH_LINK);
    g_assert_cmpint(srvnet_server_send(n, "10.8.0.1", "10.8.0.99", 80, 3), ==,
                    SHIMMER_DISPATCH_DROPPED);
    srvnet_pump(n);
    for (guint i = 0; i < 3; i++)
        g_assert_cmpuint(c[i]->tun->len, ==, 1);
    srvnet_free(n);
}

typedef struct {
    GBytes *captured;
} Capture;

static gboolean capture_data(SrvNet *n, gboolean to_client, ShimmerLinkAddr *addr, GBytes *pkt)
{
    Capture *cap = n->filter_data;
    gsize len = 0;
    const guint8 *b = g_bytes_get_data(pkt, &len);
    if (!to_client && len > 0 && shimmer_packet_opcode(b[0]) == SHIMMER_OP_DATA_V2 &&
        cap->captured == NULL)
        cap->captured = g_bytes_ref(pkt);
    return TRUE;
}

static void test_float(void)
{
    SrvNet *n = srvnet_new("tls-crypt tc.key\n");
    SrvCli *c = srvnet_add_client(n, "tls-crypt tc.key\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    Capture cap = {0};
    n->filter = capture_data;
    n->filter_data = &cap;
    g_assert_true(srvnet_client_send(c, NULL, "10.8.0.1", 100, 1));
    srvnet_pump(n);
    n->filter = NULL;
    g_assert_nonnull(cap.captured);
    /* The same packet again from elsewhere: a replay, no float. */
    ShimmerLinkAddr evil, to;
    srvnet_addr(&evil, "203.0.113.66", 6666);
    guint8 out[4096];
    gsize out_len, len = 0;
    const guint8 *b = g_bytes_get_data(cap.captured, &len);
    g_assert_cmpint(srvnet_inject(n, &evil, b, len, out, &out_len, &to), ==,
                    SHIMMER_DISPATCH_DROPPED);
    g_assert_cmpint(srvnet_find_srv_event(n, SHIMMER_DISPATCH_EVENT_FLOATED), ==, -1);
    g_bytes_unref(cap.captured);

    /* The client moves (NAT rebinding): its next data packet moves it. */
    srvnet_addr(&c->addr, "192.0.2.99", 55555);
    g_assert_true(srvnet_client_send(c, NULL, "10.8.0.1", 100, 2));
    srvnet_pump(n);
    g_assert_cmpint(srvnet_find_srv_event(n, SHIMMER_DISPATCH_EVENT_FLOATED), >=, 0);
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.floats, ==, 1);
    /* Answers go to the new address; control traffic follows too (a
     * renegotiation by the server, long after). */
    guint before = c->tun->len;
    g_assert_cmpint(srvnet_server_send(n, "10.8.0.1", srvnet_client_ip(c), 80, 3), ==,
                    SHIMMER_DISPATCH_LINK);
    srvnet_pump(n);
    g_assert_cmpuint(c->tun->len, ==, before + 1);
    GArray *ids = shimmer_dispatch_list_peers(n->d);
    ShimmerPeerInfo info;
    g_assert_true(shimmer_dispatch_get_peer(n->d, g_array_index(ids, guint64, 0), &info));
    g_assert_cmpuint(info.addr.port, ==, 55555);
    g_array_unref(ids);
    ShimmerEngineStats cs0;
    shimmer_engine_get_stats(c->e, &cs0);
    g_assert_true(srvnet_run(n, n->now + 4000 * US, NULL, NULL) == FALSE);
    ShimmerEngineStats cs;
    shimmer_engine_get_stats(c->e, &cs);
    g_assert_cmpuint(cs.renegotiations, >, cs0.renegotiations);
    g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_CONNECTED);
    srvnet_free(n);
}

static void test_ccd_and_iroute(void)
{
    SrvNet *n = srvnet_new("tls-crypt tc.key\nclient-config-dir /nonexistent\nclient-to-client\n"
                           "duplicate-cn\n");
    g_hash_table_insert(n->ccd, g_strdup("client.shimmer.test"),
                        g_strdup("ifconfig-push 10.8.0.50 255.255.255.0\n"
                                 "iroute 10.9.0.0 255.255.255.0\n"
                                 "iroute-ipv6 fd00:9::/64\n"
                                 "push \"route 10.77.0.0 255.255.0.0\"\n"));
    SrvCli *c = srvnet_add_client(n, "tls-crypt tc.key\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    g_assert_cmpstr(srvnet_client_ip(c), ==, "10.8.0.50");
    const ShimmerConfig *p = shimmer_engine_get_pushed(c->e);
    g_assert_cmpuint(p->routes->len, ==, 1);
    g_assert_cmpstr(((ShimmerRoute *)g_ptr_array_index(p->routes, 0))->network, ==, "10.77.0.0");
    /* The network behind it: packets to it go to the client, packets from it
     * are the client's. */
    g_assert_cmpint(srvnet_server_send(n, "10.8.0.1", "10.9.0.7", 80, 1), ==,
                    SHIMMER_DISPATCH_LINK);
    g_assert_cmpint(srvnet_server_send(n, "10.8.0.1", "10.9.1.7", 80, 1), ==,
                    SHIMMER_DISPATCH_DROPPED);
    srvnet_pump(n);
    g_assert_cmpuint(c->tun->len, ==, 1);
    g_assert_true(srvnet_client_send(c, "10.9.0.7", "10.8.0.1", 80, 1));
    srvnet_pump(n);
    g_assert_cmpuint(n->srv_tun->len, ==, 1);
    g_autoptr(GPtrArray) iroutes = shimmer_dispatch_list_iroutes(n->d);
    g_assert_cmpuint(iroutes->len, ==, 2);
    /* A second session with the same static address is refused. */
    SrvCli *c2 = srvnet_add_client(n, "tls-crypt tc.key\n");
    srvnet_run(n, n->now + 10 * US, NULL, NULL);
    g_assert_cmpint(srvnet_find_cli_event(c2, SHIMMER_EVENT_AUTH_FAILED, -1), >=, 0);
    g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_CONNECTED);
    /* Gone: the address and the networks are free again. */
    shimmer_engine_stop(c->e, n->now);
    srvnet_run(n, n->now + 5 * US, NULL, NULL);
    g_autoptr(GPtrArray) after = shimmer_dispatch_list_iroutes(n->d);
    g_assert_cmpuint(after->len, ==, 0);
    g_assert_cmpint(srvnet_server_send(n, "10.8.0.1", "10.9.0.7", 80, 1), ==,
                    SHIMMER_DISPATCH_DROPPED);
    srvnet_free(n);
}

static void test_ccd_refusals(void)
{
    SrvNet *n = srvnet_new("tls-crypt tc.key\nclient-config-dir /nonexistent\nccd-exclusive\n");
    SrvCli *c = srvnet_add_client(n, "tls-crypt tc.key\n");
    srvnet_run(n, n->now + 10 * US, NULL, NULL);
    g_assert_cmpint(srvnet_find_cli_event(c, SHIMMER_EVENT_AUTH_FAILED, -1), >=, 0);
    g_assert_true(srvnet_log_has(n, "ccd-exclusive"));
    g_assert_cmpuint(n->ccd_loads, ==, 1);
    srvnet_free(n);

    n = srvnet_new("tls-crypt tc.key\nclient-config-dir /nonexistent\n");
    g_hash_table_insert(n->ccd, g_strdup("client.shimmer.test"), g_strdup("disable\n"));
    c = srvnet_add_client(n, "tls-crypt tc.key\n");
    srvnet_run(n, n->now + 10 * US, NULL, NULL);
    g_assert_cmpint(srvnet_find_cli_event(c, SHIMMER_EVENT_AUTH_FAILED, -1), >=, 0);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    srvnet_free(n);
}

static void test_client_to_client(void)
{
    for (guint c2c = 0; c2c < 2; c2c++) {
        SrvNet *n = srvnet_new(c2c ? "duplicate-cn\nclient-to-client\n" : "duplicate-cn\n");
        SrvCli *a = srvnet_add_client(n, "");
        SrvCli *b = srvnet_add_client(n, "");
        g_assert_true(srvnet_connect_all(n, 10 * US));
        g_assert_true(srvnet_client_send(a, NULL, srvnet_client_ip(b), 120, 5));
        srvnet_pump(n);
        /* Forwarded between the clients, or handed to the server's tun. */
        g_assert_cmpuint(b->tun->len, ==, c2c ? 1 : 0);
        g_assert_cmpuint(n->srv_tun->len, ==, c2c ? 0 : 1);
        ShimmerDispatchStats st;
        shimmer_dispatch_get_stats(n->d, &st);
        g_assert_cmpuint(st.forwarded, ==, c2c ? 1 : 0);
        srvnet_free(n);
    }
}

static gboolean old_one_restarted(SrvNet *n, gpointer data)
{
    return srvnet_find_cli_event(data, SHIMMER_EVENT_STATE, SHIMMER_STATE_RECONNECTING) >= 0;
}

static void test_max_clients_and_duplicates(void)
{
    SrvNet *n = srvnet_new("max-clients 2\nduplicate-cn\n");
    for (guint i = 0; i < 3; i++)
        srvnet_add_client(n, "");
    srvnet_run(n, n->now + 10 * US, NULL, NULL);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 2);
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.refused_full, >=, 1);
    srvnet_free(n);

    /* Without duplicate-cn a new session of a client replaces its old
     * one (the old one is told to RESTART). */
    n = srvnet_new("");
    SrvCli *a = srvnet_add_client(n, "");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    SrvCli *b = srvnet_add_client(n, "");
    /* (Both would go on replacing each other, as with OpenVPN: look at the
     * first round.) */
    g_assert_true(srvnet_run(n, n->now + 3 * US, old_one_restarted, a));
    g_assert_cmpint(shimmer_engine_get_state(b->e), ==, SHIMMER_STATE_CONNECTED);
    /* The old session is gone once its RESTART was acked or timed out. */
    srvnet_run(n, n->now + 2500 * 1000, NULL, NULL);
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_GONE), >=, 1);
    srvnet_free(n);
}

static void test_tcp_link_closed(void)
{
    SrvNet *n = srvnet_new("proto tcp-server\n");
    SrvCli *c = srvnet_add_client(n, "proto tcp-client\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 1);
    shimmer_dispatch_link_closed(n->d, &c->addr, n->now);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    srvnet_pump(n);
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_GONE), ==, 1);
    srvnet_free(n);
}

/* ---------- the pieces ---------- */

static void test_route_table(void)
{
    g_autoptr(ShimmerRouteTable) t = shimmer_route_table_new();
    int fam;
    guint8 a[16];
    guint bits;
    int v1 = 1, v2 = 2, v3 = 3, v6 = 6;
    g_assert_true(shimmer_route_parse_prefix("10.0.0.0/8", &fam, a, &bits));
    g_assert_true(shimmer_route_table_add(t, fam, a, bits, &v1));
    g_assert_false(shimmer_route_table_add(t, fam, a, bits, &v2));
    g_assert_true(shimmer_route_parse_prefix("10.1.0.0/16", &fam, a, &bits));
    g_assert_true(shimmer_route_table_add(t, fam, a, bits, &v2));
    g_assert_true(shimmer_route_parse_prefix("10.1.2.3", &fam, a, &bits));
    g_assert_cmpuint(bits, ==, 32);
    g_assert_true(shimmer_route_table_add(t, fam, a, bits, &v3));
    /* Host bits beyond the prefix do not matter. */
    g_assert_true(shimmer_route_parse_prefix("fd00:1::77/48", &fam, a, &bits));
    g_assert_true(shimmer_route_table_add(t, fam, a, bits, &v6));
    struct {
        const char *ip;
        gpointer want;
    } cases[] = {
        {"10.1.2.3", &v3},  {"10.1.2.4", &v2},         {"10.2.0.1", &v1},   {"11.0.0.1", NULL},
        {"fd00:1::1", &v6}, {"fd00:1:0:ffff::1", &v6}, {"fd00:2::1", NULL},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_assert_true(shimmer_route_parse_prefix(cases[i].ip, &fam, a, &bits));
        g_assert_true(shimmer_route_table_lookup(t, fam, a) == cases[i].want);
    }
    g_assert_cmpuint(shimmer_route_table_size(t), ==, 4);
    g_assert_true(shimmer_route_parse_prefix("10.1.0.0/16", &fam, a, &bits));
    g_assert_false(shimmer_route_table_remove(t, fam, a, bits, &v1));
    g_assert_true(shimmer_route_table_remove(t, fam, a, bits, &v2));
    g_assert_true(shimmer_route_parse_prefix("10.1.2.4", &fam, a, &bits));
    g_assert_true(shimmer_route_table_lookup(t, fam, a) == &v1);
    g_assert_false(shimmer_route_parse_prefix("10.1.2.4/33", &fam, a, &bits));
    g_assert_false(shimmer_route_parse_prefix("bogus", &fam, a, &bits));
    g_assert_cmpint(shimmer_route_netmask_bits("255.255.255.0"), ==, 24);
    g_assert_cmpint(shimmer_route_netmask_bits("255.0.255.0"), ==, -1);
    g_assert_cmpint(shimmer_route_netmask_bits("0.0.0.0"), ==, 0);
}

static gboolean taken_odd(gpointer user, const guint8 v4[4], const guint8 *v6)
{
    return v4[3] == 5;
}

static void test_ip_pool(void)
{
    ShimmerServerPlan plan = {
        .pool_start = (char *)"10.8.0.2",
        .pool_end = (char *)"10.8.0.6",
        .pool6_start = (char *)"fd00::1000",
        .pool6_bits = 64,
        .pool_size = 5,
    };
    g_autoptr(ShimmerIpPool) p = shimmer_ip_pool_new(&plan);
    guint s[6];
    g_assert_true(shimmer_ip_pool_alloc(p, "a", NULL, NULL, &s[0]));
    g_assert_true(shimmer_ip_pool_alloc(p, "b", NULL, NULL, &s[1]));
    /* .5 is someone's static address: skipped. */
    g_assert_true(shimmer_ip_pool_alloc(p, "c", taken_odd, NULL, &s[2]));
    g_assert_true(shimmer_ip_pool_alloc(p, "d", taken_odd, NULL, &s[3]));
    g_assert_cmpuint(s[0], ==, 0);
    g_assert_cmpuint(s[1], ==, 1);
    g_assert_cmpuint(s[2], ==, 2);
    g_assert_cmpuint(s[3], ==, 4);
    g_assert_false(shimmer_ip_pool_alloc(p, "e", taken_odd, NULL, &s[4]));
    g_assert_true(shimmer_ip_pool_alloc(p, "e", NULL, NULL, &s[4]));
    g_assert_false(shimmer_ip_pool_alloc(p, "f", NULL, NULL, &s[5]));
    guint8 v4[4], v6[16];
    shimmer_ip_pool_address4(p, s[3], v4);
    g_assert_cmpuint(v4[3], ==, 6);
    g_assert_true(shimmer_ip_pool_address6(p, s[3], v6));
    g_assert_cmpuint(v6[14], ==, 0x10);
    g_assert_cmpuint(v6[15], ==, 0x04);
    /* Back under its name: the same slot when it is free. */
    shimmer_ip_pool_release(p, s[1]);
    shimmer_ip_pool_release(p, s[0]);
    guint again;
    g_assert_true(shimmer_ip_pool_alloc(p, "b", NULL, NULL, &again));
    g_assert_cmpuint(again, ==, s[1]);
    g_assert_cmpuint(shimmer_ip_pool_used(p), ==, 4);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dispatch/cookie", test_cookie);
    g_test_add_func("/dispatch/flood", test_flood);
    g_test_add_func("/dispatch/rate-limit", test_rate_limit);
    g_test_add_func("/dispatch/connect-freq-initial", test_connect_freq_initial);
    g_test_add_func("/dispatch/tls-crypt-v2", test_v2_paths);
    g_test_add_func("/dispatch/peer-id-routing", test_peer_id_routing);
    g_test_add_func("/dispatch/float", test_float);
    g_test_add_func("/dispatch/ccd-iroute", test_ccd_and_iroute);
    g_test_add_func("/dispatch/ccd-refusals", test_ccd_refusals);
    g_test_add_func("/dispatch/client-to-client", test_client_to_client);
    g_test_add_func("/dispatch/max-clients-duplicates", test_max_clients_and_duplicates);
    g_test_add_func("/dispatch/tcp-link-closed", test_tcp_link_closed);
    g_test_add_func("/dispatch/route-table", test_route_table);
    g_test_add_func("/dispatch/ip-pool", test_ip_pool);
    return g_test_run();
}
