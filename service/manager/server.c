/* SPDX-License-Identifier: MIT */
/*
 * Servers run by the daemon: the model behind org.shimmervpn.Server1 and
 * Client1, around the server runner. See server.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "server.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <string.h>

#include "errors.h"
#include "os/log.h"
#include "os/pam.h"
#include "secure.h"
#include "tunnel/server.h"

/* How often the counters are read (and reported when they changed). */
#define TICK_SECONDS 1
/* An undecided login is denied this long before the client's hand-window
 * ends its session. */
#define DENY_MARGIN_US (G_USEC_PER_SEC)

typedef struct {
    ShimmerServerAuthRequest view;
    char *common_name;
    char *username;
    char *real_address;
    gint64 deadline; /* monotonic: denied then */
    guint timer;
    gboolean open;     /* announced: waits for answer_auth */
    gboolean pam_busy; /* PAM checks the password */
} Request;

struct ShimmerManagedServer {
    gint ref;
    ShimmerProfile *profile; /* a reference */
    char *id;
    char *profile_name; /* as it was at the start, for log lines */
    guint owner;
    ShimmerManagedServerOptions opts;
    ShimmerManagedServerListener listener;
    ShimmerConfig *cfg; /* this server's own parse of the profile */
    ShimmerServer *runner;
    guint free_runner_idle;

    const char *state;
    char *state_reason;
    gboolean started;
    gboolean stopping;
    gboolean finished;

    char *interface;
    char *listen_address;
    GStrv networks;
    const char *auth_mode;
    guint max_clients;
    guint64 started_since;
    gint64 hand_window_us;

    GHashTable *clients;  /* guint64* id -> ShimmerServedClient* */
    GHashTable *requests; /* guint64* id -> Request* */
    ShimmerManagedServerCounters departed;
    ShimmerManagedServerCounters reported;
    guint reported_clients;
    ShimmerDispatchStats stats;
    ShimmerDispatchStats reported_stats;
    guint tick;
    GCancellable *cancel; /* PAM checks */
};

/* ---------- logging ---------- */

/* A log line of this server: to the daemon's log with structured fields,
 * and to the listener. */
static void server_log(ShimmerManagedServer *s, ShimmerLogLevel level, const char *message)
{
    if (level == SHIMMER_LOG_DEBUG && !s->opts.verbose)
        return;
    /* A server's info lines (clients coming and going) show without -v. */
    g_autofree char *text = shimmer_log_object("server", "SHIMMER_SERVER", s->id, s->profile_name,
                                               s->owner, level, G_LOG_LEVEL_MESSAGE, message);
    if (s->listener.log != NULL)
        s->listener.log(s->listener.user, s, level, text);
}

static void server_logf(ShimmerManagedServer *s, ShimmerLogLevel level, const char *format, ...)
    G_GNUC_PRINTF(3, 4);
static void server_logf(ShimmerManagedServer *s, ShimmerLogLevel level, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    server_log(s, level, msg);
}

static void notify(ShimmerManagedServer *s, guint what)
{
    if (s->listener.changed != NULL)
        s->listener.changed(s->listener.user, s, what);
}

static void set_state(ShimmerManagedServer *s, const char *state, const char *reason)
{
    s->state = state;
    g_free(s->state_reason);
    s->state_reason = g_utf8_make_valid(reason ? reason : "", -1);
    notify(s, SHIMMER_MANAGED_SERVER_CHANGED_STATE);
}

/* Text for a client: printable ASCII, bounded (it goes into a control
 * message). */
static char *client_text(const char *reason)
{
    if (reason == NULL)
        return g_strdup("");
    gsize n = MIN(strlen(reason), (gsize)SHIMMER_MANAGED_SERVER_MAX_REASON);
    char *out = g_strndup(reason, n);
    for (gsize i = 0; i < n; i++)
        if (!g_ascii_isprint(out[i]))
            out[i] = '?';
    return out;
}

/* ---------- clients ---------- */

static void served_client_free(gpointer data)
{
    ShimmerServedClient *c = data;
    g_free(c->common_name);
    g_free(c->username);
    g_free(c->real_address);
    g_strfreev(c->virtual_addresses);
    g_free(c->cipher);
    g_free(c);
}

