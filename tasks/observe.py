"""Observation tasks, one per runtime; run concurrently by the audit flow."""

from __future__ import annotations

from prefect import task

from stackwarden.adapters.docker import DockerObservation, observe_docker
from stackwarden.adapters.host import HostObservation, observe_host
from stackwarden.adapters.kubernetes import KubeObservationResult, observe_kubernetes
from stackwarden.model.profile import KubernetesSpec
from tasks.retry import retry_on_transient


@task(
    name="observe-docker",
    task_run_name="observe-docker",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_transient,
)
def observe_docker_task(log_tail: int = 40) -> DockerObservation:
    """Containers (one list call; inspect and logs only for unhealthy ones) and networks."""
    return observe_docker(log_tail=log_tail)


@task(
    name="observe-host",
    task_run_name="observe-host-{ports}",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_on_transient,
)
def observe_host_task(ports: list[int], executables: list[str] | None = None) -> HostObservation:
    """Listening sockets on the profile's ports and the processes behind them."""
    return observe_host(frozenset(ports), frozenset(executables or ()))


@task(
    name="observe-kubernetes",
    task_run_name="observe-kubernetes-{spec.namespace}",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_transient,
)
def observe_kubernetes_task(spec: KubernetesSpec, log_tail: int = 40) -> KubeObservationResult:
    """Contexts, workloads, pods, services of the profile's namespace; previous logs of
    crash-looping pods only."""
    return observe_kubernetes(spec, log_tail=log_tail)
