/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus service: name, object manager, Manager1, the gate in front of
 * every method, start-up clean-up and orderly shutdown. See daemon.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "shimmer-build-config.h"

#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "os/netcfg.h"
#include "profile.h"
#include "secure.h"
#include "session.h"
#include "os/tun.h"

/* How long shutdown waits for servers to take the exit notification. */
#define SHUTDOWN_GRACE_SECONDS 5
/* Bus names remembered as callers (for Log signals), at most. */
#define MAX_CALLERS 4096

struct ShimmerDaemon {
    GDBusConnection *bus;
    GDBusConnection *polkit_bus;
    GDBusConnection *resolved_bus;
    char *state_dir;
    gboolean verbose;

    ShimmerAuth *auth;
    ShimmerDns *dns;
    GCancellable *cancel;

    /* The object manager serves /org/shimmervpn's children; Manager1 is
     * exported on the same path by itself (an object manager does not
     * manage its own path). */
    GDBusObjectManagerServer *manager;
    ShimmerDBusManager1 *iface;

    GHashTable *profiles; /* id -> ShimmerProfile* (a reference) */
    GHashTable *sessions; /* id -> ShimmerSession* (a reference) */
    GHashTable *callers;  /* unique bus name -> uid */
    guint64 next_session;

    guint name_owner_sub;
    guint own_id;
    gboolean name_acquired;

    ShimmerDaemonDoneFunc done;
    gpointer done_user;
    gboolean stopping;
    gboolean done_scheduled;
    int exit_code;
    guint grace_timer;
    guint done_idle;
};

/* ---------- errors ---------- */

static const GDBusErrorEntry dbus_error_entries[] = {
    {SHIMMER_DBUS_ERROR_FAILED, "org.shimmervpn.Error.Failed"},
    {SHIMMER_DBUS_ERROR_INVALID_ARGS, "org.shimmervpn.Error.InvalidArgs"},
    {SHIMMER_DBUS_ERROR_INVALID_CONFIG, "org.shimmervpn.Error.InvalidConfig"},
    {SHIMMER_DBUS_ERROR_NOT_AUTHORIZED, "org.shimmervpn.Error.NotAuthorized"},
    {SHIMMER_DBUS_ERROR_EXISTS, "org.shimmervpn.Error.Exists"},
    {SHIMMER_DBUS_ERROR_BUSY, "org.shimmervpn.Error.Busy"},
    {SHIMMER_DBUS_ERROR_NOT_FOUND, "org.shimmervpn.Error.NotFound"},
};

GQuark shimmer_dbus_error_quark(void)
{
    static gsize quark = 0;
    g_dbus_error_register_error_domain("shimmer-dbus-error-quark", &quark, dbus_error_entries,
                                       G_N_ELEMENTS(dbus_error_entries));
    return (GQuark)quark;
}

void shimmer_daemon_return_error(GDBusMethodInvocation *invocation, const GError *error)
{
    if (error->domain == SHIMMER_DBUS_ERROR)
        g_dbus_method_invocation_return_gerror(invocation, error);
    else
        g_dbus_method_invocation_return_error_literal(invocation, SHIMMER_DBUS_ERROR,
                                                      SHIMMER_DBUS_ERROR_FAILED, error->message);
}

void shimmer_daemon_return_new(GDBusMethodInvocation *invocation, ShimmerDBusError code,
                               const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_dbus_method_invocation_return_error_literal(invocation, SHIMMER_DBUS_ERROR, (gint)code, msg);
}

/* ---------- accessors ---------- */

GDBusConnection *shimmer_daemon_get_bus(ShimmerDaemon *d)
{
    return d->bus;
}

ShimmerDns *shimmer_daemon_get_dns(ShimmerDaemon *d)
{
    return d->dns;
}

const char *shimmer_daemon_get_state_dir(ShimmerDaemon *d)
{
    return d->state_dir;
}

gboolean shimmer_daemon_get_verbose(ShimmerDaemon *d)
{
    return d->verbose;
}

gboolean shimmer_daemon_is_stopping(ShimmerDaemon *d)
{
    return d->stopping;
}

/* ---------- callers ---------- */

