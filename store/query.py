"""The panel's reads of audit.db: filtered, keyset-paginated pages, counts, a histogram,
facets (``facets``), and one event with its neighbours and its seal.

Every page is newest first (``ORDER BY id DESC``) and continues from a cursor, the row
id of the last entry seen (``before``); nothing here uses OFFSET, so page 10,000 costs
what page 1 costs. The SQL comes from ``sql``; the unfiltered total comes from the
``indexed`` counter instead of counting the table.

Seal lines are left out unless the filter's action asks for them (``sql.leaves_out_seals``);
only a filter without an action has any among its rows (``sql.has_seals_to_leave_out``).
A count or histogram without them is the count of every matching row less the seal lines'
share: both are covering-index scans (the seal lines through the action index), where a
condition on the action would read every matching row from the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from .caches import CachedCount, CachedHistogram, CountCache, FacetCache, HistogramCache
from .calendar import UNIT_WIDTH, bucket_labels, coarsen, label_time, parse_ts, unit_for
from .facets import Facet, count_facet, count_facets
from .schema import SCHEMA_VERSION, connect, schema_version
from .sql import (
    ENTRY_COLUMNS,
    FUNCTIONS,
    Branch,
    Statement,
    branches,
    bucket_sql,
    count_sql,
    has_seals_to_leave_out,
    page_sql,
    seal_action,
    seal_lines_of,
)
from .values import Entry, Filter, Histogram

__all__ = ["AuditQuery"]

_COLUMNS = ", ".join(ENTRY_COLUMNS)


class AuditQuery:
    """Queries over one connection to audit.db (read-only when opened with ``open``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        for name, (arguments, function) in FUNCTIONS.items():
            conn.create_function(name, arguments, function, deterministic=True)
        # A facet's GROUP BY sorts its rows in a temporary b-tree: in memory, not a temp file.
        conn.execute("PRAGMA temp_store=MEMORY")

    @classmethod
    def open(cls, path: str | Path) -> AuditQuery:
        """Open audit.db read-only; FileNotFoundError when the indexer has not created it yet.

        A file without the tables yet (empty, or the first migration not committed), or at
        an older schema the indexer has not migrated yet, counts as not created: the queries
        would fail on it. A file that is not a database at all raises sqlite3.DatabaseError.
        """
        if not Path(path).exists():
            raise FileNotFoundError(f"no audit database at {path}: start the indexer first")
        conn = connect(path, readonly=True)
        try:
            version = schema_version(conn)
        except BaseException:
            conn.close()
            raise
        if version < SCHEMA_VERSION:
            conn.close()
            what = "created" if version == 0 else f"migrated from schema version {version}"
            raise FileNotFoundError(f"the audit database at {path} is being {what} by the indexer")
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    # -- pages -------------------------------------------------------------------------

    def page(
        self,
        flt: Filter,
        before: int | None = None,
        limit: int = 100,
        through: int | None = None,
    ) -> list[Entry]:
        """Return up to ``limit`` matching entries with row id below ``before``, newest first.

        ``through``, when given, is the lowest row id to return.
        """
        sql, params = self._page_sql(flt, before, limit, through=through)
        return [Entry(*row) for row in self.conn.execute(sql, params)]

    def newest(self, flt: Filter) -> Entry | None:
        """The newest matching entry, or None."""
        found = self.page(flt, None, 1)
        return found[0] if found else None

    def oldest(self, flt: Filter) -> Entry | None:
        """The oldest matching entry (the lowest row id), or None."""
        sql, params = self._page_sql(flt, None, 1, ascending=True)
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else Entry(*row)

    def iter_all(self, flt: Filter, batch: int = 1000) -> Iterator[Entry]:
        """Yield every matching entry, newest first, in keyset batches (each its own short read)."""
        before: int | None = None
        while True:
            rows = self.page(flt, before, batch)
            yield from rows
            if len(rows) < batch:
                return
            before = rows[-1].row_id

    # -- one event ---------------------------------------------------------------------

    def event(self, event_id: str) -> Entry | None:
        """The entry of an event id (a look-up in the unique index), or None."""
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE event_id = ?",  # noqa: S608
            (event_id,),
        ).fetchone()
        return None if row is None else Entry(*row)

    def around(self, row_id: int, count: int = 10) -> tuple[list[Entry], list[Entry]]:
        """The ``count`` rows before ``row_id`` and the ``count`` after it, each newest first.

        Over the whole table, seal lines left out: the events next to one, as they came.
        """
        seal = seal_action()
        older = self.conn.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE id < ? AND action != ? "  # noqa: S608
            "ORDER BY id DESC LIMIT ?",
            (row_id, seal, count),
        ).fetchall()
        newer = self.conn.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE id > ? AND action != ? "  # noqa: S608
            "ORDER BY id ASC LIMIT ?",
            (row_id, seal, count),
        ).fetchall()
        return [Entry(*row) for row in older], [Entry(*row) for row in reversed(newer)]

    def covering_seal(self, entry: Entry) -> Entry | None:
        """The seal line that vouches for ``entry``: the first of its source after its row
        whose ``last_seq`` reaches the entry's seq; None while none does (or without a seq)."""
        if entry.seq is None:
            return None
        # The (action, id) index walks the seal lines after the row, oldest first; the first
        # of the source's usually covers it (it seals every line before itself).
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM audit_log WHERE action = ? AND id > ? "  # noqa: S608
            "AND source = ? AND json_valid(details) "
            "AND json_extract(details, '$.last_seq') >= ? ORDER BY id LIMIT 1",
            (seal_action(), entry.row_id, entry.source, entry.seq),
        ).fetchone()
        return None if row is None else Entry(*row)

    # -- counts ------------------------------------------------------------------------

    def count(self, flt: Filter, cache: CountCache | None = None) -> int:
        """Count the matching entries; the unfiltered total is the indexer's counter.

        With a ``cache``, a filter counted before costs only the rows added since.
        """
        if flt.is_empty():
            # The counter and the seal lines as of one commit of the indexer.
            with self._snapshot():
                return self.indexed_total() - self.count(seal_lines_of(flt), cache)
        if cache is None:
            return self._count(flt, None, None)
        top = self._top()
        if top is None:
            return 0
        hit = cache.get(flt)
        if hit is not None and hit.upto <= top:
            total = hit.total
            if hit.upto < top:
                total += self._count(flt, hit.upto, top + 1)
        else:
            total = self._count(flt, None, top + 1)
        cache.put(flt, CachedCount(top, total))
        return total

    def indexed_total(self) -> int:
        row = self.conn.execute("SELECT value FROM indexer_state WHERE name = 'indexed'").fetchone()
        return int(row[0]) if row else 0

    def actions_seen(self) -> list[str]:
        """Distinct action keys in the table, by hopping through the action index (no full scan)."""
        return self._distinct("action")

    def sources_seen(self) -> list[str]:
        """Distinct sources of the rows, sorted, by hopping through the (source, id) index."""
        return self._distinct("source")

    def _distinct(self, column: Literal["action", "source"]) -> list[str]:
        """The distinct values of an indexed column, sorted: one index seek per value."""
        sql = f"""
            WITH RECURSIVE seen(value) AS (
                SELECT min({column}) FROM audit_log
                UNION ALL
                SELECT (SELECT min({column}) FROM audit_log WHERE {column} > seen.value)
                FROM seen WHERE seen.value IS NOT NULL
            )
            SELECT value FROM seen WHERE value IS NOT NULL
        """  # noqa: S608 - the column is one of two literals
        return [row[0] for row in self.conn.execute(sql)]

    def explain(self, flt: Filter, before: int | None = None, limit: int = 100) -> list[str]:
        """The query plan of ``page`` (EXPLAIN QUERY PLAN details), for tests and benchmarks."""
        sql, params = self._page_sql(flt, before, limit)
        return [row[3] for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

    # -- facets ------------------------------------------------------------------------

    def facet(
        self,
        flt: Filter,
        field: str,
        *,
        limit: int = 10,
        cache: FacetCache | None = None,
        time_limit: float = 0.5,
    ) -> Facet:
        """The top ``limit`` values of ``field`` (``facets.FACET_FIELDS``) among the rows of
        ``flt``, by count; ``timed_out`` when counting took longer than ``time_limit`` seconds.

        With a ``cache``, a facet counted before costs only the rows added since (see ``facets``).
        """
        return count_facet(self.conn, flt, field, limit=limit, cache=cache, time_limit=time_limit)

    def facets(
        self,
        flt: Filter,
        fields: Sequence[str],
        *,
        limit: int = 10,
        cache: FacetCache | None = None,
        time_limit: float = 0.5,
    ) -> list[Facet]:
        """The facets of ``fields``, in that order, reading the filter's rows once for all
        the fields the cache cannot answer; ``time_limit`` is for them all together."""
        return count_facets(self.conn, flt, fields, limit=limit, cache=cache, time_limit=time_limit)

    # -- chart -------------------------------------------------------------------------

    def histogram(
        self, flt: Filter, max_buckets: int = 120, cache: HistogramCache | None = None
    ) -> Histogram:
        """Count matching events per minute, hour, day or month, whichever fits ``max_buckets``.

        With a ``cache``, a filter drawn before costs only the rows added since: its counts
        up to a row id never change, and a coarser unit is their labels cut shorter.
        """
        top = self._top()
        if top is None:
            return Histogram("day", [])
        hit = cache.get(flt) if cache is not None else None
        if hit is not None and hit.upto <= top:
            unit, counts = hit.unit, dict(hit.counts)
            for label, count in self._bucket_counts(
                flt, UNIT_WIDTH[unit], hit.upto, top + 1
            ).items():
                counts[label] = counts.get(label, 0) + count
        else:
            first, last = self._time_bounds(flt)
            if first is None or last is None:
                return Histogram("day", [])
            unit = unit_for(parse_ts(last) - parse_ts(first), max_buckets)
            counts = self._bucket_counts(flt, UNIT_WIDTH[unit], None, top + 1)
        if not counts:
            return Histogram(unit, [])
        start, end = label_time(min(counts)), label_time(max(counts))
        wanted = unit_for(end - start, max_buckets)
        if UNIT_WIDTH[wanted] < UNIT_WIDTH[unit]:
            unit, counts = wanted, coarsen(counts, UNIT_WIDTH[wanted])
        if cache is not None:
            cache.put(flt, CachedHistogram(top, unit, counts))
        buckets = [(label, counts.get(label, 0)) for label in bucket_labels(start, end, unit)]
        listed = {label for label, _ in buckets}
        if len(listed) != len(counts):  # labels off the grid (odd timestamps): keep them, sorted
            buckets = sorted(buckets + [(k, v) for k, v in counts.items() if k not in listed])
        return Histogram(unit, buckets)

    def _bucket_counts(
        self, flt: Filter, width: int, after: int | None, before: int | None
    ) -> dict[str, int]:
        counts = self._raw_bucket_counts(flt, width, after, before)
        if has_seals_to_leave_out(flt):
            seals = self._raw_bucket_counts(seal_lines_of(flt), width, after, before)
            for label, count in seals.items():
                counts[label] = counts.get(label, 0) - count
            counts = {label: count for label, count in counts.items() if count > 0}
        return counts

    def _raw_bucket_counts(
        self, flt: Filter, width: int, after: int | None, before: int | None
    ) -> dict[str, int]:
        sql, params = bucket_sql(branches(flt, seals=True), width, after, before)
        return {str(label): int(count) for label, count in self.conn.execute(sql, params)}

    def _time_bounds(self, flt: Filter) -> tuple[str | None, str | None]:
        """The timestamps of the oldest and newest matching rows (by id, which follows time)."""
        newest, oldest = self.newest(flt), self.oldest(flt)
        if newest is None or oldest is None:
            return None, None
        return min(oldest.ts, newest.ts), max(oldest.ts, newest.ts)

    # -- running the SQL ---------------------------------------------------------------

    def _top(self) -> int | None:
        """The newest row id, or None in an empty table."""
        top = self.conn.execute("SELECT max(id) FROM audit_log").fetchone()[0]
        return None if top is None else int(top)

    def _count(self, flt: Filter, after: int | None, before: int | None) -> int:
        total = self._raw_count(flt, after, before)
        if has_seals_to_leave_out(flt):
            total -= self._raw_count(seal_lines_of(flt), after, before)
        return total

    def _raw_count(self, flt: Filter, after: int | None, before: int | None) -> int:
        sql, params = count_sql(branches(flt, seals=True), after, before)
        return int(self.conn.execute(sql, params).fetchone()[0])

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Run the statements inside in one read transaction: they see the same commit."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.rollback()  # nothing was written: ending the read is all there is to do

    def _page_sql(
        self,
        flt: Filter,
        before: int | None,
        limit: int,
        ascending: bool = False,
        through: int | None = None,
    ) -> Statement:
        parts: list[Branch] = branches(flt, self._until_bound)
        return page_sql(parts, before, limit, ascending, through)

    def _until_bound(self, until: str) -> int | None:
        """The largest row id with ts < until, when finding it beats scanning back from the newest.

        A page walks row ids downwards; with ``until`` far in the past it would step over
        every newer row first. The bound is exact (the max over the ts index range, no
        assumption that ids follow time), so it costs a covering-index scan of the rows
        before ``until``: worth it only when those are clearly fewer than the rows after.
        """
        top = self._top()
        first_after = self.conn.execute(
            "SELECT id FROM audit_log WHERE ts >= ? ORDER BY ts, id LIMIT 1", (until,)
        ).fetchone()
        if top is None or first_after is None:
            return None  # every row is before `until`: nothing to skip
        # Measured on a million rows: an index entry costs about 1.2 times a row stepped
        # over, so the bound pays off when the rows before `until` are the smaller part.
        if (top - first_after[0]) * 5 <= first_after[0] * 6:
            return None
        # `+id` keeps SQLite from answering max(id) by walking row ids down from the newest,
        # which is the very scan this avoids; it reads the (ts, id) index range instead.
        bound = self.conn.execute(
            "SELECT max(+id) FROM audit_log WHERE ts < ?", (until,)
        ).fetchone()[0]
        return int(bound) if bound is not None else 0
