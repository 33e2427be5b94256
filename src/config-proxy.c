/* SPDX-License-Identifier: MIT */
/*
 * http-proxy, http-proxy-option, http-proxy-user-pass and socks-proxy: the
 * way to a server through a proxy, into typed ShimmerProxy settings. The
 * proxy client itself is not here; this makes the configuration complete.
 */
#include <string.h>

#include "config-parser.h"
#include "config-private.h"
#include "secure.h"

#define MAX_CUSTOM_HEADERS 10

static void header_free(gpointer data)
{
    ShimmerHttpHeader *h = data;
    g_free(h->name);
    g_free(h->content);
    g_free(h);
}

static ShimmerProxy *proxy_new(ShimmerProxyType type)
{
    ShimmerProxy *x = g_new0(ShimmerProxy, 1);
    x->type = type;
    x->custom_headers = g_ptr_array_new_with_free_func(header_free);
    return x;
}

static void proxy_clear_credentials(ShimmerProxy *x)
{
    g_clear_pointer(&x->username, g_free);
    g_clear_pointer(&x->password, shimmer_str_free_secret);
}

void shimmer_proxy_free(ShimmerProxy *x)
{
    if (x == NULL)
        return;
    g_free(x->host);
    g_free(x->auth_file);
    proxy_clear_credentials(x);
    g_free(x->http_version);
    g_free(x->user_agent);
    g_ptr_array_unref(x->custom_headers);
    g_free(x);
}

ShimmerProxy *shimmer_proxy_copy(const ShimmerProxy *x)
{
    if (x == NULL)
        return NULL;
    ShimmerProxy *c = proxy_new(x->type);
    c->host = g_strdup(x->host);
    c->port = x->port;
    c->line = x->line;
    c->auth = x->auth;
    c->auth_prompt = x->auth_prompt;
    c->auth_file = g_strdup(x->auth_file);
    c->auth_inline = x->auth_inline;
    c->username = g_strdup(x->username);
    c->password = g_strdup(x->password);
    c->http_version = g_strdup(x->http_version);
    c->user_agent = g_strdup(x->user_agent);
    for (guint i = 0; i < x->custom_headers->len; i++) {
        const ShimmerHttpHeader *h = g_ptr_array_index(x->custom_headers, i);
        ShimmerHttpHeader *n = g_new0(ShimmerHttpHeader, 1);
        n->name = g_strdup(h->name);
        n->content = g_strdup(h->content);
        g_ptr_array_add(c->custom_headers, n);
    }
    return c;
}

void cfg_conn_draft_free(gpointer data)
{
    ConnDraft *d = data;
    g_free(d->host);
    g_free(d->local);
    shimmer_proxy_free(d->http);
    shimmer_proxy_free(d->socks);
    g_free(d);
}

static ConnDraft *context_draft(Parser *p)
{
    return p->cur != NULL ? p->cur : p->top;
}

static bool proxy_address(Parser *p, const ShimmerItem *it, const char *port_arg, ShimmerProxy *x)
{
    if (!cfg_is_hostname(it->argv[1])) {
        cfg_error(p, it->line, "'%s': '%s' is not a host name or address", it->argv[0],
                  it->argv[1]);
        return false;
    }
    guint64 port;
    if (!cfg_parse_uint(port_arg, 65535, &port) || port == 0) {
        cfg_error(p, it->line, "'%s': port '%s' is not a number from 1 to 65535", it->argv[0],
                  port_arg);
        return false;
    }
    g_free(x->host);
    x->host = g_strdup(it->argv[1]);
    x->port = (guint16)port;
    x->line = it->line;
    return true;
}

