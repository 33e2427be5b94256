/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "engine.h"
#include "profile.h"

G_BEGIN_DECLS

/*
 * One running server of a server profile: the model behind
 * org.shimmervpn.Server1 and its Client1 children, around the server
 * runner (tunnel/server.h). ("ShimmerServer" is the runner's name, hence
 * ShimmerManagedServer.)
 *
 * The server parses its own copy of the profile's text, so the profile
 * may be removed or renamed while it runs. It reports upward through its
 * listener only: its state, the clients coming and going, their and its
 * counters at most once a second, log lines, and logins that wait for a
 * decision.
 *
 * Logins: certificates decide alone, or PAM too when the configuration
 * names OpenVPN's PAM plugin (the password checked in process, on a worker
 * thread). With SHIMMER_MANAGED_SERVER_AUTH_BUS each login then waits for
 * shimmer_managed_server_answer_auth(): the listener's auth_requested
 * tells the user name, common name and address, never the password. A
 * request not decided within hand-window is denied.
 */

/* Servers the daemon runs at once, whoever started them. */
#define SHIMMER_MANAGED_SERVER_MAX 16
/* The tun name pattern when the configuration names no device of its own
 * (`dev tun`). */
#define SHIMMER_MANAGED_SERVER_TUN_PATTERN "shimsrv%d"
/* Longest reason passed to a client (AUTH_FAILED, RESTART). */
#define SHIMMER_MANAGED_SERVER_MAX_REASON 200

typedef struct ShimmerManagedServer ShimmerManagedServer;

typedef enum {
    SHIMMER_MANAGED_SERVER_CHANGED_STATE = 1 << 0,    /* state and reason */
    SHIMMER_MANAGED_SERVER_CHANGED_COUNTERS = 1 << 1, /* counters, client count, statistics */
} ShimmerManagedServerChange;

typedef enum {
    SHIMMER_MANAGED_SERVER_AUTH_DEFAULT, /* certificates, and PAM if configured */
    SHIMMER_MANAGED_SERVER_AUTH_BUS,     /* then the front end decides each login */
} ShimmerManagedServerAuth;

/* A connected client as shown. Strings belong to the server; the struct
 * lives until client_removed returned. */
typedef struct {
    guint64 id;
    char *common_name; /* "" if none */
    char *username;    /* "" if none */
    char *real_address;
    GStrv virtual_addresses;
    char *cipher;
    guint64 bytes_in, bytes_out; /* in: from the client */
    guint64 packets_in, packets_out;
    guint64 connected_since; /* Unix time, seconds */
} ShimmerServedClient;

/* A login that waits for a decision. */
typedef struct {
    guint64 id; /* the client's id */
    const char *common_name;
    const char *username;
    const char *real_address;
    gboolean pam;     /* PAM accepted the password */
    guint64 deadline; /* Unix time, seconds */
    guint timeout;    /* seconds from the request on */
    gint64 requested; /* monotonic, for the order */
} ShimmerServerAuthRequest;

typedef struct {
    guint64 bytes_in, bytes_out; /* all clients' tunnel traffic, departed ones included */
    guint64 packets_in, packets_out;
} ShimmerManagedServerCounters;

typedef struct {
    void (*changed)(gpointer user, ShimmerManagedServer *s, guint what);
    void (*log)(gpointer user, ShimmerManagedServer *s, ShimmerLogLevel level, const char *line);
    void (*client_added)(gpointer user, ShimmerManagedServer *s, const ShimmerServedClient *c);
    /* Its counters changed. */
    void (*client_changed)(gpointer user, ShimmerManagedServer *s, const ShimmerServedClient *c);
    void (*client_removed)(gpointer user, ShimmerManagedServer *s, const ShimmerServedClient *c);
    void (*auth_requested)(gpointer user, ShimmerManagedServer *s,
                           const ShimmerServerAuthRequest *request);
    /* OUTCOME: "accepted", "denied", "timeout", "gone". */
    void (*auth_closed)(gpointer user, ShimmerManagedServer *s, guint64 request,
                        const char *outcome);
    /* The server ended (state "stopped" or "failed"); every client was
     * removed before. */
    void (*finished)(gpointer user, ShimmerManagedServer *s);
    gpointer user;
} ShimmerManagedServerListener;

typedef struct {
    ShimmerManagedServerAuth auth;
    /* The routes' rtnetlink protocol (os/netcfg.h). */
    guint8 route_protocol;
    gboolean verbose;
} ShimmerManagedServerOptions;

