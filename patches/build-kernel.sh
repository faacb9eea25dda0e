#!/bin/sh
# Builds the CVM guest kernel the recipes' Debian flavour boots: Debian's linux-source-6.1, the BadAML
# patch, `make tinyconfig` + guest-kernel.config + kernel.config, packaged with `make bindeb-pkg`. Then,
# from the same tree (an incremental rebuild), a TEST-ONLY bzImage with patches/test/ applied and
# CONFIG_CVM_AML_GUARD_TEST_FORCE=y, which refuses AML access to RAM on any machine (boot-check.sh
# --forced shows the refusal). Both are cached by the hash of every input.
#
# Usage (as root on Debian 12, from anywhere):
#   SB_KEY=db.key SB_CERT=db.crt sh patches/build-kernel.sh OUT_DIR
# OUT_DIR receives linux-image-6.1.0-cvm_<version>_amd64.deb (the kernel, /boot/config-6.1.0-cvm, the
# modules signed with a key made for this build) and vmlinuz-6.1.0-cvm-test-forced-guard (never for a
# real machine). With SB_KEY/SB_CERT the packaged kernel is signed for Secure Boot (sbsign) with the key
# shim trusts (MOK or db): mkosi does not sign a kernel it boots through a distribution-signed GRUB.
# CACHE (default /var/cache/cvmlint/kernel) keeps the builds; JOBS defaults to nproc.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build-kernel.sh OUT_DIR}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)  # the build runs elsewhere: every path made absolute first

# The signing key and certificate are checked now, not after a quarter of an hour of compiling.
if [ -n "${SB_KEY:-}" ] || [ -n "${SB_CERT:-}" ]; then
    for name in SB_KEY SB_CERT; do
        eval "value=\${$name:-}"
        if [ -z "$value" ]; then echo "build-kernel.sh: $name is not set (SB_KEY and SB_CERT go together)" >&2; exit 2; fi
        if [ ! -r "$value" ]; then echo "build-kernel.sh: $name=$value: no such readable file" >&2; exit 2; fi
        eval "$name=\$(cd \"\$(dirname \"\$value\")\" && pwd)/\$(basename \"\$value\")"
    done
    if ! key_pub=$(openssl pkey -in "$SB_KEY" -pubout 2>/dev/null); then
        echo "build-kernel.sh: SB_KEY=$SB_KEY is not an unencrypted PEM private key" >&2; exit 2
    fi
    if ! cert_pub=$(openssl x509 -in "$SB_CERT" -noout -pubkey 2>/dev/null); then
        echo "build-kernel.sh: SB_CERT=$SB_CERT is not a PEM certificate" >&2; exit 2
    fi
    if [ "$key_pub" != "$cert_pub" ]; then
        echo "build-kernel.sh: SB_KEY and SB_CERT do not belong together (the certificate is for another key)" >&2
        exit 2
    fi
fi
CACHE=${CACHE:-/var/cache/cvmlint/kernel}
JOBS=${JOBS:-$(nproc)}
RELEASE=6.1.0-cvm
TARBALL=/usr/src/linux-source-6.1.tar.xz
RECIPE_VERSION=2   # bump when the steps below change what is built

need="linux-source-6.1 build-essential flex bison bc libelf-dev libssl-dev cpio kmod rsync fakeroot dpkg-dev zstd
sbsigntool"
missing=""
for p in $need; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

GUARD="$HERE/0001-acpi-deny-aml-access-to-cvm-private-memory.patch"
FORCED="$HERE/test/0001-test-only-treat-the-guest-as-confidential-for-the-aml-guard.patch"
SOURCE_VERSION=$(dpkg-query -W -f='${Version}' linux-source-6.1)
SIGNER=""
if [ -n "${SB_KEY:-}" ]; then SIGNER=$(openssl x509 -in "${SB_CERT:?SB_CERT goes with SB_KEY}" -noout -fingerprint -sha256); fi
KEY=$( (echo "$RECIPE_VERSION $SOURCE_VERSION $RELEASE $SIGNER"; cat "$GUARD" "$FORCED" "$HERE/guest-kernel.config" \
        "$HERE/kernel.config") | sha256sum | cut -c1-16)
BUILT="$CACHE/$RELEASE-$KEY"

