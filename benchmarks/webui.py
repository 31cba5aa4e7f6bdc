"""Benchmark of the admin panel's JSON API on a large audit table, against TREK's OFFSET/COUNT(*).

Usage:
    python benchmarks/webui.py            # 1,000,000 rows, 10 s of load per server
    python benchmarks/webui.py --quick    # 100,000 rows, 3 s of load

The table is built once (executemany, indexes and full-text index rebuilt after the bulk
insert) and cached under benchmarks/out/. Then, in one run:

1. in-server time (the app's Server-Timing header, via the Flask test client) of the API's
   first page, a deep page (the cursor after 990,000 rows) and an action-filtered page,
   p50/p95 over many requests, next to the same pages done TREK's way (LIMIT/OFFSET plus
   COUNT(*) over the table on every request); and pages filtered by user (its username
   looked up in the full-text index) and by IP (an index of its own);
2. 32 concurrent keep-alive clients on loopback against gunicorn (the configuration of
   ``trek-audit serve``) for the load duration, each way: requests/s and errors;
3. facets (``AuditQuery.facet``) of each field: for a time range of 10% of the rows, a
   different range each cold run (no cache), and warm (the cache of the same filter, with
   1,000 rows added since it was filled, and with none); for an action of ~8% of the rows;
   and for every row, with the panel's 0.5 s time limit.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, request

from trek_audit.layout import DataDir
from trek_audit.store import (
    FACET_FIELDS,
    SCHEMA_VERSION,
    AuditQuery,
    Entry,
    Facet,
    FacetCache,
    Filter,
    open_database,
)
from trek_audit.store.facets import count_up_to
from trek_audit.webui import create_app
from trek_audit.webui.entries import api_entry
from trek_audit.webui.serve import PanelServer, default_workers, gunicorn_options

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
PASSWORD = "bench-password"  # noqa: S105 - a throwaway account in a throwaway data dir
FILTER_ACTION = "user.login_failed"
FILTER_USER = "user7"  # one of 2,000 users: about 460 events in a million
ACTIONS = [
    ("user.login", 30),
    ("trip.update", 25),
    ("mcp.tool_call", 12),
    ("user.login_failed", 8),
    ("trip.create", 8),
    ("oauth.token.issue", 6),
    ("oauth.token.refresh", 5),
    ("trip.delete", 2),
    ("admin.user_update", 1),
    ("backup.create", 1),
    ("settings.app_update", 1),
    ("user.register", 1),
]


# -- the table ---------------------------------------------------------------------------------


def build(data_dir: Path, rows: int) -> None:
    """Create <data_dir>/audit.db with ``rows`` events, quickly, unless it is already there."""
    data = DataDir(data_dir)
    db_path = data.audit_db
    done = data_dir / "complete"
    built = f"{rows} rows, schema {SCHEMA_VERSION}"
    if done.exists() and done.read_text() == built:
        return
    for path in (
        db_path,
        db_path.with_name(db_path.name + "-wal"),
        db_path.with_name(db_path.name + "-shm"),
        done,
        data.accounts_db,
    ):
        path.unlink(missing_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    conn = open_database(db_path)
    # Bulk load: drop the secondary indexes and the FTS trigger, insert, then rebuild them all.
    objects = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'audit_log' "
        "AND type IN ('index', 'trigger') AND sql IS NOT NULL"
    ).fetchall()
    names = [label for label, _ in ACTIONS]
    weights = [weight for _, weight in ACTIONS]
    rng = random.Random(7)
    start = 1_767_225_600  # 2026-01-01T00:00:00Z, one event every ~3 s from there

    def events() -> Any:
        for n in range(1, rows + 1):
            action = rng.choices(names, weights)[0]
            uid = rng.randint(1, 2000)
            anonymous = action == "user.login_failed"
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + n * 3))
            details = (
                {"username": f"user{uid}", "reason": "wrong password"}
                if anonymous
                else {
                    "trip": rng.randint(1, 50_000),
                    "title": rng.choice(["Lisbon", "Oslo", "Lima"]),
                }
            )
            yield (
                f"bench-{n:09d}",
                n,
                f"{ts}.{n % 1_000_000:06d}Z",
                action,
                None if anonymous else uid,
                None if anonymous else f"user{uid}",
                None if anonymous else f"user{uid}@example.com",
                f"trip/{rng.randint(1, 50_000)}",
                f"10.{uid % 256}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                json.dumps(details),
            )

    with conn:
        for kind, name, _ in objects:
            conn.execute(f'DROP {kind.upper()} "{name}"')
        conn.executemany(
            "INSERT INTO audit_log (event_id, seq, ts, action, user_id, username, email, resource, "
            "ip, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            events(),
        )
        for _, _, sql in objects:
            conn.execute(sql)
        conn.execute("INSERT INTO audit_log_fts (audit_log_fts) VALUES ('rebuild')")
        conn.execute(
            "UPDATE indexer_state SET value = ? WHERE name IN ('indexed', 'last_seq')", (rows,)
        )
        conn.execute("UPDATE indexer_state SET value = ? WHERE name = 'next_seq'", (rows + 1,))
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    done.write_text(built)
    print(f"built {rows:,} rows in {time.perf_counter() - started:.0f} s ({db_path})")


# -- TREK's way, for comparison ----------------------------------------------------------------

trek_way = Blueprint("trek_way", __name__)


@trek_way.get("/api/trek/audit")
def trek_audit() -> Any:
    """TREK's Audit tab: LIMIT/OFFSET pages and COUNT(*) over the table on every request."""
    page = int(request.args.get("page", "0"))
    action = request.args.get("action")
    # A kept connection per thread, as the panel has (TREK keeps one too).
    conn = getattr(_trek_local, "conn", None)
    if conn is None:
        conn = _trek_local.conn = sqlite3.connect(
            f"file:{DataDir(DATA_DIR).audit_db}?mode=ro", uri=True, check_same_thread=False
        )
    where, params = ("WHERE action = ?", [action]) if action else ("", [])
    rows = conn.execute(
        "SELECT id, event_id, seq, ts, action, user_id, username, email, resource, ip, details "  # noqa: S608
        f"FROM audit_log {where} ORDER BY id DESC LIMIT 100 OFFSET ?",
        [*params, page * 100],
    ).fetchall()
    total = conn.execute(f"SELECT COUNT(*) FROM audit_log {where}", params).fetchone()[0]  # noqa: S608
    body = {"entries": [api_entry(Entry(*row)) for row in rows], "total": total}
    return Response(orjson.dumps(body), mimetype="application/json")  # same serialiser as ours


