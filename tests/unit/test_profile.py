"""Profiles: the bundled one validates; bad ones fail with file, field path and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stackwarden.errors import ProfileError
from stackwarden.model import Mode
from stackwarden.profiles import bundled_profile_path, load_profile, profile_json_schema
from tests.support.builders import profile_data


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_bundled_profile_models_the_seed_stack() -> None:
    profile = load_profile(bundled_profile_path())
    ports = {name: spec.ports[0] for name, spec in profile.services.items()}
    assert ports["backend"] == 2000 and ports["frontend"] == 1000
    assert ports["postgres"] == 5432 and ports["redis"] == 6379
    assert {"prometheus", "grafana", "elasticsearch", "kibana", "logstash", "apm-server"} <= set(ports)
    assert profile.services["postgres"].stateful and profile.services["redis"].stateful
    assert profile.kubernetes is not None and profile.kubernetes.namespace == "reconciliation-platform"
    assert profile.kubernetes.allows("minikube") and profile.kubernetes.allows("kind-dev")
    assert not profile.kubernetes.allows("prod-cluster")
    assert profile.default_mode is Mode.COMPOSE_ONLY
    assert Path(profile.compose.files[0]).is_absolute()


def test_errors_name_file_field_and_reason(tmp_path: Path) -> None:
    data = profile_data()
    data["services"]["postgres"]["ports"] = [70000]
    data["services"]["redis"]["colour"] = "red"
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    assert f"{path}: services.postgres.ports[0]: Input should be less than or equal to 65535" in text
    assert f"{path}: services.redis.colour: Extra inputs are not permitted" in text
    assert "too_short" not in text and "at least 1 item" not in text


def test_a_port_belongs_to_one_service(tmp_path: Path) -> None:
    data = profile_data()
    data["services"]["redis"]["ports"] = data["services"]["postgres"]["ports"]
    with pytest.raises(ProfileError, match="declared by both 'postgres' and 'redis'"):
        load_profile(_write(tmp_path, data))


def test_unknown_signal_and_paths_in_executables_are_refused(tmp_path: Path) -> None:
    data = profile_data()
    data["services"]["postgres"]["host"] = {
        "executables": ["/usr/bin/postgres"],
        "stop_signal": "SIGNOPE",
    }
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, data))
    assert "services.postgres.host.stop_signal: unknown signal 'SIGNOPE'" in str(info.value)
    assert "services.postgres.host.executables: '/usr/bin/postgres': give the executable's base name" in str(info.value)


def test_hybrid_default_needs_a_runtime_per_service(tmp_path: Path) -> None:
    data = profile_data(default_mode="hybrid-guarded")
    del data["services"]["redis"]["runtime"]
    with pytest.raises(ProfileError, match=r"needs services\.<name>\.runtime for: redis"):
        load_profile(_write(tmp_path, data))


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"default_mode: Input should be 'compose-only'"):
        load_profile(_write(tmp_path, profile_data(default_mode="swarm-only")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed\n", "invalid YAML"),
        ("", "expected a mapping at the top level, got empty"),
        ("- a\n- b\n", "expected a mapping at the top level, got list"),
    ],
)
def test_unparseable_files(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ProfileError, match=expected):
        load_profile(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"nope\.yaml: no such file"):
        load_profile(tmp_path / "nope.yaml")


def test_schema_is_json_schema_of_the_profile() -> None:
    schema = json.loads(profile_json_schema())
    assert schema["title"] == "stackwarden profile"
    assert {"name", "compose", "services"} <= set(schema["required"])
    assert "ServiceSpec" in schema["$defs"]


@pytest.mark.parametrize("bad", ["SIGKILL", "SIGSEGV", "SIGABRT"])
def test_a_stateful_service_must_be_asked_to_exit_cleanly(tmp_path: Path, bad: str) -> None:
    data = profile_data()
    data["services"]["postgres"]["host"]["stop_signal"] = bad
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, data))
    assert "services.postgres" in str(info.value)
    assert f"{bad} does not ask a stateful service for a clean exit" in str(info.value)


def test_a_signal_that_never_ends_a_process_is_refused_for_any_service(tmp_path: Path) -> None:
    data = profile_data()
    data["services"]["backend"]["host"]["stop_signal"] = "SIGSTOP"
    with pytest.raises(ProfileError, match=r"services\.backend\.host\.stop_signal: .*SIGSTOP does not end a process"):
        load_profile(_write(tmp_path, data))


def test_a_stateless_service_may_be_killed_outright(tmp_path: Path) -> None:
    data = profile_data()
    data["services"]["backend"]["host"]["stop_signal"] = "SIGKILL"
    assert load_profile(_write(tmp_path, data)).services["backend"].host is not None


def test_no_home_policy_and_timeouts(tmp_path: Path) -> None:
    data = profile_data(timeouts={"connect_seconds": 1, "read_seconds": 2})
    data["services"]["redis"]["no_home"] = "leave"
    profile = load_profile(_write(tmp_path, data))
    assert profile.timeouts.connect_seconds == 1 and profile.timeouts.read_seconds == 2
    assert str(profile.services["redis"].no_home) == "leave"
    assert str(profile.services["postgres"].no_home) == "refuse"  # the default changes nothing silently
    data["services"]["redis"]["no_home"] = "ignore"
    with pytest.raises(ProfileError, match=r"services\.redis\.no_home: Input should be 'stop', 'leave' or 'refuse'"):
        load_profile(_write(tmp_path, data))


def test_default_timeouts_are_at_most_five_seconds() -> None:
    profile = load_profile(bundled_profile_path())
    assert profile.timeouts.connect_seconds <= 5 and profile.timeouts.read_seconds <= 5
    monitoring = [n for n, s in profile.services.items() if s.group == "monitoring"]
    assert monitoring and all(str(profile.services[n].no_home) == "leave" for n in monitoring)
