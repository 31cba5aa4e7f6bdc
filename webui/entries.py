"""How an audit row is shown: as an API object, a table row, a CSV record or an NDJSON line."""

from __future__ import annotations

from typing import Any

import orjson

from trek_audit.store import Entry
from trek_audit.writer.catalog import describe

__all__ = ["CSV_HEADER", "api_entry", "csv_record", "ndjson_line", "table_row"]

CSV_HEADER = [
    "id",
    "seq",
    "ts",
    "action",
    "user_id",
    "username",
    "email",
    "resource",
    "ip",
    "details",
    "source",  # last: spreadsheets and scripts that read the columns before it by place
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _details(entry: Entry) -> Any:
    if entry.details is None:
        return None
    try:
        return orjson.loads(entry.details)
    except orjson.JSONDecodeError:
        return entry.details  # the indexer only stores objects; show anything else as text


def _user(entry: Entry) -> dict[str, Any] | None:
    if not entry.has_user:
        return None
    return {"id": entry.user_id, "username": entry.username, "email": entry.email}


def api_entry(entry: Entry) -> dict[str, Any]:
    """The JSON API's entry: ``id`` is the event id (the identity in trek.log), not the row id.

    ``source`` names the log it came from: ``local`` (this host's logs/) or a directory of
    sources/ (another host's shipped lines, trek-import).
    """
    return {
        "id": entry.event_id,
        "ts": entry.ts,
        "user": _user(entry),
        "action": entry.action,
        "resource": entry.resource,
        "ip": entry.ip,
        "details": _details(entry),
        "source": entry.source,
    }


def ndjson_line(entry: Entry) -> bytes:
    body = api_entry(entry)
    body["seq"] = entry.seq
    return orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE)


def table_row(entry: Entry, sealed: bool = False) -> dict[str, Any]:
    """The page's row; ``sealed``: whether a seal covers it yet (its details say so)."""
    details = _details(entry)
    return {
        "row_id": entry.row_id,
        "id": entry.event_id,
        "ts": entry.ts,
        "user": _user(entry),
        "action": entry.action,
        "description": describe(entry.action) or "",
        "resource": entry.resource,
        "ip": entry.ip,
        "details_line": None if details is None else orjson.dumps(details).decode(),
        "details_pretty": None
        if details is None
        else orjson.dumps(details, option=orjson.OPT_INDENT_2).decode(),
        "sealed": sealed,
        "source": entry.source,
    }


def _cell(value: Any) -> Any:
    """A spreadsheet must not run a cell as a formula: prefix a quote to = + - @ tab CR."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_record(entry: Entry) -> list[Any]:
    return [
        _cell(value)
        for value in (
            entry.event_id,
            entry.seq,
            entry.ts,
            entry.action,
            entry.user_id,
            entry.username,
            entry.email,
            entry.resource,
            entry.ip,
            entry.details,
            entry.source,
        )
    ]
