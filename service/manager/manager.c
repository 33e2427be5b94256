/* SPDX-License-Identifier: MIT */
/*
 * The manager: profiles, sessions, limits, start and stop. See manager.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "manager.h"

#include <string.h>
#include <sys/resource.h>

#include "os/netcfg.h"
#include "os/tun.h"
#include "secure.h"
#include "store.h"
#include "tunnel/tunnel.h"

struct ShimmerManager {
    ShimmerStore *store;
    ShimmerDns *dns;
    gboolean verbose;
    ShimmerManagerListener listener;

    GHashTable *profiles; /* id -> ShimmerProfile* (a reference) */
    GHashTable *sessions; /* id -> ShimmerSession* (a reference) */
    GHashTable *active;   /* profile id -> ShimmerSession* (in sessions) */
    GHashTable *lingers;  /* session id -> timer source id */
    guint64 next_session;
    GHashTable *servers;        /* id -> ShimmerManagedServer* (a reference) */
    GHashTable *active_servers; /* profile id -> ShimmerManagedServer* (in servers) */
    GHashTable *server_lingers; /* server id -> timer source id */
    guint64 next_server;
    guint max_sessions;
    guint fds_per_session;

    gboolean stopping;
    gboolean stopped_reported;
    guint grace_timer;
    guint stopped_idle;
    GCancellable *cancel; /* cancelled when the manager goes */
};

/* ---------- limits ---------- */

typedef struct {
    guint profiles;
    gsize bytes;
    guint sessions;
} Usage;

/* What OWNER uses (G_MAXUINT: every uid but root together). */
static Usage usage_of(ShimmerManager *m, guint owner)
{
    Usage u = {0};
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, m->profiles);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        guint o = shimmer_profile_get_owner(value);
        if (o == 0 || (owner != G_MAXUINT && o != owner))
            continue;
        gsize len = 0;
        shimmer_profile_get_text(value, &len);
        u.profiles++;
        u.bytes += len;
    }
    g_hash_table_iter_init(&it, m->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        guint o = shimmer_session_get_owner(value);
        if (o == 0 || (owner != G_MAXUINT && o != owner))
            continue;
        u.sessions++;
    }
    return u;
}

static gboolean limit_error(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean limit_error(GError **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_LIMIT, msg);
    return FALSE;
}

static gboolean check_profile_limits(ShimmerManager *m, guint owner, gsize len, GError **error)
{
    if (owner == 0)
        return TRUE;
    Usage mine = usage_of(m, owner), all = usage_of(m, G_MAXUINT);
    if (mine.profiles >= SHIMMER_MANAGER_MAX_PROFILES_PER_UID)
        return limit_error(error, "you have %u profiles already, the most one user may have",
                           SHIMMER_MANAGER_MAX_PROFILES_PER_UID);
    if (mine.bytes + len > SHIMMER_MANAGER_MAX_BYTES_PER_UID)
        return limit_error(error,
                           "your profiles would hold more than %u bytes together, the most one "
                           "user may store",
                           SHIMMER_MANAGER_MAX_BYTES_PER_UID);
    if (all.profiles >= SHIMMER_MANAGER_MAX_PROFILES)
        return limit_error(error, "the daemon holds %u profiles of users already, its limit",
                           SHIMMER_MANAGER_MAX_PROFILES);
    if (all.bytes + len > SHIMMER_MANAGER_MAX_BYTES)
        return limit_error(error,
                           "the profiles of users would hold more than %u bytes together, the "
                           "daemon's limit",
                           SHIMMER_MANAGER_MAX_BYTES);
    return TRUE;
}

