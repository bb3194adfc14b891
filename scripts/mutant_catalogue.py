"""The mutants of ``scripts/mutants.py``: each breaks one feature the real-part tests claim to
cover, by an exact text replacement in one product file, and names the tests that must notice.

A mutant's ``old`` text must occur exactly once in its file (``scripts/mutants.py --check``). Keep
each one small and the break real: the feature must be gone or inverted, not just reworded, and
the selection must be the tests whose names or docstrings claim that feature.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """One hand-made break of one feature."""

    name: str
    area: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    claim: str


def silence(rule: str) -> str:
    """The replacement that makes a rule (a generator) report nothing."""
    return f"def {rule}(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:\n    return  # mutant"


def rule_def(rule: str) -> str:
    """The signature line of a rule generator."""
    return f"def {rule}(snapshot: Snapshot, profile: Profile) -> Iterator[Finding]:"


I = "tests/integration/"  # noqa: E741 - short prefixes keep the selections readable
F = "tests/faults/"
E = "tests/e2e/"
O = "tests/ops/"  # noqa: E741
U = "tests/unit/"

# fmt: off
CATALOGUE: tuple[Mutant, ...] = (
    # ----------------------------------------------------------------------------- the audit
    Mutant(
        "rule-port-conflicts-silent", "rules", "stackwarden/rules/ports.py",
        rule_def("port_conflicts"), silence("port_conflicts"),
        (I + "test_docker_audit.py::test_seed_port_conflicts_name_both_owners",),
        "a port held by two owners is a port-conflict finding naming both",
    ),
    Mutant(
        "rule-dual-deployment-silent", "rules", "stackwarden/rules/dual_deployment.py",
        rule_def("dual_deployment"), silence("dual_deployment"),
        (I + "test_docker_audit.py::test_seed_dual_deployment",),
        "a service deployed in two runtimes is a dual-deployment finding",
    ),
    Mutant(
        "rule-crash-loops-silent", "rules", "stackwarden/rules/crash_loops.py",
        rule_def("crash_loops"), silence("crash_loops"),
        (I + "test_docker_audit.py::test_seed_backend_crash_loop_is_a_code_issue",),
        "a crash-looping container is a crash-loop finding with its cause",
    ),
    Mutant(
        "rule-port-foreign-owner-silent", "rules", "stackwarden/rules/ports.py",
        rule_def("port_foreign_owner"), silence("port_foreign_owner"),
        (I + "test_host_identity_real.py::test_nobodys_real_redis_and_an_impostor_on_profile_ports_refuse_the_switch_and_say_why",),  # noqa: E501
        "a process on a profile port that is not the service is reported (port-foreign-owner)",
    ),
    Mutant(
        "rule-port-no-reply-silent", "rules", "stackwarden/rules/ports.py",
        rule_def("port_no_reply"), silence("port_no_reply"),
        (I + "test_exploratory.py::test_a_publish_with_nothing_behind_it_is_found_and_a_live_one_is_not",),
        "a published port with nothing behind it is found",
    ),
    Mutant(
        "rule-runtime-unreachable-silent", "rules", "stackwarden/rules/runtimes.py",
        rule_def("runtime_unreachable"), silence("runtime_unreachable"),
        (
            I + "test_exploratory.py::test_engine_gone_is_not_an_all_clear_nor_a_port_conflict",
            E + "test_cli_audit.py::test_unreachable_docker_completes_and_exits_per_fail_on",
        ),
        "an engine that cannot be reached is a finding, never an all-clear",
    ),
    Mutant(
        "rule-service-unavailable-silent", "rules", "stackwarden/rules/availability.py",
        rule_def("service_unavailable"), silence("service_unavailable"),
        (I + "test_exploratory.py::test_containers_that_died_and_stay_down_are_diagnosed_from_their_logs",),
        "a container that died and stays down is diagnosed from its logs",
    ),
    Mutant(
        "rule-kube-forbidden-silent", "rules", "stackwarden/rules/kubernetes.py",
        rule_def("forbidden"), silence("forbidden"),
        (I + "test_exploratory.py::test_a_viewer_without_rights_does_not_read_the_namespace_as_empty",),
        "forbidden reads are a kube-forbidden finding, not an empty namespace",
    ),
    Mutant(
        "rule-interrupted-switch-silent", "rules", "stackwarden/rules/interrupted.py",
        rule_def("interrupted_switch"), silence("interrupted_switch"),
        (I + "test_interrupted_switch.py",),
        "the audit reports a dead switch's journal as interrupted-switch",
    ),
    Mutant(
        "rule-selector-unmatched-silent", "rules", "stackwarden/rules/availability.py",
        rule_def("service_selector_unmatched"), silence("service_selector_unmatched"),
        (I + "test_dependency_chains.py",),
        "a Service whose selector matches no pod is found and roots the chains through it",
    ),
    Mutant(
        "rule-health-failing-silent", "rules", "stackwarden/rules/health.py",
        rule_def("health_failing"), silence("health_failing"),
        (E + "test_cli_switch.py::test_a_service_that_answers_every_client_with_an_error_is_no_all_clear",),
        "a failing health check is a finding: no all-clear over a service that answers with errors",
    ),
    # ----------------------------------------------------------------------------- crash
    Mutant(
        "crash-spawn-local-not-code", "crash", "stackwarden/crash.py",
        '    re.compile(r"spawn_local.*(LocalSet|outside)|LocalSet.*spawn_local", re.IGNORECASE),\n'
        "    CrashCategory.CODE_ISSUE,",
        '    re.compile(r"spawn_local.*(LocalSet|outside)|LocalSet.*spawn_local", re.IGNORECASE),\n'
        "    CrashCategory.CONFIGURATION,",
        (I + "test_docker_audit.py::test_seed_backend_crash_loop_is_a_code_issue",),
        "the seed's spawn_local panic is a code issue",
    ),
    Mutant(
        "crash-address-in-use-not-conflict", "crash", "stackwarden/crash.py",
        "    CrashCategory.DEPLOYMENT_CONFLICT,\n"
        '    "The process could not bind its port because another owner holds it.",',
        "    CrashCategory.CODE_ISSUE,\n"
        '    "The process could not bind its port because another owner holds it.",',
        (I + "test_docker_audit.py::test_port_in_use_crash_is_a_deployment_conflict_naming_the_owner",),
        "a crash on a port in use is a deployment conflict naming the owner",
    ),
    Mutant(
        "crash-exit-code-forgotten", "crash", "stackwarden/adapters/docker.py",
        'container = container.model_copy(update={"last_death": deaths.get(container.id)})',
        'container = container.model_copy(update={"last_death": None})',
        (I + "test_diagnosis_real.py::test_a_crash_loop_is_diagnosed_200_times_in_a_row_while_it_restarts",),
        "exit codes survive restarts (the engine's die events)",
    ),
    Mutant(
        "crash-between-crashes-missed", "crash", "stackwarden/model/snapshot.py",
        "RECENT_START_SECONDS = 30.0", "RECENT_START_SECONDS = 0.0",
        (
            I + "test_exploratory.py::test_a_pod_caught_running_between_two_crashes_is_a_crash_loop",
            I + "test_diagnosis_real.py::test_a_crash_loop_is_diagnosed_200_times_in_a_row_while_it_restarts",
        ),
        "a loop caught running between two crashes is still a crash loop",
    ),
    Mutant(
        "crash-oom-flag-ignored", "crash", "stackwarden/crash.py",
        "    if oom_killed:\n", "    if False:\n",
        (I + "test_exploratory.py::test_containers_that_died_and_stay_down_are_diagnosed_from_their_logs",),
        "the OOMKilled flag wins over everything",
    ),
    # ----------------------------------------------------------------------------- placement
    Mutant(
        "placement-port-forward-foreign", "placement", "stackwarden/localclusters.py",
        "        return _port_forward(argv)", "        return None",
        (I + "test_local_clusters.py",),
        "a kubectl port-forward holds its port for the kubernetes runtime, not as a foreign owner",
    ),
    Mutant(
        "placement-kind-node-foreign", "placement", "stackwarden/localclusters.py",
        'def cluster_node(labels: Mapping[str, str], image: str) -> str | None:\n',
        'def cluster_node(labels: Mapping[str, str], image: str) -> str | None:\n    return None  # mutant\n',
        (I + "test_local_clusters.py",),
        "kind/k3d node containers publish ports for the kubernetes runtime",
    ),
    # ----------------------------------------------------------------------------- chains
    Mutant(
        "chains-unlinked", "chains", "stackwarden/chains.py",
        "    linker = _Linker(findings, snapshot, profile)\n    linker.resolve_all()\n"
        "    return tuple(linker.rewrite())",
        "    return tuple(findings)  # mutant",
        (
            I + "test_diagnosis_real.py::test_a_stopped_compose_dependency_is_named_with_its_state_and_started_by_the_advice",  # noqa: E501
            I + "test_dependency_chains.py",
        ),
        "a failure a down dependency explains points at its root cause",
    ),
    Mutant(
        "chains-severity-not-the-roots", "chains", "stackwarden/chains.py",
        '"severity": own.severity if own is not None else self._orphan_severity(root_service),',
        '"severity": Severity.CRITICAL,',
        (
            I + "test_diagnosis_real.py::test_a_stopped_compose_dependency_is_named_with_its_state_and_started_by_the_advice",  # noqa: E501
            I + "test_dependency_chains.py",
        ),
        "a dependent's finding carries the root's severity",
    ),
    Mutant(
        "dependencies-env-ignored", "chains", "stackwarden/dependencies.py",
        "def refs_from_env(env: Iterable[tuple[str, str]]) -> tuple[DependencyRef, ...]:\n",
        "def refs_from_env(env: Iterable[tuple[str, str]]) -> tuple[DependencyRef, ...]:\n    return ()  # mutant\n",
        (I + "test_dependency_chains.py",),
        "addresses in environment variables are dependency edges",
    ),
    # ----------------------------------------------------------------------------- coverage
    Mutant(
        "coverage-forbidden-read-as-empty", "coverage", "stackwarden/adapters/kubernetes.py",
        '        if exc.status == 403:\n            forbidden.append(f"{verb} in {namespace}")',
        '        if exc.status == 403:\n            return []  # mutant\n'
        '            forbidden.append(f"{verb} in {namespace}")',
        (
            F + "test_rbac.py::test_a_forbidden_list_refuses_the_switch",
            I + "test_exploratory.py::test_a_viewer_without_rights_does_not_read_the_namespace_as_empty",
        ),
        "a forbidden list is recorded (coverage), never read as an empty list",
    ),
    Mutant(
        "coverage-planner-ignores-blind-spots", "coverage", "stackwarden/planner.py",
        "        refusals += _foreign_owners(view, profile, name) + blind_spots(snapshot, profile, name)",
        "        refusals += _foreign_owners(view, profile, name)",
        (F + "test_rbac.py::test_a_forbidden_list_refuses_the_switch",),
        "the planner refuses a service whose runtime was not fully seen",
    ),
    Mutant(
        "coverage-log-gap-dropped", "coverage", "stackwarden/adapters/kubernetes.py",
        "    reads.gaps.append(\n", "    [].append(  # mutant\n",
        (I + "test_dependency_chains.py::test_a_hung_kubelet_marks_only_its_pod_partially_observed",),
        "a log read that times out marks its pod partially observed",
    ),
    Mutant(
        "coverage-unseen-runtime-plannable", "coverage", "stackwarden/planner.py",
        "        for status in snapshot.runtimes\n        if not status.reachable\n    ]\n\n\ndef needs_freed_port",
        "        for status in snapshot.runtimes\n        if False\n    ]\n\n\ndef needs_freed_port",
        (F + "test_hung_apiserver.py",),
        "a runtime that could not be observed refuses the plan",
    ),
    Mutant(
        "coverage-verdict-judges-the-unseen", "coverage", "stackwarden/verdict.py",
        "    if want in blind_runtimes:  # not seen is not down: say so, judge nothing there",
        "    if False:  # mutant",
        (
            F + "test_never_worse.py::test_apiserver_killed_after_the_break_leaves_the_new_owners_serving",
            F + "test_never_worse.py::test_apiserver_frozen_after_the_break_is_not_a_failure",
        ),
        "verify judges nothing where it could not see",
    ),
    # ----------------------------------------------------------------------------- switch: run layer
    Mutant(
        "verify-no-settle-window", "switch", "stackwarden/run/switch.py",
        "            if now - held_since >= settle_seconds:", "            if True:  # mutant",
        (I + "test_verify_settles.py",),
        "verify passes only after the invariants held for the settle window",
    ),
    Mutant(
        "verify-window-cut-at-the-deadline", "switch", "stackwarden/run/switch.py",
        "            end = max(deadline, held_since + settle_seconds)", "            end = deadline  # mutant",
        (U + "test_run_switch.py::test_once_the_invariants_hold_the_settle_window_is_completed_even_past_the_deadline",),  # noqa: E501
        "once the invariants hold, the settle window is completed even past the deadline",
    ),
    Mutant(
        "stops-unbounded", "switch", "stackwarden/run/executor.py",
        "MAX_CONCURRENT_STOPS = 4", "MAX_CONCURRENT_STOPS = 64",
        (U + "test_run_switch.py::test_at_most_four_stops_run_at_once_in_process",),
        "the break phase runs at most 4 stops at once",
    ),
    Mutant(
        "hybrid-guard-ignores-host-ports", "switch", "stackwarden/planner.py",
        '            for port in pod.host_ports if pod.phase not in {"Succeeded", "Failed"} else ():',
        "            for port in ():  # mutant",
        (U + "test_planner_verdict.py::test_hybrid_guard_refuses_a_host_port_of_a_pod_that_compose_publishes_too",),
        "the hybrid guard counts a pod's hostPort as a Kubernetes exposure",
    ),
    Mutant(
        "make-before-break-no-wait", "switch", "stackwarden/run/switch.py",
        "        if missing:\n            reason = \"new owners did not serve",
        "        if False:\n            reason = \"new owners did not serve",
        (
            F + "test_never_worse.py::test_a_new_owner_that_never_serves_is_undone_before_anything_stops",
            I + "test_switch_review.py::test_make_phase_compose_up_of_two_services_waits_for_their_profile_names",
        ),
        "new owners must serve before the old ones stop (make before break)",
    ),
    Mutant(
        "rollback-not-reversed", "switch", "stackwarden/run/switch.py",
        "    for step in reversed(run.applied):\n        _undo_one(run, step, book)",
        "    for step in run.applied:\n        _undo_one(run, step, book)",
        (I + "test_switch.py::test_failed_verification_rolls_back_in_reverse_and_ends_failed",),
        "a rollback undoes in reverse order",
    ),
    Mutant(
        "rollback-stops-the-last-owner", "switch", "stackwarden/run/switch.py",
        '    if step.phase in {"make", "start"} and services & book.unrestored:',
        "    if False:  # mutant",
        (
            I + "test_switch.py::test_failed_verification_rolls_back_in_reverse_and_ends_failed",
            F + "test_never_worse.py::test_an_undo_that_fails_halfway_keeps_what_serves_and_says_how_to_finish",
        ),
        "a rollback never stops a new owner whose old one could not be brought back",
    ),
    Mutant(
        "rollback-no-restart-of-new-owner", "switch", "stackwarden/run/switch.py",
        "        _restart_new_owners(run, services, book)", "        pass  # mutant",
        (F + "test_never_worse.py::test_an_undo_that_fails_halfway_keeps_what_serves_and_says_how_to_finish",),
        "a new owner stopped for an old one that then failed to start is started again",
    ),
    Mutant(
        "refusal-read-as-rollback", "switch", "stackwarden/run/switch.py",
        "    return (\n        not applied\n        and any(r.status is StepStatus.REFUSED for r in results)",
        "    return False and (\n        not applied\n        and any(r.status is StepStatus.REFUSED for r in results)",
        (F + "test_write_denied_after_preflight.py",),
        "a step refused before anything changed ends 'refused' (exit 4), not 'rolled back'",
    ),
    Mutant(
        "failed-step-not-undone", "switch", "stackwarden/planner.py",
        "    return step.UNDO_AFTER_FAILURE\n", "    return False  # mutant\n",
        (I + "test_switch_review.py::test_a_compose_up_that_fails_halfway_is_undone_by_the_rollback",),
        "a failed step that may have half-happened (compose up) is undone too",
    ),
    Mutant(
        "blind-verify-rolls-back", "switch", "stackwarden/run/switch.py",
        "    if result.blind:\n", "    if False:  # mutant\n",
        (
            F + "test_never_worse.py::test_apiserver_killed_after_the_break_leaves_the_new_owners_serving",
            F + "test_never_worse.py::test_apiserver_frozen_after_the_break_is_not_a_failure",
        ),
        "a verify blind until its deadline leaves the host as it is (unverified), never rolls back",
    ),
    Mutant(
        "stops-one-after-the-other", "switch", "stackwarden/run/executor.py",
        "        if concurrent and len(steps) > 1:", "        if False:  # mutant",
        (F + "test_concurrent_stops.py",),
        "independent stops run concurrently",
    ),
    Mutant(
        "reviewed-digest-not-checked", "switch", "stackwarden/run/switch.py",
        "        if expected_digest is not None and the_plan.digest != expected_digest:",
        "        if False:  # mutant",
        (I + "test_switch.py::test_dry_run_changes_nothing",),
        "what runs is what was reviewed: a changed plan digest refuses",
    ),
    Mutant(
        "approval-not-rechecked", "switch", "stackwarden/run/switch.py",
        "    if not fresh.applicable or fresh.digest != approved.digest:", "    if False:  # mutant",
        (E + "test_switch_approval.py",),
        "after an approval the run re-observes and applies only a plan with the approved digest",
    ),
    Mutant(
        "journal-intent-not-written", "switch", "stackwarden/adapters/journal.py",
        "        self._seq += 1\n        undo = step.undo()",
        "        self._seq += 1\n        return self._seq  # mutant\n        undo = step.undo()",
        (I + "test_interrupted_switch.py",),
        "every step's intent is on disk before the step runs",
    ),
    Mutant(
        "repair-skipped", "switch", "stackwarden/run/switch.py",
        "        repaired = repair_interrupted(profile, executor) if apply else Repaired()",
        "        repaired = Repaired()  # mutant",
        (I + "test_interrupted_switch.py", E + "test_cli_killed.py::test_a_killed_switch_leaves_no_server_and_the_next_one_repairs_and_crashes_its_run"),  # noqa: E501
        "the next switch repairs what a killed one left half done",
    ),
    Mutant(
        "repair-scope-unchecked", "switch", "stackwarden/model/journal.py",
        "    services = [s for s in step.profile_services if s not in profile.services]\n",
        "    return None  # mutant\n    services = [s for s in step.profile_services if s not in profile.services]\n",
        (
            I + "test_interrupted_switch.py",
            "tests/unit/test_journal.py::test_a_planted_repair_outside_the_profile_refuses_the_switch_and_runs_nothing",
        ),
        "a repair step outside the profile's scope refuses the switch and is never executed",
    ),
    Mutant(
        "repair-overwrites-a-new-policy", "switch", "stackwarden/adapters/docker.py",
        '    if now != "no":\n        LOG.warning(',
        '    if False:  # mutant\n        LOG.warning(',
        (I + "test_interrupted_switch.py",),
        "a repair restores a paused restart policy only while it is still 'no'",
    ),
    Mutant(
        "repair-starts-a-second-copy", "switch", "stackwarden/adapters/host.py",
        "            if _verified(replaces[0], replaces[1], None) is not None:", "            if False:  # mutant",
        (I + "test_interrupted_switch.py",),
        "a start never makes a second copy of a process that still runs",
    ),
    Mutant(
        "dry-run-takes-no-lock-but-applies", "switch", "stackwarden/run/switch.py",
        "        if not apply:\n            return SwitchOutcome(status=SwitchStatus.DRY_RUN",
        "        if False:\n            return SwitchOutcome(status=SwitchStatus.DRY_RUN",
        (I + "test_switch.py::test_dry_run_changes_nothing",),
        "a switch is a dry run unless --apply",
    ),
    # ----------------------------------------------------------------------------- switch: steps, identity
    Mutant(
        "pid-reuse-not-rechecked", "identity", "stackwarden/adapters/host.py",
        "    if abs(started - create_time) > 0.05 or (exe is not None and current_exe != exe):",
        "    if False:  # mutant",
        (I + "test_switch_safety.py::test_reused_pid_is_refused_and_not_signalled",),
        "right before its signal, the PID must still have the start time and exe the plan saw",
    ),
    Mutant(
        "container-identity-not-rechecked", "identity", "stackwarden/adapters/docker.py",
        '    if inspect.get("Id") != container_id or labels.get(PROJECT_LABEL) != project:',
        "    if False:  # mutant",
        (I + "test_switch_safety.py", I + "test_stateful_stop.py"),
        "a container step re-checks the container's id and compose project before acting",
    ),
    Mutant(
        "workload-uid-not-rechecked", "identity", "stackwarden/adapters/kubernetes.py",
        "        if meta.uid != uid:\n", "        if False:  # mutant\n",
        (I + "test_kube_allowlist.py", F + "test_rbac.py"),
        "a scale re-reads the workload: a recreated one (another uid) refuses",
    ),
    Mutant(
        "workload-generation-not-rechecked", "identity", "stackwarden/adapters/kubernetes.py",
        "        if expected_generation is not None and (meta.generation or 0) != expected_generation:",
        "        if False:  # mutant",
        (I + "test_kube_allowlist.py", F + "test_rbac.py"),
        "a scale refuses a workload whose spec changed since the plan (generation)",
    ),
    Mutant(
        "allowed-servers-not-rechecked", "identity", "stackwarden/adapters/kubernetes.py",
        "    if acting and not spec.allows(context.name, context.server):", "    if False:  # mutant",
        (I + "test_kube_allowlist.py",),
        "the allowlist (context and API server) is checked again just before scaling",
    ),
    Mutant(
        "context-allowlist-not-planned", "identity", "stackwarden/planner.py",
        "    if not kube.context.allowed or spec is None or not spec.allows(kube.context.name, kube.context.server):",
        "    if False:  # mutant",
        (I + "test_switch.py::test_context_outside_allowlist_is_refused_before_any_change",),
        "a context outside allowed_contexts is refused before any change",
    ),
    Mutant(
        "identity-owner-unchecked", "identity", "stackwarden/identity.py",
        "    uids = set(process.uids) or ({process.uid} if process.uid is not None else set())\n    if not uids:\n"
        '        return "its owner cannot be read"',
        "    return None  # mutant",
        (I + "test_host_identity_real.py",),
        "a host process is the service only if it runs as an allowed user",
    ),
    Mutant(
        "identity-name-is-enough", "identity", "stackwarden/identity.py",
        '    if exe.rsplit("/", 1)[-1] in matcher.executables or exe in files:', "    if True:  # mutant",
        (I + "test_host_identity_real.py",),
        "a host process is the service only if its executable file is the service's, never its name",
    ),
    Mutant(
        "user-manager-unit-trusted", "steps", "stackwarden/planner.py",
        '    if not observed or observed.startswith("user@"):', "    if not observed:  # mutant",
        (F + "test_user_unit.py",),
        "a process in a user manager's unit is stopped by signal, never systemctl stop of the unit",
    ),
    Mutant(
        "stateful-unit-systemctl-stop", "steps", "stackwarden/adapters/host.py",
        "        if stateful:\n            return _stop_stateful_unit(",
        "        if False:\n            return _stop_stateful_unit(",
        (F + "test_stateful_unit.py",),
        "a stateful unit gets its clean signal through systemctl kill, never systemctl stop",
    ),
    Mutant(
        "unit-pid-not-rechecked", "steps", "stackwarden/adapters/host.py",
        "        _held_by(pid, systemd_unit)\n", "        pass  # mutant\n",
        (F + "test_stateful_unit.py", F + "test_user_unit.py"),
        "right before acting the PID must still be in the unit",
    ),
    Mutant(
        "stateful-container-sigkilled", "steps", "stackwarden/adapters/docker.py",
        '        if stateful and not force and not state.get("Restarting"):', "        if False:  # mutant",
        (
            I + "test_switch_safety.py::test_stateful_container_is_not_sigkilled_without_force",
            I + "test_stateful_stop.py",
        ),
        "a stateful container is stopped gracefully, never SIGKILLed without --force",
    ),
    Mutant(
        "stateful-container-drift-ignored", "steps", "stackwarden/adapters/docker.py",
        "            if now != how:\n", "            if False:  # mutant\n",
        (I + "test_stateful_stop.py::test_a_stateful_container_that_is_not_as_planned_is_refused",),
        "the switch refuses a container whose stop signal or restart policy is not what was planned",
    ),
    Mutant(
        "paused-policy-not-restored", "steps", "stackwarden/adapters/docker.py",
        "    finally:\n        if how.pause_restart_policy is not None:\n            _restore_if_paused(",
        "    finally:\n        if False:  # mutant\n            _restore_if_paused(",
        (I + "test_stateful_stop.py",),
        "a restart policy paused for a graceful stop is put back whatever happens",
    ),
    Mutant(
        "stateful-process-sigkilled", "steps", "stackwarden/adapters/host.py",
        "    if stateful and not force:\n        raise StackwardenError(\n"
        '            f"PID {pid} ({proc.name()}) did not stop within',
        "    if False:\n        raise StackwardenError(\n"
        '            f"PID {pid} ({proc.name()}) did not stop within',
        (F + "test_prefect_retries.py", I + "test_switch_safety.py"),
        "a stateful host process that outlives its grace period is never SIGKILLed without --force",
    ),
    Mutant(
        "rollback-start-as-root", "steps", "stackwarden/adapters/host.py",
        "    if run_as is not None and (run_as.uid, run_as.gid) != (os.getuid(), os.getgid()):",
        "    if False:  # mutant",
        (I + "test_rollback_identity.py",),
        "a rollback starts a host process as the user the stopped one ran as",
    ),
    Mutant(
        "compose-up-recreates", "steps", "stackwarden/adapters/compose.py",
        '["up", "-d", "--no-deps", "--no-recreate", *services]', '["up", "-d", "--no-deps", *services]',
        (I + "test_switch_review.py::test_compose_up_never_recreates_a_container_created_by_hand_after_the_plan",),
        "compose up never recreates a container made after the plan",
    ),
    Mutant(
        "stopped-container-counted-as-changed", "steps", "stackwarden/adapters/docker.py",
        '        if not state.get("Running") and not state.get("Restarting"):\n'
        '            return Unchanged("already stopped")',
        '        if not state.get("Running") and not state.get("Restarting"):\n'
        '            return "already stopped"  # mutant',
        (I + "test_switch_review.py::test_rollback_never_starts_a_container_the_switch_found_stopped",),
        "a rollback never starts a container the switch found stopped",
    ),
    Mutant(
        "retried-switch-step", "steps", "tasks/switch.py",
        "    retries=0,  # explicit: PREFECT_TASK_DEFAULT_RETRIES must not repeat a step behind the plan\n"
        "    task_run_name=_step_run_name,",
        "    task_run_name=_step_run_name,",
        (F + "test_prefect_retries.py",),
        "Prefect's default retries never send a failed step again",
    ),
    # ----------------------------------------------------------------------------- locks
    Mutant(
        "lock-follows-symlink", "locks", "stackwarden/adapters/lock.py",
        "os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY",
        "os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY",
        (I + "test_locks.py::test_a_planted_symlink_is_refused_and_its_target_untouched",),
        "a symlink planted at a lock path is refused and its target never opened",
    ),
    Mutant(
        "lock-dir-shared-accepted", "locks", "stackwarden/adapters/lock.py",
        "    if info.st_mode & 0o022:\n        raise LockedError", "    if False:\n        raise LockedError",
        (I + "test_locks.py::test_a_symlinked_or_shared_lock_directory_is_refused",),
        "a lock directory others may write is refused",
    ),
    Mutant(
        "lock-no-port-keys", "locks", "stackwarden/adapters/lock.py",
        '    keys |= {f"port:{port}" for port in profile.all_ports()}', "    pass  # mutant",
        (I + "test_locks.py::test_two_profiles_sharing_a_port_cannot_switch_at_once",),
        "two profiles sharing a port cannot switch at once",
    ),
    Mutant(
        "lock-no-process-keys", "locks", "stackwarden/adapters/lock.py",
        '    keys |= {f"process:{name}" for name in portless_process_names(profile)}', "    pass  # mutant",
        (I + "test_locks.py::test_two_profiles_that_can_stop_one_portless_process_cannot_switch_at_once",),
        "two profiles that can stop one port-less process cannot switch at once",
    ),
    Mutant(
        "switch-takes-no-lock", "locks", "stackwarden/run/switch.py",
        "        if apply\n        else contextlib.nullcontext()",
        "        if False\n        else contextlib.nullcontext()",
        (I + "test_switch_safety.py::test_second_concurrent_switch_fails_fast_naming_the_holder",),
        "a second switch fails fast naming the holder",
    ),
    Mutant(
        "dry-run-takes-the-lock", "locks", "stackwarden/run/switch.py",
        "        if apply\n        else contextlib.nullcontext()",
        "        if True\n        else contextlib.nullcontext()",
        (U + "test_run_switch.py::test_a_dry_run_takes_no_lock_and_an_apply_waits_for_none",),
        "a dry run takes no lock",
    ),
    # ----------------------------------------------------------------------------- preflight
    Mutant(
        "preflight-skipped", "preflight", "stackwarden/adapters/preflight.py",
        "    if not plan.steps:\n        return []", "    if True:\n        return []",
        (F + "test_preflight_compose.py", F + "test_rbac.py::test_read_allowed_write_forbidden_is_refused_by_preflight_with_zero_writes"),  # noqa: E501
        "everything checkable is checked before the first change, every failure in one refusal",
    ),
    Mutant(
        "preflight-images-unchecked", "preflight", "stackwarden/adapters/preflight.py",
        "    if needed:\n        try:\n            images = missing_images(",
        "    if False:\n        try:\n            images = missing_images(",
        (F + "test_preflight_compose.py::test_dependency_outside_the_profile_and_a_missing_image_in_one_refusal",),
        "a missing image is refused by preflight",
    ),
    Mutant(
        "preflight-access-reviews-skipped", "preflight", "stackwarden/adapters/preflight.py",
        "    if wanted.access and profile.kubernetes is not None:", "    if False:  # mutant",
        (F + "test_rbac.py::test_read_allowed_write_forbidden_is_refused_by_preflight_with_zero_writes",),
        "a read-only identity is refused by preflight (access reviews) with zero writes",
    ),
    Mutant(
        "report-mode-preflight-skipped", "preflight", "stackwarden/pipeline.py",
        "        if the_plan.applicable and the_plan.steps:\n            failing = preflight(",
        "        if False:\n            failing = preflight(",
        (I + "test_audit_preflight.py",),
        "the report's mode sections never offer a plan the switch would refuse",
    ),
    # ----------------------------------------------------------------------------- observation
    Mutant(
        "observe-served-from-cache", "observe", "tasks/observe.py",
        "    retry_condition_fn=retry_on_transient,\n    cache_policy=NO_CACHE,\n    persist_result=False,\n)\n"
        "def observe_host_task(",
        "    retry_condition_fn=retry_on_transient,\n)\ndef observe_host_task(",
        (E + "test_audit_nocache.py", F + "test_persistence.py"),
        "a live observation is never served from a cache, whatever Prefect's settings",
    ),
    Mutant(
        "docker-inspects-everything", "observe", "stackwarden/adapters/docker.py",
        '    status = str(summary.get("Status", ""))\n    if summary.get("State") != "running"',
        '    return True  # mutant\n'
        '    status = str(summary.get("Status", ""))\n    if summary.get("State") != "running"',
        (I + "test_docker_api_calls.py::test_api_calls_do_not_grow_with_healthy_containers",),
        "Docker API calls do not grow with healthy containers",
    ),
    # ----------------------------------------------------------------------------- the served side
    Mutant(
        "open-server-accepted", "served", "flows/api_access.py",
        "    if allowed:\n        return\n    if answers_without_credentials(api_url):",
        "    if True:\n        return\n    if answers_without_credentials(api_url):",
        (
            E + "test_open_server.py::test_serve_and_worker_refuse_a_server_that_lets_anyone_in",
            F + "test_approval_policy.py::test_a_deployment_switch_refuses_a_server_that_lets_anyone_in",
        ),
        "serve, the worker and deployed switches refuse a server that lets anyone in",
    ),
    Mutant(
        "local-server-no-secret", "served", "flows/local_server.py",
        '        env["PREFECT_SERVER_API_AUTH_STRING"] = secret', "        pass  # mutant",
        (O + "test_served_safely.py::test_home_and_files_are_private_and_anonymous_calls_get_401",),
        "serve's own server requires its secret on every API call",
    ),
    Mutant(
        "local-server-csrf-off", "served", "flows/local_server.py",
        'PREFECT_SERVER_CSRF_PROTECTION_ENABLED="true",', 'PREFECT_SERVER_CSRF_PROTECTION_ENABLED="false",',
        (O + "test_served_safely.py::test_home_and_files_are_private_and_anonymous_calls_get_401",),
        "serve's own server has CSRF protection on",
    ),
    Mutant(
        "local-server-home-open", "served", "flows/local_server.py",
        "    os.chmod(home, PRIVATE_DIR_MODE)", "    os.chmod(home, 0o755)  # mutant",
        (O + "test_served_safely.py::test_home_and_files_are_private_and_anonymous_calls_get_401",),
        "the server's home is 0700",
    ),
    Mutant(
        "served-profile-by-path", "served", "stackwarden/profiles.py",
        "    if path:\n        if deployment_run or served_env:", "    if path:\n        if False:",
        (O + "test_served_safely.py::test_a_caller_with_the_secret_chooses_no_file",),
        "a served run chooses its profile by name, never a file",
    ),
    Mutant(
        "served-metrics-by-path", "served", "flows/served.py",
        "    if prometheus_path:\n        if deployment_run or served_environment():",
        "    if prometheus_path:\n        if False:",
        (O + "test_served_safely.py::test_a_caller_with_the_secret_chooses_no_file",),
        "a served run writes its metrics where serve says, never where a parameter says",
    ),
    Mutant(
        "served-other-host", "served", "flows/served.py",
        "    if deployment_run and host != fixed_host():", "    if False:  # mutant",
        (O + "test_served_safely.py::test_a_caller_with_the_secret_chooses_no_file",),
        "a served run may only repeat its own host",
    ),
    Mutant(
        "approval-policy-from-parameters", "served", "flows/switch.py",
        "    if deployment.id:\n        note = None", "    if False:\n        note = None",
        (F + "test_approval_policy.py::test_a_deployment_run_pauses_whatever_its_parameters",),
        "a deployment run always pauses for approval and never forces, whatever its parameters",
    ),
    Mutant(
        "deployment-run-keeps-force", "served", "flows/switch.py",
        '        return "ui", False, note', '        return "ui", force, note',
        (F + "test_approval_policy.py::test_an_approved_deployment_run_never_forces",),
        "an approved deployment run never SIGKILLs a stateful process, whatever its force parameter",
    ),
    Mutant(
        "strict-modes-off", "served", "stackwarden/profiles.py",
        "    return os.geteuid() == 0", "    return False  # mutant",
        (E + "test_cli_refusals.py", U + "test_served_choices.py::test_root_refuses_a_profile_others_may_change"),
        "run as root, a profile (compose file, kubeconfig) anyone but root may change is refused",
    ),
    Mutant(
        "serve-cancels-at-once", "served", "flows/serve.py",
        "        self._begin_drain()\n        self.execute_in_background(self._drain_then_stop)",
        "        self._begin_drain()\n        self.execute_in_background(self.astop)  # mutant",
        (O + "test_serve_drain.py::test_sigterm_lets_an_audit_in_flight_finish",),
        "SIGTERM lets runs in flight finish before serve stops",
    ),
    Mutant(
        "worker-takes-job-variables", "served", "flows/worker.py",
        '            "env": run_environment(flow_run),', '            "env": configuration.env,  # mutant',
        (O + "test_worker.py",),
        "the worker fixes each run's environment; job variables change nothing",
    ),
    # ----------------------------------------------------------------------------- sanitizer choke points
    Mutant(
        "sanitize-document-gate-off", "sanitizer", "stackwarden/sanitize.py",
        "    return cap_lines(redact(strip_controls(text)))", "    return text  # mutant",
        (E + "test_hostile_strings.py",),
        "the whole rendered document passes the last gate (controls, secrets, line caps)",
    ),
    Mutant(
        "sanitize-json-off", "sanitizer", "stackwarden/sanitize.py",
        "    if isinstance(value, str):\n        return cap(redact(strip_controls(value)), limit)",
        "    if isinstance(value, str):\n        return value  # mutant",
        (E + "test_hostile_strings.py",),
        "JSON output passes sanitize.deep, every string and key",
    ),
    Mutant(
        "sanitize-cell-pipes", "sanitizer", "stackwarden/sanitize.py",
        '    return md_inline(text, limit).replace("|", "\\\\|") or "-"', '    return md_inline(text, limit) or "-"',
        (E + "test_hostile_strings.py",),
        "a table cell escapes pipes: a hostile report has the same rows as a benign one",
    ),
    Mutant(
        "sanitize-cli-out-raw", "sanitizer", "flows/cli.py",
        "    target.write((strip_controls(text) if json_text else terminal(text)) + end)",
        "    target.write(text + end)  # mutant",
        (E + "test_hostile_strings.py",),
        "the CLI prints only through the sanitizer",
    ),
    Mutant(
        "sanitize-artifact-raw", "sanitizer", "tasks/publish.py",
        "        markdown=sanitize.document(markdown), key=key", "        markdown=markdown, key=key",
        (E + "test_hostile_strings.py",),
        "markdown artifacts pass the document gate",
    ),
    Mutant(
        "sanitize-event-raw", "sanitizer", "tasks/publish.py",
        "        payload=sanitize.deep(dict(payload)) if payload is not None else None,",
        "        payload=dict(payload) if payload is not None else None,",
        (O + "test_automations.py", E + "test_hostile_strings.py"),
        "event payloads are sanitized",
    ),
    Mutant(
        "sanitize-log-records-raw", "sanitizer", "stackwarden/sanitize.py",
        "    logging.setLogRecordFactory(factory)", "    pass  # mutant",
        (E + "test_hostile_strings.py",),
        "every log record is sanitized when it is created",
    ),
    Mutant(
        "sanitize-adapter-log-lines-raw", "sanitizer", "stackwarden/adapters/docker.py",
        "    return tuple(redact_lines(line for line in text.splitlines() if line.strip()))",
        "    return tuple(line for line in text.splitlines() if line.strip())  # mutant",
        (E + "test_hostile_strings.py",),
        "observed log lines are redacted at the adapter boundary (the snapshot holds no secret)",
    ),
)
# fmt: on
