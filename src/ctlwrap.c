/* SPDX-License-Identifier: MIT */
#include "ctlwrap.h"

#include <string.h>

#include <nettle/aes.h>
#include <nettle/ctr.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "bytes.h"
#include "secure.h"

/* op | sid: the part of every control packet that stays in the clear. */
#define HDR_LEN (1 + SHIMMER_SESSION_ID_LEN)
/* pid | time */
#define REPLAY_LEN 8
#define TAG_LEN    SHIMMER_CTLWRAP_TLS_CRYPT_TAG_LEN
/* op | sid | pid | time: what the tls-crypt tag covers before the plaintext. */
#define TC_AD_LEN   (HDR_LEN + REPLAY_LEN)
#define TC_OVERHEAD (REPLAY_LEN + TAG_LEN)
#define TC_MIN_LEN  (TC_AD_LEN + TAG_LEN)
/* A key slot of a static key: cipher[64] | hmac[64]. */
#define SLOT_LEN      128
#define SLOT_HMAC_OFF 64
#define CTR_IV_LEN    16

/* AES-256-CTR key and HMAC-SHA256 key of one direction (tls-crypt, and the
 * tls-crypt-v2 server key, which has the same cipher | hmac shape). */
typedef struct {
    struct aes256_ctx aes;
    struct hmac_sha256_ctx hmac;
} CryptKey;

typedef union {
    struct hmac_sha1_ctx sha1;
    struct hmac_sha256_ctx sha256;
    struct hmac_sha512_ctx sha512;
} AuthHmac;

struct ShimmerCtlwrap {
    ShimmerCtlwrapMode mode;

    /* Outgoing replay state: next_pid runs 1..2^32; 2^32 means exhausted. */
    guint64 next_pid;
    guint32 time;
    gboolean time_set;

    /* tls-auth */
    ShimmerCtlwrapDigest digest;
    gsize hmac_len;
    AuthHmac auth_send;
    AuthHmac auth_recv;

    /* tls-crypt, and tls-crypt-v2 once Kc is known */
    CryptKey send;
    CryptKey recv;

    /* tls-crypt-v2 client */
    guint8 wkc[SHIMMER_CTLWRAP_V2_MAX_WKC_LEN];
    gsize wkc_len;

    /* tls-crypt-v2 server */
    CryptKey server;
    gboolean have_kc;
    guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN];
    guint8 metadata[SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN];
    gsize metadata_len;
};

const char *shimmer_ctlwrap_error_to_string(ShimmerCtlwrapError err)
{
    switch (err) {
    case SHIMMER_CTLWRAP_OK:
        return "ok";
    case SHIMMER_CTLWRAP_ERR_TRUNCATED:
        return "packet truncated";
    case SHIMMER_CTLWRAP_ERR_BAD_OPCODE:
        return "opcode not allowed here";
    case SHIMMER_CTLWRAP_ERR_AUTH:
        return "packet authentication failed";
    case SHIMMER_CTLWRAP_ERR_WKC_MALFORMED:
        return "malformed tls-crypt-v2 wrapped client key";
    case SHIMMER_CTLWRAP_ERR_WKC_AUTH:
        return "tls-crypt-v2 wrapped client key authentication failed";
    case SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY:
        return "no tls-crypt-v2 client key yet";
    case SHIMMER_CTLWRAP_ERR_NO_SPACE:
        return "output buffer too small";
    case SHIMMER_CTLWRAP_ERR_PID_EXHAUSTED:
        return "replay packet id exhausted";
    case SHIMMER_CTLWRAP_ERR_INVALID:
        return "invalid argument";
    }
    return "unknown error";
}

/* ---- primitives ---- */

static void crypt_key_init(CryptKey *k, const guint8 slot[SLOT_LEN])
{
    /* tls-crypt uses only the first 32 bytes of each 64-byte half. */
    aes256_set_encrypt_key(&k->aes, slot);
    hmac_sha256_set_key(&k->hmac, 32, slot + SLOT_HMAC_OFF);
}

