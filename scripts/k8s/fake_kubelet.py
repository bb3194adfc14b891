"""A fake kubelet: plays the node's role in a kubelet-less test cluster.

Why: the loopback control plane from ``controlplane.py`` has no kubelet and
no container runtime, yet code under test needs pods that are scheduled,
report realistic container states (Running, CrashLoopBackOff, ...) and serve
logs through the apiserver (``kubectl logs`` / ``read_namespaced_pod_log``).
This module provides exactly the parts of the kubelet's API contract that the
apiserver and controllers observe:

* a Node object (only address: InternalIP 127.0.0.1) whose
  ``status.daemonEndpoints.kubeletEndpoint.Port`` points at a small HTTPS
  server answering ``GET /containerLogs/{ns}/{pod}/{container}``;
* a Lease in ``kube-node-lease`` and the Ready condition, renewed every
  ~10 s so the node-lifecycle controller keeps the node Ready;
* "scheduling": unscheduled pods are bound to the node (there is no
  kube-scheduler either);
* pod status written through the ``status`` subresource according to a
  behaviour the test registers (by pod-name prefix and/or label selector);
* Events worded as a real kubelet and scheduler word them: ``Pulling``/``Failed``
  ("Failed to pull image ...", "Error: ErrImagePull")/``BackOff`` for an image
  that cannot be pulled, ``Failed`` "Error: couldn't find key ... in Secret ..."
  for a config error, ``Unhealthy`` "Readiness probe failed: ..." for a failing
  readiness probe, ``BackOff`` "Back-off restarting failed container ..." for a
  crash loop; and for an unschedulable pod (never bound) what kube-scheduler
  writes: ``PodScheduled=False``/``Unschedulable`` with "0/1 nodes are
  available: ..." and a ``FailedScheduling`` event (events.k8s.io/v1);
* pods being deleted on the node are finished with grace period 0.

Only stdlib, the ``openssl`` CLI (for the serving cert) and the official
``kubernetes`` client are used.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from kubernetes import client as k8s  # type: ignore[import-untyped,unused-ignore]
from kubernetes import config as k8s_config  # type: ignore[import-untyped,unused-ignore]
from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped,unused-ignore]

log = logging.getLogger("stackwarden.fake_kubelet")

KUBELET_VERSION = "v1.20.2"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40


# ---------------------------------------------------------------- behaviours
@dataclass(frozen=True)
class Running:
    """Containers running and ready (the default for unmatched pods).

    ``restart_count`` > 0 together with ``previous_logs`` lets a test model a
    pod that crashed earlier and is healthy now.  ``ready=False`` models a
    running container failing its readiness probe.
    """

    logs: str = ""
    restart_count: int = 0
    previous_logs: str | None = None
    ready: bool = True
    readiness_failure: str | None = None
    """With ``ready=False``: what the failing readiness probe said, e.g. ``HTTP probe failed
    with statuscode: 503``; written as the kubelet's ``Unhealthy`` event "Readiness probe
    failed: ..."."""


@dataclass(frozen=True)
class CrashLoopBackOff:
    """Container keeps crashing: phase Running, ready False, waiting
    CrashLoopBackOff, ``lastState.terminated`` with ``exit_code``/``reason``.

    ``logs`` are served for both ``previous=true`` and plain log requests,
    as the real kubelet falls back to the last terminated container while
    the current one is waiting.
    """

    exit_code: int = 1
    restart_count: int = 5
    reason: str = "Error"
    logs: str = ""
    message: str = ""
    liveness_failure: str | None = None
    """What a failing liveness probe said (the kubelet kills the container for it): written as
    ``Unhealthy`` "Liveness probe failed: ..." and ``Killing`` "... failed liveness probe, will be
    restarted"."""


@dataclass(frozen=True)
class Waiting:
    """Container not started, e.g. ``ImagePullBackOff`` or
    ``CreateContainerConfigError``: phase Pending, waiting with ``reason``."""

    reason: str = "ContainerCreating"
    message: str = ""


@dataclass(frozen=True)
class Terminated:
    """All containers exited (for Jobs / restartPolicy Never/OnFailure):
    phase Succeeded if ``exit_code`` == 0 else Failed."""

    exit_code: int = 0
    reason: str = "Completed"
    logs: str = ""


@dataclass(frozen=True)
class ImagePullFailure:
    """The image cannot be pulled: waiting ``ErrImagePull`` (with the runtime's error) or,
    after the first retries, ``ImagePullBackOff`` ("Back-off pulling image ..."), and the
    kubelet's Pulling/Failed/BackOff events. ``{image}`` in ``error`` is the pod's image."""

    error: str = (
        'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
        'failed to resolve reference "{image}": {image}: not found'
    )
    backoff: bool = True


@dataclass(frozen=True)
class ConfigError:
    """``CreateContainerConfigError``: a referenced ConfigMap/Secret (or key) is missing.
    ``message`` is the kubelet's, e.g. ``couldn't find key DB_PASSWORD in Secret ns/app``
    (``{namespace}`` is replaced by the pod's namespace)."""

    message: str = "couldn't find key password in Secret {namespace}/app-secrets"


