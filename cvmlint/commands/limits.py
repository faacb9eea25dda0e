"""`cvmlint limits`: the resource limits, their values and the largest real values seen."""

from __future__ import annotations

from cvmlint.cliargs import command


@command("limits")
def limits_cmd() -> None:
    """List the resource limits: name, value, what it bounds, and the largest real value seen."""
    from cvmlint import limits

    print(limits.render(), end="")
