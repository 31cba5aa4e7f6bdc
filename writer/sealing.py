"""Sealing: whether a writer seals, when a seal is due, and the seal line it writes.

A writer whose sealing key (``seal_key.py``) exists and can be opened seals: before the first
line once no seal is known (the opening seal, epoch 0), before a line when the oldest unsealed
one is ``interval`` old, before a rotation when any line is unsealed, and on
``AuditWriter.seal()``. What a seal vouches for is in ``chain.py``.

The appender holds its thread lock and the file lock around every call here that touches the
key or the state, asks ``due`` before a line or a rotation, and lends ``seal`` the one thing it
cannot do itself: append a line (``AppendLine``), which moves the chain on like any other. The
seal line goes first, then the state is stored, then the key file is overwritten with the next
epoch's key; a crash in between leaves a key file behind, which the next seal evolves forward.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from .chain import SEAL_ACTION, evolve_key, seal_details
from .errors import AuditWriteError
from .line import PLACEHOLDER, Event
from .seal_key import SealKey, SealKeyError, SealKeyWatch
from .state import State, write_state

__all__ = ["AppendLine", "Appended", "Sealer"]

_NS_PER_S = 1_000_000_000
_PLACEHOLDER_LEN = len(PLACEHOLDER)


class Appended(NamedTuple):
    """A line the appender wrote: its id and ts, trek.log's size and the chain head after it."""

    event_id: str
    ts: str
    size: int
    chain: bytes


# Appends the line that follows ``state`` at ``now`` (ns), made of ``tail`` (the serialised
# event after its placeholders), whole or not at all: raises AuditWriteError if it could not.
AppendLine = Callable[[State, int, bytes], Appended]


class Sealer:
    """The sealing of the writer of ``log_path``: its key (while the file exists and opens) and
    its interval.

    ``check_due_ns`` and ``key_fd`` are plain attributes, read on the appender's hot path:
    when the key file is next looked for, and the open key file's descriptor (-1 when this
    writer does not seal).
    """

    def __init__(self, log_path: str, key_path: Path, interval: float) -> None:
        self.log_path = log_path
        self.key_path = key_path
        self.interval = interval
        self.interval_ns = int(interval * _NS_PER_S)
        # Shared with a forked child, which only reads and writes it at an offset, under the lock.
        self._key = SealKeyWatch(key_path, self.interval_ns)
        self.check_due_ns = 0
        self.key_fd = -1

    @property
    def sealing(self) -> bool:
        """Whether the key file was there and opened at the last ``check_key``."""
        return self.key_fd >= 0

    def check_key(self, now: int) -> None:
        """Look for the key file again (see ``SealKeyWatch``). Thread lock held."""
        key_file = self._key.check(now)
        self.check_due_ns = self._key.check_due_ns
        self.key_fd = -1 if key_file is None else key_file.fileno()

    def close(self) -> None:
        self._key.close()
        self.key_fd = -1

    def due(self, state: State, now: int, *, at_once: bool) -> bool:
        """Whether a seal goes before the next line: the first under this key, one whose
        lines waited the interval, or (``at_once``: a rotation, ``seal()``) any line unsealed.
        """
        if state.seal_seq == 0:
            return True
        if state.seq == state.seal_seq:
            return False
        if at_once:
            return True
        return now - state.unsealed_ns >= self.interval_ns if state.unsealed_ns else True

    def due_at(self, state: State) -> float | None:
        """The ``time.time()`` at which the oldest unsealed line of ``state`` must be sealed.

        None when nothing is unsealed; the present time when the page is not sound (a seal then
        rebuilds it) or does not say since when a line waits.
        """
        if not state.sound:
            return time.time()
        if state.seq == state.seal_seq:  # nothing since the last seal (or nothing at all)
            return None
        if not state.unsealed_ns:
            return time.time()
        return state.unsealed_ns / _NS_PER_S + self.interval

    def seal(self, state: State, now: int, append: AppendLine, lock_fd: int) -> tuple[State, Event]:
        """Write the seal line after ``state`` and move the key on; the state after it.

        Its epoch is the one after the last seal's under this key (0 for a key with no seal
        known), or the key file's own if that is ahead; a key file behind it (a crash between a
        seal and the key's update) is evolved forward first. Both locks held, the key open.
        """
        key_file = self._key.file
        assert key_file is not None
        try:
            key = key_file.read()
        except SealKeyError as error:
            raise AuditWriteError(
                f"cannot seal {self.log_path}: {error}; restore the key file, or remove it "
                "to stop sealing",
                self.key_path,
                None,
            ) from error
        key_id = bytes.fromhex(key.key_id)
        known = state.seal_seq != 0 and state.seal_key_id == key_id
        epoch = max(state.seal_epoch + 1 if known else 0, key.epoch)
        secret = key.key
        for _ in range(epoch - key.epoch):
            secret = evolve_key(secret)
        seq = state.seq + 1
        # The first seal under a key covers nothing: lines before it are unsealed.
        first_seq, prev = (state.seal_seq + 1, state.seal_head) if known else (seq, state.chain)
        details = seal_details(secret, epoch, first_seq, seq - 1, prev, state.chain, key.key_id)
        event: dict[str, Any] = {
            "v": 1,
            "id": "",
            "seq": 0,
            "ts": "",
            "action": SEAL_ACTION,
            "user": None,
            "resource": None,
            "ip": None,
            "details": details,
        }
        body = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
        written = append(state, now, body[_PLACEHOLDER_LEN:])
        after = state._replace(
            seq=seq,
            size=written.size,
            last_ns=now,
            chain=written.chain,
            seal_seq=seq,
            seal_epoch=epoch,
            unsealed_ns=0,
            seal_head=written.chain,
            seal_key_id=key_id,
        )
        # The seal is in. A state not stored makes the next append recover it from the log; a
        # key not overwritten is evolved forward by the next seal.
        with contextlib.suppress(OSError):
            write_state(lock_fd, after)
        with contextlib.suppress(OSError):
            key_file.store(SealKey(epoch + 1, evolve_key(secret), key.key_id))
        event.update(id=written.event_id, seq=seq, ts=written.ts)
        return after, event  # type: ignore[return-value]
