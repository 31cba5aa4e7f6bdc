"""``trek-audit backup`` and ``trek-audit verify``."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import click
import orjson

from trek_audit.options import data_dir_option, load_settings, setting_option

from .backup import BackupError
from .backup import backup as make_backup
from .verify_report import Problem, write_report

__all__ = ["backup", "verify"]


@click.command("backup")
@data_dir_option
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace DESTINATION if it exists.")
def backup(data_dir: Path | None, destination: Path, force: bool) -> None:
    """Copy the audit database to DESTINATION while it is in use, as one consistent snapshot.

    Safe while `serve` or `index` runs: SQLite's online backup copies audit.db as one read
    sees it, and the indexer goes on meanwhile. The copy is a single file, mode 0600,
    checked before it appears under its name. To restore, stop trek-audit, put the copy in
    place of <data>/audit.db (removing audit.db-wal and audit.db-shm), and start it again:
    the indexer goes on from the copy's positions in the log files.

    \b
    Examples:
        trek-audit backup /backups/audit-$(date +%F).db
        trek-audit backup --data-dir /srv/trek/data --force /backups/audit-latest.db
    """
    settings = load_settings(data_dir=data_dir)
    try:
        done = make_backup(settings.data.audit_db, destination, overwrite=force)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"backed up {done.rows} audit rows (schema version {done.schema_version}, "
        f"{done.size} bytes) to {done.path}"
    )


@click.command("verify")
@data_dir_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@setting_option(
    "TREK_VERIFY_KEY_FILE",
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(
    ctx: click.Context,
    data_dir: Path | None,
    paths: tuple[Path, ...],
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Check the hash chain, the seals and the audit database against the log files.

    Without PATH it checks the data directory: trek.log.N .. trek.log, and every row of
    audit.db against the line it came from (audit.db is opened read-only); the result is
    kept in <data>/verify.json for the panel. With PATHs it checks those files only, for
    instance a copy a log shipper delivered elsewhere. It reports every problem it finds,
    each with its file and line (or row) and seq range, and keeps going.

    With the verification key printed by `trek-audit seal init` it also checks each seal's
    MAC with exactly that seal's epoch key. Without it, the chain and the seals' continuity
    catch corruption and careless edits, not a forger who recomputes the hashes.

    Exit status: 0 intact, 1 not intact, 2 could not run.

    \b
    Examples:
        trek-audit verify --key-file /secure/trek-verification.key
        trek-audit verify --json > report.json
        trek-audit verify /mnt/shipped/trek.log.3 /mnt/shipped/trek.log.2
    """
    # Imported here: the checker pulls in the writer's line format and chain, which
    # `trek-audit backup` has no use for.
    from .verification import VerifyError, read_verification_key, verify_data_dir, verify_paths

    settings = load_settings(
        usage_error=True,
        data_dir=data_dir,
        verify_key_file=None if key_file is None else str(key_file),
    )
    try:
        key = (
            read_verification_key(Path(settings.verify_key_file))
            if settings.verify_key_file
            else None
        )
        if paths:
            outcome = verify_paths(list(paths), key)
        else:
            outcome = verify_data_dir(settings.data, backups=settings.log_backups, key=key)
    except (VerifyError, sqlite3.Error, OSError) as error:
        click.echo(f"Error: {error}", err=True)
        ctx.exit(2)
    report = outcome.report()
    if not paths:
        try:
            write_report(settings.data, report)
        except OSError as error:
            click.echo(
                f"Error: cannot store the report in {settings.data.verify_report}: {error}",
                err=True,
            )
            ctx.exit(2)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
        ctx.exit(outcome.exit_code)
    for problem in outcome.problems:
        click.echo(describe(problem))
    summary = outcome.summary
    click.echo(
        f"checked {summary['files']} files, {summary['lines']} lines, {summary['seals']} "
        f"seals ({summary['epochs']} epochs), {summary['rows']} rows; "
        f"{summary['unsealed']} lines unsealed"
    )
    for note in outcome.notes:
        click.echo(f"note: {note}")
    if outcome.problems:
        count = len(outcome.problems)
        click.echo(f"NOT INTACT: {count} problem{'s' if count != 1 else ''}")
    else:
        click.echo("intact" + ("" if outcome.keyed else " (MACs not checked)"))
    ctx.exit(outcome.exit_code)


def describe(problem: Problem) -> str:
    """One line for a problem: where, what kind, the seq range, and the message."""
    if problem["file"] is not None:
        where = problem["file"] + (f":{problem['line']}" if problem["line"] else "")
    else:
        where = "audit.db"
    if problem["row"] is not None:
        where += f" (row {problem['row']})"
    first, last = problem["first_seq"], problem["last_seq"]
    seqs = ""
    if first is not None or last is not None:
        seqs = f" [seq {first}]" if first == last else f" [seq {first or '?'}..{last or '?'}]"
    return f"{where}: {problem['kind']}{seqs}: {problem['message']}"
