"""Lines a shipper delivered twice are copies, named as such: never a re-seal or an edit, and
never a cover for a real change next to them."""

from __future__ import annotations

from pathlib import Path

from .verify_support import (
    check,
    check_paths,
    edit_line,
    event,
    kinds,
    lines,
    replace_line,
    seal_lines,
    sealed_dir,
    sealed_event_line,
    the,
    write_lines,
)


def test_a_seal_line_delivered_twice_is_a_copy_not_a_resealed_range(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    number = seal_lines(path)[1]
    content = lines(path)
    content.insert(number, content[number - 1])
    write_lines(path, content)
    outcome = check(sealed)
    assert kinds(outcome) == ["duplicated"]
    assert (outcome.problems[0]["file"], outcome.problems[0]["line"]) == (str(path), number + 1)


def test_a_block_sent_again_after_a_reconnect_is_one_copy_per_line(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir, index=False)
    path = sealed.log(2)
    content = lines(path)
    block = content[2:12]  # spans a seal
    assert any(event(line)["action"] == "audit.seal" for line in block)
    write_lines(path, content[:12] + block + content[12:])
    outcome = check_paths([sealed.log(n) for n in (3, 2, 1, 0)], sealed.key)
    assert kinds(outcome) == ["duplicated"] * len(block)
    assert [p["line"] for p in outcome.problems] == list(range(13, 13 + len(block)))


def test_a_copy_where_a_deleted_line_was_is_a_copy_and_a_deletion_not_an_edit(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(1)
    number = sealed_event_line(path, after=2)
    content = lines(path)
    gone = event(content[number])["seq"]
    content[number] = content[number - 2]  # in the deleted line's place, a copy of another
    write_lines(path, content)
    outcome = check(sealed)
    assert sorted(kinds(outcome)) == ["deleted", "duplicated"]
    deleted = the(outcome, "deleted")
    assert deleted["first_seq"] == deleted["last_seq"] == gone
    assert the(outcome, "duplicated")["line"] == number + 1


def test_a_copy_does_not_hide_a_line_changed_beside_it_in_a_file_not_indexed(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir, index=False)
    path = sealed.log(2)
    number = sealed_event_line(path, after=3)
    replace_line(path, number, edit_line(lines(path)[number - 1], ip="198.51.100.1"))
    content = lines(path)
    content.insert(number - 1, content[number - 2])  # the line before it, delivered twice
    write_lines(path, content)
    outcome = check_paths([sealed.log(n) for n in (3, 2, 1, 0)], sealed.key)
    assert sorted(kinds(outcome)) == ["chain_break", "duplicated"]
    assert outcome.exit_code == 1
