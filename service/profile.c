/* SPDX-License-Identifier: MIT */
/*
 * Profiles: org.shimmervpn.Profile1 objects and their stored files. See
 * profile.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "profile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secure.h"
#include "session.h"

#define FILE_MAGIC "shimmer-profile 1"
/* The header is a few short lines; a name escapes to at most 4 bytes a byte. */
#define MAX_HEADER 4096

struct ShimmerProfile {
    gint ref;
    ShimmerDaemon *d;
    char *id;
    char *path;
    char *name;
    guint owner;
    guint64 created;
    gboolean persistent;
    char *text; /* secret */
    gsize len;
    ShimmerConfig *cfg;
    ShimmerDBusObjectSkeleton *object;
    ShimmerDBusProfile1 *iface;
    ShimmerSession *session; /* not a reference: the session clears it */
    gboolean removed;
    /* Bound to a bus name (ImportProfile's "bound-to-caller"): removed
     * when it leaves the bus. */
    guint caller_watch;
};

/* ---------- checks and parsing ---------- */

gboolean shimmer_profile_validate_name(const char *name, const char *field, GError **error)
{
    gsize bytes = strlen(name);
    if (bytes == 0) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                    "%s: must not be empty", field);
        return FALSE;
    }
    /* Checked in bytes first so that a huge string is not walked twice. */
    if (bytes > SHIMMER_PROFILE_MAX_NAME * 4 || !g_utf8_validate(name, (gssize)bytes, NULL) ||
        g_utf8_strlen(name, (gssize)bytes) > SHIMMER_PROFILE_MAX_NAME) {
        if (!g_utf8_validate(name, (gssize)bytes, NULL))
            g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                        "%s: not valid UTF-8", field);
        else
            g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                        "%s: longer than %u characters", field, SHIMMER_PROFILE_MAX_NAME);
        return FALSE;
    }
    for (const char *c = name; *c; c = g_utf8_next_char(c)) {
        if (g_unichar_iscntrl(g_utf8_get_char(c))) {
            g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                        "%s: control characters (line breaks, tabs, ...) are not allowed", field);
            return FALSE;
        }
    }
    return TRUE;
}

ShimmerConfig *shimmer_profile_parse(const char *filename, const char *text, gsize len,
                                     gboolean *usable, char **diagnostics)
{
    /* No loader: a profile that came over D-Bus must be self-contained,
     * and the daemon never opens a file a user names. */
    ShimmerConfig *cfg = shimmer_config_parse(filename, "/", text, len, NULL, NULL);
    GString *out = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, out);
    gboolean ok = !shimmer_config_has_errors(cfg);
    if (ok && cfg->role != SHIMMER_ROLE_CLIENT) {
        g_string_append_printf(out,
                               cfg->role == SHIMMER_ROLE_SERVER
                                   ? "%s: error: this is a server configuration; only client "
                                     "profiles can be imported\n"
                                   : "%s: error: not a client profile (it needs 'client', or "
                                     "'tls-client' with 'pull')\n",
                               filename);
        ok = FALSE;
    }
    *usable = ok;
    *diagnostics = g_string_free(out, FALSE);
    return cfg;
}

/* ---------- properties ---------- */

static char **remotes_of(const ShimmerConfig *cfg)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    for (guint i = 0; i < cfg->connections->len; i++) {
        ShimmerConnection *c = g_ptr_array_index(cfg->connections, i);
        const char *proto = c->transport == SHIMMER_TRANSPORT_TCP ? "tcp" : "udp";
        g_autofree char *r = strchr(c->host, ':') != NULL
                                 ? g_strdup_printf("[%s]:%u/%s", c->host, c->port, proto)
                                 : g_strdup_printf("%s:%u/%s", c->host, c->port, proto);
        g_strv_builder_add(b, r);
    }
    return g_strv_builder_end(b);
}

static const char *wrap_of(const ShimmerConfig *cfg)
{
    static const char *const names[] = {"none", "tls-auth", "tls-crypt", "tls-crypt-v2"};
    return (guint)cfg->wrap < G_N_ELEMENTS(names) ? names[cfg->wrap] : "none";
}

/* The parser's warnings, one "NAME:LINE: warning: ..." line each. */
static char **warnings_of(const ShimmerConfig *cfg)
{
    g_autoptr(GString) all = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, all);
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    g_auto(GStrv) lines = g_strsplit(all->str, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        if (lines[i][0] != '\0')
            g_strv_builder_add(b, lines[i]);
    }
    return g_strv_builder_end(b);
}

