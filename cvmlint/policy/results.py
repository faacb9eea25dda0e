"""What evaluating a policy produces: one result per rule, findings with locations, exit codes."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from cvmlint.facts.model import Target
from cvmlint.facts.provenance import Provenance
from cvmlint.severity import SEVERITY_RANK


class Status(enum.StrEnum):
    """The result of one rule on one target."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    """A fact the rule needs could not be established; never counted as a pass."""
    WAIVED = "waived"
    SKIPPED = "skipped"
    """Not applicable to this target, or disabled by a profile."""
    ERROR = "error"
    """The rule could not be evaluated (a policy bug); the run exits 2."""


@dataclass(frozen=True)
class Waiver:
    """An approved, time-limited exception to a rule (from a waivers file)."""

    rule: str
    reason: str
    approver: str
    expires: date
    subject: str | None = None
    """Only findings about this package/path/… are waived; None waives the whole rule."""
    target: str | None = None
    """Only on the target with this digest (`sha256:…`) or name."""
    where: str = ""
    """Where the waiver is written (file:line)."""

    def expired(self, today: date) -> bool:
        """A waiver stops applying the day after its expiry date."""
        return today > self.expires


@dataclass(frozen=True)
class Finding:
    """One reason a rule failed: a message and the place it is about."""

    message: str
    where: Provenance | None = None
    subject: str | None = None
    """The offending item's key (package name, file path, parameter name)."""
    also: tuple[Provenance, ...] = ()
    """Other places the failing expression read."""
    waived_by: Waiver | None = None

    @property
    def location(self) -> str:
        """The finding's place as text (`mkosi.conf:12`, `root:/usr/bin/gcc-12`)."""
        return str(self.where) if self.where else ""


@dataclass(frozen=True)
class RuleResult:
    """The verdict of one rule."""

    rule_id: str
    title: str
    severity: str
    status: Status
    findings: tuple[Finding, ...] = ()
    reasons: tuple[str, ...] = ()
    """Why the result is unknown (or why it was skipped, or what went wrong)."""
    note: str = ""
    """Extra information, e.g. which alternative of an `or` passed, or an expired waiver."""
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleInfo:
    """What a report says about a rule it judged with: its text and its severity under the report's
    profiles (so each report renders its own rules, whichever other reports share its output)."""

    id: str
    title: str
    severity: str
    rationale: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()


@dataclass
class Report:
    """Every rule's result for one target under one policy."""

    policy_name: str
    policy_version: str
    policy_sha256: str
    profiles: tuple[str, ...]
    target: Target
    results: list[RuleResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things every rendering of the report must say (e.g. that a build was not gated)."""
    rules: tuple[RuleInfo, ...] = ()
    """The rules judged with, in the policy's order."""
    profile_sources: dict[str, str] = field(default_factory=dict)
    """Policy profile -> why it was applied (`cvmlint.toml`, `--profile`, `--mkosi-profile dev`)."""
    config: str = ""
    """The project configuration used (a cvmlint.toml path, or why there is none); empty where a command
    reads none."""

    def judged_by(self) -> str:
        """`policy cvm-baseline 1.0, profiles: tdx-base (cvmlint.toml); config cvmlint.toml`: what judged
        the target, for a report's header."""
        text = f"policy {self.policy_name} {self.policy_version}".rstrip()
        text += f", profiles: {self.profiles_text()}" if self.profiles else ""
        return text + (f"; config {self.config}" if self.config else "")

    def profiles_text(self) -> str:
        """The profiles applied, each with why: `tdx-base (cvmlint.toml), dev (--mkosi-profile dev)`."""
        return ", ".join(f"{p} ({self.profile_sources[p]})" if p in self.profile_sources else p for p in self.profiles)

    def summary(self) -> dict[str, int]:
        """How many rules ended in each status."""
        counts = Counter(r.status.value for r in self.results)
        return {s.value: counts.get(s.value, 0) for s in Status}

    def exit_code(self, fail_on: str = "low", unknown: str = "fail") -> int:
        """0 clean, 1 a failing (or, with unknown=fail, unknown) rule at or above `fail_on`, 2 errors."""
        if any(r.status is Status.ERROR for r in self.results):
            return 2
        threshold = SEVERITY_RANK[fail_on]
        failing = {Status.FAIL} | ({Status.UNKNOWN} if unknown == "fail" else set())
        if any(r.status in failing and SEVERITY_RANK.get(r.severity, 4) >= threshold for r in self.results):
            return 1
        return 0
