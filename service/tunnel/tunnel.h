/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"
#include "os/dns.h"
#include "engine.h"

G_BEGIN_DECLS

/*
 * One tunnel run over real sockets and a tun device: the glue
 * between the engine (no I/O) and the OS. It resolves and connects to the
 * remotes the engine asks for, moves packets between the socket, the engine
 * and the tun, sets the tun's addresses, routes and DNS from the profile
 * and the pushed configuration (ipconfig.h decides what) and removes them
 * again when the session ends.
 *
 * It runs on the thread-default GMainContext; `shimmerd --config` and the
 * D-Bus service both drive it.
 */

typedef struct ShimmerTunnel ShimmerTunnel;

/* Why a session failed (shimmer_tunnel_get_failure()). */
typedef enum {
    SHIMMER_TUNNEL_FAILURE_NONE,           /* it did not (yet) */
    SHIMMER_TUNNEL_FAILURE_CONNECT,        /* anything not below */
    SHIMMER_TUNNEL_FAILURE_AUTH,           /* the server refused the credentials */
    SHIMMER_TUNNEL_FAILURE_NETWORK_CONFIG, /* the tun device or its configuration */
} ShimmerTunnelFailure;

typedef struct {
    /* A state change, with a reason (may be NULL). */
    void (*state_changed)(gpointer user, ShimmerState state, const char *reason);
    /* A log line (never holds a secret). */
    void (*log)(gpointer user, ShimmerLogLevel level, const char *message);
    /* Credentials are needed (NEED says which, and for a server's challenge
     * its text): answer with shimmer_tunnel_set_credentials(), a challenge
     * with the answer as the password. */
    void (*need_credentials)(gpointer user, const ShimmerNeedCredentials *need);
    /* The server holds the login open (AUTH_PENDING) for up to TIMEOUT_S
     * seconds. May be NULL. */
    void (*auth_pending)(gpointer user, guint timeout_s);
    /* The server asks for a web sign-in (WEB_AUTH / OPEN_URL): show the
     * URL, open it where that is possible; nothing is answered. May be
     * NULL (the URL is logged anyway). */
    void (*web_auth)(gpointer user, const ShimmerWebAuth *request);
    /* A message from the server for the user (INFO). May be NULL. */
    void (*info)(gpointer user, const char *text);
    /* The session is over; FAILED tells how it ended. */
    void (*finished)(gpointer user, gboolean failed, const char *reason);
    /* The tunnel's network configuration grew after it came up (a host-name
     * route was looked up): the routes and shimmer_tunnel_get_network_config()
     * changed. May be NULL. */
    void (*network_changed)(gpointer user);
    gpointer user;
} ShimmerTunnelCallbacks;

typedef struct {
    /* Do not configure addresses, routes and DNS (someone else does, e.g.
     * NetworkManager, from shimmer_tunnel_get_network_config()); the tun
     * is still created, gets its MTU and is brought up. */
    gboolean no_netcfg;
    /* rtm_protocol of the routes the client adds; 0: RTPROT_STATIC. The
     * daemon uses SHIMMER_NETCFG_RTPROT_SHIMMERD (netcfg.h). */
    guint8 route_protocol;
    /* Name or pattern of the tun ("tun%d" when NULL and the config says "tun"). */
    const char *tun_name;
    /* Where DNS settings go (pushed dhcp-option DNS/DNS6/DOMAIN/DOMAIN-SEARCH
     * and `dns` options). NULL: DNS is not configured and the pushed options
     * are only logged. Not owned; must outlive the client. Unused with
     * no_netcfg. */
    ShimmerDns *dns;
    /* Credentials given before the start (copied by shimmer_tunnel_new(),
     * which does not keep these pointers): the user name and password used
     * when the profile asks for them (auth-user-pass without stored
     * credentials). NULL: not given; the need_credentials callback asks.
     * A private key's passphrase goes into the configuration instead:
     * shimmer_tunnel_config_set_key_passphrase(). */
    const char *username;
    const char *password;
} ShimmerTunnelOptions;

/* The engine reads the private key when the client is created, so its
 * passphrase must be in CFG by then: this puts PASSPHRASE there as if an
 * askpass file had held it (a secret: wiped when CFG is freed). Call
 * before shimmer_tunnel_new(). */
void shimmer_tunnel_config_set_key_passphrase(ShimmerConfig *cfg, const char *passphrase);

/* CFG must outlive the client. */
ShimmerTunnel *shimmer_tunnel_new(const ShimmerConfig *cfg, const ShimmerTunnelOptions *options,
                                  const ShimmerTunnelCallbacks *callbacks, GError **error);
void shimmer_tunnel_free(ShimmerTunnel *c);

/* The descriptors one tunnel holds at most, with the data path this
 * process's $SHIMMER_DATAPATH gives: the data path's, the socket to the
 * server (or a proxy's, or a SOCKS relay's pair end and its control
 * connection) and a netlink socket while the network is configured. */
guint shimmer_tunnel_max_descriptors(void);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerTunnel, shimmer_tunnel_free)

void shimmer_tunnel_start(ShimmerTunnel *c);
/* Sends the exit notification, tears the tunnel down, then calls finished. */
void shimmer_tunnel_stop(ShimmerTunnel *c);
void shimmer_tunnel_set_credentials(ShimmerTunnel *c, const char *username, const char *password);
/* Only for engines that read the key after creation; see
 * shimmer_tunnel_config_set_key_passphrase(). */
void shimmer_tunnel_set_key_passphrase(ShimmerTunnel *c, const char *passphrase);

ShimmerEngine *shimmer_tunnel_get_engine(ShimmerTunnel *c);
/* The tun's name once created, else NULL. */
const char *shimmer_tunnel_get_tun_name(ShimmerTunnel *c);
/* The address of the remote in use, as text, else NULL. */
const char *shimmer_tunnel_get_remote_address(ShimmerTunnel *c);

/* The tunnel's network configuration from the profile and the push, as
 * Session1.NetworkConfig (a{sv}), whether or not it was applied (see
 * no_netcfg): computed when the tunnel is configured, before the state
 * becomes CONNECTED, and kept until the next time. An empty a{sv} before
 * the first time. A new reference. */
GVariant *shimmer_tunnel_get_network_config(ShimmerTunnel *c);

/* Why the session failed, once the finished callback said it did; NONE
 * before and for sessions that ended normally. */
ShimmerTunnelFailure shimmer_tunnel_get_failure(ShimmerTunnel *c);

/* Drops the connection and connects again, as after a transport failure
 * (new TLS session; the engine picks the next remote after its usual
 * connect-retry pause). WHY is logged. Does nothing once finished. */
void shimmer_tunnel_restart(ShimmerTunnel *c, const char *why);

/* What the running tunnel applied, NULL-terminated, empty (never NULL)
 * when the tunnel is not configured. Valid until the next state change.
 * Addresses as "10.8.0.2/24" and "fd00::1000/64" ("local/32" for a
 * point-to-point IPv4 address); routes as "10.9.0.0/16", "0.0.0.0/1",
 * "::/1"; DNS servers as address strings; DNS domains as search domains,
 * "~" before routing-only domains. DNS lists are empty unless the DNS
 * settings were applied. */
const char *const *shimmer_tunnel_get_addresses(ShimmerTunnel *c);
const char *const *shimmer_tunnel_get_routes(ShimmerTunnel *c);
const char *const *shimmer_tunnel_get_dns_servers(ShimmerTunnel *c);
const char *const *shimmer_tunnel_get_dns_domains(ShimmerTunnel *c);

G_END_DECLS
