"""Model cards: the figures on a card are the stored ones (metrics against the parent,
the snapshot's agreement, calibration), the human-entered text is carried to a child
version, edits make audited revisions, and only those who may change a model's card can.

Versions here are registry rows with real calibration figures (``calibration_fit`` on
seeded margins) and no trained weights: a card reads rows, it never loads a model.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotation import selectors as annotation_selectors
from annotation import services as annotation_services
from annotation.consensus import consensus_recompute
from annotation.exports import dataset_export
from governance.models import AuditEvent
from models_registry import cards, selectors, services
from models_registry.calibration import calibration_fit
from models_registry.models import BaseModel, ModelCard, ModelVersion, TrainingJob
from tests.annotation.conftest import label, pairs

pytestmark = pytest.mark.django_db

CARD_TEXT = {
    "intended_use": "Scores politeness of **assistant** answers.",
    "limitations": "English only; tone, not truth.",
    "ethical_considerations": "Politeness norms differ.",
}


@pytest.fixture
def snapshot(rosa, anna, ben):
    """Two annotators who disagree on two of eight items, so α is a real number."""
    project = annotation_services.project_create(created_by=rosa, name="Cards", overlap=2)
    for user in (anna, ben):
        annotation_services.project_member_add(project=project, user=user, role="annotator")
    annotation_services.items_create_bulk(project=project, rows=pairs(8))
    for i in range(8):
        label(project, anna, "A")
        label(project, ben, "B" if i < 2 else "A")
    consensus_recompute(project=project)
    return dataset_export(project=project, fmt="trl", user=rosa)


@pytest.fixture
def base(ada):
    return BaseModel.objects.create(
        name="tiny-base", architecture="encoder", source="directory", location="/nonexistent"
    )


def version_create(*, rosa, base, snapshot, number: int, seed: int, accuracy: float, **extra):
    """A registered version row with real calibration figures (no weights)."""
    registered = (
        services.registered_model_create(name="card-rm", kind="reward", user=rosa)
        if (number == 1)
        else ModelVersion.objects.get(registered_model__name="card-rm", number=1).registered_model
    )
    margins = np.random.default_rng(seed).normal(1.0, 2.0, size=200)
    return ModelVersion.objects.create(
        registered_model=registered, number=number, kind="reward", base_model=base,
        snapshot=snapshot, snapshot_sha256=snapshot.sha256, artifact_path=f"models/x/{number}",
        artifact_sha256=f"{number}" * 64, artifact_files={}, size_bytes=1,
        training_config={"epochs": 2}, library_versions={},
        metrics={"heldout_accuracy": accuracy, "heldout_pairs": 200, "train_pairs": 800,
                 "train_loss": 0.4321987},
        calibration=calibration_fit(margins), created_by=rosa, **extra,
    )  # fmt: skip


@pytest.fixture
def parent(rosa, base, snapshot):
    return version_create(rosa=rosa, base=base, snapshot=snapshot, number=1, seed=1, accuracy=0.71)


@pytest.fixture
def version(rosa, base, snapshot, parent):
    return version_create(
        rosa=rosa, base=base, snapshot=snapshot, number=2, seed=2, accuracy=0.8125
    )


def section(document: cards.CardDocument, key: str) -> cards.CardSection:
    return next(s for s in document.sections if s.key == key)


def cells(section: cards.CardSection) -> set[str]:
    return {c for t in section.tables for row in t.rows for c in row} | {
        v for _, v in section.facts
    }


# -- the computed figures ----------------------------------------------------------------


def test_the_card_shows_the_stored_metrics_against_the_parent(version, parent):
    document = cards.card_compose(version=version)
    metrics = section(document, "metrics")
    assert metrics.tables[0].headers == ["Metric", "card-rm@2", "card-rm@1", "Change"]
    row = next(r for r in metrics.tables[0].rows if r[0] == "Held-out accuracy")
    assert row == ["Held-out accuracy", "0.8125", "0.71", f"{0.8125 - 0.71:+.4g}"]
    assert "0.4322" in cells(metrics)  # the training loss to four significant digits
    ece, parent_ece = version.calibration["after"]["ece"], parent.calibration["after"]["ece"]
    ece_row = next(r for r in metrics.tables[0].rows if r[0] == "ECE (calibrated)")
    assert ece_row == ["ECE (calibrated)", f"{ece:.4g}", f"{parent_ece:.4g}",
                       f"{ece - parent_ece:+.4g}"]  # fmt: skip
    details = dict(section(document, "details").facts)
    assert details["Parent version"] == "card-rm@1" and details["Version"] == "card-rm@2"


def test_the_card_shows_the_snapshots_agreement_as_annotation_computed_it(version, snapshot):
    stats = annotation_selectors.snapshot_lineage(snapshot=snapshot)["agreement"]
    alpha = stats["metrics"]["alpha_nominal"]
    assert alpha is not None and -1 <= alpha < 1  # two of eight items disagree
    facts = dict(section(cards.card_compose(version=version), "training_data").facts)
    assert facts["Krippendorff’s α (nominal)"] == f"{alpha:.4g}"
    assert facts["Fleiss’ κ"] == cards.number_format(stats["metrics"]["fleiss_kappa"])
    assert facts["Snapshot SHA-256"] == snapshot.sha256
    assert facts["Rows"] == f"{snapshot.row_count:,}"
    assert facts["Annotations"] == f"{stats['n_annotations']:,}" == "16"


def test_the_card_shows_calibration_before_and_after_with_a_reliability_diagram(version):
    calibration = section(cards.card_compose(version=version), "calibration")
    stored = version.calibration
    rows = {r[0]: r[1:] for r in calibration.tables[0].rows}
    assert rows["Raw margins"][0] == f"{stored['before']['ece']:.4g}"
    temperature_row = rows[f"Temperature T = {stored['temperature']:.4g}"]
    assert temperature_row[0] == f"{stored['after']['ece']:.4g}"
    assert temperature_row[3] == f"{stored['after']['brier']:.4g}"
    assert stored["before"]["ece"] != stored["after"]["ece"]  # the figures are not one value
    svg = calibration.figure_svg
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert f"T = {stored['temperature']:.4g}" in calibration.paragraphs[0]


def test_monitoring_adds_production_calibration_and_open_alerts(version):
    from monitoring.models import Alert, AlertRule, MetricPoint

    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    MetricPoint.objects.create(
        version=version, window="day", start=start, n=321, accuracy=0.75, ece=0.0876,
        ece_equal_mass=0.09, mce=0.2, brier=0.2, nll=0.6, reliability={},
    )  # fmt: skip
    rule = AlertRule.objects.create(
        name="ECE too high", metric="ece", comparator="gt", threshold=0.05, window="day",
        severity="critical", cooldown=timedelta(hours=1),
        registered_model=version.registered_model, alias="production",
    )  # fmt: skip
    Alert.objects.create(rule=rule, version=version, value=0.0876, point_start=start,
                         fired_at=timezone.now())  # fmt: skip
    document = cards.card_compose(version=version)
    assert [s.key for s in document.sections] == cards.card_section_keys()
    production = section(document, "production_calibration")
    assert {"0.0876", "321"} <= cells(production)
    alerts = section(document, "open_alerts").tables[0].rows
    assert alerts[0][:4] == [str(rule), "Critical", "Firing", "0.0876"]


# -- human-entered text: carried, revised, audited, gated ----------------------------------


def register(*, rosa, base, snapshot, tmp_path, card=None) -> ModelVersion:
    """A version through the registry's own registration path (artifact files written)."""
    job = services.training_job_create(
        user=rosa, kind="reward", registered_model_name="reg-rm", base_model=base,
        snapshot_id=snapshot.pk, card=card,
    )  # fmt: skip
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.REGISTERING)
    directory = tmp_path / f"job{job.pk}"
    directory.mkdir()
    (directory / "model.safetensors").write_bytes(b"not really weights")
    return services.model_version_register(
        job=job, directory=directory, metrics={"heldout_accuracy": 0.6}, calibration={}
    )


