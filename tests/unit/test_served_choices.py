"""What a served or deployed run may choose (nothing that names a file), and the files a root run
trusts (as sshd's StrictModes): pure rules and the loader, on real files and real owners."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml

from flows.cli import EXIT_USAGE, main
from flows.local_server import ServerError, choose_port, port_is_free
from flows.served import metrics_path, run_host
from stackwarden.errors import ProfileError
from stackwarden.profiles import ProfileChoiceError, choose_profile, load_profile, read_profile, untrusted_path
from tests.support.realparts import free_ports, require

NOBODY = 65534


@pytest.fixture
def as_root() -> None:
    """Strict modes apply to root runs: skipped elsewhere, a failure under CI=true (CI runs as root)."""
    require(os.geteuid() == 0, "strict modes apply to root runs: run the tests as root")


def _profile(directory: Path, name: str) -> Path:
    path = directory / f"{name}.yaml"
    compose = directory / "compose.yaml"
    compose.write_text("services: {}\n")
    data = {"name": name, "compose": {"project": name, "files": [str(compose)]}, "services": {"web": {"ports": [8080]}}}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    shop, billing = _profile(tmp_path, "shop"), _profile(tmp_path, "billing")
    monkeypatch.setenv("STACKWARDEN_PROFILES", f"{shop}{os.pathsep}{billing}")
    return shop, billing


def test_a_deployment_run_names_a_served_profile_and_never_a_path(served: tuple[Path, Path], tmp_path: Path) -> None:
    shop, billing = served
    assert choose_profile("billing", None, deployment_run=True) == billing
    with pytest.raises(ProfileChoiceError, match=r"profile_path=.* refused.*one of: shop, billing"):
        choose_profile(None, str(shop), deployment_run=True)
    with pytest.raises(ProfileChoiceError, match="'other' is not served here; served: shop, billing"):
        choose_profile("other", None, deployment_run=True)
    with pytest.raises(ProfileChoiceError, match="2 profiles are served here"):
        choose_profile(None, None, deployment_run=True)


def test_where_a_served_set_is_configured_no_run_takes_a_path(served: tuple[Path, Path]) -> None:
    with pytest.raises(ProfileChoiceError):
        choose_profile(None, str(served[0]), deployment_run=False)


def test_a_terminal_run_takes_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACKWARDEN_PROFILES", raising=False)
    path = _profile(tmp_path, "mine")
    assert choose_profile(None, str(path), deployment_run=False) == path
    monkeypatch.setenv("STACKWARDEN_PROFILE", str(path))
    # a worker with one profile: its runs take it without naming it, by its name, never by path
    assert choose_profile(None, None, deployment_run=True) == path
    assert choose_profile("mine", None, deployment_run=True) == path
    with pytest.raises(ProfileChoiceError):
        choose_profile(None, str(path), deployment_run=True)


def test_metrics_and_host_are_fixed_for_deployment_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = load_profile(_profile(tmp_path, "shop"))
    monkeypatch.delenv("STACKWARDEN_PROFILES", raising=False)
    monkeypatch.setenv("STACKWARDEN_PROMETHEUS_DIR", str(tmp_path))
    monkeypatch.setenv("STACKWARDEN_HOST", "web-1")
    with pytest.raises(ProfileChoiceError, match="prometheus_path='/etc/shadow' refused"):
        metrics_path(profile, "/etc/shadow", deployment_run=True)
    assert metrics_path(profile, None, deployment_run=True) == str(tmp_path / "stackwarden-shop.prom")
    assert metrics_path(profile, str(tmp_path / "x.prom"), deployment_run=False) == str(tmp_path / "x.prom")
    assert metrics_path(profile, None, deployment_run=False) is None  # the CLI writes only with --prometheus
    assert run_host(None, deployment_run=True) == run_host("web-1", deployment_run=True) == "web-1"
    with pytest.raises(ProfileChoiceError, match="host='db-1' refused"):
        run_host("db-1", deployment_run=True)
    assert run_host("bench-host-0001", deployment_run=False) == "bench-host-0001"


@pytest.mark.usefixtures("as_root")
def test_root_refuses_a_profile_others_may_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _profile(tmp_path, "shop")
    assert untrusted_path(path) is None and read_profile(path).sha256
    path.chmod(0o664)
    assert main(["profile", "validate", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "writable by group (mode 0664, owner root)" in err
    path.chmod(0o644)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(ProfileError, match="owned by nobody, not root"):
        load_profile(path)
    os.chown(path, 0, 0)
    # the files it names: a kubeconfig anyone may write, a compose file in a directory others may write
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    kubeconfig.chmod(0o646)
    data = yaml.safe_load(path.read_text())
    data["kubernetes"] = {"namespace": "shop", "kubeconfig": str(kubeconfig)}
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    data["compose"]["files"] = [str(shared / "compose.yaml")]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError) as refused:
        load_profile(path)
    fields = dict(refused.value.problems)
    assert "writable by others (mode 0646" in fields["kubernetes.kubeconfig"]
    assert f"its directory {shared} is writable by group and others (mode 0777" in fields["compose.files"]


@pytest.mark.usefixtures("as_root")
def test_a_link_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    target = _profile(tmp_path, "shop")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    os.lchown(link, NOBODY, NOBODY)
    assert "link" in (untrusted_path(link) or "") and "nobody" in (untrusted_path(link) or "")


def test_two_merge_keys_in_one_mapping_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "base: &b {stateful: true}\nother: &o {stateful: false}\n"
        "name: shop\ncompose: {project: shop}\n"
        "services:\n  db:\n    <<: *b\n    <<: *o\n    ports: [5432]\n"
    )
    with pytest.raises(ProfileError, match=r"duplicate merge key '<<' \(first at line 7\)"):
        load_profile(path)


def test_a_busy_default_port_is_an_error_not_another_port(monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = free_ports(1)
    monkeypatch.setattr("flows.local_server.DEFAULT_PORT", port)
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        with pytest.raises(ServerError, match=f"the default port {port}: 127.0.0.1:{port} is already in use"):
            choose_port("127.0.0.1", None)
        with pytest.raises(ServerError, match=f"--port {port}"):
            choose_port("127.0.0.1", port)
    assert choose_port("127.0.0.1", None) == port


def test_a_port_in_time_wait_is_free_for_a_restart() -> None:
    """The server side closed its connection first (as a stopping server does): TIME_WAIT."""
    (port,) = free_ports(1)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: its side lingers in TIME_WAIT
    server.close()
    client.close()
    assert port_is_free("127.0.0.1", port)


@pytest.mark.usefixtures("as_root")
def test_root_runs_no_exec_plugin_another_user_may_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A root-owned kubeconfig whose ``exec`` credential plugin is a file ``nobody`` may replace:
    every audit (no approval needed) would run it as root. Refused like the kubeconfig itself,
    and the plugin is never run; so is a bare command found along a PATH others may write to."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    ran = theirs / "ran"
    plugin = theirs / "get-token"
    plugin.write_text(f"#!/bin/sh\nid -u > {ran}\necho '{{}}'\n")
    plugin.chmod(0o755)
    os.chown(plugin, NOBODY, NOBODY)
    path = _profile(tmp_path, "shop")
    kubeconfig = tmp_path / "kubeconfig"
    user: dict[str, object] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(plugin)}}
    doc = {
        "apiVersion": "v1",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "shop", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "shop",
    }
    kubeconfig.write_text(yaml.safe_dump(doc))
    kubeconfig.chmod(0o600)
    data = yaml.safe_load(path.read_text())
    data["kubernetes"] = {"namespace": "shop", "kubeconfig": str(kubeconfig), "allowed_contexts": ["shop"]}
    path.write_text(yaml.safe_dump(data))
    assert main(["audit", "--no-record", "--profile", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{plugin} (run by {kubeconfig}: users[0].user.exec.command)" in err
    assert "owned by nobody" in err
    assert not ran.exists(), "root ran nobody's plugin"
    # a bare name is looked up along the plugin's PATH: a directory nobody owns comes first
    user["exec"] = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "sh",
        "env": [{"name": "PATH", "value": f"{theirs}:/usr/bin:/bin"}],
    }
    kubeconfig.write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError, match=rf"{theirs}/sh \(run by .*its directory {theirs} is owned by nobody"):
        load_profile(path)
    user["exec"] = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "sh"}
    kubeconfig.write_text(yaml.safe_dump(doc))
    assert load_profile(path).kubernetes is not None  # root's own sh along root's PATH


@pytest.mark.usefixtures("as_root")
def test_root_reads_no_compose_file_another_user_may_change_through_a_trusted_one(tmp_path: Path) -> None:
    """A root-owned compose file that pulls in files another user may change: an ``include`` and
    an ``extends.file`` (nobody's service definitions: privileged, the host's / mounted), an
    ``env_file``, and a ``.env`` anyone may write (it picks the image). Compose reads them all
    for root's ``compose up``: each is refused, naming the file that pulls it in."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    evil = theirs / "more.yaml"
    evil.write_text(yaml.safe_dump({"services": {"evil": {"image": "x", "privileged": True, "volumes": ["/:/host"]}}}))
    os.chown(evil, NOBODY, NOBODY)
    path = _profile(tmp_path, "shop")
    compose = tmp_path / "compose.yaml"
    dotenv = tmp_path / ".env"
    dotenv.write_text("IMAGE=busybox\n")
    dotenv.chmod(0o666)
    compose.write_text(
        "include:\n  - path: [theirs/more.yaml]\n"
        "services:\n  web:\n    image: ${IMAGE}\n    env_file: [{path: theirs/web.env, required: false}]\n"
        "    extends: {file: theirs/more.yaml, service: evil}\n    ports: !override ['8080:80']\n"
    )
    with pytest.raises(ProfileError) as refused:
        load_profile(path)
    lines = [reason for field, reason in refused.value.problems if field == "compose.files"]
    assert any(line.startswith(f"{dotenv} (the project's .env) is writable by group and others") for line in lines)
    assert any(line.startswith(f"{evil} (include of {compose}) is owned by nobody") for line in lines)
    assert any(line.startswith(f"{evil} (extends.file of {compose}) is owned by nobody") for line in lines)
    assert any(line.startswith(f"{theirs}/web.env (env_file of {compose}) is its directory {theirs}") for line in lines)
    dotenv.chmod(0o644)
    compose.write_text("services:\n  web:\n    image: ${IMAGE}\n")
    assert load_profile(path).compose.project == "shop"  # root's own files only


