/* SPDX-License-Identifier: MIT */
#include "netcfg.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

/* The kernel answers rtnetlink requests before the send returns; the
 * timeout only keeps a wedged kernel from wedging the daemon. */
#define REQUEST_TIMEOUT_S 5

typedef struct {
    int del_type; /* RTM_DELADDR or RTM_DELROUTE */
    /* The add request's payload (family header and attributes). Removing
     * sends it back unchanged, so exactly what was added is matched. */
    GBytes *payload;
    char *what; /* "route 10.9.0.0/16 via tun0", for messages */
} UndoEntry;

struct _ShimmerNetcfg {
    struct nl_sock *sk;
    GPtrArray *undo; /* of UndoEntry, oldest first */
    /* rtm_protocol of the routes this object adds (RTPROT_STATIC unless
     * set). */
    guint8 route_protocol;
    /* What the kernel said about the request in flight (on_nl_error). */
    int kernel_errno;
    char *kernel_msg;
};

static void undo_entry_free(gpointer p)
{
    UndoEntry *e = p;

    g_bytes_unref(e->payload);
    g_free(e->what);
    g_free(e);
}

/* A NETLINK_ROUTE socket set up for nc_request(). */
static struct nl_sock *open_socket(GError **error)
{
    struct timeval tv = {.tv_sec = REQUEST_TIMEOUT_S};
    int one = 1;
    int err;

    struct nl_sock *sk = nl_socket_alloc();
    if (sk == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot allocate a netlink socket");
        return NULL;
    }
    err = nl_connect(sk, NETLINK_ROUTE);
    if (err < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot open a rtnetlink socket: %s",
                    nl_geterror(err));
        nl_socket_free(sk);
        return NULL;
    }
    int fd = nl_socket_get_fd(sk);
    /* Extended acks carry the kernel's own explanation of a refusal; capped
     * acks leave out the echo of our request, which we do not need. Both are
     * optional (older kernels), hence no error checking. */
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
        int e = errno;

        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    "cannot set a timeout on the rtnetlink socket: %s", g_strerror(e));
        nl_socket_free(sk);
        return NULL;
    }
    return sk;
}

ShimmerNetcfg *shimmer_netcfg_new(GError **error)
{
    struct nl_sock *sk = open_socket(error);

    if (sk == NULL)
        return NULL;
    ShimmerNetcfg *nc = g_new0(ShimmerNetcfg, 1);
    nc->sk = sk;
    nc->undo = g_ptr_array_new_with_free_func(undo_entry_free);
    nc->route_protocol = RTPROT_STATIC;
    return nc;
}

void shimmer_netcfg_set_route_protocol(ShimmerNetcfg *nc, guint8 protocol)
{
    nc->route_protocol = protocol;
}

void shimmer_netcfg_free(ShimmerNetcfg *nc)
{
    if (nc == NULL)
        return;
    nl_socket_free(nc->sk);
    g_ptr_array_unref(nc->undo);
    g_free(nc->kernel_msg);
    g_free(nc);
}

guint shimmer_netcfg_get_n_undo(ShimmerNetcfg *nc)
{
    return nc->undo->len;
}

/* ---- talking to the kernel ---------------------------------------------- */

static int on_nl_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
    ShimmerNetcfg *nc = arg;
    /* libnl hands us the payload; the header sits right before it (and is
     * aligned: the payload starts NLMSG_HDRLEN bytes into the message). */
    const struct nlmsghdr *h = (const void *)((const char *)e - NLMSG_HDRLEN);
    struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
    gsize off, total;

    nc->kernel_errno = -e->error;
    g_clear_pointer(&nc->kernel_msg, g_free);

    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
        return NL_STOP;
    /* The extended-ack attributes follow the error header and, unless the
     * ack is capped, the echo of the request's payload. */
    off = sizeof(*e);
    if (!(h->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= NLMSG_HDRLEN)
        off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    off = NLMSG_ALIGN(off);
    total = h->nlmsg_len - NLMSG_HDRLEN;
    if (off >= total)
        return NL_STOP;
    if (nla_parse(tb, NLMSGERR_ATTR_MAX, (void *)((char *)e + off), (int)(total - off), NULL) < 0)
        return NL_STOP;
    if (tb[NLMSGERR_ATTR_MSG] != NULL && nla_len(tb[NLMSGERR_ATTR_MSG]) > 1)
        nc->kernel_msg =
            g_strndup(nla_data(tb[NLMSGERR_ATTR_MSG]), (gsize)nla_len(tb[NLMSGERR_ATTR_MSG]));
    return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
    gboolean *acked = arg;

    *acked = TRUE;
    return NL_STOP;
}

