/* SPDX-License-Identifier: MIT */
/*
 * The engine's client role: the connection order over the remotes and
 * reconnecting, credentials and dynamic challenges, the push request and
 * PUSH_REPLY, the server's messages, the checks on the server's
 * certificate, and the client's states. The protocol itself is the core's
 * (engine-core.c); this file only answers its hooks.
 */
#include "engine-core.h"

#include <string.h>

#include "bytes.h"

/* IV_PROTO bits we implement and so advertise. */
enum {
    IV_PROTO_DATA_V2 = 1 << 1,
    IV_PROTO_REQUEST_PUSH = 1 << 2,
    IV_PROTO_TLS_KEY_EXPORT = 1 << 3,
    IV_PROTO_CC_EXIT_NOTIFY = 1 << 7,
};

#define PUSH_REQUEST_INTERVAL (5 * SHIMMER_US)
/* A PUSH_REPLY merged over its continuations; 2.6 sends 1 KiB parts. */
#define PUSH_TEXT_LIMIT (256 * 1024)

typedef struct {
    guint conn_index; /* the connection in use */
    guint *order;     /* the order to try connections in (remote-random) */
    guint order_pos;
    guint attempts; /* consecutive failed connection attempts */

    char *username, *password;
    char *auth_token;
    /* A dynamic challenge (CRV1) waiting for the user's response. */
    bool crv1_pending;
    char *crv1_state_id;
    char *crv1_username;

    bool wkc_resend_requested;
    gint64 push_request_at;
    /* A PUSH_REPLY being merged over continuations (it may carry an
     * auth-token). */
    ShimmerSecretBuf push_text;
    ShimmerConfig *pushed;

    gint64 connect_deadline; /* no server reset by then: next remote */
    gint64 retry_at;         /* RECONNECTING: when to try again */
} Client;

static const ShimmerEngineRole client_role;

/* The client state of E; NULL for an engine in another role, whose public
 * client calls then do nothing. */
static Client *client_of(const ShimmerEngine *e)
{
    return e != NULL && e->role == &client_role ? e->role_data : NULL;
}

/* The client state inside the role's own code, which only a client engine
 * runs. */
static Client *client(const ShimmerEngine *e)
{
    return e->role_data;
}

static ShimmerConnection *connection(ShimmerEngine *e, Client *c)
{
    const ShimmerConfig *cfg = e->cfg;
    return c->conn_index < cfg->connections->len
               ? g_ptr_array_index(cfg->connections, c->conn_index)
               : NULL;
}

static void use_connection(ShimmerEngine *e, Client *c, guint index)
{
    c->conn_index = index;
    ShimmerConnection *conn = connection(e, c);
    e->mssfix = conn != NULL && conn->mssfix >= 0 ? conn->mssfix : e->cfg->mssfix;
}

/* ---------- session lifecycle ---------- */

static void fail(ShimmerEngine *e, const char *why)
{
    shimmer_core_end(e, SHIMMER_STATE_FAILED, why);
}

