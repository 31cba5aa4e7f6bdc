"""Free text from the search box, made into a full-text query that is never FTS5 syntax."""

from __future__ import annotations

import re

__all__ = ["fts_query"]

# A NUL ends an FTS5 string literal early ("unterminated string"), so it separates words too.
_TOKEN = re.compile(r"[^\s\x00]+")


def fts_query(text: str) -> str | None:
    """Turn free text into an FTS5 query that can never be a syntax error.

    Each whitespace-separated word becomes a quoted string (inner quotes doubled), so
    operators, column filters and parentheses are just text; the words combine with AND.
    A word ending in ``*`` stays a prefix search. Returns None when there is no word.
    """
    parts = []
    for word in _TOKEN.findall(text):
        prefix = word.endswith("*") and len(word.rstrip("*")) > 0
        word = word.rstrip("*") if prefix else word
        quoted = '"' + word.replace('"', '""') + '"'
        parts.append(quoted + "*" if prefix else quoted)
    return " ".join(parts) if parts else None
