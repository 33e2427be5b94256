/* SPDX-License-Identifier: MIT */
/*
 * Sessions: the model behind org.shimmervpn.Session1, around a
 * ShimmerTunnel. See session.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "session.h"

#include <string.h>

#include "errors.h"
#include "os/log.h"
#include "secure.h"
#include "tunnel/tunnel.h"

struct ShimmerSession {
    gint ref;
    ShimmerProfile *profile; /* a reference */
    char *id;
    char *profile_name; /* as it was at the start, for log lines */
    guint owner;
    ShimmerSessionOptions opts; /* strings below are not kept */
    ShimmerConfig *cfg;         /* this session's own parse of the profile */
    ShimmerTunnel *tunnel;
    ShimmerSessionListener listener;

    char *state;
    char *state_reason;
    const char *failure_kind;
    guint64 connected_since;
    gboolean network_up;

    guint stats_timer;
    ShimmerSessionCounters last_counters;
    gboolean started;
    gboolean finished;
    char *stop_reason;
    GVariant *final_netconf; /* NetworkConfig as it was when the tunnel ended */
    guint free_idle;         /* frees the ended tunnel */

    /* What the last credentials request asked for. */
    gboolean want_passphrase; /* before the tunnel exists */
    gboolean want_password;
    gboolean want_username;
    gboolean want_otp;
    gboolean want_response; /* a dynamic challenge */
    char *challenge;        /* its text */
    gboolean challenge_echo;
    /* Credentials given to Connect, kept while the key's passphrase is
     * asked for, or (with a static challenge) until the engine asks and
     * the answer to go with the password comes (secrets: wiped). */
    char *username;
    char *password;
    /* PASSWORD already holds the static challenge's answer (Connect gave
     * both). */
    gboolean password_complete;

    /* The request waiting for an answer (shimmer_session_get_
     * credentials_request()), and the web sign-in waiting for the user. */
    gboolean request_active;
    GPtrArray *request_fields; /* char*, NULL-terminated */
    char *request_prompt;
    const char *request_kind;
    ShimmerCredentialsRequest request_view;
    gboolean web_auth_active;
    char *web_url;
    char **web_flags;
    const char *web_kind;
    guint64 web_deadline;
    guint web_timeout;
    ShimmerSessionWebAuth web_view;
    char *message;
};

/* A static challenge's answer goes with the password, never a password
 * alone (the server would take it as a wrong one). */
static gboolean needs_answer(ShimmerSession *s)
{
    return s->cfg->static_challenge != NULL;
}

static void forget_given(ShimmerSession *s)
{
    g_clear_pointer(&s->username, g_free);
    g_clear_pointer(&s->password, shimmer_str_free_secret);
}

static const char *const no_strings[] = {NULL};

/* ---------- logging ---------- */

/* A log line of this session: to the daemon's log with structured fields,
 * and to the listener (which sends it to the owner only). */
static void session_log(ShimmerSession *s, ShimmerLogLevel level, const char *message)
{
    if (level == SHIMMER_LOG_DEBUG && !s->opts.verbose)
        return;
    g_autofree char *text = shimmer_log_object("session", "SHIMMER_SESSION", s->id, s->profile_name,
                                               s->owner, level, G_LOG_LEVEL_INFO, message);
    if (s->listener.log != NULL)
        s->listener.log(s->listener.user, s, level, text);
}

static void session_logf(ShimmerSession *s, ShimmerLogLevel level, const char *format, ...)
    G_GNUC_PRINTF(3, 4);
static void session_logf(ShimmerSession *s, ShimmerLogLevel level, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    session_log(s, level, msg);
}

static void notify(ShimmerSession *s, guint what)
{
    if (s->listener.changed != NULL)
        s->listener.changed(s->listener.user, s, what);
}

/* Keeps REQ for shimmer_session_get_credentials_request() and hands it to
 * the listener. */
static void emit_request(ShimmerSession *s, const ShimmerCredentialsRequest *req)
{
    g_ptr_array_set_size(s->request_fields, 0);
    for (guint i = 0; req->fields[i] != NULL; i++)
        g_ptr_array_add(s->request_fields, g_strdup(req->fields[i]));
    g_ptr_array_add(s->request_fields, NULL);
    g_free(s->request_prompt);
    s->request_prompt = g_utf8_make_valid(req->challenge ? req->challenge : "", -1);
    s->request_kind = req->kind;
    s->request_view = (ShimmerCredentialsRequest){
        .fields = (const char *const *)s->request_fields->pdata,
        .challenge = s->request_prompt,
        .echo = req->echo,
        .kind = req->kind,
    };
    s->request_active = TRUE;
    if (s->listener.credentials_requested != NULL)
        s->listener.credentials_requested(s->listener.user, s, &s->request_view);
}

