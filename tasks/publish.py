"""The Prefect ways out of the process, each through ``stackwarden.sanitize``: markdown and table
artifacts, events and Variables. Tasks and flows publish only through these helpers, so nothing observed or
written in a profile reaches the Prefect UI, its database or an automation unescaped or with a
secret in it. (Log records are sanitized when they are created: ``install_log_sanitizer``.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event
from prefect.variables import Variable

from stackwarden import sanitize


def markdown_artifact(markdown: str, key: str, description: str) -> UUID:
    """A markdown artifact; ``markdown`` comes from a renderer that escaped each value it
    inserted, and passes the document gate again here (controls, secrets, line length).
    Returns its id, so other text (the approval form) can link to it."""
    return create_markdown_artifact(  # type: ignore[return-value]  # the sync dispatch returns the id
        markdown=sanitize.document(markdown), key=key, description=sanitize.one_line(description)
    )


def table_artifact(rows: Sequence[Mapping[str, Any]], key: str, description: str) -> None:
    """A table artifact; every cell sanitized (a cell is shown as text, so no markdown escaping)."""
    table = [{str(k): sanitize.deep(v, sanitize.FIELD_MAX) for k, v in row.items()} for row in rows]
    create_table_artifact(table=table, key=key, description=sanitize.one_line(description))


def event(name: str, resource: Mapping[str, str], payload: Mapping[str, Any] | None = None) -> None:
    """Emit a Prefect event whose resource labels and payload are sanitized."""
    emit_event(
        event=name,
        resource={k: sanitize.one_line(v) for k, v in resource.items()},
        payload=sanitize.deep(dict(payload)) if payload is not None else None,
    )


def variable_value(value: Any) -> Any:
    """What a Variable holds: every string sanitized (a finding's summary quotes observed text: a
    health URL's password, escape sequences)."""
    return sanitize.deep(value)


def set_variable(name: str, value: Any) -> None:
    """Write a Prefect Variable through the sanitizer (``variable_value``)."""
    Variable.set(name, variable_value(value), overwrite=True)
