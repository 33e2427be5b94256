/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "auth.h"
#include "os/dns.h"
#include "shimmer-dbus-generated.h"

G_BEGIN_DECLS

/*
 * shimmerd's D-Bus service: the bus name org.shimmervpn, the object manager
 * at /org/shimmervpn with org.shimmervpn.Manager1, and the tables of
 * profiles (profile.h) and sessions (session.h) below it. The D-Bus API is
 * described in dbus/README.md; the XML in dbus/ is its source of truth.
 *
 * Everything runs on the thread-default main context of the caller of
 * shimmer_daemon_new(); nothing here blocks except the short synchronous
 * bus and netlink calls the modules below make.
 */

#define SHIMMER_DAEMON_BUS_NAME          "org.shimmervpn"
#define SHIMMER_DAEMON_ROOT_PATH         "/org/shimmervpn"
#define SHIMMER_DAEMON_PROFILE_PATH      "/org/shimmervpn/profile"
#define SHIMMER_DAEMON_SESSION_PATH      "/org/shimmervpn/session"
#define SHIMMER_DAEMON_DEFAULT_STATE_DIR "/var/lib/shimmer"
/* The tun name pattern of daemon sessions; stale devices of this name
 * (^shim[0-9]+$) are removed at start. */
#define SHIMMER_DAEMON_TUN_PATTERN "shim%d"

typedef struct ShimmerDaemon ShimmerDaemon;
typedef struct ShimmerProfile ShimmerProfile;
typedef struct ShimmerSession ShimmerSession;

typedef struct {
    /* The bus to serve on (required). */
    GDBusConnection *bus;
    /* Where polkit's authority is; NULL: BUS. */
    GDBusConnection *polkit_bus;
    /* Where systemd-resolved is looked for; NULL: BUS. */
    GDBusConnection *resolved_bus;
    /* The resolvconf program; NULL: found in PATH. */
    const char *resolvconf;
    /* Where persistent profiles live; NULL: SHIMMER_DAEMON_DEFAULT_STATE_DIR. */
    const char *state_dir;
    /* Log protocol details (debug level), on stderr and in Log signals. */
    gboolean verbose;
} ShimmerDaemonOptions;

/* Called once when the daemon has finished: after shimmer_daemon_shutdown()
 * completed (EXIT_CODE 0), or when it lost its bus name or its bus
 * (EXIT_CODE 1). */
typedef void (*ShimmerDaemonDoneFunc)(gpointer user, int exit_code);

/* Creates the state directory (mode 0700) if needed and the auth and DNS
 * helpers. Nothing is exported yet. */
ShimmerDaemon *shimmer_daemon_new(const ShimmerDaemonOptions *options, ShimmerDaemonDoneFunc done,
                                  gpointer done_user, GError **error);

/* Exports the objects and requests the bus name; once the name is ours,
 * removes leftovers of a crashed run (stale tun devices, DNS entries) and
 * loads the stored profiles (a corrupt file is logged and renamed to
 * FILE.corrupt). FALSE if the objects cannot be exported; not getting the name,
 * or losing it later, ends the daemon through the done callback (1). */
gboolean shimmer_daemon_start(ShimmerDaemon *d, GError **error);

/* Orderly stop: disconnects every session (exit notification to the
 * server, routes and DNS reverted), reverts whatever DNS is left, releases
 * the name, then calls the done callback with 0. Calling it again while
 * it runs stops waiting for servers: the sessions are torn down at once. */
void shimmer_daemon_shutdown(ShimmerDaemon *d);

/* Frees everything; sessions still running are torn down (no exit
 * notification). */
void shimmer_daemon_free(ShimmerDaemon *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerDaemon, shimmer_daemon_free)

/* ---- for profile.c and session.c ---- */

GDBusConnection *shimmer_daemon_get_bus(ShimmerDaemon *d);
ShimmerDns *shimmer_daemon_get_dns(ShimmerDaemon *d);
const char *shimmer_daemon_get_state_dir(ShimmerDaemon *d);
gboolean shimmer_daemon_get_verbose(ShimmerDaemon *d);
/* TRUE once shimmer_daemon_shutdown() was called: no new sessions. */
gboolean shimmer_daemon_is_stopping(ShimmerDaemon *d);

/* As OWNER_UID of shimmer_daemon_authorize(): the caller's own uid (for
 * methods that act on the caller's objects, such as the lists). */
#define SHIMMER_DAEMON_OWNER_IS_CALLER G_MAXUINT

/* Called with the caller's uid once the caller was allowed; must complete
 * INVOCATION. */
typedef void (*ShimmerDaemonAuthorizedFunc)(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                                            guint caller_uid, gpointer data);

/*
 * The gate in front of every method: looks up the caller's uid, remembers
 * the caller as a connection of that uid (for Log signals), then checks
 * asynchronously (polkit) that it may do KIND on an object of OWNER_UID.
 * Denied or unknown callers get org.shimmervpn.Error.NotAuthorized on
 * INVOCATION; otherwise FUNC runs. DATA is released with DESTROY either way.
 */
void shimmer_daemon_authorize(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                              ShimmerAuthKind kind, guint owner_uid,
                              ShimmerDaemonAuthorizedFunc func, gpointer data,
                              GDestroyNotify destroy);

/* Returns ERROR on INVOCATION as an org.shimmervpn.Error.* name: errors of
 * other domains become org.shimmervpn.Error.Failed with their message. */
void shimmer_daemon_return_error(GDBusMethodInvocation *invocation, const GError *error);
void shimmer_daemon_return_new(GDBusMethodInvocation *invocation, ShimmerDBusError code,
                               const char *format, ...) G_GNUC_PRINTF(3, 4);

/* The unique bus names of callers whose uid is UID and that are still on
 * the bus (NULL-terminated; free with g_strfreev). */
char **shimmer_daemon_dup_names_of_uid(ShimmerDaemon *d, guint uid);

/* The profile OWNER_UID has under NAME, or NULL. */
ShimmerProfile *shimmer_daemon_find_profile(ShimmerDaemon *d, guint owner_uid, const char *name);
/* Unexports PROFILE and drops it from the table (its stored file is the
 * caller's business). */
void shimmer_daemon_remove_profile(ShimmerDaemon *d, ShimmerProfile *profile);

/* A fresh session id ("1", "2", ...). */
char *shimmer_daemon_new_session_id(ShimmerDaemon *d);
/* Adds and exports SESSION. */
void shimmer_daemon_add_session(ShimmerDaemon *d, ShimmerSession *session);
/* SESSION has ended (its tunnel is down): a stopping daemon may be done. */
void shimmer_daemon_session_finished(ShimmerDaemon *d, ShimmerSession *session);
/* Unexports SESSION and drops it from the table. */
void shimmer_daemon_remove_session(ShimmerDaemon *d, ShimmerSession *session);

G_END_DECLS
