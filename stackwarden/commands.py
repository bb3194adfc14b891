"""Exact commands for this host, rendered from observed identities (never "adjust PIDs").

Every command is an argv quoted by ``sanitize.command`` (``shlex.join`` after stripping control
characters and masking secrets), never a string pasted together: an observed name such as
``x'; rm -rf ~ #`` stays one inert argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stackwarden.model.plan import (
    PREVIOUS_REPLICAS,
    ComposeStop,
    ComposeUp,
    GracefulStop,
    ScaleWorkload,
    StartContainer,
    StartProcess,
    Step,
    StopContainer,
    StopProcess,
)
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Container, ProcessInfo, Snapshot
from stackwarden.sanitize import command as _join


def compose(profile: Profile, *args: str, project: str | None = None) -> str:
    """``docker compose -p PROJECT -f FILE ... ARGS`` for one of the profile's projects (the
    default one unless ``project`` names another): a command must act on the project that
    actually runs the service, or it silently does nothing."""
    spec = next((c for c in profile.compose_projects if c.project == project), profile.compose)
    argv = ["docker", "compose", "-p", spec.project]
    for file in spec.files:
        argv += ["-f", file]
    return _join([*argv, *args])


def compose_service(profile: Profile, service: str, *args: str) -> str:
    """A compose command on a profile service, in the project that runs it, with its compose
    service name last: ``compose_service(p, "worker", "start")``."""
    return compose(profile, *args, profile.compose_service_name(service), project=profile.compose_for(service).project)


def stop_process(process: ProcessInfo, signal_name: str = "SIGTERM") -> str:
    """Stop a host process the way the profile says: its unit, else its signal."""
    if process.systemd_unit:
        return _join(["systemctl", "stop", "--", process.systemd_unit])
    return _join(["kill", f"-{signal_name.removeprefix('SIG')}", str(process.pid)])


def docker_stop(container: Container) -> str:
    """Stop one container by name (volumes and the container itself are kept)."""
    return _join(["docker", "stop", container.name])


def container_lookup(container: Container) -> str:
    """Who a container is (project, service, image, state): what to print for a container the
    profile does not name, which stackwarden never offers to stop."""
    return _join(
        [
            "docker",
            "inspect",
            "--format",
            '{{index .Config.Labels "com.docker.compose.project"}}/'
            '{{index .Config.Labels "com.docker.compose.service"}} {{.Config.Image}} {{.State.Status}}',
            container.name,
        ]
    )


def docker_logs(container: Container, tail: int = 50) -> str:
    """Read the last lines of a container's logs."""
    return _join(["docker", "logs", "--tail", str(tail), container.name])


def docker_port(container: str) -> str:
    """The ports a container publishes (a local cluster's node container: which node ports)."""
    return _join(["docker", "port", container])


def docker_publishers(port: int) -> str:
    """The containers publishing ``port``: who is behind a docker-proxy."""
    return _join(["docker", "ps", "--filter", f"publish={port}"])


def port_listeners(port: int) -> str:
    """Who listens on ``port``, with PIDs (both address families)."""
    return _join(["ss", "-ltnp", f"sport = :{port}"])


def kubectl(namespace: str, *args: str, context: str | None = None, kubeconfig: str | None = None) -> str:
    """A kubectl command in the profile's namespace, with the profile's kubeconfig and the
    context when known: without them it would act on whatever cluster the shell points at."""
    argv = ["kubectl"]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if context:
        argv += ["--context", context]
    return _join([*argv, "-n", namespace, *args])


def kubectl_for(snapshot: Snapshot, profile: Profile, *args: str) -> str:
    """kubectl in the profile's namespace and the context that was actually observed, so the
    command acts on the cluster the report describes even if the current context changes."""
    spec = profile.kubernetes
    kube = snapshot.kubernetes
    context = kube.context.name if kube is not None and kube.context is not None else (spec.context if spec else None)
    return kubectl(
        spec.namespace if spec else "default", *args, context=context, kubeconfig=spec.kubeconfig if spec else None
    )


