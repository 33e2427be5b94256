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
#include "secure.h"
#include "tunnel.h"
#include "proxyconn.h"

typedef struct {
    GMainLoop *loop;
    ShimmerTunnel *tunnel;
    const ShimmerConfig *cfg;
    int exit_code;
    gboolean verbose;
    guint signals;
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

static void on_need_credentials(gpointer user, const ShimmerNeedCredentials *need)
{
    Foreground *d = user;
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
    if (cfg->role != SHIMMER_ROLE_CLIENT) {
        fprintf(stderr, "%s: error: only client configurations can be run so far\n", file);
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
    shimmer_tunnel_free(d.tunnel);
    g_main_loop_unref(d.loop);
    return d.exit_code;
}
