"""``trek-audit record``: append one event from a shell script or an app in another language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import orjson

from trek_audit.options import data_dir_option, load_settings, setting_option

__all__ = ["record"]


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
    # orjson reads an integer past 64 bits as a float, silently changing it: the integers
    # are read again exactly, and one outside the range the Python API accepts is refused.
    json.loads(value, parse_int=_int64)
    return details


def _int64(text: str) -> int:
    number = int(text)
    if not -(2**63) <= number < 2**63:
        raise click.BadParameter(
            f"{text} is an integer outside the 64-bit range JSON readers accept",
            param_hint="--details",
        )
    return number


@click.command("record")
@click.argument("action")
@click.option("--user-id", type=int, default=None, help="ID of the acting user.")
@click.option("--username", default=None, help="Username of the acting user.")
@click.option("--email", default=None, help="Email address of the acting user.")
@click.option("--resource", default=None, help="Affected resource (file name, trip ID, ...).")
@click.option("--ip", default=None, help="Client IP address.")
@click.option("--details", default=None, metavar="JSON", help="Extra context, a JSON object.")
@data_dir_option
@setting_option("TREK_LOG_MAX_BYTES", "--max-bytes", type=click.IntRange(min=1))
@setting_option("TREK_LOG_BACKUPS", "--backups", type=click.IntRange(min=0))
@setting_option("TREK_LOG_FSYNC", "--fsync/--no-fsync")
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
    # Imported here, not at the top: `trek-audit --help` and the other commands need none of it.
    from .appender import AuditWriter
    from .errors import AuditWriteError
    from .line import encode

    settings = load_settings(
        usage_error=True,
        data_dir=data_dir,
        log_max_bytes=max_bytes,
        log_backups=backups,
        log_fsync=fsync,
    )
    parsed_details = _parse_details(details)
    user = None
    if user_id is not None or username is not None or email is not None:
        user = {"id": user_id, "username": username, "email": email}
    try:
        with AuditWriter.from_settings(settings) as audit_writer:
            event = audit_writer.record(
                action, user=user, resource=resource, ip=ip, details=parsed_details
            )
    except (ValueError, TypeError) as error:
        raise click.UsageError(str(error)) from None
    except AuditWriteError as error:
        raise click.ClickException(str(error)) from None
    click.echo(encode(event).decode(), nl=False)
