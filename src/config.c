/* SPDX-License-Identifier: MIT */
/*
 * The .ovpn parser: from lexed items to a typed ShimmerConfig.
 *
 * One table lists every directive with where it may appear (file, <connection>
 * block, PUSH_REPLY), which role it implies, how many arguments it takes and
 * whether it may repeat. Everything not in the table is an error, unless the
 * file said `ignore-unknown-option` for it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-parser.h"
#include "config-private.h"
#include "crl.h"
#include "lexer.h"
#include "secure.h"

/* ---------- diagnostics ---------- */

static void diag_add(ShimmerConfig *cfg, ShimmerSeverity sev, guint line, char *msg)
{
    ShimmerDiagnostic *d = g_new0(ShimmerDiagnostic, 1);
    d->severity = sev;
    d->line = line;
    d->message = msg;
    g_ptr_array_add(cfg->diagnostics, d);
}

void G_GNUC_PRINTF(3, 4) cfg_error(Parser *p, guint line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(p->cfg, SHIMMER_SEVERITY_ERROR, line, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

void G_GNUC_PRINTF(3, 4) cfg_warn(Parser *p, guint line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_add(p->cfg, SHIMMER_SEVERITY_WARNING, line, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* ---------- small parsers ---------- */

bool cfg_parse_uint(const char *s, guint64 max, guint64 *out)
{
    if (s == NULL || !g_ascii_isdigit(s[0]))
        return false;
    guint64 v = 0;
    for (const char *c = s; *c; c++) {
        if (!g_ascii_isdigit(*c))
            return false;
        v = v * 10 + (guint64)(*c - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* An unsigned number argument, with an error naming the directive. */
bool cfg_arg_uint(Parser *p, const ShimmerItem *it, guint idx, guint64 min, guint64 max,
                  gint64 *out)
{
    guint64 v;
    if (!cfg_parse_uint(it->argv[idx], max, &v) || v < min) {
        cfg_error(p, it->line,
                  "'%s': '%s' is not a number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                  it->argv[0], it->argv[idx], min, max);
        return false;
    }
    *out = (gint64)v;
    return true;
}

bool cfg_is_ipv4(const char *s)
{
    struct in_addr a;
    return s != NULL && inet_pton(AF_INET, s, &a) == 1;
}

bool cfg_is_ipv6(const char *s)
{
    struct in6_addr a;
    return s != NULL && inet_pton(AF_INET6, s, &a) == 1;
}

bool cfg_is_netmask(const char *s)
{
    struct in_addr a;
    if (s == NULL || inet_pton(AF_INET, s, &a) != 1)
        return false;
    /* Ones from the top, then zeros: the inverse is 2^k - 1. */
    guint32 inv = ~g_ntohl(a.s_addr);
    return (inv & (inv + 1)) == 0;
}

/* "2001:db8::1/64" with the bits optional when BITS_OPTIONAL. */
bool cfg_is_ipv6_prefix(const char *s, bool bits_optional)
{
    if (s == NULL)
        return false;
    const char *slash = strchr(s, '/');
    if (slash == NULL)
        return bits_optional && cfg_is_ipv6(s);
    g_autofree char *addr = g_strndup(s, (gsize)(slash - s));
    guint64 bits;
    return cfg_is_ipv6(addr) && cfg_parse_uint(slash + 1, 128, &bits);
}

/* A host name as DNS allows, or an address. */
bool cfg_is_hostname(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 253)
        return false;
    if (cfg_is_ipv4(s) || cfg_is_ipv6(s))
        return true;
    for (const char *c = s; *c; c++) {
        if (!(g_ascii_isalnum(*c) || *c == '-' || *c == '.' || *c == '_'))
            return false;
    }
    return s[0] != '-' && s[0] != '.';
}

bool cfg_parse_proto(const char *s, ShimmerTransport *t, ShimmerFamily *f, bool *server_side)
{
    static const struct {
        const char *name;
        ShimmerTransport t;
        ShimmerFamily f;
        bool server;
    } protos[] = {
        {"udp", SHIMMER_TRANSPORT_UDP, SHIMMER_FAMILY_ANY, false},
        {"udp4", SHIMMER_TRANSPORT_UDP, SHIMMER_FAMILY_INET, false},
        {"udp6", SHIMMER_TRANSPORT_UDP, SHIMMER_FAMILY_INET6, false},
        {"tcp", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_ANY, false},
        {"tcp4", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_INET, false},
        {"tcp6", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_INET6, false},
        {"tcp-client", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_ANY, false},
        {"tcp4-client", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_INET, false},
        {"tcp6-client", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_INET6, false},
        {"tcp-server", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_ANY, true},
        {"tcp4-server", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_INET, true},
        {"tcp6-server", SHIMMER_TRANSPORT_TCP, SHIMMER_FAMILY_INET6, true},
    };
    for (gsize i = 0; i < G_N_ELEMENTS(protos); i++) {
        if (g_ascii_strcasecmp(s, protos[i].name) == 0) {
            *t = protos[i].t;
            *f = protos[i].f;
            if (server_side)
                *server_side = protos[i].server;
            return true;
        }
    }
    return false;
}

static const char *const cipher_names[] = {
    [SHIMMER_CIPHER_AES_128_GCM] = "AES-128-GCM",
    [SHIMMER_CIPHER_AES_192_GCM] = "AES-192-GCM",
    [SHIMMER_CIPHER_AES_256_GCM] = "AES-256-GCM",
    [SHIMMER_CIPHER_CHACHA20_POLY1305] = "CHACHA20-POLY1305",
};

const char *shimmer_cipher_name(ShimmerCipher c)
{
    return (guint)c < G_N_ELEMENTS(cipher_names) ? cipher_names[c] : "?";
}

static bool lookup_aead(const char *s, ShimmerCipher *out)
{
    for (guint i = 0; i < G_N_ELEMENTS(cipher_names); i++) {
        if (g_ascii_strcasecmp(s, cipher_names[i]) == 0) {
            *out = (ShimmerCipher)i;
            return true;
        }
    }
    /* OpenSSL's lower-case spellings, which providers also write. */
    if (g_ascii_strcasecmp(s, "id-aes128-GCM") == 0) {
        *out = SHIMMER_CIPHER_AES_128_GCM;
        return true;
    }
    if (g_ascii_strcasecmp(s, "id-aes256-GCM") == 0) {
        *out = SHIMMER_CIPHER_AES_256_GCM;
        return true;
    }
    return false;
}

/* Non-AEAD ciphers OpenVPN knows: accepted as names, never negotiated. */
static bool is_legacy_cipher(const char *s)
{
    static const char *const prefixes[] = {"AES-", "BF-",   "CAMELLIA-", "DES-",  "DES", "SEED-",
                                           "CAST", "ARIA-", "RC2-",      "IDEA-", "SM4-"};
    for (gsize i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        if (g_ascii_strncasecmp(s, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return false;
}

static const char *const digest_names[] = {
    [SHIMMER_DIGEST_SHA1] = "SHA1",     [SHIMMER_DIGEST_SHA224] = "SHA224",
    [SHIMMER_DIGEST_SHA256] = "SHA256", [SHIMMER_DIGEST_SHA384] = "SHA384",
    [SHIMMER_DIGEST_SHA512] = "SHA512",
};

const char *shimmer_digest_name(ShimmerDigest d)
{
    return (guint)d < G_N_ELEMENTS(digest_names) ? digest_names[d] : "?";
}

static bool lookup_digest(const char *s, ShimmerDigest *out)
{
    for (guint i = 0; i < G_N_ELEMENTS(digest_names); i++) {
        g_autofree char *dashed = g_strdup_printf("SHA-%s", digest_names[i] + 3);
        if (g_ascii_strcasecmp(s, digest_names[i]) == 0 || g_ascii_strcasecmp(s, dashed) == 0) {
            *out = (ShimmerDigest)i;
            return true;
        }
    }
    return false;
}

static bool lookup_tls_version(const char *s, ShimmerTlsVersion *v)
{
    static const char *const names[] = {NULL, "1.0", "1.1", "1.2", "1.3"};
    for (guint i = 1; i < G_N_ELEMENTS(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            *v = (ShimmerTlsVersion)i;
            return true;
        }
    }
    return false;
}

/* ---------- roles and repeats ---------- */

static const char *role_name(ShimmerRole r)
{
    return r == SHIMMER_ROLE_SERVER ? "server" : "client";
}

void cfg_set_role(Parser *p, ShimmerRole role, const ShimmerItem *it)
{
    if (role == SHIMMER_ROLE_UNSET || p->ctx == SHIMMER_CONTEXT_PUSH)
        return;
    if (p->cfg->role == SHIMMER_ROLE_UNSET) {
        p->cfg->role = role;
        p->role_line = it->line;
        p->role_directive = g_intern_string(it->argv[0]);
        return;
    }
    if (p->cfg->role != role) {
        cfg_error(p, it->line,
                  "'%s' is a %s directive, but '%s' at line %u made this a %s configuration: "
                  "client and server directives cannot be mixed",
                  it->argv[0], role_name(role), p->role_directive, p->role_line,
                  role_name(p->cfg->role));
    }
}

static char *join_args(const ShimmerItem *it)
{
    return g_strjoinv(" ", it->argv + 1);
}

/* A single-valued directive given again. As OpenVPN, the last one counts:
 * the same value is a repeat (warning, not applied again); another value
 * overrides the earlier one (warning naming both lines, then applied).
 * Returns false if the caller should not apply it. KEY lets aliases share
 * one slot (ncp-ciphers and data-ciphers). Directives that contradict each
 * other without being the same setting are errors, checked elsewhere. */
static bool check_repeat(Parser *p, const ShimmerItem *it, const char *key)
{
    g_autofree char *args = join_args(it);
    char *prev = g_hash_table_lookup(p->values, key);
    g_autofree char *now = g_strdup_printf("%u\t%s\t%s", it->line, it->argv[0], args);
    if (prev == NULL) {
        g_hash_table_insert(p->values, g_strdup(key), g_steal_pointer(&now));
        return true;
    }
    guint prev_line = (guint)strtoul(prev, NULL, 10);
    const char *prev_name = strchr(prev, '\t') + 1;
    const char *prev_args = strchr(prev_name, '\t') + 1;
    gsize name_len = (gsize)(prev_args - 1 - prev_name);
    if (strcmp(prev_args, args) == 0 && strncmp(prev_name, it->argv[0], name_len) == 0 &&
        it->argv[0][name_len] == '\0') {
        cfg_warn(p, it->line, "'%s' repeats line %u", it->argv[0], prev_line);
        return false;
    }
    cfg_warn(p, it->line, "'%s' overrides '%.*s' at line %u (as in OpenVPN, the last one counts)",
             it->argv[0], (int)name_len, prev_name, prev_line);
    g_hash_table_insert(p->values, g_strdup(key), g_steal_pointer(&now));
    return true;
}

/* ---------- files and blocks ---------- */

char *cfg_resolve_path(Parser *p, const char *path)
{
    if (g_path_is_absolute(path) || p->base_dir == NULL)
        return g_strdup(path);
    return g_build_filename(p->base_dir, path, NULL);
}

void cfg_blob_clear(ShimmerBlob *b)
{
    g_free(b->path);
    g_free(b->resolved);
    g_free(b->block_name);
    if (b->data != NULL) {
        if (b->secret)
            shimmer_wipe(b->data, b->len);
        g_free(b->data);
    }
    memset(b, 0, sizeof(*b));
}

/* Records what --inline output puts in place of a file reference. */
void cfg_set_inline_replacement(Parser *p, guint line, char *text)
{
    g_hash_table_insert(p->cfg->priv->replacements, GUINT_TO_POINTER(line), text);
}

/* Fills BLOB from the directive's file argument ARG (or the inline block with
 * the directive's name when ARG is NULL or "[inline]"). Returns false after
 * an error. */
/* --inline output leaves lines FIRST..LAST out (an overridden directive or
 * block). */
static void drop_lines(Parser *p, guint first, guint last)
{
    for (guint l = first; l <= last; l++)
        cfg_set_inline_replacement(p, l, g_strdup(""));
}

/* Forgets what an overridden directive loaded, and its lines in --inline. */
static void blob_override(Parser *p, ShimmerBlob *blob)
{
    if (blob->is_inline) {
        ShimmerItem *block = g_hash_table_lookup(p->blocks, blob->block_name);
        if (block != NULL)
            drop_lines(p, block->line, block->end_line);
    }
    if (blob->directive_line > 0)
        drop_lines(p, blob->directive_line, blob->directive_line);
    cfg_blob_clear(blob);
}

bool cfg_load_blob(Parser *p, const ShimmerItem *it, const char *arg, ShimmerBlob *blob,
                   bool secret)
{
    const char *name = it->argv[0];
    bool want_inline = arg == NULL || g_ascii_strcasecmp(arg, "[inline]") == 0;
    ShimmerItem *block = g_hash_table_lookup(p->blocks, name);
    bool synthetic = block != NULL && block->line == it->line; /* a block alone */

    if (!want_inline && block != NULL && p->ctx == SHIMMER_CONTEXT_FILE) {
        /* Given as a file and inline: as OpenVPN, the later of the two. */
        if (block->line > it->line) {
            /* The block is applied at the end (as `NAME [inline]`); the file
             * is never read, as OpenVPN never reads it. */
            drop_lines(p, it->line, it->line);
            g_autofree char *key = g_strdup(name);
            g_hash_table_remove(p->values, key);
            cfg_warn(p, it->line,
                     "'%s %s' is overridden by the <%s> block at line %u (as in OpenVPN, the "
                     "later one counts)",
                     name, arg, name, block->line);
            return false;
        }
        cfg_warn(p, it->line,
                 "'%s %s' overrides the <%s> block at line %u (as in OpenVPN, the later one "
                 "counts)",
                 name, arg, name, block->line);
        g_hash_table_insert(p->block_used, g_strdup(name), GUINT_TO_POINTER(it->line));
        drop_lines(p, block->line, block->end_line);
        block = NULL;
    }
    if (blob->present)
        blob_override(p, blob);

    if (want_inline) {
        if (block == NULL) {
            cfg_error(p, it->line, "'%s [inline]' but the file has no <%s> block", name, name);
            return false;
        }
        g_hash_table_insert(p->block_used, g_strdup(name), GUINT_TO_POINTER(it->line));
        blob->is_inline = true;
        blob->block_name = g_strdup(name);
        blob->data = (guint8 *)shimmer_memdup0(block->body, block->body_len);
        blob->len = block->body_len;
        blob->directive_line = synthetic ? 0 : it->line;
    } else {
        if (p->ctx == SHIMMER_CONTEXT_PUSH) {
            cfg_error(p, it->line, "'%s': a pushed option cannot name a file", name);
            return false;
        }
        if (p->loader == NULL) {
            cfg_error(p, it->line, "'%s %s': this profile must be self-contained (inline the file)",
                      name, arg);
            return false;
        }
        g_autofree char *resolved = cfg_resolve_path(p, arg);
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) bytes = NULL;
        if (!p->loader(resolved, &bytes, &error, p->loader_data)) {
            cfg_error(p, it->line, "'%s': cannot read '%s': %s", name, arg,
                      error ? error->message : "unknown error");
            return false;
        }
        gsize len;
        const guint8 *data = g_bytes_get_data(bytes, &len);
        if (len > SHIMMER_CONFIG_MAX_FILE) {
            cfg_error(p, it->line, "'%s': '%s' is larger than %d bytes", name, arg,
                      SHIMMER_CONFIG_MAX_FILE);
            return false;
        }
        blob->path = g_strdup(arg);
        blob->resolved = g_steal_pointer(&resolved);
        blob->data = (guint8 *)shimmer_memdup0(data, len);
        blob->len = len;
        blob->directive_line = it->line;
        /* The loader's copy may hold a secret too. */
        if (secret && g_bytes_get_size(bytes) > 0 && g_bytes_get_data(bytes, NULL) != NULL)
            shimmer_wipe((void *)g_bytes_get_data(bytes, NULL), len);
    }
    blob->present = true;
    blob->secret = secret;
    blob->line = it->line;
    return true;
}

/* The text that replaces a file reference in --inline output. */
static char *inline_block_text(const char *name, const guint8 *data, gsize len)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "<%s>\n", name);
    g_string_append_len(s, (const char *)data, (gssize)len);
    if (len > 0 && data[len - 1] != '\n')
        g_string_append_c(s, '\n');
    g_string_append_printf(s, "</%s>", name);
    return g_string_free(s, FALSE);
}

void cfg_record_inline(Parser *p, const ShimmerItem *it, const ShimmerBlob *blob,
                       const char *prefix_lines)
{
    if (blob->is_inline)
        return;
    /* A file holding a line like "</ca>" would end the block early. */
    g_autofree char *closing = g_strdup_printf("</%s>", it->argv[0]);
    g_auto(GStrv) lines = g_strsplit((const char *)blob->data, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        if (strcmp(g_strstrip(lines[i]), closing) == 0) {
            g_free(p->cfg->priv->inline_error);
            p->cfg->priv->inline_error =
                g_strdup_printf("line %u: '%s' holds the line %s and cannot be inlined", it->line,
                                blob->path, closing);
        }
        shimmer_wipe(lines[i], strlen(lines[i]));
    }
    g_autofree char *block = inline_block_text(it->argv[0], blob->data, blob->len);
    cfg_set_inline_replacement(p, it->line,
                               g_strdup_printf("%s%s", prefix_lines ? prefix_lines : "", block));
}

/* ---------- handlers: role, device, transport ---------- */

static void h_client(Parser *p, const ShimmerItem *it)
{
    p->cfg->client = true;
    p->cfg->tls_client = true;
    p->cfg->pull = true;
}

static void h_tls_client(Parser *p, const ShimmerItem *it)
{
    p->cfg->tls_client = true;
}

static void h_pull(Parser *p, const ShimmerItem *it)
{
    p->cfg->pull = true;
}

static void h_tls_server(Parser *p, const ShimmerItem *it)
{
    p->cfg->tls_server = true;
}

static void h_mode(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[1], "server") == 0) {
        cfg_set_role(p, SHIMMER_ROLE_SERVER, it);
        p->cfg->mode_server = true;
    } else if (strcmp(it->argv[1], "p2p") != 0) {
        cfg_error(p, it->line, "'mode': '%s' is not 'server' or 'p2p'", it->argv[1]);
    }
}

static void h_dev(Parser *p, const ShimmerItem *it)
{
    const char *d = it->argv[1];
    if (g_str_has_prefix(d, "tap")) {
        cfg_error(p, it->line, "'dev %s': TAP (layer 2) devices are not supported; use 'dev tun'",
                  d);
        return;
    }
    if (strcmp(d, "null") == 0) {
        cfg_error(p, it->line, "'dev null' is not supported: Shimmer needs a tun device");
        return;
    }
    if (strlen(d) >= 16 || strchr(d, '/') != NULL) {
        cfg_error(p, it->line, "'dev': '%s' is not a valid interface name", d);
        return;
    }
    g_free(p->cfg->dev);
    p->cfg->dev = g_strdup(d);
}

static void h_dev_type(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[1], "tun") != 0) {
        cfg_error(p, it->line, "'dev-type %s': only tun is supported (TAP is not)", it->argv[1]);
        return;
    }
    g_free(p->cfg->dev_type);
    p->cfg->dev_type = g_strdup("tun");
}

static void h_proto(Parser *p, const ShimmerItem *it)
{
    ShimmerTransport t;
    ShimmerFamily f;
    bool server_side = false;
    if (!cfg_parse_proto(it->argv[1], &t, &f, &server_side)) {
        cfg_error(p, it->line,
                  "'proto': unknown protocol '%s' (udp, udp4, udp6, tcp, tcp-client, "
                  "tcp4-client, tcp6-client)",
                  it->argv[1]);
        return;
    }
    if (server_side)
        cfg_set_role(p, SHIMMER_ROLE_SERVER, it);
    if (p->cur == NULL && g_str_has_suffix(it->argv[1], "-client"))
        p->proto_client_line = it->line;
    if (p->cur != NULL) {
        p->cur->transport = (gint)t;
        p->cur->family = f;
        p->cur->family_set = true;
        return;
    }
    p->cfg->transport = t;
    p->cfg->family = f;
}

bool cfg_arg_port(Parser *p, const ShimmerItem *it, guint idx, gint *out)
{
    gint64 v;
    if (!cfg_arg_uint(p, it, idx, 1, 65535, &v))
        return false;
    *out = (gint)v;
    return true;
}

static void h_remote(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_hostname(it->argv[1])) {
        cfg_error(p, it->line, "'remote': '%s' is not a host name or address", it->argv[1]);
        return;
    }
    ConnDraft *d;
    if (p->cur != NULL) {
        d = p->cur;
        if (++d->remotes > 1) {
            cfg_error(p, it->line, "'remote': a <connection> block holds exactly one remote");
            return;
        }
    } else {
        d = g_new0(ConnDraft, 1);
        d->port = d->transport = d->connect_timeout = d->explicit_exit_notify = d->tun_mtu =
            d->mssfix = -1;
        d->line = it->line;
        g_ptr_array_add(p->drafts, d);
    }
    d->host = g_strdup(it->argv[1]);
    if (it->argc > 2 && !cfg_arg_port(p, it, 2, &d->port))
        return;
    if (it->argc > 3) {
        ShimmerTransport t;
        ShimmerFamily f;
        bool server_side;
        if (!cfg_parse_proto(it->argv[3], &t, &f, &server_side) || server_side) {
            cfg_error(p, it->line, "'remote': unknown protocol '%s'", it->argv[3]);
            return;
        }
        d->transport = (gint)t;
        d->family = f;
        d->family_set = true;
    }
}

static void h_port(Parser *p, const ShimmerItem *it)
{
    gint port;
    if (!cfg_arg_port(p, it, 1, &port))
        return;
    const char *name = it->argv[0];
    if (p->cur != NULL && strcmp(name, "lport") != 0) {
        p->cur->port = port;
        return;
    }
    if (strcmp(name, "port") == 0) {
        p->port_line = (gint)it->line;
        p->port_value = port;
        if (p->rport_line == 0)
            p->cfg->rport = (guint16)port;
    } else if (strcmp(name, "rport") == 0) {
        p->rport_line = (gint)it->line;
        p->rport_value = port;
        p->cfg->rport = (guint16)port;
    }
}

static void h_lport(Parser *p, const ShimmerItem *it)
{
    gint64 v;
    if (!cfg_arg_uint(p, it, 1, 0, 65535, &v))
        return;
    p->lport_line = (gint)it->line;
    p->cfg->lport = (gint)v;
}

static void h_flag_remote_random(Parser *p, const ShimmerItem *it)
{
    p->cfg->remote_random = true;
}

static void h_remote_random_hostname(Parser *p, const ShimmerItem *it)
{
    p->cfg->remote_random_hostname = true;
}

static void h_connect_retry(Parser *p, const ShimmerItem *it)
{
    gint64 v;
    if (!cfg_arg_uint(p, it, 1, 0, 86400, &v))
        return;
    p->cfg->connect_retry = (guint)v;
    if (it->argc > 2) {
        if (!cfg_arg_uint(p, it, 2, 1, 86400, &v))
            return;
        p->cfg->connect_retry_max_delay = (guint)v;
    }
}

static void h_connect_retry_max(Parser *p, const ShimmerItem *it)
{
    gint64 v;
    if (!cfg_arg_uint(p, it, 1, 0, G_MAXINT32, &v))
        return;
    if (p->cur != NULL) {
        /* OpenVPN parses it there but keeps only the block's connection
         * settings, so it has no effect; it does not here either. */
        cfg_warn(p, it->line,
                 "'connect-retry-max' inside a <connection> block has no effect (OpenVPN only "
                 "uses the top-level one): ignored");
        return;
    }
    p->cfg->connect_retry_max = (gint)v;
}

static void h_local(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_hostname(it->argv[1])) {
        cfg_error(p, it->line, "'local': '%s' is not a host name or address", it->argv[1]);
        return;
    }
    char **slot = p->cur != NULL ? &p->cur->local : &p->cfg->local;
    g_free(*slot);
    *slot = g_strdup(it->argv[1]);
}

/* `cd DIR` was applied before the main pass (collect_cd): OpenVPN reads
 * every file after parsing, so it moves all of the file's relative paths. */
static void h_cd(Parser *p, const ShimmerItem *it)
{
}

static void h_proto_force(Parser *p, const ShimmerItem *it)
{
    if (g_ascii_strcasecmp(it->argv[1], "udp") == 0)
        p->cfg->proto_force = SHIMMER_TRANSPORT_UDP;
    else if (g_ascii_strcasecmp(it->argv[1], "tcp") == 0)
        p->cfg->proto_force = SHIMMER_TRANSPORT_TCP;
    else
        cfg_error(p, it->line, "'proto-force': '%s' is not udp or tcp", it->argv[1]);
}

static void h_replay_window(Parser *p, const ShimmerItem *it)
{
    gint64 n, t = -1;
    /* OpenVPN's limits; Shimmer's window holds at most 1024 packets. */
    if (!cfg_arg_uint(p, it, 1, 0, 65536, &n))
        return;
    if (it->argc > 2 && !cfg_arg_uint(p, it, 2, 0, 600, &t))
        return;
    if (n > 1024) {
        cfg_warn(p, it->line,
                 "'replay-window %s': Shimmer keeps at most 1024 packets; using 1024 (packets "
                 "reordered further are dropped)",
                 it->argv[1]);
        n = 1024;
    } else if (n == 0) {
        n = 1;
    }
    p->cfg->replay_window = (guint)n;
    p->cfg->replay_time = (gint)t;
}

static void h_plugin(Parser *p, const ShimmerItem *it)
{
    /* Decided once the role is known (finish_plugins). */
    ShimmerItem *copy = g_new0(ShimmerItem, 1);
    copy->kind = SHIMMER_ITEM_DIRECTIVE;
    copy->line = copy->end_line = it->line;
    copy->argv = g_strdupv(it->argv);
    copy->argc = it->argc;
    g_ptr_array_add(p->plugins, copy);
}

static void h_connect_timeout(Parser *p, const ShimmerItem *it)
{
    gint64 v;
    if (!cfg_arg_uint(p, it, 1, 1, 86400, &v))
        return;
    if (p->cur != NULL)
        p->cur->connect_timeout = (gint)v;
    else
        p->cfg->connect_timeout = (guint)v;
}

static void h_resolv_retry(Parser *p, const ShimmerItem *it)
{
    gint64 v;
    if (strcmp(it->argv[1], "infinite") == 0)
        p->cfg->resolv_retry = -1;
    else if (cfg_arg_uint(p, it, 1, 0, G_MAXINT32, &v))
        p->cfg->resolv_retry = (gint)v;
}

/* ---------- handlers: TLS identity ---------- */

static void h_ca(Parser *p, const ShimmerItem *it)
{
    ShimmerBlob *b = &p->cfg->ca;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, false))
        return;
    g_autoptr(GError) error = NULL;
    guint n;
    if (!shimmer_keys_check_certs(b->data, b->len, FALSE, &n, &error)) {
        cfg_error(p, it->line, "'ca': %s", error->message);
        return;
    }
    cfg_record_inline(p, it, b, NULL);
}

