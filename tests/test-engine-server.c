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
    g_autofree char *sx = g_strdup_printf(
        "%s%s%s", wraps[cc->wrap], cc->cipher ? "data-ciphers " : "", cc->cipher ? cc->cipher : "");
    g_autofree char *sextra = g_strdup_printf("%s\n%s", sx, cc->tcp ? "proto tcp-server\n" : "");
    SrvNet *n = srvnet_new(sextra);
    g_autofree char *cextra =
        g_strdup_printf("%s%s", client_wraps[cc->wrap], cc->tcp ? "proto tcp-client\n" : "");
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

/* ---------- credentials ---------- */

static gboolean client_failed(SrvNet *n, gpointer data)
{
    SrvCli *c = data;
    return shimmer_engine_get_state(c->e) == SHIMMER_STATE_FAILED;
}

static gboolean client_connected(SrvNet *n, gpointer data)
{
    SrvCli *c = data;
    return shimmer_engine_get_state(c->e) == SHIMMER_STATE_CONNECTED;
}

static const char *last_text(SrvCli *c, ShimmerEventType type)
{
    for (guint i = c->events->len; i > 0; i--) {
        SrvCliEvent *ev = g_ptr_array_index(c->events, i - 1);
        if (ev->type == type)
            return ev->text;
    }
    return NULL;
}

/* The first server event of TYPE; there must be one. */
static SrvEvent *srv_event(SrvNet *n, ShimmerDispatchEventType type)
{
    gint i = srvnet_find_srv_event(n, type);
    if (i < 0)
        g_error("no server event of type %d", type);
    return g_ptr_array_index(n->srv_events, i);
}

static void test_password(void)
{
    for (guint right = 0; right < 2; right++) {
        SrvNet *n = srvnet_new("tls-crypt tc.key\n");
        shimmer_dispatch_set_check_credentials(n->d, TRUE);
        n->auth = SRVNET_AUTH_PASSWORD;
        n->password = "s3cret";
        g_autofree char *extra =
            g_strdup_printf("tls-crypt tc.key\n<auth-user-pass>\nalice\n%s\n</auth-user-pass>\n",
                            right ? "s3cret" : "wrong");
        SrvCli *c = srvnet_add_client(n, extra);
        srvnet_run(n, n->now + 10 * US, right ? client_connected : client_failed, c);
        SrvEvent *ev = srv_event(n, SHIMMER_DISPATCH_EVENT_AUTH_REQUEST);
        g_assert_cmpstr(ev->username, ==, "alice");
        g_assert_cmpstr(ev->common_name, ==, "client.shimmer.test");
        if (right) {
            g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_CONNECTED);
            ShimmerPeerInfo info;
            GArray *ids = shimmer_dispatch_list_peers(n->d);
            g_assert_true(shimmer_dispatch_get_peer(n->d, g_array_index(ids, guint64, 0), &info));
            g_assert_cmpstr(info.username, ==, "alice");
            g_array_unref(ids);
        } else {
            g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_FAILED);
            g_assert_cmpstr(last_text(c, SHIMMER_EVENT_AUTH_FAILED), ==, "wrong password");
            /* And the server let it go. */
            srvnet_run(n, n->now + 5 * US, NULL, NULL);
            g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
        }
        srvnet_free(n);
    }
}

/* A client without user name and password where the server wants one. */
static void test_password_missing(void)
{
    SrvNet *n = srvnet_new("");
    shimmer_dispatch_set_check_credentials(n->d, TRUE);
    SrvCli *c = srvnet_add_client(n, "");
    srvnet_run(n, n->now + 10 * US, client_failed, c);
    g_assert_cmpstr(last_text(c, SHIMMER_EVENT_AUTH_FAILED), ==, "no user name and password");
    g_assert_cmpint(srvnet_find_srv_event(n, SHIMMER_DISPATCH_EVENT_AUTH_REQUEST), ==, -1);
    srvnet_free(n);
}

