"""An mkosi recipe read as mkosi v26 reads it, statically: every value keeps its file and line.

Per directory parsed as a configuration directory (the recipe, an `Include=`d directory, a
directory in `mkosi.conf.d/`, a profile directory):

    1. `[Match]`/`[TriggerMatch]` of `mkosi.conf`: if false, the whole directory is skipped
    2. implicit files: mkosi.extra/ (ExtraTrees), mkosi.skeleton/, mkosi.repart/, the scripts
       mkosi.{sync,prepare,build,postinst,finalize,postoutput}[.chroot] and mkosi.<name>.d/*
    3. the body of mkosi.conf
    4. mkosi.conf.d/ in sorted order: directories as configuration directories (no profiles),
       `*.conf` files as single files whose own [Match] covers only themselves
    5. profiles named by Profiles= at that point: mkosi.profiles/<name>/ or <name>.conf

Lists append and `Key=` (empty) clears them; scalars: the last assignment wins and `Key=` resets.
Relative paths resolve against the working directory: the directory being parsed (for a drop-in
file, its configuration directory). `Include=` is read right after its line, once per file.
mkosi.local* (a developer's own overrides, not part of the recipe) is not read.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from cvmlint.errors import InputError
from cvmlint.facts.provenance import Provenance
from cvmlint.recipe import ini
from cvmlint.recipe.settings import (
    DICT,
    MATCH_KEYS,
    MATCH_SECTIONS,
    RENAMED,
    SCALAR,
    SECTIONS,
    SETTINGS,
    SPACE_LIST,
)

PATH_LISTS = {"ExtraTrees", "SkeletonTrees", "RepartDirectories", "SyncScripts", "PrepareScripts", "BuildScripts",
              "PostInstallationScripts", "FinalizeScripts", "PostOutputScripts", "PackageDirectories", "BaseTrees",
              "Initrds", "EnvironmentFiles"}
SCRIPTS = {"sync": "SyncScripts", "prepare": "PrepareScripts", "build": "BuildScripts",
           "postinst": "PostInstallationScripts", "finalize": "FinalizeScripts", "postoutput": "PostOutputScripts"}
BUILTIN_INCLUDES = {"mkosi-initrd", "mkosi-tools", "mkosi-vm", "mkosi-addon", "mkosi-obs"}
MAX_FILES = 500


@dataclass(frozen=True)
class Value:
    """One value as written, where it was written, and the directory it is relative to."""

    text: str
    where: Provenance
    base: Path


@dataclass
class MkosiConfig:
    """The recipe after mkosi's precedence rules: what each setting ends up as."""

    directory: Path
    scalars: dict[str, Value] = field(default_factory=dict)
    lists: dict[str, list[Value]] = field(default_factory=dict)
    dicts: dict[str, dict[str, Value]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    """Every configuration file read, in order."""

    def scalar(self, name: str) -> str | None:
        value = self.scalars.get(name)
        return value.text if value is not None else None

    def items(self, name: str) -> list[Value]:
        return self.lists.get(name, [])

    def path(self, value: Value) -> Path:
        """A path value made absolute (against the working directory it was written in)."""
        return Path(os.path.normpath(value.base / os.path.expanduser(value.text)))


class Reader:
    """Walks a recipe's configuration files in mkosi's order."""

    def __init__(self, directory: Path, profiles: list[str], display_base: Path) -> None:
        self.config = MkosiConfig(directory)
        self.cli_profiles = profiles
        self.display_base = display_base
        self.seen: set[str] = set()

    def display(self, path: Path) -> str:
        return os.path.relpath(path, self.display_base)

    def where(self, path: Path, line: int | None = None) -> Provenance:
        return Provenance(file=self.display(path), line=line)

    def warn(self, path: Path, line: int, message: str) -> None:
        self.config.warnings.append(f"{self.display(path)}:{line}: warning: {message}")

    # -- directories and files -----------------------------------------------------------------
    def read_directory(self, directory: Path, profiles: bool = True) -> None:
        conf = directory / "mkosi.conf"
        items = self.parse(conf) if conf.is_file() else []
        if items and not self.matches(items, conf, directory):
            return
        self.implicit_files(directory)
        if items:
            self.apply(items, conf, directory)
        dropins = directory / "mkosi.conf.d"
        if dropins.is_dir():
            for entry in sorted(dropins.iterdir()):
                if entry.is_dir():
                    self.read_directory(entry, profiles=False)
                elif entry.suffix == ".conf":
                    self.read_file(entry, directory)
        if profiles:
            names = [v.text for v in self.config.items("Profiles")] + self.cli_profiles
            for name in dict.fromkeys(names):
                base = directory / "mkosi.profiles"
                if (base / name).is_dir():
                    self.read_directory(base / name, profiles=False)
                elif (base / f"{name}.conf").is_file():
                    self.read_file(base / f"{name}.conf", directory)

    def read_file(self, path: Path, workdir: Path) -> None:
        items = self.parse(path)
        if self.matches(items, path, workdir):
            self.apply(items, path, workdir)

    def parse(self, path: Path) -> list[ini.Section | ini.Setting]:
        key = os.path.realpath(path)
        if len(self.config.files) >= MAX_FILES:
            raise InputError(f"{self.display(path)}: more than {MAX_FILES} configuration files (an include loop?)")
        self.seen.add(key)
        self.config.files.append(path)
        return ini.parse(path, display=self.display(path))

    def implicit_files(self, directory: Path) -> None:
        for name, setting in (("mkosi.extra", "ExtraTrees"), ("mkosi.extra.tar", "ExtraTrees"),
                              ("mkosi.skeleton", "SkeletonTrees"), ("mkosi.skeleton.tar", "SkeletonTrees"),
                              ("mkosi.repart", "RepartDirectories")):
            if (directory / name).exists():
                self.config.lists.setdefault(setting, []).append(
                    Value(name, Provenance(file=self.display(directory / name)), directory))
        for stem, setting in SCRIPTS.items():
            for suffix in ("", ".chroot"):
                script = directory / f"mkosi.{stem}{suffix}"
                if script.is_file():
                    self.config.lists.setdefault(setting, []).append(Value(script.name, self.where(script), directory))
            drop = directory / f"mkosi.{stem}.d"
            if drop.is_dir():
                for script in sorted(drop.iterdir()):
                    self.config.lists.setdefault(setting, []).append(
                        Value(f"mkosi.{stem}.d/{script.name}", self.where(script), directory))

    # -- [Match] -----------------------------------------------------------------------------
    def matches(self, items: list[ini.Section | ini.Setting], path: Path, workdir: Path) -> bool:
        """mkosi's [Match] and [TriggerMatch] rules, against the values read so far."""
        groups: dict[tuple[str, int], list[ini.Setting]] = {}
        current: tuple[str, int] | None = None
        for item in items:
            if isinstance(item, ini.Section):
                current = (item.name, item.line) if item.name in ("Match", "TriggerMatch") else None
                if current:
                    groups.setdefault(current, [])
            elif current is not None:
                groups[current].append(item)
        plain = [g for (name, _), g in groups.items() if name == "Match"]
        trigger = [g for (name, _), g in groups.items() if name == "TriggerMatch"]
        if not all(self.match_section(g, path, workdir, triggers=True) for g in plain):
            return False
        return not trigger or any(self.match_section(g, path, workdir, triggers=False) for g in trigger)

    def match_section(self, settings: list[ini.Setting], path: Path, workdir: Path, triggers: bool) -> bool:
        required: list[bool] = []
        optional: list[bool] = []
        for s in settings:
            value = s.value
            is_trigger = triggers and value.startswith("|")
            value = value.removeprefix("|") if triggers else value
            negate = value.startswith("!")
            result = self.condition(s, value.removeprefix("!"), path, workdir) != negate
            (optional if is_trigger else required).append(result)
        return all(required) and (not optional or any(optional))

    def condition(self, s: ini.Setting, value: str, path: Path, workdir: Path) -> bool:
        if s.key not in MATCH_KEYS:
            raise InputError(f"{self.display(path)}:{s.line}: unknown [Match] key {s.key}=")
        if s.key == "Profiles":
            return value in [v.text for v in self.config.items("Profiles")] + self.cli_profiles
        if s.key == "PathExists":
            return (workdir / value).exists()
        current = {"Format": "disk"}.get(s.key) if s.key not in self.config.scalars else self.config.scalar(s.key)
        if current is None:
            self.warn(path, s.line, f"[Match] {s.key}= compares with a value this recipe does not set (mkosi "
                      "would use the build host's): assumed not to match")
            return False
        if s.key == "ImageId":
            return fnmatch.fnmatchcase(current, value)
        return current == value

    # -- settings ----------------------------------------------------------------------------
    def apply(self, items: list[ini.Section | ini.Setting], path: Path, workdir: Path) -> None:
        for item in items:
            if isinstance(item, ini.Section):
                if item.name not in SECTIONS | MATCH_SECTIONS:
                    self.warn(path, item.line, f"unknown section [{item.name}]: mkosi ignores everything in it")
                continue
            if item.section in MATCH_SECTIONS or item.section not in SECTIONS:
                continue
            self.setting(item, path, workdir)

    def setting(self, s: ini.Setting, path: Path, workdir: Path) -> None:
        key = s.key.removeprefix("@")
        if key in RENAMED:
            self.warn(path, s.line, f"{key}= is an old name of {RENAMED[key]}=")
            key = RENAMED[key]
        if key not in SETTINGS:
            close = [k for k in SETTINGS if k.lower() == key.lower()]
            hint = f" (did you mean {close[0]}=?)" if close else ""
            self.warn(path, s.line, f"unknown setting {key}={hint}: mkosi ignores it")
            return
        section, kind = SETTINGS[key]
        if section != s.section and not (s.section == "Host" and section == "Runtime"):
            self.warn(path, s.line, f"{key}= belongs in [{section}], not [{s.section}] (mkosi accepts it)")
        if key == "Include":
            self.include(s, path, workdir)
        elif kind == DICT:
            self.dict_setting(key, s, path, workdir)
        elif kind == SCALAR:
            value = s.value
            if value:
                self.config.scalars[key] = Value(value, self.where(path, s.line), workdir)
            else:
                self.config.scalars.pop(key, None)
        else:
            self.list_setting(key, kind, s, path, workdir)

    def list_setting(self, key: str, kind: str, s: ini.Setting, path: Path, workdir: Path) -> None:
        if not s.value:
            self.config.lists[key] = []
            return
        values = self.config.lists.setdefault(key, [])
        for text, line in s.lines:
            parts = text.split() if kind == SPACE_LIST else [p for chunk in text.split(",") for p in chunk.split()]
            for part in parts:
                values.append(Value(part, self.where(path, line), workdir))

    def dict_setting(self, key: str, s: ini.Setting, path: Path, workdir: Path) -> None:
        if not s.value:
            self.config.dicts[key] = {}
            return
        values = self.config.dicts.setdefault(key, {})
        for text, line in s.lines:
            for word in text.split():
                name, _, val = word.partition("=")
                values[name] = Value(val, self.where(path, line), workdir)

    def include(self, s: ini.Setting, path: Path, workdir: Path) -> None:
        for text, line in s.lines:
            for name in (p.strip() for p in text.split(",") if p.strip()):
                if name in BUILTIN_INCLUDES:
                    self.warn(path, line, f"Include={name} is one of mkosi's built-in configurations, which "
                              "cvmlint does not read")
                    continue
                target = Path(os.path.normpath(workdir / os.path.expanduser(name)))
                if os.path.realpath(target) in self.seen:
                    continue
                self.seen.add(os.path.realpath(target))
                if target.is_dir():
                    self.read_directory(target, profiles=True)
                elif target.is_file():
                    self.read_file(target, workdir)
                else:
                    raise InputError(f"{self.display(path)}:{line}: Include={name}: {self.display(target)} "
                                     "does not exist")


def read_recipe(directory: Path, profiles: list[str] | None = None, display_base: Path | None = None) -> MkosiConfig:
    """The recipe in `directory` (an mkosi configuration directory), with `--profile` names."""
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    directory = directory.resolve()
    if not (directory / "mkosi.conf").is_file() and (directory / "mkosi" / "mkosi.conf").is_file():
        directory = directory / "mkosi"
    if not (directory / "mkosi.conf").is_file() and not (directory / "mkosi.conf.d").is_dir():
        raise InputError(f"{directory}: no mkosi.conf or mkosi.conf.d/: not an mkosi recipe")
    reader = Reader(directory, list(profiles or []), (display_base or Path.cwd()).resolve())
    reader.read_directory(directory)
    return reader.config
