"""Settings of trek-audit, declared once, each with its default and help text.

Environment variables are read here and nowhere else, and only when a caller asks
(``WriterConfig.from_env()``), never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SETTINGS",
    "Setting",
    "WriterConfig",
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
    """One environment variable: its name, default, parser and help text."""

    name: str
    default: str
    parse: Callable[[str], Any]
    help: str

    def read(self, environ: Mapping[str, str]) -> Any:
        raw = environ.get(self.name, self.default)
        try:
            return self.parse(raw)
        except ValueError as error:
            raise ValueError(f"invalid {self.name}={raw!r}: {error}") from None


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("TREK_DATA_DIR", "./data", str, "Data directory; the log is <data>/logs/trek.log."),
        Setting(
            "TREK_LOG_MAX_BYTES",
            "10485760",
            parse_positive_int,
            "Rotate before a write would take trek.log past this many bytes.",
        ),
        Setting(
            "TREK_LOG_BACKUPS",
            "4",
            parse_non_negative_int,
            "Rotated files kept: trek.log.1 (newest) to trek.log.N.",
        ),
        Setting(
            "TREK_LOG_MAX_LINE_BYTES",
            "65536",
            parse_positive_int,
            "Largest accepted event line in bytes, newline included; "
            "larger events raise ValueError.",
        ),
        Setting(
            "TREK_LOG_FSYNC",
            "false",
            parse_bool,
            "fsync trek.log after every event (survives power loss, costs a disk flush per event).",
        ),
        Setting(
            "TRUST_PROXY",
            "",
            parse_trust_proxy,
            "Proxy hops to trust in X-Forwarded-For: unset/false = none, true = 1, N = N.",
        ),
    )
}


@dataclass(frozen=True)
class WriterConfig:
    """Where and how the writer appends events."""

    data_dir: Path = Path("./data")
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 4
    max_line_bytes: int = 64 * 1024
    fsync: bool = False
    trust_proxy: int = 0

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WriterConfig:
        """Build the configuration from environment variables (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        return cls(
            data_dir=Path(SETTINGS["TREK_DATA_DIR"].read(env)),
            max_bytes=SETTINGS["TREK_LOG_MAX_BYTES"].read(env),
            backups=SETTINGS["TREK_LOG_BACKUPS"].read(env),
            max_line_bytes=SETTINGS["TREK_LOG_MAX_LINE_BYTES"].read(env),
            fsync=SETTINGS["TREK_LOG_FSYNC"].read(env),
            trust_proxy=SETTINGS["TRUST_PROXY"].read(env),
        )
