"""``trek-audit backup``."""

from __future__ import annotations

from pathlib import Path

import click

from trek_audit.options import data_dir_option, load_settings

from .backup import BackupError
from .backup import backup as make_backup

__all__ = ["backup"]


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
