/* SPDX-License-Identifier: MIT */
/*
 * The engine's data plane: the data keys of one session, and encryption and
 * decryption of data packets with them, callable from several threads at
 * once (engine.h, "The data plane").
 *
 * The engine's thread owns every change: keys installed, rotated, expired,
 * removed, the channel opened and closed. Each change publishes a new
 * immutable snapshot (which keys exist, which one sends, the framing); a
 * worker takes a reference to the current snapshot at the start of a batch
 * and drops it at the end, so a key it is using stays alive until then even
 * if the engine retired it meanwhile. The engine's own thread (lane 0) reads
 * the current snapshot directly: nobody else replaces it.
 *
 * Per packet a worker touches only its own lane's cipher contexts and
 * counters, the key's packet-id counter (one atomic compare-and-swap) and,
 * when it receives, the key's replay window under a mutex that only two
 * lanes receiving for the same key ever contend for. (pthread mutexes rather
 * than GMutex: as cheap, and visible to ThreadSanitizer.)
 */
#include "engine-core.h"

#include <pthread.h>
#include <time.h>
#include <string.h>

#include "bytes.h"
#include "compress.h"

/* Counters that one lane writes and the engine's thread reads: relaxed
 * atomics, so that neither a torn value nor a data race is possible and
 * the writer pays no more than a plain store. */
#define PEEK(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define POKE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define BUMP(x, v) POKE(x, PEEK(x) + (v))

#define N_KEY_IDS  8
#define CACHE_LINE 64

static const guint8 ping_magic[16] = {0x2a, 0x18, 0x7b, 0xf3, 0x64, 0x1e, 0xb4, 0xcb,
                                      0x07, 0xed, 0x2d, 0x0a, 0x98, 0x1f, 0xc7, 0x48};
static const guint8 occ_magic[16] = {0x28, 0x7f, 0x34, 0x6b, 0xd4, 0xef, 0x7a, 0x81,
                                     0x2d, 0x56, 0xb8, 0xd3, 0xaf, 0xc5, 0x45, 0x9c};
#define OCC_EXIT 6

/* What one lane did with one key. */
typedef struct {
    guint64 bytes, packets;
} __attribute__((aligned(CACHE_LINE))) Usage;

typedef struct {
    gint ref;
    guint8 key_id;
    guint n_lanes;
    ShimmerDatachanKey *enc, *dec;
    pthread_mutex_t replay_lock;
    ShimmerReplay replay;
    /* The engine was woken for this key's limits already. */
    gint signalled;
    /* A data packet from the peer opened with this key. */
    gint heard;
    /* Sending in packet-id order across lanes (shimmer_dataplane_reserve):
     * tickets are handed out with the ids, and the lane whose ticket is
     * `turn` sends next. */
    pthread_mutex_t seq_lock;
    pthread_cond_t seq_cond;
    guint64 next_ticket, turn;
    Usage usage[];
} KeySet;

typedef struct {
    gint ref;
    KeySet *slot[N_KEY_IDS];
    gint64 expires[N_KEY_IDS]; /* 0: not a lame duck */
    gint primary;              /* the sending key id; -1: none */
    bool open;                 /* tun packets are taken (CONNECTED) */
    bool v2;
    guint32 peer_id;
    ShimmerCompFraming comp;
    ShimmerCompAlgorithm comp_alg;
} Snapshot;

typedef struct {
    Snapshot *snap; /* lanes >= 1, between begin and end */
    /* The lane's reservation: ids RES_NEXT..RES_END of RES_KEY, and its
     * ticket. */
    KeySet *res_key;
    guint32 res_next, res_end;
    guint64 ticket;
    bool has_ticket;
    guint64 turn_timeouts;
    guint64 tun_bytes_in, tun_packets_in, tun_bytes_out, tun_packets_out;
    guint64 link_bytes_in, link_bytes_out;
    guint64 dropped[SHIMMER_DROP_N_REASONS];
    guint64 not_encrypted[SHIMMER_ENCRYPT_N_RESULTS];
    gint64 last_sent, last_recv;
    /* A compressed packet decodes here (the lane's own; allocated at the
     * first one: servers rarely compress). */
    guint8 *decomp;
    guint8 *decomp_tmp;
} __attribute__((aligned(CACHE_LINE))) Lane;

/* Room for a decompressed packet. */
#define DECOMP_CAP (SHIMMER_ENGINE_MAX_PLAIN + 64)

struct ShimmerDataPlane {
    gint ref;
    pthread_mutex_t lock; /* guards `current` against a lane taking it as it changes */
    Snapshot *current;
    guint n_lanes;
    Lane *lanes;
    guint64 reneg_bytes, reneg_packets;
    guint replay_window, replay_backtrack_s;
    gint peer_exit;
    gint comp_seen;
    ShimmerDataPlaneWake wake;
    gpointer wake_user;
};

/* ---------- keys and snapshots ---------- */

