/* SPDX-License-Identifier: MIT */
/* shimmerctl: the connection to shimmerd, its errors, and the profiles and
 * sessions commands name. */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "output.h"

static gboolean error_is(const char *remote, const char *const *names)
{
    for (; *names; names++) {
        gsize n = strlen(*names);
        /* A trailing '.' matches a family of errors. */
        if ((*names)[n - 1] == '.' ? strncmp(remote, *names, n) == 0 : strcmp(remote, *names) == 0)
            return TRUE;
    }
    return FALSE;
}

static int exit_code_for(const GError *error)
{
    static const char *const unauthorized[] = {
        "org.shimmervpn.Error.NotAuthorized",
        "org.freedesktop.DBus.Error.AccessDenied",
        "org.freedesktop.DBus.Error.AuthFailed",
        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        NULL,
    };
    static const char *const unreachable[] = {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.NoServer",
        "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.Spawn.",
        NULL,
    };
    g_autofree char *remote = g_dbus_error_get_remote_error(error);
    if (remote) {
        if (error_is(remote, unauthorized))
            return EXIT_NOT_AUTHORIZED;
        if (error_is(remote, unreachable))
            return EXIT_UNREACHABLE;
        return EXIT_REFUSED;
    }
    if (error->domain == G_DBUS_ERROR) {
        switch (error->code) {
        case G_DBUS_ERROR_ACCESS_DENIED:
        case G_DBUS_ERROR_AUTH_FAILED:
            return EXIT_NOT_AUTHORIZED;
        case G_DBUS_ERROR_SERVICE_UNKNOWN:
        case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
        case G_DBUS_ERROR_NO_REPLY:
        case G_DBUS_ERROR_NO_SERVER:
        case G_DBUS_ERROR_DISCONNECTED:
        case G_DBUS_ERROR_TIMEOUT:
            return EXIT_UNREACHABLE;
        default:
            return EXIT_REFUSED;
        }
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        return EXIT_UNREACHABLE;
    return EXIT_REFUSED;
}

int ctl_fail(const char *what, GError *error)
{
    int code = exit_code_for(error);
    g_dbus_error_strip_remote_error(error);
    /* The daemon's message may be several lines (the diagnostics of a
     * refused profile) and quote what the profile says. */
    g_autofree char *what_shown = ctl_escape(what);
    g_autofree char *text = NULL;
    if (code == EXIT_NOT_AUTHORIZED)
        text =
            g_strdup_printf(_("shimmerctl: %s: not authorized: %s\n"), what_shown, error->message);
    else if (code == EXIT_UNREACHABLE)
        text = g_strdup_printf(_("shimmerctl: %s: the daemon cannot be reached: %s\n"), what_shown,
                               error->message);
    else
        text = g_strdup_printf("shimmerctl: %s: %s\n", what_shown, error->message);
    ctl_print_lines(stderr, text);
    return code;
}

void ctl_clear(Ctl *ctl)
{
    g_clear_object(&ctl->manager);
    g_clear_object(&ctl->bus);
}

int ctl_open_full(Ctl *ctl, gboolean require_daemon)
{
    g_autoptr(GError) error = NULL;
    const char *address = ctl->address;
    if (address == NULL || *address == '\0')
        address = g_getenv("SHIMMER_BUS_ADDRESS");
    if (address && *address) {
        ctl->bus = g_dbus_connection_new_for_address_sync(
            address,
            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
            NULL, NULL, &error);
    } else {
        ctl->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
    }
    if (ctl->bus == NULL) {
        ctl_print(stderr, _("shimmerctl: cannot connect to the bus: %s\n"), error->message);
        return EXIT_UNREACHABLE;
    }
    g_dbus_connection_set_exit_on_close(ctl->bus, FALSE);
    ctl->manager = shimmer_dbus_manager1_proxy_new_sync(ctl->bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
                                                        ROOT_PATH, NULL, &error);
    if (ctl->manager == NULL)
        return ctl_fail(_("cannot reach the daemon"), error);
    g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(ctl->manager));
    if (owner == NULL && !require_daemon)
        return EXIT_UNREACHABLE;
    if (owner == NULL) {
        ctl_print(stderr, _("shimmerctl: the Shimmer daemon (%s) is not running on this bus\n"),
                  BUS_NAME);
        return EXIT_UNREACHABLE;
    }
    return EXIT_OK;
}

