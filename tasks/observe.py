"""Observation tasks, one per runtime; run concurrently by the audit flow.

Thin wrappers over ``stackwarden.pipeline``: the same steps the CLI runs in process, with the
same retry table. An observation is only worth anything live: every task here has
``cache_policy=NO_CACHE`` and ``persist_result=False``, so no Prefect setting
(``PREFECT_RESULTS_PERSIST_BY_DEFAULT=true`` turns on input-keyed caching) can hand verify an
earlier run's view of the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from stackwarden.adapters.docker import DockerObservation, docker_endpoint
from stackwarden.adapters.host import HostObservation
from stackwarden.errors import AbsentError
from stackwarden.model.base import Runtime
from stackwarden.model.profile import HealthCheck, HostLookup, KubernetesSpec, Timeouts
from stackwarden.model.snapshot import RuntimeStatus
from stackwarden.observe import unreachable
from stackwarden.pipeline import (
    OBSERVE_RETRIES,
    observe_docker_step,
    observe_host_step,
    observe_kubernetes_step,
)
from tasks.retry import retry_on_transient

if TYPE_CHECKING:  # typing only: the kubernetes adapter (and its client) loads when a cluster is observed
    from stackwarden.adapters.kubernetes import KubeObservationResult


@task(
    name="observe-docker",
    task_run_name="observe-docker",
    retries=OBSERVE_RETRIES[Runtime.COMPOSE].retries,
    retry_delay_seconds=OBSERVE_RETRIES[Runtime.COMPOSE].delay_seconds,
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def observe_docker_task(
    log_tail: int = 40, timeouts: Timeouts | None = None, stateful: tuple[tuple[str, str], ...] = ()
) -> DockerObservation | RuntimeStatus:
    """Containers (one list call; inspect and logs only for unhealthy ones and those of stateful
    services) and networks; an engine that is not on this host is a not-observed record (a
    finding), not a red task run."""
    try:
        return observe_docker_step(log_tail=log_tail, timeouts=timeouts, stateful=stateful)
    except AbsentError as exc:
        return _absent(Runtime.COMPOSE, exc, docker_endpoint())


@task(
    name="observe-host",
    task_run_name="observe-host-{ports}",
    retries=OBSERVE_RETRIES[Runtime.HOST].retries,
    retry_delay_seconds=OBSERVE_RETRIES[Runtime.HOST].delay_seconds,
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def observe_host_task(
    ports: list[int], lookup: HostLookup | None = None, checks: tuple[tuple[str, HealthCheck], ...] = ()
) -> HostObservation:
    """Listening sockets on the profile's ports and the processes behind them, the processes of
    port-less services, where the profile's executables are installed, and its health checks."""
    return observe_host_step(ports, lookup, checks)


@task(
    name="observe-kubernetes",
    task_run_name="observe-kubernetes-{spec.namespace}",
    retries=OBSERVE_RETRIES[Runtime.KUBERNETES].retries,
    retry_delay_seconds=OBSERVE_RETRIES[Runtime.KUBERNETES].delay_seconds,
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def observe_kubernetes_task(
    spec: KubernetesSpec, log_tail: int = 40, timeouts: Timeouts | None = None
) -> KubeObservationResult | RuntimeStatus:
    """Contexts, workloads, pods, services of the profile's namespace; previous logs of
    crash-looping pods only. A host without a kubeconfig is a not-observed record, not red."""
    try:
        return observe_kubernetes_step(spec, log_tail=log_tail, timeouts=timeouts)
    except AbsentError as exc:
        return _absent(Runtime.KUBERNETES, exc, None)


def _absent(runtime: Runtime, exc: AbsentError, endpoint: str | None) -> RuntimeStatus:
    """Healthy absence: the task completes; the snapshot still says the runtime was not seen."""
    get_run_logger().info("%s is not on this host (%s): reported as not observed", runtime, exc)
    return unreachable(runtime, f"{type(exc).__name__}: {exc}", endpoint)