static KeySet *keyset_ref(KeySet *k)
{
    g_atomic_int_inc(&k->ref);
    return k;
}

static void keyset_unref(KeySet *k)
{
    if (k == NULL || !g_atomic_int_dec_and_test(&k->ref))
        return;
    shimmer_datachan_key_free(k->enc);
    shimmer_datachan_key_free(k->dec);
    pthread_mutex_destroy(&k->replay_lock);
    pthread_mutex_destroy(&k->seq_lock);
    pthread_cond_destroy(&k->seq_cond);
    shimmer_wipe(k, sizeof(*k));
    g_aligned_free(k);
}

static Snapshot *snap_new(void)
{
    Snapshot *s = g_new0(Snapshot, 1);
    s->ref = 1;
    s->primary = -1;
    return s;
}

static Snapshot *snap_copy(const Snapshot *o)
{
    /* Field by field: the reference count is the lanes' to change. */
    Snapshot *s = snap_new();
    for (int i = 0; i < N_KEY_IDS; i++) {
        s->slot[i] = o->slot[i] != NULL ? keyset_ref(o->slot[i]) : NULL;
        s->expires[i] = o->expires[i];
    }
    s->primary = o->primary;
    s->open = o->open;
    s->v2 = o->v2;
    s->peer_id = o->peer_id;
    s->comp = o->comp;
    s->comp_alg = o->comp_alg;
    return s;
}

static void snap_unref(Snapshot *s)
{
    if (s == NULL || !g_atomic_int_dec_and_test(&s->ref))
        return;
    for (int i = 0; i < N_KEY_IDS; i++)
        keyset_unref(s->slot[i]);
    g_free(s);
}

/* Makes S (taken) the current snapshot. The engine's thread only. */
static void publish(ShimmerDataPlane *dp, Snapshot *s)
{
    pthread_mutex_lock(&dp->lock);
    Snapshot *old = dp->current;
    dp->current = s;
    pthread_mutex_unlock(&dp->lock);
    snap_unref(old);
}

/* A copy of the current snapshot to change and publish. */
static Snapshot *edit(ShimmerDataPlane *dp)
{
    return snap_copy(dp->current);
}

ShimmerDataPlane *shimmer_dataplane_new(void)
{
    ShimmerDataPlane *dp = g_new0(ShimmerDataPlane, 1);
    dp->ref = 1;
    pthread_mutex_init(&dp->lock, NULL);
    dp->current = snap_new();
    dp->n_lanes = 1;
    dp->lanes = g_aligned_alloc0(1, sizeof(Lane), CACHE_LINE);
    dp->replay_window = SHIMMER_REPLAY_DEFAULT_WINDOW;
    dp->replay_backtrack_s = SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S;
    return dp;
}

static void lane_free_buffers(Lane *l)
{
    if (l->decomp != NULL)
        shimmer_free_secret(l->decomp, DECOMP_CAP);
    if (l->decomp_tmp != NULL)
        shimmer_free_secret(l->decomp_tmp, DECOMP_CAP);
    l->decomp = l->decomp_tmp = NULL;
}

ShimmerDataPlane *shimmer_dataplane_ref(ShimmerDataPlane *dp)
{
    g_atomic_int_inc(&dp->ref);
    return dp;
}

void shimmer_dataplane_unref(ShimmerDataPlane *dp)
{
    if (dp == NULL || !g_atomic_int_dec_and_test(&dp->ref))
        return;
    for (guint i = 0; i < dp->n_lanes; i++) {
        snap_unref(dp->lanes[i].snap);
        lane_free_buffers(&dp->lanes[i]);
    }
    snap_unref(dp->current);
    pthread_mutex_destroy(&dp->lock);
    g_aligned_free(dp->lanes);
    g_free(dp);
}

guint shimmer_dataplane_get_lanes(const ShimmerDataPlane *dp)
{
    return dp->n_lanes;
}

static bool has_keys(const ShimmerDataPlane *dp)
{
    for (int i = 0; i < N_KEY_IDS; i++) {
        if (dp->current->slot[i] != NULL)
            return true;
    }
    return false;
}

