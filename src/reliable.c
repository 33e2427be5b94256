/* SPDX-License-Identifier: MIT */
#include "reliable.h"

#include <string.h>

/* Pids are kept as 64-bit numbers here so that "one past 0xffffffff" and
 * window arithmetic near the top of the pid space cannot wrap. */
#define PID_SPACE ((guint64)G_MAXUINT32 + 1)

typedef struct {
    gboolean in_use;
    /* No more bytes may be appended: the message was sent, or it came from
     * shimmer_reliable_queue_message(). */
    gboolean sealed;
    /* Enough later messages were acked: resend before the timer says so. */
    gboolean fast_due;
    guint8 kind;
    guint32 pid;
    guint sends;
    gint64 timeout;
    gint64 due;
    /* Transmission order (tx_seq) of the first and of the latest copy: fast
     * retransmit only counts acks of messages first sent after our latest
     * copy, since an ack of anything older says nothing about that copy. */
    guint64 first_seq;
    guint64 last_seq;
    guint later_acks;
    gsize len;
    guint8 *data;
} SendSlot;

typedef struct {
    gboolean present;
    guint32 pid;
    gsize len;
    guint8 *data;
} RecvSlot;

struct ShimmerReliable {
    gsize max_payload;
    gsize max_recv_payload;
    gint64 initial_timeout;
    gint64 max_timeout;

    SendSlot send[SHIMMER_RELIABLE_SEND_WINDOW];
    guint n_unacked;
    guint64 next_pid;
    guint64 tx_seq;

    /* Slot pid % RECV_WINDOW holds pid; the window is rx_base..rx_base+11, so
     * the mapping is one to one. */
    RecvSlot recv[SHIMMER_RELIABLE_RECV_WINDOW];
    /* Oldest pid not yet fully read, and how much of it was read. */
    guint64 rx_base;
    gsize rx_off;

    guint32 acks[SHIMMER_RELIABLE_MAX_PENDING_ACKS];
    guint ack_head;
    guint ack_count;
    /* Pids taken for acking lately, most recent first. */
    guint32 recent[SHIMMER_RELIABLE_RECENT_ACKS];
    guint n_recent;

    ShimmerReliableStats stats;
};

/* clang-format off */
G_DEFINE_QUARK(shimmer-reliable-error-quark, shimmer_reliable_error)
/* clang-format on */

static gint64 time_add(gint64 now, gint64 delta)
{
    /* A deadline far in the future is as good as none; never overflow. */
    if (now > G_MAXINT64 - delta)
        return G_MAXINT64 - 1;
    return now + delta;
}

ShimmerReliable *shimmer_reliable_new(const ShimmerReliableConfig *config)
{
    ShimmerReliableConfig c = {0};

    if (config != NULL)
        c = *config;
    if (c.max_payload == 0)
        c.max_payload = SHIMMER_RELIABLE_DEFAULT_MAX_PAYLOAD;
    if (c.max_recv_payload == 0)
        c.max_recv_payload = SHIMMER_RELIABLE_DEFAULT_MAX_RECV_PAYLOAD;
    if (c.initial_timeout == 0)
        c.initial_timeout = SHIMMER_RELIABLE_DEFAULT_INITIAL_TIMEOUT;
    if (c.max_timeout == 0)
        c.max_timeout = MAX(SHIMMER_RELIABLE_DEFAULT_MAX_TIMEOUT, c.initial_timeout);

    g_return_val_if_fail(c.max_payload <= SHIMMER_RELIABLE_PAYLOAD_LIMIT, NULL);
    g_return_val_if_fail(c.max_recv_payload <= SHIMMER_RELIABLE_PAYLOAD_LIMIT, NULL);
    g_return_val_if_fail(c.initial_timeout > 0, NULL);
    g_return_val_if_fail(c.max_timeout >= c.initial_timeout, NULL);

    ShimmerReliable *r = g_new0(ShimmerReliable, 1);
    r->max_payload = c.max_payload;
    r->max_recv_payload = c.max_recv_payload;
    r->initial_timeout = c.initial_timeout;
    r->max_timeout = c.max_timeout;

    return r;
}

