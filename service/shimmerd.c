/* SPDX-License-Identifier: MIT */
/*
 * shimmerd, two ways:
 *
 * - `shimmerd --system` (or `--bus-address ADDR`): the D-Bus service
 *   org.shimmervpn (daemon.h; the API is in dbus/README.md). Exit codes: 0
 *   stopped by SIGTERM/SIGINT (every session disconnected and its routes
 *   and DNS reverted first); 1 the bus or the bus name is lost or cannot be
 *   had; 2 usage.
 * - `shimmerd --config FILE`: runs one client in the foreground, as
 *   `openvpn --config FILE` does. Exit codes: 0 stopped by a signal or the
 *   server; 1 the session failed (authentication refused, certificate
 *   rejected, ...); 2 usage or a configuration that is refused.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "shimmer-build-config.h"

#include <glib-unix.h>
#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "tunnel/tunnel.h"
#include "config.h"
#include "daemon.h"
#include "secure.h"

typedef struct {
    GMainLoop *loop;
    ShimmerTunnel *client;
    const ShimmerConfig *cfg;
    int exit_code;
    gboolean verbose;
    guint signals;
} Daemon;

static void log_line(const char *level, const char *message)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *ts = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
    /* %f gives microseconds; milliseconds are enough to read. */
    if (strlen(ts) > 24)
        memmove(ts + 23, ts + 26, strlen(ts + 26) + 1);
    fprintf(stderr, "%s %s%s\n", ts, level, message);
}

static void on_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    Daemon *d = user;
    if (level == SHIMMER_LOG_DEBUG && !d->verbose)
        return;
    log_line(level == SHIMMER_LOG_ERROR     ? "error: "
             : level == SHIMMER_LOG_WARNING ? "warning: "
                                            : "",
             message);
}

