"""Annotation services: members, imports, assignment, submission, skips and adjudication."""

import io
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from guardian.shortcuts import get_user_perms

from annotation import services
from annotation.errors import AssignmentConflict, IdempotencyConflict, ItemImportError
from annotation.models import Adjudication, Annotation, Assignment, Item, ItemConsensus
from governance.models import AuditEvent
from tests.annotation.conftest import label, pairs
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


class TestMembers:
    @pytest.mark.parametrize(
        ("roles", "removed", "left"),
        [
            # Roles share view_project and report_project: the remaining role keeps them.
            (["annotator", "reviewer"], "reviewer", {"view_project", "annotate_project"}),
            (
                ["annotator", "reviewer"],
                "annotator",
                {"view_project", "review_project", "report_project"},
            ),
            (["viewer", "annotator"], "viewer", {"view_project", "annotate_project"}),
            # Roles inside the removed one (viewer and reviewer inside researcher) go with it.
            (["researcher"], "researcher", set()),
        ],
    )
    def test_removing_a_role_keeps_what_the_other_roles_need(
        self, project, vic, roles, removed, left
    ):
        for role in roles:
            services.project_member_add(project=project, user=vic, role=role)
        services.project_member_remove(project=project, user=vic, role=removed)
        assert set(get_user_perms(vic, project)) == left


