/* SPDX-License-Identifier: MIT */
/*
 * The protocol engine: session ids, key states, the control channel (reliable
 * layer + wrapping + TLS through GnuTLS), key method 2, push/pull, the data
 * channel, keepalive, renegotiation and reconnection. No I/O: see engine.h.
 */
#include "engine.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

#include "bytes.h"
#include "compframe.h"
#include "ctlwrap.h"
#include "datachan.h"
#include "kdf.h"
#include "packet.h"
#include "reliable.h"
#include "replay.h"
#include "secure.h"

#define US 1000000LL

/* IV_PROTO bits we implement and so advertise. */
enum {
    IV_PROTO_DATA_V2 = 1 << 1,
    IV_PROTO_REQUEST_PUSH = 1 << 2,
    IV_PROTO_TLS_KEY_EXPORT = 1 << 3,
    IV_PROTO_CC_EXIT_NOTIFY = 1 << 7,
};

static const guint8 ping_magic[16] = {0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb,
                                      0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48};
static const guint8 occ_magic[16] = {0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81,
                                     0x2d, 0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c};
#define OCC_EXIT 6

#define MAX_PACKET 2048
#define PUSH_REQUEST_INTERVAL (5 * US)
#define N_KEY_STATES 3

typedef enum {
    KS_NONE,
    KS_RESET_SENT,   /* our (hard or soft) reset is out */
    KS_TLS,          /* handshake running */
    KS_KM_SENT,      /* handshake done, key method 2 record sent */
    KS_ACTIVE,       /* both key-method records exchanged */
} KeyStateStatus;

typedef struct {
    KeyStateStatus status;
    guint8 key_id;
    ShimmerReliable *rel;
    gnutls_session_t tls;
    GByteArray *tls_out;   /* TLS bytes not yet taken by the reliable layer */
    GByteArray *app_in;    /* decrypted TLS application data not yet parsed */
    bool km_received;
    bool keys_installed;
    guint8 pre_master[SHIMMER_PRE_MASTER_LEN];
    guint8 random1[SHIMMER_KM_RANDOM_LEN], random2[SHIMMER_KM_RANDOM_LEN];
    guint8 srv_random1[SHIMMER_KM_RANDOM_LEN], srv_random2[SHIMMER_KM_RANDOM_LEN];
    ShimmerDatachanKey *enc, *dec;
    ShimmerReplay replay;
    gint64 started;      /* when the key state began (hand-window) */
    gint64 established;  /* when the data keys were installed (reneg-sec) */
    gint64 expires;      /* lame duck: stop accepting after this */
    guint64 bytes, packets;
} KeyState;

struct ShimmerEngine {
    const ShimmerConfig *cfg;
    ShimmerEngineHooks hooks;
    ShimmerState state;
    bool is_tcp;
    bool transport_ready;
    guint conn_index;        /* the connection in use */
    guint *order;            /* the order to try connections in (remote-random) */
    guint order_pos;
    guint attempts;          /* consecutive failed connection attempts */

    gnutls_certificate_credentials_t creds;
    char *priority;
    char *key_passphrase;
    char *username, *password;
    char *auth_token;
    /* A dynamic challenge (CRV1) waiting for the user's response. */
    bool crv1_pending;
    char *crv1_state_id;
    char *crv1_username;

    guint8 own_sid[8];
    guint8 remote_sid[8];
    bool have_remote_sid;
    ShimmerCtlwrap *wrap;
    ShimmerReplay ctl_replay;
    bool wkc_resend_requested;

    KeyState ks[N_KEY_STATES]; /* [0] primary, [1] lame duck, [2] spare */
    guint8 next_key_id;

    GQueue *out;    /* GBytes: transport packets */
    GQueue *events; /* ShimmerEvent* */

    /* push */
    gint64 push_request_at;
    ShimmerConfig *pushed;
    GString *push_text;
    guint32 peer_id;
    bool use_data_v2;
    ShimmerDatachanCipher cipher;
    bool cipher_set;
    bool tls_ekm;
    bool cc_exit;
    ShimmerCompFraming comp;

    /* timers */
    gint64 last_sent;       /* any packet sent (keepalive) */
    gint64 last_recv;       /* authenticated packet received */
    gint ping_s, ping_restart_s;
    gint64 connect_deadline; /* no server reset by then: next remote */
    gint64 retry_at;        /* RECONNECTING: when to try again */
    gint64 exit_at;         /* DISCONNECTING: give up waiting */
    guint exit_pings_left;
    gint64 next_exit_ping;

    ShimmerEngineStats stats;
    guint8 scratch[MAX_PACKET + 128];
    guint8 scratch2[MAX_PACKET + 128];
};

G_DEFINE_QUARK(shimmer-engine-error-quark, shimmer_engine_error)

const char *shimmer_state_name(ShimmerState state)
{
    static const char *const names[] = {
        "idle",      "connecting",    "authenticating", "getting-config", "connected",
        "reconnecting", "disconnecting", "disconnected", "failed",
    };
    return (guint)state < G_N_ELEMENTS(names) ? names[state] : "?";
}

void shimmer_event_clear(ShimmerEvent *ev)
{
    g_clear_pointer(&ev->message, g_free);
}

/* ---------- logging, events, randomness ---------- */

static void G_GNUC_PRINTF(3, 4) elog(ShimmerEngine *e, ShimmerLogLevel lvl, const char *fmt, ...)
{
    if (e->hooks.log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    e->hooks.log(e->hooks.user, lvl, msg);
}

static void rnd(ShimmerEngine *e, void *buf, gsize len)
{
    if (e->hooks.random != NULL)
        e->hooks.random(e->hooks.user, buf, len);
    else if (gnutls_rnd(GNUTLS_RND_KEY, buf, len) != 0)
        g_error("gnutls_rnd failed"); /* no randomness: nothing safe to do */
}

static void push_event(ShimmerEngine *e, ShimmerEventType type, guint index, const char *msg)
{
    ShimmerEvent *ev = g_new0(ShimmerEvent, 1);
    ev->type = type;
    ev->state = e->state;
    ev->index = index;
    ev->message = g_strdup(msg);
    g_queue_push_tail(e->events, ev);
}

static void set_state(ShimmerEngine *e, ShimmerState s, const char *why)
{
    if (e->state == s)
        return;
    e->state = s;
    elog(e, SHIMMER_LOG_INFO, "state %s%s%s", shimmer_state_name(s), why ? ": " : "",
         why ? why : "");
    push_event(e, SHIMMER_EVENT_STATE, e->conn_index, why);
}

/* ---------- key states ---------- */

static void ks_clear(KeyState *ks)
{
    g_clear_pointer(&ks->rel, shimmer_reliable_free);
    if (ks->tls != NULL) {
        gnutls_deinit(ks->tls);
        ks->tls = NULL;
    }
    if (ks->tls_out != NULL) {
        shimmer_wipe(ks->tls_out->data, ks->tls_out->len);
        g_byte_array_unref(ks->tls_out);
    }
    if (ks->app_in != NULL) {
        shimmer_wipe(ks->app_in->data, ks->app_in->len);
        g_byte_array_unref(ks->app_in);
    }
    g_clear_pointer(&ks->enc, shimmer_datachan_key_free);
    g_clear_pointer(&ks->dec, shimmer_datachan_key_free);
    shimmer_wipe(ks, sizeof(*ks));
}

static KeyState *ks_by_id(ShimmerEngine *e, guint key_id)
{
    for (int i = 0; i < N_KEY_STATES; i++) {
        if (e->ks[i].status != KS_NONE && e->ks[i].key_id == key_id)
            return &e->ks[i];
    }
    return NULL;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    KeyState *ks = ptr;
    g_byte_array_append(ks->tls_out, data, (guint)len);
    return (ssize_t)len;
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    KeyState *ks = ptr;
    gsize n = shimmer_reliable_read(ks->rel, data, len);
    if (n == 0) {
        gnutls_transport_set_errno(ks->tls, EAGAIN);
        return -1;
    }
    return (ssize_t)n;
}

static int verify_peer(gnutls_session_t session);

static bool ks_start(ShimmerEngine *e, KeyState *ks, guint8 key_id, gint64 now, GError **error)
{
    ks_clear(ks);
    ks->key_id = key_id;
    ShimmerReliableConfig rc = {0};
    rc.max_payload = e->is_tcp ? 1300 : 1250;
    ks->rel = shimmer_reliable_new(&rc);
    ks->tls_out = g_byte_array_new();
    ks->app_in = g_byte_array_new();
    ks->started = now;
    shimmer_replay_init(&ks->replay, SHIMMER_REPLAY_DEFAULT_WINDOW,
                        SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S);
    rnd(e, ks->pre_master, sizeof(ks->pre_master));
    rnd(e, ks->random1, sizeof(ks->random1));
    rnd(e, ks->random2, sizeof(ks->random2));

    int rc2 = gnutls_init(&ks->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
    if (rc2 == 0)
        rc2 = gnutls_priority_set_direct(ks->tls, e->priority, NULL);
    if (rc2 == 0)
        rc2 = gnutls_credentials_set(ks->tls, GNUTLS_CRD_CERTIFICATE, e->creds);
    if (rc2 != 0) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "TLS setup failed: %s",
                    gnutls_strerror(rc2));
        return false;
    }
    gnutls_session_set_ptr(ks->tls, e);
    gnutls_transport_set_ptr(ks->tls, ks);
    gnutls_transport_set_push_function(ks->tls, tls_push);
    gnutls_transport_set_pull_function(ks->tls, tls_pull);
    gnutls_handshake_set_timeout(ks->tls, 0);
    ks->status = KS_RESET_SENT;
    return true;
}

/* ---------- output ---------- */

static void queue_packet(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now)
{
    g_queue_push_tail(e->out, g_bytes_new(pkt, len));
    e->stats.link_bytes_out += len;
    e->last_sent = now;
}

