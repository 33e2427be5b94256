/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <sys/socket.h>

#include "engine.h"
#include "os/tun.h"

G_BEGIN_DECLS

/*
 * The data path: worker threads that move data packets between a tun device
 * and the links (UDP sockets, TCP connections) of any number of peers, each
 * peer an engine's data plane (engine.h). One runner owns it: the client
 * runner with one peer, a server runner with many. The runner's thread (the
 * GLib main loop) keeps the control channel, the engines' timers and every
 * change of configuration; the workers only move packets.
 *
 * Per worker: one queue of a multi-queue tun (the kernel spreads the flows
 * of the tunnel over the queues), the links assigned to it (a peer's
 * received packets are all handled by the worker of its link, in order),
 * and one lane of every peer's data plane. From the tun: reads of up to 64
 * KB (TSO/USO, cut into segments here), routed to peers by the runner's
 * hook, encrypted in place, sent in one UDP_SEGMENT buffer per peer and
 * batch (or framed into one TCP write). To the tun: GRO buffers of
 * datagrams, decrypted in place, consecutive segments of a flow glued into
 * one write. Each of these steps falls back by itself when the kernel (or
 * the options) say no: plain reads and writes, sendmmsg/recvmmsg.
 *
 * Packets that are not data packets of a known peer (control packets,
 * strangers) are copied to the runner's thread, as are link failures.
 *
 * Threads: the routing hooks run on the workers and must be quick and
 * thread safe; every other hook runs on the thread that created the data
 * path (its thread-default main context). All functions here are for that
 * thread too, except where said otherwise.
 */

typedef struct ShimmerDatapath ShimmerDatapath;
typedef struct ShimmerDatapathLink ShimmerDatapathLink;
typedef struct ShimmerDatapathPeer ShimmerDatapathPeer;

typedef enum {
    /* Send datagram by datagram, never with UDP_SEGMENT. */
    SHIMMER_DATAPATH_NO_UDP_GSO = 1 << 0,
    /* Do not ask for UDP_GRO. */
    SHIMMER_DATAPATH_NO_UDP_GRO = 1 << 1,
    /* A plain tun: no virtio-net header, so no TSO/USO reads, no checksum
     * offload, no glued writes. */
    SHIMMER_DATAPATH_NO_TUN_OFFLOAD = 1 << 2,
    /* One tun queue, whatever the number of workers (only the first reads
     * the tun). */
    SHIMMER_DATAPATH_NO_MULTIQUEUE = 1 << 3,
} ShimmerDatapathFlags;

typedef struct {
    /* Worker threads; 0: one per processor (at most 8). */
    guint workers;
    /* ShimmerDatapathFlags. */
    guint flags;
} ShimmerDatapathOptions;

/* Parses "workers=N,no-udp-gso,no-udp-gro,no-tun-offload,no-multiqueue"
 * (any subset, comma separated; "" or NULL is nothing) into OPTS. FALSE with
 * ERROR (G_IO_ERROR_INVALID_ARGUMENT) for a word it does not know; OPTS has
 * the words before it then. The daemon reads it from $SHIMMER_DATAPATH: the
 * options exist for tests and measurements, and to work around a kernel. */
gboolean shimmer_datapath_options_parse(const char *text, ShimmerDatapathOptions *opts,
                                        GError **error);

/* What becomes of an IP packet a worker decrypted (the inbound hook). */
typedef enum {
    /* To the tun. */
    SHIMMER_DATAPATH_ACCEPT,
    /* Dropped (counted). */
    SHIMMER_DATAPATH_DROP,
    /* A copy goes to the runner's tun_packet hook (a server forwards it to
     * another client). */
    SHIMMER_DATAPATH_TO_RUNNER,
} ShimmerDatapathVerdict;

