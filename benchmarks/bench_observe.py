"""Benchmark: one observation pass of the real Docker engine and the host (no Prefect).

    .venv/bin/python benchmarks/bench_observe.py [--repeat 7]

Prints the median and max wall time of observe_docker() and observe_host() on this machine as
it is now (state the number of containers with the result).
"""

from __future__ import annotations

import argparse
import statistics
import time

from stackwarden.adapters.docker import observe_docker
from stackwarden.adapters.host import observe_host


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    docker_ms, host_ms = [], []
    containers = 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        containers = len(observe_docker().containers)
        t1 = time.perf_counter()
        observe_host(frozenset({1000, 2000, 5432, 6379}))
        t2 = time.perf_counter()
        docker_ms.append((t1 - t0) * 1000)
        host_ms.append((t2 - t1) * 1000)
    print(f"containers on the engine: {containers}")
    print(f"observe_docker: median {statistics.median(docker_ms):.1f} ms, max {max(docker_ms):.1f} ms")
    print(f"observe_host:   median {statistics.median(host_ms):.1f} ms, max {max(host_ms):.1f} ms")


if __name__ == "__main__":
    main()
