/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * Authorization for shimmerd's D-Bus API: one table, deny by default,
 * asynchronous throughout (the caller's uid and polkit's answer are both
 * asked for without blocking the main loop).
 *
 * The table (auth.c) names every method a caller may call: which kind of
 * request it is and whose object it acts on. A method missing from the
 * table is refused, for root too. Every profile and session has an owner
 * uid; root (uid 0) may do everything the table lists; a caller acting on
 * its own objects needs the "own" action (allowed for active local users
 * by the shipped policy); acting on another uid's object needs the "any"
 * action (administrators).
 *
 * Actions (data/org.shimmervpn.policy):
 *   org.shimmervpn.profile.import          import a profile (owned by the caller)
 *   org.shimmervpn.profile.manage-own      connect, rename, remove, read own profiles
 *   org.shimmervpn.profile.manage-any      the same on other users' profiles
 *   org.shimmervpn.session.control-own     disconnect, restart, credentials on own sessions
 *   org.shimmervpn.session.control-any     the same on other users' sessions
 *   org.shimmervpn.server.manage           import server profiles, start, stop and
 *                                          watch servers, kick clients, decide logins
 *                                          (whoever owns them: one action)
 *
 * Errors: SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED (manager/errors.h) naming
 * the action and why.
 */

typedef struct ShimmerAuth ShimmerAuth;

typedef enum {
    SHIMMER_AUTH_IMPORT,
    SHIMMER_AUTH_PROFILE, /* own/any chosen from the object's owner */
    SHIMMER_AUTH_SESSION, /* own/any chosen from the object's owner */
    SHIMMER_AUTH_SERVER,  /* one action, whoever owns the object */
} ShimmerAuthKind;

/* BUS: the connection shimmerd serves on (for the caller's uid).
 * POLKIT_BUS: where polkit's authority lives (NULL: the system bus; tests
 * pass a private bus with a polkitd stand-in). If polkit cannot be reached,
 * only root is allowed anything (deny by default) and a warning is logged. */
ShimmerAuth *shimmer_auth_new(GDBusConnection *bus, GDBusConnection *polkit_bus);
void shimmer_auth_free(ShimmerAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerAuth, shimmer_auth_free)

/* The uid of the bus name SENDER, if it is known already (a caller seen
 * before, still on the bus). */
gboolean shimmer_auth_lookup_uid(ShimmerAuth *auth, const char *sender, guint *uid);
/* Asks the bus for SENDER's uid (cached per name while the name lives). */
void shimmer_auth_get_uid(ShimmerAuth *auth, const char *sender, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);
gboolean shimmer_auth_get_uid_finish(ShimmerAuth *auth, GAsyncResult *result, guint *uid,
                                     GError **error);

/* The unique bus names that called the daemon and are still on the bus,
 * whose uid is UID (NULL-terminated; free with g_strfreev): where signals
 * meant for UID's eyes only are sent. */
char **shimmer_auth_dup_names_of_uid(ShimmerAuth *auth, guint uid);

/* Checks whether INVOCATION's sender may do KIND on an object owned by
 * OWNER_UID (ignored for IMPORT; G_MAXUINT: the caller's own objects). Interactive authorization is
 * allowed when the caller's message allows it. The result: TRUE and the caller's uid, or FALSE with
 * NotAuthorized (or G_IO_ERROR_CANCELLED). */
void shimmer_auth_check(ShimmerAuth *auth, GDBusMethodInvocation *invocation, ShimmerAuthKind kind,
                        guint owner_uid, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);
gboolean shimmer_auth_check_finish(ShimmerAuth *auth, GAsyncResult *result, guint *caller_uid,
                                   GError **error);

/* ---- the gate: the table in front of every method ---- */

/* Whether the table lists INTERFACE.METHOD (org.shimmervpn.*). */
gboolean shimmer_auth_method_is_listed(const char *interface, const char *method);

/* Called once the caller was allowed; must complete INVOCATION. */
typedef void (*ShimmerAuthAllowedFunc)(GDBusMethodInvocation *invocation, guint caller_uid,
                                       gpointer data);

/* Looks INVOCATION's method up in the table and checks the caller against
 * it: OBJECT_OWNER is the owner uid of the object the method is called on
 * (methods of the manager act on the caller's own objects and ignore it).
 * Refused or unknown methods and callers get
 * org.shimmervpn.Error.NotAuthorized on INVOCATION; otherwise FUNC runs.
 * DATA is released with DESTROY either way. */
void shimmer_auth_gate(ShimmerAuth *auth, GDBusMethodInvocation *invocation, guint object_owner,
                       GCancellable *cancellable, ShimmerAuthAllowedFunc func, gpointer data,
                       GDestroyNotify destroy);

G_END_DECLS
