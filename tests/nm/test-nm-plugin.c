/* SPDX-License-Identifier: MIT */
/*
 * The NetworkManager editor plugin, loaded through libnm the way nmcli loads
 * it (nm_vpn_editor_plugin_load_from_file):
 *   - every client file of the parser's corpus imports, exports and imports
 *     again to an equal connection (vpn.data, vpn.secrets, ipv4, ipv6), and
 *     a second export gives the same text;
 *   - the settings are checked through libnm: service type, data keys,
 *     secret flags, routes, never-default, no secret in vpn.data;
 *   - refused files fail with the parser's FILE:LINE errors;
 *   - import writes no file (HOME stays empty); export writes mode 0600.
 *
 * SHIMMER_NM_PLUGIN names the built plugin; SHIMMER_TEST_SRCDIR is tests/.
 */
#include <NetworkManager.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "mapping.h"

static NMVpnEditorPlugin *plugin;
static char *srcdir;
static char *tmpdir;

/* ---------- helpers ---------- */

static char *corpus_path(const char *name)
{
    return g_build_filename(srcdir, "corpus", name, NULL);
}

static char *nm_path(const char *name)
{
    return g_build_filename(srcdir, "nm", name, NULL);
}

static NMConnection *import_ok(const char *path)
{
    g_autoptr(GError) error = NULL;
    NMConnection *conn = nm_vpn_editor_plugin_import(plugin, path, &error);
    g_assert_no_error(error);
    g_assert_nonnull(conn);
    return conn;
}

static char *export_ok(NMConnection *conn, const char *name)
{
    g_autoptr(GError) error = NULL;
    char *path = g_build_filename(tmpdir, name, NULL);
    gboolean ok = nm_vpn_editor_plugin_export(plugin, path, conn, &error);
    g_assert_no_error(error);
    g_assert_true(ok);
    struct stat st;
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    return path;
}

static char *read_text(const char *path)
{
    g_autoptr(GError) error = NULL;
    char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, &error));
    g_assert_no_error(error);
    return text;
}

static const char *data(NMConnection *conn, const char *key)
{
    return nm_setting_vpn_get_data_item(nm_connection_get_setting_vpn(conn), key);
}

static const char *secret(NMConnection *conn, const char *key)
{
    return nm_setting_vpn_get_secret(nm_connection_get_setting_vpn(conn), key);
}

static NMSettingSecretFlags flags_of(NMConnection *conn, const char *key)
{
    NMSettingSecretFlags flags = 0xff;
    g_autoptr(GError) error = NULL;
    nm_setting_get_secret_flags(NM_SETTING(nm_connection_get_setting_vpn(conn)), key, &flags,
                                &error);
    g_assert_no_error(error);
    return flags;
}

static void each_pair(const char *key, const char *value, gpointer user_data)
{
    g_ptr_array_add(user_data, g_strdup(key));
}

static GPtrArray *data_keys(NMConnection *conn)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    nm_setting_vpn_foreach_data_item(nm_connection_get_setting_vpn(conn), each_pair, keys);
    return keys;
}

static GPtrArray *secret_keys(NMConnection *conn)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    nm_setting_vpn_foreach_secret(nm_connection_get_setting_vpn(conn), each_pair, keys);
    return keys;
}

static bool has_line(const char *text, const char *line)
{
    if (text == NULL)
        return false;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    return g_strv_contains((const char *const *)lines, line);
}

/* The route at IDX is DEST/PREFIX via NEXT_HOP (NULL: none) with METRIC. */
static void assert_route(NMSettingIPConfig *s_ip, guint idx, const char *dest, guint prefix,
                         const char *next_hop, gint64 metric)
{
    g_assert_cmpuint(idx, <, nm_setting_ip_config_get_num_routes(s_ip));
    NMIPRoute *r = nm_setting_ip_config_get_route(s_ip, (int)idx);
    g_assert_cmpstr(nm_ip_route_get_dest(r), ==, dest);
    g_assert_cmpuint(nm_ip_route_get_prefix(r), ==, prefix);
    g_assert_cmpstr(nm_ip_route_get_next_hop(r), ==, next_hop);
    g_assert_cmpint(nm_ip_route_get_metric(r), ==, metric);
}

/* Every secret has flags, no secret value shows up in vpn.data, and the key
 * material the parser knows as secret is in vpn.secrets. */
static void assert_secrets_kept_apart(NMConnection *conn)
{
    NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(conn);
    g_autoptr(GPtrArray) dkeys = data_keys(conn);
    g_autoptr(GPtrArray) skeys = secret_keys(conn);
    for (guint i = 0; i < skeys->len; i++) {
        const char *name = g_ptr_array_index(skeys, i);
        const char *value = nm_setting_vpn_get_secret(s_vpn, name);
        g_autofree char *flags_key = g_strdup_printf("%s-flags", name);
        g_assert_nonnull(nm_setting_vpn_get_data_item(s_vpn, flags_key));
        /* Compare the longest line: short values could match by chance. */
        g_auto(GStrv) lines = g_strsplit(value, "\n", -1);
        for (guint l = 0; lines[l] != NULL; l++) {
            if (strlen(lines[l]) < 12 || g_str_has_prefix(lines[l], "-----") ||
                lines[l][0] == '#' || lines[l][0] == '<')
                continue;
            for (guint d = 0; d < dkeys->len; d++) {
                const char *dv = nm_setting_vpn_get_data_item(s_vpn, g_ptr_array_index(dkeys, d));
                if (strstr(dv, lines[l]) != NULL)
                    g_error("secret '%s' shows up in vpn.data '%s'", name,
                            (const char *)g_ptr_array_index(dkeys, d));
            }
        }
    }
    for (guint d = 0; d < dkeys->len; d++) {
        const char *dv = nm_setting_vpn_get_data_item(s_vpn, g_ptr_array_index(dkeys, d));
        g_assert_null(strstr(dv, "PRIVATE KEY"));
        g_assert_null(strstr(dv, "OpenVPN Static key"));
        g_assert_null(strstr(dv, "tls-crypt-v2 client key"));
        g_assert_null(strstr(dv, "<auth-user-pass>"));
        g_assert_null(strstr(dv, "<askpass>"));
    }
}

