/* SPDX-License-Identifier: MIT */
/*
 * Engine unit tests: the client engine against TestServer, a fake OpenVPN 2.6
 * server assembled from the same building blocks (packet codec, ctlwrap in
 * the server role, reliable layer, data channel) plus a GnuTLS server
 * session. Both sides run in this one thread on injected time: the Net
 * harness moves packets between them through an in-memory link that can lose,
 * duplicate and reorder control packets, and jumps the clock straight to the
 * next deadline of either side, so a minute of protocol time costs
 * milliseconds and every run is the same.
 *
 * The TestServer is deliberately independent where the engine could hide a
 * mistake: its own key-method parser and writer, its own data keys from the
 * TLS exporter (with the Nettle backend while the engine uses GnuTLS), and
 * packet layouts checked on the raw bytes the engine emits.
 *
 * tests/fuzz/fuzz-engine.c includes this file with
 * SHIMMER_TEST_ENGINE_HARNESS_ONLY defined, to drive a connected engine with
 * the same server.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <lz4.h>
#include <lzo/lzo1x.h>
#include <string.h>

#include "config.h"
#include "ctlwrap.h"
#include "datachan.h"
#include "engine.h"
/* White box, for the few states a test cannot reach from outside in
 * reasonable time (a key at the end of its packet ids). */
#include "engine-core.h"
#include "kdf.h"
#include "keys.h"
#include "packet.h"
#include "reliable.h"
#include "replay.h"

#define US G_USEC_PER_SEC
#define MS 1000
/* An arbitrary start: nothing may depend on time starting at 0. */
#define T0 ((gint64)1000 * US)
/* The wall clock at T0, seconds since 1970: 2030-01-01, inside the test
 * certificates' validity. */
#define WALL0 ((gint64)1893456000)

static const guint8 ping_magic[16] = {0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb,
                                      0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48};

#define DEFAULT_PUSH                                                                               \
    "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,"                   \
    "ifconfig 10.8.0.2 255.255.255.0,peer-id 3,cipher AES-256-GCM,key-derivation tls-ekm"

/* ---------------------------------------------------------------------- */
/* Deterministic randomness (splitmix64): the engine's random hook, session
 * ids and every decision the link makes come from seeded generators, so a
 * failing seed fails the same way again. */

typedef struct {
    guint64 state;
} Prng;

static guint64 prng_u64(Prng *p)
{
    guint64 z = (p->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static guint32 prng_below(Prng *p, guint32 n)
{
    return n ? (guint32)(prng_u64(p) % n) : 0;
}

static gboolean prng_percent(Prng *p, guint percent)
{
    return prng_below(p, 100) < percent;
}

static void prng_fill(Prng *p, guint8 *buf, gsize len)
{
    for (gsize i = 0; i < len; i++)
        buf[i] = (guint8)prng_u64(p);
}

/* ---------------------------------------------------------------------- */
/* TestServer */

typedef struct TestServer TestServer;

/* One key state of the server (indexed by key id). */
typedef struct {
    TestServer *srv;
    gboolean used;
    guint8 key_id;
    ShimmerReliable *rel;
    gnutls_session_t tls;
    GByteArray *tls_out; /* TLS records not yet in the reliable layer */
    GByteArray *app_in;  /* decrypted application data not yet parsed */
    gboolean handshake_done;
    gboolean tls_failed;
    gboolean km_received;
    gboolean km_bad;
    guint8 c_pre_master[SHIMMER_PRE_MASTER_LEN];
    guint8 c_random1[SHIMMER_KM_RANDOM_LEN], c_random2[SHIMMER_KM_RANDOM_LEN];
    guint8 s_random1[SHIMMER_KM_RANDOM_LEN], s_random2[SHIMMER_KM_RANDOM_LEN];
    ShimmerDatachanKey *enc, *dec;
    ShimmerReplay replay;
} TsKey;

/* What the server is made of; the PEMs and keys are copied. */
typedef struct {
    GBytes *ca, *cert, *key;
    ShimmerWrapMode wrap;
    guint8 static_key[SHIMMER_STATIC_KEY_LEN];
    ShimmerCtlwrapDigest digest;
    guint8 v2_key[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];
} TsSetup;

/* A control packet the server accepted: the plain op byte, when, and the
 * replay pid it carried. */
typedef struct {
    guint8 op;
    gint64 at;
    guint32 replay_pid;
    guint32 msg_pid;
    gboolean has_msg_pid;
    guint n_acks;
    gsize payload_len;
} TsCtlIn;

struct TestServer {
    TsSetup setup;
    gnutls_certificate_credentials_t creds;
    ShimmerCtlwrap *wrap;
    ShimmerReplay ctl_replay;
    Prng rng;
    gint64 now;
    guint8 sid[8], client_sid[8];
    gboolean have_client;
    TsKey keys[8];
    gint primary; /* the key id that sends data; -1 none */
    GQueue *out;  /* GBytes: packets to the client */

    /* Behaviour, set by the tests. */
    GPtrArray *push_messages; /* answers to PUSH_REQUEST, one message each */
    gboolean answer_push;
    ShimmerDatachanCipher cipher;
    gboolean ekm;
    guint32 peer_id;    /* SHIMMER_DATACHAN_PEER_ID_NONE: DATA_V1 */
    gboolean early_neg; /* answer V3 with the "resend WKc" TLV and forget */
    gboolean silent;    /* drop everything, send nothing */
    guint km_trailing;  /* empty strings after the options in our KM record */
    gint64 ping_every;  /* keepalive: ping after this much send silence; 0 off */
    gint64 last_data_sent;

    /* Observations. */
    guint sessions;
    guint push_requests;
    guint pings;
    gint64 last_ping_at;
    guint dropped;
    guint data_replayed;
    GPtrArray *data_in; /* GBytes: plaintexts from the client */
    guint last_data_key_id;
    gboolean last_data_v2;
    guint32 last_peer_id;
    GArray *ctl_in;         /* TsCtlIn */
    GPtrArray *messages_in; /* char*: control messages from the client */
    char *client_options, *username, *password, *peer_info;
    int client_cert_status; /* -1 until a handshake verified something */
    char *client_cn;
    int last_tls_error;
};

static void ts_key_clear(TsKey *k)
{
    g_clear_pointer(&k->rel, shimmer_reliable_free);
    if (k->tls != NULL)
        gnutls_deinit(k->tls);
    if (k->tls_out != NULL)
        g_byte_array_unref(k->tls_out);
    if (k->app_in != NULL)
        g_byte_array_unref(k->app_in);
    g_clear_pointer(&k->enc, shimmer_datachan_key_free);
    g_clear_pointer(&k->dec, shimmer_datachan_key_free);
    memset(k, 0, sizeof(*k));
}

static ShimmerCtlwrap *ts_make_wrap(const TsSetup *setup)
{
    switch (setup->wrap) {
    case SHIMMER_WRAP_TLS_AUTH:
        return shimmer_ctlwrap_new_tls_auth(setup->static_key, setup->digest,
                                            SHIMMER_KEY_DIRECTION_0);
    case SHIMMER_WRAP_TLS_CRYPT:
        return shimmer_ctlwrap_new_tls_crypt(setup->static_key, SHIMMER_CTLWRAP_ROLE_SERVER);
    case SHIMMER_WRAP_TLS_CRYPT_V2:
        return shimmer_ctlwrap_new_tls_crypt_v2_server(setup->v2_key);
    default:
        return shimmer_ctlwrap_new_none();
    }
}

static TestServer *ts_new(const TsSetup *setup, guint64 seed)
{
    TestServer *s = g_new0(TestServer, 1);
    s->setup = *setup;
    g_bytes_ref(s->setup.ca);
    g_bytes_ref(s->setup.cert);
    g_bytes_ref(s->setup.key);
    s->rng.state = seed;
    s->primary = -1;
    s->out = g_queue_new();
    s->push_messages = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(s->push_messages, g_strdup(DEFAULT_PUSH));
    s->answer_push = TRUE;
    s->cipher = SHIMMER_DATACHAN_AES_256_GCM;
    s->ekm = TRUE;
    s->peer_id = 3;
    s->km_trailing = 3;
    s->data_in = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    s->ctl_in = g_array_new(FALSE, TRUE, sizeof(TsCtlIn));
    s->messages_in = g_ptr_array_new_with_free_func(g_free);
    s->client_cert_status = -1;
    s->wrap = ts_make_wrap(setup);
    g_assert_nonnull(s->wrap);
    shimmer_replay_init(&s->ctl_replay, SHIMMER_REPLAY_DEFAULT_WINDOW, 0);

    g_assert_cmpint(gnutls_certificate_allocate_credentials(&s->creds), ==, 0);
    gnutls_datum_t ca = {(unsigned char *)g_bytes_get_data(setup->ca, NULL),
                         (unsigned int)g_bytes_get_size(setup->ca)};
    gnutls_datum_t cert = {(unsigned char *)g_bytes_get_data(setup->cert, NULL),
                           (unsigned int)g_bytes_get_size(setup->cert)};
    gnutls_datum_t key = {(unsigned char *)g_bytes_get_data(setup->key, NULL),
                          (unsigned int)g_bytes_get_size(setup->key)};
    g_assert_cmpint(gnutls_certificate_set_x509_trust_mem(s->creds, &ca, GNUTLS_X509_FMT_PEM), >,
                    0);
    g_assert_cmpint(gnutls_certificate_set_x509_key_mem(s->creds, &cert, &key, GNUTLS_X509_FMT_PEM),
                    ==, 0);
    return s;
}

static void ts_free(TestServer *s)
{
    if (s == NULL)
        return;
    for (guint i = 0; i < 8; i++)
        ts_key_clear(&s->keys[i]);
    shimmer_ctlwrap_free(s->wrap);
    gnutls_certificate_free_credentials(s->creds);
    g_queue_free_full(s->out, (GDestroyNotify)g_bytes_unref);
    g_ptr_array_unref(s->push_messages);
    g_ptr_array_unref(s->data_in);
    g_array_unref(s->ctl_in);
    g_ptr_array_unref(s->messages_in);
    g_free(s->client_options);
    g_free(s->username);
    g_free(s->password);
    g_free(s->peer_info);
    g_free(s->client_cn);
    g_bytes_unref(s->setup.ca);
    g_bytes_unref(s->setup.cert);
    g_bytes_unref(s->setup.key);
    g_free(s);
}

static void ts_set_push(TestServer *s, const char *reply)
{
    g_ptr_array_set_size(s->push_messages, 0);
    g_ptr_array_add(s->push_messages, g_strdup(reply));
}

static ssize_t ts_tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    TsKey *k = ptr;
    g_byte_array_append(k->tls_out, data, (guint)len);
    return (ssize_t)len;
}

static ssize_t ts_tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    TsKey *k = ptr;
    gsize n = shimmer_reliable_read(k->rel, data, len);
    if (n == 0) {
        gnutls_transport_set_errno(k->tls, EAGAIN);
        return -1;
    }
    return (ssize_t)n;
}

/* Starts key state KEY_ID with our reset RESET_OP (pid 0) queued. */
static void ts_key_start(TestServer *s, guint key_id, guint reset_op, const guint8 *payload,
                         gsize payload_len)
{
    TsKey *k = &s->keys[key_id];
    ts_key_clear(k);
    k->srv = s;
    k->used = TRUE;
    k->key_id = (guint8)key_id;
    k->rel = shimmer_reliable_new(NULL);
    k->tls_out = g_byte_array_new();
    k->app_in = g_byte_array_new();
    prng_fill(&s->rng, k->s_random1, sizeof(k->s_random1));
    prng_fill(&s->rng, k->s_random2, sizeof(k->s_random2));
    shimmer_replay_init(&k->replay, SHIMMER_REPLAY_DEFAULT_WINDOW,
                        SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S);
    g_assert_cmpint(gnutls_init(&k->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK), ==, 0);
    g_assert_cmpint(gnutls_priority_set_direct(k->tls, "NORMAL", NULL), ==, 0);
    g_assert_cmpint(gnutls_credentials_set(k->tls, GNUTLS_CRD_CERTIFICATE, s->creds), ==, 0);
    gnutls_certificate_server_set_request(k->tls, GNUTLS_CERT_REQUIRE);
    gnutls_transport_set_ptr(k->tls, k);
    gnutls_transport_set_push_function(k->tls, ts_tls_push);
    gnutls_transport_set_pull_function(k->tls, ts_tls_pull);
    gnutls_handshake_set_timeout(k->tls, 0);
    g_assert_true(
        shimmer_reliable_queue_message(k->rel, (guint8)reset_op, payload, payload_len, NULL, NULL));
}

static void ts_send_packet(TestServer *s, TsKey *k, guint op, guint32 pid, const guint8 *payload,
                           gsize payload_len)
{
    ShimmerControlPacket cp = {0};
    cp.opcode = (guint8)op;
    cp.key_id = k->key_id;
    memcpy(cp.session_id, s->sid, 8);
    cp.n_acks = (guint)shimmer_reliable_take_acks(
        k->rel, cp.acks,
        op == SHIMMER_OP_ACK_V1 ? SHIMMER_PACKET_MAX_ACKS : SHIMMER_PACKET_MAX_ACKS_CONTROL);
    if (cp.n_acks > 0)
        memcpy(cp.remote_session_id, s->client_sid, 8);
    cp.has_msg_pid = op != SHIMMER_OP_ACK_V1;
    cp.msg_pid = pid;
    cp.payload = payload;
    cp.payload_len = payload_len;
    guint8 plain[4096], wire[4096 + 1200];
    gsize plain_len = 0, wire_len = 0;
    g_assert_cmpint(shimmer_packet_build_control(&cp, plain, sizeof(plain), &plain_len), ==,
                    SHIMMER_PACKET_OK);
    g_assert_cmpint(shimmer_ctlwrap_wrap(s->wrap, plain, plain_len, (guint32)(s->now / US), wire,
                                         sizeof(wire), &wire_len),
                    ==, SHIMMER_CTLWRAP_OK);
    g_queue_push_tail(s->out, g_bytes_new(wire, wire_len));
}

static void ts_flush(TestServer *s, TsKey *k)
{
    if (!k->used || s->silent)
        return;
    if (k->tls_out->len > 0) {
        gsize n = shimmer_reliable_queue(k->rel, SHIMMER_OP_CONTROL_V1, k->tls_out->data,
                                         k->tls_out->len);
        g_byte_array_remove_range(k->tls_out, 0, (guint)n);
    }
    ShimmerReliableMessage m;
    while (shimmer_reliable_next_to_send(k->rel, s->now, &m)) {
        /* Copy: taking acks below changes the reliable state. */
        guint8 payload[SHIMMER_RELIABLE_DEFAULT_MAX_PAYLOAD];
        g_assert_cmpuint(m.len, <=, sizeof(payload));
        memcpy(payload, m.payload, m.len);
        ts_send_packet(s, k, m.kind, m.pid, payload, m.len);
    }
    while (shimmer_reliable_has_pending_acks(k->rel))
        ts_send_packet(s, k, SHIMMER_OP_ACK_V1, 0, NULL, 0);
}

static void ts_flush_all(TestServer *s)
{
    for (guint i = 0; i < 8; i++)
        ts_flush(s, &s->keys[i]);
}

static void ts_tls_send(TsKey *k, const void *data, gsize len)
{
    const guint8 *p = data;
    while (len > 0 && !k->tls_failed) {
        ssize_t n = gnutls_record_send(k->tls, p, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0) {
            /* Only after the session broke (a fuzzer can do that). */
            k->tls_failed = TRUE;
            k->srv->last_tls_error = (int)n;
            return;
        }
        p += n;
        len -= (gsize)n;
    }
}

/* Sends TEXT as one control message (NUL included) on KEY_ID. */
static gboolean ts_send_message(TestServer *s, guint key_id, const char *text)
{
    TsKey *k = &s->keys[key_id & 7];
    if (!k->used || !k->handshake_done || k->tls_failed)
        return FALSE;
    ts_tls_send(k, text, strlen(text) + 1);
    ts_flush(s, k);
    return TRUE;
}

static void put_string(GByteArray *b, const char *str)
{
    if (str == NULL) {
        guint8 z[2] = {0, 0};
        g_byte_array_append(b, z, 2);
        return;
    }
    gsize len = strlen(str) + 1;
    guint8 l[2] = {(guint8)(len >> 8), (guint8)len};
    g_byte_array_append(b, l, 2);
    g_byte_array_append(b, (const guint8 *)str, (guint)len);
}

static void ts_send_key_method(TestServer *s, TsKey *k)
{
    GByteArray *b = g_byte_array_new();
    static const guint8 head[5] = {0, 0, 0, 0, 2};
    g_byte_array_append(b, head, 5);
    g_byte_array_append(b, k->s_random1, sizeof(k->s_random1));
    g_byte_array_append(b, k->s_random2, sizeof(k->s_random2));
    put_string(b, "V4,dev-type tun,link-mtu 1549,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,"
                  "auth [null-digest],keysize 256,key-method 2,tls-server");
    for (guint i = 0; i < s->km_trailing; i++)
        put_string(b, NULL);
    ts_tls_send(k, b->data, b->len);
    g_byte_array_unref(b);
}

static gboolean ts_install_keys(TestServer *s, TsKey *k)
{
    guint8 key2[SHIMMER_KEY2_LEN];
    if (s->ekm) {
        static const char label[] = "EXPORTER-OpenVPN-datakeys";
        if (gnutls_prf_rfc5705(k->tls, strlen(label), label, 0, NULL, sizeof(key2), (char *)key2) !=
            0)
            return FALSE;
    } else {
        shimmer_kdf_openvpn_prf(k->c_pre_master, k->c_random1, k->s_random1, k->c_random2,
                                k->s_random2, s->client_sid, s->sid, key2);
    }
    gsize klen = shimmer_datachan_cipher_key_len(s->cipher);
    g_clear_pointer(&k->enc, shimmer_datachan_key_free);
    g_clear_pointer(&k->dec, shimmer_datachan_key_free);
    /* The server sends with keys[1] and receives with keys[0]. */
    k->enc = shimmer_datachan_key_new(s->cipher, SHIMMER_DATACHAN_BACKEND_NETTLE,
                                      SHIMMER_DATACHAN_ENCRYPT, key2 + 128, klen, key2 + 192, NULL);
    k->dec = shimmer_datachan_key_new(s->cipher, SHIMMER_DATACHAN_BACKEND_NETTLE,
                                      SHIMMER_DATACHAN_DECRYPT, key2, klen, key2 + 64, NULL);
    memset(key2, 0, sizeof(key2));
    if (k->enc == NULL || k->dec == NULL)
        return FALSE;
    shimmer_replay_init(&k->replay, SHIMMER_REPLAY_DEFAULT_WINDOW,
                        SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S);
    s->primary = k->key_id;
    s->last_data_sent = s->now;
    return TRUE;
}

static gboolean km_string(const guint8 **p, const guint8 *end, char **out)
{
    if (end - *p < 2)
        return FALSE;
    gsize len = (gsize)((*p)[0] << 8 | (*p)[1]);
    if ((gsize)(end - *p - 2) < len)
        return FALSE;
    *out = len ? g_strndup((const char *)*p + 2, len) : g_strdup("");
    *p += 2 + len;
    return TRUE;
}

static void ts_on_push_request(TestServer *s, TsKey *k)
{
    s->push_requests++;
    if (!s->answer_push)
        return;
    gboolean reply = FALSE;
    for (guint i = 0; i < s->push_messages->len; i++) {
        const char *m = g_ptr_array_index(s->push_messages, i);
        ts_tls_send(k, m, strlen(m) + 1);
        reply |= g_str_has_prefix(m, "PUSH_REPLY");
    }
    /* Like a 2.6 server with a pull client: data keys once the reply is out. */
    if (reply && k->enc == NULL)
        ts_install_keys(s, k);
}

/* The client's key-method record, then NUL-terminated messages. */
static void ts_handle_app(TestServer *s, TsKey *k)
{
    if (k->app_in->len == 0)
        return; /* (and no arithmetic on an empty array's NULL data) */
    if (!k->km_received) {
        const guint8 *p = k->app_in->data, *end = p + k->app_in->len;
        if (end - p < 5 + 48 + 64)
            return;
        if (memcmp(p, "\0\0\0\0\2", 5) != 0) {
            k->km_bad = TRUE;
            return;
        }
        p += 5;
        memcpy(k->c_pre_master, p, 48);
        memcpy(k->c_random1, p + 48, 32);
        memcpy(k->c_random2, p + 80, 32);
        p += 112;
        char *opts = NULL, *user = NULL, *pass = NULL, *pi = NULL;
        gboolean complete = km_string(&p, end, &opts) && km_string(&p, end, &user) &&
                            km_string(&p, end, &pass) && km_string(&p, end, &pi);
        if (!complete) {
            g_free(opts);
            g_free(user);
            g_free(pass);
            g_free(pi);
            return;
        }
        g_free(s->client_options);
        g_free(s->username);
        g_free(s->password);
        g_free(s->peer_info);
        s->client_options = opts;
        s->username = user;
        s->password = pass;
        s->peer_info = pi;
        g_byte_array_remove_range(k->app_in, 0, (guint)(p - k->app_in->data));
        k->km_received = TRUE;
        ts_send_key_method(s, k);
        /* A renegotiated key is ready at once; key 0 waits for the push. */
        if (k->key_id != 0)
            ts_install_keys(s, k);
    }
    for (;;) {
        guint8 *nul = memchr(k->app_in->data, 0, k->app_in->len);
        if (nul == NULL)
            return;
        gsize len = (gsize)(nul - k->app_in->data);
        char *msg = g_strndup((const char *)k->app_in->data, len);
        g_byte_array_remove_range(k->app_in, 0, (guint)len + 1);
        g_ptr_array_add(s->messages_in, msg);
        if (strcmp(msg, "PUSH_REQUEST") == 0)
            ts_on_push_request(s, k);
    }
}

static void ts_check_client_cert(TestServer *s, TsKey *k)
{
    unsigned int status = 0;
    int rc = gnutls_certificate_verify_peers2(k->tls, &status);
    s->client_cert_status = rc == 0 ? (int)status : -1;
    unsigned int n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(k->tls, &n);
    gnutls_x509_crt_t crt;
    if (chain == NULL || n == 0 || gnutls_x509_crt_init(&crt) != 0)
        return;
    char cn[256];
    size_t sz = sizeof(cn);
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &sz) == 0) {
        g_free(s->client_cn);
        s->client_cn = g_strdup(cn);
    }
    gnutls_x509_crt_deinit(crt);
}

static void ts_drive(TestServer *s, TsKey *k)
{
    if (!k->used || k->tls_failed)
        return;
    if (!k->handshake_done) {
        int rc = gnutls_handshake(k->tls);
        if (rc == 0) {
            k->handshake_done = TRUE;
            ts_check_client_cert(s, k);
        } else {
            if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal(rc)) {
                k->tls_failed = TRUE;
                s->last_tls_error = rc;
            }
            return;
        }
    }
    guint8 buf[4096];
    for (int rounds = 0; rounds < 1000; rounds++) {
        ssize_t n = gnutls_record_recv(k->tls, buf, sizeof(buf));
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            if (shimmer_reliable_readable(k->rel) > 0)
                continue;
            break;
        }
        if (n <= 0) {
            if (n < 0 && gnutls_error_is_fatal((int)n)) {
                k->tls_failed = TRUE;
                s->last_tls_error = (int)n;
            }
            break;
        }
        g_byte_array_append(k->app_in, buf, (guint)n);
    }
    ts_handle_app(s, k);
}

static void ts_new_session(TestServer *s, const guint8 client_sid[8])
{
    for (guint i = 0; i < 8; i++)
        ts_key_clear(&s->keys[i]);
    shimmer_ctlwrap_free(s->wrap);
    s->wrap = ts_make_wrap(&s->setup);
    shimmer_replay_init(&s->ctl_replay, SHIMMER_REPLAY_DEFAULT_WINDOW, 0);
    prng_fill(&s->rng, s->sid, 8);
    memcpy(s->client_sid, client_sid, 8);
    s->have_client = TRUE;
    s->primary = -1;
    s->sessions++;
}