def test_a_first_card_starts_from_the_job_and_a_child_from_its_parent(
    rosa, base, snapshot, tmp_path
):
    first = register(rosa=rosa, base=base, snapshot=snapshot, tmp_path=tmp_path, card=CARD_TEXT)
    card = selectors.model_card_current(version=first)
    assert card.revision == 1 and card.carried_from is None
    assert card.intended_use == CARD_TEXT["intended_use"]
    services.model_card_update(
        version=first, user=rosa, fields={"limitations": "Also: short answers only."}
    )
    child = register(rosa=rosa, base=base, snapshot=snapshot, tmp_path=tmp_path)
    child_card = selectors.model_card_current(version=child)
    assert child_card.carried_from == first and child_card.revision == 1
    assert child_card.limitations == "Also: short answers only."
    assert child_card.human_fields() == selectors.model_card_current(version=first).human_fields()
    assert AuditEvent.objects.filter(
        action="model.card_create", object_id=str(child_card.pk)
    ).exists()
    # The child's card is its own: editing it leaves the parent's alone.
    services.model_card_update(version=child, user=rosa, fields={"limitations": "Changed."})
    assert selectors.model_card_current(version=first).limitations == "Also: short answers only."


def test_edits_make_audited_revisions_and_no_change_makes_none(version, rosa):
    card = services.model_card_update(version=version, user=rosa, fields=CARD_TEXT, note="v1")
    assert card.revision == 2  # revision 1 is the (empty) card the version started with
    again = services.model_card_update(version=version, user=rosa, fields=CARD_TEXT)
    assert again.revision == 2
    card = services.model_card_update(
        version=version, user=rosa, fields={"limitations": "Only English."}, note="scope"
    )
    assert card.revision == 3
    revisions = list(selectors.model_card_revisions(card=card))
    assert [r.revision for r in revisions] == [3, 2, 1]
    assert revisions[0].changed == ["limitations"] and revisions[0].note == "scope"
    assert revisions[1].fields["limitations"] == CARD_TEXT["limitations"]  # earlier text kept
    events = AuditEvent.objects.filter(action="model.card_update", object_id=str(card.pk))
    assert events.count() == 2
    last = events.order_by("-sequence").first()
    assert last.actor == rosa
    assert last.before["limitations"] == CARD_TEXT["limitations"]
    assert last.after["limitations"] == "Only English." and last.after["revision"] == 3


