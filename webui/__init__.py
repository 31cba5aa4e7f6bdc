"""The admin panel: the Audit page, its JSON API and exports, behind a login."""

from .app import create_app
from .state import PanelState, get_db, record_event

__all__ = ["PanelState", "create_app", "get_db", "record_event"]