static void ts_recv_data(TestServer *s, const guint8 *pkt, gsize len)
{
    guint key_id = pkt[0] & 7;
    gboolean v2 = shimmer_packet_opcode(pkt[0]) == SHIMMER_OP_DATA_V2;
    TsKey *k = &s->keys[key_id];
    guint32 id;
    if (!k->used || k->dec == NULL || !shimmer_datachan_peek_packet_id(v2, pkt, len, &id)) {
        s->dropped++;
        return;
    }
    if (shimmer_replay_check(&k->replay, id, s->now) != SHIMMER_REPLAY_OK) {
        s->data_replayed++;
        return;
    }
    guint8 out[4096];
    gsize out_len = 0;
    ShimmerDatachanResult r =
        v2 ? shimmer_datachan_open_v2(k->dec, pkt, len, out, sizeof(out), &out_len, &id)
           : shimmer_datachan_open_v1(k->dec, pkt, len, out, sizeof(out), &out_len, &id);
    if (r != SHIMMER_DATACHAN_OK) {
        s->dropped++;
        return;
    }
    shimmer_replay_update(&k->replay, id, s->now);
    s->last_data_key_id = key_id;
    s->last_data_v2 = v2;
    if (v2)
        s->last_peer_id = (guint32)(pkt[1] << 16 | pkt[2] << 8 | pkt[3]);
    if (out_len == sizeof(ping_magic) && memcmp(out, ping_magic, sizeof(ping_magic)) == 0) {
        s->pings++;
        s->last_ping_at = s->now;
        return;
    }
    g_ptr_array_add(s->data_in, g_bytes_new(out, out_len));
}

static void ts_recv(TestServer *s, const guint8 *pkt, gsize len)
{
    if (s->silent || len == 0)
        return;
    guint op = shimmer_packet_opcode(pkt[0]);
    if (op == SHIMMER_OP_DATA_V1 || op == SHIMMER_OP_DATA_V2) {
        ts_recv_data(s, pkt, len);
        return;
    }
    guint8 plain[4096];
    gsize plain_len = 0;
    ShimmerCtlwrapInfo info;
    ShimmerControlPacket cp;
    ShimmerCtlwrapError err =
        shimmer_ctlwrap_unwrap(s->wrap, pkt, len, plain, sizeof(plain), &plain_len, &info);
    gboolean is_reset =
        op == SHIMMER_OP_HARD_RESET_CLIENT_V2 || op == SHIMMER_OP_HARD_RESET_CLIENT_V3;
    if (err == SHIMMER_CTLWRAP_OK && is_reset &&
        shimmer_packet_parse_control(plain, plain_len, &cp) == SHIMMER_PACKET_OK &&
        (!s->have_client || memcmp(cp.session_id, s->client_sid, 8) != 0)) {
        /* A new client session: start from nothing, wrapper included (its
         * replay counter, and for tls-crypt-v2 the learnt client key). */
        ts_new_session(s, cp.session_id);
        err = shimmer_ctlwrap_unwrap(s->wrap, pkt, len, plain, sizeof(plain), &plain_len, &info);
    }
    if (err != SHIMMER_CTLWRAP_OK) {
        s->dropped++;
        return;
    }
    if (info.has_replay) {
        if (shimmer_replay_check(&s->ctl_replay, info.replay_pid, s->now) != SHIMMER_REPLAY_OK) {
            s->dropped++;
            return;
        }
        shimmer_replay_update(&s->ctl_replay, info.replay_pid, s->now);
    }
    if (shimmer_packet_parse_control(plain, plain_len, &cp) != SHIMMER_PACKET_OK ||
        !s->have_client || memcmp(cp.session_id, s->client_sid, 8) != 0 ||
        (cp.n_acks > 0 && memcmp(cp.remote_session_id, s->sid, 8) != 0)) {
        s->dropped++;
        return;
    }
    TsCtlIn rec = {plain[0],       s->now,    info.replay_pid, cp.msg_pid,
                   cp.has_msg_pid, cp.n_acks, cp.payload_len};
    g_array_append_val(s->ctl_in, rec);
    TsKey *k = &s->keys[cp.key_id];
    if (k->used && op == SHIMMER_OP_SOFT_RESET_V1 && k->enc != NULL && cp.key_id != s->primary) {
        /* Key ids wrap from 7 to 1: a reset on a retired key starts it anew
         * (a resent reset of a running negotiation finds no keys yet). */
        ts_key_clear(k);
    }
    if (!k->used) {
        if (is_reset && cp.key_id == 0) {
            static const guint8 tlv[6] = {0x00, 0x01, 0x00, 0x02, 0x00, 0x01};
            gboolean neg = s->early_neg && op == SHIMMER_OP_HARD_RESET_CLIENT_V3;
            ts_key_start(s, 0, SHIMMER_OP_HARD_RESET_SERVER_V2, neg ? tlv : NULL,
                         neg ? sizeof(tlv) : 0);
        } else if (op == SHIMMER_OP_SOFT_RESET_V1) {
            ts_key_start(s, cp.key_id, SHIMMER_OP_SOFT_RESET_V1, NULL, 0);
        } else {
            s->dropped++;
            return;
        }
    }
    for (guint i = 0; i < cp.n_acks; i++)
        shimmer_reliable_ack_received(k->rel, cp.acks[i]);
    if (cp.has_msg_pid) {
        gboolean carries = op == SHIMMER_OP_CONTROL_V1 || op == SHIMMER_OP_CONTROL_WKC_V1;
        shimmer_reliable_incoming(k->rel, cp.msg_pid, cp.payload, carries ? cp.payload_len : 0);
    }
    ts_drive(s, k);
    ts_flush_all(s);
    if (s->early_neg && is_reset && s->keys[0].used) {
        /* A 2.6 server answers statelessly: without the client key it can
         * only read a CONTROL_WKC_V1 next. The reliable state stays, which
         * the real server rebuilds from its HMAC cookie, and so does the
         * outgoing replay counter (the client would drop a repeated one). */
        guint32 next = shimmer_ctlwrap_get_next_pid(s->wrap);
        shimmer_ctlwrap_free(s->wrap);
        s->wrap = ts_make_wrap(&s->setup);
        shimmer_ctlwrap_set_next_pid(s->wrap, next);
    }
}

static gsize ts_seal(TestServer *s, guint key_id, const guint8 *plain, gsize len, guint8 *out,
                     gsize cap);

static gint64 ts_next_deadline(TestServer *s)
{
    gint64 d = G_MAXINT64;
    if (s->silent)
        return d;
    if (s->ping_every > 0 && s->primary >= 0)
        d = s->last_data_sent + s->ping_every;
    for (guint i = 0; i < 8; i++) {
        if (s->keys[i].used)
            d = MIN(d, shimmer_reliable_next_deadline(s->keys[i].rel));
    }
    return d;
}

static void ts_handle_timeout(TestServer *s)
{
    ts_flush_all(s);
    if (s->ping_every > 0 && s->primary >= 0 && s->now >= s->last_data_sent + s->ping_every) {
        guint8 pkt[64];
        gsize len = ts_seal(s, (guint)s->primary, ping_magic, sizeof(ping_magic), pkt, sizeof(pkt));
        g_assert_cmpuint(len, >, 0);
        g_queue_push_tail(s->out, g_bytes_new(pkt, len));
    }
}

/* Seals PLAIN as a data packet on KEY_ID; 0 if that key cannot send. */
static gsize ts_seal(TestServer *s, guint key_id, const guint8 *plain, gsize len, guint8 *out,
                     gsize cap)
{
    TsKey *k = &s->keys[key_id & 7];
    if (!k->used || k->enc == NULL)
        return 0;
    gsize out_len = 0;
    ShimmerDatachanResult r =
        s->peer_id == SHIMMER_DATACHAN_PEER_ID_NONE
            ? shimmer_datachan_seal_v1(k->enc, (guint8)key_id, plain, len, out, cap, &out_len, NULL)
            : shimmer_datachan_seal_v2(k->enc, (guint8)key_id, s->peer_id, plain, len, out, cap,
                                       &out_len, NULL);
    if (r != SHIMMER_DATACHAN_OK)
        return 0;
    s->last_data_sent = s->now;
    return out_len;
}

/* The server starts a renegotiation on KEY_ID. */
static void ts_start_soft_reset(TestServer *s, guint key_id)
{
    ts_key_start(s, key_id, SHIMMER_OP_SOFT_RESET_V1, NULL, 0);
    ts_flush(s, &s->keys[key_id]);
}

/* ---------------------------------------------------------------------- */
/* Net: the engine, the server, the link between them and the clock. */

/* An engine event as the tests look at it: its one string (the state
 * change's reason, the host to connect to, the challenge, the server's
 * reason or text) in MESSAGE. */
typedef struct {
    ShimmerEventType type;
    ShimmerState state;
    guint index;
    char *message;
    ShimmerCredentialsKind credentials;
    gboolean echo;
    gboolean response_required;
    /* WEB_AUTH: the URL is the message */
    ShimmerWebAuthKind web_kind;
    char *web_flags; /* joined with ',' */
    gint64 deadline; /* WEB_AUTH, AUTH_PENDING */
    guint timeout_s;
    gint64 at;
} NetEvent;

typedef struct Net Net;

/* Sees every packet put on the link (TO_CLIENT: from the server), before any
 * impairment. Returns FALSE to drop it. */
typedef gboolean (*NetHook)(Net *n, gboolean to_client, const guint8 *pkt, gsize len);

typedef struct {
    gint64 at;
    gboolean to_client;
    GBytes *pkt;
} Delayed;

struct Net {
    ShimmerConfig *cfg;
    ShimmerEngine *e;
    TestServer *srv;
    gint64 now;
    Prng engine_rng, link_rng;
    /* Impairments of control packets, in percent. Data packets pass. */
    guint loss, dup, reorder;
    guint n_lost, n_dup, n_reordered;
    gboolean tcp;
    gboolean auto_transport;
    gboolean transport_pending;
    GQueue *to_srv, *to_cli;      /* GBytes */
    GPtrArray *delayed;           /* Delayed* */
    GPtrArray *events;            /* NetEvent* */
    GPtrArray *c2s_log, *s2c_log; /* GBytes: every packet put on the link */
    GArray *c2s_times;            /* gint64, parallel to c2s_log */
    GPtrArray *tun;               /* GBytes: what the engine handed to the tun */
    gint64 last_c2s_at, last_s2c_at;
    NetHook hook;
    gpointer hook_data;
    gboolean log;
    /* A deadline that fires without moving: g_error, unless this is set
     * (then net_run() stops and sets STUCK). */
    gboolean tolerate_stuck;
    gboolean stuck;
    /* The engine's random hook fails from this call on (0: never). */
    guint random_fails_at;
    guint random_calls;
    /* Why the engine dropped the last packet net_to_engine() gave it. */
    ShimmerDropReason last_drop;
    /* The wall clock the engine sees at T0 (it runs with the simulated
     * time). */
    gint64 wall0;
    GPtrArray *logs; /* char*: every line the engine logged */
};

static void net_engine_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    Net *n = user;
    if (n->log)
        g_printerr("[%8.3f] engine %d: %s\n", (double)(n->now - T0) / US, level, message);
    g_ptr_array_add(n->logs, g_strdup(message));
}

static gboolean net_engine_random(gpointer user, guint8 *buf, gsize len)
{
    Net *n = user;
    n->random_calls++;
    if (n->random_fails_at > 0 && n->random_calls >= n->random_fails_at)
        return FALSE;
    prng_fill(&n->engine_rng, buf, len);
    return TRUE;
}

static gint64 net_engine_realtime(gpointer user)
{
    Net *n = user;
    return n->wall0 + (n->now - T0) / US;
}

static void net_event_free(NetEvent *ev)
{
    g_free(ev->message);
    g_free(ev->web_flags);
    g_free(ev);
}

static void delayed_free(Delayed *d)
{
    g_bytes_unref(d->pkt);
    g_free(d);
}

/* Takes CFG. */
static Net *net_new(ShimmerConfig *cfg, const TsSetup *setup, guint64 seed)
{
    Net *n = g_new0(Net, 1);
    n->cfg = cfg;
    n->now = T0;
    n->engine_rng.state = seed * 3 + 1;
    n->link_rng.state = seed * 7 + 5;
    n->auto_transport = TRUE;
    n->log = g_getenv("SHIMMER_TEST_LOG") != NULL;
    n->to_srv = g_queue_new();
    n->to_cli = g_queue_new();
    n->delayed = g_ptr_array_new_with_free_func((GDestroyNotify)delayed_free);
    n->events = g_ptr_array_new_with_free_func((GDestroyNotify)net_event_free);
    n->c2s_log = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    n->s2c_log = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    n->c2s_times = g_array_new(FALSE, FALSE, sizeof(gint64));
    n->tun = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    n->logs = g_ptr_array_new_with_free_func(g_free);
    n->tcp = cfg->connections->len > 0 &&
             ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 0))->transport ==
                 SHIMMER_TRANSPORT_TCP;
    n->wall0 = WALL0;
    ShimmerEngineHooks hooks = {.log = net_engine_log,
                                .random = net_engine_random,
                                .realtime = net_engine_realtime,
                                .user = n};
    GError *error = NULL;
    n->e = shimmer_engine_new(cfg, &hooks, &error);
    if (n->e == NULL)
        g_error("shimmer_engine_new: %s", error->message);
    n->srv = ts_new(setup, seed * 11 + 13);
    n->srv->now = n->now;
    return n;
}

static void net_free(Net *n)
{
    shimmer_engine_free(n->e);
    shimmer_config_free(n->cfg);
    ts_free(n->srv);
    g_queue_free_full(n->to_srv, (GDestroyNotify)g_bytes_unref);
    g_queue_free_full(n->to_cli, (GDestroyNotify)g_bytes_unref);
    g_ptr_array_unref(n->delayed);
    g_ptr_array_unref(n->events);
    g_ptr_array_unref(n->c2s_log);
    g_ptr_array_unref(n->s2c_log);
    g_array_unref(n->c2s_times);
    g_ptr_array_unref(n->tun);
    g_ptr_array_unref(n->logs);
    g_free(n);
}

static void net_enqueue(Net *n, gboolean to_client, GBytes *pkt)
{
    g_queue_push_tail(to_client ? n->to_cli : n->to_srv, pkt);
}

/* Puts one packet on the link. */
static void net_send(Net *n, gboolean to_client, const guint8 *pkt, gsize len)
{
    GBytes *b = g_bytes_new(pkt, len);
    if (to_client) {
        g_ptr_array_add(n->s2c_log, g_bytes_ref(b));
    } else {
        g_ptr_array_add(n->c2s_log, g_bytes_ref(b));
        g_array_append_val(n->c2s_times, n->now);
        n->last_c2s_at = n->now;
    }
    if (n->hook != NULL && !n->hook(n, to_client, pkt, len)) {
        g_bytes_unref(b);
        return;
    }
    gboolean control = shimmer_packet_classify(pkt, len) == SHIMMER_PACKET_KIND_CONTROL;
    if (!n->tcp && control) {
        if (prng_percent(&n->link_rng, n->loss)) {
            n->n_lost++;
            g_bytes_unref(b);
            return;
        }
        if (prng_percent(&n->link_rng, n->dup)) {
            n->n_dup++;
            net_enqueue(n, to_client, g_bytes_ref(b));
        }
        if (prng_percent(&n->link_rng, n->reorder)) {
            /* Held back for up to 1.5 s: it arrives behind later packets,
             * sometimes behind a whole later flight. */
            n->n_reordered++;
            Delayed *d = g_new0(Delayed, 1);
            d->at = n->now + 1 + prng_below(&n->link_rng, 1500 * MS);
            d->to_client = to_client;
            d->pkt = b;
            g_ptr_array_add(n->delayed, d);
            return;
        }
    }
    net_enqueue(n, to_client, b);
}

static void net_drop_in_flight_to_client(Net *n)
{
    GBytes *b;
    while ((b = g_queue_pop_head(n->to_cli)) != NULL)
        g_bytes_unref(b);
    for (guint i = n->delayed->len; i > 0; i--) {
        Delayed *d = g_ptr_array_index(n->delayed, i - 1);
        if (d->to_client)
            g_ptr_array_remove_index(n->delayed, i - 1);
    }
}

static const char *net_event_text(const ShimmerEvent *ev)
{
    switch (ev->type) {
    case SHIMMER_EVENT_STATE:
        return ev->state_change.reason;
    case SHIMMER_EVENT_CONNECT:
        return ev->connect.host;
    case SHIMMER_EVENT_NEED_CREDENTIALS:
        return ev->credentials.text;
    case SHIMMER_EVENT_AUTH_FAILED:
        return ev->auth_failed.reason;
    case SHIMMER_EVENT_INFO:
        return ev->info.text;
    case SHIMMER_EVENT_EXIT:
        return ev->exit.reason;
    case SHIMMER_EVENT_WEB_AUTH:
        return ev->web_auth.url;
    default:
        return NULL;
    }
}

/* Takes everything the engine and the server produced. */
static void net_collect(Net *n)
{
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    gssize len;
    while ((len = shimmer_engine_write_pkt(n->e, buf, sizeof(buf), n->now)) > 0)
        net_send(n, FALSE, buf, (gsize)len);
    g_assert_cmpint(len, ==, 0);
    ShimmerEvent ev;
    while (shimmer_engine_pop_event(n->e, &ev)) {
        NetEvent *r = g_new0(NetEvent, 1);
        r->type = ev.type;
        r->state = ev.state;
        r->message = g_strdup(net_event_text(&ev));
        if (ev.type == SHIMMER_EVENT_CONNECT)
            r->index = ev.connect.index;
        if (ev.type == SHIMMER_EVENT_NEED_CREDENTIALS) {
            r->credentials = ev.credentials.kind;
            r->echo = ev.credentials.echo;
            r->response_required = ev.credentials.response_required;
        }
        if (ev.type == SHIMMER_EVENT_WEB_AUTH) {
            r->web_kind = ev.web_auth.kind;
            r->web_flags = g_strjoinv(",", ev.web_auth.flags);
            r->deadline = ev.web_auth.deadline;
            r->timeout_s = ev.web_auth.timeout_s;
        }
        if (ev.type == SHIMMER_EVENT_AUTH_PENDING) {
            r->deadline = ev.auth_pending.deadline;
            r->timeout_s = ev.auth_pending.timeout_s;
        }
        r->at = n->now;
        g_ptr_array_add(n->events, r);
        if (n->log)
            g_printerr("[%8.3f] event %d state %s: %s\n", (double)(n->now - T0) / US, r->type,
                       shimmer_state_to_string(r->state), r->message ? r->message : "");
        if (ev.type == SHIMMER_EVENT_CONNECT && n->auto_transport)
            n->transport_pending = TRUE;
        if (ev.type == SHIMMER_EVENT_DISCONNECT_TRANSPORT)
            net_drop_in_flight_to_client(n); /* the old socket is gone */
        shimmer_event_clear(&ev);
    }
    GBytes *b;
    while ((b = g_queue_pop_head(n->srv->out)) != NULL) {
        gsize blen;
        const guint8 *d = g_bytes_get_data(b, &blen);
        net_send(n, TRUE, d, blen);
        g_bytes_unref(b);
    }
}

static ShimmerRecvResult net_to_engine(Net *n, const guint8 *pkt, gsize len)
{
    guint8 tun[4096];
    gsize tun_len = 0;
    n->last_s2c_at = n->now;
    ShimmerRecvResult r =
        shimmer_engine_recv(n->e, pkt, len, n->now, tun, sizeof(tun), &tun_len, &n->last_drop);
    if (r == SHIMMER_RECV_TUN)
        g_ptr_array_add(n->tun, g_bytes_new(tun, tun_len));
    else
        g_assert_cmpuint(tun_len, ==, 0);
    g_assert_cmpint(n->last_drop == SHIMMER_DROP_NONE, ==, r != SHIMMER_RECV_DROPPED);
    return r;
}

static void net_to_server(Net *n, const guint8 *pkt, gsize len)
{
    n->srv->now = n->now;
    ts_recv(n->srv, pkt, len);
}

/* TCP: the queued packets of one direction become a byte stream, cut into
 * chunks of random sizes and split again, as a socket would deliver them. */
static guint net_deliver_tcp(Net *n, gboolean to_client)
{
    GQueue *q = to_client ? n->to_cli : n->to_srv;
    if (g_queue_is_empty(q))
        return 0;
    GByteArray *stream = g_byte_array_new();
    GBytes *b;
    while ((b = g_queue_pop_head(q)) != NULL) {
        gsize len;
        const guint8 *d = g_bytes_get_data(b, &len);
        guint8 prefix[SHIMMER_TCP_PREFIX_LEN];
        g_assert_cmpint(shimmer_tcp_write_prefix(len, prefix), ==, SHIMMER_PACKET_OK);
        g_byte_array_append(stream, prefix, sizeof(prefix));
        g_byte_array_append(stream, d, (guint)len);
        g_bytes_unref(b);
    }
    ShimmerTcpSplitter *sp = shimmer_tcp_splitter_new(SHIMMER_TCP_MAX_PACKET);
    guint delivered = 0;
    gsize off = 0;
    while (off < stream->len) {
        gsize want = 1 + prng_below(&n->link_rng, 700); /* not inside MIN(): evaluated twice */
        gsize chunk = MIN(stream->len - off, want);
        gsize used_total = 0;
        while (used_total < chunk) {
            gsize consumed = 0, plen = 0;
            const guint8 *p = NULL;
            g_assert_cmpint(shimmer_tcp_splitter_feed(sp, stream->data + off + used_total,
                                                      chunk - used_total, &consumed, &p, &plen),
                            ==, SHIMMER_PACKET_OK);
            used_total += consumed;
            if (p != NULL) {
                if (to_client)
                    net_to_engine(n, p, plen);
                else
                    net_to_server(n, p, plen);
                delivered++;
            }
        }
        off += chunk;
    }
    g_assert_cmpuint(shimmer_tcp_splitter_pending(sp), ==, 0);
    shimmer_tcp_splitter_free(sp);
    g_byte_array_unref(stream);
    return delivered;
}

/* Delivers at most one packet each way; how many were delivered. */
static guint net_deliver_some(Net *n)
{
    if (n->tcp)
        return net_deliver_tcp(n, FALSE) + net_deliver_tcp(n, TRUE);
    guint count = 0;
    GBytes *b = g_queue_pop_head(n->to_srv);
    if (b != NULL) {
        gsize len;
        const guint8 *d = g_bytes_get_data(b, &len);
        net_to_server(n, d, len);
        g_bytes_unref(b);
        count++;
    }
    b = g_queue_pop_head(n->to_cli);
    if (b != NULL) {
        gsize len;
        const guint8 *d = g_bytes_get_data(b, &len);
        net_to_engine(n, d, len);
        g_bytes_unref(b);
        count++;
    }
    return count;
}

/* Moves packets until nothing is in flight at the current time. */
static void net_pump(Net *n)
{
    for (guint rounds = 0;; rounds++) {
        if (rounds > 100000)
            g_error("the link never goes quiet: a packet storm at %.3f s",
                    (double)(n->now - T0) / US);
        net_collect(n);
        if (n->transport_pending) {
            n->transport_pending = FALSE;
            shimmer_engine_transport_up(n->e, n->tcp, n->now);
            continue;
        }
        if (net_deliver_some(n) == 0)
            break;
    }
}

static gint64 net_deadline(Net *n)
{
    gint64 d = MIN(shimmer_engine_next_deadline(n->e), ts_next_deadline(n->srv));
    for (guint i = 0; i < n->delayed->len; i++) {
        Delayed *dl = g_ptr_array_index(n->delayed, i);
        d = MIN(d, dl->at);
    }
    return d;
}

/* Fires whatever is due at the current time. */
static void net_fire(Net *n)
{
    for (guint i = n->delayed->len; i > 0; i--) {
        Delayed *d = g_ptr_array_index(n->delayed, i - 1);
        if (d->at <= n->now) {
            net_enqueue(n, d->to_client, g_bytes_ref(d->pkt));
            g_ptr_array_remove_index(n->delayed, i - 1);
        }
    }
    if (shimmer_engine_next_deadline(n->e) <= n->now)
        shimmer_engine_handle_timeout(n->e, n->now);
    if (ts_next_deadline(n->srv) <= n->now) {
        n->srv->now = n->now;
        ts_handle_timeout(n->srv);
    }
}

typedef gboolean (*NetDone)(Net *n, gconstpointer data);

/* Runs until DONE (may be NULL) holds or the clock would pass UNTIL; the
 * clock then stands at UNTIL. Returns whether DONE held. A deadline that
 * keeps firing without moving is an engine bug (a busy loop in a real event
 * loop) and fails the test. */
static gboolean net_run(Net *n, gint64 until, NetDone done, gconstpointer data)
{
    guint stuck = 0;
    for (;;) {
        net_pump(n);
        if (done != NULL && done(n, data))
            return TRUE;
        gint64 d = net_deadline(n);
        if (d > until) {
            if (n->now < until)
                n->now = until;
            return done == NULL;
        }
        if (d > n->now) {
            n->now = d;
            stuck = 0;
        } else if (++stuck > 1000) {
            if (n->tolerate_stuck) {
                n->stuck = TRUE;
                return FALSE;
            }
            g_error("a deadline at %.6f s keeps firing at %.6f s without progress "
                    "(engine %.6f, server %.6f)",
                    (double)(d - T0) / US, (double)(n->now - T0) / US,
                    (double)(shimmer_engine_next_deadline(n->e) - T0) / US,
                    (double)(ts_next_deadline(n->srv) - T0) / US);
        }
        net_fire(n);
    }
}

