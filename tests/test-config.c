/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the .ovpn parser's semantics that the corpus does not show
 * well: the loader contract (relative paths, no loader), conflicts, defaults
 * and what the typed result holds.
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char *data_dir(void)
{
    const char *src = g_getenv("SHIMMER_TEST_SRCDIR");
    g_assert_nonnull(src);
    return g_build_filename(src, "data", NULL);
}

typedef struct {
    GPtrArray *asked; /* paths the parser asked for */
    char *dir;        /* where the files really are */
} Recorder;

/* Serves tests/data files under any directory name, remembering each path. */
static gboolean recording_loader(const char *path, GBytes **contents, GError **error, gpointer user)
{
    Recorder *r = user;
    g_ptr_array_add(r->asked, g_strdup(path));
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *real = g_build_filename(r->dir, base, NULL);
    return shimmer_config_file_loader(real, contents, error, NULL);
}

/* Profiles that say nothing of the device get `dev tun` at the end (OpenVPN
 * refuses a file without one), so that line numbers stay as written. */
static char *with_dev(const char *text)
{
    if (g_str_has_prefix(text, "dev ") || strstr(text, "\ndev ") != NULL)
        return g_strdup(text);
    return g_strconcat(text, "dev tun\n", NULL);
}

static ShimmerConfig *parse_with(Recorder *r, const char *text)
{
    g_autofree char *full = with_dev(text);
    return shimmer_config_parse("/profiles/test.ovpn", NULL, full, strlen(full), recording_loader,
                                r);
}

static Recorder *recorder_new(void)
{
    Recorder *r = g_new0(Recorder, 1);
    r->asked = g_ptr_array_new_with_free_func(g_free);
    r->dir = data_dir();
    return r;
}

static void recorder_free(Recorder *r)
{
    g_ptr_array_unref(r->asked);
    g_free(r->dir);
    g_free(r);
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

#define BASE                                                                                       \
    "client\n"                                                                                     \
    "remote vpn.example.net 1194\n"                                                                \
    "remote-cert-tls server\n"

static void test_relative_paths(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca ca.crt\n"
                                                      "cert sub/client.crt\n"
                                                      "key /abs/client.key\n");
    assert_clean(cfg);
    g_assert_cmpuint(r->asked->len, ==, 3);
    /* Relative to the configuration file's directory, not the working directory. */
    g_assert_cmpstr(g_ptr_array_index(r->asked, 0), ==, "/profiles/ca.crt");
    g_assert_cmpstr(g_ptr_array_index(r->asked, 1), ==, "/profiles/sub/client.crt");
    g_assert_cmpstr(g_ptr_array_index(r->asked, 2), ==, "/abs/client.key");
    g_assert_cmpstr(cfg->ca.path, ==, "ca.crt");
    g_assert_cmpstr(cfg->ca.resolved, ==, "/profiles/ca.crt");
    g_assert_true(cfg->key.secret);
    g_assert_false(cfg->ca.secret);
    recorder_free(r);
}

static void test_explicit_base_dir(void)
{
    Recorder *r = recorder_new();
    const char *text = BASE "ca ca.crt\ndev tun\n";
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse("x.ovpn", "/elsewhere", text, strlen(text), recording_loader, r);
    assert_clean(cfg);
    g_assert_cmpstr(g_ptr_array_index(r->asked, 0), ==, "/elsewhere/ca.crt");
    recorder_free(r);
}

static void test_no_loader(void)
{
    const char *text = BASE "ca ca.crt\ndev tun\n";
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse("x.ovpn", NULL, text, strlen(text), NULL, NULL);
    g_assert_true(shimmer_config_has_errors(cfg));
    assert_diag(cfg, "x.ovpn:4: error: 'ca ca.crt': this profile must be self-contained");
}

static void test_missing_file(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca nope.crt\n");
    g_assert_true(shimmer_config_has_errors(cfg));
    assert_diag(cfg, ":4: error: 'ca': cannot read 'nope.crt': No such file or directory");
    recorder_free(r);
}

/* /dev/zero has no size to stat: the loader must stop reading at the limit
 * and say so, whatever the file type. */
static void test_loader_bounded(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    gint64 start = g_get_monotonic_time();
    g_assert_false(shimmer_config_file_loader("/dev/zero", &bytes, &error, NULL));
    g_assert_nonnull(strstr(error->message, "larger than"));
    g_assert_null(bytes);
    /* Reading 1 MiB takes milliseconds; a gigabyte would not. */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
    g_clear_error(&error);

    g_assert_false(shimmer_config_file_loader("/", &bytes, &error, NULL));
    g_assert_nonnull(strstr(error->message, "directory"));
    g_clear_error(&error);

    /* Exactly the limit is fine; one byte more is not. */
    g_autofree char *dir = g_dir_make_tmp("shimmer-loader-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "f", NULL);
    g_autofree char *big = g_malloc0(SHIMMER_CONFIG_MAX_FILE + 1);
    g_assert_true(g_file_set_contents(path, big, SHIMMER_CONFIG_MAX_FILE, NULL));
    g_assert_true(shimmer_config_file_loader(path, &bytes, &error, NULL));
    g_assert_cmpuint(g_bytes_get_size(bytes), ==, SHIMMER_CONFIG_MAX_FILE);
    g_clear_pointer(&bytes, g_bytes_unref);
    g_assert_true(g_file_set_contents(path, big, SHIMMER_CONFIG_MAX_FILE + 1, NULL));
    g_assert_false(shimmer_config_file_loader(path, &bytes, &error, NULL));
    g_clear_error(&error);

    /* A pipe, as from a shell's process substitution (/dev/fd/63), is read
     * to its end. */
    g_assert_cmpint(unlink(path), ==, 0);
    g_assert_cmpint(rmdir(dir), ==, 0);
    GPid pid;
    gint out_fd = -1;
    char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"printf abc", NULL};
    g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &pid,
                                           NULL, &out_fd, NULL, NULL));
    g_autofree char *fd_path = g_strdup_printf("/proc/self/fd/%d", out_fd);
    g_assert_true(shimmer_config_file_loader(fd_path, &bytes, &error, NULL));
    g_assert_cmpmem(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), "abc", 3);
    close(out_fd);
    g_spawn_close_pid(pid);

    /* Through the parser: the error names the directive and the file. */
    const char *text = BASE "ca /dev/zero\ndev tun\n";
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse("x.ovpn", NULL, text, strlen(text), shimmer_config_file_loader, NULL);
    assert_diag(cfg, "x.ovpn:4: error: 'ca': cannot read '/dev/zero': larger than 1048576 bytes");
}

