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

struct _ShimmerTun {
    int fd;
    int ifindex;
    gboolean persistent;
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

ShimmerTun *shimmer_tun_open(const char *name, GError **error)
{
    struct ifreq ifr;
    gsize len;
    int fd;

    if (name == NULL)
        name = "tun%d";
    len = strlen(name);
    if (len == 0 || len >= IFNAMSIZ) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "invalid tun device name '%s': it must be 1 to %d bytes long", name,
                    IFNAMSIZ - 1);
        return NULL;
    }

    /* Non-blocking and close-on-exec from the start: setting them later
     * leaves a window in which a concurrent fork+exec inherits the device. */
    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_errno_error(error, errno, "cannot open /dev/net/tun");
        return NULL;
    }

    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name, len);
    /* No IFF_TUN_EXCL: attaching to an administrator's pre-created device is
     * a supported way to run without creating devices. The kernel refuses
     * (EINVAL) to attach to a device that is not a tun, so a wrong name
     * cannot hijack an Ethernet interface. */
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int err = errno;

        close(fd);
        if (err == EPERM)
            set_errno_error(error, err, "cannot create tun device %s (needs CAP_NET_ADMIN)", name);
        else
            set_errno_error(error, err, "cannot create tun device %s", name);
        return NULL;
    }

    ShimmerTun *tun = g_new0(ShimmerTun, 1);
    tun->fd = fd;
    /* The kernel wrote the real name back (NUL-terminated within IFNAMSIZ). */
    memcpy(tun->name, ifr.ifr_name, IFNAMSIZ);
    tun->name[IFNAMSIZ - 1] = '\0';

    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(fd, TUNGETIFF, &ifr) == 0)
        tun->persistent = (ifr.ifr_flags & IFF_PERSIST) != 0;

    tun->ifindex = (int)if_nametoindex(tun->name);
    if (tun->ifindex == 0) {
        int err = errno;

        set_errno_error(error, err, "cannot find the interface index of %s", tun->name);
        shimmer_tun_close(tun);
        return NULL;
    }
    return tun;
}

void shimmer_tun_close(ShimmerTun *tun)
{
    if (tun == NULL)
        return;
    if (tun->fd >= 0)
        close(tun->fd);
    g_free(tun);
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
