"""A small OpenAI-compatible provider for tests and benchmarks: real HTTP on 127.0.0.1.

Interface (used by tests/models_registry, bench/generation.py and the RLHF loop's tests)::

    with FakeProvider(api_key="sk-test", latency=0.05) as fake:
        fake.base_url           # "http://127.0.0.1:<port>/v1"
        fake.faults.extend(["429", "timeout", "malformed", "500"])  # next requests, FIFO
        fake.requests           # every chat request's JSON body, in arrival order
        fake.stats()            # {"chat": n, "models": n, "faults": {...}, "unauthorized": n}

- ``GET /v1/models``: ``{"object": "list", "data": [{"id": <model>, ...}]}``.
- ``POST /v1/chat/completions``: OpenAI's chat completion shape (``choices[0].message
  .content``, ``finish_reason``, ``usage`` with prompt/completion/total tokens).  Tokens are
  counted as whitespace-separated words; the answer is cut to ``max_tokens`` words (then
  ``finish_reason`` is ``"length"``).
- Both need ``Authorization: Bearer <api_key>`` when ``api_key`` is set (else 401).
- Every answer waits ``latency`` seconds first (a fixed server-side latency for benchmarks).
- Faults, taken one per chat request from ``faults`` (a thread-safe FIFO):
  ``"429"`` (with ``Retry-After: <retry_after>``), ``"500"``, ``"503"``, ``"timeout"``
  (sleeps ``hang`` seconds before answering, past the client's timeout), ``"malformed"``
  (200 with a body that is not JSON), ``"incomplete"`` (200, JSON without ``choices``).
- Markers in the last user message fault on every attempt: ``[[fail:500]]``,
  ``[[fail:malformed]]``, ``[[fail:400]]`` — for prompts that must end with a recorded error.
- The answer text is ``responder(body)`` when given, else a deterministic text naming the
  prompt, the seed (or a counter when there is none) and the temperature, so k samples of
  one prompt differ.  A responder returning lines serves prompt generation.

In a process of its own: ``python -m tests.fake_provider --latency 0.05 [--api-key KEY]``
serves until killed and prints its base URL as the first line (bench/generation.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _words(text: str) -> int:
    return len(text.split())


class FakeProvider:
    """An OpenAI-compatible HTTP server in a thread (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str = "",
        model: str = "fake-model",
        latency: float = 0.0,
        retry_after: str = "0",
        hang: float = 3.0,
        responder: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.latency = latency
        self.retry_after = retry_after
        self.hang = hang
        self.responder = responder
        self.faults: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self._counts: Counter = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        provider = self

        class Handler(_Handler):
            fake = provider

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake provider first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stats(self) -> dict[str, Any]:
        with self._lock:
            faults = {k[6:]: v for k, v in self._counts.items() if k.startswith("fault:")}
            return {
                "chat": self._counts["chat"],
                "models": self._counts["models"],
                "unauthorized": self._counts["unauthorized"],
                "faults": faults,
            }

    # -- behaviour --------------------------------------------------------------------------

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _next_fault(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or [{}]
        last = str(messages[-1].get("content", "")) if isinstance(messages[-1], dict) else ""
        for marker in ("500", "malformed", "400"):
            if f"[[fail:{marker}]]" in last:
                return marker
        try:
            return self.faults.popleft()
        except IndexError:
            return ""

    def answer_text(self, body: dict[str, Any]) -> str:
        if self.responder is not None:
            return self.responder(body)
        messages = body.get("messages") or []
        prompt = str(messages[-1].get("content", "")) if messages else ""
        seed = body.get("seed")
        if seed is None:
            with self._lock:
                self._counts["unseeded"] += 1
                seed = f"n{self._counts['unseeded']}"
        digest = hashlib.sha256(f"{prompt}|{seed}|{body.get('temperature')}".encode()).hexdigest()
        return f"Answer {digest[:8]} to: {prompt[:60]}"


class _Server(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog deep enough for benchmark bursts (the
    default of 5 makes concurrent connects time out)."""

    daemon_threads = True
    request_queue_size = 512


class _Handler(BaseHTTPRequestHandler):
    """One request of the fake provider."""

    fake: FakeProvider
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers (and httpx pools) use
    # Headers and body go out in two writes: with Nagle's algorithm and the client's delayed
    # ACK, every answer would wait about 40 ms more.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet: tests read the provider's counters
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): nothing to answer

    def _authorized(self) -> bool:
        self.fake.authorizations.append(self.headers.get("Authorization", ""))
        if self.fake.api_key and self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            self.fake._count("unauthorized")
            self._send(401, json.dumps({"error": {"message": "Incorrect API key"}}).encode())
            return False
        return True

    def do_GET(self):
        if self.path.rstrip("/") != "/v1/models":
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        if not self._authorized():
            return
        self.fake._count("models")
        model = {"id": self.fake.model, "object": "model", "created": 0, "owned_by": "fake"}
        self._send(200, json.dumps({"object": "list", "data": [model]}).encode())

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        if not self._authorized():
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, b'{"error": {"message": "the body is not JSON"}}')
            return
        fake = self.fake
        with fake._lock:
            fake.requests.append(body)
        fake._count("chat")
        if fake.latency:
            time.sleep(fake.latency)
        fault = fake._next_fault(body)
        if fault:
            fake._count(f"fault:{fault}")
        if fault == "429":
            error = {"error": {"message": "Rate limit reached", "type": "rate_limit"}}
            self._send(429, json.dumps(error).encode(), {"Retry-After": fake.retry_after})
            return
        if fault in ("500", "503", "400"):
            self._send(int(fault), json.dumps({"error": {"message": f"fault {fault}"}}).encode())
            return
        if fault == "timeout":
            time.sleep(fake.hang)
        if fault == "malformed":
            self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"mess')
            return
        if fault == "incomplete":
            self._send(200, b'{"id": "chatcmpl-incomplete", "object": "chat.completion"}')
            return
        text = fake.answer_text(body)
        words = text.split()
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            words, finish = words[:max_tokens], "length"
            text = " ".join(words)
        prompt_tokens = sum(_words(str(m.get("content", ""))) for m in body.get("messages", []))
        answer = {
            "id": f"chatcmpl-{fake._counts['chat']}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", fake.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            },
        }
        self._send(200, json.dumps(answer).encode())


def main() -> None:
    """``python -m tests.fake_provider --latency 0.05``: serve until killed, in a process of
    its own (benchmarks: the server then shares no interpreter lock with the client).
    Prints the base URL on the first line of stdout."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--api-key", default="")
    parser.add_argument("--model", default="fake-model")
    args = parser.parse_args()
    fake = FakeProvider(api_key=args.api_key, model=args.model, latency=args.latency).start()
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
