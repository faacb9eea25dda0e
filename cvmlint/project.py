"""`cvmlint.toml`: the recipes a repository holds, and what goes with each.

    policy = "policies/cvm-baseline.cvmp"     # default policy for `cvmlint lint` (optional)

    [[recipe]]
    path = "recipes/tdx-base"                 # an mkosi configuration directory
    profiles = ["tdx-base"]                   # policy profiles to apply
    mkosi-profiles = []                       # mkosi profiles to select (as `mkosi --profile`)
    patches = "patches"                       # the kernel's patch series: *.patch in name order,
                                              # or the order of a `series` file there
    kernel-config = "patches/kernel.config"   # config fragment the kernel is built with

    [mkosi-profile-implies]                   # an mkosi profile selected (by the recipe or by
    dev = ["dev"]                             # --mkosi-profile) applies these policy profiles too

Paths are relative to the file. `cvmlint lint` with no argument lints every recipe listed here;
the file is looked for in the working directory and its parents.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cvmlint.errors import InputError

if TYPE_CHECKING:
    from cvmlint.facts.model import Facts

NAME = "cvmlint.toml"


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


@dataclass
class Project:
    root: Path
    file: Path | None = None
    policy: Path | None = None
    recipes: list[RecipeEntry] = field(default_factory=list)
    implies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """mkosi profile -> the policy profiles selecting it implies."""

    def policy_profiles(self, entry: RecipeEntry | None, facts: Facts, extra: list[str]) -> list[str]:
        """The recipe's policy profiles, those its selected mkosi profiles imply, then `extra` (--profile)."""
        from cvmlint.facts.model import Build

        selected = facts.build.profiles if isinstance(facts.build, Build) else ()
        implied = [p for name in selected for p in self.implies.get(name, ())]
        return list(dict.fromkeys([*(entry.profiles if entry else ()), *implied, *extra]))

    def entry_for(self, directory: Path) -> RecipeEntry | None:
        real = directory.resolve()
        return next((r for r in self.recipes if r.path.resolve() == real), None)


def find_project(start: Path) -> Project:
    """The nearest cvmlint.toml at or above `start`, or an empty project rooted at `start`."""
    for directory in (start.resolve(), *start.resolve().parents):
        if (directory / NAME).is_file():
            return load_project(directory / NAME)
    return Project(start.resolve())


def load_project(path: Path) -> Project:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: {err}") from None
    root = path.parent
    project = Project(root, path, _path(root, data.get("policy"), path, "policy"))
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
    unknown_keys = set(data) - {"policy", "recipe", "mkosi-profile-implies", "limits"}
    if unknown_keys:
        raise InputError(f"{path}: unknown key(s) {', '.join(sorted(unknown_keys))}")
    recipes = data.get("recipe", [])
    if not isinstance(recipes, list):
        raise InputError(f"{path}: `recipe` must be an array of tables ([[recipe]])")
    for k, entry in enumerate(recipes):
        where = f"{path}:{lines[k] if k < len(lines) else 0}"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise InputError(f'{where}: a [[recipe]] needs path = "…"')
        unknown = set(entry) - {"path", "profiles", "mkosi-profiles", "patches", "kernel-config"}
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
