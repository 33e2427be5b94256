/* SPDX-License-Identifier: MIT */
/*
 * The engine's role-neutral core: key states, the control channel (reliable
 * layer, wrapping, TLS through GnuTLS), key-method-2 records both ways, data
 * keys, the data channel, keepalive, renegotiation and the exit
 * notification. What differs between a client and a server comes from the
 * role (engine-core.h). No I/O: see engine.h.
 */
#include "engine-core.h"

#include <gnutls/crypto.h>
#include <string.h>

#include "bytes.h"
#include "compress.h"

static const guint8 ping_magic[16] = {0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb,
                                      0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48};
static const guint8 occ_magic[16] = {0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81,
                                     0x2d, 0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c};
#define OCC_EXIT 6

/* A control message longer than this is no OpenVPN peer's... */
#define MAX_CONTROL_MESSAGE 65536
/* ...and TLS plaintext waiting to be parsed never needs more than that and
 * a few records. */
#define APP_IN_LIMIT (MAX_CONTROL_MESSAGE + 32768)

/* The TLS bytes one control packet carries: below a 1500-byte MTU with
 * any wrapping. */
#define CONTROL_PAYLOAD_UDP 1250
#define CONTROL_PAYLOAD_TCP 1300
/* A plain control packet around them (op, session ids, acks, pid)... */
#define CONTROL_HEADER_MAX (1 + 8 + 1 + 4 * SHIMMER_PACKET_MAX_ACKS + 8 + 4)
/* ...fits SHIMMER_ENGINE_MAX_PACKET wrapped in tls-auth with SHA-512 (the
 * largest wrap of a payload), and a reset or WKC_V1, which carry no
 * payload, fit it with tls-crypt-v2's largest WKc. */
G_STATIC_ASSERT(CONTROL_HEADER_MAX + CONTROL_PAYLOAD_TCP + 8 + 64 <= SHIMMER_ENGINE_MAX_PACKET);
G_STATIC_ASSERT(CONTROL_HEADER_MAX + 8 + SHIMMER_CTLWRAP_TLS_CRYPT_TAG_LEN +
                    SHIMMER_CTLWRAP_V2_MAX_WKC_LEN <=
                SHIMMER_ENGINE_MAX_PACKET);
G_STATIC_ASSERT(SHIMMER_ENGINE_SCRATCH >= CONTROL_HEADER_MAX + CONTROL_PAYLOAD_TCP);

G_DEFINE_QUARK(shimmer - engine - error - quark, shimmer_engine_error)

const char *shimmer_state_to_string(ShimmerState state)
{
    static const char *const names[] = {
        "idle",         "connecting",    "authenticating", "getting-config", "connected",
        "reconnecting", "disconnecting", "disconnected",   "failed",
    };
    return (guint)state < G_N_ELEMENTS(names) ? names[state] : "?";
}

const char *shimmer_drop_reason_to_string(ShimmerDropReason reason)
{
    static const char *const names[] = {
        [SHIMMER_DROP_NONE] = "not dropped",
        [SHIMMER_DROP_MALFORMED] = "malformed",
        [SHIMMER_DROP_AUTH] = "authentication failed",
        [SHIMMER_DROP_REPLAY] = "replayed or too old",
        [SHIMMER_DROP_NO_KEY] = "no key for its key id",
        [SHIMMER_DROP_WRONG_SESSION] = "another session's",
        [SHIMMER_DROP_UNEXPECTED] = "unexpected opcode",
        [SHIMMER_DROP_NO_SESSION] = "no session",
        [SHIMMER_DROP_COMPRESSED] = "compressed",
        [SHIMMER_DROP_TOO_BIG] = "larger than the buffer",
        [SHIMMER_DROP_BAD_COMPRESSION] = "bad compression",
    };
    return (guint)reason < G_N_ELEMENTS(names) ? names[reason] : "unknown";
}

const char *shimmer_encrypt_result_to_string(ShimmerEncryptResult result)
{
    static const char *const names[] = {
        [SHIMMER_ENCRYPT_OK] = "ok",
        [SHIMMER_ENCRYPT_NOT_CONNECTED] = "not connected",
        [SHIMMER_ENCRYPT_EMPTY] = "empty packet",
        [SHIMMER_ENCRYPT_TOO_BIG] = "too big",
        [SHIMMER_ENCRYPT_OUT_OF_IDS] = "out of packet ids",
        [SHIMMER_ENCRYPT_FAILED] = "encryption failed",
    };
    return (guint)result < G_N_ELEMENTS(names) ? names[result] : "unknown";
}

void shimmer_event_clear(ShimmerEvent *ev)
{
    switch (ev->type) {
    case SHIMMER_EVENT_STATE:
        g_clear_pointer(&ev->state_change.reason, g_free);
        break;
    case SHIMMER_EVENT_CONNECT:
        g_clear_pointer(&ev->connect.host, g_free);
        break;
    case SHIMMER_EVENT_NEED_CREDENTIALS:
        g_clear_pointer(&ev->credentials.text, g_free);
        break;
    case SHIMMER_EVENT_AUTH_FAILED:
        g_clear_pointer(&ev->auth_failed.reason, g_free);
        break;
    case SHIMMER_EVENT_INFO:
        g_clear_pointer(&ev->info.text, g_free);
        break;
    case SHIMMER_EVENT_EXIT:
        g_clear_pointer(&ev->exit.reason, g_free);
        break;
    case SHIMMER_EVENT_AUTH_REQUEST:
        g_clear_pointer(&ev->auth_request.common_name, g_free);
        g_clear_pointer(&ev->auth_request.username, shimmer_str_free_secret);
        g_clear_pointer(&ev->auth_request.password, shimmer_str_free_secret);
        g_clear_pointer(&ev->auth_request.peer_info, g_free);
        break;
    case SHIMMER_EVENT_WEB_AUTH:
        g_clear_pointer(&ev->web_auth.url, g_free);
        g_clear_pointer(&ev->web_auth.flags, g_strfreev);
        break;
    case SHIMMER_EVENT_DISCONNECT_TRANSPORT:
    case SHIMMER_EVENT_TUN_CONFIG:
    case SHIMMER_EVENT_AUTH_PENDING:
        break;
    }
}

void shimmer_km_strings_clear(ShimmerKmStrings *s)
{
    g_clear_pointer(&s->options, g_free);
    g_clear_pointer(&s->username, shimmer_str_free_secret);
    g_clear_pointer(&s->password, shimmer_str_free_secret);
    g_clear_pointer(&s->peer_info, g_free);
}

/* ---------- logging, events, randomness ---------- */

void shimmer_core_log(ShimmerEngine *e, ShimmerLogLevel level, const char *fmt, ...)
{
    if (e->hooks.log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    e->hooks.log(e->hooks.user, level, msg);
}

bool shimmer_core_random(ShimmerEngine *e, void *buf, gsize len)
{
    bool ok = e->hooks.random != NULL ? e->hooks.random(e->hooks.user, buf, len)
                                      : gnutls_rnd(GNUTLS_RND_KEY, buf, len) == 0;
    if (!ok)
        shimmer_wipe(buf, len);
    return ok;
}

ShimmerEvent *shimmer_core_push_event(ShimmerEngine *e, ShimmerEventType type)
{
    ShimmerEvent *ev = g_new0(ShimmerEvent, 1);
    ev->type = type;
    ev->state = e->state;
    g_queue_push_tail(e->events, ev);
    return ev;
}

/* Tells the data plane which key sends, until when lame ducks receive, and
 * whether tun packets are taken now (only while connected). */
static void sync_dataplane(ShimmerEngine *e)
{
    const ShimmerKeyState *p = &e->ks[0];
    const ShimmerKeyState *lame = &e->ks[1];
    gint primary = p->status != SHIMMER_KS_NONE && p->keys_installed ? p->key_id : -1;
    /* A renegotiated key sends once it settled; the one before until then. */
    if (primary >= 0 && !p->sending && lame->status != SHIMMER_KS_NONE && lame->keys_installed)
        primary = lame->key_id;
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES; i++) {
        if (e->ks[i].keys_installed)
            shimmer_dataplane_set_expiry(e->dp, e->ks[i].key_id, e->ks[i].expires);
    }
    shimmer_dataplane_configure(e->dp, primary, e->state == SHIMMER_STATE_CONNECTED, e->use_data_v2,
                                e->peer_id, e->comp, e->comp_alg);
}

/* The last data or control packet sent / received, on any thread. */
static gint64 last_sent(const ShimmerEngine *e)
{
    gint64 s, r;
    shimmer_dataplane_get_times(e->dp, &s, &r);
    return MAX(e->last_sent, s);
}

static gint64 last_recv(const ShimmerEngine *e)
{
    gint64 s, r;
    shimmer_dataplane_get_times(e->dp, &s, &r);
    return MAX(e->last_recv, r);
}

void shimmer_core_set_state(ShimmerEngine *e, ShimmerState state, const char *why)
{
    if (e->state == state)
        return;
    e->state = state;
    sync_dataplane(e);
    shimmer_core_log(e, e->role->state_log_level, "state %s%s%s", shimmer_state_to_string(state),
                     why ? ": " : "", why ? why : "");
    shimmer_core_push_event(e, SHIMMER_EVENT_STATE)->state_change.reason = g_strdup(why);
}

static void lose_session(ShimmerEngine *e, ShimmerSessionLoss how, const char *why, gint64 now)
{
    e->role->session_lost(e, how, why, now);
}

/* ---------- key states ---------- */

static void ks_clear(ShimmerEngine *e, ShimmerKeyState *ks)
{
    if (ks->keys_installed)
        shimmer_dataplane_remove(e->dp, ks->key_id);
    g_clear_pointer(&ks->rel, shimmer_reliable_free);
    if (ks->tls != NULL) {
        gnutls_deinit(ks->tls);
        ks->tls = NULL;
    }
    if (ks->tls_out != NULL) {
        shimmer_wipe(ks->tls_out->data, ks->tls_out->len);
        g_byte_array_unref(ks->tls_out);
    }
    shimmer_secret_buf_clear(&ks->app_in);
    shimmer_wipe(ks, sizeof(*ks));
}

