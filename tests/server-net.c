/* SPDX-License-Identifier: MIT */
/*
 * The simulated network of the server tests. See server-net.h.
 */
#include "server-net.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>

#define US ((gint64)G_USEC_PER_SEC)

typedef struct {
    ShimmerLinkAddr addr; /* source (to the server) or destination */
    GBytes *pkt;
} Pkt;

static void pkt_free(Pkt *p)
{
    g_bytes_unref(p->pkt);
    g_free(p);
}

static guint64 rng_next(SrvNet *n)
{
    n->rng = n->rng * 6364136223846793005ull + 1442695040888963407ull;
    return n->rng >> 11;
}

char *srvnet_data_dir(void)
{
    const char *src = g_getenv("SHIMMER_TEST_SRCDIR");
    if (src == NULL)
        g_error("SHIMMER_TEST_SRCDIR is not set (run the test through meson test)");
    return g_build_filename(src, "data", NULL);
}

GBytes *srvnet_fixture(const char *name)
{
    g_autofree char *dir = srvnet_data_dir();
    g_autofree char *path = g_build_filename(dir, name, NULL);
    char *text = NULL;
    gsize len = 0;
    GError *error = NULL;
    if (!g_file_get_contents(path, &text, &len, &error))
        g_error("%s", error->message);
    return g_bytes_new_take(text, len);
}

void srvnet_addr(ShimmerLinkAddr *a, const char *ip, guint16 port)
{
    memset(a, 0, sizeof(*a));
    if (strchr(ip, ':') != NULL) {
        a->family = 6;
        inet_pton(AF_INET6, ip, a->addr);
    } else {
        a->family = 4;
        inet_pton(AF_INET, ip, a->addr);
    }
    a->port = port;
}

/* ---------- hooks ---------- */

static void srv_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    SrvNet *n = user;
    if (n->log)
        g_printerr("[%8.3f] server: %s\n", (double)(n->now - SRVNET_T0) / US, message);
    g_ptr_array_add(n->srv_logs, g_strdup(message));
}

static gboolean net_random(gpointer user, guint8 *buf, gsize len)
{
    SrvNet *n = user;
    for (gsize i = 0; i < len; i++)
        buf[i] = (guint8)rng_next(n);
    return TRUE;
}

static gint64 net_realtime(gpointer user)
{
    SrvNet *n = user;
    return SRVNET_WALL0 + (n->now - SRVNET_T0) / US;
}

static ShimmerCcd *load_ccd(gpointer user, const char *cn)
{
    SrvNet *n = user;
    n->ccd_loads++;
    const char *text = g_hash_table_lookup(n->ccd, cn);
    if (text == NULL)
        return NULL;
    ShimmerCcd *ccd = shimmer_ccd_parse(cn, text, strlen(text), n->scfg);
    if (shimmer_ccd_has_errors(ccd)) {
        GString *s = g_string_new(NULL);
        shimmer_ccd_format_diagnostics(ccd, s);
        g_error("ccd %s: %s", cn, s->str);
    }
    return ccd;
}

static void cli_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    SrvCli *c = user;
    if (c->n->log)
        g_printerr("[%8.3f] client %u: %s\n", (double)(c->n->now - SRVNET_T0) / US, c->index,
                   message);
}

static gboolean cli_random(gpointer user, guint8 *buf, gsize len)
{
    SrvCli *c = user;
    return net_random(c->n, buf, len);
}

static gint64 cli_realtime(gpointer user)
{
    SrvCli *c = user;
    return net_realtime(c->n);
}

/* ---------- set-up ---------- */

static void cli_event_free(SrvCliEvent *ev)
{
    g_free(ev->text);
    g_free(ev);
}

static void srv_event_free(SrvEvent *ev)
{
    g_free(ev->common_name);
    g_free(ev->username);
    g_free(ev->password);
    g_free(ev->reason);
    g_free(ev);
}

static void srvnet_run_job(gpointer job, gpointer user)
{
    SrvNet *n = user;
    shimmer_dispatch_job_run(job, n->now);
    g_async_queue_push(n->done, job);
}

void srvnet_set_offload(SrvNet *n, gboolean on)
{
    shimmer_dispatch_set_offload(n->d, on);
    if (on && n->pool == NULL) {
        n->pool = g_thread_pool_new(srvnet_run_job, n, 2, FALSE, NULL);
        n->done = g_async_queue_new();
    }
}

