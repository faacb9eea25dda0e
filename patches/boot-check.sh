#!/bin/sh
# Boot check of the patched kernel (from patches/test-kernel.sh) under QEMU, software emulation,
# not a confidential VM: an extra SSDT (compiled with iasl) reads and writes a SystemMemory region
# from \_SB._INI, and prints what it read through AML's Debug object. On a non-confidential guest
# the guard must stay out of the way: the AML reads its value, and no "cvm-aml-guard" line appears.
#
# Usage (as root on Debian 12, after patches/test-kernel.sh): sh patches/boot-check.sh
set -eu
WORK=${WORK:-/var/tmp/cvmlint-kernel}
KERNEL=${KERNEL:-$WORK/bzImage-patched}
HERE=$(cd "$(dirname "$0")" && pwd)
for p in qemu-system-x86 acpica-tools; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p"
done
cd "$WORK"
cp "$HERE/ssdt-sysmem.asl" .
iasl -p ssdt-sysmem ssdt-sysmem.asl >/dev/null
timeout 120 qemu-system-x86_64 -machine q35 -m 256M -nographic -no-reboot -kernel "$KERNEL" \
    -append "console=ttyS0 acpi.aml_debug_output=1 panic=-1" -acpitable file=ssdt-sysmem.aml \
    > boot-serial.log 2>&1 || true
echo "== serial log: ACPI and guard lines"
grep -E "ACPI Debug|cvmlint-ssdt|cvm-aml-guard|SSDT .*CVMLNT|Kernel panic" boot-serial.log | head -20
if grep -q "cvm-aml-guard" boot-serial.log; then
    echo "FAIL: the guard printed a line on a non-confidential guest"; exit 1
fi
grep -q "0x00000000C0FFEE42\|C0FFEE42" boot-serial.log || { echo "FAIL: the AML did not read its value back"; exit 1; }
echo "OK: AML SystemMemory access works on a non-confidential guest; the guard stays silent"
