"""What a served or deployed run may choose, and what is fixed for it.

``stackwarden serve`` and the workers run as root and act on the host. Whoever may create a run
(anyone holding the API secret) picks its parameters, so a parameter never names a file: the
profile is chosen by name among those fixed when the runs were served or deployed
(``STACKWARDEN_PROFILES`` in the run's environment, see ``stackwarden.profiles.choose_profile``),
and the metrics file, the lock directory and the Prefect home come from that environment too.
The host a run speaks for is fixed the same way: a run may repeat it, never change it (finding
events and the open-findings Variable are keyed on it). A run started at a terminal (the CLI, a
test calling the flow in process) is not a deployment run and keeps its file parameters.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from prefect.runtime import deployment

from stackwarden.model.profile import Profile
from stackwarden.profiles import SERVED_PROFILES_ENV, ProfileChoiceError

PROMETHEUS_DIR_ENV = "STACKWARDEN_PROMETHEUS_DIR"
"""Where served and deployed audits write their metrics file (``serve --prometheus-dir``)."""


def is_deployment_run() -> bool:
    """True inside a run of a deployment (served or on a worker): its parameters came from
    whoever created the run, not from a person at this host's terminal."""
    return bool(deployment.id)


def served_environment() -> bool:
    """True in a process whose served profile set is fixed (``serve`` and its runs, a worker)."""
    return bool(os.environ.get(SERVED_PROFILES_ENV))


def metrics_file(directory: Path, profile: Profile) -> Path:
    """One textfile per profile, so node_exporter sees each profile's series exactly once."""
    return directory / f"stackwarden-{re.sub(r'[^A-Za-z0-9_.-]', '-', profile.name)}.prom"


def metrics_path(profile: Profile, prometheus_path: str | None, *, deployment_run: bool) -> str | None:
    """The metrics file an audit writes: the terminal's ``--prometheus FILE``, or for a served or
    deployed run the profile's file in ``$STACKWARDEN_PROMETHEUS_DIR`` (fixed at serve time). A
    path passed by a deployment run is refused: it would let its caller replace any file as root."""
    if prometheus_path:
        if deployment_run or served_environment():
            raise ProfileChoiceError(
                f"prometheus_path={prometheus_path!r} refused: a served or deployed run writes its metrics "
                f"where {PROMETHEUS_DIR_ENV} says (serve --prometheus-dir), never where a parameter says"
            )
        return prometheus_path
    directory = os.environ.get(PROMETHEUS_DIR_ENV)
    if directory and (deployment_run or served_environment()):
        return str(metrics_file(Path(directory), profile))
    return None


def fixed_host() -> str:
    """The host this process speaks for: ``$STACKWARDEN_HOST`` (``serve --host-name`` sets it),
    else this machine's name."""
    return os.environ.get("STACKWARDEN_HOST") or socket.gethostname()


def run_host(host: str | None, *, deployment_run: bool) -> str:
    """The ``host`` a run carries: a terminal run may name any (a test, a benchmark standing in for
    a fleet); a deployment run only repeats its own, or it could write another host's findings."""
    if not host:
        return fixed_host()
    if deployment_run and host != fixed_host():
        raise ProfileChoiceError(
            f"host={host!r} refused: this run executes on {fixed_host()!r} and speaks for that host only"
        )
    return host
