"""Logging in: throttling, the panel's own events, proxies, password changes, accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trek_audit.indexer import Indexer
from trek_audit.webui import create_app
from trek_audit.webui.throttle import ADDRESS_LIMIT, PAIR_LIMIT
from trek_audit.writer.line import decode

from .webui_support import ADMIN, VIEWER, csrf_from, json_body, log_in, state_of


def logged_events(data_dir: Path) -> list[dict[str, Any]]:
    log = data_dir / "logs" / "trek.log"
    if not log.exists():
        return []
    return [dict(decode(line)) for line in log.read_bytes().splitlines()]


def test_wrong_password_is_401_and_recorded_without_the_password(
    client: FlaskClient, data_dir: Path
) -> None:
    response = log_in(client, "admin", "not-the-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    [event] = logged_events(data_dir)
    assert event["action"] == "user.login_failed"
    assert event["user"] is None
    assert event["details"]["username"] == "admin"
    assert "not-the-password" not in (data_dir / "logs" / "trek.log").read_text()


def test_successful_login_is_recorded_with_the_account(client: FlaskClient, data_dir: Path) -> None:
    log_in(client, *ADMIN)
    [event] = logged_events(data_dir)
    assert event["action"] == "user.login"
    assert event["user"]["username"] == "admin"
    assert event["user"]["email"] == "admin@example.com"
    assert event["ip"] == "127.0.0.1"


def test_five_failures_of_a_username_from_one_address_give_429_with_retry_after(
    client: FlaskClient,
) -> None:
    for attempt in range(PAIR_LIMIT):
        response = log_in(client, "admin", f"wrong-{attempt}", REMOTE_ADDR="198.51.100.7")
        assert response.status_code == 401
    response = log_in(client, *ADMIN, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


def test_failures_from_one_address_up_to_its_limit_give_429_for_any_username(
    client: FlaskClient,
) -> None:
    for attempt in range(ADDRESS_LIMIT):
        assert log_in(client, f"nobody{attempt}", "whatever-pw").status_code == 401
    response = log_in(client, *VIEWER)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


def test_an_attempt_counts_against_the_limit_while_its_password_is_checked(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel attempts cannot all pass the throttle before any of them is counted."""
    state = state_of(app)
    for attempt in range(4):
        assert log_in(client, "admin", f"wrong-{attempt}").status_code == 401
    seen_while_checking: list[int | None] = []
    verify = state.accounts.verify

    def verify_and_look(username: str, password: str) -> object:
        seen_while_checking.append(state.throttle.retry_after(username, "127.0.0.1"))
        return verify(username, password)

    monkeypatch.setattr(state.accounts, "verify", verify_and_look)
    assert log_in(client, "admin", "wrong-4").status_code == 401
    [wait] = seen_while_checking
    assert wait is not None and wait > 0
    monkeypatch.undo()
    # A right password still signs in below the limit, and clears the count of its address.
    for attempt in range(PAIR_LIMIT - 1):
        assert (
            log_in(client, "admin", f"again-{attempt}", REMOTE_ADDR="198.51.100.50").status_code
            == 401
        )
    assert log_in(app.test_client(), *ADMIN, REMOTE_ADDR="198.51.100.50").status_code == 302
    assert state.throttle.retry_after("admin", "198.51.100.50") is None
    assert log_in(client, "admin", "once-more", REMOTE_ADDR="198.51.100.50").status_code == 401


@pytest.mark.parametrize("variant", [" admin", "admin\t", "ADMIN", "Admin"])
def test_username_variants_do_not_get_around_the_throttle(
    client: FlaskClient, variant: str
) -> None:
    for attempt in range(PAIR_LIMIT):
        response = log_in(client, "admin", f"wrong-{attempt}", REMOTE_ADDR="198.51.100.9")
        assert response.status_code == 401
    # Spaces are trimmed, so the variant is throttled; another case is another (unknown) name.
    response = log_in(client, variant, ADMIN[1], REMOTE_ADDR="198.51.100.9")
    assert response.status_code == (429 if variant.strip() == "admin" else 401)


def test_a_spoofed_forwarded_for_does_not_get_around_the_throttle(client: FlaskClient) -> None:
    """Without TRUST_PROXY the header is anyone's to write: the socket's address counts."""
    for attempt in range(PAIR_LIMIT):
        response = log_in(
            client, "viewer", f"wrong-{attempt}", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}"
        )
        assert response.status_code == 401
    response = log_in(client, *VIEWER, HTTP_X_FORWARDED_FOR="203.0.113.200")
    assert response.status_code == 429


def test_throttling_is_shared_between_app_instances(app: Flask, environ: dict[str, str]) -> None:
    """Two gunicorn workers are two apps over one accounts.db."""
    other = create_app(environ)
    try:
        for attempt in range(5):
            assert log_in(app.test_client(), "admin", f"bad-{attempt}").status_code == 401
        assert log_in(other.test_client(), *ADMIN).status_code == 429
    finally:
        state_of(other).close()


def test_the_first_refused_attempt_of_an_address_is_recorded_at_once_as_throttled(
    client: FlaskClient, data_dir: Path
) -> None:
    for attempt in range(PAIR_LIMIT + 1):
        log_in(client, "admin", f"bad-{attempt}")
    events = logged_events(data_dir)
    assert [e["action"] for e in events] == ["user.login_failed"] * PAIR_LIMIT + [
        "user.login_throttled"
    ]
    refused = events[-1]
    assert (refused["user"], refused["ip"]) == (None, "127.0.0.1")
    assert refused["details"]["attempts"] == 1
    assert refused["details"]["usernames"] == {"admin": 1}