static void assert_settings_equal(NMConnection *a, NMConnection *b)
{
    NMSettingVpn *va = nm_connection_get_setting_vpn(a);
    NMSettingVpn *vb = nm_connection_get_setting_vpn(b);
    g_autoptr(GPtrArray) ka = data_keys(a);
    g_autoptr(GPtrArray) kb = data_keys(b);
    for (guint i = 0; i < ka->len; i++) {
        const char *k = g_ptr_array_index(ka, i);
        g_assert_cmpstr(nm_setting_vpn_get_data_item(va, k), ==,
                        nm_setting_vpn_get_data_item(vb, k));
    }
    g_assert_cmpuint(ka->len, ==, kb->len);
    g_autoptr(GPtrArray) sa = secret_keys(a);
    g_autoptr(GPtrArray) sb = secret_keys(b);
    for (guint i = 0; i < sa->len; i++) {
        const char *k = g_ptr_array_index(sa, i);
        if (g_strcmp0(nm_setting_vpn_get_secret(va, k), nm_setting_vpn_get_secret(vb, k)) != 0)
            g_error("the secret '%s' differs after the round trip", k);
    }
    g_assert_cmpuint(sa->len, ==, sb->len);
    g_assert_true(
        nm_setting_compare(NM_SETTING(va), NM_SETTING(vb), NM_SETTING_COMPARE_FLAG_EXACT));
    g_assert_true(nm_setting_compare(NM_SETTING(nm_connection_get_setting_ip4_config(a)),
                                     NM_SETTING(nm_connection_get_setting_ip4_config(b)),
                                     NM_SETTING_COMPARE_FLAG_EXACT));
    g_assert_true(nm_setting_compare(NM_SETTING(nm_connection_get_setting_ip6_config(a)),
                                     NM_SETTING(nm_connection_get_setting_ip6_config(b)),
                                     NM_SETTING_COMPARE_FLAG_EXACT));
}

static ShimmerConfig *parse_file(const char *path)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &text, &len, NULL));
    return shimmer_config_parse(path, NULL, text, len, shimmer_config_file_loader, NULL);
}

static guint count_entries(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    guint n = 0;
    while (d != NULL && g_dir_read_name(d) != NULL)
        n++;
    return n;
}

/* ---------- the plugin as libnm sees it ---------- */

static void test_plugin(void)
{
    g_autofree char *name = NULL, *service = NULL;
    g_object_get(plugin, NM_VPN_EDITOR_PLUGIN_NAME, &name, NM_VPN_EDITOR_PLUGIN_SERVICE, &service,
                 NULL);
    g_assert_cmpstr(name, ==, "Shimmer");
    g_assert_cmpstr(service, ==, SHIMMER_NM_SERVICE_TYPE);
    g_assert_cmpuint(nm_vpn_editor_plugin_get_capabilities(plugin), ==,
                     NM_VPN_EDITOR_PLUGIN_CAPABILITY_IMPORT |
                         NM_VPN_EDITOR_PLUGIN_CAPABILITY_EXPORT |
                         NM_VPN_EDITOR_PLUGIN_CAPABILITY_IPV6);

    g_autoptr(GError) error = NULL;
    g_assert_null(nm_vpn_editor_plugin_get_editor(plugin, NULL, &error));
    g_assert_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_FAILED);

    g_autofree char *path = corpus_path("ok-minimal.ovpn");
    g_autoptr(NMConnection) conn = import_ok(path);
    g_assert_cmpstr(nm_connection_get_id(conn), ==, "ok-minimal");
    g_assert_cmpstr(nm_connection_get_connection_type(conn), ==, NM_SETTING_VPN_SETTING_NAME);
    g_assert_true(nm_connection_verify(conn, NULL));
    g_autofree char *suggested = nm_vpn_editor_plugin_get_suggested_filename(plugin, conn);
    g_assert_cmpstr(suggested, ==, "ok-minimal.ovpn");
    g_object_set(nm_connection_get_setting_connection(conn), NM_SETTING_CONNECTION_ID,
                 ".office/vpn", NULL);
    g_autofree char *odd = nm_vpn_editor_plugin_get_suggested_filename(plugin, conn);
    g_assert_cmpstr(odd, ==, "_office_vpn.ovpn");
}

/* ---------- the corpus: round trips and refusals ---------- */

static void test_roundtrip(gconstpointer data_)
{
    const char *path = data_;
    g_autoptr(ShimmerConfig) cfg = parse_file(path);
    g_assert_false(shimmer_config_has_errors(cfg));
    if (cfg->role != SHIMMER_ROLE_CLIENT) {
        /* The plugin must say so too. */
        g_autoptr(GError) error = NULL;
        g_assert_null(nm_vpn_editor_plugin_import(plugin, path, &error));
        g_assert_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION);
        g_assert_nonnull(strstr(error->message, "server configuration"));
        g_autofree char *base = g_path_get_basename(path);
        g_autofree char *why = g_strdup_printf(
            "%s is a server configuration (%s): NetworkManager profiles are clients", base,
            cfg->server_network != NULL ? "'server'"
            : cfg->mode_server          ? "'mode server'"
                                        : "'tls-server'");
        g_test_skip(why);
        return;
    }

    g_autoptr(NMConnection) first = import_ok(path);
    g_assert_true(nm_connection_verify(first, NULL));
    NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(first);
    g_assert_nonnull(s_vpn);
    g_assert_cmpstr(nm_setting_vpn_get_service_type(s_vpn), ==, SHIMMER_NM_SERVICE_TYPE);
    assert_secrets_kept_apart(first);

    /* What the typed configuration says is where NetworkManager looks. */
    NMSettingIPConfig *s_ip4 = nm_connection_get_setting_ip4_config(first);
    NMSettingIPConfig *s_ip6 = nm_connection_get_setting_ip6_config(first);
    g_assert_cmpint(nm_setting_ip_config_get_ignore_auto_routes(s_ip4), ==, cfg->route_nopull);
    g_assert_cmpint(nm_setting_ip_config_get_ignore_auto_routes(s_ip6), ==, cfg->route_nopull);
    bool redirect = data(first, SHIMMER_NM_KEY_REDIRECT_GATEWAY) != NULL;
    if (!redirect) {
        g_assert_true(nm_setting_ip_config_get_never_default(s_ip4));
        g_assert_true(nm_setting_ip_config_get_never_default(s_ip6));
    }
    g_assert_cmpint(!nm_setting_ip_config_get_never_default(s_ip6), ==,
                    redirect && (cfg->redirect_gateway & SHIMMER_REDIRECT_IPV6) != 0);
    if (cfg->key.present)
        g_assert_cmpint(flags_of(first, SHIMMER_NM_SECRET_KEY), ==, NM_SETTING_SECRET_FLAG_NONE);
    g_assert_cmpint(secret(first, SHIMMER_NM_SECRET_KEY) != NULL, ==, cfg->key.present);
    g_assert_cmpint(secret(first, SHIMMER_NM_SECRET_PKCS12) != NULL, ==, cfg->pkcs12.present);
    g_assert_cmpint(secret(first, SHIMMER_NM_SECRET_TLS_AUTH) != NULL, ==, cfg->tls_auth.present);
    g_assert_cmpint(secret(first, SHIMMER_NM_SECRET_TLS_CRYPT) != NULL, ==, cfg->tls_crypt.present);
    g_assert_cmpint(secret(first, SHIMMER_NM_SECRET_TLS_CRYPT_V2) != NULL, ==,
                    cfg->tls_crypt_v2.present);
    g_assert_cmpint(data(first, SHIMMER_NM_KEY_CA) != NULL, ==, cfg->ca.present);
    g_assert_cmpint(secret(first, SHIMMER_NM_SECRET_PASSWORD) != NULL, ==, cfg->password != NULL);
    if (cfg->auth_user_pass != SHIMMER_AUTH_USER_PASS_NONE)
        g_assert_cmpint(flags_of(first, SHIMMER_NM_SECRET_PASSWORD), ==,
                        cfg->password != NULL ? NM_SETTING_SECRET_FLAG_NONE
                        : cfg->auth_nocache   ? NM_SETTING_SECRET_FLAG_NOT_SAVED
                                              : NM_SETTING_SECRET_FLAG_AGENT_OWNED);
    if (cfg->has_connection_blocks)
        g_assert_nonnull(strstr(data(first, SHIMMER_NM_KEY_CONFIG_EXTRA), "<connection>\n"));
    else
        g_assert_nonnull(data(first, "remote"));

    /* Export, import again: the same connection; export again: the same
     * text. */
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *name1 = g_strdup_printf("1-%s", base);
    g_autofree char *out1 = export_ok(first, name1);
    g_autoptr(NMConnection) second = import_ok(out1);
    assert_settings_equal(first, second);
    g_autofree char *name2 = g_strdup_printf("2-%s", base);
    g_autofree char *out2 = export_ok(second, name2);
    g_autofree char *text1 = read_text(out1);
    g_autofree char *text2 = read_text(out2);
    /* The first line names the connection, which is named after the file. */
    g_assert_cmpstr(strchr(text1, '\n'), ==, strchr(text2, '\n'));

    /* The export is self-contained: it parses with no file loader. */
    g_autoptr(ShimmerConfig) again =
        shimmer_config_parse(out1, NULL, text1, strlen(text1), NULL, NULL);
    g_assert_false(shimmer_config_has_errors(again));
    g_unlink(out1);
    g_unlink(out2);
}

