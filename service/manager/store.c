/* SPDX-License-Identifier: MIT */
/*
 * The profile store on disk. See store.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secure.h"

#define FILE_MAGIC "shimmer-profile 1"
/* The header is a few short lines; a name escapes to at most 4 bytes a byte. */
#define MAX_HEADER 4096

struct ShimmerStore {
    char *dir;
};

void shimmer_stored_profile_clear(ShimmerStoredProfile *sp)
{
    g_clear_pointer(&sp->id, g_free);
    g_clear_pointer(&sp->name, g_free);
    if (sp->text != NULL)
        shimmer_free_secret(sp->text, sp->len + 1);
    sp->text = NULL;
    sp->len = 0;
}

/* ---------- the directory ---------- */

/* "WHAT PATH: reason" (or "PATH: reason" when WHAT is empty). */
static gboolean set_error_errno(GError **error, int err, const char *what, const char *path)
{
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s%s%s: %s", what,
                what[0] ? " " : "", path, g_strerror(err));
    return FALSE;
}

ShimmerStore *shimmer_store_open(const char *dir, GError **error)
{
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        set_error_errno(error, errno, "cannot create the state directory", dir);
        return NULL;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        set_error_errno(error, errno, "cannot open the state directory", dir);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        set_error_errno(error, errno, "cannot examine the state directory", dir);
        close(fd);
        return NULL;
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                    "the state directory %s belongs to uid %u, not to this daemon's uid %u", dir,
                    (guint)st.st_uid, (guint)geteuid());
        return NULL;
    }
    if ((st.st_mode & 07777) != 0700) {
        /* It holds every user's profiles: nobody else may list it. */
        if (fchmod(fd, 0700) < 0) {
            set_error_errno(error, errno, "cannot make private the state directory", dir);
            close(fd);
            return NULL;
        }
        g_message("the state directory %s was mode %04o; made it 0700", dir,
                  (guint)(st.st_mode & 07777));
    }
    close(fd);
    ShimmerStore *store = g_new0(ShimmerStore, 1);
    store->dir = g_strdup(dir);
    return store;
}

void shimmer_store_free(ShimmerStore *store)
{
    if (store == NULL)
        return;
    g_free(store->dir);
    g_free(store);
}

const char *shimmer_store_get_dir(ShimmerStore *store)
{
    return store->dir;
}

/* ---------- ids ---------- */

gboolean shimmer_store_is_id(const char *id)
{
    if (strlen(id) != 32)
        return FALSE;
    for (const char *c = id; *c; c++)
        if (!g_ascii_isxdigit(*c) || g_ascii_isupper(*c))
            return FALSE;
    return TRUE;
}

char *shimmer_store_new_id(void)
{
    g_autofree char *uuid = g_uuid_string_random();
    GString *id = g_string_new(NULL);
    for (const char *c = uuid; *c; c++)
        if (*c != '-')
            g_string_append_c(id, *c);
    return g_string_free(id, FALSE);
}

static char *file_path(ShimmerStore *store, const char *id)
{
    g_autofree char *base = g_strconcat(id, ".profile", NULL);
    return g_build_filename(store->dir, base, NULL);
}

/* ---------- writing ---------- */

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

