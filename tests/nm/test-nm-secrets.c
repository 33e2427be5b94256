/* SPDX-License-Identifier: MIT */
/*
 * nm-plugin/secrets.c: which secrets a connection needs, from its vpn.data,
 * vpn.secrets and secret flags, with and without hints:
 *   - flags NOT_REQUIRED drop a secret; NOT_SAVED, AGENT_OWNED and NONE
 *     without a value must be asked; an empty value counts as none;
 *   - the user name is asked when vpn.data has none; the static challenge
 *     gives otp its label, the prompt and the echo flag;
 *   - hints ask exactly what they name; x- hints are metadata; the
 *     x-dynamic-challenge tags name the secret and keep the tagged key.
 */
#include <NetworkManager.h>
#include <string.h>

#include "mapping.h"
#include "secrets.h"

/* A setting from "KEY=VALUE" data items and secrets (NULL-terminated). */
static NMSettingVpn *vpn(const char *const *data, const char *const *secrets)
{
    NMSettingVpn *s = NM_SETTING_VPN(nm_setting_vpn_new());
    g_object_set(s, NM_SETTING_VPN_SERVICE_TYPE, SHIMMER_NM_SERVICE_TYPE, NULL);
    for (gsize i = 0; data != NULL && data[i] != NULL; i++) {
        g_auto(GStrv) kv = g_strsplit(data[i], "=", 2);
        nm_setting_vpn_add_data_item(s, kv[0], kv[1]);
    }
    for (gsize i = 0; secrets != NULL && secrets[i] != NULL; i++) {
        g_auto(GStrv) kv = g_strsplit(secrets[i], "=", 2);
        nm_setting_vpn_add_secret(s, kv[0], kv[1]);
    }
    return s;
}

#define V(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The fields as "name:key:flags" strings, flags being 's' (secret) or 'e'
 * (echoed) then 'A' (must ask) or '-', joined by spaces. */
static char *describe(NMSettingVpn *s, const char *const *hints, char **prompt)
{
    g_autoptr(GPtrArray) fields = shimmer_nm_secrets_fields(s, hints, prompt);
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < fields->len; i++) {
        const ShimmerNmSecretField *f = fields->pdata[i];
        g_assert_nonnull(f->label);
        g_assert_cmpstr(f->label, !=, "");
        if (out->len > 0)
            g_string_append_c(out, ' ');
        g_string_append_printf(out, "%s:%s:%c%c", f->name, f->key, f->is_secret ? 's' : 'e',
                               f->must_ask ? 'A' : '-');
    }
    /* The boolean wrapper agrees with the fields. */
    g_assert_cmpint(shimmer_nm_secrets_needed(s, hints), ==, strchr(out->str, 'A') != NULL);
    return g_string_free(out, FALSE);
}

static void check(const char *const *data, const char *const *secrets, const char *const *hints,
                  const char *expected)
{
    g_autoptr(NMSettingVpn) s = vpn(data, secrets);
    g_autofree char *got = describe(s, hints, NULL);
    g_assert_cmpstr(got, ==, expected);
}

static const char *label_of(GPtrArray *fields, const char *name)
{
    for (guint i = 0; i < fields->len; i++) {
        const ShimmerNmSecretField *f = fields->pdata[i];
        if (strcmp(f->name, name) == 0)
            return f->label;
    }
    return NULL;
}

/* ---------- the profile decides (no hints) ---------- */

static void test_nothing(void)
{
    check(V("remote=vpn.example.com", "key-pem-flags=0"), V("key-pem=PEM"), NULL, "");
    check(NULL, NULL, NULL, "");
}

static void test_flags(void)
{
    /* AGENT_OWNED (1), NOT_SAVED (2) and NONE (0) without a value: asked. */
    check(V("username=alice", "password-flags=1"), NULL, NULL, "password:password:sA");
    check(V("username=alice", "password-flags=2"), NULL, NULL, "password:password:sA");
    check(V("username=alice", "password-flags=0"), NULL, NULL, "password:password:sA");
    /* With a value: listed, not asked. */
    check(V("username=alice", "password-flags=1"), V("password=pw"), NULL, "password:password:s-");
    check(V("username=alice", "password-flags=0"), V("password=pw"), NULL, "password:password:s-");
    check(V("username=alice", "password-flags=2"), V("password=pw"), NULL, "password:password:s-");
    /* An empty value is none. */
    check(V("username=alice", "password-flags=1"), V("password="), NULL, "password:password:sA");
    /* NOT_REQUIRED (4): not part of the connection, whatever else is set. */
    check(V("username=alice", "password-flags=4"), NULL, NULL, "");
    check(V("password-flags=4"), NULL, NULL, "");
    check(V("cert-pass-flags=5"), NULL, NULL, "");
    /* No flags item: the profile does not use the secret. */
    check(NULL, V("password=pw"), NULL, "");
}