/* Frees a lame duck's control channel once nothing is left in it (nothing
 * unacked, no acks owed, nothing unread): it only decrypts from then on. A
 * server holds this for every client after each renegotiation. */
static void ks_retire_if_quiet(ShimmerKeyState *ks)
{
    if (ks->retired || ks->status != SHIMMER_KS_ACTIVE || ks->rel == NULL ||
        shimmer_reliable_unacked(ks->rel) > 0 || shimmer_reliable_has_pending_acks(ks->rel) ||
        shimmer_reliable_readable(ks->rel) > 0 || ks->tls_out->len > 0 || ks->app_in.len > 0)
        return;
    g_clear_pointer(&ks->rel, shimmer_reliable_free);
    gnutls_deinit(ks->tls);
    ks->tls = NULL;
    g_byte_array_unref(ks->tls_out);
    ks->tls_out = NULL;
    shimmer_secret_buf_clear(&ks->app_in);
    ks->retired = true;
}

static ShimmerKeyState *ks_by_id(ShimmerEngine *e, guint key_id)
{
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES; i++) {
        if (e->ks[i].status != SHIMMER_KS_NONE && e->ks[i].key_id == key_id)
            return &e->ks[i];
    }
    return NULL;
}

/* TLS output goes straight into the reliable layer; only what its send
 * window cannot take yet waits, in order, in tls_out. */
static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    ShimmerKeyState *ks = ptr;
    gsize n = 0;
    if (ks->tls_out->len == 0)
        n = shimmer_reliable_queue(ks->rel, SHIMMER_OP_CONTROL_V1, data, len);
    if (n < len)
        g_byte_array_append(ks->tls_out, (const guint8 *)data + n, (guint)(len - n));
    return (ssize_t)len;
}

/* Offers the waiting TLS output to the reliable layer again (acks may have
 * opened its window). */
static void feed_reliable(ShimmerKeyState *ks)
{
    if (ks->tls_out->len == 0)
        return;
    gsize n =
        shimmer_reliable_queue(ks->rel, SHIMMER_OP_CONTROL_V1, ks->tls_out->data, ks->tls_out->len);
    if (n > 0)
        g_byte_array_remove_range(ks->tls_out, 0, (guint)n);
}

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
    ShimmerKeyState *ks = ptr;
    gsize n = shimmer_reliable_read(ks->rel, data, len);
    if (n == 0) {
        gnutls_transport_set_errno(ks->tls, EAGAIN);
        return -1;
    }
    return (ssize_t)n;
}

static bool ks_start(ShimmerEngine *e, ShimmerKeyState *ks, guint8 key_id, gint64 now,
                     GError **error)
{
    ks_clear(e, ks);
    ks->key_id = key_id;
    ShimmerReliableConfig rc = {0};
    rc.max_payload = e->is_tcp ? CONTROL_PAYLOAD_TCP : CONTROL_PAYLOAD_UDP;
    ks->rel = shimmer_reliable_new(&rc);
    ks->tls_out = g_byte_array_new();
    shimmer_secret_buf_init(&ks->app_in, 0, APP_IN_LIMIT);
    ks->started = now;
    if ((e->role->km_has_pre_master &&
         !shimmer_core_random(e, ks->pre_master, sizeof(ks->pre_master))) ||
        !shimmer_core_random(e, ks->own_random1, sizeof(ks->own_random1)) ||
        !shimmer_core_random(e, ks->own_random2, sizeof(ks->own_random2))) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "no random numbers for the key exchange");
        return false;
    }

    int rc2 = gnutls_init(&ks->tls, e->role->tls_flags | GNUTLS_NONBLOCK);
    if (rc2 == 0)
        rc2 = e->priority_cache != NULL ? gnutls_priority_set(ks->tls, e->priority_cache)
                                        : gnutls_priority_set_direct(ks->tls, e->priority, NULL);
    if (rc2 == 0)
        rc2 = gnutls_credentials_set(ks->tls, GNUTLS_CRD_CERTIFICATE, e->creds);
    if (rc2 != 0) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "TLS setup failed: %s", gnutls_strerror(rc2));
        return false;
    }
    gnutls_session_set_ptr(ks->tls, e);
    gnutls_transport_set_ptr(ks->tls, ks);
    gnutls_transport_set_push_function(ks->tls, tls_push);
    gnutls_transport_set_pull_function(ks->tls, tls_pull);
    gnutls_handshake_set_timeout(ks->tls, 0);
    if (e->role->tls_setup != NULL)
        e->role->tls_setup(e, ks->tls);
    ks->status = SHIMMER_KS_RESET_SENT;
    return true;
}

/* ---------- output ---------- */

/* Serialises one control packet of KS into BUF: MSG (NULL: an ACK_V1) with
 * the acks that fit. Built straight into BUF without wrapping, through one
 * scratch copy with it. Returns its length; 0 if it cannot be built. */
static gsize build_control(ShimmerEngine *e, ShimmerKeyState *ks, const ShimmerReliableMessage *msg,
                           guint8 *buf, gsize cap, gint64 now)
{
    ShimmerControlPacket pkt = {0};
    guint opcode = msg != NULL ? msg->kind : SHIMMER_OP_ACK_V1;
    pkt.opcode = (guint8)opcode;
    pkt.key_id = ks->key_id;
    memcpy(pkt.session_id, e->own_sid, sizeof(pkt.session_id));
    gsize max_acks =
        opcode == SHIMMER_OP_ACK_V1 ? SHIMMER_PACKET_MAX_ACKS : SHIMMER_PACKET_MAX_ACKS_CONTROL;
    /* Taking acks leaves MSG's payload in place (reliable.h). */
    if (opcode != e->role->own_hard_reset(e) || e->role->own_hard_reset_acks) {
        pkt.n_acks = (guint)shimmer_reliable_take_acks(ks->rel, pkt.acks, max_acks);
        /* The room left acks again what was acked lately (reliable.h). */
        if (msg != NULL)
            pkt.n_acks =
                (guint)shimmer_reliable_add_recent_acks(ks->rel, pkt.acks, pkt.n_acks, max_acks);
    }
    if (pkt.n_acks > 0)
        memcpy(pkt.remote_session_id, e->remote_sid, sizeof(pkt.remote_session_id));
    if (msg != NULL) {
        pkt.has_msg_pid = TRUE;
        pkt.msg_pid = msg->pid;
        pkt.payload = msg->payload;
        pkt.payload_len = msg->len;
    }
    bool wrapped = shimmer_ctlwrap_get_mode(e->wrap) != SHIMMER_CTLWRAP_NONE;
    guint8 *plain = wrapped ? e->scratch : buf;
    gsize plain_len = 0;
    if (shimmer_packet_build_control(&pkt, plain, wrapped ? sizeof(e->scratch) : cap, &plain_len) !=
        SHIMMER_PACKET_OK) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "cannot build a control packet");
        return 0;
    }
    if (!wrapped)
        return plain_len;
    gsize len = 0;
    /* The wrap's time field only orders packets for the peer's replay
     * check: the engine's own clock serves, so no wall clock is read here. */
    ShimmerCtlwrapError err = shimmer_ctlwrap_wrap(e->wrap, plain, plain_len,
                                                   (guint32)(1 + now / SHIMMER_US), buf, cap, &len);
    shimmer_wipe(plain, plain_len);
    if (err != SHIMMER_CTLWRAP_OK) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "cannot wrap a control packet: %s",
                         shimmer_ctlwrap_error_to_string(err));
        return 0;
    }
    return len;
}

/* KS's next control packet due at NOW into BUF: a message of the reliable
 * layer (new or to retransmit) or, without one, an ACK_V1 for the pending
 * acks. Returns its length, 0 if none is due. */
static gsize write_control(ShimmerEngine *e, ShimmerKeyState *ks, guint8 *buf, gsize cap,
                           gint64 now)
{
    if (ks->status == SHIMMER_KS_NONE || ks->retired)
        return 0;
    feed_reliable(ks);
    /* Bounded: every round takes a message or acks from the reliable layer,
     * so only a packet that cannot be built makes another round. */
    for (int rounds = 0; rounds < 16; rounds++) {
        ShimmerReliableMessage msg;
        bool have_msg = shimmer_reliable_next_to_send(ks->rel, now, &msg);
        if (!have_msg && !shimmer_reliable_has_pending_acks(ks->rel))
            return 0;
        gsize n = build_control(e, ks, have_msg ? &msg : NULL, buf, cap, now);
        if (n > 0)
            return n;
    }
    return 0;
}

/* Packets made before their session was torn down (a stop's last control
 * message) wait in e->linger, each behind a u16 length, for write_pkt. */
static void linger_control(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    while (e->linger_len + 2 + SHIMMER_ENGINE_MAX_PACKET <= sizeof(e->linger)) {
        guint8 *slot = e->linger + e->linger_len;
        gsize n = write_control(e, ks, slot + 2, SHIMMER_ENGINE_MAX_PACKET, now);
        if (n == 0)
            break;
        shimmer_write_be16(slot, (guint16)n);
        e->linger_len += 2 + n;
        e->stats.link_bytes_out += n;
    }
}

static gsize take_linger(ShimmerEngine *e, guint8 *buf)
{
    if (e->linger_pos >= e->linger_len)
        return 0;
    gsize n = shimmer_read_be16(e->linger + e->linger_pos);
    memcpy(buf, e->linger + e->linger_pos + 2, n);
    e->linger_pos += 2 + n;
    if (e->linger_pos >= e->linger_len)
        e->linger_pos = e->linger_len = 0;
    return n;
}

/* ---------- TLS application data ---------- */

