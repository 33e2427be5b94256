/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "config.h"
#include "daemon.h"

G_BEGIN_DECLS

/*
 * One imported profile: org.shimmervpn.Profile1 at
 * /org/shimmervpn/profile/<id>, and its stored file.
 *
 * The profile keeps the inline .ovpn text it was imported from (secrets
 * included: it is wiped when freed, and its file is mode 0600) and the
 * parsed configuration for its properties and GetConfiguration. Nothing
 * exported holds key material or passwords.
 *
 * Stored file: STATE_DIR/<id>.profile, written atomically (a temporary file
 * in the same directory, fsync, rename, fsync of the directory). Format: a
 * header of "key: value" lines, an empty line, then the .ovpn text
 * verbatim:
 *
 *   shimmer-profile 1
 *   id: 0123456789abcdef0123456789abcdef
 *   name: Office VPN          (C-escaped, as g_strescape() writes it)
 *   owner: 1000
 *   created: 1700000000
 *   size: 4711                (bytes of text after the empty line)
 *
 *   client
 *   ...
 */

#define SHIMMER_PROFILE_MAX_NAME 128           /* characters */
#define SHIMMER_PROFILE_MAX_TEXT (1024 * 1024) /* bytes */
/* How many profiles one uid other than root may have. */
#define SHIMMER_PROFILE_MAX_PER_OWNER 256

/* Checks a display name: 1 to 128 characters of UTF-8, no control
 * characters. InvalidArgs naming FIELD otherwise. */
gboolean shimmer_profile_validate_name(const char *name, const char *field, GError **error);

/* Parses TEXT the way an import does: inline only (a file reference is an
 * error), client role only. FILENAME names the text in diagnostics.
 * Returns the configuration (also when it is not usable) and sets
 * *DIAGNOSTICS to the "FILE:LINE: ..." lines; *USABLE tells whether it can
 * be imported. */
ShimmerConfig *shimmer_profile_parse(const char *filename, const char *text, gsize len,
                                     gboolean *usable, char **diagnostics);

/* A new profile from TEXT; InvalidConfig (with the diagnostics) if it is
 * not usable. ID NULL: a fresh random one. Not exported, not stored. */
ShimmerProfile *shimmer_profile_new(ShimmerDaemon *d, const char *id, const char *name, guint owner,
                                    guint64 created, gboolean persistent, const char *text,
                                    gsize len, GError **error);

/* Reads a stored profile; any problem is an error naming the file. */
ShimmerProfile *shimmer_profile_load(ShimmerDaemon *d, const char *path, GError **error);

/* Writes the stored file (persistent profiles only; others: TRUE). */
gboolean shimmer_profile_save(ShimmerProfile *p, GError **error);
/* Deletes the stored file, if any. */
gboolean shimmer_profile_delete_file(ShimmerProfile *p, GError **error);

ShimmerProfile *shimmer_profile_ref(ShimmerProfile *p);
void shimmer_profile_unref(ShimmerProfile *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerProfile, shimmer_profile_unref)

const char *shimmer_profile_get_id(ShimmerProfile *p);
const char *shimmer_profile_get_path(ShimmerProfile *p);
const char *shimmer_profile_get_name(ShimmerProfile *p);
guint shimmer_profile_get_owner(ShimmerProfile *p);
/* The .ovpn text (a secret: do not log or export it). */
const char *shimmer_profile_get_text(ShimmerProfile *p, gsize *len);
/* The D-Bus object to export (owned by the profile). */
GDBusObjectSkeleton *shimmer_profile_get_object(ShimmerProfile *p);

/* The session running for this profile, or NULL; sets ActiveSession. */
ShimmerSession *shimmer_profile_get_session(ShimmerProfile *p);
void shimmer_profile_set_session(ShimmerProfile *p, ShimmerSession *session);

/* The profile was removed: methods called later get NotFound. */
void shimmer_profile_mark_removed(ShimmerProfile *p);

/* Removes the (not persistent) profile, as Profile1.Remove does, when the
 * bus name CALLER (a unique name) leaves the bus; a session of it is
 * disconnected. Call once, after the profile was added to the daemon. */
void shimmer_profile_bind_to_caller(ShimmerProfile *p, const char *caller);

G_END_DECLS
