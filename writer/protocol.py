"""The protocol of ``record --stdin`` and ``ingest``: one JSON request line in, one line out.

A request is a JSON object on one line, with the keys of ``AuditWriter.record``: ``action``
(required), ``user``, ``resource``, ``ip``, ``details``, checked the same way. Each request
line gets exactly one answer line, in order:

* the event exactly as written (``line.encode``), or
* ``{"error": {"type": "invalid", "message": ...}}`` for a line that is not a valid request
  (bad JSON or UTF-8, not an object, unknown or missing keys, a value ``record`` refuses, a
  blank line, a line longer than ``max_request_bytes``), or
* ``{"error": {"type": "write", "message": ...}}`` when the event could not be appended (disk
  full, ...): nothing of it was written.

Neither error ends the conversation. A last line without its newline is a request too, answered
when the input ends.

Requests are answered a chunk at a time (``Conversation.answer``): every complete line of
what one read returned, answered as one block for one write, so a pipelining client costs a
system call per chunk rather than per event. An overlong line is skipped up to its newline
without being kept.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Final

import orjson

from trek_audit.settings import Settings

from .appender import AuditWriter
from .errors import AuditWriteError
from .line import escape_line_breakers

__all__ = [
    "CHUNK_BYTES",
    "REQUEST_KEYS",
    "Conversation",
    "answer_stream",
    "max_request_bytes",
]

REQUEST_KEYS: Final = frozenset(("action", "user", "resource", "ip", "details"))
# A request may spell its event longer than the line it becomes (spaces, \u escapes), so the
# bound on a request line is a multiple of the bound on an event line.
REQUEST_LINE_FACTOR: Final = 4
# How much one read asks for: 64 KiB carries a few hundred pipelined requests.
CHUNK_BYTES: Final = 1 << 16
# An error message names the offending value, which may be long: the answer stays short.
MESSAGE_MAX_CHARS: Final = 500

# orjson reads an integer past 64 bits as a float, silently changing it; only a run of 19 or
# more digits can be one, so only such lines are read again exactly (json) to refuse it.
_LONG_NUMBER = re.compile(rb"[0-9]{19}").search
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_loads = orjson.loads
_dumps = orjson.dumps
_JSONDecodeError = orjson.JSONDecodeError
_OPT = orjson.OPT_APPEND_NEWLINE


def max_request_bytes(settings: Settings) -> int:
    """The longest request line accepted (newline excluded) under ``settings``."""
    return REQUEST_LINE_FACTOR * settings.max_line_bytes


def error_answer(kind: str, message: str) -> bytes:
    """The answer line for a request that failed: ``kind`` is ``invalid`` or ``write``."""
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 1] + "…"
    return escape_line_breakers(_dumps({"error": {"type": kind, "message": message}}, option=_OPT))


class _Refused(ValueError):
    """A request line that is not a valid request; the message says why."""


class Conversation:
    """The requests of one client (a pipe or a connection) and their answers, in order.

    ``answer(chunk)`` takes the bytes as they come and returns the answers to every line they
    complete; ``finish()`` answers a last line left without its newline at the end of input.
    """

    def __init__(self, writer: AuditWriter, max_request_bytes: int) -> None:
        self.writer = writer
        self.max_request_bytes = max_request_bytes
        self._partial = bytearray()  # the start of a line whose newline has not come yet
        self._skipping = False  # inside an overlong line, up to its newline

    @property
    def pending(self) -> bool:
        """Whether part of a request line has been read and not yet answered."""
        return self._skipping or bool(self._partial)

    def answer(self, chunk: bytes) -> bytes:
        """The answers to the request lines ``chunk`` completes, as one block of lines."""
        newline = chunk.find(b"\n")
        if newline < 0:
            self._keep(chunk)
            return b""
        answers = [self._first_line(chunk[:newline])]
        lines = chunk[newline + 1 :].split(b"\n")
        rest = lines.pop()
        limit = self.max_request_bytes
        one = self.answer_line
        for line in lines:
            answers.append(one(line) if len(line) <= limit else self._too_long())
        self._keep(rest)
        return b"".join(answers)

    def finish(self) -> bytes:
        """The answer to a last line that ended without a newline (empty if there is none)."""
        if self._skipping:
            self._skipping = False
            return self._too_long()
        if not self._partial:
            return b""
        line = bytes(self._partial)
        self._partial.clear()
        return self.answer_line(line)

    def _first_line(self, end: bytes) -> bytes:
        """The answer to the line that ``end`` (a chunk's bytes up to its first newline) ends."""
        if self._skipping:
            self._skipping = False
            return self._too_long()
        if self._partial:
            line = bytes(self._partial) + end
            self._partial.clear()
        else:
            line = end
        return self.answer_line(line) if len(line) <= self.max_request_bytes else self._too_long()

    def _keep(self, start: bytes) -> None:
        """Hold the start of a line until its newline comes, or skip it if it is too long."""
        if self._skipping or not start:
            return
        if len(self._partial) + len(start) > self.max_request_bytes:
            self._partial.clear()
            self._skipping = True
        else:
            self._partial += start

    def _too_long(self) -> bytes:
        return error_answer(
            "invalid",
            f"request line longer than {self.max_request_bytes} bytes (4 x "
            "TREK_LOG_MAX_LINE_BYTES); it was skipped up to its newline",
        )

    def answer_line(self, line: bytes) -> bytes:
        """The answer to one request line (without its newline)."""
        try:
            request = _parse(line)
        except _Refused as error:
            return error_answer("invalid", str(error))
        try:
            event = self.writer.record(**request)
        except (ValueError, TypeError) as error:
            return error_answer("invalid", str(error))
        except AuditWriteError as error:
            return error_answer("write", str(error))
        return escape_line_breakers(_dumps(event, option=_OPT))


def _parse(line: bytes) -> dict[str, Any]:
    """The keyword arguments of ``record`` a request line gives, or _Refused saying why not."""
    try:
        request = _loads(line)
    except _JSONDecodeError as error:
        raise _Refused(_json_error(line, error)) from None
    if type(request) is not dict:
        raise _Refused(
            'a request is a JSON object such as {"action": "user.login"}, not '
            f"{type(request).__name__}"
        )
    if not request.keys() <= REQUEST_KEYS:
        unknown = sorted(request.keys() - REQUEST_KEYS)
        raise _Refused(
            f"unknown request keys {unknown}; allowed: action, user, resource, ip, details"
        )
    if "action" not in request:
        raise _Refused('a request needs an "action", such as "user.login"')
    if _LONG_NUMBER(line) is not None:
        _check_integers(line)
    return request  # type: ignore[no-any-return]


def _json_error(line: bytes, error: _JSONDecodeError) -> str:
    if not line.strip():
        return "blank line: every line is a request"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8 (byte {bad.start})"
    return f"not JSON: {error}"


def _check_integers(line: bytes) -> None:
    """Refuse an integer outside 64 bits, which orjson would have turned into a float."""

    def int64(text: str) -> int:
        number = int(text)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise _Refused(f"{text} is an integer outside the 64-bit range JSON readers accept")
        return number

    try:
        json.loads(line, parse_int=int64)
    except RecursionError:
        raise _Refused("the request nests too deep to be read") from None


def answer_stream(conversation: Conversation, read_fd: int, write_fd: int) -> None:
    """Answer the requests read from ``read_fd`` on ``write_fd`` until the input ends.

    Each read's answers go out in one write, at once: no answer waits for more input.
    Raises BrokenPipeError when the answers can no longer be written.
    """
    while chunk := os.read(read_fd, CHUNK_BYTES):
        _write_all(write_fd, conversation.answer(chunk))
    _write_all(write_fd, conversation.finish())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
