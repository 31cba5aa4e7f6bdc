"""``trek-audit index`` and ``trek-audit status``."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import sys
from pathlib import Path
from types import FrameType

import click

from trek_audit.layout import LOCAL_SOURCE
from trek_audit.options import data_dir_option, load_settings, setting_option
from trek_audit.settings import Settings
from trek_audit.store import read_status
from trek_audit.store.files import NotARegularFile
from trek_audit.store.health import HealthReport, read_health
from trek_audit.store.status import SourceStatus

from .follower import Indexer
from .lock import IndexerBusy
from .sealing import Sealer

__all__ = ["index", "status"]

log = logging.getLogger(__name__)


@click.command("index")
@data_dir_option
@click.option("--once", is_flag=True, help="Index what is in the log files now, then exit.")
@click.option(
    "--wait",
    is_flag=True,
    help="If another indexer runs on this data directory, wait for it instead of exiting.",
)
@click.option(
    "--rescan-interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between full rescans; file-system events wake it earlier.",
)
@click.option("--no-watch", is_flag=True, help="Ignore file-system events; rescan only.")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.option("-v", "--verbose", is_flag=True, help="Log every commit too.")
def index(
    data_dir: Path | None,
    once: bool,
    wait: bool,
    rescan_interval: float,
    no_watch: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Index trek.log and its rotations into the audit database, exactly once.

    Without --once it follows the log directory until stopped: Ctrl-C or SIGTERM
    stop it cleanly, with everything read committed. Only one indexer works on a data
    directory; a second one exits with status 1, or waits with --wait. Where a sealing
    key exists (`trek-audit seal init`), it also seals the log when lines have been
    unsealed for TREK_SEAL_INTERVAL seconds, even if the app writes nothing more
    (--once: if they are, before indexing).

    \b
    Examples:
        trek-audit index --data-dir ./data
        trek-audit index --once
        TREK_DATA_DIR=/srv/trek/data trek-audit index --wait
    """
    _configure_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    settings = load_settings(data_dir=data_dir)
    try:
        if once:
            _index_once(settings, wait)
        else:
            _follow(settings, wait, rescan_interval, not no_watch)
    except IndexerBusy as busy:
        raise click.ClickException(str(busy)) from None
    except sqlite3.DatabaseError as error:
        raise Unusable(
            f"{settings.data.audit_db}: {error} (not a readable audit database: restore a "
            "backup, or move it away to have it rebuilt from the log files)"
        ) from None
    except OSError as error:
        raise Unusable(_describe_os_error(error, settings.data.root)) from None


class Unusable(click.ClickException):
    """A file of the data directory cannot be used: one line naming it, exit status 2."""

    exit_code = 2


def _describe_os_error(error: OSError, fallback: Path) -> str:
    if isinstance(error, NotARegularFile):
        return str(error.strerror)
    where = error.filename if error.filename is not None else fallback
    return f"{where}: {error.strerror or error}"


def _index_once(settings: Settings, wait: bool) -> None:
    # Before indexing, so that the seal is indexed (and the chain checked) in this run.
    sealer = Sealer.from_settings(settings)
    try:
        sealer.seal_if_due()
    finally:
        sealer.stop()
    if sys.stdout.isatty():
        total = read_status(settings.data_dir)["lag_bytes"]
        with click.progressbar(length=total, label="indexing", show_pos=False) as bar:
            report = Indexer.from_settings(settings, wait=wait, on_progress=bar.update).run_once()
    else:
        report = Indexer.from_settings(settings, wait=wait).run_once()
    click.echo(
        f"indexed {report.rows} rows from {report.files} file(s), rejected {report.rejected} "
        f"line(s); last seq {report.last_seq}"
    )
    if report.duplicates_dropped:
        click.echo(f"dropped {report.duplicates_dropped} identical line(s) read again")
    for name, part in report.sources.items():
        if name != LOCAL_SOURCE and (part.rows or part.rejected):
            click.echo(
                f"  source {name}: {part.rows} rows, rejected {part.rejected} line(s); "
                f"last seq {part.last_seq}"
            )
    for name, part in report.sources.items():
        if part.gaps:
            missing = sum(last - first + 1 for first, last in part.gaps)
            where = "" if name == LOCAL_SOURCE else f" of source {name}"
            click.echo(
                f"warning: {missing} event(s){where} missing in {len(part.gaps)} gap(s)", err=True
            )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived: stop following, with everything read committed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _follow(settings: Settings, wait: bool, rescan_interval: float, watch: bool) -> None:
    indexer = Indexer.from_settings(
        settings, wait=wait, rescan_interval=rescan_interval, watch=watch
    )

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # Raise in the main thread rather than set an Event here: the handler may run while
        # the main thread holds that Event's lock (inside its wait), which would deadlock.
        # A second signal must not interrupt the clean stop: ignore it from now on.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise StopRequested(signum)

    sealer = Sealer.from_settings(settings)
    previous = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        indexer.start()
        log.info("indexing %s into %s", indexer.log_dir, indexer.db_path)
        sealer.start()  # once this process is the directory's indexer, not while it waits
        while not indexer.stop_event.wait(0.5):
            pass
    except StopRequested as stop:
        log.info("stopping on %s", signal.Signals(stop.signum).name)
    finally:
        sealer.stop()
        indexer.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped; %d rows indexed in total", read_status(settings.data_dir)["indexed"])


