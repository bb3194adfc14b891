"""Prefect flows (audit; switch-mode and verify follow) and the ``stackwarden`` CLI.

Importing the package installs the log sanitizer (see ``stackwarden.sanitize``).
"""

from stackwarden.sanitize import install_log_sanitizer

install_log_sanitizer()
