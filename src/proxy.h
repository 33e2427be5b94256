/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * The way to a server through a proxy (http-proxy, socks-proxy), without
 * I/O: the caller opens a TCP connection to the proxy, calls
 * shimmer_proxy_client_begin(), sends what shimmer_proxy_client_pending()
 * holds and feeds every byte the proxy sends to shimmer_proxy_client_feed()
 * until it says DONE (the connection now carries the server's stream, or
 * for SOCKS5 UDP the association is up), RECONNECT (open a new connection
 * and begin again: an HTTP proxy asked for credentials that `auto` only
 * sends once it knows the scheme) or ERROR.
 *
 * HTTP CONNECT (RFC 9110 9.3.6) with Basic (RFC 7617) and Digest (RFC 7616:
 * MD5, SHA-256 and their -sess forms, qop auth or none) authentication;
 * NTLM is refused with the reason. SOCKS5 (RFC 1928) CONNECT and UDP
 * ASSOCIATE with no authentication or user name and password (RFC 1929),
 * and the header of each UDP datagram (RFC 1928 section 7).
 *
 * The proxy is not trusted: every answer is bounded (an HTTP header block at
 * most SHIMMER_PROXY_HTTP_MAX_HEADER bytes) and checked, and text from it is
 * quoted with its control characters escaped. The credentials are secrets:
 * the bytes that carry them are wiped once sent and on free, and no error or
 * log text holds them.
 */

#define SHIMMER_PROXY_ERROR (shimmer_proxy_error_quark())
GQuark shimmer_proxy_error_quark(void);

typedef enum {
    /* The proxy's answer is not the protocol, truncated or too long. */
    SHIMMER_PROXY_ERROR_PROTOCOL,
    /* The proxy would not reach the server (an HTTP status other than 200,
     * a SOCKS reply code). */
    SHIMMER_PROXY_ERROR_REFUSED,
    /* Credentials are needed but missing, were refused, or the proxy asks
     * for a scheme that is not done (NTLM, Negotiate) or not allowed
     * (Basic under auto-nct). */
    SHIMMER_PROXY_ERROR_AUTH,
    /* The profile asks for what is not supported (NTLM, UDP through an
     * HTTP proxy, a target or credentials the protocol cannot carry). */
    SHIMMER_PROXY_ERROR_UNSUPPORTED,
} ShimmerProxyError;

/* The largest HTTP answer head (status line and headers) accepted. */
#define SHIMMER_PROXY_HTTP_MAX_HEADER 8192

/* Random bytes each attempt takes (the Digest client nonce). */
#define SHIMMER_PROXY_RANDOM_LEN 16

typedef enum {
    SHIMMER_PROXY_CONNECT_TCP,   /* a TCP stream to the server */
    SHIMMER_PROXY_ASSOCIATE_UDP, /* SOCKS5 only: a UDP relay */
} ShimmerProxyCommand;

typedef enum {
    SHIMMER_PROXY_STATUS_WANT_MORE, /* send what is pending, feed what comes */
    SHIMMER_PROXY_STATUS_DONE,
    SHIMMER_PROXY_STATUS_RECONNECT, /* close, connect again, begin again */
    SHIMMER_PROXY_STATUS_ERROR,
} ShimmerProxyStatus;

/* An address with a port, as SOCKS5 carries it. */
typedef struct {
    guint8 family; /* 4 or 6; 0: unspecified (the proxy's own address) */
    guint8 addr[16];
    guint16 port;
} ShimmerSocksAddr;

typedef struct ShimmerProxyClient ShimmerProxyClient;

/* Whether PROXY can carry a connection (UDP when UDP is TRUE) as it is
 * configured: FALSE with the reason for NTLM, for UDP through an HTTP
 * proxy, and for credentials the profile wants but does not hold (an
 * authfile `stdin` that nobody answered). */
gboolean shimmer_proxy_check(const ShimmerProxy *proxy, gboolean udp, GError **error);

/* A negotiation with PROXY for the server HOST (a name or an address, sent
 * as it is: the proxy resolves a name) and PORT. For UDP, HOST and PORT are
 * not sent: the datagrams name the server (shimmer_socks_udp_wrap()). Copies
 * what it needs from PROXY. NULL with the reason where shimmer_proxy_check()
 * fails or HOST cannot be carried. */
ShimmerProxyClient *shimmer_proxy_client_new(const ShimmerProxy *proxy, const char *host,
                                             guint16 port, ShimmerProxyCommand command,
                                             GError **error);
void shimmer_proxy_client_free(ShimmerProxyClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerProxyClient, shimmer_proxy_client_free)

/* Starts an attempt on a fresh connection to the proxy: the first request
 * becomes pending. RANDOM holds SHIMMER_PROXY_RANDOM_LEN bytes from the
 * caller's random source. */
void shimmer_proxy_client_begin(ShimmerProxyClient *c, const guint8 *random);

/* The bytes to send to the proxy now (*LEN 0: none). Valid until the next
 * call on C. */
const guint8 *shimmer_proxy_client_pending(ShimmerProxyClient *c, gsize *len);
/* The first N pending bytes were sent: they are wiped and dropped. */
void shimmer_proxy_client_sent(ShimmerProxyClient *c, gsize n);

/* Takes bytes the proxy sent. *USED says how many belong to the
 * negotiation: after DONE the rest are the server's (the start of its
 * stream). After ERROR, ERROR says why; C takes no more bytes until the next
 * shimmer_proxy_client_begin(). More may be pending after any call. */
ShimmerProxyStatus shimmer_proxy_client_feed(ShimmerProxyClient *c, const guint8 *data, gsize len,
                                             gsize *used, GError **error);

/* After DONE for UDP: where to send the datagrams. FAMILY 0 when the proxy
 * said 0.0.0.0 or ::, that is its own address. */
gboolean shimmer_proxy_client_get_relay(const ShimmerProxyClient *c, ShimmerSocksAddr *relay);

/* The authentication in use, for log lines: "none", "basic", "digest",
 * "username/password". */
const char *shimmer_proxy_client_get_auth_name(const ShimmerProxyClient *c);

/* RFC 1928 section 7: the header in front of a datagram to DST, written to
 * BUF; its length (10 for IPv4, 22 for IPv6), 0 if SIZE is too small or DST
 * has no family. */
gsize shimmer_socks_udp_wrap(guint8 *buf, gsize size, const ShimmerSocksAddr *dst);
/* The header of a datagram from the relay: its length, with the sender in
 * FROM; 0 for a datagram that is malformed, fragmented (FRAG != 0, which
 * is not done) or from a name (no address to compare). */
gsize shimmer_socks_udp_unwrap(const guint8 *pkt, gsize len, ShimmerSocksAddr *from);

/* RFC 7616 section 3.4.1 with qop "auth" (or none, RFC 2069, when QOP is
 * NULL): the response for one request, lowercase hex into OUT (at least
 * 65 bytes). ALGORITHM is "MD5", "MD5-sess", "SHA-256" or "SHA-256-sess"
 * (case-insensitive; NULL is MD5). FALSE for another algorithm. Exposed for
 * the tests: shimmer_proxy_client_feed() uses it. */
gboolean shimmer_proxy_digest_response(const char *algorithm, const char *username,
                                       const char *realm, const char *password, const char *nonce,
                                       const char *nc, const char *cnonce, const char *qop,
                                       const char *method, const char *uri, char *out);

G_END_DECLS
