"""`cvmlint rebuild`: build a recipe again from its record and compare the two images."""

from __future__ import annotations

from pathlib import Path

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import FILE_OUTPUT, POLICY, PROFILE, fail, step_display, write
from cvmlint.commands.measure import TEXT_OR_JSON, TextOrJson


@command(
    "rebuild",
    Opt(("record",), "record", "The first build's .build.json, or its evidence bundle.", kind=Path),
    Opt(("--image",), "image", "The first build's image, when the record does not say where it is.", kind=Path),
    Opt(
        ("--output-dir",),
        "output_dir",
        "Where the second build goes (default: a rebuild/ directory beside the first image).",
        kind=Path,
    ),
    POLICY,
    PROFILE,
    TEXT_OR_JSON,
    FILE_OUTPUT,
)
def rebuild_cmd(
    record: Path,
    image: Path | None,
    output_dir: Path | None,
    policy_path: Path | None,
    profile: list[str] | None,
    fmt: TextOrJson,
    output: Path | None,
) -> None:
    """Build a recipe again from what its first build recorded and compare the two images.

    The recipe files must read as recorded and mkosi is offered only the recorded package versions
    (each .deb's digest checked). Exit 0: bit for bit the same; 1: different, narrowed to the
    partition, file and bytes with the likely cause; 2: it could not be rebuilt (the input named).
    """
    import json

    from cvmlint.build import build_json
    from cvmlint.build.rebuild import RebuildOptions, load_record, rebuild, rebuild_json, render_text
    from cvmlint.project import find_project

    if not record.exists():
        fail(f"{record}: no such build record")
    first = load_record(record, image)
    options = RebuildOptions(output_dir, policy_path, profile or [])
    with step_display() as progress:
        outcome = rebuild(first, find_project(Path.cwd()), options, progress)
    if fmt is TextOrJson.json:
        from cvmlint.build import BuildPlan

        plan = BuildPlan(Path(first.inputs["recipe"]))
        text = json.dumps(rebuild_json(outcome, build_json(outcome.second, plan)), indent=2) + "\n"
    else:
        text = render_text(outcome)
    write(text, output)
    raise SystemExit(outcome.exit_code())
