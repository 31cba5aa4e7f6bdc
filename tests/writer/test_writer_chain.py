"""The hash chain: SHA-256 over every line the writer appends, one chain per log directory,
across threads, processes, rotations, both append paths and a lost state."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from trek_audit.writer import AuditWriter
from trek_audit.writer.appender import FAST_PATH_BUILT
from trek_audit.writer.chain import GENESIS

from .seal_support import LOCK, make_key, seals, state_of, walk_chain
from .writer_support import SHORT_MODE, assert_no_gaps


def test_the_chain_of_an_empty_directory_is_32_zero_bytes_and_each_line_extends_it(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        line = (log_dir / "trek.log").read_bytes()
    assert state_of(log_dir).chain == hashlib.sha256(GENESIS + line).digest()


def test_the_chain_in_the_state_is_the_chain_recomputed_over_all_lines_after_threads_and_rotations(
    log_dir: Path,
) -> None:
    per_thread = 100 if SHORT_MODE else 400
    with AuditWriter(log_dir, max_bytes=8000, backups=200) as w:

        def work() -> None:
            for n in range(per_thread):
                w.record("trip.update", resource=f"trip/{n}", details={"n": n})

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    links = walk_chain(log_dir)
    assert len(links) == 4 * per_thread
    assert len({link.file for link in links}) > 5
    assert state_of(log_dir).chain == links[-1].after


def _write_in_a_process(log_dir: str, count: int, fast: bool) -> None:
    with AuditWriter(log_dir, max_bytes=6000, backups=200, fast_path=fast, seal_interval=0.05) as w:
        for n in range(count):
            w.record("trip.update", details={"n": n, "pid": os.getpid()})


@pytest.mark.timeout(180)
def test_several_processes_and_rotations_with_seals_keep_one_chain_that_every_seal_names(
    log_dir: Path, writer_path: str
) -> None:
    make_key(log_dir)
    count = 150 if SHORT_MODE else 500
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_write_in_a_process, args=(str(log_dir), count, writer_path == "c"))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=150)
        assert worker.exitcode == 0
    links = walk_chain(log_dir)
    assert_no_gaps([link.event["seq"] for link in links])
    sealed = seals(links)
    assert len(links) - len(sealed) == 3 * count
    assert len(sealed) > 3
    previous = None
    for seal in sealed:
        details = seal.event["details"]
        assert details["chain"] == seal.before.hex()
        if previous is not None:
            assert details["prev"] == previous.after.hex()
            assert details["first_seq"] == previous.event["seq"] + 1
        assert details["last_seq"] == seal.event["seq"] - 1
        previous = seal
    assert state_of(log_dir).chain == links[-1].after


@pytest.mark.python_path_only  # runs both paths itself
@pytest.mark.skipif(not FAST_PATH_BUILT, reason="the C fast path is not built")
def test_the_c_path_and_the_python_path_interleaved_in_one_directory_make_one_chain(
    log_dir: Path,
) -> None:
    with (
        AuditWriter(log_dir, fast_path=True) as c_writer,
        AuditWriter(log_dir, fast_path=False) as python_writer,
    ):
        for n in range(200):
            (c_writer if n % 3 else python_writer).record("user.login", details={"n": n})
    assert state_of(log_dir).chain == walk_chain(log_dir)[-1].after


@pytest.mark.parametrize("sealed", [False, True], ids=["unsealed", "sealed"])
@pytest.mark.parametrize("loss", ["deleted", "truncated"])
def test_a_lost_state_gets_the_chain_back_from_the_log_files(
    log_dir: Path, loss: str, sealed: bool
) -> None:
    if sealed:
        make_key(log_dir)
    with AuditWriter(log_dir, max_bytes=3000, backups=20, seal_interval=3600) as w:
        for n in range(60):
            w.record("user.login", details={"n": n})
    if loss == "deleted":
        os.unlink(log_dir / LOCK)
    else:
        os.truncate(log_dir / LOCK, 20)
    with AuditWriter(log_dir, max_bytes=3000, backups=20, seal_interval=3600) as w:
        w.record("user.login", details={"after": "loss"})
        w.record("user.login")
    links = walk_chain(log_dir)
    state = state_of(log_dir)
    assert state.chain == links[-1].after
    assert bool(seals(links)) == sealed
    if sealed:
        last = seals(links)[-1]
        assert (state.seal_seq, state.seal_head) == (last.event["seq"], last.after)
        assert state.seal_epoch == last.event["details"]["epoch"]


@pytest.mark.parametrize(
    "foreign",
    [b"garbage without a newline", b"not json\n", b'{"v":1,"seq":"x"}\n'],
    ids=["partial-line", "not-json", "not-an-event"],
)
def test_foreign_garbage_appended_to_trek_log_is_no_link_of_the_chain(
    log_dir: Path, foreign: bytes
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        head = state_of(log_dir).chain
        with open(log_dir / "trek.log", "ab") as log:
            log.write(foreign)
        w.record("user.login")
    lines = (log_dir / "trek.log").read_bytes().split(b"\n")[:-1]
    assert state_of(log_dir).chain == hashlib.sha256(head + lines[-1] + b"\n").digest()


def test_a_valid_line_another_program_appends_is_a_link_of_the_chain(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        first = (log_dir / "trek.log").read_bytes()
        foreign = first.replace(b'"seq":1', b'"seq":2')
        with open(log_dir / "trek.log", "ab") as log:
            log.write(foreign)
        assert w.record("user.login")["seq"] == 3
    assert state_of(log_dir).chain == walk_chain(log_dir)[-1].after
