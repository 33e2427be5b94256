/* SPDX-License-Identifier: MIT */
/*
 * Controls in untrusted text, and showing them. See textsafe.h.
 */
#include "textsafe.h"

#include <string.h>

gboolean shimmer_text_is_bidi_control(gunichar u)
{
    return u == 0x061c || u == 0x200e || u == 0x200f || (u >= 0x202a && u <= 0x202e) ||
           (u >= 0x2066 && u <= 0x2069);
}

gboolean shimmer_text_is_control(gunichar u)
{
    return u < 0x20 || (u >= 0x7f && u <= 0x9f) || u == 0x2028 || u == 0x2029 ||
           shimmer_text_is_bidi_control(u);
}

void shimmer_text_append_escaped(GString *out, const char *text, gssize len, gboolean keep_newlines)
{
    const char *p = text;
    const char *end = text + (len < 0 ? strlen(text) : (gsize)len);
    while (p < end) {
        guchar c = (guchar)*p;
        if (c < 0x80) {
            if (c == '\n' && keep_newlines)
                g_string_append_c(out, '\n');
            else if (c == '\n')
                g_string_append(out, "\\n");
            else if (c == '\r')
                g_string_append(out, "\\r");
            else if (c == '\t')
                g_string_append(out, "\\t");
            else if (c < 0x20 || c == 0x7f)
                g_string_append_printf(out, "\\x%02x", c);
            else
                g_string_append_c(out, (char)c);
            p++;
            continue;
        }
        gunichar u = g_utf8_get_char_validated(p, end - p);
        if (u == (gunichar)-1 || u == (gunichar)-2) {
            /* Not UTF-8 (or cut short): the byte, shown. */
            g_string_append_printf(out, "\\x%02x", c);
            p++;
            continue;
        }
        const char *next = g_utf8_next_char(p);
        if (shimmer_text_is_control(u))
            g_string_append_printf(out, "\\u%04x", u);
        else
            g_string_append_len(out, p, next - p);
        p = next;
    }
}