static guint64 unix_now(void)
{
    return (guint64)(g_get_real_time() / G_USEC_PER_SEC);
}

/* Monotonic microseconds as Unix seconds. */
static guint64 to_unix(gint64 mono)
{
    gint64 ago = g_get_monotonic_time() - mono;
    gint64 t = g_get_real_time() - MAX(ago, 0);
    return t > 0 ? (guint64)(t / G_USEC_PER_SEC) : 0;
}

/* The counters of INFO into C; TRUE if they changed. */
static gboolean take_counters(ShimmerServedClient *c, const ShimmerPeerInfo *info)
{
    /* The engine's tun_*_out is what came from the client (to the tun). */
    guint64 bi = info->stats.tun_bytes_out, bo = info->stats.tun_bytes_in;
    guint64 pi = info->stats.tun_packets_out, po = info->stats.tun_packets_in;
    gboolean changed =
        bi != c->bytes_in || bo != c->bytes_out || pi != c->packets_in || po != c->packets_out;
    c->bytes_in = bi;
    c->bytes_out = bo;
    c->packets_in = pi;
    c->packets_out = po;
    return changed;
}

static ShimmerServedClient *served_client_new(guint64 id, const ShimmerPeerInfo *info)
{
    ShimmerServedClient *c = g_new0(ShimmerServedClient, 1);
    c->id = id;
    c->common_name = g_utf8_make_valid(info->common_name ? info->common_name : "", -1);
    c->username = g_utf8_make_valid(info->username ? info->username : "", -1);
    char a[80];
    c->real_address = g_strdup(shimmer_link_addr_to_string(&info->addr, a, sizeof(a)));
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    if (info->ipv4 != NULL)
        g_strv_builder_add(b, info->ipv4);
    if (info->ipv6 != NULL)
        g_strv_builder_add(b, info->ipv6);
    c->virtual_addresses = g_strv_builder_end(b);
    c->cipher = g_strdup(info->cipher ? info->cipher : "");
    c->connected_since = info->connected ? to_unix(info->connected) : unix_now();
    take_counters(c, info);
    return c;
}

static guint64 *id_key(guint64 id)
{
    return g_memdup2(&id, sizeof(id));
}

static void remove_client(ShimmerManagedServer *s, guint64 id)
{
    ShimmerServedClient *c = g_hash_table_lookup(s->clients, &id);
    if (c == NULL)
        return;
    s->departed.bytes_in += c->bytes_in;
    s->departed.bytes_out += c->bytes_out;
    s->departed.packets_in += c->packets_in;
    s->departed.packets_out += c->packets_out;
    if (s->listener.client_removed != NULL)
        s->listener.client_removed(s->listener.user, s, c);
    g_hash_table_remove(s->clients, &id);
}

static void remove_all_clients(ShimmerManagedServer *s)
{
    g_autoptr(GPtrArray) list = shimmer_managed_server_list_clients(s);
    for (guint i = 0; i < list->len; i++)
        remove_client(s, ((const ShimmerServedClient *)g_ptr_array_index(list, i))->id);
}

/* ---------- logins ---------- */

static void request_free(gpointer data)
{
    Request *r = data;
    if (r->timer)
        g_source_remove(r->timer);
    g_free(r->common_name);
    g_free(r->username);
    g_free(r->real_address);
    g_free(r);
}

static void close_request(ShimmerManagedServer *s, guint64 id, const char *outcome)
{
    Request *r = g_hash_table_lookup(s->requests, &id);
    if (r == NULL)
        return;
    gboolean was_open = r->open;
    g_hash_table_remove(s->requests, &id);
    if (was_open && s->listener.auth_closed != NULL)
        s->listener.auth_closed(s->listener.user, s, id, outcome);
}

/* The request waits for the front end from now on. */
static void open_request(ShimmerManagedServer *s, Request *r)
{
    r->open = TRUE;
    gint64 left = r->deadline - g_get_monotonic_time();
    r->view.timeout = (guint)MAX(left / G_USEC_PER_SEC, 0);
    r->view.deadline = unix_now() + r->view.timeout;
    r->view.requested = g_get_monotonic_time();
    server_logf(s, SHIMMER_LOG_INFO,
                "client %" G_GUINT64_FORMAT " '%s'%s%s%s from %s waits for a decision over D-Bus",
                r->view.id, r->common_name, r->username[0] ? " (user " : "", r->username,
                r->username[0] ? ")" : "", r->real_address);
    if (s->listener.auth_requested != NULL)
        s->listener.auth_requested(s->listener.user, s, &r->view);
}