static void test_username(void)
{
    check(V("password-flags=1"), NULL, NULL, "username:username:eA password:password:sA");
    check(V("username=", "password-flags=1"), NULL, NULL,
          "username:username:eA password:password:sA");
    check(V("password-flags=1"), V("username=alice"), NULL,
          "username:username:e- password:password:sA");
    check(V("password-flags=0"), V("username=alice", "password=pw"), NULL,
          "username:username:e- password:password:s-");
}

static void test_static_challenge(void)
{
    g_autoptr(NMSettingVpn) s = vpn(
        V("username=alice", "password-flags=1", "static-challenge=\"Enter PIN\" 1", "otp-flags=2"),
        NULL);
    g_autofree char *prompt = NULL;
    g_autofree char *got = describe(s, NULL, &prompt);
    g_assert_cmpstr(got, ==, "password:password:sA otp:otp:eA");
    g_assert_cmpstr(prompt, ==, "Enter PIN");
    g_autoptr(GPtrArray) fields = shimmer_nm_secrets_fields(s, NULL, NULL);
    g_assert_cmpstr(label_of(fields, "otp"), ==, "Enter PIN");
    g_assert_cmpstr(label_of(fields, "password"), ==, "Password");

    /* Echo 0: hidden. Unquoted single-word text. */
    check(V("static-challenge=Token 0", "otp-flags=2"), NULL, NULL, "otp:otp:sA");
    /* The answer is there (the agent just gave it): nothing to ask, so
     * need_secrets stops asking. */
    check(V("static-challenge=Token 0", "otp-flags=2"), V("otp=123456"), NULL, "otp:otp:s-");
    /* NOT_REQUIRED. */
    check(V("static-challenge=Token 0", "otp-flags=4"), NULL, NULL, "");

    /* Text the lexer refuses: a generic label, no prompt. */
    g_autoptr(NMSettingVpn) bad = vpn(V("static-challenge=\"unterminated", "otp-flags=2"), NULL);
    g_autofree char *bad_prompt = NULL;
    g_autoptr(GPtrArray) bad_fields = shimmer_nm_secrets_fields(bad, NULL, &bad_prompt);
    g_assert_cmpuint(bad_fields->len, ==, 1);
    g_assert_cmpstr(label_of(bad_fields, "otp"), ==, "Challenge response");
    g_assert_null(bad_prompt);
}

static void test_cert_pass_and_order(void)
{
    check(V("cert-pass-flags=1"), NULL, NULL, "cert-pass:cert-pass:sA");
    check(V("cert-pass-flags=0"), V("cert-pass=secret"), NULL, "cert-pass:cert-pass:s-");
    check(V("cert-pass-flags=1", "static-challenge=\"PIN\" 0", "otp-flags=2", "password-flags=2"),
          NULL, NULL,
          "username:username:eA password:password:sA otp:otp:sA cert-pass:cert-pass:sA");
}

/* ---------- hints decide ---------- */

static void test_hints_dynamic_challenge(void)
{
    const char *const *data = V("username=alice", "password-flags=1", "cert-pass-flags=1");
    g_autoptr(NMSettingVpn) s = vpn(data, NULL);
    g_autofree char *prompt = NULL;
    g_autofree char *got = describe(
        s, V("challenge-response", "x-vpn-message:Enter the code", "x-shimmer-echo"), &prompt);
    g_assert_cmpstr(got, ==, "challenge-response:challenge-response:eA");
    g_assert_cmpstr(prompt, ==, "Enter the code");

    check(data, NULL, V("challenge-response"), "challenge-response:challenge-response:sA");
    /* An answer from an earlier round is no answer to this one. */
    check(data, V("challenge-response=old"), V("challenge-response"),
          "challenge-response:challenge-response:sA");

    /* NetworkManager's tags: the key is the tagged name. */
    check(data, NULL, V("x-dynamic-challenge-echo:challenge-response", "x-vpn-message:m"),
          "challenge-response:x-dynamic-challenge-echo:challenge-response:eA");
    check(data, NULL, V("x-dynamic-challenge:challenge-response"),
          "challenge-response:x-dynamic-challenge:challenge-response:sA");
}

