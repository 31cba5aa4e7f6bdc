"""``read_status``: its keys are the public JSON object of ``trek-audit status --json``."""

from __future__ import annotations

import json
from pathlib import Path

from trek_audit.store import SCHEMA_VERSION, Status, open_database, read_status

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
}


def test_the_status_type_declares_exactly_the_json_keys() -> None:
    assert set(Status.__required_keys__) == JSON_KEYS
    assert Status.__optional_keys__ == frozenset()


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
    }
