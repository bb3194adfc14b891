"""Benchmark: how long each service is unavailable during a switch of the seed scenario.

    .venv/bin/python benchmarks/bench_downtime.py

Starts the seed scenario (tests/support/stack.py: compose project, host postgres and redis,
the real control plane with the fake kubelet), then switches it to compose-only and from there to
k8s-only while a probe connects to every profile port on 127.0.0.1 every 50 ms. Prints, per
service and switch, the failed probes and the longest unavailable window (first failure to the
next success; "not back" when the port stayed closed until the end). Needs root, Docker and the
control plane, like the integration tests.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

INTERVAL = 0.05


class Probe:
    """Connects to each port every INTERVAL seconds and records (time, ok)."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports
        self.samples: dict[str, list[tuple[float, bool]]] = {name: [] for name in ports}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            tick = time.monotonic()
            for name, port in self.ports.items():
                with socket.socket() as s:
                    s.settimeout(INTERVAL)
                    ok = s.connect_ex(("127.0.0.1", port)) == 0
                self.samples[name].append((time.monotonic(), ok))
            self._stop.wait(max(0.0, INTERVAL - (time.monotonic() - tick)))

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def report(self) -> dict[str, tuple[int, int, str]]:
        """service -> (probes, failed, longest window)."""
        out = {}
        for name, samples in self.samples.items():
            failed = sum(1 for _, ok in samples if not ok)
            longest, start, open_end = 0.0, None, False
            for stamp, ok in samples:
                if not ok and start is None:
                    start = stamp
                elif ok and start is not None:
                    longest, start = max(longest, stamp - start), None
            if start is not None:
                open_end = True
                longest = max(longest, samples[-1][0] - start)
            window = f"{longest * 1000:.0f} ms" + (" (not back)" if open_end else "")
            out[name] = (len(samples), failed, window if failed else "0 ms")
        return out


def main() -> None:
    from flows.switch import run_switch
    from tests.support.kube import FakeKubelet, start_control_plane
    from tests.support.stack import fresh_stack

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "cp").mkdir()
        cp = start_control_plane(work / "cp")
        kubelet = FakeKubelet(cp.admin_kubeconfig).start()
        try:
            with fresh_stack(work, cp, kubelet) as stack:
                for mode in ("compose-only", "k8s-only"):
                    with Probe(stack.ports) as probe:
                        time.sleep(1.0)  # a baseline before the switch starts
                        started = time.monotonic()
                        outcome = run_switch(
                            mode=mode, profile_path=str(stack.profile_path), apply=True, deadline_seconds=90
                        )
                        took = time.monotonic() - started
                        time.sleep(1.0)
                    print(f"\n{mode}: {outcome.status} in {took:.1f} s ({outcome.message[:120]})")
                    print("| service | probes | failed | longest unavailable window |")
                    print("|---|---:|---:|---:|")
                    for name, (probes, failed, window) in probe.report().items():
                        print(f"| {name} | {probes} | {failed} | {window} |")
        finally:
            kubelet.stop()
            cp.stop()


if __name__ == "__main__":
    main()
