/* SPDX-License-Identifier: MIT */
/*
 * shimmerctl: the command-line client of Shimmer.
 *
 * Exit codes (documented in README.md):
 *   0  success (for `check`: the configuration is usable)
 *   1  the configuration is refused (for `check`) or the operation failed
 *   2  usage error
 */
#include "shimmer-build-config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,
    EXIT_USAGE = 2,
};

static int usage(FILE *out)
{
    fprintf(out, "%s", _("Usage: shimmerctl COMMAND [ARGS]\n"
                         "\n"
                         "Commands:\n"
                         "  check [--json|--inline] FILE   check an OpenVPN configuration file\n"
                         "\n"
                         "check prints FILE:LINE diagnostics on standard error and exits 0 when\n"
                         "the file is usable, 1 when it is refused. --json prints the normalized\n"
                         "configuration (secrets redacted); --inline prints an equivalent\n"
                         "self-contained .ovpn with every referenced file inlined.\n"));
    return out == stdout ? EXIT_OK : EXIT_USAGE;
}

static int cmd_check(int argc, char **argv)
{
    bool json = false, inline_out = false;
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--inline") == 0)
            inline_out = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout);
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, _("shimmerctl check: unknown option '%s'\n"), argv[i]);
            return EXIT_USAGE;
        } else if (file == NULL)
            file = argv[i];
        else {
            fprintf(stderr, "%s", _("shimmerctl check: give one file\n"));
            return EXIT_USAGE;
        }
    }
    if (file == NULL || (json && inline_out)) {
        fprintf(stderr, "%s",
                _("Usage: shimmerctl check [--json|--inline] FILE\n"));
        return EXIT_USAGE;
    }

    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(file, &bytes, &error, NULL)) {
        fprintf(stderr, _("%s: error: cannot read the file: %s\n"), file, error->message);
        return EXIT_REFUSED;
    }
    gsize len;
    const char *text = g_bytes_get_data(bytes, &len);
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse(file, NULL, text ? text : "", len, shimmer_config_file_loader, NULL);

    g_autoptr(GString) diags = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, diags);
    fputs(diags->str, stderr);
    if (shimmer_config_has_errors(cfg))
        return EXIT_REFUSED;

    if (json) {
        g_autofree char *out = shimmer_config_to_json(cfg);
        fputs(out, stdout);
    } else if (inline_out) {
        char *out = shimmer_config_to_ovpn(cfg);
        fputs(out, stdout);
        explicit_bzero(out, strlen(out));
        g_free(out);
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
        return usage(stdout);
    fprintf(stderr, _("shimmerctl: unknown command '%s'\n"), argv[1]);
    return usage(stderr);
}
