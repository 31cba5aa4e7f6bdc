"""writer/_fastappend.h holds the state page, ranges, placeholder and line breakers of Python.

The C fast path and the Python writer share the state page (writer/state.py) and write the
same lines within the same ranges (writer/line.py); these tests hold the header to both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import orjson
import pytest

import trek_audit.writer.appender as appender
from trek_audit.writer.chain import HEAD_BYTES
from trek_audit.writer.line import LINE_BREAKERS, PLACEHOLDER, SEQ_MAX, TS_END_NS
from trek_audit.writer.state import LAYOUT, MAGIC, OFFSETS, VERSION, State

SOURCE = Path(appender.__file__).parent / "_fastappend.c"
HEADER = Path(appender.__file__).parent / "_fastappend.h"

needs_c = pytest.mark.skipif(
    not appender.FAST_PATH_BUILT and bool(os.environ.get("TREK_WRITER_PURE_PYTHON")),
    reason="the C fast path is not built and TREK_WRITER_PURE_PYTHON is set",
)

C_DEFINE = re.compile(r"^#define[ \t]+(\w+)[ \t]+(.+?)[ \t]*$", re.MULTILINE)
C_STRING_ESCAPE = re.compile(r'\\(?:x([0-9a-fA-F]{2})|(["\\]))')


def c_string(literal: str) -> bytes:
    """The bytes of a C string literal with hex, quote and backslash escapes."""
    assert literal.startswith('"') and literal.endswith('"'), literal
    body, data, end = literal[1:-1], bytearray(), 0
    for escape in C_STRING_ESCAPE.finditer(body):
        data += body[end : escape.start()].encode("ascii")
        if escape[1]:
            # C reads every hex digit after \x: a digit right after two would join the escape.
            assert not re.match(r"[0-9a-fA-F]", body[escape.end() : escape.end() + 1]), literal
            data.append(int(escape[1], 16))
        else:
            data += escape[2].encode("ascii")
        end = escape.end()
    data += body[end:].encode("ascii")
    assert b"\\" not in data.replace(b"\\u", b""), f"an escape this reader does not know: {literal}"
    return bytes(data)


def header_defines() -> dict[str, int | bytes]:
    defines: dict[str, int | bytes] = {}
    for name, value in C_DEFINE.findall(HEADER.read_text()):
        defines[name] = c_string(value) if value.startswith('"') else int(value)
    return defines


def test_the_c_header_declares_the_state_page_as_state_py_lays_it_out() -> None:
    defines = header_defines()
    assert tuple(OFFSETS) == State._fields
    offsets = {name: value for name, value in defines.items() if name.startswith("STATE_OFF_")}
    assert offsets == {f"STATE_OFF_{field.upper()}": OFFSETS[field] for field in State._fields}
    assert defines["STATE_SIZE"] == LAYOUT.size == 144
    assert defines["STATE_MAGIC"] == MAGIC
    assert defines["STATE_MAGIC_LEN"] == len(MAGIC)
    assert defines["STATE_VERSION"] == VERSION == 2


def test_the_state_page_v2_holds_the_chain_and_the_last_seal_where_the_design_puts_them() -> None:
    assert OFFSETS["chain"] == 48 and OFFSETS["seal_seq"] == 48 + HEAD_BYTES
    assert (OFFSETS["seal_epoch"], OFFSETS["unsealed_ns"]) == (88, 96)
    assert (OFFSETS["seal_head"], OFFSETS["seal_key_id"]) == (104, 104 + HEAD_BYTES)
    assert header_defines()["CHAIN_BYTES"] == HEAD_BYTES


def test_the_c_header_has_the_seq_and_ts_ranges_of_line_py() -> None:
    defines = header_defines()
    assert defines["SEQ_MAX"] == SEQ_MAX == 2**63 - 1
    assert defines["TS_END_NS"] == TS_END_NS


def test_the_c_header_has_the_placeholder_and_line_breakers_of_line_py() -> None:
    defines = header_defines()
    assert defines["PLACEHOLDER"] == PLACEHOLDER
    breakers = {
        name: (raw, defines[f"{name}_ESCAPED"])
        for name, raw in defines.items()
        if name.startswith("LINE_BREAKER_") and not name.endswith("_ESCAPED")
    }
    assert sorted(breakers.values()) == sorted(LINE_BREAKERS)
    for name, (raw, escaped) in breakers.items():
        code_point = int(name.removeprefix("LINE_BREAKER_U"), 16)
        assert isinstance(raw, bytes) and raw.decode() == chr(code_point)
        assert escaped == f"\\u{code_point:04x}".encode()


def test_the_c_source_takes_offsets_and_strings_from_the_header_only() -> None:
    source = SOURCE.read_text()
    assert '#include "_fastappend.h"' in source
    assert re.search(r"state \+ \d", source) is None, "a literal offset into the state page"
    for name in ("STATE_", "PLACEHOLDER ", "LINE_BREAKER_", "SEQ_MAX", "TS_END_NS"):
        assert f"#define {name}" not in source
    assert "TRKA" not in source and "\\xe2" not in source.lower()
    assert str(SEQ_MAX) not in source and str(TS_END_NS) not in source


def test_orjson_writes_an_event_with_placeholders_as_the_placeholder_says() -> None:
    event = {"v": 1, "id": "", "seq": 0, "ts": "", "action": "user.login", "user": None}
    assert orjson.dumps(event).startswith(PLACEHOLDER)


@needs_c
def test_the_built_extension_was_compiled_with_the_placeholder_and_ranges_of_line_py() -> None:
    from trek_audit.writer import _fastappend

    assert _fastappend.PLACEHOLDER.encode() == PLACEHOLDER
    assert (_fastappend.SEQ_MAX, _fastappend.TS_END_NS) == (SEQ_MAX, TS_END_NS)
