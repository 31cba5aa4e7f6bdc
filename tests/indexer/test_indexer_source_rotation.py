"""A shipped source's files stay bounded: the indexer rotates its trek.log once it is past the
size limit and indexed to its end, and removes a rotated file beyond the backups only once it
is indexed to its end and has rested for the grace period. Never the local source."""

from __future__ import annotations

import os
import time
from pathlib import Path

from trek_audit.indexer import Indexer
from trek_audit.indexer.retention import Retention, Trimmed, keep_bounded
from trek_audit.layout import LogDir
from trek_audit.store import read_status
from trek_audit.store.log_files import list_log_files

from .logfiles import Reader, append
from .sources_support import ids_by_source, source_dir


def names(log_dir: Path) -> list[str]:
    return [path.name for path in list_log_files(log_dir)]


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_full_indexed_trek_log_of_a_source_is_rotated_like_the_writer_does(
    data_dir: Path, db: Reader
) -> None:
    web1 = source_dir(data_dir, "web1")
    append(web1 / "trek.log", range(1, 41))
    size = (web1 / "trek.log").stat().st_size
    indexer = Indexer(data_dir, log_max_bytes=size - 1, log_backups=2)

    indexer.run_once()
    assert names(web1) == ["trek.log.1"]  # indexed to its end, then renamed
    # The receiver appends to the renamed file until it reopens the name: read by its key.
    append(web1 / "trek.log.1", range(41, 46))
    append(web1 / "trek.log", range(46, 91))
    indexer.run_once()
    assert names(web1) == ["trek.log.1", "trek.log.2"]
    append(web1 / "trek.log", range(91, 136))
    indexer.run_once()
    assert names(web1) == ["trek.log.1", "trek.log.2", "trek.log.3"]  # .3 rests first

    assert sorted(db.seqs()) == list(range(1, 136))
    assert (db.incidents(), db.gaps()) == ([], [])
    assert read_status(data_dir)["lag_bytes"] == 0


def test_a_rotated_file_beyond_the_backups_goes_only_once_indexed_and_rested(
    data_dir: Path, db: Reader
) -> None:
    web1 = source_dir(data_dir, "web1")
    indexer = Indexer(data_dir, log_max_bytes=100, log_backups=1, source_grace=60.0)
    for first in (1, 11, 21):
        append(web1 / "trek.log", range(first, first + 10))
        indexer.run_once()
    assert names(web1) == ["trek.log.1", "trek.log.2", "trek.log.3"]
    indexer.run_once()
    assert names(web1) == ["trek.log.1", "trek.log.2", "trek.log.3"]  # written just now

    age(web1 / "trek.log.3", 120)
    append(web1 / "trek.log.2", range(31, 33))  # the receiver still appends to it
    indexer.run_once()
    assert names(web1) == ["trek.log.1", "trek.log.2"]
    age(web1 / "trek.log.2", 120)
    indexer.run_once()
    assert names(web1) == ["trek.log.1"]
    assert sorted(db.seqs()) == list(range(1, 33))
    assert (db.incidents(), db.gaps()) == ([], [])


def test_a_rested_file_not_indexed_to_its_end_is_kept(data_dir: Path) -> None:
    web1 = source_dir(data_dir, "web1")
    append(web1 / "trek.log.5", range(1, 11))
    age(web1 / "trek.log.5", 3600)
    size = (web1 / "trek.log.5").stat().st_size
    for read in (None, 0, size - 1):

        def indexed_to(key: str, read: int | None = read) -> int | None:
            return read

        trimmed = keep_bounded(LogDir(web1), indexed_to, Retention(100, 1, 60.0))
        assert trimmed == Trimmed(False, [])
    trimmed = keep_bounded(LogDir(web1), lambda key: size, Retention(100, 1, 60.0))
    assert trimmed == Trimmed(False, ["trek.log.5"])


def test_the_local_source_is_never_rotated_by_the_indexer(data_dir: Path, db: Reader) -> None:
    logs = source_dir(data_dir, "local")
    append(logs / "trek.log", range(1, 41))
    Indexer(data_dir, log_max_bytes=100, log_backups=0, source_grace=0.0).run_once()
    assert names(logs) == ["trek.log"]
    assert set(ids_by_source(db)) == {"local"}


def test_a_source_file_not_indexed_to_its_end_is_not_rotated(data_dir: Path) -> None:
    web1 = source_dir(data_dir, "web1")
    append(web1 / "trek.log", range(1, 41))
    append(web1 / "trek.log", b'{"v":1,"id":"half a line')  # still being written
    Indexer(data_dir, log_max_bytes=100, log_backups=1).run_once()
    assert names(web1) == ["trek.log"]


def test_a_source_a_trek_audit_writer_keeps_is_never_rotated_or_trimmed(data_dir: Path) -> None:
    # trek-import (or an app's own writer on a source) rotates its files itself and keeps
    # every one: the indexer leaves a directory with a writer's state alone.
    imported = source_dir(data_dir, "trek-import")
    append(imported / "trek.log.2", range(1, 21))
    append(imported / "trek.log.1", range(21, 41))
    append(imported / "trek.log", range(41, 61))
    LogDir(imported).state_dir.mkdir()
    Indexer(data_dir, log_max_bytes=100, log_backups=0, source_grace=0.0).run_once()
    assert names(imported) == ["trek.log", "trek.log.1", "trek.log.2"]
    assert read_status(data_dir)["indexed"] == 60
