"""An mkosi recipe read as mkosi reads it, statically: every value keeps its file and line.

cvmlint follows mkosi 26 and later (checked against mkosi 25.3 and 27.1), and warns at the line where a
recipe relies on what mkosi 25 reads otherwise: list items with spaces, unknown settings (errors in 25),
UnifiedKernelImages=yes (25 builds a UKI, 26+ copies a prebuilt signed one), [Assert] (ignored by 25),
%I (empty in 25, `main` in 26+). Per directory parsed as a configuration directory (the recipe, an
`Include=`d directory, a directory in `mkosi.conf.d/`, a profile directory):

    1. `[Match]`/`[TriggerMatch]` of `mkosi.conf`: if false, the whole directory is skipped;
       then `[Assert]`/`[TriggerAssert]` (false: mkosi refuses the recipe)
    2. at the top only: `mkosi.local/` and `mkosi.local.conf`, whose values then beat the recipe's
       (as the command line's do)
    3. implicit files: mkosi.extra/ (ExtraTrees), mkosi.skeleton/, mkosi.repart/, mkosi.version, mkosi.seed,
       the scripts mkosi.{sync,prepare,build,postinst,finalize,postoutput}[.chroot] and mkosi.<name>.d/*
    4. the body of mkosi.conf (an `Include=` is read right after its line, once per path)
    5. mkosi.conf.d/ in sorted order: directories as configuration directories (no profiles),
       `*.conf` files as single files whose own [Match] covers only themselves
    6. profiles selected at that point: mkosi.profiles/<name>/ and mkosi.profiles/<name>.conf

Lists append and `Key=` (empty) clears them; scalars: the last assignment wins and `Key=` resets;
the command line beats everything. Values have their specifiers expanded (`recipe.specifiers`).
Relative paths resolve against the working directory: the directory being parsed (for a drop-in
file, its configuration directory).

What the build host decides (an unset Distribution=, a `[Match] SystemdVersion=`) is not guessed:
the settings a host-dependent condition gates are recorded as *undecided*, with the reason, and the
facts that read them are unknown.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from cvmlint import limits
from cvmlint.errors import InputError
from cvmlint.facts.provenance import Provenance
from cvmlint.files import present
from cvmlint.recipe import ini
from cvmlint.recipe.match import Condition, Truth, compare_versions, decode, file_matches
from cvmlint.recipe.settings import (
    ARCHITECTURES,
    BOOLEANS,
    DICT,
    ENUMS,
    MATCH_KEYS,
    MATCH_KEYS_NOT_IN_25,
    MATCH_SECTIONS,
    NOT_IN_25,
    RENAMED,
    SCALAR,
    SECTIONS,
    SETTINGS,
    SPACE_LIST,
    feature,
)
from cvmlint.recipe.specifiers import HostValue, Place, expand

SCRIPTS = {
    "sync": "SyncScripts",
    "prepare": "PrepareScripts",
    "build": "BuildScripts",
    "postinst": "PostInstallationScripts",
    "finalize": "FinalizeScripts",
    "postoutput": "PostOutputScripts",
}
CHROOT_SCRIPTS = {"prepare", "build", "postinst", "finalize"}
IMPLICIT_TREES = (
    ("mkosi.skeleton", "SkeletonTrees"),
    ("mkosi.skeleton.tar", "SkeletonTrees"),
    ("mkosi.extra", "ExtraTrees"),
    ("mkosi.extra.tar", "ExtraTrees"),
    ("mkosi.repart", "RepartDirectories"),
    ("mkosi.packages", "PackageDirectories"),
)
BUILTIN_INCLUDES = {"mkosi-initrd", "mkosi-tools", "mkosi-vm", "mkosi-addon", "mkosi-obs"}
PATH_SETTINGS = {
    "Include",
    "ExtraTrees",
    "SkeletonTrees",
    "RepartDirectories",
    "PackageDirectories",
    "BaseTrees",
    "SyncScripts",
    "PrepareScripts",
    "BuildScripts",
    "PostInstallationScripts",
    "FinalizeScripts",
    "PostOutputScripts",
    "Initrds",
}
DEFAULTS = {"Format": "disk", "Bootloader": "systemd-boot", "Bootable": "auto", "UnifiedKernelImages": "auto"}
HOST = {
    "Distribution": "Distribution= is not set: mkosi uses the build host's distribution",
    "Release": "Release= is not set: mkosi uses the build host's release (or the distribution's default)",
    "Architecture": "Architecture= is not set: mkosi builds for the build host's architecture",
}
HOST_MATCHES = {
    "SystemdVersion": "the build host's systemd version",
    "HostArchitecture": "the build host's architecture (give it with --host-architecture)",
    "ToolsTreeDistribution": "the tools tree",
    "ToolsTreeRelease": "the tools tree",
}
EVERYTHING = "*"
"""The undecided key that stands for every setting (a whole directory may or may not apply)."""


@dataclass(frozen=True)
class CommandLine:
    """What mkosi is given on its command line: profiles, and settings a recipe may leave to it
    (`mkosi -d debian -r trixie --architecture x86-64 --profile dev`). These beat the recipe's own."""

    profiles: tuple[str, ...] = ()
    distribution: str | None = None
    release: str | None = None
    architecture: str | None = None
    host_architecture: str | None = None
    """The build host's architecture, for `[Match] HostArchitecture=` (unknown when not given)."""

    def scalars(self) -> dict[str, str]:
        values = {"Distribution": self.distribution, "Release": self.release, "Architecture": self.architecture}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Value:
    """One value as written (specifiers expanded), where it was written, and the directory it is relative to."""

    text: str
    where: Provenance
    base: Path
    unknown: str | None = None
    """Why the value cannot be known before the build (a host-dependent specifier), or None."""


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
    undecided: dict[str, str] = field(default_factory=dict)
    """Setting (or EVERYTHING) -> why what a recipe sets for it depends on the build host."""

    def scalar(self, name: str) -> str | None:
        value = self.scalars.get(name)
        return value.text if value is not None else None

    def items(self, name: str) -> list[Value]:
        return self.lists.get(name, [])

    def path(self, value: Value) -> Path:
        """A path value made absolute (against the working directory it was written in)."""
        return Path(os.path.normpath(value.base / os.path.expanduser(value.text)))

    def why_undecided(self, *settings: str) -> str | None:
        """Why one of `settings` (or everything) is undecided, or None when all are decided."""
        for name in (EVERYTHING, *settings):
            if name in self.undecided:
                return self.undecided[name]
        return None