static void remember_caller(ShimmerDaemon *d, const char *sender, guint uid)
{
    /* Only unique names: a well-known name could move to another process. */
    if (sender[0] != ':' || g_hash_table_contains(d->callers, sender))
        return;
    if (g_hash_table_size(d->callers) >= MAX_CALLERS) {
        g_debug("%u callers remembered: %s gets no Log signals", MAX_CALLERS, sender);
        return;
    }
    g_hash_table_insert(d->callers, g_strdup(sender), GUINT_TO_POINTER(uid));
}

static void on_name_owner_changed(GDBusConnection *bus, const char *sender_name,
                                  const char *object_path, const char *interface_name,
                                  const char *signal_name, GVariant *parameters, gpointer user)
{
    ShimmerDaemon *d = user;
    const char *name, *old_owner, *new_owner;
    if (!g_variant_is_of_type(parameters, G_VARIANT_TYPE("(sss)")))
        return;
    g_variant_get(parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
    if (new_owner[0] == '\0')
        g_hash_table_remove(d->callers, name);
}

char **shimmer_daemon_dup_names_of_uid(ShimmerDaemon *d, guint uid)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, d->callers);
    while (g_hash_table_iter_next(&it, &key, &value))
        if (GPOINTER_TO_UINT(value) == uid)
            g_strv_builder_add(b, key);
    return g_strv_builder_end(b);
}

/* ---------- the gate ---------- */

typedef struct {
    ShimmerDaemon *d;
    GDBusMethodInvocation *invocation;
    guint uid;
    ShimmerDaemonAuthorizedFunc func;
    gpointer data;
    GDestroyNotify destroy;
} AuthCall;

static void auth_call_free(AuthCall *call)
{
    if (call->destroy != NULL && call->data != NULL)
        call->destroy(call->data);
    g_free(call);
}

static void on_auth_checked(GObject *source, GAsyncResult *result, gpointer user)
{
    AuthCall *call = user;
    g_autoptr(GError) error = NULL;
    if (!shimmer_auth_check_finish(call->d->auth, result, &error)) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            /* The daemon is going away: the caller gets an answer anyway. */
            shimmer_daemon_return_new(call->invocation, SHIMMER_DBUS_ERROR_FAILED,
                                      "the daemon is stopping");
        } else if (error != NULL && error->domain == SHIMMER_DBUS_ERROR) {
            g_dbus_method_invocation_return_gerror(call->invocation, error);
        } else {
            shimmer_daemon_return_new(call->invocation, SHIMMER_DBUS_ERROR_NOT_AUTHORIZED,
                                      "not authorized: %s", error ? error->message : "denied");
        }
        auth_call_free(call);
        return;
    }
    call->func(call->d, call->invocation, call->uid, call->data);
    auth_call_free(call);
}

void shimmer_daemon_authorize(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                              ShimmerAuthKind kind, guint owner_uid,
                              ShimmerDaemonAuthorizedFunc func, gpointer data,
                              GDestroyNotify destroy)
{
    const char *sender = g_dbus_method_invocation_get_sender(invocation);
    g_autoptr(GError) error = NULL;
    guint uid = G_MAXUINT;
    if (sender == NULL || !shimmer_auth_get_uid(d->auth, sender, &uid, &error)) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_NOT_AUTHORIZED,
                                  "cannot tell who the caller is: %s",
                                  error ? error->message : "no sender");
        if (destroy != NULL && data != NULL)
            destroy(data);
        return;
    }
    remember_caller(d, sender, uid);
    AuthCall *call = g_new0(AuthCall, 1);
    call->d = d;
    call->invocation = invocation;
    call->uid = uid;
    call->func = func;
    call->data = data;
    call->destroy = destroy;
    shimmer_auth_check(d->auth, invocation, kind,
                       owner_uid == SHIMMER_DAEMON_OWNER_IS_CALLER ? uid : owner_uid, d->cancel,
                       on_auth_checked, call);
}

/* ---------- profiles and sessions ---------- */

ShimmerProfile *shimmer_daemon_find_profile(ShimmerDaemon *d, guint owner_uid, const char *name)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, d->profiles);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        ShimmerProfile *p = value;
        if (shimmer_profile_get_owner(p) == owner_uid &&
            strcmp(shimmer_profile_get_name(p), name) == 0)
            return p;
    }
    return NULL;
}

static guint count_profiles_of(ShimmerDaemon *d, guint owner_uid)
{
    guint n = 0;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, d->profiles);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (shimmer_profile_get_owner(value) == owner_uid)
            n++;
    return n;
}