static void tls_send(ShimmerEngine *e, ShimmerKeyState *ks, const void *data, gsize len)
{
    const guint8 *p = data;
    while (len > 0) {
        ssize_t n = gnutls_record_send(ks->tls, p, len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue; /* our push never blocks; gnutls may still ask to retry */
        if (n < 0) {
            shimmer_core_log(e, SHIMMER_LOG_ERROR, "TLS send failed: %s", gnutls_strerror((int)n));
            return;
        }
        p += n;
        len -= (gsize)n;
    }
}

void shimmer_core_send_message(ShimmerEngine *e, ShimmerKeyState *ks, const char *msg)
{
    /* Control messages are NUL-terminated strings on the TLS stream. */
    tls_send(e, ks, msg, strlen(msg) + 1);
}

/* ---------- key-method-2 records ---------- */

/* The encoded size of a record string: u16 length (counting the NUL), the
 * bytes and the NUL; the empty string is the length 0 alone. 0 if S is too
 * long to encode. */
static gsize km_string_size(const char *s)
{
    gsize len = s != NULL ? strlen(s) : 0;
    if (len == 0)
        return 2;
    return len + 1 <= G_MAXUINT16 ? 2 + len + 1 : 0;
}

static void km_put_string(ShimmerSecretBuf *b, const char *s)
{
    gsize len = s != NULL ? strlen(s) : 0;
    shimmer_secret_buf_append_be16(b, (guint16)(len ? len + 1 : 0));
    if (len > 0)
        shimmer_secret_buf_append(b, s, len + 1);
}

/* Writes our key-method-2 record on KS. It holds the pre-master secret and
 * the password, so it is assembled in one buffer of its exact size (no
 * reallocation leaves a copy) that is wiped whatever happens. FALSE when
 * the record cannot be made. */
static bool send_key_method(ShimmerEngine *e, ShimmerKeyState *ks)
{
    static const guint8 head[5] = {0, 0, 0, 0, 2};
    g_auto(ShimmerKmStrings) strings = {0};
    if (!e->role->km_strings(e, ks, &strings))
        return false;
    const char *fields[] = {strings.options, strings.username, strings.password, strings.peer_info};
    gsize size = sizeof(head) + (e->role->km_has_pre_master ? sizeof(ks->pre_master) : 0) +
                 sizeof(ks->own_random1) + sizeof(ks->own_random2);
    for (guint i = 0; i < G_N_ELEMENTS(fields); i++) {
        gsize n = km_string_size(fields[i]);
        if (n == 0) {
            shimmer_core_log(e, SHIMMER_LOG_ERROR, "a key-method field is too long");
            return false;
        }
        size += n;
    }
    g_auto(ShimmerSecretBuf) record;
    shimmer_secret_buf_init(&record, size, size);
    shimmer_secret_buf_append(&record, head, sizeof(head));
    if (e->role->km_has_pre_master)
        shimmer_secret_buf_append(&record, ks->pre_master, sizeof(ks->pre_master));
    shimmer_secret_buf_append(&record, ks->own_random1, sizeof(ks->own_random1));
    shimmer_secret_buf_append(&record, ks->own_random2, sizeof(ks->own_random2));
    for (guint i = 0; i < G_N_ELEMENTS(fields); i++)
        km_put_string(&record, fields[i]);
    tls_send(e, ks, record.data, record.len);
    ks->km_sent = true;
    return true;
}

bool shimmer_core_send_key_method(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    if (ks->km_sent)
        return true;
    if (send_key_method(e, ks))
        return true;
    lose_session(e, SHIMMER_SESSION_LOST_FATAL, "cannot write the key-method record", now);
    return false;
}

/* One u16-length-prefixed string at *P: 1 taken (into *OUT if OUT is not
 * NULL), 0 incomplete. */
static int get_string(const guint8 **p, const guint8 *end, char **out)
{
    if (end - *p < 2)
        return 0;
    gsize len = shimmer_read_be16(*p);
    if ((gsize)(end - *p - 2) < len)
        return 0;
    if (out != NULL)
        *out = len ? g_strndup((const char *)*p + 2, len) : g_strdup("");
    *p += 2 + len;
    return 1;
}

/* Parses the peer's key-method-2 record at the start of KS->app_in into KS
 * (randoms, the client's pre-master) and OUT. Returns the bytes it spans, 0
 * if it is incomplete, -1 if it is malformed.
 *
 * A client's record must hold options, user name and password; peer info
 * may follow. A server's needs only its options: a 2.6 server appends empty
 * user name, password and peer info, taken when complete and left
 * otherwise (it sends no control message before the client's push request
 * is answered, so nothing else can follow yet). */
static gssize km_parse(ShimmerEngine *e, ShimmerKeyState *ks, ShimmerKmStrings *out)
{
    if (ks->app_in.len == 0)
        return 0; /* nothing yet (and no buffer to point into) */
    const guint8 *start = ks->app_in.data;
    const guint8 *p = start, *end = start + ks->app_in.len;
    bool peer_has_pre_master = !e->role->km_has_pre_master;
    gsize fixed =
        5 + (peer_has_pre_master ? SHIMMER_PRE_MASTER_LEN : 0) + 2 * SHIMMER_KM_RANDOM_LEN;
    if ((gsize)(end - p) < fixed)
        return 0;
    if (memcmp(p, "\0\0\0\0\2", 5) != 0)
        return -1;
    p += 5;
    if (peer_has_pre_master) {
        memcpy(ks->pre_master, p, SHIMMER_PRE_MASTER_LEN);
        p += SHIMMER_PRE_MASTER_LEN;
    }
    memcpy(ks->peer_random1, p, SHIMMER_KM_RANDOM_LEN);
    memcpy(ks->peer_random2, p + SHIMMER_KM_RANDOM_LEN, SHIMMER_KM_RANDOM_LEN);
    p += 2 * SHIMMER_KM_RANDOM_LEN;
    if (!get_string(&p, end, &out->options))
        goto incomplete;
    if (peer_has_pre_master) {
        if (!get_string(&p, end, &out->username) || !get_string(&p, end, &out->password))
            goto incomplete;
        if (p < end && !get_string(&p, end, &out->peer_info))
            goto incomplete;
        return p - start;
    }
    const guint8 *q = p;
    if (get_string(&q, end, &out->username) && get_string(&q, end, &out->password)) {
        const guint8 *r = q;
        if (get_string(&r, end, &out->peer_info))
            q = r;
        p = q;
    } else {
        g_clear_pointer(&out->username, shimmer_str_free_secret);
    }
    return p - start;
incomplete:
    shimmer_km_strings_clear(out);
    return 0;
}

/* ---------- data keys ---------- */

/* The 256-byte data-key block of KS: TLS-EKM or the legacy PRF over the
 * client's pre-master, both randoms and both session ids. */
static bool derive_key2(ShimmerEngine *e, ShimmerKeyState *ks, guint8 key2[SHIMMER_KEY2_LEN])
{
    if (e->tls_ekm) {
        static const char label[] = "EXPORTER-OpenVPN-datakeys";
        int rc = gnutls_prf_rfc5705(ks->tls, strlen(label), label, 0, NULL, SHIMMER_KEY2_LEN,
                                    (char *)key2);
        if (rc != 0)
            shimmer_core_log(e, SHIMMER_LOG_ERROR, "TLS key export failed: %s",
                             gnutls_strerror(rc));
        return rc == 0;
    }
    if (e->role->km_has_pre_master)
        shimmer_kdf_openvpn_prf(ks->pre_master, ks->own_random1, ks->peer_random1, ks->own_random2,
                                ks->peer_random2, e->own_sid, e->remote_sid, key2);
    else
        shimmer_kdf_openvpn_prf(ks->pre_master, ks->peer_random1, ks->own_random1, ks->peer_random2,
                                ks->own_random2, e->remote_sid, e->own_sid, key2);
    return true;
}

bool shimmer_core_install_keys(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    guint8 key2[SHIMMER_KEY2_LEN];
    if (!derive_key2(e, ks, key2)) {
        shimmer_wipe(key2, sizeof(key2));
        return false;
    }
    /* keys[0] carries client to server, keys[1] server to client: each
     * cipher[64] | hmac[64], the implicit IV at the start of hmac. */
    const guint8 *send = key2 + 128 * e->role->data_send_half;
    const guint8 *recv = key2 + 128 * (1 - e->role->data_send_half);
    g_autoptr(GError) error = NULL;
    bool ok = shimmer_dataplane_install(e->dp, ks->key_id, e->cipher, send, send + 64, recv,
                                        recv + 64, &error);
    shimmer_wipe(key2, sizeof(key2));
    shimmer_wipe(ks->pre_master, sizeof(ks->pre_master));
    if (!ok) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "cannot set up the data channel: %s",
                         error->message);
        return false;
    }
    ks->keys_installed = true;
    ks->sending = true;
    ks->established = now;
    sync_dataplane(e);
    shimmer_core_log(e, SHIMMER_LOG_INFO, "data channel key %u: %s, %s", ks->key_id,
                     shimmer_datachan_cipher_name(e->cipher),
                     e->tls_ekm ? "TLS-EKM" : "legacy PRF");
    return true;
}

/* A renegotiated key in slot 2 has its records exchanged: it sends from now
 * on, the previous primary keeps receiving for tran-window. Returns where
 * KS lives now. */
static ShimmerKeyState *rotate_keys(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    if (!shimmer_core_install_keys(e, ks, now))
        return ks;
    ShimmerKeyState old = e->ks[0];
    gint tran = e->cfg->tran_window >= 0 ? e->cfg->tran_window : 3600;
    ks_clear(e, &e->ks[1]);
    e->ks[0] = *ks;
    memset(ks, 0, sizeof(*ks));
    e->ks[1] = old;
    /* Receives at once; sends once settled (settle_keys()). */
    e->ks[0].sending = false;
    e->ks[1].expires = now + (gint64)tran * SHIMMER_US;
    /* The structs moved: point GnuTLS at their new home. */
    gnutls_transport_set_ptr(e->ks[0].tls, &e->ks[0]);
    if (e->ks[1].tls != NULL)
        gnutls_transport_set_ptr(e->ks[1].tls, &e->ks[1]);
    e->stats.renegotiations++;
    sync_dataplane(e);
    return &e->ks[0];
}

/* ---------- reading the TLS stream ---------- */

