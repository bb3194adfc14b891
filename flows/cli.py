"""The ``stackwarden`` command line.

Exit codes (documented in README and ``--help``):
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  bad input: unknown option, malformed profile, unknown mode
  3  stackwarden itself failed (a bug or an unexpected environment); the message says where
switch adds: 4 refused before any change, 5 switched but broken by a code issue.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from flows.terminal import LiveProgress, configure_logging, prefect_api_configured, prepare_prefect
from stackwarden.errors import LockedError, ProfileError, StackwardenError
from stackwarden.model.base import Mode, Severity
from stackwarden.profiles import bundled_profile_path, load_profile, profile_json_schema

if TYPE_CHECKING:
    from stackwarden.pipeline import AuditOutcome

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_REFUSED, EXIT_CODE_ISSUE = 0, 1, 2, 3, 4, 5

_EPILOG = """\
exit codes:
  0  nothing at or above --fail-on      1  findings at or above --fail-on
  2  bad input (option, profile, mode)  3  stackwarden itself failed

An audit runs in this process unless a Prefect API is configured (PREFECT_API_URL, or in the
active Prefect profile): then it runs as the recorded flow "audit" on that server. --record and
--no-record override the choice; --record without a server starts Prefect's ephemeral one.
A switch always runs as the recorded flow "switch-mode".
"""


_SWITCH_EPILOG = """\
exit codes:
  0  dry run done, or switched and verified    1  verification or a step failed: rolled back
  2  bad input (option, profile, mode)         3  stackwarden itself failed
  4  refused before any change (context not allowed, unknown owner of a port, guard, lock)
  5  switched and verified, but a service is broken by a code issue no mode fixes

