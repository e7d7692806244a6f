"""Approvals as stories: Rosa (researcher) asks to promote a version to production; Eve and
Ethan (ethics committee) decide; Ada (admin) holds the gate-override role.  Nobody moves an
alias directly, not even Ada."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from governance import services
from governance.models import (
    ApprovalDecision,
    ApprovalRequest,
    AuditEvent,
    GateResult,
    Notification,
)
from models_registry import selectors as registry_selectors
from models_registry import services as models_services
from models_registry.models import AliasChange, ModelAlias
from monitoring.models import Alert, AlertRule
from rlhf_platform.errors import Conflict
from tests.factories import UserFactory
from tests.governance.conftest import version_make

pytestmark = pytest.mark.django_db


def promote(version, user, alias: str = "production"):
    return services.approval_request_open(
        kind="model.promote", subject=version, payload={"alias": alias}, requested_by=user,
        justification="Better held-out accuracy on the polite/rude pairs.",
    )  # fmt: skip


def approve(request, user, **extra):
    return services.approval_request_decide(
        request=request, reviewer=user, verdict="approve", rationale="Evidence checked.", **extra
    )


def production(version):
    return registry_selectors.alias_version(
        registered_model=version.registered_model, alias="production"
    )


def actions():
    return list(AuditEvent.objects.values_list("action", flat=True))


def test_one_approval_of_two_does_not_promote_the_second_does(rosa, eve, ethan, version):
    request = promote(version, rosa)
    assert request.status == "pending" and request.quorum == 2
    assert {g.gate: g.passed for g in request.gates.filter(stage="open")} == {
        "heldout_accuracy": True, "calibrated_ece": True, "snapshot_alpha": True,
        "no_critical_alert": True, "model_card": True,
    }  # fmt: skip

    approve(request, eve)
    request.refresh_from_db()
    assert request.status == "pending" and production(version) is None

    approve(request, ethan)
    request.refresh_from_db()
    assert request.status == "executed" and production(version) == version
    change = AliasChange.objects.get(alias="production")
    assert change.changed_by == rosa and change.reason == f"approval request #{request.pk}"
    # The gates were measured again at the approval that reached the quorum.
    assert request.gates.filter(stage="approval").count() == 5
    trail = actions()
    assert trail.count("approval.decided") == 2
    assert trail.index("approval.requested") < trail.index("model.alias_set")
    assert trail.index("model.alias_set") < trail.index("approval.executed")


def test_the_requester_may_never_approve_their_own_request(rhea, eve, version):
    request = promote(version, rhea)  # Rhea is a researcher *and* on the committee
    with pytest.raises(PermissionDenied, match="requester"):
        approve(request, rhea)
    approve(request, eve)
    request.refresh_from_db()
    assert request.status == "pending" and request.decisions.count() == 1
    assert production(version) is None


def test_the_same_reviewer_counts_once(rosa, eve, version):
    request = promote(version, rosa)
    approve(request, eve)
    with pytest.raises(Conflict, match="already decided"):
        approve(request, eve)


def test_people_the_policy_does_not_name_may_not_decide(rosa, vic, rex, eve, version):
    request = promote(version, rosa)
    for outsider in (vic, rex):  # a viewer; a reviewer of no project of this model
        with pytest.raises(PermissionDenied):
            approve(request, outsider)
    # Reviewers of the subject's project review too (the default policy says so).
    from annotation.services import project_member_add

    project_member_add(project=version.snapshot.project, user=rex, role="reviewer")
    approve(request, rex)
    approve(request, eve)
    request.refresh_from_db()
    assert request.status == "executed"


@pytest.fixture
def tess(db):
    """A third member of the ethics committee."""
    return UserFactory(username="tess", roles=["ethics_committee"])


def test_a_veto_rejects(rosa, eve, ethan, tess, version):
    request = promote(version, rosa)
    approve(request, eve)
    services.approval_request_decide(
        request=request, reviewer=ethan, verdict="reject", rationale="Calibrated on too few pairs."
    )
    request.refresh_from_db()
    assert request.status == "rejected" and production(version) is None
    with pytest.raises(Conflict, match="rejected"):
        approve(request, tess)


def test_without_veto_one_rejection_does_not_reject(rosa, eve, ethan, tess, version):
    services.approval_policy_set(kind="model.promote", rejection_vetoes=False)
    request = promote(version, rosa)
    services.approval_request_decide(
        request=request, reviewer=eve, verdict="reject", rationale="Not convinced."
    )
    request.refresh_from_db()
    assert request.status == "pending"
    approve(request, ethan)
    approve(request, tess)
    request.refresh_from_db()
    assert request.status == "executed"


def test_a_project_policy_overrides_the_default(rosa, eve, version):
    services.approval_policy_set(kind="model.promote", quorum=3)
    services.approval_policy_set(
        kind="model.promote", project_id=version.snapshot.project_id, quorum=1
    )
    request = promote(version, rosa)
    assert request.quorum == 1
    approve(request, eve)
    request.refresh_from_db()
    assert request.status == "executed"


def test_request_changes_closes_the_request(rosa, eve, version):
    request = promote(version, rosa)
    services.approval_request_decide(
        request=request, reviewer=eve, verdict="request_changes", rationale="Add a model card."
    )
    request.refresh_from_db()
    assert request.status == "changes_requested" and production(version) is None
    promote(version, rosa)  # she may ask again


def _critical_alert(version):
    rule = AlertRule.objects.create(
        name="accuracy-floor", metric="accuracy", comparator="lt", threshold=0.6,
        severity="critical", cooldown=timedelta(hours=1),
        registered_model=version.registered_model, alias="production",
    )  # fmt: skip
    now = timezone.now()
    return Alert.objects.create(
        rule=rule, version=version, value=0.4, point_start=now, fired_at=now
    )


def test_a_gate_that_turns_red_before_the_deciding_approval_blocks_it(
    rosa, eve, ethan, ada, version
):
    request = promote(version, rosa)
    assert all(g.passed for g in request.gates.all())
    approve(request, eve)  # not the deciding approval: the gates at opening were green
    _critical_alert(version)  # then a critical alert fires for production

    with pytest.raises(services.GatesBlocked, match="No critical alert"):
        approve(request, ethan)
    request.refresh_from_db()
    assert request.status == "pending" and production(version) is None
    assert request.decisions.count() == 1  # Ethan's approval was not recorded
    red = request.gates.get(stage="approval", gate="no_critical_alert")
    assert (red.passed, red.value, red.detail) == (False, 1.0, "firing: accuracy-floor")
    assert "approval.gates_blocked" in actions()

    # Ethan cannot override (not in the override role), even with a rationale.
    with pytest.raises(services.GatesBlocked):
        approve(request, ethan, override_rationale="I think it is fine.")
    # Ada holds the override role: with a rationale, her approval passes, audited.
    decision = approve(
        request, ada, override_rationale="The alert is on the old version's traffic."
    )
    request.refresh_from_db()
    assert decision.gate_override and request.status == "executed"
    assert production(version) == version
    override = AuditEvent.objects.get(action="approval.gate_override")
    assert override.after["failed"] == ["no_critical_alert"]
    assert "The alert" not in override.canonical  # the rationale stays out of the trail


def test_an_override_needs_a_rationale(rosa, eve, ada, version):
    request = promote(version, rosa)
    _critical_alert(version)
    approve(request, eve)
    with pytest.raises(services.GatesBlocked):
        approve(request, ada, override_rationale="   ")


def test_failing_gates_at_opening_block_every_approval(rosa, eve, snapshot, base):
    weak = version_make(snapshot=snapshot, base=base, accuracy=0.52, ece=0.2, name="weak-rm")
    request = promote(weak, rosa)
    failed = {g.gate for g in request.gates.filter(stage="open", passed=False)}
    assert failed == {"heldout_accuracy", "calibrated_ece"}
    with pytest.raises(services.GatesBlocked, match="Held-out accuracy"):
        approve(request, eve)


def test_a_version_without_a_written_model_card_is_blocked_until_it_has_one(
    rosa, eve, ethan, version
):
    models_services.model_card_update(version=version, user=rosa, fields={"limitations": ""})
    request = promote(version, rosa)
    card_gate = request.gates.get(stage="open", gate="model_card")
    assert card_gate.passed is False and "Limitations" in card_gate.detail
    with pytest.raises(services.GatesBlocked, match="Model card"):
        approve(request, eve)
    # Written now: a request opened again passes the gate.
    services.approval_request_decide(
        request=request, reviewer=eve, verdict="request_changes", rationale="Write the card."
    )
    models_services.model_card_update(
        version=version, user=rosa, fields={"limitations": "English only; few pairs."}
    )
    again = promote(version, rosa)
    approve(again, eve)
    approve(again, ethan)
    assert production(version) == version


def test_gate_thresholds_come_from_the_gate_policy(rosa, eve, ada, ethan, version):
    services.gate_policy_set(kind="model.promote", gate="heldout_accuracy", threshold=0.9)
    request = promote(version, rosa)
    gate = request.gates.get(gate="heldout_accuracy")
    assert (gate.passed, gate.value, gate.threshold, gate.comparator) == (False, 0.8, 0.9, ">=")


def test_expiry(rosa, eve, version, other_version):
    request = promote(version, rosa)
    later = promote(other_version, rosa)
    ApprovalRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(Conflict, match="expired"):
        approve(request, eve)
    request.refresh_from_db()
    assert request.status == "expired" and production(version) is None
    assert "approval.expired" in actions()
    assert Notification.objects.filter(user=rosa, message__contains="expired").exists()
    # Beat closes the others as their time comes.
    assert services.approval_requests_expire(now=later.expires_at + timedelta(seconds=1)) == 1
    later.refresh_from_db()
    assert later.status == "expired"


@pytest.fixture
def other_version(version, snapshot, base):
    return version_make(
        snapshot=snapshot, base=base, registered_model=version.registered_model, number=2
    )


def test_rationales_are_not_stored_in_clear_text(rosa, eve, version):
    request = promote(version, rosa)
    services.approval_request_decide(
        request=request, reviewer=eve, verdict="approve", rationale="Checked the lineage."
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT rationale FROM governance_approvaldecision")
        (stored,) = cursor.fetchone()
        cursor.execute("SELECT justification FROM governance_approvalrequest")
        (justification,) = cursor.fetchone()
    assert "lineage" not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert "accuracy" not in justification and justification.startswith("gAAAA")
    assert ApprovalDecision.objects.get().rationale == "Checked the lineage."
    # Nor in the audit trail.
    assert not AuditEvent.objects.filter(canonical__contains="lineage").exists()


@pytest.mark.parametrize("rationale", ["", "   ", None, "bad\x00text"])
def test_a_decision_needs_a_rationale(rosa, eve, version, rationale):
    request = promote(version, rosa)
    with pytest.raises(ValidationError) as caught:
        services.approval_request_decide(
            request=request, reviewer=eve, verdict="approve", rationale=rationale
        )
    assert "rationale" in caught.value.message_dict
    assert not ApprovalDecision.objects.exists()


def test_the_requester_is_notified_in_the_app(rosa, eve, version):
    request = promote(version, rosa)
    services.approval_request_decide(
        request=request, reviewer=eve, verdict="reject", rationale="Too early."
    )
    note = Notification.objects.get(user=rosa)
    assert "eve" in note.message and "rejected" in note.message
    assert note.url == f"/governance/approvals/{request.pk}/"


def test_the_mail_is_sent_after_commit(
    rosa, eve, version, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    request = promote(version, rosa)
    with django_capture_on_commit_callbacks(execute=True):
        services.approval_request_decide(
            request=request, reviewer=eve, verdict="approve", rationale="Fine."
        )
    assert [m.to for m in mail.outbox] == [["rosa@example.org"]]
    assert f"#{request.pk}" in mail.outbox[0].subject


def test_rollback_and_revoke(rosa, eve, ethan, version, other_version):
    for target in (version, other_version):
        request = promote(target, rosa)
        approve(request, eve), approve(request, ethan)
    assert production(version) == other_version
    back = services.approval_request_open(
        kind="model.rollback", subject=version, payload={"alias": "production"},
        requested_by=rosa, justification="v2 misbehaves.",
    )  # fmt: skip
    approve(back, eve), approve(back, ethan)
    assert production(version) == version
    with pytest.raises(ValidationError):  # a rollback goes back to a version it named
        services.approval_request_open(
            kind="model.rollback", subject=version, payload={"alias": "production"},
            requested_by=rosa, justification="again",
        )  # fmt: skip
    revoke = services.approval_request_open(
        kind="model.revoke", subject=version, payload={"alias": "production"},
        requested_by=rosa, justification="Take it offline.",
    )  # fmt: skip
    assert not revoke.gates.exists()  # revoking is never held back by gates
    approve(revoke, eve), approve(revoke, ethan)
    assert production(version) is None


def test_an_execution_that_fails_is_kept(rosa, eve, ethan, version, other_version):
    revoke_first = promote(version, rosa)
    approve(revoke_first, eve), approve(revoke_first, ethan)
    revoke = services.approval_request_open(
        kind="model.revoke", subject=version, payload={"alias": "production"},
        requested_by=rosa, justification="Take it offline.",
    )  # fmt: skip
    # Meanwhile the alias moves on (a promotion of v2 approved first).
    models_services.model_alias_set(
        registered_model=version.registered_model, alias="production", version=other_version
    )
    approve(revoke, eve), approve(revoke, ethan)
    revoke.refresh_from_db()
    assert revoke.status == "failed" and "moved" in revoke.execution_error
    assert production(version) == other_version
    assert "approval.execution_failed" in actions()


def test_the_same_change_cannot_wait_twice(rosa, version):
    promote(version, rosa)
    with pytest.raises(Conflict, match="already waiting"):
        promote(version, rosa)


def test_only_those_who_may_change_the_model_may_ask(eve, vic, version):
    for user in (eve, vic):
        with pytest.raises(PermissionDenied):
            promote(version, user)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "payload.alias"),
        ({"alias": "Bad Alias"}, "payload.alias"),
        ({"alias": 5}, "payload.alias"),
    ],
)
def test_bad_requests_name_the_field(rosa, version, payload, field):
    with pytest.raises(ValidationError) as caught:
        services.approval_request_open(
            kind="model.promote", subject=version, payload=payload, requested_by=rosa,
            justification="x",
        )  # fmt: skip
    assert field in caught.value.message_dict


def test_alert_rule_and_gate_policy_changes_go_through_approval(ada, eve, ethan, version):
    rule = AlertRule.objects.create(
        name="ece", metric="ece", comparator="gt", threshold=0.1, cooldown=timedelta(hours=1),
        registered_model=version.registered_model,
    )  # fmt: skip
    request = services.approval_request_open(
        kind="alert_rule.change", subject=rule, payload={"threshold": 0.2, "cooldown_minutes": 30},
        requested_by=ada, justification="Too noisy.",
    )  # fmt: skip
    approve(request, eve), approve(request, ethan)
    rule.refresh_from_db()
    assert rule.threshold == 0.2 and rule.cooldown == timedelta(minutes=30)

    from governance.approvals import approval_kind

    policy = approval_kind("gate_policy.change").subject_find("model.promote/heldout_accuracy")
    assert policy.threshold == 0.6  # the provider's default, made a row (audited)
    request = services.approval_request_open(
        kind="gate_policy.change", subject=policy, payload={"threshold": 0.7},
        requested_by=ada, justification="Production needs more.",
    )  # fmt: skip
    approve(request, eve), approve(request, ethan)
    policy.refresh_from_db()
    assert policy.threshold == 0.7
    assert "gate_policy.set" in actions()


def test_a_snapshot_release_goes_through_approval(rosa, eve, ethan, snapshot, anna):
    request = services.approval_request_open(
        kind="dataset.release", subject=snapshot,
        payload={"recipient": "University partner", "purpose": "Replication study"},
        requested_by=rosa, justification="Agreed in the data-sharing contract.",
    )  # fmt: skip
    assert request.project_id == snapshot.project_id
    approve(request, eve), approve(request, ethan)
    request.refresh_from_db()
    assert request.status == "executed"
    release = AuditEvent.objects.get(action="snapshot.release")
    assert release.after["recipient"] == "University partner"
    with pytest.raises(PermissionDenied):  # an annotator may not export, so not release
        services.approval_request_open(
            kind="dataset.release", subject=snapshot, payload={"recipient": "x", "purpose": "y"},
            requested_by=anna, justification="z",
        )  # fmt: skip


def test_gate_results_are_stored_with_their_values(rosa, version):
    request = promote(version, rosa)
    rows = {g.gate: g for g in GateResult.objects.filter(request=request)}
    assert rows["snapshot_alpha"].value == pytest.approx(0.82)
    assert rows["calibrated_ece"].value == pytest.approx(0.03)
    assert rows["calibrated_ece"].comparator == "<=" and rows["calibrated_ece"].threshold == 0.1
    requested = AuditEvent.objects.get(action="approval.requested")
    assert requested.after["gates"]["heldout_accuracy"] == {
        "passed": True, "value": 0.8, "threshold": 0.6,
    }  # fmt: skip
    assert ModelAlias.objects.count() == 0


def test_an_override_covers_its_gates_for_the_other_reviewers_not_new_ones(
    rosa, eve, ethan, ada, snapshot, base
):
    weak = version_make(snapshot=snapshot, base=base, accuracy=0.55, name="weak-rm")
    request = promote(weak, rosa)
    decision = approve(request, ada, override_rationale="Small eval set; accepted for a pilot.")
    assert decision.overridden_gates == ["heldout_accuracy"]
    _critical_alert(weak)  # a new gate turns red before the deciding approval
    with pytest.raises(services.GatesBlocked, match="No critical alert") as caught:
        approve(request, eve)
    assert caught.value.failed == ["No critical alert firing for the alias"]
    Alert.objects.update(state="resolved")
    approve(request, ethan)  # only the overridden gate fails now: Ethan's approval counts
    request.refresh_from_db()
    assert request.status == "executed"
