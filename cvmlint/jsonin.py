"""JSON from input cvmlint does not trust (evidence bundles, build records): parsed with bounds, then
read through typed accessors that name the file and the JSON path of anything malformed.

    doc = load_json(data, "results.json")
    rules = get(doc, "results", list, "results.json")          # results.json: $.results: expected a list …
    status = get(rules[0], "status", str, "results.json", "$.results[0]")

A signed document is still input: a valid signature says who wrote it, not that it is well formed.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from cvmlint.errors import InputError

T = TypeVar("T")
_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true or false"}


def _int(text: str) -> int:
    from cvmlint import limits

    if len(text.lstrip("-")) > limits.get("json-integer-digits"):
        raise ValueError(f"an integer of {len(text)} digits (over the limit json-integer-digits)")
    return int(text)


def load_json(data: bytes, name: str) -> Any:
    """Parse `data`: nesting bounded by the interpreter's recursion limit, integers by json-integer-digits;
    anything else malformed is an InputError naming `name`."""
    try:
        return json.loads(data, parse_int=_int, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(f"{name}: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{name}: not valid JSON: {str(err)[:200]}") from None


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not JSON")


def kind_name(kind: type) -> str:
    return _NAMES.get(kind, kind.__name__)


def expect(value: Any, kind: type[T], name: str, path: str) -> T:
    """`value` when it is a `kind` (a bool is not an int), else an InputError naming the file and path."""
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        found = "null" if value is None else kind_name(type(value))
        raise InputError(f"{name}: {path}: expected {kind_name(kind)}, found {found}")
    checked: T = value
    return checked


def get(obj: Any, key: str, kind: type[T], name: str, path: str = "$", default: Any = ...) -> T:
    """`obj[key]` checked to be a `kind` (see expect); `default` when the key is absent and one is given."""
    expect(obj, dict, name, path)
    if key not in obj:
        if default is not ...:
            return default  # type: ignore[no-any-return]
        raise InputError(f"{name}: {path}.{key}: missing")
    return expect(obj[key], kind, name, f"{path}.{key}")


def items(value: Any, kind: type[T], name: str, path: str) -> list[T]:
    """A list whose every item is a `kind`."""
    return [expect(item, kind, name, f"{path}[{i}]") for i, item in enumerate(expect(value, list, name, path))]
