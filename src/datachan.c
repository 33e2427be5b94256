/* SPDX-License-Identifier: MIT */
#include "datachan.h"

#include "bytes.h"
#include "secure.h"

#include <stdint.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/chacha-poly1305.h>
#include <nettle/gcm.h>
#include <nettle/memops.h>

G_STATIC_ASSERT(GCM_DIGEST_SIZE == SHIMMER_DATACHAN_TAG_LEN);
G_STATIC_ASSERT(CHACHA_POLY1305_DIGEST_SIZE == SHIMMER_DATACHAN_TAG_LEN);
G_STATIC_ASSERT(CHACHA_POLY1305_NONCE_SIZE == SHIMMER_DATACHAN_NONCE_LEN);
G_STATIC_ASSERT(GCM_IV_SIZE == SHIMMER_DATACHAN_NONCE_LEN);

/* The expanded key of whichever backend and cipher is in use. Nettle keeps
 * the per-message state in the same context, hence the non-const key in
 * every call, and one context per lane. */
typedef union {
    struct gcm_aes128_ctx aes128;
    struct gcm_aes192_ctx aes192;
    struct gcm_aes256_ctx aes256;
    struct chacha_poly1305_ctx chacha;
    gnutls_aead_cipher_hd_t gnutls;
} CipherCtx;

struct ShimmerDatachanKey {
    ShimmerDatachanCipher cipher;
    ShimmerDatachanBackend backend;
    ShimmerDatachanDirection direction;
    /* Encrypt keys only: the id the next sealed packet gets. Shared by the
     * lanes, so it is only touched atomically (seal_id()). */
    guint32 next_packet_id;
    guint n_lanes;
    guint8 implicit_iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN];
    /* One context per lane, STRIDE bytes apart: a GnuTLS handle, or a
     * Nettle context (some 4 KiB for GCM's tables). Sized by the backend,
     * so that a server's many GnuTLS keys with lanes for every worker do
     * not each carry Nettle's tables unused. */
    gsize stride;
    guint8 ctx_mem[] __attribute__((aligned(16)));
};

static gsize ctx_stride(ShimmerDatachanBackend backend)
{
    if (backend == SHIMMER_DATACHAN_BACKEND_GNUTLS)
        return sizeof(gnutls_aead_cipher_hd_t);
    return (sizeof(CipherCtx) + 15) & ~(gsize)15;
}

static gnutls_aead_cipher_hd_t *hd_of(ShimmerDatachanKey *k, guint lane)
{
    return (gnutls_aead_cipher_hd_t *)(void *)(k->ctx_mem + lane * k->stride);
}

static CipherCtx *nettle_of(ShimmerDatachanKey *k, guint lane)
{
    return (CipherCtx *)(void *)(k->ctx_mem + lane * k->stride);
}

GQuark shimmer_datachan_error_quark(void)
{
    return g_quark_from_static_string("shimmer-datachan-error-quark");
}

gsize shimmer_datachan_cipher_key_len(ShimmerDatachanCipher cipher)
{
    switch (cipher) {
    case SHIMMER_DATACHAN_AES_128_GCM:
        return 16;
    case SHIMMER_DATACHAN_AES_192_GCM:
        return 24;
    case SHIMMER_DATACHAN_AES_256_GCM:
    case SHIMMER_DATACHAN_CHACHA20_POLY1305:
        return 32;
    }
    return 0;
}

const char *shimmer_datachan_cipher_name(ShimmerDatachanCipher cipher)
{
    switch (cipher) {
    case SHIMMER_DATACHAN_AES_128_GCM:
        return "AES-128-GCM";
    case SHIMMER_DATACHAN_AES_192_GCM:
        return "AES-192-GCM";
    case SHIMMER_DATACHAN_AES_256_GCM:
        return "AES-256-GCM";
    case SHIMMER_DATACHAN_CHACHA20_POLY1305:
        return "CHACHA20-POLY1305";
    }
    return "unknown";
}

