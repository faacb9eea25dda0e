"""`cvmlint build`: lint a recipe, build it with mkosi, scan the image with the same policy, compare.

    outcome = build_recipe(BuildPlan(Path("recipes/tdx-base"), cli=CommandLine(distribution="debian")), project)
    outcome.exit_code()      # 0 clean; 1 lint failed (nothing built), scan failed or drift; errors raise

The outputs go next to the image: `<image>.lint.json`, `.scan.json`, `.build.json` (verdicts, drift,
package delta, timings), `.roothash`, `.sha256` and `.mkosi.log`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cvmlint.build.drift import Drift, PackageDelta, drift, package_delta
from cvmlint.build.mkosi import (
    BuildError,
    Progress,
    build,
    find_mkosi,
    mkosi_args,
    sandbox_tree,
    summary,
    tool_versions,
)
from cvmlint.facts.model import Build, Facts, System, Verity
from cvmlint.facts.provenance import Items
from cvmlint.policy.loader import Policy
from cvmlint.policy.results import Report
from cvmlint.project import Project, RecipeEntry
from cvmlint.recipe.mkosi import CommandLine

NO_GATE = "built with --no-gate although lint failed: a development image, not a release"


@dataclass
class BuildPlan:
    """What to build and how: the recipe, mkosi's command line, the policy and the gate."""

    directory: Path
    entry: RecipeEntry | None = None
    cli: CommandLine = field(default_factory=CommandLine)
    policy_path: Path | None = None
    profiles: list[str] = field(default_factory=list)
    """Policy profiles given on the command line (added to the recipe's)."""
    gate: bool = True
    output_dir: Path | None = None
    mkosi_args: list[str] = field(default_factory=list)
    waivers: Path | None = None
    fail_on: str = "low"
    unknown: str = "fail"
    evidence: Path | None = None
    """Write the scan's evidence bundle there (a directory or FILE.tar)."""
    sign_key: Any = None
    """The SigningKey that signs it, or None (unsigned)."""
    pinned: Path | None = None
    """A rebuild: the directory of the recorded packages, the only ones mkosi is offered."""
    boot_check: bool = False
    """Boot the image under QEMU (cvmlint.bootcheck) before the scan; its console goes into the evidence."""


