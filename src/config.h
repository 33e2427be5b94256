/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "keys.h"
#include "tlsprio.h"

G_BEGIN_DECLS

/*
 * The OpenVPN configuration, parsed into types.
 *
 * shimmer_config_parse() reads the text of a .ovpn file. It opens no file
 * itself: every file the configuration names (ca, cert, key, ...) is read
 * through the caller's loader. Relative paths are resolved against the
 * directory of the configuration file (OpenVPN resolves them against its
 * working directory, which is rarely what a user importing a profile means);
 * `cd DIR` moves that directory as OpenVPN's `cd` would.
 *
 * Every directive of OpenVPN 2.6 is known (shimmer_config_directive_status):
 * applied into a field below, ignored with a warning saying why, or refused
 * with an error saying why. A directive given again overrides the earlier
 * one as in OpenVPN (the last one counts; a file and an inline block: the
 * later of the two), with a warning naming both lines. Different directives
 * that contradict each other (tls-auth with tls-crypt, pkcs12 with cert, a
 * client directive in a server file) are errors naming both lines. The
 * result carries diagnostics (errors and warnings with the line they refer
 * to); the configuration is usable only when there is no error.
 */

typedef enum {
    SHIMMER_SEVERITY_WARNING,
    SHIMMER_SEVERITY_ERROR,
} ShimmerSeverity;

typedef struct {
    ShimmerSeverity severity;
    guint line; /* 0 when not tied to a line */
    char *message;
} ShimmerDiagnostic;

typedef enum {
    SHIMMER_ROLE_UNSET,
    SHIMMER_ROLE_CLIENT,
    SHIMMER_ROLE_SERVER,
} ShimmerRole;

typedef enum {
    SHIMMER_TRANSPORT_UDP,
    SHIMMER_TRANSPORT_TCP,
} ShimmerTransport;

typedef enum {
    SHIMMER_FAMILY_ANY,
    SHIMMER_FAMILY_INET,
    SHIMMER_FAMILY_INET6,
} ShimmerFamily;

/* Key material or a certificate: from a file or an inline block. */
typedef struct {
    bool present;
    bool is_inline;
    char *path;     /* as written in the configuration; NULL when inline */
    char *resolved; /* the path handed to the loader; NULL when inline */
    guint8 *data;   /* the bytes (NUL terminated for convenience) */
    gsize len;
    bool secret; /* wiped on free, never printed */
    guint line;  /* where it was given */
    /* Private to the parser: what --inline output drops if it is overridden. */
    guint directive_line; /* the directive naming it; 0 for a block alone */
    char *block_name;     /* the inline block it came from */
} ShimmerBlob;

/* Proxies (http-proxy, socks-proxy): the way to one server, in a
 * <connection> block or at the top level (then for every server). */
typedef enum {
    SHIMMER_PROXY_HTTP,
    SHIMMER_PROXY_SOCKS,
} ShimmerProxyType;

/* http-proxy ... [authfile METHOD]: how to answer the proxy's 407. */
typedef enum {
    SHIMMER_PROXY_AUTH_NONE,  /* no credentials (no authfile given) */
    SHIMMER_PROXY_AUTH_BASIC, /* the default with an authfile */
    SHIMMER_PROXY_AUTH_NTLM,  /* NTLM v1: deprecated in OpenVPN 2.6 */
    SHIMMER_PROXY_AUTH_NTLM2,
    SHIMMER_PROXY_AUTH_AUTO,     /* `auto`: what the proxy asks for (basic, digest, ntlm2) */
    SHIMMER_PROXY_AUTH_AUTO_NCT, /* `auto-nct`: the same, but never clear text (not basic) */
} ShimmerProxyAuth;

/* http-proxy-option CUSTOM-HEADER NAME [CONTENT] (also EXT1, EXT2). */
typedef struct {
    char *name;
    char *content; /* NULL: NAME is the whole header line */
} ShimmerHttpHeader;

