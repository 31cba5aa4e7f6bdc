"""The SQL of a filter: WHERE clauses and statements for pages, counts, histograms and facets.

Each filter maps onto an index that ends in ``id`` (see ``migrations``), which makes a
filtered page a range scan in id order; the username, email and resource of a filter are
looked up in the full-text index, which walks its rowids in order too. Several values of a
field are OR-ed, and a ``user`` may match a name or a user id; an OR would defeat those
indexes, so each way a row may match becomes one *branch*, each its own range scan, joined
by UNION. Past ``MAX_BRANCHES`` (20 actions times 20 sources) the fields with the most values
become one ``IN (...)`` condition each instead. Exclusions are conditions of every branch.
Values are always bound parameters; only fixed fragments of this module are put into the text.

Seal lines (action ``audit.seal``) are rows like any other, but they are the log vouching
for itself, not events anyone did: a filter leaves them out unless its action asks for them
(``leaves_out_seals``). Pages say so in their WHERE clause; counts and histograms take the seal
lines' share off the whole instead (see ``AuditQuery``), which keeps their covering indexes.

The connection must have the SQL functions of ``FUNCTIONS`` (``AuditQuery`` registers them).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from math import prod
from typing import Any, NamedTuple

from .ip_patterns import IpPattern, in_network, network_prefixes, parse_ip_pattern, text_after
from .search import column_phrase, fts_query
from .values import FILTER_FIELDS, Filter

__all__ = [
    "ENTRY_COLUMNS",
    "FUNCTIONS",
    "MAX_BRANCHES",
    "Alternative",
    "Branch",
    "Statement",
    "branches",
    "bucket_sql",
    "count_sql",
    "facet_sql",
    "has_seals_to_leave_out",
    "leaves_out_seals",
    "name_phrase",
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
# The most branches a filter is split into: each is a range scan of its own, and a page reads
# up to its limit from each. Beyond it, the fields with the most values become IN conditions.
MAX_BRANCHES = 64


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

    def with_alternative(self, alternative: Alternative) -> Branch:
        """A copy that also requires ``alternative`` (its condition and its full-text query)."""
        branch = self.copy_with(alternative.condition, *alternative.params)
        return branch if alternative.match is None else branch.searching(alternative.match)

    def searching(self, query: str) -> Branch:
        """A copy that also requires the full-text ``query``."""
        match = query if self.match is None else f"({self.match}) AND ({query})"
        return Branch(match, self.conditions, self.params)

    def where(
        self, before: int | None = None, after: int | None = None, *, bound_only: bool = False
    ) -> Statement:
        """The WHERE clause (with its leading space, or empty) for rows between the two ids.

        ``bound_only``: ``before`` only bounds the rows, an index picks them. With a condition
        on the time (``since`` alone), SQLite took the id bound for the better range and read
        every row below it: ten times the rows of the time range.
        """
        conditions, params = list(self.conditions), list(self.params)
        if self.match is not None:
            conditions.insert(0, "audit_log_fts MATCH ?")
            params.insert(0, self.match)
        if before is not None:
            # A unary + keeps SQLite from using the term as an index range.
            plus = "+" if bound_only and after is None else ""
            conditions.append(f"{plus}{self.id_column} < ?")
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
    """Whether seal lines are left out of what the filter shows: unless its action asks for them.

    ``not_action`` never brings them in. A filter with other actions only has no seal lines
    among its rows to leave out, but says True all the same (one rule for pages and caches).
    """
    return seal_action() not in flt.action


def has_seals_to_leave_out(flt: Filter) -> bool:
    """Whether seal lines may be among the filter's rows and are to be left out: without an
    action (other actions have no seal lines among their rows)."""
    return not flt.action


def seal_lines_of(flt: Filter) -> Filter:
    """The filter narrowed to seal lines: the share a count of ``flt`` takes off its whole
    (when ``has_seals_to_leave_out``)."""
    return replace(flt, action=(seal_action(),))


SqlValue = str | int | float | bytes | None


def casefold(text: SqlValue) -> SqlValue:
    """SQL function ``trek_casefold(text)``: ``str.casefold`` of a text, anything else as it is."""
    return text.casefold() if isinstance(text, str) else text


# The SQL functions the statements call, for ``sqlite3.Connection.create_function``.
FUNCTIONS: dict[str, tuple[int, Callable[..., SqlValue]]] = {
    "trek_casefold": (1, casefold),
    "trek_in_network": (2, in_network),
}


class Alternative(NamedTuple):
    """One way a row matches a field: a condition, and a full-text query that narrows it."""

    condition: str
    params: tuple[Any, ...] = ()
    match: str | None = None


def branches(
    flt: Filter,
    until_bound: Callable[[str], int | None] | None = None,
    *,
    seals: bool = False,
) -> list[Branch]:
    """The branches of a filter; seal lines are left out (``leaves_out_seals``) unless ``seals``.

    ``until_bound``, when given, returns the largest row id before an ``until`` timestamp
    (or None to do without): pages use it to start from there rather than from the newest row.
    ValueError for an ``ip`` value that is no pattern (``ip_patterns.parse_ip_pattern``).
    """
    # A search of only spaces is no search.
    base = Branch(fts_query(flt.q) if flt.q else None)
    if not seals and has_seals_to_leave_out(flt):
        base = base.copy_with("a.action != ?", seal_action())
    if flt.since is not None:
        base = base.copy_with("a.ts >= ?", flt.since)
    if flt.until is not None:
        base = base.copy_with("a.ts < ?", flt.until)
        bound = until_bound(flt.until) if until_bound is not None and base.match is None else None
        if bound is not None:
            base = base.copy_with("a.id <= ?", bound)
    for name in FILTER_FIELDS:
        excluded = flt.excluded(name)
        if excluded:
            exclusion = _EXCLUSIONS[name](excluded)
            base = base.copy_with(exclusion.condition, *exclusion.params)
    fields = [name for name in FILTER_FIELDS if getattr(flt, name)]
    ways = {name: _ALTERNATIVES[name](getattr(flt, name)) for name in fields}
    while prod(len(alternatives) for alternatives in ways.values()) > MAX_BRANCHES:
        widest = max(fields, key=lambda name: len(ways[name]))
        ways[widest] = [_ANY_OF[widest](getattr(flt, widest))]
    found = [base]
    for name in fields:
        found = [branch.with_alternative(alt) for branch in found for alt in ways[name]]
    return found


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _any_match(matches: Sequence[str | None]) -> str | None:
    """A full-text query for any of ``matches``; None (no narrowing) unless each narrows."""
    if not matches or None in matches:
        return None
    return " OR ".join(f"({match})" for match in matches)


# -- action, source: one index each --------------------------------------------------------


def _equal_to(column: str) -> Callable[[tuple[str, ...]], list[Alternative]]:
    def alternatives(values: tuple[str, ...]) -> list[Alternative]:
        return [Alternative(f"{column} = ?", (value,)) for value in values]

    return alternatives


def _one_of(column: str) -> Callable[[tuple[str, ...]], Alternative]:
    def any_of(values: tuple[str, ...]) -> Alternative:
        return Alternative(f"{column} IN ({_marks(values)})", values)

    return any_of


def _none_of(column: str) -> Callable[[tuple[str, ...]], Alternative]:
    def exclusion(values: tuple[str, ...]) -> Alternative:
        return Alternative(f"{column} NOT IN ({_marks(values)})", values)

    return exclusion


# -- resource: exact, looked up in the full-text index ----------------------------------------


def _resources(values: tuple[str, ...]) -> list[Alternative]:
    return [
        Alternative("a.resource = ?", (value,), column_phrase(("resource",), value))
        for value in values
    ]


def _any_resource(values: tuple[str, ...]) -> Alternative:
    matches = [column_phrase(("resource",), value) for value in values]
    return Alternative(f"a.resource IN ({_marks(values)})", values, _any_match(matches))


def _no_resource(values: tuple[str, ...]) -> Alternative:
    return Alternative(f"(a.resource IS NULL OR a.resource NOT IN ({_marks(values)}))", values)


# -- user: a name whatever its case, or a user id ---------------------------------------------

_NAME_EQUALS = "(trek_casefold(a.username) = ? OR trek_casefold(a.email) = ?)"


def _users(values: tuple[str, ...]) -> list[Alternative]:
    """Per value: its username or email whatever the case, and the user id it may be."""
    found = []
    for value in values:
        folded = value.casefold()
        found.append(Alternative(_NAME_EQUALS, (folded, folded), name_phrase(value)))
        user_id = _user_id(value)
        if user_id is not None:
            found.append(Alternative("a.user_id = ?", (user_id,)))
    return found


def _user_condition(values: tuple[str, ...], *, nulls_false: bool) -> Alternative:
    """Whether a row's username or email (case folded) or user id is among ``values``."""
    folded = tuple(sorted({value.casefold() for value in values}))
    ids = tuple(sorted({user_id for value in values if (user_id := _user_id(value)) is not None}))
    parts: list[tuple[str, tuple[Any, ...]]] = [
        (f"trek_casefold(a.username) IN ({_marks(folded)})", folded),
        (f"trek_casefold(a.email) IN ({_marks(folded)})", folded),
    ]
    if ids:
        parts.append((f"a.user_id IN ({_marks(ids)})", ids))
    # `NULL IN (...)` is NULL, and NOT NULL too: an exclusion would drop the rows without.
    template = "ifnull({}, 0)" if nulls_false else "{}"
    condition = " OR ".join(template.format(part) for part, _ in parts)
    params = tuple(param for _, values_ in parts for param in values_)
    match = None if ids else _any_match([name_phrase(value) for value in values])
    return Alternative(f"({condition})", params, match)