static void test_deferred(void)
{
    SrvNet *n = srvnet_new("");
    shimmer_dispatch_set_check_credentials(n->d, TRUE);
    n->auth = SRVNET_AUTH_HOLD;
    SrvCli *c = srvnet_add_client(n, "<auth-user-pass>\nbob\npw\n</auth-user-pass>\n");
    /* Waits: no push reply while the decision is out. */
    srvnet_run(n, n->now + 20 * US, NULL, NULL);
    g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_GETTING_CONFIG);
    SrvEvent *ev = srv_event(n, SHIMMER_DISPATCH_EVENT_AUTH_REQUEST);
    g_assert_cmpstr(ev->password, ==, "pw");
    shimmer_dispatch_auth_reply(n->d, ev->id, SHIMMER_AUTH_ACCEPT, NULL, n->now);
    g_assert_true(srvnet_run(n, n->now + 10 * US, client_connected, c));
    /* An answer for a client that is gone, or twice, changes nothing. */
    shimmer_dispatch_auth_reply(n->d, ev->id, SHIMMER_AUTH_DENY, "late", n->now);
    shimmer_dispatch_auth_reply(n->d, 12345, SHIMMER_AUTH_DENY, "nobody", n->now);
    srvnet_pump(n);
    g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_CONNECTED);
    srvnet_free(n);

    /* Never answered: refused after hand-window. */
    n = srvnet_new("hand-window 15\n");
    shimmer_dispatch_set_check_credentials(n->d, TRUE);
    n->auth = SRVNET_AUTH_HOLD;
    c = srvnet_add_client(n, "<auth-user-pass>\nbob\npw\n</auth-user-pass>\n");
    g_assert_true(srvnet_run(n, n->now + 30 * US, client_failed, c));
    g_assert_cmpstr(last_text(c, SHIMMER_EVENT_AUTH_FAILED), ==, "authentication timed out");
    srvnet_free(n);
}

static void test_auth_token(void)
{
    SrvNet *n = srvnet_new("auth-gen-token\nreneg-sec 0\n");
    shimmer_dispatch_set_check_credentials(n->d, TRUE);
    n->auth = SRVNET_AUTH_PASSWORD;
    n->password = "pw";
    SrvCli *c = srvnet_add_client(n, "<auth-user-pass>\ncarol\npw\n</auth-user-pass>\n"
                                     "reneg-sec 20\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    /* (The client keeps the pushed token to itself: what shows it was
     * used is that nobody asked again.) Renegotiations authenticate with the token: no new request.
     */
    srvnet_run(n, n->now + 70 * US, NULL, NULL);
    ShimmerEngineStats st;
    shimmer_engine_get_stats(c->e, &st);
    g_assert_cmpuint(st.renegotiations, >=, 3);
    g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_CONNECTED);
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_AUTH_REQUEST), ==, 1);
    /* A new session (the server restarts it) comes back with the token,
     * which the server takes without asking again. */
    GArray *ids = shimmer_dispatch_list_peers(n->d);
    g_assert_true(shimmer_dispatch_kick(n->d, g_array_index(ids, guint64, 0), NULL, n->now));
    g_array_unref(ids);
    srvnet_run(n, n->now + 3 * US, NULL, NULL);
    g_assert_true(srvnet_run(n, n->now + 20 * US, client_connected, c));
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_CONNECTED), ==, 2);
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_AUTH_REQUEST), ==, 1);
    srvnet_free(n);
}

static void test_auth_token_forged(void)
{
    SrvNet *n = srvnet_new("auth-gen-token 60\n");
    shimmer_dispatch_set_check_credentials(n->d, TRUE);
    n->auth = SRVNET_AUTH_PASSWORD;
    n->password = "pw";
    /* A token-shaped password that this server did not make is just a
     * wrong password. */
    SrvCli *c =
        srvnet_add_client(n, "<auth-user-pass>\ncarol\nSESS_ID_AT_"
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
                             "</auth-user-pass>\n");
    g_assert_true(srvnet_run(n, n->now + 10 * US, client_failed, c));
    SrvEvent *ev = srv_event(n, SHIMMER_DISPATCH_EVENT_AUTH_REQUEST);
    g_assert_nonnull(ev->password);
    srvnet_free(n);
}

/* verify-client-cert optional: a client without a certificate comes in on
 * its password, named by its user name; one with a certificate is still
 * checked. */
