/* SPDX-License-Identifier: MIT */
/*
 * shimmer-load: simulates many clients against one server over UDP, in one
 * process, on Shimmer's client engine: for benchmarks of handshakes per
 * second and memory per client (the server's), and as a load in tests.
 *
 *   shimmer-load --config client.ovpn --clients 200 [--rate 50]
 *                [--duration 30] [--ping 1] [--threads 2] [--json]
 *
 * Every client is its own engine with its own UDP socket (its own port),
 * started --rate per second (0: all at once). Once connected, each sends
 * an ICMP echo request through the tunnel to the server's tunnel address
 * every --ping seconds and counts the replies. Prints progress every
 * second and a summary at the end (one JSON object with --json). Exit code:
 * 0 when every client connected (and, with --ping, got a reply), 1
 * otherwise, 2 for usage errors. Needs no tun and no privileges.
 *
 * The tool is meant to cost the machine as little as it can, since it
 * shares it with the server it measures: the clients share one set of TLS
 * credentials (read once, shimmer_engine_new_like()), each --threads worker
 * owns every T-th client and waits on its own epoll set (no per-wakeup scan
 * of all sockets), and an engine's next deadline is kept beside it so that
 * the 10 ms tick only compares numbers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"

#define US      ((gint64)G_USEC_PER_SEC)
#define TICK_US (10 * 1000)

typedef struct Load Load;
typedef struct Worker Worker;

typedef struct {
    Worker *w;
    guint index;
    ShimmerEngine *e;
    int sock;
    gint64 started;
    gint64 connected_at;
    gint64 deadline; /* the engine's next deadline, after the last call */
    gboolean failed;
    guint32 local_ip; /* pushed, host order */
    guint16 seq;
    guint64 sent, replies;
    gint64 next_ping;
} Client;

struct Worker {
    Load *load;
    guint id;
    int ep;
    GPtrArray *clients;
    guint next_index; /* the next client index this worker starts */
    GThread *thread;
};

