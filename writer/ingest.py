"""``trek-audit ingest``: the ``record --stdin`` protocol on a Unix socket, for apps without Python.

An app in another container that shares the data volume connects to ``<data>/ingest.sock``
and speaks the request protocol (``protocol.py``): one JSON request per line, one answer per
line, in order. Several connections are served at once, a thread each; the writer is
thread-safe, so the line format, ``seq``, rotation and locking stay the writer's.

The socket file:

* is created mode 0660 (``INGEST_SOCKET_MODE``): whoever can connect can record events. It is
  bound under a private name and umask 0177, given its mode (and the writer's log group, when
  it has one, so that the app's user in that group may connect), and listens, before it is
  linked at its path; until ``listen`` no connection is possible, and the path never names a
  socket with a wider mode or another group;
* replaces a stale socket (one nobody answers on, left by a killed server), refuses a live one
  (``SocketPathError``), and never removes anything that is not a socket. Placing and removing
  it happen under an ``flock`` of its directory, so two servers starting at once cannot remove
  each other's socket;
* is removed when the server stops, only if it is still the one this server made.

A client cannot stop the server or hold up the others: a request line is bounded (an overlong
one is skipped to its newline without being kept, and answered invalid), connections are
bounded (``max_connections``; when all are taken, the one that has not completed a request for
the longest is closed to make room, if it has been quiet for ``idle_grace`` seconds, else the
new one is), and each connection waits on its own thread. Nothing polls: the accepting thread
sleeps in ``select``, the connections in ``recv``.

Stopping (``stop``, SIGTERM or SIGINT under ``serve_until_signalled``): no new connection is
accepted, the socket file is removed, and each connection answers the requests it has read,
then closes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import select
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Final, NamedTuple

from trek_audit.layout import INGEST_SOCKET_MODE

from .appender import AuditWriter
from .log_group import LogGroup
from .protocol import CHUNK_BYTES, Conversation

__all__ = [
    "MAX_CONNECTIONS",
    "STOP_SIGNALS",
    "IngestServer",
    "SocketPathError",
    "check_socket_path",
    "serve_until_signalled",
]

MAX_CONNECTIONS: Final = 64
# A connection that completed a request within this many seconds is never closed to make
# room for a new one: a busy client keeps its connection.
IDLE_GRACE_SECONDS: Final = 5.0
# How long stop() lets connections send their last answers to clients that do not read.
STOP_TIMEOUT_SECONDS: Final = 10.0
STOP_SIGNALS: Final = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
_BACKLOG: Final = 128
# The longest path a Unix socket can have (sun_path, less its terminating NUL).
_PATH_MAX: Final = 107
_PROBE_TIMEOUT: Final = 1.0

Warn = Callable[[str], None]


class SocketPathError(Exception):
    """The socket cannot be created at this path (in use, not a socket, too long...)."""


class _Identity(NamedTuple):
    """The file a socket path names (device and inode), to remove only one's own."""

    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> _Identity | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        return cls(st.st_dev, st.st_ino)


def check_socket_path(path: Path) -> None:
    """Raise SocketPathError unless a server may take ``path`` (absent, or a stale socket)."""
    if len(os.fsencode(path)) > _PATH_MAX:
        raise SocketPathError(
            f"the socket path {path} is longer than {_PATH_MAX} bytes, the most a Unix socket "
            "path may have; choose a shorter one (--socket or TREK_INGEST_SOCKET)"
        )
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketPathError(
            f"{path} exists and is not a socket; it was left alone: remove or rename it, or "
            "choose another path (--socket or TREK_INGEST_SOCKET)"
        )
    if _answers(path):
        raise SocketPathError(
            f"another ingest server is listening on {path}; stop it first, or choose another "
            "path (--socket or TREK_INGEST_SOCKET)"
        )


