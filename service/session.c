/* SPDX-License-Identifier: MIT */
/*
 * Sessions: org.shimmervpn.Session1 objects around a ShimmerTunnel. See
 * session.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "session.h"

#include <string.h>

#include "tunnel/tunnel.h"
#include "os/netcfg.h"
#include "profile.h"
#include "secure.h"

struct ShimmerSession {
    gint ref;
    ShimmerDaemon *d;
    ShimmerProfile *profile; /* a reference */
    char *id;
    char *path;
    char *profile_name; /* as it was at the start, for log lines */
    guint owner;
    gboolean configure_network;
    ShimmerConfig *cfg; /* this session's own parse of the profile */
    ShimmerTunnel *client;
    ShimmerDBusObjectSkeleton *object;
    ShimmerDBusSession1 *iface;

    guint watch_id;
    guint stats_timer;
    guint linger_timer;
    gboolean started;
    gboolean finished;
    char *stop_reason;

    /* What CredentialsRequested asked for and ProvideCredentials may give. */
    gboolean want_passphrase; /* before the client exists */
    gboolean want_password;
    gboolean want_username;
    gboolean want_otp;
    gboolean want_response; /* a dynamic challenge */
    char *challenge;        /* its text */
    gboolean challenge_echo;
    /* Credentials given to Connect, kept while the client waits for the
     * key's passphrase (secrets: wiped). */
    char *username;
    char *password;
};

static const char *const no_strings[] = {NULL};

/* ---------- logging ---------- */

static GLogLevelFlags glib_level(ShimmerLogLevel level)
{
    switch (level) {
    case SHIMMER_LOG_ERROR:
    case SHIMMER_LOG_WARNING:
        return G_LOG_LEVEL_WARNING;
    case SHIMMER_LOG_INFO:
        return G_LOG_LEVEL_INFO;
    case SHIMMER_LOG_DEBUG:
    default:
        return G_LOG_LEVEL_DEBUG;
    }
}

/* A log line of this session: to the daemon's log with structured fields,
 * and as a Log signal to the owner's bus names only (directed signals: the
 * lines can name servers and users, which other users need not see). */
