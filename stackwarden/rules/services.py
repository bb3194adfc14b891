"""Kubernetes Services that route nowhere: a ``targetPort`` (number or name) that no port of the
selected pods declares, and a Service with no ready endpoint while its pods are ready.

Endpoints can exist and look healthy while every request fails: the endpoints controller copies
a numeric ``targetPort`` whatever the pods declare. A named ``targetPort`` that no container
declares leaves the pod out of the endpoints altogether. Both are read from the one pod list
and the one endpoints list of the audit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from stackwarden import commands
from stackwarden.clusterevents import event_line
from stackwarden.model.base import CrashCategory, Runtime, Severity
from stackwarden.model.finding import CrashCause, Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import KubeContainerPort, KubeServiceState, PodState, Snapshot
from stackwarden.placement import stack_view
from stackwarden.rules.registry import rule


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _profile_services(snapshot: Snapshot, profile: Profile) -> list[tuple[str, KubeServiceState, list[PodState]]]:
    """(profile service, Service, the live pods it selects) for every Service the profile names or
    that selects a profile workload's pods."""
    kube = snapshot.kubernetes
    if kube is None:
        return []
    view = stack_view(snapshot, profile)
    live = [p for p in kube.pods if p.phase not in {"Succeeded", "Failed"}]
    uids = {name: {p.uid for p in placement.pods} for name, placement in view.placements.items()}
    out = []
    for svc in kube.services:
        if not svc.selector:
            continue  # endpoints managed by hand: nothing to check against
        selected = [p for p in live if _selects(svc.selector, p.labels)]
        chosen = {p.uid for p in selected}
        owner = next(
            (
                name
                for name, spec in profile.services.items()
                if spec.kubernetes is not None and (spec.kubernetes.service == svc.name or uids[name] & chosen)
            ),
            None,
        )
        if owner is not None:
            out.append((owner, svc, selected))
    return out


def _declared(pods: list[PodState]) -> list[KubeContainerPort]:
    return list(dict.fromkeys(p for pod in pods for p in pod.declared_ports))


def _shown(ports: list[KubeContainerPort]) -> str:
    return ", ".join(f"{p.port}/{p.protocol}" + (f" named {p.name}" if p.name else "") for p in ports) or "none"


def _mismatches(svc: KubeServiceState, declared: list[KubeContainerPort]) -> list[tuple[int, str, str]]:
    """(service port index, its targetPort, what is wrong) for each port that leads nowhere."""
    out = []
    for index, port in enumerate(svc.ports):
        target = port.target_port or str(port.port)
        same_protocol = [d for d in declared if d.protocol == port.protocol]
        if target.isdigit():
            if same_protocol and int(target) not in {d.port for d in same_protocol}:
                out.append((index, target, f"port {port.port} -> targetPort {target}, which no selected pod declares"))
        elif target not in {d.name for d in same_protocol}:
            out.append(
                (index, target, f"port {port.port} -> targetPort {target!r}, a name no container of the pods declares")
            )
    return out


def _severity(profile: Profile, service: str) -> Severity:
    return Severity.HIGH if profile.services[service].group == "core" else Severity.MEDIUM


def _fix(
    snapshot: Snapshot, profile: Profile, svc: KubeServiceState, index: int, declared: list[KubeContainerPort]
) -> list[str]:
    """When the pods declare exactly one port of the protocol, the patch that points the Service at it."""
    protocol = svc.ports[index].protocol
    candidates = [d for d in declared if d.protocol == protocol]
    if len(candidates) != 1:
        return []
    value = candidates[0].name or candidates[0].port
    patch = json.dumps([{"op": "replace", "path": f"/spec/ports/{index}/targetPort", "value": value}])
    return [commands.kubectl_for(snapshot, profile, "patch", "service", svc.name, "--type=json", "-p", patch)]


def _endpoint_text(snapshot: Snapshot, name: str) -> str:
    kube = snapshot.kubernetes
    ends = next((e for e in kube.endpoints if e.name == name), None) if kube else None
    if ends is None:
        return f"Endpoints {name}: none"
    ports = ", ".join(str(p) for p in ends.ports) or "no port"
    return f"Endpoints {name}: {ends.ready} ready, {ends.not_ready} not ready, port(s) {ports}"


