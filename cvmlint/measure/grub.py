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

Facts from GRUB 2.06 (script/execute.c grub_script_execute_cmdline, commands/tpm.c, kern/verifiers.c,
lib/cmdline.c, commands/menuentry.c) and Debian's build-efi-images; checked against a real boot's PCRs
(tests/measure). Only the statements below are followed; anything else makes PCRs 8 and 9 unknown
with the line that stops the prediction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cvmlint import limits
from cvmlint.errors import CvmlintError

KNOWN = ("2.06",)
"""GRUB versions (Debian's signed build) whose measurements are predicted."""
MAX_LINES = 10_000


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
            assert text is not None
            _command(out, f"source ({device}){candidate}")
            out.append(Measured(9, f"({device}){candidate}", text))
            _Script(out, read, candidate, entry).run(text.decode("utf-8", "replace"))
            return out
    raise NotPredicted("no grub.cfg under /EFI/debian: GRUB would source $cmdpath/grub.cfg (its case is not known)")


def _command(out: list[Measured], text: str) -> None:
    out.append(Measured(8, f"grub_cmd: {text}", text.encode()))


_WORD = re.compile(r"""'[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"]+""")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


class _Script:
    def __init__(self, out: list[Measured], read: Reader, path: str, entry: str | None) -> None:
        self.out, self.read, self.path, self.entry = out, read, path, entry
        self.env: dict[str, str] = {}
        self.entries: list[tuple[str, str, int]] = []  # title, block text, line

    def run(self, text: str) -> None:
        lines = text.replace("\r", "").split("\n")
        limits.check("grub-config-bytes", len(text), "grub", self.path)
        if len(lines) > MAX_LINES:
            raise NotPredicted(f"{self.path} has more than {MAX_LINES} lines")
        n = 0
        while n < len(lines):
            line = lines[n].strip()
            n += 1
            if not line or line.startswith("#"):
                continue
            words = self._words(line, n)
            if words[0] == "set" and len(words) == 2 and "=" in words[1]:
                name, value = words[1].split("=", 1)
                self.env[name] = value
                _command(self.out, " ".join(words))
            elif words[0] == "menuentry" and line.endswith("{"):
                n = self._menuentry(lines, n, words[1:-1])
            else:
                raise NotPredicted(f"{self.path}:{n}: `{line}` is not followed (set and menuentry are)")
        self._boot()

    def _words(self, line: str, number: int) -> list[str]:
        words = []
        for raw in _WORD.findall(line):
            if raw.startswith("'"):
                words.append(raw[1:-1])
            elif raw.startswith('"'):
                words.append(re.sub(r"\\(.)", r"\1", self._expand(raw[1:-1])))
            else:
                words.append(self._expand(raw))
        if not words:
            raise NotPredicted(f"{self.path}:{number}: `{line}` cannot be split into words")
        return words

    def _expand(self, word: str) -> str:
        return _VAR.sub(lambda m: self.env.get(m.group(1) or m.group(2), ""), word)

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
        block = "{\n" + "".join(line + "\n" for line in body) + "}"
        _command(self.out, f"menuentry {title} {block}")
        self.entries.append((title, "\n".join(body), start))
        return n + 1

    def _boot(self) -> None:
        default = self.entry if self.entry is not None else self.env.get("default", "0")
        if not self.entries:
            raise NotPredicted(f"{self.path} defines no menu entry")
        chosen = next((e for e in self.entries if e[0] == default), None)
        if chosen is None and default.isdigit() and int(default) < len(self.entries):
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
                _command(self.out, " ".join(words))
                self.out += [Measured(9, path, self._file(path)) for path in words[1:]]
            else:
                raise NotPredicted(f"{self.path}:{start + offset + 1}: `{line}` is not followed (linux and initrd are)")

    def _file(self, path: str) -> bytes:
        if not path.startswith("/"):
            raise NotPredicted(f"{path}: a file on another device than the ESP is not followed")
        data = self.read(path)
        if data is None:
            raise NotPredicted(f"{path} is not on the ESP: GRUB would stop")
        return data


def _quoted(word: str) -> str:
    """An argument as GRUB puts it on the kernel command line (lib/cmdline.c)."""
    if " " not in word and not any(c in word for c in "\\'\""):
        return word
    escaped = re.sub(r"([\\'\"])", r"\\\1", word)
    return f'"{escaped}"' if " " in word else escaped