static void add_profile(ShimmerDaemon *d, ShimmerProfile *p)
{
    g_hash_table_insert(d->profiles, g_strdup(shimmer_profile_get_id(p)), shimmer_profile_ref(p));
    g_dbus_object_manager_server_export(d->manager, shimmer_profile_get_object(p));
}

void shimmer_daemon_remove_profile(ShimmerDaemon *d, ShimmerProfile *p)
{
    g_dbus_object_manager_server_unexport(d->manager, shimmer_profile_get_path(p));
    g_hash_table_remove(d->profiles, shimmer_profile_get_id(p));
}

char *shimmer_daemon_new_session_id(ShimmerDaemon *d)
{
    return g_strdup_printf("%" G_GUINT64_FORMAT, ++d->next_session);
}

void shimmer_daemon_add_session(ShimmerDaemon *d, ShimmerSession *s)
{
    g_hash_table_insert(d->sessions, g_strdup(shimmer_session_get_id(s)), shimmer_session_ref(s));
    g_dbus_object_manager_server_export(d->manager, shimmer_session_get_object(s));
}

void shimmer_daemon_remove_session(ShimmerDaemon *d, ShimmerSession *s)
{
    g_dbus_object_manager_server_unexport(d->manager, shimmer_session_get_path(s));
    g_hash_table_remove(d->sessions, shimmer_session_get_id(s));
}

static int compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------- Manager1 ---------- */

typedef struct {
    char *name;
    char *text; /* secret */
    gboolean persistent;
    char *bound_to; /* the caller's unique name with bound-to-caller, else NULL */
} ImportCall;

static void import_call_free(gpointer data)
{
    ImportCall *c = data;
    g_free(c->name);
    g_free(c->bound_to);
    shimmer_str_free_secret(c->text);
    g_free(c);
}

static gboolean validate_text(const char *text, GError **error)
{
    gsize len = strlen(text);
    if (len > SHIMMER_PROFILE_MAX_TEXT) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                    "config_text: %" G_GSIZE_FORMAT " bytes, at most %u are accepted", len,
                    SHIMMER_PROFILE_MAX_TEXT);
        return FALSE;
    }
    if (!g_utf8_validate(text, (gssize)len, NULL)) {
        g_set_error_literal(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                            "config_text: not valid UTF-8");
        return FALSE;
    }
    return TRUE;
}

static void import_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation, guint caller_uid,
                              gpointer data)
{
    ImportCall *c = data;
    if (d->stopping) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_FAILED, "the daemon is stopping");
        return;
    }
    if (shimmer_daemon_find_profile(d, caller_uid, c->name) != NULL) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_EXISTS,
                                  "you already have a profile named \"%s\"", c->name);
        return;
    }
    if (caller_uid != 0 && count_profiles_of(d, caller_uid) >= SHIMMER_PROFILE_MAX_PER_OWNER) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_FAILED,
                                  "you have %u profiles already, the most one user may have",
                                  SHIMMER_PROFILE_MAX_PER_OWNER);
        return;
    }
    g_autoptr(GError) error = NULL;
    guint64 now = (guint64)(g_get_real_time() / G_USEC_PER_SEC);
    g_autoptr(ShimmerProfile) p = shimmer_profile_new(
        d, NULL, c->name, caller_uid, now, c->persistent, c->text, strlen(c->text), &error);
    if (p == NULL || !shimmer_profile_save(p, &error)) {
        shimmer_daemon_return_error(invocation, error);
        return;
    }
    add_profile(d, p);
    if (c->bound_to != NULL)
        shimmer_profile_bind_to_caller(p, c->bound_to);
    g_message("profile %s \"%s\" imported by uid %u%s%s%s", shimmer_profile_get_id(p), c->name,
              caller_uid, c->persistent ? "" : " (not persistent)",
              c->bound_to ? ", bound to " : "", c->bound_to ? c->bound_to : "");
    shimmer_dbus_manager1_complete_import_profile(d->iface, invocation,
                                                  shimmer_profile_get_path(p));
}

