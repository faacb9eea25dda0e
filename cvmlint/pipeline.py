"""The two pipelines every command shares: lint and judge a recipe (`lint`, `build`), scan and judge
an image (`scan`, `build`, `evidence diff`).

    report, facts, policy = lint_recipe(RecipeJob(Path("recipes/tdx-base"), project=find_project(cwd)), [])
    with judge_image(Path("image.raw"), policy, ScanOptions()) as judged:
        judged.report, judged.facts()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cvmlint.project import Project, RecipeEntry, Trusted
from cvmlint.recipe.mkosi import CommandLine

if TYPE_CHECKING:
    from cvmlint.facts.model import Facts
    from cvmlint.policy.loader import Policy
    from cvmlint.policy.results import Report, Waiver
    from cvmlint.scan import Scanned, ScanOptions


@dataclass
class RecipeJob:
    """One recipe to judge, and everything the operator chose for it."""

    directory: Path
    entry: RecipeEntry | None = None
    cli: CommandLine = field(default_factory=CommandLine)
    """mkosi's command line: cvmlint.toml's mkosi profiles, then --mkosi-profile, -d/-r/--architecture."""
    policy_path: Path | None = None
    """--policy (already mapped to the trusted ref's copy); else the project's, else the shipped one."""
    profiles: list[str] = field(default_factory=list)
    """--profile."""
    waivers: Path | None = None
    """--waivers (mapped like the policy); else the project's."""
    project: Project = field(default_factory=lambda: Project(Path.cwd()))


def command_line(
    entry: RecipeEntry | None,
    mkosi_profiles: list[str] | None,
    distribution: str | None = None,
    release: str | None = None,
    architecture: str | None = None,
    host_architecture: str | None = None,
) -> CommandLine:
    """mkosi's command line for a recipe: the profiles cvmlint.toml names for it, then those given."""
    profiles = (*(entry.mkosi_profiles if entry else ()), *(mkosi_profiles or ()))
    return CommandLine(
        profiles=tuple(dict.fromkeys(profiles)),
        distribution=distribution,
        release=release,
        architecture=architecture,
        host_architecture=host_architecture,
    )


def lint_recipe(
    job: RecipeJob, warnings: list[str], read: list[Path] | None = None, waivers: list[Waiver] | None = None
) -> tuple[Report, Facts, Policy]:
    """The recipe's facts, the policy under the profiles the operator chose, the judged report (waivers
    applied: `waivers` when already read, else the job's file). `read` receives every recipe file read."""
    from cvmlint._resources import default_policy_path
    from cvmlint.policy import apply_waivers, evaluate, load_policy, load_waivers
    from cvmlint.recipe.facts import recipe_facts

    project = job.project
    facts, found = recipe_facts(job.directory, job.entry, job.cli, Path.cwd(), read, project.implies)
    warnings += found
    sources = project.policy_profiles(job.entry, job.cli.profiles, job.profiles)
    policy = load_policy(job.policy_path or project.policy or default_policy_path(), list(sources))
    report = evaluate(policy, facts)
    report.profile_sources = sources
    report.config = project.describe()
    waiver_file = job.waivers or project.waivers
    if waivers is None and waiver_file is not None:
        waivers = load_waivers(waiver_file)
    if waivers is not None:
        apply_waivers(report, waivers)
    return report, facts, policy


def recipe_targets(recipes: list[Path] | None, trusted: Trusted | None = None) -> list[RecipeJob]:
    """What to judge: the recipes given, each with the project configuration of its own repository (see
    `find_project`), or every recipe the working directory's cvmlint.toml lists."""
    from cvmlint.errors import InputError
    from cvmlint.project import find_project

    if recipes:
        jobs = []
        for directory in recipes:
            if not directory.is_dir():
                raise InputError(f"{directory}: no such recipe directory")
            project = find_project(Path.cwd(), directory, trusted)
            jobs.append(RecipeJob(directory, project.entry_for(directory), project=project))
        return jobs
    project = find_project(Path.cwd(), None, trusted)
    if not project.recipes:
        raise InputError(
            "no recipe given, and no cvmlint.toml listing recipes at the repository's top or above",
            hint="run `cvmlint lint path/to/recipe`, or list recipes in cvmlint.toml ([[recipe]] path = …)",
        )
    return [RecipeJob(e.path, e, project=project) for e in project.recipes]


@contextmanager
def trusted_ref(ref: str | None) -> Iterator[Trusted | None]:
    """The tree of `ref` (a pull request's base) written to a temporary directory while in use; None
    without a ref."""
    if ref is None:
        yield None
        return
    import tempfile

    from cvmlint import git

    top = git.require_repository(Path.cwd(), f"--trusted-ref {ref}")
    commit = git.commit_of(top, ref)
    with tempfile.TemporaryDirectory(prefix="cvmlint-trusted-") as tmp:
        git.export_tree(top, commit, Path(tmp))
        yield Trusted(ref, commit, Path(tmp), top)


@dataclass
class JudgedImage:
    """An image's report, and its facts: those the rules read already computed, the others on request."""

    report: Report
    scanned: Scanned
    read: set[str]
    """The slow facts (kernel, boot, verity, measurements) the rules read."""

    def facts(self, *also: str, everything: bool = False) -> Facts:
        """The facts the rules read, and `also` (or every fact: evidence records what no rule read too)."""
        return self.scanned.complete(None if everything else self.read | set(also))


@contextmanager
def judge_image(
    image: Path, policy: Policy, options: ScanOptions, waivers: list[Waiver] | None = None
) -> Iterator[JudgedImage]:
    """Scan an image and judge it: each slow fact is waited for only when a rule reads it (the measurement
    prediction, which no baseline rule reads, is never made unless asked); waivers applied."""
    from cvmlint.policy import apply_waivers, evaluate
    from cvmlint.policy.probes import kernel_needles
    from cvmlint.scan import open_scan

    options.needles = kernel_needles(policy)
    with open_scan(image, options) as scanned:
        read: set[str] = set()

        def noting(name: str) -> Callable[[], object]:
            get = scanned.later[name]

            def waited() -> object:
                read.add(name)
                return get()

            return waited

        report = evaluate(policy, scanned.facts, later={name: noting(name) for name in scanned.later})
        report.profile_sources = dict.fromkeys(policy.profiles, "--profile")
        if waivers is not None:
            apply_waivers(report, waivers)
        yield JudgedImage(report, scanned, read)
