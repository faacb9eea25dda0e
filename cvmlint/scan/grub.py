"""GRUB configuration, interpreted statically: what GRUB would boot, with file and line; and, for
`cvmlint measure`, what it runs while it boots (the one GRUB interpreter of both).

Two modes. `read_menu` (scan) follows every branch it cannot decide and records the menu: it says
what the image may boot. `boot_trace` (measure) follows only what GRUB will do on one boot: the
commands it runs after expansion, the files it opens and the kernel command line, in order; a
statement whose effect it cannot decide raises NotFollowed naming the file and line, never a guess.

Handled: `set`, variables (`$x`, `${x}`, in double quotes), `search` (--fs-uuid, --label, --file,
search.fs_uuid, --set=var), `configfile` (a new menu) and `source`, `menuentry`/`submenu`
bodies with `linux`/`linuxefi`/`initrd`/`initrdefi`/`chainloader`, `if`/`elif`/`else`/`fi` with
`[ "$grub_platform" = efi ]` decided and other conditions followed both ways, `default`.
Nothing is executed; everything is bounded (file count, nesting, tokens).

    # Example (mkosi's layout):
    set timeout=0
    if [ "${grub_platform}" == "efi" ]; then
        menuentry "debian-6.1.0-28-cloud-amd64" {
            linux /debian/6.1.0-28-cloud-amd64/vmlinuz roothash=3f… lockdown=integrity
            initrd /debian/initrd
        }
    fi
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cvmlint import limits
from cvmlint.errors import SHOWN_LINE, CvmlintError, reader

GRUB_FEATURES = {
    name: "y"
    for name in (
        "feature_menuentry_id",
        "feature_default_font_path",
        "feature_all_video_module",
        "feature_timeout_style",
        "feature_platform_search_hint",
        "feature_200_final",
        "feature_nativedisk_cmd",
    )
}
"""What every GRUB since 2.00 sets, so grub-mkconfig's feature tests are decided."""


class NotFollowed(CvmlintError):
    """A statement GRUB would run whose effect on a boot cvmlint cannot decide."""


@dataclass
class GrubFile:
    """A configuration file GRUB would read: its text and where it is (`data`: its bytes, when a boot
    is traced and the file is measured)."""

    device: str
    path: str
    text: str
    data: bytes = b""


@dataclass(frozen=True)
class Executed:
    """One thing GRUB does while it boots: runs a `command` (its words after expansion, joined by
    spaces), opens a `file` (as named, with its bytes), or hands the kernel its `cmdline`."""

    kind: str
    text: str
    data: bytes = b""


@dataclass
class GrubEntry:
    """A menu entry and what it boots."""

    title: str
    device: str
    file: str
    line: int
    kernel: str | None = None
    kernel_device: str | None = None
    args: str = ""
    args_line: int = 0
    initrds: list[str] = field(default_factory=list)
    chainloader: str | None = None
    path: tuple[tuple[int, str, str], ...] = ()
    """(position, title, --id) at each menu level: the submenus it sits in, then itself."""


@dataclass
class GrubMenu:
    """The menu GRUB ends up showing, and how it got there."""

    entries: list[GrubEntry] = field(default_factory=list)
    default: str = "0"
    files: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    """Files GRUB reads that cvmlint could not: what they would add or change is unknown."""

    def default_entry(self) -> GrubEntry | None:
        """The entry `default` names, else the first: a position, title or --id per menu level,
        joined by `>` for entries in submenus (`gnulinux-advanced-…>gnulinux-…-recovery-…`)."""
        if not self.entries:
            return None
        parts = self.default.split(">")

        def names(part: str, level: tuple[int, str, str]) -> bool:
            return (part.isdigit() and int(part) == level[0]) or part in level[1:]

        return next(
            (
                e
                for e in self.entries
                if len(e.path) == len(parts) and all(names(p, lvl) for p, lvl in zip(parts, e.path, strict=True))
            ),
            self.entries[0],
        )


Loader = Callable[[str, str], GrubFile | None]
"""(device, path) -> the file, or None when it does not exist."""
Finder = Callable[[str, str], str | None]
"""(search kind: fs-uuid | label | file, value) -> device name, or None."""