@dataclass(frozen=True)
class Unschedulable:
    """No node fits: the pod is never bound; the scheduler writes ``PodScheduled=False``
    (reason ``Unschedulable``) and a ``FailedScheduling`` event with its message."""

    message: str = (
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )


@dataclass(frozen=True)
class InitCrashLoop:
    """An init container keeps crashing: it waits in CrashLoopBackOff with ``lastState.terminated``,
    the init containers before it completed, the app containers wait in PodInitializing, the pod
    is Pending (``Init:CrashLoopBackOff``). ``container`` None: the first init container."""

    container: str | None = None
    exit_code: int = 1
    restart_count: int = 4
    logs: str = ""


@dataclass(frozen=True)
class InitWaiting:
    """An init container runs and never completes (it waits for something): the pod stays
    ``Init:0/N``, its app containers in PodInitializing. ``logs`` are its current log;
    ``running_for_seconds`` backdates its start."""

    container: str | None = None
    logs: str = ""
    running_for_seconds: float = 120.0


@dataclass(frozen=True)
class Stuck:
    """The pod stays in ContainerCreating and the kubelet (or the attach-detach controller) says
    why in a Warning event: ``FailedCreatePodSandBox``, ``FailedMount`` or ``FailedAttachVolume``."""

    reason: str = "FailedMount"
    message: str = ""

    def text(self) -> str:
        return self.message or STUCK_MESSAGES[self.reason]


STUCK_MESSAGES = {
    "FailedCreatePodSandBox": (
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "
        '"4f2c9e1b": plugin type="bridge" failed (add): failed to allocate for range 0: no IP addresses '
        "available in range set: 10.244.0.1-10.244.0.254"
    ),
    "FailedMount": 'MountVolume.SetUp failed for volume "config" : configmap "orders-config" not found',
    "FailedAttachVolume": (
        'AttachVolume.Attach failed for volume "pvc-3f1c0b7e-2a4d-4e0b-9f55-61c0d0a1b2c3" : rpc error: code = '
        "Internal desc = Could not attach volume to node: volume is still attached to another node"
    ),
}


@dataclass(frozen=True)
class NodeNotReady:
    """The pod's node stopped reporting: the node lifecycle controller marks the pod not ready and
    writes ``NodeNotReady`` "Node is not ready"; its containers still show running."""


@dataclass(frozen=True)
class Evicted:
    """The kubelet evicts the first ``count`` matching pods (phase Failed, reason Evicted, the
    kubelet's ``Evicted`` event); later pods (the ReplicaSet's replacements) get ``then``."""

    message: str = (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 61Mi. Container api was "
        "using 1843Mi, request is 256Mi, has larger consumption of memory."
    )
    count: int = 1
    then: Any = None


Behaviour: TypeAlias = (
    Running
    | CrashLoopBackOff
    | Waiting
    | Terminated
    | ImagePullFailure
    | ConfigError
    | Unschedulable
    | InitCrashLoop
    | InitWaiting
    | Stuck
    | NodeNotReady
    | Evicted
)


@dataclass
class _Rule:
    behaviour: Behaviour
    namespace: str | None
    name_prefix: str | None
    selector: dict[str, str] | None
    seq: int

    def matches(self, pod: Mapping[str, Any]) -> bool:
        meta = pod.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name_prefix is not None and not str(meta.get("name", "")).startswith(self.name_prefix):
            return False
        if self.selector is not None:
            labels = meta.get("labels") or {}
            if any(labels.get(k) != v for k, v in self.selector.items()):
                return False
        return True


@dataclass
class _LogEntry:
    namespace: str | None
    pod_prefix: str
    container: str | None
    text: str
    previous: bool | None


@dataclass
class _PodRecord:
    """What we remember per pod uid (start times must stay stable)."""

    started: str
    written_key: str = ""
    events: set[tuple[str, str]] | None = None


def _raw(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a generated client method and return the decoded JSON reply.

    Why: plain dicts in and out avoid the generated models' (de)serialization,
    which drops fields it does not know and fails on some replies (e.g. the
    Status returned by pods/binding).
    """
    resp = method(*args, _preload_content=False, **kwargs)
    data = resp.data
    return json.loads(data) if data else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event_suffix() -> str:
    """Event names are ``<object>.<16 hex>``, as client-go's recorder makes them."""
    return f"{time.time_ns():x}"[-16:].rjust(16, "0")


def parse_selector(selector: str | Mapping[str, str]) -> dict[str, str]:
    """Equality-based label selector ``"a=b,c=d"`` (or a mapping) as dict."""
    if isinstance(selector, Mapping):
        return dict(selector)
    out: dict[str, str] = {}
    for raw in selector.split(","):
        part = raw.strip()
        if not part:
            continue
        key, sep, value = part.replace("==", "=").partition("=")
        if not sep or key.endswith("!"):
            raise ValueError(f"only equality selectors are supported, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _tail_text(text: str, tail_lines: int | None, limit_bytes: int | None) -> str:
    if tail_lines is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail_lines:]) if tail_lines > 0 else ""
    if limit_bytes is not None and limit_bytes >= 0:
        text = text.encode()[:limit_bytes].decode(errors="ignore")
    return text


