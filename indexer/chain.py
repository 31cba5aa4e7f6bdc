"""The hash chain as the indexer reads it: the running head, and the checks at every seal.

The writer chains every event line it appends (``trek_audit.writer.chain``); the indexer
recomputes the head over the lines it reads, in file order, one SHA-256 per line, and keeps
it with each row. A seal line says what the head was: where the two differ, a line was
changed, inserted or removed after it was written (or the seal itself was), and that is a
``chain_break`` incident. No key is needed for this: a forger who recomputes the hashes is
for ``trek-audit verify`` and the verification key to catch.

The head is unknown (None, the rows' ``chain`` NULL) where the indexer cannot know it: when
it starts in the middle of the chain (the log's first lines rotated away before it read
them, or a database made before schema version 4) and after any line whose seq does not
follow the previous line's (a gap, a repeat, a file read again). The next seal line gives
it back. A seal at or below the last seal's seq (read again, or late) is neither checked
nor adopted; one read after a break in the order of the lines (a gap, a late line) is not
held to the seal before it: the seals between may still come. A seal is checked against what
is known at that moment only, and its chain is adopted afterwards whatever the checks said,
so one damaged stretch is one incident. A seal that was a break may itself be what was
changed, so the next seal is not held to it: only if the next seal's ``prev`` is the head
taken from it are the lines in between checked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from trek_audit.writer.chain import SEAL_ACTION, SealDetails
from trek_audit.writer.line import Event

__all__ = ["CHAIN_BREAK", "ChainBreak", "ChainFollower", "ChainState", "LastSeal", "seal_details"]

CHAIN_BREAK = "chain_break"  # the incidents' kind

_HASH = re.compile(r"[0-9a-f]{64}\Z")
_KEY_ID = re.compile(r"[0-9a-f]{16}\Z")
_NEWLINE = b"\n"


class LastSeal(NamedTuple):
    """The newest seal line read: what the next seal must follow, if it was sound."""

    seq: int
    epoch: int | None  # None: its details were malformed
    key_id: str | None
    head: bytes | None  # the chain head after the seal line itself
    sound: bool  # False when it was a break: then it is no reference for the next one


@dataclass
class ChainState:
    """Where the chain stands after the last event line read, as chain_heads keeps it."""

    head: bytes | None  # None while unknown
    seq: int  # the seq of that line; 0 before the first
    seal: LastSeal | None = None


class ChainBreak(NamedTuple):
    """A seal line that does not vouch for the lines read before it."""

    file: str
    first_seq: int  # the seqs it should cover; first > last when it covers none
    last_seq: int
    message: str


def seal_details(details: dict[str, Any] | None) -> SealDetails | None:
    """The details of a seal line when they have the shape of ``SealDetails``, else None."""
    if details is None:
        return None
    try:
        numbers = (details["epoch"], details["first_seq"], details["last_seq"])
        hashes = (details["prev"], details["chain"], details["mac"])
        key = details["key_id"]
    except KeyError:
        return None
    if any(type(number) is not int or number < 0 for number in numbers):
        return None
    if any(type(text) is not str or not _HASH.match(text) for text in hashes):
        return None
    if type(key) is not str or not _KEY_ID.match(key):
        return None
    return SealDetails(
        epoch=details["epoch"],
        first_seq=details["first_seq"],
        last_seq=details["last_seq"],
        prev=details["prev"],
        chain=details["chain"],
        key_id=key,
        mac=details["mac"],
    )


@dataclass
class ChainFollower:
    """Advance the head over each event line read, checking each seal line against it.

    The ledger keeps one per source, saves ``state`` with every batch (``changed``
    says it moved) and reloads it after a failed commit. Breaks wait in ``breaks`` until the
    scanner takes them into the batch that holds the seal line.
    """

    state: ChainState
    changed: bool = False
    breaks: list[ChainBreak] = field(default_factory=list)

    def link(self, data: bytes, event: Event, file: str) -> bytes | None:
        """The head after the line ``data`` (without its newline) of ``file``; None if unknown."""
        state = self.state
        seq = event["seq"]
        head = state.head if seq == state.seq + 1 else None
        if event["action"] != SEAL_ACTION:
            if head is not None:
                head = hashlib.sha256(head + data + _NEWLINE).digest()
            state.head, state.seq = head, seq
            self.changed = True
            return head
        if state.seal is not None and seq <= state.seal.seq:
            # A seal read again, or late: a shipper re-reading a renamed file, or delivering
            # older lines after newer ones. It vouches for lines checked already, or read out
            # of the writer's order; the chain read so far is not its to judge (`trek-audit
            # verify` checks it in the files).
            return None
        seal = seal_details(event["details"])
        if seal is None:
            what = f"the seal at seq {seq} has details that no writer makes"
            self._break(file, seq, seq - 1, what, adopted=False)
            epoch, key, sound = None, None, False
        else:
            sound = self._check(seal, seq, head, file)
            head = bytes.fromhex(seal["chain"])
            epoch, key = seal["epoch"], seal["key_id"]
        if head is not None:
            head = hashlib.sha256(head + data + _NEWLINE).digest()
        state.seal = LastSeal(seq, epoch, key, head, sound)
        state.head, state.seq = head, seq
        self.changed = True
        return head

    def take_breaks(self) -> list[ChainBreak]:
        breaks, self.breaks = self.breaks, []
        return breaks

    def _check(self, seal: SealDetails, seq: int, head: bytes | None, file: str) -> bool:
        """Compare a seal with the head read before it and with the previous seal; sound?"""
        last = self.state.seal
        epoch, key = seal["epoch"], seal["key_id"]
        if head is None and last is not None and last.sound:
            # The lines since the last seal were not read in the writer's order (a gap, a
            # repeat, a late line from a shipper): the seals between may be among the lines
            # not read yet, so this one is not held to the last. The gap is on record.
            last = None
        if last is not None and not last.sound:
            # The head taken from a broken seal is known good only if this seal says so.
            if last.head is None or seal["prev"] != last.head.hex():
                head = None
            last = None
        problems: list[str] = []
        if seal["last_seq"] != seq - 1:
            problems.append(
                f"it claims to end at seq {seal['last_seq']} but stands at seq {seq} "
                "(lines were removed, inserted or moved)"
            )
        if epoch == 0:
            # The opening seal under a key covers nothing; the lines before it are unsealed,
            # not checked.
            if seal["first_seq"] != seq or seal["prev"] != seal["chain"]:
                problems.append("an opening seal (epoch 0) must cover nothing")
            if last is not None and last.key_id == key:
                problems.append(
                    f"epoch 0 again under key {key}, whose epoch {last.epoch} was sealed at "
                    f"seq {last.seq} (an old key file put back)"
                )
        else:
            if head is not None and seal["chain"] != head.hex():
                problems.append(
                    "its chain differs from the head of the lines read (a line was changed, "
                    "removed or inserted after it was written, or the seal was)"
                )
            if last is not None:
                if last.key_id != key:
                    problems.append(
                        f"epoch {epoch} under key {key} follows a seal under key "
                        f"{last.key_id} (a new key starts with epoch 0)"
                    )
                elif last.epoch is not None and epoch != last.epoch + 1:
                    problems.append(f"epoch {epoch} follows epoch {last.epoch} (seals missing)")
                if seal["first_seq"] != last.seq + 1:
                    problems.append(
                        f"it claims to begin at seq {seal['first_seq']}, but the previous "
                        f"seal is at seq {last.seq}"
                    )
                if last.head is not None and seal["prev"] != last.head.hex():
                    problems.append(
                        f"its prev differs from the head after the previous seal (seq {last.seq})"
                    )
        if not problems:
            return True
        # The lines in question: since the previous seal, else those it claims to cover.
        previous = self.state.seal
        first = seal["first_seq"] if previous is None else previous.seq + 1
        first = min(first, seq)
        what = f"the seal at seq {seq} (epoch {epoch})"
        what += f" does not vouch for seq {first}..{seq - 1}" if first < seq else " is wrong"
        self._break(file, first, seq - 1, f"{what}: {'; '.join(problems)}")
        return False

    def _break(self, file: str, first: int, last: int, what: str, *, adopted: bool = True) -> None:
        then = "Its chain is taken as the head from here on" if adopted else "Read as a line"
        message = f"{file}: {what}. {then}; `trek-audit verify` tells which lines differ"
        self.breaks.append(ChainBreak(file, first, last, message))
