#!/usr/bin/env python3
"""Mutation check of the real-part tests: break one feature by hand, run the tests that claim
it, and see whether they notice.

Each mutant in ``scripts/mutant_catalogue.py`` is an exact text replacement in one product file
(the text must occur exactly once, so a catalogue that no longer matches the code says so
instead of testing nothing) and the pytest selection that must kill it. For each mutant this
command writes the mutated file, runs the selection (``CI=true``, so a missing real part fails
instead of skipping; ``-x``; a timeout), and puts the original bytes back in a ``finally``
(also on SIGINT/SIGTERM). A mutant is

- ``killed``: the selection failed (pytest exit 1), or ran past its timeout;
- ``SURVIVED``: every selected test passed with the feature broken;
- ``error``: pytest could not run the selection (exit 2-5), or the text was not found once.

With ``--baseline`` each distinct selection first runs on the unmutated tree: a selection that
fails there cannot kill anything honestly, and its mutants are reported ``baseline-failed``.

It works in the repository it lives in, on files that must be unmodified (``git diff``) when it
starts, and checks at the end that ``git status`` is what it was. Run it from a clone of its own
(``git clone``, then ``scripts/install.sh --dev``) to keep working in the original meanwhile.
Not part of the test suite: it runs real-part tests dozens of times (an hour or more).

    .venv/bin/python scripts/mutants.py --list
    .venv/bin/python scripts/mutants.py --check                 # every mutant's text is there once
    .venv/bin/python scripts/mutants.py --baseline --json mutants.json
    .venv/bin/python scripts/mutants.py --only verify-no-settle-window,lock-follows-symlink
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from mutant_catalogue import CATALOGUE, Mutant  # noqa: E402  (the catalogue lives beside this file)

PYTHON = REPO / ".venv" / "bin" / "python"


@dataclass
class Result:
    """One mutant's fate."""

    name: str
    area: str
    file: str
    tests: tuple[str, ...]
    status: str
    seconds: float
    detail: str = ""


class Interrupted(BaseException):
    """SIGTERM while a mutant is applied: unwind through the ``finally`` that restores it."""


def _on_signal(signum: int, frame: object) -> None:
    raise Interrupted(f"signal {signum}")


def git(*args: str) -> str:
    """``git ARGS`` in the repository, its output."""
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout


def check_text(mutant: Mutant) -> str | None:
    """Why the mutant cannot be applied (its text is not in its file exactly once), or None."""
    path = REPO / mutant.file
    if not path.is_file():
        return f"{mutant.file}: no such file"
    count = path.read_text(encoding="utf-8").count(mutant.old)
    if count != 1:
        return f"{mutant.file}: the text to replace occurs {count} times (must be once)"
    if mutant.old == mutant.new:
        return "the replacement changes nothing"
    mutated = path.read_text(encoding="utf-8").replace(mutant.old, mutant.new, 1)
    try:  # a mutant that does not even compile would be "killed" by any import: no evidence at all
        compile(mutated, str(path), "exec")
    except SyntaxError as exc:
        return f"{mutant.file}: the mutated file does not compile: {exc}"
    return None


@contextlib.contextmanager
def applied(mutant: Mutant) -> Iterator[None]:
    """The mutant written into its file for the duration; the original bytes put back after,
    whatever happens (an exception, Ctrl-C, SIGTERM)."""
    path = REPO / mutant.file
    original = path.read_bytes()
    text = original.decode("utf-8")
    try:
        path.write_bytes(text.replace(mutant.old, mutant.new, 1).encode("utf-8"))
        yield
    finally:
        path.write_bytes(original)
        if path.read_bytes() != original:  # pragma: no cover - the disk lied
            raise SystemExit(f"could not restore {mutant.file}; run `git checkout -- {mutant.file}`")