@click.command("status")
@data_dir_option
@setting_option("TREK_FOLLOWER_EXPECTED", "--follower/--no-follower")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def status(ctx: click.Context, data_dir: Path | None, follower: bool | None, as_json: bool) -> None:
    """Show what the indexer has done: rows, last seq, lag, gaps, rejected lines, running.

    Exits 0 when healthy, 1 when degraded (lag above TREK_LAG_WARN_BYTES, gaps, rejected
    lines, incidents, or the indexer down for less than a minute), 2 when failing (audit.db
    unreadable, or no indexer for a minute or more), for cron jobs and Nagios-style checks.
    --no-follower judges a deployment that runs `index --once` from cron, where no indexer
    follows the log.

    \b
    Examples:
        trek-audit status
        trek-audit status --json --data-dir /srv/trek/data
        trek-audit index --once && trek-audit status --no-follower
    """
    # A malformed setting is a usage error, exit 2: a check must not read it as "degraded".
    settings = load_settings(usage_error=True, data_dir=data_dir, follower_expected=follower)
    report = read_health(settings)
    if as_json:
        click.echo(json.dumps(report.as_json(), sort_keys=True))
    else:
        click.echo(_describe(report))
    ctx.exit(report.exit_code)


def _describe(report: HealthReport) -> str:
    lines = [f"health:          {report.verdict}"]
    lines.extend(f"  - {reason}" for reason in report.reasons)
    lines.append(f"indexer:         {_describe_indexer(report)}")
    info = report.status
    if info is None:
        return "\n".join(lines)
    sources = info.get("sources") or []
    if len(sources) > 1:
        lines += [
            f"rows indexed:    {info['indexed']}",
            f"not yet indexed: {info['lag_bytes']} bytes",
            f"rejected lines:  {info['rejected']}",
            f"incidents:       {info['incidents']}",
            f"duplicates:      {info['duplicates_dropped']} identical line(s) dropped",
            f"last indexed at: {info['last_indexed_at'] or 'never'}",
            f"sources:         {len(sources)}",
        ]
        for source in sources:
            lines.extend(_describe_source(source))
        return "\n".join(lines)
    lines += [
        f"rows indexed:    {info['indexed']}",
        f"last seq:        {info['last_seq']}",
        f"not yet indexed: {info['lag_bytes']} bytes",
        f"rejected lines:  {info['rejected']}",
        f"incidents:       {info['incidents']}",
        f"last indexed at: {info['last_indexed_at'] or 'never'}",
    ]
    if info.get("duplicates_dropped"):
        lines.append(f"duplicates:      {info['duplicates_dropped']} identical line(s) dropped")
    if info["gaps"]:
        lines.append(f"gaps:            {info['missing']} event(s) missing")
        lines.extend(
            f"  seq {first}" if first == last else f"  seq {first}..{last}"
            for first, last in info["gaps"]
        )
    else:
        lines.append("gaps:            none")
    return "\n".join(lines)


def _describe_source(source: SourceStatus) -> list[str]:
    """A line for one source, then one per gap of it."""
    text = (
        f"  {source['name']}: {source['indexed']} rows, last seq {source['last_seq']}, "
        f"{source['lag_bytes']} bytes not yet indexed, {source['rejected']} rejected, "
        f"{source['incidents']} incident(s), {source['duplicates_dropped']} duplicate(s) "
        f"dropped, last indexed at {source['last_indexed_at'] or 'never'}"
    )
    if not source["gaps"]:
        return [text + ", no gaps"]
    gaps = [
        f"    seq {first}" if first == last else f"    seq {first}..{last}"
        for first, last in source["gaps"]
    ]
    return [text + f", {source['missing']} event(s) missing:", *gaps]


def _describe_indexer(report: HealthReport) -> str:
    indexer, info = report.indexer, report.status
    pid = info["pid"] if info is not None else None
    text = "running" if indexer.running else "not running"
    if indexer.running and pid is not None:
        text += f" (pid {pid})"
    if indexer.supervisor_pid is not None:
        text += (
            f"; supervised by serve (pid {indexer.supervisor_pid}), "
            f"restarted {indexer.restarts} time(s)"
        )
    if indexer.down_since is not None:
        text += f", down since {indexer.down_since.isoformat(timespec='seconds')}"
    return text


def _configure_logging(level: int) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
