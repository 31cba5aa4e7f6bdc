"""Start-up time of the ``trek-audit`` command, next to a bare interpreter in the same run.

``trek-audit record`` is called once per event by shell scripts and apps in other languages,
so its cost is mostly the interpreter's start plus what the command imports. Each command is
run many times, interleaved with ``python -c pass`` of the same interpreter (so load on a
shared machine hits both alike), and the median wall time of each is compared.

Target: ``trek-audit record`` and ``trek-audit --help`` each <= 4x ``python -c pass``.

    .venv/bin/python benchmarks/cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 4.0


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="runs of each command (default 40)")
    args = parser.parse_args()

    command = str(Path(sys.executable).with_name("trek-audit"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TREK_DATA_DIR": str(Path(tmp) / "data")}
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "trek-audit --help": [command, "--help"],
            "trek-audit record": [command, "record", "user.login", "--username", "alice"],
        }
        for argv in cases.values():  # warm the page cache and the .pyc files
            wall_time(argv, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                times[name].append(wall_time(argv, env))

    load = os.getloadavg()[0]
    print(
        f"trek-audit start-up benchmark: {args.runs} runs each, interleaved; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    base = statistics.median(times["python -c pass"])
    print(f"  {'command':<22} {'median ms':>10} {'best ms':>9} {'x python -c pass':>17}")
    failed = False
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"  {name:<22} {median * 1000:>10.1f} {min(samples) * 1000:>9.1f} "
            f"{median / base:>17.2f}"
        )
    for name in ("trek-audit record", "trek-audit --help"):
        ratio = statistics.median(times[name]) / base
        verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
        failed |= verdict == "MISS"
        print(
            f"target: {name} <= {TARGET_RATIO:.1f}x python -c pass: measured {ratio:.2f}x {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
