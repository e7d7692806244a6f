"""The HTTP side of providers: OpenAI-compatible chat completions under a concurrency limit,
request- and token-per-minute limits, retries with exponential backoff and a token cap.

No database here: :func:`chat_stream` runs the requests on an asyncio loop in a helper
thread (``httpx.AsyncClient``) and hands each finished request back to the caller's
thread, which writes results in batches.  So the platform's cost per request is one
queue hand-off, and throughput is bounded by the limits set (concurrency / latency), not
by database round trips.

The API key goes only into the ``Authorization`` header; it is removed from any error text
recorded (a provider may echo what it was sent), and nothing here logs headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import json
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
RETRY_AFTER_MAX = 120.0
BACKOFF_MAX = 30.0


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where and how to call one provider (read from a ``Provider`` row)."""

    base_url: str
    model: str
    api_key: str = ""
    timeout: float = 60.0
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def redact(self, text: str) -> str:
        """``text`` without the API key in it."""
        return text.replace(self.api_key, "[api key]") if self.api_key else text


@dataclasses.dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make; ``key`` identifies it to the caller."""

    key: Any
    messages: list[dict[str, str]]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def body(self, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": self.messages}
        for name in ("temperature", "top_p", "max_tokens", "seed"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


@dataclasses.dataclass
class ChatResult:
    """What became of one request: a text, or the error of its last attempt."""

    key: Any
    ok: bool
    text: str = ""
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 0
    error: str = ""


@dataclasses.dataclass
class StreamSummary:
    """How a stream ended: ``stopped`` is "", "cancelled" or "token cap"."""

    sent: int = 0
    retries: int = 0
    tokens: int = 0
    stopped: str = ""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def base_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a provider's base URL, or None.

    http(s) with a host, no user name or password (they would be stored and shown in clear
    text: the key field is where a secret goes), no query or fragment.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError on a bad port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "names no host"
    if parts.username or parts.password:
        return "must not hold a user name or password (put the key in the API key field)"
    if parts.query or parts.fragment:
        return "must not have a query string or a fragment"
    if any(ch.isspace() for ch in url):
        return "must not contain spaces"
    return None


def retry_delay(*, attempt: int, retry_after: float | None, base: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the provider's ``Retry-After`` when
    it sent one, else exponential backoff with full jitter (``base · 2^attempt``, ≤ 30 s)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), RETRY_AFTER_MAX)
    return random.uniform(0, min(BACKOFF_MAX, base * (2**attempt)))


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds, or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(when.timestamp() - time.time(), 0.0)
    return None


def completion_parse(raw: bytes) -> dict[str, Any]:
    """Text, finish reason and usage of a chat completion body; ValueError when malformed."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"malformed JSON from the provider ({exc})") from exc
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError("the provider's answer holds no choices[0].message.content") from exc
    if not isinstance(text, str):
        raise ValueError("choices[0].message.content is not text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and value >= 0 else 0

    prompt, completion = count("prompt_tokens"), count("completion_tokens")
    return {
        "text": text,
        "finish_reason": str(choice.get("finish_reason") or "")[:30],
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": count("total_tokens") or prompt + completion,
    }


class _RateLimits:
    """Requests and tokens per minute, shared by every concurrent request of a stream."""

    def __init__(self, endpoint: Endpoint):
        self.interval = 60.0 / endpoint.requests_per_minute if endpoint.requests_per_minute else 0
        self.tpm = endpoint.tokens_per_minute
        self.next_start = 0.0
        self.tokens: deque[tuple[float, int]] = deque()
        self.lock = asyncio.Lock()

    async def wait(self, reserve: int) -> None:
        async with self.lock:
            now = time.monotonic()
            if self.interval:
                if self.next_start > now:
                    await asyncio.sleep(self.next_start - now)
                self.next_start = max(now, self.next_start) + self.interval
            if self.tpm:
                while True:
                    now = time.monotonic()
                    while self.tokens and self.tokens[0][0] <= now - 60:
                        self.tokens.popleft()
                    used = sum(n for _, n in self.tokens)
                    if not self.tokens or used + reserve <= self.tpm:
                        break
                    await asyncio.sleep(self.tokens[0][0] + 60 - now)

    def spent(self, tokens: int) -> None:
        if self.tpm and tokens:
            self.tokens.append((time.monotonic(), tokens))


async def _attempt(client: httpx.AsyncClient, endpoint: Endpoint, request: ChatRequest) -> dict:
    try:
        response = await client.post(
            endpoint.url("/chat/completions"), json=request.body(endpoint.model)
        )
    except httpx.TimeoutException as exc:
        raise _Retryable(f"timeout after {endpoint.timeout:g} s ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise _Retryable(f"connection error: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        detail = response.text[:300].strip()
        message = f"HTTP {response.status_code}: {detail}"
        if response.status_code in RETRYABLE_STATUS:
            raise _Retryable(message, retry_after_seconds(response.headers.get("Retry-After")))
        raise ValueError(message)
    try:
        return completion_parse(response.content)
    except ValueError as exc:
        raise _Retryable(str(exc)) from exc


def tokens_estimate(request: ChatRequest) -> int:
    """An upper estimate of the tokens a request may spend: its ``max_tokens`` plus its
    prompt at one token per 3 characters (tokenizers average about 4) and 8 per message."""
    prompt = sum(len(str(m.get("content", ""))) // 3 + 8 for m in request.messages)
    return prompt + (request.max_tokens or 0)


class _Budget:
    """The token cap: a request starts only while the tokens used plus the estimate of
    every request in flight (``tokens_estimate``) stay within the cap, so a job ends at
    or under its cap unless a provider's tokenizer counts far more than the estimate."""

    def __init__(self, cap: int | None, used: int):
        self.cap, self.used, self.reserved = cap, used, 0

    def take(self, estimate: int) -> bool:
        if self.cap is not None and self.used + self.reserved + estimate > self.cap:
            return False
        self.reserved += estimate
        return True

    def give_back(self, estimate: int, tokens: int) -> None:
        self.reserved -= estimate
        self.used += tokens


async def _run(
    *,
    endpoint: Endpoint,
    requests: Iterator[ChatRequest],
    concurrency: int,
    max_retries: int,
    backoff_base: float,
    budget: _Budget,
    stop: threading.Event,
    deliver: Callable[[ChatResult], None],
    summary: StreamSummary,
) -> None:
    limits = _RateLimits(endpoint)
    http_limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(endpoint.timeout)
    async with httpx.AsyncClient(
        timeout=timeout, limits=http_limits, headers=endpoint.headers()
    ) as client:

        async def one(request: ChatRequest) -> ChatResult:
            result = ChatResult(key=request.key, ok=False)
            started = time.monotonic()
            for attempt in range(max_retries + 1):
                await limits.wait(request.max_tokens or 0)
                result.attempts = attempt + 1
                summary.sent += 1
                sent_at = time.monotonic()
                try:
                    parsed = await _attempt(client, endpoint, request)
                except _Retryable as exc:
                    result.error = endpoint.redact(str(exc))[:2000]
                    if attempt == max_retries or stop.is_set():
                        break
                    summary.retries += 1
                    delay = retry_delay(
                        attempt=attempt, retry_after=exc.retry_after, base=backoff_base
                    )
                    await asyncio.sleep(delay)
                    continue
                except ValueError as exc:  # not worth retrying (400, 401, 404…)
                    result.error = endpoint.redact(str(exc))[:2000]
                    break
                limits.spent(parsed["total_tokens"])
                result = ChatResult(
                    key=request.key,
                    ok=True,
                    attempts=attempt + 1,
                    latency_ms=round((time.monotonic() - sent_at) * 1000, 2),
                    **parsed,
                )
                return result
            result.latency_ms = round((time.monotonic() - started) * 1000, 2)
            return result

        async def worker() -> None:
            while not stop.is_set():
                request = next(requests, None)
                if request is None:
                    return
                estimate = tokens_estimate(request)
                if not budget.take(estimate):
                    # Not sent: it stays missing, for a rerun with a higher cap.
                    summary.stopped = summary.stopped or "token cap"
                    stop.set()
                    return
                try:
                    result = await one(request)
                except Exception as exc:  # a bug must not lose the request silently
                    logger.exception("chat request %r failed", request.key)
                    result = ChatResult(key=request.key, ok=False, error=f"{type(exc).__name__}")
                budget.give_back(estimate, result.total_tokens)
                summary.tokens = budget.used
                deliver(result)
            summary.stopped = summary.stopped or "cancelled"

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))


def chat_stream(
    *,
    endpoint: Endpoint,
    requests: Iterable[ChatRequest],
    concurrency: int = 8,
    max_retries: int = 4,
    backoff_base: float = 0.5,
    token_cap: int | None = None,
    tokens_used: int = 0,
    stop: threading.Event | None = None,
    summary: StreamSummary | None = None,
    poll: float = 0.2,
) -> Iterator[ChatResult | None]:
    """Run ``requests`` against ``endpoint`` and yield each result as it finishes.

    Yields ``None`` every ``poll`` seconds with nothing finished, so the caller can write
    progress and set ``stop`` (cancel: no new request starts; those in flight finish).
    ``token_cap`` bounds ``tokens_used`` plus the tokens of this stream (see ``_Budget``).
    ``summary`` is filled in as the stream runs.
    """
    stop = stop or threading.Event()
    summary = summary if summary is not None else StreamSummary()
    budget = _Budget(token_cap, tokens_used)
    results: queue.Queue = queue.Queue()
    done = object()
    iterator = iter(requests)

    def run() -> None:
        try:
            asyncio.run(
                _run(
                    endpoint=endpoint,
                    requests=iterator,
                    concurrency=concurrency,
                    max_retries=max_retries,
                    backoff_base=backoff_base,
                    budget=budget,
                    stop=stop,
                    deliver=results.put,
                    summary=summary,
                )
            )
        except BaseException as exc:  # handed to the caller's thread
            results.put(exc)
        finally:
            results.put(done)

    thread = threading.Thread(target=run, name="chat-stream", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = results.get(timeout=poll)
            except queue.Empty:
                yield None
                continue
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=endpoint.timeout + 5)


def models_list(*, endpoint: Endpoint) -> list[str]:
    """The model ids ``GET /models`` lists; raises ``ConnectionError`` with a readable reason."""
    try:
        response = httpx.get(
            endpoint.url("/models"), headers=endpoint.headers(), timeout=endpoint.timeout
        )
    except httpx.TimeoutException as exc:
        raise ConnectionError(f"no answer within {endpoint.timeout:g} s") from exc
    except httpx.TransportError as exc:
        raise ConnectionError(endpoint.redact(f"cannot connect: {exc}")) from exc
    if response.status_code in (401, 403):
        raise ConnectionError(f"HTTP {response.status_code}: the provider refused the API key")
    if response.status_code != 200:
        raise ConnectionError(
            endpoint.redact(f"HTTP {response.status_code}: {response.text[:200].strip()}")
        )
    try:
        data = response.json()["data"]
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConnectionError("the answer to GET /models is not an OpenAI model list") from exc
