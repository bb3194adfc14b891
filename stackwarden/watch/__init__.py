"""The live view at work: the watches of every runtime in threads, the loop that folds their
changes into the state and re-diagnoses, and the local socket through which a running
``stackwarden serve`` answers ``stackwarden audit``. No Prefect here: ``stackwarden watch`` runs
this alone, ``serve`` adds the Prefect events as a sink.

Nothing is imported here, so the audit's client (``stackwarden.watch.answer``) loads alone.
"""
