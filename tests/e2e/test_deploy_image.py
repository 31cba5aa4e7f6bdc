"""The real image: built from the Dockerfile on a base image made from Debian packages, and run.

No image registry is reachable from the test machines, so the base image is made here with
debootstrap (Debian's packages: Python 3.11 with venv, pip and headers, as the official slim
image has) and given to the Dockerfile as ``BASE_IMAGE``. It needs a running Docker daemon
(Debian's ``docker.io``) and debootstrap, which ``.ci/run`` does not set up, so it is marked
``image`` and left out of the default run: ``make test-image`` runs it (and fails where no
daemon answers). Making the base takes about two minutes, once; the build about one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .e2e_support import wait_for

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "trek-audit-test-base:bookworm"
BASE_PACKAGES = "python3,python3-venv,python3-pip,python3-dev,python-is-python3,ca-certificates"
# The trust store of this machine goes into the base, so that pip in the build trusts what
# the host trusts (a TLS-inspecting proxy's CA, for one).
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGE_UID = 1000


def docker(*arguments: str, timeout: float = 60, check: bool = True) -> str:
    result = subprocess.run(
        ["docker", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},  # Debian's docker.io has no buildx
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(arguments)}: {result.stderr[-2000:]}")
    return result.stdout


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


pytestmark = pytest.mark.image


@pytest.fixture(scope="module", autouse=True)
def docker_daemon() -> None:
    assert docker_answers(), "no Docker daemon answers here (Debian package docker.io)"


def image_exists(tag: str) -> bool:
    return bool(docker("images", "--quiet", tag).strip())


@pytest.fixture(scope="module")
def base_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Debian bookworm image with Python, made with debootstrap once and kept by its tag."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    assert shutil.which("debootstrap"), "debootstrap is not installed (Debian package debootstrap)"
    root = tmp_path_factory.mktemp("base") / "root"
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", root],
            capture_output=True,
            timeout=900,
            check=True,
        )
        shutil.copyfile(HOST_CA_BUNDLE, root / HOST_CA_BUNDLE.relative_to("/"))
        for cache in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
            shutil.rmtree(cache, ignore_errors=True)
        with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
            subprocess.run(
                [
                    "docker",
                    "import",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    f"ENV PIP_CERT={HOST_CA_BUNDLE}",
                    "-",
                    BASE_IMAGE,
                ],
                stdin=tar.stdout,
                capture_output=True,
                timeout=300,
                check=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return BASE_IMAGE


@pytest.fixture(scope="module")
def image(base_image: str) -> Iterator[str]:
    tag = f"trek-audit-test:{uuid.uuid4().hex[:12]}"
    dangling_before = dangling_images()
    # Host networking for the build: the daemon may run without a bridge (--bridge=none).
    docker(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "--tag",
        tag,
        str(ROOT),
        timeout=900,
    )
    try:
        yield tag
    finally:
        docker("rmi", "--force", tag, check=False)
        # The build stage stays behind as an untagged image: remove the ones this build made.
        for leftover in dangling_images() - dangling_before:
            docker("rmi", "--force", leftover, check=False)


def dangling_images() -> set[str]:
    return set(docker("images", "--quiet", "--filter", "dangling=true").split())


def health_of(container: str) -> str:
    state = json.loads(docker("inspect", "--format", "{{json .State}}", container))
    assert state["Running"], docker("logs", container, check=False)
    status: str = state["Health"]["Status"]
    return status


def test_the_image_runs_as_its_user_reports_healthy_and_stops_cleanly(
    image: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.chown(data_dir, IMAGE_UID, IMAGE_UID)
    container = f"trek-audit-test-{uuid.uuid4().hex[:12]}"
    # No network at all: the HEALTHCHECK runs inside the container, on its loopback.
    docker(
        "run",
        "--detach",
        "--name",
        container,
        "--network",
        "none",
        "--env",
        "TREK_ADMIN_PASSWORD=container-admin-password",
        "--volume",
        f"{data_dir}:/data",
        image,
    )
    try:
        wait_for(lambda: health_of(container) == "healthy", timeout=150, interval=1)
        assert docker("exec", container, "id", "-u").strip() == str(IMAGE_UID)
        docker("exec", container, "trek-audit", "record", "trip.create", "--username", "alice")
        wait_for(
            lambda: '"indexed": 1' in docker("exec", container, "trek-audit", "status", "--json")
        )
        docker("stop", "--time", "30", container, timeout=60)
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container))
        assert state["ExitCode"] == 0, docker("logs", container, check=False)
    finally:
        docker("rm", "--force", container, check=False)
    owners = {path.stat().st_uid for path in [data_dir, *data_dir.rglob("*")]}
    assert owners == {IMAGE_UID}
    assert (data_dir / "logs" / "trek.log").stat().st_mode & 0o777 == 0o640
