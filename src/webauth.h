/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Web sign-in (OpenVPN's WEB_AUTH / OPEN_URL during a pending login): the
 * decisions every front end makes alike, without doing anything. Which
 * URLs may reach a browser at all, and whether and how a front end may
 * start one for the user: shimmerctl, `shimmerd --config` and
 * NetworkManager's auth dialog spawn the command this returns, or only
 * print the URL. The daemon itself never opens a browser.
 */

/* The longest URL passed on (OpenVPN limits the whole message to 1024
 * bytes; a little more is allowed for servers that go beyond). */
#define SHIMMER_WEB_AUTH_MAX_URL 2048

/* Whether URL may be handed to a browser: an http or https URL with a
 * host, printable ASCII only (no spaces, no control characters that could
 * rewrite a terminal), at most SHIMMER_WEB_AUTH_MAX_URL bytes. Anything
 * else (file:, javascript:, a URL handler's scheme) would let a server
 * make the client open a local file or run a program of its choosing. */
gboolean shimmer_web_auth_url_is_safe(const char *url);

/* What the front end knows about where it runs; strings from the
 * environment, NULL when unset. */
typedef struct {
    guint euid;
    const char *display;         /* DISPLAY */
    const char *wayland_display; /* WAYLAND_DISPLAY */
    const char *xdg_runtime_dir; /* XDG_RUNTIME_DIR */
    const char *xdg_session_type;
    /* Started through sudo: the user who ran it (SUDO_UID, SUDO_USER)... */
    const char *sudo_uid;
    const char *sudo_user;
    /* ...and whether that user has a session (/run/user/SUDO_UID exists). */
    gboolean sudo_user_has_session;
} ShimmerBrowserEnv;

/* The command that opens URL in the user's browser (`gio open URL`, as the
 * sudo user's own process with only that user's session variables when
 * run as root through sudo), NULL-terminated; free with g_strfreev(). NULL
 * when nothing may be opened, with WHY (a static English sentence) saying
 * why: the URL is not safe, there is no graphical session, or the process
 * runs as root without a user session to open it in (never a browser as
 * root). */
char **shimmer_web_auth_open_command(const ShimmerBrowserEnv *env, const char *url,
                                     const char **why);

G_END_DECLS
