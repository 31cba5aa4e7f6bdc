"""The action catalog: every known action key with its description, grouped by area.

The panel uses it for labels and filters. A key outside the catalog is still accepted
by the writer when it is well formed (see ``writer.line.check_action``).
"""

from __future__ import annotations

__all__ = ["ACTIONS", "AREAS", "RESERVED_ACTIONS", "describe"]

AREAS: dict[str, dict[str, str]] = {
    "Audit log": {
        "audit.seal": "Seal: vouches for the lines before it with the hash chain and a MAC",
    },
    "Authentication": {
        "user.register": "User registered",
        "user.login": "User logged in",
        "user.login_failed": "Login attempt failed",
        "user.login_throttled": "Login attempts refused by the throttle, counted per address",
        "user.password_change": "User changed their password",
        "user.account_delete": "User deleted their account",
        "user.password_reset_request": "Password reset requested",
        "user.password_reset_fail": "Password reset attempt failed",
        "user.password_reset_success": "Password reset completed",
    },
    "MFA": {
        "user.mfa_enable": "MFA enabled on an account",
        "user.mfa_disable": "MFA disabled on an account",
    },
    "Trips": {
        "trip.create": "Trip created (includes title)",
        "trip.update": "Trip updated (includes changed fields)",
        "trip.copy": "Trip duplicated (includes source and new trip IDs)",
        "trip.delete": "Trip deleted (includes trip ID and title)",
    },
    "Admin actions": {
        "admin.user_create": "User created by admin",
        "admin.user_update": "User edited by admin (role, email, username, etc.)",
        "admin.user_delete": "User deleted by admin",
        "admin.invite_create": "Invite link created",
        "admin.invite_delete": "Invite link deleted",
        "admin.permissions_update": "Instance permissions updated",
        "admin.oidc_update": "OIDC/SSO settings updated",
        "admin.addon_update": "Addon enabled, disabled, or configured",
        "admin.oauth_session.revoke": "OAuth session revoked by admin",
        "admin.rotate_jwt_secret": "JWT secret rotated",
        "admin.bag_tracking": "Bag tracking feature toggled",
        "admin.places_photos": "Places photos feature toggled",
        "admin.places_autocomplete": "Places autocomplete feature toggled",
        "admin.places_details": "Places details feature toggled",
        "admin.collab_features": "Collaboration features updated",
        "admin.packing_template_delete": "Packing template deleted",
        "admin.default_user_settings_update": "Default user settings updated",
        "admin.demo_baseline_save": "Demo baseline snapshot saved",
        "admin.token_create": "API token of the audit panel created (resource = token name)",
        "admin.token_revoke": "API token of the audit panel revoked (resource = token name)",
        "settings.app_update": "App settings updated (SMTP, webhooks, MFA policy, etc.)",
    },
    "Backups": {
        "backup.create": "Manual backup created",
        "backup.restore": "Restore from stored backup",
        "backup.upload_restore": "Restore from uploaded ZIP",
        "backup.delete": "Backup deleted",
        "backup.auto_settings": "Auto-backup schedule saved",
    },
    "MCP": {
        "mcp.tool_call": "MCP tool invoked (resource = tool name)",
    },
    "OAuth": {
        "oauth.client.create": "OAuth client application created",
        "oauth.client.rotate_secret": "OAuth client secret rotated",
        "oauth.client.delete": "OAuth client application deleted",
        "oauth.consent.grant": "User granted OAuth consent",
        "oauth.token.issue": "OAuth access token issued",
        "oauth.token.refresh": "OAuth access token refreshed",
        "oauth.token.revoke": "OAuth token revoked",
        "oauth.token.grant_failed": "OAuth token grant attempt failed",
        "oauth.token.client_auth_failed": "OAuth client authentication failed",
        "oauth.token.replay_detected": "OAuth refresh token replay detected",
    },
    "Integrations": {
        "immich.private_ip_configured": "Immich URL saved that resolves to a private IP",
    },
    "Audit": {
        "audit.export": "Audit log exported",
    },
}

ACTIONS: dict[str, str] = {key: text for area in AREAS.values() for key, text in area.items()}

# Written by the writer itself, never through record(): a seal an app could write would be a
# forged seal in the log (and an incident at the indexer).
RESERVED_ACTIONS = frozenset({"audit.seal"})


def describe(action: str) -> str | None:
    """Return the catalog description of an action key, or None for a key outside the catalog."""
    return ACTIONS.get(action)
