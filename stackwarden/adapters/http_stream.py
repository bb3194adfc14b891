"""An open streaming HTTP answer of JSON lines, shared by the standard-library transports
(``engine_http`` for the engine's events, ``kube_http`` for the apiserver's watches)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any


class Stream:
    """An open streaming answer: iterate its JSON lines; ``close`` (from any thread) ends the
    iteration, as a lost connection would."""

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._response = response
        self.closed_by_us = False

    def __iter__(self) -> Iterator[Any]:
        try:
            while line := self._response.readline():
                if line.strip():
                    yield json.loads(line)
        except (OSError, ValueError, http.client.HTTPException):
            if not self.closed_by_us:  # the connection really broke
                raise
        finally:
            self._conn.close()

    def close(self) -> None:
        """Shut the connection down from any thread (unblocks a reader waiting on it)."""
        self.closed_by_us = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
