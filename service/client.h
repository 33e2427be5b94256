/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"
#include "engine.h"

G_BEGIN_DECLS

/*
 * One client session run over real sockets and a tun device: the glue
 * between the engine (no I/O) and the OS. It resolves and connects to the
 * remotes the engine asks for, moves packets between the socket, the engine
 * and the tun, sets the tun's addresses and routes from the pushed
 * configuration and removes them again when the session ends.
 *
 * It runs on the thread-default GMainContext; `shimmerd --config` and the
 * D-Bus service both drive it.
 */

typedef struct ShimmerClient ShimmerClient;

typedef struct {
    /* A state change, with a reason (may be NULL). */
    void (*state_changed)(gpointer user, ShimmerState state, const char *reason);
    /* A log line (never holds a secret). */
    void (*log)(gpointer user, ShimmerLogLevel level, const char *message);
    /* Credentials are needed: answer with shimmer_client_set_credentials(). */
    void (*need_credentials)(gpointer user, const char *what);
    /* The session is over; FAILED tells how it ended. */
    void (*finished)(gpointer user, gboolean failed, const char *reason);
    gpointer user;
} ShimmerClientCallbacks;

typedef struct {
    /* Do not configure addresses and routes (someone else does, e.g.
     * NetworkManager); the tun is still created. */
    gboolean no_netcfg;
    /* Name or pattern of the tun ("tun%d" when NULL and the config says "tun"). */
    const char *tun_name;
} ShimmerClientOptions;

/* CFG must outlive the client. */
ShimmerClient *shimmer_client_new(const ShimmerConfig *cfg, const ShimmerClientOptions *options,
                                  const ShimmerClientCallbacks *callbacks, GError **error);
void shimmer_client_free(ShimmerClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerClient, shimmer_client_free)

void shimmer_client_start(ShimmerClient *c);
/* Sends the exit notification, tears the tunnel down, then calls finished. */
void shimmer_client_stop(ShimmerClient *c);
void shimmer_client_set_credentials(ShimmerClient *c, const char *username, const char *password);
void shimmer_client_set_key_passphrase(ShimmerClient *c, const char *passphrase);

ShimmerEngine *shimmer_client_get_engine(ShimmerClient *c);
/* The tun's name once created, else NULL. */
const char *shimmer_client_get_tun_name(ShimmerClient *c);
/* The address of the remote in use, as text, else NULL. */
const char *shimmer_client_get_remote_address(ShimmerClient *c);

G_END_DECLS
