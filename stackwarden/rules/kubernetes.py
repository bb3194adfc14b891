"""Facts about the cluster side that change what stackwarden may do there."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden import commands
from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import home_runtime
from stackwarden.rules.registry import rule


@rule("kube-context-not-allowed")
def context_not_allowed(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """Low: the observed context is outside the profile's allowlist, so it is read-only.

    Observing is always allowed; acting is not. Saying so up front keeps a later switch from
    surprising anyone by refusing (the profile is the scope of every action).
    """
    kube = snapshot.kubernetes
    if kube is None or kube.context is None or kube.context.allowed or profile.kubernetes is None:
        return
    ctx = kube.context
    yield Finding(
        id=f"kube-context-not-allowed:{ctx.name}",
        rule="kube-context-not-allowed",
        title=f"Context {ctx.name} is read-only",
        severity=Severity.LOW,
        runtimes=(Runtime.KUBERNETES,),
        summary=(
            f"Context {ctx.name} ({ctx.server or 'unknown server'}) is not in the profile's allowlist "
            f"({', '.join(profile.kubernetes.allowed_contexts)}): it was observed read-only and "
            "no remediation will be planned there."
        ),
        evidence=(f"current context: {ctx.name}; cluster {ctx.cluster}; flavour {ctx.flavour}",),
        recommendation="Switch to an allowed context, or add this one to kubernetes.allowed_contexts.",
        action="None (read-only)",
        commands=("kubectl config get-contexts",),
    )


def any_context_warning(profile: Profile) -> str | None:
    """The warning every report carries while the profile allows remediation in any context."""
    spec = profile.kubernetes
    if spec is None or not spec.any_context:
        return None
    pinned = (
        f"; only API servers matching {', '.join(spec.allowed_servers)} are allowed"
        if spec.allowed_servers
        else "; no allowed_servers pin the cluster either"
    )
    return (
        "allow_any_context is on: remediation is allowed in every kubeconfig context "
        f"(allowed_contexts: {', '.join(spec.allowed_contexts)}){pinned}"
    )


@rule("kube-any-context")
def any_context(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """Medium: a catch-all context pattern means a switch may act on whatever cluster the
    kubeconfig points at, production included. Allowed only explicitly, and said every time."""
    warning = any_context_warning(profile)
    if warning is None:
        return
    yield Finding(
        id="kube-any-context",
        rule="kube-any-context",
        title="Any Kubernetes context may be changed",
        severity=Severity.MEDIUM,
        runtimes=(Runtime.KUBERNETES,),
        summary=warning + ".",
        evidence=(f"kubernetes.allowed_contexts: {', '.join(profile.kubernetes.allowed_contexts)}",)
        if profile.kubernetes
        else (),
        recommendation="List the contexts by name, or pin the cluster with kubernetes.allowed_servers.",
        action="Narrow kubernetes.allowed_contexts",
        commands=("kubectl config get-contexts",),
    )


_NEEDED = frozenset({"list pods", "list deployments", "list statefulsets"})
"""Reads without which a workload's readiness and crashes cannot be judged."""


@rule("kube-forbidden")
def forbidden(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """The identity may not read something the audit needs, so that part is blind. High when
    the unread kinds are workloads or pods and the default mode runs a service in the cluster:
    its readiness, restarts and logs are then unknown, and exit 0 would be a false all-clear."""
    kube = snapshot.kubernetes
    if kube is None or not kube.forbidden or profile.kubernetes is None:
        return
    ns = profile.kubernetes.namespace
    homed = [s for s in profile.services if home_runtime(profile, s) is Runtime.KUBERNETES]
    blind = any(f.split(" in ")[0] in _NEEDED for f in kube.forbidden)
    unseen = (
        f" {', '.join(homed)} should run in the cluster ({profile.default_mode}): their state is not fully known."
        if homed and blind
        else ""
    )
    yield Finding(
        id="kube-forbidden",
        rule="kube-forbidden",
        title="Kubernetes reads forbidden",
        severity=Severity.HIGH if unseen else Severity.MEDIUM,
        services=tuple(homed) if unseen else (),
        runtimes=(Runtime.KUBERNETES,),
        summary="The current identity may not: "
        + "; ".join(kube.forbidden)
        + ". Those objects are not diagnosed."
        + unseen,
        evidence=kube.forbidden,
        recommendation=(
            f"Bind a read-only Role in {ns} (get/list deployments, statefulsets, pods, pods/log, services, "
            "events, endpoints)."
        ),
        action="Grant read access",
        commands=(commands.kubectl_for(snapshot, profile, "auth", "can-i", "--list"),),
    )