gboolean shimmer_datachan_cipher_from_name(const char *name, ShimmerDatachanCipher *cipher)
{
    static const ShimmerDatachanCipher all[] = {
        SHIMMER_DATACHAN_AES_128_GCM,
        SHIMMER_DATACHAN_AES_192_GCM,
        SHIMMER_DATACHAN_AES_256_GCM,
        SHIMMER_DATACHAN_CHACHA20_POLY1305,
    };

    if (name == NULL)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(all); i++) {
        if (g_ascii_strcasecmp(name, shimmer_datachan_cipher_name(all[i])) == 0) {
            if (cipher != NULL)
                *cipher = all[i];
            return TRUE;
        }
    }
    return FALSE;
}

const char *shimmer_datachan_backend_name(ShimmerDatachanBackend backend)
{
    switch (backend) {
    case SHIMMER_DATACHAN_BACKEND_NETTLE:
        return "nettle";
    case SHIMMER_DATACHAN_BACKEND_GNUTLS:
        return "gnutls";
    }
    return "unknown";
}

const char *shimmer_datachan_result_to_string(ShimmerDatachanResult result)
{
    switch (result) {
    case SHIMMER_DATACHAN_OK:
        return "ok";
    case SHIMMER_DATACHAN_ERR_SHORT:
        return "packet too short";
    case SHIMMER_DATACHAN_ERR_OPCODE:
        return "wrong opcode";
    case SHIMMER_DATACHAN_ERR_AUTH:
        return "authentication failed";
    case SHIMMER_DATACHAN_ERR_BUFFER:
        return "output buffer too small";
    case SHIMMER_DATACHAN_ERR_EXHAUSTED:
        return "packet ids exhausted, rekey needed";
    case SHIMMER_DATACHAN_ERR_INVALID:
        return "invalid use";
    case SHIMMER_DATACHAN_ERR_CRYPTO:
        return "crypto library failure";
    }
    return "unknown";
}

static gnutls_cipher_algorithm_t gnutls_algorithm(ShimmerDatachanCipher cipher)
{
    switch (cipher) {
    case SHIMMER_DATACHAN_AES_128_GCM:
        return GNUTLS_CIPHER_AES_128_GCM;
    case SHIMMER_DATACHAN_AES_192_GCM:
        return GNUTLS_CIPHER_AES_192_GCM;
    case SHIMMER_DATACHAN_AES_256_GCM:
        return GNUTLS_CIPHER_AES_256_GCM;
    case SHIMMER_DATACHAN_CHACHA20_POLY1305:
        return GNUTLS_CIPHER_CHACHA20_POLY1305;
    }
    return GNUTLS_CIPHER_UNKNOWN;
}

static gsize key_size(ShimmerDatachanBackend backend, guint n_lanes)
{
    return sizeof(ShimmerDatachanKey) + n_lanes * ctx_stride(backend);
}

ShimmerDatachanKey *
shimmer_datachan_key_new(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend,
                         ShimmerDatachanDirection direction, const guint8 *key, gsize key_len,
                         const guint8 implicit_iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN], GError **error)
{
    return shimmer_datachan_key_new_lanes(cipher, backend, direction, key, key_len, implicit_iv, 1,
                                          error);
}

