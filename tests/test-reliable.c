/* SPDX-License-Identifier: MIT */
#include <glib.h>
#include <string.h>

#include "reliable.h"

/* Opcodes are opaque to the reliable layer; these only need to differ. */
#define KIND_CONTROL 4
#define KIND_RESET   7

#define SEC(x) ((gint64)(x)*G_USEC_PER_SEC)
#define MS(x)  ((gint64)(x)*1000)

/* An arbitrary start so that nothing depends on time starting at 0. */
#define T0 SEC(1000)

static ShimmerReliable *new_with_payload(gsize max_payload)
{
    ShimmerReliableConfig c = {.max_payload = max_payload};
    return shimmer_reliable_new(&c);
}

static void fill_pattern(guint8 *buf, gsize len, guint8 seed)
{
    for (gsize i = 0; i < len; i++)
        buf[i] = (guint8)(seed + i * 7 + (i >> 8));
}

/* ---- Deterministic unit tests ---- */

/* Acks taken once ride again in a packet's spare room (most recent first,
 * none twice, never beyond MAX): a 2.6 server's stateless reset is acked
 * by every early packet, also when the first one carrying the ack is lost. */
static void test_recent_acks(void)
{
    ShimmerReliable *r = new_with_payload(100);
    guint32 acks[8];
    g_assert_cmpuint(shimmer_reliable_add_recent_acks(r, acks, 0, 4), ==, 0);
    g_assert_cmpint(shimmer_reliable_incoming(r, 0, NULL, 0), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, 4), ==, 1);
    g_assert_cmpuint(acks[0], ==, 0);
    /* Nothing pending: the retransmitted packet acks pid 0 again. */
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, 4), ==, 0);
    g_assert_cmpuint(shimmer_reliable_add_recent_acks(r, acks, 0, 4), ==, 1);
    g_assert_cmpuint(acks[0], ==, 0);
    for (guint32 pid = 1; pid <= 5; pid++) {
        g_assert_cmpint(shimmer_reliable_incoming(r, pid, "x", 1), ==, SHIMMER_RELIABLE_RX_NEW);
        g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, 4), ==, 1);
    }
    /* Pending 6 first, then the recent ones not listed: 5, 4, 3. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 6, "x", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    gsize n = shimmer_reliable_take_acks(r, acks, 4);
    g_assert_cmpuint(n, ==, 1);
    n = shimmer_reliable_add_recent_acks(r, acks, n, 4);
    g_assert_cmpuint(n, ==, 4);
    g_assert_cmpuint(acks[0], ==, 6);
    g_assert_cmpuint(acks[1], ==, 5);
    g_assert_cmpuint(acks[2], ==, 4);
    g_assert_cmpuint(acks[3], ==, 3);
    /* A pid taken again moves to the front once. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 4, "x", 1), ==, SHIMMER_RELIABLE_RX_DUPLICATE);
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, 4), ==, 1);
    n = shimmer_reliable_add_recent_acks(r, acks, 0, 8);
    g_assert_cmpuint(n, ==, SHIMMER_RELIABLE_RECENT_ACKS);
    g_assert_cmpuint(acks[0], ==, 4);
    g_assert_cmpuint(acks[1], ==, 6);
    g_assert_cmpuint(acks[2], ==, 5);
    g_assert_cmpuint(acks[3], ==, 3);
    shimmer_reliable_free(r);
}

static void test_timer_doubling(void)
{
    g_autoptr(ShimmerReliable) r = shimmer_reliable_new(NULL);
    ShimmerReliableMessage m;
    guint32 pid = 99;

    g_assert_true(shimmer_reliable_queue_message(r, KIND_RESET, NULL, 0, &pid, NULL));
    g_assert_cmpuint(pid, ==, 0);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_DUE_NOW);

    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 0);
    g_assert_cmpuint(m.kind, ==, KIND_RESET);
    g_assert_cmpuint(m.len, ==, 0);
    g_assert_false(m.retransmit);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + SEC(2));
    g_assert_false(shimmer_reliable_next_to_send(r, T0 + SEC(2) - 1, &m));

    /* 2 s, then doubling per retransmission, capped at 60 s. */
    static const gint64 waits[] = {SEC(4), SEC(8), SEC(16), SEC(32), SEC(60), SEC(60), SEC(60)};
    gint64 now = T0 + SEC(2);
    for (guint i = 0; i < G_N_ELEMENTS(waits); i++) {
        g_assert_false(shimmer_reliable_next_to_send(r, now - 1, &m));
        g_assert_true(shimmer_reliable_next_to_send(r, now, &m));
        g_assert_cmpuint(m.pid, ==, 0);
        g_assert_cmpuint(m.kind, ==, KIND_RESET);
        g_assert_true(m.retransmit);
        g_assert_false(shimmer_reliable_next_to_send(r, now, &m));
        g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, now + waits[i]);
        now += waits[i];
    }
    g_assert_cmpint(now, ==, T0 + SEC(2 + 4 + 8 + 16 + 32 + 60 * 3));

    ShimmerReliableStats st;
    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.messages_sent, ==, 1);
    g_assert_cmpuint(st.retransmits, ==, 7);
    g_assert_cmpuint(st.fast_retransmits, ==, 0);

    /* The ack ends it. */
    g_assert_true(shimmer_reliable_ack_received(r, 0));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_NO_DEADLINE);
    g_assert_false(shimmer_reliable_next_to_send(r, now + SEC(3600), &m));
    g_assert_cmpuint(shimmer_reliable_unacked(r), ==, 0);
}

