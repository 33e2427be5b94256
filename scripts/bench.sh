#!/bin/sh
# The tunnel benchmark: four pairs through a UDP / tls-crypt / AES-256-GCM
# tunnel in a throwaway pair of network namespaces (tests/lab/lab.py), run
# alternately: Shimmer <-> Shimmer, OpenVPN <-> OpenVPN, Shimmer's client <->
# OpenVPN's server, OpenVPN's client <-> Shimmer's server. Per pair: iperf3
# TCP with 1 and 4 streams, UDP at a fixed rate and its loss, CPU seconds
# per GB at both ends, ping latency under load; beside them the crypto limit
# (bench-datachan) and the bare veth. One table of medians (tests/lab/bench.py).
# Bounded: about 4 minutes with the defaults. Needs root, openvpn, iperf3,
# iproute2.
#
#   sudo ./scripts/bench.sh
#   sudo RUNS=3 BENCH_SECONDS=10 BENCH_MARKDOWN=table.md ./scripts/bench.sh
#   sudo ./scripts/bench.sh --server [--counts 1000,10000] [--json FILE]
#
# --server runs the server benchmark instead (tests/lab/bench_server.py,
# about 5 minutes; its options pass through): Shimmer's server and
# OpenVPN's with thousands of simulated clients (tests/load-clients.c) and
# 20 real OpenVPN clients: memory per client, new clients per second, a
# flood of spoofed first packets.
#
# Environment: SHIMMERD (default: newest _build/*/service/shimmerd),
# SHIMMERD_READY (regex in shimmerd's output meaning "tunnel usable"),
# RUNS (2), BENCH_SECONDS (seconds per iperf3 test, 5), BENCH_UDP_RATE
# (300M), BENCH_PAIRS (comma list of shimmer-shimmer, openvpn-openvpn,
# shimmer-openvpn, openvpn-shimmer; default all), BENCH_JSON=FILE (raw
# results), BENCH_MARKDOWN=FILE (the table for the README). SHIMMER_DATAPATH
# passes through to shimmerd (e.g. workers=1, no-udp-gso).
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench.sh: needs root (it creates network namespaces)" >&2
    exit 2
fi
if [ "${1:-}" = "--server" ]; then
    shift
    command -v openvpn >/dev/null 2>&1 || { echo "bench.sh: openvpn is not installed (see scripts/install-deps.sh)" >&2; exit 2; }
    exec timeout -k 10 1800 /usr/bin/python3 tests/lab/bench_server.py "$@"
fi
for tool in openvpn iperf3 ip ping ss; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench.sh: $tool is not installed (see scripts/install-deps.sh)" >&2; exit 2; }
done

set -- --runs "${RUNS:-2}" --seconds "${BENCH_SECONDS:-5}" --udp-rate "${BENCH_UDP_RATE:-300M}" \
    --pairs "${BENCH_PAIRS:-all}" --budget 840
[ -n "${SHIMMERD:-}" ] && set -- "$@" --shimmerd "$SHIMMERD"
[ -n "${SHIMMERD_READY:-}" ] && set -- "$@" --ready "$SHIMMERD_READY"
[ -n "${BENCH_JSON:-}" ] && set -- "$@" --json "$BENCH_JSON"
[ -n "${BENCH_MARKDOWN:-}" ] && set -- "$@" --markdown "$BENCH_MARKDOWN"

printf 'machine: %s, %s CPUs (%s); %s\n' "$(uname -r)" "$(nproc)" \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
    "$(openvpn --version | head -1 | cut -d' ' -f1-2)"
# The lab removes its namespaces and stops its processes on SIGTERM; the hard
# limit is a backstop for a hung run.
exec timeout -k 10 900 /usr/bin/python3 tests/lab/bench.py "$@"
