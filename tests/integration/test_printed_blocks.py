"""Every printed command is the executed one: for each mode of the seed scenario, every command
block of the audit report's mode section is run with bash, in order, on a fresh setup (real
Docker and Compose, real host processes, the real kube-apiserver), and the end state is compared
with the switch's on an identical fresh setup. The two setups of a mode run side by side."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubernetes import client as k8s

from stackwarden.model import Mode
from stackwarden.model.plan import PREVIOUS_REPLICAS, SwitchOutcome, SwitchStatus
from stackwarden.pipeline import run_audit
from stackwarden.profiles import load_profile
from stackwarden.run.executor import LocalExecutor
from stackwarden.run.switch import Options, run
from tests.support.stack import SERVICES, Stack, fresh_stack

pytestmark = [pytest.mark.docker, pytest.mark.kube]

TITLES = {
    Mode.COMPOSE_ONLY: "Option 1: Use Docker Compose only",
    Mode.K8S_ONLY: "Option 2: Use Kubernetes only",
    Mode.HYBRID_GUARDED: "Option 3: Hybrid, guarded",
}


def _fast_settle(stack: Stack) -> None:
    """A one-second settle window: the comparison is about end states, not about settling."""
    with stack.profile_path.open("a") as profile:
        profile.write("switch:\n  settle_seconds: 1\n")


def _blocks(report: str, mode: Mode) -> list[str]:
    """The command blocks of one mode section, each as the text a person would paste."""
    section = report.split(TITLES[mode], 1)[1].split("**Pros:**", 1)[0]
    assert "would **refuse**" not in section, section
    return [part.split("```", 1)[0].strip() for part in section.split("```bash\n")[1:]]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _end_state(stack: Stack) -> dict[str, Any]:
    """What a mode decides, without the ids and clocks that differ between two setups."""
    apps = k8s.AppsV1Api(stack.api)
    containers = {}
    for c in stack.project.containers():
        service = c["Names"].removeprefix(f"{stack.project.name}-").removesuffix("-1")
        policy = stack.project.inspect(service)["HostConfig"]["RestartPolicy"]["Name"]
        containers[service] = ("up" if c["State"] in {"running", "restarting"} else "down", policy)
    workloads = {}
    for name in SERVICES:
        d = apps.read_namespaced_deployment(name, stack.namespace)
        workloads[name] = (d.spec.replicas, (d.metadata.annotations or {}).get(PREVIOUS_REPLICAS))
    return {
        "containers": containers,
        "workloads": workloads,
        "host": {name: _alive(pid) for name, pid in stack.host_pids.items()},
        "bystanders": (
            apps.read_namespaced_deployment("backend", stack.bystander_namespace).spec.replicas,
            {c["State"] for c in stack.bystander_project.containers()},
            _alive(stack.bystander_pid),
        ),
    }


def _by_hand(stack: Stack, mode: Mode) -> dict[str, Any]:
    """Paste every block of the report's mode section into bash, in order."""
    outcome = run_audit(load_profile(stack.profile_path))
    blocks = _blocks(outcome.markdown, mode)
    assert blocks, f"{mode}: the report printed no commands"
    for block in blocks:
        done = subprocess.run(["bash", "-e", "-c", block], capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, f"{mode}: `{block}` exited {done.returncode}: {done.stderr[-2000:]}"
    return _end_state(stack)


def _by_the_switch(stack: Stack, mode: Mode) -> dict[str, Any]:
    profile = load_profile(stack.profile_path)
    outcome = run(profile, mode, LocalExecutor(profile), apply=True, options=Options(deadline_seconds=90))
    assert isinstance(outcome, SwitchOutcome) and outcome.status is SwitchStatus.SWITCHED, outcome
    return _end_state(stack)


@pytest.mark.parametrize("mode", list(Mode), ids=[str(m) for m in Mode])
def test_the_printed_blocks_end_where_the_switch_ends(
    mode: Mode, tmp_path: Path, control_plane: Any, kubelet: Any
) -> None:
    def setup_and(action: Any, where: Path) -> dict[str, Any]:
        where.mkdir()
        # the host postgres takes 2 s to stop cleanly: a start pasted right after its stop would
        # find the port still held ("address already in use") unless the printed stop waits
        with fresh_stack(where, control_plane, kubelet, slow_postgres_stop=2) as stack:
            _fast_settle(stack)
            return action(stack, mode)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="setup") as pool:
        by_hand = pool.submit(setup_and, _by_hand, tmp_path / "by-hand")
        by_switch = pool.submit(setup_and, _by_the_switch, tmp_path / "by-switch")
        hand, switch = by_hand.result(), by_switch.result()
    assert hand == switch
    assert hand["bystanders"] == (2, {"running"}, True)
