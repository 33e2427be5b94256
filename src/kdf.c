/* SPDX-License-Identifier: MIT */
#include "kdf.h"

#include <nettle/hmac.h>
#include <string.h>

#include "secure.h"

/* P_hash(secret, seed) from RFC 2246 section 5, XORed into OUT. */
static void p_hash_xor(const struct nettle_hash *hash, const guint8 *secret, gsize secret_len,
                       const guint8 *seed, gsize seed_len, guint8 *out, gsize out_len)
{
    guint8 ctx_outer[512], ctx_inner[512], ctx_state[512];
    guint8 a[64], block[64];
    const gsize dlen = hash->digest_size;
    g_assert(hash->context_size <= sizeof(ctx_outer) && dlen <= sizeof(a));

    hmac_set_key(ctx_outer, ctx_inner, ctx_state, hash, secret_len, secret);
    /* A(1) = HMAC(secret, seed) */
    hmac_update(ctx_state, hash, seed_len, seed);
    hmac_digest(ctx_outer, ctx_inner, ctx_state, hash, dlen, a);
    for (gsize done = 0; done < out_len;) {
        /* block = HMAC(secret, A(i) | seed) */
        hmac_update(ctx_state, hash, dlen, a);
        hmac_update(ctx_state, hash, seed_len, seed);
        hmac_digest(ctx_outer, ctx_inner, ctx_state, hash, dlen, block);
        gsize n = MIN(dlen, out_len - done);
        for (gsize i = 0; i < n; i++)
            out[done + i] ^= block[i];
        done += n;
        /* A(i+1) = HMAC(secret, A(i)) */
        hmac_update(ctx_state, hash, dlen, a);
        hmac_digest(ctx_outer, ctx_inner, ctx_state, hash, dlen, a);
    }
    shimmer_wipe(ctx_outer, sizeof(ctx_outer));
    shimmer_wipe(ctx_inner, sizeof(ctx_inner));
    shimmer_wipe(ctx_state, sizeof(ctx_state));
    shimmer_wipe(a, sizeof(a));
    shimmer_wipe(block, sizeof(block));
}

void shimmer_kdf_tls1_prf(const guint8 *secret, gsize secret_len, const char *label,
                          const guint8 *seed, gsize seed_len, guint8 *out, gsize out_len)
{
    gsize label_len = strlen(label);
    guint8 *full = g_malloc(label_len + seed_len);
    memcpy(full, label, label_len);
    memcpy(full + label_len, seed, seed_len);
    gsize half = (secret_len + 1) / 2;
    memset(out, 0, out_len);
    p_hash_xor(&nettle_md5, secret, half, full, label_len + seed_len, out, out_len);
    p_hash_xor(&nettle_sha1, secret + (secret_len - half), half, full, label_len + seed_len, out,
               out_len);
    shimmer_free_secret(full, label_len + seed_len);
}

void shimmer_kdf_openvpn_prf(const guint8 pre_master[SHIMMER_PRE_MASTER_LEN],
                             const guint8 client_random1[SHIMMER_KM_RANDOM_LEN],
                             const guint8 server_random1[SHIMMER_KM_RANDOM_LEN],
                             const guint8 client_random2[SHIMMER_KM_RANDOM_LEN],
                             const guint8 server_random2[SHIMMER_KM_RANDOM_LEN],
                             const guint8 client_sid[8], const guint8 server_sid[8],
                             guint8 key2[SHIMMER_KEY2_LEN])
{
    guint8 master[SHIMMER_MASTER_LEN];
    guint8 seed1[2 * SHIMMER_KM_RANDOM_LEN];
    guint8 seed2[2 * SHIMMER_KM_RANDOM_LEN + 16];

    memcpy(seed1, client_random1, SHIMMER_KM_RANDOM_LEN);
    memcpy(seed1 + SHIMMER_KM_RANDOM_LEN, server_random1, SHIMMER_KM_RANDOM_LEN);
    shimmer_kdf_tls1_prf(pre_master, SHIMMER_PRE_MASTER_LEN, "OpenVPN master secret", seed1,
                         sizeof(seed1), master, sizeof(master));

    memcpy(seed2, client_random2, SHIMMER_KM_RANDOM_LEN);
    memcpy(seed2 + SHIMMER_KM_RANDOM_LEN, server_random2, SHIMMER_KM_RANDOM_LEN);
    memcpy(seed2 + 2 * SHIMMER_KM_RANDOM_LEN, client_sid, 8);
    memcpy(seed2 + 2 * SHIMMER_KM_RANDOM_LEN + 8, server_sid, 8);
    shimmer_kdf_tls1_prf(master, sizeof(master), "OpenVPN key expansion", seed2, sizeof(seed2),
                         key2, SHIMMER_KEY2_LEN);
    shimmer_wipe(master, sizeof(master));
    shimmer_wipe(seed1, sizeof(seed1));
    shimmer_wipe(seed2, sizeof(seed2));
}
