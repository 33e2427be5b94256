/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The tokenizer for OpenVPN configuration syntax.
 *
 * The lexer turns the text of one configuration file (or of one <connection>
 * block, or of one PUSH_REPLY option) into a list of items: directives with
 * their arguments, and inline blocks with their raw bodies. It knows nothing
 * of what a directive means.
 *
 * Syntax accepted (the facts of OpenVPN's format):
 *   - An optional UTF-8 byte order mark at the very start of the text.
 *   - Lines end in LF; a CR before the LF is dropped (CRLF files).
 *   - Between tokens, '#' or ';' starts a comment that runs to the end of the
 *     line. Inside a token they are ordinary characters.
 *   - Tokens are separated by spaces and tabs.
 *   - "double quotes" group a token; inside them a backslash escapes the next
 *     character (\" \\ and so on: the backslash is dropped).
 *   - 'single quotes' group a token; inside them every character is literal.
 *   - Outside quotes a backslash escapes the next character, including space
 *     and quotes: `a\ b` is the one token "a b".
 *   - A leading "--" on the first token (the directive name) is removed, so
 *     command-line style lines work.
 *   - A line holding only `<name>` opens an inline block and `</name>` closes
 *     it; the lines between are the block body, taken verbatim (CR dropped,
 *     each line ending in LF). Blocks do not nest: inside a block only its
 *     own closing tag is recognised. A <connection> body is lexed again by
 *     the caller.
 *   - A directive has at most SHIMMER_LEXER_MAX_ARGS arguments after its name.
 *
 * Errors (with the 1-based line): an unterminated quote, a trailing backslash,
 * an unterminated block, a stray closing tag, too many arguments, a NUL byte,
 * a line longer than SHIMMER_LEXER_MAX_LINE bytes.
 */

#define SHIMMER_LEXER_MAX_ARGS 16
#define SHIMMER_LEXER_MAX_LINE 4096

typedef enum {
    SHIMMER_ITEM_DIRECTIVE,
    SHIMMER_ITEM_BLOCK,
} ShimmerItemKind;

typedef struct {
    ShimmerItemKind kind;
    guint line;      /* 1-based line of the directive or of the opening tag */
    guint end_line;  /* line of the closing tag for a block, == line otherwise */
    /* SHIMMER_ITEM_DIRECTIVE: argv[0] is the name (without "--"), argv has
     * argc entries and a NULL terminator. */
    char **argv;
    guint argc;
    /* SHIMMER_ITEM_BLOCK: the tag name and the body. The body may hold key
     * material: it is wiped when the item is freed. */
    char *block_name;
    char *body;
    gsize body_len;
} ShimmerItem;

/* Lexes TEXT (LEN bytes, need not be NUL terminated). FIRST_LINE is the line
 * number of the first line of TEXT (1 for a whole file; the line after the
 * opening tag for a <connection> body), so that diagnostics point into the
 * real file. On success returns an array of ShimmerItem* (free with
 * g_ptr_array_unref; items are freed with it). On failure returns NULL, sets
 * ERROR (domain SHIMMER_LEXER_ERROR) with a message that does not include the
 * line number, and stores the 1-based line in *ERROR_LINE. The messages never
 * quote the body of a block. */
GPtrArray *shimmer_lex(const char *text, gsize len, guint first_line,
                       guint *error_line, GError **error);

/* Splits one line (no newline in it) into tokens with the same quoting rules,
 * without comment/block handling at line start other than '#'/';' between
 * tokens. Returns a NULL-terminated vector (g_strfreev) or NULL with ERROR.
 * Used for PUSH_REPLY items and for tests. An empty or comment-only line
 * gives an empty vector. */
char **shimmer_lex_line(const char *line, gsize len, GError **error);

void shimmer_item_free(ShimmerItem *item);

#define SHIMMER_LEXER_ERROR (shimmer_lexer_error_quark())
GQuark shimmer_lexer_error_quark(void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerItem, shimmer_item_free)

G_END_DECLS
