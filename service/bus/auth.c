/* SPDX-License-Identifier: MIT */
/*
 * Authorization: who may do what to which object. See auth.h.
 *
 * polkit is asked over its D-Bus API (org.freedesktop.PolicyKit1.Authority)
 * directly rather than through libpolkit-gobject: libpolkit always talks to
 * the system bus, while tests must point us at a polkitd stand-in on a
 * private bus. The subject is the caller's unique bus name, which polkit
 * resolves to a uid, pid and login session itself (no pid-reuse races).
 */
#define G_LOG_DOMAIN "shimmerd"

#include "auth.h"

#include "manager/errors.h"

#define POLKIT_NAME  "org.freedesktop.PolicyKit1"
#define POLKIT_PATH  "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
/* CheckAuthorizationFlags.AllowUserInteraction */
#define POLKIT_ALLOW_USER_INTERACTION 1u

/* A caller's uid is remembered while its bus name lives. The cap only
 * matters if NameOwnerChanged were missed: unique names are never reused, so
 * a stale entry is a leak, not a wrong answer. */
#define UID_CACHE_MAX 4096

typedef struct {
    ShimmerAuthKind kind;
    const char *own;
    const char *any;
} ActionEntry;

/* The one table: what each kind of request needs. A kind missing here is
 * denied. IMPORT creates an object the caller will own, so there is no
 * "any" variant. */
static const ActionEntry actions[] = {
    {SHIMMER_AUTH_IMPORT, "org.shimmervpn.profile.import", "org.shimmervpn.profile.import"},
    {SHIMMER_AUTH_PROFILE, "org.shimmervpn.profile.manage-own",
     "org.shimmervpn.profile.manage-any"},
    {SHIMMER_AUTH_SESSION, "org.shimmervpn.session.control-own",
     "org.shimmervpn.session.control-any"},
    /* Running a server reaches beyond the caller's own tunnel (a port, a
     * tun, routes, other people's logins): an administrator's action,
     * whoever started the server. */
    {SHIMMER_AUTH_SERVER, "org.shimmervpn.server.manage", "org.shimmervpn.server.manage"},
};

/* Whose object a method acts on. */
typedef enum {
    OWNER_CALLER, /* the caller's own (imports, lists) */
    OWNER_OBJECT, /* the object the method is called on */
} OwnerRule;

typedef struct {
    const char *interface;
    const char *method;
    ShimmerAuthKind kind;
    OwnerRule owner;
} MethodEntry;

/* The one table in front of every method: a method not listed here is
 * refused, whoever calls it. Keep it in step with the interface XML in dbus/ (a test
 * checks that every method there is listed). */
static const MethodEntry methods[] = {
    /* A server configuration needs SHIMMER_AUTH_SERVER besides, checked
     * once the text is known to be one (manager1.c). */
    {"org.shimmervpn.Manager1", "ImportProfile", SHIMMER_AUTH_IMPORT, OWNER_CALLER},
    {"org.shimmervpn.Manager1", "CheckConfig", SHIMMER_AUTH_IMPORT, OWNER_CALLER},
    {"org.shimmervpn.Manager1", "ListProfiles", SHIMMER_AUTH_PROFILE, OWNER_CALLER},
    {"org.shimmervpn.Manager1", "ListSessions", SHIMMER_AUTH_SESSION, OWNER_CALLER},
    {"org.shimmervpn.Profile1", "Connect", SHIMMER_AUTH_PROFILE, OWNER_OBJECT},
    {"org.shimmervpn.Profile1", "Remove", SHIMMER_AUTH_PROFILE, OWNER_OBJECT},
    {"org.shimmervpn.Profile1", "Rename", SHIMMER_AUTH_PROFILE, OWNER_OBJECT},
    {"org.shimmervpn.Profile1", "GetConfiguration", SHIMMER_AUTH_PROFILE, OWNER_OBJECT},
    {"org.shimmervpn.Session1", "Disconnect", SHIMMER_AUTH_SESSION, OWNER_OBJECT},
    {"org.shimmervpn.Session1", "Restart", SHIMMER_AUTH_SESSION, OWNER_OBJECT},
    {"org.shimmervpn.Session1", "ProvideCredentials", SHIMMER_AUTH_SESSION, OWNER_OBJECT},
    /* These two also check that the caller is the owner (session1.c): a
     * sign-in URL is the owner's alone, whoever else may control it. */
    {"org.shimmervpn.Session1", "GetCredentialsRequest", SHIMMER_AUTH_SESSION, OWNER_OBJECT},
    {"org.shimmervpn.Session1", "GetWebAuthRequest", SHIMMER_AUTH_SESSION, OWNER_OBJECT},
    {"org.shimmervpn.Manager1", "ListServers", SHIMMER_AUTH_SERVER, OWNER_CALLER},
    {"org.shimmervpn.Profile1", "StartServer", SHIMMER_AUTH_SERVER, OWNER_OBJECT},
    {"org.shimmervpn.Server1", "Stop", SHIMMER_AUTH_SERVER, OWNER_OBJECT},
    {"org.shimmervpn.Server1", "AnswerAuth", SHIMMER_AUTH_SERVER, OWNER_OBJECT},
    /* Also checks that the caller is the owner (server1.c), as the
     * signals that announce the requests go to the owner alone. */
    {"org.shimmervpn.Server1", "GetAuthRequests", SHIMMER_AUTH_SERVER, OWNER_OBJECT},
    {"org.shimmervpn.Client1", "Kick", SHIMMER_AUTH_SERVER, OWNER_OBJECT},
};

