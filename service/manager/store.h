/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The profile store on disk: one file per persistent profile in the state
 * directory (default /var/lib/shimmer), mode 0600, written atomically (a
 * temporary file in the same directory, fsync, rename, fsync of the
 * directory). Format: a header of "key: value" lines, an empty line, then
 * the .ovpn text verbatim:
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
 *
 * The store never follows a symbolic link and never opens anything but a
 * regular file (a FIFO or a device in the directory is set aside, not
 * read), so nobody can make the daemon block or read where it should not.
 * Errors are G_IO_ERROR, naming the file.
 */

/* The largest profile text the store keeps (bytes). */
#define SHIMMER_STORE_MAX_TEXT (1024 * 1024)

typedef struct {
    char *id;    /* 32 lower-case hex digits */
    char *name;  /* UTF-8, checked by the caller */
    guint owner; /* uid */
    guint64 created;
    char *text; /* a secret: wiped when cleared */
    gsize len;
} ShimmerStoredProfile;

void shimmer_stored_profile_clear(ShimmerStoredProfile *sp);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ShimmerStoredProfile, shimmer_stored_profile_clear)

typedef struct ShimmerStore ShimmerStore;

/* Opens DIR, creating it (mode 0700) if needed. An existing directory is
 * made 0700 when it is more open (it holds everyone's profiles); one that
 * is not a directory, or not owned by the daemon's user, is an error. */
ShimmerStore *shimmer_store_open(const char *dir, GError **error);
void shimmer_store_free(ShimmerStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerStore, shimmer_store_free)

const char *shimmer_store_get_dir(ShimmerStore *store);

/* Writes (or replaces) the file of SP. */
gboolean shimmer_store_save(ShimmerStore *store, const ShimmerStoredProfile *sp, GError **error);
/* Deletes the file of ID; TRUE if there was none. */
gboolean shimmer_store_delete(ShimmerStore *store, const char *id, GError **error);

/* Called for each stored profile that reads back well; it may take the
 * fields it wants out of SP (setting them to NULL). FALSE with ERROR: the
 * file is set aside as corrupt. */
typedef gboolean (*ShimmerStoreLoadFunc)(gpointer user, ShimmerStoredProfile *sp, GError **error);

/* Reads every stored profile. Leftovers of an unfinished write are
 * removed; a file that cannot be read back (corrupt, not a regular file)
 * or that FUNC refuses, is renamed to NAME.corrupt; *LOADED and *SET_ASIDE
 * count the two outcomes. */
void shimmer_store_load_all(ShimmerStore *store, ShimmerStoreLoadFunc func, gpointer user,
                            guint *loaded, guint *set_aside);

/* Reads one stored file (for the loader and tests). */
gboolean shimmer_store_read(const char *path, ShimmerStoredProfile *out, GError **error);

/* A fresh random profile id; whether ID looks like one. */
char *shimmer_store_new_id(void);
gboolean shimmer_store_is_id(const char *id);

G_END_DECLS
