"""Events with a distinct value in every column, and the check that each row can be found."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from trek_audit.store import AuditQuery, Entry, Filter, connect
from trek_audit.store.schema import FULL_TEXT_COLUMNS
from trek_audit.store.search import column_phrase
from trek_audit.writer.line import Event, encode

ACTIONS = ("user.login", "trip.update", "trip.create", "mcp.tool_call")


def event(seq: int) -> dict[str, Any]:
    """A format-v1 event whose user, resource, ip and details no other event has.

    Every seventh has no user, every eleventh no ip, every thirteenth no details: a row
    without a value must be findable by the columns it has.
    """
    minute, second = divmod(seq, 60)
    return {
        "v": 1,
        "id": str(uuid.uuid4()),
        "seq": seq,
        "ts": f"2026-11-{1 + minute // 1440:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:"
        f"{second:02d}.000000Z",
        "action": ACTIONS[seq % len(ACTIONS)],
        "user": None
        if seq % 7 == 0
        else {"id": 1000 + seq, "username": f"walker{seq}", "email": f"walker{seq}@example.org"},
        "resource": f"trip/{seq}",
        "ip": None if seq % 11 == 0 else f"198.51.{seq // 250}.{seq % 250}",
        "details": None if seq % 13 == 0 else {"note": f"stage{seq} of the tour"},
    }


def lines(seqs: Iterable[int]) -> bytes:
    return b"".join(encode(cast(Event, event(seq))) for seq in seqs)


def append(path: Path, seqs: Iterable[int]) -> None:
    with open(path, "ab") as file:
        file.write(lines(seqs))


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "it") -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.02)


def check_full_text_index(db_path: Path) -> None:
    """Fail unless the full-text index holds exactly the entries of the rows in audit_log.

    FTS5's integrity check with rank 1 compares the index with its content table: a row
    without its entries, or entries without their row, make it raise. It is asked with an
    INSERT, so through a read-write connection, though it changes nothing.
    """
    conn = connect(db_path)
    try:
        with conn:
            conn.execute(
                "INSERT INTO audit_log_fts (audit_log_fts, rank) VALUES ('integrity-check', 1)"
            )
    finally:
        conn.close()


def _panel_filters(row: Entry) -> dict[str, Filter]:
    """The panel's filters that must find ``row``, by what they look up."""
    filters = {
        "action": Filter(action=(row.action,)),
        "ts": Filter(since=row.ts),
        "q": Filter(q=f"trip {row.seq}"),
    }
    if row.ip is not None:
        filters["ip"] = Filter(ip=(row.ip,))
    if row.username is not None:
        filters["username"] = Filter(user=(row.username,))
    if row.email is not None:
        filters["email"] = Filter(user=(row.email,))
    if row.user_id is not None:
        filters["user_id"] = Filter(user=(str(row.user_id),))
    return filters


def unfindable(db_path: Path) -> list[str]:
    """Every (row, way of finding it) that fails, as text; checks the full-text index first.

    Each row must be the first of the page that ends at it, for each filter of the panel
    that applies to it, and must match a full-text phrase of each indexed column it has a
    value in; its event_id must be found through the unique index.
    """
    check_full_text_index(db_path)
    query = AuditQuery.open(db_path)
    misses: list[str] = []
    try:
        for row in query.iter_all(Filter()):
            for name, flt in _panel_filters(row).items():
                found = query.page(flt, before=row.row_id + 1, limit=1)
                if [entry.row_id for entry in found] != [row.row_id]:
                    misses.append(f"row {row.row_id} (seq {row.seq}) by {name}")
            for column in FULL_TEXT_COLUMNS:
                value = getattr(row, column)
                phrase = None if value is None else column_phrase((column,), value)
                if phrase is None:
                    continue
                hit = query.conn.execute(
                    "SELECT count(*) FROM audit_log_fts WHERE audit_log_fts MATCH ? AND rowid = ?",
                    (phrase, row.row_id),
                ).fetchone()[0]
                if hit != 1:
                    misses.append(f"row {row.row_id} (seq {row.seq}) by full text in {column}")
            by_id = query.conn.execute(
                "SELECT id FROM audit_log WHERE event_id = ?", (row.event_id,)
            ).fetchall()
            if by_id != [(row.row_id,)]:
                misses.append(f"row {row.row_id} (seq {row.seq}) by event_id")
    finally:
        query.close()
    return misses