static void test_timer_late_and_custom(void)
{
    ShimmerReliableConfig c = {.initial_timeout = SEC(1), .max_timeout = SEC(5)};
    g_autoptr(ShimmerReliable) r = shimmer_reliable_new(&c);
    ShimmerReliableMessage m;

    g_assert_true(shimmer_reliable_queue_message(r, KIND_RESET, NULL, 0, NULL, NULL));
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + SEC(1));

    /* The caller woke up late: the next timeout counts from when it really
     * retransmitted. */
    gint64 now = T0 + SEC(1) + MS(700);
    static const gint64 waits[] = {SEC(2), SEC(4), SEC(5), SEC(5)};
    for (guint i = 0; i < G_N_ELEMENTS(waits); i++) {
        g_assert_true(shimmer_reliable_next_to_send(r, now, &m));
        g_assert_true(m.retransmit);
        g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, now + waits[i]);
        now += waits[i] + MS(1);
    }
}

static void test_bad_config(void)
{
    if (g_test_subprocess()) {
        ShimmerReliableConfig c = {.initial_timeout = SEC(10), .max_timeout = SEC(5)};
        g_assert_null(shimmer_reliable_new(&c));
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*max_timeout >= c.initial_timeout*");
}

/* Sends pids 0..4 (100 bytes each) at T0. */
static ShimmerReliable *five_in_flight(guint8 *data)
{
    ShimmerReliable *r = new_with_payload(100);
    ShimmerReliableMessage m;

    fill_pattern(data, 500, 1);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 500), ==, 500);
    for (guint32 i = 0; i < 5; i++) {
        g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
        g_assert_cmpuint(m.pid, ==, i);
        g_assert_cmpuint(m.len, ==, 100);
        g_assert_false(m.retransmit);
        g_assert_cmpmem(m.payload, m.len, data + i * 100, 100);
    }
    g_assert_false(shimmer_reliable_next_to_send(r, T0, &m));
    return r;
}

static void test_fast_retransmit(void)
{
    guint8 data[500];
    g_autoptr(ShimmerReliable) r = five_in_flight(data);
    ShimmerReliableMessage m;
    ShimmerReliableStats st;
    gint64 now = T0 + MS(100);

    g_assert_true(shimmer_reliable_ack_received(r, 1));
    g_assert_true(shimmer_reliable_ack_received(r, 2));
    /* Two later acks are not enough. */
    g_assert_false(shimmer_reliable_next_to_send(r, now, &m));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + SEC(2));

    g_assert_true(shimmer_reliable_ack_received(r, 3));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_DUE_NOW);
    g_assert_true(shimmer_reliable_next_to_send(r, now, &m));
    g_assert_cmpuint(m.pid, ==, 0);
    g_assert_true(m.retransmit);
    g_assert_cmpmem(m.payload, m.len, data, 100);
    /* pid 4 only had acks of messages sent before it: not due. */
    g_assert_false(shimmer_reliable_next_to_send(r, now, &m));
    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.retransmits, ==, 1);
    g_assert_cmpuint(st.fast_retransmits, ==, 1);

    /* pid 0 re-armed at now + 2 s (no doubling); pid 4 still at T0 + 2 s. */
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + SEC(2));

    /* The count starts again for the new copy: two acks of messages sent
     * after it are not enough. */
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 200), ==, 200);
    g_assert_true(shimmer_reliable_next_to_send(r, now, &m));
    g_assert_cmpuint(m.pid, ==, 5);
    g_assert_true(shimmer_reliable_next_to_send(r, now, &m));
    g_assert_cmpuint(m.pid, ==, 6);
    g_assert_true(shimmer_reliable_ack_received(r, 5));
    g_assert_true(shimmer_reliable_ack_received(r, 6));
    g_assert_false(shimmer_reliable_next_to_send(r, now, &m));

    /* pid 4 was sent before the retransmitted copy of pid 0: its ack says
     * nothing about that copy and must not count. */
    g_assert_true(shimmer_reliable_ack_received(r, 4));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, now + SEC(2));
    g_assert_false(shimmer_reliable_next_to_send(r, now + SEC(2) - 1, &m));

    /* The timer of pid 0 fires: now it doubles from 2 s to 4 s. */
    gint64 later = now + SEC(2);
    g_assert_true(shimmer_reliable_next_to_send(r, later, &m));
    g_assert_cmpuint(m.pid, ==, 0);
    g_assert_true(m.retransmit);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, later + SEC(4));
    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.retransmits, ==, 2);
    g_assert_cmpuint(st.fast_retransmits, ==, 1);
}

static void test_fast_retransmit_counts_only_later(void)
{
    guint8 data[500];
    g_autoptr(ShimmerReliable) r = five_in_flight(data);
    ShimmerReliableMessage m;
    gint64 now = T0 + MS(100);

    /* Acks of 0, 1, 2 are all earlier than pid 3 and 4: nothing is due. For
     * pid 3, the acks of 0..2 do not count, so 4 unacked as well. */
    g_assert_true(shimmer_reliable_ack_received(r, 0));
    g_assert_true(shimmer_reliable_ack_received(r, 1));
    g_assert_true(shimmer_reliable_ack_received(r, 2));
    g_assert_false(shimmer_reliable_next_to_send(r, now, &m));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + SEC(2));

    /* Duplicate and unknown acks do not count either. */
    g_assert_false(shimmer_reliable_ack_received(r, 2));
    g_assert_false(shimmer_reliable_ack_received(r, 2));
    g_assert_false(shimmer_reliable_ack_received(r, 2));
    g_assert_false(shimmer_reliable_ack_received(r, 17));
    g_assert_false(shimmer_reliable_next_to_send(r, now, &m));
    g_assert_cmpuint(shimmer_reliable_unacked(r), ==, 2);
}

