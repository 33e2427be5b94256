/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"
#include "webauth.h"

G_BEGIN_DECLS

/*
 * The protocol engine: one OpenVPN session, in the client role today (the
 * core is role-neutral, see engine-core.h). It does no I/O, reads no clock
 * and draws no randomness of its own: the caller feeds it transport
 * packets, tun packets and the time, and takes out packets to send, packets
 * for the tun, events and the next deadline. The shape is ngtcp2's.
 *
 * Time: every NOW is monotonic microseconds (g_get_monotonic_time()) and
 * never goes back. The wall clock, needed only to judge certificate
 * validity, comes from ShimmerEngineHooks.realtime.
 *
 * The loop. After every call that takes NOW (recv, handle_timeout, start,
 * set_credentials, transport_up, transport_failed, stop) the caller
 *   1. calls shimmer_engine_write_pkt() until it returns 0 and sends each
 *      packet (control packets, acks, keepalive pings, exit notifications
 *      are built only then, straight into the caller's buffer);
 *   2. takes every event with shimmer_engine_pop_event();
 *   3. arms its timer at shimmer_engine_next_deadline(); when it fires,
 *      calls shimmer_engine_handle_timeout() and goes back to 1.
 * A deadline at or before NOW means "now"; packets that fall due (a
 * retransmission, a ping) are part of the deadline and come out of step 1.
 * Packets are written first: a DISCONNECT_TRANSPORT or EXIT event may
 * follow the last packets of the old transport.
 *
 * Transport: the engine never opens sockets. It emits SHIMMER_EVENT_CONNECT
 * naming the remote to try; the caller resolves and connects, then calls
 * shimmer_engine_transport_up() or shimmer_engine_transport_failed().
 * Packets cross this interface without the TCP length prefix: the caller
 * frames TCP (see packet.h's splitter).
 *
 * The data path (shimmer_engine_encrypt() and a data packet through
 * shimmer_engine_recv()) allocates nothing and writes into the caller's
 * buffers.
 *
 * Nothing a peer sends, nothing in a profile and no argument value a caller
 * passes (lengths, buffer sizes, calls in the wrong state) aborts the
 * process: bad input is dropped and counted, calls that do not fit the
 * state do nothing, and what cannot go on fails the session with a reason.
 * Only pointers are trusted (an engine that is not one, a NULL buffer).
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
    /* Fills BUF with LEN random bytes; FALSE when it cannot, which fails
     * the session ("no random numbers ..."). NULL: GnuTLS's generator. */
    gboolean (*random)(gpointer user, guint8 *buf, gsize len);
    /* The wall clock, seconds since 1970-01-01 UTC: certificate validity
     * (notBefore/notAfter of the peer's chain up to its root CA, and
     * thisUpdate/nextUpdate of the CRLs that apply) is judged against it.
     * Required when the profile has a CA (shimmer_engine_new() fails
     * without it); the engine reads no clock of its own. */
    gint64 (*realtime)(gpointer user);
    gpointer user;
} ShimmerEngineHooks;

typedef enum {
    SHIMMER_STATE_IDLE,
    SHIMMER_STATE_CONNECTING,     /* waiting for a transport / the server's reset */
    SHIMMER_STATE_AUTHENTICATING, /* TLS handshake and key exchange */
    SHIMMER_STATE_GETTING_CONFIG, /* PUSH_REQUEST sent, waiting for PUSH_REPLY */
    SHIMMER_STATE_CONNECTED,
    SHIMMER_STATE_RECONNECTING,  /* waiting before the next attempt */
    SHIMMER_STATE_DISCONNECTING, /* sending the exit notification */
    SHIMMER_STATE_DISCONNECTED,
    SHIMMER_STATE_FAILED,
} ShimmerState;

/* "idle", "connecting", ...; "?" for values outside the enum. */
const char *shimmer_state_to_string(ShimmerState state);

/* ---- events ---- */

