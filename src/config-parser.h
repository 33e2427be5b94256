/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The parser's internals, shared by the files that hold its handlers
 * (config.c, config-proxy.c, config-server.c). Not installed, not for the
 * engine: it sees only the typed ShimmerConfig.
 */

#include <stdbool.h>

#include "config.h"
#include "lexer.h"
#include "tlsprio.h"

typedef struct Parser Parser;
typedef void (*Handler)(Parser *p, const ShimmerItem *it);

/* Where a directive may appear (ShimmerContext as bits). */
enum {
    CTX_FILE = 1 << SHIMMER_CONTEXT_FILE,
    CTX_CONN = 1 << SHIMMER_CONTEXT_CONNECTION,
    CTX_PUSH = 1 << SHIMMER_CONTEXT_PUSH,
    CTX_CCD = 1 << SHIMMER_CONTEXT_CCD,
};

enum {
    F_MULTI = 1 << 0,       /* may repeat (remote, route, push, ...) */
    F_IGNORED = 1 << 1,     /* accepted, warned about, ignored */
    F_SECRET_ARGS = 1 << 2, /* never quote the arguments */
    F_REFUSED = 1 << 3,     /* always an error; the note says why */
};

typedef struct {
    const char *name;
    guint min_args, max_args;
    guint contexts;
    ShimmerRole role; /* the role the directive implies; UNSET = either */
    guint flags;
    Handler handler;  /* NULL for F_REFUSED */
    const char *note; /* ignored or refused: why */
} Directive;

/* A <connection> block or top-level remote before defaults are merged. */
typedef struct {
    char *host;
    gint port;      /* -1 unset */
    gint transport; /* -1 unset */
    ShimmerFamily family;
    bool family_set;
    gint connect_timeout; /* -1 unset */
    gint explicit_exit_notify;
    gint tun_mtu;
    gint mssfix;
    char *local;         /* `local` in this block */
    ShimmerProxy *http;  /* http-proxy (and -option) in this block */
    ShimmerProxy *socks; /* socks-proxy in this block */
    guint line;
    guint remotes; /* how many `remote` lines a block had */
} ConnDraft;

struct Parser {
    ShimmerConfig *cfg;
    ShimmerContext ctx;
    ShimmerLoader loader;
    gpointer loader_data;
    char *base_dir;
    GPtrArray *items;       /* top-level ShimmerItem* */
    GHashTable *blocks;     /* block name -> ShimmerItem* (not connection) */
    GHashTable *block_used; /* block name -> line of the directive using it */
    GPtrArray *drafts;      /* ConnDraft* */
    ConnDraft *cur;         /* the block being parsed, in CTX_CONN */
    guint role_line;
    const char *role_directive;
    gint port_line, rport_line, lport_line;
    gint port_value, rport_value;
    gint keepalive_line, ping_line, ping_restart_line;
    gint tls_auth_line, tls_crypt_line, tls_crypt_v2_line;
    gint key_direction_line, key_direction_value;
    gint tls_auth_dir; /* tls-auth's own direction argument, -1 none */
    gint cipher_line;
    gint fallback_line;
    GHashTable *values; /* directive (or alias) -> "line\targs" for repeats */
    ConnDraft *top;     /* the top level's connection settings (proxies) */
    GPtrArray *plugins; /* ShimmerItem* copies of `plugin` lines (argv only) */
    ShimmerCcd *ccd;    /* the client-config-dir file being parsed (CTX_CCD) */
    guint server_line, server_ipv6_line, ifconfig_ipv6_pool_line, topology_line;
    gint ifconfig_pool_line;
    guint verify_client_cert_line, proto_client_line, ccd_ifconfig_push_line;
    GHashTable *flag_lines;                               /* server flag -> line */
    guint tlsprio_line[SHIMMER_TLSPRIO_ERROR_GNUTLS + 1]; /* by the directive's error code */
};

/* Diagnostics at LINE (0: the whole file). */
void G_GNUC_PRINTF(3, 4) cfg_error(Parser *p, guint line, const char *fmt, ...);
void G_GNUC_PRINTF(3, 4) cfg_warn(Parser *p, guint line, const char *fmt, ...);

