"""``trek-audit record``: append one event from a shell script or an app in another language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from .appender import AuditWriteError, AuditWriter
from .config import SETTINGS, WriterConfig
from .line import encode

__all__ = ["record"]


def _setting_help(name: str) -> str:
    setting = SETTINGS[name]
    return f"{setting.help} [env {name}; default {setting.default}]"


def _parse_details(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        details = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint="--details") from None
    if details is not None and type(details) is not dict:
        raise click.BadParameter(
            f'must be a JSON object such as \'{{"method": "password"}}\', not {value!r}',
            param_hint="--details",
        )
    return details


@click.command("record")
@click.argument("action")
@click.option("--user-id", type=int, default=None, help="ID of the acting user.")
@click.option("--username", default=None, help="Username of the acting user.")
@click.option("--email", default=None, help="Email address of the acting user.")
@click.option("--resource", default=None, help="Affected resource (file name, trip ID, ...).")
@click.option("--ip", default=None, help="Client IP address.")
@click.option("--details", default=None, metavar="JSON", help="Extra context, a JSON object.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="TREK_DATA_DIR",
    default=None,
    help=_setting_help("TREK_DATA_DIR"),
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    envvar="TREK_LOG_MAX_BYTES",
    default=None,
    help=_setting_help("TREK_LOG_MAX_BYTES"),
)
@click.option(
    "--backups",
    type=click.IntRange(min=0),
    envvar="TREK_LOG_BACKUPS",
    default=None,
    help=_setting_help("TREK_LOG_BACKUPS"),
)
@click.option(
    "--fsync/--no-fsync",
    envvar="TREK_LOG_FSYNC",
    default=None,
    help=_setting_help("TREK_LOG_FSYNC"),
)
def record(
    action: str,
    user_id: int | None,
    username: str | None,
    email: str | None,
    resource: str | None,
    ip: str | None,
    details: str | None,
    data_dir: Path | None,
    max_bytes: int | None,
    backups: int | None,
    fsync: bool | None,
) -> None:
    """Append one audit event to <data>/logs/trek.log and print it as written (one JSON line).

    The user is given by --user-id, --username and --email; with none of them the event has
    an anonymous actor (user null). Exits with status 1 if the event cannot be written and
    2 for a malformed action or details.

    \b
    Example:
        trek-audit record user.login --user-id 7 --username alice \\
            --email alice@example.com --ip 203.0.113.5 --details '{"method": "password"}'
    """
    try:
        config = WriterConfig.from_env()
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    parsed_details = _parse_details(details)
    user = None
    if user_id is not None or username is not None or email is not None:
        user = {"id": user_id, "username": username, "email": email}
    try:
        with AuditWriter(
            (data_dir if data_dir is not None else config.data_dir) / "logs",
            max_bytes=config.max_bytes if max_bytes is None else max_bytes,
            backups=config.backups if backups is None else backups,
            max_line_bytes=config.max_line_bytes,
            fsync=config.fsync if fsync is None else fsync,
        ) as audit_writer:
            event = audit_writer.record(
                action, user=user, resource=resource, ip=ip, details=parsed_details
            )
    except (ValueError, TypeError) as error:
        raise click.UsageError(str(error)) from None
    except AuditWriteError as error:
        raise click.ClickException(str(error)) from None
    click.echo(encode(event).decode(), nl=False)
