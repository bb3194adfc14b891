"""Render a plan (the dry-run output) and a switch outcome as markdown."""

from __future__ import annotations

from stackwarden.model.plan import Plan, SwitchOutcome


def render_plan(plan: Plan) -> str:
    """Numbered steps with why, exact target and inverse; refusals first when there are any."""
    out = [f"# Switch plan: {plan.profile} -> {plan.mode}", ""]
    if plan.refusals:
        out += ["**REFUSED** - nothing will be changed:", "", *[f"- {r}" for r in plan.refusals], ""]
    if not plan.steps:
        out += ["Nothing to do: the host is already in this mode." if not plan.refusals else "", ""]
    for number, step in enumerate(plan.steps, start=1):
        undo = f"reversible: {step.inverse}" if step.reversible else "not reversible"
        out += [
            f"{number}. **{step.kind}** `{step.service}` ({step.runtime}) - {step.target}",
            f"   - why: {step.why}",
            f"   - {undo}",
        ]
    if plan.notes:
        out += ["", "**Notes:**", *[f"- {n}" for n in plan.notes]]
    return "\n".join(out).rstrip() + "\n"


def render_outcome(outcome: SwitchOutcome) -> str:
    """The plan, the journal and the verdict."""
    out = [render_plan(outcome.plan), f"**Result:** {outcome.status} - {outcome.message}", ""]
    if outcome.journal:
        out += ["| step | status | seconds | output / error |", "|---|---|---|---|"]
        out += [
            f"| {r.step_id} | {r.status} | {r.duration_seconds:.2f} | {(r.error or r.output)[:120]} |"
            for r in outcome.journal
        ]
        out.append("")
    if outcome.verdict is not None:
        v = outcome.verdict
        out += [f"**Verdict:** {v.outcome}", *[f"- FAIL {f}" for f in v.failures], *[f"- ok {c}" for c in v.checks]]
        out += [f"- switched, but broken by a code issue: {c}" for c in v.code_issues]
    return "\n".join(out).rstrip() + "\n"