static void test_defaults(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca ca.crt\n");
    assert_clean(cfg);
    g_assert_cmpint(cfg->role, ==, SHIMMER_ROLE_CLIENT);
    g_assert_true(cfg->pull);
    g_assert_true(cfg->tls_client);
    g_assert_cmpuint(cfg->connections->len, ==, 1);
    ShimmerConnection *c = g_ptr_array_index(cfg->connections, 0);
    g_assert_cmpstr(c->host, ==, "vpn.example.net");
    g_assert_cmpuint(c->port, ==, 1194);
    g_assert_cmpint(c->transport, ==, SHIMMER_TRANSPORT_UDP);
    g_assert_cmpuint(cfg->data_ciphers->len, ==, 3);
    g_assert_cmpint(g_array_index(cfg->data_ciphers, ShimmerCipher, 0), ==,
                    SHIMMER_CIPHER_AES_256_GCM);
    g_assert_cmpint(cfg->wrap, ==, SHIMMER_WRAP_NONE);
    g_assert_cmpint(cfg->auth, ==, SHIMMER_DIGEST_SHA1);
    g_assert_cmpint(cfg->key_direction, ==, -1);
    recorder_free(r);
}

static void test_global_proto_port_apply_to_remotes(void)
{
    Recorder *r = recorder_new();
    /* proto and port come after the remotes, yet apply to those without their own. */
    g_autoptr(ShimmerConfig) cfg = parse_with(r, "client\n"
                                                 "remote a.example.net\n"
                                                 "remote b.example.net 443 tcp\n"
                                                 "proto udp6\n"
                                                 "port 1200\n"
                                                 "ca ca.crt\n");
    assert_clean(cfg);
    ShimmerConnection *a = g_ptr_array_index(cfg->connections, 0);
    ShimmerConnection *b = g_ptr_array_index(cfg->connections, 1);
    g_assert_cmpuint(a->port, ==, 1200);
    g_assert_cmpint(a->transport, ==, SHIMMER_TRANSPORT_UDP);
    g_assert_cmpint(a->family, ==, SHIMMER_FAMILY_INET6);
    g_assert_cmpuint(b->port, ==, 443);
    g_assert_cmpint(b->transport, ==, SHIMMER_TRANSPORT_TCP);
    g_assert_cmpint(b->family, ==, SHIMMER_FAMILY_ANY);
    recorder_free(r);
}

static void test_connection_blocks(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, "client\n"
                                                 "proto tcp\n"
                                                 "connect-timeout 20\n"
                                                 "<connection>\n"
                                                 "remote first.example.net 1194 udp\n"
                                                 "connect-timeout 5\n"
                                                 "</connection>\n"
                                                 "<connection>\n"
                                                 "remote second.example.net 443\n"
                                                 "</connection>\n"
                                                 "ca ca.crt\n");
    assert_clean(cfg);
    g_assert_true(cfg->has_connection_blocks);
    g_assert_cmpuint(cfg->connections->len, ==, 2);
    ShimmerConnection *a = g_ptr_array_index(cfg->connections, 0);
    ShimmerConnection *b = g_ptr_array_index(cfg->connections, 1);
    g_assert_cmpint(a->transport, ==, SHIMMER_TRANSPORT_UDP);
    g_assert_cmpuint(a->connect_timeout, ==, 5);
    g_assert_cmpint(b->transport, ==, SHIMMER_TRANSPORT_TCP);
    g_assert_cmpuint(b->connect_timeout, ==, 20);
    g_assert_cmpuint(b->port, ==, 443);
    recorder_free(r);
}

static void test_connection_block_errors(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, "client\n"
                                                 "remote top.example.net\n"
                                                 "<connection>\n"
                                                 "remote a.example.net\n"
                                                 "remote b.example.net\n"
                                                 "ca ca.crt\n"
                                                 "</connection>\n"
                                                 "<connection>\n"
                                                 "proto tcp\n"
                                                 "</connection>\n"
                                                 "ca ca.crt\n");
    g_assert_true(shimmer_config_has_errors(cfg));
    assert_diag(cfg, ":5: error: 'remote': a <connection> block holds exactly one remote");
    assert_diag(cfg, ":6: error: 'ca' is not allowed inside a <connection> block");
    assert_diag(cfg, ":8: error: <connection> block without a 'remote'");
    assert_diag(cfg, ":2: error: 'remote' at top level cannot be mixed with <connection>");
    recorder_free(r);
}

static ShimmerConfig *parse_inline(const char *text)
{
    return shimmer_config_parse("c.ovpn", NULL, text, strlen(text), NULL, NULL);
}

#define INLINE_CLIENT BASE "dev tun\npeer-fingerprint " FP "\n"
#define FP                                                                                         \
    "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:"      \
    "dd:ee:ff"