static void test_send_window(void)
{
    g_autoptr(ShimmerReliable) r = new_with_payload(100);
    guint8 data[1000];
    ShimmerReliableMessage m;
    g_autoptr(GError) error = NULL;

    fill_pattern(data, sizeof(data), 3);
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 600);
    /* 6 messages of 100 bytes, the rest refused. */
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 650), ==, 600);
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 0);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data + 600, 50), ==, 0);
    g_assert_cmpuint(shimmer_reliable_unacked(r), ==, 6);
    g_assert_false(shimmer_reliable_queue_message(r, KIND_RESET, NULL, 0, NULL, &error));
    g_assert_error(error, SHIMMER_RELIABLE_ERROR, SHIMMER_RELIABLE_ERROR_WINDOW_FULL);
    g_clear_error(&error);

    for (guint32 i = 0; i < 6; i++) {
        g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
        g_assert_cmpuint(m.pid, ==, i);
    }
    g_assert_false(shimmer_reliable_next_to_send(r, T0, &m));

    /* Acking the oldest frees one slot. */
    g_assert_true(shimmer_reliable_ack_received(r, 0));
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 100);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data + 600, 400), ==, 100);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 6);
    g_assert_cmpmem(m.payload, m.len, data + 600, 100);
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 0);
}

static void test_send_window_span(void)
{
    /* While pid 0 stays unacked, freed slots may be reused only for pids
     * below 0 + 12: the peer buffers no more. */
    g_autoptr(ShimmerReliable) r = new_with_payload(10);
    guint8 data[200];
    ShimmerReliableMessage m;

    fill_pattern(data, sizeof(data), 5);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 60), ==, 60);
    for (guint32 i = 0; i < 6; i++)
        g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    for (guint32 i = 1; i <= 5; i++)
        g_assert_true(shimmer_reliable_ack_received(r, i));
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 50);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data + 60, 50), ==, 50);
    /* Five later acks made pid 0 due for fast retransmit; lowest pid first. */
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 0);
    g_assert_true(m.retransmit);
    for (guint32 i = 6; i <= 10; i++) {
        g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
        g_assert_cmpuint(m.pid, ==, i);
    }
    for (guint32 i = 6; i <= 10; i++)
        g_assert_true(shimmer_reliable_ack_received(r, i));
    /* 5 slots free, but only pid 11 fits the span. */
    g_assert_cmpuint(shimmer_reliable_unacked(r), ==, 1);
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 10);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data + 110, 50), ==, 10);
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 0);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 0);
    g_assert_true(m.retransmit);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 11);
    g_assert_false(m.retransmit);

    /* Once pid 0 is acked, the base is 11 and 5 new pids fit. */
    g_assert_true(shimmer_reliable_ack_received(r, 0));
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 50);
}

static void test_queue_coalesce(void)
{
    g_autoptr(ShimmerReliable) r = new_with_payload(100);
    guint8 data[300];
    ShimmerReliableMessage m;
    guint32 pid = 0;
    g_autoptr(GError) error = NULL;

    fill_pattern(data, sizeof(data), 9);

    /* A reset is never merged with stream data. */
    g_assert_true(shimmer_reliable_queue_message(r, KIND_RESET, NULL, 0, &pid, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(pid, ==, 0);
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 500);

    /* Small writes share one unsent message. */
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 30), ==, 30);
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 70 + 400);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data + 30, 20), ==, 20);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data + 50, 0), ==, 0);
    g_assert_cmpuint(shimmer_reliable_unacked(r), ==, 2);

    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 0);
    g_assert_cmpuint(m.kind, ==, KIND_RESET);
    g_assert_cmpuint(m.len, ==, 0);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 1);
    g_assert_cmpuint(m.kind, ==, KIND_CONTROL);
    g_assert_cmpmem(m.payload, m.len, data, 50);

    /* Once sent, a message is frozen: new data starts pid 2. */
    g_assert_cmpuint(shimmer_reliable_writable(r), ==, 400);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data + 50, 150), ==, 150);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 2);
    g_assert_cmpmem(m.payload, m.len, data + 50, 100);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 3);
    g_assert_cmpmem(m.payload, m.len, data + 150, 50);

    /* A different kind does not merge into an open tail. */
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 10), ==, 10);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL + 1, data + 10, 10), ==, 10);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 4);
    g_assert_cmpuint(m.len, ==, 10);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_cmpuint(m.pid, ==, 5);
    g_assert_cmpuint(m.kind, ==, KIND_CONTROL + 1);

    /* Too large for one message. */
    g_autoptr(ShimmerReliable) r2 = new_with_payload(100);
    g_assert_false(shimmer_reliable_queue_message(r2, KIND_CONTROL, data, 101, NULL, &error));
    g_assert_error(error, SHIMMER_RELIABLE_ERROR, SHIMMER_RELIABLE_ERROR_TOO_LARGE);
    g_assert_cmpuint(shimmer_reliable_unacked(r2), ==, 0);
    g_assert_true(shimmer_reliable_queue_message(r2, KIND_CONTROL, data, 100, &pid, NULL));
    g_assert_cmpuint(pid, ==, 0);
    /* A sealed message is not extended by stream writes. */
    g_assert_cmpuint(shimmer_reliable_queue(r2, KIND_CONTROL, data, 5), ==, 5);
    g_assert_cmpuint(shimmer_reliable_unacked(r2), ==, 2);
}

