/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A GLib source that fires at an engine's deadline, re-armed without a
 * system call.
 *
 * g_source_set_ready_time() signals the main context's wake-up descriptor
 * on every change, and an engine's deadline moves with every packet (the
 * keepalive is due ping seconds after the last one sent): a runner that
 * re-arms after each batch pays a write and a read of that descriptor per
 * batch. This source keeps the deadline in a field that its prepare() and
 * check() read on every turn of the loop, so setting it from the loop's own
 * thread costs nothing; the poll timeout simply follows. Only poking it
 * from another thread (a data-path worker that wants the engine's timers
 * served now) wakes the loop.
 */

typedef void (*ShimmerDeadlineFunc)(gpointer user);

/* A source (not attached) that calls FUNC(USER) once the deadline passed or
 * it was poked; the deadline is cleared before FUNC runs, so FUNC sets the
 * next one. Starts without a deadline. */
GSource *shimmer_deadline_source_new(ShimmerDeadlineFunc func, gpointer user);

/* DEADLINE in monotonic microseconds (g_get_monotonic_time()); G_MAXINT64
 * or -1 for none. Only from the thread that runs the source's context. */
void shimmer_deadline_source_set(GSource *source, gint64 deadline);

/* From any thread: dispatch as soon as possible. */
void shimmer_deadline_source_poke(GSource *source);

G_END_DECLS