typedef enum {
    /* The state changed (ev.state is the new one); state_change.reason says
     * why, or is NULL. */
    SHIMMER_EVENT_STATE,
    /* Open a transport to connection connect.index (connect.host, the
     * profile's host name or address); close any previous one. */
    SHIMMER_EVENT_CONNECT,
    /* Close the transport (before a reconnect or at the end). */
    SHIMMER_EVENT_DISCONNECT_TRANSPORT,
    /* The tunnel's configuration arrived: configure the tun from
     * shimmer_engine_get_pushed(). Emitted again after a reconnect. */
    SHIMMER_EVENT_TUN_CONFIG,
    /* Credentials are needed (credentials.kind says which): answer with
     * shimmer_engine_set_credentials(). */
    SHIMMER_EVENT_NEED_CREDENTIALS,
    /* The server refused the credentials; auth_failed.reason is its
     * reason ("" if it gave none). The session then fails. */
    SHIMMER_EVENT_AUTH_FAILED,
    /* A message for the user from the server: info.text. */
    SHIMMER_EVENT_INFO,
    /* The session is over (ev.state DISCONNECTED or FAILED); exit.reason
     * says why. Stop the loop. */
    SHIMMER_EVENT_EXIT,
    /* Server role: the client asks to be let in (its first key-method
     * record arrived): decide with shimmer_engine_server_set_client() and
     * shimmer_engine_auth_reply(). auth_request has the certificate's
     * common name and what the client sent as user name and password. */
    SHIMMER_EVENT_AUTH_REQUEST,
    /* The server holds the login open (AUTH_PENDING): it waits for
     * something outside the tunnel, a web sign-in or a CR_TEXT answer,
     * that WEB_AUTH or NEED_CREDENTIALS (kind CR_TEXT) announce.
     * auth_pending.timeout_s is how long the engine waits for the server
     * to decide (the server's timeout, capped as OpenVPN caps it) and
     * auth_pending.deadline when that is over (monotonic µs). */
    SHIMMER_EVENT_AUTH_PENDING,
    /* The server asks the user to sign in on a web page (INFO_PRE or INFO
     * with OPEN_URL:url or WEB_AUTH:flags:url): show web_auth.url, open
     * it in a browser where that is possible. Nothing is answered to the
     * engine: the server lets the session in (PUSH_REPLY) or refuses it
     * (AUTH_FAILED), or the engine gives up at web_auth.deadline. */
    SHIMMER_EVENT_WEB_AUTH,
} ShimmerEventType;

typedef enum {
    /* The password; the user name is known. */
    SHIMMER_CREDENTIALS_PASSWORD,
    /* User name and password. */
    SHIMMER_CREDENTIALS_USERNAME_PASSWORD,
    /* The answer to the server's dynamic challenge (text, echo), given as
     * the password; the user name is ignored. */
    SHIMMER_CREDENTIALS_CHALLENGE,
    /* The answer to a CR_TEXT challenge of a pending login (text, echo,
     * response_required), given as the password; it goes to the server as
     * CR_RESPONSE on the running session. Without response_required the
     * text is for the user only and nothing needs answering. */
    SHIMMER_CREDENTIALS_CR_TEXT,
} ShimmerCredentialsKind;

typedef struct {
    ShimmerCredentialsKind kind;
    /* CHALLENGE, CR_TEXT: the server's question; NULL otherwise. */
    char *text;
    /* CHALLENGE, CR_TEXT: the answer may be shown as it is typed. */
    gboolean echo;
    /* CR_TEXT: the server waits for an answer (flag R). TRUE for the other
     * kinds. */
    gboolean response_required;
} ShimmerNeedCredentials;

/* How the server asked for a web sign-in. */
typedef enum {
    SHIMMER_WEB_AUTH_OPEN_URL, /* OPEN_URL:url (deprecated, no flags) */
    SHIMMER_WEB_AUTH_WEB_AUTH, /* WEB_AUTH:flags:url */
} ShimmerWebAuthKind;

typedef struct {
    ShimmerWebAuthKind kind;
    /* A URL shimmer_web_auth_url_is_safe() accepts (webauth.h); the
     * engine drops any other request with a warning. */
    char *url;
    /* WEB_AUTH's flags as the server sent them ("external", "hidden"),
     * NULL-terminated, empty for OPEN_URL. A "proxy=" flag, which carries
     * proxy credentials, is left out (the engine does not announce proxy
     * support). */
    char **flags;
    /* When the engine gives up waiting (monotonic µs), and the same as
     * seconds from the event on. */
    gint64 deadline;
    guint timeout_s;
} ShimmerWebAuth;

