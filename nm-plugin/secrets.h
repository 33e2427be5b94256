/* SPDX-License-Identifier: MIT */
#pragma once

#include <NetworkManager.h>

G_BEGIN_DECLS

/*
 * Which secrets a Shimmer connection needs from the user, shared by the
 * service plugin (need_secrets), the auth dialog and the editor plugin.
 *
 * The secrets a person can be asked for, in the order they are asked:
 *
 *   username            the auth-user-pass user name, asked only when vpn.data
 *                       has no "username" item and a password is needed
 *                       (shown while typed)
 *   password            the auth-user-pass password: the profile uses
 *                       auth-user-pass iff vpn.data has "password-flags"
 *   otp                 the static-challenge response: vpn.data
 *                       "static-challenge" holds the directive's arguments
 *                       (`"Enter PIN" 1`: the text, then 1 if it may be shown
 *                       while typed)
 *   cert-pass           the private key's passphrase ("cert-pass-flags")
 *   challenge-response  the answer to the server's dynamic (CRV1) challenge
 *                       or to a pending login's CR_TEXT; never stored, asked
 *                       only through hints
 *   web-sign-in         no secret: the user confirms (Enter) once they have
 *                       signed in on the web page the server named; asked
 *                       only through hints, its value is ignored
 *
 * Without hints, the profile decides: a secret applies when its flags item is
 * in vpn.data (otp: when "static-challenge" is) and its flags are not
 * NOT_REQUIRED; it must be asked when it has no value (an empty value counts
 * as none), whatever its other flags (NONE without a value means the profile
 * says it is stored but it is missing).
 *
 * With hints (the strings the service plugin passed to
 * nm_vpn_service_plugin_secrets_required(), handed to the auth dialog as -t)
 * only the secrets the hints name apply, and each of them must be asked: the
 * service asks because the values it has are not enough. A hint is
 *   - a secret's name above;
 *   - SHIMMER_NM_HINT_DYNAMIC_CHALLENGE or SHIMMER_NM_HINT_DYNAMIC_CHALLENGE_ECHO
 *     followed by a secret's name (NetworkManager >= 1.46's tags: the answer
 *     is returned under the tagged name, which NetworkManager strips, marking
 *     the secret NOT_SAVED; _ECHO: shown while typed);
 *   - SHIMMER_NM_HINT_VPN_MESSAGE followed by the text to show (the server's
 *     challenge);
 *   - SHIMMER_NM_HINT_ECHO: the dynamic challenge's answer may be shown while
 *     typed;
 *   - SHIMMER_NM_HINT_WEB_AUTH followed by the URL of a web sign-in (the auth
 *     dialog opens it in the user's browser where it may,
 *     shimmer_nm_secrets_web_auth_url());
 *   - anything else starting with "x-" is metadata and is ignored, as are
 *     names this module does not know.
 * Hints that name no secret (only metadata) count as no hints.
 */

/* vpn.secrets names not in mapping.h (the others are SHIMMER_NM_SECRET_*). */
#define SHIMMER_NM_SECRET_USERNAME           "username"
#define SHIMMER_NM_SECRET_CHALLENGE_RESPONSE "challenge-response"
#define SHIMMER_NM_SECRET_WEB_SIGN_IN        "web-sign-in"

#define SHIMMER_NM_HINT_VPN_MESSAGE            "x-vpn-message:"
#define SHIMMER_NM_HINT_ECHO                   "x-shimmer-echo"
#define SHIMMER_NM_HINT_DYNAMIC_CHALLENGE      "x-dynamic-challenge:"
#define SHIMMER_NM_HINT_DYNAMIC_CHALLENGE_ECHO "x-dynamic-challenge-echo:"
#define SHIMMER_NM_HINT_WEB_AUTH               "x-shimmer-web-auth:"

/* One thing to ask. Holds no secret value: read it from the setting with
 * shimmer_nm_secrets_get(). */
typedef struct {
    char *name;         /* the vpn.secrets name (one of the five above) */
    char *key;          /* the name the agent returns the answer under: NAME,
                         * or the tagged hint that asked for it */
    char *label;        /* for the entry field: translated, or the static
                         * challenge's own text for otp */
    gboolean is_secret; /* hidden while typed */
    gboolean must_ask;  /* no usable value: the user must be asked now */
} ShimmerNmSecretField;

void shimmer_nm_secret_field_free(ShimmerNmSecretField *field);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerNmSecretField, shimmer_nm_secret_field_free)

/* The secrets of S_VPN (data, secrets and their flags) that apply, given
 * HINTS (NULL or a NULL-terminated vector), in asking order: a new array of
 * ShimmerNmSecretField* (free with g_ptr_array_unref), possibly empty, never
 * NULL. Secrets that apply but have a value are listed with must_ask FALSE.
 * PROMPT (nullable) receives a new string or NULL: the server's message
 * (SHIMMER_NM_HINT_VPN_MESSAGE) or else, when otp is listed, the static
 * challenge's text. */
GPtrArray *shimmer_nm_secrets_fields(NMSettingVpn *s_vpn, const char *const *hints, char **prompt);

/* Whether any secret must be asked (any field with must_ask): the service
 * plugin's need_secrets. */
gboolean shimmer_nm_secrets_needed(NMSettingVpn *s_vpn, const char *const *hints);

/* The secrets that are never stored in a profile: answers valid once (otp,
 * challenge-response). A NULL-terminated static vector. */
const char *const *shimmer_nm_secrets_never_saved(void);

/* The URL of a web sign-in among HINTS (SHIMMER_NM_HINT_WEB_AUTH), or
 * NULL. Points into HINTS. */
const char *shimmer_nm_secrets_web_auth_url(const char *const *hints);

/* The value of secret NAME in S_VPN, or NULL when it is absent or empty.
 * Also looks under NAME tagged with SHIMMER_NM_HINT_DYNAMIC_CHALLENGE(_ECHO):
 * NetworkManager before 1.46 keeps the name an agent returned as it is. */
const char *shimmer_nm_secrets_get(NMSettingVpn *s_vpn, const char *name);

G_END_DECLS