typedef struct {
    ShimmerProxyType type;
    char *host;
    guint16 port; /* socks-proxy defaults to 1080 */
    guint line;   /* of the http-proxy / socks-proxy directive */
    /* Credentials: from the authfile (line 1 user, line 2 password), from
     * http-proxy-user-pass (a file or an inline block; it replaces an
     * http-proxy authfile, which is then not read), or asked for (`stdin`).
     * The password is a secret: wiped on free, never printed. */
    ShimmerProxyAuth auth; /* SOCKS: NONE, or BASIC when there are credentials */
    bool auth_prompt;      /* the authfile is `stdin`: ask the user */
    char *auth_file;       /* as written; NULL when none, `stdin` or inline */
    bool auth_inline;      /* from <http-proxy-user-pass> */
    char *username;
    char *password; /* NULL: not stored (ask, if the proxy wants one) */
    /* http-proxy-option (HTTP only) */
    char *http_version;        /* VERSION; NULL = "1.0" */
    char *user_agent;          /* AGENT; NULL = OpenVPN's default */
    GPtrArray *custom_headers; /* ShimmerHttpHeader*, at most 10 */
} ShimmerProxy;

/* One server to try, after merging <connection> block or top-level defaults. */
typedef struct {
    char *host;
    guint16 port;
    ShimmerTransport transport;
    ShimmerFamily family;
    guint connect_timeout;     /* seconds */
    gint explicit_exit_notify; /* -1 unset, else count */
    guint tun_mtu;             /* 0 = default */
    gint mssfix;               /* -1 unset */
    ShimmerProxy *proxy;       /* NULL: direct */
    char *local;               /* `local`: the address to send from; NULL any */
    guint line;
} ShimmerConnection;

typedef enum {
    SHIMMER_DIGEST_SHA1,
    SHIMMER_DIGEST_SHA224,
    SHIMMER_DIGEST_SHA256,
    SHIMMER_DIGEST_SHA384,
    SHIMMER_DIGEST_SHA512,
} ShimmerDigest;

typedef enum {
    SHIMMER_CIPHER_AES_128_GCM,
    SHIMMER_CIPHER_AES_192_GCM,
    SHIMMER_CIPHER_AES_256_GCM,
    SHIMMER_CIPHER_CHACHA20_POLY1305,
    SHIMMER_CIPHER_N_AEAD,
} ShimmerCipher;

typedef enum {
    SHIMMER_WRAP_NONE,
    SHIMMER_WRAP_TLS_AUTH,
    SHIMMER_WRAP_TLS_CRYPT,
    SHIMMER_WRAP_TLS_CRYPT_V2,
} ShimmerWrapMode;

typedef enum {
    SHIMMER_X509_NAME_UNSET,
    SHIMMER_X509_NAME_SUBJECT,
    SHIMMER_X509_NAME_NAME,
    SHIMMER_X509_NAME_PREFIX,
} ShimmerX509NameType;

typedef enum {
    SHIMMER_CERT_TLS_UNSET,
    SHIMMER_CERT_TLS_SERVER,
    SHIMMER_CERT_TLS_CLIENT,
} ShimmerRemoteCertTls;

/* ns-cert-type: the peer certificate's purpose, checked as OpenVPN 2.6 with
 * OpenSSL does (shimmer_keys_check_cert_usage()). */
typedef enum {
    SHIMMER_NS_CERT_UNSET,
    SHIMMER_NS_CERT_SERVER,
    SHIMMER_NS_CERT_CLIENT,
} ShimmerNsCertType;

typedef enum {
    SHIMMER_AUTH_USER_PASS_NONE,
    SHIMMER_AUTH_USER_PASS_PROMPT, /* ask the user (terminal, D-Bus, NM) */
    SHIMMER_AUTH_USER_PASS_STORED, /* from a file or an inline block */
} ShimmerAuthUserPassMode;

typedef enum {
    SHIMMER_AUTH_RETRY_NONE,
    SHIMMER_AUTH_RETRY_NOINTERACT,
    SHIMMER_AUTH_RETRY_INTERACT,
} ShimmerAuthRetry;

