"""The policy language: load (parse, check, apply profiles) and evaluate over facts.

    >>> from cvmlint.policy import load_policy, evaluate
    >>> policy = load_policy("policies/cvm-baseline.cvmp", profiles=["tdx-base"])  # doctest: +SKIP
    >>> report = evaluate(policy, facts)                                            # doctest: +SKIP
    >>> [r.status.value for r in report.results][:3]                                # doctest: +SKIP
    ['pass', 'fail', 'unknown']

Names are imported on first use, so `cvmlint policy check` does not pay for the evaluator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cvmlint.policy.evaluator import evaluate
    from cvmlint.policy.loader import Policy, load_policy
    from cvmlint.policy.results import Finding, Report, RuleResult, Status, Waiver
    from cvmlint.policy.waivers import apply_waivers, load_waivers

_WHERE = {
    "evaluate": "evaluator",
    "Policy": "loader",
    "load_policy": "loader",
    "Finding": "results",
    "Report": "results",
    "RuleResult": "results",
    "Status": "results",
    "Waiver": "results",
    "apply_waivers": "waivers",
    "load_waivers": "waivers",
}
__all__ = [
    "Finding",
    "Policy",
    "Report",
    "RuleResult",
    "Status",
    "Waiver",
    "apply_waivers",
    "evaluate",
    "load_policy",
    "load_waivers",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'cvmlint.policy' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cvmlint.policy.{_WHERE[name]}"), name)
