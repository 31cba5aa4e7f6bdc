"""<data>/accounts.db: the panel's own file: accounts, API tokens, the login throttle, sessions.

The file is separate from audit.db, which only the indexer writes. Throttling and ended
sessions live in it too, so that every gunicorn worker sees the same failures and logouts.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from trek_audit.layout import PRIVATE_FILE_MODE
from trek_audit.store.files import NotARegularFile, open_private

__all__ = ["SCHEMA", "AccountsDB"]

log = logging.getLogger(__name__)

# Any permission bit beyond the owner's.
_OTHERS_BITS = 0o777 & ~PRIVATE_FILE_MODE

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    session_version INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    ip TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_username ON login_failures (username, at);
CREATE INDEX IF NOT EXISTS login_failures_ip ON login_failures (ip, at);
CREATE TABLE IF NOT EXISTS ended_sessions (
    sid TEXT PRIMARY KEY,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    last_used TEXT,
    revoked TEXT
);
"""


class AccountsDB:
    """accounts.db, created private (it holds password hashes), with one connection per thread.

    ``connect()`` yields this thread's connection inside a transaction. Use it as a context
    manager, or call ``close()``, to close every thread's connection; the next use reopens.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # Kept per thread: every request looks its account up, and opening a connection
        # costs more than the query.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        _make_private(path)
        with self.connect() as conn:
            conn.executescript(SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, in a transaction committed when the block ends."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        with conn:
            yield conn

    def close(self) -> None:
        """Close every thread's connection (the next use opens a new one)."""
        with self._connections_lock:
            connections, self._connections = self._connections, []
        self._local = threading.local()
        for conn in connections:
            conn.close()

    def __enter__(self) -> AccountsDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _make_private(path: Path) -> None:
    """Create the file readable by its owner only (SQLite gives its journal the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never through a link (its target would be chmod'ed and written): NotARegularFile. The
    # -journal SQLite makes beside it must be no link either.
    journal = path.with_name(path.name + "-journal")
    if journal.is_symlink():
        raise NotARegularFile(journal, "a symbolic link")
    descriptor = open_private(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        if os.fstat(descriptor).st_mode & _OTHERS_BITS:  # made by an older version or by hand
            log.warning("%s was readable by others; making it %04o", path, PRIVATE_FILE_MODE)
            os.fchmod(descriptor, PRIVATE_FILE_MODE)
    finally:
        os.close(descriptor)