typedef struct {
    ShimmerManagedServer *s;
    guint64 id;
} Expiry;

static gboolean on_request_expired(gpointer user)
{
    Expiry *x = user;
    ShimmerManagedServer *s = x->s;
    guint64 id = x->id;
    Request *r = g_hash_table_lookup(s->requests, &id);
    if (r == NULL)
        return G_SOURCE_REMOVE;
    r->timer = 0; /* this source, going */
    server_logf(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT ": no decision in time", id);
    close_request(s, id, "timeout");
    shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_DENY, "authentication timed out");
    return G_SOURCE_REMOVE;
}

typedef struct {
    ShimmerManagedServer *s; /* a reference */
    guint64 id;
} PamCheck;

static void on_pam_done(GObject *source, GAsyncResult *result, gpointer user)
{
    PamCheck *pc = user;
    g_autoptr(ShimmerManagedServer) s = pc->s;
    guint64 id = pc->id;
    g_free(pc);
    g_autoptr(GError) error = NULL;
    gboolean ok = shimmer_pam_check_finish(result, &error);
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || s->finished)
        return;
    Request *r = g_hash_table_lookup(s->requests, &id);
    if (r == NULL)
        return; /* timed out meanwhile */
    r->pam_busy = FALSE;
    if (!ok) {
        server_logf(s, SHIMMER_LOG_WARNING, "PAM refused user '%s': %s", r->username,
                    error->message);
        g_hash_table_remove(s->requests, &id);
        shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_DENY, NULL);
        return;
    }
    r->view.pam = TRUE;
    if (s->opts.auth == SHIMMER_MANAGED_SERVER_AUTH_BUS) {
        open_request(s, r);
        return;
    }
    g_hash_table_remove(s->requests, &id);
    shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_ACCEPT, NULL);
}

static void on_auth_request(gpointer user, guint64 id, const char *common_name,
                            const char *username, const char *password)
{
    ShimmerManagedServer *s = user;
    gboolean pam = s->cfg->pam_service != NULL && password != NULL;
    gboolean bus = s->opts.auth == SHIMMER_MANAGED_SERVER_AUTH_BUS;
    if (!pam && !bus) {
        shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_DENY,
                                  "the server cannot check passwords");
        return;
    }
    Request *r = g_new0(Request, 1);
    r->common_name = g_utf8_make_valid(common_name ? common_name : "", -1);
    r->username = g_utf8_make_valid(username ? username : "", -1);
    ShimmerPeerInfo info = {0};
    char a[80] = "";
    if (shimmer_server_get_client(s->runner, id, &info))
        shimmer_link_addr_to_string(&info.addr, a, sizeof(a));
    r->real_address = g_strdup(a);
    /* The client's session ends at hand-window from its first packet,
     * without a word: deny a little before, so that it hears why. */
    gint64 now = g_get_monotonic_time();
    gint64 from = info.created > 0 && info.created <= now ? info.created : now;
    r->deadline = MAX(from + s->hand_window_us - DENY_MARGIN_US, now + G_USEC_PER_SEC);
    Expiry *x = g_new0(Expiry, 1);
    x->s = s;
    x->id = id;
    r->timer = g_timeout_add_full(G_PRIORITY_DEFAULT, (guint)((r->deadline - now) / 1000),
                                  on_request_expired, x, g_free);
    r->view.id = id;
    r->view.common_name = r->common_name;
    r->view.username = r->username;
    r->view.real_address = r->real_address;
    g_hash_table_replace(s->requests, id_key(id), r);
    if (pam) {
        /* Until PAM answers; the client hears AUTH_PENDING if it knows
         * it. PAM copies the password; nothing here keeps it. */
        r->pam_busy = TRUE;
        shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_PENDING, NULL);
        PamCheck *pc = g_new0(PamCheck, 1);
        pc->s = shimmer_managed_server_ref(s);
        pc->id = id;
        shimmer_pam_check_async(s->cfg->pam_service, username, password, s->cancel, on_pam_done,
                                pc);
        return;
    }
    open_request(s, r);
}

