/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"
#include "engine.h"

G_BEGIN_DECLS

/*
 * The server's dispatcher: the listening side of one server for many
 * clients, I/O-free like the engine. The caller owns one UDP socket (or a
 * TCP listener and its connections) and one tun device; it feeds the
 * dispatcher datagrams with their source address and packets from the tun,
 * and sends what comes out to the address the dispatcher names.
 *
 * First packets keep no state. A client's hard reset is answered at once
 * with HARD_RESET_SERVER_V2 whose session id is a cookie: HMAC-SHA256 over
 * the time slot (hand-window / 2 seconds), the client's address and port and
 * its session id, under a key drawn for this run, cut to 8 bytes. Only the
 * client's next packet (an ACK_V1, CONTROL_V1 or CONTROL_WKC_V1 acking the
 * reset and echoing a cookie of the current or one of the two previous
 * slots) creates a client, i.e. a server engine (engine.h). tls-auth,
 * tls-crypt and tls-crypt-v2 are checked before anything is kept;
 * tls-crypt-v2 answers early negotiation (the resend-WKc flag) and honours
 * tls-crypt-v2-max-age. A token bucket bounds how many first packets are
 * answered per second, so the server is no reflector and a flood costs
 * nothing but CPU.
 *
 * Routing: DATA_V2 by its peer id (an array), other packets by address and
 * client session id (a hash); a client whose address changed follows once
 * one of its data packets authenticated there (float, UDP only). Tunnel
 * packets go to the client owning their destination: its own addresses and
 * the networks behind it (iroute) by longest prefix. With client-to-client,
 * packets between clients are forwarded here; otherwise they go to the tun
 * and the kernel decides. A client's packets must come from its own
 * addresses or networks.
 *
 * Clients get their addresses from the pools or their client-config-dir
 * file (the caller reads it: ShimmerDispatchHooks.load_ccd), which may also
 * disable them; max-clients, duplicate-cn and ccd-exclusive apply.
 *
 * The loop is the engine's: after every call that takes NOW, call
 * shimmer_dispatch_write_pkt() until it returns 0 and send each packet to
 * the address it names, take the events, and arm the timer at
 * shimmer_dispatch_next_deadline().
 *
 * Nothing received, from anyone, aborts the process; input is dropped and
 * counted.
 */

typedef struct ShimmerDispatch ShimmerDispatch;

/* A transport address as plain values: FAMILY 4 (ADDR[0..4)) or 6, the
 * port in host order. Zero the whole struct before filling it: it is
 * hashed and compared as bytes. For TCP, the connection's peer address. */
typedef struct {
    guint8 family;
    guint8 pad;
    guint16 port;
    guint32 scope_id;
    guint8 addr[16];
} ShimmerLinkAddr;

/* "10.0.0.1:1194" or "[fd00::1]:1194" into BUF (at least 64 bytes). */
const char *shimmer_link_addr_to_string(const ShimmerLinkAddr *a, char *buf, gsize size);

typedef struct {
    void (*log)(gpointer user, ShimmerLogLevel level, const char *message);
    /* NULL: GnuTLS's generator. */
    gboolean (*random)(gpointer user, guint8 *buf, gsize len);
    /* The wall clock in seconds (certificates, tokens, tls-crypt-v2
     * metadata). Required. */
    gint64 (*realtime)(gpointer user);
    /* The client-config-dir file for a client's COMMON_NAME, parsed; NULL
     * when there is none (or no client-config-dir). The dispatcher frees
     * it. May be NULL. */
    ShimmerCcd *(*load_ccd)(gpointer user, const char *common_name);
    gpointer user;
} ShimmerDispatchHooks;

typedef enum {
    /* A client is in: its push reply is out and its keys installed. */
    SHIMMER_DISPATCH_EVENT_CONNECTED,
    /* A client that was CONNECTED is gone (reason says why). */
    SHIMMER_DISPATCH_EVENT_GONE,
    /* A client's user name and password need checking (only when the
     * caller checks credentials, see shimmer_dispatch_set_check_credentials):
     * answer with shimmer_dispatch_auth_reply(). */
    SHIMMER_DISPATCH_EVENT_AUTH_REQUEST,
    /* A client's address changed (float). */
    SHIMMER_DISPATCH_EVENT_FLOATED,
} ShimmerDispatchEventType;

/* One event; strings belong to it: shimmer_dispatch_event_clear(). */
typedef struct {
    ShimmerDispatchEventType type;
    /* The client: unique for the run (the peer id is reused). */
    guint64 id;
    guint32 peer_id;
    ShimmerLinkAddr addr;
    char *common_name;
    char *username;
    char *password; /* AUTH_REQUEST; a secret, wiped by clear */
    char *reason;   /* GONE */
} ShimmerDispatchEvent;

void shimmer_dispatch_event_clear(ShimmerDispatchEvent *ev);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ShimmerDispatchEvent, shimmer_dispatch_event_clear)

