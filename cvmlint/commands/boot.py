"""`cvmlint boot`: boot an image under QEMU and OVMF and report what its console shows."""

from __future__ import annotations

from pathlib import Path

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import FILE_OUTPUT, fail, write
from cvmlint.commands.measure import TEXT_OR_JSON, TextOrJson

BOOT_TIMEOUT = Opt(
    ("--boot-timeout",),
    "boot_timeout",
    "Seconds to wait for the default target (default 600; software emulation needs minutes).",
    kind=int,
    default=600,
    metavar="SECONDS",
)


@command(
    "boot",
    Opt(("image",), "image", "Raw disk image (opened as a snapshot: never written).", kind=Path),
    TEXT_OR_JSON,
    BOOT_TIMEOUT,
    Opt(("--log",), "log", "Where to keep the serial console (default: beside the image, IMAGE.boot.log).", kind=Path),
    Opt(("--memory",), "memory", "Guest memory in MiB (default 1536).", kind=int, default=1536, metavar="MIB"),
    Opt(("--no-tpm",), "no_tpm", "Boot without a software TPM (swtpm).", switch=True),
    FILE_OUTPUT,
)
def boot_cmd(
    image: Path,
    fmt: TextOrJson,
    boot_timeout: int,
    log: Path | None,
    memory: int,
    no_tpm: bool,
    output: Path | None,
) -> None:
    """Boot the image under QEMU with OVMF (and swtpm) and check its serial console: the default target
    reached, no failed unit, lockdown, the root on dm-verity, volatile /tmp, /var/tmp and /var/log.

    KVM when /dev/kvm works, else software emulation (said in the report). Exit 0 when every check
    passes, 1 when one fails or cannot be told from the console, 2 when the VM cannot be started.
    """
    import json

    from cvmlint.bootcheck import boot_check, render_text

    if not image.is_file():
        fail(f"{image}: no such image file")
    if boot_timeout <= 0:
        fail("--boot-timeout must be a positive number of seconds")
    result = boot_check(image, log or image.with_suffix(".boot.log"), boot_timeout, memory, tpm=not no_tpm)
    text = json.dumps(result.to_json(), indent=2) + "\n" if fmt is TextOrJson.json else render_text(result)
    write(text, output)
    raise SystemExit(result.exit_code())
