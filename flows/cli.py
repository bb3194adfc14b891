"""The ``stackwarden`` command line.

Exit codes (documented in README and ``--help``):
  0  nothing at or above --fail-on
  1  at least one finding at or above --fail-on
  2  bad input: unknown option, malformed profile, unknown mode
  3  stackwarden or its surroundings failed (a bug, an unwritable PREFECT_HOME, a Prefect API
     that does not answer, an ephemeral server that did not start in time); one line says
     which, with a hint
switch adds: 4 refused before any change, 5 switched but broken by a code issue, 6 unverified
(the result could not be observed; left as it is), 7 rollback incomplete (what serves was kept).

Every line this module prints goes through ``stackwarden.sanitize`` (control characters,
secrets, line length), and rich is never allowed to interpret markup in it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from flows.terminal import LiveProgress, configure_logging, prefect_api_configured, prepare_prefect
from stackwarden.basics import Mode, Severity, default_profile_path
from stackwarden.errors import LockedError, ProfileChoiceError, ProfileError, StackwardenError, environment_hint
from stackwarden.sanitize import one_line, strip_controls, terminal

if TYPE_CHECKING:
    from stackwarden.model.profile import Profile
    from stackwarden.pipeline import AuditOutcome

# The models (pydantic), the profile loader (yaml) and the observation are imported where they
# are needed: an audit answered by a running serve needs none of them.

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_REFUSED, EXIT_CODE_ISSUE = 0, 1, 2, 3, 4, 5
EXIT_UNVERIFIED, EXIT_ROLLBACK_INCOMPLETE = 6, 7

_EPILOG = """\
exit codes:
  0  nothing at or above --fail-on      1  findings at or above --fail-on
  2  bad input (option, profile, mode)  3  stackwarden or its surroundings failed (one line + hint)

