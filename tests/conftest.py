"""Fixtures shared by every component's tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

SHORT = bool(os.environ.get("TREK_TEST_SHORT"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory, as TREK_DATA_DIR names it."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread of its own running: background work must be stopped."""
    before = set(threading.enumerate())
    yield
    deadline = threading.Event()
    leaked: list[threading.Thread] = []
    for _ in range(50):
        leaked = [
            t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon
        ]
        if not leaked:
            break
        deadline.wait(0.05)
    assert not leaked, f"test leaked threads: {[t.name for t in leaked]}"
