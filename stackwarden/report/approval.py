"""The text above the Prefect UI's Resume form of a switch (pure): the whole plan, so a person
approves what they read there, not a bare "Approve (Optional)" checkbox.

Prefect shows a ``RunInput``'s description as markdown above its fields
(``RunInput.with_initial_data(description=...)``); every value inserted here is escaped and the
whole text passes ``sanitize.document``. The steps are a list, not a table: a table of commands is
wider than the form and would have to be scrolled sideways, which is where the one line that
says "cannot be undone" gets missed. So that line comes first, with the steps it is about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackwarden.model.plan import Plan
from stackwarden.report.names import step_run_name
from stackwarden.sanitize import document, md_code, md_inline


@dataclass(frozen=True)
class ApprovalScope:
    """What the switch acts on, beside its steps: the profile file and the exact bytes of it that
    were read, the compose files and the cluster (kubeconfig, context, API server)."""

    profile_file: str
    profile_sha256: str
    compose_files: Sequence[str] = ()
    kubeconfig: str | None = None
    context: str | None = None
    api_server: str | None = None


def grouped(digest: str, size: int = 8) -> str:
    """A hex digest in groups of ``size`` (``5f3a9c0e 1d2b3a4c ...``): read group by group, and it
    wraps in a narrow form instead of needing a sideways scroll (64 characters do not fit)."""
    return " ".join(digest[i : i + size] for i in range(0, len(digest), size))


def irreversible_summary(plan: Plan) -> str:
    """ "2 of 8 steps cannot be undone: 3 (stop-process ...), 5 (...)", or that all can be."""
    irreversible = [(number, step) for number, step in enumerate(plan.steps, 1) if not step.reversible]
    if not irreversible:
        return f"**All {len(plan.steps)} step(s) can be undone** (a failed verify rolls them back)."
    listed = "; ".join(f"{number} ({md_inline(step_run_name(step))})" for number, step in irreversible)
    return f"**{len(irreversible)} of {len(plan.steps)} step(s) cannot be undone:** {listed}."


def _scope_lines(scope: ApprovalScope) -> list[str]:
    cluster = "no cluster side"
    if scope.kubeconfig or scope.context or scope.api_server:
        cluster = (
            f"kubeconfig {md_code(scope.kubeconfig or '(default)')}, context {md_code(scope.context or '(none)')}, "
            f"API server {md_code(scope.api_server or '(unknown)')}"
        )
    compose = ", ".join(md_code(f) for f in scope.compose_files) or "none"
    return [
        "**What it acts on**",
        "",
        f"- Profile file {md_code(scope.profile_file)}, sha256 {md_code(grouped(scope.profile_sha256))}",
        f"- Compose files: {compose}",
        f"- Cluster: {cluster}",
        "",
    ]


def render_approval(plan: Plan, plan_link: str | None = None, scope: ApprovalScope | None = None) -> str:
    """What cannot be undone first; then what to do, the plan's digest, the files and cluster it
    acts on, a link to the plan artifact (the exact commands), and every step with why it is
    there and how it is undone."""
    lines = [
        f"### Approve: switch {md_inline(plan.profile)} to {md_inline(str(plan.mode))}, {len(plan.steps)} step(s)",
        "",
        irreversible_summary(plan),
        "",
        "Nothing has changed yet. Set **approve** to true and Resume to apply exactly this plan; "
        "leave it false (or add a comment) and Resume to reject it. The run re-observes the host "
        "and applies the plan only if its digest is still the one below (the plan artifact and the "
        "terminal show it in one piece). Your comment is kept "
        "with the outcome and its events.",
        "",
        f"Plan digest (sha256): {md_code(grouped(plan.digest))}",
        "",
    ]
    if scope is not None:
        lines += _scope_lines(scope)
    if plan_link:
        lines += [f"[The plan artifact, with the exact commands]({plan_link})", ""]
    lines += ["**Steps**", ""]
    for number, step in enumerate(plan.steps, 1):
        undo = f"undo: {md_inline(step.inverse)}" if step.reversible else "**cannot be undone**"
        lines.append(f"{number}. {md_inline(step_run_name(step))}: {md_inline(step.why)}; {undo}")
    if plan.notes:
        lines += ["", *(f"- {md_inline(note)}" for note in plan.notes)]
    return document("\n".join(lines))
