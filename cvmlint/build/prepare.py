"""What a first build of the shipped recipes needs besides the tool root (`cvmlint build --setup` makes
both when they are missing, and says so): the Secure Boot key that signs the kernel
(`recipes/common/mkosi.key`, `.crt`) and the CVM kernel package in `recipes/common/mkosi.packages/`
(`patches/build-kernel.sh`, about 17 minutes on two cores, cached after)."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cvmlint.build.mkosi import BuildError, Progress

KERNEL_GLOB = "linux-image-*-cvm_*.deb"


def secure_boot_key(common: Path) -> tuple[Path, Path, bool]:
    """The key and certificate in `common` (mkosi.key, mkosi.crt): made when neither exists (RSA 2048,
    self-signed, ten years, the key readable by its owner only); whether they were made now."""
    key, cert = common / "mkosi.key", common / "mkosi.crt"
    if key.exists() and cert.exists():
        return key, cert, False
    if key.exists() or cert.exists():
        have, lacks = (key, cert) if key.exists() else (cert, key)
        raise BuildError(f"{have} is there but {lacks} is not: restore it, or remove {have} to make a new pair")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"cvmlint Secure Boot ({common.resolve().parent.parent.name})")]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(private, hashes.SHA256())
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key, cert, True


def cvm_kernel(common: Path, script: Path, key: Path, cert: Path, progress: Progress) -> tuple[Path, bool]:
    """The CVM kernel package in common/mkosi.packages, built by `script` when there is none; whether
    it was built now. The script's output goes to mkosi.packages/build-kernel.log."""
    packages = common / "mkosi.packages"
    found = sorted(packages.glob(KERNEL_GLOB))
    if found:
        return found[-1], False
    if not script.is_file():
        raise BuildError(f"no {KERNEL_GLOB} in {packages}, and no {script} to build one")
    log = packages / "build-kernel.log"
    env = {**os.environ, "SB_KEY": str(key.resolve()), "SB_CERT": str(cert.resolve())}
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(["sh", str(script), str(packages)], stdout=out, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            progress(f"building the CVM kernel ({time.monotonic() - started:.0f} s; about 17 minutes on two cores)")
            time.sleep(10)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-5:]
        raise BuildError(f"{script} failed (exit {proc.returncode}); its log: {log}\n" + "\n".join(tail))
    found = sorted(packages.glob(KERNEL_GLOB))
    if not found:
        raise BuildError(f"{script} finished but left no {KERNEL_GLOB} in {packages}; its log: {log}")
    return found[-1], True
