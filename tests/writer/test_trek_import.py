"""`trek-audit import-trek`: TREK's audit_log rows become the source trek-import, once."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trek_audit.cli import main
from trek_audit.layout import DataDir
from trek_audit.settings import Settings
from trek_audit.writer.line import decode
from trek_audit.writer.trek_import import import_trek_rows

from .trek_schema import (
    AUDIT_LOG_WITHOUT_IP_AND_RESOURCE,
    add_user,
    create_trek_database,
    write_audit,
)
from .writer_support import log_files, read_events

# The import appends with its own appender, not AuditWriter: one path is enough.
pytestmark = pytest.mark.python_path_only


@pytest.fixture
def trek_db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = create_trek_database(tmp_path / "travel.db")
    yield db
    db.close()


@pytest.fixture
def trek_path(tmp_path: Path, trek_db: sqlite3.Connection) -> Path:
    return tmp_path / "travel.db"


def run_import(database: Path, data_dir: Path, **env: str) -> Result:
    return CliRunner().invoke(
        main, ["import-trek", str(database), "--data-dir", str(data_dir)], env=env
    )


def imported(data_dir: Path) -> Path:
    return DataDir(data_dir).source("trek-import").path


def test_rows_become_v1_lines_with_their_own_seq_and_original_time_user_and_fields(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    alice = add_user(trek_db, "alice", "alice@example.com")
    write_audit(
        trek_db,
        "user.login",
        alice,
        details=json.dumps({"method": "password"}),
        ip="203.0.113.5",
        created_at="2025-03-01 08:15:00",
    )
    write_audit(trek_db, "trip.create", alice, resource="trip/42", created_at="2025-03-01 09:00:00")

    result = run_import(trek_path, data_dir)

    assert result.exit_code == 0, result.output
    events = read_events(imported(data_dir))
    assert [e["seq"] for e in events] == [1, 2]
    assert [e["ts"] for e in events] == [
        "2025-03-01T08:15:00.000000Z",
        "2025-03-01T09:00:00.000000Z",
    ]
    assert events[0]["user"] == {"id": alice, "username": "alice", "email": "alice@example.com"}
    assert events[0]["action"] == "user.login"
    assert events[0]["ip"] == "203.0.113.5"
    assert events[0]["details"] == {"trek_import": {"row_id": 1}, "method": "password"}
    assert events[1]["resource"] == "trip/42"
    assert events[1]["details"] == {"trek_import": {"row_id": 2}}
    assert "2 rows in audit_log, 0 already imported (skipped), 2 read and written" in result.output


def test_a_row_without_a_user_has_a_null_user(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    write_audit(trek_db, "user.login_failed", None, details='{"reason": "bad password"}')

    assert run_import(trek_path, data_dir).exit_code == 0

    (event,) = read_events(imported(data_dir))
    assert event["user"] is None


def test_a_deleted_user_keeps_its_id_without_name_or_email(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    trek_db.execute("PRAGMA foreign_keys = OFF")  # a row left from before TREK set NULL
    write_audit(trek_db, "trip.delete", 99)

    assert run_import(trek_path, data_dir).exit_code == 0

    (event,) = read_events(imported(data_dir))
    assert event["user"] == {"id": 99, "username": None, "email": None}


@pytest.mark.parametrize(
    "details",
    ["not json", "[1, 2]", '"a string"', "42", '{"n": 123456789012345678901234567890}', "NaN"],
    ids=["text", "array", "json-string", "number", "integer-past-64-bits", "nan"],
)
def test_details_that_are_not_a_json_object_are_kept_as_text(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path, details: str
) -> None:
    write_audit(trek_db, "trip.update", details=details)

    result = run_import(trek_path, data_dir)

    (event,) = read_events(imported(data_dir))
    assert event["details"] == {"trek_import": {"row_id": 1}, "text": details}
    assert 'details not a JSON object (kept as {"text": ...})' in result.output


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("Login Failed!", "trek.login_failed"),
        ("login", "trek.login"),
        ("User.Login", "user.login"),
        ("admin.user-delete", "admin.user_delete"),
        ("", "trek.unknown"),
        ("audit.seal", "trek.audit_seal"),  # only the writer writes seals
    ],
    ids=["words", "one-word", "capitals", "dash", "empty", "a-seal"],
)
def test_an_action_the_format_refuses_is_mapped_and_the_original_kept(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path, action: str, key: str
) -> None:
    write_audit(trek_db, action)

    result = run_import(trek_path, data_dir)

    (event,) = read_events(imported(data_dir))
    assert event["action"] == key
    assert event["details"] == {"trek_import": {"row_id": 1, "action": action}}
    assert "1 action keys mapped" in result.output


def test_a_table_without_the_ip_and_resource_columns_reads_them_as_null(
    tmp_path: Path, data_dir: Path
) -> None:
    db = create_trek_database(tmp_path / "old.db", AUDIT_LOG_WITHOUT_IP_AND_RESOURCE)
    write_audit(db, "user.login", add_user(db, "bob", "bob@example.com"), ip="198.51.100.1")
    db.close()

    assert run_import(tmp_path / "old.db", data_dir).exit_code == 0

    (event,) = read_events(imported(data_dir))
    assert (event["resource"], event["ip"], event["user"]) == (
        None,
        None,
        {"id": 1, "username": "bob", "email": "bob@example.com"},
    )


def test_unicode_and_line_breakers_survive_on_one_line(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    user = add_user(trek_db, "zoë", "zoë@exämple.org")
    note = "Tag 1\u2028Tag 2 \U0001f5fa\ufe0f Kyōto"
    write_audit(trek_db, "trip.update", user, resource="trip/東京", details=json.dumps({"n": note}))

    assert run_import(trek_path, data_dir).exit_code == 0

    data = (imported(data_dir) / "trek.log").read_bytes()
    assert data.count(b"\n") == 1 and b"\\u2028" in data
    (event,) = read_events(imported(data_dir))
    assert event["details"] == {"trek_import": {"row_id": 1}, "n": note}
    assert event["resource"] == "trip/東京"
    assert event["user"] == {"id": user, "username": "zoë", "email": "zoë@exämple.org"}


def test_text_that_is_not_utf8_is_kept_readable(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    trek_db.execute(
        "INSERT INTO audit_log (action, resource, details) VALUES (?, CAST(? AS TEXT), ?)",
        ("trip.update", b"trip/\xff1", b"{\xfe}"),
    )

    assert run_import(trek_path, data_dir).exit_code == 0

    (event,) = read_events(imported(data_dir))
    assert event["resource"] == "trip/\ufffd1"
    assert event["details"] == {"trek_import": {"row_id": 1}, "text": "{\ufffd}"}


def test_a_details_too_long_for_a_line_is_cut_with_a_marker_never_dropped(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    huge = json.dumps({"photos": ["p" * 100 + '"\u2028' for _ in range(2000)]})
    write_audit(trek_db, "trip.update", details=huge)
    write_audit(trek_db, "trip.delete")

    result = run_import(trek_path, data_dir, TREK_LOG_MAX_LINE_BYTES="4096")

    assert result.exit_code == 0, result.output
    lines = (imported(data_dir) / "trek.log").read_bytes().split(b"\n")[:-1]
    assert len(lines) == 2
    assert 4000 < len(lines[0]) + 1 <= 4096
    first = decode(lines[0], max_bytes=4096)
    assert first["details"] is not None
    original = json.dumps(json.loads(huge), separators=(",", ":"), ensure_ascii=False)
    assert first["details"]["trek_import"] == {
        "row_id": 1,
        "truncated": {"details_bytes": len(original.encode())},
    }
    kept = first["details"]["text"]
    assert len(kept) > 3000 and original.startswith(kept)
    assert decode(lines[1])["action"] == "trip.delete"
    assert "1 lines cut to TREK_LOG_MAX_LINE_BYTES" in result.output


def test_an_unreadable_time_takes_the_row_before_and_keeps_the_original(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    write_audit(trek_db, "user.login", created_at="2025-05-05 10:00:00")
    write_audit(trek_db, "user.logout", created_at="yesterday")
    write_audit(trek_db, "user.login", created_at="2025-05-05T12:00:00.25+02:00")

    assert run_import(trek_path, data_dir).exit_code == 0

    events = read_events(imported(data_dir))
    assert [e["ts"] for e in events] == [
        "2025-05-05T10:00:00.000000Z",
        "2025-05-05T10:00:00.000000Z",
        "2025-05-05T10:00:00.250000Z",
    ]
    assert events[1]["details"] == {"trek_import": {"row_id": 2, "created_at": "yesterday"}}


def test_running_again_imports_only_the_rows_added_since_and_continues_seq(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    for n in range(3):
        write_audit(trek_db, "trip.create", resource=f"trip/{n}")
    assert run_import(trek_path, data_dir).exit_code == 0

    again = run_import(trek_path, data_dir)
    assert "3 already imported (skipped), 0 read and written" in again.output
    write_audit(trek_db, "trip.create", resource="trip/3")
    third = run_import(trek_path, data_dir)

    assert third.exit_code == 0, third.output
    assert "4 rows in audit_log, 3 already imported (skipped), 1 read and written" in third.output
    events = read_events(imported(data_dir))
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [e["details"]["trek_import"]["row_id"] for e in events if e["details"]] == [1, 2, 3, 4]
    assert len({e["id"] for e in events}) == 4


def test_rotation_keeps_every_imported_file_and_a_rerun_still_finds_the_last_row(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    for n in range(200):
        write_audit(trek_db, "trip.update", resource=f"trip/{n}")
    small = {"TREK_LOG_MAX_BYTES": "4096", "TREK_LOG_BACKUPS": "1"}
    assert run_import(trek_path, data_dir, **small).exit_code == 0
    for n in range(200, 210):
        write_audit(trek_db, "trip.update", resource=f"trip/{n}")

    assert run_import(trek_path, data_dir, **small).exit_code == 0

    files = log_files(imported(data_dir))
    assert len(files) > 5
    assert all(path.stat().st_size <= 4096 for path in files)
    events = read_events(imported(data_dir))
    assert [e["seq"] for e in events] == list(range(1, 211))
    assert [e["resource"] for e in events] == [f"trip/{n}" for n in range(210)]


def test_a_partial_line_left_by_a_crash_is_cut_before_the_next_import(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    write_audit(trek_db, "trip.create")
    write_audit(trek_db, "trip.update")
    assert run_import(trek_path, data_dir).exit_code == 0
    log = imported(data_dir) / "trek.log"
    whole = log.read_bytes()
    log.write_bytes(whole[: whole.index(b"\n") + 1] + whole[whole.index(b"\n") + 1 :][:40])

    assert run_import(trek_path, data_dir).exit_code == 0

    events = read_events(imported(data_dir))  # every line decodes
    assert [(e["seq"], e["action"]) for e in events] == [(1, "trip.create"), (2, "trip.update")]


def test_a_different_database_is_warned_about(
    tmp_path: Path, trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    write_audit(trek_db, "trip.create", created_at="2025-01-01 00:00:00")
    assert run_import(trek_path, data_dir).exit_code == 0
    other = create_trek_database(tmp_path / "other.db")
    write_audit(other, "user.login", created_at="2025-02-02 00:00:00")
    write_audit(other, "user.logout", created_at="2025-02-02 00:00:01")
    other.close()

    result = CliRunner().invoke(
        main, ["import-trek", str(tmp_path / "other.db"), "--data-dir", str(data_dir)]
    )

    assert result.exit_code == 0
    assert "is it the same TREK database?" in result.stderr
    assert [e["action"] for e in read_events(imported(data_dir))] == ["trip.create", "user.logout"]


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` and its directory unwritable, even to root where chattr works."""
    targets = [path, path.parent]
    immutable = os.geteuid() == 0 and all(
        subprocess.run(["chattr", "+i", str(t)], capture_output=True).returncode == 0
        for t in targets
    )
    if not immutable:
        path.chmod(0o444)
        path.parent.chmod(0o555)
    try:
        yield
    finally:
        for target in reversed(targets):
            if immutable:
                subprocess.run(["chattr", "-i", str(target)], check=True)
        path.parent.chmod(0o755)
        path.chmod(0o644)


