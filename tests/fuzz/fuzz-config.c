/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the .ovpn parser, its JSON and --inline writers, the
 * PUSH_REPLY parser, the client-config-dir parser and the CRL reader, fed
 * arbitrary bytes. Files the configuration names are
 * served from memory: names ending in ".crt", ".key", ".pem" get a slice of
 * the input itself, so the fuzzer also reaches the key-material checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "crl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *data;
    size_t size;
} Input;

static gboolean fuzz_loader(const char *path, GBytes **contents, GError **error, gpointer user)
{
    const Input *in = user;
    if (g_str_has_suffix(path, "missing")) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "No such file or directory");
        return FALSE;
    }
    /* The second half of the input doubles as the file's contents. */
    *contents = g_bytes_new(in->data + in->size / 2, in->size - in->size / 2);
    return TRUE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Input in = {data, size};
    ShimmerConfig *cfg = shimmer_config_parse("fuzz.ovpn", "/nonexistent", (const char *)data, size,
                                              fuzz_loader, &in);
    GString *diags = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, diags);
    g_string_free(diags, TRUE);
    char *json = shimmer_config_to_json(cfg);
    g_free(json);
    char *ovpn = shimmer_config_to_ovpn(cfg);
    if (ovpn != NULL) {
        /* What --inline writes must parse again without a loader. */
        ShimmerConfig *again =
            shimmer_config_parse("inline.ovpn", NULL, ovpn, strlen(ovpn), NULL, NULL);
        if (shimmer_config_has_errors(again)) {
            GString *d = g_string_new(NULL);
            shimmer_config_format_diagnostics(again, d);
            fprintf(stderr, "--inline output does not parse again:\n%s\n%s", d->str, ovpn);
            abort();
        }
        shimmer_config_free(again);
        g_free(ovpn);
    }
    /* The same bytes as a client-config-dir file of this (maybe) server. */
    ShimmerCcd *ccd = shimmer_ccd_parse("ccd/fuzz", (const char *)data, size, cfg);
    GString *cd = g_string_new(NULL);
    shimmer_ccd_format_diagnostics(ccd, cd);
    g_string_free(cd, TRUE);
    shimmer_ccd_free(ccd);
    shimmer_config_free(cfg);

    /* And as CRLs (every block must be read within its bounds). */
    ShimmerCrlSet *crls = shimmer_crl_set_new(data, size, NULL);
    if (crls != NULL) {
        (void)shimmer_crl_set_verify(crls, data, size, NULL, NULL);
        shimmer_crl_set_free(crls);
    }

    ShimmerConfig *push = shimmer_config_parse_push((const char *)data, size, NULL);
    json = shimmer_config_to_json(push);
    g_free(json);
    shimmer_config_free(push);
    return 0;
}
