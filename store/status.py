"""What the indexer has done, read cheaply from its counters: for ``trek-audit status``, the panel.

The keys of ``Status`` are the JSON object ``trek-audit status --json`` prints: a public
interface, so none is ever renamed or removed.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, TypedDict

from trek_audit.layout import DataDir

from .indexer_lock import holder_pid, is_locked
from .log_files import file_key, list_log_files
from .schema import connect, schema_version

__all__ = ["Status", "read_status"]

log = logging.getLogger(__name__)


class Status(TypedDict):
    """The indexer's state, as ``read_status`` reports it."""

    indexed: int  # rows in audit_log
    last_seq: int  # the highest seq indexed
    next_seq: int  # the seq the indexer expects next
    lag_bytes: int  # log bytes not indexed yet
    gaps: list[list[int]]  # [[first, last], ...] of seqs never seen, oldest first
    missing: int  # events inside the gaps
    rejected: int  # lines rejected as malformed
    incidents: int  # truncated, replaced or lost log files, chain breaks
    last_indexed_at: str | None  # ISO 8601 time of the last commit that indexed a row
    running: bool  # whether an indexer holds the data directory's lock now
    pid: int | None  # of the running indexer
    schema_version: int  # of audit.db, 0 when there is none yet


class _LogFile(NamedTuple):
    key: str | None  # None while its first line is not complete
    size: int


def read_status(data_dir: Path, *, conn: sqlite3.Connection | None = None) -> Status:
    """Return counters, gaps, lag and whether an indexer runs, without scanning any table.

    Read-only: works on a missing database (creating nothing) and on one where nothing is
    indexed yet. ``conn`` is an open connection to audit.db to read through instead of
    opening one.
    """
    data = DataDir(Path(data_dir))
    counters: dict[str, int] = {}
    gaps: list[list[int]] = []
    offsets: dict[str, int] = {}
    version = 0
    files = _current_files(data.log_dir)
    own = False
    if conn is None and data.audit_db.exists():
        conn = connect(data.audit_db, readonly=True, timeout=5.0)
        own = True
    try:
        if conn is not None:
            try:
                version = schema_version(conn)
                counters = dict(conn.execute("SELECT name, value FROM indexer_state").fetchall())
                gaps = [
                    [first, last]
                    for first, last in conn.execute(
                        "SELECT first_seq, last_seq FROM gaps ORDER BY first_seq"
                    )
                ]
                offsets = _offsets(conn, files)
            except sqlite3.OperationalError as error:
                # A database not created or migrated yet reads as empty.
                log.debug("audit database not ready: %s", error)
    finally:
        if own and conn is not None:
            conn.close()
    running = is_locked(data.root)
    stamp = counters.get("last_indexed_at", 0)
    return Status(
        indexed=counters.get("indexed", 0),
        last_seq=counters.get("last_seq", 0),
        next_seq=counters.get("next_seq", 1),
        lag_bytes=_lag_bytes(files, offsets),
        gaps=gaps,
        missing=sum(last - first + 1 for first, last in gaps),
        rejected=counters.get("rejected", 0),
        incidents=counters.get("incidents", 0),
        last_indexed_at=(
            datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="milliseconds")
            if stamp
            else None
        ),
        running=running,
        pid=holder_pid(data.root) if running else None,
        schema_version=version,
    )


def _current_files(log_dir: Path) -> list[_LogFile]:
    """Return the key and size of each log file present now."""
    found: list[_LogFile] = []
    for path in list_log_files(log_dir):
        try:
            # Never through a link (the indexer skips those too) nor into a FIFO.
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            continue  # rotated away between listing and opening
        except OSError as error:
            if error.errno == errno.ELOOP:
                continue
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            found.append(_LogFile(file_key(fd, st.st_ino), st.st_size))
        finally:
            os.close(fd)
    return found


def _offsets(conn: sqlite3.Connection, files: list[_LogFile]) -> dict[str, int]:
    """How far the indexer has read each of ``files`` it knows, by key."""
    offsets: dict[str, int] = {}
    for key, _size in files:
        if key is None:
            continue
        row = conn.execute('SELECT "offset" FROM log_files WHERE key = ?', (key,)).fetchone()
        if row is not None:
            offsets[key] = int(row[0])
    return offsets


def _lag_bytes(files: list[_LogFile], offsets: dict[str, int]) -> int:
    lag = 0
    seen: set[str] = set()
    for key, size in files:
        if key is not None and key in seen:
            continue  # the same file under two names, mid-rename or mid-copy
        if key is not None:
            seen.add(key)
        lag += max(0, size - offsets.get(key, 0) if key is not None else size)
    return lag
