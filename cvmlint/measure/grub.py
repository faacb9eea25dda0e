"""What Debian's signed GRUB 2.06 measures while it finds its configuration and boots the default entry.

    PCR 8  each command the script engine runs (EV_IPL "grub_cmd: CMD", digest over CMD): the words
           after expansion and quote removal, joined by single spaces; a menuentry as
           "menuentry TITLE {" + its block's raw text + "}" when defined, "setparams TITLE" when booted;
           the kernel command line ("kernel_cmdline: …", digest over the linux command's words
           without "linux", BOOT_IMAGE= not included)
    PCR 9  each file opened (EV_IPL, the name as given), digest over its whole content:
           the grub.cfg `source` reads, the kernel, each initrd
    The signed image's own configuration (its memdisk, not measured) runs:
        [ -z $prefix -o ! -e $prefix ]  with prefix=(ESP)/EFI/debian
        [ -e $prefix/x86_64-efi/grub.cfg ], else [ -e $prefix/grub.cfg ] -> source that file

Followed: `set`, `menuentry` (booted: `linux`, `initrd`), `if [ A == B ]; then … fi` (the test is a
command; `$grub_platform` is `efi`), `configfile PATH` (a command, a file, then that file's menu, as
mkosi's layout has it). Anything else, or a variable whose value is not known, makes PCRs 8 and 9
unknown with the line that stops the prediction.
Facts from GRUB 2.06 (script/execute.c grub_script_execute_cmdline, commands/tpm.c, kern/verifiers.c,
lib/cmdline.c, commands/menuentry.c) and Debian's build-efi-images; checked against real boots' PCRs
(tests/measure).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cvmlint import limits
from cvmlint.errors import CvmlintError

KNOWN = ("2.06",)
"""GRUB versions (Debian's signed build) whose measurements are predicted."""
PREDEFINED = {"grub_platform": "efi", "grub_cpu": "x86_64"}
"""Variables GRUB sets itself, with their values on x86-64 UEFI."""
EXPORTED = ("root", "prefix")
"""Variables a `configfile` menu starts with (besides PREDEFINED)."""


class NotPredicted(CvmlintError):
    """A statement or situation whose measurements cannot be decided."""


@dataclass(frozen=True)
class Measured:
    """One GRUB extend: its PCR, the logged description, and the bytes the digest covers."""

    pcr: int
    description: str
    payload: bytes


Reader = Callable[[str], bytes | None]
"""A file of the ESP by absolute path (None: absent)."""
Exists = Callable[[str], bool]


def measurements(device: str, read: Reader, exists: Exists, entry: str | None = None) -> list[Measured]:
    """The measurements of Debian's signed GRUB 2.06 booted from the ESP `device` (`hd0,gptN`), booting
    its default entry or the one titled `entry` (chosen from the menu)."""
    prefix = f"({device})/EFI/debian"
    out: list[Measured] = []
    _command(out, f"[ -z {prefix} -o ! -e {prefix} ]")
    if not exists("/EFI/debian"):
        raise NotPredicted("the ESP has no /EFI/debian: GRUB would search other disks for its configuration")
    for candidate in ("/EFI/debian/x86_64-efi/grub.cfg", "/EFI/debian/grub.cfg"):
        _command(out, f"[ -e ({device}){candidate} ]")
        if exists(candidate):
            text = read(candidate)
            if text is None:
                raise NotPredicted(f"{candidate} is not a file GRUB can read (a directory?)")
            _command(out, f"source ({device}){candidate}")
            out.append(Measured(9, f"({device}){candidate}", text))
            script = _Script(out, read, candidate, entry)
            script.env |= {"root": device, "prefix": prefix}
            script.run(text.decode("utf-8", "replace"))
            return out
    raise NotPredicted("no grub.cfg under /EFI/debian: GRUB would source $cmdpath/grub.cfg (its case is not known)")


def _command(out: list[Measured], text: str) -> None:
    out.append(Measured(8, f"grub_cmd: {text}", text.encode()))


_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _split(line: str) -> list[tuple[str, str]] | None:
    """(quote, text) of each word of `line` in one pass: quote is `'`, `"` or `` (bare); None when a
    quote is left open."""
    words: list[tuple[str, str]] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        quote = line[i] if line[i] in "'\"" else ""
        if quote:
            j = i + 1
            while j < n and line[j] != quote:
                j += 2 if quote == '"' and line[j] == "\\" else 1
            if j >= n:
                return None
            words.append((quote, line[i + 1 : j]))
            i = j + 1
            continue
        j = i
        while j < n and not line[j].isspace() and line[j] not in "'\"":
            j += 1
        words.append(("", line[i:j]))
        i = j
    return words


class _Script:
    def __init__(
        self,
        out: list[Measured],
        read: Reader,
        path: str,
        entry: str | None,
        depth: int = 0,
        reads: dict[str, bytes] | None = None,
    ) -> None:
        self.out, self.read, self.path, self.entry, self.depth = out, read, path, entry, depth
        self.reads: dict[str, bytes] = reads if reads is not None else {}
        """Files read so far in this boot (each read once, at most MAX_READS)."""
        self.env: dict[str, str] = dict(PREDEFINED)
        self.entries: list[tuple[str, str, int]] = []  # title, block text, line
        self.handed_over = False

    def run(self, text: str) -> None:
        """Run the file's statements, then boot the chosen entry (unless a `configfile` took over)."""
        lines = text.replace("\r", "").split("\n")
        limits.check("grub-config-bytes", len(text), "grub", self.path)
        self._block(lines, 0, len(lines))
        if not self.handed_over:
            self._boot()

    def _block(self, lines: list[str], n: int, end: int, depth: int = 0) -> None:
        if depth > limits.get("grub-depth"):
            raise NotPredicted(
                f"{self.path}:{n}: blocks nest deeper than the limit grub-depth = {limits.get('grub-depth')}"
            )
        while n < end and not self.handed_over:
            line = lines[n].strip()
            n += 1
            if not line or line.startswith("#"):
                continue
            if line.startswith("if ") and line.endswith("; then"):
                n = self._if(lines, n, end, line, depth)
                continue
            words = self._words(line, n)
            if words[0] == "set" and len(words) == 2 and "=" in words[1]:
                name, value = words[1].split("=", 1)
                self.env[name] = value
                _command(self.out, " ".join(words))
            elif words[0] == "menuentry" and line.endswith("{"):
                n = self._menuentry(lines, n, words[1:-1])
            elif words[0] == "configfile" and len(words) == 2:
                self._configfile(words[1])
            else:
                raise NotPredicted(
                    f"{self.path}:{n}: `{line}` is not followed (set, if [ … ], menuentry and configfile are)"
                )

    def _if(self, lines: list[str], n: int, end: int, line: str, nesting: int) -> int:
        """`if [ A == B ]; then … fi` (no elif/else): the test is a command; the body runs when it holds."""
        start, depth, close = n, 1, n
        while close < end:
            inner = lines[close].strip()
            if inner.startswith("if "):
                depth += 1
            elif inner in ("else", "fi") or inner.startswith("elif "):
                if inner != "fi" and depth == 1:
                    raise NotPredicted(f"{self.path}:{close + 1}: `{inner}` is not followed")
                depth -= inner == "fi"
                if depth == 0:
                    break
            close += 1
        if close >= end:
            raise NotPredicted(f"{self.path}:{start}: the if has no fi")
        test = self._words(line[3 : -len("; then")], start)
        if len(test) != 5 or test[0] != "[" or test[4] != "]" or test[2] not in ("=", "==", "!="):
            raise NotPredicted(f"{self.path}:{start}: the condition `{line}` is not followed")
        _command(self.out, " ".join(test))
        if (test[1] == test[3]) == (test[2] != "!="):
            self._block(lines, n, close, nesting + 1)
        return close + 1

    def _configfile(self, path: str) -> None:
        """A new menu from `path` (measured as a command and as a file); this file's menu is left."""
        _command(self.out, f"configfile {path}")
        if self.depth >= limits.get("grub-files"):
            raise NotPredicted(f"{self.path}: configfile nested past the limit grub-files = {limits.get('grub-files')}")
        text = self._file(path)
        self.out.append(Measured(9, path, text))
        script = _Script(self.out, self.read, path, self.entry, self.depth + 1, self.reads)
        script.env |= {name: self.env[name] for name in EXPORTED if name in self.env}
        script.run(text.decode("utf-8", "replace"))
        self.handed_over = True

    def _words(self, line: str, number: int) -> list[str]:
        split = _split(line)
        if split is None:
            raise NotPredicted(f"{self.path}:{number}: a quote is left open")
        words = []
        for quote, text in split:
            if quote == "'":
                words.append(text)
            elif quote == '"':
                words.append(re.sub(r"\\(.)", r"\1", self._expand(text)))
            else:
                words.append(self._expand(text))
        if not words:
            raise NotPredicted(f"{self.path}:{number}: `{line}` cannot be split into words")
        return words

    def _expand(self, word: str) -> str:
        def value(found: re.Match[str]) -> str:
            name = found.group(1) or found.group(2)
            if name not in self.env:
                raise NotPredicted(f"{self.path}: ${name} is not a variable cvmlint knows the value of")
            return self.env[name]

        expanded = _VAR.sub(value, word)
        if len(expanded) > limits.get("grub-value-bytes"):
            raise NotPredicted(
                f"{self.path}: a word expands past the limit grub-value-bytes = {limits.get('grub-value-bytes')}"
            )
        return expanded

    def _menuentry(self, lines: list[str], n: int, title_words: list[str]) -> int:
        """Record the entry (measured at its definition: the block's raw text between the braces)."""
        start = n
        body: list[str] = []
        while n < len(lines) and lines[n].strip() != "}":
            body.append(lines[n])
            n += 1
        if n == len(lines):
            raise NotPredicted(f"{self.path}:{start}: the menuentry's block is not closed")
        title = title_words[0] if title_words else ""
        if len(title_words) != 1:
            raise NotPredicted(f"{self.path}:{start}: menuentry options are not followed")
        closing = lines[n][: lines[n].index("}")]  # GRUB keeps the raw text up to the brace, indentation too
        block = "{\n" + "".join(line + "\n" for line in body) + closing + "}"
        _command(self.out, f"menuentry {title} {block}")
        self.entries.append((title, "\n".join(body), start))
        return n + 1

    def _boot(self) -> None:
        default = self.entry if self.entry is not None else self.env.get("default", "0")
        if not self.entries:
            raise NotPredicted(f"{self.path} defines no menu entry")
        chosen = next((e for e in self.entries if e[0] == default), None)
        if chosen is None and default.isdigit() and len(default) < 10 and int(default) < len(self.entries):
            chosen = self.entries[int(default)]
        if chosen is None:
            raise NotPredicted(f"{self.path}: default={default!r} names no entry")
        title, body, start = chosen
        _command(self.out, f"setparams {title}")
        for offset, raw in enumerate(body.split("\n")):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = self._words(line, start + offset + 1)
            if words[0] == "linux" and len(words) >= 2:
                _command(self.out, " ".join(words))
                self.out.append(Measured(9, words[1], self._file(words[1])))
                cmdline = " ".join(_quoted(w) for w in words[1:])
                self.out.append(Measured(8, f"kernel_cmdline: {cmdline}", cmdline.encode()))
            elif words[0] == "initrd" and len(words) >= 2:
                if len(words) - 1 > limits.get("boot-reads"):
                    raise NotPredicted(
                        f"{self.path}:{start + offset + 1}: more initrds than the limit boot-reads = "
                        f"{limits.get('boot-reads')}"
                    )
                _command(self.out, " ".join(words))
                self.out += [Measured(9, path, self._file(path)) for path in words[1:]]
            else:
                raise NotPredicted(f"{self.path}:{start + offset + 1}: `{line}` is not followed (linux and initrd are)")

    def _file(self, path: str) -> bytes:
        """A file GRUB reads (each read once; at most MAX_READS in one boot)."""
        if not path.startswith("/"):
            raise NotPredicted(f"{path}: a file on another device than the ESP is not followed")
        if path in self.reads:
            return self.reads[path]
        if len(self.reads) >= limits.get("boot-reads"):
            raise NotPredicted(f"{self.path}: the boot reads more files than the limit boot-reads")
        data = self.read(path)
        if data is None:
            raise NotPredicted(f"{path} is not on the ESP: GRUB would stop")
        self.reads[path] = data
        return data


def _quoted(word: str) -> str:
    """An argument as GRUB puts it on the kernel command line (lib/cmdline.c)."""
    if " " not in word and not any(c in word for c in "\\'\""):
        return word
    escaped = re.sub(r"([\\'\"])", r"\\\1", word)
    return f'"{escaped}"' if " " in word else escaped