void shimmer_reliable_free(ShimmerReliable *r)
{
    if (r == NULL)
        return;
    for (guint i = 0; i < SHIMMER_RELIABLE_SEND_WINDOW; i++)
        g_free(r->send[i].data);
    for (guint i = 0; i < SHIMMER_RELIABLE_RECV_WINDOW; i++)
        g_free(r->recv[i].data);
    g_free(r);
}

/* ---- Send side ---- */

static SendSlot *find_send(const ShimmerReliable *r, guint64 pid)
{
    for (guint i = 0; i < SHIMMER_RELIABLE_SEND_WINDOW; i++) {
        const SendSlot *s = &r->send[i];
        if (s->in_use && s->pid == pid)
            return (SendSlot *)s;
    }
    return NULL;
}

/* The oldest unacked pid, or next_pid when nothing is unacked. The peer has
 * received every pid below it, so its receive window starts at or above it. */
static guint64 send_base(const ShimmerReliable *r)
{
    guint64 base = r->next_pid;

    for (guint i = 0; i < SHIMMER_RELIABLE_SEND_WINDOW; i++) {
        if (r->send[i].in_use && r->send[i].pid < base)
            base = r->send[i].pid;
    }
    return base;
}

/* How many new pids may be handed out now. Besides the 6 free slots, a new pid
 * must stay below send_base + 12: acked slots are reused even while an older
 * message is outstanding, and without this bound the pids in flight could
 * spread beyond the peer's 12-message receive window. */
static guint64 new_messages_allowed(const ShimmerReliable *r)
{
    guint64 n = SHIMMER_RELIABLE_SEND_WINDOW - r->n_unacked;
    guint64 span_end = send_base(r) + SHIMMER_RELIABLE_RECV_WINDOW;

    n = MIN(n, span_end - r->next_pid);
    n = MIN(n, PID_SPACE - r->next_pid);
    return n;
}

/* The newest message if bytes may still be appended to it. */
static SendSlot *open_tail(const ShimmerReliable *r)
{
    if (r->next_pid == 0)
        return NULL;
    SendSlot *s = find_send(r, r->next_pid - 1);
    if (s == NULL || s->sealed)
        return NULL;
    return s;
}

static SendSlot *new_message(ShimmerReliable *r, guint8 kind, gboolean sealed)
{
    for (guint i = 0; i < SHIMMER_RELIABLE_SEND_WINDOW; i++) {
        SendSlot *s = &r->send[i];
        if (s->in_use)
            continue;
        *s = (SendSlot){0};
        /* Its buffer lives while the message is unacked: an idle layer
         * holds none (a server keeps one per key state of every client). */
        s->data = g_malloc(r->max_payload);
        s->in_use = TRUE;
        s->sealed = sealed;
        s->kind = kind;
        s->pid = (guint32)r->next_pid;
        r->next_pid++;
        r->n_unacked++;
        r->stats.messages_queued++;
        return s;
    }
    g_assert_not_reached();
}

gsize shimmer_reliable_writable(const ShimmerReliable *r)
{
    g_return_val_if_fail(r != NULL, 0);

    gsize room = 0;
    const SendSlot *tail = open_tail(r);
    if (tail != NULL)
        room = r->max_payload - tail->len;
    return room + (gsize)new_messages_allowed(r) * r->max_payload;
}

gsize shimmer_reliable_queue(ShimmerReliable *r, guint8 kind, const void *data, gsize len)
{
    g_return_val_if_fail(r != NULL, 0);
    g_return_val_if_fail(data != NULL || len == 0, 0);

    const guint8 *p = data;
    gsize done = 0;

    /* Filling the unsent tail first keeps small TLS writes from each using up
     * one of only six send slots. */
    SendSlot *tail = open_tail(r);
    if (tail != NULL && tail->kind == kind && len > 0) {
        gsize n = MIN(r->max_payload - tail->len, len);
        memcpy(tail->data + tail->len, p, n);
        tail->len += n;
        done += n;
    }
    while (done < len && new_messages_allowed(r) > 0) {
        SendSlot *s = new_message(r, kind, FALSE);
        gsize n = MIN(r->max_payload, len - done);
        memcpy(s->data, p + done, n);
        s->len = n;
        done += n;
    }
    return done;
}

