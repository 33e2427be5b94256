/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <gnutls/x509.h>

G_BEGIN_DECLS

/*
 * Checks and decodes key material at configuration time. Every function takes
 * the bytes of a file or inline block (DATA, LEN; need not be NUL terminated)
 * and either accepts them or sets ERROR (domain SHIMMER_KEYS_ERROR) with a
 * message that describes what is wrong without quoting the data. Secrets that
 * are decoded are written to caller-provided fixed-size buffers; temporaries
 * are wiped on every exit path.
 *
 * The error code is always 0: callers tell failures apart by the function,
 * and the message is for the user. Outputs are written only on success, and
 * wiping them is the caller's job. Lines may end in LF or CRLF everywhere; a
 * PEM block's BEGIN and END lines must match and stand on lines of their own,
 * and a BEGIN without its END (a truncated file) is always an error. Inputs
 * larger than 64 MiB are refused.
 */

/* OpenVPN static key: "-----BEGIN OpenVPN Static key V1-----", 256 bytes as
 * hex (whitespace between digits and '#' comment lines before the BEGIN line
 * allowed), "-----END OpenVPN Static key V1-----". Used by tls-auth and
 * tls-crypt. Exactly 512 hex digits; only blank and '#' lines may surround
 * the block (no second block, no other text). */
#define SHIMMER_STATIC_KEY_LEN 256

/* tls-crypt-v2: a client key is Kc (256 bytes) followed by WKc (the wrapped
 * key, at most 1024 bytes, whose last two bytes are its own length, big
 * endian); a server key is 128 bytes. Both are base64 in PEM armour with the
 * labels "OpenVPN tls-crypt-v2 client key" / "... server key". As for static
 * keys, only blank and '#' lines may surround the block, and the base64 must
 * be strictly valid (alphabet, padding, length). */
#define SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN 128
#define SHIMMER_TLS_CRYPT_V2_MAX_WKC_LEN    1024
/* The smallest WKc: tag(32) + encrypted Kc(256) + length(2). */
#define SHIMMER_TLS_CRYPT_V2_MIN_WKC_LEN (32 + 256 + 2)

typedef struct {
    guint8 kc[SHIMMER_STATIC_KEY_LEN];
    guint8 wkc[SHIMMER_TLS_CRYPT_V2_MAX_WKC_LEN];
    gsize wkc_len;
} ShimmerTlsCryptV2ClientKey;

gboolean shimmer_keys_parse_static(const void *data, gsize len, guint8 out[SHIMMER_STATIC_KEY_LEN],
                                   GError **error);

gboolean shimmer_keys_parse_tls_crypt_v2_client(const void *data, gsize len,
                                                ShimmerTlsCryptV2ClientKey *out, GError **error);

gboolean shimmer_keys_parse_tls_crypt_v2_server(const void *data, gsize len,
                                                guint8 out[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN],
                                                GError **error);

/* Like shimmer_keys_parse_tls_crypt_v2_client / _server but only tells which
 * of the two PEM labels DATA carries: 1 client, 2 server, 0 neither. Only the
 * first BEGIN line is looked at and nothing is validated, so the matching
 * parser must still be called (and gives the useful error). */
int shimmer_keys_tls_crypt_v2_kind(const void *data, gsize len);

/* One or more PEM certificates (ca, extra-certs, cert). Returns the number of
 * certificates in *N_CERTS. Rejects data with no certificate, and any PEM
 * block that does not decode. REQUIRE_ONE: exactly one certificate (cert).
 * N_CERTS may be NULL; it is set only on success. Blocks of other kinds (a
 * CRL in a CA file, the key of a combined cert+key file) are skipped, as
 * OpenVPN does, but must still be complete; OpenSSL's "TRUSTED CERTIFICATE"
 * blocks are refused rather than skipped, since skipping would silently drop
 * a CA. */
gboolean shimmer_keys_check_certs(const void *data, gsize len, gboolean require_one, guint *n_certs,
                                  GError **error);

