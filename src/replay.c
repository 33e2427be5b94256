/* SPDX-License-Identifier: MIT */
#include "replay.h"

#include <string.h>

G_STATIC_ASSERT((SHIMMER_REPLAY_MAX_WINDOW & (SHIMMER_REPLAY_MAX_WINDOW - 1)) == 0);
G_STATIC_ASSERT(SHIMMER_REPLAY_MAX_WINDOW % 64 == 0);

gboolean shimmer_replay_init(ShimmerReplay *r, guint window, guint time_backtrack_s)
{
    g_return_val_if_fail(r != NULL, FALSE);

    if (window == 0 || window > SHIMMER_REPLAY_MAX_WINDOW)
        return FALSE;

    memset(r, 0, sizeof(*r));
    r->window = window;
    r->time_backtrack_us = (gint64)time_backtrack_s * G_USEC_PER_SEC;
    return TRUE;
}

static gboolean slot_is_set(const ShimmerReplay *r, guint32 id)
{
    guint32 slot = id % SHIMMER_REPLAY_MAX_WINDOW;

    return (r->seen[slot / 64] >> (slot % 64)) & 1;
}

static void slot_set(ShimmerReplay *r, guint32 id)
{
    guint32 slot = id % SHIMMER_REPLAY_MAX_WINDOW;

    r->seen[slot / 64] |= G_GUINT64_CONSTANT(1) << (slot % 64);
}

/* Forgets the slots of COUNT ids starting at FIRST (COUNT < MAX_WINDOW). These
 * slots still hold ids MAX_WINDOW older, which the window no longer covers.
 * Works a word at a time because a jump forward by hundreds of ids is normal
 * after loss. MAX_WINDOW divides 2^32, so FIRST wrapping past 0xFFFFFFFF on
 * the last step still maps to the right slot. */
static void slots_clear(ShimmerReplay *r, guint32 first, guint32 count)
{
    while (count > 0) {
        guint32 slot = first % SHIMMER_REPLAY_MAX_WINDOW;
        guint32 bit = slot % 64;
        guint32 n = MIN(64 - bit, count);
        guint64 mask = n == 64 ? ~G_GUINT64_CONSTANT(0) : ((G_GUINT64_CONSTANT(1) << n) - 1) << bit;

        r->seen[slot / 64] &= ~mask;
        first += n;
        count -= n;
    }
}

ShimmerReplayResult shimmer_replay_check(const ShimmerReplay *r, guint32 id, gint64 now_us)
{
    g_return_val_if_fail(r != NULL && r->window != 0, SHIMMER_REPLAY_INVALID);

    if (id == 0)
        return SHIMMER_REPLAY_INVALID;
    /* Newer than anything seen (this includes the very first packet, as
     * highest starts at 0): reordering cannot make it a replay. */
    if (id > r->highest)
        return SHIMMER_REPLAY_OK;
    if (r->highest - id >= r->window)
        return SHIMMER_REPLAY_TOO_OLD;
    if (slot_is_set(r, id))
        return SHIMMER_REPLAY_DUPLICATE;
    if (r->time_backtrack_us > 0 && now_us - r->highest_time_us > r->time_backtrack_us)
        return SHIMMER_REPLAY_TOO_LATE;
    return SHIMMER_REPLAY_OK;
}

void shimmer_replay_update(ShimmerReplay *r, guint32 id, gint64 now_us)
{
    g_return_if_fail(r != NULL && r->window != 0);

    if (id == 0)
        return;

    if (id > r->highest) {
        guint32 delta = id - r->highest;

        if (delta >= SHIMMER_REPLAY_MAX_WINDOW)
            memset(r->seen, 0, sizeof(r->seen));
        else
            slots_clear(r, r->highest + 1, delta);
        r->highest = id;
        r->highest_time_us = now_us;
        slot_set(r, id);
        return;
    }

    /* An id the window no longer covers shares its slot with a newer id:
     * marking it would turn that newer id into a false duplicate. */
    if (r->highest - id >= r->window)
        return;
    slot_set(r, id);
}

guint32 shimmer_replay_highest(const ShimmerReplay *r)
{
    g_return_val_if_fail(r != NULL, 0);

    return r->highest;
}

const char *shimmer_replay_result_to_string(ShimmerReplayResult result)
{
    switch (result) {
    case SHIMMER_REPLAY_OK:
        return "ok";
    case SHIMMER_REPLAY_INVALID:
        return "invalid packet id 0";
    case SHIMMER_REPLAY_DUPLICATE:
        return "duplicate";
    case SHIMMER_REPLAY_TOO_OLD:
        return "older than the replay window";
    case SHIMMER_REPLAY_TOO_LATE:
        return "reordered beyond the time backtrack limit";
    }
    return "unknown";
}
