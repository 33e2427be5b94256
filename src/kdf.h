/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Data-channel key material (key2): 256 bytes, keys[0] = cipher(64) | hmac(64)
 * for client to server, keys[1] the same for server to client.
 */
#define SHIMMER_KEY2_LEN       256
#define SHIMMER_PRE_MASTER_LEN 48
#define SHIMMER_KM_RANDOM_LEN  32
#define SHIMMER_MASTER_LEN     48

/* The TLS 1.0 PRF: P_MD5 over the first half of SECRET XOR P_SHA1 over the
 * second half (halves overlap by one byte when the length is odd). */
void shimmer_kdf_tls1_prf(const guint8 *secret, gsize secret_len, const char *label,
                          const guint8 *seed, gsize seed_len, guint8 *out, gsize out_len);

/* OpenVPN's legacy key derivation (key method 2 without TLS-EKM). */
void shimmer_kdf_openvpn_prf(const guint8 pre_master[SHIMMER_PRE_MASTER_LEN],
                             const guint8 client_random1[SHIMMER_KM_RANDOM_LEN],
                             const guint8 server_random1[SHIMMER_KM_RANDOM_LEN],
                             const guint8 client_random2[SHIMMER_KM_RANDOM_LEN],
                             const guint8 server_random2[SHIMMER_KM_RANDOM_LEN],
                             const guint8 client_sid[8], const guint8 server_sid[8],
                             guint8 key2[SHIMMER_KEY2_LEN]);

G_END_DECLS
