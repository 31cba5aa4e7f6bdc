"""The soak's writing processes: each records hostile events at a steady pace and keeps what
was acknowledged, for ``soak.py`` to compare with audit.db at the end.

Run as ``python benchmarks/soak_writers.py ROLE NAME OUT RATE``, with the soak's settings in the
environment. SIGTERM ends a role: it writes ``OUT/acks-NAME.jsonl`` (one ``[id, seq]`` per
acknowledged event) and ``OUT/summary-NAME.json`` (a ``WriterSummary``), then exits 0.

Roles:

* ``plain``: one ``AuditWriter`` in this process.
* ``prefork``: a writer opened in the parent, which then forks ``PREFORK_CHILDREN`` children that
  record through the inherited writer, as a pre-fork server's workers do.
* ``stdin``: a ``trek-audit record --stdin`` co-process, one request line per event.
* ``ingest``: the ingest socket of ``serve`` (``TREK_INGEST_SOCKET``); while serve is down the
  connection fails and the role waits for it to come back (counted, never acknowledged).
* ``fsize``: a plain writer whose file-size limit (``RLIMIT_FSIZE``) drops to one byte between
  SIGUSR1 and SIGUSR2, the soak's full disk for this writer alone.
* ``garbage``: appends a malformed line now and then (``GARBAGE_KINDS``), under the writers'
  lock, so that it lands in the trek.log the writers use; SIGUSR1 pauses it, SIGUSR2 resumes.

The Node.js client's role is ``NODE_SCRIPT``, which ``soak.py`` runs with ``node``: the client's
co-process mode (``record --stdin``), with the same files at the end.

Every event carries ``details.soak = {"w": NAME, "n": k}``, so that an unacknowledged event
found in audit.db (one in flight when a connection broke) is still known to be the soak's.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

import orjson

from trek_audit.settings import Settings
from trek_audit.writer import AuditWriteError, AuditWriter
from trek_audit.writer.state import read_state

PREFORK_CHILDREN = 2
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
GARBAGE_KINDS = ("not_json", "cut_json", "invalid_utf8", "blank", "hostile_seq")
ACTIONS = ("trip.create", "trip.update", "user.login", "mcp.tool_call", "oauth.token.issue")
# Characters a line must carry safely: C0 controls, DEL, the JavaScript line breakers, quotes.
HOSTILE_TEXT = "a\x00b\x01\x1f\x7f\u2028\u2029\"'`\\ <script>alert(1)</script> \U0001f600 é"
HTML = '<img src=x onerror="alert(1)">&amp;</td></tr>'
MAX_LINE_BYTES = 8 * 1024  # TREK_LOG_MAX_LINE_BYTES of the soak
BIG = "y" * (MAX_LINE_BYTES - 1200)  # a string that makes a line near the limit


def die_with_parent(sig: int, parent: int) -> None:
    """Have the kernel send ``sig`` to this process when ``parent`` ends (Linux; after fork).

    The panel's own version lives in trek_audit.webui, whose import would bring Flask into
    every writer and into its peak memory.
    """
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os.kill(os.getpid(), sig)


class WriterSummary(TypedDict):
    """What a role reports at the end, beside its acknowledged events."""

    name: str
    role: str
    pid: int
    acked: int
    # Refusals and failures by kind: "write" (AuditWriteError), "write_in_window" (the full
    # disk), "too_long" and "invalid" (refused, nothing written), "unavailable" (no server),
    # "in_flight" (sent, the connection broke before an answer: maybe written).
    errors: dict[str, int]
    garbage: list[GarbageLine]


class GarbageLine(TypedDict):
    """One malformed line appended: its kind, bytes and where it went."""

    kind: str
    raw: str  # latin-1, so that any bytes survive JSON
    ino: int
    prev_seq: int  # the last seq used when it was appended


class Hostile:
    """Events with content that must survive the line format, the index and the panel intact."""

    def __init__(self, name: str, max_line_bytes: int, seed: int) -> None:
        self.name = name
        self.max_line_bytes = max_line_bytes
        self.random = random.Random(seed)
        self.count = 0

    def next(self) -> tuple[str, dict[str, Any], bool]:
        """The action, the ``record`` keywords, and whether the event is too long to record."""
        self.count += 1
        pick = self.random.random()
        details: dict[str, Any] = {"soak": {"w": self.name, "n": self.count}}
        too_long = False
        if pick < 0.004:
            details["big"] = "x" * self.max_line_bytes  # over the limit: refused, not written
            too_long = True
        elif pick < 0.01:
            details["big"] = BIG
        elif pick < 0.05:
            deep: dict[str, Any] = {"leaf": HOSTILE_TEXT}
            for level in range(40):
                deep = {f"l{level}": deep}
            details["deep"] = deep
        else:
            details["text"] = HOSTILE_TEXT[: self.random.randint(1, len(HOSTILE_TEXT))]
            details["html"] = HTML
        n = self.random.randint(1, 40)
        user = {"id": n, "username": f"user{n}\u2028<b>\"'", "email": f"u{n}@example.test"}
        kwargs: dict[str, Any] = {
            "user": user if pick > 0.1 else None,
            "resource": f'trip/{self.random.randint(1, 500)}"<x>\u2029',
            "ip": f"192.0.2.{n}" if n % 4 else f"2001:db8::{n:x}",
            "details": details,
        }
        return self.random.choice(ACTIONS), kwargs, too_long


class Role:
    """A writing role's loop: paced, stoppable by SIGTERM, keeping its acknowledgements."""

    def __init__(self, role: str, name: str, out: Path, rate: float) -> None:
        self.role, self.name, self.out, self.rate = role, name, out, rate
        self.settings = Settings.from_env()
        self.stop = threading.Event()
        self.acks: list[tuple[str, int]] = []
        self.errors: Counter[str] = Counter()
        self.garbage: list[GarbageLine] = []
        self.hostile = Hostile(name, self.settings.max_line_bytes, zlib.crc32(name.encode()))
        signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()

    def paced(self) -> Any:
        """Yield once per event at ``rate`` per second until stopped."""
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            yield
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            elif delay < -1.0:
                next_at = time.monotonic()  # fell behind (a busy machine): do not burst

    def finish(self) -> None:
        acks = self.out / f"acks-{self.name}.jsonl"
        acks.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in self.acks))
        summary = WriterSummary(
            name=self.name,
            role=self.role,
            pid=os.getpid(),
            acked=len(self.acks),
            errors=dict(self.errors),
            garbage=self.garbage,
        )
        (self.out / f"summary-{self.name}.json").write_text(json.dumps(summary))


