"""A TCP relay in front of a real endpoint (the apiserver), byte for byte (TLS passes through
untouched), that a test can ``hold``: every connection, open or new, stays open but carries
nothing, as behind a stalled load balancer, until ``drop`` closes them all and relays again."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class TcpProxy:
    upstream: tuple[str, int]
    port: int = 0
    _server: socket.socket | None = None
    _pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    _held_pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    _held: set[int] = field(default_factory=set)
    _holding: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def relaying(self) -> int:
        """How many connections are relayed now (not held)."""
        with self._lock:
            return len(self._pairs)

    def start(self) -> TcpProxy:
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def hold(self) -> None:
        """The connections open now carry nothing more (both ways), and stay open."""
        with self._lock:  # the pumps of a held pair stop relaying; an upstream close never reaches the client
            self._holding = True
            self._held_pairs += self._pairs
            self._held |= {id(sock) for pair in self._pairs for sock in pair}
            self._pairs.clear()

    def drop(self) -> None:
        """Close the held connections: their clients see the connection end."""
        with self._lock:
            held, self._held_pairs, self._holding = self._held_pairs, [], False
        for client, upstream in held:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        with self._lock:  # ids are only unique while the sockets live: new ones may reuse them
            self._held.clear()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.hold()
        self.drop()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                if self._holding:  # a new connection while held: accepted, then nothing
                    self._held_pairs.append((client, client))
                    continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                if id(src) in self._held:
                    continue  # held: swallowed, like a stalled middlebox
                dst.sendall(chunk)
        except OSError:
            pass
        if id(src) not in self._held:
            with self._lock:
                self._pairs = [pair for pair in self._pairs if src not in pair]
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
