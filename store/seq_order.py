"""The seqs of the stream of lines, which must run on by one, and what breaks that run.

The lines in place are a longest rising run of seqs. A line out of it is ``duplicated`` (the
same bytes as the line of its seq), ``inserted`` (another line's seq, or none of the run's) or
``reordered`` (its seq is missing from the run but belongs inside it); a hole in the run is
``deleted`` (one seq) or ``missing``, unless a line sits in it: that line was ``edited``.
"""

from __future__ import annotations

import bisect

from .findings import Findings, LineStream, Place

__all__ = ["check_order", "longest_run"]

# A hole wider than this is named by its ends alone, without listing every seq in it.
_LISTED_HOLE = 100_000


def check_order(stream: LineStream, findings: Findings) -> None:
    """Report the lines out of the run of seqs and the holes in it."""
    seqs = stream.seqs
    if all(b == a + 1 for a, b in zip(seqs, seqs[1:], strict=False)):
        return
    in_place = longest_run(seqs)
    keep = {seqs[p]: p for p in in_place}
    low, high = seqs[in_place[0]], seqs[in_place[-1]]
    placed = set(in_place)
    out_of_place = [p for p in range(len(seqs)) if p not in placed]
    # A line whose seq is missing from the run but belongs inside it was moved; any other
    # line out of place that sits in a hole of the run took a lost line's place: edited.
    # A repeat of an earlier line is neither: it is a copy, whatever hole it sits in.
    moved = {
        p
        for p in out_of_place
        if seqs[p] not in keep and low < seqs[p] < high and p not in stream.repeats
    }
    moved_seqs = {seqs[p] for p in moved}
    edited: set[int] = set()
    for index in range(1, len(in_place)):
        before, after = in_place[index - 1], in_place[index]
        if seqs[after] - seqs[before] > 1:
            edited |= _hole(stream, findings, before, after, moved, moved_seqs)
    for position in out_of_place:
        if position in edited:
            continue
        seq, place = seqs[position], stream.places[position]
        original = keep.get(seq)
        if original is None and position in stream.repeats:
            original = stream.first_of[seq]  # both copies are out of the run
        if original is not None:
            other = stream.places[original][1]
            if stream.hashes[original] == stream.hashes[position]:
                what = f"a copy of line {other} (seq {seq})"
                # A repeat was left out of the chain: it explains no mismatch of it.
                explains = position not in stream.repeats
                _order_problem(findings, position, "duplicated", place, seq, what, explains)
            else:
                what = f"a line with the seq of line {other} ({seq})"
                _order_problem(findings, position, "inserted", place, seq, what)
        elif position in moved:
            what = f"seq {seq} is out of its place in the run of seqs"
            _order_problem(findings, position, "reordered", place, seq, what)
        else:
            what = f"seq {seq} lies outside the run of seqs around it"
            _order_problem(findings, position, "inserted", place, seq, what)


def longest_run(seqs: list[int]) -> list[int]:
    """The positions of a longest strictly rising subsequence of ``seqs`` (the lines in place)."""
    tails: list[int] = []  # the smallest last seq of a rising run of each length
    tail_positions: list[int] = []
    parents = [-1] * len(seqs)
    for position, seq in enumerate(seqs):
        length = bisect.bisect_left(tails, seq)
        if length < len(tails) and tails[length] == seq:
            continue  # a repeat: the earlier line of the seq is the one in place
        if length == len(tails):
            tails.append(seq)
            tail_positions.append(position)
        else:
            tails[length] = seq
            tail_positions[length] = position
        parents[position] = tail_positions[length - 1] if length else -1
    run: list[int] = []
    position = tail_positions[-1] if tail_positions else -1
    while position >= 0:
        run.append(position)
        position = parents[position]
    run.reverse()
    return run


def _hole(
    stream: LineStream,
    findings: Findings,
    before: int,
    after: int,
    moved: set[int],
    moved_seqs: set[int],
) -> set[int]:
    """Report the seqs missing between two lines in place; return the lines found edited."""
    first, last = stream.seqs[before] + 1, stream.seqs[after] - 1
    if last - first < _LISTED_HOLE:
        gone = [seq for seq in range(first, last + 1) if seq not in moved_seqs]
    else:
        gone = [first, last]
    if not gone:
        return set()
    fillers = {p for p in range(before + 1, after) if p not in moved and p not in stream.repeats}
    seqs = (gone[0], gone[-1])
    for position in sorted(fillers):
        findings.problem(
            position, "edited", stream.places[position],
            f"seq {stream.seqs[position]} sits where seq {gone[0]}..{gone[-1]} belongs: this "
            "line was changed",
            seqs,
        )  # fmt: skip
    strays = [found for p, found in findings.strays if before < p <= after]
    for stray in strays:
        stray.problem["first_seq"], stray.problem["last_seq"] = seqs
        stray.problem["message"] += f" (where seq {gone[0]}..{gone[-1]} belongs)"
    if not fillers and not strays and not findings.lost_file_at(after):
        kind = "deleted" if len(gone) == 1 else "missing"
        what = f"seq {gone[0]} is" if len(gone) == 1 else f"seq {gone[0]}..{gone[-1]} are"
        (file_before, line_before), place = stream.places[before], stream.places[after]
        where = f"line {line_before}"
        if file_before != place[0]:
            where += f" of {stream.name(file_before)}"
        findings.problem(
            after, kind, place, f"{what} missing before this line (after {where})", seqs
        )
    return fillers


def _order_problem(
    findings: Findings,
    position: int,
    kind: str,
    place: Place,
    seq: int,
    what: str,
    explains: bool = True,
) -> None:
    findings.problem(
        position,
        kind,
        place,
        f"{what}: not where the writer put it",
        (seq, seq),
        explains=explains,
    )