static gboolean done_state(Net *n, gconstpointer data)
{
    return shimmer_engine_get_state(n->e) == (ShimmerState)GPOINTER_TO_INT(data);
}

static gboolean done_state_final(Net *n, gconstpointer data)
{
    ShimmerState st = shimmer_engine_get_state(n->e);
    return st == SHIMMER_STATE_CONNECTED || st == SHIMMER_STATE_FAILED ||
           st == SHIMMER_STATE_DISCONNECTED;
}

static guint net_count_events(Net *n, ShimmerEventType type)
{
    guint c = 0;
    for (guint i = 0; i < n->events->len; i++)
        c += ((NetEvent *)g_ptr_array_index(n->events, i))->type == type;
    return c;
}

/* The index of the first event of TYPE at or after FROM (with STATE, unless
 * STATE is -1); -1 if none. */
static gint net_find_event(Net *n, guint from, ShimmerEventType type, gint state)
{
    for (guint i = from; i < n->events->len; i++) {
        NetEvent *ev = g_ptr_array_index(n->events, i);
        if (ev->type == type && (state < 0 || ev->state == (ShimmerState)state))
            return (gint)i;
    }
    return -1;
}

static NetEvent *net_event(Net *n, gint index)
{
    g_assert_cmpint(index, >=, 0);
    return g_ptr_array_index(n->events, (guint)index);
}

static guint64 stats_dropped(const ShimmerEngineStats *st)
{
    guint64 sum = 0;
    for (guint i = 0; i < SHIMMER_DROP_N_REASONS; i++)
        sum += st->dropped[i];
    return sum;
}

#ifndef SHIMMER_TEST_ENGINE_HARNESS_ONLY

/* ---------------------------------------------------------------------- */
/* Fixtures and configurations */

static char *data_dir(void)
{
    const char *src = g_getenv("SHIMMER_TEST_SRCDIR");
    if (src == NULL)
        g_error("SHIMMER_TEST_SRCDIR is not set (run the test through meson test)");
    return g_build_filename(src, "data", NULL);
}

static GBytes *fixture(const char *name)
{
    g_autofree char *dir = data_dir();
    g_autofree char *path = g_build_filename(dir, name, NULL);
    char *text = NULL;
    gsize len = 0;
    GError *error = NULL;
    if (!g_file_get_contents(path, &text, &len, &error))
        g_error("%s", error->message);
    return g_bytes_new_take(text, len);
}

static void setup_init(TsSetup *setup, ShimmerWrapMode wrap)
{
    memset(setup, 0, sizeof(*setup));
    setup->ca = fixture("ca.crt");
    setup->cert = fixture("server.crt");
    setup->key = fixture("server.key");
    setup->wrap = wrap;
    setup->digest = SHIMMER_CTLWRAP_DIGEST_SHA256;
    GError *error = NULL;
    const char *file = wrap == SHIMMER_WRAP_TLS_AUTH    ? "ta.key"
                       : wrap == SHIMMER_WRAP_TLS_CRYPT ? "tc.key"
                                                        : NULL;
    if (file != NULL) {
        g_autoptr(GBytes) k = fixture(file);
        if (!shimmer_keys_parse_static(g_bytes_get_data(k, NULL), g_bytes_get_size(k),
                                       setup->static_key, &error))
            g_error("%s: %s", file, error->message);
    }
    if (wrap == SHIMMER_WRAP_TLS_CRYPT_V2) {
        g_autoptr(GBytes) k = fixture("tc-v2-server.key");
        if (!shimmer_keys_parse_tls_crypt_v2_server(g_bytes_get_data(k, NULL), g_bytes_get_size(k),
                                                    setup->v2_key, &error))
            g_error("tc-v2-server.key: %s", error->message);
    }
}

static void setup_clear(TsSetup *setup)
{
    g_bytes_unref(setup->ca);
    g_bytes_unref(setup->cert);
    g_bytes_unref(setup->key);
}

/* The test client's profile; CA_PEM replaces the fixture CA when given. */
static ShimmerConfig *client_config_ca(ShimmerWrapMode wrap, const char *extra, const char *ca_pem)
{
    g_autofree char *dir = data_dir();
    GString *t = g_string_new(NULL);
    g_string_append_printf(t, "client\n"
                              "dev tun\n"
                              "remote 192.0.2.1 1194\n"
                              "remote-cert-tls server\n"
                              "verify-x509-name server.shimmer.test name\n"
                              "cert client.crt\n"
                              "key client.key\n");
    if (ca_pem != NULL)
        g_string_append_printf(t, "<ca>\n%s</ca>\n", ca_pem);
    else
        g_string_append(t, "ca ca.crt\n");
    switch (wrap) {
    case SHIMMER_WRAP_TLS_AUTH:
        g_string_append(t, "tls-auth ta.key 1\nauth SHA256\n");
        break;
    case SHIMMER_WRAP_TLS_CRYPT:
        g_string_append(t, "tls-crypt tc.key\n");
        break;
    case SHIMMER_WRAP_TLS_CRYPT_V2:
        g_string_append(t, "tls-crypt-v2 tc-v2-client.key\n");
        break;
    default:
        break;
    }
    if (extra == NULL || strstr(extra, "proto ") == NULL)
        g_string_append(t, "proto udp\n");
    if (extra != NULL)
        g_string_append(t, extra);
    ShimmerConfig *cfg =
        shimmer_config_parse("test.ovpn", dir, t->str, t->len, shimmer_config_file_loader, NULL);
    if (shimmer_config_has_errors(cfg)) {
        GString *d = g_string_new(NULL);
        shimmer_config_format_diagnostics(cfg, d);
        g_error("test configuration:\n%s\n%s", t->str, d->str);
    }
    g_string_free(t, TRUE);
    return cfg;
}

static ShimmerConfig *client_config(ShimmerWrapMode wrap, const char *extra)
{
    return client_config_ca(wrap, extra, NULL);
}

static Net *net_for(ShimmerWrapMode wrap, const char *extra, guint64 seed)
{
    TsSetup setup;
    setup_init(&setup, wrap);
    Net *n = net_new(client_config(wrap, extra), &setup, seed);
    setup_clear(&setup);
    return n;
}

static void net_start(Net *n)
{
    shimmer_engine_start(n->e, n->now);
}

/* Starts the engine and runs until it is connected, within LIMIT of
 * simulated time. */
static void net_connect(Net *n, gint64 limit)
{
    gint64 t = n->now;
    net_start(n);
    if (!net_run(n, t + limit, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)))
        g_error("not connected after %.1f s: state %s", (double)(n->now - t) / US,
                shimmer_state_to_string(shimmer_engine_get_state(n->e)));
}

/* A plausible IPv4 packet of LEN bytes. */
static void make_ip(guint8 *buf, gsize len, guint seed)
{
    for (gsize i = 0; i < len; i++)
        buf[i] = (guint8)(seed * 131 + i * 17 + (i >> 7));
    buf[0] = 0x45;
}

/* Client to server: the engine encrypts, the server must decrypt the exact
 * bytes. Returns the packet's first byte. */
static guint8 send_up(Net *n, gsize len, guint seed)
{
    guint8 ip[2048], pkt[2048 + 128];
    make_ip(ip, len, seed);
    guint before = n->srv->data_in->len;
    gsize plen = 0;
    g_assert_cmpint(shimmer_engine_encrypt(n->e, ip, len, pkt, sizeof(pkt), n->now, &plen), ==,
                    SHIMMER_ENCRYPT_OK);
    g_assert_cmpuint(plen, ==, len + SHIMMER_DATACHAN_V2_OVERHEAD - (pkt[0] >> 3 == 6 ? 3 : 0));
    net_to_server(n, pkt, plen);
    g_assert_cmpuint(n->srv->data_in->len, ==, before + 1);
    GBytes *got = g_ptr_array_index(n->srv->data_in, before);
    gsize got_len;
    const guint8 *g = g_bytes_get_data(got, &got_len);
    g_assert_cmpmem(g, got_len, ip, len);
    return pkt[0];
}

/* Server to client on KEY_ID: the engine must hand the exact bytes to the
 * tun. */
static void send_down(Net *n, guint key_id, gsize len, guint seed)
{
    guint8 ip[2048], pkt[2048 + 128];
    make_ip(ip, len, seed);
    gsize plen = ts_seal(n->srv, key_id, ip, len, pkt, sizeof(pkt));
    g_assert_cmpuint(plen, >, len);
    guint before = n->tun->len;
    g_assert_cmpint(net_to_engine(n, pkt, plen), ==, SHIMMER_RECV_TUN);
    g_assert_cmpuint(n->tun->len, ==, before + 1);
    gsize got_len;
    const guint8 *g = g_bytes_get_data(g_ptr_array_index(n->tun, before), &got_len);
    g_assert_cmpmem(g, got_len, ip, len);
}

static void assert_no_drops(Net *n)
{
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    for (guint i = 0; i < SHIMMER_DROP_N_REASONS; i++)
        g_assert_cmpuint(st.dropped[i], ==, 0);
    for (guint i = 0; i < SHIMMER_ENCRYPT_N_RESULTS; i++)
        g_assert_cmpuint(st.not_encrypted[i], ==, 0);
    g_assert_cmpuint(st.reconnects, ==, 0);
}

/* The index into srv->ctl_in of the first control packet with plain op byte
 * OP at or after FROM; -1 if none. */
static gint srv_find_ctl(TestServer *s, guint from, guint8 op)
{
    for (guint i = from; i < s->ctl_in->len; i++) {
        if (g_array_index(s->ctl_in, TsCtlIn, i).op == op)
            return (gint)i;
    }
    return -1;
}

#define OPB(op, key) shimmer_packet_op_byte((op), (key))

/* ---------------------------------------------------------------------- */
/* (a) clean connects */

typedef struct {
    const char *name;
    ShimmerWrapMode wrap;
    const char *extra;
    const char *push; /* NULL: DEFAULT_PUSH */
    ShimmerDatachanCipher cipher;
    guint32 peer_id;
    gboolean ekm;
    guint km_trailing;
    const char *want_cipher;
} ConnectCase;

static const ConnectCase connect_cases[] = {
    {"none", SHIMMER_WRAP_NONE, NULL, NULL, SHIMMER_DATACHAN_AES_256_GCM, 3, TRUE, 3,
     "AES-256-GCM"},
    {"tls-auth", SHIMMER_WRAP_TLS_AUTH, NULL, NULL, SHIMMER_DATACHAN_AES_256_GCM, 3, TRUE, 3,
     "AES-256-GCM"},
    {"tls-crypt", SHIMMER_WRAP_TLS_CRYPT, NULL, NULL, SHIMMER_DATACHAN_AES_256_GCM, 3, TRUE, 3,
     "AES-256-GCM"},
    {"tls-crypt-v2", SHIMMER_WRAP_TLS_CRYPT_V2, NULL, NULL, SHIMMER_DATACHAN_AES_256_GCM, 3, TRUE,
     3, "AES-256-GCM"},
    /* Variants on tls-crypt. */
    {"tls12", SHIMMER_WRAP_TLS_CRYPT, "tls-version-max 1.2\n", NULL, SHIMMER_DATACHAN_AES_256_GCM,
     3, TRUE, 3, "AES-256-GCM"},
    {"legacy-prf", SHIMMER_WRAP_TLS_CRYPT, NULL,
     "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,"
     "ifconfig 10.8.0.2 255.255.255.0,peer-id 3,cipher AES-256-GCM",
     SHIMMER_DATACHAN_AES_256_GCM, 3, FALSE, 3, "AES-256-GCM"},
    {"data-v1", SHIMMER_WRAP_TLS_CRYPT, NULL,
     "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 60,"
     "ifconfig 10.8.0.2 255.255.255.0,cipher AES-256-GCM,key-derivation tls-ekm",
     SHIMMER_DATACHAN_AES_256_GCM, SHIMMER_DATACHAN_PEER_ID_NONE, TRUE, 3, "AES-256-GCM"},
    {"aes-128-gcm", SHIMMER_WRAP_TLS_CRYPT, "data-ciphers AES-128-GCM\n",
     "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ifconfig 10.8.0.2 255.255.255.0,"
     "peer-id 3,cipher AES-128-GCM,protocol-flags cc-exit tls-ekm",
     SHIMMER_DATACHAN_AES_128_GCM, 3, TRUE, 3, "AES-128-GCM"},
    {"chacha20-poly1305", SHIMMER_WRAP_TLS_AUTH, NULL,
     "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,ifconfig 10.8.0.2 255.255.255.0,"
     "peer-id 3,cipher CHACHA20-POLY1305,key-derivation tls-ekm",
     SHIMMER_DATACHAN_CHACHA20_POLY1305, 3, TRUE, 3, "CHACHA20-POLY1305"},
    {"km-no-trailing", SHIMMER_WRAP_TLS_CRYPT, NULL, NULL, SHIMMER_DATACHAN_AES_256_GCM, 3, TRUE, 0,
     "AES-256-GCM"},
    {"km-two-trailing", SHIMMER_WRAP_NONE, NULL, NULL, SHIMMER_DATACHAN_AES_256_GCM, 3, TRUE, 2,
     "AES-256-GCM"},
    {"tcp", SHIMMER_WRAP_TLS_CRYPT, "proto tcp-client\n", NULL, SHIMMER_DATACHAN_AES_256_GCM, 3,
     TRUE, 3, "AES-256-GCM"},
    {"tcp-none", SHIMMER_WRAP_NONE, "proto tcp-client\n", NULL, SHIMMER_DATACHAN_AES_256_GCM, 3,
     TRUE, 3, "AES-256-GCM"},
};

static void test_connect(gconstpointer data)
{
    const ConnectCase *c = data;
    Net *n = net_for(c->wrap, c->extra, 1);
    TestServer *s = n->srv;
    if (c->push != NULL)
        ts_set_push(s, c->push);
    s->cipher = c->cipher;
    s->peer_id = c->peer_id;
    s->ekm = c->ekm;
    s->km_trailing = c->km_trailing;

    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_IDLE);
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), ==, G_MAXINT64);
    net_connect(n, 10 * US);
    /* No loss: one round trip per flight, no timer involved. */
    g_assert_cmpint(n->now, ==, T0);

    /* Events: CONNECT first, the tun configured before "connected". */
    g_assert_cmpint(net_find_event(n, 0, SHIMMER_EVENT_CONNECT, -1), ==, 1);
    g_assert_cmpint(net_event(n, 0)->type, ==, SHIMMER_EVENT_STATE);
    g_assert_cmpint(net_event(n, 0)->state, ==, SHIMMER_STATE_CONNECTING);
    g_assert_cmpuint(net_event(n, 1)->index, ==, 0);
    g_assert_cmpstr(net_event(n, 1)->message, ==, "192.0.2.1");
    gint auth = net_find_event(n, 0, SHIMMER_EVENT_STATE, SHIMMER_STATE_AUTHENTICATING);
    gint getcfg = net_find_event(n, 0, SHIMMER_EVENT_STATE, SHIMMER_STATE_GETTING_CONFIG);
    gint tun = net_find_event(n, 0, SHIMMER_EVENT_TUN_CONFIG, -1);
    gint conn = net_find_event(n, 0, SHIMMER_EVENT_STATE, SHIMMER_STATE_CONNECTED);
    g_assert_cmpint(auth, >, 1);
    g_assert_cmpint(getcfg, >, auth);
    g_assert_cmpint(tun, >, getcfg);
    g_assert_cmpint(conn, ==, tun + 1);
    g_assert_cmpuint(n->events->len, ==, (guint)conn + 1);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 1);

    /* The first packet is the client's hard reset, with no acks and pid 0. */
    gsize len0;
    const guint8 *p0 = g_bytes_get_data(g_ptr_array_index(n->c2s_log, 0), &len0);
    guint want_op = c->wrap == SHIMMER_WRAP_TLS_CRYPT_V2 ? SHIMMER_OP_HARD_RESET_CLIENT_V3
                                                         : SHIMMER_OP_HARD_RESET_CLIENT_V2;
    g_assert_cmphex(p0[0], ==, OPB(want_op, 0));
    TsCtlIn *first = &g_array_index(s->ctl_in, TsCtlIn, 0);
    g_assert_cmphex(first->op, ==, OPB(want_op, 0));
    g_assert_true(first->has_msg_pid);
    g_assert_cmpuint(first->msg_pid, ==, 0);
    g_assert_cmpuint(first->n_acks, ==, 0);
    g_assert_cmpuint(first->payload_len, ==, 0);
    if (c->wrap == SHIMMER_WRAP_TLS_CRYPT_V2) {
        /* Early negotiation is announced by the replay counter; WKc trails. */
        g_assert_cmphex(first->replay_pid, ==, SHIMMER_CTLWRAP_EARLY_NEG_START + 1);
        const ShimmerTlsCryptV2ClientKey *ck = n->cfg->tls_crypt_v2_client;
        g_assert_cmpuint(len0, ==, 1 + 8 + 8 + 32 + 1 + 4 + ck->wkc_len);
        g_assert_cmpmem(p0 + len0 - ck->wkc_len, ck->wkc_len, ck->wkc, ck->wkc_len);
        gsize mlen = 0;
        g_assert_nonnull(shimmer_ctlwrap_get_metadata(s->wrap, &mlen));
        /* Without early negotiation, the next packet is a plain CONTROL_V1. */
        g_assert_cmphex(g_array_index(s->ctl_in, TsCtlIn, 1).op, ==, OPB(SHIMMER_OP_CONTROL_V1, 0));
    } else if (c->wrap == SHIMMER_WRAP_TLS_AUTH) {
        g_assert_cmpuint(len0, ==, 1 + 8 + 32 + 8 + 1 + 4);
        g_assert_cmphex(first->replay_pid, ==, 1);
    } else if (c->wrap == SHIMMER_WRAP_TLS_CRYPT) {
        g_assert_cmpuint(len0, ==, 1 + 8 + 8 + 32 + 1 + 4);
        g_assert_cmphex(first->replay_pid, ==, 1);
    } else {
        g_assert_cmpuint(len0, ==, 1 + 8 + 1 + 4);
    }

    /* What the server learnt about the client. */
    g_assert_cmpuint(s->sessions, ==, 1);
    g_assert_cmpint(s->client_cert_status, ==, 0);
    g_assert_cmpstr(s->client_cn, ==, "client.shimmer.test");
    g_assert_nonnull(s->client_options);
    g_assert_true(g_str_has_prefix(s->client_options, "V4,dev-type tun,"));
    g_assert_true(g_str_has_suffix(s->client_options, ",tls-client"));
    g_assert_nonnull(strstr(s->client_options, n->tcp ? ",proto TCPv4_CLIENT," : ",proto UDPv4,"));
    g_assert_cmpstr(s->username, ==, "");
    g_assert_cmpstr(s->password, ==, "");
    g_assert_nonnull(strstr(s->peer_info, "IV_VER="));
    g_assert_nonnull(strstr(s->peer_info, "IV_NCP=2\n"));
    /* DATA_V2 (2), REQUEST_PUSH (4), TLS_KEY_EXPORT (8) at least. */
    const char *proto = strstr(s->peer_info, "IV_PROTO=");
    g_assert_nonnull(proto);
    guint64 bits = g_ascii_strtoull(proto + 9, NULL, 10);
    g_assert_cmpuint(bits & 0xe, ==, 0xe);
    g_assert_cmpuint(s->push_requests, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(s->messages_in, 0), ==, "PUSH_REQUEST");
    g_assert_cmpint(s->dropped, ==, 0);

    /* What the engine learnt from the server. */
    const ShimmerConfig *pushed = shimmer_engine_get_pushed(n->e);
    g_assert_nonnull(pushed);
    g_assert_cmpstr(pushed->ifconfig_local, ==, "10.8.0.2");
    g_assert_cmpstr(pushed->ifconfig_remote, ==, "255.255.255.0");
    g_assert_cmpstr(pushed->route_gateway, ==, "10.8.0.1");
    g_assert_cmpint(pushed->topology, ==, SHIMMER_TOPOLOGY_SUBNET);
    g_assert_cmpint(pushed->peer_id, ==, c->peer_id == 3 ? 3 : -1);
    g_assert_cmpstr(shimmer_engine_get_cipher(n->e), ==, c->want_cipher);
    const char *tlsv = shimmer_engine_get_tls_version(n->e);
    g_assert_nonnull(tlsv);
    if (c->extra != NULL && strstr(c->extra, "tls-version-max 1.2"))
        g_assert_cmpstr(tlsv, ==, "TLS1.2");
    else
        g_assert_cmpstr(tlsv, ==, "TLS1.3");

    /* Data both ways, with the wire format checked on the client's packets. */
    static const gsize sizes[] = {1, 20, 100, 1400};
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
        guint8 op = send_up(n, sizes[i], i);
        if (c->peer_id == SHIMMER_DATACHAN_PEER_ID_NONE) {
            g_assert_cmphex(op, ==, OPB(SHIMMER_OP_DATA_V1, 0));
            g_assert_false(s->last_data_v2);
        } else {
            g_assert_cmphex(op, ==, OPB(SHIMMER_OP_DATA_V2, 0));
            g_assert_true(s->last_data_v2);
            g_assert_cmphex(s->last_peer_id, ==, 3);
        }
        send_down(n, 0, sizes[i], 100 + i);
    }
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.tun_packets_in, ==, G_N_ELEMENTS(sizes));
    g_assert_cmpuint(st.tun_packets_out, ==, G_N_ELEMENTS(sizes));
    g_assert_cmpuint(st.tun_bytes_in, ==, 1 + 20 + 100 + 1400);
    g_assert_cmpuint(st.tun_bytes_out, ==, 1 + 20 + 100 + 1400);
    g_assert_cmpuint(st.link_bytes_out, >, 1400);
    g_assert_cmpuint(st.link_bytes_in, >, 1400);
    assert_no_drops(n);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* (b) loss, duplication and reordering of control packets */

static void test_impaired(gconstpointer data)
{
    ShimmerWrapMode wrap = (ShimmerWrapMode)GPOINTER_TO_INT(data);
    guint lost = 0, dups = 0, reordered = 0;
    gint64 slowest = 0;
    for (guint64 seed = 1; seed <= 8; seed++) {
        Net *n = net_for(wrap, NULL, seed * 1000 + (guint64)wrap);
        n->loss = 25;
        n->dup = 25;
        n->reorder = 25;
        n->srv->ping_every = 10 * US;
        gint64 t = n->now;
        net_start(n);
        /* Bounded: well inside hand-window, so no attempt was given up. */
        if (!net_run(n, t + 50 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)))
            g_error("seed %" G_GUINT64_FORMAT ": not connected after 50 s (state %s)", seed,
                    shimmer_state_to_string(shimmer_engine_get_state(n->e)));
        slowest = MAX(slowest, n->now - t);
        ShimmerEngineStats st;
        shimmer_engine_get_stats(n->e, &st);
        g_assert_cmpuint(st.reconnects, ==, 0);
        g_assert_cmpuint(n->srv->sessions, ==, 1);
        g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 1);
        g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
        /* Let the retransmissions and late duplicates play out. */
        g_assert_true(net_run(n, n->now + 30 * US, NULL, NULL));
        g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
        send_up(n, 300, (guint)seed);
        send_down(n, (guint)n->srv->primary, 300, (guint)seed);
        shimmer_engine_get_stats(n->e, &st);
        g_assert_cmpuint(st.reconnects, ==, 0);
        g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 1);
        lost += n->n_lost;
        dups += n->n_dup;
        reordered += n->n_reordered;
        net_free(n);
    }
    g_test_message("lost %u, duplicated %u, reordered %u; slowest connect %.1f s", lost, dups,
                   reordered, (double)slowest / US);
    /* The impairments did happen. */
    g_assert_cmpuint(lost, >=, 15);
    g_assert_cmpuint(dups, >=, 15);
    g_assert_cmpuint(reordered, >=, 15);
    g_assert_cmpint(slowest, >, 2 * US);
}

/* ---------------------------------------------------------------------- */
/* (c) replay */

static void deliver_sealed(Net *n, GPtrArray *pkts, guint index, ShimmerRecvResult want)
{
    gsize len;
    const guint8 *p = g_bytes_get_data(g_ptr_array_index(pkts, index), &len);
    g_assert_cmpint(net_to_engine(n, p, len), ==, want);
}