static void test_optional_client_cert(void)
{
    SrvNet *n = srvnet_new("verify-client-cert optional\nusername-as-common-name\n"
                           "plugin /usr/lib/openvpn/openvpn-plugin-auth-pam.so login\n");
    n->auth = SRVNET_AUTH_PASSWORD;
    n->password = "pw";
    srvnet_add_client(n, "# no cert\n<auth-user-pass>\ndave\npw\n</auth-user-pass>\n");
    srvnet_add_client(n, "<auth-user-pass>\nerin\npw\n</auth-user-pass>\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_AUTH_REQUEST), ==, 2);
    GArray *ids = shimmer_dispatch_list_peers(n->d);
    g_assert_cmpuint(ids->len, ==, 2);
    ShimmerPeerInfo info;
    g_assert_true(shimmer_dispatch_get_peer(n->d, g_array_index(ids, guint64, 0), &info));
    g_assert_cmpstr(info.common_name, ==, "dave");
    g_assert_true(shimmer_dispatch_get_peer(n->d, g_array_index(ids, guint64, 1), &info));
    g_assert_cmpstr(info.common_name, ==, "erin");
    g_array_unref(ids);
    srvnet_free(n);
}

/* ---------- the push reply ---------- */

static void test_push_ccd(void)
{
    SrvNet *n = srvnet_new("client-config-dir /nonexistent\n"
                           "push \"route 10.50.0.0 255.255.0.0\"\n"
                           "push \"route 10.51.0.0 255.255.0.0\"\n"
                           "push \"dhcp-option DNS 10.8.0.53\"\n");
    g_hash_table_insert(n->ccd, g_strdup("client.shimmer.test"),
                        g_strdup("push-remove 10.51.0.0\npush \"route 10.52.0.0 255.255.0.0\"\n"));
    SrvCli *c = srvnet_add_client(n, "");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    const ShimmerConfig *p = shimmer_engine_get_pushed(c->e);
    g_assert_cmpuint(p->routes->len, ==, 2);
    g_assert_cmpstr(((ShimmerRoute *)g_ptr_array_index(p->routes, 0))->network, ==, "10.50.0.0");
    g_assert_cmpstr(((ShimmerRoute *)g_ptr_array_index(p->routes, 1))->network, ==, "10.52.0.0");
    g_assert_cmpuint(p->dhcp_options->len, ==, 1);
    g_assert_cmpstr(p->route_gateway, ==, "10.8.0.1");
    srvnet_free(n);

    n = srvnet_new("client-config-dir /nonexistent\npush \"route 10.50.0.0 255.255.0.0\"\n");
    g_hash_table_insert(n->ccd, g_strdup("client.shimmer.test"), g_strdup("push-reset\n"));
    c = srvnet_add_client(n, "");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    p = shimmer_engine_get_pushed(c->e);
    g_assert_cmpuint(p->routes->len, ==, 0);
    /* What makes the address usable stays. */
    g_assert_cmpint(p->topology, ==, SHIMMER_TOPOLOGY_SUBNET);
    g_assert_cmpstr(p->ifconfig_local, ==, "10.8.0.2");
    srvnet_free(n);
}

/* A push reply over 1024 bytes goes out in parts (push-continuation). */
static void test_push_continuation(void)
{
    GString *extra = g_string_new(NULL);
    for (guint i = 0; i < 80; i++)
        g_string_append_printf(extra, "push \"route 10.%u.%u.0 255.255.255.0\"\n", 100 + i / 200,
                               i % 200);
    SrvNet *n = srvnet_new(extra->str);
    g_string_free(extra, TRUE);
    SrvCli *c = srvnet_add_client(n, "");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    const ShimmerConfig *p = shimmer_engine_get_pushed(c->e);
    g_assert_cmpuint(p->routes->len, ==, 80);
    g_assert_cmpstr(p->ifconfig_local, ==, "10.8.0.2");
    g_assert_cmpstr(shimmer_engine_get_cipher(c->e), ==, "AES-256-GCM");
    srvnet_free(n);
}

static void test_no_shared_cipher(void)
{
    SrvNet *n = srvnet_new("data-ciphers CHACHA20-POLY1305\n");
    SrvCli *c = srvnet_add_client(n, "data-ciphers AES-128-GCM\n");
    g_assert_true(srvnet_run(n, n->now + 10 * US, client_failed, c));
    g_assert_true(g_str_has_prefix(last_text(c, SHIMMER_EVENT_AUTH_FAILED),
                                   "Data channel cipher negotiation failed"));
    srvnet_free(n);
}

/* ---------- renegotiation, keepalive, the end ---------- */

static void test_renegotiation(gconstpointer data)
{
    gboolean by_server = GPOINTER_TO_INT(data);
    SrvNet *n = srvnet_new(by_server ? "tls-crypt tc.key\nreneg-sec 30\n"
                                     : "tls-crypt tc.key\nreneg-sec 0\n");
    SrvCli *c = srvnet_add_client(n, by_server ? "tls-crypt tc.key\nreneg-sec 0\n"
                                               : "tls-crypt tc.key\nreneg-sec 20\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    for (guint round = 0; round < 10; round++) {
        srvnet_run(n, n->now + 10 * US, NULL, NULL);
        assert_round_trip(n, c, (guint8)round);
    }
    ShimmerEngineStats st;
    shimmer_engine_get_stats(c->e, &st);
    /* 100 s: reneg-sec 30 less up to 10% jitter, or 20. */
    g_assert_cmpuint(st.renegotiations, >=, 3);
    g_assert_cmpuint(st.renegotiations, <=, 5);
    g_assert_cmpint(shimmer_engine_get_state(c->e), ==, SHIMMER_STATE_CONNECTED);
    srvnet_free(n);
}

static void test_keepalive(void)
{
    SrvNet *n = srvnet_new("tls-crypt tc.key\n");
    SrvCli *c = srvnet_add_client(n, "tls-crypt tc.key\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    /* Idle but alive: pings both ways keep it. */
    srvnet_run(n, n->now + 300 * US, NULL, NULL);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 1);
    /* The client vanishes: the server waits twice the pushed 60 s. */
    gint64 gone_from = n->now;
    srvnet_remove_client(n, c);
    srvnet_run(n, n->now + 200 * US, NULL, NULL);
    SrvEvent *ev = srv_event(n, SHIMMER_DISPATCH_EVENT_GONE);
    g_assert_cmpstr(ev->reason, ==, "nothing received for ping-restart seconds");
    g_assert_cmpint(n->now - gone_from, >=, 110 * US);
    srvnet_free(n);
}

static gboolean server_saw_gone(SrvNet *n, gpointer data)
{
    return srvnet_find_srv_event(n, SHIMMER_DISPATCH_EVENT_GONE) >= 0;
}

static void test_client_exit(gconstpointer data)
{
    gboolean tcp = GPOINTER_TO_INT(data);
    SrvNet *n = srvnet_new(tcp ? "proto tcp-server\n" : "");
    SrvCli *c = srvnet_add_client(n, tcp ? "proto tcp-client\n" : "explicit-exit-notify 2\n");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    gint64 t = n->now;
    shimmer_engine_stop(c->e, n->now);
    g_assert_true(srvnet_run(n, n->now + 5 * US, server_saw_gone, NULL));
    SrvEvent *ev = srv_event(n, SHIMMER_DISPATCH_EVENT_GONE);
    /* cc-exit: the EXIT control message, at once. */
    g_assert_cmpstr(ev->reason, ==, "the client disconnected");
    g_assert_cmpint(n->now - t, <, 5 * US);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    srvnet_free(n);
}

static void test_server_stop(void)
{
    SrvNet *n = srvnet_new("duplicate-cn\n");
    SrvCli *a = srvnet_add_client(n, "");
    SrvCli *b = srvnet_add_client(n, "");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    shimmer_dispatch_stop(n->d, n->now);
    srvnet_pump(n);
    /* Both heard RESTART and try again; the server takes nobody new. */
    g_assert_cmpint(srvnet_find_cli_event(a, SHIMMER_EVENT_STATE, SHIMMER_STATE_RECONNECTING), >=,
                    0);
    g_assert_cmpint(srvnet_find_cli_event(b, SHIMMER_EVENT_STATE, SHIMMER_STATE_RECONNECTING), >=,
                    0);
    srvnet_run(n, n->now + 10 * US, NULL, NULL);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_GONE), ==, 2);
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_CONNECTED), ==, 2);
    srvnet_free(n);
}

