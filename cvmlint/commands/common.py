"""What every command shares: output formats and reporters, the option groups parsed into frozen values
(how mkosi is run, how results are reported, whether evidence is written), writing outputs, the gate's
thresholds, progress displays."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cvmlint.cliargs import FormatAction, Opt, OptionGroup, OutputAction
from cvmlint.errors import SHOWN_BYTES, CvmlintError
from cvmlint.severity import Severity

if TYPE_CHECKING:
    from cvmlint.facts.model import Facts
    from cvmlint.policy.loader import Policy
    from cvmlint.policy.results import Report
    from cvmlint.project import Project, RecipeEntry
    from cvmlint.recipe.mkosi import CommandLine
    from cvmlint.report.interface import Reporter


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


REPORTERS: dict[OutputFormat, tuple[str, str]] = {
    OutputFormat.text: ("cvmlint.report.text", "TextReporter"),
    OutputFormat.table: ("cvmlint.report.table", "TableReporter"),
    OutputFormat.json: ("cvmlint.report.json", "JsonReporter"),
    OutputFormat.html: ("cvmlint.report.html", "HtmlReporter"),
    OutputFormat.sarif: ("cvmlint.report.sarif", "SarifReporter"),
    OutputFormat.junit: ("cvmlint.report.junit", "JunitReporter"),
    OutputFormat.github: ("cvmlint.report.github", "GithubReporter"),
    OutputFormat.gitlab: ("cvmlint.report.gitlab", "GitlabReporter"),
}
"""Each format's reporter (module, class), imported when asked for."""
COLORED = {OutputFormat.text, OutputFormat.table}
VERBOSE_FORMATS = {OutputFormat.text}


def reporter_for(
    fmt: OutputFormat, color: bool, verbose: bool = False, inputs: dict[str, Any] | None = None
) -> Reporter:
    """The reporter of one output format (`inputs`: the image's digests and partitions, for the HTML page)."""
    import importlib

    module, name = REPORTERS[fmt]
    options: dict[str, Any] = {"color": color} if fmt in COLORED else {}
    if fmt in VERBOSE_FORMATS:
        options["verbose"] = verbose
    if fmt is OutputFormat.html and inputs:
        options["inputs"] = inputs
    reporter: Reporter = getattr(importlib.import_module(module), name)(**options)
    return reporter


def err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


class UsageError(CvmlintError):
    """What was asked cannot be done as asked (a missing file, options that do not go together)."""

    def diagnostics(self) -> str:
        return "cvmlint: error: " + super().diagnostics()


def fail(message: str, tip: str = "") -> NoReturn:
    """Stop the command: the message and the tip (what to do instead) on stderr, exit 2."""
    raise UsageError(message, hint=tip)


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


@dataclass(frozen=True)
class MkosiOptions:
    """How mkosi would be run on the recipe, as the command line says."""

    mkosi_profile: list[str] | None
    distribution: str | None
    release: str | None
    architecture: str | None
    host_architecture: str | None

    def command_line(self, entry: RecipeEntry | None) -> CommandLine:
        """mkosi's command line for a recipe: cvmlint.toml's mkosi profiles for it, then these options."""
        from cvmlint.pipeline import command_line

        return command_line(
            entry, self.mkosi_profile, self.distribution, self.release, self.architecture, self.host_architecture
        )


@dataclass(frozen=True)
class ReportOptions:
    """How results are written and which of them fail the run."""

    fmt: list[OutputFormat] | None
    verbose: bool
    fail_on: Severity | None
    unknown: UnknownMode | None
    waivers: Path | None
    output: list[Path | None] | None

    def gate(self, project: Project | None = None) -> tuple[str, str]:
        """--fail-on and --unknown: the command line's, else cvmlint.toml's, else low and fail."""
        return (
            self.fail_on.value if self.fail_on else (project.fail_on if project else None) or Severity.low.value,
            self.unknown.value if self.unknown else (project.unknown if project else None) or UnknownMode.fail.value,
        )

    def emit(self, scored: list[tuple[Report, int]], inputs: dict[str, Any] | None = None) -> None:
        emit(scored, self.fmt, self.output, self.verbose, inputs)

    def wants(self, fmt: OutputFormat) -> bool:
        return fmt in (self.fmt or [])

    def finish(self, report: Report, inputs: dict[str, Any] | None = None) -> NoReturn:
        """Write the report in every asked format and exit with the code it earns."""
        code = report.exit_code(*self.gate())
        self.emit([(report, code)], inputs)
        raise SystemExit(code)


