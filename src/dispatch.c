/* SPDX-License-Identifier: MIT */
/*
 * The server's dispatcher: stateless first exchange, routing between the
 * link, the clients' engines and the tun, addresses, timers. See
 * dispatch.h.
 */
#include "dispatch.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <nettle/hmac.h>
#include <string.h>

#include "bytes.h"
#include "ctlwrap.h"
#include "datachan.h"
#include "engine-core.h"
#include "ippool.h"
#include "packet.h"
#include "route-table.h"
#include "secure.h"

#define US             ((gint64)G_USEC_PER_SEC)
#define COOKIE_KEY_LEN 32
/* A first packet larger than this is no client's reset or third packet
 * (the largest is a CONTROL_WKC_V1 with a full WKc and a TLS record). */
#define FIRST_PACKET_MAX    4096
#define DEFAULT_MAX_CLIENTS 1024

typedef struct {
    ShimmerLinkAddr addr;
    guint8 sid[SHIMMER_SESSION_ID_LEN];
} SessionKey;

typedef struct Peer Peer;

struct Peer {
    ShimmerDispatch *d;
    guint64 id;
    guint32 peer_id;
    ShimmerEngine *e;
    SessionKey key; /* address and the client's session id */
    GList *node;    /* in d->all */
    gint64 created, connected_at;
    bool announced; /* CONNECTED emitted */
    bool gone;      /* unlinked; freed once its last packets are out */
    bool dirty;     /* in d->dirty */
    bool asked;     /* AUTH_REQUEST went to the caller */
    guint heap_pos; /* G_MAXUINT: not in the heap */
    gint64 deadline;
    bool has_v4, has_v6;
    guint8 v4[4], v6[16];
    guint v6_bits;
    gint pool_slot; /* -1: none */
    char *v4_text, *v6_text;
    GPtrArray *iroutes; /* char* prefixes this client owns in d->routes */

    /* Offload (shimmer_dispatch_set_offload()). */
    GQueue inbox;            /* GBytes*: control packets for the next job */
    bool ready;              /* in d->ready */
    ShimmerDispatchJob *job; /* taken and not done: the engine is the job's */
    gint collecting;         /* atomic: the engine's lines go to the job */
    /* What came for the engine while it was the job's: done at its end. */
    bool pending_stop;
    bool pending_kick;
    char *pending_kick_message;
    char *pending_replace; /* a newer session of this common name came in */
    bool pending_auth;
    ShimmerAuthDecision pending_decision;
    char *pending_reason;
};

/* A line the engine logged on a job's thread, for the dispatcher's. */
typedef struct {
    ShimmerLogLevel level;
    char *text;
} JobLine;

struct ShimmerDispatchJob {
    Peer *p;
    GQueue packets; /* GBytes* */
    GArray *lines;  /* JobLine */
    guint8 plain[SHIMMER_ENGINE_MAX_PACKET + 64];
};

/* Control packets a client may have waiting for its job: a handshake
 * needs a handful; more is a flood, dropped. */
#define INBOX_MAX 64

struct ShimmerDispatch {
    const ShimmerConfig *cfg;
    ShimmerDispatchHooks hooks;
    ShimmerEngine *shared; /* credentials of every client engine */
    bool is_tcp;
    bool stopping;
    bool check_credentials;
    bool ask_every_login; /* also logins without user name and password */
    guint8 cookie_key[COOKIE_KEY_LEN];
    gint64 slot_seconds;

    /* Wrapping checks of first packets: one probe for the static modes
     * (unwrapping keeps no state), a fresh one per packet for
     * tls-crypt-v2 (it learns the client key). */
    ShimmerCtlwrap *probe;

    guint max_peers;
    /* Lanes of every client engine's data plane (shimmer_dispatch_set_lanes). */
    guint lanes;
    Peer **by_peer_id;
    guint next_peer_id;
    guint n_peers;
    guint64 next_id;
    GHashTable *by_session; /* SessionKey* -> Peer */
    GHashTable *by_addr;    /* ShimmerLinkAddr* -> newest Peer there */
    GHashTable *by_id;      /* guint64* -> Peer */
    GQueue all;             /* Peer*, oldest first */
    ShimmerRouteTable *routes;
    ShimmerIpPool *pool;
    GHashTable *iroute_refs; /* prefix text -> count */

    Peer **heap;
    guint heap_len, heap_cap;
    GQueue dirty; /* Peer* with packets or events to serve */
    GQueue events;

    /* Token bucket for answers to first packets. */
    double tokens;
    double rate, burst;
    gint64 refilled;

    /* Offload: clients with packets waiting and no job out. */
    bool offload;
    GQueue ready;
    guint jobs_out;

    ShimmerDispatchStats stats;
    guint8 scratch[FIRST_PACKET_MAX];
    guint8 plain[SHIMMER_ENGINE_MAX_PACKET + 64];
};

static void dlog(ShimmerDispatch *d, ShimmerLogLevel level, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static void dlog(ShimmerDispatch *d, ShimmerLogLevel level, const char *fmt, ...)
{
    if (d->hooks.log == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    d->hooks.log(d->hooks.user, level, msg);
}

/* ---------- addresses ---------- */

const char *shimmer_link_addr_to_string(const ShimmerLinkAddr *a, char *buf, gsize size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->family == 4)
        inet_ntop(AF_INET, a->addr, ip, sizeof(ip));
    else if (a->family == 6)
        inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
    g_snprintf(buf, size, a->family == 6 ? "[%s]:%u" : "%s:%u", ip, a->port);
    return buf;
}

static guint bytes_hash(const void *p, gsize n)
{
    const guint8 *b = p;
    guint32 h = 2166136261u;
    for (gsize i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static guint addr_hash(gconstpointer k)
{
    return bytes_hash(k, sizeof(ShimmerLinkAddr));
}

static gboolean addr_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(ShimmerLinkAddr)) == 0;
}

static guint session_hash(gconstpointer k)
{
    return bytes_hash(k, sizeof(SessionKey));
}

static gboolean session_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(SessionKey)) == 0;
}

static guint id_hash(gconstpointer k)
{
    guint64 v = *(const guint64 *)k;
    return (guint)(v ^ (v >> 32));
}

static gboolean id_equal(gconstpointer a, gconstpointer b)
{
    return *(const guint64 *)a == *(const guint64 *)b;
}

static char *ip_text(int family, const guint8 *addr)
{
    char buf[INET6_ADDRSTRLEN];
    if (inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, buf, sizeof(buf)) == NULL)
        return g_strdup("?");
    return g_strdup(buf);
}

/* ---------- randomness and time ---------- */

static bool drandom(ShimmerDispatch *d, void *buf, gsize len)
{
    if (d->hooks.random != NULL)
        return d->hooks.random(d->hooks.user, buf, len);
    return gnutls_rnd(GNUTLS_RND_KEY, buf, len) == 0;
}

static gint64 wall(ShimmerDispatch *d)
{
    return d->hooks.realtime != NULL ? d->hooks.realtime(d->hooks.user) : 0;
}

static guint32 wrap_time(gint64 now)
{
    /* As the engine's: the wrap's time only orders packets. */
    return (guint32)(1 + now / US);
}

/* ---------- the token bucket ---------- */

static bool take_token(ShimmerDispatch *d, gint64 now)
{
    if (now > d->refilled) {
        d->tokens = MIN(d->burst, d->tokens + (double)(now - d->refilled) * d->rate / (double)US);
        d->refilled = now;
    }
    if (d->tokens < 1.0) {
        d->stats.resets_limited++;
        return false;
    }
    d->tokens -= 1.0;
    return true;
}

/* ---------- cookies ---------- */

