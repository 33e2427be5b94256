/* SPDX-License-Identifier: MIT */
/* shimmerctl: formatting values for people and as JSON. */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "output.h"
#include "textsafe.h"

static void json_variant(GString *out, GVariant *v)
{
    switch (g_variant_classify(v)) {
    case G_VARIANT_CLASS_BOOLEAN:
        g_string_append(out, g_variant_get_boolean(v) ? "true" : "false");
        break;
    case G_VARIANT_CLASS_BYTE:
        g_string_append_printf(out, "%u", g_variant_get_byte(v));
        break;
    case G_VARIANT_CLASS_INT16:
        g_string_append_printf(out, "%d", g_variant_get_int16(v));
        break;
    case G_VARIANT_CLASS_UINT16:
        g_string_append_printf(out, "%u", g_variant_get_uint16(v));
        break;
    case G_VARIANT_CLASS_INT32:
        g_string_append_printf(out, "%d", g_variant_get_int32(v));
        break;
    case G_VARIANT_CLASS_HANDLE:
        g_string_append_printf(out, "%d", g_variant_get_handle(v));
        break;
    case G_VARIANT_CLASS_UINT32:
        g_string_append_printf(out, "%u", g_variant_get_uint32(v));
        break;
    case G_VARIANT_CLASS_INT64:
        g_string_append_printf(out, "%" G_GINT64_FORMAT, g_variant_get_int64(v));
        break;
    case G_VARIANT_CLASS_UINT64:
        g_string_append_printf(out, "%" G_GUINT64_FORMAT, g_variant_get_uint64(v));
        break;
    case G_VARIANT_CLASS_DOUBLE: {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        double d = g_variant_get_double(v);
        if (d != d || d - d != 0) /* NaN and infinities have no JSON form */
            g_string_append(out, "null");
        else
            g_string_append(out, g_ascii_dtostr(buf, sizeof(buf), d));
        break;
    }
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
        shimmer_json_append_string(out, g_variant_get_string(v, NULL));
        break;
    case G_VARIANT_CLASS_VARIANT: {
        g_autoptr(GVariant) inner = g_variant_get_variant(v);
        json_variant(out, inner);
        break;
    }
    case G_VARIANT_CLASS_MAYBE: {
        g_autoptr(GVariant) inner = g_variant_get_maybe(v);
        if (inner)
            json_variant(out, inner);
        else
            g_string_append(out, "null");
        break;
    }
    case G_VARIANT_CLASS_ARRAY: {
        gboolean dict = g_variant_type_is_dict_entry(g_variant_type_element(g_variant_get_type(v)));
        gsize n = g_variant_n_children(v);
        g_string_append_c(out, dict ? '{' : '[');
        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(v, i);
            if (i > 0)
                g_string_append_c(out, ',');
            if (dict) {
                g_autoptr(GVariant) key = g_variant_get_child_value(child, 0);
                g_autoptr(GVariant) val = g_variant_get_child_value(child, 1);
                if (g_variant_is_of_type(key, G_VARIANT_TYPE_STRING)) {
                    shimmer_json_append_string(out, g_variant_get_string(key, NULL));
                } else {
                    g_autofree char *k = g_variant_print(key, FALSE);
                    shimmer_json_append_string(out, k);
                }
                g_string_append_c(out, ':');
                json_variant(out, val);
            } else {
                json_variant(out, child);
            }
        }
        g_string_append_c(out, dict ? '}' : ']');
        break;
    }
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY: {
        gsize n = g_variant_n_children(v);
        g_string_append_c(out, '[');
        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(v, i);
            if (i > 0)
                g_string_append_c(out, ',');
            json_variant(out, child);
        }
        g_string_append_c(out, ']');
        break;
    }
    }
}

static int compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ctl_json_open_object(GString *out, GDBusProxy *proxy)
{
    g_string_append(out, "{\"Path\":");
    shimmer_json_append_string(out, g_dbus_proxy_get_object_path(proxy));
    g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(proxy);
    if (names == NULL)
        return;
    qsort(names, g_strv_length(names), sizeof(char *), compare_strings);
    for (char **n = names; *n; n++) {
        g_autoptr(GVariant) v = g_dbus_proxy_get_cached_property(proxy, *n);
        if (v == NULL)
            continue;
        g_string_append_c(out, ',');
        shimmer_json_append_string(out, *n);
        g_string_append_c(out, ':');
        json_variant(out, v);
    }
}

char *ctl_format_value(GVariant *v)
{
    if (v == NULL)
        return g_strdup("-");
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
        g_autoptr(GVariant) inner = g_variant_get_variant(v);
        return ctl_format_value(inner);
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) ||
        g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH)) {
        const char *s = g_variant_get_string(v, NULL);
        return g_strdup(*s ? s : "-");
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
        return g_strdup(g_variant_get_boolean(v) ? _("yes") : _("no"));
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY) ||
        g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH_ARRAY)) {
        g_autofree const char **strv = g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY)
                                           ? g_variant_get_strv(v, NULL)
                                           : g_variant_get_objv(v, NULL);
        if (strv[0] == NULL)
            return g_strdup("-");
        return g_strjoinv(", ", (char **)strv);
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
        return g_strdup_printf("%" G_GUINT64_FORMAT, g_variant_get_uint64(v));
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
        return g_strdup_printf("%u", g_variant_get_uint32(v));
    return g_variant_print(v, FALSE);
}

