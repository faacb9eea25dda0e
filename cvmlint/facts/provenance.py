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

    __slots__ = ("_factory", "_held", "_indexes", "_items", "where")

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
        self._indexes: dict[str, dict[object, list[int]] | None] = {}

    def __iter__(self) -> Iterator[T]:
        if self._factory is not None:
            return self._factory()
        assert self._items is not None
        return iter(self._items)

    def positions(self, field: str, accept: frozenset[object] | Callable[[object], bool]) -> set[int] | None:
        """The positions of the items whose `field` is one of the values `accept` holds (or admits, when it
        is a test of one value), through an index built on first use.

        None when the field cannot be indexed: a value is unknown (a comparison with it is undecided, so no
        item may be left out) or unhashable, or the collection has more than INDEX_LIMIT items."""
        if field not in self._indexes:
            self._indexes[field] = self._index(field)
        index = self._indexes[field]
        if index is None or self._held is None:
            return None
        return admitted(index, accept)

    def take(self, positions: Iterable[int]) -> list[T]:
        """The items at these positions (from `positions`), in order."""
        assert self._held is not None
        return [self._held[p] for p in sorted(positions)]

    def _index(self, field: str) -> dict[object, list[int]] | None:
        if self._held is None:
            if self._indexes:  # an earlier attempt found the collection too large
                return None
            held: list[T] = []
            for item in self:
                held.append(item)
                if len(held) > INDEX_LIMIT:
                    return None
            self._held = held
        if self._held and isinstance(getattr(type(self._held[0]), field, None), property):
            return None  # computed on first use (an ImageFile's ELF fields read the file): not worth a walk
        index: dict[object, list[int]] = {}
        for position, item in enumerate(self._held):
            value = getattr(item, field, None)
            if isinstance(value, Unknown) or not isinstance(value, str | int):
                return None
            index.setdefault(value, []).append(position)
        return index

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


def admitted(index: dict[object, list[int]], accept: frozenset[object] | Callable[[object], bool]) -> set[int]:
    keys = [v for v in accept if v in index] if isinstance(accept, frozenset) else [k for k in index if accept(k)]
    return {p for k in keys for p in index[k]}