class FakeKubelet:
    """Registers a node and drives pods on it; see module docstring.

    ``api`` is an ``kubernetes.client.ApiClient`` or a kubeconfig path (a
    privileged identity, e.g. ``ControlPlane.admin_kubeconfig``).

    Public API: ``start()``, ``stop()`` (also a context manager),
    ``set_behaviour(behaviour, name_prefix=, selector=, namespace=)``,
    ``clear_behaviours()``, ``set_logs(ns, pod_prefix, container, text,
    previous=None)``, ``sync()`` (one reconcile pass, synchronous);
    attributes ``node_name``, ``port`` (HTTPS log server, after start).
    """

    def __init__(
        self,
        api: k8s.ApiClient | str | Path,
        node_name: str = "stackwarden-fake-node",
        *,
        poll_interval: float = 0.5,
        heartbeat_interval: float = 10.0,
        bind_unscheduled: bool = True,
        delete_node_on_stop: bool = False,
        node_labels: Mapping[str, str] | None = None,
        hang_logs: bool = False,
    ) -> None:
        if isinstance(api, (str, Path)):
            factory: Callable[..., Any] = k8s_config.new_client_from_config
            api = factory(config_file=str(api))
        assert isinstance(api, k8s.ApiClient)
        self.api_client: k8s.ApiClient = api
        self.core = k8s.CoreV1Api(api)
        self.coordination = k8s.CoordinationV1Api(api)
        self.node_name = node_name
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.bind_unscheduled = bind_unscheduled
        self.delete_node_on_stop = delete_node_on_stop
        self.node_labels = dict(node_labels or {})
        self.hang_logs = hang_logs
        """A kubelet that hangs on log reads (until stopped): what a node with a stuck kubelet does."""
        self.port = 0
        self._evicted: dict[int, set[str]] = {}

        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._logs: list[_LogEntry] = []
        self._pods: dict[str, _PodRecord] = {}
        self._pod_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._seq = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: http.server.ThreadingHTTPServer | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._node_transition = _now()
        self.errors: list[str] = []  # last few background errors, for debugging

    # ------------------------------------------------------------ configure
    def set_behaviour(
        self,
        behaviour: Behaviour,
        *,
        name_prefix: str | None = None,
        selector: str | Mapping[str, str] | None = None,
        namespace: str | None = None,
    ) -> None:
        """Register how matching pods behave; the latest matching rule wins.

        With neither ``name_prefix`` nor ``selector`` the rule matches every
        pod (in ``namespace`` if given), i.e. it changes the default.
        Already-running pods switch behaviour on the next poll.
        """
        with self._lock:
            self._seq += 1
            self._rules.append(
                _Rule(
                    behaviour=behaviour,
                    namespace=namespace,
                    name_prefix=name_prefix,
                    selector=parse_selector(selector) if selector is not None else None,
                    seq=self._seq,
                )
            )

    def clear_behaviours(self) -> None:
        """Forget all rules and log overrides (pods go back to Running)."""
        with self._lock:
            self._rules.clear()
            self._logs.clear()

    def set_logs(
        self,
        namespace: str | None,
        pod_prefix: str,
        container: str | None,
        text: str,
        *,
        previous: bool | None = None,
    ) -> None:
        """Serve ``text`` as the logs of matching containers.

        ``container=None`` matches any container, ``namespace=None`` any
        namespace; ``previous`` restricts to ``previous=true``/``false``
        requests (None: both).  Overrides logs given in the behaviour.
        """
        with self._lock:
            self._logs.append(_LogEntry(namespace, pod_prefix, container, text, previous))

    def behaviour_for(self, pod: Mapping[str, Any]) -> Behaviour:
        """The behaviour applying to ``pod`` (a pod as a JSON dict)."""
        with self._lock:
            for rule in reversed(self._rules):
                if rule.matches(pod):
                    return self._evict_once(rule, pod)
        return Running()

    def _evict_once(self, rule: _Rule, pod: Mapping[str, Any]) -> Behaviour:
        """An Evicted rule evicts its first ``count`` pods; the pods after them get its ``then``."""
        b = rule.behaviour
        if not isinstance(b, Evicted):
            return b
        uid = str(pod.get("metadata", {}).get("uid", ""))
        evicted = self._evicted.setdefault(rule.seq, set())
        if uid in evicted or len(evicted) < b.count:
            evicted.add(uid)
            return b
        then: Behaviour = b.then if b.then is not None else Running()
        return then

    # ----------------------------------------------------------- lifecycle
    def start(self) -> FakeKubelet:
        """Start the log server, register the node and start background loops."""
        if self._threads:
            raise RuntimeError("FakeKubelet already started")
        self._stop.clear()
        self._start_server()
        self._heartbeat()  # register synchronously: pods can be bound right away
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._pod_loop, "pods")):
            t = threading.Thread(target=target, name=f"fake-kubelet-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """Stop loops and the log server; optionally delete the Node."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)
        self._threads.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if self.delete_node_on_stop:
            try:
                self.core.delete_node(self.node_name)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def __enter__(self) -> FakeKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record_error(self, where: str, exc: BaseException) -> None:
        msg = f"{where}: {exc!r}"[:500]
        log.warning("fake kubelet %s", msg)
        self.errors.append(msg)
        del self.errors[:-20]

    # ---------------------------------------------------------- log server
    def _start_server(self) -> None:
        """HTTPS on 127.0.0.1 with a throw-away self-signed cert; the
        apiserver does not verify kubelet certs unless configured to."""
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-kubelet-")
        tmp = Path(self._tmp.name)
        proc = subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "365",
                "-subj",
                f"/CN={self.node_name}",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(tmp / "kubelet.key"),
                "-out",
                str(tmp / "kubelet.crt"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"openssl failed creating kubelet cert: {proc.stderr}")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tmp / "kubelet.crt"), str(tmp / "kubelet.key"))

        kubelet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("log server: " + format, *args)

            def do_GET(self) -> None:
                status, body = kubelet._handle_get(self.path)
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (OSError, ssl.SSLError):
                    pass  # the caller gave up waiting (a hung kubelet's read timed out)

            def do_POST(self) -> None:
                """``/portForward/{ns}/{pod}``: accept the stream upgrade as a kubelet does, then
                hold the connection (no stream is ever served). Enough for ``kubectl
                port-forward`` to start listening on its local port, which is what a host
                observation sees of a port-forward."""
                if (
                    not self.path.startswith("/portForward/")
                    or "upgrade" not in self.headers.get("Connection", "").lower()
                ):
                    self.send_error(404)
                    return
                protocol = self.headers.get("X-Stream-Protocol-Version", "portforward.k8s.io").split(",")[0].strip()
                self.send_response(101, "Switching Protocols")
                self.send_header("Connection", "Upgrade")
                self.send_header("Upgrade", "SPDY/3.1")
                self.send_header("X-Stream-Protocol-Version", protocol)
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                self.connection.settimeout(1.0)
                while not kubelet._stop.is_set():
                    try:
                        if not self.connection.recv(4096):
                            return
                    except (TimeoutError, ssl.SSLWantReadError):
                        continue
                    except (OSError, ssl.SSLError):
                        return

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = int(server.server_address[1])
        t = threading.Thread(
            target=server.serve_forever,
            name="fake-kubelet-https",
            kwargs={"poll_interval": 0.2},
            daemon=True,
        )
        t.start()

    def _handle_get(self, raw_path: str) -> tuple[int, str]:
        url = urllib.parse.urlsplit(raw_path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["healthz"]:
            return 200, "ok"
        if len(parts) != 4 or parts[0] != "containerLogs":
            return 404, "404 page not found\n"
        if self.hang_logs:
            self._stop.wait()  # accepts, never answers: the caller's read timeout ends it
            return 503, "kubelet stopped\n"
        _, ns, pod_name, container = parts
        query = urllib.parse.parse_qs(url.query)

        def q(name: str) -> str | None:
            vals = query.get(name)
            return vals[-1] if vals else None

        previous = (q("previous") or "").lower() in ("true", "1")
        tail = q("tailLines")
        limit = q("limitBytes")
        with self._lock:
            pod = self._pod_cache.get((ns, pod_name))
        if pod is None:
            try:
                pod = _raw(self.core.read_namespaced_pod, pod_name, ns)
            except ApiException:
                return 404, f'pod "{pod_name}" not found in namespace "{ns}"\n'
        assert pod is not None
        names = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
        names += [c["name"] for c in pod.get("spec", {}).get("initContainers", []) or []]
        if container not in names:
            return 400, f'container "{container}" in pod "{pod_name}" is not valid\n'
        text = self._log_text(pod, container, previous)
        if text is None:
            return 400, (
                f'previous terminated container "{container}" in pod "{pod_name}" not found\n'
                if previous
                else f'container "{container}" in pod "{pod_name}" is waiting to start\n'
            )
        text = _tail_text(text, int(tail) if tail else None, int(limit) if limit else None)
        if (q("timestamps") or "").lower() == "true":
            stamp = _now_micro()
            text = "".join(f"{stamp} {line}" for line in text.splitlines(keepends=True))
        return 200, text

    def _log_text(self, pod: Mapping[str, Any], container: str, previous: bool) -> str | None:
        """Log text for a container, or None where a kubelet would refuse."""
        meta = pod.get("metadata", {})
        ns, name = meta.get("namespace"), str(meta.get("name", ""))
        with self._lock:
            for entry in reversed(self._logs):
                if entry.namespace is not None and entry.namespace != ns:
                    continue
                if not name.startswith(entry.pod_prefix):
                    continue
                if entry.container is not None and entry.container != container:
                    continue
                if entry.previous is not None and entry.previous != previous:
                    continue
                return entry.text
        b = self.behaviour_for(pod)
        if isinstance(b, Running):
            if previous:
                return b.previous_logs
            return b.logs
        if isinstance(b, (CrashLoopBackOff, Terminated)):
            return b.logs
        if isinstance(b, InitCrashLoop) and container == _init_target(pod, b.container):
            return b.logs
        if isinstance(b, InitWaiting) and container == _init_target(pod, b.container) and not previous:
            return b.logs
        if isinstance(b, NodeNotReady) and not previous:
            return ""
        return None  # Waiting: no container has run yet

    # ------------------------------------------------------------ node/lease
    def _node_body(self) -> dict[str, Any]:
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            **self.node_labels,
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": labels},
            "spec": {},
            "status": self._node_status(),
        }

    def _node_status(self) -> dict[str, Any]:
        now = _now()
        resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}

        def cond(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._node_transition,
            }

        uid_hash = hashlib.sha256(self.node_name.encode()).hexdigest()
        return {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {
                "machineID": uid_hash[:32],
                "systemUUID": uid_hash[32:64],
                "bootID": uid_hash[:32],
                "kernelVersion": "fake",
                "osImage": "stackwarden fake kubelet",
                "containerRuntimeVersion": "fake://1.0.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    def _heartbeat(self) -> None:
        """Create/refresh the Node status and renew the Lease.

        Retries on 409: right after registration the node-lifecycle and taint
        controllers update the Node too, so a read-modify-write can be stale.
        """
        for attempt in range(5):
            try:
                node = _raw(self.core.read_node, self.node_name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                _raw(self.core.create_node, self._node_body())
                node = _raw(self.core.read_node, self.node_name)
            node["status"] = {**node.get("status", {}), **self._node_status()}
            try:
                _raw(self.core.replace_node_status, self.node_name, node)
                break
            except ApiException as exc:
                if exc.status != 409 or attempt == 4:
                    raise
                time.sleep(0.1)
        self._renew_lease(node)

    def _renew_lease(self, node: Mapping[str, Any]) -> None:
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node_name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.node_name,
                        "uid": node["metadata"]["uid"],
                    }
                ],
            },
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": _now_micro(),
            },
        }
        try:
            current = _raw(self.coordination.read_namespaced_lease, self.node_name, LEASE_NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise
            _raw(self.coordination.create_namespaced_lease, LEASE_NAMESPACE, body)
            return
        current["spec"] = body["spec"]
        _raw(self.coordination.replace_namespaced_lease, self.node_name, LEASE_NAMESPACE, current)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                self._heartbeat()
            except Exception as exc:
                self._record_error("heartbeat", exc)

    # ----------------------------------------------------------------- pods
    def _pod_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:
                self._record_error("pod sync", exc)
            self._stop.wait(self.poll_interval)

    def sync(self) -> None:
        """One reconcile pass: bind, finish deletions, write statuses.

        Runs every ``poll_interval`` in the background; tests may also call it
        to avoid waiting (passes are serialized).
        """
        with self._sync_lock:
            self._sync()

    def _sync(self) -> None:
        if self.bind_unscheduled:
            pending = _raw(self.core.list_pod_for_all_namespaces, field_selector="spec.nodeName=")
            for pod in pending.get("items", []):
                if pod["metadata"].get("deletionTimestamp"):
                    continue
                behaviour = self.behaviour_for(pod)
                if isinstance(behaviour, Unschedulable):
                    try:
                        self._unschedulable(pod, behaviour)
                    except ApiException as exc:
                        # 403: the namespace is being terminated and refuses new Events; its
                        # pods go with it, as a real scheduler's would.
                        if exc.status not in (403, 404, 409):
                            self._record_error(f"schedule {pod['metadata']['name']}", exc)
                else:
                    self._bind(pod)
        mine = _raw(self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={self.node_name}")
        seen: set[str] = set()
        cache: dict[tuple[str, str], dict[str, Any]] = {}
        for pod in mine.get("items", []):
            meta = pod["metadata"]
            seen.add(meta["uid"])
            cache[(meta["namespace"], meta["name"])] = pod
            try:
                if meta.get("deletionTimestamp"):
                    self._finish_deletion(pod)
                else:
                    self._update_status(pod)
            except ApiException as exc:
                if exc.status not in (404, 409):  # gone / stale: retried next pass
                    self._record_error(f"pod {meta['namespace']}/{meta['name']}", exc)
        with self._lock:
            self._pod_cache = cache
            for uid in list(self._pods):
                if uid not in seen:
                    del self._pods[uid]

    def _record(self, uid: str) -> _PodRecord:
        with self._lock:
            record = self._pods.get(uid)
            if record is None:
                record = _PodRecord(started=_now())
                self._pods[uid] = record
            return record

    def _unschedulable(self, pod: dict[str, Any], b: Unschedulable) -> None:
        """What kube-scheduler writes for a pod no node fits: condition and event."""
        meta = pod["metadata"]
        record = self._record(meta["uid"])
        key = repr(b)
        if record.written_key != key:
            pod["status"] = {
                "phase": "Pending",
                "qosClass": "BestEffort",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "lastProbeTime": None,
                        "lastTransitionTime": record.started,
                        "reason": "Unschedulable",
                        "message": b.message,
                    }
                ],
            }
            _raw(self.core.replace_namespaced_pod_status, meta["name"], meta["namespace"], pod)
            record.written_key = key
        self._scheduler_event(pod, record, b.message)

    def _scheduler_event(self, pod: Mapping[str, Any], record: _PodRecord, message: str) -> None:
        """FailedScheduling through events.k8s.io/v1, as kube-scheduler reports it."""
        meta = pod["metadata"]
        if record.events is None:
            record.events = set()
        if ("FailedScheduling", message) in record.events:
            return
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{_event_suffix()}", "namespace": meta["namespace"]},
            "eventTime": _now_micro(),
            "reportingController": "default-scheduler",
            "reportingInstance": "default-scheduler-stackwarden-fake",
            "action": "Scheduling",
            "reason": "FailedScheduling",
            "regarding": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "note": message,
            "type": "Warning",
        }
        _raw(k8s.EventsV1Api(self.api_client).create_namespaced_event, meta["namespace"], body)
        record.events.add(("FailedScheduling", message))

    def _kubelet_event(
        self,
        pod: Mapping[str, Any],
        record: _PodRecord,
        container: str | None,
        *,
        type_: str,
        reason: str,
        message: str,
        component: str = "kubelet",
        init: bool = False,
    ) -> None:
        """A core/v1 Event about the pod, or one (init) container of it, from this kubelet or the
        controller named by ``component`` (written once)."""
        meta = pod["metadata"]
        if record.events is None:
            record.events = set()
        if (reason, message) in record.events:
            return
        now = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{_event_suffix()}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion", ""),
                **(
                    {"fieldPath": f"spec.{'initContainers' if init else 'containers'}{{{container}}}"}
                    if container
                    else {}
                ),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component, **({"host": self.node_name} if component == "kubelet" else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": self.node_name if component == "kubelet" else f"{component}-fake",
        }
        _raw(self.core.create_namespaced_event, meta["namespace"], body)
        record.events.add((reason, message))

    def _events_for(self, pod: Mapping[str, Any], b: Behaviour, record: _PodRecord) -> None:
        """The kubelet's events for the behaviour, worded as a real kubelet words them."""
        meta = pod["metadata"]
        for c in pod.get("spec", {}).get("containers", []):
            name, image = c["name"], c.get("image", "")
            events: list[tuple[str, str, str]] = []  # (type, reason, message)
            if isinstance(b, ImagePullFailure):
                error = b.error.format(image=image)
                events += [
                    ("Normal", "Pulling", f'Pulling image "{image}"'),
                    ("Warning", "Failed", f'Failed to pull image "{image}": {error}'),
                    ("Warning", "Failed", "Error: ErrImagePull"),
                ]
                if b.backoff:
                    events += [
                        ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
                        ("Warning", "Failed", "Error: ImagePullBackOff"),
                    ]
            elif isinstance(b, ConfigError):
                events.append(("Warning", "Failed", "Error: " + b.message.format(namespace=meta["namespace"])))
            elif isinstance(b, Running) and not b.ready and b.readiness_failure:
                events.append(("Warning", "Unhealthy", f"Readiness probe failed: {b.readiness_failure}"))
            elif isinstance(b, CrashLoopBackOff):
                pod_ref = f"{meta['name']}_{meta['namespace']}({meta['uid']})"
                if b.liveness_failure:
                    events += [
                        ("Warning", "Unhealthy", f"Liveness probe failed: {b.liveness_failure}"),
                        ("Normal", "Killing", f"Container {name} failed liveness probe, will be restarted"),
                    ]
                events.append(("Warning", "BackOff", f"Back-off restarting failed container {name} in pod {pod_ref}"))
            for type_, reason, message in events:
                self._kubelet_event(pod, record, name, type_=type_, reason=reason, message=message)
        self._pod_level_events(pod, b, record)

    def _pod_level_events(self, pod: Mapping[str, Any], b: Behaviour, record: _PodRecord) -> None:
        """Events about the pod as a whole or an init container, worded as their reporters word them."""
        meta = pod["metadata"]
        if isinstance(b, InitCrashLoop):
            name = _init_target(pod, b.container)
            pod_ref = f"{meta['name']}_{meta['namespace']}({meta['uid']})"
            message = f"Back-off restarting failed container {name} in pod {pod_ref}"
            self._kubelet_event(pod, record, name, type_="Warning", reason="BackOff", message=message, init=True)
        elif isinstance(b, Stuck):
            component = "attachdetach-controller" if b.reason == "FailedAttachVolume" else "kubelet"
            self._kubelet_event(
                pod, record, None, type_="Warning", reason=b.reason, message=b.text(), component=component
            )
        elif isinstance(b, Evicted):
            self._kubelet_event(pod, record, None, type_="Warning", reason="Evicted", message=b.message)
        elif isinstance(b, NodeNotReady):
            self._kubelet_event(
                pod,
                record,
                None,
                type_="Warning",
                reason="NodeNotReady",
                message="Node is not ready",
                component="node-controller",
            )

    def _bind(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            # Raw call: the generated client fails to deserialize the Status
            # reply (ValidationError) although the bind succeeded.
            _raw(self.core.create_namespaced_pod_binding, meta["name"], meta["namespace"], body)
        except ApiException as exc:
            if exc.status not in (403, 404, 409):  # 403: its namespace is being terminated
                self._record_error(f"bind {meta['namespace']}/{meta['name']}", exc)

    def _finish_deletion(self, pod: Mapping[str, Any]) -> None:
        """What a kubelet does once containers are stopped: force-delete."""
        meta = pod["metadata"]
        _raw(
            self.core.delete_namespaced_pod,
            meta["name"],
            meta["namespace"],
            body={
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]},
            },
            grace_period_seconds=0,
        )

    def _update_status(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        behaviour = self.behaviour_for(pod)
        record = self._record(meta["uid"])
        key = repr(behaviour)
        if record.written_key == key and pod.get("status", {}).get("containerStatuses"):
            return
        status = self._pod_status(pod, behaviour, record.started)
        pod["status"] = {**pod.get("status", {}), **status}
        _raw(self.core.replace_namespaced_pod_status, meta["name"], meta["namespace"], pod)
        record.written_key = key
        self._events_for(pod, behaviour, record)

    @staticmethod
    def _container_id(uid: str, name: str, restart: int) -> str:
        return "containerd://" + hashlib.sha256(f"{uid}/{name}/{restart}".encode()).hexdigest()

    def _pod_status(self, pod: Mapping[str, Any], b: Behaviour, started: str) -> dict[str, Any]:
        meta, spec = pod["metadata"], pod.get("spec", {})
        uid = meta["uid"]
        h = hashlib.sha256(uid.encode()).digest()
        pod_ip = f"10.244.{h[0]}.{max(h[1], 2) % 254 + 1}"
        now = _now()

        def cstatus(c: Mapping[str, Any]) -> dict[str, Any]:
            name, image = c["name"], c.get("image", "")
            st: dict[str, Any] = {
                "name": name,
                "image": image,
                "imageID": f"docker-pullable://{image}@sha256:" + hashlib.sha256(image.encode()).hexdigest(),
                "restartCount": 0,
                "ready": False,
                "started": False,
                "state": {},
                "lastState": {},
            }
            if isinstance(b, Running):
                st.update(
                    restartCount=b.restart_count,
                    ready=b.ready,
                    started=True,
                    containerID=self._container_id(uid, name, b.restart_count),
                    state={"running": {"startedAt": started}},
                )
                if b.restart_count > 0:
                    st["lastState"] = {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": started,
                            "finishedAt": started,
                            "containerID": self._container_id(uid, name, b.restart_count - 1),
                        }
                    }
            elif isinstance(b, CrashLoopBackOff):
                st.update(
                    restartCount=b.restart_count,
                    state={
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off 5m0s restarting failed container={name} "
                            f"pod={meta['name']}_{meta['namespace']}({uid})",
                        }
                    },
                    lastState={
                        "terminated": {
                            "exitCode": b.exit_code,
                            "reason": b.reason,
                            **({"message": b.message} if b.message else {}),
                            "startedAt": started,
                            "finishedAt": now,
                            "containerID": self._container_id(uid, name, b.restart_count),
                        }
                    },
                )
            elif isinstance(b, Waiting):
                st["state"] = {"waiting": {"reason": b.reason, **({"message": b.message} if b.message else {})}}
            elif isinstance(b, ImagePullFailure):
                reason = "ImagePullBackOff" if b.backoff else "ErrImagePull"
                message = f'Back-off pulling image "{image}"' if b.backoff else b.error.format(image=image)
                st["state"] = {"waiting": {"reason": reason, "message": message}}
            elif isinstance(b, ConfigError):
                message = b.message.format(namespace=meta["namespace"])
                st["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            elif isinstance(b, Terminated | Evicted):
                code, reason = (b.exit_code, b.reason) if isinstance(b, Terminated) else (137, "Error")
                st["state"] = {
                    "terminated": {
                        "exitCode": code,
                        "reason": reason,
                        "startedAt": started,
                        "finishedAt": now,
                        "containerID": self._container_id(uid, name, 0),
                    }
                }
            elif isinstance(b, InitCrashLoop | InitWaiting):
                st["state"] = {"waiting": {"reason": "PodInitializing"}}
            elif isinstance(b, Stuck):
                st["state"] = {"waiting": {"reason": "ContainerCreating"}}
            elif isinstance(b, NodeNotReady):
                st.update(
                    started=True,
                    containerID=self._container_id(uid, name, 0),
                    state={"running": {"startedAt": started}},
                )
            return st

        containers = spec.get("containers", [])
        statuses = [cstatus(c) for c in containers]
        init_statuses = self._init_statuses(pod, b, started, now)

        out: dict[str, Any] = {
            "phase": _phase(b),
            "conditions": _conditions(b, statuses, init_statuses, started),
            "hostIP": "127.0.0.1",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "containerStatuses": statuses,
        }
        if init_statuses:
            out["initContainerStatuses"] = init_statuses
        if isinstance(b, Evicted):
            out.update(reason="Evicted", message=b.message)
        return out

    def _init_statuses(self, pod: Mapping[str, Any], b: Behaviour, started: str, now: str) -> list[dict[str, Any]]:
        """Init containers: completed, except the one an Init* behaviour names (crash-looping or
        still running) and those after it (waiting PodInitializing)."""
        uid = pod["metadata"]["uid"]
        target = _init_target(pod, b.container) if isinstance(b, InitCrashLoop | InitWaiting) else None
        blocked = isinstance(b, Stuck)
        out = []
        reached = False
        for c in pod.get("spec", {}).get("initContainers", []) or []:
            name = c["name"]
            st: dict[str, Any] = {
                "name": name,
                "image": c.get("image", ""),
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "lastState": {},
            }
            if name == target:
                reached = True
                if isinstance(b, InitCrashLoop):
                    st.update(
                        restartCount=b.restart_count,
                        state={
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": f"back-off 1m20s restarting failed container={name} "
                                f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
                            }
                        },
                        lastState={
                            "terminated": {
                                "exitCode": b.exit_code,
                                "reason": "Error",
                                "startedAt": started,
                                "finishedAt": now,
                                "containerID": self._container_id(uid, name, b.restart_count),
                            }
                        },
                    )
                else:
                    assert isinstance(b, InitWaiting)
                    since = datetime.fromtimestamp(time.time() - b.running_for_seconds, UTC)
                    st.update(
                        containerID=self._container_id(uid, name, 0),
                        state={"running": {"startedAt": since.strftime("%Y-%m-%dT%H:%M:%SZ")}},
                    )
            elif reached or blocked:
                st["state"] = {"waiting": {"reason": "PodInitializing"}}
            else:
                st.update(
                    ready=True,
                    containerID=self._container_id(uid, name, 0),
                    state={
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": started,
                            "finishedAt": started,
                        }
                    },
                )
            out.append(st)
        return out