_TOKEN = re.compile(
    r"""[ \t\r]*(?:(?P<nl>\n)|(?P<semi>;)|(?P<brace>[{}])|(?P<comment>\#[^\n]*)
                       |(?P<word>(?:\$\{[^}\s]*\}|[^\s;{}"'\\]|\\.|"(?:[^"\\]|\\.)*"|'[^']*')+))""",
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    raw: str
    line: int
    pos: int = 0
    """Offset of the token in its file's text (a menuentry's block is measured as written)."""


def tokenize(text: str) -> list[_Tok]:
    """GRUB script tokens: words (quotes kept for expansion), separators (`;`, newline), braces."""
    out: list[_Tok] = []
    pos, line = 0, 1
    while pos < len(text) and len(out) < limits.get("grub-tokens"):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if not text[pos:].strip():
                break
            out.append(_Tok("word", text[pos], line, pos))  # a stray character (unbalanced quote)
            pos += 1
            continue
        kind = m.lastgroup
        start = m.start(kind) if kind else pos
        if kind == "nl":
            out.append(_Tok("sep", "\n", line, start))
            line += 1
        elif kind == "semi":
            out.append(_Tok("sep", ";", line, start))
        elif kind == "brace":
            out.append(_Tok(m.group("brace"), m.group("brace"), line, start))
        elif kind == "word":
            word = m.group("word")
            out.append(_Tok("word", word, line, start))
            line += word.count("\n")
        pos = m.end()
    limits.note("grub-tokens", len(out))
    return out


def expand(word: str, env: dict[str, str], strict: bool = False) -> str:
    """Remove quotes and expand `$var`/`${var}` (not inside single quotes); `strict`: a variable not
    in `env` raises NotFollowed (its value is not known) instead of expanding to nothing."""
    out, i = [], 0
    while i < len(word):
        ch = word[i]
        if ch == "'":
            end = word.find("'", i + 1)
            end = len(word) if end < 0 else end
            out.append(word[i + 1 : end])
            i = end + 1
        elif ch == '"':
            j = i + 1
            buf = []
            while j < len(word) and word[j] != '"':
                if word[j] == "\\" and j + 1 < len(word):
                    buf.append(word[j + 1])
                    j += 2
                    continue
                buf.append(word[j])
                j += 1
            out.append(_subst("".join(buf), env, strict))
            i = j + 1
        elif ch == "\\" and i + 1 < len(word):
            out.append(word[i + 1])
            i += 2
        else:
            j = i + 1  # at least one character: a lone trailing backslash is kept literally
            while j < len(word) and word[j] not in "'\"\\":
                j += 1
            out.append(_subst(word[i:j], env, strict))
            i = j
    expanded = "".join(out)
    if strict and len(expanded) > limits.get("grub-value-bytes"):
        raise NotFollowed(f"a word expands past the limit grub-value-bytes = {limits.get('grub-value-bytes')}")
    return expanded


def _subst(text: str, env: dict[str, str], strict: bool = False) -> str:
    def value(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2)
        if strict and name not in env:
            raise NotFollowed(f"${name} is not a variable cvmlint knows the value of")
        return env.get(name, "")

    return re.sub(r"\$(?:\{([A-Za-z0-9_?]+)\}|([A-Za-z_][A-Za-z0-9_]*|[0-9?]))", value, text)


def split_device(path: str, env: dict[str, str]) -> tuple[str, str]:
    """`(dev)/p` -> (dev, /p); a bare path lives on $root."""
    m = re.match(r"^\(([^)]*)\)(.*)$", path)
    if m:
        return m.group(1), m.group(2) or "/"
    return env.get("root", ""), path


FileReader = Callable[[str, str], bytes | None]
"""(device, path) -> a file's bytes (a kernel, an initrd), None when it does not exist."""
EXPORTED = ("root", "prefix", "grub_platform", "grub_cpu", *GRUB_FEATURES)
"""The variables a `configfile` menu starts with when a boot is traced (GRUB exports these itself)."""
BOOT_COMMANDS = ("set", "configfile", "source")
"""Statements outside a menu entry whose measurements are followed (checked against real boots)."""


@dataclass
class _Boot:
    """The state of a traced boot: what GRUB ran, the entries it defined, the entry to boot."""

    read: FileReader
    entry: str | None
    trace: list[Executed] = field(default_factory=list)
    entries: list[tuple[str, list[_Tok], int, GrubFile]] = field(default_factory=list)
    """(title, the file's tokens, index of the block's `{`, file) of each menuentry defined."""
    reads: dict[tuple[str, str], bytes] = field(default_factory=dict)
    handed_over: bool = False
    """A `configfile` took over: the rest of this file is not run."""

    def command(self, words: list[str]) -> None:
        self.trace.append(Executed("command", " ".join(words)))

    def file(self, name: str, device: str, path: str, where: str) -> bytes:
        """A file GRUB opens (read once per boot, at most boot-reads files)."""
        if (device, path) not in self.reads:
            if len(self.reads) >= limits.get("boot-reads"):
                raise NotFollowed(f"{where}: the boot reads more files than the limit boot-reads")
            data = self.read(device, path)
            if data is None:
                raise NotFollowed(f"{where}: {name} does not exist: GRUB would stop")
            self.reads[(device, path)] = data
        data = self.reads[(device, path)]
        self.trace.append(Executed("file", name, data))
        return data


class _Interp:
    def __init__(self, load: Loader, find: Finder, menu: GrubMenu, boot: _Boot | None = None) -> None:
        self.load = load
        self.find = find
        self.menu = menu
        self.boot = boot
        self.loaded = 0
        self.positions = [0]  # the next item's position at each menu level
        self.submenus: list[tuple[int, str, str]] = []
        self.dry = 0  # inside a branch GRUB would not take: parse, do nothing

    def stop(self, message: str) -> None:
        """Scanning: a problem noted; tracing a boot: the boot cannot be followed."""
        if self.boot is not None:
            raise NotFollowed(message)
        self.menu.problems.append(message)

    def expand(self, word: str, env: dict[str, str], where: str) -> str:
        try:
            return expand(word, env, strict=self.boot is not None)
        except NotFollowed as err:
            raise NotFollowed(f"{where}: {err}") from None

    def run_file(self, device: str, path: str, env: dict[str, str], depth: int, name: str = "") -> dict[str, str]:
        """Run the file; returns the variables as it left them."""
        if self.loaded >= limits.get("grub-files") or depth > limits.get("grub-depth"):
            self.stop(
                f"stopped following configfile/source at ({device}){path}: more than "
                f"{limits.get('grub-files')} files or nested deeper than "
                f"{limits.get('grub-depth')} (limits grub-files, grub-depth)"
            )
            return env
        if (device, path) in self.menu.files[-8:]:
            self.stop(f"({device}){path} loads itself: loop not followed")
            return env
        try:
            file = self.load(device, path)
        except CvmlintError as err:
            self.menu.unread.append(f"({device}){path}")
            self.stop(f"({device}){path} cannot be read, so what GRUB would do is unknown: {err}")
            return env
        if file is None:
            self.stop(f"({device}){path} does not exist")
            return env
        self.loaded += 1
        self.menu.files.append((file.device, file.path))
        if self.boot is not None:
            self.boot.trace.append(Executed("file", name or f"({device}){path}", file.data))
        env = dict(env)
        env.setdefault("root", file.device)
        self.block(tokenize(file.text), 0, env, file, depth, None)
        return env

    def block(
        self,
        toks: list[_Tok],
        i: int,
        env: dict[str, str],
        file: GrubFile,
        depth: int,
        entry: GrubEntry | None,
        stop: tuple[str, ...] = (),
    ) -> int:
        """Run commands from token i; returns the index after the block (at `}` or a stop word)."""
        if depth > limits.get("grub-depth"):
            self.stop(
                f"({file.device}){file.path}:{toks[i].line if i < len(toks) else 0}: "
                f"nested more than {limits.get('grub-depth')} deep (limit grub-depth); "
                "the rest of the file is not followed"
            )
            return len(toks)
        while i < len(toks):
            if self.boot is not None and self.boot.handed_over:
                return len(toks)
            tok = toks[i]
            if tok.kind == "sep":
                i += 1
                continue
            if tok.kind == "}":
                return i
            if tok.kind == "word" and tok.raw in stop:
                return i
            i = self.command(toks, i, env, file, depth, entry)
        return i

    def _words(self, toks: list[_Tok], i: int) -> tuple[list[_Tok], int]:
        words = []
        while i < len(toks) and toks[i].kind == "word":
            words.append(toks[i])
            i += 1
        return words, i

    def command(
        self, toks: list[_Tok], i: int, env: dict[str, str], file: GrubFile, depth: int, entry: GrubEntry | None
    ) -> int:
        words, j = self._words(toks, i)
        if not words:
            return i + 1
        name, line = words[0].raw, words[0].line
        where = f"{file.path}:{line}"
        if name == "if":
            return self.conditional(toks, i, env, file, depth + 1, entry)
        if self.dry:
            return self.skip_braces(toks, j) + 1 if j < len(toks) and toks[j].kind == "{" else j
        args = [self.expand(w.raw, env, where) for w in words[1:]]
        if name in ("menuentry", "submenu") and j < len(toks) and toks[j].kind == "{":
            if self.boot is not None:
                return self.define_traced(name, args, toks, j, file, where)
            title = next((a for a in args if not a.startswith("--")), "")
            ident = next((args[k + 1] for k, a in enumerate(args[:-1]) if a == "--id"), "")
            here = (self.positions[-1], title, ident)
            self.positions[-1] += 1
            if name == "submenu":
                self.submenus.append(here)
                self.positions.append(0)
                end = self.block(toks, j + 1, dict(env), file, depth + 1, None)
                self.positions.pop()
                self.submenus.pop()
                return end + 1
            new = GrubEntry(title, file.device, file.path, line, path=(*self.submenus, here))
            end = self.block(toks, j + 1, dict(env), file, depth + 1, new)
            self.menu.entries.append(new)
            return end + 1
        if name == "function" and j < len(toks) and toks[j].kind == "{":
            if self.boot is not None:
                raise NotFollowed(f"{where}: functions are not followed when a boot is traced")
            return self.skip_braces(toks, j) + 1
        if self.boot is not None:
            self.traced(name, args, env, file, depth, entry, where)
        else:
            self.simple(name, args, line, env, file, depth, entry)
        return j

    def define_traced(self, name: str, args: list[str], toks: list[_Tok], j: int, file: GrubFile, where: str) -> int:
        """A menuentry GRUB defines: measured as a command whose last word is its block, as written."""
        assert self.boot is not None
        if name == "submenu" or len(args) != 1:
            raise NotFollowed(f"{where}: {name} {' '.join(args)}: submenus and menuentry options are not followed")
        end = self.skip_braces(toks, j)
        if end >= len(toks):
            raise NotFollowed(f"{where}: the menuentry's block is not closed")
        self.boot.command([name, args[0], file.text[toks[j].pos : toks[end].pos + 1]])
        self.boot.entries.append((args[0], toks, j, file))
        return end + 1

    def traced(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        file: GrubFile,
        depth: int,
        entry: GrubEntry | None,
        where: str,
    ) -> None:
        """A statement of a traced boot: measured as GRUB runs it, followed where its effect is known."""
        assert self.boot is not None
        statement = " ".join([name, *args])
        statement = statement if len(statement) <= SHOWN_LINE else statement[:SHOWN_LINE] + "…"
        if entry is not None and name in ("linux", "initrd") and args:
            self.boot.command([name, *args])
            if len(args) > limits.get("boot-reads"):
                raise NotFollowed(f"{where}: more files than the limit boot-reads = {limits.get('boot-reads')}")
            for word in args[:1] if name == "linux" else args:
                self.boot.file(word, *split_device(word, env), where)
            if name == "linux":
                self.boot.trace.append(Executed("cmdline", " ".join(_cmdline_word(w) for w in args)))
            return
        if name not in BOOT_COMMANDS or (name == "set" and (len(args) != 1 or "=" not in args[0])) or not args:
            raise NotFollowed(
                f"{where}: `{statement}` is not followed ({', '.join(BOOT_COMMANDS)}, if [ … ] and menuentry are;"
                " in the booted entry linux and initrd)"
            )
        self.boot.command([name, *args])
        if name == "set":
            key, _, value = args[0].partition("=")
            env[key] = value
            return
        device, path = split_device(args[0], env)
        if name == "configfile":  # a new menu, booted from there: GRUB does not come back
            self.boot.entries.clear()
            final = self.run_file(device, path, {k: env[k] for k in EXPORTED if k in env}, depth + 1, args[0])
            if not self.boot.handed_over:
                self.boot_entry(final, f"{file.path}: configfile {args[0]}")
            self.boot.handed_over = True
        else:  # `source` runs in the same context
            env.update(self.run_file(device, path, env, depth + 1, args[0]))

    def skip_braces(self, toks: list[_Tok], i: int) -> int:
        level = 0
        while i < len(toks):
            if toks[i].kind == "{":
                level += 1
            elif toks[i].kind == "}":
                level -= 1
                if level == 0:
                    return i
            i += 1
        return i

    def conditional(
        self, toks: list[_Tok], i: int, env: dict[str, str], file: GrubFile, depth: int, entry: GrubEntry | None
    ) -> int:
        """if COND; then … [elif COND; then …] [else …] fi — known conditions decided; others followed
        both ways when scanning, not followed when a boot is traced."""
        taken = False
        while i < len(toks) and toks[i].raw in ("if", "elif"):
            words, j = self._words(toks, i + 1)
            verdict = None if self.dry or taken else self.test([w.raw for w in words], env, file, toks[i].line)
            while j < len(toks) and toks[j].raw != "then":
                j += 1
            i = (
                self.branch(
                    toks, j + 1, env, file, depth, entry, verdict is not False and not taken, ("elif", "else", "fi")
                )
                if j < len(toks)
                else j
            )
            taken = taken or verdict is True
        if i < len(toks) and toks[i].raw == "else":
            i = self.branch(toks, i + 1, env, file, depth, entry, not taken, ("fi",))
        return i + 1 if i < len(toks) else i

    def test(self, raw: list[str], env: dict[str, str], file: GrubFile, line: int) -> bool | None:
        """A condition's value (the test is a command GRUB runs: measured when a boot is traced)."""
        verdict = _condition(raw, env)
        if self.boot is not None:
            where = f"{file.path}:{line}"
            if verdict is None:
                raise NotFollowed(f"{where}: the condition `{' '.join(raw)}` is not decided")
            self.boot.command([self.expand(w, env, where) for w in raw])
        return verdict

    def branch(
        self,
        toks: list[_Tok],
        i: int,
        env: dict[str, str],
        file: GrubFile,
        depth: int,
        entry: GrubEntry | None,
        live: bool,
        stop: tuple[str, ...],
    ) -> int:
        """A branch GRUB may take runs (an undecided one too); one it cannot take is only parsed."""
        self.dry += 0 if live else 1
        try:
            return self.block(toks, i, env, file, depth, entry, stop)
        finally:
            self.dry -= 0 if live else 1

    def boot_entry(self, env: dict[str, str], where: str) -> None:
        """Boot the requested entry, or the default one: `setparams TITLE`, then its block."""
        assert self.boot is not None
        default = self.boot.entry if self.boot.entry is not None else env.get("default", "0")
        entries = self.boot.entries
        if not entries:
            raise NotFollowed(f"{where} defines no menu entry")
        chosen = next((e for e in entries if e[0] == default), None)
        if chosen is None and default.isdigit() and len(default) < 10 and int(default) < len(entries):
            chosen = entries[int(default)]
        if chosen is None:
            raise NotFollowed(f"{where}: default={default!r} names no entry")
        title, toks, start, file = chosen
        self.boot.command(["setparams", title])
        new = GrubEntry(title, file.device, file.path, toks[start].line)
        self.block(toks, start + 1, env, file, 1, new)

    def simple(
        self,
        name: str,
        args: list[str],
        line: int,
        env: dict[str, str],
        file: GrubFile,
        depth: int,
        entry: GrubEntry | None,
    ) -> None:
        if self.dry:
            return
        assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=", name)
        if assignment:  # `var=value` is `set var=value`
            name, args = "set", [f"{assignment.group(1)}={expand(name[assignment.end() :], env)}", *args]
        if name == "set" and args and "=" in args[0]:
            key, _, value = args[0].partition("=")
            env[key] = value
            if key == "default":
                self.menu.default = value
        elif name in ("search", "search.fs_uuid", "search.fs_label", "search.file"):
            self.search(name, args, env)
        elif name == "configfile" and args:
            device, path = split_device(args[0], env)
            self.menu.entries.clear()  # configfile starts a new menu
            self.positions = [0]
            self.run_file(device, path, {k: v for k, v in env.items() if k != "root"} | {"root": device}, depth + 1)
        elif name == "source" and args:
            device, path = split_device(args[0], env)
            self.run_file(device, path, env, depth + 1)
        elif entry is not None and name in ("linux", "linuxefi", "linux16") and args:
            entry.kernel_device, entry.kernel = split_device(args[0], env)
            entry.args, entry.args_line = " ".join(args[1:]), line
        elif entry is not None and name in ("initrd", "initrdefi", "initrd16"):
            entry.initrds = [split_device(a, env)[1] for a in args]
        elif entry is not None and name == "chainloader" and args:
            entry.kernel_device, entry.chainloader = split_device(args[-1], env)

    def search(self, name: str, args: list[str], env: dict[str, str]) -> None:
        kind = {"search.fs_uuid": "fs-uuid", "search.fs_label": "label", "search.file": "file"}.get(name, "file")
        target, value = "root", None
        positional = []
        for a in args:
            if a in ("--fs-uuid", "-u"):
                kind = "fs-uuid"
            elif a in ("--label", "-l"):
                kind = "label"
            elif a in ("--file", "-f"):
                kind = "file"
            elif a.startswith("--set="):
                target = a.split("=", 1)[1]
            elif not a.startswith("-"):
                positional.append(a)
        if positional:
            value = positional[0]
            if name.startswith("search.") and len(positional) > 1:
                target = positional[1]
        if value is not None:
            device = self.find(kind, value)
            if device is not None:
                env[target] = device
            else:
                self.menu.problems.append(f"search --{kind} {value}: no partition matches")


def _condition(raw: list[str], env: dict[str, str]) -> bool | None:
    """The value of `[ … ]` when every variable it reads is known (set earlier, or GRUB's own),
    None otherwise (then both branches are followed)."""
    if raw[:1] != ["["] or raw[-1:] != ["]"]:
        return None
    names = {m.group(1) or m.group(2) for w in raw for m in re.finditer(r"\$(?:\{([^}]*)\}|([A-Za-z_0-9?]+))", w)}
    if not names <= env.keys():
        return None
    words = [expand(w, env) for w in raw[1:-1]]
    if len(words) == 3 and words[1] in ("=", "==", "!="):
        return (words[0] == words[2]) == (words[1] != "!=")
    if len(words) == 2 and words[0] in ("-z", "-n"):
        return (words[1] == "") == (words[0] == "-z")
    if len(words) == 1:
        return words[0] != ""
    return None


@reader("grub", "configuration")
def read_menu(load: Loader, find: Finder, start: list[tuple[str, str]], env: dict[str, str]) -> GrubMenu:
    """Interpret the first existing configuration of `start` and everything it loads."""
    menu = GrubMenu()
    interp = _Interp(load, find, menu)
    env = {**GRUB_FEATURES, **env}
    for device, path in start:
        try:
            found = load(device, path)
        except CvmlintError as err:
            # GRUB stops at the configuration it cannot read; the next candidate is not what it boots
            menu.problems.append(f"({device}){path} cannot be read, so what GRUB would do is unknown: {err}")
            menu.unread.append(f"({device}){path}")
            break
        if found is not None:
            interp.run_file(device, path, {**env, "root": device}, 0)
            break
    else:
        menu.problems.append("no GRUB configuration found at " + ", ".join(f"({d}){p}" for d, p in start))
    return menu


def boot_trace(
    load: Loader, read: FileReader, device: str, path: str, env: dict[str, str], entry: str | None = None
) -> list[Executed]:
    """What GRUB runs, opens and hands the kernel when `(device)path` is sourced with `env` and the
    default entry (or the one titled `entry`) is booted; NotFollowed when any of it cannot be decided."""
    boot = _Boot(read, entry)
    interp = _Interp(load, lambda _kind, _value: None, GrubMenu(), boot)
    final = interp.run_file(device, path, {**GRUB_FEATURES, **env}, 0)
    if not boot.handed_over:
        interp.boot_entry(final, f"({device}){path}")
    return boot.trace


def _cmdline_word(word: str) -> str:
    """An argument as GRUB puts it on the kernel command line (lib/cmdline.c)."""
    if " " not in word and not any(c in word for c in "\\'\""):
        return word
    escaped = re.sub(r"([\\'\"])", r"\\\1", word)
    return f'"{escaped}"' if " " in word else escaped
