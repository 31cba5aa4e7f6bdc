"""``trek-audit seal``: make the sealing key, and say where sealing stands."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import click

from trek_audit.options import data_dir_option, load_settings, setting_option

from .chain import key_id
from .seal_key import SealKeyError, SealKeyFile, create_key_file
from .state import read_state

__all__ = ["seal"]

key_file_option = setting_option(
    "TREK_SEAL_KEY_FILE", "--key-file", type=click.Path(dir_okay=False, path_type=Path)
)


@click.group("seal")
def seal() -> None:
    """Manage the sealing key that makes the log tamper-evident.

    Example: trek-audit seal init --data-dir /var/lib/trek-audit
    """


@seal.command("init")
@data_dir_option
@key_file_option
def init(data_dir: Path | None, key_file: Path | None) -> None:
    """Create the sealing key and print the verification key, once.

    Writers that can read the key seal the log from their next line on. The verification key
    printed last is shown only now: store it away from this host, and give it to
    `trek-audit verify --key-file`.

    Example: trek-audit seal init --data-dir /var/lib/trek-audit
    """
    settings = load_settings(data_dir=data_dir, seal_key_file=_text(key_file))
    path = settings.seal_key_path
    if os.path.lexists(path):
        raise click.ClickException(
            f"{path} already exists; a sealing key is never overwritten, since the seals made "
            "with it could no longer be checked. Remove it first only if you mean to start "
            "a new key."
        )
    try:
        verification_key = create_key_file(path)
    except FileExistsError:
        raise click.ClickException(f"{path} already exists; it was not changed") from None
    except OSError as error:
        raise click.ClickException(f"cannot create {path}: {error.strerror}") from None
    click.echo(f"Sealing key created: {path} (mode 0600, key id {key_id(verification_key)}).")
    click.echo("Writers that can read it seal the log from their next line on; it changes after")
    click.echo("every seal, so a copy stolen later cannot forge the seals made before.")
    click.echo("The verification key below is shown only now. Store it away from this host:")
    click.echo("whoever holds it can forge every seal. `trek-audit verify --key-file F` checks")
    click.echo("the seals with it (F holds the line below, or the key alone).")
    click.echo(f"verification key: {verification_key.hex()}")


@seal.command("status")
@data_dir_option
@key_file_option
def status(data_dir: Path | None, key_file: Path | None) -> None:
    """Show the sealing key's epoch and the log's last seal.

    Example: trek-audit seal status --data-dir /var/lib/trek-audit
    """
    settings = load_settings(data_dir=data_dir, seal_key_file=_text(key_file))
    path = settings.seal_key_path
    try:
        with SealKeyFile(path) as opened:
            key = opened.read()
        click.echo(f"key: {path}, key id {key.key_id}, next epoch {key.epoch}")
    except SealKeyError as error:
        click.echo(f"key: none usable ({error}); writers do not seal")
    lock_path = settings.data.logs.lock_file
    state = None
    with contextlib.suppress(OSError):
        fd = os.open(lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            state = read_state(fd)
        finally:
            os.close(fd)
    if state is None or not state.sound:
        click.echo("log: no writer state yet (the next append makes it)")
        return
    if state.seal_seq == 0:
        click.echo(f"log: last seq {state.seq}, no seal yet")
    else:
        click.echo(
            f"log: last seq {state.seq}, last seal at seq {state.seal_seq} "
            f"(epoch {state.seal_epoch}, key id {state.key_id_hex()})"
        )
    if state.unsealed_ns:
        age = max(0.0, time.time() - state.unsealed_ns / 1e9)
        click.echo(f"unsealed: {state.seq - state.seal_seq} lines, the oldest {age:.0f} s old")


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
