"""Host processes that answer to a port-less service's name but are not it (stackwarden.identity)."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden import commands
from stackwarden.model.base import Runtime, Severity
from stackwarden.model.finding import Finding, Location
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import stack_view
from stackwarden.rules.registry import rule


@rule("host-process-not-service")
def host_process_not_service(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """Medium: a process named like a port-less service (or running its file) that is not it by
    executable, owner or namespace. stackwarden never stops it; a person needs to know whether
    it is an impostor (``exec -a celery ...``, another user's copy) or the real service under a
    profile that lacks its ``user`` or ``exe``. A port's owners are the port rules' concern."""
    view = stack_view(snapshot, profile)
    for name, placement in view.placements.items():
        if profile.services[name].ports:
            continue
        for process, why in placement.passed_over:
            flat = " ".join(" ".join(process.cmdline).split())
            yield Finding(
                id=f"host-process-not-service:{name}:{process.pid}",
                rule="host-process-not-service",
                title=f"Process {process.pid} answers to {name} but is not it",
                severity=Severity.MEDIUM,
                services=(name,),
                runtimes=(Runtime.HOST,),
                summary=f"PID {process.pid} is not taken for {name}: {why}. stackwarden will not stop it.",
                evidence=(f"PID {process.pid} ({process.name}) {why}", *((f"cmdline: {flat[:160]}",) if flat else ())),
                locations=(
                    Location(runtime=Runtime.HOST, kind="process", name=process.name, detail=f"PID {process.pid}"),
                ),
                recommendation=(
                    f"Find out who started it. If it really is {name}, name its executable file and user in "
                    f"services.{name}.host.exe / services.{name}.host.user; otherwise it is not stackwarden's to stop."
                ),
                action=f"Identify PID {process.pid}",
                commands=(commands.process_lookup(process),),
            )
