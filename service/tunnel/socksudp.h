/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "tunnel/proxyconn.h"

G_BEGIN_DECLS

/*
 * UDP through a SOCKS5 proxy (RFC 1928 section 7) without touching the
 * tunnel's data path: the tunnel gets one end of a datagram socket pair and
 * uses it as it uses a connected UDP socket; this relays between the other
 * end and a UDP socket connected to the proxy's relay, putting the SOCKS
 * header in front of every datagram going out and taking it off every one
 * coming in. A datagram from the relay that does not name the server as
 * its sender, or is malformed or fragmented, is dropped; the kernel drops
 * anything not from the relay (the socket is connected to it).
 *
 * The association lives as long as the proxy's control connection: when
 * the proxy closes it, CLOSED is called. Runs on the thread-default main
 * loop.
 */

typedef struct ShimmerSocksUdp ShimmerSocksUdp;

typedef void (*ShimmerSocksUdpClosed)(gpointer user, const char *why);

/* Takes LINK (from a UDP shimmer_proxy_conn_start()). SERVER: the address
 * the datagrams are for. *FD: the tunnel's end of the pair (non-blocking,
 * close-on-exec; the caller closes it). */
ShimmerSocksUdp *shimmer_socks_udp_new(ShimmerProxyLink *link, GInetSocketAddress *server, int mark,
                                       ShimmerSocksUdpClosed closed, gpointer user, int *fd,
                                       GError **error);
void shimmer_socks_udp_free(ShimmerSocksUdp *u);

/* Datagrams dropped because they were not the server's or not well-formed. */
guint64 shimmer_socks_udp_get_dropped(const ShimmerSocksUdp *u);

G_END_DECLS