typedef struct {
    char *path;
    GArray *lines;         /* guint: lines that must have an error */
    GPtrArray *substrings; /* the matching substrings */
} Refusal;

static void test_refused(gconstpointer data_)
{
    const Refusal *r = data_;
    g_autoptr(GError) error = NULL;
    g_assert_null(nm_vpn_editor_plugin_import(plugin, r->path, &error));
    g_assert_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION);
    g_assert_cmpuint(r->lines->len, >, 0);
    g_auto(GStrv) lines = g_strsplit(error->message, "\n", -1);
    for (guint i = 0; i < r->lines->len; i++) {
        g_autofree char *prefix =
            g_strdup_printf("%s:%u: error: ", r->path, g_array_index(r->lines, guint, i));
        g_autofree char *want = g_ascii_strdown(g_ptr_array_index(r->substrings, i), -1);
        bool found = false;
        for (guint l = 0; lines[l] != NULL && !found; l++) {
            g_autofree char *low = g_ascii_strdown(lines[l], -1);
            found = g_str_has_prefix(lines[l], prefix) && strstr(low, want) != NULL;
        }
        if (!found)
            g_error("no '%s...%s' in:\n%s", prefix, want, error->message);
    }
}

static void refusal_free(gpointer p)
{
    Refusal *r = p;
    g_free(r->path);
    g_array_unref(r->lines);
    g_ptr_array_unref(r->substrings);
    g_free(r);
}

/* The refused files and their errors, from the corpus MANIFEST. */
static GPtrArray *load_refusals(void)
{
    g_autofree char *manifest = corpus_path("MANIFEST");
    g_autofree char *text = read_text(manifest);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    GPtrArray *out = g_ptr_array_new_with_free_func(refusal_free);
    Refusal *cur = NULL;
    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) tok = g_strsplit_set(g_strstrip(lines[i]), " \t", 3);
        if (tok[0] == NULL || tok[0][0] == '#' || tok[0][0] == '\0')
            continue;
        if (g_str_has_suffix(tok[0], ".ovpn")) {
            cur = NULL;
            if (tok[1] != NULL && strcmp(tok[1], "refuse") == 0) {
                cur = g_new0(Refusal, 1);
                cur->path = corpus_path(tok[0]);
                cur->lines = g_array_new(FALSE, FALSE, sizeof(guint));
                cur->substrings = g_ptr_array_new_with_free_func(g_free);
                g_ptr_array_add(out, cur);
            }
        } else if (cur != NULL && strcmp(tok[0], "error") == 0 && tok[1] != NULL &&
                   tok[2] != NULL) {
            guint line = (guint)strtoul(tok[1], NULL, 10);
            g_array_append_val(cur->lines, line);
            g_ptr_array_add(cur->substrings, g_strdup(tok[2]));
        }
    }
    return out;
}

/* ---------- the mapping, file by file ---------- */