/* Builds, wraps and queues one control packet for KS. */
static void send_control(ShimmerEngine *e, KeyState *ks, guint opcode, bool has_pid, guint32 pid,
                         const guint8 *payload, gsize payload_len, gint64 now)
{
    ShimmerControlPacket pkt = {0};
    pkt.opcode = (guint8)opcode;
    pkt.key_id = ks->key_id;
    memcpy(pkt.session_id, e->own_sid, 8);
    gsize max_acks = opcode == SHIMMER_OP_ACK_V1 ? SHIMMER_PACKET_MAX_ACKS : SHIMMER_PACKET_MAX_ACKS_CONTROL;
    /* A reset from us is the first packet: it acks nothing. */
    if (opcode != SHIMMER_OP_HARD_RESET_CLIENT_V2 && opcode != SHIMMER_OP_HARD_RESET_CLIENT_V3)
        pkt.n_acks = (guint)shimmer_reliable_take_acks(ks->rel, pkt.acks, max_acks);
    if (pkt.n_acks > 0)
        memcpy(pkt.remote_session_id, e->remote_sid, 8);
    pkt.has_msg_pid = has_pid;
    pkt.msg_pid = pid;
    pkt.payload = payload;
    pkt.payload_len = payload_len;
    gsize plain_len = 0;
    if (shimmer_packet_build_control(&pkt, e->scratch2, sizeof(e->scratch2), &plain_len) !=
        SHIMMER_PACKET_OK) {
        elog(e, SHIMMER_LOG_ERROR, "cannot build a control packet");
        return;
    }
    gsize wrapped = 0;
    /* The wrap's time field only orders packets for the peer's replay
     * check: the engine's own clock serves, so no wall clock is read here. */
    ShimmerCtlwrapError err = shimmer_ctlwrap_wrap(e->wrap, e->scratch2, plain_len,
                                                   (guint32)(1 + now / US), e->scratch,
                                                   sizeof(e->scratch), &wrapped);
    shimmer_wipe(e->scratch2, plain_len);
    if (err != SHIMMER_CTLWRAP_OK) {
        elog(e, SHIMMER_LOG_ERROR, "cannot wrap a control packet: %s",
             shimmer_ctlwrap_error_to_string(err));
        return;
    }
    queue_packet(e, e->scratch, wrapped, now);
}

/* Moves TLS output into the reliable layer and sends what is due. */
static void flush_control(ShimmerEngine *e, KeyState *ks, gint64 now)
{
    if (ks->status == KS_NONE || !e->transport_ready)
        return;
    if (ks->tls_out->len > 0) {
        gsize n = shimmer_reliable_queue(ks->rel, SHIMMER_OP_CONTROL_V1, ks->tls_out->data,
                                         ks->tls_out->len);
        if (n > 0) {
            shimmer_wipe(ks->tls_out->data, n);
            g_byte_array_remove_range(ks->tls_out, 0, (guint)n);
        }
    }
    ShimmerReliableMessage msg;
    while (shimmer_reliable_next_to_send(ks->rel, now, &msg)) {
        send_control(e, ks, msg.kind, true, msg.pid, msg.payload, msg.len, now);
    }
    while (shimmer_reliable_has_pending_acks(ks->rel))
        send_control(e, ks, SHIMMER_OP_ACK_V1, false, 0, NULL, 0, now);
}

/* ---------- TLS application messages ---------- */

