"""`cvmlint scan`: check a disk image against the policy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import (
    EVIDENCE_OPTIONS,
    POLICY,
    PROFILE,
    REPORT,
    EvidenceOptions,
    OutputFormat,
    ReportOptions,
    fail,
    load_policy,
    progress_bar,
    write_evidence,
)


@command(
    "scan",
    Opt(("image",), "image", "Disk image: raw, qcow2, vhd, or a tar(.gz) holding disk.raw.", kind=Path),
    POLICY,
    PROFILE,
    REPORT,
    Opt(
        ("--no-verity",),
        "no_verity",
        "Skip recomputing the root hash (quick look; the verity rules are then unknown).",
        switch=True,
    ),
    Opt(("--digest",), "digest", "Hash the whole image file for the target digest.", switch=True),
    EVIDENCE_OPTIONS,
)
def scan_cmd(
    image: Path,
    policy_path: Path | None,
    profile: list[str] | None,
    report: ReportOptions,
    no_verity: bool,
    digest: bool,
    evidence: EvidenceOptions,
) -> None:
    """Check a disk image against the policy: nothing is mounted, nothing from the image runs."""
    from cvmlint.pipeline import judge_image
    from cvmlint.policy import load_waivers
    from cvmlint.scan import ScanOptions

    policy = load_policy(policy_path, profile)
    if not image.exists():
        fail(f"{image}: no such file or directory")
    if image.is_dir():
        fail(f"{image}: is a directory", "scan takes an image file; lint takes a recipe directory")
    options = ScanOptions(verity=not no_verity, digest=digest)
    key, started, inputs = evidence.key(), datetime.now(UTC), None
    waivers = load_waivers(report.waivers) if report.waivers is not None else None
    with progress_bar(True) as progress:
        # one read for the file's and each partition's digests: the bundle and the HTML page show them
        if evidence.evidence is not None or report.wants(OutputFormat.html):
            from cvmlint.evidence.inputs import image_inputs

            inputs = image_inputs(image, progress)
            options.known_digest = inputs["sha256"]
        options.progress = progress
        with judge_image(image, policy, options, waivers) as judged:
            if inputs is not None:
                from cvmlint.evidence.inputs import add_verity

                # the bundle records every fact, those no rule read too (the measurements)
                facts = judged.facts(everything=True) if evidence.evidence is not None else judged.facts("verity")
                inputs = add_verity(inputs, facts)
            if evidence.evidence is not None and inputs is not None:
                write_evidence(
                    evidence.evidence,
                    judged.report,
                    facts,
                    policy,
                    inputs,
                    judged.report.exit_code(*report.gate()),
                    report.waivers,
                    key,
                    started,
                    judged.scanned.root,
                )
    report.finish(judged.report, inputs)
