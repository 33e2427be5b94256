/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "daemon.h"

G_BEGIN_DECLS

/*
 * One connection: org.shimmervpn.Session1 at /org/shimmervpn/session/<id>,
 * wrapping a ShimmerTunnel (client.h) that runs on the daemon's main loop.
 *
 * The session parses its own copy of the profile's text, so the profile
 * may be removed or renamed while it runs. Its properties follow the
 * client: State/StateReason at every change (FailureKind with "failed");
 * Interface, NetworkConfig, addresses, routes, DNS, cipher and TLS version
 * when the tunnel comes up, before State says "connected"; the counters
 * once a second while they change. Log lines go to the daemon's log (with the
 * session id, profile name and owner uid as structured fields) and, as Log
 * signals, only to the bus names of the owner's uid that called the daemon
 * (see shimmer_daemon_dup_names_of_uid()). After the session ended, the
 * object stays for SHIMMER_SESSION_LINGER_SECONDS so that clients can read
 * the final State and StateReason, then it is removed.
 */

#define SHIMMER_SESSION_LINGER_SECONDS 5
/* Longest credential value accepted (a password, an OTP, a passphrase). */
#define SHIMMER_SESSION_MAX_SECRET 4096

typedef struct {
    /* End the session when the bus name CALLER leaves the bus. */
    gboolean bound_to_caller;
    const char *caller;
    /* Set no addresses, routes or DNS: the caller does, from
     * NetworkConfig (Connect's "configure-network" false, NetworkManager). */
    gboolean no_netcfg;
    /* Credentials given to Connect (copied; may be NULL). */
    const char *username;
    const char *password;
    const char *key_passphrase;
} ShimmerSessionOptions;

/* Parses the profile's text and prepares the client. Fails (an
 * org.shimmervpn.Error) when the engine refuses the configuration, e.g. a
 * private key that does not decrypt with the given passphrase. */
ShimmerSession *shimmer_session_new(ShimmerDaemon *d, ShimmerProfile *profile, guint owner,
                                    const ShimmerSessionOptions *options, GError **error);

/* Starts connecting (or first asks for the private key's passphrase). Call
 * once the session is exported. */
void shimmer_session_start(ShimmerSession *s);

/* Disconnects (exit notification, tunnel torn down); WHY becomes the
 * StateReason. Nothing happens if it has ended already. */
void shimmer_session_stop(ShimmerSession *s, const char *why);
/* Tears the tunnel down at once, without waiting for the server. */
void shimmer_session_abort(ShimmerSession *s, const char *why);

gboolean shimmer_session_is_finished(ShimmerSession *s);
const char *shimmer_session_get_id(ShimmerSession *s);
const char *shimmer_session_get_path(ShimmerSession *s);
guint shimmer_session_get_owner(ShimmerSession *s);
GDBusObjectSkeleton *shimmer_session_get_object(ShimmerSession *s);

ShimmerSession *shimmer_session_ref(ShimmerSession *s);
void shimmer_session_unref(ShimmerSession *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerSession, shimmer_session_unref)

G_END_DECLS