struct ShimmerAuth {
    GDBusConnection *bus;
    GDBusConnection *polkit_bus; /* NULL: polkit cannot be reached */
    GHashTable *uids;            /* unique bus name -> GUINT_TO_POINTER(uid) */
    guint name_owner_sub;
    guint64 next_check;      /* makes cancellation ids unique */
    gboolean polkit_failing; /* warned once; reset by the next answer */
};

/* ShimmerAuth lives in a GRcBox: outstanding checks and the NameOwnerChanged
 * subscription hold references, so shimmer_auth_free() may come while they
 * are still under way. */
static void auth_clear(gpointer data)
{
    ShimmerAuth *auth = data;
    g_hash_table_destroy(auth->uids);
    g_clear_object(&auth->polkit_bus);
    g_clear_object(&auth->bus);
}

static ShimmerAuth *auth_ref(ShimmerAuth *auth)
{
    return g_rc_box_acquire(auth);
}

static void auth_unref(gpointer auth)
{
    g_rc_box_release_full(auth, auth_clear);
}

/* ---------- caller uids ---------- */

static void uid_cache_put(ShimmerAuth *auth, const char *sender, guint uid)
{
    /* Only unique names: a well-known name can change hands. */
    if (sender[0] != ':')
        return;
    if (g_hash_table_size(auth->uids) >= UID_CACHE_MAX)
        g_hash_table_remove_all(auth->uids);
    g_hash_table_insert(auth->uids, g_strdup(sender), GUINT_TO_POINTER(uid));
}

static gboolean uid_cache_get(ShimmerAuth *auth, const char *sender, guint *uid)
{
    gpointer value;
    if (!g_hash_table_lookup_extended(auth->uids, sender, NULL, &value))
        return FALSE;
    *uid = GPOINTER_TO_UINT(value);
    return TRUE;
}

static void on_name_owner_changed(GDBusConnection *connection, const char *sender_name,
                                  const char *object_path, const char *interface_name,
                                  const char *signal_name, GVariant *parameters, gpointer user)
{
    ShimmerAuth *auth = user;
    const char *name, *old_owner, *new_owner;
    if (!g_variant_is_of_type(parameters, G_VARIANT_TYPE("(sss)")))
        return;
    g_variant_get(parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
    if (name[0] == ':' && new_owner[0] == '\0')
        g_hash_table_remove(auth->uids, name);
}

static GVariant *uid_lookup_args(const char *sender)
{
    return g_variant_new("(s)", sender);
}

gboolean shimmer_auth_lookup_uid(ShimmerAuth *auth, const char *sender, guint *uid)
{
    return sender != NULL && uid_cache_get(auth, sender, uid);
}

char **shimmer_auth_dup_names_of_uid(ShimmerAuth *auth, guint uid)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, auth->uids);
    while (g_hash_table_iter_next(&it, &key, &value))
        if (GPOINTER_TO_UINT(value) == uid)
            g_strv_builder_add(b, key);
    return g_strv_builder_end(b);
}

typedef struct {
    ShimmerAuth *auth; /* a reference */
    char *sender;
} UidLookup;

static void uid_lookup_free(gpointer data)
{
    UidLookup *l = data;
    auth_unref(l->auth);
    g_free(l->sender);
    g_free(l);
}