static void aes256_encrypt_fn(const void *ctx, size_t len, uint8_t *dst, const uint8_t *src)
{
    aes256_encrypt(ctx, len, dst, src);
}

static void crypt_ctr(const CryptKey *k, const guint8 iv[CTR_IV_LEN], const guint8 *src, gsize n,
                      guint8 *dst)
{
    guint8 ctr[CTR_IV_LEN];

    if (n == 0)
        return;
    memcpy(ctr, iv, CTR_IV_LEN);
    ctr_crypt(&k->aes, aes256_encrypt_fn, AES_BLOCK_SIZE, ctr, n, dst, src);
}

static gsize digest_len(ShimmerCtlwrapDigest d)
{
    switch (d) {
    case SHIMMER_CTLWRAP_DIGEST_SHA1:
        return SHA1_DIGEST_SIZE;
    case SHIMMER_CTLWRAP_DIGEST_SHA256:
        return SHA256_DIGEST_SIZE;
    case SHIMMER_CTLWRAP_DIGEST_SHA512:
        return SHA512_DIGEST_SIZE;
    }
    return 0;
}

static void auth_set_key(AuthHmac *h, ShimmerCtlwrapDigest d, const guint8 slot[SLOT_LEN])
{
    /* The HMAC key is the first digest-length bytes of the slot's hmac half. */
    const guint8 *key = slot + SLOT_HMAC_OFF;
    switch (d) {
    case SHIMMER_CTLWRAP_DIGEST_SHA1:
        hmac_sha1_set_key(&h->sha1, SHA1_DIGEST_SIZE, key);
        break;
    case SHIMMER_CTLWRAP_DIGEST_SHA256:
        hmac_sha256_set_key(&h->sha256, SHA256_DIGEST_SIZE, key);
        break;
    case SHIMMER_CTLWRAP_DIGEST_SHA512:
        hmac_sha512_set_key(&h->sha512, SHA512_DIGEST_SIZE, key);
        break;
    }
}

static void auth_update(AuthHmac *h, ShimmerCtlwrapDigest d, const guint8 *data, gsize n)
{
    switch (d) {
    case SHIMMER_CTLWRAP_DIGEST_SHA1:
        hmac_sha1_update(&h->sha1, n, data);
        break;
    case SHIMMER_CTLWRAP_DIGEST_SHA256:
        hmac_sha256_update(&h->sha256, n, data);
        break;
    case SHIMMER_CTLWRAP_DIGEST_SHA512:
        hmac_sha512_update(&h->sha512, n, data);
        break;
    }
}

/* Writes the digest and resets H to its keyed state (Nettle semantics). */
static void auth_final(AuthHmac *h, ShimmerCtlwrapDigest d, guint8 *out)
{
    switch (d) {
    case SHIMMER_CTLWRAP_DIGEST_SHA1:
        hmac_sha1_digest(&h->sha1, SHA1_DIGEST_SIZE, out);
        break;
    case SHIMMER_CTLWRAP_DIGEST_SHA256:
        hmac_sha256_digest(&h->sha256, SHA256_DIGEST_SIZE, out);
        break;
    case SHIMMER_CTLWRAP_DIGEST_SHA512:
        hmac_sha512_digest(&h->sha512, SHA512_DIGEST_SIZE, out);
        break;
    }
}

/* ---- construction ---- */

static ShimmerCtlwrap *ctlwrap_alloc(ShimmerCtlwrapMode mode)
{
    ShimmerCtlwrap *w = g_new0(ShimmerCtlwrap, 1);
    w->mode = mode;
    w->next_pid = 1;
    return w;
}

ShimmerCtlwrap *shimmer_ctlwrap_new_none(void)
{
    return ctlwrap_alloc(SHIMMER_CTLWRAP_NONE);
}

