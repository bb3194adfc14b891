"""A switch SIGKILLed at each step boundary (and once inside a stateful container's graceful stop,
after its restart policy was paused), then run again: the rerun repairs what the dead run left
half done before it plans, names the repair, and the host converges to the mode with every
restart policy as before. Real processes, containers and the real kube-apiserver.

The mini seed, switched to hybrid-guarded: ``db`` (stateful, compose) runs as a host process
while its container waits stopped; ``cache`` (stateful, kubernetes) runs as a container whose
image says SIGKILL under ``restart: always`` (so its graceful stop pauses the policy) while its
Deployment waits at 0 replicas. The plan: make (scale cache up), break (stop the db process,
stop the cache container, concurrently), start (start the db container).

The killed run is the run layer in a subprocess (no Prefect: what is under test is the journal
and the repair), killed from inside at an exact journal record; the rerun is in process."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from stackwarden.adapters.journal import read_interrupted
from stackwarden.model import Mode
from stackwarden.model.plan import PREVIOUS_REPLICAS, SwitchOutcome, SwitchStatus
from stackwarden.profiles import load_profile
from stackwarden.report.plan import render_outcome
from stackwarden.run.executor import LocalExecutor
from stackwarden.run.switch import Options, run
from tests.support.compose import Project, compose_project, tcp_service, unique_name
from tests.support.kube import cluster_ip_service, delete_namespace, deployment, new_namespace, pods_settled
from tests.support.realparts import REPO, free_ports, host_listener, listening

pytestmark = [pytest.mark.docker, pytest.mark.kube]

KILLED_RUN = """
import os, signal, sys
from stackwarden.adapters import docker, journal
kind, number, profile_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

write = journal.Journal._write
def write_then_maybe_die(self, record):
    write(self, record)
    if record.get("type") == kind and record.get("seq") == number:
        die()
journal.Journal._write = write_then_maybe_die

call = docker._call
def call_then_maybe_die(func, what, *args, **kwargs):
    out = call(func, what, *args, **kwargs)
    if kind == "paused" and what.startswith("pause restart policy"):
        die()
    return out
docker._call = call_then_maybe_die

