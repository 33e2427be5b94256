/* SPDX-License-Identifier: MIT */
/*
 * The engine's server role: one client's session on the shared core. It
 * asks for and checks the client's certificate, reads the client's
 * key-method record (its peer info, user name and password), hands the
 * decision to let it in to the caller (AUTH_REQUEST), negotiates the data
 * cipher, answers the push request with the client's configuration, issues
 * and accepts auth tokens, and ends the session with AUTH_FAILED, RESTART
 * or when the client leaves. The protocol itself is the core's
 * (engine-core.c); the dispatcher (dispatch.c) owns the transport and the
 * addresses.
 */
#include "engine-core.h"

#include <nettle/hmac.h>
#include <string.h>

#include "bytes.h"
#include "keys.h"

/* IV_PROTO bits a client may announce. */
enum {
    IV_PROTO_DATA_V2 = 1 << 1,
    IV_PROTO_REQUEST_PUSH = 1 << 2,
    IV_PROTO_TLS_KEY_EXPORT = 1 << 3,
    IV_PROTO_AUTH_PENDING_KW = 1 << 4,
    IV_PROTO_CC_EXIT_NOTIFY = 1 << 7,
};

/* A control message OpenVPN 2.6 reads in one piece: longer push replies
 * continue in further messages. */
#define PUSH_MESSAGE_LIMIT 1024
/* How long a closing session waits for its last message to be acked. */
#define CLOSE_WAIT    (2 * SHIMMER_US)
#define TOKEN_PREFIX  "SESS_ID_AT_"
#define TOKEN_KEY_LEN 32
#define TOKEN_RAW_LEN (8 + 8 + SHA256_DIGEST_SIZE)

typedef struct {
    /* The engine whose credentials and token key this one uses; NULL for
     * such an engine itself. */
    ShimmerEngine *shared;
    guint8 token_key[TOKEN_KEY_LEN];

    guint32 peer_id;
    gint64 started;
    char *common_name;
    char *cert_name; /* the certificate's, kept across renegotiations */
    char *username;
    char *peer_info;
    guint iv_proto;
    /* What the first key authenticated with: renegotiations must bring
     * the same (or a token), so they need no new decision. */
    guint8 cred_hash[SHA256_DIGEST_SIZE];
    bool have_cred_hash;
    gint64 token_session_start; /* wall clock; 0: no token */
    char *token;                /* the one pushed; a secret */

    /* Refused before the caller was asked (no shared cipher): said once
     * our own record is out, so the client can read the refusal. */
    char *refusal;
    bool asked;        /* AUTH_REQUEST emitted */
    bool auth_wait;    /* ...and not yet answered */
    bool accepted;     /* ACCEPT arrived */
    bool pending_sent; /* AUTH_PENDING told */
    gint64 auth_deadline;
    bool push_requested;
    bool pushed;

    /* The client's configuration (shimmer_engine_server_set_client). */
    char *ifconfig_local, *ifconfig_netmask;
    char *ifconfig_ipv6, *ifconfig_ipv6_remote;
    bool push_reset;
    GPtrArray *push_extra;  /* char* */
    GPtrArray *push_remove; /* char* */

    /* A session on its way out: its last message waits for an ack. */
    bool closing;
    gint64 closing_at;
    ShimmerState final_state;
    char *final_reason;
} Server;

static const ShimmerEngineRole server_role;

static Server *server_of(const ShimmerEngine *e)
{
    return e != NULL && e->role == &server_role ? e->role_data : NULL;
}

static Server *server(const ShimmerEngine *e)
{
    return e->role_data;
}

static gint64 hand_window(const ShimmerEngine *e)
{
    return (gint64)(e->cfg->hand_window >= 0 ? e->cfg->hand_window : 60) * SHIMMER_US;
}

/* ---------- ending ---------- */

static void end(ShimmerEngine *e, ShimmerState final, const char *why)
{
    shimmer_core_end(e, final, why);
}

/* Sends MESSAGE (may be NULL) and ends the session once it was acked or
 * WAIT passed. */
static void close_with(ShimmerEngine *e, const char *message, ShimmerState final, const char *why,
                       gint64 wait, gint64 now)
{
    Server *s = server(e);
    if (e->state == SHIMMER_STATE_DISCONNECTED || e->state == SHIMMER_STATE_FAILED || s->closing)
        return;
    ShimmerKeyState *ks = &e->ks[0];
    bool can_send = message != NULL && e->transport_ready && ks->tls != NULL &&
                    (ks->status == SHIMMER_KS_OPEN || ks->status == SHIMMER_KS_ACTIVE);
    if (!can_send) {
        end(e, final, why);
        return;
    }
    shimmer_core_log(e, SHIMMER_LOG_INFO, "sending %s", message);
    shimmer_core_send_message(e, ks, message);
    s->closing = true;
    s->closing_at = now + wait;
    s->final_state = final;
    g_free(s->final_reason);
    s->final_reason = g_strdup(why);
}

static bool close_done(ShimmerEngine *e)
{
    const ShimmerKeyState *ks = &e->ks[0];
    return ks->rel == NULL || (shimmer_reliable_unacked(ks->rel) == 0 &&
                               (ks->tls_out == NULL || ks->tls_out->len == 0));
}

