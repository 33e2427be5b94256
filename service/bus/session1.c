/* SPDX-License-Identifier: MIT */
/*
 * org.shimmervpn.Session1. See session1.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "session1.h"

#include <string.h>

#include "errors.h"
#include "secure.h"
#include "shimmer-dbus-generated.h"

#define SESSION1 "org.shimmervpn.Session1"

struct ShimmerBusSession {
    ShimmerBusContext *ctx;
    ShimmerSession *s; /* a reference */
    char *path;
    ShimmerDBusObjectSkeleton *object;
    ShimmerDBusSession1 *iface;
    ShimmerCallerWatch caller_watch;
};

/* ---------- properties and signals ---------- */

static void update_state(ShimmerBusSession *bs)
{
    ShimmerSession *s = bs->s;
    /* One PropertiesChanged carries the state with its reason and kind. */
    g_object_set(bs->iface, "failure-kind", shimmer_session_get_failure_kind(s), "state",
                 shimmer_session_get_state(s), "state-reason", shimmer_session_get_state_reason(s),
                 NULL);
}

static void update_network(ShimmerBusSession *bs)
{
    ShimmerSession *s = bs->s;
    g_autoptr(GVariant) netconf = shimmer_session_dup_network_config(s);
    g_object_set(
        bs->iface, "network-config", netconf, "interface", shimmer_session_get_interface(s),
        "remote-address", shimmer_session_get_remote_address(s), "addresses",
        shimmer_session_get_addresses(s), "routes", shimmer_session_get_routes(s), "dns-servers",
        shimmer_session_get_dns_servers(s), "dns-domains", shimmer_session_get_dns_domains(s),
        "cipher", shimmer_session_get_cipher(s), "tls-version", shimmer_session_get_tls_version(s),
        "connected-since", shimmer_session_get_connected_since(s), NULL);
}

static void update_counters(ShimmerBusSession *bs)
{
    ShimmerSessionCounters c;
    shimmer_session_get_counters(bs->s, &c);
    /* The skeleton only announces values that changed. */
    g_object_set(bs->iface, "bytes-in", c.bytes_in, "bytes-out", c.bytes_out, "packets-in",
                 c.packets_in, "packets-out", c.packets_out, "reconnects", c.reconnects, NULL);
}

static GVariant *web_auth_dict(const ShimmerSessionWebAuth *w)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    if (w != NULL) {
        /* The engine passes printable ASCII URLs only; flags are the
         * server's text. */
        g_autofree char *url = g_utf8_make_valid(w->url, -1);
        g_variant_builder_add(&b, "{sv}", "url", g_variant_new_string(url));
        g_variant_builder_add(&b, "{sv}", "kind", g_variant_new_string(w->kind));
        GVariantBuilder fb;
        g_variant_builder_init(&fb, G_VARIANT_TYPE_STRING_ARRAY);
        for (guint i = 0; w->flags != NULL && w->flags[i] != NULL; i++) {
            g_autofree char *f = g_utf8_make_valid(w->flags[i], -1);
            g_variant_builder_add(&fb, "s", f);
        }
        g_variant_builder_add(&b, "{sv}", "flags", g_variant_builder_end(&fb));
        g_variant_builder_add(&b, "{sv}", "deadline", g_variant_new_uint64(w->deadline));
        g_variant_builder_add(&b, "{sv}", "timeout", g_variant_new_uint32(w->timeout));
    }
    return g_variant_builder_end(&b);
}

static GVariant *credentials_dict(const ShimmerCredentialsRequest *r)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    if (r != NULL) {
        g_variant_builder_add(&b, "{sv}", "fields", g_variant_new_strv(r->fields, -1));
        g_variant_builder_add(&b, "{sv}", "prompt", g_variant_new_string(r->challenge));
        g_variant_builder_add(&b, "{sv}", "echo", g_variant_new_boolean(r->echo));
        g_variant_builder_add(&b, "{sv}", "kind", g_variant_new_string(r->kind ? r->kind : ""));
        g_variant_builder_add(&b, "{sv}", "response-required", g_variant_new_boolean(TRUE));
    }
    return g_variant_builder_end(&b);
}

void shimmer_bus_session_update(ShimmerBusSession *bs, guint what)
{
    /* Network and counters before the state: a client that sees
     * "connected" can read them at once. */
    if (what & SHIMMER_SESSION_CHANGED_NETWORK)
        update_network(bs);
    if (what & SHIMMER_SESSION_CHANGED_COUNTERS)
        update_counters(bs);
    if (what & SHIMMER_SESSION_CHANGED_STATE)
        update_state(bs);
    guint owner = shimmer_session_get_owner(bs->s);
    /* Directed signals: a sign-in URL may carry a session secret, and what
     * the server says is the owner's business. */
    if (what & SHIMMER_SESSION_CHANGED_WEB_AUTH) {
        const ShimmerSessionWebAuth *w = shimmer_session_get_web_auth(bs->s);
        if (w != NULL)
            shimmer_bus_emit_to_uid(bs->ctx, owner, bs->path, SESSION1, "WebAuthRequested",
                                    g_variant_new_tuple((GVariant *[]){web_auth_dict(w)}, 1));
    }
    if (what & SHIMMER_SESSION_CHANGED_MESSAGE)
        shimmer_bus_emit_to_uid(bs->ctx, owner, bs->path, SESSION1, "ServerMessage",
                                g_variant_new("(s)", shimmer_session_get_message(bs->s)));
}

