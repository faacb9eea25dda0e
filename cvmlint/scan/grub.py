"""GRUB configuration, interpreted statically: what GRUB would boot, with file and line; and, for
`cvmlint measure`, what it runs while it boots (the one GRUB interpreter of both).

Two modes. `read_menu` (scan) follows every branch it cannot decide and records the menu: it says
what the image may boot. `grub_boot.boot_trace` (measure) runs the same interpreter with its hooks
overridden to follow only what GRUB will do on one boot: the commands it runs after expansion, the
files it opens and the kernel command line, in order; a statement whose effect it cannot decide
raises NotFollowed naming the file and line, never a guess.

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
from cvmlint.errors import CvmlintError, reader

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


class _Interp:
    """The interpreter a scan runs: the menu, with every branch it cannot decide followed. A traced
    boot (grub_boot.Tracer) overrides the hooks: stop, expand, opened, finished, define, function,
    run and test."""

    def __init__(self, load: Loader, find: Finder, menu: GrubMenu) -> None:
        self.load = load
        self.find = find
        self.menu = menu
        self.loaded = 0
        self.positions = [0]  # the next item's position at each menu level
        self.submenus: list[tuple[int, str, str]] = []
        self.dry = 0  # inside a branch GRUB would not take: parse, do nothing

    def stop(self, message: str) -> None:
        """A problem: noted (a traced boot raises NotFollowed)."""
        self.menu.problems.append(message)

    def expand(self, word: str, env: dict[str, str], where: str) -> str:
        return expand(word, env)

    def opened(self, file: GrubFile, name: str) -> None:
        """A configuration file was opened (a traced boot measures it)."""

    def finished(self) -> bool:
        """Nothing more of the current file runs (a traced boot after `configfile`)."""
        return False

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
        self.opened(file, name or f"({device}){path}")
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
            if self.finished():
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
        braced = j < len(toks) and toks[j].kind == "{"
        if self.dry:
            return self.skip_braces(toks, j) + 1 if braced else j
        if name == "function" and braced:
            return self.function(words, toks, j, file, where)
        args = [self.expand(w.raw, env, where) for w in words[1:]]
        if name in ("menuentry", "submenu") and braced:
            return self.define(name, args, toks, j, env, file, depth, line, where)
        self.run(name, words, args, line, env, file, depth, entry, where)
        return j

    def function(self, words: list[_Tok], toks: list[_Tok], j: int, file: GrubFile, where: str) -> int:
        """`function NAME { … }`: a scan does not call functions."""
        return self.skip_braces(toks, j) + 1

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
        """A menuentry or submenu: its entries recorded with what they boot."""
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
            verdict = None if self.dry or taken else self.test(words, env, file, toks[i].line)
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

    def test(self, words: list[_Tok], env: dict[str, str], file: GrubFile, line: int) -> bool | None:
        """A condition's value, None when it cannot be decided."""
        return _condition([w.raw for w in words], env)

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
        """A command: its effect on the menu (a traced boot overrides this with what GRUB does)."""
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
        kind, target, value, _unknown = search_args(name, args)
        if value is not None:
            device = self.find(kind, value)
            if device is not None:
                env[target] = device
            else:
                self.menu.problems.append(f"search --{kind} {value}: no partition matches")


def search_args(name: str, args: list[str]) -> tuple[str, str, str | None, list[str]]:
    """`search` and `search.fs_uuid`/`fs_label`/`file`: (kind: file | fs-uuid | label, the variable it sets,
    the value searched for, the options not known here)."""
    kind = {"search.fs_uuid": "fs-uuid", "search.fs_label": "label", "search.file": "file"}.get(name, "file")
    target, positional, unknown = "root", [], []
    for arg in args:
        if arg in ("--fs-uuid", "-u"):
            kind = "fs-uuid"
        elif arg in ("--label", "-l"):
            kind = "label"
        elif arg in ("--file", "-f"):
            kind = "file"
        elif arg.startswith("--set="):
            target = arg.split("=", 1)[1]
        elif arg in ("--no-floppy", "-n") or arg.startswith("--hint"):
            continue
        elif arg.startswith("-"):
            unknown.append(arg)
        else:
            positional.append(arg)
    if name.startswith("search.") and len(positional) > 1:
        target = positional[1]
    return kind, target, positional[0] if positional else None, unknown


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


def _cmdline_word(word: str) -> str:
    """An argument as GRUB puts it on the kernel command line (lib/cmdline.c)."""
    if " " not in word and not any(c in word for c in "\\'\""):
        return word
    escaped = re.sub(r"([\\'\"])", r"\\\1", word)
    return f'"{escaped}"' if " " in word else escaped