/* http-proxy SERVER PORT [AUTHFILE|auto|auto-nct] [none|basic|ntlm|ntlm2] */
void cfg_h_http_proxy(Parser *p, const ShimmerItem *it)
{
    if (it->argc < 3) {
        cfg_error(p, it->line, "'http-proxy %s': the proxy's port is missing", it->argv[1]);
        return;
    }
    ConnDraft *d = context_draft(p);
    if (d->http == NULL)
        d->http = proxy_new(SHIMMER_PROXY_HTTP);
    ShimmerProxy *x = d->http;
    ShimmerProxyAuth auth = SHIMMER_PROXY_AUTH_NONE;
    const char *file = NULL;
    if (it->argc > 3) {
        const char *a = it->argv[3];
        if (strcmp(a, "auto") == 0 || strcmp(a, "auto-nct") == 0) {
            if (it->argc > 4) {
                cfg_error(p, it->line, "'http-proxy ... %s' takes no authentication method", a);
                return;
            }
            auth = a[4] == '\0' ? SHIMMER_PROXY_AUTH_AUTO : SHIMMER_PROXY_AUTH_AUTO_NCT;
        } else {
            file = a;
            auth = SHIMMER_PROXY_AUTH_BASIC;
            const char *m = it->argc > 4 ? it->argv[4] : "basic";
            if (strcmp(m, "none") == 0)
                auth = SHIMMER_PROXY_AUTH_NONE;
            else if (strcmp(m, "basic") == 0)
                auth = SHIMMER_PROXY_AUTH_BASIC;
            else if (strcmp(m, "ntlm") == 0) {
                auth = SHIMMER_PROXY_AUTH_NTLM;
                cfg_warn(p, it->line,
                         "'http-proxy ... ntlm': NTLM version 1 is weak and OpenVPN 2.7 drops "
                         "it; use ntlm2 if the proxy allows");
            } else if (strcmp(m, "ntlm2") == 0)
                auth = SHIMMER_PROXY_AUTH_NTLM2;
            else {
                cfg_error(p, it->line,
                          "'http-proxy': unknown authentication method '%s' (none, basic, "
                          "ntlm, ntlm2)",
                          m);
                return;
            }
        }
    }
    if (!proxy_address(p, it, it->argv[2], x))
        return;
    x->auth = auth;
    x->auth_prompt = file != NULL && strcmp(file, "stdin") == 0;
    g_free(x->auth_file);
    x->auth_file = file != NULL && !x->auth_prompt ? g_strdup(file) : NULL;
    proxy_clear_credentials(x);
}

/* http-proxy-option VERSION v | AGENT a | CUSTOM-HEADER name [content] */
void cfg_h_http_proxy_option(Parser *p, const ShimmerItem *it)
{
    ConnDraft *d = context_draft(p);
    if (d->http == NULL)
        d->http = proxy_new(SHIMMER_PROXY_HTTP);
    ShimmerProxy *x = d->http;
    const char *kw = it->argv[1];
    if (strcmp(kw, "VERSION") == 0 || strcmp(kw, "AGENT") == 0) {
        if (it->argc != 3) {
            cfg_error(p, it->line, "'http-proxy-option %s' takes one value", kw);
            return;
        }
        if (kw[0] == 'V') {
            if (strcmp(it->argv[2], "1.0") != 0 && strcmp(it->argv[2], "1.1") != 0) {
                cfg_error(p, it->line, "'http-proxy-option VERSION': '%s' is not 1.0 or 1.1",
                          it->argv[2]);
                return;
            }
            g_free(x->http_version);
            x->http_version = g_strdup(it->argv[2]);
        } else {
            g_free(x->user_agent);
            x->user_agent = g_strdup(it->argv[2]);
        }
        return;
    }
    if (strcmp(kw, "CUSTOM-HEADER") == 0 || strcmp(kw, "EXT1") == 0 || strcmp(kw, "EXT2") == 0) {
        if (it->argc < 3) {
            cfg_error(p, it->line, "'http-proxy-option %s' needs a header", kw);
            return;
        }
        if (x->custom_headers->len >= MAX_CUSTOM_HEADERS) {
            cfg_error(p, it->line, "'http-proxy-option %s': at most %d custom headers", kw,
                      MAX_CUSTOM_HEADERS);
            return;
        }
        /* A header line must not smuggle a second one into the request. */
        for (guint i = 2; i < it->argc; i++) {
            if (strpbrk(it->argv[i], "\r\n") != NULL) {
                cfg_error(p, it->line, "'http-proxy-option %s': a header holds a line break", kw);
                return;
            }
        }
        ShimmerHttpHeader *h = g_new0(ShimmerHttpHeader, 1);
        h->name = g_strdup(it->argv[2]);
        h->content = it->argc > 3 ? g_strdup(it->argv[3]) : NULL;
        g_ptr_array_add(x->custom_headers, h);
        return;
    }
    cfg_error(p, it->line,
              "'http-proxy-option': unknown option '%s' (VERSION, AGENT, CUSTOM-HEADER)", kw);
}

/* http-proxy-user-pass FILE, or the <http-proxy-user-pass> block. */
void cfg_h_http_proxy_user_pass(Parser *p, const ShimmerItem *it)
{
    ShimmerBlob *b = &p->cfg->http_proxy_user_pass;
    if (!cfg_load_blob(p, it, it->argc > 1 ? it->argv[1] : NULL, b, true))
        return;
    cfg_record_inline(p, it, b, NULL);
}