void shimmer_bus_session_log(ShimmerBusSession *bs, ShimmerLogLevel level, const char *line)
{
    /* Directed signals: the lines can name servers and users, which other
     * users need not see. */
    shimmer_bus_emit_to_uid(bs->ctx, shimmer_session_get_owner(bs->s), bs->path, SESSION1, "Log",
                            g_variant_new("(us)", (guint)level, line));
}

void shimmer_bus_session_request_credentials(ShimmerBusSession *bs,
                                             const ShimmerCredentialsRequest *request)
{
    /* The challenge text comes from the server or the profile: only the
     * owner's eyes. */
    g_autofree char *text = g_utf8_make_valid(request->challenge, -1);
    shimmer_bus_emit_to_uid(bs->ctx, shimmer_session_get_owner(bs->s), bs->path, SESSION1,
                            "CredentialsRequested",
                            g_variant_new("(^assb)", request->fields, text, request->echo));
}

/* ---------- calls ---------- */

typedef struct {
    ShimmerBusContext *ctx;
    ShimmerSession *s; /* a reference */
    GHashTable *creds; /* key -> value (secret) */
} SessionCall;

static void free_secret_value(gpointer p)
{
    shimmer_str_free_secret(p);
}

static SessionCall *session_call_new(ShimmerBusSession *bs)
{
    SessionCall *c = g_new0(SessionCall, 1);
    c->ctx = bs->ctx;
    c->s = shimmer_session_ref(bs->s);
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

static void gate(ShimmerBusSession *bs, GDBusMethodInvocation *invocation,
                 ShimmerAuthAllowedFunc func, SessionCall *c)
{
    shimmer_auth_gate(bs->ctx->auth, invocation, shimmer_session_get_owner(bs->s), bs->ctx->cancel,
                      func, c, session_call_free);
}

static void disconnect_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    SessionCall *c = data;
    /* Disconnecting an ended session is not an error: it is disconnected. */
    g_autofree char *why = g_strdup_printf("disconnected on request (uid %u)", caller_uid);
    shimmer_dbus_session1_complete_disconnect(NULL, invocation);
    shimmer_session_stop(c->s, why);
}

static gboolean handle_disconnect(ShimmerDBusSession1 *iface, GDBusMethodInvocation *invocation,
                                  gpointer user)
{
    ShimmerBusSession *bs = user;
    gate(bs, invocation, disconnect_allowed, session_call_new(bs));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void restart_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    SessionCall *c = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *why = g_strdup_printf("restart requested (uid %u)", caller_uid);
    if (!shimmer_session_restart(c->s, why, &error)) {
        shimmer_bus_return_error(invocation, error);
        return;
    }
    shimmer_dbus_session1_complete_restart(NULL, invocation);
}

static gboolean handle_restart(ShimmerDBusSession1 *iface, GDBusMethodInvocation *invocation,
                               gpointer user)
{
    ShimmerBusSession *bs = user;
    gate(bs, invocation, restart_allowed, session_call_new(bs));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void provide_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    SessionCall *c = data;
    g_autoptr(GError) error = NULL;
    /* The reply first: the session may end (a wrong key passphrase) and
     * the caller should hear why from the reply, before the state. */
    if (!shimmer_session_provide_credentials(c->s, c->creds, &error))
        shimmer_bus_return_error(invocation, error);
    else
        shimmer_dbus_session1_complete_provide_credentials(NULL, invocation);
}

