"""One pass over the log files: read what is new in each, oldest file first, and commit it.

Files are opened newest first (trek.log, trek.log.1, ...) and read oldest first. Renames
only move files towards higher numbers, so opening newest first sees every file that
existed when the pass began, at worst twice (the same key twice: the second is skipped);
and because an open file stays readable after a rename or unlink, a renamed file is
read to its end before its successor.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from trek_audit.layout import LOCAL_SOURCE, LOG_FILE_NAME, LogDir
from trek_audit.store.log_files import file_key
from trek_audit.writer.line import MAX_DETAILS_DEPTH, Event, LineError, check_details, decode

from .chain import CHAIN_BREAK
from .ledger import FileState, Incident, Ledger, LedgerConflict, Occupant, Rejected, Row
from .retention import Retention, keep_bounded
from .segments import LineReader, highest_slot

__all__ = ["ScanReport", "Scanner", "event_row"]

log = logging.getLogger(__name__)

_INT64_MAX = 2**63 - 1


@dataclass
class ScanReport:
    """What one pass did (over one source, or the sum over every source)."""

    files: int = 0
    rows: int = 0
    rejected: int = 0
    bytes: int = 0
    incidents: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # of "local" in a sum
    last_seq: int = 0  # of "local" in a sum
    duplicates_dropped: int = 0  # identical lines read again
    source: str = LOCAL_SOURCE
    # In the sum over every source: each source's own report, by name.
    sources: dict[str, ScanReport] = field(default_factory=dict)

    def add(self, other: ScanReport) -> None:
        """Count ``other`` (one source's pass) into this sum."""
        self.files += other.files
        self.rows += other.rows
        self.rejected += other.rejected
        self.bytes += other.bytes
        self.incidents += other.incidents
        self.duplicates_dropped += other.duplicates_dropped
        self.sources[other.source] = other
        if other.source == LOCAL_SOURCE:
            self.gaps, self.last_seq = other.gaps, other.last_seq


@dataclass
class _Segment:
    path: Path
    file: BinaryIO
    inode: int
    size: int
    key: str | None
    has_newer: bool


def event_row(event: Event, chain: bytes | None = None) -> Row:
    """Turn a decoded event (and the chain head after its line) into an audit_log row.

    Raises LineError if SQLite cannot hold the event.
    """
    seq = event["seq"]
    if seq > _INT64_MAX:
        raise LineError("seq larger than a 64-bit integer")
    user = event["user"]
    if user is None:
        user_id = username = email = None
    else:
        user_id, username, email = user["id"], user["username"], user["email"]
        if user_id is not None and not -_INT64_MAX - 1 <= user_id <= _INT64_MAX:
            raise LineError("user.id outside the 64-bit integer range")
    details = event["details"]
    try:
        # What the writer accepts (64-bit integers, at most MAX_DETAILS_DEPTH levels): a
        # larger integer would change on the way through orjson, a deeper object cannot be
        # serialised again, and either would otherwise stop the pass on every attempt.
        check_details(details)
    except (TypeError, ValueError) as error:
        reason = str(error)
        if "nests deeper" in reason:  # the path to the culprit would be 100 keys long
            reason = f"details nest deeper than {MAX_DETAILS_DEPTH} levels"
        raise LineError(reason) from None
    return Row(
        event["id"],
        seq,
        event["ts"],
        event["action"],
        user_id,
        username,
        email,
        event["resource"],
        event["ip"],
        None if details is None else orjson.dumps(details).decode(),
        chain,
    )


def check_integers(data: bytes, event: Event) -> None:
    """Raise LineError if the line's JSON holds an integer outside the signed 64-bit range.

    orjson reads such an integer as a float, so only a float at least 2^63 in size can be
    one: only a line with one in its details is read again, exactly, to tell.
    """
    details = event["details"]
    if details is None or not _has_huge_float(details.values()):
        return
    try:
        json.loads(data, parse_int=_int64)
    except RecursionError:
        raise LineError(f"details nest deeper than {MAX_DETAILS_DEPTH} levels") from None


def _has_huge_float(values: Iterable[Any]) -> bool:
    for item in values:
        kind = type(item)
        if kind is float:
            if not -_HUGE < item < _HUGE:
                return True
        elif kind is dict:
            if _has_huge_float(item.values()):
                return True
        elif kind is list and _has_huge_float(item):
            return True
    return False


_HUGE = float(2**63)


def _int64(text: str) -> int:
    number = int(text)
    if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
        raise LineError(f"integer {text} outside the 64-bit range")
    return number


def _still_at(seg: _Segment) -> bool:
    try:
        return os.lstat(seg.path).st_ino == seg.inode
    except FileNotFoundError:
        return False


class Scanner:
    """Reads one source's log directory into the ledger; ``scan`` is one pass."""

    def __init__(
        self,
        ledger: Ledger,
        log_dir: Path,
        *,
        source: str = LOCAL_SOURCE,
        max_line: int,
        batch_size: int = 10_000,
        fragment_grace: float = 2.0,
        stop: threading.Event | None = None,
        on_progress: Callable[[int], None] | None = None,
        retention: Retention | None = None,
    ) -> None:
        self.ledger = ledger
        self.source = source
        self.log_dir = Path(log_dir)
        self.logs = LogDir(self.log_dir)
        self.max_line = max_line
        self.batch_size = batch_size
        self.fragment_grace = fragment_grace
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        # For a shipped source: rotate and trim its files once indexed (see retention).
        self.retention = retention
        # Log paths holding something other than a regular file, with what, found by the
        # pass's probe.
        self._strangers: dict[str, str] = {}

    def scan(self, attempts: int = 5) -> ScanReport:
        """Index everything complete in the log files now; return what was done.

        Should another indexer commit meanwhile (LedgerConflict), the pass starts again
        from the database's positions; rows it already holds are never inserted twice.
        """
        for _ in range(attempts - 1):
            try:
                return self._scan()
            except LedgerConflict as conflict:
                log.warning("%s", conflict)
        return self._scan()

    def _scan(self) -> ScanReport:
        report = ScanReport(source=self.source)
        self._strangers = {}
        segments = self._open_segments()
        try:
            self._report_strangers(report)
            for seg in segments:
                if self.stop.is_set():
                    break
                self._index(seg, segments, report)
        finally:
            for seg in segments:
                seg.file.close()
            # A pass returns only once its last batch is committed, even when it failed.
            self.ledger.settle()
        book = self.ledger.book(self.source)
        report.gaps = book.gaps
        report.last_seq = book.last_seq
        if self.retention is not None and not self.stop.is_set():
            keep_bounded(self.logs, self._indexed_to, self.retention)
        return report

    def _indexed_to(self, key: str) -> int | None:
        state = self.ledger.file(self.source, key)
        return None if state is None else state.offset

    def _report_strangers(self, report: ScanReport) -> None:
        """Record an incident for each log path found holding a link or a non-file.

        Once: not again while the newest incident about that path says the same.
        """
        incidents = []
        for name, what in sorted(self._strangers.items()):
            message = f"{name} is {what}, not a log file: skipped, never followed or read"
            if self.ledger.last_incident(self.source, name) != message:
                incidents.append(Incident("not_a_file", name, message))
        if incidents:
            self._commit(report, incidents=incidents)

    def _open_segments(self, attempts: int = 20) -> list[_Segment]:
        """Open the log files; return them oldest first, one per key.

        Slots are probed upwards, newest first: a file only ever moves to a higher slot,
        so the probe meets every file that existed when it began. A rotation during the
        probe can still let a file created meanwhile overtake an older one, so the probe
        is repeated until every path still names the file opened through it (an open
        file's inode cannot be reused, so an unchanged mapping means no rotation).
        """
        for _ in range(attempts):
            opened = self._probe()
            if all(_still_at(seg) for seg in opened):
                return opened
            for seg in opened:
                seg.file.close()
        log.warning("log files kept rotating while being opened; this pass may be out of order")
        return self._probe()

    def _probe(self) -> list[_Segment]:
        opened: list[_Segment] = []
        keys: set[str] = set()
        highest = highest_slot(self.log_dir)
        slot = -1
        while True:
            slot += 1
            path = self.logs.rotated(slot)
            try:
                # No symlink is followed, and nothing but a regular file is read: a link
                # could expose any file the indexer can read (its lines would be kept in
                # rejected_lines), a FIFO would block the pass. O_NONBLOCK is for the FIFO.
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                if slot > highest:
                    break
                continue  # an empty slot: a rotation stopped half way, or one under way
            except OSError as error:
                if error.errno != errno.ELOOP:
                    raise
                self._strangers[path.name] = "a symbolic link"
                continue
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                self._strangers[path.name] = "not a regular file"
                continue
            file = os.fdopen(fd, "rb", buffering=0)
            key = file_key(file.fileno(), st.st_ino)
            segment = _Segment(path, file, st.st_ino, st.st_size, key, has_newer=bool(opened))
            if key is not None and key in keys:
                file.close()  # the same file under a newer name, mid-rename or mid-copy
                continue
            if key is None and path.name != LOG_FILE_NAME:
                file.close()  # a rotated file without one complete line: nothing to read yet
                continue
            if key is not None:
                keys.add(key)
            opened.append(segment)
        opened.reverse()
        return opened

    def _check_replaced(self, seg: _Segment, segments: list[_Segment]) -> list[Incident]:
        """Tell a truncation or replacement of trek.log from a rotation, by what was there before.

        An incident means lines may have been lost or changed. None when the file that was
        there is still kept under another name (renamed, or copied before a copytruncate), or
        was read to its end and the file that continues its seq is kept: a rotation while
        stopped, even one whose new trek.log sits on the freed inode of a file rotated out.
        """
        previous = self.ledger.occupant(self.source, LOG_FILE_NAME)
        if previous is None or previous == Occupant(LOG_FILE_NAME, seg.key, seg.inode):
            return []
        old_key, old_inode = previous.key, previous.inode
        if old_key is None or old_key == seg.key:
            return []
        if any(other.key == old_key for other in segments):
            return []  # kept under another name: rotated, or copied before a truncation
        old = self.ledger.file(self.source, old_key)
        if old is not None and old.path != LOG_FILE_NAME and old.inode == old_inode:
            return []  # it was seen renamed: a rotation, whatever became of it since
        if old is not None and old.last_seq is not None:
            successor = old.last_seq + 1
            if any(other is not seg and self._first_seq(other) == successor for other in segments):
                return []  # read to its end and continued in a kept file: nothing lost
            if seg.inode != old_inode and self._first_seq(seg) == successor:
                return []  # replaced once read to its end (as with no backups): nothing lost
        now = seg.key or "no complete line yet"
        if old_inode == seg.inode:
            message = (
                f"{LOG_FILE_NAME} was truncated or rewritten in place (inode {seg.inode}): it "
                f"began with {old_key}, now {now}; rows already indexed stay"
            )
            return [Incident("truncated", LOG_FILE_NAME, message)]
        message = (
            f"{LOG_FILE_NAME} was replaced: the file that began with {old_key} is no longer "
            f"among the kept log files (deleted, moved away or rotated out unread); now {now}"
        )
        return [Incident("replaced", LOG_FILE_NAME, message)]

    @staticmethod
    def _first_seq(seg: _Segment) -> int | None:
        head = os.pread(seg.file.fileno(), 4096, 0)
        try:
            return decode(head.split(b"\n", 1)[0])["seq"]
        except LineError:
            return None

    def _index(self, seg: _Segment, segments: list[_Segment], report: ScanReport) -> None:
        ledger = self.ledger
        book = ledger.book(self.source)
        name = seg.path.name
        incidents: list[Incident] = []
        occupant: Occupant | None = None
        here = Occupant(name, seg.key, seg.inode)
        if name == LOG_FILE_NAME and ledger.occupant(self.source, name) != here:
            incidents = self._check_replaced(seg, segments)
            occupant = here
        if seg.key is None:
            if incidents or occupant:
                self._commit(report, incidents=incidents, occupant=occupant)
            return
        state = ledger.file(self.source, seg.key) or FileState(seg.key, name, seg.inode)
        if state.stored and seg.size < state.offset:
            incidents.append(
                Incident(
                    "truncated",
                    name,
                    f"{name} ({seg.key}) is {seg.size} bytes, shorter than the {state.offset} "
                    "already read: it was truncated or rewritten; reading it again from the start, "
                    "rows already indexed stay",
                )
            )
            state.offset = 0
        changed = not state.stored or state.path != name or state.inode != seg.inode
        state.path, state.inode = name, seg.inode
        report.files += 1

        reader = LineReader(seg.file, state.offset, max_line=self.max_line)
        rows: list[Row] = []
        rejected: list[Rejected] = []
        start = state.offset
        for line in reader:
            if line.too_long:
                reason = f"line longer than {self.max_line} bytes"
                rejected.append(
                    Rejected(name, seg.key, line.offset, line.length, reason, line.data)
                )
            else:
                try:
                    event = decode(line.data)
                    # Every event line is a link of the chain, even one SQLite cannot hold.
                    chain = book.chain.link(line.data, event, name)
                    row = event_row(event, chain)
                    check_integers(line.data, event)
                except LineError as error:
                    rejected.append(
                        Rejected(name, seg.key, line.offset, line.length, error.reason, line.data)
                    )
                else:
                    rows.append(row)
                    book.note_seq(row.seq)
                    if state.first_seq is None:
                        state.first_seq = row.seq
                    state.last_seq = row.seq
            state.offset = line.end
            if len(rows) + len(rejected) >= self.batch_size:
                self._commit(
                    report, rows, rejected, state, incidents, occupant, state.offset - start
                )
                start = state.offset
                rows, rejected, incidents, occupant, changed = [], [], [], None, False
                if self.stop.is_set():
                    return

        fragment = reader.fragment
        if seg.has_newer and not state.finished:
            if fragment is None:
                state.finished = changed = True
            elif self._settled(seg):
                # A newer file exists, so nobody will finish this line: reject it and move on.
                reason = "incomplete last line of a rotated file"
                rejected.append(
                    Rejected(name, seg.key, fragment.offset, fragment.length, reason, fragment.data)
                )
                state.offset = fragment.offset + fragment.length
                state.finished = changed = True
        if rows or rejected or incidents or occupant or changed or state.offset != start:
            self._commit(report, rows, rejected, state, incidents, occupant, state.offset - start)

    def _settled(self, seg: _Segment) -> bool:
        """Tell whether a rotated file has not been written to for ``fragment_grace`` seconds."""
        mtime = os.fstat(seg.file.fileno()).st_mtime
        return time.time() - mtime >= self.fragment_grace

    def _commit(
        self,
        report: ScanReport,
        rows: list[Row] | None = None,
        rejected: list[Rejected] | None = None,
        state: FileState | None = None,
        incidents: list[Incident] | None = None,
        occupant: Occupant | None = None,
        advanced: int = 0,
    ) -> None:
        rows, rejected, incidents = rows or [], rejected or [], incidents or []
        # A seal's break goes into the batch that holds the seal line (and its new head).
        book = self.ledger.book(self.source)
        breaks = book.chain.take_breaks()
        if breaks:
            incidents = [*incidents, *(Incident(CHAIN_BREAK, b.file, b.message) for b in breaks)]
        dropped = book.duplicates_dropped
        inserted = self.ledger.commit(
            self.source,
            rows=rows,
            rejected=rejected,
            file=state,
            incidents=incidents,
            occupant=occupant,
        )
        report.rows += inserted
        report.duplicates_dropped += book.duplicates_dropped - dropped
        report.rejected += len(rejected)
        report.incidents += len(incidents)
        report.bytes += advanced
        for incident in incidents:
            log.warning("%s (source %s): %s", incident.kind, self.source, incident.message)
        if rejected:
            first = rejected[0]
            log.warning(
                "rejected %d line(s) of %s (source %s), the first at offset %d: %s",
                len(rejected),
                first.file,
                self.source,
                first.offset,
                first.reason,
            )
        if self.on_progress is not None and advanced:
            self.on_progress(advanced)
