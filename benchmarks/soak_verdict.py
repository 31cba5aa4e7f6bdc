"""The soak's verdict: what the writers were told against audit.db, the indexer, verify and
/metrics, as the table ``soak.py`` prints, each check ``ok`` or ``FAIL``."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import orjson
from soak_checks import Ledger, Peaks, RotationWatch, SeenFile, seq_ranges
from soak_http import Tally
from soak_writers import GarbageLine, WriterSummary

from trek_audit.layout import DataDir
from trek_audit.store.schema import WAL_SIZE_LIMIT
from trek_audit.writer import LineError, decode

IDLE_CPU_LIMIT = 0.05  # of one core, for serve and all its children together


@dataclass
class Figures:
    """What happened during the run, for the table."""

    indexer_kills: int = 0
    indexer_kills_survived: int = 0
    serve_kills_survived: int = 0
    long_stops: int = 0
    login_in_window: int | None = None
    login_after_window: int | None = None
    long_stop_seqs: tuple[int, int] = (0, 0)  # the last seq written when serve stopped, restarted
    events: list[str] = field(default_factory=list)

    def note(self, started: float, text: str) -> None:
        line = f"[{time.monotonic() - started:6.1f} s] {text}"
        self.events.append(line)
        print(line, flush=True)


class AtRest(TypedDict):
    """What was measured once the load stopped and everything was indexed."""

    idle_cpu: float  # CPU seconds per second of serve's processes
    idle_seconds: float
    idle_pids: int
    wal_bytes: int
    status: dict[str, Any]  # trek-audit status --json
    verify: dict[str, Any]  # trek-audit verify --json
    metrics: str  # GET /metrics


@dataclass
class Outcome:
    """Everything the verdict reads."""

    out: Path  # the writers' acknowledgements and summaries
    data: DataDir
    backups: int
    figures: Figures
    tally: Tally
    watch: RotationWatch
    peaks: Peaks
    written_seq: int  # the last seq any writer used
    rest: AtRest


def metric(text: str, name: str) -> float:
    """The sum of a Prometheus metric's samples (every label set) in ``text``; NaN if absent."""
    values = [float(m[1]) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
    return sum(values) if values else float("nan")


class Verdict:
    """The table's rows: a figure, and for a check whether it holds."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def info(self, name: str, figure: object) -> None:
        self.rows.append((name, str(figure), ""))

    def check(self, name: str, figure: object, holds: bool) -> None:
        self.rows.append((name, str(figure), "ok" if holds else "FAIL"))

    @property
    def failed(self) -> list[str]:
        return [name for name, _, verdict in self.rows if verdict == "FAIL"]

    def table(self) -> str:
        width = max(len(name) for name, _, _ in self.rows)
        lines = [f"{'check':<{width}}  {'figure':<44}  verdict", "-" * (width + 55)]
        for name, figure, verdict in self.rows:
            lines.append(f"{name:<{width}}  {figure:<44}  {verdict}".rstrip())
        return "\n".join(lines)


@dataclass
class Acknowledged:
    """What the writers were told, read from their files."""

    summaries: list[WriterSummary]
    seqs: dict[str, int]  # event id -> seq
    errors: Counter[str]  # "writer:kind" -> count
    garbage: list[GarbageLine]

    @classmethod
    def read(cls, out: Path) -> Acknowledged:
        summaries = [json.loads(p.read_text()) for p in sorted(out.glob("summary-*.json"))]
        seqs: dict[str, int] = {}
        for path in out.glob("acks-*.jsonl"):
            for line in path.read_bytes().splitlines():
                event_id, seq = orjson.loads(line)
                seqs[event_id] = seq
        errors: Counter[str] = Counter()
        for summary in summaries:
            for kind, count in summary["errors"].items():
                errors[f"{summary['name']}:{kind}"] += count
        garbage = [g for s in summaries for g in s["garbage"]]
        return cls(summaries, seqs, errors, garbage)

    def count(self, *suffixes: str) -> int:
        return sum(n for key, n in self.errors.items() if key.endswith(suffixes))


def judge(outcome: Outcome) -> Verdict:
    """Every check of the run, in the table's order."""
    verdict = Verdict()
    acked = Acknowledged.read(outcome.out)
    ledger = Ledger.read(outcome.data.audit_db)
    _accounting(verdict, outcome, acked, ledger)
    _faults(verdict, outcome, acked, ledger)
    _http(verdict, outcome.tally)
    _resources(verdict, outcome)
    return verdict


def _dropped(watch: RotationWatch) -> list[SeenFile]:
    present = watch.present()
    return [seen for key, seen in watch.seen.items() if key not in present]


def _accounting(v: Verdict, outcome: Outcome, acked: Acknowledged, ledger: Ledger) -> None:
    rest, status = outcome.rest, outcome.rest["status"]
    dropped_seqs = {s for f in _dropped(outcome.watch) for s in range(f.first_seq, f.last_seq + 1)}
    top = max([outcome.written_seq, *ledger.seqs, *acked.seqs.values()])
    absent = [s for s in range(1, top + 1) if s not in ledger.seqs]
    unexplained = [s for s in absent if s not in dropped_seqs]
    real_gaps = seq_ranges([s for s in absent if s in dropped_seqs])
    in_gaps = {s for first, last in ledger.gaps for s in range(first, last + 1)}
    lost = [i for i, seq in acked.seqs.items() if i not in ledger.by_id]
    missing = [i for i in lost if acked.seqs[i] not in in_gaps]
    wrong_seq = [i for i, seq in acked.seqs.items() if ledger.by_id.get(i, seq) != seq]
    panel = sum(ledger.other_actions.values())
    v.info(
        "events acknowledged by writers", f"{len(acked.seqs):,} ({len(acked.summaries)} writers)"
    )
    v.info("rows indexed (local)", f"{ledger.rows:,} ({ledger.seals:,} seals, {panel} panel's)")
    v.check(
        "duplicates (event id, seq)",
        f"{ledger.duplicate_ids}, {ledger.duplicate_seqs}",
        ledger.duplicate_ids == 0 and ledger.duplicate_seqs == 0,
    )
    v.check(
        "hostile content altered on the way",
        f"{len(ledger.altered)} of {len(ledger.soak_rows):,} rows",
        not ledger.altered and bool(ledger.soak_rows),
    )
    v.check("acknowledged missing outside gaps", len(missing), not missing)
    v.check("acknowledged with another seq", len(wrong_seq), not wrong_seq)
    v.info("acknowledged lost in the gaps", len(lost) - len(missing))
    v.info("written, unacknowledged (in flight)", dict(ledger.unacked(set(acked.seqs))) or 0)
    v.check(
        "gaps reported / real",
        f"{ledger.gaps} / {real_gaps}",
        ledger.gaps == real_gaps and bool(real_gaps),
    )
    v.check("seqs missing outside dropped files", len(unexplained), not unexplained)
    stopped, restarted = outcome.figures.long_stop_seqs
    # The files dropped while serve was stopped hold lines written before it stopped too
    # (those the indexer had not read yet): such a gap ends after the stop, before the restart.
    expected = [g for g in real_gaps if stopped < g[1] <= restarted]
    v.check("a gap from the long stop", expected or "none", bool(expected))
    v.info(
        "other gaps (a restart outlasted the kept files)",
        [g for g in real_gaps if g not in expected] or 0,
    )
    v.info("incidents (status)", status["incidents"])
    size = sum(last - first + 1 for first, last in real_gaps)
    missing_metric = metric(rest["metrics"], "trek_audit_missing_events")
    v.check(
        "missing events: status / metrics / real",
        f"{status['missing']} / {missing_metric:.0f} / {size}",
        status["missing"] == missing_metric == size,
    )
    _malformed(v, outcome, acked, ledger, in_gaps)


def _malformed(
    v: Verdict, outcome: Outcome, acked: Acknowledged, ledger: Ledger, in_gaps: set[int]
) -> None:
    rest, status = outcome.rest, outcome.rest["status"]
    written = Counter(g["raw"].encode("latin-1") for g in acked.garbage)
    # A line whose next event was lost with a dropped file went with that file.
    gone = [g for g in acked.garbage if g["prev_seq"] + 1 in in_gaps]
    expected = written - Counter(g["raw"].encode("latin-1") for g in gone)
    rejected = sum(ledger.rejected_raw.values())
    v.check(
        "malformed rejected / written (kept)",
        f"{rejected} / {sum(expected.values())} (+{len(gone)} lost in gaps)",
        ledger.rejected_raw == expected and status["rejected"] == rejected,
    )
    v.info("malformed kinds written", dict(Counter(g["kind"] for g in acked.garbage)))
    on_disk = malformed_on_disk(outcome.data, outcome.backups)
    problems = Counter(p["kind"] for p in rest["verify"]["problems"])
    v.check(
        "verify: problems / malformed lines on disk",
        f"{dict(problems)} / {sum(on_disk.values())}",
        set(problems) <= {"not_an_event"}
        and problems["not_an_event"] == sum(on_disk.values())
        and not on_disk - written,
    )
    indexed = metric(rest["metrics"], "trek_audit_events_indexed_total")
    rejected_metric = metric(rest["metrics"], "trek_audit_rejected_lines_total")
    v.check(
        "metrics: indexed / rejected",
        f"{indexed:.0f} / {rejected_metric:.0f}",
        indexed == status["indexed"] == ledger.rows and rejected_metric == rejected,
    )


def _faults(v: Verdict, outcome: Outcome, acked: Acknowledged, ledger: Ledger) -> None:
    figures = outcome.figures
    v.check(
        "indexer kills survived",
        f"{figures.indexer_kills_survived} of {figures.indexer_kills}",
        figures.indexer_kills_survived == figures.indexer_kills >= 2,
    )
    v.check(
        "serve kills survived / long stops",
        f"{figures.serve_kills_survived} / {figures.long_stops}",
        figures.serve_kills_survived == 1 and figures.long_stops == 1,
    )
    dropped = len(_dropped(outcome.watch))
    v.info("rotations seen / files dropped", f"{len(outcome.watch.seen)} / {dropped}")
    v.check("seals indexed", ledger.seals, ledger.seals > 0)
    full = acked.errors["fsize:write_in_window"]
    others = acked.count(":write") + acked.count(":write_in_window") - full
    v.check("full disk: AuditWriteError (writer/others)", f"{full} / {others}", full > 0 == others)
    v.check(
        "full disk: login refused / after",
        f"{figures.login_in_window} / {figures.login_after_window}",
        figures.login_in_window == 503 and figures.login_after_window == 302,
    )
    too_long, refused = acked.count(":too_long"), acked.count(":invalid", ":too_long_accepted")
    v.check(
        "hostile events refused (too long / other)",
        f"{too_long} / {refused}",
        too_long > 0 and refused == 0,
    )


def _http(v: Verdict, tally: Tally) -> None:
    counts = tally.counts
    v.info("HTTP served / refused as expected", f"{counts['served']:,} / {counts['refused']:,}")
    v.info(
        "HTTP unavailable / healthz failing",
        f"{counts['unavailable']} / {counts['healthz_failing']}",
    )
    v.check("HTTP unexpected status", counts["unexpected"], counts["unexpected"] == 0)
    v.check("HTTP 5xx", counts["5xx"], counts["5xx"] == 0)


def _resources(v: Verdict, outcome: Outcome) -> None:
    rest = outcome.rest
    for label, kib in sorted(outcome.peaks.kib.items()):
        v.info(f"peak memory: {label}", f"{kib / 1024:.1f} MiB")
    v.check(
        "WAL size at the end",
        f"{rest['wal_bytes'] / 1024:.0f} KiB",
        rest["wal_bytes"] <= WAL_SIZE_LIMIT,
    )
    v.check(
        f"idle CPU over {rest['idle_seconds']:.0f} s ({rest['idle_pids']} processes)",
        f"{rest['idle_cpu'] * 100:.2f} % of a core",
        rest["idle_cpu"] <= IDLE_CPU_LIMIT,
    )


def malformed_on_disk(data: DataDir, backups: int) -> Counter[bytes]:
    """The lines of the log files still on disk that are not events (the garbage kept)."""
    found: Counter[bytes] = Counter()
    for number in range(backups + 1):
        path = data.logs.rotated(number)
        if path.exists():
            for line in path.read_bytes().split(b"\n")[:-1]:
                try:
                    decode(line)
                except LineError:
                    found[line] += 1
    return found
