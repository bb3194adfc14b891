"""Prefect tasks: thin, one per step; the logic lives in ``stackwarden``."""
