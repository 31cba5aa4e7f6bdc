"""Sources in the panel: a Source column once there is more than one, the source filter in the
page, the API and the exports, per-source seals, the banner and /metrics naming the source."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from trek_audit.indexer import Indexer
from trek_audit.layout import DataDir
from trek_audit.settings import Settings
from trek_audit.store import AuditQuery, Filter
from trek_audit.store.health import read_health
from trek_audit.store.schema import fill_full_text, newest_row_id
from trek_audit.webui import create_app
from trek_audit.writer.chain import SEAL_ACTION
from trek_audit.writer.line import Event, encode

from .webui_support import json_body, make_row, state_of

TOKEN = "a-scrape-token-of-some-length"


def insert_from(conn: sqlite3.Connection, source: str, rows: list[dict[str, Any]]) -> None:
    """Insert rows of ``source`` as the indexer would (full-text entries and counter included)."""
    with conn:
        newest = newest_row_id(conn)
        conn.executemany(
            "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, resource, "
            "ip, details, source) VALUES (:event_id, :seq, :ts, :action, :user_id, :username, "
            ":email, :resource, :ip, :details, :source)",
            [{**row, "source": source} for row in rows],
        )
        fill_full_text(conn, newest)
        conn.execute(
            "UPDATE indexer_state SET value = value + ? WHERE name = 'indexed'", (len(rows),)
        )


def rows_of(source: str, numbers: range, **fields: Any) -> list[dict[str, Any]]:
    """Rows numbered ``numbers`` with event ids of their own source (each source has its seq)."""
    return [{**make_row(n, **fields), "event_id": f"{source}-{n:06d}"} for n in numbers]


@pytest.fixture
def three_sources(db: sqlite3.Connection) -> None:
    """Rows interleaved by id: local 1-5, web-1 1-5, web-2 1-5, then local 6-10."""
    insert_from(db, "local", rows_of("local", range(1, 6)))
    insert_from(db, "web-1", rows_of("web-1", range(1, 6)))
    insert_from(db, "web-2", rows_of("web-2", range(1, 6)))
    insert_from(db, "local", rows_of("local", range(6, 11)))


def page(client: FlaskClient, query: str = "") -> str:
    response = client.get("/admin/audit" + query)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def shown_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', html)


def api(client: FlaskClient, query: str) -> dict[str, Any]:
    response = client.get("/api/admin/audit" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return json_body(response)


# -- the column and the select ---------------------------------------------------------------


def test_a_single_source_shows_no_source_column_and_no_source_filter(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_from(db, "local", rows_of("local", range(1, 4)))
    html = page(admin_client)
    assert "<th>Source</th>" not in html and 'name="source"' not in html
    assert 'data-sources="shown"' not in html
    assert len(shown_ids(html)) == 3


def test_several_sources_show_the_column_and_a_select_of_every_source(
    admin_client: FlaskClient, three_sources: None
) -> None:
    html = page(admin_client)
    assert "</th><th>Source</th><th>User</th>" in html
    assert 'data-sources="shown"' in html
    start = html.index('id="source-filter"')
    select = html[start : html.index("</select>", start)]
    assert re.findall(r'<option value="([^"]*)"', select) == ["", "local", "web-1", "web-2"]
    assert html.count('<td class="source">web-2</td>') == 5
    assert html.count('<td class="source">local</td>') == 10


# -- the filter in the page, the API and the exports -----------------------------------------


def test_the_page_filters_by_one_source_and_keeps_it_selected(
    admin_client: FlaskClient, three_sources: None
) -> None:
    html = page(admin_client, "?source=web-2")
    assert shown_ids(html) == [f"web-2-{n:06d}" for n in range(5, 0, -1)]
    assert 'data-total="5"' in html
    assert '<option value="web-2" selected>' in html
    assert "export.csv?source=web-2" in html


def test_the_api_filters_by_one_source_or_several(
    admin_client: FlaskClient, three_sources: None
) -> None:
    one = api(admin_client, "?source=web-1")
    assert one["total"] == 5 and {entry["source"] for entry in one["entries"]} == {"web-1"}
    for query in ("?source=web-1&source=web-2", "?source=web-2,web-1", "?source=web-1&source="):
        several = api(admin_client, query)
        expected = {"web-1", "web-2"} if "web-2" in query else {"web-1"}
        assert {entry["source"] for entry in several["entries"]} == expected, query
        assert several["total"] == 5 * len(expected), query


def test_every_api_entry_names_its_source(admin_client: FlaskClient, three_sources: None) -> None:
    entries = api(admin_client, "?limit=500")["entries"]
    assert len(entries) == 20
    assert {entry["id"].rsplit("-", 1)[0] for entry in entries} == {"local", "web-1", "web-2"}
    assert all(entry["id"].startswith(entry["source"] + "-") for entry in entries)


def test_the_api_walks_several_sources_to_the_end_newest_first(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    for start in range(1, 100, 10):  # interleaved in runs of ten
        for source in ("local", "web-1", "web-2"):
            insert_from(db, source, rows_of(source, range(start, start + 10)))
    seen: list[str] = []
    cursor = ""
    for _ in range(100):  # a guard: a cursor that does not advance must not loop forever
        body = api(admin_client, f"?source=local,web-2&limit=7{cursor}")
        assert body["total"] == 200
        seen += [entry["id"] for entry in body["entries"]]
        if body["next"] is None:
            break
        cursor = f"&before={body['next']}"
    assert len(seen) == len(set(seen)) == 200
    assert {entry_id.rsplit("-", 1)[0] for entry_id in seen} == {"local", "web-2"}
    ids = [n for (n,) in db.execute("SELECT id FROM audit_log WHERE source != 'web-1'")]
    by_event = dict(db.execute("SELECT event_id, id FROM audit_log"))
    assert [by_event[event_id] for event_id in seen] == sorted(ids, reverse=True)


@pytest.mark.parametrize(
    "value",
    ["<script>", "a b", ".hidden", "a/b", "x" * 64, ",".join(f"s{n}" for n in range(21))],
    ids=["markup", "space", "dot-first", "slash", "too-long", "too-many"],
)
def test_a_source_that_cannot_be_a_source_name_is_refused_by_name(
    admin_client: FlaskClient, value: str
) -> None:
    response = admin_client.get("/api/admin/audit", query_string={"source": value})
    assert response.status_code == 400
    assert json_body(response)["parameter"] == "source"
    assert admin_client.get("/admin/audit", query_string={"source": value}).status_code == 400


def test_the_csv_export_carries_each_entry_s_source_and_keeps_the_filter(
    admin_client: FlaskClient, three_sources: None
) -> None:
    text = admin_client.get("/admin/audit/export.csv?source=web-1,local").get_data(as_text=True)
    header, *records = list(csv.reader(io.StringIO(text)))
    assert header[-1] == "source"
    sources = [dict(zip(header, record, strict=True))["source"] for record in records]
    assert sorted(sources) == ["local"] * 10 + ["web-1"] * 5


def test_the_ndjson_export_carries_each_entry_s_source(
    admin_client: FlaskClient, three_sources: None
) -> None:
    lines = admin_client.get("/admin/audit/export.ndjson").get_data(as_text=True).splitlines()
    found = [json.loads(line) for line in lines]
    assert len(found) == 20
    assert all(entry["id"].startswith(entry["source"] + "-") for entry in found)


def test_the_export_event_records_the_source_filter(
    admin_client: FlaskClient, app: Flask, three_sources: None
) -> None:
    admin_client.get("/admin/audit/export.ndjson?source=web-2&source=web-1").get_data()
    log_file = state_of(app).data.logs.log_file
    exports = [
        event
        for event in map(json.loads, log_file.read_text(encoding="utf-8").splitlines())
        if event["action"] == "audit.export"
    ]
    assert exports[-1]["details"]["filter"] == {"source": ["web-1", "web-2"]}


def test_the_chart_counts_only_the_chosen_sources(
    db: sqlite3.Connection, three_sources: None
) -> None:
    query = AuditQuery(db)
    assert query.histogram(Filter(source=("web-1",))).total == 5
    assert query.histogram(Filter(source=("local", "web-2"))).total == 15
    assert query.count(Filter(source=("web-2",))) == 5


def test_one_source_pages_are_a_range_scan_of_the_source_index(
    db: sqlite3.Connection, three_sources: None
) -> None:
    plan = AuditQuery(db).explain(Filter(source=("web-2",)), before=1000)
    assert not [step for step in plan if "TEMP B-TREE" in step], plan
    assert any("source" in step for step in plan), plan


def test_sources_seen_lists_each_source_once(db: sqlite3.Connection, three_sources: None) -> None:
    assert AuditQuery(db).sources_seen() == ["local", "web-1", "web-2"]


# -- escaping --------------------------------------------------------------------------------


def test_a_source_name_is_escaped_wherever_it_is_shown(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    # No directory is named like this, but audit.db is a file like any other.
    hostile = '<img src=x onerror="alert(1)">'
    insert_from(db, "local", rows_of("local", range(1, 3)))
    insert_from(db, hostile, rows_of("other", range(1, 3)))
    html = page(admin_client)
    assert hostile not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert {entry["source"] for entry in api(admin_client, "")["entries"]} == {"local", hostile}


# -- seals are per source ----------------------------------------------------------------------


def seal_row(source: str, seq: int, first_seq: int) -> dict[str, Any]:
    details = {"epoch": 1, "first_seq": first_seq, "last_seq": seq - 1}
    return {
        **make_row(seq, action=SEAL_ACTION, user_id=None, username=None, email=None),
        "event_id": f"{source}-seal-{seq}",
        "details": json.dumps(details),
    }


def test_a_row_is_sealed_only_by_a_seal_of_its_own_source(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_from(db, "local", [*rows_of("local", range(1, 6)), seal_row("local", 6, 1)])
    insert_from(db, "web-2", rows_of("web-2", range(1, 6)))
    sealed = {entry["id"]: entry["sealed"] for entry in api(admin_client, "")["entries"]}
    assert all(sealed[f"local-{n:06d}"] for n in range(1, 6))
    assert not any(sealed[f"web-2-{n:06d}"] for n in range(1, 6))
    html = page(admin_client)
    assert '<strong class="seal-source">local</strong>' in html


# -- the banner and /metrics, from a real indexer over several sources ------------------------


def write_lines(log_dir: Path, seqs: list[int]) -> None:
    """Append events numbered ``seqs`` to ``log_dir``/trek.log, as a shipper delivers them."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "trek.log").open("ab") as log:
        for seq in seqs:
            event = {
                "v": 1,
                "id": str(uuid.uuid4()),
                "seq": seq,
                "ts": f"2026-11-26T13:22:{seq:02d}.000000Z",
                "action": "trip.update",
                "user": None,
                "resource": f"trip/{seq}",
                "ip": None,
                "details": None,
            }
            log.write(encode(cast(Event, event)))


