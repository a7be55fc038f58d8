"""A tiny HTTP server for tests: 127.0.0.1 on a free port, routes with scripted faults, stopped at the end.

Each route has a list of behaviours; request n gets behaviour n (the last one repeats), so "a 500 then
success" is `server.route("/a.png", Status(500), Body(data))`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Body:
    """200 with these bytes."""

    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Status:
    """An error status with a short body."""

    code: int


@dataclass(frozen=True)
class Drop:
    """Announce the full length, send only the first `fraction` of the body, then close the connection."""

    data: bytes
    fraction: float = 0.5


@dataclass(frozen=True)
class Slow:
    """Wait `delay_s` before answering (a response slower than the client's timeout), then send `data`."""

    data: bytes
    delay_s: float


Behaviour = Body | Status | Drop | Slow


class TestServer:
    """Routes, per-path hit counts and the base URL of a running server."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.routes: dict[str, list[Behaviour]] = {}
        self.hits: dict[str, int] = defaultdict(int)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *behaviours: Behaviour) -> str:
        """Serve `behaviours` in turn at `path`; return its URL."""
        self.routes[path] = list(behaviours)
        return self.url(path)

    def next_behaviour(self, path: str) -> Behaviour | None:
        with self._lock:
            behaviours = self.routes.get(path)
            count = self.hits[path]
            self.hits[path] += 1
        if not behaviours:
            return None
        return behaviours[min(count, len(behaviours) - 1)]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # wakes Slow handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: TestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            behaviour = server.next_behaviour(path)
            if behaviour is None:
                self._send(404, b"not found", "text/plain")
            elif isinstance(behaviour, Body):
                self._send(200, behaviour.data, behaviour.content_type)
            elif isinstance(behaviour, Status):
                self._send(behaviour.code, b"scripted failure", "text/plain")
            elif isinstance(behaviour, Slow):
                if not server.stopping.wait(behaviour.delay_s):
                    with contextlib.suppress(OSError):
                        self._send(200, behaviour.data, "application/octet-stream")
            elif isinstance(behaviour, Drop):
                cut = int(len(behaviour.data) * behaviour.fraction)
                self.send_response(200)
                self.send_header("Content-Length", str(len(behaviour.data)))
                self.end_headers()
                self.wfile.write(behaviour.data[:cut])
                self.wfile.flush()
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, code: int, data: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextlib.contextmanager
def serve() -> Iterator[TestServer]:
    """Run a `TestServer` for the duration of the block."""
    server = TestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
