"""``trek-audit admin ...`` and the first-start admin account of ``serve``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.webui.accounts import Accounts
from trek_audit.webui.config import PanelConfig
from trek_audit.webui.serve import ensure_admin
from trek_audit.writer.line import decode


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


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
    accounts = Accounts(tmp_path / "accounts.db")
    account = accounts.verify("alice", "alice-password")
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
    assert Accounts(tmp_path / "accounts.db").verify("bob", "bob-password-1") is not None


def test_admin_create_refuses_a_short_password(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main,
        ["admin", "create", "eve", "--password-stdin", "--data-dir", str(tmp_path)],
        input="short\n",
    )
    assert result.exit_code == 1
    assert "at least 8 characters" in result.output


def test_admin_set_password_changes_it(runner: CliRunner, tmp_path: Path) -> None:
    Accounts(tmp_path / "accounts.db").create("carol", "old-password", "admin")
    result = runner.invoke(
        main,
        ["admin", "set-password", "carol", "--password-stdin", "--data-dir", str(tmp_path)],
        input="new-password\n",
    )
    assert result.exit_code == 0, result.output
    accounts = Accounts(tmp_path / "accounts.db")
    assert accounts.verify("carol", "new-password") is not None
    assert accounts.verify("carol", "old-password") is None


def test_admin_set_password_of_unknown_account_fails(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main,
        ["admin", "set-password", "nobody", "--password-stdin", "--data-dir", str(tmp_path)],
        input="new-password\n",
    )
    assert result.exit_code == 1
    assert "no account named 'nobody'" in result.output


def test_first_start_creates_admin_with_a_random_password_printed_once(tmp_path: Path) -> None:
    printed: list[str] = []
    config = PanelConfig(data_dir=tmp_path)
    ensure_admin(config, printed.append)
    password = printed[0].rsplit(": ", 1)[1]
    assert Accounts(config.accounts_db).verify("admin", password) is not None
    ensure_admin(config, printed.append)
    assert len(printed) == 2  # the password line and its hint, only the first time


def test_first_start_takes_trek_admin_password(tmp_path: Path) -> None:
    printed: list[str] = []
    config = PanelConfig.from_env(
        {"TREK_DATA_DIR": str(tmp_path), "TREK_ADMIN_PASSWORD": "from-the-env"}
    )
    ensure_admin(config, printed.append)
    assert "from-the-env" not in " ".join(printed)
    assert Accounts(config.accounts_db).verify("admin", "from-the-env") is not None


def test_secret_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    from trek_audit.webui.config import load_or_create_secret_key

    key = load_or_create_secret_key(tmp_path / "secret_key")
    assert load_or_create_secret_key(tmp_path / "secret_key") == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_secret_key_readable_by_others_is_made_private(tmp_path: Path) -> None:
    from trek_audit.webui.config import load_or_create_secret_key

    path = tmp_path / "secret_key"
    path.write_text("k" * 64 + "\n", encoding="ascii")
    path.chmod(0o644)
    assert load_or_create_secret_key(path) == "k" * 64
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", ["", "\n", "short\n"], ids=["empty", "newline", "short"])
def test_secret_key_file_without_a_usable_key_is_refused(tmp_path: Path, content: str) -> None:
    from trek_audit.webui.config import SecretKeyError, load_or_create_secret_key

    path = tmp_path / "secret_key"
    path.write_text(content, encoding="ascii")
    with pytest.raises(SecretKeyError, match="TREK_SECRET_KEY"):
        load_or_create_secret_key(path)


def test_accounts_file_is_private(tmp_path: Path) -> None:
    # It holds the password hashes.
    Accounts(tmp_path / "accounts.db").create("someone", "a-long-password")
    assert (tmp_path / "accounts.db").stat().st_mode & 0o777 == 0o600


def test_accounts_file_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "accounts.db"
    Accounts(path).create("someone", "a-long-password")
    path.chmod(0o644)
    accounts = Accounts(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert accounts.verify("someone", "a-long-password") is not None


def test_serve_explains_an_unusable_secret_key_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("", encoding="ascii")
    result = runner.invoke(
        main, ["serve", "--data-dir", str(tmp_path)], env={"TREK_SECRET_KEY": None}
    )
    assert result.exit_code == 1
    assert "holds no usable key" in result.output and "TREK_SECRET_KEY" in result.output
