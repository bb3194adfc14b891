#!/usr/bin/env bash
# Create (or update) this host's process work pool and deploy every stackwarden deployment to it,
# against $PREFECT_API_URL (with $PREFECT_API_AUTH_STRING). Idempotent: run it again after an
# upgrade. The host is $STACKWARDEN_HOST (default: this machine's name), the pool
# $STACKWARDEN_POOL (default: stackwarden-<host>); deployment names end in @<host>, so hosts that
# share a server never overwrite each other's deployments. Then start the worker:
#   .venv/bin/stackwarden worker
set -euo pipefail
cd "$(dirname "$0")/.."
prefect="${PREFECT:-.venv/bin/prefect}"
export STACKWARDEN_HOST="${STACKWARDEN_HOST:-$(hostname)}"
export STACKWARDEN_POOL="${STACKWARDEN_POOL:-stackwarden-${STACKWARDEN_HOST}}"
"$prefect" work-pool create "$STACKWARDEN_POOL" --type process --overwrite
"$prefect" --no-prompt deploy --all --prefect-file deployments/prefect.yaml
