/* SPDX-License-Identifier: MIT */
/*
 * Every directive the installed OpenVPN documents -- in `openvpn --help` and
 * in its manual page -- is known to the parser: applied, ignored with a
 * reason, or refused with a reason. Never "unknown directive".
 */
#include <string.h>

#include "config.h"

static char *find_openvpn(void)
{
    char *path = g_find_program_in_path("openvpn");
    if (path == NULL && g_file_test("/usr/sbin/openvpn", G_FILE_TEST_IS_EXECUTABLE))
        path = g_strdup("/usr/sbin/openvpn");
    return path;
}

/* "--name" words of TEXT; a name followed by '-' or '*' is a family
 * ("--reneg-*"), not a directive. */
static void add_names(GHashTable *names, const char *text, const char *pattern)
{
    g_autoptr(GRegex) re = g_regex_new(pattern, G_REGEX_MULTILINE, 0, NULL);
    g_assert_nonnull(re);
    g_autoptr(GMatchInfo) m = NULL;
    g_regex_match(re, text, 0, &m);
    while (g_match_info_matches(m)) {
        g_autofree char *n = g_match_info_fetch(m, 1);
        g_hash_table_add(names, g_strdup(n));
        g_match_info_next(m, NULL);
    }
}

static char *run(char **argv)
{
    char *out = NULL, *err = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, NULL, &error))
        g_error("cannot run %s: %s", argv[0], error->message);
    char *both = g_strconcat(out, err, NULL);
    g_free(out);
    g_free(err);
    return both;
}

static GHashTable *openvpn_names(const char *openvpn, guint *from_help, guint *from_man)
{
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char *help_argv[] = {(char *)openvpn, (char *)"--help", NULL};
    g_autofree char *help = run(help_argv);
    add_names(names, help, "--([a-z0-9]+(?:-[a-z0-9]+)*)(?![-a-z0-9*])");
    *from_help = g_hash_table_size(names);

    /* The manual page, when the package installed it: its directive
     * headings look like ".BI \-\-data\-ciphers\-fallback \ alg". */
    *from_man = 0;
    const char *man = "/usr/share/man/man8/openvpn.8.gz";
    if (g_file_test(man, G_FILE_TEST_EXISTS)) {
        char *gz_argv[] = {(char *)"gzip", (char *)"-dc", (char *)man, NULL};
        g_autofree char *text = run(gz_argv);
        GString *plain = g_string_new(text);
        g_string_replace(plain, "\\-", "-", 0);
        guint before = g_hash_table_size(names);
        add_names(names, plain->str, "^\\.BI? +--([a-z0-9]+(?:-[a-z0-9]+)*)(?![-a-z0-9*])");
        *from_man = g_hash_table_size(names) - before;
        g_string_free(plain, TRUE);
    }
    return names;
}