/* Moves every TLS record that can be decrypted now into KS->app_in. FALSE
 * when the TLS session broke (and the session is gone). */
static bool tls_read_available(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    guint8 buf[4096];
    bool ok = true;
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
            shimmer_core_log(e, SHIMMER_LOG_DEBUG, "key %u: TLS read: %s", ks->key_id,
                             n == 0 ? "closed" : gnutls_strerror((int)n));
            if (n < 0 && gnutls_error_is_fatal((int)n)) {
                g_autofree char *why = g_strdup_printf("TLS error: %s", gnutls_strerror((int)n));
                ok = false;
                lose_session(e, SHIMMER_SESSION_LOST_RETRY, why, now);
            }
            break;
        }
        if (!shimmer_secret_buf_append(&ks->app_in, buf, (gsize)n)) {
            ok = false;
            lose_session(e, SHIMMER_SESSION_LOST_RETRY, "oversized control message", now);
            break;
        }
    }
    shimmer_wipe(buf, sizeof(buf));
    return ok;
}

/* The peer's key-method record, once it is complete: answers it (if we
 * write second), activates the key state and hands a first key to the role
 * or rotates a renegotiated one in. Returns where KS lives afterwards; NULL
 * while the record is incomplete or when the session ended. */
static ShimmerKeyState *receive_key_method(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    g_auto(ShimmerKmStrings) peer = {0};
    gssize used = km_parse(e, ks, &peer);
    if (used < 0) {
        g_autofree char *why =
            g_strdup_printf("the %s's key-method record is malformed", e->role->peer_name);
        lose_session(e, SHIMMER_SESSION_LOST_RETRY, why, now);
        return NULL;
    }
    if (used == 0)
        return NULL;
    shimmer_secret_buf_consume(&ks->app_in, (gsize)used);
    ks->km_received = true;
    guint gen = e->session_gen;
    bool ok = e->role->km_received(e, ks, &peer, now);
    shimmer_km_strings_clear(&peer);
    if (!ok || gen != e->session_gen)
        return NULL;
    if (!ks->km_sent && !send_key_method(e, ks)) {
        lose_session(e, SHIMMER_SESSION_LOST_FATAL, "cannot write the key-method record", now);
        return NULL;
    }
    ks->status = SHIMMER_KS_ACTIVE;
    if (ks->key_id == 0 && e->state != SHIMMER_STATE_CONNECTED) {
        e->role->first_key_active(e, ks, now);
        return gen == e->session_gen ? ks : NULL;
    }
    if (e->cipher_set)
        return rotate_keys(e, ks, now);
    return ks;
}

/* Hands the NUL-terminated control messages in KS->app_in to the role. */
static void dispatch_messages(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    guint gen = e->session_gen;
    while (ks->app_in.len > 0) {
        guint8 *nul = memchr(ks->app_in.data, 0, ks->app_in.len);
        if (nul == NULL) {
            if (ks->app_in.len > MAX_CONTROL_MESSAGE)
                lose_session(e, SHIMMER_SESSION_LOST_RETRY, "oversized control message", now);
            return;
        }
        gsize len = (gsize)(nul - ks->app_in.data);
        /* Messages carry secrets (an auth-token in PUSH_REPLY): the copy is
         * wiped however this iteration ends. */
        g_auto(ShimmerSecretStr) msg = g_strndup((const char *)ks->app_in.data, len);
        shimmer_secret_buf_consume(&ks->app_in, len + 1);
        if (len > 0)
            e->role->control_message(e, ks, msg, now);
        if (gen != e->session_gen)
            return;
    }
}

/* Reads TLS application data: the key-method record first, then messages. */
static void read_app_data(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    if (!tls_read_available(e, ks, now))
        return;
    if (!ks->km_received) {
        ks = receive_key_method(e, ks, now);
        if (ks == NULL)
            return;
    }
    dispatch_messages(e, ks, now);
}

static void drive_tls(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    if (ks->status == SHIMMER_KS_TLS) {
        int rc = gnutls_handshake(ks->tls);
        if (rc == 0) {
            g_autofree char *desc = gnutls_session_get_desc(ks->tls);
            shimmer_core_log(e, SHIMMER_LOG_INFO, "TLS handshake done (key %u): %s", ks->key_id,
                             desc);
            ks->status = SHIMMER_KS_OPEN;
            bool ready = e->role->km_ready == NULL || e->role->km_ready(e, ks, now);
            if (!e->role->km_after_peer && ready && !send_key_method(e, ks)) {
                lose_session(e, SHIMMER_SESSION_LOST_FATAL, "cannot write the key-method record",
                             now);
                return;
            }
        } else if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED &&
                   gnutls_error_is_fatal(rc)) {
            g_autofree char *why = g_strdup_printf("TLS handshake failed: %s", gnutls_strerror(rc));
            shimmer_core_log(e, SHIMMER_LOG_ERROR, "%s", why);
            bool refused =
                rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || rc == GNUTLS_E_CERTIFICATE_ERROR;
            lose_session(e, refused ? SHIMMER_SESSION_LOST_FATAL : SHIMMER_SESSION_LOST_NEXT_PEER,
                         why, now);
            return;
        }
    }
    if (ks->status == SHIMMER_KS_OPEN || ks->status == SHIMMER_KS_ACTIVE)
        read_app_data(e, ks, now);
}

/* ---------- session lifecycle ---------- */

void shimmer_core_reset_session(ShimmerEngine *e)
{
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES; i++)
        ks_clear(e, &e->ks[i]);
    shimmer_dataplane_clear(e->dp);
    e->session_gen++;
    e->have_remote_sid = false;
    e->cipher_set = false;
    e->use_data_v2 = false;
    e->transport_ready = false;
    sync_dataplane(e);
}

void shimmer_core_end(ShimmerEngine *e, ShimmerState final, const char *why)
{
    if (e->state == SHIMMER_STATE_DISCONNECTED || e->state == SHIMMER_STATE_FAILED)
        return;
    shimmer_core_reset_session(e);
    shimmer_core_push_event(e, SHIMMER_EVENT_DISCONNECT_TRANSPORT);
    shimmer_core_set_state(e, final, why);
    shimmer_core_push_event(e, SHIMMER_EVENT_EXIT)->exit.reason = g_strdup(why);
}

bool shimmer_core_session_begin(ShimmerEngine *e, ShimmerCtlwrap *wrap, const guint8 *own_sid,
                                bool is_tcp, gint64 now, GError **error)
{
    shimmer_ctlwrap_free(e->wrap);
    e->wrap = wrap;
    e->is_tcp = is_tcp;
    if (wrap == NULL) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "cannot set up the control channel wrapping");
        return false;
    }
    if (own_sid != NULL) {
        memcpy(e->own_sid, own_sid, sizeof(e->own_sid));
    } else if (!shimmer_core_random(e, e->own_sid, sizeof(e->own_sid))) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "no random numbers for a session id");
        return false;
    }
    e->transport_ready = true;
    e->comp_seen = false;
    e->linger_len = e->linger_pos = 0;
    shimmer_replay_init(&e->ctl_replay, SHIMMER_REPLAY_DEFAULT_WINDOW, 0);
    ShimmerKeyState *ks = &e->ks[0];
    if (!ks_start(e, ks, 0, now, error))
        return false;
    e->next_key_id = 1;
    shimmer_reliable_queue_message(ks->rel, e->role->own_hard_reset(e), NULL, 0, NULL, NULL);
    e->last_recv = e->last_sent = now;
    return true;
}

bool shimmer_core_session_adopt(ShimmerEngine *e, ShimmerCtlwrap *wrap,
                                const guint8 own_sid[SHIMMER_SESSION_ID_LEN],
                                const guint8 peer_sid[SHIMMER_SESSION_ID_LEN], bool is_tcp,
                                gint64 now, GError **error)
{
    if (!shimmer_core_session_begin(e, wrap, own_sid, is_tcp, now, error))
        return false;
    ShimmerKeyState *ks = &e->ks[0];
    ShimmerReliableMessage reset;
    guint32 acks[SHIMMER_RELIABLE_MAX_PENDING_ACKS];
    /* Both resets crossed already: take ours out as sent and acked, and
     * the peer's in as received and acked. */
    if (!shimmer_reliable_next_to_send(ks->rel, now, &reset) ||
        !shimmer_reliable_ack_received(ks->rel, reset.pid) ||
        shimmer_reliable_incoming(ks->rel, 0, NULL, 0) != SHIMMER_RELIABLE_RX_NEW) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "cannot take over the first exchange");
        return false;
    }
    shimmer_reliable_take_acks(ks->rel, acks, G_N_ELEMENTS(acks));
    memcpy(e->remote_sid, peer_sid, sizeof(e->remote_sid));
    e->have_remote_sid = true;
    shimmer_ctlwrap_set_next_pid(e->wrap, 2);
    ks->status = SHIMMER_KS_TLS;
    return true;
}

ShimmerKeyState *shimmer_core_start_renegotiation(ShimmerEngine *e, guint8 key_id, gint64 now)
{
    ShimmerKeyState *ks = &e->ks[2];
    g_autoptr(GError) error = NULL;
    if (!ks_start(e, ks, key_id, now, &error)) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "renegotiation: %s", error->message);
        ks_clear(e, ks);
        return NULL;
    }
    e->next_key_id = key_id == SHIMMER_KEY_ID_MAX ? 1 : key_id + 1;
    shimmer_reliable_queue_message(ks->rel, SHIMMER_OP_SOFT_RESET_V1, NULL, 0, NULL, NULL);
    ks->status = SHIMMER_KS_TLS;
    shimmer_core_log(e, SHIMMER_LOG_INFO, "renegotiating: key %u", key_id);
    return ks;
}

/* ---------- receiving control packets ---------- */

