"""Seals: the MAC with exactly the seal's epoch key, epochs in order, and what a stolen key buys."""

from __future__ import annotations

from pathlib import Path

from trek_audit.writer.chain import EpochKeys

from .verify_support import (
    check,
    check_paths,
    edit_line,
    event,
    kinds,
    lines,
    reseal,
    seal_lines,
    sealed_dir,
    stolen_key,
    the,
    write_lines,
)


def _covered(path: Path, seal_number: int) -> tuple[list[bytes], int]:
    """The lines a seal on line ``seal_number`` covers (all in ``path``), and the first's number."""
    content = lines(path)
    seals = seal_lines(path)
    previous = max(n for n in seals if n < seal_number)
    return content[previous : seal_number - 1], previous + 1


def _tamper_and_reseal(path: Path, key: bytes, epoch: int) -> int:
    """Change a line under the second seal of ``path`` and seal its range again as ``epoch``
    with ``key``; return the seal's line number."""
    content = lines(path)
    seal_number = seal_lines(path)[1]
    covered, first = _covered(path, seal_number)
    covered[0] = edit_line(covered[0], resource="record/hidden")
    content[first - 1] = covered[0]
    content[seal_number - 1] = reseal(content[seal_number - 1], covered, key, epoch)
    write_lines(path, content)
    return seal_number


def test_an_old_range_resealed_with_the_stolen_current_key_is_resealed(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    epoch, key = stolen_key(data_dir)
    path = sealed.log(3)
    seal_number = _tamper_and_reseal(path, key, epoch)
    outcome = check_paths([sealed.log(n) for n in (3, 2, 1, 0)], sealed.key)
    problem = the(outcome, "resealed")
    assert (problem["file"], problem["line"]) == (str(path), seal_number)
    assert f"epoch {epoch}" in problem["message"]
    assert "forged_seal" not in kinds(outcome)  # its MAC is right: for the wrong epoch
    assert outcome.exit_code == 1


def test_a_stolen_key_cannot_make_a_seal_of_the_epoch_it_replaces(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    epoch, key = stolen_key(data_dir)
    path = sealed.log(3)
    old_epoch = event(lines(path)[seal_lines(path)[1] - 1])["details"]["epoch"]  # type: ignore[index]
    assert old_epoch < epoch
    seal_number = _tamper_and_reseal(path, key, old_epoch)
    outcome = check_paths([sealed.log(n) for n in (3, 2, 1, 0)], sealed.key)
    problem = the(outcome, "forged_seal")
    assert (problem["file"], problem["line"]) == (str(path), seal_number)
    assert "MAC is wrong" in problem["message"]


def test_whoever_holds_the_verification_key_can_forge_seals_as_documented(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    path = sealed.log(3)
    old_epoch = event(lines(path)[seal_lines(path)[1] - 1])["details"]["epoch"]  # type: ignore[index]
    _tamper_and_reseal(path, EpochKeys(sealed.key).key(old_epoch), old_epoch)
    changed_seal = seal_lines(path)[1]
    outcome = check_paths([sealed.log(n) for n in (3, 2, 1, 0)], sealed.key)
    # The seal is perfect; only the next seal, which chains over the changed seal line, tells.
    assert kinds(outcome) == ["chain_break"]
    assert outcome.problems[0]["line"] == changed_seal


def test_a_seal_forged_without_the_key_has_a_wrong_mac(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    seal_number = _tamper_and_reseal(path, b"\x01" * 32, 3)
    outcome = check(sealed)
    forged = [p for p in outcome.problems if p["kind"] == "forged_seal"]
    assert [(p["file"], p["line"]) for p in forged] == [(str(path), seal_number)]
    assert outcome.exit_code == 1


def test_without_the_key_a_forged_seal_is_seen_only_where_the_chain_or_rows_tell(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    _tamper_and_reseal(path, b"\x01" * 32, 3)
    outcome = check(sealed, key=False)
    assert "forged_seal" not in kinds(outcome)
    assert "edited" in kinds(outcome)  # the rows still know the line
    assert not outcome.keyed and any("MACs were not checked" in n for n in outcome.notes)


def test_the_current_key_given_as_the_verification_key_checks_no_seal(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    _, current = stolen_key(data_dir)
    outcome = check(sealed._replace(key=current))
    assert set(kinds(outcome)) == {"forged_seal"}
    assert "not the verification key" in outcome.problems[0]["message"]
    assert any("not the verification key of any seal" in note for note in outcome.notes)


def test_a_removed_seal_breaks_the_epoch_order_and_the_range(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    path = sealed.log(2)
    content = lines(path)
    seal_number = seal_lines(path)[1]
    del content[seal_number - 1]
    write_lines(path, content)
    outcome = check_paths([sealed.log(n) for n in (3, 2, 1, 0)], sealed.key)
    deleted = the(outcome, "deleted")
    assert (deleted["file"], deleted["line"]) == (str(path), seal_number)
