/* SPDX-License-Identifier: MIT */
/* shimmerctl: monitor, every event of the daemon as it happens. */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "follow.h"
#include "output.h"

typedef struct {
    GHashTable *names; /* profile or session path -> the profile's name */
} Monitor;

static char *monitor_label(Monitor *m, const char *path)
{
    const char *name = g_hash_table_lookup(m->names, path);
    const char *shortp =
        g_str_has_prefix(path, ROOT_PATH "/") ? path + strlen(ROOT_PATH "/") : path;
    if (name)
        return g_strdup_printf("%s '%s'", shortp, name);
    return g_strdup(shortp);
}

static void monitor_print(const char *label, const char *text)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *ts = g_date_time_format(now, "%H:%M:%S.%f");
    /* %f is microseconds: milliseconds are enough to read. */
    if (strlen(ts) > 12)
        ts[12] = '\0';
    ctl_print(stdout, "%s %s: %s\n", ts, label, text);
    fflush(stdout);
}

static char *format_changes(GVariant *changed, const char *const *invalidated)
{
    g_autoptr(GString) out = g_string_new(NULL);
    GVariantIter iter;
    const char *name;
    GVariant *value;
    g_variant_iter_init(&iter, changed);
    while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
        g_autofree char *text = ctl_format_value(value);
        g_variant_unref(value);
        g_string_append_printf(out, "%s%s=%s", out->len ? ", " : "", name, text);
    }
    for (; invalidated && *invalidated; invalidated++)
        g_string_append_printf(out, "%s%s (%s)", out->len ? ", " : "", *invalidated,
                               _("invalidated"));
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void monitor_signal(Follow *f, const char *path, const char *iface, const char *member,
                           GVariant *params)
{
    Monitor *m = f->data;
    if (strcmp(member, "InterfacesAdded") == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(oa{sa{sv}})"))) {
        const char *obj;
        g_autoptr(GVariant) ifaces = NULL;
        g_variant_get(params, "(&o@a{sa{sv}})", &obj, &ifaces);
        g_autoptr(GVariant) profile = g_variant_lookup_value(ifaces, IFACE_PROFILE, NULL);
        g_autoptr(GVariant) session = g_variant_lookup_value(ifaces, IFACE_SESSION, NULL);
        const char *name = NULL, *state = NULL, *ppath = NULL;
        if (profile && g_variant_lookup(profile, "Name", "&s", &name))
            g_hash_table_replace(m->names, g_strdup(obj), g_strdup(name));
        char *label = monitor_label(m, obj);
        g_autofree char *text = NULL;
        if (session) {
            g_variant_lookup(session, "State", "&s", &state);
            g_variant_lookup(session, "Profile", "&o", &ppath);
            const char *pname = ppath ? g_hash_table_lookup(m->names, ppath) : NULL;
            if (pname) {
                g_hash_table_replace(m->names, g_strdup(obj), g_strdup(pname));
                g_free(label);
                label = monitor_label(m, obj);
            }
            g_autofree char *plabel = ppath ? monitor_label(m, ppath) : g_strdup("-");
            text = g_strdup_printf(_("session added for %s (%s)"), plabel, ctl_state_label(state));
        } else if (profile) {
            text = g_strdup(_("profile added"));
        } else {
            text = g_strdup(_("object added"));
        }
        monitor_print(label, text);
        g_free(label);
    } else if (strcmp(member, "InterfacesRemoved") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)"))) {
        const char *obj;
        g_variant_get_child(params, 0, "&o", &obj);
        g_autofree char *label = monitor_label(m, obj);
        monitor_print(label, _("removed"));
        g_hash_table_remove(m->names, obj);
    } else if (strcmp(member, "PropertiesChanged") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)"))) {
        g_autoptr(GVariant) changed = NULL;
        g_autofree const char **invalidated = NULL;
        const char *which;
        g_variant_get(params, "(&s@a{sv}^a&s)", &which, &changed, &invalidated);
        const char *name;
        if (strcmp(which, IFACE_PROFILE) == 0 && g_variant_lookup(changed, "Name", "&s", &name))
            g_hash_table_replace(m->names, g_strdup(path), g_strdup(name));
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *text = format_changes(changed, invalidated);
        monitor_print(label, text);
    } else if (strcmp(member, "Log") == 0 && g_variant_is_of_type(params, G_VARIANT_TYPE("(us)"))) {
        static const char *const levels[] = {N_("error"), N_("warning"), N_("info"), N_("debug")};
        guint level;
        const char *message;
        g_variant_get(params, "(u&s)", &level, &message);
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *text = g_strdup_printf(
            "[%s] %s", level < G_N_ELEMENTS(levels) ? _(levels[level]) : "?", message);
        monitor_print(label, text);
    } else if (strcmp(member, "CredentialsRequested") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(assb)"))) {
        g_autofree const char **fields = NULL;
        const char *prompt_text;
        gboolean echo;
        g_variant_get(params, "(^a&s&sb)", &fields, &prompt_text, &echo);
        g_autofree char *list = g_strjoinv(", ", (char **)fields);
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *text =
            *prompt_text
                ? g_strdup_printf(_("credentials requested: %s (\"%s\")"), list, prompt_text)
                : g_strdup_printf(_("credentials requested: %s"), list);
        monitor_print(label, text);
    } else {
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *args = g_variant_print(params, FALSE);
        g_autofree char *text = g_strdup_printf("%s.%s %s", iface, member, args);
        monitor_print(label, text);
    }
}

static void monitor_appeared(GDBusConnection *bus, const char *name, const char *owner,
                             gpointer user)
{
    g_autofree char *text = g_strdup_printf(_("the daemon is on the bus (%s)"), owner);
    monitor_print(name, text);
}

static void monitor_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    monitor_print(name, _("the daemon is not on the bus"));
}

int ctl_cmd_monitor(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "monitor";
    int r = ctl_parse_options(ctl, synopsis, argc, argv, NULL, NULL, 0, 0);
    if (r >= 0)
        return r;
    /* The daemon may come and go while we watch: only the bus must be
     * there. */
    r = ctl_open_full(ctl, FALSE);
    if (r != EXIT_OK && ctl->bus == NULL)
        return r;
    Monitor m = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
    Follow f = {0};
    ctl_follow_start(&f, ctl, monitor_signal, &m, FALSE);
    guint watch = g_bus_watch_name_on_connection(ctl->bus, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                 monitor_appeared, monitor_vanished, &m, NULL);
    if (r == EXIT_OK) {
        int code = EXIT_OK;
        g_autoptr(GPtrArray) profiles = ctl_list_objects(ctl, "ListProfiles", FALSE, &code);
        for (guint i = 0; profiles && i < profiles->len; i++) {
            ShimmerDBusProfile1 *p = profiles->pdata[i];
            const char *name = shimmer_dbus_profile1_get_name(p);
            const char *active = shimmer_dbus_profile1_get_active_session(p);
            if (name == NULL)
                continue;
            g_hash_table_replace(m.names, g_strdup(g_dbus_proxy_get_object_path(G_DBUS_PROXY(p))),
                                 g_strdup(name));
            if (active && strcmp(active, "/") != 0)
                g_hash_table_replace(m.names, g_strdup(active), g_strdup(name));
        }
    }
    g_main_loop_run(f.loop);
    g_bus_unwatch_name(watch);
    ctl_follow_stop(&f);
    g_hash_table_unref(m.names);
    return EXIT_OK;
}
