"""verify names each changed, removed or added line of a sealed log, with its file and line."""

from __future__ import annotations

from pathlib import Path

from .verify_support import (
    check,
    check_paths,
    edit_line,
    kinds,
    lines,
    only,
    replace_line,
    sealed_dir,
    sealed_event_line,
    write_lines,
)


def test_an_untouched_sealed_directory_has_no_problem(data_dir: Path) -> None:
    outcome = check(sealed_dir(data_dir))
    assert outcome.problems == []
    assert outcome.exit_code == 0
    assert outcome.summary["seals"] > 10
    assert outcome.summary["rows"] == outcome.summary["lines"]


def test_an_edited_line_is_named_by_its_file_and_line(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    number = sealed_event_line(path, after=3)
    replace_line(path, number, edit_line(lines(path)[number - 1], resource="record/forged"))
    outcome = check(sealed)
    problem = only(outcome, "edited")
    assert (problem["file"], problem["line"]) == (str(path), number)
    assert "resource" in problem["message"]
    assert outcome.exit_code == 1


def test_an_edit_that_keeps_the_line_valid_in_a_file_not_indexed_is_pinned_to_its_seal_range(
    data_dir: Path,
) -> None:
    sealed = sealed_dir(data_dir, index=False)
    path = sealed.log(2)
    number = sealed_event_line(path, after=3)
    replace_line(path, number, edit_line(lines(path)[number - 1], ip="198.51.100.1"))
    outcome = check_paths([sealed.log(3), path, sealed.log(1)], sealed.key)
    problem = only(outcome, "chain_break")
    assert problem["file"] == str(path)
    assert problem["line"] is not None and problem["line"] <= number
    assert "cannot be pinned" in problem["message"]


def test_a_deleted_line_is_named_where_it_is_missing(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(1)
    number = sealed_event_line(path, after=2)
    content = lines(path)
    gone = content.pop(number - 1)
    write_lines(path, content)
    problem = only(check(sealed), "deleted")
    assert (problem["file"], problem["line"]) == (str(path), number)
    assert (
        problem["first_seq"] == problem["last_seq"] == int(gone.split(b'"seq":')[1].split(b",")[0])
    )


def test_a_missing_range_of_seqs_is_named_with_the_range(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(1)
    number = sealed_event_line(path, after=1)
    content = lines(path)
    del content[number - 1 : number + 2]
    write_lines(path, content)
    problem = only(check(sealed), "missing")
    assert (problem["file"], problem["line"]) == (str(path), number)
    assert problem["first_seq"] is not None and problem["last_seq"] == problem["first_seq"] + 2


def test_an_inserted_line_is_named_at_its_line(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    number = sealed_event_line(path, after=2)
    content = lines(path)
    # A line that reads like the others, with the seq of a line that exists.
    content.insert(
        number, edit_line(content[number - 1], id="01a2322d-0000-7000-8000-000000000000")
    )
    write_lines(path, content)
    outcome = check(sealed)
    problem = only(outcome, "inserted")
    assert (problem["file"], problem["line"]) == (str(path), number + 1)
    assert outcome.exit_code == 1


def test_a_duplicated_line_is_named_at_the_copy(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(3)
    number = sealed_event_line(path, after=4)
    content = lines(path)
    content.insert(number, content[number - 1])
    write_lines(path, content)
    problem = only(check(sealed), "duplicated")
    assert (problem["file"], problem["line"]) == (str(path), number + 1)


def test_two_swapped_lines_are_reported_as_reordered(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(1)
    number = sealed_event_line(path, after=2)
    content = lines(path)
    content[number - 1], content[number] = content[number], content[number - 1]
    write_lines(path, content)
    outcome = check(sealed)
    problem = only(outcome, "reordered")
    assert (problem["file"], problem["line"]) == (str(path), number)
    assert outcome.exit_code == 1


def test_a_line_that_is_not_an_event_is_named_at_its_line(data_dir: Path) -> None:
    sealed = sealed_dir(data_dir)
    path = sealed.log(2)
    number = sealed_event_line(path, after=1)
    content = lines(path)
    content.insert(number, b"not json at all\n")
    write_lines(path, content)
    outcome = check(sealed)
    problem = only(outcome, "not_an_event")
    assert (problem["file"], problem["line"]) == (str(path), number + 1)
    assert kinds(outcome) == ["not_an_event"]


def test_lines_written_before_sealing_began_are_unsealed_not_tampered(data_dir: Path) -> None:
    from trek_audit.writer.seal_key import create_key_file

    from .verify_support import index_once, record_events, writer

    with writer(data_dir, seal_key_file=data_dir / "none.key") as audit:
        record_events(audit, 10)
    key = create_key_file(data_dir / "seal.key")
    with writer(data_dir) as audit:
        record_events(audit, 10, start=10)
        audit.seal()
    index_once(data_dir)
    from .verify_support import Sealed

    outcome = check(Sealed(data_dir, key))
    assert outcome.problems == []
    assert outcome.summary["unsealed"] == 10