ShimmerCtlwrap *shimmer_ctlwrap_new_tls_auth(const guint8 key[SHIMMER_CTLWRAP_STATIC_KEY_LEN],
                                             ShimmerCtlwrapDigest digest,
                                             ShimmerKeyDirection direction)
{
    const guint8 *send_slot, *recv_slot;

    if (digest_len(digest) == 0)
        return NULL;
    switch (direction) {
    case SHIMMER_KEY_DIRECTION_NONE:
        send_slot = key;
        recv_slot = key;
        break;
    case SHIMMER_KEY_DIRECTION_0:
        send_slot = key;
        recv_slot = key + SLOT_LEN;
        break;
    case SHIMMER_KEY_DIRECTION_1:
        send_slot = key + SLOT_LEN;
        recv_slot = key;
        break;
    default:
        return NULL;
    }

    ShimmerCtlwrap *w = ctlwrap_alloc(SHIMMER_CTLWRAP_TLS_AUTH);
    w->digest = digest;
    w->hmac_len = digest_len(digest);
    auth_set_key(&w->auth_send, digest, send_slot);
    auth_set_key(&w->auth_recv, digest, recv_slot);
    return w;
}

static void set_crypt_slots(ShimmerCtlwrap *w, const guint8 key[SHIMMER_CTLWRAP_STATIC_KEY_LEN],
                            ShimmerCtlwrapRole role)
{
    /* The server sends with slot 0 and the client with slot 1, so each side
     * receives with the other's. */
    const guint8 *slot0 = key, *slot1 = key + SLOT_LEN;
    gboolean server = role == SHIMMER_CTLWRAP_ROLE_SERVER;
    crypt_key_init(&w->send, server ? slot0 : slot1);
    crypt_key_init(&w->recv, server ? slot1 : slot0);
}

ShimmerCtlwrap *shimmer_ctlwrap_new_tls_crypt(const guint8 key[SHIMMER_CTLWRAP_STATIC_KEY_LEN],
                                              ShimmerCtlwrapRole role)
{
    ShimmerCtlwrap *w = ctlwrap_alloc(SHIMMER_CTLWRAP_TLS_CRYPT);
    set_crypt_slots(w, key, role);
    return w;
}

static gboolean wkc_length_ok(const guint8 *wkc, gsize wkc_len)
{
    if (wkc_len < SHIMMER_CTLWRAP_V2_MIN_WKC_LEN || wkc_len > SHIMMER_CTLWRAP_V2_MAX_WKC_LEN)
        return FALSE;
    return shimmer_read_be16(wkc + wkc_len - 2) == wkc_len;
}

ShimmerCtlwrap *
shimmer_ctlwrap_new_tls_crypt_v2_client(const guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN],
                                        const guint8 *wkc, gsize wkc_len)
{
    if (wkc == NULL || !wkc_length_ok(wkc, wkc_len))
        return NULL;

    ShimmerCtlwrap *w = ctlwrap_alloc(SHIMMER_CTLWRAP_TLS_CRYPT_V2_CLIENT);
    set_crypt_slots(w, kc, SHIMMER_CTLWRAP_ROLE_CLIENT);
    memcpy(w->wkc, wkc, wkc_len);
    w->wkc_len = wkc_len;
    w->next_pid = (guint64)SHIMMER_CTLWRAP_EARLY_NEG_START + 1;
    return w;
}

ShimmerCtlwrap *
shimmer_ctlwrap_new_tls_crypt_v2_server(const guint8 server_key[SHIMMER_CTLWRAP_V2_SERVER_KEY_LEN])
{
    ShimmerCtlwrap *w = ctlwrap_alloc(SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER);
    crypt_key_init(&w->server, server_key);
    return w;
}

void shimmer_ctlwrap_free(ShimmerCtlwrap *w)
{
    if (w == NULL)
        return;
    /* The Nettle contexts hold expanded keys: wipe the whole structure. */
    shimmer_free_secret(w, sizeof(*w));
}

