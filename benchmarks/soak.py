"""The whole system at once, under load, crashes and bad input; its figures, and a verdict.

Usage:
    python benchmarks/soak.py --short        # about 2 minutes: what `make test` runs
    python benchmarks/soak.py                # 10 minutes
    python benchmarks/soak.py --minutes 5

On one data directory (trek.log rotating at 32 KiB, about three times a second; sealing
every second and before each rotation), all at once:

* writers (``soak_writers.py``): two plain ``AuditWriter`` processes, a pre-fork parent with
  forked children, a ``record --stdin`` client, a client of serve's ingest socket, the Node
  client (where ``node`` exists) and a writer whose disk fills up for a while, all recording
  hostile content (control characters, U+2028, quotes, HTML, strings near the line limit,
  deep JSON), plus a garbage writer appending malformed lines;
* ``trek-audit serve`` with its indexer and ingest children; the indexer is killed with SIGKILL
  at random moments (serve must start a new one), serve itself is killed with SIGKILL once
  and started again, and it is stopped once for as long as more rotations than
  ``TREK_LOG_BACKUPS`` take, so that whole files are dropped unread: the expected gap;
* HTTP load (``soak_http.py``): pages, filters, facets, search, event pages and exports by an
  admin, a viewer and an API token, and requests that must be refused.

The full disk: one writer's ``RLIMIT_FSIZE`` drops to one byte (``setrlimit`` in that process,
SIGXFSZ ignored), so it gets AuditWriteError while the others go on; for the panel, the same
limit is set on its gunicorn workers from outside (``prlimit``), and a login then must be
refused (503: no session without its event). A tmpfs would fill the disk of every writer at
once (and needs root and mount): the limit hits exactly the writers meant, and is lifted
exactly when the window ends, on any machine. The HTTP load pauses in that window, since
every request that writes an event is then refused by design.

At the end it compares what each writer was told (its acknowledged event ids and seqs) with
audit.db, the indexer's gaps and rejected lines, ``trek-audit verify --json`` and /metrics,
prints the table and exits 1 if any check failed. The real gaps come from the rotated files
seen on disk (``soak_checks.RotationWatch``): a seq may be missing from audit.db only if the
file it was in was dropped, and the reported gaps must be exactly those missing seqs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from soak_checks import (
    Peaks,
    RotationWatch,
    alive,
    command_line,
    cpu_seconds,
    descendants,
    label_serve_tree,
)
from soak_http import Client, Load
from soak_verdict import AtRest, Figures, Outcome, judge
from soak_writers import HOSTILE_TEXT, MAX_LINE_BYTES, NODE_SCRIPT, die_with_parent

from trek_audit.layout import DataDir
from trek_audit.store.supervisor import read_supervisor_state
from trek_audit.writer.state import read_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WRITERS = HERE / "soak_writers.py"
ADMIN_PASSWORD = "soak-admin-password"  # noqa: S105 - a throwaway data directory's
VIEWER_PASSWORD = "soak-viewer-password"  # noqa: S105
METRICS_TOKEN = "soak-metrics-token"  # noqa: S105
# About 110 KiB of events a second: a rotation every 0.3 s.
LOG_MAX_BYTES = 32 * 1024
# Enough kept files (about 14 s of them) that an indexer restarted by serve (1 s of backoff),
# or a killed serve started again (5 to 10 s on two busy cores), finds its file still there;
# the long stop waits for more rotations than this.
BACKUPS = 48
IDLE_SECONDS = 10.0


@dataclass(frozen=True)
class Plan:
    """When each fault happens, in seconds from the start of the load."""

    load_seconds: float
    indexer_kills: list[float]
    full_disk_at: float
    serve_kill_at: float
    long_stop_at: float
    rate: float  # events per second of each plain writer; the others in proportion

    @classmethod
    def make(cls, minutes: float, short: bool, seed: int) -> Plan:
        rng = random.Random(seed)
        load = 75.0 if short else max(60.0, minutes * 60 - 45)
        kills = [load * rng.uniform(0.08, 0.2), load * rng.uniform(0.5, 0.6)]
        if not short:
            # One every 65 to 100 s: serve's restart backoff is back at 1 s for each (a child
            # that ran a minute ran well), as it would be for a crash now and then.
            kills, moment = [], rng.uniform(10, 30)
            while moment < load - 15:
                kills.append(moment)
                moment += rng.uniform(65, 100)
        return cls(load, sorted(kills), load * 0.28, load * 0.4, load * 0.68, 60.0)


class Serve:
    """``trek-audit serve`` on a fixed port, started, killed and stopped by the soak."""

    def __init__(self, env: dict[str, str], data: DataDir, port: int, output: Path) -> None:
        self.env, self.data, self.port, self.output = env, data, port, output
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> None:
        with self.output.open("ab") as out:
            serve = ["serve", "--port", str(self.port), "--workers", "2"]
            self.process = _popen([sys.executable, "-m", "trek_audit", *serve], self.env, out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: see {self.output}")
            if self.indexer_pid() is not None and self._answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"serve did not come up in {timeout:.0f} s: see {self.output}")

    def _answers(self) -> bool:
        try:
            return Client("anonymous", self.port).request("GET", "/login")[0] == 200
        except OSError:
            return False

    def indexer_pid(self) -> int | None:
        state = read_supervisor_state(self.data.root)
        if state is None or state["pid"] != self.pid or not state["indexer_running"]:
            return None
        return state["indexer_pid"]

    def tree(self) -> dict[int, str]:
        return label_serve_tree(self.pid) if self.process else {}

    def kill(self) -> None:
        """SIGKILL serve alone, and wait until everything it ran has ended by itself."""
        assert self.process is not None
        children = descendants(self.pid)
        self.process.kill()
        self.process.wait()
        _wait(lambda: not any(map(alive, children)), 60, "serve's children to end")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def _popen(
    arguments: list[str], env: dict[str, str], output: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process of the soak that gets SIGTERM should the soak itself be killed (a
    timeout), so that no writer or serve outlives the run."""
    return subprocess.Popen(
        arguments,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        preexec_fn=partial(die_with_parent, signal.SIGTERM, os.getpid()),
    )