static gboolean handle_import_profile(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                      const char *name, const char *config_text, GVariant *options,
                                      gpointer user)
{
    ShimmerDaemon *d = user;
    g_autoptr(GError) error = NULL;
    gboolean persistent = TRUE;
    gboolean bound = FALSE;
    if (!shimmer_profile_validate_name(name, "name", &error) ||
        !validate_text(config_text, &error)) {
        shimmer_daemon_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    GVariantIter it;
    const char *key;
    GVariant *value;
    g_variant_iter_init(&it, options);
    while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
        g_autoptr(GVariant) v = value;
        gboolean *target = strcmp(key, "persistent") == 0        ? &persistent
                           : strcmp(key, "bound-to-caller") == 0 ? &bound
                                                                 : NULL;
        if (target == NULL) {
            g_autofree char *shown = g_strescape(key, NULL);
            shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                                      "options: unknown option \"%.64s\" (known: persistent, "
                                      "bound-to-caller)",
                                      shown);
            return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN)) {
            shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                                      "options: \"%s\" must be a boolean (b), not %s", key,
                                      g_variant_get_type_string(v));
            return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
        *target = g_variant_get_boolean(v);
    }
    if (bound && persistent) {
        /* A stored profile would outlive its caller at the next start. */
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                                  "options: \"bound-to-caller\" needs \"persistent\" false");
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    ImportCall *c = g_new0(ImportCall, 1);
    c->name = g_strdup(name);
    c->text = g_strdup(config_text);
    c->persistent = persistent;
    if (bound)
        c->bound_to = g_strdup(g_dbus_method_invocation_get_sender(invocation));
    shimmer_daemon_authorize(d, invocation, SHIMMER_AUTH_IMPORT, 0, import_authorized, c,
                             import_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void check_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation, guint caller_uid,
                             gpointer data)
{
    const char *text = data;
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    shimmer_config_free(shimmer_profile_parse("config", text, strlen(text), &usable, &diagnostics));
    shimmer_dbus_manager1_complete_check_config(d->iface, invocation, usable, diagnostics);
}

static gboolean handle_check_config(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                    const char *config_text, gpointer user)
{
    ShimmerDaemon *d = user;
    g_autoptr(GError) error = NULL;
    if (!validate_text(config_text, &error)) {
        shimmer_daemon_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    shimmer_daemon_authorize(d, invocation, SHIMMER_AUTH_IMPORT, 0, check_authorized,
                             g_strdup(config_text), (GDestroyNotify)shimmer_str_free_secret);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The object paths of TABLE's values that CALLER_UID may see (its own; all
 * for root), sorted, NULL-terminated. */
static GPtrArray *visible_paths(GHashTable *table, guint caller_uid, guint (*owner_of)(gpointer),
                                const char *(*path_of)(gpointer))
{
    GPtrArray *paths = g_ptr_array_new();
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, table);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (caller_uid == 0 || owner_of(value) == caller_uid)
            g_ptr_array_add(paths, (gpointer)path_of(value));
    g_ptr_array_sort(paths, compare_strings);
    g_ptr_array_add(paths, NULL);
    return paths;
}

static guint profile_owner(gpointer p)
{
    return shimmer_profile_get_owner(p);
}

static const char *profile_path(gpointer p)
{
    return shimmer_profile_get_path(p);
}

static guint session_owner(gpointer s)
{
    return shimmer_session_get_owner(s);
}

static const char *session_path(gpointer s)
{
    return shimmer_session_get_path(s);
}

static void list_profiles_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                                     guint caller_uid, gpointer data)
{
    g_autoptr(GPtrArray) paths =
        visible_paths(d->profiles, caller_uid, profile_owner, profile_path);
    shimmer_dbus_manager1_complete_list_profiles(d->iface, invocation,
                                                 (const char *const *)paths->pdata);
}

static gboolean handle_list_profiles(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                     gpointer user)
{
    shimmer_daemon_authorize(user, invocation, SHIMMER_AUTH_PROFILE, SHIMMER_DAEMON_OWNER_IS_CALLER,
                             list_profiles_authorized, NULL, NULL);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void list_sessions_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                                     guint caller_uid, gpointer data)
{
    g_autoptr(GPtrArray) paths =
        visible_paths(d->sessions, caller_uid, session_owner, session_path);
    shimmer_dbus_manager1_complete_list_sessions(d->iface, invocation,
                                                 (const char *const *)paths->pdata);
}

