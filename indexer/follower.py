"""The indexer as background work: follow every source's log directory until stopped.

The sources are ``<data>/logs`` ("local") and each directory of ``<data>/sources/``
(``trek_audit.store.log_files.list_sources``), found again at every pass: a source that
appears while the indexer follows is read from its next pass on, and watched from then.

A periodic rescan (every ``rescan_interval`` seconds) is the source of truth. watchdog
events only wake the loop early, for low latency: inotify merges and drops events, and
an exception in a handler would kill the observer's thread, so the handler only sets an
Event and a dead observer is replaced at the next turn of the loop.

Only events that change a log file wake it (``WAKING_EVENTS``). A pass opens and reads
every log file, and inotify reports opens and closes-without-write too: woken by those,
each pass would wake the next (measured: about 270 passes a second on an idle directory, a
whole core), so they are not even asked of the kernel (watchdog's ``event_filter``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from trek_audit.layout import LOCAL_SOURCE, LOG_FILE_NAME, DataDir
from trek_audit.settings import Settings
from trek_audit.store.log_files import Source, list_sources
from trek_audit.store.schema import WAL_SIZE_LIMIT, connect, open_database

from .ledger import Ledger
from .lock import IndexerLock
from .retention import DEFAULT_GRACE, Retention
from .scanner import Scanner, ScanReport

__all__ = ["WAKING_EVENTS", "Indexer"]

log = logging.getLogger(__name__)

# What changes a log file: a write, a close after writing, a rotation's renames, a new or
# deleted file. Not opens, reads or closes without a write: the indexer's own reads make
# those, and so does any log shipper.
WAKING_EVENTS: tuple[type[FileSystemEvent], ...] = (
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
)


# How long a TRUNCATE checkpoint waits for readers of old snapshots (new commits wait too).
TRUNCATE_WAIT = 2.0


def _identity(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of the file at ``path``, None when there is none."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


# After a file event, wait this long before the pass, so that a burst of writes is read in
# one pass rather than one pass per write: at 1,000 events a second it halves the indexer's
# CPU (68% to 35% of a core, benchmarks/indexer.py) for at most 10 ms more latency.
WAKE_DELAY = 0.01


class _WakeOnLogChange(FileSystemEventHandler):
    """Set ``wake`` when a file named trek.log* changes; never raise into watchdog."""

    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            # The observer is asked for WAKING_EVENTS alone; checked here too, so that no
            # observer which ignores the filter can bring the busy loop back.
            if isinstance(event, WAKING_EVENTS) and self.concerns_log(event):
                self.wake.set()
        except Exception:  # a hint is never worth a dead observer
            log.exception("ignoring a file-system event the indexer could not read")
            self.wake.set()

    @staticmethod
    def concerns_log(event: FileSystemEvent) -> bool:
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and os.path.basename(os.fsdecode(path)).startswith(LOG_FILE_NAME):
                return True
        return False


class Indexer:
    """Index ``<data>/logs/trek.log*`` and every source's into ``<data>/audit.db``, exactly once.

    Use ``run_once()`` to index what is there and return, or run it in the background as a
    context manager (``with Indexer(data_dir) as ix: ...``) or with ``start()``/``stop()``.
    Only one indexer works on a data directory at a time: opening a second raises
    IndexerBusy, or with ``wait`` waits (True: as long as it takes, a number: seconds).
    Lines longer than ``max_line_bytes`` (newline included) are rejected; None means the
    default of ``TREK_LOG_MAX_LINE_BYTES``, and ``from_settings`` takes the configured one,
    the limit the writer was given too. A shipped source's trek.log is rotated past
    ``log_max_bytes`` keeping ``log_backups`` (None: the defaults; ``from_settings``: the
    configured ones), and a rotated file beyond them removed once indexed and untouched for
    ``source_grace`` seconds (see ``retention``).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        rescan_interval: float = 1.0,
        watch: bool = True,
        wait: bool | float = False,
        max_line_bytes: int | None = None,
        batch_size: int = 10_000,
        fragment_grace: float = 2.0,
        on_progress: Callable[[int], None] | None = None,
        log_max_bytes: int | None = None,
        log_backups: int | None = None,
        source_grace: float = DEFAULT_GRACE,
    ) -> None:
        self.data_dir = Path(data_dir)
        data = self.data = DataDir(self.data_dir)
        self.log_dir = data.log_dir
        self.db_path = data.audit_db
        self.rescan_interval = rescan_interval
        self.watch = watch
        self.wait = wait
        self.max_line_bytes = (
            Settings().max_line_bytes if max_line_bytes is None else max_line_bytes
        )
        defaults = Settings()
        self.retention = Retention(
            defaults.log_max_bytes if log_max_bytes is None else log_max_bytes,
            defaults.log_backups if log_backups is None else log_backups,
            source_grace,
        )
        self.batch_size = batch_size
        self.fragment_grace = fragment_grace
        self.on_progress = on_progress
        self.stop_event = threading.Event()
        self.last_report: ScanReport | None = None
        self.scans = 0
        self.observer_restarts = 0
        self._wake = threading.Event()
        self._lock = IndexerLock(self.data_dir)
        self._scan_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._ledger: Ledger | None = None
        self._scanners: dict[str, Scanner] = {}
        self._sources: list[Source] = []  # found by the last pass
        self._skipped: set[str] = set()  # entries of sources/ warned about
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._db_identity: tuple[int, int] | None = None  # audit.db's (device, inode) when opened
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._watches: dict[Path, ObservedWatch] = {}  # each watched log directory

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Indexer:
        """An indexer for the settings' data directory and line limit.

        ``options`` are the other keywords of ``Indexer`` (``wait``, ``rescan_interval``...).
        """
        return cls(
            settings.data_dir,
            max_line_bytes=settings.max_line_bytes,
            log_max_bytes=settings.log_max_bytes,
            log_backups=settings.log_backups,
            **options,
        )

    # -- life cycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Take the directory's lock and open the database (run_once and start do this)."""
        if self._ledger is not None:
            return
        self._lock.acquire(wait=self.wait, stop=self.stop_event)
        try:
            conn = open_database(self.db_path)
            conn.isolation_level = None  # transactions are explicit: see Ledger.commit
            self._conn = conn
            self._db_identity = _identity(self.db_path)
            self._ledger = Ledger(conn)
            self._scanners = {}
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database and release the lock. Every batch is already committed."""
        self._ledger = None
        self._scanners = {}
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._lock.release()

    def run_once(self) -> ScanReport:
        """Index everything complete in every source's log files now; return what was done.

        The report is the sum over the sources, each source's own in ``report.sources``.
        """
        opened_here = self._ledger is None
        self.open()
        try:
            with self._scan_lock:
                report = ScanReport()
                for source in self._find_sources():
                    if self.stop_event.is_set():
                        break
                    report.add(self._scanner(source).scan())
            self.scans += 1
            self.last_report = report
            return report
        finally:
            if opened_here and self._thread is None:
                self.close()

    def _find_sources(self) -> list[Source]:
        listing = list_sources(self.data)
        for entry in listing.skipped:
            if entry not in self._skipped:
                log.warning("not a source, skipped: %s", entry)
        self._skipped = set(listing.skipped)
        self._sources = listing.sources
        found = {source.name for source in listing.sources}
        for name in [name for name in self._scanners if name not in found]:
            del self._scanners[name]  # gone; a new directory of that name starts afresh
        return listing.sources

    def _scanner(self, source: Source) -> Scanner:
        scanner = self._scanners.get(source.name)
        if scanner is None:
            assert self._ledger is not None
            scanner = self._scanners[source.name] = Scanner(
                self._ledger,
                source.log_dir,
                source=source.name,
                max_line=self.max_line_bytes,
                batch_size=self.batch_size,
                fragment_grace=self.fragment_grace,
                stop=self.stop_event,
                on_progress=self.on_progress,
                # The writer rotates logs/; the indexer rotates only what a shipper writes
                # (keep_bounded also leaves alone any source a trek-audit writer keeps).
                retention=None if source.name == LOCAL_SOURCE else self.retention,
            )
        return scanner

    def start(self) -> Indexer:
        """Start following in a background thread."""
        if self._thread is not None:
            raise RuntimeError("this indexer is already running")
        self.stop_event.clear()
        self.open()
        assert self._conn is not None
        # Checkpoints (which fsync) run in their own thread, so a slow disk never holds up
        # the commit that makes a new event visible.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = threading.Thread(target=self._checkpoint, name="trek-checkpoint")
        self._checkpointer.start()
        self._thread = threading.Thread(target=self._follow, name="trek-indexer")
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop following: finish the batch in hand, commit it, release the lock."""
        self.stop_event.set()
        self._wake.set()
        threads = (self._thread, self._checkpointer)
        self._thread = self._checkpointer = None
        for thread in threads:
            if thread is not None:
                thread.join(timeout)
                if thread.is_alive():
                    log.error("%s thread did not stop within %s s", thread.name, timeout)
        self._stop_observer()
        self.close()

    def wake(self) -> None:
        """Ask for a scan now rather than at the next rescan."""
        self._wake.set()

    def __enter__(self) -> Indexer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the loop --------------------------------------------------------------------------

    def _follow(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            if self.watch:
                self._ensure_observer()
            self._wake.clear()
            try:
                self._reopen_if_replaced()
                self.run_once()
            except Exception:
                failures += 1
                pause = min(30.0, self.rescan_interval * 2 ** min(failures, 5))
                log.exception("indexing pass failed; retrying in %.1f s", pause)
                self.stop_event.wait(pause)
                continue
            failures = 0
            if self._wake.wait(self.rescan_interval):
                self.stop_event.wait(WAKE_DELAY)

    def _reopen_if_replaced(self) -> None:
        """Start a new audit.db when the file at its path is no longer the one open here.

        Deleted (or moved away, or replaced) under the running indexer, the open file would
        take every later row out of sight. The new database is built from the log files
        still there, with a gap for the events rotated away since.
        """
        if _identity(self.db_path) == self._db_identity:
            return
        log.warning(
            "%s is no longer the database this indexer has open (deleted, moved or replaced): "
            "starting a new one from the log files still there",
            self.db_path,
        )
        # Every connection to the old file closes before the new one is made: the last to
        # close removes the -wal by its name, which by then could be the new file's.
        with self._scan_lock, self._checkpoint_lock:
            self._close_checkpoint_connection()
            self._ledger = None
            self._scanners = {}
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            self._db_identity = None
            self.open()

    def _checkpoint(self, interval: float = 1.0) -> None:
        """Copy the WAL into the database now and then, on a connection of its own.

        A PASSIVE checkpoint never waits, but stops at the oldest snapshot a reader (the
        panel) holds, and the WAL only starts over once one completes: with reads all along
        it would grow without end (221 MB after 50,000 events, measured). So once the WAL
        passes WAL_SIZE_LIMIT, and whenever the indexer has committed nothing for a whole
        interval, a TRUNCATE checkpoint waits (at most TRUNCATE_WAIT) for the readers of old
        snapshots to finish their statement, then empties the file.
        """
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        commits = -1
        try:
            while not self.stop_event.wait(interval):
                now = self._commits()
                idle, commits = now == commits, now
                if not idle and _size(wal) <= WAL_SIZE_LIMIT:
                    self._run_checkpoint("PASSIVE")
                elif _size(wal) > 0:
                    self._run_checkpoint("TRUNCATE")
            self._run_checkpoint("TRUNCATE")
        finally:
            with self._checkpoint_lock:
                self._close_checkpoint_connection()

    def _run_checkpoint(self, mode: str) -> None:
        with self._checkpoint_lock:
            try:
                if self._checkpoint_conn is None:
                    conn = connect(self.db_path)
                    conn.execute(f"PRAGMA busy_timeout={int(TRUNCATE_WAIT * 1000)}")
                    self._checkpoint_conn = conn
                self._checkpoint_conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            except sqlite3.Error as error:
                log.warning("checkpoint of %s failed, will retry: %s", self.db_path, error)

    def _close_checkpoint_connection(self) -> None:
        conn, self._checkpoint_conn = self._checkpoint_conn, None
        if conn is not None:
            conn.close()

    def _commits(self) -> int:
        """How many batches this indexer has committed (read without touching its connection)."""
        ledger = self._ledger
        return -1 if ledger is None else ledger.commits

    def _ensure_observer(self) -> None:
        observer = self._observer
        if observer is not None and observer.is_alive():
            self._watch_sources(observer)
            return
        replacing = observer is not None
        if observer is not None:
            log.warning("file watcher stopped; starting a new one")
            self._stop_observer(observer)
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            observer = Observer()
            self._watches = {}
            self._watches[self.log_dir] = self._schedule(observer, self.log_dir)
            observer.daemon = True
            observer.start()
        except Exception:
            log.exception("cannot watch %s; relying on the rescan alone", self.log_dir)
            return
        self._observer = observer
        if replacing:
            self.observer_restarts += 1
        self._watch_sources(observer)

    def _schedule(self, observer: Observer, path: Path) -> ObservedWatch:  # type: ignore[valid-type]
        return observer.schedule(  # type: ignore[attr-defined,no-any-return]
            _WakeOnLogChange(self._wake),
            str(path),
            recursive=False,
            event_filter=list(WAKING_EVENTS),
        )

    def _watch_sources(self, observer: Observer) -> None:  # type: ignore[valid-type]
        """Watch each source found by the last pass, and no longer those gone.

        One watch per source directory, never recursive: a link in sources/ is no source
        (list_sources skips it), and a recursive watch might follow it.
        """
        wanted = {source.log_dir for source in self._sources if source.name != LOCAL_SOURCE}
        for path in [path for path in self._watches if path != self.log_dir]:
            if path not in wanted:
                watch = self._watches.pop(path)
                try:
                    observer.unschedule(watch)  # type: ignore[attr-defined]
                except Exception:  # already gone with its directory
                    log.debug("watch of %s already gone", path)
        for path in sorted(wanted - set(self._watches)):
            try:
                self._watches[path] = self._schedule(observer, path)
            except Exception:  # removed since, or not readable: the rescan still reads it
                log.warning("cannot watch %s; relying on the rescan for it", path, exc_info=True)

    def _stop_observer(self, observer: Observer | None = None) -> None:  # type: ignore[valid-type]
        if observer is None:
            observer, self._observer = self._observer, None
        if observer is None:
            return
        try:
            observer.stop()
            observer.join(5.0)
        except Exception:
            log.exception("ignoring an error while stopping the file watcher")