/* Tears the session down and tries again (next remote if NEXT_REMOTE). */
static void restart_session(ShimmerEngine *e, const char *why, bool next_remote, gint64 now)
{
    Client *c = client(e);
    if (e->state == SHIMMER_STATE_FAILED || e->state == SHIMMER_STATE_DISCONNECTED)
        return;
    if (e->state == SHIMMER_STATE_DISCONNECTING) {
        shimmer_core_end(e, SHIMMER_STATE_DISCONNECTED, why);
        return;
    }
    shimmer_core_log(e, SHIMMER_LOG_WARNING, "restarting: %s", why);
    shimmer_core_reset_session(e);
    shimmer_secret_buf_reset(&c->push_text);
    c->wkc_resend_requested = false;
    shimmer_core_push_event(e, SHIMMER_EVENT_DISCONNECT_TRANSPORT);
    e->stats.reconnects++;
    c->attempts++;
    const ShimmerConfig *cfg = e->cfg;
    if (cfg->connect_retry_max > 0 &&
        c->attempts > (guint)cfg->connect_retry_max * MAX(cfg->connections->len, 1)) {
        fail(e, "gave up after connect-retry-max attempts");
        return;
    }
    if (next_remote && cfg->connections->len > 0) {
        c->order_pos = (c->order_pos + 1) % cfg->connections->len;
        use_connection(e, c, c->order[c->order_pos]);
    }
    /* Back off: connect-retry doubling per full round, capped. */
    guint rounds = cfg->connections->len > 0 ? (c->attempts - 1) / cfg->connections->len : 0;
    gint64 delay = (gint64)cfg->connect_retry * SHIMMER_US;
    gint64 max_delay = (gint64)cfg->connect_retry_max_delay * SHIMMER_US;
    for (guint i = 0; i < rounds && delay < max_delay; i++)
        delay *= 2;
    delay = MIN(delay, max_delay);
    shimmer_core_set_state(e, SHIMMER_STATE_RECONNECTING, why);
    c->retry_at = now + delay;
}

static void begin_connect(ShimmerEngine *e, gint64 now)
{
    Client *c = client(e);
    ShimmerConnection *conn = connection(e, c);
    c->retry_at = 0;
    if (conn == NULL) {
        fail(e, "the profile names no server");
        return;
    }
    shimmer_core_set_state(e, SHIMMER_STATE_CONNECTING, NULL);
    c->connect_deadline = now + (gint64)conn->connect_timeout * SHIMMER_US;
    ShimmerEvent *ev = shimmer_core_push_event(e, SHIMMER_EVENT_CONNECT);
    ev->connect.index = c->conn_index;
    ev->connect.host = g_strdup(conn->host);
}

static void session_lost(ShimmerEngine *e, ShimmerSessionLoss how, const char *why, gint64 now)
{
    if (how == SHIMMER_SESSION_LOST_FATAL)
        fail(e, why);
    else
        restart_session(e, why, how == SHIMMER_SESSION_LOST_NEXT_PEER, now);
}

/* ---------- push ---------- */

/* Cipher negotiation: the pushed cipher (or data-ciphers-fallback) must be
 * one we offered. */
static bool pick_cipher(ShimmerEngine *e, const ShimmerConfig *p, ShimmerDatachanCipher *out)
{
    const ShimmerConfig *cfg = e->cfg;
    const char *cname = p->cipher != NULL ? p->cipher : cfg->data_ciphers_fallback;
    if (cname == NULL) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR,
                         "the server pushed no cipher and no data-ciphers-fallback "
                         "is configured");
        return false;
    }
    bool offered = cfg->data_ciphers_fallback != NULL &&
                   g_ascii_strcasecmp(cfg->data_ciphers_fallback, cname) == 0;
    for (guint i = 0; i < cfg->data_ciphers->len; i++) {
        ShimmerCipher c = g_array_index(cfg->data_ciphers, ShimmerCipher, i);
        offered |= g_ascii_strcasecmp(shimmer_cipher_name(c), cname) == 0;
    }
    if (!offered || !shimmer_datachan_cipher_from_name(cname, out)) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR,
                         "the server pushed the cipher %s, which we did not offer", cname);
        return false;
    }
    return true;
}

static bool apply_push(ShimmerEngine *e, Client *c)
{
    g_autoptr(ShimmerConfig) p = shimmer_config_parse_push((const char *)c->push_text.data,
                                                           c->push_text.len, e->cfg->pull_filters);
    for (guint i = 0; i < p->diagnostics->len; i++) {
        ShimmerDiagnostic *d = g_ptr_array_index(p->diagnostics, i);
        shimmer_core_log(
            e, d->severity == SHIMMER_SEVERITY_ERROR ? SHIMMER_LOG_ERROR : SHIMMER_LOG_WARNING,
            "PUSH_REPLY option %u: %s", d->line, d->message);
    }
    if (shimmer_config_has_errors(p))
        return false;
    ShimmerDatachanCipher dc;
    if (!pick_cipher(e, p, &dc))
        return false;
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
        /* Taken, not copied: one copy of the token, ours. */
        shimmer_str_free_secret(c->auth_token);
        c->auth_token = g_steal_pointer(&p->auth_token);
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
    shimmer_config_free(c->pushed);
    c->pushed = g_steal_pointer(&p);
    return true;
}