gboolean shimmer_dataplane_set_lanes(ShimmerDataPlane *dp, guint n_lanes)
{
    if (n_lanes == 0 || n_lanes > SHIMMER_DATAPLANE_MAX_LANES || has_keys(dp))
        return FALSE;
    for (guint i = 0; i < dp->n_lanes; i++) {
        if (dp->lanes[i].snap != NULL)
            return FALSE; /* a lane is inside a batch */
    }
    if (n_lanes == dp->n_lanes)
        return TRUE;
    /* The counters so far stay with lane 0. */
    Lane *lanes = g_aligned_alloc0(n_lanes, sizeof(Lane), CACHE_LINE);
    Lane sum = {0};
    for (guint i = 0; i < dp->n_lanes; i++) {
        Lane *l = &dp->lanes[i];
        sum.tun_bytes_in += l->tun_bytes_in;
        sum.tun_packets_in += l->tun_packets_in;
        sum.tun_bytes_out += l->tun_bytes_out;
        sum.tun_packets_out += l->tun_packets_out;
        sum.link_bytes_in += l->link_bytes_in;
        sum.link_bytes_out += l->link_bytes_out;
        for (int r = 0; r < SHIMMER_DROP_N_REASONS; r++)
            sum.dropped[r] += l->dropped[r];
        for (int r = 0; r < SHIMMER_ENCRYPT_N_RESULTS; r++)
            sum.not_encrypted[r] += l->not_encrypted[r];
        sum.last_sent = MAX(sum.last_sent, l->last_sent);
        sum.last_recv = MAX(sum.last_recv, l->last_recv);
        lane_free_buffers(l);
    }
    lanes[0] = sum;
    g_aligned_free(dp->lanes);
    dp->lanes = lanes;
    dp->n_lanes = n_lanes;
    return TRUE;
}

void shimmer_dataplane_set_wake(ShimmerDataPlane *dp, ShimmerDataPlaneWake wake, gpointer user)
{
    dp->wake = wake;
    dp->wake_user = user;
}

bool shimmer_dataplane_install(ShimmerDataPlane *dp, guint8 key_id, ShimmerDatachanCipher cipher,
                               const guint8 *send_key, const guint8 *send_iv,
                               const guint8 *recv_key, const guint8 *recv_iv, GError **error)
{
    g_return_val_if_fail(key_id < N_KEY_IDS, false);
    gsize klen = shimmer_datachan_cipher_key_len(cipher);
    KeySet *k = g_aligned_alloc0(1, sizeof(KeySet) + dp->n_lanes * sizeof(Usage), CACHE_LINE);
    k->ref = 1;
    k->key_id = key_id;
    k->n_lanes = dp->n_lanes;
    pthread_mutex_init(&k->replay_lock, NULL);
    pthread_mutex_init(&k->seq_lock, NULL);
    pthread_cond_init(&k->seq_cond, NULL);
    if (!shimmer_replay_init(&k->replay, dp->replay_window, dp->replay_backtrack_s))
        shimmer_replay_init(&k->replay, SHIMMER_REPLAY_DEFAULT_WINDOW,
                            SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S);
    k->enc = shimmer_datachan_key_new_lanes(cipher, SHIMMER_DATACHAN_BACKEND_DEFAULT,
                                            SHIMMER_DATACHAN_ENCRYPT, send_key, klen, send_iv,
                                            dp->n_lanes, error);
    if (k->enc != NULL)
        k->dec = shimmer_datachan_key_new_lanes(cipher, SHIMMER_DATACHAN_BACKEND_DEFAULT,
                                                SHIMMER_DATACHAN_DECRYPT, recv_key, klen, recv_iv,
                                                dp->n_lanes, error);
    if (k->dec == NULL) {
        keyset_unref(k);
        return false;
    }
    Snapshot *s = edit(dp);
    keyset_unref(s->slot[key_id]);
    s->slot[key_id] = k;
    s->expires[key_id] = 0;
    publish(dp, s);
    return true;
}

void shimmer_dataplane_remove(ShimmerDataPlane *dp, guint8 key_id)
{
    if (key_id >= N_KEY_IDS || dp->current->slot[key_id] == NULL)
        return;
    Snapshot *s = edit(dp);
    g_clear_pointer(&s->slot[key_id], keyset_unref);
    s->expires[key_id] = 0;
    if (s->primary == key_id)
        s->primary = -1;
    publish(dp, s);
}

void shimmer_dataplane_clear(ShimmerDataPlane *dp)
{
    g_atomic_int_set(&dp->comp_seen, 0);
    Snapshot *s = snap_new();
    s->v2 = dp->current->v2;
    s->peer_id = dp->current->peer_id;
    s->comp = dp->current->comp;
    s->comp_alg = dp->current->comp_alg;
    publish(dp, s);
}

void shimmer_dataplane_set_expiry(ShimmerDataPlane *dp, guint8 key_id, gint64 expires)
{
    if (key_id >= N_KEY_IDS || dp->current->expires[key_id] == expires)
        return;
    Snapshot *s = edit(dp);
    s->expires[key_id] = expires;
    publish(dp, s);
}

void shimmer_dataplane_configure(ShimmerDataPlane *dp, gint primary, bool open, bool v2,
                                 guint32 peer_id, ShimmerCompFraming comp,
                                 ShimmerCompAlgorithm comp_alg)
{
    const Snapshot *c = dp->current;
    if (primary >= N_KEY_IDS || (primary >= 0 && c->slot[primary] == NULL))
        primary = -1;
    if (c->primary == primary && c->open == open && c->v2 == v2 && c->peer_id == peer_id &&
        c->comp == comp && c->comp_alg == comp_alg)
        return;
    Snapshot *s = edit(dp);
    s->primary = primary;
    s->open = open;
    s->v2 = v2;
    s->peer_id = peer_id;
    s->comp = comp;
    s->comp_alg = comp_alg;
    publish(dp, s);
}

