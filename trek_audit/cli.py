"""The ``trek-audit`` command: a click group with each component's commands."""

from __future__ import annotations

import click

from trek_audit.indexer.cli import COMMANDS as INDEXER_COMMANDS
from trek_audit.webui.cli import register as register_webui_commands
from trek_audit.writer.cli import record as record_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trek-audit")
def main() -> None:
    """trek-audit: the audit log of TREK, log file first.

    \b
    Example:
        trek-audit record user.login --user-id 7 --username alice
    """


for _command in INDEXER_COMMANDS:
    main.add_command(_command)

register_webui_commands(main)
main.add_command(record_command)