static void sync_dir(const char *dir)
{
    /* The rename is durable only once the directory is. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

gboolean shimmer_store_save(ShimmerStore *store, const ShimmerStoredProfile *sp, GError **error)
{
    g_autofree char *final = file_path(store, sp->id);
    g_autofree char *tmp = g_strdup_printf("%s/.%s.profile.XXXXXX", store->dir, sp->id);
    g_autofree char *escaped = g_strescape(sp->name, NULL);
    g_autofree char *header =
        g_strdup_printf(FILE_MAGIC "\nid: %s\nname: %s\nowner: %u\n"
                                   "created: %" G_GUINT64_FORMAT "\nsize: %" G_GSIZE_FORMAT "\n\n",
                        sp->id, escaped, sp->owner, sp->created, sp->len);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return set_error_errno(error, errno, "cannot store the profile in", store->dir);
    int err = 0;
    if (!write_all(fd, header, strlen(header)) || !write_all(fd, sp->text, sp->len) ||
        fsync(fd) < 0)
        err = errno ? errno : EIO;
    if (close(fd) < 0 && err == 0)
        err = errno;
    if (err == 0 && rename(tmp, final) < 0)
        err = errno;
    if (err != 0) {
        unlink(tmp);
        return set_error_errno(error, err, "cannot store the profile as", final);
    }
    sync_dir(store->dir);
    return TRUE;
}

gboolean shimmer_store_delete(ShimmerStore *store, const char *id, GError **error)
{
    g_autofree char *path = file_path(store, id);
    if (unlink(path) < 0 && errno != ENOENT)
        return set_error_errno(error, errno, "cannot delete", path);
    sync_dir(store->dir);
    return TRUE;
}

/* ---------- reading ---------- */

/* Reads PATH whole: a regular file of at most MAX bytes, opened without
 * following links and without blocking (a FIFO would otherwise hang the
 * daemon's start, signals and all). */
static gboolean read_regular_file(const char *path, gsize max, char **out, gsize *out_len,
                                  GError **error)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return set_error_errno(error, errno, "", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (guint64)st.st_size > max) {
        close(fd);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "%s: not a regular file of at most %" G_GSIZE_FORMAT " bytes", path, max);
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

/* The header's "key: value" lines, up to the empty line; NULL if it is not
 * a header of ours. *BODY points after the empty line. */
static GHashTable *parse_header(const char *buf, const char **body)
{
    const char *end = strstr(buf, "\n\n");
    if (end == NULL || (gsize)(end - buf) >= MAX_HEADER || !g_str_has_prefix(buf, FILE_MAGIC "\n"))
        return NULL;
    g_autoptr(GHashTable) fields = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autofree char *head = g_strndup(buf, (gsize)(end - buf));
    g_auto(GStrv) lines = g_strsplit(head, "\n", -1);
    for (guint i = 1; lines[i] != NULL; i++) {
        char *colon = strstr(lines[i], ": ");
        if (colon == NULL)
            return NULL;
        *colon = '\0';
        g_hash_table_replace(fields, g_strdup(lines[i]), g_strdup(colon + 2));
    }
    *body = end + 2;
    return g_steal_pointer(&fields);
}

gboolean shimmer_store_read(const char *path, ShimmerStoredProfile *out, GError **error)
{
    char *buf = NULL;
    gsize size = 0;
    if (!read_regular_file(path, SHIMMER_STORE_MAX_TEXT + MAX_HEADER, &buf, &size, error))
        return FALSE;
    const char *body = NULL;
    g_autoptr(GHashTable) fields = parse_header(buf, &body);
    const char *id = fields ? g_hash_table_lookup(fields, "id") : NULL;
    const char *ename = fields ? g_hash_table_lookup(fields, "name") : NULL;
    guint64 owner = 0, created = 0, len = 0;
    g_autofree char *name = ename ? g_strcompress(ename) : NULL;
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *expected = id ? g_strconcat(id, ".profile", NULL) : NULL;
    const char *problem = NULL;
    if (fields == NULL)
        problem = "not a Shimmer profile file (bad header)";
    else if (id == NULL || !shimmer_store_is_id(id) || strcmp(base, expected) != 0)
        problem = "the id is missing or does not match the file name";
    else if (name == NULL || name[0] == '\0' || !g_utf8_validate(name, -1, NULL))
        problem = "the name is missing or not valid";
    else if (!parse_u64(g_hash_table_lookup(fields, "owner"), G_MAXUINT32 - 1, &owner) ||
             !parse_u64(g_hash_table_lookup(fields, "created"), G_MAXUINT64, &created) ||
             !parse_u64(g_hash_table_lookup(fields, "size"), SHIMMER_STORE_MAX_TEXT, &len))
        problem = "owner, created or size is missing or not a number";
    else if ((gsize)(buf + size - body) != len)
        problem = "the profile text is truncated or too long (size does not match)";
    else if (!g_utf8_validate(body, (gssize)len, NULL))
        problem = "the profile text is not valid UTF-8";
    if (problem != NULL) {
        shimmer_free_secret(buf, size + 1);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", path, problem);
        return FALSE;
    }
    out->id = g_strdup(id);
    out->name = g_steal_pointer(&name);
    out->owner = (guint)owner;
    out->created = created;
    out->len = (gsize)len;
    out->text = shimmer_memdup0(body, (gsize)len);
    shimmer_free_secret(buf, size + 1);
    return TRUE;
}

static void set_aside_file(const char *path, const char *why, guint *set_aside)
{
    g_autofree char *aside = g_strconcat(path, ".corrupt", NULL);
    if (rename(path, aside) == 0)
        g_warning("%s; set aside as %s", why, aside);
    else
        g_warning("%s; cannot set it aside: %s", why, g_strerror(errno));
    (*set_aside)++;
}

void shimmer_store_load_all(ShimmerStore *store, ShimmerStoreLoadFunc func, gpointer user,
                            guint *loaded, guint *set_aside)
{
    *loaded = *set_aside = 0;
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = g_dir_open(store->dir, 0, &error);
    if (dir == NULL) {
        g_warning("cannot read the state directory: %s", error->message);
        return;
    }
    const char *entry;
    while ((entry = g_dir_read_name(dir)) != NULL) {
        g_autofree char *path = g_build_filename(store->dir, entry, NULL);
        if (entry[0] == '.' && strstr(entry, ".profile.") != NULL) {
            /* A temporary file of a write that never finished. */
            if (unlink(path) == 0)
                g_message("removed %s (an unfinished write)", path);
            continue;
        }
        if (!g_str_has_suffix(entry, ".profile"))
            continue;
        g_auto(ShimmerStoredProfile) sp = {0};
        g_autoptr(GError) lerr = NULL;
        if (!shimmer_store_read(path, &sp, &lerr)) {
            set_aside_file(path, lerr->message, set_aside);
            continue;
        }
        if (!func(user, &sp, &lerr)) {
            g_autofree char *why = g_strdup_printf("%s: %s", path, lerr->message);
            set_aside_file(path, why, set_aside);
            continue;
        }
        (*loaded)++;
    }
}
