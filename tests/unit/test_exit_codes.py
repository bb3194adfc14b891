"""Exit codes survive restarts: Docker's ``die`` events and a pod's lastState are kept."""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client as k8s

from stackwarden.adapters.docker import deaths_from_events
from stackwarden.adapters.kubernetes import _pod
from stackwarden.model import ContainerDeath
from tests.support.builders import container


def _die(cid: str, code: str, nanos: int) -> dict[str, object]:
    return {
        "status": "die",
        "id": cid,
        "Type": "container",
        "Action": "die",
        "Actor": {"ID": cid, "Attributes": {"exitCode": code, "name": "x"}},
        "time": nanos // 10**9,
        "timeNano": nanos,
    }


def test_the_last_die_event_per_container_wins() -> None:
    events = [_die("a", "1", 2_000_000_000_000_000_000), _die("a", "101", 2_000_000_005_000_000_000)]
    events += [_die("b", "137", 2_000_000_001_000_000_000), {"Action": "start", "Actor": {"ID": "c"}}]
    deaths = deaths_from_events(events)
    assert deaths["a"].exit_code == 101 and deaths["b"].exit_code == 137 and "c" not in deaths
    assert deaths["a"].at == datetime.fromtimestamp(2_000_000_005, UTC)


def test_a_running_crash_loop_keeps_the_exit_code_of_its_last_death() -> None:
    running = container("backend", "running", restart_count=3).model_copy(update={"uptime_seconds": 2.0})
    assert running.is_crash_looping and running.recorded_exit_code is None
    died = running.model_copy(update={"last_death": ContainerDeath(exit_code=101, at=datetime.now(UTC))})
    assert died.recorded_exit_code == 101
    restarting = container("backend", "restarting", exit_code=1, restart_count=3)
    assert restarting.model_copy(update={"last_death": died.last_death}).recorded_exit_code == 1  # the engine's own


def test_pod_conversion_keeps_the_kubelets_reasons() -> None:
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="api-1", namespace="ns", uid="u1", labels={"app": "api"}),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="api", image="registry.example/api:9")]),
        status=k8s.V1PodStatus(
            phase="Pending",
            conditions=[
                k8s.V1PodCondition(type="PodScheduled", status="True"),
                k8s.V1PodCondition(type="Ready", status="False", reason="ContainersNotReady", message="x"),
            ],
            container_statuses=[
                k8s.V1ContainerStatus(
                    name="api",
                    image="registry.example/api:9",
                    image_id="",
                    ready=False,
                    restart_count=2,
                    state=k8s.V1ContainerState(
                        waiting=k8s.V1ContainerStateWaiting(
                            reason="CreateContainerConfigError",
                            message="couldn't find key DB_PASSWORD in Secret ns/api",
                        )
                    ),
                    last_state=k8s.V1ContainerState(
                        terminated=k8s.V1ContainerStateTerminated(exit_code=137, reason="OOMKilled")
                    ),
                )
            ],
        ),
    )
    state = _pod(pod)
    assert state.images == ("registry.example/api:9",)
    assert state.waiting_reason == "CreateContainerConfigError" and state.waiting_container == "api"
    assert state.waiting_message == "couldn't find key DB_PASSWORD in Secret ns/api"
    assert (state.last_exit_code, state.last_reason) == (137, "OOMKilled")
    assert state.condition("Ready") is not None and state.unschedulable is None
    assert (state.ready_containers, state.total_containers) == (0, 1)
