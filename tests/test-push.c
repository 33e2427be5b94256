/* SPDX-License-Identifier: MIT */
/* Unit tests of PUSH_REPLY parsing: the same parser, the push whitelist,
 * pull-filter, and secrets in pushed options. */
#include <string.h>

#include "config.h"

static ShimmerConfig *push(const char *text, GPtrArray *filters)
{
    return shimmer_config_parse_push(text, strlen(text), filters);
}

static char *diagnostics(const ShimmerConfig *cfg)
{
    GString *s = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, s);
    return g_string_free(s, FALSE);
}

static void assert_diag(const ShimmerConfig *cfg, const char *needle)
{
    g_autofree char *d = diagnostics(cfg);
    if (strstr(d, needle) == NULL)
        g_error("expected '%s' in diagnostics:\n%s", needle, d);
}

/* What an OpenVPN 2.6 server sends with topology subnet and IPv6. */
static const char *typical =
    "route-gateway 10.8.0.1,topology subnet,ping 10,ping-restart 120,"
    "dhcp-option DNS 10.8.0.1,dhcp-option DOMAIN corp.example,"
    "redirect-gateway def1 bypass-dhcp,route 10.9.0.0 255.255.0.0,"
    "route-ipv6 2001:db8:1::/48,dns server 0 address 10.8.0.53,"
    "ifconfig-ipv6 fd00:8::1000/64 fd00:8::1,ifconfig 10.8.0.2 255.255.255.0,"
    "peer-id 7,cipher AES-256-GCM,protocol-flags cc-exit tls-ekm dyn-tls-crypt,"
    "tun-mtu 1500,auth-token SESS_ID_c2VjcmV0dG9rZW4,explicit-exit-notify 2";

static void test_typical(void)
{
    g_autoptr(ShimmerConfig) cfg = push(typical, NULL);
    g_autofree char *d = diagnostics(cfg);
    g_assert_cmpstr(d, ==, "");
    g_assert_cmpstr(cfg->route_gateway, ==, "10.8.0.1");
    g_assert_cmpint(cfg->topology, ==, SHIMMER_TOPOLOGY_SUBNET);
    g_assert_cmpint(cfg->ping, ==, 10);
    g_assert_cmpint(cfg->ping_restart, ==, 120);
    g_assert_cmpuint(cfg->dhcp_options->len, ==, 2);
    g_assert_cmpuint(cfg->redirect_gateway, ==,
                     SHIMMER_REDIRECT_ENABLED | SHIMMER_REDIRECT_DEF1 |
                         SHIMMER_REDIRECT_BYPASS_DHCP);
    g_assert_cmpuint(cfg->routes->len, ==, 1);
    g_assert_cmpuint(cfg->routes6->len, ==, 1);
    g_assert_cmpuint(cfg->dns_servers->len, ==, 1);
    g_assert_cmpstr(cfg->ifconfig_local, ==, "10.8.0.2");
    g_assert_cmpstr(cfg->ifconfig_remote, ==, "255.255.255.0");
    g_assert_cmpstr(cfg->ifconfig_ipv6_local, ==, "fd00:8::1000/64");
    g_assert_cmpint(cfg->peer_id, ==, 7);
    g_assert_cmpstr(cfg->cipher, ==, "AES-256-GCM");
    g_assert_true(cfg->protocol_flag_cc_exit);
    g_assert_true(cfg->protocol_flag_tls_ekm);
    g_assert_true(cfg->protocol_flag_dyn_tls_crypt);
    g_assert_cmpuint(cfg->tun_mtu, ==, 1500);
    g_assert_cmpstr(cfg->auth_token, ==, "SESS_ID_c2VjcmV0dG9rZW4");
    g_assert_cmpint(cfg->explicit_exit_notify, ==, 2);
    g_autofree char *json = shimmer_config_to_json(cfg);
    g_assert_null(strstr(json, "c2VjcmV0dG9rZW4"));
    g_assert_nonnull(strstr(json, "\"peer-id\": 7"));
}

static void test_not_pushable(void)
{
    g_autoptr(ShimmerConfig) cfg =
        push("up /bin/sh,remote evil.example 1194,ca /etc/passwd,script-security 3,"
             "route 10.1.0.0 255.255.0.0,dev tap0,secret x",
             NULL);
    g_assert_false(shimmer_config_has_errors(cfg));
    assert_diag(cfg, "PUSH_REPLY:1: warning: 'up' is not an option a server may push");
    assert_diag(cfg, "PUSH_REPLY:2: warning: 'remote' is not an option a server may push");
    assert_diag(cfg, "PUSH_REPLY:3: warning: 'ca' is not an option a server may push");
    assert_diag(cfg, "PUSH_REPLY:6: warning: 'dev' is not an option a server may push");
    g_assert_cmpuint(cfg->connections->len, ==, 0);
    g_assert_false(cfg->ca.present);
    g_assert_null(cfg->dev);
    /* The allowed item among them still applies. */
    g_assert_cmpuint(cfg->routes->len, ==, 1);
}

static void test_unknown_option_is_ignored(void)
{
    g_autoptr(ShimmerConfig) cfg = push("some-future-option 1 2,ping 5", NULL);
    g_assert_false(shimmer_config_has_errors(cfg));
    assert_diag(cfg, "'some-future-option' is not an option a server may push");
    g_assert_cmpint(cfg->ping, ==, 5);
}

