"""Docker Compose v2 through its CLI (argument lists, never a shell)."""

from __future__ import annotations

import subprocess

from stackwarden.errors import StackwardenError


def compose_up(project: str, files: tuple[str, ...], working_dir: str | None, services: tuple[str, ...]) -> str:
    """``docker compose -p PROJECT -f ... up -d SERVICES``: idempotent by Compose's own design."""
    return _compose(project, files, working_dir, ["up", "-d", *services])


def compose_stop(project: str, files: tuple[str, ...], working_dir: str | None, services: tuple[str, ...]) -> str:
    """``docker compose ... stop SERVICES``: containers and volumes are kept (never ``down``)."""
    return _compose(project, files, working_dir, ["stop", *services])


def _compose(project: str, files: tuple[str, ...], working_dir: str | None, args: list[str]) -> str:
    argv = ["docker", "compose", "-p", project]
    for file in files:
        argv += ["-f", file]
    argv += args
    try:
        result = subprocess.run(argv, cwd=working_dir, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackwardenError(f"{' '.join(argv)}: {exc}") from exc
    if result.returncode != 0:
        raise StackwardenError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()[-800:]}")
    return (result.stderr or result.stdout).strip()[-800:]
