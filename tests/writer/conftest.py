"""Fixtures for the writer's tests: a log directory, a CLI runner, a small tmpfs.

Every writer test runs twice, once with the C fast path and once with the pure-Python path
(``writer_path``), except tests marked ``python_path_only``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from trek_audit.writer.appender import FAST_PATH_BUILT, AuditWriter

from .writer_support import skip_outside_ci

PURE_PYTHON_ENV = "TREK_WRITER_PURE_PYTHON"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "python_path_only: tests the pure-Python append path itself (e.g. faults injected into "
        "its os.write), so it runs on that path only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "writer_path" in metafunc.fixturenames:
        only_python = metafunc.definition.get_closest_marker("python_path_only") is not None
        paths = ["python"] if only_python else ["c", "python"]
        metafunc.parametrize("writer_path", paths, indirect=True, ids=[f"{p}-path" for p in paths])


@pytest.fixture(autouse=True)
def writer_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which append path the writers of a test take: "c" (the fast path) or "python".

    A writer made without ``fast_path=`` (in this process or a forked child) gets the path
    as its default; child interpreters, which make theirs from the settings, get
    TREK_WRITER_PURE_PYTHON.
    """
    path: str = request.param
    if path == "c" and not FAST_PATH_BUILT:
        if os.environ.get(PURE_PYTHON_ENV):
            pytest.skip("the C fast path is not built and TREK_WRITER_PURE_PYTHON is set")
        pytest.fail("the C fast path (writer/_fastappend.c) is not built in this install")
    defaults = AuditWriter.__init__.__kwdefaults__
    assert defaults is not None and "fast_path" in defaults
    monkeypatch.setitem(defaults, "fast_path", path == "c")
    if path == "c":
        monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)
    else:
        monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    return path


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real full disk (ENOSPC) and read-only remounts (EROFS). Needs root."""
    mount_point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        skip_outside_ci(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is private to root)."""
    base = Path(tempfile.mkdtemp(prefix="trek-audit-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)
