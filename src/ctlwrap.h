/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "packet.h"

G_BEGIN_DECLS

/*
 * Control-channel wrapping: none, tls-auth, tls-crypt and tls-crypt-v2.
 *
 * A wrapper turns a plain control packet (the layout packet.h builds and
 * parses: op | own_sid | n_acks | ... ) into what goes on the wire and back.
 * It holds the keys and the outgoing replay counter of one session; the
 * incoming replay check is the caller's (unwrap reports the replay pid and
 * time). No I/O, no clock: the caller passes the time. Keys are copied in and
 * wiped when the wrapper is freed.
 *
 * Wire layouts (key slots are the two 128-byte halves of a 256-byte static
 * key, each cipher[64] | hmac[64]):
 *  tls-auth:   op | sid(8) | hmac(N) | pid(4) | time(4) | rest
 *              hmac = HMAC(first N bytes of slot.hmac, pid | time | op | sid | rest)
 *  tls-crypt:  op | sid(8) | pid(4) | time(4) | tag(32) | AES-256-CTR(rest)
 *              tag = HMAC-SHA256(Ka, op | sid | pid | time | rest), IV = tag[0..16)
 *              Ke/Ka = first 32 bytes of slot.cipher / slot.hmac; the server
 *              sends with slot 0, the client with slot 1.
 *  tls-crypt-v2: tls-crypt under the client key Kc; HARD_RESET_CLIENT_V3 and
 *              CONTROL_WKC_V1 carry the wrapped client key WKc after it.
 * where rest = the plain packet after op | sid.
 *
 * Buffers: OUT must not overlap the input. Output sizes are bounded by
 * shimmer_ctlwrap_overhead() when wrapping and by the input length when
 * unwrapping.
 */

typedef enum {
    SHIMMER_CTLWRAP_NONE,
    SHIMMER_CTLWRAP_TLS_AUTH,
    SHIMMER_CTLWRAP_TLS_CRYPT,
    SHIMMER_CTLWRAP_TLS_CRYPT_V2_CLIENT,
    SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER,
} ShimmerCtlwrapMode;

/* The --auth digest for tls-auth. */
typedef enum {
    SHIMMER_CTLWRAP_DIGEST_SHA1,
    SHIMMER_CTLWRAP_DIGEST_SHA256,
    SHIMMER_CTLWRAP_DIGEST_SHA512,
} ShimmerCtlwrapDigest;

/* tls-auth key-direction: 0 sends with slot 0 and receives with slot 1, 1 the
 * reverse; NONE uses slot 0 both ways. */
typedef enum {
    SHIMMER_KEY_DIRECTION_NONE = -1,
    SHIMMER_KEY_DIRECTION_0 = 0,
    SHIMMER_KEY_DIRECTION_1 = 1,
} ShimmerKeyDirection;

typedef enum {
    SHIMMER_CTLWRAP_ROLE_CLIENT,
    SHIMMER_CTLWRAP_ROLE_SERVER,
} ShimmerCtlwrapRole;

typedef enum {
    SHIMMER_CTLWRAP_OK = 0,
    /* Shorter than the wrapping's fixed fields. */
    SHIMMER_CTLWRAP_ERR_TRUNCATED,
    /* Not a control opcode, or an opcode this mode/role never sends or
     * receives (V3 and WKC_V1 exist only with tls-crypt-v2, client to
     * server). Checked on the first byte only; nothing is trusted. */
    SHIMMER_CTLWRAP_ERR_BAD_OPCODE,
    /* HMAC or tag mismatch: wrong key, wrong direction, or tampering. */
    SHIMMER_CTLWRAP_ERR_AUTH,
    /* tls-crypt-v2: the WKc length field is out of range or does not match. */
    SHIMMER_CTLWRAP_ERR_WKC_MALFORMED,
    /* tls-crypt-v2: WKc does not authenticate under the server key, or names
     * another client key than the one this session already uses. */
    SHIMMER_CTLWRAP_ERR_WKC_AUTH,
    /* tls-crypt-v2 server: no client key yet (the first packet of a session
     * must be HARD_RESET_CLIENT_V3 or CONTROL_WKC_V1). */
    SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY,
    /* OUT too small. */
    SHIMMER_CTLWRAP_ERR_NO_SPACE,
    /* The 32-bit replay counter ran out and time has not moved on. */
    SHIMMER_CTLWRAP_ERR_PID_EXHAUSTED,
    /* Bad arguments (e.g. a plain packet shorter than op | sid). */
    SHIMMER_CTLWRAP_ERR_INVALID,
} ShimmerCtlwrapError;