static void tls_send(ShimmerEngine *e, KeyState *ks, const void *data, gsize len)
{
    const guint8 *p = data;
    while (len > 0) {
        ssize_t n = gnutls_record_send(ks->tls, p, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue; /* our push never blocks; gnutls may still ask to retry */
        if (n < 0) {
            elog(e, SHIMMER_LOG_ERROR, "TLS send failed: %s", gnutls_strerror((int)n));
            return;
        }
        p += n;
        len -= (gsize)n;
    }
}

static void send_control_message(ShimmerEngine *e, KeyState *ks, const char *msg)
{
    /* Control messages are NUL-terminated strings on the TLS stream. */
    tls_send(e, ks, msg, strlen(msg) + 1);
}

static void put_string(GByteArray *b, const char *s)
{
    if (s == NULL || s[0] == '\0') {
        guint8 z[2] = {0, 0};
        g_byte_array_append(b, z, 2);
        return;
    }
    gsize len = strlen(s) + 1;
    guint8 l[2];
    shimmer_write_be16(l, (guint16)len);
    g_byte_array_append(b, l, 2);
    g_byte_array_append(b, (const guint8 *)s, (guint)len);
}

static char *options_string(ShimmerEngine *e)
{
    /* Only compared by the peer, for a warning: describe ourselves plainly. */
    guint mtu = e->cfg->tun_mtu ? e->cfg->tun_mtu : 1500;
    return g_strdup_printf("V4,dev-type tun,link-mtu %u,tun-mtu %u,proto %s,"
                           "cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,"
                           "tls-client",
                           mtu + 49, mtu, e->is_tcp ? "TCPv4_CLIENT" : "UDPv4");
}

static char *peer_info(ShimmerEngine *e)
{
    GString *s = g_string_new(NULL);
    /* Honest: our own version, not OpenVPN's. What we can do is said by
     * IV_PROTO and IV_CIPHERS, which is what a 2.6 server reads. */
    g_string_append_printf(s, "IV_VER=shimmer-%s\nIV_PLAT=linux\nIV_GUI_VER=Shimmer_%s\n",
                           "0.1.0", "0.1.0");
    g_string_append_printf(s, "IV_PROTO=%d\n",
                           IV_PROTO_DATA_V2 | IV_PROTO_REQUEST_PUSH | IV_PROTO_TLS_KEY_EXPORT |
                               IV_PROTO_CC_EXIT_NOTIFY);
    g_string_append(s, "IV_NCP=2\nIV_CIPHERS=");
    for (guint i = 0; i < e->cfg->data_ciphers->len; i++) {
        ShimmerCipher c = g_array_index(e->cfg->data_ciphers, ShimmerCipher, i);
        g_string_append_printf(s, "%s%s", i ? ":" : "", shimmer_cipher_name(c));
    }
    g_string_append(s, "\nIV_MTU=1600\n");
    /* Only when the profile asks for compression framing: a server then
     * picks a stub; without it a 2.6 server sends unframed packets. */
    if (e->cfg->comp != SHIMMER_COMP_NONE)
        g_string_append(s, "IV_LZO_STUB=1\nIV_COMP_STUB=1\nIV_COMP_STUBv2=1\n");
    return g_string_free(s, FALSE);
}

static void send_key_method(ShimmerEngine *e, KeyState *ks)
{
    GByteArray *b = g_byte_array_new();
    guint8 head[5] = {0, 0, 0, 0, 2};
    g_byte_array_append(b, head, 5);
    g_byte_array_append(b, ks->pre_master, sizeof(ks->pre_master));
    g_byte_array_append(b, ks->random1, sizeof(ks->random1));
    g_byte_array_append(b, ks->random2, sizeof(ks->random2));
    g_autofree char *opts = options_string(e);
    put_string(b, opts);
    if (e->cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE) {
        const char *user = e->username;
        if (e->auth_token != NULL && e->pushed != NULL && e->pushed->auth_token_user != NULL)
            user = e->pushed->auth_token_user;
        put_string(b, user ? user : "");
        put_string(b, e->auth_token ? e->auth_token : (e->password ? e->password : ""));
    } else {
        put_string(b, NULL);
        put_string(b, NULL);
    }
    g_autofree char *pi = peer_info(e);
    put_string(b, pi);
    tls_send(e, ks, b->data, b->len);
    shimmer_wipe(b->data, b->len);
    g_byte_array_unref(b);
    ks->status = KS_KM_SENT;
}

static bool get_u16_string(const guint8 **p, const guint8 *end, char **out)
{
    if (end - *p < 2)
        return false;
    gsize len = shimmer_read_be16(*p);
    *p += 2;
    if ((gsize)(end - *p) < len)
        return false;
    if (out != NULL)
        *out = len ? g_strndup((const char *)*p, len) : g_strdup("");
    *p += len;
    return true;
}

/* Parses the server's key-method-2 record at the start of APP_IN. Returns the
 * bytes consumed, 0 if incomplete, -1 if malformed. */
static gssize parse_server_key_method(ShimmerEngine *e, KeyState *ks)
{
    if (ks->app_in->len == 0)
        return 0;
    const guint8 *p = ks->app_in->data, *end = p + ks->app_in->len;
    if (end - p < 5 + 64)
        return 0;
    if (memcmp(p, "\0\0\0\0\2", 5) != 0)
        return -1;
    p += 5;
    memcpy(ks->srv_random1, p, 32);
    memcpy(ks->srv_random2, p + 32, 32);
    p += 64;
    g_autofree char *opts = NULL;
    if (!get_u16_string(&p, end, &opts))
        return 0;
    elog(e, SHIMMER_LOG_DEBUG, "server options: %s", opts);
    /* A 2.6 server may append empty user/password and peer info; take what
     * is complete and leave the rest (it never sends a control message
     * before our PUSH_REQUEST is answered, so nothing is lost). */
    const guint8 *q = p;
    if (get_u16_string(&q, end, NULL) && get_u16_string(&q, end, NULL)) {
        const guint8 *r = q;
        g_autofree char *pi = NULL;
        if (get_u16_string(&r, end, &pi))
            q = r;
        p = q;
    }
    return p - ks->app_in->data;
}

/* ---------- data keys ---------- */

static bool install_keys(ShimmerEngine *e, KeyState *ks, gint64 now)
{
    guint8 key2[SHIMMER_KEY2_LEN];
    if (e->tls_ekm) {
        static const char label[] = "EXPORTER-OpenVPN-datakeys";
        int rc = gnutls_prf_rfc5705(ks->tls, strlen(label), label, 0, NULL, sizeof(key2),
                                    (char *)key2);
        if (rc != 0) {
            elog(e, SHIMMER_LOG_ERROR, "TLS key export failed: %s", gnutls_strerror(rc));
            return false;
        }
    } else {
        shimmer_kdf_openvpn_prf(ks->pre_master, ks->random1, ks->srv_random1, ks->random2,
                                ks->srv_random2, e->own_sid, e->remote_sid, key2);
    }
    gsize klen = shimmer_datachan_cipher_key_len(e->cipher);
    g_autoptr(GError) error = NULL;
    g_clear_pointer(&ks->enc, shimmer_datachan_key_free);
    g_clear_pointer(&ks->dec, shimmer_datachan_key_free);
    /* keys[0] carries client to server, keys[1] server to client. */
    ks->enc = shimmer_datachan_key_new(e->cipher, SHIMMER_DATACHAN_BACKEND_DEFAULT,
                                       SHIMMER_DATACHAN_ENCRYPT, key2, klen, key2 + 64, &error);
    if (ks->enc != NULL)
        ks->dec = shimmer_datachan_key_new(e->cipher, SHIMMER_DATACHAN_BACKEND_DEFAULT,
                                           SHIMMER_DATACHAN_DECRYPT, key2 + 128, klen,
                                           key2 + 192, &error);
    shimmer_wipe(key2, sizeof(key2));
    shimmer_wipe(ks->pre_master, sizeof(ks->pre_master));
    if (ks->dec == NULL) {
        elog(e, SHIMMER_LOG_ERROR, "cannot set up the data channel: %s", error->message);
        return false;
    }
    ks->keys_installed = true;
    ks->established = now;
    ks->bytes = ks->packets = 0;
    elog(e, SHIMMER_LOG_INFO, "data channel key %u: %s, %s", ks->key_id,
         shimmer_datachan_cipher_name(e->cipher), e->tls_ekm ? "TLS-EKM" : "legacy PRF");
    return true;
}

/* ---------- push ---------- */

static void restart_session(ShimmerEngine *e, const char *why, bool next_remote, gint64 now);
static void fail(ShimmerEngine *e, const char *why);

static bool apply_push(ShimmerEngine *e, gint64 now)
{
    g_autoptr(ShimmerConfig) p = shimmer_config_parse_push(e->push_text->str, e->push_text->len,
                                                           e->cfg->pull_filters);
    for (guint i = 0; i < p->diagnostics->len; i++) {
        ShimmerDiagnostic *d = g_ptr_array_index(p->diagnostics, i);
        elog(e, d->severity == SHIMMER_SEVERITY_ERROR ? SHIMMER_LOG_ERROR : SHIMMER_LOG_WARNING,
             "PUSH_REPLY option %u: %s", d->line, d->message);
    }
    if (shimmer_config_has_errors(p))
        return false;

    /* Cipher negotiation: a pushed cipher must be one we offered. */
    ShimmerDatachanCipher dc;
    const char *cname = p->cipher;
    if (cname == NULL)
        cname = e->cfg->data_ciphers_fallback;
    if (cname == NULL) {
        elog(e, SHIMMER_LOG_ERROR, "the server pushed no cipher and no data-ciphers-fallback "
                                   "is configured");
        return false;
    }
    bool offered = false;
    for (guint i = 0; i < e->cfg->data_ciphers->len; i++) {
        ShimmerCipher c = g_array_index(e->cfg->data_ciphers, ShimmerCipher, i);
        offered |= g_ascii_strcasecmp(shimmer_cipher_name(c), cname) == 0;
    }
    if (e->cfg->data_ciphers_fallback != NULL &&
        g_ascii_strcasecmp(e->cfg->data_ciphers_fallback, cname) == 0)
        offered = true;
    if (!offered || !shimmer_datachan_cipher_from_name(cname, &dc)) {
        elog(e, SHIMMER_LOG_ERROR, "the server pushed the cipher %s, which we did not offer",
             cname);
        return false;
    }
    e->cipher = dc;
    e->cipher_set = true;
    e->tls_ekm = p->key_derivation_tls_ekm || p->protocol_flag_tls_ekm;
    e->cc_exit = p->protocol_flag_cc_exit;
    e->peer_id = p->peer_id >= 0 ? (guint32)p->peer_id : SHIMMER_DATACHAN_PEER_ID_NONE;
    e->use_data_v2 = p->peer_id >= 0;
    e->comp = p->comp != SHIMMER_COMP_NONE ? p->comp : e->cfg->comp;
    /* The token replaces the password on renegotiation; auth-nocache only
     * concerns the password the user typed, not the server's token. */
    if (p->auth_token != NULL) {
        shimmer_str_free_secret(e->auth_token);
        e->auth_token = g_strdup(p->auth_token);
    }
    if (p->ping >= 0)
        e->ping_s = p->ping;
    if (p->ping_restart >= 0)
        e->ping_restart_s = p->ping_restart;
    if (e->cfg->route_nopull) {
        g_ptr_array_set_size(p->routes, 0);
        g_ptr_array_set_size(p->routes6, 0);
        p->redirect_gateway = 0;
    }
    shimmer_config_free(e->pushed);
    e->pushed = g_steal_pointer(&p);
    (void)now;
    return true;
}

static void handle_push_reply(ShimmerEngine *e, KeyState *ks, const char *body, gint64 now)
{
    if (e->state == SHIMMER_STATE_CONNECTED)
        return; /* a repeated reply to a repeated PUSH_REQUEST */
    /* Merge the parts of a continued reply; push-continuation itself only
     * says whether more follows (2) or this is the last part (1). */
    bool more = false;
    g_auto(GStrv) items = g_strsplit(body, ",", -1);
    for (guint i = 0; items[i] != NULL; i++) {
        g_autofree char *item = g_strstrip(g_strdup(items[i]));
        if (g_str_has_prefix(item, "push-continuation")) {
            more = strcmp(item, "push-continuation 2") == 0;
            continue;
        }
        if (item[0] == '\0')
            continue;
        if (e->push_text->len > 0)
            g_string_append_c(e->push_text, ',');
        g_string_append(e->push_text, item);
    }
    for (guint i = 0; items[i] != NULL; i++)
        shimmer_wipe(items[i], strlen(items[i])); /* may hold an auth-token */
    if (more)
        return;
    if (!apply_push(e, now)) {
        g_string_truncate(e->push_text, 0);
        fail(e, "the pushed configuration is not usable");
        return;
    }
    g_string_truncate(e->push_text, 0);
    if (!install_keys(e, ks, now)) {
        fail(e, "cannot install the data channel keys");
        return;
    }
    e->attempts = 0;
    /* The tun is configured before anyone hears "connected". */
    push_event(e, SHIMMER_EVENT_TUN_CONFIG, e->conn_index, NULL);
    set_state(e, SHIMMER_STATE_CONNECTED, NULL);
}

static void handle_control_message(ShimmerEngine *e, KeyState *ks, const char *msg, gint64 now)
{
    if (g_str_has_prefix(msg, "PUSH_REPLY")) {
        const char *body = msg + strlen("PUSH_REPLY");
        if (*body == ',')
            body++;
        handle_push_reply(e, ks, body, now);
    } else if (g_str_has_prefix(msg, "AUTH_FAILED,CRV1:")) {
        /* A dynamic challenge: CRV1:flags:state_id:base64(username):text.
         * The answer goes back on a new connection as the password
         * "CRV1::state_id::response". */
        g_auto(GStrv) f = g_strsplit(msg + strlen("AUTH_FAILED,CRV1:"), ":", 4);
        if (g_strv_length(f) < 4) {
            fail(e, "authentication failed: malformed challenge from the server");
            return;
        }
        gsize ulen = 0;
        g_autofree guint8 *user = g_base64_decode(f[2], &ulen);
        g_free(e->crv1_state_id);
        g_free(e->crv1_username);
        e->crv1_state_id = g_strdup(f[1]);
        e->crv1_username = g_strndup((const char *)user, ulen);
        e->crv1_pending = true;
        bool echo = strchr(f[0], 'E') != NULL;
        elog(e, SHIMMER_LOG_INFO, "the server asks a challenge: %s", f[3]);
        restart_session(e, "waiting for the answer to the server's challenge", false, now);
        g_autofree char *what = g_strdup_printf("challenge:%d:%s", echo ? 1 : 0, f[3]);
        push_event(e, SHIMMER_EVENT_NEED_CREDENTIALS, e->conn_index, what);
    } else if (g_str_has_prefix(msg, "AUTH_FAILED")) {
        const char *reason = msg[11] == ',' ? msg + 12 : "";
        g_autofree char *text =
            g_strdup_printf("authentication failed%s%s", reason[0] ? ": " : "", reason);
        elog(e, SHIMMER_LOG_ERROR, "%s", text);
        shimmer_str_free_secret(e->auth_token);
        e->auth_token = NULL;
        push_event(e, SHIMMER_EVENT_AUTH_FAILED, e->conn_index, reason);
        fail(e, text);
    } else if (g_str_has_prefix(msg, "RESTART")) {
        const char *text = msg[7] == ',' ? msg + 8 : "";
        bool next = false;
        if (text[0] == '[') {
            const char *close = strchr(text, ']');
            if (close != NULL) {
                next = memchr(text, 'N', (gsize)(close - text)) != NULL;
                text = close + 1;
            }
        }
        g_autofree char *why = g_strdup_printf("the server asked to restart%s%s",
                                               text[0] ? ": " : "", text);
        restart_session(e, why, next, now);
    } else if (g_str_has_prefix(msg, "HALT")) {
        g_autofree char *why =
            g_strdup_printf("the server halted the session%s%s", msg[4] == ',' ? ": " : "",
                            msg[4] == ',' ? msg + 5 : "");
        fail(e, why);
    } else if (g_str_has_prefix(msg, "INFO")) {
        const char *text = strchr(msg, ',');
        push_event(e, SHIMMER_EVENT_INFO, e->conn_index, text ? text + 1 : "");
        elog(e, SHIMMER_LOG_INFO, "server: %s", text ? text + 1 : msg);
    } else if (g_str_has_prefix(msg, "AUTH_PENDING")) {
        elog(e, SHIMMER_LOG_INFO, "authentication pending on the server");
    } else if (strcmp(msg, "EXIT") == 0) {
        restart_session(e, "the server is shutting down", true, now);
    } else {
        elog(e, SHIMMER_LOG_DEBUG, "ignored control message '%.40s'", msg);
    }
}

static void send_push_request(ShimmerEngine *e, KeyState *ks, gint64 now)
{
    send_control_message(e, ks, "PUSH_REQUEST");
    e->push_request_at = now + PUSH_REQUEST_INTERVAL;
}

/* Reads TLS application data: the key-method record first, then messages. */
static void read_app_data(ShimmerEngine *e, KeyState *ks, gint64 now)
{
    guint8 buf[4096];
    /* Bounded: every round either consumes reliable-layer bytes or ends. */
    for (int rounds = 0; rounds < 1024; rounds++) {
        ssize_t n = gnutls_record_recv(ks->tls, buf, sizeof(buf));
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            /* GnuTLS also answers AGAIN after a post-handshake message
             * (a TLS 1.3 session ticket) even when more records wait. */
            if (shimmer_reliable_readable(ks->rel) > 0)
                continue;
            break;
        }
        if (n == GNUTLS_E_REHANDSHAKE || n == GNUTLS_E_GOT_APPLICATION_DATA)
            continue;
        if (n <= 0) {
            elog(e, SHIMMER_LOG_DEBUG, "key %u: TLS read: %s", ks->key_id,
                 n == 0 ? "closed" : gnutls_strerror((int)n));
            if (n < 0 && gnutls_error_is_fatal((int)n)) {
                g_autofree char *why = g_strdup_printf("TLS error: %s", gnutls_strerror((int)n));
                restart_session(e, why, false, now);
            }
            break;
        }
        g_byte_array_append(ks->app_in, buf, (guint)n);
    }
    shimmer_wipe(buf, sizeof(buf));
    if (e->ks[0].status == KS_NONE && ks == &e->ks[0])
        return; /* the session restarted above */

    if (!ks->km_received) {
        gssize used = parse_server_key_method(e, ks);
        if (used < 0) {
            restart_session(e, "the server's key-method record is malformed", false, now);
            return;
        }
        if (used == 0)
            return;
        shimmer_wipe(ks->app_in->data, (gsize)used);
        g_byte_array_remove_range(ks->app_in, 0, (guint)used);
        ks->km_received = true;
        ks->status = KS_ACTIVE;
        if (ks->key_id == 0 && e->state != SHIMMER_STATE_CONNECTED) {
            set_state(e, SHIMMER_STATE_GETTING_CONFIG, NULL);
            send_push_request(e, ks, now);
        } else if (e->cipher_set) {
            /* A renegotiated key: use it for sending as soon as it is ready;
             * the previous key keeps receiving for tran-window. */
            if (install_keys(e, ks, now)) {
                KeyState old = e->ks[0];
                gint tran = e->cfg->tran_window >= 0 ? e->cfg->tran_window : 3600;
                ks_clear(&e->ks[1]);
                e->ks[0] = *ks;
                memset(ks, 0, sizeof(*ks));
                e->ks[1] = old;
                e->ks[1].expires = now + (gint64)tran * US;
                /* The structs moved: point GnuTLS at their new home. */
                gnutls_transport_set_ptr(e->ks[0].tls, &e->ks[0]);
                if (e->ks[1].tls != NULL)
                    gnutls_transport_set_ptr(e->ks[1].tls, &e->ks[1]);
                e->stats.renegotiations++;
                ks = &e->ks[0];
            }
        }
    }
    /* NUL-terminated control messages. */
    while (ks->app_in->len > 0) {
        guint8 *nul = memchr(ks->app_in->data, 0, ks->app_in->len);
        if (nul == NULL) {
            if (ks->app_in->len > 65536)
                restart_session(e, "oversized control message", false, now);
            return;
        }
        gsize len = (gsize)(nul - ks->app_in->data);
        g_autofree char *msg = g_strndup((const char *)ks->app_in->data, len);
        shimmer_wipe(ks->app_in->data, len + 1);
        g_byte_array_remove_range(ks->app_in, 0, (guint)(len + 1));
        if (len > 0)
            handle_control_message(e, ks, msg, now);
        if (ks->status == KS_NONE)
            return;
        if (msg != NULL)
            shimmer_wipe(msg, len);
    }
}

