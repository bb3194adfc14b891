"""The cause behind the cause: a service that fails because a profile service it needs is down.

The rules report each service on its own (a crash loop with its decisive line, a service with no
ready instance with the runtime's reason). When a failure is about a dependency (the connection
was refused, reset or timed out, the name did not resolve, a wait never ended), this pass finds
the dependency through the stack's dependency graph (``stackwarden.dependencies``) and:

- if it is a profile service that is down where the failing one reaches it, the failure's cause
  becomes ``dependency-down`` with the severity of the dependency's own failure (never a code
  issue), the finding says the chain ("api crashes because orders-db is scaled to 0") and points
  at the root cause (``caused_by``), and the root's finding names its dependents: one root-cause
  finding per chain;
- if it is a profile service that is ready only in a runtime the failing one cannot reach, the
  cause is a deployment conflict (run both in one runtime);
- if it is up where it is reached, the address, port or credentials are to blame, not the
  dependency;
- if the address leads to no profile service, the finding says so ("connects to 10.0.0.5:5432,
  which no profile service provides") instead of guessing.

Finding ids never change here: a chain rewrites what a finding says, not which finding it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackwarden.dependencies import AddressBook, DependencyGraph, Origin, Resolution, dependency_graph
from stackwarden.model.base import CrashCategory, Runtime, Severity
from stackwarden.model.finding import CrashCause, Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import StackView, home_runtime, ready_in, stack_view, start_command

FAILURE_RULES = frozenset({"crash-loops", "service-unavailable"})
"""Findings whose failure may be a dependency's fault (they are linked when it is)."""
ROUTING_RULES = frozenset({"service-port-mismatch", "service-no-endpoints", "service-selector-unmatched"})
"""Findings that make a ready service unreachable through its Service: a root for whoever
connects through that Service."""
_RUNTIMES = (Runtime.COMPOSE, Runtime.KUBERNETES, Runtime.HOST)


@dataclass(frozen=True)
class _Link:
    """One failing finding and the profile service its failure leads to."""

    finding: Finding
    dependency: str
    runtime: Runtime | None
    how: str


def verb(finding: Finding) -> str:
    """How a finding's service fails, as a chain says it: crashes, died, waits, is not ready."""
    if finding.rule == "crash-loops":
        return "crashes"
    kind = finding.cause.dependency.kind if finding.cause and finding.cause.dependency else None
    if kind == "wait":
        return "waits"
    if finding.cause is not None and "died" in finding.cause.explanation:
        return "died"
    return "is not ready"


def _origin(snapshot: Snapshot, finding: Finding) -> Origin:
    """Where the failing service connects from: the runtime of its failing location, and for a
    container whether it shares the host's network."""
    location = finding.locations[0] if finding.locations else None
    runtime = location.runtime if location is not None else (finding.runtimes or (Runtime.HOST,))[0]
    if runtime is Runtime.COMPOSE and location is not None:
        container = next((c for c in snapshot.containers if c.name == location.name), None)
        return Origin(runtime, container is not None and container.host_networked)
    return Origin(runtime)