@dataclass
class BuildOutcome:
    """Everything one build produced."""

    lint: Report
    policy: Policy
    gated: bool = False
    """Lint failed and the gate held: nothing was built."""
    image: Path | None = None
    scan: Report | None = None
    drift: list[Drift] = field(default_factory=list)
    packages: PackageDelta | Any = None
    seconds: float = 0.0
    size: int = 0
    sha256: str = ""
    root_hash: str = ""
    mkosi: str = ""
    outputs: dict[str, Path] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    """What the build was made from (see `record_inputs`): what a rebuild needs."""
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each phase: lint, mkosi, record, evidence inputs, scan, evidence bundle."""
    rebuild: Any = None
    """The RebuildOutcome of `--check-reproducible`."""
    boot: Any = None
    """The BootCheck of `--boot-check`."""

    def exit_code(self, fail_on: str = "low", unknown: str = "fail") -> int:
        codes = [self.lint.exit_code(fail_on, unknown) if self.gated else 0]
        if self.scan is not None:
            codes.append(self.scan.exit_code(fail_on, unknown))
        if self.drift:
            codes.append(1)
        if self.rebuild is not None:
            codes.append(self.rebuild.exit_code())
        if self.boot is not None:
            codes.append(self.boot.exit_code())
        return max(codes)


def lint_recipe(
    plan: BuildPlan, project: Project, warnings: list[str], read: list[Path] | None = None
) -> tuple[Report, Facts, Policy]:
    """The lint half, as `cvmlint lint` judges the recipe; `read` receives every recipe file read."""
    from cvmlint.pipeline import RecipeJob
    from cvmlint.pipeline import lint_recipe as judge

    job = RecipeJob(plan.directory, plan.entry, plan.cli, plan.policy_path, plan.profiles, plan.waivers, project)
    return judge(job, warnings, read)


def build_recipe(
    plan: BuildPlan, project: Project, progress: Progress = lambda step: None, warnings: list[str] | None = None
) -> BuildOutcome:
    """Lint, then (unless the gate holds) build with mkosi, scan and compare."""
    warnings = warnings if warnings is not None else []
    read: list[Path] = []
    clock = time.monotonic()
    lint, recipe_facts, policy = lint_recipe(plan, project, warnings, read)
    outcome = BuildOutcome(lint=lint, policy=policy)
    outcome.timings["lint"] = time.monotonic() - clock
    if lint.exit_code(plan.fail_on, plan.unknown) != 0:
        if plan.gate:
            outcome.gated = True
            return outcome
        lint.notes.append(NO_GATE)
    fmt = recipe_facts.build.format if isinstance(recipe_facts.build, Build) else "disk"
    if fmt != "disk":
        raise BuildError(
            f"{plan.directory}: Format={fmt}: cvmlint build builds disk images (Format=disk), which it can scan"
        )
    mkosi = find_mkosi()
    outcome.mkosi = f"mkosi {mkosi.version}" + (f" in {mkosi.root}" if mkosi.root else " (host)")
    output_dir = (plan.output_dir or plan.directory / "mkosi.output").resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cvmlint-build-") as tmp:
        system = recipe_facts.os if isinstance(recipe_facts.os, System) else None
        sandbox = sandbox_tree(
            Path(tmp) / "sandbox",
            _text(system.distribution if system else None),
            _text(system.release if system else None),
            pinned=plan.pinned is not None,
        )
        # A package cache of the build's own: what apt downloads for it is what it installed.
        cache = Path(tmp) / "packages"
        own = [f"--package-cache-directory={cache}"]
        if plan.pinned is not None:
            own.append(f"--package-directory={plan.pinned.resolve()}")
        args = mkosi_args(plan.directory.resolve(), plan.cli, output_dir, sandbox, [*own, *plan.mkosi_args])
        binds = [_recipe_root(plan.directory, project), output_dir, Path(tmp)]
        binds += [plan.pinned.resolve()] if plan.pinned is not None else []
        about = summary(mkosi, args, binds)
        if about.get("CompressOutput") not in (None, "none"):
            raise BuildError(
                f"CompressOutput={about['CompressOutput']}: cvmlint build scans the disk image mkosi "
                "writes; build it uncompressed (CompressOutput=none) and compress it afterwards"
            )
        image = output_dir / f"{about['Output']}.raw"
        # NOTE: not named after the image: `mkosi --force` removes files that are
        log = output_dir / f"build-{about['Output']}.mkosi.log"
        outcome.outputs["mkosi log"] = log
        outcome.seconds = build(mkosi, args, binds, log, progress)
        outcome.timings["mkosi"] = outcome.seconds
        progress("recording the packages the build used")
        clock = time.monotonic()
        outcome.inputs = record_inputs(plan, recipe_facts, read, cache, about, outcome.mkosi)
        outcome.inputs["tools"] = tool_versions(mkosi)
        outcome.timings["record"] = time.monotonic() - clock
    if not image.is_file():
        raise BuildError(
            f"mkosi finished, but the image it names ({image}) is not there; its log: {outcome.outputs['mkosi log']}"
        )
    outcome.image = image
    if plan.boot_check:
        _boot(outcome, progress)
    _scan(outcome, plan, recipe_facts, progress)
    _write_outputs(outcome, plan)
    return outcome


def record_inputs(
    plan: BuildPlan, facts: Facts, read: list[Path], cache: Path, about: dict[str, Any], mkosi: str
) -> dict[str, Any]:
    """What a rebuild needs: the recipe and how mkosi was run, every recipe file read with its digest,
    and every package with its version and digest (see cvmlint.build.pinned)."""
    from cvmlint.build.pinned import as_json, record
    from cvmlint.evidence.inputs import recipe_inputs

    dirs = [Path(str(d)) for d in about.get("PackageDirectories") or [] if Path(str(d)).is_dir()]
    recipe_dirs = [d for d in dirs if plan.pinned is None or d.resolve() != plan.pinned.resolve()]
    system = facts.os if isinstance(facts.os, System) else None
    return {
        "schema": "cvmlint.build-inputs/1",
        "recipe": str(plan.directory),
        "gate": plan.gate,
        "distribution": _text(system.distribution if system else None),
        "release": _text(system.release if system else None),
        "command_line": {
            "distribution": plan.cli.distribution,
            "release": plan.cli.release,
            "architecture": plan.cli.architecture,
            "profiles": list(plan.cli.profiles),
            "mkosi_args": list(plan.mkosi_args),
        },
        "mkosi": mkosi,
        "seed": str(about.get("Seed") or ""),
        "source_date_epoch": about.get("SourceDateEpoch"),
        "files": recipe_inputs(str(plan.directory), read + _tree_files(facts), Path.cwd())["files"],
        "packages": as_json(record([cache, *([plan.pinned] if plan.pinned else [])], recipe_dirs, Path.cwd())),
    }


def _tree_files(facts: Facts) -> list[Path]:
    """The files of the recipe's extra and skeleton trees, repart directories and scripts (paths as shown,
    relative to the working directory), sorted: inputs the recipe reader need not read."""
    if not isinstance(facts.build, Build):
        return []
    b = facts.build
    roots = [Path(t.split(":")[0]) for t in (*b.extra_trees, *b.skeleton_trees)] + [
        Path(d) for d in b.repart_directories
    ]
    files = [p for root in roots if root.is_dir() for p in sorted(root.rglob("*")) if p.is_file()]
    return files + [Path(s) for s in b.scripts if Path(s).is_file()]


def _boot(outcome: BuildOutcome, progress: Progress) -> None:
    """Boot the image and keep its console and the checks beside it (and, later, in the evidence)."""
    from cvmlint.bootcheck import boot_check

    assert outcome.image is not None
    base = outcome.image.with_suffix("")
    progress("booting the image (QEMU, OVMF, swtpm) to check its console")
    clock = time.monotonic()
    outcome.boot = boot_check(outcome.image, base.with_suffix(".boot.log"))
    report = base.with_suffix(".boot.json")
    report.write_text(json.dumps(outcome.boot.to_json(), indent=2) + "\n", encoding="utf-8")
    outcome.outputs["boot console"], outcome.outputs["boot report"] = outcome.boot.log, report
    outcome.timings["boot"] = time.monotonic() - clock


def _boot_evidence(outcome: BuildOutcome) -> dict[str, bytes]:
    if outcome.boot is None:
        return {}
    return {
        "boot/serial.log": outcome.boot.log.read_bytes(),
        "boot/report.json": (json.dumps(outcome.boot.to_json(), indent=2, sort_keys=True) + "\n").encode(),
    }


def _package_origins(delta: Any, image: Facts) -> dict[str, Any]:
    """The image's packages by origin: named by the recipe, or pulled in as dependencies (for the report)."""
    if not isinstance(delta, PackageDelta) or not isinstance(image.packages, Items):
        return {}
    pulled = {name for name, _ in delta.undeclared}
    names = sorted({p.name for p in image.packages})
    return {"package_origins": {"declared": [n for n in names if n not in pulled], "pulled_in": sorted(pulled)}}


