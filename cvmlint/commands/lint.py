"""`cvmlint lint`: check mkosi recipes against the policy before anything is built."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    ReportOptions,
    fail,
    print_warnings,
    write_evidence,
)

if TYPE_CHECKING:
    from cvmlint.policy.results import Report

TRUSTED_REF = Opt(
    ("--trusted-ref",),
    "trusted_ref",
    "Read the policy, its data files, the waivers and cvmlint.toml as this git ref has them (a pull "
    "request's base, e.g. origin/main); the recipes from the working tree.",
    metavar="REF",
)


@command("lint", RECIPES, POLICY, PROFILE, MKOSI, REPORT, TRUSTED_REF, EVIDENCE_OPTIONS)
def lint_cmd(
    recipes: list[Path] | None,
    policy_path: Path | None,
    profile: list[str] | None,
    mkosi: MkosiOptions,
    report: ReportOptions,
    trusted_ref: str | None,
    evidence: EvidenceOptions,
) -> None:
    """Check mkosi recipes against the policy, before anything is built: findings at file:line.

    Policy profiles are the operator's choice: those cvmlint.toml names for the recipe, those the mkosi
    profiles it or --mkosi-profile selects imply ([mkosi-profile-implies]), and --profile; never what the
    recipe selects by itself. cvmlint.toml is the one at the top of the recipe's git repository (else the
    nearest above it); with --trusted-ref, it, the policy and the waivers are read as that ref has them.
    Recipes are read as mkosi 26 and later read them (tested against mkosi 25.3 and 27.1); a warning marks
    what mkosi 25 reads otherwise.
    """
    from cvmlint.pipeline import lint_recipe, recipe_targets
    from cvmlint.pipeline import trusted_ref as trusted_tree
    from cvmlint.policy import load_waivers

    with trusted_tree(trusted_ref) as trusted:
        jobs = recipe_targets(recipes, trusted)
        evidence.refuse_one_file_for_several(len(jobs) > 1)
        given_policy = trusted.path(policy_path) if trusted and policy_path else policy_path
        given_waivers = trusted.path(report.waivers) if trusted and report.waivers else report.waivers
        if given_waivers is not None and not given_waivers.is_file():
            fail(f"{report.waivers}: no such waivers file" + (f" at {trusted_ref}" if trusted else ""))
        scored: list[tuple[Report, int]] = []
        shown: set[str] = set()
        key = evidence.key()
        read_waivers: dict[Path, Any] = {}  # each waivers file read once for every recipe
        for job in jobs:
            print_warnings(job.project.warnings, shown)
            job.cli = mkosi.command_line(job.entry)
            job.policy_path, job.profiles = given_policy, profile or []
            job.waivers = given_waivers or job.project.waivers
            if job.waivers is not None and job.waivers not in read_waivers:
                read_waivers[job.waivers] = load_waivers(job.waivers)
            started, read, warnings = datetime.now(UTC), list[Path](), list[str]()
            try:
                judged, facts, policy = lint_recipe(job, warnings, read, read_waivers.get(job.waivers or Path()))
            finally:  # what reading the recipe found is said even when its policy cannot be loaded
                print_warnings(warnings, shown)
            code = judged.exit_code(*report.gate(job.project))
            scored.append((judged, code))
            dest = evidence.destination(job.directory, len(jobs) > 1)
            if dest is not None:
                from cvmlint.evidence.inputs import recipe_inputs

                inputs = recipe_inputs(judged.target.name, read, Path.cwd())
                write_evidence(dest, judged, facts, policy, inputs, code, job.waivers, key, started)
    report.emit(scored)
    raise SystemExit(max(code for _, code in scored))