static void deny(ShimmerEngine *e, const char *reason, gint64 now)
{
    g_autofree char *msg = reason != NULL && reason[0] ? g_strdup_printf("AUTH_FAILED,%s", reason)
                                                       : g_strdup("AUTH_FAILED");
    g_autofree char *why =
        g_strdup_printf("authentication failed%s%s", reason && reason[0] ? ": " : "",
                        reason && reason[0] ? reason : "");
    shimmer_core_log(e, SHIMMER_LOG_WARNING, "%s", why);
    server(e)->auth_wait = false;
    close_with(e, msg, SHIMMER_STATE_FAILED, why, CLOSE_WAIT, now);
}

static void session_lost(ShimmerEngine *e, ShimmerSessionLoss how, const char *why, gint64 now)
{
    end(e,
        how == SHIMMER_SESSION_LOST_NEXT_PEER ? SHIMMER_STATE_DISCONNECTED : SHIMMER_STATE_FAILED,
        why);
}

/* ---------- auth tokens ---------- */

static const guint8 *token_key(const ShimmerEngine *e)
{
    const Server *s = server(e);
    return s->shared != NULL ? server(s->shared)->token_key : s->token_key;
}

static void token_mac(const ShimmerEngine *e, const char *username, const guint8 times[16],
                      guint8 mac[SHA256_DIGEST_SIZE])
{
    static const char label[] = "shimmer auth-token v1";
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, TOKEN_KEY_LEN, token_key(e));
    hmac_sha256_update(&ctx, sizeof(label), (const guint8 *)label);
    hmac_sha256_update(&ctx, strlen(username) + 1, (const guint8 *)username);
    hmac_sha256_update(&ctx, 16, times);
    hmac_sha256_digest(&ctx, SHA256_DIGEST_SIZE, mac);
    shimmer_wipe(&ctx, sizeof(ctx));
}

static gint64 wall_clock(const ShimmerEngine *e)
{
    return e->hooks.realtime != NULL ? e->hooks.realtime(e->hooks.user) : 0;
}

/* A token for USERNAME: SESS_ID_AT_ and base64 of the session's start,
 * the time of issue and an HMAC over both and the user name. */
static char *token_make(ShimmerEngine *e, const char *username, gint64 session_start)
{
    guint8 raw[TOKEN_RAW_LEN];
    shimmer_write_be32(raw, (guint32)((guint64)session_start >> 32));
    shimmer_write_be32(raw + 4, (guint32)session_start);
    gint64 issued = wall_clock(e);
    shimmer_write_be32(raw + 8, (guint32)((guint64)issued >> 32));
    shimmer_write_be32(raw + 12, (guint32)issued);
    token_mac(e, username, raw, raw + 16);
    g_autofree char *b64 = g_base64_encode(raw, sizeof(raw));
    shimmer_wipe(raw, sizeof(raw));
    char *token = g_strconcat(TOKEN_PREFIX, b64, NULL);
    shimmer_wipe(b64, strlen(b64));
    return token;
}

/* Whether PASSWORD is a token of ours for USERNAME, still valid; its
 * session start goes to *START. */
static bool token_check(ShimmerEngine *e, const char *username, const char *password, gint64 *start)
{
    if (e->cfg->auth_gen_token < 0 || username == NULL || password == NULL ||
        !g_str_has_prefix(password, TOKEN_PREFIX))
        return false;
    const char *b64 = password + strlen(TOKEN_PREFIX);
    if (strlen(b64) != 4 * ((TOKEN_RAW_LEN + 2) / 3))
        return false;
    gsize len = 0;
    guint8 *raw = g_base64_decode(b64, &len);
    bool ok = false;
    if (raw != NULL && len == TOKEN_RAW_LEN) {
        guint8 mac[SHA256_DIGEST_SIZE];
        token_mac(e, username, raw, mac);
        guint8 diff = 0;
        for (gsize i = 0; i < sizeof(mac); i++)
            diff |= mac[i] ^ raw[16 + i];
        shimmer_wipe(mac, sizeof(mac));
        gint64 s = (gint64)(((guint64)shimmer_read_be32(raw) << 32) | shimmer_read_be32(raw + 4));
        gint64 lifetime = e->cfg->auth_gen_token;
        gint64 now = wall_clock(e);
        ok = diff == 0 && (lifetime == 0 || now - s <= lifetime);
        if (diff == 0 && !ok)
            shimmer_core_log(e, SHIMMER_LOG_INFO, "the client's auth token expired");
        if (ok)
            *start = s;
    }
    if (raw != NULL)
        shimmer_free_secret(raw, len);
    return ok;
}

static void cred_hash(const char *username, const char *password, guint8 out[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, username ? strlen(username) + 1 : 0, (const guint8 *)username);
    sha256_update(&ctx, password ? strlen(password) + 1 : 0, (const guint8 *)password);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
    shimmer_wipe(&ctx, sizeof(ctx));
}

/* ---------- the client's record ---------- */

