"""Opening audit.db: the settings every connection needs, and bringing its schema up to date.

The schema version lives in ``PRAGMA user_version``; ``migrate`` brings any older
database up to ``SCHEMA_VERSION`` one step at a time, each step in one transaction.
Audit rows are permanent: nothing here, or anywhere in the project, deletes them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from .migrations import MIGRATIONS

__all__ = ["SCHEMA_VERSION", "connect", "migrate", "open_database", "schema_version"]

SCHEMA_VERSION = len(MIGRATIONS)


def connect(
    path: str | Path, *, readonly: bool = False, timeout: float = 30.0
) -> sqlite3.Connection:
    """Open the audit database with the settings every connection needs (WAL, busy timeout)."""
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), timeout=timeout, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Eight indexes and the full-text index make an insert touch many pages; a 32 MiB
        # cache (the default is 2 MiB) keeps catch-up from spilling them to the WAL.
        conn.execute("PRAGMA cache_size=-32768")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The version the database is at (0 before the first migration has committed)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration the database lacks; return the resulting version."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"audit database has schema version {version}, newer than this trek-audit "
            f"understands ({SCHEMA_VERSION}); upgrade trek-audit"
        )
    db = sqlite_utils.Database(conn)
    for number in range(version, SCHEMA_VERSION):
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            # Re-check inside the write lock: another process may have migrated meanwhile.
            if schema_version(conn) > number:
                continue
            MIGRATIONS[number](db)
            conn.execute(f"PRAGMA user_version={number + 1}")
    return schema_version(conn)


def open_database(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) the audit database read-write and bring it up to date."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    migrate(conn)
    return conn
