"""The admin panel: the Audit page, its JSON API and exports, behind a login."""

from .app import create_app, get_db
from .config import SETTINGS, PanelConfig

__all__ = ["SETTINGS", "PanelConfig", "create_app", "get_db"]