static gboolean handle_list_sessions(ShimmerDBusManager1 *iface, GDBusMethodInvocation *invocation,
                                     gpointer user)
{
    shimmer_daemon_authorize(user, invocation, SHIMMER_AUTH_SESSION, SHIMMER_DAEMON_OWNER_IS_CALLER,
                             list_sessions_authorized, NULL, NULL);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- start-up ---------- */

/* ^shim[0-9]+$: the names SHIMMER_DAEMON_TUN_PATTERN produces. */
static gboolean is_session_tun_name(const char *name)
{
    if (!g_str_has_prefix(name, "shim") || name[4] == '\0')
        return FALSE;
    for (const char *c = name + 4; *c; c++)
        if (!g_ascii_isdigit(*c))
            return FALSE;
    return TRUE;
}

/* A tun device of our pattern left by a crashed run. A device the daemon
 * created is not persistent, so the kernel removed it with the dead
 * process's descriptor; only a persistent one (someone ran `ip tuntap add
 * shim0`, or a future version made one) can be left. It is attached to,
 * made non-persistent and closed, which deletes it. One held by a living
 * process (EBUSY) or of another kind is left alone. */
static void cleanup_stale_tuns(void)
{
    struct if_nameindex *ifs = if_nameindex();
    if (ifs == NULL)
        return;
    for (struct if_nameindex *i = ifs; i->if_index != 0 && i->if_name != NULL; i++) {
        if (!is_session_tun_name(i->if_name))
            continue;
        g_autoptr(GError) error = NULL;
        g_autoptr(ShimmerTun) tun = shimmer_tun_open(i->if_name, &error);
        if (tun == NULL) {
            g_message("device %s exists and is not ours to remove: %s", i->if_name, error->message);
            continue;
        }
        if (!shimmer_tun_is_persistent(tun))
            continue;
        if (ioctl(shimmer_tun_get_fd(tun), TUNSETPERSIST, 0) < 0)
            g_warning("cannot remove the stale tun device %s: %s", i->if_name, g_strerror(errno));
        else
            g_message("removed the stale tun device %s", i->if_name);
    }
    if_freenameindex(ifs);
}

/* Routes of our protocol left by a run that could not roll back (killed,
 * crashed): a pinned route to a server, net_gateway routes. Routes through
 * its tun devices went with the devices. */
static void cleanup_stale_routes(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_free);
    if (!shimmer_netcfg_remove_stale_routes(SHIMMER_NETCFG_RTPROT_SHIMMERD, removed, &error))
        g_warning("removing routes a previous run left: %s", error->message);
    for (guint i = 0; i < removed->len; i++)
        g_message("removed the stale %s (left by a previous run)",
                  (char *)g_ptr_array_index(removed, i));
}

static void load_profiles(ShimmerDaemon *d)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = g_dir_open(d->state_dir, 0, &error);
    if (dir == NULL) {
        g_warning("cannot read the state directory: %s", error->message);
        return;
    }
    const char *entry;
    guint loaded = 0, set_aside = 0;
    while ((entry = g_dir_read_name(dir)) != NULL) {
        g_autofree char *path = g_build_filename(d->state_dir, entry, NULL);
        if (entry[0] == '.' && strstr(entry, ".profile.") != NULL) {
            /* A temporary file of a write that never finished. */
            if (unlink(path) == 0)
                g_message("removed %s (an unfinished write)", path);
            continue;
        }
        if (!g_str_has_suffix(entry, ".profile"))
            continue;
        g_autoptr(GError) lerr = NULL;
        g_autoptr(ShimmerProfile) p = shimmer_profile_load(d, path, &lerr);
        if (p != NULL && g_hash_table_contains(d->profiles, shimmer_profile_get_id(p))) {
            g_set_error(&lerr, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_EXISTS,
                        "%s: a profile with this id was loaded already", path);
            g_clear_pointer(&p, shimmer_profile_unref);
        }
        if (p == NULL) {
            g_autofree char *aside = g_strconcat(path, ".corrupt", NULL);
            if (rename(path, aside) == 0)
                g_warning("%s; set aside as %s", lerr->message, aside);
            else
                g_warning("%s; cannot set it aside: %s", lerr->message, g_strerror(errno));
            set_aside++;
            continue;
        }
        if (shimmer_daemon_find_profile(d, shimmer_profile_get_owner(p),
                                        shimmer_profile_get_name(p)) != NULL)
            g_warning("%s: uid %u has two profiles named \"%s\"", path,
                      shimmer_profile_get_owner(p), shimmer_profile_get_name(p));
        add_profile(d, p);
        loaded++;
    }
    g_message("%u profile%s loaded from %s%s", loaded, loaded == 1 ? "" : "s", d->state_dir,
              set_aside ? " (some files were set aside, see above)" : "");
}

