"""Private rsyslog instances running the configurations of deploy/shippers/, and event writers.

Each rsyslogd has its own configuration, pid file and work directory (its read positions and
disk queue) under the test's directory, and is stopped (killed if need be) when its context
ends: no test leaves one running. The configurations are the deployed files themselves, with
their paths, host and port replaced (each replaced text must still be in the file).

Run as ``python -m tests.e2e.shippers_support write ...``, this module is an app host's writer
process: it records events at a steady pace and keeps every line it wrote, as written, in a
file of its own (the log files themselves rotate away).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

from trek_audit.layout import DataDir, LogDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriter, Event, decode, encode

from .e2e_support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHIPPERS = ROOT / "deploy" / "shippers"
SHORT = bool(os.environ.get("TREK_TEST_SHORT"))
TREK_AUDIT = str(Path(sys.executable).with_name("trek-audit"))
# What the deployed files name, replaced by each test's own.
DEPLOYED_DATA_DIR = "/var/lib/trek-audit"
DEPLOYED_CENTRAL_HOST = "audit-central.example.org"
DEPLOYED_PORT = 'port="2514"'
DEPLOYED_HOSTNAME = '# localHostname="app1"'
DEPLOYED_GROUP = '"trek-audit"'


def rsyslogd() -> str:
    """The rsyslogd to run, with RELP; missing: the test fails in CI and is skipped elsewhere."""
    found = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    relp = glob.glob("/usr/lib/*/rsyslog/omrelp.so") + glob.glob("/usr/lib/rsyslog/omrelp.so")
    if found and relp:
        return found
    message = "rsyslog with RELP is not installed (apt-get install rsyslog rsyslog-relp)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def deployed(name: str, replacements: dict[str, str]) -> str:
    """deploy/shippers/``name`` with each key replaced by its value (each key must be there)."""
    text = (SHIPPERS / name).read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"deploy/shippers/{name} no longer holds {old!r}"
        text = text.replace(old, new)
    return text


def sender_config(
    data_dir: Path, work_dir: Path, port: int, host: str, name: str = "rsyslog-sender.conf"
) -> str:
    """An app host's rsyslog: follows ``data_dir``/logs, forwards to 127.0.0.1:``port``."""
    return deployed(
        name,
        {
            "/var/spool/trek-audit-sender": str(work_dir),
            DEPLOYED_DATA_DIR: str(data_dir),
            DEPLOYED_CENTRAL_HOST: "127.0.0.1",
            DEPLOYED_PORT: f'port="{port}"',
            DEPLOYED_HOSTNAME: f'localHostname="{host}"',
        },
    )


