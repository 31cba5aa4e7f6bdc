"""``read_status`` and the ``index``/``status`` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.indexer import Indexer
from trek_audit.store import open_database, read_status

from .logfiles import Reader, append, line, wait_for

STATUS_KEYS = {"indexed", "last_seq", "lag_bytes", "gaps", "rejected", "running"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_status_of_a_directory_without_a_database_is_empty_and_creates_nothing(
    tmp_path: Path,
) -> None:
    status = read_status(tmp_path / "nowhere")
    assert status.keys() >= STATUS_KEYS
    assert (status["indexed"], status["last_seq"], status["lag_bytes"]) == (0, 0, 0)
    assert (status["gaps"], status["rejected"], status["running"]) == ([], 0, False)
    assert not (tmp_path / "nowhere").exists()


def test_status_of_a_fresh_database_reports_all_the_log_as_lag(
    data_dir: Path, log_dir: Path
) -> None:
    open_database(data_dir / "audit.db").close()
    append(log_dir / "trek.log", range(1, 4))
    status = read_status(data_dir)
    assert status["indexed"] == 0
    assert status["lag_bytes"] == (log_dir / "trek.log").stat().st_size


def test_status_reports_counters_gaps_lag_and_the_running_indexer(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", [1, 2, 5])
    append(log_dir / "trek.log", b"garbage\n")
    Indexer(data_dir).run_once()
    append(log_dir / "trek.log", [6])
    status = read_status(data_dir, conn=db.conn)
    assert status["indexed"] == 3
    assert status["last_seq"] == 5
    assert status["gaps"] == [[3, 4]]
    assert status["missing"] == 2
    assert status["rejected"] == 1
    assert status["lag_bytes"] == len(line(6))
    assert status["running"] is False and status["pid"] is None
    assert status["last_indexed_at"] is not None
    with Indexer(data_dir, watch=False, rescan_interval=0.05):
        wait_for(lambda: read_status(data_dir)["lag_bytes"] == 0, what="lag 0")
        running = read_status(data_dir)
        assert running["running"] is True and running["pid"] == os.getpid()
        assert running["last_seq"] == 6


def test_status_json_has_the_documented_keys(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    append(log_dir / "trek.log", [1, 3])
    assert runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)]).exit_code == 0
    result = runner.invoke(main, ["status", "--json", "--no-follower", "--data-dir", str(data_dir)])
    assert result.exit_code == 1, result.output  # degraded: a gap
    status = json.loads(result.output)
    assert status.keys() >= STATUS_KEYS
    assert (status["indexed"], status["last_seq"], status["gaps"]) == (2, 3, [[2, 2]])
    text = runner.invoke(main, ["status"], env={"TREK_DATA_DIR": str(data_dir)})
    assert "rows indexed:    2" in text.output
    assert "seq 2" in text.output


def test_index_once_reports_what_it_did(data_dir: Path, log_dir: Path, runner: CliRunner) -> None:
    append(log_dir / "trek.log", range(1, 8))
    result = runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "indexed 7 rows from 1 file(s), rejected 0 line(s); last seq 7" in result.output


def test_a_second_indexer_command_says_who_runs_and_exits_non_zero(
    data_dir: Path, log_dir: Path, runner: CliRunner
) -> None:
    with Indexer(data_dir, watch=False):
        result = runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)])
    assert result.exit_code == 1
    assert f"another indexer (pid {os.getpid()}) is running on {data_dir}" in result.output


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trek_audit", *args]


def test_index_follows_until_sigterm_then_stops_cleanly(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    append(log_dir / "trek.log", range(1, 11))
    process = subprocess.Popen(
        _cli("index", "--data-dir", str(data_dir), "--rescan-interval", "0.05"),
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: read_status(data_dir)["indexed"] == 10, what="10 rows")
        append(log_dir / "trek.log", range(11, 21))
        wait_for(lambda: read_status(data_dir)["indexed"] == 20, what="20 rows")
        assert read_status(data_dir)["running"] is True
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"stopping on SIGTERM" in stderr
    assert read_status(data_dir)["running"] is False
    assert db.seqs() == list(range(1, 21))


def test_two_indexer_processes_at_once_never_insert_twice(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    for number in range(3, 0, -1):
        append(
            log_dir / f"trek.log.{number}",
            range(30_000 - number * 10_000 + 1, 30_000 - (number - 1) * 10_000 + 1),
        )
    append(log_dir / "trek.log", range(30_001, 30_101))
    processes = [
        subprocess.Popen(_cli("index", "--once", "--wait", "--data-dir", str(data_dir)))
        for _ in range(2)
    ]
    codes = [process.wait(timeout=120) for process in processes]
    assert codes == [0, 0]
    assert db.seqs() == list(range(1, 30_101))
    assert db.counter("indexed") == 30_100