static const char *credentials_of(const ShimmerConfig *cfg)
{
    switch (cfg->auth_user_pass) {
    case SHIMMER_AUTH_USER_PASS_PROMPT:
        return "prompt";
    case SHIMMER_AUTH_USER_PASS_STORED:
        /* A stored user name alone still needs a password at connect. */
        return cfg->password != NULL ? "stored" : "prompt";
    case SHIMMER_AUTH_USER_PASS_NONE:
    default:
        return "none";
    }
}

/* ---------- Profile1 methods ---------- */

typedef struct {
    ShimmerProfile *p;
    gboolean bound;
    gboolean configure_network;
    char *username;
    char *password;       /* secret */
    char *key_passphrase; /* secret */
    char *new_name;
} ProfileCall;

static void profile_call_free(gpointer data)
{
    ProfileCall *c = data;
    shimmer_profile_unref(c->p);
    g_free(c->username);
    shimmer_str_free_secret(c->password);
    shimmer_str_free_secret(c->key_passphrase);
    g_free(c->new_name);
    g_free(c);
}

static ProfileCall *profile_call_new(ShimmerProfile *p)
{
    ProfileCall *c = g_new0(ProfileCall, 1);
    c->p = shimmer_profile_ref(p);
    c->configure_network = TRUE;
    return c;
}

/* Methods on a profile that was removed meanwhile (the object may still be
 * reached while the removal's reply is on its way). */
static gboolean check_present(ShimmerProfile *p, GDBusMethodInvocation *invocation)
{
    if (!p->removed)
        return TRUE;
    shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_NOT_FOUND,
                              "the profile \"%s\" was removed", p->name);
    return FALSE;
}

static void connect_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                               guint caller_uid, gpointer data)
{
    ProfileCall *c = data;
    ShimmerProfile *p = c->p;
    if (!check_present(p, invocation))
        return;
    if (shimmer_daemon_is_stopping(d)) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_FAILED, "the daemon is stopping");
        return;
    }
    if (p->session != NULL && !shimmer_session_is_finished(p->session)) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_BUSY,
                                  "the profile \"%s\" is in use by the session %s", p->name,
                                  shimmer_session_get_path(p->session));
        return;
    }
    ShimmerSessionOptions opts = {
        .bound_to_caller = c->bound,
        .caller = g_dbus_method_invocation_get_sender(invocation),
        .no_netcfg = !c->configure_network,
        .username = c->username,
        .password = c->password,
        .key_passphrase = c->key_passphrase,
    };
    g_autoptr(GError) error = NULL;
    g_autoptr(ShimmerSession) s = shimmer_session_new(d, p, caller_uid, &opts, &error);
    if (s == NULL) {
        shimmer_daemon_return_error(invocation, error);
        return;
    }
    shimmer_daemon_add_session(d, s);
    shimmer_profile_set_session(p, s);
    g_message("session %s of profile %s \"%s\" started by uid %u%s%s", shimmer_session_get_id(s),
              p->id, p->name, caller_uid, c->bound ? " (bound to the caller)" : "",
              c->configure_network ? "" : " (the caller configures the network)");
    shimmer_dbus_profile1_complete_connect(p->iface, invocation, shimmer_session_get_path(s));
    shimmer_session_start(s);
}

static gboolean take_bool_option(GVariant *v, const char *key, gboolean *out, GError **error)
{
    if (!g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN)) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                    "options: \"%s\" must be a boolean (b), not %s", key,
                    g_variant_get_type_string(v));
        return FALSE;
    }
    *out = g_variant_get_boolean(v);
    return TRUE;
}

/* A string option holding a secret or a name: type and size checked. */
static gboolean take_string_option(GVariant *v, const char *key, char **out, GError **error)
{
    if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                    "options: \"%s\" must be a string (s), not %s", key,
                    g_variant_get_type_string(v));
        return FALSE;
    }
    gsize len;
    const char *s = g_variant_get_string(v, &len);
    if (len > SHIMMER_SESSION_MAX_SECRET) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                    "options: \"%s\" is longer than %u bytes", key, SHIMMER_SESSION_MAX_SECRET);
        return FALSE;
    }
    if (*out != NULL)
        shimmer_str_free_secret(*out);
    *out = g_strdup(s);
    return TRUE;
}