static void h_extra_certs(Parser *p, const ShimmerItem *it)
{
    ShimmerBlob *b = &p->cfg->extra_certs;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, false))
        return;
    g_autoptr(GError) error = NULL;
    guint n;
    if (!shimmer_keys_check_certs(b->data, b->len, FALSE, &n, &error)) {
        cfg_error(p, it->line, "'extra-certs': %s", error->message);
        return;
    }
    cfg_record_inline(p, it, b, NULL);
}

static void h_cert(Parser *p, const ShimmerItem *it)
{
    ShimmerBlob *b = &p->cfg->cert;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, false))
        return;
    g_autoptr(GError) error = NULL;
    guint n;
    if (!shimmer_keys_check_certs(b->data, b->len, TRUE, &n, &error)) {
        cfg_error(p, it->line, "'cert': %s", error->message);
        return;
    }
    cfg_record_inline(p, it, b, NULL);
}

static void h_key(Parser *p, const ShimmerItem *it)
{
    ShimmerBlob *b = &p->cfg->key;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    g_autoptr(GError) error = NULL;
    gboolean encrypted = FALSE;
    if (!shimmer_keys_check_private_key(b->data, b->len, NULL, &encrypted, &error)) {
        cfg_error(p, it->line, "'key': %s", error->message);
        return;
    }
    p->cfg->key_encrypted = encrypted;
    cfg_record_inline(p, it, b, NULL);
}

static void h_pkcs12(Parser *p, const ShimmerItem *it)
{
    ShimmerBlob *b = &p->cfg->pkcs12;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    g_autoptr(GError) error = NULL;
    if (!shimmer_keys_check_pkcs12(b->data, b->len, b->is_inline, &error)) {
        cfg_error(p, it->line, "'pkcs12': %s", error->message);
        return;
    }
    if (b->is_inline) {
        /* Keep DER in the typed result whichever way it came. */
        GString *clean = g_string_sized_new(b->len);
        for (gsize i = 0; i < b->len; i++) {
            if (!g_ascii_isspace(b->data[i]))
                g_string_append_c(clean, (char)b->data[i]);
        }
        gsize der_len = 0;
        guint8 *der = g_base64_decode(clean->str, &der_len);
        shimmer_wipe(clean->str, clean->len);
        g_string_free(clean, TRUE);
        shimmer_wipe(b->data, b->len);
        g_free(b->data);
        b->data = der;
        b->len = der_len;
    } else {
        /* A file holds DER; the inline block holds base64. */
        g_autofree char *b64 = g_base64_encode(b->data, b->len);
        GString *s = g_string_new("<pkcs12>\n");
        for (gsize i = 0, n = strlen(b64); i < n; i += 64) {
            g_string_append_len(s, b64 + i, (gssize)MIN(64, n - i));
            g_string_append_c(s, '\n');
        }
        g_string_append(s, "</pkcs12>");
        shimmer_wipe(b64, strlen(b64));
        cfg_set_inline_replacement(p, it->line, g_string_free(s, FALSE));
    }
}

static void h_crl_verify(Parser *p, const ShimmerItem *it)
{
    if (it->argc > 2) {
        if (strcmp(it->argv[2], "dir") == 0)
            cfg_error(p, it->line,
                      "'crl-verify %s dir': a CRL directory is not supported; "
                      "give a CRL file",
                      it->argv[1]);
        else
            cfg_error(p, it->line, "'crl-verify': unexpected argument '%s'", it->argv[2]);
        return;
    }
    ShimmerBlob *b = &p->cfg->crl_verify;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, false))
        return;
    g_autoptr(GError) error = NULL;
    if (!shimmer_keys_check_crl(b->data, b->len, &error)) {
        cfg_error(p, it->line, "'crl-verify': %s", error->message);
        return;
    }
    g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(b->data, b->len, &error);
    if (set == NULL) {
        cfg_error(p, it->line, "'crl-verify': %s", error->message);
        return;
    }
    if (shimmer_crl_set_count_not_der(set) > 0)
        cfg_warn(p, it->line,
                 "'crl-verify': %u of the %u CRLs encode their dates in a form DER does not "
                 "allow (OpenSSL reads it, GnuTLS refuses the whole CRL); Shimmer reads the "
                 "revoked serial numbers itself",
                 shimmer_crl_set_count_not_der(set), shimmer_crl_set_count(set));
    cfg_record_inline(p, it, b, NULL);
}

static void h_askpass(Parser *p, const ShimmerItem *it)
{
    p->cfg->askpass = true;
    if (it->argc < 2 && g_hash_table_lookup(p->blocks, "askpass") == NULL)
        return; /* prompt the user */
    ShimmerBlob *b = &p->cfg->askpass_file;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    cfg_record_inline(p, it, b, NULL);
}

static void h_tls_version_min(Parser *p, const ShimmerItem *it)
{
    p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_VERSION] = it->line;
    p->cfg->tls_version_min_or_highest = false;
    if (!lookup_tls_version(it->argv[1], &p->cfg->tls_version_min)) {
        cfg_error(p, it->line, "'tls-version-min': unknown version '%s' (1.0, 1.1, 1.2, 1.3)",
                  it->argv[1]);
        return;
    }
    if (it->argc > 2) {
        if (strcmp(it->argv[2], "or-highest") != 0) {
            cfg_error(p, it->line, "'tls-version-min': unexpected argument '%s'", it->argv[2]);
            return;
        }
        p->cfg->tls_version_min_or_highest = true;
    }
}

static void h_tls_version_max(Parser *p, const ShimmerItem *it)
{
    p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_VERSION] = it->line;
    if (!lookup_tls_version(it->argv[1], &p->cfg->tls_version_max))
        cfg_error(p, it->line, "'tls-version-max': unknown version '%s' (1.0, 1.1, 1.2, 1.3)",
                  it->argv[1]);
}

static void h_string(Parser *p, const ShimmerItem *it)
{
    char **slot = NULL;
    const char *n = it->argv[0];
    if (strcmp(n, "tls-cipher") == 0) {
        slot = &p->cfg->tls_cipher;
        p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_TLS_CIPHER] = it->line;
    } else if (strcmp(n, "tls-ciphersuites") == 0) {
        slot = &p->cfg->tls_ciphersuites;
        p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_TLS_CIPHERSUITES] = it->line;
    } else if (strcmp(n, "tls-groups") == 0) {
        slot = &p->cfg->tls_groups;
        p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_TLS_GROUPS] = it->line;
    } else if (strcmp(n, "ecdh-curve") == 0) {
        slot = &p->cfg->ecdh_curve;
        p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_ECDH_CURVE] = it->line;
    } else if (strcmp(n, "tls-cert-profile") == 0) {
        slot = &p->cfg->tls_cert_profile;
        p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_TLS_CERT_PROFILE] = it->line;
    } else if (strcmp(n, "data-ciphers-fallback") == 0) {
        slot = &p->cfg->data_ciphers_fallback;
        p->fallback_line = (gint)it->line;
    } else if (strcmp(n, "route-gateway") == 0)
        slot = &p->cfg->route_gateway;
    else if (strcmp(n, "route-ipv6-gateway") == 0)
        slot = &p->cfg->route_ipv6_gateway;
    g_assert(slot != NULL);
    g_free(*slot);
    *slot = g_strdup(it->argv[1]);
}

static void h_remote_cert_tls(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[1], "server") == 0)
        p->cfg->remote_cert_tls = SHIMMER_CERT_TLS_SERVER;
    else if (strcmp(it->argv[1], "client") == 0)
        p->cfg->remote_cert_tls = SHIMMER_CERT_TLS_CLIENT;
    else
        cfg_error(p, it->line, "'remote-cert-tls': '%s' is not 'server' or 'client'", it->argv[1]);
}

static void h_ns_cert_type(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[1], "server") == 0)
        p->cfg->ns_cert_type = SHIMMER_NS_CERT_SERVER;
    else if (strcmp(it->argv[1], "client") == 0)
        p->cfg->ns_cert_type = SHIMMER_NS_CERT_CLIENT;
    else
        cfg_error(p, it->line, "'ns-cert-type': '%s' is not 'server' or 'client'", it->argv[1]);
}

static void h_remote_cert_ku(Parser *p, const ShimmerItem *it)
{
    g_autoptr(GArray) list = g_array_new(FALSE, FALSE, sizeof(guint));
    for (guint i = 1; i < it->argc; i++) {
        const char *v = it->argv[i];
        const char *hex = g_ascii_strncasecmp(v, "0x", 2) == 0 ? v + 2 : v;
        guint64 n = 0;
        gsize digits = strlen(hex);
        bool ok = digits > 0 && digits <= 4;
        for (const char *c = hex; ok && *c; c++) {
            ok = g_ascii_isxdigit(*c);
            n = n * 16 + (guint64)g_ascii_xdigit_value(*c);
        }
        if (!ok) {
            cfg_error(p, it->line, "'remote-cert-ku': '%s' is not a hexadecimal key usage value",
                      v);
            return;
        }
        /* OpenVPN compares the first eight key usage bits only (decipherOnly
         * is left out): a value beyond them, or 0, can never match. */
        if (n == 0 || n > 0xFF) {
            cfg_error(p, it->line,
                      "'remote-cert-ku': '%s' can never match (the values are the key usage "
                      "bits from digitalSignature = 80 to encipherOnly = 01)",
                      v);
            return;
        }
        guint u = (guint)n;
        g_array_append_val(list, u);
    }
    g_array_set_size(p->cfg->remote_cert_ku, 0);
    g_array_append_vals(p->cfg->remote_cert_ku, list->data, list->len);
    p->cfg->remote_cert_ku_set = true;
}

static void h_remote_cert_eku(Parser *p, const ShimmerItem *it)
{
    g_free(p->cfg->remote_cert_eku);
    p->cfg->remote_cert_eku = g_strdup(it->argv[1]);
}

static void h_verify_x509_name(Parser *p, const ShimmerItem *it)
{
    ShimmerX509NameType type = SHIMMER_X509_NAME_SUBJECT;
    if (it->argc > 2) {
        if (strcmp(it->argv[2], "subject") == 0)
            type = SHIMMER_X509_NAME_SUBJECT;
        else if (strcmp(it->argv[2], "name") == 0)
            type = SHIMMER_X509_NAME_NAME;
        else if (strcmp(it->argv[2], "name-prefix") == 0)
            type = SHIMMER_X509_NAME_PREFIX;
        else {
            cfg_error(p, it->line,
                      "'verify-x509-name': unknown type '%s' (subject, name, "
                      "name-prefix)",
                      it->argv[2]);
            return;
        }
    }
    if (it->argv[1][0] == '\0') {
        cfg_error(p, it->line, "'verify-x509-name': the name is empty");
        return;
    }
    p->cfg->verify_x509_type = type;
    g_free(p->cfg->verify_x509_name);
    p->cfg->verify_x509_name = g_strdup(it->argv[1]);
}

static void add_fingerprint(Parser *p, guint line, const char *text)
{
    guint8 fp[32];
    g_autoptr(GError) error = NULL;
    if (!shimmer_keys_parse_fingerprint(text, fp, &error)) {
        cfg_error(p, line, "'peer-fingerprint': %s", error->message);
        return;
    }
    g_array_append_vals(p->cfg->peer_fingerprints, fp, 1);
}

static void h_peer_fingerprint(Parser *p, const ShimmerItem *it)
{
    if (it->argc > 1 && g_ascii_strcasecmp(it->argv[1], "[inline]") != 0) {
        add_fingerprint(p, it->line, it->argv[1]);
        return;
    }
    ShimmerItem *block = g_hash_table_lookup(p->blocks, "peer-fingerprint");
    if (block == NULL) {
        cfg_error(p, it->line,
                  "'peer-fingerprint' needs a fingerprint or a <peer-fingerprint> block");
        return;
    }
    g_hash_table_insert(p->block_used, g_strdup("peer-fingerprint"), GUINT_TO_POINTER(it->line));
    g_auto(GStrv) lines = g_strsplit(block->body, "\n", -1);
    guint n = 0;
    for (guint i = 0; lines[i] != NULL; i++) {
        g_strstrip(lines[i]);
        if (lines[i][0] == '\0' || lines[i][0] == '#' || lines[i][0] == ';')
            continue;
        add_fingerprint(p, block->line + 1 + i, lines[i]);
        n++;
    }
    if (n == 0)
        cfg_error(p, block->line, "'peer-fingerprint': the block holds no fingerprint");
}

