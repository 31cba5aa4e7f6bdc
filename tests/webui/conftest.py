"""Fixtures for the panel: a data directory, rows put straight into audit.db, an app, clients."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trek_audit.store import open_database
from trek_audit.webui import create_app

from .webui_support import ADMIN, VIEWER, insert_rows, log_in, make_row, state_of


@pytest.fixture
def db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = open_database(data_dir / "audit.db")
    yield conn
    conn.close()


@pytest.fixture
def environ(data_dir: Path) -> dict[str, str]:
    """The environment the panel is built from (``create_app`` reads a mapping like os.environ)."""
    return {"TREK_DATA_DIR": str(data_dir), "TREK_SECRET_KEY": "a-test-key-that-is-long-enough"}


@pytest.fixture
def app(environ: dict[str, str]) -> Iterator[Flask]:
    app = create_app(environ)
    state = state_of(app)
    state.accounts.create(*ADMIN, role="admin", email="admin@example.com")
    state.accounts.create(*VIEWER, role="viewer")
    yield app
    state.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    response = log_in(client, *ADMIN)
    assert response.status_code == 302
    return client


@pytest.fixture
def viewer_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    response = log_in(client, *VIEWER)
    assert response.status_code == 302
    return client


@pytest.fixture
def add_rows(db: sqlite3.Connection) -> Callable[..., list[dict[str, Any]]]:
    def add(count: int, start: int = 1, **fields: Any) -> list[dict[str, Any]]:
        rows = [make_row(n, **fields) for n in range(start, start + count)]
        insert_rows(db, rows)
        return rows

    return add
