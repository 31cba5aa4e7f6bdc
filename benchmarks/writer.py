"""Benchmark of the writer: time per event against the floor and the usual log handlers.

Runs, on the same generated events:

1. the floor: ``orjson.dumps(event)`` plus ``os.write`` to a file opened with ``O_APPEND``;
2. ``logging.handlers.RotatingFileHandler`` with a JSON formatter (unsafe across processes);
3. ``concurrent_log_handler.ConcurrentRotatingFileHandler`` with the same formatter;
4. ``AuditWriter.record`` on the path the settings give (the C fast path when built, unless
   TREK_WRITER_PURE_PYTHON is set), and then on the pure-Python path for comparison;
5. the same with sealing on (a sealing key beside the log, the default interval of 60 s), on
   both paths, side by side with sealing off: the hash chain is kept either way, sealing adds
   the check before each line and the seals (the opening one here);
6. the hash chain's own cost: on each path, ``record`` without the chain, with it, and with
   it and sealing, each round in a forked child process. The C rows use two builds of
   writer/_fastappend.c made here with one compiler command (``make asan``'s, with the
   optimisation flags of Python's own build in place of the sanitizers): one as installed, one
   with TREK_BENCH_NO_CHAIN, which leaves the state's chain as it is. On the Python path the
   child replaces the hash function with one that returns the head unchanged. Without a C
   compiler only the Python path is measured.

Times are per event, the best of a few interleaved rounds, as wall time and as this process's CPU
time (user + system): on a shared machine the CPU time is the steadier figure.

Then 4 processes write at once with rotation every 1 MB; it prints the events per second
together and checks that every seq from the first to the last is in the kept files exactly once
(enough backups are kept that nothing is dropped during the check).

Usage: python benchmarks/writer.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import logging.handlers
import multiprocessing
import os
import random
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple, cast

import orjson
from concurrent_log_handler import ConcurrentRotatingFileHandler

import trek_audit.writer.appender as appender
from trek_audit.settings import Settings
from trek_audit.writer import ACTIONS, AuditWriter, decode
from trek_audit.writer.appender import FAST_PATH_BUILT
from trek_audit.writer.catalog import RESERVED_ACTIONS
from trek_audit.writer.seal_key import create_key_file

MAX_BYTES = 10 * 1024 * 1024
CONCURRENT_MAX_BYTES = 1024 * 1024
TARGET_FLOOR_RATIO = 2.0
TARGET_PEER_SPEEDUP = 3.0
# The chain and its seals may cost at most 20% more per event: sealing on against off, and the
# chain (with sealing and without) against no chain at all.
TARGET_CHAIN_RATIO = 1.20
FAST_PATH_SOURCE = Path(appender.__file__).parent / "_fastappend.c"


def generate_events(count: int, seed: int = 2026) -> list[dict[str, Any]]:
    """Realistic events: catalog actions, a user most of the time, an IP, small details."""
    rng = random.Random(seed)
    actions = sorted(set(ACTIONS) - RESERVED_ACTIONS)
    events = []
    for n in range(count):
        user = None
        if rng.random() < 0.9:
            uid = rng.randrange(1, 5000)
            user = {"id": uid, "username": f"user{uid}", "email": f"user{uid}@example.com"}
        details = None
        if rng.random() < 0.8:
            details = {
                "method": rng.choice(["password", "oidc", "mfa"]),
                "attempt": rng.randrange(1, 5),
                "trip": {"id": rng.randrange(1, 10**6), "title": f"Trip {n} to Lisbon"},
            }
        events.append(
            {
                "action": rng.choice(actions),
                "user": user,
                "resource": f"trip/{rng.randrange(1, 10**6)}" if rng.random() < 0.5 else None,
                "ip": f"203.0.113.{rng.randrange(1, 255)}",
                "details": details,
            }
        )
    return events


def full_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same events with v, id, seq and ts made in advance, for the contenders that need them."""
    with tempfile.TemporaryDirectory() as scratch, AuditWriter(scratch) as w:
        return [cast(dict[str, Any], w.record(**event)) for event in events]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(record.event).decode()  # type: ignore[attr-defined]


