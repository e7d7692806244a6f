"""A real local HTTP receiver for webhook tests and the benchmark: a thread running
``http.server``, recording every request it gets and answering from a plan."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival
    status: int  # what the receiver answered


class Receiver:
    """``with Receiver(plan=[500, 500]) as r: ...`` — answers the planned statuses in
    order, then ``default``; ``r.url`` is its address, ``r.requests`` what came."""

    def __init__(self, *, plan: list[int] | None = None, default: int = 200, headers=None):
        self.plan = deque(plan or [])
        self.default = default
        self.extra_headers = dict(headers or {})
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm
            # and the client's delayed ACK add ~40 ms to every keep-alive request.
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.plan.popleft() if receiver.plan else receiver.default
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body,
                                 time.monotonic(), time.time(), status)
                    )  # fmt: skip
                answer = b'{"received": true}' if status < 300 else b"receiver says no"
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
