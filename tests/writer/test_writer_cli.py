"""`trek-audit record` through click's CliRunner, and the process-default writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import trek_audit.writer as writer
from trek_audit.cli import main
from trek_audit.writer import decode

from .writer_support import read_events


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"TREK_DATA_DIR": str(tmp_path / "data")}


def test_record_appends_one_event_and_prints_it_as_written(
    runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    result = runner.invoke(
        main,
        [
            "record",
            "user.login",
            "--user-id",
            "7",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--resource",
            "session",
            "--ip",
            "203.0.113.5",
            "--details",
            '{"method": "password", "n": [1, 2]}',
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    log = tmp_path / "data" / "logs" / "trek.log"
    assert result.output.encode() == log.read_bytes()
    event = decode(log.read_bytes())
    assert event["user"] == {"id": 7, "username": "alice", "email": "alice@example.com"}
    assert event["resource"] == "session" and event["ip"] == "203.0.113.5"
    assert event["details"] == {"method": "password", "n": [1, 2]}
    assert event["seq"] == 1


def test_record_without_user_options_writes_an_anonymous_actor(
    runner: CliRunner, env: dict[str, str]
) -> None:
    result = runner.invoke(main, ["record", "user.login_failed"], env=env)
    assert result.exit_code == 0, result.output
    event = json.loads(result.output)
    assert event["user"] is None and event["details"] is None


def test_record_seq_continues_across_invocations(
    runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    for _ in range(3):
        assert runner.invoke(main, ["record", "trip.create"], env=env).exit_code == 0
    assert [e["seq"] for e in read_events(tmp_path / "data" / "logs")] == [1, 2, 3]


def test_record_honours_data_dir_and_rotation_options(runner: CliRunner, tmp_path: Path) -> None:
    for _ in range(3):
        result = runner.invoke(
            main,
            [
                "record",
                "trip.create",
                "--data-dir",
                str(tmp_path / "d"),
                "--max-bytes",
                "300",
                "--backups",
                "1",
            ],
        )
        assert result.exit_code == 0, result.output
    logs = tmp_path / "d" / "logs"
    assert sorted(p.name for p in logs.glob("trek.log*")) == ["trek.log", "trek.log.1"]
    assert [e["seq"] for e in read_events(logs)] == [2, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["record", "User.Login"], "malformed action key 'User.Login'"),
        (["record", "login"], "malformed action key"),
        (["record", "a.b", "--details", "{nope"], "--details"),
        (["record", "a.b", "--details", "[1, 2]"], "must be a JSON object"),
        (["record", "a.b", "--details", '{"x": 1e400}'], "details"),
        (["record", "a.b", "--user-id", "seven"], "'seven' is not a valid integer"),
    ],
    ids=["uppercase-action", "no-dot-action", "bad-json", "json-array", "json-inf", "bad-user-id"],
)
def test_record_rejects_bad_input_with_exit_2_and_writes_nothing(
    runner: CliRunner, env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "data" / "logs" / "trek.log").exists()


def test_record_write_failure_exits_1_with_the_file_and_cause(
    runner: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "data" / "logs" / "trek.log").mkdir(parents=True)
    result = runner.invoke(main, ["record", "user.login"], env=env)
    assert result.exit_code == 1
    log = tmp_path / "data" / "logs" / "trek.log"
    assert f"Error: cannot append to {log}: Is a directory" in result.output


def test_record_reports_a_bad_setting(runner: CliRunner, env: dict[str, str]) -> None:
    result = runner.invoke(main, ["record", "a.b"], env={**env, "TREK_LOG_MAX_LINE_BYTES": "lots"})
    assert result.exit_code == 2
    assert "invalid TREK_LOG_MAX_LINE_BYTES='lots'" in result.output
    result = runner.invoke(main, ["record", "a.b"], env={**env, "TREK_LOG_MAX_BYTES": "lots"})
    assert result.exit_code == 2
    assert "invalid TREK_LOG_MAX_BYTES='lots'" in result.output
    assert not (Path(env["TREK_DATA_DIR"]) / "logs" / "trek.log").exists()


def test_record_help_shows_an_example(runner: CliRunner) -> None:
    result = runner.invoke(main, ["record", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "trek-audit record user.login" in result.output
    assert "TREK_DATA_DIR" in result.output


def test_default_writer_follows_the_settings_and_survives_a_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_path: str
) -> None:
    monkeypatch.setenv("TREK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TREK_LOG_MAX_BYTES", "12345")
    monkeypatch.setenv("TREK_LOG_BACKUPS", "2")
    writer.reset_default_writer()
    try:
        assert writer.record("user.login")["seq"] == 1
        default = writer.default_writer()
        assert default.log_dir == tmp_path / "data" / "logs"
        assert (default.max_bytes, default.backups) == (12345, 2)
        # The writer_path fixture set TREK_WRITER_PURE_PYTHON for the Python path.
        assert default.fast_path is (writer_path == "c")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if writer.record("user.login")["seq"] == 2 else 3
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert writer.record("user.login")["seq"] == 3
    finally:
        writer.reset_default_writer()