static gboolean handle_connect(ShimmerDBusProfile1 *iface, GDBusMethodInvocation *invocation,
                               GVariant *options, gpointer user)
{
    ShimmerProfile *p = user;
    ProfileCall *c = profile_call_new(p);
    g_autoptr(GError) error = NULL;
    GVariantIter it;
    const char *key;
    GVariant *value;
    g_variant_iter_init(&it, options);
    while (error == NULL && g_variant_iter_next(&it, "{&sv}", &key, &value)) {
        g_autoptr(GVariant) v = value;
        if (strcmp(key, "bound-to-caller") == 0) {
            take_bool_option(v, key, &c->bound, &error);
        } else if (strcmp(key, "configure-network") == 0) {
            take_bool_option(v, key, &c->configure_network, &error);
        } else if (strcmp(key, "username") == 0) {
            take_string_option(v, key, &c->username, &error);
        } else if (strcmp(key, "password") == 0) {
            take_string_option(v, key, &c->password, &error);
        } else if (strcmp(key, "key-passphrase") == 0) {
            take_string_option(v, key, &c->key_passphrase, &error);
        } else {
            g_autofree char *shown = g_strescape(key, NULL);
            g_set_error(&error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_ARGS,
                        "options: unknown option \"%.64s\" (known: bound-to-caller, "
                        "configure-network, username, password, key-passphrase)",
                        shown);
        }
    }
    if (error != NULL) {
        profile_call_free(c);
        shimmer_daemon_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    shimmer_daemon_authorize(p->d, invocation, SHIMMER_AUTH_PROFILE, p->owner, connect_authorized,
                             c, profile_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void unwatch_caller(ShimmerProfile *p)
{
    if (p->caller_watch) {
        g_bus_unwatch_name(p->caller_watch);
        p->caller_watch = 0;
    }
}

/* Profile1.Remove, and a bound profile's caller leaving: the stored file
 * goes first (a failure keeps everything as it was), a running session is
 * disconnected, the object is unexported. INVOCATION, if any, is
 * completed before the object goes. WHO says why, for the log. */
static gboolean remove_profile(ShimmerProfile *p, GDBusMethodInvocation *invocation,
                               const char *who, GError **error)
{
    if (!shimmer_profile_delete_file(p, error))
        return FALSE;
    /* The daemon's table drops its reference below. */
    shimmer_profile_ref(p);
    unwatch_caller(p);
    if (p->session != NULL)
        shimmer_session_stop(p->session, "the profile was removed");
    g_message("profile %s \"%s\" removed %s", p->id, p->name, who);
    shimmer_profile_mark_removed(p);
    if (invocation != NULL)
        shimmer_dbus_profile1_complete_remove(p->iface, invocation);
    shimmer_daemon_remove_profile(p->d, p);
    shimmer_profile_unref(p);
    return TRUE;
}

static void remove_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation, guint caller_uid,
                              gpointer data)
{
    ProfileCall *c = data;
    ShimmerProfile *p = c->p;
    if (!check_present(p, invocation))
        return;
    g_autoptr(GError) error = NULL;
    g_autofree char *who = g_strdup_printf("by uid %u", caller_uid);
    if (!remove_profile(p, invocation, who, &error))
        shimmer_daemon_return_error(invocation, error);
}

static gboolean handle_remove(ShimmerDBusProfile1 *iface, GDBusMethodInvocation *invocation,
                              gpointer user)
{
    ShimmerProfile *p = user;
    shimmer_daemon_authorize(p->d, invocation, SHIMMER_AUTH_PROFILE, p->owner, remove_authorized,
                             profile_call_new(p), profile_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void rename_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation, guint caller_uid,
                              gpointer data)
{
    ProfileCall *c = data;
    ShimmerProfile *p = c->p;
    if (!check_present(p, invocation))
        return;
    if (strcmp(p->name, c->new_name) == 0) {
        shimmer_dbus_profile1_complete_rename(p->iface, invocation);
        return;
    }
    if (shimmer_daemon_find_profile(d, p->owner, c->new_name) != NULL) {
        shimmer_daemon_return_new(invocation, SHIMMER_DBUS_ERROR_EXISTS,
                                  "uid %u already has a profile named \"%s\"", p->owner,
                                  c->new_name);
        return;
    }
    char *old = p->name;
    p->name = g_strdup(c->new_name);
    g_autoptr(GError) error = NULL;
    if (!shimmer_profile_save(p, &error)) {
        g_free(p->name);
        p->name = old;
        shimmer_daemon_return_error(invocation, error);
        return;
    }
    g_message("profile %s renamed from \"%s\" to \"%s\" by uid %u", p->id, old, p->name,
              caller_uid);
    g_free(old);
    shimmer_dbus_profile1_set_name(p->iface, p->name);
    shimmer_dbus_profile1_complete_rename(p->iface, invocation);
}

static gboolean handle_rename(ShimmerDBusProfile1 *iface, GDBusMethodInvocation *invocation,
                              const char *name, gpointer user)
{
    ShimmerProfile *p = user;
    g_autoptr(GError) error = NULL;
    if (!shimmer_profile_validate_name(name, "name", &error)) {
        shimmer_daemon_return_error(invocation, error);
        return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
    ProfileCall *c = profile_call_new(p);
    c->new_name = g_strdup(name);
    shimmer_daemon_authorize(p->d, invocation, SHIMMER_AUTH_PROFILE, p->owner, rename_authorized, c,
                             profile_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void get_configuration_authorized(ShimmerDaemon *d, GDBusMethodInvocation *invocation,
                                         guint caller_uid, gpointer data)
{
    ProfileCall *c = data;
    if (!check_present(c->p, invocation))
        return;
    /* shimmer_config_to_json() redacts every secret. */
    g_autofree char *json = shimmer_config_to_json(c->p->cfg);
    shimmer_dbus_profile1_complete_get_configuration(c->p->iface, invocation, json);
}

static gboolean handle_get_configuration(ShimmerDBusProfile1 *iface,
                                         GDBusMethodInvocation *invocation, gpointer user)
{
    ShimmerProfile *p = user;
    shimmer_daemon_authorize(p->d, invocation, SHIMMER_AUTH_PROFILE, p->owner,
                             get_configuration_authorized, profile_call_new(p), profile_call_free);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------- life cycle ---------- */

static gboolean is_profile_id(const char *id)
{
    if (strlen(id) != 32)
        return FALSE;
    for (const char *c = id; *c; c++)
        if (!g_ascii_isxdigit(*c) || g_ascii_isupper(*c))
            return FALSE;
    return TRUE;
}

static char *new_profile_id(void)
{
    g_autofree char *uuid = g_uuid_string_random();
    GString *id = g_string_new(NULL);
    for (const char *c = uuid; *c; c++)
        if (*c != '-')
            g_string_append_c(id, *c);
    return g_string_free(id, FALSE);
}

ShimmerProfile *shimmer_profile_new(ShimmerDaemon *d, const char *id, const char *name, guint owner,
                                    guint64 created, gboolean persistent, const char *text,
                                    gsize len, GError **error)
{
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    g_autoptr(ShimmerConfig) cfg = shimmer_profile_parse(name, text, len, &usable, &diagnostics);
    if (!usable) {
        g_set_error(error, SHIMMER_DBUS_ERROR, SHIMMER_DBUS_ERROR_INVALID_CONFIG,
                    "the profile cannot be used:\n%s", diagnostics);
        return NULL;
    }
    ShimmerProfile *p = g_new0(ShimmerProfile, 1);
    p->ref = 1;
    p->d = d;
    p->id = id ? g_strdup(id) : new_profile_id();
    p->path = g_strdup_printf("%s/%s", SHIMMER_DAEMON_PROFILE_PATH, p->id);
    p->name = g_strdup(name);
    p->owner = owner;
    p->created = created;
    p->persistent = persistent;
    p->text = shimmer_memdup0(text, len);
    p->len = len;
    p->cfg = g_steal_pointer(&cfg);

    p->object = shimmer_dbus_object_skeleton_new(p->path);
    p->iface = shimmer_dbus_profile1_skeleton_new();
    g_auto(GStrv) remotes = remotes_of(p->cfg);
    g_auto(GStrv) warnings = warnings_of(p->cfg);
    g_object_set(p->iface, "wrap", wrap_of(p->cfg), "warnings", warnings, "last-used",
                 (guint64)0, NULL);
    g_object_set(p->iface, "id", p->id, "name", p->name, "owner", p->owner, "persistent",
                 p->persistent, "created", p->created, "remotes", remotes, "credentials",
                 credentials_of(p->cfg), "static-challenge",
                 p->cfg->static_challenge ? p->cfg->static_challenge : "", "active-session", "/",
                 NULL);
    g_signal_connect(p->iface, "handle-connect", G_CALLBACK(handle_connect), p);
    g_signal_connect(p->iface, "handle-remove", G_CALLBACK(handle_remove), p);
    g_signal_connect(p->iface, "handle-rename", G_CALLBACK(handle_rename), p);
    g_signal_connect(p->iface, "handle-get-configuration", G_CALLBACK(handle_get_configuration), p);
    shimmer_dbus_object_skeleton_set_profile1(p->object, p->iface);
    return p;
}

ShimmerProfile *shimmer_profile_ref(ShimmerProfile *p)
{
    p->ref++;
    return p;
}

void shimmer_profile_unref(ShimmerProfile *p)
{
    if (p == NULL || --p->ref > 0)
        return;
    unwatch_caller(p);
    g_signal_handlers_disconnect_by_data(p->iface, p);
    g_object_unref(p->iface);
    g_object_unref(p->object);
    shimmer_config_free(p->cfg);
    shimmer_free_secret(p->text, p->len);
    g_free(p->name);
    g_free(p->path);
    g_free(p->id);
    g_free(p);
}

const char *shimmer_profile_get_id(ShimmerProfile *p)
{
    return p->id;
}

const char *shimmer_profile_get_path(ShimmerProfile *p)
{
    return p->path;
}

const char *shimmer_profile_get_name(ShimmerProfile *p)
{
    return p->name;
}

guint shimmer_profile_get_owner(ShimmerProfile *p)
{
    return p->owner;
}

const char *shimmer_profile_get_text(ShimmerProfile *p, gsize *len)
{
    if (len != NULL)
        *len = p->len;
    return p->text;
}

GDBusObjectSkeleton *shimmer_profile_get_object(ShimmerProfile *p)
{
    return G_DBUS_OBJECT_SKELETON(p->object);
}

ShimmerSession *shimmer_profile_get_session(ShimmerProfile *p)
{
    return p->session;
}

void shimmer_profile_set_session(ShimmerProfile *p, ShimmerSession *session)
{
    p->session = session;
    if (session != NULL)
        shimmer_dbus_profile1_set_last_used(p->iface, (guint64)(g_get_real_time() / G_USEC_PER_SEC));
    shimmer_dbus_profile1_set_active_session(p->iface,
                                             session ? shimmer_session_get_path(session) : "/");
}

void shimmer_profile_mark_removed(ShimmerProfile *p)
{
    p->removed = TRUE;
}

static void on_caller_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerProfile *p = user;
    if (p->removed)
        return;
    g_autofree char *who = g_strdup_printf("(the client that imported it, %s, left the bus)", name);
    g_autoptr(GError) error = NULL;
    /* Not persistent, so there is no file that could fail to go. */
    if (!remove_profile(p, NULL, who, &error))
        g_warning("profile %s: %s", p->id, error->message);
}

void shimmer_profile_bind_to_caller(ShimmerProfile *p, const char *caller)
{
    g_return_if_fail(!p->persistent && p->caller_watch == 0);
    /* If the name is gone already, the watch says so at once (from the
     * main loop) and the profile goes. */
    p->caller_watch = g_bus_watch_name_on_connection(shimmer_daemon_get_bus(p->d), caller,
                                                     G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                                     on_caller_vanished, p, NULL);
}

/* ---------- the stored file ---------- */

static char *file_path(ShimmerProfile *p)
{
    g_autofree char *base = g_strconcat(p->id, ".profile", NULL);
    return g_build_filename(shimmer_daemon_get_state_dir(p->d), base, NULL);
}

static gboolean write_all(int fd, const char *buf, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        buf += n;
        len -= (gsize)n;
    }
    return TRUE;
}

gboolean shimmer_profile_save(ShimmerProfile *p, GError **error)
{
    if (!p->persistent)
        return TRUE;
    const char *dir = shimmer_daemon_get_state_dir(p->d);
    g_autofree char *final = file_path(p);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.profile.XXXXXX", dir, p->id);
    g_autofree char *escaped = g_strescape(p->name, NULL);
    g_autofree char *header =
        g_strdup_printf(FILE_MAGIC "\nid: %s\nname: %s\nowner: %u\n"
                                   "created: %" G_GUINT64_FORMAT "\nsize: %" G_GSIZE_FORMAT "\n\n",
                        p->id, escaped, p->owner, p->created, p->len);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    "cannot store the profile in %s: %s", dir, g_strerror(err));
        return FALSE;
    }
    int err = 0;
    if (!write_all(fd, header, strlen(header)) || !write_all(fd, p->text, p->len) || fsync(fd) < 0)
        err = errno ? errno : EIO;
    if (close(fd) < 0 && err == 0)
        err = errno;
    if (err == 0 && rename(tmp, final) < 0)
        err = errno;
    if (err != 0) {
        unlink(tmp);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    "cannot store the profile as %s: %s", final, g_strerror(err));
        return FALSE;
    }
    /* The rename is durable only once the directory is. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return TRUE;
}

gboolean shimmer_profile_delete_file(ShimmerProfile *p, GError **error)
{
    if (!p->persistent)
        return TRUE;
    g_autofree char *path = file_path(p);
    if (unlink(path) < 0 && errno != ENOENT) {
        int err = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot delete %s: %s", path,
                    g_strerror(err));
        return FALSE;
    }
    return TRUE;
}

static gboolean read_file(const char *path, char **out, gsize *out_len, GError **error)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s: %s", path, g_strerror(err));
        return FALSE;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size > SHIMMER_PROFILE_MAX_TEXT + MAX_HEADER) {
        close(fd);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "%s: not a regular file of at most %u bytes", path,
                    SHIMMER_PROFILE_MAX_TEXT + MAX_HEADER);
        return FALSE;
    }
    gsize size = (gsize)st.st_size;
    char *buf = g_malloc(size + 1);
    gsize got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (gsize)n;
    }
    close(fd);
    buf[got] = '\0';
    if (got != size) {
        shimmer_free_secret(buf, size + 1);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: short read", path);
        return FALSE;
    }
    *out = buf;
    *out_len = got;
    return TRUE;
}

static gboolean parse_u64(const char *s, guint64 max, guint64 *out)
{
    return s != NULL && g_ascii_string_to_unsigned(s, 10, 0, max, out, NULL);
}

ShimmerProfile *shimmer_profile_load(ShimmerDaemon *d, const char *path, GError **error)
{
    char *buf = NULL;
    gsize size = 0;
    if (!read_file(path, &buf, &size, error))
        return NULL;
    /* The header: "key: value" lines up to an empty line. */
    const char *body = strstr(buf, "\n\n");
    g_autoptr(GHashTable) fields = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    gboolean ok =
        body != NULL && (gsize)(body - buf) < MAX_HEADER && g_str_has_prefix(buf, FILE_MAGIC "\n");
    if (ok) {
        g_autofree char *head = g_strndup(buf, (gsize)(body - buf));
        g_auto(GStrv) lines = g_strsplit(head, "\n", -1);
        for (guint i = 1; lines[i] != NULL; i++) {
            char *colon = strstr(lines[i], ": ");
            if (colon == NULL) {
                ok = FALSE;
                break;
            }
            *colon = '\0';
            g_hash_table_replace(fields, g_strdup(lines[i]), g_strdup(colon + 2));
        }
        body += 2;
    }
    const char *id = g_hash_table_lookup(fields, "id");
    const char *ename = g_hash_table_lookup(fields, "name");
    guint64 owner = 0, created = 0, len = 0;
    g_autofree char *name = ename ? g_strcompress(ename) : NULL;
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *expected = id ? g_strconcat(id, ".profile", NULL) : NULL;
    const char *problem = NULL;
    if (!ok)
        problem = "not a Shimmer profile file (bad header)";
    else if (id == NULL || !is_profile_id(id) || strcmp(base, expected) != 0)
        problem = "the id is missing or does not match the file name";
    else if (name == NULL || !shimmer_profile_validate_name(name, "name", NULL))
        problem = "the name is missing or not valid";
    else if (!parse_u64(g_hash_table_lookup(fields, "owner"), G_MAXUINT32 - 1, &owner) ||
             !parse_u64(g_hash_table_lookup(fields, "created"), G_MAXUINT64, &created) ||
             !parse_u64(g_hash_table_lookup(fields, "size"), SHIMMER_PROFILE_MAX_TEXT, &len))
        problem = "owner, created or size is missing or not a number";
    else if ((gsize)(buf + size - body) != len)
        problem = "the profile text is truncated or too long (size does not match)";
    else if (!g_utf8_validate(body, (gssize)len, NULL))
        problem = "the profile text is not valid UTF-8";
    if (problem != NULL) {
        shimmer_free_secret(buf, size + 1);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", path, problem);
        return NULL;
    }
    g_autoptr(GError) perr = NULL;
    ShimmerProfile *p =
        shimmer_profile_new(d, id, name, (guint)owner, created, TRUE, body, (gsize)len, &perr);
    shimmer_free_secret(buf, size + 1);
    if (p == NULL) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", path, perr->message);
        return NULL;
    }
    return p;
}
