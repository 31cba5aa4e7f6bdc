"""TREK's own audit log: the rows of ``audit_log`` in a TREK database, as format-v1 events.

TREK (server/src/db/schema.ts) keeps ``audit_log(id, created_at, user_id, action, resource,
details, ip)``: ``created_at`` is SQLite's ``CURRENT_TIMESTAMP`` (UTC, to the second),
``user_id`` references ``users`` (``ON DELETE SET NULL``), ``details`` is ``JSON.stringify`` of
an object or NULL. The database is opened read-only (``mode=ro``) and never written; a column
that a table lacks reads as NULL, so only ``id`` and ``action`` are required.

Each row becomes an event whose ``details["trek_import"]`` says where it came from
(``{"row_id": N}``) and keeps, under the same names, whatever of the row had to be changed to fit
the format: the original ``action`` when it is not a valid action key, ``created_at`` when it is
not a readable instant in range, ``user_id`` when it is not an integer.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from .catalog import RESERVED_ACTIONS
from .line import ACTION_PATTERN, TS_FIRST, Event, User, check_details
from .stamps import uuid7_time_part

__all__ = [
    "IMPORT_KEY",
    "Conversions",
    "TrekDatabase",
    "TrekDatabaseError",
    "TrekRow",
    "to_event",
]

# The key in details that carries an imported row's provenance.
IMPORT_KEY = "trek_import"
# Columns of TREK's audit_log besides id; a table that lacks one reads it as NULL.
_OPTIONAL_COLUMNS = ("created_at", "user_id", "action", "resource", "details", "ip")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FIRST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
_END_INSTANT = datetime(2262, 1, 1, tzinfo=UTC)
_FALLBACK_ACTION_PREFIX = "trek."


class TrekDatabaseError(Exception):
    """A file that is not a TREK database this can read; the message says what to do."""


class TrekRow(NamedTuple):
    """One row of TREK's audit_log, joined with its user, as SQLite holds it."""

    row_id: int
    created_at: object
    user_id: object
    username: object
    email: object
    action: object
    resource: object
    details: object
    ip: object


class Conversions(NamedTuple):
    """What had to change in one row to make it a format-v1 event."""

    action: bool = False  # not a valid action key: mapped, the original kept
    details_text: bool = False  # not a JSON object: kept as {"text": ...}
    created_at: bool = False  # not a readable instant in range: the previous row's ts
    user_id: bool = False  # not a 64-bit integer: user null, the original kept


