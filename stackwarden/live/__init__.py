"""The live view, pure: a snapshot kept up to date by changes instead of re-observed whole.

``state`` applies what the watches report (a container described again, a pod from a watch
event, the host's sockets re-read, a lost stream) to the per-runtime parts and assembles the
same ``Snapshot`` a whole observation would; ``findings`` turns two diagnoses into finding
changes without reading a gap as "resolved"; ``lines`` renders those changes for a terminal or
as JSON. No I/O here: the watches are adapters, the loop that runs them is ``stackwarden.watch``.
"""
