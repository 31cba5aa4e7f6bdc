"""Many hosts, one panel: three app hosts ship over RELP to one central rsyslog and indexer.

Each "host" is a data directory with its own writer process (its own seq) and its own rsyslog
forwarding on 127.0.0.1 to one receiving rsyslog, which files each host's lines under
sources/<host>/ of the central data directory, where one indexer follows them all.
"""

from __future__ import annotations

import fcntl
import grp
import os
from pathlib import Path

import pytest

from trek_audit.layout import DataDir, LogDir

from .e2e_support import wait_for
from .shippers_support import (
    SHORT,
    Rsyslog,
    WriterPlan,
    following_indexer,
    free_port,
    indexed,
    last_seq,
    lines_of,
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
HOSTS = ("app1", "app2", "app3")
BACKUPS = 10


@pytest.fixture(autouse=True)
def rsyslog_installed() -> None:
    rsyslogd()


def remove_rotated_file(logs: LogDir, number: int, away: Path) -> list[bytes]:
    """Take trek.log.``number`` out of ``logs`` (as a careless operator would) and return its
    lines. Under the writers' lock, so that no rotation is half way meanwhile."""
    with logs.lock_file.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.rename(logs.rotated(number), away)
    return lines_of(away)


def test_every_event_of_every_host_is_indexed_once_through_an_outage_and_gaps_are_exact(
    tmp_path: Path,
) -> None:
    central = DataDir(tmp_path / "central")
    seconds, rate = (8, 300) if SHORT else (30, 1000)
    # About 250-byte lines: a rotation every 0.4 s or less, ten kept (4 s or more).
    plans = [
        WriterPlan(tmp_path / host, tmp_path / f"written-{host}", seconds * rate, rate, 30_000,
                   BACKUPS, writer=n)
        for n, host in enumerate(HOSTS, 1)
    ]  # fmt: skip
    port = free_port()
    group = grp.getgrgid(os.getgid()).gr_name
    receiver = Rsyslog(
        tmp_path / "receiver",
        receiver_config(central.root, tmp_path / "receiver" / "work", port, group),
        listens=port,
    )
    senders = {
        host: Rsyslog(
            tmp_path / f"sender-{host}",
            sender_config(plan.data_dir, tmp_path / f"sender-{host}" / "work", port, host),
        )
        for host, plan in zip(HOSTS, plans, strict=True)
    }
    gap_host, gap_logs = HOSTS[2], DataDir(plans[2].data_dir).logs
    for plan in plans:
        (plan.data_dir / "logs").mkdir(parents=True, mode=0o750)
    try:
        receiver.start()
        for shipper in senders.values():
            shipper.start()
        with following_indexer(central, tmp_path / "index.out"):
            with writers(plans):
                pause(1.5)
                # The receiver is down for 3 s: the senders keep the lines in their queues.
                receiver.stop()
                pause(3)
                receiver.start()
                # One host's shipper is stopped while a whole rotated file is lost.
                senders[gap_host].stop()
                seq_at_stop = last_seq(gap_logs)
                wait_for(
                    lambda: rotations_since(gap_logs, seq_at_stop) >= 3, timeout=30, interval=0.02
                )
                lost = remove_rotated_file(gap_logs, 2, tmp_path / "lost.log")
                senders[gap_host].start()
            expected = {host: written([plan]) for host, plan in zip(HOSTS, plans, strict=True)}
            expected[gap_host] = [line for line in expected[gap_host] if line not in set(lost)]
            total = sum(len(lines) for lines in expected.values())
            for host, lines in expected.items():
                wait_shipped(central.source(host), lines)
            wait_for(lambda: len(indexed(central)) >= total, timeout=60, interval=0.5)
    finally:
        for shipper in senders.values():
            shipper.stop()
        receiver.stop()

    lost_seqs = sorted(line_seq(line) for line in lost)
    assert lost_seqs[0] > seq_at_stop and len(lost) > 10
    rows = indexed(central)
    for host, lines in expected.items():
        mine = sorted(row.row for row in rows if row.source == host)
        assert mine == sorted(row_of(line) for line in lines), f"{host}: each event once"
        assert set(shipped(central.source(host))) == set(lines), f"{host}: lines as written"
    assert len(rows) == total
    for host in HOSTS:
        report = source_status(central, host)
        assert report["incidents"] == 0 and report["rejected"] == 0
        if host == gap_host:
            assert report["gaps"] == [[lost_seqs[0], lost_seqs[-1]]]
            assert report["missing"] == len(lost)
        else:
            assert report["gaps"] == [] and report["missing"] == 0
    print(f"{total} events from {len(HOSTS)} hosts; {len(lost)} lost with {gap_host}'s file")


def line_seq(line: bytes) -> int:
    return row_of(line)[1]  # type: ignore[no-any-return]