/* Directives that contradict each other are errors naming both lines. */
static void test_conflicts(void)
{
    static const struct {
        const char *text;
        const char *needle;
    } cases[] = {
        {BASE "ca ca.crt\ntls-auth ta.key 1\ntls-crypt tc.key\n",
         ":6: error: 'tls-auth' (line 5) and 'tls-crypt' (line 6) cannot be combined"},
        {BASE "ca ca.crt\nserver 10.8.0.0 255.255.255.0\n",
         ":5: error: 'server' is a server directive, but 'client' at line 1 made this a client "
         "configuration"},
        {BASE "ca ca.crt\ntls-auth ta.key 1\nkey-direction 0\n",
         ":6: error: 'key-direction 0' conflicts with the direction 1 given at line 5"},
        {BASE "ca ca.crt\nkey-direction 0\ntls-auth ta.key 1\n",
         ":6: error: 'tls-auth': direction 1 conflicts with 'key-direction 0' at line 5"},
        {BASE "ca ca.crt\nkeepalive 10 60\nping 5\n",
         "'keepalive' (line 5) sets ping and ping-restart, which line 6 also sets"},
        {BASE "ca ca.crt\npkcs12 client.p12\ncert client.crt\nkey client.key\n",
         "'pkcs12' (line 5) already holds the certificate and key"},
        {BASE "ca ca.crt\ncert client.crt\n", ":5: error: 'cert' is given without 'key'"},
        {BASE "ca ca.crt\ntls-crypt-v2 tc-v2-server.key\n",
         "'tls-crypt-v2' is a server directive, but 'client' at line 1"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        Recorder *r = recorder_new();
        g_test_message("case %" G_GSIZE_FORMAT ": %s", i, cases[i].needle);
        g_autoptr(ShimmerConfig) cfg = parse_with(r, cases[i].text);
        g_assert_true(shimmer_config_has_errors(cfg));
        assert_diag(cfg, cases[i].needle);
        recorder_free(r);
    }
}

/* A setting given again: as OpenVPN, the last one counts, with a warning
 * naming both lines; the --inline output keeps only the winner. */
static void test_overrides(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg =
        parse_with(r, BASE "ca ca.crt\n"                                 /* 4 */
                           "port 1194\nrport 443\n"                      /* 5, 6 */
                           "cipher AES-256-GCM\ncipher AES-128-GCM\n"    /* 7, 8 */
                           "data-ciphers AES-256-GCM\n"                  /* 9 */
                           "ncp-ciphers AES-128-GCM:CHACHA20-POLY1305\n" /* 10 */
                           "connect-timeout 10\nserver-poll-timeout 5\n" /* 11, 12 */
                           "reneg-sec 3600 600\nreneg-sec 7200\n"        /* 13, 14 */
                           "comp-lzo no\ncompress stub-v2\n"             /* 15, 16 */
                           "ca server.crt\n");                           /* 17 */
    assert_clean(cfg);
    assert_diag(cfg, ":6: warning: 'rport 443' overrides the server port 'port 1194'");
    assert_diag(cfg, ":8: warning: 'cipher' overrides 'cipher' at line 7");
    assert_diag(cfg, ":10: warning: 'ncp-ciphers' overrides 'data-ciphers' at line 9");
    assert_diag(cfg, ":10: warning: 'ncp-ciphers' is 'data-ciphers' since OpenVPN 2.5");
    assert_diag(cfg, ":12: warning: 'server-poll-timeout' overrides 'connect-timeout' at line 11");
    assert_diag(cfg, ":14: warning: 'reneg-sec' overrides 'reneg-sec' at line 13");
    assert_diag(cfg, ":16: warning: 'compress' overrides 'comp-lzo' at line 15");
    assert_diag(cfg, ":17: warning: 'ca' overrides 'ca' at line 4");
    ShimmerConnection *c = g_ptr_array_index(cfg->connections, 0);
    g_assert_cmpuint(c->port, ==, 1194); /* the remote line says so */
    g_assert_cmpuint(cfg->rport, ==, 443);
    g_assert_cmpuint(c->connect_timeout, ==, 5);
    g_assert_cmpstr(cfg->cipher, ==, "AES-128-GCM");
    g_assert_cmpuint(cfg->data_ciphers->len, ==, 2);
    g_assert_cmpint(g_array_index(cfg->data_ciphers, ShimmerCipher, 0), ==,
                    SHIMMER_CIPHER_AES_128_GCM);
    g_assert_cmpint(cfg->reneg_sec, ==, 7200);
    g_assert_cmpint(cfg->reneg_sec_min, ==, -1);
    g_assert_cmpint(cfg->comp, ==, SHIMMER_COMP_STUB_V2);
    g_assert_cmpstr(cfg->ca.path, ==, "server.crt");
    g_assert_cmpuint(cfg->ca.line, ==, 17);
    /* --inline: one <ca>, the second file's. */
    g_autofree char *ovpn = shimmer_config_to_ovpn(cfg);
    g_assert_nonnull(ovpn);
    g_assert_null(strstr(strstr(ovpn, "<ca>") + 1, "<ca>"));
    g_autoptr(ShimmerConfig) again =
        shimmer_config_parse("inline.ovpn", NULL, ovpn, strlen(ovpn), NULL, NULL);
    assert_clean(again);
    g_assert_cmpmem(again->ca.data, again->ca.len, cfg->ca.data, cfg->ca.len);
    recorder_free(r);

    /* A file, then a block: the block; the file is never read. */
    r = recorder_new();
    g_autoptr(GBytes) ca = NULL;
    g_autofree char *ca_path = g_build_filename(r->dir, "ca.crt", NULL);
    g_assert_true(shimmer_config_file_loader(ca_path, &ca, NULL, NULL));
    g_autofree char *text =
        g_strdup_printf(BASE "ca missing.crt\n<ca>\n%.*s</ca>\n", (int)g_bytes_get_size(ca),
                        (const char *)g_bytes_get_data(ca, NULL));
    g_autoptr(ShimmerConfig) fb = parse_with(r, text);
    assert_clean(fb);
    assert_diag(fb, ":4: warning: 'ca missing.crt' is overridden by the <ca> block at line 5");
    g_assert_cmpuint(r->asked->len, ==, 0);
    g_assert_true(fb->ca.is_inline);
    recorder_free(r);

    /* A block, then a file: the file; the block leaves the --inline output. */
    r = recorder_new();
    g_autofree char *text2 =
        g_strdup_printf(BASE "<ca>\n%.*s</ca>\nca server.crt\n", (int)g_bytes_get_size(ca),
                        (const char *)g_bytes_get_data(ca, NULL));
    g_autoptr(ShimmerConfig) bf = parse_with(r, text2);
    assert_clean(bf);
    assert_diag(bf, "warning: 'ca server.crt' overrides the <ca> block at line 4");
    g_assert_false(bf->ca.is_inline);
    g_assert_cmpstr(bf->ca.path, ==, "server.crt");
    g_autofree char *ovpn2 = shimmer_config_to_ovpn(bf);
    g_autoptr(ShimmerConfig) again2 =
        shimmer_config_parse("inline.ovpn", NULL, ovpn2, strlen(ovpn2), NULL, NULL);
    assert_clean(again2);
    g_assert_cmpmem(again2->ca.data, again2->ca.len, bf->ca.data, bf->ca.len);
    recorder_free(r);

    /* Two blocks: the second. */
    g_autofree char *fp_block = g_strdup_printf(
        "client\ndev tun\nremote x.example\nremote-cert-tls server\n"
        "<peer-fingerprint>\n" FP "\n</peer-fingerprint>\n<ca>\n%.*s</ca>\n<ca>\n%.*s</ca>\n",
        (int)g_bytes_get_size(ca), (const char *)g_bytes_get_data(ca, NULL),
        (int)g_bytes_get_size(ca), (const char *)g_bytes_get_data(ca, NULL));
    g_autoptr(ShimmerConfig) two = parse_inline(fp_block);
    assert_clean(two);
    assert_diag(two, "warning: <ca> overrides the <ca> block at line 8");
}

static void test_repeats_that_agree_only_warn(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca ca.crt\n"
                                                      "cipher AES-256-GCM\n"
                                                      "cipher AES-256-GCM\n"
                                                      "port 1194\n"
                                                      "rport 1194\n");
    assert_clean(cfg);
    assert_diag(cfg, ":6: warning: 'cipher' repeats line 5");
    recorder_free(r);
}

