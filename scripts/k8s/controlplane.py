"""A throw-away Kubernetes v1.20.2 control plane on loopback, for tests.

Why this exists: stackwarden's Kubernetes code must be exercised against a
*real* API server (admission, RBAC, the pod-log proxy, the deployment and
node-lifecycle controllers) but the test machines can only reach Debian apt
and PyPI.  ``build-control-plane.sh`` builds kube-apiserver and
kube-controller-manager from Debian's source package; this module wires them
together with Debian's ``etcd`` into a minimal, loopback-only cluster.  No
kubelet runs: pair it with :class:`fake_kubelet.FakeKubelet`.

Usage as a library (tests put ``scripts/k8s`` on ``sys.path``)::

    from controlplane import ControlPlane
    with ControlPlane(tmp_path) as cp:
        client = cp.admin_api_client()

Usage from a shell (processes keep running after ``up`` returns)::

    python scripts/k8s/controlplane.py up --dir /tmp/cp
    KUBECONFIG=/tmp/cp/admin.kubeconfig kubectl get ns
    python scripts/k8s/controlplane.py down --dir /tmp/cp

Only stdlib, the ``openssl`` CLI and (optionally) the ``kubernetes`` client
are used.  Everything written goes below ``workdir``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import kubernetes.client

K8S_VERSION = "1.20.2"
BUILD_SCRIPT = Path(__file__).resolve().parent / "build-control-plane.sh"
CONTEXT_NAME = "stackwarden-test"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_ETCD_PORT = 23790
DEFAULT_ETCD_PEER_PORT = 23800
DEFAULT_APISERVER_PORT = 26443
STATE_FILE = "controlplane.json"


class ControlPlaneError(RuntimeError):
    """Raised when the control plane cannot be built, started or reached."""


def cache_dir() -> Path:
    """Directory holding the cached binaries (``$STACKWARDEN_K8S_CACHE`` wins).

    Kept in one place so the build script, this module and tests agree.
    """
    env = os.environ.get("STACKWARDEN_K8S_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "stackwarden" / f"k8s-{K8S_VERSION}"


def binary_path(name: str) -> Path:
    """Path a cached control-plane binary is expected at (may not exist)."""
    return cache_dir() / "bin" / name


def binaries_present() -> bool:
    """True if both server binaries are cached and executable."""
    return all(os.access(binary_path(n), os.X_OK) for n in ("kube-apiserver", "kube-controller-manager"))


def find_free_port() -> int:
    """Return a currently free loopback TCP port (>= 20000 on Linux defaults).

    Tests that may run concurrently with other suites should prefer random
    ports over the fixed defaults.  There is an unavoidable race between this
    check and the server binding the port.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port >= 20000:
            return port
    raise ControlPlaneError("could not find a free loopback port >= 20000")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file, for error messages."""
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(data[-lines:])


def _run(args: Sequence[str], cwd: Path) -> None:
    """Run a helper command (openssl), raising with its stderr on failure."""
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ControlPlaneError(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr.strip()}")


def _pid_matches(pid: int, binary_name: str) -> bool:
    """Guard against killing an unrelated process that reused a recorded pid."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return os.path.basename(argv0) == binary_name


