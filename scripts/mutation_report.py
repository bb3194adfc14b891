"""Summarise a mutmut run of the safety core (``scripts/mutation.sh``): per file the mutants
killed, survived, untested and timed out, the score, and every survivor with its one-line change.

Run from the repository root with the venv that ran mutmut, after ``mutmut run``:

    .venv/bin/python scripts/mutation_report.py [--json FILE]

It reads mutmut's own result files (``mutants/**/*.py.meta``) and asks mutmut for each
survivor's diff; it changes nothing."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

KILLED = {1, 3, 37}
SURVIVED = {0}
UNTESTED = {5, 33}
TIMEOUT = {24, -24, 36, 152, 255}


def outcome(code: int | None) -> str:
    """mutmut's exit code of a mutant's test run, in one word."""
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in UNTESTED:
        return "no tests"
    if code in TIMEOUT:
        return "timeout"
    return "not checked" if code is None else "suspicious"


def change_of(name: str) -> str:
    """The survivor's changed lines (``- old`` / ``+ new``), from mutmut's own diff."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name)
    lines = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return " / ".join(" ".join(line.split()) for line in lines)


def collect(root: Path) -> dict[str, Any]:
    """Per mutated file: counts by outcome, the score and the survivors with their change."""
    files: dict[str, Any] = {}
    for meta in sorted(root.glob("mutants/**/*.py.meta")):
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(outcome(c) for c in codes.values())
        decided = counts["killed"] + counts["survived"]
        survivors = sorted(n for n, c in codes.items() if outcome(c) == "survived")
        files[str(meta.relative_to(root / "mutants")).removesuffix(".meta")] = {
            "mutants": len(codes),
            **{k: counts[k] for k in ("killed", "survived", "no tests", "timeout", "not checked", "suspicious")},
            "score": round(counts["killed"] / decided, 3) if decided else None,
            "survivors": {n: change_of(n) for n in survivors},
        }
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the whole result (survivors' changes too) here")
    parser.add_argument("--survivors", action="store_true", help="print only the survivors' names, one a line")
    args = parser.parse_args(argv)
    if args.survivors:
        for meta in sorted(Path.cwd().glob("mutants/**/*.py.meta")):
            codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
            for name in sorted(n for n, c in codes.items() if outcome(c) == "survived"):
                print(name)
        return 0
    files = collect(Path.cwd())
    if not files:
        print("no mutmut results under ./mutants: run scripts/mutation.sh first", file=sys.stderr)
        return 2
    print("| file | mutants | killed | survived | no tests | timeout | score |")
    print("|---|---|---|---|---|---|---|")
    for path, f in files.items():
        score = f"{f['score']:.1%}" if f["score"] is not None else "-"
        print(
            f"| `{path}` | {f['mutants']} | {f['killed']} | {f['survived']} | {f['no tests']} | "
            f"{f['timeout']} | {score} |"
        )
    if args.json:
        args.json.write_text(json.dumps(files, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