static gboolean check_session_limits(ShimmerManager *m, guint owner, GError **error)
{
    guint running = g_hash_table_size(m->sessions);
    /* Root too: past this the daemon would run out of descriptors. */
    if (running >= m->max_sessions + SHIMMER_MANAGER_FDS_RESERVED / m->fds_per_session)
        return limit_error(error, "%u sessions run already, as many as the daemon can hold",
                           running);
    if (owner == 0)
        return TRUE;
    Usage mine = usage_of(m, owner), all = usage_of(m, G_MAXUINT);
    if (mine.sessions >= SHIMMER_MANAGER_MAX_SESSIONS_PER_UID)
        return limit_error(error, "you run %u sessions already, the most one user may run",
                           SHIMMER_MANAGER_MAX_SESSIONS_PER_UID);
    if (all.sessions >= m->max_sessions)
        return limit_error(error, "users run %u sessions already, the daemon's limit",
                           m->max_sessions);
    return TRUE;
}

/* The session limit that the descriptor limit allows, after raising the
 * soft limit as far as the hard one goes. */
static guint sessions_fds_allow(guint fds_per_session)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return SHIMMER_MANAGER_MAX_SESSIONS;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            rl.rlim_cur = old;
    }
    /* Root's sessions get the reserve's share; the rest is for users. */
    rlim_t usable = rl.rlim_cur > 2 * SHIMMER_MANAGER_FDS_RESERVED
                        ? rl.rlim_cur - 2 * SHIMMER_MANAGER_FDS_RESERVED
                        : 0;
    rlim_t n = usable / fds_per_session;
    return (guint)MIN(n, (rlim_t)SHIMMER_MANAGER_MAX_SESSIONS);
}

/* ---------- profiles ---------- */

static void add_profile(ShimmerManager *m, ShimmerProfile *p)
{
    g_hash_table_insert(m->profiles, g_strdup(shimmer_profile_get_id(p)), shimmer_profile_ref(p));
    if (m->listener.profile_added)
        m->listener.profile_added(m->listener.user, p);
}

static void profile_changed(ShimmerManager *m, ShimmerProfile *p)
{
    if (m->listener.profile_changed && !shimmer_profile_is_removed(p))
        m->listener.profile_changed(m->listener.user, p);
}

ShimmerProfile *shimmer_manager_find_profile(ShimmerManager *m, guint owner, const char *name)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, m->profiles);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (shimmer_profile_get_owner(value) == owner &&
            strcmp(shimmer_profile_get_name(value), name) == 0)
            return value;
    return NULL;
}

static gboolean store_profile(ShimmerManager *m, ShimmerProfile *p, GError **error)
{
    if (!shimmer_profile_is_persistent(p))
        return TRUE;
    ShimmerStoredProfile sp = {
        .id = (char *)shimmer_profile_get_id(p),
        .name = (char *)shimmer_profile_get_name(p),
        .owner = shimmer_profile_get_owner(p),
        .created = shimmer_profile_get_created(p),
    };
    sp.text = (char *)shimmer_profile_get_text(p, &sp.len);
    return shimmer_store_save(m->store, &sp, error);
}

ShimmerProfile *shimmer_manager_import(ShimmerManager *m, const char *name, guint owner,
                                       const char *text, gsize len, gboolean persistent,
                                       GError **error)
{
    return shimmer_manager_import_role(m, name, owner, text, len, persistent, FALSE, error);
}

ShimmerProfile *shimmer_manager_import_role(ShimmerManager *m, const char *name, guint owner,
                                            const char *text, gsize len, gboolean persistent,
                                            gboolean allow_server, GError **error)
{
    if (m->stopping) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                            "the daemon is stopping");
        return NULL;
    }
    if (!shimmer_profile_validate_name(name, "name", error))
        return NULL;
    if (len > SHIMMER_MANAGER_MAX_TEXT) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "the profile has %" G_GSIZE_FORMAT " bytes, at most %u are accepted", len,
                    SHIMMER_MANAGER_MAX_TEXT);
        return NULL;
    }
    if (shimmer_manager_find_profile(m, owner, name) != NULL) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_EXISTS,
                    "you already have a profile named \"%s\"", name);
        return NULL;
    }
    if (!check_profile_limits(m, owner, len, error))
        return NULL;
    g_autofree char *id = shimmer_store_new_id();
    guint64 now = (guint64)(g_get_real_time() / G_USEC_PER_SEC);
    g_autoptr(ShimmerProfile) p =
        shimmer_profile_new_role(id, name, owner, now, persistent, text, len, allow_server, error);
    if (p == NULL || !store_profile(m, p, error))
        return NULL;
    add_profile(m, p);
    return p;
}

