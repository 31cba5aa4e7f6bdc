"""The ``trek-audit`` command: one click group whose subcommands are imported when they run.

``trek-audit record`` is meant to be called once per event from shell scripts, so the group
imports nothing of the components up front: each command's module is loaded on first use
(click's documented ``LazyGroup`` pattern), and ``--help`` lists the commands from the short
help declared here, without importing the panel, Flask or watchdog. A test checks that each
declared short help is the command's own.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import click

__all__ = ["COMMANDS", "LazyGroup", "main"]


class LazyCommand(NamedTuple):
    """Where a subcommand lives (``module:attribute``) and its one-line help."""

    target: str
    short_help: str


COMMANDS: dict[str, LazyCommand] = {
    "record": LazyCommand(
        "trek_audit.writer.cli:record",
        "Append one audit event to <data>/logs/trek.log and print it as written (one JSON line).",
    ),
    "index": LazyCommand(
        "trek_audit.indexer.cli:index",
        "Index trek.log and its rotations into the audit database, exactly once.",
    ),
    "status": LazyCommand(
        "trek_audit.indexer.cli:status",
        "Show what the indexer has done: rows, last seq, lag, gaps, rejected lines, running.",
    ),
    "serve": LazyCommand(
        "trek_audit.webui.cli:serve",
        "Serve the admin panel on gunicorn, with the indexer for the data directory.",
    ),
    "admin": LazyCommand(
        "trek_audit.webui.cli:admin",
        "Manage panel accounts (stored in <data>/accounts.db).",
    ),
    "token": LazyCommand(
        "trek_audit.webui.cli:token",
        "Manage the panel's read-only API tokens (stored in <data>/accounts.db).",
    ),
    "seal": LazyCommand(
        "trek_audit.writer.seal_cli:seal",
        "Manage the sealing key that makes the log tamper-evident.",
    ),
    "verify": LazyCommand(
        "trek_audit.store.cli:verify",
        "Check the hash chain, the seals and the audit database against the log files.",
    ),
    "ingest": LazyCommand(
        "trek_audit.writer.cli:ingest",
        "Take audit events on a Unix socket, one JSON request per line (as record --stdin).",
    ),
    "import-trek": LazyCommand(
        "trek_audit.writer.trek_import:import_trek",
        "Import the audit_log of a TREK database into the source trek-import, once.",
    ),
    "backup": LazyCommand(
        "trek_audit.store.cli:backup",
        "Copy the audit database to DESTINATION while it is in use, as one consistent snapshot.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is asked for."""

    def __init__(self, *args: object, lazy_commands: dict[str, LazyCommand], **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            return self.load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_commands[cmd_name].target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy_commands[name].short_help) for name in sorted(self.lazy_commands)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="trek-audit")
def main() -> None:
    """trek-audit: the audit log of TREK, log file first.

    Every command reads its settings from the environment (TREK_DATA_DIR, TREK_LOG_*, ...;
    see the README); options given on the command line win.

    \b
    Example:
        trek-audit record user.login --user-id 7 --username alice
    """
