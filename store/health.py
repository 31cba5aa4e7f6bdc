"""Whether the audit log is healthy: the one verdict of ``trek-audit status``, /healthz, /metrics.

ok: an indexer follows the log (or none is meant to) and it has indexed everything but at most
``TREK_LAG_WARN_BYTES``, with no gap, rejected line or incident. degraded: some of that is
not so, or the indexer has been down for less than a minute (serve restarts it). failing:
audit.db cannot be read, or the indexer has been down for a minute or more (at once when no
serve supervises it: nothing will bring it back).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple, TypedDict

from trek_audit.layout import LOCAL_SOURCE
from trek_audit.settings import Settings

from .indexer_lock import is_locked
from .status import Status, read_status
from .supervisor import SupervisorState, parse_time, read_supervisor_state

__all__ = [
    "DOWN_FAILING_AFTER",
    "EXIT_CODES",
    "Health",
    "HealthReport",
    "IndexerState",
    "Verdict",
    "indexer_state",
    "judge",
    "read_health",
]

log = logging.getLogger(__name__)

Verdict = Literal["ok", "degraded", "failing"]
# `trek-audit status` exits with these, as Nagios-style checks read them.
EXIT_CODES: Mapping[Verdict, int] = {"ok": 0, "degraded": 1, "failing": 2}
# A restart takes serve 1 s to 30 s of backoff; a minute down is more than a restart.
DOWN_FAILING_AFTER = timedelta(minutes=1)
_INCIDENT_KINDS = "truncated, replaced or lost log files, or lines that do not match their seal"


class Health(TypedDict):
    """The body of GET /healthz; ``trek-audit status --json`` prints these keys too.

    The counters are None only when audit.db cannot be read (and the status is failing).
    """

    status: Verdict
    indexer_running: bool
    indexer_restarts: int
    lag_bytes: int | None
    last_indexed_at: str | None
    missing_events: int | None
    rejected_lines: int | None


class IndexerState(NamedTuple):
    """Whether an indexer runs, as the indexer lock and a live serve's serve.json tell."""

    running: bool
    restarts: int  # by the serve that supervises it; 0 without one
    down_since: datetime | None  # known only to a supervising serve
    supervisor_pid: int | None  # the live serve that supervises it, if any


@dataclass(frozen=True)
class HealthReport:
    """The verdict, why, and the figures it was made from."""

    verdict: Verdict
    reasons: tuple[str, ...]  # one sentence per finding, worst first; empty when ok
    indexer: IndexerState
    status: Status | None  # None when audit.db cannot be read

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def health(self) -> Health:
        status = self.status
        return Health(
            status=self.verdict,
            indexer_running=self.indexer.running,
            indexer_restarts=self.indexer.restarts,
            lag_bytes=status["lag_bytes"] if status else None,
            last_indexed_at=status["last_indexed_at"] if status else None,
            missing_events=status["missing"] if status else None,
            rejected_lines=status["rejected"] if status else None,
        )

    def as_json(self) -> dict[str, object]:
        """What ``trek-audit status --json`` prints: read_status's keys, /healthz's, and why.

        read_status's keys are all null when audit.db cannot be read.
        """
        down_since = self.indexer.down_since
        unknown = dict.fromkeys(Status.__required_keys__)
        return {
            **(self.status or unknown),
            **self.health(),
            "reasons": list(self.reasons),
            "indexer_down_since": down_since.isoformat() if down_since else None,
            "supervisor_pid": self.indexer.supervisor_pid,
        }


def read_health(settings: Settings, *, now: datetime | None = None) -> HealthReport:
    """Read the status and serve.json of ``settings.data_dir`` and judge them.

    Never raises for an unreadable audit.db or log directory: that is a failing verdict.
    """
    data_dir = settings.data_dir
    status: Status | None = None
    error: Exception | None = None
    try:
        status = read_status(data_dir)
    except (sqlite3.Error, OSError) as problem:
        log.warning("cannot read the status of %s: %s", data_dir, problem)
        error = problem
    locked = status["running"] if status is not None else _probe_lock(data_dir)
    indexer = indexer_state(locked, read_supervisor_state(data_dir))
    verdict, reasons = judge(
        status,
        indexer,
        error=error,
        lag_warn_bytes=settings.lag_warn_bytes,
        follower_expected=settings.follower_expected,
        now=now or datetime.now(UTC),
    )
    return HealthReport(verdict, reasons, indexer, status)