static void h_verify_client_cert(Parser *p, const ShimmerItem *it)
{
    p->verify_client_cert_line = it->line;
    const char *v = it->argv[1];
    if (strcmp(v, "none") == 0)
        p->cfg->verify_client_cert = SHIMMER_VERIFY_CLIENT_CERT_NONE;
    else if (strcmp(v, "optional") == 0)
        p->cfg->verify_client_cert = SHIMMER_VERIFY_CLIENT_CERT_OPTIONAL;
    else if (strcmp(v, "require") == 0)
        p->cfg->verify_client_cert = SHIMMER_VERIFY_CLIENT_CERT_REQUIRE;
    else
        cfg_error(p, it->line, "'verify-client-cert': '%s' is not none, optional or require", v);
}

/* ---------- handlers: control channel wrapping ---------- */

static bool parse_direction(Parser *p, const ShimmerItem *it, const char *s, gint *out)
{
    if (strcmp(s, "0") == 0 || strcmp(s, "1") == 0) {
        *out = s[0] - '0';
        return true;
    }
    cfg_error(p, it->line, "'%s': key direction '%s' is not 0 or 1", it->argv[0], s);
    return false;
}

static void h_tls_auth(Parser *p, const ShimmerItem *it)
{
    p->tls_auth_line = (gint)it->line;
    ShimmerBlob *b = &p->cfg->tls_auth;
    gint dir = -1;
    if (it->argc > 2 && !parse_direction(p, it, it->argv[2], &dir))
        return;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    g_autoptr(GError) error = NULL;
    if (!shimmer_keys_parse_static(b->data, b->len, p->cfg->static_key, &error)) {
        cfg_error(p, it->line, "'tls-auth': %s", error->message);
        return;
    }
    p->tls_auth_dir = dir;
    if (dir >= 0) {
        /* Two directives saying two directions: a mistake, not a repeat. */
        if (p->key_direction_line > 0 && p->key_direction_value != dir) {
            cfg_error(p, it->line,
                      "'tls-auth': direction %d conflicts with 'key-direction %d' at "
                      "line %d",
                      dir, p->key_direction_value, p->key_direction_line);
            return;
        }
        p->cfg->key_direction = dir;
    }
    g_autofree char *prefix = dir >= 0 ? g_strdup_printf("key-direction %d\n", dir) : NULL;
    cfg_record_inline(p, it, b, prefix);
}

static void h_key_direction(Parser *p, const ShimmerItem *it)
{
    gint dir;
    if (!parse_direction(p, it, it->argv[1], &dir))
        return;
    if (p->tls_auth_dir >= 0 && p->tls_auth_dir != dir) {
        cfg_error(p, it->line,
                  "'key-direction %d' conflicts with the direction %d given at line %d", dir,
                  p->tls_auth_dir, p->tls_auth_line);
        return;
    }
    p->key_direction_line = (gint)it->line;
    p->key_direction_value = dir;
    p->cfg->key_direction = dir;
}

static void h_tls_crypt(Parser *p, const ShimmerItem *it)
{
    p->tls_crypt_line = (gint)it->line;
    ShimmerBlob *b = &p->cfg->tls_crypt;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    g_autoptr(GError) error = NULL;
    if (!shimmer_keys_parse_static(b->data, b->len, p->cfg->static_key, &error)) {
        cfg_error(p, it->line, "'tls-crypt': %s", error->message);
        return;
    }
    cfg_record_inline(p, it, b, NULL);
}

static void h_tls_crypt_v2(Parser *p, const ShimmerItem *it)
{
    p->tls_crypt_v2_line = (gint)it->line;
    if (it->argc > 2 && strcmp(it->argv[2], "force-cookie") != 0 &&
        strcmp(it->argv[2], "allow-noncookie") != 0) {
        cfg_error(p, it->line, "'tls-crypt-v2': unexpected argument '%s'", it->argv[2]);
        return;
    }
    ShimmerBlob *b = &p->cfg->tls_crypt_v2;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    g_autoptr(GError) error = NULL;
    int kind = shimmer_keys_tls_crypt_v2_kind(b->data, b->len);
    if (kind == 2) {
        if (!shimmer_keys_parse_tls_crypt_v2_server(b->data, b->len, p->cfg->tls_crypt_v2_server,
                                                    &error)) {
            cfg_error(p, it->line, "'tls-crypt-v2': %s", error->message);
            return;
        }
        p->cfg->tls_crypt_v2_is_server_key = true;
        cfg_set_role(p, SHIMMER_ROLE_SERVER, it);
    } else {
        if (p->cfg->tls_crypt_v2_client != NULL)
            shimmer_free_secret(p->cfg->tls_crypt_v2_client, sizeof(*p->cfg->tls_crypt_v2_client));
        p->cfg->tls_crypt_v2_client = g_new0(ShimmerTlsCryptV2ClientKey, 1);
        if (!shimmer_keys_parse_tls_crypt_v2_client(b->data, b->len, p->cfg->tls_crypt_v2_client,
                                                    &error)) {
            cfg_error(p, it->line, "'tls-crypt-v2': %s", error->message);
            return;
        }
        cfg_set_role(p, SHIMMER_ROLE_CLIENT, it);
    }
    cfg_record_inline(p, it, b, NULL);
}

/* ---------- handlers: data channel ---------- */

static void h_auth(Parser *p, const ShimmerItem *it)
{
    if (g_ascii_strcasecmp(it->argv[1], "none") == 0) {
        cfg_error(p, it->line,
                  "'auth none' is not supported: control packets must be authenticated");
        return;
    }
    if (!lookup_digest(it->argv[1], &p->cfg->auth)) {
        cfg_error(p, it->line,
                  "'auth': unsupported digest '%s' (SHA1, SHA224, SHA256, SHA384, "
                  "SHA512)",
                  it->argv[1]);
        return;
    }
    p->cfg->auth_set = true;
}

static void h_cipher(Parser *p, const ShimmerItem *it)
{
    ShimmerCipher c;
    const char *name = it->argv[1];
    p->cipher_line = (gint)it->line;
    if (g_ascii_strcasecmp(name, "none") == 0) {
        cfg_error(p, it->line,
                  "'cipher none' is not supported: the data channel is always "
                  "encrypted");
        return;
    }
    if (!lookup_aead(name, &c) && !is_legacy_cipher(name)) {
        cfg_error(p, it->line, "'cipher': unknown cipher '%s'", name);
        return;
    }
    g_free(p->cfg->cipher);
    p->cfg->cipher = g_strdup(name);
}

static void h_data_ciphers(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[0], "ncp-ciphers") == 0 && p->ctx != SHIMMER_CONTEXT_PUSH)
        cfg_warn(p, it->line, "'ncp-ciphers' is 'data-ciphers' since OpenVPN 2.5");
    g_auto(GStrv) names = g_strsplit(it->argv[1], ":", -1);
    GArray *list = p->cfg->data_ciphers;
    g_array_set_size(list, 0);
    guint legacy = 0;
    for (guint i = 0; names[i] != NULL; i++) {
        const char *n = names[i];
        bool optional = n[0] == '?';
        if (optional)
            n++;
        if (n[0] == '\0')
            continue;
        ShimmerCipher c;
        if (lookup_aead(n, &c)) {
            bool dup = false;
            for (guint j = 0; j < list->len; j++)
                dup |= g_array_index(list, ShimmerCipher, j) == c;
            if (!dup)
                g_array_append_val(list, c);
        } else if (is_legacy_cipher(n)) {
            legacy++;
            cfg_warn(p, it->line, "'%s': '%s' is not an AEAD cipher and will not be negotiated",
                     it->argv[0], n);
        } else if (!optional) {
            cfg_error(p, it->line, "'%s': unknown cipher '%s'", it->argv[0], n);
            return;
        }
    }
    if (list->len == 0) {
        cfg_error(p, it->line,
                  "'%s': the list holds no AEAD cipher (AES-128-GCM, AES-256-GCM, "
                  "CHACHA20-POLY1305); Shimmer only negotiates AEAD ciphers",
                  it->argv[0]);
        return;
    }
    p->cfg->data_ciphers_set = true;
}

static void set_compression(Parser *p, const ShimmerItem *it, ShimmerCompFraming framing,
                            ShimmerCompAlgorithm alg)
{
    p->cfg->comp = framing;
    p->cfg->comp_alg = alg;
    p->cfg->comp_line = it->line;
    if (alg == SHIMMER_COMP_ALG_NONE || p->ctx == SHIMMER_CONTEXT_PUSH)
        return;
    g_autofree char *args = g_strjoinv(" ", it->argv);
    cfg_warn(p, it->line,
             "'%s': the server may compress what it sends; Shimmer decompresses it (as OpenVPN "
             "2.6 does) but never compresses its own packets. Compression lets an attacker who "
             "can inject traffic learn secrets from the packet sizes (VORACLE): ask for it to "
             "be turned off on the server",
             args);
}

static void h_comp_lzo(Parser *p, const ShimmerItem *it)
{
    /* Every form frames with a header byte; only `no` refuses LZO data. */
    const char *mode = it->argc > 1 ? it->argv[1] : "adaptive";
    if (strcmp(mode, "no") == 0)
        set_compression(p, it, SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_NONE);
    else if (strcmp(mode, "yes") == 0 || strcmp(mode, "adaptive") == 0)
        set_compression(p, it, SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO);
    else
        cfg_error(p, it->line, "'comp-lzo': '%s' is not yes, no or adaptive", mode);
}

static void h_compress(Parser *p, const ShimmerItem *it)
{
    const char *alg = it->argc > 1 ? it->argv[1] : "stub";
    if (strcmp(alg, "stub") == 0)
        set_compression(p, it, SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_NONE);
    else if (strcmp(alg, "stub-v2") == 0)
        set_compression(p, it, SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_NONE);
    else if (strcmp(alg, "lzo") == 0)
        set_compression(p, it, SHIMMER_COMP_LZO_NO, SHIMMER_COMP_ALG_LZO);
    else if (strcmp(alg, "lz4") == 0)
        set_compression(p, it, SHIMMER_COMP_STUB, SHIMMER_COMP_ALG_LZ4);
    else if (strcmp(alg, "lz4-v2") == 0)
        set_compression(p, it, SHIMMER_COMP_STUB_V2, SHIMMER_COMP_ALG_LZ4);
    else if (strcmp(alg, "migrate") == 0 && p->ctx != SHIMMER_CONTEXT_PUSH) {
        /* A server's way off compression: it pushes the framing each
         * client's own comp-lzo line asks for. */
        cfg_set_role(p, SHIMMER_ROLE_SERVER, it);
        p->cfg->comp_migrate = true;
        set_compression(p, it, SHIMMER_COMP_NONE, SHIMMER_COMP_ALG_NONE);
    } else
        cfg_error(p, it->line,
                  "'compress': unknown algorithm '%s' (stub, stub-v2, lzo, lz4, lz4-v2%s)", alg,
                  p->ctx == SHIMMER_CONTEXT_PUSH ? "" : ", migrate");
}

static void h_allow_compression(Parser *p, const ShimmerItem *it)
{
    const char *v = it->argv[1];
    p->cfg->allow_compression_line = it->line;
    if (strcmp(v, "no") == 0)
        p->cfg->allow_compression = SHIMMER_ALLOW_COMP_NO;
    else if (strcmp(v, "asym") == 0)
        p->cfg->allow_compression = SHIMMER_ALLOW_COMP_ASYM;
    else if (strcmp(v, "yes") == 0)
        cfg_error(p, it->line,
                  "'allow-compression yes' asks to compress what Shimmer sends, which it never "
                  "does: compressing before encrypting lets an attacker who can inject traffic "
                  "learn secrets from the packet sizes (VORACLE). Use 'allow-compression asym' "
                  "(decompress only, OpenVPN 2.6's default with a compression directive)");
    else
        cfg_error(p, it->line, "'allow-compression': '%s' is not no, asym or yes", v);
}

/* ---------- handlers: credentials ---------- */

static void h_auth_user_pass(Parser *p, const ShimmerItem *it)
{
    ShimmerConfig *cfg = p->cfg;
    bool have_block = g_hash_table_lookup(p->blocks, "auth-user-pass") != NULL;
    if (it->argc < 2 && !have_block) {
        cfg->auth_user_pass = SHIMMER_AUTH_USER_PASS_PROMPT;
        return;
    }
    ShimmerBlob *b = &cfg->auth_user_pass_file;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    /* Line 1 the user name, line 2 the password (if absent, prompt for it). */
    g_auto(GStrv) lines = g_strsplit((const char *)b->data, "\n", 3);
    if (lines[0] == NULL || g_strstrip(lines[0])[0] == '\0') {
        cfg_error(p, it->line, "'auth-user-pass': the first line of %s must hold the user name",
                  b->is_inline ? "the <auth-user-pass> block" : b->path);
    } else {
        g_clear_pointer(&cfg->username, g_free);
        g_clear_pointer(&cfg->password, shimmer_str_free_secret);
        cfg->username = g_strdup(lines[0]);
        if (lines[1] != NULL) {
            g_strchomp(lines[1]);
            gsize l = strlen(lines[1]);
            if (l > 0 && lines[1][l - 1] == '\r')
                lines[1][l - 1] = '\0';
            if (lines[1][0] != '\0')
                cfg->password = g_strdup(lines[1]);
        }
        cfg->auth_user_pass = SHIMMER_AUTH_USER_PASS_STORED;
    }
    for (guint i = 0; lines[i] != NULL; i++)
        shimmer_wipe(lines[i], strlen(lines[i]));
    cfg_record_inline(p, it, b, NULL);
}

static void h_auth_retry(Parser *p, const ShimmerItem *it)
{
    const char *v = it->argv[1];
    if (strcmp(v, "none") == 0)
        p->cfg->auth_retry = SHIMMER_AUTH_RETRY_NONE;
    else if (strcmp(v, "nointeract") == 0)
        p->cfg->auth_retry = SHIMMER_AUTH_RETRY_NOINTERACT;
    else if (strcmp(v, "interact") == 0)
        p->cfg->auth_retry = SHIMMER_AUTH_RETRY_INTERACT;
    else
        cfg_error(p, it->line, "'auth-retry': '%s' is not none, nointeract or interact", v);
}

static void h_auth_nocache(Parser *p, const ShimmerItem *it)
{
    p->cfg->auth_nocache = true;
}

static void h_static_challenge(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[2], "0") != 0 && strcmp(it->argv[2], "1") != 0) {
        cfg_error(p, it->line, "'static-challenge': the echo flag '%s' is not 0 or 1", it->argv[2]);
        return;
    }
    g_free(p->cfg->static_challenge);
    p->cfg->static_challenge = g_strdup(it->argv[1]);
    p->cfg->static_challenge_echo = it->argv[2][0] == '1';
}

/* ---------- handlers: timers ---------- */

static void h_reneg_sec(Parser *p, const ShimmerItem *it)
{
    gint64 v;
    if (!cfg_arg_uint(p, it, 1, 0, G_MAXINT32, &v))
        return;
    p->cfg->reneg_sec = v;
    p->cfg->reneg_sec_min = -1;
    if (it->argc > 2) {
        gint64 m;
        if (!cfg_arg_uint(p, it, 2, 0, (guint64)v, &m))
            return;
        p->cfg->reneg_sec_min = m;
    }
}

static void h_int(Parser *p, const ShimmerItem *it)
{
    const char *n = it->argv[0];
    ShimmerConfig *cfg = p->cfg;
    gint64 v;
    guint64 max = G_MAXINT32;
    guint64 min = 0;
    if (strcmp(n, "reneg-bytes") == 0 || strcmp(n, "reneg-pkts") == 0)
        max = G_MAXINT64;
    if (strcmp(n, "tun-mtu") == 0) {
        min = 576;
        max = 65535;
    } else if (strcmp(n, "mark") == 0) {
        max = G_MAXUINT32;
    } else if (strcmp(n, "max-clients") == 0 || strcmp(n, "peer-id") == 0) {
        min = strcmp(n, "max-clients") == 0 ? 1 : 0;
        max = strcmp(n, "peer-id") == 0 ? 0xFFFFFF : G_MAXINT32;
    } else if (strcmp(n, "route-metric") == 0) {
        max = 65535;
    }
    if (!cfg_arg_uint(p, it, 1, min, max, &v))
        return;
    if (strcmp(n, "reneg-bytes") == 0)
        cfg->reneg_bytes = v;
    else if (strcmp(n, "reneg-pkts") == 0)
        cfg->reneg_pkts = v;
    else if (strcmp(n, "hand-window") == 0)
        cfg->hand_window = (gint)v;
    else if (strcmp(n, "tran-window") == 0)
        cfg->tran_window = (gint)v;
    else if (strcmp(n, "ping") == 0) {
        cfg->ping = (gint)v;
        p->ping_line = (gint)it->line;
    } else if (strcmp(n, "ping-restart") == 0) {
        cfg->ping_restart = (gint)v;
        p->ping_restart_line = (gint)it->line;
    } else if (strcmp(n, "ping-exit") == 0)
        cfg->ping_exit = (gint)v;
    else if (strcmp(n, "tun-mtu") == 0) {
        if (p->cur != NULL)
            p->cur->tun_mtu = (gint)v;
        else
            cfg->tun_mtu = (guint)v;
    } else if (strcmp(n, "mark") == 0)
        cfg->mark = (gint)(guint32)v;
    else if (strcmp(n, "max-clients") == 0)
        cfg->max_clients = (gint)v;
    else if (strcmp(n, "peer-id") == 0)
        cfg->peer_id = (gint)v;
    else if (strcmp(n, "route-metric") == 0)
        cfg->route_metric = (gint)v;
    else
        g_assert_not_reached();
}

static void h_keepalive(Parser *p, const ShimmerItem *it)
{
    gint64 a, b;
    if (!cfg_arg_uint(p, it, 1, 1, 86400, &a) || !cfg_arg_uint(p, it, 2, 1, 86400 * 2, &b))
        return;
    if (b < a * 2)
        cfg_warn(p, it->line,
                 "'keepalive %s %s': the timeout should be at least twice the "
                 "interval",
                 it->argv[1], it->argv[2]);
    p->keepalive_line = (gint)it->line;
    p->cfg->keepalive_interval = (gint)a;
    p->cfg->keepalive_timeout = (gint)b;
}

static void h_connect_freq_initial(Parser *p, const ShimmerItem *it)
{
    gint64 max, secs;
    if (!cfg_arg_uint(p, it, 1, 1, 10000000, &max) || !cfg_arg_uint(p, it, 2, 1, 86400, &secs))
        return;
    p->cfg->connect_freq_initial_max = (gint)max;
    p->cfg->connect_freq_initial_seconds = (gint)secs;
}

static void h_explicit_exit_notify(Parser *p, const ShimmerItem *it)
{
    gint64 v = 1;
    if (it->argc > 1 && !cfg_arg_uint(p, it, 1, 0, 3600, &v))
        return;
    if (p->cur != NULL)
        p->cur->explicit_exit_notify = (gint)v;
    else
        p->cfg->explicit_exit_notify = (gint)v;
}