ShimmerDatachanKey *
shimmer_datachan_key_new_lanes(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend,
                               ShimmerDatachanDirection direction, const guint8 *key, gsize key_len,
                               const guint8 implicit_iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN],
                               guint n_lanes, GError **error)
{
    gsize want = shimmer_datachan_cipher_key_len(cipher);
    ShimmerDatachanKey *k;

    if (want == 0) {
        g_set_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT,
                    "Unknown data-channel cipher %d", (int)cipher);
        return NULL;
    }
    if (backend != SHIMMER_DATACHAN_BACKEND_NETTLE && backend != SHIMMER_DATACHAN_BACKEND_GNUTLS) {
        g_set_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT,
                    "Unknown data-channel backend %d", (int)backend);
        return NULL;
    }
    if (direction != SHIMMER_DATACHAN_ENCRYPT && direction != SHIMMER_DATACHAN_DECRYPT) {
        g_set_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT,
                    "Unknown data-channel direction %d", (int)direction);
        return NULL;
    }
    if (key == NULL || key_len != want || implicit_iv == NULL) {
        g_set_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT,
                    "%s needs a %" G_GSIZE_FORMAT "-byte key and an 8-byte implicit IV",
                    shimmer_datachan_cipher_name(cipher), want);
        return NULL;
    }
    if (n_lanes == 0 || n_lanes > SHIMMER_DATACHAN_MAX_LANES) {
        g_set_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT,
                    "A key has 1 to %d lanes, not %u", SHIMMER_DATACHAN_MAX_LANES, n_lanes);
        return NULL;
    }

    k = g_malloc0(key_size(backend, n_lanes));
    k->stride = ctx_stride(backend);
    k->cipher = cipher;
    k->backend = backend;
    k->direction = direction;
    k->n_lanes = n_lanes;
    k->next_packet_id = direction == SHIMMER_DATACHAN_ENCRYPT ? 1 : 0;
    memcpy(k->implicit_iv, implicit_iv, sizeof(k->implicit_iv));

    for (guint lane = 0; lane < n_lanes; lane++) {
        if (backend == SHIMMER_DATACHAN_BACKEND_GNUTLS) {
            gnutls_aead_cipher_hd_t *hd = hd_of(k, lane);
            /* GnuTLS copies the key into its own context and wipes that on
             * deinit; the datum only borrows ours. */
            gnutls_datum_t datum = {(unsigned char *)key, (unsigned int)key_len};
            int ret = gnutls_aead_cipher_init(hd, gnutls_algorithm(cipher), &datum);

            if (ret < 0) {
                g_set_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_BACKEND,
                            "GnuTLS refused the %s key: %s", shimmer_datachan_cipher_name(cipher),
                            gnutls_strerror(ret));
                *hd = NULL;
                shimmer_datachan_key_free(k);
                return NULL;
            }
            continue;
        }

        CipherCtx *c = nettle_of(k, lane);
        switch (cipher) {
        case SHIMMER_DATACHAN_AES_128_GCM:
            gcm_aes128_set_key(&c->aes128, key);
            break;
        case SHIMMER_DATACHAN_AES_192_GCM:
            gcm_aes192_set_key(&c->aes192, key);
            break;
        case SHIMMER_DATACHAN_AES_256_GCM:
            gcm_aes256_set_key(&c->aes256, key);
            break;
        case SHIMMER_DATACHAN_CHACHA20_POLY1305:
            chacha_poly1305_set_key(&c->chacha, key);
            break;
        }
    }
    return k;
}

void shimmer_datachan_key_free(ShimmerDatachanKey *key)
{
    if (key == NULL)
        return;
    for (guint lane = 0; lane < key->n_lanes; lane++) {
        if (key->backend == SHIMMER_DATACHAN_BACKEND_GNUTLS && *hd_of(key, lane) != NULL)
            gnutls_aead_cipher_deinit(*hd_of(key, lane));
    }
    /* The Nettle contexts hold the expanded key (and the GHASH key); the
     * implicit IV is part of the nonce secret too. */
    shimmer_wipe(key, key_size(key->backend, key->n_lanes));
    g_free(key);
}

guint shimmer_datachan_key_get_lanes(const ShimmerDatachanKey *key)
{
    g_return_val_if_fail(key != NULL, 0);
    return key->n_lanes;
}

ShimmerDatachanCipher shimmer_datachan_key_get_cipher(const ShimmerDatachanKey *key)
{
    g_return_val_if_fail(key != NULL, SHIMMER_DATACHAN_AES_256_GCM);
    return key->cipher;
}

ShimmerDatachanBackend shimmer_datachan_key_get_backend(const ShimmerDatachanKey *key)
{
    g_return_val_if_fail(key != NULL, SHIMMER_DATACHAN_BACKEND_DEFAULT);
    return key->backend;
}

ShimmerDatachanDirection shimmer_datachan_key_get_direction(const ShimmerDatachanKey *key)
{
    g_return_val_if_fail(key != NULL, SHIMMER_DATACHAN_DECRYPT);
    return key->direction;
}

guint32 shimmer_datachan_key_next_packet_id(const ShimmerDatachanKey *key)
{
    g_return_val_if_fail(key != NULL, 0);
    return __atomic_load_n(&key->next_packet_id, __ATOMIC_RELAXED);
}