static void test_routes_and_askpass(void)
{
    g_autofree char *path = corpus_path("ok-encrypted-key-askpass.ovpn");
    g_autoptr(NMConnection) conn = import_ok(path);
    g_assert_cmpstr(data(conn, "remote"), ==, "192.0.2.44");
    g_assert_cmpstr(data(conn, "rport"), ==, "1194");
    g_assert_cmpstr(data(conn, "lport"), ==, "0");
    g_assert_cmpstr(data(conn, "proto"), ==, "udp");
    g_assert_cmpstr(data(conn, "topology"), ==, "subnet");
    g_assert_cmpstr(data(conn, "remote-cert-tls"), ==, "server");
    g_assert_true(g_str_has_prefix(data(conn, "extra-certs"), "-----BEGIN CERTIFICATE-----\n"));
    /* route-nopull: NetworkManager ignores the routes the server pushes. */
    NMSettingIPConfig *s_ip4 = nm_connection_get_setting_ip4_config(conn);
    NMSettingIPConfig *s_ip6 = nm_connection_get_setting_ip6_config(conn);
    g_assert_true(nm_setting_ip_config_get_ignore_auto_routes(s_ip4));
    g_assert_true(nm_setting_ip_config_get_ignore_auto_routes(s_ip6));
    g_assert_true(nm_setting_ip_config_get_never_default(s_ip4));
    g_assert_true(nm_setting_ip_config_get_never_default(s_ip6));
    g_assert_cmpuint(nm_setting_ip_config_get_num_routes(s_ip4), ==, 1);
    assert_route(s_ip4, 0, "10.50.0.0", 16, NULL, -1);
    g_assert_cmpuint(nm_setting_ip_config_get_num_routes(s_ip6), ==, 1);
    assert_route(s_ip6, 0, "fd50::", 48, NULL, -1);
    /* Through vpn_gateway: NetworkManager has no such route; kept. */
    g_assert_true(has_line(data(conn, SHIMMER_NM_KEY_CONFIG_EXTRA),
                           "route 10.51.0.0 255.255.0.0 vpn_gateway 10"));
    /* The passphrase came from a file: stored, and never in vpn.data. */
    g_assert_cmpint(flags_of(conn, SHIMMER_NM_SECRET_CERT_PASS), ==, NM_SETTING_SECRET_FLAG_NONE);
    g_autofree char *pass_path = g_build_filename(srcdir, "data", "client-enc.pass", NULL);
    g_autofree char *pass = read_text(pass_path);
    g_strchomp(pass);
    g_assert_cmpstr(secret(conn, SHIMMER_NM_SECRET_CERT_PASS), ==, pass);
    g_assert_true(g_str_has_prefix(secret(conn, SHIMMER_NM_SECRET_KEY), "-----BEGIN"));
    g_assert_true(
        g_str_has_prefix(secret(conn, SHIMMER_NM_SECRET_TLS_CRYPT), "#\n# 2048 bit OpenVPN"));
}

static void test_redirect_gateway(void)
{
    g_autofree char *v6 = corpus_path("ok-ipv6-transport.ovpn");
    g_autoptr(NMConnection) a = import_ok(v6);
    g_assert_cmpstr(data(a, SHIMMER_NM_KEY_REDIRECT_GATEWAY), ==, "def1");
    g_assert_false(nm_setting_ip_config_get_never_default(nm_connection_get_setting_ip4_config(a)));
    g_assert_false(nm_setting_ip_config_get_never_default(nm_connection_get_setting_ip6_config(a)));
    g_assert_cmpstr(data(a, "remote"), ==,
                    "2001:db8:5::10 1194\nvpn.v6only.example 1194 udp6\n2001:db8:5::11 443 "
                    "tcp6-client");

    g_autofree char *win = corpus_path("ok-windows-crlf-bom.ovpn");
    g_autoptr(NMConnection) b = import_ok(win);
    g_assert_cmpstr(data(b, SHIMMER_NM_KEY_REDIRECT_GATEWAY), ==, "def1 bypass-dhcp");
    g_assert_false(nm_setting_ip_config_get_never_default(nm_connection_get_setting_ip4_config(b)));
    g_assert_true(nm_setting_ip_config_get_never_default(nm_connection_get_setting_ip6_config(b)));
    g_assert_cmpstr(data(b, "dhcp-option"), ==, "DNS 10.0.0.1");
    /* CRLF and the byte order mark are gone from what is stored. */
    g_assert_null(strchr(data(b, SHIMMER_NM_KEY_CA), '\r'));
    g_assert_cmpstr(data(b, SHIMMER_NM_KEY_CONFIG_EXTRA), ==,
                    "dev-node \"Shimmer Tunnel\"\nnobind\npersist-key\npersist-tun\n"
                    "route-method exe\nroute-delay 2\nregister-dns\nblock-outside-dns\nverb 3\n");

    /* never-default is what export follows: forcing it (as the tests on a
     * real NetworkManager do) drops redirect-gateway from the file. */
    g_object_set(nm_connection_get_setting_ip4_config(b), NM_SETTING_IP_CONFIG_NEVER_DEFAULT, TRUE,
                 NULL);
    g_autofree char *out = export_ok(b, "forced-never-default.ovpn");
    g_autofree char *text = read_text(out);
    g_assert_null(strstr(text, "redirect-gateway"));
    /* ... and a connection that takes the default route gets it back. */
    g_object_set(nm_connection_get_setting_ip6_config(b), NM_SETTING_IP_CONFIG_NEVER_DEFAULT, FALSE,
                 NULL);
    g_autofree char *out6 = export_ok(b, "v6-default.ovpn");
    g_autofree char *text6 = read_text(out6);
    g_assert_true(has_line(text6, "redirect-gateway def1 bypass-dhcp ipv6 !ipv4"));
}

static void test_kept_as_is(void)
{
    g_autofree char *path = nm_path("kept-as-is.ovpn");
    g_autoptr(NMConnection) conn = import_ok(path);
    const char *extra = data(conn, SHIMMER_NM_KEY_CONFIG_EXTRA);
    g_assert_cmpstr(extra, ==,
                    "ignore-unknown-option provider-blob provider-knob\n"
                    "provider-knob 1 \"two words\"\n"
                    "route intranet.example.com\n"
                    "route 10.60.0.0 255.255.0.0 net_gateway\n"
                    "route 0.0.0.0 0.0.0.0\n");
    /* An unknown block may hold a credential: a secret, not vpn.data. */
    g_assert_cmpstr(secret(conn, SHIMMER_NM_SECRET_EXTRA_BLOCKS), ==,
                    "<provider-blob>\nopaque text that may hold a credential\n</provider-blob>\n");
    g_assert_cmpint(flags_of(conn, SHIMMER_NM_SECRET_EXTRA_BLOCKS), ==,
                    NM_SETTING_SECRET_FLAG_NONE);

    NMSettingIPConfig *s_ip4 = nm_connection_get_setting_ip4_config(conn);
    NMSettingIPConfig *s_ip6 = nm_connection_get_setting_ip6_config(conn);
    g_assert_cmpuint(nm_setting_ip_config_get_num_routes(s_ip4), ==, 2);
    assert_route(s_ip4, 0, "10.61.0.0", 16, "10.8.0.1", 25);
    assert_route(s_ip4, 1, "10.62.0.0", 24, NULL, 7);
    g_assert_cmpuint(nm_setting_ip_config_get_num_routes(s_ip6), ==, 2);
    assert_route(s_ip6, 0, "fd61::", 48, "fd00::1", 30);
    assert_route(s_ip6, 1, "fd62::1", 128, NULL, -1);
    /* redirect-gateway def1 !ipv4 ipv6 */
    g_assert_true(nm_setting_ip_config_get_never_default(s_ip4));
    g_assert_false(nm_setting_ip_config_get_never_default(s_ip6));
    g_assert_cmpstr(data(conn, SHIMMER_NM_KEY_REDIRECT_GATEWAY), ==, "def1");

    g_assert_cmpstr(data(conn, SHIMMER_NM_KEY_KEY_DIRECTION), ==, "1");
    g_assert_cmpint(flags_of(conn, SHIMMER_NM_SECRET_TLS_AUTH), ==, NM_SETTING_SECRET_FLAG_NONE);
    /* auth-user-pass with auth-nocache: asked for every time. */
    g_assert_null(secret(conn, SHIMMER_NM_SECRET_PASSWORD));
    g_assert_cmpint(flags_of(conn, SHIMMER_NM_SECRET_PASSWORD), ==,
                    NM_SETTING_SECRET_FLAG_NOT_SAVED);
    g_assert_cmpstr(data(conn, "auth-nocache"), ==, "yes");
    assert_secrets_kept_apart(conn);

    g_autofree char *out = export_ok(conn, "kept-as-is.ovpn");
    g_autofree char *text = read_text(out);
    g_assert_true(has_line(text, "route 10.61.0.0 255.255.0.0 10.8.0.1 25"));
    g_assert_true(has_line(text, "route 10.62.0.0 255.255.255.0 default 7"));
    g_assert_true(has_line(text, "route-ipv6 fd61::/48 fd00::1 30"));
    g_assert_true(has_line(text, "route-ipv6 fd62::1/128"));
    g_assert_true(has_line(text, "redirect-gateway def1 ipv6 !ipv4"));
    g_assert_true(has_line(text, "auth-user-pass"));
    g_assert_true(has_line(text, "route intranet.example.com"));
    g_assert_true(has_line(text, "<provider-blob>"));
    g_autoptr(NMConnection) again = import_ok(out);
    assert_settings_equal(conn, again);
}

