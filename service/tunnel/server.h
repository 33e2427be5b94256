/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"
#include "dispatch.h"

G_BEGIN_DECLS

/*
 * The server runner: one dispatcher (src/dispatch.h) on the GLib main loop
 * with one UDP socket (batched with recvmmsg/sendmmsg) or one TCP listener
 * and its connections, one tun device, and the tun's addresses and routes
 * (the server's networks, the `route` directives, and the networks behind
 * clients from iroute) set through rtnetlink and removed at the end.
 *
 * A front end drives it: it answers credential checks (auth_request, then
 * shimmer_server_auth_reply(), at once or later), may list, inspect and
 * kick clients, and stops it. `shimmerd --config server.conf` is one such
 * front end (shimmer_server_foreground_run()).
 */

typedef struct ShimmerServer ShimmerServer;

typedef struct {
    /* A log line (never holds a secret). */
    void (*log)(gpointer user, ShimmerLogLevel level, const char *message);
    /* A client's user name and password need checking (the configuration
     * names PAM, or the front end asked for it with check_credentials):
     * answer with shimmer_server_auth_reply(ID, ...). PASSWORD is only
     * valid during the call (copy it to answer later). NULL: every such
     * client is refused. */
    void (*auth_request)(gpointer user, guint64 id, const char *common_name, const char *username,
                         const char *password);
    /* A client came in / went away (may be NULL). */
    void (*client_connected)(gpointer user, guint64 id);
    void (*client_gone)(gpointer user, guint64 id, const char *reason);
    /* The server stopped (after shimmer_server_stop(), or FAILED when its
     * socket or tun broke). */
    void (*finished)(gpointer user, gboolean failed, const char *reason);
    gpointer user;
} ShimmerServerCallbacks;

typedef struct {
    /* The tun's name or pattern; NULL: from the configuration's `dev`. */
    const char *tun_name;
    /* Send user names and passwords to auth_request even without PAM in
     * the configuration. */
    gboolean check_credentials;
    /* Answers to first packets per second and the burst (0: defaults). */
    guint reset_rate;
    guint reset_burst;
    /* Every login goes to auth_request, also one without a user name and
     * password (USERNAME and PASSWORD NULL then): the front end decides
     * each (shimmer_dispatch_set_ask_every_login()). */
    gboolean ask_every_login;
    /* The rtnetlink protocol of the routes added (os/netcfg.h); 0:
     * RTPROT_STATIC. The daemon marks its own so that a crashed run's are
     * found. */
    guint8 route_protocol;
} ShimmerServerOptions;

/* CFG (a server configuration without errors) must outlive the server. */
ShimmerServer *shimmer_server_new(const ShimmerConfig *cfg, const ShimmerServerOptions *options,
                                  const ShimmerServerCallbacks *callbacks, GError **error);
void shimmer_server_free(ShimmerServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerServer, shimmer_server_free)

/* Opens the socket and the tun and configures the tun. */
gboolean shimmer_server_start(ShimmerServer *s, GError **error);
/* Sends RESTART to every client, waits until they acked (at most 3 s),
 * removes the configuration, then calls finished. */
void shimmer_server_stop(ShimmerServer *s);

void shimmer_server_auth_reply(ShimmerServer *s, guint64 id, ShimmerAuthDecision decision,
                               const char *reason);
/* Ends client ID's session (MESSAGE as shimmer_dispatch_kick()). */
gboolean shimmer_server_kick(ShimmerServer *s, guint64 id, const char *message);
GArray *shimmer_server_list_clients(ShimmerServer *s);
gboolean shimmer_server_get_client(ShimmerServer *s, guint64 id, ShimmerPeerInfo *out);
const char *shimmer_server_get_tun_name(ShimmerServer *s);
/* The address and port the server listens on ("[::]:1194"). */
const char *shimmer_server_get_listen_address(ShimmerServer *s);
ShimmerDispatch *shimmer_server_get_dispatch(ShimmerServer *s);

/* `shimmerd --config FILE` for a server configuration: runs it in the
 * foreground until SIGINT/SIGTERM (RESTART to the clients, then exit 0).
 * User names and passwords are checked with PAM when the configuration
 * names OpenVPN's PAM plugin. Returns the exit code: 0 stopped, 1 the
 * server failed, 2 it could not start. */
int shimmer_server_foreground_run(const ShimmerConfig *cfg, const char *file, gboolean verbose);

G_END_DECLS