char *ctl_format_strv(const char *const *strv)
{
    if (strv == NULL || strv[0] == NULL)
        return g_strdup("-");
    return g_strjoinv(", ", (char **)strv);
}

const char *ctl_or_dash(const char *s)
{
    return s && *s ? s : "-";
}

char *ctl_format_owner(guint uid)
{
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name)
        return g_strdup_printf("%u (%s)", uid, pw->pw_name);
    return g_strdup_printf("%u", uid);
}

char *ctl_format_time(guint64 unix_time)
{
    if (unix_time == 0 || unix_time > G_MAXINT64)
        return g_strdup("-");
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local((gint64)unix_time);
    if (dt == NULL)
        return g_strdup("-");
    return g_date_time_format(dt, "%Y-%m-%d %H:%M:%S");
}

char *ctl_format_duration(guint64 seconds)
{
    unsigned long long d = seconds / 86400;
    unsigned h = (unsigned)(seconds / 3600 % 24), m = (unsigned)(seconds / 60 % 60),
             s = (unsigned)(seconds % 60);
    /* TRANSLATORS: a duration in days, hours and minutes */
    if (d > 0)
        return g_strdup_printf(_("%llud %02uh %02um"), d, h, m);
    if (h > 0)
        return g_strdup_printf(_("%uh %02um %02us"), h, m, s);
    if (m > 0)
        return g_strdup_printf(_("%um %02us"), m, s);
    return g_strdup_printf(_("%us"), s);
}

char *ctl_format_rate(double bytes_per_s)
{
    if (bytes_per_s < 0)
        return g_strdup("-");
    g_autofree char *size =
        g_format_size_full((guint64)(bytes_per_s + 0.5), G_FORMAT_SIZE_IEC_UNITS);
    return g_strdup_printf(_("%s/s"), size);
}

const char *ctl_state_label(const char *state)
{
    static const struct {
        const char *token;
        const char *label;
    } labels[] = {
        {"connecting", N_("connecting")},
        {"authenticating", N_("authenticating")},
        {"getting-config", N_("getting the configuration")},
        {"web-sign-in", N_("waiting for the web sign-in")},
        {"connected", N_("connected")},
        {"reconnecting", N_("reconnecting")},
        {"disconnecting", N_("disconnecting")},
        {"disconnected", N_("disconnected")},
        {"failed", N_("failed")},
    };
    if (state == NULL || *state == '\0')
        return "-";
    for (gsize i = 0; i < G_N_ELEMENTS(labels); i++) {
        if (strcmp(state, labels[i].token) == 0)
            return _(labels[i].label);
    }
    return state;
}

gboolean ctl_state_is_final(const char *state)
{
    return g_strcmp0(state, "disconnected") == 0 || g_strcmp0(state, "failed") == 0;
}

void ctl_json_pretty(GString *out, const char *json)
{
    int depth = 0;
    gboolean in_string = FALSE, escaped = FALSE;
    for (const char *p = json; *p; p++) {
        char ch = *p;
        if (in_string) {
            g_string_append_c(out, ch);
            if (escaped)
                escaped = FALSE;
            else if (ch == '\\')
                escaped = TRUE;
            else if (ch == '"')
                in_string = FALSE;
            continue;
        }
        switch (ch) {
        case '"':
            in_string = TRUE;
            g_string_append_c(out, ch);
            break;
        case '{':
        case '[':
            g_string_append_c(out, ch);
            /* Keep empty containers on one line. */
            if (p[1] == (ch == '{' ? '}' : ']')) {
                g_string_append_c(out, p[1]);
                p++;
                break;
            }
            depth++;
            g_string_append_printf(out, "\n%*s", depth * 2, "");
            break;
        case '}':
        case ']':
            depth = depth > 0 ? depth - 1 : 0;
            g_string_append_printf(out, "\n%*s%c", depth * 2, "", ch);
            break;
        case ',':
            g_string_append_printf(out, ",\n%*s", depth * 2, "");
            break;
        case ':':
            g_string_append(out, ": ");
            break;
        case ' ':
        case '\n':
        case '\r':
        case '\t':
            break;
        default:
            g_string_append_c(out, ch);
        }
    }
    g_string_append_c(out, '\n');
}

void ctl_escape_append(GString *out, const char *text, gssize len, gboolean keep_newlines)
{
    shimmer_text_append_escaped(out, text, len, keep_newlines);
}

char *ctl_escape(const char *text)
{
    GString *out = g_string_sized_new(strlen(text) + 1);
    ctl_escape_append(out, text, -1, FALSE);
    return g_string_free(out, FALSE);
}

void ctl_print(FILE *stream, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *text = g_strdup_vprintf(format, ap);
    va_end(ap);
    gsize len = strlen(text);
    gboolean newline = len > 0 && text[len - 1] == '\n';
    g_autoptr(GString) out = g_string_sized_new(len + 1);
    ctl_escape_append(out, text, (gssize)(newline ? len - 1 : len), FALSE);
    if (newline)
        g_string_append_c(out, '\n');
    fputs(out->str, stream);
}

void ctl_print_lines(FILE *stream, const char *text)
{
    g_autoptr(GString) out = g_string_sized_new(strlen(text) + 1);
    ctl_escape_append(out, text, -1, TRUE);
    fputs(out->str, stream);
}

void ctl_print_field(const char *label, const char *value)
{
    /* Labels are translated, so pad by characters, not bytes. */
    glong width = g_utf8_strlen(label, -1);
    ctl_print(stdout, "%s%*s %s\n", label, (int)(width < 16 ? 16 - width : 0), "", value);
}