static void forget_web_auth(ShimmerSession *s)
{
    s->web_auth_active = FALSE;
    g_clear_pointer(&s->web_url, g_free);
    g_clear_pointer(&s->web_flags, g_strfreev);
}

/* ---------- state ---------- */

static void set_state(ShimmerSession *s, const char *state, const char *reason)
{
    /* STATE may be s->state itself (a new reason only). */
    char *copy = g_strdup(state);
    g_free(s->state);
    s->state = copy;
    g_free(s->state_reason);
    s->state_reason = g_utf8_make_valid(reason ? reason : "", -1);
}

static void read_counters(ShimmerSession *s, ShimmerSessionCounters *out)
{
    ShimmerEngineStats st;
    shimmer_engine_get_stats(shimmer_tunnel_get_engine(s->tunnel), &st);
    /* In = what came out of the tunnel (written to the tun), Out = what
     * went into it. */
    out->bytes_in = st.tun_bytes_out;
    out->bytes_out = st.tun_bytes_in;
    out->packets_in = st.tun_packets_out;
    out->packets_out = st.tun_packets_in;
    out->reconnects = (guint)MIN(st.reconnects, G_MAXUINT);
}

static void update_counters(ShimmerSession *s)
{
    if (s->tunnel == NULL)
        return;
    ShimmerSessionCounters now;
    read_counters(s, &now);
    if (memcmp(&now, &s->last_counters, sizeof(now)) == 0)
        return;
    s->last_counters = now;
    notify(s, SHIMMER_SESSION_CHANGED_COUNTERS);
}

static gboolean on_stats_timer(gpointer user)
{
    update_counters(user);
    return G_SOURCE_CONTINUE;
}

/* ---------- tunnel callbacks ---------- */

static void on_tunnel_state(gpointer user, ShimmerState state, const char *reason)
{
    ShimmerSession *s = user;
    if (s->finished)
        return;
    /* Final states come with on_tunnel_finished(), with the stop reason. */
    if (state == SHIMMER_STATE_DISCONNECTED || state == SHIMMER_STATE_FAILED)
        return;
    /* Idle is the time before the first attempt (waiting for credentials):
     * to a user the session is connecting. */
    const char *name = state == SHIMMER_STATE_IDLE ? "connecting" : shimmer_state_to_string(state);
    gboolean up = state == SHIMMER_STATE_CONNECTED;
    /* A web sign-in or an answer only matters within the login it was
     * asked for. */
    forget_web_auth(s);
    gboolean cr_text = g_strcmp0(s->request_kind, "cr-text") == 0;
    if (s->want_response && (cr_text || state != SHIMMER_STATE_RECONNECTING)) {
        /* A CR_TEXT answer belongs to the login that asked; a CRV1 answer
         * is awaited while the session waits to reconnect. */
        s->want_response = FALSE;
        s->request_active = FALSE;
    }
    guint what = SHIMMER_SESSION_CHANGED_STATE;
    if (up || s->network_up) {
        s->network_up = up;
        s->connected_since = up ? (guint64)(g_get_real_time() / G_USEC_PER_SEC) : 0;
        what |= SHIMMER_SESSION_CHANGED_NETWORK;
    }
    set_state(s, name, reason);
    if (up)
        update_counters(s);
    notify(s, what);
}

/* A host-name route was looked up after the tunnel came up. */
static void on_tunnel_network_changed(gpointer user)
{
    ShimmerSession *s = user;
    if (!s->finished && s->network_up)
        notify(s, SHIMMER_SESSION_CHANGED_NETWORK);
}

static void on_tunnel_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    session_log(user, level, message);
}

static void clear_wants(ShimmerSession *s)
{
    s->want_passphrase = s->want_password = s->want_username = s->want_otp = s->want_response =
        FALSE;
}

/* Asks for what the want_* flags say, in the order a person is asked: user
 * name, password, one-time password, passphrase. */