gboolean shimmer_manager_remove_profile(ShimmerManager *m, ShimmerProfile *p, const char *who,
                                        GError **error)
{
    if (shimmer_profile_is_removed(p))
        return TRUE;
    if (shimmer_profile_is_persistent(p) &&
        !shimmer_store_delete(m->store, shimmer_profile_get_id(p), error))
        return FALSE;
    /* The table's reference goes below. */
    g_autoptr(ShimmerProfile) keep = shimmer_profile_ref(p);
    ShimmerSession *s = shimmer_manager_get_active_session(m, p);
    if (s != NULL)
        shimmer_session_stop(s, "the profile was removed");
    ShimmerManagedServer *srv = shimmer_manager_get_active_server(m, p);
    if (srv != NULL)
        shimmer_managed_server_stop(srv, "the profile was removed");
    g_message("profile %s \"%s\" removed %s", shimmer_profile_get_id(p),
              shimmer_profile_get_name(p), who);
    shimmer_profile_mark_removed(p);
    g_hash_table_remove(m->profiles, shimmer_profile_get_id(p));
    if (m->listener.profile_removed)
        m->listener.profile_removed(m->listener.user, p);
    return TRUE;
}

gboolean shimmer_manager_rename_profile(ShimmerManager *m, ShimmerProfile *p, const char *name,
                                        guint by_uid, GError **error)
{
    if (!shimmer_profile_validate_name(name, "name", error))
        return FALSE;
    if (strcmp(shimmer_profile_get_name(p), name) == 0)
        return TRUE;
    guint owner = shimmer_profile_get_owner(p);
    if (shimmer_manager_find_profile(m, owner, name) != NULL) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_EXISTS,
                    "uid %u already has a profile named \"%s\"", owner, name);
        return FALSE;
    }
    g_autofree char *old = g_strdup(shimmer_profile_get_name(p));
    shimmer_profile_set_name(p, name);
    if (!store_profile(m, p, error)) {
        shimmer_profile_set_name(p, old);
        return FALSE;
    }
    g_message("profile %s renamed from \"%s\" to \"%s\" by uid %u", shimmer_profile_get_id(p), old,
              name, by_uid);
    profile_changed(m, p);
    return TRUE;
}

static gint compare_ids(const char *x, const char *y)
{
    /* Session ids are numbers: shorter first keeps "9" before "10". */
    gsize lx = strlen(x), ly = strlen(y);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

static gint compare_profiles(gconstpointer a, gconstpointer b)
{
    return compare_ids(shimmer_profile_get_id(*(ShimmerProfile *const *)a),
                       shimmer_profile_get_id(*(ShimmerProfile *const *)b));
}

static gint compare_sessions(gconstpointer a, gconstpointer b)
{
    return compare_ids(shimmer_session_get_id(*(ShimmerSession *const *)a),
                       shimmer_session_get_id(*(ShimmerSession *const *)b));
}

GPtrArray *shimmer_manager_list_profiles(ShimmerManager *m, guint owner)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_profile_unref);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, m->profiles);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (owner == G_MAXUINT || shimmer_profile_get_owner(value) == owner)
            g_ptr_array_add(list, shimmer_profile_ref(value));
    g_ptr_array_sort(list, compare_profiles);
    return list;
}

GPtrArray *shimmer_manager_list_sessions(ShimmerManager *m, guint owner)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_session_unref);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, m->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (owner == G_MAXUINT || shimmer_session_get_owner(value) == owner)
            g_ptr_array_add(list, shimmer_session_ref(value));
    g_ptr_array_sort(list, compare_sessions);
    return list;
}

/* ---------- sessions ---------- */