static const char *peer_info_value(const char *info, const char *key, gsize *len)
{
    gsize klen = strlen(key);
    for (const char *p = info; p != NULL && *p;) {
        const char *nl = strchr(p, '\n');
        gsize l = nl ? (gsize)(nl - p) : strlen(p);
        if (l > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            *len = l - klen - 1;
            return p + klen + 1;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static bool list_has(const char *list, gsize len, const char *name)
{
    gsize n = strlen(name);
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *colon = memchr(p, ':', (gsize)(end - p));
        gsize l = colon ? (gsize)(colon - p) : (gsize)(end - p);
        if (l == n && g_ascii_strncasecmp(p, name, n) == 0)
            return true;
        p += l + 1;
    }
    return false;
}

/* The server's data-ciphers in order, the first the client offers too
 * (IV_CIPHERS, or the two GCM ciphers an IV_NCP=2 client implies); else
 * data-ciphers-fallback when the client's options name it. */
static bool choose_cipher(ShimmerEngine *e, Server *s, const char *options)
{
    const ShimmerConfig *cfg = e->cfg;
    gsize len = 0;
    const char *offer = peer_info_value(s->peer_info, "IV_CIPHERS", &len);
    if (offer == NULL) {
        const char *ncp = peer_info_value(s->peer_info, "IV_NCP", &len);
        if (ncp != NULL && len > 0 && ncp[0] >= '2') {
            offer = "AES-256-GCM:AES-128-GCM";
            len = strlen(offer);
        }
    }
    for (guint i = 0; offer != NULL && i < cfg->data_ciphers->len; i++) {
        const char *name = shimmer_cipher_name(g_array_index(cfg->data_ciphers, ShimmerCipher, i));
        if (list_has(offer, len, name) && shimmer_datachan_cipher_from_name(name, &e->cipher))
            return true;
    }
    const char *fb = cfg->data_ciphers_fallback;
    if (fb != NULL && options != NULL) {
        g_autofree char *want = g_strdup_printf("cipher %s", fb);
        g_auto(GStrv) parts = g_strsplit(options, ",", -1);
        for (guint i = 0; parts[i]; i++) {
            if (g_ascii_strcasecmp(parts[i], want) == 0 &&
                shimmer_datachan_cipher_from_name(fb, &e->cipher))
                return true;
        }
    }
    return false;
}

static void push_auth_request(ShimmerEngine *e, Server *s, const char *username,
                              const char *password, bool token)
{
    ShimmerEvent *ev = shimmer_core_push_event(e, SHIMMER_EVENT_AUTH_REQUEST);
    ev->auth_request.common_name = g_strdup(s->common_name);
    ev->auth_request.username = g_strdup(username);
    ev->auth_request.password = token ? NULL : g_strdup(password);
    ev->auth_request.token = token;
    ev->auth_request.peer_info = g_strdup(s->peer_info);
}

static bool first_record(ShimmerEngine *e, Server *s, const ShimmerKmStrings *peer, gint64 now)
{
    const ShimmerConfig *cfg = e->cfg;
    g_free(s->peer_info);
    s->peer_info = g_strdup(peer->peer_info ? peer->peer_info : "");
    gsize len = 0;
    const char *proto = peer_info_value(s->peer_info, "IV_PROTO", &len);
    s->iv_proto = 0;
    if (proto != NULL) {
        g_autofree char *p = g_strndup(proto, len);
        s->iv_proto = (guint)g_ascii_strtoull(p, NULL, 10);
    }
    shimmer_core_log(e, SHIMMER_LOG_DEBUG, "client options: %s",
                     peer->options ? peer->options : "");
    if (!choose_cipher(e, s, peer->options)) {
        s->refusal = g_strdup("Data channel cipher negotiation failed (no shared cipher)");
        return true;
    }
    if (cfg->force_tls_ekm && !(s->iv_proto & IV_PROTO_TLS_KEY_EXPORT)) {
        s->refusal =
            g_strdup("the server requires TLS key material export (force-tls-key-material-export)");
        return true;
    }
    e->tls_ekm = (s->iv_proto & IV_PROTO_TLS_KEY_EXPORT) != 0;
    e->cc_exit = (s->iv_proto & IV_PROTO_CC_EXIT_NOTIFY) != 0;
    e->use_data_v2 =
        (s->iv_proto & IV_PROTO_DATA_V2) && s->peer_id != SHIMMER_DATACHAN_PEER_ID_NONE;
    e->peer_id = e->use_data_v2 ? s->peer_id : SHIMMER_DATACHAN_PEER_ID_NONE;

    const char *user = peer->username != NULL && peer->username[0] ? peer->username : NULL;
    const char *pass = peer->password != NULL && peer->password[0] ? peer->password : NULL;
    g_free(s->username);
    s->username = g_strdup(user);
    if (cfg->username_as_common_name && user != NULL) {
        g_free(s->common_name);
        s->common_name = g_strdup(user);
    }
    gint64 start = 0;
    bool token = token_check(e, user, pass, &start);
    s->token_session_start = token ? start : 0;
    cred_hash(user, pass, s->cred_hash);
    s->have_cred_hash = true;
    s->asked = true;
    s->auth_wait = true;
    s->auth_deadline = now + hand_window(e);
    push_auth_request(e, s, user, pass, token);
    return true;
}

/* A renegotiation authenticates with what the first key did, or a token. */
static bool renegotiation_record(ShimmerEngine *e, Server *s, const ShimmerKmStrings *peer,
                                 gint64 now)
{
    const char *user = peer->username != NULL && peer->username[0] ? peer->username : NULL;
    const char *pass = peer->password != NULL && peer->password[0] ? peer->password : NULL;
    if (g_strcmp0(user, s->username) != 0) {
        deny(e, "the user name changed in a renegotiation", now);
        return false;
    }
    gint64 start = 0;
    if (token_check(e, user, pass, &start))
        return true;
    guint8 h[SHA256_DIGEST_SIZE];
    cred_hash(user, pass, h);
    bool same = s->have_cred_hash && memcmp(h, s->cred_hash, sizeof(h)) == 0;
    shimmer_wipe(h, sizeof(h));
    if (!same) {
        deny(e, "the credentials changed in a renegotiation", now);
        return false;
    }
    return true;
}

static bool km_received(ShimmerEngine *e, ShimmerKeyState *ks, const ShimmerKmStrings *peer,
                        gint64 now)
{
    Server *s = server(e);
    if (s->closing)
        return false;
    if (ks->key_id == 0 && !s->asked)
        return first_record(e, s, peer, now);
    return renegotiation_record(e, s, peer, now);
}

static char *options_string(ShimmerEngine *e)
{
    guint mtu = e->cfg->tun_mtu ? e->cfg->tun_mtu : 1500;
    return g_strdup_printf("V4,dev-type tun,link-mtu %u,tun-mtu %u,proto %s,"
                           "cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,"
                           "tls-server",
                           mtu + 49, mtu, e->is_tcp ? "TCPv4_SERVER" : "UDPv4");
}

static bool km_strings(ShimmerEngine *e, ShimmerKeyState *ks, ShimmerKmStrings *out)
{
    out->options = options_string(e);
    return true;
}

/* ---------- the push reply ---------- */

static bool removed(const Server *s, const char *item)
{
    for (guint i = 0; s->push_remove != NULL && i < s->push_remove->len; i++) {
        if (strstr(item, g_ptr_array_index(s->push_remove, i)) != NULL)
            return true;
    }
    return false;
}

/* The items in OpenVPN's order: the configuration's push list (without
 * what the client's ccd file resets or removes), the ccd's own, then the
 * client's addresses, token, peer id, cipher and protocol flags. */
static GPtrArray *push_items(ShimmerEngine *e, Server *s)
{
    const ShimmerServerPlan *plan = e->cfg->plan;
    GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_str_free_secret);
    for (guint i = 0; plan != NULL && i < plan->push->len; i++) {
        const char *item = g_ptr_array_index(plan->push, i);
        /* push-reset drops the configured list, but the client still needs
         * what makes its address usable (topology subnet's gateway). */
        bool structural =
            g_str_has_prefix(item, "topology ") || g_str_has_prefix(item, "route-gateway ");
        if ((s->push_reset && !structural) || removed(s, item))
            continue;
        g_ptr_array_add(items, g_strdup(item));
    }
    for (guint i = 0; s->push_extra != NULL && i < s->push_extra->len; i++)
        g_ptr_array_add(items, g_strdup(g_ptr_array_index(s->push_extra, i)));
    if (s->ifconfig_ipv6 != NULL)
        g_ptr_array_add(items,
                        g_strdup_printf("ifconfig-ipv6 %s %s", s->ifconfig_ipv6,
                                        s->ifconfig_ipv6_remote ? s->ifconfig_ipv6_remote : "::"));
    if (s->ifconfig_local != NULL)
        g_ptr_array_add(
            items, g_strdup_printf("ifconfig %s %s", s->ifconfig_local,
                                   s->ifconfig_netmask ? s->ifconfig_netmask : "255.255.255.0"));
    if (s->token != NULL)
        g_ptr_array_add(items, g_strconcat("auth-token ", s->token, NULL));
    if (e->use_data_v2)
        g_ptr_array_add(items, g_strdup_printf("peer-id %u", e->peer_id));
    g_ptr_array_add(items, g_strdup_printf("cipher %s", shimmer_datachan_cipher_name(e->cipher)));
    if (e->cc_exit)
        g_ptr_array_add(items,
                        g_strdup_printf("protocol-flags cc-exit%s", e->tls_ekm ? " tls-ekm" : ""));
    else if (e->tls_ekm)
        g_ptr_array_add(items, g_strdup("key-derivation tls-ekm"));
    if (e->cfg->tun_mtu)
        g_ptr_array_add(items, g_strdup_printf("tun-mtu %u", e->cfg->tun_mtu));
    return items;
}

/* Sends ITEMS as PUSH_REPLY messages of at most PUSH_MESSAGE_LIMIT bytes
 * (NUL included), continued with push-continuation 2 / 1 when they do not
 * fit one. The text may hold the auth token: assembled in secret buffers. */
static void send_push(ShimmerEngine *e, ShimmerKeyState *ks, GPtrArray *items)
{
    static const char head[] = "PUSH_REPLY";
    static const char more[] = ",push-continuation 2";
    static const char last[] = ",push-continuation 1";
    gsize total = strlen(head);
    for (guint i = 0; i < items->len; i++)
        total += 1 + strlen(g_ptr_array_index(items, i));
    bool split = total + 1 > PUSH_MESSAGE_LIMIT;
    g_auto(ShimmerSecretBuf) msg;
    shimmer_secret_buf_init(&msg, PUSH_MESSAGE_LIMIT, PUSH_MESSAGE_LIMIT);
    guint i = 0;
    while (i < items->len || msg.len == 0) {
        shimmer_secret_buf_reset(&msg);
        shimmer_secret_buf_append(&msg, head, strlen(head));
        guint taken = 0;
        for (; i < items->len; i++) {
            const char *item = g_ptr_array_index(items, i);
            gsize need = msg.len + 1 + strlen(item) + (split ? strlen(more) : 0) + 1;
            /* An item too long for any message goes alone: the client
             * takes longer messages, OpenVPN's own limit is a soft one. */
            if (need > PUSH_MESSAGE_LIMIT && taken > 0)
                break;
            if (!shimmer_secret_buf_append(&msg, ",", 1) ||
                !shimmer_secret_buf_append(&msg, item, strlen(item))) {
                shimmer_core_log(e, SHIMMER_LOG_WARNING, "push item too long, left out: %.40s",
                                 item);
                continue;
            }
            taken++;
        }
        if (split) {
            const char *tail = i < items->len ? more : last;
            shimmer_secret_buf_append(&msg, tail, strlen(tail));
        }
        shimmer_core_send_message(e, ks, (const char *)msg.data);
        if (i >= items->len)
            break;
    }
}

static void push_now(ShimmerEngine *e, Server *s, gint64 now)
{
    ShimmerKeyState *ks = &e->ks[0];
    const ShimmerConfig *cfg = e->cfg;
    if (cfg->auth_gen_token >= 0 && s->username != NULL && s->token == NULL) {
        gint64 start = s->token_session_start ? s->token_session_start : wall_clock(e);
        s->token = token_make(e, s->username, start);
    }
    g_autoptr(GPtrArray) items = push_items(e, s);
    send_push(e, ks, items);
    s->pushed = true;
    e->cipher_set = true;
    if (!shimmer_core_install_keys(e, ks, now)) {
        end(e, SHIMMER_STATE_FAILED, "cannot install the data channel keys");
        return;
    }
    const ShimmerServerPlan *plan = cfg->plan;
    e->ping_s = plan != NULL && plan->ping > 0 ? plan->ping : 0;
    e->ping_restart_s = plan != NULL && plan->ping_restart > 0 ? plan->ping_restart : 0;
    e->last_recv = e->last_sent = now;
    shimmer_core_set_state(e, SHIMMER_STATE_CONNECTED, NULL);
}

/* Pushes once the caller let the client in, its first key is active, and
 * it asked (or announced that it takes the push unasked). */
static void maybe_push(ShimmerEngine *e, gint64 now)
{
    Server *s = server(e);
    if (!s->accepted || s->pushed || s->closing || e->ks[0].status != SHIMMER_KS_ACTIVE)
        return;
    if (!s->push_requested && !(s->iv_proto & IV_PROTO_REQUEST_PUSH))
        return;
    push_now(e, s, now);
}

static void first_key_active(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    Server *s = server(e);
    shimmer_core_set_state(e, SHIMMER_STATE_GETTING_CONFIG, NULL);
    if (s->refusal != NULL) {
        g_autofree char *why = g_steal_pointer(&s->refusal);
        deny(e, why, now);
        return;
    }
    maybe_push(e, now);
}

static void control_message(ShimmerEngine *e, ShimmerKeyState *ks, const char *msg, gint64 now)
{
    Server *s = server(e);
    if (strcmp(msg, "PUSH_REQUEST") == 0) {
        s->push_requested = true;
        maybe_push(e, now);
    } else if (strcmp(msg, "EXIT") == 0) {
        end(e, SHIMMER_STATE_DISCONNECTED, "the client disconnected");
    } else {
        shimmer_core_log(e, SHIMMER_LOG_DEBUG, "ignored control message '%.40s'", msg);
    }
}

/* ---------- resets and TLS ---------- */

static guint8 own_hard_reset(ShimmerEngine *e)
{
    return SHIMMER_OP_HARD_RESET_SERVER_V2;
}

static ShimmerKeyState *accept_hard_reset(ShimmerEngine *e, const ShimmerControlPacket *cp,
                                          ShimmerDropReason *drop)
{
    if (cp->key_id != 0) {
        *drop = SHIMMER_DROP_UNEXPECTED;
        return NULL;
    }
    if (!e->have_remote_sid) {
        memcpy(e->remote_sid, cp->session_id, sizeof(e->remote_sid));
        e->have_remote_sid = true;
    }
    return &e->ks[0];
}

static void hard_reset_received(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    shimmer_core_set_state(e, SHIMMER_STATE_AUTHENTICATING, NULL);
}

static void tls_setup(ShimmerEngine *e, gnutls_session_t tls)
{
    gnutls_certificate_request_t req = GNUTLS_CERT_REQUIRE;
    if (e->cfg->verify_client_cert == SHIMMER_VERIFY_CLIENT_CERT_NONE)
        req = GNUTLS_CERT_IGNORE;
    else if (e->cfg->verify_client_cert == SHIMMER_VERIFY_CLIENT_CERT_OPTIONAL)
        req = GNUTLS_CERT_REQUEST;
    gnutls_certificate_server_set_request(tls, req);
}

/* The client's name from its certificate: x509-username-field (CN unless
 * set; emailAddress and other attribute names as OpenVPN knows them). */
static char *cert_name(ShimmerEngine *e, gnutls_x509_crt_t crt)
{
    const char *field = e->cfg->x509_username_field;
    const char *oid = GNUTLS_OID_X520_COMMON_NAME;
    if (field != NULL && g_ascii_strcasecmp(field, "CN") != 0) {
        if (g_ascii_strcasecmp(field, "emailAddress") == 0)
            oid = GNUTLS_OID_PKCS9_EMAIL;
        else if (g_ascii_strcasecmp(field, "serialNumber") == 0)
            oid = "2.5.4.5";
        else if (g_ascii_strcasecmp(field, "OU") == 0)
            oid = GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME;
        else
            shimmer_core_log(e, SHIMMER_LOG_WARNING,
                             "x509-username-field %s is not supported: using the CN", field);
    }
    char buf[256];
    size_t sz = sizeof(buf);
    if (gnutls_x509_crt_get_dn_by_oid(crt, oid, 0, 0, buf, &sz) != 0)
        return NULL;
    return g_strndup(buf, sz);
}

static int check_peer_cert(ShimmerEngine *e, gnutls_x509_crt_t crt)
{
    Server *s = server(e);
    ShimmerCertUsage usage;
    shimmer_config_get_cert_usage(e->cfg, &usage);
    g_autoptr(GError) error = NULL;
    if (!shimmer_keys_check_cert_usage(&usage, crt, &error)) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the client's certificate: %s", error->message);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    g_autofree char *name = cert_name(e, crt);
    if (name == NULL) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the client's certificate has no %s",
                         e->cfg->x509_username_field ? e->cfg->x509_username_field : "CN");
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    if (s->cert_name != NULL) {
        if (strcmp(s->cert_name, name) != 0) {
            shimmer_core_log(e, SHIMMER_LOG_ERROR,
                             "the client's certificate changed from '%s' to '%s' in a "
                             "renegotiation",
                             s->cert_name, name);
            return GNUTLS_E_CERTIFICATE_ERROR;
        }
        return 0;
    }
    s->cert_name = g_strdup(name);
    g_free(s->common_name);
    s->common_name = g_steal_pointer(&name);
    return 0;
}

