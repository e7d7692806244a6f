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