static void session_log(ShimmerSession *s, ShimmerLogLevel level, const char *message)
{
    if (level == SHIMMER_LOG_DEBUG && !shimmer_daemon_get_verbose(s->d))
        return;
    /* Server-supplied text (AUTH_FAILED reasons, ...) may be anything:
     * D-Bus strings must be UTF-8. */
    g_autofree char *text = g_utf8_make_valid(message, -1);
    static const char *const level_names[] = {"error", "warning", "info", "debug"};
    g_autofree char *owner = g_strdup_printf("%u", s->owner);
    /* SHIMMER_LEVEL keeps errors apart from warnings (GLib has no
     * non-fatal error level); shimmerd's stderr writer prints it. */
    g_log_structured(G_LOG_DOMAIN, glib_level(level), "SHIMMER_SESSION", s->id, "SHIMMER_PROFILE",
                     s->profile_name, "SHIMMER_OWNER_UID", owner, "SHIMMER_LEVEL",
                     level_names[MIN((guint)level, 3u)], "MESSAGE", "session %s (%s): %s", s->id,
                     s->profile_name, text);

    g_auto(GStrv) names = shimmer_daemon_dup_names_of_uid(s->d, s->owner);
    if (names[0] == NULL)
        return;
    g_autoptr(GVariant) params = g_variant_ref_sink(g_variant_new("(us)", (guint)level, text));
    GDBusConnection *bus = shimmer_daemon_get_bus(s->d);
    for (guint i = 0; names[i] != NULL; i++)
        g_dbus_connection_emit_signal(bus, names[i], s->path, "org.shimmervpn.Session1", "Log",
                                      params, NULL);
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

/* ---------- properties ---------- */

static void set_state(ShimmerSession *s, const char *state, const char *reason)
{
    g_autofree char *r = g_utf8_make_valid(reason ? reason : "", -1);
    g_object_set(s->iface, "state", state, "state-reason", r, NULL);
}

static void update_counters(ShimmerSession *s)
{
    if (s->client == NULL)
        return;
    ShimmerEngineStats st;
    shimmer_engine_get_stats(shimmer_tunnel_get_engine(s->client), &st);
    /* In = what came out of the tunnel (written to the tun), Out = what
     * went into it; the skeleton only announces values that changed. */
    g_object_set(s->iface, "bytes-in", st.tun_bytes_out, "bytes-out", st.tun_bytes_in, "packets-in",
                 st.tun_packets_out, "packets-out", st.tun_packets_in, "reconnects",
                 (guint)MIN(st.reconnects, G_MAXUINT), NULL);
}

static gboolean on_stats_timer(gpointer user)
{
    update_counters(user);
    return G_SOURCE_CONTINUE;
}

static void update_network(ShimmerSession *s)
{
    ShimmerTunnel *c = s->client;
    ShimmerEngine *e = shimmer_tunnel_get_engine(c);
    const char *tun = shimmer_tunnel_get_tun_name(c);
    const char *remote = shimmer_tunnel_get_remote_address(c);
    const char *cipher = shimmer_engine_get_cipher(e);
    const char *tls = shimmer_engine_get_tls_version(e);
    g_autoptr(GVariant) netconf = shimmer_tunnel_get_network_config(c);
    g_object_set(s->iface, "network-config", netconf, "interface", tun ? tun : "", "remote-address",
                 remote ? remote : "", "addresses", shimmer_tunnel_get_addresses(c), "routes",
                 shimmer_tunnel_get_routes(c), "dns-servers", shimmer_tunnel_get_dns_servers(c),
                 "dns-domains", shimmer_tunnel_get_dns_domains(c), "cipher", cipher ? cipher : "",
                 "tls-version", tls ? tls : "", NULL);
}

static void clear_network(ShimmerSession *s)
{
    g_object_set(s->iface, "interface", "", "addresses", no_strings, "routes", no_strings,
                 "dns-servers", no_strings, "dns-domains", no_strings, "connected-since",
                 (guint64)0, NULL);
}

/* ---------- client callbacks ---------- */

static void on_client_state(gpointer user, ShimmerState state, const char *reason)
{
    ShimmerSession *s = user;
    if (s->finished)
        return;
    /* Idle is the time before the first attempt (waiting for credentials):
     * to a user the session is connecting. */
    const char *name = state == SHIMMER_STATE_IDLE ? "connecting" : shimmer_state_to_string(state);
    if (state == SHIMMER_STATE_CONNECTED) {
        update_network(s);
        g_object_set(s->iface, "connected-since", (guint64)(g_get_real_time() / G_USEC_PER_SEC),
                     NULL);
        update_counters(s);
    } else {
        g_object_set(s->iface, "connected-since", (guint64)0, NULL);
    }
    /* Final states come with on_client_finished(), with the stop reason. */
    if (state != SHIMMER_STATE_DISCONNECTED && state != SHIMMER_STATE_FAILED)
        set_state(s, name, reason);
}

/* A host-name route was looked up after the tunnel came up. */
static void on_client_network_changed(gpointer user)
{
    ShimmerSession *s = user;
    if (!s->finished && s->client != NULL)
        update_network(s);
}

static void on_client_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    session_log(user, level, message);
}

/* Emits CredentialsRequested for what the want_* flags say, in the order a
 * person is asked: user name, password, one-time password, passphrase. */
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
    const char *why =
        s->want_password ? "waiting for credentials" : "waiting for the private key's passphrase";
    set_state(s, "connecting", why);
    session_logf(s, SHIMMER_LOG_INFO, "%s (%s)", why, list);
    gboolean challenge = s->want_otp && s->cfg->static_challenge != NULL;
    shimmer_dbus_session1_emit_credentials_requested(s->iface, (const char *const *)fields->pdata,
                                                     challenge ? s->cfg->static_challenge : "",
                                                     challenge && s->cfg->static_challenge_echo);
}

