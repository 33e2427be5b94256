/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "engine.h"
#include "os/dns.h"
#include "profile.h"

G_BEGIN_DECLS

/*
 * One connection of a profile: the model behind org.shimmervpn.Session1,
 * running a ShimmerTunnel (tunnel/tunnel.h) on the main loop.
 *
 * The session parses its own copy of the profile's text, so the profile
 * may be removed or renamed while it runs. It reports upward through its
 * listener only: state changes (with the reason and, at the end, the
 * failure kind), the network configuration once the tunnel is up, the
 * counters once a second while they change, log lines, and requests for
 * credentials. Log lines also go to the daemon's log, with the session id,
 * profile name and owner uid as structured fields.
 */

/* Longest credential value accepted (a password, an OTP, a passphrase). */
#define SHIMMER_SESSION_MAX_SECRET 4096

typedef struct ShimmerSession ShimmerSession;

typedef enum {
    SHIMMER_SESSION_CHANGED_STATE = 1 << 0,    /* state, reason, failure kind */
    SHIMMER_SESSION_CHANGED_NETWORK = 1 << 1,  /* interface ... tls version */
    SHIMMER_SESSION_CHANGED_COUNTERS = 1 << 2, /* bytes, packets, reconnects */
    /* The server asks for a web sign-in: shimmer_session_get_web_auth()
     * has a new request (for the owner's eyes only: the URL may carry a
     * session secret). */
    SHIMMER_SESSION_CHANGED_WEB_AUTH = 1 << 3,
    /* A message from the server for the user (INFO, a CR_TEXT that needs
     * no answer): shimmer_session_get_message(). */
    SHIMMER_SESSION_CHANGED_MESSAGE = 1 << 4,
} ShimmerSessionChange;

/* What a person is asked for. FIELDS (NULL-terminated) in the order to ask:
 * "username", "password", "otp", "key-passphrase", or "response" alone for
 * a server's challenge, whose text is CHALLENGE (also the static
 * challenge's text with "otp"; "" if none); ECHO: the answer may be shown
 * while typed. KIND says which request it is: "password" (user name and
 * password, a static challenge's answer with them), "key-passphrase" (that
 * alone, or with the password), "dynamic-challenge" (CRV1: answered on a
 * new connection), "cr-text" (a pending login's CR_TEXT: answered on the
 * running one). */
typedef struct {
    const char *const *fields;
    const char *challenge;
    gboolean echo;
    const char *kind;
} ShimmerCredentialsRequest;

/* A web sign-in the server asks for (see ShimmerWebAuth in engine.h). */
typedef struct {
    const char *url;
    const char *kind;         /* "webauth" (WEB_AUTH) or "openurl" (OPEN_URL) */
    const char *const *flags; /* WEB_AUTH's flags, NULL-terminated */
    guint64 deadline;         /* Unix time in seconds when the login times out */
    guint timeout;            /* seconds from the request on */
} ShimmerSessionWebAuth;

typedef struct {
    void (*changed)(gpointer user, ShimmerSession *s, guint what);
    void (*log)(gpointer user, ShimmerSession *s, ShimmerLogLevel level, const char *line);
    void (*credentials_requested)(gpointer user, ShimmerSession *s,
                                  const ShimmerCredentialsRequest *request);
    /* The tunnel is down for good (state "disconnected" or "failed"). */
    void (*finished)(gpointer user, ShimmerSession *s);
    gpointer user;
} ShimmerSessionListener;

typedef struct {
    /* Set no addresses, routes or DNS: the caller does, from the network
     * configuration (NetworkManager). */
    gboolean no_netcfg;
    /* Shown only: the front end ends the session when its caller leaves. */
    gboolean bound_to_caller;
    /* Credentials given to Connect (copied; may be NULL). */
    const char *username;
    const char *password;
    /* The static challenge's answer, to go with PASSWORD (without it, a
     * profile with a static challenge asks for it). */
    const char *otp;
    const char *key_passphrase;
    /* The tun name pattern and the routes' protocol (os/netcfg.h). */
    const char *tun_pattern;
    guint8 route_protocol;
    /* Where DNS goes (not owned). */
    ShimmerDns *dns;
    /* Log debug lines too. */
    gboolean verbose;
} ShimmerSessionOptions;

