"""The commands, one module each: `lint`, `scan`, `build`, `boot`, `sbom`, `measure`, `rebuild`, `evidence …`,
`policy …`, `facts`, `check`, `limits`. Each declares its options next to its function (see cliargs);
what they share (output formats, option groups, writing outputs) is in `common`. Each module imports
what a command needs only when it runs: loading them all costs a few milliseconds."""

from __future__ import annotations

import importlib

MODULES = (
    "lint",
    "scan",
    "build",
    "boot",
    "check",
    "facts",
    "sbom",
    "measure",
    "rebuild",
    "evidence",
    "policy",
    "limits",
)
"""In the order `cvmlint --help` lists them."""


def load() -> None:
    """Import every command module, so that each declares its command."""
    for name in MODULES:
        importlib.import_module(f"cvmlint.commands.{name}")
