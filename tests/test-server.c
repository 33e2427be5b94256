/* SPDX-License-Identifier: MIT */
/*
 * The server side of the configuration: what a server file hands out
 * (ShimmerServerPlan, as OpenVPN expands `server`), what it refuses and
 * why, and client-config-dir files.
 */
#include <string.h>

#include "config.h"

#define FP                                                                                         \
    "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:"      \
    "dd:ee:ff"

static char *data_dir(void)
{
    return g_build_filename(g_getenv("SHIMMER_TEST_SRCDIR"), "data", NULL);
}

/* A server file in tests/data (so the keys resolve), with LINES after a
 * fixed head of 6 lines. */
static ShimmerConfig *server_with(const char *lines)
{
    g_autofree char *dir = data_dir();
    g_autofree char *path = g_build_filename(dir, "server.ovpn", NULL);
    g_autofree char *text = g_strdup_printf("port 1194\nproto udp\ndev tun\n"
                                            "ca ca.crt\ncert server.crt\nkey server.key\n%s",
                                            lines);
    return shimmer_config_parse(path, NULL, text, strlen(text), shimmer_config_file_loader, NULL);
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

static void assert_clean(const ShimmerConfig *cfg)
{
    if (shimmer_config_has_errors(cfg)) {
        g_autofree char *d = diagnostics(cfg);
        g_error("unexpected errors:\n%s", d);
    }
}

static void assert_push(const ShimmerServerPlan *plan, const char *const *want)
{
    guint n = g_strv_length((char **)want);
    GString *got = g_string_new(NULL);
    for (guint i = 0; i < plan->push->len; i++)
        g_string_append_printf(got, "  %s\n", (char *)g_ptr_array_index(plan->push, i));
    if (plan->push->len != n)
        g_error("expected %u pushed options, got:\n%s", n, got->str);
    for (guint i = 0; i < n; i++)
        if (strcmp(g_ptr_array_index(plan->push, i), want[i]) != 0)
            g_error("pushed option %u: expected '%s' in:\n%s", i, want[i], got->str);
    g_string_free(got, TRUE);
}

/* The `server` macro, as OpenVPN 2.6 expands it for topology subnet. */
static void test_server_macro(void)
{
    g_autoptr(ShimmerConfig) cfg =
        server_with("dh none\ntopology subnet\nserver 10.8.0.0 255.255.255.0\n"
                    "server-ipv6 fd00:8::/64\nkeepalive 10 120\n"
                    "push \"redirect-gateway def1\"\npush \"dhcp-option DNS 10.8.0.1\"\n");
    assert_clean(cfg);
    g_assert_cmpint(cfg->role, ==, SHIMMER_ROLE_SERVER);
    g_assert_cmpint(cfg->topology, ==, SHIMMER_TOPOLOGY_SUBNET);
    const ShimmerServerPlan *plan = cfg->plan;
    g_assert_nonnull(plan);
    g_assert_cmpstr(plan->local, ==, "10.8.0.1");
    g_assert_cmpstr(plan->netmask, ==, "255.255.255.0");
    g_assert_cmpstr(plan->pool_start, ==, "10.8.0.2");
    g_assert_cmpstr(plan->pool_end, ==, "10.8.0.254");
    g_assert_cmpstr(plan->local6, ==, "fd00:8::1/64");
    g_assert_cmpstr(plan->pool6_start, ==, "fd00:8::1000");
    g_assert_cmpuint(plan->pool6_bits, ==, 64);
    g_assert_cmpuint(plan->pool_size, ==, 253);
    g_assert_cmpint(plan->ping, ==, 10);
    g_assert_cmpint(plan->ping_restart, ==, 240);
    const char *const push[] = {"redirect-gateway def1",
                                "dhcp-option DNS 10.8.0.1",
                                "ping 10",
                                "ping-restart 120",
                                "tun-ipv6",
                                "route-gateway 10.8.0.1",
                                "topology subnet",
                                NULL};
    assert_push(plan, push);
    g_assert_cmpint(cfg->lport, ==, 1194);
}

static void test_pool_sizes(void)
{
    static const struct {
        const char *lines;
        const char *start, *end, *start6;
        guint size;
    } cases[] = {
        {"server 10.20.0.0 255.255.0.0\n", "10.20.0.2", "10.20.255.254", NULL, 65533},
        {"server 192.168.77.0 255.255.255.248\n", "192.168.77.2", "192.168.77.6", NULL, 5},
        /* A /112 or longer IPv6 network: the pool starts at +2. */
        {"server 10.8.0.0 255.255.255.0\nserver-ipv6 fd00::/120\n", "10.8.0.2", "10.8.0.254",
         "fd00::2", 253},
        {"server 10.8.0.0 255.255.255.0\nserver-ipv6 fd00::/124\n", "10.8.0.2", "10.8.0.254",
         "fd00::2", 14},
        /* nopool: addresses from client-config-dir files only. */
        {"server 10.8.0.0 255.255.255.0 nopool\n", NULL, NULL, NULL, 0},
        /* By hand: ifconfig and ifconfig-pool. */
        {"mode server\ntls-server\nifconfig 10.9.0.1 255.255.255.0\n"
         "ifconfig-pool 10.9.0.100 10.9.0.199\nifconfig-ipv6 fd09::1/64 fd09::2\n"
         "ifconfig-ipv6-pool fd09::/64\n",
         "10.9.0.100", "10.9.0.199", "fd09::1", 100},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *lines = g_strconcat("dh none\ntopology subnet\n", cases[i].lines, NULL);
        g_autoptr(ShimmerConfig) cfg = server_with(lines);
        assert_clean(cfg);
        g_assert_nonnull(cfg->plan);
        g_assert_cmpstr(cfg->plan->pool_start, ==, cases[i].start);
        g_assert_cmpstr(cfg->plan->pool_end, ==, cases[i].end);
        g_assert_cmpstr(cfg->plan->pool6_start, ==, cases[i].start6);
        g_assert_cmpuint(cfg->plan->pool_size, ==, cases[i].size);
    }
}

static void test_refusals(void)
{
    static const struct {
        const char *lines;
        const char *error;
    } cases[] = {
        {"topology net30\nserver 10.8.0.0 255.255.255.0\n",
         "server.ovpn:7: error: 'topology net30': Shimmer's server gives every client one "
         "address of a subnet"},
        {"topology p2p\nserver 10.8.0.0 255.255.255.0\n", "'topology p2p'"},
        {"server 10.8.0.0 255.255.255.252\n", "must be a /16 to a /29"},
        {"server 10.0.0.0 255.254.0.0\n", "must be a /16 to a /29"},
        {"server 10.8.0.1 255.255.255.0\n", "the network has bits outside the mask"},
        {"server 10.8.0.0 255.255.255.0\nifconfig-pool 10.8.0.10 10.8.0.20\n",
         "server.ovpn:8: error: 'ifconfig-pool' and 'server' (line 7) both define the pool"},
        {"server 10.8.0.0 255.255.255.0\nserver-ipv6 fd00::/56\n", "must be a /64 to a /124"},
        {"server 10.8.0.0 255.255.255.0 nopool\nserver-ipv6 fd00::/64\n",
         "'server-ipv6' does not go with 'server ... nopool'"},
        {"server 10.8.0.0 255.255.255.0\nauth-user-pass-verify /etc/openvpn/check.sh via-env\n",
         "server.ovpn:8: error: 'auth-user-pass-verify': Shimmer never runs scripts"},
        {"server 10.8.0.0 255.255.255.0\nclient-connect /bin/cc.sh\n",
         "decide over D-Bus (deferred authentication)"},
        {"server 10.8.0.0 255.255.255.0\nlearn-address /bin/la.sh\n", "'learn-address'"},
        {"server 10.8.0.0 255.255.255.0\ntls-verify /bin/tv.sh\n", "'tls-verify'"},
        {"server 10.8.0.0 255.255.255.0\nclient-disconnect /bin/cd.sh\n", "'client-disconnect'"},
        {"server 10.8.0.0 255.255.255.0\nplugin /usr/lib/openvpn/radiusplugin.so radius.cnf\n",
         "Shimmer loads no plugins, and one that is not run could be what keeps strangers out"},
        {"server 10.8.0.0 255.255.255.0\nplugin openvpn-plugin-auth-pam.so\n",
         "needs the PAM service name"},
        {"server 10.8.0.0 255.255.255.0\nusername-as-common-name\n",
         "server.ovpn:8: error: 'username-as-common-name' needs a way to check user names"},
        {"server 10.8.0.0 255.255.255.0\nverify-client-cert none\n",
         "server.ovpn:8: error: 'verify-client-cert' other than require"},
        {"server 10.8.0.0 255.255.255.0\nauth-user-pass-optional\n",
         "'auth-user-pass-optional' needs a way"},
        {"server 10.8.0.0 255.255.255.0\nccd-exclusive\n",
         "'ccd-exclusive' needs 'client-config-dir'"},
        {"server 10.8.0.0 255.255.255.0\niroute 10.1.0.0 255.255.0.0\n",
         "'iroute' belongs in a client-config-dir file"},
        {"server 10.8.0.0 255.255.255.0\npush-reset\n",
         "'push-reset' belongs in a client-config-dir file"},
        {"proto tcp-client\nserver 10.8.0.0 255.255.255.0\n", "not tcp-client"},
        {"server 10.8.0.0 255.255.255.0\nremote-cert-tls server\n", "would refuse every client"},
        {"server 10.8.0.0 255.255.255.0\nclient-cert-not-required\n",
         "server.ovpn:8: error: 'client-cert-not-required': removed in OpenVPN 2.5"},
        {"server 10.8.0.0 255.255.255.0\nauth-gen-token 3600 30\n"
         "plugin openvpn-plugin-auth-pam.so login\n",
         "the renewal time 30 must be at least twice hand-window"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(ShimmerConfig) cfg = server_with(cases[i].lines);
        g_test_message("case %" G_GSIZE_FORMAT ": %s", i, cases[i].error);
        g_assert_true(shimmer_config_has_errors(cfg));
        assert_diag(cfg, cases[i].error);
        g_assert_null(cfg->plan);
    }
}

/* PAM through OpenVPN's plugin line, and what it allows. */
static void test_pam(void)
{
    g_autoptr(ShimmerConfig) cfg = server_with(
        "dh none\ntopology subnet\nserver 10.8.0.0 255.255.255.0\n"
        "plugin /usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-auth-pam.so "
        "\"openvpn login USERNAME password PASSWORD\"\n"
        "verify-client-cert optional\nusername-as-common-name\nauth-user-pass-optional\n"
        "auth-gen-token 43200 external-auth\n");
    assert_clean(cfg);
    g_assert_cmpstr(cfg->pam_service, ==, "openvpn login USERNAME password PASSWORD");
    g_assert_cmpint(cfg->verify_client_cert, ==, SHIMMER_VERIFY_CLIENT_CERT_OPTIONAL);
    g_assert_true(cfg->username_as_common_name);
    g_assert_true(cfg->auth_user_pass_optional);
    g_assert_cmpint(cfg->auth_gen_token, ==, 43200);
    g_assert_cmpint(cfg->auth_gen_token_renewal, ==, -1);
    g_assert_true(cfg->auth_gen_token_external);
    /* The prompt pairs after the service name are noted. */
    g_autoptr(ShimmerConfig) pairs =
        server_with("dh none\ntopology subnet\nserver 10.8.0.0 255.255.255.0\n"
                    "plugin openvpn-plugin-auth-pam.so login login USERNAME password PASSWORD\n");
    assert_clean(pairs);
    g_assert_cmpstr(pairs->pam_service, ==, "login");
    assert_diag(pairs, "the prompt names after the service are not needed");
}

static void test_server_details(void)
{
    g_autoptr(ShimmerConfig) cfg =
        server_with("dh dh.pem\nserver 10.8.0.0 255.255.255.0\nmultihome\nlocal 192.0.2.1\n"
                    "ifconfig-pool-persist ipp.txt 300\nclient-config-dir ccd\nccd-exclusive\n"
                    "x509-username-field ext:subjectAltName\ntls-crypt-v2 tc-v2-server.key\n"
                    "tls-crypt-v2-max-age 365\nforce-tls-key-material-export\nduplicate-cn\n"
                    "client-to-client\nmax-clients 50\nremote-cert-tls client\n");
    assert_clean(cfg);
    /* No topology: OpenVPN 2.6 would take net30, Shimmer serves subnet. */
    assert_diag(cfg, "server.ovpn:8: warning: no 'topology': OpenVPN 2.6 would use net30");
    assert_diag(cfg, "server.ovpn:7: warning: 'dh': the parameters are not used");
    assert_diag(cfg, "'tls-crypt-v2-max-age' is an OpenVPN 2.7 option");
    g_assert_cmpint(cfg->topology, ==, SHIMMER_TOPOLOGY_SUBNET);
    g_assert_true(cfg->multihome);
    g_assert_cmpstr(cfg->local, ==, "192.0.2.1");
    g_assert_cmpstr(cfg->ifconfig_pool_persist, ==, "ipp.txt");
    g_assert_cmpint(cfg->ifconfig_pool_persist_seconds, ==, 300);
    g_assert_true(g_str_has_suffix(cfg->client_config_dir, "/data/ccd"));
    g_assert_true(cfg->ccd_exclusive);
    g_assert_cmpstr(cfg->x509_username_field, ==, "ext:subjectAltName");
    g_assert_cmpint(cfg->tls_crypt_v2_max_age, ==, 365);
    g_assert_true(cfg->force_tls_ekm);
    g_assert_true(cfg->tls_crypt_v2_is_server_key);
    g_assert_cmpint(cfg->max_clients, ==, 50);
    /* The JSON carries the plan. */
    g_autofree char *json = shimmer_config_to_json(cfg);
    g_assert_nonnull(strstr(json, "\"pool-start\": \"10.8.0.2\""));
    g_assert_nonnull(strstr(json, "\"route-gateway 10.8.0.1\""));
}

static ShimmerCcd *ccd(const char *text, const ShimmerConfig *server)
{
    return shimmer_ccd_parse("ccd/alice", text, strlen(text), server);
}

static char *ccd_diagnostics(const ShimmerCcd *c)
{
    GString *s = g_string_new(NULL);
    shimmer_ccd_format_diagnostics(c, s);
    return g_string_free(s, FALSE);
}

static void test_ccd(void)
{
    g_autoptr(ShimmerConfig) server =
        server_with("dh none\ntopology subnet\nserver 10.8.0.0 255.255.255.0\n"
                    "client-config-dir ccd\n");
    assert_clean(server);
    g_autoptr(ShimmerCcd) c = ccd("# alice's laptop and the lab behind it\n"
                                  "ifconfig-push 10.8.0.50 255.255.255.0\n"
                                  "ifconfig-ipv6-push fd00:8::50/64\n"
                                  "iroute 192.168.50.0 255.255.255.0\n"
                                  "iroute 192.168.51.7\n"
                                  "iroute-ipv6 2001:db8:50::/48\n"
                                  "push \"route 10.50.0.0 255.255.0.0\"\n"
                                  "push-remove dhcp-option\n",
                                  server);
    g_autofree char *d = ccd_diagnostics(c);
    if (shimmer_ccd_has_errors(c))
        g_error("unexpected errors:\n%s", d);
    g_assert_cmpstr(c->ifconfig_push_local, ==, "10.8.0.50");
    g_assert_cmpstr(c->ifconfig_push_netmask, ==, "255.255.255.0");
    g_assert_cmpstr(c->ifconfig_ipv6_push, ==, "fd00:8::50/64");
    g_assert_null(c->ifconfig_ipv6_push_remote);
    g_assert_cmpuint(c->iroutes->len, ==, 2);
    ShimmerRoute *r = g_ptr_array_index(c->iroutes, 1);
    g_assert_cmpstr(r->network, ==, "192.168.51.7");
    g_assert_cmpstr(r->netmask, ==, "255.255.255.255");
    g_assert_cmpuint(c->iroutes6->len, ==, 1);
    g_assert_cmpuint(c->push->len, ==, 1);
    g_assert_cmpuint(c->push_remove->len, ==, 1);
    g_assert_false(c->push_reset);
    g_assert_false(c->disable);

    g_autoptr(ShimmerCcd) off = ccd("disable\npush-reset\n", server);
    g_assert_true(off->disable);
    g_assert_true(off->push_reset);

    /* Outside the server's network: ignored, as OpenVPN ignores it. */
    g_autoptr(ShimmerCcd) out = ccd("ifconfig-push 10.9.0.5 255.255.255.0\n", server);
    g_autofree char *od = ccd_diagnostics(out);
    g_assert_false(shimmer_ccd_has_errors(out));
    g_assert_nonnull(strstr(od, "ccd/alice:1: warning: 'ifconfig-push 10.9.0.5': outside the "
                                "server's network"));
    g_assert_null(out->ifconfig_push_local);

    static const struct {
        const char *text;
        const char *error;
    } bad[] = {
        {"server 10.9.0.0 255.255.255.0\n",
         "ccd/alice:1: error: 'server' is not allowed in a client-config-dir file"},
        {"iroute 192.168.50.1 255.255.255.0\n", "the address has bits outside the netmask"},
        {"iroute 300.1.1.1\n", "is not a network and a netmask"},
        {"ifconfig-push 10.8.0.5\n", "'ifconfig-push' needs 2 arguments"},
        {"push \"up /bin/evil\"\n", "not an option a server may push"},
        {"<ca>\nx\n</ca>\n", "<ca> is not allowed in a client-config-dir file"},
        {"frobnicate\n", "unknown directive 'frobnicate'"},
        {"push \"unterminated\n", "ccd/alice:1: error:"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(ShimmerCcd) b = ccd(bad[i].text, server);
        g_autofree char *bd = ccd_diagnostics(b);
        if (strstr(bd, bad[i].error) == NULL)
            g_error("'%s': expected '%s' in:\n%s", bad[i].text, bad[i].error, bd);
    }
    /* Without the server, nothing to compare against. */
    g_autoptr(ShimmerCcd) alone = ccd("ifconfig-push 172.16.0.5 255.255.0.0\n", NULL);
    g_assert_cmpstr(alone->ifconfig_push_local, ==, "172.16.0.5");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/server/macro", test_server_macro);
    g_test_add_func("/server/pool-sizes", test_pool_sizes);
    g_test_add_func("/server/refusals", test_refusals);
    g_test_add_func("/server/pam", test_pam);
    g_test_add_func("/server/details", test_server_details);
    g_test_add_func("/server/ccd", test_ccd);
    return g_test_run();
}
