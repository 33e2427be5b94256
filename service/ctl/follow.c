/* SPDX-License-Identifier: MIT */
/* shimmerctl: following the daemon's signals (see follow.h). */
#include "shimmer-build-config.h"

#include <glib-unix.h>
#include <signal.h>
#include <string.h>

#include "follow.h"

static void follow_signal_cb(GDBusConnection *bus, const char *sender, const char *path,
                             const char *iface, const char *member, GVariant *params, gpointer user)
{
    Follow *f = user;
    f->on_signal(f, path, iface, member, params);
}

static void follow_name_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    Follow *f = user;
    f->daemon_gone = TRUE;
    g_main_loop_quit(f->loop);
}

static gboolean follow_on_unix_signal(gpointer user)
{
    Follow *f = user;
    f->interrupted = TRUE;
    g_main_loop_quit(f->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean follow_on_timeout(gpointer user)
{
    Follow *f = user;
    f->timed_out = TRUE;
    f->timeout = 0;
    g_main_loop_quit(f->loop);
    return G_SOURCE_REMOVE;
}

void ctl_follow_start(Follow *f, Ctl *ctl, FollowSignal on_signal, gpointer data,
                      gboolean watch_name)
{
    f->ctl = ctl;
    f->loop = g_main_loop_new(NULL, FALSE);
    f->on_signal = on_signal;
    f->data = data;
    f->subscription =
        g_dbus_connection_signal_subscribe(ctl->bus, BUS_NAME, NULL, NULL, NULL, NULL,
                                           G_DBUS_SIGNAL_FLAGS_NONE, follow_signal_cb, f, NULL);
    if (watch_name)
        f->name_watch = g_bus_watch_name_on_connection(
            ctl->bus, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL, follow_name_vanished, f, NULL);
    f->sigint = g_unix_signal_add(SIGINT, follow_on_unix_signal, f);
    f->sigterm = g_unix_signal_add(SIGTERM, follow_on_unix_signal, f);
}

void ctl_follow_set_timeout(Follow *f, guint ms)
{
    if (f->timeout)
        g_source_remove(f->timeout);
    f->timeout = ms ? g_timeout_add(ms, follow_on_timeout, f) : 0;
}

void ctl_follow_stop(Follow *f)
{
    if (f->subscription)
        g_dbus_connection_signal_unsubscribe(f->ctl->bus, f->subscription);
    if (f->name_watch)
        g_bus_unwatch_name(f->name_watch);
    if (f->sigint)
        g_source_remove(f->sigint);
    if (f->sigterm)
        g_source_remove(f->sigterm);
    if (f->timeout)
        g_source_remove(f->timeout);
    g_clear_pointer(&f->loop, g_main_loop_unref);
    memset(f, 0, sizeof(*f));
}
