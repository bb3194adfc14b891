"""Advice correct for this host: each finding's commands, pasted in order, act on the service that
is wrong and never leave a service that had an owner with none. The commands are applied to the
snapshot by a small interpreter of exactly the command shapes stackwarden prints."""

from __future__ import annotations

import shlex

from stackwarden.model import KubeObservation, KubeWorkloadState, Listener, PodState, Snapshot
from stackwarden.placement import ready_in, stack_view
from stackwarden.rules import diagnose
from tests.support.builders import PORTS, container, process, profile, proxy_for, seed_snapshot, snapshot, stop_and_wait


def _apply(snap: Snapshot, command: str) -> Snapshot:
    """What the command does to the observed state (only the shapes stackwarden prints); a line
    of several commands joined by ``&&`` is applied part by part."""
    for part in command.split(" && "):
        snap = _apply_one(snap, part)
    return snap


def _apply_one(snap: Snapshot, command: str) -> Snapshot:
    argv = shlex.split(command)
    containers, processes, listeners = list(snap.containers), list(snap.processes), list(snap.listeners)
    kube = snap.kubernetes
    if argv[:2] == ["docker", "compose"]:
        project = argv[argv.index("-p") + 1]
        verb = next(a for a in argv if a in {"stop", "start", "up"})
        services = [argv[-1]]
        for i, c in enumerate(containers):
            if c.compose_project == project and c.compose_service in services:
                state = "exited" if verb == "stop" else "running"
                containers[i] = c.model_copy(
                    update={"state": state, "error": None, "exit_code": 0 if verb == "stop" else None}
                )
        if verb in {"up", "start"} and not any(
            c.compose_project == project and c.compose_service in services for c in containers
        ):
            containers.append(container(services[0], project=project))
        if verb == "stop":
            gone = {c.id for c in containers if c.compose_project == project and c.compose_service in services}
            listeners = [lis for lis in listeners if lis.container_id not in gone]
    elif argv[:2] == ["docker", "stop"]:
        containers = [c.model_copy(update={"state": "exited"}) if c.name == argv[2] else c for c in containers]
    elif argv[0] == "timeout":  # the bounded wait for a stopped PID: changes nothing
        assert argv[2:4] == ["sh", "-c"] and "ps -o stat= -p" in argv[4], command
    elif argv[0] == "kill" or argv[:2] == ["systemctl", "stop"]:
        pid = int(argv[-1]) if argv[0] == "kill" else next(p.pid for p in processes if p.systemd_unit == argv[-1])
        processes = [p for p in processes if p.pid != pid]
        listeners = [lis for lis in listeners if lis.pid != pid]
    elif argv[0] == "kubectl" and "scale" in argv and kube is not None:
        kind_name = argv[argv.index("scale") + 1].split("/")[1]
        replicas = int(argv[-1].split("=")[1])
        workloads = tuple(
            w.model_copy(update={"replicas": replicas}) if w.name == kind_name else w for w in kube.workloads
        )
        pods = tuple(p for p in kube.pods if not (replicas == 0 and p.labels.get("app") == kind_name))
        kube = kube.model_copy(update={"workloads": workloads, "pods": pods})
    return snap.model_copy(
        update={
            "containers": tuple(containers),
            "processes": tuple(processes),
            "listeners": tuple(listeners),
            "kubernetes": kube,
        }
    )


def _waits_after_a_signal(command: str) -> None:
    """A printed ``kill -SIG PID`` waits for that PID to exit before anything else runs: a start
    pasted right after it would otherwise race the old owner for its port."""
    parts = command.split(" && ")
    for index, part in enumerate(parts):
        argv = shlex.split(part)
        if argv[0] == "kill":
            assert index + 1 < len(parts), f"no wait after {part!r}"
            wait = shlex.split(parts[index + 1])
            assert wait[0] == "timeout" and f"-p {argv[-1]} " in wait[-1], f"{part!r} is followed by {wait}"


def _owned(snap: Snapshot, prof: object) -> set[str]:
    view = stack_view(snap, prof)  # type: ignore[arg-type]
    return {s for s, p in view.placements.items() if any(ready_in(p, r) for r in p.runtimes)}