/* One event. The strings belong to the event: shimmer_event_clear(). */
typedef struct {
    ShimmerEventType type;
    /* The engine's state when the event was made. */
    ShimmerState state;
    union {
        struct {
            char *reason;
        } state_change; /* STATE */
        struct {
            guint index;
            char *host;
        } connect;                          /* CONNECT */
        ShimmerNeedCredentials credentials; /* NEED_CREDENTIALS */
        struct {
            char *reason;
        } auth_failed; /* AUTH_FAILED */
        struct {
            char *text;
        } info; /* INFO */
        struct {
            char *reason;
        } exit; /* EXIT */
        struct {
            /* The client certificate's common name (or the x509-username-
             * field); NULL without a client certificate. */
            char *common_name;
            /* What the client sent; NULL when it sent none. The password
             * is a secret, wiped by shimmer_event_clear(). */
            char *username;
            char *password;
            /* The password was an auth token this server generated
             * (auth-gen-token) and it checked out: PASSWORD is NULL and
             * needs no further check. */
            gboolean token;
            /* The client's peer info (IV_VER=..., one per line). */
            char *peer_info;
        } auth_request; /* AUTH_REQUEST */
        struct {
            guint timeout_s;
            gint64 deadline;
        } auth_pending;          /* AUTH_PENDING */
        ShimmerWebAuth web_auth; /* WEB_AUTH */
    };
} ShimmerEvent;

void shimmer_event_clear(ShimmerEvent *ev);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ShimmerEvent, shimmer_event_clear)

/* ---- receiving ---- */

/* Why shimmer_engine_recv() dropped a packet. */
typedef enum {
    SHIMMER_DROP_NONE, /* not dropped */
    /* Does not parse: empty, truncated, lengths that do not add up, an
     * unknown opcode. */
    SHIMMER_DROP_MALFORMED,
    /* Failed authentication: the control channel's HMAC or tag (tls-auth,
     * tls-crypt, tls-crypt-v2), a data packet's AEAD tag. */
    SHIMMER_DROP_AUTH,
    /* A packet id seen before, or too old for the replay window (data
     * channel, or the control channel's wrapping). */
    SHIMMER_DROP_REPLAY,
    /* For a key id that has no key state or data keys (yet, or any more:
     * a lame duck past tran-window). */
    SHIMMER_DROP_NO_KEY,
    /* A control packet of another session: its session id is not the
     * peer's, or its acks name another session than ours. */
    SHIMMER_DROP_WRONG_SESSION,
    /* A well-formed packet this end never accepts, or not now: an opcode
     * only the other role receives, a hard reset on a key id other than
     * 0. */
    SHIMMER_DROP_UNEXPECTED,
    /* There is no session to match it against: before the transport is
     * up, between attempts, after the end, or a control packet before the
     * peer's hard reset named its session. */
    SHIMMER_DROP_NO_SESSION,
    /* Compressed with an algorithm the profile (or the push) does not
     * allow, or compressed at all when the profile has no compression
     * framing. */
    SHIMMER_DROP_COMPRESSED,
    /* The plaintext is larger than the caller's TUN_CAP (also when it
     * would decompress to more). */
    SHIMMER_DROP_TOO_BIG,
    /* Compression framing that does not parse, or compressed data that
     * does not decompress. */
    SHIMMER_DROP_BAD_COMPRESSION,
    SHIMMER_DROP_N_REASONS
} ShimmerDropReason;

/* "malformed", "authentication failed", ...; never NULL. */
const char *shimmer_drop_reason_to_string(ShimmerDropReason reason);

typedef enum {
    /* An IP packet for the tun is in TUN_OUT[0..*TUN_LEN). */
    SHIMMER_RECV_TUN,
    /* Accepted; nothing for the tun (a control packet, a ping, an OCC
     * message, a duplicate the reliable layer acks again). */
    SHIMMER_RECV_CONSUMED,
    /* Dropped: *DROP says why, and stats.dropped[*DROP] counted it. */
    SHIMMER_RECV_DROPPED,
} ShimmerRecvResult;