typedef enum {
    SHIMMER_TOPOLOGY_UNSET,
    SHIMMER_TOPOLOGY_NET30,
    SHIMMER_TOPOLOGY_P2P,
    SHIMMER_TOPOLOGY_SUBNET,
} ShimmerTopology;

/* comp-lzo / compress: the framing of data packets. Shimmer never compresses
 * what it sends (OpenVPN 2.6's default, "allow-compression asym"), but
 * decompresses what the server sends (compress.h) when the profile allows
 * an algorithm (ShimmerCompAlgorithm). */
typedef enum {
    SHIMMER_COMP_NONE,    /* no compression framing */
    SHIMMER_COMP_LZO_NO,  /* comp-lzo (any form), compress lzo: a header byte
                           * in front (0xFA uncompressed, 0x66 LZO) */
    SHIMMER_COMP_STUB,    /* compress [stub], compress lz4: the "swap" form
                           * (0xFB uncompressed, 0x69 LZ4) */
    SHIMMER_COMP_STUB_V2, /* compress stub-v2, compress lz4-v2: 0x50 escape */
} ShimmerCompFraming;

/* What the server may compress its packets with (what Shimmer accepts and
 * decompresses). NONE: only uncompressed packets (stub framings). */
typedef enum {
    SHIMMER_COMP_ALG_NONE,
    SHIMMER_COMP_ALG_LZO,
    SHIMMER_COMP_ALG_LZ4,
} ShimmerCompAlgorithm;

typedef enum {
    SHIMMER_ALLOW_COMP_UNSET,
    SHIMMER_ALLOW_COMP_NO,
    SHIMMER_ALLOW_COMP_ASYM,
    SHIMMER_ALLOW_COMP_YES,
} ShimmerAllowCompression;

typedef enum {
    SHIMMER_PULL_FILTER_ACCEPT,
    SHIMMER_PULL_FILTER_IGNORE,
    SHIMMER_PULL_FILTER_REJECT,
} ShimmerPullFilterAction;

typedef struct {
    ShimmerPullFilterAction action;
    char *text;
} ShimmerPullFilter;

/* route NETWORK [NETMASK [GATEWAY [METRIC]]]: NETWORK may be a host name or
 * one of the keywords; GATEWAY may be an address or a keyword. Kept as text
 * where OpenVPN itself resolves at connect time. */
typedef struct {
    char *network; /* address, host name, "vpn_gateway", "net_gateway", "remote_host" */
    char *netmask; /* NULL = 255.255.255.255 */
    char *gateway; /* NULL = the VPN gateway */
    gint metric;   /* -1 = default */
} ShimmerRoute;

typedef struct {
    char *prefix;  /* "2001:db8::/32" */
    char *gateway; /* NULL = the VPN gateway */
    gint metric;
} ShimmerRoute6;

/* redirect-gateway flags */
enum {
    SHIMMER_REDIRECT_ENABLED = 1 << 0,
    SHIMMER_REDIRECT_LOCAL = 1 << 1,
    SHIMMER_REDIRECT_AUTOLOCAL = 1 << 2,
    SHIMMER_REDIRECT_DEF1 = 1 << 3,
    SHIMMER_REDIRECT_BYPASS_DHCP = 1 << 4,
    SHIMMER_REDIRECT_BYPASS_DNS = 1 << 5,
    SHIMMER_REDIRECT_BLOCK_LOCAL = 1 << 6,
    SHIMMER_REDIRECT_IPV6 = 1 << 7,
    SHIMMER_REDIRECT_NOT_IPV4 = 1 << 8,
};

typedef struct {
    char *type;  /* DNS, DNS6, DOMAIN, DOMAIN-SEARCH, ADAPTER_DOMAIN_SUFFIX, WINS, NTP, ... */
    char *value; /* NULL for DISABLE-NBT */
} ShimmerDhcpOption;

typedef enum {
    SHIMMER_DNSSEC_UNSET,
    SHIMMER_DNSSEC_NO,
    SHIMMER_DNSSEC_YES,
    SHIMMER_DNSSEC_OPTIONAL,
} ShimmerDnssec;

