#!/bin/sh
# Runs Shimmer's whole test suite, as CI does: installs what is missing,
# builds twice (gcc with -Werror; clang with ASan+UBSan), runs every test in
# both builds, then runs the libFuzzer targets for a bounded time over the
# corpus. Tests that need root skip with a reason when not run as root.
#
#   sudo ./scripts/test.sh            # everything
#   FUZZ_SECONDS=10 ./scripts/test.sh # shorter fuzzing
set -eu
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

./scripts/install-deps.sh

step() { printf '\n=== %s ===\n' "$*"; }

step "build 1/2: gcc, -Werror"
rm -rf _build/werror
CC=gcc meson setup _build/werror --werror --buildtype=debugoptimized >/dev/null
meson compile -C _build/werror
meson test -C _build/werror --print-errorlogs --num-processes 2

step "build 2/2: clang, ASan + UBSan"
rm -rf _build/asan
CC=clang meson setup _build/asan -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debug >/dev/null
meson compile -C _build/asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C _build/asan --print-errorlogs --num-processes 2 --timeout-multiplier 3

step "fuzzing: ${FUZZ_SECONDS}s per target"
rm -rf _build/fuzz
CC=clang meson setup _build/fuzz -Dfuzzing=true -Db_sanitize=address,undefined \
    -Db_lundef=false --buildtype=debugoptimized >/dev/null
meson compile -C _build/fuzz
for target in _build/fuzz/tests/fuzz-*; do
    # (the glob also matches the *.p object directories)
    [ -f "$target" ] && [ -x "$target" ] || continue
    name=$(basename "$target")
    seeds=tests/fuzz/seeds/${name#fuzz-}
    work=$(mktemp -d)
    # New inputs go to the scratch directory; the checked-in seeds stay as they are.
    set -- "$work"
    [ -d "$seeds" ] && set -- "$@" "$seeds"
    [ "$name" = fuzz-config ] && set -- "$@" tests/corpus
    echo "$name: $*"
    if ! "$target" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$@" > "$work.log" 2>&1; then
        tail -60 "$work.log"
        echo "$name: FAILED (crash input kept in the current directory)"
        exit 1
    fi
    grep -E 'stat::number_of_executed_units|Done' "$work.log" | tail -2
    rm -rf "$work" "$work.log"
done

step "all tests passed in both builds; fuzzing clean"
# One plain closing line over both builds' meson test logs.
/usr/bin/python3 - _build/werror/meson-logs/testlog.json _build/asan/meson-logs/testlog.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
PY
