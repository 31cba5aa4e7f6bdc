"""Line format v1: one JSON object per line, UTF-8, ending in a newline.

This module is the public interface between everything that writes trek.log and
everything that reads it. ``encode`` is what the writer appends; ``decode`` is what the
indexer accepts. Both follow ``writer/audit-line-v1.schema.json``, limits included: ``seq``
from 1 to ``SEQ_MAX`` and ``ts`` a real instant from ``TS_FIRST`` to ``TS_LAST``, so that
both fit a signed 64-bit integer (``ts`` as ns since the epoch).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

import orjson

__all__ = [
    "ACTION_PATTERN",
    "FORMAT_VERSION",
    "KEYS",
    "LINE_BREAKERS",
    "PLACEHOLDER",
    "SEQ_MAX",
    "TS_END_NS",
    "TS_FIRST",
    "TS_LAST",
    "TS_PATTERN",
    "LineError",
    "User",
    "Event",
    "check_action",
    "check_details",
    "check_optional_str",
    "check_user",
    "decode",
    "encode",
    "escape_line_breakers",
]

FORMAT_VERSION = 1
ACTION_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
KEYS = ("v", "id", "seq", "ts", "action", "user", "resource", "ip", "details")
_KEY_SET = frozenset(KEYS)
_USER_KEYS = frozenset(("id", "username", "email"))
_MAX_ID_LENGTH = 128
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# The largest seq: every seq fits a signed 64-bit integer, which is what SQLite (and most
# readers) hold exactly. Also in writer/_fastappend.h.
SEQ_MAX = _INT64_MAX

# The instants a ts may name, both ends included: from the Unix epoch (no writer clock is
# earlier) up to the end of 2261, so that the time in ns since the epoch, as the writer keeps
# it, fits a signed 64-bit integer too. TS_END_NS is the first ns past the range (2262-01-01),
# also in writer/_fastappend.h.
TS_FIRST = "1970-01-01T00:00:00.000000Z"
TS_LAST = "2261-12-31T23:59:59.999999Z"
TS_END_NS = 9_214_646_400_000_000_000

# A real date of the range: 30-day months end on the 30th, February on the 28th, or on the
# 29th in a leap year (every 4th year, but 2100 and 2200 are not). [0-9] rather than \d,
# which would also match digits of other scripts. The JSON Schema has the same pattern.
_YEAR = "(19[7-9][0-9]|2[01][0-9]{2}|22[0-5][0-9]|226[01])"
_LEAP_YEAR = (
    "(19(7[26]|8[048]|9[26])|20([02468][048]|[13579][26])|21(0[48]|[2468][048]|[13579][26])"
    "|22(0[48]|[24][048]|[135][26]|60))"
)
_DATE = (
    f"({_YEAR}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    f"|02-(0[1-9]|1[0-9]|2[0-8]))|{_LEAP_YEAR}-02-29)"
)
TS_PATTERN = re.compile(f"{_DATE}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\\.[0-9]{{6}}Z")

# orjson leaves these as raw UTF-8. They are not newlines to a byte-oriented reader, but
# str.splitlines(), JavaScript and some shippers break lines on them, so they are escaped.
# UTF-8 is self-synchronising, so these byte sequences can only be these characters.
# The C fast path has the same pairs in writer/_fastappend.h (a test compares them).
LINE_BREAKERS = (
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
    (b"\xc2\x85", b"\\u0085"),
)

# How orjson writes an event's first four keys while id, seq and ts are still placeholders
# ("", 0, ""): the writer serialises an event before it takes the lock and splices the real
# values in under it. Also in writer/_fastappend.h.
PLACEHOLDER = b'{"v":1,"id":"","seq":0,"ts":"",'


class User(TypedDict):
    id: int | None
    username: str | None
    email: str | None


class Event(TypedDict):
    v: int
    id: str
    seq: int
    ts: str
    action: str
    user: User | None
    resource: str | None
    ip: str | None
    details: dict[str, Any] | None


class LineError(ValueError):
    """A line that is not a valid format-v1 event; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_action(action: object) -> str:
    """Return the action key, or raise ValueError if it is not well formed."""
    if not isinstance(action, str) or ACTION_PATTERN.fullmatch(action) is None:
        raise ValueError(
            f"malformed action key {action!r}: expected dotted lowercase words such as "
            "'user.login' (pattern ^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)+$)"
        )
    return action


