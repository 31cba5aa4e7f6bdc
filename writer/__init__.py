"""The writer: the audit line format, the action catalog and the appender."""