/* Appends one comma-separated item of a PUSH_REPLY to the merged text,
 * trimmed of blanks, without a copy (items may hold an auth-token). Sets
 * *MORE for push-continuation 2. FALSE when the text grew too large. */
static bool merge_push_item(Client *c, const char *item, gsize len, bool *more)
{
    while (len > 0 && g_ascii_isspace(*item)) {
        item++;
        len--;
    }
    while (len > 0 && g_ascii_isspace(item[len - 1]))
        len--;
    static const char cont[] = "push-continuation";
    if (len >= strlen(cont) && memcmp(item, cont, strlen(cont)) == 0) {
        /* It only says whether more follows (2) or this is the last part. */
        *more = len == strlen(cont) + 2 && memcmp(item + strlen(cont), " 2", 2) == 0;
        return true;
    }
    if (len == 0)
        return true;
    return (c->push_text.len == 0 || shimmer_secret_buf_append(&c->push_text, ",", 1)) &&
           shimmer_secret_buf_append(&c->push_text, item, len);
}

static void handle_push_reply(ShimmerEngine *e, ShimmerKeyState *ks, const char *body, gint64 now)
{
    Client *c = client(e);
    if (e->state == SHIMMER_STATE_CONNECTED)
        return; /* a repeated reply to a repeated PUSH_REQUEST */
    bool more = false;
    for (const char *item = body;;) {
        const char *comma = strchr(item, ',');
        gsize len = comma != NULL ? (gsize)(comma - item) : strlen(item);
        if (!merge_push_item(c, item, len, &more)) {
            shimmer_secret_buf_reset(&c->push_text);
            fail(e, "the pushed configuration is too large");
            return;
        }
        if (comma == NULL)
            break;
        item = comma + 1;
    }
    if (more)
        return;
    bool usable = apply_push(e, c);
    shimmer_secret_buf_reset(&c->push_text);
    if (!usable) {
        fail(e, "the pushed configuration is not usable");
        return;
    }
    if (!shimmer_core_install_keys(e, ks, now)) {
        fail(e, "cannot install the data channel keys");
        return;
    }
    c->attempts = 0;
    /* The tun is configured before anyone hears "connected". */
    shimmer_core_push_event(e, SHIMMER_EVENT_TUN_CONFIG);
    shimmer_core_set_state(e, SHIMMER_STATE_CONNECTED, NULL);
}

static void send_push_request(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    shimmer_core_send_message(e, ks, "PUSH_REQUEST");
    client(e)->push_request_at = now + PUSH_REQUEST_INTERVAL;
}

/* ---------- the server's messages ---------- */

/* AUTH_FAILED,CRV1:flags:state_id:base64(username):text, a dynamic
 * challenge. The answer goes back on a new connection as the password
 * "CRV1::state_id::response". */
static void handle_challenge(ShimmerEngine *e, const char *crv1, gint64 now)
{
    Client *c = client(e);
    g_auto(GStrv) f = g_strsplit(crv1, ":", 4);
    if (g_strv_length(f) < 4) {
        fail(e, "authentication failed: malformed challenge from the server");
        return;
    }
    gsize ulen = 0;
    g_autofree guint8 *user = g_base64_decode(f[2], &ulen);
    g_free(c->crv1_state_id);
    g_free(c->crv1_username);
    c->crv1_state_id = g_strdup(f[1]);
    c->crv1_username = g_strndup((const char *)user, ulen);
    c->crv1_pending = true;
    bool echo = strchr(f[0], 'E') != NULL;
    shimmer_core_log(e, SHIMMER_LOG_INFO, "the server asks a challenge: %s", f[3]);
    restart_session(e, "waiting for the answer to the server's challenge", false, now);
    ShimmerEvent *ev = shimmer_core_push_event(e, SHIMMER_EVENT_NEED_CREDENTIALS);
    ev->credentials.kind = SHIMMER_CREDENTIALS_CHALLENGE;
    ev->credentials.text = g_strdup(f[3]);
    ev->credentials.echo = echo;
}