@dataclass(frozen=True)
class EvidenceOptions:
    """Whether an evidence bundle is written, where, and the key that signs it."""

    evidence: Path | None
    sign_key: Path | None

    def key(self) -> Any:
        return signing_key(self.sign_key)

    def destination(self, directory: Path, several: bool) -> Path | None:
        """Where a recipe's bundle goes: --evidence itself, or a directory per recipe below it."""
        if self.evidence is None:
            return None
        return self.evidence / directory.name if several else self.evidence

    def refuse_one_file_for_several(self, several: bool) -> None:
        if several and self.evidence is not None and self.evidence.suffix == ".tar":
            fail(
                "one recipe at a time with --evidence FILE.tar",
                "give a recipe, or a directory for --evidence (one bundle per recipe)",
            )


MKOSI = OptionGroup("mkosi", MKOSI_OPTIONS, MkosiOptions)
REPORT = OptionGroup("report", REPORT_OPTIONS, ReportOptions)
EVIDENCE_OPTIONS = OptionGroup("evidence", (EVIDENCE, SIGN_KEY), EvidenceOptions)


def print_warnings(warnings: list[str], shown: set[str]) -> None:
    for warning in warnings:
        if warning not in shown:
            shown.add(warning)
            err(warning)


def load_policy(path: Path | None, profiles: list[str] | None) -> Policy:
    from cvmlint._resources import default_policy_path
    from cvmlint.policy import load_policy

    return load_policy(path or default_policy_path(), profiles or ())


def write(text: str, output: Path | None) -> None:
    # NOTE: the output file is opened only now, after the work succeeded, so a failed run never
    # leaves a truncated report behind.
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8", errors=SHOWN_BYTES)  # a name an image chose may not be UTF-8
    except OSError as err:
        fail(f"cannot write {output}: {err.strerror}")


def emit(
    scored: list[tuple[Report, int]],
    formats: list[OutputFormat] | None,
    outputs: list[Path | None] | None,
    verbose: bool = False,
    inputs: dict[str, Any] | None = None,
) -> None:
    """Write every report in each asked format: each --output takes the --format before it, the others go
    to standard output (so one run can write SARIF for the machine and the text view for a person)."""
    from cvmlint.report.interface import render_all

    for fmt, target in pairs(formats, outputs):
        color = target is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        write(render_all(reporter_for(fmt, color, verbose, inputs), scored), target)


def pairs(
    formats: list[OutputFormat] | None, outputs: list[Path | None] | None
) -> list[tuple[OutputFormat, Path | None]]:
    """Each asked format with its file (None: standard output); text alone when none was asked."""
    formats = formats or [OutputFormat.text]
    outputs = outputs or []
    return [(fmt, outputs[i] if i < len(outputs) else None) for i, fmt in enumerate(formats)]


def signing_key(path: Path | None) -> Any:
    if path is None:
        return None
    from cvmlint.evidence.dsse import load_signing_key

    return load_signing_key(path)


def write_evidence(
    dest: Path,
    report: Report,
    facts: Facts,
    policy: Policy,
    inputs: dict[str, Any],
    code: int,
    waivers: Path | None,
    key: Any,
    started: Any,
    root: Any = None,
) -> None:
    from cvmlint.evidence.bundle import Evidence, write_bundle

    write_bundle(dest, Evidence(report, facts, policy, inputs, code, waivers, started, root=root), key)
    err(f"cvmlint: evidence: {dest} ({f'signed by key {key.keyid[:16]}…' if key else 'UNSIGNED: no --sign-key'})")


PROGRESS_FROM = 256 << 20
"""Reads shorter than this show no progress bar."""


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
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


@contextmanager
def step_display(what: str = "mkosi") -> Iterator[Callable[[str], None]]:
    """Each step of a long job as it starts: a status line with the elapsed time on a terminal, else a
    log line with the seconds since the job began."""
    if not sys.stderr.isatty():
        import time

        began = time.monotonic()
        yield lambda step: err(f"cvmlint: {what}: [{time.monotonic() - began:6.1f} s] {step}")
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
        task = bar.add_task(f"{what}: starting", total=None)
        yield lambda step: bar.update(task, description=f"{what}: {step[:100]}")
