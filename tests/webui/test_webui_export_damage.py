"""An export that meets a damaged audit.db fails as a failure: before its first byte, or broken off.

The database holds 20,002 events and has pages in its middle overwritten, as when a disk
fails. An export then either answers 503 before sending anything, or (when the damage comes
after the check) ends without the last chunk of its chunked transfer, so that the client
reports a failed download; either way the panel's log says which file and why.
"""

from __future__ import annotations

import http.client
import logging
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from trek_audit.writer.line import decode

from .webui_support import insert_rows, make_row

EVENTS = 20_002
FORMATS = ["csv", "ndjson"]
# Socket buffers small enough that the server cannot send the whole export ahead of the
# client (Linux would let them grow to megabytes, as much as the export itself).
BUFFER = 16 * 1024


@pytest.fixture
def full_db(db: sqlite3.Connection) -> sqlite3.Connection:
    """audit.db with EVENTS events, all in the main file (the WAL checkpointed into it)."""
    for start in range(1, EVENTS + 1, 5000):
        insert_rows(db, [make_row(n) for n in range(start, min(start + 5000, EVENTS + 1))])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def damage_middle_pages(path: Path, conn: sqlite3.Connection, pages: int = 20) -> None:
    """Overwrite ``pages`` pages in the middle of the file with a pattern that is no page."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    count = path.stat().st_size // page_size
    pattern = (bytes(range(256)) * (page_size // 256 + 1))[:page_size]
    with path.open("r+b") as file:
        for page in range(count // 2 - pages // 2, count // 2 + pages // 2):
            file.seek(page * page_size)
            file.write(pattern)


def exports_recorded(data_dir: Path) -> int:
    lines = (data_dir / "logs" / "trek.log").read_bytes().splitlines()
    return sum(decode(line)["action"] == "audit.export" for line in lines)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_of_a_damaged_database_fails_before_its_first_byte(
    admin_client: FlaskClient,
    full_db: sqlite3.Connection,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
    fmt: str,
) -> None:
    damage_middle_pages(data_dir / "audit.db", full_db)
    with caplog.at_level(logging.ERROR):
        response = admin_client.get(f"/admin/audit/export.{fmt}")
    assert response.status_code == 503
    text = response.get_data(as_text=True)
    assert "is damaged" in text and "nothing was exported" in text
    assert "evt-" not in text
    assert f"export refused: {data_dir / 'audit.db'} is damaged" in caplog.text
    assert exports_recorded(data_dir) == 0  # nothing was exported, so no export is recorded


@pytest.fixture
def server(app: Flask) -> Iterator[BaseWSGIServer]:
    """The panel behind a real HTTP/1.1 server on a free port, stopped after the test."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Accepted connections inherit the listening socket's buffer size.
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
    thread = threading.Thread(target=server.serve_forever, name="panel-server")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_damaged_midway_ends_as_a_broken_download_and_a_log_line(
    server: BaseWSGIServer,
    admin_client: FlaskClient,
    full_db: sqlite3.Connection,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
    fmt: str,
) -> None:
    cookie = admin_client.get_cookie("trek_audit_session")
    assert cookie is not None
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.sock = socket.socket()
    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    connection.sock.settimeout(30)
    connection.sock.connect(("127.0.0.1", server.port))
    try:
        with caplog.at_level(logging.ERROR):
            connection.request(
                "GET",
                f"/admin/audit/export.{fmt}",
                headers={"Cookie": f"trek_audit_session={cookie.value}"},
            )
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Transfer-Encoding") == "chunked"
            first = response.read(1000)
            assert b"evt-00020002" in first  # newest first, and well under way
            # The disk fails under the running export. A commit elsewhere makes the reader
            # drop its cached pages, as the running indexer's commits do.
            damage_middle_pages(data_dir / "audit.db", full_db)
            with full_db:
                full_db.execute(
                    "UPDATE indexer_state SET value = value + 1 WHERE name = 'last_indexed_at'"
                )
            with pytest.raises(http.client.IncompleteRead) as broken:
                response.read()
    finally:
        connection.close()
    received = first + broken.value.partial
    assert 1000 < received.count(b"evt-") < EVENTS
    assert "export broken off after" in caplog.text
    assert str(data_dir / "audit.db") in caplog.text