static void handle_auth_failed(ShimmerEngine *e, const char *msg)
{
    Client *c = client(e);
    const char *reason = msg[11] == ',' ? msg + 12 : "";
    g_autofree char *text =
        g_strdup_printf("authentication failed%s%s", reason[0] ? ": " : "", reason);
    shimmer_core_log(e, SHIMMER_LOG_ERROR, "%s", text);
    g_clear_pointer(&c->auth_token, shimmer_str_free_secret);
    shimmer_core_push_event(e, SHIMMER_EVENT_AUTH_FAILED)->auth_failed.reason = g_strdup(reason);
    fail(e, text);
}

/* RESTART[,[flags]text]: N in the flags moves on to the next server. */
static void handle_restart(ShimmerEngine *e, const char *msg, gint64 now)
{
    const char *text = msg[7] == ',' ? msg + 8 : "";
    bool next = false;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close != NULL) {
            next = memchr(text, 'N', (gsize)(close - text)) != NULL;
            text = close + 1;
        }
    }
    g_autofree char *why =
        g_strdup_printf("the server asked to restart%s%s", text[0] ? ": " : "", text);
    restart_session(e, why, next, now);
}

static void control_message(ShimmerEngine *e, ShimmerKeyState *ks, const char *msg, gint64 now)
{
    if (g_str_has_prefix(msg, "PUSH_REPLY")) {
        const char *body = msg + strlen("PUSH_REPLY");
        if (*body == ',')
            body++;
        handle_push_reply(e, ks, body, now);
    } else if (g_str_has_prefix(msg, "AUTH_FAILED,CRV1:")) {
        handle_challenge(e, msg + strlen("AUTH_FAILED,CRV1:"), now);
    } else if (g_str_has_prefix(msg, "AUTH_FAILED")) {
        handle_auth_failed(e, msg);
    } else if (g_str_has_prefix(msg, "RESTART")) {
        handle_restart(e, msg, now);
    } else if (g_str_has_prefix(msg, "HALT")) {
        g_autofree char *why =
            g_strdup_printf("the server halted the session%s%s", msg[4] == ',' ? ": " : "",
                            msg[4] == ',' ? msg + 5 : "");
        fail(e, why);
    } else if (g_str_has_prefix(msg, "INFO")) {
        const char *text = strchr(msg, ',');
        shimmer_core_push_event(e, SHIMMER_EVENT_INFO)->info.text = g_strdup(text ? text + 1 : "");
        shimmer_core_log(e, SHIMMER_LOG_INFO, "server: %s", text ? text + 1 : msg);
    } else if (g_str_has_prefix(msg, "AUTH_PENDING")) {
        shimmer_core_log(e, SHIMMER_LOG_INFO, "authentication pending on the server");
    } else if (strcmp(msg, "EXIT") == 0) {
        restart_session(e, "the server is shutting down", true, now);
    } else {
        shimmer_core_log(e, SHIMMER_LOG_DEBUG, "ignored control message '%.40s'", msg);
    }
}

/* ---------- key method ---------- */

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
    g_string_append_printf(s, "IV_VER=shimmer-%s\nIV_PLAT=linux\nIV_GUI_VER=Shimmer_%s\n", "0.1.0",
                           "0.1.0");
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

