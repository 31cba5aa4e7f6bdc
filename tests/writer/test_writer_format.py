"""The line format as written: round trip, schema, id, seq and ts."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trek_audit.writer as writer
from trek_audit.writer import AuditWriter, decode, encode

from .writer_support import read_events, seqs

SCHEMA = json.loads((Path(writer.__file__).parent / "audit-line-v1.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# Strings a log line must survive: line breaks of every kind, ANSI escapes, quotes, backslashes.
NASTY = st.sampled_from(
    [
        "\r",
        "\n",
        "\r\n",
        "\u2028",
        "\u2029",
        "\u0085",
        "\x1b[31m",
        "\x1b]0;title\x07",
        '"',
        "\\",
        "\x00",
        "\t",
        "}\n{",
        "é",
        "🦄",
        "\ufeff",
    ]
)
TEXT = st.one_of(st.text(), st.lists(st.one_of(NASTY, st.text(max_size=5))).map("".join))
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
USERS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
            "username": st.one_of(st.none(), TEXT),
            "email": st.one_of(st.none(), TEXT),
        },
    ),
)
ACTIONS = st.one_of(
    st.sampled_from(sorted(writer.ACTIONS)),
    st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z0-9_]{1,8}){1,3}", fullmatch=True),
)


@pytest.fixture(scope="module")
def shared_writer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with AuditWriter(tmp_path_factory.mktemp("logs"), max_bytes=256 * 1024, backups=2) as w:
        yield w


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    action=ACTIONS,
    user=USERS,
    resource=st.one_of(st.none(), TEXT),
    ip=st.one_of(st.none(), TEXT),
    details=st.one_of(st.none(), st.dictionaries(TEXT, JSON_VALUES, max_size=5)),
)
def test_any_event_is_written_as_one_line_that_reads_back_identical(
    shared_writer: AuditWriter, action: str, user: Any, resource: Any, ip: Any, details: Any
) -> None:
    event = shared_writer.record(action, user=user, resource=resource, ip=ip, details=details)
    data = shared_writer.path.read_bytes()
    last = data[data.rindex(b"\n", 0, len(data) - 1) + 1 :] if data.count(b"\n") > 1 else data
    assert last == encode(event)
    assert last.count(b"\n") == 1 and last.endswith(b"\n")
    for breaker in (b"\r", "\u2028".encode(), "\u2029".encode(), "\u0085".encode(), b"\x1b"):
        assert breaker not in last
    assert last.decode("utf-8").splitlines() == [last.decode("utf-8").rstrip("\n")]
    assert decode(last) == event
    VALIDATOR.validate(json.loads(last))
    assert event["action"] == action
    assert event["resource"] == resource and event["ip"] == ip and event["details"] == details
    if user is None:
        assert event["user"] is None
    else:
        assert event["user"] == {
            "id": user.get("id"),
            "username": user.get("username"),
            "email": user.get("email"),
        }


def test_record_returns_the_event_exactly_as_written(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        event = w.record(
            "user.login",
            user={"id": 7, "username": "alice", "email": "alice@example.com"},
            ip="203.0.113.5",
            details={"method": "password"},
        )
    assert list(event) == ["v", "id", "seq", "ts", "action", "user", "resource", "ip", "details"]
    assert (log_dir / "trek.log").read_bytes() == encode(event)
    assert read_events(log_dir) == [event]
    assert event["v"] == 1 and event["seq"] == 1


def test_ids_are_unique_uuid7_and_ts_is_utc_with_microseconds(log_dir: Path) -> None:
    before = datetime.now(UTC)
    with AuditWriter(log_dir) as w:
        events = [w.record("trip.create", resource=str(n)) for n in range(2000)]
    after = datetime.now(UTC)
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(UUID7.fullmatch(i) for i in ids)
    # UUIDv7 carries the time in milliseconds: it agrees with ts.
    for e in events[::97]:
        ms = int(e["id"].replace("-", "")[:12], 16)
        ts = datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert abs(ms - ts.timestamp() * 1000) < 2
    stamps = [
        datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) for e in events
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", e["ts"]) for e in events)
    assert before.replace(microsecond=0) <= stamps[0] and stamps[-1] <= after
    assert stamps == sorted(stamps)


def test_ts_never_goes_back_in_seq_order_when_the_clock_steps_back(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trek_audit.writer.appender as appender

    with AuditWriter(log_dir) as w:
        first = w.record("user.login")
        monkeypatch.setattr(appender, "_time_ns", lambda: time.time_ns() - 3600 * 10**9)
        second = w.record("user.login")
    assert second["seq"] == first["seq"] + 1
    assert second["ts"] >= first["ts"]


def test_seq_continues_across_writers_and_restarts(log_dir: Path) -> None:
    with AuditWriter(log_dir) as a, AuditWriter(log_dir) as b:
        got = [a.record("a.b")["seq"], b.record("a.b")["seq"], a.record("a.b")["seq"]]
    with AuditWriter(log_dir) as c:
        got.append(c.record("a.b")["seq"])
    assert got == [1, 2, 3, 4]
    assert seqs(log_dir) == [1, 2, 3, 4]


def test_catalog_has_every_reference_action_and_the_four_additions() -> None:
    # A copy of the reference wiki page that lists TREK's action keys, kept with the tests.
    reference = Path(__file__).parent / "data" / "Audit-Log.wiki.txt"
    keys = set(re.findall(r"\| `([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)` \|", reference.read_text()))
    assert len(keys) == 46  # the tables of the reference page
    assert keys <= set(writer.ACTIONS)
    for extra in (
        "user.password_reset_request",
        "user.password_reset_fail",
        "user.password_reset_success",
        "oauth.token.replay_detected",
    ):
        assert writer.ACTIONS[extra]
    assert all(isinstance(text, str) and text for text in writer.ACTIONS.values())


def test_the_public_api_is_exported() -> None:
    for name in (
        "AuditWriter",
        "AuditWriteError",
        "record",
        "client_ip",
        "ACTIONS",
        "Event",
        "LineError",
        "encode",
        "decode",
        "default_writer",
        "reset_default_writer",
    ):
        assert name in writer.__all__
        assert getattr(writer, name) is not None
    assert sorted(writer.__all__) == sorted(set(writer.__all__))
    for name in writer.__all__:
        assert getattr(writer, name) is not None


def test_uuid7_carries_the_given_millisecond_time_and_random_bits() -> None:
    from trek_audit.writer.stamps import uuid7

    ids = {uuid7(0x0123_4567_89AB) for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        assert UUID7.fullmatch(value)
        assert value.startswith("01234567-89ab-7")


def test_a_relative_log_dir_stays_where_it_was_when_the_process_changes_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    with AuditWriter("logs") as w:
        w.record("user.login")
        monkeypatch.chdir(tmp_path / "elsewhere")
        w.record("user.logout")
    assert seqs(tmp_path / "logs") == [1, 2]
    assert list((tmp_path / "elsewhere").iterdir()) == []