static void test_prompts(void)
{
    g_autofree char *path = nm_path("prompts.ovpn");
    g_autoptr(NMConnection) conn = import_ok(path);
    /* askpass without a file: the agent asks for the passphrase. */
    g_assert_null(secret(conn, SHIMMER_NM_SECRET_CERT_PASS));
    g_assert_cmpint(flags_of(conn, SHIMMER_NM_SECRET_CERT_PASS), ==,
                    NM_SETTING_SECRET_FLAG_AGENT_OWNED);
    /* A user name without a password: the password is asked for. */
    g_assert_cmpstr(data(conn, SHIMMER_NM_KEY_USERNAME), ==, "alice");
    g_assert_null(secret(conn, SHIMMER_NM_SECRET_PASSWORD));
    g_assert_cmpint(flags_of(conn, SHIMMER_NM_SECRET_PASSWORD), ==,
                    NM_SETTING_SECRET_FLAG_AGENT_OWNED);
    g_assert_true(g_str_has_prefix(secret(conn, SHIMMER_NM_SECRET_TLS_CRYPT_V2),
                                   "-----BEGIN OpenVPN tls-crypt-v2 client key-----"));
    g_assert_null(data(conn, SHIMMER_NM_KEY_CONFIG_EXTRA));

    /* A password the agent handed over is not written out... */
    nm_setting_vpn_add_secret(nm_connection_get_setting_vpn(conn), SHIMMER_NM_SECRET_PASSWORD,
                              "typed-by-the-user");
    g_autofree char *out = export_ok(conn, "prompts.ovpn");
    g_autofree char *text = read_text(out);
    g_assert_null(strstr(text, "typed-by-the-user"));
    g_assert_nonnull(strstr(text, "<auth-user-pass>\nalice\n</auth-user-pass>\n"));
    g_assert_true(has_line(text, "askpass"));
    /* ... one the profile stores is. */
    nm_setting_set_secret_flags(NM_SETTING(nm_connection_get_setting_vpn(conn)),
                                SHIMMER_NM_SECRET_PASSWORD, NM_SETTING_SECRET_FLAG_NONE, NULL);
    g_autofree char *out2 = export_ok(conn, "prompts-stored.ovpn");
    g_autofree char *text2 = read_text(out2);
    g_assert_nonnull(
        strstr(text2, "<auth-user-pass>\nalice\ntyped-by-the-user\n</auth-user-pass>\n"));
    g_autoptr(NMConnection) again = import_ok(out2);
    g_assert_cmpstr(secret(again, SHIMMER_NM_SECRET_PASSWORD), ==, "typed-by-the-user");
    g_assert_cmpint(flags_of(again, SHIMMER_NM_SECRET_PASSWORD), ==, NM_SETTING_SECRET_FLAG_NONE);
}