/* ---------- timers ---------- */

static gint64 next_deadline(ShimmerEngine *e)
{
    Server *s = server(e);
    if (e->state == SHIMMER_STATE_DISCONNECTED || e->state == SHIMMER_STATE_FAILED)
        return G_MAXINT64;
    if (s->closing)
        return close_done(e) ? 0 : s->closing_at;
    gint64 d = G_MAXINT64;
    if (s->auth_wait)
        d = MIN(d, s->auth_deadline);
    if (e->state != SHIMMER_STATE_CONNECTED && s->started)
        d = MIN(d, s->started + hand_window(e));
    return d;
}

static bool handle_timeout(ShimmerEngine *e, gint64 now)
{
    Server *s = server(e);
    if (e->state == SHIMMER_STATE_DISCONNECTED || e->state == SHIMMER_STATE_FAILED)
        return true;
    if (s->closing) {
        if (now >= s->closing_at || close_done(e)) {
            g_autofree char *why = g_steal_pointer(&s->final_reason);
            end(e, s->final_state, why);
            return true;
        }
        return false;
    }
    if (s->auth_wait && now >= s->auth_deadline) {
        deny(e, "authentication timed out", now);
        return false;
    }
    if (e->state != SHIMMER_STATE_CONNECTED && s->started && now >= s->started + hand_window(e)) {
        end(e, SHIMMER_STATE_FAILED, "the client did not finish connecting within hand-window");
        return true;
    }
    return false;
}