def test_the_model_card_gate_needs_intended_use_and_limitations(version, rosa):
    assert selectors.model_card_gate_check(version=version)["passed"] is False
    services.model_card_update(version=version, user=rosa, fields={"intended_use": "x"})
    result = selectors.model_card_gate_check(version=version)
    assert result["passed"] is False and "Limitations" in result["detail"]
    services.model_card_update(version=version, user=rosa, fields={"limitations": "y"})
    assert selectors.model_card_gate_check(version=version)["passed"] is True


# -- pages, downloads and the API ----------------------------------------------------------


def login(client, user, password):
    assert client.login(username=user.username, password=password)
    return client


def test_the_card_page_and_markdown_download(client, password, rosa, version):
    services.model_card_update(version=version, user=rosa, fields=CARD_TEXT)
    login(client, rosa, password)
    page = client.get(f"/models/versions/{version.pk}/card/").content.decode()
    assert "Model card: card-rm@2" in page and "<strong>assistant</strong>" in page
    assert f"{version.calibration['after']['ece']:.4g}" in page and "<svg" in page
    assert 'data-testid="card-edit"' in page and "<script>" not in page and "style=" not in page
    response = client.get(f"/models/versions/{version.pk}/card.md")
    assert response["Content-Type"].startswith("text/markdown")
    assert 'filename="model-card-card-rm-2-r2.md"' in response["Content-Disposition"]
    text = response.content.decode()
    body, _, footer = text.partition("\n---\n\n")
    assert "Model version `card-rm@2` · card revision 2" in body
    assert CARD_TEXT["limitations"] in body and "| Held-out accuracy | 0.8125 | 0.71 |" in body
    digest = hashlib.sha256(body.encode()).hexdigest()
    assert response["X-Content-SHA256"] == digest
    assert footer.startswith(f"card-rm@2 · card revision 2 · content SHA-256 {digest}")


