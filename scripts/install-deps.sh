#!/bin/sh
# Install the Debian 12 packages that building and testing Shimmer need.
# Installs only what is missing, so a second run is quick. Retries because the
# package mirror sometimes refuses a fetch for a minute.
set -eu

PACKAGES="
tinyproxy dante-server microsocks squid nftables
meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev llvm
libglib2.0-dev libgnutls28-dev nettle-dev gnutls-bin
libnl-3-dev libnl-route-3-dev libnm-dev libpolkit-gobject-1-dev
liblzo2-dev liblz4-dev libtasn1-6-dev
gettext jq libxml2-utils man-db groff-base bash-completion
openvpn iperf3 iputils-ping iproute2 openssl
dbus python3 python3-pytest python3-gi python3-dbusmock
network-manager udev
libpam0g-dev libpam-modules nftables
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root to install them" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
try() {
    n=0
    until "$@"; do
        n=$((n + 1))
        if [ "$n" -ge 5 ]; then
            echo "install-deps: giving up on: $*" >&2
            return 1
        fi
        echo "install-deps: retrying in 20 s: $*" >&2
        sleep 20
    done
}
echo "install-deps: installing:$missing"
try apt-get update -q
# shellcheck disable=SC2086
try apt-get install -y -q --no-install-recommends $missing
