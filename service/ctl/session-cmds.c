/* SPDX-License-Identifier: MIT */
/* shimmerctl: starting and ending sessions. connect, disconnect. */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "follow.h"
#include "output.h"
#include "prompt.h"
#include "secure.h"
#include "webauth.h"

/* How long `disconnect` waits for the session to end. */
#define DISCONNECT_TIMEOUT_S 20

/* --------------------------------------------------------------- connect */

typedef struct {
    Ctl *ctl;
    Follow follow;
    char *session; /* its path, once Connect returned */
    char *profile_name;
    const char *username; /* --username */
    GHashTable *props;    /* the session's properties: name -> GVariant */
    char *last_state;
    gboolean verbose;
    gboolean no_browser; /* --no-browser */
    char *web_url_shown; /* the sign-in URL already shown */
    gboolean done;
    int code;
} Connecting;

static const char *prop_string(GHashTable *props, const char *name)
{
    GVariant *v = g_hash_table_lookup(props, name);
    if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        return g_variant_get_string(v, NULL);
    return NULL;
}

static char *prop_format(GHashTable *props, const char *name)
{
    return ctl_format_value(g_hash_table_lookup(props, name));
}

static void merge_props(GHashTable *props, GVariant *dict)
{
    GVariantIter iter;
    const char *name;
    GVariant *value;
    g_variant_iter_init(&iter, dict);
    while (g_variant_iter_next(&iter, "{&sv}", &name, &value))
        g_hash_table_replace(props, g_strdup(name), value);
}

static void connecting_finish(Connecting *c, int code)
{
    c->done = TRUE;
    c->code = code;
    g_main_loop_quit(c->follow.loop);
}

/* Where shimmerctl runs, for the decision whether to start a browser. */
static void browser_env(ShimmerBrowserEnv *env)
{
    *env = (ShimmerBrowserEnv){
        .euid = (guint)geteuid(),
        .display = g_getenv("DISPLAY"),
        .wayland_display = g_getenv("WAYLAND_DISPLAY"),
        .xdg_runtime_dir = g_getenv("XDG_RUNTIME_DIR"),
        .xdg_session_type = g_getenv("XDG_SESSION_TYPE"),
        .sudo_uid = g_getenv("SUDO_UID"),
        .sudo_user = g_getenv("SUDO_USER"),
    };
    if (env->sudo_uid != NULL) {
        g_autofree char *dir = g_build_filename("/run/user", env->sudo_uid, NULL);
        env->sudo_user_has_session = g_file_test(dir, G_FILE_TEST_IS_DIR);
    }
}

/* The server asks for a web sign-in: the URL on a line of its own, and a
 * browser when this runs in a desktop session (--no-browser: never). */
static void connecting_web_auth(Connecting *c, GVariant *request)
{
    const char *url = NULL;
    guint32 timeout = 0;
    if (!g_variant_lookup(request, "url", "&s", &url))
        return;
    g_variant_lookup(request, "timeout", "u", &timeout);
    if (g_strcmp0(url, c->web_url_shown) == 0)
        return;
    /* The daemon checked it; a client checks again before anything may
     * reach a browser. */
    if (!shimmer_web_auth_url_is_safe(url)) {
        ctl_print(stderr, "%s",
                  _("  the server asks for a web sign-in at an address that is not an "
                    "http(s) URL; not shown\n"));
        return;
    }
    g_free(c->web_url_shown);
    c->web_url_shown = g_strdup(url);
    ctl_print(stdout, "%s",
              _("The server asks you to sign in on a web page. Open this address "
                "to continue:\n"));
    ctl_print(stdout, "%s\n", url);
    if (timeout > 0)
        ctl_print(stdout, _("The server waits up to %u seconds.\n"), timeout);
    if (!c->no_browser) {
        ShimmerBrowserEnv env;
        browser_env(&env);
        const char *why = NULL;
        g_auto(GStrv) argv = shimmer_web_auth_open_command(&env, url, &why);
        g_autoptr(GError) error = NULL;
        if (argv == NULL)
            ctl_print(stdout, _("(No browser is started: %s.)\n"), why);
        else if (!g_spawn_async(NULL, argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                NULL, NULL, NULL, &error))
            ctl_print(stdout, _("(Cannot start a browser: %s.)\n"), error->message);
        else
            ctl_print(stdout, "%s", _("Opening it in your browser.\n"));
    }
    fflush(stdout);
}

