"""``serve``: the first-start admin account, and the panel each gunicorn worker builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from trek_audit.settings import Settings
from trek_audit.webui.accounts import Account, Accounts
from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.webui.serve import PanelServer, ensure_admin, gunicorn_options
from trek_audit.writer import AuditWriteError, decode

from .webui_support import state_of


def verify(settings: Settings, username: str, password: str) -> Account | None:
    with AccountsDB(settings.data.accounts_db) as db:
        return Accounts(db).verify(username, password)


def test_first_start_creates_admin_with_a_random_password_printed_once(data_dir: Path) -> None:
    printed: list[str] = []
    settings = Settings(data_dir=data_dir)
    ensure_admin(settings, printed.append)
    password = printed[0].rsplit(": ", 1)[1]
    assert verify(settings, "admin", password) is not None
    ensure_admin(settings, printed.append)
    assert len(printed) == 2  # the password line and its hint, only the first time


def test_the_first_admin_account_is_an_audited_account_creation(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    ensure_admin(settings, list[str]().append)
    lines = settings.data.logs.log_file.read_bytes().splitlines()
    events = [decode(line) for line in lines]
    assert [e["action"] for e in events] == ["admin.user_create"]
    assert events[0]["resource"] == "admin"
    assert events[0]["details"] == {
        "username": "admin",
        "role": "admin",
        "id": 1,
        "via": "first start",
    }


def test_no_first_admin_account_when_its_creation_cannot_be_recorded(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    settings.data.logs.log_file.mkdir(parents=True)  # trek.log cannot be opened for appending
    printed: list[str] = []
    with pytest.raises(AuditWriteError):
        ensure_admin(settings, printed.append)
    assert printed == []
    with AccountsDB(settings.data.accounts_db) as db:
        assert not Accounts(db).has_admin()


def test_first_start_takes_trek_admin_password(data_dir: Path) -> None:
    printed: list[str] = []
    settings = Settings.from_env(
        {"TREK_DATA_DIR": str(data_dir), "TREK_ADMIN_PASSWORD": "from-the-env"}
    )
    ensure_admin(settings, printed.append)
    assert "from-the-env" not in " ".join(printed)
    assert verify(settings, "admin", "from-the-env") is not None


def test_each_worker_builds_the_panel_from_the_settings_serve_was_given(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, secret_key="k" * 40, cookie_secure=True, trust_proxy=2)
    app = PanelServer(settings, gunicorn_options("127.0.0.1", 0, 1)).load()
    try:
        assert state_of(app).settings == settings
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.secret_key == "k" * 40
    finally:
        state_of(app).close()
