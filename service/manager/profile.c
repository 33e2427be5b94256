/* SPDX-License-Identifier: MIT */
/*
 * Profiles: the model behind org.shimmervpn.Profile1. See profile.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "profile.h"

#include <string.h>

#include "errors.h"
#include "secure.h"
#include "textsafe.h"

struct ShimmerProfile {
    gint ref;
    char *id;
    char *name;
    guint owner;
    guint64 created;
    guint64 last_used;
    gboolean persistent;
    gboolean removed;
    gboolean server; /* a server configuration */
    char *text;      /* secret */
    gsize len;
    /* Shown; worked out once from the text. */
    GStrv remotes;
    GStrv warnings;
    const char *wrap;
    const char *credentials;
    char *static_challenge;
    gboolean static_challenge_echo;
};

/* ---------- checks and parsing ---------- */

gboolean shimmer_profile_validate_name(const char *name, const char *field, GError **error)
{
    gsize bytes = strlen(name);
    if (bytes == 0) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "%s: must not be empty", field);
        return FALSE;
    }
    if (!g_utf8_validate(name, (gssize)bytes, NULL)) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "%s: not valid UTF-8", field);
        return FALSE;
    }
    if (bytes > SHIMMER_PROFILE_MAX_NAME * 4 ||
        g_utf8_strlen(name, (gssize)bytes) > SHIMMER_PROFILE_MAX_NAME) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                    "%s: longer than %u characters", field, SHIMMER_PROFILE_MAX_NAME);
        return FALSE;
    }
    for (const char *c = name; *c; c = g_utf8_next_char(c)) {
        gunichar u = g_utf8_get_char(c);
        if (g_unichar_iscntrl(u)) {
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "%s: control characters (line breaks, tabs, escapes, ...) are not allowed",
                        field);
            return FALSE;
        }
        if (shimmer_text_is_bidi_control(u)) {
            g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_ARGS,
                        "%s: bidirectional-text controls (U+%04X) are not allowed", field, u);
            return FALSE;
        }
    }
    return TRUE;
}

/* Directives a profile owned by someone other than root may not use: their
 * effect reaches beyond the owner's own tunnel, into the root daemon's
 * sockets. */
static void check_owner_may_use(const ShimmerConfig *cfg, guint owner, const char *filename,
                                GString *out, gboolean *ok)
{
    if (owner == 0)
        return;
    if (cfg->mark >= 0) {
        g_string_append_printf(out,
                               "%s: error: 'mark' gives the daemon's socket a firewall mark that "
                               "policy routing and firewall rules act on; only profiles owned by "
                               "root may set it\n",
                               filename);
        *ok = FALSE;
    }
}

ShimmerConfig *shimmer_profile_parse(const char *filename, const char *text, gsize len, guint owner,
                                     gboolean *usable, char **diagnostics)
{
    return shimmer_profile_parse_role(filename, text, len, owner, FALSE, usable, diagnostics);
}

gboolean shimmer_profile_text_is_server(const char *text, gsize len)
{
    g_autoptr(ShimmerConfig) cfg = shimmer_config_parse("config", "/", text, len, NULL, NULL);
    return cfg->role == SHIMMER_ROLE_SERVER;
}

ShimmerConfig *shimmer_profile_parse_role(const char *filename, const char *text, gsize len,
                                          guint owner, gboolean allow_server, gboolean *usable,
                                          char **diagnostics)
{
    /* No loader: a profile that came over D-Bus must be self-contained,
     * and the daemon never opens a file a user names. */
    ShimmerConfig *cfg = shimmer_config_parse(filename, "/", text, len, NULL, NULL);
    GString *out = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, out);
    gboolean ok = !shimmer_config_has_errors(cfg);
    if (ok && cfg->role != SHIMMER_ROLE_CLIENT &&
        !(allow_server && cfg->role == SHIMMER_ROLE_SERVER)) {
        g_string_append_printf(out,
                               cfg->role == SHIMMER_ROLE_SERVER
                                   ? "%s: error: this is a server configuration; only client "
                                     "profiles can be imported\n"
                                   : "%s: error: not a client profile (it needs 'client', or "
                                     "'tls-client' with 'pull')\n",
                               filename);
        ok = FALSE;
    }
    if (ok)
        check_owner_may_use(cfg, owner, filename, out, &ok);
    *usable = ok;
    *diagnostics = g_string_free(out, FALSE);
    return cfg;
}

