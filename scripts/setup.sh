#!/bin/sh
# setup.sh - installs (as root) or names (otherwise) the Debian packages ebm needs.
#   scripts/setup.sh build   packages to build and run ebm
#   scripts/setup.sh test    plus what the tests need (cmocka, clang sanitizers/fuzzer, ...)
# Idempotent and quick when everything is there: it asks dpkg first.
set -eu
what=${1:-build}

pkgs="build-essential pkg-config libopenblas-dev zlib1g-dev libpng-dev libgif-dev libcjson-dev
      libcairo2-dev libmicrohttpd-dev ca-certificates dataset-fashion-mnist"
if [ "$what" = test ]; then
    pkgs="$pkgs libcmocka-dev clang libclang-rt-14-dev chromium python3-numpy"
fi

missing=""
# npm: Debian's package, unless a Node.js with its own npm (e.g. NodeSource's) is there already.
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "ebm: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "ebm: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null; }
