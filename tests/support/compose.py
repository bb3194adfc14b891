"""Real Compose projects for tests: written to a temp dir, brought up with Compose v2, and
always taken down (with their networks; volumes too, as they are the test's own)."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.realparts import IMAGE, run, wait_for

PANIC_LINE = (
    "thread 'actix-rt|system:0|arbiter:0' panicked at 'spawn_local called from outside of a "
    "task::LocalSet', src/services/secret_manager.rs:42:9"
)


@dataclass(frozen=True)
class Project:
    """A compose project under test."""

    name: str
    file: Path

    def compose(self, *args: str, check: bool = True) -> Any:
        return run(["docker", "compose", "-p", self.name, "-f", str(self.file), *args], check=check)

    def containers(self) -> list[dict[str, Any]]:
        out = run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label=com.docker.compose.project={self.name}",
                "--format",
                "{{json .}}",
            ]
        )
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def inspect(self, service: str) -> dict[str, Any]:
        """``docker inspect`` of the service's container; LookupError while there is none yet."""
        ids = self.compose("ps", "-a", "-q", service).stdout.split()
        if not ids:
            raise LookupError(f"{self.name}/{service} has no container (yet)")
        return json.loads(run(["docker", "inspect", ids[0]]).stdout)[0]  # type: ignore[no-any-return]


def unique_name(prefix: str) -> str:
    """A compose project name no other test run (or CI right after us) will reuse."""
    return f"{prefix}-{secrets.token_hex(3)}"


def panic_backend() -> dict[str, Any]:
    """The seed's backend: prints the spawn_local panic and exits 101, restarted forever."""
    script = f"echo 'Starting reconciliation backend'; echo \"{PANIC_LINE}\"; exit 101"
    return {"image": IMAGE, "command": ["sh", "-c", script], "restart": "always"}


def tcp_service(container_port: int, publish: str | None) -> dict[str, Any]:
    """A container listening on ``container_port`` (busybox httpd), optionally published."""
    # init: docker-init as PID 1 forwards SIGTERM, so the server stops on its signal like a real
    # database would (busybox httpd as PID 1 would ignore it and be SIGKILLed after the timeout)
    spec: dict[str, Any] = {"image": IMAGE, "command": ["httpd", "-f", "-p", str(container_port)], "init": True}
    if publish:
        spec["ports"] = [publish]
    return spec


@contextlib.contextmanager
def compose_project(
    tmp: Path, name: str, services: dict[str, Any], volumes: dict[str, Any] | None = None
) -> Iterator[Project]:
    """Write, start (``up -d``, failures of single services tolerated) and finally remove."""
    doc: dict[str, Any] = {"name": name, "services": services, "networks": {"default": {"name": f"{name}-network"}}}
    if volumes:
        doc["volumes"] = volumes
    file = tmp / f"{name}.compose.yaml"
    file.write_text(yaml.safe_dump(doc, sort_keys=False))
    project = Project(name=name, file=file)
    try:
        project.compose("up", "-d", check=False)
        yield project
    finally:
        project.compose("down", "--volumes", "--remove-orphans", "--timeout", "2", check=False)


def wait_restarts(project: Project, service: str, at_least: int = 1, timeout: float = 60) -> None:
    """Wait until ``service`` has crashed and been restarted ``at_least`` times."""

    def restarted_enough() -> bool:
        try:
            return int(project.inspect(service).get("RestartCount", 0)) >= at_least
        except LookupError:  # ``up -d`` on a loaded engine may not have created it yet
            return False

    wait_for(
        restarted_enough,
        timeout,
        f"{project.name}/{service} to restart {at_least} time(s)",
    )