static void test_kick_halt(void)
{
    SrvNet *n = srvnet_new("");
    SrvCli *c = srvnet_add_client(n, "");
    g_assert_true(srvnet_connect_all(n, 10 * US));
    GArray *ids = shimmer_dispatch_list_peers(n->d);
    g_assert_cmpuint(ids->len, ==, 1);
    g_assert_true(shimmer_dispatch_kick(n->d, g_array_index(ids, guint64, 0), "HALT,bye", n->now));
    g_assert_false(shimmer_dispatch_kick(n->d, 999, NULL, n->now));
    g_array_unref(ids);
    g_assert_true(srvnet_run(n, n->now + 5 * US, client_failed, c));
    srvnet_run(n, n->now + 3 * US, NULL, NULL);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    srvnet_free(n);
}

/* ---------- handshakes on threads (the dispatcher's offload) ---------- */

static guint64 only_peer(SrvNet *n)
{
    GArray *ids = shimmer_dispatch_list_peers(n->d);
    g_assert_cmpuint(ids->len, ==, 1);
    guint64 id = g_array_index(ids, guint64, 0);
    g_array_unref(ids);
    return id;
}

/* Twenty clients at once, their handshakes on two threads: all in, with
 * the engines' lines in the log (they reach it when a job is done). */
static void test_offload_crowd(void)
{
    SrvNet *n = srvnet_new("duplicate-cn\n");
    srvnet_set_offload(n, TRUE);
    for (int i = 0; i < 20; i++)
        srvnet_add_client(n, "");
    g_assert_true(srvnet_connect_all(n, 20 * US));
    g_assert_cmpuint(srvnet_count_srv_events(n, SHIMMER_DISPATCH_EVENT_CONNECTED), ==, 20);
    g_assert_cmpuint(n->jobs_run, >=, 20);
    g_assert_true(srvnet_log_has(n, "TLS handshake done"));
    for (guint i = 0; i < n->clients->len; i++)
        assert_round_trip(n, g_ptr_array_index(n->clients, i), (guint8)i);
    srvnet_free(n);
}

