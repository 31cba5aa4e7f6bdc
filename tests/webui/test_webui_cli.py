"""``trek-audit admin create|set-password``, and ``serve`` refusing an unusable secret key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.webui.accounts import Account, Accounts
from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.writer.line import decode


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def verify(data_dir: Path, username: str, password: str) -> Account | None:
    with AccountsDB(data_dir / "accounts.db") as db:
        return Accounts(db).verify(username, password)


def test_admin_create_reads_the_password_from_stdin(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main,
        [
            "admin",
            "create",
            "alice",
            "--role",
            "viewer",
            "--password-stdin",
            "--data-dir",
            str(tmp_path),
        ],
        input="alice-password\n",
    )
    assert result.exit_code == 0, result.output
    account = verify(tmp_path, "alice", "alice-password")
    assert account is not None and account.role == "viewer"
    [event] = [decode(line) for line in (tmp_path / "logs" / "trek.log").read_bytes().splitlines()]
    assert event["action"] == "admin.user_create"
    assert "alice-password" not in (tmp_path / "logs" / "trek.log").read_text()


def test_admin_create_prompts_twice_when_no_stdin_flag(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main,
        ["admin", "create", "bob", "--data-dir", str(tmp_path)],
        input="bob-password-1\nbob-password-1\n",
    )
    assert result.exit_code == 0, result.output
    assert "bob-password-1" not in result.output  # hidden input
    assert verify(tmp_path, "bob", "bob-password-1") is not None


def test_admin_create_refuses_a_short_password(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main,
        ["admin", "create", "eve", "--password-stdin", "--data-dir", str(tmp_path)],
        input="short\n",
    )
    assert result.exit_code == 1
    assert "at least 8 characters" in result.output


def test_admin_set_password_changes_it(runner: CliRunner, tmp_path: Path) -> None:
    with AccountsDB(tmp_path / "accounts.db") as db:
        Accounts(db).create("carol", "old-password", "admin")
    result = runner.invoke(
        main,
        ["admin", "set-password", "carol", "--password-stdin", "--data-dir", str(tmp_path)],
        input="new-password\n",
    )
    assert result.exit_code == 0, result.output
    assert verify(tmp_path, "carol", "new-password") is not None
    assert verify(tmp_path, "carol", "old-password") is None


def test_admin_set_password_of_unknown_account_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main,
        ["admin", "set-password", "nobody", "--password-stdin", "--data-dir", str(tmp_path)],
        input="new-password\n",
    )
    assert result.exit_code == 1
    assert "no account named 'nobody'" in result.output


def test_serve_explains_an_unusable_secret_key_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("", encoding="ascii")
    result = runner.invoke(
        main, ["serve", "--data-dir", str(tmp_path)], env={"TREK_SECRET_KEY": None}
    )
    assert result.exit_code == 1
    assert "holds no usable key" in result.output and "TREK_SECRET_KEY" in result.output