/* The session entered "web-sign-in" before the signal could be seen (or
 * its signal was missed): the request is asked for. */
static void connecting_fetch_web_auth(Connecting *c)
{
    if (c->web_url_shown != NULL)
        return;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = ctl_call(c->ctl, c->session, IFACE_SESSION, "GetWebAuthRequest",
                                         NULL, G_VARIANT_TYPE("(a{sv})"), &error);
    if (reply == NULL)
        return;
    g_autoptr(GVariant) dict = g_variant_get_child_value(reply, 0);
    connecting_web_auth(c, dict);
}

static void connecting_check_state(Connecting *c)
{
    const char *state = prop_string(c->props, "State");
    if (state == NULL || g_strcmp0(state, c->last_state) == 0 || c->done)
        return;
    g_free(c->last_state);
    c->last_state = g_strdup(state);
    const char *reason = prop_string(c->props, "StateReason");
    if (strcmp(state, "connected") == 0) {
        g_autofree char *addresses = prop_format(c->props, "Addresses");
        ctl_print(stdout, _("Connected: %s on %s, addresses %s, server %s (%s, %s)\n"),
                  c->profile_name, ctl_or_dash(prop_string(c->props, "Interface")), addresses,
                  ctl_or_dash(prop_string(c->props, "RemoteAddress")),
                  ctl_or_dash(prop_string(c->props, "Cipher")),
                  ctl_or_dash(prop_string(c->props, "TlsVersion")));
        connecting_finish(c, EXIT_OK);
    } else if (ctl_state_is_final(state)) {
        if (strcmp(state, "failed") == 0)
            ctl_print(stderr, _("Connection failed: %s\n"),
                      reason && *reason ? reason : _("no reason given"));
        else
            ctl_print(stderr, _("Disconnected before the tunnel came up: %s\n"),
                      reason && *reason ? reason : _("no reason given"));
        connecting_finish(c, EXIT_REFUSED);
    } else {
        ctl_print(stdout, "  %s\n", ctl_state_label(state));
        if (strcmp(state, "web-sign-in") == 0)
            connecting_fetch_web_auth(c);
    }
    fflush(stdout);
}

static void connecting_disconnect(Connecting *c)
{
    if (c->session == NULL)
        return;
    /* Best effort: the session may have ended already. */
    GVariant *reply =
        g_dbus_connection_call_sync(c->ctl->bus, BUS_NAME, c->session, IFACE_SESSION, "Disconnect",
                                    NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL);
    if (reply != NULL)
        g_variant_unref(reply);
}