gboolean srvnet_run_jobs(SrvNet *n)
{
    if (n->pool == NULL || n->hold)
        return FALSE;
    g_autoptr(GPtrArray) jobs = g_ptr_array_new();
    ShimmerDispatchJob *job;
    while ((job = shimmer_dispatch_take_job(n->d)) != NULL) {
        g_ptr_array_add(jobs, job);
        g_thread_pool_push(n->pool, job, NULL);
    }
    for (guint i = 0; i < jobs->len; i++)
        g_async_queue_pop(n->done);
    for (guint i = 0; i < jobs->len; i++)
        shimmer_dispatch_job_done(n->d, g_ptr_array_index(jobs, i), n->now);
    n->jobs_run += jobs->len;
    return jobs->len > 0;
}

SrvNet *srvnet_new(const char *extra)
{
    g_autofree char *dir = srvnet_data_dir();
    g_autofree char *text =
        g_strdup_printf("port 1194\n%sdev tun\ntopology subnet\n"
                        "server 10.8.0.0 255.255.255.0\n"
                        "server-ipv6 fd00:8::/64\n"
                        "ca ca.crt\ncert server.crt\nkey server.key\n"
                        "dh none\nkeepalive 10 60\n%s",
                        extra && strstr(extra, "proto ") ? "" : "proto udp\n", extra ? extra : "");
    SrvNet *n = g_new0(SrvNet, 1);
    n->now = SRVNET_T0;
    n->rng = 0x5eed;
    n->log = g_getenv("SHIMMER_TEST_LOG") != NULL;
    n->scfg = shimmer_config_parse("server.conf", dir, text, strlen(text),
                                   shimmer_config_file_loader, NULL);
    if (shimmer_config_has_errors(n->scfg)) {
        GString *s = g_string_new(NULL);
        shimmer_config_format_diagnostics(n->scfg, s);
        g_error("server configuration:\n%s\n%s", text, s->str);
    }
    n->clients = g_ptr_array_new();
    n->to_srv = g_queue_new();
    n->to_cli = g_queue_new();
    n->srv_tun = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    n->srv_events = g_ptr_array_new_with_free_func((GDestroyNotify)srv_event_free);
    n->srv_logs = g_ptr_array_new_with_free_func(g_free);
    n->ccd = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    ShimmerDispatchHooks hooks = {
        .log = srv_log,
        .random = net_random,
        .realtime = net_realtime,
        .load_ccd = load_ccd,
        .user = n,
    };
    GError *error = NULL;
    n->d = shimmer_dispatch_new(n->scfg, &hooks, &error);
    if (n->d == NULL)
        g_error("shimmer_dispatch_new: %s", error->message);
    if (g_getenv("SHIMMER_SRVNET_OFFLOAD") != NULL)
        srvnet_set_offload(n, TRUE);
    return n;
}

static void cli_free(SrvCli *c)
{
    shimmer_engine_free(c->e);
    shimmer_config_free(c->cfg);
    g_ptr_array_unref(c->events);
    g_ptr_array_unref(c->tun);
    g_free(c);
}

void srvnet_remove_client(SrvNet *n, SrvCli *c)
{
    g_ptr_array_remove(n->clients, c);
    cli_free(c);
}

void srvnet_free(SrvNet *n)
{
    if (n->pool != NULL) {
        g_thread_pool_free(n->pool, FALSE, TRUE);
        g_async_queue_unref(n->done);
    }
    shimmer_dispatch_free(n->d);
    for (guint i = 0; i < n->clients->len; i++)
        cli_free(g_ptr_array_index(n->clients, i));
    g_ptr_array_unref(n->clients);
    g_queue_free_full(n->to_srv, (GDestroyNotify)pkt_free);
    g_queue_free_full(n->to_cli, (GDestroyNotify)pkt_free);
    g_ptr_array_unref(n->srv_tun);
    g_ptr_array_unref(n->srv_events);
    g_ptr_array_unref(n->srv_logs);
    g_hash_table_unref(n->ccd);
    shimmer_config_free(n->scfg);
    g_free(n);
}

ShimmerConfig *srvnet_client_config(const char *extra)
{
    g_autofree char *dir = srvnet_data_dir();
    g_autofree char *text =
        g_strdup_printf("client\ndev tun\nremote 10.0.0.1 1194\n"
                        "remote-cert-tls server\n"
                        "verify-x509-name server.shimmer.test name\n"
                        "ca ca.crt\n%s%s%s",
                        extra && (strstr(extra, "cert ") || strstr(extra, "# no cert"))
                            ? ""
                            : "cert client.crt\nkey client.key\n",
                        extra && strstr(extra, "proto ") ? "" : "proto udp\n", extra ? extra : "");
    ShimmerConfig *cfg = shimmer_config_parse("client.ovpn", dir, text, strlen(text),
                                              shimmer_config_file_loader, NULL);
    if (shimmer_config_has_errors(cfg)) {
        GString *s = g_string_new(NULL);
        shimmer_config_format_diagnostics(cfg, s);
        g_error("client configuration:\n%s\n%s", text, s->str);
    }
    return cfg;
}

