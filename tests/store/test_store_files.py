"""audit.db and the indexer's lock: created no wider than the log (0640), never through a link."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from trek_audit.indexer import Indexer
from trek_audit.store import open_database
from trek_audit.store.files import NotARegularFile

VICTIM = b"not yours"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most systems run with, which lets 0644 through."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.usefixtures("open_umask")
def test_audit_db_its_wal_and_shm_and_the_lock_are_no_wider_than_the_log(data_dir: Path) -> None:
    (data_dir / "logs").mkdir()
    (data_dir / "logs" / "trek.log").write_bytes(b"")
    with Indexer(data_dir, rescan_interval=0.05, watch=False):
        for name in ("audit.db", "audit.db-wal", "audit.db-shm", "indexer.lock"):
            assert _mode(data_dir / name) & ~0o640 == 0, name


@pytest.mark.usefixtures("open_umask")
def test_an_audit_db_made_0644_by_an_older_version_is_narrowed(data_dir: Path) -> None:
    open_database(data_dir / "audit.db").close()
    os.chmod(data_dir / "audit.db", 0o644)
    open_database(data_dir / "audit.db").close()
    assert _mode(data_dir / "audit.db") == 0o640


@pytest.mark.parametrize("name", ["audit.db", "audit.db-wal", "audit.db-shm"])
def test_audit_db_or_its_wal_or_shm_as_a_link_is_refused(
    data_dir: Path, tmp_path: Path, name: str
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    victim.chmod(0o600)
    (data_dir / name).symlink_to(victim)
    with pytest.raises(NotARegularFile, match=f"{name} is a symbolic link"):
        open_database(data_dir / "audit.db")
    assert victim.read_bytes() == VICTIM
    assert _mode(victim) == 0o600
