"""verdict(snapshot, profile, mode, health) -> Verdict: do the mode's invariants hold? (pure)

Invariants per service: it runs only in its mode's runtime, it is up there (rollout complete),
each of its host ports is owned by that runtime or free, and its health check passes. A crash
loop classified as a code issue is reported apart: the switch did its job, the code did not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stackwarden.model.base import CrashCategory, Mode, Runtime
from stackwarden.model.finding import Finding
from stackwarden.model.plan import Outcome, ServiceWhere, Verdict
from stackwarden.model.profile import NoHomePolicy, Profile
from stackwarden.model.snapshot import Container, Snapshot
from stackwarden.placement import ServicePlacement, StackView, container_ready, ready_in, stack_view
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


@dataclass
class _Judged:
    """One service's share of a verdict."""

    failures: list[str] = field(default_factory=list)
    unobserved: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    code_issue: str | None = None


def _judge(
    view: StackView,
    profile: Profile,
    mode: Mode,
    placement: ServicePlacement,
    want: Runtime,
    *,
    blind_runtimes: Mapping[Runtime, str],
    code_findings: Mapping[str, list[Finding]],
    health: Mapping[str, str | None],
) -> _Judged:
    """A service with a home in ``want``: it runs nowhere else, owns its ports there, is up,
    serves its ports and passes its health check; nothing is judged where it was not seen."""
    name, out = placement.service, _Judged()
    for runtime, what in _present(placement).items():
        if runtime is not want:
            out.failures.append(f"{name}: still runs under {runtime} ({what}); {mode} allows only {want}")
    for port in profile.services[name].ports:
        for owner in view.port_owners.get(port, ()):
            if owner.container is None and owner.proxied_to is not None and Runtime.COMPOSE in blind_runtimes:
                # a docker-proxy whose container the engine could not name because it was not
                # observed: not seen, not someone else's
                line = f"{name}: port {port} is published by a container not identified (compose not observed)"
                out.failures.append(line)
                out.unobserved.append(line)
            elif owner.runtime is not want:
                out.failures.append(f"{name}: port {port} is owned by {owner.label}, not by {want}")
            elif not owner.in_profile:  # right runtime, someone else's: its answer is not ours
                out.failures.append(f"{name}: port {port} is owned by {owner.label}, which is not {name}")
    if want in blind_runtimes:  # not seen is not down: say so, judge nothing there
        line = f"{name}: not observed under {want} ({blind_runtimes[want]})"
        out.failures.append(line)
        out.unobserved.append(line)
        return out
    finding = _code_issue_in(code_findings, name, want)
    if finding is not None:  # it crashes where it should run
        out.code_issue = finding.title
        out.checks.append(f"{name}: in {want}, broken by a code issue ({finding.title})")
        return out
    missing = _up_in_target(placement, want)
    if missing:
        out.failures.append(f"{name}: not up under {want}: {missing}")
    elif unserved := unserved_ports(view, profile, name):  # up, but not where clients look
        out.failures += [f"{name}: port {port} is served by nothing ({instead})" for port, instead in unserved]
    elif health.get(name):
        out.failures.append(f"{name}: health check failed: {health[name]}")
    else:
        out.checks.append(f"{name}: up under {want}" + (", healthy" if name in health else ""))
    return out


def _unobserved_runtimes(snapshot: Snapshot) -> dict[Runtime, str]:
    """Runtimes of the profile that could not be observed, with why."""
    return {status.runtime: status.error or "unreachable" for status in snapshot.runtimes if not status.reachable}


def verdict(
    snapshot: Snapshot,
    profile: Profile,
    mode: Mode,
    health: Mapping[str, str | None] | None = None,
) -> Verdict:
    """Check every service's invariants; ``health`` maps a service to an error (None = healthy),
    by default the snapshot's own checks.

    What could not be observed is never judged as absent: a runtime that was not seen adds one
    "could not be observed" line (in ``failures`` and ``unobserved``) and no service is said to
    be missing, stopped or scaled to 0 there."""
    health = host_health(snapshot, profile, mode) if health is None else health
    view = stack_view(snapshot, profile)
    code_findings = _code_issues(snapshot, profile)
    code_broken: dict[str, str] = {}
    blind_runtimes = _unobserved_runtimes(snapshot)
    unobserved: list[str] = [
        f"{runtime} could not be observed ({error}): the mode cannot be verified"
        for runtime, error in blind_runtimes.items()
    ]
    failures: list[str] = list(unobserved)
    checks: list[str] = []
    for name, placement in view.placements.items():
        want = target_runtime(profile, mode, name)
        if want is None:
            failures.append(f"{name}: no runtime assigned for {mode}")
            continue
        spots = [f"could not observe: {spot}" for spot in blind_spots(snapshot, profile, name)]
        failures += spots
        unobserved += spots
        if not profile.has_home(name, want):
            policy = profile.services[name].no_home
            if policy is NoHomePolicy.LEAVE:
                checks.append(f"{name}: no home in {want}; left as it runs (no_home: leave), not verified")
            elif policy is NoHomePolicy.STOP:
                present = _present(placement)
                failures += [f"{name}: still runs under {r} ({w}) though no_home is 'stop'" for r, w in present.items()]
                if not present and not blind_runtimes:
                    checks.append(f"{name}: no home in {want}; runs nowhere (no_home: stop)")
            else:
                failures.append(f"{name}: has no home in {want} and no_home is 'refuse'")
            continue
        judged = _judge(
            view,
            profile,
            mode,
            placement,
            want,
            blind_runtimes=blind_runtimes,
            code_findings=code_findings,
            health=health,
        )
        failures += judged.failures
        unobserved += judged.unobserved
        checks += judged.checks
        if judged.code_issue is not None:
            code_broken[name] = judged.code_issue
    outcome = Outcome.FAILED if failures else (Outcome.BROKEN_BY_CODE_ISSUE if code_broken else Outcome.PASSED)
    return Verdict(
        mode=mode,
        outcome=outcome,
        failures=tuple(failures),
        code_issues=tuple(f"{svc}: {title}" for svc, title in sorted(code_broken.items())),
        checks=tuple(checks),
        unobserved=tuple(dict.fromkeys(unobserved)),
    )


def where_now(snapshot: Snapshot, profile: Profile) -> tuple[ServiceWhere, ...]:
    """Where each service runs now, per runtime ("not observed" where the runtime was not seen),
    and whether some owner of it is up and ready: the table an incomplete rollback prints."""
    view = stack_view(snapshot, profile)
    blind = _unobserved_runtimes(snapshot)
    rows = []
    for name, placement in view.placements.items():
        present = _present(placement)
        cells = {
            runtime: ("not observed" if runtime in blind else present.get(runtime, "-"))
            for runtime in (Runtime.COMPOSE, Runtime.KUBERNETES, Runtime.HOST)
        }
        ready = any(ready_in(placement, runtime) for runtime in placement.runtimes if runtime not in blind)
        rows.append(
            ServiceWhere(
                service=name,
                compose=cells[Runtime.COMPOSE],
                kubernetes=cells[Runtime.KUBERNETES] if profile.kubernetes is not None else "-",
                host=cells[Runtime.HOST],
                serving=True if ready else (None if blind else False),
            )
        )
    return tuple(rows)


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