class TrekDatabase:
    """A TREK database opened read-only; close it, or use it as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise TrekDatabaseError(f"cannot open {path} read-only: {error}") from None
        # Text that is not UTF-8 stays readable instead of stopping the import.
        self._db.text_factory = lambda data: data.decode("utf-8", "replace")
        try:
            # One read transaction: every query sees the same snapshot while TREK writes on.
            self._db.execute("BEGIN")
            self._columns = self._table_columns("audit_log")
            self._user_columns = self._table_columns("users")
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise TrekDatabaseError(
                f"cannot read {path}: {error} (is it TREK's travel.db, e.g. "
                "/app/data/travel.db in its container?)"
            ) from None
        if not self._columns:
            self._db.close()
            raise TrekDatabaseError(
                f"{path} has no audit_log table: give TREK's database (travel.db), from a "
                "TREK version that keeps an audit log"
            )
        missing = {"id", "action"} - self._columns
        if missing:
            self._db.close()
            raise TrekDatabaseError(
                f"{path}: audit_log has no column {sorted(missing)[0]!r}; it is not TREK's table"
            )

    def _table_columns(self, table: str) -> set[str]:
        rows = self._db.execute(f"PRAGMA table_info({table})").fetchall()  # noqa: S608
        return {row[1] for row in rows}

    def count(self, after: int = 0) -> int:
        """How many rows have an id larger than ``after``."""
        (count,) = self._db.execute(
            "SELECT count(*) FROM audit_log WHERE id > ?", (after,)
        ).fetchone()
        return int(count)

    def rows(self, after: int = 0, upto: int | None = None) -> Iterator[TrekRow]:
        """The rows with an id larger than ``after`` (and at most ``upto``), in id order."""
        select = ", ".join(
            f"a.{name}" if name in self._columns else "NULL" for name in _OPTIONAL_COLUMNS
        )
        has_users = {"id", "username", "email"} <= self._user_columns and "user_id" in (
            self._columns
        )
        user_columns = "u.username, u.email" if has_users else "NULL, NULL"
        join = "LEFT JOIN users AS u ON u.id = a.user_id" if has_users else ""
        query = (
            f"SELECT a.id, {select}, {user_columns} FROM audit_log AS a {join} "  # noqa: S608
            "WHERE a.id > ? AND a.id <= ? ORDER BY a.id"
        )
        bound = _INT64_MAX if upto is None else upto
        for row in self._db.execute(query, (after, bound)):
            row_id, created_at, user_id, action, resource, details, ip, username, email = row
            yield TrekRow(
                row_id, created_at, user_id, username, email, action, resource, details, ip
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TrekDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_event(row: TrekRow, seq: int, previous_ts: str) -> tuple[Event, Conversions]:
    """The format-v1 event of ``row`` at ``seq``, and what had to change to make it one.

    A ``created_at`` that is not a readable instant gets ``previous_ts`` (the ts of the row
    before), so the source stays in time order; the original is kept in details.
    """
    provenance: dict[str, Any] = {"row_id": row.row_id}
    action, action_changed = _action_key(row.action)
    if action_changed:
        provenance["action"] = _text(row.action)
    ts = _instant(row.created_at)
    if ts is None:
        ts = previous_ts or TS_FIRST
        provenance["created_at"] = _text(row.created_at)
    user, user_changed = _user(row)
    if user_changed:
        provenance["user_id"] = _text(row.user_id)
    details, details_text = _details(row.details)
    if IMPORT_KEY in details:  # TREK's own key of that name is kept beside the provenance
        provenance["details_" + IMPORT_KEY] = details.pop(IMPORT_KEY)
    event: Event = {
        "v": 1,
        "id": event_id(row, ts),
        "seq": seq,
        "ts": ts,
        "action": action,
        "user": user,
        "resource": _optional_text(row.resource),
        "ip": _optional_text(row.ip),
        "details": {IMPORT_KEY: provenance, **details},
    }
    conversions = Conversions(
        action=action_changed,
        details_text=details_text,
        created_at="created_at" in provenance,
        user_id=user_changed,
    )
    return event, conversions


def event_id(row: TrekRow, ts: str) -> str:
    """A UUIDv7 whose time is the row's and whose other bits are a hash of the row.

    Derived rather than random, so that the same row imported twice (say, into a data
    directory whose trek-import files were deleted) has the same id, which the indexer reports
    as a duplicate_id incident instead of keeping two copies.
    """
    ms = int(datetime.fromisoformat(ts).timestamp() * 1000)
    material = repr((row.row_id, row.created_at, row.action, row.user_id, row.details))
    digest = bytearray(hashlib.sha256(b"trek-import\0" + material.encode()).digest()[:10])
    digest[0] = 0x70 | (digest[0] & 0x0F)  # version 7
    digest[2] = 0x80 | (digest[2] & 0x3F)  # RFC 9562 variant
    h = digest.hex()
    return f"{uuid7_time_part(ms)}-{h[0:4]}-{h[4:8]}-{h[8:20]}"


def _action_key(action: object) -> tuple[str, bool]:
    """TREK's action as a valid key: itself if it is one, else lowercased, with every run of
    other characters as "_", and "trek." in front when it has no dotted word of its own."""
    if (
        isinstance(action, str)
        and ACTION_PATTERN.fullmatch(action)
        and action not in RESERVED_ACTIONS
    ):
        return action, False
    words = [re.sub(r"[^a-z0-9_]+", "_", word) for word in _text(action).lower().split(".")]
    words = [word.strip("_") for word in words if word.strip("_")]
    candidate = ".".join(words)
    if ACTION_PATTERN.fullmatch(candidate) and candidate not in RESERVED_ACTIONS:
        return candidate, True
    return _FALLBACK_ACTION_PREFIX + ("_".join(words) or "unknown"), True


def _instant(value: object) -> str | None:
    """A created_at as the format's ts, or None if it is not a readable instant in range.

    Text without a zone is UTC, as SQLite's CURRENT_TIMESTAMP writes it; a number is
    seconds since the epoch.
    """
    try:
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    moment = moment.astimezone(UTC)
    if not _FIRST_INSTANT <= moment < _END_INSTANT:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _user(row: TrekRow) -> tuple[User | None, bool]:
    if row.user_id is None:
        return None, False
    user_id = row.user_id
    if isinstance(user_id, str) and user_id.strip().lstrip("-").isdigit():
        user_id = int(user_id)
    if type(user_id) is not int or not _INT64_MIN <= user_id <= _INT64_MAX:
        return None, True
    return {
        "id": user_id,
        "username": _optional_text(row.username),
        "email": _optional_text(row.email),
    }, False


def _details(value: object) -> tuple[dict[str, Any], bool]:
    """TREK's details as an object, and whether it had to be kept as {"text": ...} instead."""
    if value is None:
        return {}, False
    text = _text(value)
    try:
        # The standard parser, not orjson: orjson turns an integer past 64 bits into a float,
        # silently changing it; here it is refused (and the text kept) instead.
        details = json.loads(text, parse_int=_int64, parse_constant=_no_constant)
        if type(details) is dict:
            check_details(details)
            text.encode()  # a lone surrogate escape (\ud800) cannot be written as UTF-8
            _check_strings(details)
            return details, False
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        pass
    return {"text": text}, True


def _check_strings(value: object) -> None:
    """Raise UnicodeEncodeError if a string in ``value`` (keys too) is not valid UTF-8."""
    if isinstance(value, str):
        value.encode()
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode()
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def _int64(text: str) -> int:
    number = int(text)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError(f"{text} is outside the 64-bit range")
    return number


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _text(value: object) -> str:
    """Any SQLite value as readable text (blobs as UTF-8, invalid bytes replaced)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)
