"""verdict(snapshot, profile, mode, health) -> Verdict: do the mode's invariants hold? (pure)

Invariants per service: it runs only in its mode's runtime, it is up there (rollout complete),
each of its host ports is owned by that runtime or free, and its health check passes. A crash
loop classified as a code issue is reported apart: the switch did its job, the code did not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackwarden.model.base import CrashCategory, Mode, Runtime
from stackwarden.model.finding import Finding
from stackwarden.model.plan import Outcome, Verdict
from stackwarden.model.profile import NoHomePolicy, Profile
from stackwarden.model.snapshot import Container, Snapshot
from stackwarden.placement import ServicePlacement, container_ready, stack_view
from stackwarden.planner import blind_spots, target_runtime
from stackwarden.rules import diagnose
from stackwarden.rules.ports import unserved_ports

_UP = {"running", "restarting", "paused"}


def _present(placement: ServicePlacement) -> dict[Runtime, str]:
    """Where the service is deployed now (stopped containers and scaled-to-0 workloads are not)."""
    out: dict[Runtime, str] = {}
    running = [c.name for c in placement.containers if c.state in _UP]
    if running:
        out[Runtime.COMPOSE] = "container(s) " + ", ".join(running)
    live = [w for w in placement.workloads if w.replicas > 0]
    pods = [p.name for p in placement.pods]
    if live or pods:
        out[Runtime.KUBERNETES] = ", ".join(
            [f"{w.kind} {w.name} ({w.ready_replicas}/{w.replicas})" for w in live]
            + ([f"{len(pods)} pod(s)"] if pods else [])
        )
    if placement.processes:
        out[Runtime.HOST] = ", ".join(f"{p.name} PID {p.pid}" for p in placement.processes)
    return out


def _container_serves(c: Container) -> bool:
    """Running, not between two crashes, and not held back by its own healthcheck: a container
    whose image declares one serves only once Docker calls it healthy ("health: starting" and
    "unhealthy" do not), as a pod serves only once it is ready."""
    return container_ready(c) and "health: starting" not in c.status


def _up_in_target(placement: ServicePlacement, want: Runtime) -> str | None:
    """None when the service is up in its runtime, else what is missing."""
    if want is Runtime.COMPOSE:
        if any(_container_serves(c) for c in placement.containers):
            return None
        running = [c for c in placement.containers if c.state == "running"]
        if not running:
            return "no running container"
        return "running but not serving: " + ", ".join(f"{c.name} ({c.status or c.state})" for c in running)
    if want is Runtime.KUBERNETES:
        live = [w for w in placement.workloads if w.replicas > 0]
        if not live:
            return "its workload is scaled to 0 or missing"
        behind = [w for w in live if w.ready_replicas < w.replicas]
        return ", ".join(f"{w.name} {w.ready_replicas}/{w.replicas} ready" for w in behind) or None
    return None if placement.processes else "no host process"


def _code_issues(snapshot: Snapshot, profile: Profile) -> dict[str, list[Finding]]:
    """Per service, its findings whose crash is a code issue: no mode fixes them, so neither
    verify nor the make-before-break wait holds the switch to them being up where they crash.
    All of them, not one: a service can have one in each runtime (a crash loop in the cluster,
    a container that died of the same panic under Compose)."""
    out: dict[str, list[Finding]] = {}
    for f in diagnose(snapshot, profile):
        if f.cause is not None and f.cause.category is CrashCategory.CODE_ISSUE and f.services:
            out.setdefault(f.services[0], []).append(f)
    return out


def _code_issue_in(code: Mapping[str, list[Finding]], service: str, runtime: Runtime) -> Finding | None:
    """The service's code-issue finding in ``runtime``, if it crashes there."""
    return next((f for f in code.get(service, ()) if runtime in f.runtimes), None)


def host_health(snapshot: Snapshot, profile: Profile, mode: Mode) -> dict[str, str | None]:
    """The snapshot's health checks (the host observation ran them) of the services whose runtime
    in ``mode`` serves on this host's ports (Compose, host); a ClusterIP service has no host port."""
    return {
        r.service: r.error
        for r in snapshot.health
        if target_runtime(profile, mode, r.service) in {Runtime.COMPOSE, Runtime.HOST}
    }


