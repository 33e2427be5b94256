/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The receive-side packet-id replay window of one data-channel key.
 *
 * Packet ids are u32, start at 1, and 0 is never valid. The window remembers
 * the highest id accepted so far and which of the WINDOW ids ending at it
 * (highest - WINDOW + 1 .. highest) were seen. A packet is accepted when
 *  - its id is above the highest (any jump forward is fine), or
 *  - highest - id < WINDOW, the id was not seen yet, and the time check passes.
 * This is the rule `--replay-window n t` documents for OpenVPN: "the difference
 * between its sequence number and the highest sequence number received so far
 * is less than n".
 *
 * Time check (a simplified form of OpenVPN's "arrives no later than t seconds
 * after any packet containing a higher sequence number"): a packet whose id is
 * below the highest is rejected when the highest id was first accepted more
 * than TIME_BACKTRACK seconds before now. Only the arrival time of the highest
 * id is kept, so a reordered packet can slip in later than OpenVPN would let it
 * when ids between it and the highest arrived long before the highest did; it
 * is never accepted when the newest traffic itself is stale. A TIME_BACKTRACK
 * of 0 disables the check.
 *
 * Ids are compared as plain unsigned numbers, never modulo 2^32: after
 * 0xFFFFFFFF there is nothing newer, so a sender that wrapped to small ids
 * looks like an ancient replay and is rejected. The sender must rekey first
 * (see shimmer_datachan_key_needs_rekey()).
 *
 * Checking and recording are separate so that the caller records an id only
 * after the packet carrying it authenticated: a forged packet must not move the
 * window. The receive path is
 *     check -> decrypt/authenticate -> update.
 * Time is injected as monotonic microseconds (g_get_monotonic_time() in the
 * daemon, anything in tests); the module never reads a clock.
 *
 * ShimmerReplay is a plain struct so that it can be embedded in a key state
 * without an allocation; its fields are private to replay.c.
 */

/* OpenVPN's defaults for --replay-window. */
#define SHIMMER_REPLAY_DEFAULT_WINDOW           64
#define SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S 15
/* The largest window shimmer_replay_init() accepts. A power of two: the bitmap
 * is indexed by id modulo this. */
#define SHIMMER_REPLAY_MAX_WINDOW 1024

typedef enum {
    SHIMMER_REPLAY_OK = 0,
    /* Packet id 0: never sent by a correct peer. */
    SHIMMER_REPLAY_INVALID,
    /* This id was already accepted. */
    SHIMMER_REPLAY_DUPLICATE,
    /* highest - id >= window: too far behind to tell whether it is a replay
     * (this includes ids of a sender that wrapped around). */
    SHIMMER_REPLAY_TOO_OLD,
    /* Within the window but the time backtrack limit has passed. */
    SHIMMER_REPLAY_TOO_LATE,
} ShimmerReplayResult;

typedef struct {
    /* Private. */
    guint32 highest;        /* 0 until the first id is recorded */
    guint32 window;         /* 1 .. SHIMMER_REPLAY_MAX_WINDOW */
    gint64 highest_time_us; /* when `highest` was recorded */
    gint64 time_backtrack_us;
    /* Bit (id % MAX_WINDOW) is set when id was seen; only ids within the
     * window are meaningful. */
    guint64 seen[SHIMMER_REPLAY_MAX_WINDOW / 64];
} ShimmerReplay;

/* Starts an empty window. WINDOW must be 1..SHIMMER_REPLAY_MAX_WINDOW; returns
 * FALSE (and leaves R untouched) otherwise, so the configuration layer can use
 * it to validate `replay-window`. TIME_BACKTRACK_S 0 disables the time check. */
gboolean shimmer_replay_init(ShimmerReplay *r, guint window, guint time_backtrack_s);

/* Would a packet with ID, arriving at NOW_US, be accepted? Does not modify R.
 * Returns SHIMMER_REPLAY_OK or the reason for rejection. */
ShimmerReplayResult shimmer_replay_check(const ShimmerReplay *r, guint32 id, gint64 now_us);

/* Records ID as seen at NOW_US. Call only after shimmer_replay_check() returned
 * SHIMMER_REPLAY_OK for ID and the packet authenticated. Calling it for an id
 * that check rejects does no harm: id 0 and ids outside the window are
 * ignored, and recording a seen id again changes nothing. */
void shimmer_replay_update(ShimmerReplay *r, guint32 id, gint64 now_us);

/* The highest id recorded so far, 0 before the first. */
guint32 shimmer_replay_highest(const ShimmerReplay *r);

/* A short English name for RESULT, for logs ("ok", "duplicate", ...). */
const char *shimmer_replay_result_to_string(ShimmerReplayResult result);

G_END_DECLS