int ctl_open(Ctl *ctl)
{
    return ctl_open_full(ctl, TRUE);
}

GVariant *ctl_call(Ctl *ctl, const char *path, const char *iface, const char *method,
                   GVariant *args, const GVariantType *reply_type, GError **error)
{
    GDBusCallFlags flags = G_DBUS_CALL_FLAGS_NONE;
    int timeout_ms = -1;
    if (isatty(STDIN_FILENO)) {
        flags |= G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;
        timeout_ms = 300 * 1000;
    }
    return g_dbus_connection_call_sync(ctl->bus, BUS_NAME, path, iface, method, args, reply_type,
                                       flags, timeout_ms, NULL, error);
}

GVariant *ctl_get_property(Ctl *ctl, const char *path, const char *iface, const char *name)
{
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        ctl->bus, BUS_NAME, path, IFACE_PROPERTIES, "Get", g_variant_new("(ss)", iface, name),
        G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
    if (reply == NULL)
        return NULL;
    GVariant *value = NULL;
    g_variant_get(reply, "(v)", &value);
    return value;
}

/* ---------------------------------------------------------------- lookup */

ShimmerDBusProfile1 *ctl_profile_proxy(Ctl *ctl, const char *path, GError **error)
{
    return shimmer_dbus_profile1_proxy_new_sync(ctl->bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, path,
                                                NULL, error);
}

ShimmerDBusSession1 *ctl_session_proxy(Ctl *ctl, const char *path, GError **error)
{
    return shimmer_dbus_session1_proxy_new_sync(ctl->bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, path,
                                                NULL, error);
}

gboolean ctl_proxy_has_properties(gpointer proxy)
{
    g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(G_DBUS_PROXY(proxy));
    return names != NULL && names[0] != NULL;
}

GPtrArray *ctl_list_objects(Ctl *ctl, const char *method, gboolean sessions, int *code)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, ROOT_PATH, IFACE_MANAGER, method, NULL, G_VARIANT_TYPE("(ao)"), &error);
    if (reply == NULL) {
        *code = ctl_fail(sessions ? _("cannot list the sessions") : _("cannot list the profiles"),
                         error);
        return NULL;
    }
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GVariantIter) iter = NULL;
    const char *path;
    g_variant_get(reply, "(ao)", &iter);
    while (g_variant_iter_next(iter, "&o", &path)) {
        g_autoptr(GError) perr = NULL;
        gpointer proxy = sessions ? (gpointer)ctl_session_proxy(ctl, path, &perr)
                                  : (gpointer)ctl_profile_proxy(ctl, path, &perr);
        /* An object that went away meanwhile has no properties: skip it. */
        if (proxy == NULL || !ctl_proxy_has_properties(proxy)) {
            g_clear_object(&proxy);
            continue;
        }
        g_ptr_array_add(out, proxy);
    }
    return g_steal_pointer(&out);
}

