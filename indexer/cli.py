"""``trek-audit index`` and ``trek-audit status``."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

import click

from trek_audit.options import data_dir_option, load_settings
from trek_audit.settings import Settings
from trek_audit.store import Status, read_status

from .follower import Indexer
from .lock import IndexerBusy

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
    directory; a second one exits with status 1, or waits with --wait.

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


def _index_once(settings: Settings, wait: bool) -> None:
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
    if report.gaps:
        missing = sum(last - first + 1 for first, last in report.gaps)
        click.echo(f"warning: {missing} event(s) missing in {len(report.gaps)} gap(s)", err=True)


def _follow(settings: Settings, wait: bool, rescan_interval: float, watch: bool) -> None:
    indexer = Indexer.from_settings(
        settings, wait=wait, rescan_interval=rescan_interval, watch=watch
    )

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        indexer.stop_event.set()
        indexer.wake()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            indexer.start()
        except IndexerBusy:
            if indexer.stop_event.is_set():
                return  # stopped while waiting for the other indexer
            raise
        log.info("indexing %s into %s", indexer.log_dir, indexer.db_path)
        while not indexer.stop_event.wait(0.5):
            pass
    finally:
        indexer.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped; %d rows indexed in total", read_status(settings.data_dir)["indexed"])


@click.command("status")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(data_dir: Path | None, as_json: bool) -> None:
    """Show what the indexer has done: rows, last seq, lag, gaps, rejected lines, running.

    \b
    Examples:
        trek-audit status
        trek-audit status --json --data-dir /srv/trek/data
    """
    info = read_status(load_settings(data_dir=data_dir).data_dir)
    if as_json:
        click.echo(json.dumps(info, sort_keys=True))
        return
    click.echo(_describe(info))


def _describe(info: Status) -> str:
    running = f"running (pid {info['pid']})" if info["running"] else "not running"
    lines = [
        f"indexer:         {running}",
        f"rows indexed:    {info['indexed']}",
        f"last seq:        {info['last_seq']}",
        f"not yet indexed: {info['lag_bytes']} bytes",
        f"rejected lines:  {info['rejected']}",
        f"incidents:       {info['incidents']}",
        f"last indexed at: {info['last_indexed_at'] or 'never'}",
    ]
    if info["gaps"]:
        lines.append(f"gaps:            {info['missing']} event(s) missing")
        lines.extend(
            f"  seq {first}" if first == last else f"  seq {first}..{last}"
            for first, last in info["gaps"]
        )
    else:
        lines.append("gaps:            none")
    return "\n".join(lines)


def _configure_logging(level: int) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