gboolean shimmer_datachan_key_needs_rekey(const ShimmerDatachanKey *key)
{
    g_return_val_if_fail(key != NULL, FALSE);
    return key->direction == SHIMMER_DATACHAN_ENCRYPT &&
           shimmer_datachan_key_next_packet_id(key) >= SHIMMER_DATACHAN_PACKET_ID_REKEY;
}

gboolean shimmer_datachan_key_skip_to(ShimmerDatachanKey *key, guint32 next_id)
{
    g_return_val_if_fail(key != NULL, FALSE);
    if (key->direction != SHIMMER_DATACHAN_ENCRYPT)
        return FALSE;
    guint32 cur = __atomic_load_n(&key->next_packet_id, __ATOMIC_RELAXED);
    do {
        if (next_id < cur)
            return FALSE;
    } while (!__atomic_compare_exchange_n(&key->next_packet_id, &cur, next_id, TRUE,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return TRUE;
}

guint shimmer_datachan_key_reserve(ShimmerDatachanKey *key, guint n, guint32 *first)
{
    g_return_val_if_fail(key != NULL, 0);
    if (key->direction != SHIMMER_DATACHAN_ENCRYPT || n == 0)
        return 0;
    guint32 cur = __atomic_load_n(&key->next_packet_id, __ATOMIC_RELAXED);
    guint got;
    do {
        if (cur >= SHIMMER_DATACHAN_PACKET_ID_LIMIT)
            return 0;
        got = (guint)MIN((guint32)n, SHIMMER_DATACHAN_PACKET_ID_LIMIT - cur);
    } while (!__atomic_compare_exchange_n(&key->next_packet_id, &cur, cur + got, TRUE,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    *first = cur;
    return got;
}

/* Takes the next packet id for a seal: FALSE (nothing taken) once the ids
 * are used up. A compare-and-swap rather than an add, so that the counter
 * never moves past the limit however many lanes keep trying. */
static gboolean take_packet_id(ShimmerDatachanKey *key, guint32 *id)
{
    guint32 cur = __atomic_load_n(&key->next_packet_id, __ATOMIC_RELAXED);
    do {
        if (cur >= SHIMMER_DATACHAN_PACKET_ID_LIMIT)
            return FALSE;
    } while (!__atomic_compare_exchange_n(&key->next_packet_id, &cur, cur + 1, TRUE,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    *id = cur;
    return TRUE;
}

/* The bare AEAD. IN and OUT are equal or disjoint (checked by the callers). */
static ShimmerDatachanResult aead_seal(ShimmerDatachanKey *k, guint lane, const guint8 *nonce,
                                       const guint8 *aad, gsize aad_len, const guint8 *in,
                                       gsize len, guint8 *out, guint8 *tag)
{
    CipherCtx *c = k->backend == SHIMMER_DATACHAN_BACKEND_GNUTLS ? NULL : nettle_of(k, lane);

    if (k->backend == SHIMMER_DATACHAN_BACKEND_GNUTLS) {
        /* encryptv2 works in place and writes the tag separately, which
         * suits a layout with the tag in front of the ciphertext; the
         * one-shot gnutls_aead_cipher_encrypt() appends the tag and would
         * need the ciphertext moved. */
        giovec_t auth = {(void *)aad, aad_len};
        giovec_t data = {out, len};
        size_t tag_len = SHIMMER_DATACHAN_TAG_LEN;
        int ret;

        if (len > 0 && out != in)
            memcpy(out, in, len);
        ret = gnutls_aead_cipher_encryptv2(*hd_of(k, lane), nonce, SHIMMER_DATACHAN_NONCE_LEN,
                                           &auth, aad_len > 0 ? 1 : 0, &data, len > 0 ? 1 : 0, tag,
                                           &tag_len);
        if (ret < 0 || tag_len != SHIMMER_DATACHAN_TAG_LEN)
            return SHIMMER_DATACHAN_ERR_CRYPTO;
        return SHIMMER_DATACHAN_OK;
    }

    switch (k->cipher) {
    case SHIMMER_DATACHAN_AES_128_GCM:
        gcm_aes128_set_iv(&c->aes128, SHIMMER_DATACHAN_NONCE_LEN, nonce);
        gcm_aes128_update(&c->aes128, aad_len, aad);
        gcm_aes128_encrypt(&c->aes128, len, out, in);
        gcm_aes128_digest(&c->aes128, SHIMMER_DATACHAN_TAG_LEN, tag);
        break;
    case SHIMMER_DATACHAN_AES_192_GCM:
        gcm_aes192_set_iv(&c->aes192, SHIMMER_DATACHAN_NONCE_LEN, nonce);
        gcm_aes192_update(&c->aes192, aad_len, aad);
        gcm_aes192_encrypt(&c->aes192, len, out, in);
        gcm_aes192_digest(&c->aes192, SHIMMER_DATACHAN_TAG_LEN, tag);
        break;
    case SHIMMER_DATACHAN_AES_256_GCM:
        gcm_aes256_set_iv(&c->aes256, SHIMMER_DATACHAN_NONCE_LEN, nonce);
        gcm_aes256_update(&c->aes256, aad_len, aad);
        gcm_aes256_encrypt(&c->aes256, len, out, in);
        gcm_aes256_digest(&c->aes256, SHIMMER_DATACHAN_TAG_LEN, tag);
        break;
    case SHIMMER_DATACHAN_CHACHA20_POLY1305:
        chacha_poly1305_set_nonce(&c->chacha, nonce);
        chacha_poly1305_update(&c->chacha, aad_len, aad);
        chacha_poly1305_encrypt(&c->chacha, len, out, in);
        chacha_poly1305_digest(&c->chacha, SHIMMER_DATACHAN_TAG_LEN, tag);
        break;
    }
    return SHIMMER_DATACHAN_OK;
}

static ShimmerDatachanResult aead_open(ShimmerDatachanKey *k, guint lane, const guint8 *nonce,
                                       const guint8 *aad, gsize aad_len, const guint8 *in,
                                       gsize len, guint8 *out, const guint8 *tag)
{
    CipherCtx *c = k->backend == SHIMMER_DATACHAN_BACKEND_GNUTLS ? NULL : nettle_of(k, lane);
    /* A copy, because in place the tag sits right in front of OUT in the
     * caller's packet, and GnuTLS wants a non-const pointer. */
    guint8 want[SHIMMER_DATACHAN_TAG_LEN];
    ShimmerDatachanResult result = SHIMMER_DATACHAN_OK;

    memcpy(want, tag, sizeof(want));

    if (k->backend == SHIMMER_DATACHAN_BACKEND_GNUTLS) {
        giovec_t auth = {(void *)aad, aad_len};
        giovec_t data = {out, len};
        int ret;

        if (len > 0 && out != in)
            memcpy(out, in, len);
        ret = gnutls_aead_cipher_decryptv2(*hd_of(k, lane), nonce, SHIMMER_DATACHAN_NONCE_LEN,
                                           &auth, aad_len > 0 ? 1 : 0, &data, len > 0 ? 1 : 0, want,
                                           sizeof(want));
        if (ret == GNUTLS_E_DECRYPTION_FAILED)
            result = SHIMMER_DATACHAN_ERR_AUTH;
        else if (ret < 0)
            result = SHIMMER_DATACHAN_ERR_CRYPTO;
    } else {
        guint8 got[SHIMMER_DATACHAN_TAG_LEN];

        switch (k->cipher) {
        case SHIMMER_DATACHAN_AES_128_GCM:
            gcm_aes128_set_iv(&c->aes128, SHIMMER_DATACHAN_NONCE_LEN, nonce);
            gcm_aes128_update(&c->aes128, aad_len, aad);
            gcm_aes128_decrypt(&c->aes128, len, out, in);
            gcm_aes128_digest(&c->aes128, sizeof(got), got);
            break;
        case SHIMMER_DATACHAN_AES_192_GCM:
            gcm_aes192_set_iv(&c->aes192, SHIMMER_DATACHAN_NONCE_LEN, nonce);
            gcm_aes192_update(&c->aes192, aad_len, aad);
            gcm_aes192_decrypt(&c->aes192, len, out, in);
            gcm_aes192_digest(&c->aes192, sizeof(got), got);
            break;
        case SHIMMER_DATACHAN_AES_256_GCM:
            gcm_aes256_set_iv(&c->aes256, SHIMMER_DATACHAN_NONCE_LEN, nonce);
            gcm_aes256_update(&c->aes256, aad_len, aad);
            gcm_aes256_decrypt(&c->aes256, len, out, in);
            gcm_aes256_digest(&c->aes256, sizeof(got), got);
            break;
        case SHIMMER_DATACHAN_CHACHA20_POLY1305:
            chacha_poly1305_set_nonce(&c->chacha, nonce);
            chacha_poly1305_update(&c->chacha, aad_len, aad);
            chacha_poly1305_decrypt(&c->chacha, len, out, in);
            chacha_poly1305_digest(&c->chacha, sizeof(got), got);
            break;
        }
        /* Constant time, so a forger learns nothing from how long the
         * comparison took. */
        if (!memeql_sec(got, want, sizeof(got)))
            result = SHIMMER_DATACHAN_ERR_AUTH;
    }

    /* Both libraries decrypt before they know whether the tag is right:
     * never leave unauthenticated plaintext in the caller's buffer. */
    if (result != SHIMMER_DATACHAN_OK && len > 0)
        shimmer_wipe(out, len);
    return result;
}

/* Whether [A, A+ALEN) and [B, B+BLEN) share a byte. Compared as integers
 * because relational operators on pointers into different objects are
 * undefined. */
static gboolean overlaps(const void *a, gsize alen, const void *b, gsize blen)
{
    uintptr_t pa = (uintptr_t)a;
    uintptr_t pb = (uintptr_t)b;

    if (alen == 0 || blen == 0)
        return FALSE;
    return pa < pb + blen && pb < pa + alen;
}

static void make_nonce(const ShimmerDatachanKey *k, guint32 packet_id,
                       guint8 nonce[SHIMMER_DATACHAN_NONCE_LEN])
{
    shimmer_write_be32(nonce, packet_id);
    memcpy(nonce + 4, k->implicit_iv, SHIMMER_DATACHAN_IMPLICIT_IV_LEN);
}

/* The header in front of the tag: 8 bytes in V2, 5 in V1. The packet id is
 * its last 4 bytes in both. */
static gsize header_len(gboolean v2)
{
    return v2 ? 8 : 5;
}

/* RESERVED: the id to use (from shimmer_datachan_key_reserve()), or 0 to
 * take the next one. */
static ShimmerDatachanResult seal(ShimmerDatachanKey *key, guint lane, gboolean v2, guint8 key_id,
                                  guint32 peer_id, guint32 reserved, const guint8 *plain,
                                  gsize plain_len, guint8 *out, gsize out_size, gsize *out_len,
                                  guint32 *packet_id)
{
    gsize hdr = header_len(v2);
    gsize overhead = hdr + SHIMMER_DATACHAN_TAG_LEN;
    guint8 nonce[SHIMMER_DATACHAN_NONCE_LEN];
    ShimmerDatachanResult result;
    guint32 id;

    if (key == NULL || key->direction != SHIMMER_DATACHAN_ENCRYPT || key_id > 7 ||
        peer_id > 0xFFFFFF || out == NULL || (plain == NULL && plain_len > 0) ||
        lane >= key->n_lanes)
        return SHIMMER_DATACHAN_ERR_INVALID;
    if (plain_len > G_MAXSIZE - overhead || out_size < overhead + plain_len)
        return SHIMMER_DATACHAN_ERR_BUFFER;
    if (plain != out + overhead && overlaps(plain, plain_len, out, overhead + plain_len))
        return SHIMMER_DATACHAN_ERR_INVALID;
    /* The id is used up before the cipher runs: even a failed encryption
     * must never be followed by another under the same nonce. */
    if (reserved != 0)
        id = reserved;
    else if (!take_packet_id(key, &id))
        return SHIMMER_DATACHAN_ERR_EXHAUSTED;

    if (v2) {
        out[0] = SHIMMER_DATACHAN_OP_DATA_V2 << 3 | key_id;
        shimmer_write_be24(out + 1, peer_id);
    } else {
        out[0] = SHIMMER_DATACHAN_OP_DATA_V1 << 3 | key_id;
    }
    shimmer_write_be32(out + hdr - 4, id);
    make_nonce(key, id, nonce);

    /* V2 authenticates opcode, key id and peer id with the packet id; V1 only
     * the packet id. */
    result = aead_seal(key, lane, nonce, v2 ? out : out + 1, v2 ? 8 : 4, plain, plain_len,
                       out + overhead, out + hdr);
    if (result != SHIMMER_DATACHAN_OK) {
        shimmer_wipe(out, overhead + plain_len);
        return result;
    }

    if (out_len != NULL)
        *out_len = overhead + plain_len;
    if (packet_id != NULL)
        *packet_id = id;
    return SHIMMER_DATACHAN_OK;
}

static ShimmerDatachanResult open_packet(ShimmerDatachanKey *key, guint lane, gboolean v2,
                                         const guint8 *packet, gsize packet_len, guint8 *out,
                                         gsize out_size, gsize *out_len, guint32 *packet_id)
{
    gsize hdr = header_len(v2);
    gsize overhead = hdr + SHIMMER_DATACHAN_TAG_LEN;
    guint8 opcode = v2 ? SHIMMER_DATACHAN_OP_DATA_V2 : SHIMMER_DATACHAN_OP_DATA_V1;
    guint8 nonce[SHIMMER_DATACHAN_NONCE_LEN];
    ShimmerDatachanResult result;
    gsize len;
    guint32 id;

    if (key == NULL || key->direction != SHIMMER_DATACHAN_DECRYPT ||
        (packet == NULL && packet_len > 0) || lane >= key->n_lanes)
        return SHIMMER_DATACHAN_ERR_INVALID;
    if (packet_len < overhead)
        return SHIMMER_DATACHAN_ERR_SHORT;
    if (packet[0] >> 3 != opcode)
        return SHIMMER_DATACHAN_ERR_OPCODE;

    len = packet_len - overhead;
    if (out_size < len || (out == NULL && len > 0))
        return SHIMMER_DATACHAN_ERR_BUFFER;
    if (out != packet + overhead && overlaps(out, len, packet, packet_len))
        return SHIMMER_DATACHAN_ERR_INVALID;

    id = shimmer_read_be32(packet + hdr - 4);
    make_nonce(key, id, nonce);
    result = aead_open(key, lane, nonce, v2 ? packet : packet + 1, v2 ? 8 : 4, packet + overhead,
                       len, out, packet + hdr);
    if (result != SHIMMER_DATACHAN_OK)
        return result;

    if (out_len != NULL)
        *out_len = len;
    if (packet_id != NULL)
        *packet_id = id;
    return SHIMMER_DATACHAN_OK;
}

ShimmerDatachanResult shimmer_datachan_seal_v2(ShimmerDatachanKey *key, guint8 key_id,
                                               guint32 peer_id, const guint8 *plain,
                                               gsize plain_len, guint8 *out, gsize out_size,
                                               gsize *out_len, guint32 *packet_id)
{
    return seal(key, 0, TRUE, key_id, peer_id, 0, plain, plain_len, out, out_size, out_len,
                packet_id);
}

ShimmerDatachanResult shimmer_datachan_seal_v1(ShimmerDatachanKey *key, guint8 key_id,
                                               const guint8 *plain, gsize plain_len, guint8 *out,
                                               gsize out_size, gsize *out_len, guint32 *packet_id)
{
    return seal(key, 0, FALSE, key_id, 0, 0, plain, plain_len, out, out_size, out_len, packet_id);
}

ShimmerDatachanResult shimmer_datachan_seal(ShimmerDatachanKey *key, guint lane, gboolean v2,
                                            guint8 key_id, guint32 peer_id, const guint8 *plain,
                                            gsize plain_len, guint8 *out, gsize out_size,
                                            gsize *out_len, guint32 *packet_id)
{
    return seal(key, lane, v2, key_id, v2 ? peer_id : 0, 0, plain, plain_len, out, out_size,
                out_len, packet_id);
}

ShimmerDatachanResult shimmer_datachan_seal_reserved(ShimmerDatachanKey *key, guint lane,
                                                     gboolean v2, guint8 key_id, guint32 peer_id,
                                                     guint32 packet_id, const guint8 *plain,
                                                     gsize plain_len, guint8 *out, gsize out_size,
                                                     gsize *out_len)
{
    if (packet_id == 0 || packet_id >= SHIMMER_DATACHAN_PACKET_ID_LIMIT)
        return SHIMMER_DATACHAN_ERR_INVALID;
    return seal(key, lane, v2, key_id, v2 ? peer_id : 0, packet_id, plain, plain_len, out, out_size,
                out_len, NULL);
}

ShimmerDatachanResult shimmer_datachan_open(ShimmerDatachanKey *key, guint lane, gboolean v2,
                                            const guint8 *packet, gsize packet_len, guint8 *out,
                                            gsize out_size, gsize *out_len, guint32 *packet_id)
{
    return open_packet(key, lane, v2, packet, packet_len, out, out_size, out_len, packet_id);
}

ShimmerDatachanResult shimmer_datachan_open_v2(ShimmerDatachanKey *key, const guint8 *packet,
                                               gsize packet_len, guint8 *out, gsize out_size,
                                               gsize *out_len, guint32 *packet_id)
{
    return open_packet(key, 0, TRUE, packet, packet_len, out, out_size, out_len, packet_id);
}

ShimmerDatachanResult shimmer_datachan_open_v1(ShimmerDatachanKey *key, const guint8 *packet,
                                               gsize packet_len, guint8 *out, gsize out_size,
                                               gsize *out_len, guint32 *packet_id)
{
    return open_packet(key, 0, FALSE, packet, packet_len, out, out_size, out_len, packet_id);
}

gboolean shimmer_datachan_peek_packet_id(gboolean v2, const guint8 *packet, gsize packet_len,
                                         guint32 *packet_id)
{
    gsize hdr = header_len(v2);

    if (packet == NULL || packet_len < hdr + SHIMMER_DATACHAN_TAG_LEN)
        return FALSE;
    if (packet_id != NULL)
        *packet_id = shimmer_read_be32(packet + hdr - 4);
    return TRUE;
}

ShimmerDatachanResult shimmer_datachan_raw_seal(ShimmerDatachanKey *key,
                                                const guint8 nonce[SHIMMER_DATACHAN_NONCE_LEN],
                                                const guint8 *aad, gsize aad_len, const guint8 *in,
                                                gsize len, guint8 *out,
                                                guint8 tag[SHIMMER_DATACHAN_TAG_LEN])
{
    if (key == NULL || key->direction != SHIMMER_DATACHAN_ENCRYPT || nonce == NULL || tag == NULL ||
        (aad == NULL && aad_len > 0) || ((in == NULL || out == NULL) && len > 0))
        return SHIMMER_DATACHAN_ERR_INVALID;
    if (in != out && overlaps(in, len, out, len))
        return SHIMMER_DATACHAN_ERR_INVALID;
    return aead_seal(key, 0, nonce, aad, aad_len, in, len, out, tag);
}

ShimmerDatachanResult shimmer_datachan_raw_open(ShimmerDatachanKey *key,
                                                const guint8 nonce[SHIMMER_DATACHAN_NONCE_LEN],
                                                const guint8 *aad, gsize aad_len, const guint8 *in,
                                                gsize len, guint8 *out,
                                                const guint8 tag[SHIMMER_DATACHAN_TAG_LEN])
{
    if (key == NULL || key->direction != SHIMMER_DATACHAN_DECRYPT || nonce == NULL || tag == NULL ||
        (aad == NULL && aad_len > 0) || ((in == NULL || out == NULL) && len > 0))
        return SHIMMER_DATACHAN_ERR_INVALID;
    if (in != out && overlaps(in, len, out, len))
        return SHIMMER_DATACHAN_ERR_INVALID;
    return aead_open(key, 0, nonce, aad, aad_len, in, len, out, tag);
}
