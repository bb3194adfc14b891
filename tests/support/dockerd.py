"""A Docker engine of the test's own, to stop and start at will: the shared engine of the
machine is never restarted. Its own socket, data root, exec root, pid file and containerd
namespaces; no bridge and no iptables rules, in a network namespace of its own (``unshare
--net``): a dockerd started with ``--bridge=none`` deletes any ``docker0`` it sees, and in the
host's namespace that is the shared engine's bridge. It touches nothing the shared engine owns."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.realparts import require, wait_for

SYSTEM_CONTAINERD = Path("/run/containerd/containerd.sock")


@dataclass
class OwnDockerd:
    """A dockerd the test owns; ``start`` and ``stop`` are a real engine restart."""

    root: Path
    name: str = field(default_factory=lambda: f"swtest-{secrets.token_hex(3)}")
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def argv(self) -> list[str]:
        config = self.root / "daemon.json"
        config.write_text("{}\n")  # never the machine's /etc/docker/daemon.json
        argv = [
            "unshare",
            "--net",
            "--",
            "dockerd",
            "--config-file",
            str(config),
            "--host",
            self.docker_host,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.root / "docker.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--log-level=warn",
            "--containerd-namespace",
            self.name,
            "--containerd-plugins-namespace",
            f"{self.name}-plugins",
        ]
        if SYSTEM_CONTAINERD.exists():
            argv += ["--containerd", str(SYSTEM_CONTAINERD)]
        return argv

    def answers(self) -> bool:
        return (
            subprocess.run(
                ["docker", "-H", self.docker_host, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )

    def start(self, timeout: float = 60) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        wait_for(self.answers, timeout, f"the test's own dockerd on {self.socket}")

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def own_dockerd(root: Path) -> Iterator[OwnDockerd]:
    """Start a dockerd of the test's own under ``root`` (a short path: its sockets live there)."""
    require(shutil.which("dockerd") is not None, "dockerd (apt package docker.io) is not installed")
    require(shutil.which("unshare") is not None, "unshare (apt package util-linux) is not installed")
    root.mkdir(parents=True, exist_ok=True)
    engine = OwnDockerd(root)
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(root / "exec", ignore_errors=True)