/* Argument checks; the cfg_arg_* ones report their own error naming the
 * directive and the argument. */
bool cfg_parse_uint(const char *s, guint64 max, guint64 *out);
bool cfg_arg_uint(Parser *p, const ShimmerItem *it, guint idx, guint64 min, guint64 max,
                  gint64 *out);
bool cfg_arg_port(Parser *p, const ShimmerItem *it, guint idx, gint *out);
bool cfg_is_ipv4(const char *s);
bool cfg_is_ipv6(const char *s);
bool cfg_is_netmask(const char *s);
bool cfg_is_ipv6_prefix(const char *s, bool bits_optional);
bool cfg_is_hostname(const char *s);
bool cfg_parse_proto(const char *s, ShimmerTransport *t, ShimmerFamily *f, bool *server_side);

void cfg_set_role(Parser *p, ShimmerRole role, const ShimmerItem *it);

/* Files and inline blocks. */
char *cfg_resolve_path(Parser *p, const char *path);
void cfg_blob_clear(ShimmerBlob *b);
void cfg_set_inline_replacement(Parser *p, guint line, char *text);
bool cfg_load_blob(Parser *p, const ShimmerItem *it, const char *arg, ShimmerBlob *blob,
                   bool secret);
/* config-proxy.c */
void cfg_h_http_proxy(Parser *p, const ShimmerItem *it);
void cfg_h_http_proxy_option(Parser *p, const ShimmerItem *it);
void cfg_h_http_proxy_user_pass(Parser *p, const ShimmerItem *it);
void cfg_h_socks_proxy(Parser *p, const ShimmerItem *it);
/* Reads the proxies' credentials and checks them (once, client role). */
void cfg_finish_proxies(Parser *p);
/* The proxy for the connection of draft D: its own, else the top level's
 * (NULL: direct). A new copy. */
ShimmerProxy *cfg_proxy_for(Parser *p, const ConnDraft *d);
void cfg_conn_draft_free(gpointer data);

/* config-server.c */
void cfg_h_server(Parser *p, const ShimmerItem *it);
void cfg_h_server_ipv6(Parser *p, const ShimmerItem *it);
void cfg_h_ifconfig_pool(Parser *p, const ShimmerItem *it);
void cfg_h_ifconfig_ipv6_pool(Parser *p, const ShimmerItem *it);
void cfg_h_ifconfig_pool_persist(Parser *p, const ShimmerItem *it);
void cfg_h_push(Parser *p, const ShimmerItem *it);
void cfg_h_server_flag(Parser *p, const ShimmerItem *it);
void cfg_h_client_config_dir(Parser *p, const ShimmerItem *it);
void cfg_h_auth_gen_token(Parser *p, const ShimmerItem *it);
void cfg_h_auth_gen_token_secret(Parser *p, const ShimmerItem *it);
void cfg_h_tls_crypt_v2_max_age(Parser *p, const ShimmerItem *it);
void cfg_h_x509_username_field(Parser *p, const ShimmerItem *it);
void cfg_h_dh(Parser *p, const ShimmerItem *it);
void cfg_h_ifconfig_push(Parser *p, const ShimmerItem *it);
void cfg_h_ifconfig_ipv6_push(Parser *p, const ShimmerItem *it);
void cfg_h_iroute(Parser *p, const ShimmerItem *it);
void cfg_h_iroute_ipv6(Parser *p, const ShimmerItem *it);
void cfg_h_ccd_flag(Parser *p, const ShimmerItem *it);
void cfg_h_push_remove(Parser *p, const ShimmerItem *it);
void cfg_finish_server(Parser *p);
void cfg_finish_ccd(Parser *p, const ShimmerConfig *server);
void cfg_server_plan_free(ShimmerServerPlan *plan);

void cfg_record_inline(Parser *p, const ShimmerItem *it, const ShimmerBlob *blob,
                       const char *prefix_lines);
