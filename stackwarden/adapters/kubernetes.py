"""Observe Kubernetes through the official client: one list call per kind in the profile's
namespace (workloads, pods, services, events, endpoints), plus previous logs of crash-looping
pods only.

Missing kubeconfig, an unreachable cluster or a Forbidden verb never raise past this module as
a crash: they come back as a ``RuntimeStatus`` (unreachable) or in ``forbidden``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from stackwarden.adapters.kube_http import KubeApiError, KubeReader, Timeout, endpoint_for
from stackwarden.adapters.retry import RetryableCall, with_retries
from stackwarden.dependencies import refs_from_argv, refs_from_env
from stackwarden.errors import AbsentError, PermanentError, RefusedError, StackwardenError
from stackwarden.model.base import Runtime
from stackwarden.model.plan import PREVIOUS_REPLICAS, Unchanged
from stackwarden.model.profile import KubernetesSpec, Timeouts
from stackwarden.model.snapshot import (
    RECENT_START_SECONDS,
    Coverage,
    CoverageReason,
    DependencyRef,
    KubeContainer,
    KubeContainerPort,
    KubeContext,
    KubeEndpoints,
    KubeEvent,
    KubeObservation,
    KubeServicePort,
    KubeServiceState,
    KubeWorkloadState,
    PodCondition,
    PodState,
    RuntimeStatus,
)
from stackwarden.observe import kube_observation
from stackwarden.sanitize import redact_lines, redact_text

LOG = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True)
class KubeObservationResult:
    """The cluster side of one audit: reachability plus what was seen."""

    status: RuntimeStatus
    observation: KubeObservation = field(default_factory=KubeObservation)


def kubeconfig_paths(spec: KubernetesSpec) -> list[Path]:
    """The profile's kubeconfig, else $KUBECONFIG (colon-separated), else ~/.kube/config."""
    raw = spec.kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def flavour_of(
    context: str, cluster: str | None, server: str | None
) -> Literal["minikube", "kind", "docker-desktop", "other"]:
    """Recognise local clusters by their conventional names."""
    names = {context, cluster or ""}
    if "minikube" in names:
        return "minikube"
    if any(n.startswith("kind-") for n in names):
        return "kind"
    if names & {"docker-desktop", "docker-for-desktop"}:
        return "docker-desktop"
    return "other"


