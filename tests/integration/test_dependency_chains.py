"""The cause behind the cause, on real parts: a corpus of multi-service situations, each with
the chain the audit must name.

One compose project (plus a second one for a dependency defined elsewhere) and one namespace
serve every situation at once, so the whole corpus costs one ``compose up``, one set of
Deployments played by the fake kubelet, and one audit (``pipeline.observe_all``, the audit's
own path). Crash logs are printed as the real runtimes print them (Node, Python, Go, Java, Rust,
Ruby, busybox and wait tools); the dependencies' states are real: stopped, never created,
crash-looping, dead, OOM-killed and unhealthy containers; Deployments scaled to 0, pods that
cannot pull, mount, get a sandbox, be scheduled or pass a probe, a node that is not ready,
an evicted pod, Services whose targetPort nothing declares, and a node whose kubelet hangs on
log reads.
"""

from __future__ import annotations

import contextlib
import secrets
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from stackwarden.model import CrashCategory, Finding, Runtime, Severity, Snapshot
from stackwarden.pipeline import observe_all
from stackwarden.profiles import load_profile
from stackwarden.rules import diagnose
from tests.support.compose import Project, compose_project, tcp_service, unique_name
from tests.support.kube import (
    ConfigError,
    CrashLoopBackOff,
    Evicted,
    FakeKubelet,
    ImagePullFailure,
    InitCrashLoop,
    InitWaiting,
    NodeNotReady,
    Running,
    Stuck,
    Unschedulable,
    cluster_ip_service,
    container,
    delete_namespace,
    deployment,
    new_namespace,
    pod_spec,
)
from tests.support.realparts import IMAGE, free_ports, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kube]


# ------------------------------------------------------------------------------ the corpus
@dataclass(frozen=True)
class Situation:
    """One multi-service situation: the dependent's finding and the chain it must name."""

    name: str
    finding: str
    category: CrashCategory
    chain: tuple[str, ...] = ()
    root: str | None = None
    says: tuple[str, ...] = ()
    severity: Severity | None = None
    commands: tuple[str, ...] = field(default=())


def _printf(lines: str) -> str:
    """A shell command that prints ``lines`` exactly (to stderr, as a crash does)."""
    return "printf '%s\\n' " + " ".join(shlex.quote(line) for line in lines.strip("\n").splitlines()) + " >&2"


def crasher(log: str, code: int = 1, *, restart: str = "always", **extra: Any) -> dict[str, Any]:
    """A container that prints a real runtime's crash and exits ``code`` (restarted: a crash loop)."""
    return {"image": IMAGE, "command": ["sh", "-c", f"{_printf(log)}; exit {code}"], "restart": restart, **extra}


def sleeper(**extra: Any) -> dict[str, Any]:
    """A container that runs and listens on nothing (stopped later, or unhealthy, per situation)."""
    return {"image": IMAGE, "command": ["sleep", "3600"], "init": True, **extra}