def test_the_trek_database_is_read_only_and_left_byte_for_byte_as_it_was(
    tmp_path: Path, data_dir: Path
) -> None:
    trek_dir = tmp_path / "trek"
    trek_dir.mkdir()
    db = create_trek_database(trek_dir / "travel.db")
    write_audit(db, "user.login", add_user(db, "carol", "carol@example.com"))
    db.close()
    database = trek_dir / "travel.db"
    before = (database.read_bytes(), database.stat().st_mtime_ns, sorted(os.listdir(trek_dir)))

    with read_only(database):
        result = run_import(database, data_dir)

    assert result.exit_code == 0, result.output
    assert (database.read_bytes(), database.stat().st_mtime_ns) == before[:2]
    assert sorted(os.listdir(trek_dir)) == before[2]
    assert len(read_events(imported(data_dir))) == 1


def test_a_database_in_wal_mode_is_read_while_trek_has_it_open(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    trek_db.execute("PRAGMA journal_mode = WAL")
    write_audit(trek_db, "user.login")

    result = run_import(trek_path, data_dir)

    assert result.exit_code == 0, result.output
    assert len(read_events(imported(data_dir))) == 1


def test_a_missing_file_is_a_usage_error(tmp_path: Path, data_dir: Path) -> None:
    result = run_import(tmp_path / "nowhere.db", data_dir)

    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_a_file_that_is_not_sqlite_is_refused_with_what_to_give(
    tmp_path: Path, data_dir: Path
) -> None:
    (tmp_path / "travel.db").write_text("not a database, just text\n" * 100)

    result = run_import(tmp_path / "travel.db", data_dir)

    assert result.exit_code == 1
    assert "file is not a database" in result.output and "travel.db" in result.output
    assert not (data_dir / "sources").exists() or not read_events(imported(data_dir))


def test_a_database_without_audit_log_is_refused(tmp_path: Path, data_dir: Path) -> None:
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()

    result = run_import(tmp_path / "other.db", data_dir)

    assert result.exit_code == 1
    assert "has no audit_log table" in result.output


def test_the_indexer_indexes_the_imported_rows_as_the_source_trek_import(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    write_audit(trek_db, "user.login", add_user(trek_db, "dave", "dave@example.com"))
    write_audit(trek_db, "trip.create", resource="trip/7")
    assert run_import(trek_path, data_dir).exit_code == 0

    result = CliRunner().invoke(main, ["index", "--once", "--data-dir", str(data_dir)])

    assert result.exit_code == 0, result.output
    with contextlib.closing(sqlite3.connect(DataDir(data_dir).audit_db)) as audit:
        columns = {row[1] for row in audit.execute("PRAGMA table_info(audit_log)")}
        if "source" not in columns:
            pytest.skip("this indexer does not follow <data>/sources yet")
        rows = audit.execute(
            "SELECT source, seq, action FROM audit_log WHERE source = 'trek-import' ORDER BY seq"
        ).fetchall()
    assert rows == [("trek-import", 1, "user.login"), ("trek-import", 2, "trip.create")]


def test_a_resource_too_long_for_a_line_is_cut_too_with_its_length_kept(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    write_audit(trek_db, "trip.update", resource="trip/" + "r" * 10_000, details='{"a": 1}')

    result = run_import(trek_path, data_dir, TREK_LOG_MAX_LINE_BYTES="1024")

    assert result.exit_code == 0, result.output
    (line,) = (imported(data_dir) / "trek.log").read_bytes().splitlines(keepends=True)
    assert len(line) <= 1024
    event = decode(line)
    assert event["details"] is not None
    assert event["details"]["trek_import"]["truncated"] == {
        "details_bytes": len(b'{"a":1}'),
        "resource_chars": 10_005,
    }
    assert event["resource"] is not None and event["resource"].startswith("trip/rrr")


def test_a_line_limit_too_small_for_any_event_stops_with_what_to_raise(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    write_audit(trek_db, "trip.update")

    result = run_import(trek_path, data_dir, TREK_LOG_MAX_LINE_BYTES="100")

    assert result.exit_code == 1
    assert "raise TREK_LOG_MAX_LINE_BYTES" in result.output


def test_two_imports_at_once_write_each_row_once(
    trek_db: sqlite3.Connection, trek_path: Path, data_dir: Path
) -> None:
    for n in range(500):
        write_audit(trek_db, "trip.update", resource=f"trip/{n}")
    settings = Settings.from_env({}, data_dir=data_dir)

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: import_trek_rows(trek_path, settings), range(2)))

    assert sorted(r.written for r in reports) == [0, 500]
    events = read_events(imported(data_dir))
    assert [e["seq"] for e in events] == list(range(1, 501))
    assert [e["resource"] for e in events] == [f"trip/{n}" for n in range(500)]
