#!/bin/sh
# Install the Debian packages agent-iam builds and tests with, when any is
# missing. As root it runs apt-get; otherwise it prints the exact command
# and exits 1. The second group is what `pkg-config --static --libs
# agent-iam` names (tests/install links libagentiam.a with it). Pass --fuzz to add clang (libFuzzer) as well.
set -eu

pkgs="gcc make pkg-config libssl-dev libjansson-dev libmicrohttpd-dev
libcurl4-openssl-dev libsqlite3-dev libraft-dev libuv1-dev check sqlite3 python3 openssl ca-certificates curl wrk systemd
python3-yaml python3-jsonschema python3-venv python3-pip python3-setuptools nodejs
iproute2
libgnutls28-dev libnghttp2-dev libpsl-dev librtmp-dev libssh2-1-dev libkrb5-dev libldap-dev
libzstd-dev libbrotli-dev libidn2-dev libunistring-dev libp11-kit-dev libtasn1-6-dev nettle-dev
libgmp-dev zlib1g-dev"
for arg in "$@"; do
    case "$arg" in
    --fuzz) pkgs="$pkgs clang libclang-rt-dev" ;;
    *) echo "usage: $0 [--fuzz]" >&2; exit 2 ;;
    esac
done

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# npm comes with some builds of nodejs and is Debian's own package beside
# others: asked for only when the command is missing.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "agent-iam needs these Debian packages:$missing" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
