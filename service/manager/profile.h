/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * One imported profile: the inline .ovpn text it was imported from
 * (secrets included: wiped when freed) and what the front ends show of it,
 * worked out once from the text. The parsed configuration is not kept (a
 * session parses its own copy; GetConfiguration parses again), so an idle
 * profile costs little more than its text.
 *
 * Everything shown is bounded (SHIMMER_PROFILE_MAX_SHOWN_* below), so that
 * no profile can make a reply that lists every object too big to send.
 */

#define SHIMMER_PROFILE_MAX_NAME 128 /* characters */
/* What Warnings and Remotes show at most; the last line then says how many
 * more there are. */
#define SHIMMER_PROFILE_MAX_SHOWN_LINES 32
#define SHIMMER_PROFILE_MAX_SHOWN_BYTES 256 /* a line, cut at a character */

typedef struct ShimmerProfile ShimmerProfile;

/* Checks a display name: 1 to 128 characters of UTF-8, no control
 * characters, no bidirectional-text controls (which can make a name read
 * as another). SHIMMER_SERVICE_ERROR_INVALID_ARGS naming FIELD otherwise. */
gboolean shimmer_profile_validate_name(const char *name, const char *field, GError **error);

/* Parses TEXT the way an import does: inline only (a file reference is an
 * error: the daemon never opens a file a user names), client role only.
 * FILENAME names the text in diagnostics. Returns the configuration (also
 * when it is not usable) and sets *DIAGNOSTICS to the "FILE:LINE: ..."
 * lines; *USABLE tells whether it can be imported. OWNER is the uid that
 * will own it: directives whose effect reaches beyond the owner's own
 * tunnel (a firewall mark on the root daemon's socket, ...) are refused
 * unless OWNER is 0. */
ShimmerConfig *shimmer_profile_parse(const char *filename, const char *text, gsize len, guint owner,
                                     gboolean *usable, char **diagnostics);
/* As shimmer_profile_parse(), but with ALLOW_SERVER a server
 * configuration is usable too (only for callers authorized to run
 * servers, and for the stored profiles they imported). */
ShimmerConfig *shimmer_profile_parse_role(const char *filename, const char *text, gsize len,
                                          guint owner, gboolean allow_server, gboolean *usable,
                                          char **diagnostics);
/* Whether TEXT parses as a server configuration (usable or not). */
gboolean shimmer_profile_text_is_server(const char *text, gsize len);

/* A new profile from TEXT (copied); SHIMMER_SERVICE_ERROR_INVALID_CONFIG
 * with the diagnostics if it is not usable, INVALID_ARGS if NAME is not a
 * valid name. ID: 32 hex digits (the store's). */
ShimmerProfile *shimmer_profile_new(const char *id, const char *name, guint owner, guint64 created,
                                    gboolean persistent, const char *text, gsize len,
                                    GError **error);
/* The same; with ALLOW_SERVER a server configuration is taken too (see
 * shimmer_profile_parse_role()). */
ShimmerProfile *shimmer_profile_new_role(const char *id, const char *name, guint owner,
                                         guint64 created, gboolean persistent, const char *text,
                                         gsize len, gboolean allow_server, GError **error);
ShimmerProfile *shimmer_profile_ref(ShimmerProfile *p);
void shimmer_profile_unref(ShimmerProfile *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerProfile, shimmer_profile_unref)

const char *shimmer_profile_get_id(ShimmerProfile *p);
const char *shimmer_profile_get_name(ShimmerProfile *p);
guint shimmer_profile_get_owner(ShimmerProfile *p);
guint64 shimmer_profile_get_created(ShimmerProfile *p);
gboolean shimmer_profile_is_persistent(ShimmerProfile *p);
/* The .ovpn text (a secret: do not log or export it). */
const char *shimmer_profile_get_text(ShimmerProfile *p, gsize *len);

/* What is shown of it (NULL-terminated, bounded; owned by the profile). */
const char *const *shimmer_profile_get_remotes(ShimmerProfile *p);
const char *const *shimmer_profile_get_warnings(ShimmerProfile *p);
/* A server configuration (Profile1.StartServer), not a client's. */
gboolean shimmer_profile_is_server(ShimmerProfile *p);
/* "none", "tls-auth", "tls-crypt", "tls-crypt-v2". */
const char *shimmer_profile_get_wrap(ShimmerProfile *p);
/* "none", "stored" or "prompt". */
const char *shimmer_profile_get_credentials(ShimmerProfile *p);
/* The static-challenge text ("" if none) and whether its answer echoes. */
const char *shimmer_profile_get_static_challenge(ShimmerProfile *p, gboolean *echo);

/* Seconds since the epoch of the last connect; 0: never. */
guint64 shimmer_profile_get_last_used(ShimmerProfile *p);
void shimmer_profile_set_last_used(ShimmerProfile *p, guint64 when);
/* For the manager (which stores the change first). */
void shimmer_profile_set_name(ShimmerProfile *p, const char *name);

/* The configuration as JSON, every secret redacted. */
char *shimmer_profile_dup_json(ShimmerProfile *p);

/* The profile was removed: its front-end object may still be reached for a
 * moment. */
gboolean shimmer_profile_is_removed(ShimmerProfile *p);
void shimmer_profile_mark_removed(ShimmerProfile *p);

G_END_DECLS