/* Requests whose client went away (without a word, or before it was in)
 * are dropped. */
static void sweep_requests(ShimmerManagedServer *s)
{
    g_autoptr(GArray) gone = g_array_new(FALSE, FALSE, sizeof(guint64));
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, s->requests);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        Request *r = value;
        ShimmerPeerInfo info;
        if (!shimmer_server_get_client(s->runner, r->view.id, &info))
            g_array_append_val(gone, r->view.id);
    }
    for (guint i = 0; i < gone->len; i++)
        close_request(s, g_array_index(gone, guint64, i), "gone");
}

/* ---------- the runner's reports ---------- */

static void on_runner_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    server_log(user, level, message);
}

static void on_client_connected(gpointer user, guint64 id)
{
    ShimmerManagedServer *s = user;
    ShimmerPeerInfo info;
    if (!shimmer_server_get_client(s->runner, id, &info))
        return;
    /* A decided login: its request (if any) was closed when answered. */
    close_request(s, id, "accepted");
    ShimmerServedClient *c = served_client_new(id, &info);
    g_hash_table_replace(s->clients, id_key(id), c);
    if (s->listener.client_added != NULL)
        s->listener.client_added(s->listener.user, s, c);
    notify(s, SHIMMER_MANAGED_SERVER_CHANGED_COUNTERS);
}

static void on_client_gone(gpointer user, guint64 id, const char *reason)
{
    ShimmerManagedServer *s = user;
    close_request(s, id, "gone");
    if (g_hash_table_contains(s->clients, &id)) {
        remove_client(s, id);
        notify(s, SHIMMER_MANAGED_SERVER_CHANGED_COUNTERS);
    }
}

static void read_stats(ShimmerManagedServer *s)
{
    if (s->runner != NULL)
        shimmer_dispatch_get_stats(shimmer_server_get_dispatch(s->runner), &s->stats);
}

static gboolean on_free_runner(gpointer user)
{
    ShimmerManagedServer *s = user;
    s->free_runner_idle = 0;
    g_clear_pointer(&s->runner, shimmer_server_free);
    shimmer_managed_server_unref(s);
    return G_SOURCE_REMOVE;
}

/* The end, whichever way it came: the clients and requests go, the state
 * is final. The runner itself is freed from the main loop (this may run
 * inside one of its callbacks). */
static void end(ShimmerManagedServer *s, gboolean failed, const char *reason)
{
    if (s->finished)
        return;
    s->finished = TRUE;
    g_cancellable_cancel(s->cancel);
    if (s->tick) {
        g_source_remove(s->tick);
        s->tick = 0;
    }
    read_stats(s);
    g_autoptr(GPtrArray) open = shimmer_managed_server_list_auth_requests(s);
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint64));
    for (guint i = 0; i < open->len; i++)
        g_array_append_val(ids, ((const ShimmerServerAuthRequest *)g_ptr_array_index(open, i))->id);
    g_clear_pointer(&open, g_ptr_array_unref);
    for (guint i = 0; i < ids->len; i++)
        close_request(s, g_array_index(ids, guint64, i), "gone");
    g_hash_table_remove_all(s->requests);
    remove_all_clients(s);
    server_logf(s, failed ? SHIMMER_LOG_ERROR : SHIMMER_LOG_INFO, "%s", reason);
    set_state(s, failed ? "failed" : "stopped", reason);
    notify(s, SHIMMER_MANAGED_SERVER_CHANGED_COUNTERS);
    if (s->listener.finished != NULL)
        s->listener.finished(s->listener.user, s);
}

static void on_runner_finished(gpointer user, gboolean failed, const char *reason)
{
    ShimmerManagedServer *s = user;
    end(s, failed, reason ? reason : (failed ? "the server failed" : "stopped"));
    if (s->runner != NULL && s->free_runner_idle == 0)
        s->free_runner_idle = g_idle_add(on_free_runner, shimmer_managed_server_ref(s));
}

static gboolean stats_changed(const ShimmerDispatchStats *a, const ShimmerDispatchStats *b)
{
    return memcmp(a, b, sizeof(*a)) != 0;
}

