"""The Node.js client: its tests under Node's runner, and its client IP rule against Python's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trek_audit.writer import client_ip

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / "clients" / "node"
# The trek-audit of the venv running these tests, not whichever one is first on PATH.
TREK_AUDIT = Path(sys.executable).parent / "trek-audit"
# Node's runner starts its test files in parallel; the whole run takes about 10 s here.
NODE_TIMEOUT_S = 240


@pytest.fixture
def node() -> str:
    """Node's path; without Node the tests skip, except in CI where Node must be there."""
    path = shutil.which("node")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed; CI must run the Node.js client's tests")
        pytest.skip("node is not installed")
    return path


def test_the_node_client_passes_its_tests_against_this_trek_audit(node: str) -> None:
    assert TREK_AUDIT.exists(), f"{TREK_AUDIT} is missing: install the project into the venv"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(NODE_CLIENT / "test")],
        cwd=NODE_CLIENT,
        env={**os.environ, "TREK_AUDIT_COMMAND": str(TREK_AUDIT)},
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"node --test failed (status {result.returncode}):\n{output}", pytrace=False)
    # The multi-process test's figures, for `pytest -s` and the benchmark notes.
    for line in output.splitlines():
        if "events/s" in line:
            print(line.strip())


TRUST_VALUES: list[object] = [None, "", "0", "false", "true", "1", "2", "3", 0, 1, 2, True, False]
HEADERS: list[str | None] = [
    None,
    "",
    "203.0.113.5",
    "198.51.100.1, 203.0.113.5",
    "198.51.100.1,203.0.113.5, 192.0.2.7",
    "forged, 198.51.100.1, 192.0.2.7",
    " 203.0.113.5 ",
    "203.0.113.5,,",
    "203.0.113.5:8080",
    "01.2.3.4",
    "1.2.3.04",
    "256.1.1.1",
    "1.2.3",
    "192.0.2.0",
    "2001:db8::1",
    "2001:DB8:0:0::1",
    "[2001:db8::1]",
    "2001:0db8:0000:0000:0000:0000:0000:0001",
    "2001:db8:0:0:1:0:0:1",
    "1:0:0:2:0:0:0:3",
    "::",
    "::1",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::ffff:1.2.3.4",
    "::1.2.3.4",
    "2001:db8::1.2.3.4",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "12345::1",
    "fe80::1%eth0",
    "FE80::1%Eth0",
    "fe80::1%",
    "1.2.3.4%eth0",
    "\t203.0.113.5\x1c",
    "<script>, 192.0.2.7",
]


def test_the_node_client_takes_the_same_client_ip_as_python(node: str) -> None:
    cases = [(trust, header) for trust in TRUST_VALUES for header in HEADERS]
    script = (
        f"const {{ clientIp }} = require({json.dumps(str(NODE_CLIENT))});"
        "const cases = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));"
        "const req = (h) => ({ headers: h === null ? {} : { 'x-forwarded-for': h },"
        " socket: { remoteAddress: '10.0.0.9' } });"
        "console.log(JSON.stringify(cases.map(([t, h]) => clientIp(req(h), t))));"
    )
    result = subprocess.run(
        [node, "-e", script],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    node_answers = json.loads(result.stdout)
    disagreements = [
        (trust, header, python, from_node)
        for (trust, header), from_node in zip(cases, node_answers, strict=True)
        if (python := client_ip("10.0.0.9", header, trust)) != from_node
    ]
    assert disagreements == []