static ShimmerPullFilter *filter(ShimmerPullFilterAction a, const char *text)
{
    ShimmerPullFilter *f = g_new0(ShimmerPullFilter, 1);
    f->action = a;
    f->text = g_strdup(text);
    return f;
}

static void filter_free(gpointer p)
{
    ShimmerPullFilter *f = p;
    g_free(f->text);
    g_free(f);
}

static void test_pull_filter(void)
{
    g_autoptr(GPtrArray) filters = g_ptr_array_new_with_free_func(filter_free);
    g_ptr_array_add(filters, filter(SHIMMER_PULL_FILTER_ACCEPT, "route 10.9."));
    g_ptr_array_add(filters, filter(SHIMMER_PULL_FILTER_IGNORE, "route "));
    g_ptr_array_add(filters, filter(SHIMMER_PULL_FILTER_IGNORE, "redirect-gateway"));
    g_autoptr(ShimmerConfig) cfg = push("route 10.9.0.0 255.255.0.0,route 10.10.0.0 255.255.0.0,"
                                        "redirect-gateway def1,route-ipv6 2001:db8::/32",
                                        filters);
    g_assert_false(shimmer_config_has_errors(cfg));
    g_assert_cmpuint(cfg->routes->len, ==, 1);
    ShimmerRoute *r = g_ptr_array_index(cfg->routes, 0);
    g_assert_cmpstr(r->network, ==, "10.9.0.0");
    g_assert_cmpuint(cfg->redirect_gateway, ==, 0);
    /* "route " (with the space) does not match route-ipv6. */
    g_assert_cmpuint(cfg->routes6->len, ==, 1);

    g_ptr_array_add(filters, filter(SHIMMER_PULL_FILTER_REJECT, "dhcp-option"));
    g_autoptr(ShimmerConfig) rej = push("ping 10,dhcp-option DNS 1.1.1.1", filters);
    g_assert_true(shimmer_config_has_errors(rej));
    assert_diag(rej, "PUSH_REPLY:2: error: pushed option 'dhcp-option' rejected by pull-filter");
}

static void test_bad_values(void)
{
    g_autoptr(ShimmerConfig) cbc = push("cipher AES-256-CBC", NULL);
    g_assert_true(shimmer_config_has_errors(cbc));
    assert_diag(cbc, "not an AEAD cipher");

    g_autoptr(ShimmerConfig) badroute = push("route 10.0.0.0 255.0.255.0", NULL);
    g_assert_true(shimmer_config_has_errors(badroute));
    assert_diag(badroute, "'route': '255.0.255.0' is not a netmask");

    g_autoptr(ShimmerConfig) peer = push("peer-id 16777216", NULL);
    g_assert_true(shimmer_config_has_errors(peer));

    g_autoptr(ShimmerConfig) quote = push("dhcp-option DOMAIN \"unterminated", NULL);
    g_assert_true(shimmer_config_has_errors(quote));

    const char nul[] = "ping 10\0ping 20";
    g_autoptr(ShimmerConfig) withnul = shimmer_config_parse_push(nul, sizeof(nul) - 1, NULL);
    g_assert_true(shimmer_config_has_errors(withnul));
}

static void test_compression_pushed_is_framing_only(void)
{
    /* The push says which framing and algorithm the server uses; whether
     * the client accepts it is shimmer_config_check_pushed_compression's
     * (test-config). */
    g_autoptr(ShimmerConfig) lzo = push("comp-lzo yes", NULL);
    g_assert_false(shimmer_config_has_errors(lzo));
    g_assert_cmpint(lzo->comp, ==, SHIMMER_COMP_LZO_NO);
    g_assert_cmpint(lzo->comp_alg, ==, SHIMMER_COMP_ALG_LZO);
    g_autoptr(ShimmerConfig) lz4 = push("compress lz4-v2", NULL);
    g_assert_false(shimmer_config_has_errors(lz4));
    g_assert_cmpint(lz4->comp, ==, SHIMMER_COMP_STUB_V2);
    g_assert_cmpint(lz4->comp_alg, ==, SHIMMER_COMP_ALG_LZ4);
    g_autoptr(ShimmerConfig) stub = push("comp-lzo no", NULL);
    g_assert_cmpint(stub->comp, ==, SHIMMER_COMP_LZO_NO);
    g_assert_cmpint(stub->comp_alg, ==, SHIMMER_COMP_ALG_NONE);
}

static void test_continuation(void)
{
    g_autoptr(ShimmerConfig) more = push("route 10.1.0.0 255.255.0.0,push-continuation 2", NULL);
    g_assert_cmpint(more->push_continuation, ==, 2);
    g_autoptr(ShimmerConfig) last = push("ping 10,push-continuation 1", NULL);
    g_assert_cmpint(last->push_continuation, ==, 1);
    g_autoptr(ShimmerConfig) none = push("ping 10", NULL);
    g_assert_cmpint(none->push_continuation, ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/push/typical", test_typical);
    g_test_add_func("/push/not-pushable", test_not_pushable);
    g_test_add_func("/push/unknown", test_unknown_option_is_ignored);
    g_test_add_func("/push/pull-filter", test_pull_filter);
    g_test_add_func("/push/bad-values", test_bad_values);
    g_test_add_func("/push/compression", test_compression_pushed_is_framing_only);
    g_test_add_func("/push/continuation", test_continuation);
    return g_test_run();
}
