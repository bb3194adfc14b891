"""Observation tasks, one per runtime; run concurrently by the audit flow.

An observation is only worth anything live: every task here has ``cache_policy=NO_CACHE`` and
``persist_result=False``, so no Prefect setting (``PREFECT_RESULTS_PERSIST_BY_DEFAULT=true``
turns on input-keyed caching) can hand verify an earlier run's view of the host.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from stackwarden.adapters.docker import DockerObservation, observe_docker
from stackwarden.adapters.host import HostObservation, observe_host
from stackwarden.adapters.kubernetes import KubeObservationResult, observe_kubernetes
from stackwarden.model.profile import KubernetesSpec, Timeouts
from tasks.retry import retry_on_transient


@task(
    name="observe-docker",
    task_run_name="observe-docker",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def observe_docker_task(log_tail: int = 40, timeouts: Timeouts | None = None) -> DockerObservation:
    """Containers (one list call; inspect and logs only for unhealthy ones) and networks."""
    return observe_docker(log_tail=log_tail, timeouts=timeouts)


@task(
    name="observe-host",
    task_run_name="observe-host-{ports}",
    retries=2,
    retry_delay_seconds=1,
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
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
    cache_policy=NO_CACHE,
    persist_result=False,
)
def observe_kubernetes_task(
    spec: KubernetesSpec, log_tail: int = 40, timeouts: Timeouts | None = None
) -> KubeObservationResult:
    """Contexts, workloads, pods, services of the profile's namespace; previous logs of
    crash-looping pods only."""
    return observe_kubernetes(spec, log_tail=log_tail, timeouts=timeouts)