static void test_cbc_cipher_only_warns(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca ca.crt\ncipher AES-256-CBC\n");
    assert_clean(cfg);
    assert_diag(cfg, ":5: warning: 'cipher AES-256-CBC' is not an AEAD cipher");
    g_assert_cmpuint(cfg->data_ciphers->len, ==, 3);
    recorder_free(r);

    r = recorder_new();
    g_autoptr(ShimmerConfig) bad =
        parse_with(r, BASE "ca ca.crt\ndata-ciphers AES-256-CBC:BF-CBC\n");
    g_assert_true(shimmer_config_has_errors(bad));
    assert_diag(bad, ":5: error: 'data-ciphers': the list holds no AEAD cipher");
    recorder_free(r);
}

static void test_data_ciphers_list(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(
        r,
        BASE "ca ca.crt\ndata-ciphers CHACHA20-POLY1305:aes-128-gcm:?SOMETHING-NEW:AES-128-GCM\n");
    assert_clean(cfg);
    g_assert_cmpuint(cfg->data_ciphers->len, ==, 2);
    g_assert_cmpint(g_array_index(cfg->data_ciphers, ShimmerCipher, 0), ==,
                    SHIMMER_CIPHER_CHACHA20_POLY1305);
    g_assert_cmpint(g_array_index(cfg->data_ciphers, ShimmerCipher, 1), ==,
                    SHIMMER_CIPHER_AES_128_GCM);
    recorder_free(r);
}

static void test_keys_loaded(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg =
        parse_with(r, BASE "ca ca.crt\ncert client.crt\n"
                           "key client-enc.key\naskpass client-enc.pass\n"
                           "tls-auth ta.key 1\nauth SHA256\n");
    assert_clean(cfg);
    g_assert_true(cfg->key_encrypted);
    g_assert_cmpint(cfg->wrap, ==, SHIMMER_WRAP_TLS_AUTH);
    g_assert_cmpint(cfg->key_direction, ==, 1);
    g_assert_cmpint(cfg->auth, ==, SHIMMER_DIGEST_SHA256);
    /* The static key's bytes landed in the typed result: compare with the file. */
    g_autofree char *dir = data_dir();
    g_autofree char *path = g_build_filename(dir, "ta.key", NULL);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    const char *begin = strstr(text, "-----\n");
    g_assert_nonnull(begin);
    char hex[3] = {begin[6], begin[7], 0};
    g_assert_cmpuint(cfg->static_key[0], ==, (guint8)strtoul(hex, NULL, 16));
    recorder_free(r);
}

static void test_tls_crypt_v2_client(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca ca.crt\ntls-crypt-v2 tc-v2-client.key\n");
    assert_clean(cfg);
    g_assert_cmpint(cfg->wrap, ==, SHIMMER_WRAP_TLS_CRYPT_V2);
    g_assert_nonnull(cfg->tls_crypt_v2_client);
    g_assert_cmpuint(cfg->tls_crypt_v2_client->wkc_len, >=, SHIMMER_TLS_CRYPT_V2_MIN_WKC_LEN);
    recorder_free(r);
}

static void test_auth_user_pass_inline(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca ca.crt\nauth-user-pass\n"
                                                      "<auth-user-pass>\nalice\r\ns3cret pass\r\n"
                                                      "</auth-user-pass>\n");
    assert_clean(cfg);
    g_assert_cmpint(cfg->auth_user_pass, ==, SHIMMER_AUTH_USER_PASS_STORED);
    g_assert_cmpstr(cfg->username, ==, "alice");
    g_assert_cmpstr(cfg->password, ==, "s3cret pass");
    g_autofree char *json = shimmer_config_to_json(cfg);
    g_assert_null(strstr(json, "s3cret"));
    g_assert_nonnull(strstr(json, "\"username\": \"alice\""));
    recorder_free(r);

    r = recorder_new();
    g_autoptr(ShimmerConfig) prompt = parse_with(r, BASE "ca ca.crt\nauth-user-pass\n");
    assert_clean(prompt);
    g_assert_cmpint(prompt->auth_user_pass, ==, SHIMMER_AUTH_USER_PASS_PROMPT);
    g_assert_null(prompt->password);
    recorder_free(r);
}

static void test_secrets_not_in_output(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg =
        parse_with(r, BASE "ca ca.crt\ncert client.crt\nkey client.key\ntls-crypt tc.key\n");
    assert_clean(cfg);
    g_autofree char *json = shimmer_config_to_json(cfg);
    /* A line from the middle of the private key and of the static key. */
    g_autofree char *dir = data_dir();
    const char *files[] = {"client.key", "tc.key"};
    for (gsize f = 0; f < G_N_ELEMENTS(files); f++) {
        g_autofree char *path = g_build_filename(dir, files[f], NULL);
        g_autofree char *text = NULL;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        guint checked = 0;
        for (guint i = 0; lines[i]; i++) {
            if (strlen(lines[i]) < 16 || lines[i][0] == '-' || lines[i][0] == '#')
                continue;
            g_assert_null(strstr(json, lines[i]));
            checked++;
        }
        g_assert_cmpuint(checked, >, 2);
    }
    g_assert_nonnull(strstr(json, "\"redacted\": true"));
    /* --inline output does carry them: it is for moving the profile. */
    g_autofree char *ovpn = shimmer_config_to_ovpn(cfg);
    g_assert_nonnull(strstr(ovpn, "<tls-crypt>"));
    g_assert_nonnull(strstr(ovpn, "-----BEGIN OpenVPN Static key V1-----"));
    recorder_free(r);
}

static void test_inline_roundtrip(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, BASE "ca ca.crt\ncert client.crt\n"
                                                      "key client.key\ntls-auth ta.key 1\n"
                                                      "pkcs12 client.p12\n");
    /* pkcs12 with cert/key is an error; drop it and go again. */
    g_assert_true(shimmer_config_has_errors(cfg));
    g_assert_null(shimmer_config_to_ovpn(cfg));
    recorder_free(r);

    r = recorder_new();
    g_autoptr(ShimmerConfig) ok = parse_with(r, BASE "ca ca.crt\npkcs12 client.p12\n"
                                                     "tls-auth ta.key 1\n# comment kept\n");
    assert_clean(ok);
    g_autofree char *ovpn = shimmer_config_to_ovpn(ok);
    g_assert_nonnull(strstr(ovpn, "# comment kept"));
    g_assert_nonnull(strstr(ovpn, "key-direction 1\n<tls-auth>"));
    g_autoptr(ShimmerConfig) again =
        shimmer_config_parse("inline.ovpn", NULL, ovpn, strlen(ovpn), NULL, NULL);
    assert_clean(again);
    g_assert_true(again->pkcs12.is_inline);
    g_assert_cmpuint(again->pkcs12.len, ==, ok->pkcs12.len);
    g_assert_cmpmem(again->pkcs12.data, again->pkcs12.len, ok->pkcs12.data, ok->pkcs12.len);
    g_assert_cmpint(again->key_direction, ==, 1);
    g_assert_cmpmem(again->static_key, sizeof(again->static_key), ok->static_key,
                    sizeof(ok->static_key));
    recorder_free(r);
}

