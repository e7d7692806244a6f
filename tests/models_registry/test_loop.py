"""The RLHF loop with a model of KNOWN confidence (a deterministic scorer registered for a
real version row): routing by threshold and human-feedback ratio, suggestions that never
count as human votes, priority by uncertainty, error memory, kill switch, audited
settings, the command."""

from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from annotation import services as annotation_services
from annotation.consensus import consensus_recompute
from annotation.models import Annotation, AnnotatorStats, Item, ItemConsensus, ProjectStats
from governance.models import AuditEvent
from models_registry import loop
from models_registry.models import ItemSuggestion, LoopRun, ModelError, Prediction
from rlhf_platform.errors import Conflict
from tests.models_registry.loop_fixtures import known_project, known_version

pytestmark = pytest.mark.django_db

# 20 items; confidence max(p, 1 − p) ≥ 0.8 for exactly the 12 marked *.
PROBS = [
    0.95,
    0.05,
    0.9,
    0.55,
    0.45,
    0.85,
    0.15,
    0.6,
    0.99,
    0.01,  # * * * . . * * . * *
    0.8,
    0.3,
    0.82,
    0.18,
    0.5,
    0.52,
    0.97,
    0.03,
    0.65,
    0.35,
]  # * . * * . . * * . .
CONFIDENT = {i for i, p in enumerate(PROBS) if max(p, 1 - p) >= 0.8}  # fmt: skip


def configure(project, user, **changes):
    return loop.loop_settings_update(
        project=project, user=user, enabled=True, registered_model="known-rm", **changes
    )


def routes(project) -> dict[str, str]:
    return dict(
        ItemSuggestion.objects.filter(project=project).values_list("item__external_id", "route")
    )


def test_threshold_and_feedback_ratio_route_exactly_the_expected_items(rosa):
    known_version(user=rosa)
    chosen = []
    for name in ("First", "Second"):  # same seed, same data: the same checks
        project = known_project(user=rosa, probabilities=PROBS, name=name)
        configure(project, rosa, confidence_threshold=0.8, human_feedback_ratio=0.25, seed=7,
                  batch_size=3)  # fmt: skip
        run = loop.loop_run(project=project, trigger="command")
        assert run.status == "succeeded", run.message
        got = routes(project)
        confident = {f"i{i:03d}" for i in CONFIDENT}
        assert len(CONFIDENT) == 12
        assert {e for e, r in got.items() if r == "human"} == set(got) - confident
        checks = {e for e, r in got.items() if r == "check"}
        assert checks <= confident and len(checks) == 3  # round(0.25 × 12), over 7 batches
        assert {e for e, r in got.items() if r == "auto"} == confident - checks
        assert (run.items_scored, run.auto_labelled, run.checks, run.sent_to_humans) == (
            20, 9, 3, 11,
        )  # fmt: skip
        # Auto-labelled items are held from annotators; the rest stay assignable.
        held = set(Item.objects.filter(project=project, assignable=False)
                   .values_list("external_id", flat=True))  # fmt: skip
        assert held == confident - checks
        # Suggestions are stored as predictions, never as annotations.
        assert Prediction.objects.filter(source="loop", item_ref__startswith=f"{project.pk}:")\
            .count() == 20  # fmt: skip
        assert Annotation.objects.filter(project=project).count() == 0
        chosen.append(checks)
    assert chosen[0] == chosen[1]
    # A second pass finds no new item.
    again = loop.loop_run(project=project, trigger="command")
    assert again.items_scored == 0


def test_ratio_zero_and_one(rosa):
    known_version(user=rosa)
    project = known_project(user=rosa, probabilities=PROBS, name="None checked")
    configure(project, rosa, confidence_threshold=0.8, human_feedback_ratio=0.0)
    loop.loop_run(project=project, trigger="command")
    assert list(routes(project).values()).count("check") == 0
    project = known_project(user=rosa, probabilities=PROBS, name="All checked")
    configure(project, rosa, confidence_threshold=0.8, human_feedback_ratio=1.0)
    loop.loop_run(project=project, trigger="command")
    assert list(routes(project).values()).count("check") == 12
    assert not Item.objects.filter(project=project, assignable=False).exists()


def _answer_all(project, annotators, choice_for):
    for annotator in annotators:
        while a := annotation_services.assignment_next(project=project, annotator=annotator):
            annotation_services.annotation_submit(
                project=project, item_id=a.item_id, annotator=annotator,
                answer={"preference": {"choice": choice_for(a.item)}},
                idempotency_key=f"{annotator.pk}-{a.item_id}",
            )  # fmt: skip


