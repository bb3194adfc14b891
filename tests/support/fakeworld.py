"""A tiny simulated host for unit tests of the switch's decisions (``stackwarden.run``): one
service ``web`` that can run as a compose container, a Kubernetes Deployment and a host process,
a fake clock, and an executor that applies steps to it, fails the ones it is told to, and lets a
test change the world after a step or at an observation (an apiserver that dies, a supervisor that
restarts a process). The planner and the verdict are the real ones."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stackwarden.errors import RefusedError
from stackwarden.model import (
    KubeContext,
    KubeObservation,
    KubeWorkloadState,
    Listener,
    PodState,
    Profile,
    Runtime,
    RuntimeStatus,
    Snapshot,
)
from stackwarden.model.plan import (
    ComposeStop,
    ComposeUp,
    Plan,
    RestoreRestartPolicy,
    ScaleWorkload,
    StartContainer,
    StartProcess,
    Step,
    StepResult,
    StopContainer,
    StopProcess,
    Unchanged,
)
from stackwarden.observe import assemble_snapshot
from stackwarden.profiles import parse_profile
from stackwarden.run.executor import result_of
from tests.support.builders import HOST_CONTEXT, process, proxy_for
from tests.support.builders import container as make_container

PORT = 41234
PID = 4242
BOX = make_container("web", project="fakeproj", publish=(("127.0.0.1", PORT),))


def fake_profile(*, start_command: bool = False, settle_seconds: float = 3.0) -> Profile:
    """One service, ``web``, at home in every runtime."""
    host: dict[str, object] = {"executables": ["webd"], "grace_period_seconds": 5}
    if start_command:
        host["start_command"] = ["/usr/bin/webd", "--serve"]
    return parse_profile(
        {
            "name": "fake",
            "compose": {"project": "fakeproj", "files": ["/srv/fake/compose.yaml"]},
            "kubernetes": {"namespace": "fakens", "allowed_contexts": ["kind-*"]},
            "switch": {"settle_seconds": settle_seconds},
            "services": {
                "web": {"ports": [PORT], "kubernetes": {"name": "web", "replicas": 2}, "host": host},
            },
        },
        "<fake>",
    )


@dataclass
class World:
    """What runs where, what can be seen, and what goes wrong."""

    container: str | None = "exited"
    replicas: int = 2
    process: bool = False
    docker_up: bool = True
    kube_up: bool = True
    fail: dict[str, str] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)
    after_step: Callable[[Step, World], None] | None = None
    at_observe: Callable[[float, World], None] | None = None
    applied: list[str] = field(default_factory=list)
    observations: int = 0

    def snapshot(self) -> Snapshot:
        """The world as an observation would see it."""
        containers, listeners, processes = [], [], []
        if self.container is not None:
            running = self.container == "running"
            box = BOX.model_copy(update={"state": self.container, "published": BOX.published if running else ()})
            containers.append(box)
            if running:
                listener, proxy = proxy_for(box, "127.0.0.1", PORT, 900)
                listeners.append(listener)
                processes.append(proxy)
        if self.process:
            listeners.append(Listener(address="127.0.0.1", port=PORT, pid=PID))
            processes.append(process(PID, "webd"))
        workload = KubeWorkloadState(
            kind="Deployment",
            name="web",
            namespace="fakens",
            uid="uid-web",
            resource_version="1",
            generation=1,
            replicas=self.replicas,
            ready_replicas=self.replicas,
        )
        pods = tuple(
            PodState(
                name=f"web-{i}", namespace="fakens", uid=f"p{i}", phase="Running", labels={"app": "web"}, ready=True
            )
            for i in range(self.replicas)
        )
        context = KubeContext(name="kind-dev", server="https://127.0.0.1:6443", allowed=True, current=True)
        kube = KubeObservation(context=context, namespace="fakens", workloads=(workload,), pods=pods)
        return assemble_snapshot(
            taken_at=datetime.now(UTC),
            hostname="fake",
            profile="fake",
            runtimes=[
                RuntimeStatus(
                    runtime=Runtime.COMPOSE, reachable=self.docker_up, error=None if self.docker_up else "down"
                ),
                RuntimeStatus(runtime=Runtime.HOST, reachable=True),
                RuntimeStatus(
                    runtime=Runtime.KUBERNETES, reachable=self.kube_up, error=None if self.kube_up else "timed out"
                ),
            ],
            containers=tuple(containers) if self.docker_up else (),
            listeners=tuple(listeners),
            processes=tuple(processes),
            kubernetes=kube if self.kube_up else None,
            host_context=HOST_CONTEXT,
        )

    def change(self, step: Step) -> str:
        """What the step does to the world (the adapters' part)."""
        if step.id in self.refuse:
            raise RefusedError(f"{step.id}: refused")
        if step.id in self.fail:
            raise RuntimeError(self.fail[step.id])
        if isinstance(step, ScaleWorkload):
            if not self.kube_up:
                raise RuntimeError("kubernetes API did not answer")
            if self.replicas == step.replicas:
                return Unchanged("already")
            self.replicas = step.replicas
        elif isinstance(step, StartContainer | ComposeUp):
            if self.container == "running":
                return Unchanged("already running")
            self.container = "running"
        elif isinstance(step, StopContainer | ComposeStop):
            if self.container != "running":
                return Unchanged("already stopped")
            self.container = "exited"
        elif isinstance(step, StopProcess):
            self.process = False
        elif isinstance(step, StartProcess):
            self.process = True
        elif isinstance(step, RestoreRestartPolicy):
            return "restored"
        return "done"


class FakeExecutor:
    """Applies steps to a ``World`` on a fake clock; observing takes a second."""

    def __init__(self, world: World, profile: Profile) -> None:
        self.world = world
        self.profile = profile
        self.log = logging.getLogger("tests.fakeworld")
        self.run_id: str | None = None
        self.clock = 0.0
        self.crashed_ids: list[str] = []

    def observe(self) -> Snapshot:
        self.clock += 1.0
        self.world.observations += 1
        if self.world.at_observe is not None:
            self.world.at_observe(self.clock, self.world)
        return self.world.snapshot()

    def apply(
        self, steps: Sequence[Step], *, concurrent: bool, force: bool, recheck_generation: bool
    ) -> list[StepResult]:
        results = []
        for step in steps:
            started = datetime.now(UTC)
            outcome: object
            try:
                outcome = self.world.change(step)
                self.world.applied.append(step.id)
            except Exception as exc:
                outcome = exc
            results.append(result_of(step, outcome, started))
            if self.world.after_step is not None:
                self.world.after_step(step, self.world)
        return results

    def preflight(self, plan: Plan) -> list[str]:
        return []

    def crashed(self, run_ids: Sequence[str], reason: str) -> list[str]:
        self.crashed_ids += list(run_ids)
        return list(run_ids)

    def now(self) -> float:
        return self.clock

    def sleep(self, seconds: float) -> None:
        self.clock += seconds
