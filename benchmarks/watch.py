"""``python -m benchmarks.watch``: the live view, measured on the real engines of the tests.

    .venv/bin/python -m benchmarks.watch latency --injections 50
    .venv/bin/python -m benchmarks.watch sizes --sizes seed,medium,large --repeat 5 \\
        --measure cold,answer,idle --idle-sizes large --idle-minutes 10
    .venv/bin/python -m benchmarks.watch dryrun --repeat 5
    .venv/bin/python -m benchmarks.watch soak --minutes 60        # its own command: an hour of churn

- ``latency``: a profile of its own (a compose project, host ports, a namespace on the real
  kube-apiserver with the fake kubelet); ``stackwarden watch --json`` and ``stackwarden serve``
  (live view on, the scheduled audit an hour away) run beside it. Each kind of conflict is
  injected ``--injections`` times and undone: a container that starts crash-looping (its first
  ``die`` is the moment it appears, read from the engine's own events), a process that binds a
  profile port (it prints the time right after ``listen``), a pod whose status says
  CrashLoopBackOff / ImagePullBackOff (written to the apiserver as the kubelet writes it; the
  moment is just before the write), a Deployment scaled to 0 (just before the patch). Measured:
  to the ``opened`` line on ``watch --json`` (when this process read it) and to its Prefect
  event (the event's ``occurred`` time, stamped by serve when it emitted it).
- ``sizes``: per scenario size of ``python -m benchmarks`` (built once each), against its
  baseline commands, timed interleaved run by run: ``cold``, ``stackwarden audit --fresh
  --no-record`` (in process, nothing running to answer) and its ``-X importtime`` (the slowest
  imports listed); ``answer``, ``stackwarden audit`` answered by a running serve's live view,
  whole process; ``idle`` (for ``--idle-sizes``), that serve left alone for ``--idle-minutes``:
  CPU time and RSS of its process.
- ``dryrun``: ``stackwarden switch compose-only`` (a dry run, in process) against
  ``stackwarden audit --fresh``, on the seed.
- ``soak``: serve on the large scenario while containers and pods are created and removed
  continuously; RSS every minute, to show it does not grow.

Nothing here asserts a time: these are benchmarks. Every figure is printed with the 1-minute
load average of this shared 2-core machine at the time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import clean_env, cli, run_process, time_baseline
from benchmarks.scenario import SIZES, Scenario, build
from tests.support.realparts import IMAGE, REPO, free_ports

KINDS = ("container", "port", "pod-crash", "pod-pull", "scaled")


def load() -> float:
    """The 1-minute load average now."""
    return round(os.getloadavg()[0], 2)


def pct(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 3)


# ---------------------------------------------------------------- shared infrastructure


@dataclass
class Infra:
    """The control plane, the fake kubelet and a Prefect server, started once per command."""

    work: Path
    control_plane: Any
    kubelet: Any
    server: Any


@contextlib.contextmanager
def infrastructure(work: Path, prefect: bool = True) -> Iterator[Infra]:
    from flows.local_server import local_server
    from tests.support.kube import FakeKubelet, start_control_plane

    with contextlib.ExitStack() as stack:
        (work / "cp").mkdir(parents=True, exist_ok=True)
        cp = start_control_plane(work / "cp")
        stack.callback(cp.stop)
        kubelet = FakeKubelet(cp.admin_kubeconfig).start()
        stack.callback(kubelet.stop)
        server = None
        if prefect:
            (work / "server").mkdir(exist_ok=True)
            (port,) = free_ports(1)
            server = stack.enter_context(local_server(work / "server", port=port, timeout_seconds=180))
        yield Infra(work, cp, kubelet, server)


@dataclass
class Lines:
    """A ``stackwarden watch --json`` process: every line with the time this process read it."""

    process: subprocess.Popen[str]
    received: queue.Queue[tuple[float, dict[str, Any]]] = field(default_factory=queue.Queue)

    def wait(self, event: str, finding: str, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                at, line = self.received.get(timeout=left)
            except queue.Empty:
                break
            if line.get("event") == event and line.get("id") == finding:
                return at
        raise TimeoutError(f"no {event} {finding} on stackwarden watch within {timeout:.0f} s")


@contextlib.contextmanager
def watching(profile: Path, env: dict[str, str]) -> Iterator[Lines]:
    process = subprocess.Popen(
        [*cli("watch", "--json", "--profile", str(profile))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines = Lines(process)

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            with contextlib.suppress(ValueError):
                lines.received.put((time.time(), json.loads(raw)))

    threading.Thread(target=read, daemon=True).start()
    try:
        yield lines
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


@contextlib.contextmanager
def serving(profile: Path, env: dict[str, str], log: Path, host: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*cli("serve", "--profile", str(profile), "--audit-every", "1h", "--host-name", host)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


# ---------------------------------------------------------------- latency


@dataclass
class Stage:
    """The latency benchmark's own profile and its objects."""

    profile: Path
    project: str
    namespace: str
    ports: dict[str, int]
    api: Any


