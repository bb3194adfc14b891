"""Prefect flows (audit; switch-mode and verify follow) and the ``stackwarden`` CLI."""