static void h_mssfix(Parser *p, const ShimmerItem *it)
{
    gint64 v = 1492;
    if (it->argc > 1 && !cfg_arg_uint(p, it, 1, 0, 65535, &v))
        return;
    if (v != 0 && v < 100) {
        cfg_error(p, it->line, "'mssfix %s' is too small", it->argv[1]);
        return;
    }
    p->cfg->mssfix_mtu = p->cfg->mssfix_fixed = false;
    if (it->argc > 2) {
        if (strcmp(it->argv[2], "mtu") == 0)
            p->cfg->mssfix_mtu = true;
        else if (strcmp(it->argv[2], "fixed") == 0)
            p->cfg->mssfix_fixed = true;
        else {
            cfg_error(p, it->line, "'mssfix': unexpected argument '%s' (mtu or fixed)",
                      it->argv[2]);
            return;
        }
    }
    if (p->cur != NULL)
        p->cur->mssfix = (gint)v;
    else
        p->cfg->mssfix = (gint)v;
}

/* ---------- handlers: routes, addresses, DNS ---------- */

static bool route_keyword(const char *s)
{
    return strcmp(s, "vpn_gateway") == 0 || strcmp(s, "net_gateway") == 0 ||
           strcmp(s, "remote_host") == 0;
}

static void h_route(Parser *p, const ShimmerItem *it)
{
    const char *net = it->argv[1];
    if (!route_keyword(net) && !cfg_is_hostname(net)) {
        cfg_error(p, it->line,
                  "'route': '%s' is not an address, host name, vpn_gateway, "
                  "net_gateway or remote_host",
                  net);
        return;
    }
    const char *mask = it->argc > 2 && strcmp(it->argv[2], "default") != 0 ? it->argv[2] : NULL;
    if (mask != NULL && !cfg_is_netmask(mask)) {
        cfg_error(p, it->line, "'route': '%s' is not a netmask", mask);
        return;
    }
    const char *gw = it->argc > 3 && strcmp(it->argv[3], "default") != 0 ? it->argv[3] : NULL;
    if (gw != NULL && !cfg_is_ipv4(gw) && !route_keyword(gw)) {
        cfg_error(p, it->line,
                  "'route': gateway '%s' is not an IPv4 address, vpn_gateway, "
                  "net_gateway or remote_host",
                  gw);
        return;
    }
    gint64 metric = -1;
    if (it->argc > 4 && strcmp(it->argv[4], "default") != 0 &&
        !cfg_arg_uint(p, it, 4, 0, G_MAXINT32, &metric))
        return;
    ShimmerRoute *r = g_new0(ShimmerRoute, 1);
    r->network = g_strdup(net);
    r->netmask = g_strdup(mask);
    r->gateway = g_strdup(gw);
    r->metric = (gint)metric;
    g_ptr_array_add(p->cfg->routes, r);
}

static void h_route_ipv6(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv6_prefix(it->argv[1], true)) {
        cfg_error(p, it->line, "'route-ipv6': '%s' is not an IPv6 prefix", it->argv[1]);
        return;
    }
    const char *gw = it->argc > 2 && strcmp(it->argv[2], "default") != 0 ? it->argv[2] : NULL;
    if (gw != NULL && !cfg_is_ipv6(gw)) {
        cfg_error(p, it->line, "'route-ipv6': gateway '%s' is not an IPv6 address", gw);
        return;
    }
    gint64 metric = -1;
    if (it->argc > 3 && strcmp(it->argv[3], "default") != 0 &&
        !cfg_arg_uint(p, it, 3, 0, G_MAXINT32, &metric))
        return;
    ShimmerRoute6 *r = g_new0(ShimmerRoute6, 1);
    r->prefix = g_strdup(it->argv[1]);
    r->gateway = g_strdup(gw);
    r->metric = (gint)metric;
    g_ptr_array_add(p->cfg->routes6, r);
}

static void h_route_nopull(Parser *p, const ShimmerItem *it)
{
    p->cfg->route_nopull = true;
}

static void h_pull_filter(Parser *p, const ShimmerItem *it)
{
    ShimmerPullFilterAction a;
    if (strcmp(it->argv[1], "accept") == 0)
        a = SHIMMER_PULL_FILTER_ACCEPT;
    else if (strcmp(it->argv[1], "ignore") == 0)
        a = SHIMMER_PULL_FILTER_IGNORE;
    else if (strcmp(it->argv[1], "reject") == 0)
        a = SHIMMER_PULL_FILTER_REJECT;
    else {
        cfg_error(p, it->line, "'pull-filter': '%s' is not accept, ignore or reject", it->argv[1]);
        return;
    }
    ShimmerPullFilter *f = g_new0(ShimmerPullFilter, 1);
    f->action = a;
    f->text = g_strdup(it->argv[2]);
    g_ptr_array_add(p->cfg->pull_filters, f);
}

static void h_redirect_gateway(Parser *p, const ShimmerItem *it)
{
    static const struct {
        const char *name;
        guint flag;
    } flags[] = {
        {"local", SHIMMER_REDIRECT_LOCAL},
        {"autolocal", SHIMMER_REDIRECT_AUTOLOCAL},
        {"def1", SHIMMER_REDIRECT_DEF1},
        {"bypass-dhcp", SHIMMER_REDIRECT_BYPASS_DHCP},
        {"bypass-dns", SHIMMER_REDIRECT_BYPASS_DNS},
        {"block-local", SHIMMER_REDIRECT_BLOCK_LOCAL},
        {"ipv6", SHIMMER_REDIRECT_IPV6},
        {"!ipv4", SHIMMER_REDIRECT_NOT_IPV4},
    };
    guint v = SHIMMER_REDIRECT_ENABLED;
    for (guint i = 1; i < it->argc; i++) {
        guint j;
        for (j = 0; j < G_N_ELEMENTS(flags); j++) {
            if (strcmp(it->argv[i], flags[j].name) == 0)
                break;
        }
        if (j == G_N_ELEMENTS(flags)) {
            cfg_error(p, it->line, "'%s': unknown flag '%s'", it->argv[0], it->argv[i]);
            return;
        }
        v |= flags[j].flag;
    }
    p->cfg->redirect_gateway = v;
}

static void h_dhcp_option(Parser *p, const ShimmerItem *it)
{
    static const char *const with_value[] = {"DNS",
                                             "DNS6",
                                             "DOMAIN",
                                             "DOMAIN-SEARCH",
                                             "ADAPTER_DOMAIN_SUFFIX",
                                             "WINS",
                                             "NBDD",
                                             "NTP",
                                             "NBT",
                                             "NBS",
                                             "PROXY_HTTP",
                                             "PROXY_HTTPS",
                                             "PROXY_AUTO_CONFIG_URL"};
    const char *type = it->argv[1];
    if (g_ascii_strcasecmp(type, "DISABLE-NBT") == 0) {
        if (it->argc > 2) {
            cfg_error(p, it->line, "'dhcp-option DISABLE-NBT' takes no value");
            return;
        }
    } else {
        gsize i;
        for (i = 0; i < G_N_ELEMENTS(with_value); i++) {
            if (g_ascii_strcasecmp(type, with_value[i]) == 0)
                break;
        }
        if (i == G_N_ELEMENTS(with_value)) {
            cfg_error(p, it->line, "'dhcp-option': unknown option '%s'", type);
            return;
        }
        if (it->argc < 3) {
            cfg_error(p, it->line, "'dhcp-option %s' needs a value", type);
            return;
        }
        if (it->argc > 3) {
            cfg_error(p, it->line, "'dhcp-option %s': too many arguments", type);
            return;
        }
        if (g_ascii_strcasecmp(type, "DNS") == 0 && !cfg_is_ipv4(it->argv[2]) &&
            !cfg_is_ipv6(it->argv[2])) {
            cfg_error(p, it->line, "'dhcp-option DNS': '%s' is not an address", it->argv[2]);
            return;
        }
        if (g_ascii_strcasecmp(type, "DNS6") == 0 && !cfg_is_ipv6(it->argv[2])) {
            cfg_error(p, it->line, "'dhcp-option DNS6': '%s' is not an IPv6 address", it->argv[2]);
            return;
        }
    }
    ShimmerDhcpOption *o = g_new0(ShimmerDhcpOption, 1);
    o->type = g_ascii_strup(type, -1);
    o->value = it->argc > 2 ? g_strdup(it->argv[2]) : NULL;
    g_ptr_array_add(p->cfg->dhcp_options, o);
}

static void dns_server_free(gpointer data)
{
    ShimmerDnsServer *s = data;
    g_ptr_array_unref(s->addresses);
    g_ptr_array_unref(s->resolve_domains);
    g_free(s->sni);
    g_free(s);
}

static ShimmerDnsServer *dns_server_get(Parser *p, gint prio)
{
    GPtrArray *a = p->cfg->dns_servers;
    guint i;
    for (i = 0; i < a->len; i++) {
        ShimmerDnsServer *s = g_ptr_array_index(a, i);
        if (s->priority == prio)
            return s;
        if (s->priority > prio)
            break;
    }
    ShimmerDnsServer *s = g_new0(ShimmerDnsServer, 1);
    s->priority = prio;
    s->addresses = g_ptr_array_new_with_free_func(g_free);
    s->resolve_domains = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_insert(a, (gint)i, s);
    return s;
}

/* An address with an optional port: "1.2.3.4", "1.2.3.4:53", "[::1]:53", "::1". */
static bool is_dns_address(const char *s)
{
    if (cfg_is_ipv4(s) || cfg_is_ipv6(s))
        return true;
    guint64 port;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        g_autofree char *a = g_strndup(s + 1, (gsize)(close - s - 1));
        return cfg_is_ipv6(a) && cfg_parse_uint(close + 2, 65535, &port) && port > 0;
    }
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return false;
    g_autofree char *a = g_strndup(s, (gsize)(colon - s));
    return cfg_is_ipv4(a) && cfg_parse_uint(colon + 1, 65535, &port) && port > 0;
}

static void h_dns(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[1], "search-domains") == 0) {
        if (it->argc < 3) {
            cfg_error(p, it->line, "'dns search-domains' needs at least one domain");
            return;
        }
        for (guint i = 2; i < it->argc; i++) {
            if (!cfg_is_hostname(it->argv[i])) {
                cfg_error(p, it->line, "'dns search-domains': '%s' is not a domain", it->argv[i]);
                return;
            }
        }
        for (guint i = 2; i < it->argc; i++)
            g_ptr_array_add(p->cfg->dns_search_domains, g_strdup(it->argv[i]));
        return;
    }
    if (strcmp(it->argv[1], "server") != 0) {
        cfg_error(p, it->line, "'dns': unknown keyword '%s' (search-domains or server)",
                  it->argv[1]);
        return;
    }
    if (it->argc < 5) {
        cfg_error(p, it->line, "'dns server' needs a priority, a keyword and a value");
        return;
    }
    guint64 prio_abs;
    const char *ps = it->argv[2];
    bool neg = ps[0] == '-';
    if (!cfg_parse_uint(neg ? ps + 1 : ps, 128, &prio_abs)) {
        cfg_error(p, it->line, "'dns server': priority '%s' is not a number from -128 to 127", ps);
        return;
    }
    gint prio = neg ? -(gint)prio_abs : (gint)prio_abs;
    if (prio > 127) {
        cfg_error(p, it->line, "'dns server': priority '%s' is not a number from -128 to 127", ps);
        return;
    }
    const char *kw = it->argv[3];
    ShimmerDnsServer *s = dns_server_get(p, prio);
    if (strcmp(kw, "address") == 0) {
        if (it->argc - 4 > 8) {
            cfg_error(p, it->line, "'dns server address': at most 8 addresses");
            return;
        }
        for (guint i = 4; i < it->argc; i++) {
            if (!is_dns_address(it->argv[i])) {
                cfg_error(p, it->line, "'dns server address': '%s' is not an address", it->argv[i]);
                return;
            }
            g_ptr_array_add(s->addresses, g_strdup(it->argv[i]));
        }
    } else if (strcmp(kw, "resolve-domains") == 0) {
        for (guint i = 4; i < it->argc; i++)
            g_ptr_array_add(s->resolve_domains, g_strdup(it->argv[i]));
    } else if (strcmp(kw, "dnssec") == 0 || strcmp(kw, "transport") == 0 ||
               strcmp(kw, "sni") == 0 || strcmp(kw, "port") == 0) {
        if (it->argc != 5) {
            cfg_error(p, it->line, "'dns server %s' takes one value", kw);
            return;
        }
        const char *v = it->argv[4];
        if (strcmp(kw, "dnssec") == 0) {
            if (strcmp(v, "yes") == 0)
                s->dnssec = SHIMMER_DNSSEC_YES;
            else if (strcmp(v, "no") == 0)
                s->dnssec = SHIMMER_DNSSEC_NO;
            else if (strcmp(v, "optional") == 0)
                s->dnssec = SHIMMER_DNSSEC_OPTIONAL;
            else
                cfg_error(p, it->line, "'dns server dnssec': '%s' is not yes, no or optional", v);
        } else if (strcmp(kw, "transport") == 0) {
            if (strcmp(v, "plain") == 0)
                s->transport = SHIMMER_DNS_TRANSPORT_PLAIN;
            else if (strcmp(v, "DoH") == 0)
                s->transport = SHIMMER_DNS_TRANSPORT_DOH;
            else if (strcmp(v, "DoT") == 0)
                s->transport = SHIMMER_DNS_TRANSPORT_DOT;
            else
                cfg_error(p, it->line, "'dns server transport': '%s' is not plain, DoH or DoT", v);
        } else if (strcmp(kw, "sni") == 0) {
            g_free(s->sni);
            s->sni = g_strdup(v);
        } else {
            gint64 port;
            if (cfg_arg_uint(p, it, 4, 1, 65535, &port))
                s->port = (guint16)port;
        }
    } else {
        cfg_error(p, it->line,
                  "'dns server': unknown keyword '%s' (address, resolve-domains, "
                  "dnssec, transport, sni, port)",
                  kw);
    }
}

static void h_ifconfig(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv4(it->argv[1]) || !cfg_is_ipv4(it->argv[2])) {
        cfg_error(p, it->line, "'ifconfig': '%s %s' are not two IPv4 addresses", it->argv[1],
                  it->argv[2]);
        return;
    }
    g_free(p->cfg->ifconfig_local);
    g_free(p->cfg->ifconfig_remote);
    p->cfg->ifconfig_local = g_strdup(it->argv[1]);
    p->cfg->ifconfig_remote = g_strdup(it->argv[2]);
}

static void h_ifconfig_ipv6(Parser *p, const ShimmerItem *it)
{
    if (!cfg_is_ipv6_prefix(it->argv[1], true) || !cfg_is_ipv6(it->argv[2])) {
        cfg_error(p, it->line,
                  "'ifconfig-ipv6': '%s %s' is not an IPv6 address/bits and an IPv6 "
                  "address",
                  it->argv[1], it->argv[2]);
        return;
    }
    g_free(p->cfg->ifconfig_ipv6_local);
    g_free(p->cfg->ifconfig_ipv6_remote);
    p->cfg->ifconfig_ipv6_local = g_strdup(it->argv[1]);
    p->cfg->ifconfig_ipv6_remote = g_strdup(it->argv[2]);
}

static void h_topology(Parser *p, const ShimmerItem *it)
{
    p->topology_line = it->line;
    const char *v = it->argv[1];
    if (strcmp(v, "net30") == 0)
        p->cfg->topology = SHIMMER_TOPOLOGY_NET30;
    else if (strcmp(v, "p2p") == 0)
        p->cfg->topology = SHIMMER_TOPOLOGY_P2P;
    else if (strcmp(v, "subnet") == 0)
        p->cfg->topology = SHIMMER_TOPOLOGY_SUBNET;
    else
        cfg_error(p, it->line, "'topology': '%s' is not net30, p2p or subnet", v);
}

static void h_block_ipv6(Parser *p, const ShimmerItem *it)
{
    p->cfg->block_ipv6 = true;
}

/* ---------- handlers: pushed-only ---------- */

static void h_auth_token(Parser *p, const ShimmerItem *it)
{
    if (p->cfg->auth_token != NULL)
        shimmer_str_free_secret(p->cfg->auth_token);
    p->cfg->auth_token = g_strdup(it->argv[1]);
}

static void h_auth_token_user(Parser *p, const ShimmerItem *it)
{
    g_free(p->cfg->auth_token_user);
    p->cfg->auth_token_user = g_strdup(it->argv[1]);
}

static void h_protocol_flags(Parser *p, const ShimmerItem *it)
{
    for (guint i = 1; i < it->argc; i++) {
        const char *f = it->argv[i];
        if (strcmp(f, "cc-exit") == 0)
            p->cfg->protocol_flag_cc_exit = true;
        else if (strcmp(f, "tls-ekm") == 0)
            p->cfg->protocol_flag_tls_ekm = true;
        else if (strcmp(f, "dyn-tls-crypt") == 0)
            p->cfg->protocol_flag_dyn_tls_crypt = true;
        else
            cfg_warn(p, it->line, "'protocol-flags': unknown flag '%s' ignored", f);
    }
}

static void h_key_derivation(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[1], "tls-ekm") == 0)
        p->cfg->key_derivation_tls_ekm = true;
    else
        cfg_error(p, it->line, "'key-derivation': unknown method '%s'", it->argv[1]);
}

static void h_push_continuation(Parser *p, const ShimmerItem *it)
{
    if (strcmp(it->argv[1], "1") == 0 || strcmp(it->argv[1], "2") == 0)
        p->cfg->push_continuation = it->argv[1][0] - '0';
    else
        cfg_error(p, it->line, "'push-continuation': '%s' is not 1 or 2", it->argv[1]);
}

/* ---------- handlers: ignored, refused, meta ---------- */

static void h_ignored(Parser *p, const ShimmerItem *it)
{
    g_ptr_array_add(p->cfg->ignored, g_strdup(it->argv[0]));
}

static void h_ignore_unknown(Parser *p, const ShimmerItem *it)
{
    /* Collected before the main pass (see collect_ignore_unknown). */
}

static void h_connection_marker(Parser *p, const ShimmerItem *it);

#define ANY             (CTX_FILE)
#define FC              (CTX_FILE | CTX_CONN)
#define FP              (CTX_FILE | CTX_PUSH)
#define FCP             (CTX_FILE | CTX_CONN | CTX_PUSH)
#define C               SHIMMER_ROLE_CLIENT
#define S               SHIMMER_ROLE_SERVER
#define U               SHIMMER_ROLE_UNSET
#define NOMAX           SHIMMER_LEXER_MAX_ARGS
#define PKCS11_NOTE     "PKCS#11 tokens are not supported: export the certificate and key (pkcs12)"
#define STANDALONE_NOTE "a command of the openvpn program, not a configuration directive"
#define MANAGEMENT_NOTE "shimmerd is controlled over D-Bus (shimmerctl), not a management socket"

