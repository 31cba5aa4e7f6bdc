"""The indexer banner: shown when the table may not be the whole story."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from trek_audit.layout import LOCAL_SOURCE
from trek_audit.store import AuditQuery, read_status
from trek_audit.store.health import indexer_state
from trek_audit.store.supervisor import read_supervisor_state

__all__ = ["BEHIND_SECONDS", "indexer_warnings"]

log = logging.getLogger(__name__)
BEHIND_SECONDS = 5.0


def indexer_warnings(data_dir: Path, db: AuditQuery | None, lag_warn_bytes: int) -> list[str]:
    """Sentences for the banner, with the figures; empty when all is well."""
    try:
        status = read_status(data_dir, conn=db.conn if db is not None else None)
    except Exception as error:  # the banner must never take the page down with it
        log.warning("cannot read the indexer status: %s", error)
        return [f"The indexer status cannot be read: {error}."]
    warnings = []
    if db is None:
        warnings.append(
            "There is no audit database yet: the indexer has not run on this data directory."
        )
    indexer = indexer_state(bool(status.get("running")), read_supervisor_state(data_dir))
    if not indexer.running:
        restarted = (
            f" trek-audit serve is restarting it ({indexer.restarts} restart(s) so far)."
            if indexer.supervisor_pid is not None
            else ""
        )
        warnings.append(f"The indexer is not running: new events are not being indexed.{restarted}")
    lag = int(status.get("lag_bytes") or 0)
    if lag > 0:
        age = _seconds_since(status.get("last_indexed_at"))
        if lag > lag_warn_bytes or age is None or age > BEHIND_SECONDS:
            since = f", last indexed {age:.0f} s ago" if age is not None else ""
            warnings.append(f"The indexer is behind by {lag:,} bytes of log{since}.")
    sources = status.get("sources") or []
    if any(source["name"] != LOCAL_SOURCE for source in sources):
        # Each source has its own seq: a gap or an incident means something only with its name.
        for source in sources:
            warnings.extend(
                _log_findings(
                    f"Source {source['name']}: ",
                    source["gaps"],
                    source["missing"],
                    source["rejected"],
                    source["incidents"],
                )
            )
    else:
        warnings.extend(
            _log_findings(
                "",
                status.get("gaps") or [],
                int(status.get("missing") or 0),
                int(status.get("rejected") or 0),
                int(status.get("incidents") or 0),
            )
        )
    return warnings


def _log_findings(
    prefix: str, gaps: list[list[int]], missing: int, rejected: int, incidents: int
) -> list[str]:
    """The sentences of one log's gaps, rejected lines and incidents, each led by ``prefix``."""
    found = []
    if gaps:
        shown = ", ".join(f"{a}–{b}" if a != b else str(a) for a, b in gaps[:5])
        more = f" and {len(gaps) - 5} more" if len(gaps) > 5 else ""
        found.append(
            f"{prefix}{len(gaps)} gap(s) in the sequence, {missing:,} event(s) missing: "
            f"seq {shown}{more}."
        )
    if rejected:
        found.append(f"{prefix}{rejected:,} log line(s) were rejected as malformed.")
    if incidents:
        found.append(
            f"{prefix}{incidents:,} incident(s) recorded (truncated, replaced or lost log "
            "files, or lines that do not match their seal)."
        )
    return found


def _seconds_since(stamp: object) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return max(time.time() - datetime.fromisoformat(stamp).timestamp(), 0.0)
    except ValueError:
        return None
