"""An admin action the audit log cannot take does not happen: on a real full or read-only disk.

The data directory's ``logs/`` is a 64 KiB tmpfs here, filled up (ENOSPC) or remounted
read-only (EROFS), while accounts.db stays on the ordinary disk, as when the log volume of a
deployment fills up. A login, a password change or an account creation is then refused with
503 and leaves nothing changed; once the disk is writable again, the same action works.
"""

from __future__ import annotations

import errno
import html
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from trek_audit.cli import main
from trek_audit.webui.accounts import Accounts
from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.writer import AuditWriteError, AuditWriter, decode

from .webui_support import ADMIN, VIEWER, csrf_from, log_in, small_log_disk, state_of

REFUSED = "The audit log cannot be written"
# The shortest action key there is: events that fill trek.log's last page to the brim.
FILLER = "x.y"


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose ``logs/`` is a 64 KiB tmpfs (needs root to mount)."""
    with small_log_disk(tmp_path / f"disk-{uuid.uuid4().hex[:8]}") as path:
        yield path


def fill_up(logs: Path) -> None:
    """Fill the log disk: a filler file to the last page, then events into trek.log's slack.

    tmpfs allocates whole pages, so trek.log's last page can take a few more lines after the
    filler gets ENOSPC; small events fill that too, until even the smallest does not fit.
    """
    descriptor = os.open(logs / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    with AuditWriter(logs) as writer:
        for _ in range(1000):
            try:
                writer.record(FILLER)
            except AuditWriteError as error:
                assert error.errno == errno.ENOSPC
                return
    raise AssertionError("the log disk never filled up")


def make_read_only(app: Flask, logs: Path) -> None:
    # A mount can turn read-only only while nothing on it is open for writing; the panel
    # reopens its writer on the next event.
    state_of(app).close()
    subprocess.run(["mount", "-o", "remount,ro", str(logs)], check=True)


def make_writable(logs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,rw", str(logs)], check=True)
    (logs / "filler").unlink(missing_ok=True)


FAULTS: dict[str, Callable[[Flask, Path], None]] = {
    "full-disk": lambda _app, logs: fill_up(logs),
    "read-only-log-dir": make_read_only,
}


@pytest.fixture(params=sorted(FAULTS))
def break_the_log(request: pytest.FixtureRequest, data_dir: Path) -> Callable[[Flask], None]:
    """Make the log disk unwritable the given way (once the test has set its scene)."""
    fault = FAULTS[request.param]
    return lambda app: fault(app, data_dir / "logs")


def panel_events(data_dir: Path) -> list[str]:
    """The actions the panel recorded (filler events left out)."""
    log = data_dir / "logs" / "trek.log"
    lines = log.read_bytes().splitlines() if log.exists() else []
    return [event["action"] for event in map(decode, lines) if event["action"] != FILLER]


def post_form(client: FlaskClient, page: str, form: dict[str, str]) -> Any:
    token = csrf_from(client.get(page).get_data(as_text=True))
    return client.post(page, data={"csrf_token": token, **form})


def test_a_login_that_cannot_be_recorded_is_refused_and_starts_no_session(
    app: Flask, data_dir: Path, break_the_log: Callable[[Flask], None]
) -> None:
    log_in(app.test_client(), *ADMIN)  # the log is in use before it breaks
    break_the_log(app)
    client = app.test_client()
    response = log_in(client, *ADMIN)
    assert response.status_code == 503
    assert REFUSED in response.get_data(as_text=True)
    assert "you were not logged in" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "uid" not in session
    assert client.get("/admin/audit").status_code == 302  # to the login page
    assert panel_events(data_dir) == ["user.login"]

    make_writable(data_dir / "logs")
    assert log_in(client, *ADMIN).status_code == 302
    assert client.get("/admin/audit").status_code == 200
    assert panel_events(data_dir) == ["user.login", "user.login"]


def test_a_failed_login_that_cannot_be_recorded_still_answers_as_a_failed_login(
    app: Flask, data_dir: Path, break_the_log: Callable[[Flask], None]
) -> None:
    log_in(app.test_client(), "admin", "not-the-password")
    break_the_log(app)
    client = app.test_client()
    response = log_in(client, "admin", "still-not-the-password")
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert client.get("/admin/audit").status_code == 302
    assert panel_events(data_dir) == ["user.login_failed"]


def test_a_password_change_that_cannot_be_recorded_changes_nothing(
    app: Flask, admin_client: FlaskClient, data_dir: Path, break_the_log: Callable[[Flask], None]
) -> None:
    form = {
        "current_password": ADMIN[1],
        "new_password": "a-brand-new-password",
        "confirm_password": "a-brand-new-password",
    }
    token = csrf_from(admin_client.get("/account/password").get_data(as_text=True))
    break_the_log(app)
    response = admin_client.post("/account/password", data={"csrf_token": token, **form})
    assert response.status_code == 503
    assert "your password was not changed" in response.get_data(as_text=True)
    accounts = state_of(app).accounts
    assert accounts.verify(*ADMIN) is not None
    assert accounts.verify("admin", "a-brand-new-password") is None
    assert admin_client.get("/admin/audit").status_code == 200  # the session was not ended
    assert panel_events(data_dir) == ["user.login"]

    make_writable(data_dir / "logs")
    assert post_form(admin_client, "/account/password", form).status_code == 302
    assert accounts.verify("admin", "a-brand-new-password") is not None
    assert panel_events(data_dir) == ["user.login", "user.password_change"]


def test_an_account_creation_that_cannot_be_recorded_creates_no_account(
    app: Flask, admin_client: FlaskClient, data_dir: Path, break_the_log: Callable[[Flask], None]
) -> None:
    form = {
        "username": "carol",
        "role": "admin",
        "password": "carol-password",
        "confirm_password": "carol-password",
    }
    token = csrf_from(admin_client.get("/admin/accounts").get_data(as_text=True))
    break_the_log(app)
    response = admin_client.post("/admin/accounts", data={"csrf_token": token, **form})
    assert response.status_code == 503
    assert "the account 'carol' was not created" in html.unescape(response.get_data(as_text=True))
    accounts = state_of(app).accounts
    assert accounts.by_username("carol") is None
    assert accounts.verify("carol", "carol-password") is None
    assert [account.username for account in accounts.all()] == ["admin", "viewer"]
    assert panel_events(data_dir) == ["user.login"]

    make_writable(data_dir / "logs")
    response = post_form(admin_client, "/admin/accounts", form)
    assert response.status_code == 200, response.get_data(as_text=True)
    created = accounts.by_username("carol")
    assert created is not None and created.id == 3  # the refused one left no row behind
    assert panel_events(data_dir) == ["user.login", "admin.user_create"]


def test_a_panel_started_on_a_full_log_disk_refuses_every_login(app: Flask, data_dir: Path) -> None:
    """Here not even the writer's lock file fits: the first event fails before any append."""
    fill_up(data_dir / "logs")
    assert not (data_dir / "logs" / "trek.log").exists()
    for account in (ADMIN, VIEWER):
        client = app.test_client()
        assert log_in(client, *account).status_code == 503
        assert client.get("/account/password").status_code == 302
    assert panel_events(data_dir) == []


