"""The build view (text, table) and the build document (JSON): a recipe's lint, its image's scan,
the drift between them, the packages the recipe never named, the outputs, a rebuild's comparison."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cvmlint.build import BuildOutcome, BuildPlan
    from cvmlint.policy.results import Report
    from cvmlint.report.interface import Reporter


def build_document(outcome: BuildOutcome, plan: BuildPlan) -> dict[str, Any]:
    """The build record with its lint, scan and rebuild reports (`-f json`)."""
    from cvmlint.build import build_json
    from cvmlint.report.json import report_to_json

    doc = build_json(outcome, plan)
    doc["lint"] = report_to_json(outcome.lint, outcome.lint.exit_code(plan.fail_on, plan.unknown))
    if outcome.scan is not None:
        doc["scan"] = report_to_json(outcome.scan, outcome.scan.exit_code(plan.fail_on, plan.unknown))
    if outcome.rebuild is not None:
        from cvmlint.build.rebuild import rebuild_json

        doc["rebuild"] = rebuild_json(outcome.rebuild, build_json(outcome.rebuild.second, plan))
    return doc


def build_text(outcome: BuildOutcome, plan: BuildPlan, table: Reporter) -> str:
    """The build view (`-f text`, `-f table`): both reports, drift, packages, the summary line, outputs."""
    from cvmlint.build.drift import PackageDelta

    lint_code = outcome.lint.exit_code(plan.fail_on, plan.unknown)
    out = [table.render(outcome.lint, lint_code)]
    if outcome.gated:
        out.append(
            f"not built: lint of {plan.directory} failed (exit {lint_code}); --no-gate builds a development "
            "image anyway\n"
        )
        return "".join(out)
    assert outcome.scan is not None and outcome.image is not None
    out.append(table.render(outcome.scan, outcome.scan.exit_code(plan.fail_on, plan.unknown)))
    out += [f"drift: {d.render()}\n" for d in outcome.drift]
    if isinstance(outcome.packages, PackageDelta):
        undeclared = ", ".join(f"{n} {v}" for n, v in outcome.packages.undeclared[:12])
        more = len(outcome.packages.undeclared) - 12
        out.append(
            f"packages the recipe never named: {len(outcome.packages.undeclared)} "
            f"({undeclared}{f', … {more} more' if more > 0 else ''})\n"
        )
        for name, where in outcome.packages.missing:
            out.append(f"declared but not in the image: {name} ({where})\n")
    elif outcome.packages is not None:
        out.append(f"package comparison: unknown ({outcome.packages.reason})\n")
    if outcome.boot is not None:
        from cvmlint.bootcheck import render_text as boot_text

        out.append(boot_text(outcome.boot))
    out.append(
        f"summary: lint {_verdict(outcome.lint, plan)}; built {_relative(outcome.image)} "
        f"({outcome.size / 2**20:.0f} MiB, sha256 {outcome.sha256[:16]}…, {outcome.seconds:.0f} s, "
        f"{outcome.mkosi}); scan {_verdict(outcome.scan, plan)}; drift {len(outcome.drift)}; exit "
        f"{outcome.exit_code(plan.fail_on, plan.unknown)}\n"
    )
    out += [f"  {name}: {path}\n" for name, path in outcome.outputs.items()]
    if outcome.rebuild is not None:
        from cvmlint.build.rebuild import render_text

        out.append("\n" + render_text(outcome.rebuild))
    return "".join(out)


def _relative(path: Path) -> str:
    """A path as shown: relative to the working directory when below it."""
    absolute = path.resolve()
    return os.path.relpath(absolute) if absolute.is_relative_to(Path.cwd().resolve()) else str(path)


def _verdict(report: Report, plan: BuildPlan) -> str:
    code = report.exit_code(plan.fail_on, plan.unknown)
    counts = report.summary()
    return (
        f"{'pass' if code == 0 else 'FAIL'} ({counts['pass']} pass, {counts['fail']} fail, {counts['unknown']} unknown)"
    )