def _terminate_pid(pid: int, binary_name: str, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds, a pid we recorded."""
    if not _pid_matches(pid, binary_name):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_matches(pid, binary_name):
            return
        try:
            # Reap it if it happens to be our child (avoids zombies).
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class _Component:
    """One child process plus its log file."""

    def __init__(self, name: str, binary: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.binary = binary
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, detach: bool) -> None:
        # Append so that restarts in the same workdir keep earlier history.
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [self.binary, *self.args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # A new session keeps terminal Ctrl-C from hitting the servers
            # before stop() can shut them down in order; with ``up`` it lets
            # them outlive the CLI process.
            start_new_session=detach,
        )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager bound to 127.0.0.1.

    Why these settings: token authentication (admin in ``system:masters`` and
    an unprivileged ``viewer``) lets tests exercise RBAC without client-cert
    plumbing; ``Node,RBAC`` authorization mirrors real clusters; the
    ServiceAccount admission plugin is disabled so pods do not need token
    secrets (there is no kubelet to mount them).

    Attributes available after construction: ``workdir``, ``server`` (URL),
    ``admin_kubeconfig``, ``viewer_kubeconfig`` (Paths), ``admin_token``,
    ``viewer_token``, ``ca_file``, ``etcd_port``, ``apiserver_port``.
    Tokens and certificates are created on :meth:`start` (reused if already
    present in ``workdir``).
    """

    def __init__(
        self,
        workdir: Path,
        etcd_port: int = DEFAULT_ETCD_PORT,
        apiserver_port: int = DEFAULT_APISERVER_PORT,
        *,
        etcd_peer_port: int | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        extra_apiserver_args: Sequence[str] = (),
        extra_controller_manager_args: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.etcd_port = etcd_port
        self.etcd_peer_port = (
            etcd_peer_port
            if etcd_peer_port is not None
            else (DEFAULT_ETCD_PEER_PORT if etcd_port == DEFAULT_ETCD_PORT else find_free_port())
        )
        self.apiserver_port = apiserver_port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.extra_controller_manager_args = list(extra_controller_manager_args)

        self.server = f"https://127.0.0.1:{apiserver_port}"
        self.pki_dir = self.workdir / "pki"
        self.ca_file = self.pki_dir / "ca.crt"
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self.viewer_kubeconfig = self.workdir / "viewer.kubeconfig"
        self.token_file = self.workdir / "tokens.csv"
        self.admin_token = ""
        self.viewer_token = ""
        self.startup_seconds: float | None = None
        self._components: list[_Component] = []

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _require_binary(name: str, system: bool) -> str:
        """Locate a binary or fail with instructions (why: a bare ENOENT from
        Popen does not tell a developer that a 4-minute build is needed)."""
        if system:
            found = shutil.which(name)
            if found is None:
                raise ControlPlaneError(
                    f"'{name}' not found on PATH; install the Debian package "
                    f"(apt-get install -y etcd-server) or run {BUILD_SCRIPT}"
                )
            return found
        path = binary_path(name)
        if not os.access(path, os.X_OK):
            raise ControlPlaneError(
                f"missing control-plane binary {name!r} at {path}; build it with "
                f"`bash {BUILD_SCRIPT}` (takes ~4 minutes, needs Debian apt; "
                f"set STACKWARDEN_K8S_CACHE to use another cache dir)"
            )
        return str(path)

    def _generate_pki(self) -> None:
        """Create a CA, an apiserver serving cert and the SA signing keypair.

        A CA (rather than a single self-signed leaf) lets kubeconfigs verify
        TLS properly and gives the controller manager a ``--root-ca-file``.
        """
        pki = self.pki_dir
        pki.mkdir(parents=True, exist_ok=True)
        if (pki / "apiserver.crt").exists() and (pki / "sa.pub").exists():
            return
        (pki / "ca.cnf").write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n"
            "[dn]\nCN = stackwarden-test-ca\n"
            "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
            "keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
            "subjectKeyIdentifier = hash\n"
        )
        (pki / "apiserver.ext").write_text(
            "basicConstraints = CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectKeyIdentifier = hash\n"
            "authorityKeyIdentifier = keyid,issuer\n"
            "subjectAltName = IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
            "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
            "DNS:kubernetes.default.svc.cluster.local\n"
        )
        _run(["openssl", "genrsa", "-out", "ca.key", "2048"], pki)
        _run(
            [
                "openssl",
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-config",
                "ca.cnf",
                "-extensions",
                "v3_ca",
                "-days",
                "3650",
                "-out",
                "ca.crt",
            ],
            pki,
        )
        _run(["openssl", "genrsa", "-out", "apiserver.key", "2048"], pki)
        _run(
            [
                "openssl",
                "req",
                "-new",
                "-key",
                "apiserver.key",
                "-subj",
                "/CN=kube-apiserver",
                "-out",
                "apiserver.csr",
            ],
            pki,
        )
        _run(
            [
                "openssl",
                "x509",
                "-req",
                "-in",
                "apiserver.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "3650",
                "-extfile",
                "apiserver.ext",
                "-out",
                "apiserver.crt",
            ],
            pki,
        )
        _run(["openssl", "genrsa", "-out", "sa.key", "2048"], pki)
        _run(["openssl", "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], pki)
        for key in ("ca.key", "apiserver.key", "sa.key"):
            (pki / key).chmod(0o600)

    def _write_tokens(self) -> None:
        """Static token auth: admin (system:masters) and viewer (no groups).

        Reuses existing tokens so a restarted control plane keeps working
        with kubeconfigs handed out earlier.
        """
        if self.token_file.exists():
            rows = [r.split(",") for r in self.token_file.read_text().splitlines() if r]
            by_user = {r[1]: r[0] for r in rows if len(r) >= 2}
            if "admin" in by_user and "viewer" in by_user:
                self.admin_token, self.viewer_token = by_user["admin"], by_user["viewer"]
                return
        self.admin_token = secrets.token_hex(24)
        self.viewer_token = secrets.token_hex(24)
        self.token_file.write_text(
            f'{self.admin_token},admin,uid-admin,"system:masters"\n{self.viewer_token},viewer,uid-viewer\n'
        )
        self.token_file.chmod(0o600)

    def _kubeconfig(self, user: str, token: str) -> dict[str, Any]:
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT_NAME,
                    "cluster": {"server": self.server, "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": CONTEXT_NAME,
                    "context": {"cluster": CONTEXT_NAME, "user": user, "namespace": "default"},
                }
            ],
            "current-context": CONTEXT_NAME,
            "preferences": {},
        }

    def _write_kubeconfigs(self) -> None:
        """JSON is valid YAML, so kubectl and the Python client read these."""
        for path, user, token in (
            (self.admin_kubeconfig, "admin", self.admin_token),
            (self.viewer_kubeconfig, "viewer", self.viewer_token),
        ):
            path.write_text(json.dumps(self._kubeconfig(user, token), indent=2) + "\n")
            path.chmod(0o600)

    # --------------------------------------------------------------- commands
    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        return [
            "--name",
            "stackwarden-test",
            "--data-dir",
            str(self.workdir / "etcd-data"),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"stackwarden-test={peer}",
            "--initial-cluster-state",
            "new",
            "--log-level",
            "warn",
            # Tests create many small objects; keep the db tiny and fast.
            "--quota-backend-bytes",
            str(512 * 1024 * 1024),
            "--snapshot-count=10000",
        ]

    def _apiserver_args(self) -> list[str]:
        pki = self.pki_dir
        return [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            "--insecure-port=0",
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={self.token_file}",
            "--authorization-mode=Node,RBAC",
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # The fake kubelet only has an InternalIP, and serves a
            # self-signed cert which is not verified without
            # --kubelet-certificate-authority.
            "--kubelet-preferred-address-types=InternalIP",
            # 127.0.0.1 is not a valid Endpoints address; without this the
            # apiserver logs a reconcile error for the `kubernetes` service
            # every few seconds.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
            *self.extra_apiserver_args,
        ]

    def _controller_manager_args(self) -> list[str]:
        pki = self.pki_dir
        return [
            f"--kubeconfig={self.admin_kubeconfig}",
            "--controllers=*",
            "--use-service-account-credentials=false",
            "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            # No serving endpoints: avoids fixed ports 10252/10257 colliding
            # between concurrently running test control planes.
            "--port=0",
            "--secure-port=0",
            "--profiling=false",
            "--v=1",
            *self.extra_controller_manager_args,
        ]

    # --------------------------------------------------------------- waiting
    def _fail(self, message: str, component: _Component | None) -> ControlPlaneError:
        detail = ""
        if component is not None:
            detail = f"\n--- last lines of {component.log_path} ---\n{_tail(component.log_path)}"
        return ControlPlaneError(message + detail)

    def _wait_http(
        self,
        url: str,
        component: _Component,
        deadline: float,
        *,
        token: str | None = None,
        context: ssl.SSLContext | None = None,
        expect: bytes = b"ok",
    ) -> None:
        last = "no answer yet"
        while time.monotonic() < deadline:
            if not component.running():
                raise self._fail(f"{component.name} exited while waiting for {url}", component)
            req = urllib.request.Request(url)  # noqa: S310 - url is our own http(s)://127.0.0.1
            if token:
                req.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(req, timeout=2, context=context) as resp:  # noqa: S310
                    body = resp.read()
                    if resp.status == 200 and expect in body:
                        return
                    last = f"HTTP {resp.status}: {body[:200]!r}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
            except (urllib.error.URLError, OSError) as exc:
                last = repr(exc)
            time.sleep(0.25)
        raise self._fail(f"timed out waiting for {url} ({last})", component)

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _wait_controller_manager(self, component: _Component, deadline: float) -> None:
        """Wait for the ``default`` ServiceAccount, which only the controller
        manager creates: proves it is running and talking to the apiserver."""
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        self._wait_http(
            url,
            component,
            deadline,
            token=self.admin_token,
            context=self._ssl_context(),
            expect=b'"ServiceAccount"',
        )

    # ------------------------------------------------------------- lifecycle
    def start(self, *, detach: bool = False) -> ControlPlane:
        """Start etcd, apiserver and controller manager; block until ready.

        ``detach=True`` puts the processes in their own session so they
        survive the calling process (used by the ``up`` CLI).
        """
        etcd_bin = self._require_binary("etcd", system=True)
        apiserver_bin = self._require_binary("kube-apiserver", system=False)
        cm_bin = self._require_binary("kube-controller-manager", system=False)
        if self._components:
            raise ControlPlaneError("control plane already started")
        for port, what in (
            (self.etcd_port, "etcd client"),
            (self.etcd_peer_port, "etcd peer"),
            (self.apiserver_port, "kube-apiserver"),
        ):
            if _port_in_use(port):
                raise ControlPlaneError(
                    f"port {port} for {what} is already in use on 127.0.0.1 "
                    f"(another control plane running? try `down --dir`, or other ports)"
                )

        self.workdir.mkdir(parents=True, exist_ok=True)
        self._generate_pki()
        self._write_tokens()
        self._write_kubeconfigs()

        t0 = time.monotonic()
        deadline = t0 + self.startup_timeout
        try:
            etcd = _Component("etcd", etcd_bin, self._etcd_args(), self.workdir / "etcd.log")
            self._components.append(etcd)
            etcd.start(detach)
            self._wait_http(f"http://127.0.0.1:{self.etcd_port}/health", etcd, deadline, expect=b"true")

            apiserver = _Component(
                "kube-apiserver",
                apiserver_bin,
                self._apiserver_args(),
                self.workdir / "kube-apiserver.log",
            )
            self._components.append(apiserver)
            apiserver.start(detach)
            self._wait_http(
                f"{self.server}/readyz",
                apiserver,
                deadline,
                token=self.admin_token,
                context=self._ssl_context(),
            )

            cm = _Component(
                "kube-controller-manager",
                cm_bin,
                self._controller_manager_args(),
                self.workdir / "kube-controller-manager.log",
            )
            self._components.append(cm)
            cm.start(detach)
            self._wait_controller_manager(cm, deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        self._write_state()
        return self

    def _write_state(self) -> None:
        """Record pids so ``down --dir`` can stop a detached control plane."""
        state = {
            "server": self.server,
            "admin_kubeconfig": str(self.admin_kubeconfig),
            "viewer_kubeconfig": str(self.viewer_kubeconfig),
            "processes": [
                {
                    "name": c.name,
                    "binary": os.path.basename(c.binary),
                    "pid": c.proc.pid if c.proc else None,
                }
                for c in self._components
            ],
        }
        (self.workdir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    def restart_apiserver(self, down_seconds: float = 0.0, while_down: Callable[[], None] | None = None) -> None:
        """Stop kube-apiserver (etcd and the controller manager keep running), wait
        ``down_seconds`` and run ``while_down``, then start it again and block until ready.

        Why: clients that watch the API must survive an apiserver restart (and notice it);
        a real restart is the only honest way to test that."""
        apiserver = next(c for c in self._components if c.name == "kube-apiserver")
        apiserver.stop(self.stop_timeout)
        time.sleep(down_seconds)
        if while_down is not None:
            while_down()
        apiserver.start(detach=False)
        self._wait_http(
            f"{self.server}/readyz",
            apiserver,
            time.monotonic() + self.startup_timeout,
            token=self.admin_token,
            context=self._ssl_context(),
        )

    def running(self) -> bool:
        """True while all three processes are alive."""
        return bool(self._components) and all(c.running() for c in self._components)

    def stop(self) -> None:
        """Stop components in reverse start order (SIGTERM, then SIGKILL).

        Leaves ``workdir`` (logs, etcd data) in place for post-mortems; the
        caller owns the directory.
        """
        for comp in reversed(self._components):
            comp.stop(self.stop_timeout)
        self._components.clear()
        state = self.workdir / STATE_FILE
        if state.exists():
            state.unlink()

    @classmethod
    def stop_detached(cls, workdir: Path, timeout: float = 10.0) -> int:
        """Stop processes recorded by a detached ``up``; returns how many.

        Pids are checked against the recorded binary name first, so a stale
        state file never kills an unrelated process.
        """
        state_path = Path(workdir) / STATE_FILE
        if not state_path.exists():
            return 0
        state = json.loads(state_path.read_text())
        stopped = 0
        for entry in reversed(state.get("processes", [])):
            pid = entry.get("pid")
            if isinstance(pid, int) and _pid_matches(pid, str(entry.get("binary"))):
                _terminate_pid(pid, str(entry["binary"]), timeout)
                stopped += 1
        state_path.unlink()
        return stopped

    # ------------------------------------------------------------ clients
    def admin_api_client(self) -> kubernetes.client.ApiClient:
        """An official-client ApiClient authenticated as the admin."""
        return self._api_client(self.admin_kubeconfig)

    def viewer_api_client(self) -> kubernetes.client.ApiClient:
        """An official-client ApiClient authenticated as ``viewer``."""
        return self._api_client(self.viewer_kubeconfig)

    @staticmethod
    def _api_client(kubeconfig: Path) -> kubernetes.client.ApiClient:
        from kubernetes import config  # type: ignore[import-untyped,unused-ignore]

        factory: Callable[..., Any] = config.new_client_from_config
        client: kubernetes.client.ApiClient = factory(config_file=str(kubeconfig))
        return client

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``up`` starts a detached control plane, ``down`` stops it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", required=True, type=Path, help="work directory")
    parser.add_argument("--etcd-port", type=int, default=DEFAULT_ETCD_PORT)
    parser.add_argument("--etcd-peer-port", type=int, default=DEFAULT_ETCD_PEER_PORT)
    parser.add_argument("--apiserver-port", type=int, default=DEFAULT_APISERVER_PORT)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    if args.action == "down":
        n = ControlPlane.stop_detached(args.dir)
        print(f"stopped {n} process(es)")
        return 0
    cp = ControlPlane(
        args.dir,
        args.etcd_port,
        args.apiserver_port,
        etcd_peer_port=args.etcd_peer_port,
        startup_timeout=args.timeout,
    )
    try:
        cp.start(detach=True)
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"control plane ready in {cp.startup_seconds:.1f}s at {cp.server}")
    print(f"admin:  KUBECONFIG={cp.admin_kubeconfig}")
    print(f"viewer: KUBECONFIG={cp.viewer_kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
