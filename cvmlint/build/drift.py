"""Lint against scan: what the recipe promised and the built image does not keep (or the reverse).

A rule evaluated on both targets that passes on one and fails on the other is *drift*: the recipe
was judged on facts the build did not produce. Each drift names both places: the recipe's (the
failing finding, or for a pass the recipe fact the rule read) and the image's.
"""

from __future__ import annotations

from dataclasses import dataclass

from cvmlint.facts.model import Facts, Package
from cvmlint.facts.provenance import Items, Provenance, Unknown
from cvmlint.policy.loader import Policy
from cvmlint.policy.results import Report, RuleResult, Status

COMPARED = {Status.PASS, Status.FAIL}


@dataclass(frozen=True)
class Drift:
    """One rule whose verdict changed between the recipe and its image."""

    rule_id: str
    severity: str
    recipe: Status
    image: Status
    recipe_where: str
    image_where: str
    message: str

    def render(self) -> str:
        return (
            f"{self.rule_id} ({self.severity}): {self.recipe.value} on the recipe ({self.recipe_where or '-'}), "
            f"{self.image.value} on the image ({self.image_where or '-'}): {self.message}"
        )


@dataclass(frozen=True)
class PackageDelta:
    """Packages the image holds that the recipe never named, and named ones the image lacks."""

    undeclared: tuple[tuple[str, str], ...]
    """(name, version) of image packages no Packages= line or script names (dependencies, or worse)."""
    missing: tuple[tuple[str, str], ...]
    """(name, where it was declared) of declared packages the image does not hold."""


def drift(policy: Policy, lint: Report, scan: Report, recipe_facts: Facts, image_facts: Facts) -> list[Drift]:
    """Every rule that passed on one target and failed on the other."""
    scanned = {r.rule_id: r for r in scan.results}
    out = []
    for before in lint.results:
        after = scanned.get(before.rule_id)
        if after is None or before.status not in COMPARED or after.status not in COMPARED:
            continue
        if before.status == after.status:
            continue
        failing = after if after.status is Status.FAIL else before
        out.append(
            Drift(
                before.rule_id,
                before.severity,
                before.status,
                after.status,
                _where(before, policy, "recipe", recipe_facts),
                _where(after, policy, "image", image_facts),
                failing.findings[0].message if failing.findings else failing.title,
            )
        )
    return out


def _where(result: RuleResult, policy: Policy, target: str, facts: Facts) -> str:
    """The first finding's place, or (for a pass) where the first fact the rule reads comes from."""
    if result.findings:
        return result.findings[0].location
    from cvmlint.policy.checker import fact_paths

    rule = policy.rule(result.rule_id)
    if rule is None:
        return ""
    for req in rule.requirements_for(target):
        for path in sorted(fact_paths(req.expr, policy.scope)):
            value = getattr(facts, path.split(".")[0], None)
            where = value.where if isinstance(value, Items | Unknown) else getattr(value, "where", None)
            if isinstance(where, Provenance):
                return str(where)
    return ""


def package_delta(recipe: Facts, image: Facts) -> PackageDelta | Unknown:
    """Compare the recipe's declared packages (names) with the image's installed ones."""
    for facts, what in ((recipe, "the recipe's"), (image, "the image's")):
        if not isinstance(facts.packages, Items):
            reason = facts.packages.reason if isinstance(facts.packages, Unknown) else "not recorded"
            return Unknown(f"{what} packages are unknown: {reason}")
    declared: dict[str, Package] = {p.name: p for p in recipe.packages}  # type: ignore[union-attr]
    installed: dict[str, Package] = {p.name: p for p in image.packages}  # type: ignore[union-attr]
    undeclared = tuple((name, str(p.version)) for name, p in sorted(installed.items()) if name not in declared)
    missing = tuple((name, str(p.where or "")) for name, p in sorted(declared.items()) if name not in installed)
    return PackageDelta(undeclared, missing)