from stackwarden.model import Mode
from stackwarden.profiles import load_profile
from stackwarden.run.executor import LocalExecutor
from stackwarden.run.switch import Options, run
profile = load_profile(profile_path)
run(profile, Mode.HYBRID_GUARDED, LocalExecutor(profile), apply=True, options=Options(deadline_seconds=30))
print("the run was not killed")
"""

# (record type, journal seq): the intent of a step is written right before it runs, its outcome
# right after; seq counts intents (1 scale cache, 2 stop db process, 3 stop cache container,
# 4 start db container)
KILL_POINTS = [
    ("intent", 1),  # before the first step
    ("outcome", 1),  # cache scaled up, nothing stopped yet
    ("intent", 2),  # before the break
    ("paused", 0),  # inside the cache container's graceful stop, its restart policy paused
    ("outcome", 3),  # after the break, before the db container starts: db has no owner
    ("intent", 4),  # the same, with the start's intent written
    ("outcome", 4),  # every step done, before verify
]


@dataclass
class MiniSeed:
    project: Project
    namespace: str
    profile_path: Path
    ports: dict[str, int]
    api: Any
    tmp: Path
    db: subprocess.Popen[str] | None = None
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def reset(self) -> None:
        """Back to the initial state: db on the host, its container stopped; cache in its
        container (restart always), its Deployment at 0 with the count to restore recorded."""
        self.project.compose("stop", "--timeout", "2", "db")
        if self.db is not None:
            self.db.poll()  # reap the one the switch stopped
        if not listening(self.ports["db"]):
            self.db = self.stack.enter_context(host_listener("swdb", "127.0.0.1", self.ports["db"]))
        cache = self.project.inspect("cache")["Id"]
        subprocess.run(["docker", "update", "--restart", "always", cache], check=True, capture_output=True)
        self.project.compose("start", "cache")
        k8s.AppsV1Api(self.api).patch_namespaced_deployment(
            "cache",
            self.namespace,
            {"metadata": {"annotations": {PREVIOUS_REPLICAS: "1"}}, "spec": {"replicas": 0}},
        )
        pods_settled(self.api, self.namespace, {"cache": (0, "Running")})

    def state(self) -> dict[str, Any]:
        db, cache = self.project.inspect("db"), self.project.inspect("cache")
        return {
            "db container": db["State"]["Running"],
            "db on the host": listening(self.ports["db"]) and self.db is not None and self.db.poll() is None,
            "cache container": cache["State"]["Running"],
            "cache restart policy": cache["HostConfig"]["RestartPolicy"]["Name"],
            "cache replicas": k8s.AppsV1Api(self.api).read_namespaced_deployment("cache", self.namespace).spec.replicas,
        }


@pytest.fixture
def mini_seed(tmp_path: Path, control_plane: Any, kubelet: Any) -> Iterator[MiniSeed]:
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swkill")
    ports = dict(zip(("db", "cache"), free_ports(2), strict=True))
    name = unique_name("swkill")
    services = {
        "db": tcp_service(5432, f"127.0.0.1:{ports['db']}:5432"),
        "cache": {
            **tcp_service(6379, f"127.0.0.1:{ports['cache']}:6379"),
            "restart": "always",
            "stop_signal": "SIGKILL",  # an image that asks for a SIGKILL: a stateful stop sends SIGTERM instead
        },
    }
    dep = deployment("cache", 0)
    dep.metadata.annotations = {PREVIOUS_REPLICAS: "1"}
    k8s.AppsV1Api(api).create_namespaced_deployment(ns, dep)
    k8s.CoreV1Api(api).create_namespaced_service(ns, cluster_ip_service("cache-service", "cache", 6379))
    try:
        with compose_project(tmp_path, name, services) as project:
            profile = tmp_path / "profile.yaml"
            profile.write_text(
                yaml.safe_dump(
                    {
                        "name": name,
                        "compose": {"project": name, "files": [str(project.file)]},
                        "kubernetes": {
                            "namespace": ns,
                            "kubeconfig": str(control_plane.admin_kubeconfig),
                            "allowed_contexts": ["stackwarden-test"],
                        },
                        "switch": {"settle_seconds": 1},
                        "services": {
                            "db": {
                                "ports": [ports["db"]],
                                "stateful": True,
                                "runtime": "compose",
                                "host": {"executables": ["swdb"], "stop_signal": "SIGINT", "grace_period_seconds": 5},
                            },
                            "cache": {
                                "ports": [ports["cache"]],
                                "stateful": True,
                                "runtime": "kubernetes",
                                "kubernetes": {"name": "cache", "service": "cache-service", "replicas": 1},
                            },
                        },
                    }
                )
            )
            seed = MiniSeed(project, ns, profile, ports, api, tmp_path)
            with seed.stack:
                seed.reset()
                yield seed
    finally:
        delete_namespace(api, ns)


CONVERGED = {
    "db container": True,
    "db on the host": False,
    "cache container": False,
    "cache restart policy": "always",
    "cache replicas": 1,
}


def _killed_run(seed: MiniSeed, kind: str, number: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, kind, str(number), str(seed.profile_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == -9, f"{kind} {number}: exit {result.returncode}\n{result.stdout}{result.stderr[-3000:]}"


def test_a_switch_killed_at_each_step_boundary_is_repaired_by_the_next(mini_seed: MiniSeed) -> None:
    profile = load_profile(mini_seed.profile_path)
    for kind, number in KILL_POINTS:
        mini_seed.reset()
        _killed_run(mini_seed, kind, number)
        assert len(read_interrupted(profile.name)) == 1
        if kind == "paused":  # the case: the policy stays "no" until something puts it back
            assert mini_seed.state()["cache restart policy"] == "no"
        if mini_seed.db is not None:
            mini_seed.db.poll()  # reap a stopped host db, as its parent would

        outcome = run(
            profile, Mode.HYBRID_GUARDED, LocalExecutor(profile), apply=True, options=Options(deadline_seconds=30)
        )
        assert isinstance(outcome, SwitchOutcome)
        where = f"killed at {kind} {number}"
        assert outcome.status is SwitchStatus.SWITCHED, f"{where}: {outcome.message}"
        assert mini_seed.state() == CONVERGED, where
        assert read_interrupted(profile.name) == [], f"{where}: the dead run's journal is still there"
        assert any(line.startswith(f"found: a switch of {profile.name} to hybrid-guarded") for line in outcome.repairs)
        assert "An interrupted switch was found and repaired before planning" in render_outcome(outcome)
        if kind == "paused":
            assert any("restart policy no -> always" in line for line in outcome.repairs), outcome.repairs
        if (kind, number) == ("outcome", 3):  # db had no owner, and none was being started: the note says so
            assert any("the new plan must start it" in line for line in outcome.repairs), outcome.repairs
