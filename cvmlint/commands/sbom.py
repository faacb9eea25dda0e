"""`cvmlint sbom`: the software bill of materials of an image or a recipe (CycloneDX or SPDX JSON)."""

from __future__ import annotations

import enum
from pathlib import Path

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import FILE_OUTPUT, MKOSI, MkosiOptions, err, fail, print_warnings, progress_bar, write


class SbomFormat(enum.StrEnum):
    cyclonedx = "cyclonedx"
    spdx = "spdx"


@command(
    "sbom",
    Opt(("target",), "target", "A disk image (raw, qcow2, vhd, tar.gz) or an mkosi recipe directory.", kind=Path),
    Opt(
        ("--format", "-f"),
        "fmt",
        "cyclonedx (CycloneDX 1.6 JSON) or spdx (SPDX 2.3 JSON).",
        kind=SbomFormat,
        default=SbomFormat.cyclonedx,
    ),
    Opt(
        ("--no-verity",),
        "no_verity",
        "Do not recompute the root hash (the image's component then lacks it).",
        switch=True,
    ),
    FILE_OUTPUT,
    MKOSI,
)
def sbom_cmd(target: Path, fmt: SbomFormat, no_verity: bool, output: Path | None, mkosi: MkosiOptions) -> None:
    """Print the software bill of materials of an image (every dpkg package with its package URL and
    licences, the kernel, the EFI binaries with their SHA-256 and signer, the image's SHA-256 and verity
    root hash) or of a recipe (the declared packages with their file and line; versions unknown).

    Exit 1 when part of it could not be read (a LUKS root, no package database …): the document names
    what is missing and why (`cvmlint:unknown:*` properties of the root component).
    """
    from cvmlint import sbom

    if not target.exists():
        fail(f"{target}: no such file or directory")
    if target.is_dir():
        from cvmlint.project import find_project
        from cvmlint.recipe.facts import recipe_facts

        project = find_project(Path.cwd(), target)
        entry = project.entry_for(target)
        facts, warnings = recipe_facts(target, entry, mkosi.command_line(entry), Path.cwd(), implies=project.implies)
        print_warnings(project.warnings + warnings, set())
        document = sbom.from_facts(facts)
    else:
        from concurrent.futures import ThreadPoolExecutor
        from dataclasses import replace

        from cvmlint.commands.common import load_policy
        from cvmlint.evidence.inputs import file_sha256
        from cvmlint.policy.probes import kernel_needles
        from cvmlint.scan import ScanOptions, open_scan

        options = ScanOptions(verity=not no_verity, needles=kernel_needles(load_policy(None, None)))
        # the image's SHA-256 (the root component's digest) is hashed while the scan reads: hashlib lets go
        # of the interpreter lock, so the two overlap
        with ThreadPoolExecutor(1) as pool, progress_bar(True) as progress:
            digest = pool.submit(file_sha256, target)
            options.progress = progress
            with open_scan(target, options) as scanned:
                facts = scanned.complete()
                facts = replace(facts, target=replace(facts.target, digest=f"sha256:{digest.result()}"))
                document = sbom.from_facts(facts, scanned.root)
    write(sbom.cyclonedx_json(document) if fmt is SbomFormat.cyclonedx else sbom.spdx_json(document), output)
    for name, reason in document.unknown.items():
        err(f"cvmlint: sbom: {name} unknown ({reason}): the bill of materials is incomplete")
    if document.unknown:
        raise SystemExit(1)
