"""Step kinds: each kind of change a switch makes, defined once (pure).

A step kind is one class that knows everything about its change:

- its **plan text**: ``target`` (the exact identity acted on) and ``inverse`` (what undoing it
  does), built by its ``of`` constructor from what was observed; ``why`` is the planner's;
- the **commands printed for a person** (``commands()``): argument vectors the report, the dry
  run, the plan artifact and the rollback's "to finish the job" list all print;
- the **request the switch sends** (``request()``): plain data that the one adapter-side
  executor (``stackwarden.adapters.executor``) maps to an adapter call;
- its **inverse** (``undo()``), and whether a failed attempt must be undone too
  (``UNDO_AFTER_FAILURE``: it may have half-happened);
- its **task-run name** (``run_name()``) and its **identity re-check** (``identity()``: what
  the adapter compares with the live object before it acts, carried in the request).

The printed commands and the request are made from the same fields, so what a person pastes is
what the switch does: same target, signal, grace period, replica count, context and files.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from stackwarden.argv import compose_argv, kubectl_argv, signal_argv, wait_gone_argv
from stackwarden.model.base import Frozen, Runtime
from stackwarden.model.profile import clean_stop_signal, signal_name
from stackwarden.model.snapshot import Container, KubeWorkloadState, ProcessInfo
from stackwarden.sanitize import command

PREVIOUS_REPLICAS = "stackwarden.io/previous-replicas"
"""The annotation a scale to 0 writes on the workload (its count before), read to restore it:
one name for the planner, the Kubernetes adapter and the printed commands."""

SHORT = 7  # as git and docker print ids

Phase = Literal["make", "break", "start"]
PHASES: tuple[Phase, ...] = ("make", "break", "start")


def printed(argv: list[str]) -> str:
    """One argument vector as a POSIX shell line, as every printed command is made: cleaned,
    secrets masked before quoting, lengths capped (``sanitize.command``)."""
    return command(argv)


# --------------------------------------------------------------------------- shared parts


class RunAs(Frozen):
    """Who a host process ran as: a rollback's ``start_command`` runs as the same user, never as
    whoever runs stackwarden (root would leave root-owned files in a database's data directory,
    and many servers refuse to start as root)."""

    uid: int
    gid: int
    user: str | None = None

    def argv_prefix(self) -> list[str]:
        """``setpriv`` (util-linux) does by hand what the switch does: the ids and the user's groups."""
        if self.uid == 0:
            return []
        groups = ["--init-groups"] if self.user else ["--clear-groups"]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *groups, "--"]


class GracefulStop(Frozen):
    """How a stateful container is stopped, decided when the plan is made so that the printed
    commands and the switch do the same thing: ``docker kill --signal SIGNAL``, a wait of the
    step's timeout with no SIGKILL ever, and (only when Docker would otherwise restart it) its
    restart policy set to ``no`` for the stop and put back after.

    Docker keeps a killed container down whatever its restart policy only when the signal is the
    container's own stop signal (or it has none); a SIGTERM sent in place of an image's SIGKILL
    would be followed by a restart under ``always``."""

    signal: str
    pause_restart_policy: str | None = Field(
        default=None, description="The restart policy to put back after the stop (docker update --restart VALUE)."
    )


def graceful_stop(stateful: bool, c: Container) -> GracefulStop | None:
    """How a stateful container is stopped (None: ``docker stop`` for any other)."""
    if not stateful:
        return None
    return stateful_stop(c.stop_signal, c.restart_policy, c.restart_max_retries)


def stateful_stop(stop_signal: str | None, restart_policy: str | None, max_retries: int = 0) -> GracefulStop:
    """Its own stop signal when that asks for a clean exit, else SIGTERM. When the signal sent is
    not the container's own, Docker would restart it under its policy: the policy is paused."""
    sent = clean_stop_signal(stop_signal)
    own = signal_name(stop_signal)
    policy = restart_policy if restart_policy not in {None, "", "no"} else None
    if own is None or own == sent or policy is None:
        return GracefulStop(signal=sent)
    restore = f"{policy}:{max_retries}" if policy == "on-failure" and max_retries else policy
    return GracefulStop(signal=sent, pause_restart_policy=restore)