static gboolean on_tick(gpointer user)
{
    ShimmerManagedServer *s = user;
    if (s->runner == NULL || s->finished)
        return G_SOURCE_CONTINUE;
    GHashTableIter it;
    gpointer value;
    ShimmerManagedServerCounters total = s->departed;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        ShimmerServedClient *c = value;
        ShimmerPeerInfo info;
        if (shimmer_server_get_client(s->runner, c->id, &info) && take_counters(c, &info) &&
            s->listener.client_changed != NULL)
            s->listener.client_changed(s->listener.user, s, c);
        total.bytes_in += c->bytes_in;
        total.bytes_out += c->bytes_out;
        total.packets_in += c->packets_in;
        total.packets_out += c->packets_out;
    }
    read_stats(s);
    if (memcmp(&total, &s->reported, sizeof(total)) != 0 ||
        stats_changed(&s->stats, &s->reported_stats) ||
        g_hash_table_size(s->clients) != s->reported_clients) {
        s->reported = total;
        s->reported_stats = s->stats;
        s->reported_clients = g_hash_table_size(s->clients);
        notify(s, SHIMMER_MANAGED_SERVER_CHANGED_COUNTERS);
    }
    sweep_requests(s);
    return G_SOURCE_CONTINUE;
}

/* ---------- what is shown ---------- */

static char *masked_network(int family, const char *addr, guint bits)
{
    guint8 a[16];
    if (inet_pton(family, addr, a) != 1)
        return NULL;
    guint len = family == AF_INET ? 4 : 16;
    bits = MIN(bits, len * 8);
    for (guint i = 0; i < len; i++) {
        guint keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
        a[i] &= (guint8)(0xff00 >> keep);
    }
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(family, a, text, sizeof(text)) == NULL)
        return NULL;
    return g_strdup_printf("%s/%u", text, bits);
}

static guint mask_bits(const char *netmask)
{
    struct in_addr m;
    if (netmask == NULL || inet_pton(AF_INET, netmask, &m) != 1)
        return 32;
    return (guint)__builtin_popcount(m.s_addr);
}

static GStrv networks_of(const ShimmerConfig *cfg)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    const ShimmerServerPlan *plan = cfg->plan;
    if (plan != NULL && plan->local != NULL) {
        g_autofree char *n = masked_network(AF_INET, plan->local, mask_bits(plan->netmask));
        if (n != NULL)
            g_strv_builder_add(b, n);
    }
    if (plan != NULL && plan->local6 != NULL) {
        g_autofree char *addr = g_strdup(plan->local6);
        char *slash = strchr(addr, '/');
        guint bits = 128;
        if (slash != NULL) {
            *slash = '\0';
            bits = (guint)g_ascii_strtoull(slash + 1, NULL, 10);
        }
        g_autofree char *n = masked_network(AF_INET6, addr, bits);
        if (n != NULL)
            g_strv_builder_add(b, n);
    }
    return g_strv_builder_end(b);
}

/* ---------- life cycle ---------- */

