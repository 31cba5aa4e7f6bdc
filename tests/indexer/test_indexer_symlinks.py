"""Nothing follows a link it did not expect: a victim file linked in place of one of ours stays
exactly as it was, and the link is refused (by the indexer: an incident, and skipped).

The tests may run as root, whom no permission stops: only O_NOFOLLOW protects the victims.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer
from trek_audit.indexer.lock import IndexerLock
from trek_audit.layout import LogDir
from trek_audit.store.files import NotARegularFile
from trek_audit.webui.accounts_db import AccountsDB
from trek_audit.webui.secret_key import SecretKeyError, load_or_create_secret_key
from trek_audit.writer import AuditWriter
from trek_audit.writer.errors import AuditWriteError

from .logfiles import Reader, append, line

SECRET = b"the victim's own secret lines\n" + line(99)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A private file outside the data directory that nothing of trek-audit may touch."""
    path = tmp_path / "victim"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


def _untouched(victim: Path) -> bool:
    return victim.read_bytes() == SECRET and victim.stat().st_mode & 0o777 == 0o600


def test_a_rotated_log_that_is_a_link_is_skipped_and_reported_once(
    data_dir: Path, log_dir: Path, db: Reader, victim: Path
) -> None:
    append(log_dir / "trek.log", [1, 2])
    (log_dir / "trek.log.1").symlink_to(victim)
    Indexer(data_dir, watch=False).run_once()
    Indexer(data_dir, watch=False).run_once()
    assert db.seqs() == [1, 2]
    assert db.rejected() == []  # none of the victim's lines copied into the database
    [(kind, message)] = db.incidents()
    assert kind == "not_a_file"
    assert "trek.log.1 is a symbolic link" in message
    assert _untouched(victim)


def test_trek_log_as_a_link_is_neither_read_nor_appended_to(
    data_dir: Path, log_dir: Path, db: Reader, victim: Path
) -> None:
    (log_dir / "trek.log").symlink_to(victim)
    Indexer(data_dir, watch=False).run_once()
    assert db.seqs() == []
    assert db.rejected() == []
    with AuditWriter(log_dir) as writer, pytest.raises(AuditWriteError) as refused:
        writer.record("user.login")
    assert "trek.log" in str(refused.value)
    assert _untouched(victim)


def test_the_writer_lock_file_as_a_link_is_refused(log_dir: Path, victim: Path) -> None:
    LogDir(log_dir).state_dir.mkdir()
    LogDir(log_dir).lock_file.symlink_to(victim)
    with AuditWriter(log_dir) as writer, pytest.raises(AuditWriteError) as refused:
        writer.record("user.login")
    assert str(LogDir(log_dir).lock_file) in str(refused.value)
    assert not (log_dir / "trek.log").exists() or (log_dir / "trek.log").stat().st_size == 0
    assert _untouched(victim)


def test_the_indexer_lock_as_a_link_is_refused(data_dir: Path, victim: Path) -> None:
    (data_dir / "indexer.lock").symlink_to(victim)
    with pytest.raises(NotARegularFile, match="indexer.lock is a symbolic link"):
        IndexerLock(data_dir).acquire()
    assert _untouched(victim)


def test_the_secret_key_as_a_link_is_refused(data_dir: Path, victim: Path) -> None:
    (data_dir / "secret_key").symlink_to(victim)
    victim.chmod(0o644)
    with pytest.raises(SecretKeyError, match="secret_key is a symbolic link"):
        load_or_create_secret_key(data_dir / "secret_key")
    assert victim.read_bytes() == SECRET
    assert victim.stat().st_mode & 0o777 == 0o644  # not chmod'ed


def test_the_accounts_database_as_a_link_is_refused(data_dir: Path, victim: Path) -> None:
    (data_dir / "accounts.db").symlink_to(victim)
    victim.chmod(0o644)
    with pytest.raises(NotARegularFile, match="accounts.db is a symbolic link"):
        AccountsDB(data_dir / "accounts.db")
    assert victim.read_bytes() == SECRET
    assert victim.stat().st_mode & 0o777 == 0o644


def test_a_data_directory_that_is_itself_a_link_is_used(tmp_path: Path, victim: Path) -> None:
    real = tmp_path / "real"
    (real / "logs").mkdir(parents=True)
    link = tmp_path / "data"
    link.symlink_to(real, target_is_directory=True)
    with AuditWriter(link / "logs") as writer:
        writer.record("user.login")
    Indexer(link, watch=False).run_once()
    db = Reader(real / "audit.db")
    try:
        assert db.seqs() == [1]
    finally:
        db.close()
    assert os.path.isfile(real / "indexer.lock")