ShimmerSession *shimmer_manager_get_active_session(ShimmerManager *m, ShimmerProfile *p)
{
    return g_hash_table_lookup(m->active, shimmer_profile_get_id(p));
}

static void schedule_stopped(ShimmerManager *m);

static void on_session_changed(gpointer user, ShimmerSession *s, guint what)
{
    ShimmerManager *m = user;
    if (m->listener.session_changed)
        m->listener.session_changed(m->listener.user, s, what);
}

static void on_session_log(gpointer user, ShimmerSession *s, ShimmerLogLevel level,
                           const char *line)
{
    ShimmerManager *m = user;
    if (m->listener.session_log)
        m->listener.session_log(m->listener.user, s, level, line);
}

static void on_session_credentials(gpointer user, ShimmerSession *s,
                                   const ShimmerCredentialsRequest *request)
{
    ShimmerManager *m = user;
    if (m->listener.session_credentials_requested)
        m->listener.session_credentials_requested(m->listener.user, s, request);
}

/* A finished session or server, ID in OBJECTS, kept readable for a while
 * (its timer in LINGERS); GONE tells the listener and drops the table's
 * reference. */
typedef struct {
    ShimmerManager *m;
    char *id;
    GHashTable *objects, *lingers;
    void (*gone)(ShimmerManager *m, gpointer obj);
} Linger;

static void linger_free(gpointer data)
{
    Linger *l = data;
    g_free(l->id);
    g_free(l);
}

static gboolean on_linger_over(gpointer user)
{
    Linger *l = user;
    gpointer key, obj;
    if (g_hash_table_steal_extended(l->objects, l->id, &key, &obj)) {
        g_hash_table_remove(l->lingers, l->id); /* this source, going */
        g_free(key);
        l->gone(l->m, obj);
    }
    return G_SOURCE_REMOVE;
}

static void linger_start(ShimmerManager *m, GHashTable *objects, GHashTable *lingers,
                         const char *id, void (*gone)(ShimmerManager *m, gpointer obj))
{
    Linger *l = g_new0(Linger, 1);
    *l = (Linger){m, g_strdup(id), objects, lingers, gone};
    guint src = g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, SHIMMER_MANAGER_LINGER_SECONDS,
                                           on_linger_over, l, linger_free);
    g_hash_table_replace(lingers, g_strdup(id), GUINT_TO_POINTER(src));
    schedule_stopped(m);
}

static void session_gone(ShimmerManager *m, gpointer s)
{
    if (m->listener.session_removed)
        m->listener.session_removed(m->listener.user, s);
    shimmer_session_unref(s);
}

static void on_session_finished(gpointer user, ShimmerSession *s)
{
    ShimmerManager *m = user;
    ShimmerProfile *p = shimmer_session_get_profile(s);
    if (shimmer_manager_get_active_session(m, p) == s) {
        g_hash_table_remove(m->active, shimmer_profile_get_id(p));
        profile_changed(m, p);
    }
    linger_start(m, m->sessions, m->lingers, shimmer_session_get_id(s), session_gone);
}