static void on_client_need_credentials(gpointer user, const ShimmerCredentialsRequest *req)
{
    ShimmerSession *s = user;
    if (req->kind == SHIMMER_CREDENTIALS_CHALLENGE) {
        /* The server's dynamic challenge. */
        s->want_response = TRUE;
        s->challenge_echo = req->echo;
        g_free(s->challenge);
        s->challenge = g_strdup(req->text);
        const char *fields[] = {"response", NULL};
        set_state(s, "connecting", "waiting for the answer to the server's challenge");
        session_logf(s, SHIMMER_LOG_INFO, "the server asks: %s", s->challenge);
        shimmer_dbus_session1_emit_credentials_requested(s->iface, fields, s->challenge,
                                                         s->challenge_echo);
        return;
    }
    s->want_username = req->kind == SHIMMER_CREDENTIALS_USERNAME_PASSWORD;
    s->want_password = TRUE;
    s->want_otp = s->cfg->static_challenge != NULL;
    request_credentials(s);
}

static gboolean on_linger_over(gpointer user)
{
    ShimmerSession *s = user;
    s->linger_timer = 0;
    shimmer_daemon_remove_session(s->d, s); /* may drop the last reference */
    return G_SOURCE_REMOVE;
}

/* FailureKind of a session that ended, FAILED or not. */
static const char *failure_kind(ShimmerSession *s, gboolean failed)
{
    if (!failed)
        return "";
    switch (s->client ? shimmer_tunnel_get_failure(s->client) : SHIMMER_TUNNEL_FAILURE_CONNECT) {
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

static void on_client_finished(gpointer user, gboolean failed, const char *reason)
{
    ShimmerSession *s = user;
    if (s->finished)
        return;
    s->finished = TRUE;
    s->want_passphrase = s->want_password = s->want_username = s->want_otp = s->want_response =
        FALSE;
    g_clear_pointer(&s->username, g_free);
    g_clear_pointer(&s->password, shimmer_str_free_secret);
    update_counters(s);
    if (s->stats_timer) {
        g_source_remove(s->stats_timer);
        s->stats_timer = 0;
    }
    if (s->watch_id) {
        g_bus_unwatch_name(s->watch_id);
        s->watch_id = 0;
    }
    const char *why = s->stop_reason && !failed ? s->stop_reason : reason;
    if (why == NULL)
        why = failed ? "the session failed" : "disconnected";
    clear_network(s);
    /* With the state: the same PropertiesChanged carries both. */
    g_object_set(s->iface, "failure-kind", failure_kind(s, failed), NULL);
    set_state(s, failed ? "failed" : "disconnected", why);
    session_logf(s, failed ? SHIMMER_LOG_ERROR : SHIMMER_LOG_INFO, "%s: %s",
                 failed ? "failed" : "disconnected", why);
    if (shimmer_profile_get_session(s->profile) == s)
        shimmer_profile_set_session(s->profile, NULL);
    s->linger_timer = g_timeout_add_seconds(SHIMMER_SESSION_LINGER_SECONDS, on_linger_over, s);
    shimmer_daemon_session_finished(s->d, s);
}

/* ---------- the client ---------- */

/* The engine reads the private key when it is created: the passphrase
 * goes into this session's own configuration first. */
static void put_passphrase(ShimmerSession *s, const char *passphrase)
{
    shimmer_tunnel_config_set_key_passphrase(s->cfg, passphrase);
}

static gboolean create_client(ShimmerSession *s, const char *username, const char *password,
                              GError **error)
{
    ShimmerTunnelOptions opts = {
        .no_netcfg = !s->configure_network,
        .tun_name = SHIMMER_DAEMON_TUN_PATTERN,
        .route_protocol = SHIMMER_NETCFG_RTPROT_SHIMMERD,
        .dns = shimmer_daemon_get_dns(s->d),
        .username = username,
        .password = password,
    };
    ShimmerTunnelCallbacks cb = {
        .state_changed = on_client_state,
        .log = on_client_log,
        .need_credentials = on_client_need_credentials,
        .finished = on_client_finished,
        .network_changed = on_client_network_changed,
        .user = s,
    };
    g_autoptr(GError) cerr = NULL;
    s->client = shimmer_tunnel_new(s->cfg, &opts, &cb, &cerr);
    if (s->client == NULL) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_FAILED,
                    "cannot start a session of \"%s\": %s", s->profile_name, cerr->message);
        return FALSE;
    }
    return TRUE;
}

