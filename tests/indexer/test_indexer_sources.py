"""Many sources: <data>/logs ("local") and each <data>/sources/<name>/, every one with its own
seq, its own positions, gaps, counters and chain, indexed into one audit.db."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer
from trek_audit.store import read_status

from .logfiles import (
    IDLE_CPU_SHARE,
    IDLE_SECONDS,
    Reader,
    append,
    idle_cpu_of_trek_audit_index,
    wait_for,
)
from .sources_support import ids_by_source, ids_on_disk, seqs_of, source_dir, source_gaps, write

HOSTS = ("web1", "web2", "web3")


def test_every_event_of_every_source_is_indexed_once_with_its_source(
    data_dir: Path, db: Reader
) -> None:
    counts = {"local": 120, "web1": 200, "web2": 150, "web3": 90}
    for name, count in counts.items():
        write(source_dir(data_dir, name), count, max_bytes=4096)

    report = Indexer(data_dir).run_once()

    assert report.rows == sum(counts.values())
    indexed = ids_by_source(db)
    for name in counts:
        assert sorted(indexed[name]) == sorted(ids_on_disk(source_dir(data_dir, name)))
    status = read_status(data_dir)
    sources = {source["name"]: source for source in status["sources"]}
    assert [source["name"] for source in status["sources"]] == ["local", *HOSTS]
    assert {name: sources[name]["indexed"] for name in counts} == counts
    assert {name: sources[name]["last_seq"] for name in counts} == counts
    assert {name: sources[name]["next_seq"] for name in counts} == {
        name: count + 1 for name, count in counts.items()
    }
    assert (status["indexed"], status["last_seq"], status["gaps"]) == (560, 120, [])
    assert (status["incidents"], status["rejected"], status["duplicates_dropped"]) == (0, 0, 0)
    assert status["lag_bytes"] == 0


def test_per_source_gaps_are_exact_when_a_rotated_file_is_deleted_before_it_is_read(
    data_dir: Path, db: Reader
) -> None:
    for name in ("local", *HOSTS):
        write(source_dir(data_dir, name), 300, max_bytes=4096)
    lost = source_dir(data_dir, "web2") / "trek.log.3"
    missing = seqs_of(lost)
    lost.unlink()

    Indexer(data_dir).run_once()

    assert source_gaps(db, "web2") == [(missing[0], missing[-1])]
    assert [source_gaps(db, name) for name in ("local", "web1", "web3")] == [[], [], []]
    sources = {source["name"]: source for source in read_status(data_dir)["sources"]}
    assert sources["web2"]["missing"] == len(missing)
    assert sources["web2"]["indexed"] == 300 - len(missing)
    assert read_status(data_dir)["incidents"] == 0


def test_a_source_that_appears_while_following_is_indexed_and_watched(
    data_dir: Path, db: Reader
) -> None:
    write(source_dir(data_dir, "local"), 5)
    with Indexer(data_dir, rescan_interval=0.2) as indexer:
        wait_for(lambda: read_status(data_dir)["indexed"] == 5, what="the local rows")
        write(source_dir(data_dir, "web1"), 7)
        wait_for(lambda: read_status(data_dir)["indexed"] == 12, what="the new source's rows")
        # Watched now: a write wakes the indexer long before a rescan would.
        indexer.rescan_interval = 60.0
        indexer.wake()
        scans = indexer.scans
        wait_for(lambda: indexer.scans > scans, what="a pass at the longer interval")
        write(source_dir(data_dir, "web1"), 3)
        wait_for(lambda: read_status(data_dir)["indexed"] == 15, timeout=5, what="woken")
    assert len(ids_by_source(db)["web1"]) == 10


def test_links_and_odd_entries_in_sources_are_skipped_with_a_warning(
    data_dir: Path, db: Reader, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere, 4)
    sources = data_dir / "sources"
    sources.mkdir()
    (sources / "linked").symlink_to(elsewhere)
    (sources / ".hidden").mkdir()
    write(sources / ".hidden", 2)
    (sources / "local").mkdir()
    write(sources / "local", 2)
    (sources / "a-file").write_bytes(b"")
    real = source_dir(data_dir, "web1")
    write(real, 3)
    (real / "trek.log.9").symlink_to(elsewhere / "trek.log")

    with caplog.at_level(logging.WARNING):
        Indexer(data_dir).run_once()

    assert {name: len(ids) for name, ids in ids_by_source(db).items()} == {"web1": 3}
    skipped = " ".join(record.getMessage() for record in caplog.records)
    for name in ("linked", ".hidden", "local", "a-file"):
        assert f"{sources / name}:" in skipped
    assert db.incidents() == [
        ("not_a_file", "trek.log.9 is a symbolic link, not a log file: skipped, never followed "
         "or read"),
    ]  # fmt: skip


def test_a_sources_directory_that_is_a_link_is_not_followed(
    data_dir: Path, db: Reader, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "web1", 4)
    (data_dir / "sources").symlink_to(elsewhere)
    write(source_dir(data_dir, "local"), 2)
    Indexer(data_dir).run_once()
    assert set(ids_by_source(db)) == {"local"}


def test_the_same_seqs_in_two_sources_are_no_repeat_and_no_gap(data_dir: Path, db: Reader) -> None:
    append(source_dir(data_dir, "local") / "trek.log", range(1, 11))
    append(source_dir(data_dir, "web1") / "trek.log", range(1, 11))
    append(source_dir(data_dir, "web1") / "trek.log", range(13, 15))
    Indexer(data_dir).run_once()
    assert db.incidents() == []
    assert (source_gaps(db, "local"), source_gaps(db, "web1")) == ([], [(11, 12)])
    status = read_status(data_dir)
    assert (status["gaps"], status["missing"], status["last_seq"]) == ([[11, 12]], 2, 10)


INDEXER = [sys.executable, "-m", "trek_audit", "index", "-q", "--rescan-interval", "0.02"]


@pytest.mark.slow
def test_kill_9_and_restarts_resume_every_source_where_it_stopped(
    data_dir: Path, db: Reader
) -> None:
    counts = {"local": 3_000, "web1": 4_000, "web2": 2_500}
    writers = [
        threading.Thread(
            target=write,
            args=(source_dir(data_dir, name), count),
            kwargs={"max_bytes": 64 * 1024, "pace": 0.05},
        )
        for name, count in counts.items()
    ]
    for thread in writers:
        thread.start()
    pause = threading.Event()
    kills_while_writing = 0
    try:
        while any(thread.is_alive() for thread in writers) or kills_while_writing < 2:
            process = subprocess.Popen([*INDEXER, "--data-dir", str(data_dir)])
            try:
                wait_for(lambda: read_status(data_dir)["running"], timeout=30, what="start-up")
                pause.wait(0.3)
                kills_while_writing += any(thread.is_alive() for thread in writers)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
    finally:
        for thread in writers:
            thread.join()

    Indexer(data_dir).run_once()

    indexed = ids_by_source(db)
    for name, count in counts.items():
        assert len(indexed[name]) == count
        assert set(indexed[name]) == ids_on_disk(source_dir(data_dir, name))
    status = read_status(data_dir)
    assert (status["indexed"], status["gaps"], status["incidents"]) == (9_500, [], 0)
    assert {source["name"]: source["last_seq"] for source in status["sources"]} == counts


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_an_idle_trek_audit_index_with_several_sources_uses_under_one_percent_of_a_core(
    data_dir: Path,
) -> None:
    for name in ("local", *HOSTS):
        write(source_dir(data_dir, name), 50, max_bytes=2048)  # several files each
    Indexer(data_dir).run_once()
    used = idle_cpu_of_trek_audit_index(data_dir)
    assert used < IDLE_CPU_SHARE * IDLE_SECONDS, f"{used:.2f} s of CPU in {IDLE_SECONDS} s idle"
