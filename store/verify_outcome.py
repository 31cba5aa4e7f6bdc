"""How a ``trek-audit verify`` run ends: an Outcome (exit 0 intact, 1 not), or a VerifyError (2).

The Outcome keeps every problem found; the report made from it (``verify_report``) keeps the
first STORED_PROBLEMS, while its summary counts them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from .verify_report import Problem, Summary, VerifyReport

__all__ = ["STORED_PROBLEMS", "KeyFileError", "Outcome", "VerifyError"]

# How many problems a stored or printed-as-JSON report keeps (the summary counts them all).
STORED_PROBLEMS = 100


class VerifyError(Exception):
    """The check could not run (a log file or audit.db unreadable): exit 2."""


class KeyFileError(VerifyError):
    """The verification key file is missing, unreadable or holds no key."""


@dataclass
class Outcome:
    """What a check found: every problem (the report keeps the first STORED_PROBLEMS)."""

    problems: list[Problem]
    summary: Summary
    keyed: bool
    notes: list[str]
    ran_at: str = field(
        default_factory=lambda: (
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )
    )

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def report(self) -> VerifyReport:
        return {
            "ran_at": self.ran_at,
            "exit_code": self.exit_code,
            "keyed": self.keyed,
            "summary": self.summary,
            "problems": self.problems[:STORED_PROBLEMS],
            "notes": self.notes,
        }