static void test_other_files(void)
{
    /* A static challenge: the one-time code is never saved. */
    g_autofree char *as = corpus_path("ok-access-server-userlocked.ovpn");
    g_autoptr(NMConnection) a = import_ok(as);
    g_assert_cmpint(flags_of(a, SHIMMER_NM_SECRET_OTP), ==, NM_SETTING_SECRET_FLAG_NOT_SAVED);
    g_assert_cmpint(flags_of(a, SHIMMER_NM_SECRET_PASSWORD), ==,
                    NM_SETTING_SECRET_FLAG_AGENT_OWNED);
    g_assert_cmpstr(data(a, "static-challenge"), ==, "\"Enter Authenticator Code\" 1");
    g_assert_cmpstr(data(a, "server-poll-timeout"), ==, "4");
    /* Repeated remotes stay repeated, in order. */
    g_assert_cmpstr(data(a, "remote"), ==,
                    "vpn.example.com 1194 udp\nvpn.example.com 1194 udp\nvpn.example.com 443 tcp\n"
                    "vpn.example.com 1194 udp\nvpn.example.com 1194 udp\nvpn.example.com 1194 udp");

    /* Quoting survives: the value is the directive's arguments re-quoted. */
    g_autofree char *ev = corpus_path("ok-every-syntax.ovpn");
    g_autoptr(NMConnection) e = import_ok(ev);
    g_assert_cmpstr(data(e, "verify-x509-name"), ==,
                    "\"O=Shimmer Test, CN=server.shimmer.test\" subject");
    g_assert_cmpstr(data(e, "static-challenge"), ==,
                    "\"Enter the \\\"PIN+OTP\\\" code; see #help\" 1");
    g_assert_cmpstr(data(e, "dhcp-option"), ==, "DOMAIN corp.example");
    g_assert_cmpstr(data(e, SHIMMER_NM_KEY_USERNAME), ==, "u77");
    g_assert_cmpint(flags_of(e, SHIMMER_NM_SECRET_PASSWORD), ==, NM_SETTING_SECRET_FLAG_NONE);
    g_assert_cmpstr(data(e, SHIMMER_NM_KEY_CONFIG_EXTRA), ==,
                    "nobind\nsetenv UV_HOME \"C:\\\\Users\\\\alice\"\n");

    /* pkcs12 from a DER file: base64 in vpn.secrets. */
    g_autofree char *pf = corpus_path("ok-pfsense-bundle.ovpn");
    g_autoptr(NMConnection) p = import_ok(pf);
    const char *p12 = secret(p, SHIMMER_NM_SECRET_PKCS12);
    g_assert_nonnull(p12);
    g_autofree char *p12_path = g_build_filename(srcdir, "data", "client.p12", NULL);
    g_autofree char *der = NULL;
    gsize der_len = 0;
    g_assert_true(g_file_get_contents(p12_path, &der, &der_len, NULL));
    g_autofree char *b64 = g_base64_encode((const guchar *)der, der_len);
    g_autofree char *flat = g_strdup(p12);
    g_strdelimit(flat, "\n", ' ');
    g_auto(GStrv) parts = g_strsplit(flat, " ", -1);
    g_autofree char *nospace = g_strjoinv("", parts);
    g_assert_cmpstr(nospace, ==, b64);
    g_assert_cmpstr(data(p, SHIMMER_NM_KEY_KEY_DIRECTION), ==, "1");
    g_assert_cmpstr(data(p, "explicit-exit-notify"), ==, "yes");
    g_assert_cmpstr(data(p, "tls-client"), ==, "yes");

    g_autofree char *fp = corpus_path("ok-peer-fingerprint.ovpn");
    g_autoptr(NMConnection) f = import_ok(fp);
    g_assert_cmpstr(data(f, SHIMMER_NM_KEY_PEER_FINGERPRINT), ==,
                    "65:01:4C:1B:AE:44:A2:1C:C1:BC:BF:05:F9:DF:77:71:9C:C5:0C:3E:2D:28:66:27:10:03:"
                    "55:E4:55:92:4E:73");
    g_assert_null(data(f, SHIMMER_NM_KEY_CA));

    g_autofree char *dn = corpus_path("ok-dns-options.ovpn");
    g_autoptr(NMConnection) d = import_ok(dn);
    g_assert_cmpstr(data(d, "dhcp-option"), ==,
                    "DNS 10.20.0.53\nDOMAIN corp.example\nDOMAIN-SEARCH lab.corp.example");
    g_assert_true(has_line(data(d, "dns"), "server 1 sni dns.corp.example"));
    g_assert_true(has_line(data(d, "dns"), "server -1 address 192.0.2.53"));
    g_assert_cmpstr(data(d, SHIMMER_NM_KEY_CONFIG_EXTRA), ==,
                    "route 192.168.77.0 255.255.255.0 net_gateway\n");

    g_autofree char *cf = corpus_path("ok-connection-failover.ovpn");
    g_autoptr(NMConnection) c = import_ok(cf);
    g_assert_null(data(c, "remote"));
    const char *extra = data(c, SHIMMER_NM_KEY_CONFIG_EXTRA);
    guint blocks = 0;
    for (const char *s = extra; (s = strstr(s, "<connection>\n")) != NULL; s++)
        blocks++;
    g_assert_cmpuint(blocks, ==, 4);
    g_assert_nonnull(strstr(extra, "<connection>\nremote vpn6.example.org 1194\nproto udp6\n"));
    g_assert_cmpstr(data(c, "connect-retry"), ==, "3 60");
    g_assert_cmpstr(data(c, "resolv-retry"), ==, "infinite");
}

/* ---------- export refuses what would not import ---------- */

static void test_export_refusals(void)
{
    g_autofree char *path = corpus_path("ok-minimal.ovpn");
    g_autofree char *out = g_build_filename(tmpdir, "refused.ovpn", NULL);

    /* The key is a stored secret: without it there is no profile. */
    g_autoptr(NMConnection) a = import_ok(path);
    nm_setting_vpn_remove_secret(nm_connection_get_setting_vpn(a), SHIMMER_NM_SECRET_KEY);
    g_assert_true(shimmer_nm_connection_lacks_secrets(a));
    g_autoptr(GError) e1 = NULL;
    g_assert_false(nm_vpn_editor_plugin_export(plugin, out, a, &e1));
    g_assert_nonnull(strstr(e1->message, "'key-pem'"));
    g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));

    /* A value cannot smuggle in a directive of its own. */
    g_autoptr(NMConnection) b = import_ok(path);
    nm_setting_vpn_add_data_item(nm_connection_get_setting_vpn(b), "dev", "tun\nsecret x");
    g_autoptr(GError) e2 = NULL;
    g_assert_false(nm_vpn_editor_plugin_export(plugin, out, b, &e2));
    g_assert_nonnull(strstr(e2->message, "'dev'"));

    g_autoptr(NMConnection) c = import_ok(path);
    nm_setting_vpn_add_data_item(nm_connection_get_setting_vpn(c), SHIMMER_NM_KEY_CA,
                                 "-----BEGIN CERTIFICATE-----\n</ca>\ncert evil\n");
    g_autoptr(GError) e3 = NULL;
    g_assert_false(nm_vpn_editor_plugin_export(plugin, out, c, &e3));
    g_assert_nonnull(strstr(e3->message, "</ca>"));

    /* What the parser refuses is refused at export, with its message. */
    g_autoptr(NMConnection) d = import_ok(path);
    nm_setting_vpn_add_data_item(nm_connection_get_setting_vpn(d), SHIMMER_NM_KEY_CONFIG_EXTRA,
                                 "fragment 1300\n");
    g_autoptr(GError) e4 = NULL;
    g_assert_false(nm_vpn_editor_plugin_export(plugin, out, d, &e4));
    g_assert_nonnull(strstr(e4->message, "error: 'fragment'"));
    g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));

    /* A route added in NetworkManager is exported. */
    g_autoptr(NMConnection) r = import_ok(path);
    NMIPRoute *route = nm_ip_route_new(AF_INET, "10.70.0.0", 16, NULL, 50, NULL);
    nm_setting_ip_config_add_route(nm_connection_get_setting_ip4_config(r), route);
    nm_ip_route_unref(route);
    g_autofree char *ok = export_ok(r, "added-route.ovpn");
    g_autofree char *text = read_text(ok);
    g_assert_true(has_line(text, "route 10.70.0.0 255.255.0.0 default 50"));
}

