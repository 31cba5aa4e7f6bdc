"""The login throttle: failed attempts counted per username and address, refusals in aggregate.

Three limits over the last THROTTLE_WINDOW seconds, all kept in accounts.db so that every
gunicorn worker sees the same failures:

- PAIR_LIMIT failures of one username from one address: the guesser's own limit;
- ADDRESS_LIMIT failures from one address, whatever the usernames: no spraying of names;
- USERNAME_LIMIT failures of one username from anywhere, much higher: a guesser with many
  addresses is slowed down, yet a handful of wrong passwords from one address cannot lock
  the real owner out everywhere.

An address is the client's IP, or for IPv6 its /64 network: one subscriber usually holds a
whole /64, so counting single IPv6 addresses would give it 2^64 fresh starts.

A refused attempt costs no password hash and writes no event of its own: the refusals are
counted per address and username and reported as one ``user.login_throttled`` event per
address at most every REPORT_INTERVAL seconds, so a client hammering the form grows the audit
log by a bounded amount whatever its request rate.
"""

from __future__ import annotations

import ipaddress
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .accounts_db import AccountsDB

__all__ = [
    "ADDRESS_LIMIT",
    "PAIR_LIMIT",
    "REPORTED_USERNAMES",
    "REPORT_INTERVAL",
    "THROTTLE_WINDOW",
    "USERNAME_LIMIT",
    "LoginThrottle",
    "Refusals",
    "throttle_address",
]

THROTTLE_WINDOW = 15 * 60  # seconds over which failures count
PAIR_LIMIT = 5
ADDRESS_LIMIT = 20
USERNAME_LIMIT = 100
REPORT_INTERVAL = 60  # seconds between two reports of one address's refusals
# The most tried usernames a report names (with their counts); the rest are only counted, so
# that a report stays a short line whatever names a client sends.
REPORTED_USERNAMES = 5
_USERNAME_CHARS = 64  # the longest username an account can have
# Reports written per request at most: a sweep after a quiet spell must not make one login
# wait for hundreds of appends.
_REPORTS_PER_SWEEP = 20