class Clock:
    """Wall time and this process's CPU time (user + system) of one run."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


Runner = Callable[[Path, list[dict[str, Any]]], tuple[float, float]]


def run_floor(directory: Path, events: list[dict[str, Any]]) -> tuple[float, float]:
    fd = os.open(directory / "trek.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    dumps, write = orjson.dumps, os.write
    option = orjson.OPT_APPEND_NEWLINE
    try:
        clock = Clock()
        for event in events:
            write(fd, dumps(event, option=option))
        return clock.stop()
    finally:
        os.close(fd)


def run_handler(handler: logging.Handler, events: list[dict[str, Any]]) -> tuple[float, float]:
    handler.setFormatter(JsonFormatter())
    logger = logging.Logger("bench")
    logger.addHandler(handler)
    info = logger.info
    try:
        clock = Clock()
        for event in events:
            info("", extra={"event": event})
        return clock.stop()
    finally:
        handler.close()


def run_rotating(directory: Path, events: list[dict[str, Any]]) -> tuple[float, float]:
    handler = logging.handlers.RotatingFileHandler(
        directory / "trek.log", maxBytes=MAX_BYTES, backupCount=4
    )
    return run_handler(handler, events)


def run_concurrent_handler(directory: Path, events: list[dict[str, Any]]) -> tuple[float, float]:
    handler = ConcurrentRotatingFileHandler(
        str(directory / "trek.log"), maxBytes=MAX_BYTES, backupCount=4
    )
    return run_handler(handler, events)


def audit_writer_runner(fast_path: bool, sealing: bool = False) -> Runner:
    """Time ``AuditWriter.record`` on the C fast path or on the pure-Python path, sealing or not."""

    def run_audit_writer(directory: Path, events: list[dict[str, Any]]) -> tuple[float, float]:
        key_file = directory / "seal.key"
        if sealing:
            create_key_file(key_file)
        with AuditWriter(
            directory, max_bytes=MAX_BYTES, backups=4, fast_path=fast_path, seal_key_file=key_file
        ) as w:
            if w.sealing != sealing:
                raise RuntimeError(f"the writer {'does not seal' if sealing else 'seals'}")
            record = w.record
            clock = Clock()
            for event in events:
                record(**event)
            return clock.stop()

    return run_audit_writer


# Applied in a child process before it runs a contender: which code ``record`` runs there.
Variant = Callable[[], None]


def as_installed() -> None:
    """The code of this install, unchanged."""


def _unchanged_head(head: bytes, line: bytes) -> bytes:
    return head


def python_without_hash() -> None:
    """The pure-Python path with a hash function that leaves the chain's head as it is."""
    appender.advance = _unchanged_head


def c_build(extension: Path, *, hash_chain: bool) -> Variant:
    """The C fast path from ``extension`` (a build of writer/_fastappend.c) in place of the
    installed one; without ``hash_chain``, the Python path's hash is left out too (for the first
    line, which resyncs)."""

    def use_build() -> None:
        spec = importlib.util.spec_from_file_location("_fastappend", extension)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {extension}")
        build = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(build)
        appender._fast_append = build.append
        appender._canonical_user = build.canonical_user
        appender._plain_details = build.plain_details
        if not hash_chain:
            python_without_hash()

    return use_build


def in_child(run: Runner, variant: Variant) -> Runner:
    """``run`` in a forked child process that first applies ``variant``; its times."""

    def run_in_child(directory: Path, events: list[dict[str, Any]]) -> tuple[float, float]:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_timed_child, args=(run, variant, directory, events, sender))
        child.start()
        sender.close()
        try:
            wall, cpu = cast(tuple[float, float], receiver.recv())
        except EOFError:
            raise RuntimeError(
                "a benchmark child process failed (its traceback is above)"
            ) from None
        finally:
            receiver.close()
            child.join()
        return wall, cpu

    return run_in_child


