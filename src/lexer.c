/* SPDX-License-Identifier: MIT */
#include "lexer.h"

#include <string.h>

#include "secure.h"

/* Error messages quote at most this many bytes of the offending line, so a
 * hostile 4 KiB line does not end up whole in a log. */
#define SHIMMER_LEX_EXCERPT_MAX 60

GQuark shimmer_lexer_error_quark(void)
{
    return g_quark_from_static_string("shimmer-lexer-error-quark");
}

/* The header declares no error codes, so every error uses this one; the
 * message says what went wrong. */
#define SHIMMER_LEX_ERR 0

static inline gboolean shimmer_lex_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Returns a printable, valid UTF-8 copy of the first bytes of P for an error
 * message: the input may hold any bytes, and the message ends up in logs and
 * in a GError (which must be UTF-8). */
static char *shimmer_lex_excerpt(const char *p, gsize len)
{
    gboolean cut = len > SHIMMER_LEX_EXCERPT_MAX;
    g_autofree char *valid = g_utf8_make_valid(p, cut ? SHIMMER_LEX_EXCERPT_MAX : len);
    GString *s = g_string_new(NULL);

    for (const char *c = valid; *c != '\0'; c++) {
        guchar u = (guchar)*c;
        if (u < 0x20 || u == 0x7f)
            g_string_append_printf(s, "\\x%02x", u);
        else
            g_string_append_c(s, *c);
    }
    if (cut)
        g_string_append(s, "...");
    return g_string_free(s, FALSE);
}

