"""The dependency graph's pure parts: addresses out of env and command lines (never a value),
where an address leads from where the caller runs, and local clusters recognised on the host."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s

from stackwarden.adapters.docker import container_targets, depends_on_label
from stackwarden.adapters.kubernetes import _pod
from stackwarden.dependencies import AddressBook, Origin, refs_from_argv, refs_from_env, refs_from_links
from stackwarden.localclusters import cluster_node, cluster_process
from stackwarden.model import KubeObservation, KubeServicePort, KubeServiceState, KubeWorkloadState, PodState, Runtime
from stackwarden.placement import stack_view
from tests.support.builders import PORTS, container, process, profile, profile_data, snapshot


def _hosts(refs: Any) -> list[tuple[str, int | None, str]]:
    return [(r.host, r.port, r.source) for r in refs]


def test_env_gives_hosts_and_ports_and_never_a_secret() -> None:
    env = [
        ("DATABASE_URL", "postgres://app:hunter2@orders-db:5432/orders?sslmode=disable"),
        ("REDIS_HOST", "cache"),
        ("REDIS_PORT", "6380"),
        ("HOST", "0.0.0.0"),
        ("PORT", "8080"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092"),
        ("ConnectionStrings__Orders", "Host=pg;Port=5433;Username=app;Password=hunter2"),
        ("SPRING_DATASOURCE_URL", "jdbc:postgresql://orders-db:5432/o"),
        ("FEATURE_FLAGS", "true"),
        ("LISTEN_ADDR", "0.0.0.0:9000"),
    ]
    refs = refs_from_env(env)
    assert _hosts(refs) == [
        ("orders-db", 5432, "env DATABASE_URL"),
        ("cache", 6380, "env REDIS_HOST"),
        ("kafka-1", 9092, "env KAFKA_BOOTSTRAP_SERVERS"),
        ("kafka-2", 9092, "env KAFKA_BOOTSTRAP_SERVERS"),
        ("pg", 5433, "env ConnectionStrings__Orders"),
        ("orders-db", 5432, "env SPRING_DATASOURCE_URL"),
    ]
    assert "hunter2" not in repr(refs) and "app" not in {r.host for r in refs}


def test_command_lines_and_wait_scripts_name_what_they_wait_for() -> None:
    cases = {
        ("/app/api", "--db-host", "orders-db", "--db-port=5432"): [("orders-db", 5432)],
        ("sh", "-c", "until nc -z -w 2 orders-db 5432; do echo waiting; sleep 2; done"): [("orders-db", 5432)],
        ("pg_isready", "-h", "orders-db", "-p", "5432"): [("orders-db", 5432)],
        ("wait-for-it.sh", "db:5432", "-t", "0", "--", "npm", "start"): [("db", 5432)],
        ("dockerize", "-wait", "tcp://db:5432", "-timeout", "60s", "app"): [("db", 5432)],
        ("sh", "-c", "until nslookup orders-db.shop.svc.cluster.local; do sleep 2; done"): [
            ("orders-db.shop.svc.cluster.local", None)
        ],
        ("sh", "-c", 'exec "$@"', "server", "--redis-url=redis://cache:6379/0"): [("cache", 6379)],
        ("/app/api", "--port", "8080", "--log-level", "debug"): [],
    }
    for argv, wanted in cases.items():
        assert [(r.host, r.port) for r in refs_from_argv(argv)] == wanted, argv


def test_compose_labels_links_and_inspect_give_dependencies_without_values() -> None:
    assert depends_on_label("db:service_started:false,cache:service_healthy:true") == ("db", "cache")
    assert _hosts(refs_from_links(["/shop-db-1:/shop-api-1/database"])) == [("database", None, "link shop-db-1")]
    inspect = {
        "Config": {"Env": ["DATABASE_URL=postgres://u:hunter2@db:5432/x", "PATH=/bin"], "Cmd": ["api", "--db-host=db"]},
        "NetworkSettings": {"Networks": {"shop_default": {"Links": ["shop-cache-1:cache"]}}},
    }
    refs = container_targets(inspect)
    assert {(r.host, r.port) for r in refs} == {("db", 5432), ("db", None), ("cache", None)}
    assert "hunter2" not in json.dumps([r.model_dump() for r in refs])


def _kube_profile() -> Any:
    data = profile_data(default_mode="k8s-only")
    data["services"]["postgres"]["kubernetes"] = {"name": "postgres", "service": "postgres"}
    return profile(**data)


def _kube_snapshot() -> Any:
    workload = KubeWorkloadState(
        kind="Deployment", name="postgres", namespace="seedstack", uid="w", resource_version="1", replicas=1,
        selector={"app": "postgres"},
    )  # fmt: skip
    svc = KubeServiceState(
        name="postgres", namespace="seedstack", type="ClusterIP", cluster_ip="10.96.0.7",
        ports=(KubeServicePort(port=5432),), selector={"app": "postgres"},
    )  # fmt: skip
    pod = PodState(name="postgres-0", namespace="seedstack", uid="p", phase="Running", labels={"app": "postgres"})
    kube = KubeObservation(namespace="seedstack", workloads=(workload,), pods=(pod,), services=(svc,))
    return snapshot(containers=(container("postgres"),), kubernetes=kube)


def test_an_address_leads_where_the_caller_can_reach_it() -> None:
    prof, snap = _kube_profile(), _kube_snapshot()
    book = AddressBook(snap, prof, stack_view(snap, prof))
    pod, bridged, host = Origin(Runtime.KUBERNETES), Origin(Runtime.COMPOSE), Origin(Runtime.HOST)
    for name in ("postgres", "postgres.seedstack", "postgres.seedstack.svc.cluster.local", "10.96.0.7"):
        found = book.resolve(name, 5432, pod)
        assert (found.service, found.runtime) == ("postgres", Runtime.KUBERNETES), name
    assert book.resolve("postgres", 5433, pod).kind == "port"  # the Service serves 5432 only
    assert (book.resolve("postgres", 5432, bridged).runtime) is Runtime.COMPOSE
    assert book.resolve(container("postgres").name, None, bridged).service == "postgres"
    loop = book.resolve("127.0.0.1", PORTS["postgres"], bridged)
    assert loop.service is None and loop.kind == "loopback"
    for origin in (host, Origin(Runtime.COMPOSE, host_networked=True)):
        found = book.resolve("127.0.0.1", PORTS["postgres"], origin)
        assert found.service == "postgres" and found.host_port
    assert book.resolve("host.docker.internal", PORTS["postgres"], bridged).service == "postgres"
    outside = book.resolve("10.0.0.5", 5432, pod)
    assert outside.service is None and "10.0.0.5:5432, which no profile service provides" in outside.how


def test_local_clusters_are_recognised_by_executable_arguments_and_labels() -> None:
    forward = process(
        4100,
        "kubectl",
        ("kubectl", "--context", "kind-dev", "-n", "shop", "port-forward", "svc/orders-db", "5432:5432"),
    )
    role = cluster_process(forward)
    assert role is not None and (role.how, role.target, role.namespace) == (
        "kubectl port-forward",
        "svc/orders-db",
        "shop",
    )
    assert cluster_process(process(4101, "kubectl", ("kubectl", "get", "pods"))) is None
    tunnel = process(
        4102, "ssh", ("ssh", "-N", "-i", "/root/.minikube/machines/minikube/id_rsa", "-L", "80:10.1.2.3:80")
    )
    assert cluster_process(tunnel) is not None
    assert cluster_process(process(4103, "k3s-server", ("/usr/local/bin/k3s", "server"), exe="/usr/local/bin/k3s"))
    assert cluster_process(process(4104, "postgres")) is None
    assert cluster_node({"io.x-k8s.kind.cluster": "dev"}, "kindest/node:v1.29.2") == "kind cluster dev"
    assert cluster_node({"k3d.cluster": "dev", "k3d.role": "loadbalancer"}, "ghcr.io/k3d-io/k3d-proxy:5") == (
        "k3d cluster dev"
    )
    assert cluster_node({"name.minikube.sigs.k8s.io": "minikube"}, "gcr.io/k8s-minikube/kicbase:v0.0.42") == (
        "minikube profile minikube"
    )
    assert cluster_node({}, "postgres:16") is None


def test_pod_conversion_reads_init_containers_ports_and_env_addresses() -> None:
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="api-1", namespace="ns", uid="u1", labels={"app": "api"}),
        spec=k8s.V1PodSpec(
            init_containers=[
                k8s.V1Container(
                    name="wait-for-db",
                    image="busybox",
                    command=["sh", "-c", "until nc -z $(DB) 5432; do sleep 1; done"],
                    env=[k8s.V1EnvVar(name="DB", value="orders-db")],
                )
            ],
            containers=[
                k8s.V1Container(
                    name="api",
                    image="api:1",
                    ports=[k8s.V1ContainerPort(name="http", container_port=8080)],
                    env=[
                        k8s.V1EnvVar(name="DATABASE_URL", value="postgres://app:hunter2@orders-db:5432/o"),
                        k8s.V1EnvVar(
                            name="DB_PASSWORD",
                            value_from=k8s.V1EnvVarSource(secret_key_ref=k8s.V1SecretKeySelector(name="s", key="k")),
                        ),
                    ],
                )
            ],
            volumes=[
                k8s.V1Volume(
                    name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name="data-api")
                )
            ],
        ),
        status=k8s.V1PodStatus(
            phase="Pending",
            pod_ip="10.244.0.9",
            init_container_statuses=[
                k8s.V1ContainerStatus(
                    name="wait-for-db",
                    image="busybox",
                    image_id="",
                    ready=False,
                    restart_count=4,
                    state=k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="CrashLoopBackOff")),
                    last_state=k8s.V1ContainerState(
                        terminated=k8s.V1ContainerStateTerminated(exit_code=1, reason="Error")
                    ),
                )
            ],
            container_statuses=[
                k8s.V1ContainerStatus(
                    name="api",
                    image="api:1",
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="PodInitializing")),
                )
            ],
        ),
    )
    state = _pod(pod)
    assert state.waiting_reason == "PodInitializing"
    init = state.crashing_init
    assert init is not None and (init.name, init.recorded_exit_code, init.restart_count) == ("wait-for-db", 1, 4)
    assert state.is_crash_looping and state.crashing_container == init
    assert [(t.host, t.port) for t in init.targets] == [("orders-db", 5432)]  # $(DB) expanded
    (api,) = state.containers
    assert [(p.name, p.port) for p in api.ports] == [("http", 8080)]
    assert [(t.host, t.port) for t in api.targets] == [("orders-db", 5432)]
    assert state.claims == ("data-api",) and state.pod_ip == "10.244.0.9"
    assert "hunter2" not in state.model_dump_json()
