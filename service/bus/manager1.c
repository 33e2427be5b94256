/* SPDX-License-Identifier: MIT */
/*
 * org.shimmervpn.Manager1. See manager1.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "shimmer-build-config.h"

#include "manager1.h"

#include <string.h>

#include "errors.h"
#include "profile1.h"
#include "secure.h"
#include "shimmer-dbus-generated.h"

struct ShimmerBusManager {
    ShimmerBusContext *ctx;
    ShimmerDBusManager1 *iface;
};

typedef struct {
    ShimmerBusContext *ctx;
    char *name;
    char *text; /* secret */
    gboolean persistent;
    char *bound_to; /* the caller's unique name with bound-to-caller, else NULL */
    GDBusMethodInvocation *invocation; /* while the server action is checked */
    guint caller_uid;
} ManagerCall;

static void manager_call_free(gpointer data)
{
    ManagerCall *c = data;
    g_free(c->name);
    g_free(c->bound_to);
    shimmer_str_free_secret(c->text);
    g_free(c);
}

static ManagerCall *manager_call_new(ShimmerBusManager *bm, const char *text)
{
    ManagerCall *c = g_new0(ManagerCall, 1);
    c->ctx = bm->ctx;
    c->text = g_strdup(text);
    return c;
}

static gboolean validate_text(const char *text, GError **error)
{
    gsize len = strlen(text);
    if (len > SHIMMER_MANAGER_MAX_TEXT) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "config_text: %" G_GSIZE_FORMAT " bytes, at most %u are accepted", len,
                    SHIMMER_MANAGER_MAX_TEXT);
        return FALSE;
    }
    if (!g_utf8_validate(text, (gssize)len, NULL)) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                            "config_text: not valid UTF-8");
        return FALSE;
    }
    return TRUE;
}

/* ---------- ImportProfile ---------- */

static void do_import(GDBusMethodInvocation *invocation, guint caller_uid, ManagerCall *c,
                      gboolean allow_server)
{
    g_autoptr(GError) error = NULL;
    ShimmerProfile *p =
        shimmer_manager_import_role(c->ctx->manager, c->name, caller_uid, c->text, strlen(c->text),
                                    c->persistent, allow_server, &error);
    if (p == NULL) {
        shimmer_bus_return_error(invocation, error);
        return;
    }
    ShimmerBusProfile *bp = g_hash_table_lookup(c->ctx->profiles, shimmer_profile_get_id(p));
    if (c->bound_to != NULL && bp != NULL)
        shimmer_bus_profile_bind_to_caller(bp, c->bound_to);
    g_message("profile %s \"%s\" imported by uid %u%s%s%s", shimmer_profile_get_id(p), c->name,
              caller_uid, c->persistent ? "" : " (not persistent)",
              c->bound_to ? ", bound to " : "", c->bound_to ? c->bound_to : "");
    g_autofree char *path = shimmer_bus_profile_path(p);
    shimmer_dbus_manager1_complete_import_profile(NULL, invocation, path);
}

static void on_server_action_checked(GObject *source, GAsyncResult *result, gpointer user)
{
    ManagerCall *c = user;
    g_autoptr(GError) error = NULL;
    if (shimmer_auth_check_finish(c->ctx->auth, result, NULL, &error))
        do_import(c->invocation, c->caller_uid, c, TRUE);
    else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        shimmer_bus_return_new(c->invocation, SHIMMER_SERVICE_ERROR_FAILED,
                               "the daemon is stopping");
    else
        shimmer_bus_return_error(c->invocation, error);
    manager_call_free(c);
}