ShimmerCtlwrapMode shimmer_ctlwrap_get_mode(const ShimmerCtlwrap *w)
{
    return w->mode;
}

static gboolean is_wkc_opcode(guint op)
{
    return op == SHIMMER_OP_HARD_RESET_CLIENT_V3 || op == SHIMMER_OP_CONTROL_WKC_V1;
}

gsize shimmer_ctlwrap_overhead(const ShimmerCtlwrap *w, guint opcode)
{
    switch (w->mode) {
    case SHIMMER_CTLWRAP_NONE:
        return 0;
    case SHIMMER_CTLWRAP_TLS_AUTH:
        return w->hmac_len + REPLAY_LEN;
    case SHIMMER_CTLWRAP_TLS_CRYPT:
    case SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER:
        return TC_OVERHEAD;
    case SHIMMER_CTLWRAP_TLS_CRYPT_V2_CLIENT:
        return TC_OVERHEAD + (is_wkc_opcode(opcode) ? w->wkc_len : 0);
    }
    return 0;
}

guint32 shimmer_ctlwrap_get_next_pid(const ShimmerCtlwrap *w)
{
    return w->next_pid > G_MAXUINT32 ? 0 : (guint32)w->next_pid;
}

void shimmer_ctlwrap_set_next_pid(ShimmerCtlwrap *w, guint32 pid)
{
    w->next_pid = pid == 0 ? 1 : pid;
}

const guint8 *shimmer_ctlwrap_get_metadata(const ShimmerCtlwrap *w, gsize *len)
{
    if (w->mode != SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER || !w->have_kc) {
        *len = 0;
        return NULL;
    }
    *len = w->metadata_len;
    return w->metadata;
}

/* ---- tls-crypt core ---- */

/* OUT has room for PLAIN_LEN + TC_OVERHEAD; PLAIN_LEN >= HDR_LEN. */
static void tls_crypt_seal(CryptKey *k, const guint8 *plain, gsize plain_len, guint32 pid,
                           guint32 time, guint8 *out)
{
    gsize rest_len = plain_len - HDR_LEN;

    memcpy(out, plain, HDR_LEN);
    shimmer_write_be32(out + HDR_LEN, pid);
    shimmer_write_be32(out + HDR_LEN + 4, time);
    hmac_sha256_update(&k->hmac, TC_AD_LEN, out);
    hmac_sha256_update(&k->hmac, rest_len, plain + HDR_LEN);
    hmac_sha256_digest(&k->hmac, TAG_LEN, out + TC_AD_LEN);
    /* The tag doubles as the synthetic IV (SIV-like): its first 16 bytes. */
    crypt_ctr(k, out + TC_AD_LEN, plain + HDR_LEN, rest_len, out + TC_MIN_LEN);
}

static ShimmerCtlwrapError tls_crypt_open(CryptKey *k, const guint8 *pkt, gsize len, guint8 *out,
                                          gsize out_size, gsize *out_len)
{
    guint8 tag[TAG_LEN];
    gsize rest_len;
    gboolean ok;

    if (len < TC_MIN_LEN)
        return SHIMMER_CTLWRAP_ERR_TRUNCATED;
    rest_len = len - TC_MIN_LEN;
    if (out_size < HDR_LEN + rest_len)
        return SHIMMER_CTLWRAP_ERR_NO_SPACE;

    /* The tag covers the plaintext, so decrypt first (into OUT, which the
     * caller only sees if the tag matches). */
    crypt_ctr(k, pkt + TC_AD_LEN, pkt + TC_MIN_LEN, rest_len, out + HDR_LEN);
    hmac_sha256_update(&k->hmac, TC_AD_LEN, pkt);
    hmac_sha256_update(&k->hmac, rest_len, out + HDR_LEN);
    hmac_sha256_digest(&k->hmac, TAG_LEN, tag);
    ok = memeql_sec(tag, pkt + TC_AD_LEN, TAG_LEN);
    shimmer_wipe(tag, sizeof(tag));
    if (!ok) {
        shimmer_wipe(out + HDR_LEN, rest_len);
        return SHIMMER_CTLWRAP_ERR_AUTH;
    }
    memcpy(out, pkt, HDR_LEN);
    *out_len = HDR_LEN + rest_len;
    return SHIMMER_CTLWRAP_OK;
}

