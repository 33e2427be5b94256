/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <gnutls/x509.h>

G_BEGIN_DECLS

/*
 * Certificate revocation lists (crl-verify), read by a small bounds-checked
 * DER reader of Shimmer's own instead of GnuTLS's.
 *
 * Why: some CRLs in the wild (a VPN provider's, for one) encode their dates
 * as BER allows but DER does not -- a UTCTime without seconds, a time zone
 * offset, a fraction of a second. OpenSSL reads them; GnuTLS refuses the
 * whole CRL ("The DER time encoding is invalid"), and a CRL that cannot be
 * loaded must never mean "nothing is revoked". This reader is strict about
 * the structure (definite lengths only, every length inside its parent, the
 * fields of RFC 5280 in their order, nothing left over) and lenient only
 * about the text of the dates.
 *
 * A CRL counts only once its signature has been checked against its issuer
 * in the CA bundle (shimmer_crl_set_verify); the check of a certificate then
 * compares issuer names and serial numbers and refuses a certificate a CRL
 * revokes, and any certificate of an issuer whose CRL has expired (as OpenSSL
 * and GnuTLS do). Revocation dates, entry extensions and delta CRLs are not
 * interpreted: a listed serial is revoked.
 */

typedef struct ShimmerCrlSet ShimmerCrlSet;

/* Parses every "X509 CRL" PEM block of DATA (other blocks are skipped; at
 * least one CRL is required). NULL with ERROR naming the block (1-based) and
 * what is wrong. */
ShimmerCrlSet *shimmer_crl_set_new(const void *data, gsize len, GError **error);

guint shimmer_crl_set_count(const ShimmerCrlSet *set);

/* How many of the CRLs GnuTLS would refuse to import (their dates are not
 * DER): these are the ones only this reader can use. */
guint shimmer_crl_set_count_not_der(const ShimmerCrlSet *set);

/* The issuer of CRL I as "CN=...,O=..." (RFC 4514), for messages. */
const char *shimmer_crl_set_issuer(const ShimmerCrlSet *set, guint i);

/* Checks each CRL's signature with the public key of its issuer among the
 * PEM certificates CA (the `ca` file). A bad signature is an error. A CRL
 * whose issuer is not in CA cannot be trusted and is left out of every
 * check (OpenSSL ignores it too): its index is added to UNUSED (guint via
 * GUINT_TO_POINTER; UNUSED may be NULL). Returns FALSE with ERROR on a bad
 * signature or an unsupported signature algorithm. */
gboolean shimmer_crl_set_verify(ShimmerCrlSet *set, const void *ca, gsize ca_len, GPtrArray *unused,
                                GError **error);

/* Is CRT allowed? FALSE with ERROR when a verified CRL of CRT's issuer lists
 * its serial number, or when that CRL's nextUpdate is before NOW (seconds
 * since the epoch, UTC) or its thisUpdate after it. TRUE when no verified CRL
 * is about CRT's issuer. The engine calls it for each certificate of the
 * peer's chain from its verify callback. */
gboolean shimmer_crl_set_check(const ShimmerCrlSet *set, gnutls_x509_crt_t crt, gint64 now,
                               GError **error);

void shimmer_crl_set_free(ShimmerCrlSet *set);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerCrlSet, shimmer_crl_set_free)

#define SHIMMER_CRL_ERROR (shimmer_crl_error_quark())
GQuark shimmer_crl_error_quark(void);

G_END_DECLS