_trek_local = threading.local()


DATA_DIR = OUT / "webui"


def bench_app() -> Flask:
    app = create_app({"TREK_DATA_DIR": str(DATA_DIR), "TREK_SECRET_KEY": "benchmark-only-key"})
    app.register_blueprint(trek_way)
    return app


# -- measuring -----------------------------------------------------------------------------------


def server_ms(response: Any) -> float:
    match = re.search(r"app;dur=([0-9.]+)", response.headers.get("Server-Timing", ""))
    assert match, "no Server-Timing header"
    return float(match.group(1))


def in_server(app: Flask, rows: int, repeat: int) -> dict[str, dict[str, float]]:
    client = app.test_client()
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)
    )
    assert token
    login = client.post(
        "/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert login.status_code == 302, login.status_code
    deep_cursor = rows - 990_000 * rows // 1_000_000 + 1  # the row id after 990,000 rows (99 %)
    deep_page = (rows - deep_cursor + 1) // 100
    cases: dict[str, str] = {
        "first page": "/api/admin/audit",
        "deep page": f"/api/admin/audit?before={deep_cursor}",
        "action page": f"/api/admin/audit?action={FILTER_ACTION}",
        "action page, cold count": f"/api/admin/audit?action={FILTER_ACTION}",
        "user page": f"/api/admin/audit?user={FILTER_USER}",
        "user page, cold count": f"/api/admin/audit?user={FILTER_USER}",
        "ip page": f"/api/admin/audit?ip={ip_of_a_row(rows // 2)}",
        "TREK first page": "/api/trek/audit?page=0",
        "TREK deep page": f"/api/trek/audit?page={deep_page}",
        "TREK action page": f"/api/trek/audit?action={FILTER_ACTION}",
    }
    # Round robin over the cases, so that other load on the machine falls on all of them alike.
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(repeat + 3):
        for name, url in cases.items():
            if name.startswith("TREK") and round_ % 4:
                continue  # the OFFSET way is slow: a quarter as many samples
            if name.endswith("cold count"):
                app.extensions["trek_audit"].counts.clear()  # count every matching row again
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            response.get_data()
            if round_ >= 3:  # the first rounds warm the caches
                times[name].append(server_ms(response))
            if name.endswith("cold count"):  # the clear emptied every filter's count: refill
                for other in cases.values():
                    if other.startswith("/api/admin/"):
                        client.get(other).get_data()
    results = {}
    for name, samples in times.items():
        samples.sort()
        results[name] = {
            "p50": statistics.median(samples),
            "p95": samples[int(len(samples) * 0.95) - 1],
        }
    # Both ways must agree on what they show.
    ours = client.get(f"/api/admin/audit?before={deep_cursor}").json
    theirs = client.get(f"/api/trek/audit?page={deep_page}").json
    assert ours is not None and theirs is not None, "a page that is not JSON"
    # Ours adds what TREK's has no notion of: whether a seal covers each entry, and its row id.
    shown = [
        {key: value for key, value in entry.items() if key not in ("sealed", "row")}
        for entry in ours["entries"]
    ]
    assert shown == theirs["entries"], "deep pages differ"
    assert ours["total"] == theirs["total"] == rows
    return results


def ip_of_a_row(row_id: int) -> str:
    """The IP address of one row: a value that few other rows have."""
    query = AuditQuery.open(DataDir(DATA_DIR).audit_db)
    try:
        ip = query.conn.execute("SELECT ip FROM audit_log WHERE id = ?", (row_id,)).fetchone()[0]
    finally:
        query.close()
    return str(ip)


def count_without_scan(data_dir: Path) -> str:
    query = AuditQuery.open(DataDir(data_dir).audit_db)
    try:
        query.count(Filter())  # the first statement on a connection reads the schema
        started = time.perf_counter()
        total = query.count(Filter())
        took = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        query.conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()
        scan = (time.perf_counter() - started) * 1000
    finally:
        query.close()
    return f"{total:,} from indexer_state in {took:.3f} ms (COUNT(*) scan: {scan:.1f} ms)"


# -- facets --------------------------------------------------------------------------------------

FACET_COLD_TARGET_MS = 50.0
FACET_ADDED_ROWS = 1_000


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50": statistics.median(samples),
        "p95": samples[max(int(len(samples) * 0.95) - 1, 0)],
    }