static void test_replay(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 7);
    net_connect(n, 10 * US);
    ShimmerEngineStats st;

    /* 80 packets, ids 1..80, sealed now and delivered in any order below. */
    GPtrArray *pkts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_ptr_array_add(pkts, g_bytes_new(NULL, 0)); /* so that index = packet id */
    for (guint i = 1; i <= 80; i++) {
        guint8 ip[64], pkt[256];
        make_ip(ip, 40 + i % 7, i);
        gsize len = ts_seal(n->srv, 0, ip, 40 + i % 7, pkt, sizeof(pkt));
        guint32 id = 0;
        g_assert_true(shimmer_datachan_peek_packet_id(TRUE, pkt, len, &id));
        g_assert_cmpuint(id, ==, i);
        g_ptr_array_add(pkts, g_bytes_new(pkt, len));
    }

    /* Twice the same packet: the second is a replay. */
    deliver_sealed(n, pkts, 1, SHIMMER_RECV_TUN);
    deliver_sealed(n, pkts, 1, SHIMMER_RECV_DROPPED);
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_REPLAY], ==, 1);
    g_assert_cmpuint(st.tun_packets_out, ==, 1);

    /* Jump ahead to 71, then the window edge: 71 - 63 = 8 is the oldest id
     * still inside a 64-packet window, 7 is one too old. */
    deliver_sealed(n, pkts, 71, SHIMMER_RECV_TUN);
    deliver_sealed(n, pkts, 8, SHIMMER_RECV_TUN);
    deliver_sealed(n, pkts, 7, SHIMMER_RECV_DROPPED);
    deliver_sealed(n, pkts, 8, SHIMMER_RECV_DROPPED);
    deliver_sealed(n, pkts, 71, SHIMMER_RECV_DROPPED);
    deliver_sealed(n, pkts, 2, SHIMMER_RECV_DROPPED);
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_REPLAY], ==, 5);
    g_assert_cmpuint(st.tun_packets_out, ==, 3);
    /* Reordered but new inside the window: accepted once each. */
    for (guint i = 70; i >= 60; i--)
        deliver_sealed(n, pkts, i, SHIMMER_RECV_TUN);
    for (guint i = 60; i <= 70; i++)
        deliver_sealed(n, pkts, i, SHIMMER_RECV_DROPPED);
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_REPLAY], ==, 16);
    g_assert_cmpuint(st.tun_packets_out, ==, 14);

    /* Time backtrack: 15 s after the newest packet, an older unseen id is
     * too late; a newer one is fine. */
    deliver_sealed(n, pkts, 72, SHIMMER_RECV_TUN);
    n->now += 16 * US;
    deliver_sealed(n, pkts, 50, SHIMMER_RECV_DROPPED);
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_REPLAY], ==, 17);
    deliver_sealed(n, pkts, 73, SHIMMER_RECV_TUN);
    /* Forged: a packet id beyond the highest with a broken tag must not move
     * the window, or the genuine packet would then be refused. */
    {
        gsize len;
        const guint8 *p = g_bytes_get_data(g_ptr_array_index(pkts, 80), &len);
        g_autofree guint8 *bad = g_memdup2(p, len);
        bad[len - 1] ^= 1;
        g_assert_cmpint(net_to_engine(n, bad, len), ==, SHIMMER_RECV_DROPPED);
        shimmer_engine_get_stats(n->e, &st);
        g_assert_cmpuint(st.dropped[SHIMMER_DROP_AUTH], ==, 1);
        deliver_sealed(n, pkts, 74, SHIMMER_RECV_TUN);
        deliver_sealed(n, pkts, 80, SHIMMER_RECV_TUN);
    }

    /* The control channel has its own replay window: the server's reset
     * answer, replayed now, is dropped and changes nothing. */
    gsize rlen;
    const guint8 *reset = g_bytes_get_data(g_ptr_array_index(n->s2c_log, 0), &rlen);
    g_assert_cmpuint(shimmer_packet_opcode(reset[0]), ==, SHIMMER_OP_HARD_RESET_SERVER_V2);
    shimmer_engine_get_stats(n->e, &st);
    guint64 replays = st.dropped[SHIMMER_DROP_REPLAY];
    g_assert_cmpint(net_to_engine(n, reset, rlen), ==, SHIMMER_RECV_DROPPED);
    /* ...and so is every other control packet the server sent. */
    for (guint i = 1; i < n->s2c_log->len; i++) {
        gsize len;
        const guint8 *p = g_bytes_get_data(g_ptr_array_index(n->s2c_log, i), &len);
        if (shimmer_packet_classify(p, len) == SHIMMER_PACKET_KIND_CONTROL)
            g_assert_cmpint(net_to_engine(n, p, len), ==, SHIMMER_RECV_DROPPED);
    }
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_REPLAY], >, replays + 3);
    net_pump(n);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_MALFORMED], ==, 0);
    send_up(n, 100, 1);
    send_down(n, 0, 100, 2);
    g_ptr_array_unref(pkts);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* (d) garbage, truncation and bit flips */

/* Feeds the engine every prefix of PKT, bit-flipped copies and garbage
 * shaped like it. Each must be dropped and counted exactly once; nothing may
 * come out of the engine (no answer to junk), and nothing else may change. */
static guint inject_corruptions(Net *n, const guint8 *pkt, gsize len, guint64 seed)
{
    ShimmerEngineStats before, after;
    shimmer_engine_get_stats(n->e, &before);
    ShimmerState state = shimmer_engine_get_state(n->e);
    gint64 deadline = shimmer_engine_next_deadline(n->e);
    guint8 tun[4096];
    gsize tun_len = 0;
    guint count = 0;

    /* Every prefix, each in a buffer of exactly that size so that ASan sees
     * a read past its end. */
    for (gsize cut = 0; cut < len; cut++) {
        guint8 *p = g_memdup2(pkt, cut ? cut : 1);
        g_assert_cmpint(shimmer_engine_recv(n->e, p, cut, n->now, tun, sizeof(tun), &tun_len, NULL),
                        ==, SHIMMER_RECV_DROPPED);
        g_free(p);
        count++;
    }
    /* Every bit of the headers, then a sample of the rest. */
    guint8 *buf = g_malloc(len + 1600);
    for (gsize bit = 0; bit < len * 8; bit += bit < 96 * 8 ? 1 : 11) {
        memcpy(buf, pkt, len);
        buf[bit / 8] ^= (guint8)(1u << (bit % 8));
        g_assert_cmpint(
            shimmer_engine_recv(n->e, buf, len, n->now, tun, sizeof(tun), &tun_len, NULL), ==,
            SHIMMER_RECV_DROPPED);
        count++;
    }
    /* The packet with bytes appended. */
    for (gsize extra = 1; extra < 40; extra += 7) {
        memcpy(buf, pkt, len);
        memset(buf + len, 0, extra);
        g_assert_cmpint(
            shimmer_engine_recv(n->e, buf, len + extra, n->now, tun, sizeof(tun), &tun_len, NULL),
            ==, SHIMMER_RECV_DROPPED);
        count++;
    }
    /* Garbage: random, random behind the real first byte, random behind the
     * real first 30 bytes. */
    Prng g = {seed};
    for (guint i = 0; i < 300; i++) {
        gsize glen = prng_below(&g, 1500);
        prng_fill(&g, buf, glen);
        if (i % 3 == 1 && glen > 0)
            buf[0] = pkt[0];
        else if (i % 3 == 2)
            memcpy(buf, pkt, MIN(glen, MIN(len, 30)));
        g_assert_cmpint(
            shimmer_engine_recv(n->e, buf, glen, n->now, tun, sizeof(tun), &tun_len, NULL), ==,
            SHIMMER_RECV_DROPPED);
        count++;
    }
    g_free(buf);

    shimmer_engine_get_stats(n->e, &after);
    g_assert_cmpuint(stats_dropped(&after) - stats_dropped(&before), ==, count);
    g_assert_cmpuint(after.tun_packets_out, ==, before.tun_packets_out);
    g_assert_cmpuint(after.link_bytes_in, ==, before.link_bytes_in);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, state);
    /* Nothing to send, no timer moved. */
    guint8 out[SHIMMER_ENGINE_MAX_PACKET];
    g_assert_cmpint(shimmer_engine_write_pkt(n->e, out, sizeof(out), n->now), ==, 0);
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), ==, deadline);
    ShimmerEvent ev;
    g_assert_false(shimmer_engine_pop_event(n->e, &ev));
    return count;
}

typedef struct {
    gboolean did_reset, did_mid, did_ack, want_connected, did_connected;
    guint injected;
} CorruptCtx;

static gboolean corrupt_hook(Net *n, gboolean to_client, const guint8 *pkt, gsize len)
{
    CorruptCtx *c = n->hook_data;
    if (!to_client)
        return TRUE;
    guint op = shimmer_packet_opcode(pkt[0]);
    ShimmerState st = shimmer_engine_get_state(n->e);
    if (!c->did_reset && op == SHIMMER_OP_HARD_RESET_SERVER_V2) {
        /* Before the engine has seen any server packet. */
        g_assert_cmpint(st, ==, SHIMMER_STATE_CONNECTING);
        c->injected += inject_corruptions(n, pkt, len, 1);
        c->did_reset = TRUE;
    } else if (!c->did_mid && op == SHIMMER_OP_CONTROL_V1 && len > 500 &&
               st == SHIMMER_STATE_AUTHENTICATING) {
        c->injected += inject_corruptions(n, pkt, len, 2);
        c->did_mid = TRUE;
    } else if (!c->did_ack && op == SHIMMER_OP_ACK_V1) {
        c->injected += inject_corruptions(n, pkt, len, 3);
        c->did_ack = TRUE;
    } else if (c->want_connected && !c->did_connected && op == SHIMMER_OP_CONTROL_V1) {
        g_assert_cmpint(st, ==, SHIMMER_STATE_CONNECTED);
        c->injected += inject_corruptions(n, pkt, len, 4);
        c->did_connected = TRUE;
    }
    return TRUE;
}

static void test_corruption(gconstpointer data)
{
    ShimmerWrapMode wrap = (ShimmerWrapMode)GPOINTER_TO_INT(data);
    Net *n = net_for(wrap, NULL, 11);
    CorruptCtx c = {0};
    n->hook = corrupt_hook;
    n->hook_data = &c;
    /* A server that leaves the first PUSH_REQUEST unanswered acks it with a
     * bare ACK_V1: another packet type to corrupt. */
    n->srv->answer_push = FALSE;
    net_start(n);
    g_assert_true(net_run(n, n->now + 4 * US, NULL, NULL));
    g_assert_true(c.did_reset);
    g_assert_true(c.did_mid);
    g_assert_true(c.did_ack);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_GETTING_CONFIG);
    n->srv->answer_push = TRUE;
    /* The junk cost no retransmission: connected at the PUSH_REQUEST resend. */
    g_assert_true(net_run(n, T0 + 5 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpint(n->now, ==, T0 + 5 * US);
    g_assert_cmpuint(n->srv->sessions, ==, 1);

    /* Connected: a control message from the server, and data. */
    c.want_connected = TRUE;
    g_assert_true(ts_send_message(n->srv, 0, "INFO,still here"));
    net_pump(n);
    g_assert_true(c.did_connected);
    gint info = net_find_event(n, 0, SHIMMER_EVENT_INFO, -1);
    g_assert_cmpint(info, >=, 0);
    g_assert_cmpstr(net_event(n, info)->message, ==, "still here");

    guint8 ip[300], pkt[512];
    make_ip(ip, sizeof(ip), 5);
    gsize len = ts_seal(n->srv, 0, ip, sizeof(ip), pkt, sizeof(pkt));
    c.injected += inject_corruptions(n, pkt, len, 5);
    g_assert_cmpint(net_to_engine(n, pkt, len), ==, SHIMMER_RECV_TUN);
    gsize got_len;
    const guint8 *got = g_bytes_get_data(g_ptr_array_index(n->tun, n->tun->len - 1), &got_len);
    g_assert_cmpmem(got, got_len, ip, sizeof(ip));

    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(stats_dropped(&st), ==, c.injected);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_AUTH], >, 1000);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_MALFORMED], >, 100);
    g_assert_cmpuint(st.reconnects, ==, 0);
    send_up(n, 64, 9);
    send_down(n, 0, 64, 10);
    g_test_message("%u corrupted packets dropped", c.injected);
    net_free(n);
}

/* Without wrapping nothing authenticates control packets, but data packets
 * still must not get through corrupted. */
static void test_corruption_data_nowrap(void)
{
    Net *n = net_for(SHIMMER_WRAP_NONE, NULL, 12);
    net_connect(n, 10 * US);
    guint8 ip[200], pkt[512];
    make_ip(ip, sizeof(ip), 6);
    gsize len = ts_seal(n->srv, 0, ip, sizeof(ip), pkt, sizeof(pkt));
    guint injected = inject_corruptions(n, pkt, len, 6);
    g_assert_cmpint(net_to_engine(n, pkt, len), ==, SHIMMER_RECV_TUN);
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(stats_dropped(&st), ==, injected);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* (e) key rotation */

static gboolean done_renegotiated(Net *n, gconstpointer data)
{
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    guint key = (guint)GPOINTER_TO_INT(data);
    return st.renegotiations >= 1 && n->srv->keys[key].enc != NULL;
}

static void test_reneg_client(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "reneg-sec 10\n", 21);
    n->srv->ping_every = 10 * US;
    net_connect(n, 10 * US);
    gint64 established = net_event(n, net_find_event(n, 0, SHIMMER_EVENT_TUN_CONFIG, -1))->at;
    send_up(n, 100, 1);
    send_down(n, 0, 100, 2);
    guint ctl_mark = n->srv->ctl_in->len;

    /* Sealed on key 0 before the renegotiation, delivered after it. */
    guint8 ip_old[120], old_pkt[256];
    make_ip(ip_old, sizeof(ip_old), 3);
    gsize old_len = ts_seal(n->srv, 0, ip_old, sizeof(ip_old), old_pkt, sizeof(old_pkt));
    g_assert_cmpuint(old_len, >, 0);

    /* Just before reneg-sec nothing has started. */
    g_assert_true(net_run(n, established + 10 * US - 1, NULL, NULL));
    g_assert_cmpint(srv_find_ctl(n->srv, ctl_mark, OPB(SHIMMER_OP_SOFT_RESET_V1, 1)), ==, -1);
    g_assert_true(net_run(n, established + 30 * US, done_renegotiated, GINT_TO_POINTER(1)));
    gint soft = srv_find_ctl(n->srv, ctl_mark, OPB(SHIMMER_OP_SOFT_RESET_V1, 1));
    g_assert_cmpint(soft, >=, 0);
    TsCtlIn *sr = &g_array_index(n->srv->ctl_in, TsCtlIn, soft);
    g_assert_cmpint(sr->at, ==, established + 10 * US);
    g_assert_true(sr->has_msg_pid);
    g_assert_cmpuint(sr->msg_pid, ==, 0);
    g_assert_cmpuint(sr->payload_len, ==, 0);
    /* Nothing on key 0 restarted, and the engine counted it. */
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.renegotiations, ==, 1);
    g_assert_cmpuint(st.reconnects, ==, 0);
    g_assert_cmpuint(n->srv->sessions, ==, 1);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 1);

    /* The client keeps sending on key 0 until the server shows it has key
     * 1, with a data packet on it; then on key 1. */
    g_assert_cmphex(send_up(n, 200, 4), ==, OPB(SHIMMER_OP_DATA_V2, 0));
    send_down(n, 1, 90, 40);
    net_pump(n);
    g_assert_cmphex(send_up(n, 200, 4), ==, OPB(SHIMMER_OP_DATA_V2, 1));
    g_assert_cmpuint(n->srv->last_data_key_id, ==, 1);
    /* Lame duck: key 0 still decrypts, the held packet included. */
    g_assert_cmpint(net_to_engine(n, old_pkt, old_len), ==, SHIMMER_RECV_TUN);
    gsize got_len;
    const guint8 *got = g_bytes_get_data(g_ptr_array_index(n->tun, n->tun->len - 1), &got_len);
    g_assert_cmpmem(got, got_len, ip_old, sizeof(ip_old));
    send_down(n, 0, 80, 5);
    send_down(n, 1, 90, 6);
    send_down(n, 0, 81, 7);
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(stats_dropped(&st), ==, 0);

    /* The next rotation (key 2) retires key 0 for good; key 1 is the lame
     * duck then. */
    guint8 ip0[50], p0[128];
    make_ip(ip0, sizeof(ip0), 8);
    gsize p0_len = ts_seal(n->srv, 0, ip0, sizeof(ip0), p0, sizeof(p0));
    g_assert_true(net_run(n, n->now + 30 * US, done_renegotiated, GINT_TO_POINTER(2)));
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.renegotiations, ==, 2);
    /* Without a word from the server on key 2, the client takes it a
     * second after the exchange settled. */
    gint64 settled = n->now;
    g_assert_cmphex(send_up(n, 60, 9), ==, OPB(SHIMMER_OP_DATA_V2, 1));
    g_assert_true(net_run(n, settled + US / 2, NULL, NULL));
    g_assert_cmphex(send_up(n, 60, 9), ==, OPB(SHIMMER_OP_DATA_V2, 1));
    g_assert_true(net_run(n, settled + US + US / 10, NULL, NULL));
    g_assert_cmphex(send_up(n, 60, 9), ==, OPB(SHIMMER_OP_DATA_V2, 2));
    send_down(n, 1, 70, 10);
    send_down(n, 2, 70, 11);
    g_assert_cmpint(net_to_engine(n, p0, p0_len), ==, SHIMMER_RECV_DROPPED);
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_NO_KEY], ==, 1);
    g_assert_cmpuint(st.reconnects, ==, 0);
    net_free(n);
}

static void test_reneg_server(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_AUTH, NULL, 22);
    net_connect(n, 10 * US);
    send_up(n, 100, 1);
    guint ctl_mark = n->srv->ctl_in->len;
    guint8 ip_old[77], old_pkt[256];
    make_ip(ip_old, sizeof(ip_old), 3);
    gsize old_len = ts_seal(n->srv, 0, ip_old, sizeof(ip_old), old_pkt, sizeof(old_pkt));

    n->now += 5 * US;
    n->srv->now = n->now;
    ts_start_soft_reset(n->srv, 1);
    g_assert_true(net_run(n, n->now + 20 * US, done_renegotiated, GINT_TO_POINTER(1)));
    /* The client answered with its own SOFT_RESET on key 1, pid 0. */
    gint soft = srv_find_ctl(n->srv, ctl_mark, OPB(SHIMMER_OP_SOFT_RESET_V1, 1));
    g_assert_cmpint(soft, >=, 0);
    g_assert_cmpuint(g_array_index(n->srv->ctl_in, TsCtlIn, soft).msg_pid, ==, 0);
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.renegotiations, ==, 1);
    g_assert_cmpuint(st.reconnects, ==, 0);
    /* Key 1 sends once the server has shown it has it. */
    send_down(n, 1, 100, 5);
    net_pump(n);
    g_assert_cmphex(send_up(n, 200, 4), ==, OPB(SHIMMER_OP_DATA_V2, 1));
    g_assert_cmpint(net_to_engine(n, old_pkt, old_len), ==, SHIMMER_RECV_TUN);
    send_down(n, 0, 100, 6);
    /* The client's own next rotation takes the next key id. */
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(stats_dropped(&st), ==, 0);
    net_free(n);
}

/* Key ids go 1..7 and then wrap to 1, never back to 0. */
static void test_reneg_wrap(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_AUTH, "reneg-sec 10\n", 23);
    n->srv->ping_every = 10 * US;
    net_connect(n, 10 * US);
    static const guint want[] = {1, 2, 3, 4, 5, 6, 7, 1, 2, 3};
    for (guint i = 0; i < G_N_ELEMENTS(want); i++) {
        ShimmerEngineStats st;
        shimmer_engine_get_stats(n->e, &st);
        guint64 before = st.renegotiations;
        gint64 limit = n->now + 30 * US;
        while (n->now < limit) {
            g_assert_true(net_run(n, n->now + US, NULL, NULL));
            shimmer_engine_get_stats(n->e, &st);
            if (st.renegotiations > before && n->srv->primary == (gint)want[i])
                break;
        }
        g_assert_cmpuint(st.renegotiations, ==, before + 1);
        g_assert_cmpint(n->srv->primary, ==, (gint)want[i]);
        send_down(n, want[i], 50, i);
        net_pump(n);
        g_assert_cmphex(send_up(n, 50, i), ==, OPB(SHIMMER_OP_DATA_V2, want[i]));
        g_assert_cmpuint(st.reconnects, ==, 0);
    }
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* (f) keepalive */

static void test_keepalive(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "connect-retry 2\n", 31);
    net_connect(n, 10 * US);
    gint64 quiet_since = n->last_c2s_at;
    gint64 last_heard = n->last_s2c_at;
    g_assert_cmpint(quiet_since, ==, T0);

    /* Ping 10: nothing for 10 s of send silence, then exactly one ping. */
    g_assert_true(net_run(n, quiet_since + 10 * US - 1, NULL, NULL));
    g_assert_cmpuint(n->srv->pings, ==, 0);
    g_assert_true(net_run(n, quiet_since + 10 * US, NULL, NULL));
    g_assert_cmpuint(n->srv->pings, ==, 1);
    g_assert_cmpint(n->srv->last_ping_at, ==, quiet_since + 10 * US);
    /* The ping is an ordinary DATA_V2 packet, 16 bytes of plaintext. */
    gsize plen;
    const guint8 *ping =
        g_bytes_get_data(g_ptr_array_index(n->c2s_log, n->c2s_log->len - 1), &plen);
    g_assert_cmphex(ping[0], ==, OPB(SHIMMER_OP_DATA_V2, 0));
    g_assert_cmpuint(plen, ==, SHIMMER_DATACHAN_V2_OVERHEAD + 16);
    /* Traffic from the tun counts as sending: it postpones the next ping. */
    g_assert_true(net_run(n, quiet_since + 15 * US, NULL, NULL));
    send_up(n, 40, 1);
    g_assert_true(net_run(n, quiet_since + 25 * US - 1, NULL, NULL));
    g_assert_cmpuint(n->srv->pings, ==, 1);
    g_assert_true(net_run(n, quiet_since + 25 * US, NULL, NULL));
    g_assert_cmpuint(n->srv->pings, ==, 2);

    /* The server goes silent: ping-restart 60 after the last packet heard. */
    n->srv->silent = TRUE;
    n->auto_transport = FALSE;
    guint mark = n->events->len;
    g_assert_true(net_run(n, last_heard + 60 * US - 1, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    g_assert_cmpuint(n->events->len, ==, mark);
    g_assert_true(net_run(n, last_heard + 60 * US, NULL, NULL));
    gint disc = net_find_event(n, mark, SHIMMER_EVENT_DISCONNECT_TRANSPORT, -1);
    gint reco = net_find_event(n, mark, SHIMMER_EVENT_STATE, SHIMMER_STATE_RECONNECTING);
    g_assert_cmpint(disc, >=, 0);
    g_assert_cmpint(reco, >=, 0);
    g_assert_cmpint(net_event(n, disc)->at, ==, last_heard + 60 * US);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_RECONNECTING);
    /* Pings kept going while the server was silent. */
    guint data_pkts = 0;
    for (guint i = 0; i < n->c2s_log->len; i++) {
        gint64 at = g_array_index(n->c2s_times, gint64, i);
        const guint8 *p = g_bytes_get_data(g_ptr_array_index(n->c2s_log, i), NULL);
        if (at > quiet_since + 25 * US && shimmer_packet_opcode(p[0]) == SHIMMER_OP_DATA_V2)
            data_pkts++;
    }
    g_assert_cmpuint(data_pkts, ==, 3); /* at +35, +45, +55 */

    /* connect-retry 2: the next CONNECT two seconds later, not earlier. */
    g_assert_true(net_run(n, last_heard + 62 * US - 1, NULL, NULL));
    g_assert_cmpint(net_find_event(n, mark, SHIMMER_EVENT_CONNECT, -1), ==, -1);
    g_assert_true(net_run(n, last_heard + 62 * US, NULL, NULL));
    gint conn = net_find_event(n, mark, SHIMMER_EVENT_CONNECT, -1);
    g_assert_cmpint(conn, >, reco);
    g_assert_cmpint(net_event(n, conn)->at, ==, last_heard + 62 * US);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTING);

    /* The server is back: a new session, configured again. */
    n->srv->silent = FALSE;
    shimmer_engine_transport_up(n->e, FALSE, n->now);
    g_assert_true(
        net_run(n, n->now + 10 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 2);
    g_assert_cmpuint(n->srv->sessions, ==, 2);
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.reconnects, ==, 1);
    send_up(n, 10, 2);
    send_down(n, 0, 10, 3);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* (g) AUTH_FAILED, (h) cipher negotiation */

