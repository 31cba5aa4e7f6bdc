"""Private syslog-ng instances running the configurations of deploy/shippers/, unpacked.

syslog-ng conflicts with rsyslog as a Debian package, so the tests run it from a tree made
with ``dpkg -x`` of syslog-ng-core and the libraries it needs (.ci/run makes it):
$TREK_SYSLOG_NG_ROOT, or /opt/trek-audit-ci/syslog-ng. Each instance has its own
configuration, pid file, persist file (its read positions), control socket and disk buffer
under the test's directory, and is stopped (killed if need be, through its pid file too) when
its context ends: no test leaves one running. The configurations are the deployed files
themselves, with their paths, host and port replaced (each replaced text must still be there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .e2e_support import wait_for
from .processes import alive
from .shippers_support import DEPLOYED_CENTRAL_HOST, DEPLOYED_DATA_DIR, deployed, listening

DEFAULT_ROOT = Path("/opt/trek-audit-ci/syslog-ng")
# What the deployed files name, replaced by each test's own.
DEPLOYED_PORT = "port(6514)"
DEPLOYED_HOST_OVERRIDE = '# host-override("app1")'
DEPLOYED_GROUP = '"trek-audit"'
DEPLOYED_SENDER_WORK_DIR = "/var/lib/trek-audit-sender"


@dataclass(frozen=True)
class SyslogNgTree:
    """An unpacked syslog-ng: its binary, where its libraries and modules are."""

    root: Path

    @property
    def binary(self) -> Path:
        return self.root / "usr" / "sbin" / "syslog-ng"

    @property
    def module_path(self) -> Path:
        """usr/lib/syslog-ng/<version>/, which holds libaffile.so and the other modules."""
        found = sorted(self.root.glob("usr/lib/syslog-ng/*/libaffile.so"))
        assert found, f"no syslog-ng modules under {self.root}/usr/lib/syslog-ng"
        return found[-1].parent

    @property
    def library_path(self) -> str:
        parts = ["usr/lib/syslog-ng", "usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"]
        parts += [str(path.relative_to(self.root)) for path in self.root.glob("usr/lib/*-gnu")]
        parts += [str(path.relative_to(self.root)) for path in self.root.glob("lib/*-gnu")]
        return os.pathsep.join(dict.fromkeys(str(self.root / part) for part in parts))

    def environment(self) -> dict[str, str]:
        return {**os.environ, "LD_LIBRARY_PATH": self.library_path}


def syslog_ng_tree() -> SyslogNgTree:
    """The unpacked syslog-ng to run; missing: the test fails in CI and is skipped elsewhere."""
    tree = SyslogNgTree(Path(os.environ.get("TREK_SYSLOG_NG_ROOT") or DEFAULT_ROOT))
    if tree.binary.is_file():
        return tree
    message = f"no unpacked syslog-ng at {tree.root} (.ci/run unpacks it; TREK_SYSLOG_NG_ROOT)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def sender_config(data_dir: Path, work_dir: Path, port: int, host: str) -> str:
    """An app host's syslog-ng: follows ``data_dir``/logs, forwards to 127.0.0.1:``port``."""
    return deployed(
        "syslog-ng-sender.conf",
        {
            DEPLOYED_SENDER_WORK_DIR: str(work_dir),
            DEPLOYED_DATA_DIR: str(data_dir),
            DEPLOYED_CENTRAL_HOST: "127.0.0.1",
            DEPLOYED_PORT: f"port({port})",
            DEPLOYED_HOST_OVERRIDE: f'host-override("{host}")',
        },
    )


def receiver_config(data_dir: Path, port: int, group: str) -> str:
    """The central syslog-ng: listens on ``port``, writes ``data_dir``/sources/<host>/trek.log."""
    return deployed(
        "syslog-ng-receiver.conf",
        {
            DEPLOYED_DATA_DIR: str(data_dir),
            DEPLOYED_PORT: f"port({port})",
            DEPLOYED_GROUP: f'"{group}"',
        },
    )


@dataclass
class SyslogNg:
    """One private syslog-ng: ``home`` holds its configuration, pid, persist file and output.

    ``listens``: the port it serves, waited for at start. The configuration's own working
    directory (the sender's disk buffer) is ``home``/work.
    """

    home: Path
    config: str
    listens: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def output(self) -> Path:
        return self.home / "syslog-ng.out"

    @property
    def pid_file(self) -> Path:
        return self.home / "syslog-ng.pid"

    def start(self) -> SyslogNg:
        tree = syslog_ng_tree()
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "work").mkdir(exist_ok=True)
        conf = self.home / "syslog-ng.conf"
        conf.write_text(self.config, encoding="utf-8")
        command = [
            str(tree.binary),
            f"--module-path={tree.module_path}",
            f"--cfgfile={conf}",
            f"--pidfile={self.pid_file}",
            f"--persist-file={self.home / 'syslog-ng.persist'}",
            f"--control={self.home / 'syslog-ng.ctl'}",
        ]
        check = subprocess.run(
            [*command, "--syntax-only"],
            env=tree.environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        self.pid_file.unlink(missing_ok=True)
        with self.output.open("ab") as out:
            # -F: in the foreground, no supervisor process; -e: its own messages to the output.
            self.process = subprocess.Popen(
                [*command, "--foreground", "--stderr"],
                env=tree.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        def up() -> bool:
            assert process.poll() is None, self.output.read_text(errors="replace")
            if self.listens is not None and not listening(self.listens):
                return False
            return self.pid_file.exists()

        try:
            wait_for(up, timeout=20)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM (syslog-ng saves its read positions), SIGKILL after 15 s; then whatever its
        pid file still names is killed too."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(self.pid_file.read_text(encoding="ascii").strip())
            if alive(pid) and str(self.home) in _command_line(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> SyslogNg:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _command_line(pid: int) -> str:
    """The command line of ``pid`` (empty if gone): a pid file may outlive its process."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


__all__ = [
    "SyslogNg",
    "SyslogNgTree",
    "receiver_config",
    "sender_config",
    "syslog_ng_tree",
]