void shimmer_dataplane_set_replay(ShimmerDataPlane *dp, guint window, guint backtrack_s)
{
    dp->replay_window =
        MIN(window ? window : SHIMMER_REPLAY_DEFAULT_WINDOW, SHIMMER_REPLAY_MAX_WINDOW);
    dp->replay_backtrack_s = backtrack_s;
}

bool shimmer_dataplane_take_comp_seen(ShimmerDataPlane *dp)
{
    return g_atomic_int_compare_and_exchange(&dp->comp_seen, 1, 2);
}

void shimmer_dataplane_set_rekey_limits(ShimmerDataPlane *dp, guint64 bytes, guint64 packets)
{
    POKE(dp->reneg_bytes, bytes);
    POKE(dp->reneg_packets, packets);
}

static KeySet *current_key(const ShimmerDataPlane *dp, guint8 key_id)
{
    return key_id < N_KEY_IDS ? dp->current->slot[key_id] : NULL;
}

static void usage_of(const KeySet *k, guint64 *bytes, guint64 *packets)
{
    guint64 b = 0, p = 0;
    for (guint i = 0; i < k->n_lanes; i++) {
        b += PEEK(k->usage[i].bytes);
        p += PEEK(k->usage[i].packets);
    }
    *bytes = b;
    *packets = p;
}

bool shimmer_dataplane_key_usage(const ShimmerDataPlane *dp, guint8 key_id, guint64 *bytes,
                                 guint64 *packets)
{
    *bytes = *packets = 0;
    KeySet *k = current_key(dp, key_id);
    if (k == NULL)
        return false;
    usage_of(k, bytes, packets);
    return true;
}

bool shimmer_dataplane_key_needs_rekey(const ShimmerDataPlane *dp, guint8 key_id)
{
    KeySet *k = current_key(dp, key_id);
    return k != NULL && shimmer_datachan_key_needs_rekey(k->enc);
}

bool shimmer_dataplane_key_heard(const ShimmerDataPlane *dp, guint8 key_id)
{
    KeySet *k = current_key(dp, key_id);
    return k != NULL && g_atomic_int_get(&k->heard);
}

bool shimmer_dataplane_key_skip_to(ShimmerDataPlane *dp, guint8 key_id, guint32 next_id)
{
    KeySet *k = current_key(dp, key_id);
    return k != NULL && shimmer_datachan_key_skip_to(k->enc, next_id);
}

void shimmer_dataplane_get_times(const ShimmerDataPlane *dp, gint64 *last_sent, gint64 *last_recv)
{
    gint64 s = 0, r = 0;
    for (guint i = 0; i < dp->n_lanes; i++) {
        s = MAX(s, PEEK(dp->lanes[i].last_sent));
        r = MAX(r, PEEK(dp->lanes[i].last_recv));
    }
    *last_sent = s;
    *last_recv = r;
}

void shimmer_dataplane_add_stats(const ShimmerDataPlane *dp, ShimmerEngineStats *st)
{
    for (guint i = 0; i < dp->n_lanes; i++) {
        const Lane *l = &dp->lanes[i];
        st->tun_bytes_in += PEEK(l->tun_bytes_in);
        st->tun_packets_in += PEEK(l->tun_packets_in);
        st->tun_bytes_out += PEEK(l->tun_bytes_out);
        st->tun_packets_out += PEEK(l->tun_packets_out);
        st->link_bytes_in += PEEK(l->link_bytes_in);
        st->link_bytes_out += PEEK(l->link_bytes_out);
        for (int r = 0; r < SHIMMER_DROP_N_REASONS; r++)
            st->dropped[r] += PEEK(l->dropped[r]);
        for (int r = 0; r < SHIMMER_ENCRYPT_N_RESULTS; r++)
            st->not_encrypted[r] += PEEK(l->not_encrypted[r]);
    }
}

bool shimmer_dataplane_peer_exit_pending(const ShimmerDataPlane *dp)
{
    return g_atomic_int_get(&dp->peer_exit) != 0;
}

bool shimmer_dataplane_take_peer_exit(ShimmerDataPlane *dp)
{
    return g_atomic_int_compare_and_exchange(&dp->peer_exit, 1, 0);
}

/* ---------- lanes ---------- */

static void wake(ShimmerDataPlane *dp)
{
    if (dp->wake != NULL)
        dp->wake(dp->wake_user);
}

void shimmer_dataplane_begin(ShimmerDataPlane *dp, guint lane)
{
    if (lane == 0 || lane >= dp->n_lanes)
        return;
    Lane *l = &dp->lanes[lane];
    if (l->snap != NULL)
        return;
    pthread_mutex_lock(&dp->lock);
    Snapshot *s = dp->current;
    g_atomic_int_inc(&s->ref);
    pthread_mutex_unlock(&dp->lock);
    l->snap = s;
}

