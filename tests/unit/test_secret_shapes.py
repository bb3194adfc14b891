"""Redaction, table-driven: realistic secret shapes through every way out of the process.

Each case is (text as it would be observed or written, the secret inside it). The text is put
where observed text really goes: a finding's summary and evidence, a process command line, a
container label, a Kubernetes log line, a plan step and the journal, a Prefect artifact (markdown
and table), an event payload, a log record (message and exception), a printed command. The
secret must not appear in any output, whole or decoded.
"""

from __future__ import annotations

import io
import json
import logging
import shlex
from datetime import UTC, datetime
from typing import Any

import pytest

from stackwarden import sanitize
from stackwarden.events import open_set
from stackwarden.model import Severity
from stackwarden.model.base import Mode, Runtime
from stackwarden.model.finding import AuditResult, Finding, ModeRecommendation
from stackwarden.model.plan import Plan, StartProcess, StepResult, StepStatus, StopProcess, SwitchOutcome, SwitchStatus
from stackwarden.report import render_json, render_markdown
from stackwarden.report.plan import render_outcome, render_outcome_json, render_plan
from tasks import publish
from tests.support.builders import container, process, profile, seed_snapshot

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM_BODY = "MIIEpAIBAAKCAQEA3pemBodySecretLine0123456789abcdef"

