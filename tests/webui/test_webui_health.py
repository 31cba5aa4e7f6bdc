"""GET /healthz for probes, GET /metrics for Prometheus: the same figures as `status --json`."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import TestResponse

from trek_audit.cli import main
from trek_audit.indexer import Indexer
from trek_audit.store import read_status
from trek_audit.store.supervisor import SupervisorState, write_supervisor_state
from trek_audit.webui import create_app
from trek_audit.webui.health import METRICS
from trek_audit.writer import AuditWriter

from .webui_support import ADMIN, insert_rows, json_body, log_in, make_row, state_of

HEALTH_KEYS = {
    "status",
    "indexer_running",
    "indexer_restarts",
    "lag_bytes",
    "last_indexed_at",
    "missing_events",
    "rejected_lines",
}
# The metrics an operator's dashboards and alerts may rely on.
REQUIRED_METRICS = {
    "trek_audit_events_indexed_total",
    "trek_audit_last_seq",
    "trek_audit_lag_bytes",
    "trek_audit_missing_events",
    "trek_audit_rejected_lines_total",
    "trek_audit_incidents_total",
    "trek_audit_indexer_up",
    "trek_audit_indexer_restarts_total",
    "trek_audit_last_indexed_timestamp_seconds",
}
TOKEN = "a-scrape-token-of-some-length"


@contextmanager
def make_app(environ: dict[str, str], **settings: str) -> Iterator[Flask]:
    """A panel built from ``environ`` with ``settings`` added."""
    app = create_app({**environ, **settings})
    try:
        yield app
    finally:
        state_of(app).close()


@pytest.fixture
def token_app(environ: dict[str, str]) -> Iterator[Flask]:
    with make_app(environ, TREK_METRICS_TOKEN=TOKEN) as app:
        yield app


@pytest.fixture
def cron_app(environ: dict[str, str]) -> Iterator[Flask]:
    """A panel where `index --once` runs from cron: no follower is meant to run."""
    with make_app(environ, TREK_FOLLOWER_EXPECTED="false") as app:
        yield app


def healthz(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    assert response.mimetype == "application/json"
    return response.status_code, json_body(response)


def follow(data_dir: Path) -> Indexer:
    """An indexer following the data directory in this process's threads, caught up on exit."""
    return Indexer(data_dir, rescan_interval=0.05)


def caught_up(indexer: Indexer, data_dir: Path) -> None:
    for _ in range(200):
        status = read_status(data_dir)
        if status["lag_bytes"] == 0 and status["indexed"] > 0:
            return
        indexer.stop_event.wait(0.05)
    raise AssertionError("the indexer did not catch up")


def record(data_dir: Path, count: int, **fields: Any) -> None:
    with AuditWriter(data_dir / "logs") as writer:
        for _ in range(count):
            writer.record("trip.update", **fields)


# /healthz


def test_healthz_needs_no_login_and_says_ok_with_exactly_the_documented_keys(
    client: FlaskClient, data_dir: Path
) -> None:
    record(data_dir, 3)
    with follow(data_dir) as indexer:
        caught_up(indexer, data_dir)
        code, body = healthz(client)
    assert code == 200
    assert set(body) == HEALTH_KEYS
    assert body["status"] == "ok"
    assert (body["indexer_running"], body["indexer_restarts"], body["lag_bytes"]) == (True, 0, 0)
    assert (body["missing_events"], body["rejected_lines"]) == (0, 0)
    assert isinstance(body["last_indexed_at"], str)


def test_healthz_without_an_indexer_and_without_serve_is_failing_503(
    client: FlaskClient,
) -> None:
    code, body = healthz(client)
    assert (code, body["status"], body["indexer_running"]) == (503, "failing", False)


def test_healthz_where_no_follower_is_meant_to_run_is_ok_without_one(
    cron_app: Flask, data_dir: Path
) -> None:
    code, body = healthz(cron_app.test_client())
    assert (code, body["status"]) == (200, "ok")


def test_healthz_with_a_gap_is_degraded_200(cron_app: Flask, db: sqlite3.Connection) -> None:
    insert_rows(db, [make_row(1)])
    with db:
        db.execute("INSERT INTO gaps (first_seq, last_seq, detected) VALUES (2, 4, 'now')")
    code, body = healthz(cron_app.test_client())
    assert (code, body["status"], body["missing_events"]) == (200, "degraded", 3)


def test_healthz_with_rejected_lines_is_degraded_200(
    cron_app: Flask, db: sqlite3.Connection
) -> None:
    with db:
        db.execute("UPDATE indexer_state SET value = 2 WHERE name = 'rejected'")
    code, body = healthz(cron_app.test_client())
    assert (code, body["status"], body["rejected_lines"]) == (200, "degraded", 2)


def test_healthz_with_lag_above_the_setting_is_degraded_and_at_it_ok(
    environ: dict[str, str], data_dir: Path
) -> None:
    record(data_dir, 2)
    lag = read_status(data_dir)["lag_bytes"]
    for warn, verdict in ((lag - 1, "degraded"), (lag, "ok")):
        settings = {"TREK_FOLLOWER_EXPECTED": "false", "TREK_LAG_WARN_BYTES": str(warn)}
        with make_app(environ, **settings) as app:
            code, body = healthz(app.test_client())
            assert (code, body["status"], body["lag_bytes"]) == (200, verdict, lag)