def _timed_facet(
    query: AuditQuery,
    flt: Filter,
    field: str,
    cache: FacetCache | None = None,
    time_limit: float = 30.0,
) -> tuple[float, Facet]:
    """A facet and the milliseconds it took."""
    started = time.perf_counter()
    facet = query.facet(flt, field, cache=cache, time_limit=time_limit)
    return (time.perf_counter() - started) * 1000, facet


def facet_timings(data_dir: Path, rows: int, runs: int) -> dict[str, Any]:
    """Time each field's facet: 10% time ranges cold and warm, an action, every row."""
    query = AuditQuery.open(DataDir(data_dir).audit_db)
    try:
        conn = query.conn
        top = int(conn.execute("SELECT max(id) FROM audit_log").fetchone()[0])
        tenth = rows // 10

        def ts(row_id: int) -> str:
            return str(
                conn.execute("SELECT ts FROM audit_log WHERE id = ?", (row_id,)).fetchone()[0]
            )

        query.count(Filter())  # the first statement on a connection reads the schema
        rng = random.Random(3)
        starts = [rng.randint(1, top - tenth) for _ in range(runs)]
        windows = [Filter(since=ts(start), until=ts(start + tenth)) for start in starts]
        # The newest 10%: the rows added after a cache was filled are in its range.
        newest = Filter(since=ts(top - tenth + 1))
        action = Filter(action=(FILTER_ACTION,))
        report: dict[str, Any] = {"cold": {}, "warm": {}, "warm_added": {}, "action": {}}
        report["matched"] = {
            "range": query.count(windows[0]),
            "action": query.count(action),
        }
        for field in FACET_FIELDS:
            cold = [_timed_facet(query, flt, field)[0] for flt in windows]
            report["cold"][field] = _percentiles(cold)
            warm, added = [], []
            for _ in range(runs):
                cache = FacetCache()
                query.facet(newest, field, cache=cache, time_limit=30)
                warm.append(_timed_facet(query, newest, field, cache)[0])
                # As if the newest 1,000 rows came after the cache was filled: the same
                # rows, no copy of the table to append to.
                cache.clear()
                older = count_up_to(conn, newest, field, limit=10, upto=top - FACET_ADDED_ROWS)
                cache.put(newest, field, older)
                took, facet = _timed_facet(query, newest, field, cache)
                assert facet == query.facet(newest, field, time_limit=30), "a warm facet differs"
                added.append(took)
            report["warm"][field] = _percentiles(warm)
            report["warm_added"][field] = _percentiles(added)
            report["action"][field] = _percentiles(
                [_timed_facet(query, action, field)[0] for _ in range(runs)]
            )
        together = []
        for flt in windows:
            started = time.perf_counter()
            facets = query.facets(flt, FACET_FIELDS, time_limit=30)
            together.append((time.perf_counter() - started) * 1000)
            assert facets == [query.facet(flt, field, time_limit=30) for field in FACET_FIELDS]
        report["together"] = _percentiles(together)
        everything = {}
        for field in FACET_FIELDS:
            took, facet = _timed_facet(query, Filter(), field, time_limit=0.5)
            everything[field] = (took, facet.timed_out)
        report["everything"] = everything
    finally:
        query.close()
    return report