/* Wakes the engine once per key when the key's usage reached reneg-bytes
 * or reneg-pkts or its packet ids run low: the engine's own thread sees
 * none of a worker's packets, so nothing else would make it look. */
static void check_limits(ShimmerDataPlane *dp, Snapshot *s)
{
    if (s->primary < 0)
        return;
    KeySet *k = s->slot[s->primary];
    if (g_atomic_int_get(&k->signalled))
        return;
    bool due = shimmer_datachan_key_needs_rekey(k->enc);
    guint64 lb = PEEK(dp->reneg_bytes), lp = PEEK(dp->reneg_packets);
    if (!due && (lb > 0 || lp > 0)) {
        guint64 bytes, packets;
        usage_of(k, &bytes, &packets);
        due = (lb > 0 && bytes >= lb) || (lp > 0 && packets >= lp);
    }
    if (due && g_atomic_int_compare_and_exchange(&k->signalled, 0, 1))
        wake(dp);
}

void shimmer_dataplane_end(ShimmerDataPlane *dp, guint lane)
{
    if (lane == 0 || lane >= dp->n_lanes)
        return;
    Lane *l = &dp->lanes[lane];
    Snapshot *s = l->snap;
    if (s == NULL)
        return;
    shimmer_dataplane_release(dp, lane);
    check_limits(dp, s);
    l->snap = NULL;
    snap_unref(s);
}

guint shimmer_dataplane_reserve(ShimmerDataPlane *dp, guint lane, guint n)
{
    if (lane == 0 || lane >= dp->n_lanes)
        return 0;
    Lane *l = &dp->lanes[lane];
    Snapshot *s = l->snap;
    if (s == NULL || s->primary < 0 || l->has_ticket || n == 0)
        return 0;
    KeySet *k = s->slot[s->primary];
    guint32 first = 0;
    pthread_mutex_lock(&k->seq_lock);
    /* Ids and ticket together: tickets in order have ids in order. */
    guint got = shimmer_datachan_key_reserve(k->enc, n, &first);
    l->ticket = k->next_ticket++;
    pthread_mutex_unlock(&k->seq_lock);
    l->has_ticket = true;
    l->res_key = k;
    l->res_next = first;
    l->res_end = first + got;
    return got;
}

/* How long a lane waits for its turn before it sends anyway: only a lane
 * that stalls between its reservation and its release (descheduled for
 * that long) makes another wait, and order matters less than not hanging. */
#define TURN_WAIT_US (200 * 1000)

void shimmer_dataplane_wait_turn(ShimmerDataPlane *dp, guint lane)
{
    if (lane == 0 || lane >= dp->n_lanes)
        return;
    Lane *l = &dp->lanes[lane];
    if (!l->has_ticket)
        return;
    KeySet *k = l->res_key;
    pthread_mutex_lock(&k->seq_lock);
    if (k->turn < l->ticket) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (TURN_WAIT_US % 1000000) * 1000;
        until.tv_sec += TURN_WAIT_US / 1000000 + until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        while (k->turn < l->ticket) {
            if (pthread_cond_timedwait(&k->seq_cond, &k->seq_lock, &until) != 0) {
                BUMP(l->turn_timeouts, 1);
                break;
            }
        }
    }
    pthread_mutex_unlock(&k->seq_lock);
}

void shimmer_dataplane_release(ShimmerDataPlane *dp, guint lane)
{
    if (lane == 0 || lane >= dp->n_lanes)
        return;
    Lane *l = &dp->lanes[lane];
    if (!l->has_ticket)
        return;
    KeySet *k = l->res_key;
    pthread_mutex_lock(&k->seq_lock);
    k->turn = MAX(k->turn, l->ticket + 1);
    pthread_cond_broadcast(&k->seq_cond);
    pthread_mutex_unlock(&k->seq_lock);
    /* Ids reserved and not sealed are never used: the peer sees a gap. */
    l->has_ticket = false;
    l->res_key = NULL;
    l->res_next = l->res_end = 0;
}

guint64 shimmer_dataplane_get_turn_timeouts(const ShimmerDataPlane *dp)
{
    guint64 n = 0;
    for (guint i = 0; i < dp->n_lanes; i++)
        n += PEEK(dp->lanes[i].turn_timeouts);
    return n;
}

static Snapshot *lane_snap(ShimmerDataPlane *dp, guint lane)
{
    if (lane == 0)
        return dp->current;
    return lane < dp->n_lanes ? dp->lanes[lane].snap : NULL;
}

/* ---------- encryption ---------- */

static ShimmerEncryptResult seal_result(ShimmerDatachanResult r)
{
    switch (r) {
    case SHIMMER_DATACHAN_OK:
        return SHIMMER_ENCRYPT_OK;
    case SHIMMER_DATACHAN_ERR_EXHAUSTED:
        return SHIMMER_ENCRYPT_OUT_OF_IDS;
    case SHIMMER_DATACHAN_ERR_BUFFER:
        return SHIMMER_ENCRYPT_TOO_BIG;
    default:
        return SHIMMER_ENCRYPT_FAILED;
    }
}