typedef enum {
    SHIMMER_DNS_TRANSPORT_UNSET,
    SHIMMER_DNS_TRANSPORT_PLAIN,
    SHIMMER_DNS_TRANSPORT_DOH,
    SHIMMER_DNS_TRANSPORT_DOT,
} ShimmerDnsTransport;

/* dns server N ...: one resolver, with the priority N. */
typedef struct {
    gint priority;
    GPtrArray *addresses;       /* char*: "addr" or "addr:port" as written */
    guint16 port;               /* 0 = default */
    GPtrArray *resolve_domains; /* char* */
    ShimmerDnssec dnssec;
    ShimmerDnsTransport transport;
    char *sni;
} ShimmerDnsServer;

typedef enum {
    SHIMMER_VERIFY_CLIENT_CERT_UNSET,
    SHIMMER_VERIFY_CLIENT_CERT_NONE,
    SHIMMER_VERIFY_CLIENT_CERT_OPTIONAL,
    SHIMMER_VERIFY_CLIENT_CERT_REQUIRE,
} ShimmerVerifyClientCert;

/* Where a directive is allowed. A configuration file, a <connection> block
 * and a PUSH_REPLY are parsed by the same code with different contexts. */
typedef enum {
    SHIMMER_CONTEXT_FILE,
    SHIMMER_CONTEXT_CONNECTION,
    SHIMMER_CONTEXT_PUSH,
    SHIMMER_CONTEXT_CCD, /* a client-config-dir file on a server */
} ShimmerContext;