/* Answers CredentialsRequested: asks for each field and sends them back. */
static void connecting_credentials(Connecting *c, GVariant *params)
{
    g_autofree const char **fields = NULL;
    const char *prompt_text;
    gboolean echo;
    g_autoptr(GVariant) fv = NULL;
    g_variant_get(params, "(@as&sb)", &fv, &prompt_text, &echo);
    fields = g_variant_get_strv(fv, NULL);

    gboolean has_challenge = FALSE;
    for (const char **f = fields; *f; f++)
        has_challenge |= strcmp(*f, "otp") == 0 || strcmp(*f, "response") == 0;
    if (*prompt_text && !has_challenge)
        ctl_print(stderr, "%s\n", prompt_text);

    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
    g_autoptr(GPtrArray) answers =
        g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_str_free_secret);
    gboolean complete = TRUE;
    for (const char **f = fields; *f && complete; f++) {
        char *answer = NULL;
        g_autofree char *label = NULL;
        if (strcmp(*f, "username") == 0 && c->username) {
            answer = g_strdup(c->username);
        } else if (strcmp(*f, "username") == 0) {
            answer = ctl_prompt_line(_("Username: "), TRUE);
        } else if (strcmp(*f, "password") == 0) {
            answer = ctl_prompt_line(_("Password: "), FALSE);
        } else if (strcmp(*f, "key-passphrase") == 0) {
            answer = ctl_prompt_line(_("Private key passphrase: "), FALSE);
        } else if (strcmp(*f, "otp") == 0 || strcmp(*f, "response") == 0) {
            if (*prompt_text)
                label = g_strdup_printf("%s ", prompt_text);
            answer = ctl_prompt_line(label                    ? label
                                     : strcmp(*f, "otp") == 0 ? _("One-time password: ")
                                                              : _("Response: "),
                                     echo);
        } else {
            label = g_strdup_printf("%s: ", *f);
            answer = ctl_prompt_line(label, FALSE);
        }
        if (answer == NULL) {
            complete = FALSE;
            break;
        }
        g_ptr_array_add(answers, answer);
        g_variant_builder_add(&b, "{ss}", *f, answer);
    }
    if (!complete) {
        g_variant_builder_clear(&b);
        if (ctl_prompt_interrupted())
            ctl_print(stderr, "%s", _("Interrupted; disconnecting.\n"));
        else
            ctl_print(stderr, "%s",
                      _("shimmerctl: the server asks for credentials but none were given; "
                        "disconnecting\n"));
        connecting_disconnect(c);
        connecting_finish(c, EXIT_REFUSED);
        return;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        c->ctl->bus, BUS_NAME, c->session, IFACE_SESSION, "ProvideCredentials",
        g_variant_new("(a{ss})", &b), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
    if (reply == NULL) {
        int code = ctl_fail(_("cannot send the credentials"), error);
        connecting_disconnect(c);
        connecting_finish(c, code);
    }
}

static void connecting_signal(Follow *f, const char *path, const char *iface, const char *member,
                              GVariant *params)
{
    Connecting *c = f->data;
    if (c->session == NULL || c->done)
        return;
    if (strcmp(member, "InterfacesRemoved") == 0 && strcmp(path, ROOT_PATH) == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)"))) {
        const char *gone;
        g_variant_get_child(params, 0, "&o", &gone);
        if (strcmp(gone, c->session) == 0) {
            const char *reason = prop_string(c->props, "StateReason");
            ctl_print(stderr, _("The session ended: %s\n"),
                      reason && *reason ? reason : _("no reason given"));
            connecting_finish(c, EXIT_REFUSED);
        }
        return;
    }
    if (strcmp(path, c->session) != 0)
        return;
    if (strcmp(iface, IFACE_PROPERTIES) == 0 && strcmp(member, "PropertiesChanged") == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)"))) {
        const char *which;
        g_autoptr(GVariant) changed = NULL;
        g_variant_get(params, "(&s@a{sv}@as)", &which, &changed, NULL);
        if (strcmp(which, IFACE_SESSION) != 0)
            return;
        merge_props(c->props, changed);
        connecting_check_state(c);
    } else if (strcmp(iface, IFACE_SESSION) == 0 && strcmp(member, "CredentialsRequested") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(assb)"))) {
        connecting_credentials(c, params);
    } else if (strcmp(iface, IFACE_SESSION) == 0 && strcmp(member, "WebAuthRequested") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(a{sv})"))) {
        g_autoptr(GVariant) dict = g_variant_get_child_value(params, 0);
        connecting_web_auth(c, dict);
    } else if (strcmp(iface, IFACE_SESSION) == 0 && strcmp(member, "ServerMessage") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(s)"))) {
        const char *text;
        g_variant_get(params, "(&s)", &text);
        ctl_print(stdout, _("Message from the server: %s\n"), text);
        fflush(stdout);
    } else if (strcmp(iface, IFACE_SESSION) == 0 && strcmp(member, "Log") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(us)"))) {
        guint level;
        const char *message;
        g_variant_get(params, "(u&s)", &level, &message);
        if (level == 0)
            ctl_print(stderr, _("  error: %s\n"), message);
        else if (level == 1)
            ctl_print(stderr, _("  warning: %s\n"), message);
        else if (c->verbose)
            ctl_print(stderr, "  %s\n", message);
    }
}

