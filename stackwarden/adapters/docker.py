"""Observe Docker through docker-py with one list call for all containers.

Healthy containers are described by the list call alone; only containers that are not running
cleanly are inspected (restart count, exit code, state error, declared ports) and, when they
crash-loop, their last log lines are read. One bounded events call gives every container's last
``die`` (exit code), which a restart erases from the inspect data. So the API calls per audit do
not grow with the number of healthy containers.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stackwarden.adapters.engine_http import EngineHTTPError, EngineNotFound, EngineReader, unix_path
from stackwarden.adapters.retry import RetryableCall, with_retries
from stackwarden.dependencies import refs_from_argv, refs_from_env, refs_from_links
from stackwarden.errors import AbsentError, PermanentError, RefusedError, StackwardenError, TransientError
from stackwarden.localclusters import cluster_node
from stackwarden.model.base import Runtime
from stackwarden.model.plan import GracefulStop, Unchanged, stateful_stop
from stackwarden.model.profile import Timeouts
from stackwarden.model.snapshot import (
    INSPECT_GAP,
    RECENT_START_SECONDS,
    Container,
    ContainerDeath,
    DependencyRef,
    DockerNetwork,
    PublishedPort,
    RuntimeStatus,
)
from stackwarden.observe import sorted_containers
from stackwarden.sanitize import redact_lines, redact_text

if TYPE_CHECKING:
    import docker

LOG = logging.getLogger(__name__)
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class DockerObservation:
    """What the Docker side of one audit saw (``deaths``: each container's last ``die``, which
    the live view keeps up to date from the events it follows)."""

    status: RuntimeStatus
    containers: tuple[Container, ...] = ()
    networks: tuple[DockerNetwork, ...] = ()
    deaths: dict[str, ContainerDeath] = field(default_factory=dict)


def docker_endpoint() -> str:
    """The engine address docker-py will use (DOCKER_HOST, else the default socket)."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def _is_engine_absent(exc: BaseException) -> bool:
    """A missing socket or a refused port: the engine is not running, and retrying won't help."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FileNotFoundError | ConnectionRefusedError):
            return True
        text = str(seen)
        if "No such file or directory" in text or "Connection refused" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes: docker-py wraps HTTP errors during version negotiation."""
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in out:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def _classify(exc: Exception) -> Exception:
    """Sort a docker-py failure: retry transport blips, 429 and 5xx; give up at once on a missing
    engine; hand 4xx back unchanged (the caller may expect NotFound)."""
    for item in _chain(exc):
        response = getattr(item, "response", None)
        code = getattr(response, "status_code", None) or getattr(item, "status_code", None)
        if isinstance(code, int) and (code == 429 or code >= 500):
            headers = response.headers if response is not None else getattr(item, "headers", None) or {}
            header = str(headers.get("Retry-After", ""))
            return RetryableCall(f"HTTP {code}: {item}", float(header) if header.isdigit() else None)
        if isinstance(code, int) and 400 <= code < 500:
            return exc
    if _is_engine_absent(exc):
        return AbsentError(f"Docker engine not reachable at {docker_endpoint()}: {exc}")
    # requests is loaded only where docker-py is (a write, or a DOCKER_HOST other than unix://)
    requests = sys.modules.get("requests")
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)
    broken: tuple[type[BaseException], ...] = (ConnectionError, http.client.HTTPException)
    if requests is not None:
        timeouts += (requests.exceptions.Timeout,)
        broken += (requests.exceptions.ConnectionError,)
    if any(isinstance(i, timeouts) for i in _chain(exc)):
        # a hung engine stays hung: asking again would only multiply the wait
        return PermanentError(f"Docker engine at {docker_endpoint()} did not answer in time (timed out): {exc}")
    if any(isinstance(i, broken) for i in _chain(exc)):
        return RetryableCall(str(exc))
    return exc