/*
 * Sends one request of TYPE with PAYLOAD and reads until the kernel acks it;
 * ON_REPLY, if set, sees each data message before the ack. Returns 0, or an
 * errno value with a human-readable *REASON (the caller frees it).
 */
static int nc_request(ShimmerNetcfg *nc, int type, int flags, GBytes *payload,
                      nl_recvmsg_msg_cb_t on_reply, void *reply_arg, char **reason)
{
    gsize len;
    const void *data = g_bytes_get_data(payload, &len);
    gboolean acked = FALSE;
    int err;

    *reason = NULL;
    nc->kernel_errno = 0;
    g_clear_pointer(&nc->kernel_msg, g_free);

    struct nl_msg *msg = nlmsg_alloc_simple(type, flags);
    if (msg == NULL || nlmsg_append(msg, (void *)data, len, NLMSG_ALIGNTO) < 0) {
        nlmsg_free(msg);
        *reason = g_strdup(g_strerror(ENOMEM));
        return ENOMEM;
    }
    /* Adds our port id, the next sequence number and NLM_F_ACK: every
     * request, a query too, ends with an ack or an error. */
    err = nl_send_auto(nc->sk, msg);
    nlmsg_free(msg);
    if (err < 0) {
        *reason = g_strdup_printf("cannot send the netlink request: %s", nl_geterror(err));
        return EIO;
    }

    struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
    if (cb == NULL) {
        *reason = g_strdup(g_strerror(ENOMEM));
        return ENOMEM;
    }
    nl_cb_err(cb, NL_CB_CUSTOM, on_nl_error, nc);
    nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, &acked);
    /* A dump ends with NLMSG_DONE instead. */
    nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_ack, &acked);
    if (on_reply != NULL)
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_reply, reply_arg);
    /* One receive call returns after one datagram; a query's answer and
     * its ack come in two. */
    do {
        err = nl_recvmsgs_report(nc->sk, cb);
        if (err == 0)
            err = -NLE_AGAIN; /* nothing read: the timeout struck */
    } while (err > 0 && !acked);
    nl_cb_put(cb);

    if (acked)
        return 0;
    if (nc->kernel_errno != 0) {
        if (nc->kernel_msg != NULL)
            *reason = g_strdup_printf("%s (%s)", g_strerror(nc->kernel_errno), nc->kernel_msg);
        else
            *reason = g_strdup(g_strerror(nc->kernel_errno));
        return nc->kernel_errno;
    }
    if (err == -NLE_AGAIN) {
        struct nl_sock *fresh = open_socket(NULL);

        /* A late answer must not be taken for the next request's: start
         * over on a new socket (keeping the old one if that fails). */
        if (fresh != NULL) {
            nl_socket_free(nc->sk);
            nc->sk = fresh;
        }
        *reason = g_strdup_printf("no answer from the kernel within %d s", REQUEST_TIMEOUT_S);
        return ETIMEDOUT;
    }
    *reason = g_strdup_printf("netlink: %s", nl_geterror(err));
    return EIO;
}