/* ---------- Session1 methods ---------- */

typedef struct {
    ShimmerSession *s;
    GHashTable *creds; /* key -> value (secret) */
} SessionCall;

static void free_secret_value(gpointer p)
{
    shimmer_str_free_secret(p);
}

static SessionCall *session_call_new(ShimmerSession *s)
{
    SessionCall *c = g_new0(SessionCall, 1);
    c->s = shimmer_session_ref(s);
    return c;
}

static void session_call_free(gpointer data)
{
    SessionCall *c = data;
    shimmer_session_unref(c->s);
    if (c->creds != NULL)
        g_hash_table_destroy(c->creds);
    g_free(c);
}

static void disconnect_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                                  guint caller_uid, gpointer data)
{
    SessionCall *c = data;
    /* Disconnecting an ended session is not an error: it is disconnected. */
    g_autofree char *why = g_strdup_printf("disconnected on request (uid %u)", caller_uid);
    shimmer_dbus_session1_complete_disconnect(c->s->iface, invocation);
    shimmer_session_stop(c->s, why);
}

static gboolean handle_disconnect(ShimmerDBusSession1 *iface, GDBusMethodInvocation *invocation,
                                  gpointer user)
{
    ShimmerSession *s = user;
    shimmer_daemon_authorize(s->d, invocation, SHIMMER_AUTH_SESSION, s->owner,
                             disconnect_authorized, session_call_new(s), session_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void restart_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                               guint caller_uid, gpointer data)
{
    SessionCall *c = data;
    ShimmerSession *s = c->s;
    if (s->finished) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_FAILED,
                                  "the session has ended; connect the profile again");
        return;
    }
    if (s->client == NULL || s->want_password) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_FAILED,
                                  "the session waits for credentials (ProvideCredentials)");
        return;
    }
    shimmer_dbus_session1_complete_restart(s->iface, invocation);
    g_autofree char *why = g_strdup_printf("restart requested (uid %u)", caller_uid);
    shimmer_tunnel_restart(s->client, why);
}

static gboolean handle_restart(ShimmerDBusSession1 *iface, GDBusMethodInvocation *invocation,
                               gpointer user)
{
    ShimmerSession *s = user;
    shimmer_daemon_authorize(s->d, invocation, SHIMMER_AUTH_SESSION, s->owner, restart_authorized,
                             session_call_new(s), session_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static const char *require(GHashTable *creds, const char *key, GError **error)
{
    const char *v = g_hash_table_lookup(creds, key);
    if (v == NULL && error != NULL && *error == NULL)
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                    "credentials: \"%s\" was requested but not given", key);
    return v;
}

static void provide_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                               guint caller_uid, gpointer data)
{
    SessionCall *c = data;
    ShimmerSession *s = c->s;
    g_autoptr(GError) error = NULL;
    if (s->finished) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_FAILED, "the session has ended");
        return;
    }
    if (s->want_response) {
        const char *response = require(c->creds, "response", &error);
        if (error != NULL) {
            shimmer_daemon_return_error(invocation, error);
            return;
        }
        s->want_response = FALSE;
        shimmer_dbus_session1_complete_provide_credentials(s->iface, invocation);
        set_state(s, "connecting", NULL);
        shimmer_tunnel_set_credentials(s->client, NULL, response);
        return;
    }
    if (!s->want_passphrase && !s->want_password) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                                  "credentials: nothing was requested");
        return;
    }
    const char *username = g_hash_table_lookup(c->creds, "username");
    if (s->want_username)
        require(c->creds, "username", &error);
    const char *password = s->want_password ? require(c->creds, "password", &error) : NULL;
    const char *otp = s->want_otp ? require(c->creds, "otp", &error) : NULL;
    const char *pass = s->want_passphrase ? require(c->creds, "key-passphrase", &error) : NULL;
    if (error != NULL) {
        shimmer_daemon_return_error(invocation, error);
        return;
    }
    char *combined = NULL;
    if (otp != NULL)
        combined = shimmer_engine_static_challenge_password(password, otp);
    const char *secret = combined ? combined : password;
    if (pass != NULL) {
        /* The client can be made only now; with it go the user name and
         * password asked together with the passphrase, or given to
         * Connect. */
        put_passphrase(s, pass);
        gboolean ok = create_client(s, username ? username : s->username,
                                    secret ? secret : s->password, &error);
        shimmer_str_free_secret(combined);
        g_clear_pointer(&s->username, g_free);
        g_clear_pointer(&s->password, shimmer_str_free_secret);
        if (!ok) {
            /* Most likely the wrong passphrase: the session ends with the
             * reason, and the caller hears it too. */
            shimmer_daemon_return_error(invocation, error);
            on_client_finished(s, TRUE, error->message);
            return;
        }
        s->want_passphrase = s->want_password = s->want_username = s->want_otp = FALSE;
        shimmer_dbus_session1_complete_provide_credentials(s->iface, invocation);
        set_state(s, "connecting", NULL);
        shimmer_tunnel_start(s->client);
        return;
    }
    s->want_password = s->want_username = s->want_otp = FALSE;
    shimmer_dbus_session1_complete_provide_credentials(s->iface, invocation);
    set_state(s, "connecting", NULL);
    shimmer_tunnel_set_credentials(s->client, username, secret);
    shimmer_str_free_secret(combined);
}

