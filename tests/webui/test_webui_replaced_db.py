"""The panel stops serving an audit.db that was deleted or replaced under it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer
from trek_audit.settings import Settings
from trek_audit.webui.state import PanelState
from trek_audit.writer.line import encode

from ..indexer.logfiles import event


def _indexed(data_dir: Path, seqs: range) -> None:
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "trek.log").write_bytes(b"".join(encode(event(seq)) for seq in seqs))  # type: ignore[arg-type]
    Indexer(data_dir, watch=False).run_once()


def test_a_replaced_audit_db_is_served_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    _indexed(data_dir, range(1, 4))
    state = PanelState(Settings.from_env(environ={}, data_dir=data_dir))
    try:
        query = state.audit_query()
        assert query is not None and query.indexed_total() == 3
        os.unlink(data_dir / "audit.db")
        _indexed(data_dir, range(1, 6))
        clock = [1e9]
        monkeypatch.setattr("trek_audit.webui.state.time.monotonic", lambda: clock[0])
        state._local.checked = clock[0]  # just checked: the old file is served a little longer
        assert state.audit_query() is query
        clock[0] += 1.0
        fresh = state.audit_query()
        assert fresh is not None and fresh is not query
        assert fresh.indexed_total() == 5
    finally:
        state.close()