typedef enum {
    /* OUT holds an IP packet for the tun. */
    SHIMMER_DISPATCH_TUN,
    /* OUT holds a packet to send to *TO (a stateless answer, or a packet
     * forwarded between clients). */
    SHIMMER_DISPATCH_LINK,
    /* Taken; nothing to hand on. */
    SHIMMER_DISPATCH_CONSUMED,
    /* Dropped (counted in the statistics). */
    SHIMMER_DISPATCH_DROPPED,
} ShimmerDispatchResult;

typedef struct {
    guint64 resets_answered; /* stateless answers to hard resets */
    guint64 resets_limited;  /* first packets not answered: over the rate */
    guint64 first_invalid;   /* first packets that failed wrapping or parsing */
    guint64 bad_cookie;      /* packets whose cookie did not check */
    guint64 refused_full;    /* max-clients reached */
    guint64 refused_expired; /* tls-crypt-v2 client key older than max-age */
    guint64 peers_created;
    guint64 no_peer; /* packets for no client */
    guint64 floats;
    guint64 bad_source;       /* tunnel packets from an address not the client's */
    guint64 no_route;         /* tun packets for no client */
    guint64 forwarded;        /* client-to-client */
    guint64 dropped_by_peers; /* dropped by a client's engine */
} ShimmerDispatchStats;

/* What a client looks like from outside (shimmer_dispatch_get_peer()).
 * Strings and arrays belong to the dispatcher: valid until the next call
 * that takes NOW. */
typedef struct {
    guint64 id;
    guint32 peer_id;
    ShimmerLinkAddr addr;
    ShimmerState state;
    const char *common_name;
    const char *username;
    const char *ipv4; /* its tunnel addresses as text, or NULL */
    const char *ipv6;
    const char *cipher;
    const GPtrArray *iroutes; /* char*: "10.9.0.0/24", "fd00:9::/64" */
    gint64 created;           /* monotonic microseconds */
    gint64 connected;         /* 0 until CONNECTED */
    ShimmerEngineStats stats;
} ShimmerPeerInfo;

/* A dispatcher for the server configuration CFG (which must outlive it):
 * loads the credentials once for every client. Fails (NULL, ERROR) for a
 * configuration that is not a usable server's or credentials that do not
 * load. */
ShimmerDispatch *shimmer_dispatch_new(const ShimmerConfig *cfg, const ShimmerDispatchHooks *hooks,
                                      GError **error);
/* Frees every client without sending anything (see shimmer_dispatch_stop). */
void shimmer_dispatch_free(ShimmerDispatch *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerDispatch, shimmer_dispatch_free)

/* First packets answered per second and the burst allowed (defaults 100
 * and 200, or what the configuration's connect-freq-initial MAX SECONDS
 * says: MAX / SECONDS per second, bursts of MAX). */
void shimmer_dispatch_set_rate_limit(ShimmerDispatch *d, guint per_second, guint burst);
/* Whether user names and passwords go to the caller (AUTH_REQUEST events);
 * on by default when the configuration names PAM. Off: certificates alone
 * decide. */
void shimmer_dispatch_set_check_credentials(ShimmerDispatch *d, gboolean check);
/* Whether every login goes to the caller as AUTH_REQUEST, also one
 * without a user name and password (USERNAME and PASSWORD NULL then), for
 * a caller that decides on other grounds (a person asked over D-Bus).
 * Logins with an auth-gen-token token are still taken without asking;
 * with check_credentials a missing password is refused first, unless
 * auth-user-pass-optional. Off by default. */
void shimmer_dispatch_set_ask_every_login(ShimmerDispatch *d, gboolean ask);

/* One datagram PKT[0..LEN) from FROM. OUT (CAP bytes, at least
 * SHIMMER_ENGINE_MAX_PACKET) receives what the result says. */
ShimmerDispatchResult shimmer_dispatch_recv(ShimmerDispatch *d, const ShimmerLinkAddr *from,
                                            const guint8 *pkt, gsize len, gint64 now, guint8 *out,
                                            gsize cap, gsize *out_len, ShimmerLinkAddr *to);

/* One IP packet from the tun, encrypted for the client owning its
 * destination into OUT: SHIMMER_DISPATCH_LINK with *TO, or DROPPED. */
ShimmerDispatchResult shimmer_dispatch_encrypt(ShimmerDispatch *d, const guint8 *ip, gsize len,
                                               gint64 now, guint8 *out, gsize cap, gsize *out_len,
                                               ShimmerLinkAddr *to);

/* The next packet due (control, acks, pings, exit messages) into BUF
 * (at least SHIMMER_ENGINE_MAX_PACKET), for *TO; 0 when none is due. */
gssize shimmer_dispatch_write_pkt(ShimmerDispatch *d, guint8 *buf, gsize cap, ShimmerLinkAddr *to,
                                  gint64 now);
