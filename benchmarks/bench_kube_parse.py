"""Benchmark: decoding a 5,000-pod list response whole (``json.loads``) versus item by item
(``iter_list_items``), each pod converted to the snapshot's ``PodState``. Pure; no cluster.

    .venv/bin/python -m benchmarks.bench_kube_parse whole
    .venv/bin/python -m benchmarks.bench_kube_parse stream

Run each in its own process: the peak RSS it prints is the process's.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

from stackwarden.adapters import kubernetes as adapter

STAMP = "2026-11-28T23:00:00Z"


def pod(i: int) -> dict[str, Any]:
    """A running pod of a Deployment as the apiserver lists it (managedFields included)."""
    fields = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:filler": {}}}}
    return {
        "metadata": {
            "name": f"filler-abc-{i}",
            "namespace": "ns",
            "uid": f"uid-{i}",
            "resourceVersion": str(i),
            "labels": {"app": "filler", "pod-template-hash": "abc"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "filler-abc", "uid": "x"}],
            "managedFields": [
                {"manager": m, "operation": "Update", "time": STAMP, "fieldsType": "FieldsV1", "fieldsV1": fields}
                for m in ("kube-controller-manager", "fake-kubelet")
            ],
        },
        "spec": {
            "containers": [{"name": "filler", "image": "example.invalid/filler:1", "resources": {}}],
            "nodeName": "node",
            "restartPolicy": "Always",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": STAMP}
                for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "containerStatuses": [
                {
                    "name": "filler",
                    "ready": True,
                    "restartCount": 0,
                    "image": "example.invalid/filler:1",
                    "state": {"running": {"startedAt": STAMP}},
                    "lastState": {},
                }
            ],
            "hostIP": "10.0.0.1",
            "podIP": "10.1.0.1",
            "startTime": STAMP,
        },
    }


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "stream"
    items = [pod(i) for i in range(5000)]
    data = json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}).encode()
    del items
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    started = time.perf_counter()
    if mode == "whole":
        pods = [adapter._pod(adapter._Raw(i)) for i in json.loads(data)["items"]]
    else:
        pods = [adapter._pod(adapter._Raw(i)) for i in adapter.iter_list_items(data.decode())]
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{mode}: {len(data) / 2**20:.1f} MiB of JSON, {len(pods)} pods, {seconds:.2f} s, peak +{peak - before} MiB")


if __name__ == "__main__":
    main()
