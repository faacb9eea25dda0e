"""`cvmlint.toml`: the recipes a repository holds, and what goes with each.

    policy = "policies/cvm-baseline.cvmp"     # default policy for `cvmlint lint` (optional)
    waivers = "waivers.toml"                  # waivers applied by lint and build (optional)
    fail-on = "low"                           # lowest failing severity that fails lint and build
    unknown = "fail"                          # whether an unknown result fails them (fail|warn)

    [[recipe]]
    path = "recipes/tdx-base"                 # an mkosi configuration directory
    profiles = ["tdx-base"]                   # policy profiles to apply
    mkosi-profiles = []                       # mkosi profiles to select (as `mkosi --profile`)
    patches = "patches"                       # the kernel's patch series: *.patch in name order,
                                              # or the order of a `series` file there
    kernel-config = "patches/kernel.config"   # config fragment the kernel is built with

    [mkosi-profile-implies]                   # an mkosi profile the operator selects (here, or
    dev = ["dev"]                             # --mkosi-profile) applies these policy profiles too

Paths are relative to the file. Which file: the one at the top of the git repository that holds the
recipe (or the working directory, when no recipe is named), else the nearest one above it. A
cvmlint.toml inside the recipe being judged is never used: a pull request could otherwise add one
beside its recipe and choose its own judge. With a trusted ref the file (and the policy, the waivers)
come from that ref; the recipes, patches and kernel config from the working tree.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cvmlint.errors import InputError

NAME = "cvmlint.toml"
UNKNOWN_MODES = ("fail", "warn")
KEYS = {"policy", "waivers", "fail-on", "unknown", "recipe", "mkosi-profile-implies", "limits"}
RECIPE_KEYS = {"path", "profiles", "mkosi-profiles", "patches", "kernel-config"}


@dataclass(frozen=True)
class RecipeEntry:
    path: Path
    line: int = 0
    profiles: tuple[str, ...] = ()
    mkosi_profiles: tuple[str, ...] = ()
    patches: Path | None = None
    kernel_config: Path | None = None
    config_file: Path | None = None
    """The cvmlint.toml that lists the recipe."""


@dataclass(frozen=True)
class Trusted:
    """Where the trusted copy of the gate's configuration comes from (`--trusted-ref`)."""

    ref: str
    commit: str
    tree: Path
    """The ref's tree, written out."""
    top: Path
    """The working tree's top: paths below it are read from `tree` instead."""

    def path(self, path: Path) -> Path:
        """A working-tree path as the trusted ref has it; a path outside the repository as given."""
        real = path.resolve() if path.is_absolute() else (Path.cwd() / path).resolve()
        return self.tree / real.relative_to(self.top) if real.is_relative_to(self.top) else path


@dataclass
class Project:
    root: Path
    file: Path | None = None
    policy: Path | None = None
    waivers: Path | None = None
    fail_on: str | None = None
    unknown: str | None = None
    recipes: list[RecipeEntry] = field(default_factory=list)
    implies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """mkosi profile -> the policy profiles selecting it implies."""
    warnings: list[str] = field(default_factory=list)
    trusted: Trusted | None = None
    why_none: str = ""
    """When there is no file: where it was looked for."""

    def policy_profiles(
        self, entry: RecipeEntry | None, mkosi_profiles: tuple[str, ...], extra: list[str]
    ) -> dict[str, str]:
        """Policy profile -> why it applies: those cvmlint.toml names for the recipe, those the mkosi
        profiles the operator selects (cvmlint.toml, --mkosi-profile) imply, then `extra` (--profile).
        What the recipe selects by itself implies nothing (it would choose its own judge)."""
        chosen: dict[str, str] = {}
        for name in entry.profiles if entry else ():
            chosen.setdefault(name, NAME)
        for mkosi in mkosi_profiles:
            why = (
                f"{NAME}: mkosi profile {mkosi}"
                if entry and mkosi in entry.mkosi_profiles
                else f"--mkosi-profile {mkosi}"
            )
            for name in self.implies.get(mkosi, ()):
                chosen.setdefault(name, why)
        for name in extra:
            chosen.setdefault(name, "--profile")
        return chosen

    def entry_for(self, directory: Path) -> RecipeEntry | None:
        real = directory.resolve()
        return next((r for r in self.recipes if r.path.resolve() == real), None)

    def describe(self) -> str:
        """The configuration used, for a report's header."""
        if self.file is None:
            return f"none ({self.why_none or 'no ' + NAME + ' found'})"
        if self.trusted is not None:
            return f"{NAME} at {self.trusted.ref} ({self.trusted.commit[:12]})"
        return _shown(self.file)


