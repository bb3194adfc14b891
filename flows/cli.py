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
import re
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from stackwarden.errors import LockedError, ProfileError, StackwardenError
from stackwarden.model.base import Mode, Severity
from stackwarden.model.profile import Profile
from stackwarden.profiles import default_profile_path, load_profile, profile_json_schema

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_REFUSED, EXIT_CODE_ISSUE = 0, 1, 2, 3, 4, 5

_EPILOG = """\
exit codes:
  0  nothing at or above --fail-on      1  findings at or above --fail-on
  2  bad input (option, profile, mode)  3  stackwarden itself failed

Without PREFECT_API_URL the flows run on Prefect's ephemeral local server; set it to record
runs on your Prefect server and inspect them in its UI.
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
        "--prometheus",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the audit's metrics to FILE in node_exporter's textfile-collector format",
    )
    audit.add_argument(
        "--fail-on",
        type=Severity,
        choices=[s for s in Severity if s is not Severity.OK],
        default=Severity.HIGH,
        metavar="SEVERITY",
        help="exit 1 if any finding is at or above SEVERITY: critical, high (default), medium, low",
    )

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

    serve = sub.add_parser(
        "serve",
        help="serve the scheduled audit and the three switches (approval in the Prefect UI)",
        description=(
            "Serve, in this one process, the audit of each profile (on a schedule) and the three "
            "switch flows (each pauses for approval in the Prefect UI). Uses Prefect's serve: no "
            "worker or work pool. Against $PREFECT_API_URL when set; otherwise it starts a local "
            "Prefect server (SQLite under $STACKWARDEN_PREFECT_HOME, default "
            "~/.local/share/stackwarden/prefect) and stops it on Ctrl-C or SIGTERM."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--profile",
        type=Path,
        action="append",
        default=None,
        help="stack profile YAML; repeat for several (default as for audit)",
    )
    serve.add_argument(
        "--audit-every",
        type=parse_duration,
        default=timedelta(minutes=15),
        metavar="DURATION",
        help="audit interval: 90s, 15m (default), 1h, 1h30m, 1d",
    )
    serve.add_argument(
        "--host-name",
        default=None,
        metavar="NAME",
        help="the host name runs carry as a tag and parameter (default: $STACKWARDEN_HOST or this machine's name)",
    )
    serve.add_argument(
        "--prometheus-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each audit's metrics to DIR/stackwarden-<profile>.prom (node_exporter textfile collector)",
    )
    serve.add_argument(
        "--port", type=int, default=None, help="port of the local Prefect server (default 4200, or a free one)"
    )

    profile = sub.add_parser("profile", help="validate a profile or print its JSON Schema")
    profile_sub = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    validate = profile_sub.add_parser("validate", help="validate FILE; print every problem with its field path")
    validate.add_argument("file", type=Path)
    profile_sub.add_parser("schema", help="print the profile JSON Schema (for editors)")
    return parser


def _switch(args: argparse.Namespace) -> int:
    from flows.switch import run_switch
    from stackwarden.model.plan import Outcome, SwitchStatus
    from stackwarden.report.plan import render_outcome, render_plan

    profile_path = args.profile or default_profile_path()
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


def _audit(args: argparse.Namespace) -> int:
    from flows.audit import audit_flow
    from stackwarden.report import render_json

    profile_path = args.profile or default_profile_path()
    load_profile(profile_path)  # fail fast with a clear message before any flow starts
    if args.prometheus is not None and not args.prometheus.parent.is_dir():
        print(f"stackwarden: --prometheus {args.prometheus}: directory does not exist", file=sys.stderr)
        return EXIT_USAGE
    prometheus = str(args.prometheus) if args.prometheus is not None else None
    outcome = audit_flow(profile_path=str(profile_path), prometheus_path=prometheus)
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


_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h30m``, ``1d`` or bare seconds -> timedelta (argparse type: a bad
    value is a one-line usage error, exit 2). Below 10 seconds an audit would overlap itself."""
    value = text.strip().lower()
    if value.isdigit():
        seconds = int(value)
    elif value and _DURATION.sub("", value) == "":
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(value))
    else:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 1h or 1h30m")
    if seconds < 10:
        raise argparse.ArgumentTypeError(f"{text!r} is shorter than the 10 seconds minimum")
    return timedelta(seconds=seconds)


def _serve(args: argparse.Namespace) -> int:
    from flows.local_server import local_server, stackwarden_prefect_home

    paths: list[Path] = args.profile or [default_profile_path()]
    served = [(path, load_profile(path)) for path in paths]  # every profile valid before anything starts
    names = [profile.name for _, profile in served]
    if len(set(names)) != len(names):
        print(f"stackwarden: two --profile files share a profile name: {', '.join(names)}", file=sys.stderr)
        return EXIT_USAGE
    if args.prometheus_dir is not None and not args.prometheus_dir.is_dir():
        print(f"stackwarden: --prometheus-dir {args.prometheus_dir}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    host = args.host_name or os.environ.get("STACKWARDEN_HOST") or socket.gethostname()
    # SIGTERM stops us like Ctrl-C until Prefect's runner installs its own graceful handler.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if os.environ.get("PREFECT_API_URL"):
            ui_url = os.environ.get("PREFECT_UI_URL") or os.environ["PREFECT_API_URL"].removesuffix("/api")
            _run_serve(served, host, args, ui_url)
            return EXIT_OK
        with local_server(stackwarden_prefect_home(), port=args.port) as server:
            print(f"Prefect server started: {server.ui_url} (PREFECT_HOME={server.home}, log {server.log})", flush=True)
            os.environ.update(
                PREFECT_API_URL=server.api_url, PREFECT_UI_URL=server.ui_url, PREFECT_HOME=str(server.home)
            )
            _run_serve(served, host, args, server.ui_url)
        print("stackwarden serve: stopped; the local Prefect server is stopped too", flush=True)
    except KeyboardInterrupt:
        print("stackwarden serve: stopped", file=sys.stderr)
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run_serve(served: list[tuple[Path, Profile]], host: str, args: argparse.Namespace, ui_url: str) -> None:
    """Import Prefect only now, after the environment names the server it must talk to."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    from flows.serve import Served, serve_stack

    with temporary_settings(updates={PREFECT_API_URL: os.environ["PREFECT_API_URL"], PREFECT_UI_URL: ui_url}):
        serve_stack(
            [Served(path=path, profile=profile) for path, profile in served],
            host=host,
            audit_every=args.audit_every,
            prometheus_dir=args.prometheus_dir,
            ui_url=ui_url,
        )


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
        if args.command == "serve":
            return _serve(args)
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
