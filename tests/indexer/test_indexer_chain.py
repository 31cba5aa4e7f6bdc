"""The indexer recomputes the hash chain as it reads: each row keeps the head after its line,
and a seal that does not vouch for the lines read before it is a chain_break incident."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.indexer import Indexer
from trek_audit.settings import Settings
from trek_audit.store import AuditQuery, read_status
from trek_audit.store.health import read_health
from trek_audit.webui import create_app
from trek_audit.webui.banner import indexer_warnings
from trek_audit.writer.chain import SEAL_ACTION
from trek_audit.writer.seal_key import create_key_file

from .logfiles import Reader, append, rotate, wait_for
from .seal_support import SealedLog, recompute_chain

SHORT = bool(os.environ.get("TREK_TEST_SHORT"))


def chains(db: Reader) -> dict[int, bytes | None]:
    return dict(db.conn.execute("SELECT seq, chain FROM audit_log"))


def breaks(db: Reader) -> list[str]:
    return [message for kind, message in db.incidents() if kind == "chain_break"]


def test_a_sealed_log_read_in_small_batches_across_rotations_and_restarts_has_no_break(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    log = SealedLog()
    trek_log = log_dir / "trek.log"
    append(trek_log, log.seal() + log.events(40))
    Indexer(data_dir, batch_size=7).run_once()  # stops mid-file: the head is saved with it
    append(trek_log, log.events(25) + log.seal())
    rotate(log_dir)
    append(trek_log, log.events(30))
    Indexer(data_dir, batch_size=7).run_once()
    append(trek_log, log.events(5) + log.seal())
    rotate(log_dir)
    append(trek_log, log.events(3) + log.seal() + log.events(2))
    Indexer(data_dir, batch_size=7).run_once()

    assert db.incidents() == []
    expected = recompute_chain(log_dir)
    assert len(expected) == log.seq == 1 + 40 + 25 + 1 + 30 + 5 + 1 + 3 + 1 + 2
    assert chains(db) == expected


def test_a_line_edited_before_it_is_indexed_is_a_chain_break_naming_its_file_and_seqs(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    log = SealedLog()
    append(log_dir / "trek.log", log.seal() + log.events(10) + log.seal() + log.events(10))
    sealed = log.seal()
    rotate(log_dir)
    append(log_dir / "trek.log.1", sealed)
    append(log_dir / "trek.log", log.events(5) + log.seal())
    # seq 15, in the second sealed stretch (seq 13..22), loses its user name: same length.
    rotated = log_dir / "trek.log.1"
    data = rotated.read_bytes()
    at = data.index(b'"seq":15,')
    edited = data[:at] + data[at:].replace(b'"alice"', b'"mallo"', 1)
    rotated.write_bytes(edited)

    Indexer(data_dir).run_once()

    (message,) = breaks(db)
    assert "trek.log.1" in message
    assert "the seal at seq 23 (epoch 2) does not vouch for seq 13..22" in message
    assert "a line was changed" in message
    # The seal's chain is taken up again: the next seal raises nothing, rows from it have
    # the writer's chain.
    expected = recompute_chain(log_dir)
    assert chains(db)[23] != expected[23]  # recomputed over the edited line
    assert chains(db)[29] == log.head


WRONG_SEALS: list[tuple[str, dict[str, Any], str]] = [
    ("chain", {"chain": "ab" * 32}, "its chain differs from the head of the lines read"),
    ("prev", {"prev": "cd" * 32}, "its prev differs from the head after the previous seal"),
    ("first-seq", {"first_seq": 9}, "it claims to begin at seq 9"),
    ("last-seq", {"last_seq": 20}, "it claims to end at seq 20 but stands at seq 17"),
    ("epoch-skipped", {"epoch": 3}, "epoch 3 follows epoch 1 (seals missing)"),
    ("epoch-0-again", {"epoch": 0}, "epoch 0 again under key"),
    ("another-key", {"key_id": "0123456789abcdef"}, "follows a seal under key"),
    ("malformed", {"chain": "not hex"}, "has details that no writer makes"),
]


@pytest.mark.parametrize(
    ("wrong", "said"),
    [(wrong, said) for _, wrong, said in WRONG_SEALS],
    ids=[name for name, _, _ in WRONG_SEALS],
)
def test_a_seal_with_a_wrong_detail_is_one_chain_break_and_the_log_goes_on(
    data_dir: Path, log_dir: Path, db: Reader, wrong: dict[str, Any], said: str
) -> None:
    log = SealedLog()
    # seq 1 opens, 2..5 are sealed by seq 6, 7..16 by seq 17 (the wrong one), then more.
    append(log_dir / "trek.log", log.seal() + log.events(4) + log.seal() + log.events(10))
    append(log_dir / "trek.log", log.seal(**wrong))
    append(log_dir / "trek.log", log.events(6) + log.seal() + log.events(3) + log.seal())

    Indexer(data_dir).run_once()

    (message,) = breaks(db)  # one, however many seals follow it
    assert said in message
    assert message.startswith("trek.log: the seal at seq 17")
    if "no writer makes" not in said:  # a malformed seal says nothing of a range
        assert "does not vouch for seq 7..16" in message
    assert len(db.seqs()) == log.seq


def test_a_log_read_from_the_middle_has_no_chain_until_its_first_seal_and_no_break(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    log = SealedLog()
    log.events(200)  # rotated away before the indexer ever read them
    append(log_dir / "trek.log", log.events(5) + log.seal() + log.events(5) + log.seal())
    Indexer(data_dir).run_once()
    assert db.incidents() == []
    rows = chains(db)
    assert [seq for seq, chain in rows.items() if chain is None] == list(range(201, 206))
    assert rows[212] == log.head


def test_after_a_gap_rows_have_no_chain_until_the_next_seal_which_raises_no_break(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    log = SealedLog()
    kept = log.seal() + log.events(5) + log.seal() + log.events(3)
    log.events(2)  # seq 11 and 12 never reach the file
    append(log_dir / "trek.log", kept + log.events(3) + log.seal() + log.events(2))
    Indexer(data_dir).run_once()
    assert breaks(db) == []
    assert db.gaps() == [(11, 12)]
    rows = chains(db)
    assert [seq for seq, chain in rows.items() if chain is None] == [13, 14, 15]
    assert rows[18] == log.head


def test_an_opening_seal_where_the_head_is_unknown_is_taken_without_alarm(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    log = SealedLog(first_seq=1000, head=bytes.fromhex("ee" * 32))  # sealing begins mid-log
    append(log_dir / "trek.log", log.events(3) + log.seal() + log.events(4) + log.seal())
    Indexer(data_dir).run_once()
    assert db.incidents() == []
    assert chains(db)[1008] == log.head


def test_a_chain_break_shows_in_status_healthz_and_the_banner(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    log = SealedLog()
    append(log_dir / "trek.log", log.seal() + log.events(3) + log.seal(chain="00" * 32))
    Indexer(data_dir).run_once()
    assert len(breaks(db)) == 1
    environ = {"TREK_DATA_DIR": str(data_dir), "TREK_FOLLOWER_EXPECTED": "false"}

    health = read_health(Settings.from_env(environ))
    assert health.verdict == "degraded"
    assert any("lines that do not match their seal" in reason for reason in health.reasons)

    result = CliRunner().invoke(main, ["status", "--data-dir", str(data_dir), "--no-follower"])
    assert result.exit_code == 1
    assert "incidents:       1" in result.output

    app = create_app({**environ, "TREK_SECRET_KEY": "a-test-key-that-is-long-enough"})
    response = app.test_client().get("/healthz")
    assert response.get_json()["status"] == "degraded"

    query = AuditQuery.open(data_dir / "audit.db")
    try:
        warnings = indexer_warnings(data_dir, query, lag_warn_bytes=1000)
    finally:
        query.conn.close()
    assert any("1 incident(s)" in warning for warning in warnings)


WRITER = """
import sys, threading
from trek_audit.writer import AuditWriter