def _shown(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("../..") else relative


def find_project(start: Path, judged: Path | None = None, trusted: Trusted | None = None) -> Project:
    """The project configuration for `judged` (a recipe directory), or for the working directory `start`:
    the cvmlint.toml at the git top level, else the nearest one above; never one inside `judged`."""
    from cvmlint import git

    if trusted is not None:
        file = trusted.tree / NAME
        if not file.is_file():
            raise InputError(
                f"--trusted-ref {trusted.ref} has no {NAME} at the repository's top",
                hint="the trusted ref must carry the configuration the gate reads; drop --trusted-ref until it does",
            )
        return load_project(file, recipes_root=trusted.top, trusted=trusted)
    base = (judged or start).resolve()
    warnings: list[str] = []
    if judged is not None and (base / NAME).is_file():
        warnings.append(
            f"{_shown(base / NAME)}: warning: ignored: a {NAME} inside the recipe being judged does not "
            "configure its judge (keep it at the repository's top)"
        )
    top = git.toplevel(base if base.is_dir() else base.parent)
    above = base.parent if judged is not None else base
    for directory in dict.fromkeys([*([top] if top is not None else []), above, *above.parents]):
        candidate = directory / NAME
        if candidate.is_file() and not (judged is not None and directory.is_relative_to(base)):
            project = load_project(candidate)
            project.warnings = warnings + project.warnings
            return project
    if top is not None:
        where = f"at the git top level ({top}) or above"
    else:
        where = "above the recipe" if judged is not None else "here or above"
    return Project(above, warnings=warnings, why_none=f"no {NAME} {where}")


def load_project(path: Path, recipes_root: Path | None = None, trusted: Trusted | None = None) -> Project:
    """Read a cvmlint.toml. Recipes, patches and kernel configs are relative to `recipes_root` (the
    working tree, with a trusted ref), the policy and the waivers to the file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: {err}") from None
    base = path.parent
    root = recipes_root or base
    project = Project(root, path, _path(base, data.get("policy"), path, "policy"), trusted=trusted)
    project.waivers = _path(base, data.get("waivers"), path, "waivers")
    from cvmlint.severity import SEVERITIES

    project.fail_on = _choice(data, "fail-on", SEVERITIES, path)
    project.unknown = _choice(data, "unknown", UNKNOWN_MODES, path)
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip() == "[[recipe]]"]
    implies = data.get("mkosi-profile-implies", {})
    if not isinstance(implies, dict):
        raise InputError(f"{path}: [mkosi-profile-implies] must be a table of mkosi profile = [policy profiles]")
    project.implies = {k: tuple(_strings(v, f"{path}: [mkosi-profile-implies]", k)) for k, v in implies.items()}
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise InputError(f"{path}: [limits] must be a table of limit name = value")
    from cvmlint import limits as budget

    budget.configure(limits, f"{path}: [limits]", override=False)
    unknown_keys = set(data) - KEYS
    if unknown_keys:
        raise InputError(f"{path}: unknown key(s) {', '.join(sorted(unknown_keys))}")
    recipes = data.get("recipe", [])
    if not isinstance(recipes, list):
        raise InputError(f"{path}: `recipe` must be an array of tables ([[recipe]])")
    for k, entry in enumerate(recipes):
        where = f"{path}:{lines[k] if k < len(lines) else 0}"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise InputError(f'{where}: a [[recipe]] needs path = "…"')
        unknown = set(entry) - RECIPE_KEYS
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} in [[recipe]]")
        project.recipes.append(
            RecipeEntry(
                path=root / entry["path"],
                line=lines[k] if k < len(lines) else 0,
                profiles=tuple(_strings(entry.get("profiles", []), where, "profiles")),
                mkosi_profiles=tuple(_strings(entry.get("mkosi-profiles", []), where, "mkosi-profiles")),
                patches=_path(root, entry.get("patches"), path, "patches"),
                kernel_config=_path(root, entry.get("kernel-config"), path, "kernel-config"),
                config_file=path,
            )
        )
    return project


def _choice(data: dict[str, object], key: str, allowed: tuple[str, ...], path: Path) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise InputError(f"{path}: {key} = {value!r}: one of {', '.join(allowed)}")
    return str(value)


def _strings(value: object, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: {key} must be a list of strings")
    return list(value)


def _path(root: Path, value: object, path: Path, key: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{path}: {key} must be a path string")
    return root / value
