"""The Audit page's seal block: the newest seal, the last verify run, and which rows are sealed.

Both come from files anyone who can write the data directory could damage (a seal row's
details, verify.json), so every value is checked for its type before it is shown, and a
value that fails is shown as unreadable rather than taking the page down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from trek_audit.layout import DataDir
from trek_audit.store import AuditQuery, Entry, Filter
from trek_audit.store.verify_report import read_report
from trek_audit.writer.chain import SEAL_ACTION

__all__ = [
    "PROBLEMS_SHOWN",
    "LastVerify",
    "ProblemLine",
    "Sealing",
    "read_last_verify",
    "is_sealed",
    "read_row_sealings",
    "read_sealing",
    "sealing_key_exists",
]

# The first problems of the last verify run shown on the page; `trek-audit verify` lists all.
PROBLEMS_SHOWN = 5
# A problem's message is a sentence; anything longer than this was not written by verify.
_MESSAGE_LIMIT = 500
_VERDICTS = {0: "intact", 1: "NOT intact", 2: "could not run"}
# The summary's counts in the order shown, each with its words for one and for several.
_COUNTS = (
    ("files", "file", "files"),
    ("lines", "line", "lines"),
    ("seals", "seal", "seals"),
    ("epochs", "epoch", "epochs"),
    ("rows", "row checked", "rows checked"),
    ("unsealed", "unsealed", "unsealed"),
    ("problems", "problem", "problems"),
)


def _int(value: object) -> int | None:
    """``value`` if it is a whole number (JSON true/false are not), else None."""
    return value if type(value) is int else None


def _text(value: object, limit: int = _MESSAGE_LIMIT) -> str | None:
    return value[:limit] if isinstance(value, str) else None


@dataclass(frozen=True)
class Sealing:
    """What the seal lines in audit.db say: the newest seal, and which seqs seals cover.

    ``epoch`` and ``last_seq`` are None when the newest seal line's details cannot be read.
    Seals cover the lines from ``first_seq`` (where the oldest seal line in the table starts:
    lines before the opening seal are never sealed) up to the newest seal's ``last_seq``,
    of their ``source``: each source has its own seq and chain, and its own seals.
    """

    source: str
    ts: str
    seq: int | None
    epoch: int | None
    last_seq: int | None
    first_seq: int | None

    def covers(self, seq: int | None) -> bool:
        """Whether the line numbered ``seq`` is covered by a seal yet."""
        if seq is None or self.last_seq is None:
            return False
        return (self.first_seq is None or self.first_seq <= seq) and seq <= self.last_seq


def is_sealed(sealing: Sealing | None, seq: int | None) -> bool:
    """Whether the line numbered ``seq`` is covered by a seal yet (never without any seal)."""
    return sealing is not None and sealing.covers(seq)


def _details(entry: Entry) -> dict[str, Any]:
    try:
        details = orjson.loads(entry.details or "null")
    except orjson.JSONDecodeError:
        return {}
    return details if isinstance(details, dict) else {}


def read_sealing(db: AuditQuery, source: str | None = None) -> Sealing | None:
    """The seal lines' story in audit.db, or None while there is none (sealing is off).

    Of ``source``, or of the source of the newest seal line when it is None.
    """
    newest = db.newest(Filter(action=(SEAL_ACTION,), source=(source,) if source else ()))
    if newest is None:
        return None
    oldest = db.oldest(Filter(action=(SEAL_ACTION,), source=(newest.source,))) or newest
    details = _details(newest)
    first_seq = _int(_details(oldest).get("first_seq"))
    return Sealing(
        source=newest.source,
        ts=newest.ts,
        seq=newest.seq,
        epoch=_int(details.get("epoch")),
        last_seq=_int(details.get("last_seq")),
        first_seq=first_seq if first_seq is not None else oldest.seq,
    )


def read_row_sealings(
    db: AuditQuery, sources: list[str], newest: Sealing | None
) -> dict[str, Sealing]:
    """The sealing of each of ``sources`` that has seal lines, to tell which rows are sealed.

    A row's seq is covered only by the seals of its own source: a seq means nothing across
    sources. With one source, its sealing is ``newest`` (what ``read_sealing(db)`` returned).
    """
    found = [newest] if len(sources) <= 1 else [read_sealing(db, name) for name in sources]
    return {sealing.source: sealing for sealing in found if sealing is not None}


def sealing_key_exists(path: os.PathLike[str]) -> bool:
    """Whether a sealing key file is there (only looked at, never read: it is a secret)."""
    return os.path.lexists(path)


@dataclass(frozen=True)
class ProblemLine:
    """One problem of the last verify run, as the page lists it."""

    kind: str
    where: str  # "trek.log.2 line 17", "row 4711" or ""
    seqs: str  # "seq 12–40", "seq 12" or ""
    message: str


@dataclass(frozen=True)
class LastVerify:
    """The last ``trek-audit verify`` of the data directory, as far as verify.json tells.

    ``state`` is "never" (no verify.json), "unreadable" (it cannot be read or is not a
    report) or "ran"; the other fields are filled in only for "ran".
    """

    state: str
    ran_at: str = ""
    verdict: str = ""
    exit_code: int | None = None
    keyed: bool = False
    counts: tuple[str, ...] = ()  # "1,234 lines", ...
    problems: tuple[ProblemLine, ...] = ()
    more_problems: int = 0


def read_last_verify(data: DataDir) -> LastVerify:
    """The last verify run, from ``<data>/verify.json``; never raises for its content."""
    report = read_report(data)
    if report is None:
        return LastVerify("unreadable" if os.path.lexists(data.verify_report) else "never")
    raw: dict[str, Any] = dict(report)
    exit_code = _int(raw.get("exit_code"))
    summary = raw.get("summary")
    summary = summary if isinstance(summary, dict) else {}
    counts = tuple(
        f"{count:,} {one if count == 1 else several}"
        for name, one, several in _COUNTS
        if (count := _int(summary.get(name))) is not None
    )
    listed = raw.get("problems")
    listed = listed if isinstance(listed, list) else []
    problems = tuple(_problem(item) for item in listed[:PROBLEMS_SHOWN] if isinstance(item, dict))
    total = max(_int(summary.get("problems")) or 0, len(listed))
    return LastVerify(
        state="ran",
        ran_at=_text(raw.get("ran_at"), 64) or "",
        verdict=_VERDICTS.get(exit_code, "unknown") if exit_code is not None else "unknown",
        exit_code=exit_code,
        keyed=raw.get("keyed") is True,
        counts=counts,
        problems=problems,
        more_problems=max(total - len(problems), 0),
    )


def _problem(item: dict[str, Any]) -> ProblemLine:
    file, line, row = _text(item.get("file")), _int(item.get("line")), _int(item.get("row"))
    if file is not None:
        where = f"{file} line {line}" if line is not None else file
    else:
        where = f"row {row}" if row is not None else ""
    first, last = _int(item.get("first_seq")), _int(item.get("last_seq"))
    if first is not None and last is not None and last != first:
        seqs = f"seq {first}–{last}"
    elif first is not None or last is not None:
        seqs = f"seq {first if first is not None else last}"
    else:
        seqs = ""
    return ProblemLine(
        kind=_text(item.get("kind"), 40) or "problem",
        where=where,
        seqs=seqs,
        message=_text(item.get("message")) or "",
    )
