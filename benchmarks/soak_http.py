"""The soak's HTTP load on the panel: an admin, a viewer, an API token, anonymous requests and
a wrong token, each request with the statuses it must get.

Every answer is counted: ``served`` (the expected success), ``refused`` (an expected refusal:
401, 403, or the login redirect), ``unexpected`` (anything else, with examples), ``5xx``,
and ``unavailable`` (no connection: serve was down or restarting). /healthz's 503 is its
verdict "failing", counted apart (an indexer being restarted is one).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

LOGIN_REDIRECT = 302
NEWEST_EVENT = "/api/admin/audit?action=trip.update&limit=1"


@dataclass
class Client:
    """One identity on the panel: a session's cookies, or a bearer token, or nothing."""

    who: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    bearer: str | None = None

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if self.bearer is not None:
            headers["Authorization"] = f"Bearer {self.bearer}"
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";", 1)[0]
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def log_in(self, username: str, password: str) -> int:
        """POST the login form (with its CSRF token); the status (302 when logged in)."""
        self.cookies.clear()
        _, _, page = self.request("GET", "/login")
        match = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        if match is None:
            raise RuntimeError("the login page has no CSRF token")
        form = {"username": username, "password": password, "csrf_token": match[1].decode()}
        return self.request("POST", "/login", form)[0]


@dataclass(frozen=True)
class Probe:
    """One request and the statuses it may get."""

    who: str
    path: str
    expect: frozenset[int]
    refusal: bool = False  # an expected refusal rather than a success


@dataclass
class Tally:
    """What the load saw, shared by its threads (under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, key: str, example: str | None = None) -> None:
        with self.lock:
            self.counts[key] += 1
            if example is not None and len(self.examples) < 20:
                self.examples.append(example)


def probes(event_id: str | None, resource: str) -> list[Probe]:
    """The requests of one round, with what each must answer (event pages once an id is known)."""
    ok, page_refusal = frozenset({200}), frozenset({LOGIN_REDIRECT})
    api_refusal = frozenset({401})
    quoted = urllib.parse.quote(resource, safe="")
    filtered = f"action=trip.update&user=user7&ip=192.0.2.7&resource={quoted}"
    export = f"/admin/audit/export.csv?resource={quoted}"
    reads = [
        "/admin/audit",
        f"/admin/audit?{filtered}",
        "/admin/audit?q=alert&action!=user.login",
        "/admin/audit?ip=192.0.2.0/24&since=now-15m",
        "/admin/audit/chart.svg?action=trip.create",
        "/api/admin/audit?limit=50",
        f"/api/admin/audit?{filtered}",
        "/api/admin/audit?q=script",
        "/api/admin/audit/facets",
        "/api/admin/audit/facets?field=ip&action=trip.update",
        export,
        f"/admin/audit/export.ndjson?resource={quoted}",
    ]
    token_reads = [
        "/api/admin/audit?limit=50",
        f"/api/admin/audit?{filtered}",
        "/api/admin/audit/facets",
        export,
    ]
    if event_id is not None:
        reads += [f"/admin/audit/event/{event_id}", f"/api/admin/audit/event/{event_id}"]
        token_reads.append(f"/api/admin/audit/event/{event_id}")
    admin_pages = ("/admin/accounts", "/admin/tokens")
    found = [Probe(who, path, ok) for who in ("admin", "viewer") for path in reads]
    found += [Probe("admin", path, ok) for path in admin_pages]
    found += [Probe("viewer", path, frozenset({403}), refusal=True) for path in admin_pages]
    found += [Probe("token", path, ok) for path in token_reads]
    # A token reaches the API and the exports only; a wrong one is refused whatever cookie
    # comes with it.
    found += [
        Probe("token", path, api_refusal, refusal=True)
        for path in ("/admin/audit", "/admin/audit/chart.svg", *admin_pages)
    ]
    found += [
        Probe(who, path, api_refusal, refusal=True)
        for who in ("wrong-token", "revoked-token", "admin-wrong-token")
        for path in token_reads
    ]
    for path in [*reads, *admin_pages]:
        refusal = api_refusal if path.startswith("/api/") else page_refusal
        found.append(Probe("anonymous", path, refusal, refusal=True))
    found += [Probe("anonymous", "/metrics", api_refusal, refusal=True)]
    found += [Probe("metrics", "/metrics", ok), Probe("anonymous", "/healthz", ok)]
    return found


class Load:
    """Threads sending the probes in random order until stopped; ``paused`` holds them."""

    def __init__(self, clients: dict[str, Client], threads: int, rate: float) -> None:
        self.clients = clients
        self.threads = threads
        self.rate = rate  # requests per second per thread
        self.tally = Tally()
        self.stop = threading.Event()
        self.paused = threading.Event()
        self._workers: list[threading.Thread] = []
        self._event_id: str | None = None
        self._resource = "trip/1"

    def start(self) -> None:
        for number in range(self.threads):
            worker = threading.Thread(target=self._run, args=(number,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def close(self) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(60)

    def _run(self, number: int) -> None:
        chooser = random.Random(number)
        while not self.stop.is_set():
            self._refresh_target()
            round_ = probes(self._event_id, self._resource)
            chooser.shuffle(round_)
            for probe in round_:
                if self.stop.is_set():
                    return
                while self.paused.is_set() and not self.stop.is_set():
                    self.stop.wait(0.05)
                self.send(probe)
                self.stop.wait(1.0 / self.rate)

    def _refresh_target(self) -> None:
        """Take the newest event of the soak's writers for the event pages and exports."""
        try:
            status, _, body = self.clients["admin"].request("GET", NEWEST_EVENT)
        except OSError:
            return
        if status >= 500:
            self.tally.add("5xx", f"admin GET /api/admin/audit -> {status}")
        elif status == 200:
            entries: list[dict[str, Any]] = json.loads(body)["entries"]
            if entries:
                self._event_id = entries[0]["id"]
                self._resource = entries[0]["resource"] or "trip/1"

    def send(self, probe: Probe) -> None:
        tally = self.tally
        try:
            status, _, _ = self.clients[probe.who].request("GET", probe.path)
        except OSError:
            tally.add("unavailable")
            return
        label = f"{probe.who} GET {probe.path} -> {status}"
        if status in probe.expect:
            tally.add("refused" if probe.refusal else "served")
        elif status == 503 and probe.path == "/healthz":
            tally.add("healthz_failing")
        elif status >= 500:
            tally.add("5xx", label)
        else:
            tally.add("unexpected", label)
