/* SPDX-License-Identifier: MIT */
#include "replay.h"

#include <glib.h>

#define SEC ((gint64)G_USEC_PER_SEC)

/* check, then (when accepted) update: what the receive path does for a packet
 * that authenticated. */
static ShimmerReplayResult receive(ShimmerReplay *r, guint32 id, gint64 now)
{
    ShimmerReplayResult res = shimmer_replay_check(r, id, now);

    if (res == SHIMMER_REPLAY_OK)
        shimmer_replay_update(r, id, now);
    return res;
}

static ShimmerReplay make_window(guint window, guint backtrack_s)
{
    ShimmerReplay r;

    g_assert_true(shimmer_replay_init(&r, window, backtrack_s));
    return r;
}

static void test_init_limits(void)
{
    ShimmerReplay r;

    g_assert_false(shimmer_replay_init(&r, 0, 15));
    g_assert_false(shimmer_replay_init(&r, SHIMMER_REPLAY_MAX_WINDOW + 1, 15));
    g_assert_true(shimmer_replay_init(&r, 1, 15));
    g_assert_true(shimmer_replay_init(&r, SHIMMER_REPLAY_MAX_WINDOW, 0));
    g_assert_true(shimmer_replay_init(&r, SHIMMER_REPLAY_DEFAULT_WINDOW,
                                      SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S));
    g_assert_cmpuint(shimmer_replay_highest(&r), ==, 0);
}

static void test_id_zero(void)
{
    ShimmerReplay r = make_window(64, 15);

    /* Invalid before anything was seen ... */
    g_assert_cmpint(shimmer_replay_check(&r, 0, 0), ==, SHIMMER_REPLAY_INVALID);
    /* ... and recording it does nothing. */
    shimmer_replay_update(&r, 0, 0);
    g_assert_cmpuint(shimmer_replay_highest(&r), ==, 0);
    g_assert_cmpint(receive(&r, 1, 0), ==, SHIMMER_REPLAY_OK);
    /* ... and after. */
    g_assert_cmpint(shimmer_replay_check(&r, 0, 0), ==, SHIMMER_REPLAY_INVALID);
}

static void test_first_packet(void)
{
    static const guint32 firsts[] = {1, 2, 64, 65, 1000, 0x7FFFFFFF, 0xFEFFFFFF, 0xFFFFFFFF};

    for (gsize i = 0; i < G_N_ELEMENTS(firsts); i++) {
        ShimmerReplay r = make_window(64, 15);

        /* Any first id is accepted: the peer may have lost the first ones. */
        g_assert_cmpint(receive(&r, firsts[i], 0), ==, SHIMMER_REPLAY_OK);
        g_assert_cmpuint(shimmer_replay_highest(&r), ==, firsts[i]);
        g_assert_cmpint(shimmer_replay_check(&r, firsts[i], 0), ==, SHIMMER_REPLAY_DUPLICATE);
    }
}

static void test_in_order_and_duplicates(void)
{
    ShimmerReplay r = make_window(64, 15);

    for (guint32 id = 1; id <= 5000; id++) {
        g_assert_cmpint(receive(&r, id, id), ==, SHIMMER_REPLAY_OK);
        g_assert_cmpint(shimmer_replay_check(&r, id, id), ==, SHIMMER_REPLAY_DUPLICATE);
        if (id > 1)
            g_assert_cmpint(shimmer_replay_check(&r, id - 1, id), ==, SHIMMER_REPLAY_DUPLICATE);
    }
    g_assert_cmpuint(shimmer_replay_highest(&r), ==, 5000);
    /* Everything the window still covers is a duplicate, everything before
     * it too old. */
    for (guint32 id = 5000 - 63; id <= 5000; id++)
        g_assert_cmpint(shimmer_replay_check(&r, id, 5000), ==, SHIMMER_REPLAY_DUPLICATE);
    for (guint32 id = 1; id <= 5000 - 64; id++)
        g_assert_cmpint(shimmer_replay_check(&r, id, 5000), ==, SHIMMER_REPLAY_TOO_OLD);
}