static void on_get_uid_reply(GObject *source, GAsyncResult *result, gpointer user)
{
    g_autoptr(GTask) task = user;
    UidLookup *l = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    if (reply == NULL) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_dbus_error_strip_remote_error(error);
            g_prefix_error(&error, "cannot tell the uid of %s: ", l->sender);
        }
        g_task_return_error(task, g_steal_pointer(&error));
        return;
    }
    guint uid;
    g_variant_get(reply, "(u)", &uid);
    uid_cache_put(l->auth, l->sender, uid);
    g_task_return_int(task, uid);
}

void shimmer_auth_get_uid(ShimmerAuth *auth, const char *sender, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, shimmer_auth_get_uid);
    guint uid;
    if (uid_cache_get(auth, sender, &uid)) {
        g_task_return_int(task, uid);
        g_object_unref(task);
        return;
    }
    UidLookup *l = g_new0(UidLookup, 1);
    l->auth = auth_ref(auth);
    l->sender = g_strdup(sender);
    g_task_set_task_data(task, l, uid_lookup_free);
    g_dbus_connection_call(auth->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetConnectionUnixUser", uid_lookup_args(sender),
                           G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, cancellable,
                           on_get_uid_reply, task);
}

gboolean shimmer_auth_get_uid_finish(ShimmerAuth *auth, GAsyncResult *result, guint *uid,
                                     GError **error)
{
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == shimmer_auth_get_uid, FALSE);
    gssize v = g_task_propagate_int(G_TASK(result), error);
    if (v < 0)
        return FALSE;
    *uid = (guint)v;
    return TRUE;
}

/* ---------- construction ---------- */

ShimmerAuth *shimmer_auth_new(GDBusConnection *bus, GDBusConnection *polkit_bus)
{
    g_return_val_if_fail(G_IS_DBUS_CONNECTION(bus), NULL);
    g_return_val_if_fail(polkit_bus == NULL || G_IS_DBUS_CONNECTION(polkit_bus), NULL);

    ShimmerAuth *auth = g_rc_box_new0(ShimmerAuth);
    auth->bus = g_object_ref(bus);
    auth->uids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (polkit_bus != NULL) {
        auth->polkit_bus = g_object_ref(polkit_bus);
    } else {
        /* Quick when shimmerd serves on the system bus: the shared
         * connection is already open. */
        g_autoptr(GError) error = NULL;
        auth->polkit_bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        if (auth->polkit_bus == NULL)
            g_warning("polkit cannot be reached (%s): only root will be allowed anything",
                      error->message);
    }
    auth->name_owner_sub = g_dbus_connection_signal_subscribe(
        bus, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
        "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed,
        auth_ref(auth), auth_unref);
    return auth;
}

void shimmer_auth_free(ShimmerAuth *auth)
{
    if (auth == NULL)
        return;
    /* Drops the subscription's reference once GDBus is done with it. */
    g_dbus_connection_signal_unsubscribe(auth->bus, auth->name_owner_sub);
    auth->name_owner_sub = 0;
    auth_unref(auth);
}

/* ---------- checks ---------- */

typedef struct {
    ShimmerAuth *auth; /* a reference */
    char *sender;
    ShimmerAuthKind kind;
    guint owner_uid;
    guint uid;
    gboolean interactive;
    const char *action;
    char *cancel_id;
} Check;

static void check_free(gpointer data)
{
    Check *check = data;
    auth_unref(check->auth);
    g_free(check->sender);
    g_free(check->cancel_id);
    g_free(check);
}

static const char *action_for(ShimmerAuthKind kind, guint uid, guint owner_uid)
{
    for (gsize i = 0; i < G_N_ELEMENTS(actions); i++) {
        if (actions[i].kind != kind)
            continue;
        if (kind == SHIMMER_AUTH_IMPORT || uid == owner_uid || owner_uid == G_MAXUINT)
            return actions[i].own;
        return actions[i].any;
    }
    return NULL;
}

static void deny(GTask *task, const char *why)
{
    Check *check = g_task_get_task_data(task);
    g_autofree char *who = check->uid == G_MAXUINT
                               ? g_strdup(check->sender)
                               : g_strdup_printf("uid %u (%s)", check->uid, check->sender);
    g_autofree char *what =
        check->action != NULL ? g_strdup_printf(" for %s", check->action) : g_strdup("");
    g_autofree char *because = why != NULL ? g_strdup_printf(": %s", why) : g_strdup("");
    g_message("denied %s%s%s", who, what, because);
    g_task_return_new_error(task, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED,
                            "not authorized%s%s", what, because);
}

