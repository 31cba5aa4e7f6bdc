"""Helpers for the verify tests: a sealed, indexed data directory made by the real writer, and
ways to change its files the way someone covering their tracks would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import orjson

from trek_audit.indexer.follower import Indexer
from trek_audit.layout import DataDir
from trek_audit.store.verification import Outcome, verify_data_dir, verify_paths
from trek_audit.store.verify_report import Problem
from trek_audit.writer import AuditWriter
from trek_audit.writer.chain import SEAL_ACTION, advance, seal_mac
from trek_audit.writer.seal_key import SealKeyFile, create_key_file

BACKUPS = 4


class Sealed(NamedTuple):
    """A data directory whose writer sealed every few lines, and its verification key."""

    root: Path
    key: bytes

    @property
    def data(self) -> DataDir:
        return DataDir(self.root)

    def log(self, number: int = 0) -> Path:
        return self.data.logs.rotated(number)


def writer(root: Path, **options: object) -> AuditWriter:
    """A writer of ``root``'s log directory that seals with ``root``/seal.key.

    The pure-Python path: the chain is the same whichever path appends (the writer's tests
    compare them), and these tests change files rather than time appends.
    """
    settings: dict[str, object] = {
        "max_bytes": 6000,
        "backups": BACKUPS,
        "seal_interval": 3600,
        "fast_path": False,
    }
    settings.update(options)
    return AuditWriter(DataDir(root).log_dir, **settings)  # type: ignore[arg-type]


def record_events(audit: AuditWriter, count: int, *, seal_every: int = 7, start: int = 0) -> None:
    for number in range(start, start + count):
        audit.record(
            "record.update",
            user={"id": number % 5, "username": f"user{number % 5}", "email": None},
            resource=f"record/{number}",
            ip="192.0.2.7",
            details={"number": number, "note": "changed the due date"},
        )
        if number % seal_every == seal_every - 1:
            audit.seal()


def sealed_dir(root: Path, events: int = 120, *, index: bool = True) -> Sealed:
    """Write ``events`` events with seals and rotations (sealed to the end), then index them."""
    key = create_key_file(DataDir(root).seal_key)
    with writer(root) as audit:
        record_events(audit, events)
        audit.seal()
    if index:
        index_once(root)
    return Sealed(root, key)


def index_once(root: Path) -> None:
    Indexer(root).run_once()


def check(sealed: Sealed, *, key: bool = True) -> Outcome:
    return verify_data_dir(sealed.data, backups=BACKUPS, key=sealed.key if key else None)


def check_paths(paths: list[Path], key: bytes | None = None) -> Outcome:
    return verify_paths(paths, key)


def lines(path: Path) -> list[bytes]:
    """The lines of ``path``, each with its newline."""
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, new: list[bytes]) -> None:
    path.write_bytes(b"".join(new))


def event(line: bytes) -> dict[str, object]:
    return orjson.loads(line)  # type: ignore[no-any-return]


def is_seal(line: bytes) -> bool:
    return event(line)["action"] == SEAL_ACTION


def sealed_event_line(path: Path, *, after: int = 1) -> int:
    """The number (1-based) of an ordinary line of ``path`` that a later seal in it covers,
    the ``after``-th such line from the top."""
    found = 0
    numbered = list(enumerate(lines(path), 1))
    last_seal = max(number for number, line in numbered if is_seal(line))
    for number, line in numbered:
        if number < last_seal and not is_seal(line) and not is_seal(numbered[number][1]):
            found += 1
            if found == after:
                return number
    raise AssertionError(f"no sealed line in {path}")


def seal_lines(path: Path) -> list[int]:
    return [number for number, line in enumerate(lines(path), 1) if is_seal(line)]


def replace_line(path: Path, number: int, new: bytes) -> None:
    content = lines(path)
    content[number - 1] = new
    write_lines(path, content)


def edit_line(line: bytes, **changes: object) -> bytes:
    """The line with some fields changed, still a valid event, as orjson writes it."""
    changed = event(line)
    changed.update(changes)
    return orjson.dumps(changed) + b"\n"


def reseal(seal_line: bytes, covered: list[bytes], key: bytes, epoch: int) -> bytes:
    """The seal line made again over ``covered`` (its range, maybe changed) with ``key`` as
    epoch ``epoch``'s key, as someone holding that key would."""
    seal = event(seal_line)
    details = dict(seal["details"])  # type: ignore[call-overload]
    head = bytes.fromhex(details["prev"])
    for line in covered:
        head = advance(head, line)
    details.update(epoch=epoch, chain=head.hex())
    details["mac"] = seal_mac(key, details)
    seal["details"] = details
    return orjson.dumps(seal) + b"\n"


def stolen_key(root: Path) -> tuple[int, bytes]:
    """What a thief copies from the sealing key file now: its epoch and key."""
    with SealKeyFile(DataDir(root).seal_key) as file:
        current = file.read()
    return current.epoch, current.key


def kinds(outcome: Outcome) -> list[str]:
    return [problem["kind"] for problem in outcome.problems]


def the(outcome: Outcome, kind: str) -> Problem:
    """The one problem of ``kind`` (failing with every problem found if not exactly one)."""
    found = [problem for problem in outcome.problems if problem["kind"] == kind]
    assert len(found) == 1, outcome.problems
    return found[0]


def only(outcome: Outcome, kind: str) -> Problem:
    """The problem found, which must be the only one, of ``kind``; and the verdict: not intact."""
    assert kinds(outcome) == [kind], outcome.problems
    assert outcome.exit_code == 1
    return outcome.problems[0]


def flip(path: Path, offset: int, mask: int = 0x01) -> bytes:
    """Flip bits of the byte at ``offset``; return the file's content from before."""
    before = path.read_bytes()
    changed = bytearray(before)
    changed[offset] ^= mask
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes(changed[offset : offset + 1]), offset)
    finally:
        os.close(fd)
    return before
