"""Text made into full-text queries that are never FTS5 syntax: the search box, and values
looked up through the full-text index (the username and email of the ``user`` filter)."""

from __future__ import annotations

import re

__all__ = ["column_phrase", "fts_query"]

# A NUL ends an FTS5 string literal early ("unterminated string"), so it separates words too.
_TOKEN = re.compile(r"[^\s\x00]+")
# Characters the full-text index's tokenizer (unicode61, as sqlite-utils made the table)
# always keeps in a word.
_WORD_CHARACTER = re.compile(r"[A-Za-z0-9]")


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


def column_phrase(columns: tuple[str, ...], value: str) -> str | None:
    """A full-text query for rows where one of ``columns`` may equal ``value``, or None.

    The value becomes one quoted phrase limited to those columns. The tokenizer splits the
    column and the phrase alike, so every row whose column equals the value matches; some
    others may (``Alice`` matches ``alice``, ``a b`` matches ``a-b c``), so the caller
    checks equality as well. None when the value has no ASCII letter or digit: it may have
    no word at all, and an empty phrase matches nothing.
    """
    if _WORD_CHARACTER.search(value) is None:
        return None
    # A NUL separates words in an indexed column; in a query string it would end the string.
    phrase = '"' + value.replace("\x00", " ").replace('"', '""') + '"'
    return "{" + " ".join(columns) + "} : " + phrase
