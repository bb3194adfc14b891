"""``stackwarden audit`` answered from a live view equals the report it renders in process for
the same host (the whole seed: Compose, host processes, the cluster), save the line that says
how old the observations are; ``--fresh`` observes in process; a profile the socket does not
serve, or one edited since, is observed in process; a caller who may not use the socket is
refused by the server itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackwarden.profiles import load_profile
from stackwarden.watch.answer import AnswerServer, served_profiles
from stackwarden.watch.runner import LiveView
from tests.conftest import FullSeed
from tests.support.realparts import REPO

pytestmark = [pytest.mark.docker, pytest.mark.kube]


def _audit(socket: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``stackwarden audit`` as a person runs it, told where serve's socket is."""
    env = {**os.environ, "STACKWARDEN_SOCKET": str(socket)}
    argv = [sys.executable, "-m", "flows.cli", "audit", "--profile", str(profile), "--fail-on", "critical", *extra]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False)


def _comparable(report: str) -> str:
    """The report without the lines that differ by nature: when it was taken, how old it is."""
    return "\n".join(line for line in report.splitlines() if not line.startswith(("**Date:**", "**Observed:**")))


@pytest.fixture(scope="module")
def answering(full_seed: FullSeed) -> Iterator[Path]:
    """A live view of the whole seed answering on a socket, as serve runs it."""
    directory = Path(tempfile.mkdtemp(prefix="swsock-", dir="/tmp"))
    directory.chmod(0o755)  # another user may reach the socket: only its own mode keeps them out
    socket = directory / "serve.sock"
    view = LiveView(load_profile(full_seed.profile_path)).start()
    server = AnswerServer(socket, served_profiles({full_seed.profile_path: view.current}))
    try:
        assert view.wait_ready(120), "the live view did not finish its first observation"
        assert server.start()
        assert oct(socket.stat().st_mode & 0o777) == "0o600"
        yield socket
    finally:
        server.stop()
        view.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_the_answer_equals_the_in_process_report(answering: Path, full_seed: FullSeed) -> None:
    # the seed's backend keeps crash-looping (its restart count is in the report): compare a fresh
    # audit with the answers given just before and just after it, until the host held still
    for _ in range(5):
        before = _audit(answering, full_seed.profile_path)
        fresh = _audit(answering, full_seed.profile_path, "--fresh")
        after = _audit(answering, full_seed.profile_path)
        assert before.returncode == fresh.returncode == after.returncode, (before.stderr, fresh.stderr)
        assert "**Observed:** live view of stackwarden serve" in before.stdout
        assert "**Observed:**" not in fresh.stdout
        if _comparable(before.stdout) == _comparable(after.stdout):
            assert _comparable(before.stdout) == _comparable(fresh.stdout)
            return
        time.sleep(2)
    pytest.fail("the host never held still for three audits in a row")


def test_the_answer_says_how_old_each_runtime_is(answering: Path, full_seed: FullSeed) -> None:
    answered = _audit(answering, full_seed.profile_path)
    observed = next(line for line in answered.stdout.splitlines() if line.startswith("**Observed:**"))
    for what in ("Docker events stream, last word", "host re-read every second, last word", "Kubernetes watches"):
        assert what in observed, observed
    assert answered.returncode == 1  # the seed's crash loops are critical
    assert "crash-loop:backend" in answered.stderr


def test_json_and_metrics_come_from_the_live_view_too(answering: Path, full_seed: FullSeed, tmp_path: Path) -> None:
    metrics = tmp_path / "audit.prom"
    answered = _audit(answering, full_seed.profile_path, "--json", "--prometheus", str(metrics))
    doc = json.loads(answered.stdout)
    assert doc["observed"]["source"] == "stackwarden serve" and "live view" in doc["observed"]["line"]
    fresh = json.loads(_audit(answering, full_seed.profile_path, "--json", "--fresh").stdout)
    assert "observed" not in fresh
    assert {f["id"] for f in doc["findings"]} == {f["id"] for f in fresh["findings"]}
    assert doc["snapshot"]["profile"] == fresh["snapshot"]["profile"]
    text = metrics.read_text()
    assert 'stackwarden_findings{profile="' in text and 'rule="crash-loops"' in text


def test_a_profile_edited_since_serve_read_it_is_observed_in_process(
    answering: Path, full_seed: FullSeed, tmp_path: Path
) -> None:
    edited = tmp_path / "edited.yaml"
    edited.write_text(full_seed.profile_path.read_text() + "\n# edited\n")
    answered = _audit(answering, edited, "-v")
    assert "**Observed:**" not in answered.stdout
    assert "not served here" in answered.stderr and "observing in this process" in answered.stderr


_ASK_AS_NOBODY = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("permission denied"); sys.exit()
s.sendall(b'{"protocol": 1}\\n'); s.shutdown(socket.SHUT_WR)
print(s.recv(4096).decode())
"""


def _as_nobody(socket: Path) -> str:
    """Ask the socket as user nobody (the system python: root's interpreter is not theirs to run)."""
    out = subprocess.run(
        ["/usr/bin/python3", "-c", _ASK_AS_NOBODY, str(socket)],
        capture_output=True,
        text=True,
        check=False,
        user=65534,
        group=65534,
        extra_groups=[],
        cwd="/",
    )
    return out.stdout.strip() + out.stderr.strip()


def test_a_caller_the_socket_does_not_allow_is_refused(answering: Path) -> None:
    """Mode 0600 keeps another user out; should the mode be opened by mistake, the server still
    refuses a caller who is neither root nor the serving user nor in its group."""
    assert _as_nobody(answering) == "permission denied"
    answering.chmod(0o666)
    try:
        assert '"not allowed"' in _as_nobody(answering)
    finally:
        answering.chmod(0o600)
