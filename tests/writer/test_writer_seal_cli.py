"""``trek-audit seal init`` makes the sealing key once and prints the verification key last."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from trek_audit.cli import main
from trek_audit.writer import AuditWriter
from trek_audit.writer.chain import EpochKeys, key_id, parse_key, seal_mac
from trek_audit.writer.seal_key import SealKeyFile

from .seal_support import seals, walk_chain


def init(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(main, ["seal", "init", *args])
    return result.exit_code, result.output


def test_seal_init_makes_a_private_key_and_prints_the_verification_key_last(
    runner: CliRunner, tmp_path: Path
) -> None:
    code, output = init(runner, "--data-dir", str(tmp_path))
    assert code == 0, output
    last = output.splitlines()[-1]
    assert last.startswith("verification key: ") and len(last) == len("verification key: ") + 64
    assert "can forge" in output and "away from this host" in output
    key_path = tmp_path / "seal.key"
    assert os.stat(key_path).st_mode & 0o777 == 0o600
    key = SealKeyFile(key_path).read()
    verification_key = parse_key(last)
    assert (key.epoch, key.key, key.key_id) == (0, verification_key, key_id(verification_key))


def test_the_writers_of_the_data_directory_seal_with_the_key_seal_init_made(
    runner: CliRunner, tmp_path: Path
) -> None:
    verification_key = parse_key(init(runner, "--data-dir", str(tmp_path))[1].splitlines()[-1])
    with AuditWriter(tmp_path / "logs") as w:
        w.record("user.login")
        w.seal()
    found = seals(walk_chain(tmp_path / "logs"))
    assert [seal.event["details"]["epoch"] for seal in found] == [0, 1]
    details = found[-1].event["details"]
    assert details["mac"] == seal_mac(EpochKeys(verification_key).key(1), details)


def test_seal_init_refuses_to_overwrite_a_key_and_leaves_it_as_it_was(
    runner: CliRunner, tmp_path: Path
) -> None:
    assert init(runner, "--data-dir", str(tmp_path))[0] == 0
    before = (tmp_path / "seal.key").read_bytes()
    code, output = init(runner, "--data-dir", str(tmp_path))
    assert code == 1
    assert "already exists" in output and "verification key" not in output
    assert (tmp_path / "seal.key").read_bytes() == before


def test_seal_init_refuses_a_symlink_even_one_that_points_nowhere(
    runner: CliRunner, tmp_path: Path
) -> None:
    link = tmp_path / "seal.key"
    link.symlink_to(tmp_path / "target.key")
    code, output = init(runner, "--data-dir", str(tmp_path))
    assert code == 1 and "already exists" in output
    assert not (tmp_path / "target.key").exists()


def test_seal_init_puts_the_key_where_key_file_or_trek_seal_key_file_says(
    runner: CliRunner, tmp_path: Path
) -> None:
    chosen = tmp_path / "keys" / "trek.key"
    assert init(runner, "--data-dir", str(tmp_path), "--key-file", str(chosen))[0] == 0
    from_env = tmp_path / "env.key"
    result = runner.invoke(
        main,
        ["seal", "init", "--data-dir", str(tmp_path)],
        env={"TREK_SEAL_KEY_FILE": str(from_env)},
    )
    assert result.exit_code == 0, result.output
    assert chosen.exists() and from_env.exists() and not (tmp_path / "seal.key").exists()


def test_seal_status_shows_the_key_epoch_and_the_last_seal(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["seal", "status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "writers do not seal" in result.output
    init(runner, "--data-dir", str(tmp_path))
    with AuditWriter(tmp_path / "logs") as w:
        w.record("user.login")
    result = runner.invoke(main, ["seal", "status", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "next epoch 1" in result.output
    assert "last seal at seq 1 (epoch 0" in result.output
    assert "unsealed: 1 lines" in result.output