def verdict(
    snapshot: Snapshot,
    profile: Profile,
    mode: Mode,
    health: Mapping[str, str | None] | None = None,
) -> Verdict:
    """Check every service's invariants; ``health`` maps a service to an error (None = healthy),
    by default the snapshot's own checks."""
    health = host_health(snapshot, profile, mode) if health is None else health
    view = stack_view(snapshot, profile)
    code_findings = _code_issues(snapshot, profile)
    code_broken: dict[str, str] = {}
    failures: list[str] = [
        f"{status.runtime} could not be observed ({status.error}): the mode cannot be verified"
        for status in snapshot.runtimes
        if not status.reachable
    ]
    checks: list[str] = []
    for name, placement in view.placements.items():
        want = target_runtime(profile, mode, name)
        if want is None:
            failures.append(f"{name}: no runtime assigned for {mode}")
            continue
        failures += [f"could not observe: {spot}" for spot in blind_spots(snapshot, profile, name)]
        if not profile.has_home(name, want):
            policy = profile.services[name].no_home
            if policy is NoHomePolicy.LEAVE:
                checks.append(f"{name}: no home in {want}; left as it runs (no_home: leave), not verified")
            elif policy is NoHomePolicy.STOP:
                present = _present(placement)
                failures += [f"{name}: still runs under {r} ({w}) though no_home is 'stop'" for r, w in present.items()]
                if not present:
                    checks.append(f"{name}: no home in {want}; runs nowhere (no_home: stop)")
            else:
                failures.append(f"{name}: has no home in {want} and no_home is 'refuse'")
            continue
        present = _present(placement)
        for runtime, what in present.items():
            if runtime is not want:
                failures.append(f"{name}: still runs under {runtime} ({what}); {mode} allows only {want}")
        for port in profile.services[name].ports:
            for owner in view.port_owners.get(port, ()):
                if owner.runtime is not want:
                    failures.append(f"{name}: port {port} is owned by {owner.label}, not by {want}")
                elif not owner.in_profile:  # right runtime, someone else's: its answer is not ours
                    failures.append(f"{name}: port {port} is owned by {owner.label}, which is not {name}")
        finding = _code_issue_in(code_findings, name, want)
        if finding is not None:  # it crashes where it should run
            code_broken[name] = finding.title
            checks.append(f"{name}: in {want}, broken by a code issue ({finding.title})")
            continue
        missing = _up_in_target(placement, want)
        if missing:
            failures.append(f"{name}: not up under {want}: {missing}")
        elif unserved := unserved_ports(view, profile, name):  # up, but not where clients look
            failures += [f"{name}: port {port} is served by nothing ({instead})" for port, instead in unserved]
        elif health.get(name):
            failures.append(f"{name}: health check failed: {health[name]}")
        else:
            checks.append(f"{name}: up under {want}" + (", healthy" if name in health else ""))
    outcome = Outcome.FAILED if failures else (Outcome.BROKEN_BY_CODE_ISSUE if code_broken else Outcome.PASSED)
    return Verdict(
        mode=mode,
        outcome=outcome,
        failures=tuple(failures),
        code_issues=tuple(f"{svc}: {title}" for svc, title in sorted(code_broken.items())),
        checks=tuple(checks),
    )


def not_ready(
    snapshot: Snapshot,
    profile: Profile,
    mode: Mode,
    services: Iterable[str],
    health: Mapping[str, str | None] | None = None,
) -> list[str]:
    """What keeps ``services`` from serving in their mode's runtime yet (up there, rollout
    complete, health check passing, fully observed). Make before break waits for this to be empty
    before it stops an old owner: the new one must serve first."""
    health = host_health(snapshot, profile, mode) if health is None else health
    view = stack_view(snapshot, profile)
    out = [f"could not observe: {spot}" for name in services for spot in blind_spots(snapshot, profile, name)]
    out += [
        f"{status.runtime} could not be observed ({status.error})"
        for status in snapshot.runtimes
        if not status.reachable
    ]
    code = _code_issues(snapshot, profile)
    for name in services:
        want = target_runtime(profile, mode, name)
        if want is None or _code_issue_in(code, name, want) is not None:
            continue  # a code issue: it will never be ready there, and verify reports it apart
        missing = _up_in_target(view.placements[name], want)
        if missing:
            out.append(f"{name}: not up under {want}: {missing}")
        elif health.get(name):
            out.append(f"{name}: health check failed: {health[name]}")
    return out