SrvCli *srvnet_add_client(SrvNet *n, const char *extra)
{
    SrvCli *c = g_new0(SrvCli, 1);
    c->n = n;
    c->index = n->clients->len;
    c->cfg = srvnet_client_config(extra);
    g_autofree char *ip = g_strdup_printf("192.0.2.%u", 10 + c->index % 200);
    srvnet_addr(&c->addr, ip, (guint16)(40000 + c->index));
    c->events = g_ptr_array_new_with_free_func((GDestroyNotify)cli_event_free);
    c->tun = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    ShimmerEngineHooks hooks = {
        .log = cli_log, .random = cli_random, .realtime = cli_realtime, .user = c};
    GError *error = NULL;
    c->e = shimmer_engine_new(c->cfg, &hooks, &error);
    if (c->e == NULL)
        g_error("client engine: %s", error->message);
    g_ptr_array_add(n->clients, c);
    shimmer_engine_start(c->e, n->now);
    return c;
}

/* ---------- moving packets ---------- */

static gint64 thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static SrvCli *client_at(SrvNet *n, const ShimmerLinkAddr *a)
{
    for (guint i = 0; i < n->clients->len; i++) {
        SrvCli *c = g_ptr_array_index(n->clients, i);
        if (memcmp(&c->addr, a, sizeof(*a)) == 0)
            return c;
    }
    return NULL;
}

static void queue(SrvNet *n, gboolean to_client, const ShimmerLinkAddr *a, const guint8 *pkt,
                  gsize len)
{
    Pkt *p = g_new0(Pkt, 1);
    p->addr = *a;
    p->pkt = g_bytes_new(pkt, len);
    if (n->filter != NULL && !n->filter(n, to_client, &p->addr, p->pkt)) {
        pkt_free(p);
        return;
    }
    g_queue_push_tail(to_client ? n->to_cli : n->to_srv, p);
}

static gboolean cli_collect(SrvCli *c)
{
    SrvNet *n = c->n;
    gboolean moved = FALSE;
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    gssize len;
    while ((len = shimmer_engine_write_pkt(c->e, buf, sizeof(buf), n->now)) > 0) {
        queue(n, FALSE, &c->addr, buf, (gsize)len);
        moved = TRUE;
    }
    ShimmerEvent ev;
    while (shimmer_engine_pop_event(c->e, &ev)) {
        moved = TRUE;
        SrvCliEvent *rec = g_new0(SrvCliEvent, 1);
        rec->type = ev.type;
        rec->state = ev.state;
        if (ev.type == SHIMMER_EVENT_EXIT)
            rec->text = g_strdup(ev.exit.reason);
        else if (ev.type == SHIMMER_EVENT_AUTH_FAILED)
            rec->text = g_strdup(ev.auth_failed.reason);
        else if (ev.type == SHIMMER_EVENT_STATE)
            rec->text = g_strdup(ev.state_change.reason);
        g_ptr_array_add(c->events, rec);
        if (ev.type == SHIMMER_EVENT_CONNECT)
            shimmer_engine_transport_up(c->e, n->scfg->transport == SHIMMER_TRANSPORT_TCP, n->now);
        shimmer_event_clear(&ev);
    }
    return moved;
}

static gboolean srv_collect(SrvNet *n)
{
    gboolean moved = FALSE;
    guint8 buf[SHIMMER_ENGINE_MAX_PACKET];
    gssize len;
    ShimmerLinkAddr to;
    gint64 t0 = thread_ns();
    while ((len = shimmer_dispatch_write_pkt(n->d, buf, sizeof(buf), &to, n->now)) > 0) {
        queue(n, TRUE, &to, buf, (gsize)len);
        moved = TRUE;
    }
    n->srv_cpu_ns += thread_ns() - t0;
    ShimmerDispatchEvent ev;
    while (shimmer_dispatch_pop_event(n->d, &ev)) {
        moved = TRUE;
        SrvEvent *rec = g_new0(SrvEvent, 1);
        rec->type = ev.type;
        rec->id = ev.id;
        rec->common_name = g_strdup(ev.common_name);
        rec->username = g_strdup(ev.username);
        rec->password = g_strdup(ev.password);
        rec->reason = g_strdup(ev.reason);
        g_ptr_array_add(n->srv_events, rec);
        if (ev.type == SHIMMER_DISPATCH_EVENT_AUTH_REQUEST) {
            switch (n->auth) {
            case SRVNET_AUTH_ACCEPT:
                shimmer_dispatch_auth_reply(n->d, ev.id, SHIMMER_AUTH_ACCEPT, NULL, n->now);
                break;
            case SRVNET_AUTH_DENY:
                shimmer_dispatch_auth_reply(n->d, ev.id, SHIMMER_AUTH_DENY, "bad password", n->now);
                break;
            case SRVNET_AUTH_HOLD:
                shimmer_dispatch_auth_reply(n->d, ev.id, SHIMMER_AUTH_PENDING, NULL, n->now);
                break;
            case SRVNET_AUTH_PASSWORD:
                shimmer_dispatch_auth_reply(n->d, ev.id,
                                            g_strcmp0(ev.password, n->password) == 0
                                                ? SHIMMER_AUTH_ACCEPT
                                                : SHIMMER_AUTH_DENY,
                                            "wrong password", n->now);
                break;
            }
        }
        shimmer_dispatch_event_clear(&ev);
    }
    return moved;
}