def _compose_argv(project: str, files: tuple[str, ...]) -> list[str]:
    argv = ["docker", "compose", "-p", project]
    for file in files:
        argv += ["-f", file]
    return argv


def step_commands(step: Step, profile: Profile) -> list[str]:
    """The commands that do what ``step`` does, for a person to run by hand: the same target,
    signal, grace period, replica count and context as the switch would use. One step, one
    copy-paste block."""
    spec = profile.kubernetes
    match step:
        case ScaleWorkload():
            ref = f"{step.workload_kind.lower()}/{step.name}"
            where = {"context": step.context, "kubeconfig": spec.kubeconfig if spec else None}
            out = []
            if step.replicas == 0 and step.previous_replicas > 0:
                note = f"{PREVIOUS_REPLICAS}={step.previous_replicas}"
                out.append(kubectl(step.namespace, "annotate", ref, note, "--overwrite", **where))
            return [*out, kubectl(step.namespace, "scale", ref, f"--replicas={step.replicas}", **where)]
        case StopProcess():
            if step.systemd_unit:
                return [_join(["systemctl", "stop", "--", step.systemd_unit])]
            return [_join(["kill", f"-{step.signal.removeprefix('SIG')}", str(step.pid)])]
        case StartProcess():
            if step.systemd_unit:
                return [_join(["systemctl", "start", "--", step.systemd_unit])]
            prefix = step.run_as.argv_prefix() if step.run_as is not None else []
            return [_join([*prefix, *(step.start_command or ())])]
        case StopContainer():
            if step.stateful:  # its own clean signal and no SIGKILL after a timeout (docker stop would)
                return graceful_stop_commands(step.name, step.timeout_seconds, step.graceful)
            return [_join(["docker", "stop", "--time", str(step.timeout_seconds), step.name])]
        case StartContainer():
            return [_join(["docker", "start", step.name])]
        case ComposeUp():
            return [
                _join(
                    [*_compose_argv(step.project, step.files), "up", "-d", "--no-deps", "--no-recreate", *step.services]
                )
            ]
        case ComposeStop():
            return [_join([*_compose_argv(step.project, step.files), "stop", *step.services])]
    return []


def graceful_stop_commands(name: str, timeout_seconds: int, graceful: GracefulStop | None) -> list[str]:
    """What the switch does to a stateful container, by hand: its restart policy paused if the
    plan says so, the planned signal, a wait of the step's timeout (``timeout`` ends the wait,
    not the container: nothing is SIGKILLed), the policy put back."""
    how = graceful or GracefulStop(signal="SIGTERM")
    out = []
    if how.pause_restart_policy is not None:
        out.append(_join(["docker", "update", "--restart", "no", name]))
    out.append(_join(["docker", "kill", "--signal", how.signal, name]))
    out.append(_join(["timeout", str(timeout_seconds), "docker", "wait", name]))
    if how.pause_restart_policy is not None:
        out.append(_join(["docker", "update", "--restart", how.pause_restart_policy, name]))
    return out


def process_lookup(process: ProcessInfo) -> str:
    """Who a process is (user, start time, command line): what to print for a process the
    profile does not name, which stackwarden never offers to stop."""
    return _join(["ps", "-o", "pid,user,lstart,args", "-p", str(process.pid)])


def listeners(ports: Iterable[int]) -> str:
    """``ss`` filtered to several ports, one argument for the whole filter expression."""
    return _join(["ss", "-ltnp", " or ".join(f"sport = :{int(p)}" for p in ports)])


_ERE_SPECIAL = re.compile(r"([.\[\](){}*+?|^$\\])")


def pgrep(executables: Iterable[str]) -> str:
    """``pgrep -a -x`` for exact process names: each name is a literal inside the extended
    regular expression (its metacharacters escaped) and the pattern is one quoted argument."""
    pattern = "|".join(_ERE_SPECIAL.sub(r"\\\1", name) for name in executables)
    return _join(["pgrep", "-a", "-x", pattern])