static gsize data_overhead(const Snapshot *s)
{
    return s->v2 ? SHIMMER_DATACHAN_V2_OVERHEAD : SHIMMER_DATACHAN_V1_OVERHEAD;
}

/* Frames and seals the plaintext at BUF[OFF..OFF+LEN) in place with S's
 * sending key on LANE (L: its state, NULL for lane 0's copies), with the
 * lane's next reserved id if it has one; room is the caller's concern. */
static ShimmerEncryptResult seal_in_place(Snapshot *s, guint lane, Lane *l, guint8 *buf, gsize off,
                                          gsize len, gsize *pkt_off, gsize *pkt_len)
{
    KeySet *k = s->primary >= 0 ? s->slot[s->primary] : NULL;
    if (k == NULL || lane >= k->n_lanes)
        return SHIMMER_ENCRYPT_NOT_CONNECTED;
    shimmer_compframe_wrap_in_place(s->comp, buf, &off, &len);
    gsize hdr = data_overhead(s);
    guint8 *out = buf + off - hdr;
    gsize n = 0;
    ShimmerDatachanResult r;
    if (l != NULL && l->res_key == k && l->res_next < l->res_end)
        r = shimmer_datachan_seal_reserved(k->enc, lane, s->v2, k->key_id, s->peer_id,
                                           l->res_next++, buf + off, len, out, hdr + len, &n);
    else
        r = shimmer_datachan_seal(k->enc, lane, s->v2, k->key_id, s->peer_id, buf + off, len, out,
                                  hdr + len, &n, NULL);
    if (r != SHIMMER_DATACHAN_OK)
        return seal_result(r);
    Usage *u = &k->usage[lane];
    BUMP(u->bytes, len);
    BUMP(u->packets, 1);
    *pkt_off = off - hdr;
    *pkt_len = n;
    return SHIMMER_ENCRYPT_OK;
}

ShimmerEncryptResult shimmer_dataplane_encrypt(ShimmerDataPlane *dp, guint lane, guint8 *buf,
                                               gsize cap, gsize off, gsize len, gint64 now,
                                               gsize *pkt_off, gsize *pkt_len)
{
    *pkt_off = *pkt_len = 0;
    if (lane >= dp->n_lanes)
        return SHIMMER_ENCRYPT_NOT_CONNECTED;
    Lane *l = &dp->lanes[lane];
    Snapshot *s = lane_snap(dp, lane);
    ShimmerEncryptResult r;
    if (s == NULL || !s->open || s->primary < 0)
        r = SHIMMER_ENCRYPT_NOT_CONNECTED;
    else if (len == 0)
        r = SHIMMER_ENCRYPT_EMPTY;
    else if (len > SHIMMER_ENGINE_MAX_PLAIN || off < SHIMMER_ENGINE_HEADROOM || cap < off ||
             cap - off < len + SHIMMER_ENGINE_TAILROOM)
        r = SHIMMER_ENCRYPT_TOO_BIG;
    else
        r = seal_in_place(s, lane, l, buf, off, len, pkt_off, pkt_len);
    if (r != SHIMMER_ENCRYPT_OK) {
        *pkt_off = *pkt_len = 0;
        BUMP(l->not_encrypted[r], 1);
        return r;
    }
    BUMP(l->tun_bytes_in, len);
    BUMP(l->tun_packets_in, 1);
    BUMP(l->link_bytes_out, *pkt_len);
    POKE(l->last_sent, now);
    return SHIMMER_ENCRYPT_OK;
}

ShimmerEncryptResult shimmer_dataplane_seal_copy(ShimmerDataPlane *dp, const guint8 *plain,
                                                 gsize len, guint8 *out, gsize cap, gsize *out_len)
{
    *out_len = 0;
    Snapshot *s = dp->current;
    if (s->primary < 0)
        return SHIMMER_ENCRYPT_NOT_CONNECTED;
    /* Placed so that the framing fits in front of it (and the swap form's
     * byte behind it) without more room than the framing needs. */
    gsize front = 0, back = 0;
    switch (s->comp) {
    case SHIMMER_COMP_NONE:
        break;
    case SHIMMER_COMP_LZO_NO:
        front = 1;
        break;
    case SHIMMER_COMP_STUB:
        if (len == 0)
            front = 1;
        else
            back = 1;
        break;
    case SHIMMER_COMP_STUB_V2:
        front = SHIMMER_COMPFRAME_MAX_OVERHEAD;
        break;
    }
    gsize off = data_overhead(s) + front;
    if (cap < off || cap - off < len + back)
        return SHIMMER_ENCRYPT_TOO_BIG;
    if (len > 0)
        memmove(out + off, plain, len);
    gsize pkt_off = 0;
    ShimmerEncryptResult r = seal_in_place(s, 0, NULL, out, off, len, &pkt_off, out_len);
    if (r == SHIMMER_ENCRYPT_OK && pkt_off > 0)
        memmove(out, out + pkt_off, *out_len);
    return r;
}