def _any_user(values: tuple[str, ...]) -> Alternative:
    return _user_condition(values, nulls_false=False)


def _no_user(values: tuple[str, ...]) -> Alternative:
    condition, params, _ = _user_condition(values, nulls_false=True)
    return Alternative(f"NOT {condition}", params)


def _user_id(value: str) -> int | None:
    """The user id a ``user`` value names: a whole number that fits SQLite's integers."""
    text = value.strip()
    if re.fullmatch(r"-?\d{1,19}", text) and abs(int(text)) <= _INT64_MAX:
        return int(text)
    return None


def name_phrase(value: str) -> str | None:
    """A full-text query that finds every row whose username or email casefolds like ``value``.

    The index's tokenizer (unicode61) folds the case of each letter, so the phrase of the
    value finds its other cases; a value with a letter that casefolds to others (``ß`` to
    ``ss``) is looked up as typed and as folded. What it cannot find is a stored name spelt
    with such a letter by the other spelling: ``Straße`` is found by ``STRASSE`` only through
    a name that has no word for the index, like any name checked row by row.
    """
    phrases = {column_phrase(("username", "email"), text) for text in (value, value.casefold())}
    return _any_match(sorted(phrases, key=lambda phrase: phrase or ""))


# -- ip: an address, a network or a text prefix ------------------------------------------------


