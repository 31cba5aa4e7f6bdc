"""Seals: when the writer writes them, what they vouch for, and the key that moves on after each."""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trek_audit.layout import LogDir
from trek_audit.settings import Settings
from trek_audit.writer import AuditWriteError, AuditWriter
from trek_audit.writer.chain import EpochKeys, evolve_key, key_id, seal_mac
from trek_audit.writer.seal_key import SealKeyFile

from .seal_support import Link, make_key, seals, state_of, walk_chain
from .test_writer_errors import error_of, in_child, set_file_size_limit
from .writer_support import assert_no_gaps, log_files


def assert_seals_verify(links: list[Link], verification_key: bytes) -> None:
    """Every seal's MAC, epoch, range, prev and chain are what the design says."""
    keys = EpochKeys(verification_key)
    previous: Link | None = None
    for seal in seals(links):
        details = seal.event["details"]
        assert details["mac"] == seal_mac(keys.key(details["epoch"]), details)
        assert details["key_id"] == keys.key_id
        assert details["chain"] == seal.before.hex()
        assert details["last_seq"] == seal.event["seq"] - 1
        if previous is None:
            assert details["epoch"] == 0
            assert details["first_seq"] == seal.event["seq"]
            assert details["prev"] == details["chain"]
        else:
            assert details["epoch"] == previous.event["details"]["epoch"] + 1
            assert details["first_seq"] == previous.event["seq"] + 1
            assert details["prev"] == previous.after.hex()
        previous = seal


def test_a_writer_without_a_key_does_not_seal(log_dir: Path) -> None:
    with AuditWriter(log_dir) as w:
        assert not w.sealing
        w.record("user.login")
        assert w.seal() is None
        assert w.seal_due_at() is None
    assert seals(walk_chain(log_dir)) == []


def test_the_first_line_under_a_key_follows_an_opening_seal_of_epoch_0_covering_nothing(
    log_dir: Path,
) -> None:
    with AuditWriter(log_dir) as w:
        w.record("user.login")  # before the key: stays unsealed
        verification_key = make_key(log_dir)
        w.close()
    with AuditWriter(log_dir) as w:
        assert w.sealing
        assert w.record("user.login")["seq"] == 3
    links = walk_chain(log_dir)
    opening = links[1]
    assert opening.event["action"] == "audit.seal"
    assert (opening.event["user"], opening.event["resource"], opening.event["ip"]) == (None,) * 3
    details = opening.event["details"]
    assert (details["epoch"], details["first_seq"], details["last_seq"]) == (0, 2, 1)
    assert details["prev"] == details["chain"] == links[0].after.hex()
    assert details["key_id"] == key_id(verification_key)
    assert_seals_verify(links, verification_key)


def test_every_rotated_file_ends_with_a_seal_and_its_seals_cover_exactly_its_lines(
    log_dir: Path,
) -> None:
    verification_key = make_key(log_dir)
    with AuditWriter(log_dir, max_bytes=2500, backups=50, seal_interval=3600) as w:
        for n in range(120):
            w.record("trip.update", details={"n": n})
    links = walk_chain(log_dir)
    files = [path.name for path in log_files(log_dir)]
    assert len(files) > 5
    for name in files[:-1]:
        in_file = [link for link in links if link.file == name]
        assert in_file[-1].event["action"] == "audit.seal", name
        covered = {
            seq
            for seal in seals(in_file)
            for seq in range(seal.event["details"]["first_seq"], seal.event["seq"] + 1)
        }
        assert covered == {link.event["seq"] for link in in_file}, name
    assert_no_gaps([link.event["seq"] for link in links])
    assert_seals_verify(links, verification_key)


def test_a_seal_goes_before_the_next_line_once_the_oldest_unsealed_line_is_interval_old(
    log_dir: Path,
) -> None:
    verification_key = make_key(log_dir)
    with AuditWriter(log_dir, seal_interval=0.2) as w:
        w.record("user.login")
        w.record("user.login")
        assert len(seals(walk_chain(log_dir))) == 1  # the opening seal only
        due = w.seal_due_at()
        assert due is not None and 0 < due - time.time() <= 0.2
        time.sleep(0.25)
        w.record("user.login")
    links = walk_chain(log_dir)
    actions = [link.event["action"] for link in links]
    assert actions == ["audit.seal", "user.login", "user.login", "audit.seal", "user.login"]
    assert links[3].event["details"]["first_seq"] == 2
    assert_seals_verify(links, verification_key)


