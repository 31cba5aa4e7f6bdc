"""The whole system at once (benchmarks/soak.py --short): writers, serve, faults and HTTP load
on one data directory, and every figure of its table checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
# The rows each run must show, with the verdict "ok".
KEY_CHECKS = (
    "duplicates (event id, seq)",
    "hostile content altered on the way",
    "acknowledged missing outside gaps",
    "acknowledged with another seq",
    "gaps reported / real",
    "seqs missing outside dropped files",
    "a gap from the long stop",
    "missing events: status / metrics / real",
    "malformed rejected / written (kept)",
    "indexer kills survived",
    "serve kills survived / long stops",
    "full disk: AuditWriteError (writer/others)",
    "full disk: login refused / after",
    "HTTP unexpected status",
    "HTTP 5xx",
    "verify: problems / malformed lines on disk",
    "metrics: indexed / rejected",
)


def table_rows(output: str) -> dict[str, tuple[str, str]]:
    """The soak's table as check name -> (figure, verdict)."""
    rows = {}
    for line in output.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) >= 2:
            verdict = parts[-1] if parts[-1] in ("ok", "FAIL") else ""
            rows[parts[0]] = (parts[1], verdict)
    return rows


@pytest.mark.timeout(420)
def test_the_whole_system_keeps_every_promise_under_load_crashes_and_bad_input_at_once() -> None:
    run = subprocess.run(
        [sys.executable, str(SOAK), "--short"],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    rows = table_rows(run.stdout)
    for name in KEY_CHECKS:
        assert rows.get(name, ("", ""))[1] == "ok", f"{name}: {rows.get(name)}\n{output}"
    assert rows["duplicates (event id, seq)"][0] == "0, 0"
    assert rows["acknowledged missing outside gaps"][0] == "0"
    assert rows["HTTP 5xx"][0] == "0"
    reported, real = rows["gaps reported / real"][0].split(" / ")
    assert reported == real != "[]"
    assert "FAIL" not in run.stdout
    assert "soak passed" in run.stdout