typedef struct ShimmerConfig {
    char *filename;         /* for diagnostics */
    GPtrArray *diagnostics; /* ShimmerDiagnostic* */

    /* Role */
    ShimmerRole role;
    bool client; /* the `client` helper directive */
    bool tls_client;
    bool tls_server;
    bool pull;
    bool mode_server;

    /* Device */
    char *dev;      /* "tun" or "tunN" */
    char *dev_type; /* "tun" or NULL */
    ShimmerTopology topology;
    guint tun_mtu;   /* 0 = default 1500 */
    gint mssfix;     /* -1 unset, 0 disabled */
    bool mssfix_mtu; /* mssfix N mtu */
    bool mssfix_fixed;
    gint mark; /* -1 unset */

    /* Connections */
    GPtrArray *connections; /* ShimmerConnection* (top-level remotes or blocks) */
    bool has_connection_blocks;
    ShimmerTransport transport;
    ShimmerFamily family;
    guint16 rport; /* port / rport; default 1194 */
    gint lport;    /* -1 unset, 0 = any */
    bool remote_random;
    bool remote_random_hostname;
    guint connect_retry;           /* seconds, default 1 (UDP) / 5 */
    guint connect_retry_max_delay; /* seconds, default 300 */
    gint connect_retry_max;        /* 0 = unlimited */
    guint connect_timeout;         /* default 120 */
    gint resolv_retry;             /* seconds; -1 infinite */
    char *local;                   /* `local ADDR` at the top level; NULL any */
    gint proto_force;              /* -1, or the ShimmerTransport to keep */
    /* The top-level proxy (each ShimmerConnection holds its own merged copy);
     * http-proxy-user-pass as given (a secret). */
    ShimmerProxy *proxy;
    ShimmerBlob http_proxy_user_pass;

    /* TLS identity and verification */
    ShimmerBlob ca;
    ShimmerBlob cert;
    ShimmerBlob key;
    ShimmerBlob pkcs12;
    ShimmerBlob extra_certs;
    ShimmerBlob crl_verify;
    bool key_encrypted;
    bool askpass;             /* a passphrase for the private key is needed */
    ShimmerBlob askpass_file; /* secret: the passphrase */
    ShimmerTlsVersion tls_version_min;
    bool tls_version_min_or_highest;
    ShimmerTlsVersion tls_version_max;
    char *tls_cipher;
    char *tls_ciphersuites;
    char *tls_groups;
    char *ecdh_curve;       /* used as tls-groups when that is not given */
    char *tls_cert_profile; /* insecure, legacy, preferred, suiteb */
    /* All of the above and the versions become one GnuTLS priority string:
     * shimmer_config_tls_priority(); the parser checks it. */
    ShimmerRemoteCertTls remote_cert_tls;
    /* Further checks of the peer's certificate, all applied by
     * shimmer_keys_check_cert_usage() (keys.h, through
     * shimmer_config_get_cert_usage()), together with the key usage
     * and EKU parts of remote-cert-tls. */
    ShimmerNsCertType ns_cert_type;
    bool remote_cert_ku_set; /* remote-cert-ku given: the KU extension must be there */
    GArray *remote_cert_ku;  /* guint; one must be contained in the certificate's KU bits
                              * (OpenVPN's order: digitalSignature = 0x80 ...
                              * encipherOnly = 0x01); empty: presence only */
    char *remote_cert_eku;   /* an OID ("1.3.6.1.5.5.7.3.1") or OpenSSL's long name
                              * ("TLS Web Server Authentication") */
    ShimmerX509NameType verify_x509_type;
    char *verify_x509_name;
    GArray *peer_fingerprints; /* 32-byte SHA-256 each */
    ShimmerVerifyClientCert verify_client_cert;

    /* Control channel wrapping */
    ShimmerWrapMode wrap;
    ShimmerBlob tls_auth;
    ShimmerBlob tls_crypt;
    ShimmerBlob tls_crypt_v2;
    gint key_direction; /* -1 none, 0, 1 */
    bool tls_crypt_v2_is_server_key;
    guint8 static_key[SHIMMER_STATIC_KEY_LEN]; /* tls-auth or tls-crypt */
    ShimmerTlsCryptV2ClientKey *tls_crypt_v2_client;
    guint8 tls_crypt_v2_server[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];

    /* Data channel */
    ShimmerDigest auth; /* tls-auth HMAC and legacy data channel */
    bool auth_set;
    char *cipher;         /* `cipher` as written (a fallback in 2.6) */
    GArray *data_ciphers; /* ShimmerCipher; default AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305 */
    bool data_ciphers_set;
    char *data_ciphers_fallback;
    ShimmerCompFraming comp;
    /* What the server may compress with. Decompression is allowed only when
     * the profile asks for an algorithm (as OpenVPN 2.6: a profile without
     * compression directives refuses a pushed compression, see
     * shimmer_config_check_pushed_compression()) and allow-compression is
     * not `no`. Also what the client advertises (IV_LZO, IV_LZ4, IV_LZ4v2)
     * when not NONE. */
    ShimmerCompAlgorithm comp_alg;
    guint comp_line;                           /* 0: not given */
    bool comp_migrate;                         /* compress migrate (server) */
    ShimmerAllowCompression allow_compression; /* `yes` is refused */
    guint allow_compression_line;

    /* Credentials */
    ShimmerAuthUserPassMode auth_user_pass;
    ShimmerBlob auth_user_pass_file;
    char *username; /* from the file, if any */
    char *password; /* secret */
    ShimmerAuthRetry auth_retry;
    bool auth_nocache; /* forget the password once the session is up: the engine
                        * wipes it after the handshake (a token still works) */
    char *static_challenge;
    bool static_challenge_echo;

    /* Timers */
    gint64 reneg_sec;        /* -1 unset (3600), 0 disabled */
    gint64 reneg_sec_min;    /* -1 unset */
    gint64 reneg_bytes;      /* -1 unset */
    gint64 reneg_pkts;       /* -1 unset */
    gint hand_window;        /* -1 unset (60) */
    gint tran_window;        /* -1 unset (3600) */
    gint keepalive_interval; /* -1 unset */
    gint keepalive_timeout;
    guint replay_window;       /* packets; 0 = default (64) */
    gint replay_time;          /* seconds; -1 = default (15) */
    gint ping;                 /* -1 unset */
    gint ping_restart;         /* -1 unset */
    gint ping_exit;            /* -1 unset */
    gint explicit_exit_notify; /* -1 unset */

    /* Routes, addresses, DNS */
    GPtrArray *routes;   /* ShimmerRoute* */
    GPtrArray *routes6;  /* ShimmerRoute6* */
    char *route_gateway; /* address or "dhcp" */
    char *route_ipv6_gateway;
    gint route_metric; /* -1 unset */
    bool route_nopull;
    GPtrArray *pull_filters;       /* ShimmerPullFilter* */
    guint redirect_gateway;        /* SHIMMER_REDIRECT_* */
    GPtrArray *dhcp_options;       /* ShimmerDhcpOption* */
    GPtrArray *dns_search_domains; /* char* */
    GPtrArray *dns_servers;        /* ShimmerDnsServer* sorted by priority */
    char *ifconfig_local;
    char *ifconfig_remote;     /* remote address or netmask, by topology */
    char *ifconfig_ipv6_local; /* addr/bits */
    char *ifconfig_ipv6_remote;
    bool block_ipv6;

    /* Server: the directives as given. What the server hands out, derived
     * from them, is in `plan`. */
    char *server_network; /* server NETWORK NETMASK [nopool] */
    char *server_netmask;
    bool server_nopool;
    char *server_ipv6; /* server-ipv6 PREFIX/BITS */
    char *ifconfig_pool_start;
    char *ifconfig_pool_end;
    char *ifconfig_pool_netmask;
    char *ifconfig_ipv6_pool;           /* PREFIX/BITS */
    char *ifconfig_pool_persist;        /* the file as written; the server keeps it */
    gint ifconfig_pool_persist_seconds; /* -1: OpenVPN's 600 */
    GPtrArray *push;                    /* char*: `push` lines as given, in order */
    bool client_to_client;
    bool duplicate_cn;
    gint max_clients; /* -1 unset */
    /* connect-freq-initial MAX SECONDS: first packets answered at most MAX
     * per SECONDS (-1 unset: the dispatcher's default) */
    gint connect_freq_initial_max;
    gint connect_freq_initial_seconds;
    bool multihome;
    char *client_config_dir; /* resolved against the profile's directory */
    bool ccd_exclusive;
    /* Authentication of clients beyond their certificate. */
    char *pam_service; /* `plugin .../openvpn-plugin-auth-pam.so SERVICE`: PAM, in process */
    bool username_as_common_name;
    bool auth_user_pass_optional;
    gint auth_gen_token;          /* -1 none; else the token's lifetime in seconds, 0 = session */
    gint auth_gen_token_renewal;  /* -1: reneg-sec */
    bool auth_gen_token_external; /* tokens also for externally authenticated clients */
    ShimmerBlob auth_gen_token_secret; /* secret */
    gint tls_crypt_v2_max_age;         /* days, -1 unset */
    bool force_tls_ekm;                /* force-tls-key-material-export */
    char *x509_username_field;         /* NULL: CN */
    bool dh_none;
    ShimmerBlob dh;
    struct ShimmerServerPlan *plan; /* role server without errors; else NULL */

    /* Pushed-only items (PUSH_REPLY) */
    gint peer_id;     /* -1 unset */
    char *auth_token; /* secret */
    char *auth_token_user;
    bool protocol_flag_cc_exit;
    bool protocol_flag_tls_ekm;
    bool protocol_flag_dyn_tls_crypt;
    bool key_derivation_tls_ekm;
    gint push_continuation; /* 0 none, 1 last, 2 more follow */

    /* What was accepted but ignored, for display. */
    GPtrArray *ignored; /* char*: directive names */

    struct ShimmerConfigPrivate *priv;
} ShimmerConfig;