struct Load {
    ShimmerConfig *cfg;
    ShimmerEngine *model; /* never started: its credentials are shared */
    guint n, threads;
    double rate;
    gint64 t0, duration, ping_interval;
    struct sockaddr_storage remote;
    socklen_t remote_len;
    gboolean json, verbose;
    Worker *workers;
    /* Written by the workers (atomics or under lock). */
    gint started, connected, failed;
    gint stop;
    guint32 target; /* the server's tunnel address, host order (atomic) */
    GMutex lock;    /* connect_times, last_connect */
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
    if (c->w->load->verbose || level == SHIMMER_LOG_ERROR)
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

static void send_ping(Client *c, guint32 target, gint64 now)
{
    guint8 ip[64] = {0};
    ip[0] = 0x45;
    ip[3] = sizeof(ip);
    ip[8] = 64;
    ip[9] = 1; /* ICMP */
    for (int i = 0; i < 4; i++) {
        ip[12 + i] = (guint8)(c->local_ip >> (24 - 8 * i));
        ip[16 + i] = (guint8)(target >> (24 - 8 * i));
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

static void flush_packets(Client *c, gint64 now)
{
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    gssize len;
    while ((len = shimmer_engine_write_pkt(c->e, buf, sizeof(buf), now)) > 0)
        send(c->sock, buf, (gsize)len, MSG_DONTWAIT);
}

static void on_connected(Client *c, gint64 now)
{
    Load *l = c->w->load;
    c->connected_at = now;
    double t = (double)(now - c->started) / US;
    g_mutex_lock(&l->lock);
    g_array_append_val(l->connect_times, t);
    l->last_connect = MAX(l->last_connect, now);
    g_mutex_unlock(&l->lock);
    g_atomic_int_inc(&l->connected);
    const ShimmerConfig *p = shimmer_engine_get_pushed(c->e);
    struct in_addr a;
    if (p != NULL && p->ifconfig_local != NULL && inet_pton(AF_INET, p->ifconfig_local, &a) == 1)
        c->local_ip = g_ntohl(a.s_addr);
    if (p != NULL && p->route_gateway != NULL && inet_pton(AF_INET, p->route_gateway, &a) == 1) {
        guint32 zero = 0;
        __atomic_compare_exchange_n(&l->target, &zero, g_ntohl(a.s_addr), FALSE, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
    }
    c->next_ping = now;
}

/* After every call into C's engine: its packets out, its events taken,
 * its next deadline noted. */
static void client_pump(Client *c, gint64 now)
{
    Load *l = c->w->load;
    flush_packets(c, now);
    ShimmerEvent ev;
    while (shimmer_engine_pop_event(c->e, &ev)) {
        if (ev.type == SHIMMER_EVENT_CONNECT) {
            if (connect(c->sock, (struct sockaddr *)&l->remote, l->remote_len) == 0)
                shimmer_engine_transport_up(c->e, FALSE, now);
            else
                shimmer_engine_transport_failed(c->e, g_strerror(errno), now);
        } else if (ev.type == SHIMMER_EVENT_STATE && ev.state == SHIMMER_STATE_CONNECTED &&
                   c->connected_at == 0) {
            on_connected(c, now);
        } else if (ev.type == SHIMMER_EVENT_EXIT && !c->failed) {
            c->failed = TRUE;
            g_atomic_int_inc(&l->failed);
            if (c->connected_at) {
                c->connected_at = 0;
                g_atomic_int_add(&l->connected, -1);
            }
            fprintf(stderr, "client %u: %s\n", c->index, ev.exit.reason);
        }
        shimmer_event_clear(&ev);
    }
    flush_packets(c, now);
    c->deadline = shimmer_engine_next_deadline(c->e);
}

/* One datagram per readiness: the epoll set is level-triggered, so a
 * socket with more is reported again, and no read ends in EAGAIN. */
static void on_readable(Client *c)
{
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET + 64], plain[SHIMMER_ENGINE_MAX_PACKET + 64];
    gint64 now = g_get_monotonic_time();
    ssize_t n = recv(c->sock, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0)
        return;
    gsize plain_len = 0;
    if (shimmer_engine_recv(c->e, buf, (gsize)n, now, plain, sizeof(plain), &plain_len, NULL) ==
            SHIMMER_RECV_TUN &&
        plain_len >= 28 && plain[9] == 1 && plain[20] == 0)
        c->replies++;
    client_pump(c, now);
}

static void client_start(Worker *w, guint index)
{
    Load *l = w->load;
    Client *c = g_new0(Client, 1);
    c->w = w;
    c->index = index;
    c->sock = -1;
    g_ptr_array_add(w->clients, c);
    g_atomic_int_inc(&l->started);
    ShimmerEngineHooks hooks = {.log = engine_log, .realtime = realtime, .user = c};
    g_autoptr(GError) error = NULL;
    c->e = shimmer_engine_new_like(l->model, &hooks, &error);
    c->sock = socket(l->remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (c->e == NULL || c->sock < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, c->sock, &ev) < 0) {
        fprintf(stderr, "client %u: %s\n", index, error ? error->message : g_strerror(errno));
        c->failed = TRUE;
        g_atomic_int_inc(&l->failed);
        return;
    }
    c->started = g_get_monotonic_time();
    shimmer_engine_start(c->e, c->started);
    client_pump(c, c->started);
}

/* Every 10 ms: clients due to start, engines due a timeout, pings due. */
static void worker_tick(Worker *w, gint64 now)
{
    Load *l = w->load;
    guint due =
        l->rate > 0 ? (guint)MIN((double)l->n, (double)(now - l->t0) / US * l->rate + 1) : l->n;
    while (w->next_index < due) {
        client_start(w, w->next_index);
        w->next_index += l->threads;
    }
    guint32 target = __atomic_load_n(&l->target, __ATOMIC_RELAXED);
    for (guint i = 0; i < w->clients->len; i++) {
        Client *c = g_ptr_array_index(w->clients, i);
        if (c->e == NULL || c->failed)
            continue;
        if (c->deadline <= now) {
            shimmer_engine_handle_timeout(c->e, now);
            client_pump(c, now);
        }
        if (l->ping_interval > 0 && c->connected_at && c->local_ip && target &&
            now >= c->next_ping) {
            send_ping(c, target, now);
            c->next_ping = now + l->ping_interval;
            client_pump(c, now);
        }
    }
}

static gpointer worker_main(gpointer data)
{
    Worker *w = data;
    Load *l = w->load;
    struct epoll_event evs[256];
    gint64 next_tick = 0;
    while (!g_atomic_int_get(&l->stop)) {
        gint64 now = g_get_monotonic_time();
        if (now >= next_tick) {
            worker_tick(w, now);
            next_tick = now + TICK_US;
        }
        int timeout = (int)((next_tick - now + 999) / 1000);
        int n = epoll_wait(w->ep, evs, G_N_ELEMENTS(evs), MAX(timeout, 0));
        for (int i = 0; i < n; i++)
            on_readable(evs[i].data.ptr);
    }
    return NULL;
}

static void summary(Load *l, gboolean final)
{
    double elapsed = (double)(g_get_monotonic_time() - l->t0) / US;
    if (!final) {
        /* Per-client echo counters belong to the workers: only the final
         * summary (after they stopped) adds them up. */
        fprintf(stderr, "%6.1f s: %d started, %d connected, %d failed\n", elapsed,
                g_atomic_int_get(&l->started), g_atomic_int_get(&l->connected),
                g_atomic_int_get(&l->failed));
        return;
    }
    guint64 sent = 0, replies = 0;
    guint answered = 0;
    for (guint t = 0; t < l->threads; t++) {
        GPtrArray *cs = l->workers[t].clients;
        for (guint i = 0; i < cs->len; i++) {
            Client *c = g_ptr_array_index(cs, i);
            sent += c->sent;
            replies += c->replies;
            answered += c->replies > 0;
        }
    }
    double median = 0, worst = 0;
    GArray *t = l->connect_times;
    if (t->len > 0) {
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
    guint connected = (guint)g_atomic_int_get(&l->connected);
    guint failed = (guint)g_atomic_int_get(&l->failed);
    double span = connected > 0 ? (double)(l->last_connect - l->t0) / US : 0;
    double rate = span > 0 ? connected / span : 0;
    if (l->json)
        printf("{\"clients\": %u, \"connected\": %u, \"failed\": %u, \"seconds\": %.3f, "
               "\"connect_median_s\": %.4f, \"connect_max_s\": %.4f, "
               "\"handshakes_per_s\": %.1f, \"echo_sent\": %" G_GUINT64_FORMAT
               ", \"echo_replies\": %" G_GUINT64_FORMAT
               ", \"clients_with_replies\": %u, \"threads\": %u}\n",
               l->n, connected, failed, elapsed, median, worst, rate, sent, replies, answered,
               l->threads);
    else
        printf("%u clients: %u connected, %u failed; connect median %.3f s, max %.3f s; %.1f "
               "handshakes/s; echo %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
               " (%u clients answered)\n",
               l->n, connected, failed, median, worst, rate, replies, sent, answered);
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

/* Waits for SIGINT, SIGTERM or the end of --duration, printing progress
 * every second. The signals are blocked in every thread (before the
 * workers start) and taken here. */
static void wait_until_done(Load *l, const sigset_t *sigs)
{
    gint64 next_progress = l->t0 + US;
    for (;;) {
        gint64 now = g_get_monotonic_time();
        if (now - l->t0 >= l->duration)
            return;
        gint64 until = MIN(next_progress, l->t0 + l->duration);
        gint64 wait = MAX(until - now, 1000);
        struct timespec ts = {.tv_sec = wait / US, .tv_nsec = (wait % US) * 1000};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM)
            return;
        if (g_get_monotonic_time() >= next_progress) {
            summary(l, FALSE);
            next_progress += US;
        }
    }
}

int main(int argc, char **argv)
{
    g_autofree char *config = NULL;
    gint clients = 10, threads = 1;
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
        {"threads", 't', 0, G_OPTION_ARG_INT, &threads,
         "Worker threads, each with every T-th client (default 1)", "T"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the summary as JSON", NULL},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log every engine's lines", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, "Simulates many VPN clients against one server over UDP.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || config == NULL || clients <= 0 ||
        threads <= 0 || threads > 64) {
        fprintf(stderr, "shimmer-load: %s\n",
                error ? error->message : "give --config and --clients (and 1 to 64 --threads)");
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
    ShimmerEngineHooks model_hooks = {.realtime = realtime};
    l.model = shimmer_engine_new(l.cfg, &model_hooks, &error);
    if (l.model == NULL) {
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
    l.threads = (guint)MIN(threads, clients);
    l.rate = rate;
    l.duration = (gint64)(duration * US);
    l.ping_interval = (gint64)(ping * US);
    l.json = json;
    l.verbose = verbose;
    g_mutex_init(&l.lock);
    l.connect_times = g_array_new(FALSE, FALSE, sizeof(double));
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    l.workers = g_new0(Worker, l.threads);
    l.t0 = g_get_monotonic_time();
    for (guint t = 0; t < l.threads; t++) {
        Worker *w = &l.workers[t];
        w->load = &l;
        w->id = t;
        w->next_index = t;
        w->clients = g_ptr_array_new();
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0) {
            fprintf(stderr, "shimmer-load: epoll: %s\n", g_strerror(errno));
            return 2;
        }
    }
    for (guint t = 0; t < l.threads; t++) {
        g_autofree char *name = g_strdup_printf("load%u", t);
        l.workers[t].thread = g_thread_new(name, worker_main, &l.workers[t]);
    }
    wait_until_done(&l, &sigs);
    g_atomic_int_set(&l.stop, 1);
    for (guint t = 0; t < l.threads; t++)
        g_thread_join(l.workers[t].thread);
    summary(&l, TRUE);
    gboolean ok = (guint)l.connected == l.n;
    gint64 now = g_get_monotonic_time();
    for (guint t = 0; t < l.threads; t++) {
        Worker *w = &l.workers[t];
        for (guint i = 0; i < w->clients->len; i++) {
            Client *c = g_ptr_array_index(w->clients, i);
            if (l.ping_interval > 0 && c->replies == 0)
                ok = FALSE;
            if (c->e != NULL) {
                shimmer_engine_stop(c->e, now);
                client_pump(c, now);
            }
            if (c->sock >= 0)
                close(c->sock);
            shimmer_engine_free(c->e);
            g_free(c);
        }
        g_ptr_array_unref(w->clients);
        close(w->ep);
    }
    g_free(l.workers);
    g_array_unref(l.connect_times);
    g_mutex_clear(&l.lock);
    shimmer_engine_free(l.model);
    shimmer_config_free(l.cfg);
    return ok ? 0 : 1;
}
