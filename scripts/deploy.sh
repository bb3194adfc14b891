#!/usr/bin/env bash
# Create (or update) the process work pool and deploy every stackwarden deployment to it, against
# $PREFECT_API_URL. Idempotent: run it again after an upgrade. Then start a worker:
#   prefect worker start --pool stackwarden-local
set -euo pipefail
cd "$(dirname "$0")/.."
prefect="${PREFECT:-.venv/bin/prefect}"
pool=stackwarden-local  # the name deployments/prefect.yaml uses
"$prefect" work-pool create "$pool" --type process --overwrite
"$prefect" --no-prompt deploy --all --prefect-file deployments/prefect.yaml