/* ---- sending ---- */

/* The largest IP packet shimmer_engine_encrypt() takes: any an IPv4 header
 * can describe, so that no tun-mtu the profile or the server sets (the
 * parser takes up to 65535) is cut short here. What a runner reads from its
 * tun is bounded by the tun's MTU; it sizes its buffers by that. */
#define SHIMMER_ENGINE_MAX_PLAIN 65535
/* ...and what encryption adds at most (DATA_V2 header and tag,
 * compression framing). What arrives may decompress to more: a server
 * that compresses sends packets up to its tun-mtu. */
#define SHIMMER_ENGINE_DATA_OVERHEAD 26
/* shimmer_engine_write_pkt() needs a buffer of at least this size: the
 * packets it makes (control, acks, keepalive pings, exit notifications) are
 * small whatever the tun-mtu. */
#define SHIMMER_ENGINE_MAX_PACKET 2048

typedef enum {
    SHIMMER_ENCRYPT_OK,
    /* No data keys to send with: not connected (yet), reconnecting, or
     * ended. */
    SHIMMER_ENCRYPT_NOT_CONNECTED,
    /* LEN is 0. */
    SHIMMER_ENCRYPT_EMPTY,
    /* LEN is above SHIMMER_ENGINE_MAX_PLAIN, or OUT_CAP below LEN +
     * SHIMMER_ENGINE_DATA_OVERHEAD. */
    SHIMMER_ENCRYPT_TOO_BIG,
    /* The sending key's packet ids are used up; a renegotiation is due
     * (shimmer_engine_next_deadline() says so) and the new key takes over
     * once it is ready. */
    SHIMMER_ENCRYPT_OUT_OF_IDS,
    /* The crypto library failed. */
    SHIMMER_ENCRYPT_FAILED,
    SHIMMER_ENCRYPT_N_RESULTS
} ShimmerEncryptResult;

/* "ok", "not connected", ...; never NULL. */
const char *shimmer_encrypt_result_to_string(ShimmerEncryptResult result);

/* ---- statistics ---- */

typedef struct {
    guint64 tun_bytes_in, tun_bytes_out; /* plaintext from/to the tun */
    guint64 tun_packets_in, tun_packets_out;
    guint64 link_bytes_in, link_bytes_out; /* transport bytes */
    /* Received packets dropped, by reason ([SHIMMER_DROP_NONE] stays 0). */
    guint64 dropped[SHIMMER_DROP_N_REASONS];
    /* Tun packets shimmer_engine_encrypt() refused, by result ([OK] stays
     * 0). */
    guint64 not_encrypted[SHIMMER_ENCRYPT_N_RESULTS];
    guint64 reconnects;
    guint64 renegotiations;
} ShimmerEngineStats;

/* ---- the engine ---- */

/* Creates a client engine for CFG, which must stay alive as long as the
 * engine. HOOKS is copied; NULL: no log, GnuTLS's randomness. Fails (NULL,
 * ERROR set) if CFG has errors or is not a client profile, or its
 * credentials do not load (wrong key passphrase, ...). */
ShimmerEngine *shimmer_engine_new(const ShimmerConfig *cfg, const ShimmerEngineHooks *hooks,
                                  GError **error);
/* Another client engine of MODEL's configuration that borrows MODEL's TLS
 * credentials (CA, certificate and key, CRLs; read once, not per engine):
 * for many simulated clients in one process (tests/load-clients.c).
 * MODEL must outlive it; engines that share credentials may run on
 * different threads. Fails as shimmer_engine_new() or when MODEL is not a
 * client engine. */
ShimmerEngine *shimmer_engine_new_like(const ShimmerEngine *model, const ShimmerEngineHooks *hooks,
                                       GError **error);
/* Wipes every secret and frees. NULL is fine. */
void shimmer_engine_free(ShimmerEngine *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerEngine, shimmer_engine_free)

/* The password a server with static-challenge expects: the password and
 * the user's RESPONSE to the challenge in OpenVPN's "SCRV1:b64:b64" form.
 * A secret: free with shimmer_str_free_secret(). */
