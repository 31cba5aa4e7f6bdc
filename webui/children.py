"""The processes ``serve`` starts, and how each of them ends with serve, however it ends.

A child asks the kernel for a signal when its parent dies (``die_with_parent``): an indexer
left behind would hold the data directory's lock forever, and a new serve could not start
its own; an ingest server left behind would keep recording with nobody supervising it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from trek_audit.store import holder_pid, is_locked

__all__ = [
    "Child",
    "IndexerChild",
    "IngestChild",
    "describe_exit",
    "die_with_parent",
    "send_signal",
]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(sig: int, parent: int) -> None:
    """Have the kernel send ``sig`` to this process when ``parent`` ends; call it after fork.

    ``parent`` is the pid that forked us: should it have died before the request was made,
    the signal is sent at once. The kernel tracks the thread that forked, so forks must come
    from a thread that lives as long as its process (serve and gunicorn fork from their
    main threads). Linux only; elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_PDEATHSIG): {os.strerror(code)}")
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


class Child:
    """A ``python -m trek_audit <command>`` child process of serve; it dies with its parent.

    ``what`` names it in serve's messages (``indexer``, ``ingest server``).
    """

    what = "child"

    def __init__(self, data_dir: Path, arguments: list[str]) -> None:
        self.data_dir = data_dir
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trek_audit", *arguments],
            # A session of its own: the terminal's Ctrl-C reaches serve alone, which then
            # stops the child with SIGTERM, and the panel.
            start_new_session=True,
            # SIGTERM: a child left without serve ends cleanly (the indexer commits what it
            # read, the ingest server answers what it read). (serve has no other thread, so
            # running code between fork and exec is safe.)
            preexec_fn=partial(die_with_parent, signal.SIGTERM, os.getpid()),
        )
        self.pid = self.process.pid
        self._terminated = False

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        """Ask it to end (SIGTERM), once: a second SIGTERM could cut its clean end short."""
        if not self._terminated and self.process.poll() is None:
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def running_for(self) -> float:
        return time.monotonic() - self.started_at

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (it ends cleanly), then SIGKILL after ``timeout``; its status."""
        self.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class IndexerChild(Child):
    """One ``trek-audit index`` child process for a data directory."""

    what = "indexer"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, ["index", "--data-dir", str(data_dir), "--quiet"])

    def holds_the_directory(self) -> bool:
        """Tell whether this child holds the data directory's indexer lock."""
        return is_locked(self.data_dir) and holder_pid(self.data_dir) == self.pid


class IngestChild(Child):
    """One ``trek-audit ingest`` child process, listening on ``socket``."""

    what = "ingest server"

    def __init__(self, data_dir: Path, socket: Path) -> None:
        super().__init__(
            data_dir,
            ["ingest", "--data-dir", str(data_dir), "--socket", str(socket), "--quiet"],
        )
        self.socket = socket


def describe_exit(status: int) -> str:
    """A Popen return code in words: ``exited with status 1``, ``was killed by SIGKILL``."""
    if status >= 0:
        return f"exited with status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        name = f"signal {-status}"
    return f"was killed by {name}"


def send_signal(pid: int, sig: int) -> None:
    """Signal ``pid`` unless it has already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