/* nc_request() for changes: FALSE with "cannot VERB WHAT: reason". */
static gboolean nc_change(ShimmerNetcfg *nc, int type, int flags, GBytes *payload, const char *verb,
                          const char *what, int *out_errno, GError **error)
{
    g_autofree char *reason = NULL;
    int e = nc_request(nc, type, flags, payload, NULL, NULL, &reason);

    if (out_errno != NULL)
        *out_errno = e;
    if (e == 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot %s %s: %s", verb, what,
                reason);
    return FALSE;
}

/* ---- describing objects ---------------------------------------------------- */

static char *ifname_of(int ifindex)
{
    char buf[IF_NAMESIZE];

    if (ifindex > 0 && if_indextoname((unsigned)ifindex, buf) != NULL)
        return g_strdup(buf);
    return g_strdup_printf("ifindex %d", ifindex);
}

static int family_of(GInetAddress *a)
{
    return g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
}

static guint max_prefix(int family)
{
    return family == AF_INET6 ? 128 : 32;
}

static char *describe_addr(int ifindex, GInetAddress *local, guint prefix_len, GInetAddress *peer)
{
    g_autofree char *dev = ifname_of(ifindex);
    g_autofree char *l = g_inet_address_to_string(local);

    if (peer != NULL) {
        g_autofree char *p = g_inet_address_to_string(peer);

        return g_strdup_printf("address %s peer %s/%u on %s", l, p, prefix_len, dev);
    }
    return g_strdup_printf("address %s/%u on %s", l, prefix_len, dev);
}

static char *describe_route(GInetAddressMask *dest, int ifindex, GInetAddress *gateway,
                            guint32 metric)
{
    g_autofree char *d = g_inet_address_to_string(g_inet_address_mask_get_address(dest));
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, "route %s/%u", d, g_inet_address_mask_get_length(dest));
    if (gateway != NULL) {
        g_autofree char *gw = g_inet_address_to_string(gateway);

        g_string_append_printf(s, " via %s", gw);
        if (ifindex > 0) {
            g_autofree char *dev = ifname_of(ifindex);

            g_string_append_printf(s, " dev %s", dev);
        }
    } else {
        g_autofree char *dev = ifname_of(ifindex);

        g_string_append_printf(s, " via %s", dev);
    }
    if (metric != 0)
        g_string_append_printf(s, " metric %u", metric);
    return g_string_free(s, FALSE);
}

/* ---- building requests ---------------------------------------------------- */

/* The payload of MSG (header after the netlink header, and attributes). */
static GBytes *payload_of(struct nl_msg *msg)
{
    struct nlmsghdr *h = nlmsg_hdr(msg);

    return g_bytes_new(nlmsg_data(h), (gsize)nlmsg_datalen(h));
}

static int put_inet(struct nl_msg *msg, int attr, GInetAddress *a)
{
    return nla_put(msg, attr, (int)g_inet_address_get_native_size(a), g_inet_address_to_bytes(a));
}

/* The payload shared by adding and removing an address. NULL only when out
 * of memory. */
static GBytes *addr_payload(int ifindex, GInetAddress *local, guint prefix_len, GInetAddress *peer)
{
    int family = family_of(local);
    struct ifaddrmsg ifa = {
        .ifa_family = (guint8)family,
        .ifa_prefixlen = (guint8)prefix_len,
        /* IPv4 takes the scope from here; IPv6 derives it from the address. */
        .ifa_scope = RT_SCOPE_UNIVERSE,
        .ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0,
        .ifa_index = (guint32)ifindex,
    };
    GBytes *payload = NULL;

    struct nl_msg *msg = nlmsg_alloc();
    if (msg != NULL && nlmsg_append(msg, &ifa, sizeof(ifa), NLMSG_ALIGNTO) == 0 &&
        put_inet(msg, IFA_LOCAL, local) == 0 &&
        /* IFA_ADDRESS is the far end of a point-to-point link; equal to
         * IFA_LOCAL it means there is none. */
        put_inet(msg, IFA_ADDRESS, peer != NULL ? peer : local) == 0)
        payload = payload_of(msg);
    nlmsg_free(msg);
    return payload;
}

/* The payload shared by adding and removing a route. NULL only when out of
 * memory. */