static void cookie(ShimmerDispatch *d, gint64 now, gint offset, const ShimmerLinkAddr *from,
                   const guint8 sid[SHIMMER_SESSION_ID_LEN], guint8 out[SHIMMER_SESSION_ID_LEN])
{
    guint8 slot[4], port[2];
    shimmer_write_be32(slot, (guint32)(now / US / d->slot_seconds + offset));
    port[0] = (guint8)(from->port >> 8);
    port[1] = (guint8)from->port;
    struct hmac_sha256_ctx ctx;
    guint8 mac[SHA256_DIGEST_SIZE];
    hmac_sha256_set_key(&ctx, sizeof(d->cookie_key), d->cookie_key);
    hmac_sha256_update(&ctx, sizeof(slot), slot);
    hmac_sha256_update(&ctx, 1, &from->family);
    hmac_sha256_update(&ctx, sizeof(port), port);
    hmac_sha256_update(&ctx, from->family == 6 ? 16 : 4, from->addr);
    hmac_sha256_update(&ctx, SHIMMER_SESSION_ID_LEN, sid);
    hmac_sha256_digest(&ctx, sizeof(mac), mac);
    memcpy(out, mac, SHIMMER_SESSION_ID_LEN);
    shimmer_wipe(&ctx, sizeof(ctx));
    shimmer_wipe(mac, sizeof(mac));
}

/* The current slot or one of the two before it (a slot is half of
 * hand-window, so a cookie lives between one and 1.5 hand-windows). */
static bool cookie_valid(ShimmerDispatch *d, gint64 now, const ShimmerLinkAddr *from,
                         const guint8 sid[SHIMMER_SESSION_ID_LEN],
                         const guint8 given[SHIMMER_SESSION_ID_LEN])
{
    bool ok = false;
    for (gint offset = -2; offset <= 0; offset++) {
        guint8 c[SHIMMER_SESSION_ID_LEN];
        cookie(d, now, offset, from, sid, c);
        guint8 diff = 0;
        for (gsize i = 0; i < sizeof(c); i++)
            diff |= c[i] ^ given[i];
        ok |= diff == 0;
    }
    return ok;
}

/* ---------- wrapping ---------- */

/* tls-crypt-v2-max-age: the client key's creation time (metadata type 1)
 * must be recent enough; a key without one is refused when a maximum age
 * is set. */
static bool client_key_fresh(ShimmerDispatch *d, const ShimmerCtlwrap *w)
{
    gint days = d->cfg->tls_crypt_v2_max_age;
    if (days <= 0)
        return true;
    gsize len = 0;
    const guint8 *md = shimmer_ctlwrap_get_metadata(w, &len);
    if (md == NULL || len != 9 || md[0] != 0x01) {
        d->stats.refused_expired++;
        dlog(d, SHIMMER_LOG_WARNING,
             "tls-crypt-v2 client key without a creation time refused (tls-crypt-v2-max-age)");
        return false;
    }
    gint64 created =
        (gint64)(((guint64)shimmer_read_be32(md + 1) << 32) | shimmer_read_be32(md + 5));
    if (wall(d) - created > (gint64)days * 86400) {
        d->stats.refused_expired++;
        dlog(d, SHIMMER_LOG_WARNING, "tls-crypt-v2 client key older than %d days refused", days);
        return false;
    }
    return true;
}

/* ---------- the heap of deadlines ---------- */

static void heap_swap(ShimmerDispatch *d, guint a, guint b)
{
    Peer *t = d->heap[a];
    d->heap[a] = d->heap[b];
    d->heap[b] = t;
    d->heap[a]->heap_pos = a;
    d->heap[b]->heap_pos = b;
}

static void heap_up(ShimmerDispatch *d, guint i)
{
    while (i > 0) {
        guint parent = (i - 1) / 2;
        if (d->heap[parent]->deadline <= d->heap[i]->deadline)
            break;
        heap_swap(d, i, parent);
        i = parent;
    }
}

static void heap_down(ShimmerDispatch *d, guint i)
{
    for (;;) {
        guint l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->heap_len && d->heap[l]->deadline < d->heap[m]->deadline)
            m = l;
        if (r < d->heap_len && d->heap[r]->deadline < d->heap[m]->deadline)
            m = r;
        if (m == i)
            break;
        heap_swap(d, i, m);
        i = m;
    }
}

static void heap_remove(ShimmerDispatch *d, Peer *p)
{
    guint i = p->heap_pos;
    if (i == G_MAXUINT)
        return;
    p->heap_pos = G_MAXUINT;
    d->heap_len--;
    if (i == d->heap_len)
        return;
    d->heap[i] = d->heap[d->heap_len];
    d->heap[i]->heap_pos = i;
    heap_up(d, i);
    heap_down(d, d->heap[i]->heap_pos);
}

static void heap_set(ShimmerDispatch *d, Peer *p, gint64 deadline)
{
    if (deadline == G_MAXINT64) {
        heap_remove(d, p);
        p->deadline = deadline;
        return;
    }
    p->deadline = deadline;
    if (p->heap_pos == G_MAXUINT) {
        if (d->heap_len == d->heap_cap) {
            d->heap_cap = MAX(16, d->heap_cap * 2);
            d->heap = g_renew(Peer *, d->heap, d->heap_cap);
        }
        p->heap_pos = d->heap_len;
        d->heap[d->heap_len++] = p;
        heap_up(d, p->heap_pos);
        return;
    }
    heap_up(d, p->heap_pos);
    heap_down(d, p->heap_pos);
}

/* ---------- clients ---------- */

static void push_event(ShimmerDispatch *d, ShimmerDispatchEventType type, Peer *p,
                       const char *reason)
{
    ShimmerDispatchEvent *ev = g_new0(ShimmerDispatchEvent, 1);
    ev->type = type;
    ev->id = p->id;
    ev->peer_id = p->peer_id;
    ev->addr = p->key.addr;
    ev->common_name = g_strdup(shimmer_engine_get_common_name(p->e));
    ev->username = g_strdup(shimmer_engine_get_username(p->e));
    ev->reason = g_strdup(reason);
    g_queue_push_tail(&d->events, ev);
}

void shimmer_dispatch_event_clear(ShimmerDispatchEvent *ev)
{
    g_clear_pointer(&ev->common_name, g_free);
    g_clear_pointer(&ev->username, g_free);
    g_clear_pointer(&ev->password, shimmer_str_free_secret);
    g_clear_pointer(&ev->reason, g_free);
}

static void peer_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    Peer *p = user;
    ShimmerDispatch *d = p->d;
    if (d->hooks.log == NULL)
        return;
    if (g_atomic_int_get(&p->collecting)) {
        /* The job's thread: the line waits for shimmer_dispatch_job_done(). */
        JobLine l = {level, g_strdup(message)};
        g_array_append_val(p->job->lines, l);
        return;
    }
    char a[80];
    shimmer_link_addr_to_string(&p->key.addr, a, sizeof(a));
    /* While a job has the engine, the dispatcher's thread reads none of it. */
    const char *cn = p->job == NULL ? shimmer_engine_get_common_name(p->e) : NULL;
    g_autofree char *line =
        g_strdup_printf("%s%s%s%s: %s", a, cn ? " [" : "", cn ? cn : "", cn ? "]" : "", message);
    d->hooks.log(d->hooks.user, level, line);
}

static gboolean peer_random(gpointer user, guint8 *buf, gsize len)
{
    Peer *p = user;
    return drandom(p->d, buf, len);
}

static gint64 peer_realtime(gpointer user)
{
    Peer *p = user;
    return wall(p->d);
}

static void mark_dirty(ShimmerDispatch *d, Peer *p)
{
    if (!p->dirty) {
        p->dirty = true;
        g_queue_push_tail(&d->dirty, p);
    }
}

static void iroute_ref(ShimmerDispatch *d, const char *prefix, gint delta)
{
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(d->iroute_refs, prefix));
    if (delta > 0)
        g_hash_table_insert(d->iroute_refs, g_strdup(prefix), GUINT_TO_POINTER(n + 1));
    else if (n <= 1)
        g_hash_table_remove(d->iroute_refs, prefix);
    else
        g_hash_table_insert(d->iroute_refs, g_strdup(prefix), GUINT_TO_POINTER(n - 1));
}