static const Directive directives[] = {
    /* role */
    {"client", 0, 0, ANY, C, 0, h_client, NULL},
    {"tls-client", 0, 0, ANY, C, 0, h_tls_client, NULL},
    {"pull", 0, 0, ANY, C, 0, h_pull, NULL},
    {"tls-server", 0, 0, ANY, S, 0, h_tls_server, NULL},
    {"mode", 1, 1, ANY, U, 0, h_mode, NULL},
    /* device */
    {"dev", 1, 1, ANY, U, 0, h_dev, NULL},
    {"dev-type", 1, 1, ANY, U, 0, h_dev_type, NULL},
    {"topology", 1, 1, FP, U, 0, h_topology, NULL},
    {"tun-mtu", 1, 2, FCP, U, 0, h_int, NULL},
    {"mssfix", 0, 2, FC, U, 0, h_mssfix, NULL},
    {"mark", 1, 1, ANY, U, 0, h_int, NULL},
    /* transport */
    {"proto", 1, 1, FC, U, 0, h_proto, NULL},
    {"remote", 1, 3, FC, C, F_MULTI, h_remote, NULL},
    {"port", 1, 1, FC, U, 0, h_port, NULL},
    {"rport", 1, 1, FC, C, 0, h_port, NULL},
    {"lport", 1, 1, FC, U, 0, h_lport, NULL},
    {"local", 1, 1, FC, U, 0, h_local, NULL},
    {"cd", 1, 1, ANY, U, 0, h_cd, NULL},
    {"proto-force", 1, 1, ANY, C, 0, h_proto_force, NULL},
    {"replay-window", 1, 2, ANY, U, 0, h_replay_window, NULL},
    {"plugin", 1, NOMAX, ANY, U, F_MULTI, h_plugin, NULL},
    {"remote-random", 0, 0, ANY, C, 0, h_flag_remote_random, NULL},
    {"remote-random-hostname", 0, 0, ANY, C, 0, h_remote_random_hostname, NULL},
    {"connect-retry", 1, 2, FC, C, 0, h_connect_retry, NULL},
    {"connect-retry-max", 1, 1, FC, C, 0, h_connect_retry_max, NULL},
    {"connect-timeout", 1, 1, FC, C, 0, h_connect_timeout, NULL},
    {"server-poll-timeout", 1, 1, FC, C, 0, h_connect_timeout, NULL},
    {"resolv-retry", 1, 1, ANY, C, 0, h_resolv_retry, NULL},
    {"http-proxy", 2, 4, FC, C, 0, cfg_h_http_proxy, NULL},
    {"http-proxy-option", 1, 3, FC, C, F_MULTI, cfg_h_http_proxy_option, NULL},
    {"http-proxy-user-pass", 0, 1, ANY, C, 0, cfg_h_http_proxy_user_pass, NULL},
    {"socks-proxy", 1, 3, FC, C, 0, cfg_h_socks_proxy, NULL},
    {"http-proxy-retry", 0, 0, FC, C, F_IGNORED, h_ignored,
     "deprecated in OpenVPN 2.4: a failed proxy is retried like any connection "
     "(see connect-retry-max)"},
    {"socks-proxy-retry", 0, 0, FC, C, F_IGNORED, h_ignored,
     "deprecated in OpenVPN 2.4: a failed proxy is retried like any connection "
     "(see connect-retry-max)"},
    {"http-proxy-timeout", 1, 1, FC, C, F_IGNORED, h_ignored,
     "deprecated in OpenVPN 2.4: connect-timeout covers the proxy too"},
    {"<connection>", 0, 0, ANY, C, F_MULTI, h_connection_marker, NULL},
    /* TLS */
    {"ca", 0, 1, ANY, U, 0, h_ca, NULL},
    {"cert", 0, 1, ANY, U, 0, h_cert, NULL},
    {"key", 0, 1, ANY, U, F_SECRET_ARGS, h_key, NULL},
    {"pkcs12", 0, 1, ANY, U, 0, h_pkcs12, NULL},
    {"extra-certs", 0, 1, ANY, U, 0, h_extra_certs, NULL},
    {"crl-verify", 0, 2, ANY, U, 0, h_crl_verify, NULL},
    {"askpass", 0, 1, ANY, U, 0, h_askpass, NULL},
    {"tls-version-min", 1, 2, ANY, U, 0, h_tls_version_min, NULL},
    {"tls-version-max", 1, 1, ANY, U, 0, h_tls_version_max, NULL},
    {"tls-cipher", 1, 1, ANY, U, 0, h_string, NULL},
    {"tls-ciphersuites", 1, 1, ANY, U, 0, h_string, NULL},
    {"tls-groups", 1, 1, ANY, U, 0, h_string, NULL},
    {"ecdh-curve", 1, 1, ANY, U, 0, h_string, NULL},
    {"tls-cert-profile", 1, 1, ANY, U, 0, h_string, NULL},
    {"remote-cert-tls", 1, 1, ANY, U, 0, h_remote_cert_tls, NULL},
    {"verify-x509-name", 1, 2, ANY, U, 0, h_verify_x509_name, NULL},
    {"ns-cert-type", 1, 1, ANY, U, 0, h_ns_cert_type, NULL},
    {"remote-cert-ku", 0, NOMAX, ANY, U, 0, h_remote_cert_ku, NULL},
    {"remote-cert-eku", 1, 1, ANY, U, 0, h_remote_cert_eku, NULL},
    {"peer-fingerprint", 0, 1, ANY, U, F_MULTI, h_peer_fingerprint, NULL},
    {"verify-client-cert", 1, 1, ANY, S, 0, h_verify_client_cert, NULL},
    /* wrapping */
    {"tls-auth", 0, 2, ANY, U, 0, h_tls_auth, NULL},
    {"key-direction", 1, 1, ANY, U, 0, h_key_direction, NULL},
    {"tls-crypt", 0, 1, ANY, U, 0, h_tls_crypt, NULL},
    {"tls-crypt-v2", 0, 2, ANY, U, 0, h_tls_crypt_v2, NULL},
    /* data channel */
    {"auth", 1, 1, ANY, U, 0, h_auth, NULL},
    {"cipher", 1, 1, FP, U, 0, h_cipher, NULL},
    {"data-ciphers", 1, 1, ANY, U, 0, h_data_ciphers, NULL},
    {"ncp-ciphers", 1, 1, ANY, U, 0, h_data_ciphers, NULL},
    {"data-ciphers-fallback", 1, 1, ANY, U, 0, h_string, NULL},
    {"comp-lzo", 0, 1, FP, U, 0, h_comp_lzo, NULL},
    {"compress", 0, 1, FP, U, 0, h_compress, NULL},
    {"allow-compression", 1, 1, ANY, U, 0, h_allow_compression, NULL},
    /* credentials */
    {"auth-user-pass", 0, 1, ANY, C, 0, h_auth_user_pass, NULL},
    {"auth-retry", 1, 1, ANY, C, 0, h_auth_retry, NULL},
    {"auth-nocache", 0, 0, ANY, C, 0, h_auth_nocache, NULL},
    {"static-challenge", 2, 2, ANY, C, 0, h_static_challenge, NULL},
    /* timers */
    {"reneg-sec", 1, 2, ANY, U, 0, h_reneg_sec, NULL},
    {"reneg-bytes", 1, 1, ANY, U, 0, h_int, NULL},
    {"reneg-pkts", 1, 1, ANY, U, 0, h_int, NULL},
    {"hand-window", 1, 1, ANY, U, 0, h_int, NULL},
    {"tran-window", 1, 1, ANY, U, 0, h_int, NULL},
    {"keepalive", 2, 2, ANY, U, 0, h_keepalive, NULL},
    {"ping", 1, 1, FP, U, 0, h_int, NULL},
    {"ping-restart", 1, 1, FP, U, 0, h_int, NULL},
    {"ping-exit", 1, 1, FP, U, 0, h_int, NULL},
    {"explicit-exit-notify", 0, 1, FCP, U, 0, h_explicit_exit_notify, NULL},
    /* routes, addresses, DNS */
    {"route", 1, 4, FP, U, F_MULTI, h_route, NULL},
    {"route-ipv6", 1, 3, FP, U, F_MULTI, h_route_ipv6, NULL},
    {"route-gateway", 1, 1, FP, U, 0, h_string, NULL},
    {"route-ipv6-gateway", 1, 1, FP, U, 0, h_string, NULL},
    {"route-metric", 1, 1, FP, U, 0, h_int, NULL},
    {"route-nopull", 0, 0, ANY, C, 0, h_route_nopull, NULL},
    {"pull-filter", 2, 2, ANY, C, F_MULTI, h_pull_filter, NULL},
    {"redirect-gateway", 0, 8, FP, U, 0, h_redirect_gateway, NULL},
    {"redirect-private", 0, 8, FP, U, 0, h_redirect_gateway, NULL},
    {"dhcp-option", 1, 2, FP, U, F_MULTI, h_dhcp_option, NULL},
    {"dns", 2, NOMAX, FP, U, F_MULTI, h_dns, NULL},
    {"ifconfig", 2, 2, FP, U, 0, h_ifconfig, NULL},
    {"ifconfig-ipv6", 2, 2, FP, U, 0, h_ifconfig_ipv6, NULL},
    {"block-ipv6", 0, 0, FP, U, 0, h_block_ipv6, NULL},
    /* server */
    {"server", 2, 3, ANY, S, 0, cfg_h_server, NULL},
    {"server-ipv6", 1, 1, ANY, S, 0, cfg_h_server_ipv6, NULL},
    {"connect-freq-initial", 2, 2, ANY, S, 0, h_connect_freq_initial, NULL},
    {"ifconfig-pool", 2, 3, ANY, S, 0, cfg_h_ifconfig_pool, NULL},
    {"ifconfig-ipv6-pool", 1, 1, ANY, S, 0, cfg_h_ifconfig_ipv6_pool, NULL},
    {"ifconfig-pool-persist", 1, 2, ANY, S, 0, cfg_h_ifconfig_pool_persist, NULL},
    {"push", 1, 1, ANY | CTX_CCD, S, F_MULTI, cfg_h_push, NULL},
    {"client-to-client", 0, 0, ANY, S, 0, cfg_h_server_flag, NULL},
    {"duplicate-cn", 0, 0, ANY, S, 0, cfg_h_server_flag, NULL},
    {"max-clients", 1, 1, ANY, S, 0, h_int, NULL},
    {"multihome", 0, 0, ANY, S, 0, cfg_h_server_flag, NULL},
    {"client-config-dir", 1, 1, ANY, S, 0, cfg_h_client_config_dir, NULL},
    {"ccd-exclusive", 0, 0, ANY, S, 0, cfg_h_server_flag, NULL},
    {"username-as-common-name", 0, 0, ANY, S, 0, cfg_h_server_flag, NULL},
    {"auth-user-pass-optional", 0, 0, ANY, S, 0, cfg_h_server_flag, NULL},
    {"force-tls-key-material-export", 0, 0, ANY, S, 0, cfg_h_server_flag, NULL},
    {"auth-gen-token", 0, 3, ANY, S, 0, cfg_h_auth_gen_token, NULL},
    {"auth-gen-token-secret", 0, 1, ANY, S, F_SECRET_ARGS, cfg_h_auth_gen_token_secret, NULL},
    {"tls-crypt-v2-max-age", 1, 1, ANY, S, 0, cfg_h_tls_crypt_v2_max_age, NULL},
    {"x509-username-field", 1, 1, ANY, S, 0, cfg_h_x509_username_field, NULL},
    {"dh", 0, 1, ANY, U, 0, cfg_h_dh, NULL},
    /* client-config-dir files only */
    {"ifconfig-push", 2, 3, CTX_CCD, U, 0, cfg_h_ifconfig_push, NULL},
    {"ifconfig-ipv6-push", 1, 2, CTX_CCD, U, 0, cfg_h_ifconfig_ipv6_push, NULL},
    {"iroute", 1, 2, CTX_CCD, U, F_MULTI, cfg_h_iroute, NULL},
    {"iroute-ipv6", 1, 1, CTX_CCD, U, F_MULTI, cfg_h_iroute_ipv6, NULL},
    {"push-reset", 0, 0, CTX_CCD, U, 0, cfg_h_ccd_flag, NULL},
    {"push-remove", 1, 1, CTX_CCD, U, F_MULTI, cfg_h_push_remove, NULL},
    {"disable", 0, 0, CTX_CCD, U, 0, cfg_h_ccd_flag, NULL},
    /* scripts a server would run: refused, with the alternatives */
    {"auth-user-pass-verify", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "Shimmer never runs scripts (this one checks user names and passwords): use PAM in "
     "process ('plugin /usr/lib/openvpn/openvpn-plugin-auth-pam.so SERVICE') or deferred "
     "authentication over D-Bus"},
    {"client-connect", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "Shimmer never runs scripts (this one decides about a client and sets its options): "
     "decide over D-Bus (deferred authentication) and give per-client options in "
     "client-config-dir files"},
    {"client-disconnect", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "Shimmer never runs scripts (this one runs when a client leaves): follow the clients "
     "over D-Bus instead"},
    {"client-crresponse", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "Shimmer never runs scripts (this one reads challenge responses): use deferred "
     "authentication over D-Bus"},
    {"learn-address", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "Shimmer never runs scripts (this one follows the clients' addresses): follow them over "
     "D-Bus instead"},
    {"tls-crypt-v2-verify", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "Shimmer never runs scripts (this one checks a client's tls-crypt-v2 key metadata): use "
     "tls-crypt-v2-max-age, or decide over D-Bus"},
    {"tls-verify", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "Shimmer never runs scripts, and dropping this one would weaken the checks of the peer: "
     "use verify-x509-name, remote-cert-tls, peer-fingerprint (or PAM / deferred "
     "authentication over D-Bus on a server)"},
    /* pushed only */
    {"peer-id", 1, 1, CTX_PUSH, U, 0, h_int, NULL},
    {"auth-token", 1, 1, CTX_PUSH, U, F_SECRET_ARGS, h_auth_token, NULL},
    {"auth-token-user", 1, 1, CTX_PUSH, U, F_SECRET_ARGS, h_auth_token_user, NULL},
    {"protocol-flags", 1, NOMAX, CTX_PUSH, U, 0, h_protocol_flags, NULL},
    {"key-derivation", 1, 1, CTX_PUSH, U, 0, h_key_derivation, NULL},
    {"push-continuation", 1, 1, CTX_PUSH, U, 0, h_push_continuation, NULL},
    /* accepted, warned about, ignored */
    {"persist-key", 0, 0, ANY, U, F_IGNORED, h_ignored, "Shimmer always keeps keys in memory"},
    {"persist-tun", 0, 0, ANY, U, F_IGNORED, h_ignored, "Shimmer keeps the tun across restarts"},
    {"persist-remote-ip", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"persist-local-ip", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"nobind", 0, 0, FC, C, F_IGNORED, h_ignored, "a client never binds a fixed port"},
    {"float", 0, 0, FC, U, F_IGNORED, h_ignored, NULL},
    {"verb", 1, 1, ANY, U, F_IGNORED, h_ignored, "set the log level with shimmerd instead"},
    {"mute", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"mute-replay-warnings", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"sndbuf", 1, 1, FP, U, F_IGNORED, h_ignored, NULL},
    {"rcvbuf", 1, 1, FP, U, F_IGNORED, h_ignored, NULL},
    {"fast-io", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"user", 1, 1, ANY, U, F_IGNORED, h_ignored, "shimmerd drops privileges itself"},
    {"group", 1, 1, ANY, U, F_IGNORED, h_ignored, "shimmerd drops privileges itself"},
    {"setenv", 1, NOMAX, FP, U, F_IGNORED, h_ignored, NULL},
    {"setenv-safe", 1, NOMAX, FP, U, F_IGNORED, h_ignored, NULL},
    {"push-peer-info", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"route-method", 1, 1, FP, U, F_IGNORED, h_ignored, "Windows only"},
    {"route-delay", 0, 2, FP, U, F_IGNORED, h_ignored, "Windows only"},
    {"register-dns", 0, 0, FP, U, F_IGNORED, h_ignored, "Windows only"},
    {"block-outside-dns", 0, 0, FP, U, F_IGNORED, h_ignored, "Windows only"},
    {"dev-node", 1, 1, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"ip-win32", 1, 2, FP, U, F_IGNORED, h_ignored, "Windows only"},
    {"win-sys", 1, 1, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"status", 1, 2, ANY, U, F_IGNORED, h_ignored, "use shimmerctl status"},
    {"status-version", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"log", 1, 1, ANY, U, F_IGNORED, h_ignored, "shimmerd logs to the journal"},
    {"log-append", 1, 1, ANY, U, F_IGNORED, h_ignored, "shimmerd logs to the journal"},
    {"daemon", 0, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"writepid", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"script-security", 1, 1, ANY, U, F_IGNORED, h_ignored, "Shimmer never runs scripts"},
    {"up", 1, 1, ANY, U, F_IGNORED, h_ignored, "Shimmer never runs scripts"},
    {"down", 1, 1, ANY, U, F_IGNORED, h_ignored, "Shimmer never runs scripts"},
    {"route-up", 1, 1, ANY, U, F_IGNORED, h_ignored, "Shimmer never runs scripts"},
    {"route-pre-down", 1, 1, ANY, U, F_IGNORED, h_ignored, "Shimmer never runs scripts"},
    {"ipchange", 1, 1, ANY, U, F_IGNORED, h_ignored, "Shimmer never runs scripts"},
    {"up-delay", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"up-restart", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"ping-timer-rem", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"txqueuelen", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"tun-ipv6", 0, 0, FP, U, F_IGNORED, h_ignored, "IPv6 is always enabled"},
    {"key-method", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "OpenVPN 2.6 no longer knows it and refuses the file (key method 2 is the only one): "
     "remove the line"},
    {"link-mtu", 1, 1, FC, U, F_IGNORED, h_ignored, "use tun-mtu"},
    {"tun-mtu-extra", 1, 1, FC, U, F_IGNORED, h_ignored, NULL},
    {"keysize", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "OpenVPN 2.6 no longer knows it and refuses the file (the cipher fixes its key size): "
     "remove the line"},
    {"ncp-disable", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "OpenVPN 2.6 no longer knows it and refuses the file (ciphers are always negotiated): "
     "remove the line, and give 'data-ciphers' to allow fewer ciphers"},
    {"echo", 0, NOMAX, CTX_PUSH, U, F_IGNORED, h_ignored, NULL},
    {"inactive", 1, 2, FP, U, F_IGNORED, h_ignored, NULL},
    {"session-timeout", 1, 1, FP, U, F_IGNORED, h_ignored, NULL},
    {"allow-nonadmin", 0, 1, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"dhcp-release", 0, 0, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"dhcp-renew", 0, 0, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"tap-sleep", 1, 1, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"pause-exit", 0, 0, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"windows-driver", 1, 1, ANY, U, F_IGNORED, h_ignored, "Windows only"},
    {"allow-pull-fqdn", 0, 0, ANY, C, F_IGNORED, h_ignored,
     "pushed host names are not looked up: the server's routes must be numbers"},
    {"allow-recursive-routing", 0, 0, ANY, U, F_IGNORED, h_ignored,
     "Shimmer pins the route to the server itself"},
    {"bcast-buffers", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"bind", 0, 1, FC, U, F_IGNORED, h_ignored,
     "the socket's address and port come from 'local' and 'lport'"},
    {"chroot", 1, 1, ANY, U, F_IGNORED, h_ignored, "shimmerd is confined by its service unit"},
    {"comp-noadapt", 0, 0, FP, U, F_IGNORED, h_ignored,
     "Shimmer never compresses, so there is nothing to adapt"},
    {"compat-mode", 1, 1, ANY, U, F_IGNORED, h_ignored,
     "Shimmer negotiates what the peer supports"},
    {"connect-freq", 2, 2, ANY, S, F_IGNORED, h_ignored,
     "the server does not limit the rate of new clients yet"},
    {"disable-dco", 0, 0, ANY, U, F_IGNORED, h_ignored, "Shimmer has no data channel offload"},
    {"disable-occ", 0, 0, ANY, U, F_IGNORED, h_ignored, "Shimmer does not compare options strings"},
    {"down-pre", 0, 0, ANY, U, F_IGNORED, h_ignored, "Shimmer never runs scripts"},
    {"engine", 0, 1, ANY, U, F_IGNORED, h_ignored, "OpenSSL engines do not apply (GnuTLS)"},
    {"providers", 1, NOMAX, ANY, U, F_IGNORED, h_ignored,
     "OpenSSL providers do not apply (GnuTLS)"},
    {"errors-to-stderr", 0, 0, ANY, U, F_IGNORED, h_ignored, "shimmerd logs to the journal"},
    {"machine-readable-output", 0, 0, ANY, U, F_IGNORED, h_ignored, "shimmerd logs to the journal"},
    {"suppress-timestamps", 0, 0, ANY, U, F_IGNORED, h_ignored, "shimmerd logs to the journal"},
    {"syslog", 0, 1, ANY, U, F_IGNORED, h_ignored, "shimmerd logs to the journal"},
    {"gremlin", 1, 1, ANY, U, F_IGNORED, h_ignored, "an OpenVPN stress test"},
    {"hash-size", 2, 2, ANY, S, F_IGNORED, h_ignored, NULL},
    {"ifconfig-nowarn", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"iproute", 1, 1, ANY, U, F_IGNORED, h_ignored, "Shimmer configures through netlink"},
    {"keying-material-exporter", 2, 2, ANY, U, F_IGNORED, h_ignored,
     "only scripts and plugins read the exported key material, and Shimmer runs neither"},
    {"lladdr", 1, 1, ANY, U, F_IGNORED, h_ignored, "TAP only"},
    {"vlan-tagging", 0, 0, ANY, U, F_IGNORED, h_ignored, "TAP only"},
    {"vlan-accept", 1, 1, ANY, U, F_IGNORED, h_ignored, "TAP only"},
    {"vlan-pvid", 1, 1, ANY, U, F_IGNORED, h_ignored, "TAP only"},
    {"management", 1, 3, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-client", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-client-auth", 0, 0, ANY, S, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-client-group", 1, 1, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-client-user", 1, 1, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-forget-disconnect", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-hold", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-log-cache", 1, 1, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-query-passwords", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-query-proxy", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-query-remote", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-signal", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"management-up-down", 0, 0, ANY, U, F_IGNORED, h_ignored, MANAGEMENT_NOTE},
    {"max-packet-size", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"max-routes-per-client", 1, 1, ANY, S, F_IGNORED, h_ignored, NULL},
    {"max-routes", 1, 1, FP, U, F_IGNORED, h_ignored,
     "the number of routes is not limited (deprecated in OpenVPN 2.4)"},
    {"memstats", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"mlock", 0, 0, ANY, U, F_IGNORED, h_ignored, "shimmerd wipes key material it no longer needs"},
    {"mtu-disc", 1, 1, FC, U, F_IGNORED, h_ignored, NULL},
    {"mtu-test", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"nice", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"opt-verify", 0, 0, ANY, U, F_IGNORED, h_ignored,
     "Shimmer does not compare options strings (deprecated in OpenVPN 2.6)"},
    {"passtos", 0, 0, ANY, U, F_IGNORED, h_ignored, "the TOS byte is not copied"},
    {"prng", 1, 2, ANY, U, F_IGNORED, h_ignored, "ignored by OpenVPN too"},
    {"remap-usr1", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"replay-persist", 1, 1, ANY, U, F_IGNORED, h_ignored, "replay state stays in memory"},
    {"setcon", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"shaper", 1, 1, ANY, U, F_IGNORED, h_ignored, "the tunnel's bandwidth is not limited"},
    {"single-session", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"socket-flags", 1, NOMAX, ANY, U, F_IGNORED, h_ignored, NULL},
    {"stale-routes-check", 1, 2, ANY, S, F_IGNORED, h_ignored, NULL},
    {"tcp-nodelay", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"tcp-queue-limit", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"tls-exit", 0, 0, ANY, U, F_IGNORED, h_ignored,
     "a failed handshake is retried like any failed connection"},
    {"tls-export-cert", 1, 1, ANY, U, F_IGNORED, h_ignored,
     "only scripts read the exported certificates, and Shimmer runs none"},
    {"tls-timeout", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"tmp-dir", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"tun-max-mtu", 1, 1, ANY, U, F_IGNORED, h_ignored, NULL},
    {"use-prediction-resistance", 0, 0, ANY, U, F_IGNORED, h_ignored, NULL},
    {"x509-track", 1, 1, ANY, U, F_IGNORED, h_ignored,
     "only scripts read the exported fields, and Shimmer runs none"},
    {"ignore-unknown-option", 1, NOMAX, ANY, U, F_MULTI, h_ignore_unknown, NULL},
    /* refused */
    {"secret", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "static-key mode is not supported (it has no forward secrecy and OpenVPN 2.7 removes "
     "it); use TLS with tls-crypt"},
    {"fragment", 0, NOMAX, FC, U, F_REFUSED, NULL,
     "not supported; lower 'tun-mtu' or use 'mssfix' instead"},
    {"tls-remote", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "removed in OpenVPN 2.3, and dropping it would weaken the checks of the peer: use "
     "verify-x509-name"},
    {"verify-hash", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "not supported, and dropping it would weaken the checks of the peer: use "
     "peer-fingerprint, or the issuing CA as 'ca'"},
    {"capath", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "a directory of CAs is not supported: put the CAs into one 'ca' file"},
    {"client-cert-not-required", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "removed in OpenVPN 2.5, which refuses it: use 'verify-client-cert none' (with PAM)"},
    {"no-replay", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "turning replay protection off is not supported"},
    {"no-iv", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "removed in OpenVPN 2.5 (which refuses it): remove the line"},
    {"no-name-remapping", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "removed in OpenVPN 2.5 (which refuses it): remove the line"},
    {"ifconfig-pool-linear", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "removed in OpenVPN 2.5 (which refuses it): use 'topology subnet'"},
    {"management-client-pf", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "packet filters were removed in OpenVPN 2.6, which refuses it"},
    {"management-external-key", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "the private key would come from a management client: give it with 'key' or 'pkcs12'"},
    {"management-external-cert", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "the certificate would come from a management client: give it with 'cert' or 'pkcs12'"},
    {"cryptoapicert", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "the Windows certificate store does not exist here: export the certificate and key "
     "(pkcs12)"},
    {"pkcs11-providers", 0, NOMAX, ANY, U, F_REFUSED, NULL, PKCS11_NOTE},
    {"pkcs11-id", 0, NOMAX, ANY, U, F_REFUSED, NULL, PKCS11_NOTE},
    {"pkcs11-id-management", 0, NOMAX, ANY, U, F_REFUSED, NULL, PKCS11_NOTE},
    {"pkcs11-pin-cache", 0, NOMAX, ANY, U, F_REFUSED, NULL, PKCS11_NOTE},
    {"pkcs11-private-mode", 0, NOMAX, ANY, U, F_REFUSED, NULL, PKCS11_NOTE},
    {"pkcs11-protected-authentication", 0, NOMAX, ANY, U, F_REFUSED, NULL, PKCS11_NOTE},
    {"pkcs11-cert-private", 0, NOMAX, ANY, U, F_REFUSED, NULL, PKCS11_NOTE},
    {"client-nat", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "rewriting addresses in the tunnel is not supported"},
    {"server-bridge", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "bridging needs TAP (layer 2) devices, which Shimmer does not support"},
    {"port-share", 0, NOMAX, ANY, S, F_REFUSED, NULL,
     "sharing the TCP port with a web server is not supported"},
    {"bind-dev", 0, NOMAX, FC, U, F_REFUSED, NULL,
     "binding the tunnel's socket to one interface (a VRF) is not supported"},
    {"route-noexec", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "Shimmer installs the routes itself and never leaves them to scripts: use 'route-nopull' "
     "(and pull-filter) to refuse the server's routes"},
    {"ifconfig-noexec", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "Shimmer configures the tunnel's addresses itself and never leaves them to scripts"},
    {"config", 0, NOMAX, ANY, U, F_REFUSED, NULL,
     "including another file is not supported: paste its lines into this one"},
    {"show-adapters", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-ciphers", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-digests", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-engines", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-gateway", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-groups", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-net", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-net-up", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-pkcs11-ids", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-tls", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"show-valid-subnets", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"genkey", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"help", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"version", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"test-crypto", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"mktun", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"rmtun", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
    {"service", 0, NOMAX, ANY, U, F_REFUSED, NULL, STANDALONE_NOTE},
};

static const Directive *lookup(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(directives); i++) {
        if (strcmp(directives[i].name, name) == 0)
            return &directives[i];
    }
    return NULL;
}

ShimmerDirectiveStatus shimmer_config_directive_status(const char *name, const char **reason)
{
    const Directive *d = name != NULL && name[0] != '<' ? lookup(name) : NULL;
    if (reason != NULL)
        *reason = d != NULL ? d->note : NULL;
    if (d == NULL)
        return SHIMMER_DIRECTIVE_UNKNOWN;
    if (d->flags & F_REFUSED)
        return SHIMMER_DIRECTIVE_REFUSED;
    if (d->flags & F_IGNORED)
        return SHIMMER_DIRECTIVE_IGNORED;
    return SHIMMER_DIRECTIVE_APPLIED;
}

static bool directive_in_list(const char *name, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(*list, name) == 0)
            return true;
    }
    return false;
}

