"""The indexer banner: gaps, rejected lines, lag and a stopped indexer, with their figures."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask.testing import FlaskClient

from trek_audit.indexer import Indexer

from .webui_support import insert_rows, json_body, make_row


def test_banner_shows_gaps_and_rejected_lines(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(db, [make_row(1)])
    with db:
        db.execute("INSERT INTO gaps (first_seq, last_seq, detected) VALUES (5, 9, 'now')")
        db.execute("UPDATE indexer_state SET value = 3 WHERE name = 'rejected'")
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert 'id="indexer-banner"' in html
    assert "seq 5–9" in html and "5 event(s) missing" in html
    assert "3 log line(s) were rejected" in html
    assert "not running" in html


def test_banner_shows_bytes_behind(admin_client: FlaskClient, data_dir: Path) -> None:
    # The login was written to trek.log; nothing indexed it.
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "behind by" in html and "bytes of log" in html


def test_no_banner_while_the_indexer_runs_and_is_caught_up(
    admin_client: FlaskClient, data_dir: Path
) -> None:
    with Indexer(data_dir, rescan_interval=0.05) as indexer:  # indexes in its own thread
        for _ in range(200):
            body = json_body(admin_client.get("/api/admin/audit"))
            if body["total"] >= 1:
                break
            indexer.stop_event.wait(0.05)
        html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert 'id="indexer-banner"' not in html, html[html.find("banner") :][:400]
