/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <sys/uio.h>

G_BEGIN_DECLS

/*
 * Segmentation and coalescing for a tun device with offloads (IFF_VNET_HDR
 * and TUNSETOFFLOAD, os/tun.h): pure functions on packets in memory, no
 * system calls.
 *
 * With TSO/USO on, the kernel hands the tun's reader one "super-packet" of
 * up to 64 KB per read: IP and TCP (or UDP) headers once, then the payload
 * of many segments, described by a virtio-net header in front of it. The
 * tunnel must send real packets, so shimmer_offload_segment() cuts it into
 * segments with their own headers and complete checksums. A packet that is
 * not a super-packet may still arrive with its transport checksum left to
 * do (TUN_F_CSUM): shimmer_offload_finish_checksum().
 *
 * The other way, packets that arrive through the tunnel one by one are
 * glued back into super-packets before they are written to the tun
 * (ShimmerCoalescer), so that the kernel's TCP stack takes one large packet
 * instead of dozens: consecutive segments of the same TCP flow (or, where
 * the kernel takes USO, equally sized datagrams of the same UDP flow). The
 * glued packet is described by a virtio-net header and gathered from the
 * original packets with an iovec, so no payload is copied. Its checksum is
 * left for the kernel to treat as verified (NEEDS_CSUM): every piece of it
 * arrived authenticated by the data channel's AEAD, which is a far stronger
 * check than the checksum the sender put in.
 *
 * Only plain packets are glued or cut: IPv4 without options or fragments,
 * IPv6 whose next header is TCP or UDP itself. Anything else passes as it
 * is, and the order of the packets of any one flow never changes.
 */

/* The legacy virtio-net header the tun device reads and writes in front of
 * every packet with IFF_VNET_HDR (struct virtio_net_hdr; 16-bit fields in
 * the host's byte order). */
typedef struct {
    guint8 flags;
    guint8 gso_type;
    guint16 hdr_len;
    guint16 gso_size;
    guint16 csum_start;
    guint16 csum_offset;
} ShimmerVnetHdr;

#define SHIMMER_VNET_HDR_LEN 10

#define SHIMMER_VNET_F_NEEDS_CSUM 1
#define SHIMMER_VNET_F_DATA_VALID 2

#define SHIMMER_VNET_GSO_NONE   0
#define SHIMMER_VNET_GSO_TCPV4  1
#define SHIMMER_VNET_GSO_TCPV6  4
#define SHIMMER_VNET_GSO_UDP_L4 5
#define SHIMMER_VNET_GSO_ECN    0x80

/* The most segments one super-packet is cut into, and glued from. */
#define SHIMMER_OFFLOAD_MAX_SEGS 64

/* Completes the transport checksum the kernel left to do (H->flags has
 * NEEDS_CSUM): the one's complement sum from H->csum_start to the end,
 * stored at csum_start + csum_offset. FALSE when the offsets do not fit
 * the packet (drop it). A packet without NEEDS_CSUM is left alone. */
gboolean shimmer_offload_finish_checksum(const ShimmerVnetHdr *h, guint8 *pkt, gsize len);

/* Cuts the super-packet PKT[0..LEN) described by H (gso_type TCPV4, TCPV6
 * or UDP_L4, with or without ECN) into segments of at most H->gso_size
 * payload bytes, each written whole (IP header, transport header, payload)
 * to SEGS[i] + HEADROOM, its length in SEG_LEN[i]. Each segment's buffer
 * has CAP bytes. IPv4: total length, identification (one more per
 * segment) and header checksum; IPv6: payload length; TCP: sequence number,
 * FIN and PSH on the last segment only, CWR on the first only; UDP: length.
 * The transport checksum of every segment is computed in full. Returns the
 * number of segments, 0 when the packet is malformed or would need more
 * than MAX_SEGS segments or more than CAP bytes for one (drop it). */
guint shimmer_offload_segment(const ShimmerVnetHdr *h, const guint8 *pkt, gsize len, guint8 **segs,
                              guint max_segs, gsize headroom, gsize cap, gsize *seg_len);

/* The one's complement checksum of BUF[0..LEN) folded to 16 bits, not
 * inverted, in network byte order as a host integer (for tests). */
guint16 shimmer_offload_csum(const guint8 *buf, gsize len);

/* ---- coalescing packets for the tun ---- */

typedef struct ShimmerCoalescer ShimmerCoalescer;

/* What the kernel takes glued: TCP over IPv4 and IPv6 (TSO), UDP over IPv4
 * and IPv6 (USO). */
typedef enum {
    SHIMMER_COALESCE_TCP4 = 1 << 0,
    SHIMMER_COALESCE_TCP6 = 1 << 1,
    SHIMMER_COALESCE_UDP4 = 1 << 2,
    SHIMMER_COALESCE_UDP6 = 1 << 3,
} ShimmerCoalesceFlags;

/* A coalescer for batches of up to MAX_PACKETS packets, gluing what FLAGS
 * allow (0: nothing is glued, every packet goes out alone). */
ShimmerCoalescer *shimmer_coalescer_new(guint max_packets, guint flags);
void shimmer_coalescer_free(ShimmerCoalescer *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerCoalescer, shimmer_coalescer_free)

/* Adds the IP packet PKT[0..LEN), which must stay where it is, unchanged
 * except by the coalescer, until shimmer_coalescer_reset(). The first
 * packet of every glued group has its IP and transport headers rewritten
 * when the group is taken. FALSE when the batch is full (take the writes
 * and reset first). */
gboolean shimmer_coalescer_add(ShimmerCoalescer *c, guint8 *pkt, gsize len);

/* The writes the batch makes, in order, *N_WRITES of them: write i is its
 * virtio-net header followed by (*IOV)[first_iov .. first_iov + n_iov). The
 * first packet of each glued group has its headers rewritten here, so call
 * it once per batch, then shimmer_coalescer_reset(). Valid until then. */
typedef struct {
    ShimmerVnetHdr hdr;
    guint first_iov;
    guint n_iov;
    guint n_packets; /* the packets glued into it */
    gsize len;       /* bytes after the virtio-net header */
} ShimmerCoalescedWrite;

const ShimmerCoalescedWrite *shimmer_coalescer_finish(ShimmerCoalescer *c, guint *n_writes,
                                                      struct iovec **iov);

/* Forgets the batch. */
void shimmer_coalescer_reset(ShimmerCoalescer *c);

G_END_DECLS