class Reader:
    """Walks a recipe's configuration files in mkosi's order."""

    def __init__(self, directory: Path, cli: CommandLine, display_base: Path, resources: Path | None) -> None:
        self.config = MkosiConfig(directory)
        self.display_base = display_base
        self.resources = resources
        self.seen: set[str] = set()
        self.include_depth = 0
        self._shown: dict[Path, str] = {}
        self.warned: set[str] = set()
        self.reason = ""
        """Why the last match was undecided."""
        here = Provenance(detail="command line")
        self.cli_scalars = {k: Value(v, here, directory) for k, v in cli.scalars().items()}
        self.cli_lists: dict[str, list[Value]] = {"Profiles": [Value(p, here, directory) for p in cli.profiles]}
        self.host_architecture = cli.host_architecture

    def display(self, path: Path) -> str:
        shown = self._shown.get(path)
        if shown is None:  # asked once per value: a file of many items must not pay relpath for each
            shown = self._shown[path] = os.path.relpath(path, self.display_base)
        return shown

    def where(self, path: Path, line: int | None = None) -> Provenance:
        return Provenance(file=self.display(path), line=line)

    def warn(self, path: Path, line: int, message: str) -> None:
        text = f"{self.display(path)}:{line}: warning: {message}"
        if text not in self.warned:
            self.warned.add(text)
            self.config.warnings.append(text)

    # -- values as they stand now ----------------------------------------------------------------
    def current(self, key: str) -> str | HostValue | None:
        """A scalar's value at this point of the reading: command line, recipe, then mkosi's default."""
        value = self.cli_scalars.get(key) or self.config.scalars.get(key)
        if value is not None:
            return HostValue(value.unknown) if value.unknown else value.text
        if key in HOST:
            return HostValue(HOST[key])
        if key in DEFAULTS:
            return DEFAULTS[key]
        if key == "Output":
            image_id, version = self.current("ImageId"), self.current("ImageVersion")
            return f"{image_id or 'image'}" + (f"_{version}" if version else "")
        return None

    def current_list(self, key: str) -> list[Value]:
        return self.config.items(key) + self.cli_lists.get(key, [])

    def profiles(self) -> list[str]:
        """Profiles selected now: the recipe's, then the command line's (mkosi reads a name given twice twice)."""
        return [v.text for v in self.current_list("Profiles")]

    # -- directories and files -------------------------------------------------------------------
    def read_directory(self, directory: Path, profiles: bool = True, local: bool = False) -> None:
        conf = directory / "mkosi.conf"
        items = self.parse(conf) if present(conf) else []
        decided = self.matches(items, conf, directory, "Match")
        if decided is not True:
            if decided is None:
                self.undecide(EVERYTHING, self.reason)
            return
        self.asserts(items, conf, directory)
        if local:
            self.read_local(directory)
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
            for name in self.profiles():
                base = directory / "mkosi.profiles"
                if (base / name).is_dir():
                    self.read_directory(base / name, profiles=False)
                if present(base / f"{name}.conf"):
                    self.read_file(base / f"{name}.conf", directory)

    def read_file(self, path: Path, workdir: Path) -> None:
        items = self.parse(path)
        decided = self.matches(items, path, workdir, "Match")
        if decided is None:
            for item in items:
                if isinstance(item, ini.Setting) and item.section not in MATCH_SECTIONS:
                    self.undecide(RENAMED.get(item.key.lstrip("@"), item.key.lstrip("@")), self.reason)
        if decided is True:
            self.asserts(items, path, workdir)
            self.apply(items, path, workdir)

    def read_local(self, directory: Path) -> None:
        """mkosi.local/ and mkosi.local.conf: a developer's overrides, which mkosi reads (and lets beat
        the recipe) when they are there."""
        for local in (directory / "mkosi.local", directory / "mkosi.local.conf"):
            if not (local.is_dir() if local.name == "mkosi.local" else present(local)):
                continue
            self.warn(local, 1, f"{local.name} is read: mkosi lets it override the recipe (keep it out of git)")
            if local.is_dir():
                self.read_directory(local, profiles=False)
            else:
                self.read_file(local, directory)
            for key in list(self.config.scalars):
                self.cli_scalars.setdefault(key, self.config.scalars.pop(key))
            for key in list(self.config.lists):
                self.cli_lists[key] = self.config.lists.pop(key) + self.cli_lists.get(key, [])

    def parse(self, path: Path) -> list[ini.Section | ini.Setting]:
        most = limits.get("recipe-files")
        limits.note("recipe-files", len(self.config.files) + 1)
        if len(self.config.files) >= most:
            raise InputError(
                f"{self.display(path)}: more than {most} configuration files (an include loop? limit recipe-files)"
            )
        self.config.files.append(path)
        return ini.parse(path, display=self.display(path), sections=SECTIONS | MATCH_SECTIONS | {"UKIProfile"})

    def implicit_files(self, directory: Path) -> None:
        for name, setting in IMPLICIT_TREES:
            if (directory / name).exists():
                self.config.lists.setdefault(setting, []).append(
                    Value(name, Provenance(file=self.display(directory / name)), directory)
                )
        version = directory / "mkosi.version"
        if present(version):
            self.config.scalars["ImageVersion"] = self.version_file(version, directory)
        seed = directory / "mkosi.seed"
        if seed.is_file():
            text = seed.read_text(encoding="utf-8", errors="replace").strip()
            self.config.scalars["Seed"] = Value(text, self.where(seed, 1), directory)
        configure = directory / "mkosi.configure"
        if present(configure):
            self.config.lists.setdefault("ConfigureScripts", []).append(
                Value(configure.name, self.where(configure), directory)
            )
        for stem, setting in SCRIPTS.items():
            for suffix in ("", ".chroot") if stem in CHROOT_SCRIPTS else ("",):
                script = directory / f"mkosi.{stem}{suffix}"
                if present(script):
                    self.config.lists.setdefault(setting, []).append(Value(script.name, self.where(script), directory))
            drop = directory / f"mkosi.{stem}.d"
            if drop.is_dir():
                for script in sorted(drop.iterdir()):
                    self.config.lists.setdefault(setting, []).append(
                        Value(f"mkosi.{stem}.d/{script.name}", self.where(script), directory)
                    )

    def version_file(self, path: Path, directory: Path) -> Value:
        if os.access(path, os.X_OK):
            return Value(
                "",
                self.where(path),
                directory,
                unknown=f"{self.display(path)} is executable: mkosi runs it at build time for the version",
            )
        return Value(ini.read_text(path, "version file", self.display(path)).strip(), self.where(path, 1), directory)

    def undecide(self, key: str, reason: str) -> None:
        self.config.undecided.setdefault(key, reason)

    # -- [Match] and [Assert] --------------------------------------------------------------------
    def matches(self, items: list[ini.Section | ini.Setting], path: Path, workdir: Path, kind: str) -> Truth:
        """Whether the file's [Match] (or [Assert]) sections hold; None when the build host decides
        (the reason is left in self.reason)."""
        self.reason = ""
        plain: list[list[Condition]] = []
        triggers: list[list[Condition]] = []
        current: list[Condition] | None = None
        for item in items:
            if isinstance(item, ini.Section):
                current = None
                if item.name in (kind, f"Trigger{kind}"):
                    current = []
                    (triggers if item.name.startswith("Trigger") else plain).append(current)
            elif current is not None:
                trigger, negate, value = decode(item.value)
                current.append(Condition(trigger, negate, self.condition(item, value, path, workdir)))
        return file_matches(plain, triggers)

    def asserts(self, items: list[ini.Section | ini.Setting], path: Path, workdir: Path) -> None:
        holds = self.matches(items, path, workdir, "Assert")
        if holds is False:
            raise InputError(
                f"{self.display(path)}: its [Assert] conditions do not hold: mkosi 26 and later refuse "
                "to build this recipe (mkosi 25 ignores [Assert])"
            )
        if holds is None:
            self.warn(path, 1, f"whether its [Assert] conditions hold depends on the build host ({self.reason})")

    def condition(self, s: ini.Setting, value: str, path: Path, workdir: Path) -> Truth:
        key = RENAMED.get(s.key, s.key)
        if key not in MATCH_KEYS:
            raise InputError(f"{self.display(path)}:{s.line}: unknown [{s.section}] key {s.key}=")
        if key in MATCH_KEYS_NOT_IN_25:
            self.warn(path, s.line, f"[{s.section}] {key}= is new in mkosi 26: mkosi 25 refuses the recipe")
        expansion = expand(value, self.current, self.place(path, workdir))
        if expansion.unknown:
            return self.undecided_because(path, s, expansion.unknown)
        value = expansion.text
        self.check_enum(key, value, path, s)
        if key == "HostArchitecture" and self.host_architecture:
            return value == self.host_architecture
        if key in HOST_MATCHES:
            return self.undecided_because(path, s, f"it compares with {HOST_MATCHES[key]}")
        if key == "Profiles":
            profiles = self.profiles()
            return not profiles if not value else value in profiles
        if key == "PathExists":
            if not value:
                return False
            target = Path(os.path.realpath(workdir / value))
            if Path(value).is_absolute() or not any(target.is_relative_to(d) for d in self.recipe_directories()):
                return self.undecided_because(path, s, f"{value} is a path on the build host, outside the recipe")
            return target.exists()
        if key == "Image":
            return value == "main"
        if key == "Environment":
            env = self.config.dicts.get("Environment", {})
            name, eq, wanted = value.partition("=")
            unknown = env[name].unknown if name in env else None
            if eq and unknown:
                return self.undecided_because(path, s, unknown)
            return name in env if not eq else name in env and env[name].text == wanted
        if key in ("Repositories", "BuildSources"):
            values = [v.text for v in self.current_list(key)]
            return not values if not value else value in values
        current = self.current(key)
        if isinstance(current, HostValue):
            return self.undecided_because(path, s, current)
        if key == "Bootable":
            return feature(current or "auto") == feature(value)
        if current is None:
            return False
        if key == "Architecture" and value == "uefi":
            return ARCHITECTURES.get(current, False)
        if key == "ImageId":
            return fnmatch.fnmatchcase(current, value)
        if key == "ImageVersion":
            return compare_versions(value, current)
        return current == value

    def recipe_directories(self) -> set[Path]:
        """The directories the recipe is made of: its own and those of every configuration file read."""
        return {Path(os.path.realpath(self.config.directory))} | {
            Path(os.path.realpath(f.parent)) for f in self.config.files
        }

    def check_enum(self, key: str, value: str, path: Path, s: ini.Setting) -> None:
        allowed = set(ARCHITECTURES) | {"uefi"} if key in ("Architecture", "HostArchitecture") else ENUMS.get(key)
        if allowed is not None and value not in allowed:
            raise InputError(
                f"{self.display(path)}:{s.line}: [{s.section}] {s.key}={value}: not a value mkosi knows "
                f"({', '.join(sorted(allowed))})"
            )
        if key == "Architecture" and value == "uefi":
            self.warn(path, s.line, f"[{s.section}] Architecture=uefi is new in mkosi 26: mkosi 25 refuses it")

    def undecided_because(self, path: Path, s: ini.Setting, why: str) -> Truth:
        self.reason = f"{self.display(path)}:{s.line}: [{s.section}] {s.key}={s.value}: {why}"
        return None

    def place(self, path: Path, workdir: Path) -> Place:
        return Place(file=path, workdir=workdir, invocation=self.config.directory, image="main")

    # -- settings --------------------------------------------------------------------------------
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
        if key != s.key:
            self.warn(path, s.line, f"@{key}= is deprecated: write {key}=")
        if key in RENAMED:
            self.warn(path, s.line, f"{key}= is an old name of {RENAMED[key]}=")
            key = RENAMED[key]
        if key not in SETTINGS:
            close = [k for k in SETTINGS if k.lower() == key.lower()]
            hint = f" (did you mean {close[0]}=?)" if close else ""
            self.warn(path, s.line, f"unknown setting {key}={hint}: mkosi 26+ ignores it, mkosi 25 refuses the recipe")
            return
        section, kind = SETTINGS[key]
        if section != s.section:
            self.warn(path, s.line, f"{key}= belongs in [{section}], not [{s.section}] (mkosi accepts it)")
        if key in NOT_IN_25:
            self.warn(path, s.line, f"{key}= is new in mkosi 26: mkosi 25 refuses the recipe")
        if key == "UnifiedKernelImages":
            self.uki_value(s, path)
        lines = [self.expanded(text, line, path, workdir, key) for text, line in s.lines]
        if key == "Include":
            self.include(lines, path, workdir)
        elif kind == DICT:
            self.dict_setting(key, lines, path, workdir)
        elif kind == SCALAR:
            text = "\n".join(v.text for v in lines).strip()
            if text or any(v.unknown for v in lines):
                unknown = next((v.unknown for v in lines if v.unknown), None)
                self.config.scalars[key] = Value(text, self.where(path, s.line), workdir, unknown)
            else:
                self.config.scalars.pop(key, None)
        else:
            self.list_setting(key, kind, lines, path, s.line)

    def uki_value(self, s: ini.Setting, path: Path) -> None:
        value = s.value.lower()
        if value in ("enabled", "disabled"):
            self.warn(
                path,
                s.line,
                f"UnifiedKernelImages={s.value} is mkosi 25's spelling: mkosi 26+ refuses it "
                "(write signed, unsigned or none)",
            )
        elif value in ("signed", "unsigned", "none"):
            self.warn(path, s.line, f"UnifiedKernelImages={s.value} is new in mkosi 26: mkosi 25 refuses it")
        elif value and value != "auto":
            self.warn(
                path,
                s.line,
                f"UnifiedKernelImages={s.value}: mkosi 26+ reads it as "
                f"{'signed (copy a prebuilt UKI)' if value in BOOLEANS else 'none'}, mkosi 25 as "
                f"{'build a UKI' if value in BOOLEANS else 'no UKI'}",
            )

    def expanded(self, text: str, line: int, path: Path, workdir: Path, key: str = "") -> Value:
        expansion = expand(text, self.current, self.place(path, workdir))
        for warning in expansion.warnings:
            self.warn(path, line, warning)
        unknown = expansion.unknown
        if key in PATH_SETTINGS and "$" in expansion.text and unknown is None:
            unknown = f"{expansion.text!r}: mkosi expands $VARIABLES from the build host's environment"
        return Value(expansion.text, self.where(path, line), workdir, unknown)

    def list_setting(self, key: str, kind: str, lines: list[Value], path: Path, line: int) -> None:
        if not any(v.text.strip() or v.unknown for v in lines):
            self.config.lists[key] = []
            return
        values = self.config.lists.setdefault(key, [])
        for v in lines:
            if kind == SPACE_LIST:  # split on spaces only: a tab stays inside an item
                values += [Value(part, v.where, v.base, v.unknown) for part in v.text.split(" ") if part]
                continue
            for n, chunk in enumerate(v.text.split(",")):
                parts = chunk.split()
                if len(parts) > 1 or (n and chunk[:1].isspace() and parts):
                    self.warn(
                        path,
                        v.where.line or line,
                        f"{key}= item {chunk!r}: mkosi 26+ splits items on spaces "
                        "too, mkosi 25 keeps the spaces in the item (separate items with commas, no spaces)",
                    )
                values += [Value(part, v.where, v.base, v.unknown) for part in parts]

    def dict_setting(self, key: str, lines: list[Value], path: Path, workdir: Path) -> None:
        if not any(v.text.strip() for v in lines):
            self.config.dicts[key] = {}
            return
        import shlex

        values = self.config.dicts.setdefault(key, {})
        for v in lines:
            lexer = shlex.shlex(v.text, posix=True)
            lexer.whitespace, lexer.whitespace_split, lexer.commenters = " \n", True, ""
            try:
                words = list(lexer)
            except ValueError as err:
                raise InputError(f"{v.where}: {key}={v.text}: {err}") from None
            for word in words:
                name, eq, val = word.partition("=")
                values[name] = Value(
                    val,
                    v.where,
                    workdir,
                    v.unknown or (None if eq else f"{key}={name} copies the build host's ${name}"),
                )

    def include(self, lines: list[Value], path: Path, workdir: Path) -> None:
        for v in lines:
            for name in (p.strip() for p in v.text.split(",") if p.strip()):
                line = v.where.line or 0
                if v.unknown:
                    self.undecide(EVERYTHING, f"{v.where}: Include={name}: {v.unknown}")
                    continue
                if name in BUILTIN_INCLUDES:
                    self.include_builtin(name, path, line)
                    continue
                target = Path(os.path.normpath(workdir / os.path.expanduser(name)))
                if not target.exists():
                    raise InputError(
                        f"{self.display(path)}:{line}: Include={name}: {self.display(target)} does not exist"
                    )
                self.include_path(target, workdir)

    def include_path(self, target: Path, workdir: Path) -> None:
        key = os.path.realpath(target)
        if key in self.seen:
            return
        self.seen.add(key)
        self.include_depth += 1
        most = limits.get("include-depth")
        limits.note("include-depth", self.include_depth)
        if self.include_depth > most:
            raise InputError(
                f"{self.display(target)}: included {self.include_depth} levels deep, over the limit "
                f"include-depth = {most} (raise it with --limit include-depth=N)"
            )
        try:
            if target.is_dir():
                self.read_directory(target, profiles=True)
            else:
                self.read_file(target, workdir)
        finally:
            self.include_depth -= 1

    def include_builtin(self, name: str, path: Path, line: int) -> None:
        if self.resources is None or not (self.resources / name).is_dir():
            reason = (
                f"{self.display(path)}:{line}: Include={name} is mkosi's built-in configuration, and no "
                "installed mkosi was found to read it from (give its resources with --mkosi-resources)"
            )
            self.warn(path, line, reason.split(": ", 1)[1])
            self.undecide(EVERYTHING, reason)
            return
        self.include_path(self.resources / name, self.resources / name)