/* What a server hands out, derived as OpenVPN 2.6 expands `server`,
 * `server-ipv6` and `keepalive` for topology subnet (the only one Shimmer
 * serves). Addresses are text, as in the configuration. */
typedef struct ShimmerServerPlan {
    char *local;       /* the server's tun address: network + 1 */
    char *netmask;     /* the tun network's mask, pushed with each address */
    char *pool_start;  /* the clients' addresses (ifconfig-push), NULL without a pool: */
    char *pool_end;    /* network + 2 .. broadcast - 1 for `server`, inclusive */
    char *local6;      /* "2001:db8::1/64": network + 1 */
    char *pool6_start; /* network + 0x1000 (+ 2 for a /112 or longer) */
    guint pool6_bits;  /* the prefix length each client gets */
    guint pool_size;   /* clients the pools can serve: the smaller pool's size */
    gint ping;         /* keepalive: what the server sends and pushes */
    gint ping_restart; /* what the server itself waits (twice the pushed one) */
    /* The options every client is pushed, in OpenVPN's order: the `push`
     * lines, then what the macros add ("ping N", "ping-restart M",
     * "tun-ipv6", "route-gateway X", "topology subnet"). Per-client items
     * (ifconfig, ifconfig-ipv6, peer-id, cipher, protocol-flags) come at
     * connect time; a client-config-dir file may reset or trim the list. */
    GPtrArray *push;
} ShimmerServerPlan;

