/* SPDX-License-Identifier: MIT */
/*
 * The proxy negotiation over a real socket. See proxyconn.h.
 */
#include "proxyconn.h"

#include <errno.h>
#include <glib-unix.h>
#include <gnutls/crypto.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy.h"
#include "secure.h"

struct ShimmerProxyConn {
    ShimmerProxyConnOptions o;
    char *what; /* "HTTP proxy host:port" */
    char *proxy_host;
    guint16 proxy_port;
    gboolean proxy_literal; /* the host is an address: no lookup */
    ShimmerProxyClient *client;

    GCancellable *cancel;
    GList *addresses; /* GInetAddress*, the proxy's, to try in turn */
    GList *next;      /* the one to try next */
    GInetSocketAddress *current;
    int fd;
    gboolean connecting;
    GSource *in_source;
    GSource *out_source;
    GSource *timeout;
    GSource *idle; /* reports a result from the main loop */
    guint reconnects;
    ShimmerProxyLink *result;
    GError *error;
};

static void step(ShimmerProxyConn *pc);
static void try_next(ShimmerProxyConn *pc);

static void plog(ShimmerProxyConn *pc, ShimmerLogLevel level, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static void plog(ShimmerProxyConn *pc, ShimmerLogLevel level, const char *fmt, ...)
{
    if (pc->o.log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    pc->o.log(pc->o.user, level, msg);
}

char *shimmer_proxy_describe(const ShimmerProxy *proxy)
{
    gboolean v6 = strchr(proxy->host, ':') != NULL;
    return g_strdup_printf(v6 ? "%s proxy [%s]:%u" : "%s proxy %s:%u",
                           proxy->type == SHIMMER_PROXY_HTTP ? "HTTP" : "SOCKS5", proxy->host,
                           proxy->port);
}

static gboolean wants_prompt(const ShimmerProxy *p)
{
    return p != NULL && p->auth_prompt && p->password == NULL;
}

gboolean shimmer_proxy_config_needs_credentials(const ShimmerConfig *cfg)
{
    for (guint i = 0; cfg->connections != NULL && i < cfg->connections->len; i++) {
        const ShimmerConnection *conn = g_ptr_array_index(cfg->connections, i);
        if (wants_prompt(conn->proxy))
            return TRUE;
    }
    return FALSE;
}

void shimmer_proxy_config_set_credentials(ShimmerConfig *cfg, const char *username,
                                          const char *password)
{
    for (guint i = 0; cfg->connections != NULL && i < cfg->connections->len; i++) {
        ShimmerConnection *conn = g_ptr_array_index(cfg->connections, i);
        if (!wants_prompt(conn->proxy))
            continue;
        g_free(conn->proxy->username);
        conn->proxy->username = g_strdup(username);
        conn->proxy->password = g_strdup(password);
    }
}

void shimmer_proxy_link_free(ShimmerProxyLink *link)
{
    if (link == NULL)
        return;
    if (link->fd >= 0)
        close(link->fd);
    g_clear_object(&link->proxy);
    g_clear_object(&link->relay);
    g_free(link);
}

static void drop_source(GSource **s)
{
    if (*s != NULL) {
        g_source_destroy(*s);
        g_clear_pointer(s, g_source_unref);
    }
}

static void close_socket(ShimmerProxyConn *pc)
{
    drop_source(&pc->in_source);
    drop_source(&pc->out_source);
    if (pc->fd >= 0) {
        close(pc->fd);
        pc->fd = -1;
    }
    pc->connecting = FALSE;
}

static gboolean report(gpointer user)
{
    ShimmerProxyConn *pc = user;
    g_clear_pointer(&pc->idle, g_source_unref);
    ShimmerProxyLink *link = g_steal_pointer(&pc->result);
    g_autoptr(GError) error = g_steal_pointer(&pc->error);
    /* The callback may free PC. */
    pc->o.done(pc->o.user, link, error);
    return G_SOURCE_REMOVE;
}

/* Ends the negotiation: LINK on success, else ERROR (taken). */
static void finish(ShimmerProxyConn *pc, ShimmerProxyLink *link, GError *error)
{
    drop_source(&pc->timeout);
    drop_source(&pc->in_source);
    drop_source(&pc->out_source);
    if (pc->cancel != NULL)
        g_cancellable_cancel(pc->cancel);
    if (link == NULL && pc->fd >= 0)
        close_socket(pc);
    pc->fd = -1;
    pc->result = link;
    pc->error = error;
    pc->idle = g_idle_source_new();
    g_source_set_callback(pc->idle, report, pc, NULL);
    g_source_attach(pc->idle, NULL);
}

static void fail(ShimmerProxyConn *pc, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(ShimmerProxyConn *pc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    finish(pc, NULL, g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s", pc->what, msg));
}

static gboolean on_timeout(gpointer user)
{
    ShimmerProxyConn *pc = user;
    g_clear_pointer(&pc->timeout, g_source_unref);
    fail(pc, "no connection through it within %u s (connect-timeout)", pc->o.timeout_s);
    return G_SOURCE_REMOVE;
}

static GSource *watch(ShimmerProxyConn *pc, GIOCondition cond,
                      gboolean (*func)(gint, GIOCondition, gpointer))
{
    GSource *s = g_unix_fd_source_new(pc->fd, cond);
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))func, pc, NULL);
    g_source_attach(s, NULL);
    return s;
}

static void done(ShimmerProxyConn *pc)
{
    ShimmerProxyLink *link = g_new0(ShimmerProxyLink, 1);
    link->fd = pc->fd;
    link->proxy = g_object_ref(pc->current);
    link->auth = shimmer_proxy_client_get_auth_name(pc->client);
    if (pc->o.udp) {
        ShimmerSocksAddr r;
        shimmer_proxy_client_get_relay(pc->client, &r);
        g_autoptr(GInetAddress) a = NULL;
        if (r.family == 0)
            a = g_object_ref(g_inet_socket_address_get_address(pc->current));
        else
            a = g_inet_address_new_from_bytes(r.addr, r.family == 4 ? G_SOCKET_FAMILY_IPV4
                                                                    : G_SOCKET_FAMILY_IPV6);
        link->relay = G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(a, r.port));
    }
    /* The socket is the caller's now. */
    drop_source(&pc->in_source);
    drop_source(&pc->out_source);
    pc->fd = -1;
    finish(pc, link, NULL);
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerProxyConn *pc = user;
    guint8 buf[4096];
    /* Peeked, then only the negotiation's bytes taken: what follows the
     * proxy's answer stays in the socket for the tunnel to read. */
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
    if (n <= 0) {
        g_clear_pointer(&pc->in_source, g_source_unref);
        fail(pc, "%s during the negotiation",
             n == 0 ? "the proxy closed the connection" : g_strerror(errno));
        return G_SOURCE_REMOVE;
    }
    gsize used = 0;
    g_autoptr(GError) error = NULL;
    ShimmerProxyStatus st = shimmer_proxy_client_feed(pc->client, buf, (gsize)n, &used, &error);
    if (st == SHIMMER_PROXY_STATUS_WANT_MORE || st == SHIMMER_PROXY_STATUS_DONE) {
        /* The bytes are there (peeked): this cannot block or fall short. */
        if (used > 0 && recv(fd, buf, used, 0) != (ssize_t)used) {
            g_clear_pointer(&pc->in_source, g_source_unref);
            fail(pc, "reading its answer: %s", g_strerror(errno));
            return G_SOURCE_REMOVE;
        }
    }
    switch (st) {
    case SHIMMER_PROXY_STATUS_WANT_MORE:
        step(pc);
        return G_SOURCE_CONTINUE;
    case SHIMMER_PROXY_STATUS_DONE:
        g_clear_pointer(&pc->in_source, g_source_unref);
        done(pc);
        return G_SOURCE_REMOVE;
    case SHIMMER_PROXY_STATUS_RECONNECT:
        /* The proxy told how it wants the credentials: a new connection
         * (an HTTP/1.0 proxy closes this one after its 407). */
        plog(pc, SHIMMER_LOG_INFO, "%s asks for %s authentication: connecting again", pc->what,
             shimmer_proxy_client_get_auth_name(pc->client));
        g_clear_pointer(&pc->in_source, g_source_unref);
        close_socket(pc);
        pc->next = g_list_find(pc->addresses, g_inet_socket_address_get_address(pc->current));
        try_next(pc);
        return G_SOURCE_REMOVE;
    case SHIMMER_PROXY_STATUS_ERROR:
    default:
        g_clear_pointer(&pc->in_source, g_source_unref);
        fail(pc, "%s", error->message);
        return G_SOURCE_REMOVE;
    }
}

