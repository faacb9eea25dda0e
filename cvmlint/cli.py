"""The `cvmlint` command line. Heavy modules are imported inside the commands."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, assert_never

from cvmlint import __version__
from cvmlint.cliargs import GROUPS, FormatAction, Opt, OutputAction, build_parser, command
from cvmlint.errors import CvmlintError
from cvmlint.severity import Severity

if TYPE_CHECKING:
    from cvmlint.facts.model import Facts
    from cvmlint.policy.loader import Policy
    from cvmlint.policy.results import Report
    from cvmlint.report.interface import Reporter

GROUPS["policy"] = "Check, explain and test policies."
GROUPS["evidence"] = "Make, verify, replay and compare evidence bundles."


class OutputFormat(enum.StrEnum):
    """Result formats."""

    text = "text"
    table = "table"
    json = "json"
    html = "html"
    sarif = "sarif"
    junit = "junit"
    github = "github"
    gitlab = "gitlab"


class UnknownMode(enum.StrEnum):
    """How unknown results count."""

    fail = "fail"
    warn = "warn"


def reporter_for(fmt: OutputFormat, color: bool, verbose: bool = False) -> Reporter:
    """The reporter of one output format."""
    from cvmlint.report import JsonReporter, TableReporter

    if fmt is OutputFormat.text:
        from cvmlint.report.text import TextReporter

        return TextReporter(color=color, verbose=verbose)
    if fmt is OutputFormat.table:
        return TableReporter(color=color)
    if fmt is OutputFormat.json:
        return JsonReporter()
    if fmt is OutputFormat.junit:
        from cvmlint.report.junit import JunitReporter

        return JunitReporter()
    if fmt is OutputFormat.github:
        from cvmlint.report.github import GithubReporter

        return GithubReporter()
    if fmt is OutputFormat.gitlab:
        from cvmlint.report.gitlab import GitlabReporter

        return GitlabReporter()
    if fmt is OutputFormat.html:
        from cvmlint.report.html import HtmlReporter

        return HtmlReporter()
    if fmt is OutputFormat.sarif:
        from cvmlint.report.sarif import SarifReporter

        return SarifReporter()
    assert_never(fmt)


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def fail(message: str, tip: str = "") -> NoReturn:
    """Print an error (and a tip) to stderr and exit 2."""
    _err(f"cvmlint: error: {message}")
    if tip:
        _err(f"Tip: {tip}")
    raise SystemExit(2)


TOP_OPTIONS = (
    Opt(
        ("--limit",),
        "limit",
        "Raise (or lower) a resource limit, e.g. kernel-bytes=512M; repeat for several. `cvmlint limits` lists them.",
        many=True,
        metavar="NAME=VALUE",
    ),
    Opt(
        ("--timeout",),
        "timeout",
        "Wall-clock budget of a scan or lint (default 900): past it, what is unfinished is unknown with that reason.",
        kind=int,
        metavar="SECONDS",
    ),
)


def _configure(limit: list[str] | None, timeout: int | None) -> None:
    from cvmlint import limits

    if limit:
        limits.configure(limits.parse_options(limit), "--limit")
    if timeout is not None:
        limits.configure({"timeout": timeout}, "--timeout")
    limits.start_clock()


@command("limits")
def limits_cmd() -> None:
    """List the resource limits: name, value, what it bounds, and the largest real value seen."""
    from cvmlint import limits

    print(limits.render(), end="")


# ---- shared option types -------------------------------------------------------------------

POLICY = Opt(("--policy", "-p"), "policy_path", "Policy file (default: the shipped cvm-baseline).", kind=Path)
PROFILE = Opt(("--profile",), "profile", "Policy profile to apply; repeat to combine (e.g. tdx-gpu, dev).", many=True)
FORMAT = Opt(
    ("--format", "-f"),
    "fmt",
    "Result format (default text); repeat it, each followed by its own --output, to write several: "
    "-f sarif -o cvmlint.sarif -f text.",
    kind=OutputFormat,
    many=True,
    action=FormatAction,
)
FILE_OUTPUT = Opt(("--output", "-o"), "output", "Write to this file instead of standard output.", kind=Path)
VERBOSE = Opt(
    ("--verbose", "-v"), "verbose", "List every rule in the text view, not only what needs attention.", switch=True
)
FAIL_ON = Opt(
    ("--fail-on",),
    "fail_on",
    "Lowest severity whose failure makes the exit code 1 (default: cvmlint.toml's fail-on for lint and build, "
    "else low).",
    kind=Severity,
)
UNKNOWN = Opt(
    ("--unknown",),
    "unknown",
    "Whether unknown results fail the run (fail, the default; for lint and build cvmlint.toml's unknown) or "
    "only show (warn).",
    kind=UnknownMode,
)
WAIVERS = Opt(("--waivers",), "waivers", "TOML file of approved, expiring waivers.", kind=Path)
OUTPUT = Opt(
    ("--output", "-o"),
    "output",
    "Write the report of the --format just before it to this file instead of standard output.",
    kind=Path,
    many=True,
    action=OutputAction,
)
MKOSI_PROFILE = Opt(
    ("--mkosi-profile",),
    "mkosi_profile",
    "mkosi profile to select, as `mkosi --profile` (repeatable; added to those cvmlint.toml names).",
    many=True,
)
DISTRIBUTION = Opt(
    ("--distribution", "-d"),
    "distribution",
    "Distribution, as `mkosi -d`, for a recipe that leaves it to the command line.",
)
RELEASE = Opt(("--release", "-r"), "release", "Release, as `mkosi -r`.")
ARCHITECTURE = Opt(("--architecture",), "architecture", "Architecture, as `mkosi --architecture` (x86-64, arm64, …).")
HOST_ARCHITECTURE = Opt(
    ("--host-architecture",),
    "host_architecture",
    "The build host's architecture, for [Match] HostArchitecture= (else unknown).",
)
MKOSI_OPTIONS = (MKOSI_PROFILE, DISTRIBUTION, RELEASE, ARCHITECTURE, HOST_ARCHITECTURE)
REPORT_OPTIONS = (FORMAT, VERBOSE, FAIL_ON, UNKNOWN, WAIVERS, OUTPUT)
EVIDENCE = Opt(
    ("--evidence",),
    "evidence",
    "Write an evidence bundle there: a directory, or one FILE.tar (see `cvmlint evidence --help`).",
    kind=Path,
)
SIGN_KEY = Opt(
    ("--sign-key",),
    "sign_key",
    "PEM private key (Ed25519 or ECDSA P-256) that signs the evidence (`cvmlint evidence keygen`).",
    kind=Path,
)
RECIPES = Opt(
    ("recipes",),
    "recipes",
    "mkosi recipe directories (default: every recipe cvmlint.toml lists).",
    kind=Path,
    many=True,
)


def _print_warnings(warnings: list[str], shown: set[str]) -> None:
    for warning in warnings:
        if warning not in shown:
            shown.add(warning)
            _err(warning)


def _load_policy(path: Path | None, profiles: list[str] | None) -> Policy:
    from cvmlint._resources import default_policy_path
    from cvmlint.policy import load_policy

    return load_policy(path or default_policy_path(), profiles or ())


def _write(text: str, output: Path | None) -> None:
    # NOTE: the output file is opened only now, after the work succeeded, so a failed run never
    # leaves a truncated report behind.
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8", errors="backslashreplace")  # a name an image chose may not be UTF-8
    except OSError as err:
        fail(f"cannot write {output}: {err.strerror}")


def emit(
    scored: list[tuple[Report, int]],
    formats: list[OutputFormat] | None,
    outputs: list[Path | None] | None,
    verbose: bool = False,
) -> None:
    """Write every report in each asked format: each --output takes the --format before it, the others go
    to standard output (so one run can write SARIF for the machine and the text view for a person)."""
    from cvmlint.report.interface import render_all

    for fmt, target in _pairs(formats, outputs):
        color = target is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        _write(render_all(reporter_for(fmt, color, verbose), scored), target)


def _pairs(
    formats: list[OutputFormat] | None, outputs: list[Path | None] | None
) -> list[tuple[OutputFormat, Path | None]]:
    """Each asked format with its file (None: standard output); text alone when none was asked."""
    formats = formats or [OutputFormat.text]
    outputs = outputs or []
    return [(fmt, outputs[i] if i < len(outputs) else None) for i, fmt in enumerate(formats)]


def finish(
    report: Report,
    formats: list[OutputFormat] | None,
    fail_on: Severity | None,
    unknown: UnknownMode | None,
    waivers: Path | None,
    outputs: list[Path | None] | None,
    waived: bool = False,
    verbose: bool = False,
) -> NoReturn:
    """Apply waivers (unless already applied), write the reports, exit with the code the report earns."""
    from cvmlint.policy import apply_waivers, load_waivers

    if waivers is not None and not waived:
        apply_waivers(report, load_waivers(waivers))
    code = report.exit_code(*_gate(fail_on, unknown, None))
    emit([(report, code)], formats, outputs, verbose)
    raise SystemExit(code)


def _signing_key(path: Path | None) -> Any:
    if path is None:
        return None
    from cvmlint.evidence.dsse import load_signing_key

    return load_signing_key(path)


def _write_evidence(
    dest: Path,
    report: Report,
    facts: Facts,
    policy: Policy,
    inputs: dict[str, Any],
    code: int,
    waivers: Path | None,
    key: Any,
    started: Any,
) -> None:
    from cvmlint.evidence.bundle import Evidence, write_bundle

    write_bundle(dest, Evidence(report, facts, policy, inputs, code, waivers, started), key)
    _err(f"cvmlint: evidence: {dest} ({f'signed by key {key.keyid[:16]}…' if key else 'UNSIGNED: no --sign-key'})")


# ---- policy commands -----------------------------------------------------------------------


def _policy_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.cvmp"))
            if not found:
                fail(f"{p}: no *.cvmp policy files in this directory")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            fail(f"{p}: no such file or directory")
    return out


@command(
    "policy check",
    Opt(
        ("paths",),
        "paths",
        "Policy files, or directories of *.cvmp files (default: the shipped policies).",
        kind=Path,
        many=True,
    ),
    Opt(("--quiet", "-q"), "quiet", "Print only problems.", switch=True),
)
def policy_check(paths: list[Path], quiet: bool) -> None:
    """Parse and check policies (syntax, fact names, types, rules, every profile)."""
    from cvmlint._resources import policies_dir
    from cvmlint.policy import load_policy

    problems = 0
    for path in _policy_files(paths or [policies_dir()]):
        try:
            policy = load_policy(path)  # checks every profile too
        except CvmlintError as err:
            _err(err.diagnostics())
            problems += 1
            continue
        for warning in policy.warnings:
            _err(warning.render())
        if not quiet:
            print(
                f"{path}: ok: policy {policy.name} {policy.version}, {len(policy.rules)} rules, "
                f"{len(policy.available_profiles)} profiles ({', '.join(policy.available_profiles) or '-'})"
            )
    raise SystemExit(2 if problems else 0)


@command("policy explain", Opt(("rule_id",), "rule_id", "Rule id, e.g. CVM-FS-001."), POLICY, PROFILE)
def policy_explain(rule_id: str, policy_path: Path | None, profile: list[str] | None) -> None:
    """Show a rule: metadata, rationale, remediation, and which facts it reads."""
    from cvmlint.policy.explain import explain_rule

    policy = _load_policy(policy_path, profile)
    text = explain_rule(policy, rule_id)
    if text is None:
        import difflib

        ids = {r.id.upper(): r.id for r in policy.rules}
        close = [ids[c] for c in difflib.get_close_matches(rule_id.upper(), list(ids), n=1)]
        fail(
            f"policy {policy.name} has no rule {rule_id}",
            f"did you mean {close[0]}?" if close else "`cvmlint policy explain --help`",
        )
    print(text)


@command(
    "policy diff",
    Opt(("base",), "base", "The git ref the change starts from (a pull request's base, e.g. origin/main)."),
    Opt(("head",), "head", "The git ref it ends at (default: the working tree).", optional=True),
    Opt(("--policy", "-p"), "policy_path", "The policy file, if cvmlint.toml names none.", kind=Path),
    Opt(("--waivers",), "waivers", "The waivers file, if cvmlint.toml names none.", kind=Path),
    FORMAT,
    VERBOSE,
    OUTPUT,
)
def policy_diff(
    base: str,
    head: str | None,
    policy_path: Path | None,
    waivers: Path | None,
    fmt: list[OutputFormat] | None,
    verbose: bool,
    output: list[Path | None] | None,
) -> None:
    """What a change does to the gate: the policy, its allowlists, the waivers and cvmlint.toml at BASE
    and at HEAD. Every change that can weaken the gate is a finding at its file and line on the new side
    (exit 1: a deliberate policy change then needs a reviewer); a change that only tightens is a note."""
    import os
    import tempfile

    from cvmlint import git
    from cvmlint.gatediff import diff_gate, load_side, report_of

    top = git.require_repository(Path.cwd(), f"policy diff {base}")
    given = [os.path.relpath(p.resolve(), top) if p else None for p in (policy_path, waivers)]
    with tempfile.TemporaryDirectory(prefix="cvmlint-diff-") as tmp:
        sides = []
        for ref in (base, head):
            if ref is None:
                sides.append(load_side(top, "working tree", *given))
                continue
            commit = git.commit_of(top, ref)
            tree = Path(tmp) / str(len(sides))
            git.export_tree(top, commit, tree)
            sides.append(load_side(tree, f"{ref} ({commit[:12]})", *given))
        report = report_of(diff_gate(sides[0], sides[1]), sides[0], sides[1], top)
    code = 1 if any(r.findings for r in report.results) else 0
    emit([(report, code)], fmt, output, verbose)
    raise SystemExit(code)


@command("policy rules", POLICY)
def policy_rules(policy_path: Path | None) -> None:
    """Every rule of the policy as Markdown (docs/rules.md; SARIF's helpUri points into it)."""
    from cvmlint.policy.explain import rules_markdown

    print(rules_markdown(_load_policy(policy_path, None)), end="")


@command("policy facts")
def policy_facts() -> None:
    """List every fact a policy can read, with its type and meaning."""
    from cvmlint.policy.explain import fact_catalogue

    print(fact_catalogue())


@command(
    "policy test",
    Opt(
        ("directory",),
        "directory",
        "Folder of *.toml fixture files (default: the shipped policies/tests).",
        kind=Path,
        optional=True,
    ),
    Opt(("--strict",), "strict", "Also fail when a rule lacks a pass or a fail fixture.", switch=True),
)
def policy_test(directory: Path | None, strict: bool) -> None:
    """Run policy unit tests: fact fixtures with the expected result per rule."""
    from cvmlint._resources import policies_dir
    from cvmlint.policy.testing import run_fixture_dir

    summary = run_fixture_dir(directory or policies_dir() / "tests")
    print(summary.render())
    raise SystemExit(summary.exit_code(strict))


# ---- facts and check -----------------------------------------------------------------------


def _is_facts_json(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(64).lstrip().startswith(b"{")


def load_target(target: Path) -> Facts:
    """Facts saved as JSON (images and recipes are read by `scan` and `lint`)."""
    from cvmlint.facts import load_facts_file

    if not target.exists():
        fail(f"{target}: no such file or directory")
    if target.is_dir():
        fail(f"{target}: is a directory", "`cvmlint lint` reads recipes; `check` takes a facts JSON file")
    return load_facts_file(target)


PROGRESS_FROM = 256 << 20
"""Reads shorter than this show no progress bar."""


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr for each long read (hashing the root, digesting the image), or nothing
    when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TimeRemainingColumn, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(what: str, done: int, total: int) -> None:
            if total < PROGRESS_FROM:
                return
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update


@command(
    "facts",
    Opt(
        ("target",),
        "target",
        "A disk image (raw, qcow2, vhd, tar.gz), an mkosi recipe directory or a facts JSON file.",
        kind=Path,
    ),
    Opt(("--json",), "as_json", "Print the facts as JSON (cvmlint.facts/1).", switch=True),
    Opt(("--no-verity",), "no_verity", "Do not recompute the root hash.", switch=True),
    POLICY,
    FILE_OUTPUT,
    *MKOSI_OPTIONS,
)
def facts_cmd(
    target: Path,
    as_json: bool,
    no_verity: bool,
    policy_path: Path | None,
    output: Path | None,
    mkosi_profile: list[str] | None,
    distribution: str | None,
    release: str | None,
    architecture: str | None,
    host_architecture: str | None,
) -> None:
    """Print the facts a target yields (the kernel is searched for the policy's marker strings).

    For a recipe, the mkosi options say how mkosi would be run on it.
    """
    from cvmlint.facts import dump_facts
    from cvmlint.facts.summary import summarise

    if target.exists() and target.is_file() and _is_facts_json(target):
        facts = load_target(target)
        _write(dump_facts(facts) if as_json else summarise(facts), output)
        return
    if target.is_dir():
        from cvmlint.pipeline import command_line
        from cvmlint.project import find_project
        from cvmlint.recipe.facts import recipe_facts

        project = find_project(Path.cwd(), target)
        entry = project.entry_for(target)
        cli = command_line(entry, mkosi_profile, distribution, release, architecture, host_architecture)
        facts, warnings = recipe_facts(target, entry, cli, Path.cwd(), implies=project.implies)
        _print_warnings(project.warnings + warnings, set())
        _write(dump_facts(facts) if as_json else summarise(facts), output)
        return
    from cvmlint.policy.probes import kernel_needles
    from cvmlint.scan import ScanOptions, scan_image

    needles = kernel_needles(_load_policy(policy_path, None))
    if not target.exists():
        fail(f"{target}: no such file or directory")
    with (
        _progress_bar(not no_verity) as progress,
        scan_image(target, ScanOptions(verity=not no_verity, needles=needles, progress=progress)) as facts,
    ):
        _write(dump_facts(facts) if as_json else summarise(facts), output)


@command(
    "scan",
    Opt(("image",), "image", "Disk image: raw, qcow2, vhd, or a tar(.gz) holding disk.raw.", kind=Path),
    POLICY,
    PROFILE,
    *REPORT_OPTIONS,
    Opt(
        ("--no-verity",),
        "no_verity",
        "Skip recomputing the root hash (quick look; the verity rules are then unknown).",
        switch=True,
    ),
    Opt(("--digest",), "digest", "Hash the whole image file for the target digest.", switch=True),
    EVIDENCE,
    SIGN_KEY,
)
def scan_cmd(
    image: Path,
    policy_path: Path | None,
    profile: list[str] | None,
    fmt: list[OutputFormat] | None,
    verbose: bool,
    fail_on: Severity | None,
    unknown: UnknownMode | None,
    waivers: Path | None,
    output: list[Path | None] | None,
    no_verity: bool,
    digest: bool,
    evidence: Path | None,
    sign_key: Path | None,
) -> None:
    """Check a disk image against the policy: nothing is mounted, nothing from the image runs."""
    from cvmlint.policy import evaluate
    from cvmlint.policy.probes import kernel_needles
    from cvmlint.scan import ScanOptions, open_scan

    policy = _load_policy(policy_path, profile)
    if not image.exists():
        fail(f"{image}: no such file or directory")
    if image.is_dir():
        fail(f"{image}: is a directory", "scan takes an image file; lint takes a recipe directory")
    options = ScanOptions(verity=not no_verity, digest=digest, needles=kernel_needles(policy))
    key, started, inputs = _signing_key(sign_key), datetime.now(UTC), None
    with _progress_bar(True) as progress:
        if evidence is not None:  # one read for the file's and each partition's digests (the scan then reads cached)
            from cvmlint.evidence.inputs import image_inputs

            inputs = image_inputs(image, progress)
            options.known_digest = inputs["sha256"]
        options.progress = progress
        with open_scan(image, options) as scanned:
            report = evaluate(policy, scanned.facts, later=scanned.later)  # the slow facts last
            report.profile_sources = dict.fromkeys(policy.profiles, "--profile")
            if waivers is not None:
                from cvmlint.policy import apply_waivers, load_waivers

                apply_waivers(report, load_waivers(waivers))
            if evidence is not None and inputs is not None:
                from cvmlint.evidence.inputs import add_verity

                facts = scanned.complete()  # every fact, those no rule read too (the measurements)
                _write_evidence(
                    evidence,
                    report,
                    facts,
                    policy,
                    add_verity(inputs, facts),
                    report.exit_code(*_gate(fail_on, unknown, None)),
                    waivers,
                    key,
                    started,
                )
    finish(report, fmt, fail_on, unknown, waivers, output, waived=True, verbose=verbose)


TRUSTED_REF = Opt(
    ("--trusted-ref",),
    "trusted_ref",
    "Read the policy, its data files, the waivers and cvmlint.toml as this git ref has them (a pull "
    "request's base, e.g. origin/main); the recipes from the working tree.",
    metavar="REF",
)


@command("lint", RECIPES, POLICY, PROFILE, *MKOSI_OPTIONS, *REPORT_OPTIONS, TRUSTED_REF, EVIDENCE, SIGN_KEY)
def lint_cmd(
    recipes: list[Path] | None,
    policy_path: Path | None,
    profile: list[str] | None,
    mkosi_profile: list[str] | None,
    distribution: str | None,
    release: str | None,
    architecture: str | None,
    host_architecture: str | None,
    fmt: list[OutputFormat] | None,
    verbose: bool,
    fail_on: Severity | None,
    unknown: UnknownMode | None,
    waivers: Path | None,
    output: list[Path | None] | None,
    trusted_ref: str | None,
    evidence: Path | None,
    sign_key: Path | None,
) -> None:
    """Check mkosi recipes against the policy, before anything is built: findings at file:line.

    Policy profiles are the operator's choice: those cvmlint.toml names for the recipe, those the mkosi
    profiles it or --mkosi-profile selects imply ([mkosi-profile-implies]), and --profile; never what the
    recipe selects by itself. cvmlint.toml is the one at the top of the recipe's git repository (else the
    nearest above it); with --trusted-ref, it, the policy and the waivers are read as that ref has them.
    Recipes are read as mkosi 26 and later read them (tested against mkosi 25.3 and 27.1); a warning marks
    what mkosi 25 reads otherwise.
    """
    from cvmlint.pipeline import command_line, lint_recipe, recipe_targets
    from cvmlint.pipeline import trusted_ref as trusted_tree
    from cvmlint.policy import load_waivers

    with trusted_tree(trusted_ref) as trusted:
        jobs = recipe_targets(recipes, trusted)
        if len(jobs) > 1 and evidence is not None and evidence.suffix == ".tar":
            fail(
                "one recipe at a time with --evidence FILE.tar",
                "give a recipe, or a directory for --evidence (one bundle per recipe)",
            )
        given_policy = trusted.path(policy_path) if trusted and policy_path else policy_path
        given_waivers = trusted.path(waivers) if trusted and waivers else waivers
        if given_waivers is not None and not given_waivers.is_file():
            fail(f"{waivers}: no such waivers file" + (f" at {trusted_ref}" if trusted else ""))
        scored: list[tuple[Report, int]] = []
        shown: set[str] = set()
        key = _signing_key(sign_key)
        read_waivers: dict[Path, Any] = {}  # each waivers file read once for every recipe
        for job in jobs:
            _print_warnings(job.project.warnings, shown)
            job.cli = command_line(job.entry, mkosi_profile, distribution, release, architecture, host_architecture)
            job.policy_path, job.profiles = given_policy, profile or []
            job.waivers = given_waivers or job.project.waivers
            if job.waivers is not None and job.waivers not in read_waivers:
                read_waivers[job.waivers] = load_waivers(job.waivers)
            started, read, warnings = datetime.now(UTC), list[Path](), list[str]()
            try:
                report, facts, policy = lint_recipe(job, warnings, read, read_waivers.get(job.waivers or Path()))
            finally:  # what reading the recipe found is said even when its policy cannot be loaded
                _print_warnings(warnings, shown)
            code = report.exit_code(*_gate(fail_on, unknown, job.project))
            scored.append((report, code))
            if evidence is not None:
                from cvmlint.evidence.inputs import recipe_inputs

                dest = evidence / job.directory.name if len(jobs) > 1 else evidence
                inputs = recipe_inputs(report.target.name, read, Path.cwd())
                _write_evidence(dest, report, facts, policy, inputs, code, job.waivers, key, started)
    emit(scored, fmt, output, verbose)
    raise SystemExit(max(code for _, code in scored))


def _gate(fail_on: Severity | None, unknown: UnknownMode | None, project: Any) -> tuple[str, str]:
    """--fail-on and --unknown: the command line's, else cvmlint.toml's, else low and fail."""
    return (
        fail_on.value if fail_on else getattr(project, "fail_on", None) or Severity.low.value,
        unknown.value if unknown else getattr(project, "unknown", None) or UnknownMode.fail.value,
    )


@contextmanager
def _step_display() -> Iterator[Callable[[str], None]]:
    """Each mkosi step as it starts: a status line with the elapsed time on a terminal, else a log line."""
    if not sys.stderr.isatty():
        yield lambda step: _err(f"cvmlint: mkosi: {step}")
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("mkosi: starting", total=None)
        yield lambda step: bar.update(task, description=f"mkosi: {step[:100]}")


@command(
    "build",
    RECIPES,
    POLICY,
    PROFILE,
    *MKOSI_OPTIONS,
    *REPORT_OPTIONS,
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
        "Make the build tool root (Debian trixie with mkosi 25; needs root and the apt mirror) and exit.",
        switch=True,
    ),
    Opt(
        ("--check-reproducible",),
        "check_reproducible",
        "Then build it again from the recorded inputs (fresh work directory, the same package versions) and "
        "compare the images (exit 1 when they differ, with where and why).",
        switch=True,
    ),
    EVIDENCE,
    SIGN_KEY,
)
def build_cmd(
    recipes: list[Path] | None,
    policy_path: Path | None,
    profile: list[str] | None,
    mkosi_profile: list[str] | None,
    distribution: str | None,
    release: str | None,
    architecture: str | None,
    host_architecture: str | None,
    fmt: list[OutputFormat] | None,
    verbose: bool,
    fail_on: Severity | None,
    unknown: UnknownMode | None,
    waivers: Path | None,
    output: list[Path | None] | None,
    no_gate: bool,
    output_dir: Path | None,
    mkosi_arg: list[str] | None,
    setup: bool,
    check_reproducible: bool,
    evidence: Path | None,
    sign_key: Path | None,
) -> None:
    """Lint a recipe, build it with mkosi, scan the image with the same policy, and compare the two.

    No image is built when lint fails (unless --no-gate). A rule that passes on the recipe and fails
    on its image (or the reverse) is drift, and fails the build. mkosi is the host's when it is 25 or
    newer, else the one in the build tool root (`cvmlint build --setup`, as root, once).
    """
    from cvmlint.build import BuildPlan, build_recipe
    from cvmlint.build.mkosi import setup as setup_root
    from cvmlint.pipeline import command_line, recipe_targets

    if setup:
        print(f"build tool root: {setup_root()}")
        raise SystemExit(0)
    jobs = recipe_targets(recipes)
    if len(jobs) > 1 and evidence is not None and evidence.suffix == ".tar":
        fail("one recipe at a time with --evidence FILE.tar", "give a directory: one bundle per recipe")
    code, outcomes, shown = 0, [], set[str]()
    key = _signing_key(sign_key)
    for job in jobs:
        _print_warnings(job.project.warnings, shown)
        directory, entry = job.directory, job.entry
        dest = (evidence / directory.name if len(jobs) > 1 else evidence) if evidence is not None else None
        gate_fail_on, gate_unknown = _gate(fail_on, unknown, job.project)
        plan = BuildPlan(
            directory,
            entry,
            command_line(entry, mkosi_profile, distribution, release, architecture, host_architecture),
            policy_path,
            profile or [],
            not no_gate,
            output_dir,
            mkosi_arg or [],
            waivers or job.project.waivers,
            gate_fail_on,
            gate_unknown,
            dest,
            key,
        )
        warnings: list[str] = []
        with _step_display() as progress:
            outcome = build_recipe(plan, job.project, progress, warnings)
            if check_reproducible and outcome.image is not None:
                outcome.rebuild = _rebuild_of(outcome, plan, job.project, progress)
        _print_warnings(warnings, shown)
        code = max(code, outcome.exit_code(gate_fail_on, gate_unknown))
        outcomes.append((outcome, plan))
    _emit_builds(outcomes, fmt, output, verbose)
    raise SystemExit(code)


def _rebuild_of(outcome: Any, plan: Any, project: Any, progress: Any) -> Any:
    from cvmlint.build.rebuild import FirstBuild, RebuildOptions, rebuild

    first = FirstBuild(
        outcome.inputs, outcome.image, outcome.sha256, outcome.root_hash, outcome.outputs.get("build summary")
    )
    options = RebuildOptions(None, plan.policy_path, plan.profiles, plan.fail_on, plan.unknown)
    return rebuild(first, project, options, progress)


def _emit_builds(
    outcomes: list[tuple[Any, Any]],
    formats: list[OutputFormat] | None,
    outputs: list[Path | None] | None,
    verbose: bool,
) -> None:
    """Each asked format: json the build records, text/table the build view, the CI formats and html the
    reports themselves (the recipe's and, once built, the image's; one page for every build)."""
    import json

    from cvmlint.report.interface import render_all

    for fmt, target in _pairs(formats, outputs):
        color = target is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        if fmt is OutputFormat.json:
            docs = [_build_document(o, p) for o, p in outcomes]
            text = json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n"
        elif fmt in (OutputFormat.text, OutputFormat.table):
            text = "".join(_build_text(o, p, reporter_for(fmt, color, verbose=verbose)) for o, p in outcomes)
        else:
            reports = [
                (r, r.exit_code(p.fail_on, p.unknown))
                for o, p in outcomes
                for r in (o.lint, o.scan)
                if r is not None and (fmt is not OutputFormat.html or r is (o.scan or o.lint))
            ]
            text = render_all(reporter_for(fmt, False, verbose), reports)
        _write(text, target)


def _build_document(outcome: Any, plan: Any) -> dict[str, Any]:
    from cvmlint.build import build_json
    from cvmlint.report.json import report_to_json

    doc = build_json(outcome, plan)
    doc["lint"] = report_to_json(outcome.lint, outcome.lint.exit_code(plan.fail_on, plan.unknown))
    if outcome.scan is not None:
        doc["scan"] = report_to_json(outcome.scan, outcome.scan.exit_code(plan.fail_on, plan.unknown))
    if outcome.rebuild is not None:
        from cvmlint.build.rebuild import rebuild_json

        doc["rebuild"] = rebuild_json(outcome.rebuild, build_json(outcome.rebuild.second, plan))
    return doc


def _build_text(outcome: Any, plan: Any, table: Reporter) -> str:
    from cvmlint.build.drift import PackageDelta

    lint_code = outcome.lint.exit_code(plan.fail_on, plan.unknown)
    out = [table.render(outcome.lint, lint_code)]
    if outcome.gated:
        out.append(
            f"not built: lint of {plan.directory} failed (exit {lint_code}); --no-gate builds a development "
            "image anyway\n"
        )
        return "".join(out)
    assert outcome.scan is not None
    out.append(table.render(outcome.scan, outcome.scan.exit_code(plan.fail_on, plan.unknown)))
    out += [f"drift: {d.render()}\n" for d in outcome.drift]
    if isinstance(outcome.packages, PackageDelta):
        undeclared = ", ".join(f"{n} {v}" for n, v in outcome.packages.undeclared[:12])
        more = len(outcome.packages.undeclared) - 12
        out.append(
            f"packages the recipe never named: {len(outcome.packages.undeclared)} "
            f"({undeclared}{f', … {more} more' if more > 0 else ''})\n"
        )
        for name, where in outcome.packages.missing:
            out.append(f"declared but not in the image: {name} ({where})\n")
    elif outcome.packages is not None:
        out.append(f"package comparison: unknown ({outcome.packages.reason})\n")
    out.append(
        f"summary: lint {_verdict(outcome.lint, plan)}; built {_relative(outcome.image)} "
        f"({outcome.size / 2**20:.0f} MiB, sha256 {outcome.sha256[:16]}…, {outcome.seconds:.0f} s, "
        f"{outcome.mkosi}); scan {_verdict(outcome.scan, plan)}; drift {len(outcome.drift)}; exit "
        f"{outcome.exit_code(plan.fail_on, plan.unknown)}\n"
    )
    out += [f"  {name}: {path}\n" for name, path in outcome.outputs.items()]
    if outcome.rebuild is not None:
        from cvmlint.build.rebuild import render_text

        out.append("\n" + render_text(outcome.rebuild))
    return "".join(out)


def _relative(path: Path) -> str:
    """A path as shown: relative to the working directory when below it."""
    absolute = path.resolve()
    return os.path.relpath(absolute) if absolute.is_relative_to(Path.cwd().resolve()) else str(path)


def _verdict(report: Report, plan: Any) -> str:
    code = report.exit_code(plan.fail_on, plan.unknown)
    counts = report.summary()
    return (
        f"{'pass' if code == 0 else 'FAIL'} ({counts['pass']} pass, {counts['fail']} fail, {counts['unknown']} unknown)"
    )


@command(
    "check",
    Opt(("facts_file",), "facts_file", "Facts JSON file (from cvmlint facts --json).", kind=Path),
    POLICY,
    PROFILE,
    *REPORT_OPTIONS,
)
def check_cmd(
    facts_file: Path,
    policy_path: Path | None,
    profile: list[str] | None,
    fmt: list[OutputFormat] | None,
    verbose: bool,
    fail_on: Severity | None,
    unknown: UnknownMode | None,
    waivers: Path | None,
    output: list[Path | None] | None,
) -> None:
    """Evaluate a policy over saved facts."""
    from cvmlint.policy import evaluate

    policy = _load_policy(policy_path, profile)
    report = evaluate(policy, load_target(facts_file))
    report.profile_sources = dict.fromkeys(policy.profiles, "--profile")
    finish(report, fmt, fail_on, unknown, waivers, output, verbose=verbose)


class TextOrJson(enum.StrEnum):
    """Output formats of `cvmlint measure` and `cvmlint rebuild`."""

    text = "text"
    json = "json"


TEXT_OR_JSON = Opt(("--format", "-f"), "fmt", "Output format.", kind=TextOrJson, default=TextOrJson.text)


@command(
    "measure",
    Opt(("image",), "image", "Disk image: raw, qcow2, vhd, or a tar(.gz) holding disk.raw.", kind=Path),
    TEXT_OR_JSON,
    Opt(("--transcript",), "transcript", "List every event (the text format), to read or diff.", switch=True),
    Opt(
        ("--secure-boot",),
        "secure_boot",
        "Predict for firmware with Secure Boot on (systemd-stub then ignores the options it is given).",
        switch=True,
    ),
    Opt(("--entry",), "entry", "The boot entry to predict, by title (default: the default entry)."),
    Opt(("--reference",), "reference", "Also write reference values for a verifier to this file.", kind=Path),
    FILE_OUTPUT,
)
def measure_cmd(
    image: Path,
    fmt: TextOrJson,
    transcript: bool,
    secure_boot: bool,
    entry: str | None,
    reference: Path | None,
    output: Path | None,
) -> None:
    """Predict what booting the image extends into the TPM's PCRs and TDX RTMRs, event by event.

    Registers cvmlint cannot predict from the image are shown unknown, with the reason.
    """
    import hashlib

    from cvmlint.image.container import open_image
    from cvmlint.measure import render
    from cvmlint.measure.predict import predict
    from cvmlint.scan.disk import open_disk

    if not image.is_file():
        fail(f"{image}: no such image file")
    with open_image(image) as (src, _kind):
        prediction = predict(open_disk(src), secure_boot=secure_boot, entry=entry)
    if reference is not None:
        digest = hashlib.sha256()
        with open(image, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _write(render.reference(prediction, image.name, digest.hexdigest()), reference)
    if fmt is TextOrJson.json:
        _write(render.as_json(prediction, image.name), output)
    else:
        _write(render.text(prediction, image.name, transcript), output)


@command(
    "rebuild",
    Opt(("record",), "record", "The first build's .build.json, or its evidence bundle.", kind=Path),
    Opt(("--image",), "image", "The first build's image, when the record does not say where it is.", kind=Path),
    Opt(
        ("--output-dir",),
        "output_dir",
        "Where the second build goes (default: a rebuild/ directory beside the first image).",
        kind=Path,
    ),
    POLICY,
    PROFILE,
    TEXT_OR_JSON,
    FILE_OUTPUT,
)
def rebuild_cmd(
    record: Path,
    image: Path | None,
    output_dir: Path | None,
    policy_path: Path | None,
    profile: list[str] | None,
    fmt: TextOrJson,
    output: Path | None,
) -> None:
    """Build a recipe again from what its first build recorded and compare the two images.

    The recipe files must read as recorded and mkosi is offered only the recorded package versions
    (each .deb's digest checked). Exit 0: bit for bit the same; 1: different, narrowed to the
    partition, file and bytes with the likely cause; 2: it could not be rebuilt (the input named).
    """
    import json

    from cvmlint.build import build_json
    from cvmlint.build.rebuild import RebuildOptions, load_record, rebuild, rebuild_json, render_text
    from cvmlint.project import find_project

    if not record.exists():
        fail(f"{record}: no such build record")
    first = load_record(record, image)
    options = RebuildOptions(output_dir, policy_path, profile or [])
    with _step_display() as progress:
        outcome = rebuild(first, find_project(Path.cwd()), options, progress)
    if fmt is TextOrJson.json:
        from cvmlint.build import BuildPlan

        plan = BuildPlan(Path(first.inputs["recipe"]))
        text = json.dumps(rebuild_json(outcome, build_json(outcome.second, plan)), indent=2) + "\n"
    else:
        text = render_text(outcome)
    _write(text, output)
    raise SystemExit(outcome.exit_code())


# ---- evidence -----------------------------------------------------------------------------


class KeyAlgorithm(enum.StrEnum):
    """Signing key types."""

    ed25519 = "ed25519"
    ecdsa_p256 = "ecdsa-p256"


@command(
    "evidence keygen",
    Opt(
        ("key",),
        "key",
        "Where to write the private key (PEM, mode 0600); the public key goes beside it as KEY.pub.",
        kind=Path,
    ),
    Opt(("--algorithm",), "algorithm", "Key type (default ed25519).", kind=KeyAlgorithm, default=KeyAlgorithm.ed25519),
)
def evidence_keygen(key: Path, algorithm: KeyAlgorithm) -> None:
    """Make a key pair for signing evidence (--sign-key) and verifying it (--key)."""
    from cvmlint.evidence.dsse import keygen, load_signing_key

    public = keygen(key, algorithm.value)
    print(f"private key {key}, public key {public}, key id {load_signing_key(key).keyid}")


def _check_exit(check: Any) -> NoReturn:
    for note in check.notes:
        print(f"note: {note}")
    for problem in check.problems:
        print(f"MISMATCH: {problem}")
    print("verified" if check.ok else f"NOT verified: {len(check.problems)} problem(s)")
    raise SystemExit(0 if check.ok else 1)


@command(
    "evidence verify",
    Opt(("bundle",), "bundle", "Evidence bundle: a directory or a .tar file.", kind=Path),
    Opt(("--key",), "key", "PEM public key the statement must be signed by.", kind=Path),
    Opt(("--image",), "image", "Re-hash this image against the subject.", kind=Path),
    Opt(
        ("--allow-unsigned",), "allow_unsigned", "Accept an unsigned bundle whose digests are consistent.", switch=True
    ),
)
def evidence_verify(bundle: Path, key: Path | None, image: Path | None, allow_unsigned: bool) -> None:
    """Check the signature, every file's digest, and (with --image) the image. Exit 0 verified, 1 mismatch."""
    from cvmlint.evidence.dsse import load_public_key
    from cvmlint.evidence.verify import verify_bundle

    if not bundle.exists():
        fail(f"{bundle}: no such bundle")
    _check_exit(verify_bundle(bundle, load_public_key(key) if key else None, image, allow_unsigned))


@command("evidence replay", Opt(("bundle",), "bundle", "Evidence bundle: a directory or a .tar file.", kind=Path))
def evidence_replay(bundle: Path) -> None:
    """Evaluate the bundled facts with the bundled policy, profiles and waivers; exit 0 when the results are
    exactly the bundled ones, 1 naming each rule that differs."""
    from cvmlint.evidence.verify import replay_bundle

    if not bundle.exists():
        fail(f"{bundle}: no such bundle")
    check, results = replay_bundle(bundle)
    print(f"replayed {len(results)} rules from {bundle}")
    _check_exit(check)


@command(
    "evidence diff",
    Opt(("a",), "a", "The earlier build: a bundle or an image.", kind=Path),
    Opt(("b",), "b", "The later build: a bundle or an image.", kind=Path),
    POLICY,
    PROFILE,
)
def evidence_diff(a: Path, b: Path, policy_path: Path | None, profile: list[str] | None) -> None:
    """What changed between two builds, and each rule whose status changed with the fact that caused it."""
    from cvmlint.evidence.diff import diff, load_side

    policy = _load_policy(policy_path, profile)
    for path in (a, b):
        if not path.exists():
            fail(f"{path}: no such bundle or image")
    result = diff(load_side(a, policy), load_side(b, policy), policy)
    print(result.render(), end="")


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the command; every cvmlint error becomes a message and exit code 2."""
    code = _run(argv)
    if argv is None:
        # NOTE: the process ends here: skip tearing down a scan's objects one by one (a third of a
        # second for a large root), as mypy does; the streams are flushed first.
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            code = code or 1
        with suppress(BrokenPipeError, ValueError):
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name an image or recipe chose may not be UTF-8
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        _dispatch(sys.argv[1:] if argv is None else argv)
    except SystemExit as done:
        return _exit_code(done.code)
    except CvmlintError as err:
        _err(err.diagnostics())
        return 2
    except KeyboardInterrupt:
        _err("cvmlint: interrupted")
        return 130
    except Exception as err:  # pragma: no cover - a bug: say so briefly, show details on request
        if os.environ.get("CVMLINT_DEBUG"):
            raise
        _err(f"cvmlint: internal error: {type(err).__name__}: {err}")
        _err("Tip: rerun with CVMLINT_DEBUG=1 for the traceback, and report it.")
        return 2
    finally:
        if os.environ.get("CVMLINT_LIMIT_STATS"):
            from cvmlint import limits

            limits.write_stats()
    return 0


def _dispatch(argv: list[str]) -> None:
    parser = build_parser(
        "cvmlint",
        "Policy-as-code linter and image compliance checker for confidential-VM base images:\n"
        "one policy, enforced on mkosi recipes and on built images.",
        TOP_OPTIONS,
        f"cvmlint {__version__}",
        argv,
    )
    namespace = parser.parse_args(argv)
    chosen = getattr(namespace, "_command", None)
    if chosen is None:  # `cvmlint` or `cvmlint policy` alone: what there is to run
        namespace._group.print_help(sys.stderr)
        raise SystemExit(2)
    _configure(namespace.limit, namespace.timeout)
    chosen.call(namespace)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    _err(str(code))
    return 1
