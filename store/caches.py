"""Per-filter results kept between requests of one panel process, brought up to date cheaply.

Rows are only ever appended to audit_log, with growing ids, and never deleted. So what was
counted over the rows up to some id never changes, and a cached result is brought up to
date by reading only the rows added since: a short index range instead of every match.

A result is kept under its filter and whether seal lines were left out of it
(``CacheKey``): the same fields counted with and without them are different results.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, NamedTuple, TypeVar

from .sql import leaves_out_seals
from .values import Filter

__all__ = [
    "CacheKey",
    "CachedCount",
    "CachedHistogram",
    "CountCache",
    "FilterCache",
    "HistogramCache",
]

T = TypeVar("T")


class CacheKey(NamedTuple):
    """What a cached result counts: the rows of ``filter``, with or without the seal lines."""

    filter: Filter
    without_seals: bool

    @classmethod
    def of(cls, flt: Filter) -> CacheKey:
        return cls(flt, leaves_out_seals(flt))


class FilterCache(Generic[T]):
    """A small thread-safe LRU of per-filter results."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[CacheKey, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, flt: Filter) -> T | None:
        key = CacheKey.of(flt)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def put(self, flt: Filter, value: T) -> None:
        key = CacheKey.of(flt)
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


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