check_config() {
    # every =y of the fragments must survive, but for options 6.1 lacks (TSM_REPORTS) and the
    # /dev/mem refinements that vanish with /dev/mem itself
    lost=$(sed -n 's/^CONFIG_\([A-Z0-9_]*\)=y$/\1/p' "$HERE/guest-kernel.config" "$HERE/kernel.config" |
           grep -v '^\(STRICT_DEVMEM\|IO_STRICT_DEVMEM\)$' |
           while read -r opt; do
               grep -rqx "config $opt" --include='Kconfig*' . || continue
               grep -q "^CONFIG_$opt=y" .config || echo "$opt"
           done)
    if [ -n "$lost" ]; then echo "build-kernel.sh: options that did not stay enabled:" $lost >&2; exit 1; fi
    for opt in ACPI_TABLE_UPGRADE DEVMEM KEXEC KEXEC_FILE; do
        if grep -q "^CONFIG_$opt=y" .config; then echo "build-kernel.sh: CONFIG_$opt is enabled" >&2; exit 1; fi
    done
}

if [ ! -f "$BUILT/done" ]; then
    WORK="$CACHE/work-$KEY"
    rm -rf "$WORK" && mkdir -p "$WORK"
    start=$(date +%s)
    tar -C "$WORK" -xf "$TARBALL"
    cd "$WORK/linux-source-6.1"
    patch -p1 -s < "$GUARD"
    make -s tinyconfig
    KCONFIG_CONFIG=.config ./scripts/kconfig/merge_config.sh -m .config "$HERE/guest-kernel.config" \
        "$HERE/kernel.config" >/dev/null
    make -s olddefconfig
    check_config
    # Build first, then package: `make -j bindeb-pkg` alone races past the generated headers in 6.1.
    # KBUILD_BUILD_VERSION is what the packaging's own `make` passes: with it the kernel signed below
    # is not rebuilt when packaged.
    set -- KERNELRELEASE="$RELEASE" KDEB_PKGVERSION="$SOURCE_VERSION" KBUILD_BUILD_TIMESTAMP="$(date -u -d @0)" \
        KBUILD_BUILD_USER=cvmlint KBUILD_BUILD_HOST=cvmlint KBUILD_BUILD_VERSION="${SOURCE_VERSION##*-}"
    make -s -j"$JOBS" "$@" >/dev/null
    if [ -n "$SIGNER" ]; then
        sbsign --key "$SB_KEY" --cert "$SB_CERT" --output arch/x86/boot/bzImage.signed arch/x86/boot/bzImage
        mv arch/x86/boot/bzImage.signed arch/x86/boot/bzImage
    fi
    make -s "$@" bindeb-pkg >/dev/null
    mkdir -p "$BUILT.tmp"
    mv "$WORK"/linux-image-"$RELEASE"_*.deb "$BUILT.tmp/"
    if [ -n "$SIGNER" ]; then  # the packaged kernel must be the signed one
        dpkg-deb -x "$BUILT.tmp"/linux-image-"$RELEASE"_*.deb "$WORK/check"
        sbverify --cert "$SB_CERT" "$WORK/check/boot/vmlinuz-$RELEASE" >/dev/null
    fi
    echo "$(( $(date +%s) - start ))" > "$BUILT.tmp/build-seconds"

    # The test-only kernel: the same tree, the forcing patch, one more option (an incremental build).
    start=$(date +%s)
    patch -p1 -s < "$FORCED"
    ./scripts/config --enable CVM_AML_GUARD_TEST_FORCE
    make -s olddefconfig
    grep -q "^CONFIG_CVM_AML_GUARD_TEST_FORCE=y" .config
    make -s -j"$JOBS" KERNELRELEASE="$RELEASE-test-forced-guard" bzImage >/dev/null
    cp arch/x86/boot/bzImage "$BUILT.tmp/vmlinuz-$RELEASE-test-forced-guard"
    echo "$(( $(date +%s) - start ))" > "$BUILT.tmp/test-build-seconds"

    touch "$BUILT.tmp/done"
    rm -rf "$BUILT" && mv "$BUILT.tmp" "$BUILT"
    rm -rf "$WORK"
fi
mkdir -p "$OUT"
cp "$BUILT"/linux-image-"$RELEASE"_*.deb "$BUILT/vmlinuz-$RELEASE-test-forced-guard" "$OUT/"
echo "$BUILT: kernel built in $(cat "$BUILT/build-seconds") s, the test-only kernel in $(cat "$BUILT/test-build-seconds") s"
