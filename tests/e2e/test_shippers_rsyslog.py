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
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from trek_audit.layout import LOG_FILE_MODE, SETGID_DIR_MODE, DataDir

from .shippers_support import (
    SHORT,
    Rsyslog,
    WriterPlan,
    free_port,
    log_files,
    receiver_config,
    rsyslogd,
    sender_config,
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


def test_a_shipper_restarted_across_rotations_delivers_every_event_exactly_once(
    tmp_path: Path,
) -> None:
    restarted_across_rotations(tmp_path, HOST, receiver, sender)


def test_b_a_64_kib_line_arrives_whole(tmp_path: Path) -> None:
    a_64_kib_line_arrives_whole(tmp_path, HOST, receiver, sender)


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
