"""Where a writer goes on from when the shared state is not trusted as it is.

When the state page is missing or does not match trek.log (first use, a lost, truncated or
damaged lock file, power loss, an outside change), the writer looks for the last event in the
tails of trek.log and its rotations. Only lines that are valid format-v1 events count (``seq``
and ``ts`` within the limits of ``line.py``), so a line some other program appended with a seq
the writer could not continue from, or with no real time, is passed over. The state page is
believed over the tails only when it is sound and its time fits them; otherwise the writer goes
on from the tails. Either way a seq is never used twice and nothing is continued from garbage.

The chain head (``chain.py``) is recovered the same way, from the files: from the last seal
line, the head it names advanced over the seal line and every valid event line after it, in
file order, to the end of trek.log; with no seal in any kept file, from ``GENESIS`` over every
valid line of the oldest to the newest file. Lines that are not valid v1 events are not links,
as for a verifier. A file's last piece without its newline counts as a line (with one) if it
is a valid event: it is a whole line a crash cut the newline off, which the writer terminates
before it writes after it.
"""

from __future__ import annotations

import os
from typing import BinaryIO, NamedTuple

import orjson

from trek_audit.layout import LogDir

from .chain import GENESIS, HEAD_BYTES, SEAL_ACTION, advance
from .errors import AuditWriteError, describe
from .line import SEQ_MAX, Event, LineError, decode
from .rotation import rotated_numbers
from .stamps import ts_ns
from .state import State

__all__ = [
    "ChainPosition",
    "FUTURE_SLACK_NS",
    "TAIL_BYTES",
    "Position",
    "Recovered",
    "continue_chain",
    "kept_numbers",
    "last_event_in_files",
    "recover_chain",
    "resume_position",
]

TAIL_BYTES = 8192

# How far past the clock a last event's time may lie and still be believed: a clock stepped
# back (a time zone mistaken for UTC, a fix by NTP) explains hours, not the centuries a
# damaged page can hold. Beyond it a time would hold every later ts still until then.
FUTURE_SLACK_NS = 24 * 3600 * 1_000_000_000


class _Last(NamedTuple):
    seq: int  # 0: none
    ns: int


def _last_event_in_tail(file: BinaryIO, end: int, max_line_bytes: int) -> tuple[_Last, bytes]:
    """The valid event with the largest seq among the lines near the end of a file, and the
    file's last byte.

    Reads the last few KB, more only while no valid event was found and the window is still
    shorter than the longest possible line.
    """
    window = TAIL_BYTES
    while True:
        start = max(0, end - window)
        file.seek(start)
        chunk = file.read(end - start)
        pieces = chunk.split(b"\n")
        if start > 0:
            del pieces[0]  # maybe the end of a line that starts before the window
        # The last piece counts too: a whole event whose newline a crash cut off is in the
        # file, and its seq is used.
        best = _best_event(pieces)
        if best.seq or start == 0 or window > max_line_bytes + TAIL_BYTES:
            return best, chunk[-1:]
        window *= 4


def _best_event(pieces: list[bytes]) -> _Last:
    """The valid event with the largest seq among lines.

    Lines are parsed cheaply first and fully checked (``decode``) from the largest seq down
    until one is valid: a storm of resyncs (a lock file truncated again and again) reads many
    tails, and checking every line of each would cost several times as much.
    """
    candidates: list[tuple[int, bytes]] = []
    for piece in pieces:
        try:
            obj = orjson.loads(piece)
        except orjson.JSONDecodeError:
            continue
        seq = obj.get("seq") if type(obj) is dict else None
        if type(seq) is int and 1 <= seq <= SEQ_MAX:
            candidates.append((seq, piece))
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    for seq, piece in candidates:
        try:
            event = decode(piece)
        except LineError:
            continue
        return _Last(seq, ts_ns(event["ts"]))
    return _Last(0, 0)


def kept_numbers(logs: LogDir, backups: int) -> list[int]:
    """0 (trek.log) and the numbers of the rotated files up to ``backups`` in the directory,
    newest first: one listing, where opening each possible name costs a call per number.
    """
    try:
        numbers = rotated_numbers(logs)
    except OSError:
        return [0]  # reading the files says why
    return [0, *(number for number in numbers if number <= backups)]


class Recovered(NamedTuple):
    """What the tails of the log files say."""

    seq: int  # the largest seq of a valid event (0 if there is none)
    last_ns: int  # that event's ts, in ns since the epoch (0 if there is none)
    partial_line: bool  # trek.log ends in a line without its newline (a crash mid-write)


