"""Sealed log lines made as the writer makes them, and the chain recomputed from the files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from trek_audit.writer.chain import GENESIS, SEAL_ACTION, EpochKeys, advance, seal_mac
from trek_audit.writer.line import LineError, decode

from .logfiles import line

VERIFICATION_KEY = bytes(range(32))


class SealedLog:
    """Event lines and seal lines with a running chain, one after another, as a writer writes.

    ``seal(**wrong)`` makes the next seal with some of its details replaced (its MAC made
    over them, as a forger with the key would), to break it in a chosen way.
    """

    def __init__(self, *, first_seq: int = 1, head: bytes = GENESIS) -> None:
        self.keys = EpochKeys(VERIFICATION_KEY)
        self.seq = first_seq - 1
        self.head = head
        self.epoch = 0  # of the next seal
        self.last_seal: int | None = None  # its seq
        self.after_seal = head  # the head after the last seal line

    def events(self, count: int, **fields: Any) -> bytes:
        return b"".join(self.event(**fields) for _ in range(count))

    def event(self, **fields: Any) -> bytes:
        self.seq += 1
        data = line(self.seq, **fields)
        self.head = advance(self.head, data)
        return data

    def seal(self, **wrong: Any) -> bytes:
        seq = self.seq + 1
        opening = self.epoch == 0
        details: dict[str, Any] = {
            "epoch": self.epoch,
            "first_seq": seq if opening or self.last_seal is None else self.last_seal + 1,
            "last_seq": seq - 1,
            "prev": (self.head if opening else self.after_seal).hex(),
            "chain": self.head.hex(),
            "key_id": self.keys.key_id,
        }
        details.update(wrong)
        details["mac"] = seal_mac(self.keys.key(int(details["epoch"])), details)
        data = line(seq, action=SEAL_ACTION, user=None, resource=None, ip=None, details=details)
        self.seq = seq
        self.head = self.after_seal = advance(self.head, data)
        self.last_seal = seq
        self.epoch += 1
        return data


def log_files_oldest_first(log_dir: Path) -> list[Path]:
    rotated = sorted(log_dir.glob("trek.log.*"), key=lambda path: -int(path.suffix[1:]))
    return [*rotated, log_dir / "trek.log"]


def recompute_chain(log_dir: Path) -> dict[int, bytes]:
    """The chain head after each event line, by seq, from the first line of the oldest file.

    Written out here with hashlib, apart from the writer's and the indexer's code.
    """
    heads: dict[int, bytes] = {}
    head = bytes(32)
    for path in log_files_oldest_first(log_dir):
        for raw in path.read_bytes().splitlines(keepends=True):
            try:
                seq = decode(raw.rstrip(b"\n"))["seq"]
            except LineError:
                continue  # not a link of the chain
            head = hashlib.sha256(head + raw).digest()
            heads[seq] = head
    return heads