static void test_auth_failed(void)
{
    Net *n =
        net_for(SHIMMER_WRAP_TLS_CRYPT, "<auth-user-pass>\nalice\nsecret\n</auth-user-pass>\n", 41);
    ts_set_push(n->srv, "AUTH_FAILED,bad password");
    net_start(n);
    g_assert_true(net_run(n, n->now + 30 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_FAILED)));
    g_assert_cmpstr(n->srv->username, ==, "alice");
    g_assert_cmpstr(n->srv->password, ==, "secret");
    gint af = net_find_event(n, 0, SHIMMER_EVENT_AUTH_FAILED, -1);
    gint failed = net_find_event(n, 0, SHIMMER_EVENT_STATE, SHIMMER_STATE_FAILED);
    gint ex = net_find_event(n, 0, SHIMMER_EVENT_EXIT, -1);
    g_assert_cmpint(af, >=, 0);
    g_assert_cmpstr(net_event(n, af)->message, ==, "bad password");
    g_assert_cmpint(failed, >, af);
    g_assert_cmpint(ex, >, failed);
    g_assert_nonnull(strstr(net_event(n, failed)->message, "bad password"));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 0);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_EXIT), ==, 1);
    /* It stays failed: no new attempt, no timer, no data. */
    g_assert_true(net_run(n, n->now + 600 * US, NULL, NULL));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), ==, G_MAXINT64);
    guint8 ip[20], out[128];
    make_ip(ip, sizeof(ip), 1);
    gsize out_len = 1;
    g_assert_cmpint(
        shimmer_engine_encrypt(n->e, ip, sizeof(ip), out, sizeof(out), n->now, &out_len), ==,
        SHIMMER_ENCRYPT_NOT_CONNECTED);
    g_assert_cmpuint(out_len, ==, 0);
    net_free(n);
}

static void test_cipher_not_offered(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "data-ciphers AES-128-GCM\n", 42);
    ts_set_push(n->srv, "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,"
                        "ifconfig 10.8.0.2 255.255.255.0,peer-id 3,cipher CHACHA20-POLY1305,"
                        "key-derivation tls-ekm");
    n->srv->cipher = SHIMMER_DATACHAN_CHACHA20_POLY1305;
    net_start(n);
    g_assert_true(net_run(n, n->now + 30 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    g_assert_nonnull(strstr(n->srv->peer_info, "IV_CIPHERS=AES-128-GCM\n"));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 0);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_EXIT), ==, 1);
    g_assert_null(shimmer_engine_get_cipher(n->e));
    guint8 ip[20], out[128];
    make_ip(ip, sizeof(ip), 1);
    gsize out_len = 1;
    g_assert_cmpint(
        shimmer_engine_encrypt(n->e, ip, sizeof(ip), out, sizeof(out), n->now, &out_len), ==,
        SHIMMER_ENCRYPT_NOT_CONNECTED);
    g_assert_cmpuint(out_len, ==, 0);
    net_free(n);
}

/* A reply without a cipher is fine only with data-ciphers-fallback. */
static void test_cipher_missing(void)
{
    Net *n = net_for(SHIMMER_WRAP_NONE, NULL, 43);
    ts_set_push(n->srv, "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,"
                        "ifconfig 10.8.0.2 255.255.255.0,peer-id 3,key-derivation tls-ekm");
    net_start(n);
    g_assert_true(net_run(n, n->now + 30 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    net_free(n);

    n = net_for(SHIMMER_WRAP_NONE, "data-ciphers-fallback AES-128-GCM\n", 44);
    ts_set_push(n->srv, "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,"
                        "ifconfig 10.8.0.2 255.255.255.0,peer-id 3,key-derivation tls-ekm");
    n->srv->cipher = SHIMMER_DATACHAN_AES_128_GCM;
    net_connect(n, 10 * US);
    g_assert_cmpstr(shimmer_engine_get_cipher(n->e), ==, "AES-128-GCM");
    send_up(n, 33, 1);
    send_down(n, 0, 33, 2);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* (i) push-continuation */

#define PUSH_PART1                                                                                 \
    "PUSH_REPLY,route-gateway 10.8.0.1,topology subnet,route 10.9.0.0 255.255.0.0,"                \
    "route 10.10.0.0 255.255.0.0,dhcp-option DNS 10.8.0.53,push-continuation 2"
#define PUSH_PART2                                                                                 \
    "PUSH_REPLY,route 10.11.0.0 255.255.0.0,ping 10,ping-restart 60,"                              \
    "ifconfig 10.8.0.2 255.255.255.0,peer-id 3,cipher AES-256-GCM,key-derivation tls-ekm,"         \
    "push-continuation 1"

static void check_continued(Net *n)
{
    const ShimmerConfig *p = shimmer_engine_get_pushed(n->e);
    g_assert_nonnull(p);
    g_assert_cmpuint(p->routes->len, ==, 3);
    g_assert_cmpstr(((ShimmerRoute *)g_ptr_array_index(p->routes, 0))->network, ==, "10.9.0.0");
    g_assert_cmpstr(((ShimmerRoute *)g_ptr_array_index(p->routes, 2))->network, ==, "10.11.0.0");
    g_assert_cmpuint(p->dhcp_options->len, ==, 1);
    g_assert_cmpstr(p->ifconfig_local, ==, "10.8.0.2");
    g_assert_cmpstr(p->route_gateway, ==, "10.8.0.1");
    g_assert_cmpint(p->peer_id, ==, 3);
    g_assert_cmpint(p->ping, ==, 10);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 1);
    send_up(n, 77, 1);
    send_down(n, 0, 77, 2);
}

/* A split PUSH_REPLY must be merged, not refused: the merged parts once
 * carried both "push-continuation 2" and "1", which the push parser refused
 * as a conflict. */
static gboolean continuation_bug(Net *n)
{
    g_assert_cmpint(shimmer_engine_get_state(n->e), !=, SHIMMER_STATE_FAILED);
    return FALSE;
}

static void test_push_continuation(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 51);
    g_ptr_array_set_size(n->srv->push_messages, 0);
    g_ptr_array_add(n->srv->push_messages, g_strdup(PUSH_PART1));
    g_ptr_array_add(n->srv->push_messages, g_strdup(PUSH_PART2));
    net_start(n);
    g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
    if (!continuation_bug(n)) {
        g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
        check_continued(n);
    }
    net_free(n);
}

/* The second part arrives in a later flight: until then the client waits. */
static void test_push_continuation_later(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 52);
    ts_set_push(n->srv, PUSH_PART1);
    net_start(n);
    g_assert_true(net_run(n, n->now + 2 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_GETTING_CONFIG);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 0);
    g_assert_null(shimmer_engine_get_pushed(n->e));
    n->srv->answer_push = FALSE;
    n->srv->now = n->now;
    g_assert_true(ts_send_message(n->srv, 0, PUSH_PART2));
    g_assert_true(net_run(n, n->now + 2 * US, done_state_final, NULL));
    if (!continuation_bug(n)) {
        g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
        check_continued(n);
    }
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* (j) tls-crypt-v2 early negotiation */

static void test_early_negotiation(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT_V2, NULL, 61);
    n->srv->early_neg = TRUE;
    net_connect(n, 10 * US);
    const ShimmerTlsCryptV2ClientKey *ck = n->cfg->tls_crypt_v2_client;

    /* On the wire: V3, then (after the server's reset with the TLV) a
     * CONTROL_WKC_V1 that carries WKc at its end. */
    gsize len;
    const guint8 *reset = g_bytes_get_data(g_ptr_array_index(n->s2c_log, 0), &len);
    g_assert_cmpuint(shimmer_packet_opcode(reset[0]), ==, SHIMMER_OP_HARD_RESET_SERVER_V2);
    const guint8 *p0 = g_bytes_get_data(g_ptr_array_index(n->c2s_log, 0), &len);
    g_assert_cmphex(p0[0], ==, OPB(SHIMMER_OP_HARD_RESET_CLIENT_V3, 0));
    const guint8 *p1 = g_bytes_get_data(g_ptr_array_index(n->c2s_log, 1), &len);
    g_assert_cmphex(p1[0], ==, OPB(SHIMMER_OP_CONTROL_WKC_V1, 0));
    g_assert_cmpuint(len, >, ck->wkc_len + 56);
    g_assert_cmpmem(p1 + len - ck->wkc_len, ck->wkc_len, ck->wkc, ck->wkc_len);

    /* What the stateless server read from it: it acks the server's reset and
     * is message 1, after the V3's message 0. */
    TsCtlIn *in1 = &g_array_index(n->srv->ctl_in, TsCtlIn, 1);
    g_assert_cmphex(in1->op, ==, OPB(SHIMMER_OP_CONTROL_WKC_V1, 0));
    g_assert_cmpuint(in1->n_acks, ==, 1);
    g_assert_true(in1->has_msg_pid);
    g_assert_cmpuint(in1->msg_pid, ==, 1);
    g_assert_cmphex(in1->replay_pid, ==, SHIMMER_CTLWRAP_EARLY_NEG_START + 2);
    /* Only the first client packet after the reset carries WKc. */
    for (guint i = 2; i < n->c2s_log->len; i++) {
        const guint8 *p = g_bytes_get_data(g_ptr_array_index(n->c2s_log, i), NULL);
        g_assert_cmpuint(shimmer_packet_opcode(p[0]), !=, SHIMMER_OP_CONTROL_WKC_V1);
    }
    g_assert_cmpuint(n->srv->sessions, ==, 1);
    g_assert_cmpuint(n->srv->dropped, ==, 0);
    send_up(n, 100, 1);
    send_down(n, 0, 100, 2);
    assert_no_drops(n);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* Handshake timers */

static gboolean hold_server_after_reset(Net *n, gboolean to_client, const guint8 *pkt, gsize len)
{
    /* Lets the server's reset answer through, then nothing from the server. */
    if (to_client && shimmer_packet_opcode(pkt[0]) != SHIMMER_OP_HARD_RESET_SERVER_V2)
        return FALSE;
    return TRUE;
}

static void test_handshake_timeouts(void)
{
    /* No answer at all: server-poll-timeout, then the next attempt. */
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "server-poll-timeout 7\nconnect-retry 1\n", 91);
    n->srv->silent = TRUE;
    net_start(n);
    g_assert_true(net_run(n, T0 + 7 * US - 1, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTING);
    /* The client reset was retransmitted meanwhile (2 s, then 4 s later). */
    g_assert_cmpuint(n->c2s_log->len, ==, 3);
    g_assert_cmpint(g_array_index(n->c2s_times, gint64, 1), ==, T0 + 2 * US);
    g_assert_cmpint(g_array_index(n->c2s_times, gint64, 2), ==, T0 + 6 * US);
    g_assert_true(net_run(n, T0 + 7 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_RECONNECTING);
    g_assert_true(net_run(n, T0 + 8 * US, NULL, NULL));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 2);
    g_assert_cmpint(net_event(n, n->events->len - 1)->at, ==, T0 + 8 * US);
    net_free(n);

    /* The server answers the reset, then falls silent: hand-window. */
    n = net_for(SHIMMER_WRAP_TLS_CRYPT, "hand-window 20\nconnect-retry 1\n", 92);
    n->hook = hold_server_after_reset;
    net_start(n);
    g_assert_true(net_run(n, T0 + 20 * US - 1, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_AUTHENTICATING);
    g_assert_true(net_run(n, T0 + 20 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_RECONNECTING);
    n->hook = NULL;
    g_assert_true(net_run(n, T0 + 30 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpint(net_event(n, net_find_event(n, 0, SHIMMER_EVENT_TUN_CONFIG, -1))->at, ==,
                    T0 + 21 * US);
    g_assert_cmpuint(n->srv->sessions, ==, 2);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* Server messages after the push, and the client's exit */

static void test_server_restart(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "connect-retry 3\n", 71);
    net_connect(n, 10 * US);
    guint mark = n->events->len;
    g_assert_true(ts_send_message(n->srv, 0, "RESTART,maintenance"));
    net_pump(n);
    gint reco = net_find_event(n, mark, SHIMMER_EVENT_STATE, SHIMMER_STATE_RECONNECTING);
    g_assert_cmpint(reco, >=, 0);
    g_assert_nonnull(strstr(net_event(n, reco)->message, "maintenance"));
    g_assert_cmpint(net_find_event(n, mark, SHIMMER_EVENT_DISCONNECT_TRANSPORT, -1), <, reco);
    gint64 at = n->now;
    g_assert_true(net_run(n, at + 20 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    gint conn = net_find_event(n, mark, SHIMMER_EVENT_CONNECT, -1);
    g_assert_cmpint(net_event(n, conn)->at, ==, at + 3 * US);
    g_assert_cmpuint(n->srv->sessions, ==, 2);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 2);
    send_up(n, 10, 1);
    send_down(n, 0, 10, 2);

    mark = n->events->len;
    g_assert_true(ts_send_message(n->srv, 0, "HALT,go away"));
    net_pump(n);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    gint ex = net_find_event(n, mark, SHIMMER_EVENT_EXIT, -1);
    g_assert_cmpint(ex, >=, 0);
    g_assert_nonnull(strstr(net_event(n, ex)->message, "go away"));
    net_free(n);
}

static void test_stop_cc_exit(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "explicit-exit-notify 2\n", 81);
    ts_set_push(n->srv, DEFAULT_PUSH ",protocol-flags cc-exit tls-ekm");
    net_connect(n, 10 * US);
    guint mark = n->events->len;
    shimmer_engine_stop(n->e, n->now);
    g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_DISCONNECTED);
    g_assert_cmpint(net_find_event(n, mark, SHIMMER_EVENT_EXIT, -1), >=, 0);
    g_assert_cmpstr(g_ptr_array_index(n->srv->messages_in, n->srv->messages_in->len - 1), ==,
                    "EXIT");
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), ==, G_MAXINT64);
    net_free(n);
}

static void test_stop_occ_exit(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "explicit-exit-notify 3\n", 82);
    net_connect(n, 10 * US);
    guint before = n->srv->data_in->len;
    gint64 t = n->now;
    shimmer_engine_stop(n->e, n->now);
    g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_DISCONNECTED);
    /* One OCC EXIT a second for 3 s. */
    g_assert_cmpuint(n->srv->data_in->len - before, ==, 3);
    static const guint8 occ_exit[17] = {0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81, 0x2d,
                                        0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c, 6};
    for (guint i = before; i < n->srv->data_in->len; i++) {
        gsize len;
        const guint8 *d = g_bytes_get_data(g_ptr_array_index(n->srv->data_in, i), &len);
        g_assert_cmpmem(d, len, occ_exit, sizeof(occ_exit));
    }
    gint ex = net_find_event(n, 0, SHIMMER_EVENT_EXIT, -1);
    g_assert_cmpint(net_event(n, ex)->at, ==, t + 3 * US);
    net_free(n);
}

/* Stopping while a control message is unacked (here a renegotiation the
 * server never answers): the exit must still take explicit-exit-notify
 * seconds, and the retransmit timer that falls due meanwhile must not leave
 * the deadline in the past (which makes a real event loop spin). */
static void test_stop_during_reneg(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "explicit-exit-notify 3\nreneg-sec 10\n", 83);
    n->srv->ping_every = 5 * US;
    net_connect(n, 10 * US);
    gint64 t = n->now;
    n->srv->silent = TRUE;
    g_assert_true(net_run(n, t + 11 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    shimmer_engine_stop(n->e, n->now);
    n->tolerate_stuck = TRUE;
    gboolean done = net_run(n, n->now + 10 * US, done_state_final, NULL);
    /* The deadline once stayed in the past here (key-state timers reported
     * but never served while disconnecting): a real loop would spin. */
    g_assert_false(n->stuck);
    g_assert_true(done);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_DISCONNECTED);
    gint ex = net_find_event(n, 0, SHIMMER_EVENT_EXIT, -1);
    g_assert_cmpint(net_event(n, ex)->at, ==, t + 14 * US);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* The contract: drop reasons, encrypt results, write_pkt */

/* Feeds PKT and checks it was dropped for WANT, and counted once. */
static void expect_drop(Net *n, const guint8 *pkt, gsize len, ShimmerDropReason want)
{
    ShimmerEngineStats before, after;
    shimmer_engine_get_stats(n->e, &before);
    g_assert_cmpint(net_to_engine(n, pkt, len), ==, SHIMMER_RECV_DROPPED);
    g_assert_cmpint(n->last_drop, ==, want);
    shimmer_engine_get_stats(n->e, &after);
    g_assert_cmpuint(after.dropped[want], ==, before.dropped[want] + 1);
    g_assert_cmpuint(stats_dropped(&after), ==, stats_dropped(&before) + 1);
    g_assert_cmpstr(shimmer_drop_reason_to_string(want), !=, "unknown");
}

/* The next packet the server would send, taken off its queue. */
static GBytes *ts_take_packet(TestServer *s)
{
    GBytes *b = g_queue_pop_tail(s->out);
    g_assert_nonnull(b);
    return b;
}

static void test_drop_reasons(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "compress stub-v2\n", 101);
    guint8 junk[64] = {0};

    /* Before any session: nothing to match against. */
    junk[0] = OPB(SHIMMER_OP_CONTROL_V1, 0);
    expect_drop(n, junk, sizeof(junk), SHIMMER_DROP_NO_SESSION);
    junk[0] = OPB(SHIMMER_OP_DATA_V2, 0);
    expect_drop(n, junk, sizeof(junk), SHIMMER_DROP_NO_KEY);

    net_connect(n, 10 * US);
    TestServer *s = n->srv;

    /* Shapes no peer sends. */
    expect_drop(n, junk, 0, SHIMMER_DROP_MALFORMED);
    junk[0] = OPB(0, 0);
    expect_drop(n, junk, sizeof(junk), SHIMMER_DROP_MALFORMED);
    junk[0] = OPB(31, 2);
    expect_drop(n, junk, sizeof(junk), SHIMMER_DROP_MALFORMED);
    junk[0] = OPB(SHIMMER_OP_DATA_V2, 0);
    expect_drop(n, junk, 5, SHIMMER_DROP_MALFORMED);
    /* Control opcodes only a server receives. */
    junk[0] = OPB(SHIMMER_OP_HARD_RESET_CLIENT_V2, 0);
    expect_drop(n, junk, sizeof(junk), SHIMMER_DROP_UNEXPECTED);
    junk[0] = OPB(SHIMMER_OP_CONTROL_WKC_V1, 0);
    expect_drop(n, junk, sizeof(junk), SHIMMER_DROP_UNEXPECTED);
    /* A forged control packet does not authenticate. */
    junk[0] = OPB(SHIMMER_OP_CONTROL_V1, 0);
    expect_drop(n, junk, sizeof(junk), SHIMMER_DROP_AUTH);

    /* Genuine control packets that are not this session's or not now. */
    TsKey *k = &s->keys[0];
    guint8 saved[8];
    memcpy(saved, s->sid, 8);
    s->sid[0] ^= 1;
    ts_send_packet(s, k, SHIMMER_OP_CONTROL_V1, 1000, (const guint8 *)"x", 1);
    memcpy(s->sid, saved, 8);
    g_autoptr(GBytes) other = ts_take_packet(s);
    expect_drop(n, g_bytes_get_data(other, NULL), g_bytes_get_size(other),
                SHIMMER_DROP_WRONG_SESSION);
    /* A hard reset opens key 0 only; then a message for a key id the
     * engine has no state for, first new, then replayed. */
    TsKey k3 = *k;
    k3.key_id = 3;
    ts_send_packet(s, &k3, SHIMMER_OP_HARD_RESET_SERVER_V2, 0, NULL, 0);
    g_autoptr(GBytes) reset3 = ts_take_packet(s);
    expect_drop(n, g_bytes_get_data(reset3, NULL), g_bytes_get_size(reset3),
                SHIMMER_DROP_UNEXPECTED);
    ts_send_packet(s, &k3, SHIMMER_OP_CONTROL_V1, 0, (const guint8 *)"y", 1);
    g_autoptr(GBytes) nokey = ts_take_packet(s);
    expect_drop(n, g_bytes_get_data(nokey, NULL), g_bytes_get_size(nokey), SHIMMER_DROP_NO_KEY);
    expect_drop(n, g_bytes_get_data(nokey, NULL), g_bytes_get_size(nokey), SHIMMER_DROP_REPLAY);

    /* Data: replayed, forged, on a key the engine does not have, too big
     * for the caller's buffer, compressed. */
    guint8 ip[200], pkt[512];
    make_ip(ip, sizeof(ip), 1);
    gsize len = ts_seal(s, 0, ip, sizeof(ip), pkt, sizeof(pkt));
    g_assert_cmpint(net_to_engine(n, pkt, len), ==, SHIMMER_RECV_TUN);
    expect_drop(n, pkt, len, SHIMMER_DROP_REPLAY);
    len = ts_seal(s, 0, ip, sizeof(ip), pkt, sizeof(pkt));
    pkt[len - 1] ^= 0x80;
    expect_drop(n, pkt, len, SHIMMER_DROP_AUTH);
    pkt[0] = OPB(SHIMMER_OP_DATA_V2, 4);
    expect_drop(n, pkt, len, SHIMMER_DROP_NO_KEY);
    len = ts_seal(s, 0, ip, sizeof(ip), pkt, sizeof(pkt));
    guint8 small[100];
    gsize tun_len = 1;
    ShimmerDropReason why = SHIMMER_DROP_NONE;
    g_assert_cmpint(
        shimmer_engine_recv(n->e, pkt, len, n->now, small, sizeof(small), &tun_len, &why), ==,
        SHIMMER_RECV_DROPPED);
    g_assert_cmpint(why, ==, SHIMMER_DROP_TOO_BIG);
    g_assert_cmpuint(tun_len, ==, 0);
    /* ...which did not use up its packet id: with room it goes through. */
    g_assert_cmpint(net_to_engine(n, pkt, len), ==, SHIMMER_RECV_TUN);
    guint8 lz[40] = {0x50, 0x01};
    len = ts_seal(s, 0, lz, sizeof(lz), pkt, sizeof(pkt));
    expect_drop(n, pkt, len, SHIMMER_DROP_COMPRESSED);

    /* Accepted without a tun packet: a ping, an acked duplicate. */
    static const guint8 ping[16] = {0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb,
                                    0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48};
    len = ts_seal(s, 0, ping, sizeof(ping), pkt, sizeof(pkt));
    g_assert_cmpint(net_to_engine(n, pkt, len), ==, SHIMMER_RECV_CONSUMED);
    g_assert_cmpint(n->last_drop, ==, SHIMMER_DROP_NONE);

    /* None of it hurt the session. */
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    send_up(n, 60, 2);
    send_down(n, 0, 60, 3);
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_NONE], ==, 0);
    g_assert_cmpuint(st.reconnects, ==, 0);
    net_free(n);
}

static ShimmerEncryptResult encrypt_len(Net *n, gsize len, gsize cap)
{
    guint8 ip[SHIMMER_ENGINE_MAX_PLAIN + 8], out[SHIMMER_ENGINE_MAX_PLAIN + 256];
    g_assert_cmpuint(cap, <=, sizeof(out));
    make_ip(ip, MIN(len, sizeof(ip)), 7);
    gsize out_len = 99;
    ShimmerEncryptResult r = shimmer_engine_encrypt(n->e, ip, len, out, cap, n->now, &out_len);
    g_assert_cmpuint(out_len == 0, ==, r != SHIMMER_ENCRYPT_OK);
    g_assert_cmpstr(shimmer_encrypt_result_to_string(r), !=, "unknown");
    return r;
}

static void test_encrypt_results(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 102);
    n->srv->ping_every = 10 * US;
    g_assert_cmpint(encrypt_len(n, 100, 200), ==, SHIMMER_ENCRYPT_NOT_CONNECTED);
    net_connect(n, 10 * US);
    g_assert_cmpint(encrypt_len(n, 0, 200), ==, SHIMMER_ENCRYPT_EMPTY);
    g_assert_cmpint(encrypt_len(n, SHIMMER_ENGINE_MAX_PLAIN + 1, sizeof(guint8[2200])), ==,
                    SHIMMER_ENCRYPT_TOO_BIG);
    g_assert_cmpint(encrypt_len(n, 100, 100 + SHIMMER_ENGINE_DATA_OVERHEAD - 1), ==,
                    SHIMMER_ENCRYPT_TOO_BIG);
    g_assert_cmpint(encrypt_len(n, SHIMMER_ENGINE_MAX_PLAIN,
                                SHIMMER_ENGINE_MAX_PLAIN + SHIMMER_ENGINE_DATA_OVERHEAD),
                    ==, SHIMMER_ENCRYPT_OK);

    /* Out of packet ids: refused, and a renegotiation is due at once. */
    g_assert_true(shimmer_dataplane_key_skip_to(n->e->dp, n->e->ks[0].key_id,
                                                SHIMMER_DATACHAN_PACKET_ID_LIMIT));
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), <=, n->now);
    g_assert_cmpint(encrypt_len(n, 100, 200), ==, SHIMMER_ENCRYPT_OUT_OF_IDS);
    g_assert_true(net_run(n, n->now + 20 * US, done_renegotiated, GINT_TO_POINTER(1)));
    g_assert_cmphex(send_up(n, 100, 3), ==, OPB(SHIMMER_OP_DATA_V2, 1));

    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.not_encrypted[SHIMMER_ENCRYPT_NOT_CONNECTED], ==, 1);
    g_assert_cmpuint(st.not_encrypted[SHIMMER_ENCRYPT_EMPTY], ==, 1);
    g_assert_cmpuint(st.not_encrypted[SHIMMER_ENCRYPT_TOO_BIG], ==, 2);
    g_assert_cmpuint(st.not_encrypted[SHIMMER_ENCRYPT_OUT_OF_IDS], ==, 1);
    g_assert_cmpuint(st.not_encrypted[SHIMMER_ENCRYPT_OK], ==, 0);
    g_assert_cmpuint(st.reconnects, ==, 0);
    net_free(n);
}