def run_writer(role: Role, writer: AuditWriter, window: threading.Event | None = None) -> None:
    """Record events through ``writer``; during ``window`` an AuditWriteError is expected."""
    for _ in role.paced():
        action, kwargs, too_long = role.hostile.next()
        try:
            event = writer.record(action, **kwargs)
        except ValueError:
            role.errors["too_long" if too_long else "invalid"] += 1
            continue
        except AuditWriteError:
            in_window = window is not None and window.is_set()
            role.errors["write_in_window" if in_window else "write"] += 1
            continue
        role.acks.append((event["id"], event["seq"]))
        if too_long:
            role.errors["too_long_accepted"] += 1


def plain(role: Role) -> None:
    with AuditWriter.from_settings(role.settings) as writer:
        run_writer(role, writer)
    role.finish()


def fsize(role: Role) -> None:
    """A writer whose file-size limit drops to 1 byte between SIGUSR1 and SIGUSR2.

    The limit is this process's alone, so the other writers of the directory go on; the
    soft limit goes back up to the hard one afterwards (an unprivileged process may).
    """
    window = threading.Event()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def begin(signum: int, frame: FrameType | None) -> None:
        window.set()
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))

    def end(signum: int, frame: FrameType | None) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        window.clear()

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, begin)
    signal.signal(signal.SIGUSR2, end)
    with AuditWriter.from_settings(role.settings) as writer:
        run_writer(role, writer, window)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    role.finish()


def prefork(role: Role) -> None:
    """A pre-fork parent: the writer is opened (and used) before the children are forked."""
    writer = AuditWriter.from_settings(role.settings)
    action, kwargs, _ = role.hostile.next()
    event = writer.record(action, **kwargs)
    role.acks.append((event["id"], event["seq"]))
    children, parent = [], os.getpid()
    for number in range(1, PREFORK_CHILDREN + 1):
        pid = os.fork()
        if pid == 0:
            die_with_parent(signal.SIGTERM, parent)
            child = Role(role.role, f"{role.name}-c{number}", role.out, role.rate)
            child.hostile = Hostile(child.name, role.settings.max_line_bytes, number)
            try:
                run_writer(child, writer)
                child.finish()
            finally:
                os._exit(0)
        children.append(pid)
    run_writer(role, writer)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in children:
        os.waitpid(pid, 0)
    writer.close()
    role.finish()


def _request(action: str, kwargs: dict[str, Any]) -> bytes:
    return orjson.dumps({"action": action, **kwargs}) + b"\n"


def _answer(role: Role, answer: bytes, too_long: bool) -> None:
    reply = orjson.loads(answer)
    if "error" in reply:
        kind = reply["error"]["type"]
        role.errors["too_long" if too_long and kind == "invalid" else kind] += 1
    else:
        role.acks.append((reply["id"], reply["seq"]))


def stdin(role: Role) -> None:
    """Events through a ``trek-audit record --stdin`` co-process, one at a time."""
    command = [sys.executable, "-m", "trek_audit", "record", "--stdin"]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        assert process.stdin is not None and process.stdout is not None
        for _ in role.paced():
            action, kwargs, too_long = role.hostile.next()
            process.stdin.write(_request(action, kwargs))
            process.stdin.flush()
            _answer(role, process.stdout.readline(), too_long)
        process.stdin.close()
        process.wait(30)
    role.finish()


