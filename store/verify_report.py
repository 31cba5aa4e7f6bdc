"""The result of the last ``trek-audit verify`` of a data directory, as the panel reads it.

``verify`` (``store/verification.py``) stores it in ``<data>/verify.json`` after each run on a
data directory (not after a run on given paths); the panel and ``status`` read it back.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import NotRequired, TypedDict

import orjson

from trek_audit.layout import VERIFY_REPORT_MODE, DataDir

__all__ = ["Problem", "Summary", "VerifyReport", "read_report", "write_report"]


class Problem(TypedDict):
    """One thing verify found wrong (or unsealed), located as exactly as it could be."""

    kind: str  # e.g. "edited", "deleted", "inserted", "duplicated", "reordered", "missing",
    # "cut_short", "dropped_file", "resealed", "forged_seal", "row_differs", "not_an_event",
    # "unsealed", "chain_break", "epoch_gap"
    file: str | None  # the log file's path, or None for a database row
    line: int | None  # 1-based line number in ``file``
    row: int | None  # audit_log rowid, for a problem found in the database
    first_seq: int | None  # the seq range concerned
    last_seq: int | None
    message: str  # a sentence an admin can act on


class Summary(TypedDict):
    files: int
    lines: int
    seals: int
    epochs: int
    rows: int
    unsealed: int
    problems: int


class VerifyReport(TypedDict):
    ran_at: str  # RFC 3339 UTC
    exit_code: int  # 0 intact, 1 not intact, 2 could not run
    keyed: bool  # whether a verification key was given (MACs checked)
    summary: Summary
    problems: list[Problem]  # the first 100
    # What the run could not check, or checked besides: "no database: rows not checked", no
    # key given, files beyond the rotations kept.
    notes: NotRequired[list[str]]


def read_report(data: DataDir) -> VerifyReport | None:
    """The last stored report, or None if there is none or it cannot be read."""
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        # O_NONBLOCK: a FIFO put there must not hang the page; only a regular file is read.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(data.verify_report, flags)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            report = orjson.loads(file.read(4 * 1024 * 1024))
        if type(report) is dict and "exit_code" in report and "summary" in report:
            return report  # type: ignore[return-value]
    return None


def write_report(data: DataDir, report: VerifyReport) -> None:
    """Store ``report`` as <data>/verify.json, mode VERIFY_REPORT_MODE, whole or not at all.

    Written to a new file beside it, then renamed over it: a reader sees the old report or
    the new one, and a symbolic link at verify.json is replaced, never followed.
    """
    target = Path(data.verify_report)
    fd, temporary = tempfile.mkstemp(prefix=".verify-", suffix=".json", dir=target.parent)
    try:
        os.fchmod(fd, VERIFY_REPORT_MODE)  # mkstemp makes it 0600, whatever the umask
        with os.fdopen(fd, "wb") as file:
            file.write(orjson.dumps(report, option=orjson.OPT_INDENT_2))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