ShimmerSession *shimmer_manager_connect(ShimmerManager *m, ShimmerProfile *p, guint owner,
                                        const ShimmerSessionOptions *options, GError **error)
{
    if (m->stopping) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                            "the daemon is stopping");
        return NULL;
    }
    if (shimmer_profile_is_removed(p)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_FOUND,
                    "the profile \"%s\" was removed", shimmer_profile_get_name(p));
        return NULL;
    }
    if (shimmer_profile_is_server(p)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "the profile \"%s\" is a server configuration: start it as a server",
                    shimmer_profile_get_name(p));
        return NULL;
    }
    ShimmerSession *running = shimmer_manager_get_active_session(m, p);
    if (running != NULL) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_BUSY,
                    "the profile \"%s\" is in use by the session %s", shimmer_profile_get_name(p),
                    shimmer_session_get_id(running));
        return NULL;
    }
    if (!check_session_limits(m, owner, error))
        return NULL;
    ShimmerSessionOptions opts = *options;
    opts.tun_pattern = SHIMMER_MANAGER_TUN_PATTERN;
    opts.route_protocol = SHIMMER_NETCFG_RTPROT_SHIMMERD;
    opts.dns = m->dns;
    opts.verbose = m->verbose;
    ShimmerSessionListener l = {
        .changed = on_session_changed,
        .log = on_session_log,
        .credentials_requested = on_session_credentials,
        .finished = on_session_finished,
        .user = m,
    };
    g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT, ++m->next_session);
    ShimmerSession *s = shimmer_session_new(p, id, owner, &opts, &l, error);
    if (s == NULL)
        return NULL;
    g_hash_table_insert(m->sessions, g_strdup(id), s);
    g_hash_table_insert(m->active, g_strdup(shimmer_profile_get_id(p)), s);
    shimmer_profile_set_last_used(p, (guint64)(g_get_real_time() / G_USEC_PER_SEC));
    g_message("session %s of profile %s \"%s\" started by uid %u%s%s", id,
              shimmer_profile_get_id(p), shimmer_profile_get_name(p), owner,
              options->bound_to_caller ? " (bound to the caller)" : "",
              options->no_netcfg ? " (the caller configures the network)" : "");
    if (m->listener.session_added)
        m->listener.session_added(m->listener.user, s);
    profile_changed(m, p);
    shimmer_session_start(s);
    return s;
}

/* ---------- servers ---------- */

ShimmerManagedServer *shimmer_manager_get_active_server(ShimmerManager *m, ShimmerProfile *p)
{
    return g_hash_table_lookup(m->active_servers, shimmer_profile_get_id(p));
}

static gint compare_servers(gconstpointer a, gconstpointer b)
{
    return compare_ids(shimmer_managed_server_get_id(*(ShimmerManagedServer *const *)a),
                       shimmer_managed_server_get_id(*(ShimmerManagedServer *const *)b));
}

GPtrArray *shimmer_manager_list_servers(ShimmerManager *m)
{
    GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_managed_server_unref);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, m->servers);
    while (g_hash_table_iter_next(&it, NULL, &value))
        g_ptr_array_add(list, shimmer_managed_server_ref(value));
    g_ptr_array_sort(list, compare_servers);
    return list;
}

static void on_server_changed(gpointer user, ShimmerManagedServer *s, guint what)
{
    ShimmerManager *m = user;
    if (m->listener.server_changed)
        m->listener.server_changed(m->listener.user, s, what);
}

static void on_server_log(gpointer user, ShimmerManagedServer *s, ShimmerLogLevel level,
                          const char *line)
{
    ShimmerManager *m = user;
    if (m->listener.server_log)
        m->listener.server_log(m->listener.user, s, level, line);
}

static void on_server_client_added(gpointer user, ShimmerManagedServer *s,
                                   const ShimmerServedClient *c)
{
    ShimmerManager *m = user;
    if (m->listener.server_client_added)
        m->listener.server_client_added(m->listener.user, s, c);
}

static void on_server_client_changed(gpointer user, ShimmerManagedServer *s,
                                     const ShimmerServedClient *c)
{
    ShimmerManager *m = user;
    if (m->listener.server_client_changed)
        m->listener.server_client_changed(m->listener.user, s, c);
}

static void on_server_client_removed(gpointer user, ShimmerManagedServer *s,
                                     const ShimmerServedClient *c)
{
    ShimmerManager *m = user;
    if (m->listener.server_client_removed)
        m->listener.server_client_removed(m->listener.user, s, c);
}

static void on_server_auth_requested(gpointer user, ShimmerManagedServer *s,
                                     const ShimmerServerAuthRequest *r)
{
    ShimmerManager *m = user;
    if (m->listener.server_auth_requested)
        m->listener.server_auth_requested(m->listener.user, s, r);
}

static void on_server_auth_closed(gpointer user, ShimmerManagedServer *s, guint64 request,
                                  const char *outcome)
{
    ShimmerManager *m = user;
    if (m->listener.server_auth_closed)
        m->listener.server_auth_closed(m->listener.user, s, request, outcome);
}

