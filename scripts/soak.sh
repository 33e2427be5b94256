#!/bin/sh
# Soak test (not part of CI): shimmerd against OpenVPN 2.6's server in the
# lab for 30 minutes (--minutes N) under a constant iperf3 UDP load with the
# data key renegotiated every 10 s; RSS, fds and loss sampled every 10 s, a
# summary table at the end. Needs root, openvpn, iperf3 (and nftables with
# --loss). Runs tests/lab/soak.py; every option goes through:
#
#   sudo ./scripts/soak.sh [--minutes 30] [--rate 50M] [--reneg 10] [--loss PCT]
#                          [--shimmerd PATH | --client openvpn] [--json FILE]
#
# shimmerd is --shimmerd, $SHIMMERD, or the newest _build/*/service/shimmerd.
# Exit status 1 when shimmerd died, the tunnel stopped passing traffic, or
# the loss beyond the induced one exceeded --max-excess (0.5 points).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "soak: needs root (network namespaces)" >&2
    exit 2
fi
exec /usr/bin/python3 tests/lab/soak.py "$@"