static bool km_strings(ShimmerEngine *e, ShimmerKeyState *ks, ShimmerKmStrings *out)
{
    Client *c = client(e);
    out->options = options_string(e);
    out->peer_info = peer_info(e);
    if (e->cfg->auth_user_pass == SHIMMER_AUTH_USER_PASS_NONE)
        return true;
    /* After a pushed auth-token, renegotiations authenticate with it. */
    const char *user = c->username;
    if (c->auth_token != NULL && c->pushed != NULL && c->pushed->auth_token_user != NULL)
        user = c->pushed->auth_token_user;
    out->username = g_strdup(user);
    out->password = g_strdup(c->auth_token ? c->auth_token : c->password);
    return true;
}

static bool km_received(ShimmerEngine *e, ShimmerKeyState *ks, const ShimmerKmStrings *peer,
                        gint64 now)
{
    shimmer_core_log(e, SHIMMER_LOG_DEBUG, "server options: %s", peer->options);
    return true;
}

static void first_key_active(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    shimmer_core_set_state(e, SHIMMER_STATE_GETTING_CONFIG, NULL);
    send_push_request(e, ks, now);
}

/* ---------- resets ---------- */

static guint8 own_hard_reset(ShimmerEngine *e)
{
    return e->cfg->wrap == SHIMMER_WRAP_TLS_CRYPT_V2 ? SHIMMER_OP_HARD_RESET_CLIENT_V3
                                                     : SHIMMER_OP_HARD_RESET_CLIENT_V2;
}

/* Whether the TLVs of a server reset ask for the WKc again (tls-crypt-v2
 * early negotiation). */
static bool tlv_resend_wkc(const guint8 *p, gsize len)
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

static ShimmerKeyState *accept_hard_reset(ShimmerEngine *e, const ShimmerControlPacket *cp,
                                          ShimmerDropReason *drop)
{
    Client *c = client(e);
    if (cp->key_id != 0) {
        *drop = SHIMMER_DROP_UNEXPECTED;
        return NULL;
    }
    if (!e->have_remote_sid) {
        memcpy(e->remote_sid, cp->session_id, sizeof(e->remote_sid));
        e->have_remote_sid = true;
        if (e->cfg->wrap == SHIMMER_WRAP_TLS_CRYPT_V2 &&
            tlv_resend_wkc(cp->payload, cp->payload_len))
            c->wkc_resend_requested = true;
    }
    return &e->ks[0];
}

static void hard_reset_received(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    shimmer_core_set_state(e, SHIMMER_STATE_AUTHENTICATING, NULL);
    /* The server kept no state: send WKc again with our ack. */
    if (client(e)->wkc_resend_requested)
        shimmer_reliable_queue_message(ks->rel, SHIMMER_OP_CONTROL_WKC_V1, NULL, 0, NULL, NULL);
}

/* ---------- the server's certificate ---------- */