Safety: dry run by default; identities (container id, k8s uid/generation, pid+start time+exe)
are re-checked before each step; workloads are scaled to 0 (never deleted) with their replica
count recorded; volumes, PVCs and images are never removed; stateful services are stopped with
their own signal and never SIGKILLed without --force; one switch per profile at a time.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackwarden",
        description=(
            "Find one stack deployed by Docker Compose, Kubernetes and host processes at once, "
            "explain every conflict with evidence, and switch to one mode safely."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    audit = sub.add_parser(
        "audit",
        help="observe every runtime, diagnose conflicts, print the report",
        description=(
            "Observe Docker Compose and the host's listening ports and processes, diagnose "
            "conflicts (dual deployment, port conflicts, crash loops with cause, network "
            "isolation) and print a report in the shape of the seed report. Read-only."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="stack profile YAML (default: $STACKWARDEN_PROFILE or the bundled profiles/reconciliation-platform.yaml)",
    )
    audit.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    audit.add_argument("--output", type=Path, help="write the report to FILE; print a summary instead")
    audit.add_argument(
        "--fail-on",
        type=Severity,
        choices=[s for s in Severity if s is not Severity.OK],
        default=Severity.HIGH,
        metavar="SEVERITY",
        help="exit 1 if any finding is at or above SEVERITY: critical, high (default), medium, low",
    )
    audit.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run as a recorded Prefect flow (default: only when a Prefect API is configured)",
    )
    audit.add_argument("-v", "--verbose", action="store_true", help="show log lines (Prefect's too) on stderr")

    switch = sub.add_parser(
        "switch",
        help="switch the stack to one mode: plan (dry run), or --apply it",
        description=(
            "Plan the steps that leave every service of the profile in exactly one runtime: "
            "compose-only, k8s-only, or hybrid-guarded (each service in the runtime the profile "
            "assigns it). Without --apply this is a dry run that changes nothing. With --apply the "
            "steps run one by one, each re-checking its target's identity; the result is verified "
            "and reversible steps are rolled back if the mode's invariants do not hold."
        ),
        epilog=_SWITCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    switch.add_argument(
        "mode", choices=[str(m) for m in Mode], metavar="MODE", help="compose-only, k8s-only or hybrid-guarded"
    )
    switch.add_argument("--profile", type=Path, default=None, help="stack profile YAML (default as for audit)")
    switch.add_argument("--apply", action="store_true", help="carry the plan out (asks first on a terminal)")
    switch.add_argument("--yes", action="store_true", help="with --apply: do not ask")
    switch.add_argument("--json", action="store_true", help="print the plan and results as JSON")
    switch.add_argument(
        "--force", action="store_true", help="allow SIGKILL of a stateful service that ignores its stop signal"
    )
    switch.add_argument("--wait-lock", type=float, default=0.0, metavar="SECONDS", help="wait for another switch")
    switch.add_argument("--deadline", type=float, default=120.0, metavar="SECONDS", help="verification deadline")
    switch.add_argument("-v", "--verbose", action="store_true", help="show Prefect's log lines on stderr")

    profile = sub.add_parser("profile", help="validate a profile or print its JSON Schema")
    profile_sub = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    validate = profile_sub.add_parser("validate", help="validate FILE; print every problem with its field path")
    validate.add_argument("file", type=Path)
    profile_sub.add_parser("schema", help="print the profile JSON Schema (for editors)")
    return parser


def _switch(args: argparse.Namespace) -> int:
    prepare_prefect(verbose=args.verbose)  # a switch is always a recorded flow
    from flows.switch import run_switch
    from stackwarden.model.plan import Outcome, SwitchStatus
    from stackwarden.report.plan import render_outcome, render_plan

    profile_path = args.profile or _default_profile()
    load_profile(profile_path)
    reviewed: list[str] | None = None
    if args.apply and not args.yes:
        if not sys.stdin.isatty():
            print("stackwarden: --apply without --yes needs a terminal to ask on", file=sys.stderr)
            return EXIT_USAGE
        preview = run_switch(mode=args.mode, profile_path=str(profile_path))
        print(render_plan(preview.plan))
        if preview.status is SwitchStatus.REFUSED:
            return EXIT_REFUSED
        if not preview.plan.steps:
            return EXIT_OK
        # the question goes to stdout with the plan (input() would put it on stderr on a bare tty)
        print(f"Apply these {len(preview.plan.steps)} step(s)? [y/N] ", end="", flush=True)
        if sys.stdin.readline().strip().lower() not in {"y", "yes"}:
            print("nothing changed")
            return EXIT_OK
        reviewed = [step.id for step in preview.plan.steps]
    outcome = run_switch(
        mode=args.mode,
        profile_path=str(profile_path),
        apply=args.apply,
        expected_steps=reviewed,
        force=args.force,
        deadline_seconds=args.deadline,
        lock_wait_seconds=args.wait_lock,
    )
    print(outcome.model_dump_json(indent=2) if args.json else render_outcome(outcome))
    if outcome.status is SwitchStatus.REFUSED:
        return EXIT_REFUSED
    if outcome.status is SwitchStatus.ROLLED_BACK:
        return EXIT_FINDINGS
    if outcome.verdict is not None and outcome.verdict.outcome is Outcome.BROKEN_BY_CODE_ISSUE:
        print("stackwarden: switched, but some service is broken by a code issue", file=sys.stderr)
        return EXIT_CODE_ISSUE
    return EXIT_OK


def _default_profile() -> Path:
    env = os.environ.get("STACKWARDEN_PROFILE")
    return Path(env) if env else bundled_profile_path()


def _summary(outcome_findings: list[tuple[str, str, str]], out: TextIO) -> None:
    """A rich table on a terminal, plain lines otherwise."""
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="stackwarden findings")
        for column in ("severity", "id", "title"):
            table.add_column(column)
        for row in outcome_findings:
            table.add_row(*row)
        Console(file=out).print(table)
        return
    for severity, finding_id, title in outcome_findings:
        print(f"{severity:8} {finding_id:32} {title}", file=out)


def _run_audit(args: argparse.Namespace, profile_path: Path) -> AuditOutcome:
    """In process by default; the recorded flow when a Prefect API is configured or asked for."""
    profile = load_profile(profile_path)  # fail fast with a clear message before any flow starts
    progress = LiveProgress(sys.stderr)
    record = args.record if args.record is not None else prefect_api_configured()
    if not record:
        from stackwarden.pipeline import run_audit

        return run_audit(profile, progress=progress)
    prepare_prefect(verbose=args.verbose)
    with progress.step("running the recorded audit flow"):
        from flows.audit import audit_flow

        return audit_flow(profile_path=str(profile_path))


def _audit(args: argparse.Namespace) -> int:
    from stackwarden.report import render_json

    configure_logging(verbose=args.verbose, stream=sys.stderr)
    profile_path = args.profile or _default_profile()
    outcome = _run_audit(args, profile_path)
    text = render_json(outcome.result, outcome.snapshot) if args.json else outcome.markdown
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
        _summary([(str(f.severity), f.id, f.title) for f in outcome.result.findings], sys.stdout)
        print(f"report written to {args.output}")
    elif sys.stdout.isatty() and not args.json:
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(text))
    else:
        print(text)
    failing = outcome.result.at_least(args.fail_on)
    if failing:
        print(
            f"stackwarden: {len(failing)} finding(s) at or above {args.fail_on}: " + ", ".join(f.id for f in failing),
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    return EXIT_OK


def _profile(args: argparse.Namespace) -> int:
    if args.profile_command == "schema":
        print(profile_json_schema())
        return EXIT_OK
    profile = load_profile(args.file)
    print(f"{args.file}: valid profile {profile.name!r} with {len(profile.services)} services")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stackwarden`` console script."""
    args = _parser().parse_args(argv)
    # The ephemeral server's telemetry write races its own start-up ("database is locked");
    # an audit has no use for it.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        if args.command == "audit":
            return _audit(args)
        if args.command == "switch":
            return _switch(args)
        return _profile(args)
    except ProfileError as exc:
        print(f"stackwarden: invalid profile\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except LockedError as exc:
        print(f"stackwarden: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except StackwardenError as exc:
        print(f"stackwarden: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("stackwarden: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # a one-line message, not a traceback, and a distinct exit code
        print(f"stackwarden: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
