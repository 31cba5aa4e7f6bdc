"""Helpers for end-to-end tests: ``trek-audit serve`` on a free port, a small HTTP client."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from trek_audit.writer import AuditWriter

ADMIN_PASSWORD = "e2e-admin-password"
PAYLOAD_DETAILS = {
    "img": '<img src=x onerror="window.__pwned=1;alert(1)">',
    "script": "<script>window.__pwned=2;alert(2)</script>",
    "link": "javascript:window.__pwned=3",
}


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(data_dir: Path, count: int = 250) -> None:
    """Write ``count`` events to trek.log: every 10th trip.create, two carrying script payloads."""
    with AuditWriter(data_dir / "logs") as writer:
        for n in range(1, count + 1):
            payload = n in (121, count - 1)
            writer.record(
                "trip.create" if n % 10 == 0 else "trip.update",
                user={"id": n % 3 + 1, "username": f"user{n % 3 + 1}", "email": None},
                resource=f"trip/{n}",
                ip="192.0.2.1",
                details=dict(PAYLOAD_DETAILS, n=n) if payload else {"n": n, "title": f"Trip {n}"},
            )


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    pause = threading.Event()
    deadline = timeout / interval
    for _ in range(int(deadline)):
        result = predicate()
        if result:
            return result
        pause.wait(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@dataclass
class Session:
    """A minimal cookie-keeping HTTP client for the running panel."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";", 1)[0]
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def log_in(self, username: str, password: str) -> int:
        _, _, page = self.request("GET", "/login")
        match = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        assert match
        status, _, _ = self.request(
            "POST",
            "/login",
            {"username": username, "password": password, "csrf_token": match.group(1).decode()},
        )
        return status

    def api(self, query: str = "") -> dict[str, Any]:
        status, _, data = self.request("GET", "/api/admin/audit" + query)
        assert status == 200, data
        result: dict[str, Any] = json.loads(data)
        return result


@dataclass
class Panel:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    output: Path


def start_panel(data_dir: Path, output: Path) -> Panel:
    port = free_port()
    env = {
        **os.environ,
        "TREK_DATA_DIR": str(data_dir),
        "TREK_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "trek_audit", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    panel = Panel(f"http://127.0.0.1:{port}", port, data_dir, process, output)

    def up() -> bool:
        assert process.poll() is None, output.read_text()
        try:
            return Session(port).request("GET", "/login")[0] == 200
        except OSError:
            return False

    wait_for(up, timeout=30)
    return panel


def stop_panel(panel: Panel) -> None:
    if panel.process.poll() is None:
        panel.process.send_signal(signal.SIGTERM)
        try:
            panel.process.wait(30)
        except subprocess.TimeoutExpired:
            panel.process.kill()
            panel.process.wait()


def create_account(data_dir: Path, name: str, password: str, role: str) -> None:
    """Make an account the way an operator does: ``trek-audit admin create --password-stdin``."""
    subprocess.run(
        [sys.executable, "-m", "trek_audit", "admin", "create", name, "--role", role]
        + ["--password-stdin"],
        input=password + "\n",
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, "TREK_DATA_DIR": str(data_dir)},
    )


def _missing_browser(message: str) -> NoReturn:
    """Outside CI a missing browser skips with what to install; in CI it fails."""
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the browser tests")
    pytest.skip(message + " to run the browser tests")


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright; skips (fails in CI) when either is missing."""
    if not CHROMIUM.exists():
        _missing_browser(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        )
    try:
        from playwright import sync_api
    except ImportError:
        _missing_browser("the playwright package is missing: pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