def _ips(values: tuple[str, ...]) -> list[Alternative]:
    """One branch per value the (ip, id) index serves; the networks it cannot narrow (IPv6,
    IPv4 shorter than /4) share one, a single pass that checks each row against them all."""
    patterns = [parse_ip_pattern(value) for value in values]
    unnarrowed = [pattern.text for pattern in patterns if _scans(pattern)]
    found = [_ip_alternative(pattern) for pattern in patterns if not _scans(pattern)]
    if unnarrowed:
        found.append(Alternative("trek_in_network(a.ip, ?)", (" ".join(unnarrowed),)))
    return found


def _scans(pattern: IpPattern) -> bool:
    """Whether a pattern is a network that only a check of every row can match."""
    if pattern.kind != "network":
        return False
    network = ipaddress.ip_network(pattern.text)
    return not (network.version == 4 and network.num_addresses == 1) and not network_prefixes(
        pattern.text
    )


def _ip_alternative(pattern: IpPattern) -> Alternative:
    if pattern.kind == "exact":
        spellings = pattern.spellings
        return Alternative(f"a.ip IN ({_marks(spellings)})", spellings)
    if pattern.kind == "prefix":
        return _text_range(pattern.text)
    network = ipaddress.ip_network(pattern.text)
    if network.version == 4 and network.num_addresses == 1:
        return Alternative("a.ip = ?", (str(network.network_address),))
    prefixes = network_prefixes(pattern.text) or []
    # An IPv4 client of a dual-stack server is often recorded as ::ffff:a.b.c.d.
    ranges = [_text_range(start + prefix) for prefix in prefixes for start in ("", "::ffff:")]
    condition = "trek_in_network(a.ip, ?)"
    params: tuple[Any, ...] = (pattern.text,)
    if ranges:
        condition = "(" + " OR ".join(r.condition for r in ranges) + ") AND " + condition
        params = tuple(param for r in ranges for param in r.params) + params
    return Alternative(f"({condition})", params)


def _text_range(prefix: str) -> Alternative:
    """The texts that start with ``prefix``: a range of the (ip, id) index."""
    after = text_after(prefix)
    if after is None:
        return Alternative("a.ip >= ?", (prefix,))
    return Alternative("(a.ip >= ? AND a.ip < ?)", (prefix, after))