/* ---- the data plane: in place, on worker lanes ---- */

/* A packet sealed in place on LANE (the caller is inside a batch there)
 * from the IP packet make_ip(LEN, SEED); returns it (owned). */
static GBytes *lane_seal(ShimmerDataPlane *dp, guint lane, gsize len, guint seed, gint64 now,
                         ShimmerEncryptResult *result)
{
    gsize cap = SHIMMER_ENGINE_HEADROOM + len + SHIMMER_ENGINE_TAILROOM;
    g_autofree guint8 *buf = g_malloc0(cap);
    make_ip(buf + SHIMMER_ENGINE_HEADROOM, len, seed);
    gsize off = 0, plen = 0;
    *result = shimmer_dataplane_encrypt(dp, lane, buf, cap, SHIMMER_ENGINE_HEADROOM, len, now, &off,
                                        &plen);
    if (*result != SHIMMER_ENCRYPT_OK)
        return NULL;
    g_assert_cmpuint(off + plen, <=, cap);
    return g_bytes_new(buf + off, plen);
}

static guint32 pkt_id(GBytes *b)
{
    gsize len;
    const guint8 *p = g_bytes_get_data(b, &len);
    guint32 id = 0;
    g_assert_true(shimmer_datachan_peek_packet_id(shimmer_packet_opcode(p[0]) == SHIMMER_OP_DATA_V2,
                                                  p, len, &id));
    return id;
}

/* Lanes are set before the keys exist; packets sealed in place on a worker
 * lane reach the server intact, packets from the server open in place on
 * another, and both count in the engine's stats. */
static void test_dataplane_in_place(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 110);
    n->srv->ping_every = 100 * US;
    g_assert_false(shimmer_engine_set_lanes(n->e, 0));
    g_assert_false(shimmer_engine_set_lanes(n->e, SHIMMER_DATAPLANE_MAX_LANES + 1));
    g_assert_true(shimmer_engine_set_lanes(n->e, 3));
    ShimmerDataPlane *dp = shimmer_engine_get_dataplane(n->e);
    g_assert_cmpuint(shimmer_dataplane_get_lanes(dp), ==, 3);
    ShimmerEncryptResult r;
    shimmer_dataplane_begin(dp, 1);
    g_assert_null(lane_seal(dp, 1, 100, 1, n->now, &r));
    g_assert_cmpint(r, ==, SHIMMER_ENCRYPT_NOT_CONNECTED);
    shimmer_dataplane_end(dp, 1);
    net_connect(n, 10 * US);
    /* Keys exist now: the lane count is fixed. */
    g_assert_false(shimmer_engine_set_lanes(n->e, 2));

    /* Outside a batch a worker lane sees no keys. */
    g_assert_null(lane_seal(dp, 1, 100, 1, n->now, &r));
    g_assert_cmpint(r, ==, SHIMMER_ENCRYPT_NOT_CONNECTED);

    shimmer_dataplane_begin(dp, 1);
    static const gsize sizes[] = {1, 20, 1400, 1500, 2049, 4000};
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autoptr(GBytes) pkt = lane_seal(dp, 1, sizes[i], i, n->now, &r);
        g_assert_cmpint(r, ==, SHIMMER_ENCRYPT_OK);
        guint before = n->srv->data_in->len;
        net_to_server(n, g_bytes_get_data(pkt, NULL), g_bytes_get_size(pkt));
        g_assert_cmpuint(n->srv->data_in->len, ==, before + 1);
        guint8 want[4096];
        make_ip(want, sizes[i], i);
        gsize got_len;
        const guint8 *got = g_bytes_get_data(g_ptr_array_index(n->srv->data_in, before), &got_len);
        g_assert_cmpmem(got, got_len, want, sizes[i]);
    }
    /* Too little room in front or behind. */
    guint8 buf[200];
    gsize off, plen;
    guint8 *plain;
    g_assert_cmpint(shimmer_dataplane_encrypt(dp, 1, buf, sizeof(buf), SHIMMER_ENGINE_HEADROOM - 1,
                                              100, n->now, &off, &plen),
                    ==, SHIMMER_ENCRYPT_TOO_BIG);
    g_assert_cmpint(shimmer_dataplane_encrypt(dp, 1, buf, SHIMMER_ENGINE_HEADROOM + 100,
                                              SHIMMER_ENGINE_HEADROOM, 100, n->now, &off, &plen),
                    ==, SHIMMER_ENCRYPT_TOO_BIG);
    shimmer_dataplane_end(dp, 1);

    shimmer_dataplane_begin(dp, 2);
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
        guint8 ip[4096], pkt[4096 + 64];
        make_ip(ip, sizes[i], 100 + i);
        gsize len = ts_seal(n->srv, 0, ip, sizes[i], pkt, sizeof(pkt));
        g_assert_cmpuint(len, >, 0);
        ShimmerDropReason why = SHIMMER_DROP_AUTH;
        g_assert_cmpint(shimmer_dataplane_decrypt(dp, 2, pkt, len, n->now, &plain, &plen, &why), ==,
                        SHIMMER_RECV_TUN);
        g_assert_cmpint(why, ==, SHIMMER_DROP_NONE);
        g_assert_true(plain >= pkt && plain + plen <= pkt + len);
        g_assert_cmpmem(plain, plen, ip, sizes[i]);
        /* The same packet again, on another lane: a replay. */
        shimmer_dataplane_begin(dp, 1);
        gsize len2 = ts_seal(n->srv, 0, ip, sizes[i], pkt, sizeof(pkt));
        g_assert_cmpuint(len2, ==, len);
        guint8 copy[4096 + 64];
        memcpy(copy, pkt, len);
        g_assert_cmpint(shimmer_dataplane_decrypt(dp, 1, pkt, len, n->now, &plain, &plen, &why), ==,
                        SHIMMER_RECV_TUN);
        g_assert_cmpint(shimmer_dataplane_decrypt(dp, 2, copy, len, n->now, &plain, &plen, &why),
                        ==, SHIMMER_RECV_DROPPED);
        g_assert_cmpint(why, ==, SHIMMER_DROP_REPLAY);
        shimmer_dataplane_end(dp, 1);
    }
    /* A control packet is not the data plane's. */
    guint8 ctl[40] = {OPB(SHIMMER_OP_ACK_V1, 0)};
    ShimmerDropReason why;
    g_assert_cmpint(shimmer_dataplane_decrypt(dp, 2, ctl, sizeof(ctl), n->now, &plain, &plen, &why),
                    ==, SHIMMER_RECV_DROPPED);
    g_assert_cmpint(why, ==, SHIMMER_DROP_UNEXPECTED);
    shimmer_dataplane_end(dp, 2);

    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    g_assert_cmpuint(st.tun_packets_in, ==, G_N_ELEMENTS(sizes));
    g_assert_cmpuint(st.tun_packets_out, ==, 2 * G_N_ELEMENTS(sizes));
    g_assert_cmpuint(st.dropped[SHIMMER_DROP_REPLAY], ==, G_N_ELEMENTS(sizes));
    g_assert_cmpuint(st.not_encrypted[SHIMMER_ENCRYPT_NOT_CONNECTED], ==, 2);
    g_assert_cmpuint(st.not_encrypted[SHIMMER_ENCRYPT_TOO_BIG], ==, 2);
    /* The engine's own lane goes on as before. */
    send_up(n, 100, 50);
    send_down(n, 0, 100, 51);
    net_free(n);
}

#define LANE_THREADS 4
#define LANE_PACKETS 3200

typedef struct {
    ShimmerDataPlane *dp;
    guint lane;
    gint64 now;
    GPtrArray *pkts; /* GBytes */
    GBytes **in;     /* decrypt: the packets to try, all of them */
    guint n_in;
    guint accepted;
    guint failures;
    gint *stop;    /* NULL: a fixed count */
    gint produced; /* atomic: packets sealed so far */
} LaneJob;

static gpointer lane_encrypt_thread(gpointer data)
{
    LaneJob *j = data;
    for (guint i = 0; j->stop != NULL ? !g_atomic_int_get(j->stop) : i < LANE_PACKETS;) {
        shimmer_dataplane_begin(j->dp, j->lane);
        /* Batches of 16, as a worker's wake-up would bring. */
        for (guint k = 0; k < 16; k++, i++) {
            ShimmerEncryptResult r;
            GBytes *b =
                lane_seal(j->dp, j->lane, 60 + (i % 1400), j->lane * 100000 + i, j->now, &r);
            if (r == SHIMMER_ENCRYPT_OK)
                g_ptr_array_add(j->pkts, b);
            else
                j->failures++;
            g_atomic_int_inc(&j->produced);
        }
        shimmer_dataplane_end(j->dp, j->lane);
        if (j->stop != NULL)
            g_thread_yield();
    }
    return NULL;
}

static gpointer lane_decrypt_thread(gpointer data)
{
    LaneJob *j = data;
    shimmer_dataplane_begin(j->dp, j->lane);
    for (guint i = 0; i < j->n_in; i++) {
        gsize len;
        const guint8 *p = g_bytes_get_data(j->in[i], &len);
        g_autofree guint8 *copy = g_memdup2(p, len);
        guint8 *plain;
        gsize plen;
        if (shimmer_dataplane_decrypt(j->dp, j->lane, copy, len, j->now, &plain, &plen, NULL) ==
            SHIMMER_RECV_TUN)
            j->accepted++;
        if (i % 64 == 63) {
            shimmer_dataplane_end(j->dp, j->lane);
            shimmer_dataplane_begin(j->dp, j->lane);
        }
    }
    shimmer_dataplane_end(j->dp, j->lane);
    return NULL;
}

static gint cmp_id(gconstpointer a, gconstpointer b)
{
    guint32 x = pkt_id(*(GBytes **)a), y = pkt_id(*(GBytes **)b);
    return x < y ? -1 : x > y;
}

/* Lanes on threads of their own at once: every packet id is used once, and
 * every packet opens at the server; received packets tried on two lanes at
 * once are each taken exactly once (the shared replay window). */
static void test_dataplane_threads(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 111);
    n->srv->ping_every = 100 * US;
    g_assert_true(shimmer_engine_set_lanes(n->e, LANE_THREADS + 1));
    net_connect(n, 10 * US);
    ShimmerDataPlane *dp = shimmer_engine_get_dataplane(n->e);

    LaneJob jobs[LANE_THREADS];
    GThread *threads[LANE_THREADS];
    for (guint t = 0; t < LANE_THREADS; t++) {
        jobs[t] = (LaneJob){.dp = dp, .lane = t + 1, .now = n->now};
        jobs[t].pkts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        threads[t] = g_thread_new("lane", lane_encrypt_thread, &jobs[t]);
    }
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint t = 0; t < LANE_THREADS; t++) {
        g_thread_join(threads[t]);
        g_assert_cmpuint(jobs[t].failures, ==, 0);
        g_assert_cmpuint(jobs[t].pkts->len, ==, LANE_PACKETS);
        for (guint i = 0; i < jobs[t].pkts->len; i++)
            g_ptr_array_add(all, g_bytes_ref(g_ptr_array_index(jobs[t].pkts, i)));
        g_ptr_array_unref(jobs[t].pkts);
    }
    g_ptr_array_sort(all, cmp_id);
    for (guint i = 0; i < all->len; i++)
        g_assert_cmpuint(pkt_id(g_ptr_array_index(all, i)), ==, i + 1);
    guint before = n->srv->data_in->len;
    for (guint i = 0; i < all->len; i++) {
        GBytes *b = g_ptr_array_index(all, i);
        net_to_server(n, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
    }
    g_assert_cmpuint(n->srv->data_in->len - before, ==, LANE_THREADS * LANE_PACKETS);

    /* Down: the same packets offered to two lanes at once. */
    g_autoptr(GPtrArray) down = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < LANE_PACKETS; i++) {
        guint8 ip[1500], pkt[1600];
        make_ip(ip, 40 + i % 1400, i);
        gsize len = ts_seal(n->srv, 0, ip, 40 + i % 1400, pkt, sizeof(pkt));
        g_ptr_array_add(down, g_bytes_new(pkt, len));
    }
    for (guint t = 0; t < 2; t++) {
        jobs[t] = (LaneJob){.dp = dp, .lane = t + 1, .now = n->now};
        jobs[t].in = (GBytes **)down->pdata;
        jobs[t].n_in = down->len;
        threads[t] = g_thread_new("lane", lane_decrypt_thread, &jobs[t]);
    }
    for (guint t = 0; t < 2; t++)
        g_thread_join(threads[t]);
    g_assert_cmpuint(jobs[0].accepted + jobs[1].accepted, ==, LANE_PACKETS);
    net_free(n);
}

typedef struct {
    ShimmerDataPlane *dp;
    guint lane;
    gint64 now;
    GMutex *wire_lock;
    GPtrArray *wire; /* GBytes, in the order "sent" */
} OrderedJob;

static gpointer lane_ordered_thread(gpointer data)
{
    OrderedJob *j = data;
    for (guint b = 0; b < LANE_PACKETS / 16; b++) {
        shimmer_dataplane_begin(j->dp, j->lane);
        g_assert_cmpuint(shimmer_dataplane_reserve(j->dp, j->lane, 16), ==, 16);
        GBytes *pkts[16];
        for (guint k = 0; k < 16; k++) {
            ShimmerEncryptResult r;
            pkts[k] = lane_seal(j->dp, j->lane, 100 + k, b * 16 + k, j->now, &r);
            g_assert_cmpint(r, ==, SHIMMER_ENCRYPT_OK);
        }
        /* Something between sealing and sending, where another lane could
         * overtake. */
        if (b % 7 == j->lane)
            g_usleep(200);
        shimmer_dataplane_wait_turn(j->dp, j->lane);
        g_mutex_lock(j->wire_lock);
        for (guint k = 0; k < 16; k++)
            g_ptr_array_add(j->wire, pkts[k]);
        g_mutex_unlock(j->wire_lock);
        shimmer_dataplane_release(j->dp, j->lane);
        shimmer_dataplane_end(j->dp, j->lane);
    }
    return NULL;
}

/* Lanes that reserve, wait their turn and release put their packets on the
 * wire in packet-id order. */
static void test_dataplane_ordered(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 114);
    n->srv->ping_every = 100 * US;
    g_assert_true(shimmer_engine_set_lanes(n->e, LANE_THREADS + 1));
    net_connect(n, 10 * US);
    ShimmerDataPlane *dp = shimmer_engine_get_dataplane(n->e);
    GMutex lock;
    g_mutex_init(&lock);
    g_autoptr(GPtrArray) wire = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    OrderedJob jobs[LANE_THREADS];
    GThread *threads[LANE_THREADS];
    for (guint t = 0; t < LANE_THREADS; t++) {
        jobs[t] = (OrderedJob){dp, t + 1, n->now, &lock, wire};
        threads[t] = g_thread_new("lane", lane_ordered_thread, &jobs[t]);
    }
    for (guint t = 0; t < LANE_THREADS; t++)
        g_thread_join(threads[t]);
    g_mutex_clear(&lock);
    g_assert_cmpuint(wire->len, ==, LANE_THREADS * (LANE_PACKETS / 16) * 16);
    for (guint i = 0; i < wire->len; i++)
        g_assert_cmpuint(pkt_id(g_ptr_array_index(wire, i)), ==, i + 1);
    g_assert_cmpuint(shimmer_dataplane_get_turn_timeouts(dp), ==, 0);
    /* And the peer takes them all. */
    guint before = n->srv->data_in->len;
    for (guint i = 0; i < wire->len; i++) {
        GBytes *b = g_ptr_array_index(wire, i);
        net_to_server(n, g_bytes_get_data(b, NULL), g_bytes_get_size(b));
    }
    g_assert_cmpuint(n->srv->data_in->len - before, ==, wire->len);
    net_free(n);
}

static gboolean done_renegotiated_twice(Net *n, gconstpointer data)
{
    ShimmerEngineStats st;
    shimmer_engine_get_stats(n->e, &st);
    return st.renegotiations >= 2 && n->srv->keys[2].enc != NULL;
}

/* A worker keeps encrypting while the engine's thread renegotiates twice:
 * it never finds the channel closed, moves to each new key at a batch
 * boundary, and everything it sealed opens at the server. */
static void test_dataplane_reneg_under_load(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "reneg-sec 10\n", 112);
    n->srv->ping_every = 10 * US;
    g_assert_true(shimmer_engine_set_lanes(n->e, 2));
    net_connect(n, 10 * US);
    ShimmerDataPlane *dp = shimmer_engine_get_dataplane(n->e);
    gint stop = 0;
    LaneJob job = {.dp = dp, .lane = 1, .now = n->now, .stop = &stop};
    job.pkts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    GThread *th = g_thread_new("lane", lane_encrypt_thread, &job);
    /* Some batches on key 0 first, then the renegotiations while it runs,
     * then a few more batches on the newest key (bounded waits). */
    for (guint i = 0; i < 5000 && g_atomic_int_get(&job.produced) < 64; i++)
        g_usleep(1000);
    g_assert_true(net_run(n, n->now + 60 * US, done_renegotiated_twice, NULL));
    /* The newest key sends a second after it settled (the server sends no
     * data here to show it has it sooner). */
    g_assert_true(net_run(n, n->now + US + US / 10, NULL, NULL));
    gint seen = g_atomic_int_get(&job.produced);
    for (guint i = 0; i < 5000 && g_atomic_int_get(&job.produced) < seen + 64; i++)
        g_usleep(1000);
    g_atomic_int_set(&stop, 1);
    g_thread_join(th);
    g_assert_cmpuint(job.failures, ==, 0);
    guint by_key[8] = {0};
    guint before = n->srv->data_in->len;
    guint last_key = 0;
    for (guint i = 0; i < job.pkts->len; i++) {
        GBytes *b = g_ptr_array_index(job.pkts, i);
        const guint8 *p = g_bytes_get_data(b, NULL);
        guint key = p[0] & 7;
        g_assert_cmpuint(key, >=, last_key); /* never back to an older key */
        last_key = key;
        by_key[key]++;
        net_to_server(n, p, g_bytes_get_size(b));
    }
    g_assert_cmpuint(n->srv->data_in->len - before, ==, job.pkts->len);
    g_assert_cmpuint(by_key[0], >, 0);
    g_assert_cmpuint(by_key[2], >, 0);
    g_ptr_array_unref(job.pkts);
    net_free(n);
}

static void count_wake(gpointer user)
{
    g_atomic_int_inc((gint *)user);
}

/* What only a worker sees reaches the engine's thread through the wake:
 * reneg-bytes reached, and the server's OCC EXIT. */
static void test_dataplane_wake(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "reneg-bytes 20000\n", 113);
    n->srv->ping_every = 100 * US;
    g_assert_true(shimmer_engine_set_lanes(n->e, 2));
    ShimmerDataPlane *dp = shimmer_engine_get_dataplane(n->e);
    gint wakes = 0;
    shimmer_dataplane_set_wake(dp, count_wake, &wakes);
    net_connect(n, 10 * US);
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), >, n->now);

    ShimmerEncryptResult r;
    shimmer_dataplane_begin(dp, 1);
    for (guint i = 0; i < 10; i++)
        g_bytes_unref(lane_seal(dp, 1, 1000, i, n->now, &r));
    shimmer_dataplane_end(dp, 1);
    g_assert_cmpint(g_atomic_int_get(&wakes), ==, 0);
    shimmer_dataplane_begin(dp, 1);
    for (guint i = 0; i < 11; i++)
        g_bytes_unref(lane_seal(dp, 1, 1000, i, n->now, &r));
    shimmer_dataplane_end(dp, 1);
    g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), <=, n->now);
    /* Once per key. */
    shimmer_dataplane_begin(dp, 1);
    g_bytes_unref(lane_seal(dp, 1, 1000, 99, n->now, &r));
    shimmer_dataplane_end(dp, 1);
    g_assert_cmpint(g_atomic_int_get(&wakes), ==, 1);
    g_assert_true(net_run(n, n->now + 10 * US, done_renegotiated, GINT_TO_POINTER(1)));
    /* Key 1 sends a second after it settled (a packet from the server on
     * it would have woken the engine for that sooner). */
    g_assert_true(net_run(n, n->now + US + US / 10, NULL, NULL));

    /* The server's OCC EXIT, opened by the worker. */
    static const guint8 occ_exit[17] = {0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81, 0x2d,
                                        0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c, 6};
    guint8 pkt[128];
    gsize len = ts_seal(n->srv, 1, occ_exit, sizeof(occ_exit), pkt, sizeof(pkt));
    g_assert_cmpuint(len, >, 0);
    guint8 *plain;
    gsize plen;
    shimmer_dataplane_begin(dp, 1);
    g_assert_cmpint(shimmer_dataplane_decrypt(dp, 1, pkt, len, n->now, &plain, &plen, NULL), ==,
                    SHIMMER_RECV_CONSUMED);
    shimmer_dataplane_end(dp, 1);
    g_assert_cmpint(g_atomic_int_get(&wakes), ==, 2);
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), <=, n->now);
    shimmer_engine_handle_timeout(n->e, n->now);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_RECONNECTING);
    net_free(n);
}

/* A buffer below SHIMMER_ENGINE_MAX_PACKET is refused and takes nothing. */
static void test_write_pkt_small_buffer(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 103);
    n->auto_transport = FALSE;
    shimmer_engine_start(n->e, n->now);
    shimmer_engine_transport_up(n->e, FALSE, n->now);
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    g_assert_cmpint(shimmer_engine_write_pkt(n->e, buf, sizeof(buf) - 1, n->now), ==, -1);
    gssize len = shimmer_engine_write_pkt(n->e, buf, sizeof(buf), n->now);
    g_assert_cmpint(len, >, 0);
    g_assert_cmphex(buf[0], ==, OPB(SHIMMER_OP_HARD_RESET_CLIENT_V2, 0));
    g_assert_cmpint(shimmer_engine_write_pkt(n->e, buf, sizeof(buf), n->now), ==, 0);
    net_free(n);
}

/* Calls that do not fit the state do nothing (and abort nothing). */
static void test_calls_out_of_state(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_AUTH, NULL, 104);
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    shimmer_engine_transport_up(n->e, FALSE, n->now); /* not connecting */
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_IDLE);
    g_assert_cmpint(shimmer_engine_write_pkt(n->e, buf, sizeof(buf), n->now), ==, 0);
    shimmer_engine_handle_timeout(n->e, n->now);
    g_assert_null(shimmer_engine_get_pushed(n->e));
    g_assert_null(shimmer_engine_get_cipher(n->e));
    g_assert_null(shimmer_engine_get_tls_version(n->e));
    net_connect(n, 10 * US);
    shimmer_engine_start(n->e, n->now);                                /* already started */
    shimmer_engine_set_credentials(n->e, "nobody", "nothing", n->now); /* none asked */
    net_pump(n);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    shimmer_engine_stop(n->e, n->now);
    shimmer_engine_stop(n->e, n->now);
    g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_DISCONNECTED);
    shimmer_engine_transport_failed(n->e, "late", n->now);
    shimmer_engine_transport_up(n->e, TRUE, n->now);
    shimmer_engine_stop(n->e, n->now);
    net_pump(n);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_DISCONNECTED);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_EXIT), ==, 1);
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), ==, G_MAXINT64);
    net_free(n);
}

