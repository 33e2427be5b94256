/* SPDX-License-Identifier: MIT */
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Offload bits the headers of older kernels lack. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

struct _ShimmerTun {
    int fd; /* queue 0 */
    int ifindex;
    gboolean persistent;
    gboolean vnet_hdr;
    guint offload;
    guint n_queues;
    int *queues; /* n_queues descriptors, queues[0] == fd */
    char name[IFNAMSIZ];
};

static void set_errno_error(GError **error, int err, const char *format, ...) G_GNUC_PRINTF(3, 4);

/* "<formatted text>: <strerror>", code from errno. */
static void set_errno_error(GError **error, int err, const char *format, ...)
{
    va_list ap;
    g_autofree char *what = NULL;

    va_start(ap, format);
    what = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s: %s", what, g_strerror(err));
}

/* One descriptor attached to NAME with FLAGS (besides IFF_TUN | IFF_NO_PI);
 * the kernel's name for the device is written back into IFR. -1 with
 * ERROR set (and *ERRNUM the errno) when it cannot be. */
static int attach(const char *name, short flags, struct ifreq *ifr, int *errnum, GError **error)
{
    /* Non-blocking and close-on-exec from the start: setting them later
     * leaves a window in which a concurrent fork+exec inherits the device. */
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *errnum = errno;
        set_errno_error(error, errno, "cannot open /dev/net/tun");
        return -1;
    }
    memset(ifr, 0, sizeof(*ifr));
    memcpy(ifr->ifr_name, name, strlen(name));
    /* No IFF_TUN_EXCL: attaching to an administrator's pre-created device is
     * a supported way to run without creating devices. The kernel refuses
     * (EINVAL) to attach to a device that is not a tun, so a wrong name
     * cannot hijack an Ethernet interface. */
    ifr->ifr_flags = (short)(IFF_TUN | IFF_NO_PI | flags);
    if (ioctl(fd, TUNSETIFF, ifr) < 0) {
        int err = errno;

        close(fd);
        *errnum = err;
        if (err == EPERM)
            set_errno_error(error, err, "cannot create tun device %s (needs CAP_NET_ADMIN)", name);
        else
            set_errno_error(error, err, "cannot create tun device %s", name);
        return -1;
    }
    return fd;
}

ShimmerTun *shimmer_tun_open(const char *name, GError **error)
{
    return shimmer_tun_open_queues(name, 1, FALSE, error);
}

ShimmerTun *shimmer_tun_open_queues(const char *name, guint n_queues, gboolean vnet_hdr,
                                    GError **error)
{
    struct ifreq ifr;
    gsize len;
    int fd;
    int err = 0;

    if (name == NULL)
        name = "tun%d";
    len = strlen(name);
    if (len == 0 || len >= IFNAMSIZ) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "invalid tun device name '%s': it must be 1 to %d bytes long", name,
                    IFNAMSIZ - 1);
        return NULL;
    }
    n_queues = CLAMP(n_queues, 1, SHIMMER_TUN_MAX_QUEUES);

    /* What the kernel offers decides the flags to ask for. */
    unsigned int features = 0;
    int probe = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (probe >= 0) {
        if (ioctl(probe, TUNGETFEATURES, &features) < 0)
            features = 0;
        close(probe);
    }
    short flags = 0;
    if (vnet_hdr && (features & IFF_VNET_HDR))
        flags |= IFF_VNET_HDR;
    if (n_queues > 1 && (features & IFF_MULTI_QUEUE))
        flags |= IFF_MULTI_QUEUE;
    fd = attach(name, flags, &ifr, &err, error);
    if (fd < 0 && err == EINVAL && (flags & IFF_MULTI_QUEUE)) {
        /* A device created before, without multi-queue: one queue then. */
        g_clear_error(error);
        flags &= (short)~IFF_MULTI_QUEUE;
        fd = attach(name, flags, &ifr, &err, error);
    }
    if (fd < 0)
        return NULL;

    ShimmerTun *tun = g_new0(ShimmerTun, 1);
    tun->fd = fd;
    tun->vnet_hdr = (flags & IFF_VNET_HDR) != 0;
    tun->n_queues = 1;
    tun->queues = g_new(int, (flags & IFF_MULTI_QUEUE) ? n_queues : 1);
    tun->queues[0] = fd;
    /* The kernel wrote the real name back (NUL-terminated within IFNAMSIZ). */
    memcpy(tun->name, ifr.ifr_name, IFNAMSIZ);
    tun->name[IFNAMSIZ - 1] = '\0';

    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(fd, TUNGETIFF, &ifr) == 0)
        tun->persistent = (ifr.ifr_flags & IFF_PERSIST) != 0;

    tun->ifindex = (int)if_nametoindex(tun->name);
    if (tun->ifindex == 0) {
        err = errno;

        set_errno_error(error, err, "cannot find the interface index of %s", tun->name);
        shimmer_tun_close(tun);
        return NULL;
    }

    /* The other queues attach to the device by its real name. */
    for (guint i = 1; (flags & IFF_MULTI_QUEUE) && i < n_queues; i++) {
        struct ifreq q;
        g_autoptr(GError) qerr = NULL;
        int qfd = attach(tun->name, flags, &q, &err, &qerr);
        if (qfd < 0)
            break; /* fewer queues; the first ones work */
        tun->queues[tun->n_queues++] = qfd;
    }
    return tun;
}