def graceful_stop_argvs(name: str, timeout_seconds: int, graceful: GracefulStop | None) -> list[list[str]]:
    """What the switch does to a stateful container, by hand: its restart policy paused if the
    plan says so, the planned signal, a wait of the step's timeout (``timeout`` ends the wait,
    not the container: nothing is SIGKILLed), the policy put back."""
    how = graceful or GracefulStop(signal="SIGTERM")
    out = []
    if how.pause_restart_policy is not None:
        out.append(["docker", "update", "--restart", "no", name])
    out.append(["docker", "kill", "--signal", how.signal, name])
    out.append(["timeout", str(timeout_seconds), "docker", "wait", name])
    if how.pause_restart_policy is not None:
        out.append(["docker", "update", "--restart", how.pause_restart_policy, name])
    return out


# --------------------------------------------------------------------------- requests (data)


class ScaleRequest(Frozen):
    """Scale a workload; the adapter re-reads it: same uid, and the planned generation when set."""

    action: Literal["scale"] = "scale"
    context: str | None
    namespace: str
    workload_kind: Literal["Deployment", "StatefulSet"]
    name: str
    uid: str
    replicas: int
    expected_generation: int | None


class StopProcessRequest(Frozen):
    """Stop a host process (through its unit when it has one); pid + start time + exe re-checked,
    and the unit must still hold the PID."""

    action: Literal["stop-process"] = "stop-process"
    pid: int
    create_time: float
    exe: str | None
    signal: str
    grace_seconds: float
    systemd_unit: str | None
    stateful: bool
    force: bool


class StartProcessRequest(Frozen):
    """Start a host service again: its unit, or its start command as the user it ran as."""

    action: Literal["start-process"] = "start-process"
    systemd_unit: str | None
    start_command: tuple[str, ...] | None
    run_as: RunAs | None
    replaces: tuple[int, float] | None = None


class StopContainerRequest(Frozen):
    """Stop one container; its id and compose project are re-checked (and for a stateful one
    the stop signal and restart policy the plan saw)."""

    action: Literal["stop-container"] = "stop-container"
    container_id: str
    project: str
    timeout_seconds: int
    stateful: bool
    graceful: GracefulStop | None
    force: bool


class StartContainerRequest(Frozen):
    """Start one existing container; id and compose project re-checked."""

    action: Literal["start-container"] = "start-container"
    container_id: str
    project: str


class ComposeRequest(Frozen):
    """``docker compose ... up/stop SERVICES`` of one project (idempotent by Compose's design)."""

    action: Literal["compose"] = "compose"
    verb: Literal["up", "stop"]
    project: str
    files: tuple[str, ...]
    working_dir: str | None
    services: tuple[str, ...]


class RestorePolicyRequest(Frozen):
    """Put a container's restart policy back; id and project re-checked, and only while the
    policy is still the ``no`` an interrupted stop left (a person's later change is kept)."""

    action: Literal["restore-policy"] = "restore-policy"
    container_id: str
    project: str
    policy: str


Request = Annotated[
    ScaleRequest
    | StopProcessRequest
    | StartProcessRequest
    | StopContainerRequest
    | StartContainerRequest
    | ComposeRequest
    | RestorePolicyRequest,
    Field(discriminator="action"),
]


# --------------------------------------------------------------------------- the kinds


