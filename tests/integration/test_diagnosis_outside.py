"""Situations an outside check of the audit found it got wrong, rebuilt on real parts: each is
a multi-service failure as it happens on a developer's or a CI host, and the test says what an
experienced SRE would conclude from the same evidence.

One compose project serves every compose situation (crash logs printed as the real runtimes
print them), beside a real redis-server on the host, so the whole file costs one ``compose up``
and one audit (``pipeline.observe_all``, the audit's own path).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwarden.model import CrashCategory, Finding, Snapshot
from stackwarden.pipeline import observe_all
from stackwarden.profiles import load_profile
from stackwarden.rules import diagnose
from tests.support.compose import Project, compose_project, tcp_service, unique_name
from tests.support.realparts import IMAGE, free_ports, redis_server, wait_for

pytestmark = [pytest.mark.docker]


def _printf(lines: str) -> str:
    """A shell command that prints ``lines`` exactly (to stderr, as a crash does)."""
    return "printf '%s\\n' " + " ".join(shlex.quote(line) for line in lines.strip("\n").splitlines()) + " >&2"


def crasher(log: str, code: int = 1, **extra: Any) -> dict[str, Any]:
    """A container that prints a real runtime's crash and exits ``code``, restarted: a crash loop."""
    return {"image": IMAGE, "command": ["sh", "-c", f"{_printf(log)}; exit {code}"], "restart": "always", **extra}


def sleeper(**extra: Any) -> dict[str, Any]:
    """A container that runs and listens on nothing (stopped by the fixture, per situation)."""
    return {"image": IMAGE, "command": ["sleep", "3600"], "init": True, **extra}


# ------------------------------------------------------------------------------ crash logs
UVICORN_BANNER_THEN_RESET = """
INFO:     Started server process [1]
INFO:     Waiting for application startup.
INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)
Traceback (most recent call last):
  File "/app/main.py", line 20, in startup
    await redis.ping()
redis.exceptions.ConnectionError: Error while reading from socket: (104, 'Connection reset by peer')
"""
ELIXIR_REFUSED_THEN_EXITED = """
12:00:00.101 [info] Running AppWeb.Endpoint with cowboy 2.10.0 at :::4000 (http)
12:00:00.123 [error] Postgrex.Protocol (#PID<0.2418.0>) failed to connect: ** (DBConnection.ConnectionError) tcp connect (o03-db:5432): connection refused - :econnrefused
12:00:03.003 [notice] Application app exited: App.Application.start(:normal, []) returned an error: shutdown: failed to start child: App.Repo
    ** (EXIT) an exception was raised:
        ** (DBConnection.ConnectionError) connection not available and request was dropped from queue after 2977ms. This means requests are coming in and your connection pool cannot serve them fast enough.
Kernel pid terminated (application_controller) ({application_start_failure,app,{{shutdown,{failed_to_start_child,'Elixir.App.Repo',shutdown}}}})

Crash dump is being written to: erl_crash.dump...done
"""  # noqa: E501
DOTNET_REDIS_UNABLE_TO_CONNECT = """
info: Microsoft.Hosting.Lifetime[0]
      Hosting environment: Production
Unhandled exception. StackExchange.Redis.RedisConnectionException: It was not possible to connect to the redis server(s). Error connecting right now. To allow this multiplexer to continue retrying until it's able to connect, use abortConnect=false in your connection string or AbortOnConnectFail=false; in your code. UnableToConnect on o05-cache:6379/Interactive, Initializing/NotStarted, last: NONE, origin: BeginConnectAsync, outstanding: 0, last-read: 0s ago, last-write: 0s ago, keep-alive: 60s, state: Connecting, mgr: 10 of 10 available, last-heartbeat: never, global: 0s ago, v: 2.6.122.38350
   at StackExchange.Redis.ConnectionMultiplexer.ConnectImpl(ConfigurationOptions configuration, TextWriter log, Nullable`1 serverType, EndPointCollection endpoints) in /_/src/StackExchange.Redis/ConnectionMultiplexer.cs:line 683
   at Program.<Main>$(String[] args) in /src/Program.cs:line 9
"""  # noqa: E501
PHP_GETADDRINFO_FAILED = r"""
PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] php_network_getaddresses: getaddrinfo for o07-db failed: Name or service not known in /var/www/html/src/Db.php:14
Stack trace:
#0 /var/www/html/src/Db.php(14): PDO->__construct('pgsql:host=o07-...', 'app', Object(SensitiveParameterValue))
#1 /var/www/html/public/index.php(7): App\Db::connect()
#2 {main}
  thrown in /var/www/html/src/Db.php on line 14
"""  # noqa: E501
RAILS_NO_METHOD = """
=> Booting Puma
=> Rails 7.1.2 application starting in production
/app/app/models/order.rb:12:in `total': undefined method `sum' for nil:NilClass (NoMethodError)
	from /app/config/initializers/warmup.rb:3:in `<main>'
	from /usr/local/bundle/gems/railties-7.1.2/lib/rails/engine.rb:667:in `load'
"""
NODE_REDIS_NOAUTH = """
/app/node_modules/redis-parser/lib/parser.js:179
    return new ReplyError(string)
           ^

ReplyError: NOAUTH Authentication required.
    at parseError (/app/node_modules/redis-parser/lib/parser.js:179:12)
    at parseType (/app/node_modules/redis-parser/lib/parser.js:302:14)
"""


