"""One walk over the log files, oldest first, as one stream of lines: the chain run on from seal
to seal, each line compared with its row, and at the end the problems found.

A seal's range may span a rotation (when a writer without the key rotated), so the chain runs
on across files. At every seal: its range follows the previous seal, its ``prev`` is the head
after the previous seal line, and the chain over its lines from ``prev`` is its ``chain``.
Without the database, a line changed so that it still reads as a valid event can only be
pinned to its seal's range; with it, ``row.chain == advance(previous row's chain, line)``
pins it to its line. A line that repeats an earlier one byte for byte is a copy (reported as
``duplicated``), not a link: the chain runs on without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .findings import Findings, LineStream, Place
from .indexed_rows import IndexedRows
from .log_snapshot import LogFile
from .seal_checks import SealChecks, seal_details
from .seq_order import check_order
from .verify_outcome import Outcome
from .verify_report import Summary

if TYPE_CHECKING:
    from trek_audit.writer.line import Event

__all__ = ["ChainWalk"]


class _Seal(NamedTuple):
    seq: int
    position: int


class ChainWalk:
    """The checks of one stream of lines, fed a file at a time; ``finish`` gives the outcome."""

    def __init__(self, key: bytes | None, database: IndexedRows | None) -> None:
        self.stream = LineStream()
        self.findings = Findings(self.stream)
        self.seal_checks = SealChecks(key, self.findings)
        self.database = database
        self.lines = 0
        self.unsealed = 0
        # The chain: the head after the last seal line (None until a seal gives it), the
        # lines since that seal, and the last seal.
        self.head: bytes | None = None
        self.segment: list[bytes] = []
        self.segment_start = 0
        self.last_seal: _Seal | None = None
        self.compared_seq = 0  # the highest seq compared with its row

    # -- reading ------------------------------------------------------------------------------

    def add_file(self, log: LogFile, *, live: bool) -> None:
        """Walk the lines of ``log`` (``live``: trek.log, whose last line may be in flight)."""
        from trek_audit.writer.chain import SEAL_ACTION
        from trek_audit.writer.line import LineError, decode

        stream, database = self.stream, self.database
        file_index = stream.add_file(log.path)
        parts = log.data.split(b"\n")
        fragment = parts.pop()
        for number, part in enumerate(parts, 1):
            try:
                event = decode(part)
            except LineError as error:
                self.findings.not_an_event(file_index, number, error.reason)
                continue
            line = part + b"\n"
            position = stream.add_line(event["seq"], line, (file_index, number))
            if position in stream.repeats:
                continue  # a copy: the order check names it, the chain runs on without it
            if database is not None:
                self._compare_row(database, position, event, line)
            if event["action"] == SEAL_ACTION:
                self._seal(event, line, position)
            else:
                self.segment.append(line)
        self.lines += len(parts)
        if fragment:
            self.lines += 1
            self._fragment(file_index, len(parts) + 1, fragment, live=live)
        if database is not None:
            self._check_cut(database, log, file_index, len(parts) + (1 if fragment else 0))

    def follows_on(self, log: LogFile) -> bool:
        """Whether ``log``'s first event is the seq after the last line walked so far."""
        seqs = self.stream.seqs
        return bool(seqs) and log.first_seq == seqs[-1] + 1

    def _fragment(self, file_index: int, number: int, fragment: bytes, *, live: bool) -> None:
        from trek_audit.writer.line import LineError, decode

        try:
            decode(fragment)
        except LineError:
            if live:  # trek.log's last line may be being written right now
                return
            self.findings.not_an_event(file_index, number, "the file ends in a partial line")
            return
        self.findings.not_an_event(file_index, number, "a whole event without its newline")

    # -- rows and files ------------------------------------------------------------------------

    def _compare_row(self, database: IndexedRows, position: int, event: Event, line: bytes) -> None:
        seq = event["seq"]
        if seq <= self.compared_seq:
            return  # a line out of order: the order check names it
        self.compared_seq = seq
        compared = database.compare(event, line)
        if compared is None:
            return
        row, differ = compared.row, compared.differ
        place = self.stream.places[position]
        if compared.chain_follows is False:
            said = f" ({', '.join(differ)} differ)" if differ else ""
            self.findings.problem(
                position, "edited", place,
                f"this line is not the one indexed as row {row}{said}: the chain head the "
                "database keeps for it does not follow from the line before it",
                (seq, seq), row,
            )  # fmt: skip
        elif differ:
            why = (
                "the line still chains as indexed, so the row was changed in audit.db"
                if compared.chain_follows
                else "the database keeps no chain head here to tell which of the two changed"
            )
            self.findings.problem(
                position, "row_differs", place,
                f"row {row} of audit_log differs from this line in {', '.join(differ)}: {why}",
                (seq, seq), row,
            )  # fmt: skip

    def _check_cut(self, database: IndexedRows, log: LogFile, file_index: int, lines: int) -> None:
        """A file shorter than log_files says it was read: its tail was cut."""
        if log.first_id is None:
            return
        known = database.files.get(f"id:{log.first_id}")
        if known is None or known[0] <= len(log.data):
            return
        offset, last_seq = known
        kept = max(self.stream.seqs[self.stream.file_starts[file_index] :], default=0)
        if last_seq is None or last_seq <= kept:
            return  # shorter, but its last line is there: changed within, found line by line
        self.findings.problem(
            len(self.stream.seqs),
            "cut_short",
            (file_index, lines + 1),
            f"the file is {len(log.data)} bytes, but {offset} were indexed from it: its tail "
            f"was cut (seq {kept + 1}..{last_seq} are gone)",
            (kept + 1, last_seq),
        )

    def dropped_file(self, path: Path, newer: LogFile, *, at_start: bool = False) -> None:
        """trek.log.N is missing between the rotated files (or before the oldest)."""
        seqs = self.stream.seqs
        position = len(seqs)
        older_last = seqs[-1] if seqs and not at_start else None
        first = None if older_last is None else older_last + 1
        last = None if newer.first_seq is None else newer.first_seq - 1
        file_index = self.stream.add_file(path)
        why = (
            "audit.db holds rows from before the oldest file, and fewer rotated files are "
            "kept than TREK_LOG_BACKUPS allows"
            if at_start
            else "the files around it are there"
        )
        self.findings.problem(
            position,
            "dropped_file",
            (file_index, 0),
            f"{path.name} is missing: {why}; its lines are gone",
            (first, last),
        )

    def lost_everything(self, path: Path, newest_seq: int) -> None:
        """No log file is left, but audit.db holds rows."""
        self.stream.add_file(path)
        self.findings.problem(
            0,
            "dropped_file",
            (0, 0),
            f"no log file is left, but audit.db holds rows up to seq {newest_seq}",
            (None, newest_seq),
        )

    # -- seals ---------------------------------------------------------------------------------

    def _seal(self, event: Event, line: bytes, position: int) -> None:
        from trek_audit.writer.chain import advance

        place = self.stream.places[position]
        details = seal_details(event["details"])
        seq = event["seq"]
        if details is None:
            self.findings.problem(
                position, "forged_seal", place,
                "a seal line whose details are not a seal's (epoch, first_seq, last_seq, prev, "
                "chain, key_id, mac): not written by trek-audit",
                (seq, seq),
            )  # fmt: skip
            self.segment.append(line)
            return
        last = self.last_seal
        self.seal_checks.check(details, position, place, last.position if last else None)
        start, segment = self.segment_start, self.segment
        covered = (details["first_seq"], details["last_seq"])
        prev, chain = bytes.fromhex(details["prev"]), bytes.fromhex(details["chain"])
        if details["epoch"] == 0:
            if covered != (seq, seq - 1) or prev != chain:
                self.findings.problem(
                    position, "forged_seal", place,
                    "an opening seal (epoch 0) covers no line and has prev equal to chain; "
                    f"this one claims seq {covered[0]}..{covered[1]}",
                    (seq, seq),
                )  # fmt: skip
            # Lines before the first seal under a key are unsealed; the head still runs on
            # through them from the last seal, if there was one.
            self.unsealed += len(segment)
            if self.head is not None and last is not None:
                head = self.head
                for item in segment:
                    head = advance(head, item)
                if head != chain:
                    self._suspect_segment(start, position, seq, last, "opening seal's chain")
        else:
            self._check_range(covered, seq, position, place, prev)
            if last is not None or (segment and self.stream.seqs[start] == covered[0]):
                head = prev
                for item in segment:
                    head = advance(head, item)
                if head != chain:
                    self._suspect_segment(start, position, seq, last, "seal's chain")
            else:  # the range began in a file that is not here: it cannot be recomputed
                self.unsealed += len(segment)
        self.head = advance(chain, line)
        self.last_seal = _Seal(seq, position)
        self.segment = []
        self.segment_start = position + 1

    def _check_range(
        self, covered: tuple[int, int], seq: int, position: int, place: Place, prev: bytes
    ) -> None:
        """The seal's range follows the previous seal, and starts from the head after it."""
        last, start = self.last_seal, self.segment_start
        if (last is not None and covered[0] != last.seq + 1) or covered[1] != seq - 1:
            low = last.position if last is not None else start
            self.findings.problem(
                position, "chain_break", place,
                f"the seal claims seq {covered[0]}..{covered[1]}, but it is seq {seq}"
                + (f" and follows the seal of seq {last.seq}" if last is not None else ""),
                covered,
                suspect=(low, position, None),
            )  # fmt: skip
        follows = last is not None and covered[0] == last.seq + 1
        if self.head is not None and last is not None and follows and self.head != prev:
            # Between the previous seal's chain and this range lies that seal line alone.
            self.findings.problem(
                last.position, "chain_break", self.stream.places[last.position],
                f"this seal line was changed: the head after it is not what the next seal "
                f"(line {place[1]}) names as the start of its range",
                (last.seq, last.seq),
                suspect=(last.position, position, None),
            )  # fmt: skip

    def _suspect_segment(
        self, start: int, position: int, seq: int, last: _Seal | None, what: str
    ) -> None:
        stream = self.stream
        first = (
            last.seq + 1 if last is not None else (stream.seqs[start] if start < position else seq)
        )
        place = stream.places[start] if start < position else stream.places[position]
        self.findings.problem(
            position, "chain_break", place,
            f"the chain over {stream.lines(start, position)} does not give the {what}: one of "
            "these lines (or the seal) was changed and still reads as a valid event; the file "
            "is not indexed (or the rows keep no chain here), so the line cannot be pinned "
            "down closer than this range",
            (first, seq - 1),
            suspect=(start, position, None),
        )  # fmt: skip

    # -- the end -------------------------------------------------------------------------------

    def finish(self, notes: list[str]) -> Outcome:
        """The outcome of the walk: every problem found, and what was checked."""
        self.unsealed += len(self.segment)
        stream, findings, database = self.stream, self.findings, self.database
        if database is not None:
            self._check_rows_past_the_end(database)
            if not database.has_chain:
                notes.append("audit.db keeps no chain per row (before schema 4): fields compared")
        check_order(stream, findings)
        key_note = self.seal_checks.key_note()
        if key_note is not None:
            notes.append(key_note)
        problems = findings.problems()
        summary: Summary = {
            "files": len([f for f in stream.files if os.path.exists(f)]),
            "lines": self.lines,
            "seals": self.seal_checks.seals,
            "epochs": len(self.seal_checks.epochs),
            "rows": database.checked if database is not None else 0,
            "unsealed": self.unsealed,
            "problems": len(problems),
        }
        return Outcome(problems, summary, self.seal_checks.keys is not None, notes)

    def _check_rows_past_the_end(self, database: IndexedRows) -> None:
        """Rows past the last line of the newest file: its tail was cut."""
        stream = self.stream
        newest = max(stream.seqs, default=0)
        count, last = database.rows_after(newest)
        if not count or not stream.places:
            return
        already = any(
            f.problem["kind"] in ("cut_short", "dropped_file") and f.position >= len(stream.seqs)
            for f in self.findings.found
        )
        if not already:
            place = (len(stream.files) - 1, stream.places[-1][1] + 1)
            self.findings.problem(
                len(stream.seqs), "cut_short", place,
                f"audit.db holds {count} rows past the end of the log (up to seq {last}): the "
                "file was cut short",
                (newest + 1, last),
            )  # fmt: skip
