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
    IV_PROTO_AUTH_PENDING_KW = 1 << 4, /* AUTH_PENDING,timeout N */
    IV_PROTO_DNS_OPTION = 1 << 6,      /* pushed `dns` options */
    IV_PROTO_CC_EXIT_NOTIFY = 1 << 7,
};

/* The pending-login methods we handle (management-notes: IV_SSO). */
#define IV_SSO "openurl,webauth,crtext"

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
    /* auth-token-user, decoded: the user name that goes with the token. */
    char *token_user;
    /* A dynamic challenge (CRV1) waiting for the user's response. */
    bool crv1_pending;
    char *crv1_state_id;
    char *crv1_username;
    /* NEED_CREDENTIALS was sent before a connection attempt (no password
     * and no token): the attempt starts with the answer. */
    bool cred_wait;
    /* A renegotiation's key-method record waits for the password
     * (auth-nocache without a token): the key state's id. */
    bool km_wait;
    guint8 km_wait_key;

    /* Between the first key and PUSH_REPLY: when that began, and when we
     * give up (hand-window, or what AUTH_PENDING asked for). */
    gint64 config_started;
    gint64 push_deadline;
    /* When the server gives up on a pending login (push_deadline is a
     * little later, see PENDING_GRACE). */
    gint64 pending_deadline;
    /* The server holds the login open (AUTH_PENDING) for a web sign-in or
     * a CR_TEXT answer. */
    bool auth_pending;
    bool web_auth;
    bool crtext_pending; /* a CR_TEXT answer is awaited from the user */

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
    e->transport_ipv6 = conn != NULL && conn->family == SHIMMER_FAMILY_INET6;
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
    c->auth_pending = c->web_auth = c->crtext_pending = c->km_wait = false;
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

/* The profile wants a password and we hold neither it nor a token (the
 * start, auth-nocache, auth-retry interact). */
static bool needs_credentials(ShimmerEngine *e, Client *c)
{
    return e->cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE && c->password == NULL &&
           c->auth_token == NULL;
}

static void ask_password(ShimmerEngine *e, Client *c)
{
    shimmer_core_push_event(e, SHIMMER_EVENT_NEED_CREDENTIALS)->credentials =
        (ShimmerNeedCredentials){
            .kind =
                c->username ? SHIMMER_CREDENTIALS_PASSWORD : SHIMMER_CREDENTIALS_USERNAME_PASSWORD,
            .response_required = TRUE,
        };
}

static void begin_connect(ShimmerEngine *e, gint64 now)
{
    Client *c = client(e);
    ShimmerConnection *conn = connection(e, c);
    if (needs_credentials(e, c)) {
        /* Asked once; set_credentials() comes back here. */
        if (!c->cred_wait)
            ask_password(e, c);
        c->cred_wait = true;
        return;
    }
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
    g_autoptr(GError) comp_error = NULL;
    if (!shimmer_config_check_pushed_compression(e->cfg, p, &comp_error)) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "%s", comp_error->message);
        return false;
    }
    ShimmerDatachanCipher dc;
    if (!pick_cipher(e, p, &dc))
        return false;
    e->cipher = dc;
    e->cipher_set = true;
    e->tls_ekm = p->key_derivation_tls_ekm || p->protocol_flag_tls_ekm;
    e->cc_exit = p->protocol_flag_cc_exit;
    e->peer_id = p->peer_id >= 0 ? (guint32)p->peer_id : SHIMMER_DATACHAN_PEER_ID_NONE;
    e->use_data_v2 = p->peer_id >= 0;
    /* A pushed comp-lzo or compress sets the framing and the algorithm
     * the server may compress with (allowed by the check above). */
    e->comp = p->comp != SHIMMER_COMP_NONE ? p->comp : e->cfg->comp;
    e->comp_alg = p->comp != SHIMMER_COMP_NONE ? p->comp_alg : e->cfg->comp_alg;
    /* The token replaces the password on renegotiation; auth-nocache only
     * concerns the password the user typed, not the server's token. */
    if (p->auth_token != NULL) {
        /* Taken, not copied: one copy of the token, ours. */
        shimmer_str_free_secret(c->auth_token);
        c->auth_token = g_steal_pointer(&p->auth_token);
    }
    if (p->auth_token_user != NULL) {
        /* base64 of the user name the token belongs to. */
        gsize len = 0;
        g_autofree guint8 *raw = g_base64_decode(p->auth_token_user, &len);
        if (raw != NULL && len > 0 && memchr(raw, 0, len) == NULL &&
            g_utf8_validate((const char *)raw, (gssize)len, NULL)) {
            g_free(c->token_user);
            c->token_user = g_strndup((const char *)raw, len);
        } else {
            shimmer_core_log(e, SHIMMER_LOG_WARNING,
                             "the pushed auth-token-user is not a base64 user name; ignored");
        }
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
    c->auth_pending = c->web_auth = c->crtext_pending = false;
    if (e->cfg->auth_nocache && c->password != NULL) {
        /* auth-nocache: the password does not outlive the login; a token
         * (if the server gave one) serves renegotiations and reconnects,
         * otherwise the user is asked again. */
        g_clear_pointer(&c->password, shimmer_str_free_secret);
        shimmer_core_log(e, SHIMMER_LOG_INFO, "auth-nocache: the password is forgotten");
    }
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
    ev->credentials.response_required = TRUE;
}

