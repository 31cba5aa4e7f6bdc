"""``serve``: the first-start admin account, and the panel each gunicorn worker builds."""

from __future__ import annotations

from pathlib import Path

from trek_audit.settings import Settings
from trek_audit.webui.accounts import Account, Accounts
from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.webui.serve import PanelServer, ensure_admin, gunicorn_options

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