def _check_every_finding(snap: Snapshot, prof: object) -> int:
    before = _owned(snap, prof)
    checked = 0
    for finding in diagnose(snap, prof):  # type: ignore[arg-type]
        after = snap
        for command in finding.commands:
            after = _apply(after, command)
            _waits_after_a_signal(command)
        lost = before - _owned(after, prof)
        assert not lost, f"{finding.id}: pasting {finding.commands} leaves {lost} with no owner"
        checked += 1
    return checked


def test_the_seed_findings_leave_every_running_service_an_owner() -> None:
    assert _check_every_finding(seed_snapshot(), profile()) >= 4


def test_port_conflict_advice_stops_the_host_copy_and_starts_the_compose_one() -> None:
    findings = {f.id: f for f in diagnose(seed_snapshot(), profile())}
    commands = findings[f"port-conflict:{PORTS['postgres']}"].commands
    assert commands[0] == stop_and_wait(2792, "INT")  # the host postgres, its signal, then its exit
    assert commands[1] == "docker compose -p seedstack -f /srv/seed/compose.yaml start postgres"


def test_dual_deployment_keeps_the_home_runtime_and_stops_the_rest() -> None:
    fe = container("frontend", publish=(("0.0.0.0", PORTS["frontend"]),))
    listener, proxy = proxy_for(fe, "0.0.0.0", PORTS["frontend"], 900)
    workload = KubeWorkloadState(
        kind="Deployment",
        name="frontend",
        namespace="seedstack",
        uid="w",
        resource_version="1",
        replicas=5,
        ready_replicas=5,
        selector={"app": "frontend"},
    )
    pods = tuple(
        PodState(
            name=f"frontend-{i}",
            namespace="seedstack",
            uid=f"p{i}",
            phase="Running",
            labels={"app": "frontend"},
            ready=True,
        )
        for i in range(5)
    )
    kube = KubeObservation(namespace="seedstack", workloads=(workload,), pods=pods)
    snap = snapshot(containers=(fe,), listeners=(listener,), processes=(proxy,), kubernetes=kube)
    for mode, kept in (("compose-only", "compose"), ("k8s-only", "kubernetes")):
        prof = profile(default_mode=mode)
        dual = {f.id: f for f in diagnose(snap, prof)}["dual-deployment"]
        assert f"keep frontend in {kept}" in dual.recommendation
        assert len(dual.commands) == 1
        _check_every_finding(snap, prof)


def test_a_host_service_that_cannot_be_started_by_command_is_kept_where_it_runs() -> None:
    host_redis = process(2785, "redis-server", ("redis-server ::1:36379",), exe="/usr/bin/redis-server")
    redis = container("redis", "created", declared=(("0.0.0.0", PORTS["redis"]),), error="bind: address already in use")
    snap = snapshot(
        containers=(redis,),
        listeners=(Listener(address="::1", port=PORTS["redis"], pid=2785),),
        processes=(host_redis,),
    )
    _check_every_finding(snap, profile())


def test_a_service_served_by_the_host_is_moved_not_doubled() -> None:
    host_pg = process(
        2792, "postgres", ("/usr/lib/postgresql/15/bin/postgres",), exe="/usr/lib/postgresql/15/bin/postgres"
    )
    snap = snapshot(
        containers=(container("backend"), container("frontend"), container("redis")),
        listeners=(Listener(address="0.0.0.0", port=PORTS["postgres"], pid=2792),),
        processes=(host_pg,),
    )
    finding = {f.id: f for f in diagnose(snap, profile())}["service-unavailable:postgres:compose"]
    assert finding.severity.value == "medium"  # served meanwhile
    # no container to start: nothing proves the compose file has it, so no command stops the host copy
    assert finding.commands == ()
    assert "stackwarden switch compose-only" in finding.recommendation
    _check_every_finding(snap, profile())
    # with a stopped container to start, the commands move it: stop the host copy, then start it
    stopped = container("postgres", "exited", exit_code=0)
    snap = snap.model_copy(update={"containers": (*snap.containers, stopped)})
    finding = {f.id: f for f in diagnose(snap, profile())}["service-unavailable:postgres:compose"]
    assert finding.commands == (
        stop_and_wait(2792, "INT"),
        "docker compose -p seedstack -f /srv/seed/compose.yaml start postgres",
    )
    _check_every_finding(snap, profile())
