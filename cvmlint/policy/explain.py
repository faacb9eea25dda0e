"""Human-readable descriptions: one rule (`policy explain`) and the fact catalogue (`policy facts`)."""

from __future__ import annotations

from cvmlint.policy.checker import fact_paths, leaf_paths
from cvmlint.policy.loader import Policy
from cvmlint.policy.types import Ty, fact_roots, record_fields


def explain_rule(policy: Policy, rule_id: str) -> str | None:
    """Metadata, rationale, remediation and the facts a rule reads; None if there is no such rule."""
    rule = policy.rule(rule_id)
    if rule is None:
        return None
    lines = [f"{rule.id}: {rule.title}", f"  severity:    {rule.severity}",
             f"  targets:     {', '.join(rule.targets)}", f"  defined at:  {rule.pos}"]
    if rule.references:
        lines.append(f"  references:  {', '.join(rule.references)}")
    if rule.id in policy.disabled:
        lines.append(f"  status:      {policy.disabled[rule.id]}")
    for name, prof in policy.available_profiles.items():
        changes = [f"disables it ({d.reason})" for d in prof.disables if d.rule_id == rule.id]
        changes += [f"sets severity {s.severity}" for s in prof.severities if s.rule_id == rule.id]
        if changes:
            lines.append(f"  profile {name}: {'; '.join(changes)}")
    for target in rule.targets:
        reads: set[str] = set()
        for req in rule.requirements_for(target):
            reads |= fact_paths(req.expr, policy.scope)
            for part in req.message.parts if req.message else ():
                if not isinstance(part, str):
                    reads |= fact_paths(part, policy.scope)
        lines.append(f"  reads on {target}: {', '.join(sorted(leaf_paths(reads))) or '-'}")
    lines += ["", "Rationale:", _indent(rule.rationale or "(none given)"),
              "", "Remediation:", _indent(rule.remediation or "(none given)"), "", "Requirements:"]
    for req in rule.requires:
        lines.append(f"  require {req.text}")
    for target, reqs in rule.branches.items():
        for req in reqs:
            lines.append(f"  on {target}: require {req.text}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _describe(ty: Ty, prefix: str, doc: str, out: list[str], seen: set[str]) -> None:
    out.append(f"{prefix:40} {ty!s:22} {doc}")
    inner = ty.elem if ty.is_list and ty.elem else ty
    if inner.record is None or inner.record.__name__ in seen:
        return
    seen = seen | {inner.record.__name__}
    item = prefix + ("[…]" if ty.is_list else "")
    for name, info in record_fields(inner.record).items():
        _describe(info.ty, f"{item}.{name}", info.doc, out, seen)
    for method, (args, result) in inner.record.METHODS.items():
        out.append(f"{item}.{method}({', '.join(args)})".ljust(41) + f"{result:22} method")


def fact_catalogue() -> str:
    """Every fact path a policy can read, its type and its meaning."""
    out = [f"{'fact':40} {'type':22} meaning", "-" * 100]
    for name, info in fact_roots().items():
        _describe(info.ty, name, info.doc, out, set())
    out.append("")
    out.append("A `?` type may be none (an absent key). Any fact may be unknown, with a reason.")
    return "\n".join(out)
