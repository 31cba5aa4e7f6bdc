"""syslog-ng ships trek.log* to a central trek-audit, with deploy/shippers/'s configurations.

An app host's syslog-ng follows ``logs/trek.log*`` (wildcard-file, follow-freq(0.1)) and
forwards over TCP to a central syslog-ng on 127.0.0.1, which writes the host's lines to
``sources/<host>/trek.log`` of the central data directory; the central indexer drops the
lines syslog-ng ships more than once. syslog-ng runs unpacked (see syslog_ng_support.py);
TREK_TEST_SHORT=1 shortens the runs.
"""

from __future__ import annotations

import grp
import os
import time
from pathlib import Path
from typing import Any

import pytest

from trek_audit.layout import DataDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriter

from .e2e_support import wait_for
from .shippers_support import (
    SHORT,
    WriterPlan,
    following_indexer,
    free_port,
    indexed,
    last_seq,
    lines_of,
    pause,
    rotations_since,
    row_of,
    shipped,
    source_status,
    wait_shipped,
    writers,
    written,
)
from .syslog_ng_support import SyslogNg, receiver_config, sender_config, syslog_ng_tree

pytestmark = pytest.mark.slow
HOST = "app1"


@pytest.fixture(autouse=True)
def syslog_ng_unpacked() -> None:
    syslog_ng_tree()


def receiver(home: Path, central: DataDir, port: int) -> SyslogNg:
    group = grp.getgrgid(os.getgid()).gr_name
    return SyslogNg(home, receiver_config(central.root, port, group), listens=port)


def sender(home: Path, app: Path, port: int) -> SyslogNg:
    return SyslogNg(home, sender_config(app, home / "work", port, HOST))


def prepare_host(app: Path, **settings: Any) -> None:
    """The app host's logs/ as its writer makes it, before any shipper watches it."""
    AuditWriter.from_settings(Settings.from_env(data_dir=app, **settings)).close()


def test_a_sender_restarted_across_rotations_delivers_every_event_exactly_once(
    tmp_path: Path,
) -> None:
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
        wait_shipped(central.source(HOST), lines)
        wait_for(lambda: len(indexed(central)) >= len(lines), timeout=60, interval=0.5)
        # The indexer has caught up with every line shipped so far, repeats included.
        wait_for(lambda: source_status(central, HOST)["lag_bytes"] == 0, timeout=60, interval=0.5)
    arrived = shipped(central.source(HOST))
    assert set(arrived) == set(lines), "every line arrives byte for byte, and nothing else"
    rows = indexed(central)
    assert {row.source for row in rows} == {HOST}
    expected = sorted(row_of(line) for line in lines)
    assert sorted(row.row for row in rows) == expected, "each event exactly once, as written"
    report = source_status(central, HOST)
    assert report["gaps"] == [] and report["incidents"] == 0 and report["rejected"] == 0
    assert report["duplicates_dropped"] == len(arrived) - len(lines)
    print(
        f"stopped {stopped_for:.2f} s; {len(lines)} events, {len(arrived)} lines shipped "
        f"({len(arrived) / len(lines):.3f}x), {report['duplicates_dropped']} dropped"
    )


def test_a_64_kib_line_arrives_whole(tmp_path: Path) -> None:
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
        wait_shipped(central.source(HOST), lines)
    assert len(lines) == count and all(65536 - 8 <= len(line) <= 65536 for line in lines)
    assert set(shipped(central.source(HOST))) == set(lines)


def test_the_writers_state_directory_is_not_shipped(tmp_path: Path) -> None:
    app, central = tmp_path / "app", DataDir(tmp_path / "central")
    logs = DataDir(app).logs
    plan = WriterPlan(app, tmp_path / "written", 200, 200, 4 << 20, 4)
    port = free_port()
    prepare_host(app)
    # A file the pattern trek.log* would match, were the state directory entered: its event
    # (another writer's) would arrive among the host's lines.
    other = DataDir(tmp_path / "other")
    with AuditWriter.from_settings(Settings.from_env(data_dir=other.root)) as writer:
        writer.record("trip.update", resource="trip/planted")
    planted = logs.state_dir / "trek.log"
    planted.write_bytes(other.logs.log_file.read_bytes())
    with (
        receiver(tmp_path / "receiver", central, port),
        sender(tmp_path / "sender", app, port),
    ):
        with writers([plan]):
            pass
        lines = written([plan])
        wait_shipped(central.source(HOST), lines)
        # Whatever it would ship from the state directory has had the time to arrive.
        pause(1)
    assert logs.lock_file.stat().st_size > 0, "the writer's state page is there to be shipped"
    arrived = shipped(central.source(HOST))
    assert set(arrived) == set(lines)
    assert lines_of(planted) and not set(lines_of(planted)) & set(arrived)
