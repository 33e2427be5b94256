/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * Authorization for shimmerd's D-Bus API: deny by default, asynchronous
 * polkit checks. Every profile and session has an owner uid; root (uid 0)
 * may do everything; a caller acting on its own objects needs the "own"
 * action (allowed for active local users by the shipped policy); acting on
 * another uid's object needs the "any" action (administrators).
 *
 * Actions (data/org.shimmervpn.policy):
 *   org.shimmervpn.profile.import          import a profile (owned by the caller)
 *   org.shimmervpn.profile.manage-own      connect, rename, remove, read own profiles
 *   org.shimmervpn.profile.manage-any      the same on other users' profiles
 *   org.shimmervpn.session.control-own     disconnect, restart, credentials on own sessions
 *   org.shimmervpn.session.control-any     the same on other users' sessions
 */

typedef struct ShimmerAuth ShimmerAuth;

typedef enum {
    SHIMMER_AUTH_IMPORT,
    SHIMMER_AUTH_PROFILE,  /* own/any chosen from the object's owner */
    SHIMMER_AUTH_SESSION,  /* own/any chosen from the object's owner */
} ShimmerAuthKind;

/* BUS: the connection shimmerd serves on (for the caller's uid and pid).
 * POLKIT_BUS: where polkit's authority lives (NULL: the system bus; tests
 * pass a private bus with a polkitd stand-in). If polkit cannot be reached,
 * only root is allowed anything (deny by default) and a warning is logged. */
ShimmerAuth *shimmer_auth_new(GDBusConnection *bus, GDBusConnection *polkit_bus);
void shimmer_auth_free(ShimmerAuth *auth);

/* The uid of the bus name SENDER (cached per name). FALSE with ERROR if the
 * bus does not know it. */
gboolean shimmer_auth_get_uid(ShimmerAuth *auth, const char *sender, guint *uid, GError **error);

/* Checks asynchronously whether SENDER may do KIND on an object owned by
 * OWNER_UID (ignored for IMPORT). Interactive authorization is allowed when
 * the caller's message allows it (INVOCATION's flags). CALLBACK gets the
 * result through shimmer_auth_check_finish(): TRUE (allowed) or FALSE with
 * an org.shimmervpn.Error.NotAuthorized error naming the action. */
void shimmer_auth_check(ShimmerAuth *auth, GDBusMethodInvocation *invocation, ShimmerAuthKind kind,
                        guint owner_uid, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);
gboolean shimmer_auth_check_finish(ShimmerAuth *auth, GAsyncResult *result, GError **error);

/* Whether SENDER may see an object owned by OWNER_UID at all (its own, or it
 * is root; administrators see others' only after a successful "any" check,
 * which callers do per method). Synchronous and cheap: uid comparison. */
gboolean shimmer_auth_is_owner_or_root(ShimmerAuth *auth, const char *sender, guint owner_uid);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerAuth, shimmer_auth_free)

/* org.shimmervpn.Error.* */
#define SHIMMER_DBUS_ERROR (shimmer_dbus_error_quark())
typedef enum {
    SHIMMER_DBUS_ERROR_FAILED,          /* org.shimmervpn.Error.Failed */
    SHIMMER_DBUS_ERROR_INVALID_ARGS,    /* org.shimmervpn.Error.InvalidArgs */
    SHIMMER_DBUS_ERROR_INVALID_CONFIG,  /* org.shimmervpn.Error.InvalidConfig */
    SHIMMER_DBUS_ERROR_NOT_AUTHORIZED,  /* org.shimmervpn.Error.NotAuthorized */
    SHIMMER_DBUS_ERROR_EXISTS,          /* org.shimmervpn.Error.Exists */
    SHIMMER_DBUS_ERROR_BUSY,            /* org.shimmervpn.Error.Busy */
    SHIMMER_DBUS_ERROR_NOT_FOUND,       /* org.shimmervpn.Error.NotFound */
} ShimmerDBusError;
GQuark shimmer_dbus_error_quark(void);

G_END_DECLS