def find_resources() -> Path | None:
    """The built-in configurations of an installed mkosi (for `Include=mkosi-vm` …), if one is installed."""
    import glob

    if env := os.environ.get("CVMLINT_MKOSI_RESOURCES"):
        return Path(env)
    for pattern in (
        "/usr/lib/python3/dist-packages/mkosi/resources",
        "/usr/lib/python3*/site-packages/mkosi/resources",
        "/usr/local/lib/python3*/*-packages/mkosi/resources",
    ):
        for found in sorted(glob.glob(pattern)):
            if Path(found, "mkosi-initrd").is_dir():
                return Path(found)
    return None


def read_recipe(
    directory: Path,
    cli: CommandLine | list[str] | None = None,
    display_base: Path | None = None,
    resources: Path | None = None,
) -> MkosiConfig:
    """The recipe in `directory` (an mkosi configuration directory), as `mkosi` with `cli` would read it."""
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    if not isinstance(cli, CommandLine):
        cli = CommandLine(profiles=tuple(cli or ()))
    directory = directory.resolve()
    if not (directory / "mkosi.conf").is_file() and (directory / "mkosi" / "mkosi.conf").is_file():
        directory = directory / "mkosi"
    if not (directory / "mkosi.conf").is_file() and not (directory / "mkosi.conf.d").is_dir():
        raise InputError(f"{directory}: no mkosi.conf or mkosi.conf.d/: not an mkosi recipe")
    reader = Reader(directory, cli, (display_base or Path.cwd()).resolve(), resources or find_resources())
    reader.read_directory(directory, profiles=True, local=True)
    config = reader.config
    for key, value in reader.cli_scalars.items():
        config.scalars[key] = value
    for key, values in reader.cli_lists.items():
        config.lists[key] = config.items(key) + values
    for script in config.items("ConfigureScripts"):  # the first one names the reason
        config.undecided.setdefault(
            EVERYTHING,
            f"{script.where}: {script.text}: mkosi runs this configure script at build time and builds with the "
            "configuration it returns (it can drop lockdown= or add packages); cvmlint never runs it",
        )
    return config