static void handle_auth_failed(ShimmerEngine *e, const char *msg, gint64 now)
{
    Client *c = client(e);
    const char *reason = msg[11] == ',' ? msg + 12 : "";
    g_autofree char *text =
        g_strdup_printf("authentication failed%s%s", reason[0] ? ": " : "", reason);
    shimmer_core_log(e, SHIMMER_LOG_ERROR, "%s", text);
    if (c->auth_token != NULL) {
        /* An expired token, or one a restarted server does not know, is
         * refused like a wrong password: start over with the password
         * (asking for it if auth-nocache forgot it), as OpenVPN does. */
        g_clear_pointer(&c->auth_token, shimmer_str_free_secret);
        g_clear_pointer(&c->token_user, g_free);
        restart_session(e, "the server refused the auth-token; logging in again", false, now);
        return;
    }
    switch (e->cfg->auth_retry) {
    case SHIMMER_AUTH_RETRY_INTERACT:
        /* Ask again before the next attempt (begin_connect). */
        g_clear_pointer(&c->password, shimmer_str_free_secret);
        restart_session(e, text, false, now);
        return;
    case SHIMMER_AUTH_RETRY_NOINTERACT:
        restart_session(e, text, false, now);
        return;
    case SHIMMER_AUTH_RETRY_NONE:
        break;
    }
    shimmer_core_push_event(e, SHIMMER_EVENT_AUTH_FAILED)->auth_failed.reason = g_strdup(reason);
    fail(e, text);
}

static gint64 hand_window_us(const ShimmerEngine *e)
{
    return (gint64)(e->cfg->hand_window >= 0 ? e->cfg->hand_window : 60) * SHIMMER_US;
}

/* Whole seconds from NOW to DEADLINE, rounded up. */
static guint seconds_until(gint64 deadline, gint64 now)
{
    return deadline <= now ? 0
                           : (guint)MIN((deadline - now + SHIMMER_US - 1) / SHIMMER_US, G_MAXUINT);
}

/* How long past a pending login's timeout the client still waits: the
 * server gives up at the same time and says why (AUTH_FAILED), which tells
 * the user more than our own "not completed". */
#define PENDING_GRACE (3 * SHIMMER_US)

/* AUTH_PENDING[,timeout N]: the server holds the login open while it waits
 * for something outside the tunnel. We wait as long as it asks, capped as
 * OpenVPN 2.6 caps it (half of reneg-sec or hand-window, whichever is
 * longer), counted from when the login reached the server. */
