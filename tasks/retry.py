"""The Prefect retry layer: observe/read tasks retry on TransientError alone (docs/architecture.md, "Retries")."""

from __future__ import annotations

from typing import Any

from stackwarden.errors import TransientError


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only what the adapters marked transient."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False
