"""Assignment under real concurrency (threads, separate connections): an item never gets
more than N annotators, and no annotator gets the same item twice."""

import threading

import pytest
from django.db import connection
from django.db.models import Count

from annotation import services
from annotation.models import Annotation, Assignment, Item
from tests.annotation.conftest import pairs
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_parallel_annotators_never_overfill_an_item(rosa):
    project = services.project_create(created_by=rosa, name="Race", overlap=3)
    services.items_create_bulk(project=project, rows=pairs(12))
    annotators = [UserFactory(username=f"racer{i}") for i in range(8)]
    for user in annotators:
        services.project_member_add(project=project, user=user, role="annotator")
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(annotators))

    def work(user):
        try:
            barrier.wait()
            while (
                assignment := services.assignment_next(project=project, annotator=user)
            ) is not None:
                services.annotation_submit(
                    project=project, item_id=assignment.item_id, annotator=user,
                    answer={"preference": {"choice": "A"}}, idempotency_key=f"{user.pk}-{assignment.item_id}",
                )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in annotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    per_item = Annotation.objects.values("item").annotate(
        n=Count("id"), people=Count("annotator", distinct=True)
    )
    assert {row["n"] for row in per_item} == {3}
    assert all(row["n"] == row["people"] for row in per_item)
    assert Annotation.objects.count() == 36  # every slot filled, none twice
    assert set(Item.objects.filter(project=project).values_list("n_submitted", flat=True)) == {3}


def test_simultaneous_next_calls_of_one_annotator_share_one_lock(rosa):
    """A double click, two tabs or a retry: every call gets the same open assignment."""
    project = services.project_create(created_by=rosa, name="Double click", overlap=3)
    services.items_create_bulk(project=project, rows=pairs(20))
    annotators = [UserFactory(username=f"clicker{i}") for i in range(3)]
    for user in annotators:
        services.project_member_add(project=project, user=user, role="annotator")
    calls_each = 6
    results: dict[int, list[int | None]] = {user.pk: [] for user in annotators}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(annotators) * calls_each)

    def call(user):
        try:
            barrier.wait()
            assignment = services.assignment_next(project=project, annotator=user)
            results[user.pk].append(assignment.pk if assignment else None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=call, args=(user,))
        for user in annotators
        for _ in range(calls_each)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    for user in annotators:
        assert len(results[user.pk]) == calls_each
        assert None not in results[user.pk]
        assert len(set(results[user.pk])) == 1, f"{user.username} got {results[user.pk]}"
        assert (
            Assignment.objects.filter(annotator=user, status=Assignment.Status.LOCKED).count() == 1
        )
    # Each lock holds exactly one slot.
    assert sum(Item.objects.filter(project=project).values_list("n_assigned", flat=True)) == 3
