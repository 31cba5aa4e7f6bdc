"""What the indexer has done, read cheaply from counters: for ``trek-audit status``, the panel."""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trek_audit.indexer.lock import holder_pid, is_locked
from trek_audit.indexer.schema import connect
from trek_audit.indexer.segments import file_key, list_log_files

__all__ = ["DB_NAME", "LOG_SUBDIR", "read_status"]

log = logging.getLogger(__name__)

DB_NAME = "audit.db"
LOG_SUBDIR = "logs"


def read_status(data_dir: Path, *, conn: sqlite3.Connection | None = None) -> dict[str, Any]:
    """Return counters, gaps, lag and whether an indexer runs, without scanning any table.

    Read-only. Works on a missing database and on one where nothing is indexed yet. Keys:
    ``indexed``, ``last_seq``, ``next_seq``, ``lag_bytes``, ``gaps`` (``[[first, last], ...]``),
    ``missing`` (events inside gaps), ``rejected``, ``incidents``, ``last_indexed_at``
    (ISO 8601 or None), ``running``, ``pid`` (of the running indexer, or None),
    ``schema_version``.
    """
    data_dir = Path(data_dir)
    counters: dict[str, int] = {}
    gaps: list[list[int]] = []
    offsets: dict[str, int] = {}
    version = 0
    files = _current_files(data_dir / LOG_SUBDIR)
    own = False
    db_path = data_dir / DB_NAME
    if conn is None and db_path.exists():
        conn = connect(db_path, readonly=True, timeout=5.0)
        own = True
    try:
        if conn is not None:
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
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
    running = is_locked(data_dir)
    stamp = counters.get("last_indexed_at", 0)
    return {
        "indexed": counters.get("indexed", 0),
        "last_seq": counters.get("last_seq", 0),
        "next_seq": counters.get("next_seq", 1),
        "lag_bytes": _lag_bytes(files, offsets),
        "gaps": gaps,
        "missing": sum(last - first + 1 for first, last in gaps),
        "rejected": counters.get("rejected", 0),
        "incidents": counters.get("incidents", 0),
        "last_indexed_at": (
            datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="milliseconds")
            if stamp
            else None
        ),
        "running": running,
        "pid": holder_pid(data_dir) if running else None,
        "schema_version": version,
    }


def _current_files(log_dir: Path) -> list[tuple[str | None, int]]:
    """Return (key, size) of each log file present now."""
    found: list[tuple[str | None, int]] = []
    for path in list_log_files(log_dir):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # rotated away between listing and opening
        try:
            st = os.fstat(fd)
            found.append((file_key(fd, st.st_ino), st.st_size))
        finally:
            os.close(fd)
    return found


def _offsets(conn: sqlite3.Connection, files: list[tuple[str | None, int]]) -> dict[str, int]:
    offsets: dict[str, int] = {}
    for key, _size in files:
        if key is None:
            continue
        row = conn.execute('SELECT "offset" FROM log_files WHERE key = ?', (key,)).fetchone()
        if row is not None:
            offsets[key] = int(row[0])
    return offsets


def _lag_bytes(files: list[tuple[str | None, int]], offsets: dict[str, int]) -> int:
    lag = 0
    seen: set[str] = set()
    for key, size in files:
        if key is not None and key in seen:
            continue  # the same file under two names, mid-rename or mid-copy
        if key is not None:
            seen.add(key)
        lag += max(0, size - offsets.get(key, 0) if key is not None else size)
    return lag