static void schedule_done(ShimmerDaemon *d);

static void on_name_acquired(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerDaemon *d = user;
    if (d->name_acquired)
        return;
    d->name_acquired = TRUE;
    /* Only the one daemon that owns the name touches the state directory
     * and clears what a crashed run left; a second instance that fails to
     * start changes nothing. Method calls queued behind this callback see
     * the profiles. */
    cleanup_stale_tuns();
    cleanup_stale_routes();
    shimmer_dns_cleanup_stale(d->dns);
    load_profiles(d);
    g_message("serving %s on the bus", name);
}

static void on_name_lost(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerDaemon *d = user;
    if (d->stopping && d->done_scheduled)
        return;
    if (d->name_acquired)
        g_warning("lost the bus name %s (or the bus): stopping", name);
    else
        g_warning("cannot own the bus name %s: another shimmerd runs, or the bus policy does "
                  "not allow this user to own it",
                  name);
    d->exit_code = 1;
    shimmer_daemon_shutdown(d);
}

gboolean shimmer_daemon_start(ShimmerDaemon *d, GError **error)
{

    d->name_owner_sub = g_dbus_connection_signal_subscribe(
        d->bus, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
        "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed, d, NULL);
    if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(d->iface), d->bus,
                                          SHIMMER_DAEMON_ROOT_PATH, error))
        return FALSE;
    g_dbus_object_manager_server_set_connection(d->manager, d->bus);
    /* Without a bus the daemon has nothing to do: on_name_lost ends it. */
    g_dbus_connection_set_exit_on_close(d->bus, FALSE);
    d->own_id = g_bus_own_name_on_connection(d->bus, SHIMMER_DAEMON_BUS_NAME,
                                             G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, on_name_acquired,
                                             on_name_lost, d, NULL);
    return TRUE;
}

/* ---------- shutdown ---------- */

static gboolean all_sessions_finished(ShimmerDaemon *d)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, d->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (!shimmer_session_is_finished(value))
            return FALSE;
    return TRUE;
}

static gboolean done_idle(gpointer user)
{
    ShimmerDaemon *d = user;
    d->done_idle = 0;
    if (d->grace_timer) {
        g_source_remove(d->grace_timer);
        d->grace_timer = 0;
    }
    shimmer_dns_revert_all(d->dns);
    if (d->own_id) {
        g_bus_unown_name(d->own_id);
        d->own_id = 0;
    }
    g_message("stopped");
    if (d->done != NULL)
        d->done(d->done_user, d->exit_code);
    return G_SOURCE_REMOVE;
}

static void schedule_done(ShimmerDaemon *d)
{
    if (!d->stopping || d->done_scheduled || !all_sessions_finished(d))
        return;
    d->done_scheduled = TRUE;
    d->done_idle = g_idle_add(done_idle, d);
}

void shimmer_daemon_session_finished(ShimmerDaemon *d, ShimmerSession *s)
{
    schedule_done(d);
}

/* The sessions, each with a reference: stopping one may change the table. */
static GPtrArray *list_sessions(ShimmerDaemon *d)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_session_unref);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, d->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value))
        g_ptr_array_add(list, shimmer_session_ref(value));
    return list;
}

static void abort_sessions(ShimmerDaemon *d, const char *why)
{
    g_autoptr(GPtrArray) list = list_sessions(d);
    for (guint i = 0; i < list->len; i++)
        shimmer_session_abort(g_ptr_array_index(list, i), why);
}

static gboolean on_grace_over(gpointer user)
{
    ShimmerDaemon *d = user;
    d->grace_timer = 0;
    g_message("servers did not confirm the disconnect in time: tearing down");
    abort_sessions(d, "the daemon stopped");
    schedule_done(d);
    return G_SOURCE_REMOVE;
}

void shimmer_daemon_shutdown(ShimmerDaemon *d)
{
    if (d->stopping) {
        abort_sessions(d, "the daemon stopped");
        schedule_done(d);
        return;
    }
    d->stopping = TRUE;
    guint n = g_hash_table_size(d->sessions);
    if (n > 0)
        g_message("stopping: disconnecting %u session%s", n, n == 1 ? "" : "s");
    g_autoptr(GPtrArray) list = list_sessions(d);
    for (guint i = 0; i < list->len; i++)
        shimmer_session_stop(g_ptr_array_index(list, i), "the daemon is stopping");
    d->grace_timer = g_timeout_add_seconds(SHUTDOWN_GRACE_SECONDS, on_grace_over, d);
    schedule_done(d);
}

