"""``trek-audit serve`` as an operator runs it: it sleeps when idle, restarts its indexer,
leaves nothing behind when killed, stops cleanly, and says where to log in, last."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from trek_audit.store import holder_pid, is_locked, read_status

from .e2e_support import ADMIN_PASSWORD, Session, free_port, seed, wait_for
from .processes import alive, children, cpu_seconds, descendants, kill_all

WORKERS = 2
IDLE_SECONDS = 10.0
SERVE_STATE_KEYS = {
    "pid",
    "indexer_pid",
    "indexer_running",
    "indexer_restarts",
    "indexer_down_since",
    "updated_at",
}


@dataclass
class Serve:
    """A ``trek-audit serve`` child process, and every pid it has been seen with."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    output: Path
    port: int
    seen: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def tree(self) -> list[int]:
        """serve's descendants now, remembered for the clean-up."""
        pids = descendants(self.pid)
        self.seen.extend(p for p in pids if p not in self.seen)
        return pids

    def state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads((self.data_dir / "serve.json").read_text())
        except FileNotFoundError:
            return None
        return state

    def wait_until_up(self) -> None:
        def answers() -> bool:
            assert self.process.poll() is None, self.text()
            try:
                return Session(self.port).request("GET", "/login")[0] == 200
            except OSError:
                return False

        wait_for(answers, timeout=30)
        wait_for(self.settled, timeout=30)

    def settled(self) -> bool:
        """The indexer and every worker run, and no process comes or goes any more."""
        before = self.tree()
        threading.Event().wait(0.3)
        return len(before) >= WORKERS + 1 and self.tree() == before


def start_serve(data_dir: Path, output: Path, **env: str) -> Serve:
    environment = {**os.environ, "TREK_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", **env}
    for name in ("TREK_ADMIN_PASSWORD", "XDG_RUNTIME_DIR"):
        if not env.get(name):
            environment.pop(name, None)
    port = free_port()
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "trek_audit", "serve", "--port", str(port)]
            + ["--workers", str(WORKERS)],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Serve(process, data_dir, output, port)


@pytest.fixture
def serves() -> Iterator[list[Serve]]:
    """Serves a test starts; whatever of them is left is killed afterwards."""
    started: list[Serve] = []
    yield started
    for serve in started:
        if serve.process.poll() is None:
            serve.tree()
            serve.process.kill()
            serve.process.wait()
        kill_all(serve.seen)


def launch(serves: list[Serve], data_dir: Path, name: str = "serve.out", **env: str) -> Serve:
    serve = start_serve(data_dir, data_dir.parent / name, **env)
    serves.append(serve)
    serve.wait_until_up()
    return serve


# Events in a seeded data directory once serve has started: the seed's, and the first start's
# admin.user_create.
SEEDED = 20


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    seed(data_dir, count=SEEDED - 1)
    return data_dir


def test_an_idle_serve_uses_under_three_percent_of_a_core_in_all_its_processes(
    seeded: Path, serves: list[Serve]
) -> None:
    home = seeded.parent / "home"
    home.mkdir()
    serve = launch(serves, seeded, TREK_ADMIN_PASSWORD=ADMIN_PASSWORD, HOME=str(home))
    wait_for(lambda: read_status(seeded)["indexed"] == SEEDED and read_status(seeded)["running"])
    threading.Event().wait(2.0)  # the workers' first requests and imports are over
    # No gunicorn control socket (a thread, and a path every gunicorn of the user shares).
    assert list(home.iterdir()) == []
    processes = [serve.pid, *serve.tree()]
    before = cpu_seconds(processes)
    threading.Event().wait(IDLE_SECONDS)
    used = cpu_seconds(processes) - before
    assert serve.tree() == processes[1:], "a process of serve ended or started while idle"
    assert used < 0.03 * IDLE_SECONDS, f"{used:.2f} s of CPU in {IDLE_SECONDS} s idle"


