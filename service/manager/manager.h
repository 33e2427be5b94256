/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "errors.h"
#include "os/dns.h"
#include "profile.h"
#include "server.h"
#include "session.h"
#include "store.h"

G_BEGIN_DECLS

/*
 * shimmerd's manager: the profiles (kept in the store on disk), the
 * sessions running them, the limits on both, clean-up after a crashed run
 * at start and an orderly stop. It knows nothing of D-Bus: a front end
 * calls it with the caller's uid already checked (bus/authz.c) and hears
 * about changes through its listener.
 *
 * Limits (so that no local user can exhaust the daemon's memory, disk or
 * file descriptors for everyone): a uid other than root may keep at most
 * SHIMMER_MANAGER_MAX_PROFILES_PER_UID profiles of at most
 * SHIMMER_MANAGER_MAX_BYTES_PER_UID bytes of text together, and run
 * SHIMMER_MANAGER_MAX_SESSIONS_PER_UID sessions; all uids but root together
 * at most SHIMMER_MANAGER_MAX_PROFILES, SHIMMER_MANAGER_MAX_BYTES and
 * SHIMMER_MANAGER_MAX_SESSIONS (fewer sessions if the descriptor limit is
 * low: see shimmer_manager_new()). Root is held only by the descriptor
 * limit, which keeps room for its own sessions.
 */
/* The largest profile text (bytes). */
#define SHIMMER_MANAGER_MAX_TEXT             SHIMMER_STORE_MAX_TEXT
#define SHIMMER_MANAGER_MAX_PROFILES_PER_UID 64
#define SHIMMER_MANAGER_MAX_BYTES_PER_UID    (8 * 1024 * 1024)
#define SHIMMER_MANAGER_MAX_SESSIONS_PER_UID 16
#define SHIMMER_MANAGER_MAX_PROFILES         512
#define SHIMMER_MANAGER_MAX_BYTES            (64 * 1024 * 1024)
#define SHIMMER_MANAGER_MAX_SESSIONS         256
/* Descriptors kept back for the daemon itself. Those of one session are
 * shimmer_tunnel_max_descriptors(): they grow with the data path's workers
 * (one per processor, up to 8: 12 on 2 processors, 30 on 8). */
#define SHIMMER_MANAGER_FDS_RESERVED 64

#define SHIMMER_MANAGER_DEFAULT_STATE_DIR "/var/lib/shimmer"
/* The tun name pattern of daemon sessions; stale persistent devices of this
 * name (^shim[0-9]+$) are removed at start. */
#define SHIMMER_MANAGER_TUN_PATTERN "shim%d"
/* How long a finished session stays, so that its final state can be read. */
#define SHIMMER_MANAGER_LINGER_SECONDS 5
/* How long a stop waits for servers to take the exit notification. */
#define SHIMMER_MANAGER_STOP_GRACE_SECONDS 5

typedef struct ShimmerManager ShimmerManager;

typedef struct {
    void (*profile_added)(gpointer user, ShimmerProfile *p);
    /* Name, last use or the active session changed. */
    void (*profile_changed)(gpointer user, ShimmerProfile *p);
    void (*profile_removed)(gpointer user, ShimmerProfile *p);
    void (*session_added)(gpointer user, ShimmerSession *s);
    void (*session_changed)(gpointer user, ShimmerSession *s, guint what);
    void (*session_log)(gpointer user, ShimmerSession *s, ShimmerLogLevel level, const char *line);
    void (*session_credentials_requested)(gpointer user, ShimmerSession *s,
                                          const ShimmerCredentialsRequest *request);
    void (*session_removed)(gpointer user, ShimmerSession *s);
    /* Servers (server.h): one started, its reports, and its end's linger
     * over (removed). */
    void (*server_added)(gpointer user, ShimmerManagedServer *s);
    void (*server_changed)(gpointer user, ShimmerManagedServer *s, guint what);
    void (*server_log)(gpointer user, ShimmerManagedServer *s, ShimmerLogLevel level,
                       const char *line);
    void (*server_client_added)(gpointer user, ShimmerManagedServer *s,
                                const ShimmerServedClient *c);
    void (*server_client_changed)(gpointer user, ShimmerManagedServer *s,
                                  const ShimmerServedClient *c);
    void (*server_client_removed)(gpointer user, ShimmerManagedServer *s,
                                  const ShimmerServedClient *c);
    void (*server_auth_requested)(gpointer user, ShimmerManagedServer *s,
                                  const ShimmerServerAuthRequest *request);
    void (*server_auth_closed)(gpointer user, ShimmerManagedServer *s, guint64 request,
                               const char *outcome);
    void (*server_removed)(gpointer user, ShimmerManagedServer *s);
    /* shimmer_manager_stop() has finished: every session has ended. */
    void (*stopped)(gpointer user);
    gpointer user;
} ShimmerManagerListener;

