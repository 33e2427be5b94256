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

static void on_caller_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerCallerWatch *w = user;
    /* Our own connection went (the daemon reconnects): the client may well
     * still be there. */
    if (bus == NULL || g_dbus_connection_is_closed(bus))
        return;
    w->gone(w->user, name);
}

void shimmer_bus_caller_watch_renew(ShimmerBusContext *ctx, ShimmerCallerWatch *w)
{
    if (w->caller == NULL)
        return;
    if (w->id != 0)
        g_bus_unwatch_name(w->id);
    /* If the name is gone already, the watch says so at once (from the
     * main loop). */
    w->id = g_bus_watch_name_on_connection(ctx->bus, w->caller, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                           on_caller_vanished, w, NULL);
}

void shimmer_bus_caller_watch_start(ShimmerBusContext *ctx, ShimmerCallerWatch *w,
                                    const char *caller, void (*gone)(gpointer, const char *),
                                    gpointer user)
{
    shimmer_bus_caller_watch_clear(w);
    w->caller = g_strdup(caller);
    w->gone = gone;
    w->user = user;
    shimmer_bus_caller_watch_renew(ctx, w);
}

void shimmer_bus_caller_watch_clear(ShimmerCallerWatch *w)
{
    if (w->id != 0)
        g_bus_unwatch_name(w->id);
    w->id = 0;
    g_clear_pointer(&w->caller, g_free);
}