static void handle_auth_pending(ShimmerEngine *e, const char *msg, gint64 now)
{
    Client *c = client(e);
    if (e->state != SHIMMER_STATE_GETTING_CONFIG)
        return;
    const ShimmerConfig *cfg = e->cfg;
    gint64 hand = hand_window_us(e);
    gint64 reneg = (cfg->reneg_sec >= 0 ? cfg->reneg_sec : 3600) * SHIMMER_US;
    gint64 max_wait = MAX(reneg / 2, hand);
    gint64 wait = hand;
    if (msg[strlen("AUTH_PENDING")] == ',') {
        g_auto(GStrv) words = g_strsplit(msg + strlen("AUTH_PENDING,"), ",", 16);
        for (guint i = 0; words[i] != NULL; i++) {
            guint64 n;
            const char *w = g_strstrip(words[i]);
            if (g_str_has_prefix(w, "timeout ") &&
                g_ascii_string_to_unsigned(w + strlen("timeout "), 10, 0, G_MAXUINT32, &n, NULL))
                wait = (gint64)n * SHIMMER_US;
            else
                shimmer_core_log(e, SHIMMER_LOG_DEBUG, "AUTH_PENDING: ignored '%.40s'", w);
        }
    }
    wait = MIN(wait, max_wait);
    c->auth_pending = true;
    guint left = seconds_until(c->config_started + wait, now);
    c->pending_deadline = c->config_started + wait;
    c->push_deadline = c->pending_deadline + PENDING_GRACE;
    shimmer_core_log(e, SHIMMER_LOG_INFO,
                     "the server holds the login open (authentication pending, up to %u s)", left);
    ShimmerEvent *ev = shimmer_core_push_event(e, SHIMMER_EVENT_AUTH_PENDING);
    ev->auth_pending.timeout_s = left;
    ev->auth_pending.deadline = c->pending_deadline;
}

/* OPEN_URL:url or WEB_AUTH:flags:url (FLAGS NULL for OPEN_URL). */
static void handle_web_auth(ShimmerEngine *e, ShimmerWebAuthKind kind, const char *flags,
                            const char *url, gint64 now)
{
    Client *c = client(e);
    if (!shimmer_web_auth_url_is_safe(url)) {
        shimmer_core_log(e, SHIMMER_LOG_WARNING,
                         "the server asks for a web sign-in at an address that is not an http(s) "
                         "URL; ignored");
        return;
    }
    if (e->state != SHIMMER_STATE_GETTING_CONFIG) {
        shimmer_core_log(e, SHIMMER_LOG_DEBUG, "a web sign-in request outside the login; ignored");
        return;
    }
    c->web_auth = true;
    g_autoptr(GStrvBuilder) fb = g_strv_builder_new();
    if (flags != NULL) {
        g_auto(GStrv) parts = g_strsplit(flags, ",", 32);
        for (guint i = 0; parts[i] != NULL; i++) {
            const char *f = g_strstrip(parts[i]);
            /* proxy= carries proxy credentials; we do not announce proxy. */
            if (*f != '\0' && !g_str_has_prefix(f, "proxy"))
                g_strv_builder_add(fb, f);
        }
    }
    /* Not the URL: it may carry a session secret, and logs travel further
     * than the event. */
    shimmer_core_log(e, SHIMMER_LOG_INFO, "the server asks for a web sign-in (%s)",
                     kind == SHIMMER_WEB_AUTH_OPEN_URL ? "OPEN_URL" : "WEB_AUTH");
    ShimmerEvent *ev = shimmer_core_push_event(e, SHIMMER_EVENT_WEB_AUTH);
    ev->web_auth.kind = kind;
    ev->web_auth.url = g_strdup(url);
    ev->web_auth.flags = g_strv_builder_end(fb);
    gint64 deadline = c->auth_pending ? c->pending_deadline : c->push_deadline;
    ev->web_auth.deadline = deadline;
    ev->web_auth.timeout_s = seconds_until(deadline, now);
}

/* CR_TEXT:flags:text, a challenge of a pending login: E echo, R a
 * response is required. The answer goes back as CR_RESPONSE. */
static void handle_cr_text(ShimmerEngine *e, const char *flags, const char *text)
{
    Client *c = client(e);
    if (e->state != SHIMMER_STATE_GETTING_CONFIG) {
        shimmer_core_log(e, SHIMMER_LOG_DEBUG, "a CR_TEXT challenge outside the login; ignored");
        return;
    }
    bool echo = false, required = false;
    g_auto(GStrv) parts = g_strsplit(flags, ",", 32);
    for (guint i = 0; parts[i] != NULL; i++) {
        const char *f = g_strstrip(parts[i]);
        echo |= strcmp(f, "E") == 0;
        required |= strcmp(f, "R") == 0;
    }
    c->crtext_pending = required;
    shimmer_core_log(e, SHIMMER_LOG_INFO, "the server asks: %s", text);
    ShimmerEvent *ev = shimmer_core_push_event(e, SHIMMER_EVENT_NEED_CREDENTIALS);
    ev->credentials.kind = SHIMMER_CREDENTIALS_CR_TEXT;
    ev->credentials.text = g_strdup(text);
    ev->credentials.echo = echo;
    ev->credentials.response_required = required;
}

