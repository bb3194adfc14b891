"""The Kubernetes part of the live view: every kind the audit reads, listed once and then
watched, each object converted by the audit's own converters.

Per kind (deployments, statefulsets, pods, services, events, endpoints of the profile's
namespace): one list, whose ``resourceVersion`` starts a watch (``allowWatchBookmarks``, so an
idle namespace still moves the version forward). A watch that ends normally (its
``timeoutSeconds``) resumes from the last version seen; one whose version is too old for the
apiserver (410 Gone, as a status or as an ERROR event) lists that kind again and watches from
the new version. A crash-looping pod's previous logs are read when it starts crash-looping and
again after each restart (the audit reads them for every crash-looping pod).

The apiserver is asked for its version every ``PING_SECONDS`` (a hung apiserver keeps its
watches open and silent). A refused or broken connection, a failed ping or any other error
loses the watch: a ``Lost`` change (a gap), then every kind is listed again, with a backoff
while the apiserver does not answer; that listing ends the gap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from stackwarden.adapters.kube_http import KubeApiError
from stackwarden.adapters.kubernetes import (
    Reader,
    _call,
    _endpoints,
    _event,
    _get,
    _log_target,
    _LogReads,
    _pod,
    _pod_logs,
    _Raw,
    _service,
    _workload,
    iter_list_items,
    reader_for,
    request_timeout,
)
from stackwarden.adapters.watching import Backoff, Emit, now, why
from stackwarden.errors import PermanentError
from stackwarden.live.state import (
    KUBE_KINDS,
    Heard,
    KubeKind,
    KubeList,
    KubeListed,
    KubeObject,
    KubeObjectGone,
    KubeObjectSeen,
    KubeSeen,
    LogsForbidden,
    Lost,
)
from stackwarden.model.base import Runtime
from stackwarden.model.profile import KubernetesSpec, Timeouts
from stackwarden.model.snapshot import Coverage, PodState, RuntimeStatus

LOG = logging.getLogger(__name__)

PING_SECONDS = 10.0
WATCH_SECONDS = 300
"""A watch's ``timeoutSeconds``: the apiserver ends it then, and it resumes from its version."""
POLL_SECONDS = 10.0
"""How often a kind the identity may list but not watch is listed again."""
FORBIDDEN_RETRY_SECONDS = 60.0
"""How often a kind the identity may not list is tried again (RBAC can be granted later)."""

_KINDS: dict[KubeKind, tuple[str, Callable[[Any], KubeObject]]] = {
    "deployments": ("/apis/apps/v1", partial(_workload, "Deployment")),
    "statefulsets": ("/apis/apps/v1", partial(_workload, "StatefulSet")),
    "pods": ("/api/v1", _pod),
    "services": ("/api/v1", _service),
    "events": ("/api/v1", _event),
    "endpoints": ("/api/v1", _endpoints),
}


_SELECTED: dict[KubeKind, list[tuple[str, str]]] = {"events": [("fieldSelector", "type=Warning")]}
"""What the audit asks of a kind beyond the namespace: of events, the warnings only."""


def kind_path(kind: KubeKind, namespace: str) -> str:
    """The namespaced collection of ``kind``."""
    return f"{_KINDS[kind][0]}/namespaces/{namespace}/{kind}"


def list_kind(reader: Reader, kind: KubeKind, namespace: str, timeout: Any) -> tuple[KubeList, str | None]:
    """One kind listed as the audit lists it (a 403 is recorded as forbidden, never read as
    empty), and the list's resourceVersion to watch from (None when forbidden)."""
    verb = f"list {kind}"
    try:
        text = _call(_get, verb, reader, kind_path(kind, namespace), timeout, _SELECTED.get(kind)).decode()
    except KubeApiError as exc:
        if exc.status != 403:
            raise
        coverage = Coverage(
            runtime=Runtime.KUBERNETES,
            kind=kind,
            state="unobserved",
            reason="forbidden",
            detail=f"{verb} in {namespace} is forbidden for this identity",
        )
        return KubeList(objects={}, coverage=coverage, forbidden=f"{verb} in {namespace}"), None
    top: dict[str, Any] = {}
    convert = _KINDS[kind][1]
    objects = {}
    for item in iter_list_items(text, top):
        raw = _Raw(item)
        objects[str(raw.metadata.name)] = convert(raw)
    version = (top.get("metadata") or {}).get("resourceVersion")
    return KubeList(
        objects=objects, coverage=Coverage(runtime=Runtime.KUBERNETES, kind=kind, state="complete")
    ), version


