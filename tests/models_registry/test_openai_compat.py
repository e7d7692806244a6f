"""The provider client against a real local HTTP server (tests/fake_provider.py): retries
on 429 / 5xx / timeouts / malformed answers, the token cap, cancel, the Retry-After rule
and base URL checks.  No database."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from models_registry.openai_compat import (
    ChatRequest,
    Endpoint,
    StreamSummary,
    base_url_problem,
    chat_stream,
    completion_parse,
    models_list,
    retry_after_seconds,
    retry_delay,
    tokens_estimate,
)
from tests.fake_provider import FakeProvider
from tests.processes import free_port

KEY = "sk-compat-test-abcdef"


def requests(n: int, *, marker: dict[int, str] | None = None, max_tokens: int = 8):
    marker = marker or {}
    return [
        ChatRequest(key=i, messages=[{"role": "user", "content": f"prompt {i} {marker.get(i, '')}"}],
                    max_tokens=max_tokens, seed=i)
        for i in range(n)
    ]  # fmt: skip


def run(endpoint, reqs, **options):
    summary = StreamSummary()
    results = [r for r in chat_stream(endpoint=endpoint, requests=reqs, summary=summary,
                                      backoff_base=0.001, **options) if r is not None]  # fmt: skip
    return results, summary


@pytest.fixture
def fake():
    with FakeProvider(api_key=KEY, hang=2.0) as server:
        yield server


def endpoint_for(fake, **changes):
    return Endpoint(**{"base_url": fake.base_url, "model": "fake-model", "api_key": KEY,
                       "timeout": 0.4, **changes})  # fmt: skip


def test_every_request_ends_with_a_text_or_an_error_through_every_fault(fake):
    fake.faults.extend(["429", "timeout", "malformed", "500", "503", "incomplete", "429"])
    reqs = requests(40, marker={5: "[[fail:500]]", 9: "[[fail:malformed]]", 11: "[[fail:400]]"})
    results, summary = run(endpoint_for(fake), reqs, concurrency=8, max_retries=3)

    assert Counter(r.key for r in results) == Counter(range(40))  # each once, none lost
    failed = {r.key: r for r in results if not r.ok}
    assert set(failed) == {5, 9, 11}
    assert failed[5].attempts == 4 and "HTTP 500" in failed[5].error
    assert failed[9].attempts == 4 and "malformed JSON" in failed[9].error
    assert failed[11].attempts == 1 and "HTTP 400" in failed[11].error  # not retried
    # The seven injected faults were each retried once, on top of the always-failing three.
    assert summary.retries == 7 + 3 + 3
    assert all(r.text and r.total_tokens > 0 for r in results if r.ok)
    assert fake.stats()["faults"]["timeout"] == 1


def test_the_api_key_is_sent_as_a_bearer_token_and_a_wrong_key_is_not_retried(fake):
    results, _ = run(endpoint_for(fake, api_key="sk-wrong"), requests(3), concurrency=2)
    assert all(not r.ok and r.attempts == 1 and "HTTP 401" in r.error for r in results)
    results, _ = run(endpoint_for(fake), requests(3), concurrency=2)
    assert all(r.ok for r in results)
    assert set(fake.authorizations[-3:]) == {f"Bearer {KEY}"}


def test_the_token_cap_stops_sending_and_is_not_exceeded(fake):
    reqs = requests(50, max_tokens=8)
    cap = 10 * tokens_estimate(reqs[0])
    results, summary = run(endpoint_for(fake), reqs, concurrency=4, token_cap=cap)
    assert summary.stopped == "token cap"
    assert 0 < len(results) < 50
    assert summary.tokens == sum(r.total_tokens for r in results) <= cap


def test_tokens_used_before_count_against_the_cap(fake):
    results, summary = run(endpoint_for(fake), requests(5), token_cap=100, tokens_used=100)
    assert results == [] and summary.stopped == "token cap"


def test_stop_ends_the_stream_without_sending_the_rest(fake):
    """After ``stop``, no request (nor retry) starts; those in flight (at most
    ``concurrency``) finish.  Counted against what the server received when ``stop`` was set, so
    the test does not depend on how soon this thread sees the first result (under load the
    stream may finish several requests before that)."""
    stop = threading.Event()
    summary = StreamSummary()
    seen, received_at_stop = [], None
    for result in chat_stream(endpoint=endpoint_for(fake), requests=requests(200), concurrency=2,
                              stop=stop, summary=summary):  # fmt: skip
        if result is not None:
            seen.append(result)
            if received_at_stop is None:
                received_at_stop = fake.stats()["chat"]
                stop.set()
    received = fake.stats()["chat"]
    assert received <= received_at_stop + 2 and received < 200
    assert 1 <= len(seen) <= received  # in-flight ones delivered; a retry is one more


def test_retry_after_wins_over_backoff_and_backoff_grows():
    assert retry_delay(attempt=0, retry_after=2.5, base=0.5) == 2.5
    assert retry_delay(attempt=0, retry_after=10_000, base=0.5) == 120.0
    assert all(0 <= retry_delay(attempt=3, retry_after=None, base=0.5) <= 4.0 for _ in range(50))
    assert all(retry_delay(attempt=20, retry_after=None, base=0.5) <= 30.0 for _ in range(50))
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_a_429_with_retry_after_is_retried_after_the_wait(fake):
    """The retried request waits Retry-After (1 s here): the stream's result came from
    the second attempt, and the fake saw exactly two requests."""
    fake.retry_after = "1"
    fake.faults.append("429")
    results, summary = run(endpoint_for(fake), requests(1), concurrency=1)
    assert results[0].ok and results[0].attempts == 2 and summary.retries == 1
    assert fake.stats()["chat"] == 2


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "malformed JSON"),
        (b'{"choices": []}', "no choices"),
        (b'{"choices": [{"message": {"content": 3}}]}', "not text"),
    ],
)
def test_malformed_answers_are_named(raw, reason):
    with pytest.raises(ValueError, match=reason):
        completion_parse(raw)


def test_usage_is_read_or_zero():
    parsed = completion_parse(b'{"choices": [{"message": {"content": "hi"}}], "usage": "x"}')
    assert parsed["text"] == "hi" and parsed["total_tokens"] == 0


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://api.openai.com/v1", None),
        ("http://127.0.0.1:8001/v1", None),
        ("ftp://example.com/v1", "http"),
        ("https:///v1", "host"),
        ("https://user:secret@example.com/v1", "password"),
        ("https://example.com/v1?key=1", "query"),
        ("https://example.com:99999/v1", "not a URL"),
        ("https://exa mple.com/v1", "spaces"),
    ],
)
def test_base_urls_are_checked(url, problem):
    result = base_url_problem(url)
    assert (result is None) if problem is None else (problem in result)


def test_models_list_and_its_failures(fake):
    assert models_list(endpoint=endpoint_for(fake)) == ["fake-model"]
    with pytest.raises(ConnectionError, match="refused the API key"):
        models_list(endpoint=endpoint_for(fake, api_key="sk-wrong"))
    with pytest.raises(ConnectionError, match="HTTP 404"):
        models_list(endpoint=endpoint_for(fake, base_url=fake.base_url + "/nothing"))
    nothing_there = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ConnectionError, match="cannot connect"):
        models_list(endpoint=Endpoint(base_url=nothing_there, model="m", timeout=0.5))
