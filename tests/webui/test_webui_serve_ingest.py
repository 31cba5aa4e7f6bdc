"""``serve`` with TREK_INGEST_SOCKET: it runs the ingest server, supervised like its indexer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from trek_audit.store import read_status
from trek_audit.webui.serve import ready_block

T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="serve's children are found through /proc"
)


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    pause = threading.Event()
    for _ in range(int(timeout / 0.05)):
        result = condition()
        if result:
            return result
        pause.wait(0.05)
    pytest.fail(f"timed out waiting for {what}")


def ask(path: Path, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        client.connect(str(path))
        client.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        client.shutdown(socket.SHUT_WR)
        with client.makefile("rb") as answers:
            return [json.loads(line) for line in answers]


def answers_on(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return ask(path, {"action": "a.probe"})[0]["action"] == "a.probe"
    return False


def ingest_children(serve_pid: int) -> list[int]:
    """serve's live ``trek_audit ingest`` children."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat[0] not in ("Z", "X") and int(stat[1]) == serve_pid and b"ingest" in command:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``serve`` on a fresh data directory with TREK_INGEST_SOCKET; killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(socket_path: Path) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ,
            "TREK_DATA_DIR": str(tmp_path / "data"),
            "TREK_INGEST_SOCKET": str(socket_path),
            "TREK_ADMIN_PASSWORD": "a-long-admin-password",
        }
        with (tmp_path / "serve.out").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "trek_audit", "serve", "--port", "0", "--workers", "1"],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        for pid in ingest_children(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_runs_the_ingest_server_whose_events_get_indexed_and_restarts_it_when_killed(
    serve: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    socket_path = tmp_path / "trek-ingest.sock"
    process = serve(socket_path)
    wait_for(lambda: answers_on(socket_path), "the ingest socket")
    event = ask(socket_path, {"action": "trip.create", "user": {"id": 7}, "resource": "trip/1"})
    assert event[0]["resource"] == "trip/1"
    data_dir = tmp_path / "data"
    # admin.user_create, the probe, trip.create
    wait_for(lambda: read_status(data_dir)["indexed"] == 3, "the indexer to index the events")

    (first,) = wait_for(lambda: ingest_children(process.pid), "the ingest child")
    os.kill(first, signal.SIGKILL)
    second = wait_for(
        lambda: [pid for pid in ingest_children(process.pid) if pid != first], "a new one"
    )
    wait_for(lambda: answers_on(socket_path), "the stale socket replaced")
    assert ask(socket_path, {"action": "trip.update"})[0]["seq"] == 5
    output = (tmp_path / "serve.out").read_text()
    assert f"the ingest server (pid {first}) was killed by SIGKILL" in output
    assert f"started a new ingest server (pid {second[0]})" in output

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert not socket_path.exists()
    assert not alive(second[0])


def test_nothing_of_the_ingest_server_outlives_a_sigkill_of_serve(
    serve: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    socket_path = tmp_path / "trek-ingest.sock"
    process = serve(socket_path)
    wait_for(lambda: answers_on(socket_path), "the ingest socket")
    (child,) = ingest_children(process.pid)
    process.kill()
    process.wait()
    wait_for(lambda: not alive(child), "the ingest child to end with serve", timeout=5)
    assert not socket_path.exists()  # it ended cleanly (SIGTERM), not killed


def test_serve_refuses_at_once_an_ingest_socket_another_server_listens_on(
    serve: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    socket_path = tmp_path / "trek-ingest.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(socket_path))
        other.listen()
        process = serve(socket_path)
        assert process.wait(timeout=60) == 1
    output = (tmp_path / "serve.out").read_text()
    assert "cannot take events on TREK_INGEST_SOCKET: another ingest server is listening" in output


def test_the_ready_block_names_the_ingest_socket_before_the_panel() -> None:
    lines = ready_block("http://127.0.0.1:5000/", Path("/srv"), [], Path("/srv/i.sock"))
    assert lines.splitlines()[-3:-1] == [
        "ingest socket: /srv/i.sock",
        "panel: http://127.0.0.1:5000/",
    ]