/* ---------- life cycle ---------- */

ShimmerDaemon *shimmer_daemon_new(const ShimmerDaemonOptions *options, ShimmerDaemonDoneFunc done,
                                  gpointer done_user, GError **error)
{
    g_return_val_if_fail(options != NULL && G_IS_DBUS_CONNECTION(options->bus), NULL);
    const char *state_dir =
        options->state_dir ? options->state_dir : SHIMMER_DAEMON_DEFAULT_STATE_DIR;
    if (g_mkdir_with_parents(state_dir, 0700) < 0) {
        int err = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    "cannot create the state directory %s: %s", state_dir, g_strerror(err));
        return NULL;
    }
    /* Make sure the error names exist before the first reply. */
    (void)shimmer_dbus_error_quark();

    ShimmerDaemon *d = g_new0(ShimmerDaemon, 1);
    d->bus = g_object_ref(options->bus);
    d->polkit_bus = g_object_ref(options->polkit_bus ? options->polkit_bus : options->bus);
    d->resolved_bus = g_object_ref(options->resolved_bus ? options->resolved_bus : options->bus);
    d->state_dir = g_strdup(state_dir);
    d->verbose = options->verbose;
    d->done = done;
    d->done_user = done_user;
    d->cancel = g_cancellable_new();
    d->auth = shimmer_auth_new(d->bus, d->polkit_bus);
    d->dns = shimmer_dns_new(d->resolved_bus, options->resolvconf);
    d->profiles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)shimmer_profile_unref);
    d->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)shimmer_session_unref);
    d->callers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    d->manager = g_dbus_object_manager_server_new(SHIMMER_DAEMON_ROOT_PATH);
    d->iface = shimmer_dbus_manager1_skeleton_new();
    shimmer_dbus_manager1_set_version(d->iface, PACKAGE_VERSION);
    shimmer_dbus_manager1_set_dns_backend(
        d->iface, shimmer_dns_backend_name(shimmer_dns_get_backend(d->dns)));
    g_signal_connect(d->iface, "handle-import-profile", G_CALLBACK(handle_import_profile), d);
    g_signal_connect(d->iface, "handle-check-config", G_CALLBACK(handle_check_config), d);
    g_signal_connect(d->iface, "handle-list-profiles", G_CALLBACK(handle_list_profiles), d);
    g_signal_connect(d->iface, "handle-list-sessions", G_CALLBACK(handle_list_sessions), d);
    g_message("shimmerd %s: state in %s, DNS through %s", PACKAGE_VERSION, d->state_dir,
              shimmer_dns_backend_name(shimmer_dns_get_backend(d->dns)));
    return d;
}

void shimmer_daemon_free(ShimmerDaemon *d)
{
    if (d == NULL)
        return;
    g_cancellable_cancel(d->cancel);
    if (d->grace_timer)
        g_source_remove(d->grace_timer);
    if (d->done_idle)
        g_source_remove(d->done_idle);
    /* Sessions first: their tunnels and DNS go before the DNS helper. */
    abort_sessions(d, "the daemon stopped");
    g_hash_table_destroy(d->sessions);
    d->sessions = NULL;
    if (d->own_id)
        g_bus_unown_name(d->own_id);
    if (d->name_owner_sub)
        g_dbus_connection_signal_unsubscribe(d->bus, d->name_owner_sub);
    g_hash_table_destroy(d->profiles);
    g_hash_table_destroy(d->callers);
    g_signal_handlers_disconnect_by_data(d->iface, d);
    if (g_dbus_interface_skeleton_has_connection(G_DBUS_INTERFACE_SKELETON(d->iface), d->bus))
        g_dbus_interface_skeleton_unexport(G_DBUS_INTERFACE_SKELETON(d->iface));
    g_object_unref(d->iface);
    g_dbus_object_manager_server_set_connection(d->manager, NULL);
    g_object_unref(d->manager);
    shimmer_dns_revert_all(d->dns);
    shimmer_dns_free(d->dns);
    shimmer_auth_free(d->auth);
    g_object_unref(d->cancel);
    g_object_unref(d->resolved_bus);
    g_object_unref(d->polkit_bus);
    g_object_unref(d->bus);
    g_free(d->state_dir);
    g_free(d);
}
