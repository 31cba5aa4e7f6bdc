"""The admin panel."""