def last_event_in_files(logs: LogDir, backups: int, max_line_bytes: int) -> Recovered:
    """The valid event with the largest seq in the tails of trek.log and its kept rotations.

    Missing files are skipped; a file that cannot be read raises AuditWriteError, since a seq
    it holds could otherwise be used again.
    """
    best = _Last(0, 0)
    partial_line = False
    for number in kept_numbers(logs, backups):
        path = logs.rotated(number)
        try:
            with open(path, "rb") as file:
                end = file.seek(0, os.SEEK_END)
                found, last_byte = _last_event_in_tail(file, end, max_line_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
        except OSError as error:
            raise AuditWriteError(
                f"cannot read {path} to recover seq: {describe(error)}", path, error
            ) from error
        if found.seq > best.seq:
            best = found
        if number == 0:
            partial_line = end > 0 and last_byte != b"\n"
    return Recovered(best.seq, best.ns, partial_line)


class Position(NamedTuple):
    """Where the next append goes on from: the last seq used and the time of its event."""

    seq: int
    last_ns: int


def resume_position(state: State, tails: Recovered, own_seq: int, now_ns: int) -> Position:
    """The position to go on from, given the state page, the tails and this process's last seq.

    A sound page at or ahead of the tails is believed when its time is not before theirs (ts
    never goes back in seq order) nor more than FUTURE_SLACK_NS past the clock: a page ahead of
    the log is what a power failure that lost the log's last lines, a trek.log renamed away
    or one rotated out with no backups leave. Any other page is passed over and the tails
    decide; this process's own last seq is a floor in both cases.
    """
    horizon = now_ns + FUTURE_SLACK_NS
    tails_ns = tails.last_ns if tails.last_ns <= horizon else 0
    if state.sound and state.seq >= tails.seq and tails_ns <= state.last_ns <= horizon:
        return Position(max(state.seq, own_seq), state.last_ns)
    return Position(max(tails.seq, own_seq), tails_ns)


# -- the chain head --------------------------------------------------------------------------


class ChainPosition(NamedTuple):
    """The chain fields of the state page, as the log files give them."""

    chain: bytes  # the head after the last line
    seal_seq: int  # the last seal line's seq (0: none)
    seal_epoch: int
    unsealed_ns: int  # ts of the first line after the last seal (0: none)
    seal_head: bytes  # the head after the last seal line
    seal_key_id: bytes  # the last seal's key_id (8 bytes)


_SEAL_MARK = f'"action":"{SEAL_ACTION}"'.encode()


def _links(data: bytes) -> list[tuple[bytes, Event]]:
    """The links of the chain in ``data``: each valid event line (newline included)."""
    pieces = data.split(b"\n")
    if not pieces[-1]:
        pieces.pop()  # data ends in a newline, or is empty
    links = []
    for piece in pieces:
        try:
            links.append((piece + b"\n", decode(piece)))
        except LineError:
            continue
    return links


def _seal_of(line: bytes, event: Event) -> ChainPosition | None:
    """The chain position right after ``line`` if it is a well-formed seal line."""
    details = event["details"]
    if event["action"] != SEAL_ACTION or details is None:
        return None
    try:
        chain = bytes.fromhex(details["chain"])
        key = bytes.fromhex(details["key_id"])
        epoch = details["epoch"]
    except (KeyError, TypeError, ValueError):
        return None
    if len(chain) != HEAD_BYTES or len(key) != 8 or type(epoch) is not int or epoch < 0:
        return None
    head = advance(chain, line)
    return ChainPosition(head, event["seq"], epoch, 0, head, key)


def _read(path: os.PathLike[str] | str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as error:
        raise AuditWriteError(
            f"cannot read {path} to recover the chain: {describe(error)}", path, error
        ) from error


def _go_on(position: ChainPosition, links: list[tuple[bytes, Event]]) -> ChainPosition:
    """``position`` advanced over ``links``."""
    head, unsealed_ns = position.chain, position.unsealed_ns
    for line, event in links:
        head = advance(head, line)
        if not unsealed_ns:
            unsealed_ns = ts_ns(event["ts"])
    return position._replace(chain=head, unsealed_ns=unsealed_ns)


def recover_chain(logs: LogDir, backups: int) -> ChainPosition:
    """The chain position at the end of trek.log, from its last seal or from the oldest file.

    Missing files are skipped; a file that cannot be read raises AuditWriteError.
    """
    later: list[list[tuple[bytes, Event]]] = []  # the links of newer files, newest first
    for number in kept_numbers(logs, backups):
        data = _read(logs.rotated(number))
        if data is None:
            continue
        links = _links(data) if data else []
        if _SEAL_MARK in data:
            for index in range(len(links) - 1, -1, -1):
                sealed = _seal_of(*links[index])
                if sealed is not None:
                    position = _go_on(sealed, links[index + 1 :])
                    for newer in reversed(later):
                        position = _go_on(position, newer)
                    return position
        later.append(links)
    position = ChainPosition(GENESIS, 0, 0, 0, GENESIS, bytes(8))
    for links in reversed(later):
        position = _go_on(position, links)
    return position


def continue_chain(state: State, logs: LogDir, size: int) -> ChainPosition:
    """The chain position after lines another program appended to trek.log past the state.

    ``state`` matched trek.log up to ``state.size``; its chain goes on over the valid event
    lines in the bytes from there to ``size``.
    """
    path = logs.log_file
    try:
        with open(path, "rb") as file:
            file.seek(state.size)
            data = file.read(size - state.size)
    except OSError as error:
        raise AuditWriteError(
            f"cannot read {path} to recover the chain: {describe(error)}", path, error
        ) from error
    position = ChainPosition(
        state.chain,
        state.seal_seq,
        state.seal_epoch,
        state.unsealed_ns,
        state.seal_head,
        state.seal_key_id,
    )
    return _go_on(position, _links(data))
