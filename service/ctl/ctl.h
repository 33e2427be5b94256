/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * shimmerctl: what every command shares. The command line (main.c), the
 * connection to shimmerd and its errors, and finding the profile or session
 * a command names (ctl.c).
 *
 * `check` works on a file alone. Every other command talks to shimmerd over
 * D-Bus (the system bus, or the bus named by --bus-address or
 * $SHIMMER_BUS_ADDRESS) through the bindings generated from dbus/ *.xml,
 * and follows signals rather than polling (follow.h).
 */

#include <gio/gio.h>
#include <glib.h>
#include <stdio.h>

#include "shimmer-dbus-generated.h"

G_BEGIN_DECLS

/* Exit codes (also in --help and README.md). */
enum {
    EXIT_OK = 0,             /* success (check: the configuration is usable) */
    EXIT_REFUSED = 1,        /* the operation failed or was refused (check: the
                              * configuration is refused; connect --wait: the
                              * session failed) */
    EXIT_USAGE = 2,          /* usage error */
    EXIT_UNREACHABLE = 3,    /* the daemon or the bus cannot be reached */
    EXIT_NOT_AUTHORIZED = 4, /* not authorized */
};

#define BUS_NAME             "org.shimmervpn"
#define ROOT_PATH            "/org/shimmervpn"
#define SESSION_PREFIX       "/org/shimmervpn/session/"
#define IFACE_MANAGER        "org.shimmervpn.Manager1"
#define IFACE_PROFILE        "org.shimmervpn.Profile1"
#define IFACE_SESSION        "org.shimmervpn.Session1"
#define IFACE_PROPERTIES     "org.freedesktop.DBus.Properties"
#define IFACE_OBJECT_MANAGER "org.freedesktop.DBus.ObjectManager"

typedef struct {
    const char *address; /* --bus-address; NULL: $SHIMMER_BUS_ADDRESS or the system bus */
    GDBusConnection *bus;
    ShimmerDBusManager1 *manager;
} Ctl;

/* ---- the command line (main.c) */

/* The whole --help text on OUT; returns EXIT_OK for stdout, else EXIT_USAGE. */
int ctl_usage(FILE *out);

/* One option of a command. VALUE set: the option takes an argument. */
typedef struct {
    const char *name;
    gboolean *flag;
    const char **value;
} Option;

/* Splits ARGV into OPTIONS (a NULL-named entry ends them) and positional
 * arguments POS (at most MAX_POS, at least MIN_POS; the missing ones set to
 * NULL). Every command also takes --bus-address and --help. Returns -1 when
 * the command should go on, else the exit code to return (usage errors are
 * printed). */
int ctl_parse_options(Ctl *ctl, const char *synopsis, int argc, char **argv, const Option *options,
                      const char **pos, int min_pos, int max_pos);

/* ---- the daemon (ctl.c) */

/* Prints "shimmerctl: WHAT: MESSAGE" and returns the exit code for ERROR
 * (the remote error name decides: not authorized, unreachable, refused). */
int ctl_fail(const char *what, GError *error);

/* Connects to the bus and checks that shimmerd is there (starting it
 * through bus activation when it is activatable); prints why not. With
 * !REQUIRE_DAEMON only the bus must be reachable (EXIT_UNREACHABLE, quietly,
 * when the daemon is not). */
int ctl_open_full(Ctl *ctl, gboolean require_daemon);
int ctl_open(Ctl *ctl);
void ctl_clear(Ctl *ctl);

/* A method call of the daemon. When a person sits at the terminal, polkit
 * may ask them to authenticate, so the call may wait for that. */
GVariant *ctl_call(Ctl *ctl, const char *path, const char *iface, const char *method,
                   GVariant *args, const GVariantType *reply_type, GError **error);
/* One property read from the daemon (not from a proxy's cache); NULL when
 * it cannot be read. */
GVariant *ctl_get_property(Ctl *ctl, const char *path, const char *iface, const char *name);

ShimmerDBusProfile1 *ctl_profile_proxy(Ctl *ctl, const char *path, GError **error);
ShimmerDBusSession1 *ctl_session_proxy(Ctl *ctl, const char *path, GError **error);
/* FALSE for a proxy of an object that is not (or no longer) there. */
gboolean ctl_proxy_has_properties(gpointer proxy);

/* Proxies for the objects Manager1.METHOD lists (ListProfiles or
 * ListSessions), in the daemon's order. NULL and *CODE on failure. */
GPtrArray *ctl_list_objects(Ctl *ctl, const char *method, gboolean sessions, int *code);
/* The profile SPEC names: an object path, else a name (the caller's own
 * first when several users have one of that name), else an ID. When none
 * matches, prints why unless QUIET_MISSING, and sets *CODE. */
ShimmerDBusProfile1 *ctl_find_profile(Ctl *ctl, const char *spec, gboolean quiet_missing,
                                      int *code);
/* The session SPEC names: a session's path or ID, or a profile (name, ID
 * or path) that has one. NULL and *CODE (printed why) otherwise. */
ShimmerDBusSession1 *ctl_find_session(Ctl *ctl, const char *spec, int *code);
/* The name of the profile at PATH, or PATH itself when it cannot be read. */
char *ctl_profile_name(Ctl *ctl, const char *path);

/* ---- the commands: each returns its exit code */

int ctl_cmd_check(int argc, char **argv); /* profile-cmds.c */
int ctl_cmd_import(Ctl *ctl, int argc, char **argv);
int ctl_cmd_list(Ctl *ctl, int argc, char **argv);
int ctl_cmd_show(Ctl *ctl, int argc, char **argv);
int ctl_cmd_rename(Ctl *ctl, int argc, char **argv);
int ctl_cmd_remove(Ctl *ctl, int argc, char **argv);
int ctl_cmd_connect(Ctl *ctl, int argc, char **argv); /* session-cmds.c */
int ctl_cmd_disconnect(Ctl *ctl, int argc, char **argv);
int ctl_cmd_status(Ctl *ctl, int argc, char **argv);  /* status.c */
int ctl_cmd_monitor(Ctl *ctl, int argc, char **argv); /* monitor.c */
int ctl_cmd_server(Ctl *ctl, int argc, char **argv);  /* server-cmds.c */

G_END_DECLS