/* A static description for logs; never NULL. */
const char *shimmer_ctlwrap_error_to_string(ShimmerCtlwrapError err);

#define SHIMMER_CTLWRAP_STATIC_KEY_LEN    256
#define SHIMMER_CTLWRAP_V2_SERVER_KEY_LEN 128
#define SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN 256
#define SHIMMER_CTLWRAP_V2_MAX_WKC_LEN    1024
#define SHIMMER_CTLWRAP_V2_MIN_WKC_LEN    (32 + 256 + 2)
/* Metadata is what is left of a maximal WKc. */
#define SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN                                                        \
    (SHIMMER_CTLWRAP_V2_MAX_WKC_LEN - SHIMMER_CTLWRAP_V2_MIN_WKC_LEN)
#define SHIMMER_CTLWRAP_TLS_CRYPT_TAG_LEN 32
/* The replay counter a tls-crypt-v2 client's first packet carries: OpenVPN
 * 2.6 starts the counter at 0x0f000000 and increments before sending, and a
 * 2.6 server reads the 0x0f top byte as "this client can resend its WKc"
 * (early negotiation). */
#define SHIMMER_CTLWRAP_EARLY_NEG_START 0x0f000000u
#define SHIMMER_CTLWRAP_EARLY_NEG_MASK  0xff000000u
/* TLV in the payload of a 2.6 server's HARD_RESET_SERVER_V2 when the client
 * announced early negotiation: type 1 (flags), length 2, flag 1 = resend WKc
 * in a CONTROL_WKC_V1. */
#define SHIMMER_CTLWRAP_TLV_EARLY_NEG_FLAGS       0x0001
#define SHIMMER_CTLWRAP_EARLY_NEG_FLAG_RESEND_WKC 0x0001

typedef struct ShimmerCtlwrap ShimmerCtlwrap;

/* Unwrap results besides the inner packet. */
typedef struct {
    /* FALSE only for SHIMMER_CTLWRAP_NONE, which has no replay fields. */
    gboolean has_replay;
    guint32 replay_pid;
    guint32 replay_time;
    /* tls-crypt-v2 server: the packet carried a WKc that was verified. */
    gboolean wkc_verified;
    /* ...and this packet is the one that installed the client key. */
    gboolean client_key_installed;
} ShimmerCtlwrapInfo;

/* Constructors. The key bytes are copied. They return NULL only where noted. */
ShimmerCtlwrap *shimmer_ctlwrap_new_none(void);

/* NULL if DIGEST or DIRECTION is out of range. */
ShimmerCtlwrap *shimmer_ctlwrap_new_tls_auth(const guint8 key[SHIMMER_CTLWRAP_STATIC_KEY_LEN],
                                             ShimmerCtlwrapDigest digest,
                                             ShimmerKeyDirection direction);

ShimmerCtlwrap *shimmer_ctlwrap_new_tls_crypt(const guint8 key[SHIMMER_CTLWRAP_STATIC_KEY_LEN],
                                              ShimmerCtlwrapRole role);

/* KC: the first 256 bytes of the client key file; WKC: the rest. NULL if
 * WKC_LEN is outside [MIN_WKC_LEN, MAX_WKC_LEN] or WKc's last two bytes are
 * not WKC_LEN (big endian). The replay counter starts for early negotiation:
 * the first packet carries SHIMMER_CTLWRAP_EARLY_NEG_START + 1. */
ShimmerCtlwrap *
shimmer_ctlwrap_new_tls_crypt_v2_client(const guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN],
                                        const guint8 *wkc, gsize wkc_len);

/* A server-side session wrapper. It learns its client key from the first
 * HARD_RESET_CLIENT_V3 or CONTROL_WKC_V1 it unwraps. */
ShimmerCtlwrap *
shimmer_ctlwrap_new_tls_crypt_v2_server(const guint8 server_key[SHIMMER_CTLWRAP_V2_SERVER_KEY_LEN]);

/* Wipes all keys and frees. NULL is fine. */
void shimmer_ctlwrap_free(ShimmerCtlwrap *w);

