/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * The protocol engine: one OpenVPN session (client role today; the key-state
 * structures are shaped for the server role too). It does no I/O and reads no
 * clock: the caller feeds it transport packets, tun packets and the current
 * time (monotonic microseconds), and takes out packets to send, packets for
 * the tun, events, and the next deadline at which to call
 * shimmer_engine_handle_timeout().
 *
 * Transport: the engine never opens sockets. It emits SHIMMER_EVENT_CONNECT
 * naming the remote to try; the caller resolves and connects, then calls
 * shimmer_engine_transport_up() or shimmer_engine_transport_failed(). Packets
 * cross this interface without the TCP length prefix: the caller frames TCP
 * (see packet.h's splitter).
 *
 * The data path (shimmer_engine_encrypt() and a data packet through
 * shimmer_engine_recv()) allocates nothing and writes into the caller's
 * buffers.
 */

typedef struct ShimmerEngine ShimmerEngine;

typedef enum {
    SHIMMER_LOG_ERROR,
    SHIMMER_LOG_WARNING,
    SHIMMER_LOG_INFO,
    SHIMMER_LOG_DEBUG,
} ShimmerLogLevel;

typedef struct {
    /* Log lines; never contain secrets. May be NULL. */
    void (*log)(gpointer user, ShimmerLogLevel level, const char *message);
    /* Random bytes; NULL: GnuTLS's generator. */
    void (*random)(gpointer user, guint8 *buf, gsize len);
    gpointer user;
} ShimmerEngineHooks;

typedef enum {
    SHIMMER_STATE_IDLE,
    SHIMMER_STATE_CONNECTING,     /* waiting for a transport / the server's reset */
    SHIMMER_STATE_AUTHENTICATING, /* TLS handshake and key exchange */
    SHIMMER_STATE_GETTING_CONFIG, /* PUSH_REQUEST sent, waiting for PUSH_REPLY */
    SHIMMER_STATE_CONNECTED,
    SHIMMER_STATE_RECONNECTING,   /* waiting before the next attempt */
    SHIMMER_STATE_DISCONNECTING,  /* sending the exit notification */
    SHIMMER_STATE_DISCONNECTED,
    SHIMMER_STATE_FAILED,
} ShimmerState;

const char *shimmer_state_name(ShimmerState state);

typedef enum {
    /* The state changed; message says why. */
    SHIMMER_EVENT_STATE,
    /* Open a transport to connection[index]; close any previous one. */
    SHIMMER_EVENT_CONNECT,
    /* Close the transport (before a reconnect or at the end). */
    SHIMMER_EVENT_DISCONNECT_TRANSPORT,
    /* The tunnel's configuration arrived: configure the tun from
     * shimmer_engine_get_pushed(). Emitted again after a reconnect. */
    SHIMMER_EVENT_TUN_CONFIG,
    /* A user name and password are needed: call shimmer_engine_set_credentials().
     * The message says what: "password", "username and password", or, for a
     * server's dynamic challenge, "challenge:E:TEXT" (E 1 if the answer may
     * be echoed); the answer then goes as the password argument. */
    SHIMMER_EVENT_NEED_CREDENTIALS,
    /* The server refused the credentials; message holds its reason. */
    SHIMMER_EVENT_AUTH_FAILED,
    /* A message for the user (INFO from the server). */
    SHIMMER_EVENT_INFO,
    /* The session is over (state DISCONNECTED or FAILED): stop the loop. */
    SHIMMER_EVENT_EXIT,
} ShimmerEventType;

typedef struct {
    ShimmerEventType type;
    ShimmerState state;
    guint index;   /* CONNECT: the connection to open */
    char *message; /* owned by the event; free with shimmer_event_clear() */
} ShimmerEvent;

void shimmer_event_clear(ShimmerEvent *ev);

typedef struct {
    guint64 tun_bytes_in, tun_bytes_out;     /* plaintext from/to the tun */
    guint64 tun_packets_in, tun_packets_out;
    guint64 link_bytes_in, link_bytes_out;   /* transport bytes */
    guint64 dropped_auth;    /* failed authentication (data or control) */
    guint64 dropped_replay;  /* replayed or too old */
    guint64 dropped_malformed;
    guint64 dropped_no_key;  /* data for a key we do not have */
    guint64 reconnects;
    guint64 renegotiations;
} ShimmerEngineStats;

/* Creates a client engine for CFG, which must stay alive as long as the
 * engine. Fails if CFG has errors or its credentials do not load (wrong key
 * passphrase, ...). */
ShimmerEngine *shimmer_engine_new(const ShimmerConfig *cfg, const ShimmerEngineHooks *hooks,
                                  GError **error);
void shimmer_engine_free(ShimmerEngine *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerEngine, shimmer_engine_free)

/* The password a server with static-challenge expects: the password and
 * the user's RESPONSE to the challenge in OpenVPN's "SCRV1:b64:b64" form.
 * A secret: free with shimmer_str_free_secret(). */
char *shimmer_engine_static_challenge_password(const char *password, const char *response);

/* Private-key passphrase (askpass); call before start. */
void shimmer_engine_set_key_passphrase(ShimmerEngine *e, const char *passphrase);

/* Starts connecting: emits CONNECT (or NEED_CREDENTIALS first). */
void shimmer_engine_start(ShimmerEngine *e, gint64 now);

void shimmer_engine_set_credentials(ShimmerEngine *e, const char *username, const char *password,
                                    gint64 now);

/* The caller's transport to the remote named by the last CONNECT is ready
 * (UDP: socket connected; TCP: connection established). IS_TCP selects the
 * TCP behaviour (no explicit-exit-notify, ...). */
void shimmer_engine_transport_up(ShimmerEngine *e, gboolean is_tcp, gint64 now);

/* Opening the transport failed, or an established one broke (TCP reset,
 * ICMP error). The engine tries the next remote after a delay. */
void shimmer_engine_transport_failed(ShimmerEngine *e, const char *why, gint64 now);

typedef enum {
    SHIMMER_RECV_NONE, /* consumed (control, ping) or dropped */
    SHIMMER_RECV_TUN,  /* an IP packet for the tun is in the output buffer */
} ShimmerRecvResult;

/* One received transport packet. A data packet's plaintext goes to
 * TUN_OUT[0..*TUN_LEN); TUN_CAP should be at least the packet's length. */
ShimmerRecvResult shimmer_engine_recv(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now,
                                      guint8 *tun_out, gsize tun_cap, gsize *tun_len);

/* Encrypts one IP packet from the tun into OUT (OUT_CAP >= LEN + 64).
 * Returns the packet length, or 0 if it was dropped (not connected). */
gsize shimmer_engine_encrypt(ShimmerEngine *e, const guint8 *ip, gsize len, guint8 *out,
                             gsize out_cap, gint64 now);

/* Takes the next queued transport packet (control, ping, exit): copies it to
 * OUT and returns its length, or 0 if none is queued. */
gsize shimmer_engine_pop_packet(ShimmerEngine *e, guint8 *out, gsize out_cap);

/* Takes the next event; FALSE if none. Clear it with shimmer_event_clear(). */
gboolean shimmer_engine_pop_event(ShimmerEngine *e, ShimmerEvent *ev);

/* When to call shimmer_engine_handle_timeout() next; G_MAXINT64 for never. */
gint64 shimmer_engine_next_deadline(ShimmerEngine *e);
void shimmer_engine_handle_timeout(ShimmerEngine *e, gint64 now);

/* Ends the session: sends the exit notification (explicit-exit-notify) and
 * emits EXIT once it is out. */
void shimmer_engine_stop(ShimmerEngine *e, gint64 now);

ShimmerState shimmer_engine_get_state(const ShimmerEngine *e);
/* The configuration the server pushed, merged over continuation messages;
 * NULL before the first TUN_CONFIG. */
const ShimmerConfig *shimmer_engine_get_pushed(const ShimmerEngine *e);
const char *shimmer_engine_get_cipher(const ShimmerEngine *e);
const char *shimmer_engine_get_tls_version(const ShimmerEngine *e);
void shimmer_engine_get_stats(const ShimmerEngine *e, ShimmerEngineStats *out);
/* The connection the engine is on (index into cfg->connections). */
guint shimmer_engine_get_connection_index(const ShimmerEngine *e);
/* The MSS to clamp tunnelled TCP SYNs to (0: no clamping). */
guint shimmer_engine_get_mss(const ShimmerEngine *e, gboolean ipv6);

#define SHIMMER_ENGINE_ERROR (shimmer_engine_error_quark())
GQuark shimmer_engine_error_quark(void);

G_END_DECLS