static void test_server(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg = parse_with(r, "port 1194\nproto udp\ndev tun\n"
                                                 "ca ca.crt\ncert server.crt\nkey server.key\n"
                                                 "dh none\nserver 10.8.0.0 255.255.255.0\n"
                                                 "server-ipv6 fd00:8::/64\n"
                                                 "push \"route 10.9.0.0 255.255.0.0\"\n"
                                                 "push \"dhcp-option DNS 10.8.0.1\"\n"
                                                 "keepalive 10 120\n"
                                                 "tls-crypt-v2 tc-v2-server.key\n");
    assert_clean(cfg);
    g_assert_cmpint(cfg->role, ==, SHIMMER_ROLE_SERVER);
    g_assert_cmpstr(cfg->server_network, ==, "10.8.0.0");
    g_assert_cmpuint(cfg->push->len, ==, 2);
    g_assert_true(cfg->tls_crypt_v2_is_server_key);
    g_assert_cmpint(cfg->lport, ==, 1194);
    recorder_free(r);

    r = recorder_new();
    g_autoptr(ShimmerConfig) bad = parse_with(r, "server 10.8.0.0 255.255.255.0\nca ca.crt\n"
                                                 "cert server.crt\nkey server.key\ndh none\n"
                                                 "push \"up /bin/evil\"\n");
    assert_diag(bad, ":6: warning: 'push \"up /bin/evil\"': 'up' is not an option a server may "
                     "push");
    recorder_free(r);
}

static void test_lexer_error_has_line(void)
{
    const char *text = "client\nremote \"unterminated\n";
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse("q.ovpn", NULL, text, strlen(text), NULL, NULL);
    g_assert_true(shimmer_config_has_errors(cfg));
    assert_diag(cfg, "q.ovpn:2: error: ");
}

static void test_role_unset(void)
{
    const char *text = "dev tun\n";
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse("r.ovpn", NULL, text, strlen(text), NULL, NULL);
    assert_diag(cfg, "r.ovpn: error: neither a client nor a server configuration");
}

static void test_compression(void)
{
    static const struct {
        const char *line;
        ShimmerCompFraming framing;
        ShimmerCompAlgorithm alg;
        bool warns;
    } cases[] = {
        {"comp-lzo", SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, true},
        {"comp-lzo yes", SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, true},
        {"comp-lzo adaptive", SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, true},
        {"comp-lzo no", SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_NONE, false},
        {"compress", SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_NONE, false},
        {"compress stub", SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_NONE, false},
        {"compress stub-v2", SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_NONE, false},
        {"compress lzo", SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO, true},
        {"compress lz4", SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_LZ4, true},
        {"compress lz4-v2", SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4, true},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *text = g_strdup_printf(INLINE_CLIENT "%s\n", cases[i].line);
        g_autoptr(ShimmerConfig) cfg = parse_inline(text);
        assert_clean(cfg);
        g_assert_cmpint(cfg->comp, ==, cases[i].framing);
        g_assert_cmpint(cfg->comp_alg, ==, cases[i].alg);
        g_assert_cmpuint(cfg->comp_line, ==, 6);
        g_autofree char *d = diagnostics(cfg);
        g_assert_cmpint(strstr(d, "c.ovpn:6: warning: '") != NULL, ==, cases[i].warns);
        if (cases[i].warns)
            g_assert_nonnull(strstr(d, "VORACLE"));
    }
    g_autoptr(ShimmerConfig) yes = parse_inline(INLINE_CLIENT "allow-compression yes\n");
    assert_diag(yes, "c.ovpn:6: error: 'allow-compression yes' asks to compress");
    g_autoptr(ShimmerConfig) asym =
        parse_inline(INLINE_CLIENT "allow-compression asym\ncompress lz4\n");
    assert_clean(asym);
    g_autoptr(ShimmerConfig) bad = parse_inline(INLINE_CLIENT "comp-lzo maybe\n");
    assert_diag(bad, "c.ovpn:6: error: 'comp-lzo': 'maybe' is not yes, no or adaptive");
    g_autoptr(ShimmerConfig) bad2 = parse_inline(INLINE_CLIENT "compress snappy\n");
    assert_diag(bad2, "c.ovpn:6: error: 'compress': unknown algorithm 'snappy'");
    /* Refusing compression and asking for it: both lines named. */
    g_autoptr(ShimmerConfig) both = parse_inline(INLINE_CLIENT "allow-compression no\ncomp-lzo\n");
    assert_diag(both, "c.ovpn:7: error: 'allow-compression no' (line 6) refuses the compression "
                      "that line 7 asks for");
    g_autoptr(ShimmerConfig) stub_no =
        parse_inline(INLINE_CLIENT "allow-compression no\ncomp-lzo no\n");
    assert_clean(stub_no);
}

/* As OpenVPN 2.6: a pushed compression algorithm is accepted only when the
 * profile asked for one and did not say allow-compression no. */