log_dir, count = sys.argv[1], int(sys.argv[2])
pause = threading.Event()
with AuditWriter(log_dir, max_bytes=40_000, backups=1000, seal_interval=1) as writer:
    for i in range(count):
        writer.record("trip.update", resource=f"trip/{i}", details={"i": i, "pad": "x" * (i % 90)})
        if i % 100 == 99:
            pause.wait(0.15)
"""


@pytest.mark.slow
def test_sealing_writers_rotations_and_killed_indexers_raise_no_break_and_rows_chain_right(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    create_key_file(data_dir / "seal.key")
    per_writer = 1_500 if SHORT else 6_000
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(log_dir), str(per_writer)])
        for _ in range(3)
    ]
    rng = random.Random()
    pause = threading.Event()
    environ = {**os.environ, "TREK_SEAL_INTERVAL": "1"}
    try:
        while any(writer.poll() is None for writer in writers):
            indexer = subprocess.Popen(
                [sys.executable, "-m", "trek_audit", "index", "-q", "--wait"]
                + ["--data-dir", str(data_dir), "--rescan-interval", "0.05"],
                env=environ,
            )
            wait_for(lambda: read_status(data_dir)["running"], timeout=30, what="start-up")
            pause.wait(rng.uniform(0.1, 0.8))
            if rng.random() < 0.5:
                indexer.send_signal(signal.SIGKILL)
                indexer.wait()
            else:
                indexer.send_signal(signal.SIGTERM)
                assert indexer.wait(30) == 0
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
            writer.wait()
    assert [writer.returncode for writer in writers] == [0, 0, 0]
    assert len(list(log_dir.glob("trek.log.*"))) >= 3

    Indexer(data_dir).run_once()

    assert db.incidents() == []
    expected = recompute_chain(log_dir)
    rows = chains(db)
    assert rows == expected
    assert None not in rows.values()  # read from the first line: the head was always known
    seals = db.conn.execute("SELECT count(*) FROM audit_log WHERE action = ?", (SEAL_ACTION,))
    assert seals.fetchone()[0] >= 3  # one before each rotation at least
