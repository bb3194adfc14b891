"""The audit as markdown, in the shape of the seed report (docs/seed-situation.md).

Sections: executive summary, detected conflicts, current configuration, recommendations (the
three modes with pros and cons), immediate actions, conflict resolution status, next steps,
diagnostic commands. Every command is rendered from observed identities.

Observed and profile text is inserted only through ``stackwarden.sanitize`` (``_t`` for prose,
``md_cell`` for table cells, ``md_code`` for code spans, ``md_fence`` for command blocks), and the
whole report passes ``sanitize.document`` on the way out, so a hostile process name, label or log
line can neither change the report's structure nor carry a control character or a secret out.
"""

from __future__ import annotations

from collections.abc import Iterable

from stackwarden import commands
from stackwarden.model.base import CrashCategory, Mode, Runtime, Severity
from stackwarden.model.finding import AuditResult, Finding
from stackwarden.model.profile import Profile
from stackwarden.model.snapshot import Snapshot
from stackwarden.placement import StackView, stack_view
from stackwarden.planner import plan
from stackwarden.sanitize import document, md_cell, md_code, md_fence
from stackwarden.sanitize import md_inline as _t

_SEVERITY_LABEL = {
    Severity.CRITICAL: "Critical",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
    Severity.OK: "OK",
}
_STATUS = {
    Severity.CRITICAL: "🔴 Active",
    Severity.HIGH: "⚠️ Active",
    Severity.MEDIUM: "⚠️ Active",
    Severity.LOW: "Note",
    Severity.OK: "✅ OK",
}
_MODE_TEXT: dict[Mode, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    Mode.COMPOSE_ONLY: (
        "Use Docker Compose only (recommended for development)",
        ("Simpler setup", "Easier debugging", "No port conflicts", "Faster iteration"),
        ("No Kubernetes features (scaling, service mesh, etc.)",),
    ),
    Mode.K8S_ONLY: (
        "Use Kubernetes only (recommended for production)",
        ("Production-like", "Scaling capabilities", "Better resource management"),
        ("More complex setup", "Crash loops from code issues must be fixed first"),
    ),
    Mode.HYBRID_GUARDED: (
        "Hybrid, guarded (each service in exactly one runtime)",
        ("Stateful services can stay where their data is", "Each service still has one runtime"),
        ("Two runtimes to operate", "Needs a runtime assigned per service in the profile"),
    ),
}


def _code(lines: Iterable[str]) -> list[str]:
    return md_fence(lines)


def _mode_section(mode: Mode, snapshot: Snapshot, profile: Profile, preflight: tuple[str, ...] = ()) -> list[str]:
    """What ``stackwarden switch MODE`` would do, from ``plan()`` on this very snapshot and the
    switch's own preflight (``preflight``: what it refuses): one truth for the report and the
    switch. A refused mode shows its reasons and no commands; each step is its own copy-paste
    block, the step kind's commands (``commands.step_commands``)."""
    the_plan = plan(snapshot, profile, mode)
    if preflight and the_plan.applicable:
        the_plan = the_plan.model_copy(update={"refusals": preflight})
    if not the_plan.applicable:
        out = [f"`stackwarden switch {mode}` would **refuse**, changing nothing:", ""]
        out += [f"- {_t(reason)}" for reason in the_plan.refusals]
        return [*out, ""]
    if not the_plan.steps:
        out = [f"`stackwarden switch {mode}` has nothing to do: the stack is already in this mode.", ""]
    else:
        out = [f"`stackwarden switch {mode}` plans these steps (plan digest `{the_plan.digest[:16]}`):", ""]
    for number, step in enumerate(the_plan.steps, start=1):
        out += [
            f"{number}. **{step.phase}** {_t(step.why)}: {_t(step.target)}",
            "",
            *_code(commands.step_commands(step, profile)),
        ]
        out.append("")
    if the_plan.notes:
        out += ["**Notes:**", *[f"- {_t(note)}" for note in the_plan.notes], ""]
    return out


def _executive_summary(result: AuditResult, snapshot: Snapshot, view: StackView) -> list[str]:
    duplicated = [p.service for p in view.placements.values() if len(p.runtimes) > 1]
    running = {
        r: sorted(p.service for p in view.placements.values() if r in p.runtimes)
        for r in (Runtime.COMPOSE, Runtime.KUBERNETES, Runtime.HOST)
    }
    lines = []
    if duplicated:
        lines.append(
            f"**{_SEVERITY_LABEL[result.worst()].upper()}:** {len(duplicated)} service(s) "
            f"({_t(', '.join(duplicated))}) are deployed by more than one runtime at the same time, "
            "causing conflicts and resource contention."
        )
    elif result.at_least_conflict():
        lines.append(f"**{_SEVERITY_LABEL[result.worst()].upper()}:** conflicts were found; see below.")
    else:
        lines.append("No conflicts: every service has at most one runtime and every port one owner.")
    lines.append("")
    for runtime, names in running.items():
        reach = snapshot.runtime_status(runtime)
        if reach is not None and not reach.reachable:
            lines.append(f"- {runtime}: **unreachable** ({_t(reach.error)})")
        elif reach is not None:
            lines.append(f"- {runtime}: {_t(', '.join(names)) or 'no profile service'}")
    return lines