def test_seal_writes_a_seal_only_when_something_is_unsealed(log_dir: Path) -> None:
    verification_key = make_key(log_dir)
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        seal = w.seal()
        assert seal is not None and seal["action"] == "audit.seal" and seal["seq"] == 3
        details = seal["details"]
        assert details is not None and (details["first_seq"], details["last_seq"]) == (2, 2)
        assert w.seal() is None
        assert w.seal_due_at() is None
    links = walk_chain(log_dir)
    assert links[-1].event == seal
    assert_seals_verify(links, verification_key)


def test_the_key_moves_on_after_each_seal_and_the_old_key_is_gone_from_the_file(
    log_dir: Path,
) -> None:
    make_key(log_dir)
    key_path = log_dir.parent / "seal.key"
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        before = SealKeyFile(key_path).read()
        old_bytes = key_path.read_bytes()
        assert w.seal() is not None
    after = SealKeyFile(key_path).read()
    assert (before.epoch, after.epoch) == (1, 2)
    assert after.key == evolve_key(before.key)
    assert before.key.hex().encode() not in key_path.read_bytes()
    assert len(key_path.read_bytes()) == len(old_bytes)  # rewritten in place
    assert os.stat(key_path).st_mode & 0o777 == 0o600


def test_a_key_file_stolen_at_epoch_e_cannot_make_a_seal_that_verifies_for_an_earlier_epoch(
    log_dir: Path,
) -> None:
    verification_key = make_key(log_dir)
    with AuditWriter(log_dir) as w:
        for _ in range(3):
            w.record("user.login")
            w.seal()
    stolen = SealKeyFile(log_dir.parent / "seal.key").read()
    real = seals(walk_chain(log_dir))[-1].event["details"]
    assert stolen.epoch == real["epoch"] + 1
    forged = {**real, "chain": "00" * 32}
    keys = EpochKeys(verification_key)
    for key in (stolen.key, evolve_key(stolen.key)):
        assert seal_mac(key, forged) != seal_mac(keys.key(real["epoch"]), forged)
        assert seal_mac(key, real) != real["mac"]


def test_a_key_file_left_behind_by_a_crash_after_a_seal_is_evolved_forward(
    log_dir: Path,
) -> None:
    verification_key = make_key(log_dir)
    key_path = log_dir.parent / "seal.key"
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        left_behind = key_path.read_bytes()
        w.seal()
        key_path.write_bytes(left_behind)  # as if the writer died before storing the next key
        w.record("user.login")
        w.seal()
    links = walk_chain(log_dir)
    assert [seal.event["details"]["epoch"] for seal in seals(links)] == [0, 1, 2]
    assert_seals_verify(links, verification_key)
    assert SealKeyFile(key_path).read().epoch == 3


def test_a_writer_that_lost_its_state_goes_on_with_the_next_epoch(log_dir: Path) -> None:
    verification_key = make_key(log_dir)
    with AuditWriter(log_dir, max_bytes=2000, backups=20) as w:
        for n in range(40):
            w.record("user.login", details={"n": n})
        os.unlink(LogDir(log_dir).lock_file)
        w.record("user.login")
        w.seal()
    assert_seals_verify(walk_chain(log_dir), verification_key)


