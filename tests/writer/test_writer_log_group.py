"""With a log group (TREK_LOG_GROUP), its members read every log file and nobody else does:
logs/ and its state directory are setgid to it, each file and rotation is that group's, mode
0640, and a group that does not exist or cannot be given is a clear error.

These tests need root, to give groups and to act as other users in forked children.
"""

from __future__ import annotations

import glob
import grp
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trek_audit.layout import LogDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriteError, AuditWriter
from trek_audit.writer.ingest import IngestServer
from trek_audit.writer.log_group import LogGroup

from .seal_support import make_key
from .test_writer_errors import NOBODY, become_nobody, error_of, in_child
from .writer_support import is_root, log_files, seqs, skip_outside_ci

# A gid no group on this host has (root may still give it).
UNNAMED_GID = 54_321


@pytest.fixture(autouse=True)
def needs_root() -> None:
    if not is_root():
        skip_outside_ci("needs root to give groups and to act as other users")


@pytest.fixture
def group() -> LogGroup:
    """An existing group the test process is not in as its primary group: adm (gid 4)."""
    try:
        entry = grp.getgrnam("adm")
    except KeyError:
        skip_outside_ci("needs the group adm")
        raise
    assert entry.gr_gid != os.getgid()
    return LogGroup(entry.gr_gid, entry.gr_name)


def everything_in(log_dir: Path) -> list[Path]:
    """Every file the writer made: the log files and the state directory's."""
    return [*log_files(log_dir), *LogDir(log_dir).state_dir.iterdir()]


def assert_readable_by_the_group_only(log_dir: Path, gid: int) -> None:
    for path in (log_dir, LogDir(log_dir).state_dir):
        st = path.stat()
        assert st.st_gid == gid, f"{path} is in group {st.st_gid}"
        assert st.st_mode & stat.S_ISGID, f"{path} is not setgid"
        assert stat.S_IMODE(st.st_mode) & 0o050 == 0o050
    for path in everything_in(log_dir):
        st = path.stat()
        assert st.st_gid == gid, f"{path.name} is in group {st.st_gid}"
        assert stat.S_IMODE(st.st_mode) & 0o007 == 0, f"{path.name} is world-readable"
    for path in log_files(log_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, f"{path.name} is not 0640"


# -- directories and files --------------------------------------------------------------------


def test_a_log_directory_the_writer_makes_is_setgid_to_the_group_mode_2750(
    tmp_path: Path, group: LogGroup
) -> None:
    log_dir = tmp_path / "data" / "logs"
    with AuditWriter(log_dir, log_group=group.name) as w:
        w.record("user.login")
    for path in (log_dir, LogDir(log_dir).state_dir):
        st = path.stat()
        assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (group.gid, 0o2750)
    assert_readable_by_the_group_only(log_dir, group.gid)


def test_an_existing_log_directory_gains_the_group_and_the_setgid_bit(
    log_dir: Path, group: LogGroup
) -> None:
    log_dir.chmod(0o700)
    AuditWriter(log_dir, log_group=group.name).close()  # before any record
    st = log_dir.stat()
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (group.gid, 0o2750)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077], ids=["umask-000", "022", "077"])
@pytest.mark.parametrize("backups", [0, 3], ids=["no-backups", "3-backups"])
def test_every_log_file_and_rotation_is_in_the_group_mode_0640(
    log_dir: Path, group: LogGroup, umask: int, backups: int
) -> None:
    make_key(log_dir)  # seals too
    previous = os.umask(umask)
    try:
        with AuditWriter(log_dir, max_bytes=600, backups=backups, log_group=group.name) as w:
            for n in range(12):
                w.record("user.login", details={"n": n})
            w.seal()
    finally:
        os.umask(previous)
    assert len(log_files(log_dir)) == backups + 1
    assert_readable_by_the_group_only(log_dir, group.gid)


def test_log_files_made_before_the_setting_are_given_the_group_and_0640(
    log_dir: Path, group: LogGroup
) -> None:
    with AuditWriter(log_dir, max_bytes=300, backups=2) as w:
        for _ in range(3):
            w.record("user.login")
    (log_dir / "trek.log.1").chmod(0o644)  # world-readable: never again
    assert {path.stat().st_gid for path in log_files(log_dir)} == {os.getgid()}
    with AuditWriter(log_dir, max_bytes=300, backups=2, log_group=group.name) as w:
        w.record("user.login")
    assert_readable_by_the_group_only(log_dir, group.gid)
    assert seqs(log_dir) == [2, 3, 4]


# -- naming the group -------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["adm", "4", 4], ids=["name", "number-as-text", "number"])
def test_a_group_is_named_by_name_or_by_number(
    log_dir: Path, group: LogGroup, given: str | int
) -> None:
    assert group == LogGroup(4, "adm")
    with AuditWriter(log_dir, log_group=given) as w:
        assert w.log_group == group
        w.record("user.login")
    assert (log_dir / "trek.log").stat().st_gid == 4


def test_a_number_no_group_is_named_is_still_given(log_dir: Path) -> None:
    with AuditWriter(log_dir, log_group=UNNAMED_GID) as w:
        assert str(w.log_group) == f"gid {UNNAMED_GID}"
        w.record("user.login")
    assert_readable_by_the_group_only(log_dir, UNNAMED_GID)


def test_no_group_leaves_the_files_in_the_writers_own(log_dir: Path) -> None:
    for no_group in (None, ""):
        with AuditWriter(log_dir, log_group=no_group) as w:
            assert w.log_group is None
            w.record("user.login")
    assert not log_dir.stat().st_mode & stat.S_ISGID
    assert {path.stat().st_gid for path in everything_in(log_dir)} == {os.getgid()}