def run_selection(tests: Sequence[str], timeout: float) -> tuple[str, float, str]:
    """Run a pytest selection in its own process group: (status, seconds, last lines)."""
    env = dict(os.environ, CI="true", PYTHONDONTWRITEBYTECODE="1")
    argv = [str(PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-x", "-q", "--no-header", "-rfE", *tests]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - started, out.decode(errors="replace")[-1500:]
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    tail = out.decode(errors="replace")[-1500:]
    status = {0: "passed", 1: "failed"}.get(proc.returncode, f"pytest exit {proc.returncode}")
    return status, time.monotonic() - started, tail


def fate(status: str) -> str:
    """A mutant's result from its selection's: a failure (or hang) kills it."""
    if status in {"failed", "timeout"}:
        return "killed"
    if status == "passed":
        return "SURVIVED"
    return "error"


def select(names: str | None, area: str | None) -> list[Mutant]:
    """The catalogue, narrowed by name (comma-separated) or area."""
    chosen = list(CATALOGUE)
    if names:
        wanted = {n.strip() for n in names.split(",") if n.strip()}
        unknown = wanted - {m.name for m in CATALOGUE}
        if unknown:
            raise SystemExit(f"unknown mutant(s): {', '.join(sorted(unknown))}")
        chosen = [m for m in chosen if m.name in wanted]
    if area:
        chosen = [m for m in chosen if m.area == area]
    return chosen


def table(results: Sequence[Result]) -> str:
    """The results as a markdown table, and the totals."""
    lines = ["| mutant | area | file | result | seconds |", "|---|---|---|---|---:|"]
    lines += [f"| `{r.name}` | {r.area} | `{r.file}` | {r.status} | {r.seconds:.0f} |" for r in results]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    total = sum(r.seconds for r in results)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return "\n".join(lines) + f"\n\n{len(results)} mutants: {summary}; {total / 60:.1f} min of test time\n"


def run_all(mutants: Sequence[Mutant], problems: dict[str, str], *, baseline: bool, timeout: float) -> list[Result]:
    """Every mutant in turn (after its selection's baseline, when asked); each file is restored
    before the next mutant is applied. Ctrl-C or SIGTERM ends the run with what is done."""
    passed: dict[tuple[str, ...], str] = {}
    results: list[Result] = []
    try:
        for m in mutants:
            if m.name in problems:
                results.append(Result(m.name, m.area, m.file, m.tests, "error", 0.0, problems[m.name]))
                print(f"{m.name}: error: {problems[m.name]}", flush=True)
                continue
            if baseline and m.tests not in passed:
                status, seconds, tail = run_selection(m.tests, timeout)
                passed[m.tests] = status
                print(f"  baseline {' '.join(m.tests)}: {status} in {seconds:.0f}s", flush=True)
                if status != "passed":
                    print(tail, flush=True)
            if passed.get(m.tests, "passed") != "passed":
                results.append(Result(m.name, m.area, m.file, m.tests, "baseline-failed", 0.0))
                continue
            with applied(m):
                status, seconds, tail = run_selection(m.tests, timeout)
            result = Result(m.name, m.area, m.file, m.tests, fate(status), seconds, tail if status != "failed" else "")
            results.append(result)
            print(f"{m.name}: {result.status} ({status}, {seconds:.0f}s)", flush=True)
            if result.status == "error":
                print(tail, flush=True)
    except (KeyboardInterrupt, Interrupted):
        print("interrupted; the mutated file was restored", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the catalogue and exit")
    parser.add_argument("--check", action="store_true", help="check every mutant's text is in its file once")
    parser.add_argument("--only", help="comma-separated mutant names")
    parser.add_argument("--area", help="only the mutants of this area")
    parser.add_argument("--baseline", action="store_true", help="run each selection unmutated first")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per selection (default 1200)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    mutants = select(args.only, args.area)
    if args.list:
        for m in mutants:
            print(f"{m.name:45} {m.area:10} {m.file}\n    {m.claim}\n    tests: {' '.join(m.tests)}")
        print(f"{len(mutants)} mutants")
        return 0
    problems = {m.name: why for m in mutants if (why := check_text(m))}
    if args.check:
        for name, why in problems.items():
            print(f"{name}: {why}")
        print(f"{len(mutants)} mutants, {len(problems)} whose text does not match")
        return 1 if problems else 0
    dirty = git("status", "--porcelain", "--", *sorted({m.file for m in mutants})).strip()
    if dirty:
        raise SystemExit(f"refusing to mutate files with uncommitted changes:\n{dirty}")
    status_before = git("status", "--porcelain")
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"{len(mutants)} mutants on {os.uname().nodename}, {os.cpu_count()} CPUs, load {os.getloadavg()}", flush=True)
    results = run_all(mutants, problems, baseline=args.baseline, timeout=args.timeout)
    status_after = git("status", "--porcelain")
    print()
    print(table(results))
    if status_after != status_before:
        print(f"git status changed during the run!\nbefore:\n{status_before}\nafter:\n{status_after}")
        return 3
    print(f"git status unchanged ({'clean' if not status_after.strip() else 'as before'})")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 1 if any(r.status in {"SURVIVED", "error"} for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