def print_facets(rows: int, report: dict[str, Any]) -> None:
    cold, warm, added = report["cold"], report["warm"], report["warm_added"]
    print(
        f"facets at {rows:,} rows (AuditQuery.facet, in-process, ms; "
        f"10% range = {report['matched']['range']:,} rows, "
        f"action={FILTER_ACTION} = {report['matched']['action']:,} rows)"
    )
    print(
        f"{'':<12}{'cold p50':>10}{'cold p95':>10}{'warm p50':>10}"
        f"{'+1k p50':>10}{'action p50':>12}{'action p95':>12}"
    )
    for field in FACET_FIELDS:
        print(
            f"{field:<12}{cold[field]['p50']:>10.1f}{cold[field]['p95']:>10.1f}"
            f"{warm[field]['p50']:>10.2f}{added[field]['p50']:>10.2f}"
            f"{report['action'][field]['p50']:>12.1f}{report['action'][field]['p95']:>12.1f}"
        )
    print(
        "  warm: the newest 10% asked again with its cache, with no row added since (warm)\n"
        f"  and with {FACET_ADDED_ROWS:,} rows added since the cache was filled (+1k: the cache "
        f"filled as of {FACET_ADDED_ROWS:,} rows before the newest, the table unchanged)"
    )
    every = ", ".join(
        f"{field} {took:.0f} ms{' TIMED OUT' if timed_out else ''}"
        for field, (took, timed_out) in report["everything"].items()
    )
    print(f"  every row (0.5 s time limit): {every}")
    together = report["together"]
    print(
        f"  the four in one read (AuditQuery.facets, as the page asks): cold p50 "
        f"{together['p50']:.1f} ms, p95 {together['p95']:.1f} ms for the four"
    )
    worst_cold = max(cold[field]["p50"] for field in FACET_FIELDS)
    worst_warm = max(added[field]["p50"] for field in FACET_FIELDS)
    verdict = "PASS" if worst_cold <= FACET_COLD_TARGET_MS else "MISS"
    print(
        f"facets cold p50 <= {FACET_COLD_TARGET_MS:.0f} ms at 10%: {verdict} "
        f"(measured {worst_cold:.1f} ms, the slowest field)"
    )
    print(
        f"facets brought up to date after {FACET_ADDED_ROWS:,} new rows, p50: "
        f"{worst_warm:.2f} ms (the slowest field; no target)"
    )


# -- load ----------------------------------------------------------------------------------------


