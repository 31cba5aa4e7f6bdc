"""Seals on the Audit page: seal lines stay out of the table until asked for, the newest seal and
the last verify run are shown (escaped), and each row says whether a seal covers it yet."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trek_audit.store import AuditQuery, CountCache, Filter, HistogramCache
from trek_audit.store.caches import CachedCount, CacheKey
from trek_audit.store.verify_report import Problem, VerifyReport
from trek_audit.writer import AuditWriter, decode
from trek_audit.writer.chain import SEAL_ACTION
from trek_audit.writer.seal_key import create_key_file

from .webui_support import insert_rows, json_body, make_row, seal_row, state_of

SEAL_FILTER = {"action": SEAL_ACTION}


@pytest.fixture
def sealed_log(db: sqlite3.Connection) -> None:
    """Events 1-2 before sealing began, the opening seal (3), events 4-9, a seal of epoch 1 (10)
    covering 4-9, then events 11-13 not yet sealed."""
    rows = [make_row(n) for n in (1, 2)]
    rows.append(seal_row(3, epoch=0))
    rows += [make_row(n) for n in range(4, 10)]
    rows.append(seal_row(10, epoch=1, first_seq=4))
    rows += [make_row(n) for n in range(11, 14)]
    insert_rows(db, rows)


def page(client: FlaskClient, query: str = "") -> str:
    response = client.get("/admin/audit" + query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def table_actions(html: str) -> list[str]:
    return re.findall(r'<code title="[^"]*">([a-z0-9_.]+)</code></a></td>', html)


def shown_total(html: str) -> int:
    match = re.search(r'data-total="(\d+)"', html)
    assert match, "no total on the page"
    return int(match.group(1))


def write_report(app: Flask, report: VerifyReport | dict[str, Any] | bytes) -> None:
    path = state_of(app).data.verify_report
    path.write_bytes(report if isinstance(report, bytes) else json.dumps(report).encode())


def report(exit_code: int, problems: list[Problem], *, keyed: bool = True) -> VerifyReport:
    return {
        "ran_at": "2026-11-26T13:22:49Z",
        "exit_code": exit_code,
        "keyed": keyed,
        "summary": {
            "files": 2,
            "lines": 1234,
            "seals": 17,
            "epochs": 17,
            "rows": 1234,
            "unsealed": 2,
            "problems": len(problems),
        },
        "problems": problems,
    }


def problem(message: str, **fields: Any) -> Problem:
    found: Problem = {
        "kind": "edited",
        "file": "/srv/trek/data/logs/trek.log.2",
        "line": 17,
        "row": None,
        "first_seq": 40,
        "last_seq": 40,
        "message": message,
    }
    found.update(fields)  # type: ignore[typeddict-item]
    return found


# -- seal lines stay out unless the action filter asks for them ----------------------------------


def test_the_table_and_total_leave_seal_lines_out_by_default(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    html = page(admin_client)
    assert SEAL_ACTION not in table_actions(html)
    assert len(table_actions(html)) == 11
    assert shown_total(html) == 11
    assert "Seal lines are left out" in html


def test_the_action_filter_shows_only_the_seal_lines(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    html = page(admin_client, "?action=" + SEAL_ACTION)
    assert table_actions(html) == [SEAL_ACTION, SEAL_ACTION]
    assert shown_total(html) == 2
    assert "Seal lines are left out" not in html


def test_other_filters_leave_seal_lines_out_too(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    # Seal lines fall in the time range and their action is in the full-text index.
    for query in ("?since=2026-11-01", "?q=audit", "?until=2026-11-02"):
        html = page(admin_client, query)
        assert SEAL_ACTION not in table_actions(html), query
    assert shown_total(page(admin_client, "?since=2026-11-01")) == 11
    assert shown_total(page(admin_client, "?q=audit")) == 0


def test_the_api_leaves_seal_lines_out_unless_asked(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    body = json_body(admin_client.get("/api/admin/audit"))
    assert body["total"] == len(body["entries"]) == 11
    assert SEAL_ACTION not in {entry["action"] for entry in body["entries"]}
    seals = json_body(admin_client.get("/api/admin/audit?action=" + SEAL_ACTION))
    assert seals["total"] == 2
    assert [entry["details"]["epoch"] for entry in seals["entries"]] == [1, 0]


def test_the_api_walks_every_page_without_a_seal_line(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(db, [seal_row(n, epoch=n) if n % 10 == 0 else make_row(n) for n in range(1, 251)])
    seen: list[str] = []
    cursor = ""
    for _ in range(100):
        body = json_body(admin_client.get("/api/admin/audit?limit=30" + cursor))
        seen += [entry["action"] for entry in body["entries"]]
        if body["next"] is None:
            break
        cursor = "&before=" + body["next"]
    else:
        raise AssertionError("pagination did not end")
    assert len(seen) == body["total"] == 225
    assert SEAL_ACTION not in seen


def test_the_export_leaves_seal_lines_out_unless_asked(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    lines = admin_client.get("/admin/audit/export.ndjson").get_data(as_text=True).splitlines()
    assert len(lines) == 11
    assert SEAL_ACTION not in {json.loads(line)["action"] for line in lines}
    asked = admin_client.get("/admin/audit/export.ndjson?action=" + SEAL_ACTION)
    assert [json.loads(line)["seq"] for line in asked.get_data(as_text=True).splitlines()] == [
        10,
        3,
    ]


def test_the_chart_leaves_seal_lines_out_unless_asked(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    svg = admin_client.get("/admin/audit/chart.svg").get_data(as_text=True)
    assert "All events: 11 events" in svg
    svg = admin_client.get("/admin/audit/chart.svg?action=" + SEAL_ACTION).get_data(as_text=True)
    assert "Events of this filter: 2 events" in svg


def test_a_log_of_seal_lines_alone_shows_no_events(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(db, [seal_row(1, epoch=0)])
    assert shown_total(page(admin_client)) == 0
    assert "No events" in admin_client.get("/admin/audit/chart.svg").get_data(as_text=True)


def test_the_unfiltered_total_is_the_counter_less_the_seal_lines(
    db: sqlite3.Connection, sealed_log: None
) -> None:
    with db:
        db.execute("UPDATE indexer_state SET value = 1234 WHERE name = 'indexed'")
    cache = CountCache()
    assert AuditQuery(db).count(Filter()) == AuditQuery(db).count(Filter(), cache) == 1232


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter(), 80),
        (Filter(since="2026-11-01T00:05:00.000000Z"), 76),
        (Filter(q="audit"), 0),
        (Filter(user=("alice",)), 80),
        (Filter(action=(SEAL_ACTION,)), 20),
    ],
    ids=["all", "since", "fts", "user-or", "seals"],
)
def test_cached_counts_and_histograms_stay_exact_as_seal_lines_arrive(
    db: sqlite3.Connection, flt: Filter, expected: int
) -> None:
    counts, histograms = CountCache(), HistogramCache()
    query = AuditQuery(db)
    for batch in range(4):
        start = 1 + batch * 25
        insert_rows(
            db,
            [seal_row(n, epoch=n) if n % 5 == 0 else make_row(n) for n in range(start, start + 25)],
        )
        fresh = query.count(flt)
        assert query.count(flt, counts) == fresh
        assert query.histogram(flt, 60, histograms) == query.histogram(flt, 60)
        assert query.histogram(flt, 60).total == fresh
    # 100 lines, every fifth a seal line.
    assert query.count(flt) == query.count(flt, counts) == expected


def test_the_cache_keys_say_whether_seal_lines_were_left_out() -> None:
    assert CacheKey.of(Filter()) == (Filter(), True)
    assert CacheKey.of(Filter(action=(SEAL_ACTION,))).without_seals is False
    cache = CountCache()
    cache.put(Filter(q="x"), CachedCount(1, 5))
    assert cache.get(Filter(q="x")) == CachedCount(1, 5)
    assert cache.get(Filter(q="x", action=(SEAL_ACTION,))) is None


def test_pages_without_seal_lines_keep_their_index_range_scans(db: sqlite3.Connection) -> None:
    for flt in (Filter(), Filter(ip=("10.0.0.1",)), Filter(q="paris"), Filter(since="2026-11-01")):
        plan = AuditQuery(db).explain(flt, before=1000)
        assert not [step for step in plan if "TEMP B-TREE" in step], (flt, plan)


# -- the newest seal -----------------------------------------------------------------------------


def test_the_newest_seal_is_shown_with_its_epoch_time_and_last_seq(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    html = page(admin_client)
    block = html[html.index('id="newest-seal"') : html.index('id="last-verify"')]
    assert '<strong class="seal-epoch">1</strong>' in block
    assert '<strong class="seal-last-seq">9</strong>' in block
    # The same time element as the table's rows: UTC in the page, local time by audit.js.
    ts = make_row(10)["ts"]
    assert f'<time datetime="{ts}" title="{ts}">{ts}</time>' in block


def test_a_log_without_seals_says_how_to_start_sealing(admin_client: FlaskClient) -> None:
    html = page(admin_client)
    assert "Not sealed: run <code>trek-audit seal init</code>" in html


def test_a_sealing_key_without_a_seal_yet_is_not_told_to_start_sealing(
    app: Flask, admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    state_of(app).settings.seal_key_path.write_bytes(b"not read by the panel")
    insert_rows(db, [make_row(1)])
    html = page(admin_client)
    assert "No seal indexed yet" in html
    assert "seal init" not in html


def test_a_seal_line_with_unreadable_details_does_not_break_the_page(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(db, [make_row(1), make_row(2, action=SEAL_ACTION, details="<b>not json")])
    html = page(admin_client)
    assert "The newest seal line (seq 2," in html and "cannot be read" in html
    assert "<b>not json" not in html
    assert json_body(admin_client.get("/api/admin/audit"))["entries"][0]["sealed"] is False


# -- the last verify run -------------------------------------------------------------------------


def verify_block(html: str) -> str:
    return html[html.index('id="last-verify"') : html.index("</section>")]


def test_a_directory_never_verified_says_how_to_verify(admin_client: FlaskClient) -> None:
    assert "Never verified: run <code>trek-audit verify</code>" in verify_block(page(admin_client))


def test_an_intact_verify_is_shown_with_its_time_and_counts(
    app: Flask, admin_client: FlaskClient
) -> None:
    write_report(app, report(0, []))
    block = verify_block(page(admin_client))
    assert '<time datetime="2026-11-26T13:22:49Z"' in block
    assert '<strong class="verdict ok">intact</strong>' in block
    assert (
        "2 files, 1,234 lines, 17 seals, 17 epochs, 1,234 rows checked, 2 unsealed, 0 problems."
        in block
    )
    assert "no verification key" not in block


def test_a_verify_without_a_key_says_what_it_checked(app: Flask, admin_client: FlaskClient) -> None:
    write_report(app, report(0, [], keyed=False))
    assert "chain and seal continuity only: no verification key" in verify_block(page(admin_client))


def test_a_verify_that_found_problems_lists_the_first_few_escaped(
    app: Flask, admin_client: FlaskClient
) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    problems = [problem(f"line {n} differs {hostile}", line=n) for n in range(1, 9)]
    problems.append(problem("row differs", file=None, line=None, row=4711, kind="row_differs"))
    write_report(app, report(1, problems))
    block = verify_block(page(admin_client))
    assert '<strong class="verdict bad">NOT intact</strong>' in block
    assert "<img" not in block
    assert "line 1 differs &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in block
    assert "/srv/trek/data/logs/trek.log.2 line 1 (seq 40)" in block
    assert block.count("<li>") == 6  # five problems and how many more
    assert "and 4 more" in block and "9 problems." in block


def test_a_verify_that_could_not_run_says_so(app: Flask, admin_client: FlaskClient) -> None:
    write_report(app, report(2, [problem("no log files", kind="missing", file=None, line=None)]))
    block = verify_block(page(admin_client))
    assert '<strong class="verdict bad">could not run</strong>' in block
    assert "<code>missing</code> (seq 40): no log files" in block


@pytest.mark.parametrize(
    "damaged",
    [
        b"\x00\xff{not json",
        b"[1, 2, 3]",
        b"",
        json.dumps(
            {
                "exit_code": "zero",
                "summary": [1, 2],
                "problems": {"kind": "x"},
                "ran_at": 5,
                "keyed": "yes",
            }
        ).encode(),
        json.dumps(
            {
                "exit_code": True,
                "summary": {"lines": "many", "seals": None},
                "problems": [7, None, {"message": ["<b>"], "line": "x", "first_seq": {}}],
            }
        ).encode(),
    ],
    ids=["binary", "a-list", "empty", "wrong-types", "wrong-types-inside"],
)
def test_a_damaged_verify_report_does_not_break_the_page(
    app: Flask, admin_client: FlaskClient, sealed_log: None, damaged: bytes
) -> None:
    write_report(app, damaged)
    block = verify_block(page(admin_client))
    assert "cannot be read" in block or "unknown" in block
    assert "<b>" not in block


def test_a_verify_report_that_is_a_directory_does_not_break_the_page(
    app: Flask, admin_client: FlaskClient
) -> None:
    state_of(app).data.verify_report.mkdir()
    assert "The last verify report cannot be read" in verify_block(page(admin_client))


# -- whether a row is sealed yet -----------------------------------------------------------------


def seal_notes(html: str) -> dict[str, str]:
    """Each row's event id and the seal note in its details."""
    rows = re.findall(r'<tr data-id="([^"]+)"[^>]*>(.*?)</tr>', html, re.S)
    notes = {}
    for event_id, cells in rows:
        note = re.search(r'<p class="seal-note[^"]*">([^<]*)</p>', cells)
        assert note, f"no seal note in the row of {event_id}"
        notes[event_id] = note.group(1)
    return notes


