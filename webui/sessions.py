"""Ended sessions: logged-out session ids, refused until their cookie would have expired.

The session cookie is signed, not stored, so logging out cannot delete it from a copy;
the panel remembers the session id instead, in accounts.db, where every worker sees it.
"""

from __future__ import annotations

import time

from .accounts_db import AccountsDB

__all__ = ["EndedSessions"]


class EndedSessions:
    """The ended_sessions table of accounts.db."""

    def __init__(self, db: AccountsDB) -> None:
        self.db = db

    def end(self, sid: str, until: float) -> None:
        """Remember a logged-out session id until ``until``; forget those past theirs."""
        now = time.time()
        with self.db.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO ended_sessions (sid, until) VALUES (?, ?)", (sid, until)
            )
            conn.execute("DELETE FROM ended_sessions WHERE until < ?", (now,))

    def has_ended(self, sid: str) -> bool:
        with self.db.connect() as conn:
            return (
                conn.execute("SELECT 1 FROM ended_sessions WHERE sid = ?", (sid,)).fetchone()
                is not None
            )