/* INFO,text and INFO_PRE,text: a message for the user, or the form of a
 * pending login's request (OPEN_URL, WEB_AUTH, CR_TEXT). */
static void handle_info(ShimmerEngine *e, const char *msg, gint64 now)
{
    const char *comma = strchr(msg, ',');
    const char *text = comma ? comma + 1 : "";
    if (g_str_has_prefix(text, "OPEN_URL:")) {
        handle_web_auth(e, SHIMMER_WEB_AUTH_OPEN_URL, NULL, text + strlen("OPEN_URL:"), now);
        return;
    }
    if (g_str_has_prefix(text, "WEB_AUTH:") || g_str_has_prefix(text, "CR_TEXT:")) {
        bool web = text[0] == 'W';
        const char *rest = strchr(text, ':') + 1;
        const char *colon = strchr(rest, ':');
        if (colon == NULL) {
            shimmer_core_log(e, SHIMMER_LOG_WARNING, "a malformed %s request from the server",
                             web ? "WEB_AUTH" : "CR_TEXT");
            return;
        }
        g_autofree char *flags = g_strndup(rest, (gsize)(colon - rest));
        if (web)
            handle_web_auth(e, SHIMMER_WEB_AUTH_WEB_AUTH, flags, colon + 1, now);
        else
            handle_cr_text(e, flags, colon + 1);
        return;
    }
    shimmer_core_push_event(e, SHIMMER_EVENT_INFO)->info.text = g_strdup(text);
    shimmer_core_log(e, SHIMMER_LOG_INFO, "server: %s", comma ? text : msg);
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
        handle_auth_failed(e, msg, now);
    } else if (g_str_has_prefix(msg, "RESTART")) {
        handle_restart(e, msg, now);
    } else if (g_str_has_prefix(msg, "HALT")) {
        g_autofree char *why =
            g_strdup_printf("the server halted the session%s%s", msg[4] == ',' ? ": " : "",
                            msg[4] == ',' ? msg + 5 : "");
        fail(e, why);
    } else if (g_str_has_prefix(msg, "INFO")) {
        handle_info(e, msg, now);
    } else if (g_str_has_prefix(msg, "AUTH_PENDING")) {
        handle_auth_pending(e, msg, now);
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
                               IV_PROTO_AUTH_PENDING_KW | IV_PROTO_DNS_OPTION |
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
    /* A profile that allows the server to compress says which algorithms
     * we decompress, as OpenVPN 2.6 does. */
    if (e->cfg->comp_alg != SHIMMER_COMP_ALG_NONE)
        g_string_append(s, "IV_LZ4=1\nIV_LZ4v2=1\nIV_LZO=1\n");
    g_string_append(s, "IV_SSO=" IV_SSO "\n");
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
    if (c->auth_token != NULL && c->token_user != NULL)
        user = c->token_user;
    out->username = g_strdup(user);
    out->password = g_strdup(c->auth_token ? c->auth_token : c->password);
    return true;
}

/* Our record needs the password or the token: auth-nocache may have
 * forgotten the first and the server may have given no second, so a
 * renegotiation asks the user and waits (within hand-window). */
static bool km_ready(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    Client *c = client(e);
    if (!needs_credentials(e, c))
        return true;
    if (!c->km_wait || c->km_wait_key != ks->key_id) {
        c->km_wait = true;
        c->km_wait_key = ks->key_id;
        shimmer_core_log(e, SHIMMER_LOG_INFO,
                         "renegotiating key %u: the password is needed again (auth-nocache, no "
                         "auth-token)",
                         ks->key_id);
        ask_password(e, c);
    }
    return false;
}

static bool km_received(ShimmerEngine *e, ShimmerKeyState *ks, const ShimmerKmStrings *peer,
                        gint64 now)
{
    shimmer_core_log(e, SHIMMER_LOG_DEBUG, "server options: %s", peer->options);
    return true;
}

