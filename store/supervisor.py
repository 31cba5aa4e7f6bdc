"""What ``trek-audit serve`` knows of its indexer child, kept in ``<data>/serve.json``.

``serve`` rewrites the file (temp file and rename, so a reader never sees half of it) when
its indexer starts, stops or is restarted. Readers trust it only while serve's pid is alive:
a file left behind by a killed serve reads as no supervisor at all, and the indexer lock
alone then says whether an indexer runs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from trek_audit.layout import SUPERVISOR_STATE_MODE, DataDir

__all__ = ["SupervisorState", "parse_time", "read_supervisor_state", "write_supervisor_state"]

log = logging.getLogger(__name__)


class SupervisorState(TypedDict):
    """The content of serve.json."""

    pid: int  # serve's own
    indexer_pid: int | None  # the indexer child's, while one runs
    indexer_running: bool
    indexer_restarts: int  # since serve started
    indexer_down_since: str | None  # ISO 8601, while the child is down
    updated_at: str  # ISO 8601


def write_supervisor_state(data_dir: Path, state: SupervisorState) -> None:
    """Replace serve.json with ``state`` in one rename."""
    path = DataDir(Path(data_dir)).supervisor_state
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(state, file, sort_keys=True)
        os.chmod(temporary, SUPERVISOR_STATE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_supervisor_state(data_dir: Path) -> SupervisorState | None:
    """serve.json, or None when no live serve wrote it (absent, malformed, or its pid dead)."""
    path = DataDir(Path(data_dir)).supervisor_state
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("ignoring %s: %s", path, error)
        return None
    state = _validated(raw)
    if state is None:
        log.warning("ignoring %s: not the state serve writes", path)
        return None
    return state if _alive(state["pid"]) else None


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no offset); None if unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _validated(raw: object) -> SupervisorState | None:
    if not isinstance(raw, dict):
        return None
    pid, child, restarts = raw.get("pid"), raw.get("indexer_pid"), raw.get("indexer_restarts")
    running, down, updated = (
        raw.get("indexer_running"),
        raw.get("indexer_down_since"),
        raw.get("updated_at"),
    )
    if (
        not isinstance(pid, int)
        or not isinstance(restarts, int)
        or not (child is None or isinstance(child, int))
        or not isinstance(running, bool)
        or not (down is None or isinstance(down, str))
        or not isinstance(updated, str)
        or any(isinstance(n, bool) or n < 0 for n in (pid, restarts, child or 0))
    ):
        return None
    return SupervisorState(
        pid=pid,
        indexer_pid=child,
        indexer_running=running,
        indexer_restarts=restarts,
        indexer_down_since=down,
        updated_at=updated,
    )


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a killed serve not yet reaped by its parent (a zombie) does not."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return _signalable(pid)  # gone, or no /proc here
    # The state letter follows the command name, which is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