static const char *x509_type_name(ShimmerX509NameType t)
{
    return t == SHIMMER_X509_NAME_NAME     ? "name"
           : t == SHIMMER_X509_NAME_PREFIX ? "name-prefix"
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
    for (const char *p = rfc;; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == ',' || *p == '\0') {
            g_ptr_array_add(parts, g_strndup(start, (gsize)(p - start)));
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
    GString *out = g_string_new(NULL);
    for (guint i = parts->len; i > 0; i--) {
        const char *part = g_ptr_array_index(parts, i - 1);
        if (g_str_has_prefix(part, "EMAIL="))
            g_string_append_printf(out, "%semailAddress=%s", out->len ? ", " : "", part + 6);
        else
            g_string_append_printf(out, "%s%s", out->len ? ", " : "", part);
    }
    return g_string_free(out, FALSE);
}

static bool name_matches(const ShimmerConfig *cfg, const char *candidate)
{
    if (cfg->verify_x509_type == SHIMMER_X509_NAME_PREFIX)
        return g_str_has_prefix(candidate, cfg->verify_x509_name);
    return strcmp(candidate, cfg->verify_x509_name) == 0;
}

/* remote-cert-tls server: TLS server extended key usage, and a key usage
 * that allows the handshake. */
static bool remote_cert_tls_ok(ShimmerEngine *e, gnutls_x509_crt_t crt)
{
    bool eku = false;
    char oid[128];
    for (unsigned int i = 0;; i++) {
        size_t sz = sizeof(oid);
        unsigned int crit;
        if (gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &sz, &crit) < 0)
            break;
        eku |= strcmp(oid, GNUTLS_KP_TLS_WWW_SERVER) == 0;
    }
    unsigned int ku = 0, crit = 0;
    int kurc = gnutls_x509_crt_get_key_usage(crt, &ku, &crit);
    bool ku_ok = kurc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE ||
                 (kurc >= 0 && (ku & (GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT |
                                      GNUTLS_KEY_KEY_AGREEMENT)));
    if (!eku || !ku_ok)
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "remote-cert-tls server: the certificate %s",
                         !eku ? "lacks the TLS server extended key usage"
                              : "has the wrong key usage");
    return eku && ku_ok;
}

static bool x509_name_ok(ShimmerEngine *e, gnutls_x509_crt_t crt)
{
    const ShimmerConfig *cfg = e->cfg;
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
    if (!ok)
        shimmer_core_log(e, SHIMMER_LOG_ERROR,
                         "verify-x509-name: the server's certificate does not "
                         "match the %s '%s'",
                         x509_type_name(cfg->verify_x509_type), cfg->verify_x509_name);
    return ok;
}

static int check_peer_cert(ShimmerEngine *e, gnutls_x509_crt_t crt)
{
    const ShimmerConfig *cfg = e->cfg;
    if (cfg->remote_cert_tls == SHIMMER_CERT_TLS_SERVER && !remote_cert_tls_ok(e, crt))
        return GNUTLS_E_CERTIFICATE_ERROR;
    if (cfg->verify_x509_type != SHIMMER_X509_NAME_UNSET && !x509_name_ok(e, crt))
        return GNUTLS_E_CERTIFICATE_ERROR;
    return 0;
}

/* ---------- timers ---------- */

static gint64 next_deadline(ShimmerEngine *e)
{
    Client *c = client(e);
    gint64 d = G_MAXINT64;
    if (e->state == SHIMMER_STATE_RECONNECTING && c->retry_at && !c->crv1_pending)
        d = MIN(d, c->retry_at);
    if (e->state == SHIMMER_STATE_CONNECTING && e->transport_ready && !e->have_remote_sid)
        d = MIN(d, c->connect_deadline);
    if (e->state == SHIMMER_STATE_GETTING_CONFIG)
        d = MIN(d, c->push_request_at);
    return d;
}

static bool handle_timeout(ShimmerEngine *e, gint64 now)
{
    Client *c = client(e);
    if (e->state == SHIMMER_STATE_RECONNECTING && c->crv1_pending)
        return true; /* nothing happens until the user answers the challenge */
    if (e->state == SHIMMER_STATE_RECONNECTING && c->retry_at && now >= c->retry_at) {
        begin_connect(e, now);
        return true;
    }
    if (e->state == SHIMMER_STATE_CONNECTING && e->transport_ready && !e->have_remote_sid &&
        now >= c->connect_deadline) {
        restart_session(e, "no answer from the server (server-poll-timeout)", true, now);
        return true;
    }
    if (e->state == SHIMMER_STATE_GETTING_CONFIG && now >= c->push_request_at &&
        e->ks[0].status == SHIMMER_KS_ACTIVE) {
        send_push_request(e, &e->ks[0], now);
    }
    return false;
}

/* ---------- the end ---------- */

