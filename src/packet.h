/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The OpenVPN packet header and the plain control-packet layout, plus the
 * length framing used on TCP. Pure byte handling: no I/O, no clocks, no
 * allocation on the parse path (parsed packets are views into the caller's
 * buffer). Every parser is bounds-checked and trusts no length it reads.
 *
 * Plain control layout (after any tls-auth/tls-crypt unwrapping):
 *   op<<3|key_id (1) | own_session_id (8) | n_acks (1) | n_acks x pid (4, BE) |
 *   remote_session_id (8, only if n_acks > 0) | msg_pid (4, BE; not in ACK_V1) |
 *   payload
 */

/* Opcodes (the top five bits of the first byte). 1 and 2 are the obsolete
 * key-method-1 resets, which we never accept. */
typedef enum {
    SHIMMER_OP_SOFT_RESET_V1 = 3,
    SHIMMER_OP_CONTROL_V1 = 4,
    SHIMMER_OP_ACK_V1 = 5,
    SHIMMER_OP_DATA_V1 = 6,
    SHIMMER_OP_HARD_RESET_CLIENT_V2 = 7,
    SHIMMER_OP_HARD_RESET_SERVER_V2 = 8,
    SHIMMER_OP_DATA_V2 = 9,
    SHIMMER_OP_HARD_RESET_CLIENT_V3 = 10,
    SHIMMER_OP_CONTROL_WKC_V1 = 11,
} ShimmerOpcode;

#define SHIMMER_SESSION_ID_LEN 8
#define SHIMMER_KEY_ID_MAX     7
/* At most this many acks ride on a packet that also carries a message... */
#define SHIMMER_PACKET_MAX_ACKS_CONTROL 4
/* ...and on an ACK_V1; also the most any parsed packet may claim. */
#define SHIMMER_PACKET_MAX_ACKS 8
/* op + session id + n_acks: the shortest possible plain control packet. */
#define SHIMMER_PACKET_MIN_CONTROL_LEN (1 + SHIMMER_SESSION_ID_LEN + 1)

typedef enum {
    SHIMMER_PACKET_OK = 0,
    /* The buffer ends before a field the layout says is there. */
    SHIMMER_PACKET_ERR_TRUNCATED,
    /* Opcode 0..2 or > 11, or an opcode not allowed here. */
    SHIMMER_PACKET_ERR_BAD_OPCODE,
    /* A data-channel opcode was given to a control-channel function. */
    SHIMMER_PACKET_ERR_NOT_CONTROL,
    /* n_acks above the limit for this opcode. */
    SHIMMER_PACKET_ERR_TOO_MANY_ACKS,
    /* Bytes after the last field of a packet that has no payload (ACK_V1). */
    SHIMMER_PACKET_ERR_TRAILING,
    /* The output buffer is too small. */
    SHIMMER_PACKET_ERR_NO_SPACE,
    /* A length is zero or above the configured maximum (TCP framing). */
    SHIMMER_PACKET_ERR_BAD_LENGTH,
    /* The arguments describe a packet that cannot be encoded (e.g. key_id > 7,
     * a payload on ACK_V1). */
    SHIMMER_PACKET_ERR_INVALID,
} ShimmerPacketError;

/* A static description for logs; never NULL. */
const char *shimmer_packet_error_to_string(ShimmerPacketError err);

/* "CONTROL_V1" etc.; "UNKNOWN" for anything else. Never NULL. */
const char *shimmer_packet_opcode_name(guint opcode);

static inline guint shimmer_packet_opcode(guint8 first_byte)
{
    return first_byte >> 3;
}

static inline guint shimmer_packet_key_id(guint8 first_byte)
{
    return first_byte & 0x07;
}

static inline guint8 shimmer_packet_op_byte(guint opcode, guint key_id)
{
    return (guint8)(((opcode & 0x1f) << 3) | (key_id & 0x07));
}

typedef enum {
    SHIMMER_PACKET_KIND_INVALID = 0,
    SHIMMER_PACKET_KIND_CONTROL,
    SHIMMER_PACKET_KIND_DATA,
} ShimmerPacketKind;

/* TRUE for the opcodes this implementation accepts on the control channel:
 * 3, 4, 5, 7, 8, 10, 11. */
gboolean shimmer_packet_opcode_is_control(guint opcode);

/* TRUE for DATA_V1 and DATA_V2. */
gboolean shimmer_packet_opcode_is_data(guint opcode);

/* Classifies a received datagram by its first byte. An empty buffer or an
 * unknown/obsolete opcode is SHIMMER_PACKET_KIND_INVALID. Looks at nothing
 * else: the caller still has to authenticate the packet. */