/* A PEM private key (PKCS#1, PKCS#8, SEC1 EC, encrypted PKCS#8). Sets
 * *ENCRYPTED when the key needs a passphrase: such a key is accepted here and
 * decrypted later with the askpass passphrase. If PASSPHRASE is non-NULL and
 * the key is encrypted, the key must decrypt with it.
 * Exactly one private-key block is allowed; other blocks (the certificate of
 * a combined file) are skipped. OpenSSL's traditional encrypted PEM
 * ("Proc-Type: 4,ENCRYPTED") counts as encrypted too. Without a passphrase an
 * encrypted key's outer structure is still checked. PASSPHRASE is ignored for
 * a plain key. ENCRYPTED may be NULL; it is set once the key block is found,
 * so it is also valid when the passphrase is wrong. */
gboolean shimmer_keys_check_private_key(const void *data, gsize len, const char *passphrase,
                                        gboolean *encrypted, GError **error);

/* One or more PEM CRLs. Blocks of other kinds are skipped. A CRL whose dates
 * are BER but not DER (which GnuTLS refuses and OpenSSL reads) passes when
 * crl.h's reader reads it; the engine then checks revocations with that
 * reader (shimmer_crl_set_check). */
gboolean shimmer_keys_check_crl(const void *data, gsize len, GError **error);

/* PKCS#12: DER bytes (a file) or base64 text (an inline <pkcs12> block; set
 * IS_BASE64). Checks the structure parses; an encrypted bag is accepted
 * (passphrase comes later). Base64 may be wrapped and indented but must be
 * strictly valid. Without the passphrase neither the MAC nor the inside of an
 * encrypted bag can be checked, so damage there shows up only later. */
gboolean shimmer_keys_check_pkcs12(const void *data, gsize len, gboolean is_base64, GError **error);

/* The SHA-256 of DATA as 64 lowercase hex digits (for reporting certificates,
 * never used on secrets). Caller frees. */
char *shimmer_keys_sha256_hex(const void *data, gsize len);

/* Parses a peer-fingerprint: 32 bytes as hex pairs separated by ':' (either
 * case). Whitespace around the whole text is ignored (a CRLF line); none is
 * allowed inside. */
gboolean shimmer_keys_parse_fingerprint(const char *text, guint8 out[32], GError **error);

typedef enum {
    SHIMMER_CERT_ROLE_NONE,
    SHIMMER_CERT_ROLE_SERVER,
    SHIMMER_CERT_ROLE_CLIENT,
} ShimmerCertRole;

/* A profile's constraints on the peer's certificate
 * (shimmer_config_get_cert_usage() fills it in). */
typedef struct {
    ShimmerCertRole remote_cert_tls;
    ShimmerCertRole ns_cert_type;
    gboolean remote_cert_ku_set;
    const GArray *remote_cert_ku; /* guint values; empty: presence only */
    const char *remote_cert_eku;  /* an OID or OpenSSL's long name; NULL: none */
} ShimmerCertUsage;

/* Checks the peer's certificate CRT against the profile's usage constraints,
 * as OpenVPN 2.6 built with OpenSSL checks them:
 *   - ns-cert-type server|client: OpenSSL's purpose check for an SSL server
 *     (client) passes -- an extended key usage, if present, includes
 *     serverAuth (clientAuth; for a server also Netscape's or Microsoft's
 *     SGC); a Netscape cert type, if present, has the SSL server (client)
 *     bit; a key usage, if present, allows digitalSignature, keyEncipherment
 *     or keyAgreement (a client: digitalSignature or keyAgreement) -- or
 *     failing that the Netscape cert type extension (2.16.840.1.113730.1.1)
 *     is there with the SSL server (client) bit;
 *   - remote-cert-ku [HEX...]: the key usage extension is present and, when
 *     values are given, the certificate's first eight key usage bits
 *     (digitalSignature = 0x80 ... encipherOnly = 0x01) contain every bit of
 *     one of them;
 *   - remote-cert-eku OID|NAME: the extended key usage holds that OID, given
 *     as dotted digits or as OpenSSL's long name;
 *   - remote-cert-tls server|client: a key usage extension is present and the
 *     extended key usage holds serverAuth (clientAuth).
 * Every constraint the profile gives must hold. Returns TRUE when none is
 * given. On failure ERROR says which constraint failed and what the
 * certificate has. The engine calls this from its verify callback for the
 * peer's leaf certificate. */
gboolean shimmer_keys_check_cert_usage(const ShimmerCertUsage *usage, gnutls_x509_crt_t crt,
                                       GError **error);

#define SHIMMER_KEYS_ERROR (shimmer_keys_error_quark())
GQuark shimmer_keys_error_quark(void);

G_END_DECLS
