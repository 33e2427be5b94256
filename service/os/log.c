/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "textsafe.h"

static gboolean log_verbose;

void shimmer_log_line(const char *prefix, const char *message)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *ts = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
    /* %f gives microseconds; milliseconds are enough to read. */
    if (strlen(ts) > 24)
        memmove(ts + 23, ts + 26, strlen(ts + 26) + 1);
    /* Messages quote servers and profiles: their controls are shown, not
     * obeyed by the terminal. */
    g_autoptr(GString) safe = g_string_sized_new(strlen(message) + 1);
    shimmer_text_append_escaped(safe, message, -1, FALSE);
    fprintf(stderr, "%s %s%s\n", ts, prefix, safe->str);
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