/* ---- tls-crypt-v2 WKc ---- */

static ShimmerCtlwrapError wkc_open(CryptKey *server, const guint8 *wkc, gsize wkc_len,
                                    guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN], guint8 *metadata,
                                    gsize metadata_size, gsize *metadata_len)
{
    guint8 plain[SHIMMER_CTLWRAP_V2_MAX_WKC_LEN];
    guint8 tag[TAG_LEN];
    ShimmerCtlwrapError err = SHIMMER_CTLWRAP_OK;
    gsize plain_len, md_len;

    if (wkc == NULL || !wkc_length_ok(wkc, wkc_len))
        return SHIMMER_CTLWRAP_ERR_WKC_MALFORMED;
    plain_len = wkc_len - TAG_LEN - 2;

    crypt_ctr(server, wkc, wkc + TAG_LEN, plain_len, plain);
    /* T = HMAC(Ka, len | Kc | metadata): the trailer is authenticated too. */
    hmac_sha256_update(&server->hmac, 2, wkc + wkc_len - 2);
    hmac_sha256_update(&server->hmac, plain_len, plain);
    hmac_sha256_digest(&server->hmac, TAG_LEN, tag);
    if (!memeql_sec(tag, wkc, TAG_LEN)) {
        err = SHIMMER_CTLWRAP_ERR_WKC_AUTH;
        goto out;
    }
    md_len = plain_len - SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN;
    if (md_len > metadata_size) {
        err = SHIMMER_CTLWRAP_ERR_NO_SPACE;
        goto out;
    }
    memcpy(kc, plain, SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN);
    if (md_len > 0)
        memcpy(metadata, plain + SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN, md_len);
    *metadata_len = md_len;
out:
    shimmer_wipe(plain, sizeof(plain));
    shimmer_wipe(tag, sizeof(tag));
    return err;
}

ShimmerCtlwrapError
shimmer_ctlwrap_unwrap_wkc(const guint8 server_key[SHIMMER_CTLWRAP_V2_SERVER_KEY_LEN],
                           const guint8 *wkc, gsize wkc_len,
                           guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN], guint8 *metadata,
                           gsize metadata_size, gsize *metadata_len)
{
    CryptKey server;
    ShimmerCtlwrapError err;

    *metadata_len = 0;
    crypt_key_init(&server, server_key);
    err = wkc_open(&server, wkc, wkc_len, kc, metadata, metadata_size, metadata_len);
    shimmer_wipe(&server, sizeof(server));
    if (err != SHIMMER_CTLWRAP_OK) {
        shimmer_wipe(kc, SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN);
        if (metadata != NULL)
            shimmer_wipe(metadata, metadata_size);
    }
    return err;
}

ShimmerCtlwrapError
shimmer_ctlwrap_wrap_wkc(const guint8 server_key[SHIMMER_CTLWRAP_V2_SERVER_KEY_LEN],
                         const guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN], const guint8 *metadata,
                         gsize metadata_len, guint8 *out, gsize out_size, gsize *out_len)
{
    guint8 plain[SHIMMER_CTLWRAP_V2_MAX_WKC_LEN];
    CryptKey server;
    guint8 trailer[2];
    gsize total, plain_len;

    if (metadata_len > SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN || (metadata_len > 0 && !metadata))
        return SHIMMER_CTLWRAP_ERR_INVALID;
    total = SHIMMER_CTLWRAP_V2_MIN_WKC_LEN + metadata_len;
    if (out == NULL || out_size < total)
        return SHIMMER_CTLWRAP_ERR_NO_SPACE;
    shimmer_write_be16(trailer, (guint16)total);

    /* Kc and metadata are one CTR stream: assemble them first. */
    memcpy(plain, kc, SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN);
    if (metadata_len > 0)
        memcpy(plain + SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN, metadata, metadata_len);
    plain_len = SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN + metadata_len;

    crypt_key_init(&server, server_key);
    hmac_sha256_update(&server.hmac, 2, trailer);
    hmac_sha256_update(&server.hmac, plain_len, plain);
    hmac_sha256_digest(&server.hmac, TAG_LEN, out);
    crypt_ctr(&server, out, plain, plain_len, out + TAG_LEN);
    memcpy(out + total - 2, trailer, 2);
    shimmer_wipe(&server, sizeof(server));
    shimmer_wipe(plain, sizeof(plain));
    *out_len = total;
    return SHIMMER_CTLWRAP_OK;
}

