/* SPDX-License-Identifier: MIT */
/*
 * org.shimmervpn.Client1. See client1.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "client1.h"

#include "errors.h"
#include "shimmer-dbus-generated.h"

struct ShimmerBusClient {
    ShimmerBusContext *ctx;
    ShimmerManagedServer *server; /* a reference */
    guint64 id;
    char *path;
    ShimmerDBusObjectSkeleton *object;
    ShimmerDBusClient1 *iface;
};

typedef struct {
    ShimmerManagedServer *server; /* a reference */
    guint64 id;
    char *reason;
} KickCall;

static void kick_call_free(gpointer data)
{
    KickCall *c = data;
    shimmer_managed_server_unref(c->server);
    g_free(c->reason);
    g_free(c);
}

static void kick_allowed(GDBusMethodInvocation *invocation, guint caller_uid, gpointer data)
{
    KickCall *c = data;
    g_autoptr(GError) error = NULL;
    g_message("server %s: client %" G_GUINT64_FORMAT " kicked by uid %u",
              shimmer_managed_server_get_id(c->server), c->id, caller_uid);
    /* The client's object may go before this returns: C holds what is
     * needed. */
    if (!shimmer_managed_server_kick(c->server, c->id, c->reason, &error))
        shimmer_bus_return_error(invocation, error);
    else
        shimmer_dbus_client1_complete_kick(NULL, invocation);
}

static gboolean handle_kick(ShimmerDBusClient1 *iface, GDBusMethodInvocation *invocation,
                            const char *reason, gpointer user)
{
    ShimmerBusClient *bc = user;
    KickCall *c = g_new0(KickCall, 1);
    c->server = shimmer_managed_server_ref(bc->server);
    c->id = bc->id;
    c->reason = g_strdup(reason);
    shimmer_auth_gate(bc->ctx->auth, invocation, shimmer_managed_server_get_owner(bc->server),
                      bc->ctx->cancel, kick_allowed, c, kick_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

void shimmer_bus_client_update(ShimmerBusClient *bc, const ShimmerServedClient *c)
{
    /* The skeleton only announces values that changed. */
    g_object_set(bc->iface, "bytes-in", c->bytes_in, "bytes-out", c->bytes_out, "packets-in",
                 c->packets_in, "packets-out", c->packets_out, NULL);
}

ShimmerBusClient *shimmer_bus_client_new(ShimmerBusContext *ctx, ShimmerManagedServer *server,
                                         const char *server_path, const ShimmerServedClient *c)
{
    ShimmerBusClient *bc = g_new0(ShimmerBusClient, 1);
    bc->ctx = ctx;
    bc->server = shimmer_managed_server_ref(server);
    bc->id = c->id;
    bc->path = shimmer_bus_client_path(server_path, c->id);
    bc->object = shimmer_dbus_object_skeleton_new(bc->path);
    bc->iface = shimmer_dbus_client1_skeleton_new();
    g_object_set(bc->iface, "id", c->id, "server", server_path, "common-name", c->common_name,
                 "user-name", c->username, "real-address", c->real_address, "virtual-addresses",
                 c->virtual_addresses, "cipher", c->cipher, "connected-since", c->connected_since,
                 NULL);
    shimmer_bus_client_update(bc, c);
    g_signal_connect(bc->iface, "handle-kick", G_CALLBACK(handle_kick), bc);
    shimmer_dbus_object_skeleton_set_client1(bc->object, bc->iface);
    return bc;
}

void shimmer_bus_client_free(ShimmerBusClient *bc)
{
    if (bc == NULL)
        return;
    g_signal_handlers_disconnect_by_data(bc->iface, bc);
    g_object_unref(bc->iface);
    g_object_unref(bc->object);
    shimmer_managed_server_unref(bc->server);
    g_free(bc->path);
    g_free(bc);
}

GDBusObjectSkeleton *shimmer_bus_client_get_object(ShimmerBusClient *bc)
{
    return G_DBUS_OBJECT_SKELETON(bc->object);
}

const char *shimmer_bus_client_get_path(ShimmerBusClient *bc)
{
    return bc->path;
}
