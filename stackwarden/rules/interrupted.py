"""Interrupted switch: a switch of this profile died part way (SIGKILL, a host crash) and its
journal is still there. What it changed may be half done - a restart policy paused for a
graceful stop, a service whose old owner was stopped and whose new one never started - and
nothing else would notice: the containers and processes look like any stopped ones."""

from __future__ import annotations

from collections.abc import Iterator

from stackwarden.model.base import Severity
from stackwarden.model.finding import Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.rules.registry import rule


@rule("interrupted-switch")
def interrupted_switch(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:
    """One finding for the profile's interrupted switches, with the commands of the repair the
    next ``switch --apply`` makes before it plans anything."""
    runs = [run for run in snapshot.interrupted if run.steps_recorded]
    if not runs:
        return
    commands = tuple(dict.fromkeys(c for run in runs for c in run.repair_commands))
    modes = sorted({run.mode for run in runs})
    yield Finding(
        id="interrupted-switch",
        rule="interrupted-switch",
        title="Interrupted switch",
        severity=Severity.HIGH,
        summary=(
            f"{len(runs)} switch(es) of {profile.name} ended without finishing: "
            + "; ".join(run.summary for run in runs)
            + ". What they changed may be half done."
        ),
        evidence=tuple(
            [f"journal {run.journal} (run {run.run_id}, PID {run.pid or '?'})" for run in runs]
            + [note for run in runs for note in run.notes]
        ),
        action="Repair the interrupted switch",
        recommendation=(
            f"`stackwarden switch {modes[-1]}` shows the repair in its dry run and `--apply` makes it before "
            "anything else"
            + ("; or run the commands below, which put back what the run left half done." if commands else ".")
        ),
        commands=commands,
    )
