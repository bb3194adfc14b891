#!/usr/bin/env bash
# The mutation check of the pure safety core (planner, verdict, preflight, sanitizer, crash
# classifier; the list is [tool.mutmut] in pyproject.toml), against the unit suite. A command of
# its own, not part of the test suite: it takes about an hour on two cores.
#
#   scripts/mutation.sh [WORKDIR]        (default /tmp/stackwarden-mutation)
#
# It clones this repository into WORKDIR (mutmut writes its mutants/ tree next to the sources),
# runs mutmut once over every mutant, then runs every survivor again by name: with mutmut 3.8.1
# a first pass here reported survivors that a run of their own killed, so a mutant is counted
# as surviving only when it survives that second run. The table it prints is the one in
# docs/testing.md; WORKDIR/mutation.json holds every survivor with its change.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/stackwarden-mutation}"
children="${MUTATION_CHILDREN:-2}"
rm -rf "$work"
git clone -q "$repo" "$work"
cd "$work"
python3 -m venv .venv
.venv/bin/pip install -q -e ".[dev,mutation]"
echo "==> mutmut: every mutant of the safety core ($children at a time)"
.venv/bin/mutmut run --max-children "$children" > mutmut-first-pass.log 2>&1 || true
mapfile -t survivors < <(.venv/bin/python scripts/mutation_report.py --survivors)
echo "==> mutmut: the ${#survivors[@]} survivors again, by name"
if [ "${#survivors[@]}" -gt 0 ]; then
  .venv/bin/mutmut run --max-children "$children" "${survivors[@]}" > mutmut-second-pass.log 2>&1 || true
fi
.venv/bin/python scripts/mutation_report.py --json mutation.json
echo "survivors with their changes: $work/mutation.json"
