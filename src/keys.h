/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Checks and decodes key material at configuration time. Every function takes
 * the bytes of a file or inline block (DATA, LEN; need not be NUL terminated)
 * and either accepts them or sets ERROR (domain SHIMMER_KEYS_ERROR) with a
 * message that describes what is wrong without quoting the data. Secrets that
 * are decoded are written to caller-provided fixed-size buffers; temporaries
 * are wiped on every exit path.
 */

/* OpenVPN static key: "-----BEGIN OpenVPN Static key V1-----", 256 bytes as
 * hex (whitespace between digits and '#' comment lines before the BEGIN line
 * allowed), "-----END OpenVPN Static key V1-----". Used by tls-auth and
 * tls-crypt. */
#define SHIMMER_STATIC_KEY_LEN 256

/* tls-crypt-v2: a client key is Kc (256 bytes) followed by WKc (the wrapped
 * key, at most 1024 bytes, whose last two bytes are its own length, big
 * endian); a server key is 128 bytes. Both are base64 in PEM armour with the
 * labels "OpenVPN tls-crypt-v2 client key" / "... server key". */
#define SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN 128
#define SHIMMER_TLS_CRYPT_V2_MAX_WKC_LEN 1024
/* The smallest WKc: tag(32) + encrypted Kc(256) + length(2). */
#define SHIMMER_TLS_CRYPT_V2_MIN_WKC_LEN (32 + 256 + 2)

typedef struct {
    guint8 kc[SHIMMER_STATIC_KEY_LEN];
    guint8 wkc[SHIMMER_TLS_CRYPT_V2_MAX_WKC_LEN];
    gsize wkc_len;
} ShimmerTlsCryptV2ClientKey;

gboolean shimmer_keys_parse_static(const void *data, gsize len,
                                   guint8 out[SHIMMER_STATIC_KEY_LEN],
                                   GError **error);

gboolean shimmer_keys_parse_tls_crypt_v2_client(const void *data, gsize len,
                                                ShimmerTlsCryptV2ClientKey *out,
                                                GError **error);

gboolean shimmer_keys_parse_tls_crypt_v2_server(
    const void *data, gsize len, guint8 out[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN],
    GError **error);

/* Like shimmer_keys_parse_tls_crypt_v2_client / _server but only tells which
 * of the two PEM labels DATA carries: 1 client, 2 server, 0 neither. */
int shimmer_keys_tls_crypt_v2_kind(const void *data, gsize len);

/* One or more PEM certificates (ca, extra-certs, cert). Returns the number of
 * certificates in *N_CERTS. Rejects data with no certificate, and any PEM
 * block that does not decode. REQUIRE_ONE: exactly one certificate (cert). */
gboolean shimmer_keys_check_certs(const void *data, gsize len, gboolean require_one,
                                  guint *n_certs, GError **error);

/* A PEM private key (PKCS#1, PKCS#8, SEC1 EC, encrypted PKCS#8). Sets
 * *ENCRYPTED when the key needs a passphrase: such a key is accepted here and
 * decrypted later with the askpass passphrase. If PASSPHRASE is non-NULL and
 * the key is encrypted, the key must decrypt with it. */
gboolean shimmer_keys_check_private_key(const void *data, gsize len,
                                        const char *passphrase, gboolean *encrypted,
                                        GError **error);

/* One or more PEM CRLs. */
gboolean shimmer_keys_check_crl(const void *data, gsize len, GError **error);

/* PKCS#12: DER bytes (a file) or base64 text (an inline <pkcs12> block; set
 * IS_BASE64). Checks the structure parses; an encrypted bag is accepted
 * (passphrase comes later). */
gboolean shimmer_keys_check_pkcs12(const void *data, gsize len, gboolean is_base64,
                                   GError **error);

/* The SHA-256 of DATA as 64 lowercase hex digits (for reporting certificates,
 * never used on secrets). Caller frees. */
char *shimmer_keys_sha256_hex(const void *data, gsize len);

/* Parses a peer-fingerprint: 32 bytes as hex pairs separated by ':' (either
 * case). */
gboolean shimmer_keys_parse_fingerprint(const char *text, guint8 out[32], GError **error);

#define SHIMMER_KEYS_ERROR (shimmer_keys_error_quark())
GQuark shimmer_keys_error_quark(void);

G_END_DECLS
