"""Facets: the most frequent users, IPs, actions and resources among a filter's rows.

A facet reads the value of every row the filter matches (its branches, as a page has them)
and counts them in a ``Counter``, then takes the top values by count. A ``GROUP BY`` did the
same no faster (190 against 150 ms for 100,000 rows of a million, measured) but sorts every
row in one step of SQLite's virtual machine, which no time limit can interrupt: it ran 2.2 s
past a limit of 0.5 s over a million rows. Reading it is interrupted by a progress handler on
the connection, and counting checks the clock between batches of rows; the facet then says
it timed out rather than keep a panel worker busy.

A cached facet (``caches.FacetCache``) keeps ``KEEP_PER_VALUE_ASKED`` times as many values as
asked, their exact counts over the rows up to a row id, and ``floor``: no value left out has
more rows. Rows are only appended, so bringing it up to date counts the values of the new
rows alone and adds them. The result is exact when every value was kept (``complete``), or
when the last value listed still has more rows than any value left out could have now (its
floor plus its new rows); otherwise the facet is counted again from scratch.
"""

from __future__ import annotations

import heapq
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from .caches import CachedFacet, FacetCache
from .sql import Branch, branches, facet_sql
from .values import Filter

__all__ = [
    "FACET_FIELDS",
    "Facet",
    "FacetValue",
    "brought_up_to_date",
    "count_facet",
    "count_facets",
    "count_up_to",
]

FACET_FIELDS = ("user", "ip", "action", "resource")
# The value each field's facet lists: for users one the ``user`` filter matches. The IP is
# `+a.ip` so that its `IS NOT NULL` is no index range: SQLite walked the whole (ip, id) index
# for it, reading every row of the table (600 ms instead of 50 for the 8,000 rows of an
# action among 100,000, measured).
_VALUES = {
    "user": "CAST(coalesce(a.username, a.email, a.user_id) AS TEXT)",
    "ip": "CAST(+a.ip AS TEXT)",
    "action": "CAST(a.action AS TEXT)",
    "resource": "CAST(a.resource AS TEXT)",
}
# A cached facet keeps this many times the values asked for, so that new rows rarely lift a
# value from beyond them into the list (which would mean counting again).
KEEP_PER_VALUE_ASKED = 5
# SQLite calls the progress handler every this many virtual machine steps (about a
# millisecond of reading rows), and the clock is checked after counting each batch of rows:
# the time limit is kept to within a few milliseconds.
PROGRESS_STEPS = 10_000
_BATCH = 10_000


class FacetValue(NamedTuple):
    """A value and how many of the rows have it."""

    value: str
    # The name hides tuple.count, which nothing calls on a FacetValue.
    count: int  # type: ignore[assignment]


@dataclass(frozen=True)
class Facet:
    """The top values of a field among a filter's rows, most rows first, then by value."""

    field: str
    values: list[FacetValue]  # NULL values never listed
    timed_out: bool  # the count hit the time limit (values then empty)
    distinct_more: bool  # more distinct values exist than listed


class _TimedOut(Exception):
    pass


def count_facet(
    conn: sqlite3.Connection,
    flt: Filter,
    field: str,
    *,
    limit: int,
    cache: FacetCache | None,
    time_limit: float,
) -> Facet:
    """The top ``limit`` values of ``field`` among the rows of ``flt`` (see the module)."""
    (facet,) = count_facets(conn, flt, (field,), limit=limit, cache=cache, time_limit=time_limit)
    return facet


def count_facets(
    conn: sqlite3.Connection,
    flt: Filter,
    fields: Sequence[str],
    *,
    limit: int,
    cache: FacetCache | None,
    time_limit: float,
) -> list[Facet]:
    """The facets of several fields, with one read of the filter's rows for all of them.

    A facet's cost is reading the rows; counting their values is a small part of it, so the
    fields the cache cannot answer are counted together, in one pass over the rows: the four
    facets of the Audit page cost about what one does. ``time_limit`` is for the whole.
    """
    for field in fields:
        if field not in _VALUES:
            raise ValueError(f"no facet of {field!r}: one of {', '.join(FACET_FIELDS)}")
    if limit < 1:
        raise ValueError("a facet lists at least one value")
    parts = branches(flt)
    counted: dict[str, CachedFacet] = {}
    try:
        with _time_limit(conn, time_limit) as deadline:
            top = conn.execute("SELECT max(id) FROM audit_log").fetchone()[0]
            if top is None:
                return [Facet(field, [], timed_out=False, distinct_more=False) for field in fields]
            again = list(fields)
            for field in list(again):
                hit = cache.get(flt, field) if cache is not None else None
                if hit is None or hit.upto > top:
                    continue
                added = (
                    _Counting(conn, parts, (field,), deadline).counts(hit.upto, top + 1)[0]
                    if hit.upto < top
                    else Counter()
                )
                updated = brought_up_to_date(hit, added, int(top), limit)
                if updated is not None:
                    counted[field] = updated
                    again.remove(field)
            if again:
                counts = _Counting(conn, parts, again, deadline).counts(None, top + 1)
                for field, values in zip(again, counts, strict=True):
                    counted[field] = _top_values(values, limit * KEEP_PER_VALUE_ASKED, int(top))
    except _TimedOut:
        pass  # the fields counted in time are listed; the others say they timed out
    timed_out = {field for field in fields if field not in counted}
    facets = []
    for field in fields:
        if field in timed_out:
            facets.append(Facet(field, [], timed_out=True, distinct_more=False))
            continue
        result = counted[field]
        if cache is not None:
            cache.put(flt, field, result)
        listed = [FacetValue(value, count) for value, count in result.values[:limit]]
        more = len(result.values) > limit or not result.complete
        facets.append(Facet(field, listed, timed_out=False, distinct_more=more))
    return facets


