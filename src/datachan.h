/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The AEAD data channel of OpenVPN 2.6: one key object per direction, and
 * functions that turn a plaintext into a DATA_V1/DATA_V2 packet and back.
 *
 * Wire layout (all integers big endian):
 *   DATA_V2: op<<3|key_id (1) | peer_id (3) | packet_id (4) | tag (16) | ciphertext
 *            AAD = the first 8 bytes (opcode, key id, peer id and packet id)
 *   DATA_V1: op<<3|key_id (1) | packet_id (4) | tag (16) | ciphertext
 *            AAD = the packet id only: the V1 opcode byte is not authenticated
 *   nonce (both) = packet_id (4) | implicit IV (8)
 * The key is keys[d].cipher[0..keylen) and the implicit IV keys[d].hmac[0..8)
 * of the 256-byte key2 block.
 *
 * Nothing here allocates per packet: the caller owns every buffer. Encrypting
 * or decrypting in place is supported when the payload sits exactly where the
 * other side expects it (see shimmer_datachan_seal_v2()); any other overlap
 * between input and output is refused.
 *
 * The data channel does not judge packet ids: the caller checks the id
 * against the replay window (replay.h) before opening - it can read it with
 * shimmer_datachan_peek_packet_id() - and records it after the packet opened.
 *
 * Per-packet functions return a ShimmerDatachanResult instead of setting a
 * GError: forged and stray packets are routine input, and a GError would be
 * an allocation for each.
 *
 * Threads: every seal and open mutates per-message cipher state, so a key
 * object holds one cipher context per "lane" (shimmer_datachan_key_new_lanes())
 * and each thread uses a lane of its own. The packet-id counter of an
 * encrypt key is shared by its lanes and taken atomically: seals on different
 * lanes may run at the same time and never share an id. The functions
 * without a lane argument use lane 0.
 */

/* The most lanes a key object holds. */
#define SHIMMER_DATACHAN_MAX_LANES 64

typedef enum {
    SHIMMER_DATACHAN_AES_128_GCM,
    SHIMMER_DATACHAN_AES_256_GCM,
    SHIMMER_DATACHAN_CHACHA20_POLY1305,
    SHIMMER_DATACHAN_AES_192_GCM,
} ShimmerDatachanCipher;

/* Which library does the arithmetic. Both give identical bytes; they differ
 * only in speed (tests/bench-datachan.c measures them). */
typedef enum {
    SHIMMER_DATACHAN_BACKEND_NETTLE,
    SHIMMER_DATACHAN_BACKEND_GNUTLS,
} ShimmerDatachanBackend;

/*
 * The backend to use unless there is a reason not to: GnuTLS, faster by about
 * a fifth for AES-GCM and level for ChaCha20-Poly1305 (where GnuTLS calls
 * Nettle's implementation, so only call overhead differs).
 * bench-datachan on the development machine (2-core AMD EPYC VM with AES-NI,
 * PCLMULQDQ, AVX2, VAES; Debian 12, Nettle 3.8.1, GnuTLS 3.7.9; DATA_V2,
 * 1400-byte payload, seal + open on one core; Mbit/s of payload per CPU
 * second, median of 5 runs of 1 s on a shared machine; runs spread by up
 * to 20%, but GnuTLS won every AES-GCM run):
 *                      Nettle   GnuTLS   Nettle/GnuTLS
 *   AES-128-GCM          6430     7900            0.81
 *   AES-256-GCM          5780     6960            0.83
 *   CHACHA20-POLY1305    1490     1440            1.03
 * (A later single run with AES-192-GCM added: 6682 / 9404 = 0.71.)
 */
#define SHIMMER_DATACHAN_BACKEND_DEFAULT SHIMMER_DATACHAN_BACKEND_GNUTLS

typedef enum {
    SHIMMER_DATACHAN_ENCRYPT,
    SHIMMER_DATACHAN_DECRYPT,
} ShimmerDatachanDirection;

