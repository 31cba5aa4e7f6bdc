"""No line can stop the indexer: whatever one line holds, it is indexed or rejected with a reason.

Hostile values go into every key of an otherwise valid event, as raw JSON text so that values
no Python writer would produce (integers past 64 bits, nesting past any limit) reach the
indexer as another program could append them.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trek_audit.indexer import Indexer
from trek_audit.writer.line import KEYS, SEQ_MAX, TS_FIRST, TS_LAST

from .logfiles import Reader, event, line

_NESTED_101 = '{"a":' * 101 + "{}" + "}" * 101
_NESTED_300 = '{"a":' * 300 + "{}" + "}" * 300
_NESTED_LIST_300 = '{"a":' + "[" * 300 + "]" * 300 + "}"

# For each key, JSON texts that make an event invalid whatever the other keys hold.
HOSTILE: dict[str, list[str]] = {
    "v": ["0", "2", '"1"', "1.0", "true", "null", "18446744073709551615"],
    "id": ['""', "1", "null", '"' + "x" * 129 + '"', "[]", "{}"],
    "seq": [
        "0",
        "-1",
        "1.0",
        '"5"',
        "null",
        "true",
        "9223372036854775808",
        "18446744073709551615",
        "100000000000000000000000",
        "-9223372036854775809",
    ],
    "ts": [
        '"2026-02-30T00:00:00.000000Z"',
        '"2025-02-29T00:00:00.000000Z"',
        '"2100-02-29T00:00:00.000000Z"',
        '"0000-01-01T00:00:00.000000Z"',
        '"1969-12-31T23:59:59.999999Z"',
        '"2262-01-01T00:00:00.000000Z"',
        '"2026-11-26T24:00:00.000000Z"',
        '"2026-11-26T13:22:49Z"',
        '"2026-11-26 13:22:49.123456Z"',
        "0",
        "null",
    ],
    "action": ['""', '"User.Login"', '"login"', "1", "null", '"a."'],
    "user": [
        '{"id":18446744073709551615,"username":null,"email":null}',
        '{"id":9223372036854775808,"username":null,"email":null}',
        '{"id":-9223372036854775809,"username":null,"email":null}',
        '{"id":1e400,"username":null,"email":null}',
        '{"id":"7","username":null,"email":null}',
        '{"id":1.5,"username":null,"email":null}',
        '{"id":1,"username":1,"email":null}',
        '{"id":1,"username":null}',
        '{"id":1,"username":null,"email":null,"role":"admin"}',
        "[]",
        '"alice"',
        "0",
    ],
    "resource": ["1", "[]", "{}", "true"],
    "ip": ["1", "[]", "{}", "false"],
    "details": [
        "[]",
        '"x"',
        "1",
        _NESTED_101,
        _NESTED_300,
        _NESTED_LIST_300,
        '{"a":18446744073709551615}',
        '{"a":[9223372036854775808]}',
        '{"a":{"b":-9223372036854775809}}',
    ],
}

# Values at the edges of what is valid, which must be indexed.
EDGES: dict[str, list[str]] = {
    "ts": [
        f'"{TS_FIRST}"',
        f'"{TS_LAST}"',
        '"2024-02-29T00:00:00.000000Z"',
        '"2000-02-29T23:59:59.999999Z"',
    ],
    "user": [
        '{"id":9223372036854775807,"username":"","email":null}',
        '{"id":-9223372036854775808,"username":null,"email":"\\u0000"}',
        "null",
    ],
    "resource": ['"\\u0000\\u2028"', "null", '"' + "r" * 500 + '"'],
    "details": [
        '{"a":9223372036854775807,"b":-9223372036854775808,"c":1e308}',
        '{"a":' * 100 + "{}" + "}" * 100,
        "null",
        "{}",
    ],
}

_MARK = "__hostile__"


def _with(seq: int, key: str, raw_json: str) -> bytes:
    """A line of a valid event whose ``key`` holds ``raw_json`` as written."""
    item = event(seq, id=str(uuid.uuid4()))
    item[key] = _MARK
    return orjson.dumps(item).replace(f'"{_MARK}"'.encode(), raw_json.encode())


_hostile = st.sampled_from(sorted(HOSTILE)).flatmap(
    lambda key: st.tuples(st.just(key), st.sampled_from(HOSTILE[key]))
)
_edge = st.sampled_from(sorted(EDGES)).flatmap(
    lambda key: st.tuples(st.just(key), st.sampled_from(EDGES[key]))
)
_whole_line = st.sampled_from(
    [
        b'{"v":1}',
        b"[]",
        b"null",
        b"18446744073709551615",
        b'{"v":1,"id":"a","seq":1,"ts":"2026-11-26T13:22:49.123456Z"}',
        b"\xff\xfe",
        b'{"id":"\\ud800"}',
    ]
)

# One item per line: ("valid", edge or None), ("hostile", (key, value)) or ("line", bytes).
_items = st.lists(
    st.one_of(
        st.tuples(st.just("valid"), st.one_of(st.none(), _edge)),
        st.tuples(st.just("hostile"), _hostile),
        st.tuples(st.just("line"), _whole_line),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_items)
def test_every_valid_line_is_indexed_and_every_other_one_rejected_whatever_it_holds(
    items: list[tuple[str, object]],
) -> None:
    content = bytearray()
    valid_seqs: list[int] = []
    rejected_offsets: list[int] = []
    # Every line takes a seq, so a rejected one leaves a gap, never a repeat.
    for seq, (kind, value) in enumerate(items, start=1):
        if kind == "valid":
            valid_seqs.append(seq)
            data = line(seq) if value is None else _with(seq, *value) + b"\n"  # type: ignore[misc]
        else:
            rejected_offsets.append(len(content))
            raw = _with(seq, *value) if kind == "hostile" else value  # type: ignore[misc]
            data = raw + b"\n"  # type: ignore[operator]
        content += data
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        (data_dir / "logs").mkdir()
        (data_dir / "logs" / "trek.log").write_bytes(bytes(content))
        report = Indexer(data_dir, watch=False).run_once()
        db = Reader(data_dir / "audit.db")
        try:
            assert db.seqs() == valid_seqs
            assert [row["offset"] for row in db.rejected()] == rejected_offsets
            assert all(row["reason"] for row in db.rejected())
            assert report.rejected == len(rejected_offsets)
            assert db.incidents() == []
        finally:
            db.close()


def test_every_key_has_hostile_values() -> None:
    assert set(HOSTILE) == set(KEYS)


def test_an_event_with_the_largest_seq_is_indexed_and_indexing_goes_on(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    (log_dir / "trek.log").write_bytes(line(1) + line(SEQ_MAX - 1) + line(SEQ_MAX))
    Indexer(data_dir, watch=False).run_once()
    with open(log_dir / "trek.log", "ab") as file:
        file.write(line(2))
    Indexer(data_dir, watch=False).run_once()
    assert db.seqs() == [1, SEQ_MAX - 1, SEQ_MAX, 2]
    assert db.rejected() == []
