/* SPDX-License-Identifier: MIT */
/*
 * The server role against the client role, in memory: full handshakes of
 * Shimmer's client engine with the server (a dispatcher and its engines)
 * for every wrapping and data cipher, the push reply and what it carries,
 * credentials (accepted, refused, deferred, tokens), renegotiation started
 * by either side, keepalive, the exit notification both ways and RESTART at
 * shutdown. No sockets: packets move through queues on a simulated clock
 * (server-net.h).
 */
#include <string.h>

#include "server-net.h"

#define US ((gint64)G_USEC_PER_SEC)

static const char *const wraps[] = {
    "",
    "tls-auth ta.key 0\nauth SHA256\n",
    "tls-crypt tc.key\n",
    "tls-crypt-v2 tc-v2-server.key\n",
};
static const char *const client_wraps[] = {
    "",
    "tls-auth ta.key 1\nauth SHA256\n",
    "tls-crypt tc.key\n",
    "tls-crypt-v2 tc-v2-client.key\n",
};

static void assert_round_trip(SrvNet *n, SrvCli *c, guint8 tag)
{
    const char *ip = srvnet_client_ip(c);
    g_assert_nonnull(ip);
    guint before = n->srv_tun->len;
    g_assert_true(srvnet_client_send(c, NULL, "10.8.0.1", 200, tag));
    srvnet_pump(n);
    g_assert_cmpuint(n->srv_tun->len, ==, before + 1);
    GBytes *got = g_ptr_array_index(n->srv_tun, n->srv_tun->len - 1);
    gsize len = 0;
    const guint8 *b = g_bytes_get_data(got, &len);
    g_assert_cmpuint(len, ==, 200);
    g_assert_cmpuint(b[20], ==, (guint8)(tag + 20));
    guint cbefore = c->tun->len;
    g_assert_cmpint(srvnet_server_send(n, "10.8.0.1", ip, 300, tag), ==, SHIMMER_DISPATCH_LINK);
    srvnet_pump(n);
    g_assert_cmpuint(c->tun->len, ==, cbefore + 1);
    got = g_ptr_array_index(c->tun, c->tun->len - 1);
    b = g_bytes_get_data(got, &len);
    g_assert_cmpuint(len, ==, 300);
    g_assert_cmpuint(b[25], ==, (guint8)(tag + 25));
}

/* ---------- handshakes ---------- */

typedef struct {
    guint wrap;
    const char *cipher;
    gboolean tcp;
} ConnectCase;

static void test_connect(gconstpointer data)
{
    const ConnectCase *cc = data;
    g_autofree char *sx = g_strdup_printf("%s%s%s", wraps[cc->wrap],
                                          cc->cipher ? "data-ciphers " : "",
                                          cc->cipher ? cc->cipher : "");
    g_autofree char *sextra = g_strdup_printf("%s\n%s", sx, cc->tcp ? "proto tcp-server\n" : "");
    SrvNet *n = srvnet_new(sextra);
    g_autofree char *cextra = g_strdup_printf("%s%s", client_wraps[cc->wrap],
                                              cc->tcp ? "proto tcp-client\n" : "");
    SrvCli *c = srvnet_add_client(n, cextra);
    g_assert_true(srvnet_connect_all(n, 10 * US));
    if (cc->cipher != NULL)
        g_assert_cmpstr(shimmer_engine_get_cipher(c->e), ==, cc->cipher);
    else
        g_assert_cmpstr(shimmer_engine_get_cipher(c->e), ==, "AES-256-GCM");
    /* The first client gets the pool's first address, the server's /24. */
    const ShimmerConfig *p = shimmer_engine_get_pushed(c->e);
    g_assert_cmpstr(p->ifconfig_local, ==, "10.8.0.2");
    g_assert_cmpstr(p->ifconfig_remote, ==, "255.255.255.0");
    g_assert_cmpstr(p->ifconfig_ipv6_local, ==, "fd00:8::1000/64");
    g_assert_cmpint(p->peer_id, ==, 0);
    g_assert_true(p->protocol_flag_tls_ekm);
    g_assert_true(p->protocol_flag_cc_exit);
    g_assert_cmpint(p->ping, ==, 10);
    g_assert_cmpint(p->ping_restart, ==, 60);
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_CONNECTED), ==, 1);
    assert_round_trip(n, c, 7);
    ShimmerDispatchStats st;
    shimmer_dispatch_get_stats(n->d, &st);
    g_assert_cmpuint(st.resets_answered, ==, 1);
    g_assert_cmpuint(st.peers_created, ==, 1);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 1);
    srvnet_free(n);
}

/* ---------- main ---------- */

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    static const char *const wrap_names[] = {"none", "tls-auth", "tls-crypt", "tls-crypt-v2"};
    static ConnectCase cases[4 * 2];
    for (guint w = 0; w < 4; w++) {
        for (guint t = 0; t < 2; t++) {
            ConnectCase *cc = &cases[w * 2 + t];
            cc->wrap = w;
            cc->tcp = t;
            g_autofree char *path =
                g_strdup_printf("/server/connect/%s/%s", wrap_names[w], t ? "tcp" : "udp");
            g_test_add_data_func(path, cc, test_connect);
        }
    }
    static const char *const ciphers[] = {"AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"};
    static ConnectCase cipher_cases[3];
    for (guint i = 0; i < 3; i++) {
        cipher_cases[i].wrap = 2;
        cipher_cases[i].cipher = ciphers[i];
        g_autofree char *path = g_strdup_printf("/server/cipher/%s", ciphers[i]);
        g_test_add_data_func(path, &cipher_cases[i], test_connect);
    }
    return g_test_run();
}