static void send_cancel(Check *check)
{
    /* polkit drops the pending check and its authentication dialog. An old
     * polkit or a stand-in may not know the method: nothing to do then. */
    g_dbus_connection_call(check->auth->polkit_bus, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
                           "CancelCheckAuthorization", g_variant_new("(s)", check->cancel_id), NULL,
                           G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, NULL, NULL);
}

static void on_polkit_reply(GObject *source, GAsyncResult *result, gpointer user)
{
    g_autoptr(GTask) task = user;
    Check *check = g_task_get_task_data(task);
    ShimmerAuth *auth = check->auth;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

    if (reply == NULL) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            send_cancel(check);
            g_task_return_error(task, g_steal_pointer(&error));
            return;
        }
        g_dbus_error_strip_remote_error(error);
        if (!auth->polkit_failing)
            g_warning("polkit did not answer for %s (%s): denying everyone but root until it does",
                      check->action, error->message);
        else
            g_debug("polkit did not answer for %s (%s)", check->action, error->message);
        auth->polkit_failing = TRUE;
        deny(task, "the authorization service is not available");
        return;
    }
    if (auth->polkit_failing)
        g_message("polkit answers again");
    auth->polkit_failing = FALSE;

    gboolean authorized, challenge;
    g_autoptr(GVariant) details = NULL;
    g_variant_get(reply, "((bb@a{ss}))", &authorized, &challenge, &details);
    if (authorized) {
        g_debug("allowed %s to uid %u (%s)", check->action, check->uid, check->sender);
        g_task_return_int(task, check->uid);
        return;
    }
    const char *dismissed = NULL;
    if (g_variant_lookup(details, "polkit.dismissed", "&s", &dismissed) && dismissed[0] != '\0')
        deny(task, "the authentication request was dismissed");
    else if (challenge && !check->interactive)
        deny(task, "authentication is required; call with interactive authorization allowed");
    else
        deny(task, NULL);
}

/* Takes over TASK's reference. */
static void check_with_uid(GTask *task)
{
    Check *check = g_task_get_task_data(task);
    ShimmerAuth *auth = check->auth;

    /* Even root gets nothing the table does not name. */
    check->action = action_for(check->kind, check->uid, check->owner_uid);
    if (check->action == NULL) {
        deny(task, "unknown request");
        g_object_unref(task);
        return;
    }
    if (check->uid == 0) {
        g_debug("allowed %s to root (%s)", check->action, check->sender);
        g_task_return_int(task, check->uid);
        g_object_unref(task);
        return;
    }
    if (auth->polkit_bus == NULL) {
        deny(task, "the authorization service is not available");
        g_object_unref(task);
        return;
    }
    if (g_task_return_error_if_cancelled(task)) {
        g_object_unref(task);
        return;
    }

    GVariantBuilder subject;
    g_variant_builder_init(&subject, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&subject, "{sv}", "name", g_variant_new_string(check->sender));
    check->cancel_id = g_strdup_printf("shimmerd-%" G_GUINT64_FORMAT, ++auth->next_check);
    GVariant *args =
        g_variant_new("((sa{sv})sa{ss}us)", "system-bus-name", &subject, check->action, NULL,
                      check->interactive ? POLKIT_ALLOW_USER_INTERACTION : 0u, check->cancel_id);
    /* Someone may be typing a password: no timeout then, as libpolkit. */
    g_dbus_connection_call(auth->polkit_bus, POLKIT_NAME, POLKIT_PATH, POLKIT_IFACE,
                           "CheckAuthorization", args, G_VARIANT_TYPE("((bba{ss}))"),
                           G_DBUS_CALL_FLAGS_NONE, check->interactive ? G_MAXINT : -1,
                           g_task_get_cancellable(task), on_polkit_reply, task);
}

static void on_uid_reply(GObject *source, GAsyncResult *result, gpointer user)
{
    GTask *task = user;
    Check *check = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    if (!shimmer_auth_get_uid_finish(check->auth, result, &check->uid, &error)) {
        check->uid = G_MAXUINT;
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_task_return_error(task, g_steal_pointer(&error));
        } else {
            g_autofree char *why =
                g_strdup_printf("cannot tell who the caller is: %s", error->message);
            deny(task, why);
        }
        g_object_unref(task);
        return;
    }
    check_with_uid(task);
}

