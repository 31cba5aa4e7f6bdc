"""What verify finds, and where: the stream of event lines it walks, and the problems at them.

Every event line of the files, oldest first, has a *position* in one stream. A problem is kept
with the position it concerns, so that a *suspect* (a chain or epoch mismatch) is reported at
the end only when no other problem within its range explains it: one damaged line is one
problem, not one per seal after it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .verify_report import Problem

__all__ = ["LOSSES", "Findings", "Found", "LineStream", "Place"]

# Problems that mean lines (and seals with them) are gone: they explain an epoch gap.
LOSSES = frozenset(("deleted", "missing", "dropped_file", "cut_short"))

Place = tuple[int, int]  # (file index, line number; 0 for the file as a whole)


@dataclass
class LineStream:
    """The event lines of every file read, in file order, as positions 0, 1, 2, ..."""

    files: list[str] = field(default_factory=list)
    file_starts: list[int] = field(default_factory=list)  # each file's first position
    seqs: list[int] = field(default_factory=list)
    hashes: list[int] = field(default_factory=list)
    places: list[Place] = field(default_factory=list)
    # The position of the first line of each seq, and the positions of lines that repeat an
    # earlier line byte for byte (a shipper's duplicate, say): not links of the chain.
    first_of: dict[int, int] = field(default_factory=dict)
    repeats: set[int] = field(default_factory=set)

    def add_file(self, path: Path | str) -> int:
        """Start the lines of another file; its index."""
        self.files.append(str(path))
        self.file_starts.append(len(self.seqs))
        return len(self.files) - 1

    def add_line(self, seq: int, line: bytes, place: Place) -> int:
        """Add an event line (its bytes with the newline); its position."""
        position = len(self.seqs)
        digest = hash(line)
        self.seqs.append(seq)
        self.hashes.append(digest)
        self.places.append(place)
        first = self.first_of.setdefault(seq, position)
        if first != position and self.hashes[first] == digest:
            self.repeats.add(position)
        return position

    def where(self, position: int) -> Place:
        """The place of ``position``, or the end of the last file for the end of the stream."""
        if position < len(self.places):
            return self.places[position]
        return (len(self.files) - 1, 0)

    def name(self, file_index: int) -> str:
        return Path(self.files[file_index]).name

    def lines(self, low: int, high: int) -> str:
        """``lines 4-9 of trek.log.2`` for positions low..high (within one file or across)."""
        (file_a, line_a), (file_b, line_b) = self.where(low), self.where(high)
        if file_a == file_b:
            return f"lines {line_a}-{line_b} of {self.name(file_a)}"
        return f"line {line_a} of {self.name(file_a)} to line {line_b} of {self.name(file_b)}"


class Found(NamedTuple):
    position: int  # the position in the stream it concerns (for explanations)
    order: Place  # (file index, line) for sorting the output
    problem: Problem
    explains: bool = True  # whether it can explain a suspect in its range


class _Suspect(NamedTuple):
    """A chain or epoch mismatch: reported only if nothing found in [low, high] explains it."""

    low: int
    high: int
    found: Found
    explainers: frozenset[str] | None  # kinds that explain it; None: any problem


class Findings:
    """The problems found in a stream, in the order of the files and lines they name."""

    def __init__(self, stream: LineStream) -> None:
        self.stream = stream
        self.found: list[Found] = []
        self.suspects: list[_Suspect] = []
        self.strays: list[tuple[int, Found]] = []  # not_an_event lines, by position

    def problem(
        self,
        position: int,
        kind: str,
        place: Place | None,
        message: str,
        seqs: tuple[int | None, int | None] = (None, None),
        row: int | None = None,
        *,
        suspect: tuple[int, int, frozenset[str] | None] | None = None,
        explains: bool = True,
    ) -> Found:
        """Note a problem at ``position``; a ``suspect`` (low, high, explainers) only counts
        if nothing else found in positions low..high explains it."""
        file = self.stream.files[place[0]] if place is not None else None
        problem: Problem = {
            "kind": kind,
            "file": file,
            "line": place[1] if place is not None and place[1] > 0 else None,
            "row": row,
            "first_seq": seqs[0],
            "last_seq": seqs[1],
            "message": message,
        }
        order = place if place is not None else (len(self.stream.files), 0)
        found = Found(position, order, problem, explains)
        if suspect is None:
            if kind != "not_an_event":
                self.found.append(found)
        else:
            self.suspects.append(_Suspect(suspect[0], suspect[1], found, suspect[2]))
        return found

    def not_an_event(self, file_index: int, number: int, reason: str) -> None:
        """Line ``number`` of the file is not a format-v1 event, so not a link of the chain."""
        found = self.problem(
            len(self.stream.seqs),
            "not_an_event",
            (file_index, number),
            f"not an event ({reason}): the writer never wrote this line",
        )
        self.strays.append((len(self.stream.seqs), found))

    def lost_file_at(self, position: int) -> bool:
        """Whether a dropped or cut-short file is noted at ``position``."""
        return any(
            found.position == position and found.problem["kind"] in ("dropped_file", "cut_short")
            for found in self.found
        )

    def problems(self) -> list[Problem]:
        """Every problem, in file and line order, with the suspects nothing else explains."""
        found = list(self.found)
        found.extend(f for _, f in self.strays)
        everywhere = sorted(item.position for item in found if item.explains)
        losses = sorted(
            item.position for item in found if item.explains and item.problem["kind"] in LOSSES
        )
        for suspect in self.suspects:
            positions = everywhere if suspect.explainers is None else losses
            index = bisect.bisect_left(positions, suspect.low)
            if index == len(positions) or positions[index] > suspect.high:
                found.append(suspect.found)  # nothing else explains it
        found.sort(key=lambda f: f.order)
        return [f.problem for f in found]
