/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "textsafe.h"

static gboolean log_verbose;

/* Batching (shimmer_log_batch_start()): lines wait here and are written
 * together when the main loop is about to sleep, at BATCH_MAX bytes, or at
 * once for warnings and errors. */
#define BATCH_MAX (16 * 1024)
static GMutex batch_lock;
static GString *batch;
static GSource *batch_source;

/* With batch_lock held. */
static void flush_locked(void)
{
    if (batch != NULL && batch->len > 0) {
        fwrite(batch->str, 1, batch->len, stderr);
        g_string_truncate(batch, 0);
    }
}

static void log_flush(void)
{
    g_mutex_lock(&batch_lock);
    flush_locked();
    g_mutex_unlock(&batch_lock);
}

static gboolean batch_prepare(GSource *source, gint *timeout)
{
    *timeout = -1;
    log_flush();
    return FALSE;
}

static GSourceFuncs batch_funcs = {.prepare = batch_prepare};

void shimmer_log_batch_start(GMainContext *context)
{
    g_mutex_lock(&batch_lock);
    if (batch == NULL)
        batch = g_string_sized_new(BATCH_MAX + 1024);
    g_mutex_unlock(&batch_lock);
    if (batch_source == NULL) {
        batch_source = g_source_new(&batch_funcs, sizeof(GSource));
        /* Last of the sources prepared: after the others have run. */
        g_source_set_priority(batch_source, G_PRIORITY_LOW);
        g_source_attach(batch_source, context);
    }
}

void shimmer_log_batch_stop(void)
{
    if (batch_source != NULL) {
        g_source_destroy(batch_source);
        g_source_unref(batch_source);
        batch_source = NULL;
    }
    g_mutex_lock(&batch_lock);
    flush_locked();
    if (batch != NULL)
        g_string_free(batch, TRUE);
    batch = NULL;
    g_mutex_unlock(&batch_lock);
}

void shimmer_log_line(const char *prefix, const char *message)
{
    /* UTC to the millisecond, without GDateTime: a server logs a few lines
     * per client, and GDateTime's time-zone lookups cost more than the
     * rest of the line. */
    struct timespec now;
    struct tm tm;
    char ts[80] = "";
    clock_gettime(CLOCK_REALTIME, &now);
    if (gmtime_r(&now.tv_sec, &tm) != NULL)
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(now.tv_nsec / 1000000));
    /* Messages quote servers and profiles: their controls are shown, not
     * obeyed by the terminal. */
    GString *line = g_string_sized_new(strlen(message) + 64);
    g_string_append(line, ts);
    g_string_append_c(line, ' ');
    g_string_append(line, prefix);
    shimmer_text_append_escaped(line, message, -1, FALSE);
    g_string_append_c(line, '\n');
    g_mutex_lock(&batch_lock);
    if (batch != NULL) {
        g_string_append_len(batch, line->str, (gssize)line->len);
        if (prefix[0] != '\0' || batch->len >= BATCH_MAX)
            flush_locked();
    } else {
        /* One write per line (stderr is unbuffered). */
        fwrite(line->str, 1, line->len, stderr);
    }
    g_mutex_unlock(&batch_lock);
    g_string_free(line, TRUE);
}

static GLogWriterOutput log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                   gpointer user)
{
    if ((level & G_LOG_LEVEL_DEBUG) && !log_verbose)
        return G_LOG_WRITER_HANDLED;
    if (g_log_writer_is_journald(fileno(stderr)) &&
        g_log_writer_journald(level, fields, n_fields, user) == G_LOG_WRITER_HANDLED)
        return G_LOG_WRITER_HANDLED;
    const char *message = NULL, *shimmer_level = NULL;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            message = fields[i].value;
        else if (strcmp(fields[i].key, "SHIMMER_LEVEL") == 0)
            shimmer_level = fields[i].value;
    }
    if (message == NULL)
        return G_LOG_WRITER_UNHANDLED;
    const char *prefix = "";
    if (shimmer_level != NULL && strcmp(shimmer_level, "error") == 0)
        prefix = "error: ";
    else if (level & (G_LOG_FLAG_FATAL | G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        prefix = "critical: ";
    else if (level & G_LOG_LEVEL_WARNING)
        prefix = "warning: ";
    else if (level & G_LOG_LEVEL_DEBUG)
        prefix = "debug: ";
    shimmer_log_line(prefix, message);
    return G_LOG_WRITER_HANDLED;
}

void shimmer_log_use_writer(gboolean verbose)
{
    log_verbose = verbose;
    g_log_set_writer_func(log_writer, NULL, NULL);
}

char *shimmer_log_object(const char *what, const char *field, const char *id, const char *profile,
                         guint owner, int level, GLogLevelFlags info_level, const char *message)
{
    static const char *const level_names[] = {"error", "warning", "info", "debug"};
    GLogLevelFlags glevel = level == SHIMMER_LOG_ERROR || level == SHIMMER_LOG_WARNING
                                ? G_LOG_LEVEL_WARNING
                            : level == SHIMMER_LOG_INFO ? info_level
                                                        : G_LOG_LEVEL_DEBUG;
    char *text = g_utf8_make_valid(message, -1);
    g_autofree char *owner_text = g_strdup_printf("%u", owner);
    g_log_structured(G_LOG_DOMAIN, glevel, field, id, "SHIMMER_PROFILE", profile,
                     "SHIMMER_OWNER_UID", owner_text, "SHIMMER_LEVEL",
                     level_names[MIN((guint)level, 3u)], "MESSAGE", "%s %s (%s): %s", what, id,
                     profile, text);
    return text;
}