static void request_credentials(ShimmerSession *s)
{
    g_autoptr(GPtrArray) fields = g_ptr_array_new();
    if (s->want_username)
        g_ptr_array_add(fields, (gpointer) "username");
    if (s->want_password)
        g_ptr_array_add(fields, (gpointer) "password");
    if (s->want_otp)
        g_ptr_array_add(fields, (gpointer) "otp");
    if (s->want_passphrase)
        g_ptr_array_add(fields, (gpointer) "key-passphrase");
    g_ptr_array_add(fields, NULL);
    g_autofree char *list = g_strjoinv(", ", (char **)fields->pdata);
    const char *why = s->want_password || s->want_otp || s->want_username
                          ? "waiting for credentials"
                          : "waiting for the private key's passphrase";
    /* A renegotiation that needs the password again (auth-nocache) leaves
     * the tunnel up: only the reason changes then. */
    set_state(s, s->network_up ? s->state : "connecting", why);
    notify(s, SHIMMER_SESSION_CHANGED_STATE);
    session_logf(s, SHIMMER_LOG_INFO, "%s (%s)", why, list);
    gboolean challenge = s->want_otp && s->cfg->static_challenge != NULL;
    ShimmerCredentialsRequest req = {
        .fields = (const char *const *)fields->pdata,
        .challenge = challenge ? s->cfg->static_challenge : "",
        .echo = challenge && s->cfg->static_challenge_echo,
        .kind = s->want_password || s->want_otp || s->want_username ? "password" : "key-passphrase",
    };
    emit_request(s, &req);
}

static void set_message(ShimmerSession *s, const char *text)
{
    g_free(s->message);
    s->message = g_utf8_make_valid(text, -1);
    notify(s, SHIMMER_SESSION_CHANGED_MESSAGE);
}

static void on_tunnel_need_credentials(gpointer user, const ShimmerNeedCredentials *need)
{
    ShimmerSession *s = user;
    if (need->kind == SHIMMER_CREDENTIALS_CR_TEXT && !need->response_required) {
        /* Nothing to answer ("approve on your phone"): the user only needs
         * to read it. */
        set_message(s, need->text ? need->text : "");
        return;
    }
    if (need->kind == SHIMMER_CREDENTIALS_CHALLENGE || need->kind == SHIMMER_CREDENTIALS_CR_TEXT) {
        /* The server's dynamic challenge (answered on a new connection) or
         * a pending login's (answered on this one). */
        gboolean cr_text = need->kind == SHIMMER_CREDENTIALS_CR_TEXT;
        s->want_response = TRUE;
        s->challenge_echo = need->echo;
        g_free(s->challenge);
        s->challenge = g_strdup(need->text);
        static const char *const fields[] = {"response", NULL};
        /* A pending login stays in its state; a CRV1 answer waits for a
         * new connection. */
        set_state(s, cr_text ? s->state : "connecting",
                  "waiting for the answer to the server's challenge");
        notify(s, SHIMMER_SESSION_CHANGED_STATE);
        ShimmerCredentialsRequest req = {
            .fields = fields,
            .challenge = s->challenge,
            .echo = s->challenge_echo,
            .kind = cr_text ? "cr-text" : "dynamic-challenge",
        };
        emit_request(s, &req);
        return;
    }
    s->want_username = need->kind == SHIMMER_CREDENTIALS_USERNAME_PASSWORD && s->username == NULL;
    /* A password given to Connect waits here for the challenge's answer. */
    s->want_password = s->password == NULL;
    s->want_otp = needs_answer(s) && !s->password_complete;
    request_credentials(s);
}

static void on_tunnel_web_auth(gpointer user, const ShimmerWebAuth *request)
{
    ShimmerSession *s = user;
    if (s->finished)
        return;
    forget_web_auth(s);
    s->web_url = g_strdup(request->url);
    s->web_flags = g_strdupv(request->flags);
    s->web_kind = request->kind == SHIMMER_WEB_AUTH_OPEN_URL ? "openurl" : "webauth";
    s->web_timeout = request->timeout_s;
    s->web_deadline = (guint64)(g_get_real_time() / G_USEC_PER_SEC) + request->timeout_s;
    s->web_view = (ShimmerSessionWebAuth){
        .url = s->web_url,
        .kind = s->web_kind,
        .flags = (const char *const *)s->web_flags,
        .deadline = s->web_deadline,
        .timeout = s->web_timeout,
    };
    s->web_auth_active = TRUE;
    g_autofree char *why = g_strdup_printf(
        "waiting for the web sign-in the server asks for (%u s left)", request->timeout_s);
    set_state(s, "web-sign-in", why);
    /* The URL itself goes to the owner only (WebAuthRequested), never to
     * the daemon's log: it may carry a session secret. */
    session_log(s, SHIMMER_LOG_INFO, why);
    notify(s, SHIMMER_SESSION_CHANGED_STATE | SHIMMER_SESSION_CHANGED_WEB_AUTH);
}

