"""``trek-audit ingest``: the request protocol on a Unix socket, safe from its path and clients."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trek_audit.writer import AuditWriter
from trek_audit.writer.ingest import IngestServer, SocketPathError

from .writer_support import read_events

REQUEST_LIMIT = 4096


def request(action: str = "trip.create", **fields: Any) -> bytes:
    return json.dumps({"action": action, **fields}).encode() + b"\n"


def connect(path: Path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(30)
    client.connect(str(path))
    return client


def ask(path: Path, requests: bytes) -> list[dict[str, Any]]:
    """Send ``requests``, end the input, and read every answer until the server closes."""
    with connect(path) as client:
        answers = bytearray()

        def send() -> None:
            client.sendall(requests)
            client.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        while chunk := client.recv(1 << 16):
            answers += chunk
        sender.join()
    return [json.loads(line) for line in bytes(answers).splitlines()]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        pause.wait(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "ingest.sock"


@pytest.fixture
def serve(tmp_path: Path, socket_path: Path) -> Iterator[Callable[..., IngestServer]]:
    """Start ingest servers on the test's log directory; each is stopped at the end."""
    writer = AuditWriter(tmp_path / "logs")
    started: list[IngestServer] = []

    def start(path: Path = socket_path, **options: Any) -> IngestServer:
        server = IngestServer(writer, path, max_request_bytes=REQUEST_LIMIT, **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    writer.close()


def test_a_connection_gets_one_answer_per_line_in_order(
    serve: Callable[..., IngestServer], socket_path: Path, tmp_path: Path
) -> None:
    serve()
    answers = ask(socket_path, request("user.login", user={"id": 7}) + b"nope\n" + request())
    assert answers[0]["user"] == {"id": 7, "username": None, "email": None}
    assert answers[1]["error"]["type"] == "invalid"
    assert answers[2]["seq"] == 2
    assert read_events(tmp_path / "logs") == [answers[0], answers[2]]


def test_concurrent_clients_each_get_their_own_answers_in_order_and_every_seq_once(
    serve: Callable[..., IngestServer], socket_path: Path, tmp_path: Path
) -> None:
    serve()
    clients, each = 8, 400
    results: dict[int, list[dict[str, Any]]] = {}

    def client(number: int) -> None:
        requests = b"".join(request(details={"client": number, "n": n}) for n in range(each))
        results[number] = ask(socket_path, requests)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen: list[int] = []
    for number, answers in results.items():
        assert [a["details"] for a in answers] == [{"client": number, "n": n} for n in range(each)]
        client_seqs = [a["seq"] for a in answers]
        assert client_seqs == sorted(client_seqs)
        seen.extend(client_seqs)
    assert sorted(seen) == list(range(1, clients * each + 1))
    assert sorted(e["seq"] for e in read_events(tmp_path / "logs")) == sorted(seen)


def test_the_socket_is_created_mode_0660(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    os.umask(previous := os.umask(0))  # the test's umask must not matter: 0 is the widest
    try:
        serve()
    finally:
        os.umask(previous)
    st = os.lstat(socket_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert [p.name for p in socket_path.parent.iterdir() if p.name.startswith(".")] == []


def test_a_stale_socket_left_by_a_killed_server_is_replaced(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(socket_path))  # bound and never removed: nobody answers on it
    serve()
    assert ask(socket_path, request())[0]["seq"] == 1


def test_a_live_socket_is_refused_and_keeps_working(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    serve()
    with pytest.raises(SocketPathError, match="another ingest server is listening on"):
        serve()
    assert ask(socket_path, request())[0]["seq"] == 1


def make_file(path: Path) -> None:
    path.write_text("not a socket")


def make_dir(path: Path) -> None:
    path.mkdir()


def make_link_to_a_stale_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path.with_name("stale.sock")))
    path.symlink_to(path.with_name("stale.sock"))


@pytest.mark.parametrize(
    "make",
    [make_file, make_dir, make_link_to_a_stale_socket],
    ids=["file", "directory", "symlink"],
)
def test_a_path_that_is_not_a_socket_is_refused_and_left_alone(
    serve: Callable[..., IngestServer], socket_path: Path, make: Callable[[Path], None]
) -> None:
    make(socket_path)
    before = os.lstat(socket_path)
    with pytest.raises(SocketPathError, match="exists and is not a socket; it was left alone"):
        serve()
    after = os.lstat(socket_path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


def test_stopping_removes_the_socket_file(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    server = serve()
    server.stop()
    assert not socket_path.exists()


def test_stopping_leaves_a_socket_path_that_is_no_longer_its_own(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    server = serve()
    socket_path.unlink()
    make_file(socket_path)
    server.stop()
    assert socket_path.read_text() == "not a socket"


def test_huge_garbage_and_slow_clients_do_not_stop_the_others(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    server = serve()
    slow = connect(socket_path)
    slow.sendall(b'{"action": "user.lo')  # and never the rest
    huge = connect(socket_path)
    huge_answers = bytearray()
    reader = threading.Thread(target=lambda: huge_answers.extend(huge.recv(1 << 16)))
    reader.start()
    huge.sendall(b"[" * (8 << 20) + b"\n")  # 8 MiB, skipped without being kept
    reader.join()
    assert json.loads(huge_answers)["error"]["type"] == "invalid"
    garbage = ask(socket_path, os.urandom(1 << 16) + b"\n" + request())
    assert garbage[-1]["action"] == "trip.create"
    assert ask(socket_path, request())[0]["action"] == "trip.create"
    assert server.connections == 2  # the slow one and the huge one, still open
    slow.close()
    huge.close()


def test_when_connections_run_out_the_one_quiet_longest_makes_room(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    server = serve(max_connections=2, idle_grace=0.0)
    quiet = connect(socket_path)
    quiet.sendall(b"{")  # half a request: quiet since it connected
    busy = connect(socket_path)
    busy.sendall(request())
    assert json.loads(busy.recv(4096))["seq"] == 1
    wait_for(lambda: server.connections == 2, "both connections")
    assert ask(socket_path, request())[0]["seq"] == 2
    assert quiet.recv(4096) == b""  # closed to make room, its half request dropped
    busy.sendall(request())
    assert json.loads(busy.recv(4096))["seq"] == 3
    quiet.close()
    busy.close()


def test_when_every_connection_is_busy_a_new_one_is_closed_at_once(
    serve: Callable[..., IngestServer], socket_path: Path
) -> None:
    warnings: list[str] = []
    server = serve(max_connections=1, idle_grace=3600.0, warn=warnings.append)
    kept = connect(socket_path)
    wait_for(lambda: server.connections == 1, "the first connection")
    with connect(socket_path) as refused:
        assert refused.recv(4096) == b""
    assert warnings == [
        f"1 connections, all busy, on {socket_path}: refusing new connections until one ends"
    ]
    kept.sendall(request())
    assert json.loads(kept.recv(4096))["seq"] == 1
    kept.close()


# -- the command ------------------------------------------------------------------------------


def start_ingest(data_dir: Path, socket_path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "trek_audit", "ingest", "--data-dir", str(data_dir)]
        + ["--socket", str(socket_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == f"listening on {socket_path} (Ctrl-C stops)\n"
    return process


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ingest_idles_without_cpu_and_sigterm_stops_it_cleanly_removing_its_socket(
    tmp_path: Path, socket_path: Path
) -> None:
    process = start_ingest(tmp_path / "data", socket_path)
    try:
        assert ask(socket_path, request())[0]["seq"] == 1
        idle = [connect(socket_path) for _ in range(3)]
        before = cpu_seconds(process.pid)
        threading.Event().wait(2.0)
        assert cpu_seconds(process.pid) - before <= 0.02
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        for client in idle:
            assert client.recv(4096) == b""
            client.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out == f"stopped on SIGTERM; removed {socket_path}\n"
    assert not socket_path.exists()


def test_ingest_refuses_a_live_socket_with_status_1(tmp_path: Path, socket_path: Path) -> None:
    first = start_ingest(tmp_path / "data", socket_path)
    try:
        second = subprocess.run(
            [sys.executable, "-m", "trek_audit", "ingest", "--socket", str(socket_path)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "TREK_DATA_DIR": str(tmp_path / "data")},
        )
        assert second.returncode == 1
        assert f"another ingest server is listening on {socket_path}" in second.stderr
        assert ask(socket_path, request())[0]["seq"] == 1
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 0


def test_ingest_refuses_a_directory_at_its_path_with_status_1(tmp_path: Path) -> None:
    (tmp_path / "data" / "ingest.sock").mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-m", "trek_audit", "ingest", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "exists and is not a socket; it was left alone" in done.stderr
    assert (tmp_path / "data" / "ingest.sock").is_dir()