typedef struct {
    /* Worker thread: the peer that encrypts the IP packet IP[0..LEN) read
     * from the tun (by its destination), or NULL to drop it. */
    ShimmerDatapathPeer *(*route_tun)(gpointer user, const guint8 *ip, gsize len);
    /* Worker thread: the peer whose data packet PKT[0..LEN) arrived on LINK
     * from FROM (NULL on a connected link), or NULL: the packet goes to
     * control() on the runner's thread. Only called for DATA_V1/DATA_V2
     * opcodes; everything else goes to control() unasked. */
    ShimmerDatapathPeer *(*route_link)(gpointer user, ShimmerDatapathLink *link, const guint8 *pkt,
                                       gsize len, const struct sockaddr *from, socklen_t from_len);
    /* Worker thread, may be NULL (everything accepted): what becomes of the
     * IP packet IP[0..LEN) PEER sent (a server checks the source is the
     * client's own). */
    ShimmerDatapathVerdict (*inbound)(gpointer user, ShimmerDatapathPeer *peer, const guint8 *ip,
                                      gsize len);
    /* An IP packet from PEER an inbound hook passed on (a copy, valid during
     * the call); PEER is only compared, never used: it may be gone. PEER
     * NULL: a packet from the tun that tun_unrouted() passed on. */
    void (*tun_packet)(gpointer user, ShimmerDatapathPeer *peer, const guint8 *ip, gsize len);
    /* Worker thread, may be NULL (dropped): whether a packet from the tun
     * that route_tun() found no peer for goes to tun_packet() (PEER NULL)
     * rather than being dropped: a server whose newest clients are not in
     * its workers' view yet routes theirs on the runner's thread. */
    gboolean (*tun_unrouted)(gpointer user);
    /* A packet from LINK for the runner (a copy, valid during the call). */
    void (*control)(gpointer user, ShimmerDatapathLink *link, const guint8 *pkt, gsize len,
                    const struct sockaddr *from, socklen_t from_len);
    /* LINK failed: ERR is an errno (ECONNREFUSED: an ICMP port unreachable
     * on a connected UDP socket), or 0 when the peer closed the TCP
     * connection. A TCP link that failed is no longer read. */
    void (*link_error)(gpointer user, ShimmerDatapathLink *link, int err);
    /* Log lines (what is on, what the kernel refused). */
    void (*log)(gpointer user, ShimmerLogLevel level, const char *message);
    gpointer user;
} ShimmerDatapathHooks;

/* The workers a data path with OPTS (NULL: the defaults) starts: OPTS's
 * workers=N, or one per processor up to 8. */
guint shimmer_datapath_workers_for(const ShimmerDatapathOptions *opts);
/* The descriptors a data path of WORKERS workers holds besides its links:
 * its handoff eventfd, and per worker an epoll, an eventfd and a tun
 * queue. */
#define SHIMMER_DATAPATH_DESCRIPTORS(workers) (1 + 3 * (workers))

/* Starts the workers, idle until links and a tun arrive. HOOKS is copied.
 * Fails only when threads or descriptors cannot be had. */
ShimmerDatapath *shimmer_datapath_new(const ShimmerDatapathOptions *opts,
                                      const ShimmerDatapathHooks *hooks, GError **error);
/* Stops and joins the workers. Links, peers and the tun must be gone (they
 * are the caller's). NULL is fine. */
void shimmer_datapath_free(ShimmerDatapath *dp);

/* The number of workers. An engine whose data plane a peer uses needs
 * shimmer_engine_set_lanes(e, workers + 1) before it has keys: worker I
 * uses lane I + 1. */
guint shimmer_datapath_get_workers(const ShimmerDatapath *dp);

/* Returns once no worker is still inside a batch it began before the call:
 * after it, nothing a worker took from a route hook, a link or a tun taken
 * away before the call is in use any more. */
void shimmer_datapath_synchronize(ShimmerDatapath *dp);

/* ---- the tun ---- */

/* Opens the tun device NAME as the options allow (one queue per worker, the
 * virtio-net header, offloads) and logs what the kernel gave. The caller
 * owns it; attach it to use it. */
ShimmerTun *shimmer_datapath_open_tun(ShimmerDatapath *dp, const char *name, GError **error);

/* The workers read TUN's queues and write what they receive to it; MTU
 * sizes their buffers. Replaces any tun attached before. */
void shimmer_datapath_attach_tun(ShimmerDatapath *dp, ShimmerTun *tun, guint mtu);
/* No worker reads or writes the tun any more when this returns. */
void shimmer_datapath_detach_tun(ShimmerDatapath *dp);
/* Writes one IP packet to the attached tun from the runner's thread (one
 * that reached it rather than a worker). FALSE when none is attached or the
 * kernel refused it. */
gboolean shimmer_datapath_write_tun(ShimmerDatapath *dp, const guint8 *ip, gsize len);

/* ---- links ---- */

/* A UDP socket FD (the caller's, non-blocking; CONNECTED: connected to one
 * peer) read by one worker. GSO/GRO as the options allow. */
