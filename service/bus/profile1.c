/* SPDX-License-Identifier: MIT */
/*
 * org.shimmervpn.Profile1. See profile1.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "profile1.h"

#include <string.h>

#include "errors.h"
#include "secure.h"
#include "session1.h"
#include "shimmer-dbus-generated.h"

struct ShimmerBusProfile {
    ShimmerBusContext *ctx;
    ShimmerProfile *p; /* a reference */
    char *path;
    ShimmerDBusObjectSkeleton *object;
    ShimmerDBusProfile1 *iface;
    /* Bound to a bus name (ImportProfile's "bound-to-caller"). */
    ShimmerCallerWatch caller_watch;
};

/* ---------- calls ---------- */

typedef struct {
    ShimmerBusContext *ctx;
    ShimmerProfile *p; /* a reference */
    gboolean bound;
    gboolean configure_network;
    char *caller;
    char *username;
    char *password;       /* secret */
    char *otp;            /* secret */
    char *key_passphrase; /* secret */
    char *new_name;
    ShimmerManagedServerAuth server_auth;
} ProfileCall;

static void profile_call_free(gpointer data)
{
    ProfileCall *c = data;
    shimmer_profile_unref(c->p);
    g_free(c->caller);
    g_free(c->username);
    shimmer_str_free_secret(c->password);
    shimmer_str_free_secret(c->otp);
    shimmer_str_free_secret(c->key_passphrase);
    g_free(c->new_name);
    g_free(c);
}

static ProfileCall *profile_call_new(ShimmerBusProfile *bp)
{
    ProfileCall *c = g_new0(ProfileCall, 1);
    c->ctx = bp->ctx;
    c->p = shimmer_profile_ref(bp->p);
    c->configure_network = TRUE;
    return c;
}

/* A method on a profile removed meanwhile (its object may still be reached
 * while the removal's reply is on its way). */
static gboolean check_present(ShimmerProfile *p, GDBusMethodInvocation *invocation)
{
    if (!shimmer_profile_is_removed(p))
        return TRUE;
    shimmer_bus_return_new(invocation, SHIMMER_SERVICE_ERROR_NOT_FOUND,
                           "the profile \"%s\" was removed", shimmer_profile_get_name(p));
    return FALSE;
}

static void gate(ShimmerBusProfile *bp, GDBusMethodInvocation *invocation,
                 ShimmerAuthAllowedFunc func, ProfileCall *c)
{
    shimmer_auth_gate(bp->ctx->auth, invocation, shimmer_profile_get_owner(bp->p), bp->ctx->cancel,
                      func, c, profile_call_free);
}

/* ---------- Connect ---------- */

static void connect_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ProfileCall *c = data;
    if (!check_present(c->p, invocation))
        return;
    ShimmerSessionOptions opts = {
        .bound_to_caller = c->bound,
        .no_netcfg = !c->configure_network,
        .username = c->username,
        .password = c->password,
        .otp = c->otp,
        .key_passphrase = c->key_passphrase,
    };
    g_autoptr(GError) error = NULL;
    ShimmerSession *s = shimmer_manager_connect(c->ctx->manager, c->p, caller_uid, &opts, &error);
    if (s == NULL) {
        shimmer_bus_return_error(invocation, error);
        return;
    }
    g_autofree char *path = shimmer_bus_session_path(s);
    ShimmerBusSession *bs = g_hash_table_lookup(c->ctx->sessions, shimmer_session_get_id(s));
    if (c->bound && bs != NULL)
        shimmer_bus_session_bind_to_caller(bs, c->caller);
    shimmer_dbus_profile1_complete_connect(NULL, invocation, path);
}

static gboolean take_bool_option(GVariant *v, const char *key, gboolean *out, GError **error)
{
    if (!g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "options: \"%s\" must be a boolean (b), not %s", key,
                    g_variant_get_type_string(v));
        return FALSE;
    }
    *out = g_variant_get_boolean(v);
    return TRUE;
}

/* A string option holding a secret or a name: type and size checked. */
static gboolean take_string_option(GVariant *v, const char *key, char **out, GError **error)
{
    if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "options: \"%s\" must be a string (s), not %s", key,
                    g_variant_get_type_string(v));
        return FALSE;
    }
    gsize len;
    const char *s = g_variant_get_string(v, &len);
    if (len > SHIMMER_SESSION_MAX_SECRET) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "options: \"%s\" is longer than %u bytes", key, SHIMMER_SESSION_MAX_SECRET);
        return FALSE;
    }
    if (*out != NULL)
        shimmer_str_free_secret(*out);
    *out = g_strdup(s);
    return TRUE;
}

