/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Inside the engine: the role-neutral core (engine-core.c) and the roles
 * that drive it (engine-client.c; a server role is one more file of the same
 * shape). Not installed, not for callers of engine.h.
 *
 * The core owns everything both ends of an OpenVPN session do alike: key
 * states, the reliable layer and control-channel wrapping, TLS through
 * GnuTLS, key-method-2 records in both directions, data keys, the data
 * channel, keepalive, renegotiation, the exit notification, events and
 * statistics. A role owns what only one end does: for a client the
 * connection order over the remotes, reconnecting, credentials, the push
 * request and PUSH_REPLY, the checks on the server's certificate and the
 * client-only states. The core never asks which role it runs: every
 * difference is a field or a hook of ShimmerEngineRole.
 *
 * A role plugs in by
 *  - defining one constant ShimmerEngineRole (the facts and hooks below),
 *  - providing its public constructor, which calls shimmer_core_new() with
 *    that role and the role's own state (e->role_data, freed by role->free),
 *  - starting a session with shimmer_core_session_begin() once it knows its
 *    peer (a client when its transport is up; a server when its dispatcher
 *    hands it a client that passed the stateless first exchange),
 *  - and reacting to the hooks, for which the core exports the helpers at
 *    the end of this file.
 *
 * The two ends differ in these facts (client / server): tls_flags
 * GNUTLS_CLIENT / GNUTLS_SERVER; peer_key_purpose TLS server / TLS client;
 * km_has_pre_master true / false; km_after_peer false / true;
 * data_send_half 0 / 1; own hard reset HARD_RESET_CLIENT_V2 or _V3 without
 * acks / HARD_RESET_SERVER_V2 with its ack; the peer's hard resets
 * HARD_RESET_SERVER_V2 / HARD_RESET_CLIENT_V2 and _V3 (a server also takes
 * CONTROL_WKC_V1); the control wrapping's direction. Session ids are ours
 * at random / the dispatcher's cookie (shimmer_core_session_begin's
 * OWN_SID), the peer's learnt from its reset / known from the first
 * exchange.
 */

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>

#include "compframe.h"
#include "crl.h"
#include "ctlwrap.h"
#include "datachan.h"
#include "engine.h"
#include "kdf.h"
#include "packet.h"
#include "reliable.h"
#include "replay.h"
#include "secure.h"

G_BEGIN_DECLS

#define SHIMMER_US ((gint64)G_USEC_PER_SEC)

/* Key states matched by key id: [0] primary, [1] lame duck, [2] the one
 * being negotiated. */
#define SHIMMER_ENGINE_N_KEY_STATES 3
/* Room for one plain control packet (the reliable layer's payloads are far
 * smaller). Data packets never pass through it: their compression framing
 * is written straight into the caller's output buffer. */
#define SHIMMER_ENGINE_SCRATCH (SHIMMER_ENGINE_MAX_PACKET + 128)

typedef enum {
    SHIMMER_KS_NONE,
    SHIMMER_KS_RESET_SENT, /* our (hard or soft) reset is queued or out */
    SHIMMER_KS_TLS,        /* the handshake runs */
    SHIMMER_KS_OPEN,       /* handshake done, key-method records being exchanged */
    SHIMMER_KS_ACTIVE,     /* both key-method records exchanged */
} ShimmerKeyStateStatus;