/* ---- wrap / unwrap ---- */

/* Picks the pid and time for the next packet without committing them. */
static ShimmerCtlwrapError next_replay(const ShimmerCtlwrap *w, guint32 now, guint32 *pid,
                                       guint32 *time)
{
    guint64 p = w->next_pid;
    guint32 t = w->time_set ? w->time : now;

    if (p > G_MAXUINT32) {
        /* The long form may wrap only once time has moved on, so that
         * (time, pid) never repeats. */
        if (!(w->time_set && now > w->time))
            return SHIMMER_CTLWRAP_ERR_PID_EXHAUSTED;
        t = now;
        p = 1;
    }
    *pid = (guint32)p;
    *time = t;
    return SHIMMER_CTLWRAP_OK;
}

static void commit_replay(ShimmerCtlwrap *w, guint32 pid, guint32 time)
{
    w->time = time;
    w->time_set = TRUE;
    w->next_pid = (guint64)pid + 1;
}

ShimmerCtlwrapError shimmer_ctlwrap_wrap(ShimmerCtlwrap *w, const guint8 *plain, gsize plain_len,
                                         guint32 now, guint8 *out, gsize out_size, gsize *out_len)
{
    ShimmerCtlwrapError err;
    guint32 pid = 0, time = 0;
    gsize need;
    guint op;

    if (plain == NULL || plain_len < HDR_LEN)
        return SHIMMER_CTLWRAP_ERR_INVALID;
    op = shimmer_packet_opcode(plain[0]);
    if (!shimmer_packet_opcode_is_control(op))
        return SHIMMER_CTLWRAP_ERR_BAD_OPCODE;
    /* Only a tls-crypt-v2 client sends the opcodes that carry a WKc. */
    if (is_wkc_opcode(op) && w->mode != SHIMMER_CTLWRAP_TLS_CRYPT_V2_CLIENT)
        return SHIMMER_CTLWRAP_ERR_BAD_OPCODE;
    if (w->mode == SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER && !w->have_kc)
        return SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY;

    need = plain_len + shimmer_ctlwrap_overhead(w, op);
    if (out == NULL || out_size < need)
        return SHIMMER_CTLWRAP_ERR_NO_SPACE;

    if (w->mode == SHIMMER_CTLWRAP_NONE) {
        memcpy(out, plain, plain_len);
        *out_len = plain_len;
        return SHIMMER_CTLWRAP_OK;
    }

    err = next_replay(w, now, &pid, &time);
    if (err != SHIMMER_CTLWRAP_OK)
        return err;

    if (w->mode == SHIMMER_CTLWRAP_TLS_AUTH) {
        gsize n = w->hmac_len;
        guint8 *replay = out + HDR_LEN + n;
        memcpy(out, plain, HDR_LEN);
        shimmer_write_be32(replay, pid);
        shimmer_write_be32(replay + 4, time);
        memcpy(replay + REPLAY_LEN, plain + HDR_LEN, plain_len - HDR_LEN);
        /* HMAC(pid | time | op | sid | rest); the wire order differs. */
        auth_update(&w->auth_send, w->digest, replay, REPLAY_LEN);
        auth_update(&w->auth_send, w->digest, plain, plain_len);
        auth_final(&w->auth_send, w->digest, out + HDR_LEN);
    } else {
        tls_crypt_seal(&w->send, plain, plain_len, pid, time, out);
        if (w->mode == SHIMMER_CTLWRAP_TLS_CRYPT_V2_CLIENT && is_wkc_opcode(op))
            memcpy(out + plain_len + TC_OVERHEAD, w->wkc, w->wkc_len);
    }
    commit_replay(w, pid, time);
    *out_len = need;
    return SHIMMER_CTLWRAP_OK;
}

