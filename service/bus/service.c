/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus service: the name, the object manager, and one object per
 * profile and session of the manager. See service.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "shimmer-build-config.h"

#include "service.h"

#include <glib-unix.h>
#include <stdio.h>

#include "context.h"
#include "errors.h"
#include "manager1.h"
#include "os/dns.h"
#include "os/log.h"
#include "profile1.h"
#include "server1.h"
#include "session1.h"

struct ShimmerBusService {
    ShimmerBusContext ctx;
    GDBusConnection *polkit_bus;
    GDBusConnection *resolved_bus;
    ShimmerDns *dns;
    /* The object manager serves /org/shimmervpn's children; Manager1 is
     * exported on the same path by itself (an object manager does not
     * manage its own path). */
    GDBusObjectManagerServer *objects;
    ShimmerBusManager *manager1;

    guint own_id;
    gboolean name_acquired;
    /* Reconnecting after our connection closed (GDBus closes it on a
     * message it cannot read, whoever sent it). */
    ShimmerBusReconnectFunc reconnect;
    gpointer reconnect_user;
    gboolean polkit_on_bus;   /* polkit is reached through the same connection */
    gboolean resolved_on_bus; /* so is resolved */
    guint reconnect_timer;
    guint reconnect_attempts;
    gboolean reacquiring; /* connected again, the name not yet ours again */
    ShimmerBusServiceDoneFunc done;
    gpointer done_user;
    int exit_code;
    gboolean finished;
};

/* ---------- the manager's reports ---------- */

static void on_profile_added(gpointer user, ShimmerProfile *p)
{
    ShimmerBusService *svc = user;
    ShimmerBusProfile *bp = shimmer_bus_profile_new(&svc->ctx, p);
    g_hash_table_replace(svc->ctx.profiles, g_strdup(shimmer_profile_get_id(p)), bp);
    g_dbus_object_manager_server_export(svc->objects, shimmer_bus_profile_get_object(bp));
}

static void on_profile_changed(gpointer user, ShimmerProfile *p)
{
    ShimmerBusService *svc = user;
    ShimmerBusProfile *bp = g_hash_table_lookup(svc->ctx.profiles, shimmer_profile_get_id(p));
    if (bp != NULL)
        shimmer_bus_profile_update(bp);
}

static void on_profile_removed(gpointer user, ShimmerProfile *p)
{
    ShimmerBusService *svc = user;
    g_autofree char *path = shimmer_bus_profile_path(p);
    g_dbus_object_manager_server_unexport(svc->objects, path);
    g_hash_table_remove(svc->ctx.profiles, shimmer_profile_get_id(p));
}

static ShimmerBusSession *bus_session(ShimmerBusService *svc, ShimmerSession *s)
{
    return g_hash_table_lookup(svc->ctx.sessions, shimmer_session_get_id(s));
}

static void on_session_added(gpointer user, ShimmerSession *s)
{
    ShimmerBusService *svc = user;
    ShimmerBusSession *bs = shimmer_bus_session_new(&svc->ctx, s);
    g_hash_table_replace(svc->ctx.sessions, g_strdup(shimmer_session_get_id(s)), bs);
    g_dbus_object_manager_server_export(svc->objects, shimmer_bus_session_get_object(bs));
}

static void on_session_changed(gpointer user, ShimmerSession *s, guint what)
{
    ShimmerBusSession *bs = bus_session(user, s);
    if (bs != NULL)
        shimmer_bus_session_update(bs, what);
}

static void on_session_log(gpointer user, ShimmerSession *s, ShimmerLogLevel level,
                           const char *line)
{
    ShimmerBusSession *bs = bus_session(user, s);
    if (bs != NULL)
        shimmer_bus_session_log(bs, level, line);
}

static void on_session_credentials(gpointer user, ShimmerSession *s,
                                   const ShimmerCredentialsRequest *request)
{
    ShimmerBusSession *bs = bus_session(user, s);
    if (bs != NULL)
        shimmer_bus_session_request_credentials(bs, request);
}

static void on_session_removed(gpointer user, ShimmerSession *s)
{
    ShimmerBusService *svc = user;
    g_autofree char *path = shimmer_bus_session_path(s);
    g_dbus_object_manager_server_unexport(svc->objects, path);
    g_hash_table_remove(svc->ctx.sessions, shimmer_session_get_id(s));
}

static ShimmerBusServer *bus_server(ShimmerBusService *svc, ShimmerManagedServer *s)
{
    return g_hash_table_lookup(svc->ctx.servers, shimmer_managed_server_get_id(s));
}