class _StepBase(Frozen):
    """What every step carries: identity, reason, reversibility, and its phase."""

    UNDO_AFTER_FAILURE: ClassVar[bool] = False
    """Whether a *failed* attempt is undone by a rollback too: it may have half-happened."""

    MAY_COMPLETE_LATER: ClassVar[bool] = False
    """Whether a *failed* attempt may still take effect after it gave up (a stop whose signal went
    out: its target may exit seconds later), so an undo that finds the target as it was before
    (still running) does not mean it stays so."""

    id: str
    service: str
    runtime: Runtime
    why: str
    target: str = Field(description="The exact identity acted on, as a person reads it.")
    reversible: bool
    inverse: str = Field(description="What undoing this step does ('' when it cannot be undone).")
    phase: Phase = Field(
        default="break",
        description=(
            "make: start a new owner that needs no port an old one holds (before anything stops); "
            "break: stop an old owner (independent stops run concurrently); start: a new owner that "
            "needed a freed port, started right after the stops."
        ),
    )

    @property
    def profile_services(self) -> tuple[str, ...]:
        """The profile services this step is for: one, or several for one ``compose up`` of a
        project (``service`` joins them with commas, which a profile name cannot contain)."""
        return tuple(self.service.split(","))

    def _undo_base(self) -> dict[str, object]:
        """The fields every undo step shares: named after the step it undoes."""
        return {
            "id": f"undo:{self.id}",
            "why": f"rollback of {self.id}",
            "service": self.service,
            "runtime": self.runtime,
            "reversible": True,
            "inverse": "",
            "phase": self.phase,
        }

    def commands(self) -> list[list[str]]:
        """The argument vectors a person runs to do what this step does (one copy-paste block)."""
        raise NotImplementedError

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> Request:
        """What the switch sends to the adapter-side executor."""
        raise NotImplementedError

    def undo(self) -> Step | None:
        """The step that undoes this one (None when it cannot be undone)."""
        raise NotImplementedError

    def after_failure(self) -> Step | None:
        """What puts back a change that a *failed* attempt may have left behind beside its own
        effect (a restart policy paused for a graceful stop and never restored); None for most
        kinds. The rollback runs it before the undo, the repair of a dead run too."""
        return None

    def run_name(self) -> str:
        """The task run's name: kind, service and a short identity."""
        raise NotImplementedError

    def identity(self) -> str:
        """What the adapter re-checks against the live object before it acts."""
        raise NotImplementedError

    def _name(self, identity: str) -> str:
        """``<kind> <service> <short identity>``, the task run's name."""
        kind: str = getattr(self, "kind", "step")
        return " ".join(part for part in (kind, self.service, identity) if part)


def _inverse_text(undo: _StepBase | None) -> str:
    """The printed commands of the undo step, one line: the plan's "reversible: ..." text is
    what a person would paste."""
    if undo is None:
        return ""
    return "; ".join(printed(argv) for argv in undo.commands())


class ScaleWorkload(_StepBase):
    """Scale a Deployment/StatefulSet; scaling to 0 records the previous count on the object."""

    UNDO_AFTER_FAILURE: ClassVar[bool] = True
    kind: Literal["scale-workload"] = "scale-workload"
    context: str | None
    namespace: str
    workload_kind: Literal["Deployment", "StatefulSet"]
    name: str
    uid: str
    generation: int
    replicas: int
    previous_replicas: int
    kubeconfig: str | None = Field(default=None, description="The profile's kubeconfig, for the printed kubectl.")

    @classmethod
    def of(
        cls,
        w: KubeWorkloadState,
        *,
        service: str,
        why: str,
        replicas: int,
        context: str | None,
        kubeconfig: str | None,
    ) -> ScaleWorkload:
        """Scale the observed workload ``w`` to ``replicas``."""
        ref = f"{w.kind.lower()}/{w.name}"
        identity = f"{w.kind} {w.namespace}/{w.name} (uid {w.uid}, generation {w.generation})"
        step = cls(
            id=f"scale-workload:{w.namespace}/{ref}:{replicas}",
            service=service,
            runtime=Runtime.KUBERNETES,
            why=why,
            target=f"{identity}: {w.replicas} -> {replicas}",
            reversible=True,
            inverse="",
            context=context,
            namespace=w.namespace,
            workload_kind=w.kind,
            name=w.name,
            uid=w.uid,
            generation=w.generation,
            replicas=replicas,
            previous_replicas=w.replicas,
            kubeconfig=kubeconfig,
        )
        return step.model_copy(update={"inverse": _inverse_text(step.undo())})

    def commands(self) -> list[list[str]]:
        """``kubectl annotate`` (the count to restore, when scaling to 0) then ``kubectl scale``."""
        ref = f"{self.workload_kind.lower()}/{self.name}"
        where = {"context": self.context, "kubeconfig": self.kubeconfig}
        out = []
        if self.replicas == 0 and self.previous_replicas > 0:
            note = f"{PREVIOUS_REPLICAS}={self.previous_replicas}"
            out.append(kubectl_argv(self.namespace, "annotate", ref, note, "--overwrite", **where))
        return [*out, kubectl_argv(self.namespace, "scale", ref, f"--replicas={self.replicas}", **where)]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> ScaleRequest:
        """The scale; the generation is re-checked for planned steps, not for undo steps (the
        spec has changed since, by the switch's own hand)."""
        return ScaleRequest(
            context=self.context,
            namespace=self.namespace,
            workload_kind=self.workload_kind,
            name=self.name,
            uid=self.uid,
            replicas=self.replicas,
            expected_generation=self.generation if recheck_generation else None,
        )

    def undo(self) -> ScaleWorkload | None:
        """Scale back to the count it had."""
        if not self.reversible:
            return None
        where = f"{self.workload_kind} {self.namespace}/{self.name} (uid {self.uid})"
        target = f"{where}: {self.replicas} -> {self.previous_replicas}"
        update = {
            **self._undo_base(),
            "target": target,
            "replicas": self.previous_replicas,
            "previous_replicas": self.replicas,
        }
        return self.model_copy(update=update)

    def run_name(self) -> str:
        """``scale-workload backend deployment/backend 0e1d2c3 to 0``."""
        return self._name(f"{self.workload_kind.lower()}/{self.name} {self.uid[:SHORT]} to {self.replicas}")

    def identity(self) -> str:
        """What is re-checked before the patch."""
        return f"{self.workload_kind} {self.namespace}/{self.name}: uid {self.uid}, generation {self.generation}"


