"""GRUB booting one entry, as `cvmlint measure` predicts it: the interpreter of scan/grub.py with its
hooks set to follow only what GRUB does on this boot, in order.

    every command line run     its words after expansion and quote removal, joined by spaces: an
                               assignment, a function call, a `[ … ]` test, a condition command
    menuentry / submenu        the command with its block as the last word: "{" + the raw text with
                               `*`, `?` and `\\` escaped + "}" (when defined; a submenu is not entered)
    booting the entry          "setparams TITLE", then its block
    files opened               configfile/source, `[ -s F ]`, load_env/save_env ($prefix/grubenv),
                               the .lst files `set prefix=` reads, the kernel, each initrd
    not measured               `if`/`function` themselves, `loadfont unicode` (GRUB's memdisk), the
                               implicit `boot`; a test with -e/-f/-d lists a directory, opens nothing

Facts from GRUB 2.06 and Debian's 2.12 (script/execute.c, commands/{test,loadenv,search,menuentry}.c,
normal/main.c, commands/tpm.c), checked against real boots (tests/measure, tests/build).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cvmlint import limits
from cvmlint.errors import SHOWN_LINE
from cvmlint.scan.grub import (
    GRUB_FEATURES,
    Executed,
    FileReader,
    GrubEntry,
    GrubFile,
    GrubMenu,
    Loader,
    NotFollowed,
    _cmdline_word,
    _Interp,
    _Tok,
    search_args,
    split_device,
)

EXPORTED = ("root", "prefix", "grub_platform", "grub_cpu", "config_directory", "config_file", *GRUB_FEATURES)
"""The variables a `configfile` menu starts with (GRUB exports these itself); `export` adds more."""
UNSET = frozenset(
    (
        "boot_once", "chosen", "default", "fallback", "font", "gfxpayload", "have_grubenv", "lang",
        "locale_dir", "menuentry_id_option", "next_entry", "prev_saved_entry", "saved_entry", "timeout",
        "timeout_style", "recordfail", "vt_handoff",
    )
)  # fmt: skip
"""Variables GRUB itself does not set that Debian's grub.cfg reads: empty until the script or grubenv
sets them. Any other variable cvmlint was not told the value of stops the prediction."""
LISTS = ("command.lst", "fs.lst", "crypto.lst", "terminal.lst")
"""What `set prefix=` reads from $prefix/x86_64-efi, in order (normal/main.c read_lists)."""
ENV_HEADER = b"# GRUB Environment Block\n"
ENTRY_OPTIONS = {"--class": 1, "--users": 1, "--hotkey": 1, "--id": 1, "--unrestricted": 0}
"""menuentry options and how many words each takes."""
Finder = Callable[[str, str], str]
"""(search kind: fs-uuid | label | file, value) -> the one device; NotFollowed when none or several."""


@dataclass
class Firmware:
    """What GRUB asks the machine and its own image: the modules built in, the fonts in its memdisk,
    whether `fwsetup --is-supported` holds."""

    modules: frozenset[str]
    memdisk: frozenset[str] = frozenset()
    fwsetup: bool = True


@dataclass
class _Entry:
    title: str
    toks: list[_Tok]
    brace: int
    file: GrubFile


@dataclass
class _State:
    entries: list[_Entry] = field(default_factory=list)
    functions: dict[str, tuple[list[_Tok], int, GrubFile]] = field(default_factory=dict)
    reads: dict[tuple[str, str], bytes] = field(default_factory=dict)
    exported: set[str] = field(default_factory=lambda: set(EXPORTED))
    trace: list[Executed] = field(default_factory=list)
    loaded: set[str] = field(default_factory=set)
    handed_over: bool = False


class Tracer(_Interp):
    """The interpreter following one boot; see the module's docstring."""

    def __init__(self, load: Loader, read: FileReader, find: Finder, firmware: Firmware, entry: str | None) -> None:
        super().__init__(load, lambda _kind, _value: None, GrubMenu())
        self.source, self.locate, self.firmware, self.wanted = read, find, firmware, entry
        self.state = _State()
        self.status = 0
        self.steps = 0
        self.files: dict[tuple[str, str], bytes | None] = {}
        self.bytes_read = 0

    # hooks of the base interpreter

    def stop(self, message: str) -> None:
        raise NotFollowed(message)

    def expand(self, word: str, env: dict[str, str], where: str) -> str:
        if _globbed(word):
            raise NotFollowed(f"{where}: {word!r} would be expanded against file names (a wildcard)")
        known = {name: "" for name in UNSET if name not in env} | env
        try:
            from cvmlint.scan.grub import expand

            return expand(word, known, strict=True)
        except NotFollowed as err:
            raise NotFollowed(f"{where}: {err}") from None

    def opened(self, file: GrubFile, name: str) -> None:
        self.state.trace.append(Executed("file", name, file.data))

    def finished(self) -> bool:
        return self.state.handed_over

    def run_file(self, device: str, path: str, env: dict[str, str], depth: int, name: str = "") -> dict[str, str]:
        directory = posixpath.dirname(path)
        env = {**env, "config_file": f"({device}){path}", "config_directory": f"({device}){directory}"}
        return super().run_file(device, path, env, depth, name)

    def function(self, words: list[_Tok], toks: list[_Tok], j: int, file: GrubFile, where: str) -> int:
        if len(words) != 2:
            raise NotFollowed(f"{where}: a function definition with {len(words) - 1} names")
        end = self.skip_braces(toks, j)
        self.state.functions[words[1].raw] = (toks, j, file)
        return end + 1

    def define(
        self,
        name: str,
        args: list[str],
        toks: list[_Tok],
        j: int,
        env: dict[str, str],
        file: GrubFile,
        depth: int,
        line: int,
        where: str,
    ) -> int:
        end = self.skip_braces(toks, j)
        if end >= len(toks):
            raise NotFollowed(f"{where}: the {name}'s block is not closed")
        raw = file.text[toks[j].pos + 1 : toks[end].pos]
        self.measure([name, *args, "{" + re.sub(r"([*?\\])", r"\\\1", raw) + "}"])
        if name == "menuentry":
            self.state.entries.append(_Entry(_title(args, where), toks, j, file))
        self.status = 0
        return end + 1

    def test(self, words: list[_Tok], env: dict[str, str], file: GrubFile, line: int) -> bool | None:
        where = f"{file.path}:{line}"
        if not words:
            raise NotFollowed(f"{where}: an if without a condition")
        args = [self.expand(w.raw, env, where) for w in words[1:]]
        self.run(words[0].raw, words, args, line, env, file, 0, None, where)
        return self.status == 0

    def run(
        self,
        name: str,
        words: list[_Tok],
        args: list[str],
        line: int,
        env: dict[str, str],
        file: GrubFile,
        depth: int,
        entry: GrubEntry | None,
        where: str,
    ) -> None:
        name = self.expand(name, env, where)
        self.measure([name, *args])
        self.status = self.execute(name, args, env, file, depth, entry, where)
        env["?"] = str(self.status)

    # what each command does

    def measure(self, words: list[str]) -> None:
        self.steps += 1
        limits.check("grub-steps", self.steps, "grub", "commands run while booting")
        self.state.trace.append(Executed("command", " ".join(words)))

    def read(self, device: str, path: str) -> bytes | None:
        """A file of the disk, read once per boot; all of them together within grub-read-bytes."""
        key = (device, path)
        if key not in self.files:
            data = self.source(device, path)
            self.bytes_read += len(data) if data is not None else 0
            limits.check("grub-read-bytes", self.bytes_read, "grub", f"({device}){path}")
            self.files[key] = data
        return self.files[key]

    def execute(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        file: GrubFile,
        depth: int,
        entry: GrubEntry | None,
        where: str,
    ) -> int:
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", name, re.S)
        if assignment and not args:
            return self.assign(assignment.group(1), assignment.group(2), env, where)
        if name in self.state.functions:
            return self.call(name, args, env, depth, entry, where)
        if entry is not None and name in ("linux", "initrd") and args:
            return self.load_kernel(name, args, env, where)
        handler = {
            "set": self.set,
            "[": self.bracket,
            "search": self.find_device,
            "search.fs_uuid": self.find_device,
            "search.fs_label": self.find_device,
            "search.file": self.find_device,
            "insmod": self.insmod,
            "load_env": self.load_env,
            "save_env": self.save_env,
            "loadfont": self.loadfont,
            "fwsetup": self.fwsetup,
        }.get(name)
        if handler is not None:
            return handler(name, args, env, where)
        if name in ("echo", "terminal_output", "terminal_input", "clear", "true"):
            return 0
        if name == "export":
            self.state.exported.update(args)
            return 0
        if name in ("configfile", "source") and len(args) == 1:
            return self.config(name, args[0], env, file, depth, where)
        shown = " ".join([name, *args])
        shown = shown if len(shown) <= SHOWN_LINE else shown[:SHOWN_LINE] + "…"
        raise NotFollowed(f"{where}: `{shown}` is not followed")

    def assign(self, key: str, value: str, env: dict[str, str], where: str) -> int:
        env[key] = value
        if key == "prefix":
            self.read_lists(value, where)
        if key in ("lang", "locale_dir") and env.get("lang"):
            self.check_locale(env, where)
        return 0

    def set(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        if len(args) != 1 or "=" not in args[0]:
            raise NotFollowed(f"{where}: `set {' '.join(args)}` is not followed (set NAME=VALUE is)")
        key, _, value = args[0].partition("=")
        return self.assign(key, value, env, where)

    def read_lists(self, prefix: str, where: str) -> None:
        for name in LISTS:
            path = f"{prefix}/x86_64-efi/{name}"
            device, inside = split_device(path, {})
            data = self.read(device, inside) if device else None
            if data is not None:
                self.state.trace.append(Executed("file", path, data))

    def check_locale(self, env: dict[str, str], where: str) -> None:
        """GRUB's gettext opens $locale_dir/LANG.mo (and the language alone): followed only when none exists."""
        lang, directory = env.get("lang", ""), env.get("locale_dir", "")
        if not directory:
            return
        device, inside = split_device(directory, env)
        for candidate in {lang, lang.split("_")[0]}:
            for suffix in (".mo", ".mo.gz", ".gmo"):
                if self.read(device, f"{inside}/{candidate}{suffix}") is not None:
                    raise NotFollowed(f"{where}: lang={lang} reads {directory}/{candidate}{suffix}: not followed yet")

    def call(
        self, name: str, args: list[str], env: dict[str, str], depth: int, entry: GrubEntry | None, where: str
    ) -> int:
        if depth > limits.get("grub-depth"):
            raise NotFollowed(f"{where}: functions call each other deeper than the limit grub-depth")
        toks, brace, file = self.state.functions[name]
        saved = {key: env[key] for key in env if key.isdigit() or key == "#"}
        for key in saved:
            del env[key]
        env.update({str(n): value for n, value in enumerate(args, start=1)} | {"#": str(len(args))})
        self.status = 0
        self.block(toks, brace + 1, env, file, depth + 1, entry)
        for key in [k for k in env if k.isdigit() or k == "#"]:
            del env[key]
        env.update(saved)
        return self.status

    def bracket(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        if args[-1:] != ["]"]:
            raise NotFollowed(f"{where}: `[` without its `]`")
        return 0 if self.evaluate(args[:-1], env, where) else 1

    def evaluate(self, words: list[str], env: dict[str, str], where: str) -> bool:
        """GRUB's test: `-o` of `-a` groups of (optionally negated) primaries."""
        if "-o" in words:
            k = words.index("-o")
            return self.evaluate(words[:k], env, where) or self.evaluate(words[k + 1 :], env, where)
        if "-a" in words:
            k = words.index("-a")
            return self.evaluate(words[:k], env, where) and self.evaluate(words[k + 1 :], env, where)
        if words[:1] == ["!"]:
            return not self.evaluate(words[1:], env, where)
        if len(words) == 1:
            return words[0] != ""
        if len(words) == 2 and words[0] in ("-z", "-n"):
            return (words[1] == "") == (words[0] == "-z")
        if len(words) == 2 and words[0] in ("-s", "-e", "-f", "-d"):
            return self.file_test(words[0], words[1], env, where)
        if len(words) == 3 and words[1] in ("=", "==", "!="):
            return (words[0] == words[2]) == (words[1] != "!=")
        raise NotFollowed(f"{where}: the test `[ {' '.join(words)} ]` is not followed")

    def file_test(self, op: str, path: str, env: dict[str, str], where: str) -> bool:
        device, inside = split_device(path, env)
        if op == "-d":
            raise NotFollowed(f"{where}: `[ -d {path} ]` is not followed")
        data = self.read(device, inside)
        if op == "-s" and data is not None:  # -s opens the file (to read its size): measured
            self.state.trace.append(Executed("file", path, data))
            return len(data) > 0
        return data is not None

    def find_device(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        kind, target, value, unknown = search_args(name, args)
        if unknown or value is None:
            raise NotFollowed(f"{where}: `{name} {' '.join(args)}` is not followed")
        try:
            env[target] = self.locate(kind, value)
        except NotFollowed as err:
            raise NotFollowed(f"{where}: {err}") from None
        return 0

    def insmod(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        if len(args) != 1:
            raise NotFollowed(f"{where}: insmod {' '.join(args)}")
        return 0 if self.load_module(args[0], env, where, 0) else 1

    def load_module(self, module: str, env: dict[str, str], where: str, depth: int) -> bool:
        """A module built in, or read from $prefix/x86_64-efi (measured, then its dependencies); Secure
        Boot off, so GRUB loads it."""
        if module in self.firmware.modules or module in self.state.loaded:
            return True
        if depth > limits.get("grub-depth") or len(self.state.loaded) >= limits.get("boot-reads"):
            raise NotFollowed(f"{where}: insmod {module}: more modules than the limits grub-depth, boot-reads")
        if "prefix" not in env:
            raise NotFollowed(f"{where}: insmod {module}: $prefix is not known")
        path = f"{env['prefix']}/x86_64-efi/{module}.mod"
        data = self.read(*split_device(path, env))
        if data is None:
            return False
        self.state.trace.append(Executed("file", path, data))
        self.state.loaded.add(module)
        return all(self.load_module(dep, env, where, depth + 1) for dep in _module_dependencies(data, path))

    def env_file(self, args: list[str], env: dict[str, str], where: str) -> tuple[str, list[str]]:
        names = [a for a in args if a != "--skip-sig"]
        if names[:1] in (["-f"], ["--file"]):
            return names[1], names[2:]
        if "prefix" not in env:
            raise NotFollowed(f"{where}: $prefix is not known")
        return f"{env['prefix']}/grubenv", names

    def load_env(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        path, wanted = self.env_file(args, env, where)
        data = self.read(*split_device(path, env))
        if data is None:
            return 1
        self.state.trace.append(Executed("file", path, data))
        if not data.startswith(ENV_HEADER):
            raise NotFollowed(f"{where}: {path} is not a GRUB environment block")
        for line in data[len(ENV_HEADER) :].decode("utf-8", "replace").split("\n"):
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#") and (not wanted or key in wanted):
                if "\\" in value:
                    raise NotFollowed(f"{where}: {path}: an escaped value for {key} is not followed")
                env[key] = value
        return 0

    def save_env(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        path, _ = self.env_file(args, env, where)
        data = self.read(*split_device(path, env))
        if data is None:
            return 1
        self.state.trace.append(Executed("file", path, data))  # opened (and measured) before it is written
        return 0

    def loadfont(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        if args == ["unicode"] and "fonts/unicode.pf2" in self.firmware.memdisk:
            return 0  # GRUB's own memdisk: not measured
        raise NotFollowed(f"{where}: loadfont {' '.join(args)}: a font file outside GRUB's memdisk")

    def fwsetup(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        if args == ["--is-supported"]:
            return 0 if self.firmware.fwsetup else 1
        raise NotFollowed(f"{where}: fwsetup {' '.join(args)}")

    def config(self, name: str, path: str, env: dict[str, str], file: GrubFile, depth: int, where: str) -> int:
        device, inside = split_device(path, env)
        if name == "source":
            env.update(self.run_file(device, inside, env, depth + 1, path))
            return 0
        self.state.entries.clear()  # a new menu, booted from there: GRUB does not come back
        final = self.run_file(device, inside, {k: env[k] for k in self.state.exported if k in env}, depth + 1, path)
        if not self.state.handed_over:
            self.boot_entry(final, f"{file.path}: configfile {path}")
        self.state.handed_over = True
        return 0

    def load_kernel(self, name: str, args: list[str], env: dict[str, str], where: str) -> int:
        if len(args) > limits.get("boot-reads"):
            raise NotFollowed(f"{where}: more files than the limit boot-reads = {limits.get('boot-reads')}")
        for word in args[:1] if name == "linux" else args:
            device, inside = split_device(word, env)
            if (device, inside) not in self.state.reads:
                if len(self.state.reads) >= limits.get("boot-reads"):
                    raise NotFollowed(f"{where}: the boot reads more files than the limit boot-reads")
                data = self.read(device, inside)
                if data is None:
                    raise NotFollowed(f"{where}: {word} does not exist: GRUB would stop")
                self.state.reads[(device, inside)] = data
            self.state.trace.append(Executed("file", word, self.state.reads[(device, inside)]))
        if name == "linux":
            self.state.trace.append(Executed("cmdline", " ".join(_cmdline_word(w) for w in args)))
        return 0

    def boot_entry(self, env: dict[str, str], where: str) -> None:
        """Boot the requested entry, or the default one: `setparams TITLE`, then its block."""
        default = self.wanted if self.wanted is not None else env.get("default", "0")
        entries = self.state.entries
        if not entries:
            raise NotFollowed(f"{where} defines no menu entry")
        chosen = next((e for e in entries if e.title == default), None)
        if chosen is None and default.isdigit() and len(default) < 10 and int(default) < len(entries):
            chosen = entries[int(default)]
        if chosen is None:
            raise NotFollowed(f"{where}: default={default!r} names no entry")
        self.measure(["setparams", chosen.title])
        new = GrubEntry(chosen.title, chosen.file.device, chosen.file.path, chosen.toks[chosen.brace].line)
        self.block(chosen.toks, chosen.brace + 1, {**env, "chosen": chosen.title}, chosen.file, 1, new)


def _title(args: list[str], where: str) -> str:
    """The first word that is not an option or an option's value (GRUB refuses unknown options)."""
    positional: list[str] = []
    k = 0
    while k < len(args):
        if args[k] in ENTRY_OPTIONS:
            k += 1 + ENTRY_OPTIONS[args[k]]
            continue
        if args[k].startswith("--"):
            raise NotFollowed(f"{where}: menuentry option {args[k]} is not followed")
        positional.append(args[k])
        k += 1
    if not positional:
        raise NotFollowed(f"{where}: a menuentry without a title")
    return positional[0]


def _module_dependencies(data: bytes, path: str) -> list[str]:
    """The modules a GRUB module needs (its ELF `.moddeps` section: names, each NUL-terminated)."""
    import io

    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        found = ELFFile(io.BytesIO(data)).get_section_by_name(".moddeps")
        names = found.data() if found is not None else b""
    except (ELFError, ValueError) as err:
        raise NotFollowed(f"{path}: not a GRUB module cvmlint can read: {err}") from None
    return [n.decode("ascii", "replace") for n in names.split(b"\0") if n]


def _globbed(word: str) -> bool:
    """An unquoted `*` or `?` (not `$?`): GRUB would expand it against file names."""
    bare = re.sub(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"|\\.|\$\{\?\}|\$\?", "", word)
    return "*" in bare or "?" in bare


def boot_trace(
    load: Loader,
    read: FileReader,
    find: Finder,
    firmware: Firmware,
    device: str,
    path: str,
    env: dict[str, str],
    entry: str | None = None,
) -> list[Executed]:
    """What GRUB runs, opens and hands the kernel when it reads `(device)path` with `env` and boots the
    default entry (or the one titled `entry`); NotFollowed when any of it cannot be decided."""
    tracer = Tracer(load, read, find, firmware, entry)
    final = tracer.run_file(device, path, {**GRUB_FEATURES, **env}, 0)
    if not tracer.state.handed_over:
        tracer.boot_entry(final, f"({device}){path}")
    return tracer.state.trace