/* A client-config-dir file: what the server applies to one client. */
typedef struct {
    char *filename;
    GPtrArray *diagnostics;    /* ShimmerDiagnostic* */
    bool disable;              /* `disable`: the client may not connect */
    bool push_reset;           /* the server's push list is not sent */
    GPtrArray *push;           /* char*: added to what is pushed */
    GPtrArray *push_remove;    /* char*: pushed options holding this text are left out */
    char *ifconfig_push_local; /* ifconfig-push LOCAL NETMASK (topology subnet) */
    char *ifconfig_push_netmask;
    char *ifconfig_ipv6_push;        /* "2001:db8::10/64" */
    char *ifconfig_ipv6_push_remote; /* NULL: the server's own address */
    GPtrArray *iroutes;              /* ShimmerRoute*: networks behind this client */
    GPtrArray *iroutes6;             /* ShimmerRoute6* */
} ShimmerCcd;

/* Parses the text of one client-config-dir file (FILENAME for messages).
 * SERVER, when not NULL, is the server's configuration: addresses outside
 * its tun network are then refused as OpenVPN refuses them. Always returns
 * a result; check shimmer_ccd_has_errors(). */
ShimmerCcd *shimmer_ccd_parse(const char *filename, const char *text, gsize len,
                              const struct ShimmerConfig *server);
gboolean shimmer_ccd_has_errors(const ShimmerCcd *ccd);
void shimmer_ccd_format_diagnostics(const ShimmerCcd *ccd, GString *out);
void shimmer_ccd_free(ShimmerCcd *ccd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerCcd, shimmer_ccd_free)

/* Reads a file named by the configuration. PATH is already resolved (absolute
 * or relative to the caller's working directory as the caller chose). Returns
 * TRUE and the contents, or FALSE and an error whose message names the
 * problem ("No such file or directory"). The parser limits sizes itself. */
typedef gboolean (*ShimmerLoader)(const char *path, GBytes **contents, GError **error,
                                  gpointer user_data);

/* The loader shimmerctl and shimmerd use: g_file_get_contents with a size
 * limit (SHIMMER_CONFIG_MAX_FILE). */
gboolean shimmer_config_file_loader(const char *path, GBytes **contents, GError **error,
                                    gpointer user_data);

#define SHIMMER_CONFIG_MAX_FILE (1024 * 1024)

/* Parses TEXT (LEN bytes). FILENAME is used in diagnostics; BASE_DIR is where
 * relative paths resolve (NULL: the directory part of FILENAME). LOADER may be
 * NULL, in which case any file reference is an error (inline-only profiles,
 * as in a profile that came over D-Bus). Always returns a config; check
 * shimmer_config_has_errors(). */
ShimmerConfig *shimmer_config_parse(const char *filename, const char *base_dir, const char *text,
                                    gsize len, ShimmerLoader loader, gpointer loader_data);