@pytest.mark.timeout(60)
def test_a_seal_that_does_not_fit_on_the_disk_raises_leaves_nothing_and_keeps_the_key(
    log_dir: Path,
) -> None:
    make_key(log_dir)
    key_path = log_dir.parent / "seal.key"

    def work(pause: Callable[[], None]) -> dict[str, Any]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us at the limit
        w = AuditWriter(log_dir)
        w.record("user.login")
        key_before = key_path.read_bytes()
        log_before = (log_dir / "trek.log").read_bytes()
        set_file_size_limit(len(log_before) + 100)  # room for a line, not for a seal
        failure = error_of(w.seal)
        result = {
            "failure": failure,
            "log_unchanged": (log_dir / "trek.log").read_bytes() == log_before,
            "key_unchanged": key_path.read_bytes() == key_before,
        }
        set_file_size_limit(resource.RLIM_INFINITY)
        result["after"] = w.seal() is not None
        return result

    result = in_child(work)
    assert (
        result["failure"]["message"] == f"cannot append to {log_dir / 'trek.log'}: File too large"
    )
    assert result["log_unchanged"] and result["key_unchanged"]
    assert result["after"]
    assert [seal.event["details"]["epoch"] for seal in seals(walk_chain(log_dir))] == [0, 1]


def test_a_seal_due_before_a_record_that_cannot_be_written_fails_the_record(
    log_dir: Path,
) -> None:
    def work(pause: Callable[[], None]) -> dict[str, Any]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        w = AuditWriter(log_dir)
        w.record("user.login")  # no key yet
        make_key(log_dir)
        w.close()
        w = AuditWriter(log_dir)
        set_file_size_limit((log_dir / "trek.log").stat().st_size + 100)
        failure = error_of(lambda: w.record("user.login"))
        set_file_size_limit(resource.RLIM_INFINITY)
        return {"failure": failure, "next": w.record("user.login")["seq"]}

    result = in_child(work)
    assert (
        result["failure"]["message"] == f"cannot append to {log_dir / 'trek.log'}: File too large"
    )
    assert result["next"] == 3  # the opening seal took 2, the failed record nothing
    assert SealKeyFile(log_dir.parent / "seal.key").read().epoch == 1


def test_a_writer_finds_a_key_made_after_it_started_within_the_interval(log_dir: Path) -> None:
    with AuditWriter(log_dir, seal_interval=0.1) as w:
        w.record("user.login")
        assert not w.sealing
        make_key(log_dir)
        time.sleep(0.15)
        assert w.sealing
        w.record("user.login")
    assert [link.event["action"] for link in walk_chain(log_dir)][1] == "audit.seal"


def test_a_symlink_at_the_key_path_is_no_key(log_dir: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.key"
    from trek_audit.writer.seal_key import create_key_file

    create_key_file(real)
    (log_dir.parent / "seal.key").symlink_to(real)
    with AuditWriter(log_dir) as w:
        assert not w.sealing


def test_a_damaged_key_file_fails_a_seal_with_a_message_that_says_what_to_do(
    log_dir: Path,
) -> None:
    make_key(log_dir)
    (log_dir.parent / "seal.key").write_bytes(b"not a key\n")
    with AuditWriter(log_dir) as w, pytest.raises(AuditWriteError, match="remove it to stop"):
        w.record("user.login")
    assert not (log_dir / "trek.log").exists() or (log_dir / "trek.log").read_bytes() == b""


def test_from_settings_seals_with_the_key_and_interval_of_the_settings(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path / "data", seal_interval=7)
    key_path = tmp_path / "keys" / "trek.key"
    verification_key = make_key(settings.data.log_dir)  # the default, not used here
    with AuditWriter.from_settings(settings, seal_key_file=str(key_path)) as w:
        assert w.seal_interval == 7 and w.seal_key_file == key_path
        assert not w.sealing
    with AuditWriter.from_settings(settings) as w:
        assert w.seal_key_file == settings.seal_key_path and w.sealing
        w.record("user.login")
    assert_seals_verify(walk_chain(settings.data.log_dir), verification_key)


def test_the_state_page_knows_the_last_seal(log_dir: Path) -> None:
    make_key(log_dir)
    with AuditWriter(log_dir) as w:
        w.record("user.login")
        seal = w.seal()
        assert seal is not None
        w.record("user.login")
    state = state_of(log_dir)
    links = walk_chain(log_dir)
    assert (state.seal_seq, state.seal_epoch) == (seal["seq"], 1)
    assert state.seal_head == links[seal["seq"] - 1].after
    assert seal["details"] is not None and state.seal_key_id.hex() == seal["details"]["key_id"]
    assert state.unsealed_ns > 0 and state.seq == seal["seq"] + 1
