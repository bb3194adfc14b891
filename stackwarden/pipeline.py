"""The audit's steps as plain functions: observe each runtime, assemble, diagnose, recommend,
render. No Prefect here.

Two ways run this same code: the CLI calls :func:`run_audit` in process (threads for the
independent observations), and the Prefect flow (``flows/audit.py``) wraps each step in a task
and hands :func:`observe_all` a submitter that runs the observe tasks instead of threads.

Imports stay light on purpose: the kubernetes client is imported only when the profile has a
cluster side, so an audit of a Compose + host profile never pays for it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from stackwarden.adapters.docker import DockerObservation, docker_endpoint, observe_docker
from stackwarden.adapters.host import HostObservation, observe_host, run_health_checks
from stackwarden.adapters.journal import interrupted_runs
from stackwarden.adapters.preflight import ComposeCache, compose_facts_of, preflight
from stackwarden.adapters.textfile import write_textfile
from stackwarden.errors import TransientError
from stackwarden.model.base import Mode, Runtime
from stackwarden.model.finding import AuditResult, Finding
from stackwarden.model.profile import HealthCheck, HostLookup, KubernetesSpec, Profile, Timeouts
from stackwarden.model.snapshot import RuntimeStatus, Snapshot
from stackwarden.observe import assemble_snapshot, unreachable
from stackwarden.planner import plan
from stackwarden.recommend import recommend_mode
from stackwarden.report import render_markdown
from stackwarden.report.prometheus import render_prometheus
from stackwarden.rules import diagnose

if TYPE_CHECKING:
    from stackwarden.adapters.kubernetes import KubeObservationResult

LOG = logging.getLogger(__name__)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Retry:
    """How often an observe step is retried after a ``TransientError``, and after how long.

    One table for both ways of running: the Prefect tasks pass these to ``@task`` and the
    in-process pipeline loops on them, so the policy cannot drift between the two."""

    retries: int
    delay_seconds: float


OBSERVE_RETRIES: dict[Runtime, Retry] = {
    Runtime.COMPOSE: Retry(retries=2, delay_seconds=2),
    Runtime.HOST: Retry(retries=2, delay_seconds=1),
    Runtime.KUBERNETES: Retry(retries=2, delay_seconds=2),
}


# ---------------------------------------------------------------- observe, one step per runtime


def observe_docker_step(
    log_tail: int = 40, timeouts: Timeouts | None = None, stateful: tuple[tuple[str, str], ...] = ()
) -> DockerObservation:
    """Containers (one list call; inspect and logs only for unhealthy ones, inspect for those of
    the ``stateful`` (project, compose service) pairs) and networks.
    Raises on failure: the caller decides between a retry and an unreachable record."""
    return observe_docker(log_tail=log_tail, timeouts=timeouts, always_inspect=frozenset(stateful))


def stateful_containers(profile: Profile) -> tuple[tuple[str, str], ...]:
    """(compose project, compose service) of every stateful service: their containers are
    inspected even when healthy, since a switch stops them by their own stop signal."""
    return tuple(
        sorted(
            (profile.compose_for(name).project, profile.compose_service_name(name))
            for name, spec in profile.services.items()
            if spec.stateful
        )
    )


def observe_host_step(
    ports: list[int], lookup: HostLookup | None = None, checks: tuple[tuple[str, HealthCheck], ...] = ()
) -> HostObservation:
    """Listening sockets on the profile's ports and the processes behind them, plus the
    processes of port-less host services found by executable name or path, where the profile's
    executables are installed, and the profile's health checks (what a client of the service
    meets, which a listening socket alone does not tell)."""
    observed = observe_host(frozenset(ports), lookup or HostLookup())
    return replace(observed, health=run_health_checks(checks))


def health_checks(profile: Profile) -> tuple[tuple[str, HealthCheck], ...]:
    """(service, check) for every service whose profile names a health check."""
    return tuple((name, spec.health) for name, spec in profile.services.items() if spec.health is not None)


def observe_kubernetes_step(
    spec: KubernetesSpec, log_tail: int = 40, timeouts: Timeouts | None = None
) -> KubeObservationResult:
    """Workloads, pods, services of the profile's namespace; previous logs of crash-looping pods
    only. The kubernetes client is imported here, on first use, not when the module loads."""
    from stackwarden.adapters.kubernetes import observe_kubernetes

    return observe_kubernetes(spec, log_tail=log_tail, timeouts=timeouts)


class Result(Protocol[T_co]):
    """What a submitted step gives back: a concurrent future or a Prefect future."""

    def result(self) -> T_co: ...


class Submitter(Protocol):
    """Starts the three observe steps; each call returns at once with something to wait on."""

    def docker(
        self, timeouts: Timeouts, stateful: tuple[tuple[str, str], ...]
    ) -> Result[DockerObservation | RuntimeStatus]: ...

    def host(
        self, ports: list[int], lookup: HostLookup, checks: tuple[tuple[str, HealthCheck], ...]
    ) -> Result[HostObservation]: ...

    def kubernetes(self, spec: KubernetesSpec, timeouts: Timeouts) -> Result[KubeObservationResult | RuntimeStatus]: ...


def with_retries(step: Callable[[], T], policy: Retry, what: str, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``step``, again after a ``TransientError`` up to ``policy.retries`` times (the same
    rule as the Prefect tasks' ``retry_condition_fn``); any other error is raised at once."""
    for attempt in range(policy.retries + 1):
        try:
            return step()
        except TransientError as exc:
            if attempt == policy.retries:
                raise
            LOG.warning("%s failed (%s); retry %d of %d", what, exc, attempt + 1, policy.retries)
            sleep(policy.delay_seconds)
    raise AssertionError("unreachable")  # pragma: no cover