static ShimmerDropReason unwrap_drop_reason(ShimmerCtlwrapError err)
{
    switch (err) {
    case SHIMMER_CTLWRAP_ERR_AUTH:
    case SHIMMER_CTLWRAP_ERR_WKC_AUTH:
        return SHIMMER_DROP_AUTH;
    case SHIMMER_CTLWRAP_ERR_BAD_OPCODE:
    case SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY:
        return SHIMMER_DROP_UNEXPECTED;
    default:
        return SHIMMER_DROP_MALFORMED;
    }
}

/* Unwraps, replay-checks and parses a control packet into *CP (its
 * payload points into e->scratch, *PLAIN_LEN bytes to wipe afterwards). */
static ShimmerDropReason parse_control(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now,
                                       ShimmerControlPacket *cp, gsize *plain_len)
{
    ShimmerCtlwrapInfo info = {0};
    ShimmerCtlwrapError err =
        shimmer_ctlwrap_unwrap(e->wrap, pkt, len, e->scratch, sizeof(e->scratch), plain_len, &info);
    if (err != SHIMMER_CTLWRAP_OK) {
        shimmer_core_log(e, SHIMMER_LOG_DEBUG, "control packet dropped: %s",
                         shimmer_ctlwrap_error_to_string(err));
        *plain_len = 0; /* unwrap wiped it */
        return unwrap_drop_reason(err);
    }
    if (info.has_replay &&
        shimmer_replay_check(&e->ctl_replay, info.replay_pid, now) != SHIMMER_REPLAY_OK)
        return SHIMMER_DROP_REPLAY;
    if (shimmer_packet_parse_control(e->scratch, *plain_len, cp) != SHIMMER_PACKET_OK)
        return SHIMMER_DROP_MALFORMED;
    if (info.has_replay)
        shimmer_replay_update(&e->ctl_replay, info.replay_pid, now);
    return SHIMMER_DROP_NONE;
}

/* The key state an authenticated control packet belongs to, after the
 * session-id checks; NULL with *DROP set when it belongs to none. */
static ShimmerKeyState *control_key_state(ShimmerEngine *e, const ShimmerControlPacket *cp,
                                          gint64 now, ShimmerDropReason *drop)
{
    /* The peer's session id must not change, and acks must name ours. */
    if ((e->have_remote_sid && memcmp(cp->session_id, e->remote_sid, 8) != 0) ||
        (cp->n_acks > 0 && memcmp(cp->remote_session_id, e->own_sid, 8) != 0)) {
        *drop = SHIMMER_DROP_WRONG_SESSION;
        return NULL;
    }
    ShimmerKeyState *ks = ks_by_id(e, cp->key_id);
    if (ks != NULL && ks->retired) {
        *drop = SHIMMER_DROP_NO_KEY;
        return NULL;
    }
    if (e->role->peer_hard_resets & (1u << cp->opcode)) {
        ks = e->role->accept_hard_reset(e, cp, drop);
        if (ks == NULL)
            return NULL;
    } else if (!e->have_remote_sid) {
        /* Nothing but the peer's reset can name its session. */
        *drop = SHIMMER_DROP_NO_SESSION;
        return NULL;
    } else if (cp->opcode == SHIMMER_OP_SOFT_RESET_V1 && ks == NULL &&
               e->state == SHIMMER_STATE_CONNECTED) {
        /* The peer starts a renegotiation on a new key id. */
        ks = shimmer_core_start_renegotiation(e, cp->key_id, now);
    }
    if (ks == NULL)
        *drop = SHIMMER_DROP_NO_KEY;
    return ks;
}

/* Acks and the message of an accepted control packet into KS's reliable
 * layer. */
static void control_to_reliable(ShimmerEngine *e, ShimmerKeyState *ks,
                                const ShimmerControlPacket *cp, gint64 now)
{
    for (guint i = 0; i < cp->n_acks; i++)
        shimmer_reliable_ack_received(ks->rel, cp->acks[i]);
    feed_reliable(ks);
    if (!cp->has_msg_pid)
        return;
    bool carries = cp->opcode == SHIMMER_OP_CONTROL_V1 || cp->opcode == SHIMMER_OP_CONTROL_WKC_V1;
    ShimmerReliableRx rx =
        shimmer_reliable_incoming(ks->rel, cp->msg_pid, cp->payload, carries ? cp->payload_len : 0);
    if (rx == SHIMMER_RELIABLE_RX_NEW && (e->role->peer_hard_resets & (1u << cp->opcode))) {
        e->role->hard_reset_received(e, ks, now);
        ks->status = SHIMMER_KS_TLS;
    }
}

static ShimmerDropReason recv_control(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now)
{
    if (e->wrap == NULL || !e->transport_ready)
        return SHIMMER_DROP_NO_SESSION;
    ShimmerControlPacket cp;
    gsize plain_len = 0;
    ShimmerDropReason drop = parse_control(e, pkt, len, now, &cp, &plain_len);
    ShimmerKeyState *ks = NULL;
    if (drop == SHIMMER_DROP_NONE) {
        shimmer_core_log(e, SHIMMER_LOG_DEBUG, "control in: %s key %u pid %u acks %u len %zu",
                         shimmer_packet_opcode_name(cp.opcode), cp.key_id,
                         cp.has_msg_pid ? cp.msg_pid : 0, cp.n_acks, cp.payload_len);
        ks = control_key_state(e, &cp, now, &drop);
    }
    if (ks != NULL) {
        e->last_recv = now;
        e->stats.link_bytes_in += len;
        control_to_reliable(e, ks, &cp, now);
    }
    shimmer_wipe(e->scratch, plain_len);
    if (ks != NULL)
        drive_tls(e, ks, now);
    return drop;
}

/* ---------- data channel ---------- */

/* Once per session: the peer compresses what it sends. */
static void warn_compression(ShimmerEngine *e)
{
    if (!shimmer_dataplane_take_comp_seen(e->dp) || e->comp_seen)
        return;
    e->comp_seen = true;
    shimmer_core_log(e, SHIMMER_LOG_WARNING,
                     "the %s compresses the packets it sends: an attacker who can inject "
                     "traffic may learn secrets from the compressed sizes (VORACLE); ask "
                     "for compression to be turned off",
                     e->role->peer_name);
}

/* A data packet on the engine's own lane: its plaintext for the tun in
 * OUT[0..*OUT_LEN), or consumed (*OUT_LEN 0: ping, OCC). */
static ShimmerDropReason recv_data(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now,
                                   guint8 *out, gsize cap, gsize *out_len)
{
    ShimmerDropReason why = shimmer_dataplane_open_copy(e->dp, pkt, len, now, out, cap, out_len);
    warn_compression(e);
    if (why == SHIMMER_DROP_NONE && shimmer_dataplane_take_peer_exit(e->dp)) {
        g_autofree char *reason = g_strdup_printf("the %s is shutting down", e->role->peer_name);
        lose_session(e, SHIMMER_SESSION_LOST_NEXT_PEER, reason, now);
    }
    return why;
}

ShimmerRecvResult shimmer_engine_recv(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now,
                                      guint8 *tun_out, gsize tun_cap, gsize *tun_len,
                                      ShimmerDropReason *drop)
{
    *tun_len = 0;
    ShimmerDropReason why;
    guint op = len > 0 ? shimmer_packet_opcode(pkt[0]) : 0;
    if (len == 0)
        why = SHIMMER_DROP_MALFORMED;
    else if (op == SHIMMER_OP_DATA_V1 || op == SHIMMER_OP_DATA_V2)
        why = recv_data(e, pkt, len, now, tun_out, tun_cap, tun_len); /* counted by the plane */
    else if (e->role->peer_control_opcodes & (1u << op))
        why = recv_control(e, pkt, len, now);
    else if (shimmer_packet_opcode_is_control(op))
        why = SHIMMER_DROP_UNEXPECTED;
    else
        why = SHIMMER_DROP_MALFORMED;
    if (drop != NULL)
        *drop = why;
    if (why != SHIMMER_DROP_NONE) {
        *tun_len = 0;
        if (op != SHIMMER_OP_DATA_V1 && op != SHIMMER_OP_DATA_V2)
            e->stats.dropped[why]++;
        return SHIMMER_RECV_DROPPED;
    }
    return *tun_len > 0 ? SHIMMER_RECV_TUN : SHIMMER_RECV_CONSUMED;
}

G_STATIC_ASSERT(SHIMMER_ENGINE_DATA_OVERHEAD >=
                SHIMMER_DATACHAN_V2_OVERHEAD + SHIMMER_COMPFRAME_MAX_OVERHEAD);
G_STATIC_ASSERT(SHIMMER_ENGINE_HEADROOM >=
                SHIMMER_DATACHAN_V2_OVERHEAD + SHIMMER_COMPFRAME_MAX_OVERHEAD);
G_STATIC_ASSERT(SHIMMER_ENGINE_TAILROOM >= SHIMMER_COMPFRAME_TAILROOM);
G_STATIC_ASSERT(SHIMMER_DATAPLANE_MAX_LANES <= SHIMMER_DATACHAN_MAX_LANES);

ShimmerEncryptResult shimmer_engine_encrypt(ShimmerEngine *e, const guint8 *ip, gsize len,
                                            guint8 *out, gsize out_cap, gint64 now, gsize *out_len)
{
    *out_len = 0;
    ShimmerKeyState *ks = &e->ks[0];
    ShimmerEncryptResult r;
    if (e->state != SHIMMER_STATE_CONNECTED || !ks->keys_installed)
        r = SHIMMER_ENCRYPT_NOT_CONNECTED;
    else if (len == 0)
        r = SHIMMER_ENCRYPT_EMPTY;
    else if (len > SHIMMER_ENGINE_MAX_PLAIN || out_cap < len + SHIMMER_ENGINE_DATA_OVERHEAD)
        r = SHIMMER_ENCRYPT_TOO_BIG;
    else
        r = shimmer_dataplane_seal_copy(e->dp, ip, len, out, out_cap, out_len);
    if (r != SHIMMER_ENCRYPT_OK) {
        *out_len = 0;
        e->stats.not_encrypted[r]++;
        return r;
    }
    e->stats.tun_bytes_in += len;
    e->stats.tun_packets_in++;
    e->stats.link_bytes_out += *out_len;
    e->last_sent = now;
    return SHIMMER_ENCRYPT_OK;
}

