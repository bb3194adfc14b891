#!/usr/bin/env bash
# Install stackwarden into .venv (created if missing). With --dev, also the test and lint tools.
# Idempotent. Needs python3 >= 3.11 with venv (Debian: apt-get install python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "install: $py is missing or older than 3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$py" -m venv .venv 2>/dev/null; then
    echo "install: creating the venv failed; installing python3-venv" >&2
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    "$py" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
echo "install: stackwarden $(.venv/bin/python -c 'import stackwarden; print(stackwarden.__version__)') in .venv"
