"""``trek-audit token create|revoke|list``: each change recorded first, the secret printed once."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trek_audit.cli import main
from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.webui.tokens import TOKEN_PREFIX, ApiToken, TokenStore
from trek_audit.writer import Event, decode

from ..webui import test_webui_fail_closed as fail_closed
from ..webui.webui_support import small_log_disk


def token(runner: CliRunner, data_dir: Path, *args: str) -> Result:
    return runner.invoke(main, ["token", *args, "--data-dir", str(data_dir)])


def listed(data_dir: Path) -> list[ApiToken]:
    with AccountsDB(data_dir / "accounts.db") as db:
        return TokenStore(db).list()


def verify(data_dir: Path, secret: str) -> ApiToken | None:
    with AccountsDB(data_dir / "accounts.db") as db:
        return TokenStore(db).verify(secret)


def events(data_dir: Path) -> list[Event]:
    log = data_dir / "logs" / "trek.log"
    return [decode(line) for line in log.read_bytes().splitlines()] if log.exists() else []


def test_create_prints_the_secret_last_on_its_own_line(runner: CliRunner, data_dir: Path) -> None:
    result = token(runner, data_dir, "create", "siem")
    assert result.exit_code == 0, result.output
    secret = result.stdout.splitlines()[-1]
    assert result.stdout == secret + "\n"  # stdout is the secret alone: $(...) takes it
    assert secret.startswith(TOKEN_PREFIX) and len(secret) == len(TOKEN_PREFIX) + 43
    assert "copy it now" in result.stderr
    verified = verify(data_dir, secret)
    assert verified is not None and verified.name == "siem" and verified.created_by == "cli"


def test_create_records_the_event_with_via_cli_and_no_secret(
    runner: CliRunner, data_dir: Path
) -> None:
    secret = token(runner, data_dir, "create", "siem").stdout.strip()
    [event] = events(data_dir)
    assert event["action"] == "admin.token_create"
    assert event["resource"] == "siem"
    assert event["details"] == {"name": "siem", "via": "cli"}
    assert secret not in (data_dir / "logs" / "trek.log").read_text()


def test_create_refuses_a_bad_or_taken_name_and_records_nothing(
    runner: CliRunner, data_dir: Path
) -> None:
    bad = token(runner, data_dir, "create", "no/slash")
    assert bad.exit_code == 1 and "a token name is 1 to 64" in bad.output
    assert token(runner, data_dir, "create", "siem").exit_code == 0
    taken = token(runner, data_dir, "create", "siem")
    assert taken.exit_code == 1 and "already listed" in taken.output
    assert [e["action"] for e in events(data_dir)] == ["admin.token_create"]


def test_revoke_refuses_the_token_from_then_on_and_records_it(
    runner: CliRunner, data_dir: Path
) -> None:
    secret = token(runner, data_dir, "create", "siem").stdout.strip()
    result = token(runner, data_dir, "revoke", "siem")
    assert result.exit_code == 0, result.output
    assert "revoked token 'siem'" in result.output
    assert verify(data_dir, secret) is None
    assert [(t.name, t.state) for t in listed(data_dir)] == [("siem", "revoked")]
    revoke = events(data_dir)[-1]
    assert (revoke["action"], revoke["resource"], revoke["details"]) == (
        "admin.token_revoke",
        "siem",
        {"name": "siem", "via": "cli"},
    )


def test_revoke_of_an_unknown_or_revoked_token_fails_and_records_nothing(
    runner: CliRunner, data_dir: Path
) -> None:
    unknown = token(runner, data_dir, "revoke", "nope")
    assert unknown.exit_code == 1 and "no token named 'nope'" in unknown.output
    token(runner, data_dir, "create", "siem")
    token(runner, data_dir, "revoke", "siem")
    again = token(runner, data_dir, "revoke", "siem")
    assert again.exit_code == 1 and "already revoked" in again.output
    assert [e["action"] for e in events(data_dir)] == ["admin.token_create", "admin.token_revoke"]


def test_list_shows_a_table_with_revoked_tokens_too(runner: CliRunner, data_dir: Path) -> None:
    token(runner, data_dir, "create", "siem")
    token(runner, data_dir, "create", "backup")
    token(runner, data_dir, "revoke", "backup")
    result = token(runner, data_dir, "list")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "CREATED", "BY", "LAST", "USED", "STATE"]
    assert [row.split()[0] for row in rows] == ["backup", "siem"]
    assert rows[0].split()[2:] == ["cli", "never", "revoked", listed(data_dir)[0].revoked]
    assert rows[1].split()[2:] == ["cli", "never", "active"]


def test_list_json_gives_every_field_but_the_secret(runner: CliRunner, data_dir: Path) -> None:
    secret = token(runner, data_dir, "create", "siem").stdout.strip()
    verify(data_dir, secret)
    result = token(runner, data_dir, "list", "--json")
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)
    assert set(item) == {"name", "created", "created_by", "last_used", "revoked", "state"}
    assert (item["name"], item["created_by"], item["revoked"], item["state"]) == (
        "siem",
        "cli",
        None,
        "active",
    )
    assert item["last_used"] is not None
    assert secret not in result.stdout


def test_list_of_no_tokens_is_the_header_or_an_empty_array(
    runner: CliRunner, data_dir: Path
) -> None:
    assert token(runner, data_dir, "list").stdout.split() == [
        "NAME",
        "CREATED",
        "BY",
        "LAST",
        "USED",
        "STATE",
    ]
    assert json.loads(token(runner, data_dir, "list", "--json").stdout) == []


class TestWhenTheLogCannotBeWritten:
    """On a real full or read-only log disk: the command fails and changes nothing."""

    @pytest.fixture
    def data_dir(self, tmp_path: Path) -> Iterator[Path]:
        with small_log_disk(tmp_path) as path:
            yield path

    def test_create_makes_no_token(self, runner: CliRunner, data_dir: Path) -> None:
        fail_closed.fill_up(data_dir / "logs")
        result = token(runner, data_dir, "create", "siem")
        assert result.exit_code == 1
        assert "the audit log cannot be written, so the token 'siem' was not created" in (
            result.output
        )
        assert "No space left on device" in result.output
        assert TOKEN_PREFIX not in result.output
        assert listed(data_dir) == []
        assert fail_closed.panel_events(data_dir) == []

    def test_revoke_leaves_the_token_working(self, runner: CliRunner, data_dir: Path) -> None:
        secret = token(runner, data_dir, "create", "siem").stdout.strip()
        logs = data_dir / "logs"
        subprocess.run(["mount", "-o", "remount,ro", str(logs)], check=True)
        result = token(runner, data_dir, "revoke", "siem")
        assert result.exit_code == 1
        assert "the token 'siem' was not revoked" in result.output
        assert "Read-only file system" in result.output
        assert verify(data_dir, secret) is not None

        fail_closed.make_writable(logs)
        assert token(runner, data_dir, "revoke", "siem").exit_code == 0
        assert verify(data_dir, secret) is None
        assert fail_closed.panel_events(data_dir) == ["admin.token_create", "admin.token_revoke"]