static void connecting_got_all(GObject *source, GAsyncResult *result, gpointer user)
{
    Connecting *c = user;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    if (c->follow.loop == NULL)
        return; /* the command is over */
    if (reply) {
        g_autoptr(GVariant) all = g_variant_get_child_value(reply, 0);
        merge_props(c->props, all);
        connecting_check_state(c);
    }
}

/* The options of Connect: a profile that says "prompt" needs a user name
 * and a password, asked for now and handed over with Connect; --username
 * goes along otherwise. FALSE (and why printed) when they were not given.
 * With a static challenge and WAIT, nothing is asked now: a password given
 * to Connect would go without the challenge's answer, which Connect cannot
 * take, so the session asks for all three together instead. */
static gboolean connect_options(ShimmerDBusProfile1 *p, const char *username, gboolean wait,
                                GVariantBuilder *opts)
{
    g_variant_builder_init(opts, G_VARIANT_TYPE_VARDICT);
    const char *challenge = shimmer_dbus_profile1_get_static_challenge(p);
    if (g_strcmp0(shimmer_dbus_profile1_get_credentials(p), "prompt") != 0 ||
        (wait && challenge && *challenge)) {
        if (username)
            g_variant_builder_add(opts, "{sv}", "username", g_variant_new_string(username));
        return TRUE;
    }
    char *user = username ? g_strdup(username) : ctl_prompt_line(_("Username: "), TRUE);
    char *password = user ? ctl_prompt_line(_("Password: "), FALSE) : NULL;
    gboolean ok = user != NULL && password != NULL;
    if (ok) {
        g_variant_builder_add(opts, "{sv}", "username", g_variant_new_string(user));
        g_variant_builder_add(opts, "{sv}", "password", g_variant_new_string(password));
    } else {
        ctl_print(stderr, "%s",
                  ctl_prompt_interrupted()
                      ? _("Interrupted.\n")
                      : _("shimmerctl: this profile needs a user name and a password\n"));
        g_variant_builder_clear(opts);
    }
    shimmer_str_free_secret(user);
    shimmer_str_free_secret(password);
    return ok;
}

/* --wait: follows the session C->session until it is connected or has
 * failed, answering credential requests on the way; returns the exit
 * code. TIMEOUT (as given on the command line) bounds the wait. */
