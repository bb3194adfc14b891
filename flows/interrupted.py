"""Switches that died part way, as a Prefect server sees them: their runs are still "Running"
(no process is left to end them) until someone sets them Crashed. The next switch of the
profile does it when it repairs the run (``PrefectExecutor.crashed``), and ``stackwarden serve``
at start, where it also announces each interrupted switch with the repair the next switch makes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.states import Crashed

from stackwarden.adapters.journal import read_interrupted
from stackwarden.errors import StackwardenError
from stackwarden.model.journal import describe, repair
from stackwarden.model.profile import Profile
from stackwarden.model.steps import printed
from stackwarden.sanitize import one_line

LOG = logging.getLogger("stackwarden.flows")


async def mark_crashed(run_ids: Sequence[str], reason: str) -> list[str]:
    """Set each recorded run that is not final yet (Running, Pending, Paused) Crashed; the ones
    marked. A run this server does not know is left alone."""
    marked = []
    async with get_client() as client:
        for run_id in run_ids:
            try:
                found = await client.read_flow_run(UUID(run_id))
            except Exception as exc:  # unknown here: nothing to mark
                LOG.info("recorded run %s not found (%s); nothing to mark", run_id, exc)
                continue
            if found.state is not None and not found.state.is_final():
                await client.set_flow_run_state(UUID(run_id), Crashed(message=one_line(reason)), force=True)
                marked.append(run_id)
    return marked


def announce_interrupted(profiles: Sequence[Profile]) -> list[str]:
    """One line per interrupted switch of ``profiles`` (with the repair the next switch makes);
    their recorded runs are set Crashed. A journal directory that cannot be read is one line too."""
    lines: list[str] = []
    run_ids: list[str] = []
    for profile in profiles:
        try:
            runs = read_interrupted(profile.name)
        except (StackwardenError, OSError) as exc:
            lines.append(f"switch journals of {profile.name} not read: {exc}")
            continue
        for run in runs:
            commands = [printed(argv) for step in repair([run]).steps for argv in step.commands()]
            lines.append(
                f"interrupted switch of {profile.name}: {describe(run)}; the next switch repairs it first"
                + (f" ({'; '.join(commands)})" if commands else "")
            )
            run_ids += [run.flow_run_id] if run.flow_run_id else []
    if run_ids:
        marked = asyncio.run(mark_crashed(run_ids, "its process died during a switch"))
        lines += [f"recorded run {run_id} set Crashed" for run_id in marked]
    return lines