static void on_tunnel_info(gpointer user, const char *text)
{
    ShimmerSession *s = user;
    if (!s->finished)
        set_message(s, text);
}

static const char *failure_kind_of(ShimmerSession *s, gboolean failed)
{
    if (!failed)
        return "";
    switch (s->tunnel ? shimmer_tunnel_get_failure(s->tunnel) : SHIMMER_TUNNEL_FAILURE_CONNECT) {
    case SHIMMER_TUNNEL_FAILURE_AUTH:
        return "auth-failed";
    case SHIMMER_TUNNEL_FAILURE_NETWORK_CONFIG:
        return "network-config";
    case SHIMMER_TUNNEL_FAILURE_CONNECT:
    case SHIMMER_TUNNEL_FAILURE_NONE:
    default:
        return "connect-failed";
    }
}

static gboolean free_tunnel_idle(gpointer user)
{
    ShimmerSession *s = user;
    s->free_idle = 0;
    g_clear_pointer(&s->tunnel, shimmer_tunnel_free);
    return G_SOURCE_REMOVE;
}

static void on_tunnel_finished(gpointer user, gboolean failed, const char *reason)
{
    ShimmerSession *s = user;
    if (s->finished)
        return;
    s->finished = TRUE;
    clear_wants(s);
    s->request_active = FALSE;
    forget_web_auth(s);
    forget_given(s);
    update_counters(s);
    if (s->stats_timer) {
        g_source_remove(s->stats_timer);
        s->stats_timer = 0;
    }
    const char *why = s->stop_reason && !failed ? s->stop_reason : reason;
    if (why == NULL)
        why = failed ? "the session failed" : "disconnected";
    s->failure_kind = failure_kind_of(s, failed);
    s->network_up = FALSE;
    s->connected_since = 0;
    if (s->tunnel != NULL) {
        /* What stays readable while the object lingers; the tunnel itself
         * (its packet buffers, engine and TLS) goes as soon as it has
         * returned from this callback, so that quick connect/disconnect
         * cycles do not pile up dead tunnels. */
        s->final_netconf = shimmer_tunnel_get_network_config(s->tunnel);
        s->free_idle = g_idle_add(free_tunnel_idle, s);
    }
    set_state(s, failed ? "failed" : "disconnected", why);
    session_logf(s, failed ? SHIMMER_LOG_ERROR : SHIMMER_LOG_INFO, "%s: %s",
                 failed ? "failed" : "disconnected", why);
    notify(s, SHIMMER_SESSION_CHANGED_STATE | SHIMMER_SESSION_CHANGED_NETWORK);
    if (s->listener.finished != NULL)
        s->listener.finished(s->listener.user, s);
}

/* ---------- the tunnel ---------- */

static gboolean create_tunnel(ShimmerSession *s, const char *username, const char *password,
                              GError **error)
{
    ShimmerTunnelOptions opts = {
        .no_netcfg = s->opts.no_netcfg,
        .tun_name = s->opts.tun_pattern,
        .route_protocol = s->opts.route_protocol,
        .dns = s->opts.dns,
        .username = username,
        .password = password,
    };
    ShimmerTunnelCallbacks cb = {
        .state_changed = on_tunnel_state,
        .log = on_tunnel_log,
        .need_credentials = on_tunnel_need_credentials,
        .finished = on_tunnel_finished,
        .network_changed = on_tunnel_network_changed,
        .web_auth = on_tunnel_web_auth,
        .info = on_tunnel_info,
        .user = s,
    };
    g_autoptr(GError) cerr = NULL;
    s->tunnel = shimmer_tunnel_new(s->cfg, &opts, &cb, &cerr);
    if (s->tunnel == NULL) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                    "cannot start a session of \"%s\": %s", s->profile_name, cerr->message);
        return FALSE;
    }
    return TRUE;
}

/* ---------- requests ---------- */