def test_a_group_that_does_not_exist_is_a_clear_error(log_dir: Path) -> None:
    with pytest.raises(AuditWriteError) as refused:
        AuditWriter(log_dir, log_group="no-such-group")
    assert str(refused.value) == (
        f"cannot give {log_dir} the log group 'no-such-group': there is no such group on this "
        "host; create it (groupadd no-such-group) or set TREK_LOG_GROUP to an existing group's "
        "name or number"
    )
    assert os.listdir(log_dir) == []  # nothing made before the mistake is fixed


@pytest.mark.parametrize("given", [-1, 1.5, True], ids=["negative", "float", "bool"])
def test_a_group_that_is_neither_a_name_nor_a_gid_is_refused(log_dir: Path, given: Any) -> None:
    with pytest.raises(ValueError, match="log_group must be a group name or a gid"):
        AuditWriter(log_dir, log_group=given)


def test_the_settings_give_the_writer_its_log_group(tmp_path: Path, group: LogGroup) -> None:
    settings = Settings(data_dir=tmp_path, log_group=group.name or "")
    with AuditWriter.from_settings(settings) as w:
        assert w.log_group == group
    with AuditWriter.from_settings(settings, log_group="") as w:
        assert w.log_group is None
    assert Settings.from_env({"TREK_LOG_GROUP": "adm"}).log_group == "adm"


# -- other users ------------------------------------------------------------------------------


def test_a_group_the_writer_cannot_give_is_a_clear_error(shared_dir: Path) -> None:
    log_dir = shared_dir / "logs"
    shared_dir.chmod(0o777)

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        become_nobody()  # not a member of adm
        return error_of(lambda: AuditWriter(log_dir, log_group="adm"))

    failure = in_child(work)
    assert failure["message"] == (
        f"cannot give {log_dir} the log group adm (gid 4): Operation not permitted; the "
        "writer's user must be a member of the group (usermod -aG adm USER, then start the "
        f"writer again), or root gives the directory the group first (chgrp adm {log_dir} && "
        f"chmod g+s {log_dir})"
    )
    assert failure["path"] == str(log_dir)
    assert log_dir.stat().st_gid == NOBODY  # left as it was
    assert log_files(log_dir) == []


def test_a_directory_in_the_group_the_writer_cannot_make_setgid_is_a_clear_error(
    shared_dir: Path, group: LogGroup
) -> None:
    log_dir = shared_dir / "logs"
    log_dir.mkdir()
    os.chown(log_dir, 0, group.gid)
    log_dir.chmod(0o770)  # root's, in the group, not setgid: only root may add the bit

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        os.setgroups([group.gid])  # a member of the group, not the directory's owner
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return error_of(lambda: AuditWriter(log_dir, log_group=group.gid))

    failure = in_child(work)
    assert failure["message"] == (
        f"cannot make {log_dir} setgid to the log group {group}: Operation not permitted; "
        f"root can (chgrp {group.name} {log_dir} && chmod g+s {log_dir}), or the writer if it "
        "owns the directory and may set the bit (under systemd: RestrictSUIDSGID=no)"
    )
    assert not log_dir.stat().st_mode & stat.S_ISGID


def test_a_directory_root_gave_the_group_serves_a_writer_outside_it(
    shared_dir: Path, group: LogGroup
) -> None:
    log_dir = shared_dir / "logs"
    log_dir.mkdir()
    os.chown(log_dir, NOBODY, group.gid)
    log_dir.chmod(0o2750)  # what `chgrp adm logs && chmod g+s logs` gives

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        become_nobody()
        with AuditWriter(log_dir, max_bytes=300, backups=2, log_group="adm") as w:
            return {"seqs": [w.record("user.login")["seq"] for _ in range(4)]}

    assert in_child(work) == {"seqs": [1, 2, 3, 4]}
    assert_readable_by_the_group_only(log_dir, group.gid)
    assert {path.stat().st_uid for path in everything_in(log_dir)} == {NOBODY}


def test_a_shipper_in_the_group_reads_every_file_and_another_user_none(
    shared_dir: Path, group: LogGroup
) -> None:
    log_dir = shared_dir / "logs"
    with AuditWriter(log_dir, max_bytes=400, backups=3, log_group=group.name) as w:
        for n in range(10):
            w.record("user.login", details={"n": n})
    expected = {path.name: path.read_text() for path in log_files(log_dir)}

    def read_as(groups: list[int]) -> Callable[[Callable[[], None]], dict[str, Any]]:
        def work(pause: Callable[[], None]) -> dict[str, Any]:
            os.setgroups(groups)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            read: dict[str, str] = {}
            refused: list[str] = []
            try:  # as a shipper finds them: a shell glob, which skips the hidden state directory
                names = [os.path.basename(p) for p in glob.glob(f"{log_dir}/*")]
            except PermissionError:
                names = []
            for name in names or list(expected):
                try:
                    read[name] = (log_dir / name).read_text()
                except PermissionError:
                    refused.append(name)
            return {"read": read, "refused": refused}

        return work

    shipper = in_child(read_as([group.gid]))
    assert shipper["read"] == expected and shipper["refused"] == []
    stranger = in_child(read_as([]))
    assert stranger["read"] == {} and sorted(stranger["refused"]) == sorted(expected)


def test_the_ingest_socket_is_created_in_the_log_group(tmp_path: Path, group: LogGroup) -> None:
    path = tmp_path / "ingest.sock"
    with AuditWriter(tmp_path / "logs", log_group=group.name) as w:
        server = IngestServer(w, path, max_request_bytes=4096)
        server.start()
        try:
            st = os.lstat(path)
        finally:
            server.stop()
    assert stat.S_ISSOCK(st.st_mode)
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (group.gid, 0o660)
