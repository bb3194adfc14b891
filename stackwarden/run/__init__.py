"""The switch's orchestration as plain code: phases, the make-before-break wait, verify, rollback
and the repair of interrupted runs. It runs behind an ``Executor`` (observe, apply steps,
preflight), so the same decisions run in process (``LocalExecutor``, tests) and as Prefect task
runs (``flows/switch.py`` only wires them). No Prefect here."""
