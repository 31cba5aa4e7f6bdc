"""What the indexer has done, read cheaply from its counters: for ``trek-audit status``, the panel.

The keys of ``Status`` are the JSON object ``trek-audit status --json`` prints: a public
interface, so none is ever renamed or removed. Its counters are the totals over every source
(``last_seq`` and ``next_seq``: those of "local", whose seq they always were); ``sources``
has each source's own.
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

from trek_audit.layout import LOCAL_SOURCE, DataDir

from .indexer_lock import holder_pid, is_locked
from .log_files import file_key, list_log_files, list_sources
from .schema import connect, schema_version

__all__ = ["SourceStatus", "Status", "read_status"]

log = logging.getLogger(__name__)


class SourceStatus(TypedDict):
    """One source's part of the status: "local" (<data>/logs) or a directory of sources/."""

    name: str
    indexed: int  # rows of this source in audit_log
    last_seq: int  # the highest seq indexed (each source has its own seq)
    next_seq: int  # the seq the indexer expects next
    lag_bytes: int  # bytes of its log files not indexed yet
    gaps: list[list[int]]  # [[first, last], ...] of seqs never seen, oldest first
    missing: int  # events inside the gaps
    rejected: int  # lines rejected as malformed
    incidents: int  # truncated, replaced or lost log files, chain breaks, reused ids
    duplicates_dropped: int  # identical lines read again (a shipper re-reading), not indexed
    last_indexed_at: str | None  # ISO 8601 time of the last commit that indexed a row of it


class Status(TypedDict):
    """The indexer's state, as ``read_status`` reports it."""

    indexed: int  # rows in audit_log
    last_seq: int  # the highest seq indexed of "local"
    next_seq: int  # the seq the indexer expects next in "local"
    lag_bytes: int  # log bytes not indexed yet, over every source
    gaps: list[list[int]]  # every source's gaps, "local" first (see sources for whose)
    missing: int  # events inside the gaps
    rejected: int  # lines rejected as malformed
    incidents: int  # truncated, replaced or lost log files, chain breaks
    duplicates_dropped: int  # identical lines read again, over every source
    last_indexed_at: str | None  # ISO 8601 time of the last commit that indexed a row
    running: bool  # whether an indexer holds the data directory's lock now
    pid: int | None  # of the running indexer
    schema_version: int  # of audit.db, 0 when there is none yet
    sources: list[SourceStatus]  # "local" first, then by name


class _LogFile(NamedTuple):
    key: str | None  # None while its first line is not complete
    size: int


class _Counters(NamedTuple):
    indexed: int = 0
    last_seq: int = 0
    next_seq: int = 1
    rejected: int = 0
    incidents: int = 0
    duplicates_dropped: int = 0
    last_indexed_at: int = 0  # Unix milliseconds, 0 never


_SOURCE_COUNTERS = (
    "SELECT name, indexed, last_seq, next_seq, rejected, incidents, duplicates_dropped, "
    "last_indexed_at FROM sources"
)


def read_status(data_dir: Path, *, conn: sqlite3.Connection | None = None) -> Status:
    """Return counters, gaps, lag and whether an indexer runs, without scanning any table.

    Read-only: works on a missing database (creating nothing) and on one where nothing is
    indexed yet. ``conn`` is an open connection to audit.db to read through instead of
    opening one.
    """
    data = DataDir(Path(data_dir))
    totals: dict[str, int] = {}
    counters: dict[str, _Counters] = {}
    gaps: dict[str, list[list[int]]] = {}
    offsets: dict[tuple[str, str], int] = {}
    version = 0
    on_disk = {source.name: _current_files(source.log_dir) for source in list_sources(data)[0]}
    own = False
    if conn is None and data.audit_db.exists():
        conn = connect(data.audit_db, readonly=True, timeout=5.0)
        own = True
    try:
        if conn is not None:
            try:
                version = schema_version(conn)
                totals = dict(conn.execute("SELECT name, value FROM indexer_state").fetchall())
                counters = _source_counters(conn, version, totals)
                gaps = _gaps(conn, version)
                offsets = _offsets(conn, version, on_disk)
            except sqlite3.OperationalError as error:
                # A database not created or migrated yet reads as empty.
                log.debug("audit database not ready: %s", error)
    finally:
        if own and conn is not None:
            conn.close()
    names = sorted(set(on_disk) | set(counters) | set(gaps) | {LOCAL_SOURCE})
    names.sort(key=lambda name: name != LOCAL_SOURCE)  # "local" first
    sources = [
        _source_status(
            name,
            counters.get(name, _Counters()),
            gaps.get(name, []),
            _lag_bytes(name, on_disk.get(name, []), offsets),
        )
        for name in names
    ]
    every_gap = [gap for source in sources for gap in source["gaps"]]
    running = is_locked(data.root)
    return Status(
        indexed=totals.get("indexed", 0),
        last_seq=totals.get("last_seq", 0),
        next_seq=totals.get("next_seq", 1),
        lag_bytes=sum(source["lag_bytes"] for source in sources),
        gaps=every_gap,
        missing=sum(source["missing"] for source in sources),
        rejected=totals.get("rejected", 0),
        incidents=totals.get("incidents", 0),
        duplicates_dropped=totals.get("duplicates_dropped", 0),
        last_indexed_at=_iso(totals.get("last_indexed_at", 0)),
        running=running,
        pid=holder_pid(data.root) if running else None,
        schema_version=version,
        sources=sources,
    )