/* Gives back the client's addresses and networks. */
static void release_addresses(ShimmerDispatch *d, Peer *p)
{
    if (p->has_v4)
        shimmer_route_table_remove(d->routes, 4, p->v4, 32, p);
    if (p->has_v6)
        shimmer_route_table_remove(d->routes, 6, p->v6, 128, p);
    p->has_v4 = p->has_v6 = false;
    if (p->pool_slot >= 0)
        shimmer_ip_pool_release(d->pool, (guint)p->pool_slot);
    p->pool_slot = -1;
    for (guint i = 0; p->iroutes != NULL && i < p->iroutes->len; i++) {
        const char *text = g_ptr_array_index(p->iroutes, i);
        int fam;
        guint8 a[16];
        guint bits;
        if (shimmer_route_parse_prefix(text, &fam, a, &bits) &&
            shimmer_route_table_remove(d->routes, fam, a, bits, p) && p->announced)
            iroute_ref(d, text, -1);
    }
    if (p->iroutes != NULL)
        g_ptr_array_set_size(p->iroutes, 0);
}

/* Takes P out of every lookup: nothing reaches it any more. It is freed
 * once its last packets went out (write_pkt). */
static void peer_unlink(ShimmerDispatch *d, Peer *p, const char *why)
{
    if (p->gone)
        return;
    p->gone = true;
    if (g_hash_table_lookup(d->by_session, &p->key) == p)
        g_hash_table_remove(d->by_session, &p->key);
    if (g_hash_table_lookup(d->by_addr, &p->key.addr) == p)
        g_hash_table_remove(d->by_addr, &p->key.addr);
    g_hash_table_remove(d->by_id, &p->id);
    if (p->peer_id < d->max_peers && d->by_peer_id[p->peer_id] == p)
        d->by_peer_id[p->peer_id] = NULL;
    release_addresses(d, p);
    heap_remove(d, p);
    g_queue_delete_link(&d->all, p->node);
    p->node = NULL;
    d->n_peers--;
    if (p->ready) {
        g_queue_remove(&d->ready, p);
        p->ready = false;
    }
    g_queue_clear_full(&p->inbox, (GDestroyNotify)g_bytes_unref);
    if (p->announced)
        push_event(d, SHIMMER_DISPATCH_EVENT_GONE, p, why);
    /* A client that was in: the caller tells of the GONE event. One that
     * never got in: only this line says why. */
    peer_log(p, p->announced ? SHIMMER_LOG_DEBUG : SHIMMER_LOG_INFO, why != NULL ? why : "gone");
    mark_dirty(d, p);
}

static void peer_free(Peer *p)
{
    g_queue_clear_full(&p->inbox, (GDestroyNotify)g_bytes_unref);
    g_free(p->pending_kick_message);
    g_free(p->pending_replace);
    g_free(p->pending_reason);
    shimmer_engine_free(p->e);
    g_free(p->v4_text);
    g_free(p->v6_text);
    if (p->iroutes != NULL)
        g_ptr_array_unref(p->iroutes);
    g_free(p);
}

static gboolean v4_taken(gpointer user, const guint8 v4[4], const guint8 *v6)
{
    ShimmerDispatch *d = user;
    return shimmer_route_table_get(d->routes, 4, v4, 32) != NULL ||
           (v6 != NULL && shimmer_route_table_get(d->routes, 6, v6, 128) != NULL);
}

static void assign_v4(Peer *p, const guint8 v4[4])
{
    memcpy(p->v4, v4, 4);
    p->has_v4 = true;
    g_free(p->v4_text);
    p->v4_text = ip_text(4, v4);
}

static void assign_v6(Peer *p, const guint8 v6[16], guint bits)
{
    memcpy(p->v6, v6, 16);
    p->has_v6 = true;
    p->v6_bits = bits;
    g_free(p->v6_text);
    p->v6_text = ip_text(6, v6);
}

/* The client's addresses: its ccd file's, or from the pool. NULL, or why
 * it cannot have any. */
static const char *assign_addresses(ShimmerDispatch *d, Peer *p, const ShimmerCcd *ccd,
                                    const char *name)
{
    release_addresses(d, p);
    guint8 a[16];
    int fam;
    guint bits;
    bool static4 = ccd != NULL && ccd->ifconfig_push_local != NULL &&
                   inet_pton(AF_INET, ccd->ifconfig_push_local, a) == 1;
    if (static4) {
        Peer *owner = shimmer_route_table_get(d->routes, 4, a, 32);
        if (owner != NULL && owner != p)
            return "the client's address is in use";
        assign_v4(p, a);
    }
    bool static6 = ccd != NULL && ccd->ifconfig_ipv6_push != NULL &&
                   shimmer_route_parse_prefix(ccd->ifconfig_ipv6_push, &fam, a, &bits) && fam == 6;
    if (static6) {
        Peer *owner = shimmer_route_table_get(d->routes, 6, a, 128);
        if (owner != NULL && owner != p)
            return "the client's IPv6 address is in use";
        assign_v6(p, a, bits);
    }
    if (d->pool != NULL && ((!static4 && shimmer_ip_pool_has_ipv4(d->pool)) || !static6)) {
        guint slot;
        if (!shimmer_ip_pool_alloc(d->pool, name, v4_taken, d, &slot))
            return "no free address in the pool";
        p->pool_slot = (gint)slot;
        if (!static4 && shimmer_ip_pool_has_ipv4(d->pool)) {
            shimmer_ip_pool_address4(d->pool, slot, a);
            assign_v4(p, a);
        }
        if (!static6 && shimmer_ip_pool_address6(d->pool, slot, a))
            assign_v6(p, a, shimmer_ip_pool_ipv6_bits(d->pool));
    }
    if (p->has_v4)
        shimmer_route_table_add(d->routes, 4, p->v4, 32, p);
    if (p->has_v6)
        shimmer_route_table_add(d->routes, 6, p->v6, 128, p);
    if (!p->has_v4 && !p->has_v6)
        return "no address for the client (no pool and no ifconfig-push)";
    /* The networks behind the client. */
    for (guint i = 0; ccd != NULL && i < ccd->iroutes->len + ccd->iroutes6->len; i++) {
        g_autofree char *text = NULL;
        if (i < ccd->iroutes->len) {
            const ShimmerRoute *r = g_ptr_array_index(ccd->iroutes, i);
            gint b = shimmer_route_netmask_bits(r->netmask);
            text = g_strdup_printf("%s/%d", r->network, b);
        } else {
            const ShimmerRoute6 *r = g_ptr_array_index(ccd->iroutes6, i - ccd->iroutes->len);
            text = g_strdup(r->prefix);
        }
        if (!shimmer_route_parse_prefix(text, &fam, a, &bits))
            continue;
        if (!shimmer_route_table_add(d->routes, fam, a, bits, p)) {
            peer_log(p, SHIMMER_LOG_WARNING, "iroute taken by another client: ignored");
            continue;
        }
        g_ptr_array_add(p->iroutes, g_steal_pointer(&text));
    }
    return NULL;
}

/* The server's own IPv6 address, without its prefix length. */
static char *server_v6(const ShimmerDispatch *d)
{
    const char *l = d->cfg->plan != NULL ? d->cfg->plan->local6 : NULL;
    if (l == NULL)
        return NULL;
    const char *slash = strchr(l, '/');
    return slash ? g_strndup(l, (gsize)(slash - l)) : g_strdup(l);
}

/* duplicate-cn off: a client that comes in again ends its older
 * sessions. */
static void drop_duplicates(ShimmerDispatch *d, Peer *p, const char *name, gint64 now)
{
    if (d->cfg->duplicate_cn || name == NULL)
        return;
    for (GList *l = d->all.head; l != NULL;) {
        Peer *q = l->data;
        l = l->next;
        if (q == p || q->gone)
            continue;
        if (q->job != NULL) {
            /* Its engine is a job's: checked when the job is done. */
            g_free(q->pending_replace);
            q->pending_replace = g_strdup(name);
            continue;
        }
        const char *qn = shimmer_engine_get_common_name(q->e);
        if (qn != NULL && strcmp(qn, name) == 0) {
            peer_log(q, SHIMMER_LOG_INFO, "a new session of the same client replaces this one");
            shimmer_engine_server_kick(q->e, "RESTART", "replaced by a new session", now);
            mark_dirty(d, q);
        }
    }
}