/* Writes TEXT to a file of the test's own directory; its path. */
static char *write_profile(const char *name, const char *text)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static void assert_roundtrip(NMConnection *conn, const char *name, const char *must_have)
{
    g_autofree char *out = export_ok(conn, name);
    g_autofree char *text = read_text(out);
    g_assert_true(has_line(text, must_have));
    g_autoptr(NMConnection) again = import_ok(out);
    assert_settings_equal(conn, again);
    g_autoptr(ShimmerConfig) cfg = shimmer_config_parse(out, NULL, text, strlen(text), NULL, NULL);
    g_assert_false(shimmer_config_has_errors(cfg));
    g_unlink(out);
}

static void test_proxy_keys(void)
{
    /* stdin: the proxy login is asked for. */
    g_autofree char *prompt = corpus_path("ok-http-proxy-prompt.ovpn");
    g_autoptr(NMConnection) a = import_ok(prompt);
    g_assert_cmpstr(data(a, SHIMMER_NM_KEY_PROXY_TYPE), ==, "http");
    g_assert_cmpstr(data(a, SHIMMER_NM_KEY_PROXY_SERVER), ==, "proxy.corp.example");
    g_assert_cmpstr(data(a, SHIMMER_NM_KEY_PROXY_PORT), ==, "3128");
    g_assert_cmpstr(data(a, SHIMMER_NM_KEY_PROXY_RETRY), ==, "yes");
    g_assert_cmpstr(data(a, SHIMMER_NM_KEY_HTTP_PROXY_AUTH), ==, "basic");
    g_assert_null(data(a, SHIMMER_NM_KEY_HTTP_PROXY_USERNAME));
    g_assert_null(secret(a, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD));
    g_assert_cmpint(flags_of(a, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD), ==,
                    NM_SETTING_SECRET_FLAG_AGENT_OWNED);
    g_assert_cmpstr(data(a, "http-proxy-option"), ==,
                    "VERSION 1.1\nAGENT \"Mozilla/5.0 (X11; Linux x86_64)\"\n"
                    "CUSTOM-HEADER Host vpn.example.com");
    g_assert_null(data(a, SHIMMER_NM_KEY_CONFIG_EXTRA));
    assert_roundtrip(a, "proxy-prompt.ovpn", "http-proxy proxy.corp.example 3128 stdin basic");

    /* auto-nct with the login inline: a secret, out of the extra blocks. */
    g_autofree char *inl = corpus_path("ok-http-proxy-inline-creds.ovpn");
    g_autoptr(NMConnection) b = import_ok(inl);
    g_assert_cmpstr(data(b, SHIMMER_NM_KEY_HTTP_PROXY_AUTH), ==, "auto-nct");
    g_assert_cmpstr(data(b, SHIMMER_NM_KEY_HTTP_PROXY_USERNAME), ==, "proxyuser");
    g_assert_cmpstr(secret(b, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD), ==, "Pr0xy-Passw0rd-Inline");
    g_assert_cmpint(flags_of(b, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD), ==,
                    NM_SETTING_SECRET_FLAG_NONE);
    g_assert_null(secret(b, SHIMMER_NM_SECRET_EXTRA_BLOCKS));
    g_assert_null(data(b, SHIMMER_NM_KEY_PROXY_RETRY));
    assert_secrets_kept_apart(b);
    assert_roundtrip(b, "proxy-inline.ovpn", "http-proxy 10.0.0.3 8080 auto-nct");

    /* An authfile: read at import, written back inline. */
    g_autofree char *authfile = write_profile("proxy-auth.txt", "corp-user\nc0rp pass\n");
    g_autofree char *text = g_strdup_printf("client\ndev tun\nproto tcp-client\n"
                                            "remote vpn.example.com 443\n"
                                            "http-proxy 2001:db8::3 3128 %s\n"
                                            "ca %s/data/ca.crt\n",
                                            authfile, srcdir);
    g_autofree char *with_file = write_profile("proxy-authfile.ovpn", text);
    g_autoptr(NMConnection) c = import_ok(with_file);
    g_assert_cmpstr(data(c, SHIMMER_NM_KEY_PROXY_SERVER), ==, "2001:db8::3");
    g_assert_cmpstr(data(c, SHIMMER_NM_KEY_HTTP_PROXY_AUTH), ==, "basic");
    g_assert_cmpstr(data(c, SHIMMER_NM_KEY_HTTP_PROXY_USERNAME), ==, "corp-user");
    g_assert_cmpstr(secret(c, SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD), ==, "c0rp pass");
    assert_roundtrip(c, "proxy-authfile-out.ovpn", "http-proxy 2001:db8::3 3128 \"\" basic");
    g_autofree char *out = export_ok(c, "proxy-authfile-out2.ovpn");
    g_autofree char *exported = read_text(out);
    g_assert_nonnull(strstr(exported, "<http-proxy-user-pass>\ncorp-user\nc0rp pass\n"
                                      "</http-proxy-user-pass>\n"));
    /* A password the agent gave is not written out. */
    nm_setting_set_secret_flags(NM_SETTING(nm_connection_get_setting_vpn(c)),
                                SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD,
                                NM_SETTING_SECRET_FLAG_AGENT_OWNED, NULL);
    g_autofree char *out3 = export_ok(c, "proxy-authfile-out3.ovpn");
    g_autofree char *asked = read_text(out3);
    g_assert_null(strstr(asked, "c0rp pass"));
    g_assert_nonnull(strstr(asked, "<http-proxy-user-pass>\ncorp-user\n</http-proxy-user-pass>"));
    /* One the profile stores but the connection lacks: fetch it first. */
    g_autoptr(NMConnection) d = import_ok(with_file);
    nm_setting_vpn_remove_secret(nm_connection_get_setting_vpn(d),
                                 SHIMMER_NM_SECRET_HTTP_PROXY_PASSWORD);
    g_assert_true(shimmer_nm_connection_lacks_secrets(d));

    /* SOCKS: without credentials in the keys (with the default port); an
     * authfile has no inline form. */
    g_autofree char *stext0 = g_strdup_printf("client\ndev tun\nremote vpn.example.com 1194\n"
                                              "socks-proxy 127.0.0.1\nsocks-proxy-retry\n"
                                              "ca %s/data/ca.crt\n",
                                              srcdir);
    g_autofree char *socks = write_profile("socks.ovpn", stext0);
    g_autoptr(NMConnection) e = import_ok(socks);
    g_assert_cmpstr(data(e, SHIMMER_NM_KEY_PROXY_TYPE), ==, "socks");
    g_assert_cmpstr(data(e, SHIMMER_NM_KEY_PROXY_PORT), ==, "1080");
    g_assert_cmpstr(data(e, SHIMMER_NM_KEY_PROXY_RETRY), ==, "yes");
    g_assert_null(data(e, SHIMMER_NM_KEY_CONFIG_EXTRA));
    assert_roundtrip(e, "socks-out.ovpn", "socks-proxy 127.0.0.1 1080");
    g_autofree char *stext = g_strdup_printf("client\ndev tun\nremote vpn.example.com 1194\n"
                                             "socks-proxy 127.0.0.1 1080 %s\nca %s/data/ca.crt\n",
                                             authfile, srcdir);
    g_autofree char *socks_auth = write_profile("socks-auth.ovpn", stext);
    /* (Import refuses it already: a profile in NetworkManager is self-contained.) */
    g_autoptr(GError) ferr = NULL;
    g_assert_null(nm_vpn_editor_plugin_import(plugin, socks_auth, &ferr));
    g_assert_nonnull(strstr(ferr->message, "no inline form"));

    /* What the keys cannot say is refused at export. */
    struct {
        const char *key, *value, *says;
    } bad[] = {
        {SHIMMER_NM_KEY_PROXY_TYPE, "ftp", "not http or socks"},
        {SHIMMER_NM_KEY_PROXY_PORT, "0", "a port from 1 to 65535"},
        {SHIMMER_NM_KEY_PROXY_SERVER, "a b", "must name the proxy"},
        {SHIMMER_NM_KEY_HTTP_PROXY_AUTH, "digest", "basic, ntlm"},
        {SHIMMER_NM_KEY_HTTP_PROXY_USERNAME, "</http-proxy-user-pass>", "</http-proxy-user-pass>"},
        {SHIMMER_NM_KEY_PROXY_RETRY, "maybe", "not yes or no"},
    };
    g_autofree char *refused = g_build_filename(tmpdir, "proxy-refused.ovpn", NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(NMConnection) g = import_ok(inl);
        nm_setting_vpn_add_data_item(nm_connection_get_setting_vpn(g), bad[i].key, bad[i].value);
        g_autoptr(GError) error = NULL;
        g_assert_false(nm_vpn_editor_plugin_export(plugin, refused, g, &error));
        g_assert_nonnull(strstr(error->message, bad[i].says));
    }
    g_autoptr(NMConnection) h = import_ok(socks);
    nm_setting_vpn_add_data_item(nm_connection_get_setting_vpn(h),
                                 SHIMMER_NM_KEY_HTTP_PROXY_USERNAME, "u");
    g_autoptr(GError) error = NULL;
    g_assert_false(nm_vpn_editor_plugin_export(plugin, refused, h, &error));
    g_assert_nonnull(strstr(error->message, "no inline form"));
    g_assert_false(g_file_test(refused, G_FILE_TEST_EXISTS));
}

