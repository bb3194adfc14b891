"""Property-based: every invalid profile and every invalid CLI value ends with exit 2 and one line
on stderr naming the file (or option), the field and the reason; never a traceback, never a hang,
and nothing is observed first."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flows.cli import main
from stackwarden.sanitize import redact
from tests.support.builders import profile_data
from tests.support.realparts import REPO

# (path into profile_data(), the kind of value the field takes)
FIELDS: list[tuple[tuple[str | int, ...], str]] = [
    (("name",), "name"),
    (("description",), "str"),
    (("default_mode",), "enum"),
    (("compose", "project"), "name"),
    (("compose", "files"), "list"),
    (("compose", "files", 0), "str"),
    (("kubernetes", "namespace"), "name"),
    (("kubernetes", "allowed_contexts"), "list"),
    (("kubernetes", "allow_any_context"), "bool"),
    (("services", "postgres", "ports"), "list"),
    (("services", "postgres", "ports", 0), "port"),
    (("services", "postgres", "stateful"), "bool"),
    (("services", "postgres", "group"), "str"),
    (("services", "postgres", "host", "executables"), "list"),
    (("services", "postgres", "host", "executables", 0), "str"),
    (("services", "postgres", "host", "stop_signal"), "str"),
    (("services", "redis", "runtime"), "enum"),
    (("services", "backend", "kubernetes", "replicas"), "int"),
    (("services", "backend", "kubernetes", "name"), "name"),
]
WRONG: dict[str, list[Any]] = {
    "port": [True, False, "5432", 1.5, [], {}, None, 0, 70000, -1],
    "int": [True, "4", 2.5, [], {}, None, -1, 100_000],
    "bool": [1, 0, "yes", "true", 1.0, [], {}, None],
    "str": [5, 1.5, True, [], {}, None],
    "name": [5, True, "Has Spaces", "UPPER", "", "x" * 64, [], None],
    "enum": ["bogus", 5, True, [], 1.5],
    "list": ["x", 5, True, {}, None],
}


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _field(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()], captured.out


def _assert_one_line(code: int, lines: list[str]) -> str:
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), data=st.data())
def test_every_wrong_value_is_one_line_naming_file_field_and_reason(
    field: tuple[tuple[str | int, ...], str], data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    path, kind = field
    value = data.draw(st.sampled_from(WRONG[kind]), label="value")
    profile = profile_data()
    _set(profile, path, value)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "bad profile.yaml"
        file.write_text(yaml.safe_dump(profile), encoding="utf-8")
        code, lines, out = _run(["profile", "validate", str(file)], capsys)
        line = _assert_one_line(code, lines)
        assert line.startswith(f"stackwarden: invalid profile: {file}: "), line
        named = _field(path)
        # the field itself, or its container when the problem is the container's (a list's length)
        assert named in line or _field(path[:-1]) in line, (named, line)
        assert line.rstrip().split(": ")[-1], line  # a reason after the field
        assert out == ""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    section=st.sampled_from([(), ("services",), ("services", "postgres"), ("compose",), ("kubernetes",)]),
    key=st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True),
)
@example(section=(), key="pwd")  # hypothesis found it: a key named like a secret
def test_unknown_keys_anywhere_are_named(
    section: tuple[str, ...], key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = profile_data()
    node: Any = profile
    for part in section:
        node = node[part]
    if key in node:
        return
    node[key] = {"ports": [1]} if section == ("services",) else "x"
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "p.yaml"
        file.write_text(yaml.safe_dump(profile), encoding="utf-8")
        code, lines, _ = _run(["profile", "validate", str(file)], capsys)
    if section == ("services",):  # a new service is valid when it says nothing wrong
        assert code in (0, 2)
        return
    line = _assert_one_line(code, lines)
    expected = f"{_field((*section, key))}: Extra inputs are not permitted"
    # a key named like a secret (pwd, token) makes the next word look like its value: the one-line
    # error goes through the same sanitizer as everything else, and still names the key
    assert expected in line or redact(expected) in line, line


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["name", "default_mode", "compose"]), depth=st.integers(min_value=33, max_value=3000))
def test_duplicates_and_deep_nesting_are_one_line(key: str, depth: int, capsys: pytest.CaptureFixture[str]) -> None:
    text = yaml.safe_dump(profile_data())
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "p.yaml"
        file.write_text(text + f"{key}: again\n", encoding="utf-8")
        line = _assert_one_line(*_run(["profile", "validate", str(file)], capsys)[:2])
        assert f"{file}: line " in line and f"duplicate key '{key}'" in line
        file.write_text(text + "description: " + "[" * depth + "]" * depth + "\n")
        line = _assert_one_line(*_run(["profile", "validate", str(file)], capsys)[:2])
        assert f"{file}: " in line and "nested deeper than 32 levels" in line


BAD_SECONDS = st.one_of(
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1", "-0.5", "", "ten", "0x10", "1e6", "86401"]
    ),
    st.floats(allow_nan=True, allow_infinity=True)
    .filter(lambda f: not math.isfinite(f) or f < 0 or f > 86400)
    .map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12).filter(lambda s: not _is_number(s)),
)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(["--deadline", "--wait-lock"]), value=BAD_SECONDS)
def test_durations_must_be_finite_and_bounded(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    if option == "--wait-lock" and _is_number(value) and float(value) == 0:
        return  # zero is a valid --wait-lock
    code, lines, out = _run(["switch", "compose-only", f"{option}={value}"], capsys)
    line = _assert_one_line(code, lines)
    assert f"argument {option}:" in line and "seconds" in line, line
    assert "\x1b" not in line and out == ""


def test_deadline_zero_and_wait_lock_nan_and_deadline_nan(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--deadline", "0"], ["--deadline", "nan"], ["--wait-lock", "nan"], ["--deadline", "inf"]):
        line = _assert_one_line(*_run(["switch", "compose-only", *argv], capsys)[:2])
        assert argv[0] in line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    argv=st.one_of(
        st.tuples(
            st.just("switch"),
            st.text(min_size=1, max_size=20).filter(
                lambda m: m not in {"compose-only", "k8s-only", "hybrid-guarded"} and not m.startswith("-")
            ),
        ).map(list),
        st.tuples(
            st.just("audit"),
            st.just("--fail-on"),
            st.text(max_size=10).filter(lambda s: s not in {"critical", "high", "medium", "low"}),
        ).map(list),
        st.tuples(
            st.sampled_from(["audit", "switch", "profile"]),
            st.from_regex(r"--[a-z]{3,12}", fullmatch=True).filter(
                lambda o: (
                    o
                    not in {
                        "--profile",
                        "--json",
                        "--output",
                        "--fail-on",
                        "--apply",
                        "--yes",
                        "--force",
                        "--help",
                        "--wait-lock",
                        "--deadline",
                        "--fresh",
                        "--record",
                    }
                )
            ),
        ).map(list),
    )
)
def test_bad_arguments_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    if argv[0] == "switch" and len(argv) == 2 and not argv[1].startswith("--"):
        argv = [*argv]
    code, lines, out = _run(argv, capsys)
    line = _assert_one_line(code, lines)
    assert line.startswith("stackwarden") and "error:" in line and out == ""


def test_bad_output_is_refused_before_anything_is_observed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "ok.yaml"
    good.write_text(json.dumps(profile_data()))
    (tmp_path / "a-file").write_text("x")
    cases = {
        str(tmp_path / "missing" / "r.md"): "does not exist",
        str(tmp_path): "is a directory",
        str(tmp_path / "a-file" / "r.md"): "is not a directory",
    }
    for output, reason in cases.items():
        line = _assert_one_line(*_run(["audit", "--profile", str(good), "--output", output], capsys)[:2])
        assert line.startswith(f"stackwarden: --output {output}: ") and reason in line, line
    # in a process of its own (in this one, other tests have imported everything): no flow, no
    # observation and no Prefect was even imported before the refusal
    probe = (
        "import sys\n"
        "from flows.cli import main\n"
        f"code = main(['audit', '--profile', {str(good)!r}, '--output', {str(tmp_path)!r}])\n"
        "print(code, sorted(m for m in ('flows.audit', 'stackwarden.pipeline', 'prefect') if m in sys.modules))\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=REPO)
    assert ran.stdout.split() == ["2", "[]"], (ran.stdout, ran.stderr[-2000:])


def test_the_profile_cases_as_the_cli_reports_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """FIFO, /dev/zero, too big, ports: [true], a duplicate: each one line, exit 2."""
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_text("#" * (1024 * 1024 + 1))
    bad_port = copy.deepcopy(profile_data())
    bad_port["services"]["postgres"]["ports"] = [True]
    ports = tmp_path / "ports.yaml"
    ports.write_text(yaml.safe_dump(bad_port))
    for file, reason in (
        (fifo, "not a regular file (a FIFO)"),
        (Path("/dev/zero"), "not a regular file (a character device)"),
        (big, "too large"),
        (ports, "services.postgres.ports[0]: Input should be a valid integer"),
    ):
        line = _assert_one_line(*_run(["profile", "validate", str(file)], capsys)[:2])
        assert line.startswith(f"stackwarden: invalid profile: {file}: ") and reason in line, line


def test_validate_warns_about_a_catch_all_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = profile_data()
    data["kubernetes"] |= {"allowed_contexts": ["*"], "allow_any_context": True}
    file = tmp_path / "wide.yaml"
    file.write_text(json.dumps(data))
    code, lines, out = _run(["profile", "validate", str(file)], capsys)
    assert code == 0 and "valid profile" in out
    assert lines == [
        "stackwarden: warning: allow_any_context is on: remediation is allowed in every kubeconfig "
        "context (allowed_contexts: *); no allowed_servers pin the cluster either"
    ]