# Refused attempts not reported yet, and when each address was last reported.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS login_refusals (
    address TEXT NOT NULL,
    username TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    PRIMARY KEY (address, username)
);
CREATE TABLE IF NOT EXISTS login_refusal_reports (
    address TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""

# (condition, limit): each limit counts the failures that match its condition.
_LIMITS = (
    ("username = :username AND ip = :address", PAIR_LIMIT),
    ("ip = :address", ADDRESS_LIMIT),
    ("username = :username", USERNAME_LIMIT),
)


def throttle_address(ip: str) -> str:
    """The address a limit counts: an IPv4 address as it is, an IPv6 address as its /64."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # "unknown": no address to group
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


@dataclass(frozen=True)
class Refusals:
    """The attempts from one address that the throttle refused since its last report."""

    address: str
    attempts: int
    usernames: dict[str, int]  # the most tried ones (at most REPORTED_USERNAMES), by count
    distinct_usernames: int
    first_at: float
    last_at: float

    def details(self) -> dict[str, Any]:
        """The ``details`` of its ``user.login_throttled`` event."""
        return {
            "attempts": self.attempts,
            "usernames": self.usernames,
            "distinct_usernames": self.distinct_usernames,
            "first": _iso(self.first_at),
            "last": _iso(self.last_at),
        }


class LoginThrottle:
    """The login_failures table, and the refusals waiting to be reported.

    ``clock`` gives the time (seconds since the epoch); tests replace it to move time on.
    """

    def __init__(self, db: AccountsDB, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        with db.connect() as conn:
            conn.executescript(_SCHEMA)

    def begin_attempt(self, username: str, ip: str, now: float | None = None) -> int | None:
        """Count a login attempt as failed unless throttled; return the seconds to wait, or None.

        The check and the count are one write transaction, so parallel attempts (other
        threads, other workers) cannot all pass before any is counted. A successful login
        takes it back with ``clear_failures``. A refused attempt is counted for the next
        report (``report_refusals``), not as a failure: refusals do not prolong the wait.
        """
        now = self.clock() if now is None else now
        address = throttle_address(ip)
        with self.db.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            wait = _retry_after(conn, username, address, now)
            if wait is None:
                _record_failure(conn, username, address, now)
            else:
                _count_refusal(conn, username, address, now)
        return wait

    def retry_after(self, username: str, ip: str, now: float | None = None) -> int | None:
        """Seconds until another attempt is allowed, or None when the username and IP may try."""
        now = self.clock() if now is None else now
        with self.db.connect() as conn:
            return _retry_after(conn, username, throttle_address(ip), now)

    def record_failure(self, username: str, ip: str, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        with self.db.connect() as conn:
            _record_failure(conn, username, throttle_address(ip), now)

    def clear_failures(self, username: str, ip: str) -> None:
        """Forget the failures of a username from this address after it logged in from there.

        Its failures from elsewhere stay: a guesser's count must not restart whenever the
        real owner logs in.
        """
        with self.db.connect() as conn:
            conn.execute(
                "DELETE FROM login_failures WHERE username = ? AND ip = ?",
                (username, throttle_address(ip)),
            )

    def report_refusals(self, record: Callable[[Refusals], bool], now: float | None = None) -> int:
        """Hand ``record`` each address whose refusals are due for a report; return how many.

        An address is due when it has refusals not reported yet and no report in the last
        REPORT_INTERVAL seconds: its first refusal is reported at once, later ones at most
        once per interval. Its refusals are forgotten only once ``record`` returns True, in
        the same transaction, so a report the audit log cannot take is made again later.
        """
        now = self.clock() if now is None else now
        since = now - REPORT_INTERVAL
        with self.db.connect() as conn:
            # A read first: most requests find nothing due and take no write lock.
            if not _due(conn, since, 1):
                return 0
        reported = 0
        with self.db.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            for address in _due(conn, since, _REPORTS_PER_SWEEP):
                if not record(_refusals_of(conn, address)):
                    break
                conn.execute("DELETE FROM login_refusals WHERE address = ?", (address,))
                conn.execute(
                    "INSERT OR REPLACE INTO login_refusal_reports (address, at) VALUES (?, ?)",
                    (address, now),
                )
                reported += 1
            conn.execute(
                "DELETE FROM login_refusal_reports WHERE at <= ? "
                "AND address NOT IN (SELECT address FROM login_refusals)",
                (since,),
            )
        return reported


def _retry_after(conn: sqlite3.Connection, username: str, address: str, now: float) -> int | None:
    keys = {"username": username, "address": address, "since": now - THROTTLE_WINDOW}
    waits = []
    for condition, limit in _LIMITS:
        rows = conn.execute(
            f"SELECT at FROM login_failures WHERE {condition} AND at > :since "  # noqa: S608
            "ORDER BY at DESC LIMIT :limit",
            {**keys, "limit": limit},
        ).fetchall()
        if len(rows) >= limit:
            # Allowed again when the oldest of the last `limit` failures leaves the window.
            waits.append(rows[-1][0] + THROTTLE_WINDOW - now)
    if not waits:
        return None
    return max(1, int(max(waits) + 0.999))


def _record_failure(conn: sqlite3.Connection, username: str, address: str, now: float) -> None:
    conn.execute(
        "INSERT INTO login_failures (username, ip, at) VALUES (?, ?, ?)", (username, address, now)
    )
    conn.execute("DELETE FROM login_failures WHERE at < ?", (now - THROTTLE_WINDOW,))


def _count_refusal(conn: sqlite3.Connection, username: str, address: str, now: float) -> None:
    conn.execute(
        "INSERT INTO login_refusals (address, username, attempts, first_at, last_at) "
        "VALUES (?, ?, 1, ?, ?) ON CONFLICT (address, username) "
        "DO UPDATE SET attempts = attempts + 1, last_at = excluded.last_at",
        (address, username[:_USERNAME_CHARS], now, now),
    )


def _due(conn: sqlite3.Connection, since: float, limit: int) -> list[str]:
    """Addresses with refusals to report and no report after ``since``."""
    rows = conn.execute(
        "SELECT DISTINCT refusal.address FROM login_refusals AS refusal "
        "LEFT JOIN login_refusal_reports AS report ON report.address = refusal.address "
        "WHERE report.at IS NULL OR report.at <= ? LIMIT ?",
        (since, limit),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _refusals_of(conn: sqlite3.Connection, address: str) -> Refusals:
    rows = conn.execute(
        "SELECT username, attempts, first_at, last_at FROM login_refusals WHERE address = ? "
        "ORDER BY attempts DESC, username",
        (address,),
    ).fetchall()
    return Refusals(
        address=address,
        attempts=sum(int(row[1]) for row in rows),
        usernames={str(row[0]): int(row[1]) for row in rows[:REPORTED_USERNAMES]},
        distinct_usernames=len(rows),
        first_at=min(float(row[2]) for row in rows),
        last_at=max(float(row[3]) for row in rows),
    )


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