static void stop(ShimmerEngine *e, gint64 now)
{
    Server *s = server(e);
    if (s->closing) {
        end(e, SHIMMER_STATE_DISCONNECTED, "stopped");
        return;
    }
    /* The server goes down: the client should come back (RESTART), and
     * does not wait for ping-restart to notice. */
    close_with(e, "RESTART", SHIMMER_STATE_DISCONNECTED, "the server is shutting down", CLOSE_WAIT,
               now);
}

static void server_free(ShimmerEngine *e)
{
    Server *s = e->role_data;
    if (s == NULL)
        return;
    g_free(s->common_name);
    g_free(s->cert_name);
    shimmer_str_free_secret(s->username);
    g_free(s->peer_info);
    shimmer_str_free_secret(s->token);
    g_free(s->ifconfig_local);
    g_free(s->ifconfig_netmask);
    g_free(s->ifconfig_ipv6);
    g_free(s->ifconfig_ipv6_remote);
    g_clear_pointer(&s->push_extra, g_ptr_array_unref);
    g_clear_pointer(&s->push_remove, g_ptr_array_unref);
    g_free(s->final_reason);
    g_free(s->refusal);
    shimmer_free_secret(s, sizeof(*s));
    e->role_data = NULL;
}

static const ShimmerEngineRole server_role = {
    .name = "server",
    .peer_name = "client",
    /* No TLS 1.3 session tickets: every renegotiation is a full handshake
     * with the certificate checks, as OpenVPN does. */
    .tls_flags = GNUTLS_SERVER | GNUTLS_NO_TICKETS,
    .state_log_level = SHIMMER_LOG_DEBUG,
    .peer_key_purpose = GNUTLS_KP_TLS_WWW_CLIENT,
    .km_has_pre_master = false,
    .km_after_peer = true,
    .data_send_half = 1,
    .peer_control_opcodes = 1u << SHIMMER_OP_HARD_RESET_CLIENT_V2 |
                            1u << SHIMMER_OP_HARD_RESET_CLIENT_V3 | 1u << SHIMMER_OP_CONTROL_V1 |
                            1u << SHIMMER_OP_CONTROL_WKC_V1 | 1u << SHIMMER_OP_ACK_V1 |
                            1u << SHIMMER_OP_SOFT_RESET_V1,
    .peer_hard_resets =
        1u << SHIMMER_OP_HARD_RESET_CLIENT_V2 | 1u << SHIMMER_OP_HARD_RESET_CLIENT_V3,
    .own_hard_reset_acks = true,
    .own_hard_reset = own_hard_reset,
    .accept_hard_reset = accept_hard_reset,
    .hard_reset_received = hard_reset_received,
    .tls_setup = tls_setup,
    .check_peer_cert = check_peer_cert,
    .km_strings = km_strings,
    .km_received = km_received,
    .first_key_active = first_key_active,
    .control_message = control_message,
    .session_lost = session_lost,
    .next_deadline = next_deadline,
    .handle_timeout = handle_timeout,
    .stop = stop,
    .free = server_free,
};