/* While a job has a client's engine the dispatcher leaves it be: it shows
 * as authenticating, nothing of it is written, and a kick waits for the
 * job's end; a client whose connection closes meanwhile is freed then. */
static void test_offload_busy(void)
{
    SrvNet *n = srvnet_new("");
    srvnet_set_offload(n, TRUE);
    n->hold = TRUE;
    SrvCli *c = srvnet_add_client(n, "");
    srvnet_pump(n);
    guint64 id = only_peer(n);
    ShimmerDispatchJob *job = shimmer_dispatch_take_job(n->d);
    g_assert_nonnull(job);
    g_assert_null(shimmer_dispatch_take_job(n->d));
    ShimmerPeerInfo info;
    g_assert_true(shimmer_dispatch_get_peer(n->d, id, &info));
    g_assert_cmpint(info.state, ==, SHIMMER_STATE_AUTHENTICATING);
    g_assert_null(info.common_name);
    g_assert_true(shimmer_dispatch_kick(n->d, id, "HALT,bye", n->now));
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    ShimmerLinkAddr to;
    g_assert_cmpint(shimmer_dispatch_write_pkt(n->d, buf, sizeof(buf), &to, n->now), ==, 0);
    shimmer_dispatch_job_run(job, n->now);
    shimmer_dispatch_job_done(n->d, job, n->now);
    /* The kick, applied at the job's end, ends the session. */
    n->hold = FALSE;
    srvnet_pump(n);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    g_assert_true(srvnet_log_has(n, "disconnected by the server"));
    g_assert_cmpint(srvnet_find_srv_event(n, SHIMMER_DISPATCH_EVENT_CONNECTED), <, 0);
    srvnet_remove_client(n, c);

    /* Its connection closes while a job has it. */
    n->hold = TRUE;
    srvnet_add_client(n, "");
    srvnet_pump(n);
    id = only_peer(n);
    job = shimmer_dispatch_take_job(n->d);
    g_assert_nonnull(job);
    ShimmerPeerInfo gone;
    g_assert_true(shimmer_dispatch_get_peer(n->d, id, &gone));
    shimmer_dispatch_link_closed(n->d, &gone.addr, n->now);
    g_assert_cmpuint(shimmer_dispatch_get_n_peers(n->d), ==, 0);
    while (shimmer_dispatch_write_pkt(n->d, buf, sizeof(buf), &to, n->now) > 0)
        ;
    shimmer_dispatch_job_run(job, n->now);
    shimmer_dispatch_job_done(n->d, job, n->now);
    g_assert_false(shimmer_dispatch_get_peer(n->d, id, &gone));
    srvnet_free(n);
}

