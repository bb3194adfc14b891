"""Switch locks with real processes and real flocks: planted symlinks, a corrupt lock left by a
run killed with SIGKILL, two profiles that share a port, and where locks live."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwarden.adapters.lock import _file_name, lock_dir, lock_resources, switch_lock
from stackwarden.errors import LockedError
from stackwarden.model import Profile
from tests.support.builders import profile, profile_data
from tests.support.realparts import free_ports, require

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "locks"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("STACKWARDEN_LOCK_DIR", str(directory))
    return directory


def _holder_process(
    keys: list[str], holder: str, profile_name: str, junk: bytes | None = None
) -> subprocess.Popen[str]:
    """Another run holding ``keys`` (optionally scribbling junk into its lock files, as a run
    killed mid-write would leave them), until it is killed."""
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from stackwarden.adapters.lock import switch_lock, lock_dir, _file_name
        with switch_lock({keys!r}, {holder!r}, profile={profile_name!r}):
            junk = {junk!r}
            if junk is not None:
                for key in {keys!r}:
                    with open(lock_dir() / _file_name(key), "r+b") as f:
                        f.truncate(0); f.write(junk)
            print("held", flush=True)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO, env=dict(os.environ)
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_a_planted_symlink_is_refused_and_its_target_untouched(locks: Path, tmp_path: Path) -> None:
    target = tmp_path / "precious.conf"
    target.write_text("keep me\n")
    target.chmod(0o644)
    (locks / _file_name("port:5432")).symlink_to(target)
    with pytest.raises(LockedError, match="is a symlink; refusing to follow it"), switch_lock(["port:5432"], "me"):
        pytest.fail("the lock was taken through a symlink")
    assert target.read_text() == "keep me\n"
    assert target.stat().st_mode & 0o777 == 0o644


def test_a_symlinked_or_shared_lock_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setenv("STACKWARDEN_LOCK_DIR", str(link))
    with pytest.raises(LockedError, match="not a directory"):
        lock_dir()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("STACKWARDEN_LOCK_DIR", str(shared))
    with pytest.raises(LockedError, match="writable by other users"):
        lock_dir()
    os.chown(real, 65534, 65534)
    monkeypatch.setenv("STACKWARDEN_LOCK_DIR", str(real))
    with pytest.raises(LockedError, match="belongs to uid 65534"):
        lock_dir()


def test_lock_files_are_private(locks: Path) -> None:
    with switch_lock(["port:1"], "me", profile="p"):
        path = locks / _file_name("port:1")
        assert path.stat().st_mode & 0o777 == 0o600
        assert json.loads(path.read_text())["holder"] == "me"


def test_a_corrupt_lock_after_kill_9_is_recovered(locks: Path, reaper: list[subprocess.Popen[str]]) -> None:
    keys = ["port:6379", "profile:victim"]
    first = _holder_process(keys, "flow run killed-one", "victim", junk=b'{"holder": "half-wri\x00\xff')
    reaper.append(first)
    with pytest.raises(LockedError) as info, switch_lock(keys, "second", profile="victim"):
        pytest.fail("taken while the first run still holds it")
    assert "an unknown holder (its lock content is unreadable)" in str(info.value)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    with switch_lock(keys, "flow run second", profile="victim"):
        for key in keys:
            info_doc = json.loads((locks / _file_name(key)).read_text())
            assert info_doc["holder"] == "flow run second" and info_doc["pid"] == os.getpid()


def test_two_profiles_sharing_a_port_cannot_switch_at_once(locks: Path, reaper: list[subprocess.Popen[str]]) -> None:
    shared, only_a, only_b, other = free_ports(4)
    data_a = profile_data(name="stack-a")
    data_a["compose"]["project"] = "stack-a"
    data_a["services"] = {"api": {"ports": [only_a, shared]}}
    data_b = profile_data(name="stack-b")
    data_b["compose"]["project"] = "stack-b"
    data_b["services"] = {"web": {"ports": [shared, only_b]}}
    data_c = profile_data(name="stack-c")
    data_c["compose"]["project"] = "stack-c"
    data_c["services"] = {"db": {"ports": [other]}}
    a, b, c = (profile(**{k: v for k, v in d.items() if k != "kubernetes"}) for d in (data_a, data_b, data_c))
    assert f"port:{shared}" in set(lock_resources(a)) & set(lock_resources(b))

    holder = _holder_process(lock_resources(a), "flow run switch-a", "stack-a")
    reaper.append(holder)
    with pytest.raises(LockedError) as info, switch_lock(lock_resources(b), "flow run switch-b", profile="stack-b"):
        pytest.fail("two overlapping profiles switched at once")
    message = str(info.value)
    assert f"holds port {shared}" in message and "flow run switch-a" in message and "'stack-a'" in message
    with switch_lock(lock_resources(c), "flow run switch-c", profile="stack-c"):
        pass  # a profile sharing nothing is not held up
    holder.kill()
    holder.wait(timeout=10)
    with switch_lock(lock_resources(b), "flow run switch-b", wait_seconds=5, profile="stack-b"):
        pass


def _portless(name: str, executables: list[str]) -> Profile:
    data = profile_data(name=name)
    data.pop("kubernetes")
    data["compose"]["project"] = name
    data["services"] = {"worker": {"host": {"executables": executables}}}
    return profile(**data)


def test_two_profiles_that_can_stop_one_portless_process_cannot_switch_at_once(
    locks: Path, reaper: list[subprocess.Popen[str]]
) -> None:
    """No port leads to a port-less service: its processes are found by what they run. Profile a
    names Debian's redis-server, b the file that name leads to (redis-check-rdb): both would stop
    one real redis process, so they share a lock; c runs something else and is not held up."""
    installed = shutil.which("redis-server")
    require(installed is not None, "redis-server (apt package redis-server) is not installed")
    assert installed is not None
    real_file = Path(os.path.realpath(installed)).name
    a = _portless("stack-a", ["redis-server"])
    b = _portless("stack-b", [real_file])
    c = _portless("stack-c", ["swlock-other-worker"])
    shared = set(lock_resources(a)) & set(lock_resources(b))
    assert f"process:{real_file}" in shared and not set(lock_resources(a)) & set(lock_resources(c))

    holder = _holder_process(lock_resources(a), "flow run switch-a", "stack-a")
    reaper.append(holder)
    with pytest.raises(LockedError) as info, switch_lock(lock_resources(b), "flow run switch-b", profile="stack-b"):
        pytest.fail("two profiles that can stop the same port-less process switched at once")
    assert f"holds process {real_file}" in str(info.value) and "flow run switch-a" in str(info.value)
    with switch_lock(lock_resources(c), "flow run switch-c", profile="stack-c"):
        pass
    holder.kill()
    holder.wait(timeout=10)
    with switch_lock(lock_resources(b), "flow run switch-b", wait_seconds=5, profile="stack-b"):
        pass


def test_workloads_and_compose_projects_are_resources_too() -> None:
    keys = lock_resources(profile())
    assert "compose:seedstack" in keys and "profile:seedstack" in keys
    assert "workload:seedstack/Deployment/backend" in keys
    assert keys == sorted(keys)


def _lock_dir_as(uid: int, env: dict[str, str]) -> tuple[int, str]:
    """``lock_dir()`` computed in a forked child that runs as ``uid`` (the interpreter is already
    loaded, so no executable under a private home is needed): (exit status, output)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to uid, report, never return into pytest
        status = 1
        try:
            os.close(read)
            os.setgid(uid)
            os.setuid(uid)
            os.environ.clear()
            os.environ.update(env)
            try:
                text, status = str(lock_dir()), 0
            except LockedError as exc:
                text = str(exc)
            os.write(write, text.encode())
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), output


@pytest.fixture
def nobody_runtime_dir() -> Iterator[Path]:
    """A private runtime dir for nobody, where nobody can reach it (pytest's tmp is root-only)."""
    runtime = Path(tempfile.mkdtemp(prefix="sw-xdg-"))
    os.chown(runtime, 65534, 65534)
    yield runtime
    shutil.rmtree(runtime, ignore_errors=True)


def test_a_non_root_user_locks_in_its_runtime_dir(nobody_runtime_dir: Path) -> None:
    """As root the directory is /run/stackwarden; as anyone else $XDG_RUNTIME_DIR/stackwarden
    (checked here as nobody), never /tmp; without XDG_RUNTIME_DIR, no lock at all."""
    runtime = nobody_runtime_dir
    status, output = _lock_dir_as(65534, {"XDG_RUNTIME_DIR": str(runtime)})
    assert status == 0, output
    assert output == str(runtime / "stackwarden")
    assert (runtime / "stackwarden").stat().st_uid == 65534
    assert (runtime / "stackwarden").stat().st_mode & 0o777 == 0o700
    status, output = _lock_dir_as(65534, {})
    assert status == 1 and "XDG_RUNTIME_DIR is not set" in output