static GBytes *route_payload(GInetAddressMask *dest, int ifindex, GInetAddress *gateway,
                             guint32 metric, guint8 protocol)
{
    GInetAddress *dst = g_inet_address_mask_get_address(dest);
    struct rtmsg rtm = {
        .rtm_family = (guint8)family_of(dst),
        .rtm_dst_len = (guint8)g_inet_address_mask_get_length(dest),
        .rtm_table = RT_TABLE_MAIN,
        .rtm_protocol = protocol,
        /* A route without a next hop ends on the link itself. */
        .rtm_scope = gateway != NULL ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
        .rtm_type = RTN_UNICAST,
    };
    GBytes *payload = NULL;
    gboolean ok;

    struct nl_msg *msg = nlmsg_alloc();
    ok = msg != NULL && nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) == 0 &&
         put_inet(msg, RTA_DST, dst) == 0;
    if (ok && ifindex > 0)
        ok = nla_put_u32(msg, RTA_OIF, (guint32)ifindex) == 0;
    if (ok && gateway != NULL)
        ok = put_inet(msg, RTA_GATEWAY, gateway) == 0;
    if (ok && metric != 0)
        ok = nla_put_u32(msg, RTA_PRIORITY, metric) == 0;
    if (ok)
        payload = payload_of(msg);
    nlmsg_free(msg);
    return payload;
}

static gboolean no_memory(GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "out of memory building a netlink request");
    return FALSE;
}

/* ---- the undo list ---------------------------------------------------------- */

static void undo_push(ShimmerNetcfg *nc, int del_type, GBytes *payload, char *what)
{
    UndoEntry *e = g_new0(UndoEntry, 1);

    e->del_type = del_type;
    e->payload = g_bytes_ref(payload);
    e->what = what;
    g_ptr_array_add(nc->undo, e);
}

/* Drops the newest entry matching PAYLOAD, if any. */
static void undo_drop(ShimmerNetcfg *nc, int del_type, GBytes *payload)
{
    for (guint i = nc->undo->len; i > 0; i--) {
        UndoEntry *e = g_ptr_array_index(nc->undo, i - 1);

        if (e->del_type == del_type && g_bytes_equal(e->payload, payload)) {
            g_ptr_array_remove_index(nc->undo, i - 1);
            return;
        }
    }
}

/* Errors that mean "what you want removed is not there". */
static gboolean is_gone(int e)
{
    return e == ENODEV || e == ESRCH || e == EADDRNOTAVAIL;
}

gboolean shimmer_netcfg_rollback(ShimmerNetcfg *nc, GError **error)
{
    g_autoptr(GPtrArray) undo = nc->undo;
    g_autoptr(GError) first = NULL;
    guint n_failed = 0;

    /* A fresh list up front: the entries are gone whatever happens below. */
    nc->undo = g_ptr_array_new_with_free_func(undo_entry_free);

    for (guint i = undo->len; i > 0; i--) {
        UndoEntry *e = g_ptr_array_index(undo, i - 1);
        g_autoptr(GError) local = NULL;
        int err;

        if (nc_change(nc, e->del_type, 0, e->payload, "remove", e->what, &err, &local) ||
            is_gone(err))
            continue;
        n_failed++;
        if (first == NULL)
            first = g_steal_pointer(&local);
    }
    if (first == NULL)
        return TRUE;
    if (n_failed > 1)
        g_prefix_error(&first, "%u removals failed; the first: ", n_failed);
    g_propagate_error(error, g_steal_pointer(&first));
    return FALSE;
}

/* ---- links ------------------------------------------------------------------ */

static gboolean check_ifindex(int ifindex, GError **error)
{
    if (ifindex > 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid interface index %d",
                ifindex);
    return FALSE;
}

/* RTM_SETLINK rather than RTM_NEWLINK: it changes an existing link on every
 * kernel and can never create one. */