def _call(func: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """Call docker-py under the retry policy of ``adapters.retry``."""

    def attempt() -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            classified = _classify(exc)
            if classified is exc:
                raise
            raise classified from exc

    return with_retries(attempt, what, LOG)


def call(func: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """A read under this adapter's retry policy and error sorting (the live view's watch
    makes its calls through it, as the audit does)."""
    return _call(func, what, *args, **kwargs)


def _client(timeout: float) -> docker.APIClient:
    """A low-level docker-py client for writes; ``version="auto"`` negotiates with old and new
    engines alike. docker-py is imported here, when a switch acts, never for a read."""
    import docker

    return _call(docker.APIClient, "connect to Docker", base_url=docker_endpoint(), version="auto", timeout=timeout)


class _DockerPyReader:
    """The reads of ``EngineReader`` through docker-py, for an engine it cannot reach itself
    (tcp://, ssh://); docker-py's errors come out as ``EngineHTTPError``/``EngineNotFound``."""

    def __init__(self, timeout: float) -> None:
        self._client = _client(timeout)

    def _do(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        import docker.errors

        try:
            return func(*args, **kwargs)
        except docker.errors.APIError as exc:
            kind = EngineNotFound if isinstance(exc, docker.errors.NotFound) else EngineHTTPError
            headers = dict(exc.response.headers) if exc.response is not None else {}
            raise kind(exc.status_code or 0, str(exc.explanation or exc), headers) from exc

    def version(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._do(self._client.version)
        return answer

    def ping(self) -> bool:
        return bool(self._do(self._client.ping))

    def containers(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._do(self._client.containers, all=all, filters=filters)
        return answer

    def networks(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._do(self._client.networks)
        return answer

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._do(self._client.inspect_container, container_id)
        return answer

    def inspect_image(self, image: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._do(self._client.inspect_image, image)
        return answer

    def logs(self, container_id: str, *, tail: int, tty: bool | None = None) -> bytes:
        answer: bytes = self._do(self._client.logs, container_id, stdout=True, stderr=True, tail=tail)
        return answer

    def events(
        self, *, since: str | None = None, until: str | None = None, filters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return list(self._do(self._client.events, since=since, until=until, filters=filters, decode=True))

    def follow_events(self, *, since: str, filters: dict[str, Any]) -> Any:
        """docker-py's cancellable events stream (it has ``close``)."""
        return self._do(self._client.events, since=since, filters=filters, decode=True)

    def close(self) -> None:
        self._client.close()


Reader = EngineReader | _DockerPyReader


def read_client(timeout: float) -> Reader:
    """What reads the engine: the standard-library client over a unix socket (no docker-py
    import), docker-py for any other DOCKER_HOST."""
    path = unix_path(docker_endpoint())
    return EngineReader(path, timeout) if path is not None else _DockerPyReader(timeout)


def _published(ports: list[dict[str, Any]] | None) -> tuple[PublishedPort, ...]:
    """The list call's bound ports (only those with a host port)."""
    out = {
        PublishedPort(
            host_ip=p.get("IP") or "0.0.0.0",
            host_port=int(p["PublicPort"]),
            container_port=int(p["PrivatePort"]),
            protocol=p.get("Type", "tcp"),
        )
        for p in ports or []
        if p.get("PublicPort")
    }
    return tuple(sorted(out, key=lambda p: (p.host_port, p.host_ip)))


def _declared(bindings: dict[str, list[dict[str, str]] | None] | None) -> tuple[PublishedPort, ...]:
    """HostConfig.PortBindings: what the container asked to publish, bound or not."""
    out = []
    for key, entries in (bindings or {}).items():
        container_port, _, proto = key.partition("/")
        for entry in entries or []:
            if entry.get("HostPort"):
                out.append(
                    PublishedPort(
                        host_ip=entry.get("HostIp") or "0.0.0.0",
                        host_port=int(entry["HostPort"]),
                        container_port=int(container_port),
                        protocol=proto or "tcp",
                    )
                )
    return tuple(sorted(out, key=lambda p: (p.host_port, p.host_ip)))


_SETTLED_UPTIME = re.compile(
    r"^Up (?:(\d+) seconds|About a minute|\d+ minutes|About an hour|\d+ hours|\d+ days|\d+ weeks|\d+ months|\d+ years)"
)


def _needs_inspect(summary: dict[str, Any]) -> bool:
    """Only containers not known to be healthy are worth a per-container call: not running,
    unhealthy, or started so recently that they may be between two crashes of a loop."""
    status = str(summary.get("Status", ""))
    if summary.get("State") != "running" or "unhealthy" in status:
        return True
    settled = _SETTLED_UPTIME.match(status)
    if settled is None:
        return True  # "Up Less than a second" and anything we cannot read
    seconds = settled.group(1)
    return seconds is not None and int(seconds) < RECENT_START_SECONDS


_LISTED_EXIT = re.compile(r"^(?:Restarting|Exited) \((-?\d+)\)")
_LISTED_UPTIME = re.compile(r"^Up (?:(Less than a second)|(\d+) seconds?|(About a minute)|(\d+) minutes)")


def listed_exit_code(status: str) -> int | None:
    """The exit code a list entry's Status prints (``Restarting (3) 2 seconds ago``,
    ``Exited (1) 5 minutes ago``); None for anything else."""
    found = _LISTED_EXIT.match(status)
    return int(found.group(1)) if found else None


def listed_uptime(status: str) -> float | None:
    """Seconds up, as a list entry's Status rounds them (``Up Less than a second``, ``Up 5
    seconds``, ``Up About a minute``, ``Up 3 minutes``); None when it is not up or up for hours."""
    found = _LISTED_UPTIME.match(status)
    if found is None:
        return None
    less, seconds, about, minutes = found.groups()
    if less:
        return 0.0
    if seconds:
        return float(seconds)
    return 60.0 if about else float(minutes) * 60.0


def _from_list_only(container: Container, death: ContainerDeath | None) -> Container:
    """A container whose inspect failed, with what its list entry and the engine's ``die`` events
    still say: the exit code its Status prints, how long it is up, its last death. A crash loop
    caught between two crashes ("Up Less than a second" after a failed exit) is then still a
    crash loop: what cannot be read must not read as healthy."""
    return container.model_copy(
        update={
            "exit_code": listed_exit_code(container.status),
            "uptime_seconds": listed_uptime(container.status) if container.state == "running" else None,
            "last_death": death,
        }
    )


def _uptime(state: dict[str, Any], now: datetime) -> float | None:
    """Seconds since State.StartedAt (Docker prints nanoseconds; keep microseconds)."""
    started = str(state.get("StartedAt") or "")
    if not started or started.startswith("0001-"):
        return None
    try:
        stamp = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", started).replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (now - stamp).total_seconds())


def depends_on_label(value: str) -> tuple[str, ...]:
    """The compose services of a ``com.docker.compose.depends_on`` label
    (``db:service_started:false,cache:service_healthy:true``; links are listed there too)."""
    return tuple(dict.fromkeys(part.split(":", 1)[0] for part in value.split(",") if part.split(":", 1)[0]))


def container_targets(inspect: dict[str, Any]) -> tuple[DependencyRef, ...]:
    """The addresses an inspected container's env (``Config.Env``), command line (``Entrypoint`` +
    ``Cmd``) and links name. Only hosts and ports come out: the values (passwords in URLs
    included) are dropped here, at the adapter boundary."""
    config = inspect.get("Config") or {}
    env = [tuple(item.split("=", 1)) for item in config.get("Env") or [] if "=" in item]
    argv = [str(a) for a in (config.get("Entrypoint") or []) + (config.get("Cmd") or [])]
    networks = ((inspect.get("NetworkSettings") or {}).get("Networks")) or {}
    links = [
        *((inspect.get("HostConfig") or {}).get("Links") or []),
        *(lk for n in networks.values() for lk in n.get("Links") or []),
    ]
    return tuple(dict.fromkeys((*refs_from_env(env), *refs_from_argv(argv), *refs_from_links(links))))


def _from_summary(summary: dict[str, Any]) -> Container:
    labels = summary.get("Labels") or {}
    nets = (summary.get("NetworkSettings") or {}).get("Networks") or {}
    files = labels.get("com.docker.compose.project.config_files", "")
    published = _published(summary.get("Ports"))
    return Container(
        id=summary["Id"],
        name=(summary.get("Names") or ["/?"])[0].lstrip("/"),
        image=summary.get("Image", ""),
        state=summary.get("State", "unknown"),
        status=summary.get("Status", ""),
        compose_project=labels.get(PROJECT_LABEL),
        compose_service=labels.get(SERVICE_LABEL),
        compose_config_files=tuple(f for f in files.split(",") if f),
        compose_working_dir=labels.get("com.docker.compose.project.working_dir"),
        published=published,
        declared=published,
        networks=tuple(sorted(nets)),
        ip_addresses=tuple(sorted(n["IPAddress"] for n in nets.values() if n.get("IPAddress"))),
        depends_on=depends_on_label(labels.get("com.docker.compose.depends_on", "")),
        cluster_node=cluster_node(labels, summary.get("Image", "")),
    )


def _with_inspect(container: Container, inspect: dict[str, Any], now: datetime) -> Container:
    state = inspect.get("State") or {}
    declared = _declared((inspect.get("HostConfig") or {}).get("PortBindings"))
    return container.model_copy(
        update={
            "state": state.get("Status", container.state),
            "restart_count": int(inspect.get("RestartCount") or 0),
            # A running container has not exited yet, and a created one never ran: Docker's 0
            # there is not an exit code.
            "exit_code": None
            if (state.get("Running") and not state.get("Restarting")) or state.get("Status") == "created"
            else state.get("ExitCode"),
            "error": redact_text(state["Error"]) if state.get("Error") else None,
            "oom_killed": bool(state.get("OOMKilled")),
            "restart_policy": ((inspect.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or None,
            "restart_max_retries": int(
                ((inspect.get("HostConfig") or {}).get("RestartPolicy") or {}).get("MaximumRetryCount") or 0
            ),
            "stop_signal": (inspect.get("Config") or {}).get("StopSignal") or None,
            "declared": declared or container.declared,
            "inspected": True,
            "uptime_seconds": _uptime(state, now) if state.get("Running") else None,
            "health_output": _health_output(state),
            "targets": container_targets(inspect),
        }
    )


def _health_output(state: dict[str, Any]) -> str | None:
    """The last health check's exit code and output, one line: why the engine calls it unhealthy."""
    log = ((state.get("Health") or {}).get("Log")) or []
    if not log:
        return None
    last = log[-1]
    text = " ".join(str(last.get("Output") or "").split())[:300]
    return redact_text(f"exit {last.get('ExitCode')}: {text}" if text else f"exit {last.get('ExitCode')}")


def _log_tail(client: Reader, container_id: str, tail: int, tty: bool | None) -> tuple[str, ...]:
    raw = _call(client.logs, f"logs of {container_id[:12]}", container_id, tail=tail, tty=tty)
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return tuple(redact_lines(line for line in text.splitlines() if line.strip()))


def _logs_if_any(client: Reader, container: Container, tail: int, tty: bool | None = None) -> tuple[str, ...]:
    """The container's last lines, or none when it went away (404) or is dead or being removed
    (409) between the list and this call: another project's ``compose down`` during an audit
    must not make the whole engine read as unreachable."""
    try:
        return _log_tail(client, container.id, tail, tty)
    except EngineHTTPError as exc:
        if exc.status_code in {404, 409}:
            LOG.info("logs of %s unavailable: %s", container.name, exc.explanation or exc)
            return ()
        raise


def _with_logs(client: Reader, container: Container, tail: int, tty: bool | None = None) -> Container:
    """The container with its last lines; a logs read that times out or keeps failing marks
    only this container partially observed (its finding says so), never the whole engine."""
    try:
        return container.model_copy(update={"log_tail": _logs_if_any(client, container, tail, tty)})
    except (PermanentError, TransientError) as exc:
        return _partly_observed(container, f"logs of container {container.name} not read", exc)


def _partly_observed(container: Container, what: str, exc: PermanentError | TransientError) -> Container:
    """``container`` with one more gap (``what: why``), logged; an engine that went away is
    re-raised: that is the engine's state, not this container's."""
    if isinstance(exc, AbsentError):
        raise exc
    LOG.warning("%s: %s", what, exc)
    gap = f"{what}: {redact_text(str(exc))[:300]}"
    return container.model_copy(update={"unobserved": (*container.unobserved, gap)})


DEATH_WINDOW_SECONDS = 600.0
"""How far back ``die`` events are read: longer than Docker's largest restart back-off (1 min)
and than a loop's run between crashes, short enough to stay one small reply."""


def deaths_from_events(events: list[dict[str, Any]]) -> dict[str, ContainerDeath]:
    """The last ``die`` (exit code and time) per container id, from decoded engine events."""
    out: dict[str, ContainerDeath] = {}
    for event in events:
        if event.get("Action", event.get("status")) != "die":
            continue
        actor = event.get("Actor") or {}
        cid = actor.get("ID") or event.get("id")
        raw = (actor.get("Attributes") or {}).get("exitCode")
        if not cid or raw is None or not str(raw).lstrip("-").isdigit():
            continue
        nanos = event.get("timeNano")
        seconds = int(nanos) / 1e9 if nanos else float(event.get("time") or 0)
        death = ContainerDeath(exit_code=int(raw), at=datetime.fromtimestamp(seconds, UTC))
        if cid not in out or out[cid].at <= death.at:
            out[cid] = death
    return out


def _deaths(client: Reader, window: float) -> dict[str, ContainerDeath]:
    """One bounded events call (``die`` since ``window`` seconds ago, until now): Docker resets
    State.ExitCode when a container restarts, the event keeps it."""
    now = time.time()

    def read() -> list[dict[str, Any]]:
        return client.events(
            since=f"{now - window:.9f}", until=f"{now:.9f}", filters={"type": "container", "event": "die"}
        )

    try:
        return deaths_from_events(_call(read, "container die events"))
    except (EngineHTTPError, TransientError) as exc:
        # the containers were listed: without the events only exit codes of running crash
        # loops are unknown, which is reported as such; the audit must not fail for it
        LOG.warning("container die events unavailable: %s", exc)
        return {}


def read_timeout(timeouts: Timeouts | None) -> float:
    """Seconds docker-py waits for an answer. Over a unix socket connecting is immediate, and
    docker-py takes one number for both, so the profile's read timeout bounds each call."""
    t = timeouts or Timeouts()
    return max(t.connect_seconds, t.read_seconds)


def describe_container(
    client: Reader,
    summary: dict[str, Any],
    deaths: dict[str, ContainerDeath],
    *,
    log_tail: int = 40,
    always_inspect: frozenset[tuple[str, str]] = frozenset(),
) -> Container | None:
    """One container as an audit sees it, from its list entry: inspected only when it is not
    known to be healthy (or is one of ``always_inspect``'s), its logs read only when it
    crash-loops or died failing. None when it was removed between the list and the inspect.
    The audit calls this for every container; the live view for each one an event names."""
    container = _from_summary(summary)
    if not (_needs_inspect(summary) or (container.compose_project, container.compose_service) in always_inspect):
        return container
    try:
        inspect = _call(client.inspect_container, f"inspect {container.name}", summary["Id"])
    except EngineNotFound:
        return None  # removed between list and inspect
    except (PermanentError, TransientError) as exc:
        # one container whose inspect times out is that container partially observed (its list
        # entry stands, what only the inspect says is missing), never the whole engine unreachable
        container = _from_list_only(
            _partly_observed(container, f"{INSPECT_GAP} {container.name} failed", exc), deaths.get(container.id)
        )
        if container.is_crash_looping or container.died_failing:
            container = _with_logs(client, container, log_tail)
        return container
    container = _with_inspect(container, inspect, datetime.now(UTC))
    container = container.model_copy(update={"last_death": deaths.get(container.id)})
    # logs of what fails: a crash loop, a death, or a container up but unhealthy (its
    # entrypoint may wait for a dependency that never answers)
    unhealthy = container.state == "running" and "unhealthy" in container.status
    if container.is_crash_looping or container.died_failing or unhealthy:
        container = _with_logs(client, container, log_tail, bool((inspect.get("Config") or {}).get("Tty")))
    return container


def network_of(summary: dict[str, Any]) -> DockerNetwork:
    """A network from the engine's network list."""
    return DockerNetwork(
        id=summary["Id"],
        name=summary["Name"],
        driver=summary.get("Driver", ""),
        compose_project=(summary.get("Labels") or {}).get(PROJECT_LABEL),
        internal=bool(summary.get("Internal")),
    )


def engine_status(version: dict[str, Any]) -> RuntimeStatus:
    """The reachability record of an engine that answered ``version``."""
    return RuntimeStatus(
        runtime=Runtime.COMPOSE, reachable=True, endpoint=docker_endpoint(), version=str(version.get("Version", "?"))
    )


def observe_docker(
    log_tail: int = 40, timeouts: Timeouts | None = None, always_inspect: frozenset[tuple[str, str]] = frozenset()
) -> DockerObservation:
    """Observe every container and network on the engine, each call bounded by the profile's
    timeouts. Containers whose (compose project, compose service) is in ``always_inspect`` (the
    profile's stateful services) are inspected even when healthy: their stop signal and restart
    policy decide how a switch stops them. That is one call per such container, bounded by the
    profile, not by the engine's size.

    Raises ``PermanentError`` when the engine is absent or hung and ``TransientError`` when
    transport retries are exhausted; the caller records either as an unreachable runtime.
    """
    client = read_client(read_timeout(timeouts))
    return observe_with(client, log_tail=log_tail, always_inspect=always_inspect)


def observe_with(
    client: Reader, *, log_tail: int = 40, always_inspect: frozenset[tuple[str, str]] = frozenset()
) -> DockerObservation:
    """``observe_docker`` through an open reader (closed on the way out)."""
    try:
        version = _call(client.version, "Docker version")
        summaries = _call(client.containers, "list containers", all=True)
        networks = _call(client.networks, "list networks")
        deaths = _deaths(client, DEATH_WINDOW_SECONDS)
        described = (
            describe_container(client, summary, deaths, log_tail=log_tail, always_inspect=always_inspect)
            for summary in summaries
        )
        containers = [c for c in described if c is not None]
    except EngineHTTPError as exc:
        raise PermanentError(f"Docker API error at {docker_endpoint()}: {exc}") from exc
    finally:
        client.close()
    return DockerObservation(
        status=engine_status(version),
        containers=sorted_containers(containers),
        networks=networks_of(networks),
        deaths=deaths,
    )


def networks_of(summaries: list[dict[str, Any]]) -> tuple[DockerNetwork, ...]:
    """The engine's network list as the snapshot holds it (by name)."""
    return tuple(sorted((network_of(n) for n in summaries), key=lambda n: n.name))


def _container_for(client: docker.APIClient, container_id: str, project: str) -> dict[str, Any]:
    """Inspect the exact container the plan named; refuse if it is gone or changed project."""
    import docker.errors

    try:
        inspect: dict[str, Any] = _call(client.inspect_container, f"inspect {container_id[:12]}", container_id)
    except docker.errors.NotFound as exc:
        raise RefusedError(f"container {container_id[:12]} no longer exists; replan") from exc
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    if inspect.get("Id") != container_id or labels.get(PROJECT_LABEL) != project:
        raise RefusedError(
            f"container {container_id[:12]} is not the one planned (project {labels.get(PROJECT_LABEL)})"
        )
    return inspect


def stop_container(
    container_id: str,
    project: str,
    timeout: int,
    *,
    stateful: bool = False,
    graceful: GracefulStop | None = None,
    force: bool = False,
) -> str:
    """Stop one container; idempotent (an already stopped container is left as it is).

    ``docker stop`` SIGKILLs after its timeout, which the safety rules forbid for a stateful
    service without force: such a container is stopped exactly as the plan's ``graceful`` says
    (the printed commands say the same), and an error, not a SIGKILL, ends a wait that runs out.
    """
    client = _client(30.0 + timeout)
    try:
        inspect = _container_for(client, container_id, project)
        state = inspect.get("State") or {}
        if not state.get("Running") and not state.get("Restarting"):
            return Unchanged("already stopped")
        if stateful and not force and not state.get("Restarting"):
            how = graceful or GracefulStop(signal="SIGTERM")
            policy = (inspect.get("HostConfig") or {}).get("RestartPolicy") or {}
            now = stateful_stop(
                (inspect.get("Config") or {}).get("StopSignal") or None,
                policy.get("Name") or None,
                int(policy.get("MaximumRetryCount") or 0),
            )
            if now != how:
                raise RefusedError(
                    f"container {inspect.get('Name', '').lstrip('/')}: its stop signal or restart policy changed "
                    f"since the plan (planned {how.signal}, now {now.signal}); replan"
                )
            return _stop_gracefully(client, inspect, timeout, how)
        # docker stop also ends a restart loop: the container is marked as stopped by hand
        _call(client.stop, f"stop {container_id[:12]}", container_id, timeout=timeout)
        return f"stopped (timeout {timeout}s)"
    finally:
        client.close()


def _stop_gracefully(client: docker.APIClient, inspect: dict[str, Any], timeout: int, how: GracefulStop) -> str:
    """Signal, wait, never SIGKILL; a paused restart policy is put back whatever happens, unless
    someone changed it during the stop (theirs is kept, as the repair keeps it)."""
    cid, name = inspect["Id"], inspect.get("Name", "").lstrip("/")
    if how.pause_restart_policy is not None:
        _call(client.update_container, f"pause restart policy of {name}", cid, restart_policy={"Name": "no"})
    try:
        _call(client.kill, f"signal {name}", cid, signal=how.signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not (_call(client.inspect_container, f"inspect {name}", cid).get("State") or {}).get("Running"):
                return f"stopped by {how.signal} within {timeout}s (stateful: no SIGKILL)"
            time.sleep(0.5)
        raise StackwardenError(
            f"container {name} (stateful) did not stop within {timeout}s after {how.signal}; "
            "it is not SIGKILLed without --force"
        )
    finally:
        if how.pause_restart_policy is not None:
            _restore_if_paused(client, cid, name, how.pause_restart_policy)


def start_container(container_id: str, project: str) -> str:
    """Start an existing container. Idempotent: a running one is left as it is."""
    client = _client(30.0)
    try:
        inspect = _container_for(client, container_id, project)
        if (inspect.get("State") or {}).get("Running"):
            return Unchanged("already running")
        _call(client.start, f"start {container_id[:12]}", container_id)
        return "started"
    finally:
        client.close()


def restore_restart_policy(container_id: str, project: str, policy: str) -> str:
    """Put back a restart policy that a graceful stop paused (``no``) and did not restore (the
    switch died in between). Only while it is still ``no``: a policy someone set since is theirs."""
    client = _client(30.0)
    try:
        _container_for(client, container_id, project)
        return _restore_if_paused(client, container_id, container_id[:12], policy)
    finally:
        client.close()


def _restore_if_paused(client: docker.APIClient, container_id: str, name: str, policy: str) -> str:
    """``docker update --restart POLICY`` (``on-failure:N`` as the plan writes it), only while the
    policy is still the ``no`` of the pause: one set since (by a person, during the stop or after
    a crash) is theirs and stays."""
    inspect = _call(client.inspect_container, f"inspect {name}", container_id)
    now = ((inspect.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"
    if now != "no":
        LOG.warning("restart policy of %s is %s now, set since it was paused; left as it is", name, now)
        return Unchanged(f"restart policy is {now} now; left as it is")
    kind, _, retries = policy.partition(":")
    restore = {"Name": kind, "MaximumRetryCount": int(retries) if retries.isdigit() else 0}
    _call(client.update_container, f"restore restart policy of {name}", container_id, restart_policy=restore)
    return f"restart policy {policy} restored"


def missing_images(images: dict[str, str], timeouts: Timeouts | None = None) -> dict[str, str]:
    """image -> what to do, for the images (mapped to the service needing them) that are not on
    this engine: ``compose up`` would pull (or build) them mid-switch, or fail there."""
    client = read_client(read_timeout(timeouts))
    out = {}
    try:
        for image, service in sorted(images.items()):
            try:
                _call(client.inspect_image, f"inspect image {image}", image)
            except EngineNotFound:
                out[image] = f"needed by {service}; pull or build it first (docker compose pull / build)"
    except EngineHTTPError as exc:
        raise PermanentError(f"Docker API error at {docker_endpoint()}: {exc}") from exc
    finally:
        client.close()
    return out