static gboolean read_connect_options(ProfileCall *c, GVariant *options, GError **error)
{
    GVariantIter it;
    const char *key;
    GVariant *value;
    g_variant_iter_init(&it, options);
    while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
        g_autoptr(GVariant) v = value;
        gboolean ok;
        if (strcmp(key, "bound-to-caller") == 0) {
            ok = take_bool_option(v, key, &c->bound, error);
        } else if (strcmp(key, "configure-network") == 0) {
            ok = take_bool_option(v, key, &c->configure_network, error);
        } else if (strcmp(key, "username") == 0) {
            ok = take_string_option(v, key, &c->username, error);
        } else if (strcmp(key, "password") == 0) {
            ok = take_string_option(v, key, &c->password, error);
        } else if (strcmp(key, "otp") == 0) {
            ok = take_string_option(v, key, &c->otp, error);
        } else if (strcmp(key, "key-passphrase") == 0) {
            ok = take_string_option(v, key, &c->key_passphrase, error);
        } else {
            g_autofree char *shown = g_strescape(key, NULL);
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "options: unknown option \"%.64s\" (known: bound-to-caller, "
                        "configure-network, username, password, otp, key-passphrase)",
                        shown);
            ok = FALSE;
        }
        if (!ok)
            return FALSE;
    }
    return TRUE;
}