/* A web sign-in: only the confirmation is asked (shown while typed), with
 * the server's message; the URL comes with its own hint. */
static void test_hints_web_sign_in(void)
{
    const char *const *data = V("username=alice", "password-flags=1");
    g_autoptr(NMSettingVpn) s = vpn(data, V("password=pw"));
    g_autofree char *prompt = NULL;
    const char *const *hints =
        V("x-dynamic-challenge-echo:web-sign-in", "x-vpn-message:Sign in at https://sso.example/x",
          "x-shimmer-web-auth:https://sso.example/x");
    g_autofree char *got = describe(s, hints, &prompt);
    g_assert_cmpstr(got, ==, "web-sign-in:x-dynamic-challenge-echo:web-sign-in:eA");
    g_assert_cmpstr(prompt, ==, "Sign in at https://sso.example/x");
    g_assert_cmpstr(shimmer_nm_secrets_web_auth_url(hints), ==, "https://sso.example/x");
    g_assert_null(shimmer_nm_secrets_web_auth_url(V("web-sign-in")));
    g_assert_null(shimmer_nm_secrets_web_auth_url(NULL));
    /* Never asked without hints. */
    g_assert_false(shimmer_nm_secrets_needed(s, NULL));
}

static void test_hints_filter(void)
{
    const char *const *data = V("password-flags=1", "cert-pass-flags=1");
    /* Only what the hints name, each asked, even with a value. */
    check(data, V("password=old"), V("password"), "password:password:sA");
    check(data, NULL, V("cert-pass", "password"), "password:password:sA cert-pass:cert-pass:sA");
    check(data, NULL, V("username", "password"), "username:username:eA password:password:sA");
    /* A hint may name a secret the profile does not flag. */
    check(NULL, NULL, V("otp"), "otp:otp:sA");
    /* Unknown names and other x- hints name nothing: the profile decides,
     * and the message is still the prompt. */
    g_autoptr(NMSettingVpn) s = vpn(data, V("password=pw"));
    g_autofree char *prompt = NULL;
    g_autofree char *got =
        describe(s, V("x-vpn-message:Hello", "x-something", "http-proxy-password", ""), &prompt);
    g_assert_cmpstr(got, ==, "username:username:eA password:password:s- cert-pass:cert-pass:sA");
    g_assert_cmpstr(prompt, ==, "Hello");
    /* An empty vector is no hints. */
    check(data, NULL, (const char *const[]){NULL},
          "username:username:eA password:password:sA cert-pass:cert-pass:sA");
}

/* ---------- helpers ---------- */

static void test_never_saved(void)
{
    const char *const *names = shimmer_nm_secrets_never_saved();
    g_assert_true(g_strv_contains(names, "otp"));
    g_assert_true(g_strv_contains(names, "challenge-response"));
    g_assert_true(g_strv_contains(names, "web-sign-in"));
    g_assert_false(g_strv_contains(names, "password"));
    g_assert_cmpuint(g_strv_length((char **)names), ==, 3);
}

static void test_get(void)
{
    g_autoptr(NMSettingVpn) s =
        vpn(NULL, V("password=pw", "otp=", "x-dynamic-challenge-echo:challenge-response=42"));
    g_assert_cmpstr(shimmer_nm_secrets_get(s, "password"), ==, "pw");
    g_assert_null(shimmer_nm_secrets_get(s, "otp"));
    g_assert_null(shimmer_nm_secrets_get(s, "cert-pass"));
    g_assert_cmpstr(shimmer_nm_secrets_get(s, "challenge-response"), ==, "42");
    nm_setting_vpn_add_secret(s, "challenge-response", "43");
    g_assert_cmpstr(shimmer_nm_secrets_get(s, "challenge-response"), ==, "43");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/nm/secrets/nothing", test_nothing);
    g_test_add_func("/nm/secrets/flags", test_flags);
    g_test_add_func("/nm/secrets/username", test_username);
    g_test_add_func("/nm/secrets/static-challenge", test_static_challenge);
    g_test_add_func("/nm/secrets/cert-pass-and-order", test_cert_pass_and_order);
    g_test_add_func("/nm/secrets/hints/dynamic-challenge", test_hints_dynamic_challenge);
    g_test_add_func("/nm/secrets/hints/filter", test_hints_filter);
    g_test_add_func("/nm/secrets/hints/web-sign-in", test_hints_web_sign_in);
    g_test_add_func("/nm/secrets/never-saved", test_never_saved);
    g_test_add_func("/nm/secrets/get", test_get);
    return g_test_run();
}
