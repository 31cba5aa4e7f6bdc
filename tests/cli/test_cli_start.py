"""The trek-audit command loads only the component a subcommand needs, so it starts fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from trek_audit.cli import COMMANDS, main

HEAVY = [
    "flask",
    "werkzeug",
    "watchdog",
    "gunicorn",
    "sqlite_utils",
    "trek_audit.webui",
    "trek_audit.indexer",
    "trek_audit.store",
]


def modules_after(args: list[str], env_dir: Path) -> set[str]:
    """Run ``trek-audit ARGS`` in a fresh interpreter and list the modules it imported."""
    code = (
        "import sys, json\n"
        "from trek_audit.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "finally:\n"
        "    sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "TREK_DATA_DIR": str(env_dir)},
    )
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [["--help"], ["record", "user.login"]],
    ids=["help", "record"],
)
def test_help_and_record_import_neither_the_panel_nor_the_indexer(
    args: list[str], tmp_path: Path
) -> None:
    loaded = modules_after(args, tmp_path / "data")
    heavy_loaded = [m for m in loaded for h in HEAVY if m == h or m.startswith(h + ".")]
    assert sorted(heavy_loaded) == []


def test_the_group_knows_every_command_without_importing_it() -> None:
    assert sorted(COMMANDS) == [
        "admin",
        "backup",
        "import-trek",
        "index",
        "ingest",
        "record",
        "seal",
        "serve",
        "status",
        "token",
        "verify",
    ]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_declared_short_help_is_the_first_line_of_the_commands_own_help(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert command is not None and command.help is not None
    assert COMMANDS[name].short_help == command.help.strip().splitlines()[0]


def test_help_lists_every_command_with_its_short_help(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for name, lazy in COMMANDS.items():
        assert name in result.output
        assert lazy.short_help.split()[0] in result.output


def test_an_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output