/* The random hook fails: the session fails with a reason, nothing aborts. */
static void test_random_fails(void)
{
    static const struct {
        guint at;
        const char *why;
    } cases[] = {
        {1, "no random numbers for a session id"},
        {2, "no random numbers for the key exchange"},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 105 + i);
        n->random_fails_at = cases[i].at;
        net_start(n);
        g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
        g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
        gint ex = net_find_event(n, 0, SHIMMER_EVENT_EXIT, -1);
        g_assert_cmpint(ex, >=, 0);
        g_assert_cmpstr(net_event(n, ex)->message, ==, cases[i].why);
        g_assert_cmpuint(n->c2s_log->len, ==, 0);
        net_free(n);
    }
    /* remote-random draws at creation. */
    TsSetup setup;
    setup_init(&setup, SHIMMER_WRAP_NONE);
    g_autoptr(ShimmerConfig) cfg =
        client_config(SHIMMER_WRAP_NONE, "remote 192.0.2.2 1194\nremote-random\n");
    Net dummy = {.random_fails_at = 1};
    ShimmerEngineHooks hooks = {
        .random = net_engine_random, .realtime = net_engine_realtime, .user = &dummy};
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerEngine) e = shimmer_engine_new(cfg, &hooks, &error);
    g_assert_null(e);
    g_assert_nonnull(strstr(error->message, "remote-random"));
    setup_clear(&setup);
}

/* ---------------------------------------------------------------------- */
/* Typed events and the paths that carry secrets */

/* A dynamic challenge: a typed event with the question and the echo flag;
 * the answer goes back as the CRV1 password on the next connection. */
static void test_challenge(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT,
                     "<auth-user-pass>\nalice\nsecret\n</auth-user-pass>\nconnect-retry 1\n", 111);
    /* base64("alice") = YWxpY2U= */
    ts_set_push(n->srv, "AUTH_FAILED,CRV1:R,E:state-77:YWxpY2U=:Your one-time code?");
    net_start(n);
    g_assert_true(
        net_run(n, n->now + 10 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_RECONNECTING)));
    g_assert_cmpstr(n->srv->username, ==, "alice");
    g_assert_cmpstr(n->srv->password, ==, "secret");
    gint q = net_find_event(n, 0, SHIMMER_EVENT_NEED_CREDENTIALS, -1);
    g_assert_cmpint(q, >=, 0);
    NetEvent *ev = net_event(n, q);
    g_assert_cmpint(ev->credentials, ==, SHIMMER_CREDENTIALS_CHALLENGE);
    g_assert_cmpstr(ev->message, ==, "Your one-time code?");
    g_assert_true(ev->echo);
    /* Nothing happens until the user answers. */
    g_assert_true(net_run(n, n->now + 60 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_RECONNECTING);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_AUTH_FAILED), ==, 0);

    ts_set_push(n->srv, DEFAULT_PUSH);
    shimmer_engine_set_credentials(n->e, NULL, "424242", n->now);
    g_assert_true(
        net_run(n, n->now + 10 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpstr(n->srv->username, ==, "alice");
    g_assert_cmpstr(n->srv->password, ==, "CRV1::state-77::424242");
    net_free(n);
}

/* A pushed auth-token replaces the password when the key is renegotiated;
 * AUTH_FAILED forgets it. */
static void test_auth_token(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT,
                     "<auth-user-pass>\nalice\nsecret\n</auth-user-pass>\nreneg-sec 10\n", 112);
    n->srv->ping_every = 10 * US;
    ts_set_push(n->srv, DEFAULT_PUSH ",auth-token SESS_abcdef");
    net_connect(n, 10 * US);
    g_assert_cmpstr(n->srv->password, ==, "secret");
    /* The token is the engine's alone, not left in the pushed options. */
    g_assert_null(shimmer_engine_get_pushed(n->e)->auth_token);
    g_assert_true(net_run(n, n->now + 30 * US, done_renegotiated, GINT_TO_POINTER(1)));
    g_assert_cmpstr(n->srv->username, ==, "alice");
    g_assert_cmpstr(n->srv->password, ==, "SESS_abcdef");
    net_free(n);
}

/* A reply that never ends: refused at the limit, not grown without bound. */
static void test_push_too_large(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 113);
    g_ptr_array_set_size(n->srv->push_messages, 0);
    GString *part = g_string_new("PUSH_REPLY");
    for (guint i = 0; i < 60; i++)
        g_string_append_printf(part, ",route 10.%u.0.0 255.255.0.0", i);
    g_string_append(part, ",push-continuation 2");
    for (guint i = 0; i < 150; i++)
        g_ptr_array_add(n->srv->push_messages, g_strdup(part->str));
    g_string_free(part, TRUE);
    net_start(n);
    g_assert_true(net_run(n, n->now + 60 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    gint ex = net_find_event(n, 0, SHIMMER_EVENT_EXIT, -1);
    g_assert_cmpstr(net_event(n, ex)->message, ==, "the pushed configuration is too large");
    net_free(n);
}

/* A password too long for the key-method record's u16 length fails the
 * session instead of being cut short. */
static void test_password_too_long(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "auth-user-pass\n", 114);
    net_start(n);
    net_pump(n);
    gint q = net_find_event(n, 0, SHIMMER_EVENT_NEED_CREDENTIALS, -1);
    g_assert_cmpint(q, >=, 0);
    g_assert_cmpint(net_event(n, q)->credentials, ==, SHIMMER_CREDENTIALS_USERNAME_PASSWORD);
    g_assert_null(net_event(n, q)->message);
    g_autofree char *password = g_strnfill(70000, 'p');
    shimmer_engine_set_credentials(n->e, "alice", password, n->now);
    g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    gint ex = net_find_event(n, 0, SHIMMER_EVENT_EXIT, -1);
    g_assert_cmpstr(net_event(n, ex)->message, ==, "cannot write the key-method record");
    g_assert_null(n->srv->password);
    net_free(n);
}

/* Messages behind one that ends the session stay unread (and are wiped
 * with the key state): nothing after RESTART is acted on. */
static void test_messages_after_restart(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "connect-retry 5\n", 115);
    net_connect(n, 10 * US);
    guint mark = n->events->len;
    TsKey *k = &n->srv->keys[0];
    static const char msgs[] = "RESTART,maintenance\0INFO,too late\0INFO,also too late";
    ts_tls_send(k, msgs, sizeof(msgs));
    ts_flush(n->srv, k);
    net_pump(n);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_RECONNECTING);
    g_assert_cmpint(net_find_event(n, mark, SHIMMER_EVENT_INFO, -1), ==, -1);
    net_free(n);
}

/* Over TCP the exit is immediate, but the EXIT control message made for it
 * still goes out before the transport closes. */
static void test_stop_cc_exit_tcp(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "proto tcp-client\nexplicit-exit-notify 2\n", 116);
    ts_set_push(n->srv, DEFAULT_PUSH ",protocol-flags cc-exit tls-ekm");
    net_connect(n, 10 * US);
    shimmer_engine_stop(n->e, n->now);
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_DISCONNECTED);
    net_pump(n);
    g_assert_cmpstr(g_ptr_array_index(n->srv->messages_in, n->srv->messages_in->len - 1), ==,
                    "EXIT");
    g_assert_cmpint(shimmer_engine_next_deadline(n->e), ==, G_MAXINT64);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* Certificate validity at the injected wall clock */

/* 00:00:00 UTC on the first day of MONTH of YEAR. */
static gint64 utc(gint year, gint month)
{
    g_autoptr(GDateTime) dt = g_date_time_new_utc(year, month, 1, 0, 0, 0);
    return g_date_time_to_unix(dt);
}

static char *crt_pem(gnutls_x509_crt_t crt)
{
    gnutls_datum_t out = {0};
    g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), ==, 0);
    char *pem = g_strndup((const char *)out.data, out.size);
    gnutls_free(out.data);
    return pem;
}

static gnutls_x509_privkey_t ec_key(void)
{
    gnutls_x509_privkey_t key;
    g_assert_cmpint(gnutls_x509_privkey_init(&key), ==, 0);
    g_assert_cmpint(gnutls_x509_privkey_generate(
                        key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                    ==, 0);
    return key;
}

static gnutls_x509_crt_t new_crt(const char *dn, guint8 serial, gnutls_x509_privkey_t key,
                                 gint64 from, gint64 to)
{
    gnutls_x509_crt_t crt;
    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_version(crt, 3), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_serial(crt, &serial, 1), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_dn(crt, dn, NULL), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_key(crt, key), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_activation_time(crt, (time_t)from), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_expiration_time(crt, (time_t)to), ==, 0);
    return crt;
}

/* A CA, a server certificate for server.shimmer.test signed by it, and
 * (CRL_THIS non-zero) a CRL of the CA revoking nothing, each valid from
 * and to the times given. */
typedef struct {
    gint64 ca_from, ca_to, leaf_from, leaf_to, crl_this, crl_next;
    gboolean revoke_leaf; /* the CRL lists the server's certificate */
} PkiTimes;

typedef struct {
    char *ca, *cert, *key, *crl;
} Pki;

static void pki_clear(Pki *p)
{
    g_free(p->ca);
    g_free(p->cert);
    g_free(p->key);
    g_free(p->crl);
}

static void make_pki(const PkiTimes *t, Pki *out)
{
    gnutls_x509_privkey_t ca_key = ec_key(), leaf_key = ec_key();
    gnutls_x509_crt_t ca =
        new_crt("O=Shimmer Test,CN=Time Test CA", 1, ca_key, t->ca_from, t->ca_to);
    g_assert_cmpint(gnutls_x509_crt_set_basic_constraints(ca, 1, -1), ==, 0);
    g_assert_cmpint(
        gnutls_x509_crt_set_key_usage(ca, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_sign2(ca, ca, ca_key, GNUTLS_DIG_SHA256, 0), ==, 0);

    gnutls_x509_crt_t leaf =
        new_crt("O=Shimmer Test,CN=server.shimmer.test", 2, leaf_key, t->leaf_from, t->leaf_to);
    g_assert_cmpint(gnutls_x509_crt_set_basic_constraints(leaf, 0, -1), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_key_usage(leaf, GNUTLS_KEY_DIGITAL_SIGNATURE |
                                                            GNUTLS_KEY_KEY_AGREEMENT),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_key_purpose_oid(leaf, GNUTLS_KP_TLS_WWW_SERVER, 0), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_set_subject_alt_name(
                        leaf, GNUTLS_SAN_DNSNAME, "server.shimmer.test", 19, GNUTLS_FSAN_SET),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_sign2(leaf, ca, ca_key, GNUTLS_DIG_SHA256, 0), ==, 0);

    out->ca = crt_pem(ca);
    out->cert = crt_pem(leaf);
    gnutls_datum_t key = {0};
    g_assert_cmpint(gnutls_x509_privkey_export2_pkcs8(leaf_key, GNUTLS_X509_FMT_PEM, NULL,
                                                      GNUTLS_PKCS_PLAIN, &key),
                    ==, 0);
    out->key = g_strndup((const char *)key.data, key.size);
    gnutls_free(key.data);
    out->crl = NULL;
    if (t->crl_this != 0) {
        gnutls_x509_crl_t crl;
        g_assert_cmpint(gnutls_x509_crl_init(&crl), ==, 0);
        g_assert_cmpint(gnutls_x509_crl_set_version(crl, 2), ==, 0);
        g_assert_cmpint(gnutls_x509_crl_set_this_update(crl, (time_t)t->crl_this), ==, 0);
        g_assert_cmpint(gnutls_x509_crl_set_next_update(crl, (time_t)t->crl_next), ==, 0);
        if (t->revoke_leaf)
            g_assert_cmpint(gnutls_x509_crl_set_crt(crl, leaf, (time_t)t->crl_this), ==, 0);
        g_assert_cmpint(gnutls_x509_crl_sign2(crl, ca, ca_key, GNUTLS_DIG_SHA256, 0), ==, 0);
        gnutls_datum_t der = {0};
        g_assert_cmpint(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &der), ==, 0);
        out->crl = g_strndup((const char *)der.data, der.size);
        gnutls_free(der.data);
        gnutls_x509_crl_deinit(crl);
    }
    gnutls_x509_crt_deinit(ca);
    gnutls_x509_crt_deinit(leaf);
    gnutls_x509_privkey_deinit(ca_key);
    gnutls_x509_privkey_deinit(leaf_key);
}

/* A client that trusts PKI's CA (and its CRL) against a server with PKI's
 * certificate; the wall clock reads WALL at T0. */
static Net *net_for_pki(const Pki *pki, gint64 wall)
{
    TsSetup setup;
    setup_init(&setup, SHIMMER_WRAP_TLS_CRYPT);
    /* The server still checks the client's fixture certificate. */
    g_bytes_unref(setup.cert);
    g_bytes_unref(setup.key);
    setup.cert = g_bytes_new(pki->cert, strlen(pki->cert));
    setup.key = g_bytes_new(pki->key, strlen(pki->key));
    g_autofree char *extra =
        pki->crl != NULL ? g_strdup_printf("<crl-verify>\n%s</crl-verify>\n", pki->crl) : NULL;
    Net *n = net_new(client_config_ca(SHIMMER_WRAP_TLS_CRYPT, extra, pki->ca), &setup, 95);
    setup_clear(&setup);
    n->wall0 = wall;
    return n;
}

static gboolean net_logged(Net *n, const char *needle)
{
    for (guint i = 0; i < n->logs->len; i++) {
        if (strstr(g_ptr_array_index(n->logs, i), needle) != NULL)
            return TRUE;
    }
    return FALSE;
}

typedef struct {
    const char *name;
    PkiTimes times;
    gint64 wall;
    const char *refused; /* NULL: the handshake succeeds; else what the log says */
} CertTimeCase;

static void test_cert_time(gconstpointer data)
{
    const CertTimeCase *c = data;
    Pki pki;
    make_pki(&c->times, &pki);
    Net *n = net_for_pki(&pki, c->wall);
    net_start(n);
    g_assert_true(net_run(n, n->now + 30 * US, done_state_final, NULL));
    if (c->refused == NULL) {
        g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
        send_up(n, 100, 1);
        send_down(n, 0, 100, 2);
    } else {
        /* Refused for good: a certificate does not get better by retrying. */
        g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
        if (!net_logged(n, c->refused))
            g_error("no log line has '%s'", c->refused);
        g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
        g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_TUN_CONFIG), ==, 0);
    }
    net_free(n);
    pki_clear(&pki);
}

static void add_cert_time_tests(void)
{
    static CertTimeCase cases[] = {
        {"valid", {0}, 0, NULL},
        {"leaf-expired",
         {0},
         0,
         "the certificate 'O=Shimmer Test,CN=server.shimmer.test' expired "
         "at 2029-07-01 00:00:00 UTC"},
        {"leaf-not-yet-valid",
         {0},
         0,
         "the certificate 'O=Shimmer Test,CN=server.shimmer.test' is not valid before "
         "2030-07-01 00:00:00 UTC"},
        {"ca-expired",
         {0},
         0,
         "the certificate 'O=Shimmer Test,CN=Time Test CA' expired at "
         "2029-07-01 00:00:00 UTC"},
        {"ca-not-yet-valid",
         {0},
         0,
         "the certificate 'O=Shimmer Test,CN=Time Test CA' is not "
         "valid before 2030-07-01 00:00:00 UTC"},
        {"crl-valid", {0}, 0, NULL},
        {"crl-expired",
         {0},
         0,
         "the certificate 'O=Shimmer Test,CN=server.shimmer.test': the CRL from "
         "CN=Time Test CA,O=Shimmer Test expired on 2029-12-01 00:00:00 UTC"},
        {"crl-not-yet-valid",
         {0},
         0,
         "the certificate 'O=Shimmer Test,CN=server.shimmer.test': the CRL from "
         "CN=Time Test CA,O=Shimmer Test is not valid yet"},
        {"crl-revoked",
         {0},
         0,
         "the certificate 'O=Shimmer Test,CN=server.shimmer.test': the certificate with serial "
         "number 02 is revoked by the CRL from CN=Time Test CA,O=Shimmer Test"},
        /* Valid only in 2001, a year the machine's clock is long past: the
         * engine must judge by the injected clock alone. */
        {"injected-past", {0}, 0, NULL},
    };
    PkiTimes base = {utc(2029, 1), utc(2031, 1), utc(2029, 1), utc(2031, 1), 0, 0, FALSE};
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        CertTimeCase *c = &cases[i];
        c->times = base;
        c->wall = WALL0;
        if (strcmp(c->name, "leaf-expired") == 0)
            c->times.leaf_to = utc(2029, 7);
        else if (strcmp(c->name, "leaf-not-yet-valid") == 0)
            c->times.leaf_from = utc(2030, 7);
        else if (strcmp(c->name, "ca-expired") == 0)
            c->times.ca_to = utc(2029, 7);
        else if (strcmp(c->name, "ca-not-yet-valid") == 0)
            c->times.ca_from = utc(2030, 7);
        else if (strcmp(c->name, "crl-valid") == 0)
            c->times.crl_this = utc(2029, 12), c->times.crl_next = utc(2030, 2);
        else if (strcmp(c->name, "crl-expired") == 0)
            c->times.crl_this = utc(2029, 11), c->times.crl_next = utc(2029, 12);
        else if (strcmp(c->name, "crl-revoked") == 0)
            c->times.crl_this = utc(2029, 12), c->times.crl_next = utc(2030, 2),
            c->times.revoke_leaf = TRUE;
        else if (strcmp(c->name, "crl-not-yet-valid") == 0)
            c->times.crl_this = utc(2030, 2), c->times.crl_next = utc(2030, 3);
        else if (strcmp(c->name, "injected-past") == 0) {
            c->times = (PkiTimes){utc(2001, 1), utc(2002, 1), utc(2001, 1), utc(2002, 1),
                                  utc(2001, 3), utc(2001, 9), FALSE};
            c->wall = utc(2001, 6);
        }
        g_autofree char *path = g_strdup_printf("/engine/cert-time/%s", c->name);
        g_test_add_data_func(path, c, test_cert_time);
    }
}

/* With a CA to verify against, the engine needs the wall clock. */
static void test_cert_time_no_clock(void)
{
    g_autoptr(ShimmerConfig) cfg = client_config(SHIMMER_WRAP_NONE, NULL);
    ShimmerEngineHooks hooks = {0};
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerEngine) e = shimmer_engine_new(cfg, &hooks, &error);
    g_assert_null(e);
    g_assert_error(error, SHIMMER_ENGINE_ERROR, 0);
    g_assert_nonnull(strstr(error->message, "wall clock"));
}

/* ---------------------------------------------------------------------- */
/* Compression the server applies (compress.h through the engine). */

static guint count_logs(Net *n, const char *needle)
{
    guint k = 0;
    for (guint i = 0; i < n->logs->len; i++)
        k += strstr(g_ptr_array_index(n->logs, i), needle) != NULL;
    return k;
}

/* An IP packet that compresses well. */
static void make_compressible(guint8 *buf, gsize len)
{
    make_ip(buf, 20, 1);
    for (gsize i = 20; i < len; i++)
        buf[i] = (guint8)("compressible "[i % 13]);
}

/* The server seals PLAIN (already framed) on key 0; the engine's result. */
static ShimmerRecvResult down_framed(Net *n, const guint8 *plain, gsize len)
{
    guint8 pkt[4096];
    gsize plen = ts_seal(n->srv, 0, plain, len, pkt, sizeof(pkt));
    g_assert_cmpuint(plen, >, 0);
    return net_to_engine(n, pkt, plen);
}

static void assert_last_tun(Net *n, const guint8 *ip, gsize len)
{
    gsize got_len;
    const guint8 *g = g_bytes_get_data(g_ptr_array_index(n->tun, n->tun->len - 1), &got_len);
    g_assert_cmpmem(g, got_len, ip, len);
}

static void test_compress_lz4_v2(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "compress lz4-v2\n", 301);
    ts_set_push(n->srv, DEFAULT_PUSH ",compress lz4-v2");
    net_connect(n, 10 * US);
    /* What we can take in, as OpenVPN 2.6 says it. */
    g_assert_nonnull(strstr(n->srv->peer_info, "IV_LZ4=1\n"));
    g_assert_nonnull(strstr(n->srv->peer_info, "IV_LZ4v2=1\n"));
    g_assert_nonnull(strstr(n->srv->peer_info, "IV_LZO=1\n"));
    g_assert_nonnull(strstr(n->srv->peer_info, "IV_COMP_STUBv2=1\n"));

    guint8 ip[1400], framed[1600];
    make_compressible(ip, sizeof(ip));
    framed[0] = 0x50;
    framed[1] = 0x01;
    int c = LZ4_compress_default((const char *)ip, (char *)framed + 2, (int)sizeof(ip),
                                 (int)sizeof(framed) - 2);
    g_assert_cmpint(c, >, 0);
    g_assert_cmpint(c, <, 200);
    g_assert_cmpint(down_framed(n, framed, (gsize)c + 2), ==, SHIMMER_RECV_TUN);
    assert_last_tun(n, ip, sizeof(ip));
    g_assert_cmpint(down_framed(n, framed, (gsize)c + 2), ==, SHIMMER_RECV_TUN);
    /* Uncompressed packets need no header in this framing. */
    g_assert_cmpint(down_framed(n, ip, 100), ==, SHIMMER_RECV_TUN);
    assert_last_tun(n, ip, 100);
    /* Warned once per session, not per packet. */
    g_assert_cmpuint(count_logs(n, "VORACLE"), ==, 1);

    /* Garbage after the LZ4 header: dropped and counted. */
    guint8 bad[64] = {0x50, 0x01};
    memset(bad + 2, 0xff, sizeof(bad) - 2);
    g_assert_cmpint(down_framed(n, bad, sizeof(bad)), ==, SHIMMER_RECV_DROPPED);
    g_assert_cmpint(n->last_drop, ==, SHIMMER_DROP_BAD_COMPRESSION);
    /* An unknown escape. */
    guint8 esc[3] = {0x50, 0x07, 0x45};
    g_assert_cmpint(down_framed(n, esc, sizeof(esc)), ==, SHIMMER_RECV_DROPPED);
    g_assert_cmpint(n->last_drop, ==, SHIMMER_DROP_BAD_COMPRESSION);
    /* A packet that would decompress past the tun buffer (an empty one
     * first: malformed). */
    guint8 small[64];
    gsize small_len = 0;
    g_assert_cmpint(
        shimmer_engine_recv(n->e, framed, 0, n->now, small, sizeof(small), &small_len, NULL), ==,
        SHIMMER_RECV_DROPPED);
    {
        guint8 pkt[4096];
        gsize plen = ts_seal(n->srv, 0, framed, (gsize)c + 2, pkt, sizeof(pkt));
        ShimmerDropReason why = SHIMMER_DROP_NONE;
        g_assert_cmpint(
            shimmer_engine_recv(n->e, pkt, plen, n->now, small, sizeof(small), &small_len, &why),
            ==, SHIMMER_RECV_DROPPED);
        /* LZ4's safe decoder only says that the output bound was hit:
         * too big or bad data, never written past the buffer. */
        g_assert_true(why == SHIMMER_DROP_TOO_BIG || why == SHIMMER_DROP_BAD_COMPRESSION);
        g_assert_cmpuint(small_len, ==, 0);
    }
    net_free(n);
}

static void test_compress_lzo(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "comp-lzo\n", 302);
    ts_set_push(n->srv, DEFAULT_PUSH ",comp-lzo yes");
    net_connect(n, 10 * US);
    g_assert_cmpint(lzo_init(), ==, LZO_E_OK);
    guint8 ip[1200], framed[1400];
    make_compressible(ip, sizeof(ip));
    guint8 wrk[LZO1X_1_MEM_COMPRESS];
    lzo_uint clen = 0;
    framed[0] = 0x66;
    g_assert_cmpint(lzo1x_1_compress(ip, sizeof(ip), framed + 1, &clen, wrk), ==, LZO_E_OK);
    g_assert_cmpint(down_framed(n, framed, clen + 1), ==, SHIMMER_RECV_TUN);
    assert_last_tun(n, ip, sizeof(ip));
    /* 0xFA: sent uncompressed. */
    framed[0] = 0xfa;
    memcpy(framed + 1, ip, 300);
    g_assert_cmpint(down_framed(n, framed, 301), ==, SHIMMER_RECV_TUN);
    assert_last_tun(n, ip, 300);
    g_assert_cmpuint(count_logs(n, "VORACLE"), ==, 1);
    net_free(n);
}

/* A profile that only frames (stub) takes no compressed packet; one without
 * compression refuses a pushed algorithm, as OpenVPN 2.6 does. */
static void test_compress_not_allowed(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "compress stub-v2\n", 303);
    ts_set_push(n->srv, DEFAULT_PUSH ",compress stub-v2");
    net_connect(n, 10 * US);
    g_assert_null(strstr(n->srv->peer_info, "IV_LZ4=1"));
    guint8 ip[600], framed[700];
    make_compressible(ip, sizeof(ip));
    framed[0] = 0x50;
    framed[1] = 0x01;
    int c = LZ4_compress_default((const char *)ip, (char *)framed + 2, (int)sizeof(ip),
                                 (int)sizeof(framed) - 2);
    g_assert_cmpint(down_framed(n, framed, (gsize)c + 2), ==, SHIMMER_RECV_DROPPED);
    g_assert_cmpint(n->last_drop, ==, SHIMMER_DROP_COMPRESSED);
    g_assert_cmpuint(count_logs(n, "VORACLE"), ==, 0);
    net_free(n);

    n = net_for(SHIMMER_WRAP_TLS_CRYPT, NULL, 304);
    ts_set_push(n->srv, DEFAULT_PUSH ",compress lz4-v2");
    net_start(n);
    g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    g_assert_true(net_logged(n, "the profile does not allow compression"));
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* Pending logins: AUTH_PENDING, web sign-in, CR_TEXT. */

