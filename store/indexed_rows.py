"""audit.db's rows beside the log lines verify walks: read in id order, each compared with its line.

audit.db is opened read-only and read in one read transaction, before the log files: the files
only grow meanwhile, so a row past a file's end means the file was cut, not written since.
Rows are read a window at a time as the lines come; ``log_files`` tells how far the indexer
read each file. Only the rows of the source "local" are read: the lines verify walks are those
of ``logs/``; other sources' rows came from other hosts' files.
"""

from __future__ import annotations

import hmac
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from trek_audit.layout import LOCAL_SOURCE

from .schema import connect
from .verify_outcome import VerifyError

if TYPE_CHECKING:
    from trek_audit.writer.line import Event

__all__ = ["IndexedRows", "RowComparison"]

# Rows are read in id order beside the lines, a window at a time; a line whose seq points far
# ahead (an edited seq) does not pull more than this many rows into memory to look for it.
_ROW_LOOKAHEAD = 100_000
_ROW_BATCH = 2_000
_ROW_FIELDS = (
    "id", "seq", "ts", "action", "user.id", "user.username", "user.email", "resource", "ip",
    "details",
)  # fmt: skip
_COLUMNS = "id, event_id, seq, ts, action, user_id, username, email, resource, ip, details"


class _Row(NamedTuple):
    id: int
    fields: tuple[Any, ...]  # as _ROW_FIELDS
    chain: bytes | None


class RowComparison(NamedTuple):
    """A line against the row indexed from it."""

    row: int  # the row's id
    differ: list[str]  # the fields that differ, named as in the line ("user.username")
    # Whether the row's chain head follows from the previous row's over this line; None when
    # the database keeps no chain head there to tell.
    chain_follows: bool | None


class IndexedRows:
    """audit.db read-only: its rows in id order beside the lines, and what log_files knows."""

    def __init__(
        self, conn: sqlite3.Connection, start: int, has_chain: bool, has_source: bool = False
    ) -> None:
        self.conn = conn
        chain = ", chain" if has_chain else ", NULL"
        # Since schema version 5 rows and files say their source; before, all were local.
        local = f" AND source = '{LOCAL_SOURCE}'" if has_source else ""
        conn.execute("BEGIN")  # one snapshot for everything read below
        self._cursor = conn.execute(
            f"SELECT {_COLUMNS}{chain} FROM audit_log "  # noqa: S608 - fixed names
            f"WHERE id >= ?{local} ORDER BY id",
            (start,),
        )
        self.has_chain = has_chain
        self.rows_before_start = start > 1 and bool(
            conn.execute(
                f"SELECT 1 FROM audit_log WHERE id < ?{local} LIMIT 1",  # noqa: S608
                (start,),
            ).fetchone()
        )
        files_where = local.replace(" AND", " WHERE")
        # By file key (see log_files): how far the indexer read it, and the last seq it saw.
        self.files: dict[str, tuple[int, int | None]] = {
            key: (offset, last_seq)
            for key, offset, last_seq in conn.execute(
                f'SELECT key, "offset", last_seq FROM log_files{files_where}'  # noqa: S608
            )
        }
        self.by_seq: dict[int, _Row] = {}
        self.high = 0  # the largest seq read so far
        self.newest_seq = 0
        self.checked = 0  # rows compared with their line
        self._done = False
        self._limit = 4 * _ROW_BATCH
        self._fetch()

    @classmethod
    def open(cls, path: Path, first_ids: list[str]) -> IndexedRows | None:
        """audit.db's rows from those of the first of ``first_ids`` found; None if nothing was
        ever indexed. Raises VerifyError if it cannot be read."""
        if not path.exists():
            return None
        try:
            conn = connect(path, readonly=True)
        except sqlite3.Error as error:
            raise VerifyError(f"cannot open {path}: {error}") from None
        try:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
            if not {"audit_log", "log_files"} <= tables:
                conn.close()
                return None  # made but never migrated: nothing indexed
            columns = {row[1] for row in conn.execute("PRAGMA table_info(audit_log)")}
            start = 1
            for event_id in first_ids:
                found = conn.execute(
                    "SELECT id FROM audit_log WHERE event_id = ?", (event_id,)
                ).fetchone()
                if found:
                    start = found[0]
                    break
            return cls(conn, start, "chain" in columns, "source" in columns)
        except sqlite3.Error as error:
            conn.close()
            raise VerifyError(f"cannot read {path}: {error}") from None

    def _fetch(self) -> None:
        batch = self._cursor.fetchmany(_ROW_BATCH)
        if not batch:
            self._done = True
            return
        for row in batch:
            seq = row[2]
            self.by_seq.setdefault(seq, _Row(row[0], row[1:11], row[11]))
            self.high = max(self.high, seq)
            self.newest_seq = max(self.newest_seq, seq)

    def get(self, seq: int) -> _Row | None:
        """The row of ``seq``, read ahead as far as needed (and no further than the look-ahead)."""
        while not self._done and self.high < seq + 1 and seq - self.high < _ROW_LOOKAHEAD:
            self._fetch()
        if len(self.by_seq) > self._limit:  # the lines have passed most of these rows
            self.by_seq = {key: row for key, row in self.by_seq.items() if key >= seq - 2}
            self._limit = max(4 * _ROW_BATCH, 2 * len(self.by_seq))
        return self.by_seq.get(seq)

    def compare(self, event: Event, line: bytes) -> RowComparison | None:
        """The line (``event``, its bytes with the newline) against its row; None if no row."""
        from trek_audit.writer.chain import advance

        seq = event["seq"]
        row = self.get(seq)
        if row is None:
            return None
        self.checked += 1
        before = self.get(seq - 1)
        chain_follows: bool | None = None
        if row.chain is not None and before is not None and before.chain is not None:
            chain_follows = hmac.compare_digest(advance(before.chain, line), row.chain)
        user = event["user"] or {"id": None, "username": None, "email": None}
        details = event["details"]
        mine = (
            event["id"], seq, event["ts"], event["action"], user["id"], user["username"],
            user["email"], event["resource"], event["ip"],
            None if details is None else orjson.dumps(details).decode(),
        )  # fmt: skip
        differ = [name for name, a, b in zip(_ROW_FIELDS, mine, row.fields, strict=True) if a != b]
        return RowComparison(row.id, differ, chain_follows)

    def rows_after(self, seq: int) -> tuple[int, int]:
        """How many rows lie past ``seq`` (reading the rest), and the largest seq of them."""
        while not self._done:
            self._fetch()
            if len(self.by_seq) > 4 * _ROW_BATCH:
                self.by_seq = {key: row for key, row in self.by_seq.items() if key > seq}
        after = [key for key in self.by_seq if key > seq]
        return len(after), max(after, default=0)

    def close(self) -> None:
        self.conn.close()