def _timed_child(
    run: Runner, variant: Variant, directory: Path, events: list[dict[str, Any]], sender: Connection
) -> None:
    variant()
    # Objects of its own, made before the clock starts: each of the parent's pages would be
    # copied at the first write to it (a reference count) while the clock runs.
    sender.send(run(directory, copy.deepcopy(events)))
    sender.close()


class Builds(NamedTuple):
    """Two builds of writer/_fastappend.c made with one command: with the hash, and without."""

    chain: Path
    no_chain: Path
    command: str


def build_fast_path(directory: Path) -> Builds | str:
    """The C fast path built into ``directory`` with and without the chain's hash; or why not.

    The command is ``make asan``'s (``$(CC) -shared -fPIC ... -lcrypto``), with the flags
    Python's own extensions are built with in place of the sanitizers.
    """
    compiler = shlex.split(os.environ.get("CC") or "cc")  # make's default $(CC)
    if not compiler or shutil.which(compiler[0]) is None:
        return f"no C compiler ({' '.join(compiler) or 'cc'} not found)"
    flags = [
        "-shared",
        *shlex.split(sysconfig.get_config_var("CCSHARED") or "-fPIC"),
        *shlex.split(sysconfig.get_config_var("CFLAGS") or "-O2"),
        f"-I{sysconfig.get_paths()['include']}",
    ]
    builds = Builds(directory / "chain.so", directory / "no-chain.so", shlex.join(compiler + flags))
    for output, defines in ((builds.chain, []), (builds.no_chain, ["-DTREK_BENCH_NO_CHAIN"])):
        command = [
            *compiler,
            *flags,
            *defines,
            str(FAST_PATH_SOURCE),
            "-lcrypto",
            "-o",
            str(output),
        ]
        try:
            built = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            return f"the C compiler did not run ({error})"
        if built.returncode != 0:
            reason = (built.stderr.strip().splitlines() or [f"exit status {built.returncode}"])[-1]
            return f"writer/_fastappend.c did not build ({reason})"
    return builds


def chain_cost_rows(builds: Builds | str) -> list[tuple[str, Runner]]:
    """The contenders that measure the chain, in threes per path: no chain, chain, chain and
    sealing. The C path's when ``builds`` are there (else it says why they are not)."""
    rows: list[tuple[str, Runner]] = []
    if isinstance(builds, Builds):
        with_hash = c_build(builds.chain, hash_chain=True)
        rows += [
            (
                "C fast path, no chain",
                in_child(audit_writer_runner(True), c_build(builds.no_chain, hash_chain=False)),
            ),
            ("C fast path, chain", in_child(audit_writer_runner(True), with_hash)),
            (
                "C fast path, chain + sealing",
                in_child(audit_writer_runner(True, sealing=True), with_hash),
            ),
        ]
    return rows + [
        ("pure Python, no chain", in_child(audit_writer_runner(False), python_without_hash)),
        ("pure Python, chain", in_child(audit_writer_runner(False), as_installed)),
        (
            "pure Python, chain + sealing",
            in_child(audit_writer_runner(False, sealing=True), as_installed),
        ),
    ]


def print_chain_cost(
    builds: Builds | str, names: list[str], results: list[tuple[float, float]]
) -> None:
    """The chain rows with their ratios against no chain on the same path, and the target."""
    print(
        "the hash chain's own cost per event, each round in a forked child "
        f"(target <= {TARGET_CHAIN_RATIO:.2f}x no chain, judged on CPU time):"
    )
    if isinstance(builds, Builds):
        print(f"  C rows: two builds made here: {builds.command} [-DTREK_BENCH_NO_CHAIN]")
    else:
        print(f"  C fast path: not measured: {builds}; the pure-Python path only")
    print(
        f"  {'':<30} {'wall us/event':>14} {'x no chain':>11} {'CPU us/event':>13} "
        f"{'x no chain':>11}"
    )
    for first in range(0, len(names), 3):
        base_wall, base_cpu = results[first]
        for name, (wall, cpu) in zip(
            names[first : first + 3], results[first : first + 3], strict=True
        ):
            ratio = cpu / base_cpu
            verdict = ""
            if name != names[first]:
                verdict = "PASS" if ratio <= TARGET_CHAIN_RATIO else "MISS"
            print(
                f"  {name:<30} {wall:14.2f} {wall / base_wall:11.2f} {cpu:13.2f} "
                f"{ratio:11.2f}  {verdict}".rstrip()
            )