def node_refused(address: str, port: int) -> str:
    """Node's crash on a refused connection, as it prints an IPv6 address: unbracketed."""
    return (
        "node:internal/process/promises:289\n            triggerUncaughtException(err, true /* fromPromise */);\n"
        f"            ^\n\nError: connect ECONNREFUSED {address}:{port}\n"
        "    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) {\n"
        f"  errno: -111,\n  code: 'ECONNREFUSED',\n  syscall: 'connect',\n  address: '{address}',\n  port: {port}\n}}\n"
    )


STOPPED = ("o02-cache", "o03-db", "o05-cache", "o07-db")
"""Dependencies stopped by hand once the project is up."""
LOOPING = ("o01-web", "o02-api", "o03-api", "o05-api", "o07-web", "o08-app", "o09-app")
"""Crash loops that must have restarted before the audit."""


def compose_services(ports: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Every compose situation's services."""
    return {
        # o01: localhost is ::1 to Node 18+, while the host's redis-server listens on 127.0.0.1 only
        "o01-web": crasher(
            node_refused("::1", ports["o01-cache"]),
            network_mode="host",
            environment={"REDIS_URL": f"redis://localhost:{ports['o01-cache']}"},
        ),
        # o02: the log announces its own listen address before the reset that killed it
        "o02-api": crasher(UVICORN_BANNER_THEN_RESET, environment={"REDIS_URL": "redis://o02-cache:6379/0"}),
        "o02-cache": sleeper(),
        # o03: Elixir logs Ecto's refused connection, then a generic "Application app exited" report
        "o03-api": crasher(ELIXIR_REFUSED_THEN_EXITED),
        "o03-db": sleeper(),
        # o05: a .NET client of a stopped Redis aborts (exit 134, SIGABRT: a "code issue" by its code alone)
        "o05-api": crasher(DOTNET_REDIS_UNABLE_TO_CONNECT, 134),
        "o05-cache": sleeper(),
        # o07: PHP names the host it could not resolve only in php_network_getaddresses' wording
        "o07-web": crasher(PHP_GETADDRINFO_FAILED, 255),
        "o07-db": sleeper(),
        # o08: a Rails app raises NoMethodError while booting (its database is fine: it has none here)
        "o08-app": crasher(RAILS_NO_METHOD),
        # o09: Redis is up and asks for a password the client does not send
        "o09-app": crasher(NODE_REDIS_NOAUTH, environment={"REDIS_URL": "redis://o09-cache:6379"}),
        "o09-cache": tcp_service(6379, None),
    }


# ------------------------------------------------------------------------------ the world
@dataclass(frozen=True)
class World:
    project: Project
    snapshot: Snapshot
    findings: dict[str, Finding]


def _profile(path: Path, project: Project, ports: dict[str, int]) -> Path:
    services: dict[str, Any] = {name: {"runtime": "compose"} for name in compose_services(ports)}
    redis = {"executables": ["redis-server"]}
    services["o01-cache"] = {"runtime": "host", "ports": [ports["o01-cache"]], "host": redis}
    doc = {
        "name": project.name,
        "default_mode": "hybrid-guarded",
        "compose": [{"project": project.name, "files": [str(project.file)]}],
        "timeouts": {"connect_seconds": 5, "read_seconds": 20},  # a loaded CI host must not make it blind
        "services": services,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _settled(project: Project) -> bool:
    """Every crash loop restarted at least once, every stopped dependency exited."""
    try:
        loops = all(int(project.inspect(s)["RestartCount"]) >= 1 for s in LOOPING)
        stopped = all(project.inspect(s)["State"]["Status"] == "exited" for s in STOPPED)
    except LookupError:
        return False
    return loops and stopped


@pytest.fixture(scope="module")
def world(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("outside")
    ports = dict(zip(("o01-cache",), free_ports(1), strict=True))
    with contextlib.ExitStack() as stack:
        stack.enter_context(redis_server(ports["o01-cache"], "127.0.0.1"))
        project = stack.enter_context(compose_project(tmp, unique_name("swtest-outside"), compose_services(ports)))
        # stopped first (by hand: the engine stops restarting them), so `down` never races a restart
        stack.callback(project.compose, "stop", "--timeout", "0", check=False)
        project.compose("stop", *STOPPED)
        wait_for(lambda: _settled(project), 120, "the compose situations to settle")
        profile = load_profile(_profile(tmp / "profile.yaml", project, ports))
        snapshot = observe_all(profile)
        yield World(project, snapshot, {f.id: f for f in diagnose(snapshot, profile)})


# ------------------------------------------------------------------------------ the tests
def test_a_listen_banner_is_the_service_own_address_not_its_dependency(world: World) -> None:
    """uvicorn prints where it listens (``http://0.0.0.0:8000``) before the reset that kills it:
    that is its own address, not the dependency's. The reset is its Redis's, which is stopped."""
    crash = world.findings["crash-loop:o02-api"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN, crash.summary
    assert crash.chain == ("o02-api", "o02-cache")
    assert crash.caused_by == "service-unavailable:o02-cache:compose"
    assert "0.0.0.0" not in crash.summary and "loopback" not in crash.recommendation


def test_a_refusal_on_the_other_address_family_is_configuration_not_a_conflict(world: World) -> None:
    """Node 18+ resolves localhost to ::1 first; the host's redis-server listens on 127.0.0.1
    only. The connection is refused although Redis is up: no runtime holds the port against it,
    and no switch helps. The finding says which address it listens on and which it was asked."""
    crash = world.findings["crash-loop:o01-web"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.CONFIGURATION, crash.summary
    assert crash.cause.dependency is not None and crash.cause.dependency.host == "::1"
    assert "listens on 127.0.0.1:" in crash.summary and "nothing takes IPv6 connections to ::1" in crash.summary
    assert "Cause: configuration (" in crash.summary and "deployment conflict" not in crash.summary
    assert "promises" not in crash.summary
    assert "::1" in crash.recommendation and "switch" not in crash.recommendation


def test_an_elixir_crash_names_the_refused_database_logged_before_its_exit_report(world: World) -> None:
    """Elixir ends with a generic report (``Application app exited``, ``Kernel pid terminated``)
    that names no cause; the connection Ecto logged as refused just before is the cause, and the
    database it names is stopped."""
    crash = world.findings["crash-loop:o03-api"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN, crash.summary
    assert crash.chain == ("o03-api", "o03-db")
    assert crash.caused_by == "service-unavailable:o03-db:compose"
    assert "tcp connect (o03-db:5432): connection refused" in crash.summary


def test_a_dotnet_unhandled_connection_exception_is_its_dependency_not_a_code_issue(world: World) -> None:
    """.NET aborts on an unhandled exception (exit 134, SIGABRT, which alone reads as a code
    issue); the exception is StackExchange.Redis failing to reach its Redis, which is stopped."""
    crash = world.findings["crash-loop:o05-api"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN, crash.summary
    assert crash.chain == ("o05-api", "o05-cache")
    assert crash.caused_by == "service-unavailable:o05-cache:compose"
    assert crash.cause.decisive_line is not None
    assert crash.cause.decisive_line.startswith("Unhandled exception. StackExchange.Redis.RedisConnectionException")


def test_a_php_fatal_error_names_the_database_it_could_not_resolve(world: World) -> None:
    """PHP's ``PHP Fatal error:  Uncaught PDOException ... getaddrinfo for o07-db failed`` is the
    decisive line and names the host (nothing else declares it: the DSN is in code); o07-db is
    stopped, so its name does not resolve."""
    crash = world.findings["crash-loop:o07-web"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.DEPENDENCY_DOWN, crash.summary
    assert crash.chain == ("o07-web", "o07-db")
    assert crash.caused_by == "service-unavailable:o07-db:compose"
    assert crash.cause.dependency is not None and crash.cause.dependency.host == "o07-db"


def test_a_ruby_exception_is_a_code_issue_quoted_from_its_raise_line(world: World) -> None:
    """Ruby prints ``file.rb:12:in `total': message (NoMethodError)`` and its ``from`` frames:
    a code issue, quoted from that line (not "unknown" with nothing quoted)."""
    crash = world.findings["crash-loop:o08-app"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.CODE_ISSUE, crash.summary
    assert crash.cause.signature == "ruby-exception"
    assert crash.cause.decisive_line is not None and "(NoMethodError)" in crash.cause.decisive_line


def test_credentials_a_dependency_rejects_are_configuration_not_a_code_issue(world: World) -> None:
    """Redis answers NOAUTH: the client reached it and was refused for its credentials. That is
    configuration (set the password), not a bug to fix in the code."""
    crash = world.findings["crash-loop:o09-app"]
    assert crash.cause is not None and crash.cause.category is CrashCategory.CONFIGURATION, crash.summary
    assert crash.cause.signature == "credentials-rejected"
    assert "Fix the code" not in crash.recommendation and "credentials" in crash.recommendation