ShimmerManagedServer *shimmer_managed_server_new(ShimmerProfile *profile, const char *id,
                                                 guint owner,
                                                 const ShimmerManagedServerOptions *options,
                                                 const ShimmerManagedServerListener *listener,
                                                 GError **error)
{
    gsize len = 0;
    const char *text = shimmer_profile_get_text(profile, &len);
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    g_autoptr(ShimmerConfig) cfg =
        shimmer_profile_parse_role(shimmer_profile_get_name(profile), text, len,
                                   shimmer_profile_get_owner(profile), TRUE, &usable, &diagnostics);
    if (!usable) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_CONFIG,
                    "the profile cannot be used:\n%s", diagnostics);
        return NULL;
    }
    if (cfg->role != SHIMMER_ROLE_SERVER) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "the profile \"%s\" is a client profile: connect it instead",
                    shimmer_profile_get_name(profile));
        return NULL;
    }
    ShimmerManagedServer *s = g_new0(ShimmerManagedServer, 1);
    s->ref = 1;
    s->profile = shimmer_profile_ref(profile);
    s->id = g_strdup(id);
    s->profile_name = g_strdup(shimmer_profile_get_name(profile));
    s->owner = owner;
    if (options != NULL)
        s->opts = *options;
    if (listener != NULL)
        s->listener = *listener;
    s->cfg = g_steal_pointer(&cfg);
    s->state = "stopped";
    s->state_reason = g_strdup("");
    s->interface = g_strdup("");
    s->listen_address = g_strdup("");
    s->networks = networks_of(s->cfg);
    gboolean pam = s->cfg->pam_service != NULL;
    gboolean bus = s->opts.auth == SHIMMER_MANAGED_SERVER_AUTH_BUS;
    s->auth_mode = pam && bus ? "pam+bus" : pam ? "pam" : bus ? "bus" : "certificate";
    s->max_clients = s->cfg->max_clients > 0 ? (guint)s->cfg->max_clients : 1024;
    s->hand_window_us =
        (gint64)(s->cfg->hand_window >= 0 ? s->cfg->hand_window : 60) * G_USEC_PER_SEC;
    s->clients = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, served_client_free);
    s->requests = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, request_free);
    s->cancel = g_cancellable_new();

    const char *dev = s->cfg->dev;
    ShimmerServerOptions ropts = {
        /* A device the configuration names is its; `dev tun` gets the
         * daemon's pattern. */
        .tun_name =
            dev == NULL || strcmp(dev, "tun") == 0 ? SHIMMER_MANAGED_SERVER_TUN_PATTERN : NULL,
        .ask_every_login = bus,
        .route_protocol = s->opts.route_protocol,
    };
    ShimmerServerCallbacks cb = {
        .log = on_runner_log,
        .auth_request = on_auth_request,
        .client_connected = on_client_connected,
        .client_gone = on_client_gone,
        .finished = on_runner_finished,
        .user = s,
    };
    s->runner = shimmer_server_new(s->cfg, &ropts, &cb, error);
    if (s->runner == NULL) {
        g_prefix_error(error, "the server cannot run: ");
        shimmer_managed_server_unref(s);
        return NULL;
    }
    return s;
}

gboolean shimmer_managed_server_start(ShimmerManagedServer *s, GError **error)
{
    g_return_val_if_fail(!s->started, FALSE);
    s->started = TRUE;
    g_autoptr(GError) e = NULL;
    if (!shimmer_server_start(s->runner, &e)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                    "the server cannot start: %s", e->message);
        s->finished = TRUE;
        g_free(s->state_reason);
        s->state = "failed";
        s->state_reason = g_strdup_printf("the server cannot start: %s", e->message);
        return FALSE;
    }
    g_free(s->interface);
    s->interface = g_strdup(shimmer_server_get_tun_name(s->runner));
    g_free(s->listen_address);
    s->listen_address = g_strdup(shimmer_server_get_listen_address(s->runner));
    s->started_since = unix_now();
    s->tick = g_timeout_add_seconds(TICK_SECONDS, on_tick, s);
    s->state = "running";
    g_autofree char *nets = g_strjoinv(", ", s->networks);
    server_logf(s, SHIMMER_LOG_INFO, "running: %s on %s, tun %s (%s), logins: %s",
                s->cfg->transport == SHIMMER_TRANSPORT_TCP ? "TCP" : "UDP", s->listen_address,
                s->interface, nets, s->auth_mode);
    notify(s, SHIMMER_MANAGED_SERVER_CHANGED_STATE);
    return TRUE;
}

void shimmer_managed_server_stop(ShimmerManagedServer *s, const char *why)
{
    if (!s->started || s->finished || s->stopping)
        return;
    s->stopping = TRUE;
    set_state(s, "stopping", why);
    server_logf(s, SHIMMER_LOG_INFO, "stopping (%s): telling %u client%s to reconnect later", why,
                g_hash_table_size(s->clients), g_hash_table_size(s->clients) == 1 ? "" : "s");
    /* Calls on_runner_finished, now or within 3 s. */
    shimmer_server_stop(s->runner);
}

void shimmer_managed_server_abort(ShimmerManagedServer *s, const char *why)
{
    if (s->finished)
        return;
    /* Never from the runner's own callbacks: the manager aborts from its
     * stop and free. */
    g_clear_pointer(&s->runner, shimmer_server_free);
    end(s, FALSE, why);
}