/* Parses the profile's text and prepares the tunnel. Fails
 * (SHIMMER_SERVICE_ERROR) when the engine refuses the configuration, e.g.
 * a private key that does not decrypt with the given passphrase. */
ShimmerSession *shimmer_session_new(ShimmerProfile *profile, const char *id, guint owner,
                                    const ShimmerSessionOptions *options,
                                    const ShimmerSessionListener *listener, GError **error);
ShimmerSession *shimmer_session_ref(ShimmerSession *s);
void shimmer_session_unref(ShimmerSession *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerSession, shimmer_session_unref)

/* Starts connecting (or first asks for the private key's passphrase). */
void shimmer_session_start(ShimmerSession *s);
/* Disconnects (exit notification, tunnel torn down); WHY becomes the
 * reason. Nothing happens if it has ended already. */
void shimmer_session_stop(ShimmerSession *s, const char *why);
/* Tears the tunnel down at once, without waiting for the server. */
void shimmer_session_abort(ShimmerSession *s, const char *why);
/* Drops the connection and connects again (new TLS session). FAILED if the
 * session has ended or waits for credentials. */
gboolean shimmer_session_restart(ShimmerSession *s, const char *why, GError **error);
/* Answers the last credentials request: CREDS maps the requested field
 * names to values (secrets; not kept by CREDS' owner). INVALID_ARGS when a
 * requested field is missing or nothing was requested, FAILED when the
 * session has ended (or, with a key passphrase, the key does not open:
 * the session then ends too). */
gboolean shimmer_session_provide_credentials(ShimmerSession *s, GHashTable *creds, GError **error);

const char *shimmer_session_get_id(ShimmerSession *s);
guint shimmer_session_get_owner(ShimmerSession *s);
ShimmerProfile *shimmer_session_get_profile(ShimmerSession *s);
gboolean shimmer_session_is_finished(ShimmerSession *s);
gboolean shimmer_session_get_bound_to_caller(ShimmerSession *s);
gboolean shimmer_session_get_configure_network(ShimmerSession *s);

/* "connecting", "authenticating", "getting-config", "connected",
 * "web-sign-in" (the server waits for the user to sign in on a web page),
 * "reconnecting", "disconnecting", "disconnected", "failed". */
const char *shimmer_session_get_state(ShimmerSession *s);
const char *shimmer_session_get_state_reason(ShimmerSession *s);
/* "" unless failed: "auth-failed", "network-config", "connect-failed". */
const char *shimmer_session_get_failure_kind(ShimmerSession *s);
/* Seconds since the epoch; 0 when not connected. */
guint64 shimmer_session_get_connected_since(ShimmerSession *s);

/* The web sign-in the session waits for (state "web-sign-in"), NULL when
 * none. Valid until the next state change. */
const ShimmerSessionWebAuth *shimmer_session_get_web_auth(ShimmerSession *s);
/* The credentials request the session waits for, NULL when none. Valid
 * until the next state change. */
const ShimmerCredentialsRequest *shimmer_session_get_credentials_request(ShimmerSession *s);
/* The last message from the server (SHIMMER_SESSION_CHANGED_MESSAGE);
 * "" before the first. */
const char *shimmer_session_get_message(ShimmerSession *s);

/* The tunnel, while it is up ("" and empty lists otherwise). */
const char *shimmer_session_get_interface(ShimmerSession *s);
const char *shimmer_session_get_remote_address(ShimmerSession *s);
const char *shimmer_session_get_cipher(ShimmerSession *s);
const char *shimmer_session_get_tls_version(ShimmerSession *s);
const char *const *shimmer_session_get_addresses(ShimmerSession *s);
const char *const *shimmer_session_get_routes(ShimmerSession *s);
const char *const *shimmer_session_get_dns_servers(ShimmerSession *s);
const char *const *shimmer_session_get_dns_domains(ShimmerSession *s);
/* Session1.NetworkConfig (a{sv}); a new reference. */
GVariant *shimmer_session_dup_network_config(ShimmerSession *s);

typedef struct {
    guint64 bytes_in, bytes_out; /* in: out of the tunnel, to the tun */
    guint64 packets_in, packets_out;
    guint reconnects;
} ShimmerSessionCounters;
void shimmer_session_get_counters(ShimmerSession *s, ShimmerSessionCounters *out);

G_END_DECLS
