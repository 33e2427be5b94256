/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Following the daemon's signals: every command that waits for something
 * subscribes to all signals from org.shimmervpn before it acts, so that no
 * event of the object it creates is missed, and stops when the daemon
 * leaves the bus, on SIGINT or SIGTERM, or after a timeout.
 */

#include "ctl.h"

G_BEGIN_DECLS

typedef struct Follow Follow;
typedef void (*FollowSignal)(Follow *f, const char *path, const char *iface, const char *member,
                             GVariant *params);
struct Follow {
    Ctl *ctl;
    GMainLoop *loop; /* the caller runs it; every reason to stop quits it */
    FollowSignal on_signal;
    gpointer data;
    guint subscription;
    guint name_watch;
    guint sigint, sigterm, timeout;
    gboolean interrupted, timed_out, daemon_gone;
};

/* Subscribes ON_SIGNAL to every signal of the daemon; with WATCH_NAME the
 * loop also stops (daemon_gone) when the daemon leaves the bus. */
void ctl_follow_start(Follow *f, Ctl *ctl, FollowSignal on_signal, gpointer data,
                      gboolean watch_name);
/* Stops the loop (timed_out) MS milliseconds from now; 0: no timeout. */
void ctl_follow_set_timeout(Follow *f, guint ms);
/* Undoes ctl_follow_start() and clears F. */
void ctl_follow_stop(Follow *f);

typedef enum {
    CTL_END_ENDED,       /* its State became final, or it went */
    CTL_END_CALL_FAILED, /* the method call failed (the error says why) */
    CTL_END_DAEMON_GONE,
    CTL_END_INTERRUPTED,
    CTL_END_TIMED_OUT,
} CtlEndResult;

/* Calls METHOD (no arguments) on the object PATH's IFACE and follows it
 * until its State is one IS_FINAL accepts or the object goes, for at most
 * TIMEOUT_S seconds. *STATE and *REASON (the caller frees them) get the
 * last State and StateReason signalled (or NULL). */
CtlEndResult ctl_call_and_follow_end(Ctl *ctl, const char *path, const char *iface,
                                     const char *method, gboolean (*is_final)(const char *state),
                                     guint timeout_s, char **state, char **reason, GError **error);

G_END_DECLS