static void test_no_files_written(void)
{
    /* Import only reads: nothing lands in HOME (tests run with HOME set to
     * an empty directory of their own) nor next to the profile. */
    const char *home = g_getenv("HOME");
    g_assert_cmpuint(count_entries(home), ==, 0);
    g_autofree char *nmdir = g_build_filename(srcdir, "nm", NULL);
    guint before = count_entries(nmdir);
    g_autofree char *path = nm_path("kept-as-is.ovpn");
    g_autoptr(NMConnection) conn = import_ok(path);
    g_assert_nonnull(secret(conn, SHIMMER_NM_SECRET_KEY));
    g_assert_cmpuint(count_entries(home), ==, 0);
    g_assert_cmpuint(count_entries(nmdir), ==, before);
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    const char *plugin_path = g_getenv("SHIMMER_NM_PLUGIN");
    srcdir = g_strdup(g_getenv("SHIMMER_TEST_SRCDIR"));
    if (plugin_path == NULL || srcdir == NULL) {
        g_printerr("SHIMMER_NM_PLUGIN and SHIMMER_TEST_SRCDIR must be set\n");
        return 1;
    }
    tmpdir = g_dir_make_tmp("shimmer-nm-XXXXXX", NULL);
    g_autofree char *home = g_build_filename(tmpdir, "home", NULL);
    g_assert_cmpint(g_mkdir(home, 0700), ==, 0);
    g_setenv("HOME", home, TRUE);

    g_autoptr(GError) error = NULL;
    plugin = nm_vpn_editor_plugin_load_from_file(plugin_path, SHIMMER_NM_SERVICE_TYPE, -1, NULL,
                                                 NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(plugin);

    g_test_add_func("/nm/plugin", test_plugin);

    /* Every file the corpus accepts, by name. */
    g_autofree char *corpus = g_build_filename(srcdir, "corpus", NULL);
    g_autoptr(GDir) dir = g_dir_open(corpus, 0, &error);
    g_assert_no_error(error);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(dir)) != NULL) {
        if (g_str_has_prefix(n, "ok-") && g_str_has_suffix(n, ".ovpn"))
            g_ptr_array_add(names, g_strdup(n));
    }
    g_ptr_array_sort(names, compare_names);
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        char *p = corpus_path(name);
        g_ptr_array_add(paths, p);
        g_autofree char *test = g_strdup_printf("/nm/roundtrip/%s", name);
        g_test_add_data_func(test, p, test_roundtrip);
    }
    g_autoptr(GPtrArray) refusals = load_refusals();
    for (guint i = 0; i < refusals->len; i++) {
        Refusal *r = g_ptr_array_index(refusals, i);
        g_autofree char *base = g_path_get_basename(r->path);
        g_autofree char *test = g_strdup_printf("/nm/refused/%s", base);
        g_test_add_data_func(test, r, test_refused);
    }

    g_test_add_func("/nm/mapping/routes-and-askpass", test_routes_and_askpass);
    g_test_add_func("/nm/mapping/redirect-gateway", test_redirect_gateway);
    g_test_add_func("/nm/mapping/kept-as-is", test_kept_as_is);
    g_test_add_func("/nm/mapping/prompts", test_prompts);
    g_test_add_func("/nm/mapping/other-files", test_other_files);
    g_test_add_func("/nm/export/refusals", test_export_refusals);
    g_test_add_func("/nm/mapping/proxy", test_proxy_keys);
    g_test_add_func("/nm/import/no-files-written", test_no_files_written);

    int ret = g_test_run();
    g_object_unref(plugin);
    /* Exports are removed as they are checked; what a failed test left is
     * kept for a look. */
    if (ret == 0) {
        g_autoptr(GDir) d = g_dir_open(tmpdir, 0, NULL);
        const char *f;
        while (d != NULL && (f = g_dir_read_name(d)) != NULL) {
            g_autofree char *p = g_build_filename(tmpdir, f, NULL);
            g_remove(p);
        }
        g_rmdir(tmpdir);
    }
    g_free(tmpdir);
    g_free(srcdir);
    return ret;
}