void shimmer_auth_check(ShimmerAuth *auth, GDBusMethodInvocation *invocation, ShimmerAuthKind kind,
                        guint owner_uid, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
    g_return_if_fail(auth != NULL);
    g_return_if_fail(G_IS_DBUS_METHOD_INVOCATION(invocation));

    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, shimmer_auth_check);
    Check *check = g_new0(Check, 1);
    check->auth = auth_ref(auth);
    check->kind = kind;
    check->owner_uid = owner_uid;
    check->uid = G_MAXUINT;
    GDBusMessage *message = g_dbus_method_invocation_get_message(invocation);
    check->interactive = (g_dbus_message_get_flags(message) &
                          G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
    const char *sender = g_dbus_method_invocation_get_sender(invocation);
    check->sender = g_strdup(sender != NULL ? sender : "(no sender)");
    g_task_set_task_data(task, check, check_free);

    if (sender == NULL) {
        /* A peer-to-peer connection: nobody we could ask polkit about. */
        deny(task, "the caller has no bus name");
        g_object_unref(task);
        return;
    }
    if (uid_cache_get(auth, sender, &check->uid)) {
        check_with_uid(task);
        return;
    }
    shimmer_auth_get_uid(auth, sender, cancellable, on_uid_reply, task);
}

gboolean shimmer_auth_check_finish(ShimmerAuth *auth, GAsyncResult *result, guint *caller_uid,
                                   GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == shimmer_auth_check, FALSE);
    gssize uid = g_task_propagate_int(G_TASK(result), error);
    if (uid < 0)
        return FALSE;
    if (caller_uid != NULL)
        *caller_uid = (guint)uid;
    return TRUE;
}

/* ---------- the gate ---------- */

static const MethodEntry *find_method(const char *interface, const char *method)
{
    if (interface == NULL || method == NULL)
        return NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(methods); i++)
        if (strcmp(methods[i].interface, interface) == 0 && strcmp(methods[i].method, method) == 0)
            return &methods[i];
    return NULL;
}

gboolean shimmer_auth_method_is_listed(const char *interface, const char *method)
{
    return find_method(interface, method) != NULL;
}

typedef struct {
    ShimmerAuth *auth; /* a reference */
    GDBusMethodInvocation *invocation;
    ShimmerAuthAllowedFunc func;
    gpointer data;
    GDestroyNotify destroy;
} GateCall;

static void gate_call_free(GateCall *call)
{
    if (call->destroy != NULL && call->data != NULL)
        call->destroy(call->data);
    auth_unref(call->auth);
    g_free(call);
}

static void on_gate_checked(GObject *source, GAsyncResult *result, gpointer user)
{
    GateCall *call = user;
    g_autoptr(GError) error = NULL;
    guint uid = G_MAXUINT;
    if (shimmer_auth_check_finish(call->auth, result, &uid, &error)) {
        call->func(call->invocation, uid, call->data);
    } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        /* The daemon is going away: the caller gets an answer anyway. */
        g_dbus_method_invocation_return_error_literal(call->invocation, SHIMMER_SERVICE_ERROR,
                                                      SHIMMER_SERVICE_ERROR_FAILED,
                                                      "the daemon is stopping");
    } else {
        g_dbus_method_invocation_return_gerror(call->invocation, error);
    }
    gate_call_free(call);
}

void shimmer_auth_gate(ShimmerAuth *auth, GDBusMethodInvocation *invocation, guint object_owner,
                       GCancellable *cancellable, ShimmerAuthAllowedFunc func, gpointer data,
                       GDestroyNotify destroy)
{
    const MethodEntry *entry = find_method(g_dbus_method_invocation_get_interface_name(invocation),
                                           g_dbus_method_invocation_get_method_name(invocation));
    if (entry == NULL) {
        g_message("denied %s: %s.%s is not in the authorization table",
                  g_dbus_method_invocation_get_sender(invocation),
                  g_dbus_method_invocation_get_interface_name(invocation),
                  g_dbus_method_invocation_get_method_name(invocation));
        g_dbus_method_invocation_return_error_literal(invocation, SHIMMER_SERVICE_ERROR,
                                                      SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED,
                                                      "not authorized: unknown request");
        if (destroy != NULL && data != NULL)
            destroy(data);
        return;
    }
    GateCall *call = g_new0(GateCall, 1);
    call->auth = auth_ref(auth);
    call->invocation = invocation;
    call->func = func;
    call->data = data;
    call->destroy = destroy;
    /* Methods that act on the caller's own objects: the caller is the
     * owner, which the check works out once it knows the uid. */
    shimmer_auth_check(auth, invocation, entry->kind,
                       entry->owner == OWNER_CALLER ? G_MAXUINT : object_owner, cancellable,
                       on_gate_checked, call);
}