typedef struct {
    ShimmerKeyStateStatus status;
    guint8 key_id;
    bool km_sent;
    bool km_received;
    bool keys_installed;
    /* Data goes out on this key (see settle_keys() in engine-core.c), and
     * when it could first have (0: not yet). */
    bool sending;
    gint64 settled_at;
    /* A lame duck whose control channel went quiet: its TLS session and
     * reliable layer are freed, it only decrypts until it expires. */
    bool retired;
    ShimmerReliable *rel;
    gnutls_session_t tls;
    GByteArray *tls_out;     /* TLS bytes the reliable layer had no room for yet */
    ShimmerSecretBuf app_in; /* decrypted TLS application data not yet parsed */
    /* The client's pre-master secret: ours or the peer's, as the role's
     * km_has_pre_master says. */
    guint8 pre_master[SHIMMER_PRE_MASTER_LEN];
    guint8 own_random1[SHIMMER_KM_RANDOM_LEN], own_random2[SHIMMER_KM_RANDOM_LEN];
    guint8 peer_random1[SHIMMER_KM_RANDOM_LEN], peer_random2[SHIMMER_KM_RANDOM_LEN];
    gint64 started;     /* when the key state began (hand-window) */
    gint64 established; /* when the data keys were installed (reneg-sec) */
    gint64 expires;     /* lame duck: stop accepting after this */
    /* The data keys themselves live in the engine's data plane, by key id,
     * from keys_installed on. */
} ShimmerKeyState;

/* How a session ended that cannot go on. */
typedef enum {
    /* It broke (a TLS error, a malformed record): start over with the same
     * peer. */
    SHIMMER_SESSION_LOST_RETRY,
    /* The peer is gone, silent or unusable: a client moves on to its next
     * remote. */
    SHIMMER_SESSION_LOST_NEXT_PEER,
    /* Nothing a new attempt could change (a refused certificate, no
     * randomness). */
    SHIMMER_SESSION_LOST_FATAL,
} ShimmerSessionLoss;

/* The strings of a key-method-2 record. Owned; the password is a secret:
 * clear with shimmer_km_strings_clear(). NULL is written as the empty
 * string. */
typedef struct {
    char *options;
    char *username;
    char *password;
    char *peer_info;
} ShimmerKmStrings;

void shimmer_km_strings_clear(ShimmerKmStrings *s);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ShimmerKmStrings, shimmer_km_strings_clear)

typedef struct ShimmerEngineRole ShimmerEngineRole;

/* Facts and hooks of one end of a session. Hooks get NOW, the caller's
 * monotonic time in microseconds, where time matters. */
struct ShimmerEngineRole {
    const char *name;
    /* What the peer is called in messages for the user: "server". */
    const char *peer_name;
    /* The level of the "state ..." lines: a client's states are its
     * user's news; a server's peers' are detail (the dispatcher and the
     * service say when a client comes and goes). */
    ShimmerLogLevel state_log_level;

    /* ---- facts ---- */
    /* gnutls_init() flags besides GNUTLS_NONBLOCK: GNUTLS_CLIENT or
     * GNUTLS_SERVER. */
    unsigned int tls_flags;
    /* The extended key usage the peer's certificate chain must allow
     * (GNUTLS_KP_TLS_WWW_SERVER when the peer is a server). */
    const char *peer_key_purpose;
    /* Our key-method record carries the pre-master secret (a client's
     * does), so the peer's does not. This also says which randoms and
     * session id are the client's in the legacy key derivation. */
    bool km_has_pre_master;
    /* We send our key-method record only once the peer's arrived (an
     * OpenVPN server does); otherwise right after the handshake. */
    bool km_after_peer;
    /* The half of the 256-byte key block we encrypt with: 0 (keys[0],
     * client to server) for a client, 1 for a server. We decrypt with the
     * other half. */
    guint data_send_half;
    /* The control-channel opcodes the peer may send, as bits (1 << opcode);
     * anything else is dropped unread. */
    guint32 peer_control_opcodes;
    /* Among them, the hard resets that open a session from its side. */
    guint32 peer_hard_resets;
    /* Our hard reset carries acks (a server's acks the client's reset; a
     * client's is the first packet and acks nothing). */
    bool own_hard_reset_acks;

