"""The client IP rule, directly and through the Flask helper."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from trek_audit.writer import AuditWriter, client_ip
from trek_audit.writer.request import record_request, request_ip

REMOTE = "10.0.0.9"


@pytest.mark.parametrize(
    ("trust_proxy", "header", "expected"),
    [
        (None, "203.0.113.5", REMOTE),
        ("", "203.0.113.5", REMOTE),
        ("0", "203.0.113.5", REMOTE),
        ("false", "203.0.113.5", REMOTE),
        (False, "203.0.113.5", REMOTE),
        (0, "203.0.113.5", REMOTE),
        ("true", "203.0.113.5", "203.0.113.5"),
        ("1", "198.51.100.1, 203.0.113.5", "203.0.113.5"),
        (True, "198.51.100.1,203.0.113.5", "203.0.113.5"),
        ("2", "198.51.100.1, 203.0.113.5, 192.0.2.7", "203.0.113.5"),
        (2, "forged, 198.51.100.1, 192.0.2.7", "198.51.100.1"),
        ("3", "198.51.100.1, 203.0.113.5, 192.0.2.7", "198.51.100.1"),
        ("3", "203.0.113.5, 192.0.2.7", REMOTE),
        ("1", "", REMOTE),
        ("1", None, REMOTE),
        ("1", "not-an-ip", REMOTE),
        ("1", "203.0.113.5, garbage", REMOTE),
        ("2", "198.51.100.1, <script>, 192.0.2.7", REMOTE),
        ("1", "203.0.113.5:8080", REMOTE),
        ("1", "2001:db8::1", "2001:db8::1"),
        ("1", "2001:DB8:0:0::1", "2001:db8::1"),
        ("1", "[2001:db8::1]", REMOTE),
        ("2", "2001:db8::1, 192.0.2.7", "2001:db8::1"),
        ("1", " 203.0.113.5 ", "203.0.113.5"),
        ("1", "203.0.113.5,,", REMOTE),
    ],
    ids=[
        "unset",
        "empty",
        "zero",
        "false",
        "bool-false",
        "int-zero",
        "true-one-entry",
        "one-hop",
        "bool-true",
        "two-hops",
        "two-hops-ignores-forged-left",
        "three-hops-leftmost",
        "shorter-than-hops",
        "empty-header",
        "no-header",
        "garbage",
        "garbage-rightmost",
        "garbage-at-hop",
        "port",
        "ipv6",
        "ipv6-normalised",
        "ipv6-brackets",
        "ipv6-two-hops",
        "spaces",
        "empty-entries",
    ],
)
def test_client_ip_rule(trust_proxy: object, header: str | None, expected: str) -> None:
    assert client_ip(REMOTE, header, trust_proxy) == expected


def test_without_trust_the_leftmost_entry_is_never_taken() -> None:
    # TREK takes the leftmost entry even without TRUST_PROXY, so any client can forge its IP.
    assert client_ip(REMOTE, "1.2.3.4, 5.6.7.8", None) == REMOTE
    assert client_ip(REMOTE, "1.2.3.4, 5.6.7.8", "1") == "5.6.7.8"


def test_bad_trust_proxy_value_raises() -> None:
    with pytest.raises(ValueError, match="TRUST_PROXY"):
        client_ip(REMOTE, "1.2.3.4", "maybe")
    with pytest.raises(ValueError, match="negative"):
        client_ip(REMOTE, "1.2.3.4", "-1")


@pytest.fixture
def app() -> Flask:
    return Flask(__name__)


def test_flask_helper_records_with_the_remote_address_by_default(
    app: Flask, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUST_PROXY", raising=False)
    with (
        AuditWriter(log_dir) as w,
        app.test_request_context(
            "/login", headers={"X-Forwarded-For": "1.2.3.4"}, environ_base={"REMOTE_ADDR": REMOTE}
        ),
    ):
        event = record_request(
            "user.login", user={"id": 7, "username": "alice"}, details={"m": "pw"}, writer=w
        )
    assert event["ip"] == REMOTE
    assert event["user"] == {"id": 7, "username": "alice", "email": None}
    assert event["details"] == {"m": "pw"}


def test_flask_helper_uses_the_app_config_trust_proxy_and_joins_repeated_headers(
    app: Flask, log_dir: Path
) -> None:
    app.config["TRUST_PROXY"] = 2
    headers = [("X-Forwarded-For", "1.2.3.4, 198.51.100.1"), ("X-Forwarded-For", "192.0.2.7")]
    with (
        AuditWriter(log_dir) as w,
        app.test_request_context("/", headers=headers, environ_base={"REMOTE_ADDR": REMOTE}),
    ):
        assert record_request("trip.create", resource="trip/1", writer=w)["ip"] == "198.51.100.1"


def test_flask_helper_falls_back_to_the_environment_setting(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUST_PROXY", "true")
    with app.test_request_context(
        "/", headers={"X-Forwarded-For": "203.0.113.5"}, environ_base={"REMOTE_ADDR": REMOTE}
    ):
        assert request_ip() == "203.0.113.5"
        assert request_ip(trust_proxy="false") == REMOTE


def test_flask_helper_uses_the_default_writer(
    app: Flask, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trek_audit.writer as writer

    monkeypatch.setenv("TREK_DATA_DIR", str(log_dir.parent))
    writer.reset_default_writer()
    try:
        with app.test_request_context("/", environ_base={"REMOTE_ADDR": REMOTE}):
            event = record_request("user.logout")
        assert writer.default_writer().log_dir == log_dir
        assert (log_dir / "trek.log").read_bytes().count(b"\n") == 1
        assert event["seq"] == 1
    finally:
        writer.reset_default_writer()
