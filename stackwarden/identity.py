"""Which host process is which service: identity from what a process cannot forge cheaply.

A process's name (comm, what ``ps`` shows) and its argv[0] are whatever its starter chose:
``exec -a postgres sleep 1000`` answers to "postgres" in ``ps``, and any user can start it. A
tool that runs as root and stops what it takes for postgres must not take it on its word. As
sshd decides who logs in from keys and uids rather than from what a client calls itself, a
process is the service only when

1. the file the kernel runs for it (``/proc/PID/exe``, symlinks resolved) is the service's:
   one of the profile's ``exe`` paths when the profile gives them, else a file whose base name is
   one of the profile's ``executables``, or the very file such a name leads to in the system's
   bin directories (Debian's ``/usr/bin/redis-server`` is a symlink to ``redis-check-rdb``);
2. it runs as an allowed user: every uid it holds (real, effective, saved) is one the profile's
   ``user`` names, or, when the profile names none, the uid stackwarden itself runs as. Root's
   switch therefore never signals ``nobody``'s process unless the profile says ``user: nobody``;
3. it lives in stackwarden's own mount namespace: inside a container, an exe path names the
   container's file, not the host's, and the process belongs to its container.

Names still matter, but only as claims: a process that answers to a service's name (or runs
its file) and fails a check is reported with the reason it was not taken for the service, so a
person can tell an impostor from a profile that needs its ``user`` or ``exe``.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackwarden.model.profile import HostMatcher, Profile
from stackwarden.model.snapshot import HostContext, ProcessInfo


@dataclass(frozen=True)
class HostIdentity:
    """What one host process is to one service.

    ``claims``: it answers to one of the service's executable names (comm, argv[0], its
    executable's base name) or runs one of its files; ``named``: the former, what ``ps`` shows
    and an impostor forges. ``refusal``: why a claimant is not the service after all (None: it
    is)."""

    claims: bool
    named: bool = False
    refusal: str | None = None

    @property
    def is_service(self) -> bool:
        """The process is this service: it may be planned for (stopped, kept)."""
        return self.claims and self.refusal is None


NOT_CLAIMED = HostIdentity(claims=False)


def service_files(matcher: HostMatcher, context: HostContext | None) -> frozenset[str]:
    """The resolved executable files that are the service's on this host: its ``exe`` paths (and
    what they resolve to), else the files its executable names lead to in the bin directories."""
    known = context.executables if context is not None else {}
    if matcher.exe:
        return frozenset(p for path in matcher.exe for p in (path, *known.get(path, ())))
    return frozenset(p for name in matcher.executables for p in known.get(name, ()))


def host_identity(profile: Profile, service: str, process: ProcessInfo, context: HostContext | None) -> HostIdentity:
    """Whether ``process`` is ``service``, judged by its executable file, owner and namespace
    (see the module docstring); a process that does not even claim to be it is ``NOT_CLAIMED``."""
    matcher = profile.services[service].host
    if matcher is None:
        return NOT_CLAIMED
    files = service_files(matcher, context)
    claimed = next((n for n in matcher.executables if n in process.names), None)
    if claimed is None and not (process.exe and process.exe in files):
        return NOT_CLAIMED
    problems = [
        problem
        for problem in (
            _namespace_problem(process, context),
            _exe_problem(service, matcher, process, files),
            _owner_problem(service, matcher, process, context),
        )
        if problem
    ]
    named = claimed is not None
    if not problems:
        return HostIdentity(claims=True, named=named)
    runs = f"runs {process.exe or 'an executable that cannot be read'} as {process.owner}"
    subject = f"named {claimed} but {runs}" if named else runs
    return HostIdentity(claims=True, named=named, refusal=f"{subject}: " + "; ".join(problems))


def _namespace_problem(process: ProcessInfo, context: HostContext | None) -> str | None:
    """A process in another mount namespace (a container's) is not a host process: its exe path
    names a file of the container. Unknown on our side (no context, an old snapshot): no check."""
    if context is None or context.mount_namespace is None:
        return None
    if process.mount_namespace is None:
        return "its mount namespace cannot be read, so its executable path cannot be trusted"
    if process.mount_namespace != context.mount_namespace:
        return "it runs in another mount namespace (a container's), where its executable path names another file"
    return None


def _exe_problem(service: str, matcher: HostMatcher, process: ProcessInfo, files: frozenset[str]) -> str | None:
    """The executable file must be the service's: an ``exe`` path, else a file named after one
    of its executables or the file such a name leads to in the bin directories."""
    exe = process.exe
    if not exe:
        return "its executable cannot be read (/proc/PID/exe)"
    if matcher.exe:
        if exe in files:
            return None
        return f"{exe} is not {' or '.join(matcher.exe)} (services.{service}.host.exe)"
    if exe.rsplit("/", 1)[-1] in matcher.executables or exe in files:
        return None
    return f"{exe} is not an executable named {matcher.names}"


def _owner_problem(service: str, matcher: HostMatcher, process: ProcessInfo, context: HostContext | None) -> str | None:
    """Every uid the process holds must be an allowed user: the profile's ``user``, else the one
    stackwarden runs as. A setuid program (real and effective uid differ) acts for two users:
    it cannot be either's alone."""
    uids = set(process.uids) or ({process.uid} if process.uid is not None else set())
    if not uids:
        return "its owner cannot be read"
    if len(uids) > 1:
        listed = ", ".join(str(u) for u in process.uids)
        return f"its real, effective and saved uids differ ({listed}): a setuid program acts for more than one user"
    (uid,) = uids
    if matcher.user is not None:
        if uid in matcher.user or (process.user is not None and process.user in matcher.user):
            return None
        allowed = ", ".join(str(u) for u in matcher.user)
        return f"{process.owner} is not {allowed} (services.{service}.host.user)"
    if context is None:
        return "the user stackwarden runs as is unknown, so no process counts as its own"
    if uid == context.uid:
        return None
    return (
        f"{process.owner} is not {context.runner}, the user stackwarden runs as, and services.{service}.host.user "
        "names no other user"
    )


def is_docker_proxy(process: ProcessInfo | None, context: HostContext | None) -> bool:
    """A docker-proxy that speaks for a container: its executable is named docker-proxy and it
    runs as root (dockerd's) or as the user stackwarden runs as (a rootless engine). Anyone can
    copy a listener to ``~/docker-proxy`` and put a container's IP on its command line; taken at
    its word, a stranger's socket would count as the service's container and a switch would
    verify over it. (Root's own process may be named by its comm when a non-root observer cannot
    read its exe: only root can start one.)"""
    if process is None or process.exe_basename != "docker-proxy":
        return False
    uids = set(process.uids) or ({process.uid} if process.uid is not None else set())
    allowed = {0} | ({context.uid} if context is not None else set())
    return bool(uids) and uids <= allowed
