"""Safety outcomes of the planner and the sanitizer that the unit suite did not pin down until
the mutation check found them (docs/testing.md): hybrid-guarded refuses a service without a
runtime, a compose start runs in its project's directory, a password with a colon or a
user-less token in a URL is hidden whole, and the log sanitizer (installed once per process)
masks what every log record carries, its traceback included."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from stackwarden import sanitize
from stackwarden.model import Mode
from stackwarden.model.plan import ComposeUp
from stackwarden.planner import plan
from stackwarden.sanitize import MASK, install_log_sanitizer, redact
from tests.support.builders import profile, snapshot


def test_hybrid_guarded_refuses_while_a_service_has_no_runtime() -> None:
    data = profile()
    services = {**data.services, "redis": data.services["redis"].model_copy(update={"runtime": None})}
    refused = plan(snapshot(), data.model_copy(update={"services": services}), Mode.HYBRID_GUARDED)
    assert "hybrid-guarded needs services.<name>.runtime for: redis" in refused.refusals
    assert not any("needs services.<name>.runtime" in r for r in plan(snapshot(), data, Mode.HYBRID_GUARDED).refusals)


def test_a_compose_start_runs_in_the_projects_own_directory() -> None:
    data = profile(compose={"project": "seedstack", "files": ["/srv/seed/compose.yaml"], "working_dir": "/srv/seed"})
    (up,) = [s for s in plan(snapshot(), data, Mode.COMPOSE_ONLY).steps if isinstance(s, ComposeUp)]
    assert up.working_dir == "/srv/seed"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgres://app:se:cret99@db:5432/orders", "postgres://app:***@db:5432/orders"),
        ("https://s3cr3tT0kenValue@git.example.com/repo.git", "https://***@git.example.com/repo.git"),
    ],
)
def test_url_credentials_are_hidden_whole(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.fixture
def fresh_log_sanitizer() -> Iterator[None]:
    """The log sanitizer installed anew for this test, and the process put back as it was."""
    factory = logging.getLogRecordFactory()
    installed = list(sanitize._INSTALLED)
    sanitize._INSTALLED.clear()
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)
        sanitize._INSTALLED[:] = installed


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_every_log_record_is_masked_when_it_is_made(fresh_log_sanitizer: None) -> None:
    install_log_sanitizer()
    install_log_sanitizer()  # idempotent: the factory is not wrapped twice
    log = logging.getLogger("stackwarden.test.sanitizer")
    keep = _Keep()
    log.addHandler(keep)
    log.propagate = False
    # whatever levels or logging.disable() other tests of this process left behind
    log.setLevel(logging.DEBUG)
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    try:
        log.warning("observed %s on %d", "redis-cli -a hunter2hunter2 ping", 6379)
        try:
            raise RuntimeError("connect postgres://app:pw0rd-value@db/orders failed")
        except RuntimeError:
            log.exception("probe failed")
        log.warning("broken %s %s format", "one")  # noqa: PLE1206 - a broken format never raises from logging
    finally:
        log.removeHandler(keep)
        logging.disable(disabled)
    first, second, third = keep.records
    assert first.getMessage() == f"observed redis-cli -a {MASK} ping on 6379" and first.args is None
    assert second.exc_text is not None and "pw0rd-value" not in second.exc_text
    assert f"postgres://app:{MASK}@db/orders" in second.exc_text and "RuntimeError" in second.exc_text
    assert "pw0rd-value" not in logging.Formatter().format(second)
    assert third.getMessage() == "broken %s %s format"
    wrapped = logging.getLogRecordFactory()
    install_log_sanitizer()
    assert logging.getLogRecordFactory() is wrapped
