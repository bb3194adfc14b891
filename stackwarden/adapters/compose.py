"""Docker Compose v2 through its CLI (argument lists, never a shell)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from stackwarden.argv import compose_argv
from stackwarden.errors import StackwardenError
from stackwarden.sanitize import command

CONFIG_TIMEOUT_SECONDS = 30.0
"""``compose config`` reads files only; anything slower is a broken setup, not a slow one."""


def compose_up(project: str, files: tuple[str, ...], working_dir: str | None, services: tuple[str, ...]) -> str:
    """``docker compose -p PROJECT -f ... up -d --no-deps --no-recreate SERVICES``: exactly the
    planned services, never a dependency the plan did not name (preflight refuses a dependency
    outside the mode), and never a container replaced: the plan saw none, so one that exists now
    was made after the review (by hand, with its own settings) and is only started as it is.
    Idempotent by Compose's own design."""
    return _compose(project, files, working_dir, ["up", "-d", "--no-deps", "--no-recreate", *services])


def compose_stop(project: str, files: tuple[str, ...], working_dir: str | None, services: tuple[str, ...]) -> str:
    """``docker compose ... stop SERVICES``: containers and volumes are kept (never ``down``)."""
    return _compose(project, files, working_dir, ["stop", *services])


def compose_config(project: str, files: tuple[str, ...], working_dir: str | None) -> dict[str, Any]:
    """The project's resolved model (``docker compose config --format json``): proves the files
    parse and tells which images and dependencies ``up`` would need. Changes nothing."""
    text = _compose(
        project, files, working_dir, ["config", "--format", "json"], timeout=CONFIG_TIMEOUT_SECONDS, out=True
    )
    try:
        model = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StackwardenError(f"docker compose config for {project}: not JSON: {exc}") from exc
    if not isinstance(model, dict):
        raise StackwardenError(f"docker compose config for {project}: expected an object")
    return model


def _compose(
    project: str,
    files: tuple[str, ...],
    working_dir: str | None,
    args: list[str],
    *,
    timeout: float = 600.0,
    out: bool = False,
) -> str:
    argv = compose_argv(project, files, working_dir, *args)
    try:
        result = subprocess.run(argv, cwd=working_dir, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackwardenError(f"{command(argv)}: {exc}") from exc
    if result.returncode != 0:
        raise StackwardenError(f"{command(argv)} exited {result.returncode}: {result.stderr.strip()[-800:]}")
    if out:
        return result.stdout
    return (result.stderr or result.stdout).strip()[-800:]