static gboolean link_change(ShimmerNetcfg *nc, int ifindex, guint flags, guint change,
                            const guint32 *mtu, const char *what, GError **error)
{
    struct ifinfomsg ifi = {
        .ifi_family = AF_UNSPEC,
        .ifi_index = ifindex,
        .ifi_flags = flags,
        .ifi_change = change,
    };
    g_autoptr(GBytes) payload = NULL;

    struct nl_msg *msg = nlmsg_alloc();
    if (msg != NULL && nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) == 0 &&
        (mtu == NULL || nla_put_u32(msg, IFLA_MTU, *mtu) == 0))
        payload = payload_of(msg);
    nlmsg_free(msg);
    if (payload == NULL)
        return no_memory(error);

    return nc_change(nc, RTM_SETLINK, 0, payload, "set", what, NULL, error);
}

gboolean shimmer_netcfg_link_set_mtu(ShimmerNetcfg *nc, int ifindex, guint mtu, GError **error)
{
    g_autofree char *dev = NULL;
    g_autofree char *what = NULL;
    guint32 m = mtu;

    if (!check_ifindex(ifindex, error))
        return FALSE;
    dev = ifname_of(ifindex);
    what = g_strdup_printf("MTU %u on %s", mtu, dev);
    return link_change(nc, ifindex, 0, 0, &m, what, error);
}

gboolean shimmer_netcfg_link_set_up(ShimmerNetcfg *nc, int ifindex, gboolean up, GError **error)
{
    g_autofree char *dev = NULL;
    g_autofree char *what = NULL;

    if (!check_ifindex(ifindex, error))
        return FALSE;
    dev = ifname_of(ifindex);
    what = g_strdup_printf("%s %s", dev, up ? "up" : "down");
    return link_change(nc, ifindex, up ? IFF_UP : 0, IFF_UP, NULL, what, error);
}

/* ---- addresses -------------------------------------------------------------- */

static gboolean check_addr(int ifindex, GInetAddress *local, guint prefix_len, GInetAddress *peer,
                           GError **error)
{
    if (!check_ifindex(ifindex, error))
        return FALSE;
    if (peer != NULL && family_of(peer) != family_of(local)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "address and peer are of different families");
        return FALSE;
    }
    if (prefix_len > max_prefix(family_of(local))) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid prefix length %u",
                    prefix_len);
        return FALSE;
    }
    return TRUE;
}

gboolean shimmer_netcfg_addr_add(ShimmerNetcfg *nc, int ifindex, GInetAddress *local,
                                 guint prefix_len, GInetAddress *peer, GError **error)
{
    g_autoptr(GBytes) payload = NULL;
    char *what;

    if (!check_addr(ifindex, local, prefix_len, peer, error))
        return FALSE;
    payload = addr_payload(ifindex, local, prefix_len, peer);
    if (payload == NULL)
        return no_memory(error);
    what = describe_addr(ifindex, local, prefix_len, peer);
    /* NLM_F_EXCL: an address that is there already belongs to someone else
     * and must not end up in our undo list. */
    if (!nc_change(nc, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, payload, "add", what, NULL, error)) {
        g_free(what);
        return FALSE;
    }
    undo_push(nc, RTM_DELADDR, payload, what);
    return TRUE;
}

gboolean shimmer_netcfg_addr_remove(ShimmerNetcfg *nc, int ifindex, GInetAddress *local,
                                    guint prefix_len, GInetAddress *peer, GError **error)
{
    g_autoptr(GBytes) payload = NULL;
    g_autofree char *what = NULL;
    gboolean ok;
    int err;

    if (!check_addr(ifindex, local, prefix_len, peer, error))
        return FALSE;
    payload = addr_payload(ifindex, local, prefix_len, peer);
    if (payload == NULL)
        return no_memory(error);
    what = describe_addr(ifindex, local, prefix_len, peer);
    ok = nc_change(nc, RTM_DELADDR, 0, payload, "remove", what, &err, error);
    if (ok || is_gone(err))
        undo_drop(nc, RTM_DELADDR, payload);
    return ok;
}

