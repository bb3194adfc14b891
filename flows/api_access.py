"""Whether a Prefect server lets anyone in: serve, the worker and deployed switches refuse one that
does, because whoever may call its API may start and approve a switch that root carries out.

The question is asked the way an intruder would: one API call with no credentials at all (no
``PREFECT_API_AUTH_STRING``, no ``PREFECT_API_KEY``). A server that answers it with data is open;
401 or 403 means it checks who calls. This module imports no Prefect, so it can run before
Prefect reads its settings.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from stackwarden.errors import StackwardenError

ALLOW_UNAUTHENTICATED_ENV = "STACKWARDEN_ALLOW_UNAUTHENTICATED_API"
"""Set to 1 (by ``--allow-unauthenticated-api``) to accept a server that lets anyone in."""


class OpenServerError(StackwardenError):
    """The Prefect server answers API calls without authentication (and that was not allowed)."""


class UnreachableServerError(StackwardenError):
    """The Prefect server could not be asked (down, wrong URL, TLS failure)."""


def answers_without_credentials(api_url: str, timeout: float = 10.0) -> bool:
    """True when ``GET {api_url}/admin/version`` succeeds with no credentials; False on 401/403.

    Anything else (a redirect to a login page, a 5xx, no answer) cannot be judged and raises
    ``UnreachableServerError`` naming the URL: a check that cannot tell must not say "closed"."""
    url = api_url.rstrip("/") + "/admin/version"
    if not url.startswith(("http://", "https://")):
        raise UnreachableServerError(f"PREFECT_API_URL {api_url} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - no credentials sent
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            response.read(256)
            return bool(200 <= response.status < 300)
    except urllib.error.HTTPError as exc:
        if exc.code in {401, 403}:
            return False
        raise UnreachableServerError(f"the Prefect API at {api_url} answered {exc.code} to {url}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UnreachableServerError(f"the Prefect API at {api_url} does not answer ({reason})") from None


def unauthenticated_allowed() -> bool:
    """True when the operator accepted a server without authentication for this process."""
    return os.environ.get(ALLOW_UNAUTHENTICATED_ENV, "").lower() in {"1", "true", "yes"}


def require_authentication(api_url: str, *, allowed: bool) -> None:
    """Refuse (``OpenServerError``, one line naming the URL and the reason) a server that answers
    API calls without credentials, unless ``allowed``."""
    if allowed:
        return
    if answers_without_credentials(api_url):
        raise OpenServerError(
            f"the Prefect API at {api_url} answers API calls without authentication: anyone who can reach it "
            "could start and approve a switch that runs as root here; give the server "
            "PREFECT_SERVER_API_AUTH_STRING (and TLS), or pass --allow-unauthenticated-api to accept it"
        )
