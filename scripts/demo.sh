#!/bin/sh
# The main job: a real tunnel from Shimmer to an OpenVPN 2.6 server, on one
# machine, needing no outside server. Installs what is missing, builds, then
# runs tests/lab/demo.py: two network namespaces joined by a veth pair
# (nothing outside them is touched), Debian's OpenVPN 2.6 server in one,
# shimmerd as a system service on a private system bus in the other, and
# shimmerctl import / connect --wait / status / disconnect with a ping through
# the tunnel in between. Needs root.
#
#   sudo ./scripts/demo.sh [--proto tcp] [--wrap tls-auth|tls-crypt|tls-crypt-v2|none]
#                          [--foreground]   (shimmerd --config instead of the service)
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "demo: needs root (network namespaces and a tun device): sudo $0" >&2
    exit 2
fi
./scripts/install-deps.sh
if [ ! -f _build/demo/build.ninja ]; then
    meson setup _build/demo --buildtype=debugoptimized >/dev/null
fi
meson compile -C _build/demo shimmerd shimmerctl >/dev/null
exec /usr/bin/python3 tests/lab/demo.py --shimmerd "$PWD/_build/demo/service/shimmerd" "$@"
