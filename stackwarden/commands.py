"""Exact commands for this host, rendered from observed identities (never "adjust PIDs").

Every command is an argv quoted by ``sanitize.command`` (``shlex.join`` after stripping control
characters and masking secrets), never a string pasted together: an observed name such as
``x'; rm -rf ~ #`` stays one inert argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stackwarden.argv import compose_argv, kubectl_argv, signal_argv, wait_gone_argv
from stackwarden.model.plan import GracefulStop, Step
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Container, ProcessInfo, Snapshot
from stackwarden.model.steps import graceful_stop_argvs
from stackwarden.sanitize import command as _join


def compose(profile: Profile, *args: str, project: str | None = None) -> str:
    """``docker compose -p PROJECT -f FILE ... ARGS`` for one of the profile's projects (the
    default one unless ``project`` names another): a command must act on the project that
    actually runs the service, or it silently does nothing."""
    spec = next((c for c in profile.compose_projects if c.project == project), profile.compose)
    return _join(compose_argv(spec.project, spec.files, spec.working_dir, *args))


def compose_service(profile: Profile, service: str, *args: str) -> str:
    """A compose command on a profile service, in the project that runs it, with its compose
    service name last: ``compose_service(p, "worker", "start")``."""
    return compose(profile, *args, profile.compose_service_name(service), project=profile.compose_for(service).project)


DEFAULT_WAIT_SECONDS = 30.0
"""How long a printed stop waits for the PID when the caller names no grace period (the
profile's default ``grace_period_seconds``)."""


def stop_process(
    process: ProcessInfo, signal_name: str = "SIGTERM", grace_seconds: float = DEFAULT_WAIT_SECONDS
) -> str:
    """Stop a host process the way the profile says: its unit, else its signal followed by a
    bounded wait for the PID to exit, on one line: a start pasted after it must not race the
    old owner for its port ("address already in use")."""
    if process.systemd_unit:
        return _join(["systemctl", "stop", "--", process.systemd_unit])
    stop = _join(signal_argv(process.pid, signal_name))
    return f"{stop} && {_join(wait_gone_argv(process.pid, grace_seconds))}"


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
    return _join(kubectl_argv(namespace, *args, context=context, kubeconfig=kubeconfig))


def kubectl_for(snapshot: Snapshot, profile: Profile, *args: str) -> str:
    """kubectl in the profile's namespace and the context that was actually observed, so the
    command acts on the cluster the report describes even if the current context changes."""
    spec = profile.kubernetes
    kube = snapshot.kubernetes
    context = kube.context.name if kube is not None and kube.context is not None else (spec.context if spec else None)
    return kubectl(
        spec.namespace if spec else "default", *args, context=context, kubeconfig=spec.kubeconfig if spec else None
    )


def step_commands(step: Step, profile: Profile | None = None) -> list[str]:
    """The commands that do what ``step`` does, for a person to run by hand: its kind's argument
    vectors (the same target, signal, grace period, replica count and context as the switch),
    quoted and cleaned. One step, one copy-paste block. (``profile`` is no longer needed: a step
    carries everything its commands name.)"""
    return [_join(argv) for argv in step.commands()]


def graceful_stop_commands(name: str, timeout_seconds: int, graceful: GracefulStop | None) -> list[str]:
    """What the switch does to a stateful container, by hand (see ``graceful_stop_argvs``)."""
    return [_join(argv) for argv in graceful_stop_argvs(name, timeout_seconds, graceful)]


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