ShimmerDBusProfile1 *ctl_find_profile(Ctl *ctl, const char *spec, gboolean quiet_missing, int *code)
{
    g_autoptr(GError) error = NULL;
    if (spec[0] == '/') {
        if (!g_variant_is_object_path(spec)) {
            ctl_print(stderr, _("shimmerctl: '%s' is not an object path\n"), spec);
            *code = EXIT_USAGE;
            return NULL;
        }
        /* No check that it exists: the daemon's answer to the method call
         * says whether it does and whether the caller may use it. */
        ShimmerDBusProfile1 *p = ctl_profile_proxy(ctl, spec, &error);
        if (p == NULL)
            *code = ctl_fail(spec, error);
        return p;
    }
    g_autoptr(GPtrArray) all = ctl_list_objects(ctl, "ListProfiles", FALSE, code);
    if (all == NULL)
        return NULL;
    for (int pass = 0; pass < 2; pass++) {
        g_autoptr(GPtrArray) match = g_ptr_array_new();
        for (guint i = 0; i < all->len; i++) {
            ShimmerDBusProfile1 *p = all->pdata[i];
            const char *v =
                pass == 0 ? shimmer_dbus_profile1_get_name(p) : shimmer_dbus_profile1_get_id(p);
            if (g_strcmp0(v, spec) == 0)
                g_ptr_array_add(match, p);
        }
        if (match->len > 1) {
            ShimmerDBusProfile1 *mine = NULL;
            guint n_mine = 0;
            for (guint i = 0; i < match->len; i++) {
                if (shimmer_dbus_profile1_get_owner(match->pdata[i]) == getuid()) {
                    mine = match->pdata[i];
                    n_mine++;
                }
            }
            if (n_mine == 1)
                return g_object_ref(mine);
            fprintf(stderr,
                    _("shimmerctl: several profiles are called '%s'; give an object path:\n"),
                    spec);
            for (guint i = 0; i < match->len; i++)
                ctl_print(stderr, "  %s\n", g_dbus_proxy_get_object_path(match->pdata[i]));
            *code = EXIT_REFUSED;
            return NULL;
        }
        if (match->len == 1)
            return g_object_ref(match->pdata[0]);
    }
    if (!quiet_missing)
        ctl_print(stderr, _("shimmerctl: no profile '%s' (see 'shimmerctl list')\n"), spec);
    *code = EXIT_REFUSED;
    return NULL;
}

static const char *path_tail(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

ShimmerDBusSession1 *ctl_find_session(Ctl *ctl, const char *spec, int *code)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    if (g_str_has_prefix(spec, SESSION_PREFIX)) {
        if (!g_variant_is_object_path(spec)) {
            ctl_print(stderr, _("shimmerctl: '%s' is not an object path\n"), spec);
            *code = EXIT_USAGE;
            return NULL;
        }
        path = g_strdup(spec);
    } else {
        g_autoptr(ShimmerDBusProfile1) profile = ctl_find_profile(ctl, spec, TRUE, code);
        if (profile == NULL && *code != EXIT_REFUSED)
            return NULL;
        if (profile) {
            const char *active = shimmer_dbus_profile1_get_active_session(profile);
            if (active == NULL || strcmp(active, "/") == 0) {
                ctl_print(stderr, _("shimmerctl: profile '%s' has no session\n"), spec);
                *code = EXIT_REFUSED;
                return NULL;
            }
            path = g_strdup(active);
        } else if (spec[0] != '/') {
            g_autoptr(GPtrArray) sessions = ctl_list_objects(ctl, "ListSessions", TRUE, code);
            if (sessions == NULL)
                return NULL;
            for (guint i = 0; i < sessions->len && path == NULL; i++) {
                const char *p = g_dbus_proxy_get_object_path(sessions->pdata[i]);
                if (strcmp(path_tail(p), spec) == 0)
                    path = g_strdup(p);
            }
        }
        if (path == NULL) {
            ctl_print(stderr, _("shimmerctl: no profile or session '%s' (see 'shimmerctl list')\n"),
                      spec);
            *code = EXIT_REFUSED;
            return NULL;
        }
    }
    ShimmerDBusSession1 *s = ctl_session_proxy(ctl, path, &error);
    if (s == NULL)
        *code = ctl_fail(path, error);
    return s;
}

char *ctl_profile_name(Ctl *ctl, const char *path)
{
    if (path == NULL || strcmp(path, "/") == 0)
        return g_strdup("-");
    g_autoptr(GVariant) v = ctl_get_property(ctl, path, IFACE_PROFILE, "Name");
    if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        return g_variant_dup_string(v, NULL);
    return g_strdup(path);
}
