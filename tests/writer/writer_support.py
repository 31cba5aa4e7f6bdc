"""Helpers for the writer's tests: read back what got written, check seq runs, mount a tmpfs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from trek_audit.writer import decode
from trek_audit.writer.line import Event

# Soak and stress tests run a short mode when TREK_TEST_SHORT is set (CI sets it).
SHORT_MODE = bool(os.environ.get("TREK_TEST_SHORT"))


def log_files(log_dir: Path) -> list[Path]:
    """trek.log and its rotations, oldest first."""
    rotated = sorted(
        (p for p in log_dir.glob("trek.log.*") if p.name.rsplit(".", 1)[1].isdigit()),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
        reverse=True,
    )
    current = log_dir / "trek.log"
    return rotated + ([current] if current.exists() else [])


def read_events(log_dir: Path) -> list[Event]:
    """Every event in trek.log and its rotations, oldest file first; each line must decode."""
    events: list[Event] = []
    for path in log_files(log_dir):
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{path.name} ends in a partial line"
        events.extend(decode(line) for line in data.split(b"\n")[:-1])
    return events


def seqs(log_dir: Path) -> list[int]:
    return [event["seq"] for event in read_events(log_dir)]


def assert_no_gaps(found: list[int], first: int = 1) -> None:
    """The seqs, in file order, are first, first+1, ... with no gap or repeat."""
    assert found == list(range(first, first + len(found)))


def remount(mount_point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount_point)], check=True)


def is_root() -> bool:
    return os.geteuid() == 0


def skip_outside_ci(reason: str) -> None:
    """Skip with the reason; in CI (CI set) fail instead, so nothing is skipped there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run every writer test")
    pytest.skip(reason)
