#!/bin/sh
# Installs everything the tests need: system tools (when run as root on Debian), then a virtual
# environment in .venv with cvmlint (editable) and its test dependencies.
set -eu
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="python3-venv libarchive13 erofs-utils cryptsetup-bin fdisk gdisk dosfstools mtools
e2fsprogs squashfs-tools qemu-utils debootstrap binutils cpio zstd lz4 xz-utils sbsigntool openssl
git linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev kmod rsync fakeroot dpkg-dev
qemu-system-x86 ovmf acpica-tools chromium swtpm swtpm-tools tpm2-tools"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=""
    for p in $SYSTEM_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "installing system packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
else
    echo "not root (or not Debian): skipping system packages; tests that need them will be skipped" >&2
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