class StopProcess(_StepBase):
    """Stop a host process: its systemd unit, else its configured signal and grace period.

    A stateful service's unit is not stopped with ``systemctl stop`` (systemd SIGKILLs what is
    left after its TimeoutStopSec): its main process gets the clean signal through ``systemctl
    kill`` and the switch waits for it, as for a process without a unit."""

    UNDO_AFTER_FAILURE: ClassVar[bool] = True  # its signal may have gone out before it failed
    MAY_COMPLETE_LATER: ClassVar[bool] = True
    kind: Literal["stop-process"] = "stop-process"
    pid: int
    create_time: float
    exe: str | None
    name: str
    signal: str
    grace_seconds: float
    systemd_unit: str | None = None
    stateful: bool = False
    start_command: tuple[str, ...] | None = None
    run_as: RunAs | None = None

    @classmethod
    def of(
        cls,
        p: ProcessInfo,
        *,
        service: str,
        why: str,
        signal: str,
        grace_seconds: float,
        systemd_unit: str | None,
        stateful: bool,
        start_command: tuple[str, ...] | None,
    ) -> StopProcess:
        """Stop the observed process ``p``."""
        run_as = RunAs(uid=p.uid, gid=p.gid, user=p.user) if p.uid is not None and p.gid is not None else None
        if systemd_unit and stateful:
            how = f"systemctl kill --signal={signal} {systemd_unit}, up to {grace_seconds:g}s"
        elif systemd_unit:
            how = f"systemctl stop {systemd_unit}"
        else:
            how = f"{signal}, up to {grace_seconds:g}s"
        step = cls(
            id=f"stop-process:{p.pid}:{p.create_time}",
            service=service,
            runtime=Runtime.HOST,
            why=why,
            target=f"process {p.name} PID {p.pid} (exe {p.exe or '?'}, started {p.create_time:.2f}) via {how}",
            reversible=bool(systemd_unit or start_command),
            inverse="",
            pid=p.pid,
            create_time=p.create_time,
            exe=p.exe,
            name=p.name,
            signal=signal,
            grace_seconds=grace_seconds,
            systemd_unit=systemd_unit,
            stateful=stateful,
            start_command=start_command,
            run_as=run_as,
        )
        return step.model_copy(update={"inverse": _inverse_text(step.undo())})

    def commands(self) -> list[list[str]]:
        """The stop, then (unless ``systemctl stop`` already waits) a bounded wait for the PID to
        exit: the next pasted line must not start a new owner while this one holds the port."""
        if self.systemd_unit and not self.stateful:
            return [["systemctl", "stop", "--", self.systemd_unit]]
        if self.systemd_unit:
            kill = ["systemctl", "kill", "--kill-whom=main", f"--signal={self.signal}", "--", self.systemd_unit]
        else:
            kill = signal_argv(self.pid, self.signal)
        return [kill, wait_gone_argv(self.pid, self.grace_seconds)]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> StopProcessRequest:
        """The stop with the process's identity."""
        return StopProcessRequest(
            pid=self.pid,
            create_time=self.create_time,
            exe=self.exe,
            signal=self.signal,
            grace_seconds=self.grace_seconds,
            systemd_unit=self.systemd_unit,
            stateful=self.stateful,
            force=force,
        )

    def undo(self) -> StartProcess | None:
        """Start it again: its unit, or its start command as the user it ran as."""
        if not self.reversible:
            return None
        return StartProcess(
            target=f"{self.service}: {self.systemd_unit or ' '.join(self.start_command or ())}",
            systemd_unit=self.systemd_unit,
            start_command=self.start_command,
            run_as=None if self.systemd_unit else self.run_as,
            replaces=(self.pid, self.create_time),
            **self._undo_base(),
        )

    def run_name(self) -> str:
        """``stop-process postgres pid 812``."""
        return self._name(f"pid {self.pid}")

    def identity(self) -> str:
        """What is re-checked before the signal."""
        unit = f", in unit {self.systemd_unit}" if self.systemd_unit else ""
        return f"PID {self.pid}: start time {self.create_time:.2f}, exe {self.exe or '?'}{unit}"


