"""The deployment files: the Dockerfile's start and health commands, compose.yaml, systemd units.

No image registry is reachable from the test machines, so no base image can be pulled: the
container's start command (CMD) and HEALTHCHECK command are taken from the Dockerfile and run
here, outside a container, against a real ``serve`` on a free loopback port.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import click
import pytest

from trek_audit.cli import main

from .e2e_support import ADMIN_PASSWORD, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED_COMMAND = "/opt/trek-audit/bin/trek-audit"
# The trek-audit of the environment running the tests (the image has its own on PATH).
TREK_AUDIT = str(Path(sys.executable).with_name("trek-audit"))


# -- the Dockerfile ---------------------------------------------------------------------------


class Instruction(NamedTuple):
    keyword: str
    arguments: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments left out."""
    instructions: list[Instruction] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def stages() -> list[list[Instruction]]:
    """The build stages, each from its FROM on; what comes before the first FROM is left out."""
    found: list[list[Instruction]] = []
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def last(stage: list[Instruction], keyword: str) -> str:
    matches = [i.arguments for i in stage if i.keyword == keyword]
    assert matches, f"the final stage has no {keyword}"
    return matches[-1]


def start_command() -> list[str]:
    command: list[str] = json.loads(last(stages()[-1], "CMD"))
    return command


def health_command() -> list[str]:
    """The HEALTHCHECK's command (exec form), its options left out."""
    arguments = last(stages()[-1], "HEALTHCHECK")
    options, _, command = arguments.partition("CMD ")
    assert all(option.startswith("--") for option in options.split()), options
    parsed: list[str] = json.loads(command)
    return parsed


def test_the_base_image_is_a_build_argument_defaulting_to_the_official_slim_python() -> None:
    before_first_from = dockerfile()[: dockerfile().index(stages()[0][0])]
    assert Instruction("ARG", "BASE_IMAGE=python:3.11-slim") in before_first_from
    for stage in stages():
        assert stage[0].arguments.split()[0] == "${BASE_IMAGE}"


def test_the_image_runs_as_a_user_of_its_own_with_data_in_a_volume() -> None:
    final = stages()[-1]
    user = last(final, "USER").split(":")[0]
    assert user not in ("root", "0")
    assert json.loads(last(final, "VOLUME")) == ["/data"]
    assert "TREK_DATA_DIR=/data" in last(final, "ENV").split()
    assert last(final, "EXPOSE") == "5000"


def test_the_container_serves_the_panel_on_every_interface_from_the_volume() -> None:
    in_the_container = "0.0.0.0"  # noqa: S104 - the container's address; Docker maps the port
    assert start_command() == [
        "trek-audit",
        "serve",
        "--host",
        in_the_container,
        "--data-dir",
        "/data",
    ]


def test_the_health_check_asks_healthz_with_python_alone() -> None:
    """The slim images have neither curl nor wget."""
    command = health_command()
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:5000/healthz" in command[2]


