"""The evaluator against a reference written from the language's definition (docs/language.md):
Kleene logic for `and`/`or`/`not`, quantifiers and `count` over items whose fields may be unknown,
unknown never a pass. Hypothesis generates the expressions (as policy text, through the real parser
and checker) and the facts; the reference below is independent of cvmlint's code. The conditions include
those the evaluator answers through an index of the collection (`f.name == …`, `f.name in […]`,
`f.executable`, `f.size > …`, `f.name != …`, `f.name matches …`), with and without unknown values.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvmlint.facts import Facts, File, Items, Provenance, RootFs, Target, Unknown
from cvmlint.policy import Status, evaluate, load_policy

# ---- the reference: three values, True / False / None (unknown) ---------------------------------


def k_and(values: list[bool | None]) -> bool | None:
    if False in values:
        return False
    return None if None in values else True


def k_or(values: list[bool | None]) -> bool | None:
    if True in values:
        return True
    return None if None in values else False


def known(value: Any) -> Any:
    return None if isinstance(value, Unknown) else value


@dataclass
class World:
    files: list[File] | None  # None: the collection is unknown
    read_only: bool | None
    fmt: str | None


def ref(e: tuple, w: World, env: dict[str, File]) -> bool | None:  # type: ignore[type-arg]
    op = e[0]
    if op == "const":
        return bool(e[1])
    if op == "read_only":
        return w.read_only
    if op == "format":
        return None if w.fmt is None else w.fmt == e[1]
    if op == "flag":
        flag: bool | None = known(getattr(env[e[1]], e[2]))
        return flag
    if op == "eq":
        value = known(getattr(env[e[1]], e[2]))
        return None if value is None else bool(value == e[3])
    if op == "gt":
        return bool(env[e[1]].size > e[2])
    if op in ("ne", "match"):
        value = known(getattr(env[e[1]], e[2]))
        if value is None:
            return None
        return value != e[3] if op == "ne" else re.search(e[3], value) is not None
    if op == "among":
        listed = known(getattr(env[e[1]], e[2]))
        return None if listed is None else listed in e[3]
    if op == "not":
        negated = ref(e[1], w, env)
        return None if negated is None else not negated
    if op in ("and", "or"):
        values = [ref(x, w, env) for x in e[1:]]
        return k_and(values) if op == "and" else k_or(values)
    if op == "count":
        _, var, where, at_least = e
        if w.files is None:
            return None
        counted = [ref(where, w, {**env, var: f}) for f in w.files]
        return None if None in counted else counted.count(True) >= at_least
    _, kind, var, where, body = e  # a quantifier
    if w.files is None:
        return None
    outcomes = []  # per item: the body's value where the filter keeps it, None where the filter is unknown
    for f in w.files:
        inner = {**env, var: f}
        kept = True if where is None else ref(where, w, inner)
        if kept is False:
            continue
        outcomes.append(None if kept is None else ref(body, w, inner))
    if kind == "all":
        return k_and(outcomes)
    hit = k_or(outcomes)
    return hit if kind == "any" else (None if hit is None else not hit)


# ---- the same expression as policy text ----------------------------------------------------------


def text(e: tuple) -> str:  # type: ignore[type-arg]
    op = e[0]
    if op == "const":
        return "true" if e[1] else "false"
    if op == "read_only":
        return "rootfs.read_only"
    if op == "format":
        return f'rootfs.format == "{e[1]}"'
    if op == "flag":
        return f"{e[1]}.{e[2]}"
    if op == "eq":
        return f'{e[1]}.{e[2]} == "{e[3]}"'
    if op == "gt":
        return f"{e[1]}.size > {e[2]}"
    if op in ("ne", "match"):
        return f'{e[1]}.{e[2]} {"!=" if op == "ne" else "matches"} "{e[3]}"'
    if op == "among":
        return f"{e[1]}.{e[2]} in [" + ", ".join(f'"{v}"' for v in e[3]) + "]"
    if op == "not":
        return f"not ({text(e[1])})"
    if op in ("and", "or"):
        return "(" + f" {op} ".join(f"({text(x)})" for x in e[1:]) + ")"
    if op == "count":
        return f"(count({e[1]} in files where {text(e[2])}) >= {e[3]})"
    _, kind, var, where, body = e
    return f"({kind} {var} in files" + (f" where {text(where)}" if where is not None else "") + f": {text(body)})"


# ---- generators --------------------------------------------------------------------------------

NAMES = ["a", "b", "sh"]
MACHINES = ["x86-64", "", "aarch64"]
PATTERNS = ["^s", "a", "^$", "6"]


def expressions(bound: tuple[str, ...], depth: int) -> st.SearchStrategy[tuple]:  # type: ignore[type-arg]
    leaves: list[st.SearchStrategy[Any]] = [
        st.tuples(st.just("const"), st.booleans()),
        st.tuples(st.just("read_only")),
        st.tuples(st.just("format"), st.sampled_from(["erofs", "ext4"])),
    ]
    for var in bound:
        leaves += [
            st.tuples(st.just("flag"), st.just(var), st.sampled_from(["executable", "setuid", "is_elf"])),
            st.tuples(st.just("eq"), st.just(var), st.just("name"), st.sampled_from(NAMES)),
            st.tuples(st.just("eq"), st.just(var), st.just("elf_machine"), st.sampled_from(MACHINES)),
            st.tuples(st.just("gt"), st.just(var), st.integers(0, 3)),
            st.tuples(st.just("ne"), st.just(var), st.sampled_from(["name", "elf_machine"]), st.sampled_from(NAMES)),
            st.tuples(
                st.just("match"), st.just(var), st.sampled_from(["name", "elf_machine"]), st.sampled_from(PATTERNS)
            ),
            st.tuples(
                st.just("among"),
                st.just(var),
                st.sampled_from(["name", "elf_machine"]),
                st.lists(st.sampled_from(NAMES + MACHINES), min_size=1, max_size=3).map(tuple),
            ),
        ]
    leaf = st.one_of(leaves)
    if depth == 0:
        return leaf
    sub = expressions(bound, depth - 1)
    free = next(v for v in ("f", "g", "h") if v not in bound)
    inner = expressions((*bound, free), depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.just("not"), sub),
        st.tuples(st.sampled_from(["and", "or"]), sub, sub),
        st.tuples(st.sampled_from(["and", "or"]), sub, sub, sub),
        st.tuples(st.just("q"), st.sampled_from(["all", "any", "none"]), st.just(free), st.none() | inner, inner),
        st.tuples(st.just("count"), st.just(free), inner, st.integers(0, 3)),
    )


maybe_bool: st.SearchStrategy[bool | Unknown] = st.sampled_from([True, False, Unknown("not read")])
maybe_machine: st.SearchStrategy[str | Unknown] = st.sampled_from([*MACHINES, Unknown("no ELF header")])


@st.composite
def worlds(draw: st.DrawFn) -> World:
    files = None
    if draw(st.integers(0, 9)) > 0:
        files = [
            File(
                path=f"/f{i}",
                name=draw(st.sampled_from(NAMES)),
                type="file",
                size=draw(st.integers(0, 4)),
                executable=draw(st.booleans()),
                setuid=draw(st.booleans()),
                is_elf=draw(maybe_bool),
                elf_machine=draw(maybe_machine),
                where=Provenance(partition="root", file=f"/f{i}"),
            )
            for i in range(draw(st.integers(0, 5)))
        ]
    read_only = draw(st.sampled_from([True, False, None]))
    fmt = draw(st.sampled_from(["erofs", "ext4", None]))
    return World(files, read_only, fmt)


def facts_of(w: World) -> Facts:
    unknown = Unknown("not in this test")
    return Facts(
        target=Target(kind="image", name="generated"),
        packages=unknown,
        files=Unknown("the walk failed") if w.files is None else Items(w.files, Provenance(partition="root")),
        rootfs=RootFs(
            format=Unknown("no magic") if w.fmt is None else w.fmt,
            read_only=Unknown("not said") if w.read_only is None else w.read_only,
        ),
        verity=unknown,
        cmdline=unknown,
        boot=unknown,
        kernel=unknown,
        patches=unknown,
        mounts=unknown,
        partitions=unknown,
    )


EXPECTED = {True: Status.PASS, False: Status.FAIL, None: Status.UNKNOWN}
POLICY_DIR = Path(tempfile.mkdtemp(prefix="cvmlint-semantics-"))


def verdict(expression: str, facts: Facts) -> Any:
    path = POLICY_DIR / "p.cvmp"
    path.write_text(f'policy "t" version "1"\nrule R-1 "generated" {{\n  severity high\n  require {expression}\n}}\n')
    return evaluate(load_policy(path), facts).results[0]


def quantifiers() -> st.SearchStrategy[tuple]:  # type: ignore[type-arg]
    """A quantifier at the top, with a filter: the corner where an unknown filter must not be dropped."""
    leaf, inner = expressions(("f",), 0), expressions(("f",), 1)
    return st.tuples(st.just("q"), st.sampled_from(["all", "any", "none"]), st.just("f"), leaf | inner, inner)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions((), 3), worlds())
def test_the_evaluator_agrees_with_the_reference(e: tuple, w: World) -> None:  # type: ignore[type-arg]
    check_against_reference(e, w)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quantifiers(), worlds())
def test_quantifiers_agree_with_the_reference(e: tuple, w: World) -> None:  # type: ignore[type-arg]
    check_against_reference(e, w)


def check_against_reference(e: tuple, w: World) -> None:  # type: ignore[type-arg]
    result = verdict(text(e), facts_of(w))
    assert result.status is EXPECTED[ref(e, w, {})], (text(e), result.reasons, result.findings)
    if result.status is Status.UNKNOWN:
        assert result.reasons  # an unknown always says why


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["all", "none"]), expressions(("f",), 2), worlds())
def test_a_failing_quantifier_reports_exactly_its_offending_items(kind: str, body: tuple, w: World) -> None:  # type: ignore[type-arg]
    """`all` fails on the items whose body is false, `none` on those where it is true: one finding each."""
    result = verdict(f'{kind} f in files: {text(body)} else "offending {{f.path}}"', facts_of(w))
    if result.status is not Status.FAIL:
        return
    offending = sorted(f.path for f in w.files or () if ref(body, w, {"f": f}) is (kind == "none"))
    assert sorted(f.message.removeprefix("offending ") for f in result.findings) == offending
    assert all(f.subject in offending or f.subject in {g.path for g in w.files or ()} for f in result.findings)