/* socks-proxy SERVER [PORT] [AUTHFILE] */
void cfg_h_socks_proxy(Parser *p, const ShimmerItem *it)
{
    ConnDraft *d = context_draft(p);
    if (d->socks == NULL)
        d->socks = proxy_new(SHIMMER_PROXY_SOCKS);
    ShimmerProxy *x = d->socks;
    if (!proxy_address(p, it, it->argc > 2 ? it->argv[2] : "1080", x))
        return;
    g_free(x->auth_file);
    x->auth_file = it->argc > 3 ? g_strdup(it->argv[3]) : NULL;
    x->auth_prompt = false;
    x->auth = x->auth_file != NULL ? SHIMMER_PROXY_AUTH_BASIC : SHIMMER_PROXY_AUTH_NONE;
    proxy_clear_credentials(x);
}

/* Line 1 the user name, line 2 the password (optional: then asked for). */
static bool split_credentials(Parser *p, guint line, const char *what, const ShimmerBlob *b,
                              ShimmerProxy *x)
{
    g_auto(GStrv) lines = g_strsplit((const char *)b->data, "\n", 3);
    bool ok = lines[0] != NULL && g_strstrip(lines[0])[0] != '\0';
    if (!ok) {
        cfg_error(p, line, "'%s': the first line of %s must hold the user name", what,
                  b->is_inline ? "the inline block" : b->path);
    } else {
        proxy_clear_credentials(x);
        x->username = g_strdup(lines[0]);
        if (lines[1] != NULL) {
            g_strchomp(lines[1]);
            gsize l = strlen(lines[1]);
            if (l > 0 && lines[1][l - 1] == '\r')
                lines[1][l - 1] = '\0';
            if (lines[1][0] != '\0')
                x->password = g_strdup(lines[1]);
        }
    }
    for (guint i = 0; lines[i] != NULL; i++)
        shimmer_wipe(lines[i], strlen(lines[i]));
    return ok;
}

/* --inline output: credentials read from an authfile become one
 * <http-proxy-user-pass> block at the end of the file (a block may not stand
 * inside <connection>), which then wins over the authfile as in OpenVPN. */
static void inline_http_credentials(Parser *p, const ShimmerProxy *x, const ShimmerBlob *b,
                                    GString **seen)
{
    if (*seen != NULL) {
        if ((*seen)->len != b->len || memcmp((*seen)->str, b->data, b->len) != 0) {
            g_free(p->cfg->priv->inline_error);
            p->cfg->priv->inline_error =
                g_strdup_printf("line %u: http-proxy credentials from two different files "
                                "cannot both become the one <http-proxy-user-pass> block",
                                x->line);
        }
        return;
    }
    *seen = g_string_new_len((const char *)b->data, (gssize)b->len);
    const char *src = p->cfg->priv->source;
    gsize len = p->cfg->priv->source_len;
    if (src == NULL || len == 0)
        return;
    /* The last line and its number, as config-output.c counts them. */
    guint last = 1;
    gsize last_start = 0;
    for (gsize i = 0; i < len; i++) {
        if (src[i] == '\n' && i + 1 < len) {
            last++;
            last_start = i + 1;
        }
    }
    const char *prev = g_hash_table_lookup(p->cfg->priv->replacements, GUINT_TO_POINTER(last));
    GString *s = g_string_new(NULL);
    if (prev != NULL) {
        g_string_append(s, prev);
    } else {
        gsize n = len - last_start;
        if (n > 0 && src[last_start + n - 1] == '\n')
            n--;
        if (n > 0 && src[last_start + n - 1] == '\r')
            n--;
        g_string_append_len(s, src + last_start, (gssize)n);
    }
    g_string_append(s, "\n<http-proxy-user-pass>\n");
    g_string_append_len(s, (const char *)b->data, (gssize)b->len);
    if (b->len > 0 && b->data[b->len - 1] != '\n')
        g_string_append_c(s, '\n');
    g_string_append(s, "</http-proxy-user-pass>");
    cfg_set_inline_replacement(p, last, g_string_free(s, FALSE));
}

