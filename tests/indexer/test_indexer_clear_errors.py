"""A data directory trek-audit cannot use: one line naming the file, exit 2, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from trek_audit.cli import main

from .logfiles import append

TREK_AUDIT = str(Path(sys.executable).parent / "trek-audit")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _damage_header(path: Path) -> None:
    with open(path, "r+b") as file:
        file.write(b"this is no database header")


@pytest.mark.parametrize("command", [["index", "--once"], ["index", "--no-watch"]])
def test_index_on_an_audit_db_with_a_damaged_header_says_so_in_one_line(
    runner: CliRunner, data_dir: Path, log_dir: Path, command: list[str]
) -> None:
    append(log_dir / "trek.log", [1, 2])
    assert runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)]).exit_code == 0
    _damage_header(data_dir / "audit.db")
    result = runner.invoke(main, [*command, "--data-dir", str(data_dir)])
    assert result.exit_code == 2, result.output
    [message] = result.output.strip().splitlines()
    assert str(data_dir / "audit.db") in message
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_status_on_an_audit_db_with_a_damaged_header_exits_2_naming_it(
    runner: CliRunner, data_dir: Path, log_dir: Path
) -> None:
    append(log_dir / "trek.log", [1])
    runner.invoke(main, ["index", "--once", "--data-dir", str(data_dir)])
    _damage_header(data_dir / "audit.db")
    result = runner.invoke(main, ["status", "--data-dir", str(data_dir)])
    assert result.exit_code == 2
    assert "audit.db cannot be read" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def read_only_data_dir() -> Iterator[tuple[Path, list[str]]]:
    """A data directory with a log file, and the command prefix of a user who cannot write it.

    Root may write anywhere, so as root the commands run as nobody (setpriv).
    """
    root = Path(tempfile.mkdtemp())
    try:
        data = root / "data"
        (data / "logs").mkdir(parents=True)
        append(data / "logs" / "trek.log", [1, 2])
        for path in (root, data, data / "logs"):
            path.chmod(0o755)
        (data / "logs" / "trek.log").chmod(0o644)
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv to drop privileges")
            prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            data.chmod(0o555)
            prefix = []
        yield data, prefix
    finally:
        (root / "data").chmod(0o755)
        shutil.rmtree(root)


def test_index_on_a_read_only_data_directory_says_so_in_one_line(
    read_only_data_dir: tuple[Path, list[str]],
) -> None:
    data, prefix = read_only_data_dir
    result = subprocess.run(
        [*prefix, TREK_AUDIT, "index", "--once", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    [message] = result.stderr.strip().splitlines()
    assert str(data) in message
    assert "Permission denied" in message