static void drive_tls(ShimmerEngine *e, KeyState *ks, gint64 now)
{
    if (ks->status == KS_TLS) {
        int rc = gnutls_handshake(ks->tls);
        if (rc == 0) {
            g_autofree char *desc = gnutls_session_get_desc(ks->tls);
            elog(e, SHIMMER_LOG_INFO, "TLS handshake done (key %u): %s", ks->key_id, desc);
            send_key_method(e, ks);
        } else if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED &&
                   gnutls_error_is_fatal(rc)) {
            g_autofree char *why = g_strdup_printf("TLS handshake failed: %s",
                                                   gnutls_strerror(rc));
            elog(e, SHIMMER_LOG_ERROR, "%s", why);
            if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || rc == GNUTLS_E_CERTIFICATE_ERROR)
                fail(e, why);
            else
                restart_session(e, why, true, now);
            return;
        }
    }
    if (ks->status == KS_KM_SENT || ks->status == KS_ACTIVE)
        read_app_data(e, ks, now);
}

/* ---------- session lifecycle ---------- */

static void reset_session_state(ShimmerEngine *e)
{
    for (int i = 0; i < N_KEY_STATES; i++)
        ks_clear(&e->ks[i]);
    e->have_remote_sid = false;
    e->wkc_resend_requested = false;
    e->cipher_set = false;
    e->use_data_v2 = false;
    g_string_truncate(e->push_text, 0);
    while (!g_queue_is_empty(e->out))
        g_bytes_unref(g_queue_pop_head(e->out));
    e->transport_ready = false;
}

static void fail(ShimmerEngine *e, const char *why)
{
    if (e->state == SHIMMER_STATE_FAILED)
        return;
    reset_session_state(e);
    push_event(e, SHIMMER_EVENT_DISCONNECT_TRANSPORT, e->conn_index, NULL);
    set_state(e, SHIMMER_STATE_FAILED, why);
    push_event(e, SHIMMER_EVENT_EXIT, e->conn_index, why);
}

static void schedule_connect(ShimmerEngine *e, gint64 at)
{
    e->retry_at = at;
}

/* Tears the session down and tries again (next remote if NEXT_REMOTE). */
static void restart_session(ShimmerEngine *e, const char *why, bool next_remote, gint64 now)
{
    if (e->state == SHIMMER_STATE_FAILED || e->state == SHIMMER_STATE_DISCONNECTED)
        return;
    if (e->state == SHIMMER_STATE_DISCONNECTING) {
        reset_session_state(e);
        set_state(e, SHIMMER_STATE_DISCONNECTED, why);
        push_event(e, SHIMMER_EVENT_EXIT, e->conn_index, why);
        return;
    }
    elog(e, SHIMMER_LOG_WARNING, "restarting: %s", why);
    reset_session_state(e);
    push_event(e, SHIMMER_EVENT_DISCONNECT_TRANSPORT, e->conn_index, NULL);
    e->stats.reconnects++;
    e->attempts++;
    const ShimmerConfig *cfg = e->cfg;
    if (cfg->connect_retry_max > 0 && e->attempts > (guint)cfg->connect_retry_max *
                                                        MAX(cfg->connections->len, 1)) {
        fail(e, "gave up after connect-retry-max attempts");
        return;
    }
    if (next_remote && cfg->connections->len > 0) {
        e->order_pos = (e->order_pos + 1) % cfg->connections->len;
        e->conn_index = e->order[e->order_pos];
    }
    /* Back off: connect-retry doubling per full round, capped. */
    guint rounds = cfg->connections->len > 0 ? (e->attempts - 1) / cfg->connections->len : 0;
    gint64 delay = (gint64)cfg->connect_retry * US;
    for (guint i = 0; i < rounds && delay < (gint64)cfg->connect_retry_max_delay * US; i++)
        delay *= 2;
    delay = MIN(delay, (gint64)cfg->connect_retry_max_delay * US);
    set_state(e, SHIMMER_STATE_RECONNECTING, why);
    schedule_connect(e, now + delay);
}

static void begin_connect(ShimmerEngine *e, gint64 now)
{
    e->retry_at = 0;
    set_state(e, SHIMMER_STATE_CONNECTING, NULL);
    ShimmerConnection *c = g_ptr_array_index(e->cfg->connections, e->conn_index);
    e->connect_deadline = now + (gint64)c->connect_timeout * US;
    push_event(e, SHIMMER_EVENT_CONNECT, e->conn_index, c->host);
}

void shimmer_engine_start(ShimmerEngine *e, gint64 now)
{
    if (e->cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE && e->password == NULL) {
        push_event(e, SHIMMER_EVENT_NEED_CREDENTIALS, 0,
                   e->username ? "password" : "username and password");
        return;
    }
    begin_connect(e, now);
}

void shimmer_engine_set_credentials(ShimmerEngine *e, const char *username, const char *password,
                                    gint64 now)
{
    if (e->crv1_pending) {
        /* PASSWORD is the response to the dynamic challenge. */
        e->crv1_pending = false;
        g_free(e->username);
        e->username = g_strdup(e->crv1_username);
        shimmer_str_free_secret(e->password);
        e->password = g_strdup_printf("CRV1::%s::%s", e->crv1_state_id, password ? password : "");
        shimmer_str_free_secret(e->auth_token);
        e->auth_token = NULL;
        if (e->state == SHIMMER_STATE_RECONNECTING)
            begin_connect(e, now);
        return;
    }
    if (username != NULL) {
        g_free(e->username);
        e->username = g_strdup(username);
    }
    shimmer_str_free_secret(e->password);
    e->password = g_strdup(password);
    if (e->state == SHIMMER_STATE_IDLE)
        begin_connect(e, now);
}

