"""``trek-audit serve``: the panel on gunicorn plus exactly one indexer for the data directory.

The indexer runs as a child process (``python -m trek_audit index``), started before
gunicorn forks its workers and stopped when gunicorn exits; no thread of it ever lives in
the gunicorn master, whose forks would copy it half-alive.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from trek_audit.settings import Settings
from trek_audit.store import holder_pid, is_locked

from .accounts import Accounts
from .accounts_db import AccountsDB
from .secret_key import load_or_create_secret_key

__all__ = ["IndexerProcess", "PanelServer", "ensure_admin", "gunicorn_options", "serve"]

Echo = Callable[[str], None]


class PanelServer(BaseApplication):
    """gunicorn running ``create_app(settings)`` in each worker."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from .app import create_app

        return create_app(self.settings)


class IndexerProcess:
    """The indexer child process: started unless another indexer holds the data directory."""

    def __init__(self, data_dir: Path, echo: Echo) -> None:
        self.data_dir = data_dir
        self.echo = echo
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> IndexerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if is_locked(self.data_dir):
            self._report_other()
            return
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "trek_audit",
                "index",
                "--data-dir",
                str(self.data_dir),
                "--quiet",
            ],
            # Its own process group: Ctrl-C reaches gunicorn, which then stops us, and we stop it.
            start_new_session=True,
        )
        # Wait until it holds the lock (or gave up because another indexer just took it).
        ready = threading.Event()
        for _ in range(100):
            if self.process.poll() is not None or is_locked(self.data_dir):
                break
            ready.wait(0.05)
        if self.process.poll() is not None:
            self.process = None
            if is_locked(self.data_dir):
                self._report_other()
            else:
                self.echo("warning: the indexer exited at once; the panel shows what is indexed")
            return
        self.echo(f"indexer running (pid {self.process.pid}) on {self.data_dir}")

    def _report_other(self) -> None:
        pid = holder_pid(self.data_dir)
        who = f"pid {pid}" if pid else "another process"
        self.echo(
            f"an indexer ({who}) already runs on {self.data_dir}; serving without starting one"
        )

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # the indexer commits what it read, then exits
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_admin(settings: Settings, echo: Echo) -> None:
    """On first start, create ``admin`` with TREK_ADMIN_PASSWORD or a random password shown once."""
    # Closed before gunicorn forks: no connection may cross a fork.
    with AccountsDB(settings.data.accounts_db) as db:
        accounts = Accounts(db)
        if accounts.has_admin():
            return
        password = settings.admin_password or secrets.token_urlsafe(12)
        accounts.create("admin", password, "admin")
    if settings.admin_password:
        echo("created account 'admin' with the password from TREK_ADMIN_PASSWORD")
    else:
        echo(f"created account 'admin' with password: {password}")
        echo("  (shown only this once; change it under Password after logging in)")


def serve(settings: Settings, host: str, port: int, workers: int, echo: Echo) -> None:
    """Run the indexer child and gunicorn in the foreground until gunicorn stops."""
    data = settings.data
    data.root.mkdir(parents=True, exist_ok=True)
    data.log_dir.mkdir(parents=True, exist_ok=True)
    if not settings.secret_key:
        load_or_create_secret_key(data.secret_key)  # once, before the workers race for it
    ensure_admin(settings, echo)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def when_ready(_server: object) -> None:
        echo(f"trek-audit panel on {url}  (data: {data.root.resolve()}; Ctrl-C stops)")

    options = gunicorn_options(host, port, workers)
    options["when_ready"] = when_ready
    with IndexerProcess(data.root, echo):
        PanelServer(settings, options).run()


def gunicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """The gunicorn settings ``serve`` runs with (the benchmark runs the same ones)."""
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "timeout": 60,
        "graceful_timeout": 10,
        "proc_name": "trek-audit",
        "preload_app": False,
    }


def default_workers() -> int:
    return max(2, min(4, (os.cpu_count() or 1) * 2))