An audit runs in this process unless a Prefect API is configured (PREFECT_API_URL, or in the
active Prefect profile): then it runs as the recorded flow "audit" on that server. --record and
--no-record override the choice; --record without a server starts Prefect's ephemeral one
(allowed PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, default here 120 s, to start).
A switch's dry run runs in this process (no Prefect); an applying switch always runs as the
recorded flow "switch-mode".
"""


_SWITCH_EPILOG = """\
exit codes:
  0  dry run done, or switched and verified (it held for the profile's settle window)
  1  verification or a step failed: everything was undone (rolled back)
  2  bad input (option, profile, mode)         3  stackwarden or its surroundings failed
  4  refused before any change (context not allowed, unknown owner of a port, guard, lock,
     or an interrupted switch's repair that could not be made)
  5  switched and verified, but a service is broken by a code issue no mode fixes
  6  unverified: the steps ran but a runtime could not be observed until the deadline; the
     host is left as it is (new owners that served stay); the output says what was not seen
  7  rollback incomplete: an undo failed or was impossible; owners that serve were kept, and
     the output lists what runs where now and the commands that would finish the job

A switch killed part way leaves a journal beside its locks: the next switch repairs what it
left half done before planning (and says so), and the audit reports it (interrupted-switch).

Safety: dry run by default; identities (container id, k8s uid/generation, pid+start time+exe)
are re-checked before each step; workloads are scaled to 0 (never deleted) with their replica
count recorded; volumes, PVCs and images are never removed; stateful services are stopped with
their own signal and never SIGKILLed without --force; one switch at a time per profile, port,
compose project and workload (a second one fails with exit 4 naming the holder).
"""


EPHEMERAL_STARTUP_SECONDS = 120
"""Start-up allowance of Prefect's ephemeral server. Prefect's default (20 s) fails a few runs in
fifty on a loaded 2-core machine, where a start takes 18 s unloaded; only the sleeps count
against it, so the wall-clock wait is longer still. PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS
set by the user wins."""
MAX_SECONDS = 24 * 3600.0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (no usage block) and exits 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _seconds(*, allow_zero: bool) -> Callable[[str], float]:
    """An argparse type for a duration: a finite number within (0 or more, MAX_SECONDS].
    ``nan`` compares false with everything, so an unchecked NaN deadline never ends."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        low_ok = value >= 0 if allow_zero else value > 0
        if not math.isfinite(value) or not low_ok or value > MAX_SECONDS:
            low = "0" if allow_zero else "more than 0"
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds, {low} to {MAX_SECONDS:g}")
        return value

    parse.__name__ = "seconds"
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    audit.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run as a recorded Prefect flow (default: only when a Prefect API is configured)",
    )
    audit.add_argument(
        "--fresh",
        action="store_true",
        help="observe now, in this process, even when a running stackwarden serve could answer from its live view",
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
    switch.add_argument(
        "--wait-lock",
        type=_seconds(allow_zero=True),
        default=0.0,
        metavar="SECONDS",
        help="wait for another switch (0 to 86400)",
    )
    switch.add_argument(
        "--deadline",
        type=_seconds(allow_zero=False),
        default=120.0,
        metavar="SECONDS",
        help="verification deadline (more than 0, up to 86400)",
    )
    switch.add_argument("-v", "--verbose", action="store_true", help="show Prefect's log lines on stderr")

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
        "--port", type=_port, default=None, help="port of the local Prefect server (default 4200, which must be free)"
    )
    serve.add_argument(
        "--allow-unauthenticated-api",
        action="store_true",
        help="accept a PREFECT_API_URL server that answers API calls without authentication (not advised)",
    )
    serve.add_argument(
        "--no-watch",
        dest="watch",
        action="store_false",
        help="no live view: findings change only with the scheduled audit, and audits observe in process",
    )
    serve.add_argument(
        "--socket-group",
        default=None,
        metavar="GROUP",
        help=(
            "let members of GROUP ask the live view too (stackwarden audit): the audit socket is then mode 0660 "
            "with that group; by default only its owner (root) may"
        ),
    )
    serve.add_argument(
        "--drain-timeout",
        type=_drain_seconds,
        default=300.0,
        metavar="SECONDS",
        help=(
            "on SIGTERM or Ctrl-C, wait up to SECONDS for runs in flight (a switch between its stop and "
            "its start) before cancelling them; runs paused for approval are cancelled at once; "
            "0 cancels everything at once (default 300; set systemd's TimeoutStopSec above it)"
        ),
    )

    watch = sub.add_parser(
        "watch",
        help="follow the live view in the foreground: one line per finding change",
        description=(
            "Watch every runtime of the profile (the Docker events stream, Kubernetes watches, the host's "
            "listening sockets and processes every second), re-diagnose on each change, and print one line per "
            "finding that opens, resolves or changes severity, and per runtime lost or seen again. Findings "
            "open at the start are printed first (event 'open'). Read-only; needs no Prefect. Ctrl-C or "
            "SIGTERM stops it."
        ),
    )
    watch.add_argument(
        "--profile",
        type=Path,
        action="append",
        default=None,
        help="stack profile YAML; repeat for several (default as for audit)",
    )
    watch.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line: time, event, profile, id, rule, severity, summary, services",
    )
    watch.add_argument("-v", "--verbose", action="store_true", help="show log lines on stderr")

    server = sub.add_parser(
        "server",
        help="run a Prefect server with authentication (for workers, or a fleet), without serving flows",
        description=(
            "Start the Prefect server that 'serve' would start, and nothing else: SQLite (or "
            "$PREFECT_SERVER_DATABASE_CONNECTION_URL) under $STACKWARDEN_PREFECT_HOME, every API call "
            "authenticated with the secret kept there (client.env holds PREFECT_API_URL and "
            "PREFECT_API_AUTH_STRING), CSRF protection on. Stops on Ctrl-C or SIGTERM."
        ),
    )
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=_port, default=None, help="port (default 4200, which must be free)")

    worker = sub.add_parser(
        "worker",
        help="run a Prefect process worker for this host's deployments (scripts/deploy.sh)",
        description=(
            "Check what a worker needs, then become Prefect's process worker on this host's pool: "
            "PREFECT_API_URL (and PREFECT_API_AUTH_STRING) must name a server that refuses "
            "unauthenticated calls, and every profile the runs may act on ($STACKWARDEN_PROFILES, "
            "else $STACKWARDEN_PROFILE or the bundled one) must be valid and, as root, root's."
        ),
    )
    worker.add_argument(
        "--pool", default=None, help="work pool (default $STACKWARDEN_POOL, else stackwarden-<host>, as deploy.sh)"
    )
    worker.add_argument(
        "--host-name",
        default=None,
        metavar="NAME",
        help="the host name its runs speak for (default: $STACKWARDEN_HOST or this machine's name)",
    )
    worker.add_argument(
        "--allow-unauthenticated-api",
        action="store_true",
        help="accept a server that answers API calls without authentication (not advised)",
    )

    profile = sub.add_parser("profile", help="validate a profile or print its JSON Schema")
    profile_sub = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    validate = profile_sub.add_parser("validate", help="validate FILE; print every problem with its field path")
    validate.add_argument("file", type=Path)
    profile_sub.add_parser("schema", help="print the profile JSON Schema (for editors)")
    return parser


