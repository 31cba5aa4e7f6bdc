"""``trek-audit serve``: the panel on gunicorn plus exactly one indexer for the data directory.

serve binds the port, creates what the panel needs on first start, then hands over to its
supervisor (``supervisor.Supervisor``), which runs the indexer (``python -m trek_audit
index``), the ingest server when ``TREK_INGEST_SOCKET`` is set (``python -m trek_audit
ingest``) and the gunicorn master as child processes. No thread of the indexer or of the
ingest server ever lives in the gunicorn master, whose forks would copy it half-alive.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from trek_audit.layout import DIR_MODE
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriter
from trek_audit.writer.ingest import SocketPathError, check_socket_path

from .account_change import account_change
from .accounts import Accounts
from .accounts_db import AccountsDB
from .children import die_with_parent
from .secret_key import load_or_create_secret_key
from .supervisor import Supervisor

__all__ = [
    "CannotListen",
    "Listener",
    "PanelServer",
    "default_workers",
    "ensure_admin",
    "gunicorn_options",
    "ready_block",
    "serve",
]

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


def ensure_admin(settings: Settings, echo: Echo) -> None:
    """On first start, create ``admin`` with TREK_ADMIN_PASSWORD or a random password shown once.

    Like every account change, it happens only if its ``admin.user_create`` event is recorded:
    when the log cannot be written, AuditWriteError is raised and no account exists.
    """
    # Closed before gunicorn forks: no connection may cross a fork.
    with AccountsDB(settings.data.accounts_db) as db:
        if Accounts(db).has_admin():
            return
        password = settings.admin_password or secrets.token_urlsafe(12)
        with account_change(db) as accounts, AuditWriter.from_settings(settings) as writer:
            account = accounts.create("admin", password, "admin")
            writer.record(
                "admin.user_create",
                resource=account.username,
                details=account.creation_details(via="first start"),
            )
    if settings.admin_password:
        echo("created account 'admin' with the password from TREK_ADMIN_PASSWORD")
    else:
        echo(f"created account 'admin' with password: {password}")
        echo("  (shown only this once; change it under Password after logging in)")


def serve(settings: Settings, host: str, port: int, workers: int, echo: Echo, warn: Echo) -> int:
    """Run the indexer and the panel under a supervisor until stopped; the exit status.

    Raises CannotListen, before anything is created, when ``host:port`` cannot be bound or
    the ingest socket (``TREK_INGEST_SOCKET``) is taken.
    """
    ingest_socket = (
        Path(os.path.abspath(settings.ingest_socket)) if settings.ingest_socket else None
    )
    if ingest_socket is not None:
        try:
            check_socket_path(ingest_socket)
        except SocketPathError as error:
            raise CannotListen(f"cannot take events on TREK_INGEST_SOCKET: {error}") from None
    listener = Listener.bind(host, port)
    try:
        data = settings.data
        data.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        data.log_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if not settings.secret_key:
            load_or_create_secret_key(data.secret_key)  # once, before the workers race for it
        first_login: list[str] = []
        ensure_admin(settings, first_login.append)  # shown in the ready block, not before
        block = ready_block(listener.url, data.root.resolve(), first_login, ingest_socket)

        def when_ready(_server: object) -> None:
            echo(block)

        options = gunicorn_options(host, port, workers)
        options["bind"] = listener.address
        options["when_ready"] = when_ready

        def run_panel() -> int:
            listener.handed_over()
            PanelServer(settings, options).run()
            return 0

        supervisor = Supervisor(data.root, echo, warn, ingest_socket=ingest_socket)
        status = supervisor.run(run_panel, forked=listener.close)
        if not supervisor.panel_started:
            for line in first_login:  # stopped before the ready block: the password is not lost
                echo(line)
        return status
    finally:
        listener.close()


def ready_block(
    url: str, data_root: Path, first_login: list[str], ingest_socket: Path | None = None
) -> str:
    """What serve prints once gunicorn listens: the last lines of its start, set off by rules.

    The URL and, on first start, the admin password close it, so that they are what a new
    user sees last.
    """
    rule = "=" * 72
    lines = [
        "",
        rule,
        f"trek-audit serves {data_root} (Ctrl-C stops the panel and the indexer)",
        *([f"ingest socket: {ingest_socket}"] if ingest_socket is not None else []),
        f"panel: {url}",
        *first_login,
        rule,
    ]
    return "\n".join(lines)


class CannotListen(Exception):
    """serve cannot listen on the address it was given (in use, not local, not allowed)."""


class Listener:
    """The panel's listening socket, bound by serve and handed to gunicorn (``fd://``).

    Binding it here lets a port already in use end serve at once with a message that says
    what to do, where gunicorn would retry for five seconds and then print a traceback-like
    error; and ``--port 0`` names the port the system picked.
    """

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock: socket.socket | None = sock
        port = sock.getsockname()[1]
        self.address = f"fd://{sock.fileno()}"
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    @classmethod
    def bind(cls, host: str, port: int) -> Listener:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        # As gunicorn does: a restart is not refused for connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:
                raise CannotListen(
                    f"port {port} on {host} is already in use; pick another port with "
                    f"`make run PORT={port + 1}` or `trek-audit serve --port {port + 1}`"
                ) from None
            reason = error.strerror or str(error)
            raise CannotListen(f"cannot listen on {host} port {port}: {reason}") from None
        return cls(sock, host)

    def handed_over(self) -> None:
        """In the panel child: gunicorn owns the descriptor now, and closes it itself."""
        if self.sock is not None:
            self.sock.detach()
            self.sock = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


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
        # The control socket's default path is one per user ($XDG_RUNTIME_DIR/gunicorn.ctl),
        # which two panels would share; serve is controlled by signals.
        "control_socket_disable": True,
        "post_fork": _die_with_master,
    }


def _die_with_master(server: Any, worker: Any) -> None:
    """In each worker: end with the gunicorn master, even if it is killed outright.

    SIGKILL: a worker without its master has lost its supervisor and soon its socket, and
    everything a request writes is safe against a kill (trek.log, accounts.db).
    """
    die_with_parent(signal.SIGKILL, server.pid)


def default_workers() -> int:
    return max(2, min(4, (os.cpu_count() or 1) * 2))
