"""The machine-readable audit: findings, recommendation and the snapshot that produced them."""

from __future__ import annotations

import json
from typing import Any

from stackwarden.model.finding import AuditResult
from stackwarden.model.snapshot import Snapshot
from stackwarden.sanitize import deep


def audit_document(result: AuditResult, snapshot: Snapshot) -> dict[str, Any]:
    """A plain dict: stable keys that scripts can rely on (``status``, ``worst``, ``findings``).

    Every string in it is sanitized (``sanitize.deep``): no control character, no secret, no
    unbounded value; command lines are redacted argument by argument."""
    document: dict[str, Any] = deep(
        {
            "profile": result.profile,
            "status": "conflicts" if result.at_least_conflict() else "ok",
            "worst": str(result.worst()),
            "recommendation": result.recommendation.model_dump(mode="json"),
            "findings": [f.model_dump(mode="json") for f in result.findings],
            "mode_refusals": {str(mode): list(lines) for mode, lines in result.mode_refusals.items()},
            "snapshot": snapshot.model_dump(mode="json"),
        }
    )
    return document


def render_json(result: AuditResult, snapshot: Snapshot) -> str:
    """``audit_document`` as indented JSON."""
    return json.dumps(audit_document(result, snapshot), indent=2, sort_keys=False)