def _down_findings(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    """Per service, the findings that say it is down (a crash loop, no ready instance)."""
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if f.rule in FAILURE_RULES | ROUTING_RULES and f.severity is not Severity.OK:
            for service in f.services:
                out.setdefault(service, []).append(f)
    return out


def _own_finding(down: list[Finding], runtime: Runtime | None, home: Runtime | None) -> Finding | None:
    """The dependency's own finding for where it is reached: that runtime's, its crash loop,
    its home's, any."""

    def rank(f: Finding) -> int:
        if runtime is not None and runtime in f.runtimes:
            return 0
        if f.rule == "crash-loops":
            return 1
        return 2 if home is not None and home in f.runtimes else 3

    return min(down, key=rank) if down else None


_UNMAPPED_ADVICE = {
    "outside": "That address is outside the profile: check it, or start what should answer there.",
    "loopback": "Point it at the dependency's compose service or Kubernetes Service name, not at its own loopback.",
    "port": "Point it at a port that Service serves (or add the port to the Service).",
    "address": "Make the dependency listen on the address its clients use (for localhost, both 127.0.0.1 and ::1), "
    "or point the client at an address it listens on (localhost may resolve to ::1 first).",
}
_ACTIONS = {
    CrashCategory.CONFIGURATION: "Fix the address it connects to",
    CrashCategory.DEPLOYMENT_CONFLICT: "Run both in one runtime",
}


class _Linker:
    """Resolves each dependency failure once, then follows the links to their roots."""

    def __init__(self, findings: Sequence[Finding], snapshot: Snapshot, profile: Profile) -> None:
        self.findings = list(findings)
        self.snapshot = snapshot
        self.profile = profile
        self.view: StackView = stack_view(snapshot, profile)
        self.book = AddressBook(snapshot, profile, self.view)
        self.graph: DependencyGraph = dependency_graph(profile, self.view, self.book)
        self.down = _down_findings(findings)
        self.links: dict[str, _Link] = {}
        self.notes: dict[str, tuple[str, str, CrashCategory | None]] = {}

    # ------------------------------------------------------------------ resolution
    def _resolve(self, finding: Finding) -> Resolution | None:
        """The profile service (or none) the failure leads to: by the address the failure names,
        else by the service's declared dependencies that are down."""
        cause = finding.cause
        failure = cause.dependency if cause is not None else None
        if failure is None or not finding.services:
            return None
        service = finding.services[0]
        origin = _origin(self.snapshot, finding)
        if failure.host is not None or failure.port is not None:
            return self.book.resolve(failure.host, failure.port, origin)
        declared = [
            e for e in self.graph.needs(service) if e.runtime is origin.runtime or origin.runtime is Runtime.HOST
        ]
        down = [e for e in declared if not ready_in(self.view.placements[e.target], e.runtime)]
        if not down:
            return None
        edge = down[0]
        return Resolution(
            edge.target,
            edge.runtime,
            f"{edge.target} (the log names no address; of what {service} is configured to reach, {edge.via} is down)",
        )

    def _declared(self, service: str) -> str:
        """What the service is configured to reach and how each is: when the address it failed on
        leads nowhere, whether its own dependencies are up tells a wrong address from a down one."""
        edges = self.graph.needs(service)
        if not edges:
            return ""
        parts = []
        for edge in edges:
            placement = self.view.placements[edge.target]
            state = f"ready in {edge.runtime}" if ready_in(placement, edge.runtime) else f"not ready in {edge.runtime}"
            parts.append(f"{edge.target} ({edge.via.split(' -> ')[0]}, {state})")
        return f" What {service} is configured to reach: {'; '.join(dict.fromkeys(parts))}."

    def resolve_all(self) -> None:
        for f in self.findings:
            if f.rule not in FAILURE_RULES:
                continue
            found = self._resolve(f)
            if found is None:
                continue
            service = f.services[0]
            if found.service is None:
                self.notes[f.id] = (
                    f"It connects to {found.how}.{self._declared(service)}",
                    _UNMAPPED_ADVICE[found.kind],
                    CrashCategory.CONFIGURATION,
                )
                continue
            if found.service == service:
                continue
            self._judge(f, service, found)

    def _judge(self, f: Finding, service: str, found: Resolution) -> None:
        """Down where it is reached: a link. Ready only elsewhere: a split across runtimes. Up
        where it is reached: the address is to blame, not the dependency."""
        dep = found.service or ""
        placement = self.view.placements[dep]
        reached = found.runtime
        origin = _origin(self.snapshot, f).runtime
        if reached is not None and not found.host_port and origin is not Runtime.HOST and reached is not origin:
            self.notes[f.id] = (  # a pod naming a compose service, a container naming a Service
                f"It connects to {found.how}.",
                f"Run {service} and {dep} in one runtime (stackwarden switch MODE), or give {service} an address "
                f"it can reach {dep} at.",
                CrashCategory.DEPLOYMENT_CONFLICT,
            )
            return
        routing = [g for g in self.down.get(dep, []) if g.rule in ROUTING_RULES]
        if reached is Runtime.KUBERNETES and routing:
            self.links[f.id] = _Link(f, dep, reached, found.how)  # ready pods, but its Service leads nowhere
            return
        if reached is not None and ready_in(placement, reached):
            self.notes[f.id] = (  # neither a conflict between runtimes nor a dependency that is down
                f"It connects to {found.how}, which is ready in {reached}: {dep} is up, so check the port, "
                "credentials and network it uses.",
                f"{dep} is up; the address or settings {service} uses to reach it are wrong.",
                CrashCategory.CONFIGURATION,
            )
            return
        served = [r for r in _RUNTIMES if ready_in(placement, r)]
        if served:
            self.notes[f.id] = (
                f"It connects to {found.how}; {dep} runs only in {', '.join(served)}, where {service} in {origin} "
                "cannot reach it.",
                f"Run {service} and {dep} in one runtime (stackwarden switch MODE); starting a second copy of {dep} "
                "would split it across runtimes.",
                CrashCategory.DEPLOYMENT_CONFLICT,
            )
            return
        self.links[f.id] = _Link(f, dep, reached, found.how)

    # ------------------------------------------------------------------ roots
    def root(self, link: _Link) -> tuple[list[str], Finding | None]:
        """The services from the failing one to the root (a repeated name: a cycle), and the
        root's own finding (None when it has none: it is expected nowhere)."""
        path = [link.finding.services[0]]
        current = link
        while True:
            path.append(current.dependency)
            down = self.down.get(current.dependency, [])
            nxt = next((self.links[f.id] for f in down if f.id in self.links), None)
            if nxt is None or current.dependency in path[:-1]:
                home = home_runtime(self.profile, current.dependency)
                return path, _own_finding(down, current.runtime, home)
            current = nxt

    # ------------------------------------------------------------------ rewriting
    def _condition(self, service: str, own: Finding | None) -> str:
        if own is not None:
            return own.condition or f"is down ({own.title})"
        home = home_runtime(self.profile, service)
        return "runs nowhere" + (f" (its home is {home})" if home else " (the profile gives it no home in this mode)")

    def _root_commands(self, service: str, own: Finding | None) -> tuple[str, ...]:
        if own is not None:
            return own.commands
        placement = self.view.placements[service]
        runtime = home_runtime(self.profile, service) or Runtime.COMPOSE
        start = start_command(self.snapshot, self.profile, placement, runtime)
        return (start,) if start else ()

    def _chained(self, link: _Link, path: list[str], own: Finding | None) -> Finding:
        """The dependent's finding, saying the chain, with the root's severity and advice."""
        f, root_service = link.finding, path[-1]
        steps = [f"{path[0]} {verb(f)}"]
        for middle in path[1:-1]:
            middle_own = _own_finding(self.down.get(middle, []), None, None)
            steps.append(f"{middle} {verb(middle_own) if middle_own else 'is down'}")
        steps.append(f"{root_service} {self._condition(root_service, own)}")
        chain = " because ".join(steps)
        decisive = f.cause.decisive_line if f.cause else None
        where = "; ".join(
            loc.detail if loc.detail.startswith(loc.name) else f"{loc.name} ({loc.detail})"
            for loc in f.locations
            if loc.detail
        )
        summary = f"{chain}. {path[0]} connects to {link.how}." + (f" {path[0]}: {where}" if where else "")
        summary += f"; it reports: {decisive}" if decisive else ""
        cause = f.cause or CrashCause(category=CrashCategory.UNKNOWN, signature="", explanation="", confidence=0.5)
        recovery = {
            "crashes": f"{path[0]} recovers on its next restart once {link.dependency} answers.",
            "waits": f"{path[0]} goes on by itself once {link.dependency} answers.",
        }.get(verb(f), f"Start {path[0]} again once {link.dependency} answers.")
        advice = f" (finding {own.id}): {own.recommendation}" if own is not None else ": start it where it belongs."
        own_commands = tuple(c for c in f.commands if " logs " in f" {c} " or " describe " in f" {c} ")
        dependency_state = self._condition(
            link.dependency, _own_finding(self.down.get(link.dependency, []), None, None)
        )
        return f.model_copy(
            update={
                "severity": own.severity if own is not None else self._orphan_severity(root_service),
                "summary": summary,
                "cause": cause.model_copy(
                    update={
                        "category": CrashCategory.DEPENDENCY_DOWN,
                        "signature": "dependency-down",
                        "explanation": f"{chain}: fix {root_service}, not {path[0]}.",
                        "confidence": max(cause.confidence, 0.85),
                        "alternative": None,
                    }
                ),
                "caused_by": own.id if own is not None else None,
                "chain": tuple(path),
                "recommendation": f"Fix {root_service} first, not {path[0]}{advice} {recovery}",
                "commands": tuple(dict.fromkeys((*self._root_commands(root_service, own), *own_commands))),
                "action": f"Fix {root_service} first",
                "evidence": (*f.evidence, f"{link.dependency}: {dependency_state}"),
            }
        )

    def rewrite(self) -> list[Finding]:
        """Every finding, the linked ones saying their chain, roots naming their dependents,
        unlinked dependency failures saying where their address leads."""
        by_id = {f.id: f for f in self.findings}
        dependents: dict[str, list[tuple[str, str]]] = {}
        out: dict[str, Finding] = {}
        for fid, link in self.links.items():
            path, own = self.root(link)
            if path[-1] in path[:-1]:  # a cycle: each waits for the other; their own findings stand
                loop = " -> ".join(path[path.index(path[-1]) :])
                self.notes[fid] = (
                    f"It waits for {link.dependency}, and they wait for each other ({loop}): a dependency cycle.",
                    "Break the cycle: one of them must start without the other (retry in the background, or "
                    "drop the hard dependency at start-up).",
                    None,
                )
                continue
            out[fid] = self._chained(link, path, own)
            if own is not None:
                decisive = link.finding.cause.decisive_line if link.finding.cause else None
                line = f"{path[0]} {verb(link.finding)} because of it" + (f": {decisive}" if decisive else "")
                dependents.setdefault(own.id, []).append((path[0], line))
        for fid, (note, advice, category) in self.notes.items():
            f = out.get(fid, by_id[fid])
            update: dict[str, object] = {"summary": f"{f.summary.rstrip('.')}. {note}"}
            if category is not None and f.cause is not None and category is not f.cause.category:
                # what the crash alone suggested no longer holds: the note's advice replaces it, and
                # the summary's "Cause: deployment conflict (...)" says the category that holds
                update["cause"] = f.cause.model_copy(update={"category": category})
                update["recommendation"] = f"{f.cause.explanation} {advice}"
                update["action"] = _ACTIONS[category]
                said, now = (c.value.replace("-", " ") for c in (f.cause.category, category))
                update["summary"] = str(update["summary"]).replace(f"Cause: {said} (", f"Cause: {now} (", 1)
            else:
                update["recommendation"] = f"{f.recommendation} {advice}".strip()
            out[fid] = f.model_copy(update=update)
        for rid, items in dependents.items():
            root = out.get(rid, by_id[rid])
            names = tuple(sorted({name for name, _ in items}))
            out[rid] = root.model_copy(
                update={
                    "dependents": names,
                    "summary": f"{root.summary.rstrip('.')}. Root cause: {', '.join(names)} "
                    f"{'fails' if len(names) == 1 else 'fail'} because of it.",
                    "evidence": (*root.evidence, *sorted({line for _, line in items})),
                }
            )
        return [out.get(f.id, f) for f in self.findings]

    def _orphan_severity(self, service: str) -> Severity:
        """A dependency that is down with no finding of its own (expected nowhere): high for the
        core group, as service-unavailable would say."""
        return Severity.HIGH if self.profile.services[service].group == "core" else Severity.MEDIUM


def link_chains(findings: Sequence[Finding], snapshot: Snapshot, profile: Profile) -> tuple[Finding, ...]:
    """The findings with every dependency failure linked to its root cause (see the module)."""
    if not any(f.rule in FAILURE_RULES and f.cause is not None and f.cause.dependency for f in findings):
        return tuple(findings)  # nothing about a dependency: no graph to build
    linker = _Linker(findings, snapshot, profile)
    linker.resolve_all()
    return tuple(linker.rewrite())
