/* SPDX-License-Identifier: MIT */
/*
 * Web sign-in decisions for the front ends. See webauth.h.
 */
#include "webauth.h"

#include <string.h>

gboolean shimmer_web_auth_url_is_safe(const char *url)
{
    if (url == NULL)
        return FALSE;
    gsize len = strlen(url);
    if (len == 0 || len > SHIMMER_WEB_AUTH_MAX_URL)
        return FALSE;
    for (const char *p = url; *p; p++)
        if ((guchar)*p <= 0x20 || (guchar)*p >= 0x7f)
            return FALSE;
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    if (uri == NULL)
        return FALSE;
    const char *scheme = g_uri_get_scheme(uri);
    const char *host = g_uri_get_host(uri);
    return (g_ascii_strcasecmp(scheme, "https") == 0 || g_ascii_strcasecmp(scheme, "http") == 0) &&
           host != NULL && host[0] != '\0';
}

static void add_joined(GStrvBuilder *b, const char *a, const char *c, const char *d)
{
    g_autofree char *v = g_strconcat(a, c, d, NULL);
    g_strv_builder_add(b, v);
}

static gboolean set(const char *v)
{
    return v != NULL && v[0] != '\0';
}

/* An environment value we pass on: no controls, no newline. */
static gboolean plain(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((guchar)*p < 0x20 || (guchar)*p == 0x7f)
            return FALSE;
    return TRUE;
}

/* A user name runuser takes as one (never an option). */
static gboolean user_name_ok(const char *u)
{
    if (!set(u) || strlen(u) > 64 || !(g_ascii_isalpha(u[0]) || u[0] == '_'))
        return FALSE;
    for (const char *p = u; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
            return FALSE;
    return TRUE;
}

char **shimmer_web_auth_open_command(const ShimmerBrowserEnv *env, const char *url,
                                     const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (!shimmer_web_auth_url_is_safe(url)) {
        *why = "the address is not an http(s) URL";
        return NULL;
    }
    gboolean x11 = set(env->display) && plain(env->display);
    gboolean wayland = set(env->wayland_display) && plain(env->wayland_display);
    if (!x11 && !wayland) {
        *why = "there is no graphical session (DISPLAY or WAYLAND_DISPLAY)";
        return NULL;
    }
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    if (env->euid != 0) {
        if (!set(env->xdg_runtime_dir) && !set(env->xdg_session_type)) {
            *why = "there is no desktop session (XDG_RUNTIME_DIR or XDG_SESSION_TYPE)";
            return NULL;
        }
        g_strv_builder_add_many(b, "gio", "open", url, NULL);
        return g_strv_builder_end(b);
    }
    /* Root: never a browser as root. Through sudo, in the session of the
     * user who ran it, as that user, with only the variables that find
     * the session. */
    guint64 uid = 0;
    if (!set(env->sudo_uid) ||
        !g_ascii_string_to_unsigned(env->sudo_uid, 10, 1, G_MAXUINT32, &uid, NULL) ||
        !user_name_ok(env->sudo_user) || !env->sudo_user_has_session) {
        *why = "running as root without a user's desktop session to open it in";
        return NULL;
    }
    g_autofree char *runtime = g_strdup_printf("/run/user/%" G_GUINT64_FORMAT, uid);
    g_strv_builder_add_many(b, "runuser", "-u", env->sudo_user, "--", "env", "-i", NULL);
    add_joined(b, "XDG_RUNTIME_DIR=", runtime, "");
    add_joined(b, "DBUS_SESSION_BUS_ADDRESS=unix:path=", runtime, "/bus");
    if (x11)
        add_joined(b, "DISPLAY=", env->display, "");
    if (wayland)
        add_joined(b, "WAYLAND_DISPLAY=", env->wayland_display, "");
    g_strv_builder_add_many(b, "PATH=/usr/local/bin:/usr/bin:/bin", "gio", "open", url, NULL);
    return g_strv_builder_end(b);
}
