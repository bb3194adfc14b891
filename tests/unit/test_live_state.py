"""The live view's pure part: changes folded into per-runtime parts give the snapshot a whole
observation gives; a lost watch is a gap (not observed, never empty) that holds findings open
instead of resolving them; recent uptimes advance with time; lines carry what a program needs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from stackwarden.live.findings import changes, effective, open_findings, remembered
from stackwarden.live.lines import as_json, as_text
from stackwarden.live.state import (
    ContainerGone,
    ContainerSeen,
    DockerSeen,
    HostSeen,
    KubeList,
    KubeObjectSeen,
    KubeSeen,
    LiveState,
    Lost,
)
from stackwarden.model.base import Runtime
from stackwarden.model.snapshot import Coverage, KubeWorkloadState, PodState, RuntimeStatus, Snapshot
from stackwarden.rules import diagnose
from tests.support.builders import profile, seed_snapshot

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _seeded(seed: Snapshot | None = None, kubernetes: bool = False) -> LiveState:
    seed = seed or seed_snapshot()
    state = LiveState(seed.profile, seed.hostname, kubernetes=kubernetes)
    docker, host = (seed.runtime_status(r) for r in (Runtime.COMPOSE, Runtime.HOST))
    assert docker is not None and host is not None
    state.apply(DockerSeen(status=docker, containers=seed.containers, networks=seed.networks, at=T0))
    state.apply(
        HostSeen(
            status=host,
            listeners=seed.listeners,
            processes=seed.processes,
            health=(),
            at=T0,
            context=seed.host_context,
        )
    )
    return state


def test_the_parts_give_the_snapshot_a_whole_observation_gives() -> None:
    seed = seed_snapshot()
    state = _seeded(seed)
    assert state.complete
    assert state.snapshot(seed.taken_at) == seed
    assert diagnose(state.snapshot(T0), profile()) == diagnose(seed, profile())


def test_a_container_event_changes_the_diagnosis() -> None:
    state = _seeded()
    backend = next(c for c in state.docker.containers.values() if c.compose_service == "backend")
    assert "crash-loop:backend" in {f.id for f in diagnose(state.snapshot(T0), profile())}
    state.apply(ContainerGone(container_id=backend.id, at=T0 + timedelta(seconds=1)))
    assert "crash-loop:backend" not in {f.id for f in diagnose(state.snapshot(T0), profile())}
    state.apply(ContainerSeen(container=backend, at=T0 + timedelta(seconds=2)))
    assert "crash-loop:backend" in {f.id for f in diagnose(state.snapshot(T0), profile())}


def test_a_lost_watch_is_a_gap_that_holds_findings_open_until_seen_again() -> None:
    prof, state = profile(), _seeded()
    before = open_findings(diagnose(state.snapshot(T0), prof))
    state.apply(Lost(runtime=Runtime.COMPOSE, reason="stream ended: engine restarted", at=T0 + timedelta(seconds=5)))
    blind_snapshot = state.snapshot(T0 + timedelta(seconds=6))
    status = blind_snapshot.runtime_status(Runtime.COMPOSE)
    assert status is not None and not status.reachable and "engine restarted" in (status.error or "")
    assert blind_snapshot.containers == ()  # not seen, reported as such: never "no containers"
    current = diagnose(blind_snapshot, prof)
    assert "crash-loop:backend" not in {f.id for f in current}
    held = open_findings(effective(before, current, frozenset(state.gaps())))
    events = {(c.event, c.finding_id) for c in changes(before, held, profile="p", at=T0)}
    assert ("opened", "runtime-unreachable:compose") in events
    assert not [e for e in events if e[0] == "resolved"], events  # a gap resolves nothing
    # seen again, without the crash loop: now it really resolves, and so does the gap
    seed = seed_snapshot()
    docker = seed.runtime_status(Runtime.COMPOSE)
    assert docker is not None
    healed = tuple(c for c in seed.containers if c.compose_service != "backend")
    state.apply(DockerSeen(status=docker, containers=healed, networks=(), at=T0 + timedelta(seconds=9)))
    assert state.gaps() == {}
    after = open_findings(effective(held, diagnose(state.snapshot(T0), prof), frozenset()))
    resolved = {c.finding_id for c in changes(held, after, profile="p", at=T0) if c.event == "resolved"}
    assert {"crash-loop:backend", "runtime-unreachable:compose"} <= resolved


def test_remembered_findings_name_no_runtime_so_any_gap_holds_them() -> None:
    stored = {"crash-loop:backend": {"rule": "crash-loops", "severity": "critical", "services": ["backend"]}}
    previous = remembered(stored)
    assert previous["crash-loop:backend"].severity == "critical"
    assert "crash-loop:backend" in {f.id for f in effective(previous, (), frozenset({Runtime.KUBERNETES}))}
    assert effective(previous, (), frozenset()) == ()


def _pod(name: str, uptime: float | None, **extra: object) -> PodState:
    return PodState(name=name, namespace="ns", uid=name, phase="Running", uptime_seconds=uptime, **extra)  # type: ignore[arg-type]


def test_recent_uptimes_advance_and_the_next_deadline_is_when_they_cross_the_line() -> None:
    state = LiveState("p", "h", kubernetes=True)
    complete = Coverage(runtime=Runtime.KUBERNETES, kind="pods", state="complete")
    state.apply(
        KubeSeen(
            status=RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=True),
            context=None,
            contexts=(),
            namespace="ns",
            lists={"pods": KubeList(objects={"old": _pod("old", 3600.0)}, coverage=complete)},
            logs_forbidden=None,
            at=T0,
        )
    )
    flapping = _pod("flap", 5.0, restart_count=3, last_exit_code=1, ready=True)
    state.apply(KubeObjectSeen(kind="pods", name="flap", obj=flapping, at=T0))
    assert state.next_deadline(T0) == T0 + timedelta(seconds=25)
    assert state.next_deadline(T0 + timedelta(seconds=26)) is None  # crossed: nothing left to wait for
    kube = state.snapshot(T0 + timedelta(seconds=10)).kubernetes
    assert kube is not None
    pods = {p.name: p for p in kube.pods}
    assert pods["flap"].uptime_seconds == 15.0 and pods["flap"].is_crash_looping
    assert pods["old"].uptime_seconds == 3600.0
    later = state.snapshot(T0 + timedelta(seconds=26)).kubernetes
    assert later is not None and not {p.name: p for p in later.pods}["flap"].is_crash_looping


def test_workloads_of_a_kind_are_listed_in_the_audits_order() -> None:
    state = LiveState("p", "h", kubernetes=True)
    complete = Coverage(runtime=Runtime.KUBERNETES, kind="deployments", state="complete")
    workloads = {
        n: KubeWorkloadState(kind="Deployment", name=n, namespace="ns", uid=n, resource_version="1", replicas=1)
        for n in ("web", "api")
    }
    state.apply(
        KubeSeen(
            status=RuntimeStatus(runtime=Runtime.KUBERNETES, reachable=True),
            context=None,
            contexts=(),
            namespace="ns",
            lists={"deployments": KubeList(objects=workloads, coverage=complete)},
            logs_forbidden=None,
            at=T0,
        )
    )
    kube = state.snapshot(T0).kubernetes
    assert kube is not None and [w.name for w in kube.workloads] == ["api", "web"]


def test_a_json_line_has_time_event_id_severity_and_summary() -> None:
    prof, state = profile(), _seeded()
    now_open = open_findings(diagnose(state.snapshot(T0), prof))
    lines = [json.loads(as_json(c)) for c in changes({}, now_open, profile="seedstack", at=T0)]
    crash = next(line for line in lines if line["id"] == "crash-loop:backend")
    assert crash["event"] == "opened" and crash["severity"] == "critical"
    assert {"time", "event", "id", "severity", "summary", "profile", "rule"} <= set(crash)
    assert datetime.fromisoformat(crash["time"]) == T0
    text = as_text(changes({}, now_open, profile="seedstack", at=T0, initial=True)[0])
    assert " open " in text and "\n" not in text


def test_only_what_can_concern_the_profile_is_worth_a_diagnosis() -> None:
    from stackwarden.live.state import Concern, NetworksSeen
    from tests.support.builders import PORTS, container

    seed = seed_snapshot()
    state = LiveState(
        seed.profile,
        seed.hostname,
        kubernetes=False,
        concern=Concern(frozenset({"seedstack"}), frozenset(PORTS.values())),
    )
    docker = seed.runtime_status(Runtime.COMPOSE)
    assert docker is not None
    state.apply(DockerSeen(status=docker, containers=seed.containers, networks=seed.networks, at=T0))
    stranger = container("worker", project="otherstack", networks=("otherstack_default",))
    assert not state.matters(ContainerSeen(container=stranger, at=T0))  # another project's business
    state.apply(ContainerSeen(container=stranger, at=T0))
    assert not state.matters(ContainerGone(container_id=stranger.id, at=T0))
    ours = next(c for c in seed.containers if c.compose_service == "backend")
    assert state.matters(ContainerSeen(container=ours, at=T0))
    squatter = container("web", project="otherstack", publish=(("0.0.0.0", PORTS["redis"]),))
    assert state.matters(ContainerSeen(container=squatter, at=T0))  # a foreign owner of a profile port
    neighbour = container("spy", project="otherstack", networks=("seedstack_default",))
    assert state.matters(ContainerSeen(container=neighbour, at=T0))  # on the profile's network
    assert not state.matters(NetworksSeen(networks=seed.networks, at=T0))
    from stackwarden.model.snapshot import DockerNetwork

    theirs = DockerNetwork(id="n1", name="otherstack_default", driver="bridge", compose_project="otherstack")
    kind = DockerNetwork(id="n2", name="kind", driver="bridge")
    assert not state.matters(NetworksSeen(networks=(*seed.networks, theirs), at=T0))
    assert state.matters(NetworksSeen(networks=(*seed.networks, kind), at=T0))  # a local cluster appeared
    assert state.matters(Lost(runtime=Runtime.COMPOSE, reason="gone", at=T0))