/* ---------- decryption ---------- */

static ShimmerDropReason open_drop_reason(ShimmerDatachanResult r)
{
    switch (r) {
    case SHIMMER_DATACHAN_ERR_AUTH:
        return SHIMMER_DROP_AUTH;
    case SHIMMER_DATACHAN_ERR_BUFFER:
        return SHIMMER_DROP_TOO_BIG;
    default:
        return SHIMMER_DROP_MALFORMED;
    }
}

static ShimmerReplayResult replay_check(KeySet *k, guint32 id, gint64 now, bool update)
{
    pthread_mutex_lock(&k->replay_lock);
    ShimmerReplayResult r = shimmer_replay_check(&k->replay, id, now);
    if (r == SHIMMER_REPLAY_OK && update)
        shimmer_replay_update(&k->replay, id, now);
    pthread_mutex_unlock(&k->replay_lock);
    return r;
}

/* Whether the framed plaintext BUF[0..LEN) holds a compressed packet. */
static bool is_compressed(ShimmerCompFraming framing, const guint8 *buf, gsize len)
{
    switch (framing) {
    case SHIMMER_COMP_LZO_NO:
        return len > 0 && buf[0] == 0x66;
    case SHIMMER_COMP_STUB:
        return len > 0 && buf[0] == 0x69;
    case SHIMMER_COMP_STUB_V2:
        return len > 1 && buf[0] == 0x50 && buf[1] == 0x01;
    case SHIMMER_COMP_NONE:
        break;
    }
    return false;
}

/* A compressed packet decodes into the lane's buffer: the packet's own room
 * ends where the next datagram of a GRO buffer begins. */
static ShimmerDropReason decompress(ShimmerDataPlane *dp, guint lane, Lane *l, const Snapshot *s,
                                    const guint8 *in, gsize *len, guint8 **plain)
{
    /* 0: not seen this session; 1: seen, for the engine to say; 2: said. */
    if (s->comp_alg != SHIMMER_COMP_ALG_NONE &&
        g_atomic_int_compare_and_exchange(&dp->comp_seen, 0, 1) && lane != 0)
        wake(dp);
    if (l->decomp == NULL) {
        l->decomp = g_malloc(DECOMP_CAP);
        l->decomp_tmp = g_malloc(DECOMP_CAP);
    }
    memcpy(l->decomp, in, *len);
    ShimmerDecompResult r = shimmer_decompress(s->comp, s->comp_alg, l->decomp, len, DECOMP_CAP,
                                               l->decomp_tmp, DECOMP_CAP);
    switch (r) {
    case SHIMMER_DECOMP_OK:
        *plain = l->decomp;
        return SHIMMER_DROP_NONE;
    case SHIMMER_DECOMP_NOT_ALLOWED:
        return SHIMMER_DROP_COMPRESSED;
    case SHIMMER_DECOMP_TOO_LARGE:
        return SHIMMER_DROP_TOO_BIG;
    case SHIMMER_DECOMP_MALFORMED:
    case SHIMMER_DECOMP_BAD_DATA:
        break;
    }
    return SHIMMER_DROP_BAD_COMPRESSION;
}

/* Opens the data packet PKT[0..LEN) into OUT (which may be PKT + the
 * overhead: in place) on LANE. The plaintext for the tun is
 * *PLAIN[0..*PLEN) (*PLEN 0: nothing for the tun): inside OUT, or in the
 * lane's buffer when it came compressed (valid until the lane's next
 * packet). */