static void test_pushed_compression(void)
{
    g_autoptr(ShimmerConfig) none = parse_inline(INLINE_CLIENT);
    g_autoptr(ShimmerConfig) stub = parse_inline(INLINE_CLIENT "comp-lzo no\n");
    g_autoptr(ShimmerConfig) lzo = parse_inline(INLINE_CLIENT "comp-lzo\n");
    g_autoptr(ShimmerConfig) lzo_no =
        parse_inline(INLINE_CLIENT "allow-compression no\ncomp-lzo no\n");
    g_autoptr(ShimmerConfig) p_lzo = shimmer_config_parse_push("comp-lzo yes", 12, NULL);
    g_autoptr(ShimmerConfig) p_stub = shimmer_config_parse_push("compress stub-v2", 16, NULL);
    g_autoptr(ShimmerConfig) p_lz4 = shimmer_config_parse_push("compress lz4-v2", 15, NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false(shimmer_config_check_pushed_compression(none, p_lzo, &error));
    g_assert_nonnull(strstr(error->message, "does not allow compression"));
    g_clear_error(&error);
    g_assert_false(shimmer_config_check_pushed_compression(stub, p_lz4, &error));
    g_clear_error(&error);
    g_assert_false(shimmer_config_check_pushed_compression(lzo_no, p_lzo, &error));
    g_assert_nonnull(strstr(error->message, "allow-compression no"));
    g_clear_error(&error);
    g_assert_true(shimmer_config_check_pushed_compression(lzo, p_lzo, &error));
    g_assert_true(shimmer_config_check_pushed_compression(lzo, p_lz4, &error));
    g_assert_true(shimmer_config_check_pushed_compression(none, p_stub, &error));
    g_assert_true(shimmer_config_check_pushed_compression(lzo_no, p_stub, &error));
    g_assert_no_error(error);
}

#define TCP_CLIENT BASE "dev tun\nproto tcp-client\nca ca.crt\n"

static void test_http_proxy(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg =
        parse_with(r, TCP_CLIENT "http-proxy proxy.corp.example 3128 proxy.auth basic\n"
                                 "http-proxy-option VERSION 1.1\n"
                                 "http-proxy-option AGENT \"Mozilla/5.0 (X11)\"\n"
                                 "http-proxy-option CUSTOM-HEADER Host vpn.example.net\n"
                                 "http-proxy-option CUSTOM-HEADER \"X-Token: abc\"\n");
    assert_clean(cfg);
    g_assert_cmpstr(g_ptr_array_index(r->asked, 1), ==, "/profiles/proxy.auth");
    ShimmerConnection *c = g_ptr_array_index(cfg->connections, 0);
    ShimmerProxy *x = c->proxy;
    g_assert_nonnull(x);
    g_assert_cmpint(x->type, ==, SHIMMER_PROXY_HTTP);
    g_assert_cmpstr(x->host, ==, "proxy.corp.example");
    g_assert_cmpuint(x->port, ==, 3128);
    g_assert_cmpint(x->auth, ==, SHIMMER_PROXY_AUTH_BASIC);
    g_assert_cmpstr(x->auth_file, ==, "proxy.auth");
    g_assert_cmpstr(x->username, ==, "proxy-user");
    g_assert_cmpstr(x->password, ==, "proxy-secret-pass-9f3");
    g_assert_cmpstr(x->http_version, ==, "1.1");
    g_assert_cmpstr(x->user_agent, ==, "Mozilla/5.0 (X11)");
    g_assert_cmpuint(x->custom_headers->len, ==, 2);
    ShimmerHttpHeader *h = g_ptr_array_index(x->custom_headers, 0);
    g_assert_cmpstr(h->name, ==, "Host");
    g_assert_cmpstr(h->content, ==, "vpn.example.net");
    h = g_ptr_array_index(x->custom_headers, 1);
    g_assert_cmpstr(h->name, ==, "X-Token: abc");
    g_assert_null(h->content);
    g_assert_nonnull(cfg->proxy);

    /* The password never in the JSON; the user name is. */
    g_autofree char *json = shimmer_config_to_json(cfg);
    g_assert_null(strstr(json, "proxy-secret-pass-9f3"));
    g_assert_nonnull(strstr(json, "\"username\": \"proxy-user\""));
    g_assert_nonnull(strstr(json, "\"password-stored\": true"));
    g_autofree char *diags = diagnostics(cfg);
    g_assert_null(strstr(diags, "proxy-secret-pass-9f3"));

    /* --inline: the credentials become the block, and the block wins. */
    g_autofree char *ovpn = shimmer_config_to_ovpn(cfg);
    g_assert_nonnull(ovpn);
    g_assert_nonnull(strstr(ovpn, "<http-proxy-user-pass>\nproxy-user\nproxy-secret-pass-9f3\n"
                                  "</http-proxy-user-pass>"));
    g_autoptr(ShimmerConfig) again =
        shimmer_config_parse("inline.ovpn", NULL, ovpn, strlen(ovpn), NULL, NULL);
    assert_clean(again);
    x = ((ShimmerConnection *)g_ptr_array_index(again->connections, 0))->proxy;
    g_assert_true(x->auth_inline);
    g_assert_null(x->auth_file);
    g_assert_cmpstr(x->password, ==, "proxy-secret-pass-9f3");
    recorder_free(r);
}

static void test_http_proxy_forms(void)
{
    static const struct {
        const char *line;
        ShimmerProxyAuth auth;
        bool prompt;
    } ok[] = {
        {"http-proxy p.example 8080", SHIMMER_PROXY_AUTH_NONE, false},
        {"http-proxy p.example 8080 auto", SHIMMER_PROXY_AUTH_AUTO, false},
        {"http-proxy p.example 8080 auto-nct", SHIMMER_PROXY_AUTH_AUTO_NCT, false},
        {"http-proxy p.example 8080 stdin", SHIMMER_PROXY_AUTH_BASIC, true},
        {"http-proxy p.example 8080 stdin ntlm2", SHIMMER_PROXY_AUTH_NTLM2, true},
        {"http-proxy 192.0.2.7 80 stdin none", SHIMMER_PROXY_AUTH_NONE, true},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_autofree char *text = g_strdup_printf(INLINE_CLIENT "proto tcp\n%s\n", ok[i].line);
        g_autoptr(ShimmerConfig) cfg = parse_inline(text);
        assert_clean(cfg);
        ShimmerProxy *x = ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 0))->proxy;
        g_assert_cmpint(x->auth, ==, ok[i].auth);
        g_assert_cmpint(x->auth_prompt, ==, ok[i].prompt);
        g_assert_null(x->auth_file);
    }
    static const struct {
        const char *lines;
        const char *error;
    } bad[] = {
        {"proto tcp\nhttp-proxy p.example", "'http-proxy' needs 2 arguments"},
        {"proto tcp\nhttp-proxy p.example 0", "port '0' is not a number"},
        {"proto tcp\nhttp-proxy p.example 80 stdin digest", "unknown authentication method"},
        {"proto tcp\nhttp-proxy p.example 80 auto basic", "takes no authentication method"},
        {"proto tcp\nhttp-proxy-option FOO bar", "unknown option 'FOO'"},
        {"proto tcp\nhttp-proxy-option VERSION 2", "'2' is not 1.0 or 1.1"},
        {"http-proxy p.example 80", "carries TCP only"},
        {"proto tcp\nhttp-proxy p.example 80\nsocks-proxy s.example", "cannot both be used"},
        {"proto tcp\nhttp-proxy-user-pass", "no <http-proxy-user-pass> block"},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *text = g_strdup_printf(INLINE_CLIENT "%s\n", bad[i].lines);
        g_autoptr(ShimmerConfig) cfg = parse_inline(text);
        g_assert_true(shimmer_config_has_errors(cfg));
        assert_diag(cfg, bad[i].error);
    }
    GString *many = g_string_new(INLINE_CLIENT "proto tcp\nhttp-proxy p.example 80\n");
    for (int i = 0; i < 11; i++)
        g_string_append_printf(many, "http-proxy-option CUSTOM-HEADER X-%d %d\n", i, i);
    g_autoptr(ShimmerConfig) cfg = parse_inline(many->str);
    assert_diag(cfg, "c.ovpn:18: error: 'http-proxy-option CUSTOM-HEADER': at most 10");
    g_string_free(many, TRUE);
    /* A header must not carry a second one. */
    g_autoptr(ShimmerConfig) crlf =
        parse_inline(INLINE_CLIENT "proto tcp\nhttp-proxy p.example 80\n"
                                   "http-proxy-option CUSTOM-HEADER \"X-A: 1\rX-B: 2\"\n");
    assert_diag(crlf, "a header holds a line break");
    g_autoptr(ShimmerConfig) ntlm =
        parse_inline(INLINE_CLIENT "proto tcp\nhttp-proxy p.example 80 stdin ntlm\n");
    assert_clean(ntlm);
    assert_diag(ntlm, "NTLM version 1 is weak");
}

