"""The verdict of a switch as a markdown artifact (pure): did the mode's invariants hold after
the steps, what was checked, what failed, and what is broken by code no mode fixes."""

from __future__ import annotations

from stackwarden.model.plan import Verdict
from stackwarden.sanitize import document, md_inline


def render_verdict(verdict: Verdict, profile: str, reason: str = "", approval_comment: str | None = None) -> str:
    """Outcome first, then every failed invariant, every code issue and every check that held.
    A plan approved in the UI carries the approver's comment (what they expected, a ticket)."""
    head = "held" if verdict.passed else "did NOT hold"
    lines = [
        f"### Verdict: {md_inline(str(verdict.outcome))}",
        "",
        f"The {verdict.mode} invariants {head} for {md_inline(profile)}.",
    ]
    if approval_comment is not None:
        lines += ["", f"**Approved in the UI with the comment:** {md_inline(approval_comment or '(none)', 2000)}"]
    if reason:
        lines += ["", f"**Why the switch was rolled back:** {md_inline(reason, 2000)}"]
    if verdict.failures:
        lines += ["", "Failed:", *(f"- {md_inline(f)}" for f in verdict.failures)]
    if verdict.code_issues:
        lines += ["", "Broken by a code issue (no mode fixes it):", *(f"- {md_inline(c)}" for c in verdict.code_issues)]
    if verdict.checks:
        lines += ["", "Held:", *(f"- {md_inline(c)}" for c in verdict.checks)]
    return document("\n".join(lines) + "\n")
