/* SPDX-License-Identifier: MIT */
/*
 * shimmerctl: the command-line client of Shimmer. The command line: the
 * global options, the options of each command and the dispatch to the
 * commands (profile-cmds.c, session-cmds.c, status.c, monitor.c,
 * server-cmds.c).
 *
 * Exit codes: see ctl.h, --help and README.md.
 */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "output.h"

int ctl_usage(FILE *out)
{
    ctl_print_lines(
        out, _("Usage: shimmerctl [--bus-address ADDRESS] COMMAND [ARGS]\n"
               "\n"
               "Commands:\n"
               "  check [--json|--inline] FILE     check an OpenVPN configuration file\n"
               "  import FILE [--name NAME] [--transient]\n"
               "                                   import a profile (files it names are read\n"
               "                                   as you and inlined)\n"
               "  list [--json]                    list your profiles (everyone's for root)\n"
               "  show NAME|ID|PATH [--json]       a profile's properties and configuration\n"
               "  rename NAME|ID|PATH NEW-NAME     rename a profile\n"
               "  remove NAME|ID|PATH              remove a profile (disconnecting it first)\n"
               "  connect NAME|ID|PATH [--wait] [--timeout SECONDS] [--username USER]\n"
               "          [--no-browser] [--verbose]\n"
               "                                   start a session; with --wait follow it,\n"
               "                                   ask for credentials, show a web sign-in\n"
               "                                   (and open it in a desktop session unless\n"
               "                                   --no-browser) and return once it is\n"
               "                                   connected (0) or has failed (1)\n"
               "  disconnect NAME|ID|SESSION       end a profile's session and wait for it\n"
               "  status [NAME|SESSION] [--json] [--watch]\n"
               "                                   state, addresses, counters and rates of\n"
               "                                   sessions; --watch follows them live\n"
               "  monitor                          print every event of the daemon (state\n"
               "                                   changes, logs, credential requests) until\n"
               "                                   interrupted\n"
               "  server start NAME|ID|PATH [--auth bus]\n"
               "                                   run a server profile (imported from an\n"
               "                                   OpenVPN server configuration); --auth bus:\n"
               "                                   a program decides every login over D-Bus\n"
               "  server stop SERVER               stop a server (its clients are told to\n"
               "                                   reconnect later) and wait for it\n"
               "  server status [SERVER] [--json]  state, address, networks, clients, counters\n"
               "  server clients [SERVER] [--json] the connected clients\n"
               "  server kick SERVER CLIENT [--reason TEXT]\n"
               "                                   end a client's session (it is told RESTART)\n"
               "  server requests SERVER [--json]  logins that wait for a decision\n"
               "  server answer SERVER REQUEST accept|deny|pending [--reason TEXT]\n"
               "                                   decide a login (servers started with\n"
               "                                   --auth bus)\n"
               "\n"
               "check prints FILE:LINE diagnostics on standard error and exits 0 when\n"
               "the file is usable, 1 when it is refused. --json prints the normalized\n"
               "configuration (secrets redacted); --inline prints an equivalent\n"
               "self-contained .ovpn with every referenced file inlined.\n"
               "\n"
               "The daemon is reached on the system bus, or on the bus given by\n"
               "--bus-address or the SHIMMER_BUS_ADDRESS environment variable.\n"
               "Credentials asked for by `connect` are read from the terminal without\n"
               "echo, or one per line from standard input when it is not a terminal.\n"
               "\n"
               "Exit status:\n"
               "  0  success (check: the configuration is usable)\n"
               "  1  the operation failed or was refused (check: the configuration is\n"
               "     refused; connect --wait: the session failed)\n"
               "  2  usage error\n"
               "  3  the daemon or the bus cannot be reached\n"
               "  4  not authorized\n"));
    return out == stdout ? EXIT_OK : EXIT_USAGE;
}

static int usage_error(const char *synopsis)
{
    ctl_print(stderr, _("Usage: shimmerctl %s\n"), synopsis);
    ctl_print(stderr, "%s", _("Try 'shimmerctl --help' for more information.\n"));
    return EXIT_USAGE;
}