def _iso(stamp: int) -> str | None:
    if not stamp:
        return None
    return datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="milliseconds")


def _source_status(name: str, counters: _Counters, gaps: list[list[int]], lag: int) -> SourceStatus:
    return SourceStatus(
        name=name,
        indexed=counters.indexed,
        last_seq=counters.last_seq,
        next_seq=counters.next_seq,
        lag_bytes=lag,
        gaps=gaps,
        missing=sum(last - first + 1 for first, last in gaps),
        rejected=counters.rejected,
        incidents=counters.incidents,
        duplicates_dropped=counters.duplicates_dropped,
        last_indexed_at=_iso(counters.last_indexed_at),
    )


def _source_counters(
    conn: sqlite3.Connection, version: int, totals: dict[str, int]
) -> dict[str, _Counters]:
    if version >= 5:
        return {row[0]: _Counters(*row[1:]) for row in conn.execute(_SOURCE_COUNTERS)}
    # Before version 5 there was one source, and the totals were its counters.
    return {
        LOCAL_SOURCE: _Counters(
            totals.get("indexed", 0),
            totals.get("last_seq", 0),
            totals.get("next_seq", 1),
            totals.get("rejected", 0),
            totals.get("incidents", 0),
            0,
            totals.get("last_indexed_at", 0),
        )
    }


def _gaps(conn: sqlite3.Connection, version: int) -> dict[str, list[list[int]]]:
    query = (
        "SELECT source, first_seq, last_seq FROM gaps ORDER BY source, first_seq"
        if version >= 5
        else f"SELECT '{LOCAL_SOURCE}', first_seq, last_seq FROM gaps ORDER BY first_seq"  # noqa: S608
    )
    gaps: dict[str, list[list[int]]] = {}
    for source, first, last in conn.execute(query):
        gaps.setdefault(source, []).append([first, last])
    return gaps


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


def _offsets(
    conn: sqlite3.Connection, version: int, on_disk: dict[str, list[_LogFile]]
) -> dict[tuple[str, str], int]:
    """How far the indexer has read each file present, by source and key."""
    offsets: dict[tuple[str, str], int] = {}
    for source, files in on_disk.items():
        for key, _size in files:
            if key is None:
                continue
            if version >= 5:
                row = conn.execute(
                    'SELECT "offset" FROM log_files WHERE source = ? AND key = ?', (source, key)
                ).fetchone()
            elif source == LOCAL_SOURCE:
                row = conn.execute(
                    'SELECT "offset" FROM log_files WHERE key = ?', (key,)
                ).fetchone()
            else:
                row = None
            if row is not None:
                offsets[source, key] = int(row[0])
    return offsets


def _lag_bytes(source: str, files: list[_LogFile], offsets: dict[tuple[str, str], int]) -> int:
    lag = 0
    seen: set[str] = set()
    for key, size in files:
        if key is not None and key in seen:
            continue  # the same file under two names, mid-rename or mid-copy
        if key is not None:
            seen.add(key)
        lag += max(0, size - offsets.get((source, key), 0) if key is not None else size)
    return lag
