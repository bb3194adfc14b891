"""The one adapter-side executor of a switch: a step kind's request (plain data) -> the adapter
call that carries it out. Every step, planned, undo or repair, goes through ``execute``; each
adapter re-checks its target's identity from the request before it acts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stackwarden.adapters.compose import compose_stop, compose_up
from stackwarden.adapters.docker import restore_restart_policy, start_container, stop_container
from stackwarden.adapters.host import start_process, stop_process
from stackwarden.model.profile import Profile
from stackwarden.model.steps import (
    ComposeRequest,
    Request,
    RestorePolicyRequest,
    ScaleRequest,
    StartContainerRequest,
    StartProcessRequest,
    StopContainerRequest,
    StopProcessRequest,
)


def _scale(request: ScaleRequest, profile: Profile) -> str:
    """The Kubernetes client loads only for a profile with a cluster side."""
    if profile.kubernetes is None:
        raise ValueError("scale-workload step without a kubernetes section in the profile")
    from stackwarden.adapters.kubernetes import scale_workload  # the client loads only for a cluster side

    return scale_workload(
        profile.kubernetes,
        context=request.context,
        kind=request.workload_kind,
        name=request.name,
        uid=request.uid,
        replicas=request.replicas,
        expected_generation=request.expected_generation,
        timeouts=profile.timeouts,
    )


def _stop_process(request: StopProcessRequest, profile: Profile) -> str:
    """pid + start time + exe re-checked, and the unit must still hold the PID."""
    return stop_process(
        pid=request.pid,
        create_time=request.create_time,
        exe=request.exe,
        signal_name=request.signal,
        grace_seconds=request.grace_seconds,
        systemd_unit=request.systemd_unit,
        stateful=request.stateful,
        force=request.force,
    )


def _start_process(request: StartProcessRequest, profile: Profile) -> str:
    """Never a second copy while the process it replaces still runs."""
    return start_process(request.systemd_unit, request.start_command, request.run_as, replaces=request.replaces)


def _stop_container(request: StopContainerRequest, profile: Profile) -> str:
    """Id and project re-checked; a stateful one as its GracefulStop says."""
    return stop_container(
        request.container_id,
        request.project,
        request.timeout_seconds,
        stateful=request.stateful,
        graceful=request.graceful,
        force=request.force,
    )


def _start_container(request: StartContainerRequest, profile: Profile) -> str:
    """Id and project re-checked."""
    return start_container(request.container_id, request.project)


def _compose(request: ComposeRequest, profile: Profile) -> str:
    """up or stop of exactly the named services."""
    run = compose_up if request.verb == "up" else compose_stop
    return run(request.project, request.files, request.working_dir, request.services)


def _restore_policy(request: RestorePolicyRequest, profile: Profile) -> str:
    """Only while the policy is still the no an interrupted stop left."""
    return restore_restart_policy(request.container_id, request.project, request.policy)


_HANDLERS: dict[type[Any], Callable[[Any, Profile], str]] = {
    ScaleRequest: _scale,
    StopProcessRequest: _stop_process,
    StartProcessRequest: _start_process,
    StopContainerRequest: _stop_container,
    StartContainerRequest: _start_container,
    ComposeRequest: _compose,
    RestorePolicyRequest: _restore_policy,
}


def execute(request: Request, profile: Profile) -> str:
    """Carry out one request; raises ``RefusedError`` when the target is not what the plan saw.
    Returns ``Unchanged`` when the target already was as wanted (nothing done)."""
    handler = _HANDLERS.get(type(request))
    if handler is None:
        raise ValueError(f"no executor for request {type(request).__name__}")
    return handler(request, profile)