char *shimmer_engine_static_challenge_password(const char *password, const char *response)
{
    g_autofree char *p64 = g_base64_encode((const guchar *)password, strlen(password));
    g_autofree char *r64 = g_base64_encode((const guchar *)response, strlen(response));
    char *combined = g_strdup_printf("SCRV1:%s:%s", p64, r64);
    shimmer_wipe(p64, strlen(p64));
    shimmer_wipe(r64, strlen(r64));
    return combined;
}

void shimmer_engine_set_key_passphrase(ShimmerEngine *e, const char *passphrase)
{
    shimmer_str_free_secret(e->key_passphrase);
    e->key_passphrase = g_strdup(passphrase);
}

void shimmer_engine_transport_up(ShimmerEngine *e, gboolean is_tcp, gint64 now)
{
    if (e->state != SHIMMER_STATE_CONNECTING)
        return;
    e->is_tcp = is_tcp;
    e->transport_ready = true;
    rnd(e, e->own_sid, sizeof(e->own_sid));
    shimmer_replay_init(&e->ctl_replay, SHIMMER_REPLAY_DEFAULT_WINDOW, 0);

    /* A fresh wrapper per session: its replay counter starts again. */
    shimmer_ctlwrap_free(e->wrap);
    const ShimmerConfig *cfg = e->cfg;
    switch (cfg->wrap) {
    case SHIMMER_WRAP_TLS_AUTH: {
        ShimmerCtlwrapDigest d = SHIMMER_CTLWRAP_DIGEST_SHA1;
        if (cfg->auth == SHIMMER_DIGEST_SHA256)
            d = SHIMMER_CTLWRAP_DIGEST_SHA256;
        else if (cfg->auth == SHIMMER_DIGEST_SHA512)
            d = SHIMMER_CTLWRAP_DIGEST_SHA512;
        e->wrap = shimmer_ctlwrap_new_tls_auth(cfg->static_key, d,
                                               (ShimmerKeyDirection)cfg->key_direction);
        break;
    }
    case SHIMMER_WRAP_TLS_CRYPT:
        e->wrap = shimmer_ctlwrap_new_tls_crypt(cfg->static_key, SHIMMER_CTLWRAP_ROLE_CLIENT);
        break;
    case SHIMMER_WRAP_TLS_CRYPT_V2:
        e->wrap = shimmer_ctlwrap_new_tls_crypt_v2_client(cfg->tls_crypt_v2_client->kc,
                                                          cfg->tls_crypt_v2_client->wkc,
                                                          cfg->tls_crypt_v2_client->wkc_len);
        break;
    default:
        e->wrap = shimmer_ctlwrap_new_none();
    }
    if (e->wrap == NULL) {
        fail(e, "cannot set up the control channel wrapping");
        return;
    }

    g_autoptr(GError) error = NULL;
    KeyState *ks = &e->ks[0];
    if (!ks_start(e, ks, 0, now, &error)) {
        fail(e, error->message);
        return;
    }
    e->next_key_id = 1;
    guint op = cfg->wrap == SHIMMER_WRAP_TLS_CRYPT_V2 ? SHIMMER_OP_HARD_RESET_CLIENT_V3
                                                       : SHIMMER_OP_HARD_RESET_CLIENT_V2;
    guint32 pid;
    shimmer_reliable_queue_message(ks->rel, (guint8)op, NULL, 0, &pid, NULL);
    e->last_recv = now;
    e->ping_s = cfg->keepalive_interval >= 0 ? cfg->keepalive_interval : cfg->ping;
    e->ping_restart_s = cfg->keepalive_timeout >= 0 ? cfg->keepalive_timeout : cfg->ping_restart;
    flush_control(e, ks, now);
}

void shimmer_engine_transport_failed(ShimmerEngine *e, const char *why, gint64 now)
{
    g_autofree char *msg = g_strdup_printf("transport: %s", why);
    restart_session(e, msg, true, now);
}

/* Starts a renegotiation (reneg-sec/bytes/pkts, or the server's SOFT_RESET). */
static KeyState *start_renegotiation(ShimmerEngine *e, guint8 key_id, gint64 now)
{
    KeyState *ks = &e->ks[2];
    g_autoptr(GError) error = NULL;
    if (!ks_start(e, ks, key_id, now, &error)) {
        elog(e, SHIMMER_LOG_ERROR, "renegotiation: %s", error->message);
        return NULL;
    }
    e->next_key_id = key_id == 7 ? 1 : key_id + 1;
    guint32 pid;
    shimmer_reliable_queue_message(ks->rel, SHIMMER_OP_SOFT_RESET_V1, NULL, 0, &pid, NULL);
    ks->status = KS_TLS;
    elog(e, SHIMMER_LOG_INFO, "renegotiating: key %u", key_id);
    return ks;
}

/* ---------- receive ---------- */

static bool parse_tlv_resend_wkc(const guint8 *p, gsize len)
{
    while (len >= 4) {
        guint type = shimmer_read_be16(p);
        guint l = shimmer_read_be16(p + 2);
        if (l > len - 4)
            return false;
        if (type == SHIMMER_CTLWRAP_TLV_EARLY_NEG_FLAGS && l == 2 &&
            (shimmer_read_be16(p + 4) & SHIMMER_CTLWRAP_EARLY_NEG_FLAG_RESEND_WKC))
            return true;
        p += 4 + l;
        len -= 4 + l;
    }
    return false;
}

static void recv_control(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now)
{
    if (e->wrap == NULL || !e->transport_ready) {
        e->stats.dropped_no_key++;
        return;
    }
    gsize plain_len = 0;
    ShimmerCtlwrapInfo info = {0};
    ShimmerCtlwrapError err = shimmer_ctlwrap_unwrap(e->wrap, pkt, len, e->scratch2,
                                                     sizeof(e->scratch2), &plain_len, &info);
    if (err != SHIMMER_CTLWRAP_OK) {
        if (err == SHIMMER_CTLWRAP_ERR_AUTH)
            e->stats.dropped_auth++;
        else
            e->stats.dropped_malformed++;
        elog(e, SHIMMER_LOG_DEBUG, "control packet dropped: %s", shimmer_ctlwrap_error_to_string(err));
        return;
    }
    if (e->cfg->wrap != SHIMMER_WRAP_NONE) {
        if (shimmer_replay_check(&e->ctl_replay, info.replay_pid, now) != SHIMMER_REPLAY_OK) {
            e->stats.dropped_replay++;
            return;
        }
        shimmer_replay_update(&e->ctl_replay, info.replay_pid, now);
    }
    ShimmerControlPacket cp;
    if (shimmer_packet_parse_control(e->scratch2, plain_len, &cp) != SHIMMER_PACKET_OK) {
        e->stats.dropped_malformed++;
        return;
    }
    /* Session ids: the server's must not change, and acks must name ours. */
    if (e->have_remote_sid && memcmp(cp.session_id, e->remote_sid, 8) != 0) {
        e->stats.dropped_malformed++;
        return;
    }
    if (cp.n_acks > 0 && memcmp(cp.remote_session_id, e->own_sid, 8) != 0) {
        e->stats.dropped_malformed++;
        return;
    }
    KeyState *ks = ks_by_id(e, cp.key_id);
    elog(e, SHIMMER_LOG_DEBUG, "control in: %s key %u pid %u acks %u len %zu",
         shimmer_packet_opcode_name(cp.opcode), cp.key_id, cp.has_msg_pid ? cp.msg_pid : 0,
         cp.n_acks, cp.payload_len);
    if (cp.opcode == SHIMMER_OP_HARD_RESET_SERVER_V2) {
        if (cp.key_id != 0 || e->ks[0].status == KS_NONE) {
            e->stats.dropped_malformed++;
            return;
        }
        ks = &e->ks[0];
        if (!e->have_remote_sid) {
            memcpy(e->remote_sid, cp.session_id, 8);
            e->have_remote_sid = true;
            if (e->cfg->wrap == SHIMMER_WRAP_TLS_CRYPT_V2 &&
                parse_tlv_resend_wkc(cp.payload, cp.payload_len))
                e->wkc_resend_requested = true;
        }
    } else if (cp.opcode == SHIMMER_OP_SOFT_RESET_V1 && ks == NULL && e->state == SHIMMER_STATE_CONNECTED) {
        /* The server starts a renegotiation on a new key id. */
        ks = start_renegotiation(e, (guint8)cp.key_id, now);
        if (ks == NULL)
            return;
    }
    if (ks == NULL || !e->have_remote_sid) {
        e->stats.dropped_no_key++;
        return;
    }
    e->last_recv = now;
    e->stats.link_bytes_in += len;
    for (guint i = 0; i < cp.n_acks; i++)
        shimmer_reliable_ack_received(ks->rel, cp.acks[i]);
    if (cp.has_msg_pid) {
        ShimmerReliableRx rx = shimmer_reliable_incoming(ks->rel, cp.msg_pid, cp.payload,
                                                         cp.opcode == SHIMMER_OP_CONTROL_V1 ? cp.payload_len
                                                                                    : 0);
        if (rx == SHIMMER_RELIABLE_RX_NEW && cp.opcode == SHIMMER_OP_HARD_RESET_SERVER_V2) {
            set_state(e, SHIMMER_STATE_AUTHENTICATING, NULL);
            if (e->wkc_resend_requested) {
                /* The server kept no state: send WKc again with our ack. */
                guint32 pid;
                shimmer_reliable_queue_message(ks->rel, SHIMMER_OP_CONTROL_WKC_V1, NULL, 0, &pid, NULL);
            }
            ks->status = KS_TLS;
        }
    }
    shimmer_wipe(e->scratch2, plain_len);
    drive_tls(e, ks, now);
    for (int i = 0; i < N_KEY_STATES; i++)
        flush_control(e, &e->ks[i], now);
}