static void shimmer_lex_trim(const char **p, gsize *len)
{
    while (*len > 0 && shimmer_lex_is_blank(**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && shimmer_lex_is_blank((*p)[*len - 1]))
        (*len)--;
}

/* Sets ERROR to "WHAT in 'LINE'", LINE being the trimmed offending line. */
static void shimmer_lex_fail(GError **error, const char *what, const char *line, gsize len)
{
    shimmer_lex_trim(&line, &len);
    g_autofree char *excerpt = shimmer_lex_excerpt(line, len);
    g_set_error(error, SHIMMER_LEXER_ERROR, SHIMMER_LEX_ERR, "%s in '%s'", what, excerpt);
}

/*
 * Splits LINE into tokens appended to TOKENS (newly allocated strings).
 * MAX_TOKENS (0 for no limit) bounds the number of tokens on the line.
 *
 * A quote opens a quoted token only at the start of a token; the closing
 * quote must be followed by a blank or the end of the line. Inside an
 * unquoted token, quotes, '#' and ';' are ordinary characters. This keeps
 * the rules easy to state: `a"b` is the token a"b, and `"a"b` is an error
 * instead of a guess.
 */
static gboolean shimmer_lex_tokenize(const char *line, gsize len, guint max_tokens,
                                     GPtrArray *tokens, GError **error)
{
    /* A token is never longer than the line, so one buffer of the line's
     * size holds any of them and is never reallocated (which would leave
     * unwiped copies of, say, a pushed auth-token in freed memory). */
    char *buf = g_malloc(len + 1);
    const char *what = NULL;
    gsize i = 0;

    for (;;) {
        gsize n = 0;
        char c;

        while (i < len && shimmer_lex_is_blank(line[i]))
            i++;
        if (i >= len || line[i] == '#' || line[i] == ';')
            break;
        if (max_tokens > 0 && tokens->len >= max_tokens) {
            what = "too many arguments (at most " G_STRINGIFY(SHIMMER_LEXER_MAX_ARGS) ")";
            goto fail;
        }

        c = line[i];
        if (c == '"' || c == '\'') {
            char quote = c;
            gboolean closed = FALSE;

            i++;
            while (i < len) {
                c = line[i++];
                if (c == quote) {
                    closed = TRUE;
                    break;
                }
                if (c == '\\' && quote == '"') {
                    if (i >= len)
                        break;
                    c = line[i++];
                }
                buf[n++] = c;
            }
            if (!closed) {
                what = quote == '"' ? "unterminated double quote" : "unterminated single quote";
                goto fail;
            }
            if (i < len && !shimmer_lex_is_blank(line[i])) {
                what = "unexpected text after closing quote";
                goto fail;
            }
        } else {
            while (i < len && !shimmer_lex_is_blank(line[i])) {
                c = line[i++];
                if (c == '\\') {
                    if (i >= len) {
                        what = "trailing backslash";
                        goto fail;
                    }
                    c = line[i++];
                }
                buf[n++] = c;
            }
        }
        g_ptr_array_add(tokens, g_strndup(buf, n));
    }

    shimmer_free_secret(buf, len + 1);
    return TRUE;

fail:
    shimmer_free_secret(buf, len + 1);
    shimmer_lex_fail(error, what, line, len);
    return FALSE;
}

/* Moves *POS past the next line of TEXT and returns its content (without
 * the LF and a CR just before it) in *LINE and *LINE_LEN. Returns FALSE at
 * the end of the text. */
static gboolean shimmer_lex_next_line(const char *text, gsize len, gsize *pos, const char **line,
                                      gsize *line_len)
{
    const char *start, *nl;
    gsize n;

    if (*pos >= len)
        return FALSE;
    start = text + *pos;
    nl = memchr(start, '\n', len - *pos);
    if (nl != NULL) {
        n = (gsize)(nl - start);
        *pos += n + 1;
    } else {
        /* The last line need not end in a newline. */
        n = len - *pos;
        *pos = len;
    }
    if (n > 0 && start[n - 1] == '\r')
        n--;
    *line = start;
    *line_len = n;
    return TRUE;
}

/* Checks what every line must satisfy, block bodies included. The message
 * never quotes the line: it may be part of a private key. */
static gboolean shimmer_lex_check_line(const char *line, gsize len, GError **error)
{
    if (len > SHIMMER_LEXER_MAX_LINE) {
        g_set_error(error, SHIMMER_LEXER_ERROR, SHIMMER_LEX_ERR,
                    "line too long (%" G_GSIZE_FORMAT " bytes, at most %d)", len,
                    SHIMMER_LEXER_MAX_LINE);
        return FALSE;
    }
    if (memchr(line, '\0', len) != NULL) {
        g_set_error_literal(error, SHIMMER_LEXER_ERROR, SHIMMER_LEX_ERR, "NUL byte in text");
        return FALSE;
    }
    return TRUE;
}

/* If LINE (already trimmed) is exactly <name> or </name> with a valid name,
 * returns TRUE with the name in *NAME and *NAME_LEN, and *CLOSING set. */
static gboolean shimmer_lex_parse_tag(const char *line, gsize len, gboolean *closing,
                                      const char **name, gsize *name_len)
{
    gsize start = 1;

    if (len < 3 || line[0] != '<' || line[len - 1] != '>')
        return FALSE;
    *closing = line[1] == '/';
    if (*closing)
        start = 2;
    if (len - 1 <= start)
        return FALSE;
    for (gsize i = start; i < len - 1; i++) {
        char c = line[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return FALSE;
    }
    *name = line + start;
    *name_len = len - 1 - start;
    return TRUE;
}

static gboolean shimmer_lex_is_closing_tag(const char *line, gsize len, const char *name,
                                           gsize name_len)
{
    gboolean closing;
    const char *n;
    gsize n_len;

    shimmer_lex_trim(&line, &len);
    return shimmer_lex_parse_tag(line, len, &closing, &n, &n_len) && closing && n_len == name_len &&
           memcmp(n, name, name_len) == 0;
}

/*
 * Reads the body of the block NAME that starts at *POS, up to its closing
 * tag. *LINENO is the line of the opening tag on entry and of the closing
 * tag on success, or of the offending line on failure.
 */
static ShimmerItem *shimmer_lex_block(const char *text, gsize len, gsize *pos, const char *name,
                                      gsize name_len, guint *lineno, GError **error)
{
    const guint open_line = *lineno;
    const gsize body_start = *pos;
    gsize body_end = 0;
    gsize body_len = 0;
    gboolean closed = FALSE;
    const char *line;
    gsize line_len;
    ShimmerItem *item;
    gsize p, out;

    /* First pass: find the closing tag and the body size, so the body is
     * allocated once and never reallocated (a realloc would leave a copy of
     * the key in freed memory). */
    while (*pos < len) {
        gsize line_start = *pos;

        shimmer_lex_next_line(text, len, pos, &line, &line_len);
        (*lineno)++;
        if (!shimmer_lex_check_line(line, line_len, error))
            return NULL;
        if (shimmer_lex_is_closing_tag(line, line_len, name, name_len)) {
            body_end = line_start;
            closed = TRUE;
            break;
        }
        body_len += line_len + 1;
    }
    if (!closed) {
        *lineno = open_line;
        g_set_error(error, SHIMMER_LEXER_ERROR, SHIMMER_LEX_ERR,
                    "unterminated inline block '<%.*s>'", (int)name_len, name);
        return NULL;
    }

    item = g_new0(ShimmerItem, 1);
    item->kind = SHIMMER_ITEM_BLOCK;
    item->line = open_line;
    item->end_line = *lineno;
    item->block_name = g_strndup(name, name_len);
    item->body = g_malloc(body_len + 1);
    item->body_len = body_len;

    /* Second pass: copy the lines, each ending in LF whatever it had. */
    p = body_start;
    out = 0;
    while (p < body_end && shimmer_lex_next_line(text, body_end, &p, &line, &line_len)) {
        memcpy(item->body + out, line, line_len);
        out += line_len;
        item->body[out++] = '\n';
    }
    g_assert(out == body_len);
    item->body[out] = '\0';
    return item;
}

/* Turns one directive line into an item. */
static ShimmerItem *shimmer_lex_directive(const char *line, gsize len, guint lineno, GError **error)
{
    g_autoptr(GPtrArray) tokens = g_ptr_array_new_with_free_func(g_free);
    ShimmerItem *item;
    char *name;

    if (!shimmer_lex_tokenize(line, len, SHIMMER_LEXER_MAX_ARGS + 1, tokens, error))
        return NULL;
    /* The caller passes only lines that start with a token. */
    g_assert(tokens->len > 0);

    /* Command-line style: "--remote host" is "remote host". */
    name = g_ptr_array_index(tokens, 0);
    if (g_str_has_prefix(name, "--"))
        memmove(name, name + 2, strlen(name + 2) + 1);
    if (name[0] == '\0') {
        shimmer_lex_fail(error, "missing directive name", line, len);
        return NULL;
    }

    item = g_new0(ShimmerItem, 1);
    item->kind = SHIMMER_ITEM_DIRECTIVE;
    item->line = lineno;
    item->end_line = lineno;
    item->argc = tokens->len;
    g_ptr_array_set_free_func(tokens, NULL);
    g_ptr_array_add(tokens, NULL);
    item->argv = (char **)g_ptr_array_free(g_steal_pointer(&tokens), FALSE);
    return item;
}

GPtrArray *shimmer_lex(const char *text, gsize len, guint first_line, guint *error_line,
                       GError **error)
{
    g_autoptr(GPtrArray) items = NULL;
    g_autoptr(GError) local_error = NULL;
    gsize pos = 0;
    guint lineno = first_line;
    const char *line;
    gsize line_len;

    g_return_val_if_fail(text != NULL || len == 0, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    items = g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_item_free);

    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;

    for (; shimmer_lex_next_line(text, len, &pos, &line, &line_len); lineno++) {
        const char *trimmed = line;
        gsize trimmed_len = line_len;
        gboolean closing;
        const char *name;
        gsize name_len;
        ShimmerItem *item;

        if (!shimmer_lex_check_line(line, line_len, &local_error))
            goto fail;

        shimmer_lex_trim(&trimmed, &trimmed_len);
        if (trimmed_len == 0 || trimmed[0] == '#' || trimmed[0] == ';')
            continue;

        if (trimmed[0] == '<') {
            /* No directive starts with '<', so anything else here is a
             * mangled tag: say so rather than report an odd directive. */
            if (!shimmer_lex_parse_tag(trimmed, trimmed_len, &closing, &name, &name_len)) {
                shimmer_lex_fail(&local_error, "malformed inline block tag", trimmed, trimmed_len);
                goto fail;
            }
            if (closing) {
                shimmer_lex_fail(&local_error, "closing tag without opening tag", trimmed,
                                 trimmed_len);
                goto fail;
            }
            item = shimmer_lex_block(text, len, &pos, name, name_len, &lineno, &local_error);
            if (item == NULL)
                goto fail;
            g_ptr_array_add(items, item);
            continue;
        }

        item = shimmer_lex_directive(line, line_len, lineno, &local_error);
        if (item == NULL)
            goto fail;
        g_ptr_array_add(items, item);
    }
    return g_steal_pointer(&items);

fail:
    g_propagate_error(error, g_steal_pointer(&local_error));
    if (error_line != NULL)
        *error_line = lineno;
    return NULL;
}

char **shimmer_lex_line(const char *line, gsize len, GError **error)
{
    g_autoptr(GPtrArray) tokens = NULL;

    g_return_val_if_fail(line != NULL || len == 0, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    /* memchr() must not see a NULL pointer, even for zero bytes. */
    if (len > 0 && memchr(line, '\0', len) != NULL) {
        g_set_error_literal(error, SHIMMER_LEXER_ERROR, SHIMMER_LEX_ERR, "NUL byte in line");
        return NULL;
    }
    if (len > 0 && memchr(line, '\n', len) != NULL) {
        shimmer_lex_fail(error, "newline", line, len);
        return NULL;
    }

    tokens = g_ptr_array_new_with_free_func(g_free);
    if (!shimmer_lex_tokenize(line, len, 0, tokens, error))
        return NULL;
    g_ptr_array_set_free_func(tokens, NULL);
    g_ptr_array_add(tokens, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&tokens), FALSE);
}

void shimmer_item_free(ShimmerItem *item)
{
    if (item == NULL)
        return;
    g_strfreev(item->argv);
    g_free(item->block_name);
    /* The body may be a private key. */
    shimmer_free_secret(item->body, item->body_len);
    g_free(item);
}