static void import_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ManagerCall *c = data;
    if (!shimmer_profile_text_is_server(c->text, strlen(c->text))) {
        do_import(invocation, caller_uid, c, FALSE);
        return;
    }
    /* A server configuration: running it reaches beyond the caller's own
     * tunnel, so importing it needs the server action too. The gate frees
     * C once this returns: the check takes its contents. */
    ManagerCall *moved = g_new0(ManagerCall, 1);
    *moved = *c;
    memset(c, 0, sizeof(*c));
    moved->invocation = invocation;
    moved->caller_uid = caller_uid;
    shimmer_auth_check(moved->ctx->auth, invocation, SHIMMER_AUTH_SERVER, G_MAXUINT,
                       moved->ctx->cancel, on_server_action_checked, moved);
}

static gboolean read_import_options(GVariant *options, gboolean *persistent, gboolean *bound,
                                    GError **error)
{
    GVariantIter it;
    const char *key;
    GVariant *value;
    g_variant_iter_init(&it, options);
    while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
        g_autoptr(GVariant) v = value;
        gboolean *target = strcmp(key, "persistent") == 0        ? persistent
                           : strcmp(key, "bound-to-caller") == 0 ? bound
                                                                 : NULL;
        if (target == NULL) {
            g_autofree char *shown = g_strescape(key, NULL);
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "options: unknown option \"%.64s\" (known: persistent, bound-to-caller)",
                        shown);
            return FALSE;
        }
        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN)) {
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "options: \"%s\" must be a boolean (b), not %s", key,
                        g_variant_get_type_string(v));
            return FALSE;
        }
        *target = g_variant_get_boolean(v);
    }
    if (*bound && *persistent) {
        /* A stored profile would outlive its caller at the next start. */
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                            "options: \"bound-to-caller\" needs \"persistent\" false");
        return FALSE;
    }
    return TRUE;
}

