"""The whole system: ``trek-audit serve`` runs gunicorn and one indexer; events flow through."""

from __future__ import annotations

import signal

from trek_audit.store import is_locked

from .e2e_support import ADMIN_PASSWORD, Panel, Session, start_panel, stop_panel, wait_for


def test_serve_indexes_the_log_and_serves_it(panel: Panel) -> None:
    session = Session(panel.port)
    assert session.request("GET", "/admin/audit")[0] == 302
    assert session.log_in("admin", ADMIN_PASSWORD) == 302
    # Our own login arrives through writer -> trek.log -> indexer -> audit.db -> panel.
    top = wait_for(
        lambda: (e := session.api("?limit=1")["entries"]) and e[0]["action"] == "user.login" and e
    )
    assert top[0]["user"]["username"] == "admin"
    filtered = session.api("?action=trip.create")
    assert filtered["total"] == 25
    status, headers, page = session.request("GET", "/admin/audit")
    assert status == 200
    assert "script-src 'self'" in headers["content-security-policy"]
    assert b"Load more" in page
    assert "server: gunicorn" in "\n".join(f"{k}: {v}" for k, v in headers.items()).lower()


def test_serve_runs_exactly_one_indexer_and_stops_it(panel: Panel) -> None:
    assert is_locked(panel.data_dir)
    output = panel.output.read_text()
    assert "indexer running" in output
    assert "http://127.0.0.1:" in output


def test_second_serve_on_the_same_data_dir_serves_without_a_second_indexer(panel: Panel) -> None:
    second = start_panel(panel.data_dir, panel.data_dir.parent / "second.out")
    try:
        session = Session(second.port)
        assert session.log_in("admin", ADMIN_PASSWORD) == 302
        assert session.api()["total"] > 0
        assert "already runs" in second.output.read_text()
    finally:
        stop_panel(second)
    assert is_locked(panel.data_dir)  # the first indexer is untouched


def test_stopping_serve_stops_its_indexer(tmp_path: object) -> None:
    from pathlib import Path

    data_dir = Path(str(tmp_path)) / "data"
    started = start_panel(data_dir, Path(str(tmp_path)) / "out")
    wait_for(lambda: is_locked(data_dir))
    started.process.send_signal(signal.SIGINT)
    started.process.wait(30)
    wait_for(lambda: not is_locked(data_dir), timeout=30)
    stop_panel(started)