NODE_ENOTFOUND = """
node:internal/process/promises:288
            triggerUncaughtException(err, true /* fromPromise */);
            ^

Error: getaddrinfo ENOTFOUND c01-db
    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26) {
  errno: -3008,
  code: 'ENOTFOUND',
  syscall: 'getaddrinfo',
  hostname: 'c01-db'
}

Node.js v20.11.1
"""
PY_UNRESOLVED = """
Traceback (most recent call last):
  File "/app/worker.py", line 14, in <module>
    conn = psycopg2.connect(os.environ["DATABASE_URL"])
  File "/usr/local/lib/python3.12/site-packages/psycopg2/__init__.py", line 122, in connect
    conn = _connect(dsn, connection_factory=connection_factory, **kwasync)
psycopg2.OperationalError: could not translate host name "c02-db" to address: Name or service not known
"""
GO_NO_SUCH_HOST = """
2025/11/25 12:41:07 starting ledger api
2025/11/25 12:41:07 redis: dial tcp: lookup c03-cache on 127.0.0.11:53: no such host
"""
REDIS_CONFIG = """
1:C 25 Nov 2025 12:40:01.118 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo
*** FATAL CONFIG FILE ERROR (Redis 7.2.4) ***
Reading the configuration file, at line 2
>>> 'maxmemory 2gigs'
Invalid argument
"""
NODE_EAI_AGAIN = """
Error: getaddrinfo EAI_AGAIN c04-api
    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26) {
  errno: -3001,
  code: 'EAI_AGAIN',
  syscall: 'getaddrinfo',
  hostname: 'c04-api'
}
"""
JAVA_UNKNOWN_HOST = """
Exception in thread "main" org.springframework.dao.DataAccessResourceFailureException: Failed to obtain JDBC Connection
	at com.example.orders.OrdersApplication.main(OrdersApplication.java:12)
Caused by: java.net.UnknownHostException: c04-db: Name or service not known
	at java.base/java.net.Inet6AddressImpl.lookupAllHostAddr(Native Method)
"""
JAVA_REFUSED_NO_HOST = """
2025-11-25T12:52:01.441Z ERROR 1 --- [           main] o.s.boot.SpringApplication               : Application run failed
org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC Connection
Caused by: java.net.ConnectException: Connection refused
	at java.base/sun.nio.ch.Net.pollConnect(Native Method)
	at java.base/sun.nio.ch.Net.pollConnectNow(Net.java:672)
"""
PY_TIMEOUT_EXTERNAL = """
Traceback (most recent call last):
  File "/app/migrate.py", line 5, in <module>
    with psycopg.connect(DSN, connect_timeout=5) as conn:
psycopg.OperationalError: connection failed: connection to server at "10.0.0.5", port 5432 failed: timeout expired
"""
GO_WRONG_PORT = (
    "2025/11/25 12:41:07 failed to connect to `host=c07-db user=app database=orders`: "
    "dial error (dial tcp c07-db:5433: connect: connection refused)"
)
REDIS_PY_LINK = """
Traceback (most recent call last):
  File "/app/worker.py", line 9, in <module>
    r.ping()
redis.exceptions.ConnectionError: Error -2 connecting to database:6379. Name or service not known.
"""
WAIT_FOR_IT = "wait-for-it.sh: waiting 15 seconds for c10-db:5432"
WAIT_TIMEOUT = """
wait-for-it.sh: waiting 15 seconds for c11-db:5432
wait-for-it.sh: timeout occurred after waiting 15 seconds for c11-db:5432
"""
PG_OWNERSHIP = """
2025-11-25 12:40:01.118 UTC [1] FATAL:  data directory "/var/lib/postgresql/data" has wrong ownership
2025-11-25 12:40:01.118 UTC [1] HINT:  The server must be owned by the user that owns the data directory.
"""
RUST_LOOKUP = "\n".join(
    (
        "thread 'main' panicked at src/main.rs:22:58:",
        "called `Result::unwrap()` on an `Err` value: Io(Custom { kind: Uncategorized, error: "
        '"failed to lookup address information: Name or service not known" })',
        "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
    )
)
RUBY_REFUSED = "\n".join(
    (
        "/usr/local/bundle/gems/pg-1.5.4/lib/pg/connection.rb:701:in `async_connect_or_reset': connection to server "
        'at "c15-db" (172.18.0.9), port 5432 failed: Connection refused (PG::ConnectionBad)',
        "\tIs the server running on that host and accepting TCP/IP connections?",
    )
)
NODE_RESET = """
Error: read ECONNRESET
    at TCP.onStreamRead (node:internal/stream_base_commons:217:20) {
  errno: -104,
  code: 'ECONNRESET',
  syscall: 'read'
}
"""


