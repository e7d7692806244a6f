"""Consensus recomputation from the database, and its scheduling through a real worker."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.consensus import consensus_recompute
from annotation.models import Annotation, AnnotatorStats, Assignment, ItemConsensus, ProjectStats
from tests.annotation.conftest import pairs
from tests.factories import UserFactory
from tests.polling import wait_until


def _crowd(project, workers: dict, rng) -> None:
    """Each worker answers every item: right (A) with its accuracy, or a constant label."""
    for name, behaviour in workers.items():
        user = UserFactory(username=name)
        services.project_member_add(project=project, user=user, role="annotator")
        while (
            assignment := services.assignment_next(project=project, annotator=user, rng=rng)
        ) is not None:
            # People read before they answer: ~8 s since the item was locked.
            Assignment.objects.filter(pk=assignment.pk).update(
                locked_at=timezone.now() - timedelta(seconds=rng.uniform(5, 12))
            )
            if behaviour == "constant":
                choice = "B"
            else:
                choice = "A" if rng.random() < behaviour else rng.choice(["B", "tie"])
            services.annotation_submit(
                project=project, item_id=assignment.item_id, annotator=user,
                answer={"preference": {"choice": choice}}, idempotency_key=f"{name}-{assignment.item_id}",
            )  # fmt: skip


@pytest.mark.django_db
def test_recompute_stores_consensus_agreement_and_flags_a_spammer(rosa):
    rng = random.Random(11)
    project = services.project_create(created_by=rosa, name="Crowd", overlap=5, gold_ratio=0.4)
    services.items_create_bulk(project=project, rows=pairs(30))
    gold = [
        {
            "external_id": f"gold-{i}",
            "prompt": f"g{i}",
            "responses": ["x", "y"],
            "gold": {"choice": "A"},
        }
        for i in range(6)
    ]
    services.items_create_bulk(project=project, rows=gold)
    _crowd(project, {"w1": 0.9, "w2": 0.85, "w3": 0.8, "w4": 0.9, "lazy": "constant"}, rng)
    stats = consensus_recompute(project=project)
    assert stats.n_annotations == Annotation.objects.filter(project=project).count() >= 30 * 5
    consensus = {c.item.external_id: c for c in ItemConsensus.objects.select_related("item")}
    real = [c for key, c in consensus.items() if key.startswith("item-")]
    assert sum(c.label == 0 for c in real) / len(real) >= 0.9  # A is the truth
    gold_seen = [c for key, c in consensus.items() if key.startswith("gold-")]
    assert gold_seen and all(c.method == "gold" and c.label == 0 for c in gold_seen)
    for key in (
        "alpha_nominal",
        "alpha_ordinal",
        "alpha_interval",
        "fleiss_kappa",
        "cohen_kappa_mean",
        "raw_agreement",
    ):
        assert stats.metrics[key] is not None and -1 <= stats.metrics[key] <= 1, key
    lazy = AnnotatorStats.objects.get(annotator__username="lazy")
    assert lazy.spammer_flag and "constant answers" in lazy.spammer_reasons
    assert lazy.gold_seen >= 1 and lazy.gold_accuracy == 0.0
    assert "implausibly fast" not in lazy.spammer_reasons  # it took its time, like the others
    good = AnnotatorStats.objects.get(annotator__username="w1")
    assert not good.spammer_flag and good.agreement_with_consensus > 0.75
    assert len(good.confusion) == 3 and all(abs(sum(row) - 1) < 1e-3 for row in good.confusion)
    # A second run updates in place and keeps history for the trend chart.
    consensus_recompute(project=project)
    assert ItemConsensus.objects.count() == len(consensus) and ProjectStats.objects.count() == 2


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_submissions_trigger_one_debounced_recompute_on_the_worker(
    start_worker, broker_on_own_redis, settings, rosa, anna
):
    """The delayed outbox row is sent by the worker's relay once the debounce is over."""
    start_worker()
    settings.CONSENSUS_DEBOUNCE_SECONDS = 1
    project = services.project_create(created_by=rosa, name="Live", overlap=1)
    services.project_member_add(project=project, user=anna, role="annotator")
    services.items_create_bulk(project=project, rows=pairs(4))
    for _ in range(4):
        assignment = services.assignment_next(project=project, annotator=anna)
        services.annotation_submit(project=project, item_id=assignment.item_id, annotator=anna,
                                   answer={"preference": {"choice": "B"}}, idempotency_key=f"k{assignment.item_id}")  # fmt: skip
    wait_until(lambda: ItemConsensus.objects.filter(project=project).count() == 4, timeout=60)
    assert ProjectStats.objects.filter(project=project).count() == 1  # one run for the burst
    assert set(ItemConsensus.objects.values_list("label", flat=True)) == {2}
