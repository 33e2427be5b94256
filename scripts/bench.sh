#!/bin/sh
# The client benchmark: one OpenVPN 2.6 server (UDP, tls-crypt, AES-256-GCM)
# in a throwaway pair of network namespaces (tests/lab/lab.py); for each
# client available -- OpenVPN, and Shimmer's shimmerd once it is built --
# connect time (process start to its ready line), iperf3 TCP throughput
# through the tunnel and the client's peak RSS during the transfer. Runs
# alternate between the clients; the table gives shimmerd/openvpn per metric.
# Bounded: at most ~3 minutes. Needs root, openvpn, iperf3, iproute2.
#
#   sudo ./scripts/bench.sh
#   sudo SHIMMERD=/path/to/shimmerd SHIMMERD_READY='connected' ./scripts/bench.sh
#
# Environment: SHIMMERD (default: newest _build/*/service/shimmerd),
# SHIMMERD_READY (regex in shimmerd's output meaning "tunnel usable",
# default "connected"), RUNS (3), BENCH_SECONDS (iperf3 seconds per run, 5),
# CONNECTS (extra connect-only cycles per client, 5), BENCH_REVERSE=1
# (iperf3 -R), BENCH_JSON=FILE (raw results).
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench.sh: needs root (it creates network namespaces)" >&2
    exit 2
fi
for tool in openvpn iperf3 ip ping ss; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench.sh: $tool is not installed (see scripts/install-deps.sh)" >&2; exit 2; }
done

set -- --runs "${RUNS:-3}" --seconds "${BENCH_SECONDS:-5}" --connects "${CONNECTS:-5}" --budget 170
[ -n "${SHIMMERD:-}" ] && set -- "$@" --shimmerd "$SHIMMERD"
[ -n "${SHIMMERD_READY:-}" ] && set -- "$@" --ready "$SHIMMERD_READY"
[ "${BENCH_REVERSE:-0}" = 1 ] && set -- "$@" --reverse
[ -n "${BENCH_JSON:-}" ] && set -- "$@" --json "$BENCH_JSON"

printf 'machine: %s, %s CPUs; %s\n' "$(uname -r)" "$(nproc)" "$(openvpn --version | head -1 | cut -d' ' -f1-2)"
# The lab removes its namespaces and stops its processes on SIGTERM; the hard
# limit is a backstop for a hung run.
exec timeout -k 10 180 /usr/bin/python3 tests/lab/bench.py "$@"