ShimmerPacketKind shimmer_packet_classify(const guint8 *buf, gsize len);

/* A parsed (or to-be-built) plain control packet. PAYLOAD points into the
 * buffer given to shimmer_packet_parse_control (or is caller data for
 * building); it is only valid as long as that buffer. */
typedef struct {
    guint8 opcode;
    guint8 key_id;
    guint8 session_id[SHIMMER_SESSION_ID_LEN];
    guint n_acks;
    guint32 acks[SHIMMER_PACKET_MAX_ACKS];
    /* Present exactly when n_acks > 0. */
    guint8 remote_session_id[SHIMMER_SESSION_ID_LEN];
    /* FALSE only for ACK_V1. */
    gboolean has_msg_pid;
    guint32 msg_pid;
    const guint8 *payload;
    gsize payload_len;
} ShimmerControlPacket;

/*
 * Parses the plain control layout in BUF[0..LEN). On SHIMMER_PACKET_OK, *OUT
 * is filled; on error *OUT is zeroed.
 * Errors: TRUNCATED (any field missing), NOT_CONTROL (DATA_V1/V2),
 * BAD_OPCODE (0..2, 12..31), TOO_MANY_ACKS (n_acks > 8), TRAILING (ACK_V1
 * followed by anything).
 * Accepts up to 8 acks on every opcode (a peer may be more generous than we
 * are); the stricter limit applies only when building.
 */
ShimmerPacketError shimmer_packet_parse_control(const guint8 *buf, gsize len,
                                                ShimmerControlPacket *out);

/* The encoded size of PKT (without checking it). */
gsize shimmer_packet_control_size(const ShimmerControlPacket *pkt);

/*
 * Encodes PKT into OUT[0..OUT_SIZE) and sets *OUT_LEN. has_msg_pid is ignored:
 * a msg_pid is written for every opcode but ACK_V1.
 * Errors: NOT_CONTROL / BAD_OPCODE (opcode), INVALID (key_id > 7, ACK_V1 with
 * no ack or with a payload, payload_len > 0 with a NULL payload),
 * TOO_MANY_ACKS (more than 4, or 8 on ACK_V1), NO_SPACE. OUT is untouched on
 * error.
 */
ShimmerPacketError shimmer_packet_build_control(const ShimmerControlPacket *pkt, guint8 *out,
                                                gsize out_size, gsize *out_len);

/* ---- TCP framing: every packet is preceded by its length, u16 BE. ---- */

#define SHIMMER_TCP_PREFIX_LEN 2
#define SHIMMER_TCP_MAX_PACKET 0xffff

/* Writes the two-byte prefix for a packet of LEN bytes. Errors: BAD_LENGTH
 * (LEN is 0 or > 65535). */
ShimmerPacketError shimmer_tcp_write_prefix(gsize len, guint8 out[SHIMMER_TCP_PREFIX_LEN]);

/*
 * A streaming splitter: feed it the stream in chunks of any size and it hands
 * back whole packets. It owns one reassembly buffer of MAX_PACKET bytes and
 * copies only packets that straddle chunks; a packet wholly inside a chunk is
 * returned as a view into that chunk.
 */
typedef struct ShimmerTcpSplitter ShimmerTcpSplitter;

/* MAX_PACKET: 1..65535; larger values are clamped to 65535, 0 becomes 1. */
ShimmerTcpSplitter *shimmer_tcp_splitter_new(gsize max_packet);
void shimmer_tcp_splitter_free(ShimmerTcpSplitter *s);

/*
 * Consumes bytes from DATA[0..LEN) and stops after at most one packet is
 * complete. Sets *CONSUMED to the number of bytes used (the caller calls again
 * with the rest), and *PKT / *PKT_LEN to a whole packet (without its prefix)
 * or to NULL / 0 when more bytes are needed. *PKT stays valid until the next
 * call on S or until DATA is released, whichever comes first.
 * Errors: BAD_LENGTH when a prefix announces 0 bytes or more than the
 * maximum. The stream cannot be resynchronised after that: every further
 * call returns BAD_LENGTH (the caller closes the connection).
 */
ShimmerPacketError shimmer_tcp_splitter_feed(ShimmerTcpSplitter *s, const guint8 *data, gsize len,
                                             gsize *consumed, const guint8 **pkt, gsize *pkt_len);

/* Bytes of an incomplete packet (prefix included) held back so far; non-zero
 * at end of stream means the peer closed mid-packet. */
gsize shimmer_tcp_splitter_pending(const ShimmerTcpSplitter *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerTcpSplitter, shimmer_tcp_splitter_free)

G_END_DECLS