ShimmerDatapathLink *shimmer_datapath_add_udp(ShimmerDatapath *dp, int fd, gboolean connected);
/* An established TCP connection FD (the caller's, non-blocking), framed
 * with OpenVPN's length prefixes. Sets TCP_NODELAY: data goes out in one
 * write per batch, so waiting for more only adds latency. */
ShimmerDatapathLink *shimmer_datapath_add_tcp(ShimmerDatapath *dp, int fd);
/* No worker uses LINK (nor its descriptor) any more when this returns;
 * queued packets from it are dropped. Peers on it must be gone first.
 * Frees LINK; the descriptor stays the caller's to close. */
void shimmer_datapath_remove_link(ShimmerDatapath *dp, ShimmerDatapathLink *link);
int shimmer_datapath_link_get_fd(const ShimmerDatapathLink *link);
/* The runner's own pointer on LINK (for its hooks). */
void shimmer_datapath_link_set_user(ShimmerDatapathLink *link, gpointer user);
gpointer shimmer_datapath_link_get_user(const ShimmerDatapathLink *link);

/* Sends the packet PKT[0..LEN) on LINK (a control packet from an engine):
 * to TO on an unconnected UDP link, framed on TCP. Any thread. FALSE when it
 * could not go (a full buffer drops it, as the workers' would). */
gboolean shimmer_datapath_link_send(ShimmerDatapathLink *link, const guint8 *pkt, gsize len,
                                    const struct sockaddr *to, socklen_t to_len);

/* ---- peers ---- */

/* A peer: the data plane DATAPLANE (a reference is taken) and where its
 * packets go: LINK, and on an unconnected UDP link the address TO (copied).
 * The runner hands it out from its route hooks. */
ShimmerDatapathPeer *shimmer_datapath_peer_new(ShimmerDataPlane *dataplane,
                                               ShimmerDatapathLink *link, const struct sockaddr *to,
                                               socklen_t to_len);
/* The runner's own pointer on PEER (for its hooks). */
void shimmer_datapath_peer_set_user(ShimmerDatapathPeer *peer, gpointer user);
gpointer shimmer_datapath_peer_get_user(const ShimmerDatapathPeer *peer);
/* The MSS to clamp TCP SYNs to, both ways (shimmer_engine_get_mss()). */
void shimmer_datapath_peer_set_mss(ShimmerDatapathPeer *peer, guint mss4, guint mss6);
ShimmerDataPlane *shimmer_datapath_peer_get_dataplane(const ShimmerDatapathPeer *peer);
/* Only once no route hook can return PEER any more and
 * shimmer_datapath_synchronize() returned after that. NULL is fine. */
void shimmer_datapath_peer_free(ShimmerDatapathPeer *peer);

/* ---- what happened ---- */

typedef struct {
    guint64 tun_reads;     /* read() calls that returned a packet */
    guint64 tun_gso_reads; /* ...of which super-packets (TSO/USO) */
    guint64 tun_segments;  /* segments cut from them */
    guint64 tun_writes;    /* write() calls */
    guint64 tun_glued;     /* ...of which glued packets */
    guint64 tun_packets_out;
    guint64 udp_send_calls;
    guint64 udp_sent;
    guint64 udp_gso_sends; /* UDP_SEGMENT buffers */
    guint64 udp_recv_calls;
    guint64 udp_received;
    guint64 udp_gro_buffers; /* received buffers holding several datagrams */
    guint64 tcp_writes;
    guint64 tcp_reads;
    guint64 to_runner; /* packets passed to the runner's thread */
    guint64 no_peer;   /* tun packets the route hook had no peer for */
    guint64 refused;   /* decrypted packets the inbound hook dropped (a bad source) */
    guint64 dropped;   /* no peer, no room, no tun, a full buffer, malformed; received
                        * packets the data plane dropped (replayed, forged, no key) */
} ShimmerDatapathStats;

void shimmer_datapath_get_stats(const ShimmerDatapath *dp, ShimmerDatapathStats *out);
/* The counters as one line of text ("tun reads N (super-packets N, ...").
 * Free with g_free(). */
char *shimmer_datapath_format_stats(const ShimmerDatapathStats *st);

/* One line on what is in use: workers, tun queues and offloads, UDP
 * GSO/GRO (what the kernel refused included). */
char *shimmer_datapath_describe(const ShimmerDatapath *dp);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerDatapath, shimmer_datapath_free)

G_END_DECLS