/* ---- routes ----------------------------------------------------------------- */

static gboolean check_route(GInetAddressMask *dest, int ifindex, GInetAddress *gateway,
                            GError **error)
{
    int family = family_of(g_inet_address_mask_get_address(dest));

    if (gateway != NULL && family_of(gateway) != family) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "route destination and gateway are of different families");
        return FALSE;
    }
    if (ifindex <= 0 && gateway == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "a route needs an interface or a gateway");
        return FALSE;
    }
    return TRUE;
}

gboolean shimmer_netcfg_route_add(ShimmerNetcfg *nc, GInetAddressMask *dest, int ifindex,
                                  GInetAddress *gateway, guint32 metric, GError **error)
{
    g_autoptr(GBytes) payload = NULL;
    char *what;

    if (!check_route(dest, ifindex, gateway, error))
        return FALSE;
    payload = route_payload(dest, ifindex, gateway, metric, nc->route_protocol);
    if (payload == NULL)
        return no_memory(error);
    what = describe_route(dest, ifindex, gateway, metric);
    /* NLM_F_EXCL: never replace, and so never record, someone else's route. */
    if (!nc_change(nc, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, payload, "add", what, NULL,
                   error)) {
        g_free(what);
        return FALSE;
    }
    undo_push(nc, RTM_DELROUTE, payload, what);
    return TRUE;
}

gboolean shimmer_netcfg_route_remove(ShimmerNetcfg *nc, GInetAddressMask *dest, int ifindex,
                                     GInetAddress *gateway, guint32 metric, GError **error)
{
    g_autoptr(GBytes) payload = NULL;
    g_autofree char *what = NULL;
    gboolean ok;
    int err;

    if (!check_route(dest, ifindex, gateway, error))
        return FALSE;
    payload = route_payload(dest, ifindex, gateway, metric, RTPROT_UNSPEC);
    if (payload == NULL)
        return no_memory(error);
    what = describe_route(dest, ifindex, gateway, metric);
    ok = nc_change(nc, RTM_DELROUTE, 0, payload, "remove", what, &err, error);
    if (ok || is_gone(err))
        undo_drop(nc, RTM_DELROUTE, payload);
    return ok;
}

/* ---- looking routes up ------------------------------------------------------ */

void shimmer_netcfg_route_clear(ShimmerNetcfgRoute *route)
{
    g_clear_object(&route->gateway);
    g_clear_object(&route->source);
    memset(route, 0, sizeof(*route));
}

typedef struct {
    int family;
    gboolean found;
    gboolean foreign_gateway; /* next hop of another family (RTA_VIA) */
    ShimmerNetcfgRoute *out;
} LookupCtx;

static GInetAddress *inet_from_attr(const struct nlattr *a, int family)
{
    gsize want = family == AF_INET6 ? 16 : 4;

    if (a == NULL || (gsize)nla_len(a) != want)
        return NULL;
    return g_inet_address_new_from_bytes(nla_data(a), family == AF_INET6 ? G_SOCKET_FAMILY_IPV6
                                                                         : G_SOCKET_FAMILY_IPV4);
}

static int on_route_reply(struct nl_msg *msg, void *arg)
{
    LookupCtx *ctx = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    struct nlattr *tb[RTA_MAX + 1];

    if (h->nlmsg_type != RTM_NEWROUTE || ctx->found)
        return NL_SKIP;
    if (nlmsg_parse(h, sizeof(struct rtmsg), tb, RTA_MAX, NULL) < 0)
        return NL_SKIP;
    const struct rtmsg *rtm = nlmsg_data(h);

    ctx->found = TRUE;
    ctx->out->local = rtm->rtm_type == RTN_LOCAL;
    if (tb[RTA_OIF] != NULL)
        ctx->out->ifindex = (int)nla_get_u32(tb[RTA_OIF]);
    ctx->out->gateway = inet_from_attr(tb[RTA_GATEWAY], ctx->family);
    ctx->out->source = inet_from_attr(tb[RTA_PREFSRC], ctx->family);
    ctx->foreign_gateway = tb[RTA_VIA] != NULL;
    return NL_OK;
}

