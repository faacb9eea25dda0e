"""`cvmlint build`: lint, build with mkosi, scan the image, compare the two."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import (
    EVIDENCE_OPTIONS,
    MKOSI,
    POLICY,
    PROFILE,
    RECIPES,
    REPORT,
    EvidenceOptions,
    MkosiOptions,
    OutputFormat,
    ReportOptions,
    pairs,
    print_warnings,
    reporter_for,
    step_display,
    write,
)

if TYPE_CHECKING:
    from cvmlint.build import BuildOutcome, BuildPlan
    from cvmlint.build.mkosi import Progress
    from cvmlint.build.rebuild import RebuildOutcome
    from cvmlint.project import Project


@command(
    "build",
    RECIPES,
    POLICY,
    PROFILE,
    MKOSI,
    REPORT,
    Opt(
        ("--no-gate",),
        "no_gate",
        "Build even when lint fails (a development image; every report says so).",
        switch=True,
    ),
    Opt(
        ("--output-dir",),
        "output_dir",
        "Where mkosi writes the image and cvmlint its reports (default: RECIPE/mkosi.output).",
        kind=Path,
    ),
    Opt(
        ("--mkosi-arg",),
        "mkosi_arg",
        "An extra argument for `mkosi build` (repeatable), e.g. --mkosi-arg=--secure-boot-key=k.pem.",
        many=True,
    ),
    Opt(
        ("--setup",),
        "setup",
        "Make what a first build needs and exit: the build tool root (Debian trixie with mkosi 25; needs root and "
        "the apt mirror) and, for the recipes here, the Secure Boot key (recipes/common/mkosi.key, .crt) and the "
        "CVM kernel (patches/build-kernel.sh) when they are missing.",
        switch=True,
    ),
    Opt(
        ("--check-reproducible",),
        "check_reproducible",
        "Then build it again from the recorded inputs (fresh work directory, the same package versions) and "
        "compare the images (exit 1 when they differ, with where and why).",
        switch=True,
    ),
    Opt(
        ("--boot-check",),
        "boot_check",
        "Boot the built image under QEMU with OVMF (and swtpm) and check its console, as `cvmlint boot` does: "
        "the console and the checks go beside the image and into the evidence; exit 1 when a check fails.",
        switch=True,
    ),
    EVIDENCE_OPTIONS,
)
def build_cmd(
    recipes: list[Path] | None,
    policy_path: Path | None,
    profile: list[str] | None,
    mkosi: MkosiOptions,
    report: ReportOptions,
    no_gate: bool,
    output_dir: Path | None,
    mkosi_arg: list[str] | None,
    setup: bool,
    check_reproducible: bool,
    boot_check: bool,
    evidence: EvidenceOptions,
) -> None:
    """Lint a recipe, build it with mkosi, scan the image with the same policy, and compare the two.

    No image is built when lint fails (unless --no-gate). A rule that passes on the recipe and fails
    on its image (or the reverse) is drift, and fails the build. mkosi is the host's when it is 25 or
    newer, else the one in the build tool root (`cvmlint build --setup`, as root, once).
    """
    from cvmlint.build import BuildPlan, build_recipe
    from cvmlint.build.mkosi import setup as setup_root
    from cvmlint.pipeline import recipe_targets

    if setup:
        _setup(setup_root)
    jobs = recipe_targets(recipes)
    evidence.refuse_one_file_for_several(len(jobs) > 1)
    code, outcomes, shown = 0, [], set[str]()
    key = evidence.key()
    for job in jobs:
        print_warnings(job.project.warnings, shown)
        gate_fail_on, gate_unknown = report.gate(job.project)
        plan = BuildPlan(
            job.directory,
            job.entry,
            mkosi.command_line(job.entry),
            policy_path,
            profile or [],
            not no_gate,
            output_dir,
            mkosi_arg or [],
            report.waivers or job.project.waivers,
            gate_fail_on,
            gate_unknown,
            evidence.destination(job.directory, len(jobs) > 1),
            key,
            boot_check=boot_check,
        )
        warnings: list[str] = []
        with step_display() as progress:
            outcome = build_recipe(plan, job.project, progress, warnings)
            if check_reproducible and outcome.image is not None:
                outcome.rebuild = _rebuild_of(outcome, plan, job.project, progress)
        print_warnings(warnings, shown)
        code = max(code, outcome.exit_code(gate_fail_on, gate_unknown))
        outcomes.append((outcome, plan))
    _emit_builds(outcomes, report)
    raise SystemExit(code)


def _setup(setup_root: Callable[..., Path]) -> NoReturn:
    """The tool root; then, where the shipped recipes are (recipes/common here), the key and the kernel."""
    from cvmlint.build.prepare import cvm_kernel, secure_boot_key

    with step_display("setup") as progress:
        root = setup_root(progress=progress)
    print(f"build tool root: {root}")
    common = Path("recipes/common")
    if not (common / "mkosi.conf").is_file():
        print("no recipes/common/mkosi.conf here: no Secure Boot key or kernel made (run it where the recipes are)")
        raise SystemExit(0)
    key, cert, made = secure_boot_key(common)
    said = "made now: enrol the certificate as MOK or in db" if made else "already there"
    print(f"Secure Boot key: {key}, {cert} ({said})")
    with step_display("setup") as progress:
        kernel, built = cvm_kernel(common, Path("patches/build-kernel.sh"), key, cert, progress)
    print(f"CVM kernel: {kernel} ({'built now' if built else 'already there'})")
    raise SystemExit(0)


def _rebuild_of(outcome: BuildOutcome, plan: BuildPlan, project: Project, progress: Progress) -> RebuildOutcome:
    from cvmlint.build.rebuild import FirstBuild, RebuildOptions, rebuild

    assert outcome.image is not None
    first = FirstBuild(
        outcome.inputs, outcome.image, outcome.sha256, outcome.root_hash, outcome.outputs.get("build summary")
    )
    options = RebuildOptions(None, plan.policy_path, plan.profiles, plan.fail_on, plan.unknown)
    return rebuild(first, project, options, progress)


def _emit_builds(outcomes: list[tuple[BuildOutcome, BuildPlan]], report: ReportOptions) -> None:
    """Each asked format: json the build records, text/table the build view, the CI formats and html the
    reports themselves (the recipe's and, once built, the image's; one page for every build)."""
    import json
    import os
    import sys

    from cvmlint.report.build import build_document, build_text
    from cvmlint.report.interface import render_all

    for fmt, target in pairs(report.fmt, report.output):
        color = target is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        if fmt is OutputFormat.json:
            docs = [build_document(o, p) for o, p in outcomes]
            text = json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n"
        elif fmt in (OutputFormat.text, OutputFormat.table):
            text = "".join(build_text(o, p, reporter_for(fmt, color, report.verbose)) for o, p in outcomes)
        else:
            reports = [
                (r, r.exit_code(p.fail_on, p.unknown))
                for o, p in outcomes
                for r in (o.lint, o.scan)
                if r is not None and (fmt is not OutputFormat.html or r is (o.scan or o.lint))
            ]
            text = render_all(reporter_for(fmt, False, report.verbose), reports)
        write(text, target)
