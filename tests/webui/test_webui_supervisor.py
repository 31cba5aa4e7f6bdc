"""serve's parts, one at a time: restart pacing, children that die with serve, the port, the
block that ends serve's start."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from trek_audit.webui.children import describe_exit
from trek_audit.webui.serve import CannotListen, Listener, ready_block
from trek_audit.webui.supervisor import Backoff


def test_restarts_wait_one_second_then_twice_as_long_each_time_up_to_thirty() -> None:
    backoff = Backoff()
    assert [backoff.delay(ran_for=2.0) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_minute_of_good_running_brings_the_pause_back_to_one_second() -> None:
    backoff = Backoff()
    for _ in range(4):
        backoff.delay(ran_for=0.5)
    assert backoff.delay(ran_for=59.0) == 16
    assert backoff.delay(ran_for=60.0) == 1
    assert backoff.delay(ran_for=3.0) == 2


@pytest.mark.parametrize(
    ("status", "words"),
    [(0, "exited with status 0"), (1, "exited with status 1"), (-9, "was killed by SIGKILL")],
    ids=["clean", "failed", "killed"],
)
def test_an_exit_status_is_told_in_words(status: int, words: str) -> None:
    assert describe_exit(status) == words


# A middle process starts a child that asks to die with it, prints the child's pid and
# waits; the test kills the middle process outright.
MIDDLE = """
import os, signal, subprocess, sys, time
from functools import partial
from trek_audit.webui.children import die_with_parent
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"],
    preexec_fn=partial(die_with_parent, signal.SIGTERM, os.getpid()),
)
print(child.pid, flush=True)
time.sleep(60)
"""


def ended(pid: int) -> bool:
    """Gone, or a zombie: ended, waiting only for its new parent to collect its status."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_that_asked_to_die_with_its_parent_ends_when_the_parent_is_killed() -> None:
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE], stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    child = int(middle.stdout.readline())
    middle.kill()
    middle.wait()
    middle.stdout.close()
    pause = threading.Event()
    for _ in range(40):
        if ended(child):
            break
        pause.wait(0.05)
    else:
        subprocess.run(["kill", "-9", str(child)], check=False)
        pytest.fail("the child outlived its killed parent by 2 s")


def test_a_port_in_use_is_refused_at_once_with_a_message_that_says_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotListen) as refused:
            Listener.bind("127.0.0.1", port)
    message = str(refused.value)
    assert "\n" not in message
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert f"make run PORT={port + 1}" in message
    assert f"trek-audit serve --port {port + 1}" in message


def test_port_zero_is_shown_as_the_port_the_system_picked() -> None:
    listener = Listener.bind("127.0.0.1", 0)
    try:
        assert listener.sock is not None
        port = listener.sock.getsockname()[1]
        assert port > 0
        assert listener.url == f"http://127.0.0.1:{port}/"
        assert listener.address == f"fd://{listener.sock.fileno()}"
    finally:
        listener.close()


def test_the_ready_block_ends_with_the_url_then_the_first_password_between_rules() -> None:
    first_login = [
        "created account 'admin' with password: s3cret",
        "  (shown only this once; change it under Password after logging in)",
    ]
    lines = ready_block("http://127.0.0.1:5000/", Path("/srv/data"), first_login).splitlines()
    assert lines[-1] == lines[1] == "=" * 72
    assert lines[-4] == "panel: http://127.0.0.1:5000/"
    assert lines[-3:-1] == first_login


# A process that runs serve's gunicorn post_fork hook as a worker would, then asks the kernel
# which signal it will get when its parent dies (PR_GET_PDEATHSIG).
WORKER = """
import ctypes, os
from types import SimpleNamespace
from trek_audit.webui.serve import gunicorn_options
gunicorn_options("127.0.0.1", 0, 1)["post_fork"](SimpleNamespace(pid=os.getppid()), None)
signal = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(signal), 0, 0, 0)
print(signal.value)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_each_gunicorn_worker_is_killed_when_its_master_dies_even_mid_request() -> None:
    done = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == signal.SIGKILL