    /* ---- hooks ---- */
    /* The opcode of our own hard reset. */
    guint8 (*own_hard_reset)(ShimmerEngine *e);
    /* A peer hard reset authenticated and names this session: return the
     * key state it belongs to (learning the peer's session id if need be),
     * or NULL and why to drop it. */
    ShimmerKeyState *(*accept_hard_reset)(ShimmerEngine *e, const ShimmerControlPacket *cp,
                                          ShimmerDropReason *drop);
    /* The peer's hard reset arrived for the first time (not a
     * retransmission): the handshake may begin. */
    void (*hard_reset_received)(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now);
    /* Per-session TLS settings beyond priority and credentials (a server
     * asks for the client's certificate). May be NULL. */
    void (*tls_setup)(ShimmerEngine *e, gnutls_session_t tls);
    /* Checks of the peer's leaf certificate after its chain verified
     * (remote-cert-tls, verify-x509-name). 0 or a GnuTLS error. */
    int (*check_peer_cert)(ShimmerEngine *e, gnutls_x509_crt_t leaf);
    /* Whether our key-method record on KS can be written now, once the
     * handshake is done (a client may first have to ask the user for the
     * password). When FALSE the role writes it later with
     * shimmer_core_send_key_method(); hand-window still bounds the wait.
     * May be NULL: always. */
    bool (*km_ready)(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now);
    /* The strings of our key-method record on KS (the core adds the
     * randoms and the pre-master). FALSE if they cannot be made. */
    bool (*km_strings)(ShimmerEngine *e, ShimmerKeyState *ks, ShimmerKmStrings *out);
    /* The peer's key-method record on KS arrived; PEER's fields are NULL
     * where the record ended early (the core wipes them afterwards).
     * FALSE when the role ended the session. */
    bool (*km_received)(ShimmerEngine *e, ShimmerKeyState *ks, const ShimmerKmStrings *peer,
                        gint64 now);
    /* Both records of the session's first key state are exchanged (a
     * client asks for its configuration now). Renegotiated keys never
     * come here: the core installs and rotates them itself. */
    void (*first_key_active)(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now);
    /* One control message from the peer, without its NUL. */
    void (*control_message)(ShimmerEngine *e, ShimmerKeyState *ks, const char *msg, gint64 now);
    /* The session cannot go on: what the role makes of it (a client
     * reconnects or fails; a server ends the peer's session). */
    void (*session_lost)(ShimmerEngine *e, ShimmerSessionLoss how, const char *why, gint64 now);
    /* The role's own timers: its earliest deadline (G_MAXINT64: none)... */
    gint64 (*next_deadline)(ShimmerEngine *e);
    /* ...and serving them, before the core serves its own. TRUE: the core
     * must not serve its timers this time (the role tore the session
     * down, or waits for the user). */
    bool (*handle_timeout)(ShimmerEngine *e, gint64 now);
    /* shimmer_engine_stop(): end the session, with the exit notification
     * the role sends (see shimmer_core_stop_now/_stop_after). */
    void (*stop)(ShimmerEngine *e, gint64 now);
    /* Frees e->role_data. */
    void (*free)(ShimmerEngine *e);
};

struct ShimmerEngine {
    const ShimmerConfig *cfg;
    ShimmerEngineHooks hooks;
    const ShimmerEngineRole *role;
    gpointer role_data;
    ShimmerState state;
    /* Counts sessions torn down: code that calls out (a hook, a loss)
     * compares it to see whether the session it worked on still exists. */
    guint session_gen;
    bool is_tcp;
    /* The transport runs over IPv6 (mssfix N mtu counts its header). */
    bool transport_ipv6;
    bool transport_ready;

    /* Owned, or borrowed from another engine (shimmer_core_new_shared():
     * a server's peers share one set), then not freed here. */
    bool shares_credentials;
    gnutls_certificate_credentials_t creds;
    /* The CAs the peer's chain is checked against, and the CRLs
     * (crl-verify, read by crl.h and verified against the CAs) each
     * certificate of it is checked against. NULL without. */
    gnutls_x509_trust_list_t trust;
    ShimmerCrlSet *crls;
    char *priority;
    /* PRIORITY parsed once (NULL: parsed at every TLS session, as
     * gnutls_priority_set_direct() does); shared like the credentials. */
    gnutls_priority_t priority_cache;
    char *key_passphrase;