def _scan(outcome: BuildOutcome, plan: BuildPlan, recipe_facts: Facts, progress: Progress) -> None:
    from cvmlint import limits
    from cvmlint.pipeline import judge_image
    from cvmlint.policy import load_waivers
    from cvmlint.scan import ScanOptions

    assert outcome.image is not None
    progress("scanning the image (verity recomputed)")
    limits.start_clock()  # the budget is the scan's, not the build's
    options = ScanOptions(verity=True, digest=True)
    started, inputs = datetime.now(UTC), None
    if plan.evidence is not None:
        from cvmlint.evidence.inputs import image_inputs

        clock = time.monotonic()
        inputs = image_inputs(outcome.image)
        options.digest, options.known_digest = False, inputs["sha256"]
        outcome.timings["evidence inputs"] = time.monotonic() - clock
    clock = time.monotonic()
    waivers = load_waivers(plan.waivers) if plan.waivers is not None else None
    with judge_image(outcome.image, outcome.policy, options, waivers) as judged:
        scan = judged.report
        scan.profile_sources, scan.config = outcome.lint.profile_sources, outcome.lint.config
        if outcome.lint.notes:
            scan.notes += outcome.lint.notes
        image_facts = judged.facts("verity", everything=plan.evidence is not None)
        outcome.scan = scan
        outcome.drift = drift(outcome.policy, outcome.lint, scan, recipe_facts, image_facts)
        outcome.packages = package_delta(recipe_facts, image_facts)
        digest = image_facts.target.digest
        outcome.sha256 = digest.removeprefix("sha256:") if isinstance(digest, str) else ""
        verity = image_facts.verity
        outcome.root_hash = verity.root_hash if isinstance(verity, Verity) and isinstance(verity.root_hash, str) else ""
        outcome.timings["scan"] = time.monotonic() - clock
        if plan.evidence is not None and inputs is not None:
            clock = time.monotonic()
            from cvmlint.evidence.bundle import Evidence, write_bundle
            from cvmlint.evidence.inputs import add_verity

            write_bundle(
                plan.evidence,
                Evidence(
                    scan,
                    image_facts,
                    outcome.policy,
                    add_verity(inputs, image_facts)
                    | ({"build": outcome.inputs} if outcome.inputs else {})
                    | _package_origins(outcome.packages, image_facts),
                    scan.exit_code(plan.fail_on, plan.unknown),
                    plan.waivers,
                    started,
                    extra=_boot_evidence(outcome),
                    root=judged.scanned.root,
                ),
                plan.sign_key,
            )
            outcome.outputs["evidence"] = plan.evidence.resolve()
            outcome.timings["evidence bundle"] = time.monotonic() - clock
    outcome.size = outcome.image.stat().st_size


