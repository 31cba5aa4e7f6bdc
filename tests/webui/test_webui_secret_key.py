"""The key that signs session cookies, kept in <data>/secret_key when TREK_SECRET_KEY is unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from trek_audit.layout import PRIVATE_FILE_MODE
from trek_audit.webui import create_app
from trek_audit.webui.secret_key import SecretKeyError, load_or_create_secret_key

from .webui_support import state_of


def test_secret_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_secret_key(tmp_path / "secret_key")
    assert load_or_create_secret_key(tmp_path / "secret_key") == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == PRIVATE_FILE_MODE == 0o600


def test_secret_key_readable_by_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("k" * 64 + "\n", encoding="ascii")
    path.chmod(0o644)
    assert load_or_create_secret_key(path) == "k" * 64
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", ["", "\n", "short\n"], ids=["empty", "newline", "short"])
def test_secret_key_file_without_a_usable_key_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "secret_key"
    path.write_text(content, encoding="ascii")
    with pytest.raises(SecretKeyError, match="TREK_SECRET_KEY"):
        load_or_create_secret_key(path)


def test_the_panel_without_trek_secret_key_signs_with_the_key_in_the_data_directory(
    data_dir: Path,
) -> None:
    app = create_app({"TREK_DATA_DIR": str(data_dir)})
    try:
        assert app.secret_key == (data_dir / "secret_key").read_text(encoding="ascii").strip()
    finally:
        state_of(app).close()


def test_trek_secret_key_wins_and_no_key_file_is_made(data_dir: Path) -> None:
    app = create_app({"TREK_DATA_DIR": str(data_dir), "TREK_SECRET_KEY": "s" * 40})
    try:
        assert app.secret_key == "s" * 40
        assert not (data_dir / "secret_key").exists()
    finally:
        state_of(app).close()