typedef struct {
    /* NULL: SHIMMER_MANAGER_DEFAULT_STATE_DIR. */
    const char *state_dir;
    /* Where sessions put DNS (not owned; must outlive the manager). */
    ShimmerDns *dns;
    gboolean verbose;
} ShimmerManagerOptions;

/* Opens the store (creating the state directory, mode 0700) and sizes the
 * session limit to the descriptor limit (raising the soft limit to the
 * hard one first). Loads nothing yet. */
ShimmerManager *shimmer_manager_new(const ShimmerManagerOptions *options,
                                    const ShimmerManagerListener *listener, GError **error);
void shimmer_manager_free(ShimmerManager *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerManager, shimmer_manager_free)

/* Removes what a crashed run left (persistent tun devices of the daemon's
 * pattern, routes of the daemon's protocol, resolvconf entries) and loads
 * the stored profiles; profile_added is called for each. */
void shimmer_manager_start(ShimmerManager *m);

/* Sessions the limits allow at most (all uids but root together). */
guint shimmer_manager_get_max_sessions(ShimmerManager *m);

/* Imports TEXT as a profile of OWNER named NAME (stored when PERSISTENT).
 * Errors: INVALID_ARGS (name), INVALID_CONFIG (diagnostics), EXISTS (OWNER
 * has a profile of that name), LIMIT, FAILED (stopping, storage). */
ShimmerProfile *shimmer_manager_import(ShimmerManager *m, const char *name, guint owner,
                                       const char *text, gsize len, gboolean persistent,
                                       GError **error);
/* The same; with ALLOW_SERVER a server configuration is imported too (the
 * front end checked that OWNER may run servers). */
ShimmerProfile *shimmer_manager_import_role(ShimmerManager *m, const char *name, guint owner,
                                            const char *text, gsize len, gboolean persistent,
                                            gboolean allow_server, GError **error);
/* Removes P: its stored file first (a failure changes nothing), then a
 * running session or server is stopped. WHO says why, for the log. */
gboolean shimmer_manager_remove_profile(ShimmerManager *m, ShimmerProfile *p, const char *who,
                                        GError **error);
gboolean shimmer_manager_rename_profile(ShimmerManager *m, ShimmerProfile *p, const char *name,
                                        guint by_uid, GError **error);
/* Connects P for OWNER. BUSY if P has a running session; LIMIT. */
ShimmerSession *shimmer_manager_connect(ShimmerManager *m, ShimmerProfile *p, guint owner,
                                        const ShimmerSessionOptions *options, GError **error);

/* Starts server profile P for OWNER (who may run servers: the front end
 * checked). BUSY if P's server runs, INVALID_ARGS for a client profile,
 * LIMIT past SHIMMER_MANAGED_SERVER_MAX, FAILED when it cannot start. */
ShimmerManagedServer *shimmer_manager_start_server(ShimmerManager *m, ShimmerProfile *p,
                                                   guint owner,
                                                   const ShimmerManagedServerOptions *options,
                                                   GError **error);
/* P's running server, or NULL. */
ShimmerManagedServer *shimmer_manager_get_active_server(ShimmerManager *m, ShimmerProfile *p);
/* Every server (ended ones while they linger), by id; a new array holding
 * references. */
GPtrArray *shimmer_manager_list_servers(ShimmerManager *m);

/* The profile's running session, or NULL. */
ShimmerSession *shimmer_manager_get_active_session(ShimmerManager *m, ShimmerProfile *p);
ShimmerProfile *shimmer_manager_find_profile(ShimmerManager *m, guint owner, const char *name);
/* The profiles or sessions of OWNER (all with G_MAXUINT), sorted by id; a
 * new array holding references. */
GPtrArray *shimmer_manager_list_profiles(ShimmerManager *m, guint owner);
GPtrArray *shimmer_manager_list_sessions(ShimmerManager *m, guint owner);

/* Orderly stop: no new sessions or servers, every session disconnects
 * (exit notification, routes and DNS reverted) and every server tells its
 * clients RESTART; after the grace time the rest are torn down. Calls
 * listener.stopped once all have ended. Calling it again tears down at
 * once. */
void shimmer_manager_stop(ShimmerManager *m);
gboolean shimmer_manager_is_stopping(ShimmerManager *m);

G_END_DECLS