def test_suggestions_never_count_as_human_votes(rosa, anna, ben):
    """The model disagrees with the humans on every check item; consensus, agreement and
    annotator quality are exactly those of the same answers without the loop."""
    known_version(user=rosa)
    results = []
    for with_loop in (False, True):
        project = known_project(
            user=rosa, probabilities=PROBS, name=f"Votes {with_loop}", annotators=(anna, ben)
        )
        if with_loop:
            configure(project, rosa, confidence_threshold=0.8, human_feedback_ratio=1.0)
            loop.loop_run(project=project, trigger="command")

        def against_model(item):  # humans always pick what the model did not
            p = float(item.prompt.split()[0][2:])
            return "B" if p >= 0.5 else "A"

        _answer_all(project, (anna, ben), against_model)
        stats = consensus_recompute(project=project)
        results.append(
            {
                "consensus": sorted(
                    ItemConsensus.objects.filter(project=project).values_list(
                        "item__external_id", "label", "n_annotations", "agreement"
                    )
                ),
                "metrics": {k: v for k, v in stats.metrics.items() if k != "timings_ms"},
                "annotators": sorted(
                    AnnotatorStats.objects.filter(project=project).values_list(
                        "annotator__username", "n_annotations", "agreement_with_consensus"
                    )
                ),
                "annotations": Annotation.objects.filter(project=project).count(),
            }
        )
    assert results[0] == results[1]
    assert results[1]["annotations"] == 40
    assert {row[0] for row in results[1]["annotators"]} == {"anna", "ben"}
    assert all(n == 2 for _, _, n, _ in results[1]["consensus"])
    # And the loop saw every check disagree: the error memory has them all.
    project = ProjectStats.objects.latest().project
    loop.loop_errors_record(project=project)
    assert ModelError.objects.filter(project=project).count() == 20


def test_the_least_certain_items_are_served_first(rosa, anna):
    known_version(user=rosa)
    project = known_project(user=rosa, probabilities=PROBS, name="Priority", annotators=(anna,))
    configure(project, rosa, confidence_threshold=0.8, human_feedback_ratio=0.0)
    loop.loop_run(project=project, trigger="command")
    served = []
    while a := annotation_services.assignment_next(project=project, annotator=anna):
        served.append(PROBS[int(a.item.external_id[1:])])
        annotation_services.annotation_submit(
            project=project, item_id=a.item_id, annotator=anna,
            answer={"preference": {"choice": "A"}}, idempotency_key=f"k{a.item_id}",
        )  # fmt: skip
    # Only the 8 uncertain items, by |p − 0.5| from the smallest.
    assert len(served) == 8
    distances = [abs(p - 0.5) for p in served]
    assert distances == sorted(distances)
    assert served[0] == 0.5


@pytest.mark.parametrize("measure", ["entropy", "margin"])
def test_uncertainty_measures_order_alike_for_one_model(measure):
    ps = [0.5, 0.6, 0.3, 0.9, 0.99]
    values = [loop.uncertainty_of(measure=measure, p_a=p) for p in ps]
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(1.0)


def test_disagreement_between_two_versions(rosa):
    assert loop.uncertainty_of(measure="disagreement", p_a=0.9, p_other=0.2) > (
        loop.uncertainty_of(measure="disagreement", p_a=0.6, p_other=0.55)
    )
    project = known_project(user=rosa, probabilities=[0.9], name="Two versions")
    with pytest.raises(ValidationError) as exc:
        loop.loop_settings_update(project=project, user=rosa, uncertainty="disagreement")
    assert "second_alias" in exc.value.message_dict


def test_error_memory_records_disagreements_with_final_consensus(rosa, anna, ben):
    known_version(user=rosa)
    project = known_project(
        user=rosa, probabilities=PROBS, name="Errors", annotators=(anna, ben), overlap=2
    )
    configure(project, rosa, confidence_threshold=0.8, human_feedback_ratio=0.5, seed=3)
    loop.loop_run(project=project, trigger="command")
    _answer_all(project, (anna, ben), lambda item: "A")  # humans: always A
    consensus_recompute(project=project)
    run = loop.loop_run(project=project, trigger="command")
    expected = {
        s.item.external_id
        for s in ItemSuggestion.objects.filter(project=project, route__in=["check", "human"])
        if s.label == 2  # the model said B
    }
    errors = ModelError.objects.filter(project=project)
    assert {e.item.external_id for e in errors} == expected and expected
    for error in errors:
        assert (error.model_label, error.human_label) == (2, 0)
        assert error.confidence == pytest.approx(1 - PROBS[int(error.item.external_id[1:])])
    checks = ItemSuggestion.objects.filter(project=project, route="check")
    agree = sum(1 for s in checks if s.label == 0)
    assert run.checks_compared == checks.count() == 6
    assert run.check_agreement == pytest.approx(agree / 6)
    assert run.errors_found == len(expected)
    # Recording again adds nothing.
    assert loop.loop_errors_record(project=project)["errors_found"] == 0