class StartProcess(_StepBase):
    """Start a host service again (rollback only): its unit, or the profile's start_command as
    the user the stopped process ran as."""

    kind: Literal["start-process"] = "start-process"
    systemd_unit: str | None = None
    start_command: tuple[str, ...] | None = None
    run_as: RunAs | None = None
    replaces: tuple[int, float] | None = Field(
        default=None,
        description="PID and start time of the process this one replaces: while that one still runs, nothing starts.",
    )

    def commands(self) -> list[list[str]]:
        """``systemctl start -- UNIT``, or the start command (under ``setpriv`` for another user)."""
        if self.systemd_unit:
            return [["systemctl", "start", "--", self.systemd_unit]]
        prefix = self.run_as.argv_prefix() if self.run_as is not None else []
        return [[*prefix, *(self.start_command or ())]]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> StartProcessRequest:
        """The start."""
        return StartProcessRequest(
            systemd_unit=self.systemd_unit, start_command=self.start_command, run_as=self.run_as, replaces=self.replaces
        )

    def undo(self) -> None:
        """A rollback step is not undone."""
        return None

    def run_name(self) -> str:
        """``start-process redis redis-server.service``."""
        return self._name(self.systemd_unit or (self.start_command[0] if self.start_command else ""))

    def identity(self) -> str:
        """The process it replaces must be gone (a start never makes a second copy)."""
        if self.replaces is None:
            return "a new process"
        return f"PID {self.replaces[0]} (started {self.replaces[1]:.2f}) must have exited"


