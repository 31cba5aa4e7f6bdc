"""An investigation to find in the panel: a password-guessing attack hidden in ordinary traffic.

Ordinary use over the last six days (logins, trips, a few mistyped passwords from home and
office addresses), then 356 failed logins on alice from one address an hour and a half ago, her
account taken over from it (a login, MFA switched off, trips deleted) and some ordinary events
after that, up to twenty minutes ago: the last quarter of an hour holds only what the panel
records itself.

The writer stamps each event with the time it is written; the scenario is written in a blink, so
the writer's clock is replaced while it runs (on the pure-Python path, which reads that clock)
to spread the events over the days they tell of.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trek_audit.writer.appender as appender
from trek_audit.writer import AuditWriter

ATTACKER_IP = "185.220.101.7"
VICTIM = "alice"
ATTEMPTS = 356
ORDINARY = 3000
TAKEOVER_DELETES = 3
AFTERWARDS = 30

_PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_ADDRESSES = tuple(f"198.51.100.{n}" for n in range(10, 22)) + tuple(
    f"203.0.113.{n}" for n in range(40, 48)
)


@dataclass(frozen=True)
class Scenario:
    """What was written, for the tests to compare the panel with."""

    seeded: int  # every event written
    failed_ts: list[str]  # every user.login_failed's time (the attack's and the ordinary ones)
    attack_ts: list[str]  # the attack's failed logins, oldest first, in the stored form
    takeover_ts: str  # the attacker's successful login
    alice_events: int  # every event of alice (the attack's included)

    @property
    def failed_logins(self) -> int:
        return len(self.failed_ts)


@dataclass
class _Clock:
    """The writer's clock while the scenario is written: the time the next event happened."""

    at: datetime

    def time_ns(self) -> int:
        return int(self.at.timestamp() * 1_000_000) * 1000


@contextmanager
def _writer_reads(clock: _Clock) -> Iterator[None]:
    real = appender._time_ns
    appender._time_ns = clock.time_ns
    try:
        yield
    finally:
        appender._time_ns = real


def _user(name: str) -> dict[str, Any]:
    return {"id": _PEOPLE.index(name) + 1, "username": name, "email": f"{name}@example.org"}


def _ordinary(n: int) -> tuple[str, str, str | None, str]:
    """The n-th ordinary event: (action, who, resource, address)."""
    who = _PEOPLE[n * 7 % len(_PEOPLE)]
    address = _ADDRESSES[(n * 5 + _PEOPLE.index(who)) % len(_ADDRESSES)]
    if n % 50 == 7:
        return "user.login_failed", who, None, address
    if n % 10 == 0:
        return "user.login", who, None, address
    if n % 97 == 3:
        return "trip.delete", who, f"trip/{n}", address
    if n % 3 == 0:
        return "trip.create", who, f"trip/{n}", address
    return "trip.update", who, f"trip/{n % 400}", address


def seed_investigation(data_dir: Path, now: datetime | None = None) -> Scenario:
    """Write the scenario to ``data_dir``'s trek.log, ending twenty minutes before ``now``."""
    now = now or datetime.now(UTC)
    attack_start = now - timedelta(minutes=100)
    ordinary_start = now - timedelta(days=6)
    ordinary_step = (attack_start - timedelta(hours=1) - ordinary_start) / ORDINARY
    seeded = alice = 0
    failed_ts: list[str] = []
    clock = _Clock(ordinary_start)
    # Pure Python: the C fast path reads the system clock itself.
    with _writer_reads(clock), AuditWriter(data_dir / "logs", fast_path=False) as writer:

        def record(at: datetime, action: str, who: str, resource: str | None, ip: str) -> str:
            nonlocal seeded, alice
            clock.at = at
            details = {"title": f"Trip {resource}"} if resource else None
            event = writer.record(
                action, user=_user(who), resource=resource, ip=ip, details=details
            )
            seeded += 1
            alice += who == VICTIM
            if action == "user.login_failed":
                failed_ts.append(str(event["ts"]))
            return str(event["ts"])

        for n in range(ORDINARY):
            record(ordinary_start + ordinary_step * n, *_ordinary(n))
        attack_ts = [
            record(
                attack_start + timedelta(seconds=10 * n),
                "user.login_failed",
                VICTIM,
                None,
                ATTACKER_IP,
            )
            for n in range(ATTEMPTS)
        ]
        takeover = attack_start + timedelta(seconds=10 * ATTEMPTS + 60)
        takeover_ts = record(takeover, "user.login", VICTIM, None, ATTACKER_IP)
        record(takeover + timedelta(seconds=30), "user.mfa_disable", VICTIM, None, ATTACKER_IP)
        for n in range(TAKEOVER_DELETES):
            at = takeover + timedelta(seconds=60 + 20 * n)
            record(at, "trip.delete", VICTIM, f"trip/{9000 + n}", ATTACKER_IP)
        later = now - timedelta(minutes=30)
        for n in range(AFTERWARDS):
            action, who, resource, ip = _ordinary(ORDINARY + n)
            if who == VICTIM:  # alice's last event is the attacker's
                who = "bob"
            record(later + timedelta(seconds=20 * n), action, who, resource, ip)
    return Scenario(
        seeded=seeded,
        failed_ts=failed_ts,
        attack_ts=attack_ts,
        takeover_ts=takeover_ts,
        alice_events=alice,
    )
