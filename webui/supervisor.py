"""``serve``'s own process: keep an indexer child (and an ingest server) beside the panel.

serve's process runs neither gunicorn, nor the indexer, nor the ingest server itself. It
starts the indexer (``python -m trek_audit index``), the ingest server when it has a socket
(``python -m trek_audit ingest``), and forks the panel (the gunicorn master), then waits. If
a child exits or is killed it says so and starts a new one after a pause (``Backoff``: 1 s,
doubling to 30 s, back to 1 s after a minute of good running; each child has its own), and
it keeps ``<data>/serve.json`` up to date with the indexer for /healthz and ``trek-audit
status``. SIGTERM, SIGINT and SIGHUP stop the panel and the children (the indexer commits
what it read, the ingest server answers what it read), and serve exits 0; if the panel stops
on its own, serve stops the children and exits with the panel's status.

Why not in the gunicorn master: it reaps every child with ``waitpid(-1)``, so it would
collect the indexer's exit status before anyone could act on it.

Nothing it starts outlives it, even when it is killed outright (SIGKILL, the OOM killer):
each child asks the kernel for a signal when serve dies (``die_with_parent``), so a new serve
never finds the data directory held by an orphaned indexer.

The loop sleeps in ``select`` on a pipe that the signal handlers write to
(``signal.set_wakeup_fd``): a child's exit (SIGCHLD) or a stop request wakes it at once, and
while nothing happens it costs nothing.
"""

from __future__ import annotations

import copy
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType

from trek_audit.layout import DataDir
from trek_audit.store import holder_pid, is_locked
from trek_audit.store.supervisor import (
    SupervisorState,
    read_supervisor_state,
    write_supervisor_state,
)

from .children import Child, IndexerChild, IngestChild, describe_exit, die_with_parent, send_signal

__all__ = ["STOP_SIGNALS", "Backoff", "Kept", "Supervisor"]

Echo = Callable[[str], None]

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


class Backoff:
    """How long to wait before restarting a child that exited after running ``ran_for`` seconds.

    ``first``, then twice as long each time up to ``limit``; a child that ran ``reset_after``
    seconds or more counts as having run well, and the next pause is ``first`` again.
    """

    def __init__(self, first: float = 1.0, limit: float = 30.0, reset_after: float = 60.0):
        self.first = first
        self.limit = limit
        self.reset_after = reset_after
        self._next = first

    def delay(self, ran_for: float) -> float:
        if ran_for >= self.reset_after:
            self._next = self.first
        delay = self._next
        self._next = min(self.limit, delay * 2)
        return delay


class Kept:
    """A child serve keeps running: the one running now, its restarts, and the next start."""

    def __init__(self, start: Callable[[], Child], backoff: Backoff) -> None:
        self._start = start
        self.backoff = backoff
        self.child: Child | None = None
        self.restarts = 0
        self.outage_since: datetime | None = None  # kept across restarts that did not last
        self.next_start: float | None = None  # monotonic time of the pending (re)start

    def start(self) -> Child:
        self.child, self.next_start = self._start(), None
        return self.child

    def ended(self) -> tuple[Child, int] | None:
        """The child and its exit status, once it has ended; it is forgotten then."""
        child = self.child
        if child is None:
            return None
        status = child.poll()
        if status is None:
            return None
        self.child = None
        return child, status

    def restart_later(self, child: Child) -> float:
        """Schedule the start of a new child after ``child`` ended; the pause, in seconds."""
        ran_for = child.running_for()
        delay = self.backoff.delay(ran_for)
        if self.outage_since is None or ran_for >= self.backoff.reset_after:
            self.outage_since = datetime.now(UTC)
        self.next_start = time.monotonic() + delay
        return delay

    def due(self) -> bool:
        return self.next_start is not None and time.monotonic() >= self.next_start


def _ended_message(child: Child, status: int, delay: float) -> str:
    return (
        f"the {child.what} (pid {child.pid}) {describe_exit(status)} after "
        f"{child.running_for():.0f} s; starting a new one in {delay:.0f} s"
    )


class _Wakeup:
    """Signals as bytes on a pipe, so the loop can sleep in select() and act in plain code."""

    SIGNALS = (signal.SIGCHLD, *sorted(STOP_SIGNALS))

    def __init__(self) -> None:
        self._fds: tuple[int, int] | None = None
        self._handlers: dict[int, object] = {}
        self._previous_fd = -1

    def __enter__(self) -> _Wakeup:
        self._fds = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # The handlers do nothing: the byte the C handler writes to the pipe is the message.
        self._handlers = {sig: signal.signal(sig, _noted) for sig in self.SIGNALS}
        self._previous_fd = signal.set_wakeup_fd(self._fds[1], warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        self._restore()

    def wait(self, timeout: float | None) -> set[int]:
        """The signals that arrived, waiting up to ``timeout`` seconds (None: until one does)."""
        assert self._fds is not None
        select.select([self._fds[0]], [], [], timeout)
        try:
            return set(os.read(self._fds[0], 512))
        except BlockingIOError:
            return set()

    def forget(self) -> None:
        """In a forked child: back to the default signal handling, without the pipe."""
        signal.set_wakeup_fd(-1)
        for sig in self.SIGNALS:
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, default)
        self._restore(handlers=False)

    def _restore(self, *, handlers: bool = True) -> None:
        if handlers:
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None


