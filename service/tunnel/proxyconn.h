/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "config.h"
#include "engine.h"

G_BEGIN_DECLS

/*
 * A connection through a proxy (http-proxy, socks-proxy) on the
 * thread-default main loop: looks the proxy up, connects to it (every
 * address in turn), runs the negotiation of src/proxy.h over the socket,
 * connecting again when an HTTP proxy asks for credentials after the first
 * try, and hands back the connected socket. All of it within one time
 * limit (connect-timeout), so a proxy that accepts and never answers does
 * not hold the tunnel.
 *
 * (Not named proxy.h: an include of "proxy.h" finds the one in src/.)
 */

typedef struct ShimmerProxyConn ShimmerProxyConn;

/* What a negotiation that succeeded gives. */
typedef struct {
    /* TCP: the stream to the server through the proxy, from its first
     * byte on (the negotiation took exactly the proxy's answer). UDP: the
     * control connection, which must stay open as long as the association.
     * Non-blocking, close-on-exec. */
    int fd;
    /* The proxy's address and port the connection went to. */
    GInetSocketAddress *proxy;
    /* UDP: where the datagrams go (the proxy's own address when it said
     * 0.0.0.0). */
    GInetSocketAddress *relay;
    /* For log lines: "basic", "digest", "username/password", "none". */
    const char *auth;
} ShimmerProxyLink;

/* Closes FD (unless -1) and frees the rest. */
void shimmer_proxy_link_free(ShimmerProxyLink *link);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerProxyLink, shimmer_proxy_link_free)

/* LINK (NULL on failure) belongs to the callee; ERROR says why it failed. */
typedef void (*ShimmerProxyConnDone)(gpointer user, ShimmerProxyLink *link, const GError *error);
typedef void (*ShimmerProxyConnLog)(gpointer user, ShimmerLogLevel level, const char *message);

typedef struct {
    const ShimmerProxy *proxy; /* read at the start only */
    /* The server as the proxy is to reach it (TCP), or as the datagrams
     * name it (UDP: an address). */
    const char *host;
    guint16 port;
    gboolean udp; /* SOCKS5 UDP ASSOCIATE instead of CONNECT */
    int mark;     /* SO_MARK for the socket; -1: none */
    guint timeout_s;
    ShimmerProxyConnDone done;
    ShimmerProxyConnLog log;
    gpointer user;
} ShimmerProxyConnOptions;

/* Starts; DONE is called once, from the main loop (never from here), unless
 * the connection is freed first. NULL with the reason when the proxy cannot
 * carry this connection at all (shimmer_proxy_check()). */
ShimmerProxyConn *shimmer_proxy_conn_start(const ShimmerProxyConnOptions *options, GError **error);
/* Cancels a negotiation under way (DONE is not called). */
void shimmer_proxy_conn_free(ShimmerProxyConn *pc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerProxyConn, shimmer_proxy_conn_free)

/* Whether a connection of CFG has a proxy whose credentials are to be
 * asked for (authfile `stdin`) and are not there yet. */
gboolean shimmer_proxy_config_needs_credentials(const ShimmerConfig *cfg);
/* Puts USERNAME and PASSWORD (copied; the password a secret) into every
 * such proxy of CFG. */
void shimmer_proxy_config_set_credentials(ShimmerConfig *cfg, const char *username,
                                          const char *password);

/* "HTTP proxy proxy.example:3128", for log lines. */
char *shimmer_proxy_describe(const ShimmerProxy *proxy);

G_END_DECLS