typedef enum {
    SHIMMER_DATACHAN_OK = 0,
    /* open: the packet is shorter than header + tag. */
    SHIMMER_DATACHAN_ERR_SHORT,
    /* open: the first byte is not the opcode of the function's format. */
    SHIMMER_DATACHAN_ERR_OPCODE,
    /* open: the tag does not match (forged, corrupted, or another key). */
    SHIMMER_DATACHAN_ERR_AUTH,
    /* The output buffer is too small. */
    SHIMMER_DATACHAN_ERR_BUFFER,
    /* seal: the packet-id space of this key is used up; rekey. */
    SHIMMER_DATACHAN_ERR_EXHAUSTED,
    /* Misuse: wrong direction, key_id > 7, peer_id > 0xFFFFFF, or buffers
     * that overlap other than in the supported in-place layout. */
    SHIMMER_DATACHAN_ERR_INVALID,
    /* The crypto library failed (should not happen). */
    SHIMMER_DATACHAN_ERR_CRYPTO,
} ShimmerDatachanResult;

/* Opcodes (the high 5 bits of the first byte). */
#define SHIMMER_DATACHAN_OP_DATA_V1 6
#define SHIMMER_DATACHAN_OP_DATA_V2 9

#define SHIMMER_DATACHAN_TAG_LEN         16
#define SHIMMER_DATACHAN_IMPLICIT_IV_LEN 8
#define SHIMMER_DATACHAN_NONCE_LEN       12
#define SHIMMER_DATACHAN_MAX_KEY_LEN     32
/* Bytes in front of the ciphertext: header and tag. */
#define SHIMMER_DATACHAN_V1_OVERHEAD (1 + 4 + SHIMMER_DATACHAN_TAG_LEN)
#define SHIMMER_DATACHAN_V2_OVERHEAD (1 + 3 + 4 + SHIMMER_DATACHAN_TAG_LEN)

/* "No peer id" in DATA_V2. */
#define SHIMMER_DATACHAN_PEER_ID_NONE 0xFFFFFFu

/* A sending key never uses a packet id at or above this: seal fails with
 * SHIMMER_DATACHAN_ERR_EXHAUSTED. This is the point at which OpenVPN starts a
 * renegotiation; we stop there so that ids never approach a wrap. */
#define SHIMMER_DATACHAN_PACKET_ID_LIMIT 0xFF000000u
/* shimmer_datachan_key_needs_rekey() turns TRUE here, 2^24 packets before the
 * limit, so that a renegotiation can finish without traffic stopping: 16.7
 * million packets last 19 s at 10 Gbit/s of 1400-byte packets. */
#define SHIMMER_DATACHAN_PACKET_ID_REKEY 0xFE000000u

typedef struct ShimmerDatachanKey ShimmerDatachanKey;

/* Key length for CIPHER in bytes: 16 or 32. */
gsize shimmer_datachan_cipher_key_len(ShimmerDatachanCipher cipher);

/* OpenVPN's name for CIPHER ("AES-256-GCM", ...). */
const char *shimmer_datachan_cipher_name(ShimmerDatachanCipher cipher);

/* Parses an OpenVPN cipher name, case-insensitively. Returns FALSE for names
 * this module does not implement (including every non-AEAD cipher). */
gboolean shimmer_datachan_cipher_from_name(const char *name, ShimmerDatachanCipher *cipher);

const char *shimmer_datachan_backend_name(ShimmerDatachanBackend backend);

/* A short English description of RESULT, for logs. */
const char *shimmer_datachan_result_to_string(ShimmerDatachanResult result);

/*
 * Creates a key for one direction. KEY must be exactly
 * shimmer_datachan_cipher_key_len(CIPHER) bytes. The key bytes are copied into
 * the cipher context (the caller wipes its own copy); the object holds no
 * other copy. An encrypt key starts its packet-id counter at 1.
 * Errors (domain SHIMMER_DATACHAN_ERROR): INVALID_ARGUMENT for a wrong key
 * length or an unknown cipher/backend, BACKEND when the library refuses the
 * key.
 */
ShimmerDatachanKey *
shimmer_datachan_key_new(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend,
                         ShimmerDatachanDirection direction, const guint8 *key, gsize key_len,
                         const guint8 implicit_iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN],
                         GError **error);

/* As shimmer_datachan_key_new() with N_LANES (1 to SHIMMER_DATACHAN_MAX_LANES)
 * cipher contexts of the same key, one per thread that seals or opens with
 * it; an encrypt key's lanes share its packet-id counter. */
ShimmerDatachanKey *
shimmer_datachan_key_new_lanes(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend,
                               ShimmerDatachanDirection direction, const guint8 *key, gsize key_len,
                               const guint8 implicit_iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN],
                               guint n_lanes, GError **error);

/* The number of lanes of KEY. */
guint shimmer_datachan_key_get_lanes(const ShimmerDatachanKey *key);