def test_healthz_with_an_unreadable_audit_db_is_failing_503(
    cron_app: Flask, data_dir: Path
) -> None:
    (data_dir / "audit.db").write_bytes(b"not a database at all " * 300)
    code, body = healthz(cron_app.test_client())
    assert (code, body["status"]) == (503, "failing")
    assert set(body) == HEALTH_KEYS
    assert body["lag_bytes"] is None and body["missing_events"] is None


def serve_state(data_dir: Path, *, down_for: float | None, restarts: int) -> None:
    """Write serve.json as a live serve would; this process stands for serve."""
    now = datetime.now(UTC)
    write_supervisor_state(
        data_dir,
        SupervisorState(
            pid=os.getpid(),
            indexer_pid=None if down_for is not None else 4242,
            indexer_running=down_for is None,
            indexer_restarts=restarts,
            indexer_down_since=(
                (now - timedelta(seconds=down_for)).isoformat() if down_for is not None else None
            ),
            updated_at=now.isoformat(),
        ),
    )


@pytest.mark.parametrize(
    ("down_for", "code", "verdict"),
    [(20.0, 200, "degraded"), (60.0, 503, "failing"), (600.0, 503, "failing")],
    ids=["down-20-s", "down-a-minute", "down-10-min"],
)
def test_healthz_shows_serve_restarting_its_indexer(
    client: FlaskClient,
    db: sqlite3.Connection,
    data_dir: Path,
    down_for: float,
    code: int,
    verdict: str,
) -> None:
    serve_state(data_dir, down_for=down_for, restarts=3)
    got, body = healthz(client)
    assert (got, body["status"]) == (code, verdict)
    assert (body["indexer_running"], body["indexer_restarts"]) == (False, 3)


def test_healthz_counts_the_restarts_of_a_running_indexer(
    client: FlaskClient, db: sqlite3.Connection, data_dir: Path
) -> None:
    serve_state(data_dir, down_for=None, restarts=5)
    code, body = healthz(client)
    assert (code, body["status"], body["indexer_running"], body["indexer_restarts"]) == (
        200,
        "ok",
        True,
        5,
    )


def test_healthz_shows_no_event_content(cron_app: Flask, data_dir: Path) -> None:
    record(
        data_dir,
        2,
        user={"id": 7, "username": "secret-alice", "email": "alice@example.invalid"},
        resource="trip/the-secret-trip",
        ip="198.51.100.77",
        details={"note": "private-detail"},
    )
    Indexer(data_dir).run_once()
    text = cron_app.test_client().get("/healthz").get_data(as_text=True)
    for secret in ("secret-alice", "alice@example", "the-secret-trip", "198.51.100", "private"):
        assert secret not in text
    assert "trip.update" not in text


def test_the_banner_says_serve_is_restarting_the_indexer(
    db: sqlite3.Connection, data_dir: Path, app: Flask
) -> None:
    serve_state(data_dir, down_for=5.0, restarts=2)
    client = app.test_client()
    assert log_in(client, *ADMIN).status_code == 302
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "The indexer is not running" in html
    assert "trek-audit serve is restarting it (2 restart(s) so far)" in html


# /metrics