static void on_server_added(gpointer user, ShimmerManagedServer *s)
{
    ShimmerBusService *svc = user;
    ShimmerBusServer *bs = shimmer_bus_server_new(&svc->ctx, s);
    g_hash_table_replace(svc->ctx.servers, g_strdup(shimmer_managed_server_get_id(s)), bs);
    g_dbus_object_manager_server_export(svc->objects, shimmer_bus_server_get_object(bs));
}

static void on_server_changed(gpointer user, ShimmerManagedServer *s, guint what)
{
    ShimmerBusServer *bs = bus_server(user, s);
    if (bs != NULL)
        shimmer_bus_server_update(bs, what);
}

static void on_server_log(gpointer user, ShimmerManagedServer *s, ShimmerLogLevel level,
                          const char *line)
{
    ShimmerBusServer *bs = bus_server(user, s);
    if (bs != NULL)
        shimmer_bus_server_log(bs, level, line);
}

static void on_server_client_added(gpointer user, ShimmerManagedServer *s,
                                   const ShimmerServedClient *c)
{
    ShimmerBusServer *bs = bus_server(user, s);
    if (bs != NULL)
        shimmer_bus_server_client_added(bs, c);
}

static void on_server_client_changed(gpointer user, ShimmerManagedServer *s,
                                     const ShimmerServedClient *c)
{
    ShimmerBusServer *bs = bus_server(user, s);
    if (bs != NULL)
        shimmer_bus_server_client_changed(bs, c);
}

static void on_server_client_removed(gpointer user, ShimmerManagedServer *s,
                                     const ShimmerServedClient *c)
{
    ShimmerBusServer *bs = bus_server(user, s);
    if (bs != NULL)
        shimmer_bus_server_client_removed(bs, c);
}

static void on_server_auth_requested(gpointer user, ShimmerManagedServer *s,
                                     const ShimmerServerAuthRequest *request)
{
    ShimmerBusServer *bs = bus_server(user, s);
    if (bs != NULL)
        shimmer_bus_server_auth_requested(bs, request);
}

static void on_server_auth_closed(gpointer user, ShimmerManagedServer *s, guint64 request,
                                  const char *outcome)
{
    ShimmerBusServer *bs = bus_server(user, s);
    if (bs != NULL)
        shimmer_bus_server_auth_closed(bs, request, outcome);
}

static void on_server_removed(gpointer user, ShimmerManagedServer *s)
{
    ShimmerBusService *svc = user;
    g_autofree char *path = shimmer_bus_server_path(s);
    /* Its clients' objects first (normally gone already). */
    g_hash_table_remove(svc->ctx.servers, shimmer_managed_server_get_id(s));
    g_dbus_object_manager_server_unexport(svc->objects, path);
}

static void finish(ShimmerBusService *svc)
{
    if (svc->finished)
        return;
    svc->finished = TRUE;
    if (svc->own_id) {
        g_bus_unown_name(svc->own_id);
        svc->own_id = 0;
    }
    g_message("stopped");
    if (svc->done != NULL)
        svc->done(svc->done_user, svc->exit_code);
}

static void on_manager_stopped(gpointer user)
{
    finish(user);
}

/* ---------- the name ---------- */

static void on_name_acquired(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerBusService *svc = user;
    if (svc->reacquiring) {
        svc->reacquiring = FALSE;
        g_message("serving %s on the bus again", name);
        return;
    }
    if (svc->name_acquired)
        return;
    svc->name_acquired = TRUE;
    /* Only the one daemon that owns the name touches the state and clears
     * what a crashed run left. Method calls queued behind this callback
     * see the profiles. */
    shimmer_manager_start(svc->ctx.manager);
    g_message("serving %s on the bus", name);
}

static void own_name(ShimmerBusService *svc);

/* Serves on BUS from now on: the objects, the gate, DNS and every watch
 * move to it, and the name is asked for again. Sessions and servers never
 * noticed the old connection going. */