/* Wipes every secret the object holds (cipher contexts, implicit IV) and frees
 * it. NULL is fine. */
void shimmer_datachan_key_free(ShimmerDatachanKey *key);

ShimmerDatachanCipher shimmer_datachan_key_get_cipher(const ShimmerDatachanKey *key);
ShimmerDatachanBackend shimmer_datachan_key_get_backend(const ShimmerDatachanKey *key);
ShimmerDatachanDirection shimmer_datachan_key_get_direction(const ShimmerDatachanKey *key);

/* Encrypt keys: the packet id the next seal will use (1 for a fresh key,
 * >= SHIMMER_DATACHAN_PACKET_ID_LIMIT once exhausted). 0 for decrypt keys. */
guint32 shimmer_datachan_key_next_packet_id(const ShimmerDatachanKey *key);

/* TRUE when an encrypt key's next packet id is at or past
 * SHIMMER_DATACHAN_PACKET_ID_REKEY: start a renegotiation now. Always FALSE
 * for decrypt keys. */
gboolean shimmer_datachan_key_needs_rekey(const ShimmerDatachanKey *key);

/* Moves an encrypt key's counter forward to NEXT_ID (tests use it to reach
 * the limits quickly). Returns FALSE and changes nothing when NEXT_ID is
 * below the current counter, because going back would reuse a nonce, or when
 * KEY is a decrypt key. */
gboolean shimmer_datachan_key_skip_to(ShimmerDatachanKey *key, guint32 next_id);

/*
 * Seals PLAIN (PLAIN_LEN bytes, may be 0) into a DATA_V2 packet at OUT, which
 * has room for OUT_SIZE bytes; the packet is PLAIN_LEN +
 * SHIMMER_DATACHAN_V2_OVERHEAD bytes, stored in *OUT_LEN. Uses and advances
 * the key's packet id (stored in *PACKET_ID if non-NULL).
 * In place: PLAIN may be exactly OUT + SHIMMER_DATACHAN_V2_OVERHEAD (build the
 * payload there and leave room in front); otherwise PLAIN and OUT must not
 * overlap.
 * Returns OK; ERR_EXHAUSTED (rekey: nothing written, counter unchanged);
 * ERR_BUFFER; ERR_INVALID (decrypt key, KEY_ID > 7, PEER_ID > 0xFFFFFF, bad
 * overlap); ERR_CRYPTO (the packet id is used up and OUT wiped). After any
 * error other than ERR_CRYPTO, no packet id was used.
 */
ShimmerDatachanResult shimmer_datachan_seal_v2(ShimmerDatachanKey *key, guint8 key_id,
                                               guint32 peer_id, const guint8 *plain,
                                               gsize plain_len, guint8 *out, gsize out_size,
                                               gsize *out_len, guint32 *packet_id);

/* As shimmer_datachan_seal_v2() for DATA_V1 (no peer id; in place means PLAIN
 * == OUT + SHIMMER_DATACHAN_V1_OVERHEAD). */
ShimmerDatachanResult shimmer_datachan_seal_v1(ShimmerDatachanKey *key, guint8 key_id,
                                               const guint8 *plain, gsize plain_len, guint8 *out,
                                               gsize out_size, gsize *out_len, guint32 *packet_id);

/* shimmer_datachan_seal_v2() (V2 TRUE) or _v1() on LANE; ERR_INVALID for a
 * lane the key does not have. Any number of threads may seal at once, each
 * on a lane of its own. */
ShimmerDatachanResult shimmer_datachan_seal(ShimmerDatachanKey *key, guint lane, gboolean v2,
                                            guint8 key_id, guint32 peer_id, const guint8 *plain,
                                            gsize plain_len, guint8 *out, gsize out_size,
                                            gsize *out_len, guint32 *packet_id);

/* Takes N consecutive packet ids of the encrypt key KEY at once (fewer
 * near the limit): the first in *FIRST. Returns how many (0: used up). Each
 * must be given to exactly one shimmer_datachan_seal_reserved(), or never
 * used: a nonce is the key's and the id's, so an id sealed twice reveals
 * plaintext. */
guint shimmer_datachan_key_reserve(ShimmerDatachanKey *key, guint n, guint32 *first);