static const char *require(GHashTable *creds, const char *key, GError **error)
{
    const char *v = g_hash_table_lookup(creds, key);
    if (v == NULL && error != NULL && *error == NULL)
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "credentials: \"%s\" was requested but not given", key);
    return v;
}

/* The passphrase came: the tunnel can be made now, with the user name and
 * password asked together with it or given to Connect. */
static gboolean provide_passphrase(ShimmerSession *s, const char *pass, const char *username,
                                   const char *secret, GError **error)
{
    shimmer_tunnel_config_set_key_passphrase(s->cfg, pass);
    const char *u = username ? username : s->username;
    /* Without the challenge's answer, a password given to Connect is kept
     * for when the engine asks (then only the answer is asked for). */
    const char *pw = secret                                     ? secret
                     : needs_answer(s) && !s->password_complete ? NULL
                                                                : s->password;
    gboolean ok = create_tunnel(s, u, pw, error);
    if (pw != NULL || !ok)
        forget_given(s);
    if (!ok) {
        /* Most likely the wrong passphrase: the session ends with the
         * reason, and the caller hears it too. */
        on_tunnel_finished(s, TRUE, (*error)->message);
        return FALSE;
    }
    clear_wants(s);
    set_state(s, "connecting", NULL);
    notify(s, SHIMMER_SESSION_CHANGED_STATE);
    shimmer_tunnel_start(s->tunnel);
    return TRUE;
}

gboolean shimmer_session_provide_credentials(ShimmerSession *s, GHashTable *creds, GError **error)
{
    if (s->finished) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                            "the session has ended");
        return FALSE;
    }
    if (s->want_response) {
        const char *response = require(creds, "response", error);
        if (response == NULL)
            return FALSE;
        s->want_response = FALSE;
        s->request_active = FALSE;
        if (g_strcmp0(s->request_kind, "cr-text") == 0) {
            /* The answer goes to the server now; the login goes on. */
            set_state(s, s->state, "the answer to the server's challenge was sent");
        } else {
            set_state(s, "connecting", NULL);
        }
        notify(s, SHIMMER_SESSION_CHANGED_STATE);
        shimmer_tunnel_set_credentials(s->tunnel, NULL, response);
        return TRUE;
    }
    if (!s->want_passphrase && !s->want_password && !s->want_otp) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                            "credentials: nothing was requested");
        return FALSE;
    }
    g_autoptr(GError) missing = NULL;
    const char *username = g_hash_table_lookup(creds, "username");
    if (s->want_username)
        require(creds, "username", &missing);
    const char *password = s->want_password ? require(creds, "password", &missing)
                           : s->want_otp    ? s->password
                                            : NULL;
    const char *otp = s->want_otp ? require(creds, "otp", &missing) : NULL;
    const char *pass = s->want_passphrase ? require(creds, "key-passphrase", &missing) : NULL;
    if (missing != NULL) {
        g_propagate_error(error, g_steal_pointer(&missing));
        return FALSE;
    }
    char *combined = otp ? shimmer_engine_static_challenge_password(password, otp) : NULL;
    const char *secret = combined ? combined : password;
    gboolean ok = TRUE;
    s->request_active = FALSE;
    if (pass != NULL) {
        ok = provide_passphrase(s, pass, username, secret, error);
    } else {
        clear_wants(s);
        set_state(s, s->network_up ? s->state : "connecting", NULL);
        notify(s, SHIMMER_SESSION_CHANGED_STATE);
        shimmer_tunnel_set_credentials(s->tunnel, username ? username : s->username, secret);
        forget_given(s);
    }
    shimmer_str_free_secret(combined);
    return ok;
}

gboolean shimmer_session_restart(ShimmerSession *s, const char *why, GError **error)
{
    if (s->finished) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                            "the session has ended; connect the profile again");
        return FALSE;
    }
    if (s->tunnel == NULL || s->want_password || s->want_otp) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                            "the session waits for credentials (ProvideCredentials)");
        return FALSE;
    }
    shimmer_tunnel_restart(s->tunnel, why);
    return TRUE;
}

/* ---------- life cycle ---------- */

