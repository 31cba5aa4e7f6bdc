"""``trek-audit status`` exits 0 ok, 1 degraded, 2 failing, and --json says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.indexer import Indexer
from trek_audit.store import read_status
from trek_audit.store.supervisor import SupervisorState, write_supervisor_state

from .logfiles import append, wait_for

HEALTH_KEYS = {
    "status",
    "indexer_running",
    "indexer_restarts",
    "lag_bytes",
    "last_indexed_at",
    "missing_events",
    "rejected_lines",
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def status_json(runner: CliRunner, data_dir: Path, *args: str, **env: str) -> tuple[int, Any]:
    result = runner.invoke(main, ["status", "--json", "--data-dir", str(data_dir), *args], env=env)
    return result.exit_code, json.loads(result.output)


def index_once(runner: CliRunner, data_dir: Path) -> None:
    result = runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output


def test_a_caught_up_follower_is_ok_and_exits_0(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    append(log_dir / "trek.log", range(1, 6))
    with Indexer(data_dir, watch=False, rescan_interval=0.05):
        wait_for(lambda: read_status(data_dir)["indexed"] == 5, what="5 rows")
        code, body = status_json(runner, data_dir)
    assert code == 0, body
    assert body["status"] == "ok" and body["reasons"] == []
    assert body["indexer_running"] is True and body["indexer_restarts"] == 0


def test_a_gap_under_a_running_follower_is_degraded_and_exits_1(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    append(log_dir / "trek.log", [1, 2, 5])
    with Indexer(data_dir, watch=False, rescan_interval=0.05):
        wait_for(lambda: read_status(data_dir)["indexed"] == 3, what="3 rows")
        code, body = status_json(runner, data_dir)
    assert code == 1, body
    assert body["status"] == "degraded"
    assert body["missing_events"] == body["missing"] == 2
    assert body["reasons"] == ["2 event(s) missing in 1 gap(s)"]


def test_lag_above_the_setting_is_degraded(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    append(log_dir / "trek.log", range(1, 4))
    index_once(runner, data_dir)
    append(log_dir / "trek.log", range(4, 6))
    lag = read_status(data_dir)["lag_bytes"]
    code, body = status_json(runner, data_dir, "--no-follower", TREK_LAG_WARN_BYTES=str(lag - 1))
    assert (code, body["status"], body["lag_bytes"]) == (1, "degraded", lag)
    code, body = status_json(runner, data_dir, "--no-follower", TREK_LAG_WARN_BYTES=str(lag))
    assert (code, body["status"]) == (0, "ok")


def test_rejected_lines_are_degraded(data_dir: Path, log_dir: Path, runner: CliRunner) -> None:
    append(log_dir / "trek.log", [1])
    append(log_dir / "trek.log", b"not an event\n")
    index_once(runner, data_dir)
    code, body = status_json(runner, data_dir, "--no-follower")
    assert (code, body["rejected_lines"], body["rejected"]) == (1, 1, 1)


def test_no_indexer_and_no_serve_is_failing_and_exits_2(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    append(log_dir / "trek.log", range(1, 4))
    index_once(runner, data_dir)
    code, body = status_json(runner, data_dir)
    assert code == 2
    assert body["status"] == "failing" and body["indexer_running"] is False
    assert "no indexer is running" in body["reasons"][0]


def test_where_no_follower_is_meant_to_run_status_judges_the_counters_alone(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    append(log_dir / "trek.log", range(1, 4))
    index_once(runner, data_dir)
    assert status_json(runner, data_dir, "--no-follower")[0] == 0
    assert status_json(runner, data_dir, TREK_FOLLOWER_EXPECTED="false")[0] == 0
    # The option wins over the setting, both ways.
    assert status_json(runner, data_dir, "--follower", TREK_FOLLOWER_EXPECTED="false")[0] == 2


def test_an_unreadable_audit_db_is_failing_and_says_so(data_dir: Path, runner: CliRunner) -> None:
    (data_dir / "audit.db").write_bytes(b"garbage, not SQLite " * 500)
    code, body = status_json(runner, data_dir, "--no-follower")
    assert code == 2
    assert body["status"] == "failing"
    assert body["reasons"][0].startswith("audit.db cannot be read")
    assert body["lag_bytes"] is None and body["missing_events"] is None
    text = runner.invoke(main, ["status", "--no-follower", "--data-dir", str(data_dir)])
    assert text.exit_code == 2
    assert "health:          failing" in text.output
    assert "audit.db cannot be read" in text.output


def _serve_down_for(data_dir: Path, seconds: float) -> None:
    now = datetime.now(UTC)
    write_supervisor_state(
        data_dir,
        SupervisorState(
            pid=os.getpid(),  # alive: this process stands for serve
            indexer_pid=None,
            indexer_running=False,
            indexer_restarts=4,
            indexer_down_since=(now - timedelta(seconds=seconds)).isoformat(),
            updated_at=now.isoformat(),
        ),
    )


@pytest.mark.parametrize(
    ("seconds", "code", "verdict"),
    [(10, 1, "degraded"), (61, 2, "failing")],
    ids=["down-10-s", "down-61-s"],
)
def test_an_indexer_down_under_serve_is_degraded_for_a_minute_then_failing(
    data_dir: Path, log_dir: Path, runner: CliRunner, seconds: float, code: int, verdict: str
) -> None:
    append(log_dir / "trek.log", range(1, 3))
    index_once(runner, data_dir)
    _serve_down_for(data_dir, seconds)
    got, body = status_json(runner, data_dir)
    assert (got, body["status"]) == (code, verdict)
    assert body["indexer_restarts"] == 4
    assert body["supervisor_pid"] == os.getpid()
    assert body["indexer_down_since"] is not None
    text = runner.invoke(main, ["status", "--data-dir", str(data_dir)]).output
    assert f"supervised by serve (pid {os.getpid()}), restarted 4 time(s)" in text


def test_json_prints_the_health_fields_and_the_status_fields(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    append(log_dir / "trek.log", [1, 3])
    index_once(runner, data_dir)
    _, body = status_json(runner, data_dir)
    assert body.keys() >= HEALTH_KEYS
    assert set(read_status(data_dir)) <= body.keys()
    assert {"reasons", "indexer_down_since", "supervisor_pid"} <= body.keys()
    assert body["lag_bytes"] == read_status(data_dir)["lag_bytes"]


def test_a_malformed_setting_exits_2_not_1(data_dir: Path, runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["status", "--data-dir", str(data_dir)], env={"TREK_LAG_WARN_BYTES": "lots"}
    )
    assert result.exit_code == 2
    assert "TREK_LAG_WARN_BYTES" in result.output


def test_the_exit_status_reaches_the_shell(data_dir: Path, log_dir: Path) -> None:
    append(log_dir / "trek.log", [1, 2, 4])
    command = [sys.executable, "-m", "trek_audit", "index", "--once", "--data-dir", str(data_dir)]
    subprocess.run(command, check=True, capture_output=True)
    status = [sys.executable, "-m", "trek_audit", "status", "--data-dir", str(data_dir)]
    assert subprocess.run(status, capture_output=True).returncode == 2
    assert subprocess.run([*status, "--no-follower"], capture_output=True).returncode == 1