@pytest.mark.parametrize(
    ("trust_proxy", "expected"),
    [("", "10.0.0.2"), ("false", "10.0.0.2"), ("true", "203.0.113.9"), ("1", "203.0.113.9")],
    ids=["unset", "false", "true", "one-hop"],
)
def test_recorded_ip_follows_trust_proxy(
    environ: dict[str, str], data_dir: Path, trust_proxy: str, expected: str
) -> None:
    app = create_app({**environ, "TRUST_PROXY": trust_proxy})
    try:
        client = app.test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        client.post(
            "/login",
            data={"username": "x", "password": "y", "csrf_token": token},
            headers={"X-Forwarded-For": "203.0.113.9"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
    finally:
        state_of(app).close()
    [event] = logged_events(data_dir)
    assert event["action"] == "user.login_failed"
    assert event["ip"] == expected


def test_password_change_ends_other_sessions_and_is_recorded(app: Flask, data_dir: Path) -> None:
    first, second = app.test_client(), app.test_client()
    log_in(first, *ADMIN)
    log_in(second, *ADMIN)
    token = csrf_from(first.get("/account/password").get_data(as_text=True))
    response = first.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": ADMIN[1],
            "new_password": "a-brand-new-password",
            "confirm_password": "a-brand-new-password",
        },
    )
    assert response.status_code == 302
    assert first.get("/admin/audit").status_code == 200
    assert second.get("/admin/audit").status_code == 302  # signed before the change
    assert logged_events(data_dir)[-1]["action"] == "user.password_change"
    assert log_in(app.test_client(), "admin", "a-brand-new-password").status_code == 302


def test_guessing_the_current_password_is_throttled_like_a_login(
    viewer_client: FlaskClient,
) -> None:
    """A borrowed session must not become a way to guess the password without limit."""
    token = csrf_from(viewer_client.get("/account/password").get_data(as_text=True))

    def change(current: str) -> Any:
        return viewer_client.post(
            "/account/password",
            data={
                "csrf_token": token,
                "current_password": current,
                "new_password": "a-brand-new-password",
                "confirm_password": "a-brand-new-password",
            },
        )

    for attempt in range(5):
        assert change(f"guess-{attempt}").status_code == 400
    response = change(VIEWER[1])
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert log_in(viewer_client.application.test_client(), *VIEWER).status_code == 429


def test_password_change_needs_the_current_password(admin_client: FlaskClient) -> None:
    token = csrf_from(admin_client.get("/account/password").get_data(as_text=True))
    response = admin_client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": "wrong",
            "new_password": "x" * 12,
            "confirm_password": "x" * 12,
        },
    )
    assert response.status_code == 400


def test_admin_creates_an_account_and_it_is_recorded(
    admin_client: FlaskClient, data_dir: Path
) -> None:
    token = csrf_from(admin_client.get("/admin/accounts").get_data(as_text=True))
    response = admin_client.post(
        "/admin/accounts",
        data={
            "csrf_token": token,
            "username": "carol",
            "role": "viewer",
            "email": "carol@example.com",
            "password": "carol-password",
            "confirm_password": "carol-password",
        },
    )
    assert response.status_code == 200
    assert "carol" in response.get_data(as_text=True)
    event = logged_events(data_dir)[-1]
    assert event["action"] == "admin.user_create"
    assert event["user"]["username"] == "admin"
    assert event["details"] == {"username": "carol", "role": "viewer", "id": 3}


def test_duplicate_account_is_refused(admin_client: FlaskClient) -> None:
    token = csrf_from(admin_client.get("/admin/accounts").get_data(as_text=True))
    response = admin_client.post(
        "/admin/accounts",
        data={
            "csrf_token": token,
            "username": "viewer",
            "role": "viewer",
            "password": "another-password",
            "confirm_password": "another-password",
        },
    )
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)


def test_panel_events_show_up_in_its_own_table_after_indexing(app: Flask, data_dir: Path) -> None:
    client = app.test_client()
    log_in(client, "admin", "wrong-password")
    log_in(client, *ADMIN)
    client.get("/admin/audit/export.csv").get_data()
    Indexer(data_dir).run_once()
    entries = json_body(client.get("/api/admin/audit"))["entries"]
    assert [e["action"] for e in entries] == ["audit.export", "user.login", "user.login_failed"]
    assert entries[1]["user"]["username"] == "admin"
    assert entries[2]["user"] is None
    html = client.get("/admin/audit").get_data(as_text=True)
    assert html.index("audit.export") < html.index("user.login_failed</code>")


def test_an_unknown_username_costs_a_password_hash_like_a_known_one(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timing difference tells which usernames exist."""
    import trek_audit.webui.accounts as accounts

    hashed: list[str] = []
    real = accounts.check_password_hash

    def counting(pwhash: str, password: str) -> bool:
        hashed.append(pwhash.split("$", 1)[0])  # method and cost, e.g. scrypt:32768:8:1
        return real(pwhash, password)

    monkeypatch.setattr(accounts, "check_password_hash", counting)
    assert (
        log_in(client, "no-such-user", "some-password", REMOTE_ADDR="192.0.2.1").status_code == 401
    )
    assert log_in(client, "admin", "some-password", REMOTE_ADDR="192.0.2.2").status_code == 401
    assert len(hashed) == 2 and hashed[0] == hashed[1] and hashed[0].startswith("scrypt:")