static gboolean on_writable(gint fd, GIOCondition cond, gpointer user)
{
    ShimmerProxyConn *pc = user;
    g_clear_pointer(&pc->out_source, g_source_unref);
    if (pc->connecting) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
        pc->connecting = FALSE;
        if (err != 0) {
            g_autofree char *a = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(pc->current));
            plog(pc, SHIMMER_LOG_WARNING, "%s: cannot connect to %s: %s", pc->what, a,
                 g_strerror(err));
            close_socket(pc);
            try_next(pc);
            return G_SOURCE_REMOVE;
        }
        guint8 random[SHIMMER_PROXY_RANDOM_LEN];
        if (gnutls_rnd(GNUTLS_RND_NONCE, random, sizeof(random)) != 0) {
            fail(pc, "no random bytes for the negotiation");
            return G_SOURCE_REMOVE;
        }
        shimmer_proxy_client_begin(pc->client, random);
        pc->in_source = watch(pc, G_IO_IN, on_readable);
    }
    step(pc);
    return G_SOURCE_REMOVE;
}

/* Sends what is pending; waits for the socket when it is full. */
static void step(ShimmerProxyConn *pc)
{
    gsize len;
    const guint8 *d;
    while ((d = shimmer_proxy_client_pending(pc->client, &len)), len > 0) {
        ssize_t n = send(pc->fd, d, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (pc->out_source == NULL)
                pc->out_source = watch(pc, G_IO_OUT, on_writable);
            return;
        }
        if (n < 0) {
            fail(pc, "%s", g_strerror(errno));
            return;
        }
        shimmer_proxy_client_sent(pc->client, (gsize)n);
    }
}