class KubeWatch:
    """Runs until ``stop`` is set; everything it learns goes to ``emit``."""

    def __init__(
        self,
        spec: KubernetesSpec,
        emit: Emit,
        stop: threading.Event,
        *,
        timeouts: Timeouts | None = None,
        log_tail: int = 40,
        ping_seconds: float = PING_SECONDS,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.spec = spec
        self.emit = emit
        self.stop = stop
        self.timeout = request_timeout(timeouts)
        self.log_tail = log_tail
        self.ping_seconds = ping_seconds
        self.watch_seconds = watch_seconds
        self.endpoint: str | None = None
        self.logs: dict[
            str, tuple[object, tuple[tuple[str, ...], str | None, tuple[str, ...], tuple[Coverage, ...]]]
        ] = {}
        self.logs_forbidden: str | None = None
        self.lock = threading.Lock()
        self._backoff = Backoff()

    def run(self) -> None:
        """List, watch, and after each loss list again, until stopped."""
        while not self.stop.is_set():
            reason = self._session()
            if self.stop.is_set():
                return
            # said once per loss, not at every attempt to get it back
            (LOG.info if self._backoff.retrying else LOG.warning)("Kubernetes watch lost: %s", reason)
            self.emit(Lost(runtime=Runtime.KUBERNETES, reason=reason, at=now(), endpoint=self.endpoint))
            self.stop.wait(self._backoff.next())

    def _session(self) -> str:
        try:
            reader, context, contexts = reader_for(self.spec)
        except Exception as exc:
            return why(exc)
        self.endpoint = context.server
        ns = self.spec.namespace
        try:
            try:
                version = json.loads(_call(_get, "server version", reader, "/version", self.timeout)).get("gitVersion")
            except KubeApiError as exc:
                if exc.status == 401:
                    raise PermanentError(f"cluster {context.server} rejected the credentials (401)") from exc
                version = None
            lists: dict[KubeKind, KubeList] = {}
            versions: dict[KubeKind, str | None] = {}
            for kind in KUBE_KINDS:
                lists[kind], versions[kind] = list_kind(reader, kind, ns, self.timeout)
            lists["pods"] = self._with_logs(reader, lists["pods"])
        except Exception as exc:
            reader.close()
            return why(exc)
        status = RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=True, endpoint=context.server, version=version)
        self.emit(
            KubeSeen(
                status=status,
                context=context,
                contexts=tuple(contexts),
                namespace=ns,
                lists=lists,
                logs_forbidden=self.logs_forbidden,
                at=now(),
            )
        )
        self._backoff.reset()
        return _Session(self, reader, versions).run()

    # ---- pods' logs, as the audit reads them

    def _with_logs(self, reader: Reader, listing: KubeList) -> KubeList:
        objects: dict[str, KubeObject] = {}
        gaps: dict[str, tuple[Coverage, ...]] = {}
        for name, obj in listing.objects.items():
            objects[name], gaps[name] = self.pod_with_logs(reader, obj)
        return KubeList(objects=objects, coverage=listing.coverage, forbidden=listing.forbidden, log_gaps=gaps)

    def pod_with_logs(self, reader: Reader, obj: KubeObject) -> tuple[KubeObject, tuple[Coverage, ...]]:
        """A failing pod with the last lines of the container that says why (``_pod_logs``: a
        crash loop's previous run, an init container waiting too long), read once per restart
        of that container; and the log read that failed, if it did."""
        if not isinstance(obj, PodState):
            return obj, ()
        target = _log_target(obj)
        if target is None:
            with self.lock:
                self.logs.pop(obj.name, None)
            return obj, ()
        key = (obj.uid, obj.restart_count, target)
        with self.lock:
            cached = self.logs.get(obj.name)
        if cached is not None and cached[0] == key:
            tail, container, extra, gaps = cached[1]
            return obj.model_copy(
                update={"log_tail": tail, "log_container": container, "unobserved": (*obj.unobserved, *extra)}
            ), gaps
        reads = _LogReads()
        read = _pod_logs(reader, obj, self.log_tail, self.timeout, reads)
        gaps = tuple(reads.gaps)
        with self.lock:
            # what the read added: its lines, and a failed read's note on the pod
            self.logs[obj.name] = (
                key,
                (read.log_tail, read.log_container, read.unobserved[len(obj.unobserved) :], gaps),
            )
            denied = reads.forbidden[0] if reads.forbidden else None
            flipped = denied != self.logs_forbidden
            self.logs_forbidden = denied
        if flipped:
            self.emit(LogsForbidden(forbidden=denied, at=now()))
        return read, gaps

    def forget_pod(self, name: str) -> None:
        """A deleted pod's logs are not kept."""
        with self.lock:
            self.logs.pop(name, None)