def test_each_row_says_whether_a_seal_covers_it_yet(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    notes = seal_notes(page(admin_client))
    covered = {f"evt-{n:08d}" for n in range(4, 10)}
    assert {event for event, note in notes.items() if note == "Covered by a seal."} == covered
    # After the newest seal, and before the opening seal (never sealed).
    for n in (1, 2, 11, 12, 13):
        assert notes[f"evt-{n:08d}"] == "Not yet sealed."
    # A seal line is vouched for by the next seal: the newest one is not covered yet.
    seals = seal_notes(page(admin_client, "?action=" + SEAL_ACTION))
    assert seals == {"evt-00000010": "Not yet sealed.", "evt-00000003": "Covered by a seal."}


def test_a_row_without_details_still_says_whether_it_is_sealed(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(
        db, [seal_row(1, epoch=0), make_row(2, details=None), seal_row(3, epoch=1, first_seq=2)]
    )
    html = page(admin_client)
    assert (
        '<details><summary class="none">no details</summary>'
        '<p class="seal-note sealed">Covered by a seal.</p></details>' in html
    )


def test_api_entries_say_whether_a_seal_covers_them_yet(
    admin_client: FlaskClient, sealed_log: None
) -> None:
    entries = json_body(admin_client.get("/api/admin/audit"))["entries"]
    sealed = {entry["id"] for entry in entries if entry["sealed"] is True}
    assert sealed == {f"evt-{n:08d}" for n in range(4, 10)}
    assert all(entry["sealed"] is False for entry in entries if entry["id"] not in sealed)


def test_without_any_seal_no_row_is_covered(
    admin_client: FlaskClient, db: sqlite3.Connection
) -> None:
    insert_rows(db, [make_row(n) for n in range(1, 4)])
    assert list(seal_notes(page(admin_client)).values()) == ["Not yet sealed."] * 3


def test_seals_the_writer_made_are_shown_and_cover_the_lines_before_them(
    admin_client: FlaskClient, db: sqlite3.Connection, tmp_path: Path
) -> None:
    key = tmp_path / "seal.key"
    create_key_file(key)
    log_dir = tmp_path / "app-logs"
    with AuditWriter(log_dir, seal_key_file=key) as writer:
        for n in range(3):
            writer.record("trip.create", resource=f"trip/{n}")
        seal = writer.seal()
        writer.record("trip.delete", resource="trip/0")
    assert seal is not None
    events = [decode(line) for line in (log_dir / "trek.log").read_bytes().splitlines()]
    insert_rows(db, [row_of(event) for event in events])
    # The opening seal, three events, the seal of epoch 1, one more event.
    assert [event["action"] for event in events] == [
        SEAL_ACTION,
        *["trip.create"] * 3,
        SEAL_ACTION,
        "trip.delete",
    ]
    html = page(admin_client)
    assert table_actions(html) == ["trip.delete", "trip.create", "trip.create", "trip.create"]
    assert '<strong class="seal-epoch">1</strong>' in html
    assert f'<strong class="seal-last-seq">{seal["seq"] - 1}</strong>' in html
    assert list(seal_notes(html).values()) == ["Not yet sealed."] + ["Covered by a seal."] * 3


def row_of(event: Any) -> dict[str, Any]:
    """The audit_log row the indexer makes of an event line."""
    user = event["user"] or {}
    return make_row(
        event["seq"],
        event_id=event["id"],
        ts=event["ts"],
        action=event["action"],
        user_id=user.get("id"),
        username=user.get("username"),
        email=user.get("email"),
        resource=event["resource"],
        ip=event["ip"],
        details=event["details"],
    )