def ingest(role: Role) -> None:
    """Events through serve's ingest socket; reconnects when serve comes back."""
    path = role.settings.ingest_socket
    connection: socket.socket | None = None
    reader: Any = None
    for _ in role.paced():
        if connection is None:
            try:
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.settimeout(30)
                connection.connect(path)
                reader = connection.makefile("rb")
            except OSError:
                role.errors["unavailable"] += 1
                _closed(connection)
                connection = None
                role.stop.wait(0.2)
                continue
        action, kwargs, too_long = role.hostile.next()
        try:
            connection.sendall(_request(action, kwargs))
            answer = reader.readline()
        except OSError:
            answer = b""
        if not answer:
            role.errors["in_flight"] += 1
            _closed(connection)
            connection = None
            continue
        _answer(role, answer, too_long)
    _closed(connection)
    role.finish()


def _closed(connection: socket.socket | None) -> None:
    if connection is not None:
        connection.close()


def garbage(role: Role) -> None:
    """Malformed lines, each appended under the writers' lock to the trek.log they use."""
    logs = role.settings.data.logs
    paused = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: paused.set())
    signal.signal(signal.SIGUSR2, lambda signum, frame: paused.clear())
    template = json.dumps(
        {"v": 1, "id": "", "seq": 0, "ts": "2026-01-01T00:00:00.000000Z", "action": "trip.create"}
        | {"user": None, "resource": None, "ip": None, "details": None}
    )
    lock_fd = -1
    for number, _ in enumerate(role.paced()):
        if paused.is_set():
            continue
        if lock_fd < 0:
            if not logs.lock_file.exists():
                continue  # no writer has made the directory yet
            lock_fd = os.open(logs.lock_file, os.O_RDWR | os.O_CLOEXEC)
        kind = GARBAGE_KINDS[number % len(GARBAGE_KINDS)]
        marker = f"soak-garbage-{role.name}-{number}"
        if kind == "not_json":
            raw = f"this is not JSON: {marker} <script>".encode()
        elif kind == "cut_json":
            raw = template.replace('"id": ""', f'"id": "{marker}"').encode()[:-17]
        elif kind == "invalid_utf8":
            raw = b'{"v": 1, "id": "' + marker.encode() + b'", "bad": "\xff\xfe\xc3"}'
        elif kind == "blank":
            raw = b""
        else:
            seq = random.choice(["-1", "0", '"7"', str(2**64), "1.5"])
            raw = (
                template.replace('"seq": 0', f'"seq": {seq}')
                .replace('"id": ""', f'"id": "{marker}"')
                .encode()
            )
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            prev_seq = read_state(lock_fd).seq
            fd = os.open(logs.log_file, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            try:
                os.write(fd, raw + b"\n")
                ino = os.fstat(fd).st_ino
            finally:
                os.close(fd)
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        role.garbage.append(
            GarbageLine(kind=kind, raw=raw.decode("latin-1"), ino=ino, prev_seq=prev_seq)
        )
    role.finish()


ROLES = {
    "plain": plain,
    "fsize": fsize,
    "prefork": prefork,
    "stdin": stdin,
    "ingest": ingest,
    "garbage": garbage,
}

# The Node client's role: the co-process mode of clients/node, acknowledgements as above.
NODE_SCRIPT = r"""
'use strict';
const fs = require('fs');
const { createAuditClient } = require(process.argv[2]);
const [name, out, rate] = [process.argv[3], process.argv[4], Number(process.argv[5])];
const audit = createAuditClient({ dataDir: process.env.TREK_DATA_DIR });
const acks = [];
const errors = {};
let n = 0, stopping = false;
const hostile = Array.from(JSON.parse(process.argv[6]));
async function one() {
  n += 1;
  try {
    const event = await audit.record(n % 2 ? 'trip.update' : 'user.login', {
      user: { id: n % 7, username: `node${n % 7}\u2028<b>"'`, email: null },
      resource: `trip/${n}"<x>\u2029`, ip: '198.51.100.7',
      details: { soak: { w: name, n }, text: hostile.slice(0, 1 + (n % hostile.length)).join('') },
    });
    acks.push([event.id, event.seq]);
  } catch (error) {
    errors[error.type || 'other'] = (errors[error.type || 'other'] || 0) + 1;
  }
}
async function loop() {
  while (!stopping) {
    await one();
    await new Promise((resolve) => setTimeout(resolve, 1000 / rate));
  }
  await audit.close();
  fs.writeFileSync(`${out}/acks-${name}.jsonl`, acks.map((a) => JSON.stringify(a) + '\n').join(''));
  fs.writeFileSync(`${out}/summary-${name}.json`, JSON.stringify({
    name, role: 'node', pid: process.pid, acked: acks.length, errors, garbage: [] }));
  process.exit(0);
}
process.on('SIGTERM', () => { stopping = true; });
loop();
"""


def main() -> None:
    role_name, name, out, rate = sys.argv[1:5]
    ROLES[role_name](Role(role_name, name, Path(out), float(rate)))


if __name__ == "__main__":
    main()