def path_name(settings: Settings) -> str:
    if not FAST_PATH_BUILT:
        return "pure Python (the C extension is not built)"
    if settings.writer_pure_python:
        return "pure Python (TREK_WRITER_PURE_PYTHON is set)"
    return "C fast path (writer/_fastappend.c)"


def best_times(rounds: int, contenders: list[tuple[Runner, Any]]) -> list[tuple[float, float]]:
    """Best wall and CPU time per event in microseconds of each contender over a few rounds.

    The rounds interleave the contenders, each in a fresh directory, so that a burst of load from
    elsewhere on the machine hits them alike; the best round is the least disturbed one.
    """
    best = [(float("inf"), float("inf"))] * len(contenders)
    for _ in range(rounds):
        for index, (run, events) in enumerate(contenders):
            directory = Path(tempfile.mkdtemp(prefix="trek-bench-"))
            try:
                wall, cpu = run(directory, events)
            finally:
                shutil.rmtree(directory)
            scale = 1e6 / len(events)
            best[index] = (min(best[index][0], wall * scale), min(best[index][1], cpu * scale))
    return best


def _concurrent_worker(
    directory: str, events: list[dict[str, Any]], barrier: Any, backups: int, fast_path: bool
) -> None:
    with AuditWriter(
        directory, max_bytes=CONCURRENT_MAX_BYTES, backups=backups, fast_path=fast_path
    ) as w:
        record = w.record
        barrier.wait()
        for event in events:
            record(**event)


