"""Bad input raises ValueError or TypeError with a clear message, and nothing is written."""

from __future__ import annotations

import decimal
import enum
import uuid
from pathlib import Path
from typing import Any

import pytest

from trek_audit.writer import AuditWriter

from .writer_support import seqs


class Color(enum.Enum):
    RED = 1


BAD_ACTIONS = [
    ("", "empty"),
    ("login", "no-dot"),
    ("User.login", "uppercase"),
    ("user.", "trailing-dot"),
    (".user", "leading-dot"),
    ("user..login", "double-dot"),
    ("1user.login", "leading-digit"),
    ("user.log in", "space"),
    ("user.login\n", "newline"),
    ("user-x.login", "dash"),
    ("üser.login", "non-ascii"),
    (None, "none"),
    (42, "int"),
    (b"user.login", "bytes"),
]

BAD_DETAILS: list[tuple[Any, type[Exception], str]] = [
    ({"x": float("nan")}, ValueError, "nan"),
    ({"x": float("inf")}, ValueError, "inf"),
    ({"x": [1, float("-inf")]}, ValueError, "-inf-in-list"),
    ({"x": {1, 2}}, TypeError, "set"),
    ({1: "x"}, TypeError, "int-key"),
    ({("a",): "x"}, TypeError, "tuple-key"),
    ({"x": 2**63}, ValueError, "int-over-64-bit"),
    ({"x": -(2**63) - 1}, ValueError, "int-under-64-bit"),
    ({"x": {"y": [2**70]}}, ValueError, "nested-huge-int"),
    ({"x": b"bytes"}, TypeError, "bytes"),
    ({"x": (1, 2)}, TypeError, "tuple"),
    ({"x": object()}, TypeError, "object"),
    ({"x": decimal.Decimal("1.5")}, TypeError, "decimal"),
    ({"x": uuid.uuid4()}, TypeError, "uuid"),
    ({"x": Color.RED}, TypeError, "enum"),
    ({"x": "\ud800"}, TypeError, "lone-surrogate"),
    ([1, 2], TypeError, "list"),
    ("text", TypeError, "str"),
    (7, TypeError, "int"),
]


@pytest.fixture
def audit_writer(log_dir: Path) -> Any:
    with AuditWriter(log_dir) as w:
        w.record("user.login")  # seq 1, so "nothing consumed" is visible below
        yield w


def assert_nothing_written(log_dir: Path, audit_writer: AuditWriter) -> None:
    assert seqs(log_dir) == [1]
    assert audit_writer.record("user.logout")["seq"] == 2


@pytest.mark.parametrize(("action", "label"), BAD_ACTIONS, ids=[b[1] for b in BAD_ACTIONS])
def test_malformed_action_raises_value_error_and_writes_nothing(
    log_dir: Path, audit_writer: AuditWriter, action: Any, label: str
) -> None:
    with pytest.raises(ValueError, match="malformed action key"):
        audit_writer.record(action)
    assert_nothing_written(log_dir, audit_writer)


def test_a_seal_cannot_be_recorded_by_an_app(log_dir: Path, audit_writer: AuditWriter) -> None:
    # Only the writer writes seals; one recorded through the API would be a forged seal.
    details = {"epoch": 0, "first_seq": 2, "last_seq": 1, "prev": "0" * 64, "chain": "0" * 64}
    with pytest.raises(ValueError, match="written by the writer itself"):
        audit_writer.record("audit.seal", details=details)
    assert_nothing_written(log_dir, audit_writer)


def test_well_formed_action_outside_the_catalog_is_accepted(audit_writer: AuditWriter) -> None:
    assert audit_writer.record("plugin.thing_done.v2")["action"] == "plugin.thing_done.v2"


@pytest.mark.parametrize(
    ("details", "error", "label"), BAD_DETAILS, ids=[b[2] for b in BAD_DETAILS]
)
def test_bad_details_raise_and_write_nothing(
    log_dir: Path, audit_writer: AuditWriter, details: Any, error: type[Exception], label: str
) -> None:
    with pytest.raises(error, match=r"details|JSON|str"):
        audit_writer.record("user.login", details=details)
    assert_nothing_written(log_dir, audit_writer)


