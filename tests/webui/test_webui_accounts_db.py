"""accounts.db: private to its owner, one file for accounts, the login throttle and sessions."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from trek_audit.webui.accounts import Accounts
from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.webui.sessions import EndedSessions
from trek_audit.webui.throttle import PAIR_LIMIT, THROTTLE_WINDOW, LoginThrottle


def test_accounts_file_is_private(tmp_path: Path) -> None:
    # It holds the password hashes.
    with AccountsDB(tmp_path / "accounts.db") as db:
        Accounts(db).create("someone", "a-long-password")
    assert (tmp_path / "accounts.db").stat().st_mode & 0o777 == 0o600


def test_accounts_file_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "accounts.db"
    with AccountsDB(path) as db:
        Accounts(db).create("someone", "a-long-password")
    path.chmod(0o644)
    with AccountsDB(path) as db:
        assert path.stat().st_mode & 0o777 == 0o600
        assert Accounts(db).verify("someone", "a-long-password") is not None


def test_accounts_throttle_and_ended_sessions_keep_their_rows_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.db"
    with AccountsDB(path) as db:
        Accounts(db).create("someone", "a-long-password")
        LoginThrottle(db).record_failure("someone", "192.0.2.1")
        EndedSessions(db).end("a-session-id", time.time() + 60)
    with sqlite3.connect(path) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("accounts", "login_failures", "ended_sessions")
        }
    conn.close()
    assert counts == {"accounts": 1, "login_failures": 1, "ended_sessions": 1}


def test_a_thread_uses_one_connection_for_accounts_throttle_and_sessions(tmp_path: Path) -> None:
    with AccountsDB(tmp_path / "accounts.db") as db:
        opened: list[sqlite3.Connection] = []
        for _ in range(3):
            with db.connect() as conn:
                opened.append(conn)
        assert opened[0] is opened[1] is opened[2]
        in_another_thread: list[sqlite3.Connection] = []

        def look() -> None:
            with db.connect() as conn:
                in_another_thread.append(conn)

        thread = threading.Thread(target=look)
        thread.start()
        thread.join(10)
        assert in_another_thread and in_another_thread[0] is not opened[0]


def test_a_closed_file_reopens_on_next_use(tmp_path: Path) -> None:
    db = AccountsDB(tmp_path / "accounts.db")
    accounts, sessions = Accounts(db), EndedSessions(db)
    accounts.create("someone", "a-long-password")
    db.close()
    try:
        assert accounts.by_username("someone") is not None
        assert not sessions.has_ended("never-ended")
    finally:
        db.close()


def test_throttle_waits_until_the_oldest_counted_failure_leaves_the_window(tmp_path: Path) -> None:
    with AccountsDB(tmp_path / "accounts.db") as db:
        throttle = LoginThrottle(db)
        for n in range(PAIR_LIMIT):
            assert throttle.begin_attempt("someone", "192.0.2.1", now=1000.0 + n) is None
        assert throttle.begin_attempt("someone", "192.0.2.1", now=1010.0) == THROTTLE_WINDOW - 10
        assert throttle.retry_after("someone", "192.0.2.1", now=1000.0 + THROTTLE_WINDOW) is None


def test_an_ended_session_is_forgotten_once_its_cookie_has_expired(tmp_path: Path) -> None:
    with AccountsDB(tmp_path / "accounts.db") as db:
        sessions = EndedSessions(db)
        sessions.end("old", until=time.time() - 1)
        sessions.end("current", until=time.time() + 60)  # ending one sweeps the expired
        assert sessions.has_ended("current")
        assert not sessions.has_ended("old")