static ShimmerCtlwrapError tls_auth_open(ShimmerCtlwrap *w, const guint8 *pkt, gsize len,
                                         guint8 *out, gsize out_size, gsize *out_len,
                                         ShimmerCtlwrapInfo *info)
{
    guint8 mac[SHA512_DIGEST_SIZE];
    gsize n = w->hmac_len;
    const guint8 *replay = pkt + HDR_LEN + n;
    gsize rest_len;
    gboolean ok;

    if (len < HDR_LEN + n + REPLAY_LEN)
        return SHIMMER_CTLWRAP_ERR_TRUNCATED;
    rest_len = len - HDR_LEN - n - REPLAY_LEN;
    if (out_size < HDR_LEN + rest_len)
        return SHIMMER_CTLWRAP_ERR_NO_SPACE;

    auth_update(&w->auth_recv, w->digest, replay, REPLAY_LEN);
    auth_update(&w->auth_recv, w->digest, pkt, HDR_LEN);
    auth_update(&w->auth_recv, w->digest, replay + REPLAY_LEN, rest_len);
    auth_final(&w->auth_recv, w->digest, mac);
    ok = memeql_sec(mac, pkt + HDR_LEN, n);
    shimmer_wipe(mac, sizeof(mac));
    if (!ok)
        return SHIMMER_CTLWRAP_ERR_AUTH;

    memcpy(out, pkt, HDR_LEN);
    memcpy(out + HDR_LEN, replay + REPLAY_LEN, rest_len);
    *out_len = HDR_LEN + rest_len;
    info->has_replay = TRUE;
    info->replay_pid = shimmer_read_be32(replay);
    info->replay_time = shimmer_read_be32(replay + 4);
    return SHIMMER_CTLWRAP_OK;
}

static ShimmerCtlwrapError v2_server_open_wkc(ShimmerCtlwrap *w, const guint8 *pkt, gsize len,
                                              guint8 *out, gsize out_size, gsize *out_len,
                                              ShimmerCtlwrapInfo *info)
{
    guint8 kc[SHIMMER_CTLWRAP_V2_CLIENT_KEY_LEN];
    guint8 md[SHIMMER_CTLWRAP_V2_MAX_METADATA_LEN];
    gsize md_len = 0, wkc_len;
    CryptKey send = {0}, recv = {0};
    ShimmerCtlwrapError err;

    /* WKc sits at the end and names its own length in its last two bytes. */
    if (len < TC_MIN_LEN + 2)
        return SHIMMER_CTLWRAP_ERR_TRUNCATED;
    wkc_len = shimmer_read_be16(pkt + len - 2);
    if (wkc_len < SHIMMER_CTLWRAP_V2_MIN_WKC_LEN || wkc_len > SHIMMER_CTLWRAP_V2_MAX_WKC_LEN)
        return SHIMMER_CTLWRAP_ERR_WKC_MALFORMED;
    if (len - TC_MIN_LEN < wkc_len)
        return SHIMMER_CTLWRAP_ERR_TRUNCATED;

    err = wkc_open(&w->server, pkt + len - wkc_len, wkc_len, kc, md, sizeof(md), &md_len);
    if (err != SHIMMER_CTLWRAP_OK)
        goto out;
    if (w->have_kc && !memeql_sec(kc, w->kc, sizeof(kc))) {
        /* A session keeps the client key it started with. */
        err = SHIMMER_CTLWRAP_ERR_WKC_AUTH;
        goto out;
    }

    /* The server receives with Kc's slot 1 and sends with slot 0. */
    crypt_key_init(&recv, kc + SLOT_LEN);
    err = tls_crypt_open(&recv, pkt, len - wkc_len, out, out_size, out_len);
    if (err != SHIMMER_CTLWRAP_OK)
        goto out;

    info->wkc_verified = TRUE;
    if (!w->have_kc) {
        crypt_key_init(&send, kc);
        w->send = send;
        w->recv = recv;
        memcpy(w->kc, kc, sizeof(kc));
        memcpy(w->metadata, md, md_len);
        w->metadata_len = md_len;
        w->have_kc = TRUE;
        info->client_key_installed = TRUE;
    }
out:
    shimmer_wipe(kc, sizeof(kc));
    shimmer_wipe(md, sizeof(md));
    shimmer_wipe(&send, sizeof(send));
    shimmer_wipe(&recv, sizeof(recv));
    return err;
}