static gboolean handle_connect(ShimmerDBusProfile1 *iface, GDBusMethodInvocation *invocation,
                               GVariant *options, gpointer user)
{
    ShimmerBusProfile *bp = user;
    ProfileCall *c = profile_call_new(bp);
    g_autoptr(GError) error = NULL;
    if (!read_connect_options(c, options, &error)) {
        profile_call_free(c);
        shimmer_bus_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    c->caller = g_strdup(g_dbus_method_invocation_get_sender(invocation));
    gate(bp, invocation, connect_allowed, c);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- StartServer ---------- */

static void start_server_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ProfileCall *c = data;
    if (!check_present(c->p, invocation))
        return;
    ShimmerManagedServerOptions opts = {.auth = c->server_auth};
    g_autoptr(GError) error = NULL;
    ShimmerManagedServer *s =
        shimmer_manager_start_server(c->ctx->manager, c->p, caller_uid, &opts, &error);
    if (s == NULL) {
        shimmer_bus_return_error(invocation, error);
        return;
    }
    g_autofree char *path = shimmer_bus_server_path(s);
    shimmer_dbus_profile1_complete_start_server(NULL, invocation, path);
}

static gboolean read_server_options(ProfileCall *c, GVariant *options, GError **error)
{
    GVariantIter it;
    const char *key;
    GVariant *value;
    g_variant_iter_init(&it, options);
    while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
        g_autoptr(GVariant) v = value;
        if (strcmp(key, "auth") != 0) {
            g_autofree char *shown = g_strescape(key, NULL);
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "options: unknown option \"%.64s\" (known: auth)", shown);
            return FALSE;
        }
        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "options: \"auth\" must be a string (s), not %s",
                        g_variant_get_type_string(v));
            return FALSE;
        }
        const char *auth = g_variant_get_string(v, NULL);
        if (strcmp(auth, "bus") == 0) {
            c->server_auth = SHIMMER_MANAGED_SERVER_AUTH_BUS;
        } else if (auth[0] == '\0') {
            c->server_auth = SHIMMER_MANAGED_SERVER_AUTH_DEFAULT;
        } else {
            g_autofree char *shown = g_strescape(auth, NULL);
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "options: \"auth\" is \"bus\" or empty, not \"%.64s\"", shown);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean handle_start_server(ShimmerDBusProfile1 *iface, GDBusMethodInvocation *invocation,
                                    GVariant *options, gpointer user)
{
    ShimmerBusProfile *bp = user;
    ProfileCall *c = profile_call_new(bp);
    g_autoptr(GError) error = NULL;
    if (!read_server_options(c, options, &error)) {
        profile_call_free(c);
        shimmer_bus_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    gate(bp, invocation, start_server_allowed, c);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- Remove ---------- */

static void remove_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ProfileCall *c = data;
    if (!check_present(c->p, invocation))
        return;
    g_autoptr(GError) error = NULL;
    g_autofree char *who = g_strdup_printf("by uid %u", caller_uid);
    if (!shimmer_manager_remove_profile(c->ctx->manager, c->p, who, &error))
        shimmer_bus_return_error(invocation, error);
    else
        shimmer_dbus_profile1_complete_remove(NULL, invocation);
}

static gboolean handle_remove(ShimmerDBusProfile1 *iface, GDBusMethodInvocation *invocation,
                              gpointer user)
{
    ShimmerBusProfile *bp = user;
    gate(bp, invocation, remove_allowed, profile_call_new(bp));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- Rename ---------- */

static void rename_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ProfileCall *c = data;
    if (!check_present(c->p, invocation))
        return;
    g_autoptr(GError) error = NULL;
    if (!shimmer_manager_rename_profile(c->ctx->manager, c->p, c->new_name, caller_uid, &error))
        shimmer_bus_return_error(invocation, error);
    else
        shimmer_dbus_profile1_complete_rename(NULL, invocation);
}

static gboolean handle_rename(ShimmerDBusProfile1 *iface, GDBusMethodInvocation *invocation,
                              const char *name, gpointer user)
{
    ShimmerBusProfile *bp = user;
    g_autoptr(GError) error = NULL;
    if (!shimmer_profile_validate_name(name, "name", &error)) {
        shimmer_bus_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    ProfileCall *c = profile_call_new(bp);
    c->new_name = g_strdup(name);
    gate(bp, invocation, rename_allowed, c);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- GetConfiguration ---------- */

static void get_configuration_allowed(GDBusMethodInvocation *invocation, guint caller_uid,
                                      gpointer data)
{
    ProfileCall *c = data;
    if (!check_present(c->p, invocation))
        return;
    g_autofree char *json = shimmer_profile_dup_json(c->p);
    shimmer_dbus_profile1_complete_get_configuration(NULL, invocation, json);
}

static gboolean handle_get_configuration(ShimmerDBusProfile1 *iface,
                                         GDBusMethodInvocation *invocation, gpointer user)
{
    ShimmerBusProfile *bp = user;
    gate(bp, invocation, get_configuration_allowed, profile_call_new(bp));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- the object ---------- */

static void on_caller_gone(gpointer user, const char *name)
{
    ShimmerBusProfile *bp = user;
    if (shimmer_profile_is_removed(bp->p))
        return;
    g_autofree char *who = g_strdup_printf("(the client that imported it, %s, left the bus)", name);
    g_autoptr(GError) error = NULL;
    /* Not persistent, so there is no file that could fail to go. */
    g_autoptr(ShimmerProfile) p = shimmer_profile_ref(bp->p);
    if (!shimmer_manager_remove_profile(bp->ctx->manager, p, who, &error))
        g_warning("profile %s: %s", shimmer_profile_get_id(p), error->message);
}

void shimmer_bus_profile_bind_to_caller(ShimmerBusProfile *bp, const char *caller)
{
    g_return_if_fail(!shimmer_profile_is_persistent(bp->p) && bp->caller_watch.caller == NULL);
    shimmer_bus_caller_watch_start(bp->ctx, &bp->caller_watch, caller, on_caller_gone, bp);
}

void shimmer_bus_profile_reconnected(ShimmerBusProfile *bp)
{
    shimmer_bus_caller_watch_renew(bp->ctx, &bp->caller_watch);
}

void shimmer_bus_profile_update(ShimmerBusProfile *bp)
{
    ShimmerSession *s = shimmer_manager_get_active_session(bp->ctx->manager, bp->p);
    g_autofree char *session = s ? shimmer_bus_session_path(s) : g_strdup("/");
    ShimmerManagedServer *srv = shimmer_manager_get_active_server(bp->ctx->manager, bp->p);
    g_autofree char *server = srv ? shimmer_bus_server_path(srv) : g_strdup("/");
    g_object_set(bp->iface, "name", shimmer_profile_get_name(bp->p), "last-used",
                 shimmer_profile_get_last_used(bp->p), "active-session", session, "active-server",
                 server, NULL);
}

ShimmerBusProfile *shimmer_bus_profile_new(ShimmerBusContext *ctx, ShimmerProfile *p)
{
    ShimmerBusProfile *bp = g_new0(ShimmerBusProfile, 1);
    bp->ctx = ctx;
    bp->p = shimmer_profile_ref(p);
    bp->path = shimmer_bus_profile_path(p);
    bp->object = shimmer_dbus_object_skeleton_new(bp->path);
    bp->iface = shimmer_dbus_profile1_skeleton_new();
    gboolean echo = FALSE;
    const char *challenge = shimmer_profile_get_static_challenge(p, &echo);
    g_object_set(bp->iface, "id", shimmer_profile_get_id(p), "owner", shimmer_profile_get_owner(p),
                 "persistent", shimmer_profile_is_persistent(p), "created",
                 shimmer_profile_get_created(p), "remotes", shimmer_profile_get_remotes(p), "wrap",
                 shimmer_profile_get_wrap(p), "warnings", shimmer_profile_get_warnings(p),
                 "credentials", shimmer_profile_get_credentials(p), "static-challenge", challenge,
                 "role", shimmer_profile_is_server(p) ? "server" : "client", NULL);
    shimmer_bus_profile_update(bp);
    g_signal_connect(bp->iface, "handle-connect", G_CALLBACK(handle_connect), bp);
    g_signal_connect(bp->iface, "handle-start-server", G_CALLBACK(handle_start_server), bp);
    g_signal_connect(bp->iface, "handle-remove", G_CALLBACK(handle_remove), bp);
    g_signal_connect(bp->iface, "handle-rename", G_CALLBACK(handle_rename), bp);
    g_signal_connect(bp->iface, "handle-get-configuration", G_CALLBACK(handle_get_configuration),
                     bp);
    shimmer_dbus_object_skeleton_set_profile1(bp->object, bp->iface);
    return bp;
}

void shimmer_bus_profile_free(ShimmerBusProfile *bp)
{
    if (bp == NULL)
        return;
    shimmer_bus_caller_watch_clear(&bp->caller_watch);
    g_signal_handlers_disconnect_by_data(bp->iface, bp);
    g_object_unref(bp->iface);
    g_object_unref(bp->object);
    shimmer_profile_unref(bp->p);
    g_free(bp->path);
    g_free(bp);
}

GDBusObjectSkeleton *shimmer_bus_profile_get_object(ShimmerBusProfile *bp)
{
    return G_DBUS_OBJECT_SKELETON(bp->object);
}
