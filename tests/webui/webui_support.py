"""Helpers for the panel tests: rows put straight into audit.db, logging in, the app's state."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from trek_audit.store.schema import fill_full_text, newest_row_id
from trek_audit.webui.state import EXTENSION, PanelState
from trek_audit.writer.chain import SEAL_ACTION

ADMIN = ("admin", "admin-password-1")
VIEWER = ("viewer", "viewer-password-1")


def make_row(n: int, **fields: Any) -> dict[str, Any]:
    """An audit_log row for event number n; ``ts`` grows a minute per event."""
    day, minute = divmod(n, 24 * 60)
    row: dict[str, Any] = {
        "event_id": f"evt-{n:08d}",
        "seq": n,
        "ts": f"2026-11-{1 + day:02d}T{minute // 60:02d}:{minute % 60:02d}:00.000000Z",
        "action": "trip.update",
        "user_id": 7,
        "username": "alice",
        "email": "alice@example.com",
        "resource": f"trip/{n}",
        "ip": "192.0.2.7",
        "details": {"n": n},
    }
    row.update(fields)
    if row["details"] is not None and not isinstance(row["details"], str):
        row["details"] = json.dumps(row["details"])
    return row


def insert_rows(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows as the indexer would: their full-text entries and the ``indexed`` counter in
    the same transaction."""
    with conn:
        newest = newest_row_id(conn)
        conn.executemany(
            "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, resource, "
            "ip, details) VALUES (:event_id, :seq, :ts, :action, :user_id, :username, :email, "
            ":resource, :ip, :details)",
            rows,
        )
        fill_full_text(conn, newest)
        conn.execute(
            "UPDATE indexer_state SET value = value + ? WHERE name = 'indexed'", (len(rows),)
        )


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def log_in(client: FlaskClient, username: str, password: str, **environ: Any) -> Any:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base=environ,
    )


def state_of(app: Flask) -> PanelState:
    """The panel's shared state: its accounts, throttle, ended sessions and audit writer."""
    state: PanelState = app.extensions[EXTENSION]
    return state


def json_body(response: TestResponse) -> dict[str, Any]:
    """The JSON object a response carries; the test fails when it carries none."""
    body = response.get_json(silent=True)
    assert isinstance(body, dict), f"not a JSON object: {response.get_data(as_text=True)[:200]!r}"
    return body


def seal_row(seq: int, epoch: int, first_seq: int | None = None) -> dict[str, Any]:
    """The row of a seal line at ``seq`` covering ``first_seq`` .. ``seq - 1``."""
    details = {
        "epoch": epoch,
        "first_seq": seq if first_seq is None else first_seq,
        "last_seq": seq - 1,
        "prev": "ab" * 32,
        "chain": "cd" * 32,
        "key_id": "0123456789abcdef",
        "mac": "ef" * 32,
    }
    return make_row(
        seq,
        action=SEAL_ACTION,
        user_id=None,
        username=None,
        email=None,
        resource=None,
        ip=None,
        details=details,
    )


@contextmanager
def small_log_disk(directory: Path) -> Iterator[Path]:
    """A data directory in ``directory`` whose ``logs/`` is a 64 KiB tmpfs (needs root).

    Where a tmpfs cannot be mounted the test is skipped; in CI (CI set) it fails instead.
    """
    path = directory / "data"
    logs = path / "logs"
    logs.mkdir(parents=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0750", "tmpfs", str(logs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the fail-closed tests")
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(logs)], check=False)