ShimmerCtlwrapMode shimmer_ctlwrap_get_mode(const ShimmerCtlwrap *w);

/* How many bytes wrapping a plain packet with OPCODE adds (WKc included). */
gsize shimmer_ctlwrap_overhead(const ShimmerCtlwrap *w, guint opcode);

/* The replay pid the next wrapped packet will carry. */
guint32 shimmer_ctlwrap_get_next_pid(const ShimmerCtlwrap *w);

/* Overrides the outgoing counter: for tests and for resuming a session. PID 0
 * is never sent: it is treated as 1. */
void shimmer_ctlwrap_set_next_pid(ShimmerCtlwrap *w, guint32 pid);

/*
 * Wraps the plain control packet PLAIN[0..PLAIN_LEN) into OUT and sets
 * *OUT_LEN. NOW is the caller's clock in seconds: like OpenVPN, the wrapper
 * latches the time of its first packet and sends that with every packet
 * (a receiver's replay window resets whenever the time moves), updating it
 * only when the 32-bit counter rolls over. Retransmissions are new wraps with
 * new pids.
 * Errors: INVALID (PLAIN_LEN < 9), BAD_OPCODE (not control, or an opcode
 * this mode/role never sends), NO_CLIENT_KEY (v2 server before a client key),
 * NO_SPACE, PID_EXHAUSTED. Nothing is consumed on error.
 */
ShimmerCtlwrapError shimmer_ctlwrap_wrap(ShimmerCtlwrap *w, const guint8 *plain, gsize plain_len,
                                         guint32 now, guint8 *out, gsize out_size, gsize *out_len);

/*
 * Authenticates and unwraps the received packet PKT[0..LEN). On success OUT
 * holds the plain control packet (op | sid | n_acks | ...; parse it with
 * shimmer_packet_parse_control) and *INFO the replay pid and time, which the
 * caller must check before acting on the packet. Nothing but the first byte
 * and the lengths is looked at before the packet authenticates; comparisons
 * are constant-time. On error OUT is wiped and the wrapper is unchanged.
 * A tls-crypt-v2 server verifies the WKc of V3/WKC_V1 packets with the
 * server key first; the first such packet that also authenticates installs
 * the client key, later ones must carry the same key.
 * Errors: TRUNCATED, BAD_OPCODE, AUTH, WKC_MALFORMED, WKC_AUTH,
 * NO_CLIENT_KEY, NO_SPACE.
 */
ShimmerCtlwrapError shimmer_ctlwrap_unwrap(ShimmerCtlwrap *w, const guint8 *pkt, gsize len,
                                           guint8 *out, gsize out_size, gsize *out_len,
                                           ShimmerCtlwrapInfo *info);

/* tls-crypt-v2 server: the metadata of the installed client key (type byte
 * first: 0x00 user data, 0x01 64-bit BE timestamp). NULL, *LEN 0 if none. */
const guint8 *shimmer_ctlwrap_get_metadata(const ShimmerCtlwrap *w, gsize *len);

/*
 * tls-crypt-v2, stand-alone: verifies WKc[0..WKC_LEN) with the 128-byte
 * server key and decrypts it into KC and METADATA (METADATA_SIZE bytes of
 * room; METADATA_LEN set). Errors: WKC_MALFORMED (length out of range or
 * not matching its trailer), WKC_AUTH, NO_SPACE (metadata). On error KC and
 * METADATA are wiped.
 */
ShimmerCtlwrapError
shimmer_ctlwrap_unwrap_wkc(const guint8 server_key[SHIMMER_CTLWRAP_V2_SERVER_KEY_LEN],
                           const guint8 *wkc, gsize wkc_len,
                           guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN], guint8 *metadata,
                           gsize metadata_size, gsize *metadata_len);

/*
 * tls-crypt-v2, stand-alone: wraps KC and METADATA into a WKc (for key
 * generation and tests). Errors: INVALID (METADATA_LEN above
 * SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN), NO_SPACE.
 */
ShimmerCtlwrapError
shimmer_ctlwrap_wrap_wkc(const guint8 server_key[SHIMMER_CTLWRAP_V2_SERVER_KEY_LEN],
                         const guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN], const guint8 *metadata,
                         gsize metadata_len, guint8 *out, gsize out_size, gsize *out_len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerCtlwrap, shimmer_ctlwrap_free)

G_END_DECLS
