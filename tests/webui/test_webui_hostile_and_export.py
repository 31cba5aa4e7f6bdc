"""Hostile values come back escaped; exports stream, neutralise formulas and are recorded."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from xml.etree import ElementTree

import pytest
from flask.testing import FlaskClient

from trek_audit.store import Histogram
from trek_audit.webui.chart import render_svg
from trek_audit.writer.line import decode

from .webui_support import insert_rows, json_body, make_row, state_of

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "'><svg onload=alert(1)>",
]


@pytest.fixture
def hostile(db: sqlite3.Connection) -> list[str]:
    rows = []
    for n, payload in enumerate(PAYLOADS, 1):
        rows.append(
            make_row(
                n,
                event_id=f"evt-{n}-{payload}",
                username=payload,
                email=payload,
                resource=payload,
                ip=payload,
                details={"note": payload, payload: [payload]},
            )
        )
    insert_rows(db, rows)
    return PAYLOADS


def test_hostile_values_are_escaped_in_the_page(
    admin_client: FlaskClient, hostile: list[str]
) -> None:
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "<svg onload" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript:' not in html and 'src="javascript:' not in html


def test_hostile_filter_values_are_escaped_in_the_form(
    admin_client: FlaskClient, hostile: list[str]
) -> None:
    from urllib.parse import urlencode

    query = urlencode({"user": PAYLOADS[1], "q": PAYLOADS[0], "ip": PAYLOADS[2]})
    html = admin_client.get("/admin/audit?" + query).get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert 'value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in html


def test_hostile_values_round_trip_exactly_in_json(
    admin_client: FlaskClient, hostile: list[str]
) -> None:
    response = admin_client.get("/api/admin/audit")
    assert response.mimetype == "application/json"
    entries = json_body(response)["entries"]
    assert {e["user"]["username"] for e in entries} == set(PAYLOADS)
    assert {e["details"]["note"] for e in entries} == set(PAYLOADS)
    # JSON keeps the exact text; it is never rendered as HTML: JSON type and no sniffing.
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_csv_export_neutralises_formulas_and_keeps_values(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(
        db,
        [
            make_row(
                1,
                username='=HYPERLINK("http://x")',
                resource="+1+1",
                ip="-2",
                email="@SUM(A1)",
                details={"a": "<script>alert(1)</script>"},
            )
        ],
    )
    response = admin_client.get("/admin/audit/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    header, row = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    record = dict(zip(header, row, strict=True))
    assert record["username"] == '\'=HYPERLINK("http://x")'
    assert record["resource"] == "'+1+1"
    assert record["ip"] == "'-2"
    assert record["email"] == "'@SUM(A1)"
    assert json.loads(record["details"]) == {"a": "<script>alert(1)</script>"}


def test_ndjson_export_is_one_object_per_line(
    admin_client: FlaskClient, hostile: list[str]
) -> None:
    response = admin_client.get("/admin/audit/export.ndjson")
    assert response.mimetype == "application/x-ndjson"
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == len(PAYLOADS)
    assert {json.loads(line)["resource"] for line in lines} == set(PAYLOADS)


def test_export_streams_every_row_of_the_filter_in_batches(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(
        db, [make_row(n, action="trip.create" if n % 2 else "trip.delete") for n in range(1, 2502)]
    )
    response = admin_client.get("/admin/audit/export.ndjson?action=trip.create")
    assert response.is_streamed
    chunks = list(response.iter_encoded())  # the generator's pieces, one per batch
    assert len(chunks) >= 2
    lines = b"".join(chunks).splitlines()
    assert len(lines) == 1251
    assert {json.loads(line)["action"] for line in lines} == {"trip.create"}
    response.close()


def test_export_is_recorded_with_its_filter(
    admin_client: FlaskClient, data_dir: Path, db: object
) -> None:
    admin_client.get("/admin/audit/export.csv?action=user.login&q=%3Cb%3E").get_data()
    last = decode((data_dir / "logs" / "trek.log").read_bytes().splitlines()[-1])
    assert last["action"] == "audit.export"
    assert last["user"] is not None and last["user"]["username"] == "admin"
    assert last["details"] == {"format": "csv", "filter": {"action": "user.login", "q": "<b>"}}


def test_a_head_request_exports_nothing_and_records_nothing(
    admin_client: FlaskClient, data_dir: Path, db: object
) -> None:
    before = (data_dir / "logs" / "trek.log").read_bytes()
    response = admin_client.head("/admin/audit/export.ndjson")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert (data_dir / "logs" / "trek.log").read_bytes() == before


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_chart_text_is_escaped_in_elements_and_attributes(payload: str) -> None:
    """Every text in the SVG (title, labels, tooltips) is text, never markup."""
    histogram = Histogram("hour", [(payload, 3), ("2026-11-26T13", 0), (payload + "2", 1)])
    root = ElementTree.fromstring(render_svg(histogram, payload))  # noqa: S314 - our own output
    tags = {element.tag.rsplit("}", 1)[-1] for element in root.iter()}
    assert tags <= {"svg", "title", "rect", "line", "text"}
    assert root.get("aria-label") == payload
    titles = [element.text for element in root.iter("{http://www.w3.org/2000/svg}title")]
    assert titles == [payload, f"{payload} UTC: 3", f"{payload}2 UTC: 1"]


def test_chart_is_an_svg_image_for_a_hostile_filter(
    admin_client: FlaskClient, hostile: list[str]
) -> None:
    response = admin_client.get("/admin/audit/chart.svg?user=" + "%3Cscript%3E")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    ElementTree.fromstring(response.get_data())  # noqa: S314 - our own output


def test_export_refused_when_the_audit_log_cannot_record_it(
    admin_client: FlaskClient, db: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trek_audit.writer import AuditWriteError

    insert_rows(db, [make_row(1)])
    writer = state_of(admin_client.application).writer

    def fail(*args: object, **kwargs: object) -> None:
        raise AuditWriteError("cannot append: No space left on device", "trek.log", None)

    monkeypatch.setattr(writer, "record", fail)
    response = admin_client.get("/admin/audit/export.csv")
    assert response.status_code == 503
    assert b"evt-00000001" not in response.data


def test_table_row_shows_time_user_action_description_and_details(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(
        db,
        [
            make_row(
                1,
                action="user.login_failed",
                user_id=None,
                username=None,
                email=None,
                details={"username": "mallory"},
            )
        ],
    )
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert (
        '<time datetime="2026-11-01T00:01:00.000000Z" title="2026-11-01T00:01:00.000000Z">' in html
    )
    assert '<span class="anonymous">anonymous</span>' in html
    assert '<code title="Login attempt failed">user.login_failed</code>' in html
    assert (
        "<details><summary>{&#34;username&#34;:&#34;mallory&#34;}</summary>"
        "<pre>{\n  &#34;username&#34;: &#34;mallory&#34;\n}</pre>" in html
    )
    assert '<script src="/static/audit.js" defer></script>' in html
