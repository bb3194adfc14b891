"""The Docker adapter when a container goes away between the list and its logs call (seen in a
real run: another project's ``compose down`` during an audit)."""

from __future__ import annotations

import pytest

from stackwarden.adapters.docker import _logs_if_any
from stackwarden.adapters.engine_http import EngineHTTPError
from tests.support.builders import container


class _GoneClient:
    """Answers a logs call as the engine does for a container dead or marked for removal."""

    def __init__(self, status: int) -> None:
        self.status = status

    def logs(self, *args: object, **kwargs: object) -> bytes:
        raise EngineHTTPError(self.status, "can not get logs from container which is dead or marked for removal")


@pytest.mark.parametrize("status", [404, 409])
def test_logs_of_a_container_that_went_away_are_none_not_an_unreachable_engine(status: int) -> None:
    gone = container("backend", "dead", exit_code=1)
    assert _logs_if_any(_GoneClient(status), gone, 40) == ()  # type: ignore[arg-type]


def test_any_other_engine_error_still_raises() -> None:
    with pytest.raises(EngineHTTPError):
        _logs_if_any(_GoneClient(400), container("backend", "exited", exit_code=1), 40)  # type: ignore[arg-type]