char *shimmer_engine_static_challenge_password(const char *password, const char *response);

/* Private-key passphrase. The key is read by shimmer_engine_new(), so this
 * only matters for an engine that reads it later; a caller puts the
 * passphrase into the configuration instead (askpass). */
void shimmer_engine_set_key_passphrase(ShimmerEngine *e, const char *passphrase);

/* Starts connecting: emits CONNECT, or NEED_CREDENTIALS first when the
 * profile wants a password it does not hold. Only in state IDLE; otherwise
 * does nothing. */
void shimmer_engine_start(ShimmerEngine *e, gint64 now);

/* Answers NEED_CREDENTIALS (copies both; USERNAME NULL keeps the one
 * known). In state IDLE it also starts connecting; after a CHALLENGE,
 * PASSWORD is the answer and the next attempt begins; after a CR_TEXT,
 * PASSWORD is the answer and goes to the server at once (CR_RESPONSE);
 * a password asked for before a reconnect (auth-nocache, auth-retry
 * interact) starts that attempt; one asked for during a renegotiation
 * (auth-nocache without an auth-token) completes it. Credentials nobody
 * asked for (outside IDLE) are ignored: a late answer to a challenge of a
 * session that is gone must not become the password. */
void shimmer_engine_set_credentials(ShimmerEngine *e, const char *username, const char *password,
                                    gint64 now);

/* The caller's transport to the remote named by the last CONNECT is ready
 * (UDP: socket connected; TCP: connection established). IS_TCP selects the
 * TCP behaviour (no explicit-exit-notify, ...). Only in state CONNECTING;
 * otherwise does nothing. A session that cannot be set up (no randomness)
 * fails. */
void shimmer_engine_transport_up(ShimmerEngine *e, gboolean is_tcp, gint64 now);

/* Opening the transport failed, or an established one broke (TCP reset,
 * ICMP error). The engine tries the next remote after a delay (state
 * RECONNECTING), or fails after connect-retry-max. Does nothing once the
 * session ended. */
void shimmer_engine_transport_failed(ShimmerEngine *e, const char *why, gint64 now);

/* One received transport packet (PKT[0..LEN), any length, any content).
 * A data packet's plaintext goes to TUN_OUT[0..*TUN_LEN); TUN_CAP should be
 * at least LEN. *TUN_LEN is 0 unless the result is SHIMMER_RECV_TUN. DROP
 * may be NULL; otherwise it is set to the reason (SHIMMER_DROP_NONE unless
 * the result is SHIMMER_RECV_DROPPED). A dropped packet leaves nothing to
 * send and no event; only an authentic one leaves a trace (its packet id in
 * the replay window, and a COMPRESSED one counts as a sign of life). */
ShimmerRecvResult shimmer_engine_recv(ShimmerEngine *e, const guint8 *pkt, gsize len, gint64 now,
                                      guint8 *tun_out, gsize tun_cap, gsize *tun_len,
                                      ShimmerDropReason *drop);

/* Encrypts one IP packet IP[0..LEN) from the tun into OUT, a packet of
 * *OUT_LEN bytes to send as it is (*OUT_LEN is 0 unless the result is OK).
 * Every result but OK is counted in stats.not_encrypted and leaves
 * nothing to send. */
ShimmerEncryptResult shimmer_engine_encrypt(ShimmerEngine *e, const guint8 *ip, gsize len,
                                            guint8 *out, gsize out_cap, gint64 now, gsize *out_len);

/* Writes the next packet due at NOW (control, ack, keepalive ping, exit
 * notification) into BUF and returns its length; 0 when nothing is due;
 * -1 if CAP is below SHIMMER_ENGINE_MAX_PACKET (nothing is taken then).
 * Call it until it returns 0 (see the loop above). */
gssize shimmer_engine_write_pkt(ShimmerEngine *e, guint8 *buf, gsize cap, gint64 now);

/* Takes the next event into *EV; FALSE if none. Clear it with
 * shimmer_event_clear() (or declare it g_auto(ShimmerEvent)). */
gboolean shimmer_engine_pop_event(ShimmerEngine *e, ShimmerEvent *ev);