gboolean shimmer_netcfg_route_lookup(ShimmerNetcfg *nc, GInetAddress *dest, ShimmerNetcfgRoute *out,
                                     GError **error)
{
    int family = family_of(dest);
    struct rtmsg rtm = {
        .rtm_family = (guint8)family,
        .rtm_dst_len = (guint8)max_prefix(family),
    };
    g_autoptr(GBytes) payload = NULL;
    g_autofree char *reason = NULL;
    g_autofree char *d = g_inet_address_to_string(dest);
    LookupCtx ctx = {.family = family, .out = out};
    int e;

    struct nl_msg *msg = nlmsg_alloc();
    if (msg != NULL && nlmsg_append(msg, &rtm, sizeof(rtm), NLMSG_ALIGNTO) == 0 &&
        put_inet(msg, RTA_DST, dest) == 0)
        payload = payload_of(msg);
    nlmsg_free(msg);
    if (payload == NULL)
        return no_memory(error);

    shimmer_netcfg_route_clear(out);
    e = nc_request(nc, RTM_GETROUTE, 0, payload, on_route_reply, &ctx, &reason);
    if (e == 0 && !ctx.found) {
        e = EIO;
        reason = g_strdup("the kernel answered without a route");
    } else if (e == 0 && ctx.foreign_gateway) {
        /* An IPv4 route through an IPv6 next hop: nothing we can pin with a
         * plain gateway. */
        e = EOPNOTSUPP;
        reason = g_strdup("the next hop is of another address family");
    }
    if (e != 0) {
        shimmer_netcfg_route_clear(out);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    "cannot look up the route to %s: %s", d, reason);
        return FALSE;
    }
    return TRUE;
}

/* ---- routes left behind ------------------------------------------------------ */

typedef struct {
    guint8 protocol;
    GPtrArray *found; /* GBytes: each route's message body, as dumped */
    GPtrArray *what;  /* char*: "10.213.1.1/32 via 10.213.1.254 dev eth0" */
} DumpCtx;

static char *describe_dumped(const struct rtmsg *rtm, struct nlattr **tb)
{
    int family = rtm->rtm_family;
    g_autoptr(GInetAddress) dst = inet_from_attr(tb[RTA_DST], family);
    g_autoptr(GInetAddress) gw = inet_from_attr(tb[RTA_GATEWAY], family);
    g_autofree char *d =
        dst ? g_inet_address_to_string(dst) : g_strdup(family == AF_INET6 ? "::" : "0.0.0.0");
    g_autofree char *g = gw ? g_inet_address_to_string(gw) : NULL;
    g_autofree char *dev = tb[RTA_OIF] ? ifname_of((int)nla_get_u32(tb[RTA_OIF])) : NULL;
    return g_strdup_printf("route %s/%u%s%s%s%s", d, rtm->rtm_dst_len, g ? " via " : "", g ? g : "",
                           dev ? " dev " : "", dev ? dev : "");
}

static int on_dump_route(struct nl_msg *msg, void *arg)
{
    DumpCtx *ctx = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    struct nlattr *tb[RTA_MAX + 1];

    if (h->nlmsg_type != RTM_NEWROUTE)
        return NL_SKIP;
    const struct rtmsg *rtm = nlmsg_data(h);
    if (rtm->rtm_protocol != ctx->protocol)
        return NL_SKIP;
    if (nlmsg_parse(h, sizeof(struct rtmsg), tb, RTA_MAX, NULL) < 0)
        return NL_SKIP;
    g_ptr_array_add(ctx->found, g_bytes_new(nlmsg_data(h), (gsize)nlmsg_datalen(h)));
    g_ptr_array_add(ctx->what, describe_dumped(rtm, tb));
    return NL_OK;
}

