"""The login throttle: no lockout from elsewhere, and refusals that cannot flood the audit log."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.webui.throttle import (
    ADDRESS_LIMIT,
    PAIR_LIMIT,
    REPORT_INTERVAL,
    REPORTED_USERNAMES,
    USERNAME_LIMIT,
    LoginThrottle,
    Refusals,
    throttle_address,
)
from trek_audit.writer.line import decode

from .webui_support import ADMIN, csrf_from, log_in, state_of


class Clock:
    """A clock the test moves on by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def logged_events(data_dir: Path) -> list[dict[str, Any]]:
    log = data_dir / "logs" / "trek.log"
    return [dict(decode(line)) for line in log.read_bytes().splitlines()] if log.exists() else []


def test_failures_from_another_address_do_not_stop_a_correct_login(client: FlaskClient) -> None:
    for attempt in range(ADDRESS_LIMIT + 5):
        response = log_in(client, "admin", f"wrong-{attempt}", REMOTE_ADDR="127.0.0.2")
        assert response.status_code == (401 if attempt < PAIR_LIMIT else 429)
    assert log_in(client, *ADMIN, REMOTE_ADDR="127.0.0.2").status_code == 429
    assert log_in(client, *ADMIN, REMOTE_ADDR="127.0.0.1").status_code == 302


def test_a_username_is_throttled_everywhere_only_after_many_more_failures(
    app: Flask, client: FlaskClient
) -> None:
    """Guessing from many addresses is slowed down, at a limit far above one address's."""
    throttle = state_of(app).throttle
    for n in range(USERNAME_LIMIT - 1):
        assert throttle.begin_attempt("admin", f"198.51.100.{n}") is None
    assert log_in(client, *ADMIN, REMOTE_ADDR="192.0.2.1").status_code == 302
    assert throttle.begin_attempt("admin", "203.0.113.1") is None
    response = log_in(app.test_client(), *ADMIN, REMOTE_ADDR="192.0.2.2")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


def test_the_addresses_of_one_ipv6_network_count_as_one(client: FlaskClient) -> None:
    """A client holding a /64 cannot start afresh by taking another address from it."""
    for attempt in range(PAIR_LIMIT):
        address = f"2001:db8:1:2::{attempt + 1:x}"
        assert log_in(client, "admin", f"wrong-{attempt}", REMOTE_ADDR=address).status_code == 401
    assert log_in(client, *ADMIN, REMOTE_ADDR="2001:db8:1:2:ffff::9").status_code == 429
    assert log_in(client, *ADMIN, REMOTE_ADDR="2001:db8:1:3::1").status_code == 302


@pytest.mark.parametrize(
    ("ip", "address"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
    ids=["ipv4", "ipv6", "ipv4-mapped", "unknown"],
)
def test_a_limit_counts_an_ipv4_address_or_an_ipv6_network(ip: str, address: str) -> None:
    assert throttle_address(ip) == address


def test_hammering_the_login_form_appends_a_bounded_number_of_lines_whose_counts_add_up(
    app: Flask, data_dir: Path
) -> None:
    """2,000 wrong passwords in 200 seconds from one client: not one line per request."""
    clock = Clock()
    state_of(app).throttle.clock = clock
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answers: Counter[int] = Counter()
    attempts = 2000
    for n in range(attempts):
        clock.advance(0.1)
        # Mostly admin, with a new name every third attempt (spraying names costs nothing).
        username = f"guess-{n}" if n % 3 == 0 else "admin"
        response = client.post(
            "/login", data={"username": username, "password": f"no-{n}", "csrf_token": token}
        )
        answers[response.status_code] += 1
    clock.advance(REPORT_INTERVAL)
    client.get("/login")  # any later visit reports the refusals still waiting

    events = logged_events(data_dir)
    failed = [event for event in events if event["action"] == "user.login_failed"]
    throttled = [event for event in events if event["action"] == "user.login_throttled"]
    assert len(events) == len(failed) + len(throttled)
    assert set(answers) == {401, 429}
    assert len(failed) == answers[401] == ADDRESS_LIMIT
    minutes = attempts * 0.1 / 60
    assert len(throttled) <= minutes + 2  # the first refusal at once, then one per minute
    assert sum(event["details"]["attempts"] for event in throttled) == answers[429]
    assert {event["ip"] for event in throttled} == {"127.0.0.1"}
    assert all(event["user"] is None for event in throttled)
    for event in throttled:
        named = event["details"]["usernames"]
        assert len(named) <= REPORTED_USERNAMES
        assert sum(named.values()) <= event["details"]["attempts"]
    assert max(event["details"]["usernames"].get("admin", 0) for event in throttled) > 100


def test_refusals_the_log_cannot_take_are_reported_later(tmp_path: Path) -> None:
    clock = Clock()
    reported: list[Refusals] = []

    def record(refusals: Refusals) -> bool:
        reported.append(refusals)
        return True

    with AccountsDB(tmp_path / "accounts.db") as db:
        throttle = LoginThrottle(db, clock)
        for _ in range(PAIR_LIMIT + 3):
            throttle.begin_attempt("admin", "192.0.2.7")
        assert throttle.report_refusals(lambda _refusals: False) == 0  # the log is full
        assert throttle.report_refusals(record) == 1
        assert [(r.address, r.attempts, r.usernames) for r in reported] == [
            ("192.0.2.7", 3, {"admin": 3})
        ]
        # Reported: nothing more until the next refusal and the end of the interval.
        throttle.begin_attempt("admin", "192.0.2.7")
        assert throttle.report_refusals(record) == 0
        clock.advance(REPORT_INTERVAL)
        assert throttle.report_refusals(record) == 1
    assert [r.attempts for r in reported] == [3, 1]
    assert reported[-1].usernames == {"admin": 1}
