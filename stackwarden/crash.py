"""Crash classification: exit code + log signatures -> cause, category, confidence.

The category decides what to do (DESIGN.md §4): a Rust panic in ``spawn_local`` is a code
issue that no deployment switch fixes, while "address already in use" or "connection refused"
to a port the profile declares is a deployment conflict that names the port's owner.
Signatures are checked most specific first; the first one found in the logs wins, and the exit
code alone is the fallback with lower confidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stackwarden.model.base import CrashCategory
from stackwarden.model.finding import CrashCause

_PORT_IN_TEXT = re.compile(
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-f:.]*\]|localhost|::1?|\*):(\d{1,5})\b|\bport\s+(\d{1,5})\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Signature:
    """A log pattern, what it means, and how sure a match makes us."""

    name: str
    pattern: re.Pattern[str]
    category: CrashCategory
    explanation: str
    confidence: float
    needs_profile_port: bool = False


_SIGNATURES: tuple[_Signature, ...] = (
    _Signature(
        "rust-panic-spawn-local",
        re.compile(r"spawn_local.*(LocalSet|outside)|LocalSet.*spawn_local", re.IGNORECASE),
        CrashCategory.CODE_ISSUE,
        "Rust panic: `spawn_local` called outside a `tokio::task::LocalSet`; a code bug that "
        "no deployment switch fixes.",
        0.95,
    ),
    _Signature(
        "address-in-use",
        re.compile(
            r"address already in use|EADDRINUSE|port is already allocated|bind.*in use",
            re.IGNORECASE,
        ),
        CrashCategory.DEPLOYMENT_CONFLICT,
        "The process could not bind its port because another owner holds it.",
        0.9,
    ),
    _Signature(
        "connection-refused-profile-port",
        re.compile(r"connection refused|ECONNREFUSED|could not connect to server", re.IGNORECASE),
        CrashCategory.DEPLOYMENT_CONFLICT,
        "A dependency on a profile port refused the connection: it runs in another runtime or not at all.",
        0.8,
        needs_profile_port=True,
    ),
    _Signature(
        "rust-panic",
        re.compile(r"thread '.*' panicked at|panicked at '", re.IGNORECASE),
        CrashCategory.CODE_ISSUE,
        "Rust panic: the program aborted on a bug or an unhandled error.",
        0.85,
    ),
    _Signature(
        "go-panic",
        re.compile(r"^panic: |goroutine \d+ \[running\]", re.IGNORECASE),
        CrashCategory.CODE_ISSUE,
        "Go panic: the program aborted on a bug or an unhandled error.",
        0.85,
    ),
    _Signature(
        "python-traceback",
        re.compile(r"Traceback \(most recent call last\)"),
        CrashCategory.CODE_ISSUE,
        "Python traceback: an unhandled exception ended the process.",
        0.7,
    ),
    _Signature(
        "out-of-memory",
        re.compile(r"out of memory|OOMKilled|Cannot allocate memory|MemoryError", re.IGNORECASE),
        CrashCategory.RESOURCES,
        "The process ran out of memory.",
        0.85,
    ),
    _Signature(
        "segfault",
        re.compile(r"segmentation fault|SIGSEGV", re.IGNORECASE),
        CrashCategory.CODE_ISSUE,
        "Segmentation fault: memory-safety bug in the program or a native library.",
        0.8,
    ),
    _Signature(
        "configuration",
        re.compile(
            r"no such file or directory|permission denied|environment variable .* (not set|missing|required)"
            r"|invalid config|configuration error|missing required|exec format error|executable file not found",
            re.IGNORECASE,
        ),
        CrashCategory.CONFIGURATION,
        "The process could not start with its configuration (missing file, variable or permission).",
        0.7,
    ),
)

_EXIT_CODES: dict[int, tuple[str, CrashCategory, str, float]] = {
    101: (
        "exit-101",
        CrashCategory.CODE_ISSUE,
        "Exit code 101 is how a Rust program ends on a panic.",
        0.6,
    ),
    137: (
        "exit-137",
        CrashCategory.RESOURCES,
        "Exit code 137 (SIGKILL): usually the OOM killer or a memory limit.",
        0.6,
    ),
    139: (
        "exit-139",
        CrashCategory.CODE_ISSUE,
        "Exit code 139 (SIGSEGV): a segmentation fault.",
        0.7,
    ),
    134: (
        "exit-134",
        CrashCategory.CODE_ISSUE,
        "Exit code 134 (SIGABRT): the program aborted itself.",
        0.5,
    ),
    126: (
        "exit-126",
        CrashCategory.CONFIGURATION,
        "Exit code 126: the command is not executable.",
        0.7,
    ),
    127: (
        "exit-127",
        CrashCategory.CONFIGURATION,
        "Exit code 127: the command was not found.",
        0.7,
    ),
    78: (
        "exit-78",
        CrashCategory.CONFIGURATION,
        "Exit code 78 (EX_CONFIG): a configuration error.",
        0.6,
    ),
}


def ports_in_line(line: str) -> tuple[int, ...]:
    """Ports named in a log line (``127.0.0.1:5432``, ``[::1]:6379``, ``port 2000``)."""
    found = (int(m.group(1) or m.group(2)) for m in _PORT_IN_TEXT.finditer(line))
    return tuple(p for p in found if 0 < p < 65536)


def _matching_lines(lines: Sequence[str], pattern: re.Pattern[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if pattern.search(line)]


def _evidence_around(lines: Sequence[str], index: int, before: int = 1, after: int = 2) -> tuple[str, ...]:
    """The matching line with a little context, trimmed: enough to recognise, short to read."""
    lo, hi = max(0, index - before), min(len(lines), index + after + 1)
    return tuple(dict.fromkeys(line.rstrip()[:300] for line in lines[lo:hi] if line.strip()))


def classify_crash(
    exit_code: int | None,
    log_lines: Sequence[str],
    profile_ports: Iterable[int] = (),
    oom_killed: bool = False,
) -> CrashCause:
    """Classify one crash loop.

    ``profile_ports`` turns "connection refused" into a deployment conflict only when the
    refused port is one the profile declares; a refusal to some other port is not ours to fix.
    """
    ports = frozenset(profile_ports)
    if oom_killed:
        return CrashCause(
            category=CrashCategory.RESOURCES,
            signature="oom-killed",
            explanation="The engine reports the container was OOM-killed.",
            confidence=0.95,
            evidence=("State.OOMKilled=true",),
            exit_code=exit_code,
        )
    for sig in _SIGNATURES:
        for index in _matching_lines(log_lines, sig.pattern):
            line_ports = ports_in_line(log_lines[index])
            port = next((p for p in line_ports if p in ports), None)
            if sig.needs_profile_port and port is None:
                continue
            if port is None and line_ports:
                port = line_ports[0] if sig.category is CrashCategory.DEPLOYMENT_CONFLICT else None
            confidence = sig.confidence
            if exit_code is not None and _EXIT_CODES.get(exit_code, ("", sig.category))[1] is sig.category:
                confidence = min(1.0, confidence + 0.04)
            return CrashCause(
                category=sig.category,
                signature=sig.name,
                explanation=sig.explanation,
                confidence=round(confidence, 2),
                evidence=_evidence_around(log_lines, index),
                exit_code=exit_code,
                port=port,
            )
    if exit_code is not None and exit_code in _EXIT_CODES:
        name, category, explanation, confidence = _EXIT_CODES[exit_code]
        return CrashCause(
            category=category,
            signature=name,
            explanation=explanation + " No log line confirms it.",
            confidence=confidence,
            evidence=tuple(line.rstrip()[:300] for line in log_lines[-3:] if line.strip()),
            exit_code=exit_code,
        )
    return CrashCause(
        category=CrashCategory.UNKNOWN,
        signature="unknown",
        explanation="Neither the exit code nor the logs match a known cause; read the logs.",
        confidence=0.2,
        evidence=tuple(line.rstrip()[:300] for line in log_lines[-3:] if line.strip()),
        exit_code=exit_code,
    )
