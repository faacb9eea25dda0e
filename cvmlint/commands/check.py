"""`cvmlint check`: evaluate a policy over saved facts."""

from __future__ import annotations

from pathlib import Path

from cvmlint.cliargs import Opt, command
from cvmlint.commands.common import POLICY, PROFILE, REPORT, ReportOptions, load_policy
from cvmlint.commands.facts import load_target


@command(
    "check",
    Opt(("facts_file",), "facts_file", "Facts JSON file (from cvmlint facts --json).", kind=Path),
    POLICY,
    PROFILE,
    REPORT,
)
def check_cmd(facts_file: Path, policy_path: Path | None, profile: list[str] | None, report: ReportOptions) -> None:
    """Evaluate a policy over saved facts."""
    from cvmlint.policy import apply_waivers, evaluate, load_waivers

    policy = load_policy(policy_path, profile)
    judged = evaluate(policy, load_target(facts_file))
    judged.profile_sources = dict.fromkeys(policy.profiles, "--profile")
    if report.waivers is not None:
        apply_waivers(judged, load_waivers(report.waivers))
    report.finish(judged)