    guint8 own_sid[SHIMMER_SESSION_ID_LEN];
    guint8 remote_sid[SHIMMER_SESSION_ID_LEN];
    bool have_remote_sid;
    ShimmerCtlwrap *wrap;
    ShimmerReplay ctl_replay;

    ShimmerKeyState ks[SHIMMER_ENGINE_N_KEY_STATES];
    guint8 next_key_id;

    GQueue *events; /* ShimmerEvent* */
    /* Packets made before their session was torn down (a stop's last
     * message), each behind a u16 length, handed out by write_pkt first. */
    guint8 linger[2 * (SHIMMER_ENGINE_MAX_PACKET + 2)];
    gsize linger_len, linger_pos;

    /* The data channel as negotiated (set by the role). */
    guint32 peer_id;
    bool use_data_v2;
    ShimmerDatachanCipher cipher;
    bool cipher_set;
    bool tls_ekm;
    bool cc_exit;
    ShimmerCompFraming comp;
    /* What the peer may compress with (compress.h); the role sets it. */
    ShimmerCompAlgorithm comp_alg;
    /* A compressed packet arrived in this session (warned once). */
    bool comp_seen;
    /* mssfix in force (-1: the default); the role sets it. */
    gint mssfix;

    /* Timers. */
    gint64 last_sent; /* any packet sent (keepalive) */
    gint64 last_recv; /* authenticated packet received */
    gint ping_s, ping_restart_s;
    /* Taken off reneg-sec (a server's jitter, so that its clients do not
     * all renegotiate at once); microseconds. */
    gint64 reneg_jitter;
    gint64 exit_at; /* DISCONNECTING: give up waiting */
    guint exit_pings_left;
    gint64 next_exit_ping;

    /* The data keys, the data path's counters and its clocks. */
    ShimmerDataPlane *dp;

    ShimmerEngineStats stats;
    guint8 scratch[SHIMMER_ENGINE_SCRATCH];
};

/* ---- the data plane (engine-data.c), driven from the engine's thread ----
 * The core keeps it in step with the key states and the state; the roles
 * never touch it. */

ShimmerDataPlane *shimmer_dataplane_new(void);
gboolean shimmer_dataplane_set_lanes(ShimmerDataPlane *dp, guint n_lanes);
/* Data keys for KEY_ID (replacing any), not sending yet. */
bool shimmer_dataplane_install(ShimmerDataPlane *dp, guint8 key_id, ShimmerDatachanCipher cipher,
                               const guint8 *send_key, const guint8 *send_iv,
                               const guint8 *recv_key, const guint8 *recv_iv, GError **error);
void shimmer_dataplane_remove(ShimmerDataPlane *dp, guint8 key_id);
void shimmer_dataplane_clear(ShimmerDataPlane *dp);
/* KEY_ID receives until EXPIRES (a lame duck; 0: no end). */
void shimmer_dataplane_set_expiry(ShimmerDataPlane *dp, guint8 key_id, gint64 expires);
/* PRIMARY: the key id that sends (-1: none); OPEN: tun packets are taken;
 * COMP/COMP_ALG: the framing sent and received, what the peer may compress
 * with. */
void shimmer_dataplane_configure(ShimmerDataPlane *dp, gint primary, bool open, bool v2,
                                 guint32 peer_id, ShimmerCompFraming comp,
                                 ShimmerCompAlgorithm comp_alg);
/* replay-window N T (0: the default window) for keys installed from now on. */
void shimmer_dataplane_set_replay(ShimmerDataPlane *dp, guint window, guint backtrack_s);
/* TRUE once per session (shimmer_dataplane_clear() starts one): a lane
 * saw a compressed packet; a worker's lane wakes the engine for it. */
