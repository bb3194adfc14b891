"""Shared model configuration, and the enumerations every layer speaks (defined in
``stackwarden.basics``, which loads without pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from stackwarden.basics import CrashCategory, Mode, Runtime, Severity

__all__ = ["CrashCategory", "Frozen", "Mode", "Runtime", "Severity"]


class Frozen(BaseModel):
    """Base for domain models: immutable, and unknown fields are an error, not a silent drop.

    Frozen models can be shared between concurrently running tasks and hashed into stable ids;
    ``extra="forbid"`` turns a typo in a profile into an error that names the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