static gboolean handle_import_profile(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                      const char *name, const char *config_text, GVariant *options,
                                      gpointer user)
{
    ShimmerBusManager *bm = user;
    g_autoptr(GError) error = NULL;
    gboolean persistent = TRUE, bound = FALSE;
    if (!shimmer_profile_validate_name(name, "name", &error) ||
        !validate_text(config_text, &error) ||
        !read_import_options(options, &persistent, &bound, &error)) {
        shimmer_bus_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    ManagerCall *c = manager_call_new(bm, config_text);
    c->name = g_strdup(name);
    c->persistent = persistent;
    if (bound)
        c->bound_to = g_strdup(g_dbus_method_invocation_get_sender(invocation));
    shimmer_auth_gate(bm->ctx->auth, invocation, G_MAXUINT, bm->ctx->cancel, import_allowed, c,
                      manager_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- CheckConfig ---------- */

static void check_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ManagerCall *c = data;
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    /* A server configuration is usable text; importing it needs the
     * server action besides (ImportProfile says so). */
    shimmer_config_free(shimmer_profile_parse_role("config", c->text, strlen(c->text), caller_uid,
                                                   TRUE, &usable, &diagnostics));
    shimmer_dbus_manager1_complete_check_config(NULL, invocation, usable, diagnostics);
}

static gboolean handle_check_config(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                    const char *config_text, gpointer user)
{
    ShimmerBusManager *bm = user;
    g_autoptr(GError) error = NULL;
    if (!validate_text(config_text, &error)) {
        shimmer_bus_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    shimmer_auth_gate(bm->ctx->auth, invocation, G_MAXUINT, bm->ctx->cancel, check_allowed,
                      manager_call_new(bm, config_text), manager_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- ListProfiles, ListSessions ---------- */

/* The caller's own objects; all of them for root. */
static guint visible_to(guint caller_uid)
{
    return caller_uid == 0 ? G_MAXUINT : caller_uid;
}

static void list_profiles_allowed(GDBusMethodInvocation *invocation, guint caller_uid,
                                  gpointer data)
{
    ShimmerBusContext *ctx = data;
    g_autoptr(GPtrArray) list = shimmer_manager_list_profiles(ctx->manager, visible_to(caller_uid));
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < list->len; i++)
        g_ptr_array_add(paths, shimmer_bus_profile_path(g_ptr_array_index(list, i)));
    g_ptr_array_add(paths, NULL);
    shimmer_dbus_manager1_complete_list_profiles(NULL, invocation,
                                                 (const char *const *)paths->pdata);
}

static gboolean handle_list_profiles(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                     gpointer user)
{
    ShimmerBusManager *bm = user;
    shimmer_auth_gate(bm->ctx->auth, invocation, G_MAXUINT, bm->ctx->cancel, list_profiles_allowed,
                      bm->ctx, NULL);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void list_sessions_allowed(GDBusMethodInvocation *invocation, guint caller_uid,
                                  gpointer data)
{
    ShimmerBusContext *ctx = data;
    g_autoptr(GPtrArray) list = shimmer_manager_list_sessions(ctx->manager, visible_to(caller_uid));
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < list->len; i++)
        g_ptr_array_add(paths, shimmer_bus_session_path(g_ptr_array_index(list, i)));
    g_ptr_array_add(paths, NULL);
    shimmer_dbus_manager1_complete_list_sessions(NULL, invocation,
                                                 (const char *const *)paths->pdata);
}

static gboolean handle_list_sessions(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                     gpointer user)
{
    ShimmerBusManager *bm = user;
    shimmer_auth_gate(bm->ctx->auth, invocation, G_MAXUINT, bm->ctx->cancel, list_sessions_allowed,
                      bm->ctx, NULL);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void list_servers_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ShimmerBusContext *ctx = data;
    g_autoptr(GPtrArray) list = shimmer_manager_list_servers(ctx->manager);
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < list->len; i++)
        g_ptr_array_add(paths, shimmer_bus_server_path(g_ptr_array_index(list, i)));
    g_ptr_array_add(paths, NULL);
    shimmer_dbus_manager1_complete_list_servers(NULL, invocation,
                                                (const char *const *)paths->pdata);
}

static gboolean handle_list_servers(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                    gpointer user)
{
    ShimmerBusManager *bm = user;
    shimmer_auth_gate(bm->ctx->auth, invocation, G_MAXUINT, bm->ctx->cancel, list_servers_allowed,
                      bm->ctx, NULL);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- the interface ---------- */

ShimmerBusManager *shimmer_bus_manager_new(ShimmerBusContext *ctx, const char *dns_backend)
{
    ShimmerBusManager *bm = g_new0(ShimmerBusManager, 1);
    bm->ctx = ctx;
    bm->iface = shimmer_dbus_manager1_skeleton_new();
    shimmer_dbus_manager1_set_version(bm->iface, PACKAGE_VERSION);
    shimmer_dbus_manager1_set_dns_backend(bm->iface, dns_backend);
    g_signal_connect(bm->iface, "handle-import-profile", G_CALLBACK(handle_import_profile), bm);
    g_signal_connect(bm->iface, "handle-check-config", G_CALLBACK(handle_check_config), bm);
    g_signal_connect(bm->iface, "handle-list-profiles", G_CALLBACK(handle_list_profiles), bm);
    g_signal_connect(bm->iface, "handle-list-sessions", G_CALLBACK(handle_list_sessions), bm);
    g_signal_connect(bm->iface, "handle-list-servers", G_CALLBACK(handle_list_servers), bm);
    return bm;
}

void shimmer_bus_manager_free(ShimmerBusManager *bm)
{
    if (bm == NULL)
        return;
    g_signal_handlers_disconnect_by_data(bm->iface, bm);
    if (g_dbus_interface_skeleton_get_connection(G_DBUS_INTERFACE_SKELETON(bm->iface)) != NULL)
        g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(bm->iface));
    g_object_unref(bm->iface);
    g_free(bm);
}

GDBusInterfaceSkeleton *shimmer_bus_manager_get_interface(ShimmerBusManager *bm)
{
    return G_DBUS_INTERFACE_SKELETON(bm->iface);
}