static void load_proxy_credentials(Parser *p, ConnDraft *d, GString **seen)
{
    ShimmerProxy *proxies[2] = {d->http, d->socks};
    if (d->http != NULL && d->http->host != NULL && d->socks != NULL) {
        cfg_error(p, MAX(d->http->line, d->socks->line),
                  "'http-proxy' (line %u) and 'socks-proxy' (line %u) cannot both be used: "
                  "choose one",
                  d->http->line, d->socks->line);
        return;
    }
    if (d->http != NULL && d->http->host == NULL)
        return; /* options only; the top level's proxy may use them */
    for (guint i = 0; i < 2; i++) {
        ShimmerProxy *x = proxies[i];
        if (x == NULL)
            continue;
        const char *what = x->type == SHIMMER_PROXY_HTTP ? "http-proxy" : "socks-proxy";
        const ShimmerBlob *up = &p->cfg->http_proxy_user_pass;
        if (x->type == SHIMMER_PROXY_HTTP && up->present && x->auth != SHIMMER_PROXY_AUTH_NONE) {
            /* As OpenVPN: it replaces the authfile, which is not read. */
            x->auth_prompt = false;
            x->auth_inline = up->is_inline;
            g_free(x->auth_file);
            x->auth_file = up->is_inline ? NULL : g_strdup(up->path);
            split_credentials(p, up->line, "http-proxy-user-pass", up, x);
            continue;
        }
        if (x->auth_file == NULL)
            continue;
        char *argv[] = {(char *)what, NULL};
        ShimmerItem synth = {
            .kind = SHIMMER_ITEM_DIRECTIVE, .line = x->line, .argv = argv, .argc = 1};
        ShimmerBlob b = {0};
        if (cfg_load_blob(p, &synth, x->auth_file, &b, true) &&
            split_credentials(p, x->line, what, &b, x)) {
            if (x->type == SHIMMER_PROXY_HTTP) {
                inline_http_credentials(p, x, &b, seen);
            } else {
                g_free(p->cfg->priv->inline_error);
                p->cfg->priv->inline_error =
                    g_strdup_printf("line %u: socks-proxy's authfile has no inline form", x->line);
            }
        }
        cfg_blob_clear(&b);
    }
}

void cfg_finish_proxies(Parser *p)
{
    GString *seen = NULL;
    load_proxy_credentials(p, p->top, &seen);
    for (guint i = 0; i < p->drafts->len; i++)
        load_proxy_credentials(p, g_ptr_array_index(p->drafts, i), &seen);
    if (seen != NULL) {
        shimmer_wipe(seen->str, seen->len);
        g_string_free(seen, TRUE);
    }
    const ShimmerBlob *up = &p->cfg->http_proxy_user_pass;
    bool used = false;
    for (guint i = 0; i < p->drafts->len && !used; i++) {
        ConnDraft *d = g_ptr_array_index(p->drafts, i);
        used = d->http != NULL && d->http->host != NULL;
    }
    used |= p->top->http != NULL && p->top->http->host != NULL;
    if (up->present && !used)
        cfg_warn(p, up->line, "'http-proxy-user-pass' is given but no 'http-proxy' uses it");
    if (p->top->http != NULL && p->top->http->host == NULL && !used)
        cfg_warn(p, 0, "'http-proxy-option' is given but there is no 'http-proxy'");
    p->cfg->proxy = cfg_proxy_for(p, p->top);
}

/* Block options over the top level's, a block's own proxy over the top's. */
ShimmerProxy *cfg_proxy_for(Parser *p, const ConnDraft *d)
{
    const ConnDraft *top = p->top;
    if (d->socks != NULL)
        return shimmer_proxy_copy(d->socks);
    const ShimmerProxy *base = NULL;
    if (d->http != NULL && d->http->host != NULL)
        base = d->http;
    else if (top->http != NULL && top->http->host != NULL)
        base = top->http;
    if (base == NULL)
        return d != top && top->socks != NULL ? shimmer_proxy_copy(top->socks) : NULL;
    ShimmerProxy *x = shimmer_proxy_copy(base);
    /* http-proxy-option lines of the block apply to an inherited proxy. */
    const ShimmerProxy *opts = d->http;
    if (opts != NULL && opts != base) {
        if (opts->http_version != NULL) {
            g_free(x->http_version);
            x->http_version = g_strdup(opts->http_version);
        }
        if (opts->user_agent != NULL) {
            g_free(x->user_agent);
            x->user_agent = g_strdup(opts->user_agent);
        }
        for (guint i = 0; i < opts->custom_headers->len; i++) {
            const ShimmerHttpHeader *h = g_ptr_array_index(opts->custom_headers, i);
            ShimmerHttpHeader *n = g_new0(ShimmerHttpHeader, 1);
            n->name = g_strdup(h->name);
            n->content = g_strdup(h->content);
            g_ptr_array_add(x->custom_headers, n);
        }
    }
    return x;
}
