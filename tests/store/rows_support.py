"""audit.db in memory with the rows a test describes, filled as the indexer fills it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass

from trek_audit.store import AuditQuery, Entry, connect, migrate
from trek_audit.store.schema import fill_full_text, newest_row_id
from trek_audit.writer.chain import SEAL_ACTION

COLUMNS = "event_id, seq, ts, action, user_id, username, email, resource, ip, details, source"


@dataclass(frozen=True)
class Row:
    """One audit row; the event id and seq are made from the row's place when left out."""

    action: str = "user.login"
    user_id: int | None = None
    username: str | None = None
    email: str | None = None
    resource: str | None = None
    ip: str | None = None
    details: str | None = None
    source: str = "local"
    ts: str = "2026-11-26T13:22:49.123456Z"
    seq: int | None = None
    event_id: str | None = None


def seal(last_seq: int, *, source: str = "local", seq: int | None = None) -> Row:
    """A seal line that covers the lines up to ``last_seq`` of its source."""
    details = {"epoch": 1, "first_seq": 1, "last_seq": last_seq}
    return Row(SEAL_ACTION, details=json.dumps(details), source=source, seq=seq)


def insert(query: AuditQuery, rows: Sequence[Row]) -> None:
    """Append ``rows`` in one transaction, with their full-text entries."""
    conn = query.conn
    with conn:
        newest = newest_row_id(conn)
        values = []
        for number, row in enumerate(rows, start=newest + 1):
            (action, uid, name, mail, resource, ip, details, source, ts, seq, event_id) = astuple(
                row
            )
            values.append(
                (
                    event_id or f"e{number}",
                    number if seq is None else seq,
                    ts,
                    action,
                    uid,
                    name,
                    mail,
                    resource,
                    ip,
                    details,
                    source,
                )
            )
        conn.executemany(
            f"INSERT INTO audit_log ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            values,
        )
        fill_full_text(conn, newest)
        conn.execute(
            "UPDATE indexer_state SET value = value + ? WHERE name = 'indexed'", (len(values),)
        )


@contextmanager
def database(rows: Sequence[Row] = ()) -> Iterator[AuditQuery]:
    """A query over a fresh audit.db in memory holding ``rows`` (row ids from 1)."""
    conn = connect(":memory:")
    try:
        migrate(conn)
        query = AuditQuery(conn)
        insert(query, rows)
        yield query
    finally:
        conn.close()


def ids(entries: Sequence[Entry]) -> list[int]:
    """The row ids of entries, in their order."""
    return [entry.row_id for entry in entries]
