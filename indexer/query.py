"""The read side of the audit database: filtered, keyset-paginated queries for the panel.

Every page is newest first (``ORDER BY id DESC``) and continues from a cursor, the row
id of the last entry seen (``before``); nothing here uses OFFSET, so page 10,000 costs
what page 1 costs. Each filter maps onto an index that ends in ``id`` (see
``indexer.schema``), which makes a filtered page a range scan in id order, and the
unfiltered total comes from the ``indexed`` counter instead of counting the table.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from .schema import connect, schema_version

__all__ = [
    "AuditQuery",
    "CountCache",
    "Entry",
    "Filter",
    "FilterCache",
    "Histogram",
    "HistogramCache",
    "fts_query",
]

_COLUMNS = (
    "id",
    "event_id",
    "seq",
    "ts",
    "action",
    "user_id",
    "username",
    "email",
    "resource",
    "ip",
    "details",
)
_INT64_MAX = 2**63 - 1
# A NUL ends an FTS5 string literal early ("unterminated string"), so it separates words too.
_TOKEN = re.compile(r"[^\s\x00]+")
T = TypeVar("T")


@dataclass(frozen=True)
class Filter:
    """What the admin asked for; every field is optional and they combine with AND.

    ``user`` matches a username, an email or (when it is a whole number) a user id.
    ``since`` and ``until`` are timestamps in the stored form (``2026-11-26T13:22:49.123456Z``);
    ``since`` is inclusive, ``until`` exclusive. ``q`` is free text for the full-text index:
    its words are quoted, so it is never FTS syntax (a trailing ``*`` keeps a prefix search).
    """

    action: str | None = None
    user: str | None = None
    ip: str | None = None
    q: str | None = None
    since: str | None = None
    until: str | None = None

    def is_empty(self) -> bool:
        return not any(asdict(self).values())

    def as_dict(self) -> dict[str, str]:
        """The fields that are set, for URLs and for the details of ``audit.export``."""
        return {key: value for key, value in asdict(self).items() if value}


@dataclass(frozen=True)
class Entry:
    """One row of audit_log; ``row_id`` is the cursor, ``event_id`` the event's identity."""

    row_id: int
    event_id: str
    seq: int | None
    ts: str
    action: str
    user_id: int | None
    username: str | None
    email: str | None
    resource: str | None
    ip: str | None
    details: str | None

    @property
    def has_user(self) -> bool:
        return self.user_id is not None or self.username is not None or self.email is not None


@dataclass(frozen=True)
class Histogram:
    """Counts of matching events per time bucket, oldest first, empty buckets included."""

    unit: str  # "minute", "hour", "day" or "month"
    buckets: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.buckets)


def fts_query(text: str) -> str | None:
    """Turn free text into an FTS5 query that can never be a syntax error.

    Each whitespace-separated word becomes a quoted string (inner quotes doubled), so
    operators, column filters and parentheses are just text; the words combine with AND.
    A word ending in ``*`` stays a prefix search. Returns None when there is no word.
    """
    parts = []
    for word in _TOKEN.findall(text):
        prefix = word.endswith("*") and len(word.rstrip("*")) > 0
        word = word.rstrip("*") if prefix else word
        quoted = '"' + word.replace('"', '""') + '"'
        parts.append(quoted + "*" if prefix else quoted)
    return " ".join(parts) if parts else None


