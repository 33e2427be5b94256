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
 *   - An optional UTF-8 byte order mark at the very start of the text (only
 *     there: elsewhere those bytes are ordinary text).
 *   - Lines end in LF; a CR just before the LF is dropped (CRLF files). The
 *     last line need not end in a newline.
 *   - Empty and blank lines are skipped. A line whose first non-blank
 *     character is '#' or ';' is a comment.
 *   - Between tokens, '#' or ';' starts a comment that runs to the end of the
 *     line. Inside a token or inside quotes they are ordinary characters.
 *   - Tokens are separated by spaces and tabs (and by nothing else).
 *   - "double quotes" group a token; inside them a backslash escapes the next
 *     character (\" \\ and so on: the backslash is dropped).
 *   - 'single quotes' group a token; inside them every character is literal.
 *   - Outside quotes a backslash escapes the next character, including space,
 *     quotes, '#' and ';': `a\ b` is the one token "a b", `\#x` is "#x".
 *   - A quote opens a quoted token only at the start of a token: `a"b` is the
 *     token a"b. A closing quote must be followed by a blank or the end of
 *     the line: `"a"b` and `"a"#c` are errors, not guesses. "" and '' are
 *     empty tokens.
 *   - A leading "--" on the first token (the directive name) is removed, so
 *     command-line style lines work. A name that is then empty (`--`, `""`)
 *     is an error.
 *   - A line holding only `<name>` (blanks around it allowed) opens an inline
 *     block and `</name>` closes it; names are [a-z0-9-]+. The lines between
 *     are the block body, taken verbatim (no comments, quotes or escapes; a
 *     CR before each LF dropped, each line ending in LF). Blocks do not nest:
 *     inside a block only its own closing tag is recognised. Outside a block,
 *     a line whose first non-blank character is '<' must be such a tag. A
 *     <connection> body is lexed again by the caller.
 *   - A directive has at most SHIMMER_LEXER_MAX_ARGS arguments after its name.
 *   - Every line, comments and block bodies included, is at most
 *     SHIMMER_LEXER_MAX_LINE bytes (not counting its CR LF) and holds no NUL.
 *
 * Errors (with the 1-based line): an unterminated quote, a trailing backslash,
 * text right after a closing quote, an empty directive name, a malformed
 * block tag, an unterminated block (reported at its opening tag), a stray
 * closing tag, too many arguments, a NUL byte, a line longer than
 * SHIMMER_LEXER_MAX_LINE bytes.
 *
 * Every error has domain SHIMMER_LEXER_ERROR and code 0; the message says
 * what is wrong and, where it helps, quotes the offending line (at most 60
 * bytes of it, made printable and valid UTF-8), e.g.
 * "unterminated double quote in 'remote \"x'". It never holds the line
 * number (the caller adds FILE:LINE) nor any part of a block body.
 */

#define SHIMMER_LEXER_MAX_ARGS 16
#define SHIMMER_LEXER_MAX_LINE 4096

typedef enum {
    SHIMMER_ITEM_DIRECTIVE,
    SHIMMER_ITEM_BLOCK,
} ShimmerItemKind;

typedef struct {
    ShimmerItemKind kind;
    guint line;     /* 1-based line of the directive or of the opening tag */
    guint end_line; /* line of the closing tag for a block, == line otherwise */
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
 * g_ptr_array_unref; items are freed with it) and leaves *ERROR_LINE alone.
 * On failure returns NULL, sets ERROR (domain SHIMMER_LEXER_ERROR) with a
 * message that does not include the line number, and stores the 1-based line
 * in *ERROR_LINE (ERROR_LINE may be NULL). The messages never quote the body
 * of a block. */
GPtrArray *shimmer_lex(const char *text, gsize len, guint first_line, guint *error_line,
                       GError **error);

/* Splits one line (no newline in it) into tokens with the same quoting rules,
 * without comment/block handling at line start other than '#'/';' between
 * tokens. Returns a NULL-terminated vector (g_strfreev) or NULL with ERROR.
 * Used for PUSH_REPLY items and for tests. An empty or comment-only line
 * gives an empty vector. Unlike shimmer_lex() it does not strip "--" from
 * the first token and sets no limit on the number of tokens or the length;
 * a NUL or LF byte in LINE is an error, a CR is an ordinary character. */
char **shimmer_lex_line(const char *line, gsize len, GError **error);

void shimmer_item_free(ShimmerItem *item);

#define SHIMMER_LEXER_ERROR (shimmer_lexer_error_quark())
GQuark shimmer_lexer_error_quark(void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerItem, shimmer_item_free)

G_END_DECLS