/* When to call shimmer_engine_handle_timeout() next; G_MAXINT64 for never.
 * May be at or before the last NOW: then at once. */
gint64 shimmer_engine_next_deadline(ShimmerEngine *e);
/* Serves every timer due at NOW; harmless when none is. */
void shimmer_engine_handle_timeout(ShimmerEngine *e, gint64 now);

/* Ends the session: sends the exit notification (explicit-exit-notify:
 * EXIT on the control channel when the server offered cc-exit, OCC EXIT
 * packets otherwise) and emits EXIT once it is out. Does nothing once the
 * session is ending or ended. */
void shimmer_engine_stop(ShimmerEngine *e, gint64 now);

ShimmerState shimmer_engine_get_state(const ShimmerEngine *e);
/* The configuration the server pushed, merged over continuation messages;
 * NULL before the first TUN_CONFIG. */
const ShimmerConfig *shimmer_engine_get_pushed(const ShimmerEngine *e);
/* The data-channel cipher in use ("AES-256-GCM"), NULL before one was
 * negotiated. */
const char *shimmer_engine_get_cipher(const ShimmerEngine *e);
/* "TLS1.3" etc. of the session's first key state; NULL without one. */
const char *shimmer_engine_get_tls_version(const ShimmerEngine *e);
void shimmer_engine_get_stats(const ShimmerEngine *e, ShimmerEngineStats *out);
/* The connection the engine is on (index into cfg->connections). */
guint shimmer_engine_get_connection_index(const ShimmerEngine *e);
/* The MSS to clamp tunnelled TCP SYNs to (0: no clamping). */
guint shimmer_engine_get_mss(const ShimmerEngine *e, gboolean ipv6);

/* ---- the data plane: data packets on worker threads ----
 *
 * shimmer_engine_encrypt() and shimmer_engine_recv() run on the engine's
 * thread and copy. A runner that moves data packets on threads of its own
 * (one per core), in place, uses the engine's data plane instead; the
 * control channel, timers and every other call stay on the engine's thread.
 *
 * Lanes: each thread that encrypts or decrypts has a lane of its own, a
 * number from 1 to the count set with shimmer_engine_set_lanes() minus one;
 * lane 0 is the engine's own thread (shimmer_engine_encrypt/recv, its
 * pings). A lane works in batches: shimmer_dataplane_begin(), any number
 * of packets, shimmer_dataplane_end(). Between the two the lane sees the
 * keys as they were at begin (a renegotiation or a reconnect takes effect
 * at its next batch, and keys it still uses stay alive until its end), so a
 * batch should be short: what one wake-up brought.
 *
 * Packet ids: all lanes share the sending key's counter, so ids are unique
 * but two lanes' packets can reach the wire out of order; the receiving end
 * accepts that within its replay window. Replay windows are shared too
 * (under a lock), so any lane may receive any packet; a runner that keeps
 * one peer's received packets on one lane keeps their order and never
 * contends for the lock.
 *
 * In place: a tun packet to encrypt lies at BUF[OFF..OFF+LEN) with at least
 * SHIMMER_ENGINE_HEADROOM bytes in front and SHIMMER_ENGINE_TAILROOM
 * behind; the data packet is written over it and the bytes in front. A
 * received data packet is decrypted where it lies and the IP packet is
 * left inside it. */

typedef struct ShimmerDataPlane ShimmerDataPlane;

/* Room an in-place encryption needs in front of the IP packet (DATA_V2
 * header and tag, compression framing) and behind it (the framing's swap
 * byte). */
#define SHIMMER_ENGINE_HEADROOM 26
#define SHIMMER_ENGINE_TAILROOM 1
/* The most lanes, lane 0 included. */
#define SHIMMER_DATAPLANE_MAX_LANES 64

/* Makes room for N_LANES lanes (lane 0 and N_LANES - 1 workers). Only while
 * no data keys exist: right after shimmer_engine_new(), or between
 * sessions. FALSE (nothing changed) otherwise or for a count outside 1 to
 * SHIMMER_DATAPLANE_MAX_LANES. */
gboolean shimmer_engine_set_lanes(ShimmerEngine *e, guint n_lanes);