def test_kill_switch_stops_a_running_pass_between_batches(rosa):
    version = known_version(user=rosa)
    project = known_project(user=rosa, probabilities=PROBS, name="Killed")
    configure(project, rosa, batch_size=5)
    calls = []

    def scorer_that_pulls_the_switch(pairs):
        calls.append(len(pairs))
        if len(calls) == 2:
            loop.loop_settings_update(project=project, user=rosa, kill_switch=True)
        from tests.models_registry.loop_fixtures import known_scorer

        return known_scorer(pairs)

    loop.loop_scorer_register(version=version, scorer=scorer_that_pulls_the_switch)
    run = loop.loop_run(project=project, trigger="command")
    assert run.status == "stopped" and run.items_scored == 10 and calls == [5, 5]
    with pytest.raises(Conflict):
        loop.loop_run(project=project, trigger="command")
    loop.loop_settings_update(project=project, user=rosa, kill_switch=False)
    run = loop.loop_run(project=project, trigger="command")
    assert run.status == "succeeded" and run.items_scored == 10  # the rest, not again


def test_every_settings_change_is_audited(rosa):
    known_version(user=rosa)
    project = known_project(user=rosa, probabilities=[0.9], name="Audited")
    configure(project, rosa, confidence_threshold=0.9)
    loop.loop_settings_update(project=project, user=rosa, human_feedback_ratio=0.4)
    loop.loop_settings_update(project=project, user=rosa, kill_switch=True)
    events = list(AuditEvent.objects.filter(action="loop.settings_update").order_by("id"))
    assert len(events) == 3
    assert events[0].after["confidence_threshold"] == 0.9 and events[0].before is None
    assert events[1].before == {"human_feedback_ratio": 0.1}
    assert events[1].after == {"human_feedback_ratio": 0.4}
    assert events[2].after == {"kill_switch": True}
    # No change, no event; bad values are refused with the field named.
    loop.loop_settings_update(project=project, user=rosa, kill_switch=True)
    assert AuditEvent.objects.filter(action="loop.settings_update").count() == 3
    for bad in ({"confidence_threshold": 0.3}, {"human_feedback_ratio": 2}, {"nope": 1}):
        with pytest.raises(ValidationError) as exc:
            loop.loop_settings_update(project=project, user=rosa, **bad)
        assert next(iter(bad)) in exc.value.message_dict


def test_command_runs_a_pass_with_its_flags(rosa):
    known_version(user=rosa)
    project = known_project(user=rosa, probabilities=PROBS, name="Command")
    configure(project, rosa, confidence_threshold=0.99, human_feedback_ratio=0.0)
    out = io.StringIO()
    call_command(
        "rlhf_loop", "--project", "Command", "--model", "production",
        "--human-feedback-ratio", "0.3", "--confidence-threshold", "0.8", stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    assert result["status"] == "succeeded" and result["items_scored"] == 20
    assert result["checks"] == round(0.3 * 12) and result["auto_labelled"] == 12 - 4
    run = LoopRun.objects.get(pk=result["id"])
    assert run.trigger == "command" and run.settings["confidence_threshold"] == 0.8
    with pytest.raises(CommandError, match="confidence_threshold"):
        call_command("rlhf_loop", "--project", "Command", "--confidence-threshold", "3")
    with pytest.raises(CommandError, match="no such project"):
        call_command("rlhf_loop", "--project", "Nope")


def test_a_pass_needs_a_model(rosa):
    project = known_project(user=rosa, probabilities=[0.9], name="No model")
    with pytest.raises(ValidationError) as exc:
        loop.loop_run(project=project, trigger="command")
    assert "model" in exc.value.message_dict


def test_a_pass_whose_process_died_does_not_block_the_next(rosa, settings):
    known_version(user=rosa)
    project = known_project(user=rosa, probabilities=[0.9], name="Died")
    configure(project, rosa)
    stale = loop.loop_run_start(project=project, trigger="command")
    with pytest.raises(Conflict):  # still within its time limit: one pass at a time
        loop.loop_run_start(project=project, trigger="command")
    settings.LOOP_TASK_TIME_LIMIT = 0
    run = loop.loop_run(project=project, trigger="command")
    assert run.status == "succeeded"
    stale.refresh_from_db()
    assert stale.status == "failed" and "stopped" in stale.message
