"""rsyslog ships trek.log* to a central trek-audit, with deploy/shippers/'s configurations.

An app host's rsyslog follows ``logs/trek.log*`` and forwards over RELP to a central rsyslog,
which writes the host's lines to ``sources/<host>/trek.log`` of the central data directory;
the central indexer drops the lines rsyslog ships twice. Each test runs its own rsyslogd
instances (see shippers_support.py); TREK_TEST_SHORT=1 shortens the runs.
"""

from __future__ import annotations

import grp
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from trek_audit.layout import LOG_FILE_MODE, SETGID_DIR_MODE, DataDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriter

from .e2e_support import wait_for
from .shippers_support import (
    SHORT,
    Rsyslog,
    WriterPlan,
    following_indexer,
    free_port,
    indexed,
    last_seq,
    log_files,
    pause,
    receiver_config,
    rotations_since,
    row_of,
    rsyslogd,
    sender_config,
    shipped,
    source_status,
    wait_shipped,
    writers,
    written,
)

pytestmark = pytest.mark.slow
HOST = "app1"


@pytest.fixture(autouse=True)
def rsyslog_installed() -> None:
    rsyslogd()


def own_group() -> str:
    return grp.getgrgid(os.getgid()).gr_name


def receiver(home: Path, central: DataDir, port: int, group: str | None = None) -> Rsyslog:
    config = receiver_config(central.root, home / "work", port, group or own_group())
    return Rsyslog(home, config, listens=port)


def sender(
    home: Path, app: Path, port: int, user: str | None = None, groups: Sequence[int] = ()
) -> Rsyslog:
    config = sender_config(app, home / "work", port, HOST)
    return Rsyslog(home, config, user=user, groups=groups)


def prepare_host(app: Path, **settings: Any) -> None:
    """The app host's logs/ as its writer makes it, before any shipper watches it."""
    AuditWriter.from_settings(Settings.from_env(data_dir=app, **settings)).close()


def test_a_shipper_restarted_across_rotations_delivers_every_event_exactly_once(
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


def test_b_a_64_kib_line_arrives_whole(tmp_path: Path) -> None:
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


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's own temporary directories are 0700)."""
    with tempfile.TemporaryDirectory(prefix="trek-shippers-") as name:
        # Other users may pass through to the directories given to them, and list nothing.
        os.chmod(name, 0o711)  # noqa: S103
        yield Path(name)


def unused_gid() -> int:
    gid = 47_000
    while True:
        try:
            grp.getgrgid(gid)
        except KeyError:
            return gid
        gid += 1


def test_c_a_shipper_running_as_another_user_in_the_log_group_reads_everything(
    tmp_path: Path, shared_dir: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the shipper runs as nobody")
    app, central = shared_dir / "app", DataDir(tmp_path / "central")
    # A group of its own, given to the shipper's process alone: no other user is in it.
    log_group = unused_gid()
    count = 2000 if SHORT else 20_000
    plan = WriterPlan(app, tmp_path / "written", count, 2000, 100_000, 50)
    port = free_port()
    prepare_host(app, log_group=str(log_group))
    with (
        receiver(tmp_path / "receiver", central, port),
        sender(shared_dir / "sender", app, port, user="nobody", groups=[log_group]),
    ):
        with writers([plan], env={"TREK_LOG_GROUP": str(log_group)}):
            pass
        lines = written([plan])
        wait_shipped(central.source(HOST), lines)
    assert set(shipped(central.source(HOST))) == set(lines)
    logs = DataDir(app).logs
    info = logs.path.stat()
    assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (log_group, SETGID_DIR_MODE)
    assert len(log_files(logs)) > 1, "the shipper read rotated files too"
    for path in log_files(logs):
        info = path.stat()
        assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (log_group, LOG_FILE_MODE)
