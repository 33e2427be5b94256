/* SPDX-License-Identifier: MIT */
#include "context.h"

char *shimmer_bus_profile_path(ShimmerProfile *p)
{
    return g_strdup_printf("%s/%s", SHIMMER_BUS_PROFILE_PATH, shimmer_profile_get_id(p));
}

char *shimmer_bus_session_path(ShimmerSession *s)
{
    return g_strdup_printf("%s/%s", SHIMMER_BUS_SESSION_PATH, shimmer_session_get_id(s));
}

char *shimmer_bus_server_path(ShimmerManagedServer *s)
{
    return g_strdup_printf("%s/%s", SHIMMER_BUS_SERVER_PATH, shimmer_managed_server_get_id(s));
}

char *shimmer_bus_client_path(const char *server_path, guint64 id)
{
    return g_strdup_printf("%s/client/%" G_GUINT64_FORMAT, server_path, id);
}

void shimmer_bus_emit_to_uid(ShimmerBusContext *ctx, guint uid, const char *path,
                             const char *interface, const char *signal, GVariant *params)
{
    g_autoptr(GVariant) p = g_variant_ref_sink(params);
    g_auto(GStrv) names = shimmer_auth_dup_names_of_uid(ctx->auth, uid);
    for (guint i = 0; names[i] != NULL; i++)
        g_dbus_connection_emit_signal(ctx->bus, names[i], path, interface, signal, p, NULL);
}