static void stop(ShimmerEngine *e, gint64 now)
{
    gint n = e->cfg->explicit_exit_notify;
    const char *exit_message = e->cc_exit ? "EXIT" : NULL;
    if (e->state != SHIMMER_STATE_CONNECTED || e->is_tcp || n <= 0)
        shimmer_core_stop_now(e, exit_message, now);
    else if (e->cc_exit)
        /* Give the server a moment to ack; a retransmit timer would keep us
         * longer. */
        shimmer_core_stop_after(e, exit_message, 0, SHIMMER_US / 2, now);
    else
        shimmer_core_stop_after(e, NULL, (guint)n, (gint64)n * SHIMMER_US, now);
}

static void client_free(ShimmerEngine *e)
{
    Client *c = e->role_data;
    if (c == NULL)
        return;
    g_free(c->order);
    g_free(c->username);
    shimmer_str_free_secret(c->password);
    shimmer_str_free_secret(c->auth_token);
    g_free(c->crv1_state_id);
    g_free(c->crv1_username);
    shimmer_secret_buf_clear(&c->push_text);
    shimmer_config_free(c->pushed);
    g_free(c);
    e->role_data = NULL;
}

static const ShimmerEngineRole client_role = {
    .name = "client",
    .peer_name = "server",
    .tls_flags = GNUTLS_CLIENT,
    .peer_key_purpose = GNUTLS_KP_TLS_WWW_SERVER,
    .km_has_pre_master = true,
    .km_after_peer = false,
    .data_send_half = 0,
    .peer_control_opcodes = 1u << SHIMMER_OP_HARD_RESET_SERVER_V2 | 1u << SHIMMER_OP_CONTROL_V1 |
                            1u << SHIMMER_OP_ACK_V1 | 1u << SHIMMER_OP_SOFT_RESET_V1,
    .peer_hard_resets = 1u << SHIMMER_OP_HARD_RESET_SERVER_V2,
    .own_hard_reset_acks = false,
    .own_hard_reset = own_hard_reset,
    .accept_hard_reset = accept_hard_reset,
    .hard_reset_received = hard_reset_received,
    .tls_setup = NULL,
    .check_peer_cert = check_peer_cert,
    .km_strings = km_strings,
    .km_received = km_received,
    .first_key_active = first_key_active,
    .control_message = control_message,
    .session_lost = session_lost,
    .next_deadline = next_deadline,
    .handle_timeout = handle_timeout,
    .stop = stop,
    .free = client_free,
};

/* ---------- public client calls ---------- */

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
    Client *c = g_new0(Client, 1);
    shimmer_secret_buf_init(&c->push_text, 0, PUSH_TEXT_LIMIT);
    c->username = g_strdup(cfg->username);
    c->password = g_strdup(cfg->password);
    ShimmerEngine *e = shimmer_core_new(cfg, hooks, &client_role, c, error);
    if (e == NULL)
        return NULL;
    guint n = cfg->connections->len;
    c->order = g_new(guint, MAX(n, 1));
    for (guint i = 0; i < n; i++)
        c->order[i] = i;
    if (cfg->remote_random) {
        /* Fisher-Yates with the injected randomness. */
        for (guint i = n; i > 1; i--) {
            guint32 r;
            if (!shimmer_core_random(e, &r, sizeof(r))) {
                g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "no random numbers for remote-random");
                shimmer_engine_free(e);
                return NULL;
            }
            guint j = r % i;
            guint t = c->order[i - 1];
            c->order[i - 1] = c->order[j];
            c->order[j] = t;
        }
    }
    use_connection(e, c, n > 0 ? c->order[0] : 0);
    return e;
}

char *shimmer_engine_static_challenge_password(const char *password, const char *response)
{
    g_autofree char *p64 = g_base64_encode((const guchar *)password, strlen(password));
    g_autofree char *r64 = g_base64_encode((const guchar *)response, strlen(response));
    /* g_strconcat sizes the result first and copies once; printf-style
     * formatting may grow (and leave) intermediate buffers. */
    char *combined = g_strconcat("SCRV1:", p64, ":", r64, NULL);
    shimmer_wipe(p64, strlen(p64));
    shimmer_wipe(r64, strlen(r64));
    return combined;
}

