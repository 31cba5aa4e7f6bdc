"""Helpers for the panel tests: rows put straight into audit.db, logging in, the app's state."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from trek_audit.store.schema import fill_full_text, newest_row_id
from trek_audit.webui.state import EXTENSION, PanelState

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