def compose_services(ports: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Project A: every compose situation's services."""
    refused_loopback = f"Error: connect ECONNREFUSED 127.0.0.1:{ports['c08-db']}"
    return {
        # c01: Node, the dependency stopped by hand
        "c01-api": crasher(NODE_ENOTFOUND),
        "c01-db": sleeper(),
        # c02: Python, the dependency never created (a profile nobody enabled)
        "c02-worker": crasher(PY_UNRESOLVED, environment={"DATABASE_URL": "postgres://app:s3cr3t@c02-db:5432/app"}),
        "c02-db": {**sleeper(), "profiles": ["manual"]},
        # c03: Go, the dependency crash-loops on its own configuration
        "c03-api": crasher(GO_NO_SUCH_HOST),
        "c03-cache": crasher(REDIS_CONFIG),
        # c04: three levels: web -> api -> db (stopped)
        "c04-web": crasher(NODE_EAI_AGAIN),
        "c04-api": crasher(JAVA_UNKNOWN_HOST),
        "c04-db": sleeper(),
        # c05: Java names no address; its environment does
        "c05-api": crasher(
            JAVA_REFUSED_NO_HOST, environment={"SPRING_DATASOURCE_URL": "jdbc:postgresql://c05-db:5432/o"}
        ),
        "c05-db": sleeper(),
        # c06: an address outside the profile, while the database it is configured with is up
        "c06-migrate": crasher(PY_TIMEOUT_EXTERNAL, environment={"DATABASE_URL": "postgres://app:pw@c06-db:5432/app"}),
        "c06-db": tcp_service(5432, None),
        # c07: the dependency is up, the port is wrong
        "c07-api": crasher(GO_WRONG_PORT),
        "c07-db": tcp_service(5432, None),
        # c08: 127.0.0.1 inside a bridged container
        "c08-api": crasher(f"> api@1.0.0 start\n> node server.js\n\n{refused_loopback}"),
        "c08-db": tcp_service(5432, f"127.0.0.1:{ports['c08-db']}:5432"),
        # c09: a link alias
        "c09-worker": crasher(REDIS_PY_LINK, links=["c09-cache:database"]),
        "c09-cache": sleeper(),
        # c10: a wait that never ends in a container that is up (and unhealthy)
        "c10-worker": {
            "image": IMAGE,
            "command": ["sh", "-c", f"while true; do echo '{WAIT_FOR_IT}'; sleep 1; done"],
            "healthcheck": {"test": ["CMD", "false"], "interval": "1s", "timeout": "1s", "retries": 1},
        },
        "c10-db": sleeper(),
        # c11: a wait tool that gave up; its dependency died on its own
        "c11-worker": crasher(WAIT_TIMEOUT, 124, restart="no"),
        "c11-db": crasher(PG_OWNERSHIP, 1, restart="no"),
        # c13: the dependency runs only in the cluster
        "c13-web": crasher(NODE_ENOTFOUND.replace("c01-db", "c13-search")),
        # c14: Rust names no address; its command line does
        "c14-api": {
            "image": IMAGE,
            "command": ["sh", "-c", f"{_printf(RUST_LOOKUP)}; exit 101", "server", "--db-host", "c14-db"],
            "restart": "always",
        },
        "c14-db": sleeper(),
        # c15: Ruby, the dependency is up but unhealthy
        "c15-app": crasher(RUBY_REFUSED),
        "c15-db": sleeper(healthcheck={"test": ["CMD", "false"], "interval": "1s", "timeout": "1s", "retries": 1}),
        # c16: Node reset by a dependency the kernel killed for memory
        "c16-api": crasher(NODE_RESET, environment={"REDIS_URL": "redis://c16-cache:6379/0"}),
        "c16-cache": {
            "image": IMAGE,
            "command": ["sh", "-c", "echo loading dataset; tail /dev/zero"],
            "mem_limit": "16m",
            "memswap_limit": "16m",
        },
        # c17: two services that wait for each other
        "c17-a": crasher(NODE_ENOTFOUND.replace("c01-db", "c17-b")),
        "c17-b": crasher(NODE_ENOTFOUND.replace("c01-db", "c17-a")),
        # k17: a compose service a pod tries to reach by name
        "c-ledger": tcp_service(8080, None),
    }


# ------------------------------------------------------------------------------ kubernetes
def _go_dial(host: str, port: int, how: str = "connect: connection refused") -> str:
    return f"2025/11/25 12:41:07 starting\n2025/11/25 12:41:07 dial tcp {host}:{port}: {how}\n"


def _node_refused(ip: str, port: int) -> str:
    return (
        "node:internal/process/promises:289\n            triggerUncaughtException(err, true);\n            ^\n\n"
        f"Error: connect ECONNREFUSED {ip}:{port}\n"
        "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) {\n"
        f"  errno: -111,\n  code: 'ECONNREFUSED',\n  syscall: 'connect',\n  address: '{ip}',\n  port: {port}\n}}\n"
    )


SERVICES = {  # Service name -> (port, targetPort or None)
    "k01-db": (5432, None),
    "k02-db": (5432, None),
    "k03-mq": (5672, None),
    "k04-api": (8080, None),
    "k05-cache": (6379, None),
    "k06-db": (5432, None),
    "k07-api": (80, "8081"),
    "k08-search": (9200, "http"),
    "k09-api": (8080, None),
    "k10-search": (9200, None),
    "k11-db": (5432, None),
    "k12-auth": (8080, None),
    "k13-db": (5432, None),
    "k15-db": (5432, None),
    "k16-api": (8080, None),
    "k16-db": (5432, None),
    "k19-cache": (6379, None),
}


def _service(name: str, port: int, target: str | None) -> k8s.V1Service:
    svc: Any = cluster_ip_service(name, name, port)
    if target is not None:
        svc.spec.ports[0].target_port = int(target) if target.isdigit() else target
    return svc


def kube_situations(ips: dict[str, str], hung_node: str) -> list[tuple[str, int, Any, k8s.V1PodSpec | None]]:
    """(Deployment, replicas, behaviour, pod spec) of every cluster situation."""
    wait_mq = ["sh", "-c", "until nc -z k03-mq 5672; do echo waiting for k03-mq:5672; sleep 2; done"]
    wait_cache = ["sh", "-c", "until nc -z k19-cache 6380; do echo waiting for k19-cache:6380; sleep 2; done"]
    spring = {"SPRING_DATASOURCE_URL": "jdbc:postgresql://k13-db:5432/app", "SPRING_DATASOURCE_PASSWORD": "s3cr3t"}
    return [
        # k01: the issue's own example
        ("k01-db", 0, Running(), None),
        ("k01-api", 1, CrashLoopBackOff(logs=_go_dial(ips["k01-db"], 5432)), None),
        # k02: an init container crash-loops on a dependency that cannot pull its image
        ("k02-db", 1, ImagePullFailure(), None),
        (
            "k02-api",
            1,
            InitCrashLoop(
                logs="waiting for k02-db:5432\nnc: can't connect to remote host ("
                + ips["k02-db"]
                + "): Connection refused\n"
            ),
            pod_spec("k02-api", init=[container("wait-for-db", command=["sh", "-c", "nc -z -w 2 k02-db 5432"])]),
        ),
        # k03: an init container waits forever for a dependency that cannot be scheduled
        ("k03-mq", 1, Unschedulable(), None),
        (
            "k03-consumer",
            1,
            InitWaiting(logs="waiting for k03-mq:5672\nwaiting for k03-mq:5672\nwaiting for k03-mq:5672\n"),
            pod_spec("k03-consumer", init=[container("wait-for-mq", command=wait_mq)]),
        ),
        # k04: the dependency's volume cannot be mounted
        ("k04-api", 1, Stuck("FailedMount"), pod_spec("k04-api", ports={"http": 8080})),
        ("k04-web", 1, CrashLoopBackOff(logs=_node_refused(ips["k04-api"], 8080)), None),
        # k05: the dependency gets no sandbox
        ("k05-cache", 1, Stuck("FailedCreatePodSandBox"), None),
        (
            "k05-api",
            1,
            CrashLoopBackOff(
                logs='Traceback (most recent call last):\n  File "/app/main.py", line 9, in <module>\n    r.ping()\n'
                "redis.exceptions.ConnectionError: Error 111 connecting to k05-cache:6379. Connection refused.\n"
            ),
            None,
        ),
        # k06: the dependency's volume does not attach
        ("k06-db", 1, Stuck("FailedAttachVolume"), pod_spec("k06-db", claims={"data": "data-k06-db"})),
        (
            "k06-api",
            1,
            CrashLoopBackOff(
                logs='Exception in thread "main" org.postgresql.util.PSQLException: Connection to k06-db:5432 refused. '
                "Check that the hostname and port are correct and that the postmaster is accepting TCP/IP "
                "connections.\n"
                "\tat org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl(ConnectionFactoryImpl.java:346)\n"
            ),
            None,
        ),
        # k07: the Service sends port 80 to 8081; the pods declare 8080
        ("k07-api", 1, Running(), pod_spec("k07-api", ports={"http": 8080})),
        ("k07-web", 1, CrashLoopBackOff(logs=_node_refused(ips["k07-api"], 80)), None),
        # k08: a named targetPort no container declares: no endpoint, its client is refused
        ("k08-search", 1, Running(), pod_spec("k08-search", ports={"web": 9200})),
        ("k08-api", 1, CrashLoopBackOff(logs=_go_dial("k08-search", 9200)), None),
        # k09: the dependency is killed by its liveness probe
        (
            "k09-api",
            1,
            CrashLoopBackOff(
                exit_code=137,
                logs="INFO listening on :8080\n",
                liveness_failure="HTTP probe failed with statuscode: 500",
            ),
            pod_spec("k09-api", ports={"http": 8080}),
        ),
        ("k09-gateway", 1, CrashLoopBackOff(logs=_go_dial("k09-api", 8080)), None),
        # k10: the dependency was evicted and its replacement cannot be scheduled
        (
            "k10-search",
            1,
            Evicted(
                then=Unschedulable(
                    "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/memory-pressure: }. "
                    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
                )
            ),
            None,
        ),
        ("k10-api", 1, CrashLoopBackOff(logs=_go_dial(ips["k10-search"], 9200, "i/o timeout")), None),
        # k11: the dependency's node is not ready
        ("k11-db", 1, NodeNotReady(), None),
        (
            "k11-api",
            1,
            CrashLoopBackOff(
                logs='Traceback (most recent call last):\n  File "/app/db.py", line 4, in <module>\n'
                f'psycopg.OperationalError: connection failed: connection to server at "k11-db" ({ips["k11-db"]}), '
                "port 5432 failed: timeout expired\n"
            ),
            None,
        ),
        # k12: the dependency fails its readiness probe
        ("k12-auth", 1, Running(ready=False, readiness_failure="HTTP probe failed with statuscode: 503"), None),
        (
            "k12-api",
            1,
            CrashLoopBackOff(
                logs="requests.exceptions.ConnectionError: HTTPConnectionPool(host='k12-auth', port=8080): Max retries "
                "exceeded with url: /token (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at "
                "0x7f3c2a1b5d90>: Failed to establish a new connection: [Errno 111] Connection refused'))\n"
            ),
            None,
        ),
        # k13: Java names no address; the pod's env does
        ("k13-db", 0, Running(), None),
        ("k13-api", 1, CrashLoopBackOff(logs=JAVA_REFUSED_NO_HOST), pod_spec("k13-api", env=spring)),
        # k14: an address outside the profile, while the cache it is configured with is up
        (
            "k14-api",
            1,
            CrashLoopBackOff(logs=_go_dial("10.0.0.5", 5432, "i/o timeout")),
            pod_spec("k14-api", env={"REDIS_ADDR": "k19-cache:6379"}),
        ),
        # k15: the dependency misses a Secret key
        ("k15-db", 1, ConfigError(), None),
        ("k15-api", 1, CrashLoopBackOff(logs=_node_refused(ips["k15-db"], 5432)), None),
        # k16: three levels in the cluster
        ("k16-db", 0, Running(), None),
        ("k16-api", 1, CrashLoopBackOff(logs=_go_dial("k16-db", 5432)), None),
        (
            "k16-web",
            1,
            CrashLoopBackOff(
                logs="requests.exceptions.ConnectionError: HTTPConnectionPool(host='k16-api', port=8080): Max retries "
                "exceeded with url: / (Caused by NewConnectionError('Failed to establish a new connection: "
                "[Errno 111] Connection refused'))\n"
            ),
            None,
        ),
        # k17: a pod names a compose service
        ("k17-api", 1, CrashLoopBackOff(logs=NODE_ENOTFOUND.replace("c01-db", "c-ledger")), None),
        # k18: on a node whose kubelet hangs on log reads
        ("k18-api", 1, None, pod_spec("k18-api", node_name=hung_node)),
        # k19: waits for a port its dependency's Service does not serve
        ("k19-cache", 1, Running(), pod_spec("k19-cache", ports={"redis": 6379})),
        (
            "k19-worker",
            1,
            InitWaiting(logs="waiting for k19-cache:6380\nwaiting for k19-cache:6380\n"),
            pod_spec("k19-worker", init=[container("wait-for-cache", command=wait_cache)]),
        ),
        # c13: the cluster side of a dependency that runs only here
        ("c13-search", 1, Running(), None),
    ]


SITUATIONS = (
    Situation(
        "c01-node-enotfound-stopped",
        "crash-loop:c01-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("c01-api", "c01-db"),
        "service-unavailable:c01-db:compose",
        ("c01-api crashes because c01-db is stopped",),
        Severity.HIGH,
        ("start c01-db",),
    ),
    Situation(
        "c02-python-unresolved-never-created",
        "crash-loop:c02-worker",
        CrashCategory.DEPENDENCY_DOWN,
        ("c02-worker", "c02-db"),
        "service-unavailable:c02-db:compose",
        ("c02-worker crashes because c02-db has no container in compose project",),
        Severity.HIGH,
        ("up -d c02-db",),
    ),
    Situation(
        "c03-go-no-such-host-crashing-cache",
        "crash-loop:c03-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("c03-api", "c03-cache"),
        "crash-loop:c03-cache",
        ("c03-api crashes because c03-cache crash-loops (configuration",),
        Severity.CRITICAL,
    ),
    Situation(
        "c04-three-levels-web",
        "crash-loop:c04-web",
        CrashCategory.DEPENDENCY_DOWN,
        ("c04-web", "c04-api", "c04-db"),
        "service-unavailable:c04-db:compose",
        ("c04-web crashes because c04-api crashes because c04-db is stopped",),
        Severity.HIGH,
    ),
    Situation(
        "c04-three-levels-api",
        "crash-loop:c04-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("c04-api", "c04-db"),
        "service-unavailable:c04-db:compose",
        ("c04-api crashes because c04-db is stopped",),
    ),
    Situation(
        "c05-java-no-address-env-declares-it",
        "crash-loop:c05-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("c05-api", "c05-db"),
        "service-unavailable:c05-db:compose",
        ("the log names no address", "env SPRING_DATASOURCE_URL -> c05-db:5432"),
    ),
    Situation(
        "c06-outside-the-profile",
        "crash-loop:c06-migrate",
        CrashCategory.CONFIGURATION,
        says=(
            "connects to 10.0.0.5:5432, which no profile service provides",
            "What c06-migrate is configured to reach: c06-db (env DATABASE_URL, ready in compose)",
        ),
        severity=Severity.CRITICAL,
    ),
    Situation(
        "c07-dependency-up-wrong-port",
        "crash-loop:c07-api",
        CrashCategory.CONFIGURATION,
        says=("c07-db:5433, the compose service c07-db, which is ready in compose", "check the port"),
    ),
    Situation(
        "c08-loopback-inside-a-container",
        "crash-loop:c08-api",
        CrashCategory.CONFIGURATION,
        says=("inside its container that address is its container itself",),
    ),
    Situation(
        "c09-link-alias",
        "crash-loop:c09-worker",
        CrashCategory.DEPENDENCY_DOWN,
        ("c09-worker", "c09-cache"),
        "service-unavailable:c09-cache:compose",
        ("c09-worker crashes because c09-cache is stopped", "database:6379, the compose service c09-cache"),
    ),
    Situation(
        "c10-wait-never-ends-unhealthy",
        "service-unavailable:c10-worker:compose",
        CrashCategory.DEPENDENCY_DOWN,
        ("c10-worker", "c10-db"),
        "service-unavailable:c10-db:compose",
        ("c10-worker waits because c10-db is stopped",),
    ),
    Situation(
        "c11-wait-tool-gave-up-dependency-died",
        "service-unavailable:c11-worker:compose",
        CrashCategory.DEPENDENCY_DOWN,
        ("c11-worker", "c11-db"),
        "service-unavailable:c11-db:compose",
        ("c11-worker waits because c11-db died (exited, exit code 1)",),
    ),
    Situation(
        "c12-dependency-in-another-compose-project",
        "crash-loop:c12-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("c12-api", "c12-db"),
        "service-unavailable:c12-db:compose",
        ("c12-api crashes because c12-db is stopped",),
        commands=("{project_b} -f {file_b} start c12-db",),
    ),
    Situation(
        "c13-dependency-only-in-the-cluster",
        "crash-loop:c13-web",
        CrashCategory.DEPLOYMENT_CONFLICT,
        says=("c13-search runs only in kubernetes, where c13-web in compose cannot reach it",),
    ),
    Situation(
        "c14-rust-no-address-command-line-declares-it",
        "crash-loop:c14-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("c14-api", "c14-db"),
        "service-unavailable:c14-db:compose",
        ("command --db-host -> c14-db",),
    ),
    Situation(
        "c15-ruby-dependency-unhealthy",
        "crash-loop:c15-app",
        CrashCategory.DEPENDENCY_DOWN,
        ("c15-app", "c15-db"),
        "service-unavailable:c15-db:compose",
        ("c15-app crashes because c15-db is unhealthy",),
    ),
    Situation(
        "c16-reset-by-an-oom-killed-dependency",
        "crash-loop:c16-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("c16-api", "c16-cache"),
        "service-unavailable:c16-cache:compose",
        ("c16-api crashes because c16-cache died (exited, exit code 137",),
    ),
    Situation(
        "c17-a-cycle",
        "crash-loop:c17-a",
        CrashCategory.CONFIGURATION,
        says=("a dependency cycle",),
        severity=Severity.CRITICAL,
    ),
    Situation(
        "k01-scaled-to-zero",
        "crash-loop:k01-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k01-api", "k01-db"),
        "service-unavailable:k01-db:kubernetes",
        ("k01-api crashes because k01-db is scaled to 0",),
        Severity.HIGH,
        ("scale deployment/k01-db --replicas=1",),
    ),
    Situation(
        "k02-init-crash-loop-image-pull",
        "crash-loop:k02-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k02-api", "k02-db"),
        "service-unavailable:k02-db:kubernetes",
        ("k02-api crashes because k02-db cannot pull its image", "init container wait-for-db"),
    ),
    Situation(
        "k03-init-waits-for-unschedulable",
        "service-unavailable:k03-consumer:kubernetes",
        CrashCategory.DEPENDENCY_DOWN,
        ("k03-consumer", "k03-mq"),
        "service-unavailable:k03-mq:kubernetes",
        ("k03-consumer waits because k03-mq cannot be scheduled",),
    ),
    Situation(
        "k04-failed-mount",
        "crash-loop:k04-web",
        CrashCategory.DEPENDENCY_DOWN,
        ("k04-web", "k04-api"),
        "service-unavailable:k04-api:kubernetes",
        ("k04-web crashes because k04-api cannot mount a volume",),
    ),
    Situation(
        "k05-failed-sandbox",
        "crash-loop:k05-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k05-api", "k05-cache"),
        "service-unavailable:k05-cache:kubernetes",
        ("k05-api crashes because k05-cache cannot get a pod sandbox",),
    ),
    Situation(
        "k06-failed-attach",
        "crash-loop:k06-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k06-api", "k06-db"),
        "service-unavailable:k06-db:kubernetes",
        ("k06-api crashes because k06-db cannot attach a volume",),
    ),
    Situation(
        "k07-target-port-mismatch",
        "crash-loop:k07-web",
        CrashCategory.DEPENDENCY_DOWN,
        ("k07-web", "k07-api"),
        "service-port-mismatch:k07-api",
        ("k07-web crashes because k07-api has a Service that routes to a port its pods do not declare",),
    ),
    Situation(
        "k08-named-target-port-nobody-declares",
        "crash-loop:k08-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k08-api", "k08-search"),
        "service-port-mismatch:k08-search",
        ("k08-api crashes because k08-search has a Service that routes to a port its pods do not declare",),
        Severity.HIGH,
    ),
    Situation(
        "k09-liveness-kills-the-dependency",
        "crash-loop:k09-gateway",
        CrashCategory.DEPENDENCY_DOWN,
        ("k09-gateway", "k09-api"),
        "crash-loop:k09-api",
        ("k09-gateway crashes because k09-api crash-loops (configuration: Unhealthy: Liveness probe failed",),
        Severity.CRITICAL,
    ),
    Situation(
        "k10-evicted-then-unschedulable",
        "crash-loop:k10-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k10-api", "k10-search"),
        "service-unavailable:k10-search:kubernetes",
        ("k10-api crashes because k10-search cannot be scheduled",),
    ),
    Situation(
        "k11-node-not-ready",
        "crash-loop:k11-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k11-api", "k11-db"),
        "service-unavailable:k11-db:kubernetes",
        ("k11-api crashes because k11-db runs on a node that is not ready",),
    ),
    Situation(
        "k12-readiness-probe",
        "crash-loop:k12-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k12-api", "k12-auth"),
        "service-unavailable:k12-auth:kubernetes",
        ("k12-api crashes because k12-auth fails its readiness probe",),
    ),
    Situation(
        "k13-java-no-address-pod-env-declares-it",
        "crash-loop:k13-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k13-api", "k13-db"),
        "service-unavailable:k13-db:kubernetes",
        ("k13-api crashes because k13-db is scaled to 0", "SPRING_DATASOURCE_URL"),
    ),
    Situation(
        "k14-outside-the-profile",
        "crash-loop:k14-api",
        CrashCategory.CONFIGURATION,
        says=(
            "connects to 10.0.0.5:5432, which no profile service provides",
            "What k14-api is configured to reach: k19-cache (container k14-api: env REDIS_ADDR, ready in kubernetes)",
        ),
    ),
    Situation(
        "k15-config-error",
        "crash-loop:k15-api",
        CrashCategory.DEPENDENCY_DOWN,
        ("k15-api", "k15-db"),
        "service-unavailable:k15-db:kubernetes",
        ("k15-api crashes because k15-db cannot create its container",),
    ),
    Situation(
        "k16-three-levels",
        "crash-loop:k16-web",
        CrashCategory.DEPENDENCY_DOWN,
        ("k16-web", "k16-api", "k16-db"),
        "service-unavailable:k16-db:kubernetes",
        ("k16-web crashes because k16-api crashes because k16-db is scaled to 0",),
    ),
    Situation(
        "k17-pod-names-a-compose-service",
        "crash-loop:k17-api",
        CrashCategory.DEPLOYMENT_CONFLICT,
        says=("c-ledger, the compose service c-ledger, which a pod cannot reach by name",),
    ),
    Situation(
        "k19-waits-for-a-port-the-service-does-not-serve",
        "service-unavailable:k19-worker:kubernetes",
        CrashCategory.CONFIGURATION,
        says=("Service k19-cache of k19-cache serves port(s) 6379, not 6380",),
    ),
)