#define AUTH_EXTRA "<auth-user-pass>\nalice\nsecret\n</auth-user-pass>\n"

/* Connects until the engine asks for its configuration; the server holds
 * the login (no PUSH_REPLY). */
static Net *net_pending(const char *extra, guint64 seed)
{
    g_autofree char *all = g_strconcat(AUTH_EXTRA, extra ? extra : "", NULL);
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, all, seed);
    n->srv->answer_push = FALSE;
    net_start(n);
    g_assert_true(
        net_run(n, n->now + 10 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_GETTING_CONFIG)));
    return n;
}

static void test_web_auth(void)
{
    Net *n = net_pending(NULL, 311);
    g_assert_nonnull(strstr(n->srv->peer_info, "IV_SSO=openurl,webauth,crtext\n"));
    /* DATA_V2, REQUEST_PUSH, TLS_KEY_EXPORT, AUTH_PENDING_KW, DNS_OPTION,
     * CC_EXIT_NOTIFY. */
    g_assert_nonnull(strstr(n->srv->peer_info, "IV_PROTO=222\n"));
    gint64 started = n->now;
    g_assert_true(ts_send_message(n->srv, 0, "AUTH_PENDING,timeout 40"));
    g_assert_true(ts_send_message(n->srv, 0,
                                  "INFO_PRE,WEB_AUTH:external,proxy=1.2.3.4;80;dTE=;cDE=,hidden:"
                                  "https://sso.example.test/auth?session=7&x=1"));
    g_assert_true(net_run(n, n->now + 2 * US, NULL, NULL));
    gint p = net_find_event(n, 0, SHIMMER_EVENT_AUTH_PENDING, -1);
    gint w = net_find_event(n, 0, SHIMMER_EVENT_WEB_AUTH, -1);
    g_assert_cmpint(p, >=, 0);
    g_assert_cmpint(w, >, p);
    NetEvent *ev = net_event(n, w);
    g_assert_cmpstr(ev->message, ==, "https://sso.example.test/auth?session=7&x=1");
    g_assert_cmpint(ev->web_kind, ==, SHIMMER_WEB_AUTH_WEB_AUTH);
    /* The proxy flag (with credentials) is not passed on. */
    g_assert_cmpstr(ev->web_flags, ==, "external,hidden");
    /* 40 s from when the login reached the server (it is counted there
     * from the same moment). */
    g_assert_cmpint(ev->deadline, <=, started + 40 * US);
    g_assert_cmpint(ev->deadline, >, started + 38 * US);
    g_assert_cmpuint(ev->timeout_s, <=, 40);
    g_assert_cmpuint(ev->timeout_s, >=, 37);
    /* Still asking for the configuration while the server waits. */
    guint before = n->srv->push_requests;
    g_assert_true(net_run(n, n->now + 20 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_GETTING_CONFIG);
    g_assert_cmpuint(n->srv->push_requests, >, before);
    /* Approved: the next push request gets the reply. */
    n->srv->answer_push = TRUE;
    g_assert_true(
        net_run(n, n->now + 10 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_AUTH_FAILED), ==, 0);
    /* No leftover deadline fails a connected session. */
    n->srv->ping_every = 10 * US;
    g_assert_true(net_run(n, n->now + 90 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    net_free(n);
}

/* Never approved: the session fails when the server's time is up, with a
 * reason that says so, and does not start over. */
static void test_web_auth_timeout(void)
{
    Net *n = net_pending(NULL, 312);
    gint64 started = n->now;
    g_assert_true(ts_send_message(n->srv, 0, "AUTH_PENDING,timeout 30"));
    g_assert_true(ts_send_message(n->srv, 0, "INFO_PRE,OPEN_URL:https://sso.example.test/x"));
    g_assert_true(net_run(n, n->now + 120 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    /* The server's 30 s, and 3 s more for its own AUTH_FAILED to come. */
    g_assert_cmpint(n->now, >=, started + 32 * US);
    g_assert_cmpint(n->now, <=, started + 34 * US);
    NetEvent *ev = net_event(n, net_find_event(n, 0, SHIMMER_EVENT_WEB_AUTH, -1));
    g_assert_cmpint(ev->web_kind, ==, SHIMMER_WEB_AUTH_OPEN_URL);
    g_assert_cmpstr(ev->web_flags, ==, "");
    gint x = net_find_event(n, 0, SHIMMER_EVENT_EXIT, -1);
    g_assert_nonnull(strstr(net_event(n, x)->message, "web sign-in was not finished within 30 s"));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
    net_free(n);
}

/* AUTH_PENDING's timeout is capped at the larger of half reneg-sec and
 * hand-window; without a timeout keyword hand-window applies. */
static void test_auth_pending_cap(void)
{
    Net *n = net_pending("hand-window 20\nreneg-sec 30\n", 313);
    gint64 started = n->now;
    g_assert_true(ts_send_message(n->srv, 0, "AUTH_PENDING,timeout 300,unknown-word"));
    g_assert_true(net_run(n, n->now + 100 * US, done_state_final, NULL));
    g_assert_cmpint(n->now, <=, started + 24 * US);
    g_assert_true(net_logged(n, "pending authentication was not finished within 20 s"));
    net_free(n);

    n = net_pending("hand-window 20\n", 314);
    started = n->now;
    g_assert_true(ts_send_message(n->srv, 0, "AUTH_PENDING"));
    g_assert_true(net_run(n, n->now + 100 * US, done_state_final, NULL));
    g_assert_cmpint(n->now, <=, started + 24 * US);
    net_free(n);
}

/* No reply to the push request and no AUTH_PENDING: start over after
 * hand-window, as OpenVPN does. */
static void test_push_timeout(void)
{
    Net *n = net_pending("hand-window 15\n", 315);
    gint64 started = n->now;
    g_assert_true(
        net_run(n, n->now + 60 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_RECONNECTING)));
    g_assert_cmpint(n->now, >=, started + 14 * US);
    g_assert_cmpint(n->now, <=, started + 16 * US);
    g_assert_true(net_logged(n, "no reply from the server to the push request"));
    n->srv->answer_push = TRUE;
    g_assert_true(
        net_run(n, n->now + 30 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    net_free(n);
}

/* Requests the engine refuses to pass on. */
static void test_web_auth_bad_urls(void)
{
    Net *n = net_pending(NULL, 316);
    static const char *const bad[] = {
        "INFO_PRE,OPEN_URL:file:///etc/passwd",
        "INFO_PRE,OPEN_URL:javascript:alert(1)",
        "INFO_PRE,WEB_AUTH::ms-settings:network",
        "INFO_PRE,OPEN_URL:https://evil.example/\x1b[2J",
        "INFO_PRE,OPEN_URL:https://spaced example/",
        "INFO_PRE,OPEN_URL:https:///no-host",
        "INFO_PRE,WEB_AUTH:no-second-colon",
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_true(ts_send_message(n->srv, 0, bad[i]));
    g_assert_true(net_run(n, n->now + 2 * US, NULL, NULL));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_WEB_AUTH), ==, 0);
    g_assert_cmpuint(count_logs(n, "not an http(s) URL"), ==, 6);
    g_assert_true(net_logged(n, "a malformed WEB_AUTH request"));
    /* A plain INFO stays a message for the user. */
    g_assert_true(ts_send_message(n->srv, 0, "INFO,Welcome back"));
    g_assert_true(net_run(n, n->now + 1 * US, NULL, NULL));
    NetEvent *ev = net_event(n, net_find_event(n, 0, SHIMMER_EVENT_INFO, -1));
    g_assert_cmpstr(ev->message, ==, "Welcome back");
    net_free(n);
}

static gboolean srv_got_message(Net *n, gconstpointer data)
{
    for (guint i = 0; i < n->srv->messages_in->len; i++)
        if (g_str_has_prefix(g_ptr_array_index(n->srv->messages_in, i), data))
            return TRUE;
    return FALSE;
}

static void test_cr_text(void)
{
    Net *n = net_pending(NULL, 317);
    g_assert_true(ts_send_message(n->srv, 0, "AUTH_PENDING,timeout 60"));
    g_assert_true(ts_send_message(n->srv, 0, "INFO_PRE,CR_TEXT:E,R:Your code: please?"));
    g_assert_true(net_run(n, n->now + 2 * US, NULL, NULL));
    gint q = net_find_event(n, 0, SHIMMER_EVENT_NEED_CREDENTIALS, -1);
    g_assert_cmpint(q, >=, 0);
    NetEvent *ev = net_event(n, q);
    g_assert_cmpint(ev->credentials, ==, SHIMMER_CREDENTIALS_CR_TEXT);
    g_assert_cmpstr(ev->message, ==, "Your code: please?");
    g_assert_true(ev->echo);
    g_assert_true(ev->response_required);
    shimmer_engine_set_credentials(n->e, NULL, "123456", n->now);
    g_assert_true(net_run(n, n->now + 5 * US, srv_got_message, "CR_RESPONSE,"));
    /* base64("123456") */
    g_assert_true(srv_got_message(n, "CR_RESPONSE,MTIzNDU2"));
    /* A second answer, not asked for, is not sent and changes nothing. */
    guint sent = n->srv->messages_in->len;
    shimmer_engine_set_credentials(n->e, NULL, "second-answer", n->now);
    g_assert_true(net_run(n, n->now + 1 * US, NULL, NULL));
    for (guint i = sent; i < n->srv->messages_in->len; i++)
        g_assert_false(g_str_has_prefix(g_ptr_array_index(n->srv->messages_in, i), "CR_"));
    /* The session goes on (the password is not replaced by the answers). */
    n->srv->answer_push = TRUE;
    g_assert_true(
        net_run(n, n->now + 10 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpstr(n->srv->password, ==, "secret");
    /* Nor after a reconnect. */
    shimmer_engine_transport_failed(n->e, "test", n->now);
    g_assert_true(
        net_run(n, n->now + 20 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpstr(n->srv->password, ==, "secret");
    net_free(n);

    /* Without R nothing is awaited: an answer is not sent as CR_RESPONSE. */
    n = net_pending(NULL, 318);
    g_assert_true(ts_send_message(n->srv, 0, "INFO_PRE,CR_TEXT::Check your phone"));
    g_assert_true(net_run(n, n->now + 2 * US, NULL, NULL));
    ev = net_event(n, net_find_event(n, 0, SHIMMER_EVENT_NEED_CREDENTIALS, -1));
    g_assert_false(ev->echo);
    g_assert_false(ev->response_required);
    net_free(n);
}

/* ---------------------------------------------------------------------- */
/* Credentials across renegotiations and reconnects. */

/* auth-nocache without a token: the renegotiation asks for the password. */
static void test_auth_nocache(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, AUTH_EXTRA "auth-nocache\nreneg-sec 10\n", 321);
    n->srv->ping_every = 5 * US;
    net_connect(n, 10 * US);
    g_assert_cmpstr(n->srv->password, ==, "secret");
    g_assert_true(net_logged(n, "auth-nocache: the password is forgotten"));
    guint asked = net_count_events(n, SHIMMER_EVENT_NEED_CREDENTIALS);
    g_assert_true(net_run(n, n->now + 15 * US, NULL, NULL));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_NEED_CREDENTIALS), ==, asked + 1);
    NetEvent *ev = net_event(n, net_find_event(n, 0, SHIMMER_EVENT_NEED_CREDENTIALS, -1));
    g_assert_cmpint(ev->credentials, ==, SHIMMER_CREDENTIALS_PASSWORD);
    /* The data keys of the first key still carry traffic meanwhile. */
    send_down(n, 0, 100, 3);
    shimmer_engine_set_credentials(n->e, NULL, "typed-again", n->now);
    g_assert_true(net_run(n, n->now + 10 * US, done_renegotiated, GINT_TO_POINTER(1)));
    g_assert_cmpstr(n->srv->password, ==, "typed-again");
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_CONNECTED);
    net_free(n);

    /* With an auth-token nothing is asked: the token serves. */
    n = net_for(SHIMMER_WRAP_TLS_CRYPT, AUTH_EXTRA "auth-nocache\nreneg-sec 10\n", 322);
    n->srv->ping_every = 5 * US;
    ts_set_push(n->srv, DEFAULT_PUSH ",auth-token SESS_tok,auth-token-user Ym9i");
    net_connect(n, 10 * US);
    asked = net_count_events(n, SHIMMER_EVENT_NEED_CREDENTIALS);
    g_assert_true(net_run(n, n->now + 20 * US, done_renegotiated, GINT_TO_POINTER(1)));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_NEED_CREDENTIALS), ==, asked);
    g_assert_cmpstr(n->srv->password, ==, "SESS_tok");
    /* auth-token-user is the base64 of the user name. */
    g_assert_cmpstr(n->srv->username, ==, "bob");
    net_free(n);
}

static gboolean done_logged(Net *n, gconstpointer data)
{
    return net_logged(n, data);
}

/* A reconnect keeps using the token; a refused token falls back to the
 * password without failing the session. */
static void test_auth_token_reconnect(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, AUTH_EXTRA "connect-retry 1\n", 323);
    ts_set_push(n->srv, DEFAULT_PUSH ",auth-token SESS_one");
    net_connect(n, 10 * US);
    shimmer_engine_transport_failed(n->e, "test", n->now);
    g_assert_true(
        net_run(n, n->now + 20 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpstr(n->srv->password, ==, "SESS_one");
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_NEED_CREDENTIALS), ==, 0);

    /* The server forgot the token (restarted): AUTH_FAILED, then the
     * password. */
    ts_set_push(n->srv, "AUTH_FAILED");
    shimmer_engine_transport_failed(n->e, "test", n->now);
    g_assert_true(net_run(n, n->now + 20 * US, done_logged, "refused the auth-token"));
    g_assert_cmpint(shimmer_engine_get_state(n->e), !=, SHIMMER_STATE_FAILED);
    ts_set_push(n->srv, DEFAULT_PUSH);
    g_assert_true(
        net_run(n, n->now + 20 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpstr(n->srv->password, ==, "secret");
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_AUTH_FAILED), ==, 0);
    net_free(n);
}

static void test_auth_retry(void)
{
    /* interact: asked again, then a new attempt with the answer. */
    Net *n =
        net_for(SHIMMER_WRAP_TLS_CRYPT, AUTH_EXTRA "auth-retry interact\nconnect-retry 1\n", 324);
    ts_set_push(n->srv, "AUTH_FAILED,wrong password");
    net_start(n);
    g_assert_true(net_run(n, n->now + 20 * US, NULL, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_RECONNECTING);
    g_assert_cmpint(net_find_event(n, 0, SHIMMER_EVENT_NEED_CREDENTIALS, -1), >=, 0);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_AUTH_FAILED), ==, 0);
    ts_set_push(n->srv, DEFAULT_PUSH);
    shimmer_engine_set_credentials(n->e, NULL, "right", n->now);
    g_assert_true(
        net_run(n, n->now + 20 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpstr(n->srv->password, ==, "right");
    net_free(n);

    /* nointeract: the same credentials again, without asking. */
    n = net_for(SHIMMER_WRAP_TLS_CRYPT, AUTH_EXTRA "auth-retry nointeract\nconnect-retry 1\n", 325);
    ts_set_push(n->srv, "AUTH_FAILED");
    net_start(n);
    g_assert_true(net_run(n, n->now + 3 * US, NULL, NULL));
    g_assert_true(
        net_run(n, n->now + 20 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_RECONNECTING)));
    ts_set_push(n->srv, DEFAULT_PUSH);
    g_assert_true(
        net_run(n, n->now + 20 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)));
    g_assert_cmpstr(n->srv->password, ==, "secret");
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_NEED_CREDENTIALS), ==, 0);
    g_assert_cmpuint(n->srv->sessions, >=, 2);
    net_free(n);
}

/* replay-window N T widens the data channel's window. */
static void test_replay_window_option(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "replay-window 256 30\n", 326);
    net_connect(n, 10 * US);
    GPtrArray *pkts = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_ptr_array_add(pkts, g_bytes_new(NULL, 0));
    for (guint i = 1; i <= 200; i++) {
        guint8 ip[64], pkt[256];
        make_ip(ip, 48, i);
        gsize len = ts_seal(n->srv, 0, ip, 48, pkt, sizeof(pkt));
        g_ptr_array_add(pkts, g_bytes_new(pkt, len));
    }
    deliver_sealed(n, pkts, 200, SHIMMER_RECV_TUN);
    /* 199 behind: outside OpenVPN's default of 64, inside 256. */
    deliver_sealed(n, pkts, 1, SHIMMER_RECV_TUN);
    /* The time backtrack is 30 s, not 15. */
    n->now += 20 * US;
    deliver_sealed(n, pkts, 2, SHIMMER_RECV_TUN);
    n->now += 11 * US;
    deliver_sealed(n, pkts, 3, SHIMMER_RECV_DROPPED);
    g_assert_cmpint(n->last_drop, ==, SHIMMER_DROP_REPLAY);
    g_ptr_array_unref(pkts);
    net_free(n);
}

/* remote-cert-eku, ns-cert-type: checked on the server's certificate. */
static void test_cert_usage(void)
{
    Net *n = net_for(SHIMMER_WRAP_TLS_CRYPT, "ns-cert-type server\nremote-cert-ku\n", 327);
    net_connect(n, 10 * US);
    net_free(n);
    n = net_for(SHIMMER_WRAP_TLS_CRYPT, "remote-cert-eku 1.3.6.1.5.5.7.3.2\n", 328);
    net_start(n);
    g_assert_true(net_run(n, n->now + 10 * US, done_state_final, NULL));
    g_assert_cmpint(shimmer_engine_get_state(n->e), ==, SHIMMER_STATE_FAILED);
    g_assert_true(net_logged(n, "the server's certificate: "));
    g_assert_cmpuint(net_count_events(n, SHIMMER_EVENT_CONNECT), ==, 1);
    net_free(n);
}

static gint64 net_engine_realtime_now(gpointer user)
{
    return g_get_real_time() / US;
}

/* The corpus's provider profiles whose CRL GnuTLS refuses: the engine
 * reads it (crl.h) and starts. */
static void test_crl_nonder_profile(void)
{
    g_autofree char *corpus = g_build_filename(g_getenv("SHIMMER_TEST_SRCDIR"), "corpus", NULL);
    static const char *const files[] = {"ok-crl-nonder-provider.ovpn",
                                        "ok-pia-legacy-comp-lzo.ovpn"};
    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(corpus, files[i], NULL);
        g_autofree char *text = NULL;
        gsize len = 0;
        g_assert_true(g_file_get_contents(path, &text, &len, NULL));
        g_autoptr(ShimmerConfig) cfg =
            shimmer_config_parse(path, NULL, text, len, shimmer_config_file_loader, NULL);
        g_assert_false(shimmer_config_has_errors(cfg));
        ShimmerEngineHooks hooks = {.realtime = net_engine_realtime_now};
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerEngine) e = shimmer_engine_new(cfg, &hooks, &error);
        g_assert_no_error(error);
        g_assert_nonnull(e);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(connect_cases); i++) {
        g_autofree char *path = g_strdup_printf("/engine/connect/%s", connect_cases[i].name);
        g_test_add_data_func(path, &connect_cases[i], test_connect);
    }
    static const struct {
        const char *name;
        ShimmerWrapMode wrap;
    } wraps[] = {
        {"none", SHIMMER_WRAP_NONE},
        {"tls-auth", SHIMMER_WRAP_TLS_AUTH},
        {"tls-crypt", SHIMMER_WRAP_TLS_CRYPT},
        {"tls-crypt-v2", SHIMMER_WRAP_TLS_CRYPT_V2},
    };
    for (guint i = 0; i < G_N_ELEMENTS(wraps); i++) {
        g_autofree char *path = g_strdup_printf("/engine/impaired/%s", wraps[i].name);
        g_test_add_data_func(path, GINT_TO_POINTER(wraps[i].wrap), test_impaired);
        if (wraps[i].wrap == SHIMMER_WRAP_NONE)
            continue;
        g_autofree char *cpath = g_strdup_printf("/engine/corruption/%s", wraps[i].name);
        g_test_add_data_func(cpath, GINT_TO_POINTER(wraps[i].wrap), test_corruption);
    }
    g_test_add_func("/engine/corruption/data-none", test_corruption_data_nowrap);
    g_test_add_func("/engine/replay", test_replay);
    g_test_add_func("/engine/reneg/client", test_reneg_client);
    g_test_add_func("/engine/reneg/server", test_reneg_server);
    g_test_add_func("/engine/reneg/key-id-wrap", test_reneg_wrap);
    g_test_add_func("/engine/keepalive", test_keepalive);
    g_test_add_func("/engine/auth-failed", test_auth_failed);
    g_test_add_func("/engine/cipher/not-offered", test_cipher_not_offered);
    g_test_add_func("/engine/cipher/missing", test_cipher_missing);
    g_test_add_func("/engine/push/continuation", test_push_continuation);
    g_test_add_func("/engine/push/continuation-later", test_push_continuation_later);
    g_test_add_func("/engine/tls-crypt-v2/early-negotiation", test_early_negotiation);
    g_test_add_func("/engine/server/restart-halt", test_server_restart);
    g_test_add_func("/engine/handshake-timeouts", test_handshake_timeouts);
    g_test_add_func("/engine/stop/cc-exit", test_stop_cc_exit);
    g_test_add_func("/engine/stop/occ-exit", test_stop_occ_exit);
    g_test_add_func("/engine/stop/during-reneg", test_stop_during_reneg);
    g_test_add_func("/engine/stop/cc-exit-tcp", test_stop_cc_exit_tcp);
    g_test_add_func("/engine/compress/lz4-v2", test_compress_lz4_v2);
    g_test_add_func("/engine/compress/lzo", test_compress_lzo);
    g_test_add_func("/engine/compress/not-allowed", test_compress_not_allowed);
    g_test_add_func("/engine/pending/web-auth", test_web_auth);
    g_test_add_func("/engine/pending/web-auth-timeout", test_web_auth_timeout);
    g_test_add_func("/engine/pending/cap", test_auth_pending_cap);
    g_test_add_func("/engine/pending/push-timeout", test_push_timeout);
    g_test_add_func("/engine/pending/bad-urls", test_web_auth_bad_urls);
    g_test_add_func("/engine/pending/cr-text", test_cr_text);
    g_test_add_func("/engine/credentials/auth-nocache", test_auth_nocache);
    g_test_add_func("/engine/credentials/token-reconnect", test_auth_token_reconnect);
    g_test_add_func("/engine/credentials/auth-retry", test_auth_retry);
    g_test_add_func("/engine/replay-window", test_replay_window_option);
    g_test_add_func("/engine/cert-usage", test_cert_usage);
    g_test_add_func("/engine/crl/non-der-profile", test_crl_nonder_profile);
    g_test_add_func("/engine/contract/drop-reasons", test_drop_reasons);
    g_test_add_func("/engine/contract/encrypt-results", test_encrypt_results);
    g_test_add_func("/engine/contract/write-pkt-small-buffer", test_write_pkt_small_buffer);
    g_test_add_func("/engine/dataplane/in-place", test_dataplane_in_place);
    g_test_add_func("/engine/dataplane/threads", test_dataplane_threads);
    g_test_add_func("/engine/dataplane/ordered", test_dataplane_ordered);
    g_test_add_func("/engine/dataplane/reneg-under-load", test_dataplane_reneg_under_load);
    g_test_add_func("/engine/dataplane/wake", test_dataplane_wake);
    g_test_add_func("/engine/contract/calls-out-of-state", test_calls_out_of_state);
    g_test_add_func("/engine/contract/random-fails", test_random_fails);
    g_test_add_func("/engine/secrets/challenge", test_challenge);
    g_test_add_func("/engine/secrets/auth-token", test_auth_token);
    g_test_add_func("/engine/secrets/push-too-large", test_push_too_large);
    g_test_add_func("/engine/secrets/password-too-long", test_password_too_long);
    g_test_add_func("/engine/secrets/messages-after-restart", test_messages_after_restart);
    add_cert_time_tests();
    g_test_add_func("/engine/cert-time/no-clock", test_cert_time_no_clock);
    return g_test_run();
}

#endif /* SHIMMER_TEST_ENGINE_HARNESS_ONLY */