static void test_ack_unknown(void)
{
    guint8 data[100];
    g_autoptr(ShimmerReliable) r = new_with_payload(100);
    ShimmerReliableMessage m;
    ShimmerReliableStats st;

    /* Nothing queued. */
    g_assert_false(shimmer_reliable_ack_received(r, 0));
    g_assert_false(shimmer_reliable_ack_received(r, G_MAXUINT32));

    /* Queued but never sent: the peer cannot have it. */
    fill_pattern(data, sizeof(data), 0);
    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 100), ==, 100);
    g_assert_false(shimmer_reliable_ack_received(r, 0));
    g_assert_cmpuint(shimmer_reliable_unacked(r), ==, 1);

    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    g_assert_false(shimmer_reliable_ack_received(r, 1));
    g_assert_true(shimmer_reliable_ack_received(r, 0));
    g_assert_false(shimmer_reliable_ack_received(r, 0));
    g_assert_cmpuint(shimmer_reliable_unacked(r), ==, 0);

    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.acks_received, ==, 1);
    g_assert_cmpuint(st.acks_ignored, ==, 5);
}

static gsize take_all_acks(ShimmerReliable *r, guint32 *out, gsize max)
{
    return shimmer_reliable_take_acks(r, out, max);
}

static void test_receive_window_edge(void)
{
    g_autoptr(ShimmerReliable) r = shimmer_reliable_new(NULL);
    guint32 acks[SHIMMER_RELIABLE_MAX_PENDING_ACKS];
    guint8 buf[16];
    ShimmerReliableStats st;

    g_assert_cmpint(shimmer_reliable_incoming(r, 11, "k", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpint(shimmer_reliable_incoming(r, 12, "l", 1), ==, SHIMMER_RELIABLE_RX_DROPPED);
    g_assert_cmpint(shimmer_reliable_incoming(r, 400, "x", 1), ==, SHIMMER_RELIABLE_RX_DROPPED);
    g_assert_cmpuint(take_all_acks(r, acks, G_N_ELEMENTS(acks)), ==, 1);
    g_assert_cmpuint(acks[0], ==, 11);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 0);

    /* pid 0 arrives and is read: the window moves to 1..12. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 0, "a", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    /* Not read yet: the window has not moved. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 12, "l", 1), ==, SHIMMER_RELIABLE_RX_DROPPED);
    g_assert_cmpuint(shimmer_reliable_read(r, buf, sizeof(buf)), ==, 1);
    g_assert_cmpint(buf[0], ==, 'a');
    g_assert_cmpint(shimmer_reliable_incoming(r, 12, "l", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpint(shimmer_reliable_incoming(r, 13, "m", 1), ==, SHIMMER_RELIABLE_RX_DROPPED);
    g_assert_cmpuint(take_all_acks(r, acks, G_N_ELEMENTS(acks)), ==, 2);
    g_assert_cmpuint(acks[0], ==, 0);
    g_assert_cmpuint(acks[1], ==, 12);

    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.messages_received, ==, 3);
    g_assert_cmpuint(st.dropped_out_of_window, ==, 4);
    g_assert_cmpuint(st.duplicates, ==, 0);

    /* An empty message (a reset) needs no read to move the window. */
    g_autoptr(ShimmerReliable) r2 = shimmer_reliable_new(NULL);
    g_assert_cmpint(shimmer_reliable_incoming(r2, 0, NULL, 0), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpuint(shimmer_reliable_readable(r2), ==, 0);
    g_assert_cmpint(shimmer_reliable_incoming(r2, 12, "l", 1), ==, SHIMMER_RELIABLE_RX_NEW);
}

static void test_duplicate_reacked(void)
{
    g_autoptr(ShimmerReliable) r = shimmer_reliable_new(NULL);
    guint32 acks[SHIMMER_RELIABLE_MAX_PENDING_ACKS];
    guint8 buf[16];
    ShimmerReliableStats st;

    g_assert_cmpint(shimmer_reliable_incoming(r, 0, "abc", 3), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_true(shimmer_reliable_has_pending_acks(r));
    g_assert_cmpuint(take_all_acks(r, acks, G_N_ELEMENTS(acks)), ==, 1);
    g_assert_cmpuint(acks[0], ==, 0);
    g_assert_false(shimmer_reliable_has_pending_acks(r));
    g_assert_cmpuint(shimmer_reliable_read(r, buf, sizeof(buf)), ==, 3);

    /* Our ack was lost; the peer resends pid 0: ack again, deliver nothing. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 0, "XYZ", 3), ==, SHIMMER_RELIABLE_RX_DUPLICATE);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 0);
    g_assert_cmpuint(take_all_acks(r, acks, G_N_ELEMENTS(acks)), ==, 1);
    g_assert_cmpuint(acks[0], ==, 0);

    /* A duplicate still buffered out of order: acked again, once per flush,
     * and the first copy is kept. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 3, "d", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpint(shimmer_reliable_incoming(r, 3, "D", 1), ==, SHIMMER_RELIABLE_RX_DUPLICATE);
    g_assert_cmpuint(take_all_acks(r, acks, G_N_ELEMENTS(acks)), ==, 1);
    g_assert_cmpuint(acks[0], ==, 3);
    g_assert_cmpint(shimmer_reliable_incoming(r, 3, "D", 1), ==, SHIMMER_RELIABLE_RX_DUPLICATE);
    g_assert_cmpuint(take_all_acks(r, acks, G_N_ELEMENTS(acks)), ==, 1);
    g_assert_cmpuint(acks[0], ==, 3);

    g_assert_cmpint(shimmer_reliable_incoming(r, 2, "c", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpint(shimmer_reliable_incoming(r, 1, "b", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 3);
    g_assert_cmpuint(shimmer_reliable_read(r, buf, sizeof(buf)), ==, 3);
    g_assert_cmpmem(buf, 3, "bcd", 3);

    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.messages_received, ==, 4);
    g_assert_cmpuint(st.duplicates, ==, 3);
}

static void test_read_in_order(void)
{
    g_autoptr(ShimmerReliable) r = shimmer_reliable_new(NULL);
    guint8 buf[32];

    g_assert_cmpint(shimmer_reliable_incoming(r, 2, "6789", 4), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpint(shimmer_reliable_incoming(r, 1, "345", 3), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 0);
    g_assert_cmpuint(shimmer_reliable_read(r, buf, sizeof(buf)), ==, 0);
    g_assert_cmpint(shimmer_reliable_incoming(r, 0, "012", 3), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 10);

    /* Partial reads across message boundaries. */
    g_assert_cmpuint(shimmer_reliable_read(r, buf, 2), ==, 2);
    g_assert_cmpmem(buf, 2, "01", 2);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 8);
    g_assert_cmpuint(shimmer_reliable_read(r, buf, 5), ==, 5);
    g_assert_cmpmem(buf, 5, "23456", 5);
    g_assert_cmpuint(shimmer_reliable_read(r, buf, sizeof(buf)), ==, 3);
    g_assert_cmpmem(buf, 3, "789", 3);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 0);

    /* Window now starts at 3. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 14, "e", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpint(shimmer_reliable_incoming(r, 15, "f", 1), ==, SHIMMER_RELIABLE_RX_DROPPED);
    g_assert_cmpint(shimmer_reliable_incoming(r, 2, "6789", 4), ==, SHIMMER_RELIABLE_RX_DUPLICATE);
}

static void test_oversized(void)
{
    ShimmerReliableConfig c = {.max_recv_payload = 100};
    g_autoptr(ShimmerReliable) r = shimmer_reliable_new(&c);
    guint8 data[101] = {0};
    ShimmerReliableStats st;

    g_assert_cmpint(shimmer_reliable_incoming(r, 0, data, 101), ==, SHIMMER_RELIABLE_RX_DROPPED);
    g_assert_false(shimmer_reliable_has_pending_acks(r));
    g_assert_cmpint(shimmer_reliable_incoming(r, 0, data, 100), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpuint(shimmer_reliable_readable(r), ==, 100);
    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.dropped_oversized, ==, 1);
}

static void test_ack_list(void)
{
    g_autoptr(ShimmerReliable) r = shimmer_reliable_new(NULL);
    guint32 acks[64];
    guint8 buf[4];
    ShimmerReliableStats st;

    for (guint32 i = 0; i < 10; i++) {
        g_assert_cmpint(shimmer_reliable_incoming(r, i, "x", 1), ==, SHIMMER_RELIABLE_RX_NEW);
        g_assert_cmpuint(shimmer_reliable_read(r, buf, sizeof(buf)), ==, 1);
    }
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, SHIMMER_RELIABLE_MAX_ACKS_CONTROL), ==, 4);
    for (guint32 i = 0; i < 4; i++)
        g_assert_cmpuint(acks[i], ==, i);
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, SHIMMER_RELIABLE_MAX_ACKS_ACK_V1), ==, 6);
    for (guint32 i = 0; i < 6; i++)
        g_assert_cmpuint(acks[i], ==, 4 + i);
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, 8), ==, 0);

    /* The pending list is bounded: extra pids are dropped, oldest kept. */
    for (guint32 i = 10; i < 10 + SHIMMER_RELIABLE_MAX_PENDING_ACKS + 6; i++) {
        g_assert_cmpint(shimmer_reliable_incoming(r, i, "x", 1), ==, SHIMMER_RELIABLE_RX_NEW);
        g_assert_cmpuint(shimmer_reliable_read(r, buf, sizeof(buf)), ==, 1);
    }
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, G_N_ELEMENTS(acks)), ==,
                     SHIMMER_RELIABLE_MAX_PENDING_ACKS);
    for (guint32 i = 0; i < SHIMMER_RELIABLE_MAX_PENDING_ACKS; i++)
        g_assert_cmpuint(acks[i], ==, 10 + i);
    shimmer_reliable_get_stats(r, &st);
    g_assert_cmpuint(st.acks_dropped, ==, 6);
}