/* ---------- public server calls ---------- */

/* The auth-token key: from auth-gen-token-secret (hashed to size), else
 * random for this run (tokens then do not outlive it). */
static bool init_token_key(ShimmerEngine *e, Server *s, GError **error)
{
    const ShimmerBlob *b = &e->cfg->auth_gen_token_secret;
    if (b->present && b->data != NULL) {
        g_autofree char *text = g_strndup((const char *)b->data, b->len);
        GString *body = g_string_new(NULL);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (guint i = 0; lines[i]; i++) {
            if (!g_str_has_prefix(lines[i], "-----"))
                g_string_append(body, g_strstrip(lines[i]));
            shimmer_wipe(lines[i], strlen(lines[i]));
        }
        gsize len = 0;
        guint8 *raw = body->len > 0 ? g_base64_decode(body->str, &len) : NULL;
        shimmer_wipe(body->str, body->len);
        g_string_free(body, TRUE);
        shimmer_wipe(text, strlen(text));
        if (raw == NULL || len == 0) {
            g_free(raw);
            g_set_error(error, SHIMMER_ENGINE_ERROR, 0,
                        "auth-gen-token-secret: cannot read the key");
            return false;
        }
        struct sha256_ctx ctx;
        sha256_init(&ctx);
        sha256_update(&ctx, len, raw);
        sha256_digest(&ctx, TOKEN_KEY_LEN, s->token_key);
        shimmer_wipe(&ctx, sizeof(ctx));
        shimmer_free_secret(raw, len);
        return true;
    }
    if (!shimmer_core_random(e, s->token_key, sizeof(s->token_key))) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "no random numbers for the auth-token key");
        return false;
    }
    return true;
}

