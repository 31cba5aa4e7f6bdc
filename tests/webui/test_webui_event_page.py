"""An event's own page and JSON: every field, its file and exact line, its seal, its neighbours;
hostile values escaped everywhere; unknown ids 404 and ids of no event's shape 400."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trek_audit.indexer import Indexer
from trek_audit.webui.tokens import TokenStore
from trek_audit.writer import AuditWriter, decode

from .page_support import csp_problems, get_page, parse
from .webui_support import insert_rows, json_body, make_row, seal_row, state_of

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def neighbour_rows(page: Any) -> list[tuple[str, bool]]:
    rows = page.by_id("neighbours").find("tbody").find_all("tr")
    return [(str(row.get("data-row")), "current" in row.classes) for row in rows]


# -- events written to trek.log and indexed -----------------------------------------------------


class Written:
    """What ``written`` wrote: the events, and which were in files since rotated away."""

    def __init__(self, gone: list[dict[str, Any]], kept: list[dict[str, Any]]) -> None:
        self.gone = gone
        self.kept = kept


@pytest.fixture
def written(data_dir: Path) -> Written:
    """Ten events indexed, then rotated away (one backup of 2 KiB files kept), then thirty more
    indexed, the last one with hostile values in every field."""
    logs = data_dir / "logs"
    with AuditWriter(logs, max_bytes=2048, backups=1, fast_path=False) as writer:
        gone = [dict(writer.record("trip.update", resource=f"trip/{n}")) for n in range(10)]
        Indexer(data_dir).run_once()
        kept = [dict(writer.record("trip.create", resource=f"trip/{n}")) for n in range(29)]
        kept.append(
            dict(
                writer.record(
                    "trip.update",
                    user={"id": 7, "username": HOSTILE, "email": HOSTILE},
                    resource=HOSTILE,
                    ip=HOSTILE,
                    details={HOSTILE: HOSTILE},
                )
            )
        )
    Indexer(data_dir).run_once()
    return Written(gone, kept)


def line_of(data_dir: Path, event_id: str) -> tuple[str, bytes]:
    for path in sorted((data_dir / "logs").glob("trek.log*")):
        for line in path.read_bytes().splitlines():
            if event_id.encode() in line:
                return str(path.relative_to(data_dir)), line
    raise AssertionError(f"{event_id} is in no log file")


def test_the_page_shows_the_file_and_the_exact_line(
    written: Written, admin_client: FlaskClient, data_dir: Path
) -> None:
    event = written.kept[-2]
    page = get_page(admin_client, f"/admin/audit/event/{event['id']}")
    file, line = line_of(data_dir, event["id"])
    assert page.by_id("field-file").find("code").text == file
    assert page.by_id("raw-line").text == line.decode()
    assert page.by_id("field-seq").text == str(event["seq"])
    assert page.by_id("field-id").text == event["id"]
    assert page.by_id("field-action").find("code").text == "trip.create"
    assert page.by_id("field-resource").text == event["resource"]
    assert page.by_id("field-source").text == "local"
    assert not page.has_id("raw-note")


def test_a_rotated_away_line_is_said_to_be_gone(
    written: Written, admin_client: FlaskClient
) -> None:
    page = get_page(admin_client, f"/admin/audit/event/{written.gone[0]['id']}")
    assert not page.has_id("raw-line")
    note = page.by_id("raw-note").text
    assert "rotated away" in note
    assert page.by_id("field-file").find("span", cls="gone").text == "(no longer on disk)"


def test_hostile_values_are_text_in_every_field_and_in_the_raw_line(
    written: Written, admin_client: FlaskClient, data_dir: Path
) -> None:
    event = written.kept[-1]
    response = admin_client.get(f"/admin/audit/event/{event['id']}")
    html = response.get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    page = parse(html)
    assert csp_problems(page) == []
    assert page.by_id("field-resource").text == HOSTILE
    assert page.by_id("field-ip").text == HOSTILE
    assert page.by_id("field-user").find("span", cls="username").text == HOSTILE
    assert page.by_id("field-user").find("span", cls="email").text == HOSTILE
    assert json.loads(page.by_id("field-details").text) == {HOSTILE: HOSTILE}
    assert page.by_id("raw-line").text == line_of(data_dir, event["id"])[1].decode()
    assert page.find("title").text.startswith("Event " + event["id"])


def test_the_json_has_every_field_the_file_and_the_line(
    written: Written, admin_client: FlaskClient, data_dir: Path
) -> None:
    event = written.kept[-1]
    body = json_body(admin_client.get(f"/api/admin/audit/event/{event['id']}"))
    assert body["event"]["id"] == event["id"] and body["event"]["seq"] == event["seq"]
    assert body["event"]["resource"] == HOSTILE and body["event"]["details"] == {HOSTILE: HOSTILE}
    file, line = line_of(data_dir, event["id"])
    assert body["file"] == {"path": file, "kept": True, "note": None}
    assert body["raw"] == line.decode()
    assert body["seal"] is None
    assert [entry["id"] for entry in body["older"]] == [
        e["id"] for e in reversed(written.kept[-11:-1])
    ]
    assert body["newer"] == []
    assert body["table"].startswith("/admin/audit?before=")


# -- rows put straight into audit.db --------------------------------------------------------------


@pytest.fixture
def sealed_rows(db: sqlite3.Connection) -> None:
    """Events 1-9, a seal of epoch 1 covering 1-9 at 10, events 11-30 not yet sealed."""
    rows = [make_row(n) for n in range(1, 10)]
    rows.append(seal_row(10, epoch=1, first_seq=1))
    rows += [make_row(n) for n in range(11, 31)]
    insert_rows(db, rows)


def test_the_neighbours_are_ten_newer_and_ten_older_newest_first_this_one_marked(
    admin_client: FlaskClient, sealed_rows: None
) -> None:
    page = get_page(admin_client, "/admin/audit/event/evt-00000015")
    # Row 10 is a seal line: left out, so the ten older reach back to row 4.
    expected = (
        [str(n) for n in range(25, 15, -1)]
        + ["15"]
        + [str(n) for n in (14, 13, 12, 11, 9, 8, 7, 6, 5, 4)]
    )
    assert [row for row, _ in neighbour_rows(page)] == expected
    assert [row for row, current in neighbour_rows(page) if current] == ["15"]
    links = [a.get("href") for a in page.by_id("neighbours").find_all("a")]
    assert (
        "/admin/audit/event/evt-00000016" in links
        and "/admin/audit/event/evt-00000015" not in links
    )


def test_see_in_the_table_shows_the_same_rows(admin_client: FlaskClient, sealed_rows: None) -> None:
    page = get_page(admin_client, "/admin/audit/event/evt-00000020")
    link = page.by_id("see-in-table").get("href")
    # Ten newer (21-30), ten older (19 down to 9: the seal line at 10 is left out).
    assert link == "/admin/audit?before=31&through=9"
    table = get_page(admin_client, str(link))
    shown = [row.get("data-row") for row in table.by_id("audit-rows").find_all("tr")]
    assert shown == [row for row, _ in neighbour_rows(page)]


def test_an_event_under_a_seal_names_it_and_a_later_one_is_not_yet_sealed(
    admin_client: FlaskClient, sealed_rows: None
) -> None:
    sealed = get_page(admin_client, "/admin/audit/event/evt-00000005").by_id("field-seal")
    assert sealed.find("strong", cls="seal-seq").text == "10"
    assert sealed.find("strong", cls="seal-epoch").text == "1"
    assert sealed.find("time").get("datetime") == "2026-11-01T00:10:00.000000Z"
    assert sealed.find("a").get("href") == "/admin/audit/event/evt-00000010"
    later = get_page(admin_client, "/admin/audit/event/evt-00000011").by_id("field-seal")
    assert later.text == "Not yet sealed."
    body = json_body(admin_client.get("/api/admin/audit/event/evt-00000005"))
    assert body["seal"] == {
        "id": "evt-00000010",
        "seq": 10,
        "epoch": 1,
        "ts": "2026-11-01T00:10:00.000000Z",
    }


def test_a_row_without_a_known_file_says_so(admin_client: FlaskClient, sealed_rows: None) -> None:
    page = get_page(admin_client, "/admin/audit/event/evt-00000012")
    assert page.by_id("field-file").text == "unknown"
    assert page.by_id("raw-note").text


def test_the_time_is_shown_in_the_zone_with_utc_beside_it(
    admin_client: FlaskClient, sealed_rows: None
) -> None:
    page = get_page(admin_client, "/admin/audit/event/evt-00000012?tz=Asia/Kolkata")
    field = page.by_id("field-ts")
    assert field.find("time").text == "2026-11-01 05:42:00"
    assert field.find("span", cls="utc").text == "2026-11-01T00:12:00.000000Z"


def test_an_unknown_id_is_404_on_the_page_and_in_json(
    admin_client: FlaskClient, sealed_rows: None
) -> None:
    page = admin_client.get("/admin/audit/event/evt-99999999")
    assert page.status_code == 404 and "evt-99999999" in page.get_data(as_text=True)
    response = admin_client.get("/api/admin/audit/event/evt-99999999")
    assert response.status_code == 404 and json_body(response)["error"]


@pytest.mark.parametrize(
    "event_id",
    ["a%20b", "%3Cscript%3E", "x" * 129, "%C3%A9v%C3%A9nement"],
    ids=["space", "markup", "long", "accents"],
)
def test_an_id_of_no_event_shape_is_400(
    admin_client: FlaskClient, db: object, event_id: str
) -> None:
    page = admin_client.get(f"/admin/audit/event/{event_id}")
    assert page.status_code == 400
    assert "<script>" not in page.get_data(as_text=True)
    assert admin_client.get(f"/api/admin/audit/event/{event_id}").status_code == 400


def test_readers_only(client: FlaskClient, viewer_client: FlaskClient, sealed_rows: None) -> None:
    assert client.get("/admin/audit/event/evt-00000005").status_code == 302
    assert client.get("/api/admin/audit/event/evt-00000005").status_code == 401
    assert viewer_client.get("/admin/audit/event/evt-00000005").status_code == 200
    assert viewer_client.get("/api/admin/audit/event/evt-00000005").status_code == 200


def test_an_api_token_reads_the_json_but_not_the_page(
    app: Flask, client: FlaskClient, sealed_rows: None
) -> None:
    _, secret = TokenStore(state_of(app).accounts_db).create("siem", created_by="admin")
    bearer = {"Authorization": f"Bearer {secret}"}
    response = client.get("/api/admin/audit/event/evt-00000005", headers=bearer)
    assert response.status_code == 200 and json_body(response)["event"]["id"] == "evt-00000005"
    assert client.get("/admin/audit/event/evt-00000005", headers=bearer).status_code == 401


def test_a_token_export_names_the_token_in_its_event(
    app: Flask, client: FlaskClient, sealed_rows: None, data_dir: Path
) -> None:
    _, secret = TokenStore(state_of(app).accounts_db).create("siem", created_by="admin")
    bearer = {"Authorization": f"Bearer {secret}"}
    response = client.get("/admin/audit/export.ndjson?user=alice", headers=bearer)
    assert response.status_code == 200 and len(response.get_data().splitlines()) == 29
    last = decode((data_dir / "logs" / "trek.log").read_bytes().splitlines()[-1])
    assert last["action"] == "audit.export" and last["user"] is None
    assert last["details"] == {"format": "ndjson", "filter": {"user": "alice"}, "token": "siem"}
