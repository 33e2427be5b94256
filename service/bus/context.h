/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "auth.h"
#include "manager/manager.h"

G_BEGIN_DECLS

/*
 * What the objects of the D-Bus front share: the bus, the gate, the
 * manager they front, and the exported objects by model id (filled in by
 * service.c as the manager reports profiles and sessions).
 */

#define SHIMMER_BUS_NAME         "org.shimmervpn"
#define SHIMMER_BUS_ROOT_PATH    "/org/shimmervpn"
#define SHIMMER_BUS_PROFILE_PATH "/org/shimmervpn/profile"
#define SHIMMER_BUS_SESSION_PATH "/org/shimmervpn/session"
#define SHIMMER_BUS_SERVER_PATH  "/org/shimmervpn/server"

typedef struct {
    GDBusConnection *bus;
    ShimmerAuth *auth;
    ShimmerManager *manager;
    GCancellable *cancel; /* cancelled when the front goes away */
    GHashTable *profiles; /* profile id -> ShimmerBusProfile* */
    GHashTable *sessions; /* session id -> ShimmerBusSession* */
    GHashTable *servers;  /* server id -> ShimmerBusServer* */
    /* Where objects are exported (servers export their clients). */
    GDBusObjectManagerServer *objects;
} ShimmerBusContext;

char *shimmer_bus_profile_path(ShimmerProfile *p);
char *shimmer_bus_session_path(ShimmerSession *s);
char *shimmer_bus_server_path(ShimmerManagedServer *s);
/* SERVER_PATH/client/ID */
char *shimmer_bus_client_path(const char *server_path, guint64 id);

/* A watch on the bus name of the client a profile or session is bound to
 * (bound-to-caller). GONE runs when that client leaves the bus; not when
 * the daemon's own connection closes (it reconnects and renews the watch,
 * which then says at once if the client left meanwhile). */
typedef struct {
    char *caller;
    guint id;
    void (*gone)(gpointer user, const char *caller);
    gpointer user;
} ShimmerCallerWatch;

void shimmer_bus_caller_watch_start(ShimmerBusContext *ctx, ShimmerCallerWatch *w,
                                    const char *caller, void (*gone)(gpointer, const char *),
                                    gpointer user);
/* After a reconnect: the same watch on ctx->bus. Nothing if not started. */
void shimmer_bus_caller_watch_renew(ShimmerBusContext *ctx, ShimmerCallerWatch *w);
void shimmer_bus_caller_watch_clear(ShimmerCallerWatch *w);

/* Sends the signal to the bus names of UID that called the daemon (see
 * shimmer_auth_dup_names_of_uid()): for what only the owner may see. */
void shimmer_bus_emit_to_uid(ShimmerBusContext *ctx, guint uid, const char *path,
                             const char *interface, const char *signal, GVariant *params);

G_END_DECLS
