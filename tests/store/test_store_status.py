"""``read_status``: its keys are the public JSON object of ``trek-audit status --json``."""

from __future__ import annotations

import json
from pathlib import Path

from trek_audit.store import SCHEMA_VERSION, Status, open_database, read_status
from trek_audit.store.status import SourceStatus

# The keys `trek-audit status --json` has always printed; scripts read them.
JSON_KEYS = {
    "indexed",
    "last_seq",
    "next_seq",
    "lag_bytes",
    "gaps",
    "missing",
    "rejected",
    "incidents",
    "last_indexed_at",
    "running",
    "pid",
    "schema_version",
    "duplicates_dropped",
    "sources",
}
# Each source's part, in "sources".
SOURCE_KEYS = {
    "name",
    "indexed",
    "last_seq",
    "next_seq",
    "lag_bytes",
    "gaps",
    "missing",
    "rejected",
    "incidents",
    "duplicates_dropped",
    "last_indexed_at",
}


def test_the_status_type_declares_exactly_the_json_keys() -> None:
    assert set(Status.__required_keys__) == JSON_KEYS
    assert Status.__optional_keys__ == frozenset()
    assert set(SourceStatus.__required_keys__) == SOURCE_KEYS


def test_the_status_of_a_new_database_has_every_key_and_is_json(data_dir: Path) -> None:
    open_database(data_dir / "audit.db").close()
    status = read_status(data_dir)
    assert set(status) == JSON_KEYS
    assert json.loads(json.dumps(status)) == {
        "indexed": 0,
        "last_seq": 0,
        "next_seq": 1,
        "lag_bytes": 0,
        "gaps": [],
        "missing": 0,
        "rejected": 0,
        "incidents": 0,
        "last_indexed_at": None,
        "running": False,
        "pid": None,
        "schema_version": SCHEMA_VERSION,
        "duplicates_dropped": 0,
        "sources": [
            {
                "name": "local",
                "indexed": 0,
                "last_seq": 0,
                "next_seq": 1,
                "lag_bytes": 0,
                "gaps": [],
                "missing": 0,
                "rejected": 0,
                "incidents": 0,
                "duplicates_dropped": 0,
                "last_indexed_at": None,
            }
        ],
    }


def test_a_missing_database_lists_the_sources_on_disk_with_their_lag(data_dir: Path) -> None:
    for name, size in (("local", 0), ("web1", 3), ("web2", 5)):
        logs = data_dir / "logs" if name == "local" else data_dir / "sources" / name
        logs.mkdir(parents=True)
        (logs / "trek.log").write_bytes(b"x" * size)
    (data_dir / "sources" / ".hidden").mkdir()
    (data_dir / "sources" / "link").symlink_to(data_dir / "sources" / "web1")
    status = read_status(data_dir)
    lags = {source["name"]: source["lag_bytes"] for source in status["sources"]}
    assert lags == {"local": 0, "web1": 3, "web2": 5}
    assert status["lag_bytes"] == 8