def indexer_state(locked: bool, supervisor: SupervisorState | None) -> IndexerState:
    """Combine the lock (someone indexes now) with what a live serve says of its child."""
    if supervisor is None:
        return IndexerState(running=locked, restarts=0, down_since=None, supervisor_pid=None)
    # A child that serve has just started may not hold the lock yet; another indexer that
    # holds it while serve's child waits indexes all the same.
    running = locked or supervisor["indexer_running"]
    down_since = None
    if not running:
        down_since = parse_time(supervisor["indexer_down_since"]) or parse_time(
            supervisor["updated_at"]
        )
    return IndexerState(running, supervisor["indexer_restarts"], down_since, supervisor["pid"])


def judge(
    status: Status | None,
    indexer: IndexerState,
    *,
    error: Exception | None,
    lag_warn_bytes: int,
    follower_expected: bool,
    now: datetime,
) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict and its reasons: the one place the rules of health are written."""
    failing: list[str] = []
    degraded: list[str] = []
    if status is None:
        failing.append(f"audit.db cannot be read: {error}")
    if follower_expected and not indexer.running:
        if indexer.supervisor_pid is None:
            failing.append(
                "no indexer is running and no `trek-audit serve` supervises one "
                "(set TREK_FOLLOWER_EXPECTED=false where `index --once` runs from cron)"
            )
        else:
            down = _down_for(indexer.down_since, now)
            sentence = (
                f"the indexer has been down for {down.total_seconds():.0f} s; trek-audit serve "
                f"(pid {indexer.supervisor_pid}) is restarting it "
                f"({indexer.restarts} restart(s) so far)"
            )
            (failing if down >= DOWN_FAILING_AFTER else degraded).append(sentence)
    if status is not None:
        degraded.extend(_status_findings(status, lag_warn_bytes))
    verdict: Verdict = "failing" if failing else "degraded" if degraded else "ok"
    return verdict, (*failing, *degraded)


def _status_findings(status: Status, lag_warn_bytes: int) -> list[str]:
    """The degraded findings of the indexer's counters: lag, gaps, rejected lines, incidents.

    With sources other than the local log, gaps, rejected lines and incidents are told per
    source, which names the host to look at; the lag is judged on the total, as before.
    """
    findings: list[str] = []
    sources = status.get("sources") or []
    named = any(source["name"] != LOCAL_SOURCE for source in sources)
    if status["lag_bytes"] > lag_warn_bytes:
        behind = ", ".join(
            f"source {source['name']}: {source['lag_bytes']:,}"
            for source in sorted(sources, key=lambda source: -source["lag_bytes"])
            if source["lag_bytes"] > 0
        )
        findings.append(
            f"{status['lag_bytes']:,} bytes of log are not indexed yet "
            f"(more than TREK_LAG_WARN_BYTES, {lag_warn_bytes:,})"
            + (f"; {behind}" if named and behind else "")
        )
    if not named:
        if status["missing"]:
            findings.append(
                f"{status['missing']:,} event(s) missing in {len(status['gaps'])} gap(s)"
            )
        if status["rejected"]:
            findings.append(f"{status['rejected']:,} log line(s) rejected as malformed")
        if status["incidents"]:
            findings.append(f"{status['incidents']:,} incident(s): {_INCIDENT_KINDS}")
        return findings
    for source in sources:
        name = source["name"]
        if source["missing"]:
            findings.append(
                f"source {name}: {_count(source['missing'], 'event')} missing "
                f"in {_count(len(source['gaps']), 'gap')}"
            )
    for source in sources:
        if source["rejected"]:
            findings.append(
                f"source {source['name']}: {_count(source['rejected'], 'log line')} "
                "rejected as malformed"
            )
    for source in sources:
        if source["incidents"]:
            findings.append(
                f"source {source['name']}: {_count(source['incidents'], 'incident')}: "
                f"{_INCIDENT_KINDS}"
            )
    return findings


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _down_for(since: datetime | None, now: datetime) -> timedelta:
    if since is None:
        return timedelta(0)
    return max(now - since, timedelta(0))


def _probe_lock(data_dir: Path) -> bool:
    try:
        return is_locked(data_dir)
    except OSError as error:
        log.warning("cannot probe the indexer lock of %s: %s", data_dir, error)
        return False