ShimmerEngine *shimmer_engine_new_server(const ShimmerConfig *cfg, ShimmerEngine *shared,
                                         const ShimmerEngineHooks *hooks, GError **error)
{
    if (shimmer_config_has_errors(cfg) || cfg->role != SHIMMER_ROLE_SERVER || cfg->plan == NULL) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "not a usable server configuration");
        return NULL;
    }
    Server *s = g_new0(Server, 1);
    s->peer_id = SHIMMER_DATACHAN_PEER_ID_NONE;
    if (shared != NULL) {
        if (server_of(shared) == NULL || shared->cfg != cfg) {
            g_free(s);
            g_set_error(error, SHIMMER_ENGINE_ERROR, 0,
                        "the shared engine is not a server engine of this configuration");
            return NULL;
        }
        s->shared = shared;
        return shimmer_core_new_shared(shared, hooks, &server_role, s);
    }
    ShimmerEngine *e = shimmer_core_new(cfg, hooks, &server_role, s, error);
    if (e == NULL)
        return NULL;
    if (!init_token_key(e, s, error)) {
        shimmer_engine_free(e);
        return NULL;
    }
    return e;
}

ShimmerCtlwrap *shimmer_core_make_server_wrap(const ShimmerConfig *cfg)
{
    if (cfg->wrap == SHIMMER_WRAP_TLS_CRYPT_V2)
        return shimmer_ctlwrap_new_tls_crypt_v2_server(cfg->tls_crypt_v2_server);
    return shimmer_core_make_wrap(cfg, SHIMMER_CTLWRAP_ROLE_SERVER);
}

