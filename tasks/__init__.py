"""Prefect tasks: thin, one per step; the logic lives in ``stackwarden``.

Importing the package installs the log sanitizer: every log record of the process (run logs sent
to Prefect included) is stripped of control characters and secrets when it is created.
"""

from stackwarden.sanitize import install_log_sanitizer

install_log_sanitizer()