/* Parses PROFILE's text (a server configuration) and prepares the runner;
 * nothing is opened yet. SHIMMER_SERVICE_ERROR_INVALID_ARGS for a client
 * profile, FAILED when the runner refuses the configuration. */
ShimmerManagedServer *shimmer_managed_server_new(ShimmerProfile *profile, const char *id,
                                                 guint owner,
                                                 const ShimmerManagedServerOptions *options,
                                                 const ShimmerManagedServerListener *listener,
                                                 GError **error);
ShimmerManagedServer *shimmer_managed_server_ref(ShimmerManagedServer *s);
void shimmer_managed_server_unref(ShimmerManagedServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerManagedServer, shimmer_managed_server_unref)

/* Opens the socket and the tun and configures it; state "running".
 * FAILED (the runner's message) when it cannot: nothing stays open. */
gboolean shimmer_managed_server_start(ShimmerManagedServer *s, GError **error);
/* Tells every client RESTART and ends (at most 3 s later). WHY becomes
 * the reason. Nothing happens if it has ended or is ending. */
void shimmer_managed_server_stop(ShimmerManagedServer *s, const char *why);
/* Ends at once: the clients are not told. */
void shimmer_managed_server_abort(ShimmerManagedServer *s, const char *why);

/* Ends client ID's session (RESTART, with REASON for its log when not
 * empty). NOT_FOUND when there is no such client. */
gboolean shimmer_managed_server_kick(ShimmerManagedServer *s, guint64 id, const char *reason,
                                     GError **error);
/* Decides open request ID: SHIMMER_AUTH_ACCEPT, DENY (REASON to the
 * client) or PENDING (later; the client is told AUTH_PENDING). NOT_FOUND
 * when no such request is open. */
gboolean shimmer_managed_server_answer_auth(ShimmerManagedServer *s, guint64 id,
                                            ShimmerAuthDecision decision, const char *reason,
                                            GError **error);
/* The open requests, oldest first (const ShimmerServerAuthRequest*; valid
 * until the main loop runs again). */
GPtrArray *shimmer_managed_server_list_auth_requests(ShimmerManagedServer *s);

const char *shimmer_managed_server_get_id(ShimmerManagedServer *s);
guint shimmer_managed_server_get_owner(ShimmerManagedServer *s);
ShimmerProfile *shimmer_managed_server_get_profile(ShimmerManagedServer *s);
gboolean shimmer_managed_server_is_finished(ShimmerManagedServer *s);
/* "running", "stopping", "stopped", "failed" (before start: "stopped"). */
const char *shimmer_managed_server_get_state(ShimmerManagedServer *s);
const char *shimmer_managed_server_get_state_reason(ShimmerManagedServer *s);
/* "" until started. */
const char *shimmer_managed_server_get_interface(ShimmerManagedServer *s);
const char *shimmer_managed_server_get_listen_address(ShimmerManagedServer *s);
/* "udp" or "tcp". */
const char *shimmer_managed_server_get_protocol(ShimmerManagedServer *s);
const char *const *shimmer_managed_server_get_networks(ShimmerManagedServer *s);
/* "certificate", "pam", "bus", "pam+bus". */
const char *shimmer_managed_server_get_auth_mode(ShimmerManagedServer *s);
guint shimmer_managed_server_get_max_clients(ShimmerManagedServer *s);
guint shimmer_managed_server_get_client_count(ShimmerManagedServer *s);
guint64 shimmer_managed_server_get_started_since(ShimmerManagedServer *s);
void shimmer_managed_server_get_counters(ShimmerManagedServer *s,
                                         ShimmerManagedServerCounters *out);
/* The dispatcher's counters by name (see Server1.Statistics), in a fixed
 * order: NAMES and VALUES of *N entries, NAMES static. */
void shimmer_managed_server_get_statistics(ShimmerManagedServer *s, const char *const **names,
                                           guint64 *values, guint *n);
#define SHIMMER_MANAGED_SERVER_N_STATISTICS 13
/* The connected clients, oldest first (const ShimmerServedClient*). */
GPtrArray *shimmer_managed_server_list_clients(ShimmerManagedServer *s);
const ShimmerServedClient *shimmer_managed_server_get_client(ShimmerManagedServer *s, guint64 id);

G_END_DECLS
