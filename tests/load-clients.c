/* SPDX-License-Identifier: MIT */
/*
 * shimmer-load: simulates many clients against one server over UDP, in one
 * process, on Shimmer's client engine: for benchmarks of handshakes per
 * second and memory per client (the server's), and as a load in tests.
 *
 *   shimmer-load --config client.ovpn --clients 200 [--rate 50]
 *                [--duration 30] [--ping 1] [--json]
 *
 * Every client is its own engine with its own UDP socket (its own port),
 * started --rate per second (0: all at once). Once connected, each sends
 * an ICMP echo request through the tunnel to the server's tunnel address
 * every --ping seconds and counts the replies. Prints progress every
 * second and a summary at the end (one JSON object with --json). Exit code:
 * 0 when every client connected (and, with --ping, got a reply), 1
 * otherwise, 2 for usage errors. Needs no tun and no privileges.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"

#define US ((gint64)G_USEC_PER_SEC)

typedef struct Load Load;

typedef struct {
    Load *load;
    guint index;
    ShimmerEngine *e;
    int sock;
    guint watch;
    gint64 started;
    gint64 connected_at;
    gboolean failed;
    guint32 local_ip; /* pushed, host order */
    guint16 seq;
    guint64 sent, replies;
    gint64 next_ping;
} Client;

struct Load {
    ShimmerConfig *cfg;
    GMainLoop *loop;
    GPtrArray *clients;
    guint n, started, connected, failed;
    double rate;
    gint64 t0, duration, ping_interval;
    guint32 target; /* the server's tunnel address, host order */
    struct sockaddr_storage remote;
    socklen_t remote_len;
    gboolean json, verbose;
    gint64 last_connect;
    GArray *connect_times; /* double, seconds */
};

static gint64 realtime(gpointer user)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static void engine_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    Client *c = user;
    if (c->load->verbose || level == SHIMMER_LOG_ERROR)
        fprintf(stderr, "client %u: %s\n", c->index, message);
}

static guint16 ip_checksum(const guint8 *p, gsize len)
{
    guint32 sum = 0;
    for (gsize i = 0; i + 1 < len; i += 2)
        sum += (guint32)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (guint32)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)~sum;
}

static void send_ping(Client *c, gint64 now)
{
    guint8 ip[64] = {0};
    ip[0] = 0x45;
    ip[3] = sizeof(ip);
    ip[8] = 64;
    ip[9] = 1; /* ICMP */
    for (int i = 0; i < 4; i++) {
        ip[12 + i] = (guint8)(c->local_ip >> (24 - 8 * i));
        ip[16 + i] = (guint8)(c->load->target >> (24 - 8 * i));
    }
    guint16 sum = ip_checksum(ip, 20);
    ip[10] = (guint8)(sum >> 8);
    ip[11] = (guint8)sum;
    guint8 *icmp = ip + 20;
    icmp[0] = 8; /* echo request */
    icmp[4] = (guint8)(c->index >> 8);
    icmp[5] = (guint8)c->index;
    c->seq++;
    icmp[6] = (guint8)(c->seq >> 8);
    icmp[7] = (guint8)c->seq;
    sum = ip_checksum(icmp, sizeof(ip) - 20);
    icmp[2] = (guint8)(sum >> 8);
    icmp[3] = (guint8)sum;
    guint8 out[SHIMMER_ENGINE_MAX_PACKET];
    gsize len = 0;
    if (shimmer_engine_encrypt(c->e, ip, sizeof(ip), out, sizeof(out), now, &len) ==
            SHIMMER_ENCRYPT_OK &&
        send(c->sock, out, len, MSG_DONTWAIT) >= 0)
        c->sent++;
}

static void client_pump(Client *c)
{
    Load *l = c->load;
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    gssize len;
    gint64 now = g_get_monotonic_time();
    while ((len = shimmer_engine_write_pkt(c->e, buf, sizeof(buf), now)) > 0)
        send(c->sock, buf, (gsize)len, MSG_DONTWAIT);
    ShimmerEvent ev;
    while (shimmer_engine_pop_event(c->e, &ev)) {
        if (ev.type == SHIMMER_EVENT_CONNECT) {
            if (connect(c->sock, (struct sockaddr *)&l->remote, l->remote_len) == 0)
                shimmer_engine_transport_up(c->e, FALSE, now);
            else
                shimmer_engine_transport_failed(c->e, g_strerror(errno), now);
        } else if (ev.type == SHIMMER_EVENT_STATE && ev.state == SHIMMER_STATE_CONNECTED &&
                   c->connected_at == 0) {
            c->connected_at = now;
            l->connected++;
            l->last_connect = now;
            double t = (double)(now - c->started) / US;
            g_array_append_val(l->connect_times, t);
            const ShimmerConfig *p = shimmer_engine_get_pushed(c->e);
            struct in_addr a;
            if (p != NULL && p->ifconfig_local != NULL &&
                inet_pton(AF_INET, p->ifconfig_local, &a) == 1)
                c->local_ip = g_ntohl(a.s_addr);
            if (l->target == 0 && p != NULL && p->route_gateway != NULL &&
                inet_pton(AF_INET, p->route_gateway, &a) == 1)
                l->target = g_ntohl(a.s_addr);
            c->next_ping = now;
        } else if (ev.type == SHIMMER_EVENT_EXIT && !c->failed) {
            c->failed = TRUE;
            l->failed++;
            if (c->connected_at) {
                c->connected_at = 0;
                l->connected--;
            }
            fprintf(stderr, "client %u: %s\n", c->index, ev.exit.reason);
        }
        shimmer_event_clear(&ev);
    }
    while ((len = shimmer_engine_write_pkt(c->e, buf, sizeof(buf), now)) > 0)
        send(c->sock, buf, (gsize)len, MSG_DONTWAIT);
}