class ThreadSubmitter:
    """The in-process submitter: each observe step in its own thread, with the retry table."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor

    def docker(self, timeouts: Timeouts, stateful: tuple[tuple[str, str], ...]) -> Result[DockerObservation]:
        """Start the Docker observation."""
        policy = OBSERVE_RETRIES[Runtime.COMPOSE]
        step = partial(observe_docker_step, timeouts=timeouts, stateful=stateful)
        return self._executor.submit(with_retries, step, policy, "observe-docker")

    def host(
        self, ports: list[int], lookup: HostLookup, checks: tuple[tuple[str, HealthCheck], ...]
    ) -> Result[HostObservation]:
        """Start the host observation."""
        policy = OBSERVE_RETRIES[Runtime.HOST]
        step = partial(observe_host_step, ports, lookup, checks)
        return self._executor.submit(with_retries, step, policy, "observe-host")

    def kubernetes(self, spec: KubernetesSpec, timeouts: Timeouts) -> Result[KubeObservationResult]:
        """Start the Kubernetes observation."""
        policy = OBSERVE_RETRIES[Runtime.KUBERNETES]
        step = partial(observe_kubernetes_step, spec, timeouts=timeouts)
        return self._executor.submit(with_retries, step, policy, "observe-kubernetes")


def settle(
    pending: Result[T], runtime: Runtime, endpoint: str | None, log: logging.Logger | logging.LoggerAdapter[Any] = LOG
) -> T | RuntimeStatus:
    """The observation, or an unreachable record: an engine that cannot be reached is reported,
    it never aborts the audit (the report then says what could not be seen)."""
    try:
        return pending.result()
    except Exception as exc:
        log.warning("%s not observed: %s", runtime, exc)
        return unreachable(runtime, f"{type(exc).__name__}: {exc}", endpoint)


def assemble(
    profile: Profile,
    docker_obs: DockerObservation | RuntimeStatus,
    host_obs: HostObservation | RuntimeStatus,
    kube_obs: KubeObservationResult | RuntimeStatus | None,
) -> Snapshot:
    """One Snapshot from what each runtime gave (an observation or an unreachable record)."""
    runtimes: list[RuntimeStatus] = []
    kwargs: dict[str, Any] = {}
    if kube_obs is not None:
        if isinstance(kube_obs, RuntimeStatus):
            runtimes.append(kube_obs)
        else:
            runtimes.append(kube_obs.status)
            kwargs["kubernetes"] = kube_obs.observation
    if isinstance(docker_obs, RuntimeStatus):
        runtimes.append(docker_obs)
    else:
        runtimes.append(docker_obs.status)
        kwargs.update(containers=docker_obs.containers, networks=docker_obs.networks)
    if isinstance(host_obs, RuntimeStatus):
        runtimes.append(host_obs)
    else:
        runtimes.append(host_obs.status)
        kwargs.update(
            listeners=host_obs.listeners,
            processes=host_obs.processes,
            health=host_obs.health,
            host_context=host_obs.context,
        )
    return assemble_snapshot(
        taken_at=datetime.now(UTC),
        hostname=socket.gethostname(),
        profile=profile.name,
        runtimes=runtimes,
        **kwargs,
    )


def observe_all(
    profile: Profile,
    submitter: Submitter | None = None,
    log: logging.Logger | logging.LoggerAdapter[Any] = LOG,
) -> Snapshot:
    """Observe every runtime of the profile concurrently and assemble one Snapshot.

    Without a submitter the steps run in threads of this process; the flow passes one that
    submits Prefect tasks. Either way a failure becomes an unreachable ``RuntimeStatus``."""
    if submitter is None:
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="observe") as executor:
            return observe_all(profile, ThreadSubmitter(executor), log)
    docker_pending = submitter.docker(profile.timeouts, stateful_containers(profile))
    host_pending = submitter.host(list(profile.all_ports()), profile.host_lookup(), health_checks(profile))
    kube_pending = submitter.kubernetes(profile.kubernetes, profile.timeouts) if profile.kubernetes else None
    snapshot = assemble(
        profile,
        settle(docker_pending, Runtime.COMPOSE, docker_endpoint(), log),
        settle(host_pending, Runtime.HOST, socket.gethostname(), log),
        settle(kube_pending, Runtime.KUBERNETES, None, log) if kube_pending is not None else None,
    )
    # a switch of this profile that died part way left a journal: the audit reports it
    return snapshot.model_copy(update={"interrupted": interrupted_runs(profile)})


# ---------------------------------------------------------------- diagnose, recommend, render


def diagnose_step(snapshot: Snapshot, profile: Profile, requested: Mode | None = None) -> AuditResult:
    """Run every rule and recommend a mode: the audit's whole judgement, pure."""
    findings = diagnose(snapshot, profile)
    return AuditResult(
        profile=profile.name,
        snapshot_taken_at=snapshot.taken_at.isoformat(),
        findings=findings,
        recommendation=recommend_mode(snapshot, profile, findings, requested),
    )


