#!/bin/sh
# The main job: a real tunnel between Shimmer's own server and Shimmer's
# client, on one machine, needing no outside server. Installs what is
# missing, builds, then runs tests/lab/demo.py: two network namespaces joined
# by a veth pair (nothing outside them is touched); in one, shimmerd as a
# system service on a private system bus serves data/examples/server.conf
# (shimmerctl import, server start); in the other, a second shimmerd runs
# data/examples/client.ovpn (shimmerctl import, connect --wait, status), a
# ping goes through the tunnel, the server lists its client, then
# disconnect and server stop, and the tun devices and routes must be gone.
# Everything it made is removed at the end, also when it fails. Needs root.
#
#   sudo ./scripts/demo.sh [--server shimmer|openvpn]  (OpenVPN 2.6's server instead)
#                          [--proto udp|tcp] [--wrap tls-crypt|tls-auth|tls-crypt-v2|none]
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
