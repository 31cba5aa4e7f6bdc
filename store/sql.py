"""The SQL of a filter: WHERE clauses and statements for pages, counts and histogram buckets.

Each filter maps onto an index that ends in ``id`` (see ``migrations``), which makes a
filtered page a range scan in id order; the username and email of a ``user`` filter are
looked up in the full-text index, which walks its rowids in order too. A ``user`` filter
may match a name or a user id; an OR over them would defeat those indexes, so it becomes
one *branch* per way, each its own range scan, joined by UNION. Values are always bound
parameters; only fixed fragments of this module are put into the text.

Seal lines (action ``audit.seal``) are rows like any other, but they are the log vouching
for itself, not events anyone did: a filter leaves them out unless its action asks for them
(``leaves_out_seals``). Pages say so in their WHERE clause; counts and histograms take the seal
lines' share off the whole instead (see ``AuditQuery``), which keeps their covering indexes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from .search import column_phrase, fts_query
from .values import Filter

__all__ = [
    "ENTRY_COLUMNS",
    "Branch",
    "Statement",
    "branches",
    "bucket_sql",
    "count_sql",
    "leaves_out_seals",
    "page_sql",
    "seal_action",
    "seal_lines_of",
]

# The columns of audit_log in the order of Entry's fields.
ENTRY_COLUMNS = (
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
    "source",
)
_INT64_MAX = 2**63 - 1


class Statement(NamedTuple):
    """SQL text and the parameters bound to its placeholders."""

    sql: str
    params: list[Any]


class Branch:
    """One AND-ed set of conditions; a ``user`` filter gives one branch per way it may match.

    With a full-text query (``match``) the branch starts from the full-text index: FTS5
    walks its rowids in descending order itself, so a page stops after ``limit`` hits
    instead of sorting them all; CROSS JOIN keeps it the outer loop when other filters are
    set too.
    """

    def __init__(
        self,
        match: str | None = None,
        conditions: Sequence[str] = (),
        params: Sequence[Any] = (),
    ) -> None:
        self.match = match
        self.conditions = list(conditions)
        self.params = list(params)

    @property
    def source(self) -> str:
        if self.match is None:
            return "audit_log a"
        return "audit_log_fts CROSS JOIN audit_log a ON a.id = audit_log_fts.rowid"

    @property
    def id_column(self) -> str:
        return "a.id" if self.match is None else "audit_log_fts.rowid"

    def copy_with(self, condition: str, *params: Any) -> Branch:
        return Branch(self.match, [*self.conditions, condition], [*self.params, *params])

    def searching(self, query: str) -> Branch:
        """A copy that also requires the full-text ``query``."""
        match = query if self.match is None else f"({self.match}) AND ({query})"
        return Branch(match, self.conditions, self.params)

    def where(self, before: int | None = None, after: int | None = None) -> Statement:
        """The WHERE clause (with its leading space, or empty) for rows between the two ids."""
        conditions, params = list(self.conditions), list(self.params)
        if self.match is not None:
            conditions.insert(0, "audit_log_fts MATCH ?")
            params.insert(0, self.match)
        if before is not None:
            conditions.append(f"{self.id_column} < ?")
            params.append(before)
        if after is not None:
            conditions.append(f"{self.id_column} > ?")
            params.append(after)
        return Statement((" WHERE " + " AND ".join(conditions)) if conditions else "", params)


def seal_action() -> str:
    """The action of seal lines (``trek_audit.writer.chain.SEAL_ACTION``)."""
    # Imported on first use: importing the writer package loads its appender and C
    # extension, which a panel worker's read side does without until then.
    from trek_audit.writer.chain import SEAL_ACTION

    return SEAL_ACTION


def leaves_out_seals(flt: Filter) -> bool:
    """Whether seal lines are among the rows the filter matches but are to be left out.

    Only a filter without an action: the action filter is exact, so ``audit.seal`` asks
    for the seal lines and any other action has none among its rows already.
    """
    return flt.action is None


def seal_lines_of(flt: Filter) -> Filter:
    """The filter narrowed to seal lines: the share a count of ``flt`` takes off its whole."""
    return replace(flt, action=seal_action())


def branches(
    flt: Filter,
    until_bound: Callable[[str], int | None] | None = None,
    *,
    seals: bool = False,
) -> list[Branch]:
    """The branches of a filter; seal lines are left out (``leaves_out_seals``) unless ``seals``.

    ``until_bound``, when given, returns the largest row id before an ``until`` timestamp
    (or None to do without): pages use it to start from there rather than from the newest row.
    """
    # A search of only spaces is no search.
    base = Branch(fts_query(flt.q) if flt.q else None)
    if not seals and leaves_out_seals(flt):
        base = base.copy_with("a.action != ?", seal_action())
    for column, value in (("action", flt.action), ("ip", flt.ip)):
        if value is not None:
            base = base.copy_with(f"a.{column} = ?", value)
    if flt.since is not None:
        base = base.copy_with("a.ts >= ?", flt.since)
    if flt.until is not None:
        base = base.copy_with("a.ts < ?", flt.until)
        bound = until_bound(flt.until) if until_bound is not None and base.match is None else None
        if bound is not None:
            base = base.copy_with("a.id <= ?", bound)
    found = [base]
    if flt.user is not None:
        found = [_by_name(base, flt.user)]
        text = flt.user.strip()
        if re.fullmatch(r"-?\d{1,19}", text) and abs(int(text)) <= _INT64_MAX:
            found.append(base.copy_with("a.user_id = ?", int(text)))
    if flt.source:
        found = [branch.copy_with("a.source = ?", name) for branch in found for name in flt.source]
    return found


def _by_name(base: Branch, name: str) -> Branch:
    """The rows of ``base`` whose username or email is ``name``.

    Neither column has an index of its own: the full-text index holds both, and its phrase
    finds every row with the name (and a few more, which the equality drops). A name with
    no word for the full-text index to look up is checked row by row.
    """
    phrase = column_phrase(("username", "email"), name)
    found = base if phrase is None else base.searching(phrase)
    return found.copy_with("(a.username = ? OR a.email = ?)", name, name)


def _union_ids(
    parts: list[Branch], before: int | None, limit: int | None, after: int | None
) -> Statement:
    selects, params = [], []
    for branch in parts:
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
        selects.append(inner)
        params.extend(branch_params)
    return Statement(" UNION ".join(selects), params)


def page_sql(
    parts: list[Branch], before: int | None, limit: int, ascending: bool = False
) -> Statement:
    """Select up to ``limit`` rows (ENTRY_COLUMNS) below row id ``before``, newest first."""
    order = "ASC" if ascending else "DESC"
    if len(parts) == 1:
        branch = parts[0]
        where, params = branch.where(before)
        columns = ", ".join("a." + c for c in ENTRY_COLUMNS)
        sql = (
            f"SELECT {columns} FROM {branch.source}{where} "  # noqa: S608
            f"ORDER BY {branch.id_column} {order} LIMIT ?"
        )
        return Statement(sql, [*params, limit])
    ids, params = _union_ids(parts, before, limit, -1 if ascending else None)
    columns = ", ".join(ENTRY_COLUMNS)
    sql = (
        f"SELECT {columns} FROM audit_log WHERE id IN ({ids}) "  # noqa: S608
        f"ORDER BY id {order} LIMIT ?"
    )
    return Statement(sql, [*params, limit])


def count_sql(parts: list[Branch], after: int | None, before: int | None) -> Statement:
    """Count the matching rows with ``after`` < id < ``before``."""
    if len(parts) == 1:
        where, params = parts[0].where(before, after)
        return Statement(f"SELECT COUNT(*) FROM {parts[0].source}{where}", params)  # noqa: S608
    ids, params = _union_ids(parts, before, None, after)
    return Statement(f"SELECT COUNT(*) FROM ({ids})", params)  # noqa: S608


def bucket_sql(parts: list[Branch], width: int, after: int | None, before: int | None) -> Statement:
    """Count the matching rows with ``after`` < id < ``before`` per timestamp cut to ``width``."""
    if len(parts) == 1:
        where, params = parts[0].where(before, after)
        sql = (
            f"SELECT substr(a.ts, 1, {int(width)}) AS bucket, COUNT(*) "  # noqa: S608
            f"FROM {parts[0].source}{where} GROUP BY bucket"
        )
        return Statement(sql, params)
    ids, params = _union_ids(parts, before, None, after)
    sql = (
        f"SELECT substr(ts, 1, {int(width)}) AS bucket, COUNT(*) FROM audit_log "  # noqa: S608
        f"WHERE id IN ({ids}) GROUP BY bucket"
    )
    return Statement(sql, params)
