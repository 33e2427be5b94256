/* SPDX-License-Identifier: MIT */
/*
 * `shimmerd --config FILE`: one tunnel in the foreground, as `openvpn
 * --config FILE` runs one. See foreground.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "shimmer-build-config.h"

#include "foreground.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "os/log.h"
#include "proxyconn.h"
#include "secure.h"
#include "server.h"
#include "textsafe.h"
#include "tunnel.h"
#include "webauth.h"

typedef struct {
    GMainLoop *loop;
    ShimmerTunnel *tunnel;
    const ShimmerConfig *cfg;
    int exit_code;
    gboolean verbose;
    guint signals;
    /* A CR_TEXT answer being read from the terminal while the session
     * goes on (the main loop must keep running: the server is waiting). */
    guint answer_watch;
    gboolean answer_echo_off;
    struct termios answer_saved;
} Foreground;

static void on_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    Foreground *d = user;
    if (level == SHIMMER_LOG_DEBUG && !d->verbose)
        return;
    shimmer_log_line(level == SHIMMER_LOG_ERROR     ? "error: "
                     : level == SHIMMER_LOG_WARNING ? "warning: "
                                                    : "",
                     message);
}

static void on_state(gpointer user, ShimmerState state, const char *reason)
{
    Foreground *d = user;
    g_autofree char *msg = NULL;
    if (state == SHIMMER_STATE_CONNECTED) {
        ShimmerEngine *e = shimmer_tunnel_get_engine(d->tunnel);
        msg = g_strdup_printf(
            "connected to %s (%s, %s, tun %s)", shimmer_tunnel_get_remote_address(d->tunnel),
            shimmer_engine_get_tls_version(e), shimmer_engine_get_cipher(e),
            shimmer_tunnel_get_tun_name(d->tunnel) ? shimmer_tunnel_get_tun_name(d->tunnel) : "-");
        shimmer_log_line("", msg);
    }
    (void)reason;
}

