/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <sys/socket.h>

G_BEGIN_DECLS

/*
 * Batched UDP for a tunnel's data path: many datagrams per system call.
 *
 * Sending, a run of datagrams to the same address with the same length
 * (the last may be shorter) goes out as one buffer with UDP_SEGMENT (GSO):
 * one trip through the stack, cut into datagrams as late as possible.
 * Receiving with UDP_GRO, the kernel hands over up to 64 KB of datagrams
 * from the same sender glued together with their size, which is split here
 * again. Both keep every datagram as it was on the wire.
 *
 * Without them (an old kernel, a device that cannot checksum, or turned off
 * for a test) datagrams go one each, still many per call through
 * sendmmsg()/recvmmsg(). A kernel that refuses GSO on a send is noticed
 * there: the run goes out again without it, and GSO stays off for the socket
 * (or for datagrams of that size and larger, when it was the size).
 *
 * Nothing here blocks: a full socket buffer drops the rest of a batch, as a
 * router's full queue would.
 */

typedef struct {
    /* UDP_SEGMENT may be used on the socket (see above). */
    gboolean gso;
    /* Datagrams of this length or more are not sent with GSO (a send was
     * refused for one: larger than the path's MTU); G_MAXSIZE: no limit. */
    gsize gso_max_size;
    /* UDP_GRO is on: received buffers may hold several datagrams. */
    gboolean gro;
    /* The kernel refused GSO on a send since the last look (the caller
     * logs it and clears it). */
    gboolean gso_refused;
} ShimmerUdpCaps;

/* Looks at what the socket FD can do and turns on GRO, each only if
 * allowed: CAPS is filled in. */
void shimmer_udp_setup(int fd, gboolean allow_gso, gboolean allow_gro, ShimmerUdpCaps *caps);

/* ---- sending ---- */

typedef struct {
    const guint8 *data;
    gsize len;
    /* NULL on a connected socket. */
    const struct sockaddr *addr;
    socklen_t addr_len;
} ShimmerUdpPacket;

typedef struct {
    guint sent;         /* datagrams that went out */
    guint dropped;      /* ...that did not (full buffers, errors) */
    guint gso_sends;    /* buffers sent with UDP_SEGMENT */
    guint gso_segments; /* datagrams in them */
    guint syscalls;
    /* The first error other than a full buffer (ECONNREFUSED: the peer's
     * port is closed), 0 if none. */
    int error;
} ShimmerUdpSendResult;

typedef struct ShimmerUdpSender ShimmerUdpSender;

/* Room for batches of up to MAX_PACKETS datagrams. */
ShimmerUdpSender *shimmer_udp_sender_new(guint max_packets);
void shimmer_udp_sender_free(ShimmerUdpSender *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerUdpSender, shimmer_udp_sender_free)

/* Sends PKTS[0..N) (N at most the sender's MAX_PACKETS) in order on FD, as
 * CAPS allows; adds what happened to RES (not cleared here). */
void shimmer_udp_send(ShimmerUdpSender *s, int fd, ShimmerUdpCaps *caps,
                      const ShimmerUdpPacket *pkts, guint n, ShimmerUdpSendResult *res);

/* ---- receiving ---- */

typedef struct {
    guint8 *data;
    gsize len;
    /* The sender (valid with the datagram). */
    const struct sockaddr *from;
    socklen_t from_len;
} ShimmerUdpDatagram;

typedef struct ShimmerUdpReceiver ShimmerUdpReceiver;

/* N_SLOTS receive buffers of SLOT_SIZE bytes (64 KB when GRO is on: that
 * much can come glued), and room for up to MAX_DATAGRAMS datagrams cut
 * from them. */
ShimmerUdpReceiver *shimmer_udp_receiver_new(guint n_slots, gsize slot_size, guint max_datagrams);
void shimmer_udp_receiver_free(ShimmerUdpReceiver *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerUdpReceiver, shimmer_udp_receiver_free)

/* One recvmmsg() on FD: the datagrams waiting, split where GRO glued them,
 * in *OUT (valid until the next call; the bytes may be changed in place).
 * Returns how many (0: none waiting), or -1 with errno set (ECONNREFUSED:
 * an ICMP port unreachable on a connected socket). Truncated datagrams
 * (larger than a slot) are dropped and counted in *TRUNCATED. *GRO_BUFFERS
 * counts the buffers that held more than one datagram. */
gint shimmer_udp_receive(ShimmerUdpReceiver *r, int fd, const ShimmerUdpDatagram **out,
                         guint *truncated, guint *gro_buffers);

G_END_DECLS