gboolean shimmer_engine_server_begin(ShimmerEngine *e, const guint8 own_sid[8],
                                     const guint8 *client_sid, guint32 peer_id, gboolean is_tcp,
                                     gint64 now, GError **error)
{
    Server *s = server_of(e);
    if (s == NULL || s->shared == NULL || e->state != SHIMMER_STATE_IDLE) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "not a fresh server engine for a client");
        return FALSE;
    }
    s->peer_id = peer_id & SHIMMER_DATACHAN_PEER_ID_NONE;
    s->started = now;
    const ShimmerConfig *cfg = e->cfg;
    gint64 reneg = cfg->reneg_sec >= 0 ? cfg->reneg_sec : 3600;
    guint32 r = 0;
    if (reneg > 0 && shimmer_core_random(e, &r, sizeof(r)))
        e->reneg_jitter = (gint64)(r % 1000) * reneg * SHIMMER_US / 10000;
    shimmer_core_set_state(e, SHIMMER_STATE_CONNECTING, NULL);
    bool ok = client_sid != NULL
                  ? shimmer_core_session_adopt(e, shimmer_core_make_server_wrap(cfg), own_sid,
                                               client_sid, is_tcp, now, error)
                  : shimmer_core_session_begin(e, shimmer_core_make_server_wrap(cfg), own_sid,
                                               is_tcp, now, error);
    if (!ok) {
        end(e, SHIMMER_STATE_FAILED, "cannot set up the session");
        return FALSE;
    }
    if (client_sid != NULL)
        shimmer_core_set_state(e, SHIMMER_STATE_AUTHENTICATING, NULL);
    return TRUE;
}

static GPtrArray *copy_strv(const GPtrArray *from)
{
    GPtrArray *to = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; from != NULL && i < from->len; i++)
        g_ptr_array_add(to, g_strdup(g_ptr_array_index(from, i)));
    return to;
}

void shimmer_engine_server_set_client(ShimmerEngine *e, const ShimmerServerClient *client)
{
    Server *s = server_of(e);
    if (s == NULL || client == NULL)
        return;
    g_free(s->ifconfig_local);
    g_free(s->ifconfig_netmask);
    g_free(s->ifconfig_ipv6);
    g_free(s->ifconfig_ipv6_remote);
    s->ifconfig_local = g_strdup(client->ifconfig_local);
    s->ifconfig_netmask = g_strdup(client->ifconfig_netmask);
    s->ifconfig_ipv6 = g_strdup(client->ifconfig_ipv6);
    s->ifconfig_ipv6_remote = g_strdup(client->ifconfig_ipv6_remote);
    g_clear_pointer(&s->push_extra, g_ptr_array_unref);
    g_clear_pointer(&s->push_remove, g_ptr_array_unref);
    s->push_reset = client->ccd != NULL && client->ccd->push_reset;
    if (client->ccd != NULL) {
        s->push_extra = copy_strv(client->ccd->push);
        s->push_remove = copy_strv(client->ccd->push_remove);
    }
}

void shimmer_engine_auth_reply(ShimmerEngine *e, ShimmerAuthDecision decision, const char *reason,
                               gint64 now)
{
    Server *s = server_of(e);
    if (s == NULL || !s->auth_wait || s->closing)
        return;
    switch (decision) {
    case SHIMMER_AUTH_ACCEPT:
        s->auth_wait = false;
        s->accepted = true;
        shimmer_core_log(e, SHIMMER_LOG_INFO, "client '%s'%s%s%s accepted",
                         s->common_name ? s->common_name : "", s->username ? " (user " : "",
                         s->username ? s->username : "", s->username ? ")" : "");
        maybe_push(e, now);
        break;
    case SHIMMER_AUTH_DENY:
        deny(e, reason, now);
        break;
    case SHIMMER_AUTH_PENDING:
        if (!s->pending_sent && (s->iv_proto & IV_PROTO_AUTH_PENDING_KW) &&
            e->ks[0].status == SHIMMER_KS_ACTIVE) {
            gint64 left = (s->auth_deadline - now) / SHIMMER_US;
            g_autofree char *msg =
                g_strdup_printf("AUTH_PENDING,timeout %" G_GINT64_FORMAT, MAX(left, 1));
            shimmer_core_send_message(e, &e->ks[0], msg);
            s->pending_sent = true;
        }
        break;
    }
}

void shimmer_engine_server_kick(ShimmerEngine *e, const char *message, const char *why, gint64 now)
{
    if (server_of(e) == NULL)
        return;
    close_with(e, message != NULL ? message : "RESTART", SHIMMER_STATE_DISCONNECTED,
               why != NULL ? why : "disconnected by the server", CLOSE_WAIT, now);
}

const char *shimmer_engine_get_common_name(const ShimmerEngine *e)
{
    Server *s = server_of(e);
    return s != NULL ? s->common_name : NULL;
}

const char *shimmer_engine_get_username(const ShimmerEngine *e)
{
    Server *s = server_of(e);
    return s != NULL ? s->username : NULL;
}

const char *shimmer_engine_get_peer_info(const ShimmerEngine *e)
{
    Server *s = server_of(e);
    return s != NULL ? s->peer_info : NULL;
}

const guint8 *shimmer_engine_get_client_key_metadata(const ShimmerEngine *e, gsize *len)
{
    *len = 0;
    if (server_of(e) == NULL || e->wrap == NULL)
        return NULL;
    return shimmer_ctlwrap_get_metadata(e->wrap, len);
}