class _Session:
    """The watches that follow one listing, and the ping that checks the apiserver answers."""

    def __init__(self, watch: KubeWatch, reader: Reader, versions: dict[KubeKind, str | None]) -> None:
        self.watch = watch
        self.reader = reader
        self.versions = versions
        self.done = threading.Event()
        self.reason: str | None = None
        self.streams: dict[KubeKind, Any] = {}
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def run(self) -> str:
        for kind, version in self.versions.items():
            if version is not None:
                self._start(kind, version)
        retry_at = time.monotonic() + FORBIDDEN_RETRY_SECONDS
        try:
            while not self.done.is_set() and not self.watch.stop.is_set():
                if self.done.wait(self.watch.ping_seconds):
                    break
                try:
                    _call(_get, "server version", self.reader, "/version", self.watch.timeout)
                except Exception as exc:
                    self.lose(f"the apiserver stopped answering: {why(exc)}")
                    break
                self.watch.emit(Heard(runtime=Runtime.KUBERNETES, at=now()))
                if time.monotonic() >= retry_at:
                    self._retry_forbidden()
                    retry_at = time.monotonic() + FORBIDDEN_RETRY_SECONDS
        finally:
            self.done.set()
            with self.lock:
                for stream in self.streams.values():
                    with contextlib.suppress(Exception):
                        stream.close()
            for thread in self.threads:
                thread.join(timeout=10)
            self.reader.close()
        return self.reason or "stopped"

    def lose(self, reason: str) -> None:
        """End the session (the first reason wins): every watch stops, the runtime is in a gap."""
        with self.lock:
            if self.reason is None and not self.done.is_set():
                self.reason = reason
        self.done.set()

    def _start(self, kind: KubeKind, version: str) -> None:
        thread = threading.Thread(target=self._follow, args=(kind, version), name=f"kube-watch-{kind}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _retry_forbidden(self) -> None:
        for kind, version in list(self.versions.items()):
            if version is not None:
                continue
            listing, fresh = list_kind(self.reader, kind, self.watch.spec.namespace, self.watch.timeout)
            if fresh is not None:
                self.versions[kind] = fresh
                self.watch.emit(KubeListed(kind=kind, listing=listing, at=now()))
                self._start(kind, fresh)

    def _relist(self, reader: Reader, kind: KubeKind) -> str | None:
        """410 Gone: the kind listed again (its objects replaced), and the version to watch from."""
        LOG.info("watch of %s: resourceVersion too old (410 Gone); listing again", kind)
        listing, version = list_kind(reader, kind, self.watch.spec.namespace, self.watch.timeout)
        if kind == "pods":
            listing = self.watch._with_logs(reader, listing)
        self.watch.emit(KubeListed(kind=kind, listing=listing, at=now()))
        return version

    def _follow(self, kind: KubeKind, version: str | None) -> None:
        reader = self.reader.clone()
        connect, _ = self.watch.timeout
        timeout = (connect, self.watch.watch_seconds + 30.0)
        path = kind_path(kind, self.watch.spec.namespace)
        quick = 0
        try:
            while not self.done.is_set() and version is not None:
                query = [
                    *_SELECTED.get(kind, []),
                    ("watch", "1"),
                    ("resourceVersion", version),
                    ("allowWatchBookmarks", "true"),
                    ("timeoutSeconds", str(self.watch.watch_seconds)),
                ]
                started = time.monotonic()
                try:
                    stream = reader.stream(path, query, timeout)
                except KubeApiError as exc:
                    if exc.status == 410:
                        version = self._relist(reader, kind)
                        continue
                    if exc.status == 403:  # may list, may not watch: list it again and again instead
                        self._poll(reader, kind)
                        return
                    raise
                with self.lock:
                    self.streams[kind] = stream
                if self.done.is_set():
                    stream.close()
                    return
                self.versions[kind] = version
                try:
                    expired = self._events(reader, kind, stream)
                except (OSError, ValueError) as exc:  # broke mid-stream: a new watch says whether it is lost
                    LOG.info("watch of %s broke (%s); watching again", kind, why(exc))
                    expired = False
                version = self.versions[kind]
                if expired:
                    version = self._relist(reader, kind)
                    continue
                quick = quick + 1 if time.monotonic() - started < 1.0 else 0
                if quick >= 3:  # ended at once, again and again: do not spin
                    self.done.wait(1.0)
        except Exception as exc:
            if not self.done.is_set():
                self.lose(f"watch of {kind}: {why(exc)}")
        finally:
            reader.close()

    def _poll(self, reader: Reader, kind: KubeKind) -> None:
        """The identity may list ``kind`` but not watch it (a read-only Role with get and list
        only): list it every ``POLL_SECONDS`` instead, reporting it only when it changed. The
        view stays complete, only slower to see a change; said once, with what to grant."""
        LOG.warning(
            "watch of %s in %s is forbidden for this identity: listing it every %.0f s instead "
            "(grant the watch verb on %s for changes within a second)",
            kind,
            self.watch.spec.namespace,
            POLL_SECONDS,
            kind,
        )
        last: KubeList | None = None
        while not self.done.wait(POLL_SECONDS):
            listing, _ = list_kind(reader, kind, self.watch.spec.namespace, self.watch.timeout)
            if kind == "pods":
                listing = self.watch._with_logs(reader, listing)
            if last is None or listing.objects != last.objects or listing.coverage != last.coverage:
                self.watch.emit(KubeListed(kind=kind, listing=listing, at=now()))
            last = listing

    def _events(self, reader: Reader, kind: KubeKind, stream: Any) -> bool:
        """Apply one watch answer's events, keeping the last version seen in ``versions``;
        True when the apiserver said 410 Gone."""
        convert = _KINDS[kind][1]
        for event in stream:
            kind_of_event = event.get("type")
            obj = _Raw(event.get("object") or {})
            if kind_of_event == "ERROR":
                if obj.code == 410:
                    return True
                raise KubeApiError(int(obj.code or 500), str(obj.reason or "watch error"), str(obj.message or ""))
            if obj.metadata and obj.metadata.resource_version:
                self.versions[kind] = str(obj.metadata.resource_version)
            if kind_of_event == "BOOKMARK":
                self.watch.emit(Heard(runtime=Runtime.KUBERNETES, at=now()))
                continue
            name = str(obj.metadata.name)
            if kind_of_event == "DELETED":
                if kind == "pods":
                    self.watch.forget_pod(name)
                self.watch.emit(KubeObjectGone(kind=kind, name=name, at=now()))
                continue
            converted = convert(obj)
            gaps: tuple[Coverage, ...] = ()
            if kind == "pods":
                converted, gaps = self.watch.pod_with_logs(reader, converted)
            self.watch.emit(KubeObjectSeen(kind=kind, name=name, obj=converted, at=now(), log_gaps=gaps))
        return False
