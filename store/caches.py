"""Per-filter results kept between requests of one panel process, brought up to date cheaply.

Rows are only ever appended to audit_log, with growing ids, and never deleted. So what was
counted over the rows up to some id never changes, and a cached result is brought up to
date by reading only the rows added since: a short index range instead of every match.

A result is kept under its filter and whether seal lines were left out of it
(``CacheKey``): the same fields counted with and without them are different results. Facets
are kept per filter and field (``FacetKey``), and hold only the most frequent values: see
``facets`` for how they stay exact.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, NamedTuple, TypeVar

from .sql import leaves_out_seals
from .values import Filter

__all__ = [
    "CacheKey",
    "CachedCount",
    "CachedFacet",
    "CachedHistogram",
    "CountCache",
    "FacetCache",
    "FacetKey",
    "FilterCache",
    "HistogramCache",
]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class CacheKey(NamedTuple):
    """What a cached result counts: the rows of ``filter``, with or without the seal lines."""

    filter: Filter
    without_seals: bool

    @classmethod
    def of(cls, flt: Filter) -> CacheKey:
        return cls(flt, leaves_out_seals(flt))


class FacetKey(NamedTuple):
    """What a cached facet counts: a field's values among the rows of a ``CacheKey``."""

    rows: CacheKey
    field: str


class _LruCache(Generic[K, T]):
    """A small thread-safe LRU."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[K, T] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: K) -> T | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def _put(self, key: K, value: T) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class FilterCache(_LruCache[CacheKey, T]):
    """A small thread-safe LRU of per-filter results."""

    def get(self, flt: Filter) -> T | None:
        return self._get(CacheKey.of(flt))

    def put(self, flt: Filter, value: T) -> None:
        self._put(CacheKey.of(flt), value)


class CachedCount(NamedTuple):
    """How many rows with id <= ``upto`` match a filter (``total``)."""

    upto: int
    total: int


class CachedHistogram(NamedTuple):
    """A filter's rows with id <= ``upto``, counted per bucket of ``unit`` (label -> count)."""

    upto: int
    unit: str
    counts: dict[str, int]


class CountCache(FilterCache[CachedCount]):
    """The count of each filter's matching rows up to a row id."""


class HistogramCache(FilterCache[CachedHistogram]):
    """The histogram counts of each filter's matching rows up to a row id."""


class CachedFacet(NamedTuple):
    """The most frequent values of a field among a filter's rows with id <= ``upto``.

    ``values`` holds the top ones with their exact counts, most first then by value; every
    value left out has at most ``floor`` rows (0 when none was left out: ``complete``). The
    first ``exact`` of them are the true top ones in their true order.
    """

    upto: int
    values: list[tuple[str, int]]
    floor: int
    complete: bool
    exact: int


class FacetCache(_LruCache[FacetKey, CachedFacet]):
    """The top values of each filter's field up to a row id."""

    def get(self, flt: Filter, field: str) -> CachedFacet | None:
        return self._get(FacetKey(CacheKey.of(flt), field))

    def put(self, flt: Filter, field: str, value: CachedFacet) -> None:
        self._put(FacetKey(CacheKey.of(flt), field), value)