def mode_preflight_step(
    snapshot: Snapshot, profile: Profile, compose: ComposeCache | None = None
) -> dict[Mode, tuple[str, ...]]:
    """The switch's preflight on each mode's plan (every check that changes nothing: compose
    files, images, access reviews, units, executables), so a mode section of the report never
    offers a plan the switch would refuse. One ``compose config`` per project for all three
    (``compose``: already read, as ``run_audit`` does while it observes)."""
    cache: ComposeCache = dict(compose or {})
    out: dict[Mode, tuple[str, ...]] = {}
    for mode in Mode:
        the_plan = plan(snapshot, profile, mode)
        if the_plan.applicable and the_plan.steps:
            failing = preflight(the_plan, profile, cache)
            if failing:
                out[mode] = tuple(failing)
    return out


def findings_summary(findings: tuple[Finding, ...]) -> str:
    """One log line's worth: ``id=severity`` for each finding."""
    return ", ".join(f"{f.id}={f.severity}" for f in findings) or "none"


def render_step(result: AuditResult, snapshot: Snapshot, profile: Profile) -> str:
    """The markdown report."""
    return render_markdown(result, snapshot, profile)


def metrics_step(result: AuditResult, snapshot: Snapshot, profile: Profile, path: str, duration_seconds: float) -> str:
    """Render the audit's metrics and replace ``path`` with them atomically; only a successful
    audit gets here, so the file's timestamp is the last successful audit's."""
    text = render_prometheus(
        result, snapshot, profile, duration_seconds=duration_seconds, finished_at=datetime.now(UTC)
    )
    return str(write_textfile(path, text))


def findings_table(result: AuditResult) -> list[dict[str, str]]:
    """The findings as table rows (the Prefect table artifact, the CLI summary)."""
    return [
        {
            "id": f.id,
            "severity": str(f.severity),
            "title": f.title,
            "services": ", ".join(f.services),
            "runtimes": ", ".join(f.runtimes),
            "action": f.action,
        }
        for f in result.findings
    ]


def artifact_key(profile: Profile, what: str) -> str:
    """Prefect artifact and variable keys must be lowercase letters, digits and dashes."""
    return f"stackwarden-{profile.name}-{what}".replace(".", "-").replace("_", "-").lower()


# ---------------------------------------------------------------- the whole audit, in process


@dataclass(frozen=True)
class AuditOutcome:
    """What the CLI needs from one audit run."""

    profile: Profile
    snapshot: Snapshot
    result: AuditResult
    markdown: str


class Progress(Protocol):
    """Told when a named step starts and ends (the CLI shows a live line for slow ones)."""

    def step(self, name: str) -> Any: ...


class _NoProgress:
    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        yield


def run_audit(
    profile: Profile,
    requested: Mode | None = None,
    progress: Progress | None = None,
    prometheus_path: str | None = None,
) -> AuditOutcome:
    """The audit in this process: observe concurrently, diagnose, recommend, render (and, when
    asked, the metrics file for node_exporter)."""
    started = time.monotonic()
    shown = progress or _NoProgress()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="compose-config") as side:
        compose = side.submit(compose_facts_of, profile)  # read while the runtimes are observed
        with shown.step("observing " + ", ".join(observed_runtimes(profile))):
            snapshot = observe_all(profile)
        with shown.step("diagnosing"):
            result = diagnose_step(snapshot, profile, requested)
            refusals = mode_preflight_step(snapshot, profile, compose.result())
            result = result.model_copy(update={"mode_refusals": refusals})
        LOG.info("%d finding(s): %s", len(result.findings), findings_summary(result.findings))
        markdown = render_step(result, snapshot, profile)
    if prometheus_path:
        written = metrics_step(result, snapshot, profile, prometheus_path, time.monotonic() - started)
        LOG.info("metrics written to %s", written)
    return AuditOutcome(profile=profile, snapshot=snapshot, result=result, markdown=markdown)


def observed_runtimes(profile: Profile) -> list[str]:
    """The runtimes an audit of this profile observes, for progress messages."""
    return ["docker", "host"] + (["kubernetes"] if profile.kubernetes else [])