void shimmer_tun_close(ShimmerTun *tun)
{
    if (tun == NULL)
        return;
    for (guint i = 0; i < tun->n_queues; i++) {
        if (tun->queues[i] >= 0)
            close(tun->queues[i]);
    }
    g_free(tun->queues);
    g_free(tun);
}

guint shimmer_tun_get_n_queues(const ShimmerTun *tun)
{
    return tun->n_queues;
}

int shimmer_tun_get_queue_fd(const ShimmerTun *tun, guint i)
{
    return i < tun->n_queues ? tun->queues[i] : -1;
}

gboolean shimmer_tun_has_vnet_hdr(const ShimmerTun *tun)
{
    return tun->vnet_hdr;
}

static unsigned long kernel_offload(guint o)
{
    unsigned long f = 0;
    if (o & SHIMMER_TUN_OFFLOAD_CSUM)
        f |= TUN_F_CSUM;
    if (o & SHIMMER_TUN_OFFLOAD_TSO4)
        f |= TUN_F_TSO4;
    if (o & SHIMMER_TUN_OFFLOAD_TSO6)
        f |= TUN_F_TSO6;
    if (o & SHIMMER_TUN_OFFLOAD_TSO_ECN)
        f |= TUN_F_TSO_ECN;
    if (o & SHIMMER_TUN_OFFLOAD_USO4)
        f |= TUN_F_USO4;
    if (o & SHIMMER_TUN_OFFLOAD_USO6)
        f |= TUN_F_USO6;
    return f;
}

guint shimmer_tun_set_offload(ShimmerTun *tun, guint want)
{
    tun->offload = 0;
    if (!tun->vnet_hdr)
        return 0;
    /* TSO and USO need the checksum offload under them. */
    if (want & ~SHIMMER_TUN_OFFLOAD_CSUM)
        want |= SHIMMER_TUN_OFFLOAD_CSUM;
    const guint tso =
        SHIMMER_TUN_OFFLOAD_TSO4 | SHIMMER_TUN_OFFLOAD_TSO6 | SHIMMER_TUN_OFFLOAD_TSO_ECN;
    const guint uso = SHIMMER_TUN_OFFLOAD_USO4 | SHIMMER_TUN_OFFLOAD_USO6;
    /* Older kernels refuse bits they do not know (USO before 6.2): ask for
     * less until they agree. */
    const guint tries[] = {want, want & ~uso, want & ~(uso | tso), 0};
    for (guint i = 0; i < G_N_ELEMENTS(tries); i++) {
        if (i > 0 && tries[i] == tries[i - 1])
            continue;
        if (ioctl(tun->fd, TUNSETOFFLOAD, kernel_offload(tries[i])) == 0) {
            tun->offload = tries[i];
            return tries[i];
        }
    }
    return 0;
}

guint shimmer_tun_get_offload(const ShimmerTun *tun)
{
    return tun->offload;
}

const char *shimmer_tun_get_name(const ShimmerTun *tun)
{
    return tun->name;
}

int shimmer_tun_get_ifindex(const ShimmerTun *tun)
{
    return tun->ifindex;
}

int shimmer_tun_get_fd(const ShimmerTun *tun)
{
    return tun->fd;
}

gboolean shimmer_tun_is_persistent(const ShimmerTun *tun)
{
    return tun->persistent;
}