def test_the_image_holds_every_part_of_the_package() -> None:
    build = stages()[0]
    copied = {
        source.rstrip("/")
        for i in build
        if i.keyword == "COPY"
        for source in i.arguments.split()[:-1]  # the last word is the destination
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert folders | {"pyproject.toml", "setup.py", "README.md"} <= copied
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for name in copied:
        assert f"!{name}" in ignored or f"!{name}/" in ignored, f".dockerignore leaves out {name}"


# -- the start and health commands, run here ----------------------------------------------------


def run_health_check(port: int) -> subprocess.CompletedProcess[str]:
    command = health_command()
    program = command[2].replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def container_command(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """The Dockerfile's CMD, run here: /data is a temporary directory, on a free loopback port."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    replacements = {
        "trek-audit": TREK_AUDIT,
        "0.0.0.0": "127.0.0.1",  # noqa: S104 - replaced: here it listens on loopback only
        "/data": str(data_dir),
    }
    command = [replacements.get(word, word) for word in start_command()]
    output = tmp_path / "serve.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--workers", "1"],
            env={
                "PATH": str(Path(TREK_AUDIT).parent) + ":/usr/bin:/bin",
                "TREK_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "PYTHONUNBUFFERED": "1",
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, port, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_health_check_passes_on_the_started_container_command_and_fails_once_it_stops(
    container_command: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    process, port, output = container_command

    def healthy() -> bool:
        assert process.poll() is None, output.read_text()
        return run_health_check(port).returncode == 0

    wait_for(healthy, timeout=60, interval=0.5)
    process.send_signal(signal.SIGTERM)  # what `docker stop` sends
    process.wait(30)
    assert run_health_check(port).returncode != 0


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = json.dumps({"status": "failing" if self.status == 503 else "degraded"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        pass


@pytest.mark.parametrize(
    ("status", "healthy"), [(200, True), (503, False)], ids=["degraded-200", "failing-503"]
)
def test_the_health_check_follows_the_status_code_of_healthz(status: int, healthy: bool) -> None:
    handler = type("Probe", (_Probe,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="healthz-stub")
    thread.start()
    try:
        result = run_health_check(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert (result.returncode == 0) is healthy, result.stderr


# -- compose.yaml --------------------------------------------------------------------------------


def compose_services() -> dict[str, list[str]]:
    """The lines of each service of compose.yaml (its two-space-indented keys under services)."""
    services: dict[str, list[str]] = {}
    current: list[str] | None = None
    in_services = False
    for line in (ROOT / "compose.yaml").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            in_services = line.rstrip() == "services:"
            current = None
        elif in_services and re.fullmatch(r"  [a-z0-9_-]+:", line.rstrip()):
            current = services.setdefault(line.strip()[:-1], [])
        elif current is not None:
            current.append(line.strip())
    return services


def test_compose_runs_the_image_beside_trek_sharing_its_data_directory() -> None:
    services = compose_services()
    assert set(services) == {"trek", "trek-audit"}
    trek = [line for line in services["trek"] if line.startswith("- ./data:")]
    audit = [line for line in services["trek-audit"] if line.startswith("- ./data:")]
    assert trek == ["- ./data:/app/data"]
    assert audit == ["- ./data:/data"]
    assert "context: ." in services["trek-audit"]
    assert "- TREK_DATA_DIR=/data" in services["trek-audit"]


# -- the systemd units -----------------------------------------------------------------------------


def unit(name: str) -> dict[str, list[str]]:
    """A unit file's directives, ``Section.Key`` -> every value given (they may repeat)."""
    directives: dict[str, list[str]] = {}
    section = ""
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        directives.setdefault(f"{section}.{key}", []).append(value)
    return directives


SERVICES = {"trek-audit.service": "serve", "trek-audit-index.service": "index"}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_unit_is_hardened_and_writes_only_its_data_directory(name: str) -> None:
    directives = unit(name)
    environment = dict(value.partition("=")[::2] for value in directives["Service.Environment"])
    data_dir = environment["TREK_DATA_DIR"]
    assert directives["Service.ReadWritePaths"] == [data_dir]
    assert directives["Service.NoNewPrivileges"] == ["yes"]
    assert directives["Service.ProtectSystem"] == ["strict"]
    assert directives["Service.PrivateTmp"] == ["yes"]
    assert directives["Service.User"] == ["trek-audit"]
    assert directives["Service.CapabilityBoundingSet"] == [""]
    sysusers = (UNITS / "trek-audit.sysusers.conf").read_text(encoding="utf-8")
    assert re.search(rf"^u trek-audit - \"[^\"]+\" {re.escape(data_dir)}$", sysusers, re.M)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_units_command_line_is_one_the_cli_accepts(name: str) -> None:
    [exec_start] = unit(name)["Service.ExecStart"]
    program, command, *arguments = shlex.split(exec_start)
    assert program == INSTALLED_COMMAND
    assert command == SERVICES[name]
    subcommand = main.get_command(click.Context(main), command)
    assert subcommand is not None
    subcommand.make_context(command, arguments)  # raises on an unknown option or bad value


@pytest.fixture
def units_for_this_machine(tmp_path: Path) -> list[Path]:
    """The units, with ExecStart pointing at this environment's trek-audit (verify checks it)."""
    copies = []
    for name in sorted(SERVICES):
        copy = tmp_path / name
        text = (UNITS / name).read_text(encoding="utf-8")
        copy.write_text(text.replace(INSTALLED_COMMAND, TREK_AUDIT), encoding="utf-8")
        copies.append(copy)
    return copies


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here"
)


@needs_systemd_analyze
def test_systemd_analyze_verifies_the_units(units_for_this_machine: list[Path]) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units_for_this_machine)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    mentioned = [line for line in result.stderr.splitlines() if "trek-audit" in line]
    assert mentioned == []


@needs_systemd_analyze
def test_systemd_rates_the_units_exposure_low(units_for_this_machine: list[Path]) -> None:
    """``systemd-analyze security`` scores 0 (locked down) to 10 (exposed); OK is below 4."""
    for copy in units_for_this_machine:
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(copy)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if "--offline" in result.stderr and "unrecognized" in result.stderr:
            pytest.skip("this systemd-analyze cannot rate a unit file offline (systemd < 250)")
        assert result.returncode == 0, f"{copy.name}: {result.stdout[-300:]}"