class FilterCache(Generic[T]):
    """A small thread-safe LRU of per-filter results, kept between requests of one process."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[Filter, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, flt: Filter) -> T | None:
        with self._lock:
            hit = self._entries.get(flt)
            if hit is not None:
                self._entries.move_to_end(flt)
            return hit

    def put(self, flt: Filter, value: T) -> None:
        with self._lock:
            self._entries[flt] = value
            self._entries.move_to_end(flt)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class CountCache(FilterCache[tuple[int, int]]):
    """(upto, count) per filter: the count of matching rows with id <= upto.

    That count never changes: rows are only ever appended, with growing ids, and never
    deleted. So a cached count is brought up to date by counting only the rows added
    since, a short index range, instead of every matching row again.
    """


class HistogramCache(FilterCache[tuple[int, str, dict[str, int]]]):
    """(upto, unit, {bucket label: count}) per filter, for rows with id <= upto (see CountCache)."""


class _Branch:
    """One AND-ed set of conditions; a ``user`` filter gives one branch per column it may match."""

    def __init__(self, match: str | None) -> None:
        self.match = match
        self.conditions: list[str] = []
        self.params: list[Any] = []
        if match is not None:
            # Start from the full-text index: FTS5 walks its rowids in descending order
            # itself, so a search page stops after `limit` hits instead of sorting them all;
            # CROSS JOIN keeps it the outer loop when other filters are set too.
            self.source = "audit_log_fts CROSS JOIN audit_log a ON a.id = audit_log_fts.rowid"
            self.id_column = "audit_log_fts.rowid"
            self.conditions.append("audit_log_fts MATCH ?")
            self.params.append(match)
        else:
            self.source = "audit_log a"
            self.id_column = "a.id"

    def copy_with(self, condition: str, param: Any) -> _Branch:
        other = _Branch(None)
        other.match, other.source, other.id_column = self.match, self.source, self.id_column
        other.conditions = [*self.conditions, condition]
        other.params = [*self.params, param]
        return other

    def where(self, before: int | None = None, after: int | None = None) -> tuple[str, list[Any]]:
        conditions, params = list(self.conditions), list(self.params)
        if before is not None:
            conditions.append(f"{self.id_column} < ?")
            params.append(before)
        if after is not None:
            conditions.append(f"{self.id_column} > ?")
            params.append(after)
        return (" WHERE " + " AND ".join(conditions)) if conditions else "", params


class AuditQuery:
    """Queries over one connection to audit.db (read-only when opened with ``open``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: str | Path) -> AuditQuery:
        """Open audit.db read-only; FileNotFoundError when the indexer has not created it yet.

        A file without the tables yet (empty, or the first migration not committed) counts
        as not created: every query would fail on it. A file that is not a database at all
        raises sqlite3.DatabaseError.
        """
        if not Path(path).exists():
            raise FileNotFoundError(f"no audit database at {path}: start the indexer first")
        conn = connect(path, readonly=True)
        try:
            created = schema_version(conn) >= 1
        except BaseException:
            conn.close()
            raise
        if not created:
            conn.close()
            raise FileNotFoundError(f"the audit database at {path} is being created by the indexer")
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    # -- pages -------------------------------------------------------------------------

    def page(self, flt: Filter, before: int | None = None, limit: int = 100) -> list[Entry]:
        """Return up to ``limit`` matching entries with row id below ``before``, newest first."""
        sql, params = self._page_sql(flt, before, limit)
        return [Entry(*row) for row in self.conn.execute(sql, params)]

    def iter_all(self, flt: Filter, batch: int = 1000) -> Iterator[Entry]:
        """Yield every matching entry, newest first, in keyset batches (each its own short read)."""
        before: int | None = None
        while True:
            rows = self.page(flt, before, batch)
            yield from rows
            if len(rows) < batch:
                return
            before = rows[-1].row_id

    def count(self, flt: Filter, cache: CountCache | None = None) -> int:
        """Count the matching entries; the unfiltered total is the indexer's counter.

        With a ``cache``, a filter counted before costs only the rows added since.
        """
        if flt.is_empty():
            return self.indexed_total()
        if cache is None:
            return self._count(flt, None, None)
        top = self.conn.execute("SELECT max(id) FROM audit_log").fetchone()[0]
        if top is None:
            return 0
        hit = cache.get(flt)
        if hit is not None and hit[0] <= top:
            upto, total = hit
            if upto < top:
                total += self._count(flt, upto, top + 1)
        else:
            total = self._count(flt, None, top + 1)
        cache.put(flt, (top, total))
        return total

    def _count(self, flt: Filter, after: int | None, before: int | None) -> int:
        branches = self._branches(flt)
        if len(branches) == 1:
            where, params = branches[0].where(before, after)
            sql = f"SELECT COUNT(*) FROM {branches[0].source}{where}"  # noqa: S608 - fixed fragments, values bound
        else:
            parts, params = self._union_ids(branches, before, None, after)
            sql = f"SELECT COUNT(*) FROM ({parts})"  # noqa: S608
        return int(self.conn.execute(sql, params).fetchone()[0])

    def indexed_total(self) -> int:
        row = self.conn.execute("SELECT value FROM indexer_state WHERE name = 'indexed'").fetchone()
        return int(row[0]) if row else 0

    def actions_seen(self) -> list[str]:
        """Distinct action keys in the table, by hopping through the action index (no full scan)."""
        sql = """
            WITH RECURSIVE seen(action) AS (
                SELECT min(action) FROM audit_log
                UNION ALL
                SELECT (SELECT min(action) FROM audit_log WHERE action > seen.action)
                FROM seen WHERE seen.action IS NOT NULL
            )
            SELECT action FROM seen WHERE action IS NOT NULL
        """
        return [row[0] for row in self.conn.execute(sql)]

    def explain(self, flt: Filter, before: int | None = None, limit: int = 100) -> list[str]:
        """The query plan of ``page`` (EXPLAIN QUERY PLAN details), for tests and benchmarks."""
        sql, params = self._page_sql(flt, before, limit)
        return [row[3] for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

    # -- chart -------------------------------------------------------------------------

    def histogram(
        self, flt: Filter, max_buckets: int = 120, cache: HistogramCache | None = None
    ) -> Histogram:
        """Count matching events per minute, hour, day or month, whichever fits ``max_buckets``.

        With a ``cache``, a filter drawn before costs only the rows added since: its counts
        up to a row id never change, and a coarser unit is their labels cut shorter.
        """
        top = self.conn.execute("SELECT max(id) FROM audit_log").fetchone()[0]
        if top is None:
            return Histogram("day", [])
        hit = cache.get(flt) if cache is not None else None
        if hit is not None and hit[0] <= top:
            upto, unit, counts = hit[0], hit[1], dict(hit[2])
            for label, count in self._bucket_counts(flt, _UNIT_WIDTH[unit], upto, top + 1).items():
                counts[label] = counts.get(label, 0) + count
        else:
            first, last = self._time_bounds(flt)
            if first is None or last is None:
                return Histogram("day", [])
            unit = _unit_for(_parse_ts(last) - _parse_ts(first), max_buckets)
            counts = self._bucket_counts(flt, _UNIT_WIDTH[unit], None, top + 1)
        if not counts:
            return Histogram(unit, [])
        start, end = _label_time(min(counts)), _label_time(max(counts))
        wanted = _unit_for(end - start, max_buckets)
        if _UNIT_WIDTH[wanted] < _UNIT_WIDTH[unit]:
            unit, counts = wanted, _coarsen(counts, _UNIT_WIDTH[wanted])
        if cache is not None:
            cache.put(flt, (top, unit, counts))
        buckets = [(label, counts.get(label, 0)) for label in _bucket_labels(start, end, unit)]
        listed = {label for label, _ in buckets}
        if len(listed) != len(counts):  # labels off the grid (odd timestamps): keep them, sorted
            buckets = sorted(buckets + [(k, v) for k, v in counts.items() if k not in listed])
        return Histogram(unit, buckets)

    def _bucket_counts(
        self, flt: Filter, width: int, after: int | None, before: int | None
    ) -> dict[str, int]:
        branches = self._branches(flt)
        if len(branches) == 1:
            where, params = branches[0].where(before, after)
            sql = (
                f"SELECT substr(a.ts, 1, {width}) AS bucket, COUNT(*) "  # noqa: S608
                f"FROM {branches[0].source}{where} GROUP BY bucket"
            )
        else:
            ids, params = self._union_ids(branches, before, None, after)
            sql = (
                f"SELECT substr(ts, 1, {width}) AS bucket, COUNT(*) FROM audit_log "  # noqa: S608
                f"WHERE id IN ({ids}) GROUP BY bucket"
            )
        return {str(label): int(count) for label, count in self.conn.execute(sql, params)}

    def _time_bounds(self, flt: Filter) -> tuple[str | None, str | None]:
        """The timestamps of the oldest and newest matching rows (by id, which follows time)."""
        newest = self.page(flt, None, 1)
        if not newest:
            return None, None
        sql, params = self._page_sql(flt, None, 1, ascending=True)
        oldest = Entry(*self.conn.execute(sql, params).fetchone())
        return min(oldest.ts, newest[0].ts), max(oldest.ts, newest[0].ts)

    # -- SQL building ------------------------------------------------------------------

    def _branches(self, flt: Filter, page: bool = False) -> list[_Branch]:
        # A search of only spaces is no search.
        base = _Branch(fts_query(flt.q) if flt.q else None)
        for column, value in (("action", flt.action), ("ip", flt.ip)):
            if value is not None:
                base = base.copy_with(f"a.{column} = ?", value)
        if flt.since is not None:
            base = base.copy_with("a.ts >= ?", flt.since)
        if flt.until is not None:
            base = base.copy_with("a.ts < ?", flt.until)
            bound = self._until_bound(flt.until) if page and base.match is None else None
            if bound is not None:
                base = base.copy_with("a.id <= ?", bound)
        if flt.user is None:
            return [base]
        branches = [
            base.copy_with("a.username = ?", flt.user),
            base.copy_with("a.email = ?", flt.user),
        ]
        text = flt.user.strip()
        if re.fullmatch(r"-?\d{1,19}", text) and abs(int(text)) <= _INT64_MAX:
            branches.append(base.copy_with("a.user_id = ?", int(text)))
        return branches

    def _until_bound(self, until: str) -> int | None:
        """The largest row id with ts < until, when finding it beats scanning back from the newest.

        A page walks row ids downwards; with ``until`` far in the past it would step over
        every newer row first. The bound is exact (the max over the ts index range, no
        assumption that ids follow time), so it costs a covering-index scan of the rows
        before ``until``: worth it only when those are clearly fewer than the rows after.
        """
        top = self.conn.execute("SELECT max(id) FROM audit_log").fetchone()[0]
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

    def _union_ids(
        self, branches: list[_Branch], before: int | None, limit: int | None, after: int | None
    ) -> tuple[str, list[Any]]:
        parts, params = [], []
        for branch in branches:
            where, branch_params = branch.where(before, after)
            inner = f"SELECT {branch.id_column} AS id FROM {branch.source}{where}"  # noqa: S608
            if limit is not None:
                # Each branch stops at `limit` rows of its own index range; the union of those
                # holds the newest `limit` rows of the whole OR.
                order = "ASC" if after is not None else "DESC"
                inner = (
                    f"SELECT id FROM ({inner} "  # noqa: S608
                    f"ORDER BY {branch.id_column} {order} LIMIT {int(limit)})"
                )
            parts.append(inner)
            params.extend(branch_params)
        return " UNION ".join(parts), params

    def _page_sql(
        self, flt: Filter, before: int | None, limit: int, ascending: bool = False
    ) -> tuple[str, list[Any]]:
        branches = self._branches(flt, page=True)
        order = "ASC" if ascending else "DESC"
        if len(branches) == 1:
            branch = branches[0]
            where, params = branch.where(before)
            columns = ", ".join("a." + c for c in _COLUMNS)
            sql = (
                f"SELECT {columns} FROM {branch.source}{where} "  # noqa: S608
                f"ORDER BY {branch.id_column} {order} LIMIT ?"
            )
            return sql, [*params, limit]
        ids, params = self._union_ids(branches, before, limit, -1 if ascending else None)
        columns = ", ".join(_COLUMNS)
        sql = (
            f"SELECT {columns} FROM audit_log WHERE id IN ({ids}) "  # noqa: S608
            f"ORDER BY id {order} LIMIT ?"
        )
        return sql, [*params, limit]


_UNIT_WIDTH = {"minute": 16, "hour": 13, "day": 10, "month": 7}
_UNIT_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _unit_for(span: timedelta, max_buckets: int) -> str:
    for unit in ("minute", "hour", "day"):
        if span / _UNIT_STEP[unit] < max_buckets:
            return unit
    return "month"


def _label_time(label: str) -> datetime:
    """The start of a bucket from its label (a timestamp cut to 7, 10, 13 or 16 characters)."""
    if len(label) == 7:
        return datetime.fromisoformat(label + "-01").replace(tzinfo=UTC)
    if len(label) == 13:
        return datetime.fromisoformat(label + ":00").replace(tzinfo=UTC)
    return datetime.fromisoformat(label).replace(tzinfo=UTC)


def _coarsen(counts: dict[str, int], width: int) -> dict[str, int]:
    coarse: dict[str, int] = {}
    for label, count in counts.items():
        coarse[label[:width]] = coarse.get(label[:width], 0) + count
    return coarse


def _parse_ts(ts: str) -> datetime:
    text = ts.rstrip("Z")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)


def _bucket_labels(start: datetime, end: datetime, unit: str) -> list[str]:
    width = _UNIT_WIDTH[unit]
    labels: list[str] = []
    if unit == "month":
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return labels
    step = _UNIT_STEP[unit]
    current = start.replace(second=0, microsecond=0)
    if unit in ("hour", "day"):
        current = current.replace(minute=0)
    if unit == "day":
        current = current.replace(hour=0)
    while current <= end:
        labels.append(current.strftime("%Y-%m-%dT%H:%M:%S")[:width])
        current += step
    return labels
