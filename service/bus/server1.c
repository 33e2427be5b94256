/* SPDX-License-Identifier: MIT */
/*
 * org.shimmervpn.Server1. See server1.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "server1.h"

#include <string.h>

#include "client1.h"
#include "errors.h"
#include "shimmer-dbus-generated.h"

#define SERVER1 "org.shimmervpn.Server1"

struct ShimmerBusServer {
    ShimmerBusContext *ctx;
    ShimmerManagedServer *s; /* a reference */
    char *path;
    ShimmerDBusObjectSkeleton *object;
    ShimmerDBusServer1 *iface;
    GHashTable *clients; /* guint64* id -> ShimmerBusClient* (exported) */
};

/* ---------- properties and signals ---------- */

static void update_state(ShimmerBusServer *bs)
{
    ShimmerManagedServer *s = bs->s;
    /* One PropertiesChanged carries the state with its reason. */
    g_object_set(bs->iface, "interface", shimmer_managed_server_get_interface(s), "listen-address",
                 shimmer_managed_server_get_listen_address(s), "started-since",
                 shimmer_managed_server_get_started_since(s), "state",
                 shimmer_managed_server_get_state(s), "state-reason",
                 shimmer_managed_server_get_state_reason(s), NULL);
}

static GVariant *statistics_dict(ShimmerManagedServer *s)
{
    const char *const *names;
    guint64 values[SHIMMER_MANAGED_SERVER_N_STATISTICS];
    guint n = 0;
    shimmer_managed_server_get_statistics(s, &names, values, &n);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{st}"));
    for (guint i = 0; i < n; i++)
        g_variant_builder_add(&b, "{st}", names[i], values[i]);
    return g_variant_builder_end(&b);
}

static void update_counters(ShimmerBusServer *bs)
{
    ShimmerManagedServerCounters c;
    shimmer_managed_server_get_counters(bs->s, &c);
    /* The skeleton only announces values that changed. */
    g_object_set(bs->iface, "client-count", shimmer_managed_server_get_client_count(bs->s),
                 "bytes-in", c.bytes_in, "bytes-out", c.bytes_out, "packets-in", c.packets_in,
                 "packets-out", c.packets_out, "statistics", statistics_dict(bs->s), NULL);
}

void shimmer_bus_server_update(ShimmerBusServer *bs, guint what)
{
    if (what & SHIMMER_MANAGED_SERVER_CHANGED_COUNTERS)
        update_counters(bs);
    if (what & SHIMMER_MANAGED_SERVER_CHANGED_STATE)
        update_state(bs);
}

void shimmer_bus_server_log(ShimmerBusServer *bs, ShimmerLogLevel level, const char *line)
{
    /* Directed: the lines name clients, users and addresses. */
    shimmer_bus_emit_to_uid(bs->ctx, shimmer_managed_server_get_owner(bs->s), bs->path, SERVER1,
                            "Log", g_variant_new("(us)", (guint)level, line));
}

static GVariant *request_dict(const ShimmerServerAuthRequest *r)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "common-name", g_variant_new_string(r->common_name));
    g_variant_builder_add(&b, "{sv}", "username", g_variant_new_string(r->username));
    g_variant_builder_add(&b, "{sv}", "real-address", g_variant_new_string(r->real_address));
    g_variant_builder_add(&b, "{sv}", "pam", g_variant_new_boolean(r->pam));
    g_variant_builder_add(&b, "{sv}", "deadline", g_variant_new_uint64(r->deadline));
    g_variant_builder_add(&b, "{sv}", "timeout", g_variant_new_uint32(r->timeout));
    return g_variant_builder_end(&b);
}

void shimmer_bus_server_auth_requested(ShimmerBusServer *bs, const ShimmerServerAuthRequest *r)
{
    /* Directed: who logs in from where is the owner's business. No
     * password is in R. */
    shimmer_bus_emit_to_uid(bs->ctx, shimmer_managed_server_get_owner(bs->s), bs->path, SERVER1,
                            "AuthRequested", g_variant_new("(t@a{sv})", r->id, request_dict(r)));
}