void shimmer_engine_start(ShimmerEngine *e, gint64 now)
{
    Client *c = client_of(e);
    if (c == NULL || e->state != SHIMMER_STATE_IDLE)
        return;
    if (e->cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE && c->password == NULL) {
        shimmer_core_push_event(e, SHIMMER_EVENT_NEED_CREDENTIALS)->credentials.kind =
            c->username ? SHIMMER_CREDENTIALS_PASSWORD : SHIMMER_CREDENTIALS_USERNAME_PASSWORD;
        return;
    }
    begin_connect(e, now);
}

void shimmer_engine_set_credentials(ShimmerEngine *e, const char *username, const char *password,
                                    gint64 now)
{
    Client *c = client_of(e);
    if (c == NULL)
        return;
    if (c->crv1_pending) {
        /* PASSWORD is the response to the dynamic challenge. */
        c->crv1_pending = false;
        g_free(c->username);
        c->username = g_strdup(c->crv1_username);
        shimmer_str_free_secret(c->password);
        c->password = g_strconcat("CRV1::", c->crv1_state_id, "::", password ? password : "", NULL);
        g_clear_pointer(&c->auth_token, shimmer_str_free_secret);
        if (e->state == SHIMMER_STATE_RECONNECTING)
            begin_connect(e, now);
        return;
    }
    if (username != NULL) {
        g_free(c->username);
        c->username = g_strdup(username);
    }
    shimmer_str_free_secret(c->password);
    c->password = g_strdup(password);
    if (e->state == SHIMMER_STATE_IDLE)
        begin_connect(e, now);
}

/* The wrapping this profile asks for, in the client's direction. */
static ShimmerCtlwrap *make_wrap(const ShimmerConfig *cfg)
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
        return shimmer_ctlwrap_new_tls_crypt(cfg->static_key, SHIMMER_CTLWRAP_ROLE_CLIENT);
    case SHIMMER_WRAP_TLS_CRYPT_V2:
        if (cfg->tls_crypt_v2_client == NULL)
            return NULL;
        return shimmer_ctlwrap_new_tls_crypt_v2_client(cfg->tls_crypt_v2_client->kc,
                                                       cfg->tls_crypt_v2_client->wkc,
                                                       cfg->tls_crypt_v2_client->wkc_len);
    default:
        return shimmer_ctlwrap_new_none();
    }
}

void shimmer_engine_transport_up(ShimmerEngine *e, gboolean is_tcp, gint64 now)
{
    Client *c = client_of(e);
    if (c == NULL || e->state != SHIMMER_STATE_CONNECTING)
        return;
    const ShimmerConfig *cfg = e->cfg;
    e->ping_s = cfg->keepalive_interval >= 0 ? cfg->keepalive_interval : cfg->ping;
    e->ping_restart_s = cfg->keepalive_timeout >= 0 ? cfg->keepalive_timeout : cfg->ping_restart;
    /* A fresh wrapper per session: its replay counter starts again. */
    g_autoptr(GError) error = NULL;
    if (!shimmer_core_session_begin(e, make_wrap(cfg), NULL, is_tcp, now, &error))
        fail(e, error->message);
}

void shimmer_engine_transport_failed(ShimmerEngine *e, const char *why, gint64 now)
{
    if (client_of(e) == NULL)
        return;
    g_autofree char *msg = g_strdup_printf("transport: %s", why);
    restart_session(e, msg, true, now);
}

const ShimmerConfig *shimmer_engine_get_pushed(const ShimmerEngine *e)
{
    Client *c = client_of(e);
    return c != NULL ? c->pushed : NULL;
}

guint shimmer_engine_get_connection_index(const ShimmerEngine *e)
{
    Client *c = client_of(e);
    return c != NULL ? c->conn_index : 0;
}
