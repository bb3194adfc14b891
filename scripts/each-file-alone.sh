#!/usr/bin/env bash
# Runs every test file of the given directories (default: tests/) alone, one pytest process per
# file, in a shuffled order of its tests: a file that passes only after another file has run
# (a fixture, an import or state it leaves behind) fails here. A command of its own, not part of
# the suite: files of real parts start their engines and servers once per file. Prints one line
# per file and exits non-zero when any file fails.
#   scripts/each-file-alone.sh tests/unit
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || set -- tests
failed=()
total=0
while IFS= read -r file; do
  total=$((total + 1))
  started=$(date +%s)
  if .venv/bin/python -m pytest -q -p no:cacheprovider -p randomly "$file" > /tmp/each-file-alone.log 2>&1; then
    echo "ok    $(( $(date +%s) - started ))s  $file"
  else
    echo "FAIL  $(( $(date +%s) - started ))s  $file"
    tail -5 /tmp/each-file-alone.log | sed 's/^/      /'
    failed+=("$file")
  fi
done < <(find "$@" -name 'test_*.py' | sort)
echo "${total} files, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]