ShimmerSession *shimmer_session_new(ShimmerProfile *profile, const char *id, guint owner,
                                    const ShimmerSessionOptions *options,
                                    const ShimmerSessionListener *listener, GError **error)
{
    gsize len;
    const char *text = shimmer_profile_get_text(profile, &len);
    const char *pname = shimmer_profile_get_name(profile);
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    g_autoptr(ShimmerConfig) cfg = shimmer_profile_parse(
        pname, text, len, shimmer_profile_get_owner(profile), &usable, &diagnostics);
    if (!usable) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_CONFIG,
                    "the profile cannot be used:\n%s", diagnostics);
        return NULL;
    }
    ShimmerSession *s = g_new0(ShimmerSession, 1);
    s->ref = 1;
    s->profile = shimmer_profile_ref(profile);
    s->id = g_strdup(id);
    s->profile_name = g_strdup(pname);
    s->owner = owner;
    s->opts = *options;
    s->opts.username = s->opts.password = s->opts.otp = s->opts.key_passphrase = NULL;
    s->opts.tun_pattern = NULL; /* used below, before the caller's string goes */
    s->listener = *listener;
    s->cfg = g_steal_pointer(&cfg);
    s->state = g_strdup("connecting");
    s->state_reason = g_strdup("");
    s->failure_kind = "";
    s->request_fields = g_ptr_array_new_with_free_func(g_free);
    s->message = g_strdup("");

    if (options->key_passphrase != NULL)
        shimmer_tunnel_config_set_key_passphrase(s->cfg, options->key_passphrase);
    /* With a static challenge a password is complete only with its answer. */
    char *combined = NULL;
    const char *password = options->password;
    gboolean complete = !needs_answer(s);
    if (needs_answer(s) && options->password != NULL && options->otp != NULL) {
        combined = shimmer_engine_static_challenge_password(options->password, options->otp);
        password = combined;
        complete = TRUE;
    }
    if (s->cfg->key_encrypted && !s->cfg->askpass_file.present) {
        /* The tunnel is made once the passphrase is there. What the engine
         * would ask for next is asked for at the same time, so that a
         * person answers one prompt. */
        s->want_passphrase = TRUE;
        s->username = g_strdup(options->username);
        s->password = g_strdup(password);
        s->password_complete = complete;
        if (s->cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE && s->cfg->password == NULL &&
            s->password == NULL) {
            s->want_password = TRUE;
            s->want_username = s->cfg->username == NULL && s->username == NULL;
            s->want_otp = s->cfg->static_challenge != NULL;
        }
    }
    /* The tun pattern is needed when the tunnel is made, maybe later. */
    s->opts.tun_pattern = g_intern_string(options->tun_pattern);
    gboolean ok = TRUE;
    if (!s->want_passphrase) {
        if (!complete && password != NULL) {
            /* Kept for when the engine asks: then the answer is asked for. */
            s->username = g_strdup(options->username);
            s->password = g_strdup(password);
        }
        ok = create_tunnel(s, options->username, complete ? password : NULL, error);
    }
    shimmer_str_free_secret(combined);
    if (!ok) {
        shimmer_session_unref(s);
        return NULL;
    }
    return s;
}

void shimmer_session_start(ShimmerSession *s)
{
    if (s->started)
        return;
    s->started = TRUE;
    s->stats_timer = g_timeout_add_seconds(1, on_stats_timer, s);
    if (s->want_passphrase) {
        request_credentials(s);
        return;
    }
    shimmer_tunnel_start(s->tunnel);
}

void shimmer_session_stop(ShimmerSession *s, const char *why)
{
    if (s->finished)
        return;
    if (s->stop_reason == NULL)
        s->stop_reason = g_strdup(why);
    if (s->tunnel == NULL || !s->started) {
        on_tunnel_finished(s, FALSE, why);
        return;
    }
    shimmer_tunnel_stop(s->tunnel);
}

void shimmer_session_abort(ShimmerSession *s, const char *why)
{
    if (s->finished)
        return;
    if (s->stop_reason == NULL)
        s->stop_reason = g_strdup(why);
    /* Freeing the tunnel tears it, its routes and its DNS down now. */
    g_clear_pointer(&s->tunnel, shimmer_tunnel_free);
    on_tunnel_finished(s, FALSE, why);
}

ShimmerSession *shimmer_session_ref(ShimmerSession *s)
{
    s->ref++;
    return s;
}