/* shimmer_datachan_seal() with the reserved PACKET_ID. */
ShimmerDatachanResult shimmer_datachan_seal_reserved(ShimmerDatachanKey *key, guint lane,
                                                     gboolean v2, guint8 key_id, guint32 peer_id,
                                                     guint32 packet_id, const guint8 *plain,
                                                     gsize plain_len, guint8 *out, gsize out_size,
                                                     gsize *out_len);

/*
 * Opens the DATA_V2 packet PACKET (PACKET_LEN bytes): checks the opcode,
 * authenticates header and ciphertext, and writes the plaintext (PACKET_LEN -
 * SHIMMER_DATACHAN_V2_OVERHEAD bytes) to OUT (room for OUT_SIZE), its length
 * to *OUT_LEN and the packet id to *PACKET_ID (both may be NULL). The key id
 * and peer id are not interpreted: the caller chose KEY by them.
 * In place: OUT may be exactly PACKET + SHIMMER_DATACHAN_V2_OVERHEAD;
 * otherwise they must not overlap.
 * On failure nothing is stored in *OUT_LEN / *PACKET_ID. The checks before
 * decryption write nothing; after decryption (ERR_AUTH, ERR_CRYPTO) the
 * plaintext area of OUT is wiped, so no unauthenticated bytes are left behind
 * (in place, that is where the ciphertext was).
 * Returns OK; ERR_SHORT; ERR_OPCODE; ERR_AUTH; ERR_BUFFER; ERR_INVALID (encrypt
 * key, bad overlap); ERR_CRYPTO.
 */
ShimmerDatachanResult shimmer_datachan_open_v2(ShimmerDatachanKey *key, const guint8 *packet,
                                               gsize packet_len, guint8 *out, gsize out_size,
                                               gsize *out_len, guint32 *packet_id);

/* As shimmer_datachan_open_v2() for DATA_V1 (in place means OUT == PACKET +
 * SHIMMER_DATACHAN_V1_OVERHEAD). The key-id bits of the first byte are not
 * authenticated in V1. */
ShimmerDatachanResult shimmer_datachan_open_v1(ShimmerDatachanKey *key, const guint8 *packet,
                                               gsize packet_len, guint8 *out, gsize out_size,
                                               gsize *out_len, guint32 *packet_id);

/* shimmer_datachan_open_v2() (V2 TRUE) or _v1() on LANE. */
ShimmerDatachanResult shimmer_datachan_open(ShimmerDatachanKey *key, guint lane, gboolean v2,
                                            const guint8 *packet, gsize packet_len, guint8 *out,
                                            gsize out_size, gsize *out_len, guint32 *packet_id);

/* Reads the packet id of a DATA_V1 (V2 FALSE) or DATA_V2 (V2 TRUE) packet
 * without authenticating it, so the replay window can reject a packet before
 * any crypto is spent on it. FALSE when the packet is shorter than its
 * overhead. */
gboolean shimmer_datachan_peek_packet_id(gboolean v2, const guint8 *packet, gsize packet_len,
                                         guint32 *packet_id);

/*
 * The bare AEAD under the key, with a caller-chosen nonce and AAD, for
 * known-answer tests of the primitive. Never use these to send: nothing stops
 * a nonce from being reused. IN and OUT are LEN bytes and may be equal (not
 * otherwise overlapping); TAG is 16 bytes. The key's direction must match.
 * open wipes OUT when the tag does not match. Same results as seal/open.
 */
ShimmerDatachanResult shimmer_datachan_raw_seal(ShimmerDatachanKey *key,
                                                const guint8 nonce[SHIMMER_DATACHAN_NONCE_LEN],
                                                const guint8 *aad, gsize aad_len, const guint8 *in,
                                                gsize len, guint8 *out,
                                                guint8 tag[SHIMMER_DATACHAN_TAG_LEN]);
ShimmerDatachanResult shimmer_datachan_raw_open(ShimmerDatachanKey *key,
                                                const guint8 nonce[SHIMMER_DATACHAN_NONCE_LEN],
                                                const guint8 *aad, gsize aad_len, const guint8 *in,
                                                gsize len, guint8 *out,
                                                const guint8 tag[SHIMMER_DATACHAN_TAG_LEN]);

typedef enum {
    SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT,
    SHIMMER_DATACHAN_ERROR_BACKEND,
} ShimmerDatachanError;

#define SHIMMER_DATACHAN_ERROR (shimmer_datachan_error_quark())
GQuark shimmer_datachan_error_quark(void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerDatachanKey, shimmer_datachan_key_free)

G_END_DECLS
