/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A layer-3 tun device: the daemon's end of the tunnel.
 *
 * Every packet read is one IPv4 or IPv6 packet the kernel routed into the
 * device; every packet written is handed to the kernel as if it had arrived
 * on the device. There is no packet-information header (IFF_NO_PI), so the
 * IP version is the top nibble of the first byte.
 *
 * The descriptor is non-blocking and close-on-exec from the moment it is
 * opened, so a read never stalls the main loop and a spawned helper (a
 * script, a resolver) never keeps the device alive. Hang it on the main loop
 * with g_unix_fd_add(shimmer_tun_get_fd(tun), G_IO_IN, ...).
 *
 * The device is not made persistent: one the daemon created disappears,
 * with its addresses and routes, when shimmer_tun_close() closes the
 * descriptor (or the daemon dies). A device an administrator pre-created as
 * persistent (`ip tuntap add NAME mode tun`) is attached to and left as it
 * was found; shimmer_tun_is_persistent() tells the two apart.
 *
 * Errors are in the G_IO_ERROR domain, the code derived from errno.
 */

typedef struct _ShimmerTun ShimmerTun;

/* One packet of a batch. For reads, DATA has room for CAPACITY bytes and
 * LEN is set to the packet's length; for writes, LEN bytes of DATA are sent
 * and CAPACITY is not looked at. */
typedef struct {
    guint8 *data;
    gsize capacity;
    gsize len;
} ShimmerTunPacket;

/* Opens /dev/net/tun and attaches it to a tun device. NAME is a device name
 * ("tun0": created, or attached to when a tun device of that name exists
 * and nobody holds it) or a pattern with one "%d" ("tun%d": the kernel picks
 * the lowest free number); NULL means "tun%d". NAME must be 1 to 15 bytes.
 * Returns the device, or NULL with ERROR set: "cannot open /dev/net/tun:
 * ...", "cannot create tun device NAME: ..." (EBUSY when someone else holds
 * it, EINVAL when NAME exists as a device of another kind, EPERM without
 * CAP_NET_ADMIN). */
ShimmerTun *shimmer_tun_open(const char *name, GError **error);

/* The most queues a device is opened with. */
#define SHIMMER_TUN_MAX_QUEUES 64

/* As shimmer_tun_open(), with up to N_QUEUES descriptors on the device
 * (IFF_MULTI_QUEUE: the kernel spreads the device's packets over them by
 * flow, so each can have a reader of its own) and, with VNET_HDR, a
 * virtio-net header in front of every packet read and written
 * (IFF_VNET_HDR, the way to the offloads below). What the kernel does not
 * offer is done without: one queue for a device created earlier without
 * multi-queue, no header on a kernel without it. shimmer_tun_get_n_queues()
 * and shimmer_tun_has_vnet_hdr() tell what was obtained. */
ShimmerTun *shimmer_tun_open_queues(const char *name, guint n_queues, gboolean vnet_hdr,
                                    GError **error);

/* The number of queues (at least 1) and the descriptor of queue I (-1 past
 * the last); queue 0 is shimmer_tun_get_fd(). */
guint shimmer_tun_get_n_queues(const ShimmerTun *tun);
int shimmer_tun_get_queue_fd(const ShimmerTun *tun, guint i);

/* Every packet read and written carries a virtio-net header. */
gboolean shimmer_tun_has_vnet_hdr(const ShimmerTun *tun);

typedef enum {
    /* The kernel may hand over packets with the transport checksum left to
     * do (the reader completes it). */
    SHIMMER_TUN_OFFLOAD_CSUM = 1 << 0,
    /* ...and TCP super-packets of up to 64 KB (IPv4, IPv6, with ECN). */
    SHIMMER_TUN_OFFLOAD_TSO4 = 1 << 1,
    SHIMMER_TUN_OFFLOAD_TSO6 = 1 << 2,
    SHIMMER_TUN_OFFLOAD_TSO_ECN = 1 << 3,
    /* ...and UDP super-datagrams (Linux 6.2 and later). */
    SHIMMER_TUN_OFFLOAD_USO4 = 1 << 4,
    SHIMMER_TUN_OFFLOAD_USO6 = 1 << 5,
} ShimmerTunOffload;

/* Asks the kernel for the offloads WANT (ShimmerTunOffload bits; TSO and
 * USO bring CSUM with them) for what it hands this device's readers. Needs
 * the virtio-net header. A kernel that refuses gets asked for less: without
 * USO, then without TSO, then nothing. Returns what is on (0 without the
 * header); shimmer_tun_get_offload() says it again later. */
guint shimmer_tun_set_offload(ShimmerTun *tun, guint want);
guint shimmer_tun_get_offload(const ShimmerTun *tun);

/* Closes the descriptor and frees TUN. A non-persistent device vanishes with
 * everything configured on it. NULL is ignored. */
void shimmer_tun_close(ShimmerTun *tun);

/* The real name of the device ("tun0" for a "tun%d" request). Valid as long
 * as TUN. */
const char *shimmer_tun_get_name(const ShimmerTun *tun);

/* The kernel's interface index: what the shimmer_netcfg_* calls take. */
int shimmer_tun_get_ifindex(const ShimmerTun *tun);

/* The non-blocking descriptor, for polling. Owned by TUN. */
int shimmer_tun_get_fd(const ShimmerTun *tun);

/* TRUE when the device outlives the descriptor (pre-created persistent). */
gboolean shimmer_tun_is_persistent(const ShimmerTun *tun);

/* Reads one packet into BUF (SIZE bytes; the device MTU is enough).
 * On success *OUT_LEN is the packet's length, or 0 when no packet was
 * waiting (not an error: poll again). A packet larger than SIZE loses its
 * tail in the kernel's copy; that is caught from the IP header and returns
 * FALSE with G_IO_ERROR_MESSAGE_TOO_LARGE (the packet is gone), after which
 * reading can simply go on. Allocates nothing unless it fails. */
gboolean shimmer_tun_read(ShimmerTun *tun, guint8 *buf, gsize size, gsize *out_len, GError **error);

/* Writes one complete IP packet of LEN bytes. The kernel takes a packet
 * whole or not at all. A malformed packet is refused (EINVAL); a packet
 * written while the device is down is refused with EIO. Dropping the packet
 * and going on is always a safe reaction: the tunnel is a lossy link.
 * Allocates nothing unless it fails. */
gboolean shimmer_tun_write(ShimmerTun *tun, const guint8 *pkt, gsize len, GError **error);

/* Reads up to N_PKTS packets, stopping early when no more are waiting.
 * *OUT_N is the number of packets filled in, also when FALSE is returned
 * (those packets are good; the one that failed is not among them). */
gboolean shimmer_tun_read_batch(ShimmerTun *tun, ShimmerTunPacket *pkts, guint n_pkts, guint *out_n,
                                GError **error);

/* Writes PKTS in order, stopping at the first failure. *OUT_N is the number
 * written, also when FALSE is returned (then PKTS[*OUT_N] is the one that
 * failed). */
gboolean shimmer_tun_write_batch(ShimmerTun *tun, const ShimmerTunPacket *pkts, guint n_pkts,
                                 guint *out_n, GError **error);

/* Removes persistent tun devices named PREFIX followed by digits only that
 * nobody holds: what a crashed run of the daemon can leave (a device it
 * created itself is not persistent and went with the dead process). One
 * held by a living process (EBUSY) or of another kind is left alone. Each
 * removal and each refusal is logged. */
void shimmer_tun_remove_stale(const char *prefix);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerTun, shimmer_tun_close)

G_END_DECLS