static gboolean handle_provide_credentials(ShimmerDBusSession1 *iface,
                                           GDBusMethodInvocation *invocation, GVariant *credentials,
                                           gpointer user)
{
    ShimmerSession *s = user;
    static const char *const known[] = {"username", "password",       "otp",
                                        "response", "key-passphrase", NULL};
    SessionCall *c = session_call_new(s);
    c->creds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, free_secret_value);
    GVariantIter it;
    const char *key, *value;
    g_variant_iter_init(&it, credentials);
    while (g_variant_iter_next(&it, "{&s&s}", &key, &value)) {
        if (!g_strv_contains(known, key)) {
            g_autofree char *shown = g_strescape(key, NULL);
            shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                                      "credentials: unknown key \"%.64s\" (known: username, "
                                      "password, otp, response, key-passphrase)",
                                      shown);
            session_call_free(c);
            return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
        if (strlen(value) > SHIMMER_SESSION_MAX_SECRET) {
            shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                                      "credentials: \"%s\" is longer than %u bytes", key,
                                      SHIMMER_SESSION_MAX_SECRET);
            session_call_free(c);
            return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
        g_hash_table_replace(c->creds, g_strdup(key), g_strdup(value));
    }
    shimmer_daemon_authorize(s->d, invocation, SHIMMER_AUTH_SESSION, s->owner, provide_authorized,
                             c, session_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- life cycle ---------- */

static void on_caller_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerSession *s = user;
    g_autofree char *why =
        g_strdup_printf("the client that started the session (%s) left the bus", name);
    shimmer_session_stop(s, why);
}