static void apply_item(Parser *p, const ShimmerItem *it);

static void h_connection_marker(Parser *p, const ShimmerItem *it)
{
    g_assert_not_reached();
}

static void parse_connection_block(Parser *p, const ShimmerItem *block)
{
    g_autoptr(GError) error = NULL;
    guint err_line = 0;
    g_autoptr(GPtrArray) items =
        shimmer_lex(block->body, block->body_len, block->line + 1, &err_line, &error);
    if (items == NULL) {
        cfg_error(p, err_line, "%s (in the <connection> block at line %u)", error->message,
                  block->line);
        return;
    }
    cfg_set_role(p, SHIMMER_ROLE_CLIENT,
                 &(ShimmerItem){.argv = (char *[]){(char *)"<connection>", NULL},
                                .argc = 1,
                                .line = block->line});
    ConnDraft *d = g_new0(ConnDraft, 1);
    d->port = d->transport = d->connect_timeout = d->explicit_exit_notify = d->tun_mtu = d->mssfix =
        -1;
    d->line = block->line;
    g_ptr_array_add(p->drafts, d);
    p->cfg->has_connection_blocks = true;

    ShimmerContext saved = p->ctx;
    p->ctx = SHIMMER_CONTEXT_CONNECTION;
    p->cur = d;
    for (guint i = 0; i < items->len; i++) {
        ShimmerItem *it = g_ptr_array_index(items, i);
        if (it->kind == SHIMMER_ITEM_BLOCK) {
            cfg_error(p, it->line, "<%s> is not allowed inside a <connection> block",
                      it->block_name);
            continue;
        }
        apply_item(p, it);
    }
    p->cur = NULL;
    p->ctx = saved;
    if (d->remotes == 0)
        cfg_error(p, block->line, "<connection> block without a 'remote'");
}

static void apply_item(Parser *p, const ShimmerItem *it)
{
    const char *name = it->argv[0];
    const Directive *d = lookup(name);
    guint nargs = it->argc - 1;

    if (d == NULL || name[0] == '<') {
        if (p->ctx == SHIMMER_CONTEXT_PUSH) {
            cfg_warn(p, it->line, "'%s' is not an option a server may push: ignored", name);
            return;
        }
        if (g_hash_table_contains(p->cfg->priv->ignore_unknown, name)) {
            cfg_warn(p, it->line, "'%s': unknown option ignored (ignore-unknown-option)", name);
            g_ptr_array_add(p->cfg->ignored, g_strdup(name));
            return;
        }
        cfg_error(p, it->line, "unknown directive '%s'", name);
        return;
    }
    if (d->flags & F_REFUSED) {
        /* A server pushing one of these gets the usual push treatment. */
        if (p->ctx == SHIMMER_CONTEXT_PUSH)
            cfg_warn(p, it->line, "'%s' is not an option a server may push: ignored", name);
        else
            cfg_error(p, it->line, "'%s': %s", name, d->note);
        return;
    }
    if (!(d->contexts & (1u << p->ctx))) {
        if (p->ctx == SHIMMER_CONTEXT_PUSH)
            cfg_warn(p, it->line, "'%s' is not an option a server may push: ignored", name);
        else if (p->ctx == SHIMMER_CONTEXT_CONNECTION)
            cfg_error(p, it->line, "'%s' is not allowed inside a <connection> block", name);
        else if (p->ctx == SHIMMER_CONTEXT_CCD)
            cfg_error(p, it->line, "'%s' is not allowed in a client-config-dir file", name);
        else if (d->contexts == CTX_CCD)
            cfg_error(p, it->line,
                      "'%s' belongs in a client-config-dir file (one per client, named after "
                      "its certificate's common name), not in the server's configuration",
                      name);
        else
            cfg_error(p, it->line, "'%s' is only valid in a PUSH_REPLY", name);
        return;
    }
    if (nargs < d->min_args) {
        cfg_error(p, it->line, "'%s' needs %u argument%s, got %u", name, d->min_args,
                  d->min_args == 1 ? "" : "s", nargs);
        return;
    }
    if (nargs > d->max_args) {
        if (d->flags & F_SECRET_ARGS)
            cfg_error(p, it->line, "'%s' takes at most %u argument%s, got %u", name, d->max_args,
                      d->max_args == 1 ? "" : "s", nargs);
        else
            cfg_error(p, it->line, "'%s' takes at most %u argument%s, got %u (extra: '%s')", name,
                      d->max_args, d->max_args == 1 ? "" : "s", nargs, it->argv[d->max_args + 1]);
        return;
    }
    cfg_set_role(p, d->role, it);
    if (d->flags & F_IGNORED) {
        /* A server pushes these routinely (tun-ipv6, register-dns...): only a
         * configuration file's author needs to hear about them. */
        if (p->ctx != SHIMMER_CONTEXT_PUSH)
            cfg_warn(p, it->line, "'%s' ignored%s%s", name, d->note ? ": " : "",
                     d->note ? d->note : "");
        d->handler(p, it);
        return;
    }
    if (!(d->flags & F_MULTI) && p->ctx != SHIMMER_CONTEXT_CONNECTION) {
        /* Aliases share one slot so that `port 1194` and `rport 443` collide. */
        static const char *const retry_alias[] = {"connect-timeout", "server-poll-timeout", NULL};
        static const char *const cipher_alias[] = {"data-ciphers", "ncp-ciphers", NULL};
        static const char *const comp_alias[] = {"comp-lzo", "compress", NULL};
        const char *key = name;
        if (directive_in_list(name, retry_alias))
            key = "connect-timeout";
        else if (directive_in_list(name, cipher_alias))
            key = "data-ciphers";
        else if (directive_in_list(name, comp_alias))
            key = "compress";
        else if (strcmp(name, "redirect-private") == 0)
            key = "redirect-gateway";
        if (!check_repeat(p, it, key))
            return;
    }
    d->handler(p, it);
}

/* ---------- whole-file checks ---------- */

static void collect_ignore_unknown(Parser *p)
{
    for (guint i = 0; i < p->items->len; i++) {
        ShimmerItem *it = g_ptr_array_index(p->items, i);
        if (it->kind != SHIMMER_ITEM_DIRECTIVE || strcmp(it->argv[0], "ignore-unknown-option"))
            continue;
        for (guint a = 1; a < it->argc; a++) {
            if (lookup(it->argv[a]) != NULL && !(lookup(it->argv[a])->flags & F_IGNORED))
                cfg_warn(p, it->line,
                         "'ignore-unknown-option %s': Shimmer knows '%s' and applies "
                         "it",
                         it->argv[a], it->argv[a]);
            g_hash_table_add(p->cfg->priv->ignore_unknown, g_strdup(it->argv[a]));
        }
    }
}

/* OpenVPN changes its directory at `cd` and reads every file only after
 * the whole configuration: each `cd` (relative to the one before) moves
 * where all of the file's relative paths resolve. */
static void collect_cd(Parser *p)
{
    for (guint i = 0; i < p->items->len; i++) {
        ShimmerItem *it = g_ptr_array_index(p->items, i);
        if (it->kind != SHIMMER_ITEM_DIRECTIVE || strcmp(it->argv[0], "cd") != 0 || it->argc != 2)
            continue;
        char *dir = cfg_resolve_path(p, it->argv[1]);
        g_free(p->base_dir);
        p->base_dir = dir;
    }
}

static void collect_blocks(Parser *p)
{
    static const char *const known[] = {"ca",
                                        "cert",
                                        "key",
                                        "extra-certs",
                                        "pkcs12",
                                        "tls-auth",
                                        "tls-crypt",
                                        "tls-crypt-v2",
                                        "crl-verify",
                                        "secret",
                                        "auth-user-pass",
                                        "dh",
                                        "peer-fingerprint",
                                        "askpass",
                                        "http-proxy-user-pass",
                                        "auth-gen-token-secret",
                                        NULL};
    for (guint i = 0; i < p->items->len; i++) {
        ShimmerItem *it = g_ptr_array_index(p->items, i);
        if (it->kind != SHIMMER_ITEM_BLOCK || strcmp(it->block_name, "connection") == 0)
            continue;
        if (!directive_in_list(it->block_name, known)) {
            if (g_hash_table_contains(p->cfg->priv->ignore_unknown, it->block_name)) {
                cfg_warn(p, it->line, "<%s>: unknown block ignored (ignore-unknown-option)",
                         it->block_name);
                continue;
            }
            cfg_error(p, it->line, "unknown inline block <%s>", it->block_name);
            continue;
        }
        ShimmerItem *prev = g_hash_table_lookup(p->blocks, it->block_name);
        if (prev != NULL) {
            /* As OpenVPN: the later block counts. */
            cfg_warn(p, it->line,
                     "<%s> overrides the <%s> block at line %u (as in OpenVPN, the last one "
                     "counts)",
                     it->block_name, it->block_name, prev->line);
            drop_lines(p, prev->line, prev->end_line);
        }
        g_hash_table_insert(p->blocks, g_strdup(it->block_name), it);
    }
}

/* A block with no directive naming it stands for `NAME [inline]`. */
static void apply_unreferenced_blocks(Parser *p)
{
    for (guint i = 0; i < p->items->len; i++) {
        ShimmerItem *it = g_ptr_array_index(p->items, i);
        if (it->kind != SHIMMER_ITEM_BLOCK)
            continue;
        if (strcmp(it->block_name, "connection") == 0)
            continue;
        if (g_hash_table_lookup(p->blocks, it->block_name) != it)
            continue;
        if (g_hash_table_contains(p->block_used, it->block_name))
            continue;
        char *argv[] = {it->block_name, NULL};
        ShimmerItem synth = {.kind = SHIMMER_ITEM_DIRECTIVE,
                             .line = it->line,
                             .end_line = it->end_line,
                             .argv = argv,
                             .argc = 1};
        apply_item(p, &synth);
        g_hash_table_insert(p->block_used, g_strdup(it->block_name), GUINT_TO_POINTER(it->line));
    }
}

static void connection_free(gpointer data);