def stage(infra: Infra, work: Path) -> Stage:
    from kubernetes import client as k8s

    from tests.support.kube import deployment, new_namespace

    name = f"swbench-live-{secrets.token_hex(3)}"
    ports = dict(zip(("web", "cache", "api", "img", "scaled"), free_ports(5), strict=True))
    api = infra.control_plane.admin_api_client()
    ns = new_namespace(api, "swbench-live")
    for app in ("api", "img", "scaled"):
        k8s.AppsV1Api(api).create_namespaced_deployment(ns, deployment(app, 1))
    services: dict[str, Any] = {
        "web": {"ports": [ports["web"]], "runtime": "compose"},
        "cache": {"ports": [ports["cache"]], "runtime": "compose"},
    }
    for app in ("api", "img", "scaled"):
        services[app] = {"ports": [ports[app]], "runtime": "kubernetes", "kubernetes": {"name": app}}
    doc = {
        "name": name,
        "default_mode": "hybrid-guarded",
        "compose": {"project": name, "files": [str(work / "compose.yaml")]},
        "kubernetes": {
            "namespace": ns,
            "kubeconfig": str(infra.control_plane.admin_kubeconfig),
            "allowed_contexts": ["stackwarden-test"],
        },
        "services": services,
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return Stage(path, name, ns, ports, api)


_LISTEN = """
import signal, socket, sys, time, ctypes
ctypes.CDLL(None).prctl(15, b"squatter", 0, 0, 0)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
print(repr(time.time()), flush=True)
signal.sigwait({signal.SIGTERM})
"""


class Injector:
    """Makes one kind of conflict appear (returning the moment it did) and goes away again."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self._undo: Callable[[], None] = lambda: None

    def finding(self, kind: str) -> str:
        return {
            "container": "crash-loop:web",
            "port": f"port-foreign-owner:{self.stage.ports['cache']}",
            "pod-crash": "crash-loop:api",
            "pod-pull": "service-unavailable:img:kubernetes",
            "scaled": "service-unavailable:scaled:kubernetes",
        }[kind]

    def inject(self, kind: str) -> Callable[[], float]:
        """Make the conflict appear; returns how to learn when it appeared."""
        return getattr(self, "_" + kind.replace("-", "_"))()

    def undo(self) -> None:
        self._undo()

    def _container(self) -> Callable[[], float]:
        name = f"{self.stage.project}-web-{secrets.token_hex(2)}"
        started = time.time()
        cid = subprocess.run(
            [
                "docker", "run", "-d", "--name", name, "--restart", "always",
                "--label", f"com.docker.compose.project={self.stage.project}",
                "--label", "com.docker.compose.service=web",
                IMAGE, "sh", "-c", "echo boom; exit 3",
            ],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        self._undo = lambda: subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)

        def first_death() -> float:
            from stackwarden.adapters.engine_http import EngineReader

            reader = EngineReader("/var/run/docker.sock", 10)
            try:
                events = reader.events(
                    since=f"{started - 1:.9f}",
                    until=f"{time.time():.9f}",
                    filters={"container": [cid], "event": ["die"]},
                )
            finally:
                reader.close()
            return min(int(e["timeNano"]) / 1e9 for e in events)

        return first_death

    def _port(self) -> Callable[[], float]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LISTEN, str(self.stage.ports["cache"])], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        at = float(proc.stdout.readline())

        def stop() -> None:
            proc.terminate()
            proc.wait(10)

        self._undo = stop
        return lambda: at

    def _pod_status(self, app: str, container_state: dict[str, Any], phase: str) -> Callable[[], float]:
        from kubernetes import client as k8s

        core = k8s.CoreV1Api(self.stage.api)
        ns = self.stage.namespace
        pods = json.loads(core.list_namespaced_pod(ns, label_selector=f"app={app}", _preload_content=False).data)[
            "items"
        ]
        pod = next(p for p in pods if not p["metadata"].get("deletionTimestamp"))
        original = json.loads(json.dumps(pod))
        statuses = pod["status"]["containerStatuses"]
        for status in statuses:
            status.update(container_state)
        pod["status"]["phase"] = phase
        for condition in pod["status"].get("conditions", []):
            if condition["type"] in {"Ready", "ContainersReady"}:
                condition["status"] = "False"
        at = time.time()
        core.replace_namespaced_pod_status(pod["metadata"]["name"], ns, pod, _preload_content=False)

        def restore() -> None:
            fresh = json.loads(
                core.read_namespaced_pod_status(pod["metadata"]["name"], ns, _preload_content=False).data
            )
            fresh["status"] = original["status"]
            core.replace_namespaced_pod_status(pod["metadata"]["name"], ns, fresh, _preload_content=False)

        self._undo = restore
        return lambda: at

    def _pod_crash(self) -> Callable[[], float]:
        return self._pod_status(
            "api",
            {
                "ready": False,
                "restartCount": 3,
                "state": {
                    "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
                },
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            },
            "Running",
        )

    def _pod_pull(self) -> Callable[[], float]:
        return self._pod_status(
            "img",
            {"ready": False, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}},
            "Pending",
        )

    def _scaled(self) -> Callable[[], float]:
        from kubernetes import client as k8s

        apps = k8s.AppsV1Api(self.stage.api)
        at = time.time()
        apps.patch_namespaced_deployment_scale("scaled", self.stage.namespace, {"spec": {"replicas": 0}})
        self._undo = lambda: apps.patch_namespaced_deployment_scale(
            "scaled", self.stage.namespace, {"spec": {"replicas": 1}}
        )
        return lambda: at


def event_time(api: Any, name: str, finding: str, host: str, since: float, *, timeout: float = 60) -> float:
    """When serve emitted ``name`` for ``finding`` (after ``since``), from the event's own stamp."""
    deadline = time.monotonic() + timeout
    start = datetime.fromtimestamp(since - 1, UTC)
    while time.monotonic() < deadline:
        for event in api.events(name, since=start, labels={"stackwarden.host": [host]}):
            if str(event["resource"]["prefect.resource.id"]).endswith("." + finding):
                occurred = datetime.fromisoformat(event["occurred"].replace("Z", "+00:00")).timestamp()
                if occurred >= since - 0.5:
                    return occurred
        time.sleep(0.5)
    raise TimeoutError(f"no {name} event for {finding} within {timeout:.0f} s")


def latency(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.prefect_api import Api

    kinds = [k for k in args.kinds.split(",") if k]
    results: dict[str, Any] = {"injections": args.injections, "kinds": {}}
    with tempfile.TemporaryDirectory(prefix="swbench-watch-") as tmp, infrastructure(Path(tmp)) as infra:
        work = Path(tmp)
        st = stage(infra, work)
        host = f"bench-{st.project}"
        env = clean_env(work / "client", STACKWARDEN_SOCKET=str(work / "s.sock"), **infra.server.client_env)
        api = Api.of(infra.server)
        injector = Injector(st)
        with watching(st.profile, env) as lines, serving(st.profile, env, work / "serve.log", host):
            lines.wait("open", "service-unavailable:web:compose", timeout=180)
            wait_for((work / "s.sock").exists, 180, "serve's live view")
            time.sleep(3)
            for kind in kinds:
                finding = injector.finding(kind)
                to_watch, to_event, failures = [], [], []
                load_before = load()
                for _ in range(args.injections):
                    # a random phase: a conflict appears at any moment of the host's 1 s re-read
                    time.sleep(random.uniform(0, 1))
                    try:
                        appeared = injector.inject(kind)
                        seen = lines.wait("opened", finding)
                        at = appeared()
                        to_watch.append(seen - at)
                        to_event.append(event_time(api, "stackwarden.finding.opened", finding, host, at) - at)
                    except Exception as exc:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    finally:
                        injector.undo()
                    with contextlib.suppress(TimeoutError):
                        lines.wait("resolved", finding, timeout=120)
                    time.sleep(0.5)  # serve publishes the resolution too before the next injection
                results["kinds"][kind] = {
                    "finding": finding,
                    "watch_p50": pct(to_watch, 0.5),
                    "watch_p95": pct(to_watch, 0.95),
                    "event_p50": pct(to_event, 0.5),
                    "event_p95": pct(to_event, 0.95),
                    "watch_max": round(max(to_watch), 3) if to_watch else None,
                    "measured": len(to_watch),
                    "failures": failures[:5],
                    "load_average": [load_before, load()],
                    "watch_seconds": [round(v, 3) for v in to_watch],
                    "event_seconds": [round(v, 3) for v in to_event],
                }
                print(
                    json.dumps({kind: {k: v for k, v in results["kinds"][kind].items() if "seconds" not in k}}),
                    file=sys.stderr,
                )
        api.close()
        from tests.support.kube import delete_namespace

        delete_namespace(st.api, st.namespace)
    return results


# ---------------------------------------------------------------- answer, cold, dry run


def measure_answer(scenario: Scenario, env: dict[str, str], repeat: int) -> dict[str, Any]:
    """``stackwarden audit`` answered by the running serve, interleaved with the baseline."""
    argv = cli("audit", "--profile", str(scenario.profile_path), "--fail-on", "critical")
    run_process(argv, env)  # warm the page cache
    answered, baseline = [], []
    load_before = load()
    for _ in range(repeat):
        run = run_process(argv, env)
        if "**Observed:**" not in run.stdout:
            raise RuntimeError(f"not answered by serve: {run.stderr[-500:]}")
        answered.append(run.seconds)
        baseline.append(time_baseline(scenario)[0])
    base = statistics.median(baseline)
    return {
        "answered_median_s": round(statistics.median(answered), 3),
        "answered_max_s": round(max(answered), 3),
        "baseline_median_s": round(base, 3),
        "ratio": round(statistics.median(answered) / base, 3),
        "repeat": repeat,
        "load_average": [load_before, load()],
    }


def _importtime(argv: list[str], env: dict[str, str]) -> list[tuple[str, float]]:
    """Milliseconds of imports in one run of ``argv`` under ``-X importtime``: the total, then
    the slowest top-level imports (cumulative: each with everything it imported first)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    top = []
    for line in run.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if len(name) - len(name.lstrip()) == 1:  # not indented: imported by the program itself
            top.append((name.strip(), int(parts[1]) / 1000))
    total = round(sum(ms for _, ms in top), 1)
    return [("(all imports)", total), *[(n, round(ms, 1)) for n, ms in sorted(top, key=lambda r: -r[1])[:12]]]


def measure_cold(scenario: Scenario, env: dict[str, str], repeat: int) -> dict[str, Any]:
    """``stackwarden audit --fresh --no-record`` (nothing running to answer), interleaved with
    the baseline, and where its imports' time goes."""
    argv = cli("audit", "--fresh", "--no-record", "--profile", str(scenario.profile_path), "--fail-on", "critical")
    run_process(argv, env)
    runs, baseline, rss = [], [], []
    load_before = load()
    for _ in range(repeat):
        run = run_process(argv, env)
        runs.append(run.seconds)
        rss.append(run.max_rss_kib)
        baseline.append(time_baseline(scenario)[0])
    base = statistics.median(baseline)
    return {
        "in_process_median_s": round(statistics.median(runs), 3),
        "baseline_median_s": round(base, 3),
        "ratio": round(statistics.median(runs) / base, 3),
        "peak_rss_mib": round(max(rss) / 1024, 1),
        "repeat": repeat,
        "load_average": [load_before, load()],
        "importtime_ms": _importtime(argv, env),
    }


def measure_idle(serve: subprocess.Popen[bytes], minutes: float) -> dict[str, Any]:
    """CPU and RSS of the serve process while nothing changes (its first listing done)."""
    cpu0, _, _ = _cpu_and_rss(serve.pid)
    started = time.monotonic()
    samples = []
    load_before = load()
    while time.monotonic() - started < minutes * 60:
        time.sleep(min(30.0, minutes * 60))
        cpu, rss, _ = _cpu_and_rss(serve.pid)
        samples.append(
            {"t": round(time.monotonic() - started), "cpu_s": round(cpu - cpu0, 2), "rss_mib": round(rss, 1)}
        )
    cpu1, rss, peak = _cpu_and_rss(serve.pid)
    elapsed = time.monotonic() - started
    return {
        "minutes": minutes,
        "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 2),
        "rss_mib_end": round(rss, 1),
        "rss_mib_peak": round(peak, 1),
        "load_average": [load_before, load()],
        "samples": samples,
    }


def sizes(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per scenario size (built once): cold in process, then serve started and the audit
    answered from it, then (for ``--idle-sizes``) serve left idle for ``--idle-minutes``."""
    measures = set(args.measure.split(","))
    out = []
    with tempfile.TemporaryDirectory(prefix="swbench-sizes-") as tmp, infrastructure(Path(tmp)) as infra:
        work = Path(tmp)
        for size in [SIZES[s] for s in args.sizes.split(",") if s]:
            here = work / size.name
            here.mkdir()
            built = time.monotonic()
            with build(size, here, infra.control_plane, infra.kubelet) as scenario:
                figure: dict[str, Any] = {"size": size.name, "build_minutes": round((time.monotonic() - built) / 60, 1)}
                env = clean_env(here / "client", STACKWARDEN_SOCKET=str(here / "s.sock"))
                if "cold" in measures:
                    figure["cold"] = measure_cold(scenario, env, args.repeat)
                    print(json.dumps({size.name: {"cold": figure["cold"]}}), file=sys.stderr, flush=True)
                if measures & {"answer", "idle"}:
                    serve_env = {**env, **infra.server.client_env}
                    with serving(scenario.profile_path, serve_env, here / "serve.log", f"bench-{size.name}") as serve:
                        up = time.monotonic()
                        wait_for((here / "s.sock").exists, 1800, "serve's live view")
                        figure["serve_ready_s"] = round(time.monotonic() - up, 1)
                        if "answer" in measures:
                            figure["answer"] = measure_answer(scenario, env, args.repeat)
                            print(json.dumps({size.name: {"answer": figure["answer"]}}), file=sys.stderr, flush=True)
                        if "idle" in measures and size.name in args.idle_sizes.split(","):
                            time.sleep(30)  # the first publication done: then idle
                            figure["idle"] = measure_idle(serve, args.idle_minutes)
                            shown = {k: v for k, v in figure["idle"].items() if k != "samples"}
                            print(json.dumps({size.name: {"idle": shown}}), file=sys.stderr, flush=True)
                out.append(figure)
    return out


def dryrun(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="swbench-dry-") as tmp, infrastructure(Path(tmp), prefect=False) as infra:
        work = Path(tmp)
        with build(SIZES["seed"], work, infra.control_plane, infra.kubelet) as scenario:
            env = clean_env(work / "client")
            profile = str(scenario.switch_profile_path)
            audit = cli("audit", "--fresh", "--no-record", "--profile", profile, "--fail-on", "critical")
            switch = cli("switch", "compose-only", "--profile", profile)
            run_process(audit, env)
            audits, dry = [], []
            load_before = load()
            for _ in range(args.repeat):
                audits.append(run_process(audit, env).seconds)
                run = run_process(switch, env)
                if run.returncode not in (0, 4):
                    raise RuntimeError(f"dry run failed: {run.stderr[-500:]}")
                dry.append(run.seconds)
            figure = {
                "dry_run_median_s": round(statistics.median(dry), 3),
                "audit_median_s": round(statistics.median(audits), 3),
                "ratio": round(statistics.median(dry) / statistics.median(audits), 3),
                "repeat": args.repeat,
                "load_average": [load_before, load()],
            }
            print(json.dumps(figure), file=sys.stderr)
            return figure


# ---------------------------------------------------------------- idle and soak


def _cpu_and_rss(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, RSS MiB, peak RSS MiB) of one process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Serve on the scenario while a churner creates and removes containers and pods."""
    from kubernetes import client as k8s

    from tests.support.kube import deployment

    size = SIZES[args.size]
    with tempfile.TemporaryDirectory(prefix="swbench-soak-") as tmp, infrastructure(Path(tmp)) as infra:
        work = Path(tmp)
        with build(size, work, infra.control_plane, infra.kubelet) as scenario:
            sock = work / "s.sock"
            env = clean_env(work / "client", STACKWARDEN_SOCKET=str(sock), **infra.server.client_env)
            apps = k8s.AppsV1Api(infra.control_plane.admin_api_client())
            apps.create_namespaced_deployment(scenario.namespace, deployment("churn", 0))
            stop = threading.Event()
            churned = {"containers": 0, "scales": 0}

            def churn() -> None:
                replicas = 0
                while not stop.is_set():
                    name = f"{scenario.project.name}-churn-{secrets.token_hex(3)}"
                    subprocess.run(
                        ["docker", "run", "-d", "--name", name, IMAGE, "sleep", "5"], capture_output=True, check=False
                    )
                    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
                    churned["containers"] += 1
                    replicas = 20 if replicas == 0 else 0
                    with contextlib.suppress(Exception):
                        apps.patch_namespaced_deployment_scale(
                            "churn", scenario.namespace, {"spec": {"replicas": replicas}}
                        )
                        churned["scales"] += 1
                    stop.wait(args.pause)

            with serving(scenario.profile_path, env, work / "serve.log", f"bench-soak-{size.name}") as serve:
                wait_for(sock.exists, 1200, "serve's live view")
                time.sleep(30)
                thread = threading.Thread(target=churn, daemon=True)
                thread.start()
                started = time.monotonic()
                cpu0, _, _ = _cpu_and_rss(serve.pid)
                samples = []
                try:
                    while time.monotonic() - started < args.minutes * 60:
                        time.sleep(60)
                        cpu, rss, _peak = _cpu_and_rss(serve.pid)
                        samples.append(
                            {
                                "minute": round((time.monotonic() - started) / 60, 1),
                                "rss_mib": round(rss, 1),
                                "cpu_s": round(cpu - cpu0, 1),
                                "load": load(),
                            }
                        )
                        print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
                finally:
                    stop.set()
                    thread.join(60)
                half = len(samples) // 2
                first = statistics.median([s["rss_mib"] for s in samples[:half]]) if half else None
                second = statistics.median([s["rss_mib"] for s in samples[half:]]) if samples[half:] else None
                return {
                    "size": size.name,
                    "minutes": args.minutes,
                    "churned": churned,
                    "rss_median_first_half_mib": first,
                    "rss_median_second_half_mib": second,
                    "samples": samples,
                }


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.watch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--injections", type=int, default=50)
    p.add_argument("--kinds", default=",".join(KINDS))
    p = sub.add_parser("sizes")
    p.add_argument("--sizes", default="seed,medium,large")
    p.add_argument("--measure", default="cold,answer,idle", help="comma-separated: cold, answer, idle")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--idle-sizes", default="large")
    p.add_argument("--idle-minutes", type=float, default=10)
    p = sub.add_parser("dryrun")
    p.add_argument("--repeat", type=int, default=5)
    p = sub.add_parser("soak")
    p.add_argument("--size", default="large")
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--pause", type=float, default=2.0, help="seconds between two churn steps")
    for p in sub.choices.values():
        p.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    figures = {"latency": latency, "sizes": sizes, "dryrun": dryrun, "soak": soak}[args.what](args)
    doc = {
        "what": args.what,
        "started": started.isoformat(timespec="seconds"),
        "took_minutes": round((datetime.now(UTC) - started) / timedelta(minutes=1), 1),
        "cores": os.cpu_count(),
        "figures": figures,
    }
    print(json.dumps(doc, indent=2))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