static void on_state(gpointer user, ShimmerState state, const char *reason)
{
    Daemon *d = user;
    g_autofree char *msg = NULL;
    if (state == SHIMMER_STATE_CONNECTED) {
        ShimmerEngine *e = shimmer_tunnel_get_engine(d->client);
        msg = g_strdup_printf("connected to %s (%s, %s, tun %s)",
                              shimmer_tunnel_get_remote_address(d->client),
                              shimmer_engine_get_tls_version(e), shimmer_engine_get_cipher(e),
                              shimmer_tunnel_get_tun_name(d->client)
                                  ? shimmer_tunnel_get_tun_name(d->client)
                                  : "-");
        log_line("", msg);
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

static void on_need_credentials(gpointer user, const ShimmerCredentialsRequest *req)
{
    Daemon *d = user;
    if (req->kind == SHIMMER_CREDENTIALS_CHALLENGE) {
        /* The server's dynamic challenge. */
        g_autofree char *label = g_strdup_printf("%s ", req->text);
        char *response = prompt(label, req->echo);
        if (response == NULL) {
            log_line("error: ", _("the server asks a challenge but there is no terminal to "
                                  "answer it on"));
            d->exit_code = 1;
            g_main_loop_quit(d->loop);
            return;
        }
        shimmer_tunnel_set_credentials(d->client, NULL, response);
        shimmer_str_free_secret(response);
        return;
    }
    g_autofree char *username = NULL;
    if (d->cfg->username == NULL) {
        username = prompt(_("Username: "), TRUE);
        if (username == NULL) {
            log_line("error: ", _("credentials are needed but there is no terminal to ask on "
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
        log_line("error: ", _("a password is needed but there is no terminal to ask on"));
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
    shimmer_tunnel_set_credentials(d->client, username, password);
    shimmer_str_free_secret(password);
}

static void on_finished(gpointer user, gboolean failed, const char *reason)
{
    Daemon *d = user;
    if (failed) {
        log_line("error: ", reason ? reason : "the session failed");
        d->exit_code = 1;
    } else {
        log_line("", reason ? reason : "disconnected");
    }
    g_main_loop_quit(d->loop);
}

static gboolean on_signal(gpointer user)
{
    Daemon *d = user;
    if (++d->signals > 1) {
        /* A second signal: stop waiting for the exit notification. */
        g_main_loop_quit(d->loop);
        return G_SOURCE_REMOVE;
    }
    log_line("", "signal received, disconnecting");
    shimmer_tunnel_stop(d->client);
    return G_SOURCE_CONTINUE;
}

static int run_config(const char *file, gboolean verbose)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(file, &bytes, &error, NULL)) {
        fprintf(stderr, "%s: error: %s\n", file, error->message);
        return 2;
    }
    gsize len;
    const char *text = g_bytes_get_data(bytes, &len);
    g_autoptr(ShimmerConfig) cfg = shimmer_config_parse(file, NULL, text ? text : "", len,
                                                        shimmer_config_file_loader, NULL);
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
            fprintf(stderr, "%s: error: the private key is encrypted and there is no terminal "
                            "to ask for its passphrase\n",
                    file);
            return 1;
        }
        shimmer_tunnel_config_set_key_passphrase(cfg, pass);
        shimmer_wipe(pass, strlen(pass));
    }

    Daemon d = {.cfg = cfg, .verbose = verbose};
    d.loop = g_main_loop_new(NULL, FALSE);
    ShimmerTunnelCallbacks cb = {
        .state_changed = on_state,
        .log = on_log,
        .need_credentials = on_need_credentials,
        .finished = on_finished,
        .user = &d,
    };
    d.client = shimmer_tunnel_new(cfg, NULL, &cb, &error);
    if (d.client == NULL) {
        fprintf(stderr, "%s: error: %s\n", file, error->message);
        g_main_loop_unref(d.loop);
        return 1;
    }
    guint s1 = g_unix_signal_add(SIGINT, on_signal, &d);
    guint s2 = g_unix_signal_add(SIGTERM, on_signal, &d);
    shimmer_tunnel_start(d.client);
    g_main_loop_run(d.loop);
    g_source_remove(s1);
    g_source_remove(s2);
    shimmer_tunnel_free(d.client);
    g_main_loop_unref(d.loop);
    return d.exit_code;
}

/* ---------- the D-Bus service ---------- */

typedef struct {
    GMainLoop *loop;
    ShimmerDaemon *daemon;
    int exit_code;
} Service;

static gboolean log_verbose;

/* Log lines of the service: to the journal when stderr is connected to it
 * (structured fields kept), else one line each on stderr. Debug lines only
 * with --verbose. */
static GLogWriterOutput log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                   gpointer user)
{
    if ((level & G_LOG_LEVEL_DEBUG) && !log_verbose)
        return G_LOG_WRITER_HANDLED;
    if (g_log_writer_is_journald(fileno(stderr)) &&
        g_log_writer_journald(level, fields, n_fields, user) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    const char *message = NULL, *shimmer_level = NULL;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            message = fields[i].value;
        else if (strcmp(fields[i].key, "SHIMMER_LEVEL") == 0)
            shimmer_level = fields[i].value;
    }
    if (message == NULL)
        return G_LOG_WRITER_UNHANDLED;
    const char *prefix = "";
    if (shimmer_level != NULL && strcmp(shimmer_level, "error") == 0)
        prefix = "error: ";
    else if (level & (G_LOG_FLAG_FATAL | G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        prefix = "critical: ";
    else if (level & G_LOG_LEVEL_WARNING)
        prefix = "warning: ";
    else if (level & G_LOG_LEVEL_DEBUG)
        prefix = "debug: ";
    log_line(prefix, message);
    return G_LOG_WRITER_HANDLED;
}

static void on_service_done(gpointer user, int exit_code)
{
    Service *svc = user;
    svc->exit_code = exit_code;
    g_main_loop_quit(svc->loop);
}

static gboolean on_service_signal(gpointer user)
{
    Service *svc = user;
    g_message("signal received: stopping");
    /* A second signal tears the sessions down without waiting. */
    shimmer_daemon_shutdown(svc->daemon);
    return G_SOURCE_CONTINUE;
}

static GDBusConnection *open_bus(const char *address, const char *what, GError **error)
{
    if (address == NULL)
        return g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
    GDBusConnectionFlags flags = G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION;
    GDBusConnection *bus =
        g_dbus_connection_new_for_address_sync(address, flags, NULL, NULL, error);
    if (bus == NULL)
        g_prefix_error(error, "%s %s: ", what, address);
    return bus;
}

static int run_service(const char *bus_address, const char *polkit_address,
                       const char *resolved_address, const char *resolvconf, const char *state_dir,
                       gboolean verbose)
{
    log_verbose = verbose;
    g_log_set_writer_func(log_writer, NULL, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GDBusConnection) bus = open_bus(bus_address, "bus", &error);
    g_autoptr(GDBusConnection) polkit_bus = NULL;
    g_autoptr(GDBusConnection) resolved_bus = NULL;
    if (bus != NULL && polkit_address != NULL)
        polkit_bus = open_bus(polkit_address, "polkit bus", &error);
    if (error == NULL && resolved_address != NULL)
        resolved_bus = open_bus(resolved_address, "resolved bus", &error);
    if (error != NULL) {
        fprintf(stderr, "shimmerd: cannot connect to the bus: %s\n", error->message);
        return 1;
    }
    Service svc = {0};
    svc.loop = g_main_loop_new(NULL, FALSE);
    ShimmerDaemonOptions opts = {
        .bus = bus,
        .polkit_bus = polkit_bus,
        .resolved_bus = resolved_bus,
        .resolvconf = resolvconf,
        .state_dir = state_dir,
        .verbose = verbose,
    };
    svc.daemon = shimmer_daemon_new(&opts, on_service_done, &svc, &error);
    if (svc.daemon == NULL || !shimmer_daemon_start(svc.daemon, &error)) {
        fprintf(stderr, "shimmerd: %s\n", error->message);
        g_clear_pointer(&svc.daemon, shimmer_daemon_free);
        g_main_loop_unref(svc.loop);
        return 1;
    }
    guint s1 = g_unix_signal_add(SIGINT, on_service_signal, &svc);
    guint s2 = g_unix_signal_add(SIGTERM, on_service_signal, &svc);
    g_main_loop_run(svc.loop);
    g_source_remove(s1);
    g_source_remove(s2);
    shimmer_daemon_free(svc.daemon);
    /* Let the bus see the name released before we go. */
    g_dbus_connection_flush_sync(bus, NULL, NULL);
    g_main_loop_unref(svc.loop);
    return svc.exit_code;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    g_autofree char *config = NULL;
    g_autofree char *bus_address = NULL, *polkit_address = NULL, *resolved_address = NULL;
    g_autofree char *state_dir = NULL, *resolvconf = NULL;
    gboolean verbose = FALSE, version = FALSE, system_bus = FALSE;
    GOptionEntry entries[] = {
        {"system", 0, 0, G_OPTION_ARG_NONE, &system_bus,
         N_("Serve org.shimmervpn on the system bus"), NULL},
        {"bus-address", 0, 0, G_OPTION_ARG_STRING, &bus_address,
         N_("Serve on the bus at this address instead (tests)"), "ADDR"},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
         N_("Where profiles are stored (default /var/lib/shimmer)"), "DIR"},
        {"polkit-bus-address", 0, 0, G_OPTION_ARG_STRING, &polkit_address,
         N_("Where the polkit authority is (default: the bus served on)"), "ADDR"},
        {"resolved-bus-address", 0, 0, G_OPTION_ARG_STRING, &resolved_address,
         N_("Where systemd-resolved is looked for (default: the bus served on)"), "ADDR"},
        {"resolvconf", 0, 0, G_OPTION_ARG_FILENAME, &resolvconf,
         N_("The resolvconf program (default: found in PATH)"), "PROGRAM"},
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
         N_("Run one client from an OpenVPN configuration file, in the foreground"), "FILE"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, N_("Log protocol details"), NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version"), NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, _("The Shimmer VPN daemon."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "shimmerd: %s\n", error->message);
        return 2;
    }
    if (version) {
        printf("shimmerd %s\n", PACKAGE_VERSION);
        return 0;
    }
    gboolean service = system_bus || bus_address != NULL;
    if (config != NULL && service) {
        fprintf(stderr, "%s", _("shimmerd: --config runs one client without D-Bus; it does not "
                                "go with --system or --bus-address\n"));
        return 2;
    }
    if (system_bus && bus_address != NULL) {
        fprintf(stderr, "%s", _("shimmerd: give --system or --bus-address, not both\n"));
        return 2;
    }
    if (config != NULL)
        return run_config(config, verbose);
    if (!service) {
        fprintf(stderr, "%s", _("shimmerd: give --system (the D-Bus service), --bus-address "
                                "ADDR, or --config FILE (one client in the foreground)\n"));
        return 2;
    }
    return run_service(bus_address, polkit_address, resolved_address, resolvconf, state_dir,
                       verbose);
}