def _answers(path: Path) -> bool:
    """Whether something listens on the socket at ``path`` (a stale one refuses connections)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        probe.settimeout(_PROBE_TIMEOUT)
        try:
            probe.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except TimeoutError:
            return True  # its backlog is full: a live but busy server
        except OSError as error:
            raise SocketPathError(f"cannot tell whether {path} is in use: {error}") from None
    return True


@contextlib.contextmanager
def _directory_locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``directory`` (only ingest servers take it)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _private_name(final: Path) -> Path:
    # As long as the final name (at least 8 characters), so a path that fits fits here too.
    length = max(8, len(final.name))
    return final.with_name("." + secrets.token_hex(length)[: length - 1])


def _bind(path: Path, group: LogGroup | None) -> tuple[socket.socket, _Identity]:
    """A listening socket at ``path``, mode 0660 (in ``group``, if any) from the start; see
    the module's docstring."""
    check_socket_path(path)
    temporary = _private_name(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        # The umask is the process's: it is narrowed only for the bind, which creates the file.
        previous = os.umask(0o177)
        try:
            sock.bind(os.fspath(temporary))
        finally:
            os.umask(previous)
        try:
            os.chmod(temporary, INGEST_SOCKET_MODE)
            if group is not None:
                _give_group(temporary, path, group)
            identity = _Identity.of(temporary)
            assert identity is not None
            sock.listen(_BACKLOG)
            with _directory_locked(path.parent):
                _link_in_place(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock, identity


def _give_group(temporary: Path, path: Path, group: LogGroup) -> None:
    try:
        os.chown(temporary, -1, group.gid, follow_symlinks=False)
    except OSError as error:
        raise SocketPathError(
            f"cannot give the socket {path} the log group {group}: {error.strerror}; the "
            "writer's user must be a member of the group"
        ) from None


def _link_in_place(temporary: Path, path: Path) -> None:
    """Give the socket its path: a link never replaces anything; a stale socket goes first."""
    try:
        os.link(temporary, path)
        return
    except FileExistsError:
        pass
    check_socket_path(path)  # refuses anything but a stale socket, or nothing at all
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    try:
        os.link(temporary, path)
    except FileExistsError:
        # Another program put something there meanwhile, outside the lock: leave it be.
        raise SocketPathError(f"{path} appeared while the socket was being created") from None


class _Connection:
    """One client's connection: its socket, its thread, and when it last completed a request."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last_request = time.monotonic()
        self.closing = False  # stopped or closed to make room: a partial last line is dropped
        self._lock = threading.Lock()
        self._closed = False
        self.thread: threading.Thread | None = None

    def shut(self, how: int) -> None:
        """Shut reading (``SHUT_RD``: it answers what it read, then ends) or both ways."""
        with self._lock:
            self.closing = True
            if not self._closed:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(how)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.sock.close()


class IngestServer:
    """The request protocol on a Unix socket at ``path``; a context manager (start/stop).

    ``writer`` records the events (the server does not close it). ``max_request_bytes``
    bounds a request line (``protocol.max_request_bytes``). ``warn`` reports what an operator
    should know (connections refused, a socket file that could not be removed).
    """

    def __init__(
        self,
        writer: AuditWriter,
        path: Path,
        *,
        max_request_bytes: int,
        max_connections: int = MAX_CONNECTIONS,
        idle_grace: float = IDLE_GRACE_SECONDS,
        warn: Warn | None = None,
    ) -> None:
        self.writer = writer
        self.path = Path(os.path.abspath(path))
        self.max_request_bytes = max_request_bytes
        self.max_connections = max_connections
        self.idle_grace = idle_grace
        self.warn = warn or _warn_on_stderr
        self.stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._identity: _Identity | None = None
        self._wake: tuple[int, int] | None = None
        self._accepting: threading.Thread | None = None
        self._connections: dict[int, _Connection] = {}
        self._lock = threading.Lock()
        self._refusing = False  # connections are being refused (said once per episode)

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the socket and accept connections on a thread; SocketPathError if it cannot."""
        self._listener, self._identity = _bind(self.path, self.writer.log_group)
        self._wake = os.pipe2(os.O_CLOEXEC)
        self._accepting = threading.Thread(target=self._accept, name="ingest-accept", daemon=True)
        self._accepting.start()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop accepting, remove the socket file, let each connection answer what it read."""
        if self.stopping.is_set() or self._wake is None:
            return
        self.stopping.set()
        os.write(self._wake[1], b"x")
        if self._accepting is not None:
            self._accepting.join()
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.shut(socket.SHUT_RD)
        deadline = time.monotonic() + timeout
        for connection in connections:
            if connection.thread is None:
                continue
            connection.thread.join(max(0.0, deadline - time.monotonic()))
            if connection.thread.is_alive():  # its client does not read its answers
                connection.shut(socket.SHUT_RDWR)
                connection.thread.join()
        for fd in self._wake:
            os.close(fd)
        self._wake = None

    def __enter__(self) -> IngestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        with self._lock:
            return len(self._connections)

    # -- accepting ----------------------------------------------------------------------------

    def _accept(self) -> None:
        listener, wake = self._listener, self._wake
        assert listener is not None and wake is not None
        try:
            while True:
                ready, _, _ = select.select([listener.fileno(), wake[0]], [], [])
                if wake[0] in ready:
                    return
                try:
                    sock, _ = listener.accept()
                except (BlockingIOError, ConnectionAbortedError):
                    continue  # the client gave up before it was accepted
                except OSError as error:
                    if error.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS):
                        raise
                    # Out of descriptors: wait instead of spinning on a listener still ready.
                    self.warn(f"cannot accept a connection on {self.path}: {error}")
                    if self.stopping.wait(1.0):
                        return
                    continue
                self._admit(sock)
        finally:
            self._remove_socket_file()
            listener.close()

    def _admit(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        connection = _Connection(sock)
        with self._lock:
            if len(self._connections) >= self.max_connections and not self._make_room():
                if not self._refusing:
                    self._refusing = True
                    self.warn(
                        f"{self.max_connections} connections, all busy, on {self.path}: "
                        "refusing new connections until one ends"
                    )
                sock.close()
                return
            self._refusing = False
            self._connections[id(connection)] = connection
        connection.thread = threading.Thread(
            target=self._converse, args=(connection,), name="ingest-connection", daemon=True
        )
        connection.thread.start()

    def _make_room(self) -> bool:
        """Close the connection quiet the longest, if it has been quiet long enough."""
        quietest = min(self._connections.values(), key=lambda c: c.last_request)
        if time.monotonic() - quietest.last_request < self.idle_grace:
            return False
        del self._connections[id(quietest)]
        quietest.shut(socket.SHUT_RDWR)
        return True

    def _remove_socket_file(self) -> None:
        """Remove the socket file if it is still the one this server made."""
        try:
            with _directory_locked(self.path.parent):
                if _Identity.of(self.path) == self._identity:
                    os.unlink(self.path)
        except OSError as error:
            self.warn(f"cannot remove {self.path}: {error}")

    # -- one connection -----------------------------------------------------------------------

    def _converse(self, connection: _Connection) -> None:
        sock = connection.sock
        conversation = Conversation(self.writer, self.max_request_bytes)
        try:
            while chunk := sock.recv(CHUNK_BYTES):
                answers = conversation.answer(chunk)
                if answers:
                    connection.last_request = time.monotonic()
                    sock.sendall(answers)
            if not connection.closing:  # the client ended its input: its last line counts
                answers = conversation.finish()
                if answers:
                    sock.sendall(answers)
        except OSError:
            pass  # the client went away, or was closed to make room: nothing to answer
        finally:
            with self._lock:
                self._connections.pop(id(connection), None)
            connection.close()


def serve_until_signalled(
    server: IngestServer, on_start: Callable[[IngestServer], None] | None = None
) -> int:
    """Run ``server`` until SIGTERM, SIGINT or SIGHUP; the signal that stopped it.

    ``on_start`` is called once the socket listens.

    The signals are blocked before the server's threads start (which inherit the mask) and
    taken with ``sigwait`` by the calling thread, which must be the main one.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with server:
            if on_start is not None:
                on_start(server)
            return signal.sigwait(STOP_SIGNALS)
    finally:
        # A second stop signal that came while stopping is taken here, not by the default
        # action once unblocked, which would end a clean stop with a kill.
        while signal.sigpending() & STOP_SIGNALS:
            signal.sigwait(STOP_SIGNALS)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _warn_on_stderr(message: str) -> None:
    print(f"trek-audit ingest: {message}", file=sys.stderr, flush=True)