def check_optional_str(name: str, value: object) -> str | None:
    """Return ``value`` if it is a string or None, else raise TypeError naming the field."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a string or None, not {type(value).__name__}")


def check_user(user: object) -> User | None:
    """Return the user object in its canonical form, or raise TypeError/ValueError."""
    if user is None:
        return None
    if type(user) is dict and user.keys() <= _USER_KEYS:  # the common case, checked cheaply
        user_id = user.get("id")
        username = user.get("username")
        email = user.get("email")
        if (
            (user_id is None or (type(user_id) is int and _INT64_MIN <= user_id <= _INT64_MAX))
            and (username is None or type(username) is str)
            and (email is None or type(email) is str)
        ):
            return {"id": user_id, "username": username, "email": email}
    if not isinstance(user, dict):
        raise TypeError(
            f"user must be a dict with id, username and email, or None, not {type(user).__name__}"
        )
    unknown = set(user) - _USER_KEYS
    if unknown:
        raise ValueError(f"user has unknown keys {sorted(unknown)}; allowed: id, username, email")
    user_id = user.get("id")
    if user_id is not None and (
        type(user_id) is not int or not _INT64_MIN <= user_id <= _INT64_MAX
    ):
        raise TypeError(f"user id must be a 64-bit integer or None, not {user_id!r}")
    return {
        "id": user_id,
        "username": check_optional_str("user username", user.get("username")),
        "email": check_optional_str("user email", user.get("email")),
    }


# Deeper details are refused with a clear error rather than a RecursionError; orjson itself
# stops at 255 levels.
MAX_DETAILS_DEPTH = 100


def check_details(details: object) -> dict[str, Any] | None:
    """Return ``details`` if it is None or a JSON object of JSON values.

    Raises TypeError or ValueError naming the first offending value otherwise.
    """
    if details is None:
        return None
    if not isinstance(details, dict):
        raise TypeError(
            f"details must be a JSON object (dict) or None, not {type(details).__name__}"
        )
    if not _is_json_object(details):
        _check_json_value(details, "details")  # finds the offending value and raises
    return details


def _is_json_object(value: dict[Any, Any], depth: int = 0) -> bool:
    """True if a dict holds only JSON values (the fast check; _check_json_value explains)."""
    if depth > MAX_DETAILS_DEPTH:
        return False
    for key, item in value.items():
        if type(key) is not str:
            return False
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if not _INT64_MIN <= item <= _INT64_MAX:
                return False
        elif kind is float:
            if item - item != 0.0:  # NaN and the infinities
                return False
        elif kind is dict:
            if not _is_json_object(item, depth + 1):
                return False
        elif kind is list:
            if not _is_json_list(item, depth + 1):
                return False
        else:
            return False
    return True


def _is_json_list(value: list[Any], depth: int) -> bool:
    return all(_is_json_object({"": item}, depth) for item in value)


def _check_json_value(value: object, path: str, depth: int = 0) -> None:
    if depth > MAX_DETAILS_DEPTH:
        # Also what stops a dict or list that contains itself.
        raise ValueError(f"{path} nests deeper than {MAX_DETAILS_DEPTH} levels")
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
            raise ValueError(f"{path} is an integer outside the 64-bit range JSON readers accept")
        return
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{path} is {value!r}, which JSON cannot represent")
        return
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise TypeError(
                    f"{path} has a key {key!r} of type {type(key).__name__}; JSON keys are strings"
                )
            _check_json_value(item, f"{path}[{key!r}]", depth + 1)
        return
    if kind is list:
        for index, item in enumerate(value):  # type: ignore[arg-type]
            _check_json_value(item, f"{path}[{index}]", depth + 1)
        return
    raise TypeError(f"{path} is a {kind.__name__}, which is not a JSON value")


def encode(event: Event) -> bytes:
    """Serialise an event to one line of bytes, newline included."""
    return escape_line_breakers(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))


def escape_line_breakers(data: bytes) -> bytes:
    """Serialised JSON with U+2028, U+2029 and U+0085 written as escapes (see LINE_BREAKERS)."""
    if data.isascii():  # most events: one quick pass instead of a search per breaker
        return data
    for raw, escaped in LINE_BREAKERS:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def decode(line: bytes, max_bytes: int | None = None) -> Event:
    """Parse one line (with or without its newline) into an event.

    Raises LineError with the reason if it is not a valid format-v1 event.
    """
    if max_bytes is not None and len(line) > max_bytes:
        raise LineError(f"line longer than {max_bytes} bytes")
    if not line.strip():
        raise LineError("blank line")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        if _is_utf8_error(line):
            raise LineError("not UTF-8") from None
        raise LineError(f"not JSON: {error}") from None
    if type(obj) is not dict:
        raise LineError("not a JSON object")
    if obj.keys() != _KEY_SET:
        missing = _KEY_SET - obj.keys()
        if missing:
            raise LineError(f"missing key {sorted(missing)[0]!r}")
        raise LineError(f"unknown key {sorted(obj.keys() - _KEY_SET)[0]!r}")
    if obj["v"] != FORMAT_VERSION or type(obj["v"]) is not int:
        raise LineError(f"unsupported format version {obj['v']!r}")
    event_id = obj["id"]
    if type(event_id) is not str or not event_id or len(event_id) > _MAX_ID_LENGTH:
        raise LineError(f"id must be a non-empty string of at most {_MAX_ID_LENGTH} characters")
    seq = obj["seq"]
    if type(seq) is not int or seq < 1:
        raise LineError("seq must be a positive integer")
    if seq > SEQ_MAX:
        raise LineError(f"seq larger than a 64-bit integer (at most {SEQ_MAX})")
    ts = obj["ts"]
    if type(ts) is not str or TS_PATTERN.fullmatch(ts) is None:
        raise LineError(
            "ts must be a real UTC instant, RFC 3339 with microseconds, from "
            f"{TS_FIRST} to {TS_LAST}, e.g. 2026-11-26T13:22:49.123456Z"
        )
    action = obj["action"]
    if type(action) is not str or ACTION_PATTERN.fullmatch(action) is None:
        raise LineError("malformed action key")
    user = obj["user"]
    if user is not None:
        if type(user) is not dict or user.keys() != _USER_KEYS:
            raise LineError("user must be null or an object with id, username and email")
        uid = user["id"]
        if uid is not None and type(uid) is not int:
            raise LineError("user.id must be an integer or null")
        for key in ("username", "email"):
            if user[key] is not None and type(user[key]) is not str:
                raise LineError(f"user.{key} must be a string or null")
    for key in ("resource", "ip"):
        if obj[key] is not None and type(obj[key]) is not str:
            raise LineError(f"{key} must be a string or null")
    if obj["details"] is not None and type(obj["details"]) is not dict:
        raise LineError("details must be a JSON object or null")
    return obj  # type: ignore[return-value]


def _is_utf8_error(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