def test_markdown_images_in_card_text_are_not_rendered(client, password, rosa, version):
    services.model_card_update(
        version=version, user=rosa,
        fields={"limitations": "see ![x](http://203.0.113.9/p.png) and <img src=/x>"},
    )  # fmt: skip
    login(client, rosa, password)
    page = client.get(f"/models/versions/{version.pk}/card/").content.decode()
    shown = page.partition('data-testid="card-edit"')[0]  # the form holds the raw text
    assert "203.0.113.9" not in shown and "<img" not in shown and "see" in shown


def test_the_form_saves_a_revision_and_answers_400_naming_the_field(
    client, password, rosa, version
):
    login(client, rosa, password)
    url = f"/models/versions/{version.pk}/card/"
    response = client.post(url, {**CARD_TEXT, "note": "first"})
    assert response.status_code == 302
    assert selectors.model_card_current(version=version).revision == 2
    bad = client.post(url, {"intended_use": "x" * (ModelCard.MAX_LENGTH + 1)})
    assert bad.status_code == 400 and "at most 20,000 characters" in bad.content.decode()
    nul = client.post(url, {"limitations": "a\x00b"})
    assert nul.status_code == 400 and "NUL" in nul.content.decode()
    assert selectors.model_card_current(version=version).revision == 2


def test_the_api_reads_and_changes_the_card_with_field_errors(api_as, rosa, version):
    api = api_as(rosa)
    url = f"/api/models/versions/{version.pk}/card/"
    body = api.get(url).json()
    assert body["version"] == "card-rm@2" and body["revision"] == 0  # no card yet
    assert body["gate"]["passed"] is False
    changed = api.patch(url, {**CARD_TEXT, "note": "api"}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["revision"] == 2 and changed.json()["gate"]["passed"] is True
    assert changed.json()["revisions"][0]["note"] == "api"
    for payload, field in (
        ({"limitations": "x" * (ModelCard.MAX_LENGTH + 1)}, "limitations"),
        ('{"intended_use": "bad \\ud800"}', "intended_use"),  # JSON text: a lone surrogate
        ({"note": "n" * 501}, "note"),
    ):
        if isinstance(payload, str):
            response = api.generic("PATCH", url, payload, content_type="application/json")
        else:
            response = api.patch(url, payload, format="json")
        assert response.status_code == 400, payload
        assert field in response.json()["error"]["fields"], response.json()
    assert api.get(url).json()["revision"] == 2


def test_who_may_read_and_who_may_change_a_card(client, api_as, password, rosa, eve, anna, vic,
                                                ada, version):  # fmt: skip
    url = f"/models/versions/{version.pk}/card/"
    api_url = f"/api/models/versions/{version.pk}/card/"
    # Eve (ethics committee) reads cards, the evidence of promotions, but does not write them.
    login(client, eve, password)
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="card-edit"' not in page.content.decode()
    assert client.post(url, CARD_TEXT).status_code == 403
    assert client.get(f"/models/versions/{version.pk}/card.md").status_code == 200
    assert api_as(eve).patch(api_url, CARD_TEXT, format="json").status_code == 403
    # Anna (annotator) and Vic (viewer) have no business with models at all.
    for user in (anna, vic):
        login(client, user, password)
        assert client.get(url).status_code == 403
        assert client.get(f"/models/versions/{version.pk}/card.pdf").status_code == 403
        assert api_as(user).get(api_url).status_code in (403, 404)
        assert api_as(user).patch(api_url, CARD_TEXT, format="json").status_code in (403, 404)
    assert selectors.model_card_current(version=version) is None  # nothing was written
    assert api_as(ada).patch(api_url, CARD_TEXT, format="json").status_code == 200