static gboolean on_readable(gint fd, GIOCondition cond, gpointer user)
{
    Client *c = user;
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET + 64], plain[SHIMMER_ENGINE_MAX_PACKET + 64];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        gsize plain_len = 0;
        if (shimmer_engine_recv(c->e, buf, (gsize)n, g_get_monotonic_time(), plain, sizeof(plain),
                                &plain_len, NULL) == SHIMMER_RECV_TUN &&
            plain_len >= 28 && plain[9] == 1 && plain[20] == 0)
            c->replies++;
    }
    client_pump(c);
    return G_SOURCE_CONTINUE;
}

static void client_start(Load *l, guint index)
{
    Client *c = g_new0(Client, 1);
    c->load = l;
    c->index = index;
    c->sock = -1;
    g_ptr_array_add(l->clients, c);
    ShimmerEngineHooks hooks = {.log = engine_log, .realtime = realtime, .user = c};
    g_autoptr(GError) error = NULL;
    c->e = shimmer_engine_new(l->cfg, &hooks, &error);
    c->sock = socket(l->remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->e == NULL || c->sock < 0) {
        fprintf(stderr, "client %u: %s\n", index, error ? error->message : g_strerror(errno));
        c->failed = TRUE;
        l->failed++;
        return;
    }
    c->watch = g_unix_fd_add(c->sock, G_IO_IN, on_readable, c);
    c->started = g_get_monotonic_time();
    shimmer_engine_start(c->e, c->started);
    client_pump(c);
}

static void summary(Load *l, gboolean final)
{
    double elapsed = (double)(g_get_monotonic_time() - l->t0) / US;
    guint64 sent = 0, replies = 0;
    guint answered = 0;
    for (guint i = 0; i < l->clients->len; i++) {
        Client *c = g_ptr_array_index(l->clients, i);
        sent += c->sent;
        replies += c->replies;
        answered += c->replies > 0;
    }
    if (!final) {
        fprintf(stderr,
                "%6.1f s: %u started, %u connected, %u failed, %" G_GUINT64_FORMAT
                "/%" G_GUINT64_FORMAT " echo replies\n",
                elapsed, l->started, l->connected, l->failed, replies, sent);
        return;
    }
    double median = 0, worst = 0;
    if (l->connect_times->len > 0) {
        GArray *t = l->connect_times;
        /* Insertion sort: a few thousand values at most. */
        for (guint i = 1; i < t->len; i++) {
            double v = g_array_index(t, double, i);
            guint j = i;
            while (j > 0 && g_array_index(t, double, j - 1) > v) {
                g_array_index(t, double, j) = g_array_index(t, double, j - 1);
                j--;
            }
            g_array_index(t, double, j) = v;
        }
        median = g_array_index(t, double, t->len / 2);
        worst = g_array_index(t, double, t->len - 1);
    }
    double span = l->connected > 0 ? (double)(l->last_connect - l->t0) / US : 0;
    double rate = span > 0 ? l->connected / span : 0;
    if (l->json)
        printf("{\"clients\": %u, \"connected\": %u, \"failed\": %u, \"seconds\": %.3f, "
               "\"connect_median_s\": %.4f, \"connect_max_s\": %.4f, "
               "\"handshakes_per_s\": %.1f, \"echo_sent\": %" G_GUINT64_FORMAT
               ", \"echo_replies\": %" G_GUINT64_FORMAT ", \"clients_with_replies\": %u}\n",
               l->n, l->connected, l->failed, elapsed, median, worst, rate, sent, replies,
               answered);
    else
        printf("%u clients: %u connected, %u failed; connect median %.3f s, max %.3f s; %.1f "
               "handshakes/s; echo %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
               " (%u clients answered)\n",
               l->n, l->connected, l->failed, median, worst, rate, replies, sent, answered);
}