bool shimmer_dataplane_take_comp_seen(ShimmerDataPlane *dp);
/* reneg-bytes / reneg-pkts (0: none), to wake the engine when reached. */
void shimmer_dataplane_set_rekey_limits(ShimmerDataPlane *dp, guint64 bytes, guint64 packets);
/* Plaintext bytes and packets through KEY_ID, all lanes and directions. */
bool shimmer_dataplane_key_usage(const ShimmerDataPlane *dp, guint8 key_id, guint64 *bytes,
                                 guint64 *packets);
bool shimmer_dataplane_key_needs_rekey(const ShimmerDataPlane *dp, guint8 key_id);
/* A data packet from the peer opened with KEY_ID. */
bool shimmer_dataplane_key_heard(const ShimmerDataPlane *dp, guint8 key_id);
/* Tests: moves KEY_ID's sending counter forward. */
bool shimmer_dataplane_key_skip_to(ShimmerDataPlane *dp, guint8 key_id, guint32 next_id);
/* The last data packet sent and received on any lane (0: none). */
void shimmer_dataplane_get_times(const ShimmerDataPlane *dp, gint64 *last_sent, gint64 *last_recv);
/* Adds the lanes' counters to ST. */
void shimmer_dataplane_add_stats(const ShimmerDataPlane *dp, ShimmerEngineStats *st);
/* TRUE once after a lane received the peer's OCC EXIT; _pending() looks
 * without taking. */
bool shimmer_dataplane_take_peer_exit(ShimmerDataPlane *dp);
bool shimmer_dataplane_peer_exit_pending(const ShimmerDataPlane *dp);
/* Seals PLAIN into OUT with the sending key on lane 0 whether or not the
 * channel takes tun packets (the engine's pings and OCC EXIT, and
 * shimmer_engine_encrypt()); counts nothing in the lanes' stats. */
ShimmerEncryptResult shimmer_dataplane_seal_copy(ShimmerDataPlane *dp, const guint8 *plain,
                                                 gsize len, guint8 *out, gsize cap, gsize *out_len);
/* Opens a data packet on lane 0 into OUT (its plaintext for the tun at the
 * start, *OUT_LEN 0 for none); counts a drop in lane 0. */
ShimmerDropReason shimmer_dataplane_open_copy(ShimmerDataPlane *dp, const guint8 *pkt, gsize len,
                                              gint64 now, guint8 *out, gsize cap, gsize *out_len);

/* ---- the core's services to the roles ---- */

/* Creates an engine for ROLE: TLS credentials, priority, hooks. ROLE_DATA
 * becomes e->role_data (freed by role->free, also on failure). */
ShimmerEngine *shimmer_core_new(const ShimmerConfig *cfg, const ShimmerEngineHooks *hooks,
                                const ShimmerEngineRole *role, gpointer role_data, GError **error);

/* Creates an engine for ROLE that uses the TLS credentials, trust list,
 * CRLs and priority of SHARED (an engine made by shimmer_core_new() for the
 * same configuration) instead of loading its own: a server's peers all
 * present the same certificate and check against the same CAs. SHARED
 * must outlive the engine. Cannot fail. */
ShimmerEngine *shimmer_core_new_shared(const ShimmerEngine *shared, const ShimmerEngineHooks *hooks,
                                       const ShimmerEngineRole *role, gpointer role_data);

