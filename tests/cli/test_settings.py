"""The settings are declared once, documented in the README and read by the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trek_audit.layout import DataDir
from trek_audit.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ["trek_audit", "writer", "indexer", "store", "webui"]

# A valid value other than the default, for every setting.
OTHER_VALUES = {
    "TREK_DATA_DIR": "/srv/trek/data",
    "TREK_LOG_MAX_BYTES": "1000",
    "TREK_LOG_BACKUPS": "2",
    "TREK_LOG_MAX_LINE_BYTES": "200000",
    "TREK_LOG_FSYNC": "true",
    "TREK_WRITER_PURE_PYTHON": "1",
    "TRUST_PROXY": "2",
    "TREK_SECRET_KEY": "k" * 40,
    "TREK_ADMIN_PASSWORD": "a long password",
    "TREK_COOKIE_SECURE": "yes",
    "TREK_LAG_WARN_BYTES": "10",
    "TREK_METRICS_TOKEN": "a-scrape-token",
    "TREK_FOLLOWER_EXPECTED": "false",
    "TREK_SEAL_KEY_FILE": "/etc/trek-audit/seal.key",
    "TREK_SEAL_INTERVAL": "5",
    "TREK_VERIFY_KEY_FILE": "/root/verification.key",
    "TREK_INGEST_SOCKET": "/run/trek-audit/ingest.sock",
    "TREK_LOG_GROUP": "adm",
}


def readme_settings() -> dict[str, str]:
    """The README's settings table: variable name -> documented default."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]*) \|", section, flags=re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_declared_setting_is_in_the_readme_table_and_nothing_else_is() -> None:
    assert set(readme_settings()) == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_readme_states_each_settings_declared_default(name: str) -> None:
    documented = readme_settings()[name]
    default = SETTINGS[name].default
    if default:
        assert f"`{default}`" in documented
    else:
        assert "unset" in documented


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_each_setting_fills_its_own_field_from_the_environment(name: str) -> None:
    setting = SETTINGS[name]
    changed = Settings.from_env({name: OTHER_VALUES[name]})
    assert getattr(changed, setting.field) != getattr(Settings(), setting.field)
    assert getattr(changed, setting.field) == setting.parse(OTHER_VALUES[name])
    others = [s.field for s in SETTINGS.values() if s is not setting]
    assert all(getattr(changed, f) == getattr(Settings(), f) for f in others)


def test_every_setting_has_a_test_value() -> None:
    assert set(OTHER_VALUES) == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_each_setting_is_read_by_code_outside_its_declaration(name: str) -> None:
    """A declared setting that no component reads is a setting that silently does nothing."""
    field = SETTINGS[name].field
    pattern = re.compile(rf"\.{field}\b")
    readers = [
        path
        for folder in PACKAGE_DIRS
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "settings.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert readers, f"{name} ({field}) is declared but no module reads settings.{field}"


def test_no_module_reads_a_trek_variable_from_the_environment_itself() -> None:
    """The environment is read in one place: Settings.from_env."""
    offenders = []
    for folder in PACKAGE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "settings.py":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"environ(\.get)?[\[(]\s*[\"'](TREK_|TRUST_PROXY)", text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_a_malformed_setting_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="TREK_LOG_MAX_BYTES"):
        Settings.from_env({"TREK_LOG_MAX_BYTES": "ten"})


def test_options_given_on_the_command_line_win_over_the_environment() -> None:
    settings = Settings.from_env({"TREK_DATA_DIR": "/from/env"}, data_dir=Path("/from/option"))
    assert settings.data_dir == Path("/from/option")
    assert Settings.from_env({"TREK_DATA_DIR": "/from/env"}, data_dir=None).data_dir == Path(
        "/from/env"
    )


def test_the_data_directory_layout_is_derived_from_the_setting() -> None:
    data = Settings(data_dir=Path("/srv/trek")).data
    assert data == DataDir(Path("/srv/trek"))
    assert data.logs.log_file == Path("/srv/trek/logs/trek.log")
    # The writer's own files are in a hidden directory of logs/, never among the log files.
    assert data.logs.state_dir == Path("/srv/trek/logs/.trek-audit")
    assert data.logs.lock_file.parent == data.logs.fresh_file.parent == data.logs.state_dir
    assert {data.audit_db.name, data.accounts_db.name, data.secret_key.name} == {
        "audit.db",
        "accounts.db",
        "secret_key",
    }
