/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * shimmerd's D-Bus service: the bus name org.shimmervpn, the object
 * manager at /org/shimmervpn with Manager1, and a Profile1 or Session1
 * object for each of the manager's profiles and sessions. The API is in
 * dbus/README.md; the XML in dbus/ is its source of truth.
 *
 * Everything runs on the thread-default main context of the caller of
 * shimmer_bus_service_new(), and nothing in it waits for another process.
 */

typedef struct ShimmerBusService ShimmerBusService;

/* Opens a new connection to the bus served on (after the old one closed),
 * or NULL with ERROR. */
typedef GDBusConnection *(*ShimmerBusReconnectFunc)(gpointer user, GError **error);

typedef struct {
    /* The bus to serve on (required). */
    GDBusConnection *bus;
    /* Where polkit's authority is; NULL: BUS. */
    GDBusConnection *polkit_bus;
    /* Where systemd-resolved is looked for; NULL: BUS. */
    GDBusConnection *resolved_bus;
    /* The resolvconf program; NULL: found in PATH. */
    const char *resolvconf;
    /* Where persistent profiles live; NULL: the manager's default. */
    const char *state_dir;
    /* Log protocol details (debug level), on stderr and in Log signals. */
    gboolean verbose;
    /* When the connection closes under the daemon (GDBus closes it on a
     * message it cannot read), a new one is asked for here, once a second
     * for a minute, and everything moves to it while sessions go on. NULL:
     * a closed connection stops the daemon. */
    ShimmerBusReconnectFunc reconnect;
    gpointer reconnect_user;
} ShimmerBusServiceOptions;

/* Called once when the service has finished: after
 * shimmer_bus_service_shutdown() completed (EXIT_CODE 0), or when it lost
 * its bus name, or its bus for good (EXIT_CODE 1). */
typedef void (*ShimmerBusServiceDoneFunc)(gpointer user, int exit_code);

/* Opens the state directory (creating it, mode 0700) and the helpers.
 * Nothing is exported yet. */
ShimmerBusService *shimmer_bus_service_new(const ShimmerBusServiceOptions *options,
                                           ShimmerBusServiceDoneFunc done, gpointer done_user,
                                           GError **error);

/* Exports the objects and requests the bus name; once the name is ours,
 * the manager clears what a crashed run left and loads the stored
 * profiles. FALSE if the objects cannot be exported; not getting the name,
 * or losing it later, ends the service through the done callback (1). */
gboolean shimmer_bus_service_start(ShimmerBusService *svc, GError **error);

/* Orderly stop: every session disconnects, the name is released, then the
 * done callback runs with 0. Calling it again tears down at once. */
void shimmer_bus_service_shutdown(ShimmerBusService *svc);

void shimmer_bus_service_free(ShimmerBusService *svc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerBusService, shimmer_bus_service_free)

typedef struct {
    /* Addresses of the buses; NULL: the system bus (polkit and resolved:
     * the bus served on). */
    const char *bus_address;
    const char *polkit_address;
    const char *resolved_address;
    const char *resolvconf;
    const char *state_dir;
    gboolean verbose;
} ShimmerBusServiceRunOptions;

/* `shimmerd --system`: connects, logs to the journal or stderr, runs the
 * service until SIGINT/SIGTERM (a second one stops waiting for servers)
 * or a lost bus name. The exit code: 0 stopped, 1 the bus or the name was
 * lost or could not be had. */
int shimmer_bus_service_run(const ShimmerBusServiceRunOptions *options);

G_END_DECLS