def nested(depth: int) -> dict[str, Any]:
    details: dict[str, Any] = {}
    inner = details
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return details


def self_containing() -> dict[str, Any]:
    details: dict[str, Any] = {"list": []}
    details["list"].append(details)
    return details


def test_deeply_nested_details_give_a_clear_error_not_a_recursion_error(
    log_dir: Path, audit_writer: AuditWriter
) -> None:
    with pytest.raises(ValueError, match="nests deeper than 100 levels"):
        audit_writer.record("user.login", details=nested(5000))
    assert_nothing_written(log_dir, audit_writer)


def test_details_nested_within_the_limit_are_written(audit_writer: AuditWriter) -> None:
    event = audit_writer.record("user.login", details=nested(100))
    assert event["seq"] == 2


def test_details_that_contain_themselves_are_refused(
    log_dir: Path, audit_writer: AuditWriter
) -> None:
    with pytest.raises(ValueError, match="nests deeper"):
        audit_writer.record("user.login", details=self_containing())
    assert_nothing_written(log_dir, audit_writer)


def test_bad_details_message_names_the_offending_value(audit_writer: AuditWriter) -> None:
    with pytest.raises(ValueError, match=r"details\['a'\]\['b'\]\[1\] is nan"):
        audit_writer.record("user.login", details={"a": {"b": [0, float("nan")]}})


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"user": "alice"}, TypeError),
        ({"user": {"id": "7"}}, TypeError),
        ({"user": {"id": True}}, TypeError),
        ({"user": {"id": 2**64}}, TypeError),
        ({"user": {"name": "alice"}}, ValueError),
        ({"user": {"username": 5}}, TypeError),
        ({"user": {"email": ["a"]}}, TypeError),
        ({"resource": 42}, TypeError),
        ({"ip": b"1.2.3.4"}, TypeError),
    ],
    ids=[
        "user-str",
        "id-str",
        "id-bool",
        "id-huge",
        "unknown-key",
        "username-int",
        "email-list",
        "resource-int",
        "ip-bytes",
    ],
)
def test_bad_user_resource_or_ip_raise_and_write_nothing(
    log_dir: Path, audit_writer: AuditWriter, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        audit_writer.record("user.login", **kwargs)
    assert_nothing_written(log_dir, audit_writer)


def test_partial_user_is_completed_with_nulls(audit_writer: AuditWriter) -> None:
    event = audit_writer.record("user.login", user={"username": "alice"})
    assert event["user"] == {"id": None, "username": "alice", "email": None}


def test_line_over_the_size_limit_raises_value_error_and_writes_nothing(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_line_bytes=1024) as w:
        w.record("user.login")
        small = w.record("user.login", details={"x": "a" * 700})
        assert len((log_dir / "trek.log").read_bytes().split(b"\n")[1]) < 1024
        with pytest.raises(ValueError, match="exceeds max_line_bytes=1024"):
            w.record("user.login", details={"x": "a" * 1000})
        assert seqs(log_dir) == [1, small["seq"]]
        assert w.record("user.login")["seq"] == small["seq"] + 1


def test_default_line_limit_is_64_kib(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        event = w.record("user.login", details={"x": "a" * 60_000})
        with pytest.raises(ValueError, match="65536"):
            w.record("user.login", details={"x": "a" * 66_000})
    assert seqs(log_dir) == [event["seq"]]


def test_record_on_a_closed_writer_raises(log_dir: Path) -> None:
    w = AuditWriter(log_dir)
    w.close()
    w.close()  # closing twice is fine
    with pytest.raises(ValueError, match="closed"):
        w.record("user.login")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_bytes": 0}, {"backups": -1}, {"max_line_bytes": 10}, {"max_bytes": "10"}],
    ids=["max-bytes-zero", "backups-negative", "line-limit-tiny", "max-bytes-str"],
)
def test_bad_writer_settings_raise_value_error(log_dir: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AuditWriter(log_dir, **kwargs)


def test_limits_beyond_64_bits_work_as_no_limit(log_dir: Path) -> None:
    with AuditWriter(log_dir, max_bytes=2**64, max_line_bytes=2**70) as w:
        assert [w.record("user.login")["seq"] for _ in range(3)] == [1, 2, 3]
    assert seqs(log_dir) == [1, 2, 3]