static void server_gone(ShimmerManager *m, gpointer s)
{
    if (m->listener.server_removed)
        m->listener.server_removed(m->listener.user, s);
    shimmer_managed_server_unref(s);
}

static void on_server_finished(gpointer user, ShimmerManagedServer *s)
{
    ShimmerManager *m = user;
    ShimmerProfile *p = shimmer_managed_server_get_profile(s);
    if (shimmer_manager_get_active_server(m, p) == s) {
        g_hash_table_remove(m->active_servers, shimmer_profile_get_id(p));
        profile_changed(m, p);
    }
    linger_start(m, m->servers, m->server_lingers, shimmer_managed_server_get_id(s), server_gone);
}

static guint running_servers(ShimmerManager *m)
{
    return g_hash_table_size(m->active_servers);
}

ShimmerManagedServer *shimmer_manager_start_server(ShimmerManager *m, ShimmerProfile *p,
                                                   guint owner,
                                                   const ShimmerManagedServerOptions *options,
                                                   GError **error)
{
    if (m->stopping) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_FAILED,
                            "the daemon is stopping");
        return NULL;
    }
    if (shimmer_profile_is_removed(p)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_FOUND,
                    "the profile \"%s\" was removed", shimmer_profile_get_name(p));
        return NULL;
    }
    if (!shimmer_profile_is_server(p)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "the profile \"%s\" is a client profile: connect it instead",
                    shimmer_profile_get_name(p));
        return NULL;
    }
    ShimmerManagedServer *running = shimmer_manager_get_active_server(m, p);
    if (running != NULL) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_BUSY,
                    "the profile \"%s\" runs as server %s already", shimmer_profile_get_name(p),
                    shimmer_managed_server_get_id(running));
        return NULL;
    }
    if (running_servers(m) >= SHIMMER_MANAGED_SERVER_MAX) {
        limit_error(error, "%u servers run already, as many as the daemon runs at once",
                    SHIMMER_MANAGED_SERVER_MAX);
        return NULL;
    }
    ShimmerManagedServerOptions opts = *options;
    opts.route_protocol = SHIMMER_NETCFG_RTPROT_SHIMMERD;
    opts.verbose = m->verbose;
    ShimmerManagedServerListener l = {
        .changed = on_server_changed,
        .log = on_server_log,
        .client_added = on_server_client_added,
        .client_changed = on_server_client_changed,
        .client_removed = on_server_client_removed,
        .auth_requested = on_server_auth_requested,
        .auth_closed = on_server_auth_closed,
        .finished = on_server_finished,
        .user = m,
    };
    g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT, ++m->next_server);
    g_autoptr(ShimmerManagedServer) s = shimmer_managed_server_new(p, id, owner, &opts, &l, error);
    if (s == NULL)
        return NULL;
    /* Started before it is announced: a server that cannot listen never
     * appears. */
    if (!shimmer_managed_server_start(s, error)) {
        g_message("server of profile %s \"%s\" could not start (uid %u)", shimmer_profile_get_id(p),
                  shimmer_profile_get_name(p), owner);
        return NULL;
    }
    g_hash_table_insert(m->servers, g_strdup(id), shimmer_managed_server_ref(s));
    g_hash_table_insert(m->active_servers, g_strdup(shimmer_profile_get_id(p)), s);
    shimmer_profile_set_last_used(p, (guint64)(g_get_real_time() / G_USEC_PER_SEC));
    g_message("server %s of profile %s \"%s\" started by uid %u", id, shimmer_profile_get_id(p),
              shimmer_profile_get_name(p), owner);
    if (m->listener.server_added)
        m->listener.server_added(m->listener.user, s);
    profile_changed(m, p);
    return s;
}

/* ---------- start ---------- */

