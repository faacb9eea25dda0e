"""Strings a policy asks `kernel.contains()` about, so a scan searches the kernel for them once."""

from __future__ import annotations

from cvmlint.policy import ast
from cvmlint.policy.checker import walk_expr
from cvmlint.policy.loader import Policy


def kernel_needles(policy: Policy) -> tuple[str, ...]:
    """Every literal argument of `contains()`, and every element of a constant list a quantifier
    variable passed to it ranges over."""
    found: list[str] = []
    for rule in policy.rules:
        for req in rule.requires + tuple(r for reqs in rule.branches.values() for r in reqs):
            ranges: dict[str, ast.Expr] = {}
            for node in walk_expr(req.expr):
                if isinstance(node, ast.Quantifier | ast.Count):
                    ranges[node.var] = node.collection
                if isinstance(node, ast.Call) and node.method == "contains" and node.args:
                    found += _values(node.args[0], ranges, policy)
    return tuple(dict.fromkeys(found))


def _values(arg: ast.Expr, ranges: dict[str, ast.Expr], policy: Policy) -> list[str]:
    if isinstance(arg, ast.Literal) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Name) and arg.id in ranges:
        coll = ranges[arg.id]
        if isinstance(coll, ast.Name) and isinstance(policy.lets.get(coll.id), tuple):
            return [v for v in policy.lets[coll.id] if isinstance(v, str)]
        if isinstance(coll, ast.ListExpr):
            return [x.value for x in coll.items if isinstance(x, ast.Literal) and isinstance(x.value, str)]
    if isinstance(arg, ast.Name) and isinstance(policy.lets.get(arg.id), str):
        return [policy.lets[arg.id]]
    return []