# ------------------------------------------------------------------------------ the stack
@dataclass(frozen=True)
class Stack:
    project: Project
    project_b: Project
    namespace: str
    snapshot: Snapshot
    findings: dict[str, Finding]


def _profile(
    path: Path, a: Project, b: Project, *, ns: str, kubeconfig: str, ports: dict[str, int], kube: list[str]
) -> Path:
    services: dict[str, Any] = {name: {"runtime": "compose"} for name in compose_services(ports)}
    services["c02-db"] = {"runtime": "compose"}
    services["c08-db"]["ports"] = [ports["c08-db"]]
    services["c12-api"] = {"runtime": "compose"}
    services["c12-db"] = {"runtime": "compose", "ports": [ports["c12-db"]], "compose_project": b.name}
    for name in kube:
        spec: dict[str, Any] = {"name": name}
        if name in SERVICES:
            spec["service"] = name
        services[name] = {"runtime": "kubernetes", "kubernetes": spec}
    services["c13-search"] = {"runtime": "kubernetes", "kubernetes": {"name": "c13-search"}}
    doc = {
        "name": a.name,
        "default_mode": "hybrid-guarded",
        "compose": [{"project": a.name, "files": [str(a.file)]}, {"project": b.name, "files": [str(b.file)]}],
        "kubernetes": {"namespace": ns, "kubeconfig": kubeconfig, "allowed_contexts": ["stackwarden-test"]},
        "timeouts": {"connect_seconds": 3, "read_seconds": 2},
        "services": services,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _compose_settled(a: Project, b: Project) -> bool:
    """Every compose situation in the state it is about."""
    try:
        state = {s: a.inspect(s) for s in compose_services({"c08-db": 1, "c12-db": 1}) if s != "c02-db"}
        db_b = b.inspect("c12-db")
    except LookupError:
        return False
    looping = [
        s for s in state if s.startswith(("c0", "c1")) and state[s]["HostConfig"]["RestartPolicy"]["Name"] == "always"
    ]
    restarted = all(int(state[s]["RestartCount"]) >= 1 for s in looping)
    exited = all(
        state[s]["State"]["Status"] == "exited"
        for s in ("c11-worker", "c11-db", "c16-cache", "c01-db", "c04-db", "c05-db", "c09-cache", "c10-db", "c14-db")
    )
    health = all((state[s]["State"].get("Health") or {}).get("Status") == "unhealthy" for s in ("c10-worker", "c15-db"))
    return restarted and exited and health and db_b["State"]["Status"] == "exited"


@pytest.fixture(scope="module")
def stack(control_plane: Any, kubelet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("chains")
    ports = dict(zip(("c08-db", "c12-db"), free_ports(2), strict=True))
    api = control_plane.admin_api_client()
    ns = new_namespace(api, "swtest-chains")
    hung = FakeKubelet(
        control_plane.admin_kubeconfig,
        node_name=f"swtest-hung-{secrets.token_hex(3)}",
        bind_unscheduled=False,
        hang_logs=True,
        delete_node_on_stop=True,
    )
    with contextlib.ExitStack() as stack_:
        stack_.callback(delete_namespace, api, ns)
        stack_.enter_context(hung)
        core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        ips: dict[str, str] = {}
        for name, (port, target) in SERVICES.items():
            created: Any = core.create_namespaced_service(ns, _service(name, port, target))
            ips[name] = str(created.spec.cluster_ip)
        hung.set_behaviour(CrashLoopBackOff(logs=_go_dial("k18-db", 5432)), selector="app=k18-api", namespace=ns)
        situations = kube_situations(ips, hung.node_name)
        for name, replicas, behaviour, spec in situations:
            if behaviour is not None:
                kubelet.set_behaviour(behaviour, selector=f"app={name}", namespace=ns)
            apps.create_namespaced_deployment(ns, deployment(name, replicas, spec=spec))
        project_b = stack_.enter_context(
            compose_project(
                tmp, unique_name("swtest-chainb"), {"c12-db": sleeper(ports=[f"127.0.0.1:{ports['c12-db']}:5432"])}
            )
        )
        refused = f"Error: connect ECONNREFUSED 127.0.0.1:{ports['c12-db']}"
        services = compose_services(ports)
        services["c12-api"] = crasher(f"> api@2.1.0 start\n> node index.js\n\n{refused}", network_mode="host")
        project = stack_.enter_context(compose_project(tmp, unique_name("swtest-chain"), services))
        # stopped first (by hand: the engine stops restarting them), so `down` never races a restart
        # for the project's network
        stack_.callback(project.compose, "stop", "--timeout", "0", check=False)
        project.compose("stop", "c01-db", "c04-db", "c05-db", "c09-cache", "c10-db", "c14-db")
        project_b.compose("stop", "c12-db")
        wait_for(lambda: _compose_settled(project, project_b), 120, "the compose situations to settle")
        kube_names = [name for name, *_ in situations if name != "c13-search"]
        _wait_pods(core, ns, kube_names)
        profile = load_profile(
            _profile(
                tmp / "profile.yaml",
                project,
                project_b,
                ns=ns,
                kubeconfig=str(control_plane.admin_kubeconfig),
                ports=ports,
                kube=kube_names,
            )
        )
        snapshot = observe_all(profile)
        findings = {f.id: f for f in diagnose(snapshot, profile)}
        yield Stack(project, project_b, ns, snapshot, findings)


def _wait_pods(core: k8s.CoreV1Api, ns: str, names: list[str]) -> None:
    """Every situation's pods exist with a status, and their events are written."""

    def settled() -> bool:
        pods = core.list_namespaced_pod(ns).items
        apps = {
            (p.metadata.labels or {}).get("app")
            for p in pods
            if p.status and (p.status.conditions or p.status.container_statuses)
        }
        reasons = {e.reason for e in core.list_namespaced_event(ns, field_selector="type=Warning").items}
        wanted = {
            "FailedMount",
            "FailedCreatePodSandBox",
            "FailedAttachVolume",
            "Unhealthy",
            "BackOff",
            "FailedScheduling",
            "Evicted",
            "NodeNotReady",
        }
        scaled = {"k01-db", "k13-db", "k16-db"}
        return set(names) - scaled <= apps and wanted <= reasons

    wait_for(settled, 90, f"the situations' pods and events in {ns}")


# ------------------------------------------------------------------------------ the tests
def test_the_corpus_is_large_and_the_cluster_stays_observed(stack: Stack) -> None:
    assert len(SITUATIONS) >= 30
    assert stack.snapshot.reachable(Runtime.KUBERNETES) and stack.snapshot.reachable(Runtime.COMPOSE)
    assert "runtime-unreachable:kubernetes" not in stack.findings


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: s.name)
def test_each_situation_names_its_chain(stack: Stack, situation: Situation) -> None:
    finding = stack.findings.get(situation.finding)
    assert finding is not None, (situation.finding, sorted(stack.findings))
    assert finding.cause is not None
    assert finding.cause.category is situation.category, (finding.cause, finding.summary)
    assert finding.cause.category is not CrashCategory.CODE_ISSUE
    assert finding.chain == situation.chain, finding.summary
    assert finding.caused_by == situation.root, finding.summary
    for phrase in situation.says:
        assert phrase in finding.summary, (phrase, finding.summary)
    if situation.root is not None:
        root = stack.findings[situation.root]
        assert finding.severity is root.severity  # the dependency's own severity
        assert situation.chain[0] in root.dependents or situation.chain[1] in root.dependents, root.dependents
    if situation.severity is not None:
        assert finding.severity is situation.severity
    for text in situation.commands:
        wanted = text.format(project_b=f"docker compose -p {stack.project_b.name}", file_b=stack.project_b.file)
        assert any(wanted in c for c in finding.commands), (wanted, finding.commands)


def test_a_hung_kubelet_marks_only_its_pod_partially_observed(stack: Stack) -> None:
    """The one pod whose node's kubelet hangs is diagnosed from its status (exit code, restarts)
    and says its logs could not be read; the cluster stays observed and no service moves to
    another runtime's diagnosis."""
    crash = stack.findings["crash-loop:k18-api"]
    assert crash.gaps and "timed out" in crash.gaps[0]
    assert "its logs could not be read" in crash.summary
    assert crash.runtimes == (Runtime.KUBERNETES,)
    assert not [f for f in stack.findings if f.startswith("service-unavailable:k") and f.endswith(":compose")]
    gaps = [c for c in stack.snapshot.coverage if c.kind == "pods/log"]
    assert gaps and all(c.state == "partial" and c.reason == "timeout" for c in gaps)


def test_root_causes_name_their_dependents_and_quote_the_cluster(stack: Stack) -> None:
    db = stack.findings["service-unavailable:c04-db:compose"]
    assert db.dependents == ("c04-api", "c04-web")  # web reaches the root through api
    mount = stack.findings["service-unavailable:k04-api:kubernetes"]
    assert any('configmap "orders-config" not found' in line for line in mount.evidence)
    evicted = stack.findings["service-unavailable:k10-search:kubernetes"]
    assert any(": Evicted: The node was low on resource: memory" in line for line in evicted.evidence)
    named = stack.findings["service-port-mismatch:k08-search"]
    assert "targetPort 'http', a name no container of the pods declares" in named.summary
    assert any("Endpoints k08-search: " in line for line in named.evidence)
    init = stack.findings["crash-loop:k02-api"]
    assert "init container wait-for-db" in init.locations[0].detail and "exit code 1" in init.locations[0].detail
