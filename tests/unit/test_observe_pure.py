"""Pure observation helpers: systemd units, docker-proxy attribution, redaction, events."""

from __future__ import annotations

import json

from stackwarden.events import transitions
from stackwarden.model import Listener
from stackwarden.observe import attribute_docker_proxies, systemd_unit_from_cgroup
from stackwarden.placement import stack_view
from stackwarden.rules import diagnose
from stackwarden.sanitize import redact_argv, redact_text
from tests.support.builders import (
    HOST_CONTEXT,
    PORTS,
    container,
    process,
    profile,
    proxy_for,
    seed_snapshot,
    snapshot,
)


def test_systemd_unit_from_cgroup_v1_and_v2() -> None:
    v2 = "0::/system.slice/redis-server.service\n"
    v1 = "12:pids:/system.slice/postgresql@15-main.service\n1:name=systemd:/system.slice/postgresql@15-main.service\n"
    assert systemd_unit_from_cgroup(v2) == "redis-server.service"
    assert systemd_unit_from_cgroup(v1) == "postgresql@15-main.service"
    assert systemd_unit_from_cgroup("0::/user.slice/user-0.slice/session-3.scope\n") is None
    assert systemd_unit_from_cgroup("") is None


def test_docker_proxy_listener_belongs_to_its_container() -> None:
    c = container("redis", publish=(("127.0.0.1", 36379),))
    listener, proxy = proxy_for(c, "127.0.0.1", 36379, 901)
    (attributed,) = attribute_docker_proxies([listener], [proxy], [c])
    assert attributed.container_id == c.id


def test_a_docker_proxy_of_another_user_does_not_speak_for_a_container() -> None:
    """Anyone can copy a listener to ~/docker-proxy with the container's IP in its argv: only
    root's proxy (or a rootless engine's, run by the observing user) is the container's."""
    c = container("redis", publish=(("127.0.0.1", 36379),))
    listener, proxy = proxy_for(c, "127.0.0.1", 36379, 901)
    forged = proxy.model_copy(update={"uid": 1000, "uids": (1000, 1000, 1000), "exe": "/home/eve/docker-proxy"})
    (attributed,) = attribute_docker_proxies([listener], [forged], [c], HOST_CONTEXT)
    assert attributed.container_id is None
    snap = snapshot(containers=(c,), listeners=(listener,), processes=(forged,))
    (owner,) = stack_view(snap, profile()).port_owners[PORTS["redis"]]
    assert owner.container is None and owner.proxied_to is None and not owner.in_profile  # a process, foreign
    as_eve = HOST_CONTEXT.model_copy(update={"uid": 1000, "user": "eve"})  # eve's rootless engine
    (attributed,) = attribute_docker_proxies([listener], [forged], [c], as_eve)
    assert attributed.container_id == c.id


def test_plain_process_listener_is_not_attributed() -> None:
    c = container("redis", publish=(("127.0.0.1", 36379),))
    listener = Listener(address="::1", port=36379, pid=5)
    (attributed,) = attribute_docker_proxies([listener], [process(5, "redis-server")], [c])
    assert attributed.container_id is None


def test_docker_proxy_without_container_ip_falls_back_to_published_port() -> None:
    c = container("frontend", publish=(("0.0.0.0", 31000),))
    proxy = process(9, "docker-proxy", ("/usr/bin/docker-proxy", "-proto", "tcp"), exe="/usr/bin/docker-proxy")
    (attributed,) = attribute_docker_proxies([Listener(address="0.0.0.0", port=31000, pid=9)], [proxy], [c])
    assert attributed.container_id == c.id


def test_secrets_never_reach_evidence() -> None:
    assert redact_argv(["redis-server", "--requirepass", "hunter2"]) == (
        "redis-server",
        "--requirepass",
        "***",
    )
    assert redact_argv(["app", "--db-password=hunter2"]) == ("app", "--db-password=***")
    assert "hunter2" not in redact_text("DATABASE_URL=postgres://app:hunter2@db:5432/x")
    assert "hunter2" not in redact_text("PGPASSWORD=hunter2 psql")
    assert redact_text("src/services/secret_manager.rs:42:9") == "src/services/secret_manager.rs:42:9"


def test_events_open_once_and_resolve_when_gone() -> None:
    findings = diagnose(seed_snapshot(), profile())
    opened, resolved = transitions([], findings)
    assert {f.id for f in opened} == {f.id for f in findings if f.severity != "ok"}
    again, none = transitions([f.id for f in opened], findings)
    assert again == [] and none == []
    _, resolved = transitions([*[f.id for f in opened], "port-conflict:1"], findings)
    assert resolved == ["port-conflict:1"]


def test_more_secret_shapes_are_masked() -> None:
    for line in (
        "redis://:s3cret@redis:6379/0",
        '{"password": "s3cret"}',
        "password:s3cret",
        "Authorization: Bearer s3cret.token",
    ):
        assert "s3cret" not in redact_text(line), line
    assert redact_argv(["redis-cli", "-a", "s3cret", "ping"]) == ("redis-cli", "-a", "***", "ping")
    assert redact_argv(["redis-server", "--port", "6379"]) == ("redis-server", "--port", "6379")
    assert redact_text("listening on 127.0.0.1:5432") == "listening on 127.0.0.1:5432"


def test_a_stale_ip_of_a_stopped_container_does_not_steal_a_proxy() -> None:
    running = container("frontend", publish=(("0.0.0.0", 31000),))
    stale = container("postgres", "created").model_copy(update={"ip_addresses": running.ip_addresses})
    listener, proxy = proxy_for(running, "0.0.0.0", 31000, 950)
    (attributed,) = attribute_docker_proxies([listener], [proxy], [stale, running])
    assert attributed.container_id == running.id


def test_the_open_set_fits_a_prefect_variable_and_keeps_identity() -> None:
    from stackwarden.events import VARIABLE_LIMIT, open_set, previous_open_set
    from stackwarden.model import Finding
    from stackwarden.model.base import Severity

    many = tuple(
        Finding(
            id=f"port-conflict:{n}",
            rule="port-conflicts",
            title="t",
            severity=Severity.HIGH,
            services=("api",),
            summary="x" * 900,
        )
        for n in range(40)
    )
    record = open_set(many)
    assert len(json.dumps(record)) <= VARIABLE_LIMIT
    assert set(record) == {f.id for f in many}
    assert all(r["rule"] == "port-conflicts" and r["severity"] == "high" for r in record.values())
    assert previous_open_set(json.loads(json.dumps(record))) == record
    assert previous_open_set(["a", "b"]) == {"a": {}, "b": {}}  # what older versions stored
    assert previous_open_set(None) == {}