def _write_outputs(outcome: BuildOutcome, plan: BuildPlan) -> None:
    from cvmlint.report.json import report_to_json

    assert outcome.image is not None and outcome.scan is not None
    base = outcome.image.with_suffix("")
    files = {
        "lint report": (
            base.with_suffix(".lint.json"),
            json.dumps(report_to_json(outcome.lint, outcome.lint.exit_code(plan.fail_on, plan.unknown)), indent=2)
            + "\n",
        ),
        "scan report": (
            base.with_suffix(".scan.json"),
            json.dumps(report_to_json(outcome.scan, outcome.scan.exit_code(plan.fail_on, plan.unknown)), indent=2)
            + "\n",
        ),
        "sha256": (base.with_suffix(".sha256"), f"{outcome.sha256}  {outcome.image.name}\n"),
        "build summary": (base.with_suffix(".build.json"), json.dumps(build_json(outcome, plan), indent=2) + "\n"),
    }
    if outcome.root_hash:
        files["root hash"] = (base.with_suffix(".roothash"), outcome.root_hash + "\n")
    for name, (path, _text) in files.items():  # every output named before the record that lists them is made
        outcome.outputs[name] = path
    files["build summary"] = (files["build summary"][0], json.dumps(build_json(outcome, plan), indent=2) + "\n")
    for path, text in files.values():
        path.write_text(text, encoding="utf-8")


def build_json(outcome: BuildOutcome, plan: BuildPlan) -> dict[str, Any]:
    """The build's own record: verdicts, image, drift, package delta."""
    packages: Any = None
    if isinstance(outcome.packages, PackageDelta):
        packages = {
            "undeclared": [{"name": n, "version": v} for n, v in outcome.packages.undeclared],
            "missing": [{"name": n, "declared_at": w} for n, w in outcome.packages.missing],
        }
    elif outcome.packages is not None:
        packages = {"unknown": str(outcome.packages.reason)}
    return {
        "schema": "cvmlint.build/1",
        "recipe": str(plan.directory),
        "gate": plan.gate,
        "gated": outcome.gated,
        "notes": outcome.lint.notes,
        "lint": outcome.lint.summary(),
        "scan": outcome.scan.summary() if outcome.scan else None,
        "image": {
            "path": str(outcome.image),
            "size": outcome.size,
            "sha256": outcome.sha256,
            "root_hash": outcome.root_hash,
        }
        if outcome.image
        else None,
        "mkosi": outcome.mkosi,
        "build_seconds": round(outcome.seconds, 1),
        "timings": {phase: round(seconds, 1) for phase, seconds in outcome.timings.items()},
        "drift": [d.__dict__ | {"recipe": d.recipe.value, "image": d.image.value} for d in outcome.drift],
        "packages": packages,
        "boot": outcome.boot.to_json() if outcome.boot is not None else None,
        "exit_code": outcome.exit_code(plan.fail_on, plan.unknown),
        "outputs": {k: str(v) for k, v in outcome.outputs.items()},
        "inputs": outcome.inputs or None,
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _recipe_root(directory: Path, project: Project) -> Path:
    """What mkosi in a tool root must see: the project (recipes include each other), else the recipe's parent."""
    directory = directory.resolve()
    root = project.root.resolve()
    return root if directory.is_relative_to(root) and root != Path("/") else directory.parent


__all__ = ["BuildError", "BuildOutcome", "BuildPlan", "build_recipe", "lint_recipe"]