static void test_deadline(void)
{
    g_autoptr(ShimmerReliable) r = new_with_payload(100);
    guint8 data[300];
    guint32 acks[8];
    ShimmerReliableMessage m;

    fill_pattern(data, sizeof(data), 2);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_NO_DEADLINE);

    g_assert_cmpuint(shimmer_reliable_queue(r, KIND_CONTROL, data, 150), ==, 150);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_DUE_NOW);
    g_assert_true(shimmer_reliable_next_to_send(r, T0, &m));
    /* pid 1 not sent yet: still due now. */
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_DUE_NOW);
    g_assert_true(shimmer_reliable_next_to_send(r, T0 + MS(500), &m));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + SEC(2));

    /* Acking pid 0 leaves pid 1's timer. */
    g_assert_true(shimmer_reliable_ack_received(r, 0));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + MS(2500));

    /* Pending acks must go out now. */
    g_assert_cmpint(shimmer_reliable_incoming(r, 0, "x", 1), ==, SHIMMER_RELIABLE_RX_NEW);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_DUE_NOW);
    g_assert_cmpuint(shimmer_reliable_take_acks(r, acks, 8), ==, 1);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + MS(2500));

    /* pid 1 retransmitted at its deadline: next one 4 s later. */
    g_assert_true(shimmer_reliable_next_to_send(r, T0 + MS(2500), &m));
    g_assert_cmpuint(m.pid, ==, 1);
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, T0 + MS(6500));

    g_assert_true(shimmer_reliable_ack_received(r, 1));
    g_assert_cmpint(shimmer_reliable_next_deadline(r), ==, SHIMMER_RELIABLE_NO_DEADLINE);
}

/* ---- Two endpoints over a simulated lossy link ---- */

/* splitmix64: tiny, deterministic on every platform and GLib version. */
typedef struct {
    guint64 s;
} Rng;

