"""``trek-audit record --stdin``: one JSON request per line in, one answer per line out."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from trek_audit.writer import AuditWriter
from trek_audit.writer.protocol import Conversation

from .writer_support import read_events

LINE_LIMIT = 1024  # TREK_LOG_MAX_LINE_BYTES in these tests: a request line may be 4 KiB


def co_process(data_dir: Path, **limits: int) -> subprocess.Popen[bytes]:
    """``record --stdin`` for ``data_dir``; ``limits`` are resource limits (``fsize=...``)."""

    def set_limits() -> None:
        for name, value in limits.items():
            resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (value, value))

    return subprocess.Popen(
        [sys.executable, "-m", "trek_audit", "record", "--stdin", "--data-dir", str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TREK_LOG_MAX_LINE_BYTES": str(LINE_LIMIT)},
        preexec_fn=set_limits,
    )


def converse(data_dir: Path, requests: bytes, **limits: int) -> list[dict[str, Any]]:
    """Send ``requests`` at once, read every answer, and check that the co-process ended well."""
    process = co_process(data_dir, **limits)
    out, err = process.communicate(requests, timeout=60)
    assert process.returncode == 0, err.decode()
    assert out.endswith(b"\n") or out == b""
    return [json.loads(line) for line in out.splitlines()]


def request(action: str = "trip.create", **fields: Any) -> bytes:
    return json.dumps({"action": action, **fields}).encode() + b"\n"


def error_of(answer: dict[str, Any]) -> tuple[str, str]:
    assert set(answer) == {"error"}, answer
    assert set(answer["error"]) == {"type", "message"}
    return answer["error"]["type"], answer["error"]["message"]


def test_each_request_is_answered_with_the_event_exactly_as_written(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process = co_process(data_dir)
    out, _ = process.communicate(
        request("user.login", user={"id": 7, "username": "alice"}, ip="203.0.113.5")
        + request("trip.create", resource="trip/42", details={"title": "Alps \u2028 2026"})
    )
    assert process.returncode == 0
    assert out == (data_dir / "logs" / "trek.log").read_bytes()
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["user"] == {"id": 7, "username": "alice", "email": None}
    assert (first["seq"], second["seq"]) == (1, 2)
    assert second["details"] == {"title": "Alps \u2028 2026"}
    assert b"\\u2028" in out  # a line breaker for JavaScript is escaped, as in the log


INVALID = [
    (b"{not json", "not JSON"),
    (b'["user.login"]', "a request is a JSON object"),
    (b'{"action": "user.login", "when": "now"}', "unknown request keys ['when']"),
    (b'{"user": {"id": 7}}', 'a request needs an "action"'),
    (b'{"action": "User Login"}', "malformed action key"),
    (b'{"action": "user.login", "user": {"id": 7, "role": "admin"}}', "user has unknown keys"),
    (b'{"action": "user.login", "user": 7}', "user must be"),
    (b'{"action": "user.login", "ip": 1}', "ip must be a string or None"),
    (b'{"action": "user.login", "details": [1]}', "details must be a JSON object"),
    (b'{"action": "user.login", "details": {"n": 18446744073709551615}}', "64-bit range"),
    (b'{"action": "user.login", "details": {"n": 123456789012345678901}}', "64-bit range"),
    (b"", "blank line"),
    (b"   \t", "blank line"),
    (b'{"action": "user.login", "resource": "\xff\xfe"}', "not UTF-8"),
    (b'{"action": "audit.seal", "details": {"epoch": 0}}', "written by the writer itself"),
]


@pytest.mark.parametrize(
    ("line", "reason"),
    INVALID,
    ids=[
        "bad-json",
        "not-an-object",
        "unknown-key",
        "no-action",
        "bad-action",
        "bad-user-key",
        "user-not-object",
        "ip-not-string",
        "details-not-object",
        "integer-past-64-bits",
        "integer-past-orjson",
        "empty-line",
        "blank-line",
        "invalid-utf8",
        "a-seal",
    ],
)
def test_an_invalid_request_is_answered_invalid_and_nothing_is_written(
    log_dir: Path, line: bytes, reason: str
) -> None:
    with AuditWriter(log_dir) as writer:
        answers = Conversation(writer, 4 * LINE_LIMIT).answer(line + b"\n")
    kind, message = error_of(json.loads(answers))
    assert kind == "invalid"
    assert reason in message
    assert read_events(log_dir) == []


def test_invalid_requests_do_not_stop_it_and_every_line_gets_one_answer_in_order(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    requests = b"".join(
        line + b"\n" + request(details={"after": i}) for i, (line, _) in enumerate(INVALID)
    )
    answers = converse(data_dir, requests)
    assert len(answers) == 2 * len(INVALID)
    for i, (_, reason) in enumerate(INVALID):
        assert error_of(answers[2 * i])[0] == "invalid" and reason in error_of(answers[2 * i])[1]
        assert answers[2 * i + 1]["details"] == {"after": i}
        assert answers[2 * i + 1]["seq"] == i + 1
    assert [e["seq"] for e in read_events(data_dir / "logs")] == list(range(1, len(INVALID) + 1))


def test_pipelined_requests_are_answered_in_request_order(tmp_path: Path) -> None:
    count = 5000
    requests = b"".join(request(details={"n": n}) for n in range(count))
    answers = converse(tmp_path / "data", requests)
    assert [a["details"]["n"] for a in answers] == list(range(count))
    assert [a["seq"] for a in answers] == list(range(1, count + 1))


def test_a_request_split_anywhere_across_reads_gets_the_same_answers(log_dir: Path) -> None:
    stream = request("user.login", user={"id": 1}) + b"oops\n" + request(details={"k": "v"})
    with AuditWriter(log_dir) as writer:
        for cut in range(1, len(stream)):
            conversation = Conversation(writer, 4 * LINE_LIMIT)
            answers = conversation.answer(stream[:cut]) + conversation.answer(stream[cut:])
            assert conversation.finish() == b""
            kinds = [
                "event" if "seq" in a else error_of(a)[0]
                for a in map(json.loads, answers.splitlines())
            ]
            assert kinds == ["event", "invalid", "event"], cut


def test_a_write_failure_is_answered_nothing_is_written_and_the_next_request_goes_on(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    # The file-size limit (4 KiB, the lock file's page fits) leaves room for three long events
    # (about 1000 bytes each) and a short one, not for a fourth long one.
    long, short = request(details={"pad": "x" * 820}), request(details={"n": 1})
    answers = converse(data_dir, long * 3 + short + long + short, fsize=4096)
    kind, message = error_of(answers[4])
    assert kind == "write"
    assert "File too large" in message and "trek.log" in message
    events = answers[:4] + answers[5:]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]  # the failed request used no seq
    assert read_events(data_dir / "logs") == events


def test_end_of_input_ends_it_with_status_0_after_answering_a_last_line_without_newline(
    tmp_path: Path,
) -> None:
    answers = converse(tmp_path / "data", request(details={"n": 1}) + b'{"action": "a.b"}')
    assert [a["action"] for a in answers] == ["trip.create", "a.b"]
    assert converse(tmp_path / "data", b"") == []


def peak_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_huge_line_is_answered_invalid_without_being_kept_in_memory(tmp_path: Path) -> None:
    process = co_process(tmp_path / "data")
    assert process.stdin is not None and process.stdout is not None
    huge = b'{"action": "a.b", "details": {"x": "' + b"x" * (64 << 20) + b'"}}\n'
    sender = threading.Thread(target=process.stdin.write, args=(huge + request(),))
    sender.start()
    too_long = json.loads(process.stdout.readline())
    after = json.loads(process.stdout.readline())
    sender.join()
    try:
        assert peak_memory_kib(process.pid) < 48 << 10  # far less than the 64 MiB line
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()
    kind, message = error_of(too_long)
    assert kind == "invalid" and f"longer than {4 * LINE_LIMIT} bytes" in message
    assert after["seq"] == 1
    assert process.returncode == 0


def test_a_request_just_inside_the_bound_is_read_and_one_past_it_is_not(log_dir: Path) -> None:
    limit = 4 * LINE_LIMIT
    with AuditWriter(log_dir, max_line_bytes=LINE_LIMIT) as writer:
        conversation = Conversation(writer, limit)
        padded = request("a.b").rstrip(b"\n")
        inside = padded + b" " * (limit - len(padded))
        answers = conversation.answer(inside + b"\n" + inside + b" \n")
    first, second = map(json.loads, answers.splitlines())
    assert first["action"] == "a.b"
    assert "longer than" in error_of(second)[1]


def test_stdin_with_event_options_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trek_audit", "record", "user.login", "--stdin"]
        + ["--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--stdin takes each event from standard input; drop ACTION" in done.stderr
