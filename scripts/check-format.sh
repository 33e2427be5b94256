#!/bin/sh
# Fails when a C file of the project is not formatted as .clang-format says
# (clang-format --dry-run --Werror over every tracked .c and .h file).
# Run from anywhere; `scripts/check-format.sh --fix` reformats instead.
set -eu
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
    echo "check-format: $CLANG_FORMAT is not installed" >&2
    exit 77
fi
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src service nm-plugin tests -name '*.[ch]')
if [ "${1:-}" = "--fix" ]; then
    # shellcheck disable=SC2086
    exec "$CLANG_FORMAT" -i $files
fi
# shellcheck disable=SC2086
if ! "$CLANG_FORMAT" --dry-run --Werror $files; then
    echo "check-format: run scripts/check-format.sh --fix" >&2
    exit 1
fi
echo "check-format: $(echo "$files" | wc -w) files formatted"
