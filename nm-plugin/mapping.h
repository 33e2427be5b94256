/* SPDX-License-Identifier: MIT */
#pragma once

#include <NetworkManager.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * ShimmerConfig <-> NMConnection: what import and export share, and what the
 * service plugin uses to turn a connection back into a profile for shimmerd.
 *
 * Every directive of an imported file lands in exactly one place (README.md
 * lists them): a vpn.data key named after the directive, a vpn.secrets entry
 * (key material, passwords), the ipv4/ipv6 settings (routes, never-default,
 * ignore-auto-routes), or the as-is "config-extra" text for what has no
 * place of its own. Export writes each place back as directives, so import,
 * export and import again give an equal connection.
 */

#define SHIMMER_NM_SERVICE_TYPE "org.freedesktop.NetworkManager.shimmer"

/* vpn.data keys that are not simply a directive's arguments. */
#define SHIMMER_NM_KEY_CA                "ca"
#define SHIMMER_NM_KEY_CERT              "cert"
#define SHIMMER_NM_KEY_EXTRA_CERTS       "extra-certs"
#define SHIMMER_NM_KEY_CRL_VERIFY        "crl-verify"
#define SHIMMER_NM_KEY_PEER_FINGERPRINT  "peer-fingerprint"
#define SHIMMER_NM_KEY_KEY_DIRECTION     "key-direction"
#define SHIMMER_NM_KEY_TLS_CRYPT_V2_MODE "tls-crypt-v2-mode"
#define SHIMMER_NM_KEY_USERNAME          "username"
#define SHIMMER_NM_KEY_REDIRECT_GATEWAY  "redirect-gateway"
#define SHIMMER_NM_KEY_CONFIG_EXTRA      "config-extra"
/* The top-level http-proxy / socks-proxy, in NetworkManager-openvpn's keys
 * (proxy-type "http" or "socks", proxy-retry "yes"), and how an HTTP proxy
 * is answered: http-proxy-auth "basic", "ntlm", "ntlm2", "auto" or
 * "auto-nct" (absent: no credentials). */
#define SHIMMER_NM_KEY_PROXY_TYPE          "proxy-type"
#define SHIMMER_NM_KEY_PROXY_SERVER        "proxy-server"
#define SHIMMER_NM_KEY_PROXY_PORT          "proxy-port"
#define SHIMMER_NM_KEY_PROXY_RETRY         "proxy-retry"
#define SHIMMER_NM_KEY_HTTP_PROXY_AUTH     "http-proxy-auth"
#define SHIMMER_NM_KEY_HTTP_PROXY_USERNAME "http-proxy-username"

/* vpn.secrets names (each with a "NAME-flags" entry in vpn.data). */
#define SHIMMER_NM_SECRET_KEY                 "key-pem"
#define SHIMMER_NM_SECRET_PKCS12              "pkcs12"
#define SHIMMER_NM_SECRET_TLS_AUTH            "tls-auth-key"
#define SHIMMER_NM_SECRET_TLS_CRYPT           "tls-crypt-key"
#define SHIMMER_NM_SECRET_TLS_CRYPT_V2        "tls-crypt-v2-key"
#define SHIMMER_NM_SECRET_EXTRA_BLOCKS        "extra-blocks"
#define SHIMMER_NM_SECRET_PASSWORD            "password"
#define SHIMMER_NM_SECRET_CERT_PASS           "cert-pass"
#define SHIMMER_NM_SECRET_OTP                 "otp"
#define SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD "http-proxy-password"

/* Reads FILENAME, parses it with the files it names (relative paths resolve
 * against its directory) and maps it to a new connection named after the
 * file. Only client profiles are imported. On failure returns NULL and sets
 * ERROR (NM_VPN_PLUGIN_ERROR): for a refused file the message holds every
 * "FILE:LINE: error: ..." line of the parser. NOTES (nullable) receives
 * lines for the user: the parser's warnings and every directive kept as-is
 * ("FILE:LINE: kept as-is in vpn.data config-extra: 'nobind'"). Nothing is
 * written to disk. */
NMConnection *shimmer_nm_import(const char *filename, GPtrArray **notes, GError **error);

/* Maps CFG (a client configuration without errors) parsed from TEXT (LEN
 * bytes, the same text the parser saw) to a new connection with the id ID.
 * NOTES (nullable): as above, without the parser's warnings. */
NMConnection *shimmer_nm_connection_from_config(const ShimmerConfig *cfg, const char *text,
                                                gsize len, const char *id, GPtrArray *notes,
                                                GError **error);

/* The self-contained .ovpn text for CONNECTION. Secrets stored in the profile
 * (flags NONE) must be present in CONNECTION and are inlined; secrets the
 * user is asked for become prompting directives (auth-user-pass, askpass).
 * The text is parsed again before it is returned: a connection the parser
 * would refuse gives NULL and an ERROR with the parser's messages. The text
 * may hold private keys: free it with shimmer_str_free_secret(). */
char *shimmer_nm_connection_to_ovpn(NMConnection *connection, GError **error);

/* Whether CONNECTION lacks a secret that is stored in the profile (flags
 * NONE): the caller must fetch the secrets before exporting it. */
gboolean shimmer_nm_connection_lacks_secrets(NMConnection *connection);

G_END_DECLS
