/* SPDX-License-Identifier: MIT */
#include "tunnel/deadline.h"

typedef struct {
    GSource source;
    gint64 deadline; /* G_MAXINT64: none */
    gint poked;      /* atomic */
    ShimmerDeadlineFunc func;
    gpointer user;
} DeadlineSource;

static gboolean due(DeadlineSource *d, gint *timeout)
{
    if (g_atomic_int_get(&d->poked))
        return TRUE;
    if (d->deadline == G_MAXINT64) {
        *timeout = -1;
        return FALSE;
    }
    gint64 left = d->deadline - g_source_get_time(&d->source);
    if (left <= 0)
        return TRUE;
    /* Rounded up: waking a little late is harmless, a little early costs
     * another turn of the loop. */
    gint64 ms = (left + 999) / 1000;
    *timeout = ms > G_MAXINT ? G_MAXINT : (gint)ms;
    return FALSE;
}

static gboolean deadline_prepare(GSource *source, gint *timeout)
{
    return due((DeadlineSource *)source, timeout);
}

static gboolean deadline_check(GSource *source)
{
    gint timeout;
    return due((DeadlineSource *)source, &timeout);
}

static gboolean deadline_dispatch(GSource *source, GSourceFunc callback, gpointer user)
{
    DeadlineSource *d = (DeadlineSource *)source;
    d->deadline = G_MAXINT64;
    g_atomic_int_set(&d->poked, 0);
    d->func(d->user);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs deadline_funcs = {
    .prepare = deadline_prepare,
    .check = deadline_check,
    .dispatch = deadline_dispatch,
};

GSource *shimmer_deadline_source_new(ShimmerDeadlineFunc func, gpointer user)
{
    GSource *s = g_source_new(&deadline_funcs, sizeof(DeadlineSource));
    DeadlineSource *d = (DeadlineSource *)s;
    d->deadline = G_MAXINT64;
    d->func = func;
    d->user = user;
    g_source_set_name(s, "shimmer deadline");
    return s;
}

void shimmer_deadline_source_set(GSource *source, gint64 deadline)
{
    ((DeadlineSource *)source)->deadline = deadline < 0 ? G_MAXINT64 : deadline;
}

void shimmer_deadline_source_poke(GSource *source)
{
    DeadlineSource *d = (DeadlineSource *)source;
    if (!g_atomic_int_compare_and_exchange(&d->poked, 0, 1))
        return; /* already on its way */
    GMainContext *ctx = g_source_get_context(source);
    if (ctx != NULL)
        g_main_context_wakeup(ctx);
}