/* The inline block replaces the authfile, which is then not even read. */
static void test_http_proxy_user_pass(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg =
        parse_with(r, TCP_CLIENT "http-proxy p.example 8080 missing.auth basic\n"
                                 "<http-proxy-user-pass>\nalice\ns3cr3t-proxy-pw\n"
                                 "</http-proxy-user-pass>\n");
    assert_clean(cfg);
    g_assert_cmpuint(r->asked->len, ==, 1); /* ca.crt only */
    ShimmerProxy *x = ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 0))->proxy;
    g_assert_true(x->auth_inline);
    g_assert_cmpstr(x->username, ==, "alice");
    g_assert_cmpstr(x->password, ==, "s3cr3t-proxy-pw");
    g_assert_true(cfg->http_proxy_user_pass.secret);
    g_autofree char *json = shimmer_config_to_json(cfg);
    g_assert_null(strstr(json, "s3cr3t-proxy-pw"));
    recorder_free(r);

    /* Given as a file instead. */
    r = recorder_new();
    g_autoptr(ShimmerConfig) f =
        parse_with(r, TCP_CLIENT "http-proxy p.example 8080 auto\nhttp-proxy-user-pass "
                                 "proxy.auth\n");
    assert_clean(f);
    x = ((ShimmerConnection *)g_ptr_array_index(f->connections, 0))->proxy;
    g_assert_cmpstr(x->auth_file, ==, "proxy.auth");
    g_assert_cmpstr(x->password, ==, "proxy-secret-pass-9f3");
    g_autofree char *ovpn = shimmer_config_to_ovpn(f);
    g_assert_nonnull(strstr(ovpn, "<http-proxy-user-pass>\nproxy-user\n"));
    recorder_free(r);
}

static void test_socks_proxy(void)
{
    g_autoptr(ShimmerConfig) cfg = parse_inline(INLINE_CLIENT "socks-proxy 127.0.0.1\n");
    assert_clean(cfg);
    ShimmerProxy *x = ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 0))->proxy;
    g_assert_cmpint(x->type, ==, SHIMMER_PROXY_SOCKS);
    g_assert_cmpuint(x->port, ==, 1080);
    g_assert_cmpint(x->auth, ==, SHIMMER_PROXY_AUTH_NONE);

    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) auth =
        parse_with(r, BASE "dev tun\nca ca.crt\nsocks-proxy s.example 9050 proxy.auth\n");
    assert_clean(auth);
    x = ((ShimmerConnection *)g_ptr_array_index(auth->connections, 0))->proxy;
    g_assert_cmpuint(x->port, ==, 9050);
    g_assert_cmpint(x->auth, ==, SHIMMER_PROXY_AUTH_BASIC);
    g_assert_cmpstr(x->username, ==, "proxy-user");
    /* OpenVPN has no inline form for it: --inline says so. */
    g_assert_null(shimmer_config_to_ovpn(auth));
    g_assert_nonnull(strstr(shimmer_config_inline_error(auth), "socks-proxy"));
    recorder_free(r);
}

/* In <connection> blocks: a block's own proxy, else the top level's, with
 * the block's http-proxy-option lines on top. */
static void test_proxy_in_connections(void)
{
    g_autoptr(ShimmerConfig) cfg =
        parse_inline("client\ndev tun\nremote-cert-tls server\npeer-fingerprint " FP "\n"
                     "proto tcp\n"
                     "http-proxy top.example 3128\n"
                     "<connection>\nremote a.example 443\n</connection>\n"
                     "<connection>\nremote b.example 443\nhttp-proxy-option AGENT b\n"
                     "</connection>\n"
                     "<connection>\nremote c.example 1194 udp\nsocks-proxy s.example\n"
                     "</connection>\n"
                     "<connection>\nremote d.example 443\nhttp-proxy own.example 8080\n"
                     "</connection>\n");
    assert_clean(cfg);
    g_assert_cmpuint(cfg->connections->len, ==, 4);
    ShimmerProxy *a = ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 0))->proxy;
    ShimmerProxy *b = ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 1))->proxy;
    ShimmerProxy *c = ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 2))->proxy;
    ShimmerProxy *d = ((ShimmerConnection *)g_ptr_array_index(cfg->connections, 3))->proxy;
    g_assert_cmpstr(a->host, ==, "top.example");
    g_assert_null(a->user_agent);
    g_assert_cmpstr(b->host, ==, "top.example");
    g_assert_cmpstr(b->user_agent, ==, "b");
    g_assert_cmpint(c->type, ==, SHIMMER_PROXY_SOCKS);
    g_assert_cmpstr(c->host, ==, "s.example");
    g_assert_cmpstr(d->host, ==, "own.example");
    g_assert_cmpuint(d->port, ==, 8080);
}

/* What OpenVPN 2.6 refuses, Shimmer refuses too, saying why. */
static void test_openvpn_refusals(void)
{
    const char *nodev = BASE "peer-fingerprint " FP "\n";
    g_autoptr(ShimmerConfig) cfg = parse_inline(nodev);
    assert_diag(cfg, "c.ovpn:1: error: no 'dev' in this client configuration: OpenVPN refuses");
    static const char *const removed[] = {"keysize 256", "key-method 2", "ncp-disable"};
    for (gsize i = 0; i < G_N_ELEMENTS(removed); i++) {
        g_autofree char *text = g_strdup_printf(INLINE_CLIENT "%s\n", removed[i]);
        g_autoptr(ShimmerConfig) c = parse_inline(text);
        g_auto(GStrv) name = g_strsplit(removed[i], " ", 2);
        g_autofree char *want =
            g_strdup_printf("c.ovpn:6: error: '%s': OpenVPN 2.6 no longer knows it", name[0]);
        assert_diag(c, want);
    }
    /* Pushed, they are only ignored like any option a server may not push. */
    g_autoptr(ShimmerConfig) pushed = shimmer_config_parse_push("keysize 256", 11, NULL);
    g_assert_false(shimmer_config_has_errors(pushed));
}

