"""Every setting of trek-audit, declared once: its environment variable, default, parser and help.

``Settings.from_env()`` reads the environment, once per process, when a command or the app
factory starts (never at import time), and the result is passed down to the writer, the
indexer and the panel. The README's settings table is checked against ``SETTINGS`` by a test,
so a setting that is not documented, or documented but not declared, fails.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .layout import DataDir

__all__ = [
    "SETTINGS",
    "Setting",
    "Settings",
    "parse_bool",
    "parse_non_negative_int",
    "parse_positive_int",
    "parse_trust_proxy",
]


def parse_bool(value: str) -> bool:
    """Read a yes/no setting.

    ``1``, ``true``, ``yes``, ``on`` are true; empty, ``0``, ``false``, ``no``, ``off`` false.
    """
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def parse_trust_proxy(value: object) -> int:
    """Return how many proxy hops to trust.

    0 for unset, empty, ``0`` or ``false``; 1 for ``true``; N for an integer N.
    """
    if value is None or value is False:
        return 0
    if value is True:
        return 1
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"TRUST_PROXY must not be negative, got {value}")
        return value
    text = str(value).strip().lower()
    if text in ("", "false", "no", "off"):
        return 0
    if text in ("true", "yes", "on"):
        return 1
    try:
        hops = int(text)
    except ValueError:
        raise ValueError(
            f"TRUST_PROXY must be unset, true, false or a number of proxy hops, got {value!r}"
        ) from None
    if hops < 0:
        raise ValueError(f"TRUST_PROXY must not be negative, got {value!r}")
    return hops


def parse_positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return number


def parse_non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"expected zero or a positive integer, got {value!r}")
    return number


@dataclass(frozen=True)
class Setting:
    """One environment variable: the ``Settings`` field it fills, its default, parser and help."""

    name: str
    field: str
    default: str
    parse: Callable[[str], Any]
    help: str

    def read(self, environ: Mapping[str, str]) -> Any:
        raw = environ.get(self.name, self.default)
        try:
            return self.parse(raw)
        except ValueError as error:
            raise ValueError(f"invalid {self.name}={raw!r}: {error}") from None

    @property
    def default_value(self) -> Any:
        return self.parse(self.default)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "TREK_DATA_DIR",
            "data_dir",
            "./data",
            Path,
            "Data directory: logs in <data>/logs; audit.db, accounts.db and secret_key beside it.",
        ),
        Setting(
            "TREK_LOG_MAX_BYTES",
            "log_max_bytes",
            "10485760",
            parse_positive_int,
            "Rotate before a write would take trek.log past this many bytes.",
        ),
        Setting(
            "TREK_LOG_BACKUPS",
            "log_backups",
            "4",
            parse_non_negative_int,
            "Rotated files kept: trek.log.1 (newest) to trek.log.N; 0 replaces trek.log.",
        ),
        Setting(
            "TREK_LOG_MAX_LINE_BYTES",
            "max_line_bytes",
            "65536",
            parse_positive_int,
            "Largest event line in bytes, newline included: the writer refuses longer events "
            "(ValueError) and the indexer rejects longer lines.",
        ),
        Setting(
            "TREK_LOG_FSYNC",
            "log_fsync",
            "false",
            parse_bool,
            "fsync trek.log after every event (survives power loss, costs a disk flush per event).",
        ),
        Setting(
            "TREK_WRITER_PURE_PYTHON",
            "writer_pure_python",
            "false",
            parse_bool,
            "Make the writer use its pure-Python path even where the C fast path is built.",
        ),
        Setting(
            "TRUST_PROXY",
            "trust_proxy",
            "",
            parse_trust_proxy,
            "Proxy hops to trust in X-Forwarded-For: unset/false = none, true = 1, N = N.",
        ),
        Setting(
            "TREK_SECRET_KEY",
            "secret_key",
            "",
            str,
            "Key that signs the panel's session cookies; empty = a random key kept in "
            "<data>/secret_key (mode 0600).",
        ),
        Setting(
            "TREK_ADMIN_PASSWORD",
            "admin_password",
            "",
            str,
            "Password of the `admin` account created on first start; empty = a random one, "
            "printed once.",
        ),
        Setting(
            "TREK_COOKIE_SECURE",
            "cookie_secure",
            "false",
            parse_bool,
            "Send the session cookie over HTTPS only (set it when the panel is served over TLS).",
        ),
        Setting(
            "TREK_LAG_WARN_BYTES",
            "lag_warn_bytes",
            "65536",
            parse_non_negative_int,
            "The panel's banner shows, and health turns degraded, when more than this many "
            "bytes of log are not yet indexed.",
        ),
        Setting(
            "TREK_METRICS_TOKEN",
            "metrics_token",
            "",
            str,
            "Bearer token that lets a scraper read /metrics without a session; empty = only an "
            "admin's session may.",
        ),
        Setting(
            "TREK_FOLLOWER_EXPECTED",
            "follower_expected",
            "true",
            parse_bool,
            "Whether an indexer is meant to follow the log (`index`, or the one `serve` runs); "
            "false where `index --once` runs from cron: health then ignores whether one runs.",
        ),
        Setting(
            "TREK_SEAL_KEY_FILE",
            "seal_key_file",
            "",
            str,
            "The sealing key (made by `trek-audit seal init`); writers seal while it exists. "
            "Empty = <data>/seal.key.",
        ),
        Setting(
            "TREK_SEAL_INTERVAL",
            "seal_interval",
            "60",
            parse_positive_int,
            "Seconds a line may stay unsealed: a seal is written when unsealed lines are older, "
            "and before every rotation.",
        ),
        Setting(
            "TREK_VERIFY_KEY_FILE",
            "verify_key_file",
            "",
            str,
            "A file holding the verification key as printed by `seal init`, for "
            "`trek-audit verify`; empty = check the chain and seal continuity only.",
        ),
        Setting(
            "TREK_LOG_GROUP",
            "log_group",
            "",
            str,
            "Group (name or number) that may read the log files, e.g. a log shipper's: logs/ "
            "becomes setgid to it and files are created 0640 in it; empty = the writer's group.",
        ),
        Setting(
            "TREK_INGEST_SOCKET",
            "ingest_socket",
            "",
            str,
            "Unix socket on which `serve` takes events in the `record --stdin` protocol; empty = "
            "none. `ingest` listens on <data>/ingest.sock unless told otherwise.",
        ),
    )
}


def _default(name: str) -> Any:
    return dataclasses.field(default=SETTINGS[name].default_value)


@dataclass(frozen=True)
class Settings:
    """The settings of one process, built once (``from_env``) and passed down.

    Each field is filled by the environment variable of the same entry in ``SETTINGS``;
    ``Settings()`` holds the defaults.
    """

    data_dir: Path = _default("TREK_DATA_DIR")
    log_max_bytes: int = _default("TREK_LOG_MAX_BYTES")
    log_backups: int = _default("TREK_LOG_BACKUPS")
    max_line_bytes: int = _default("TREK_LOG_MAX_LINE_BYTES")
    log_fsync: bool = _default("TREK_LOG_FSYNC")
    writer_pure_python: bool = _default("TREK_WRITER_PURE_PYTHON")
    trust_proxy: int = _default("TRUST_PROXY")
    secret_key: str = _default("TREK_SECRET_KEY")
    admin_password: str = _default("TREK_ADMIN_PASSWORD")
    cookie_secure: bool = _default("TREK_COOKIE_SECURE")
    lag_warn_bytes: int = _default("TREK_LAG_WARN_BYTES")
    metrics_token: str = _default("TREK_METRICS_TOKEN")
    follower_expected: bool = _default("TREK_FOLLOWER_EXPECTED")
    seal_key_file: str = _default("TREK_SEAL_KEY_FILE")
    seal_interval: int = _default("TREK_SEAL_INTERVAL")
    verify_key_file: str = _default("TREK_VERIFY_KEY_FILE")
    ingest_socket: str = _default("TREK_INGEST_SOCKET")
    log_group: str = _default("TREK_LOG_GROUP")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (``os.environ`` by default).

        ``overrides`` (field names, e.g. ``data_dir=...`` from a command-line option) win over
        the environment; None values are ignored. A malformed value raises ValueError naming it.
        """
        env = os.environ if environ is None else environ
        values = {s.field: s.read(env) for s in SETTINGS.values()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; None values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def data(self) -> DataDir:
        """The layout of the data directory these settings name."""
        return DataDir(self.data_dir)

    @property
    def seal_key_path(self) -> Path:
        """The sealing key file: TREK_SEAL_KEY_FILE, or <data>/seal.key."""
        return Path(self.seal_key_file) if self.seal_key_file else self.data.seal_key
