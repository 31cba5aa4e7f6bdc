"""The sealer alone: when a seal is due, and what it asks of the appender to write one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trek_audit.writer import AuditWriteError
from trek_audit.writer.chain import GENESIS, EpochKeys, advance, seal_mac
from trek_audit.writer.seal_key import SealKeyFile, create_key_file
from trek_audit.writer.sealing import Appended, Sealer
from trek_audit.writer.state import (
    MAGIC,
    VERSION,
    State,
    close_lock_file,
    open_lock_file,
    read_state,
)

SECOND = 1_000_000_000
NOW = 1_800_000_000 * SECOND


def page(seq: int, *, seal_seq: int = 0, unsealed_ns: int = 0, chain: bytes = GENESIS) -> State:
    """A sound state after ``seq`` lines, the last seal at ``seal_seq``."""
    return State(
        MAGIC, VERSION, seq, 1, 100 * seq, NOW, 0, chain, seal_seq, 0, unsealed_ns, chain, bytes(8)
    )


MakeSealer = Callable[..., Sealer]


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "seal.key"


@pytest.fixture
def make_sealer(key_path: Path) -> Iterator[MakeSealer]:
    """Sealers of ``key_path`` that have looked for it at NOW; closed after the test."""
    made: list[Sealer] = []

    def make(interval: float = 60.0) -> Sealer:
        sealer = Sealer(str(key_path.parent / "logs" / "trek.log"), key_path, interval)
        made.append(sealer)
        sealer.check_key(NOW)
        return sealer

    yield make
    for sealer in made:
        sealer.close()


@pytest.fixture
def lock_fd(tmp_path: Path) -> Iterator[int]:
    lock = open_lock_file(tmp_path / "lock", str(tmp_path / "trek.log"))
    yield lock.fd
    close_lock_file(lock.fd)


def key_epoch(key_path: Path) -> int:
    with SealKeyFile(key_path) as key_file:
        return key_file.read().epoch


def test_a_sealer_seals_only_while_its_key_file_is_there(
    key_path: Path, make_sealer: MakeSealer
) -> None:
    sealer = make_sealer()
    assert not sealer.sealing and sealer.key_fd == -1
    assert sealer.check_due_ns == NOW + 60 * SECOND
    create_key_file(key_path)
    sealer.check_key(NOW + 61 * SECOND)
    assert sealer.sealing and sealer.key_fd >= 0
    sealer.close()
    assert not sealer.sealing


@pytest.mark.parametrize(
    ("state", "at_once", "due"),
    [
        (page(0), False, True),
        (page(5), False, True),
        (page(5, seal_seq=5), True, False),
        (page(7, seal_seq=5, unsealed_ns=NOW - 59 * SECOND), False, False),
        (page(7, seal_seq=5, unsealed_ns=NOW - 59 * SECOND), True, True),
        (page(7, seal_seq=5, unsealed_ns=NOW - 60 * SECOND), False, True),
        (page(7, seal_seq=5, unsealed_ns=0), False, True),
    ],
    ids=[
        "opening-seal-before-the-first-line",
        "opening-seal-after-unsealed-lines",
        "nothing-after-the-last-seal-even-at-once",
        "oldest-line-younger-than-the-interval",
        "younger-but-at-once",
        "oldest-line-as-old-as-the-interval",
        "unsealed-lines-of-unknown-age",
    ],
)
def test_a_seal_is_due_when_the_design_says(
    make_sealer: MakeSealer, state: State, at_once: bool, due: bool
) -> None:
    assert make_sealer().due(state, NOW, at_once=at_once) is due


def test_the_time_a_seal_is_due_is_the_oldest_unsealed_line_plus_the_interval(
    make_sealer: MakeSealer,
) -> None:
    sealer = make_sealer(interval=2.5)
    assert sealer.due_at(page(7, seal_seq=5, unsealed_ns=NOW)) == NOW / SECOND + 2.5
    assert sealer.due_at(page(5, seal_seq=5)) is None
    before = time.time()
    assert before <= (sealer.due_at(page(7, seal_seq=5)) or 0) <= time.time()
    assert before <= (sealer.due_at(page(7)._replace(magic=b"junk")) or 0) <= time.time()


def test_a_seal_is_appended_through_the_appender_then_the_state_then_the_key_moves_on(
    key_path: Path, make_sealer: MakeSealer, lock_fd: int
) -> None:
    verification_key = create_key_file(key_path)
    sealer = make_sealer()
    lines: list[bytes] = []

    def append(state: State, now: int, tail: bytes) -> Appended:
        line = f'{{"v":1,"id":"x","seq":{state.seq + 1},"ts":"t",'.encode() + tail
        lines.append(line)
        return Appended("x", "t", state.size + len(line), advance(state.chain, line))

    head = advance(GENESIS, b"a line\n")
    after, seal = sealer.seal(page(1, chain=head), NOW, append, lock_fd)
    assert len(lines) == 1 and lines[0].endswith(b"\n")
    assert (seal["id"], seal["seq"], seal["ts"], seal["action"]) == ("x", 2, "t", "audit.seal")
    details = seal["details"]
    assert details is not None
    assert (details["epoch"], details["first_seq"], details["last_seq"]) == (0, 2, 1)
    assert details["prev"] == details["chain"] == head.hex()
    assert details["mac"] == seal_mac(EpochKeys(verification_key).key(0), details)
    assert read_state(lock_fd)[2:] == after[2:]
    assert (after.seq, after.seal_seq, after.seal_epoch, after.unsealed_ns) == (2, 2, 0, 0)
    assert after.chain == after.seal_head == advance(head, lines[0])
    assert key_epoch(key_path) == 1


def test_a_seal_that_could_not_be_appended_leaves_the_state_and_the_key_as_they_were(
    key_path: Path, make_sealer: MakeSealer, lock_fd: int
) -> None:
    create_key_file(key_path)
    sealer = make_sealer()
    page_before = read_state(lock_fd)

    def disk_full(state: State, now: int, tail: bytes) -> Appended:
        raise AuditWriteError("cannot append: No space left on device", "trek.log", None)

    with pytest.raises(AuditWriteError, match="No space left"):
        sealer.seal(page(3), NOW, disk_full, lock_fd)
    assert read_state(lock_fd) == page_before
    assert key_epoch(key_path) == 0