static void move_to(ShimmerBusService *svc, GDBusConnection *bus)
{
    GDBusInterfaceSkeleton *m1 = shimmer_bus_manager_get_interface(svc->manager1);
    if (g_dbus_interface_skeleton_get_connection(m1) != NULL)
        g_dbus_interface_skeleton_unexport(m1);
    g_autoptr(GError) error = NULL;
    if (!g_dbus_interface_skeleton_export(m1, bus, SHIMMER_BUS_ROOT_PATH, &error))
        g_warning("cannot export %s again: %s", SHIMMER_BUS_ROOT_PATH, error->message);
    g_dbus_object_manager_server_set_connection(svc->objects, bus);
    g_dbus_connection_set_exit_on_close(bus, FALSE);
    g_set_object(&svc->ctx.bus, bus);
    if (svc->polkit_on_bus)
        g_set_object(&svc->polkit_bus, bus);
    if (svc->resolved_on_bus) {
        g_set_object(&svc->resolved_bus, bus);
        shimmer_dns_set_bus(svc->dns, bus);
    }
    /* Calls under way keep the old gate alive until they end. */
    shimmer_auth_free(svc->ctx.auth);
    svc->ctx.auth = shimmer_auth_new(bus, svc->polkit_bus);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, svc->ctx.profiles);
    while (g_hash_table_iter_next(&it, NULL, &value))
        shimmer_bus_profile_reconnected(value);
    g_hash_table_iter_init(&it, svc->ctx.sessions);
    while (g_hash_table_iter_next(&it, NULL, &value))
        shimmer_bus_session_reconnected(value);
    own_name(svc);
}

#define RECONNECT_ATTEMPTS 60 /* the first at once, then a second apart */

static gboolean on_reconnect_timer(gpointer user)
{
    ShimmerBusService *svc = user;
    g_autoptr(GError) error = NULL;
    g_autoptr(GDBusConnection) bus = svc->reconnect(svc->reconnect_user, &error);
    svc->reconnect_timer = 0;
    if (bus == NULL) {
        if (++svc->reconnect_attempts < RECONNECT_ATTEMPTS) {
            svc->reconnect_timer = g_timeout_add_seconds(1, on_reconnect_timer, svc);
            return G_SOURCE_REMOVE;
        }
        g_warning("cannot reach the bus again (%s): stopping", error->message);
        svc->exit_code = 1;
        shimmer_bus_service_shutdown(svc);
        return G_SOURCE_REMOVE;
    }
    g_message("connected to the bus again; sessions went on meanwhile");
    svc->reacquiring = TRUE;
    move_to(svc, bus);
    return G_SOURCE_REMOVE;
}

static gboolean on_own_again(gpointer user)
{
    ShimmerBusService *svc = user;
    svc->reconnect_timer = 0;
    own_name(svc);
    return G_SOURCE_REMOVE;
}

static void on_name_lost(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerBusService *svc = user;
    if (svc->finished || shimmer_manager_is_stopping(svc->ctx.manager))
        return;
    if (svc->reacquiring && !g_dbus_connection_is_closed(svc->ctx.bus) &&
        ++svc->reconnect_attempts < RECONNECT_ATTEMPTS) {
        /* The bus may not have let go of the old connection's name yet. */
        g_bus_unown_name(svc->own_id);
        svc->own_id = 0;
        svc->reconnect_timer = g_timeout_add_seconds(1, on_own_again, svc);
        return;
    }
    if (svc->name_acquired && svc->reconnect != NULL && g_dbus_connection_is_closed(svc->ctx.bus)) {
        /* Not another daemon taking the name: our connection closed under
         * us (GDBus does that on a message it cannot read, and anyone may
         * send one). Tunnels must not go down for that: connect again. */
        if (svc->reconnect_timer == 0) {
            g_warning("the connection to the bus closed: connecting again (sessions go on)");
            /* GDBus stops using a connection it closed, but the socket
             * stays open while anything holds the connection: the bus
             * would keep our name on it and send our callers there. */
            g_io_stream_close(g_dbus_connection_get_stream(svc->ctx.bus), NULL, NULL);
            g_bus_unown_name(svc->own_id);
            svc->own_id = 0;
            svc->reconnect_attempts = 0;
            svc->reconnect_timer = g_timeout_add(100, on_reconnect_timer, svc);
        }
        return;
    }
    if (svc->name_acquired)
        g_warning("lost the bus name %s (or the bus): stopping", name);
    else
        g_warning("cannot own the bus name %s: another shimmerd runs, or the bus policy does "
                  "not allow this user to own it",
                  name);
    svc->exit_code = 1;
    shimmer_bus_service_shutdown(svc);
}