class _Counting:
    """Counts of the values of some fields among the filter's rows in a range of row ids."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        parts: list[Branch],
        fields: Sequence[str],
        deadline: float,
    ) -> None:
        self.conn = conn
        self.parts = parts
        self.values = [_VALUES[field] for field in fields]
        self.deadline = deadline

    def counts(self, after: int | None, before: int) -> list[Counter[str]]:
        """One Counter per field, of the rows with ``after`` < id < ``before``; NULL left out."""
        sql, params = facet_sql(self.parts, self.values, after, before)
        cursor = self.conn.execute(sql, params)
        counts: list[Counter[str]] = [Counter() for _ in self.values]
        while rows := cursor.fetchmany(_BATCH):
            for column, counter in zip(zip(*rows, strict=True), counts, strict=True):
                counter.update(column)
            if time.monotonic() > self.deadline:
                raise _TimedOut
        for counter in counts:
            counter.pop(None, None)  # type: ignore[call-overload]
        return counts


def count_up_to(
    conn: sqlite3.Connection, flt: Filter, field: str, *, limit: int, upto: int
) -> CachedFacet:
    """The facet as a cache keeps it, counted over the rows up to row id ``upto`` (no time
    limit): for a cache filled as if the rows after ``upto`` came later (benchmarks, tests)."""
    counter = _Counting(conn, branches(flt), (field,), float("inf"))
    return _top_values(counter.counts(None, upto + 1)[0], limit * KEEP_PER_VALUE_ASKED, upto)


def _top_values(counts: Counter[str], keep: int, top: int) -> CachedFacet:
    """The ``keep`` most frequent values (most first, then by value), and the floor."""
    if len(counts) <= keep:
        ranked = sorted(counts.items(), key=_rank)
        return CachedFacet(top, ranked, 0, complete=True, exact=len(ranked))
    # Without sorting every value (most have a row or two): the count of the value just
    # beyond the kept ones, the values above it, and the first by value of those at it.
    floor = heapq.nlargest(keep + 1, counts.values())[-1]
    above = sorted(((v, n) for v, n in counts.items() if n > floor), key=_rank)
    at = heapq.nsmallest(keep - len(above), (v for v, n in counts.items() if n == floor))
    # Counted just now: the kept values are the true top ones, ties ordered by value.
    return CachedFacet(top, above + [(v, floor) for v in at], floor, complete=False, exact=keep)


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def brought_up_to_date(
    hit: CachedFacet, added: Mapping[str, int], top: int, limit: int
) -> CachedFacet | None:
    """``hit`` with the counts of the rows added since (``added``), or None when its top
    ``limit`` values may no longer be the true ones (then count again)."""
    if not added:
        return hit._replace(upto=top) if limit <= hit.exact or hit.complete else None
    counts = dict(hit.values)
    beyond = 0  # the most new rows of a value left out
    for value, count in added.items():
        if value in counts:
            counts[value] += count
        elif hit.complete:
            counts[value] = count  # every value was kept: one left out had no row before
        else:
            beyond = max(beyond, count)
    ranked = sorted(counts.items(), key=_rank)
    if hit.complete:
        floor, exact = 0, len(ranked)
    else:
        # A value left out has at most `floor` rows now: the kept values with more are the
        # true top ones (with as many, one left out could come first by its value).
        floor = hit.floor + beyond
        exact = next((n for n, (_, count) in enumerate(ranked) if count <= floor), len(ranked))
        if exact < limit:
            return None
    complete = hit.complete
    keep = max(len(hit.values), limit * KEEP_PER_VALUE_ASKED)
    if len(ranked) > keep:
        floor, complete, ranked = max(floor, ranked[keep][1]), False, ranked[:keep]
        exact = min(exact, keep)
    return CachedFacet(top, ranked, floor, complete, exact)


@contextmanager
def _time_limit(conn: sqlite3.Connection, seconds: float) -> Iterator[float]:
    """Interrupt the statements inside after ``seconds`` (raising _TimedOut); the deadline."""
    deadline = time.monotonic() + seconds
    conn.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
    try:
        yield deadline
    except sqlite3.OperationalError as error:
        if "interrupted" in str(error) and time.monotonic() > deadline:
            raise _TimedOut from None
        raise
    finally:
        conn.set_progress_handler(None, PROGRESS_STEPS)