ShimmerManagedServer *shimmer_managed_server_ref(ShimmerManagedServer *s)
{
    s->ref++;
    return s;
}

void shimmer_managed_server_unref(ShimmerManagedServer *s)
{
    if (s == NULL || --s->ref > 0)
        return;
    g_cancellable_cancel(s->cancel);
    if (s->tick)
        g_source_remove(s->tick);
    shimmer_server_free(s->runner);
    g_hash_table_destroy(s->requests);
    g_hash_table_destroy(s->clients);
    g_object_unref(s->cancel);
    shimmer_config_free(s->cfg);
    shimmer_profile_unref(s->profile);
    g_strfreev(s->networks);
    g_free(s->interface);
    g_free(s->listen_address);
    g_free(s->state_reason);
    g_free(s->profile_name);
    g_free(s->id);
    g_free(s);
}

/* ---------- front-end requests ---------- */

gboolean shimmer_managed_server_kick(ShimmerManagedServer *s, guint64 id, const char *reason,
                                     GError **error)
{
    if (s->runner == NULL || s->finished || !g_hash_table_contains(s->clients, &id)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_FOUND,
                    "no client %" G_GUINT64_FORMAT " on server %s", id, s->id);
        return FALSE;
    }
    g_autofree char *text = client_text(reason);
    /* RESTART,[flags]text: a text that starts with '[' would be read as
     * flags. */
    g_autofree char *message = text[0] == '\0'  ? g_strdup("RESTART")
                               : text[0] == '[' ? g_strdup_printf("RESTART,[]%s", text)
                                                : g_strdup_printf("RESTART,%s", text);
    server_logf(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT " kicked%s%s", id,
                text[0] ? ": " : "", text);
    /* May report the client gone before it returns. */
    if (!shimmer_server_kick(s->runner, id, message)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_FOUND,
                    "no client %" G_GUINT64_FORMAT " on server %s", id, s->id);
        return FALSE;
    }
    return TRUE;
}

gboolean shimmer_managed_server_answer_auth(ShimmerManagedServer *s, guint64 id,
                                            ShimmerAuthDecision decision, const char *reason,
                                            GError **error)
{
    Request *r = s->finished ? NULL : g_hash_table_lookup(s->requests, &id);
    if (r != NULL && r->open) {
        ShimmerPeerInfo info;
        if (!shimmer_server_get_client(s->runner, id, &info)) {
            close_request(s, id, "gone");
            r = NULL;
        }
    }
    if (r == NULL || !r->open) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_FOUND,
                    "no login %" G_GUINT64_FORMAT " waits for a decision on server %s", id, s->id);
        return FALSE;
    }
    g_autofree char *text = client_text(reason);
    switch (decision) {
    case SHIMMER_AUTH_PENDING:
        server_logf(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT ": decision pending%s%s", id,
                    text[0] ? ": " : "", text);
        shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_PENDING, NULL);
        return TRUE;
    case SHIMMER_AUTH_ACCEPT:
        server_logf(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT ": accepted over D-Bus%s%s",
                    id, text[0] ? ": " : "", text);
        close_request(s, id, "accepted");
        shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_ACCEPT, NULL);
        return TRUE;
    case SHIMMER_AUTH_DENY:
    default:
        server_logf(s, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT ": denied over D-Bus%s%s", id,
                    text[0] ? ": " : "", text);
        close_request(s, id, "denied");
        shimmer_server_auth_reply(s->runner, id, SHIMMER_AUTH_DENY, text[0] ? text : NULL);
        return TRUE;
    }
}

static gint compare_requests(gconstpointer a, gconstpointer b)
{
    const ShimmerServerAuthRequest *x = *(const ShimmerServerAuthRequest *const *)a;
    const ShimmerServerAuthRequest *y = *(const ShimmerServerAuthRequest *const *)b;
    return x->requested != y->requested ? (x->requested < y->requested ? -1 : 1)
                                        : (x->id < y->id ? -1 : x->id > y->id);
}

GPtrArray *shimmer_managed_server_list_auth_requests(ShimmerManagedServer *s)
{
    GPtrArray *list = g_ptr_array_new();
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, s->requests);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (((Request *)value)->open)
            g_ptr_array_add(list, &((Request *)value)->view);
    g_ptr_array_sort(list, compare_requests);
    return list;
}