gboolean shimmer_bus_service_start(ShimmerBusService *svc, GError **error)
{
    if (!g_dbus_interface_skeleton_export(shimmer_bus_manager_get_interface(svc->manager1),
                                          svc->ctx.bus, SHIMMER_BUS_ROOT_PATH, error))
        return FALSE;
    g_dbus_object_manager_server_set_connection(svc->objects, svc->ctx.bus);
    /* Without a bus the daemon has nothing to do: on_name_lost reconnects
     * or ends it. */
    g_dbus_connection_set_exit_on_close(svc->ctx.bus, FALSE);
    own_name(svc);
    return TRUE;
}

static void own_name(ShimmerBusService *svc)
{
    svc->own_id = g_bus_own_name_on_connection(svc->ctx.bus, SHIMMER_BUS_NAME,
                                               G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                               on_name_acquired, on_name_lost, svc, NULL);
}

void shimmer_bus_service_shutdown(ShimmerBusService *svc)
{
    shimmer_manager_stop(svc->ctx.manager);
}

/* ---------- life cycle ---------- */

ShimmerBusService *shimmer_bus_service_new(const ShimmerBusServiceOptions *options,
                                           ShimmerBusServiceDoneFunc done, gpointer done_user,
                                           GError **error)
{
    g_return_val_if_fail(options != NULL && G_IS_DBUS_CONNECTION(options->bus), NULL);
    /* The error names exist before the first reply. */
    shimmer_bus_errors_register();

    ShimmerBusService *svc = g_new0(ShimmerBusService, 1);
    svc->done = done;
    svc->done_user = done_user;
    svc->ctx.bus = g_object_ref(options->bus);
    svc->polkit_bus = g_object_ref(options->polkit_bus ? options->polkit_bus : options->bus);
    svc->resolved_bus = g_object_ref(options->resolved_bus ? options->resolved_bus : options->bus);
    svc->polkit_on_bus = svc->polkit_bus == options->bus;
    svc->resolved_on_bus = svc->resolved_bus == options->bus;
    svc->reconnect = options->reconnect;
    svc->reconnect_user = options->reconnect_user;
    svc->dns = shimmer_dns_new(svc->resolved_bus, options->resolvconf);
    ShimmerManagerOptions mopts = {
        .state_dir = options->state_dir,
        .dns = svc->dns,
        .verbose = options->verbose,
    };
    ShimmerManagerListener listener = {
        .profile_added = on_profile_added,
        .profile_changed = on_profile_changed,
        .profile_removed = on_profile_removed,
        .session_added = on_session_added,
        .session_changed = on_session_changed,
        .session_log = on_session_log,
        .session_credentials_requested = on_session_credentials,
        .session_removed = on_session_removed,
        .server_added = on_server_added,
        .server_changed = on_server_changed,
        .server_log = on_server_log,
        .server_client_added = on_server_client_added,
        .server_client_changed = on_server_client_changed,
        .server_client_removed = on_server_client_removed,
        .server_auth_requested = on_server_auth_requested,
        .server_auth_closed = on_server_auth_closed,
        .server_removed = on_server_removed,
        .stopped = on_manager_stopped,
        .user = svc,
    };
    svc->ctx.manager = shimmer_manager_new(&mopts, &listener, error);
    if (svc->ctx.manager == NULL) {
        shimmer_dns_free(svc->dns);
        g_object_unref(svc->resolved_bus);
        g_object_unref(svc->polkit_bus);
        g_object_unref(svc->ctx.bus);
        g_free(svc);
        return NULL;
    }
    svc->ctx.auth = shimmer_auth_new(svc->ctx.bus, svc->polkit_bus);
    svc->ctx.cancel = g_cancellable_new();
    svc->ctx.profiles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify)shimmer_bus_profile_free);
    svc->ctx.sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify)shimmer_bus_session_free);
    svc->ctx.servers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify)shimmer_bus_server_free);
    svc->objects = g_dbus_object_manager_server_new(SHIMMER_BUS_ROOT_PATH);
    svc->ctx.objects = svc->objects;
    const char *backend = shimmer_dns_backend_name(shimmer_dns_get_backend(svc->dns));
    svc->manager1 = shimmer_bus_manager_new(&svc->ctx, backend);
    g_message("shimmerd %s: state in %s, DNS through %s", PACKAGE_VERSION,
              options->state_dir ? options->state_dir : SHIMMER_MANAGER_DEFAULT_STATE_DIR, backend);
    return svc;
}