static void handle_auth_request(ShimmerDispatch *d, Peer *p, ShimmerEvent *ev, gint64 now)
{
    const ShimmerConfig *cfg = d->cfg;
    const char *cn = ev->auth_request.common_name;
    g_autoptr(ShimmerCcd) ccd = NULL;
    if (cfg->client_config_dir != NULL && cn != NULL && d->hooks.load_ccd != NULL)
        ccd = d->hooks.load_ccd(d->hooks.user, cn);
    if (ccd != NULL && ccd->disable) {
        shimmer_engine_auth_reply(p->e, SHIMMER_AUTH_DENY, "client-config-dir says disable", now);
        return;
    }
    if (cfg->ccd_exclusive && ccd == NULL) {
        shimmer_engine_auth_reply(p->e, SHIMMER_AUTH_DENY,
                                  "no client-config-dir file (ccd-exclusive)", now);
        return;
    }
    if (d->stopping) {
        shimmer_engine_auth_reply(p->e, SHIMMER_AUTH_DENY, "the server is shutting down", now);
        return;
    }
    const char *name = cn != NULL ? cn : ev->auth_request.username;
    const char *why = assign_addresses(d, p, ccd, name);
    if (why != NULL) {
        shimmer_engine_auth_reply(p->e, SHIMMER_AUTH_DENY, why, now);
        return;
    }
    g_autofree char *mask = NULL;
    if (p->has_v4 && cfg->plan != NULL && cfg->plan->netmask != NULL)
        mask = g_strdup(cfg->plan->netmask);
    else if (p->has_v4 && ccd != NULL)
        mask = g_strdup(ccd->ifconfig_push_netmask);
    g_autofree char *v6 = p->has_v6 ? g_strdup_printf("%s/%u", p->v6_text, p->v6_bits) : NULL;
    g_autofree char *v6_remote = server_v6(d);
    if (ccd != NULL && ccd->ifconfig_ipv6_push_remote != NULL) {
        g_free(v6_remote);
        v6_remote = g_strdup(ccd->ifconfig_ipv6_push_remote);
    }
    ShimmerServerClient client = {
        .ifconfig_local = p->has_v4 ? p->v4_text : NULL,
        .ifconfig_netmask = mask,
        .ifconfig_ipv6 = v6,
        .ifconfig_ipv6_remote = v6_remote,
        .ccd = ccd,
    };
    shimmer_engine_server_set_client(p->e, &client);
    drop_duplicates(d, p, name, now);

    if (ev->auth_request.token || (!d->check_credentials && !d->ask_every_login)) {
        shimmer_engine_auth_reply(p->e, SHIMMER_AUTH_ACCEPT, NULL, now);
        return;
    }
    if (ev->auth_request.username == NULL || ev->auth_request.password == NULL) {
        if (d->check_credentials && !cfg->auth_user_pass_optional) {
            shimmer_engine_auth_reply(p->e, SHIMMER_AUTH_DENY, "no user name and password", now);
            return;
        }
        if (!d->ask_every_login) {
            shimmer_engine_auth_reply(p->e, SHIMMER_AUTH_ACCEPT, NULL, now);
            return;
        }
    }
    ShimmerDispatchEvent *out = g_new0(ShimmerDispatchEvent, 1);
    out->type = SHIMMER_DISPATCH_EVENT_AUTH_REQUEST;
    out->id = p->id;
    out->peer_id = p->peer_id;
    out->addr = p->key.addr;
    out->common_name = g_strdup(cn);
    out->username = g_strdup(ev->auth_request.username);
    out->password = g_steal_pointer(&ev->auth_request.password);
    g_queue_push_tail(&d->events, out);
    p->asked = true;
}

static void announce(ShimmerDispatch *d, Peer *p, gint64 now)
{
    p->announced = true;
    p->connected_at = now;
    for (guint i = 0; i < p->iroutes->len; i++)
        iroute_ref(d, g_ptr_array_index(p->iroutes, i), +1);
    /* The caller says it, with the client's number and addresses, on the
     * CONNECTED event. */
    peer_log(p, SHIMMER_LOG_DEBUG, "connected");
    push_event(d, SHIMMER_DISPATCH_EVENT_CONNECTED, p, NULL);
}

/* Takes P's events; TRUE if there were any. */
static bool peer_events(ShimmerDispatch *d, Peer *p, gint64 now)
{
    ShimmerEvent ev;
    bool any = false;
    while (!p->gone && shimmer_engine_pop_event(p->e, &ev)) {
        any = true;
        switch (ev.type) {
        case SHIMMER_EVENT_STATE:
            if (ev.state == SHIMMER_STATE_CONNECTED && !p->announced)
                announce(d, p, now);
            break;
        case SHIMMER_EVENT_AUTH_REQUEST:
            handle_auth_request(d, p, &ev, now);
            break;
        case SHIMMER_EVENT_EXIT:
            peer_unlink(d, p, ev.exit.reason);
            break;
        default:
            break;
        }
        shimmer_event_clear(&ev);
    }
    return any;
}

/* Takes P's events, queues it for write_pkt and files its next deadline. */
static void peer_after(ShimmerDispatch *d, Peer *p, gint64 now)
{
    peer_events(d, p, now);
    mark_dirty(d, p);
    if (!p->gone)
        heap_set(d, p, shimmer_engine_next_deadline(p->e));
}

static gint alloc_peer_id(ShimmerDispatch *d)
{
    for (guint i = 0; i < d->max_peers; i++) {
        guint id = (d->next_peer_id + i) % d->max_peers;
        if (d->by_peer_id[id] == NULL) {
            d->next_peer_id = (id + 1) % d->max_peers;
            return (gint)id;
        }
    }
    return -1;
}

/* A client that passed the first exchange: its engine, its place in the
 * tables. CLIENT_SID NULL: the session starts with the packet to come. */
static Peer *peer_new(ShimmerDispatch *d, const ShimmerLinkAddr *from,
                      const guint8 sid[SHIMMER_SESSION_ID_LEN],
                      const guint8 own_sid[SHIMMER_SESSION_ID_LEN], bool adopt, gint64 now)
{
    gint peer_id = d->n_peers < d->max_peers ? alloc_peer_id(d) : -1;
    if (peer_id < 0) {
        d->stats.refused_full++;
        dlog(d, SHIMMER_LOG_WARNING, "a new client is refused: max-clients (%u) reached",
             d->max_peers);
        return NULL;
    }
    Peer *p = g_new0(Peer, 1);
    p->d = d;
    p->id = ++d->next_id;
    p->peer_id = (guint32)peer_id;
    p->key.addr = *from;
    memcpy(p->key.sid, sid, SHIMMER_SESSION_ID_LEN);
    p->created = now;
    p->heap_pos = G_MAXUINT;
    p->pool_slot = -1;
    p->iroutes = g_ptr_array_new_with_free_func(g_free);
    ShimmerEngineHooks hooks = {
        .log = peer_log,
        .random = peer_random,
        .realtime = peer_realtime,
        .user = p,
    };
    g_autoptr(GError) error = NULL;
    p->e = shimmer_engine_new_server(d->cfg, d->shared, &hooks, &error);
    if (p->e != NULL && d->lanes > 1)
        shimmer_engine_set_lanes(p->e, d->lanes);
    if (p->e == NULL || !shimmer_engine_server_begin(p->e, own_sid, adopt ? sid : NULL, p->peer_id,
                                                     d->is_tcp, now, &error)) {
        dlog(d, SHIMMER_LOG_ERROR, "cannot set up a client: %s", error->message);
        peer_free(p);
        return NULL;
    }
    d->by_peer_id[peer_id] = p;
    g_hash_table_insert(d->by_session, &p->key, p);
    g_hash_table_insert(d->by_addr, &p->key.addr, p);
    g_hash_table_insert(d->by_id, &p->id, p);
    g_queue_push_tail(&d->all, p);
    p->node = d->all.tail;
    d->n_peers++;
    d->stats.peers_created++;
    peer_log(p, SHIMMER_LOG_DEBUG,
             adopt ? "new client" : "new client (tls-crypt-v2 without cookie)");
    return p;
}