ShimmerCtlwrapError shimmer_ctlwrap_unwrap(ShimmerCtlwrap *w, const guint8 *pkt, gsize len,
                                           guint8 *out, gsize out_size, gsize *out_len,
                                           ShimmerCtlwrapInfo *info)
{
    ShimmerCtlwrapError err;
    guint op;

    memset(info, 0, sizeof(*info));
    *out_len = 0;
    if (out == NULL)
        out_size = 0;
    if (pkt == NULL || len < 1)
        return SHIMMER_CTLWRAP_ERR_TRUNCATED;
    op = shimmer_packet_opcode(pkt[0]);
    if (!shimmer_packet_opcode_is_control(op))
        return SHIMMER_CTLWRAP_ERR_BAD_OPCODE;
    if (is_wkc_opcode(op) && w->mode != SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER)
        return SHIMMER_CTLWRAP_ERR_BAD_OPCODE;

    switch (w->mode) {
    case SHIMMER_CTLWRAP_NONE:
        if (len < HDR_LEN)
            return SHIMMER_CTLWRAP_ERR_TRUNCATED;
        if (out_size < len)
            return SHIMMER_CTLWRAP_ERR_NO_SPACE;
        memcpy(out, pkt, len);
        *out_len = len;
        return SHIMMER_CTLWRAP_OK;
    case SHIMMER_CTLWRAP_TLS_AUTH:
        err = tls_auth_open(w, pkt, len, out, out_size, out_len, info);
        break;
    case SHIMMER_CTLWRAP_TLS_CRYPT:
    case SHIMMER_CTLWRAP_TLS_CRYPT_V2_CLIENT:
        err = tls_crypt_open(&w->recv, pkt, len, out, out_size, out_len);
        break;
    case SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER:
        if (is_wkc_opcode(op))
            err = v2_server_open_wkc(w, pkt, len, out, out_size, out_len, info);
        else if (!w->have_kc)
            err = SHIMMER_CTLWRAP_ERR_NO_CLIENT_KEY;
        else
            err = tls_crypt_open(&w->recv, pkt, len, out, out_size, out_len);
        break;
    default:
        err = SHIMMER_CTLWRAP_ERR_INVALID;
        break;
    }

    if (err != SHIMMER_CTLWRAP_OK) {
        memset(info, 0, sizeof(*info));
        *out_len = 0;
        return err;
    }
    if (w->mode != SHIMMER_CTLWRAP_TLS_AUTH) {
        /* tls-crypt: pid | time follow op | sid in the clear. */
        info->has_replay = TRUE;
        info->replay_pid = shimmer_read_be32(pkt + HDR_LEN);
        info->replay_time = shimmer_read_be32(pkt + HDR_LEN + 4);
    }
    return SHIMMER_CTLWRAP_OK;
}