def test_metrics_refuse_anonymous_with_401_json_and_no_redirect(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert "Location" not in response.headers
    assert "error" in json_body(response)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_refuse_a_viewer_session(viewer_client: FlaskClient) -> None:
    response = viewer_client.get("/metrics")
    assert response.status_code == 401
    assert "trek_audit" not in response.get_data(as_text=True)


def test_metrics_serve_an_admin_session(admin_client: FlaskClient) -> None:
    response = admin_client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "trek_audit_events_indexed_total" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (f"Bearer {TOKEN}", 200),
        (f"bearer {TOKEN}", 200),
        (f"Bearer {TOKEN}x", 401),
        (f"Bearer {TOKEN[:-1]}", 401),
        ("Bearer ", 401),
        (f"Basic {TOKEN}", 401),
        (None, 401),
    ],
    ids=["right", "scheme-in-lower-case", "longer", "shorter", "empty", "not-bearer", "missing"],
)
def test_metrics_take_the_bearer_token_and_nothing_like_it(
    token_app: Flask, authorization: str | None, code: int
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = token_app.test_client().get("/metrics", headers=headers)
    assert response.status_code == code
    assert ("trek_audit_last_seq" in response.get_data(as_text=True)) == (code == 200)


def test_without_a_token_set_no_bearer_header_opens_the_metrics(client: FlaskClient) -> None:
    for authorization in ("Bearer ", "Bearer", "Bearer none"):
        response = client.get("/metrics", headers={"Authorization": authorization})
        assert response.status_code == 401


def scrape(app: Flask) -> TestResponse:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def samples(text: str) -> dict[str, float]:
    """Every sample of a scrape, by sample name (the metrics here carry no labels)."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_metric_has_help_and_type_lines(token_app: Flask) -> None:
    text = scrape(token_app).get_data(as_text=True)
    names = {spec.name for spec in METRICS}
    assert names >= REQUIRED_METRICS
    for spec in METRICS:
        assert f"# HELP {spec.name} " in text
        assert f"# TYPE {spec.name} {spec.kind}\n" in text


def status_json(data_dir: Path, *env: tuple[str, str]) -> dict[str, Any]:
    result = CliRunner().invoke(
        main, ["status", "--json", "--data-dir", str(data_dir)], env=dict(env)
    )
    body: dict[str, Any] = json.loads(result.output)
    return body


def expected_value(key: str, figures: dict[str, Any]) -> float | None:
    value = figures[key]
    if key == "status":
        return {"ok": 0.0, "degraded": 1.0, "failing": 2.0}[value]
    if key == "last_indexed_at":
        return datetime.fromisoformat(value).timestamp() if value else None
    return None if value is None else float(value)


def test_metric_values_equal_what_status_json_says(token_app: Flask, data_dir: Path) -> None:
    record(data_dir, 4)
    Indexer(data_dir).run_once()
    with (data_dir / "logs" / "trek.log").open("ab") as log:  # a rejected line, then lag
        log.write(b"not an event\n")
    Indexer(data_dir).run_once()
    record(data_dir, 1)
    serve_state(data_dir, down_for=None, restarts=2)
    scraped = samples(scrape(token_app).get_data(as_text=True))
    figures = status_json(data_dir)
    assert figures["rejected_lines"] == 1 and figures["lag_bytes"] > 0
    assert figures["indexer_restarts"] == 2 and figures["last_indexed_at"] is not None
    for spec in METRICS:
        assert scraped.get(spec.name) == expected_value(spec.key, figures), spec.name
    assert scraped["trek_audit_indexer_up"] == 1.0
    assert scraped["trek_audit_events_indexed_total"] == 4.0


def test_metrics_while_audit_db_is_unreadable_carry_no_invented_figures(
    token_app: Flask, data_dir: Path
) -> None:
    (data_dir / "audit.db").write_bytes(b"garbage " * 1000)
    text = scrape(token_app).get_data(as_text=True)
    scraped = samples(text)
    assert scraped["trek_audit_health_status"] == 2.0
    assert "trek_audit_lag_bytes" not in scraped
    assert "# TYPE trek_audit_lag_bytes gauge" in text


def test_each_scrape_reads_the_status_afresh(token_app: Flask, data_dir: Path) -> None:
    assert samples(scrape(token_app).get_data(as_text=True))["trek_audit_last_seq"] == 0.0
    record(data_dir, 3)
    Indexer(data_dir).run_once()
    assert samples(scrape(token_app).get_data(as_text=True))["trek_audit_last_seq"] == 3.0


def test_metrics_stay_out_of_the_global_registry(
    token_app: Flask, data_dir: Path, tmp_path: Path
) -> None:
    scrape(token_app)
    assert prometheus_client.REGISTRY.get_sample_value("trek_audit_last_seq") is None
    other = tmp_path / "other"
    other.mkdir()
    record(other, 2)
    Indexer(other).run_once()
    with make_app(
        {"TREK_DATA_DIR": str(other), "TREK_SECRET_KEY": "k" * 32}, TREK_METRICS_TOKEN=TOKEN
    ) as second:
        assert samples(scrape(second).get_data(as_text=True))["trek_audit_last_seq"] == 2.0
    assert samples(scrape(token_app).get_data(as_text=True))["trek_audit_last_seq"] == 0.0


def test_the_readme_lists_every_metric_and_the_key_it_equals() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Health and metrics", 1)[1].split("\n### ", 1)[0]
    for spec in METRICS:
        assert f"| `{spec.name}` | {spec.kind}" in section, spec.name
        assert f"| `{spec.key}`" in section, spec.key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get_healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def poll(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)


def test_healthz_of_a_real_serve_shows_its_indexer_down_then_restarted(data_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "TREK_DATA_DIR": str(data_dir), "TREK_ADMIN_PASSWORD": "a long password"}
    serve = subprocess.Popen(
        [sys.executable, "-m", "trek_audit", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: list[tuple[int, dict[str, Any]]] = []

    def healthz_is(code: int, **fields: object) -> bool:
        try:
            got = get_healthz(port)
        except OSError:
            return False  # not listening yet
        seen.append(got)
        return got[0] == code and all(got[1].get(k) == v for k, v in fields.items())

    try:
        poll(lambda: healthz_is(200, status="ok", indexer_running=True), "serve to be healthy")
        child = json.loads((data_dir / "serve.json").read_text())["indexer_pid"]
        os.kill(child, signal.SIGKILL)
        poll(lambda: healthz_is(200, status="degraded", indexer_running=False), "degraded")
        poll(
            lambda: healthz_is(200, status="ok", indexer_running=True, indexer_restarts=1),
            "the restarted indexer",
        )
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.wait()
    assert serve.returncode == 0, seen[-3:]
