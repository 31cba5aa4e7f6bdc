"""Panel accounts and failed-login throttling, kept in <data>/accounts.db.

The file is separate from audit.db, which only the indexer writes. Throttling lives in
the same file so that every gunicorn worker sees the same failures.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

__all__ = [
    "ROLES",
    "Account",
    "AccountError",
    "Accounts",
    "THROTTLE_LIMIT",
    "THROTTLE_WINDOW",
]

log = logging.getLogger(__name__)

ROLES = ("admin", "viewer")
THROTTLE_LIMIT = 5  # failures ...
THROTTLE_WINDOW = 15 * 60  # ... per this many seconds, per username and per IP
MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# Checked when the username does not exist, so a miss costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone", method="scrypt")

_SCHEMA = """
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
"""


class AccountError(ValueError):
    """An account operation that cannot be done, with a message for the person asking."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    email: str | None
    role: str
    session_version: int
    created: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def as_user(self) -> dict[str, object]:
        """The writer's user object for events this account causes."""
        return {"id": self.id, "username": self.username, "email": self.email}


class Accounts:
    """The accounts file: create, verify, change passwords, throttle failed logins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One connection per thread, kept: every request looks its account up, and opening
        # a connection costs more than the query.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file holds password hashes: readable by its owner only. SQLite gives its
        # journal the same mode.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if os.fstat(descriptor).st_mode & 0o077:  # made by an older version or by hand
                log.warning("%s was readable by others; making it 0600", path)
                os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
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

    # -- accounts ----------------------------------------------------------------------

    def create(
        self, username: str, password: str, role: str = "admin", email: str | None = None
    ) -> Account:
        if _USERNAME.fullmatch(username) is None:
            raise AccountError(
                "a username is 1 to 64 letters, digits or . _ @ - and starts with a letter or digit"
            )
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        _check_password(password)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT INTO accounts (username, email, password_hash, role, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        username,
                        email or None,
                        generate_password_hash(password, method="scrypt"),
                        role,
                        created,
                    ),
                )
        except sqlite3.IntegrityError:
            raise AccountError(f"an account named {username!r} already exists") from None
        account = self.by_username(username)
        assert account is not None
        return account

    def set_password(self, username: str, password: str) -> Account:
        """Change the password; every session of the account signed before this ends."""
        _check_password(password)
        with self._connect() as conn:
            changed = conn.execute(
                "UPDATE accounts SET password_hash = ?, session_version = session_version + 1 "
                "WHERE username = ?",
                (generate_password_hash(password, method="scrypt"), username),
            ).rowcount
        if not changed:
            raise AccountError(f"no account named {username!r}")
        account = self.by_username(username)
        assert account is not None
        return account

    def get(self, account_id: int) -> Account | None:
        return self._one("id = ?", account_id)

    def by_username(self, username: str) -> Account | None:
        return self._one("username = ?", username)

    def all(self) -> list[Account]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, username, email, role, session_version, created FROM accounts "
                "ORDER BY username"
            ).fetchall()
        return [Account(*row) for row in rows]

    def has_admin(self) -> bool:
        with self._connect() as conn:
            return (
                conn.execute("SELECT 1 FROM accounts WHERE role = 'admin' LIMIT 1").fetchone()
                is not None
            )

    def verify(self, username: str, password: str) -> Account | None:
        """Return the account when the password is right, else None, in about the same time."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT id, password_hash FROM accounts WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            check_password_hash(_DUMMY_HASH, password)
            return None
        if not check_password_hash(row[1], password):
            return None
        return self.get(int(row[0]))

    def _one(self, condition: str, value: object) -> Account | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT id, username, email, role, session_version, created FROM accounts "  # noqa: S608
                f"WHERE {condition}",
                (value,),
            ).fetchone()
        return Account(*row) if row else None

    # -- sessions ----------------------------------------------------------------------

    def end_session(self, sid: str, until: float) -> None:
        """Remember a logged-out session id until its cookie would have expired anyway."""
        now = time.time()
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO ended_sessions (sid, until) VALUES (?, ?)", (sid, until)
            )
            conn.execute("DELETE FROM ended_sessions WHERE until < ?", (now,))

    def session_ended(self, sid: str) -> bool:
        with self._connect() as conn:
            return (
                conn.execute("SELECT 1 FROM ended_sessions WHERE sid = ?", (sid,)).fetchone()
                is not None
            )

    # -- throttling --------------------------------------------------------------------

    def begin_attempt(self, username: str, ip: str, now: float | None = None) -> int | None:
        """Count a login attempt as failed unless throttled; return the seconds to wait, or None.

        The check and the count are one write transaction, so parallel attempts (other
        threads, other workers) cannot all pass before any is counted. A successful login
        takes it back with ``clear_failures``.
        """
        now = time.time() if now is None else now
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            wait = self._retry_after(conn, username, ip, now)
            if wait is None:
                self._record_failure(conn, username, ip, now)
        return wait

    def retry_after(self, username: str, ip: str, now: float | None = None) -> int | None:
        """Seconds until another attempt is allowed, or None when the username and IP may try."""
        with self._connect() as conn:
            return self._retry_after(conn, username, ip, time.time() if now is None else now)

    @staticmethod
    def _retry_after(conn: sqlite3.Connection, username: str, ip: str, now: float) -> int | None:
        since = now - THROTTLE_WINDOW
        waits = []
        for column, value in (("username", username), ("ip", ip)):
            rows = conn.execute(
                f"SELECT at FROM login_failures WHERE {column} = ? AND at > ? "  # noqa: S608
                "ORDER BY at DESC LIMIT ?",
                (value, since, THROTTLE_LIMIT),
            ).fetchall()
            if len(rows) >= THROTTLE_LIMIT:
                # Allowed again when the oldest of the last LIMIT failures leaves the window.
                waits.append(rows[-1][0] + THROTTLE_WINDOW - now)
        if not waits:
            return None
        return max(1, int(max(waits) + 0.999))

    def record_failure(self, username: str, ip: str, now: float | None = None) -> None:
        with self._connect() as conn:
            self._record_failure(conn, username, ip, time.time() if now is None else now)

    @staticmethod
    def _record_failure(conn: sqlite3.Connection, username: str, ip: str, now: float) -> None:
        conn.execute(
            "INSERT INTO login_failures (username, ip, at) VALUES (?, ?, ?)", (username, ip, now)
        )
        conn.execute("DELETE FROM login_failures WHERE at < ?", (now - THROTTLE_WINDOW,))

    def clear_failures(self, username: str) -> None:
        """Forget the failures of a username after a successful login (the IP's stay)."""
        with self._connect() as conn:
            conn.execute("DELETE FROM login_failures WHERE username = ?", (username,))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
