/* SPDX-License-Identifier: MIT */
/*
 * Which secrets a connection needs from the user (see secrets.h).
 *
 * The answer depends only on the setting and the hints, never on which
 * program asks, so that need_secrets in the service plugin and the auth
 * dialog the agents run cannot disagree: NetworkManager would otherwise ask
 * an agent, get nothing new and ask again.
 */
#include "secrets.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lexer.h"
#include "mapping.h"

typedef enum {
    KIND_USERNAME,
    KIND_PASSWORD,
    KIND_OTP,
    KIND_CERT_PASS,
    KIND_CHALLENGE_RESPONSE,
    KIND_WEB_SIGN_IN,
    N_KINDS,
} Kind;

/* In asking order. */
static const struct {
    const char *name;
    const char *label;
} kinds[N_KINDS] = {
    [KIND_USERNAME] = {SHIMMER_NM_SECRET_USERNAME, N_("Username")},
    [KIND_PASSWORD] = {SHIMMER_NM_SECRET_PASSWORD, N_("Password")},
    [KIND_OTP] = {SHIMMER_NM_SECRET_OTP, N_("Challenge response")},
    [KIND_CERT_PASS] = {SHIMMER_NM_SECRET_CERT_PASS, N_("Private key passphrase")},
    [KIND_CHALLENGE_RESPONSE] = {SHIMMER_NM_SECRET_CHALLENGE_RESPONSE, N_("Challenge response")},
    [KIND_WEB_SIGN_IN] = {SHIMMER_NM_SECRET_WEB_SIGN_IN,
                          N_("Press Enter once you have signed in on the web page")},
};

static const char *const never_saved[] = {
    SHIMMER_NM_SECRET_OTP,
    SHIMMER_NM_SECRET_CHALLENGE_RESPONSE,
    SHIMMER_NM_SECRET_WEB_SIGN_IN,
    NULL,
};

const char *const *shimmer_nm_secrets_never_saved(void)
{
    return never_saved;
}

void shimmer_nm_secret_field_free(ShimmerNmSecretField *field)
{
    if (field == NULL)
        return;
    g_free(field->name);
    g_free(field->key);
    g_free(field->label);
    g_free(field);
}

static int kind_of(const char *name)
{
    for (int k = 0; k < N_KINDS; k++) {
        if (strcmp(kinds[k].name, name) == 0)
            return k;
    }
    return -1;
}

static const char *nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

const char *shimmer_nm_secrets_get(NMSettingVpn *s_vpn, const char *name)
{
    const char *v = nonempty(nm_setting_vpn_get_secret(s_vpn, name));
    if (v != NULL)
        return v;
    static const char *const tags[] = {SHIMMER_NM_HINT_DYNAMIC_CHALLENGE,
                                       SHIMMER_NM_HINT_DYNAMIC_CHALLENGE_ECHO};
    for (gsize i = 0; i < G_N_ELEMENTS(tags); i++) {
        g_autofree char *tagged = g_strconcat(tags[i], name, NULL);
        v = nonempty(nm_setting_vpn_get_secret(s_vpn, tagged));
        if (v != NULL)
            return v;
    }
    return NULL;
}

/* Whether secret NAME is part of the profile: its flags item is in vpn.data
 * and does not say NOT_REQUIRED. */
static gboolean secret_applies(NMSettingVpn *s_vpn, const char *name)
{
    g_autofree char *key = g_strdup_printf("%s-flags", name);
    if (nm_setting_vpn_get_data_item(s_vpn, key) == NULL)
        return FALSE;
    NMSettingSecretFlags flags = NM_SETTING_SECRET_FLAG_NONE;
    nm_setting_get_secret_flags(NM_SETTING(s_vpn), name, &flags, NULL);
    return !(flags & NM_SETTING_SECRET_FLAG_NOT_REQUIRED);
}

/* The static challenge: its text (NULL when the item is absent or cannot be
 * read) and whether the response may be shown. */
static char *static_challenge(NMSettingVpn *s_vpn, gboolean *echo)
{
    *echo = FALSE;
    const char *v = nm_setting_vpn_get_data_item(s_vpn, "static-challenge");
    if (v == NULL)
        return NULL;
    g_auto(GStrv) tokens = shimmer_lex_line(v, strlen(v), NULL);
    if (tokens == NULL || tokens[0] == NULL || tokens[0][0] == '\0')
        return NULL;
    *echo = tokens[1] != NULL && strcmp(tokens[1], "1") == 0;
    return g_strdup(tokens[0]);
}

typedef struct {
    gboolean wanted[N_KINDS];
    char *key[N_KINDS]; /* the tagged hint that named it, or NULL */
    gboolean echo;      /* the dynamic challenge's answer may be shown */
    const char *message;
    gboolean any; /* a hint names a secret */
} Hints;