def test_serve_restarts_a_killed_indexer_backing_off_and_shows_it_down_meanwhile(
    seeded: Path, serves: list[Serve]
) -> None:
    serve = launch(serves, seeded, TREK_ADMIN_PASSWORD=ADMIN_PASSWORD)
    first = wait_for(lambda: (s := serve.state()) and s["indexer_running"] and s)
    assert set(first) == SERVE_STATE_KEYS
    assert first["pid"] == serve.pid and first["indexer_restarts"] == 0
    assert first["indexer_pid"] in serve.tree() and first["indexer_down_since"] is None

    os.kill(first["indexer_pid"], signal.SIGKILL)
    second = wait_for(
        lambda: (s := serve.state()) and s["indexer_restarts"] == 1 and s["indexer_running"] and s
    )
    assert second["indexer_pid"] != first["indexer_pid"]
    assert second["indexer_pid"] in serve.tree()
    wait_for(lambda: holder_pid(seeded) == second["indexer_pid"] and is_locked(seeded))

    # Killed again within the minute: the pause doubles to 2 s, and serve.json says it is down.
    os.kill(second["indexer_pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    down = wait_for(lambda: (s := serve.state()) and not s["indexer_running"] and s)
    assert down["indexer_pid"] is None and down["indexer_down_since"] is not None
    third = wait_for(
        lambda: (s := serve.state()) and s["indexer_restarts"] == 2 and s["indexer_running"] and s
    )
    assert time.monotonic() - killed_at >= 1.5
    assert third["indexer_pid"] in serve.tree()
    output = serve.text()
    assert f"the indexer (pid {first['indexer_pid']}) was killed by SIGKILL" in output
    assert "starting a new one in 1 s" in output and "starting a new one in 2 s" in output


def test_nothing_of_serve_outlives_a_sigkill_and_a_new_serve_runs_its_own_indexer(
    seeded: Path, serves: list[Serve]
) -> None:
    serve = launch(serves, seeded, TREK_ADMIN_PASSWORD=ADMIN_PASSWORD)
    wait_for(lambda: is_locked(seeded))
    processes = serve.tree()
    serve.process.kill()
    serve.process.wait()
    killed_at = time.monotonic()
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=5, interval=0.05)
    assert time.monotonic() - killed_at <= 2.0, "a process of serve outlived it by over 2 s"

    again = launch(serves, seeded, "again.out", TREK_ADMIN_PASSWORD=ADMIN_PASSWORD)
    wait_for(lambda: is_locked(seeded) and holder_pid(seeded) in again.tree())
    assert "already runs" not in again.text()
    state = again.state()
    assert state is not None and state["pid"] == again.pid


def test_a_serve_that_found_another_indexer_starts_its_own_once_that_one_stops(
    seeded: Path, serves: list[Serve]
) -> None:
    first = launch(serves, seeded, TREK_ADMIN_PASSWORD=ADMIN_PASSWORD)
    wait_for(lambda: is_locked(seeded) and holder_pid(seeded) in first.tree())
    second = launch(serves, seeded, "second.out", TREK_ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert "already runs" in second.text()
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(60) == 0
    # serve looks at the other indexer's lock every 5 s.
    wait_for(lambda: is_locked(seeded) and holder_pid(seeded) in second.tree(), timeout=20)
    state = second.state()
    assert state is not None and state["pid"] == second.pid and state["indexer_restarts"] == 0
    assert "the other indexer stopped; serve starts its own" in second.text()


def test_when_the_panel_is_killed_its_workers_end_and_serve_stops_the_indexer_and_fails(
    seeded: Path, serves: list[Serve]
) -> None:
    serve = launch(serves, seeded, TREK_ADMIN_PASSWORD=ADMIN_PASSWORD)
    state = wait_for(lambda: (s := serve.state()) and s["indexer_running"] and s)
    processes = serve.tree()
    [master] = [pid for pid in children(serve.pid) if pid != state["indexer_pid"]]
    workers = children(master)
    assert len(workers) == WORKERS
    os.kill(master, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=5, interval=0.05)
    assert time.monotonic() - killed_at <= 2.0, "a worker outlived its master by over 2 s"
    assert serve.process.wait(60) == 1
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=5)
    assert "the panel (gunicorn) was killed by SIGKILL; stopping the indexer" in serve.text()
    assert not is_locked(seeded)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_stop_everything_cleanly_with_status_zero(
    seeded: Path, serves: list[Serve], stop: signal.Signals
) -> None:
    serve = launch(serves, seeded, TREK_ADMIN_PASSWORD=ADMIN_PASSWORD)
    wait_for(lambda: read_status(seeded)["indexed"] == SEEDED)
    processes = serve.tree()
    serve.process.send_signal(stop)
    assert serve.process.wait(60) == 0
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=5)
    assert not is_locked(seeded)
    assert not (seeded / "serve.json").exists()
    # The indexer ended on its SIGTERM (status 0), having committed what it read.
    assert re.search(r"stopped the indexer \(pid \d+\); what it read is committed", serve.text())
    assert read_status(seeded)["indexed"] == SEEDED


def test_a_port_in_use_ends_serve_at_once_with_one_line_naming_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "trek_audit", "serve", "--port", str(port)],
            env={**os.environ, "TREK_DATA_DIR": str(data_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert time.monotonic() - began < 4.0  # gunicorn alone retries for 5 s
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is already in use; pick another port with "
        f"`make run PORT={port + 1}` or `trek-audit serve --port {port + 1}`"
    ]
    # Nothing was created, so the first password is not spent on a serve that never ran.
    assert not (data_dir / "accounts.db").exists()


def test_the_url_and_the_first_password_are_the_last_lines_serve_prints(
    tmp_path: Path, serves: list[Serve]
) -> None:
    data_dir = tmp_path / "data"
    serve = launch(serves, data_dir)
    wait_for(lambda: is_locked(data_dir))
    threading.Event().wait(1.0)  # anything printed late would show by now
    lines = serve.text().rstrip("\n").splitlines()
    rule = "=" * 72
    assert lines[-1] == rule
    opening = len(lines) - 1 - lines[::-1].index(rule, 1)
    block = lines[opening + 1 : -1]
    assert block[-3] == f"panel: http://127.0.0.1:{serve.port}/"
    password = block[-2].removeprefix("created account 'admin' with password: ")
    assert password != block[-2]
    assert block[-1] == "  (shown only this once; change it under Password after logging in)"
    assert "indexer running" in "\n".join(lines[:opening])
    assert Session(serve.port).log_in("admin", password) == 302
