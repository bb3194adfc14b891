"""The text above the Prefect UI's Resume form of a switch (pure): the whole plan, so a person
approves what they read there, not a bare "Approve (Optional)" checkbox.

Prefect shows a ``RunInput``'s description as markdown above its fields
(``RunInput.with_initial_data(description=...)``); every value inserted here is escaped."""

from __future__ import annotations

from stackwarden.model.plan import Plan
from stackwarden.report.names import step_run_name
from stackwarden.sanitize import md_cell, md_code, md_inline


def render_approval(plan: Plan, plan_link: str | None = None) -> str:
    """Every step with why it is there and whether it can be undone, the plan's digest, and a
    link to the plan artifact (the full plan with its exact commands)."""
    lines = [
        f"### Approve: switch {md_inline(plan.profile)} to {md_inline(str(plan.mode))}, {len(plan.steps)} step(s)",
        "",
        "Nothing has changed yet. Set **approve** to true and Resume to apply exactly this plan; "
        "leave it false (or add a comment) and Resume to reject it. The run re-observes the host "
        "and applies the plan only if its digest is still the one below.",
        "",
        f"Plan digest (sha256): {md_code(plan.digest)}",
        "",
    ]
    if plan_link:
        lines += [f"[The plan artifact, with the exact commands]({plan_link})", ""]
    lines += ["| # | step | why | reversible |", "| - | - | - | - |"]
    for number, step in enumerate(plan.steps, 1):
        undo = f"yes: {md_cell(step.inverse)}" if step.reversible else "**no**"
        lines.append(f"| {number} | {md_cell(step_run_name(step))} | {md_cell(step.why)} | {undo} |")
    if plan.notes:
        lines += ["", *(f"- {md_inline(note)}" for note in plan.notes)]
    return "\n".join(lines)