static gboolean load_one(gpointer user, ShimmerStoredProfile *sp, GError **error)
{
    ShimmerManager *m = user;
    if (g_hash_table_contains(m->profiles, sp->id)) {
        g_set_error_literal(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_EXISTS,
                            "a profile with this id was loaded already");
        return FALSE;
    }
    /* A stored server profile was imported by a caller allowed to run
     * servers; the state directory is root's alone. */
    g_autoptr(ShimmerProfile) p = shimmer_profile_new_role(sp->id, sp->name, sp->owner, sp->created,
                                                           TRUE, sp->text, sp->len, TRUE, error);
    if (p == NULL)
        return FALSE;
    if (shimmer_manager_find_profile(m, sp->owner, sp->name) != NULL)
        g_warning("uid %u has two profiles named \"%s\"", sp->owner, sp->name);
    add_profile(m, p);
    return TRUE;
}

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

void shimmer_manager_start(ShimmerManager *m)
{
    /* Only the one daemon that owns the bus name gets here: a second one
     * that fails to start changes nothing. */
    shimmer_tun_remove_stale("shim");
    cleanup_stale_routes();
    if (m->dns != NULL)
        shimmer_dns_cleanup_stale(m->dns, NULL, NULL, NULL); /* each removal is logged */
    guint loaded = 0, set_aside = 0;
    shimmer_store_load_all(m->store, load_one, m, &loaded, &set_aside);
    g_message("%u profile%s loaded from %s%s", loaded, loaded == 1 ? "" : "s",
              shimmer_store_get_dir(m->store),
              set_aside ? " (some files were set aside, see above)" : "");
}

guint shimmer_manager_get_max_sessions(ShimmerManager *m)
{
    return m->max_sessions;
}

/* ---------- stop ---------- */

static gboolean all_sessions_finished(ShimmerManager *m)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, m->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (!shimmer_session_is_finished(value))
            return FALSE;
    g_hash_table_iter_init(&it, m->servers);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (!shimmer_managed_server_is_finished(value))
            return FALSE;
    return TRUE;
}

static void report_stopped(ShimmerManager *m)
{
    if (m->listener.stopped)
        m->listener.stopped(m->listener.user);
}

static void on_dns_reverted(GObject *source, GAsyncResult *result, gpointer user)
{
    /* Cancelled: the manager was freed meanwhile. */
    if (g_task_propagate_boolean(G_TASK(result), NULL))
        report_stopped(user);
}

static gboolean stopped_idle(gpointer user)
{
    ShimmerManager *m = user;
    m->stopped_idle = 0;
    if (m->grace_timer) {
        g_source_remove(m->grace_timer);
        m->grace_timer = 0;
    }
    if (m->dns == NULL) {
        report_stopped(m);
        return G_SOURCE_REMOVE;
    }
    /* Whatever DNS is left (the sessions reverted their own) goes before
     * the daemon does. */
    shimmer_dns_revert_all(m->dns, m->cancel, on_dns_reverted, m);
    return G_SOURCE_REMOVE;
}

static void schedule_stopped(ShimmerManager *m)
{
    if (!m->stopping || m->stopped_reported || !all_sessions_finished(m))
        return;
    m->stopped_reported = TRUE;
    m->stopped_idle = g_idle_add(stopped_idle, m);
}

static void for_each_session(ShimmerManager *m, void (*fn)(ShimmerSession *, const char *),
                             const char *why)
{
    /* References: ending a session may change the table. */
    g_autoptr(GPtrArray) list = shimmer_manager_list_sessions(m, G_MAXUINT);
    for (guint i = 0; i < list->len; i++)
        fn(g_ptr_array_index(list, i), why);
}

static void for_each_server(ShimmerManager *m, void (*fn)(ShimmerManagedServer *, const char *),
                            const char *why)
{
    /* References: ending a server may change the table. */
    g_autoptr(GPtrArray) list = shimmer_manager_list_servers(m);
    for (guint i = 0; i < list->len; i++)
        fn(g_ptr_array_index(list, i), why);
}