class TestImport:
    def test_jsonl_import_and_idempotent_reimport(self, project):
        rows = pairs(3, prefix="new")
        data = "\n".join(json.dumps(r) for r in rows).encode()
        first = services.items_import(project=project, file=io.BytesIO(data), fmt="jsonl")
        assert (first.rows, first.created, first.skipped_existing) == (3, 3, 0)
        again = services.items_import(project=project, file=io.BytesIO(data), fmt="jsonl")
        assert (again.created, again.skipped_existing) == (0, 3)
        assert Item.objects.filter(project=project, external_id__startswith="new-").count() == 3
        assert (
            AuditEvent.objects.filter(action="items.import", object_id=str(project.pk)).count() == 3
        )

    def test_a_bad_row_rejects_the_whole_file_with_line_numbers(self, project):
        before = Item.objects.count()
        lines = [json.dumps(r) for r in pairs(4, prefix="x")]
        lines.insert(2, '{"prompt": "only one", "responses": ["a"]}')
        lines.insert(4, "{not json")
        with pytest.raises(ItemImportError) as exc:
            services.items_import(
                project=project, file=io.BytesIO("\n".join(lines).encode()), fmt="jsonl"
            )
        assert [e.line for e in exc.value.errors] == [3, 5]
        assert "responses" in exc.value.errors[0].reason
        assert Item.objects.count() == before
        assert not AuditEvent.objects.filter(action="items.import", after__rows=6).exists()

    def test_trl_rows_are_shown_in_a_stable_shuffled_order(self, project):
        rows = [
            {"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(40)
        ]
        data = "\n".join(json.dumps(r) for r in rows).encode()
        services.items_import(project=project, file=io.BytesIO(data), fmt="trl")
        items = Item.objects.filter(project=project, prompt__startswith="p")
        firsts = {item.metadata["source_preference"] for item in items}
        assert firsts == {"A", "B"}  # chosen is not always response A
        for item in items:
            chosen = 0 if item.metadata["source_preference"] == "A" else 1
            assert item.responses[chosen]["text"].startswith("good")

    def test_a_shuffled_trl_gold_choice_follows_its_response(self, project):
        rows = [{"external_id": f"t{i}", "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}",
                 "gold": {"choice": "A"}} for i in range(20)]  # fmt: skip
        data = "\n".join(json.dumps(r) for r in rows).encode()
        services.items_import(project=project, file=io.BytesIO(data), fmt="trl")
        for item in Item.objects.filter(project=project, external_id__startswith="t"):
            gold_index = "AB".index(item.gold_answer["preference"]["choice"])
            assert item.responses[gold_index]["text"].startswith("good")

    def test_gold_rows_are_validated_against_the_schema(self, project):
        good = {"prompt": "g", "responses": ["a", "b"], "gold": {"choice": "B"}}
        bad = {"prompt": "h", "responses": ["a", "b"], "gold": {"choice": "C"}}
        services.items_create_bulk(project=project, rows=[good])
        item = Item.objects.get(project=project, prompt="g")
        assert item.is_gold and item.gold_answer == {"preference": {"choice": "B"}}
        with pytest.raises(ItemImportError) as exc:
            services.items_create_bulk(project=project, rows=[bad])
        assert "gold.choice" in exc.value.errors[0].reason


class TestAssignment:
    def test_each_item_gets_at_most_n_distinct_annotators(self, project, anna, ben):
        carl = UserFactory(username="carl")
        services.project_member_add(project=project, user=carl, role="annotator")
        for annotator in (anna, ben, carl):
            for _ in range(5):
                assignment = services.assignment_next(project=project, annotator=annotator)
                if assignment is None:
                    break
                services.annotation_submit(
                    project=project,
                    item_id=assignment.item_id,
                    annotator=annotator,
                    answer={"preference": {"choice": "A"}},
                    idempotency_key=f"{annotator.pk}-{assignment.item_id}",
                )
        per_item = {i.pk: i.n_submitted for i in Item.objects.filter(project=project)}
        assert max(per_item.values()) == 2 and sum(per_item.values()) == 10
        assert Annotation.objects.filter(annotator=carl).count() == 0  # nothing left for a third
        pairs_seen = set(Annotation.objects.values_list("item_id", "annotator_id"))
        assert len(pairs_seen) == 10

    def test_priority_then_nearness_to_completion(self, project, anna, ben):
        Item.objects.filter(project=project, external_id="item-3").update(priority=5)
        assert (
            services.assignment_next(project=project, annotator=anna).item.external_id == "item-3"
        )
        label_item = Assignment.objects.get(annotator=anna)
        services.annotation_submit(project=project, item_id=label_item.item_id, annotator=anna,
                                   answer={"preference": {"choice": "B"}}, idempotency_key="k1")  # fmt: skip
        Item.objects.filter(project=project).update(priority=0)
        # ben: item-3 has one annotation already, so it is nearest to completion.
        assert services.assignment_next(project=project, annotator=ben).item.external_id == "item-3"

    def test_a_live_lock_is_returned_again(self, project, anna):
        first = services.assignment_next(project=project, annotator=anna)
        assert services.assignment_next(project=project, annotator=anna).pk == first.pk
        assert Item.objects.get(pk=first.item_id).n_assigned == 1

    def test_expired_locks_are_reclaimed(self, project, anna, ben):
        Item.objects.filter(project=project).exclude(external_id="item-0").delete()
        project.overlap = 1
        project.save()
        first = services.assignment_next(project=project, annotator=anna)
        assert (
            services.assignment_next(project=project, annotator=ben) is None
        )  # the only slot is locked
        Assignment.objects.filter(pk=first.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        second = services.assignment_next(project=project, annotator=ben)
        assert second is not None and second.item_id == first.item_id
        assert Assignment.objects.get(pk=first.pk).status == Assignment.Status.EXPIRED
        assert Item.objects.get(pk=first.item_id).n_assigned == 1
        with pytest.raises(AssignmentConflict):
            services.annotation_submit(project=project, item_id=first.item_id, annotator=anna,
                                       answer={"preference": {"choice": "A"}}, idempotency_key="late")  # fmt: skip

    def test_gold_items_are_mixed_in(self, project, anna):
        services.items_create_bulk(project=project, rows=[
            {"external_id": f"gold-{i}", "prompt": f"g{i}", "responses": ["a", "b"], "gold": {"choice": "A"}}
            for i in range(3)
        ])  # fmt: skip
        project.gold_ratio = 0.5
        project.save()
        import random

        rng = random.Random(7)
        served = []
        for _ in range(8):
            assignment = services.assignment_next(project=project, annotator=anna, rng=rng)
            if assignment is None:
                break
            served.append(assignment.item.is_gold)
            services.assignment_skip(project=project, item_id=assignment.item_id, annotator=anna)
        assert 1 <= sum(served) <= 3 and len(served) == 8


class TestSubmit:
    def test_retry_with_the_same_key_returns_the_original(self, project, anna):
        assignment = services.assignment_next(project=project, annotator=anna)
        kwargs = {
            "project": project, "item_id": assignment.item_id, "annotator": anna,
            "answer": {"preference": {"choice": "B", "strength": 3}}, "idempotency_key": "abc",
        }  # fmt: skip
        first, created = services.annotation_submit(**kwargs)
        again, created_again = services.annotation_submit(**kwargs)
        assert created and not created_again and first.pk == again.pk
        assert Annotation.objects.filter(annotator=anna).count() == 1
        assert first.label == 2 and first.strength == 3 and first.lead_time_ms >= 0
        other = services.assignment_next(project=project, annotator=anna)
        with pytest.raises(IdempotencyConflict):
            services.annotation_submit(**{**kwargs, "item_id": other.item_id})

    @pytest.mark.parametrize(
        ("answer", "field"),
        [
            ({"preference": {"choice": "C"}}, "answer.preference.choice"),
            ({"preference": {"choice": "A", "strength": 9}}, "answer.preference.strength"),
            ({}, "answer.preference"),
            ({"preference": {"choice": "A"}, "bogus": 1}, "answer.bogus"),
            ("A", "answer"),
        ],
    )
    def test_invalid_answers_name_the_field_and_store_nothing(self, project, anna, answer, field):
        assignment = services.assignment_next(project=project, annotator=anna)
        with pytest.raises(ValidationError) as exc:
            services.annotation_submit(project=project, item_id=assignment.item_id, annotator=anna,
                                       answer=answer, idempotency_key="k")  # fmt: skip
        assert field in exc.value.message_dict
        assert not Annotation.objects.exists()
        assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.LOCKED

    def test_submit_without_a_live_assignment_is_a_conflict(self, project, anna):
        item = Item.objects.filter(project=project).first()
        with pytest.raises(AssignmentConflict, match="no live assignment"):
            services.annotation_submit(project=project, item_id=item.pk, annotator=anna,
                                       answer={"preference": {"choice": "A"}}, idempotency_key="k")  # fmt: skip
        assert not Annotation.objects.exists()

    def test_submissions_stay_off_the_audit_chain(self, project, anna):
        before = AuditEvent.objects.count()
        label(project, anna)
        assert AuditEvent.objects.count() == before


class TestSkipAndAdjudicate:
    def test_skipped_items_are_not_offered_again(self, project, anna):
        first = services.assignment_next(project=project, annotator=anna)
        services.assignment_skip(
            project=project, item_id=first.item_id, annotator=anna, reason="unclear"
        )
        seen = set()
        while (assignment := services.assignment_next(project=project, annotator=anna)) is not None:
            seen.add(assignment.item_id)
            services.assignment_skip(project=project, item_id=assignment.item_id, annotator=anna)
        assert first.item_id not in seen and len(seen) == 4

    def test_skip_policy(self, project, anna):
        project = services.project_update(project=project, skip_policy="reason")
        assignment = services.assignment_next(project=project, annotator=anna)
        with pytest.raises(ValidationError, match="reason"):
            services.assignment_skip(project=project, item_id=assignment.item_id, annotator=anna)
        project = services.project_update(project=project, skip_policy="never")
        with pytest.raises(ValidationError, match="does not allow"):
            services.assignment_skip(
                project=project, item_id=assignment.item_id, annotator=anna, reason="x"
            )

    def test_adjudication_overrides_consensus_and_is_audited(self, project, anna, ben, rex):
        from annotation.consensus import consensus_recompute

        a = label(project, anna, "A")
        services.assignment_next(project=project, annotator=ben)
        services.annotation_submit(project=project, item_id=a.item_id, annotator=ben,
                                   answer={"preference": {"choice": "B"}}, idempotency_key="b1")  # fmt: skip
        consensus_recompute(project=project)
        services.adjudication_record(project=project, item_id=a.item_id, reviewer=rex,
                                     answer={"preference": {"choice": "B"}}, reason="B is correct")  # fmt: skip
        consensus = ItemConsensus.objects.get(item_id=a.item_id)
        assert (consensus.label, consensus.method) == (2, "adjudicated")
        consensus_recompute(project=project)  # recomputation keeps the decision
        assert ItemConsensus.objects.get(item_id=a.item_id).method == "adjudicated"
        event = AuditEvent.objects.get(action="item.adjudicate")
        assert "reason" not in event.after  # a rationale: encrypted, never in the audit chain
        assert event.before == {
            "consensus_label": consensus.dawid_skene_label,
            "method": "dawid_skene",
        }
        with pytest.raises(ValidationError, match="reason"):
            services.adjudication_record(project=project, item_id=a.item_id, reviewer=rex,
                                         answer={"preference": {"choice": "A"}}, reason=" ")  # fmt: skip
        assert Adjudication.objects.get(item_id=a.item_id).label == 2


def test_import_command_reports_lines_and_exits_non_zero(project, tmp_path):
    from django.core.management import CommandError, call_command

    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in pairs(3, prefix="cli")) + "\n")
    call_command("import_items", str(project.pk), str(good), "--format", "jsonl")
    assert Item.objects.filter(project=project, external_id__startswith="cli-").count() == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "responses": ["a", "b"]}\n{"prompt": "p2"}\n')
    with pytest.raises(CommandError, match="line 2"):
        call_command("import_items", str(project.pk), str(bad))
    assert not Item.objects.filter(project=project, prompt="p").exists()


def test_beat_task_reclaims_expired_locks_in_every_project(project, anna, ben):
    from annotation.tasks import assignment_reclaim_task

    for user in (anna, ben):
        services.assignment_next(project=project, annotator=user)
    Assignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert assignment_reclaim_task() == 2
    assert set(Assignment.objects.values_list("status", flat=True)) == {"expired"}
    assert sum(Item.objects.values_list("n_assigned", flat=True)) == 0
    assert assignment_reclaim_task() == 0
