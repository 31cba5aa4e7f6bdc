"""Bad lines of every kind are rejected with their reason; good ones around them are indexed."""

from __future__ import annotations

import io
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trek_audit.indexer import Indexer
from trek_audit.indexer.scanner import event_row
from trek_audit.indexer.segments import LineReader
from trek_audit.store.log_files import RAW_KEEP
from trek_audit.writer.line import KEYS, LineError, decode

from .logfiles import Reader, append, event, line

MAX_LINE = 2048


def test_the_reader_yields_complete_lines_and_holds_back_the_fragment() -> None:
    data = b"one\ntwo\n\nthree"
    reader = LineReader(io.BytesIO(data), 0, max_line=100, chunk=3)
    lines = [(item.offset, item.data, item.length) for item in reader]
    assert lines == [(0, b"one", 4), (4, b"two", 4), (8, b"", 1)]
    assert reader.fragment is not None
    assert (reader.fragment.offset, reader.fragment.data) == (9, b"three")


def test_the_reader_streams_an_over_long_line_keeping_its_head_and_true_length() -> None:
    long = b"x" * (3 * RAW_KEEP + 5)
    data = b"a\n" + long + b"\nb\n"
    reader = LineReader(io.BytesIO(data), 0, max_line=1000, chunk=4096)
    lines = list(reader)
    assert [(item.offset, item.length, item.too_long) for item in lines] == [
        (0, 2, False),
        (2, len(long) + 1, True),
        (3 + len(long), 2, False),
    ]
    assert lines[1].data == long[:RAW_KEEP]
    assert reader.fragment is None


def test_memory_stays_flat_on_a_file_with_a_20_mb_line_and_many_lines(
    data_dir: Path, log_dir: Path, db: Reader
) -> None:
    path = log_dir / "trek.log"
    append(path, range(1, 11))
    with open(path, "ab") as file:
        chunk = b"y" * (1 << 20)
        for _ in range(20):
            file.write(chunk)
        file.write(b"\n")
    append(path, range(11, 30_001))
    size = path.stat().st_size
    assert size > 28_000_000
    tracemalloc.start()
    try:
        Indexer(data_dir).run_once()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024, f"peak {peak} bytes while indexing {size} bytes"
    assert db.seqs() == list(range(1, 30_001))
    [rejected] = db.rejected()
    assert rejected["length"] == 20 * (1 << 20) + 1
    assert len(rejected["raw"]) == RAW_KEEP
    assert rejected["reason"] == "line longer than 65536 bytes"


def _mutated(key: str, value: Any) -> bytes:
    item = event(1)
    item[key] = value
    return orjson.dumps(item)


def _invalid(data: bytes) -> bool:
    try:
        event_row(decode(data))
    except LineError:
        return True
    return False


def _without(key: str) -> bytes:
    item = event(1)
    del item[key]
    return orjson.dumps(item)


_wrong_value = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=5),
    st.lists(st.integers(min_value=-1000, max_value=1000), max_size=2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)

bad_lines = st.one_of(
    st.builds(_without, st.sampled_from(KEYS)).map(lambda b: (b, "missing key")),
    st.builds(_mutated, st.sampled_from(KEYS), _wrong_value)
    .filter(_invalid)
    .map(lambda b: (b, None)),
    st.sampled_from([b"", b" ", b"\t", b"\r", b"  \t "]).map(lambda b: (b, "blank line")),
    st.binary(min_size=1, max_size=40)
    .filter(lambda b: b"\n" not in b)
    .map(lambda b: (b"\xff" + b, "not UTF-8")),
    st.text(max_size=40)
    .filter(lambda t: "\n" not in t and t.strip())
    .map(lambda t: (b"~" + t.encode(), "not JSON")),
    st.integers(min_value=2**63, max_value=2**64 - 1).map(
        lambda n: (orjson.dumps(event(n)), "seq larger than a 64-bit integer")
    ),
    st.integers(min_value=MAX_LINE, max_value=3 * MAX_LINE).map(
        lambda n: (b"z" * n, f"line longer than {MAX_LINE} bytes")
    ),
    st.just((b"[1, 2, 3]", "not a JSON object")),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.one_of(st.none(), bad_lines), min_size=1, max_size=25))
def test_bad_lines_of_every_kind_are_rejected_and_never_stop_the_indexer(
    items: list[tuple[bytes, str | None] | None],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        (data_dir / "logs").mkdir()
        content = bytearray()
        expected_rejects = []
        seq = 0
        for item in items:
            if item is None:
                seq += 1
                content += line(seq)
                continue
            raw, reason = item
            expected_rejects.append((len(content), len(raw) + 1, raw[:RAW_KEEP], reason))
            content += raw + b"\n"
        (data_dir / "logs" / "trek.log").write_bytes(bytes(content))
        report = Indexer(data_dir, max_line_bytes=MAX_LINE, watch=False).run_once()
        db = Reader(data_dir / "audit.db")
        try:
            assert db.seqs() == list(range(1, seq + 1))
            rejected = db.rejected()
            assert report.rejected == len(expected_rejects) == len(rejected)
            for row, (offset, length, raw, reason) in zip(rejected, expected_rejects, strict=True):
                assert (row["offset"], row["length"], row["file"]) == (offset, length, "trek.log")
                assert row["raw"] == raw
                if reason is not None:
                    assert row["reason"].startswith(reason), (row["reason"], reason)
            assert db.gaps() == []
        finally:
            db.close()
