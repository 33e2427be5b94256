/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The profile's TLS restrictions as a GnuTLS priority string.
 *
 * OpenVPN hands tls-cipher (an OpenSSL cipher string for TLS 1.2 and
 * older), tls-ciphersuites (TLS 1.3 suites), tls-groups (or the older
 * ecdh-curve), tls-cert-profile, tls-version-min and tls-version-max to
 * OpenSSL. Shimmer maps them onto GnuTLS:
 *
 *   tls-cipher        suite names in any of the three spellings profiles use
 *                     (OpenVPN's "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
 *                     IANA's "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
 *                     OpenSSL's "ECDHE-RSA-AES256-GCM-SHA384"), and OpenSSL
 *                     cipher-string words (DEFAULT, HIGH, ALL, kEECDH,
 *                     EECDH+AESGCM, aRSA, !aNULL, -SHA1, @STRENGTH,
 *                     @SECLEVEL=N, ...), separated by ':', ',' or ' ';
 *   tls-ciphersuites  TLS 1.3 suite names (TLS_AES_256_GCM_SHA384, ...);
 *   tls-groups        X25519, X448, P-256/prime256v1/secp256r1, P-384,
 *                     P-521, ffdhe2048 ... ffdhe8192;
 *   tls-cert-profile  insecure, legacy, preferred, suiteb (as @SECLEVEL).
 *
 * Anything that cannot be mapped is an error naming the directive and the
 * token: silently dropping a restriction the user wrote is never an option.
 *
 * GnuTLS enables key exchanges, ciphers and MACs separately and one cipher
 * list serves TLS 1.2 and 1.3, so a restriction may allow a little more than
 * asked (ECDHE-RSA with AES-256-GCM and ECDHE-ECDSA with ChaCha20 allows all
 * four combinations) or narrow TLS 1.3 when only tls-cipher was given. The
 * negotiable suites are computed from the finished priority and any such
 * difference is reported as a note (a warning for `shimmerctl check`).
 */

typedef enum {
    SHIMMER_TLS_VERSION_UNSET,
    SHIMMER_TLS_VERSION_1_0,
    SHIMMER_TLS_VERSION_1_1,
    SHIMMER_TLS_VERSION_1_2,
    SHIMMER_TLS_VERSION_1_3,
} ShimmerTlsVersion;

/* The directives, as written (NULL: not given). */
typedef struct {
    const char *tls_cipher;
    const char *tls_ciphersuites;
    const char *tls_groups;
    const char *ecdh_curve;
    const char *tls_cert_profile;
    ShimmerTlsVersion tls_version_min; /* UNSET: 1.2 */
    ShimmerTlsVersion tls_version_max; /* UNSET: 1.3 */
} ShimmerTlsRestrictions;

/* Which directive an error is about (the GError code). */
typedef enum {
    SHIMMER_TLSPRIO_ERROR_TLS_CIPHER = 1,
    SHIMMER_TLSPRIO_ERROR_TLS_CIPHERSUITES,
    SHIMMER_TLSPRIO_ERROR_TLS_GROUPS,
    SHIMMER_TLSPRIO_ERROR_ECDH_CURVE,
    SHIMMER_TLSPRIO_ERROR_TLS_CERT_PROFILE,
    SHIMMER_TLSPRIO_ERROR_VERSION, /* tls-version-min above tls-version-max */
    SHIMMER_TLSPRIO_ERROR_GNUTLS,  /* GnuTLS refused the result (a bug) */
} ShimmerTlsprioError;

#define SHIMMER_TLSPRIO_ERROR (shimmer_tlsprio_error_quark())
GQuark shimmer_tlsprio_error_quark(void);

/* The GnuTLS priority string for R (client or server), which
 * gnutls_priority_init accepts; NULL with ERROR when a directive cannot be
 * mapped or nothing would be left to negotiate. NOTES, when not NULL,
 * receives char* notes about what GnuTLS allows beyond the request. Without
 * any of the directives above the result is "NORMAL:-VERS-ALL:+VERS-TLS1.2:
 * +VERS-TLS1.3" (TLS 1.2 minimum, as OpenVPN 2.6). Free with g_free. */
char *shimmer_tlsprio_build(const ShimmerTlsRestrictions *r, GPtrArray *notes, GError **error);

G_END_DECLS