gboolean shimmer_netcfg_remove_stale_routes(guint8 protocol, GPtrArray *removed, GError **error)
{
    g_return_val_if_fail(protocol > RTPROT_STATIC, FALSE);
    struct rtmsg rtm = {.rtm_family = AF_UNSPEC};
    g_autoptr(GBytes) query = g_bytes_new(&rtm, sizeof(rtm));
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_autoptr(GPtrArray) what = g_ptr_array_new_with_free_func(g_free);
    DumpCtx ctx = {.protocol = protocol, .found = found, .what = what};
    g_autofree char *reason = NULL;

    /* The dump on a socket of its own, so that nothing it leaves unread
     * meets the removals. */
    {
        g_autoptr(ShimmerNetcfg) dump = shimmer_netcfg_new(error);
        if (dump == NULL)
            return FALSE;
        int e = nc_request(dump, RTM_GETROUTE, NLM_F_DUMP, query, on_dump_route, &ctx, &reason);
        if (e != 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot list the routes: %s",
                        reason);
            return FALSE;
        }
    }
    if (found->len == 0)
        return TRUE;
    g_autoptr(ShimmerNetcfg) nc = shimmer_netcfg_new(error);
    if (nc == NULL)
        return FALSE;
    GError *first = NULL;
    for (guint i = 0; i < found->len; i++) {
        int err = 0;
        g_autoptr(GError) local = NULL;
        /* Sent back as it came, as `ip route flush` does. */
        if (nc_change(nc, RTM_DELROUTE, 0, found->pdata[i], "remove", what->pdata[i], &err,
                      &local)) {
            if (removed != NULL)
                g_ptr_array_add(removed, g_strdup(what->pdata[i]));
        } else if (!is_gone(err) && first == NULL) {
            first = g_steal_pointer(&local);
        }
    }
    if (first != NULL) {
        g_propagate_error(error, first);
        return FALSE;
    }
    return TRUE;
}

gboolean shimmer_netcfg_pin_host_route(ShimmerNetcfg *nc, GInetAddress *host, GError **error)
{
    g_auto(ShimmerNetcfgRoute) path = {0};
    g_autoptr(GInetAddressMask) dest = NULL;
    g_autoptr(GError) local = NULL;

    if (!shimmer_netcfg_route_lookup(nc, host, &path, error))
        return FALSE;
    if (path.local)
        return TRUE;

    dest = g_inet_address_mask_new(host, max_prefix(family_of(host)), error);
    if (dest == NULL)
        return FALSE;
    if (shimmer_netcfg_route_add(nc, dest, path.ifindex, path.gateway, 0, &local))
        return TRUE;
    /* The lookup found that host route, or it found a broader one and an
     * equivalent host route appeared since: either way HOST is pinned, and
     * by someone else, so it stays out of the undo list. */
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_EXISTS))
        return TRUE;
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
}

gboolean shimmer_netcfg_redirect_def1(ShimmerNetcfg *nc, GSocketFamily family, int ifindex,
                                      GInetAddress *gateway, guint32 metric, GInetAddress *server,
                                      GError **error)
{
    static const char *const v4[] = {"0.0.0.0/1", "128.0.0.0/1"};
    static const char *const v6[] = {"::/1", "8000::/1"};
    const char *const *halves;

    if (family == G_SOCKET_FAMILY_IPV4)
        halves = v4;
    else if (family == G_SOCKET_FAMILY_IPV6)
        halves = v6;
    else {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "redirect-gateway needs IPv4 or IPv6");
        return FALSE;
    }
    /* Pinned first: once the halves are in, the lookup would find the tunnel. */
    if (server != NULL && !shimmer_netcfg_pin_host_route(nc, server, error))
        return FALSE;
    for (guint i = 0; i < 2; i++) {
        g_autoptr(GInetAddressMask) half = g_inet_address_mask_new_from_string(halves[i], NULL);

        g_assert(half != NULL);
        if (!shimmer_netcfg_route_add(nc, half, ifindex, gateway, metric, error))
            return FALSE;
    }
    return TRUE;
}