void shimmer_bus_service_free(ShimmerBusService *svc)
{
    if (svc == NULL)
        return;
    g_cancellable_cancel(svc->ctx.cancel);
    if (svc->reconnect_timer)
        g_source_remove(svc->reconnect_timer);
    if (svc->own_id)
        g_bus_unown_name(svc->own_id);
    /* The manager first: its sessions' tunnels and DNS go before the DNS
     * helper, and it reports nothing more. */
    g_clear_pointer(&svc->ctx.manager, shimmer_manager_free);
    g_hash_table_destroy(svc->ctx.servers);
    g_hash_table_destroy(svc->ctx.sessions);
    g_hash_table_destroy(svc->ctx.profiles);
    shimmer_bus_manager_free(svc->manager1);
    g_dbus_object_manager_server_set_connection(svc->objects, NULL);
    g_object_unref(svc->objects);
    /* Normally all DNS was reverted before the daemon stopped; after an
     * abrupt end the sessions just torn down queued their reverts. */
    shimmer_dns_revert_all(svc->dns, NULL, NULL, NULL);
    if (!shimmer_dns_wait_idle(svc->dns, 12000))
        g_warning("DNS changes were still under way when the daemon ended");
    shimmer_dns_free(svc->dns);
    shimmer_auth_free(svc->ctx.auth);
    g_object_unref(svc->ctx.cancel);
    g_object_unref(svc->resolved_bus);
    g_object_unref(svc->polkit_bus);
    g_object_unref(svc->ctx.bus);
    g_free(svc);
}

/* ---------- shimmerd --system ---------- */

typedef struct {
    GMainLoop *loop;
    ShimmerBusService *svc;
    int exit_code;
    const char *bus_address;
} Run;

static void on_run_done(gpointer user, int exit_code)
{
    Run *run = user;
    run->exit_code = exit_code;
    g_main_loop_quit(run->loop);
}

static gboolean on_run_signal(gpointer user)
{
    Run *run = user;
    g_message("signal received: stopping");
    /* A second signal tears the sessions down without waiting. */
    shimmer_bus_service_shutdown(run->svc);
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

static GDBusConnection *open_bus(const char *address, const char *what, GError **error);

static GDBusConnection *reconnect_bus(gpointer user, GError **error)
{
    Run *run = user;
    if (run->bus_address == NULL) {
        /* The shared system-bus connection is closed for good: a new one. */
        g_autofree char *address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, error);
        return address ? open_bus(address, "bus", error) : NULL;
    }
    return open_bus(run->bus_address, "bus", error);
}

int shimmer_bus_service_run(const ShimmerBusServiceRunOptions *o)
{
    shimmer_log_use_writer(o->verbose);
    g_autoptr(GError) error = NULL;
    g_autoptr(GDBusConnection) bus = open_bus(o->bus_address, "bus", &error);
    g_autoptr(GDBusConnection) polkit_bus = NULL;
    g_autoptr(GDBusConnection) resolved_bus = NULL;
    if (bus != NULL && o->polkit_address != NULL)
        polkit_bus = open_bus(o->polkit_address, "polkit bus", &error);
    if (error == NULL && o->resolved_address != NULL)
        resolved_bus = open_bus(o->resolved_address, "resolved bus", &error);
    if (error != NULL) {
        fprintf(stderr, "shimmerd: cannot connect to the bus: %s\n", error->message);
        return 1;
    }
    Run run = {0};
    run.loop = g_main_loop_new(NULL, FALSE);
    run.bus_address = o->bus_address;
    ShimmerBusServiceOptions opts = {
        .bus = bus,
        .polkit_bus = polkit_bus,
        .resolved_bus = resolved_bus,
        .resolvconf = o->resolvconf,
        .state_dir = o->state_dir,
        .verbose = o->verbose,
        .reconnect = reconnect_bus,
        .reconnect_user = &run,
    };
    run.svc = shimmer_bus_service_new(&opts, on_run_done, &run, &error);
    if (run.svc == NULL || !shimmer_bus_service_start(run.svc, &error)) {
        fprintf(stderr, "shimmerd: %s\n", error->message);
        g_clear_pointer(&run.svc, shimmer_bus_service_free);
        g_main_loop_unref(run.loop);
        return 1;
    }
    guint s1 = g_unix_signal_add(SIGINT, on_run_signal, &run);
    guint s2 = g_unix_signal_add(SIGTERM, on_run_signal, &run);
    g_main_loop_run(run.loop);
    g_source_remove(s1);
    g_source_remove(s2);
    shimmer_bus_service_free(run.svc);
    /* Let the bus see the name released before we go. */
    g_dbus_connection_flush_sync(bus, NULL, NULL);
    g_main_loop_unref(run.loop);
    return run.exit_code;
}