/* ---------- what is shown ---------- */

/* Adds LINE to B, cut to SHIMMER_PROFILE_MAX_SHOWN_BYTES at a character
 * boundary, unless B is full; counts what did not fit in *MORE. */
static void add_shown(GStrvBuilder *b, guint *n, guint *more, const char *line)
{
    if (*n >= SHIMMER_PROFILE_MAX_SHOWN_LINES - 1) {
        (*more)++;
        return;
    }
    gsize len = strlen(line);
    if (len > SHIMMER_PROFILE_MAX_SHOWN_BYTES) {
        const char *end = g_utf8_find_prev_char(line, line + SHIMMER_PROFILE_MAX_SHOWN_BYTES - 3);
        g_autofree char *cut = g_strndup(line, end ? (gsize)(end - line) : 0);
        g_autofree char *shown = g_strconcat(cut, "...", NULL);
        g_strv_builder_add(b, shown);
    } else {
        g_strv_builder_add(b, line);
    }
    (*n)++;
}

static GStrv end_shown(GStrvBuilder *b, guint more, const char *what)
{
    if (more > 0) {
        g_autofree char *tail = g_strdup_printf("(%u more %s not shown)", more, what);
        g_strv_builder_add(b, tail);
    }
    return g_strv_builder_end(b);
}

static GStrv remotes_of(const ShimmerConfig *cfg)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    guint n = 0, more = 0;
    for (guint i = 0; i < cfg->connections->len; i++) {
        ShimmerConnection *c = g_ptr_array_index(cfg->connections, i);
        if (c->host == NULL)
            continue; /* a server's: it listens */
        const char *proto = c->transport == SHIMMER_TRANSPORT_TCP ? "tcp" : "udp";
        g_autofree char *r = strchr(c->host, ':') != NULL
                                 ? g_strdup_printf("[%s]:%u/%s", c->host, c->port, proto)
                                 : g_strdup_printf("%s:%u/%s", c->host, c->port, proto);
        add_shown(b, &n, &more, r);
    }
    return end_shown(b, more, "remotes");
}

/* The parser's warnings, one "NAME:LINE: warning: ..." line each. */
static GStrv warnings_of(const ShimmerConfig *cfg)
{
    g_autoptr(GString) all = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, all);
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    guint n = 0, more = 0;
    g_auto(GStrv) lines = g_strsplit(all->str, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++)
        if (lines[i][0] != '\0')
            add_shown(b, &n, &more, lines[i]);
    return end_shown(b, more, "warnings");
}

