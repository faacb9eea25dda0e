"""The command line's grammar: each command declares its arguments and options next to its function,
and an argparse parser is made from the declarations (argparse: a tenth of the start-up of a
framework that inspects signatures, and a lint runs on every push)."""

from __future__ import annotations

import argparse
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Opt:
    """An option (`flags` start with -) or a positional argument (`flags` is its name)."""

    flags: tuple[str, ...]
    dest: str
    help: str
    kind: Callable[[str], Any] = str
    many: bool = False
    """Repeatable option, or a positional taking any number of values."""
    switch: bool = False
    """An option without a value: present or not."""
    default: Any = None
    metavar: str | None = None
    optional: bool = False
    """A positional that may be left out."""
    action: type[argparse.Action] | None = None
    """A repeatable option's own action (instead of appending)."""

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        kind: Callable[[str], Any] = self.kind
        help_text = self.help
        metavar = self.metavar or self.flags[0].lstrip("-").upper().replace("-", "_")
        if isinstance(self.kind, type) and issubclass(self.kind, enum.Enum):
            kind = _choice(self.kind)
            help_text = f"{help_text} One of: {', '.join(str(c.value) for c in self.kind)}."
        if self.switch:
            parser.add_argument(*self.flags, dest=self.dest, action="store_true", help=self.help)
        elif not self.flags[0].startswith("-"):
            nargs = "*" if self.many else "?" if self.optional else None
            parser.add_argument(
                self.dest, type=kind, nargs=nargs, default=self.default, metavar=metavar, help=help_text
            )
        else:
            parser.add_argument(
                *self.flags,
                dest=self.dest,
                type=kind,
                action=self.action or ("append" if self.many else "store"),
                default=self.default,
                metavar=metavar,
                help=help_text,
            )


class FormatAction(argparse.Action):
    """`--format`: appends, keeping `--output` (dest `output`) aligned with it (see OutputAction)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any, _: Any = None
    ) -> None:
        formats = list(getattr(namespace, self.dest) or [])
        outputs = list(getattr(namespace, "output", None) or [])
        if outputs and not formats:
            parser.error(
                f"--output {outputs[0]} comes before any --format: put each --output after the --format it "
                f"writes (-f {value} -o {outputs[0]})"
            )
        formats.append(value)
        setattr(namespace, self.dest, formats)
        namespace.output = outputs + [None] * (len(formats) - 1 - len(outputs))


class OutputAction(argparse.Action):
    """`--output` binds to the `--format` before it (`-f sarif -o x.sarif -f text`); without any
    `--format` it takes the default format. A second `--output` for one format is refused."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any, _: Any = None
    ) -> None:
        formats = list(getattr(namespace, "fmt", None) or [])
        outputs = list(getattr(namespace, self.dest) or [])
        outputs += [None] * (max(len(formats) - 1, 0) - len(outputs))
        if len(outputs) >= max(len(formats), 1):
            after = f"-f {formats[-1]}" if formats else "the default format"
            parser.error(
                f"--output {value}: {after} already writes to {outputs[-1]}; give each --output right after "
                f"its --format: -f sarif -o cvmlint.sarif -f json -o cvmlint.json"
            )
        outputs.append(value)
        setattr(namespace, self.dest, outputs)


def _choice(kind: type[enum.Enum]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            choices = ", ".join(str(c.value) for c in kind)
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {choices})") from None

    return convert


@dataclass(frozen=True)
class OptionGroup:
    """Options several commands take together, parsed once into one frozen value (`make` takes each
    option's `dest` as a keyword); the command's function receives it as the keyword `name`."""

    name: str
    opts: tuple[Opt, ...]
    make: Callable[..., Any]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        for opt in self.opts:
            opt.add_to(parser)

    def value(self, namespace: argparse.Namespace) -> Any:
        return self.make(**{o.dest: getattr(namespace, o.dest) for o in self.opts})


@dataclass(frozen=True)
class Command:
    """A command: its words (`policy check`), its function and what it takes."""

    words: tuple[str, ...]
    run: Callable[..., None]
    opts: tuple[Opt | OptionGroup, ...]

    def call(self, namespace: argparse.Namespace) -> None:
        self.run(
            **{
                o.name if isinstance(o, OptionGroup) else o.dest: (
                    o.value(namespace) if isinstance(o, OptionGroup) else getattr(namespace, o.dest)
                )
                for o in self.opts
            }
        )


COMMANDS: list[Command] = []
GROUPS: dict[str, str] = {}
"""Command groups (`policy`, `evidence`) and their help."""


def command(words: str, *opts: Opt | OptionGroup) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare a command; its function takes each option's `dest` (and each group's `name`) as a keyword."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        COMMANDS.append(Command(tuple(words.split()), fn, opts))
        return fn

    return register


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal paragraph by paragraph (a docstring's blank lines kept)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)  # width: the terminal's (argparse reads COLUMNS)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = textwrap.dedent(text).split("\n\n")
        return "\n\n".join(
            textwrap.fill(" ".join(p.split()), width, initial_indent=indent, subsequent_indent=indent)
            for p in paragraphs
        )


def build_parser(
    prog: str, description: str, top: tuple[Opt, ...], version: str, argv: list[str]
) -> argparse.ArgumentParser:
    """The parser: top-level options, then a sub-parser per command (groups nest). Only the commands the
    arguments name get their options (a parser for every option of every command costs more than a lint's
    own work); the others are there by name, for the listing and the error that names them."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=version, help="Print the version and exit.")
    for opt in top:
        opt.add_to(parser)
    level = parser.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser] | None] = {}
    for cmd in COMMANDS:
        where = level
        if len(cmd.words) > 1:
            group = cmd.words[0]
            if group not in groups:
                sub = level.add_parser(group, help=GROUPS[group], description=GROUPS[group], formatter_class=_Formatter)
                sub.set_defaults(_group=sub)
                groups[group] = sub.add_subparsers(title="commands", metavar="COMMAND") if group in argv else None
            found = groups[group]
            if found is None:
                continue
            where = found
        doc = (cmd.run.__doc__ or "").strip()
        summary = " ".join(doc.split("\n\n", 1)[0].split())  # the first paragraph, whole
        sub = where.add_parser(cmd.words[-1], help=summary, description=doc, formatter_class=_Formatter)
        if _named(cmd.words, argv):
            for item in cmd.opts:
                item.add_to(sub)
        sub.set_defaults(_command=cmd)
    parser.set_defaults(_group=parser)
    return parser


def _named(words: tuple[str, ...], argv: list[str]) -> bool:
    return any(tuple(argv[i : i + len(words)]) == words for i in range(len(argv)))
