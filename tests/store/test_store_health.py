"""Health: the rules of the verdict, and serve.json as the status reads it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trek_audit.settings import Settings
from trek_audit.store import Status, open_database
from trek_audit.store.health import IndexerState, Verdict, judge, read_health
from trek_audit.store.status import SourceStatus
from trek_audit.store.supervisor import (
    SupervisorState,
    read_supervisor_state,
    write_supervisor_state,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WARN = 1000


def status(**changes: Any) -> Status:
    """The status of a caught-up, flawless audit.db, with ``changes``."""
    base = Status(
        indexed=10,
        last_seq=10,
        next_seq=11,
        lag_bytes=0,
        gaps=[],
        missing=0,
        rejected=0,
        incidents=0,
        last_indexed_at="2026-11-26T11:59:59.000+00:00",
        running=True,
        pid=123,
        schema_version=2,
        duplicates_dropped=0,
        sources=[],
    )
    base.update(changes)  # type: ignore[typeddict-item]
    return base


RUNNING = IndexerState(running=True, restarts=0, down_since=None, supervisor_pid=None)
UNSUPERVISED_DOWN = IndexerState(running=False, restarts=0, down_since=None, supervisor_pid=None)


def supervised_down(seconds: float) -> IndexerState:
    return IndexerState(False, 3, NOW - timedelta(seconds=seconds), supervisor_pid=99)


CASES: list[tuple[str, Status | None, IndexerState, bool, Verdict]] = [
    ("all-well", status(), RUNNING, True, "ok"),
    ("lag-at-the-setting", status(lag_bytes=WARN), RUNNING, True, "ok"),
    ("lag-above-the-setting", status(lag_bytes=WARN + 1), RUNNING, True, "degraded"),
    ("a-gap", status(gaps=[[4, 5]], missing=2), RUNNING, True, "degraded"),
    ("rejected-lines", status(rejected=1), RUNNING, True, "degraded"),
    ("incidents", status(incidents=1), RUNNING, True, "degraded"),
    ("down-59-s-under-serve", status(), supervised_down(59), True, "degraded"),
    ("down-60-s-under-serve", status(), supervised_down(60), True, "failing"),
    ("down-an-hour-under-serve", status(), supervised_down(3600), True, "failing"),
    ("down-without-serve", status(running=False), UNSUPERVISED_DOWN, True, "failing"),
    ("unreadable-audit-db", None, RUNNING, True, "failing"),
    ("no-follower-meant-to-run", status(running=False), UNSUPERVISED_DOWN, False, "ok"),
    ("no-follower-and-an-hour-down", status(), supervised_down(3600), False, "ok"),
    (
        "no-follower-but-a-gap",
        status(gaps=[[2, 2]], missing=1),
        UNSUPERVISED_DOWN,
        False,
        "degraded",
    ),
    ("no-follower-but-lag", status(lag_bytes=WARN + 1), UNSUPERVISED_DOWN, False, "degraded"),
    ("no-follower-but-incidents", status(incidents=2), UNSUPERVISED_DOWN, False, "degraded"),
    ("no-follower-unreadable", None, UNSUPERVISED_DOWN, False, "failing"),
]


@pytest.mark.parametrize(
    ("status_", "indexer", "follower_expected", "verdict"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_verdict_follows_the_rules(
    status_: Status | None, indexer: IndexerState, follower_expected: bool, verdict: Verdict
) -> None:
    got, reasons = judge(
        status_,
        indexer,
        error=None if status_ else OSError("file is not a database"),
        lag_warn_bytes=WARN,
        follower_expected=follower_expected,
        now=NOW,
    )
    assert got == verdict
    assert (reasons == ()) == (verdict == "ok")


def test_every_finding_is_a_reason_worst_first() -> None:
    verdict, reasons = judge(
        status(rejected=2, gaps=[[3, 4]], missing=2),
        supervised_down(90),
        error=None,
        lag_warn_bytes=WARN,
        follower_expected=True,
        now=NOW,
    )
    assert verdict == "failing"
    assert reasons[0].startswith("the indexer has been down for 90 s")
    assert "trek-audit serve (pid 99) is restarting it (3 restart(s) so far)" in reasons[0]
    assert reasons[1:] == ("2 event(s) missing in 1 gap(s)", "2 log line(s) rejected as malformed")


def source(name: str, **changes: Any) -> SourceStatus:
    """The status of a caught-up, flawless source ``name``, with ``changes``."""
    base = SourceStatus(
        name=name,
        indexed=10,
        last_seq=10,
        next_seq=11,
        lag_bytes=0,
        gaps=[],
        missing=0,
        rejected=0,
        incidents=0,
        duplicates_dropped=0,
        last_indexed_at="2026-11-26T11:59:59.000+00:00",
    )
    base.update(changes)  # type: ignore[typeddict-item]
    return base


def reasons_of(status_: Status) -> tuple[str, ...]:
    verdict, reasons = judge(
        status_, RUNNING, error=None, lag_warn_bytes=WARN, follower_expected=True, now=NOW
    )
    assert (verdict == "ok") == (reasons == ())
    return reasons


def test_with_several_sources_each_reason_names_its_source() -> None:
    sources = [
        source("local", rejected=1),
        source("web-2", gaps=[[3, 99]], missing=97, incidents=2),
        source("web-3", gaps=[[5, 5], [8, 9]], missing=3),
    ]
    reasons = reasons_of(
        status(
            gaps=[[3, 99], [5, 5], [8, 9]], missing=100, rejected=1, incidents=2, sources=sources
        )
    )
    assert reasons == (
        "source web-2: 97 events missing in 1 gap",
        "source web-3: 3 events missing in 2 gaps",
        "source local: 1 log line rejected as malformed",
        "source web-2: 2 incidents: truncated, replaced or lost log files, or lines that do not "
        "match their seal",
    )


def test_duplicates_dropped_are_no_reason_for_concern() -> None:
    sources = [source("local"), source("web-2", duplicates_dropped=5000)]
    assert reasons_of(status(duplicates_dropped=5000, sources=sources)) == ()


def test_lag_is_judged_on_the_total_and_names_the_sources_behind() -> None:
    sources = [source("local", lag_bytes=600), source("web-2"), source("web-3", lag_bytes=900)]
    (reason,) = reasons_of(status(lag_bytes=1500, sources=sources))
    assert reason == (
        "1,500 bytes of log are not indexed yet (more than TREK_LAG_WARN_BYTES, 1,000); "
        "source web-3: 900, source local: 600"
    )


def test_the_local_log_alone_keeps_its_reasons_as_they_were() -> None:
    sources = [source("local", gaps=[[4, 5]], missing=2, lag_bytes=WARN + 1)]
    reasons = reasons_of(status(gaps=[[4, 5]], missing=2, lag_bytes=WARN + 1, sources=sources))
    assert reasons == (
        "1,001 bytes of log are not indexed yet (more than TREK_LAG_WARN_BYTES, 1,000)",
        "2 event(s) missing in 1 gap(s)",
    )


def _settings(data_dir: Path, **changes: Any) -> Settings:
    return Settings(data_dir=data_dir).replace(**changes)


def test_an_unreadable_audit_db_is_failing_with_no_counters(data_dir: Path) -> None:
    (data_dir / "audit.db").write_bytes(b"this is not an SQLite database, not even close" * 100)
    report = read_health(_settings(data_dir, follower_expected=False))
    assert report.verdict == "failing"
    assert report.status is None
    assert "audit.db cannot be read" in report.reasons[0]
    health = report.health()
    assert health["status"] == "failing"
    assert [health["lag_bytes"], health["missing_events"], health["rejected_lines"]] == [None] * 3
    figures = report.as_json()
    assert set(figures) >= set(Status.__required_keys__)
    assert figures["indexed"] is None and figures["gaps"] is None


def test_a_flawless_database_without_a_follower_meant_to_run_is_ok(data_dir: Path) -> None:
    open_database(data_dir / "audit.db").close()
    report = read_health(_settings(data_dir, follower_expected=False))
    assert (report.verdict, report.exit_code, report.reasons) == ("ok", 0, ())
    assert report.as_json()["indexed"] == 0
    assert report.as_json()["status"] == "ok"


def test_the_counters_of_audit_db_make_the_verdict(data_dir: Path) -> None:
    conn = open_database(data_dir / "audit.db")
    with conn:
        conn.execute("INSERT INTO gaps (first_seq, last_seq, detected) VALUES (5, 9, 'now')")
        conn.execute("UPDATE indexer_state SET value = 3 WHERE name = 'rejected'")
    conn.close()
    report = read_health(_settings(data_dir, follower_expected=False))
    assert (report.verdict, report.exit_code) == ("degraded", 1)
    assert report.health()["missing_events"] == 5
    assert report.health()["rejected_lines"] == 3


def _serve_state(pid: int, *, down_for: float | None, restarts: int = 2) -> SupervisorState:
    now = datetime.now(UTC)
    return SupervisorState(
        pid=pid,
        indexer_pid=None if down_for is not None else 4242,
        indexer_running=down_for is None,
        indexer_restarts=restarts,
        indexer_down_since=(now - timedelta(seconds=down_for)).isoformat() if down_for else None,
        updated_at=now.isoformat(),
    )


@pytest.mark.parametrize(
    ("down_for", "verdict"), [(5.0, "degraded"), (75.0, "failing")], ids=["5-s", "75-s"]
)
def test_the_state_of_a_live_serve_says_how_long_its_indexer_is_down(
    data_dir: Path, down_for: float, verdict: Verdict
) -> None:
    open_database(data_dir / "audit.db").close()
    write_supervisor_state(data_dir, _serve_state(os.getpid(), down_for=down_for))
    report = read_health(_settings(data_dir))
    assert report.verdict == verdict
    assert report.indexer.supervisor_pid == os.getpid()
    assert report.health()["indexer_restarts"] == 2
    assert report.health()["indexer_running"] is False


def test_a_live_serve_whose_indexer_runs_is_ok_and_counts_restarts(data_dir: Path) -> None:
    open_database(data_dir / "audit.db").close()
    write_supervisor_state(data_dir, _serve_state(os.getpid(), down_for=None, restarts=7))
    report = read_health(_settings(data_dir))
    assert report.verdict == "ok"
    assert report.health()["indexer_running"] is True
    assert report.health()["indexer_restarts"] == 7


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_state_left_by_a_dead_serve_is_ignored(data_dir: Path) -> None:
    open_database(data_dir / "audit.db").close()
    write_supervisor_state(data_dir, _serve_state(_dead_pid(), down_for=None, restarts=7))
    assert read_supervisor_state(data_dir) is None
    report = read_health(_settings(data_dir))
    # Judged by the lock alone: nobody holds it, and no serve will restart an indexer.
    assert report.verdict == "failing"
    assert report.health()["indexer_restarts"] == 0


def test_the_state_of_a_killed_serve_not_yet_reaped_is_ignored(data_dir: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_supervisor_state(data_dir, _serve_state(child.pid, down_for=None))
        assert read_supervisor_state(data_dir) is not None
        child.send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, still a zombie
        assert read_supervisor_state(data_dir) is None
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"pid": "12"}', json.dumps({"pid": 1, "indexer_running": 1}).encode()],
    ids=["broken-json", "a-list", "pid-a-string", "missing-keys"],
)
def test_a_malformed_state_file_reads_as_no_serve(data_dir: Path, content: bytes) -> None:
    (data_dir / "serve.json").write_bytes(content)
    assert read_supervisor_state(data_dir) is None


def test_the_state_file_is_replaced_whole_and_readable_by_others(data_dir: Path) -> None:
    state = _serve_state(os.getpid(), down_for=3.0)
    write_supervisor_state(data_dir, state)
    write_supervisor_state(data_dir, state)
    assert read_supervisor_state(data_dir) == state
    assert stat.S_IMODE((data_dir / "serve.json").stat().st_mode) == 0o644
    assert sorted(p.name for p in data_dir.iterdir()) == ["serve.json"]
