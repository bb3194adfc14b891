"""Strict profiles: one test per case of the security review (issue 8)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from stackwarden.errors import ProfileError
from stackwarden.model import KubeContext, KubeObservation, Mode
from stackwarden.planner import plan
from stackwarden.profiles import MAX_BYTES, load_profile
from stackwarden.report import render_markdown
from stackwarden.report.json import render_json
from stackwarden.report.plan import render_plan
from stackwarden.rules import diagnose
from tests.support.builders import profile, profile_data, seed_snapshot


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return str(info.value)


def test_duplicate_keys_are_errors_not_last_wins(tmp_path: Path) -> None:
    text = yaml.safe_dump(profile_data()).replace("stateful: true", "stateful: true\n    stateful: false", 1)
    path = _write(tmp_path, text)
    assert yaml.safe_load(text)["services"]["postgres"]["stateful"] is False  # what plain YAML would do
    message = _problems(path)
    assert message.startswith(f"{path}: line ") and "duplicate key 'stateful' (first at line" in message


@pytest.mark.parametrize(
    ("field", "value", "where", "reason"),
    [
        (("services", "postgres", "ports"), [True], "services.postgres.ports[0]", "valid integer"),
        (("services", "postgres", "ports"), ["5432"], "services.postgres.ports[0]", "valid integer"),
        (("services", "postgres", "stateful"), 1, "services.postgres.stateful", "valid boolean"),
        (("services", "postgres", "stateful"), "yes", "services.postgres.stateful", "valid boolean"),
        (("services", "postgres", "description"), 5, "services.postgres.description", "valid string"),
        (("name",), 123, "name", "valid string"),
        (("compose", "files"), [1.5], "compose.files[0]", "valid string"),
        (
            ("services", "redis", "host", "grace_period_seconds"),
            True,
            "services.redis.host.grace_period_seconds",
            "number",
        ),
    ],
)
def test_types_are_strict(tmp_path: Path, field: tuple[str, ...], value: object, where: str, reason: str) -> None:
    data = profile_data()
    node = data
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    message = _problems(_write(tmp_path, json.dumps(data)))
    assert f"{tmp_path / 'p.yaml'}: {where}: " in message and reason in message, message


def test_deep_nesting_is_refused_quickly(tmp_path: Path) -> None:
    for depth in (40, 100_000):
        path = _write(tmp_path, "name: x\nextra: " + "[" * depth + "]" * depth + "\n")
        assert "nested deeper than 32 levels" in _problems(path)


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    assert "YAML aliases" in _problems(_write(tmp_path, "\n".join(lines) + "\n"))


def test_only_regular_files_are_read_and_a_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "profile.fifo"
    os.mkfifo(fifo)
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(_problems(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "loading a FIFO blocked"
    assert "not a regular file (a FIFO)" in result[0]
    assert "not a regular file (a character device)" in _problems(Path("/dev/zero"))
    assert "not a regular file (a directory)" in _problems(tmp_path)


def test_size_is_capped(tmp_path: Path) -> None:
    path = _write(tmp_path, yaml.safe_dump(profile_data()) + "#" * MAX_BYTES + "\n")
    assert f"too large: {path.stat().st_size} bytes, the limit is {MAX_BYTES}" in _problems(path)


def test_relative_paths_resolve_against_the_profile_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = profile_data()
    data["compose"]["files"] = ["compose.yaml"]
    data["kubernetes"]["kubeconfig"] = "kube/config"
    (tmp_path / "profiles").mkdir()
    path = _write(tmp_path / "profiles", json.dumps(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_profile(Path(os.path.relpath(path, elsewhere)))
    assert loaded.kubernetes is not None
    assert loaded.kubernetes.kubeconfig == str(tmp_path / "profiles" / "kube" / "config")
    assert loaded.compose.files == (str(tmp_path / "profiles" / "compose.yaml"),)


@pytest.mark.parametrize("pattern", ["*", "**", "?*", "*?", "[!.]*"])
def test_a_catch_all_context_needs_allow_any_context(tmp_path: Path, pattern: str) -> None:
    data = profile_data()
    data["kubernetes"]["allowed_contexts"] = ["minikube", pattern]
    message = _problems(_write(tmp_path, json.dumps(data)))
    assert "kubernetes: " in message and "matches every context; set allow_any_context: true" in message
    data["kubernetes"]["allow_any_context"] = True
    loaded = load_profile(_write(tmp_path, json.dumps(data)))
    assert loaded.kubernetes is not None and loaded.kubernetes.any_context


def test_a_narrow_pattern_is_not_a_catch_all() -> None:
    data = profile_data()
    data["kubernetes"]["allowed_contexts"] = ["kind-*", "*-dev"]
    spec = profile(kubernetes=data["kubernetes"]).kubernetes
    assert spec is not None and not spec.any_context


def test_allow_any_context_is_warned_about_in_every_report() -> None:
    data = profile_data()
    data["kubernetes"] |= {"allowed_contexts": ["*"], "allow_any_context": True}
    wide = profile(kubernetes=data["kubernetes"])
    snap = seed_snapshot()
    findings = diagnose(snap, wide)
    warning = next(f for f in findings if f.id == "kube-any-context")
    assert "remediation is allowed in every kubeconfig context" in warning.summary
    from stackwarden.model.finding import AuditResult
    from stackwarden.recommend import recommend_mode

    result = AuditResult(
        profile=wide.name,
        snapshot_taken_at=snap.taken_at.isoformat(),
        findings=findings,
        recommendation=recommend_mode(snap, wide, findings, None),
    )
    assert "Any Kubernetes context may be changed" in render_markdown(result, snap, wide)
    assert '"kube-any-context"' in render_json(result, snap)
    assert "WARNING: allow_any_context is on" in render_plan(plan(snap, wide, Mode.COMPOSE_ONLY))
    assert not [f for f in diagnose(snap, profile()) if f.id == "kube-any-context"]


def test_allowed_servers_checks_the_api_url_as_well_as_the_context_name() -> None:
    data = profile_data()
    data["kubernetes"]["allowed_servers"] = ["https://127.0.0.1:*"]
    spec = profile(kubernetes=data["kubernetes"]).kubernetes
    assert spec is not None
    assert spec.allows("minikube", "https://127.0.0.1:8443/")
    assert spec.allows("minikube", "HTTPS://127.0.0.1:8443")
    assert not spec.allows("minikube", "https://prod.example.com:6443")  # a production cluster named minikube
    assert not spec.allows("minikube", None)
    assert not spec.allows("prod", "https://127.0.0.1:8443")


def test_the_planner_refuses_a_context_whose_server_is_not_allowed() -> None:
    data = profile_data()
    data["kubernetes"]["allowed_servers"] = ["https://127.0.0.1:*"]
    pinned = profile(kubernetes=data["kubernetes"])
    snap = seed_snapshot()
    from tests.unit.test_planner_verdict import _kube, _workload

    kube = _kube(_workload("backend", 4), _workload("frontend", 5))
    assert kube.context is not None
    prod = KubeObservation.model_validate(
        kube.model_dump()
        | {"context": KubeContext.model_validate(kube.context.model_dump() | {"server": "https://10.1.2.3:6443"})}
    )
    result = plan(snap.model_copy(update={"kubernetes": prod}), pinned, Mode.COMPOSE_ONLY)
    assert not result.applicable
    assert any("its API server https://10.1.2.3:6443 is not in allowed_servers" in r for r in result.refusals)
    ok = plan(snap.model_copy(update={"kubernetes": kube}), pinned, Mode.COMPOSE_ONLY)
    assert not any("allowed_servers" in r for r in ok.refusals)