def _out(text: str, stream: TextIO | None = None, end: str = "\n", *, json_text: bool = False) -> None:
    """Print through the sanitizer: no control character, no secret, no endless line. JSON was
    sanitized value by value when it was made (``sanitize.deep``); cutting or rewriting its
    lines would break it, so it only loses control characters here (it has none raw)."""
    target = stream if stream is not None else sys.stdout
    target.write((strip_controls(text) if json_text else terminal(text)) + end)
    target.flush()


def _fail(message: str, code: int, hint: str | None = None) -> int:
    """One line on stderr (``stackwarden: ...; hint: ...``) and the exit code to return."""
    sys.stderr.write(f"stackwarden: {one_line(message)}" + (f"; hint: {one_line(hint)}" if hint else "") + "\n")
    return code


class _Usage(Exception):
    """Bad input found before anything is observed: exit 2 with this one line."""


def _check_output(path: Path, option: str = "--output") -> None:
    """``--output`` (or ``--prometheus``) must be writable before the audit runs, not fail after it
    (exit 3 then)."""
    if path.is_dir():
        raise _Usage(f"{option} {path}: is a directory")
    parent = path.parent if str(path.parent) else Path()
    if not parent.exists():
        raise _Usage(f"{option} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise _Usage(f"{option} {path}: {parent} is not a directory")
    if path.exists():
        if not path.is_file():
            raise _Usage(f"{option} {path}: not a regular file")
        if not os.access(path, os.W_OK):
            raise _Usage(f"{option} {path}: not writable")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise _Usage(f"{option} {path}: directory {parent} is not writable")


class _Surroundings(Exception):
    """Prefect (or another part of the surroundings) cannot work: exit 3, one line and a hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def _check_prefect() -> None:
    """Before any flow: PREFECT_HOME must be writable (Prefect keeps its database and results
    there) and a configured PREFECT_API_URL must answer; each failure is one line and a hint."""
    import tempfile
    import urllib.error
    import urllib.request

    home = _prefect_home()
    try:  # try it: permissions, a read-only file system or a file in the way (root passes os.access)
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        raise _Surroundings(
            f"PREFECT_HOME {home} is not a writable directory ({exc.strerror or exc})",
            "set PREFECT_HOME to a directory you can write (e.g. PREFECT_HOME=$(mktemp -d))",
        ) from None
    url = os.environ.get("PREFECT_API_URL")
    if url:
        health = url.rstrip("/") + "/health"
        if not health.startswith(("http://", "https://")):
            raise _Surroundings(f"PREFECT_API_URL {url} is not an http(s) URL", "e.g. http://127.0.0.1:4200/api")
        try:
            with urllib.request.urlopen(health, timeout=5) as response:  # noqa: S310 - scheme checked above
                response.read(64)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Surroundings(
                f"the Prefect API at {url} does not answer ({reason})",
                "start that Prefect server, or unset PREFECT_API_URL to run on a temporary local one",
            ) from None


def _explain(exc: BaseException) -> tuple[str, str] | None:
    """(message, hint) for failures of the surroundings that surface while a flow runs."""
    text = str(exc)
    if isinstance(exc, RuntimeError) and "ephemeral Prefect API server" in text:
        allowance = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_SECONDS))
        return (
            f"Prefect's temporary server did not start within its {allowance} s start-up allowance "
            "(a heavily loaded machine?)",
            "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or set PREFECT_API_URL to a running server",
        )
    if type(exc).__module__.startswith(("httpx", "httpcore")):
        return (
            f"cannot talk to the Prefect API at {os.environ.get('PREFECT_API_URL') or 'the temporary server'}: "
            f"{type(exc).__name__}: {text}",
            "check that the Prefect server is up, or unset PREFECT_API_URL",
        )
    if isinstance(exc, PermissionError) and str(_prefect_home()) in str(exc.filename or text):
        return (f"PREFECT_HOME {_prefect_home()} is not writable: {text}", "set PREFECT_HOME to a writable directory")
    if isinstance(exc, OSError) and exc.errno is not None:
        return (f"{type(exc).__name__}: {text}", "a file or device the run needs is not usable; see the path above")
    return None


def _runtime_hints(unreachable: Sequence[tuple[str, str]]) -> None:
    """One stderr line per unreachable runtime whose error has a known fix (socket permission,
    malformed kubeconfig): the report says what was not seen, this says what to do."""
    for runtime, error in unreachable:
        hint = environment_hint(runtime, error)
        if hint:
            _fail(f"{runtime} not observed: {error}", 0, hint)


def _prefect_api() -> None:
    """The Prefect API a recorded run talks to: the configured one, else a temporary server this
    process owns (it dies with the CLI, SIGKILL included: no orphan server is left behind)."""
    if prefect_api_configured():
        return
    from flows.ephemeral import start_temporary_server
    from flows.local_server import ServerError

    allowance = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_SECONDS))
    try:
        start_temporary_server(float(allowance))
    except ServerError as exc:
        raise _Surroundings(
            str(exc),
            "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or set PREFECT_API_URL to a running server",
        ) from None
    except ValueError:
        raise _Surroundings(
            f"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS={allowance!r} is not a number of seconds",
            "set it to a number such as 120",
        ) from None


def _switch(args: argparse.Namespace) -> int:
    """A dry run (and the plan shown before ``--apply`` asks) runs in this process, as the
    audit does, through the same run layer as the recorded flow; the applying switch always
    runs as the recorded ``switch-mode`` flow."""
    from stackwarden.model.plan import Outcome, SwitchStatus
    from stackwarden.profiles import load_profile
    from stackwarden.report.plan import render_outcome, render_outcome_json, render_plan
    from stackwarden.run.switch import dry_run

    configure_logging(verbose=args.verbose, stream=sys.stderr)
    profile_path = args.profile or default_profile_path()
    profile = load_profile(profile_path)
    if args.apply and not args.yes and not sys.stdin.isatty():
        return _fail("--apply without --yes needs a terminal to ask on", EXIT_USAGE, "add --yes to run unattended")
    if not args.apply:
        outcome = dry_run(profile, Mode(args.mode), LiveProgress(sys.stderr))
        _out(render_outcome_json(outcome) if args.json else render_outcome(outcome), json_text=args.json)
        return EXIT_REFUSED if outcome.status is SwitchStatus.REFUSED else EXIT_OK
    reviewed: str | None = None
    if not args.yes:
        preview = dry_run(profile, Mode(args.mode), LiveProgress(sys.stderr))
        _out(render_plan(preview.plan))
        if preview.status is SwitchStatus.REFUSED:
            return EXIT_REFUSED
        if not preview.plan.steps:
            return EXIT_OK
        # the question goes to stdout with the plan (input() would put it on stderr on a bare tty);
        # what is approved is the content: the run applies only a plan with this digest
        _out(f"Plan digest {preview.plan.digest}")
        _out(f"Apply these {len(preview.plan.steps)} step(s)? [y/N] ", end="")
        if sys.stdin.readline().strip().lower() not in {"y", "yes"}:
            _out("nothing changed")
            return EXIT_OK
        reviewed = preview.plan.digest
    prepare_prefect(verbose=args.verbose)  # an applying switch is always a recorded flow
    _check_prefect()
    _prefect_api()
    from flows.switch import run_switch

    outcome = run_switch(
        mode=args.mode,
        profile_path=str(profile_path),
        apply=True,
        expected_digest=reviewed,
        force=args.force,
        deadline_seconds=args.deadline,
        lock_wait_seconds=args.wait_lock,
    )
    _out(render_outcome_json(outcome) if args.json else render_outcome(outcome), json_text=args.json)
    if outcome.status is SwitchStatus.REFUSED:
        return EXIT_REFUSED
    if outcome.status is SwitchStatus.ROLLED_BACK:
        return EXIT_FINDINGS
    if outcome.status is SwitchStatus.UNVERIFIED:
        return _fail(f"unverified: {outcome.message}", EXIT_UNVERIFIED)
    if outcome.status is SwitchStatus.ROLLBACK_INCOMPLETE:
        return _fail(
            "rollback incomplete: see what runs where now and the commands to finish", EXIT_ROLLBACK_INCOMPLETE
        )
    if outcome.verdict is not None and outcome.verdict.outcome is Outcome.BROKEN_BY_CODE_ISSUE:
        return _fail("switched, but some service is broken by a code issue", EXIT_CODE_ISSUE)
    return EXIT_OK


def _summary(outcome_findings: list[tuple[str, str, str]], out: TextIO) -> None:
    """A rich table on a terminal, plain lines otherwise. Cells are rich ``Text`` (never parsed
    as markup: ``[bold]`` or ``[/]`` in a title prints as itself) after the sanitizer."""
    if out.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title="stackwarden findings")
        for column in ("severity", "id", "title"):
            table.add_column(column)
        for row in outcome_findings:
            table.add_row(*(Text(one_line(cell)) for cell in row))
        Console(file=out, markup=False, emoji=False, highlight=False).print(table)
        return
    for severity, finding_id, title in outcome_findings:
        _out(f"{severity:8} {finding_id:32} {title}", out)


def _run_audit(args: argparse.Namespace, profile_path: Path) -> AuditOutcome:
    """In process by default; the recorded flow when a Prefect API is configured or asked for."""
    from stackwarden.profiles import load_profile

    profile = load_profile(profile_path)  # fail fast with a clear message before any flow starts
    progress = LiveProgress(sys.stderr)
    record = args.record if args.record is not None else prefect_api_configured()
    prometheus = str(args.prometheus) if args.prometheus is not None else None
    if not record:
        from stackwarden.pipeline import run_audit

        return run_audit(profile, progress=progress, prometheus_path=prometheus)
    _check_prefect()
    prepare_prefect(verbose=args.verbose)
    _prefect_api()
    with progress.step("running the recorded audit flow"):
        from flows.audit import audit_flow

        outcome = audit_flow(profile_path=str(profile_path), prometheus_path=prometheus)
    from stackwarden.pipeline import AuditOutcome

    if not isinstance(outcome, AuditOutcome):  # a refused choice returns a Failed state (whose result raises)
        raise StackwardenError(f"the recorded audit did not complete: {outcome}")
    return outcome


def _audit(args: argparse.Namespace) -> int:
    configure_logging(verbose=args.verbose, stream=sys.stderr)
    profile_path = args.profile or default_profile_path()
    if args.output:
        _check_output(args.output)
    if args.prometheus is not None:
        _check_output(args.prometheus, "--prometheus")
    if not args.fresh and args.record is not True:
        answered = _audit_from_serve(args, profile_path)
        if answered is not None:
            return answered
    outcome = _run_audit(args, profile_path)
    from stackwarden.report import render_json

    text = render_json(outcome.result, outcome.snapshot) if args.json else outcome.markdown
    findings = [(str(f.severity), f.id, f.title) for f in outcome.result.findings]
    unreachable = [(str(r.runtime), r.error or "") for r in outcome.snapshot.runtimes if not r.reachable]
    return _report(args, text, findings, unreachable)


def _audit_from_serve(args: argparse.Namespace, profile_path: Path) -> int | None:
    """The report from a running serve's live view, printed as an audit prints it; None when
    no serve answers for this profile (the audit then observes in process)."""
    from stackwarden.watch.ask import Answer, ask

    answer = ask(profile_path, as_json=args.json, prometheus=args.prometheus is not None)
    if not isinstance(answer, Answer):
        if args.verbose:
            _fail(f"{answer.reason}; observing in this process", EXIT_OK)
        return None
    if args.prometheus is not None and answer.prometheus is not None:
        from stackwarden.adapters.textfile import write_textfile

        write_textfile(args.prometheus, answer.prometheus)
    return _report(args, answer.report, answer.findings, answer.unreachable)


def _report(
    args: argparse.Namespace,
    text: str,
    findings: Sequence[tuple[str, str, str]],
    unreachable: Sequence[tuple[str, str]],
) -> int:
    """Print (or write) the report, the hints for runtimes not observed, and the exit code."""
    if args.output:
        args.output.write_text((strip_controls(text) if args.json else terminal(text)) + "\n", encoding="utf-8")
        _summary(list(findings), sys.stdout)
        _out(f"report written to {args.output}")
    elif sys.stdout.isatty() and not args.json:
        from rich.console import Console
        from rich.markdown import Markdown

        Console(markup=False, emoji=False, highlight=False).print(Markdown(terminal(text)))
    else:
        _out(text, json_text=args.json)
    _runtime_hints(unreachable)
    failing = [fid for severity, fid, _ in findings if Severity(severity).at_least(args.fail_on)]
    if failing:
        return _fail(f"{len(failing)} finding(s) at or above {args.fail_on}: " + ", ".join(failing), EXIT_FINDINGS)
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


def _drain_seconds(text: str) -> float:
    """0 to 3600 seconds: long enough for any switch's grace periods, short enough to be a stop."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= seconds <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 3600 seconds")
    return seconds


def _port(text: str) -> int:
    """A TCP port, 1 to 65535 (argparse type)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port between 1 and 65535")
    return port


def _host(args: argparse.Namespace) -> str:
    return str(args.host_name or os.environ.get("STACKWARDEN_HOST") or socket.gethostname())


def _served_profiles(paths: list[Path]) -> list[tuple[Path, Profile]]:
    """Every profile valid (and, as root, root's: see ``stackwarden.profiles.untrusted_path``)
    before anything starts, names unique; the paths absolute, so no run depends on where serve or
    the worker was started."""
    from stackwarden.profiles import load_profile

    served = [(Path(os.path.abspath(path)), load_profile(path)) for path in paths]
    names = [profile.name for _, profile in served]
    if len(set(names)) != len(names):
        raise _Usage(f"two profiles share a profile name: {', '.join(names)}")
    return served


def _fix_for_runs(served: list[tuple[Path, Profile]], host: str, allow_unauthenticated: bool) -> None:
    """What the runs of this process (and their child processes) act on, in their environment,
    not in any run parameter: the profile set, the host, whether an open server was accepted."""
    from flows.api_access import ALLOW_UNAUTHENTICATED_ENV
    from stackwarden.profiles import SERVED_PROFILES_ENV

    os.environ[SERVED_PROFILES_ENV] = os.pathsep.join(str(path) for path, _ in served)
    os.environ["STACKWARDEN_HOST"] = host
    if allow_unauthenticated:
        os.environ[ALLOW_UNAUTHENTICATED_ENV] = "1"
    else:
        os.environ.pop(ALLOW_UNAUTHENTICATED_ENV, None)


def _require_closed_server(url: str, allowed: bool) -> None:
    """A remote server must refuse calls without credentials (unless allowed): exit 3 otherwise."""
    from flows.api_access import OpenServerError, UnreachableServerError, require_authentication

    try:
        require_authentication(url, allowed=allowed)
    except UnreachableServerError as exc:
        raise _Surroundings(str(exc), "start that Prefect server, or fix PREFECT_API_URL") from None
    except OpenServerError as exc:
        raise _Surroundings(str(exc), "see docs/fleet.md (a shared server with authentication behind TLS)") from None


def _serve(args: argparse.Namespace) -> int:
    from flows.local_server import local_server, stackwarden_prefect_home
    from flows.served import PROMETHEUS_DIR_ENV

    served = _served_profiles(args.profile or [default_profile_path()])
    if args.prometheus_dir is not None and not args.prometheus_dir.is_dir():
        raise _Usage(f"--prometheus-dir {args.prometheus_dir}: not a directory")
    if args.socket_group is not None:
        import grp

        try:
            grp.getgrnam(args.socket_group)
        except KeyError:
            raise _Usage(f"--socket-group {args.socket_group}: no such group") from None
    host = _host(args)
    _fix_for_runs(served, host, args.allow_unauthenticated_api)
    if args.prometheus_dir is not None:
        os.environ[PROMETHEUS_DIR_ENV] = os.path.abspath(args.prometheus_dir)
    else:
        os.environ.pop(PROMETHEUS_DIR_ENV, None)
    # SIGTERM stops us like Ctrl-C until Prefect's runner installs its own graceful handler.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if os.environ.get("PREFECT_API_URL"):
            _require_closed_server(os.environ["PREFECT_API_URL"], args.allow_unauthenticated_api)
            ui_url = os.environ.get("PREFECT_UI_URL") or os.environ["PREFECT_API_URL"].removesuffix("/api")
            _run_serve(served, host, args, ui_url)
            return EXIT_OK
        with local_server(stackwarden_prefect_home(), port=args.port) as server:
            _out(f"Prefect server started: {server.ui_url} (PREFECT_HOME={server.home}, log {server.log})")
            _out(f"API URL and secret for clients and the UI login: {server.client_env_file} (root only)")
            os.environ.update(PREFECT_UI_URL=server.ui_url, PREFECT_HOME=str(server.home), **server.client_env)
            _run_serve(served, host, args, server.ui_url)
        _out("stackwarden serve: stopped; the local Prefect server is stopped too")
    except KeyboardInterrupt:
        _out("stackwarden serve: stopped", sys.stderr)
    return EXIT_OK


def _server(args: argparse.Namespace) -> int:
    """The local server alone, until Ctrl-C or SIGTERM."""
    from flows.local_server import local_server, stackwarden_prefect_home

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with local_server(stackwarden_prefect_home(), host=args.host, port=args.port) as server:
            _out(f"Prefect server started: {server.ui_url} (PREFECT_HOME={server.home}, log {server.log})")
            _out(f"API URL and secret for clients and the UI login: {server.client_env_file} (owner only)")
            while True:  # until Ctrl-C or SIGTERM (``_interrupt``) ends it
                signal.pause()
    except KeyboardInterrupt:
        _out("stackwarden server: stopped", sys.stderr)
    return EXIT_OK


def worker_pool(host: str) -> str:
    """The pool of this host's worker: one per host, so no host runs another host's audit."""
    return os.environ.get("STACKWARDEN_POOL") or f"stackwarden-{host}"


def _worker(args: argparse.Namespace) -> int:
    """Check what a worker needs, then poll this host's pool with ``flows.worker.StackwardenWorker``
    (Prefect's process worker with the command, environment and flow of each run fixed)."""
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        raise _Usage(
            "a worker needs PREFECT_API_URL and PREFECT_API_AUTH_STRING; "
            "e.g. set -a; . ~/.local/share/stackwarden/prefect/client.env; set +a"
        )
    from stackwarden.profiles import served_profile_paths

    served = _served_profiles(list(served_profile_paths()))
    host = _host(args)
    _require_closed_server(url, args.allow_unauthenticated_api)
    _fix_for_runs(served, host, args.allow_unauthenticated_api)
    pool = args.pool or worker_pool(host)
    _out(f"stackwarden worker: pool {pool}, host {host}, profiles " + ", ".join(p.name for _, p in served))
    from flows.worker import run_worker

    run_worker(pool)
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run_serve(served: list[tuple[Path, Profile]], host: str, args: argparse.Namespace, ui_url: str) -> None:
    """Import Prefect only now, after the environment names the server it must talk to."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    from flows.serve import Served, serve_stack

    settings: dict[Any, Any] = {PREFECT_API_URL: os.environ["PREFECT_API_URL"], PREFECT_UI_URL: ui_url}
    if os.environ.get("PREFECT_API_AUTH_STRING"):
        settings[PREFECT_API_AUTH_STRING] = os.environ["PREFECT_API_AUTH_STRING"]
    with temporary_settings(updates=settings):
        serve_stack(
            [Served(path=path, profile=profile) for path, profile in served],
            host=host,
            audit_every=args.audit_every,
            ui_url=ui_url,
            drain_seconds=args.drain_timeout,
            watch=args.watch,
            socket_group=args.socket_group,
        )


def _watch(args: argparse.Namespace) -> int:
    """The live view in the foreground, one line per change, until Ctrl-C or SIGTERM."""
    import threading
    import time

    from stackwarden.live.findings import LiveEvent
    from stackwarden.live.lines import as_json, as_text
    from stackwarden.profiles import load_profile
    from stackwarden.watch.runner import LiveView, Update

    configure_logging(verbose=args.verbose, stream=sys.stderr)
    profiles = [load_profile(path) for path in (args.profile or [default_profile_path()])]
    names = [profile.name for profile in profiles]
    if len(set(names)) != len(names):
        raise _Usage(f"two --profile files share a profile name: {', '.join(names)}")
    lock = threading.Lock()

    def print_changes(update: Update) -> None:
        with lock:
            events: list[LiveEvent] = [*update.coverage, *update.findings]
            for event in events:
                _out(as_json(event) if args.json else as_text(event), json_text=args.json)

    signal.signal(signal.SIGTERM, _interrupt)
    views = [LiveView(profile, [print_changes]) for profile in profiles]
    try:
        for view in views:
            view.start()
        _fail(f"watching {', '.join(names)} (Ctrl-C to stop)", EXIT_OK)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for view in views:
            view.stop()
    return EXIT_OK


def _profile(args: argparse.Namespace) -> int:
    from stackwarden.profiles import load_profile, profile_json_schema

    if args.profile_command == "schema":
        _out(profile_json_schema(), json_text=True)
        return EXIT_OK
    profile = load_profile(args.file)
    _out(f"{args.file}: valid profile {profile.name!r} with {len(profile.services)} services")
    from stackwarden.rules.kubernetes import any_context_warning

    if (warning := any_context_warning(profile)) is not None:
        _fail(f"warning: {warning}", EXIT_OK)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``stackwarden`` console script. Every way out is one sanitized line on
    stderr with a documented exit code; a traceback is never printed."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2, already reported in one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    # The ephemeral server's telemetry write races its own start-up ("database is locked");
    # an audit has no use for it.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", str(EPHEMERAL_STARTUP_SECONDS))
    try:
        if args.command == "audit":
            return _audit(args)
        if args.command == "switch":
            return _switch(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "watch":
            return _watch(args)
        if args.command == "server":
            return _server(args)
        if args.command == "worker":
            return _worker(args)
        return _profile(args)
    except ProfileError as exc:
        for field, reason in exc.problems or [("", "invalid")]:
            _fail(f"invalid profile: {exc.path}: {field + ': ' if field else ''}{reason}", EXIT_USAGE)
        return EXIT_USAGE
    except _Usage as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ProfileChoiceError as exc:  # a file where only a served profile's name is taken
        return _fail(str(exc), EXIT_USAGE, "unset STACKWARDEN_PROFILES to run on a file of your own at a terminal")
    except _Surroundings as exc:
        return _fail(str(exc), EXIT_INTERNAL, exc.hint)
    except LockedError as exc:
        return _fail(str(exc), EXIT_REFUSED, "wait for it, or pass --wait-lock SECONDS")
    except StackwardenError as exc:
        return _fail(str(exc), EXIT_INTERNAL)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERNAL)
    except Exception as exc:  # a one-line message, not a traceback, and a distinct exit code
        explained = _explain(exc)
        if explained is not None:
            return _fail(explained[0], EXIT_INTERNAL, explained[1])
        return _fail(f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