int ctl_parse_options(Ctl *ctl, const char *synopsis, int argc, char **argv, const Option *options,
                      const char **pos, int min_pos, int max_pos)
{
    int n_pos = 0;
    gboolean only_pos = FALSE;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (n_pos >= max_pos) {
                ctl_print(stderr, _("shimmerctl: unexpected argument '%s'\n"), arg);
                return usage_error(synopsis);
            }
            pos[n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = TRUE;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            ctl_print(stdout, _("Usage: shimmerctl %s\n"), synopsis);
            return EXIT_OK;
        }
        const char *eq = strchr(arg, '=');
        gsize name_len = eq ? (gsize)(eq - arg) : strlen(arg);
        const char **value = NULL;
        gboolean *flag = NULL;
        if (name_len == strlen("--bus-address") && strncmp(arg, "--bus-address", name_len) == 0)
            value = &ctl->address;
        for (const Option *o = options; o && o->name && !value && !flag; o++) {
            if (strlen(o->name) == name_len && strncmp(arg, o->name, name_len) == 0) {
                value = o->value;
                flag = o->flag;
            }
        }
        if (value == NULL && flag == NULL) {
            ctl_print(stderr, _("shimmerctl: unknown option '%s'\n"), arg);
            return usage_error(synopsis);
        }
        if (flag) {
            if (eq) {
                ctl_print(stderr, _("shimmerctl: option '%.*s' takes no value\n"), (int)name_len,
                          arg);
                return usage_error(synopsis);
            }
            *flag = TRUE;
        } else if (eq) {
            *value = eq + 1;
        } else if (i + 1 < argc) {
            *value = argv[++i];
        } else {
            ctl_print(stderr, _("shimmerctl: option '%s' needs a value\n"), arg);
            return usage_error(synopsis);
        }
    }
    if (n_pos < min_pos)
        return usage_error(synopsis);
    for (int i = n_pos; i < max_pos; i++)
        pos[i] = NULL;
    return -1;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    static const struct {
        const char *name;
        int (*run)(Ctl *ctl, int argc, char **argv);
    } commands[] = {
        {"import", ctl_cmd_import},
        {"list", ctl_cmd_list},
        {"show", ctl_cmd_show},
        {"rename", ctl_cmd_rename},
        {"remove", ctl_cmd_remove},
        {"connect", ctl_cmd_connect},
        {"disconnect", ctl_cmd_disconnect},
        {"status", ctl_cmd_status},
        {"monitor", ctl_cmd_monitor},
        {"server", ctl_cmd_server},
    };

    Ctl ctl = {0};
    int i = 1;
    /* Global options before the command. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return ctl_usage(stdout);
        if (strcmp(argv[i], "--version") == 0) {
            ctl_print(stdout, "shimmerctl %s\n", PACKAGE_VERSION);
            return EXIT_OK;
        }
        if (g_str_has_prefix(argv[i], "--bus-address=")) {
            ctl.address = argv[i] + strlen("--bus-address=");
        } else if (strcmp(argv[i], "--bus-address") == 0 && i + 1 < argc) {
            ctl.address = argv[++i];
        } else {
            ctl_print(stderr, _("shimmerctl: unknown option '%s'\n"), argv[i]);
            return ctl_usage(stderr);
        }
    }
    if (i >= argc)
        return ctl_usage(stderr);
    const char *command = argv[i];
    if (strcmp(command, "check") == 0)
        return ctl_cmd_check(argc - i - 1, argv + i + 1);
    if (strcmp(command, "help") == 0)
        return ctl_usage(stdout);
    for (gsize k = 0; k < G_N_ELEMENTS(commands); k++) {
        if (strcmp(command, commands[k].name) == 0) {
            int code = commands[k].run(&ctl, argc - i - 1, argv + i + 1);
            ctl_clear(&ctl);
            return code;
        }
    }
    ctl_print(stderr, _("shimmerctl: unknown command '%s'\n"), command);
    return ctl_usage(stderr);
}