static void finish_connections(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    guint skipped = 0;
    for (guint i = 0; i < p->drafts->len; i++) {
        ConnDraft *d = g_ptr_array_index(p->drafts, i);
        if (d->host == NULL)
            continue;
        ShimmerConnection *c = g_new0(ShimmerConnection, 1);
        c->host = g_strdup(d->host);
        c->port = d->port > 0 ? (guint16)d->port : cfg->rport;
        c->transport = d->transport >= 0 ? (ShimmerTransport)d->transport : cfg->transport;
        c->family = d->family_set ? d->family : cfg->family;
        c->connect_timeout =
            d->connect_timeout > 0 ? (guint)d->connect_timeout : cfg->connect_timeout;
        c->explicit_exit_notify =
            d->explicit_exit_notify >= 0 ? d->explicit_exit_notify : cfg->explicit_exit_notify;
        c->tun_mtu = d->tun_mtu > 0 ? (guint)d->tun_mtu : cfg->tun_mtu;
        c->mssfix = d->mssfix >= 0 ? d->mssfix : cfg->mssfix;
        if (cfg->proto_force >= 0 && c->transport != (ShimmerTransport)cfg->proto_force) {
            /* proto-force: only the connections of that transport. */
            connection_free(c);
            skipped++;
            continue;
        }
        c->proxy = cfg_proxy_for(p, d);
        c->local = g_strdup(d->local != NULL ? d->local : cfg->local);
        c->line = d->line;
        if (c->proxy != NULL && c->proxy->type == SHIMMER_PROXY_HTTP &&
            c->transport != SHIMMER_TRANSPORT_TCP)
            cfg_error(p, c->proxy->line,
                      "'http-proxy' (line %u) carries TCP only, but the connection to '%s' "
                      "(line %u) is UDP: add 'proto tcp-client'",
                      c->proxy->line, c->host, c->line);
        g_ptr_array_add(cfg->connections, c);
    }
    if (skipped > 0)
        cfg_warn(p, 0, "'proto-force %s' leaves out %u of the %u connections",
                 cfg->proto_force == SHIMMER_TRANSPORT_TCP ? "tcp" : "udp", skipped,
                 skipped + cfg->connections->len);
}

/* tls-auth, tls-crypt and tls-crypt-v2 exclude each other. */
static void finish_wrapping(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    gint wraps[3] = {p->tls_auth_line, p->tls_crypt_line, p->tls_crypt_v2_line};
    const char *wrap_names[3] = {"tls-auth", "tls-crypt", "tls-crypt-v2"};
    for (int i = 0; i < 3; i++) {
        for (int j = i + 1; j < 3; j++) {
            if (wraps[i] > 0 && wraps[j] > 0)
                cfg_error(p, (guint)MAX(wraps[i], wraps[j]),
                          "'%s' (line %d) and '%s' (line %d) cannot be combined: choose one",
                          wrap_names[i], wraps[i], wrap_names[j], wraps[j]);
        }
    }
    if (cfg->tls_auth.present)
        cfg->wrap = SHIMMER_WRAP_TLS_AUTH;
    else if (cfg->tls_crypt.present)
        cfg->wrap = SHIMMER_WRAP_TLS_CRYPT;
    else if (cfg->tls_crypt_v2.present)
        cfg->wrap = SHIMMER_WRAP_TLS_CRYPT_V2;

    if (cfg->key_direction >= 0 && !cfg->tls_auth.present)
        cfg_warn(p, (guint)p->key_direction_line,
                 "'key-direction' only applies to tls-auth and is ignored here");
}

/* `port` sets both ports, `rport` and `lport` one each: as OpenVPN, the
 * later line counts for each port, with a warning where they disagree. */
static void finish_ports(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    if (p->port_line > 0 && p->rport_line > 0 && p->port_value != p->rport_value) {
        bool rport_later = p->rport_line > p->port_line;
        cfg->rport = (guint16)(rport_later ? p->rport_value : p->port_value);
        if (rport_later)
            cfg_warn(p, (guint)p->rport_line,
                     "'rport %d' overrides the server port 'port %d' gave at line %d (as in "
                     "OpenVPN, the last one counts)",
                     p->rport_value, p->port_value, p->port_line);
        else
            cfg_warn(p, (guint)p->port_line,
                     "'port %d' overrides 'rport %d' at line %d (as in OpenVPN, the last one "
                     "counts)",
                     p->port_value, p->rport_value, p->rport_line);
    }
    if (p->port_line > 0 && p->lport_line > 0 && p->port_value != cfg->lport &&
        p->port_line > p->lport_line) {
        cfg_warn(p, (guint)p->port_line,
                 "'port %d' overrides 'lport %d' at line %d (as in OpenVPN, the last one counts)",
                 p->port_value, cfg->lport, p->lport_line);
        cfg->lport = p->port_value;
    }
}

static void finish_timers(Parser *p)
{
    if (p->keepalive_line > 0 && (p->ping_line > 0 || p->ping_restart_line > 0)) {
        gint other = p->ping_line > 0 ? p->ping_line : p->ping_restart_line;
        cfg_error(p, (guint)MAX(p->keepalive_line, other),
                  "'keepalive' (line %d) sets ping and ping-restart, which line %d also sets: give "
                  "one",
                  p->keepalive_line, other);
    }
}

/* Plugins are never loaded. A server recognises OpenVPN's PAM plugin as
 * "authenticate with PAM" (done in-process); any other plugin on a server
 * may be what keeps strangers out, so it is refused. A client's plugins
 * (down-root and the like) are only ignored. */
static void finish_plugins(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    for (guint i = 0; i < p->plugins->len; i++) {
        const ShimmerItem *it = g_ptr_array_index(p->plugins, i);
        g_autofree char *base = g_path_get_basename(it->argv[1]);
        bool pam = strcmp(base, "openvpn-plugin-auth-pam.so") == 0 ||
                   strcmp(base, "openvpn-auth-pam.so") == 0;
        if (cfg->role != SHIMMER_ROLE_SERVER) {
            cfg_warn(p, it->line, "'plugin %s' ignored: Shimmer never loads plugins", it->argv[1]);
            g_ptr_array_add(cfg->ignored, g_strdup("plugin"));
            continue;
        }
        if (!pam) {
            cfg_error(p, it->line,
                      "'plugin %s': Shimmer loads no plugins, and one that is not run could be "
                      "what keeps strangers out. OpenVPN's PAM plugin is recognised (PAM in "
                      "process); for other decisions use deferred authentication over D-Bus",
                      it->argv[1]);
            continue;
        }
        if (it->argc < 3 || it->argv[2][0] == '\0') {
            cfg_error(p, it->line, "'plugin %s' needs the PAM service name", it->argv[1]);
            continue;
        }
        if (cfg->pam_service != NULL)
            cfg_warn(p, it->line, "a second PAM plugin line overrides the service '%s'",
                     cfg->pam_service);
        g_free(cfg->pam_service);
        cfg->pam_service = g_strdup(it->argv[2]);
        if (it->argc > 3)
            cfg_warn(p, it->line,
                     "'plugin %s %s': the prompt names after the service are not needed: "
                     "Shimmer gives PAM the user name and password itself",
                     it->argv[1], it->argv[2]);
    }
}

/* A CRL counts only with a valid signature of a CA from `ca`. */
static void finish_crl(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    const ShimmerBlob *b = &cfg->crl_verify;
    if (!b->present || shimmer_config_has_errors(cfg))
        return;
    g_autoptr(ShimmerCrlSet) set = shimmer_crl_set_new(b->data, b->len, NULL);
    if (set == NULL)
        return;
    if (!cfg->ca.present) {
        cfg_warn(p, b->line,
                 "'crl-verify' without 'ca': the CRL's signature cannot be checked, so it is "
                 "not used");
        return;
    }
    g_autoptr(GPtrArray) unused = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    if (!shimmer_crl_set_verify(set, cfg->ca.data, cfg->ca.len, unused, &error)) {
        cfg_error(p, b->line, "'crl-verify': %s", error->message);
        return;
    }
    for (guint i = 0; i < unused->len; i++)
        cfg_warn(p, b->line,
                 "'crl-verify': the CRL from %s is not from a CA in 'ca' (line %u); its "
                 "signature cannot be checked, so it is not used",
                 shimmer_crl_set_issuer(set, GPOINTER_TO_UINT(g_ptr_array_index(unused, i))),
                 cfg->ca.line);
}

/* Our own certificate and key: one source, complete. */
static void finish_identity(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    if (cfg->pkcs12.present && (cfg->cert.present || cfg->key.present)) {
        cfg_error(p, cfg->cert.present ? cfg->cert.line : cfg->key.line,
                  "'pkcs12' (line %u) already holds the certificate and key: drop 'cert' and 'key'",
                  cfg->pkcs12.line);
    }
    if (cfg->cert.present != cfg->key.present && !cfg->pkcs12.present) {
        if (cfg->cert.present)
            cfg_error(p, cfg->cert.line, "'cert' is given without 'key'");
        else
            cfg_error(p, cfg->key.line, "'key' is given without 'cert'");
    }
    if (cfg->askpass && !cfg->key_encrypted && !cfg->pkcs12.present && cfg->key.present)
        cfg_warn(p, 0, "'askpass' given but the private key is not encrypted");
}

/* `cipher` and data-ciphers-fallback are only for peers without negotiation. */
static void finish_ciphers(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    if (cfg->cipher != NULL) {
        ShimmerCipher c;
        if (lookup_aead(cfg->cipher, &c)) {
            bool found = false;
            for (guint i = 0; i < cfg->data_ciphers->len; i++)
                found |= g_array_index(cfg->data_ciphers, ShimmerCipher, i) == c;
            if (!found && !cfg->data_ciphers_set)
                g_array_append_val(cfg->data_ciphers, c);
            else if (!found)
                cfg_warn(p, (guint)p->cipher_line,
                         "'cipher %s' is not in data-ciphers and will not be negotiated",
                         cfg->cipher);
        } else if (p->ctx != SHIMMER_CONTEXT_PUSH) {
            cfg_warn(p, (guint)p->cipher_line,
                     "'cipher %s' is not an AEAD cipher: only AEAD ciphers (%s) will be "
                     "negotiated",
                     cfg->cipher, "AES-256-GCM, AES-128-GCM, CHACHA20-POLY1305");
        }
    }
    if (cfg->data_ciphers_fallback != NULL) {
        ShimmerCipher c;
        if (!lookup_aead(cfg->data_ciphers_fallback, &c)) {
            cfg_warn(p, (guint)p->fallback_line,
                     "'data-ciphers-fallback %s' is not an AEAD cipher: a server that cannot "
                     "negotiate AEAD ciphers will not be reachable",
                     cfg->data_ciphers_fallback);
            g_clear_pointer(&cfg->data_ciphers_fallback, g_free);
        }
    }
}

/* The TLS directives as one GnuTLS priority string: what cannot be mapped
 * is an error at its line; what GnuTLS allows beyond the request, a note. */
static void finish_tls(Parser *p)
{
    static const char *const names[] = {
        [SHIMMER_TLSPRIO_ERROR_TLS_CIPHER] = "tls-cipher",
        [SHIMMER_TLSPRIO_ERROR_TLS_CIPHERSUITES] = "tls-ciphersuites",
        [SHIMMER_TLSPRIO_ERROR_TLS_GROUPS] = "tls-groups",
        [SHIMMER_TLSPRIO_ERROR_ECDH_CURVE] = "ecdh-curve",
        [SHIMMER_TLSPRIO_ERROR_TLS_CERT_PROFILE] = "tls-cert-profile",
        [SHIMMER_TLSPRIO_ERROR_VERSION] = "tls-version-max",
        [SHIMMER_TLSPRIO_ERROR_GNUTLS] = "tls-cipher",
    };
    ShimmerConfig *cfg = p->cfg;
    if (cfg->tls_groups != NULL && cfg->ecdh_curve != NULL)
        cfg_warn(p, p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_ECDH_CURVE],
                 "'ecdh-curve' is ignored: 'tls-groups' (line %u) sets the groups",
                 p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_TLS_GROUPS]);
    g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autofree char *prio = shimmer_config_tls_priority(cfg, notes, &error);
    if (prio == NULL) {
        guint code = error->domain == SHIMMER_TLSPRIO_ERROR && error->code > 0 &&
                             error->code <= SHIMMER_TLSPRIO_ERROR_GNUTLS
                         ? (guint)error->code
                         : SHIMMER_TLSPRIO_ERROR_GNUTLS;
        cfg_error(p, p->tlsprio_line[code], "'%s': %s", names[code], error->message);
        return;
    }
    for (guint i = 0; i < notes->len; i++) {
        const char *n = g_ptr_array_index(notes, i);
        guint line = g_str_has_prefix(n, "'tls-ciphersuites'")
                         ? p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_TLS_CIPHERSUITES]
                         : p->tlsprio_line[SHIMMER_TLSPRIO_ERROR_TLS_CIPHER];
        cfg_warn(p, line, "%s", n);
    }
}

static void finish_compression(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    if (cfg->allow_compression == SHIMMER_ALLOW_COMP_NO && cfg->comp_alg != SHIMMER_COMP_ALG_NONE)
        cfg_error(p, MAX(cfg->comp_line, cfg->allow_compression_line),
                  "'allow-compression no' (line %u) refuses the compression that line %u asks "
                  "for: give one",
                  cfg->allow_compression_line, cfg->comp_line);
    if (cfg->comp_migrate && cfg->role == SHIMMER_ROLE_CLIENT)
        cfg_warn(p, cfg->comp_line, "'compress migrate' is for servers and is ignored here");
}

static void finish_device(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    if (cfg->dev == NULL && p->ctx == SHIMMER_CONTEXT_FILE && cfg->role != SHIMMER_ROLE_UNSET)
        cfg_error(p, p->role_line,
                  "no 'dev' in this %s configuration: OpenVPN refuses a configuration without "
                  "one (\"You must define TUN/TAP device\"); add 'dev tun'",
                  cfg->role == SHIMMER_ROLE_SERVER ? "server" : "client");
    if (cfg->dev != NULL && !g_str_has_prefix(cfg->dev, "tun") && cfg->dev_type == NULL)
        cfg_error(p, 0, "'dev %s': the device type is unknown; add 'dev-type tun'", cfg->dev);
}

static void finish_client(Parser *p)
{
    ShimmerConfig *cfg = p->cfg;
    if (cfg->has_connection_blocks) {
        for (guint i = 0; i < p->drafts->len; i++) {
            ConnDraft *d = g_ptr_array_index(p->drafts, i);
            if (d->remotes == 0 && d->host != NULL) {
                cfg_error(p, d->line,
                          "'remote' at top level cannot be mixed with <connection> "
                          "blocks: move it into a block");
                break;
            }
        }
    }
    if (!cfg->tls_client)
        cfg_error(p, 0,
                  "a client configuration needs 'client' or 'tls-client' (static-key "
                  "mode is not supported)");
    cfg_finish_proxies(p);
    finish_connections(p);
    if (cfg->connections->len == 0)
        cfg_error(p, 0, "no 'remote': the configuration does not say which server to connect to");
    if (!cfg->ca.present && cfg->peer_fingerprints->len == 0 && !cfg->pkcs12.present)
        cfg_error(p, 0, "no 'ca' and no 'peer-fingerprint': the server could not be verified");
    if (cfg->tls_crypt_v2.present && cfg->tls_crypt_v2_is_server_key)
        cfg_error(p, cfg->tls_crypt_v2.line,
                  "'tls-crypt-v2': a client needs a client key, this "
                  "is a server key");
    if (!cfg->cert.present && !cfg->pkcs12.present &&
        cfg->auth_user_pass == SHIMMER_AUTH_USER_PASS_NONE)
        cfg_warn(p, 0,
                 "no client certificate and no 'auth-user-pass': the server must "
                 "accept clients without credentials");
    if (cfg->remote_cert_tls == SHIMMER_CERT_TLS_UNSET &&
        cfg->verify_x509_type == SHIMMER_X509_NAME_UNSET && cfg->peer_fingerprints->len == 0 &&
        cfg->ns_cert_type == SHIMMER_NS_CERT_UNSET && cfg->remote_cert_eku == NULL)
        cfg_warn(p, 0,
                 "no 'remote-cert-tls server', 'verify-x509-name' or "
                 "'peer-fingerprint': any certificate from this CA is accepted as the "
                 "server");
}

/* Whole-file checks, once every directive is in. */
static void finish(Parser *p)
{
    finish_wrapping(p);
    finish_ports(p);
    finish_timers(p);
    finish_identity(p);
    finish_plugins(p);
    finish_crl(p);
    finish_ciphers(p);
    finish_compression(p);
    finish_tls(p);
    finish_device(p);
    switch (p->cfg->role) {
    case SHIMMER_ROLE_UNSET:
        cfg_error(p, 0,
                  "neither a client nor a server configuration: add 'client' (with 'remote') "
                  "or 'server'");
        break;
    case SHIMMER_ROLE_CLIENT:
        finish_client(p);
        break;
    case SHIMMER_ROLE_SERVER:
        cfg_finish_server(p);
        break;
    }
}

/* ---------- construction ---------- */

static void route_free(gpointer data)
{
    ShimmerRoute *r = data;
    g_free(r->network);
    g_free(r->netmask);
    g_free(r->gateway);
    g_free(r);
}

static void route6_free(gpointer data)
{
    ShimmerRoute6 *r = data;
    g_free(r->prefix);
    g_free(r->gateway);
    g_free(r);
}

static void pull_filter_free(gpointer data)
{
    ShimmerPullFilter *f = data;
    g_free(f->text);
    g_free(f);
}

static void dhcp_option_free(gpointer data)
{
    ShimmerDhcpOption *o = data;
    g_free(o->type);
    g_free(o->value);
    g_free(o);
}

static void connection_free(gpointer data)
{
    ShimmerConnection *c = data;
    g_free(c->host);
    g_free(c->local);
    shimmer_proxy_free(c->proxy);
    g_free(c);
}

static void diagnostic_free(gpointer data)
{
    ShimmerDiagnostic *d = data;
    g_free(d->message);
    g_free(d);
}

static ShimmerConfig *config_new(const char *filename)
{
    ShimmerConfig *cfg = g_new0(ShimmerConfig, 1);
    cfg->priv = g_new0(ShimmerConfigPrivate, 1);
    /* Replacements may hold inlined keys and passwords. */
    cfg->priv->replacements =
        g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)shimmer_str_free_secret);
    cfg->priv->ignore_unknown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    cfg->filename = g_strdup(filename);
    cfg->diagnostics = g_ptr_array_new_with_free_func(diagnostic_free);
    cfg->connections = g_ptr_array_new_with_free_func(connection_free);
    cfg->transport = SHIMMER_TRANSPORT_UDP;
    cfg->family = SHIMMER_FAMILY_ANY;
    cfg->rport = 1194;
    cfg->lport = -1;
    cfg->connect_retry = 1;
    cfg->connect_retry_max_delay = 300;
    cfg->connect_timeout = 120;
    cfg->resolv_retry = -1;
    cfg->proto_force = -1;
    cfg->replay_time = -1;
    cfg->mssfix = -1;
    cfg->mark = -1;
    cfg->key_direction = -1;
    cfg->peer_fingerprints = g_array_new(FALSE, TRUE, 32);
    cfg->remote_cert_ku = g_array_new(FALSE, FALSE, sizeof(guint));
    cfg->auth = SHIMMER_DIGEST_SHA1;
    cfg->data_ciphers = g_array_new(FALSE, FALSE, sizeof(ShimmerCipher));
    cfg->reneg_sec = cfg->reneg_sec_min = cfg->reneg_bytes = cfg->reneg_pkts = -1;
    cfg->hand_window = cfg->tran_window = -1;
    cfg->keepalive_interval = cfg->keepalive_timeout = -1;
    cfg->ping = cfg->ping_restart = cfg->ping_exit = -1;
    cfg->explicit_exit_notify = -1;
    cfg->routes = g_ptr_array_new_with_free_func(route_free);
    cfg->routes6 = g_ptr_array_new_with_free_func(route6_free);
    cfg->route_metric = -1;
    cfg->pull_filters = g_ptr_array_new_with_free_func(pull_filter_free);
    cfg->dhcp_options = g_ptr_array_new_with_free_func(dhcp_option_free);
    cfg->dns_search_domains = g_ptr_array_new_with_free_func(g_free);
    cfg->dns_servers = g_ptr_array_new_with_free_func(dns_server_free);
    cfg->push = g_ptr_array_new_with_free_func(g_free);
    cfg->max_clients = -1;
    cfg->connect_freq_initial_max = cfg->connect_freq_initial_seconds = -1;
    cfg->ifconfig_pool_persist_seconds = -1;
    cfg->auth_gen_token = cfg->auth_gen_token_renewal = -1;
    cfg->tls_crypt_v2_max_age = -1;
    cfg->peer_id = -1;
    cfg->ignored = g_ptr_array_new_with_free_func(g_free);
    return cfg;
}