void shimmer_bus_server_auth_closed(ShimmerBusServer *bs, guint64 request, const char *outcome)
{
    shimmer_bus_emit_to_uid(bs->ctx, shimmer_managed_server_get_owner(bs->s), bs->path, SERVER1,
                            "AuthRequestClosed", g_variant_new("(ts)", request, outcome));
}

/* ---------- clients ---------- */

void shimmer_bus_server_client_added(ShimmerBusServer *bs, const ShimmerServedClient *c)
{
    ShimmerBusClient *bc = shimmer_bus_client_new(bs->ctx, bs->s, bs->path, c);
    g_hash_table_replace(bs->clients, g_memdup2(&c->id, sizeof(c->id)), bc);
    g_dbus_object_manager_server_export(bs->ctx->objects, shimmer_bus_client_get_object(bc));
}

void shimmer_bus_server_client_changed(ShimmerBusServer *bs, const ShimmerServedClient *c)
{
    ShimmerBusClient *bc = g_hash_table_lookup(bs->clients, &c->id);
    if (bc != NULL)
        shimmer_bus_client_update(bc, c);
}

void shimmer_bus_server_client_removed(ShimmerBusServer *bs, const ShimmerServedClient *c)
{
    ShimmerBusClient *bc = g_hash_table_lookup(bs->clients, &c->id);
    if (bc == NULL)
        return;
    g_dbus_object_manager_server_unexport(bs->ctx->objects, shimmer_bus_client_get_path(bc));
    g_hash_table_remove(bs->clients, &c->id);
}

/* ---------- calls ---------- */

typedef struct {
    ShimmerBusContext *ctx;
    ShimmerManagedServer *s; /* a reference */
    guint64 request;
    ShimmerAuthDecision decision;
    char *reason;
} ServerCall;

static void server_call_free(gpointer data)
{
    ServerCall *c = data;
    shimmer_managed_server_unref(c->s);
    g_free(c->reason);
    g_free(c);
}

static ServerCall *server_call_new(ShimmerBusServer *bs)
{
    ServerCall *c = g_new0(ServerCall, 1);
    c->ctx = bs->ctx;
    c->s = shimmer_managed_server_ref(bs->s);
    return c;
}

static void gate(ShimmerBusServer *bs, GDBusMethodInvocation *invocation,
                 ShimmerAuthAllowedFunc func, ServerCall *c)
{
    shimmer_auth_gate(bs->ctx->auth, invocation, shimmer_managed_server_get_owner(bs->s),
                      bs->ctx->cancel, func, c, server_call_free);
}

static void stop_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ServerCall *c = data;
    /* Stopping an ended server is not an error: it is stopped. */
    g_autofree char *why = g_strdup_printf("stopped on request (uid %u)", caller_uid);
    shimmer_dbus_server1_complete_stop(NULL, invocation);
    shimmer_managed_server_stop(c->s, why);
}

static gboolean handle_stop(ShimmerDBusServer1 *iface, GDBusMethodInvocation *invocation,
                            gpointer user)
{
    ShimmerBusServer *bs = user;
    gate(bs, invocation, stop_allowed, server_call_new(bs));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void answer_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ServerCall *c = data;
    g_autoptr(GError) error = NULL;
    g_message("server %s: login %" G_GUINT64_FORMAT " answered by uid %u",
              shimmer_managed_server_get_id(c->s), c->request, caller_uid);
    if (!shimmer_managed_server_answer_auth(c->s, c->request, c->decision, c->reason, &error))
        shimmer_bus_return_error(invocation, error);
    else
        shimmer_dbus_server1_complete_answer_auth(NULL, invocation);
}