static gboolean deliver(SrvNet *n)
{
    gboolean moved = FALSE;
    Pkt *p;
    guint8 out[SHIMMER_ENGINE_MAX_PACKET + 64];
    while ((p = g_queue_pop_head(n->to_srv)) != NULL) {
        moved = TRUE;
        n->link_packets++;
        gsize len = 0, out_len = 0;
        const guint8 *data = g_bytes_get_data(p->pkt, &len);
        ShimmerLinkAddr to;
        gint64 t0 = thread_ns();
        ShimmerDispatchResult r = shimmer_dispatch_recv(n->d, &p->addr, data, len, n->now, out,
                                                        sizeof(out), &out_len, &to);
        n->srv_cpu_ns += thread_ns() - t0;
        if (r == SHIMMER_DISPATCH_TUN)
            g_ptr_array_add(n->srv_tun, g_bytes_new(out, out_len));
        else if (r == SHIMMER_DISPATCH_LINK)
            queue(n, TRUE, &to, out, out_len);
        pkt_free(p);
    }
    while ((p = g_queue_pop_head(n->to_cli)) != NULL) {
        moved = TRUE;
        n->link_packets++;
        SrvCli *c = client_at(n, &p->addr);
        if (c != NULL && !c->detached) {
            gsize len = 0, tun_len = 0;
            const guint8 *data = g_bytes_get_data(p->pkt, &len);
            if (shimmer_engine_recv(c->e, data, len, n->now, out, sizeof(out), &tun_len, NULL) ==
                SHIMMER_RECV_TUN)
                g_ptr_array_add(c->tun, g_bytes_new(out, tun_len));
        }
        pkt_free(p);
    }
    return moved;
}

void srvnet_pump(SrvNet *n)
{
    for (guint rounds = 0; rounds < 10000; rounds++) {
        gboolean moved = FALSE;
        for (guint i = 0; i < n->clients->len; i++)
            moved |= cli_collect(g_ptr_array_index(n->clients, i));
        moved |= srv_collect(n);
        moved |= deliver(n);
        moved |= srvnet_run_jobs(n);
        if (!moved)
            return;
    }
    g_error("the simulated network does not settle");
}

static gint64 next_deadline(SrvNet *n)
{
    gint64 d = shimmer_dispatch_next_deadline(n->d);
    for (guint i = 0; i < n->clients->len; i++) {
        SrvCli *c = g_ptr_array_index(n->clients, i);
        d = MIN(d, shimmer_engine_next_deadline(c->e));
    }
    return d;
}

static void fire(SrvNet *n)
{
    for (guint i = 0; i < n->clients->len; i++) {
        SrvCli *c = g_ptr_array_index(n->clients, i);
        if (shimmer_engine_next_deadline(c->e) <= n->now)
            shimmer_engine_handle_timeout(c->e, n->now);
    }
    if (shimmer_dispatch_next_deadline(n->d) <= n->now) {
        gint64 t0 = thread_ns();
        shimmer_dispatch_handle_timeout(n->d, n->now);
        n->srv_cpu_ns += thread_ns() - t0;
    }
}

gboolean srvnet_run(SrvNet *n, gint64 until, SrvNetDone done, gpointer data)
{
    for (guint rounds = 0; rounds < 1000000; rounds++) {
        srvnet_pump(n);
        if (done != NULL && done(n, data))
            return TRUE;
        gint64 d = next_deadline(n);
        if (d > until) {
            n->now = MAX(n->now, until);
            return done != NULL && done(n, data);
        }
        if (d > n->now)
            n->now = d;
        fire(n);
    }
    g_error("the simulated clock does not advance");
    return FALSE;
}