/* The engine's own data packets, when due: a keepalive ping after ping
 * seconds of silence while connected, OCC EXIT once a second while
 * stopping. Returns the length written to BUF, 0 if none is due. */
static gsize write_own_data(ShimmerEngine *e, guint8 *buf, gsize cap, gint64 now)
{
    gsize n = 0;
    if (e->state == SHIMMER_STATE_CONNECTED && e->ping_s > 0 &&
        now >= last_sent(e) + (gint64)e->ping_s * SHIMMER_US) {
        /* Due again in ping seconds even if this one cannot be sealed (out
         * of packet ids until the renegotiation ends): never a deadline
         * stuck in the past. */
        e->last_sent = now;
        shimmer_dataplane_seal_copy(e->dp, ping_magic, sizeof(ping_magic), buf, cap, &n);
    } else if (e->state == SHIMMER_STATE_DISCONNECTING && e->exit_pings_left &&
               now >= e->next_exit_ping) {
        guint8 occ[sizeof(occ_magic) + 1];
        memcpy(occ, occ_magic, sizeof(occ_magic));
        occ[sizeof(occ_magic)] = OCC_EXIT;
        e->exit_pings_left--;
        e->next_exit_ping = now + SHIMMER_US;
        shimmer_dataplane_seal_copy(e->dp, occ, sizeof(occ), buf, cap, &n);
    }
    return n;
}

/* How long a renegotiated key that both ends should have waits for a data
 * packet from the peer on it before it sends anyway. */
#define SETTLE_WAIT (1 * SHIMMER_US)

/* A renegotiated key takes over sending only once the peer surely has it.
 * An OpenVPN server sets up its data keys only when its key-method record
 * is acked, so data on the new key that overtook that ack is dropped ("not
 * initialized"), and with data sent from other threads it easily does, as
 * does data sent while the ack was lost. So the new key sends as soon as a
 * data packet from the peer arrives on it (the peer has it then), or at the
 * latest SETTLE_WAIT after the exchange settled (our record acked, our acks
 * of the peer's sent: the runner sends each packet before it calls
 * write_pkt() again, so at the start of a call the acks taken before are on
 * their way). The old key keeps sending meanwhile; it is the peer's lame
 * duck, valid for tran-window. */
static void settle_keys(ShimmerEngine *e, gint64 now)
{
    ShimmerKeyState *ks = &e->ks[0];
    if (ks->status != SHIMMER_KS_ACTIVE || !ks->keys_installed || ks->sending || ks->rel == NULL)
        return;
    /* The old key running out of packet ids cannot wait. */
    const ShimmerKeyState *old = &e->ks[1];
    bool now_or_never =
        !old->keys_installed || shimmer_dataplane_key_needs_rekey(e->dp, old->key_id);
    bool heard = shimmer_dataplane_key_heard(e->dp, ks->key_id);
    if (!heard && !now_or_never) {
        if (shimmer_reliable_unacked(ks->rel) > 0 || shimmer_reliable_has_pending_acks(ks->rel)) {
            ks->settled_at = 0;
            return;
        }
        if (ks->settled_at == 0)
            ks->settled_at = now;
        if (now < ks->settled_at + SETTLE_WAIT)
            return;
    }
    ks->sending = true;
    sync_dataplane(e);
}

gssize shimmer_engine_write_pkt(ShimmerEngine *e, guint8 *buf, gsize cap, gint64 now)
{
    if (cap < SHIMMER_ENGINE_MAX_PACKET)
        return -1;
    settle_keys(e, now);
    gsize n = take_linger(e, buf);
    if (n > 0)
        return (gssize)n;
    if (!e->transport_ready)
        return 0;
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES && n == 0; i++)
        n = write_control(e, &e->ks[i], buf, cap, now);
    if (n == 0)
        n = write_own_data(e, buf, cap, now);
    if (n == 0)
        ks_retire_if_quiet(&e->ks[1]);
    if (n > 0) {
        e->stats.link_bytes_out += n;
        e->last_sent = now;
    }
    return (gssize)n;
}

/* ---------- timers ---------- */

static gint64 hand_window(const ShimmerEngine *e)
{
    return (gint64)(e->cfg->hand_window >= 0 ? e->cfg->hand_window : 60) * SHIMMER_US;
}

/* When the primary key is due for renegotiation: reneg-sec after it was
 * installed, or at once when reneg-bytes, reneg-pkts or its packet ids ran
 * out. G_MAXINT64: not while nothing changes. */
static gint64 reneg_due_at(const ShimmerEngine *e)
{
    const ShimmerConfig *cfg = e->cfg;
    const ShimmerKeyState *p = &e->ks[0];
    if (!p->established)
        return G_MAXINT64;
    guint64 bytes = 0, packets = 0;
    if (p->keys_installed)
        shimmer_dataplane_key_usage(e->dp, p->key_id, &bytes, &packets);
    if ((cfg->reneg_bytes > 0 && bytes >= (guint64)cfg->reneg_bytes) ||
        (cfg->reneg_pkts > 0 && packets >= (guint64)cfg->reneg_pkts) ||
        (p->keys_installed && shimmer_dataplane_key_needs_rekey(e->dp, p->key_id)))
        return p->established;
    gint64 reneg = cfg->reneg_sec >= 0 ? cfg->reneg_sec : 3600;
    return reneg > 0 ? p->established + MAX(reneg * SHIMMER_US - e->reneg_jitter, SHIMMER_US)
                     : G_MAXINT64;
}

gint64 shimmer_engine_next_deadline(ShimmerEngine *e)
{
    gint64 d = e->role->next_deadline(e);
    if (e->state == SHIMMER_STATE_DISCONNECTING) {
        /* Only the exit timers run now (handle_timeout serves nothing else). */
        d = MIN(d, e->exit_at);
        if (e->exit_pings_left)
            d = MIN(d, e->next_exit_ping);
        return d;
    }
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES; i++) {
        ShimmerKeyState *ks = &e->ks[i];
        if (ks->retired && ks->expires)
            d = MIN(d, ks->expires);
        if (ks->status == SHIMMER_KS_NONE || ks->rel == NULL)
            continue;
        gint64 r = shimmer_reliable_next_deadline(ks->rel);
        if (r != SHIMMER_RELIABLE_NO_DEADLINE)
            d = MIN(d, r);
        if (ks->status != SHIMMER_KS_ACTIVE)
            d = MIN(d, ks->started + hand_window(e));
        if (ks->expires)
            d = MIN(d, ks->expires);
    }
    if (e->state == SHIMMER_STATE_CONNECTED) {
        if (e->ping_s > 0)
            d = MIN(d, last_sent(e) + (gint64)e->ping_s * SHIMMER_US);
        if (e->ping_restart_s > 0)
            d = MIN(d, last_recv(e) + (gint64)e->ping_restart_s * SHIMMER_US);
        if (shimmer_dataplane_peer_exit_pending(e->dp))
            d = G_MININT64;
        const ShimmerKeyState *p = &e->ks[0];
        if (p->keys_installed && !p->sending) {
            if (shimmer_dataplane_key_heard(e->dp, p->key_id))
                d = G_MININT64;
            else if (p->settled_at != 0)
                d = MIN(d, p->settled_at + SETTLE_WAIT);
        }
        if (e->ks[2].status == SHIMMER_KS_NONE)
            d = MIN(d, reneg_due_at(e));
    }
    return d;
}

/* Stopping: the end comes at exit_at (the OCC EXIT packets due before
 * come out of write_pkt). */
static void serve_exit_timers(ShimmerEngine *e, gint64 now)
{
    if (now >= e->exit_at)
        shimmer_core_end(e, SHIMMER_STATE_DISCONNECTED, "stopped");
}

/* hand-window, lame ducks, and TLS work a timer may unblock. FALSE when the
 * session went away meanwhile. */
static bool serve_key_state_timers(ShimmerEngine *e, gint64 now)
{
    guint gen = e->session_gen;
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES; i++) {
        ShimmerKeyState *ks = &e->ks[i];
        if (ks->status == SHIMMER_KS_NONE)
            continue;
        if (ks->status != SHIMMER_KS_ACTIVE && now >= ks->started + hand_window(e)) {
            if (i == 0 && e->state != SHIMMER_STATE_CONNECTED) {
                lose_session(e, SHIMMER_SESSION_LOST_NEXT_PEER,
                             "TLS handshake did not finish in hand-window", now);
                return false;
            }
            shimmer_core_log(e, SHIMMER_LOG_WARNING, "renegotiation of key %u timed out",
                             ks->key_id);
            ks_clear(e, ks);
            continue;
        }
        if (ks->expires && now >= ks->expires) {
            ks_clear(e, ks);
            continue;
        }
        if (ks->retired)
            continue;
        drive_tls(e, ks, now);
        if (gen != e->session_gen)
            return false;
    }
    return true;
}

/* ping-restart and renegotiation of a connected session (its keepalive
 * pings come out of write_pkt). */
static void serve_connected_timers(ShimmerEngine *e, gint64 now)
{
    if (shimmer_dataplane_take_peer_exit(e->dp)) {
        g_autofree char *why = g_strdup_printf("the %s is shutting down", e->role->peer_name);
        lose_session(e, SHIMMER_SESSION_LOST_NEXT_PEER, why, now);
        return;
    }
    if (e->ping_restart_s > 0 && now >= last_recv(e) + (gint64)e->ping_restart_s * SHIMMER_US) {
        lose_session(e, SHIMMER_SESSION_LOST_RETRY, "nothing received for ping-restart seconds",
                     now);
        return;
    }
    if (e->ks[2].status == SHIMMER_KS_NONE && now >= reneg_due_at(e)) {
        ShimmerKeyState *n = shimmer_core_start_renegotiation(e, e->next_key_id, now);
        if (n == NULL) {
            /* Otherwise the deadline would stay in the past. */
            lose_session(e, SHIMMER_SESSION_LOST_RETRY, "cannot start a renegotiation", now);
            return;
        }
        drive_tls(e, n, now);
    }
}

