"""The background sealer: while the indexer follows, no line stays unsealed for long.

Writers seal on their own before a rotation and before an append once the oldest unsealed
line is older than ``TREK_SEAL_INTERVAL``; an app that then writes nothing more would leave
its last lines unsealed for ever. So ``trek-audit index`` (and with it the indexer child of
``serve``) runs a ``Sealer``: a thread with a writer of its own that sleeps until the oldest
unsealed line falls due (``AuditWriter.seal_due_at``, read from the state page without a
lock) and then calls ``seal()``, so that no line stays unsealed longer than the interval
plus a second. While nothing is unsealed it sleeps a whole interval; without a sealing key
it only looks, once an interval, whether ``seal init`` has made one.

A sealer never stops the indexer: an error (no permission on ``logs/``, a full disk) is
logged once per kind and tried again after a pause that doubles up to ``MAX_BACKOFF``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from trek_audit.settings import Settings
from trek_audit.writer import AuditWriteError, AuditWriter, Event

__all__ = ["FIRST_BACKOFF", "MAX_BACKOFF", "Sealer"]

log = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# After a turn that found a line due but had nothing to seal (another writer sealed it just
# then), the state page is looked at again after this long rather than at once: a state page
# that kept saying "due" could otherwise make the loop spin.
_AFTER_NOTHING = 1.0


class Sealer:
    """Seal the log directory whenever its oldest unsealed line falls due, in a thread.

    Use it as a context manager (``with Sealer.from_settings(settings): ...``) or with
    ``start()``/``stop()``; ``seal_if_due()`` does one turn in the caller's thread.
    ``open_writer`` makes the writer (on first need, and again after it failed);
    ``key_file`` is where that writer looks for the sealing key.
    """

    def __init__(
        self, open_writer: Callable[[], AuditWriter], key_file: Path, interval: float
    ) -> None:
        self.open_writer = open_writer
        self.key_file = key_file
        self.interval = interval
        self.seals = 0  # written by this sealer
        self.stop_event = threading.Event()
        self._writer: AuditWriter | None = None
        self._thread: threading.Thread | None = None
        self._reported: set[tuple[str, int | None]] = set()  # kinds of error logged already

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        """A sealer for the settings' log directory, key file and interval."""
        return cls(
            lambda: AuditWriter.from_settings(settings),
            settings.seal_key_path,
            float(settings.seal_interval),
        )

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> Sealer:
        if self._thread is not None:
            raise RuntimeError("this sealer is already running")
        self.stop_event.clear()
        self._thread = threading.Thread(target=self._run, name="trek-sealer")
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread (a seal being written is finished first) and close the writer."""
        self.stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("%s thread did not stop within %s s", thread.name, timeout)
                return  # it still uses the writer
        self._close_writer()

    def __enter__(self) -> Sealer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the work --------------------------------------------------------------------------

    def seal_if_due(self) -> Event | None:
        """Write a seal if the oldest unsealed line is due; the seal, or None.

        Errors are logged (once per kind) and give None: sealing never stops indexing.
        """
        try:
            writer = self._usable_writer()
            if writer is None:
                return None
            due = writer.seal_due_at()
            if due is None or due > time.time():
                return None
            return self._seal(writer)
        except Exception as error:  # whatever it is, the indexer goes on
            self._report(error)
            return None

    def _run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            try:
                pause = self._turn()
            except Exception as error:  # whatever it is, the indexer goes on
                self._report(error)
                self._close_writer()  # a new one, on the next turn, starts afresh
                pause = min(MAX_BACKOFF, FIRST_BACKOFF * 2**failures)
                failures += 1
            else:
                if failures:
                    log.info("sealing works again")
                    self._reported.clear()
                failures = 0
            self.stop_event.wait(pause)

    def _turn(self) -> float:
        """Seal if due; return how long to sleep before the next look."""
        writer = self._usable_writer()
        if writer is None:
            return self.interval
        due = writer.seal_due_at()
        if due is None:  # nothing unsealed, or the key cannot be used
            return self.interval
        delay = due - time.time()
        if delay > 0:
            return min(delay, self.interval)
        return 0.0 if self._seal(writer) is not None else min(_AFTER_NOTHING, self.interval)

    def _seal(self, writer: AuditWriter) -> Event | None:
        sealed = writer.seal()
        if sealed is not None:
            self.seals += 1
            log.debug("sealed the log up to seq %d", sealed["seq"] - 1)
        return sealed

    def _usable_writer(self) -> AuditWriter | None:
        """The writer, made on first need; None while there is no key file at all."""
        if not self.key_file.exists():
            # No key: nothing to do, and no writer (it would make files in logs/).
            self._close_writer()
            return None
        if self._writer is None:
            self._writer = self.open_writer()
        return self._writer

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _report(self, error: Exception) -> None:
        """Log an error the first time its kind (type and errno) is seen; debug afterwards."""
        cause = error.cause if isinstance(error, AuditWriteError) else error
        kind = (type(error).__name__, getattr(cause, "errno", None))
        if kind in self._reported:
            log.debug("sealing failed again: %s", error)
            return
        self._reported.add(kind)
        log.warning(
            "cannot seal the log (%s); trying again, indexing goes on: %s",
            type(error).__name__,
            error,
        )
