"""Render a plan (the dry-run output) and a switch outcome as markdown, and an outcome as JSON.

Plan text carries observed names (process, container, workload) and profile text (start
commands, health URLs): each value goes through ``stackwarden.sanitize`` and the whole output
through ``sanitize.document`` (controls, secrets, line length), like the audit report.
"""

from __future__ import annotations

import json

from stackwarden.model.plan import Plan, SwitchOutcome
from stackwarden.sanitize import deep, document, md_cell, md_code
from stackwarden.sanitize import md_inline as _t


def render_plan(plan: Plan) -> str:
    """Numbered steps with why, exact target and inverse; refusals first when there are any."""
    out = [f"# Switch plan: {_t(plan.profile)} -> {plan.mode}", ""]
    if plan.refusals:
        out += ["**REFUSED** - nothing will be changed:", "", *[f"- {_t(r, 2000)}" for r in plan.refusals], ""]
    if not plan.steps:
        out += ["Nothing to do: the host is already in this mode." if not plan.refusals else "", ""]
    for number, step in enumerate(plan.steps, start=1):
        undo = f"reversible: {_t(step.inverse)}" if step.reversible else "not reversible"
        out += [
            f"{number}. **{step.kind}** {md_code(step.service)} ({step.runtime}) - {_t(step.target)}",
            f"   - why: {_t(step.why, 2000)}",
            f"   - {undo}",
        ]
    if plan.notes:
        out += ["", "**Notes:**", *[f"- {_t(n, 2000)}" for n in plan.notes]]
    out += ["", f"Plan digest (sha256): {md_code(plan.digest)}"]  # what an approval names, in full
    return document("\n".join(out).rstrip() + "\n")


def render_outcome(outcome: SwitchOutcome) -> str:
    """The plan, the journal and the verdict."""
    out = [render_plan(outcome.plan), f"**Result:** {outcome.status} - {_t(outcome.message, 2000)}", ""]
    if outcome.journal:
        out += ["| step | status | seconds | output / error |", "|---|---|---|---|"]
        out += [
            f"| {md_cell(r.step_id)} | {r.status} | {r.duration_seconds:.2f} | {md_cell(r.error or r.output, 120)} |"
            for r in outcome.journal
        ]
        out.append("")
    if outcome.verdict is not None:
        v = outcome.verdict
        out += [
            f"**Verdict:** {v.outcome}",
            *[f"- FAIL {_t(f)}" for f in v.failures],
            *[f"- ok {_t(c)}" for c in v.checks],
        ]
        out += [f"- switched, but broken by a code issue: {_t(c)}" for c in v.code_issues]
    return document("\n".join(out).rstrip() + "\n")


def render_outcome_json(outcome: SwitchOutcome) -> str:
    """The outcome as indented JSON, every string sanitized (controls, secrets, length)."""
    document_ = deep(outcome.model_dump(mode="json"))
    document_["plan_digest"] = outcome.plan.digest  # hex: nothing in it to sanitize, and shown in full
    return json.dumps(document_, indent=2)