static guint64 rng_next(Rng *g)
{
    guint64 z = (g->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* TRUE with probability PERCENT / 100. */
static gboolean rng_chance(Rng *g, guint percent)
{
    return rng_next(g) % 100 < percent;
}

static guint64 rng_range(Rng *g, guint64 lo, guint64 hi)
{
    return lo + rng_next(g) % (hi - lo + 1);
}

#define SIM_MAX_PAYLOAD 1250
#define SIM_LATENCY     MS(20)

typedef struct {
    guint loss_msg;  /* % of packets carrying a message lost */
    guint loss_ack;  /* % of ACK_V1 packets lost */
    guint duplicate; /* % of packets delivered twice */
    guint reorder;   /* % of packets delayed by up to 300 ms */
    gsize bytes_a_to_b;
    gsize bytes_b_to_a;
} LinkParams;

typedef struct {
    gint64 at;
    guint64 seq;
    guint to;
    gboolean has_msg;
    guint32 pid;
    guint8 kind;
    gsize len;
    guint8 payload[SIM_MAX_PAYLOAD];
    guint n_acks;
    guint32 acks[SHIMMER_RELIABLE_MAX_ACKS_ACK_V1];
} SimPacket;

typedef struct {
    ShimmerReliable *rel;
    guint8 *src;
    gsize src_len;
    gsize src_off;
    guint8 *dst;
    gsize dst_len;
    gsize dst_off;
    guint64 expected_pid; /* to count out-of-order arrivals */
    guint out_of_order;
} SimEnd;

typedef struct {
    const LinkParams *p;
    Rng rng;
    GPtrArray *flight; /* SimPacket * */
    guint64 seq;
    SimEnd end[2];
    guint packets_lost;
    guint packets_duplicated;
} Sim;

static void sim_transmit(Sim *sim, gint64 now, guint to, const SimPacket *pkt)
{
    guint loss = pkt->has_msg ? sim->p->loss_msg : sim->p->loss_ack;
    if (rng_chance(&sim->rng, loss)) {
        sim->packets_lost++;
        return;
    }
    guint copies = rng_chance(&sim->rng, sim->p->duplicate) ? 2 : 1;
    if (copies == 2)
        sim->packets_duplicated++;
    for (guint i = 0; i < copies; i++) {
        SimPacket *q = g_memdup2(pkt, sizeof(*pkt));
        q->to = to;
        q->at = now + SIM_LATENCY;
        if (rng_chance(&sim->rng, sim->p->reorder))
            q->at += (gint64)rng_range(&sim->rng, 1, MS(300));
        q->seq = sim->seq++;
        g_ptr_array_add(sim->flight, q);
    }
}

/* What the engine does whenever it runs: feed TLS output, send due messages
 * with piggybacked acks, flush the remaining acks in ACK_V1 packets. */
static void sim_service(Sim *sim, guint self, gint64 now)
{
    SimEnd *e = &sim->end[self];
    ShimmerReliableMessage m;

    while (e->src_off < e->src_len) {
        gsize w = shimmer_reliable_writable(e->rel);
        if (w == 0)
            break;
        /* Random write sizes exercise both splitting and merging. */
        gsize want = (gsize)rng_range(&sim->rng, 1, 3000); /* MIN() evaluates twice */
        gsize n = MIN(want, e->src_len - e->src_off);
        gsize got = shimmer_reliable_queue(e->rel, KIND_CONTROL, e->src + e->src_off, n);
        g_assert_cmpuint(got, ==, MIN(n, w));
        e->src_off += got;
    }

    while (shimmer_reliable_next_to_send(e->rel, now, &m)) {
        SimPacket pkt = {0};
        g_assert_cmpuint(m.len, <=, SIM_MAX_PAYLOAD);
        g_assert_cmpuint(m.kind, ==, KIND_CONTROL);
        pkt.has_msg = TRUE;
        pkt.pid = m.pid;
        pkt.kind = m.kind;
        pkt.len = m.len;
        memcpy(pkt.payload, m.payload, m.len);
        pkt.n_acks =
            (guint)shimmer_reliable_take_acks(e->rel, pkt.acks, SHIMMER_RELIABLE_MAX_ACKS_CONTROL);
        sim_transmit(sim, now, !self, &pkt);
    }
    while (shimmer_reliable_has_pending_acks(e->rel)) {
        SimPacket pkt = {0};
        pkt.n_acks =
            (guint)shimmer_reliable_take_acks(e->rel, pkt.acks, SHIMMER_RELIABLE_MAX_ACKS_ACK_V1);
        g_assert_cmpuint(pkt.n_acks, >, 0);
        sim_transmit(sim, now, !self, &pkt);
    }

    /* Everything due was done. */
    g_assert_cmpint(shimmer_reliable_next_deadline(e->rel), >, now);
}

static void sim_deliver(Sim *sim, const SimPacket *pkt, gint64 now)
{
    SimEnd *e = &sim->end[pkt->to];

    for (guint i = 0; i < pkt->n_acks; i++)
        shimmer_reliable_ack_received(e->rel, pkt->acks[i]);
    if (pkt->has_msg) {
        /* Arrived ahead of a gap (duplicates are counted by the layer). */
        if (pkt->pid > e->expected_pid)
            e->out_of_order++;
        e->expected_pid = MAX(e->expected_pid, (guint64)pkt->pid + 1);
        ShimmerReliableRx rx = shimmer_reliable_incoming(e->rel, pkt->pid, pkt->payload, pkt->len);
        /* The app reads everything at once, so a sender that respects the
         * window never overruns it. */
        g_assert_cmpint(rx, !=, SHIMMER_RELIABLE_RX_DROPPED);
        gsize avail = shimmer_reliable_readable(e->rel);
        g_assert_cmpuint(e->dst_off + avail, <=, e->dst_len);
        gsize got = shimmer_reliable_read(e->rel, e->dst + e->dst_off, e->dst_len - e->dst_off);
        g_assert_cmpuint(got, ==, avail);
        /* In order and intact so far. */
        g_assert_cmpmem(e->dst + e->dst_off, got, sim->end[!pkt->to].src + e->dst_off, got);
        e->dst_off += got;
    }
    sim_service(sim, pkt->to, now);
}

static gboolean sim_done(const Sim *sim)
{
    for (guint i = 0; i < 2; i++) {
        const SimEnd *e = &sim->end[i];
        if (e->dst_off < e->dst_len || e->src_off < e->src_len ||
            shimmer_reliable_unacked(e->rel) > 0)
            return FALSE;
    }
    return TRUE;
}

static void sim_run(const LinkParams *p, guint64 seed, ShimmerReliableStats stats[2], Sim *out)
{
    Sim sim = {.p = p, .rng = {seed}};
    ShimmerReliableConfig cfg = {.max_payload = SIM_MAX_PAYLOAD};
    gsize lens[2] = {p->bytes_a_to_b, p->bytes_b_to_a};
    gint64 now = T0;

    sim.flight = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < 2; i++) {
        SimEnd *e = &sim.end[i];
        e->rel = shimmer_reliable_new(&cfg);
        e->src_len = lens[i];
        e->src = g_malloc(e->src_len + 1);
        for (gsize k = 0; k < e->src_len; k++)
            e->src[k] = (guint8)rng_next(&sim.rng);
    }
    sim.end[0].dst_len = lens[1];
    sim.end[1].dst_len = lens[0];
    for (guint i = 0; i < 2; i++)
        sim.end[i].dst = g_malloc(sim.end[i].dst_len + 1);

    sim_service(&sim, 0, now);
    sim_service(&sim, 1, now);

    guint steps = 0;
    while (!sim_done(&sim)) {
        g_assert_cmpuint(++steps, <, 1000000);
        /* Next event: the earliest packet arrival or endpoint deadline. */
        gint64 next = G_MAXINT64;
        int which_pkt = -1;
        for (guint i = 0; i < sim.flight->len; i++) {
            const SimPacket *q = g_ptr_array_index(sim.flight, i);
            const SimPacket *b = which_pkt < 0 ? NULL : g_ptr_array_index(sim.flight, which_pkt);
            if (b == NULL || q->at < b->at || (q->at == b->at && q->seq < b->seq))
                which_pkt = (int)i;
        }
        if (which_pkt >= 0)
            next = ((const SimPacket *)g_ptr_array_index(sim.flight, which_pkt))->at;
        gint64 dl[2];
        for (guint i = 0; i < 2; i++)
            dl[i] = shimmer_reliable_next_deadline(sim.end[i].rel);
        /* Something unfinished must have a way forward. */
        g_assert_true(which_pkt >= 0 || dl[0] != SHIMMER_RELIABLE_NO_DEADLINE ||
                      dl[1] != SHIMMER_RELIABLE_NO_DEADLINE);

        if (dl[0] <= next || dl[1] <= next) {
            guint who = dl[0] <= dl[1] ? 0 : 1;
            /* sim_service left nothing due at the time it ran; the other end
             * may share the instant. */
            g_assert_cmpint(dl[who], >=, now);
            now = dl[who];
            /* A deadline is never spurious: a message is due exactly then. */
            ShimmerReliableStats before, after;
            shimmer_reliable_get_stats(sim.end[who].rel, &before);
            sim_service(&sim, who, now);
            shimmer_reliable_get_stats(sim.end[who].rel, &after);
            g_assert_cmpuint(after.retransmits, >, before.retransmits);
            continue;
        }
        SimPacket *q = g_ptr_array_steal_index_fast(sim.flight, (guint)which_pkt);
        g_assert_cmpint(q->at, >=, now);
        now = q->at;
        sim_deliver(&sim, q, now);
        g_free(q);
        /* Simulated time stays sane even at 30% loss. */
        g_assert_cmpint(now - T0, <, SEC(3600));
    }

    for (guint i = 0; i < 2; i++)
        shimmer_reliable_get_stats(sim.end[i].rel, &stats[i]);
    for (guint i = 0; i < 2; i++) {
        SimEnd *e = &sim.end[i];
        g_assert_cmpuint(e->dst_off, ==, e->dst_len);
        g_assert_cmpmem(e->dst, e->dst_len, sim.end[!i].src, sim.end[!i].src_len);
        g_assert_cmpuint(stats[i].dropped_out_of_window, ==, 0);
        g_assert_cmpuint(stats[i].dropped_oversized, ==, 0);
        g_assert_cmpuint(stats[i].messages_received, ==, stats[!i].messages_queued);
        g_test_message("seed %" G_GUINT64_FORMAT " end %u: t=%.1fs sent %" G_GUINT64_FORMAT
                       " retrans %" G_GUINT64_FORMAT " (fast %" G_GUINT64_FORMAT
                       ") dup %" G_GUINT64_FORMAT " ooo %u",
                       seed, i, (double)(now - T0) / G_USEC_PER_SEC, stats[i].messages_sent,
                       stats[i].retransmits, stats[i].fast_retransmits, stats[i].duplicates,
                       e->out_of_order);
    }
    *out = sim;
    out->flight = NULL;
    for (guint i = 0; i < 2; i++) {
        shimmer_reliable_free(sim.end[i].rel);
        g_free(sim.end[i].src);
        g_free(sim.end[i].dst);
        out->end[i].rel = NULL;
        out->end[i].src = out->end[i].dst = NULL;
    }
    g_ptr_array_unref(sim.flight);
}

#define SIM_SEEDS 6
#define KB100     (100 * 1024)

typedef struct {
    guint64 retransmits, fast_retransmits, duplicates, acks_ignored;
    guint out_of_order, lost, duplicated;
} SimTotals;

static void sim_many(const LinkParams *p, guint64 base_seed, SimTotals *t)
{
    *t = (SimTotals){0};
    for (guint64 s = 0; s < SIM_SEEDS; s++) {
        ShimmerReliableStats st[2];
        Sim sim;
        sim_run(p, base_seed * 1000 + s, st, &sim);
        for (guint i = 0; i < 2; i++) {
            t->retransmits += st[i].retransmits;
            t->fast_retransmits += st[i].fast_retransmits;
            t->duplicates += st[i].duplicates;
            t->acks_ignored += st[i].acks_ignored;
            t->out_of_order += sim.end[i].out_of_order;
        }
        t->lost += sim.packets_lost;
        t->duplicated += sim.packets_duplicated;
    }
}

static void test_sim_clean(void)
{
    LinkParams p = {.bytes_a_to_b = KB100, .bytes_b_to_a = KB100};
    SimTotals t;
    sim_many(&p, 1, &t);
    /* A perfect link: nothing is ever resent or seen twice. */
    g_assert_cmpuint(t.retransmits, ==, 0);
    g_assert_cmpuint(t.duplicates, ==, 0);
    g_assert_cmpuint(t.out_of_order, ==, 0);
    g_assert_cmpuint(t.acks_ignored, ==, 0);
}

static void test_sim_message_loss(void)
{
    LinkParams p = {.loss_msg = 30, .bytes_a_to_b = KB100, .bytes_b_to_a = KB100};
    SimTotals t;
    sim_many(&p, 2, &t);
    g_assert_cmpuint(t.lost, >, 0);
    g_assert_cmpuint(t.retransmits, >, 0);
    g_assert_cmpuint(t.fast_retransmits, >, 0);
}

static void test_sim_ack_loss(void)
{
    /* One way, so that every ack travels in an ACK_V1 packet and 30% of them
     * are lost: the sender resends and the receiver acks the duplicates. */
    LinkParams p = {.loss_ack = 30, .bytes_a_to_b = KB100};
    SimTotals t;
    sim_many(&p, 3, &t);
    g_assert_cmpuint(t.lost, >, 0);
    g_assert_cmpuint(t.retransmits, >, 0);
    g_assert_cmpuint(t.duplicates, >, 0);

    LinkParams p2 = {.loss_ack = 30, .bytes_a_to_b = KB100, .bytes_b_to_a = KB100};
    sim_many(&p2, 4, &t);
    g_assert_cmpuint(t.lost, >, 0);
}

static void test_sim_duplication(void)
{
    LinkParams p = {.duplicate = 30, .bytes_a_to_b = KB100, .bytes_b_to_a = KB100};
    SimTotals t;
    sim_many(&p, 5, &t);
    g_assert_cmpuint(t.duplicated, >, 0);
    g_assert_cmpuint(t.duplicates, >, 0);
    /* Duplicated acks are ignored, not double-counted. */
    g_assert_cmpuint(t.acks_ignored, >, 0);
}

static void test_sim_reordering(void)
{
    LinkParams p = {.reorder = 30, .bytes_a_to_b = KB100, .bytes_b_to_a = KB100};
    SimTotals t;
    sim_many(&p, 6, &t);
    g_assert_cmpuint(t.out_of_order, >, 0);
}

static void test_sim_combined(void)
{
    LinkParams p = {.loss_msg = 30,
                    .loss_ack = 30,
                    .duplicate = 30,
                    .reorder = 30,
                    .bytes_a_to_b = KB100,
                    .bytes_b_to_a = KB100};
    SimTotals t;
    sim_many(&p, 7, &t);
    g_assert_cmpuint(t.lost, >, 0);
    g_assert_cmpuint(t.duplicated, >, 0);
    g_assert_cmpuint(t.retransmits, >, 0);
    g_assert_cmpuint(t.fast_retransmits, >, 0);
    g_assert_cmpuint(t.duplicates, >, 0);
    g_assert_cmpuint(t.out_of_order, >, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/reliable/timer/doubling", test_timer_doubling);
    g_test_add_func("/reliable/timer/late-and-custom", test_timer_late_and_custom);
    g_test_add_func("/reliable/config/bad", test_bad_config);
    g_test_add_func("/reliable/send/fast-retransmit", test_fast_retransmit);
    g_test_add_func("/reliable/send/fast-retransmit-only-later",
                    test_fast_retransmit_counts_only_later);
    g_test_add_func("/reliable/send/window-full", test_send_window);
    g_test_add_func("/reliable/send/window-span", test_send_window_span);
    g_test_add_func("/reliable/send/coalesce", test_queue_coalesce);
    g_test_add_func("/reliable/send/ack-unknown", test_ack_unknown);
    g_test_add_func("/reliable/recv/window-edge", test_receive_window_edge);
    g_test_add_func("/reliable/recv/duplicate-reacked", test_duplicate_reacked);
    g_test_add_func("/reliable/recv/in-order", test_read_in_order);
    g_test_add_func("/reliable/recv/oversized", test_oversized);
    g_test_add_func("/reliable/recv/ack-list", test_ack_list);
    g_test_add_func("/reliable/deadline", test_deadline);
    g_test_add_func("/reliable/sim/clean", test_sim_clean);
    g_test_add_func("/reliable/sim/message-loss", test_sim_message_loss);
    g_test_add_func("/reliable/sim/ack-loss", test_sim_ack_loss);
    g_test_add_func("/reliable/recent-acks", test_recent_acks);
    g_test_add_func("/reliable/sim/duplication", test_sim_duplication);
    g_test_add_func("/reliable/sim/reordering", test_sim_reordering);
    g_test_add_func("/reliable/sim/combined-30", test_sim_combined);

    return g_test_run();
}