def _finding_section(index: int, finding: Finding) -> list[str]:
    mark = "✅" if finding.severity is Severity.OK else ("❌" if finding.severity is Severity.CRITICAL else "⚠️")
    out = [
        f"### {index}. **{_t(finding.title)}** {mark}",
        "",
        f"**Severity:** {_SEVERITY_LABEL[finding.severity]} · **id:** {md_code(finding.id)}",
        "",
        _t(finding.summary, 4000),
        "",
    ]
    if finding.cause is not None:
        cause = finding.cause
        verdict = (
            "Code issue (not deployment conflict)"
            if cause.category is CrashCategory.CODE_ISSUE
            else cause.category.value.replace("-", " ").capitalize()
        )
        out += [
            f"**Root Cause:** {verdict} - {_t(cause.explanation)} "
            f"(signature {md_code(cause.signature)}, confidence {cause.confidence:.0%})",
            "",
        ]
    if finding.caused_by is not None:
        out += [f"**Caused by:** {md_code(finding.caused_by)} ({_t(' → '.join(finding.chain))})", ""]
    if finding.dependents:
        out += [f"**Root cause of:** {_t(', '.join(finding.dependents))}", ""]
    if finding.gaps:
        out += ["**Not observed:**", *[f"- {_t(gap)}" for gap in finding.gaps], ""]
    if finding.evidence:
        out += ["**Evidence:**", *[f"- {_t(line)}" for line in finding.evidence], ""]
    if finding.recommendation:
        out += [f"**Recommendation:** {_t(finding.recommendation, 2000)}", ""]
    out += _code(finding.commands)
    out.append("")
    return out


def _configuration(snapshot: Snapshot, profile: Profile) -> list[str]:
    out = ["### Kubernetes Context"]
    kube = snapshot.kubernetes
    reach = snapshot.runtime_status(Runtime.KUBERNETES)
    if kube is not None and kube.context is not None:
        ctx = kube.context
        allowed = "allowed for remediation" if ctx.allowed else "**not** in the profile's allowlist (read-only)"
        out += [
            f"- **Active Context:** {md_code(ctx.name)} ({ctx.flavour}; {allowed})",
            f"- **Cluster:** {_t(ctx.cluster or '?')} (running at {_t(ctx.server or '?')})",
            f"- **Namespace:** "
            f"{md_code(kube.namespace or (profile.kubernetes.namespace if profile.kubernetes else '?'))}",
        ]
    elif reach is not None and not reach.reachable:
        out.append(f"- not observed: {_t(reach.error)}")
    elif profile.kubernetes is not None:
        out.append(f"- **Namespace:** `{profile.kubernetes.namespace}` (cluster not observed yet)")
    else:
        out.append("- the profile has no Kubernetes side")
    out += ["", "### Docker Compose"]
    for spec in profile.compose_projects:
        ours = [c for c in snapshot.containers if c.compose_project == spec.project]
        networks = sorted({n for c in ours for n in c.networks})
        services = sorted(s for s in profile.services if profile.compose_for(s).project == spec.project)
        out += [
            f"- **Project:** {md_code(spec.project)} ({len(ours)} container(s))",
            f"- **Files:** {', '.join(md_code(f) for f in spec.files)}",
            f"- **Network:** {', '.join(md_code(n) for n in networks) or _t(spec.network or 'none observed')}",
            f"- **Services:** {_t(', '.join(services)) or 'none'}",
        ]
    docker = snapshot.runtime_status(Runtime.COMPOSE)
    if docker is not None:
        state = f"version {docker.version}" if docker.reachable else f"unreachable: {docker.error}"
        out.append(f"- **Engine:** {_t(docker.endpoint or 'default')} ({_t(state)})")
    return out


def _diagnostic_commands(snapshot: Snapshot, profile: Profile) -> list[str]:
    ports = profile.all_ports()
    cmds = [commands.compose(profile, "ps", "--all", project=c.project) for c in profile.compose_projects]
    if profile.kubernetes:
        cmds += [
            commands.kubectl_for(snapshot, profile, "get", "pods", "-o", "wide"),
            commands.kubectl_for(snapshot, profile, "get", "deployments,statefulsets"),
            commands.kubectl_for(snapshot, profile, "get", "services"),
        ]
    if ports:
        cmds.append(commands.listeners(ports))
    executables = sorted({e for s in profile.services.values() if s.host for e in s.host.executables})
    if executables:
        cmds.append(commands.pgrep(executables))
    cmds.append("docker network ls")
    return cmds


