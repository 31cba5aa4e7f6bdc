"""Fixtures for the indexer: a data directory, its log directory and its database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .logfiles import Reader


@pytest.fixture
def log_dir(data_dir: Path) -> Path:
    path = data_dir / "logs"
    path.mkdir()
    return path


@pytest.fixture
def db(data_dir: Path) -> Iterator[Reader]:
    """A read-only view of <data>/audit.db, opened lazily (the indexer creates it)."""
    reader = Reader(data_dir / "audit.db")
    yield reader
    reader.close()
