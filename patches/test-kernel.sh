#!/bin/sh
# Proof on real source: Debian's linux-source-6.1, built twice (without and with the BadAML patch)
# as a small x86-64 kernel with ACPI, INTEL_TDX_GUEST and AMD_MEM_ENCRYPT; then cvmlint's kernel
# reader must find the guard's marker strings in the patched bzImage only (and not in Debian's
# linux-image-cloud-amd64 either).
#
# Usage (as root on Debian 12, from the repository root, after `sh scripts/test-setup.sh`):
#   sh patches/test-kernel.sh            # WORK=/var/tmp/cvmlint-kernel JOBS=$(nproc)
# Takes tens of minutes on two cores; prints the build times and the detection results.
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=${WORK:-/var/tmp/cvmlint-kernel}
JOBS=${JOBS:-$(nproc)}
PATCH="$REPO/patches/0001-acpi-deny-aml-access-to-cvm-private-memory.patch"
PYTHON="$REPO/.venv/bin/python"

need="linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev cpio kmod"
missing=""
for p in $need; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

mkdir -p "$WORK"
SRC="$WORK/linux-source-6.1"
if [ ! -d "$SRC" ]; then
    tar -C "$WORK" -xf /usr/src/linux-source-6.1.tar.xz
fi
cd "$SRC"
git apply --reverse --check "$PATCH" 2>/dev/null && git apply --reverse "$PATCH"   # start unpatched
echo "== git apply --check (Debian linux-source-6.1)"
git apply --check "$PATCH"

echo "== configure: tinyconfig + 64-bit, ACPI, TDX guest, SEV guest, serial console"
make -s tinyconfig
./scripts/config --enable 64BIT --enable ACPI --enable PCI --enable HYPERVISOR_GUEST --enable PARAVIRT \
    --enable X86_X2APIC --enable CPU_SUP_INTEL --enable CPU_SUP_AMD --enable INTEL_TDX_GUEST \
    --enable AMD_MEM_ENCRYPT --enable EFI --enable PRINTK --enable TTY --enable SERIAL_8250 \
    --enable SERIAL_8250_CONSOLE --enable BLK_DEV_INITRD --enable BINFMT_ELF --enable PROC_FS \
    --enable SYSFS --enable DEVTMPFS --enable ACPI_TABLE_UPGRADE --enable KERNEL_LZ4 --disable KERNEL_GZIP \
    --disable KERNEL_XZ
make -s olddefconfig
for opt in ACPI INTEL_TDX_GUEST AMD_MEM_ENCRYPT ARCH_HAS_CC_PLATFORM; do
    grep -q "^CONFIG_$opt=y" .config || { echo "CONFIG_$opt did not stay enabled" >&2; exit 1; }
done

build() {
    start=$(date +%s)
    make -s -j"$JOBS" bzImage >/dev/null
    echo "built $1 in $(( $(date +%s) - start )) s"
    cp arch/x86/boot/bzImage "$WORK/bzImage-$1"
}
echo "== build without the patch"
build plain
echo "== build with the patch (incremental)"
git apply "$PATCH"
build patched
git apply --reverse "$PATCH"

echo "== detection by cvmlint's kernel reader"
"$PYTHON" - "$WORK/bzImage-plain" "$WORK/bzImage-patched" "$@" <<'EOF'
import sys
from pathlib import Path
from cvmlint.scan.kernel import data_strings, read_bzimage
from cvmlint.policy.probes import kernel_needles
from cvmlint.cli import _load_policy

needles = kernel_needles(_load_policy(None, None))
cloud = sorted(Path("/var/cache/cvmlint-tests").glob("payload-*/boot/vmlinuz-*"))
for path in [*sys.argv[1:], *map(str, cloud[:1])]:
    image = read_bzimage(Path(path).read_bytes(), path)
    found = data_strings(image.vmlinux, needles)
    print(f"{path}: kernel {image.version}, {image.compression}: markers found: {found or 'none'}")
EOF