def _phase(b: Behaviour) -> str:
    """The pod phase the behaviour puts the pod in."""
    if isinstance(b, Waiting | ImagePullFailure | ConfigError | InitCrashLoop | InitWaiting | Stuck):
        return "Pending"
    if isinstance(b, Terminated):
        return "Succeeded" if b.exit_code == 0 else "Failed"
    return "Failed" if isinstance(b, Evicted) else "Running"


def _conditions(
    b: Behaviour, statuses: list[dict[str, Any]], init_statuses: list[dict[str, Any]], started: str
) -> list[dict[str, Any]]:
    """Initialized, Ready, ContainersReady and PodScheduled as the kubelet writes them."""

    def cond(type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        c: dict[str, Any] = {
            "type": type_,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
            "lastTransitionTime": started,
        }
        if not ok:
            c.update(reason=reason, message=message)
        return c

    all_ready = bool(statuses) and all(s["ready"] for s in statuses)
    not_ready = [s["name"] for s in statuses if not s["ready"]]
    msg = f"containers with unready status: [{' '.join(not_ready)}]"
    ready_reason = "PodCompleted" if isinstance(b, Terminated) else "ContainersNotReady"
    incomplete = [s["name"] for s in init_statuses if not s["ready"]]
    return [
        cond(
            "Initialized",
            not incomplete,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        cond("Ready", all_ready, ready_reason, msg),
        cond("ContainersReady", all_ready, ready_reason, msg),
        cond("PodScheduled", True),
    ]


def _init_target(pod: Mapping[str, Any], name: str | None) -> str | None:
    """The init container an Init* behaviour acts on: the one named, else the first."""
    names = [c["name"] for c in pod.get("spec", {}).get("initContainers", []) or []]
    if name is not None:
        return name if name in names else None
    return names[0] if names else None


__all__ = [
    "STUCK_MESSAGES",
    "Behaviour",
    "ConfigError",
    "CrashLoopBackOff",
    "Evicted",
    "FakeKubelet",
    "ImagePullFailure",
    "InitCrashLoop",
    "InitWaiting",
    "NodeNotReady",
    "Running",
    "Stuck",
    "Terminated",
    "Unschedulable",
    "Waiting",
    "parse_selector",
]
