"""AuditWriter.from_settings: every writer setting reaches the writer, and changes what it does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from trek_audit.settings import SETTINGS, Settings
from trek_audit.writer import AuditWriter
from trek_audit.writer.appender import FAST_PATH_BUILT

from .writer_support import log_files, seqs

# Each writer setting: its variable, a value other than the default, the writer's attribute
# and what that attribute must then be.
WRITER_SETTINGS: list[tuple[str, str, str, Any]] = [
    ("TREK_LOG_MAX_BYTES", "12345", "max_bytes", 12345),
    ("TREK_LOG_BACKUPS", "7", "backups", 7),
    ("TREK_LOG_MAX_LINE_BYTES", "4096", "max_line_bytes", 4096),
    ("TREK_LOG_FSYNC", "true", "fsync", True),
    ("TREK_WRITER_PURE_PYTHON", "true", "fast_path", False),
]


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    WRITER_SETTINGS,
    ids=[variable for variable, *_ in WRITER_SETTINGS],
)
def test_each_writer_setting_reaches_a_writer_made_from_settings(
    data_dir: Path, variable: str, value: str, attribute: str, expected: Any
) -> None:
    default = SETTINGS[variable].default_value
    assert default != SETTINGS[variable].parse(value)  # else this test could not fail
    environ = {"TREK_DATA_DIR": str(data_dir), variable: value}
    with AuditWriter.from_settings(Settings.from_env(environ)) as w:
        assert getattr(w, attribute) == expected
    with AuditWriter.from_settings(Settings.from_env({"TREK_DATA_DIR": str(data_dir)})) as w:
        assert getattr(w, attribute) != expected


def test_the_writer_writes_into_the_log_directory_of_the_data_directory(data_dir: Path) -> None:
    with AuditWriter.from_settings(Settings.from_env({"TREK_DATA_DIR": str(data_dir)})) as w:
        assert w.log_dir == Settings(data_dir=data_dir).data.log_dir == data_dir / "logs"
        w.record("user.login")
    assert seqs(data_dir / "logs") == [1]


def test_a_writer_made_without_settings_has_the_declared_defaults(log_dir: Path) -> None:
    defaults = Settings()
    with AuditWriter(log_dir, fast_path=True) as w:
        assert (w.max_bytes, w.backups, w.max_line_bytes, w.fsync) == (
            defaults.log_max_bytes,
            defaults.log_backups,
            defaults.max_line_bytes,
            defaults.log_fsync,
        )
        assert w.fast_path is FAST_PATH_BUILT


def test_overrides_win_over_the_settings_and_none_leaves_a_setting_as_it_is(
    data_dir: Path,
) -> None:
    settings = Settings.from_env({"TREK_DATA_DIR": str(data_dir), "TREK_LOG_BACKUPS": "3"})
    with AuditWriter.from_settings(settings, log_max_bytes=300, log_backups=None) as w:
        assert (w.max_bytes, w.backups) == (300, 3)


def test_the_settings_limits_govern_rotation_and_line_length(data_dir: Path) -> None:
    environ = {
        "TREK_DATA_DIR": str(data_dir),
        "TREK_LOG_MAX_BYTES": "300",
        "TREK_LOG_BACKUPS": "1",
        "TREK_LOG_MAX_LINE_BYTES": "512",
    }
    with AuditWriter.from_settings(Settings.from_env(environ)) as w:
        for _ in range(3):  # ~200 bytes each: one event per file
            w.record("user.login")
        with pytest.raises(ValueError, match=r"max_line_bytes=512 \(TREK_LOG_MAX_LINE_BYTES\)"):
            w.record("user.login", details={"x": "a" * 600})
    logs = data_dir / "logs"
    assert [path.name for path in log_files(logs)] == ["trek.log.1", "trek.log"]
    assert seqs(logs) == [2, 3]


def test_trek_log_fsync_syncs_every_line(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted_fsync)
    environ = {"TREK_DATA_DIR": str(data_dir), "TREK_LOG_FSYNC": "1"}
    with AuditWriter.from_settings(Settings.from_env(environ)) as w:
        w.record("user.login")
        before = len(synced)
        w.record("user.login")
        w.record("user.login")
    assert len(synced) - before == 2
