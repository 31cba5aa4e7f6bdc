"""``trek-audit verify``: the verdict after real use, its output, its exit status, verify.json."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from trek_audit.cli import main
from trek_audit.store.verify_report import read_report
from trek_audit.writer.seal_key import create_key_file

from .verify_support import (
    BACKUPS,
    Sealed,
    edit_line,
    index_once,
    lines,
    replace_line,
    sealed_dir,
    sealed_event_line,
)

# Each process writes with the default (C where built) path and seals when a line has waited
# the interval, when rotating, and at the end.
_WRITE = """
import sys
from trek_audit.writer import AuditWriter
audit = AuditWriter(sys.argv[1], max_bytes=8000, backups=4, seal_interval=0.05)
for n in range(int(sys.argv[2])):
    audit.record("record.update", user={"id": n, "username": "w", "email": None},
                 details={"process": sys.argv[3], "n": n})
audit.seal()
audit.close()
"""


def _write_in_processes(root: Path, processes: int, events: int) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITE, str(root / "logs"), str(events), str(number)]
        )
        for number in range(processes)
    ]
    for child in children:
        assert child.wait(timeout=120) == 0


def _verify(root: Path, *args: str, key: Path | None = None) -> Result:
    options = ["verify", "--data-dir", str(root)]
    if key is not None:
        options += ["--key-file", str(key)]
    return CliRunner().invoke(main, [*options, *args], env={"TREK_LOG_BACKUPS": str(BACKUPS)})


def _key_file(tmp_path: Path, key: bytes, text: str = "{}\n") -> Path:
    path = tmp_path / "verification.key"
    path.write_text(text.format(key.hex()))
    return path


def test_a_directory_after_rotations_several_writers_and_an_indexer_restart_is_intact(
    data_dir: Path, tmp_path: Path
) -> None:
    key = create_key_file(data_dir / "seal.key")
    _write_in_processes(data_dir, 3, 300)
    index_once(data_dir)  # the indexer stops here and starts again below
    _write_in_processes(data_dir, 2, 300)
    index_once(data_dir)
    assert (data_dir / "logs" / f"trek.log.{BACKUPS}").exists()  # older ones rotated away
    result = _verify(data_dir, key=_key_file(tmp_path, key))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "intact"
    report = read_report(Sealed(data_dir, key).data)
    assert report is not None and report["exit_code"] == 0 and report["keyed"]
    assert report["summary"]["rows"] == report["summary"]["lines"] > 100
    assert report["summary"]["seals"] >= BACKUPS  # every rotated file ends with a seal


def test_a_problem_is_one_line_with_file_line_and_seqs_then_the_summary_and_exit_1(
    data_dir: Path, tmp_path: Path
) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(1)
    number = sealed_event_line(path)
    replace_line(path, number, edit_line(lines(path)[number - 1], action="record.delete"))
    result = _verify(data_dir, key=_key_file(tmp_path, sealed.key))
    assert result.exit_code == 1
    first, *rest = result.output.splitlines()
    assert first.startswith(f"{path}:{number} (row ")
    assert ": edited [seq " in first
    assert rest[0].startswith("checked 5 files, ")
    assert rest[-1] == "NOT INTACT: 1 problem"


def test_without_a_key_it_says_plainly_that_macs_were_not_checked(data_dir: Path) -> None:
    sealed_dir(data_dir)
    result = _verify(data_dir)
    assert result.exit_code == 0, result.output
    assert "MACs were not checked" in result.output
    assert "not a forger who recomputes the hashes" in result.output
    assert result.output.splitlines()[-1] == "intact (MACs not checked)"


def test_without_a_database_the_rows_are_not_checked_and_that_is_no_failure(
    data_dir: Path,
) -> None:
    sealed_dir(data_dir, index=False)
    result = _verify(data_dir)
    assert result.exit_code == 0, result.output
    assert "no database: rows not checked" in result.output


def test_json_prints_the_report_and_verify_json_holds_it_mode_0640(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    os.symlink(data_dir / "elsewhere.json", sealed.data.verify_report)
    result = _verify(data_dir, "--json")
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.output)
    assert printed["summary"]["problems"] == 0 and printed["keyed"] is False
    stored = sealed.data.verify_report
    assert not stored.is_symlink() and not (data_dir / "elsewhere.json").exists()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o640
    assert orjson.loads(stored.read_bytes()) == printed


def test_given_paths_are_checked_alone_and_leave_no_report(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    result = _verify(data_dir, str(sealed.log(2)), str(sealed.log(3)))
    assert result.exit_code == 0, result.output
    assert "checked 2 files" in result.output
    assert not sealed.data.verify_report.exists()


@pytest.mark.parametrize(
    "text",
    [
        "{}\n",
        "verification key: {}\n",
        "  {}  \n\n",
        "trek-audit seal init\nverification key: {}\n",
    ],
    ids=["alone", "as-printed", "spaces", "whole-output"],
)
def test_the_key_file_holds_the_key_alone_or_as_printed(
    data_dir: Path, tmp_path: Path, text: str
) -> None:
    sealed = sealed_dir(data_dir)
    result = _verify(data_dir, key=_key_file(tmp_path, sealed.key, text))
    assert result.exit_code == 0, result.output
    assert "MACs were not checked" not in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot read the verification key file"),
        ("abc\n", "holds no verification key"),
        ("{}\n{}\n", "alone on one line"),
    ],
    ids=["missing", "malformed", "two-keys"],
)
def test_a_missing_or_malformed_key_file_is_exit_2_with_what_to_do(
    data_dir: Path, tmp_path: Path, text: str | None, message: str
) -> None:
    sealed = sealed_dir(data_dir, events=20)
    key = tmp_path / "verification.key"
    if text is not None:
        key.write_text(text.format(sealed.key.hex(), sealed.key.hex()))
    result = _verify(data_dir, key=key)
    assert result.exit_code == 2
    assert message in result.output


def test_the_sealing_key_file_is_refused_as_a_verification_key(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, events=20)
    result = _verify(data_dir, key=sealed.data.seal_key)
    assert result.exit_code == 2
    assert "sealing key file" in result.output


def test_the_key_file_can_come_from_the_setting(data_dir: Path, tmp_path: Path) -> None:
    sealed = sealed_dir(data_dir, events=20)
    key = _key_file(tmp_path, sealed.key)
    result = CliRunner().invoke(
        main, ["verify", "--data-dir", str(data_dir)], env={"TREK_VERIFY_KEY_FILE": str(key)}
    )
    assert result.exit_code == 0, result.output
    assert "MACs were not checked" not in result.output
