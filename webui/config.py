"""Settings of the admin panel, declared once, each with its default and help text.

Environment variables are read in ``PanelConfig.from_env`` only, which ``create_app``
calls when it is given no configuration. The data directory and proxy settings are the
writer's (``writer.config.SETTINGS``), so both components read them the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trek_audit.writer.config import SETTINGS as WRITER_SETTINGS
from trek_audit.writer.config import Setting, WriterConfig, parse_bool, parse_non_negative_int

__all__ = ["SETTINGS", "PanelConfig", "SecretKeyError", "load_or_create_secret_key"]

log = logging.getLogger(__name__)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        WRITER_SETTINGS["TREK_DATA_DIR"],
        Setting(
            "TREK_SECRET_KEY",
            "",
            str,
            "Key that signs session cookies; empty = a random key kept in <data>/secret_key "
            "(mode 0600).",
        ),
        Setting(
            "TREK_ADMIN_PASSWORD",
            "",
            str,
            "Password of the `admin` account created on first start; empty = a random one, "
            "printed once.",
        ),
        Setting(
            "TREK_COOKIE_SECURE",
            "false",
            parse_bool,
            "Send the session cookie over HTTPS only (set it when the panel is served over TLS).",
        ),
        WRITER_SETTINGS["TRUST_PROXY"],
        Setting(
            "TREK_LAG_WARN_BYTES",
            "65536",
            parse_non_negative_int,
            "Show the indexer banner when this many bytes of log are not yet indexed.",
        ),
    )
}


@dataclass(frozen=True)
class PanelConfig:
    """Where the panel finds its data and how it protects sessions."""

    data_dir: Path = Path("./data")
    secret_key: str = ""
    admin_password: str = ""
    cookie_secure: bool = False
    trust_proxy: int = 0
    lag_warn_bytes: int = 65536
    writer: WriterConfig = field(default_factory=WriterConfig)

    @property
    def audit_db(self) -> Path:
        return self.data_dir / "audit.db"

    @property
    def accounts_db(self) -> Path:
        return self.data_dir / "accounts.db"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret_key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PanelConfig:
        """Build the configuration from environment variables (``os.environ`` by default).

        Tests pass a plain mapping with the same names, e.g. ``{"TREK_DATA_DIR": str(tmp_path)}``.
        """
        env = os.environ if environ is None else environ
        writer = WriterConfig.from_env(env)
        return cls(
            data_dir=Path(SETTINGS["TREK_DATA_DIR"].read(env)),
            secret_key=SETTINGS["TREK_SECRET_KEY"].read(env),
            admin_password=SETTINGS["TREK_ADMIN_PASSWORD"].read(env),
            cookie_secure=SETTINGS["TREK_COOKIE_SECURE"].read(env),
            trust_proxy=SETTINGS["TRUST_PROXY"].read(env),
            lag_warn_bytes=SETTINGS["TREK_LAG_WARN_BYTES"].read(env),
            writer=writer,
        )


class SecretKeyError(ValueError):
    """The secret key file cannot be used; the message says what to do."""


# Shorter than this is no secret (a key made here has 64 characters).
_MIN_KEY_LENGTH = 32


def _read_secret_key(path: Path) -> str:
    """Read the key, first making the file private: whoever reads it can sign any session."""
    with open(path, encoding="ascii") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & 0o077:
            try:
                os.fchmod(file.fileno(), 0o600)
            except OSError as error:
                log.warning("%s can be read by others and cannot be made private: %s", path, error)
            else:
                log.warning("%s could be read by others; its mode is now 0600", path)
        key = file.read().strip()
    if len(key) < _MIN_KEY_LENGTH:
        raise SecretKeyError(
            f"{path} holds no usable key ({len(key)} characters, at least {_MIN_KEY_LENGTH} "
            "needed): delete it to have a new one made, or set TREK_SECRET_KEY"
        )
    return key


def load_or_create_secret_key(path: Path) -> str:
    """Return the key stored at ``path``, creating it (mode 0600) when it does not exist.

    The key is written to a temporary file and hard-linked into place, so concurrent
    workers starting together agree on one key and nobody reads a half-written file.
    An existing file readable by others is made private; one without a usable key
    raises SecretKeyError (an empty key would leave the panel without sessions).
    """
    try:
        return _read_secret_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
            out.flush()
            os.fsync(out.fileno())
        # When another process won the race, its key stands.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read_secret_key(path)
