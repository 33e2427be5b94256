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

typedef struct {
    const char *path;
    gboolean (*is_final)(const char *state);
    gboolean ended;
    char *state, *reason;
} Ending;

static void ending_signal(Follow *f, const char *path, const char *iface, const char *member,
                          GVariant *params)
{
    Ending *e = f->data;
    if (strcmp(member, "InterfacesRemoved") == 0 && strcmp(path, ROOT_PATH) == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)"))) {
        const char *gone;
        g_variant_get_child(params, 0, "&o", &gone);
        if (strcmp(gone, e->path) == 0) {
            e->ended = TRUE;
            g_main_loop_quit(f->loop);
        }
        return;
    }
    if (strcmp(path, e->path) != 0 || strcmp(member, "PropertiesChanged") != 0 ||
        !g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
        return;
    g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);
    const char *s;
    if (g_variant_lookup(changed, "StateReason", "&s", &s)) {
        g_free(e->reason);
        e->reason = g_strdup(s);
    }
    if (g_variant_lookup(changed, "State", "&s", &s)) {
        g_free(e->state);
        e->state = g_strdup(s);
        if (e->is_final(s)) {
            e->ended = TRUE;
            g_main_loop_quit(f->loop);
        }
    }
}

CtlEndResult ctl_call_and_follow_end(Ctl *ctl, const char *path, const char *iface,
                                     const char *method, gboolean (*is_final)(const char *state),
                                     guint timeout_s, char **state, char **reason, GError **error)
{
    Ending e = {.path = path, .is_final = is_final};
    Follow f = {0};
    CtlEndResult result;
    /* Subscribed before the call: no signal of the object is missed. */
    ctl_follow_start(&f, ctl, ending_signal, &e, TRUE);
    g_autoptr(GVariant) reply = ctl_call(ctl, path, iface, method, NULL, NULL, error);
    if (reply == NULL) {
        result = CTL_END_CALL_FAILED;
    } else {
        ctl_follow_set_timeout(&f, timeout_s * 1000);
        /* It may have ended before we subscribed: read the state once. */
        g_autoptr(GVariant) now = ctl_get_property(ctl, path, iface, "State");
        if (now == NULL || is_final(g_variant_get_string(now, NULL)))
            e.ended = TRUE;
        if (!e.ended)
            g_main_loop_run(f.loop);
        result = e.ended         ? CTL_END_ENDED
                 : f.daemon_gone ? CTL_END_DAEMON_GONE
                 : f.interrupted ? CTL_END_INTERRUPTED
                                 : CTL_END_TIMED_OUT;
    }
    ctl_follow_stop(&f);
    *state = e.state;
    *reason = e.reason;
    return result;
}