@pytest.mark.usefixtures("as_root")
def test_root_starts_no_program_another_user_may_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A host service's ``start_command`` is what a rollback or a repair runs (as root, for a
    root process): a program or a script argument ``nobody`` may replace is refused when the
    profile is loaded, like the files it names; root's own program is accepted."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    script = theirs / "start-web.sh"
    script.write_text("#!/bin/sh\nexec sleep 1000\n")
    script.chmod(0o755)
    os.chown(script, NOBODY, NOBODY)
    path = _profile(tmp_path, "shop")
    data = yaml.safe_load(path.read_text())

    def with_start(command: list[str]) -> None:
        data["services"]["web"]["host"] = {"executables": ["web"], "start_command": command}
        path.write_text(yaml.safe_dump(data))

    with_start([str(script)])
    with pytest.raises(
        ProfileError, match=rf"services.web.host.start_command.*{script} \(the program\) is owned by nobody"
    ):
        load_profile(path)
    with_start(["/bin/sh", str(script)])
    with pytest.raises(ProfileError, match=rf"{script} \(argument 1\) is owned by nobody"):
        load_profile(path)
    with_start(["start-web.sh"])  # a bare name: found along a PATH whose first directory nobody owns
    monkeypatch.setenv("PATH", f"{theirs}:/usr/bin:/bin")
    with pytest.raises(ProfileError, match=rf"{script} \(the program\) is owned by nobody"):
        load_profile(path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with_start(["/bin/sh", "-c", "exec sleep 1000"])
    assert load_profile(path).services["web"].host is not None