static ShimmerRecvResult recv_data(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now,
                                   guint8 *out, gsize cap, gsize *out_len)
{
    guint key_id = pkt[0] & 7;
    bool v2 = (pkt[0] >> 3) == SHIMMER_OP_DATA_V2;
    KeyState *ks = ks_by_id(e, key_id);
    if (ks == NULL || ks->dec == NULL || (ks->expires && now > ks->expires)) {
        e->stats.dropped_no_key++;
        return SHIMMER_RECV_NONE;
    }
    guint32 id;
    if (!shimmer_datachan_peek_packet_id(v2, pkt, len, &id)) {
        e->stats.dropped_malformed++;
        return SHIMMER_RECV_NONE;
    }
    if (shimmer_replay_check(&ks->replay, id, now) != SHIMMER_REPLAY_OK) {
        e->stats.dropped_replay++;
        return SHIMMER_RECV_NONE;
    }
    gsize plain_len = 0;
    ShimmerDatachanResult r = v2 ? shimmer_datachan_open_v2(ks->dec, pkt, len, out, cap,
                                                            &plain_len, &id)
                                 : shimmer_datachan_open_v1(ks->dec, pkt, len, out, cap,
                                                            &plain_len, &id);
    if (r != SHIMMER_DATACHAN_OK) {
        if (r == SHIMMER_DATACHAN_ERR_AUTH)
            e->stats.dropped_auth++;
        else
            e->stats.dropped_malformed++;
        return SHIMMER_RECV_NONE;
    }
    shimmer_replay_update(&ks->replay, id, now);
    e->last_recv = now;
    e->stats.link_bytes_in += len;
    ks->bytes += plain_len;
    ks->packets++;
    guint8 *p = out;
    if (!shimmer_compframe_unwrap(e->comp, p, &plain_len)) {
        /* Compressed data: never negotiated, never accepted. */
        e->stats.dropped_malformed++;
        return SHIMMER_RECV_NONE;
    }
    if (plain_len == sizeof(ping_magic) && memcmp(p, ping_magic, sizeof(ping_magic)) == 0)
        return SHIMMER_RECV_NONE;
    if (plain_len >= sizeof(occ_magic) + 1 && memcmp(p, occ_magic, sizeof(occ_magic)) == 0) {
        if (p[sizeof(occ_magic)] == OCC_EXIT)
            restart_session(e, "the server is shutting down", true, now);
        return SHIMMER_RECV_NONE;
    }
    if (plain_len == 0)
        return SHIMMER_RECV_NONE;
    e->stats.tun_bytes_out += plain_len;
    e->stats.tun_packets_out++;
    *out_len = plain_len;
    return SHIMMER_RECV_TUN;
}

ShimmerRecvResult shimmer_engine_recv(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now,
                                      guint8 *tun_out, gsize tun_cap, gsize *tun_len)
{
    *tun_len = 0;
    if (len < 1) {
        e->stats.dropped_malformed++;
        return SHIMMER_RECV_NONE;
    }
    guint op = pkt[0] >> 3;
    if (op == SHIMMER_OP_DATA_V1 || op == SHIMMER_OP_DATA_V2)
        return recv_data(e, pkt, len, now, tun_out, tun_cap, tun_len);
    if (op == SHIMMER_OP_HARD_RESET_SERVER_V2 || op == SHIMMER_OP_CONTROL_V1 || op == SHIMMER_OP_ACK_V1 ||
        op == SHIMMER_OP_SOFT_RESET_V1) {
        recv_control(e, pkt, len, now);
        return SHIMMER_RECV_NONE;
    }
    e->stats.dropped_malformed++;
    return SHIMMER_RECV_NONE;
}

/* ---------- send data ---------- */

static gsize seal(ShimmerEngine *e, KeyState *ks, const guint8 *plain, gsize len, guint8 *out,
                  gsize cap)
{
    gsize out_len = 0;
    guint32 id;
    ShimmerDatachanResult r =
        e->use_data_v2 ? shimmer_datachan_seal_v2(ks->enc, ks->key_id, e->peer_id, plain, len,
                                                  out, cap, &out_len, &id)
                       : shimmer_datachan_seal_v1(ks->enc, ks->key_id, plain, len, out, cap,
                                                  &out_len, &id);
    return r == SHIMMER_DATACHAN_OK ? out_len : 0;
}

gsize shimmer_engine_encrypt(ShimmerEngine *e, const guint8 *ip, gsize len, guint8 *out,
                             gsize out_cap, gint64 now)
{
    KeyState *ks = &e->ks[0];
    if (e->state != SHIMMER_STATE_CONNECTED || ks->enc == NULL || len == 0 || len > MAX_PACKET)
        return 0;
    gsize n;
    if (e->comp != SHIMMER_COMP_NONE) {
        gsize framed = shimmer_compframe_wrap(e->comp, ip, len, e->scratch2);
        n = seal(e, ks, e->scratch2, framed, out, out_cap);
    } else {
        n = seal(e, ks, ip, len, out, out_cap);
    }
    if (n == 0)
        return 0;
    ks->bytes += len;
    ks->packets++;
    e->stats.tun_bytes_in += len;
    e->stats.tun_packets_in++;
    e->stats.link_bytes_out += n;
    e->last_sent = now;
    return n;
}

static void send_data_plain(ShimmerEngine *e, const guint8 *plain, gsize len, gint64 now)
{
    KeyState *ks = &e->ks[0];
    if (ks->enc == NULL)
        return;
    gsize n;
    if (e->comp != SHIMMER_COMP_NONE) {
        guint8 buf[64];
        gsize framed = shimmer_compframe_wrap(e->comp, plain, MIN(len, 32), buf);
        n = seal(e, ks, buf, framed, e->scratch, sizeof(e->scratch));
    } else {
        n = seal(e, ks, plain, len, e->scratch, sizeof(e->scratch));
    }
    if (n > 0)
        queue_packet(e, e->scratch, n, now);
}

/* ---------- timers ---------- */

gint64 shimmer_engine_next_deadline(ShimmerEngine *e)
{
    gint64 d = G_MAXINT64;
    if (e->state == SHIMMER_STATE_RECONNECTING && e->retry_at && !e->crv1_pending)
        d = MIN(d, e->retry_at);
    if (e->state == SHIMMER_STATE_CONNECTING && e->transport_ready && !e->have_remote_sid)
        d = MIN(d, e->connect_deadline);
    if (e->state == SHIMMER_STATE_DISCONNECTING) {
        /* Only the exit timers run now (handle_timeout serves nothing else). */
        d = MIN(d, e->exit_at);
        if (e->exit_pings_left)
            d = MIN(d, e->next_exit_ping);
        return d;
    }
    for (int i = 0; i < N_KEY_STATES; i++) {
        KeyState *ks = &e->ks[i];
        if (ks->status == KS_NONE || ks->rel == NULL)
            continue;
        gint64 r = shimmer_reliable_next_deadline(ks->rel);
        if (r != SHIMMER_RELIABLE_NO_DEADLINE)
            d = MIN(d, r);
        if (ks->status != KS_ACTIVE)
            d = MIN(d, ks->started + (gint64)(e->cfg->hand_window >= 0 ? e->cfg->hand_window
                                                                       : 60) * US);
        if (ks->expires)
            d = MIN(d, ks->expires);
    }
    if (e->state == SHIMMER_STATE_GETTING_CONFIG)
        d = MIN(d, e->push_request_at);
    if (e->state == SHIMMER_STATE_CONNECTED) {
        if (e->ping_s > 0)
            d = MIN(d, e->last_sent + (gint64)e->ping_s * US);
        if (e->ping_restart_s > 0)
            d = MIN(d, e->last_recv + (gint64)e->ping_restart_s * US);
        gint64 reneg = e->cfg->reneg_sec >= 0 ? e->cfg->reneg_sec : 3600;
        if (reneg > 0 && e->ks[0].established && e->ks[2].status == KS_NONE)
            d = MIN(d, e->ks[0].established + reneg * US);
    }
    return d;
}

void shimmer_engine_handle_timeout(ShimmerEngine *e, gint64 now)
{
    const ShimmerConfig *cfg = e->cfg;
    if (e->state == SHIMMER_STATE_RECONNECTING && e->crv1_pending)
        return; /* nothing happens until the user answers the challenge */
    if (e->state == SHIMMER_STATE_RECONNECTING && e->retry_at && now >= e->retry_at) {
        begin_connect(e, now);
        return;
    }
    if (e->state == SHIMMER_STATE_CONNECTING && e->transport_ready && !e->have_remote_sid &&
        now >= e->connect_deadline) {
        restart_session(e, "no answer from the server (server-poll-timeout)", true, now);
        return;
    }
    if (e->state == SHIMMER_STATE_DISCONNECTING) {
        if (e->exit_pings_left && now >= e->next_exit_ping) {
            guint8 occ[17];
            memcpy(occ, occ_magic, 16);
            occ[16] = OCC_EXIT;
            send_data_plain(e, occ, sizeof(occ), now);
            e->exit_pings_left--;
            e->next_exit_ping = now + US;
        }
        if (now >= e->exit_at) {
            reset_session_state(e);
            push_event(e, SHIMMER_EVENT_DISCONNECT_TRANSPORT, e->conn_index, NULL);
            set_state(e, SHIMMER_STATE_DISCONNECTED, "stopped");
            push_event(e, SHIMMER_EVENT_EXIT, e->conn_index, "stopped");
        }
        return;
    }
    for (int i = 0; i < N_KEY_STATES; i++) {
        KeyState *ks = &e->ks[i];
        if (ks->status == KS_NONE)
            continue;
        gint hw = cfg->hand_window >= 0 ? cfg->hand_window : 60;
        if (ks->status != KS_ACTIVE && now >= ks->started + (gint64)hw * US) {
            if (i == 0 && e->state != SHIMMER_STATE_CONNECTED) {
                restart_session(e, "TLS handshake did not finish in hand-window", true, now);
                return;
            }
            elog(e, SHIMMER_LOG_WARNING, "renegotiation of key %u timed out", ks->key_id);
            ks_clear(ks);
            continue;
        }
        if (ks->expires && now >= ks->expires) {
            ks_clear(ks);
            continue;
        }
        drive_tls(e, ks, now);
        if (e->state == SHIMMER_STATE_FAILED || e->state == SHIMMER_STATE_RECONNECTING)
            return;
        flush_control(e, ks, now);
    }
    if (e->state == SHIMMER_STATE_GETTING_CONFIG && now >= e->push_request_at &&
        e->ks[0].status == KS_ACTIVE) {
        send_push_request(e, &e->ks[0], now);
        flush_control(e, &e->ks[0], now);
    }
    if (e->state == SHIMMER_STATE_CONNECTED) {
        if (e->ping_restart_s > 0 && now >= e->last_recv + (gint64)e->ping_restart_s * US) {
            restart_session(e, "nothing received for ping-restart seconds", false, now);
            return;
        }
        KeyState *p = &e->ks[0];
        gint64 reneg = cfg->reneg_sec >= 0 ? cfg->reneg_sec : 3600;
        bool due = (reneg > 0 && p->established && now >= p->established + reneg * US) ||
                   (cfg->reneg_bytes > 0 && p->bytes >= (guint64)cfg->reneg_bytes) ||
                   (cfg->reneg_pkts > 0 && p->packets >= (guint64)cfg->reneg_pkts) ||
                   (p->enc != NULL && shimmer_datachan_key_needs_rekey(p->enc));
        if (due && e->ks[2].status == KS_NONE) {
            KeyState *n = start_renegotiation(e, e->next_key_id, now);
            if (n != NULL) {
                drive_tls(e, n, now);
                flush_control(e, n, now);
            }
        }
        if (e->ping_s > 0 && now >= e->last_sent + (gint64)e->ping_s * US)
            send_data_plain(e, ping_magic, sizeof(ping_magic), now);
    }
}