ShimmerSession *shimmer_session_new(ShimmerDaemon *d, ShimmerProfile *profile, guint owner,
                                    const ShimmerSessionOptions *options, GError **error)
{
    gsize len;
    const char *text = shimmer_profile_get_text(profile, &len);
    const char *pname = shimmer_profile_get_name(profile);
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    g_autoptr(ShimmerConfig) cfg = shimmer_profile_parse(pname, text, len, &usable, &diagnostics);
    if (!usable) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_CONFIG,
                    "the profile cannot be used:\n%s", diagnostics);
        return NULL;
    }
    ShimmerSession *s = g_new0(ShimmerSession, 1);
    s->ref = 1;
    s->d = d;
    s->profile = shimmer_profile_ref(profile);
    s->id = shimmer_daemon_new_session_id(d);
    s->path = g_strdup_printf("%s/%s", SHIMMER_DAEMON_SESSION_PATH, s->id);
    s->profile_name = g_strdup(pname);
    s->owner = owner;
    s->configure_network = !options->no_netcfg;
    s->cfg = g_steal_pointer(&cfg);
    s->object = shimmer_dbus_object_skeleton_new(s->path);
    s->iface = shimmer_dbus_session1_skeleton_new();
    g_object_set(s->iface, "state", "connecting", "state-reason", "", "profile",
                 shimmer_profile_get_path(profile), "owner", owner, "bound-to-caller",
                 options->bound_to_caller, "interface", "", "remote-address", "", "addresses",
                 no_strings, "routes", no_strings, "dns-servers", no_strings, "dns-domains",
                 no_strings, "cipher", "", "tls-version", "", "configure-network",
                 s->configure_network, "network-config", g_variant_new("a{sv}", NULL),
                 "failure-kind", "", NULL);
    g_signal_connect(s->iface, "handle-disconnect", G_CALLBACK(handle_disconnect), s);
    g_signal_connect(s->iface, "handle-restart", G_CALLBACK(handle_restart), s);
    g_signal_connect(s->iface, "handle-provide-credentials", G_CALLBACK(handle_provide_credentials),
                     s);
    shimmer_dbus_object_skeleton_set_session1(s->object, s->iface);

    if (options->key_passphrase != NULL)
        put_passphrase(s, options->key_passphrase);
    if (s->cfg->key_encrypted && !s->cfg->askpass_file.present) {
        /* The client is made once the passphrase is there. What the engine
         * would ask for next is asked for at the same time, so that a
         * person answers one prompt. */
        s->want_passphrase = TRUE;
        s->username = g_strdup(options->username);
        s->password = g_strdup(options->password);
        if (s->cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE && s->cfg->password == NULL &&
            s->password == NULL) {
            s->want_password = TRUE;
            s->want_username = s->cfg->username == NULL && s->username == NULL;
            s->want_otp = s->cfg->static_challenge != NULL;
        }
    } else if (!create_client(s, options->username, options->password, error)) {
        shimmer_session_unref(s);
        return NULL;
    }
    if (options->bound_to_caller && options->caller != NULL)
        s->watch_id = g_bus_watch_name_on_connection(
            shimmer_daemon_get_bus(d), options->caller, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
            on_caller_vanished, shimmer_session_ref(s), (GDestroyNotify)shimmer_session_unref);
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
    shimmer_tunnel_start(s->client);
}

void shimmer_session_stop(ShimmerSession *s, const char *why)
{
    if (s->finished)
        return;
    if (s->stop_reason == NULL)
        s->stop_reason = g_strdup(why);
    if (s->client == NULL || !s->started) {
        on_client_finished(s, FALSE, why);
        return;
    }
    shimmer_tunnel_stop(s->client);
}

void shimmer_session_abort(ShimmerSession *s, const char *why)
{
    if (s->finished)
        return;
    if (s->stop_reason == NULL)
        s->stop_reason = g_strdup(why);
    /* Freeing the client tears the tunnel, routes and DNS down now. */
    g_clear_pointer(&s->client, shimmer_tunnel_free);
    on_client_finished(s, FALSE, why);
}

gboolean shimmer_session_is_finished(ShimmerSession *s)
{
    return s->finished;
}

const char *shimmer_session_get_id(ShimmerSession *s)
{
    return s->id;
}

const char *shimmer_session_get_path(ShimmerSession *s)
{
    return s->path;
}

guint shimmer_session_get_owner(ShimmerSession *s)
{
    return s->owner;
}

GDBusObjectSkeleton *shimmer_session_get_object(ShimmerSession *s)
{
    return G_DBUS_OBJECT_SKELETON(s->object);
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
    if (s->watch_id)
        g_bus_unwatch_name(s->watch_id);
    if (s->stats_timer)
        g_source_remove(s->stats_timer);
    if (s->linger_timer)
        g_source_remove(s->linger_timer);
    /* The client goes before the configuration it reads. */
    g_clear_pointer(&s->client, shimmer_tunnel_free);
    g_signal_handlers_disconnect_by_data(s->iface, s);
    g_object_unref(s->iface);
    g_object_unref(s->object);
    shimmer_config_free(s->cfg);
    shimmer_profile_unref(s->profile);
    g_free(s->stop_reason);
    g_free(s->username);
    g_free(s->challenge);
    shimmer_str_free_secret(s->password);
    g_free(s->profile_name);
    g_free(s->path);
    g_free(s->id);
    g_free(s);
}