/* The engine's data plane; owned by the engine (shimmer_dataplane_ref() to
 * keep it beyond). Data packets through it count in the engine's stats. */
ShimmerDataPlane *shimmer_engine_get_dataplane(ShimmerEngine *e);

ShimmerDataPlane *shimmer_dataplane_ref(ShimmerDataPlane *dp);
void shimmer_dataplane_unref(ShimmerDataPlane *dp);
guint shimmer_dataplane_get_lanes(const ShimmerDataPlane *dp);

/* Called from a worker's thread when the engine's thread should serve its
 * timers now (shimmer_engine_next_deadline() is at NOW then): the peer
 * announced its exit in a data packet, or the sending key reached
 * reneg-bytes, reneg-pkts or the end of its packet ids. Set it before the
 * workers start. */
typedef void (*ShimmerDataPlaneWake)(gpointer user);
void shimmer_dataplane_set_wake(ShimmerDataPlane *dp, ShimmerDataPlaneWake wake, gpointer user);

/* A batch on LANE (1 or more; lane 0 needs none). */
void shimmer_dataplane_begin(ShimmerDataPlane *dp, guint lane);
void shimmer_dataplane_end(ShimmerDataPlane *dp, guint lane);

/* Sending in order. Lanes that encrypt for the same peer at once put their
 * packets on the wire in whatever order their sends happen, and a peer
 * drops what arrives more than its replay window (64 packets in OpenVPN)
 * behind the newest. A lane that cannot rule that out (another lane may
 * send for the peer) brackets each send within a batch:
 * shimmer_dataplane_reserve() with the number of packets it is about to
 * encrypt (they take consecutive ids, returns how many it got), encrypt
 * them, shimmer_dataplane_wait_turn() (returns once every earlier
 * reservation for the key was released; after 200 ms it gives up and
 * counts a timeout), send, shimmer_dataplane_release(). Ids reserved and
 * not used are a gap the peer never sees filled. shimmer_dataplane_end()
 * releases what is still held. */
guint shimmer_dataplane_reserve(ShimmerDataPlane *dp, guint lane, guint n);
void shimmer_dataplane_wait_turn(ShimmerDataPlane *dp, guint lane);
void shimmer_dataplane_release(ShimmerDataPlane *dp, guint lane);
/* Turns waited for in vain, all lanes. */
guint64 shimmer_dataplane_get_turn_timeouts(const ShimmerDataPlane *dp);

/* Encrypts the IP packet BUF[OFF..OFF+LEN) (BUF has CAP bytes) in place on
 * LANE: the data packet to send is BUF[*PKT_OFF..*PKT_OFF+*PKT_LEN). Results
 * as shimmer_engine_encrypt() (TOO_BIG also when the room in front or
 * behind is short), counted in the stats the same way. */
ShimmerEncryptResult shimmer_dataplane_encrypt(ShimmerDataPlane *dp, guint lane, guint8 *buf,
                                               gsize cap, gsize off, gsize len, gint64 now,
                                               gsize *pkt_off, gsize *pkt_len);

/* Decrypts the data packet (DATA_V1 or DATA_V2) PKT[0..LEN) in place on
 * LANE: for SHIMMER_RECV_TUN the IP packet is *PLAIN[0..*PLAIN_LEN), inside
 * PKT, or, when the peer sent it compressed, in a buffer of the lane's that
 * the lane's next packet overwrites. Results and DROP as
 * shimmer_engine_recv(); a packet that is not a data packet is dropped as
 * UNEXPECTED (hand it to the engine's thread, which gives it to
 * shimmer_engine_recv()). */
ShimmerRecvResult shimmer_dataplane_decrypt(ShimmerDataPlane *dp, guint lane, guint8 *pkt,
                                            gsize len, gint64 now, guint8 **plain, gsize *plain_len,
                                            ShimmerDropReason *drop);

/* ---- the server role ----
 *
 * One engine per client, made by the dispatcher (dispatch.h) once the
 * client passed the stateless first exchange. The loop is the client's
 * (write_pkt, pop_event, next_deadline, handle_timeout) without CONNECT
 * and TUN_CONFIG: the transport belongs to the dispatcher. A session goes
 * AUTHENTICATING (TLS), GETTING_CONFIG (records exchanged; waiting for the
 * caller's decision and the client's push request), CONNECTED (the push
 * reply is out and the data keys are installed), then DISCONNECTED or
 * FAILED with EXIT. */