def _named_entries(doc: object, key: str, body_key: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(name, body)`` of each entry of a kubeconfig list (``contexts``, ``clusters``); any other
    shape is a ``PermanentError`` naming the file and the entry, never a KeyError or a crash."""
    if not isinstance(doc, dict):
        raise PermanentError(f"malformed kubeconfig {path}: the top level is not a mapping")
    items = doc.get(key) or []
    if not isinstance(items, list):
        raise PermanentError(f"malformed kubeconfig {path}: {key} is not a list")
    out = []
    for index, item in enumerate(items):
        body = item.get(body_key) if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(body, dict | None):
            raise PermanentError(f"malformed kubeconfig {path}: {key}[{index}] needs a name and a {body_key} mapping")
        out.append((item["name"], body or {}))
    return out


def read_contexts(spec: KubernetesSpec) -> tuple[list[KubeContext], str | None, Path]:
    """Every context of the kubeconfig, with server URLs and the allowlist applied.

    Returns the contexts, the one to observe (the profile's, else the current one) and the file.
    Raises ``PermanentError`` when no kubeconfig can be read.
    """
    paths = [p for p in kubeconfig_paths(spec) if p.is_file()]
    if not paths:
        wanted = ", ".join(str(p) for p in kubeconfig_paths(spec))
        raise AbsentError(f"no kubeconfig found (looked at {wanted})")
    contexts: dict[str, dict[str, Any]] = {}
    clusters: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PermanentError(f"cannot read kubeconfig {path}: {exc}") from exc
        for name, body in _named_entries(doc, "contexts", "context", path):
            contexts.setdefault(name, body)
        for name, body in _named_entries(doc, "clusters", "cluster", path):
            clusters.setdefault(name, body)
        found = doc.get("current-context") if isinstance(doc, dict) else None
        current = current or (found if isinstance(found, str) else None)
    chosen = spec.context or current
    out = []
    for name, ctx in sorted(contexts.items()):
        cluster = ctx.get("cluster")
        server = (clusters.get(cluster if isinstance(cluster, str) else "") or {}).get("server")
        out.append(
            KubeContext(
                name=name,
                cluster=cluster,
                server=server,
                namespace=ctx.get("namespace"),
                flavour=flavour_of(name, cluster, server),
                current=name == chosen,
                allowed=spec.allows(name, server),
            )
        )
    if chosen is None or chosen not in contexts:
        raise PermanentError(f"kubeconfig {paths[0]} has no context {chosen!r}")
    return out, chosen, paths[0]


def _refused(exc: BaseException) -> bool:
    """A refused connection means nothing listens there: retrying will not help."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else (seen.__cause__ or seen.__context__)
    return False


def _timed_out(exc: BaseException) -> bool:
    """A connect or read timeout anywhere in the chain (the official client's urllib3 timeouts
    come wrapped in ``TimeoutError``: ``_official_errors``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else (seen.__cause__ or seen.__context__)
    return False


@contextlib.contextmanager
def _official_errors() -> Iterator[None]:
    """The official client's errors in this module's shapes: ``ApiException`` as
    ``KubeApiError``, urllib3's timeouts as ``TimeoutError`` and its other transport errors as
    ``ConnectionError`` (each with the original as its cause, which ``_refused`` walks)."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    try:
        yield
    except ApiException as exc:  # ForbiddenException, NotFoundException ... are ApiExceptions too
        headers = {str(k): str(v) for k, v in (exc.headers or {}).items()}
        raise KubeApiError(exc.status or 0, str(exc.reason or ""), str(exc.body or ""), headers) from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise TimeoutError(str(exc)) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise ConnectionError(str(exc)) from exc


def _typed(func: Any) -> Callable[..., Any]:
    """A typed-client method whose errors come out as ``_official_errors`` makes them."""

    def call(*args: Any, **kwargs: Any) -> Any:
        with _official_errors():
            return func(*args, **kwargs)

    return call


def _call(func: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """Call the client under the shared retry policy; 4xx other than 429 are handed back."""

    def attempt() -> Any:
        try:
            return func(*args, **kwargs)
        except KubeApiError as exc:
            if exc.status == 429 or (exc.status or 0) >= 500:
                header = (exc.headers or {}).get("Retry-After", "")
                raise RetryableCall(
                    f"HTTP {exc.status}: {exc.reason}", float(header) if header.isdigit() else None
                ) from exc
            raise
        except (OSError, http.client.HTTPException) as exc:
            if _refused(exc):
                raise PermanentError(f"cluster not reachable: {exc}") from exc
            if _timed_out(exc):  # a hung apiserver stays hung: asking again only multiplies the wait
                raise PermanentError(f"{what}: the apiserver did not answer in time (timed out): {exc}") from exc
            raise RetryableCall(str(exc)) from exc

    return with_retries(attempt, what, LOG)


_CAMEL_EXCEPTIONS = {"cluster_ip": "clusterIP", "pod_ip": "podIP", "host_ip": "hostIP"}


class _Raw(dict[str, Any]):
    """A JSON object from the apiserver read with the typed client's attribute names
    (``obj.metadata.resource_version`` reads ``"resourceVersion"``; a missing field is None).

    The reads go around the generated API classes and their pydantic models on purpose:
    importing ``CoreV1Api`` and ``AppsV1Api`` costs ~1 s and validating every pod of a large
    namespace costs more, while the audit only needs a few fields of each object. Being a dict,
    a map field (labels, a Service's selector) passes to ``dict()`` unchanged."""

    def __getattr__(self, name: str) -> Any:
        head, *rest = name.split("_")
        key = _CAMEL_EXCEPTIONS.get(name) or head + "".join(part.title() for part in rest)
        return _wrap(self.get(key))


def _wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, _Raw):
        return _Raw(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class OfficialReader:
    """``KubeReader``'s GETs through the official client's transport and authentication, for
    the kubeconfigs ``kube_http`` does not speak (exec plugins, auth providers, proxies)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def _response(self, path: str, query: Sequence[tuple[str, Any]] | None, timeout: Timeout) -> Any:
        method, url, headers, _, _ = self.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=list(query or []),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, header_params=headers, _request_timeout=timeout)
        if not 200 <= response.status < 300:
            body = response.read().decode(errors="replace")
            raise KubeApiError(response.status, str(response.reason or ""), body, dict(response.getheaders() or {}))
        return response

    def get(self, path: str, query: Sequence[tuple[str, Any]] | None = None, timeout: Timeout = None) -> bytes:
        """The body of one GET."""
        with _official_errors():
            data: bytes = self._response(path, query, timeout).read()
            return data

    def stream(
        self, path: str, query: Sequence[tuple[str, Any]] | None = None, timeout: Timeout = None
    ) -> _OfficialStream:
        """The JSON objects of a streaming answer (a watch), one per line."""
        with _official_errors():
            return _OfficialStream(self._response(path, query, timeout).response)

    def clone(self) -> OfficialReader:
        """The same client (its connection pool serves many threads)."""
        return self

    def close(self) -> None:
        """Close the client's connection pool."""
        self.api.close()


class _OfficialStream:
    """A watch answer through urllib3: its JSON lines; ``close`` shuts the connection down."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self.closed_by_us = False

    def __iter__(self) -> Iterator[Any]:
        try:
            with _official_errors():
                while line := self._response.readline():
                    if line.strip():
                        yield json.loads(line)
        except (OSError, ValueError):
            if not self.closed_by_us:
                raise
        finally:
            self._response.release_conn()

    def close(self) -> None:
        """Shut the connection down from any thread."""
        self.closed_by_us = True
        with contextlib.suppress(Exception):
            self._response.shutdown()


Reader = KubeReader | OfficialReader


def _get(api: Reader, path: str, timeout: Any, query: list[tuple[str, Any]] | None = None) -> bytes:
    """One GET through the reader's transport and authentication; a non-2xx answer raises
    ``KubeApiError`` whichever transport it took, so retries and 403 handling are the same."""
    return api.get(path, query, timeout)


_WHITESPACE = " \t\n\r"


def iter_list_items(text: str, top: dict[str, Any] | None = None) -> Iterator[Any]:
    """The ``items`` of a list response one at a time, the rest of the top-level object skipped
    (or, given ``top``, kept there: the list's ``metadata.resourceVersion`` starts a watch).

    A namespace of 5,000 pods is tens of MB of JSON; parsed whole it is hundreds of MB of
    dicts at once. Decoding item by item, each converted and dropped before the next, keeps the
    audit's peak memory to the text plus what it keeps of each pod."""
    decoder = json.JSONDecoder()

    def skip(i: int) -> int:
        while i < len(text) and text[i] in _WHITESPACE:
            i += 1
        return i

    def expect(i: int, char: str) -> int:
        i = skip(i)
        if text[i : i + 1] != char:
            raise ValueError(f"list response: expected {char!r} at {i}")
        return skip(i + 1)

    i = expect(0, "{")
    while text[i : i + 1] != "}":
        key, i = decoder.raw_decode(text, i)
        i = expect(i, ":")
        if key == "items" and text[i : i + 1] == "[":
            i = skip(i + 1)
            while text[i : i + 1] != "]":
                item, i = decoder.raw_decode(text, i)
                yield item
                i = skip(i)
                if text[i : i + 1] == ",":
                    i = skip(i + 1)
            i += 1
        else:
            value, i = decoder.raw_decode(text, i)
            if top is not None:
                top[key] = value
        i = skip(i)
        if text[i : i + 1] == ",":
            i = skip(i + 1)


def _get_items(
    api: Any, path: str, timeout: Any, convert: Callable[[Any], T], query: list[tuple[str, Any]] | None = None
) -> list[T]:
    """The items of one list call, each read as attribute-readable JSON and converted at once."""
    text = _get(api, path, timeout, query).decode()
    return [convert(_Raw(item)) for item in iter_list_items(text)]


def _workload(kind: Literal["Deployment", "StatefulSet"], obj: Any) -> KubeWorkloadState:
    meta, spec, status = obj.metadata, obj.spec, obj.status
    return KubeWorkloadState(
        kind=kind,
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        resource_version=meta.resource_version,
        generation=meta.generation or 0,
        replicas=spec.replicas if spec.replicas is not None else 1,
        ready_replicas=(status.ready_replicas or 0) if status else 0,
        selector=dict((spec.selector.match_labels or {}) if spec.selector else {}),
        annotations=dict(meta.annotations or {}),
    )


def _waiting(statuses: list[Any]) -> Any:
    """The first container status that is waiting (its reason and message say why)."""
    return next((s for s in statuses if s.state and s.state.waiting), None)


def _seconds_since(stamp: Any, now: datetime) -> float | None:
    """Seconds from a status timestamp (a datetime, or RFC 3339 text) to ``now``."""
    if isinstance(stamp, str):
        try:
            stamp = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(stamp, datetime):
        return None
    aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return max(0.0, (now - aware).total_seconds())


_ENV_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_targets(spec: Any) -> tuple[DependencyRef, ...]:
    """The addresses a container's env (literal values only: a Secret or ConfigMap reference is
    never read) and command/args name, ``$(VAR)`` expanded as the kubelet expands it. Only hosts
    and ports leave this function."""
    env = [(e.name or "", e.value) for e in spec.env or [] if isinstance(e.value, str)]
    values = dict(env)
    argv = [
        _ENV_REF.sub(lambda m: values.get(m.group(1), m.group(0)), str(a))
        for a in (spec.command or []) + (spec.args or [])
    ]
    return tuple(dict.fromkeys((*refs_from_env(env), *refs_from_argv(argv, "args"))))


def _kube_container(spec: Any, status: Any, *, init: bool, now: datetime) -> KubeContainer:
    """One container as its spec declares it (ports, env and args addresses) and its status
    reports it (state, restarts, last termination)."""
    state = status.state if status is not None else None
    last = status.last_state.terminated if status is not None and status.last_state else None
    current: Any = None
    kind: Literal["waiting", "running", "terminated", "unknown"] = "unknown"
    if state is not None and state.waiting:
        kind, current = "waiting", state.waiting
    elif state is not None and state.running:
        kind, current = "running", state.running
    elif state is not None and state.terminated:
        kind, current = "terminated", state.terminated
    message = getattr(current, "message", None) if kind != "running" else None
    return KubeContainer(
        name=spec.name or "",
        init=init,
        image=spec.image or "",
        ready=bool(status.ready) if status is not None else False,
        restart_count=(status.restart_count or 0) if status is not None else 0,
        state=kind,
        reason=getattr(current, "reason", None) if kind != "running" else None,
        message=redact_text(message) if message else None,
        exit_code=current.exit_code if kind == "terminated" else None,
        last_exit_code=last.exit_code if last is not None else None,
        last_reason=last.reason if last is not None else None,
        last_message=redact_text(last.message) if last is not None and last.message else None,
        uptime_seconds=_seconds_since(current.started_at, now) if kind == "running" else None,
        ports=tuple(
            KubeContainerPort(port=p.container_port, name=p.name, protocol=p.protocol or "TCP")
            for p in spec.ports or []
            if p.container_port
        ),
        targets=container_targets(spec),
    )


def _containers(specs: list[Any], statuses: list[Any], *, init: bool, now: datetime) -> tuple[KubeContainer, ...]:
    by_name = {s.name: s for s in statuses}
    return tuple(_kube_container(c, by_name.get(c.name), init=init, now=now) for c in specs)


def _pod(obj: Any) -> PodState:
    """The pod as the kubelet and scheduler describe it: waiting reason and message, the last
    termination, conditions (PodScheduled, Ready), the images, every app and init container's own
    status, the ports they declare and the addresses their env and args name; all from the list
    call."""
    meta, spec, status = obj.metadata, obj.spec, obj.status
    now = datetime.now(UTC)
    statuses = list((status.container_statuses if status else None) or [])
    init_statuses = list((status.init_container_statuses if status else None) or [])
    waiting_status = _waiting(statuses) or _waiting(init_statuses)
    waiting = waiting_status.state.waiting if waiting_status is not None else None
    worst = max(statuses, key=lambda s: s.restart_count or 0, default=None)
    terminated = worst.last_state.terminated if worst and worst.last_state else None
    owners = meta.owner_references or []
    host_ports = tuple(sorted({p.host_port for c in spec.containers or [] for p in c.ports or [] if p.host_port}))
    conditions = tuple(
        PodCondition(
            type=c.type,
            status=c.status,
            reason=c.reason,
            message=redact_text(c.message) if c.message else None,
        )
        for c in (status.conditions if status else None) or []
    )
    return PodState(
        images=tuple(c.image or "" for c in spec.containers or []),
        waiting_message=redact_text(waiting.message) if waiting is not None and waiting.message else None,
        waiting_container=waiting_status.name if waiting_status is not None else None,
        last_message=redact_text(terminated.message) if terminated is not None and terminated.message else None,
        conditions=conditions,
        ready_containers=sum(1 for s in statuses if s.ready),
        total_containers=len(spec.containers or []),
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        phase=(status.phase if status else None) or "Unknown",
        labels=dict(meta.labels or {}),
        node=spec.node_name,
        ready=bool(statuses) and all(s.ready for s in statuses),
        waiting_reason=waiting.reason if waiting is not None else None,
        restart_count=max((s.restart_count or 0 for s in statuses), default=0),
        last_exit_code=terminated.exit_code if terminated else None,
        last_reason=terminated.reason if terminated else None,
        uptime_seconds=(
            _seconds_since(worst.state.running.started_at, now)
            if worst is not None and worst.state and worst.state.running
            else None
        ),
        owner=owners[0].name if owners else None,
        host_ports=host_ports,
        containers=_containers(list(spec.containers or []), statuses, init=False, now=now),
        init_containers=_containers(list(spec.init_containers or []), init_statuses, init=True, now=now),
        claims=tuple(
            v.persistent_volume_claim.claim_name
            for v in spec.volumes or []
            if v.persistent_volume_claim and v.persistent_volume_claim.claim_name
        ),
        reason=status.reason if status else None,
        message=redact_text(status.message) if status and status.message else None,
        pod_ip=status.pod_ip if status else None,
    )


def _service(obj: Any) -> KubeServiceState:
    spec = obj.spec
    return KubeServiceState(
        name=obj.metadata.name,
        namespace=obj.metadata.namespace,
        type=spec.type or "ClusterIP",
        cluster_ip=spec.cluster_ip,
        ports=tuple(
            KubeServicePort(
                port=p.port,
                target_port=str(p.target_port) if p.target_port is not None else None,
                node_port=p.node_port,
                protocol=p.protocol or "TCP",
            )
            for p in spec.ports or []
        ),
        selector=dict(spec.selector or {}),
    )


def _event(obj: Any) -> KubeEvent:
    """A core/v1 Event: what it is about, the reason and message its reporter wrote."""
    involved = obj.involved_object
    source = obj.source.component if obj.source and obj.source.component else (obj.reporting_component or "")
    last = obj.last_timestamp or obj.event_time or obj.first_timestamp or obj.metadata.creation_timestamp
    return KubeEvent(
        kind=involved.kind or "",
        name=involved.name or "",
        reason=obj.reason or "",
        message=redact_text(obj.message or ""),
        type=obj.type or "Normal",
        count=obj.count or 1,
        source=source,
        last_seen=last,
        field_path=involved.field_path or "",
    )


def _endpoints(obj: Any) -> KubeEndpoints:
    """How many addresses are ready and not ready behind a Service."""
    subsets = obj.subsets or []
    return KubeEndpoints(
        name=obj.metadata.name,
        ready=sum(len(s.addresses or []) for s in subsets),
        not_ready=sum(len(s.not_ready_addresses or []) for s in subsets),
        ports=tuple(sorted({p.port for s in subsets for p in s.ports or [] if p.port})),
    )


def _list(
    api: Any,
    path: str,
    verb: str,
    namespace: str,
    convert: Callable[[Any], T],
    *,
    query: list[tuple[str, Any]] | None = None,
    **seen: Any,
) -> list[T]:
    """A namespaced list call; a Forbidden answer is recorded (forbidden and coverage), never read
    as an empty list."""
    forbidden: list[str] = seen["forbidden"]
    coverage: list[Coverage] = seen["coverage"]
    timeout = seen["timeout"]
    kind = verb.removeprefix("list ")
    try:
        items: list[T] = _call(_get_items, verb, api, path, timeout, convert, query)
    except KubeApiError as exc:
        if exc.status == 403:
            forbidden.append(f"{verb} in {namespace}")
            coverage.append(
                Coverage(
                    runtime=Runtime.KUBERNETES,
                    kind=kind,
                    state="unobserved",
                    reason="forbidden",
                    detail=f"{verb} in {namespace} is forbidden for this identity",
                )
            )
            return []
        raise
    coverage.append(Coverage(runtime=Runtime.KUBERNETES, kind=kind, state="complete"))
    return items


WAIT_LOGS_AFTER_SECONDS = RECENT_START_SECONDS
"""An init container that has run this long without completing is waiting for something: its
own log says what (``waiting for orders-db:5432``)."""


@dataclass
class _LogReads:
    """What the log reads of one audit found out beyond the lines: reads the identity may not
    make, and nodes whose kubelet did not answer (their other pods are not asked again: a hung
    kubelet stays hung, and each ask would cost a whole read timeout)."""

    forbidden: list[str] = field(default_factory=list)
    hung_nodes: dict[str, str] = field(default_factory=dict)
    gaps: list[Coverage] = field(default_factory=list)


def _log_target(pod: PodState) -> tuple[str | None, bool] | None:
    """Which container's log tells why the pod fails, and whether it is the previous (crashed)
    instance's: a crash-looping container's last run, or an init container that has waited too
    long (its current run). None: no log is worth a request."""
    crashing = pod.crashing_container
    if crashing is not None:
        return crashing.name, True
    if pod.is_crash_looping:
        return None, True  # the pod says it loops; which container, its statuses did not say
    blocking = pod.blocking_init
    if (
        blocking is not None
        and blocking.state == "running"
        and (blocking.uptime_seconds or 0) > WAIT_LOGS_AFTER_SECONDS
    ):
        return blocking.name, False
    return None


def _pod_logs(api: Any, pod: PodState, tail: int, timeout: Any, reads: _LogReads) -> PodState:
    """The pod with the last lines of the container that tells why it fails. A read that fails
    (the node's kubelet hangs, the apiserver cannot reach it) marks only this pod partially
    observed, with the reason: the rest of the cluster is still seen."""
    target = _log_target(pod)
    if target is None:
        return pod
    container, previous = target
    which = f"{'previous ' if previous else ''}logs of {pod.name}" + (f" container {container}" if container else "")
    if pod.node and pod.node in reads.hung_nodes:
        return _log_gap(pod, which, reads.hung_nodes[pod.node], "timeout", reads)
    query: list[tuple[str, Any]] = [("tailLines", tail)]
    if previous:
        query.insert(0, ("previous", "true"))
    if container:
        query.insert(0, ("container", container))
    try:
        raw = _call(_get, which, api, f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/log", timeout, query)
    except KubeApiError as exc:
        if exc.status == 403:
            reads.forbidden.append(f"get pods/log in {pod.namespace}")
            return pod
        return _log_gap(pod, which, f"HTTP {exc.status}: {api_reason(exc)}", "error", reads)
    except StackwardenError as exc:  # a timeout, or retries of a 5xx exhausted
        timed_out = "timed out" in str(exc)
        reason: CoverageReason = "timeout" if timed_out else "error"
        if timed_out and pod.node:
            reads.hung_nodes[pod.node] = f"the kubelet of node {pod.node} did not answer an earlier log read in time"
        why = (
            f"timed out after {timeout[1]:g}s (node {pod.node or '?'}: its kubelet, or the apiserver's way to it, "
            "did not answer)"
            if timed_out
            else str(exc).removeprefix(f"{which}: ")
        )
        return _log_gap(pod, which, why, reason, reads)
    lines = tuple(redact_lines(line for line in raw.decode(errors="replace").splitlines() if line.strip()))
    return pod.model_copy(update={"log_tail": lines, "log_container": container})


def _log_gap(pod: PodState, which: str, why: str, reason: CoverageReason, reads: _LogReads) -> PodState:
    """Record a log read that failed, on the pod (its finding says so) and in the coverage."""
    text = f"{which} not read: {redact_text(why)}"
    LOG.warning("%s", text)
    reads.gaps.append(
        Coverage(runtime=Runtime.KUBERNETES, kind="pods/log", state="partial", reason=reason, detail=text)
    )
    return pod.model_copy(update={"unobserved": (*pod.unobserved, text)})


def _context_for(
    spec: KubernetesSpec, expected: str | None = None, *, acting: bool = False
) -> tuple[KubeContext, list[KubeContext], Path]:
    """The profile's context (or the kubeconfig's current one). ``expected`` is the context a
    plan was made in: acting elsewhere is refused, and so is ``acting`` in a context the
    allowlist (name and API server) does not allow."""
    contexts, chosen, path = read_contexts(spec)
    if expected is not None and expected != chosen:
        raise RefusedError(f"the kubeconfig's context is now {chosen!r}, the plan was made for {expected!r}")
    context = next(c for c in contexts if c.name == chosen)
    if acting and not spec.allows(context.name, context.server):
        # acting: the allowlist (context name AND, when set, API server URL) is checked again here
        raise RefusedError(
            f"context {context.name!r} (server {context.server or 'unknown'}) is not allowed by the profile's "
            "allowed_contexts/allowed_servers; nothing was changed"
        )
    return context, contexts, path


def _api_client(path: Path, context: str) -> Any:
    """The official ApiClient for ``context`` (imported here: writes, and kubeconfigs that
    ``kube_http`` does not speak), with our retry layer only."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    configuration = k8s.Configuration()
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path), context=context, client_configuration=configuration
        )
    except ConfigException as exc:
        raise PermanentError(f"kubeconfig {path}, context {context}: {exc}") from exc
    configuration.retries = False  # one retry layer: ours (adapters/retry.py)
    return k8s.ApiClient(configuration)


def _client_for(
    spec: KubernetesSpec, expected: str | None = None, *, acting: bool = False
) -> tuple[Any, KubeContext, list[KubeContext]]:
    """The official ApiClient for the profile's context (see ``_context_for``): what writes use."""
    context, contexts, path = _context_for(spec, expected, acting=acting)
    return _api_client(path, context.name), context, contexts


def reader_for(spec: KubernetesSpec) -> tuple[Reader, KubeContext, list[KubeContext]]:
    """What reads the profile's context: ``kube_http`` where it speaks the kubeconfig (no
    kubernetes client import), else the official client's transport."""
    context, contexts, path = _context_for(spec)
    endpoint = endpoint_for([p for p in kubeconfig_paths(spec) if p.is_file()], context.name)
    if endpoint is not None:
        try:
            return KubeReader(endpoint), context, contexts
        except (OSError, ValueError) as exc:
            raise PermanentError(f"kubeconfig {path}, context {context.name}: {exc}") from exc
    return OfficialReader(_api_client(path, context.name)), context, contexts


def request_timeout(timeouts: Timeouts | None) -> tuple[float, float]:
    """(connect, read) seconds for the client's ``_request_timeout``: the profile's, else defaults."""
    t = timeouts or Timeouts()
    return (t.connect_seconds, t.read_seconds)


def observe_kubernetes(
    spec: KubernetesSpec, log_tail: int = 40, timeouts: Timeouts | None = None
) -> KubeObservationResult:
    """Observe the profile's namespace in the chosen context; every call is bounded by the
    profile's connect/read timeouts and a timeout is not retried (a hung apiserver stays hung).

    Raises ``PermanentError`` (no kubeconfig, refused connection, 401, timeout) or
    ``TransientError`` (retries exhausted); the flow records either as an unreachable runtime.
    """
    timeout = request_timeout(timeouts)
    api, context, contexts = reader_for(spec)
    forbidden: list[str] = []
    coverage: list[Coverage] = []
    ns = spec.namespace
    try:
        try:
            version = json.loads(_call(_get, "server version", api, "/version", timeout)).get("gitVersion")
        except KubeApiError as exc:
            if exc.status == 401:
                raise PermanentError(f"cluster {context.server} rejected the credentials (401)") from exc
            version = None
        seen: dict[str, Any] = {"forbidden": forbidden, "timeout": timeout, "coverage": coverage}
        apps, core = f"/apis/apps/v1/namespaces/{ns}", f"/api/v1/namespaces/{ns}"
        warnings = [("fieldSelector", "type=Warning")]
        deployments = _list(
            api, f"{apps}/deployments", "list deployments", ns, partial(_workload, "Deployment"), **seen
        )
        statefulsets = _list(
            api, f"{apps}/statefulsets", "list statefulsets", ns, partial(_workload, "StatefulSet"), **seen
        )
        pods = _list(api, f"{core}/pods", "list pods", ns, _pod, **seen)
        services = _list(api, f"{core}/services", "list services", ns, _service, **seen)
        events = _list(api, f"{core}/events", "list events", ns, _event, query=warnings, **seen)
        endpoints = _list(api, f"{core}/endpoints", "list endpoints", ns, _endpoints, **seen)
        reads = _LogReads()
        pods = [_pod_logs(api, p, log_tail, timeout, reads) for p in pods]
        forbidden += reads.forbidden
    except KubeApiError as exc:
        raise PermanentError(f"Kubernetes API error in {ns}: {exc.status} {exc.reason}") from exc
    finally:
        api.close()
    observation = kube_observation(
        context=context,
        contexts=contexts,
        namespace=ns,
        workloads=[*deployments, *statefulsets],
        pods=pods,
        services=services,
        events=events,
        endpoints=endpoints,
        forbidden=forbidden,
        coverage=coverage,
        log_gaps=reads.gaps,
    )
    return KubeObservationResult(
        status=RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=True, endpoint=context.server, version=version),
        observation=observation,
    )


def scale_workload(
    spec: KubernetesSpec,
    *,
    context: str | None,
    kind: str,
    name: str,
    uid: str,
    replicas: int,
    expected_generation: int | None,
    timeouts: Timeouts | None = None,
) -> str:
    """Scale one workload after re-reading it: same uid (not recreated) and, for planned steps,
    the same generation (spec unchanged since the plan). Scaling to 0 records the previous count
    in the ``stackwarden.io/previous-replicas`` annotation. Idempotent."""
    from kubernetes import client as k8s

    timeout = request_timeout(timeouts)
    api, _, _ = _client_for(spec, context, acting=True)
    apps = k8s.AppsV1Api(api)
    ns = spec.namespace
    read, patch = (
        (_typed(apps.read_namespaced_deployment), _typed(apps.patch_namespaced_deployment))
        if kind == "Deployment"
        else (_typed(apps.read_namespaced_stateful_set), _typed(apps.patch_namespaced_stateful_set))
    )
    try:
        try:
            current = _call(read, f"read {kind} {name}", name, ns, _request_timeout=timeout)
        except KubeApiError as exc:
            if exc.status == 404:
                raise RefusedError(f"{kind} {ns}/{name} no longer exists; replan") from exc
            raise
        meta = current.metadata
        if meta.uid != uid:
            raise RefusedError(f"{kind} {ns}/{name} was recreated (uid {meta.uid}, planned {uid}); replan")
        now = current.spec.replicas if current.spec.replicas is not None else 1
        if now == replicas:
            return Unchanged(f"already at {replicas} replicas")
        if expected_generation is not None and (meta.generation or 0) != expected_generation:
            raise RefusedError(
                f"{kind} {ns}/{name} changed since the plan (generation {meta.generation}, planned "
                f"{expected_generation}); replan"
            )
        body: dict[str, Any] = {"metadata": {"resourceVersion": meta.resource_version}, "spec": {"replicas": replicas}}
        if replicas == 0 and now > 0:
            body["metadata"]["annotations"] = {PREVIOUS_REPLICAS: str(now)}
        retried = False
        while True:
            try:
                _call(patch, f"scale {kind} {name}", name, ns, body, _request_timeout=timeout)
                return f"scaled {now} -> {replicas}" + (
                    f" (recorded {PREVIOUS_REPLICAS}={now})" if replicas == 0 else ""
                )
            except KubeApiError as exc:
                if exc.status == 403:
                    raise RefusedError(f"forbidden: patch of {kind} {ns}/{name}: {api_reason(exc)}") from exc
                if exc.status != 409:
                    raise
                again = _call(read, f"read {kind} {name}", name, ns, _request_timeout=timeout)
                if again.metadata.uid == uid and again.spec.replicas == replicas:
                    return f"scaled {now} -> {replicas} (confirmed after a conflicting retry)"
                # only its status moved (a controller's write: same uid, same generation): patched
                # again once with the new resourceVersion; a second conflict, or a changed spec, refuses
                status_only = again.metadata.uid == uid and (again.metadata.generation or 0) == (meta.generation or 0)
                if retried or not status_only:
                    raise RefusedError(f"{kind} {ns}/{name} changed while scaling; replan") from exc
                retried = True
                body["metadata"]["resourceVersion"] = again.metadata.resource_version
    finally:
        api.close()


def api_reason(exc: KubeApiError, limit: int = 300) -> str:
    """The apiserver's own words for a refusal (RBAC, or an admission webhook or policy that RBAC
    and SelfSubjectAccessReview cannot foresee), else the HTTP reason; cut to ``limit``."""
    try:
        message = str(json.loads(exc.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    text = message or str(exc.reason or f"HTTP {exc.status}")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def access_denials(
    spec: KubernetesSpec,
    context: str | None,
    checks: list[tuple[str, str, str, str]],
    timeouts: Timeouts | None = None,
) -> list[str]:
    """SelfSubjectAccessReviews for ``(verb, group, resource, name)``: what the identity may not
    do, asked before the first change so a 403 cannot strike halfway through a switch.

    Writes nothing but the review itself (a create of a virtual object the apiserver keeps
    nowhere). Raises like ``observe_kubernetes`` when the cluster cannot be asked.
    """
    from kubernetes import client as k8s

    timeout = request_timeout(timeouts)
    api, _, _ = _client_for(spec, context)
    auth = k8s.AuthorizationV1Api(api)
    denied = []
    try:
        for verb, group, resource, name in checks:
            review = k8s.V1SelfSubjectAccessReview(
                spec=k8s.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=k8s.V1ResourceAttributes(
                        namespace=spec.namespace, verb=verb, group=group, resource=resource, name=name
                    )
                )
            )
            answer = _call(
                _typed(auth.create_self_subject_access_review),
                f"access review {verb} {resource}",
                review,
                _request_timeout=timeout,
            )
            if not answer.status.allowed:
                why = f" ({answer.status.reason})" if answer.status.reason else ""
                denied.append(f"may not {verb} {resource}/{name} in {spec.namespace}{why}")
    except KubeApiError as exc:
        raise PermanentError(f"access review in {spec.namespace} failed: {exc.status} {exc.reason}") from exc
    finally:
        api.close()
    return denied