/* Reads a line from the terminal without echo (for passwords). */
static char *prompt(const char *label, gboolean echo)
{
    if (!isatty(STDIN_FILENO))
        return NULL;
    fprintf(stderr, "%s", label);
    fflush(stderr);
    struct termios old, quiet;
    gboolean restore = FALSE;
    if (!echo && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
    char buf[1024];
    char *r = fgets(buf, sizeof(buf), stdin);
    if (restore) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (r == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    char *out = g_strdup(buf);
    shimmer_wipe(buf, sizeof(buf));
    return out;
}

static void answer_restore(Foreground *d)
{
    if (d->answer_echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &d->answer_saved);
        fputc('\n', stderr);
        d->answer_echo_off = FALSE;
    }
}

static gboolean on_answer_ready(gint fd, GIOCondition cond, gpointer user)
{
    Foreground *d = user;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    d->answer_watch = 0;
    answer_restore(d);
    if (n <= 0) {
        shimmer_log_line("error: ", _("no answer to the server's challenge (end of input)"));
        shimmer_wipe(buf, sizeof(buf));
        return G_SOURCE_REMOVE;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    shimmer_tunnel_set_credentials(d->tunnel, NULL, buf);
    shimmer_wipe(buf, sizeof(buf));
    return G_SOURCE_REMOVE;
}

/* A pending login's CR_TEXT: asked without blocking the main loop (the
 * terminal is in line mode, so the answer comes as one read). */
static void ask_cr_text(Foreground *d, const ShimmerNeedCredentials *need)
{
    if (!need->response_required) {
        g_autofree char *msg = g_strdup_printf(_("message from the server: %s"), need->text);
        shimmer_log_line("", msg);
        return;
    }
    if (!isatty(STDIN_FILENO)) {
        shimmer_log_line("error: ", _("the server asks a challenge but there is no terminal to "
                                      "answer it on"));
        d->exit_code = 1;
        shimmer_tunnel_stop(d->tunnel);
        return;
    }
    if (d->answer_watch != 0)
        g_source_remove(d->answer_watch);
    answer_restore(d);
    g_autoptr(GString) safe = g_string_new(NULL);
    shimmer_text_append_escaped(safe, need->text, -1, FALSE);
    fprintf(stderr, "%s ", safe->str);
    fflush(stderr);
    if (!need->echo && tcgetattr(STDIN_FILENO, &d->answer_saved) == 0) {
        struct termios quiet = d->answer_saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        d->answer_echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
    d->answer_watch = g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP, on_answer_ready, d);
}

/* Where shimmerd runs, for the decision whether to start a browser. */
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

/* The URL on a line of its own (to copy, or to click in a terminal), and a
 * browser in the desktop session of the user who started us, never one
 * running as root. */
static void on_web_auth(gpointer user, const ShimmerWebAuth *request)
{
    g_autofree char *msg = g_strdup_printf(
        _("the server asks you to sign in on a web page (it waits up to %u s); open this "
          "address:"),
        request->timeout_s);
    shimmer_log_line("", msg);
    /* The engine passes printable ASCII URLs only. */
    fprintf(stderr, "%s\n", request->url);
    fflush(stderr);
    ShimmerBrowserEnv env;
    browser_env(&env);
    const char *why = NULL;
    g_auto(GStrv) argv = shimmer_web_auth_open_command(&env, request->url, &why);
    g_autoptr(GError) error = NULL;
    if (argv == NULL) {
        g_autofree char *note = g_strdup_printf(_("no browser is started: %s"), why);
        shimmer_log_line("", note);
    } else if (!g_spawn_async(NULL, argv, NULL,
                              G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                  G_SPAWN_STDERR_TO_DEV_NULL,
                              NULL, NULL, NULL, &error)) {
        g_autofree char *note = g_strdup_printf(_("cannot start a browser: %s"), error->message);
        shimmer_log_line("warning: ", note);
    } else {
        shimmer_log_line("", _("opening it in the browser"));
    }
}

static void on_need_credentials(gpointer user, const ShimmerNeedCredentials *need)
{
    Foreground *d = user;
    if (need->kind == SHIMMER_CREDENTIALS_CR_TEXT) {
        ask_cr_text(d, need);
        return;
    }
    if (need->kind == SHIMMER_CREDENTIALS_CHALLENGE) {
        /* The server's dynamic challenge. */
        g_autofree char *label = g_strdup_printf("%s ", need->text);
        char *response = prompt(label, need->echo);
        if (response == NULL) {
            shimmer_log_line("error: ", _("the server asks a challenge but there is no terminal to "
                                          "answer it on"));
            d->exit_code = 1;
            g_main_loop_quit(d->loop);
            return;
        }
        shimmer_tunnel_set_credentials(d->tunnel, NULL, response);
        shimmer_str_free_secret(response);
        return;
    }
    g_autofree char *username = NULL;
    if (d->cfg->username == NULL) {
        username = prompt(_("Username: "), TRUE);
        if (username == NULL) {
            shimmer_log_line("error: ",
                             _("credentials are needed but there is no terminal to ask on "
                               "(put them in the auth-user-pass file)"));
            d->exit_code = 1;
            g_main_loop_quit(d->loop);
            return;
        }
    }
    g_autofree char *label = NULL;
    if (d->cfg->static_challenge != NULL)
        label = g_strdup_printf("%s ", d->cfg->static_challenge);
    char *password = prompt(_("Password: "), FALSE);
    if (password == NULL) {
        shimmer_log_line("error: ", _("a password is needed but there is no terminal to ask on"));
        d->exit_code = 1;
        g_main_loop_quit(d->loop);
        return;
    }
    if (d->cfg->static_challenge != NULL) {
        char *response = prompt(label, d->cfg->static_challenge_echo);
        if (response != NULL) {
            char *combined = shimmer_engine_static_challenge_password(password, response);
            shimmer_str_free_secret(password);
            shimmer_str_free_secret(response);
            password = combined;
        }
    }
    shimmer_tunnel_set_credentials(d->tunnel, username, password);
    shimmer_str_free_secret(password);
}

static void on_finished(gpointer user, gboolean failed, const char *reason)
{
    Foreground *d = user;
    if (d->answer_watch != 0) {
        g_source_remove(d->answer_watch);
        d->answer_watch = 0;
    }
    answer_restore(d);
    if (failed) {
        shimmer_log_line("error: ", reason ? reason : "the session failed");
        d->exit_code = 1;
    } else {
        shimmer_log_line("", reason ? reason : "disconnected");
    }
    g_main_loop_quit(d->loop);
}

static gboolean on_signal(gpointer user)
{
    Foreground *d = user;
    if (++d->signals > 1) {
        /* A second signal: stop waiting for the exit notification. */
        g_main_loop_quit(d->loop);
        return G_SOURCE_REMOVE;
    }
    shimmer_log_line("", "signal received, disconnecting");
    shimmer_tunnel_stop(d->tunnel);
    return G_SOURCE_CONTINUE;
}

int shimmer_foreground_run(const char *file, gboolean verbose)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(file, &bytes, &error, NULL)) {
        fprintf(stderr, "%s: error: %s\n", file, error->message);
        return 2;
    }
    gsize len;
    const char *text = g_bytes_get_data(bytes, &len);
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse(file, NULL, text ? text : "", len, shimmer_config_file_loader, NULL);
    g_autoptr(GString) diags = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, diags);
    fputs(diags->str, stderr);
    if (shimmer_config_has_errors(cfg))
        return 2;
    if (cfg->role == SHIMMER_ROLE_SERVER)
        return shimmer_server_foreground_run(cfg, file, verbose);
    if (cfg->role != SHIMMER_ROLE_CLIENT) {
        fprintf(stderr, "%s: error: only client and server configurations can be run\n", file);
        return 2;
    }

    /* Before the client: the engine reads the key when it is created. */
    if (cfg->askpass && !cfg->askpass_file.present && cfg->key_encrypted) {
        g_autofree char *pass = prompt(_("Private key passphrase: "), FALSE);
        if (pass == NULL) {
            fprintf(stderr,
                    "%s: error: the private key is encrypted and there is no terminal "
                    "to ask for its passphrase\n",
                    file);
            return 1;
        }
        shimmer_tunnel_config_set_key_passphrase(cfg, pass);
        shimmer_wipe(pass, strlen(pass));
    }

    /* http-proxy ... stdin: the proxy's login, asked here as OpenVPN asks. */
    if (shimmer_proxy_config_needs_credentials(cfg)) {
        g_autofree char *user = prompt(_("Proxy username: "), TRUE);
        char *pass = user != NULL ? prompt(_("Proxy password: "), FALSE) : NULL;
        if (pass == NULL) {
            fprintf(stderr,
                    "%s: error: the proxy's user name and password are to be asked for "
                    "and there is no terminal to ask on\n",
                    file);
            return 1;
        }
        shimmer_proxy_config_set_credentials(cfg, user, pass);
        shimmer_str_free_secret(pass);
    }

    Foreground d = {.cfg = cfg, .verbose = verbose};
    d.loop = g_main_loop_new(NULL, FALSE);
    ShimmerTunnelCallbacks cb = {
        .state_changed = on_state,
        .log = on_log,
        .need_credentials = on_need_credentials,
        .web_auth = on_web_auth,
        .finished = on_finished,
        .user = &d,
    };
    d.tunnel = shimmer_tunnel_new(cfg, NULL, &cb, &error);
    if (d.tunnel == NULL) {
        fprintf(stderr, "%s: error: %s\n", file, error->message);
        g_main_loop_unref(d.loop);
        return 1;
    }
    guint s1 = g_unix_signal_add(SIGINT, on_signal, &d);
    guint s2 = g_unix_signal_add(SIGTERM, on_signal, &d);
    shimmer_tunnel_start(d.tunnel);
    g_main_loop_run(d.loop);
    g_source_remove(s1);
    g_source_remove(s2);
    if (d.answer_watch != 0)
        g_source_remove(d.answer_watch);
    answer_restore(&d);
    shimmer_tunnel_free(d.tunnel);
    g_main_loop_unref(d.loop);
    return d.exit_code;
}
