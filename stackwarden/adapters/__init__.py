"""The only I/O: Docker (docker-py), the host (psutil), Kubernetes (official client).

Adapters convert wire payloads into domain models at the boundary and retry transport blips
with tenacity; they never import Prefect (docs/architecture.md, "Layers" and "Retries").
"""