/* After a renegotiation reached KS_ACTIVE in slot 2 before the swap, or reads. */

void shimmer_engine_stop(ShimmerEngine *e, gint64 now)
{
    if (e->state == SHIMMER_STATE_DISCONNECTED || e->state == SHIMMER_STATE_FAILED ||
        e->state == SHIMMER_STATE_DISCONNECTING)
        return;
    gint n = e->cfg->explicit_exit_notify;
    if (e->state != SHIMMER_STATE_CONNECTED || e->is_tcp || n <= 0) {
        /* Nothing to wait for, but observers still see the way down. */
        set_state(e, SHIMMER_STATE_DISCONNECTING, NULL);
        if (e->cc_exit && e->ks[0].status == KS_ACTIVE) {
            send_control_message(e, &e->ks[0], "EXIT");
            flush_control(e, &e->ks[0], now);
        }
        reset_session_state(e);
        push_event(e, SHIMMER_EVENT_DISCONNECT_TRANSPORT, e->conn_index, NULL);
        set_state(e, SHIMMER_STATE_DISCONNECTED, "stopped");
        push_event(e, SHIMMER_EVENT_EXIT, e->conn_index, "stopped");
        return;
    }
    set_state(e, SHIMMER_STATE_DISCONNECTING, NULL);
    if (e->cc_exit) {
        send_control_message(e, &e->ks[0], "EXIT");
        flush_control(e, &e->ks[0], now);
        e->exit_pings_left = 0;
        /* Give the server a moment to ack; a retransmit timer would keep us longer. */
        e->exit_at = now + US / 2;
    } else {
        e->exit_pings_left = (guint)n;
        e->next_exit_ping = now;
        e->exit_at = now + (gint64)n * US;
    }
}

/* ---------- accessors ---------- */

gsize shimmer_engine_pop_packet(ShimmerEngine *e, guint8 *out, gsize out_cap)
{
    GBytes *b = g_queue_pop_head(e->out);
    if (b == NULL)
        return 0;
    gsize len;
    const guint8 *d = g_bytes_get_data(b, &len);
    if (len > out_cap)
        len = 0;
    else
        memcpy(out, d, len);
    g_bytes_unref(b);
    return len;
}

gboolean shimmer_engine_pop_event(ShimmerEngine *e, ShimmerEvent *ev)
{
    ShimmerEvent *q = g_queue_pop_head(e->events);
    if (q == NULL)
        return FALSE;
    *ev = *q;
    g_free(q);
    return TRUE;
}

ShimmerState shimmer_engine_get_state(const ShimmerEngine *e)
{
    return e->state;
}

const ShimmerConfig *shimmer_engine_get_pushed(const ShimmerEngine *e)
{
    return e->pushed;
}

const char *shimmer_engine_get_cipher(const ShimmerEngine *e)
{
    return e->cipher_set ? shimmer_datachan_cipher_name(e->cipher) : NULL;
}

const char *shimmer_engine_get_tls_version(const ShimmerEngine *e)
{
    if (e->ks[0].tls == NULL)
        return NULL;
    return gnutls_protocol_get_name(gnutls_protocol_get_version(e->ks[0].tls));
}

void shimmer_engine_get_stats(const ShimmerEngine *e, ShimmerEngineStats *out)
{
    *out = e->stats;
}

guint shimmer_engine_get_connection_index(const ShimmerEngine *e)
{
    return e->conn_index;
}

guint shimmer_engine_get_mss(const ShimmerEngine *e, gboolean ipv6)
{
    const ShimmerConfig *cfg = e->cfg;
    ShimmerConnection *c = cfg->connections->len ? g_ptr_array_index(cfg->connections,
                                                                     e->conn_index)
                                                 : NULL;
    gint mssfix = c && c->mssfix >= 0 ? c->mssfix : cfg->mssfix;
    if (mssfix == 0)
        return 0;
    if (mssfix < 0)
        mssfix = 1492;
    /* mssfix bounds the encrypted UDP packet: take off the outer IPv4 and
     * UDP headers, our overhead, and the inner IP and TCP headers. */
    gint overhead = 20 + 8 + SHIMMER_DATACHAN_V2_OVERHEAD + (e->comp ? 2 : 0);
    if (e->is_tcp)
        overhead = 20 + 20 + 2 + SHIMMER_DATACHAN_V2_OVERHEAD;
    gint mss = mssfix - overhead - (ipv6 ? 40 : 20) - 20;
    return mss > 0 ? (guint)mss : 0;
}

/* ---------- construction ---------- */

static char *build_priority(const ShimmerConfig *cfg)
{
    static const char *const vers[] = {NULL, "VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2",
                                       "VERS-TLS1.3"};
    ShimmerTlsVersion min = cfg->tls_version_min ? cfg->tls_version_min : SHIMMER_TLS_VERSION_1_2;
    ShimmerTlsVersion max = cfg->tls_version_max ? cfg->tls_version_max : SHIMMER_TLS_VERSION_1_3;
    if (cfg->tls_version_min_or_highest)
        min = SHIMMER_TLS_VERSION_1_2;
    GString *s = g_string_new("NORMAL:-VERS-ALL");
    for (int v = min; v <= (int)max; v++)
        g_string_append_printf(s, ":+%s", vers[v]);
    return g_string_free(s, FALSE);
}

static const char *x509_type_name(ShimmerX509NameType t)
{
    return t == SHIMMER_X509_NAME_NAME ? "name" : t == SHIMMER_X509_NAME_PREFIX ? "name-prefix"
                                                                              : "subject";
}

/* OpenVPN prints subjects as "C=US, O=Org, CN=name": RDNs in certificate
 * order, ", " between them. GnuTLS gives RFC 4514 order (reversed). */
static char *subject_openvpn_style(gnutls_x509_crt_t crt)
{
    gnutls_datum_t dn = {0};
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) != 0)
        return NULL;
    g_autofree char *rfc = g_strndup((const char *)dn.data, dn.size);
    gnutls_free(dn.data);
    g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func(g_free);
    const char *start = rfc;
    for (const char *c = rfc;; c++) {
        if (*c == '\\' && c[1]) {
            c++;
            continue;
        }
        if (*c == ',' || *c == '\0') {
            g_ptr_array_add(parts, g_strndup(start, (gsize)(c - start)));
            if (*c == '\0')
                break;
            start = c + 1;
        }
    }
    GString *out = g_string_new(NULL);
    for (guint i = parts->len; i > 0; i--) {
        const char *p = g_ptr_array_index(parts, i - 1);
        if (g_str_has_prefix(p, "EMAIL="))
            g_string_append_printf(out, "%semailAddress=%s", out->len ? ", " : "", p + 6);
        else
            g_string_append_printf(out, "%s%s", out->len ? ", " : "", p);
    }
    return g_string_free(out, FALSE);
}

static bool name_matches(const ShimmerConfig *cfg, const char *candidate)
{
    if (cfg->verify_x509_type == SHIMMER_X509_NAME_PREFIX)
        return g_str_has_prefix(candidate, cfg->verify_x509_name);
    return strcmp(candidate, cfg->verify_x509_name) == 0;
}

static int check_leaf(ShimmerEngine *e, gnutls_x509_crt_t crt);

