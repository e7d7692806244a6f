"""The transactional outbox: written with the change, sent after it, kept while the broker
is away."""

import pytest
from django.db import transaction

from governance.models import OutboxMessage
from governance.outbox import outbox_prune, outbox_relay, outbox_task_enqueue

pytestmark = pytest.mark.django_db


def test_a_rolled_back_change_queues_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_task_enqueue(task="governance.system_probe", args=["x"])
        raise RuntimeError("the change fails")
    assert not OutboxMessage.objects.exists()


def test_a_dedupe_key_keeps_one_pending_row_until_it_is_sent():
    first = outbox_task_enqueue(task="annotation.consensus_recompute", args=[1], delay=60,
                                dedupe_key="consensus:1")  # fmt: skip
    assert first is not None
    assert outbox_task_enqueue(task="annotation.consensus_recompute", args=[1], delay=60,
                               dedupe_key="consensus:1") is None  # fmt: skip
    OutboxMessage.objects.filter(pk=first.pk).update(sent_at=first.available_at)
    assert outbox_task_enqueue(task="annotation.consensus_recompute", args=[1], delay=60,
                               dedupe_key="consensus:1") is not None  # fmt: skip
    assert OutboxMessage.objects.count() == 2


def test_a_delayed_row_is_not_sent_before_its_time(broker_on_own_redis):
    outbox_task_enqueue(task="governance.system_probe", args=["later"], delay=3600)
    assert outbox_relay().sent == 0
    assert OutboxMessage.objects.get().attempts == 0


def test_the_relay_keeps_rows_and_their_error_while_the_broker_is_down(broker_on_own_redis):
    import redis

    first = outbox_task_enqueue(task="governance.system_probe", args=["a"])
    second = outbox_task_enqueue(task="governance.system_probe", args=["b"])
    broker_on_own_redis.stop()
    result = outbox_relay()
    assert (result.sent, result.pending) == (0, 2) and "Error" in result.error
    broker_on_own_redis.start()
    assert outbox_relay().sent == 2
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0
    assert {r.attempts for r in OutboxMessage.objects.all()} == {2}
    queued = redis.Redis.from_url(broker_on_own_redis.url()).lrange("default", 0, -1)
    # The Celery task id is the row's message id.
    text = b"".join(queued).decode()
    assert str(first.message_id) in text and str(second.message_id) in text


def test_sent_rows_are_pruned_after_a_week():
    from datetime import timedelta

    from django.utils import timezone

    old = outbox_task_enqueue(task="governance.system_probe", args=["old"])
    fresh = outbox_task_enqueue(task="governance.system_probe", args=["fresh"])
    OutboxMessage.objects.filter(pk=old.pk).update(sent_at=timezone.now() - timedelta(days=8))
    OutboxMessage.objects.filter(pk=fresh.pk).update(sent_at=timezone.now())
    assert outbox_prune() == 1
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [fresh.pk]


# --- The after-commit fast path: one relay pass per transaction ---------------------------


@pytest.fixture
def broker_sends(broker_on_own_redis, monkeypatch):
    """The sizes of this process's broker sends, each on a connection of its own (a spy:
    each call goes on to the real ``_broker_send``)."""
    from governance import outbox

    sends = []
    real = outbox._broker_send

    def counting(rows):
        sends.append(len(rows))
        return real(rows)

    monkeypatch.setattr(outbox, "_broker_send", counting)
    return sends


def _queued_task_ids(broker) -> set[str]:
    """The Celery task ids waiting on the broker's default queue."""
    import json

    import redis

    messages = redis.Redis.from_url(broker.url()).lrange("default", 0, -1)
    return {json.loads(m)["headers"]["id"] for m in messages}


def _probe(label: str) -> OutboxMessage:
    return outbox_task_enqueue(task="governance.system_probe", args=[label])


@pytest.mark.django_db(transaction=True)
def test_a_transaction_s_tasks_go_to_the_broker_together_after_it_commits(
    broker_on_own_redis, broker_sends
):
    with transaction.atomic():
        rows = [_probe(f"bulk-{n}") for n in range(20)]
        assert broker_sends == []  # nothing before the commit
    assert broker_sends == [20]  # one pass, one connection
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert {r.attempts for r in OutboxMessage.objects.all()} == {1}
    assert _queued_task_ids(broker_on_own_redis) == {str(r.message_id) for r in rows}


@pytest.mark.django_db(transaction=True)
def test_tasks_of_a_rolled_back_savepoint_are_dropped_and_the_others_sent(
    broker_on_own_redis, broker_sends
):
    from contextlib import suppress

    with transaction.atomic():
        # The transaction's first task is rolled back with its savepoint (and with it the
        # first after-commit callback): the tasks queued after it are still sent.
        with suppress(RuntimeError), transaction.atomic():
            _probe("dropped-1")
            raise RuntimeError("the nested change fails")
        kept = [_probe("kept-1")]
        with suppress(RuntimeError), transaction.atomic():
            _probe("dropped-2")
            raise RuntimeError("the nested change fails")
        kept.append(_probe("kept-2"))
    assert sorted(OutboxMessage.objects.values_list("args", flat=True)) == [
        ["kept-1"],
        ["kept-2"],
    ]
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert _queued_task_ids(broker_on_own_redis) == {str(r.message_id) for r in kept}
    assert broker_sends == [2]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_nothing_that_holds_back_the_next_one(
    broker_on_own_redis, broker_sends
):
    from contextlib import suppress

    with suppress(RuntimeError), transaction.atomic():
        _probe("rolled back")
        raise RuntimeError("the change fails")
    with transaction.atomic():
        row = _probe("committed")
    assert OutboxMessage.objects.get().sent_at is not None
    assert _queued_task_ids(broker_on_own_redis) == {str(row.message_id)}
    assert broker_sends == [1]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_task_is_sent_at_once(broker_on_own_redis, broker_sends):
    first = _probe("first")
    assert OutboxMessage.objects.get(pk=first.pk).sent_at is not None
    second = _probe("second")
    assert OutboxMessage.objects.get(pk=second.pk).sent_at is not None
    assert broker_sends == [1, 1]
    assert _queued_task_ids(broker_on_own_redis) == {str(first.message_id), str(second.message_id)}


@pytest.mark.django_db(transaction=True)
def test_a_large_batch_is_sent_in_relay_sized_passes_and_an_outage_costs_one_attempt(
    broker_on_own_redis, broker_sends, monkeypatch
):
    from governance import outbox

    monkeypatch.setattr(outbox, "RELAY_BATCH", 5)
    with transaction.atomic():
        rows = [_probe(f"large-{n}") for n in range(12)]
    assert broker_sends == [5, 5, 2]
    assert _queued_task_ids(broker_on_own_redis) == {str(r.message_id) for r in rows}
    # While the broker is down the commit still succeeds; the rows wait for the relay, and
    # the request tried the broker once, not once per pass.
    broker_on_own_redis.stop()
    broker_sends.clear()
    with transaction.atomic():
        waiting = [_probe(f"waiting-{n}") for n in range(12)]
    assert broker_sends == [5]
    pending = OutboxMessage.objects.filter(pk__in=[r.pk for r in waiting], sent_at__isnull=True)
    assert pending.count() == 12
    assert pending.filter(attempts=1).exclude(last_error="").count() == 5