static gboolean on_tick(gpointer user)
{
    Load *l = user;
    gint64 now = g_get_monotonic_time();
    guint due =
        l->rate > 0 ? (guint)MIN((double)l->n, (double)(now - l->t0) / US * l->rate + 1) : l->n;
    while (l->started < due)
        client_start(l, l->started++);
    for (guint i = 0; i < l->clients->len; i++) {
        Client *c = g_ptr_array_index(l->clients, i);
        if (c->e == NULL || c->failed)
            continue;
        if (shimmer_engine_next_deadline(c->e) <= now) {
            shimmer_engine_handle_timeout(c->e, now);
            client_pump(c);
        }
        if (l->ping_interval > 0 && c->connected_at && c->local_ip && l->target &&
            now >= c->next_ping) {
            send_ping(c, now);
            c->next_ping = now + l->ping_interval;
        }
    }
    if (now - l->t0 >= l->duration)
        g_main_loop_quit(l->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean on_progress(gpointer user)
{
    summary(user, FALSE);
    return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer user)
{
    Load *l = user;
    g_main_loop_quit(l->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean resolve_remote(Load *l, GError **error)
{
    if (l->cfg->connections->len == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "the profile names no server");
        return FALSE;
    }
    ShimmerConnection *conn = g_ptr_array_index(l->cfg->connections, 0);
    if (conn->transport != SHIMMER_TRANSPORT_UDP) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "UDP profiles only");
        return FALSE;
    }
    g_autoptr(GInetAddress) a = g_inet_address_new_from_string(conn->host);
    if (a == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "the remote must be an address, not '%s'", conn->host);
        return FALSE;
    }
    g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(a, conn->port);
    if (!g_socket_address_to_native(sa, &l->remote, sizeof(l->remote), error))
        return FALSE;
    l->remote_len = (socklen_t)g_socket_address_get_native_size(sa);
    return TRUE;
}

int main(int argc, char **argv)
{
    g_autofree char *config = NULL;
    gint clients = 10;
    gdouble rate = 0, duration = 30, ping = 1;
    gboolean json = FALSE, verbose = FALSE;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
         "Client profile (UDP, remote by address)", "FILE"},
        {"clients", 'n', 0, G_OPTION_ARG_INT, &clients, "Clients to simulate (default 10)", "N"},
        {"rate", 'r', 0, G_OPTION_ARG_DOUBLE, &rate, "Clients started per second (0: all at once)",
         "R"},
        {"duration", 'd', 0, G_OPTION_ARG_DOUBLE, &duration, "Seconds to run (default 30)", "S"},
        {"ping", 'p', 0, G_OPTION_ARG_DOUBLE, &ping,
         "Seconds between echo requests per client (0: none)", "S"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the summary as JSON", NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log every engine's lines", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, "Simulates many VPN clients against one server over UDP.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || config == NULL || clients <= 0) {
        fprintf(stderr, "shimmer-load: %s\n",
                error ? error->message : "give --config and --clients");
        return 2;
    }
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(config, &bytes, &error, NULL)) {
        fprintf(stderr, "shimmer-load: %s\n", error->message);
        return 2;
    }
    gsize len = 0;
    const char *text = g_bytes_get_data(bytes, &len);
    Load l = {0};
    l.cfg =
        shimmer_config_parse(config, NULL, text ? text : "", len, shimmer_config_file_loader, NULL);
    if (shimmer_config_has_errors(l.cfg)) {
        g_autoptr(GString) d = g_string_new(NULL);
        shimmer_config_format_diagnostics(l.cfg, d);
        fprintf(stderr, "%s", d->str);
        return 2;
    }
    if (!resolve_remote(&l, &error)) {
        fprintf(stderr, "shimmer-load: %s\n", error->message);
        return 2;
    }
    /* One socket per client. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)clients + 64) {
        rl.rlim_cur = MIN(rl.rlim_max, (rlim_t)clients + 64);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    l.n = (guint)clients;
    l.rate = rate;
    l.duration = (gint64)(duration * US);
    l.ping_interval = (gint64)(ping * US);
    l.json = json;
    l.verbose = verbose;
    l.clients = g_ptr_array_new();
    l.connect_times = g_array_new(FALSE, FALSE, sizeof(double));
    l.loop = g_main_loop_new(NULL, FALSE);
    l.t0 = g_get_monotonic_time();
    guint tick = g_timeout_add(10, on_tick, &l);
    guint progress = g_timeout_add_seconds(1, on_progress, &l);
    guint s1 = g_unix_signal_add(SIGINT, on_signal, &l);
    guint s2 = g_unix_signal_add(SIGTERM, on_signal, &l);
    on_tick(&l);
    g_main_loop_run(l.loop);
    g_source_remove(tick);
    g_source_remove(progress);
    g_source_remove(s1);
    g_source_remove(s2);
    summary(&l, TRUE);
    gboolean ok = l.connected == l.n;
    for (guint i = 0; i < l.clients->len; i++) {
        Client *c = g_ptr_array_index(l.clients, i);
        if (l.ping_interval > 0 && c->replies == 0)
            ok = FALSE;
        if (c->e != NULL)
            shimmer_engine_stop(c->e, g_get_monotonic_time());
        if (c->e != NULL)
            client_pump(c);
        if (c->watch)
            g_source_remove(c->watch);
        if (c->sock >= 0)
            close(c->sock);
        shimmer_engine_free(c->e);
        g_free(c);
    }
    g_ptr_array_unref(l.clients);
    g_array_unref(l.connect_times);
    g_main_loop_unref(l.loop);
    shimmer_config_free(l.cfg);
    return ok ? 0 : 1;
}