class StopContainer(_StepBase):
    """Stop one container by id; the container and its volumes are kept. A stateful one is
    stopped as ``graceful`` says (its clean signal, ``timeout_seconds`` to exit, no SIGKILL
    without force); any other with ``docker stop``."""

    UNDO_AFTER_FAILURE: ClassVar[bool] = True  # its signal may have gone out before it failed
    MAY_COMPLETE_LATER: ClassVar[bool] = True
    kind: Literal["stop-container"] = "stop-container"
    container_id: str
    name: str
    compose_project: str
    timeout_seconds: int
    stateful: bool = False
    graceful: GracefulStop | None = None

    @classmethod
    def of(cls, c: Container, *, service: str, why: str, timeout_seconds: int, stateful: bool) -> StopContainer:
        """Stop the observed container ``c``."""
        step = cls(
            id=f"stop-container:{c.id}",
            service=service,
            runtime=Runtime.COMPOSE,
            why=why,
            target=f"container {c.name} ({c.short_id}), stop timeout {timeout_seconds}s",
            reversible=True,
            inverse="",
            container_id=c.id,
            name=c.name,
            compose_project=c.compose_project or "",
            timeout_seconds=timeout_seconds,
            stateful=stateful,
            graceful=graceful_stop(stateful, c),
        )
        return step.model_copy(update={"inverse": _inverse_text(step.undo())})

    def commands(self) -> list[list[str]]:
        """A stateful one: its clean signal and no SIGKILL after a timeout (``docker stop``
        would); any other: ``docker stop --time N``."""
        if self.stateful:
            return graceful_stop_argvs(self.name, self.timeout_seconds, self.graceful)
        return [["docker", "stop", "--time", str(self.timeout_seconds), self.name]]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> StopContainerRequest:
        """The stop with the container's identity and, for a stateful one, how."""
        return StopContainerRequest(
            container_id=self.container_id,
            project=self.compose_project,
            timeout_seconds=self.timeout_seconds,
            stateful=self.stateful,
            graceful=self.graceful,
            force=force,
        )

    def undo(self) -> StartContainer | None:
        """Start it again."""
        if not self.reversible:
            return None
        return StartContainer(
            target=self.target,
            container_id=self.container_id,
            name=self.name,
            compose_project=self.compose_project,
            stop_timeout_seconds=self.timeout_seconds,
            stateful=self.stateful,
            graceful=self.graceful,
            **self._undo_base(),
        )

    def after_failure(self) -> RestoreRestartPolicy | None:
        """The restart policy put back (while it is still the ``no`` of the pause) when the plan
        paused it: a stop that failed may have failed to put it back itself (the engine stopped
        answering), and a container left at ``no`` would not come back after a reboot."""
        if self.graceful is None or self.graceful.pause_restart_policy is None:
            return None
        return RestoreRestartPolicy(
            id=f"restore-policy:{self.container_id}",
            service=self.service,
            runtime=Runtime.COMPOSE,
            why=f"{self.id} paused this restart policy for a graceful stop and may not have restored it",
            target=f"container {self.name} ({self.container_id[:12]}): restart policy no -> "
            f"{self.graceful.pause_restart_policy}",
            reversible=False,
            inverse="",
            phase=self.phase,
            container_id=self.container_id,
            name=self.name,
            compose_project=self.compose_project,
            policy=self.graceful.pause_restart_policy,
        )

    def run_name(self) -> str:
        """``stop-container backend 3f2a9c1``."""
        return self._name(self.container_id[:SHORT])

    def identity(self) -> str:
        """What is re-checked before the stop."""
        how = f"; stop signal and restart policy as planned ({self.graceful.signal})" if self.graceful else ""
        return f"container {self.container_id[:12]} of compose project {self.compose_project}{how}"


class StartContainer(_StepBase):
    """Start an existing (stopped or never-started) container by id."""

    UNDO_AFTER_FAILURE: ClassVar[bool] = True
    kind: Literal["start-container"] = "start-container"
    container_id: str
    name: str
    compose_project: str
    stop_timeout_seconds: int = 10
    stateful: bool = False
    graceful: GracefulStop | None = Field(default=None, description="How its undo stops it (stateful only).")

    @classmethod
    def of(cls, c: Container, *, service: str, why: str, stop_timeout_seconds: int, stateful: bool) -> StartContainer:
        """Start the observed container ``c``."""
        step = cls(
            id=f"start-container:{c.id}",
            service=service,
            runtime=Runtime.COMPOSE,
            why=why,
            target=f"container {c.name} ({c.short_id})",
            reversible=True,
            inverse="",
            container_id=c.id,
            name=c.name,
            compose_project=c.compose_project or "",
            stop_timeout_seconds=stop_timeout_seconds,
            stateful=stateful,
            graceful=graceful_stop(stateful, c),
        )
        return step.model_copy(update={"inverse": _inverse_text(step.undo())})

    def commands(self) -> list[list[str]]:
        """``docker start NAME``."""
        return [["docker", "start", self.name]]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> StartContainerRequest:
        """The start with the container's identity."""
        return StartContainerRequest(container_id=self.container_id, project=self.compose_project)

    def undo(self) -> StopContainer | None:
        """Stop it again (a stateful one gracefully)."""
        if not self.reversible:
            return None
        return StopContainer(
            target=self.target,
            container_id=self.container_id,
            name=self.name,
            compose_project=self.compose_project,
            timeout_seconds=self.stop_timeout_seconds,
            stateful=self.stateful,
            graceful=self.graceful,
            **self._undo_base(),
        )

    def run_name(self) -> str:
        """``start-container postgres 3f2a9c1``."""
        return self._name(self.container_id[:SHORT])

    def identity(self) -> str:
        """What is re-checked before the start."""
        return f"container {self.container_id[:12]} of compose project {self.compose_project}"