/* Parses a PUSH_REPLY body (the part after "PUSH_REPLY,") into a fresh config
 * in the push context: only what a server may push is accepted; anything else
 * is ignored with a warning. PULL_FILTERS (from the client configuration) are
 * applied first; a `reject` match makes the whole reply an error. */
ShimmerConfig *shimmer_config_parse_push(const char *text, gsize len,
                                         const GPtrArray *pull_filters);

gboolean shimmer_config_has_errors(const ShimmerConfig *cfg);

/* What the parser does with a directive NAME (without "--"): applies it,
 * ignores it with a warning, or refuses it with an error. Every directive
 * of OpenVPN 2.6's manual page and --help is one of these (tests/
 * test-directives.c checks it against the installed openvpn). REASON, when
 * not NULL, receives why a directive is ignored or refused (NULL when it is
 * applied, or ignored for an obvious reason). */
typedef enum {
    SHIMMER_DIRECTIVE_UNKNOWN,
    SHIMMER_DIRECTIVE_APPLIED,
    SHIMMER_DIRECTIVE_IGNORED,
    SHIMMER_DIRECTIVE_REFUSED,
} ShimmerDirectiveStatus;

ShimmerDirectiveStatus shimmer_config_directive_status(const char *name, const char **reason);

/* Appends the diagnostics as "FILE:LINE: error: ..." lines. */
void shimmer_config_format_diagnostics(const ShimmerConfig *cfg, GString *out);

/* Appends S as a JSON string literal (quotes, escapes for '"', '\\' and
 * control characters, DEL as \u007f) to OUT. Shared by the JSON output
 * below and shimmerctl's. */
void shimmer_json_append_string(GString *out, const char *s);

/* The normalized configuration as JSON, secrets redacted. */
char *shimmer_config_to_json(const ShimmerConfig *cfg);

/* The GnuTLS priority string for CFG's TLS restrictions (tls-cipher,
 * tls-ciphersuites, tls-groups, ecdh-curve, tls-cert-profile,
 * tls-version-min/max; see tlsprio.h). The parser has refused every
 * configuration for which this fails. NOTES as shimmer_tlsprio_build(). */
char *shimmer_config_tls_priority(const ShimmerConfig *cfg, GPtrArray *notes, GError **error);

/* The peer-certificate constraints of CFG (remote-cert-tls, ns-cert-type,
 * remote-cert-ku, remote-cert-eku) for shimmer_keys_check_cert_usage();
 * valid as long as CFG. */
void shimmer_config_get_cert_usage(const ShimmerConfig *cfg, ShimmerCertUsage *out);

/* An equivalent self-contained .ovpn: every referenced file inlined. Secrets
 * are included (this is for moving a profile): the caller decides where the
 * text goes. Returns NULL if the config has errors. */
char *shimmer_config_to_ovpn(const ShimmerConfig *cfg);

/* Why shimmer_config_to_ovpn() would return NULL, or NULL if it would not. */
const char *shimmer_config_inline_error(const ShimmerConfig *cfg);

void shimmer_config_free(ShimmerConfig *cfg);

ShimmerProxy *shimmer_proxy_copy(const ShimmerProxy *proxy);
void shimmer_proxy_free(ShimmerProxy *proxy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerProxy, shimmer_proxy_free)

/* A server may push compression (comp-lzo, compress) only where the client's
 * profile allows it, as OpenVPN 2.6 decides: a profile with no compression
 * directive, `comp-lzo no`, `compress stub[-v2]` or `allow-compression no`
 * accepts only the uncompressed framings. Returns FALSE with a message for
 * the user when PUSHED asks for an algorithm CFG does not allow. */
gboolean shimmer_config_check_pushed_compression(const ShimmerConfig *cfg,
                                                 const ShimmerConfig *pushed, GError **error);

const char *shimmer_cipher_name(ShimmerCipher c);
const char *shimmer_digest_name(ShimmerDigest d);

#define SHIMMER_CONFIG_ERROR (shimmer_config_error_quark())
GQuark shimmer_config_error_quark(void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerConfig, shimmer_config_free)

G_END_DECLS
