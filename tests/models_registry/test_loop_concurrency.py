"""Priority by uncertainty under real concurrency (threads, separate connections): the
loop's routing keeps the assignment guarantees — N distinct annotators per item, no
over-assignment, auto-labelled items never handed out."""

import threading

import pytest
from django.db import connection
from django.db.models import Count

from annotation import services
from annotation.models import Annotation, Item
from models_registry import loop
from tests.factories import UserFactory
from tests.models_registry.loop_fixtures import known_project, known_version

pytestmark = pytest.mark.django_db(transaction=True)

PROBS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.95, 0.97, 0.99, 0.45, 0.4, 0.35, 0.05, 0.02]


def test_parallel_annotators_keep_n_distinct_on_prioritised_items(rosa):
    known_version(user=rosa)
    annotators = [UserFactory(username=f"al{i}") for i in range(6)]
    project = known_project(
        user=rosa, probabilities=PROBS, name="AL race", overlap=3, annotators=annotators
    )
    loop.loop_settings_update(
        project=project, user=rosa, enabled=True, registered_model="known-rm",
        confidence_threshold=0.9, human_feedback_ratio=0.0,
    )  # fmt: skip
    assert loop.loop_run(project=project, trigger="command").status == "succeeded"
    held = set(Item.objects.filter(project=project, assignable=False).values_list("pk", flat=True))
    assert len(held) == 5  # 0.95, 0.97, 0.99, 0.05, 0.02
    first_served: list[float] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(annotators))

    def annotate_all(user):
        while (a := services.assignment_next(project=project, annotator=user)) is not None:
            services.annotation_submit(
                project=project, item_id=a.item_id, annotator=user,
                answer={"preference": {"choice": "A"}}, idempotency_key=f"{user.pk}-{a.item_id}",
            )  # fmt: skip

    def work(user):
        try:
            barrier.wait()
            annotate_all(user)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # Before the race: the first item anyone is served is the least certain one.
    probe = UserFactory(username="probe")
    services.project_member_add(project=project, user=probe, role="annotator")
    first = services.assignment_next(project=project, annotator=probe)
    first_served.append(PROBS[int(first.item.external_id[1:])])
    services.assignment_skip(project=project, item_id=first.item_id, annotator=probe)
    assert first_served == [0.5]

    threads = [threading.Thread(target=work, args=(u,)) for u in annotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    # An annotator stops at the first "nothing for you", which can come while another
    # still holds the lock of an item it has not done; the item may then end a vote short
    # once that one submits.  Annotators come back: one more round, now without races,
    # finishes what is left (and may not give any item more than N).
    for user in annotators:
        annotate_all(user)
    per_item = (
        Annotation.objects.filter(project=project)
        .values("item")
        .annotate(n=Count("id"), people=Count("annotator", distinct=True))
    )
    assert {row["item"] for row in per_item}.isdisjoint(held)
    assert {row["n"] for row in per_item} == {3}
    assert all(row["n"] == row["people"] for row in per_item)
    assert len(per_item) == len(PROBS) - len(held)