@pytest.fixture
def shipped(data_dir: Path) -> DataDir:
    """local with events 1-3; web-2 with 1-2 and 7-9: events 3-6 never arrived."""
    data = DataDir(data_dir)
    write_lines(data.logs.path, [1, 2, 3])
    write_lines(data.source("web-2").path, [1, 2, 7, 8, 9])
    Indexer(data_dir).run_once()
    return data


def test_the_banner_names_the_source_of_a_gap(admin_client: FlaskClient, data_dir: Path) -> None:
    # The local log holds the panel's own events (the login), in order.
    write_lines(DataDir(data_dir).source("web-2").path, [1, 2, 7, 8, 9])
    Indexer(data_dir).run_once()
    html = page(admin_client)
    banner = html[html.index('id="indexer-banner"') : html.index("</div>")]
    assert "Source web-2: 1 gap(s) in the sequence, 4 event(s) missing: seq 3–6." in banner
    assert "Source local:" not in banner


def scrape(environ: dict[str, str]) -> str:
    app = create_app({**environ, "TREK_METRICS_TOKEN": TOKEN})
    try:
        client = app.test_client()
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        return response.get_data(as_text=True)
    finally:
        state_of(app).close()


def labelled(text: str) -> dict[tuple[str, str | None], float]:
    """Every sample by (name, its source label or None)."""
    return {
        (sample.name, sample.labels.get("source")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_carry_a_family_per_source_beside_the_totals(
    environ: dict[str, str], shipped: DataDir
) -> None:
    scraped = labelled(scrape(environ))
    assert scraped["trek_audit_events_indexed_total", None] == 8.0
    assert scraped["trek_audit_source_events_indexed_total", "local"] == 3.0
    assert scraped["trek_audit_source_events_indexed_total", "web-2"] == 5.0
    assert scraped["trek_audit_source_last_seq", "web-2"] == 9.0
    assert scraped["trek_audit_missing_events", None] == 4.0
    assert scraped["trek_audit_source_missing_events", "web-2"] == 4.0
    assert scraped["trek_audit_source_missing_events", "local"] == 0.0
    assert scraped["trek_audit_source_last_seq", "local"] == 3.0
    assert scraped["trek_audit_source_duplicates_dropped_total", "web-2"] == 0.0
    # A total never has a source label, so summing a family never counts an event twice.
    assert not [key for key in scraped if key[0].startswith("trek_audit_events") and key[1]]
    assert ("trek_audit_source_indexer_up", "web-2") not in scraped  # of the whole directory


def test_health_names_the_source_with_missing_events(
    environ: dict[str, str], shipped: DataDir
) -> None:
    report = read_health(Settings.from_env(environ, follower_expected=False))
    assert report.verdict == "degraded"
    assert report.reasons == ("source web-2: 4 events missing in 1 gap",)