/* ---------- offload ---------- */

/* Whether P's control packets wait for a job: it is not in yet, or a job
 * has its engine (what comes meanwhile follows what the job has). */
static bool offloaded(const ShimmerDispatch *d, const Peer *p)
{
    return d->offload && (!p->announced || p->job != NULL);
}

static void enqueue(ShimmerDispatch *d, Peer *p, const guint8 *pkt, gsize len)
{
    if (g_queue_get_length(&p->inbox) >= INBOX_MAX) {
        d->stats.dropped_by_peers++;
        return;
    }
    g_queue_push_tail(&p->inbox, g_bytes_new(pkt, len));
    if (p->job == NULL && !p->ready) {
        p->ready = true;
        g_queue_push_tail(&d->ready, p);
    }
}

/* The engine of a client that is in takes its waiting packets here. */
static void recv_inbox(ShimmerDispatch *d, Peer *p, gint64 now)
{
    GBytes *b;
    while (!p->gone && (b = g_queue_pop_head(&p->inbox)) != NULL) {
        gsize len = 0, tun_len = 0;
        const guint8 *pkt = g_bytes_get_data(b, &len);
        shimmer_engine_recv(p->e, pkt, len, now, d->plain, sizeof(d->plain), &tun_len, NULL);
        shimmer_wipe(d->plain, sizeof(d->plain));
        g_bytes_unref(b);
    }
}

void shimmer_dispatch_set_offload(ShimmerDispatch *d, gboolean offload)
{
    d->offload = offload;
}

ShimmerDispatchJob *shimmer_dispatch_take_job(ShimmerDispatch *d)
{
    Peer *p = g_queue_pop_head(&d->ready);
    if (p == NULL)
        return NULL;
    p->ready = false;
    ShimmerDispatchJob *job = g_new0(ShimmerDispatchJob, 1);
    job->p = p;
    job->packets = p->inbox;
    g_queue_init(&p->inbox);
    job->lines = g_array_new(FALSE, FALSE, sizeof(JobLine));
    p->job = job;
    /* Its timers wait for the job's end (peer_after() files them again). */
    heap_remove(d, p);
    d->jobs_out++;
    return job;
}

void shimmer_dispatch_job_run(ShimmerDispatchJob *job, gint64 now)
{
    Peer *p = job->p;
    g_atomic_int_set(&p->collecting, 1);
    GBytes *b;
    while ((b = g_queue_pop_head(&job->packets)) != NULL) {
        gsize len = 0, tun_len = 0;
        const guint8 *pkt = g_bytes_get_data(b, &len);
        shimmer_engine_recv(p->e, pkt, len, now, job->plain, sizeof(job->plain), &tun_len, NULL);
        g_bytes_unref(b);
    }
    shimmer_wipe(job->plain, sizeof(job->plain));
    g_atomic_int_set(&p->collecting, 0);
}

void shimmer_dispatch_job_done(ShimmerDispatch *d, ShimmerDispatchJob *job, gint64 now)
{
    Peer *p = job->p;
    g_queue_clear_full(&job->packets, (GDestroyNotify)g_bytes_unref);
    p->job = NULL;
    d->jobs_out--;
    for (guint i = 0; i < job->lines->len; i++) {
        JobLine *l = &g_array_index(job->lines, JobLine, i);
        if (!p->gone)
            peer_log(p, l->level, l->text);
        g_free(l->text);
    }
    g_array_unref(job->lines);
    g_free(job);
    if (p->gone) {
        /* Unlinked meanwhile (its connection closed): freed by write_pkt
         * when queued there, else now. */
        if (!p->dirty)
            peer_free(p);
        return;
    }
    if (p->pending_replace != NULL) {
        const char *cn = shimmer_engine_get_common_name(p->e);
        if (cn != NULL && strcmp(cn, p->pending_replace) == 0 && !d->cfg->duplicate_cn) {
            peer_log(p, SHIMMER_LOG_INFO, "a new session of the same client replaces this one");
            shimmer_engine_server_kick(p->e, "RESTART", "replaced by a new session", now);
        }
        g_clear_pointer(&p->pending_replace, g_free);
    }
    if (p->pending_auth) {
        p->pending_auth = false;
        shimmer_engine_auth_reply(p->e, p->pending_decision, p->pending_reason, now);
        g_clear_pointer(&p->pending_reason, g_free);
    }
    if (p->pending_kick) {
        p->pending_kick = false;
        shimmer_engine_server_kick(p->e, p->pending_kick_message, "disconnected by the server",
                                   now);
        g_clear_pointer(&p->pending_kick_message, g_free);
    }
    if (p->pending_stop) {
        p->pending_stop = false;
        shimmer_engine_stop(p->e, now);
    }
    peer_after(d, p, now);
    if (!p->gone && !g_queue_is_empty(&p->inbox)) {
        if (offloaded(d, p)) {
            p->ready = true;
            g_queue_push_tail(&d->ready, p);
        } else {
            /* In now: the rest is the dispatcher's thread's. */
            recv_inbox(d, p, now);
            peer_after(d, p, now);
        }
    }
}

/* ---------- first packets ---------- */

/* HARD_RESET_SERVER_V2 for the client's reset: acks its pid 0, names the
 * cookie as our session, msg pid 0, and with RESEND_WKC the early
 * negotiation flag. */
static gsize stateless_reply(ShimmerDispatch *d, ShimmerCtlwrap *w, const ShimmerLinkAddr *from,
                             const guint8 client_sid[SHIMMER_SESSION_ID_LEN], bool resend_wkc,
                             gint64 now, guint8 *out, gsize cap)
{
    guint8 tlv[6];
    shimmer_write_be16(tlv, SHIMMER_CTLWRAP_TLV_EARLY_NEG_FLAGS);
    shimmer_write_be16(tlv + 2, 2);
    shimmer_write_be16(tlv + 4, SHIMMER_CTLWRAP_EARLY_NEG_FLAG_RESEND_WKC);
    ShimmerControlPacket r = {0};
    r.opcode = SHIMMER_OP_HARD_RESET_SERVER_V2;
    r.key_id = 0;
    cookie(d, now, 0, from, client_sid, r.session_id);
    r.n_acks = 1;
    r.acks[0] = 0;
    memcpy(r.remote_session_id, client_sid, SHIMMER_SESSION_ID_LEN);
    r.has_msg_pid = TRUE;
    r.msg_pid = 0;
    if (resend_wkc) {
        r.payload = tlv;
        r.payload_len = sizeof(tlv);
    }
    guint8 plain[128];
    gsize plain_len = 0, len = 0;
    if (shimmer_packet_build_control(&r, plain, sizeof(plain), &plain_len) != SHIMMER_PACKET_OK)
        return 0;
    /* Every answer is the first packet of a session: replay pid 1. */
    shimmer_ctlwrap_set_next_pid(w, 1);
    if (shimmer_ctlwrap_wrap(w, plain, plain_len, wrap_time(now), out, cap, &len) !=
        SHIMMER_CTLWRAP_OK)
        return 0;
    return len;
}