static gboolean all_connected(SrvNet *n, gpointer data)
{
    for (guint i = 0; i < n->clients->len; i++) {
        SrvCli *c = g_ptr_array_index(n->clients, i);
        if (shimmer_engine_get_state(c->e) != SHIMMER_STATE_CONNECTED)
            return FALSE;
    }
    return TRUE;
}

gboolean srvnet_connect_all(SrvNet *n, gint64 limit)
{
    return srvnet_run(n, n->now + limit, all_connected, NULL);
}

/* ---------- data ---------- */

static GBytes *make_ipv4(const char *src, const char *dst, gsize len, guint8 tag)
{
    len = MAX(len, 28);
    guint8 *b = g_malloc0(len);
    b[0] = 0x45;
    b[2] = (guint8)(len >> 8);
    b[3] = (guint8)len;
    b[8] = 64;
    b[9] = 17;
    inet_pton(AF_INET, src, b + 12);
    inet_pton(AF_INET, dst, b + 16);
    for (gsize i = 20; i < len; i++)
        b[i] = (guint8)(tag + i);
    return g_bytes_new_take(b, len);
}

const char *srvnet_client_ip(SrvCli *c)
{
    const ShimmerConfig *p = shimmer_engine_get_pushed(c->e);
    return p != NULL ? p->ifconfig_local : NULL;
}

gboolean srvnet_client_send(SrvCli *c, const char *src, const char *dst, gsize len, guint8 tag)
{
    g_autoptr(GBytes) ip = make_ipv4(src ? src : srvnet_client_ip(c), dst, len, tag);
    guint8 out[SHIMMER_ENGINE_MAX_PACKET + 64];
    gsize out_len = 0, ip_len = 0;
    const guint8 *data = g_bytes_get_data(ip, &ip_len);
    if (shimmer_engine_encrypt(c->e, data, ip_len, out, sizeof(out), c->n->now, &out_len) !=
        SHIMMER_ENCRYPT_OK)
        return FALSE;
    queue(c->n, FALSE, &c->addr, out, out_len);
    return TRUE;
}

ShimmerDispatchResult srvnet_server_send(SrvNet *n, const char *src, const char *dst, gsize len,
                                         guint8 tag)
{
    g_autoptr(GBytes) ip = make_ipv4(src, dst, len, tag);
    guint8 out[SHIMMER_ENGINE_MAX_PACKET + 64];
    gsize out_len = 0, ip_len = 0;
    const guint8 *data = g_bytes_get_data(ip, &ip_len);
    ShimmerLinkAddr to;
    ShimmerDispatchResult r =
        shimmer_dispatch_encrypt(n->d, data, ip_len, n->now, out, sizeof(out), &out_len, &to);
    if (r == SHIMMER_DISPATCH_LINK)
        queue(n, TRUE, &to, out, out_len);
    return r;
}

ShimmerDispatchResult srvnet_inject(SrvNet *n, const ShimmerLinkAddr *from, const guint8 *pkt,
                                    gsize len, guint8 *out, gsize *out_len, ShimmerLinkAddr *to)
{
    return shimmer_dispatch_recv(n->d, from, pkt, len, n->now, out, SHIMMER_ENGINE_MAX_PACKET + 64,
                                 out_len, to);
}

/* ---------- looking at what happened ---------- */

gint srvnet_find_cli_event(SrvCli *c, ShimmerEventType type, gint state)
{
    for (guint i = 0; i < c->events->len; i++) {
        SrvCliEvent *ev = g_ptr_array_index(c->events, i);
        if (ev->type == type && (state < 0 || (gint)ev->state == state))
            return (gint)i;
    }
    return -1;
}

gint srvnet_find_srv_event(SrvNet *n, ShimmerDispatchEventType type)
{
    for (guint i = 0; i < n->srv_events->len; i++) {
        SrvEvent *ev = g_ptr_array_index(n->srv_events, i);
        if (ev->type == type)
            return (gint)i;
    }
    return -1;
}

guint srvnet_count_srv_events(SrvNet *n, ShimmerDispatchEventType type)
{
    guint k = 0;
    for (guint i = 0; i < n->srv_events->len; i++)
        k += ((SrvEvent *)g_ptr_array_index(n->srv_events, i))->type == type;
    return k;
}

gboolean srvnet_log_has(SrvNet *n, const char *needle)
{
    for (guint i = 0; i < n->srv_logs->len; i++) {
        if (strstr(g_ptr_array_index(n->srv_logs, i), needle) != NULL)
            return TRUE;
    }
    return FALSE;
}