/* What the server hands one client (copied by
 * shimmer_engine_server_set_client()). */
typedef struct {
    /* The client's IPv4 address and the tun network's netmask (topology
     * subnet); NULL: no IPv4. */
    const char *ifconfig_local;
    const char *ifconfig_netmask;
    /* "2001:db8::1000/64" and the server's own IPv6 address; NULL: no
     * IPv6. */
    const char *ifconfig_ipv6;
    const char *ifconfig_ipv6_remote;
    /* The client's client-config-dir file, NULL without one: its push,
     * push-reset and push-remove shape the push reply. */
    const ShimmerCcd *ccd;
} ShimmerServerClient;

typedef enum {
    SHIMMER_AUTH_ACCEPT,
    /* AUTH_FAILED[,reason] is sent and the session ends. */
    SHIMMER_AUTH_DENY,
    /* Decided later (a deferred check): the client is told AUTH_PENDING
     * when it understands it; the answer must come within hand-window. */
    SHIMMER_AUTH_PENDING,
} ShimmerAuthDecision;

/* Creates a server engine for the server configuration CFG (which must
 * outlive it). SHARED: another server engine of CFG whose TLS credentials
 * this one uses (a dispatcher's peers all share one set, see
 * shimmer_engine_new_server(cfg, NULL, ...)); NULL: loads its own, and the
 * auth-token key. Fails as shimmer_engine_new(). */
ShimmerEngine *shimmer_engine_new_server(const ShimmerConfig *cfg, ShimmerEngine *shared,
                                         const ShimmerEngineHooks *hooks, GError **error);

/* Starts the session with one client. OWN_SID is the server's session id
 * (the dispatcher's cookie). CLIENT_SID: the first exchange happened
 * without state (both hard resets are taken as sent and acked); NULL: the
 * client's hard reset itself goes to shimmer_engine_recv() next (the old
 * tls-crypt-v2 path, where the first packet carries the client key).
 * PEER_ID is pushed as `peer-id` (0xFFFFFF: none). FALSE (ERROR set) when
 * the session cannot be set up. */
gboolean shimmer_engine_server_begin(ShimmerEngine *e, const guint8 own_sid[8],
                                     const guint8 *client_sid, guint32 peer_id, gboolean is_tcp,
                                     gint64 now, GError **error);

/* What the client gets (addresses, its ccd file), before it is accepted.
 * Called again it replaces what was given. */
void shimmer_engine_server_set_client(ShimmerEngine *e, const ShimmerServerClient *client);

/* Answers AUTH_REQUEST. REASON (DENY) goes to the client after
 * "AUTH_FAILED,"; NULL sends none. Ignored when no decision is waited
 * for. */
void shimmer_engine_auth_reply(ShimmerEngine *e, ShimmerAuthDecision decision, const char *reason,
                               gint64 now);

/* Ends a client's session from the server's side: MESSAGE (NULL:
 * "RESTART") goes out on the control channel first and the session ends
 * once it was acked, at most 2 s later. WHY is the EXIT reason. */
void shimmer_engine_server_kick(ShimmerEngine *e, const char *message, const char *why, gint64 now);

/* The client's certificate common name (or x509-username-field, or its user
 * name with username-as-common-name); NULL before the handshake. */
const char *shimmer_engine_get_common_name(const ShimmerEngine *e);
/* The user name the client authenticated with; NULL if none. */
const char *shimmer_engine_get_username(const ShimmerEngine *e);
/* The client's peer info (IV_... lines); NULL before its record. */
const char *shimmer_engine_get_peer_info(const ShimmerEngine *e);
/* tls-crypt-v2: the metadata of the client's key (type byte first); NULL,
 * *LEN 0 without. */
const guint8 *shimmer_engine_get_client_key_metadata(const ShimmerEngine *e, gsize *len);

#define SHIMMER_ENGINE_ERROR (shimmer_engine_error_quark())
GQuark shimmer_engine_error_quark(void);

G_END_DECLS
