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
from pathlib import Path

import pytest

from trek_audit.layout import DataDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriter

from .shippers_support import (
    WriterPlan,
    free_port,
    lines_of,
    pause,
    shipped,
    wait_shipped,
    writers,
    written,
)
from .shipping_scenarios import (
    a_64_kib_line_arrives_whole,
    prepare_host,
    restarted_across_rotations,
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


def test_a_sender_restarted_across_rotations_delivers_every_event_exactly_once(
    tmp_path: Path,
) -> None:
    restarted_across_rotations(tmp_path, HOST, receiver, sender)


def test_a_64_kib_line_arrives_whole(tmp_path: Path) -> None:
    a_64_kib_line_arrives_whole(tmp_path, HOST, receiver, sender)


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