def run_concurrent(
    events: list[dict[str, Any]], processes: int, fast_path: bool
) -> tuple[float, int, str]:
    """Events per second of ``processes`` writers together, and the seq check's verdict."""
    directory = Path(tempfile.mkdtemp(prefix="trek-bench-mp-"))
    total = len(events) * processes
    approx_bytes = sum(len(orjson.dumps(e)) + 100 for e in events) * processes
    backups = approx_bytes // CONCURRENT_MAX_BYTES + 8  # keep everything for the check
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes + 1)
    workers = [
        context.Process(
            target=_concurrent_worker,
            args=(str(directory), events, barrier, backups, fast_path),
        )
        for _ in range(processes)
    ]
    try:
        for worker in workers:
            worker.start()
        barrier.wait()
        start = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - start
        if any(worker.exitcode != 0 for worker in workers):
            return total / elapsed, 0, "FAIL: a writer process failed"
        seen: list[int] = []
        files = sorted(directory.glob("trek.log*"))
        for path in files:
            with open(path, "rb") as file:
                seen.extend(decode(line)["seq"] for line in file)
        first, last = min(seen), max(seen)
        unique = set(seen)
        if len(seen) != len(unique):
            verdict = f"FAIL: {len(seen) - len(unique)} repeated seq"
        elif unique != set(range(first, last + 1)):
            verdict = f"FAIL: {last - first + 1 - len(unique)} seq missing"
        elif len(seen) != total:
            verdict = f"FAIL: {len(seen)} events kept of {total}"
        else:
            verdict = f"PASS: seq {first}..{last} each exactly once in {len(files)} files"
        return total / elapsed, len(files), verdict
    finally:
        shutil.rmtree(directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    args = parser.parse_args()
    count, rounds, per_process = (3000, 3, 5000) if args.quick else (20000, 5, 25000)

    settings = Settings.from_env()
    fast = FAST_PATH_BUILT and not settings.writer_pure_python
    events = generate_events(count)
    full = full_events(events)
    print(
        f"writer benchmark: {count} events, best of {rounds} rounds, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"AuditWriter path in this install: {path_name(settings)}")
    contenders: list[tuple[Runner, Any]] = [
        (run_floor, full),
        (run_rotating, full),
        (run_concurrent_handler, full),
        (audit_writer_runner(fast), events),
    ]
    names = [
        "floor: orjson.dumps + os.write (O_APPEND)",
        "logging RotatingFileHandler + JSON",
        "ConcurrentRotatingFileHandler + JSON",
        f"AuditWriter.record ({'C fast path' if fast else 'pure Python'})",
    ]
    if fast:
        contenders.append((audit_writer_runner(False), events))
        names.append("AuditWriter.record (pure Python, compared)")
    sealing_rows = len(contenders)
    paths = [True, False] if fast else [False]
    for path in paths:
        contenders.append((audit_writer_runner(path, sealing=True), events))
        names.append(f"AuditWriter.record sealing ({'C fast path' if path else 'pure Python'})")
    with tempfile.TemporaryDirectory(prefix="trek-bench-build-") as build_dir:
        builds = (
            build_fast_path(Path(build_dir))
            if FAST_PATH_BUILT
            else "the C extension is not built in this install"
        )
        chain_rows = chain_cost_rows(builds)
        results = best_times(rounds, contenders + [(runner, events) for _, runner in chain_rows])
    results, chain_results = results[: len(contenders)], results[len(contenders) :]
    print(f"  {'':<42} {'wall us/event':>14} {'x floor':>8} {'CPU us/event':>13} {'x floor':>8}")
    floor_wall, floor_cpu = results[0]
    for name, (wall, cpu) in zip(names, results, strict=True):
        print(
            f"  {name:<42} {wall:14.2f} {wall / floor_wall:8.2f} {cpu:13.2f} {cpu / floor_cpu:8.2f}"
        )
    # The targets are judged on the path this install uses.
    (peer_wall, peer_cpu), (audit_wall, audit_cpu) = results[2], results[3]
    for label, audit, floor, peer in (
        ("wall", audit_wall, floor_wall, peer_wall),
        ("CPU ", audit_cpu, floor_cpu, peer_cpu),
    ):
        ratio, speedup = audit / floor, peer / audit
        print(
            f"{label}: target AuditWriter <= {TARGET_FLOOR_RATIO:.1f}x floor: measured "
            f"{ratio:.2f}x {'PASS' if ratio <= TARGET_FLOOR_RATIO else 'MISS'};  "
            f">= {TARGET_PEER_SPEEDUP:.0f}x faster than concurrent-log-handler: measured "
            f"{speedup:.1f}x {'PASS' if speedup >= TARGET_PEER_SPEEDUP else 'MISS'}"
        )

    print(f"sealing on vs off, per event (target <= {TARGET_CHAIN_RATIO:.2f}x):")
    for offset, path in enumerate(paths):
        off = results[3 if path == fast else 4]
        on = results[sealing_rows + offset]
        wall_ratio, cpu_ratio = on[0] / off[0], on[1] / off[1]
        verdict = "PASS" if cpu_ratio <= TARGET_CHAIN_RATIO else "MISS"
        print(
            f"  {'C fast path' if path else 'pure Python':<12} off {off[0]:6.2f} us, on "
            f"{on[0]:6.2f} us wall ({wall_ratio:.2f}x); CPU {off[1]:6.2f} -> {on[1]:6.2f} us "
            f"({cpu_ratio:.2f}x) {verdict}"
        )
    print_chain_cost(builds, [name for name, _ in chain_rows], chain_results)

    rate, files, verdict = run_concurrent(generate_events(per_process, seed=7), 4, fast)
    print(
        f"4 processes at once, rotation every 1 MB: {4 * per_process} events, "
        f"{rate:,.0f} events/s together"
    )
    print(f"  seq check: {verdict}")
    return 0 if verdict.startswith("PASS") else 1


if __name__ == "__main__":
    sys.exit(main())
