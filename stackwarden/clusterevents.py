"""The cluster's own words about a profile service: the Warning events of its pods, ReplicaSets,
workload, Services and PersistentVolumeClaims (read once per audit, field-selected to
``type=Warning``), quoted as evidence the way ``kubectl describe`` shows them."""

from __future__ import annotations

import re
from collections.abc import Iterable

from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import KubeEvent, PodState, Snapshot

WARNING_REASONS = (
    "FailedCreatePodSandBox",
    "FailedMount",
    "FailedAttachVolume",
    "Unhealthy",
    "BackOff",
    "FailedScheduling",
    "Evicted",
    "NodeNotReady",
)
"""The reasons the audit reads as causes; any other Warning of the service's objects is quoted."""


def event_line(event: KubeEvent) -> str:
    """``Pod api-1: FailedMount: MountVolume.SetUp failed ... (x3)``."""
    count = f" (x{event.count})" if event.count > 1 else ""
    return f"{event.kind} {event.name}: {event.reason}: {event.message}{count}"


_INDEX: list[tuple[tuple[KubeEvent, ...], dict[tuple[str, str], list[KubeEvent]]]] = []
"""The last events tuple seen and its Warnings by (kind, name): rules ask per pod, and a namespace
may hold thousands of pods and events. Kept with the tuple itself, so it cannot go stale."""


def _by_object(events: tuple[KubeEvent, ...]) -> dict[tuple[str, str], list[KubeEvent]]:
    if _INDEX and _INDEX[0][0] is events:
        return _INDEX[0][1]
    index: dict[tuple[str, str], list[KubeEvent]] = {}
    for e in events:
        if e.type == "Warning":
            index.setdefault((e.kind, e.name), []).append(e)
    _INDEX[:] = [(events, index)]
    return index


def _warnings(snapshot: Snapshot, kind: str, names: Iterable[str]) -> list[KubeEvent]:
    kube = snapshot.kubernetes
    if kube is None:
        return []
    index = _by_object(kube.events)
    found = [e for name in dict.fromkeys(names) for e in index.get((kind, name), ())]
    return sorted(found, key=lambda e: e.last_seen.timestamp() if e.last_seen else 0.0)


def pod_warnings(snapshot: Snapshot, pod: PodState, reasons: Iterable[str] | None = None) -> list[KubeEvent]:
    """The pod's Warning events (with those reasons), newest last."""
    allowed = set(reasons) if reasons is not None else None
    return [e for e in _warnings(snapshot, "Pod", [pod.name]) if allowed is None or e.reason in allowed]


def service_warnings(snapshot: Snapshot, profile: Profile, service: str, pods: Iterable[PodState]) -> list[KubeEvent]:
    """Warning events of everything that makes up ``service`` in the cluster: its pods, their
    ReplicaSets (the pods' owners, or ``<deployment>-<hash>``), its workload, its Service and
    the claims its pods mount (a StatefulSet's ``<template>-<name>-<n>`` too)."""
    spec = profile.services[service].kubernetes
    if spec is None:
        return []
    pods = list(pods)
    owners = {p.owner for p in pods if p.owner}
    replica_set = re.compile(rf"^{re.escape(spec.name)}-[a-z0-9]{{5,10}}$")
    kube = snapshot.kubernetes
    all_rs = {e.name for e in (kube.events if kube else ()) if e.kind == "ReplicaSet" and replica_set.match(e.name)}
    claims = {c for p in pods for c in p.claims}
    statefulset_claim = re.compile(rf"^[a-z0-9-]+-{re.escape(spec.name)}-\d+$")
    all_claims = {
        e.name
        for e in (kube.events if kube else ())
        if e.kind == "PersistentVolumeClaim" and spec.kind == "StatefulSet" and statefulset_claim.match(e.name)
    }
    found = [
        *_warnings(snapshot, "Pod", [p.name for p in pods]),
        *_warnings(snapshot, "ReplicaSet", owners | all_rs),
        *_warnings(snapshot, spec.kind, [spec.name]),
        *_warnings(snapshot, "Service", [spec.service] if spec.service else []),
        *_warnings(snapshot, "PersistentVolumeClaim", claims | all_claims),
    ]
    return sorted(dict.fromkeys(found), key=lambda e: e.last_seen.timestamp() if e.last_seen else 0.0)