static ShimmerDispatchResult first_packet(ShimmerDispatch *d, const ShimmerLinkAddr *from,
                                          const guint8 *pkt, gsize len, gint64 now, guint8 *out,
                                          gsize cap, gsize *out_len, ShimmerLinkAddr *to)
{
    guint op = shimmer_packet_opcode(pkt[0]);
    bool reset = op == SHIMMER_OP_HARD_RESET_CLIENT_V2 || op == SHIMMER_OP_HARD_RESET_CLIENT_V3;
    bool third =
        op == SHIMMER_OP_CONTROL_V1 || op == SHIMMER_OP_ACK_V1 || op == SHIMMER_OP_CONTROL_WKC_V1;
    if (d->stopping || (!reset && !third) || shimmer_packet_key_id(pkt[0]) != 0 ||
        len > sizeof(d->scratch) || len < SHIMMER_PACKET_MIN_CONTROL_LEN) {
        d->stats.no_peer++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    /* Spend no crypto on a reset that would not be answered. */
    if (reset && !take_token(d, now))
        return SHIMMER_DISPATCH_DROPPED;
    bool v2 = d->cfg->wrap == SHIMMER_WRAP_TLS_CRYPT_V2;
    g_autoptr(ShimmerCtlwrap) fresh = v2 ? shimmer_core_make_server_wrap(d->cfg) : NULL;
    ShimmerCtlwrap *w = v2 ? fresh : d->probe;
    gsize plain_len = 0;
    ShimmerCtlwrapInfo info;
    ShimmerControlPacket cp;
    ShimmerDispatchResult result = SHIMMER_DISPATCH_DROPPED;
    if (shimmer_ctlwrap_unwrap(w, pkt, len, d->scratch, sizeof(d->scratch), &plain_len, &info) !=
            SHIMMER_CTLWRAP_OK ||
        shimmer_packet_parse_control(d->scratch, plain_len, &cp) != SHIMMER_PACKET_OK) {
        d->stats.first_invalid++;
        goto out;
    }
    if (v2 && (op == SHIMMER_OP_HARD_RESET_CLIENT_V3 || op == SHIMMER_OP_CONTROL_WKC_V1) &&
        !client_key_fresh(d, w))
        goto out;
    if (reset) {
        bool early =
            op == SHIMMER_OP_HARD_RESET_CLIENT_V3 &&
            (info.replay_pid & SHIMMER_CTLWRAP_EARLY_NEG_MASK) == SHIMMER_CTLWRAP_EARLY_NEG_START;
        if (op == SHIMMER_OP_HARD_RESET_CLIENT_V3 && !early) {
            /* A tls-crypt-v2 client that cannot send its key again: the
             * key is in this packet only, so the session starts here. */
            guint8 own[SHIMMER_SESSION_ID_LEN];
            cookie(d, now, 0, from, cp.session_id, own);
            Peer *p = peer_new(d, from, cp.session_id, own, false, now);
            if (p != NULL) {
                if (d->offload) {
                    peer_after(d, p, now);
                    enqueue(d, p, pkt, len);
                } else {
                    shimmer_engine_recv(p->e, pkt, len, now, d->plain, sizeof(d->plain), out_len,
                                        NULL);
                    *out_len = 0;
                    peer_after(d, p, now);
                }
                result = SHIMMER_DISPATCH_CONSUMED;
            }
            goto out;
        }
        gsize n = stateless_reply(d, w, from, cp.session_id, early, now, out, cap);
        if (n == 0)
            goto out;
        d->stats.resets_answered++;
        *out_len = n;
        *to = *from;
        result = SHIMMER_DISPATCH_LINK;
        goto out;
    }
    /* The third packet: it acks our reset (pid 0, or 1 at most) and names
     * the cookie; its own message is the client's first after its reset. */
    bool acks_ok = cp.n_acks > 0;
    for (guint i = 0; i < cp.n_acks; i++)
        acks_ok &= cp.acks[i] <= 1;
    if (!acks_ok || (cp.has_msg_pid && cp.msg_pid > 1) ||
        !cookie_valid(d, now, from, cp.session_id, cp.remote_session_id)) {
        d->stats.bad_cookie++;
        goto out;
    }
    Peer *p = peer_new(d, from, cp.session_id, cp.remote_session_id, true, now);
    if (p == NULL)
        goto out;
    if (d->offload) {
        /* Its ServerHello (a key exchange and a signature) is a job's. */
        peer_after(d, p, now);
        enqueue(d, p, pkt, len);
    } else {
        shimmer_engine_recv(p->e, pkt, len, now, d->plain, sizeof(d->plain), out_len, NULL);
        *out_len = 0;
        peer_after(d, p, now);
    }
    result = SHIMMER_DISPATCH_CONSUMED;
out:
    shimmer_wipe(d->scratch, plain_len);
    return result;
}

/* ---------- data ---------- */

/* The source and destination of an IP packet: FALSE if it is none. */
static bool ip_addrs(const guint8 *ip, gsize len, int *family, const guint8 **src,
                     const guint8 **dst)
{
    if (len >= 20 && ip[0] >> 4 == 4) {
        *family = 4;
        *src = ip + 12;
        *dst = ip + 16;
        return true;
    }
    if (len >= 40 && ip[0] >> 4 == 6) {
        *family = 6;
        *src = ip + 8;
        *dst = ip + 24;
        return true;
    }
    return false;
}

/* Follows a client to a new address once a packet authenticated there. */
static void peer_float(ShimmerDispatch *d, Peer *p, const ShimmerLinkAddr *from)
{
    if (d->is_tcp || addr_equal(&p->key.addr, from))
        return;
    char a[80], b[80];
    shimmer_link_addr_to_string(&p->key.addr, a, sizeof(a));
    shimmer_link_addr_to_string(from, b, sizeof(b));
    if (g_hash_table_lookup(d->by_session, &p->key) == p)
        g_hash_table_remove(d->by_session, &p->key);
    if (g_hash_table_lookup(d->by_addr, &p->key.addr) == p)
        g_hash_table_remove(d->by_addr, &p->key.addr);
    p->key.addr = *from;
    g_hash_table_replace(d->by_session, &p->key, p);
    g_hash_table_replace(d->by_addr, &p->key.addr, p);
    d->stats.floats++;
    dlog(d, SHIMMER_LOG_INFO, "client %" G_GUINT64_FORMAT " floated from %s to %s", p->id, a, b);
    push_event(d, SHIMMER_DISPATCH_EVENT_FLOATED, p, NULL);
}

static ShimmerDispatchResult peer_data(ShimmerDispatch *d, Peer *p, const ShimmerLinkAddr *from,
                                       const guint8 *pkt, gsize len, gint64 now, guint8 *out,
                                       gsize cap, gsize *out_len, ShimmerLinkAddr *to)
{
    gsize plain_len = 0;
    ShimmerRecvResult r = shimmer_engine_recv(p->e, pkt, len, now, out, cap, &plain_len, NULL);
    if (r == SHIMMER_RECV_DROPPED) {
        d->stats.dropped_by_peers++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    peer_float(d, p, from);
    if (r == SHIMMER_RECV_CONSUMED) {
        peer_after(d, p, now);
        return SHIMMER_DISPATCH_CONSUMED;
    }
    int fam;
    const guint8 *src, *dst;
    if (!ip_addrs(out, plain_len, &fam, &src, &dst) ||
        shimmer_route_table_lookup(d->routes, fam, src) != p) {
        d->stats.bad_source++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    if (d->cfg->client_to_client) {
        Peer *q = shimmer_route_table_lookup(d->routes, fam, dst);
        if (q != NULL && q != p && q->announced) {
            gsize n = 0;
            memcpy(d->plain, out, plain_len);
            if (shimmer_engine_encrypt(q->e, d->plain, plain_len, out, cap, now, &n) !=
                SHIMMER_ENCRYPT_OK)
                return SHIMMER_DISPATCH_DROPPED;
            d->stats.forwarded++;
            *out_len = n;
            *to = q->key.addr;
            return SHIMMER_DISPATCH_LINK;
        }
    }
    *out_len = plain_len;
    return SHIMMER_DISPATCH_TUN;
}

ShimmerDispatchResult shimmer_dispatch_recv(ShimmerDispatch *d, const ShimmerLinkAddr *from,
                                            const guint8 *pkt, gsize len, gint64 now, guint8 *out,
                                            gsize cap, gsize *out_len, ShimmerLinkAddr *to)
{
    *out_len = 0;
    if (len == 0 || cap < SHIMMER_ENGINE_MAX_PACKET) {
        d->stats.first_invalid++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    guint op = shimmer_packet_opcode(pkt[0]);
    Peer *p = NULL;
    if (op == SHIMMER_OP_DATA_V2) {
        guint32 id = len >= 4 ? ((guint32)pkt[1] << 16 | (guint32)pkt[2] << 8 | pkt[3])
                              : SHIMMER_DATACHAN_PEER_ID_NONE;
        if (id < d->max_peers)
            p = d->by_peer_id[id];
        else if (id == SHIMMER_DATACHAN_PEER_ID_NONE)
            p = g_hash_table_lookup(d->by_addr, from);
        /* Over TCP a peer id names nobody on another connection. */
        if (p != NULL && d->is_tcp && !addr_equal(&p->key.addr, from))
            p = NULL;
    } else if (op == SHIMMER_OP_DATA_V1) {
        p = g_hash_table_lookup(d->by_addr, from);
    } else if (shimmer_packet_opcode_is_control(op)) {
        if (len < SHIMMER_PACKET_MIN_CONTROL_LEN) {
            d->stats.first_invalid++;
            return SHIMMER_DISPATCH_DROPPED;
        }
        SessionKey k;
        memset(&k, 0, sizeof(k));
        k.addr = *from;
        memcpy(k.sid, pkt + 1, SHIMMER_SESSION_ID_LEN);
        p = g_hash_table_lookup(d->by_session, &k);
        if (p == NULL)
            return first_packet(d, from, pkt, len, now, out, cap, out_len, to);
        if (offloaded(d, p)) {
            enqueue(d, p, pkt, len);
            return SHIMMER_DISPATCH_CONSUMED;
        }
        gsize tun_len = 0;
        ShimmerRecvResult r =
            shimmer_engine_recv(p->e, pkt, len, now, d->plain, sizeof(d->plain), &tun_len, NULL);
        if (r == SHIMMER_RECV_DROPPED) {
            d->stats.dropped_by_peers++;
            return SHIMMER_DISPATCH_DROPPED;
        }
        peer_after(d, p, now);
        return SHIMMER_DISPATCH_CONSUMED;
    }
    if (p == NULL || p->gone) {
        d->stats.no_peer++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    if (p->job != NULL) {
        /* Data before its handshake ended: nothing to decrypt it with. */
        d->stats.dropped_by_peers++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    return peer_data(d, p, from, pkt, len, now, out, cap, out_len, to);
}

ShimmerDispatchResult shimmer_dispatch_encrypt(ShimmerDispatch *d, const guint8 *ip, gsize len,
                                               gint64 now, guint8 *out, gsize cap, gsize *out_len,
                                               ShimmerLinkAddr *to)
{
    *out_len = 0;
    int fam;
    const guint8 *src, *dst;
    if (!ip_addrs(ip, len, &fam, &src, &dst)) {
        d->stats.no_route++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    Peer *p = shimmer_route_table_lookup(d->routes, fam, dst);
    if (p == NULL || !p->announced) {
        d->stats.no_route++;
        return SHIMMER_DISPATCH_DROPPED;
    }
    if (shimmer_engine_encrypt(p->e, ip, len, out, cap, now, out_len) != SHIMMER_ENCRYPT_OK)
        return SHIMMER_DISPATCH_DROPPED;
    *to = p->key.addr;
    return SHIMMER_DISPATCH_LINK;
}

/* ---------- output, events, timers ---------- */

gssize shimmer_dispatch_write_pkt(ShimmerDispatch *d, guint8 *buf, gsize cap, ShimmerLinkAddr *to,
                                  gint64 now)
{
    if (cap < SHIMMER_ENGINE_MAX_PACKET)
        return -1;
    Peer *p;
    while ((p = g_queue_peek_head(&d->dirty)) != NULL) {
        if (p->job != NULL) {
            /* Its job's end queues it again (or frees it, gone). */
            g_queue_pop_head(&d->dirty);
            p->dirty = false;
            continue;
        }
        gssize n = shimmer_engine_write_pkt(p->e, buf, cap, now);
        if (n > 0) {
            *to = p->key.addr;
            return n;
        }
        /* Events of a client touched from elsewhere (a duplicate's new
         * session kicked it) may bring more to send. */
        if (!p->gone && peer_events(d, p, now))
            continue;
        g_queue_pop_head(&d->dirty);
        p->dirty = false;
        if (p->gone) {
            peer_free(p);
            continue;
        }
        /* Writing may have moved its timers (a retransmission, a ping). */
        heap_set(d, p, shimmer_engine_next_deadline(p->e));
    }
    return 0;
}

gboolean shimmer_dispatch_pop_event(ShimmerDispatch *d, ShimmerDispatchEvent *ev)
{
    ShimmerDispatchEvent *q = g_queue_pop_head(&d->events);
    if (q == NULL)
        return FALSE;
    *ev = *q;
    g_free(q);
    return TRUE;
}

gint64 shimmer_dispatch_next_deadline(ShimmerDispatch *d)
{
    if (!g_queue_is_empty(&d->dirty))
        return 0;
    return d->heap_len > 0 ? d->heap[0]->deadline : G_MAXINT64;
}

void shimmer_dispatch_handle_timeout(ShimmerDispatch *d, gint64 now)
{
    /* Each client due is served once per call, even if its new deadline is
     * due again at once. */
    g_autoptr(GPtrArray) due = g_ptr_array_new();
    while (d->heap_len > 0 && d->heap[0]->deadline <= now) {
        Peer *p = d->heap[0];
        heap_remove(d, p);
        g_ptr_array_add(due, p);
    }
    for (guint i = 0; i < due->len; i++) {
        Peer *p = g_ptr_array_index(due, i);
        if (p->gone)
            continue;
        shimmer_engine_handle_timeout(p->e, now);
        peer_after(d, p, now);
    }
}

/* ---------- the caller's calls ---------- */

static Peer *peer_by_id(const ShimmerDispatch *d, guint64 id)
{
    Peer *p = g_hash_table_lookup(d->by_id, &id);
    return p != NULL && !p->gone ? p : NULL;
}

void shimmer_dispatch_auth_reply(ShimmerDispatch *d, guint64 id, ShimmerAuthDecision decision,
                                 const char *reason, gint64 now)
{
    Peer *p = peer_by_id(d, id);
    if (p == NULL || !p->asked)
        return;
    if (decision != SHIMMER_AUTH_PENDING)
        p->asked = false;
    if (p->job != NULL) {
        p->pending_auth = true;
        p->pending_decision = decision;
        g_free(p->pending_reason);
        p->pending_reason = g_strdup(reason);
        return;
    }
    shimmer_engine_auth_reply(p->e, decision, reason, now);
    peer_after(d, p, now);
}

gboolean shimmer_dispatch_kick(ShimmerDispatch *d, guint64 id, const char *message, gint64 now)
{
    Peer *p = peer_by_id(d, id);
    if (p == NULL)
        return FALSE;
    if (p->job != NULL) {
        p->pending_kick = true;
        g_free(p->pending_kick_message);
        p->pending_kick_message = g_strdup(message);
        return TRUE;
    }
    shimmer_engine_server_kick(p->e, message, "disconnected by the server", now);
    peer_after(d, p, now);
    return TRUE;
}

void shimmer_dispatch_link_closed(ShimmerDispatch *d, const ShimmerLinkAddr *from, gint64 now)
{
    for (GList *l = d->all.head; l != NULL;) {
        Peer *p = l->data;
        l = l->next;
        if (addr_equal(&p->key.addr, from))
            peer_unlink(d, p, "the connection closed");
    }
}

void shimmer_dispatch_stop(ShimmerDispatch *d, gint64 now)
{
    d->stopping = true;
    for (GList *l = d->all.head; l != NULL;) {
        Peer *p = l->data;
        l = l->next;
        if (p->job != NULL) {
            p->pending_stop = true;
            continue;
        }
        shimmer_engine_stop(p->e, now);
        peer_after(d, p, now);
    }
}

void shimmer_dispatch_set_rate_limit(ShimmerDispatch *d, guint per_second, guint burst)
{
    d->rate = per_second;
    d->burst = MAX(burst, 1);
    d->tokens = d->burst;
}

void shimmer_dispatch_set_check_credentials(ShimmerDispatch *d, gboolean check)
{
    d->check_credentials = check;
}

void shimmer_dispatch_set_ask_every_login(ShimmerDispatch *d, gboolean ask)
{
    d->ask_every_login = ask;
}

guint shimmer_dispatch_get_n_peers(const ShimmerDispatch *d)
{
    return d->n_peers;
}

GArray *shimmer_dispatch_list_peers(const ShimmerDispatch *d)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint64));
    for (GList *l = d->all.head; l != NULL; l = l->next)
        g_array_append_val(ids, ((Peer *)l->data)->id);
    return ids;
}

gboolean shimmer_dispatch_get_peer(const ShimmerDispatch *d, guint64 id, ShimmerPeerInfo *out)
{
    Peer *p = peer_by_id(d, id);
    if (p == NULL)
        return FALSE;
    memset(out, 0, sizeof(*out));
    out->id = p->id;
    out->peer_id = p->peer_id;
    out->addr = p->key.addr;
    out->ipv4 = p->has_v4 ? p->v4_text : NULL;
    out->ipv6 = p->has_v6 ? p->v6_text : NULL;
    out->iroutes = p->iroutes;
    out->created = p->created;
    out->connected = p->connected_at;
    if (p->job != NULL) {
        /* In its handshake, on another thread: the engine is not read. */
        out->state = SHIMMER_STATE_AUTHENTICATING;
        return TRUE;
    }
    out->state = shimmer_engine_get_state(p->e);
    out->common_name = shimmer_engine_get_common_name(p->e);
    out->username = shimmer_engine_get_username(p->e);
    out->cipher = shimmer_engine_get_cipher(p->e);
    shimmer_engine_get_stats(p->e, &out->stats);
    return TRUE;
}

gboolean shimmer_dispatch_get_peer_routes(const ShimmerDispatch *d, guint64 id, const char **ipv4,
                                          const char **ipv6, const GPtrArray **iroutes)
{
    Peer *p = peer_by_id(d, id);
    if (p == NULL)
        return FALSE;
    *ipv4 = p->has_v4 ? p->v4_text : NULL;
    *ipv6 = p->has_v6 ? p->v6_text : NULL;
    *iroutes = p->iroutes;
    return TRUE;
}

void shimmer_dispatch_get_stats(const ShimmerDispatch *d, ShimmerDispatchStats *out)
{
    *out = d->stats;
}

guint shimmer_dispatch_get_mss(const ShimmerDispatch *d, gboolean ipv6)
{
    /* Every client's engine has the configuration's mssfix and transport,
     * as the engine holding the credentials has. */
    return shimmer_engine_get_mss(d->shared, ipv6);
}

GPtrArray *shimmer_dispatch_list_iroutes(const ShimmerDispatch *d)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, d->iroute_refs);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(out, g_strdup(k));
    return out;
}

/* ---------- construction ---------- */

ShimmerDispatch *shimmer_dispatch_new(const ShimmerConfig *cfg, const ShimmerDispatchHooks *hooks,
                                      GError **error)
{
    if (hooks == NULL || hooks->realtime == NULL) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "the dispatcher needs a wall clock");
        return NULL;
    }
    ShimmerDispatch *d = g_new0(ShimmerDispatch, 1);
    d->cfg = cfg;
    d->hooks = *hooks;
    ShimmerEngineHooks eh = {
        .log = hooks->log,
        .random = hooks->random,
        .realtime = hooks->realtime,
        .user = hooks->user,
    };
    d->shared = shimmer_engine_new_server(cfg, NULL, &eh, error);
    if (d->shared == NULL) {
        g_free(d);
        return NULL;
    }
    if (!drandom(d, d->cookie_key, sizeof(d->cookie_key))) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "no random numbers for the cookie key");
        shimmer_dispatch_free(d);
        return NULL;
    }
    d->probe = shimmer_core_make_server_wrap(cfg);
    if (d->probe == NULL) {
        g_set_error(error, SHIMMER_ENGINE_ERROR, 0, "cannot set up the control channel wrapping");
        shimmer_dispatch_free(d);
        return NULL;
    }
    d->is_tcp = cfg->transport == SHIMMER_TRANSPORT_TCP;
    /* Its transport only shapes get_mss(): the overhead to allow for. */
    d->shared->is_tcp = d->is_tcp;
    gint hw = cfg->hand_window >= 0 ? cfg->hand_window : 60;
    d->slot_seconds = MAX(1, (hw + 1) / 2);
    d->max_peers = cfg->max_clients > 0 ? (guint)cfg->max_clients : DEFAULT_MAX_CLIENTS;
    d->max_peers = MIN(d->max_peers, SHIMMER_DATACHAN_PEER_ID_NONE);
    d->by_peer_id = g_new0(Peer *, d->max_peers);
    d->by_session = g_hash_table_new(session_hash, session_equal);
    d->by_addr = g_hash_table_new(addr_hash, addr_equal);
    d->by_id = g_hash_table_new(id_hash, id_equal);
    d->routes = shimmer_route_table_new();
    d->pool = shimmer_ip_pool_new(cfg->plan);
    d->iroute_refs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    d->check_credentials = cfg->pam_service != NULL;
    shimmer_dispatch_set_rate_limit(d, 100, 200);
    if (cfg->connect_freq_initial_max > 0 && cfg->connect_freq_initial_seconds > 0) {
        /* OpenVPN's connect-freq-initial: MAX answers per SECONDS. */
        d->rate = (double)cfg->connect_freq_initial_max / cfg->connect_freq_initial_seconds;
        d->burst = cfg->connect_freq_initial_max;
        d->tokens = d->burst;
    }
    return d;
}