def cli_verify(data_dir: Path, username: str, password: str) -> bool:
    with AccountsDB(data_dir / "accounts.db") as db:
        return Accounts(db).verify(username, password) is not None


def test_admin_create_refuses_when_the_event_cannot_be_recorded(data_dir: Path) -> None:
    fill_up(data_dir / "logs")
    result = CliRunner().invoke(
        main,
        ["admin", "create", "dave", "--password-stdin", "--data-dir", str(data_dir)],
        input="dave-password\n",
    )
    assert result.exit_code == 1
    assert "the audit log cannot be written, so the account 'dave' was not created" in (
        result.output
    )
    assert "No space left on device" in result.output
    with AccountsDB(data_dir / "accounts.db") as db:
        assert Accounts(db).all() == []
    assert panel_events(data_dir) == []


def test_admin_set_password_refuses_when_the_event_cannot_be_recorded(data_dir: Path) -> None:
    with AccountsDB(data_dir / "accounts.db") as db:
        Accounts(db).create("erin", "old-password", "admin")
    logs = data_dir / "logs"
    subprocess.run(["mount", "-o", "remount,ro", str(logs)], check=True)
    result = CliRunner().invoke(
        main,
        ["admin", "set-password", "erin", "--password-stdin", "--data-dir", str(data_dir)],
        input="new-password\n",
    )
    assert result.exit_code == 1
    assert "the password of 'erin' was not changed" in result.output
    assert "Read-only file system" in result.output
    assert cli_verify(data_dir, "erin", "old-password")
    assert not cli_verify(data_dir, "erin", "new-password")

    make_writable(logs)
    result = CliRunner().invoke(
        main,
        ["admin", "set-password", "erin", "--password-stdin", "--data-dir", str(data_dir)],
        input="new-password\n",
    )
    assert result.exit_code == 0, result.output
    assert cli_verify(data_dir, "erin", "new-password")
    assert panel_events(data_dir) == ["user.password_change"]
