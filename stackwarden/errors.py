"""Errors that cross layers. Each message names the file, field or resource it is about."""

from __future__ import annotations


class StackwardenError(Exception):
    """Base of every error stackwarden reports to a user instead of a traceback."""


class ProfileError(StackwardenError):
    """A profile that cannot be read or does not validate.

    ``problems`` holds one ``(field path, reason)`` pair per validation error so the CLI can
    print them all at once instead of making the user fix one and rerun.
    """

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {field}: {reason}" if field else f"{path}: {reason}" for field, reason in problems]
        super().__init__("\n".join(lines))


class ProfileChoiceError(StackwardenError):
    """A run asked for a profile it may not choose: a path where only a name is taken, or a name
    outside the profiles fixed when the runs were served or deployed."""


class TransientError(StackwardenError):
    """A transport failure that survived the adapter's bounded retries; worth a task retry."""


class PermanentError(StackwardenError):
    """A failure that retrying cannot fix (refused connection to a missing engine, 4xx)."""


class AbsentError(PermanentError):
    """The runtime is not on this host at all (no engine socket, no kubeconfig). The audit
    reports it as not observed (a finding: never "absent" read as "fine"), but it is no failure of
    stackwarden: the observe task completes instead of showing red on every run."""


class RefusedError(StackwardenError):
    """A step whose target is not what the plan saw (identity changed) or that would break a
    safety invariant; nothing was done."""


class LockedError(StackwardenError):
    """Another switch holds the lock of a resource (port, workload) this one needs."""


def environment_hint(runtime: str, error: str) -> str | None:
    """What to do about a runtime that could not be observed, when its error says so plainly.

    The audit reports an unreachable runtime as a finding and goes on; the CLI prints this hint
    beside it, so a permission problem is not mistaken for "nothing runs there"."""
    text = error.lower()
    if runtime == "compose" and ("permission denied" in text or "errno 13" in text):
        return (
            "the Docker socket refused this user: add the user to the 'docker' group (then log in again) "
            "or run stackwarden as a user that may use Docker"
        )
    if runtime == "compose" and ("no such file" in text or "connection refused" in text):
        return "start the Docker engine (dockerd), or set DOCKER_HOST to where it listens"
    if runtime == "kubernetes" and "kubeconfig" in text and ("cannot read" in text or "malformed" in text):
        return (
            "fix the kubeconfig named above (kubectl config view shows what it parses), "
            "or point kubernetes.kubeconfig elsewhere"
        )
    if runtime == "kubernetes" and "no kubeconfig found" in text:
        return "set kubernetes.kubeconfig in the profile or $KUBECONFIG, or drop the profile's kubernetes section"
    return None