/* ---------- accessors ---------- */

const char *shimmer_managed_server_get_id(ShimmerManagedServer *s)
{
    return s->id;
}

guint shimmer_managed_server_get_owner(ShimmerManagedServer *s)
{
    return s->owner;
}

ShimmerProfile *shimmer_managed_server_get_profile(ShimmerManagedServer *s)
{
    return s->profile;
}

gboolean shimmer_managed_server_is_finished(ShimmerManagedServer *s)
{
    return s->finished;
}

const char *shimmer_managed_server_get_state(ShimmerManagedServer *s)
{
    return s->state;
}

const char *shimmer_managed_server_get_state_reason(ShimmerManagedServer *s)
{
    return s->state_reason;
}

const char *shimmer_managed_server_get_interface(ShimmerManagedServer *s)
{
    return s->interface;
}

const char *shimmer_managed_server_get_listen_address(ShimmerManagedServer *s)
{
    return s->listen_address;
}

const char *shimmer_managed_server_get_protocol(ShimmerManagedServer *s)
{
    return s->cfg->transport == SHIMMER_TRANSPORT_TCP ? "tcp" : "udp";
}

const char *const *shimmer_managed_server_get_networks(ShimmerManagedServer *s)
{
    return (const char *const *)s->networks;
}

const char *shimmer_managed_server_get_auth_mode(ShimmerManagedServer *s)
{
    return s->auth_mode;
}

guint shimmer_managed_server_get_max_clients(ShimmerManagedServer *s)
{
    return s->max_clients;
}

guint shimmer_managed_server_get_client_count(ShimmerManagedServer *s)
{
    return g_hash_table_size(s->clients);
}

guint64 shimmer_managed_server_get_started_since(ShimmerManagedServer *s)
{
    return s->started_since;
}

void shimmer_managed_server_get_counters(ShimmerManagedServer *s, ShimmerManagedServerCounters *out)
{
    ShimmerManagedServerCounters total = s->departed;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const ShimmerServedClient *c = value;
        total.bytes_in += c->bytes_in;
        total.bytes_out += c->bytes_out;
        total.packets_in += c->packets_in;
        total.packets_out += c->packets_out;
    }
    *out = total;
}

void shimmer_managed_server_get_statistics(ShimmerManagedServer *s, const char *const **names,
                                           guint64 *values, guint *n)
{
    static const char *const stat_names[SHIMMER_MANAGED_SERVER_N_STATISTICS] = {
        "first-packets-answered",
        "first-packets-limited",
        "first-packets-invalid",
        "bad-cookie",
        "refused-full",
        "refused-expired",
        "clients-created",
        "no-client",
        "floats",
        "bad-source",
        "no-route",
        "forwarded",
        "dropped-by-clients",
    };
    const ShimmerDispatchStats *st = &s->stats;
    guint64 v[SHIMMER_MANAGED_SERVER_N_STATISTICS] = {
        st->resets_answered,  st->resets_limited,  st->first_invalid, st->bad_cookie,
        st->refused_full,     st->refused_expired, st->peers_created, st->no_peer,
        st->floats,           st->bad_source,      st->no_route,      st->forwarded,
        st->dropped_by_peers,
    };
    memcpy(values, v, sizeof(v));
    *names = stat_names;
    *n = SHIMMER_MANAGED_SERVER_N_STATISTICS;
}

static gint compare_clients(gconstpointer a, gconstpointer b)
{
    guint64 x = (*(const ShimmerServedClient *const *)a)->id;
    guint64 y = (*(const ShimmerServedClient *const *)b)->id;
    return x < y ? -1 : x > y;
}

GPtrArray *shimmer_managed_server_list_clients(ShimmerManagedServer *s)
{
    GPtrArray *list = g_ptr_array_new();
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, s->clients);
    while (g_hash_table_iter_next(&it, NULL, &value))
        g_ptr_array_add(list, value);
    g_ptr_array_sort(list, compare_clients);
    return list;
}

const ShimmerServedClient *shimmer_managed_server_get_client(ShimmerManagedServer *s, guint64 id)
{
    return g_hash_table_lookup(s->clients, &id);
}