def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trek_audit", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Soak:
    """One run: the data directory, the processes, the faults, and the figures."""

    def __init__(self, root: Path, plan: Plan) -> None:
        self.root, self.plan = root, plan
        self.data = DataDir(root / "data")
        self.out = root / "out"
        self.out.mkdir(parents=True)
        self.env = {
            **os.environ,
            "TREK_DATA_DIR": str(self.data.root),
            "TREK_LOG_MAX_BYTES": str(LOG_MAX_BYTES),
            "TREK_LOG_MAX_LINE_BYTES": str(MAX_LINE_BYTES),
            "TREK_LOG_BACKUPS": str(BACKUPS),
            "TREK_SEAL_INTERVAL": "1",
            "TREK_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "TREK_METRICS_TOKEN": METRICS_TOKEN,
            "TREK_INGEST_SOCKET": str(self.data.ingest_socket),
            "TREK_AUDIT_COMMAND": f"{sys.executable} -m trek_audit",
            "PYTHONPATH": str(HERE),
            "PYTHONUNBUFFERED": "1",
        }
        self.key_file = root / "verify.key"
        self.serve = Serve(self.env, self.data, _free_port(), root / "serve.out")
        self.writers: dict[str, subprocess.Popen[bytes]] = {}
        self.figures = Figures()
        self.peaks = Peaks()
        self.started = time.monotonic()
        self.load: Load | None = None
        self.watch = RotationWatch(self.data.logs, BACKUPS)

    # -- setting up ---------------------------------------------------------------------------

    def set_up(self) -> None:
        self.data.root.mkdir(mode=0o750)
        sealed = _cli(self.env, "seal", "init")
        key = re.search(r"verification key: ([0-9a-f]+)", sealed.stdout + sealed.stderr)
        if key is None:
            raise RuntimeError(f"seal init printed no key: {sealed.stdout}{sealed.stderr}")
        self.key_file.write_text(key[1] + "\n")
        self.serve.start()
        made = _cli(
            self.env,
            "admin",
            "create",
            "viewer",
            "--role",
            "viewer",
            "--password-stdin",
            stdin=VIEWER_PASSWORD + "\n",
        )
        if made.returncode != 0:
            raise RuntimeError(f"cannot create the viewer: {made.stderr}")
        clients = {
            "admin": Client("admin", self.serve.port),
            "viewer": Client("viewer", self.serve.port),
            "anonymous": Client("anonymous", self.serve.port),
            "wrong-token": Client("wrong-token", self.serve.port, bearer="trek_" + "x" * 43),
            "metrics": Client("metrics", self.serve.port, bearer=METRICS_TOKEN),
        }
        if clients["admin"].log_in("admin", ADMIN_PASSWORD) != 302:
            raise RuntimeError("the admin cannot log in")
        if clients["viewer"].log_in("viewer", VIEWER_PASSWORD) != 302:
            raise RuntimeError("the viewer cannot log in")
        clients["admin-wrong-token"] = Client(
            "admin-wrong-token", self.serve.port, clients["admin"].cookies, "trek_" + "y" * 43
        )
        clients["token"] = Client("token", self.serve.port, bearer=self._token("soak"))
        revoked = self._token("soak-revoked")
        if _cli(self.env, "token", "revoke", "soak-revoked").returncode != 0:
            raise RuntimeError("cannot revoke an API token")
        clients["revoked-token"] = Client("revoked-token", self.serve.port, bearer=revoked)
        self.load = Load(clients, threads=3, rate=8.0)

    def _token(self, name: str) -> str:
        made = _cli(self.env, "token", "create", name)
        secret = re.findall(r"trek_[A-Za-z0-9_-]{20,}", made.stdout)
        if made.returncode != 0 or not secret:
            raise RuntimeError(f"cannot create an API token: {made.stderr}")
        return secret[-1]

    def start_writers(self) -> None:
        rate = self.plan.rate
        roles = [
            ("plain", "plain-1", rate),
            ("plain", "plain-2", rate),
            ("prefork", "prefork", rate / 2),
            ("stdin", "stdin", rate / 2),
            ("ingest", "ingest", rate / 2),
            ("fsize", "fsize", rate / 3),
            ("garbage", "garbage", 2.0),
        ]
        for role, name, per_second in roles:
            arguments = [role, name, str(self.out), str(per_second)]
            self.writers[name] = _popen([sys.executable, str(WRITERS), *arguments], self.env)
        node = shutil.which("node")
        if node is not None:
            script = self.out / "node-writer.js"
            script.write_text(NODE_SCRIPT)
            arguments = [
                str(ROOT / "clients" / "node"),
                "node",
                str(self.out),
                str(rate / 3),
                json.dumps(HOSTILE_TEXT),
            ]
            self.writers["node"] = _popen([node, str(script), *arguments], self.env)

    # -- the faults ---------------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.figures.note(self.started, text)

    def kill_indexer(self) -> None:
        pid = self.serve.indexer_pid()
        if pid is None:
            self.note("no indexer running to kill (serve is restarting it)")
            return
        os.kill(pid, signal.SIGKILL)
        self.figures.indexer_kills += 1
        self.note(f"killed the indexer (pid {pid}) with SIGKILL")
        _wait(lambda: self.serve.indexer_pid() not in (None, pid), 60, "a new indexer")
        self.figures.indexer_kills_survived += 1
        self.note(f"serve started a new indexer (pid {self.serve.indexer_pid()})")

    def full_disk(self) -> None:
        """One writer and the panel cannot write for a while: a login then is refused."""
        assert self.load is not None
        self.load.paused.set()
        time.sleep(0.5)  # requests in flight finish
        workers = [p for p, label in self.serve.tree().items() if label == "gunicorn worker"]
        self.writers["fsize"].send_signal(signal.SIGUSR1)
        limits = {pid: resource.prlimit(pid, resource.RLIMIT_FSIZE) for pid in workers}
        for pid, (_, hard) in limits.items():
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, hard))
        self.note(f"disk full for the fsize writer and the panel's workers {workers}")
        try:
            time.sleep(2.0)
            self.figures.login_in_window = Client("login", self.serve.port).log_in(
                "admin", ADMIN_PASSWORD
            )
        finally:
            for pid, previous in limits.items():
                resource.prlimit(pid, resource.RLIMIT_FSIZE, previous)
            self.writers["fsize"].send_signal(signal.SIGUSR2)
        self.note(f"login while full: {self.figures.login_in_window}; disk space back")
        for _ in range(5):
            self.figures.login_after_window = Client("login", self.serve.port).log_in(
                "admin", ADMIN_PASSWORD
            )
            if self.figures.login_after_window == 302:
                break
            time.sleep(0.5)
        self.load.paused.clear()

    def kill_serve(self) -> None:
        self.note(f"killed serve (pid {self.serve.pid}) with SIGKILL")
        self.serve.kill()
        self.note("everything serve ran has ended by itself")
        self.serve.start()
        self.figures.serve_kills_survived += 1
        self.note(f"serve started again (pid {self.serve.pid})")

    def long_stop(self) -> None:
        """Stop serve while more rotations than BACKUPS pass: whole files are dropped unread."""
        self.writers["garbage"].send_signal(signal.SIGUSR1)  # see the accounting of garbage
        self.serve.stop()
        stopped_at = self._written_seq()
        before = self.watch.rotations
        self.note(f"stopped serve; waiting for {BACKUPS + 3} rotations")
        _wait(lambda: self.watch.rotations >= before + BACKUPS + 3, 120, "rotations")
        at_restart = self._written_seq()
        self.figures.long_stop_seqs = (stopped_at, at_restart)
        self.serve.start()
        _wait(lambda: self._indexed_seq() >= at_restart, 120, "the indexer to catch up")
        self.writers["garbage"].send_signal(signal.SIGUSR2)
        self.figures.long_stops += 1
        self.note(f"serve back after {self.watch.rotations - before} rotations, caught up")

    # -- figures ------------------------------------------------------------------------------

    def _written_seq(self) -> int:
        fd = os.open(self.data.logs.lock_file, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return read_state(fd).seq
        finally:
            os.close(fd)

    def _indexed_seq(self) -> int:
        try:
            conn = sqlite3.connect(f"file:{self.data.audit_db}?mode=ro", uri=True, timeout=10)
            try:
                row = conn.execute("SELECT last_seq FROM sources WHERE name = 'local'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return 0
        return int(row[0]) if row else 0

    def sample_peaks(self) -> None:
        labelled = dict(self.serve.tree())
        for name, process in self.writers.items():
            labelled[process.pid] = f"writer {name}"
            for child in descendants(process.pid):
                record = "record" in command_line(child)
                labelled[child] = f"record --stdin of {name}" if record else f"writer {name} child"
        self.peaks.sample(labelled)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> Outcome:
        self.set_up()
        assert self.load is not None
        plan = self.plan
        faults: list[tuple[float, Callable[[], None]]] = [
            *((at, self.kill_indexer) for at in plan.indexer_kills),
            (plan.full_disk_at, self.full_disk),
            (plan.serve_kill_at, self.kill_serve),
            (plan.long_stop_at, self.long_stop),
        ]
        faults.sort(key=lambda fault: fault[0])
        with self.watch:
            self.start_writers()
            self.load.start()
            self.started = time.monotonic()
            self.note(f"load started: {len(self.writers)} writers, serve pid {self.serve.pid}")
            for at, fault in faults:
                self._sampling_until(self.started + at)
                fault()
            self._sampling_until(self.started + plan.load_seconds)
            self.sample_peaks()
            for process in self.writers.values():
                process.send_signal(signal.SIGTERM)
            for name, process in self.writers.items():
                if process.wait(60) != 0:
                    raise RuntimeError(f"writer {name} exited with {process.returncode}")
            self.load.close()
            self.note("load stopped")
            final = self._written_seq()
            _wait(lambda: self._indexed_seq() >= final, 120, "the indexer to index everything")
            self.note(f"indexed through seq {final}")
        assert self.load is not None
        return Outcome(
            out=self.out,
            data=self.data,
            backups=BACKUPS,
            figures=self.figures,
            tally=self.load.tally,
            watch=self.watch,
            peaks=self.peaks,
            written_seq=self._written_seq(),
            rest=self.measure_at_rest(),
        )

    def _sampling_until(self, moment: float) -> None:
        while (left := moment - time.monotonic()) > 0:
            self.sample_peaks()
            time.sleep(min(2.0, left))

    def measure_at_rest(self) -> AtRest:
        tree = list(self.serve.tree())
        before = cpu_seconds(tree)
        time.sleep(IDLE_SECONDS)
        idle = (cpu_seconds(tree) - before) / IDLE_SECONDS
        self.sample_peaks()
        wal = self.data.audit_db.with_name(self.data.audit_db.name + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        status = json.loads(_cli(self.env, "status", "--json").stdout)
        verified = _cli(self.env, "verify", "--json", "--key-file", str(self.key_file))
        metrics = Client("metrics", self.serve.port, bearer=METRICS_TOKEN).request(
            "GET", "/metrics"
        )
        self.serve.stop()
        return AtRest(
            idle_cpu=idle,
            idle_seconds=IDLE_SECONDS,
            idle_pids=len(tree),
            wal_bytes=wal_bytes,
            status=status,
            verify=json.loads(verified.stdout),
            metrics=metrics[2].decode(),
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="about 2 minutes (make test)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    plan = Plan.make(args.minutes, args.short, seed)
    root = Path(tempfile.mkdtemp(prefix="trek-soak-"))
    print(f"soak: seed {seed}, {plan.load_seconds:.0f} s of load, in {root}", flush=True)
    soak = Soak(root, plan)
    started = time.monotonic()
    try:
        verdict = judge(soak.run())
    finally:
        soak.serve.stop()
        for process in soak.writers.values():
            for pid in [*descendants(process.pid), process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    print()
    print(verdict.table())
    print(f"\nwall time {time.monotonic() - started:.0f} s; seed {seed}")
    if verdict.failed:
        print(f"FAILED: {', '.join(verdict.failed)} (data kept in {root})")
        for example in soak.load.tally.examples if soak.load else []:
            print(f"  {example}")
        return 1
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