/* ---------- the engines alone ---------- */

static gint64 pair_realtime(gpointer user)
{
    return SRVNET_WALL0;
}

/* A server engine that takes the client's hard reset itself: no
 * dispatcher, no cookie. */
static void test_engine_pair(void)
{
    g_autofree char *dir = srvnet_data_dir();
    static const char stext[] = "port 1194\nproto udp\ndev tun\ntopology subnet\n"
                                "server 10.8.0.0 255.255.255.0\nca ca.crt\ncert server.crt\n"
                                "key server.key\ndh none\ntls-crypt tc.key\nkeepalive 10 60\n";
    g_autoptr(ShimmerConfig) scfg =
        shimmer_config_parse("s.conf", dir, stext, strlen(stext), shimmer_config_file_loader, NULL);
    g_assert_false(shimmer_config_has_errors(scfg));
    g_autoptr(ShimmerConfig) ccfg = srvnet_client_config("tls-crypt tc.key\n");
    ShimmerEngineHooks hooks = {.realtime = pair_realtime};
    g_autoptr(GError) error = NULL;
    /* A client profile is no server's, and the other way round. */
    g_assert_null(shimmer_engine_new_server(ccfg, NULL, &hooks, &error));
    g_clear_error(&error);
    g_assert_null(shimmer_engine_new(scfg, &hooks, &error));
    g_clear_error(&error);
    g_autoptr(ShimmerEngine) shared = shimmer_engine_new_server(scfg, NULL, &hooks, &error);
    g_assert_no_error(error);
    g_autoptr(ShimmerEngine) srv = shimmer_engine_new_server(scfg, shared, &hooks, &error);
    g_assert_no_error(error);
    /* The engine holding the credentials serves nobody itself. */
    static const guint8 sid[8] = {0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4};
    g_assert_false(shimmer_engine_server_begin(shared, sid, NULL, 0, FALSE, SRVNET_T0, &error));
    g_clear_error(&error);
    g_assert_true(shimmer_engine_server_begin(srv, sid, NULL, 7, FALSE, SRVNET_T0, &error));
    g_autoptr(ShimmerEngine) cli = shimmer_engine_new(ccfg, &hooks, &error);
    g_assert_no_error(error);
    gint64 now = SRVNET_T0;
    shimmer_engine_start(cli, now);
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET], tun[SHIMMER_ENGINE_MAX_PACKET];
    gsize tun_len;
    gboolean asked = FALSE;
    for (guint round = 0; round < 200; round++) {
        ShimmerEvent ev;
        while (shimmer_engine_pop_event(cli, &ev)) {
            if (ev.type == SHIMMER_EVENT_CONNECT)
                shimmer_engine_transport_up(cli, FALSE, now);
            shimmer_event_clear(&ev);
        }
        while (shimmer_engine_pop_event(srv, &ev)) {
            if (ev.type == SHIMMER_EVENT_AUTH_REQUEST) {
                asked = TRUE;
                g_assert_cmpstr(ev.auth_request.common_name, ==, "client.shimmer.test");
                g_assert_null(ev.auth_request.username);
                g_assert_nonnull(strstr(ev.auth_request.peer_info, "IV_PROTO="));
                ShimmerServerClient sc = {.ifconfig_local = "10.8.0.9",
                                          .ifconfig_netmask = "255.255.255.0"};
                shimmer_engine_server_set_client(srv, &sc);
                shimmer_engine_auth_reply(srv, SHIMMER_AUTH_ACCEPT, NULL, now);
            }
            shimmer_event_clear(&ev);
        }
        gssize len;
        gboolean moved = FALSE;
        while ((len = shimmer_engine_write_pkt(cli, buf, sizeof(buf), now)) > 0) {
            shimmer_engine_recv(srv, buf, (gsize)len, now, tun, sizeof(tun), &tun_len, NULL);
            moved = TRUE;
        }
        while ((len = shimmer_engine_write_pkt(srv, buf, sizeof(buf), now)) > 0) {
            shimmer_engine_recv(cli, buf, (gsize)len, now, tun, sizeof(tun), &tun_len, NULL);
            moved = TRUE;
        }
        if (!moved && shimmer_engine_get_state(cli) == SHIMMER_STATE_CONNECTED)
            break;
        now += 1000;
    }
    g_assert_true(asked);
    g_assert_cmpint(shimmer_engine_get_state(cli), ==, SHIMMER_STATE_CONNECTED);
    g_assert_cmpint(shimmer_engine_get_state(srv), ==, SHIMMER_STATE_CONNECTED);
    const ShimmerConfig *p = shimmer_engine_get_pushed(cli);
    g_assert_cmpstr(p->ifconfig_local, ==, "10.8.0.9");
    g_assert_cmpint(p->peer_id, ==, 7);
    g_assert_cmpstr(shimmer_engine_get_common_name(srv), ==, "client.shimmer.test");
    g_assert_null(shimmer_engine_get_common_name(cli));
    /* Data both ways. */
    guint8 ip[100] = {0x45};
    gsize out_len = 0;
    g_assert_cmpint(shimmer_engine_encrypt(cli, ip, sizeof(ip), buf, sizeof(buf), now, &out_len),
                    ==, SHIMMER_ENCRYPT_OK);
    g_assert_cmpint(shimmer_engine_recv(srv, buf, out_len, now, tun, sizeof(tun), &tun_len, NULL),
                    ==, SHIMMER_RECV_TUN);
    g_assert_cmpint(shimmer_engine_encrypt(srv, ip, sizeof(ip), buf, sizeof(buf), now, &out_len),
                    ==, SHIMMER_ENCRYPT_OK);
    g_assert_cmpint(shimmer_engine_recv(cli, buf, out_len, now, tun, sizeof(tun), &tun_len, NULL),
                    ==, SHIMMER_RECV_TUN);
    g_assert_cmpuint(tun_len, ==, sizeof(ip));
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
    g_test_add_func("/server/password", test_password);
    g_test_add_func("/server/password-missing", test_password_missing);
    g_test_add_func("/server/deferred", test_deferred);
    g_test_add_func("/server/auth-token", test_auth_token);
    g_test_add_func("/server/auth-token-forged", test_auth_token_forged);
    g_test_add_func("/server/optional-client-cert", test_optional_client_cert);
    g_test_add_func("/server/push-ccd", test_push_ccd);
    g_test_add_func("/server/push-continuation", test_push_continuation);
    g_test_add_func("/server/no-shared-cipher", test_no_shared_cipher);
    g_test_add_data_func("/server/renegotiation/by-server", GINT_TO_POINTER(TRUE),
                         test_renegotiation);
    g_test_add_data_func("/server/renegotiation/by-client", GINT_TO_POINTER(FALSE),
                         test_renegotiation);
    g_test_add_func("/server/keepalive", test_keepalive);
    g_test_add_data_func("/server/client-exit/udp", GINT_TO_POINTER(FALSE), test_client_exit);
    g_test_add_data_func("/server/client-exit/tcp", GINT_TO_POINTER(TRUE), test_client_exit);
    g_test_add_func("/server/stop", test_server_stop);
    g_test_add_func("/server/kick-halt", test_kick_halt);
    g_test_add_func("/server/offload/crowd", test_offload_crowd);
    g_test_add_func("/server/offload/busy", test_offload_busy);
    g_test_add_func("/server/engine-pair", test_engine_pair);
    return g_test_run();
}