static int verify_peer(gnutls_session_t session)
{
    ShimmerEngine *e = gnutls_session_get_ptr(session);
    const ShimmerConfig *cfg = e->cfg;
    unsigned int n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &n);
    if (chain == NULL || n == 0) {
        elog(e, SHIMMER_LOG_ERROR, "the server sent no certificate");
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    bool fingerprint_ok = false;
    if (cfg->peer_fingerprints->len > 0) {
        guint8 fp[32];
        gnutls_hash_fast(GNUTLS_DIG_SHA256, chain[0].data, chain[0].size, fp);
        for (guint i = 0; i < cfg->peer_fingerprints->len; i++)
            fingerprint_ok |= memcmp(fp, cfg->peer_fingerprints->data + (gsize)i * 32, 32) == 0;
        if (!fingerprint_ok && !cfg->ca.present) {
            elog(e, SHIMMER_LOG_ERROR, "the server's certificate matches no peer-fingerprint");
            return GNUTLS_E_CERTIFICATE_ERROR;
        }
    }
    if (!fingerprint_ok || cfg->ca.present) {
        unsigned int status = 0;
        /* As OpenSSL does for OpenVPN: a certificate whose extended key
         * usage excludes TLS server use cannot be the server's. */
        gnutls_typed_vdata_st purpose = {
            .type = GNUTLS_DT_KEY_PURPOSE_OID,
            .data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER,
        };
        int rc = gnutls_certificate_verify_peers(session, &purpose, 1, &status);
        if (rc != 0 || status != 0) {
            gnutls_datum_t out = {0};
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0);
            elog(e, SHIMMER_LOG_ERROR, "the server's certificate is not trusted: %s",
                 out.data ? (const char *)out.data : gnutls_strerror(rc));
            gnutls_free(out.data);
            return GNUTLS_E_CERTIFICATE_ERROR;
        }
    }
    gnutls_x509_crt_t crt = NULL;
    if (gnutls_x509_crt_init(&crt) != 0)
        return GNUTLS_E_CERTIFICATE_ERROR;
    int rc = GNUTLS_E_CERTIFICATE_ERROR;
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0)
        rc = check_leaf(e, crt);
    else
        elog(e, SHIMMER_LOG_ERROR, "cannot read the server's certificate");
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* remote-cert-tls and verify-x509-name on the server's certificate. */
static int check_leaf(ShimmerEngine *e, gnutls_x509_crt_t crt)
{
    const ShimmerConfig *cfg = e->cfg;
    if (cfg->remote_cert_tls == SHIMMER_CERT_TLS_SERVER) {
        bool eku = false;
        char oid[128];
        for (unsigned int i = 0;; i++) {
            size_t sz = sizeof(oid);
            unsigned int crit;
            int rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &sz, &crit);
            if (rc < 0)
                break;
            eku |= strcmp(oid, GNUTLS_KP_TLS_WWW_SERVER) == 0;
        }
        unsigned int ku = 0, crit = 0;
        int kurc = gnutls_x509_crt_get_key_usage(crt, &ku, &crit);
        bool ku_ok = kurc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ||
                     (kurc >= 0 && (ku & (GNUTLS_KEY_DIGITAL_SIGNATURE |
                                          GNUTLS_KEY_KEY_ENCIPHERMENT |
                                          GNUTLS_KEY_KEY_AGREEMENT)));
        if (!eku || !ku_ok) {
            elog(e, SHIMMER_LOG_ERROR, "remote-cert-tls server: the certificate %s",
                 !eku ? "lacks the TLS server extended key usage" : "has the wrong key usage");
            return GNUTLS_E_CERTIFICATE_ERROR;
        }
    }
    if (cfg->verify_x509_type != SHIMMER_X509_NAME_UNSET) {
        bool ok = false;
        if (cfg->verify_x509_type == SHIMMER_X509_NAME_SUBJECT) {
            g_autofree char *subj = subject_openvpn_style(crt);
            ok = subj != NULL && strcmp(subj, cfg->verify_x509_name) == 0;
        } else {
            char cn[256];
            size_t sz = sizeof(cn);
            if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &sz) == 0)
                ok = name_matches(cfg, cn);
            for (unsigned int i = 0; !ok; i++) {
                char san[256];
                size_t ssz = sizeof(san);
                int t = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &ssz, NULL);
                if (t < 0)
                    break;
                if (t == GNUTLS_SAN_DNSNAME)
                    ok = name_matches(cfg, san);
            }
        }
        if (!ok) {
            elog(e, SHIMMER_LOG_ERROR, "verify-x509-name: the server's certificate does not "
                                       "match the %s '%s'",
                 x509_type_name(cfg->verify_x509_type), cfg->verify_x509_name);
            return GNUTLS_E_CERTIFICATE_ERROR;
        }
    }
    return 0;
}

static bool load_credentials(ShimmerEngine *e, GError **error)
{
    const ShimmerConfig *cfg = e->cfg;
    int rc = gnutls_certificate_allocate_credentials(&e->creds);
    if (rc != 0)
        goto gnutls_fail;
    if (cfg->ca.present) {
        gnutls_datum_t d = {cfg->ca.data, (unsigned int)cfg->ca.len};
        rc = gnutls_certificate_set_x509_trust_mem(e->creds, &d, GNUTLS_X509_FMT_PEM);
        if (rc < 0)
            goto gnutls_fail;
    }
    if (cfg->crl_verify.present) {
        gnutls_datum_t d = {cfg->crl_verify.data, (unsigned int)cfg->crl_verify.len};
        rc = gnutls_certificate_set_x509_crl_mem(e->creds, &d, GNUTLS_X509_FMT_PEM);
        if (rc < 0)
            goto gnutls_fail;
    }
    const char *pass = e->key_passphrase;
    if (pass == NULL && cfg->askpass_file.present) {
        /* The first line of the askpass file. */
        g_auto(GStrv) lines = g_strsplit((const char *)cfg->askpass_file.data, "\n", 2);
        e->key_passphrase = g_strdup(g_strchomp(lines[0] ? lines[0] : (char *)""));
        for (guint i = 0; lines[i]; i++)
            shimmer_wipe(lines[i], strlen(lines[i]));
        pass = e->key_passphrase;
    }
    if (cfg->cert.present && cfg->key.present) {
        /* extra-certs follow the client certificate in the chain we send. */
        GString *chain = g_string_new_len((const char *)cfg->cert.data, (gssize)cfg->cert.len);
        if (cfg->extra_certs.present) {
            g_string_append_c(chain, '\n');
            g_string_append_len(chain, (const char *)cfg->extra_certs.data,
                                (gssize)cfg->extra_certs.len);
        }
        gnutls_datum_t c = {(unsigned char *)chain->str, (unsigned int)chain->len};
        gnutls_datum_t k = {cfg->key.data, (unsigned int)cfg->key.len};
        rc = gnutls_certificate_set_x509_key_mem2(e->creds, &c, &k, GNUTLS_X509_FMT_PEM, pass, 0);
        g_string_free(chain, TRUE);
        if (rc < 0) {
            g_set_error(error, SHIMMER_ENGINE_ERROR, 0,
                        cfg->key_encrypted ? "cannot load the private key (wrong passphrase?): %s"
                                           : "cannot load the certificate and key: %s",
                        gnutls_strerror(rc));
            return false;
        }
    } else if (cfg->pkcs12.present) {
        gnutls_datum_t d = {cfg->pkcs12.data, (unsigned int)cfg->pkcs12.len};
        rc = gnutls_certificate_set_x509_simple_pkcs12_mem(e->creds, &d, GNUTLS_X509_FMT_DER,
                                                           pass ? pass : "");
        if (rc < 0) {
            g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "cannot load the PKCS#12 file: %s",
                        gnutls_strerror(rc));
            return false;
        }
    }
    gnutls_certificate_set_verify_function(e->creds, verify_peer);
    return true;
gnutls_fail:
    g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "TLS credentials: %s", gnutls_strerror(rc));
    return false;
}

ShimmerEngine *shimmer_engine_new(const ShimmerConfig *cfg, const ShimmerEngineHooks *hooks,
                                  GError **error)
{
    if (shimmer_config_has_errors(cfg)) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "the configuration has errors");
        return NULL;
    }
    if (cfg->role != SHIMMER_ROLE_CLIENT) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "only the client role is implemented");
        return NULL;
    }
    ShimmerEngine *e = g_new0(ShimmerEngine, 1);
    e->cfg = cfg;
    if (hooks != NULL)
        e->hooks = *hooks;
    e->out = g_queue_new();
    e->events = g_queue_new();
    e->push_text = g_string_new(NULL);
    e->priority = build_priority(cfg);
    e->comp = cfg->comp;
    if (cfg->username != NULL)
        e->username = g_strdup(cfg->username);
    if (cfg->password != NULL)
        e->password = g_strdup(cfg->password);
    if (!load_credentials(e, error)) {
        shimmer_engine_free(e);
        return NULL;
    }
    guint n = cfg->connections->len;
    e->order = g_new(guint, MAX(n, 1));
    for (guint i = 0; i < n; i++)
        e->order[i] = i;
    if (cfg->remote_random) {
        /* Fisher-Yates with the injected randomness. */
        for (guint i = n; i > 1; i--) {
            guint32 r;
            rnd(e, &r, sizeof(r));
            guint j = r % i;
            guint t = e->order[i - 1];
            e->order[i - 1] = e->order[j];
            e->order[j] = t;
        }
    }
    e->conn_index = n > 0 ? e->order[0] : 0;
    return e;
}

void shimmer_engine_free(ShimmerEngine *e)
{
    if (e == NULL)
        return;
    for (int i = 0; i < N_KEY_STATES; i++)
        ks_clear(&e->ks[i]);
    shimmer_ctlwrap_free(e->wrap);
    if (e->creds != NULL)
        gnutls_certificate_free_credentials(e->creds);
    g_free(e->priority);
    g_free(e->order);
    shimmer_str_free_secret(e->key_passphrase);
    g_free(e->username);
    shimmer_str_free_secret(e->password);
    shimmer_str_free_secret(e->auth_token);
    g_free(e->crv1_state_id);
    g_free(e->crv1_username);
    while (!g_queue_is_empty(e->out))
        g_bytes_unref(g_queue_pop_head(e->out));
    g_queue_free(e->out);
    ShimmerEvent *ev;
    while ((ev = g_queue_pop_head(e->events)) != NULL) {
        shimmer_event_clear(ev);
        g_free(ev);
    }
    g_queue_free(e->events);
    g_string_free(e->push_text, TRUE);
    shimmer_config_free(e->pushed);
    shimmer_wipe(e->scratch, sizeof(e->scratch));
    shimmer_wipe(e->scratch2, sizeof(e->scratch2));
    g_free(e);
}