def render_markdown(result: AuditResult, snapshot: Snapshot, profile: Profile, observed: str | None = None) -> str:
    """Render the whole report. ``observed`` says how old the observations are when they are not
    this moment's (a report answered from a running ``serve``'s live view); it is inserted as
    given (the caller escapes it)."""
    view = stack_view(snapshot, profile)
    conflicts = result.at_least_conflict()
    status = "⚠️ **CONFLICTS DETECTED**" if conflicts else "✅ **NO CONFLICTS**"
    unreachable = [r.runtime.value for r in snapshot.runtimes if not r.reachable]
    if unreachable:
        status += f" (incomplete: {', '.join(unreachable)} not observed)"
    date = snapshot.taken_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    out = [
        f"# Docker and Kubernetes Conflict Diagnostic Report: {profile.name}",
        "",
        f"**Date:** {date}  ",
        f"**Host:** {_t(snapshot.hostname)}  ",
        *([f"**Observed:** {observed}  "] if observed is not None else []),
        f"**Status:** {status}",
        "",
        "---",
        "",
        "## Executive Summary",
        "",
        *_executive_summary(result, snapshot, view),
        "",
        "---",
        "",
        "## Detected Conflicts",
        "",
    ]
    if not result.findings:
        out += ["None.", ""]
    for index, finding in enumerate(result.findings, start=1):
        out += _finding_section(index, finding)
    out += [
        "---",
        "",
        "## Current Configuration",
        "",
        *_configuration(snapshot, profile),
        "",
        "---",
        "",
    ]
    out += ["## Recommendations", ""]
    for number, mode in enumerate(Mode, start=1):
        title, pros, cons = _MODE_TEXT[mode]
        chosen = " ⭐ suggested" if mode is result.recommendation.mode else ""
        out += [
            f"### Option {number}: {title}{chosen}",
            "",
            *_mode_section(mode, snapshot, profile, result.mode_refusals.get(mode, ())),
        ]
        out += [
            "**Pros:**",
            *[f"- {p}" for p in pros],
            "",
            "**Cons:**",
            *[f"- {c}" for c in cons],
            "",
        ]
    out += [
        "**Why this suggestion:**",
        *[f"- {_t(r)}" for r in result.recommendation.reasons],
        "",
        "---",
        "",
    ]
    out += ["## Immediate Actions Required", ""]
    urgent = [f for f in result.findings if f.severity.at_least(Severity.HIGH)]
    if not urgent:
        out += ["None.", ""]
    for index, finding in enumerate(urgent, start=1):
        icon = "🔴" if finding.severity is Severity.CRITICAL else "🟠"
        out += [
            f"### {index}. **{_t(finding.action or finding.title)}** {icon}",
            "",
            _t(finding.recommendation, 2000),
            "",
        ]
        out += [*_code(finding.commands), ""]
    out += [
        "---",
        "",
        "## Conflict Resolution Status",
        "",
        "| Conflict Type | Status | Severity | Action Required |",
        "|--------------|--------|----------|----------------|",
    ]
    out += [
        f"| {md_cell(f.title)} | {_STATUS[f.severity]} | {_SEVERITY_LABEL[f.severity]} | {md_cell(f.action)} |"
        for f in result.findings
    ]
    out += ["", "---", "", "## Next Steps", ""]
    out += [f"{i}. {step}" for i, step in enumerate(_next_steps(result), start=1)]
    out += [
        "",
        "---",
        "",
        "## Diagnostic Commands",
        "",
        *_code(_diagnostic_commands(snapshot, profile)),
        "",
    ]
    out += ["---", "", f"**Generated by:** stackwarden audit, profile `{profile.name}`", ""]
    return document("\n".join(out))


def _next_steps(result: AuditResult) -> list[str]:
    """Ordered like the seed: stop stray processes, choose a mode, fix code, then settle."""
    steps = []
    if any(f.rule == "port-conflicts" for f in result.findings):
        steps.append("**Immediate:** free the conflicting ports (see Immediate Actions).")
    if any(f.rule == "dual-deployment" for f in result.findings):
        steps.append(
            f"**Short-term:** choose one mode: `stackwarden switch {result.recommendation.mode}` "
            "(dry run), then add `--apply`."
        )
    code = [f for f in result.findings if f.cause and f.cause.category is CrashCategory.CODE_ISSUE]
    if code:
        steps.append("**Medium-term:** fix the code issue(s): " + _t(", ".join(f.title for f in code)) + ".")
    if any(f.rule == "runtime-unreachable" for f in result.findings):
        steps.append("Make every runtime reachable and rerun `stackwarden audit` for a complete picture.")
    steps.append("**Long-term:** schedule `stackwarden audit` (deployments/prefect.yaml) to catch drift.")
    return steps