gboolean shimmer_dispatch_pop_event(ShimmerDispatch *d, ShimmerDispatchEvent *ev);
gint64 shimmer_dispatch_next_deadline(ShimmerDispatch *d);
void shimmer_dispatch_handle_timeout(ShimmerDispatch *d, gint64 now);

/* Answers AUTH_REQUEST ID (see ShimmerAuthDecision). Ignored for a client
 * that is gone or did not ask. */
void shimmer_dispatch_auth_reply(ShimmerDispatch *d, guint64 id, ShimmerAuthDecision decision,
                                 const char *reason, gint64 now);
/* Sends client ID MESSAGE (NULL: "RESTART"; "HALT" keeps it away) and
 * ends its session. FALSE when there is no such client. */
gboolean shimmer_dispatch_kick(ShimmerDispatch *d, guint64 id, const char *message, gint64 now);
/* The transport of FROM went away (a TCP connection closed): its clients
 * are gone, without a word. */
void shimmer_dispatch_link_closed(ShimmerDispatch *d, const ShimmerLinkAddr *from, gint64 now);
/* The server stops: every client is sent RESTART and let go once it acked
 * (or 2 s passed); no new client is taken. Done when
 * shimmer_dispatch_get_n_peers() is 0. */
void shimmer_dispatch_stop(ShimmerDispatch *d, gint64 now);

guint shimmer_dispatch_get_n_peers(const ShimmerDispatch *d);
/* The ids of the clients, oldest first. */
GArray *shimmer_dispatch_list_peers(const ShimmerDispatch *d);
gboolean shimmer_dispatch_get_peer(const ShimmerDispatch *d, guint64 id, ShimmerPeerInfo *out);
/* Only what routes to client ID: its tunnel addresses (NULL: none) and its
 * iroutes (NULL or prefix texts), valid until the client changes. Cheap:
 * no counters gathered (a route view is rebuilt over every client). */
gboolean shimmer_dispatch_get_peer_routes(const ShimmerDispatch *d, guint64 id, const char **ipv4,
                                          const char **ipv6, const GPtrArray **iroutes);
void shimmer_dispatch_get_stats(const ShimmerDispatch *d, ShimmerDispatchStats *out);
/* Data planes with N_LANES lanes for the clients' engines from now on
 * (shimmer_engine_set_lanes(): a runner with worker threads). */
void shimmer_dispatch_set_lanes(ShimmerDispatch *d, guint n_lanes);

/*
 * Handshakes on other threads. With offload on, the TLS work of a client
 * that is not in yet (its handshake, key exchange and authentication) is
 * not done inside shimmer_dispatch_recv(): its control packets wait on it,
 * and it becomes a job. After every call that takes NOW, the caller takes
 * the jobs (shimmer_dispatch_take_job() until NULL), runs each with
 * shimmer_dispatch_job_run() on any thread, and hands it back with
 * shimmer_dispatch_job_done() on the dispatcher's thread. A job touches
 * its own client's engine only (and the credentials all clients share,
 * read-only); the engine's log lines reach the log hook at job_done.
 * Meanwhile the dispatcher leaves that client be: its timers wait, a kick,
 * an answer to its credentials or a stop is applied when the job is done,
 * its data packets are dropped, shimmer_dispatch_get_peer() shows it as
 * authenticating. Once a client is in, its packets are handled inline
 * again (renegotiations included). The dispatcher starts no thread and
 * stays single-threaded; every job taken must be done before
 * shimmer_dispatch_free(). Off by default.
 */
typedef struct ShimmerDispatchJob ShimmerDispatchJob;
void shimmer_dispatch_set_offload(ShimmerDispatch *d, gboolean offload);
/* The next client whose packets wait, as a job; NULL: none. */
ShimmerDispatchJob *shimmer_dispatch_take_job(ShimmerDispatch *d);
/* Any thread; NOW is that thread's monotonic time. */
void shimmer_dispatch_job_run(ShimmerDispatchJob *job, gint64 now);
/* The dispatcher's thread; frees JOB. Then write_pkt, events and the
 * deadline as after any call. */
void shimmer_dispatch_job_done(ShimmerDispatch *d, ShimmerDispatchJob *job, gint64 now);
/* Client ID's data plane (engine.h), owned by its engine: take a reference
 * to keep it. NULL for no such client. */
ShimmerDataPlane *shimmer_dispatch_get_dataplane(const ShimmerDispatch *d, guint64 id);
/* The MSS to clamp tunnelled TCP SYNs to (mssfix; 0: no clamping). */
guint shimmer_dispatch_get_mss(const ShimmerDispatch *d, gboolean ipv6);
/* Routes the caller must lead into the tun for the clients' networks
 * (iroute), as "10.9.0.0/24": changed after CONNECTED and GONE events. */
GPtrArray *shimmer_dispatch_list_iroutes(const ShimmerDispatch *d);

G_END_DECLS
