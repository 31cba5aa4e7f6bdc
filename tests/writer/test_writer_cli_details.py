"""`trek-audit record --details` keeps every integer exact, or refuses it like the Python API."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trek_audit.cli import main


@pytest.mark.parametrize(
    "number",
    ["9223372036854775808", "18446744073709551615", "18446744073709551616", "-9223372036854775809"],
)
def test_an_integer_beyond_64_bits_in_details_is_refused_with_exit_2(
    runner: CliRunner, tmp_path: Path, number: str
) -> None:
    env = {"TREK_DATA_DIR": str(tmp_path / "data")}
    result = runner.invoke(
        main, ["record", "user.login", "--details", f'{{"n": [{number}]}}'], env=env
    )
    assert result.exit_code == 2, result.output
    assert number in result.output
    assert not (tmp_path / "data" / "logs" / "trek.log").exists()


def test_integers_at_the_64_bit_limits_are_written_exactly(
    runner: CliRunner, tmp_path: Path
) -> None:
    env = {"TREK_DATA_DIR": str(tmp_path / "data")}
    details = '{"max": 9223372036854775807, "min": -9223372036854775808}'
    result = runner.invoke(main, ["record", "user.login", "--details", details], env=env)
    assert result.exit_code == 0, result.output
    assert '"details":{"max":9223372036854775807,"min":-9223372036854775808}' in result.output