void shimmer_session_unref(ShimmerSession *s)
{
    if (s == NULL || --s->ref > 0)
        return;
    if (s->stats_timer)
        g_source_remove(s->stats_timer);
    if (s->free_idle)
        g_source_remove(s->free_idle);
    /* The tunnel goes before the configuration it reads. */
    g_clear_pointer(&s->tunnel, shimmer_tunnel_free);
    g_clear_pointer(&s->final_netconf, g_variant_unref);
    shimmer_config_free(s->cfg);
    shimmer_profile_unref(s->profile);
    g_free(s->state);
    g_free(s->state_reason);
    g_free(s->stop_reason);
    g_free(s->username);
    g_free(s->challenge);
    shimmer_str_free_secret(s->password);
    g_ptr_array_unref(s->request_fields);
    g_free(s->request_prompt);
    forget_web_auth(s);
    g_free(s->message);
    g_free(s->profile_name);
    g_free(s->id);
    g_free(s);
}

/* ---------- accessors ---------- */

const char *shimmer_session_get_id(ShimmerSession *s)
{
    return s->id;
}

guint shimmer_session_get_owner(ShimmerSession *s)
{
    return s->owner;
}

ShimmerProfile *shimmer_session_get_profile(ShimmerSession *s)
{
    return s->profile;
}

gboolean shimmer_session_is_finished(ShimmerSession *s)
{
    return s->finished;
}

gboolean shimmer_session_get_bound_to_caller(ShimmerSession *s)
{
    return s->opts.bound_to_caller;
}

gboolean shimmer_session_get_configure_network(ShimmerSession *s)
{
    return !s->opts.no_netcfg;
}

const char *shimmer_session_get_state(ShimmerSession *s)
{
    return s->state;
}

const char *shimmer_session_get_state_reason(ShimmerSession *s)
{
    return s->state_reason;
}

const char *shimmer_session_get_failure_kind(ShimmerSession *s)
{
    return s->failure_kind;
}

guint64 shimmer_session_get_connected_since(ShimmerSession *s)
{
    return s->connected_since;
}

const ShimmerSessionWebAuth *shimmer_session_get_web_auth(ShimmerSession *s)
{
    return s->web_auth_active ? &s->web_view : NULL;
}

const ShimmerCredentialsRequest *shimmer_session_get_credentials_request(ShimmerSession *s)
{
    return s->request_active ? &s->request_view : NULL;
}

const char *shimmer_session_get_message(ShimmerSession *s)
{
    return s->message;
}

static gboolean up(ShimmerSession *s)
{
    return s->network_up && s->tunnel != NULL;
}

static const char *or_empty(const char *v)
{
    return v ? v : "";
}

const char *shimmer_session_get_interface(ShimmerSession *s)
{
    return up(s) ? or_empty(shimmer_tunnel_get_tun_name(s->tunnel)) : "";
}

const char *shimmer_session_get_remote_address(ShimmerSession *s)
{
    return up(s) ? or_empty(shimmer_tunnel_get_remote_address(s->tunnel)) : "";
}

const char *shimmer_session_get_cipher(ShimmerSession *s)
{
    return up(s) ? or_empty(shimmer_engine_get_cipher(shimmer_tunnel_get_engine(s->tunnel))) : "";
}

const char *shimmer_session_get_tls_version(ShimmerSession *s)
{
    return up(s) ? or_empty(shimmer_engine_get_tls_version(shimmer_tunnel_get_engine(s->tunnel)))
                 : "";
}

const char *const *shimmer_session_get_addresses(ShimmerSession *s)
{
    return up(s) ? shimmer_tunnel_get_addresses(s->tunnel) : no_strings;
}

const char *const *shimmer_session_get_routes(ShimmerSession *s)
{
    return up(s) ? shimmer_tunnel_get_routes(s->tunnel) : no_strings;
}

const char *const *shimmer_session_get_dns_servers(ShimmerSession *s)
{
    return up(s) ? shimmer_tunnel_get_dns_servers(s->tunnel) : no_strings;
}

const char *const *shimmer_session_get_dns_domains(ShimmerSession *s)
{
    return up(s) ? shimmer_tunnel_get_dns_domains(s->tunnel) : no_strings;
}

GVariant *shimmer_session_dup_network_config(ShimmerSession *s)
{
    /* Kept after a disconnect, as it was last computed. */
    if (s->final_netconf != NULL)
        return g_variant_ref(s->final_netconf);
    if (s->tunnel == NULL)
        return g_variant_ref_sink(g_variant_new("a{sv}", NULL));
    return shimmer_tunnel_get_network_config(s->tunnel);
}

void shimmer_session_get_counters(ShimmerSession *s, ShimmerSessionCounters *out)
{
    *out = s->last_counters;
}
