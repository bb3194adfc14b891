"""Prefect automations on stackwarden's events, built as Prefect's own models.

Two are documented in docs/automations.md and created by ``create_automations``:

- **critical finding -> compose-only switch**: when an audit opens a critical finding, run the
  compose-only switch deployment of that host and profile. The deployment's parameters say
  ``approval: ui``, so the run only publishes its plan and waits for a person: an automation
  never changes a host on its own.
- **finding event -> webhook**: every ``stackwarden.finding.opened``/``.resolved`` is posted to a
  webhook (chat, paging, a ticket system) with its host, profile, rule, severity and summary.

Triggers match resource labels, not payloads (that is how Prefect's triggers work), which is
why finding events carry ``stackwarden.severity``, ``stackwarden.rule``, ``stackwarden.host``
and ``stackwarden.profile`` as labels of their resource.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from prefect.automations import AutomationCore, EventTrigger, Posture, ResourceSpecification
from prefect.client.orchestration import get_client
from prefect.events.actions import CallWebhook, RunDeployment

FINDING_EVENTS = ("stackwarden.finding.opened", "stackwarden.finding.resolved")

# The webhook body: one JSON object per event. ``tojson`` quotes and escapes every value.
WEBHOOK_PAYLOAD = (
    "{"
    '"event": {{ event.event | tojson }}, '
    '"occurred": {{ event.occurred | string | tojson }}, '
    '"finding": {{ event.resource.id | tojson }}, '
    "\"host\": {{ event.resource.get('stackwarden.host', '') | tojson }}, "
    "\"profile\": {{ event.resource.get('stackwarden.profile', '') | tojson }}, "
    "\"rule\": {{ event.resource.get('stackwarden.rule', '') | tojson }}, "
    "\"severity\": {{ event.resource.get('stackwarden.severity', '') | tojson }}, "
    "\"summary\": {{ event.payload.get('summary', '') | tojson }}"
    "}"
)


def _scope(host: str | None, profile: str | None) -> dict[str, str]:
    """Labels that narrow a trigger to one host and/or profile (a fleet shares one server)."""
    labels = {"prefect.resource.id": "stackwarden.finding.*"}
    if host:
        labels["stackwarden.host"] = host
    if profile:
        labels["stackwarden.profile"] = profile
    return labels


def critical_finding_switch(
    deployment_id: UUID, *, host: str | None = None, profile: str | None = None
) -> AutomationCore:
    """On a critical ``finding.opened``, run the (approval-gated) compose-only switch deployment."""
    where = " on ".join(part for part in (profile, host) if part) or "any host"
    return AutomationCore(
        name=f"stackwarden: critical finding -> compose-only switch ({where})",
        description=(
            "A critical finding opened: start the compose-only switch. The run publishes its plan "
            "and waits for approval in the UI; nothing changes without a person."
        ),
        trigger=EventTrigger(
            expect={"stackwarden.finding.opened"},
            match=ResourceSpecification({**_scope(host, profile), "stackwarden.severity": "critical"}),
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id, parameters=None)],
    )


def finding_webhook(block_document_id: UUID, *, host: str | None = None, profile: str | None = None) -> AutomationCore:
    """On every finding event, call the Webhook block with a JSON summary of the finding."""
    return AutomationCore(
        name="stackwarden: finding events -> webhook" + (f" ({host})" if host else ""),
        description="Posts each stackwarden.finding.opened/resolved, with host, rule, severity and summary.",
        trigger=EventTrigger(
            expect=set(FINDING_EVENTS),
            match=ResourceSpecification(_scope(host, profile)),
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[CallWebhook(block_document_id=block_document_id, payload=WEBHOOK_PAYLOAD)],
    )


async def create_automations(automations: list[AutomationCore]) -> list[UUID]:
    """Create each automation on the server in ``PREFECT_API_URL``, replacing any of the same name
    (running the same setup twice leaves one automation, not two that both fire); returns their ids."""
    async with get_client() as client:
        ids = []
        for automation in automations:
            for existing in await client.read_automations_by_name(automation.name):
                await client.delete_automation(existing.id)
            ids.append(await client.create_automation(automation))
        return ids
