"""`cvmlint policy …`: check, explain, diff, list and test policies."""

from __future__ import annotations

from pathlib import Path

from cvmlint.cliargs import GROUPS, Opt, command
from cvmlint.commands.common import FORMAT, OUTPUT, POLICY, PROFILE, VERBOSE, OutputFormat, emit, err, fail, load_policy
from cvmlint.errors import CvmlintError

GROUPS["policy"] = "Check, explain and test policies."


def _policy_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.cvmp"))
            if not found:
                fail(f"{p}: no *.cvmp policy files in this directory")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            fail(f"{p}: no such file or directory")
    return out


@command(
    "policy check",
    Opt(
        ("paths",),
        "paths",
        "Policy files, or directories of *.cvmp files (default: the shipped policies).",
        kind=Path,
        many=True,
    ),
    Opt(("--quiet", "-q"), "quiet", "Print only problems.", switch=True),
)
def policy_check(paths: list[Path], quiet: bool) -> None:
    """Parse and check policies (syntax, fact names, types, rules, every profile)."""
    from cvmlint._resources import policies_dir
    from cvmlint.policy import load_policy

    problems = 0
    for path in _policy_files(paths or [policies_dir()]):
        try:
            policy = load_policy(path)  # checks every profile too
        except CvmlintError as error:
            err(error.diagnostics())
            problems += 1
            continue
        for warning in policy.warnings:
            err(warning.render())
        if not quiet:
            print(
                f"{path}: ok: policy {policy.name} {policy.version}, {len(policy.rules)} rules, "
                f"{len(policy.available_profiles)} profiles ({', '.join(policy.available_profiles) or '-'})"
            )
    raise SystemExit(2 if problems else 0)


@command("policy explain", Opt(("rule_id",), "rule_id", "Rule id, e.g. CVM-FS-001."), POLICY, PROFILE)
def policy_explain(rule_id: str, policy_path: Path | None, profile: list[str] | None) -> None:
    """Show a rule: metadata, rationale, remediation, and which facts it reads."""
    from cvmlint.policy.explain import explain_rule

    policy = load_policy(policy_path, profile)
    text = explain_rule(policy, rule_id)
    if text is None:
        import difflib

        ids = {r.id.upper(): r.id for r in policy.rules}
        close = [ids[c] for c in difflib.get_close_matches(rule_id.upper(), list(ids), n=1)]
        fail(
            f"policy {policy.name} has no rule {rule_id}",
            f"did you mean {close[0]}?" if close else "`cvmlint policy explain --help`",
        )
    print(text)


@command(
    "policy diff",
    Opt(("base",), "base", "The git ref the change starts from (a pull request's base, e.g. origin/main)."),
    Opt(("head",), "head", "The git ref it ends at (default: the working tree).", optional=True),
    Opt(("--policy", "-p"), "policy_path", "The policy file, if cvmlint.toml names none.", kind=Path),
    Opt(("--waivers",), "waivers", "The waivers file, if cvmlint.toml names none.", kind=Path),
    FORMAT,
    VERBOSE,
    OUTPUT,
)
def policy_diff(
    base: str,
    head: str | None,
    policy_path: Path | None,
    waivers: Path | None,
    fmt: list[OutputFormat] | None,
    verbose: bool,
    output: list[Path | None] | None,
) -> None:
    """What a change does to the gate: the policy, its allowlists, the waivers and cvmlint.toml at BASE
    and at HEAD. Every change that can weaken the gate is a finding at its file and line on the new side
    (exit 1: a deliberate policy change then needs a reviewer); a change that only tightens is a note."""
    import os
    import tempfile

    from cvmlint import git
    from cvmlint.gatediff import diff_gate, load_side, report_of

    top = git.require_repository(Path.cwd(), f"policy diff {base}")
    given = [os.path.relpath(p.resolve(), top) if p else None for p in (policy_path, waivers)]
    with tempfile.TemporaryDirectory(prefix="cvmlint-diff-") as tmp:
        sides = []
        for ref in (base, head):
            if ref is None:
                sides.append(load_side(top, "working tree", *given))
                continue
            commit = git.commit_of(top, ref)
            tree = Path(tmp) / str(len(sides))
            git.export_tree(top, commit, tree)
            sides.append(load_side(tree, f"{ref} ({commit[:12]})", *given))
        report = report_of(diff_gate(sides[0], sides[1]), sides[0], sides[1], top)
    code = 1 if any(r.findings for r in report.results) else 0
    emit([(report, code)], fmt, output, verbose)
    raise SystemExit(code)


@command("policy rules", POLICY)
def policy_rules(policy_path: Path | None) -> None:
    """Every rule of the policy as Markdown (docs/rules.md; SARIF's helpUri points into it)."""
    from cvmlint.policy.explain import rules_markdown

    print(rules_markdown(load_policy(policy_path, None)), end="")


@command("policy facts")
def policy_facts() -> None:
    """List every fact a policy can read, with its type and meaning."""
    from cvmlint.policy.explain import fact_catalogue

    print(fact_catalogue())


@command(
    "policy test",
    Opt(
        ("directory",),
        "directory",
        "Folder of *.toml fixture files (default: the shipped policies/tests).",
        kind=Path,
        optional=True,
    ),
    Opt(("--strict",), "strict", "Also fail when a rule lacks a pass or a fail fixture.", switch=True),
)
def policy_test(directory: Path | None, strict: bool) -> None:
    """Run policy unit tests: fact fixtures with the expected result per rule."""
    from cvmlint._resources import policies_dir
    from cvmlint.policy.testing import run_fixture_dir

    summary = run_fixture_dir(directory or policies_dir() / "tests")
    print(summary.render())
    raise SystemExit(summary.exit_code(strict))