static gboolean on_grace_over(gpointer user)
{
    ShimmerManager *m = user;
    m->grace_timer = 0;
    g_message("servers did not confirm the disconnect in time: tearing down");
    for_each_session(m, shimmer_session_abort, "the daemon stopped");
    for_each_server(m, shimmer_managed_server_abort, "the daemon stopped");
    schedule_stopped(m);
    return G_SOURCE_REMOVE;
}

void shimmer_manager_stop(ShimmerManager *m)
{
    if (m->stopping) {
        for_each_session(m, shimmer_session_abort, "the daemon stopped");
        for_each_server(m, shimmer_managed_server_abort, "the daemon stopped");
        schedule_stopped(m);
        return;
    }
    m->stopping = TRUE;
    guint n = g_hash_table_size(m->active);
    if (n > 0)
        g_message("stopping: disconnecting %u session%s", n, n == 1 ? "" : "s");
    guint ns = running_servers(m);
    if (ns > 0)
        g_message("stopping: %u server%s", ns, ns == 1 ? "" : "s");
    for_each_session(m, shimmer_session_stop, "the daemon is stopping");
    for_each_server(m, shimmer_managed_server_stop, "the daemon is stopping");
    m->grace_timer = g_timeout_add_seconds(SHIMMER_MANAGER_STOP_GRACE_SECONDS, on_grace_over, m);
    schedule_stopped(m);
}

gboolean shimmer_manager_is_stopping(ShimmerManager *m)
{
    return m->stopping;
}

/* ---------- life cycle ---------- */

ShimmerManager *shimmer_manager_new(const ShimmerManagerOptions *options,
                                    const ShimmerManagerListener *listener, GError **error)
{
    const char *dir = options->state_dir ? options->state_dir : SHIMMER_MANAGER_DEFAULT_STATE_DIR;
    g_autoptr(ShimmerStore) store = shimmer_store_open(dir, error);
    if (store == NULL)
        return NULL;
    ShimmerManager *m = g_new0(ShimmerManager, 1);
    m->store = g_steal_pointer(&store);
    m->dns = options->dns;
    m->verbose = options->verbose;
    if (listener != NULL)
        m->listener = *listener;
    m->profiles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)shimmer_profile_unref);
    m->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)shimmer_session_unref);
    m->active = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    m->lingers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    m->servers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)shimmer_managed_server_unref);
    m->active_servers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    m->server_lingers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    m->fds_per_session = shimmer_tunnel_max_descriptors();
    m->max_sessions = sessions_fds_allow(m->fds_per_session);
    m->cancel = g_cancellable_new();
    g_message("at most %u sessions of users at once (descriptor limit; %u descriptors a session)",
              m->max_sessions, m->fds_per_session);
    return m;
}

static void remove_linger(gpointer key, gpointer value, gpointer user)
{
    g_source_remove(GPOINTER_TO_UINT(value));
}

void shimmer_manager_free(ShimmerManager *m)
{
    if (m == NULL)
        return;
    g_cancellable_cancel(m->cancel);
    g_object_unref(m->cancel);
    if (m->grace_timer)
        g_source_remove(m->grace_timer);
    if (m->stopped_idle)
        g_source_remove(m->stopped_idle);
    /* No listener calls from here on: the front end is going too. */
    memset(&m->listener, 0, sizeof(m->listener));
    /* Nor a "stopped" report scheduled by what ends below. */
    m->stopped_reported = TRUE;
    /* Sessions first: their tunnels and DNS go before the DNS helper. */
    for_each_session(m, shimmer_session_abort, "the daemon stopped");
    for_each_server(m, shimmer_managed_server_abort, "the daemon stopped");
    g_hash_table_foreach(m->lingers, remove_linger, NULL);
    g_hash_table_destroy(m->lingers);
    g_hash_table_foreach(m->server_lingers, remove_linger, NULL);
    g_hash_table_destroy(m->server_lingers);
    g_hash_table_destroy(m->active_servers);
    g_hash_table_destroy(m->servers);
    g_hash_table_destroy(m->active);
    g_hash_table_destroy(m->sessions);
    g_hash_table_destroy(m->profiles);
    shimmer_store_free(m->store);
    g_free(m);
}