static const char *wrap_of(const ShimmerConfig *cfg)
{
    static const char *const names[] = {"none", "tls-auth", "tls-crypt", "tls-crypt-v2"};
    return (guint)cfg->wrap < G_N_ELEMENTS(names) ? names[cfg->wrap] : "none";
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

/* ---------- life cycle ---------- */

ShimmerProfile *shimmer_profile_new(const char *id, const char *name, guint owner, guint64 created,
                                    gboolean persistent, const char *text, gsize len,
                                    GError **error)
{
    return shimmer_profile_new_role(id, name, owner, created, persistent, text, len, FALSE, error);
}

ShimmerProfile *shimmer_profile_new_role(const char *id, const char *name, guint owner,
                                         guint64 created, gboolean persistent, const char *text,
                                         gsize len, gboolean allow_server, GError **error)
{
    if (!shimmer_profile_validate_name(name, "name", error))
        return NULL;
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    g_autoptr(ShimmerConfig) cfg =
        shimmer_profile_parse_role(name, text, len, owner, allow_server, &usable, &diagnostics);
    if (!usable) {
        g_set_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_INVALID_CONFIG,
                    "the profile cannot be used:\n%s", diagnostics);
        return NULL;
    }
    ShimmerProfile *p = g_new0(ShimmerProfile, 1);
    p->ref = 1;
    p->id = g_strdup(id);
    p->name = g_strdup(name);
    p->owner = owner;
    p->created = created;
    p->persistent = persistent;
    p->server = cfg->role == SHIMMER_ROLE_SERVER;
    p->text = shimmer_memdup0(text, len);
    p->len = len;
    p->remotes = remotes_of(cfg);
    p->warnings = warnings_of(cfg);
    p->wrap = wrap_of(cfg);
    p->credentials = credentials_of(cfg);
    p->static_challenge = g_strdup(cfg->static_challenge ? cfg->static_challenge : "");
    p->static_challenge_echo = cfg->static_challenge_echo;
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
    shimmer_free_secret(p->text, p->len + 1);
    g_strfreev(p->remotes);
    g_strfreev(p->warnings);
    g_free(p->static_challenge);
    g_free(p->name);
    g_free(p->id);
    g_free(p);
}

/* ---------- accessors ---------- */

const char *shimmer_profile_get_id(ShimmerProfile *p)
{
    return p->id;
}

const char *shimmer_profile_get_name(ShimmerProfile *p)
{
    return p->name;
}

guint shimmer_profile_get_owner(ShimmerProfile *p)
{
    return p->owner;
}

guint64 shimmer_profile_get_created(ShimmerProfile *p)
{
    return p->created;
}

gboolean shimmer_profile_is_persistent(ShimmerProfile *p)
{
    return p->persistent;
}

const char *shimmer_profile_get_text(ShimmerProfile *p, gsize *len)
{
    if (len != NULL)
        *len = p->len;
    return p->text;
}

const char *const *shimmer_profile_get_remotes(ShimmerProfile *p)
{
    return (const char *const *)p->remotes;
}

const char *const *shimmer_profile_get_warnings(ShimmerProfile *p)
{
    return (const char *const *)p->warnings;
}

gboolean shimmer_profile_is_server(ShimmerProfile *p)
{
    return p->server;
}

const char *shimmer_profile_get_wrap(ShimmerProfile *p)
{
    return p->wrap;
}

const char *shimmer_profile_get_credentials(ShimmerProfile *p)
{
    return p->credentials;
}

const char *shimmer_profile_get_static_challenge(ShimmerProfile *p, gboolean *echo)
{
    if (echo != NULL)
        *echo = p->static_challenge_echo;
    return p->static_challenge;
}

guint64 shimmer_profile_get_last_used(ShimmerProfile *p)
{
    return p->last_used;
}

void shimmer_profile_set_last_used(ShimmerProfile *p, guint64 when)
{
    p->last_used = when;
}

void shimmer_profile_set_name(ShimmerProfile *p, const char *name)
{
    g_free(p->name);
    p->name = g_strdup(name);
}

char *shimmer_profile_dup_json(ShimmerProfile *p)
{
    gboolean usable = FALSE;
    g_autofree char *diagnostics = NULL;
    g_autoptr(ShimmerConfig) cfg = shimmer_profile_parse_role(p->name, p->text, p->len, p->owner,
                                                              p->server, &usable, &diagnostics);
    /* shimmer_config_to_json() redacts every secret. */
    return shimmer_config_to_json(cfg);
}

gboolean shimmer_profile_is_removed(ShimmerProfile *p)
{
    return p->removed;
}

void shimmer_profile_mark_removed(ShimmerProfile *p)
{
    p->removed = TRUE;
}
