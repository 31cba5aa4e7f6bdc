"""Fixtures for end-to-end tests: one panel per module, served by ``trek-audit serve``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .e2e_support import ADMIN_PASSWORD, Panel, Session, seed, start_panel, stop_panel, wait_for


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Panel]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    seed(data_dir)
    panel = start_panel(data_dir, data_dir.parent / "serve.out")
    try:
        session = Session(panel.port)
        assert session.log_in("admin", ADMIN_PASSWORD) == 302
        wait_for(lambda: session.api()["total"] >= 251)  # the seed and this login, indexed
        yield panel
    finally:
        stop_panel(panel)