class Server:
    """gunicorn with the panel's serve settings, in a child process (this file with --serve)."""

    def __init__(self, workers: int, rows: int) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(self.port),
                "--workers",
                str(workers),
                "--rows",
                str(rows),
            ],
            stdout=subprocess.DEVNULL,
        )
        pause = threading.Event()
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                pause.wait(0.1)
        raise RuntimeError("the benchmark server did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


def serve_forever(port: int, workers: int) -> None:
    from trek_audit.settings import Settings

    class BenchServer(PanelServer):
        def load(self) -> Any:
            return bench_app()

    options = gunicorn_options("127.0.0.1", port, workers)
    BenchServer(Settings(data_dir=DATA_DIR), options).run()


def session_cookie(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    body = f"username=bench&password={PASSWORD}&csrf_token={token.group(1)}"
    conn.request(
        "POST",
        "/login",
        body=body,
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    assert response.status == 302, response.status
    cookie = response.getheader("Set-Cookie", "").split(";", 1)[0]
    conn.close()
    return cookie


def load(
    port: int, paths: Callable[[random.Random], str], clients: int, seconds: float
) -> dict[str, float]:
    cookie = session_cookie(port)
    stop = threading.Event()
    counts = [0] * clients
    errors = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def client(index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", paths(rng), headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors[index] += 1
                counts[index] += 1
                latencies[index].append(time.perf_counter() - started)
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(120)
    elapsed = time.perf_counter() - started
    every = sorted(x for chunk in latencies for x in chunk)
    return {
        "rps": sum(counts) / elapsed,
        "errors": sum(errors),
        "requests": sum(counts),
        "p50_ms": statistics.median(every) * 1000 if every else float("nan"),
        "p95_ms": every[int(len(every) * 0.95) - 1] * 1000 if every else float("nan"),
    }


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows and 3 s of load")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="gunicorn workers (default: what trek-audit serve uses)",
    )
    parser.add_argument("--repeat", type=int, default=200, help="requests per in-server case")
    parser.add_argument(
        "--facets-only", action="store_true", help="measure the facets alone (no server)"
    )
    parser.add_argument("--facet-runs", type=int, default=20, help="runs per facet case")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DATA_DIR
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    DATA_DIR = OUT / f"webui-{rows}"
    if args.serve is not None:
        serve_forever(args.serve, args.workers)
        return
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    build(DATA_DIR, rows)
    from trek_audit.webui.accounts import Accounts
    from trek_audit.webui.accounts_db import AccountsDB

    with AccountsDB(DataDir(DATA_DIR).accounts_db) as db:
        accounts = Accounts(db)
        if accounts.by_username("bench") is None:
            accounts.create("bench", PASSWORD, "admin")
    os.environ["TREK_DATA_DIR"] = str(DATA_DIR)  # for the --serve child

    # First, and printed at once: the facets need no server.
    print()
    print_facets(rows, facet_timings(DATA_DIR, rows, args.facet_runs))
    if args.facets_only:
        return

    app = bench_app()
    timings = in_server(app, rows, args.repeat)
    app.extensions["trek_audit"].close()

    mix_ours: list[Callable[[random.Random], str]] = [
        lambda r: "/api/admin/audit",
        lambda r: f"/api/admin/audit?before={r.randint(2, rows)}",
        lambda r: f"/api/admin/audit?action={FILTER_ACTION}",
    ]
    mix_trek: list[Callable[[random.Random], str]] = [
        lambda r: "/api/trek/audit?page=0",
        lambda r: f"/api/trek/audit?page={r.randint(0, rows // 100 - 1)}",
        lambda r: f"/api/trek/audit?action={FILTER_ACTION}",
    ]
    results = {}
    for name, mix in (("ours", mix_ours), ("TREK", mix_trek)):
        server = Server(args.workers, rows)
        try:
            results[name] = load(server.port, _mixed(mix), args.clients, seconds)
        finally:
            server.stop()

    print_report(rows, args, timings, results, seconds)


def _mixed(mix: list[Callable[[random.Random], str]]) -> Callable[[random.Random], str]:
    """A path maker that picks one of ``mix`` at random for each request."""
    return lambda r: r.choice(mix)(r)


def print_report(
    rows: int,
    args: argparse.Namespace,
    t: dict[str, dict[str, float]],
    results: dict[str, dict[str, float]],
    seconds: float,
) -> None:
    def line(label: str, ours: float, trek: float | None, target: str, ok: bool | None) -> None:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        theirs = f"{trek:>10.2f}" if trek is not None else f"{'':>10}"
        ratio = f"{trek / ours:>8.1f}x" if trek is not None and ours else f"{'':>9}"
        print(f"{label:<36}{ours:>9.2f}{theirs}{ratio}   {target:<9}{verdict}")

    deep_rows = 990_000 * rows // 1_000_000
    print()
    print(
        f"trek-audit panel benchmark: {rows:,} rows; Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'in-server p50, ms (Server-Timing)':<36}{'keyset':>9}{'OFFSET':>10}{'ratio':>9}   target"
    )
    line(
        "API first page",
        t["first page"]["p50"],
        t["TREK first page"]["p50"],
        "<= 10 ms",
        t["first page"]["p50"] <= 10,
    )
    line(
        f"API deep page (after {deep_rows:,} rows)",
        t["deep page"]["p50"],
        t["TREK deep page"]["p50"],
        "<= 10 ms",
        t["deep page"]["p50"] <= 10,
    )
    line(
        f"API page action={FILTER_ACTION}",
        t["action page"]["p50"],
        t["TREK action page"]["p50"],
        "<= 20 ms",
        t["action page"]["p50"] <= 20,
    )
    line(
        "  same, count not cached",
        t["action page, cold count"]["p50"],
        t["TREK action page"]["p50"],
        "<= 20 ms",
        t["action page, cold count"]["p50"] <= 20,
    )
    for label, name in (
        (f"API page user={FILTER_USER}", "user page"),
        ("  same, count not cached", "user page, cold count"),
        ("API page ip=<one row's>", "ip page"),
    ):
        line(label, t[name]["p50"], None, "<= 20 ms", t[name]["p50"] <= 20)
    deep = t["deep page"]["p50"] / t["first page"]["p50"]
    trek_deep = t["TREK deep page"]["p50"] / t["TREK first page"]["p50"]
    print(
        f"{'deep / first':<36}{deep:>9.2f}{trek_deep:>10.2f}{'':>9}   {'<= 1.5x':<9}"
        + ("met" if deep <= 1.5 else "MISSED")
    )
    p95 = " / ".join(f"{t[k]['p95']:.2f}" for k in ("first page", "deep page", "action page"))
    trek_p95 = " / ".join(
        f"{t['TREK ' + k]['p95']:.2f}" for k in ("first page", "deep page", "action page")
    )
    print(f"{'p95 first / deep / action, ms':<36}{p95}   (OFFSET: {trek_p95})")
    print(f"unfiltered total: {count_without_scan(DATA_DIR)}")
    ours, trek = results["ours"], results["TREK"]
    print(
        f"load: {args.clients} keep-alive clients on loopback, {seconds:.0f} s each, gunicorn "
        f"{args.workers} workers x 4 threads; a third each first / random-depth / action pages"
    )
    print(f"{'':<36}{'keyset':>9}{'OFFSET':>10}{'ratio':>9}")
    rps_ratio = ours["rps"] / max(trek["rps"], 1e-9)
    print(
        f"{'requests/s':<36}{ours['rps']:>9.0f}{trek['rps']:>10.0f}{rps_ratio:>8.1f}x   "
        f"{'>= 300':<9}" + ("met" if ours["rps"] >= 300 else "MISSED")
    )
    print(
        f"{'errors':<36}{ours['errors']:>9}{trek['errors']:>10}{'':>9}   {'0':<9}"
        + ("met" if ours["errors"] == 0 else "MISSED")
    )
    print(
        f"{'client latency p50 / p95, ms':<36}{ours['p50_ms']:>4.0f} /{ours['p95_ms']:>4.0f}"
        f"{trek['p50_ms']:>5.0f} /{trek['p95_ms']:>5.0f}"
    )
    print("ratio: OFFSET time / keyset time; for requests/s keyset / OFFSET")


if __name__ == "__main__":
    main()