/* The window covers WINDOW ids ending at the highest: highest - id < window. */
static void test_window_edge(void)
{
    static const guint windows[] = {1, 2, 7, 63, 64, 65, 100, 512, 1023, 1024};

    for (gsize i = 0; i < G_N_ELEMENTS(windows); i++) {
        guint w = windows[i];
        ShimmerReplay r = make_window(w, 0);
        guint32 high = 5000;

        g_assert_cmpint(receive(&r, high, 0), ==, SHIMMER_REPLAY_OK);
        /* Exactly at the edge: the oldest id the window still covers. */
        g_assert_cmpint(shimmer_replay_check(&r, high - (w - 1), 0), ==,
                        w == 1 ? SHIMMER_REPLAY_DUPLICATE : SHIMMER_REPLAY_OK);
        /* Just outside. */
        g_assert_cmpint(shimmer_replay_check(&r, high - w, 0), ==, SHIMMER_REPLAY_TOO_OLD);
        /* Accepting the edge makes it a duplicate; just outside stays out. */
        if (w > 1) {
            g_assert_cmpint(receive(&r, high - (w - 1), 0), ==, SHIMMER_REPLAY_OK);
            g_assert_cmpint(shimmer_replay_check(&r, high - (w - 1), 0), ==,
                            SHIMMER_REPLAY_DUPLICATE);
        }
        /* One step forward moves the edge by one. */
        g_assert_cmpint(receive(&r, high + 1, 0), ==, SHIMMER_REPLAY_OK);
        g_assert_cmpint(shimmer_replay_check(&r, high - (w - 1), 0), ==, SHIMMER_REPLAY_TOO_OLD);
        if (w > 2)
            g_assert_cmpint(shimmer_replay_check(&r, high - (w - 2), 0), ==, SHIMMER_REPLAY_OK);
    }
}

static void test_default_window_numbers(void)
{
    ShimmerReplay r =
        make_window(SHIMMER_REPLAY_DEFAULT_WINDOW, SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S);

    g_assert_cmpint(receive(&r, 100, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 37, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 36, 0), ==, SHIMMER_REPLAY_TOO_OLD);
    g_assert_cmpint(shimmer_replay_check(&r, 99, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 100, 0), ==, SHIMMER_REPLAY_DUPLICATE);
    g_assert_cmpint(shimmer_replay_check(&r, 101, 0), ==, SHIMMER_REPLAY_OK);
}

static void test_reorder(void)
{
    ShimmerReplay r = make_window(64, 15);

    /* 1 3 2 5 4 6, then replays of each. */
    static const guint32 order[] = {1, 3, 2, 5, 4, 6};

    for (gsize i = 0; i < G_N_ELEMENTS(order); i++)
        g_assert_cmpint(receive(&r, order[i], 0), ==, SHIMMER_REPLAY_OK);
    for (gsize i = 0; i < G_N_ELEMENTS(order); i++)
        g_assert_cmpint(receive(&r, order[i], 0), ==, SHIMMER_REPLAY_DUPLICATE);
    g_assert_cmpuint(shimmer_replay_highest(&r), ==, 6);
}

