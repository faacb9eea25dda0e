"""Where a fact came from, and what a fact is when it could not be established."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Provenance:
    """The place a fact was read from: a recipe `file:line`, or an image partition, path and offset."""

    file: str | None = None
    """Recipe file (as given on the command line), or the path inside an image file system."""
    line: int | None = None
    """1-based line in `file`, when the fact comes from a text line."""
    partition: str | None = None
    """Image partition the fact was read from (`esp`, `root`, `root-verity`, …)."""
    offset: int | None = None
    """Byte offset of what was read, from the start of the image."""
    sha256: str | None = None
    """SHA-256 of the bytes the fact was read from."""
    detail: str | None = None
    """Anything else that pins the place down, e.g. `block 1234`."""

    def __str__(self) -> str:
        text = ""
        if self.partition:
            text = f"{self.partition}:{self.file}" if self.file else self.partition
        elif self.file:
            text = self.file
        if self.line is not None and text:
            text += f":{self.line}"
        if self.detail:
            text += f" {self.detail}" if self.partition and self.file else f": {self.detail}" if text else self.detail
        if self.offset is not None and not self.file:
            text += f" @ byte {self.offset}"
        return text or "(unknown location)"


@dataclass(frozen=True, slots=True)
class Unknown:
    """A fact that could not be established, and why. Never a pass."""

    reason: str
    """Why the fact is unknown, e.g. `no package database in image`."""
    where: Provenance | None = None
    """Where cvmlint looked, if anywhere."""

    def __bool__(self) -> bool:
        raise TypeError(f"an unknown fact has no truth value ({self.reason}); use three-valued logic")

    def __str__(self) -> str:
        return f"unknown ({self.reason})"


INDEX_LIMIT = 60_000
"""Collections larger than this are walked, not indexed (an index holds every item)."""


class Items(Generic[T]):
    """An ordered collection of fact records with the provenance of the collection itself.

    Either holds its items, or re-reads them from `factory` at every iteration, so a root
    tree of 100k files never sits in memory as a whole.
    """

    __slots__ = ("_columns", "_factory", "_held", "_indexes", "_items", "_too_large", "where")

    def __init__(
        self,
        items: Iterable[T] = (),
        where: Provenance | None = None,
        *,
        factory: Callable[[], Iterator[T]] | None = None,
    ) -> None:
        self._items: tuple[T, ...] | None = None if factory else tuple(items)
        self._factory = factory
        self.where = where
        self._held: list[T] | None = None
        self._too_large = False
        self._columns: dict[str, list[object] | None] = {}
        self._indexes: dict[str, dict[object, list[int]]] = {}

    def __iter__(self) -> Iterator[T]:
        if self._factory is not None:
            return self._factory()
        assert self._items is not None
        return iter(self._items)

    def positions(self, field: str, accept: Accept, within: set[int] | None = None) -> set[int] | None:
        """The positions of the items whose `field` is one of the values `accept` holds (or admits, when it
        is a test of one value), among `within` when given, through the field's column and an index of it
        built on first use. A test is made once per distinct value, and only on the values at `within`
        when those are few.

        None when the field cannot be looked up: a value is unknown (a comparison with it is undecided, so
        no item may be left out) or unhashable, or the collection has more than INDEX_LIMIT items."""
        values = self.column(field)
        if values is None:
            return None
        if within is not None and not isinstance(accept, frozenset) and len(within) * 4 < len(values):
            verdicts: dict[object, bool] = {}
            return {p for p in within if _admits(verdicts, accept, values[p])}
        index = self._indexes.get(field)
        if index is None:
            index = self._indexes[field] = {}
            for position, value in enumerate(values):
                index.setdefault(value, []).append(position)
        keys = [v for v in accept if v in index] if isinstance(accept, frozenset) else [k for k in index if accept(k)]
        found = {p for k in keys for p in index[k]}
        return found if within is None else found & within

    def take(self, positions: Iterable[int]) -> list[T]:
        """The items at these positions (from `positions`), in order."""
        held = self._hold()
        assert held is not None
        return [held[p] for p in sorted(positions)]

    def column(self, field: str) -> list[object] | None:
        """Every item's `field`, in order; None when one is unknown or not a plain value, when the field
        is computed on first use (an ImageFile's ELF fields read the file: not worth a walk), or when the
        collection is too large to hold."""
        if field not in self._columns:
            held = self._hold()
            values: list[object] | None = None
            if held is not None and not (held and isinstance(getattr(type(held[0]), field, None), property)):
                values = [getattr(item, field, None) for item in held]
                if any(isinstance(v, Unknown) or not isinstance(v, str | int) for v in values):
                    values = None
            self._columns[field] = values
        return self._columns[field]

    def _hold(self) -> list[T] | None:
        if self._held is None and not self._too_large:
            held: list[T] = []
            for item in self:
                held.append(item)
                if len(held) > INDEX_LIMIT:
                    self._too_large = True
                    return None
            self._held = held
        return self._held

    @property
    def lazy(self) -> bool:
        """True when items are produced on demand rather than held."""
        return self._factory is not None

    def __repr__(self) -> str:
        inner = "lazy" if self._factory else f"{len(self._items or ())} items"
        return f"Items({inner}, where={self.where})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Items):
            return NotImplemented
        return tuple(self) == tuple(other) and self.where == other.where

    __hash__ = None  # type: ignore[assignment]  # NOTE: lazy collections are not hashable values


Accept = frozenset[object] | Callable[[object], bool]
"""The values of a field a condition admits: a set to look up, or a test of one value."""


def _admits(verdicts: dict[object, bool], accept: Callable[[object], bool], value: object) -> bool:
    found = verdicts.get(value)
    if found is None:
        found = verdicts[value] = accept(value)
    return found
