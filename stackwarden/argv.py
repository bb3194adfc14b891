"""Argument vectors of the commands stackwarden runs and prints (pure): one builder per tool.

The switch's adapters run these lists and the report prints them (quoted by
``sanitize.command``), so what a person pastes is what the switch executes: ``docker compose``
with the same project, files and directory, ``kubectl`` with the same kubeconfig and context,
and a host-process stop followed by the same bounded wait for the PID to go.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

WAIT_POLL_SECONDS = 0.2
"""How often a printed wait looks at the process again."""


def compose_files(files: tuple[str, ...], working_dir: str | None) -> list[str]:
    """The compose files as paths that mean the same from any directory: a relative file of a
    project with a working directory is joined to it (Compose reads relative ``-f`` paths from
    the current directory, so a printed command pasted elsewhere would read another file)."""
    if not working_dir:
        return list(files)
    return [f if PurePosixPath(f).is_absolute() else str(PurePosixPath(working_dir) / f) for f in files]


def compose_argv(project: str, files: tuple[str, ...], working_dir: str | None, *args: str) -> list[str]:
    """``docker compose -p PROJECT -f FILE ... ARGS``: the one way a compose command is built."""
    argv = ["docker", "compose", "-p", project]
    for file in compose_files(files, working_dir):
        argv += ["-f", file]
    return [*argv, *args]


def kubectl_argv(namespace: str, *args: str, context: str | None = None, kubeconfig: str | None = None) -> list[str]:
    """A kubectl command in ``namespace``, with the kubeconfig and context when known: without
    them it would act on whatever cluster the shell points at."""
    argv = ["kubectl"]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if context:
        argv += ["--context", context]
    return [*argv, "-n", namespace, *args]


def signal_argv(pid: int, signal_name: str) -> list[str]:
    """``kill -TERM PID``: the signal by its short name, as every shell's kill takes it."""
    return ["kill", f"-{signal_name.removeprefix('SIG')}", str(pid)]


def wait_gone_argv(pid: int, seconds: float) -> list[str]:
    """Wait (at most ``seconds``) until ``pid`` has exited, as the switch does after a signal.

    A zombie has exited too (only its parent can reap it), so the loop looks at the process
    state, not at ``kill -0``; ``timeout`` ends the wait with status 124, never the process.
    Printed after a stop, it keeps the next pasted line (a start on the freed port) from running
    while the old owner still holds the port."""
    loop = f'while ps -o stat= -p {int(pid)} | grep -qv "^Z"; do sleep {WAIT_POLL_SECONDS}; done'
    return ["timeout", str(max(1, math.ceil(seconds))), "sh", "-c", loop]