def receiver_config(data_dir: Path, work_dir: Path, port: int, group: str) -> str:
    """The central rsyslog: listens on ``port``, writes ``data_dir``/sources/<host>/trek.log."""
    return deployed(
        "rsyslog-receiver.conf",
        {
            "/var/spool/trek-audit-receiver": str(work_dir),
            DEPLOYED_DATA_DIR: str(data_dir),
            DEPLOYED_PORT: f'port="{port}"',
            DEPLOYED_GROUP: f'"{group}"',
        },
    )


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Rsyslog:
    """One private rsyslogd: ``home`` holds its configuration, pid file, output and work dir.

    ``listens``: the port it serves, waited for at start. ``user``/``groups``: run as that
    user with those supplementary groups (the work directory is made theirs).
    """

    home: Path
    config: str
    listens: int | None = None
    user: str | None = None
    groups: Sequence[int] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def output(self) -> Path:
        return self.home / "rsyslogd.out"

    def start(self) -> Rsyslog:
        binary = rsyslogd()
        self.home.mkdir(parents=True, exist_ok=True)
        conf = self.home / "rsyslog.conf"
        conf.write_text(self.config, encoding="utf-8")
        (self.home / "work").mkdir(exist_ok=True)
        if self.user is not None:
            for path in (self.home, self.home / "work"):
                shutil.chown(path, self.user)
        check = subprocess.run(
            [binary, "-N1", "-f", str(conf)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
        pid_file = self.home / "rsyslogd.pid"
        pid_file.unlink(missing_ok=True)
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [binary, "-n", "-f", str(conf), "-i", str(pid_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self.user,
                group=None if self.user is None else "nogroup",
                extra_groups=list(self.groups) if self.user is not None else None,
            )
        process = self.process

        def up() -> bool:
            assert process.poll() is None, self.output.read_text(errors="replace")
            if self.listens is not None:
                return listening(self.listens)
            return pid_file.exists()

        wait_for(up, timeout=20)
        return self

    def stop(self) -> None:
        """SIGTERM (rsyslog saves its read positions and queue), SIGKILL after 15 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Rsyslog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- app hosts' writers -------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterPlan:
    """What one writer process writes: ``count`` events at ``rate`` a second into ``data_dir``."""

    data_dir: Path
    record_file: Path  # every line written, as written
    count: int
    rate: float
    max_bytes: int
    backups: int
    writer: int = 1
    line_bytes: int = 0  # pad each line to about this many bytes (0: short lines)


def start_writer(plan: WriterPlan, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.e2e.shippers_support", "write"]
    command += [
        f"--data-dir={plan.data_dir}",
        f"--record-file={plan.record_file}",
        f"--count={plan.count}",
        f"--rate={plan.rate}",
        f"--max-bytes={plan.max_bytes}",
        f"--backups={plan.backups}",
        f"--writer={plan.writer}",
        f"--line-bytes={plan.line_bytes}",
    ]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})})


@contextlib.contextmanager
def writers(plans: Sequence[WriterPlan], env: dict[str, str] | None = None) -> Iterator[None]:
    """Run a writer process per plan; at the end of the block, each must have finished cleanly."""
    processes = [start_writer(plan, env) for plan in plans]
    try:
        yield
        for process in processes:
            assert process.wait(120) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _details(writer: int, n: int, pad: int) -> dict[str, Any]:
    # Non-ASCII text, an escaped tab and a raw DEL: a shipper must pass each on as it is.
    return {"writer": writer, "n": n, "text": "Straße – ü\t\x7f", "pad": "x" * pad}


def _pad_for(line_bytes: int, writer: int, count: int) -> int:
    """The pad that makes the line of seq and n ``count`` ``line_bytes`` long (others: a few
    bytes shorter)."""
    sample: Event = {
        "v": 1,
        "id": "0" * 36,
        "seq": count,
        "ts": "2000-01-01T00:00:00.000000Z",
        "action": "trip.update",
        "user": {"id": writer, "username": f"writer{writer}", "email": None},
        "resource": f"trip/{count}",
        "ip": "192.0.2.7",
        "details": _details(writer, count, 0),
    }
    return max(0, line_bytes - len(encode(sample)))


def write(plan: WriterPlan) -> None:
    """Record ``plan.count`` events at a steady pace; then write every line to the record file."""
    settings = Settings.from_env(
        data_dir=plan.data_dir, log_max_bytes=plan.max_bytes, log_backups=plan.backups
    )
    pad = _pad_for(plan.line_bytes, plan.writer, plan.count) if plan.line_bytes else 0
    lines: list[bytes] = []
    start = time.monotonic()
    with AuditWriter.from_settings(settings) as writer:
        for n in range(1, plan.count + 1):
            event = writer.record(
                "trip.update",
                user={"id": plan.writer, "username": f"writer{plan.writer}", "email": None},
                resource=f"trip/{n}",
                ip="192.0.2.7",
                details=_details(plan.writer, n, pad),
            )
            lines.append(encode(event))
            ahead = start + n / plan.rate - time.monotonic()
            if ahead > 0.002:
                time.sleep(ahead)
    partial = plan.record_file.with_suffix(".partial")
    partial.write_bytes(b"".join(lines))
    partial.rename(plan.record_file)  # whole, or not there


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shippers_support")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("write")
    command.add_argument("--data-dir", type=Path, required=True)
    command.add_argument("--record-file", type=Path, required=True)
    for name in ("count", "max-bytes", "backups", "writer", "line-bytes"):
        command.add_argument(f"--{name}", type=int, required=True)
    command.add_argument("--rate", type=float, required=True)
    args = parser.parse_args(argv)
    write(
        WriterPlan(
            args.data_dir,
            args.record_file,
            args.count,
            args.rate,
            args.max_bytes,
            args.backups,
            args.writer,
            args.line_bytes,
        )
    )


# -- what arrived -------------------------------------------------------------------------------


def lines_of(path: Path) -> list[bytes]:
    """The lines of a file, each with its newline (a last line without one is left out)."""
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    return [line for line in lines if line.endswith(b"\n")]


def written(plans: Sequence[WriterPlan]) -> list[bytes]:
    return [line for plan in plans for line in lines_of(plan.record_file)]


def log_files(logs: LogDir) -> list[Path]:
    """trek.log and its rotations, as a file glob sees them."""
    return sorted(logs.path.glob("trek.log*"))


def shipped(logs: LogDir) -> list[bytes]:
    """Every line in a source's files (repeats included)."""
    return [line for path in log_files(logs) for line in lines_of(path)]


def ids_of(lines: Sequence[bytes]) -> set[str]:
    return {decode(line)["id"] for line in lines}


def wait_shipped(logs: LogDir, lines: Sequence[bytes], timeout: float = 60) -> None:
    """Wait until every one of ``lines`` has arrived in the source ``logs``."""
    expected = ids_of(lines)
    wait_for(lambda: ids_of(shipped(logs)) >= expected, timeout=timeout, interval=0.5)


class IndexedEvent(NamedTuple):
    source: str
    row: tuple[Any, ...]  # as row_of


def row_of(line: bytes) -> tuple[Any, ...]:
    """The audit_log columns a line becomes, as the indexer stores them."""
    event = decode(line)
    user = event["user"] or {"id": None, "username": None, "email": None}
    details = event["details"]
    return (
        event["id"],
        event["seq"],
        event["ts"],
        event["action"],
        user["id"],
        user["username"],
        user["email"],
        event["resource"],
        event["ip"],
        None if details is None else orjson.dumps(details).decode(),
    )


def indexed(data: DataDir) -> list[IndexedEvent]:
    """Every row of audit.db with its source."""
    conn = sqlite3.connect(f"file:{data.audit_db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT source, event_id, seq, ts, action, user_id, username, email, resource, ip, "
            "details FROM audit_log ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [IndexedEvent(row[0], tuple(row[1:])) for row in rows]


def status(data: DataDir) -> dict[str, Any]:
    """``trek-audit status --json`` of the central data directory."""
    result = subprocess.run(
        [TREK_AUDIT, "status", "--json", "--data-dir", str(data.root)],
        capture_output=True,
        check=False,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def source_status(data: DataDir, name: str) -> dict[str, Any]:
    found = [s for s in status(data)["sources"] if s["name"] == name]
    assert found, f"no source {name} in status"
    return found[0]


@contextlib.contextmanager
def following_indexer(data: DataDir, output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``trek-audit index`` following the central data directory until the block ends."""
    with output.open("ab") as out:
        process = subprocess.Popen(
            [TREK_AUDIT, "index", "--data-dir", str(data.root), "--rescan-interval", "0.2"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
        assert process.poll() is None, output.read_text(errors="replace")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def index_once(data: DataDir) -> None:
    subprocess.run([TREK_AUDIT, "index", "--once", "--data-dir", str(data.root)], check=True)


def rotations_since(logs: LogDir, seq: int) -> int:
    """How many whole files were rotated out after the line of ``seq`` was written."""
    count = 0
    for path in log_files(logs):
        if path == logs.log_file:
            continue
        with contextlib.suppress(FileNotFoundError), path.open("rb") as file:
            first = file.readline()
            count += first.endswith(b"\n") and decode(first)["seq"] > seq
    return count


def last_seq(logs: LogDir) -> int:
    """The seq of the newest whole line in trek.log (0 if none)."""
    lines = lines_of(logs.log_file) if logs.log_file.exists() else []
    return decode(lines[-1])["seq"] if lines else 0


def pause(seconds: float) -> None:
    """Let the writers run on for ``seconds`` (an outage, a stopped shipper)."""
    threading.Event().wait(seconds)


__all__ = [
    "SHORT",
    "IndexedEvent",
    "Rsyslog",
    "WriterPlan",
    "free_port",
    "following_indexer",
    "ids_of",
    "index_once",
    "indexed",
    "last_seq",
    "log_files",
    "pause",
    "receiver_config",
    "row_of",
    "rotations_since",
    "rsyslogd",
    "sender_config",
    "shipped",
    "source_status",
    "status",
    "wait_shipped",
    "writers",
    "written",
]

if __name__ == "__main__":
    main()
