"""Render a plan (the dry-run output) and a switch outcome as markdown, and an outcome as JSON.

Plan text carries observed names (process, container, workload) and profile text (start
commands, health URLs): each value goes through ``stackwarden.sanitize`` and the whole output
through ``sanitize.document`` (controls, secrets, line length), like the audit report.
"""

from __future__ import annotations

import json

from stackwarden.commands import step_commands
from stackwarden.model.plan import Plan, SwitchOutcome
from stackwarden.sanitize import deep, document, md_cell, md_code, md_fence
from stackwarden.sanitize import md_inline as _t


def render_plan(plan: Plan) -> str:
    """Numbered steps with why, exact target, inverse and the exact commands a person would run
    to do the same (the step kind's, as the report prints them); refusals first."""
    out = [f"# Switch plan: {_t(plan.profile)} -> {plan.mode}", ""]
    if plan.refusals:
        out += ["**REFUSED** - nothing will be changed:", "", *[f"- {_t(r, 2000)}" for r in plan.refusals], ""]
    if not plan.steps:
        out += ["Nothing to do: the host is already in this mode." if not plan.refusals else "", ""]
    for number, step in enumerate(plan.steps, start=1):
        undo = f"reversible: {_t(step.inverse)}" if step.reversible else "not reversible"
        out += [
            f"{number}. **{step.kind}** {md_code(step.service)} ({step.runtime}, {step.phase}) - {_t(step.target)}",
            f"   - why: {_t(step.why, 2000)}",
            f"   - {undo}",
            "",
            *(f"   {line}" for line in md_fence(step_commands(step))),
            "",
        ]
    if plan.notes:
        out += ["", "**Notes:**", *[f"- {_t(n, 2000)}" for n in plan.notes]]
    out += ["", f"Plan digest (sha256): {md_code(plan.digest)}"]  # what an approval names, in full
    return document("\n".join(out).rstrip() + "\n")


def render_outcome(outcome: SwitchOutcome) -> str:
    """The repairs of an interrupted run, the plan, the journal, the verdict, and after an
    incomplete rollback what runs where now and the commands that would finish the job."""
    out = []
    if outcome.repairs:
        out += ["**An interrupted switch was found and repaired before planning:**", ""]
        out += [f"- {_t(line, 2000)}" for line in outcome.repairs] + [""]
    out += [render_plan(outcome.plan), f"**Result:** {outcome.status} - {_t(outcome.message, 2000)}", ""]
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
        out += [f"- not observed: {_t(u)}" for u in v.unobserved]
    if outcome.where:
        out += [
            "",
            "**What runs where now:**",
            "",
            "| service | compose | kubernetes | host | serving |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {md_cell(w.service)} | {md_cell(w.compose)} | {md_cell(w.kubernetes)} | {md_cell(w.host)} | "
            f"{'yes' if w.serving else ('not seen' if w.serving is None else '**no**')} |"
            for w in outcome.where
        ]
    if outcome.to_finish:
        out += [
            "",
            "**To finish the rollback**, once the cause is fixed, run in this order:",
            "",
            *md_fence(outcome.to_finish),
        ]
    return document("\n".join(out).rstrip() + "\n")


def render_outcome_json(outcome: SwitchOutcome) -> str:
    """The outcome as indented JSON, every string sanitized (controls, secrets, length)."""
    document_ = deep(outcome.model_dump(mode="json"))
    document_["plan_digest"] = outcome.plan.digest  # hex: nothing in it to sanitize, and shown in full
    return json.dumps(document_, indent=2)