void shimmer_engine_handle_timeout(ShimmerEngine *e, gint64 now)
{
    if (e->role->handle_timeout(e, now))
        return;
    settle_keys(e, now);
    warn_compression(e);
    if (e->state == SHIMMER_STATE_DISCONNECTING) {
        serve_exit_timers(e, now);
        return;
    }
    if (!serve_key_state_timers(e, now))
        return;
    if (e->state == SHIMMER_STATE_CONNECTED)
        serve_connected_timers(e, now);
}

/* ---------- the end ---------- */

void shimmer_core_stop_now(ShimmerEngine *e, const char *last_message, gint64 now)
{
    /* Nothing to wait for, but observers still see the way down. */
    shimmer_core_set_state(e, SHIMMER_STATE_DISCONNECTING, NULL);
    if (last_message != NULL && e->ks[0].status == SHIMMER_KS_ACTIVE && e->transport_ready) {
        /* Made now, while the session exists; handed out by write_pkt. */
        shimmer_core_send_message(e, &e->ks[0], last_message);
        linger_control(e, &e->ks[0], now);
    }
    shimmer_core_end(e, SHIMMER_STATE_DISCONNECTED, "stopped");
}

void shimmer_core_stop_after(ShimmerEngine *e, const char *message, guint occ_exits, gint64 wait,
                             gint64 now)
{
    shimmer_core_set_state(e, SHIMMER_STATE_DISCONNECTING, NULL);
    if (message != NULL && e->ks[0].status == SHIMMER_KS_ACTIVE)
        shimmer_core_send_message(e, &e->ks[0], message);
    e->exit_pings_left = occ_exits;
    e->next_exit_ping = now;
    e->exit_at = now + wait;
}

void shimmer_engine_stop(ShimmerEngine *e, gint64 now)
{
    if (e->state == SHIMMER_STATE_DISCONNECTED || e->state == SHIMMER_STATE_FAILED ||
        e->state == SHIMMER_STATE_DISCONNECTING)
        return;
    e->role->stop(e, now);
}

/* ---------- accessors ---------- */

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
    shimmer_dataplane_add_stats(e->dp, out);
}

gboolean shimmer_engine_set_lanes(ShimmerEngine *e, guint n_lanes)
{
    return shimmer_dataplane_set_lanes(e->dp, n_lanes);
}

ShimmerDataPlane *shimmer_engine_get_dataplane(ShimmerEngine *e)
{
    return e->dp;
}

guint shimmer_engine_get_mss(const ShimmerEngine *e, gboolean ipv6)
{
    gint mssfix = e->mssfix;
    if (mssfix == 0)
        return 0;
    gboolean encap = e->cfg->mssfix_mtu, fixed = e->cfg->mssfix_fixed;
    if (mssfix < 0) {
        mssfix = 1492; /* OpenVPN 2.6's default: 1492 mtu */
        encap = TRUE;
        fixed = FALSE;
    }
    /* The inner IP and TCP headers (an IPv6 packet's are 20 bytes more). */
    gint inner = (ipv6 ? 40 : 20) + 20;
    gint mss;
    if (fixed) {
        /* `mssfix N fixed`: N is the largest inner packet. */
        mss = mssfix - inner;
    } else {
        /* `mssfix N`: N bounds the encrypted payload of a UDP datagram (or
         * TCP segment); with `mtu` it bounds the whole outer IP packet. As
         * OpenVPN counts it: the data channel's own header and tag, the TCP
         * length prefix, the compression framing byte, the outer headers. */
        gint overhead =
            (e->use_data_v2 ? SHIMMER_DATACHAN_V2_OVERHEAD : SHIMMER_DATACHAN_V1_OVERHEAD) +
            (e->is_tcp ? 2 : 0) + (e->comp != SHIMMER_COMP_NONE ? 1 : 0);
        if (encap)
            overhead += (e->transport_ipv6 ? 40 : 20) + (e->is_tcp ? 20 : 8);
        mss = mssfix - overhead - inner;
    }
    return mss > 0 ? (guint)mss : 0;
}

void shimmer_engine_set_key_passphrase(ShimmerEngine *e, const char *passphrase)
{
    shimmer_str_free_secret(e->key_passphrase);
    e->key_passphrase = g_strdup(passphrase);
}

/* ---------- certificates and construction ---------- */

/* The longest chain a peer may send (GnuTLS's own verification depth). */
#define MAX_PEER_CHAIN 16

static char *crt_subject(gnutls_x509_crt_t crt)
{
    gnutls_datum_t dn = {0};
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) != 0)
        return g_strdup("?");
    char *s = g_strndup((const char *)dn.data, dn.size);
    gnutls_free(dn.data);
    return s;
}

static char *format_time(time_t t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc((gint64)t);
    return dt != NULL ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

/* CRT's validity period against the wall clock NOW. The subject is
 * only read for the message when it fails: reading it costs about as much
 * as the check, once per certificate and handshake. */
static bool valid_at(ShimmerEngine *e, gnutls_x509_crt_t crt, gint64 now)
{
    time_t from = gnutls_x509_crt_get_activation_time(crt);
    time_t to = gnutls_x509_crt_get_expiration_time(crt);
    bool early = from == (time_t)-1 || now < (gint64)from;
    if (!early && (to == (time_t)-1 || now <= (gint64)to))
        return true;
    g_autofree char *subject = crt_subject(crt);
    g_autofree char *when = format_time(early ? from : to);
    if (early)
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the certificate '%s' is not valid before %s",
                         subject, when);
    else
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the certificate '%s' expired at %s", subject, when);
    return false;
}

/* CRT against the CRLs of its issuer: not revoked, and the CRL current
 * at NOW (crl.h). */
static bool crl_allows(ShimmerEngine *e, gnutls_x509_crt_t crt, gint64 now)
{
    g_autoptr(GError) error = NULL;
    if (e->crls == NULL || shimmer_crl_set_check(e->crls, crt, now, &error))
        return true;
    g_autofree char *subject = crt_subject(crt);
    shimmer_core_log(e, SHIMMER_LOG_ERROR, "the certificate '%s': %s", subject, error->message);
    return false;
}

/* Whether CRT is self-issued: its issuer and subject names are the same
 * bytes, and GnuTLS agrees. GnuTLS alone compares names that differ as
 * text, both parsed and printed: a leaf's two names always differ, and
 * that cost as much as a tenth of a server's handshake. */
static bool self_issued(gnutls_x509_crt_t crt)
{
    gnutls_datum_t issuer = {0}, subject = {0};
    bool same = gnutls_x509_crt_get_raw_issuer_dn(crt, &issuer) == 0 &&
                gnutls_x509_crt_get_raw_dn(crt, &subject) == 0 && issuer.size == subject.size &&
                memcmp(issuer.data, subject.data, issuer.size) == 0;
    gnutls_free(issuer.data);
    gnutls_free(subject.data);
    return same && gnutls_x509_crt_check_issuer(crt, crt);
}

/* Walks from the leaf CHAIN[0] up to a self-signed root (through the
 * peer's chain, then the trusted CAs) and checks every certificate's
 * validity period, and its revocation by the CRLs of its issuer (their
 * validity included), against the wall clock NOW. GnuTLS verified
 * signatures and usages with its own time checks off: it would read the
 * system clock. CRLs are read by crl.h, not GnuTLS: GnuTLS refuses CRLs
 * whose dates are not DER, which some providers ship. */
static bool chain_valid_at(ShimmerEngine *e, gnutls_x509_crt_t *chain, unsigned int n, gint64 now)
{
    gnutls_x509_crt_t crt = chain[0];
    for (unsigned int depth = 0; crt != NULL && depth < MAX_PEER_CHAIN; depth++) {
        if (!valid_at(e, crt, now))
            return false;
        /* A root whose names are encoded apart is walked as its own
         * issuer (the trust list finds it) until the depth ends the walk:
         * the same checks, repeated. */
        if (self_issued(crt))
            return true; /* the root; its CRL is no concern of its own */
        if (!crl_allows(e, crt, now))
            return false;
        gnutls_x509_crt_t issuer = NULL;
        for (unsigned int i = 0; i < n && issuer == NULL; i++) {
            if (chain[i] != crt && gnutls_x509_crt_check_issuer(crt, chain[i]))
                issuer = chain[i];
        }
        /* Owned by the trust list (no GNUTLS_TL_GET_COPY). */
        if (issuer == NULL && gnutls_x509_trust_list_get_issuer(e->trust, crt, &issuer, 0) != 0)
            issuer = NULL;
        crt = issuer;
    }
    return true;
}

/* The peer's chain against the configured CAs and CRLs: signatures, the
 * key purpose the peer's role needs, revocation, and validity at the
 * injected wall clock. 0 or a GnuTLS error. On 0, *LEAF is the peer's
 * certificate, read (the caller deinits it), so that it is parsed once. */
static int verify_chain(ShimmerEngine *e, const gnutls_datum_t *der, unsigned int n,
                        gnutls_x509_crt_t *leaf)
{
    const char *peer = e->role->peer_name;
    if (e->trust == NULL) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "no CA to verify the %s's certificate against",
                         peer);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    if (n > MAX_PEER_CHAIN) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the %s's certificate chain is too long", peer);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    gnutls_x509_crt_t chain[MAX_PEER_CHAIN] = {0};
    int rc = 0;
    for (unsigned int i = 0; i < n && rc == 0; i++) {
        rc = gnutls_x509_crt_init(&chain[i]);
        if (rc == 0)
            rc = gnutls_x509_crt_import(chain[i], &der[i], GNUTLS_X509_FMT_DER);
    }
    unsigned int status = 0;
    /* As OpenSSL does for OpenVPN: a certificate whose extended key usage
     * excludes the peer's role cannot be the peer's. */
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)e->role->peer_key_purpose,
    };
    if (rc == 0)
        rc = gnutls_x509_trust_list_verify_crt2(e->trust, chain, n, &purpose, 1,
                                                GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
                                                    GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS,
                                                &status, NULL);
    if (rc != 0 || status != 0) {
        gnutls_datum_t out = {0};
        if (rc == 0)
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0);
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the %s's certificate is not trusted: %s", peer,
                         out.data ? (const char *)out.data : gnutls_strerror(rc));
        gnutls_free(out.data);
        rc = GNUTLS_E_CERTIFICATE_ERROR;
    } else if (!chain_valid_at(e, chain, n, e->hooks.realtime(e->hooks.user))) {
        rc = GNUTLS_E_CERTIFICATE_ERROR;
    }
    if (rc == 0) {
        *leaf = chain[0];
        chain[0] = NULL;
    }
    for (unsigned int i = 0; i < n; i++) {
        if (chain[i] != NULL)
            gnutls_x509_crt_deinit(chain[i]);
    }
    return rc;
}

