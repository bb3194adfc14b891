"""A fleet on one server: two ``stackwarden serve`` processes stand in for two hosts (each its own
profile file, PREFECT_HOME and host name; the same stack name, as when one stack runs on many
machines). The one server shows both hosts' audits and events, told apart by host, and neither
host's deployments, open findings or events are mixed with the other's."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from prefect.variables import Variable

from flows.local_server import LocalServer
from stackwarden.profiles import load_profile
from tasks.diagnose import open_findings_variable
from tests.ops.conftest import small_profile
from tests.support.compose import unique_name
from tests.support.prefect_api import Api, client_settings, poll, stackwarden_serve
from tests.support.realparts import free_ports, host_listener

pytestmark = [pytest.mark.prefect]

# filtered on the server: a 15 s schedule queues many Scheduled runs, more than one page
COMPLETED = {"type": {"any_": ["COMPLETED"]}}


def test_two_hosts_on_one_server_are_told_apart(ops_server: LocalServer, api: Api, tmp_path: Path) -> None:
    stack = unique_name("swfleet")
    hosts = {f"{stack}-host-a": free_ports(1)[0], f"{stack}-host-b": free_ports(1)[0]}
    with contextlib.ExitStack() as running:
        for host, port in hosts.items():
            directory = tmp_path / host
            directory.mkdir()
            profile_path = small_profile(directory, port, name=stack)  # same stack name on both hosts
            running.enter_context(host_listener("squatter", "127.0.0.1", port))
            env = {**ops_server.client_env, "PREFECT_HOME": str(directory / "prefect-home")}
            args = ["--profile", str(profile_path), "--audit-every", "15s", "--host-name", host]
            running.enter_context(stackwarden_serve(args, env, directory / "serve.log"))
        for host in hosts:
            poll(
                lambda host=host: [
                    r
                    for r in api.flow_runs(tags={"all_": [f"host:{host}"]}, state={"type": {"any_": ["COMPLETED"]}})
                    if r["state_type"] == "COMPLETED"
                ],
                timeout=180,
                what=f"a completed audit of {host}",
            )
    runs = [
        r
        for r in api.flow_runs(tags={"all_": [f"profile:{stack}"]}, state={"type": {"any_": ["COMPLETED"]}})
        if r["state_type"] == "COMPLETED"
    ]
    by_host = {host: [r for r in runs if r["parameters"]["host"] == host] for host in hosts}
    for host, host_runs in by_host.items():
        assert host_runs, f"no audit of {host}: {[(r['name'], r['tags'], r['parameters']) for r in runs]}"
        assert all(f"host:{host}" in r["tags"] and r["name"] == f"audit-{stack}" for r in host_runs)
    deployments = {d["name"] for d in api.deployments() if d["name"].startswith(f"audit-{stack}@")}
    assert deployments == {f"audit-{stack}@{host}" for host in hosts}, "each host keeps its own deployment"
    for host, port in hosts.items():
        other_port = next(p for h, p in hosts.items() if h != host)
        events = poll(
            lambda host=host: api.events("stackwarden.finding.opened", labels={"stackwarden.host": [host]}),
            timeout=60,
            what=f"the finding events of {host}",
        )
        ids = {e["resource"]["prefect.resource.id"] for e in events}
        assert f"stackwarden.finding.{host}.{stack}.port-foreign-owner:{port}" in ids
        assert not any(i.endswith(f":{other_port}") for i in ids), "an event of the other host"
        assert all(e["resource"]["stackwarden.profile"] == stack for e in events)
        # one foreign owner per host: opened once per host, not re-opened by the other host's audits
        assert sum(1 for e in events if e["resource"]["prefect.resource.id"].endswith(f":{port}")) == 1
        profile = load_profile(tmp_path / host / f"{stack}.yaml")
        with client_settings(ops_server):
            open_set = Variable.get(open_findings_variable(profile, host))
        assert isinstance(open_set, dict)
        assert f"port-foreign-owner:{port}" in open_set and f"port-foreign-owner:{other_port}" not in open_set