def _ip_condition(values: tuple[str, ...]) -> Alternative:
    patterns = [parse_ip_pattern(value) for value in values]
    exact = tuple(
        text for pattern in patterns if pattern.kind == "exact" for text in pattern.spellings
    )
    parts = [Alternative(f"a.ip IN ({_marks(exact)})", exact)] if exact else []
    parts.extend(
        _ips(
            tuple(
                value
                for value, pattern in zip(values, patterns, strict=True)
                if pattern.kind != "exact"
            )
        )
    )
    condition = " OR ".join(part.condition for part in parts)
    return Alternative(f"({condition})", tuple(p for part in parts for p in part.params))


def _no_ip(values: tuple[str, ...]) -> Alternative:
    condition, params, _ = _ip_condition(values)
    return Alternative(f"(a.ip IS NULL OR NOT {condition})", params)


# Per field of FILTER_FIELDS: its branches' alternatives, all of them as one, its exclusion.
_ALTERNATIVES: dict[str, Callable[[tuple[str, ...]], list[Alternative]]] = {
    "action": _equal_to("a.action"),
    "user": _users,
    "ip": _ips,
    "resource": _resources,
    "source": _equal_to("a.source"),
}
_ANY_OF: dict[str, Callable[[tuple[str, ...]], Alternative]] = {
    "action": _one_of("a.action"),
    "user": _any_user,
    "ip": _ip_condition,
    "resource": _any_resource,
    "source": _one_of("a.source"),
}
_EXCLUSIONS: dict[str, Callable[[tuple[str, ...]], Alternative]] = {
    "action": _none_of("a.action"),
    "user": _no_user,
    "ip": _no_ip,
    "resource": _no_resource,
    "source": _none_of("a.source"),
}


def _union_ids(
    parts: list[Branch],
    before: int | None,
    limit: int | None,
    after: int | None,
    *,
    ascending: bool = False,
) -> Statement:
    selects, params = [], []
    for branch in parts:
        where, branch_params = branch.where(before, after)
        inner = f"SELECT {branch.id_column} AS id FROM {branch.source}{where}"  # noqa: S608
        if limit is not None:
            # Each branch stops at `limit` rows of its own index range; the union of those
            # holds the newest (or oldest) `limit` rows of the whole OR.
            order = "ASC" if ascending else "DESC"
            inner = (
                f"SELECT id FROM ({inner} "  # noqa: S608
                f"ORDER BY {branch.id_column} {order} LIMIT {int(limit)})"
            )
        selects.append(inner)
        params.extend(branch_params)
    return Statement(" UNION ".join(selects), params)


def page_sql(
    parts: list[Branch],
    before: int | None,
    limit: int,
    ascending: bool = False,
    through: int | None = None,
) -> Statement:
    """Select up to ``limit`` rows (ENTRY_COLUMNS) below row id ``before``, newest first.

    ``through``, when given, is the lowest row id to select.
    """
    order = "ASC" if ascending else "DESC"
    after = None if through is None else through - 1
    if len(parts) == 1:
        branch = parts[0]
        where, params = branch.where(before, after)
        columns = ", ".join("a." + c for c in ENTRY_COLUMNS)
        sql = (
            f"SELECT {columns} FROM {branch.source}{where} "  # noqa: S608
            f"ORDER BY {branch.id_column} {order} LIMIT ?"
        )
        return Statement(sql, [*params, limit])
    ids, params = _union_ids(parts, before, limit, after, ascending=ascending)
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


def facet_sql(
    parts: list[Branch], values: Sequence[str], after: int | None, before: int | None
) -> Statement:
    """The SQL expressions ``values`` (over ``a``) of each matching row with ``after`` < id <
    ``before``, in no particular order (``facets`` counts them). With one expression the rows
    where it is NULL are left out here; with several, the counting leaves out each NULL.
    """
    selected = ", ".join(values)
    if len(parts) == 1:
        branch = parts[0].copy_with(f"{values[0]} IS NOT NULL") if len(values) == 1 else parts[0]
        where, params = branch.where(before, after, bound_only=True)
        source = parts[0].source
    else:
        ids, params = _union_ids(parts, before, None, after)
        where, source = f" WHERE a.id IN ({ids})", "audit_log a"
        if len(values) == 1:
            where += f" AND {values[0]} IS NOT NULL"
    return Statement(f"SELECT {selected} FROM {source}{where}", params)  # noqa: S608