SHAPES: list[tuple[str, str]] = [
    ("password=hunter2xyz", "hunter2xyz"),
    ("PASSWORD=Hunter2Upper", "Hunter2Upper"),
    ("DB_PASSWORD=s3cr3tVal1", "s3cr3tVal1"),
    ("dbPassword=camelSecret1", "camelSecret1"),
    ("Password=TitleSecret1", "TitleSecret1"),
    ("password:123456", "123456"),
    ("password: 1234567", "1234567"),
    ('"password": "jsonSecret1"', "jsonSecret1"),
    ("{'password': 'pySecret1'}", "pySecret1"),
    ("\x1b[31mpassword\x1b[0m=ansiSecret1", "ansiSecret1"),
    ("pass\x1b[0mword=ansiSecret2", "ansiSecret2"),
    ("\x1b]8;;http://x\x07PASSWORD=oscSecret1\x1b]8;;\x07", "oscSecret1"),
    ("--elasticsearch.password=esSecret1", "esSecret1"),
    ("kibana --elasticsearch.password esSecret2", "esSecret2"),
    ("logstash -Dxpack.monitoring.elasticsearch.password=lsSecret1", "lsSecret1"),
    ("redis-server --requirepass redisSecret1", "redisSecret1"),
    ("redis-server --masterauth redisSecret2", "redisSecret2"),
    ("redis-cli -a redisSecret3 ping", "redisSecret3"),
    ("mysql -u root -pMySqlSecret1 db", "MySqlSecret1"),
    ("app --db-password=dashSecret1", "dashSecret1"),
    ("postgres://app:pgUrlSecret1@db:5432/x", "pgUrlSecret1"),
    ("DATABASE_URL=postgresql://app:pgUrlSecret2@db/app", "pgUrlSecret2"),
    ("redis://:redisUrlSecret@cache:6379/0", "redisUrlSecret"),
    ("GET https://user:httpSecret1@example.com/health", "httpSecret1"),
    ("amqp://guest:amqpSecret1@rabbit:5672/", "amqpSecret1"),
    ("mongodb+srv://admin:mongoSecret1@cluster0.example.net/", "mongoSecret1"),
    ("Authorization: Bearer abcdefghijklmnopBEARER1", "abcdefghijklmnopBEARER1"),
    ("authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("curl -H 'Authorization: Token tok_ABCDEFGH12345'", "tok_ABCDEFGH12345"),
    ("proxy sent Bearer zyxwvutsrqponmlkBEARER2 upstream", "zyxwvutsrqponmlkBEARER2"),
    (f"jwt {JWT} accepted", JWT.split(".")[2]),
    ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzz", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzz"),
    (f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----", PEM_BODY),
    ("-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAAopensshBody", "b3BlbnNzaC1rZXktdjEAAAAAopensshBody"),
    ("token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("slack xoxb-123456789012-abcdefghijklmn", "xoxb-123456789012-abcdefghijklmn"),
    ("stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("gitlab glpat-xYz123456789ABCdefGHij", "glpat-xYz123456789ABCdefGHij"),
    ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    ("API_KEY=apiKeySecret1", "apiKeySecret1"),
    ("apiKey: apiKeySecret2", "apiKeySecret2"),
    ("x-api-key: apiKeySecret3", "apiKeySecret3"),
    ("client_secret=clientSecret1", "clientSecret1"),
    ("SECRET_KEY_BASE=railsSecret1", "railsSecret1"),
    ("GET /cb?token=tokSecret1&user=x", "tokSecret1"),
    ("access_token=accTokSecret1", "accTokSecret1"),
    ("GITHUB_TOKEN=ghTokSecret1", "ghTokSecret1"),
    ("PGPASSWORD=pgPassSecret1 psql -h db", "pgPassSecret1"),
    ("MYSQL_ROOT_PASSWORD=mysqlRootSecret1", "mysqlRootSecret1"),
    ("spring.datasource.password=springSecret1", "springSecret1"),
    ("secret: 'yamlSecret1'", "yamlSecret1"),
    ("privateKey=privKeySecret1", "privKeySecret1"),
    ('{"token":"jsonTokSecret1"}', "jsonTokSecret1"),
    ("ELASTIC_PASSWORD=elasticSecret1", "elasticSecret1"),
    ("passwd=passwdSecret1", "passwdSecret1"),
    ("REDIS_PASS=redisPassSecret1", "redisPassSecret1"),
    ("password\t=\ttabSecret1", "tabSecret1"),
    ("password=p@ss:w0rd!x", "p@ss:w0rd!x"),
    ("""sh -c "redis-server --requirepass 'shQuoted1' --port 6379\"""", "shQuoted1"),
    ("PGPASSWORD='pgQuoted1' psql -h db", "pgQuoted1"),
    ("docker login -u bob -p dockerLogin1 registry.example", "dockerLogin1"),
    ("sshpass -p sshpassSecret1 ssh deploy@host", "sshpassSecret1"),
    ("curl -u bob:curlSecret1 https://api.example", "curlSecret1"),
    ("curl --user bob:curlSecret2 https://api.example", "curlSecret2"),
    (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=azureKeySecret1+/==;EndpointSuffix=core.windows.net",
        "azureKeySecret1",
    ),
    ("posted to https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/slackHookSecret1xyz", "slackHookSecret1xyz"),
    ("aws configure set aws_secret_access_key awsConfigSecret1", "awsConfigSecret1"),
    ("redis-cli CONFIG SET requirepass configSetSecret1", "configSetSecret1"),
    ("postgres://app:p@ssAtSecret1@db:5432/app", "ssAtSecret1"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAcutOffBodySecret1abcdefghij", "cutOffBodySecret1"),
]
# shell-quoted: what ``shlex.join`` makes of a command whose argument holds a quoted secret
SHAPES += [(shlex.join(["sh", "-c", "redis-server --requirepass 'joinedSecret1'"]), "joinedSecret1")]


def test_there_are_at_least_forty_shapes() -> None:
    assert len(SHAPES) >= 40
    assert len({secret for _, secret in SHAPES}) == len(SHAPES)


def _leaks(secret: str, output: str) -> bool:
    """The secret, or (for JSON) its decoded form, appears in the output."""
    return secret in output or secret in output.replace("\\/", "/")


def _finding(text: str) -> Finding:
    return Finding(
        id="secret-shape",
        rule="test",
        title=f"Observed {text[:40]}",
        severity=Severity.HIGH,
        summary=f"process said: {text}",
        evidence=(text, f"log: {text}"),
        recommendation=f"do not print {text}",
        action=text[:30],
        commands=(sanitize.command(["docker", "logs", text]),),
    )


def _outputs(text: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every way out, fed ``text`` the way it really arrives there."""
    argv = tuple(text.split())
    snap = seed_snapshot()
    snap = snap.model_copy(
        update={
            "processes": (*snap.processes, process(4242, "app", cmdline=argv)),
            "containers": (
                *snap.containers,
                container("backend").model_copy(update={"labels": {"note": text}, "log_tail": (text,)}),
            ),
        }
    )
    finding = _finding(text)
    result = AuditResult(
        profile="seedstack",
        snapshot_taken_at=snap.taken_at.isoformat(),
        findings=(finding,),
        recommendation=ModeRecommendation(mode=Mode.COMPOSE_ONLY, reasons=(text,)),
    )
    base: dict[str, Any] = {"service": "redis", "runtime": Runtime.HOST, "reversible": True}
    stop = StopProcess(
        id="s1",
        why=f"because {text}",
        target=f"process {text}",
        inverse=" ".join(argv),
        pid=4242,
        create_time=1.0,
        exe="/usr/bin/redis-server",
        name=argv[0] if argv else "x",
        signal="SIGTERM",
        grace_seconds=1.0,
        start_command=argv,
        **base,
    )
    start = StartProcess(id="s2", why="rollback", target=" ".join(argv), inverse="", start_command=argv, **base)
    the_plan = Plan(profile="seedstack", mode=Mode.COMPOSE_ONLY, steps=(stop, start), refusals=(text,), notes=(text,))
    now = datetime.now(UTC)
    journal = (
        StepResult(step_id="s1", status=StepStatus.FAILED, started=now, ended=now, duration_seconds=0, error=text),
    )
    outcome = SwitchOutcome(status=SwitchStatus.ROLLED_BACK, plan=the_plan, journal=journal, message=text)

    sent: dict[str, Any] = {}
    monkeypatch.setattr(publish, "create_markdown_artifact", lambda **kw: sent.setdefault("markdown_artifact", kw))
    monkeypatch.setattr(publish, "create_table_artifact", lambda **kw: sent.setdefault("table_artifact", kw))
    monkeypatch.setattr(publish, "emit_event", lambda **kw: sent.setdefault("event", kw))
    monkeypatch.setattr(publish.Variable, "set", lambda name, value, **kw: sent.setdefault("variable", value))
    publish.set_variable("stackwarden-open-findings-x", open_set((finding,)))
    publish.markdown_artifact(render_markdown(result, snap, profile()) + "\n" + text, "k", f"about {text}")
    publish.table_artifact([{"title": text, "output": text}], "k", text)
    publish.event("stackwarden.finding.opened", {"prefect.resource.id": "x"}, {"summary": text, "cmdline": argv})

    sanitize.install_log_sanitizer()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.secret_shapes")
    logger.addHandler(handler)
    try:
        logger.warning("observed %s", text)
        logger.warning(text)
        try:
            raise RuntimeError(f"step failed: {text}")
        except RuntimeError:
            logger.exception("step")
    finally:
        logger.removeHandler(handler)

    return {
        "markdown": render_markdown(result, snap, profile()),
        "json": render_json(result, snap),
        "json-decoded": json.dumps(json.loads(render_json(result, snap)), ensure_ascii=False),
        "plan": render_plan(the_plan),
        "outcome": render_outcome(outcome),
        "outcome-json": json.dumps(json.loads(render_outcome_json(outcome)), ensure_ascii=False),
        "artifact": json.dumps([sent["markdown_artifact"], sent["table_artifact"]], ensure_ascii=False, default=str),
        "event": json.dumps(sent["event"], ensure_ascii=False, default=str),
        "variable": json.dumps(sent["variable"], ensure_ascii=False),
        "log": stream.getvalue(),
        "command-argv": sanitize.command(["tool", *argv]),
        "command-arg": sanitize.command(["tool", text]),
        "terminal": sanitize.terminal(text),
        "one-line": sanitize.one_line(text),
    }


@pytest.mark.parametrize(("text", "secret"), SHAPES, ids=[s for _, s in SHAPES])
def test_no_secret_leaves_by_any_way_out(text: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = _outputs(text, monkeypatch)
    leaked = {way: out for way, out in outputs.items() if _leaks(secret, out)}
    assert not leaked, {way: out[max(0, out.find(secret) - 80) : out.find(secret) + 80] for way, out in leaked.items()}


def test_redaction_keeps_what_is_not_a_secret() -> None:
    """Over-redaction hides evidence: file positions, ports, host:port and plain flags stay."""
    keep = [
        "src/services/secret_manager.rs:42:9",
        "listening on 127.0.0.1:5432",
        "connection refused auth-service:8080",
        "redis-server --port 6379",
        "passed: 12 tests",
        "--port=6379 --bind 0.0.0.0",
    ]
    for line in keep:
        assert sanitize.redact_text(line) == line
    assert sanitize.redact_argv(["redis-server", "--port", "6379"]) == ("redis-server", "--port", "6379")


def test_printed_commands_stay_one_argument_per_observed_name() -> None:
    hostile = "x'; rm -rf ~ #\x1b[2J"
    line = sanitize.command(["docker", "stop", hostile])
    assert shlex.split(line) == ["docker", "stop", "x'; rm -rf ~ #"]


@pytest.mark.parametrize(
    "text",
    [
        "a." * 50_000,
        "redis-cli " * 10_000,
        "mysql " * 16_000,
        "password_" * 11_000,
        "--x" * 33_000,
        "a:b@" * 25_000,
        'password="' * 10_000,
        "http://" * 14_000,
    ],
    ids=["dots", "redis-cli", "mysql", "long-key", "dashes", "userinfo", "open-quotes", "schemes"],
)
def test_adversarial_long_lines_are_bounded(text: str) -> None:
    """Inputs that made earlier patterns quadratic (a dotted 100 kB word, thousands of tool names
    without their flag): the output is capped with a visible mark; the suite's timeout would catch
    a regression to quadratic time."""
    for out in (sanitize.document(text), sanitize.md_inline(text), sanitize.one_line(text)):
        assert len(out) < sanitize.LINE_MAX + 40
        assert "chars cut)" in out
    if sanitize.MASK not in sanitize.document(text):  # the count is of what was cut, redaction aside
        assert sanitize.document(text).endswith(f"…(+{len(text) - sanitize.LINE_MAX} chars cut)")


def test_a_pem_header_without_end_erases_the_key_and_nothing_else() -> None:
    text = "tls: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nlistening on port 8443\nready"
    out = sanitize.document(text)
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in out
    assert out.endswith("listening on port 8443\nready"), out


def test_a_multi_line_pem_body_is_masked_on_every_line_of_a_log() -> None:
    body = ["MIIEpAIBAAKCAQEAlineOneOfTheKeyBody0123", "lineTwoOfTheKeyBodyABCDEFGHIJKL+/", "abcd=="]
    lines = ["starting", "-----BEGIN EC PRIVATE KEY-----", *body, "-----END EC PRIVATE KEY-----", "listening"]
    for out in (sanitize.redact_lines(lines), sanitize.md_fence(lines, "text")):
        joined = "\n".join(out)
        assert not any(b in joined for b in body), out
        assert "starting" in joined and "listening" in joined
    assert len(sanitize.redact_lines(lines)) == len(lines)


def test_a_word_after_digest_is_no_password() -> None:
    digest = "5f3a9c0e1d2b3a4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4"
    for text in (f"Plan digest {digest}", f"digest: {digest}", f"plan_digest={digest}"):
        assert digest in sanitize.document(text), text
        assert digest in json.dumps(sanitize.deep({"note": text}))
    header = 'Authorization: Digest username="bob", realm="x", response="6629fae49393a05397450978507c4ef1"'
    assert "6629fae49393a05397450978507c4ef1" not in sanitize.document(header)


def test_docker_publish_flags_are_not_passwords() -> None:
    assert sanitize.command(["docker", "run", "-p", "8080:80", "img"]) == "docker run -p 8080:80 img"


def test_bytes_that_are_not_utf8_become_replacement_characters_on_every_way_out() -> None:
    """psutil hands a Latin-1 argument over as a lone surrogate; writing it as UTF-8 failed."""
    text = "app --name caf\udce9"
    for out in (
        sanitize.document(text),
        sanitize.one_line(text),
        sanitize.md_inline(text),
        sanitize.command(text.split()),
        json.dumps(sanitize.deep({"cmd": text.split()})),
    ):
        assert "\ufffd" in out or "\\ufffd" in out, out
        out.encode("utf-8")  # would raise on a surrogate


def test_the_plan_digest_is_shown_in_full_in_the_plan_and_its_json() -> None:
    the_plan = Plan(profile="shop", mode=Mode.COMPOSE_ONLY)
    outcome = SwitchOutcome(status=SwitchStatus.DRY_RUN, plan=the_plan)
    assert f"Plan digest (sha256): `{the_plan.digest}`" in render_plan(the_plan)
    assert json.loads(render_outcome_json(outcome))["plan_digest"] == the_plan.digest
    assert the_plan.digest in sanitize.terminal(f"Plan digest {the_plan.digest}")