gboolean shimmer_reliable_queue_message(ShimmerReliable *r, guint8 kind, const void *data,
                                        gsize len, guint32 *pid, GError **error)
{
    g_return_val_if_fail(r != NULL, FALSE);
    g_return_val_if_fail(data != NULL || len == 0, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (len > r->max_payload) {
        g_set_error(error, SHIMMER_RELIABLE_ERROR, SHIMMER_RELIABLE_ERROR_TOO_LARGE,
                    "Control message of %" G_GSIZE_FORMAT
                    " bytes exceeds the maximum of %" G_GSIZE_FORMAT,
                    len, r->max_payload);
        return FALSE;
    }
    if (r->next_pid >= PID_SPACE) {
        g_set_error(error, SHIMMER_RELIABLE_ERROR, SHIMMER_RELIABLE_ERROR_PID_EXHAUSTED,
                    "Control message ids of this key state are exhausted");
        return FALSE;
    }
    if (new_messages_allowed(r) == 0) {
        g_set_error(error, SHIMMER_RELIABLE_ERROR, SHIMMER_RELIABLE_ERROR_WINDOW_FULL,
                    "Control channel send window is full");
        return FALSE;
    }
    SendSlot *s = new_message(r, kind, TRUE);
    if (len > 0)
        memcpy(s->data, data, len);
    s->len = len;
    if (pid != NULL)
        *pid = s->pid;
    return TRUE;
}

gboolean shimmer_reliable_next_to_send(ShimmerReliable *r, gint64 now, ShimmerReliableMessage *out)
{
    g_return_val_if_fail(r != NULL, FALSE);
    g_return_val_if_fail(out != NULL, FALSE);

    SendSlot *best = NULL;
    for (guint i = 0; i < SHIMMER_RELIABLE_SEND_WINDOW; i++) {
        SendSlot *s = &r->send[i];
        if (!s->in_use)
            continue;
        if (s->sends > 0 && !s->fast_due && s->due > now)
            continue;
        /* Lowest pid first: the receiver can only deliver in order, so the
         * oldest gap is the one holding everything up. */
        if (best == NULL || s->pid < best->pid)
            best = s;
    }
    if (best == NULL)
        return FALSE;

    gboolean retransmit = best->sends > 0;
    if (!retransmit) {
        best->timeout = r->initial_timeout;
        best->first_seq = r->tx_seq + 1;
        r->stats.messages_sent++;
    } else if (best->due <= now) {
        /* The timer expired (whether or not a fast retransmit was also due):
         * the peer or the path may be slow, so back off. */
        best->timeout = best->timeout > r->max_timeout / 2 ? r->max_timeout : best->timeout * 2;
        r->stats.retransmits++;
    } else {
        r->stats.retransmits++;
        r->stats.fast_retransmits++;
    }
    best->due = time_add(now, best->timeout);
    best->sends++;
    best->sealed = TRUE;
    best->fast_due = FALSE;
    best->later_acks = 0;
    best->last_seq = ++r->tx_seq;

    out->pid = best->pid;
    out->kind = best->kind;
    out->payload = best->data;
    out->len = best->len;
    out->retransmit = retransmit;
    return TRUE;
}

gboolean shimmer_reliable_ack_received(ShimmerReliable *r, guint32 pid)
{
    g_return_val_if_fail(r != NULL, FALSE);

    SendSlot *acked = find_send(r, pid);
    /* A message never sent cannot have been received: the ack belongs to
     * something else (an old session, a forged or stale packet). */
    if (acked == NULL || acked->sends == 0) {
        r->stats.acks_ignored++;
        return FALSE;
    }

    for (guint i = 0; i < SHIMMER_RELIABLE_SEND_WINDOW; i++) {
        SendSlot *s = &r->send[i];
        if (s == acked || !s->in_use || s->sends == 0 || s->fast_due)
            continue;
        if (acked->first_seq > s->last_seq &&
            ++s->later_acks >= SHIMMER_RELIABLE_FAST_RETRANSMIT_ACKS)
            s->fast_due = TRUE;
    }

    acked->in_use = FALSE;
    g_clear_pointer(&acked->data, g_free);
    r->n_unacked--;
    r->stats.acks_received++;
    return TRUE;
}

guint shimmer_reliable_unacked(const ShimmerReliable *r)
{
    g_return_val_if_fail(r != NULL, 0);
    return r->n_unacked;
}

/* ---- Receive side ---- */

static void push_ack(ShimmerReliable *r, guint32 pid)
{
    for (guint i = 0; i < r->ack_count; i++) {
        if (r->acks[(r->ack_head + i) % SHIMMER_RELIABLE_MAX_PENDING_ACKS] == pid)
            return;
    }
    if (r->ack_count == SHIMMER_RELIABLE_MAX_PENDING_ACKS) {
        r->stats.acks_dropped++;
        return;
    }
    r->acks[(r->ack_head + r->ack_count) % SHIMMER_RELIABLE_MAX_PENDING_ACKS] = pid;
    r->ack_count++;
}

static RecvSlot *recv_slot(ShimmerReliable *r, guint64 pid)
{
    return &r->recv[pid % SHIMMER_RELIABLE_RECV_WINDOW];
}

/* Releases the head messages that were read completely. Empty messages (the
 * resets) count as read on arrival: nobody would ever read them, and they
 * would hold the window shut. */
static void rx_advance(ShimmerReliable *r)
{
    for (;;) {
        RecvSlot *s = recv_slot(r, r->rx_base);
        if (!s->present || s->pid != r->rx_base || r->rx_off < s->len)
            return;
        s->present = FALSE;
        g_clear_pointer(&s->data, g_free);
        r->rx_base++;
        r->rx_off = 0;
    }
}

ShimmerReliableRx shimmer_reliable_incoming(ShimmerReliable *r, guint32 pid, const void *payload,
                                            gsize len)
{
    g_return_val_if_fail(r != NULL, SHIMMER_RELIABLE_RX_DROPPED);
    g_return_val_if_fail(payload != NULL || len == 0, SHIMMER_RELIABLE_RX_DROPPED);

    if (len > r->max_recv_payload) {
        r->stats.dropped_oversized++;
        return SHIMMER_RELIABLE_RX_DROPPED;
    }
    /* Below the window: we had it, so our ack was lost; ack it again or the
     * peer resends it forever. */
    if (pid < r->rx_base) {
        r->stats.duplicates++;
        push_ack(r, pid);
        return SHIMMER_RELIABLE_RX_DUPLICATE;
    }
    /* Beyond the window: no buffer for it. Not acking makes the peer resend
     * it once the window has moved. */
    if (pid >= r->rx_base + SHIMMER_RELIABLE_RECV_WINDOW) {
        r->stats.dropped_out_of_window++;
        return SHIMMER_RELIABLE_RX_DROPPED;
    }
    RecvSlot *s = recv_slot(r, pid);
    if (s->present) {
        r->stats.duplicates++;
        push_ack(r, pid);
        return SHIMMER_RELIABLE_RX_DUPLICATE;
    }
    s->present = TRUE;
    s->pid = pid;
    s->len = len;
    g_free(s->data);
    s->data = len > 0 ? g_memdup2(payload, len) : NULL;
    r->stats.messages_received++;
    push_ack(r, pid);
    rx_advance(r);
    return SHIMMER_RELIABLE_RX_NEW;
}

gsize shimmer_reliable_readable(const ShimmerReliable *r)
{
    g_return_val_if_fail(r != NULL, 0);

    gsize n = 0;
    gsize off = r->rx_off;
    for (guint64 pid = r->rx_base; pid < r->rx_base + SHIMMER_RELIABLE_RECV_WINDOW; pid++) {
        const RecvSlot *s = &r->recv[pid % SHIMMER_RELIABLE_RECV_WINDOW];
        if (!s->present || s->pid != pid)
            break;
        n += s->len - off;
        off = 0;
    }
    return n;
}

gsize shimmer_reliable_read(ShimmerReliable *r, void *buf, gsize len)
{
    g_return_val_if_fail(r != NULL, 0);
    g_return_val_if_fail(buf != NULL || len == 0, 0);

    guint8 *out = buf;
    gsize done = 0;
    while (done < len) {
        RecvSlot *s = recv_slot(r, r->rx_base);
        if (!s->present || s->pid != r->rx_base)
            break;
        gsize n = MIN(s->len - r->rx_off, len - done);
        memcpy(out + done, s->data + r->rx_off, n);
        r->rx_off += n;
        done += n;
        rx_advance(r);
    }
    return done;
}

gboolean shimmer_reliable_has_pending_acks(const ShimmerReliable *r)
{
    g_return_val_if_fail(r != NULL, FALSE);
    return r->ack_count > 0;
}

gsize shimmer_reliable_take_acks(ShimmerReliable *r, guint32 *out, gsize max)
{
    g_return_val_if_fail(r != NULL, 0);
    g_return_val_if_fail(out != NULL || max == 0, 0);

    gsize n = MIN(max, (gsize)r->ack_count);
    for (gsize i = 0; i < n; i++) {
        guint32 pid = r->acks[r->ack_head];
        out[i] = pid;
        r->ack_head = (r->ack_head + 1) % SHIMMER_RELIABLE_MAX_PENDING_ACKS;
        /* To the front of the recent ones, once. */
        guint k = 0;
        while (k < r->n_recent && r->recent[k] != pid)
            k++;
        if (k == r->n_recent && r->n_recent < SHIMMER_RELIABLE_RECENT_ACKS)
            r->n_recent++;
        if (k == SHIMMER_RELIABLE_RECENT_ACKS)
            k--;
        memmove(&r->recent[1], &r->recent[0], k * sizeof(r->recent[0]));
        r->recent[0] = pid;
    }
    r->ack_count -= (guint)n;
    return n;
}

gsize shimmer_reliable_add_recent_acks(const ShimmerReliable *r, guint32 *out, gsize n, gsize max)
{
    g_return_val_if_fail(r != NULL, n);
    for (guint k = 0; k < r->n_recent && n < max; k++) {
        gboolean listed = FALSE;
        for (gsize i = 0; i < n && !listed; i++)
            listed = out[i] == r->recent[k];
        if (!listed)
            out[n++] = r->recent[k];
    }
    return n;
}

/* ---- Timer ---- */

gint64 shimmer_reliable_next_deadline(const ShimmerReliable *r)
{
    g_return_val_if_fail(r != NULL, SHIMMER_RELIABLE_NO_DEADLINE);

    if (r->ack_count > 0)
        return SHIMMER_RELIABLE_DUE_NOW;
    gint64 deadline = SHIMMER_RELIABLE_NO_DEADLINE;
    for (guint i = 0; i < SHIMMER_RELIABLE_SEND_WINDOW; i++) {
        const SendSlot *s = &r->send[i];
        if (!s->in_use)
            continue;
        if (s->sends == 0 || s->fast_due)
            return SHIMMER_RELIABLE_DUE_NOW;
        deadline = MIN(deadline, s->due);
    }
    return deadline;
}

/* ---- Statistics ---- */

void shimmer_reliable_get_stats(const ShimmerReliable *r, ShimmerReliableStats *out)
{
    g_return_if_fail(r != NULL);
    g_return_if_fail(out != NULL);
    *out = r->stats;
}
