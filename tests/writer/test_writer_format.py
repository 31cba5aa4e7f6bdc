"""The line format as written: round trip, schema, id, seq and ts."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trek_audit.writer as writer
from trek_audit.writer import AuditWriter, LineError, decode, encode
from trek_audit.writer.catalog import RESERVED_ACTIONS
from trek_audit.writer.line import SEQ_MAX, TS_END_NS, TS_FIRST, TS_LAST, TS_PATTERN
from trek_audit.writer.stamps import ts_ns

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
    st.sampled_from(sorted(set(writer.ACTIONS) - RESERVED_ACTIONS)),
    st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z0-9_]{1,8}){1,3}", fullmatch=True),
).filter(lambda action: action not in RESERVED_ACTIONS)


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


# -- the ranges of seq and ts: what the format documents, decode enforces and the schema says --


def _line(**changes: Any) -> bytes:
    event = {
        "v": 1,
        "id": "01a2184a-8918-792c-b8f0-d42c0e76878a",
        "seq": 1,
        "ts": "2026-11-26T14:37:47.672481Z",
        "action": "user.login",
        "user": None,
        "resource": None,
        "ip": None,
        "details": None,
    }
    return json.dumps({**event, **changes}).encode()


def _valid(line: bytes) -> bool:
    """What decode says, after checking that the JSON Schema says the same."""
    try:
        decode(line)
    except LineError:
        valid = False
    else:
        valid = True
    assert VALIDATOR.is_valid(json.loads(line)) is valid, line
    return valid


SEQS = [
    (1, True),
    (SEQ_MAX, True),
    (0, False),
    (-1, False),
    (SEQ_MAX + 1, False),  # would not fit SQLite's INTEGER
    (2**64 - 1, False),  # what a wrapped 64-bit state page held
]


@pytest.mark.parametrize(("seq", "valid"), SEQS, ids=[str(seq) for seq, _ in SEQS])
def test_seq_is_valid_from_1_to_the_largest_signed_64_bit_integer(seq: int, valid: bool) -> None:
    assert _valid(_line(seq=seq)) is valid


def test_a_seq_past_the_range_is_rejected_with_a_reason() -> None:
    with pytest.raises(LineError, match="seq larger than a 64-bit integer"):
        decode(_line(seq=SEQ_MAX + 1))


TIMESTAMPS = [
    (TS_FIRST, True),
    (TS_LAST, True),
    ("2024-02-29T12:00:00.000000Z", True),
    ("2000-02-29T12:00:00.000000Z", True),  # divisible by 400: a leap year
    ("2260-02-29T23:59:59.999999Z", True),
    ("2026-02-30T12:00:00.000000Z", False),
    ("2026-04-31T12:00:00.000000Z", False),
    ("2023-02-29T12:00:00.000000Z", False),
    ("2100-02-29T12:00:00.000000Z", False),  # divisible by 100, not by 400
    ("0000-01-01T00:00:00.000000Z", False),
    ("1969-12-31T23:59:59.999999Z", False),  # before the epoch
    ("2262-01-01T00:00:00.000000Z", False),  # past the range
    ("9999-12-31T23:59:59.999999Z", False),
    ("2026-11-26T23:59:60.000000Z", False),  # leap seconds are not instants of UTC's count
    ("2026-11-26T24:00:00.000000Z", False),
    ("2026-11-26T14:37:47.672481+00:00", False),
    ("2026-11-26T14:37:47Z", False),
    ("\uff12\uff10\uff12\uff16-11-26T14:37:47.672481Z", False),  # fullwidth digits
    ("\u0662\u0660\u0662\u0666-11-26T14:37:47.672481Z", False),  # Arabic-Indic digits
]


@pytest.mark.parametrize(("ts", "valid"), TIMESTAMPS, ids=[ts for ts, _ in TIMESTAMPS])
def test_ts_is_valid_only_as_a_real_instant_of_the_range(ts: str, valid: bool) -> None:
    assert _valid(_line(ts=ts)) is valid


def test_the_ts_pattern_takes_every_real_day_of_the_range_and_no_other_day() -> None:
    first, last = date(1970, 1, 1), date(2261, 12, 31)
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        day = date.fromordinal(ordinal).isoformat()
        assert TS_PATTERN.fullmatch(f"{day}T00:00:00.000000Z"), day
    for year in (1969, *range(first.year, last.year + 1), 2262):
        for month in range(1, 13):
            for day_of_month in (0, 29, 30, 31, 32):
                try:
                    real = first <= date(year, month, day_of_month) <= last
                except ValueError:
                    real = False
                ts = f"{year:04d}-{month:02d}-{day_of_month:02d}T00:00:00.000000Z"
                assert (TS_PATTERN.fullmatch(ts) is not None) is real, ts


def test_the_schema_states_the_ranges_of_line_py() -> None:
    assert SCHEMA["properties"]["seq"]["maximum"] == SEQ_MAX
    assert SCHEMA["properties"]["ts"]["pattern"] == f"^{TS_PATTERN.pattern}$"


def test_ts_end_ns_is_the_first_nanosecond_past_the_last_ts() -> None:
    last = datetime.strptime(TS_LAST, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    first = datetime.strptime(TS_FIRST, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert first == datetime.fromtimestamp(0, UTC)
    assert int(last.timestamp()) * 10**9 + last.microsecond * 1000 + 1000 == TS_END_NS
    assert TS_END_NS <= 2**63 - 1  # ns since the epoch fit a signed 64-bit integer
    assert ts_ns(TS_LAST) == TS_END_NS - 1000
