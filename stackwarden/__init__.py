"""stackwarden: one application stack, one runtime per service.

The package is the pure domain (models, rules, crash classification, reports) plus the
adapters that are its only I/O. Prefect lives in the top-level ``tasks`` and ``flows``
packages, so everything here can be imported and tested without an orchestrator.
"""

__version__ = "0.1.0"
