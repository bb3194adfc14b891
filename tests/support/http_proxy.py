"""A counting, fault-injecting proxy in front of the real Docker socket (real parts, not mocks:
faults go through a proxy in front of the real endpoint rather than a fake of it).

It parses HTTP/1.1 requests from the client (keep-alive included) to count them, forwards
them unchanged, and copies responses back byte for byte. ``fail_next`` answers the next N
requests itself with a status (e.g. 503 or 429) instead of forwarding them, ``fail_if`` every
request it picks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CountingProxy:
    """Unix-socket HTTP proxy; ``requests`` lists "METHOD /path" for every request seen."""

    listen_path: Path
    upstream_path: str = "/var/run/docker.sock"
    requests: list[str] = field(default_factory=list)
    fail_next: int = 0
    fail_status: str = "503 Service Unavailable"
    retry_after: int | None = None
    fail_if: Callable[[str, str, bytes], bool] | None = None
    """Answer every request for which this says so (method, path, body) with ``fail_status``."""
    _server: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.listen_path}"

    def start(self) -> None:
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(self.listen_path))
        self._server.listen(32)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.listen_path.unlink()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.connect(self.upstream_path)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                while len(buffer) < length:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                with self._lock:
                    self.requests.append(f"{method} {path}")
                    inject = self.fail_next > 0
                    if inject:
                        self.fail_next -= 1
                    inject = inject or (self.fail_if is not None and self.fail_if(method, path, body))
                if inject:
                    extra = f"Retry-After: {self.retry_after}\r\n" if self.retry_after is not None else ""
                    payload = b'{"message":"injected by test proxy"}'
                    client.sendall(
                        f"HTTP/1.1 {self.fail_status}\r\nContent-Type: application/json\r\n{extra}"
                        f"Content-Length: {len(payload)}\r\n\r\n".encode()
                        + payload
                    )
                    continue
                upstream.sendall(head + b"\r\n\r\n" + body)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()