static void set_default_ciphers(ShimmerConfig *cfg)
{
    if (cfg->data_ciphers_set || cfg->data_ciphers->len > 0)
        return;
    static const ShimmerCipher defaults[] = {SHIMMER_CIPHER_AES_256_GCM, SHIMMER_CIPHER_AES_128_GCM,
                                             SHIMMER_CIPHER_CHACHA20_POLY1305};
    g_array_append_vals(cfg->data_ciphers, defaults, G_N_ELEMENTS(defaults));
}

static void parser_init(Parser *p, ShimmerConfig *cfg, ShimmerContext ctx)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->ctx = ctx;
    p->blocks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    p->block_used = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    p->drafts = g_ptr_array_new_with_free_func(cfg_conn_draft_free);
    p->top = g_new0(ConnDraft, 1);
    p->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    p->tls_auth_dir = -1;
    p->plugins = g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_item_free);
    p->flag_lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void parser_clear(Parser *p)
{
    g_clear_pointer(&p->blocks, g_hash_table_unref);
    g_clear_pointer(&p->block_used, g_hash_table_unref);
    g_clear_pointer(&p->drafts, g_ptr_array_unref);
    g_clear_pointer(&p->top, cfg_conn_draft_free);
    g_clear_pointer(&p->values, g_hash_table_unref);
    g_clear_pointer(&p->plugins, g_ptr_array_unref);
    g_clear_pointer(&p->flag_lines, g_hash_table_unref);
    g_clear_pointer(&p->items, g_ptr_array_unref);
    g_free(p->base_dir);
}

ShimmerConfig *shimmer_config_parse(const char *filename, const char *base_dir, const char *text,
                                    gsize len, ShimmerLoader loader, gpointer loader_data)
{
    ShimmerConfig *cfg = config_new(filename ? filename : "<config>");
    Parser p;
    parser_init(&p, cfg, SHIMMER_CONTEXT_FILE);
    p.loader = loader;
    p.loader_data = loader_data;
    p.base_dir = base_dir ? g_strdup(base_dir) : (filename ? g_path_get_dirname(filename) : NULL);
    cfg->priv->source = shimmer_memdup0(text, len);
    cfg->priv->source_len = len;

    g_autoptr(GError) error = NULL;
    guint err_line = 0;
    p.items = shimmer_lex(text, len, 1, &err_line, &error);
    if (p.items == NULL) {
        cfg_error(&p, err_line, "%s", error->message);
        parser_clear(&p);
        return cfg;
    }
    collect_ignore_unknown(&p);
    collect_cd(&p);
    collect_blocks(&p);
    for (guint i = 0; i < p.items->len; i++) {
        ShimmerItem *it = g_ptr_array_index(p.items, i);
        if (it->kind == SHIMMER_ITEM_BLOCK) {
            if (strcmp(it->block_name, "connection") == 0)
                parse_connection_block(&p, it);
            continue;
        }
        apply_item(&p, it);
    }
    apply_unreferenced_blocks(&p);
    set_default_ciphers(cfg);
    finish(&p);
    parser_clear(&p);
    return cfg;
}

static bool filter_matches(const char *filter, const char *option)
{
    /* OpenVPN matches a pull-filter as a prefix of the option text. */
    return g_str_has_prefix(option, filter);
}

ShimmerConfig *shimmer_config_parse_push(const char *text, gsize len, const GPtrArray *pull_filters)
{
    ShimmerConfig *cfg = config_new("PUSH_REPLY");
    Parser p;
    parser_init(&p, cfg, SHIMMER_CONTEXT_PUSH);

    g_autofree char *copy = g_strndup(text, len);
    if (strlen(copy) != len) {
        cfg_error(&p, 0, "the push message holds a NUL byte");
        parser_clear(&p);
        return cfg;
    }
    g_auto(GStrv) options = g_strsplit(copy, ",", -1);
    for (guint i = 0; options[i] != NULL; i++) {
        char *opt = g_strstrip(options[i]);
        guint num = i + 1;
        if (opt[0] == '\0')
            continue;
        if (pull_filters != NULL) {
            bool drop = false;
            for (guint f = 0; f < pull_filters->len; f++) {
                ShimmerPullFilter *pf = g_ptr_array_index(pull_filters, f);
                if (!filter_matches(pf->text, opt))
                    continue;
                if (pf->action == SHIMMER_PULL_FILTER_REJECT) {
                    g_auto(GStrv) words = g_strsplit(opt, " ", 2);
                    cfg_error(&p, num, "pushed option '%s' rejected by pull-filter", words[0]);
                    drop = true;
                } else if (pf->action == SHIMMER_PULL_FILTER_IGNORE) {
                    drop = true;
                }
                break;
            }
            if (drop)
                continue;
        }
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) argv = shimmer_lex_line(opt, strlen(opt), &error);
        if (argv == NULL) {
            cfg_error(&p, num, "pushed option %u: %s", num, error->message);
            continue;
        }
        if (argv[0] == NULL)
            continue;
        ShimmerItem it = {.kind = SHIMMER_ITEM_DIRECTIVE,
                          .line = num,
                          .end_line = num,
                          .argv = argv,
                          .argc = g_strv_length(argv)};
        apply_item(&p, &it);
    }
    if (cfg->cipher != NULL) {
        ShimmerCipher c;
        if (!lookup_aead(cfg->cipher, &c))
            cfg_error(&p, 0, "the server pushed the cipher '%s', which is not an AEAD cipher",
                      cfg->cipher);
    }
    parser_clear(&p);
    return cfg;
}

G_DEFINE_QUARK(shimmer - config - error - quark, shimmer_config_error)

static const char *const comp_alg_names[] = {"none", "LZO", "LZ4"};

gboolean shimmer_config_check_pushed_compression(const ShimmerConfig *cfg,
                                                 const ShimmerConfig *pushed, GError **error)
{
    if (pushed->comp_alg == SHIMMER_COMP_ALG_NONE)
        return TRUE;
    if (cfg->allow_compression == SHIMMER_ALLOW_COMP_NO) {
        g_set_error(error, SHIMMER_CONFIG_ERROR, 0,
                    "the server pushed %s compression, which 'allow-compression no' refuses",
                    comp_alg_names[pushed->comp_alg]);
        return FALSE;
    }
    if (cfg->comp_alg == SHIMMER_COMP_ALG_NONE) {
        g_set_error(error, SHIMMER_CONFIG_ERROR, 0,
                    "the server pushed %s compression, but the profile does not allow "
                    "compression (as OpenVPN 2.6: add e.g. 'comp-lzo' or 'compress lz4-v2' to "
                    "accept it)",
                    comp_alg_names[pushed->comp_alg]);
        return FALSE;
    }
    return TRUE;
}

ShimmerCcd *shimmer_ccd_parse(const char *filename, const char *text, gsize len,
                              const ShimmerConfig *server)
{
    ShimmerCcd *ccd = g_new0(ShimmerCcd, 1);
    ccd->filename = g_strdup(filename ? filename : "<client-config-dir file>");
    ccd->push = g_ptr_array_new_with_free_func(g_free);
    ccd->push_remove = g_ptr_array_new_with_free_func(g_free);
    ccd->iroutes = g_ptr_array_new_with_free_func(route_free);
    ccd->iroutes6 = g_ptr_array_new_with_free_func(route6_free);
    /* The same parser, writing into the ccd; diagnostics are moved over. */
    ShimmerConfig *cfg = config_new(ccd->filename);
    Parser p;
    parser_init(&p, cfg, SHIMMER_CONTEXT_CCD);
    p.ccd = ccd;
    g_autoptr(GError) error = NULL;
    guint err_line = 0;
    p.items = shimmer_lex(text, len, 1, &err_line, &error);
    if (p.items == NULL) {
        cfg_error(&p, err_line, "%s", error->message);
    } else {
        for (guint i = 0; i < p.items->len; i++) {
            ShimmerItem *it = g_ptr_array_index(p.items, i);
            if (it->kind == SHIMMER_ITEM_BLOCK) {
                cfg_error(&p, it->line, "<%s> is not allowed in a client-config-dir file",
                          it->block_name);
                continue;
            }
            apply_item(&p, it);
        }
        cfg_finish_ccd(&p, server);
    }
    ccd->diagnostics = g_steal_pointer(&cfg->diagnostics);
    cfg->diagnostics = g_ptr_array_new();
    parser_clear(&p);
    shimmer_config_free(cfg);
    return ccd;
}

gboolean shimmer_ccd_has_errors(const ShimmerCcd *ccd)
{
    for (guint i = 0; i < ccd->diagnostics->len; i++) {
        ShimmerDiagnostic *d = g_ptr_array_index(ccd->diagnostics, i);
        if (d->severity == SHIMMER_SEVERITY_ERROR)
            return TRUE;
    }
    return FALSE;
}

static void format_diagnostics(const char *filename, GPtrArray *diagnostics, GString *out);

void shimmer_ccd_format_diagnostics(const ShimmerCcd *ccd, GString *out)
{
    format_diagnostics(ccd->filename, ccd->diagnostics, out);
}

void shimmer_ccd_free(ShimmerCcd *ccd)
{
    if (ccd == NULL)
        return;
    g_free(ccd->filename);
    g_ptr_array_unref(ccd->diagnostics);
    g_ptr_array_unref(ccd->push);
    g_ptr_array_unref(ccd->push_remove);
    g_free(ccd->ifconfig_push_local);
    g_free(ccd->ifconfig_push_netmask);
    g_free(ccd->ifconfig_ipv6_push);
    g_free(ccd->ifconfig_ipv6_push_remote);
    g_ptr_array_unref(ccd->iroutes);
    g_ptr_array_unref(ccd->iroutes6);
    g_free(ccd);
}

gboolean shimmer_config_has_errors(const ShimmerConfig *cfg)
{
    for (guint i = 0; i < cfg->diagnostics->len; i++) {
        ShimmerDiagnostic *d = g_ptr_array_index(cfg->diagnostics, i);
        if (d->severity == SHIMMER_SEVERITY_ERROR)
            return TRUE;
    }
    return FALSE;
}

static gint diag_cmp(gconstpointer a, gconstpointer b)
{
    const ShimmerDiagnostic *x = *(ShimmerDiagnostic *const *)a;
    const ShimmerDiagnostic *y = *(ShimmerDiagnostic *const *)b;
    /* Whole-file findings (line 0) go last. */
    guint lx = x->line ? x->line : G_MAXUINT;
    guint ly = y->line ? y->line : G_MAXUINT;
    return lx < ly ? -1 : lx > ly;
}

static void format_diagnostics(const char *filename, GPtrArray *diagnostics, GString *out)
{
    /* A plain copy: g_ptr_array_copy would carry over the free function. */
    g_autoptr(GPtrArray) sorted = g_ptr_array_sized_new(diagnostics->len);
    for (guint i = 0; i < diagnostics->len; i++)
        g_ptr_array_add(sorted, g_ptr_array_index(diagnostics, i));
    /* g_ptr_array_sort is not stable; equal lines keep their order below. */
    for (guint i = 1; i < sorted->len; i++) {
        for (guint j = i; j > 0 && diag_cmp(&sorted->pdata[j - 1], &sorted->pdata[j]) > 0; j--) {
            gpointer t = sorted->pdata[j];
            sorted->pdata[j] = sorted->pdata[j - 1];
            sorted->pdata[j - 1] = t;
        }
    }
    for (guint i = 0; i < sorted->len; i++) {
        ShimmerDiagnostic *d = g_ptr_array_index(sorted, i);
        const char *sev = d->severity == SHIMMER_SEVERITY_ERROR ? "error" : "warning";
        if (d->line > 0)
            g_string_append_printf(out, "%s:%u: %s: %s\n", filename, d->line, sev, d->message);
        else
            g_string_append_printf(out, "%s: %s: %s\n", filename, sev, d->message);
    }
}

void shimmer_config_format_diagnostics(const ShimmerConfig *cfg, GString *out)
{
    format_diagnostics(cfg->filename, cfg->diagnostics, out);
}

gboolean shimmer_config_file_loader(const char *path, GBytes **contents, GError **error,
                                    gpointer user_data)
{
    /* Non-blocking only for the open: a FIFO without a writer must not hang
     * it. The size is checked while reading, whatever the file type: stat's
     * size means nothing for /dev/zero, a FIFO or a /proc file. */
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        g_set_error_literal(error, G_FILE_ERROR, g_file_error_from_errno(e), g_strerror(e));
        return FALSE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        close(fd);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_ISDIR, "is a directory");
        return FALSE;
    }
    if (S_ISREG(st.st_mode) && st.st_size > SHIMMER_CONFIG_MAX_FILE) {
        close(fd);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "larger than %d bytes",
                    SHIMMER_CONFIG_MAX_FILE);
        return FALSE;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    /* One byte more than allowed tells "too large" from "exactly the limit". */
    gsize cap = SHIMMER_CONFIG_MAX_FILE + 1;
    guint8 *buf = g_malloc(cap);
    gsize len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            shimmer_free_secret(buf, len);
            g_set_error_literal(error, G_FILE_ERROR, g_file_error_from_errno(e), g_strerror(e));
            return FALSE;
        }
        if (n == 0)
            break;
        len += (gsize)n;
    }
    close(fd);
    if (len > SHIMMER_CONFIG_MAX_FILE) {
        /* The caller never sees these bytes, which may hold a key. */
        shimmer_free_secret(buf, len);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "larger than %d bytes",
                    SHIMMER_CONFIG_MAX_FILE);
        return FALSE;
    }
    /* A copy of the right size; realloc could leave the bytes behind. */
    *contents = g_bytes_new(buf, len);
    shimmer_free_secret(buf, len);
    return TRUE;
}

void shimmer_config_free(ShimmerConfig *cfg)
{
    if (cfg == NULL)
        return;
    g_free(cfg->filename);
    g_ptr_array_unref(cfg->diagnostics);
    g_free(cfg->dev);
    g_free(cfg->dev_type);
    g_ptr_array_unref(cfg->connections);
    shimmer_proxy_free(cfg->proxy);
    ShimmerBlob *blobs[] = {&cfg->ca,
                            &cfg->cert,
                            &cfg->key,
                            &cfg->pkcs12,
                            &cfg->extra_certs,
                            &cfg->crl_verify,
                            &cfg->askpass_file,
                            &cfg->tls_auth,
                            &cfg->tls_crypt,
                            &cfg->tls_crypt_v2,
                            &cfg->auth_user_pass_file,
                            &cfg->dh,
                            &cfg->http_proxy_user_pass,
                            &cfg->auth_gen_token_secret};
    for (gsize i = 0; i < G_N_ELEMENTS(blobs); i++)
        cfg_blob_clear(blobs[i]);
    g_free(cfg->tls_cipher);
    g_free(cfg->tls_ciphersuites);
    g_free(cfg->tls_groups);
    g_free(cfg->ecdh_curve);
    g_free(cfg->tls_cert_profile);
    g_free(cfg->verify_x509_name);
    g_array_unref(cfg->peer_fingerprints);
    g_array_unref(cfg->remote_cert_ku);
    g_free(cfg->remote_cert_eku);
    shimmer_wipe(cfg->static_key, sizeof(cfg->static_key));
    if (cfg->tls_crypt_v2_client != NULL)
        shimmer_free_secret(cfg->tls_crypt_v2_client, sizeof(*cfg->tls_crypt_v2_client));
    shimmer_wipe(cfg->tls_crypt_v2_server, sizeof(cfg->tls_crypt_v2_server));
    g_free(cfg->cipher);
    g_array_unref(cfg->data_ciphers);
    g_free(cfg->data_ciphers_fallback);
    g_free(cfg->username);
    shimmer_str_free_secret(cfg->password);
    g_free(cfg->static_challenge);
    g_ptr_array_unref(cfg->routes);
    g_ptr_array_unref(cfg->routes6);
    g_free(cfg->route_gateway);
    g_free(cfg->route_ipv6_gateway);
    g_free(cfg->local);
    g_ptr_array_unref(cfg->pull_filters);
    g_ptr_array_unref(cfg->dhcp_options);
    g_ptr_array_unref(cfg->dns_search_domains);
    g_ptr_array_unref(cfg->dns_servers);
    g_free(cfg->ifconfig_local);
    g_free(cfg->ifconfig_remote);
    g_free(cfg->ifconfig_ipv6_local);
    g_free(cfg->ifconfig_ipv6_remote);
    g_free(cfg->server_network);
    g_free(cfg->server_netmask);
    g_free(cfg->server_ipv6);
    g_free(cfg->ifconfig_ipv6_pool);
    g_free(cfg->ifconfig_pool_persist);
    g_free(cfg->client_config_dir);
    g_free(cfg->x509_username_field);
    cfg_server_plan_free(cfg->plan);
    g_free(cfg->pam_service);
    g_free(cfg->ifconfig_pool_start);
    g_free(cfg->ifconfig_pool_end);
    g_free(cfg->ifconfig_pool_netmask);
    g_ptr_array_unref(cfg->push);
    shimmer_str_free_secret(cfg->auth_token);
    g_free(cfg->auth_token_user);
    g_ptr_array_unref(cfg->ignored);
    if (cfg->priv != NULL) {
        g_hash_table_unref(cfg->priv->replacements);
        g_hash_table_unref(cfg->priv->ignore_unknown);
        shimmer_free_secret(cfg->priv->source, cfg->priv->source_len);
        g_free(cfg->priv->inline_error);
        g_free(cfg->priv);
    }
    g_free(cfg);
}

char *shimmer_config_tls_priority(const ShimmerConfig *cfg, GPtrArray *notes, GError **error)
{
    ShimmerTlsRestrictions r = {
        .tls_cipher = cfg->tls_cipher,
        .tls_ciphersuites = cfg->tls_ciphersuites,
        .tls_groups = cfg->tls_groups,
        .ecdh_curve = cfg->ecdh_curve,
        .tls_cert_profile = cfg->tls_cert_profile,
        .tls_version_min = cfg->tls_version_min,
        .tls_version_max = cfg->tls_version_max,
    };
    return shimmer_tlsprio_build(&r, notes, error);
}

static ShimmerCertRole cert_role_of_tls(ShimmerRemoteCertTls t)
{
    return t == SHIMMER_CERT_TLS_SERVER   ? SHIMMER_CERT_ROLE_SERVER
           : t == SHIMMER_CERT_TLS_CLIENT ? SHIMMER_CERT_ROLE_CLIENT
                                          : SHIMMER_CERT_ROLE_NONE;
}

static ShimmerCertRole cert_role_of_ns(ShimmerNsCertType t)
{
    return t == SHIMMER_NS_CERT_SERVER   ? SHIMMER_CERT_ROLE_SERVER
           : t == SHIMMER_NS_CERT_CLIENT ? SHIMMER_CERT_ROLE_CLIENT
                                         : SHIMMER_CERT_ROLE_NONE;
}

void shimmer_config_get_cert_usage(const ShimmerConfig *cfg, ShimmerCertUsage *out)
{
    out->remote_cert_tls = cert_role_of_tls(cfg->remote_cert_tls);
    out->ns_cert_type = cert_role_of_ns(cfg->ns_cert_type);
    out->remote_cert_ku_set = cfg->remote_cert_ku_set;
    out->remote_cert_ku = cfg->remote_cert_ku;
    out->remote_cert_eku = cfg->remote_cert_eku;
}
