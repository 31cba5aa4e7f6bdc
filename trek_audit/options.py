"""Command-line options that stand for settings, declared once and shared by every command.

An option's help text is its setting's (``trek_audit.settings.SETTINGS``); it has no default
and no ``envvar`` of its own. A command turns what was given into ``Settings`` with
``load_settings``, where the environment fills in the rest: one reading of the environment,
by one parser, whichever way a value comes in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .settings import SETTINGS, Settings

__all__ = ["data_dir_option", "load_settings", "setting_help", "setting_option"]

F = TypeVar("F", bound=Callable[..., Any])


def setting_help(name: str) -> str:
    """The help text of a setting, with its variable and default, for an option or a page."""
    setting = SETTINGS[name]
    default = setting.default or "unset"
    return f"{setting.help} [env {name}; default {default}]"


def setting_option(name: str, *param_decls: str, **attrs: Any) -> Callable[[F], F]:
    """A click option that overrides the setting ``name`` (given by its environment variable)."""
    attrs.setdefault("default", None)
    attrs.setdefault("help", setting_help(name))
    return click.option(*param_decls, **attrs)


data_dir_option = setting_option(
    "TREK_DATA_DIR",
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
)


def load_settings(*, usage_error: bool = False, **overrides: Any) -> Settings:
    """Read the settings from the environment, with the options given on the command line.

    A malformed setting ends the command with a message naming it: a usage error (exit 2)
    where ``usage_error`` is set, as for ``record``, else exit 1.
    """
    try:
        return Settings.from_env(**overrides)
    except ValueError as error:
        if usage_error:
            raise click.UsageError(str(error)) from None
        raise click.ClickException(str(error)) from None