static ShimmerDropReason open_data(ShimmerDataPlane *dp, guint lane, const guint8 *pkt, gsize len,
                                   gint64 now, guint8 *out, gsize cap, guint8 **plain, gsize *plen)
{
    Lane *l = &dp->lanes[lane];
    Snapshot *s = lane_snap(dp, lane);
    if (len == 0)
        return SHIMMER_DROP_MALFORMED;
    guint op = shimmer_packet_opcode(pkt[0]);
    guint key_id = shimmer_packet_key_id(pkt[0]);
    if (op != SHIMMER_OP_DATA_V1 && op != SHIMMER_OP_DATA_V2)
        return SHIMMER_DROP_UNEXPECTED;
    bool v2 = op == SHIMMER_OP_DATA_V2;
    KeySet *k = s != NULL && key_id < N_KEY_IDS ? s->slot[key_id] : NULL;
    if (k == NULL || lane >= k->n_lanes || (s->expires[key_id] && now > s->expires[key_id]))
        return SHIMMER_DROP_NO_KEY;
    guint32 id;
    if (!shimmer_datachan_peek_packet_id(v2, pkt, len, &id))
        return SHIMMER_DROP_MALFORMED;
    /* Rejected before any crypto is spent on it... */
    if (replay_check(k, id, now, false) != SHIMMER_REPLAY_OK)
        return SHIMMER_DROP_REPLAY;
    gsize n = 0;
    ShimmerDatachanResult r = shimmer_datachan_open(k->dec, lane, v2, pkt, len, out, cap, &n, &id);
    if (r != SHIMMER_DATACHAN_OK)
        return open_drop_reason(r);
    /* ...and recorded only once authentic, atomically with a second look:
     * another lane may have taken the same id meanwhile. */
    if (replay_check(k, id, now, true) != SHIMMER_REPLAY_OK) {
        shimmer_wipe(out, n);
        return SHIMMER_DROP_REPLAY;
    }
    /* The peer sends with this key: it has it. A key the engine is waiting
     * to send with can take over now. */
    if (!g_atomic_int_get(&k->heard) && g_atomic_int_compare_and_exchange(&k->heard, 0, 1) &&
        s->primary != (gint)key_id && lane != 0)
        wake(dp);
    /* Authentic: it counts as heard from the peer whatever it holds. */
    POKE(l->last_recv, now);
    BUMP(l->link_bytes_in, len);
    Usage *u = &k->usage[lane];
    BUMP(u->bytes, n);
    BUMP(u->packets, 1);
    guint8 *p = out;
    if (s->comp != SHIMMER_COMP_NONE) {
        if (is_compressed(s->comp, out, n)) {
            ShimmerDropReason why = decompress(dp, lane, l, s, out, &n, &p);
            if (why != SHIMMER_DROP_NONE)
                return why;
        } else {
            /* Uncompressed: the framing comes off without moving the
             * packet. */
            gsize o = 0;
            if (!shimmer_compframe_unwrap_in_place(s->comp, out, &o, &n))
                return SHIMMER_DROP_BAD_COMPRESSION;
            p = out + o;
        }
    }
    if (n == sizeof(ping_magic) && memcmp(p, ping_magic, sizeof(ping_magic)) == 0)
        return SHIMMER_DROP_NONE;
    if (n >= sizeof(occ_magic) + 1 && memcmp(p, occ_magic, sizeof(occ_magic)) == 0) {
        if (p[sizeof(occ_magic)] == OCC_EXIT &&
            g_atomic_int_compare_and_exchange(&dp->peer_exit, 0, 1) && lane != 0)
            wake(dp);
        return SHIMMER_DROP_NONE;
    }
    if (n == 0)
        return SHIMMER_DROP_NONE;
    BUMP(l->tun_bytes_out, n);
    BUMP(l->tun_packets_out, 1);
    *plain = p;
    *plen = n;
    return SHIMMER_DROP_NONE;
}

ShimmerRecvResult shimmer_dataplane_decrypt(ShimmerDataPlane *dp, guint lane, guint8 *pkt,
                                            gsize len, gint64 now, guint8 **plain, gsize *plain_len,
                                            ShimmerDropReason *drop)
{
    *plain = NULL;
    *plain_len = 0;
    ShimmerDropReason why;
    guint8 *p = NULL;
    gsize n = 0;
    if (lane >= dp->n_lanes) {
        why = SHIMMER_DROP_NO_KEY;
    } else {
        gsize hdr = len > 0 && shimmer_packet_opcode(pkt[0]) == SHIMMER_OP_DATA_V1
                        ? SHIMMER_DATACHAN_V1_OVERHEAD
                        : SHIMMER_DATACHAN_V2_OVERHEAD;
        gsize cap = len > hdr ? len - hdr : 0;
        why = open_data(dp, lane, pkt, len, now, pkt + MIN(hdr, len), cap, &p, &n);
    }
    if (drop != NULL)
        *drop = why;
    if (why != SHIMMER_DROP_NONE) {
        if (lane < dp->n_lanes)
            BUMP(dp->lanes[lane].dropped[why], 1);
        return SHIMMER_RECV_DROPPED;
    }
    *plain = p;
    *plain_len = n;
    return n > 0 ? SHIMMER_RECV_TUN : SHIMMER_RECV_CONSUMED;
}

ShimmerDropReason shimmer_dataplane_open_copy(ShimmerDataPlane *dp, const guint8 *pkt, gsize len,
                                              gint64 now, guint8 *out, gsize cap, gsize *out_len)
{
    guint8 *p = NULL;
    gsize n = 0;
    *out_len = 0;
    ShimmerDropReason why = open_data(dp, 0, pkt, len, now, out, cap, &p, &n);
    if (why == SHIMMER_DROP_NONE && n > 0) {
        if (n > cap) {
            why = SHIMMER_DROP_TOO_BIG;
        } else {
            if (p != out)
                memmove(out, p, n);
            *out_len = n;
        }
    }
    if (why != SHIMMER_DROP_NONE)
        BUMP(dp->lanes[0].dropped[why], 1);
    return why;
}