static gboolean handle_provide_credentials(ShimmerDBusSession1 *iface,
                                           GDBusMethodInvocation *invocation, GVariant *credentials,
                                           gpointer user)
{
    ShimmerBusSession *bs = user;
    static const char *const known[] = {"username", "password",       "otp",
                                        "response", "key-passphrase", NULL};
    SessionCall *c = session_call_new(bs);
    c->creds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, free_secret_value);
    GVariantIter it;
    const char *key, *value;
    g_variant_iter_init(&it, credentials);
    while (g_variant_iter_next(&it, "{&s&s}", &key, &value)) {
        if (!g_strv_contains(known, key)) {
            g_autofree char *shown = g_strescape(key, NULL);
            shimmer_bus_return_new(invocation, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                                   "credentials: unknown key \"%.64s\" (known: username, "
                                   "password, otp, response, key-passphrase)",
                                   shown);
            session_call_free(c);
            return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
        if (strlen(value) > SHIMMER_SESSION_MAX_SECRET) {
            shimmer_bus_return_new(invocation, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                                   "credentials: \"%s\" is longer than %u bytes", key,
                                   SHIMMER_SESSION_MAX_SECRET);
            session_call_free(c);
            return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
        g_hash_table_replace(c->creds, g_strdup(key), g_strdup(value));
    }
    gate(bs, invocation, provide_allowed, c);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The owner alone (or root) reads what the session waits for: polkit may
 * let an administrator control any session, but a sign-in URL is the
 * owner's. */
static gboolean caller_is_owner(GDBusMethodInvocation *invocation, guint caller_uid, SessionCall *c)
{
    if (caller_uid == shimmer_session_get_owner(c->s) || caller_uid == 0)
        return TRUE;
    shimmer_bus_return_new(invocation, SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED,
                           "only the session's owner may read what it waits for");
    return FALSE;
}

static void get_web_auth_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    SessionCall *c = data;
    if (!caller_is_owner(invocation, caller_uid, c))
        return;
    shimmer_dbus_session1_complete_get_web_auth_request(
        NULL, invocation, web_auth_dict(shimmer_session_get_web_auth(c->s)));
}

static gboolean handle_get_web_auth_request(ShimmerDBusSession1 *iface,
                                            GDBusMethodInvocation *invocation, gpointer user)
{
    ShimmerBusSession *bs = user;
    gate(bs, invocation, get_web_auth_allowed, session_call_new(bs));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void get_credentials_allowed(GDBusMethodInvocation *invocation, guint caller_uid,
                                    gpointer data)
{
    SessionCall *c = data;
    if (!caller_is_owner(invocation, caller_uid, c))
        return;
    shimmer_dbus_session1_complete_get_credentials_request(
        NULL, invocation, credentials_dict(shimmer_session_get_credentials_request(c->s)));
}

static gboolean handle_get_credentials_request(ShimmerDBusSession1 *iface,
                                               GDBusMethodInvocation *invocation, gpointer user)
{
    ShimmerBusSession *bs = user;
    gate(bs, invocation, get_credentials_allowed, session_call_new(bs));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- the object ---------- */

static void on_caller_gone(gpointer user, const char *name)
{
    ShimmerBusSession *bs = user;
    g_autofree char *why =
        g_strdup_printf("the client that started the session (%s) left the bus", name);
    shimmer_session_stop(bs->s, why);
}

void shimmer_bus_session_bind_to_caller(ShimmerBusSession *bs, const char *caller)
{
    if (bs->caller_watch.caller != NULL || caller == NULL)
        return;
    shimmer_bus_caller_watch_start(bs->ctx, &bs->caller_watch, caller, on_caller_gone, bs);
}

void shimmer_bus_session_reconnected(ShimmerBusSession *bs)
{
    shimmer_bus_caller_watch_renew(bs->ctx, &bs->caller_watch);
}

ShimmerBusSession *shimmer_bus_session_new(ShimmerBusContext *ctx, ShimmerSession *s)
{
    static const char *const no_strings[] = {NULL};
    ShimmerBusSession *bs = g_new0(ShimmerBusSession, 1);
    bs->ctx = ctx;
    bs->s = shimmer_session_ref(s);
    bs->path = shimmer_bus_session_path(s);
    bs->object = shimmer_dbus_object_skeleton_new(bs->path);
    bs->iface = shimmer_dbus_session1_skeleton_new();
    g_autofree char *profile = shimmer_bus_profile_path(shimmer_session_get_profile(s));
    g_object_set(bs->iface, "profile", profile, "owner", shimmer_session_get_owner(s),
                 "bound-to-caller", shimmer_session_get_bound_to_caller(s), "configure-network",
                 shimmer_session_get_configure_network(s), "addresses", no_strings, "routes",
                 no_strings, "dns-servers", no_strings, "dns-domains", no_strings, "network-config",
                 g_variant_new("a{sv}", NULL), NULL);
    shimmer_bus_session_update(bs, SHIMMER_SESSION_CHANGED_STATE);
    g_signal_connect(bs->iface, "handle-disconnect", G_CALLBACK(handle_disconnect), bs);
    g_signal_connect(bs->iface, "handle-restart", G_CALLBACK(handle_restart), bs);
    g_signal_connect(bs->iface, "handle-provide-credentials",
                     G_CALLBACK(handle_provide_credentials), bs);
    g_signal_connect(bs->iface, "handle-get-web-auth-request",
                     G_CALLBACK(handle_get_web_auth_request), bs);
    g_signal_connect(bs->iface, "handle-get-credentials-request",
                     G_CALLBACK(handle_get_credentials_request), bs);
    shimmer_dbus_object_skeleton_set_session1(bs->object, bs->iface);
    return bs;
}

void shimmer_bus_session_free(ShimmerBusSession *bs)
{
    if (bs == NULL)
        return;
    shimmer_bus_caller_watch_clear(&bs->caller_watch);
    g_signal_handlers_disconnect_by_data(bs->iface, bs);
    g_object_unref(bs->iface);
    g_object_unref(bs->object);
    shimmer_session_unref(bs->s);
    g_free(bs->path);
    g_free(bs);
}

GDBusObjectSkeleton *shimmer_bus_session_get_object(ShimmerBusSession *bs)
{
    return G_DBUS_OBJECT_SKELETON(bs->object);
}