/* Connects to the next of the proxy's addresses. */
static void try_next(ShimmerProxyConn *pc)
{
    if (pc->reconnects++ > 8 + 2 * g_list_length(pc->addresses)) {
        fail(pc, "too many connections to the proxy");
        return;
    }
    if (pc->next == NULL) {
        fail(pc, "cannot connect to any of its addresses");
        return;
    }
    GInetAddress *addr = pc->next->data;
    pc->next = pc->next->next;
    g_clear_object(&pc->current);
    pc->current = G_INET_SOCKET_ADDRESS(g_inet_socket_address_new(addr, pc->proxy_port));
    struct sockaddr_storage ss;
    g_autoptr(GError) error = NULL;
    if (!g_socket_address_to_native(G_SOCKET_ADDRESS(pc->current), &ss, sizeof(ss), &error)) {
        fail(pc, "%s", error->message);
        return;
    }
    int family = ss.ss_family;
    pc->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (pc->fd < 0) {
        fail(pc, "%s", g_strerror(errno));
        return;
    }
    if (pc->o.mark >= 0)
        setsockopt(pc->fd, SOL_SOCKET, SO_MARK, &pc->o.mark, sizeof(int));
    socklen_t sl = g_socket_address_get_native_size(G_SOCKET_ADDRESS(pc->current));
    g_autofree char *a = g_socket_connectable_to_string(G_SOCKET_CONNECTABLE(pc->current));
    if (pc->proxy_literal)
        plog(pc, SHIMMER_LOG_INFO, "connecting to the %s", pc->what);
    else
        plog(pc, SHIMMER_LOG_INFO, "connecting to the %s at %s", pc->what, a);
    if (connect(pc->fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
        plog(pc, SHIMMER_LOG_WARNING, "%s: cannot connect to %s: %s", pc->what, a,
             g_strerror(errno));
        close_socket(pc);
        try_next(pc);
        return;
    }
    pc->connecting = TRUE;
    pc->out_source = watch(pc, G_IO_OUT, on_writable);
}

static void on_resolved(GObject *src, GAsyncResult *res, gpointer user)
{
    g_autoptr(GError) error = NULL;
    GList *addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(src), res, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* PC may be gone */
    ShimmerProxyConn *pc = user;
    if (addrs == NULL) {
        fail(pc, "cannot look it up: %s", error->message);
        return;
    }
    pc->addresses = addrs;
    pc->next = addrs;
    try_next(pc);
}

ShimmerProxyConn *shimmer_proxy_conn_start(const ShimmerProxyConnOptions *o, GError **error)
{
    ShimmerProxyCommand cmd = o->udp ? SHIMMER_PROXY_ASSOCIATE_UDP : SHIMMER_PROXY_CONNECT_TCP;
    ShimmerProxyClient *client = shimmer_proxy_client_new(o->proxy, o->host, o->port, cmd, error);
    if (client == NULL)
        return NULL;
    ShimmerProxyConn *pc = g_new0(ShimmerProxyConn, 1);
    pc->o = *o;
    pc->o.proxy = NULL;
    pc->o.host = NULL;
    pc->client = client;
    pc->what = shimmer_proxy_describe(o->proxy);
    pc->proxy_host = g_strdup(o->proxy->host);
    pc->proxy_port = o->proxy->port;
    pc->fd = -1;
    pc->cancel = g_cancellable_new();
    pc->timeout = g_timeout_source_new(MAX(o->timeout_s, 1) * 1000);
    g_source_set_callback(pc->timeout, on_timeout, pc, NULL);
    g_source_attach(pc->timeout, NULL);
    GInetAddress *literal = g_inet_address_new_from_string(pc->proxy_host);
    if (literal != NULL) {
        pc->proxy_literal = TRUE;
        pc->addresses = g_list_prepend(NULL, literal);
        pc->next = pc->addresses;
        try_next(pc);
        return pc;
    }
    plog(pc, SHIMMER_LOG_INFO, "resolving %s", pc->what);
    g_autoptr(GResolver) resolver = g_resolver_get_default();
    g_resolver_lookup_by_name_async(resolver, pc->proxy_host, pc->cancel, on_resolved, pc);
    return pc;
}

void shimmer_proxy_conn_free(ShimmerProxyConn *pc)
{
    if (pc == NULL)
        return;
    if (pc->cancel != NULL) {
        g_cancellable_cancel(pc->cancel);
        g_object_unref(pc->cancel);
    }
    drop_source(&pc->timeout);
    drop_source(&pc->idle);
    close_socket(pc);
    g_resolver_free_addresses(pc->addresses);
    g_clear_object(&pc->current);
    shimmer_proxy_link_free(pc->result);
    g_clear_error(&pc->error);
    shimmer_proxy_client_free(pc->client);
    g_free(pc->what);
    g_free(pc->proxy_host);
    g_free(pc);
}