def _noted(signum: int, frame: FrameType | None) -> None:
    """A signal handler that leaves the work to the loop (see _Wakeup)."""


class Supervisor:
    """serve's process: the indexer child, the ingest child and the panel child, until stopped.

    ``run(panel)`` forks the panel child, which calls ``panel()`` and exits with what it
    returns. ``ingest_socket``, when given, is where an ingest child listens. ``backoff``
    paces restarts (each child gets a copy); ``lock_probe`` is how often to look whether an
    indexer found running elsewhere has stopped, so that serve starts its own.
    """

    def __init__(
        self,
        data_dir: Path,
        echo: Echo,
        warn: Echo,
        *,
        ingest_socket: Path | None = None,
        backoff: Backoff | None = None,
        lock_probe: float = 5.0,
        panel_stop_timeout: float = 20.0,
    ) -> None:
        self.data_dir = data_dir
        self.state_file = DataDir(data_dir).supervisor_state
        self.echo = echo
        self.warn = warn
        backoff = backoff or Backoff()
        self.lock_probe = lock_probe
        self.panel_stop_timeout = panel_stop_timeout
        self.indexer = Kept(partial(IndexerChild, data_dir), backoff)
        self.other_pid: int | None = None  # another process's indexer holds the directory
        self.ingest_socket = ingest_socket
        self.ingest: Kept | None = None
        if ingest_socket is not None:
            self.ingest = Kept(
                partial(IngestChild, data_dir, ingest_socket), copy.deepcopy(backoff)
            )
        self.panel_pid: int | None = None
        self.panel_started = False
        self.stopping: int | None = None  # the signal that asked us to stop
        self._wakeup = _Wakeup()

    def run(self, panel: Callable[[], int], *, forked: Callable[[], None] = lambda: None) -> int:
        """Start the indexer and the panel, supervise until stopped; serve's exit status.

        ``forked`` runs in serve once the panel child exists (to close what only it needs).
        """
        with self._wakeup:
            try:
                self._start_first_indexer()
                if self.stopping is None:
                    self._start_first_ingest()
                if self.stopping is None:
                    self.panel_pid = self._fork_panel(panel)
                    self.panel_started = True
                    forked()
                    status = self._supervise()
                else:
                    status = 0
            finally:
                self._stop_children()
                self._forget_state()
        return status

    # -- the indexer ------------------------------------------------------------------------

    def _start_first_indexer(self, timeout: float = 10.0) -> None:
        """Start the indexer and wait until it holds the directory, so its line comes first."""
        if self._another_holds_it():
            return
        child = self._start_indexer()
        deadline = time.monotonic() + timeout
        while self.stopping is None and time.monotonic() < deadline:
            if child.poll() is not None or child.holds_the_directory():
                break
            self._take_signals(0.05)
        if child.poll() is None:
            self.echo(f"indexer running (pid {child.pid}) on {self.data_dir}")
        # An indexer that exited at once is reported, and restarted, by the loop.

    def _start_indexer(self) -> IndexerChild:
        child = self.indexer.start()
        assert isinstance(child, IndexerChild)
        self.other_pid = None
        self._write_state()
        return child

    def _another_holds_it(self) -> bool:
        """Look whether some other process's indexer holds the directory; remember it."""
        if not is_locked(self.data_dir):
            return False
        pid = holder_pid(self.data_dir)
        if self.other_pid is None:
            who = f"pid {pid}" if pid else "another process"
            self.echo(
                f"an indexer ({who}) already runs on {self.data_dir}; serving without starting "
                "one (serve starts its own when that one stops)"
            )
            self._forget_state()  # what it said of a child of its own no longer holds
        self.other_pid = pid or 0
        self.indexer.next_start = time.monotonic() + self.lock_probe
        return True

    def _watch_indexer(self) -> None:
        kept = self.indexer
        if kept.child is not None:
            ended = kept.ended()
            if ended is not None:
                self._indexer_ended(*ended)
        elif kept.due():
            if self._another_holds_it():
                return
            if self.other_pid is not None:
                self.echo("the other indexer stopped; serve starts its own")
            else:
                kept.restarts += 1
            child = self._start_indexer()
            self.echo(f"started a new indexer (pid {child.pid})")

    def _indexer_ended(self, child: Child, status: int) -> None:
        if self._another_holds_it():
            return  # it lost the race for the lock: nothing to restart
        delay = self.indexer.restart_later(child)
        self.warn(_ended_message(child, status, delay))
        self._write_state()

    # -- the ingest server ------------------------------------------------------------------

    def _start_first_ingest(self, timeout: float = 10.0) -> None:
        """Start the ingest server and wait until its socket is there, so its line comes first."""
        if self.ingest is None or self.ingest_socket is None:
            return
        child = self.ingest.start()
        deadline = time.monotonic() + timeout
        while self.stopping is None and time.monotonic() < deadline:
            if child.poll() is not None or self.ingest_socket.is_socket():
                break
            self._take_signals(0.05)
        if child.poll() is None:
            self.echo(f"ingest server running (pid {child.pid}) on {self.ingest_socket}")

    def _watch_ingest(self) -> None:
        kept = self.ingest
        if kept is None:
            return
        if kept.child is not None:
            ended = kept.ended()
            if ended is not None:
                child, status = ended
                self.warn(_ended_message(child, status, kept.restart_later(child)))
        elif kept.due():
            kept.restarts += 1
            child = kept.start()
            self.echo(f"started a new ingest server (pid {child.pid})")

    # -- the panel --------------------------------------------------------------------------

    def _fork_panel(self, panel: Callable[[], int]) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid:
            return pid
        status = 1
        try:
            # A process group of its own: the terminal's Ctrl-C reaches serve, which stops
            # gunicorn gracefully; SIGINT, gunicorn's quick stop, if serve dies.
            os.setpgid(0, 0)
            self._wakeup.forget()
            die_with_parent(signal.SIGINT, parent)
            status = panel()
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _panel_status(self) -> int | None:
        """The panel child's exit status once it has ended (and been reaped), else None."""
        if self.panel_pid is None:
            return None
        try:
            pid, wait_status = os.waitpid(self.panel_pid, os.WNOHANG)
        except ChildProcessError:
            self.panel_pid = None
            return 1
        if pid == 0:
            return None
        self.panel_pid = None
        return os.waitstatus_to_exitcode(wait_status)

    # -- the loop ---------------------------------------------------------------------------

    def _supervise(self) -> int:
        # Look first, then sleep: a SIGCHLD taken while the first indexer started is not
        # waited for again.
        while True:
            status = self._panel_status()
            if status is not None:
                if status == 0:
                    return 0
                self.warn(f"the panel (gunicorn) {describe_exit(status)}; stopping the indexer")
                return status if 0 < status < 256 else 1
            self._watch_indexer()
            self._watch_ingest()
            self._take_signals(self._timeout())
            if self.stopping is not None:
                return 0

    def _timeout(self) -> float:
        # A SIGCHLD or a stop signal wakes the loop; this bounds the sleep otherwise (a
        # pending restart, or a look at another indexer's lock).
        starts = [k.next_start for k in self._kept() if k.next_start is not None]
        if not starts:
            return 60.0
        return max(0.0, min(starts) - time.monotonic())

    def _kept(self) -> list[Kept]:
        return [self.indexer] + ([self.ingest] if self.ingest is not None else [])

    def _take_signals(self, timeout: float | None) -> None:
        for signum in self._wakeup.wait(timeout):
            if signum in STOP_SIGNALS and self.stopping is None:
                self.stopping = signum
                self.echo(f"stopping on {signal.Signals(signum).name}")

    # -- stopping ---------------------------------------------------------------------------

    def _stop_children(self) -> None:
        """Stop the panel (gracefully) and the children (cleanly) together, then reap them."""
        if self.panel_pid is not None:
            send_signal(self.panel_pid, signal.SIGTERM)
        children = [k.child for k in self._kept() if k.child is not None]
        for kept in self._kept():
            kept.child = None
        for child in children:
            child.terminate()
        for child in children:
            status = child.stop()
            if status != 0:
                self.warn(
                    f"the {child.what} (pid {child.pid}) {describe_exit(status)} when stopped"
                )
            elif isinstance(child, IndexerChild):
                self.echo(f"stopped the indexer (pid {child.pid}); what it read is committed")
            else:
                self.echo(f"stopped the {child.what} (pid {child.pid})")
        deadline = time.monotonic() + self.panel_stop_timeout
        while self._panel_status() is None and self.panel_pid is not None:
            if time.monotonic() >= deadline:
                self.warn(f"the panel did not stop within {self.panel_stop_timeout:.0f} s")
                send_signal(self.panel_pid, signal.SIGKILL)
                deadline = float("inf")
            self._take_signals(0.1)

    # -- serve.json -------------------------------------------------------------------------

    def _write_state(self) -> None:
        if self.other_pid is not None:
            return  # serve.json is the supervising serve's; this one supervises nothing now
        kept = self.indexer
        child = kept.child
        state = SupervisorState(
            pid=os.getpid(),
            indexer_pid=child.pid if child else None,
            indexer_running=child is not None,
            indexer_restarts=kept.restarts,
            indexer_down_since=None
            if child or kept.outage_since is None
            else kept.outage_since.isoformat(),
            updated_at=datetime.now(UTC).isoformat(),
        )
        try:
            write_supervisor_state(self.data_dir, state)
        except OSError as error:
            self.warn(f"cannot write {self.state_file}: {error}")

    def _forget_state(self) -> None:
        """Remove serve.json if this serve wrote it: no serve supervises the indexer now."""
        state = read_supervisor_state(self.data_dir)
        if state is None or state["pid"] != os.getpid():
            return
        try:
            self.state_file.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            self.warn(f"cannot remove {self.state_file}: {error}")