static void hints_parse(Hints *h, const char *const *hints)
{
    memset(h, 0, sizeof(*h));
    for (gsize i = 0; hints != NULL && hints[i] != NULL; i++) {
        const char *hint = hints[i];
        const char *name = hint;
        gboolean tagged = FALSE;
        if (g_str_has_prefix(hint, SHIMMER_NM_HINT_VPN_MESSAGE)) {
            if (h->message == NULL)
                h->message = hint + strlen(SHIMMER_NM_HINT_VPN_MESSAGE);
            continue;
        }
        if (strcmp(hint, SHIMMER_NM_HINT_ECHO) == 0) {
            h->echo = TRUE;
            continue;
        }
        if (g_str_has_prefix(hint, SHIMMER_NM_HINT_DYNAMIC_CHALLENGE_ECHO)) {
            name = hint + strlen(SHIMMER_NM_HINT_DYNAMIC_CHALLENGE_ECHO);
            tagged = TRUE;
            h->echo = TRUE;
        } else if (g_str_has_prefix(hint, SHIMMER_NM_HINT_DYNAMIC_CHALLENGE)) {
            name = hint + strlen(SHIMMER_NM_HINT_DYNAMIC_CHALLENGE);
            tagged = TRUE;
        }
        int k = kind_of(name);
        if (k < 0)
            continue; /* other metadata, or a secret we do not know */
        h->wanted[k] = TRUE;
        h->any = TRUE;
        if (tagged && h->key[k] == NULL)
            h->key[k] = g_strdup(hint);
    }
}

static void hints_clear(Hints *h)
{
    for (int k = 0; k < N_KINDS; k++)
        g_free(h->key[k]);
}

GPtrArray *shimmer_nm_secrets_fields(NMSettingVpn *s_vpn, const char *const *hints, char **prompt)
{
    GPtrArray *fields =
        g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_nm_secret_field_free);
    Hints h;
    hints_parse(&h, hints);

    gboolean otp_echo;
    g_autofree char *challenge = static_challenge(s_vpn, &otp_echo);

    gboolean applies[N_KINDS] = {FALSE};
    if (h.any) {
        memcpy(applies, h.wanted, sizeof(applies));
    } else {
        applies[KIND_PASSWORD] = secret_applies(s_vpn, SHIMMER_NM_SECRET_PASSWORD);
        applies[KIND_USERNAME] =
            applies[KIND_PASSWORD] &&
            nonempty(nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_USERNAME)) == NULL;
        if (nm_setting_vpn_get_data_item(s_vpn, "static-challenge") != NULL) {
            NMSettingSecretFlags flags = NM_SETTING_SECRET_FLAG_NONE;
            nm_setting_get_secret_flags(NM_SETTING(s_vpn), SHIMMER_NM_SECRET_OTP, &flags, NULL);
            applies[KIND_OTP] = !(flags & NM_SETTING_SECRET_FLAG_NOT_REQUIRED);
        }
        applies[KIND_CERT_PASS] = secret_applies(s_vpn, SHIMMER_NM_SECRET_CERT_PASS);
        /* A dynamic challenge is only ever asked through hints. */
    }

    for (int k = 0; k < N_KINDS; k++) {
        if (!applies[k])
            continue;
        ShimmerNmSecretField *f = g_new0(ShimmerNmSecretField, 1);
        f->name = g_strdup(kinds[k].name);
        f->key = h.key[k] != NULL ? g_strdup(h.key[k]) : g_strdup(kinds[k].name);
        f->is_secret = TRUE;
        switch ((Kind)k) {
        case KIND_USERNAME:
            f->is_secret = FALSE;
            break;
        case KIND_OTP:
            f->is_secret = !otp_echo;
            break;
        case KIND_CHALLENGE_RESPONSE:
            f->is_secret = !h.echo;
            break;
        case KIND_WEB_SIGN_IN:
            f->is_secret = FALSE; /* nothing secret is typed */
            break;
        default:
            break;
        }
        if (k == KIND_OTP && challenge != NULL)
            f->label = g_strdup(challenge);
        else
            f->label = g_strdup(_(kinds[k].label));
        f->must_ask = h.any || shimmer_nm_secrets_get(s_vpn, kinds[k].name) == NULL;
        g_ptr_array_add(fields, f);
    }

    if (prompt != NULL) {
        if (h.message != NULL && h.message[0] != '\0')
            *prompt = g_strdup(h.message);
        else if (applies[KIND_OTP] && challenge != NULL)
            *prompt = g_strdup(challenge);
        else
            *prompt = NULL;
    }
    hints_clear(&h);
    return fields;
}

const char *shimmer_nm_secrets_web_auth_url(const char *const *hints)
{
    for (gsize i = 0; hints != NULL && hints[i] != NULL; i++) {
        if (g_str_has_prefix(hints[i], SHIMMER_NM_HINT_WEB_AUTH))
            return hints[i] + strlen(SHIMMER_NM_HINT_WEB_AUTH);
    }
    return NULL;
}

gboolean shimmer_nm_secrets_needed(NMSettingVpn *s_vpn, const char *const *hints)
{
    g_autoptr(GPtrArray) fields = shimmer_nm_secrets_fields(s_vpn, hints, NULL);
    for (guint i = 0; i < fields->len; i++) {
        const ShimmerNmSecretField *f = fields->pdata[i];
        if (f->must_ask)
            return TRUE;
    }
    return FALSE;
}