static int verify_peer(gnutls_session_t session)
{
    ShimmerEngine *e = gnutls_session_get_ptr(session);
    const ShimmerConfig *cfg = e->cfg;
    const char *peer = e->role->peer_name;
    unsigned int n = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &n);
    if (chain == NULL || n == 0) {
        /* A server's verify-client-cert optional or none (its parser only
         * lets that through with a password check). */
        if (cfg->verify_client_cert == SHIMMER_VERIFY_CLIENT_CERT_OPTIONAL ||
            cfg->verify_client_cert == SHIMMER_VERIFY_CLIENT_CERT_NONE)
            return 0;
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the %s sent no certificate", peer);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    bool fingerprint_ok = false;
    if (cfg->peer_fingerprints->len > 0) {
        guint8 fp[32];
        gnutls_hash_fast(GNUTLS_DIG_SHA256, chain[0].data, chain[0].size, fp);
        for (guint i = 0; i < cfg->peer_fingerprints->len; i++)
            fingerprint_ok |= memcmp(fp, cfg->peer_fingerprints->data + (gsize)i * 32, 32) == 0;
        if (!fingerprint_ok && !cfg->ca.present) {
            shimmer_core_log(e, SHIMMER_LOG_ERROR,
                             "the %s's certificate matches no peer-fingerprint", peer);
            return GNUTLS_E_CERTIFICATE_ERROR;
        }
    }
    gnutls_x509_crt_t crt = NULL;
    if (!fingerprint_ok || cfg->ca.present) {
        int rc = verify_chain(e, chain, n, &crt);
        if (rc != 0)
            return rc;
    } else if (gnutls_x509_crt_init(&crt) != 0 ||
               gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) != 0) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "cannot read the %s's certificate", peer);
        if (crt != NULL)
            gnutls_x509_crt_deinit(crt);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    int rc = e->role->check_peer_cert(e, crt);
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* The CAs and CRLs the peer's chain is verified against. CRLs are checked
 * against the CAs here, but their times only when a chain is verified. */
static bool load_trust(ShimmerEngine *e, GError **error)
{
    const ShimmerConfig *cfg = e->cfg;
    if (!cfg->ca.present)
        return true;
    if (e->hooks.realtime == NULL) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0,
                    "certificates cannot be checked without a wall clock (the realtime hook)");
        return false;
    }
    gnutls_datum_t ca = {cfg->ca.data, (unsigned int)cfg->ca.len};
    int rc = gnutls_x509_trust_list_init(&e->trust, 0);
    if (rc == 0)
        rc = gnutls_x509_trust_list_add_trust_mem(e->trust, &ca, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
    if (rc <= 0) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "cannot load the CA certificates: %s",
                    rc == 0 ? "none found" : gnutls_strerror(rc));
        return false;
    }
    if (!cfg->crl_verify.present)
        return true;
    g_autoptr(GError) crl_error = NULL;
    g_autoptr(GPtrArray) unused = g_ptr_array_new();
    e->crls = shimmer_crl_set_new(cfg->crl_verify.data, cfg->crl_verify.len, &crl_error);
    if (e->crls == NULL ||
        !shimmer_crl_set_verify(e->crls, cfg->ca.data, cfg->ca.len, unused, &crl_error)) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "cannot use the CRL: %s", crl_error->message);
        return false;
    }
    /* As OpenSSL does: a CRL no CA of ours signed proves nothing. */
    for (guint i = 0; i < unused->len; i++)
        shimmer_core_log(e, SHIMMER_LOG_WARNING,
                         "crl-verify: the CRL of '%s' is not issued by a CA of the profile; "
                         "it is not used",
                         shimmer_crl_set_issuer(e->crls, GPOINTER_TO_UINT(unused->pdata[i])));
    return true;
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
    if (!load_trust(e, error))
        return false;
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
        /* extra-certs follow our certificate in the chain we send. */
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

/* The data plane of an engine of CFG: its renegotiation limits (to wake
 * the engine's thread) and its replay window. */
static ShimmerDataPlane *core_new_dataplane(const ShimmerConfig *cfg)
{
    ShimmerDataPlane *dp = shimmer_dataplane_new();
    shimmer_dataplane_set_rekey_limits(dp, cfg->reneg_bytes > 0 ? (guint64)cfg->reneg_bytes : 0,
                                       cfg->reneg_pkts > 0 ? (guint64)cfg->reneg_pkts : 0);
    shimmer_dataplane_set_replay(dp, cfg->replay_window,
                                 cfg->replay_time >= 0 ? (guint)cfg->replay_time
                                                       : SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S);
    return dp;
}

ShimmerEngine *shimmer_core_new(const ShimmerConfig *cfg, const ShimmerEngineHooks *hooks,
                                const ShimmerEngineRole *role, gpointer role_data, GError **error)
{
    ShimmerEngine *e = g_new0(ShimmerEngine, 1);
    e->cfg = cfg;
    if (hooks != NULL)
        e->hooks = *hooks;
    e->role = role;
    e->role_data = role_data;
    e->events = g_queue_new();
    e->comp = cfg->comp;
    e->comp_alg = cfg->comp_alg;
    e->mssfix = cfg->mssfix;
    /* tls-cipher, tls-ciphersuites, tls-groups, tls-cert-profile and the
     * versions; the parser refused every profile for which this fails. */
    g_autoptr(GError) perr = NULL;
    e->priority = shimmer_config_tls_priority(cfg, NULL, &perr);
    if (e->priority == NULL) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "the TLS restrictions cannot be used: %s",
                    perr->message);
        shimmer_engine_free(e);
        return NULL;
    }
    /* A server starts a TLS session per client and per renegotiation:
     * the string is parsed once, not at each. */
    if (gnutls_priority_init(&e->priority_cache, e->priority, NULL) < 0)
        e->priority_cache = NULL;
    e->dp = core_new_dataplane(cfg);
    if (!load_credentials(e, error)) {
        shimmer_engine_free(e);
        return NULL;
    }
    return e;
}

ShimmerCtlwrap *shimmer_core_make_wrap(const ShimmerConfig *cfg, ShimmerCtlwrapRole role)
{
    switch (cfg->wrap) {
    case SHIMMER_WRAP_TLS_AUTH: {
        ShimmerCtlwrapDigest d = SHIMMER_CTLWRAP_DIGEST_SHA1;
        if (cfg->auth == SHIMMER_DIGEST_SHA256)
            d = SHIMMER_CTLWRAP_DIGEST_SHA256;
        else if (cfg->auth == SHIMMER_DIGEST_SHA512)
            d = SHIMMER_CTLWRAP_DIGEST_SHA512;
        return shimmer_ctlwrap_new_tls_auth(cfg->static_key, d,
                                            (ShimmerKeyDirection)cfg->key_direction);
    }
    case SHIMMER_WRAP_TLS_CRYPT:
        return shimmer_ctlwrap_new_tls_crypt(cfg->static_key, role);
    case SHIMMER_WRAP_TLS_CRYPT_V2:
        return NULL;
    default:
        return shimmer_ctlwrap_new_none();
    }
}

ShimmerEngine *shimmer_core_new_shared(const ShimmerEngine *shared, const ShimmerEngineHooks *hooks,
                                       const ShimmerEngineRole *role, gpointer role_data)
{
    ShimmerEngine *e = g_new0(ShimmerEngine, 1);
    e->cfg = shared->cfg;
    if (hooks != NULL)
        e->hooks = *hooks;
    e->role = role;
    e->role_data = role_data;
    e->events = g_queue_new();
    e->comp = shared->cfg->comp;
    e->comp_alg = shared->cfg->comp_alg;
    e->mssfix = shared->cfg->mssfix;
    e->dp = core_new_dataplane(shared->cfg);
    e->shares_credentials = true;
    e->creds = shared->creds;
    e->trust = shared->trust;
    e->crls = shared->crls;
    e->priority = shared->priority;
    e->priority_cache = shared->priority_cache;
    return e;
}

void shimmer_engine_free(ShimmerEngine *e)
{
    if (e == NULL)
        return;
    if (e->role != NULL && e->role->free != NULL)
        e->role->free(e);
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES; i++)
        ks_clear(e, &e->ks[i]);
    shimmer_dataplane_unref(e->dp);
    shimmer_ctlwrap_free(e->wrap);
    if (e->shares_credentials) {
        e->creds = NULL;
        e->trust = NULL;
        e->crls = NULL;
        e->priority = NULL;
        e->priority_cache = NULL;
    }
    if (e->priority_cache != NULL)
        gnutls_priority_deinit(e->priority_cache);
    if (e->creds != NULL)
        gnutls_certificate_free_credentials(e->creds);
    if (e->trust != NULL)
        gnutls_x509_trust_list_deinit(e->trust, 1);
    shimmer_crl_set_free(e->crls);
    g_free(e->priority);
    shimmer_str_free_secret(e->key_passphrase);
    ShimmerEvent *ev;
    while ((ev = g_queue_pop_head(e->events)) != NULL) {
        shimmer_event_clear(ev);
        g_free(ev);
    }
    g_queue_free(e->events);
    shimmer_wipe(e->scratch, sizeof(e->scratch));
    shimmer_wipe(e->linger, sizeof(e->linger));
    g_free(e);
}