class ComposeUp(_StepBase):
    """``docker compose up -d --no-deps --no-recreate`` for services that have no container yet."""

    UNDO_AFTER_FAILURE: ClassVar[bool] = True
    kind: Literal["compose-up"] = "compose-up"
    project: str
    files: tuple[str, ...]
    working_dir: str | None
    services: tuple[str, ...]

    @classmethod
    def of(
        cls, *, project: str, files: tuple[str, ...], working_dir: str | None, pairs: list[tuple[str, str]], why: str
    ) -> ComposeUp:
        """``compose up`` of exactly the compose services in ``pairs`` (profile name, compose name):
        ``service`` names the profile services (what the switch waits for and verifies),
        ``services`` the compose ones."""
        ordered = sorted(pairs)
        names = sorted(compose for _, compose in ordered)
        step = cls(
            id=f"compose-up:{project}:{','.join(names)}",
            service=",".join(service for service, _ in ordered),
            runtime=Runtime.COMPOSE,
            why=why,
            target=f"compose project {project} services {', '.join(names)}",
            reversible=True,
            inverse="",
            project=project,
            files=files,
            working_dir=working_dir,
            services=tuple(names),
        )
        return step.model_copy(update={"inverse": _inverse_text(step.undo())})

    def commands(self) -> list[list[str]]:
        """Exactly the planned services, never a dependency, never a container replaced."""
        return [
            compose_argv(
                self.project, self.files, self.working_dir, "up", "-d", "--no-deps", "--no-recreate", *self.services
            )
        ]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> ComposeRequest:
        """``up`` of the planned services."""
        return ComposeRequest(
            verb="up", project=self.project, files=self.files, working_dir=self.working_dir, services=self.services
        )

    def undo(self) -> ComposeStop | None:
        """``compose stop`` of the same services (containers and volumes kept)."""
        if not self.reversible:
            return None
        return ComposeStop(
            target=self.target,
            project=self.project,
            files=self.files,
            working_dir=self.working_dir,
            services=self.services,
            **self._undo_base(),
        )

    def run_name(self) -> str:
        """``compose-up backend,frontend shop``."""
        return self._name(self.project)

    def identity(self) -> str:
        """Compose matches its containers by project label itself."""
        return f"compose project {self.project}"


class ComposeStop(_StepBase):
    """``docker compose stop SERVICES`` (rollback of a compose-up; containers and volumes kept)."""

    kind: Literal["compose-stop"] = "compose-stop"
    project: str
    files: tuple[str, ...]
    working_dir: str | None
    services: tuple[str, ...]

    def commands(self) -> list[list[str]]:
        """``docker compose ... stop SERVICES``: never ``down``."""
        return [compose_argv(self.project, self.files, self.working_dir, "stop", *self.services)]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> ComposeRequest:
        """``stop`` of the services."""
        return ComposeRequest(
            verb="stop", project=self.project, files=self.files, working_dir=self.working_dir, services=self.services
        )

    def undo(self) -> None:
        """A rollback step is not undone."""
        return None

    def run_name(self) -> str:
        """``compose-stop backend shop``."""
        return self._name(self.project)

    def identity(self) -> str:
        """Compose matches its containers by project label itself."""
        return f"compose project {self.project}"


class RestoreRestartPolicy(_StepBase):
    """Put back the restart policy a graceful stop paused (``docker update --restart POLICY``):
    the repair of a switch that died between the pause and the restore."""

    kind: Literal["restore-restart-policy"] = "restore-restart-policy"
    container_id: str
    name: str
    compose_project: str
    policy: str

    def commands(self) -> list[list[str]]:
        """``docker update --restart POLICY NAME``."""
        return [["docker", "update", "--restart", self.policy, self.name]]

    def request(self, *, force: bool = False, recheck_generation: bool = True) -> RestorePolicyRequest:
        """The update with the container's identity."""
        return RestorePolicyRequest(container_id=self.container_id, project=self.compose_project, policy=self.policy)

    def undo(self) -> None:
        """A repair is not undone."""
        return None

    def run_name(self) -> str:
        """``restore-restart-policy postgres 3f2a9c1``."""
        return self._name(self.container_id[:SHORT])

    def identity(self) -> str:
        """What is re-checked before the update."""
        return f"container {self.container_id[:12]} of compose project {self.compose_project}, policy still 'no'"


Step = Annotated[
    ScaleWorkload
    | StopProcess
    | StartProcess
    | StopContainer
    | StartContainer
    | ComposeUp
    | ComposeStop
    | RestoreRestartPolicy,
    Field(discriminator="kind"),
]