static gboolean handle_answer_auth(ShimmerDBusServer1 *iface, GDBusMethodInvocation *invocation,
                                   guint64 request, const char *decision, const char *reason,
                                   gpointer user)
{
    ShimmerBusServer *bs = user;
    ShimmerAuthDecision d;
    if (strcmp(decision, "accept") == 0) {
        d = SHIMMER_AUTH_ACCEPT;
    } else if (strcmp(decision, "deny") == 0) {
        d = SHIMMER_AUTH_DENY;
    } else if (strcmp(decision, "pending") == 0) {
        d = SHIMMER_AUTH_PENDING;
    } else {
        g_autofree char *shown = g_strescape(decision, NULL);
        shimmer_bus_return_new(invocation, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                               "decision: \"%.64s\" is not one of accept, deny, pending", shown);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    ServerCall *c = server_call_new(bs);
    c->request = request;
    c->decision = d;
    c->reason = g_strdup(reason);
    gate(bs, invocation, answer_allowed, c);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void get_requests_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    ServerCall *c = data;
    /* The signals that announce requests go to the owner alone; so do
     * they. */
    if (caller_uid != shimmer_managed_server_get_owner(c->s) && caller_uid != 0) {
        shimmer_bus_return_new(invocation, SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED,
                               "only the server's owner may read the logins it waits for");
        return;
    }
    g_autoptr(GPtrArray) list = shimmer_managed_server_list_auth_requests(c->s);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a(ta{sv})"));
    for (guint i = 0; i < list->len; i++) {
        const ShimmerServerAuthRequest *r = g_ptr_array_index(list, i);
        g_variant_builder_add(&b, "(t@a{sv})", r->id, request_dict(r));
    }
    shimmer_dbus_server1_complete_get_auth_requests(NULL, invocation, g_variant_builder_end(&b));
}

static gboolean handle_get_auth_requests(ShimmerDBusServer1 *iface,
                                         GDBusMethodInvocation *invocation, gpointer user)
{
    ShimmerBusServer *bs = user;
    gate(bs, invocation, get_requests_allowed, server_call_new(bs));
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- the object ---------- */

ShimmerBusServer *shimmer_bus_server_new(ShimmerBusContext *ctx, ShimmerManagedServer *s)
{
    ShimmerBusServer *bs = g_new0(ShimmerBusServer, 1);
    bs->ctx = ctx;
    bs->s = shimmer_managed_server_ref(s);
    bs->path = shimmer_bus_server_path(s);
    bs->object = shimmer_dbus_object_skeleton_new(bs->path);
    bs->iface = shimmer_dbus_server1_skeleton_new();
    bs->clients = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                        (GDestroyNotify)shimmer_bus_client_free);
    g_autofree char *profile = shimmer_bus_profile_path(shimmer_managed_server_get_profile(s));
    g_object_set(bs->iface, "id", shimmer_managed_server_get_id(s), "profile", profile, "owner",
                 shimmer_managed_server_get_owner(s), "protocol",
                 shimmer_managed_server_get_protocol(s), "networks",
                 shimmer_managed_server_get_networks(s), "auth-mode",
                 shimmer_managed_server_get_auth_mode(s), "max-clients",
                 shimmer_managed_server_get_max_clients(s), NULL);
    shimmer_bus_server_update(bs, SHIMMER_MANAGED_SERVER_CHANGED_STATE |
                                      SHIMMER_MANAGED_SERVER_CHANGED_COUNTERS);
    g_signal_connect(bs->iface, "handle-stop", G_CALLBACK(handle_stop), bs);
    g_signal_connect(bs->iface, "handle-answer-auth", G_CALLBACK(handle_answer_auth), bs);
    g_signal_connect(bs->iface, "handle-get-auth-requests", G_CALLBACK(handle_get_auth_requests),
                     bs);
    shimmer_dbus_object_skeleton_set_server1(bs->object, bs->iface);
    return bs;
}

void shimmer_bus_server_free(ShimmerBusServer *bs)
{
    if (bs == NULL)
        return;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, bs->clients);
    while (g_hash_table_iter_next(&it, NULL, &value))
        g_dbus_object_manager_server_unexport(bs->ctx->objects, shimmer_bus_client_get_path(value));
    g_hash_table_destroy(bs->clients);
    g_signal_handlers_disconnect_by_data(bs->iface, bs);
    g_object_unref(bs->iface);
    g_object_unref(bs->object);
    shimmer_managed_server_unref(bs->s);
    g_free(bs->path);
    g_free(bs);
}

GDBusObjectSkeleton *shimmer_bus_server_get_object(ShimmerBusServer *bs)
{
    return G_DBUS_OBJECT_SKELETON(bs->object);
}