/* The length the IP header of P claims, or 0 when N bytes do not show it. */
static gsize ip_packet_len(const guint8 *p, gsize n)
{
    if (n >= 4 && p[0] >> 4 == 4)
        return (gsize)(p[2] << 8 | p[3]);
    if (n >= 6 && p[0] >> 4 == 6)
        return 40 + (gsize)(p[4] << 8 | p[5]);
    return 0;
}

/* Whether a read of N bytes into a SIZE-byte buffer lost the packet's tail.
 * Kernels differ in what read() returns then: some the packet's full length,
 * current ones only what they copied, silently. So a full buffer counts as
 * complete only when the IP header says the packet is exactly that long. */
static gboolean is_truncated(const guint8 *buf, gsize n, gsize size)
{
    if (n > size)
        return TRUE;
    return n == size && ip_packet_len(buf, n) != n;
}

gboolean shimmer_tun_read(ShimmerTun *tun, guint8 *buf, gsize size, gsize *out_len, GError **error)
{
    ssize_t n;

    *out_len = 0;
    do
        n = read(tun->fd, buf, size);
    while (n < 0 && errno == EINTR);

    if (n < 0) {
        if (errno == EAGAIN)
            return TRUE;
        set_errno_error(error, errno, "cannot read from %s", tun->name);
        return FALSE;
    }
    if (is_truncated(buf, (gsize)n, size)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                    "dropped a packet from %s that is larger than the %zu-byte read buffer",
                    tun->name, size);
        return FALSE;
    }
    *out_len = (gsize)n;
    return TRUE;
}

gboolean shimmer_tun_write(ShimmerTun *tun, const guint8 *pkt, gsize len, GError **error)
{
    ssize_t n;

    do
        n = write(tun->fd, pkt, len);
    while (n < 0 && errno == EINTR);

    if (n < 0) {
        set_errno_error(error, errno, "cannot write a packet of %zu bytes to %s", len, tun->name);
        return FALSE;
    }
    if ((gsize)n != len) {
        /* Not seen from a tun device; reported rather than retried because
         * the rest of a packet is not a packet. */
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "short write to %s: %zd of %zu bytes",
                    tun->name, n, len);
        return FALSE;
    }
    return TRUE;
}

/* A character device has no recvmmsg/sendmmsg, so a batch is a loop; it
 * still saves the caller a poll round trip per packet. */
gboolean shimmer_tun_read_batch(ShimmerTun *tun, ShimmerTunPacket *pkts, guint n_pkts, guint *out_n,
                                GError **error)
{
    *out_n = 0;
    for (guint i = 0; i < n_pkts; i++) {
        gsize len;

        if (!shimmer_tun_read(tun, pkts[i].data, pkts[i].capacity, &len, error))
            return FALSE;
        if (len == 0)
            break;
        pkts[i].len = len;
        *out_n = i + 1;
    }
    return TRUE;
}

gboolean shimmer_tun_write_batch(ShimmerTun *tun, const ShimmerTunPacket *pkts, guint n_pkts,
                                 guint *out_n, GError **error)
{
    *out_n = 0;
    for (guint i = 0; i < n_pkts; i++) {
        if (!shimmer_tun_write(tun, pkts[i].data, pkts[i].len, error))
            return FALSE;
        *out_n = i + 1;
    }
    return TRUE;
}

static gboolean is_stale_name(const char *name, const char *prefix)
{
    gsize n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] == '\0')
        return FALSE;
    for (const char *c = name + n; *c; c++)
        if (!g_ascii_isdigit(*c))
            return FALSE;
    return TRUE;
}

void shimmer_tun_remove_stale(const char *prefix)
{
    struct if_nameindex *ifs = if_nameindex();
    if (ifs == NULL)
        return;
    for (struct if_nameindex *i = ifs; i->if_index != 0 && i->if_name != NULL; i++) {
        if (!is_stale_name(i->if_name, prefix))
            continue;
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerTun) tun = shimmer_tun_open(i->if_name, &error);
        if (tun == NULL) {
            g_message("device %s exists and is not ours to remove: %s", i->if_name, error->message);
            continue;
        }
        if (!shimmer_tun_is_persistent(tun))
            continue;
        if (ioctl(tun->fd, TUNSETPERSIST, 0) < 0)
            g_warning("cannot remove the stale tun device %s: %s", i->if_name, g_strerror(errno));
        else
            g_message("removed the stale tun device %s", i->if_name);
    }
    if_freenameindex(ifs);
}