void shimmer_dispatch_free(ShimmerDispatch *d)
{
    if (d == NULL)
        return;
    /* Every job taken is done first (dispatch.h): a job out still has a
     * client's engine. */
    g_return_if_fail(d->jobs_out == 0);
    g_queue_clear(&d->ready);
    Peer *p;
    while ((p = g_queue_pop_head(&d->dirty)) != NULL) {
        p->dirty = false;
        if (p->gone)
            peer_free(p);
    }
    while ((p = g_queue_pop_head(&d->all)) != NULL)
        peer_free(p);
    ShimmerDispatchEvent *ev;
    while ((ev = g_queue_pop_head(&d->events)) != NULL) {
        shimmer_dispatch_event_clear(ev);
        g_free(ev);
    }
    g_clear_pointer(&d->by_session, g_hash_table_unref);
    g_clear_pointer(&d->by_addr, g_hash_table_unref);
    g_clear_pointer(&d->by_id, g_hash_table_unref);
    g_clear_pointer(&d->iroute_refs, g_hash_table_unref);
    shimmer_route_table_free(d->routes);
    shimmer_ip_pool_free(d->pool);
    shimmer_ctlwrap_free(d->probe);
    shimmer_engine_free(d->shared);
    g_free(d->by_peer_id);
    g_free(d->heap);
    shimmer_wipe(d->cookie_key, sizeof(d->cookie_key));
    shimmer_wipe(d->plain, sizeof(d->plain));
    g_free(d);
}

void shimmer_dispatch_set_lanes(ShimmerDispatch *d, guint n_lanes)
{
    d->lanes = n_lanes;
}

ShimmerDataPlane *shimmer_dispatch_get_dataplane(const ShimmerDispatch *d, guint64 id)
{
    Peer *p = g_hash_table_lookup(d->by_id, &id);
    return p != NULL && !p->gone && p->job == NULL ? shimmer_engine_get_dataplane(p->e) : NULL;
}