static int connecting_follow(Connecting *c, const char *timeout)
{
    guint64 timeout_s = 0;
    if (timeout)
        g_ascii_string_to_unsigned(timeout, 10, 1, 86400, &timeout_s, NULL);
    /* Asynchronously, so that the answer is handled in order with the
     * signals that came before it. */
    g_dbus_connection_call(c->ctl->bus, BUS_NAME, c->session, IFACE_PROPERTIES, "GetAll",
                           g_variant_new("(s)", IFACE_SESSION), G_VARIANT_TYPE("(a{sv})"),
                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, connecting_got_all, c);
    if (timeout_s)
        ctl_follow_set_timeout(&c->follow, (guint)timeout_s * 1000);
    g_main_loop_run(c->follow.loop);
    if (c->done)
        return c->code;
    if (c->follow.daemon_gone) {
        ctl_print(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
        return EXIT_UNREACHABLE;
    }
    if (c->follow.interrupted) {
        ctl_print(stderr, "%s", _("Interrupted; disconnecting.\n"));
        connecting_disconnect(c);
        return EXIT_REFUSED;
    }
    fprintf(stderr,
            _("shimmerctl: not connected after %s seconds (state: %s); the "
              "session goes on\n"),
            timeout, ctl_state_label(c->last_state));
    return EXIT_REFUSED;
}

int ctl_cmd_connect(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "connect NAME|ID|PATH [--wait] [--timeout SECONDS] "
                                   "[--username USER] [--no-browser] [--verbose]";
    gboolean wait = FALSE, verbose = FALSE, no_browser = FALSE;
    const char *timeout = NULL, *username = NULL;
    const char *pos[1];
    const Option options[] = {
        {"--wait", &wait, NULL},
        {"--verbose", &verbose, NULL},
        {"--no-browser", &no_browser, NULL},
        {"--timeout", NULL, &timeout},
        {"--username", NULL, &username},
        {NULL, NULL, NULL},
    };
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    if (timeout && !g_ascii_string_to_unsigned(timeout, 10, 1, 86400, NULL, NULL)) {
        ctl_print(stderr, _("shimmerctl: --timeout wants seconds (1-86400), not '%s'\n"), timeout);
        return EXIT_USAGE;
    }
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = ctl_find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    GVariantBuilder opts;
    if (!connect_options(p, username, wait, &opts))
        return EXIT_REFUSED;

    Connecting c = {.ctl = ctl, .username = username, .verbose = verbose, .no_browser = no_browser};
    c.profile_name =
        g_strdup(shimmer_dbus_profile1_get_name(p) ? shimmer_dbus_profile1_get_name(p) : pos[0]);
    c.props =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_variant_unref);
    /* Subscribe before Connect, so that nothing the new session says is
     * missed. */
    if (wait)
        ctl_follow_start(&c.follow, ctl, connecting_signal, &c, TRUE);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, g_dbus_proxy_get_object_path(G_DBUS_PROXY(p)), IFACE_PROFILE, "Connect",
                 g_variant_new("(a{sv})", &opts), G_VARIANT_TYPE("(o)"), &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot connect %s"), c.profile_name);
        code = ctl_fail(what, error);
    } else {
        g_variant_get(reply, "(o)", &c.session);
        if (wait) {
            ctl_print(stdout, _("Connecting %s (session %s)\n"), c.profile_name, c.session);
            fflush(stdout);
            code = connecting_follow(&c, timeout);
        } else {
            ctl_print(stdout, _("Connecting %s: session %s\n"), c.profile_name, c.session);
        }
    }
    if (c.follow.loop)
        ctl_follow_stop(&c.follow);
    g_free(c.session);
    g_free(c.profile_name);
    g_free(c.last_state);
    g_free(c.web_url_shown);
    g_hash_table_unref(c.props);
    return code;
}

/* ------------------------------------------------------------ disconnect */

int ctl_cmd_disconnect(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "disconnect NAME|ID|SESSION";
    const char *pos[1];
    int r = ctl_parse_options(ctl, synopsis, argc, argv, NULL, pos, 1, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusSession1) s = ctl_find_session(ctl, pos[0], &code);
    if (s == NULL)
        return code;
    const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(s));
    if (ctl_state_is_final(shimmer_dbus_session1_get_state(s))) {
        ctl_print(stdout, _("Session %s has already ended (%s)\n"), path,
                  ctl_state_label(shimmer_dbus_session1_get_state(s)));
        return EXIT_OK;
    }

    g_autofree char *state = NULL, *reason = NULL;
    g_autoptr(GError) error = NULL;
    switch (ctl_call_and_follow_end(ctl, path, IFACE_SESSION, "Disconnect", ctl_state_is_final,
                                    DISCONNECT_TIMEOUT_S, &state, &reason, &error)) {
    case CTL_END_ENDED:
        if (g_strcmp0(state, "failed") == 0 && reason && *reason)
            ctl_print(stdout, _("Disconnected %s (%s)\n"), pos[0], reason);
        else
            ctl_print(stdout, _("Disconnected %s\n"), pos[0]);
        return EXIT_OK;
    case CTL_END_CALL_FAILED: {
        g_autofree char *what = g_strdup_printf(_("cannot disconnect %s"), pos[0]);
        return ctl_fail(what, error);
    }
    case CTL_END_DAEMON_GONE:
        ctl_print(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
        return EXIT_UNREACHABLE;
    case CTL_END_INTERRUPTED:
        return EXIT_REFUSED;
    case CTL_END_TIMED_OUT:
    default:
        ctl_print(stderr, _("shimmerctl: the session is still %s after %d seconds\n"),
                  ctl_state_label(state), DISCONNECT_TIMEOUT_S);
        return EXIT_REFUSED;
    }
}