static void test_client_extras(void)
{
    /* local: the top level's, or a block's own. */
    g_autoptr(ShimmerConfig) loc =
        parse_inline("client\ndev tun\nremote-cert-tls server\npeer-fingerprint " FP "\n"
                     "local 192.0.2.10\n"
                     "<connection>\nremote a.example\n</connection>\n"
                     "<connection>\nremote b.example\nlocal 198.51.100.7\n"
                     "connect-retry-max 3\n</connection>\n");
    assert_clean(loc);
    g_assert_cmpstr(((ShimmerConnection *)g_ptr_array_index(loc->connections, 0))->local, ==,
                    "192.0.2.10");
    g_assert_cmpstr(((ShimmerConnection *)g_ptr_array_index(loc->connections, 1))->local, ==,
                    "198.51.100.7");
    assert_diag(loc, "c.ovpn:12: warning: 'connect-retry-max' inside a <connection> block has "
                     "no effect");
    g_assert_cmpint(loc->connect_retry_max, ==, 0);

    /* proto-force keeps the connections of one transport. */
    g_autoptr(ShimmerConfig) pf =
        parse_inline("client\ndev tun\nremote-cert-tls server\npeer-fingerprint " FP "\n"
                     "remote a.example 1194 udp\nremote b.example 443 tcp\n"
                     "remote c.example 1195 udp\nproto-force tcp\n");
    assert_clean(pf);
    g_assert_cmpuint(pf->connections->len, ==, 1);
    g_assert_cmpstr(((ShimmerConnection *)g_ptr_array_index(pf->connections, 0))->host, ==,
                    "b.example");
    assert_diag(pf, "'proto-force tcp' leaves out 2 of the 3 connections");
    g_autoptr(ShimmerConfig) none = parse_inline(INLINE_CLIENT "proto udp\nproto-force tcp\n");
    assert_diag(none, "error: no 'remote'");

    /* replay-window, clamped to what Shimmer keeps. */
    g_autoptr(ShimmerConfig) rw = parse_inline(INLINE_CLIENT "replay-window 512 30\n");
    assert_clean(rw);
    g_assert_cmpuint(rw->replay_window, ==, 512);
    g_assert_cmpint(rw->replay_time, ==, 30);
    g_autoptr(ShimmerConfig) big = parse_inline(INLINE_CLIENT "replay-window 4096\n");
    assert_diag(big, "c.ovpn:6: warning: 'replay-window 4096': Shimmer keeps at most 1024");
    g_assert_cmpuint(big->replay_window, ==, 1024);
    g_assert_cmpint(big->replay_time, ==, -1);
    g_autoptr(ShimmerConfig) bad = parse_inline(INLINE_CLIENT "replay-window 64 601\n");
    assert_diag(bad, "c.ovpn:6: error: 'replay-window': '601' is not a number from 0 to 600");

    /* A client's plugin and dh are ignored; the dh file is not read. */
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) pl = parse_with(
        r, BASE "ca ca.crt\nplugin /usr/lib/openvpn/openvpn-plugin-down-root.so \"down.sh\"\n"
                "dh missing-dh.pem\n");
    assert_clean(pl);
    assert_diag(pl, ":5: warning: 'plugin /usr/lib/openvpn/openvpn-plugin-down-root.so' ignored");
    assert_diag(pl, ":6: warning: 'dh' is a server's and is ignored here");
    g_assert_cmpuint(r->asked->len, ==, 1);
    recorder_free(r);
}

/* `cd` moves every relative path of the file, even those before it. */
static void test_cd(void)
{
    Recorder *r = recorder_new();
    g_autoptr(ShimmerConfig) cfg =
        parse_with(r, BASE "ca ca.crt\ncd keys\ncert client.crt\nkey /abs/client.key\n"
                           "cd sub\ntls-crypt tc.key\n");
    assert_clean(cfg);
    g_assert_cmpstr(g_ptr_array_index(r->asked, 0), ==, "/profiles/keys/sub/ca.crt");
    g_assert_cmpstr(g_ptr_array_index(r->asked, 1), ==, "/profiles/keys/sub/client.crt");
    g_assert_cmpstr(g_ptr_array_index(r->asked, 2), ==, "/abs/client.key");
    recorder_free(r);
    r = recorder_new();
    g_autoptr(ShimmerConfig) abs = parse_with(r, BASE "cd /etc/openvpn/client\nca ca.crt\n");
    g_assert_cmpstr(g_ptr_array_index(r->asked, 0), ==, "/etc/openvpn/client/ca.crt");
    g_assert_true(abs->ca.present);
    recorder_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/relative-paths", test_relative_paths);
    g_test_add_func("/config/explicit-base-dir", test_explicit_base_dir);
    g_test_add_func("/config/no-loader", test_no_loader);
    g_test_add_func("/config/missing-file", test_missing_file);
    g_test_add_func("/config/loader-bounded", test_loader_bounded);
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/global-proto-port", test_global_proto_port_apply_to_remotes);
    g_test_add_func("/config/connection-blocks", test_connection_blocks);
    g_test_add_func("/config/connection-block-errors", test_connection_block_errors);
    g_test_add_func("/config/conflicts", test_conflicts);
    g_test_add_func("/config/overrides", test_overrides);
    g_test_add_func("/config/repeats-that-agree", test_repeats_that_agree_only_warn);
    g_test_add_func("/config/cbc-cipher", test_cbc_cipher_only_warns);
    g_test_add_func("/config/data-ciphers", test_data_ciphers_list);
    g_test_add_func("/config/keys-loaded", test_keys_loaded);
    g_test_add_func("/config/tls-crypt-v2-client", test_tls_crypt_v2_client);
    g_test_add_func("/config/auth-user-pass", test_auth_user_pass_inline);
    g_test_add_func("/config/secrets-not-in-output", test_secrets_not_in_output);
    g_test_add_func("/config/inline-roundtrip", test_inline_roundtrip);
    g_test_add_func("/config/server", test_server);
    g_test_add_func("/config/lexer-error-line", test_lexer_error_has_line);
    g_test_add_func("/config/role-unset", test_role_unset);
    g_test_add_func("/config/compression", test_compression);
    g_test_add_func("/config/pushed-compression", test_pushed_compression);
    g_test_add_func("/config/openvpn-refusals", test_openvpn_refusals);
    g_test_add_func("/config/client-extras", test_client_extras);
    g_test_add_func("/config/cd", test_cd);
    g_test_add_func("/config/http-proxy", test_http_proxy);
    g_test_add_func("/config/http-proxy-forms", test_http_proxy_forms);
    g_test_add_func("/config/http-proxy-user-pass", test_http_proxy_user_pass);
    g_test_add_func("/config/socks-proxy", test_socks_proxy);
    g_test_add_func("/config/proxy-in-connections", test_proxy_in_connections);
    return g_test_run();
}
