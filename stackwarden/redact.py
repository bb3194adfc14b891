"""Keep secrets out of snapshots, logs and reports.

Command lines and log lines are copied into evidence; a password passed as an argument
(``--requirepass s3cret``, ``PGPASSWORD=...``, ``postgres://user:pw@host``) must never be.
Redaction happens at the adapter boundary so nothing downstream ever holds the secret.
"""

from __future__ import annotations

import re

MASK = "***"
_SECRET_WORDS = r"(?:pass(?:word|wd)?|secret|token|api[-_]?key|access[-_]?key|requirepass|masterauth|auth)"  # noqa: S105 - a pattern, not a password
_FLAG_WITH_VALUE = re.compile(rf"^(--?[\w-]*{_SECRET_WORDS}[\w-]*)(=)(.+)$", re.IGNORECASE)
_BARE_FLAG = re.compile(rf"^--?[\w-]*{_SECRET_WORDS}[\w-]*$", re.IGNORECASE)
_KEY_VALUE = re.compile(
    rf"(\b[\w-]*{_SECRET_WORDS}[\w-]*[\"']?\s*(?:=|:(?!\d))\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)", re.IGNORECASE
)
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)", re.IGNORECASE)
_AUTH_HEADER = re.compile(r"(\b(?:Bearer|Basic|Token)\s+)[\w.~+/=-]+", re.IGNORECASE)
_SHORT_SECRET_FLAGS = frozenset({"-a", "-p", "--pass"})  # redis-cli -a, mysql -p


def redact_text(line: str) -> str:
    """Mask ``key=value`` secrets and URL passwords inside free text such as a log line."""
    line = _URL_CREDENTIALS.sub(rf"\g<1>{MASK}\g<3>", line)
    line = _AUTH_HEADER.sub(rf"\g<1>{MASK}", line)
    return _KEY_VALUE.sub(rf"\g<1>{MASK}", line)


def redact_argv(argv: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Mask secret-looking arguments; a bare secret flag masks the argument after it."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if m := _FLAG_WITH_VALUE.match(arg):
            out.append(f"{m.group(1)}={MASK}")
        elif _BARE_FLAG.match(arg) or (arg in _SHORT_SECRET_FLAGS and out and out[0].endswith("-cli")):
            out.append(arg)
            mask_next = True
        else:
            out.append(redact_text(arg))
    return tuple(out)
