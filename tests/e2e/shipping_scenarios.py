"""The runs every shipper is put through, whichever it is (rsyslog, syslog-ng).

A test gives the factories of its receiving and sending instances; the run writes events on
an app host, lets the shipper carry them to a central data directory and checks what arrived
and what the central indexer made of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from trek_audit.layout import DataDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriter

from .e2e_support import free_port, wait_for
from .shippers_support import (
    SHORT,
    WriterPlan,
    following_indexer,
    indexed,
    last_seq,
    pause,
    rotations_since,
    row_of,
    shipped,
    source_status,
    wait_shipped,
    writers,
    written,
)

__all__ = [
    "Receiver",
    "Sender",
    "Shipper",
    "a_64_kib_line_arrives_whole",
    "prepare_host",
    "restarted_across_rotations",
]


class Shipper(Protocol):
    """A private shipper instance: started by its context, stopped and started again at will."""

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


# (its home, the central data directory, the port it listens on)
Receiver = Callable[[Path, DataDir, int], Shipper]
# (its home, the app host's data directory, the receiver's port)
Sender = Callable[[Path, Path, int], Shipper]


def prepare_host(app: Path, **settings: Any) -> None:
    """The app host's logs/ as its writer makes it, before any shipper watches it."""
    AuditWriter.from_settings(Settings.from_env(data_dir=app, **settings)).close()


def restarted_across_rotations(
    tmp_path: Path, host: str, receiver: Receiver, sender: Sender
) -> None:
    """A sender stopped while three files rotate past it and started again delivers every
    line byte for byte, and the central audit.db holds every event exactly once, as written,
    its repeats counted as dropped duplicates."""
    app, central = tmp_path / "app", DataDir(tmp_path / "central")
    logs = DataDir(app).logs
    seconds, writer_count, rate = (6, 2, 500) if SHORT else (20, 4, 1000)
    # About 250-byte lines: 2-4 rotations a second per writer; twenty backups (4 s or more)
    # leave a restarted shipper time to catch up on a busy machine.
    plans = [
        WriterPlan(app, tmp_path / f"written{k}", seconds * rate, rate, 60_000, 20, writer=k)
        for k in range(1, writer_count + 1)
    ]
    port = free_port()
    prepare_host(app, log_max_bytes=60_000, log_backups=20)
    with (
        receiver(tmp_path / "receiver", central, port),
        sender(tmp_path / "sender", app, port) as shipper,
        following_indexer(central, tmp_path / "index.out"),
    ):
        with writers(plans):
            pause(1.5)
            shipper.stop()
            stopped_at, seq_at_stop = time.monotonic(), last_seq(logs)
            # Stopped until three whole files rotated past it, well within the twenty kept.
            wait_for(lambda: rotations_since(logs, seq_at_stop) >= 3, timeout=30, interval=0.02)
            stopped_for = time.monotonic() - stopped_at
            assert rotations_since(logs, seq_at_stop) < 20
            shipper.start()
        lines = written(plans)
        assert len(lines) == len(plans) * seconds * rate
        wait_shipped(central.source(host), lines)
        wait_for(lambda: len(indexed(central)) >= len(lines), timeout=60, interval=0.5)
        # The indexer has caught up with every line shipped so far, repeats included.
        wait_for(lambda: source_status(central, host)["lag_bytes"] == 0, timeout=60, interval=0.5)
    arrived = shipped(central.source(host))
    assert set(arrived) == set(lines), "every line arrives byte for byte, and nothing else"
    rows = indexed(central)
    assert {row.source for row in rows} == {host}
    expected = sorted(row_of(line) for line in lines)
    assert sorted(row.row for row in rows) == expected, "each event exactly once, as written"
    report = source_status(central, host)
    assert report["gaps"] == [] and report["incidents"] == 0 and report["rejected"] == 0
    assert report["duplicates_dropped"] == len(arrived) - len(lines)
    print(
        f"stopped {stopped_for:.2f} s; {len(lines)} events, {len(arrived)} lines shipped "
        f"({len(arrived) / len(lines):.3f}x), {report['duplicates_dropped']} dropped"
    )


def a_64_kib_line_arrives_whole(
    tmp_path: Path, host: str, receiver: Receiver, sender: Sender
) -> None:
    """Lines of 64 KiB, the largest the writer makes by default, arrive whole."""
    app, central = tmp_path / "app", DataDir(tmp_path / "central")
    count = 100 if SHORT else 500
    plan = WriterPlan(app, tmp_path / "written", count, 200, 4 << 20, 4, line_bytes=65536)
    port = free_port()
    prepare_host(app)
    with (
        receiver(tmp_path / "receiver", central, port),
        sender(tmp_path / "sender", app, port),
    ):
        with writers([plan]):
            pass
        lines = written([plan])
        wait_shipped(central.source(host), lines)
    assert len(lines) == count and all(65536 - 8 <= len(line) <= 65536 for line in lines)
    assert set(shipped(central.source(host))) == set(lines)