static void test_openvpn_directives_known(void)
{
    g_autofree char *openvpn = find_openvpn();
    if (openvpn == NULL) {
        g_test_skip("openvpn is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    guint from_help, from_man;
    g_autoptr(GHashTable) names = openvpn_names(openvpn, &from_help, &from_man);
    g_test_message("%u names from --help, %u more from the manual page", from_help, from_man);
    /* The extraction itself works: OpenVPN 2.6 documents well over 200. */
    g_assert_cmpuint(g_hash_table_size(names), >, 200);
    g_assert_true(g_hash_table_contains(names, "remote"));
    g_assert_true(g_hash_table_contains(names, "tls-crypt-v2"));

    GString *unknown = g_string_new(NULL);
    GString *silent = g_string_new(NULL);
    guint applied = 0, ignored = 0, refused = 0;
    GHashTableIter iter;
    gpointer key;
    g_hash_table_iter_init(&iter, names);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        const char *name = key;
        const char *reason = NULL;
        ShimmerDirectiveStatus st = shimmer_config_directive_status(name, &reason);
        switch (st) {
        case SHIMMER_DIRECTIVE_UNKNOWN:
            g_string_append_printf(unknown, " %s", name);
            continue;
        case SHIMMER_DIRECTIVE_APPLIED:
            applied++;
            break;
        case SHIMMER_DIRECTIVE_IGNORED:
            ignored++;
            break;
        case SHIMMER_DIRECTIVE_REFUSED:
            refused++;
            /* A refusal always says why. */
            if (reason == NULL || reason[0] == '\0')
                g_string_append_printf(silent, " %s", name);
            break;
        }
        /* And the parser agrees: never "unknown directive" for it. */
        g_autofree char *text =
            g_strdup_printf("client\ndev tun\nremote vpn.example.net\n%s\n", name);
        g_autoptr(ShimmerConfig) cfg =
            shimmer_config_parse("d.ovpn", NULL, text, strlen(text), NULL, NULL);
        GString *d = g_string_new(NULL);
        shimmer_config_format_diagnostics(cfg, d);
        if (strstr(d->str, "unknown directive") != NULL)
            g_string_append_printf(unknown, " %s(parser)", name);
        if (st == SHIMMER_DIRECTIVE_REFUSED) {
            g_autofree char *want = g_strdup_printf("d.ovpn:4: error: '%s'", name);
            if (strstr(d->str, want) == NULL)
                g_string_append_printf(silent, " %s(not refused)", name);
        }
        g_string_free(d, TRUE);
    }
    g_test_message("%u applied, %u ignored, %u refused", applied, ignored, refused);
    if (unknown->len > 0)
        g_error("OpenVPN 2.6 directives the parser does not know:%s", unknown->str);
    if (silent->len > 0)
        g_error("refused without a reason:%s", silent->str);
    g_string_free(unknown, TRUE);
    g_string_free(silent, TRUE);
}

/* What issue #10 found, and what OpenVPN 2.6 itself refuses. */
static void test_statuses(void)
{
    static const struct {
        const char *name;
        ShimmerDirectiveStatus status;
    } cases[] = {
        {"ns-cert-type", SHIMMER_DIRECTIVE_APPLIED},
        {"remote-cert-ku", SHIMMER_DIRECTIVE_APPLIED},
        {"comp-lzo", SHIMMER_DIRECTIVE_APPLIED},
        {"http-proxy", SHIMMER_DIRECTIVE_APPLIED},
        {"socks-proxy", SHIMMER_DIRECTIVE_APPLIED},
        {"local", SHIMMER_DIRECTIVE_APPLIED},
        {"cd", SHIMMER_DIRECTIVE_APPLIED},
        {"plugin", SHIMMER_DIRECTIVE_APPLIED},
        {"ecdh-curve", SHIMMER_DIRECTIVE_APPLIED},
        {"replay-window", SHIMMER_DIRECTIVE_APPLIED},
        {"tls-cipher", SHIMMER_DIRECTIVE_APPLIED},
        {"http-proxy-retry", SHIMMER_DIRECTIVE_IGNORED},
        {"socks-proxy-retry", SHIMMER_DIRECTIVE_IGNORED},
        {"down-pre", SHIMMER_DIRECTIVE_IGNORED},
        {"tls-exit", SHIMMER_DIRECTIVE_IGNORED},
        {"disable-occ", SHIMMER_DIRECTIVE_IGNORED},
        {"passtos", SHIMMER_DIRECTIVE_IGNORED},
        {"comp-noadapt", SHIMMER_DIRECTIVE_IGNORED},
        {"keying-material-exporter", SHIMMER_DIRECTIVE_IGNORED},
        {"keysize", SHIMMER_DIRECTIVE_REFUSED},
        {"key-method", SHIMMER_DIRECTIVE_REFUSED},
        {"ncp-disable", SHIMMER_DIRECTIVE_REFUSED},
        {"auth-user-pass-verify", SHIMMER_DIRECTIVE_REFUSED},
        {"secret", SHIMMER_DIRECTIVE_REFUSED},
        {"frobnicate", SHIMMER_DIRECTIVE_UNKNOWN},
        {"<connection>", SHIMMER_DIRECTIVE_UNKNOWN},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (shimmer_config_directive_status(cases[i].name, NULL) != cases[i].status)
            g_error("'%s': expected status %d, got %d", cases[i].name, cases[i].status,
                    shimmer_config_directive_status(cases[i].name, NULL));
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/directives/openvpn-known", test_openvpn_directives_known);
    g_test_add_func("/directives/statuses", test_statuses);
    return g_test_run();
}
