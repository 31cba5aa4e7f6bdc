"""The login throttle: failed attempts counted per username and per IP in accounts.db."""

from __future__ import annotations

import sqlite3
import time

from .accounts_db import AccountsDB

__all__ = ["THROTTLE_LIMIT", "THROTTLE_WINDOW", "LoginThrottle"]

THROTTLE_LIMIT = 5  # failures ...
THROTTLE_WINDOW = 15 * 60  # ... per this many seconds, per username and per IP


class LoginThrottle:
    """The login_failures table: at most THROTTLE_LIMIT failures per THROTTLE_WINDOW seconds.

    Kept in the file rather than in memory so that every gunicorn worker sees the same failures.
    """

    def __init__(self, db: AccountsDB) -> None:
        self.db = db

    def begin_attempt(self, username: str, ip: str, now: float | None = None) -> int | None:
        """Count a login attempt as failed unless throttled; return the seconds to wait, or None.

        The check and the count are one write transaction, so parallel attempts (other
        threads, other workers) cannot all pass before any is counted. A successful login
        takes it back with ``clear_failures``.
        """
        now = time.time() if now is None else now
        with self.db.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            wait = _retry_after(conn, username, ip, now)
            if wait is None:
                _record_failure(conn, username, ip, now)
        return wait

    def retry_after(self, username: str, ip: str, now: float | None = None) -> int | None:
        """Seconds until another attempt is allowed, or None when the username and IP may try."""
        with self.db.connect() as conn:
            return _retry_after(conn, username, ip, time.time() if now is None else now)

    def record_failure(self, username: str, ip: str, now: float | None = None) -> None:
        with self.db.connect() as conn:
            _record_failure(conn, username, ip, time.time() if now is None else now)

    def clear_failures(self, username: str) -> None:
        """Forget the failures of a username after a successful login (the IP's stay)."""
        with self.db.connect() as conn:
            conn.execute("DELETE FROM login_failures WHERE username = ?", (username,))


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


def _record_failure(conn: sqlite3.Connection, username: str, ip: str, now: float) -> None:
    conn.execute(
        "INSERT INTO login_failures (username, ip, at) VALUES (?, ?, ?)", (username, ip, now)
    )
    conn.execute("DELETE FROM login_failures WHERE at < ?", (now - THROTTLE_WINDOW,))
