"""``trek-audit record`` and ``ingest``: events from shell scripts and apps in any language.

``record`` appends one event given as options, or, with ``--stdin``, stays up and answers a
stream of requests (``protocol.py``); ``ingest`` takes the same requests on a Unix socket
(``ingest.py``).
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from trek_audit.options import data_dir_option, load_settings, setting_option
from trek_audit.settings import Settings

if TYPE_CHECKING:
    from .ingest import IngestServer

__all__ = ["ingest", "record"]


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


F = TypeVar("F", bound=Callable[..., Any])

_WRITER_OPTIONS = (
    data_dir_option,
    setting_option("TREK_LOG_MAX_BYTES", "--max-bytes", type=click.IntRange(min=1)),
    setting_option("TREK_LOG_BACKUPS", "--backups", type=click.IntRange(min=0)),
    setting_option("TREK_LOG_FSYNC", "--fsync/--no-fsync"),
)


def writer_options(command: F) -> F:
    """The options of a command that appends events: its data directory and writer limits."""
    for option in reversed(_WRITER_OPTIONS):  # as if stacked in this order, top first
        command = option(command)
    return command


@click.command("record")
@click.argument("action", required=False)
@click.option("--user-id", type=int, default=None, help="ID of the acting user.")
@click.option("--username", default=None, help="Username of the acting user.")
@click.option("--email", default=None, help="Email address of the acting user.")
@click.option("--resource", default=None, help="Affected resource (file name, trip ID, ...).")
@click.option("--ip", default=None, help="Client IP address.")
@click.option("--details", default=None, metavar="JSON", help="Extra context, a JSON object.")
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read one JSON request per line on standard input and answer each on standard output.",
)
@writer_options
def record(
    action: str | None,
    user_id: int | None,
    username: str | None,
    email: str | None,
    resource: str | None,
    ip: str | None,
    details: str | None,
    from_stdin: bool,
    data_dir: Path | None,
    max_bytes: int | None,
    backups: int | None,
    fsync: bool | None,
) -> None:
    """Append one audit event to <data>/logs/trek.log and print it as written (one JSON line).

    The user is given by --user-id, --username and --email; with none of them the event has
    an anonymous actor (user null). Exits with status 1 if the event cannot be written and
    2 for a malformed action or details.

    With --stdin (and no ACTION) it stays up for an app in another language: each line of
    standard input is one request, a JSON object with the keys action (required), user
    (null or {"id", "username", "email"}), resource, ip and details, and each gets one line
    on standard output, in order: the event as written, or {"error": {"type": "invalid" or
    "write", "message": ...}}. Neither error stops it; the end of input does (status 0).

    \b
    Example:
        trek-audit record user.login --user-id 7 --username alice \\
            --email alice@example.com --ip 203.0.113.5 --details '{"method": "password"}'

    \b
    With --stdin:
        echo '{"action": "trip.create", "user": {"id": 7}, "resource": "trip/42"}' \\
            | trek-audit record --stdin
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
    if from_stdin:
        event_options = {
            "ACTION": action,
            "--user-id": user_id,
            "--username": username,
            "--email": email,
            "--resource": resource,
            "--ip": ip,
            "--details": details,
        }
        given = [name for name, value in event_options.items() if value is not None]
        if given:
            raise click.UsageError(
                f"--stdin takes each event from standard input; drop {', '.join(given)}"
            )
        _answer_stdin(settings)
        return
    if action is None:
        raise click.UsageError("Missing argument 'ACTION' (or --stdin).")
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


def _answer_stdin(settings: Settings) -> None:
    from .appender import AuditWriter
    from .protocol import Conversation, answer_stream, max_request_bytes

    with AuditWriter.from_settings(settings) as audit_writer:
        conversation = Conversation(audit_writer, max_request_bytes(settings))
        try:
            answer_stream(conversation, sys.stdin.fileno(), sys.stdout.fileno())
        except BrokenPipeError:
            # Nobody reads the answers any more; whatever was asked before was answered.
            raise click.ClickException(
                "standard output was closed before the end of input"
            ) from None


@click.command("ingest")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The Unix socket to listen on [default: TREK_INGEST_SOCKET, else <data>/ingest.sock].",
)
@click.option("--quiet", is_flag=True, help="Print nothing when it starts and stops.")
@writer_options
def ingest(
    socket_path: Path | None,
    quiet: bool,
    data_dir: Path | None,
    max_bytes: int | None,
    backups: int | None,
    fsync: bool | None,
) -> None:
    """Take audit events on a Unix socket, one JSON request per line (as record --stdin).

    For an app that cannot run trek-audit itself (another container sharing the data
    volume): it connects, writes requests and reads one answer line per request, in order,
    exactly as with `record --stdin`. Several connections are served at once. The socket is
    created mode 0660 (its owner and group may record, nobody else); a socket left by a
    killed server is replaced, while a live one, or a path that is not a socket, ends it
    with status 1. SIGTERM or Ctrl-C stop it cleanly: the requests it read are answered and
    the socket is removed (status 0).

    \b
    Examples:
        trek-audit ingest
        trek-audit ingest --socket /srv/trek/data/ingest.sock
        printf '%s\\n' '{"action": "user.login", "user": {"id": 7}}' \\
            | socat - UNIX-CONNECT:data/ingest.sock
    """
    from .appender import AuditWriter
    from .ingest import IngestServer, SocketPathError, serve_until_signalled
    from .protocol import max_request_bytes

    settings = load_settings(
        data_dir=data_dir, log_max_bytes=max_bytes, log_backups=backups, log_fsync=fsync
    )
    path = socket_path or Path(settings.ingest_socket or settings.data.ingest_socket)
    with AuditWriter.from_settings(settings) as audit_writer:
        server = IngestServer(
            audit_writer,
            path,
            max_request_bytes=max_request_bytes(settings),
            warn=_echo_to_stderr,
        )
        try:
            signum = serve_until_signalled(server, on_start=None if quiet else _echo_listening)
        except SocketPathError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:
            raise click.ClickException(f"cannot listen on {path}: {error}") from None
    if not quiet:
        click.echo(f"stopped on {signal.Signals(signum).name}; removed {server.path}")


def _echo_listening(server: IngestServer) -> None:
    click.echo(f"listening on {server.path} (Ctrl-C stops)")


def _echo_to_stderr(message: str) -> None:
    click.echo(f"trek-audit ingest: {message}", err=True)