@rule("service-port-mismatch")
def service_port_mismatch(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """High: a Service of the profile routes a port to a targetPort that no selected pod declares
    (a number nothing listens on, or a name that matches no container port). Its endpoints may
    exist, yet every request through that port fails."""
    if not snapshot.reachable(Runtime.KUBERNETES):
        return
    for service, svc, pods in _profile_services(snapshot, profile):
        with_ports = [p for p in pods if p.containers]
        declared = _declared(with_ports)
        if not with_ports:
            continue
        wrong = _mismatches(svc, declared)
        if not wrong:
            continue
        events = [event_line(e) for e in snapshot.events_for("Service", svc.name) if e.type == "Warning"]
        fixes = [c for index, _, _ in wrong for c in _fix(snapshot, profile, svc, index, declared)]
        what = "; ".join(text for _, _, text in wrong)
        yield Finding(
            id=f"service-port-mismatch:{svc.name}",
            rule="service-port-mismatch",
            title=f"Service {svc.name} routes to a port its pods do not declare",
            severity=_severity(profile, service),
            services=(service,),
            runtimes=(Runtime.KUBERNETES,),
            summary=(
                f"Service {svc.namespace}/{svc.name} of {service}: {what}. The pods it selects declare "
                f"{_shown(declared)}: every request through that port fails, though the Service and its "
                "endpoints look healthy."
            ),
            evidence=(
                *(f"Service {svc.name} {text}" for _, _, text in wrong),
                f"pods {', '.join(p.name for p in with_ports[:3])} declare {_shown(declared)}",
                _endpoint_text(snapshot, svc.name),
                *events[-2:],
            ),
            locations=(Location(runtime=Runtime.KUBERNETES, kind="service", name=f"{svc.namespace}/{svc.name}"),),
            recommendation=(
                "Point the Service's targetPort at the port the container listens on (or declare that port, "
                "with its name, in the pod template)."
            ),
            action="Fix the Service's targetPort",
            commands=(commands.kubectl_for(snapshot, profile, "get", "endpoints", svc.name, "-o", "yaml"), *fixes),
            cause=CrashCause(
                category=CrashCategory.CONFIGURATION,
                signature="target-port-mismatch",
                explanation="The Service's targetPort matches no port its pods declare.",
                confidence=0.9,
                evidence=tuple(text for _, _, text in wrong),
            ),
            condition="has a Service that routes to a port its pods do not declare",
        )


@rule("service-no-endpoints")
def service_no_endpoints(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """High: a Service of the profile has no ready endpoint although pods it selects are ready,
    for a reason the port check does not explain (the Endpoints object is missing or stale).
    A selector that matches nothing is service-selector-unmatched's; pods that are not ready are
    service-unavailable's."""
    if not snapshot.reachable(Runtime.KUBERNETES) or snapshot.kubernetes is None:
        return
    kube = snapshot.kubernetes
    for service, svc, pods in _profile_services(snapshot, profile):
        ready = [p for p in pods if p.ready]
        if not ready or _mismatches(svc, _declared([p for p in pods if p.containers])):
            continue
        ends = next((e for e in kube.endpoints if e.name == svc.name), None)
        if ends is not None and ends.ready > 0:
            continue
        yield Finding(
            id=f"service-no-endpoints:{svc.name}",
            rule="service-no-endpoints",
            title=f"Service {svc.name} has no ready endpoint",
            severity=_severity(profile, service),
            services=(service,),
            runtimes=(Runtime.KUBERNETES,),
            summary=(
                f"Service {svc.namespace}/{svc.name} of {service} selects {len(ready)} ready pod(s) but has no ready "
                "endpoint: connections to it are refused."
            ),
            evidence=(_endpoint_text(snapshot, svc.name), f"ready pods: {', '.join(p.name for p in ready[:3])}"),
            locations=(Location(runtime=Runtime.KUBERNETES, kind="service", name=f"{svc.namespace}/{svc.name}"),),
            recommendation="Check the endpoints controller (kube-controller-manager) and the Endpoints object.",
            action="Repair the Service's endpoints",
            commands=(commands.kubectl_for(snapshot, profile, "get", "endpoints", svc.name, "-o", "yaml"),),
            cause=CrashCause(
                category=CrashCategory.UNKNOWN,
                signature="no-ready-endpoint",
                explanation="The Service has no ready endpoint although pods it selects are ready.",
                confidence=0.8,
            ),
            condition="has a Service with no ready endpoint",
        )
