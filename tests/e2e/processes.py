"""Processes seen through /proc: a process's descendants, whether one lives, its CPU time."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces or parentheses itself.
    return text.rpartition(")")[2].split()


def alive(pid: int) -> bool:
    """A zombie has ended: it only waits for its parent to collect its status."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _live_children() -> dict[int, list[int]]:
    """Parent pid -> its live children, for every process."""
    found: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] not in ("Z", "X"):
                found.setdefault(int(fields[1]), []).append(int(entry))
    return found


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    return sorted(_live_children().get(pid, []))


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children...)."""
    tree = _live_children()
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return sorted(found)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time used so far by ``pids`` (all their threads); gone ones count 0."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def kill_all(pids: list[int]) -> None:
    """Clean up after a failed test: SIGKILL whatever of ``pids`` still runs."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