void shimmer_core_log(ShimmerEngine *e, ShimmerLogLevel level, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* Random bytes from the hook or GnuTLS. FALSE (BUF wiped) when there are
 * none: the caller fails the session. */
bool shimmer_core_random(ShimmerEngine *e, void *buf, gsize len);
/* Queues an event of TYPE in the current state; the caller fills its
 * payload (strings it allocates belong to the event). */
ShimmerEvent *shimmer_core_push_event(ShimmerEngine *e, ShimmerEventType type);
void shimmer_core_set_state(ShimmerEngine *e, ShimmerState state, const char *why);

/* The control channel's wrapping CFG asks for, in ROLE's direction: none,
 * tls-auth or tls-crypt, which both roles build alike. tls-crypt-v2 keys
 * differ by role: the role builds that one (NULL here). */
ShimmerCtlwrap *shimmer_core_make_wrap(const ShimmerConfig *cfg, ShimmerCtlwrapRole role);
/* The server's wrapping of CFG, tls-crypt-v2 included (its server key):
 * a server engine's, and the dispatcher's for first packets
 * (engine-server.c). */
ShimmerCtlwrap *shimmer_core_make_server_wrap(const ShimmerConfig *cfg);

/* Opens a session on a ready transport: WRAP (taken) wraps the control
 * channel, OWN_SID is our session id (NULL: a random one; a server's
 * dispatcher passes its cookie), key state 0 starts with our hard reset
 * queued. FALSE (with the reason in ERROR) when that cannot be done. */
bool shimmer_core_session_begin(ShimmerEngine *e, ShimmerCtlwrap *wrap, const guint8 *own_sid,
                                bool is_tcp, gint64 now, GError **error);
/* Opens a server's session whose first exchange happened without state
 * (the dispatcher's cookie): as shimmer_core_session_begin() with OWN_SID,
 * then our hard reset (msg pid 0) counts as sent and acked, the peer's
 * (PEER_SID, msg pid 0) as received and acked, and key state 0 waits for
 * TLS. The stateless reply carried the wrap's replay pid 1, so WRAP goes on
 * from 2. FALSE (ERROR set) as shimmer_core_session_begin(). */
bool shimmer_core_session_adopt(ShimmerEngine *e, ShimmerCtlwrap *wrap,
                                const guint8 own_sid[SHIMMER_SESSION_ID_LEN],
                                const guint8 peer_sid[SHIMMER_SESSION_ID_LEN], bool is_tcp,
                                gint64 now, GError **error);
/* Forgets the session: key states, wrapping, queued packets. */
void shimmer_core_reset_session(ShimmerEngine *e);
/* Ends the engine: the session is reset, the transport closed, the state
 * becomes FINAL (DISCONNECTED or FAILED) and EXIT carries WHY. */
void shimmer_core_end(ShimmerEngine *e, ShimmerState final, const char *why);

/* Sends MSG (NUL added) as a control message on KS: it goes out with the
 * next shimmer_engine_write_pkt(). */
void shimmer_core_send_message(ShimmerEngine *e, ShimmerKeyState *ks, const char *msg);
/* Starts a renegotiation on KEY_ID with our SOFT_RESET queued; NULL if
 * the key state cannot be set up. */
ShimmerKeyState *shimmer_core_start_renegotiation(ShimmerEngine *e, guint8 key_id, gint64 now);
/* Writes our key-method record on KS now (after km_ready said FALSE).
 * FALSE when it cannot be made; the session is then lost. */
bool shimmer_core_send_key_method(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now);
/* Derives and installs KS's data keys for e->cipher. */
bool shimmer_core_install_keys(ShimmerEngine *e, ShimmerKeyState *ks, gint64 now);

/* Stops at once: state DISCONNECTING, LAST_MESSAGE (may be NULL) on the
 * active key state, then shimmer_core_end(DISCONNECTED). */
void shimmer_core_stop_now(ShimmerEngine *e, const char *last_message, gint64 now);
/* Stops after WAIT: state DISCONNECTING, MESSAGE (may be NULL) on the
 * active key state and OCC_EXITS OCC EXIT packets a second apart. */
void shimmer_core_stop_after(ShimmerEngine *e, const char *message, guint occ_exits, gint64 wait,
                             gint64 now);

G_END_DECLS
