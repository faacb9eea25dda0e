"""`cvmlint facts`: the facts a target yields, as a summary or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import (
    FILE_OUTPUT,
    MKOSI,
    POLICY,
    MkosiOptions,
    fail,
    load_policy,
    print_warnings,
    progress_bar,
    write,
)

if TYPE_CHECKING:
    from cvmlint.facts.model import Facts


def _is_facts_json(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(64).lstrip().startswith(b"{")


def load_target(target: Path) -> Facts:
    """Facts saved as JSON (images and recipes are read by `scan` and `lint`)."""
    from cvmlint.facts import load_facts_file

    if not target.exists():
        fail(f"{target}: no such file or directory")
    if target.is_dir():
        fail(f"{target}: is a directory", "`cvmlint lint` reads recipes; `check` takes a facts JSON file")
    return load_facts_file(target)


@command(
    "facts",
    Opt(
        ("target",),
        "target",
        "A disk image (raw, qcow2, vhd, tar.gz), an mkosi recipe directory or a facts JSON file.",
        kind=Path,
    ),
    Opt(("--json",), "as_json", "Print the facts as JSON (cvmlint.facts/1).", switch=True),
    Opt(("--no-verity",), "no_verity", "Do not recompute the root hash.", switch=True),
    POLICY,
    FILE_OUTPUT,
    MKOSI,
)
def facts_cmd(
    target: Path,
    as_json: bool,
    no_verity: bool,
    policy_path: Path | None,
    output: Path | None,
    mkosi: MkosiOptions,
) -> None:
    """Print the facts a target yields (the kernel is searched for the policy's marker strings).

    For a recipe, the mkosi options say how mkosi would be run on it.
    """
    from cvmlint.facts import dump_facts
    from cvmlint.facts.summary import summarise

    if target.exists() and target.is_file() and _is_facts_json(target):
        facts = load_target(target)
        write(dump_facts(facts) if as_json else summarise(facts), output)
        return
    if target.is_dir():
        from cvmlint.project import find_project
        from cvmlint.recipe.facts import recipe_facts

        project = find_project(Path.cwd(), target)
        entry = project.entry_for(target)
        cli = mkosi.command_line(entry)
        facts, warnings = recipe_facts(target, entry, cli, Path.cwd(), implies=project.implies)
        print_warnings(project.warnings + warnings, set())
        write(dump_facts(facts) if as_json else summarise(facts), output)
        return
    from cvmlint.policy.probes import kernel_needles
    from cvmlint.scan import ScanOptions, scan_image

    needles = kernel_needles(load_policy(policy_path, None))
    if not target.exists():
        fail(f"{target}: no such file or directory")
    with (
        progress_bar(not no_verity) as progress,
        scan_image(target, ScanOptions(verity=not no_verity, needles=needles, progress=progress)) as facts,
    ):
        write(dump_facts(facts) if as_json else summarise(facts), output)
