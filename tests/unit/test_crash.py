"""The crash classifier on log signatures and exit codes, without an engine."""

from __future__ import annotations

import pytest

from stackwarden.crash import classify_crash, ports_in_line
from stackwarden.model import CrashCategory
from tests.support.builders import PANIC


def test_spawn_local_panic_is_a_code_issue_with_the_panic_line_as_evidence() -> None:
    cause = classify_crash(101, ["Starting", PANIC, "note: run with RUST_BACKTRACE=1"])
    assert cause.category is CrashCategory.CODE_ISSUE
    assert cause.signature == "rust-panic-spawn-local"
    assert PANIC in cause.evidence
    assert cause.confidence >= 0.95


@pytest.mark.parametrize(
    ("exit_code", "lines", "category", "signature"),
    [
        (
            101,
            ["thread 'main' panicked at 'index out of bounds', src/main.rs:3:5"],
            CrashCategory.CODE_ISSUE,
            "rust-panic",
        ),
        (
            2,
            ["panic: runtime error: invalid memory address", "goroutine 1 [running]:"],
            CrashCategory.CODE_ISSUE,
            "go-panic",
        ),
        (
            1,
            ["Traceback (most recent call last):", '  File "app.py", line 1', "KeyError: 'x'"],
            CrashCategory.CODE_ISSUE,
            "python-traceback",
        ),
        (139, ["Segmentation fault (core dumped)"], CrashCategory.CODE_ISSUE, "segfault"),
        (
            1,
            ["fatal: out of memory allocating 4096 bytes"],
            CrashCategory.RESOURCES,
            "out-of-memory",
        ),
        (
            1,
            ["open /etc/app/config.yaml: no such file or directory"],
            CrashCategory.CONFIGURATION,
            "configuration",
        ),
        (137, [], CrashCategory.RESOURCES, "exit-137"),
        (139, [], CrashCategory.CODE_ISSUE, "exit-139"),
        (127, ["sh: app: not found"], CrashCategory.CONFIGURATION, "exit-127"),
        (3, ["something odd happened"], CrashCategory.UNKNOWN, "unknown"),
    ],
)
def test_signatures_and_exit_codes(exit_code: int, lines: list[str], category: CrashCategory, signature: str) -> None:
    cause = classify_crash(exit_code, lines)
    assert (cause.category, cause.signature) == (category, signature)
    assert 0 < cause.confidence <= 1


def test_oom_flag_wins_over_logs() -> None:
    cause = classify_crash(137, [PANIC], oom_killed=True)
    assert cause.category is CrashCategory.RESOURCES
    assert cause.signature == "oom-killed"


def test_address_in_use_is_a_deployment_conflict_naming_the_port() -> None:
    cause = classify_crash(1, ["Error: listen tcp 0.0.0.0:2000: bind: address already in use"], [2000])
    assert cause.category is CrashCategory.DEPLOYMENT_CONFLICT
    assert cause.port == 2000


def test_connection_refused_to_a_profile_port_is_a_deployment_conflict() -> None:
    line = "thread 'main' panicked at 'db: Connection refused (os error 111) connecting to 127.0.0.1:5432'"
    cause = classify_crash(101, [line], profile_ports=[5432, 6379])
    assert cause.category is CrashCategory.DEPLOYMENT_CONFLICT
    assert cause.signature == "connection-refused-profile-port"
    assert cause.port == 5432


def test_connection_refused_elsewhere_is_a_dependency_failure_not_a_code_issue() -> None:
    line = "thread 'main' panicked at 'Connection refused connecting to 10.0.0.9:443'"
    cause = classify_crash(101, [line], profile_ports=[5432])
    assert cause.category is CrashCategory.CONFIGURATION  # not a deployment conflict of ours, not a code bug
    assert cause.signature == "dependency-unreachable"
    assert cause.dependency is not None and cause.dependency.kind == "refused"
    assert cause.dependency.target == "10.0.0.9:443"


def test_spawn_local_beats_a_port_mentioned_in_the_same_log() -> None:
    cause = classify_crash(101, ["listening on 127.0.0.1:2000", PANIC], profile_ports=[2000])
    assert cause.signature == "rust-panic-spawn-local"


def test_evidence_is_deduplicated_across_restarts() -> None:
    cause = classify_crash(101, [PANIC, PANIC, PANIC])
    assert cause.evidence.count(PANIC) == 1


def test_ports_in_line_ignores_timestamps_and_source_positions() -> None:
    assert ports_in_line("2025-11-25T12:30:45 connect 127.0.0.1:5432 and [::1]:6379, port 2000") == (5432, 6379, 2000)
    assert ports_in_line("src/services/secret_manager.rs:42:9") == ()