static void test_large_jumps(void)
{
    ShimmerReplay r = make_window(64, 15);

    g_assert_cmpint(receive(&r, 10, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(receive(&r, 1000000, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 10, 0), ==, SHIMMER_REPLAY_TOO_OLD);
    g_assert_cmpint(shimmer_replay_check(&r, 1000000 - 63, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 1000000 - 64, 0), ==, SHIMMER_REPLAY_TOO_OLD);
    /* Ids that share bitmap slots with ones seen before the jump are
     * unseen. */
    for (guint32 id = 1000000 - 63; id < 1000000; id++)
        g_assert_cmpint(receive(&r, id, 0), ==, SHIMMER_REPLAY_OK);

    /* Jumps of exactly the bitmap size and of just under it, with the largest
     * window, where every slot is in use. */
    {
        ShimmerReplay big = make_window(SHIMMER_REPLAY_MAX_WINDOW, 0);
        guint32 id;

        for (id = 1; id <= 1024; id++)
            g_assert_cmpint(receive(&big, id, 0), ==, SHIMMER_REPLAY_OK);
        g_assert_cmpint(receive(&big, 2048, 0), ==, SHIMMER_REPLAY_OK);
        g_assert_cmpint(shimmer_replay_check(&big, 1024, 0), ==, SHIMMER_REPLAY_TOO_OLD);
        for (id = 1025; id < 2048; id++)
            g_assert_cmpint(shimmer_replay_check(&big, id, 0), ==, SHIMMER_REPLAY_OK);

        g_assert_true(shimmer_replay_init(&big, SHIMMER_REPLAY_MAX_WINDOW, 0));
        for (id = 1; id <= 1024; id++)
            g_assert_cmpint(receive(&big, id, 0), ==, SHIMMER_REPLAY_OK);
        g_assert_cmpint(receive(&big, 1500, 0), ==, SHIMMER_REPLAY_OK);
        g_assert_cmpint(shimmer_replay_check(&big, 476, 0), ==, SHIMMER_REPLAY_TOO_OLD);
        for (id = 477; id <= 1024; id++)
            g_assert_cmpint(shimmer_replay_check(&big, id, 0), ==, SHIMMER_REPLAY_DUPLICATE);
        for (id = 1025; id < 1500; id++)
            g_assert_cmpint(shimmer_replay_check(&big, id, 0), ==, SHIMMER_REPLAY_OK);
    }
}

/* Ids are not compared modulo 2^32: after 0xFFFFFFFF, a sender that wrapped
 * looks like a replay of ancient packets. */
static void test_wrap_rejected(void)
{
    ShimmerReplay r = make_window(64, 15);

    g_assert_cmpint(receive(&r, 0xFFFFFF00, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(receive(&r, 0xFFFFFFFE, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(receive(&r, 0xFFFFFFFF, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpuint(shimmer_replay_highest(&r), ==, 0xFFFFFFFF);
    g_assert_cmpint(shimmer_replay_check(&r, 0xFFFFFFFF, 0), ==, SHIMMER_REPLAY_DUPLICATE);
    g_assert_cmpint(shimmer_replay_check(&r, 0xFFFFFFFE, 0), ==, SHIMMER_REPLAY_DUPLICATE);
    g_assert_cmpint(shimmer_replay_check(&r, 0xFFFFFFFD, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 0xFFFFFFFF - 63, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 0xFFFFFFFF - 64, 0), ==, SHIMMER_REPLAY_TOO_OLD);
    g_assert_cmpint(shimmer_replay_check(&r, 0, 0), ==, SHIMMER_REPLAY_INVALID);
    g_assert_cmpint(shimmer_replay_check(&r, 1, 0), ==, SHIMMER_REPLAY_TOO_OLD);
    g_assert_cmpint(shimmer_replay_check(&r, 2, 0), ==, SHIMMER_REPLAY_TOO_OLD);
    g_assert_cmpint(shimmer_replay_check(&r, 63, 0), ==, SHIMMER_REPLAY_TOO_OLD);
    /* Recording a wrapped id (which check rejected) changes nothing. */
    shimmer_replay_update(&r, 1, 0);
    g_assert_cmpuint(shimmer_replay_highest(&r), ==, 0xFFFFFFFF);
    g_assert_cmpint(shimmer_replay_check(&r, 0xFFFFFFFD, 0), ==, SHIMMER_REPLAY_OK);
}

/* The time rule: an id below the highest is rejected once the highest was
 * recorded more than time_backtrack seconds ago. */
static void test_time_backtrack(void)
{
    ShimmerReplay r = make_window(64, 15);
    gint64 t0 = 1000 * SEC;

    g_assert_cmpint(receive(&r, 10, t0), ==, SHIMMER_REPLAY_OK);
    /* Exactly 15 s late is still in time; one microsecond more is not. */
    g_assert_cmpint(shimmer_replay_check(&r, 5, t0 + 15 * SEC), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 5, t0 + 15 * SEC + 1), ==, SHIMMER_REPLAY_TOO_LATE);
    /* A duplicate is reported as such even when late. */
    g_assert_cmpint(shimmer_replay_check(&r, 10, t0 + 60 * SEC), ==, SHIMMER_REPLAY_DUPLICATE);
    /* Too old wins over too late. */
    g_assert_cmpint(receive(&r, 200, t0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 5, t0 + 60 * SEC), ==, SHIMMER_REPLAY_TOO_OLD);
    /* Newer ids are always in time, however long the silence. */
    g_assert_cmpint(shimmer_replay_check(&r, 201, t0 + 3600 * SEC), ==, SHIMMER_REPLAY_OK);
    /* A new highest restarts the clock. */
    g_assert_cmpint(receive(&r, 201, t0 + 100 * SEC), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 190, t0 + 101 * SEC), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 190, t0 + 116 * SEC), ==, SHIMMER_REPLAY_TOO_LATE);
    /* Filling a gap does not restart it: only a new highest does. */
    g_assert_cmpint(receive(&r, 195, t0 + 110 * SEC), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 190, t0 + 116 * SEC), ==, SHIMMER_REPLAY_TOO_LATE);
    /* A clock that steps back (it should not, it is monotonic) does not make
     * packets late. */
    g_assert_cmpint(shimmer_replay_check(&r, 190, t0), ==, SHIMMER_REPLAY_OK);
}

static void test_time_backtrack_disabled(void)
{
    ShimmerReplay r = make_window(64, 0);

    g_assert_cmpint(receive(&r, 10, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 5, 365 * 86400 * SEC), ==, SHIMMER_REPLAY_OK);
}

/* check() alone must not move anything: a forged packet is checked, fails to
 * authenticate and is never recorded. */
static void test_check_does_not_update(void)
{
    ShimmerReplay r = make_window(64, 15);
    ShimmerReplay before;

    g_assert_cmpint(receive(&r, 100, 0), ==, SHIMMER_REPLAY_OK);
    before = r;
    g_assert_cmpint(shimmer_replay_check(&r, 0x7FFFFFFF, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 50, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(shimmer_replay_check(&r, 100, 0), ==, SHIMMER_REPLAY_DUPLICATE);
    g_assert_cmpmem(&before, sizeof(before), &r, sizeof(r));
    /* The genuine packets that follow are still accepted. */
    g_assert_cmpint(receive(&r, 50, 0), ==, SHIMMER_REPLAY_OK);
    g_assert_cmpint(receive(&r, 101, 0), ==, SHIMMER_REPLAY_OK);
}

/* update() with an id the window no longer covers must not mark the slot it
 * shares with an id that the window does cover. */
static void test_update_outside_window_ignored(void)
{
    ShimmerReplay r = make_window(64, 15);

    g_assert_cmpint(receive(&r, 2000, 0), ==, SHIMMER_REPLAY_OK);
    /* 938 and 1962 share a slot (1962 - 938 = 1024). */
    shimmer_replay_update(&r, 938, 0);
    g_assert_cmpint(shimmer_replay_check(&r, 1962, 0), ==, SHIMMER_REPLAY_OK);
    /* Recording twice is harmless. */
    shimmer_replay_update(&r, 1962, 0);
    shimmer_replay_update(&r, 1962, 0);
    g_assert_cmpint(shimmer_replay_check(&r, 1962, 0), ==, SHIMMER_REPLAY_DUPLICATE);
    g_assert_cmpuint(shimmer_replay_highest(&r), ==, 2000);
}

/* Against a straightforward model (a set of every id ever accepted) on random
 * traffic: reordering, duplicates, jumps, ids far in the past. */
static void test_model(void)
{
    static const guint windows[] = {1, 3, 64, 100, 1000, 1024};

    for (gsize w = 0; w < G_N_ELEMENTS(windows); w++) {
        guint window = windows[w];
        g_autoptr(GRand) rand = g_rand_new_with_seed(0x5eed + window);
        g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
        ShimmerReplay r = make_window(window, 0);
        guint32 model_highest = 0;
        guint32 next = 1;

        for (guint i = 0; i < 200000; i++) {
            guint32 id;
            guint pick = g_rand_int_range(rand, 0, 100);
            ShimmerReplayResult want;

            if (pick < 50)
                id = next++;
            else if (pick < 52)
                id = next += g_rand_int_range(rand, 1, 3000);
            else if (next > 1)
                id = next - (guint32)g_rand_int_range(rand, 1, (gint32)MIN(next, 2 * window + 50));
            else
                id = next;
            if (pick == 99)
                id = 0;

            if (id == 0)
                want = SHIMMER_REPLAY_INVALID;
            else if (id > model_highest)
                want = SHIMMER_REPLAY_OK;
            else if (model_highest - id >= window)
                want = SHIMMER_REPLAY_TOO_OLD;
            else if (g_hash_table_contains(seen, GUINT_TO_POINTER(id)))
                want = SHIMMER_REPLAY_DUPLICATE;
            else
                want = SHIMMER_REPLAY_OK;

            g_assert_cmpint(shimmer_replay_check(&r, id, 0), ==, want);
            /* Most accepted packets authenticate; some are forgeries that
             * must not be recorded. */
            if (want == SHIMMER_REPLAY_OK && g_rand_int_range(rand, 0, 10) != 0) {
                shimmer_replay_update(&r, id, 0);
                g_hash_table_add(seen, GUINT_TO_POINTER(id));
                model_highest = MAX(model_highest, id);
            }
        }
        g_assert_cmpuint(shimmer_replay_highest(&r), ==, model_highest);
    }
}

static void test_result_strings(void)
{
    for (int i = SHIMMER_REPLAY_OK; i <= SHIMMER_REPLAY_TOO_LATE; i++)
        g_assert_cmpstr(shimmer_replay_result_to_string(i), !=, "unknown");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/replay/init-limits", test_init_limits);
    g_test_add_func("/replay/id-zero", test_id_zero);
    g_test_add_func("/replay/first-packet", test_first_packet);
    g_test_add_func("/replay/in-order-and-duplicates", test_in_order_and_duplicates);
    g_test_add_func("/replay/window-edge", test_window_edge);
    g_test_add_func("/replay/default-window-numbers", test_default_window_numbers);
    g_test_add_func("/replay/reorder", test_reorder);
    g_test_add_func("/replay/large-jumps", test_large_jumps);
    g_test_add_func("/replay/wrap-rejected", test_wrap_rejected);
    g_test_add_func("/replay/time-backtrack", test_time_backtrack);
    g_test_add_func("/replay/time-backtrack-disabled", test_time_backtrack_disabled);
    g_test_add_func("/replay/check-does-not-update", test_check_does_not_update);
    g_test_add_func("/replay/update-outside-window-ignored", test_update_outside_window_ignored);
    g_test_add_func("/replay/model", test_model);
    g_test_add_func("/replay/result-strings", test_result_strings);

    return g_test_run();
}