static void first_key_active(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now)
{
    Client *c = client(e);
    /* As OpenVPN: a PUSH_REPLY within hand-window, unless the server says
     * the login is pending (AUTH_PENDING moves the deadline). */
    c->config_started = now;
    c->push_deadline = now + hand_window_us(e);
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
    /* remote-cert-tls, ns-cert-type, remote-cert-ku, remote-cert-eku. */
    ShimmerCertUsage usage;
    shimmer_config_get_cert_usage(cfg, &usage);
    g_autoptr(GError) error = NULL;
    if (!shimmer_keys_check_cert_usage(&usage, crt, &error)) {
        shimmer_core_log(e, SHIMMER_LOG_ERROR, "the server's certificate: %s", error->message);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    if (cfg->verify_x509_type != SHIMMER_X509_NAME_UNSET && !x509_name_ok(e, crt))
        return GNUTLS_E_CERTIFICATE_ERROR;
    return 0;
}

/* ---------- timers ---------- */

static gint64 next_deadline(ShimmerEngine *e)
{
    Client *c = client(e);
    gint64 d = G_MAXINT64;
    if (e->state == SHIMMER_STATE_RECONNECTING && c->retry_at && !c->crv1_pending && !c->cred_wait)
        d = MIN(d, c->retry_at);
    if (e->state == SHIMMER_STATE_CONNECTING && e->transport_ready && !e->have_remote_sid)
        d = MIN(d, c->connect_deadline);
    if (e->state == SHIMMER_STATE_GETTING_CONFIG) {
        d = MIN(d, c->push_request_at);
        d = MIN(d, c->push_deadline);
        d = MIN(d, e->last_recv + hand_window_us(e));
    }
    return d;
}

static bool handle_timeout(ShimmerEngine *e, gint64 now)
{
    Client *c = client(e);
    if (e->state == SHIMMER_STATE_RECONNECTING && (c->crv1_pending || c->cred_wait))
        return true; /* nothing happens until the user answers */
    if (e->state == SHIMMER_STATE_RECONNECTING && c->retry_at && now >= c->retry_at) {
        begin_connect(e, now);
        return true;
    }
    if (e->state == SHIMMER_STATE_CONNECTING && e->transport_ready && !e->have_remote_sid &&
        now >= c->connect_deadline) {
        restart_session(e, "no answer from the server (server-poll-timeout)", true, now);
        return true;
    }
    if (e->state == SHIMMER_STATE_GETTING_CONFIG && now >= c->push_deadline &&
        (c->auth_pending || c->web_auth)) {
        /* The server gives up too, at about the same time (AUTH_FAILED). */
        g_autofree char *why = g_strdup_printf(
            "the login was not completed: the server's %s was not finished within %u s",
            c->web_auth ? "web sign-in" : "pending authentication",
            seconds_until(c->auth_pending ? c->pending_deadline : c->push_deadline,
                          c->config_started));
        fail(e, why);
        return true;
    }
    if (e->state == SHIMMER_STATE_GETTING_CONFIG &&
        (now >= c->push_deadline || now >= e->last_recv + hand_window_us(e))) {
        restart_session(e, "no reply from the server to the push request", true, now);
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
    g_free(c->token_user);
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
    /* One key share in the ClientHello (the first group: X25519 unless
     * tls-groups says otherwise), as OpenSSL sends: GnuTLS's default, two
     * of different kinds, costs a key generation that is thrown away
     * whenever the server takes the first. A server that wants another
     * group asks for it (HelloRetryRequest). */
    .tls_flags = GNUTLS_CLIENT | GNUTLS_KEY_SHARE_TOP,
    .state_log_level = SHIMMER_LOG_INFO,
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
    .km_ready = km_ready,
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

/* A client engine of CFG; MODEL: a client engine of CFG whose
 * credentials it borrows, or NULL to load its own. */
static ShimmerEngine *client_new(const ShimmerConfig *cfg, const ShimmerEngine *model,
                                 const ShimmerEngineHooks *hooks, GError **error)
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
    ShimmerEngine *e = model != NULL ? shimmer_core_new_shared(model, hooks, &client_role, c)
                                     : shimmer_core_new(cfg, hooks, &client_role, c, error);
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

ShimmerEngine *shimmer_engine_new(const ShimmerConfig *cfg, const ShimmerEngineHooks *hooks,
                                  GError **error)
{
    return client_new(cfg, NULL, hooks, error);
}

ShimmerEngine *shimmer_engine_new_like(const ShimmerEngine *model, const ShimmerEngineHooks *hooks,
                                       GError **error)
{
    if (client_of(model) == NULL) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "the model is not a client engine");
        return NULL;
    }
    return client_new(model->cfg, model, hooks, error);
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
    /* Asks for the password first when the profile holds none. */
    begin_connect(e, now);
}

/* The answer to a CR_TEXT challenge goes to the server at once. */
static void send_cr_response(ShimmerEngine *e, const char *response)
{
    if (e->state != SHIMMER_STATE_GETTING_CONFIG || e->ks[0].status != SHIMMER_KS_ACTIVE)
        return;
    const char *r = response ? response : "";
    g_auto(ShimmerSecretStr) b64 = g_base64_encode((const guchar *)r, strlen(r));
    g_auto(ShimmerSecretStr) msg = g_strconcat("CR_RESPONSE,", b64, NULL);
    shimmer_core_send_message(e, &e->ks[0], msg);
    shimmer_core_log(e, SHIMMER_LOG_INFO, "the answer to the server's challenge is sent");
}

/* A renegotiated key state that waited for the password. */
static void resume_key_method(ShimmerEngine *e, Client *c, gint64 now)
{
    c->km_wait = false;
    for (int i = 0; i < SHIMMER_ENGINE_N_KEY_STATES; i++) {
        ShimmerKeyState *ks = &e->ks[i];
        if (ks->status == SHIMMER_KS_OPEN && ks->key_id == c->km_wait_key && !ks->km_sent) {
            shimmer_core_send_key_method(e, ks, now);
            return;
        }
    }
}

void shimmer_engine_set_credentials(ShimmerEngine *e, const char *username, const char *password,
                                    gint64 now)
{
    Client *c = client_of(e);
    if (c == NULL)
        return;
    if (c->crtext_pending) {
        c->crtext_pending = false;
        send_cr_response(e, password);
        return;
    }
    if (c->crv1_pending) {
        /* PASSWORD is the response to the dynamic challenge. */
        c->crv1_pending = false;
        g_free(c->username);
        c->username = g_strdup(c->crv1_username);
        shimmer_str_free_secret(c->password);
        c->password = g_strconcat("CRV1::", c->crv1_state_id, "::", password ? password : "", NULL);
        g_clear_pointer(&c->auth_token, shimmer_str_free_secret);
        g_clear_pointer(&c->token_user, g_free);
        if (e->state == SHIMMER_STATE_RECONNECTING)
            begin_connect(e, now);
        return;
    }
    if (e->state != SHIMMER_STATE_IDLE && !c->cred_wait && !c->km_wait) {
        /* Nothing asked (an answer that came too late, after its session
         * was gone): it must not replace the password. */
        shimmer_core_log(e, SHIMMER_LOG_DEBUG, "credentials that were not asked for: ignored");
        return;
    }
    if (username != NULL) {
        g_free(c->username);
        c->username = g_strdup(username);
    }
    shimmer_str_free_secret(c->password);
    c->password = g_strdup(password);
    if (c->km_wait) {
        resume_key_method(e, c, now);
        return;
    }
    bool waiting = c->cred_wait;
    c->cred_wait = false;
    if (e->state == SHIMMER_STATE_IDLE || (waiting && e->state == SHIMMER_STATE_RECONNECTING))
        begin_connect(e, now);
}

/* The wrapping this profile asks for, in the client's direction. */
static ShimmerCtlwrap *make_wrap(const ShimmerConfig *cfg)
{
    if (cfg->wrap != SHIMMER_WRAP_TLS_CRYPT_V2)
        return shimmer_core_make_wrap(cfg, SHIMMER_CTLWRAP_ROLE_CLIENT);
    if (cfg->tls_crypt_v2_client == NULL)
        return NULL;
    return shimmer_ctlwrap_new_tls_crypt_v2_client(cfg->tls_crypt_v2_client->kc,
                                                   cfg->tls_crypt_v2_client->wkc,
                                                   cfg->tls_crypt_v2_client->wkc_len);
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
