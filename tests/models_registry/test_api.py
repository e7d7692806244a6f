"""Models API: who may do what, training jobs, aliases, comparison and prediction."""

from __future__ import annotations

import pytest

from models_registry.models import ModelVersion, Prediction, TrainingJob
from tests.models_registry.conftest import TINY_CONFIG, train_now

pytestmark = pytest.mark.django_db
BASE = "/api/models"


@pytest.fixture
def version(rosa, snapshot, tiny_encoder):
    return train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot).version


def test_annotators_and_strangers_see_nothing_of_models(api_as, anna, nobody, version):
    for user in (anna, nobody):
        client = api_as(user)
        for path in ("registered/", "versions/", "jobs/", "base-models/", "predictions/"):
            assert client.get(f"{BASE}/{path}").status_code == 403, (user, path)
        assert client.get(f"{BASE}/versions/{version.pk}/").status_code == 403
        response = client.post(
            f"{BASE}/{version.ref}/predict",
            {"pairs": [{"prompt": "p", "response_a": "a", "response_b": "b"}]},
        )
        assert response.status_code == 403


def test_the_ethics_committee_reads_versions_but_cannot_train_or_predict(
    api_as, eve, version, snapshot, tiny_encoder
):
    client = api_as(eve)
    assert client.get(f"{BASE}/versions/{version.pk}/").json()["ref"] == "tiny-rm@1"
    assert client.get(f"{BASE}/jobs/").status_code == 403
    body = {"registered_model": "x", "base_model": tiny_encoder.name, "snapshot": snapshot.pk}
    assert client.post(f"{BASE}/jobs/", body).status_code == 403


def test_a_researcher_queues_a_job_and_reads_its_progress(
    api_as, rosa, snapshot, tiny_encoder, django_capture_on_commit_callbacks
):
    body = {"registered_model": "api-rm", "base_model": tiny_encoder.name,
            "snapshot": snapshot.pk, "config": TINY_CONFIG}  # fmt: skip
    response = api_as(rosa).post(f"{BASE}/jobs/", body)
    assert response.status_code == 201, response.json()
    job = response.json()
    assert job["status"] == "queued" and job["config"]["max_length"] == 64
    detail = api_as(rosa).get(f"{BASE}/jobs/{job['id']}/").json()
    assert detail["percent"] == 0.0 and detail["history"] == []
    cancelled = api_as(rosa).post(f"{BASE}/jobs/{job['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    again = api_as(rosa).post(f"{BASE}/jobs/{job['id']}/cancel/")
    assert again.status_code == 409 and again.json()["error"]["fields"] == {
        "status": ["the job has already cancelled"]
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"config": {"epochs": 0}}, "config.epochs"),
        ({"config": {"learning_rate": "fast"}}, "config.learning_rate"),
        ({"config": {"nope": 1}}, "config.nope"),
        ({"config": []}, "config"),
        ({"snapshot": 999999}, "snapshot"),
        ({"snapshot": 10**30}, "snapshot"),
        ({"base_model": "missing"}, "base_model"),
        ({"registered_model": "Bad Name"}, "registered_model"),
        ({"registered_model": "jobs"}, "name"),  # /models/jobs/ is a page
        ({"kind": "policy"}, "base_model"),  # DPO needs a causal LM
    ],
)
def test_bad_job_requests_answer_400_naming_the_field(
    api_as, rosa, snapshot, tiny_encoder, change, field
):
    body = {
        "registered_model": "api-rm",
        "base_model": tiny_encoder.name,
        "snapshot": snapshot.pk,
        **change,
    }
    response = api_as(rosa).post(f"{BASE}/jobs/", body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not TrainingJob.objects.exists()


def test_predict_returns_calibrated_probabilities_and_stores_them(api_as, rosa, version):
    pairs = [
        {
            "prompt": "Say hi.",
            "response_a": "Hi there!",
            "response_b": "Whatever, idiot.",
            "item_ref": "x1",
        },
        {"prompt": "Say hi.", "response_a": "Whatever, idiot.", "response_b": "Hi there!"},
    ]
    response = api_as(rosa).post(f"{BASE}/{version.ref}/predict", {"pairs": pairs})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == "tiny-rm@1" and body["calibration"] == "temperature"
    first, second = body["predictions"]
    assert 0 <= first["p_a"] <= 1 and first["p_a"] == pytest.approx(1 - second["p_a"], abs=1e-6)
    assert first["margin"] == pytest.approx(first["reward_a"] - first["reward_b"])
    assert Prediction.objects.filter(item_ref="x1", version=version).count() == 1
    listed = api_as(rosa).get(f"{BASE}/predictions/?version={version.pk}").json()
    assert listed["count"] == 2


def test_predict_through_an_alias(api_as, rosa, version):
    """Aliases move through approvals (tests/governance); here one is set by the service."""
    from models_registry import services as registry_services

    registry_services.model_alias_set(
        registered_model=version.registered_model, alias="production", version=version,
        user=rosa, reason="first",
    )  # fmt: skip
    pairs = [{"prompt": "p", "response_a": "a", "response_b": "b"}]
    assert (
        api_as(rosa).post(f"{BASE}/tiny-rm:production/predict", {"pairs": pairs}).status_code == 200
    )
    history = api_as(rosa).get(f"{BASE}/registered/{version.registered_model_id}/aliases/").json()
    assert [c["to_version"] for c in history["results"]] == [version.pk]
    registry_services.model_alias_remove(
        registered_model=version.registered_model, alias="production", user=rosa
    )
    assert (
        api_as(rosa).post(f"{BASE}/tiny-rm:production/predict", {"pairs": pairs}).status_code == 404
    )


def test_a_direct_alias_move_is_refused_and_audited(api_as, rosa, ada, version):
    from governance.models import AuditEvent

    for user, body in ((rosa, {"alias": "production", "version": version.pk, "reason": "now"}),
                       (ada, {"alias": "production"})):  # fmt: skip
        response = api_as(user).post(
            f"{BASE}/registered/{version.registered_model_id}/aliases/", body
        )
        assert response.status_code == 403, response.json()
        error = response.json()["error"]
        assert error["code"] == "approval_required"
        assert "/governance/approvals/" in error["message"] and "model.promote" in error["message"]
    assert not version.registered_model.aliases.exists()
    refused = AuditEvent.objects.filter(action="approval.bypass_refused").order_by("sequence")
    assert [(e.actor_username, e.after["channel"], e.after["alias"]) for e in refused] == [
        ("rosa", "api", "production"), ("ada", "api", "production"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pairs": []}, "pairs"),
        ({"pairs": "x"}, "pairs"),
        ({"pairs": [{"prompt": "p", "response_a": "a"}]}, "pairs.0.response_b"),
        ({"pairs": [{"prompt": "p", "response_a": 5, "response_b": ["b"]}]}, "pairs.0.response_b"),
        ({"pairs": [{"prompt": "p", "response_a": "a", "response_b": "b"}] * 513}, "pairs"),
    ],
)
def test_bad_predict_requests_answer_400_naming_the_field(api_as, rosa, version, body, field):
    response = api_as(rosa).post(f"{BASE}/{version.ref}/predict", body)
    assert response.status_code == 400, response.json()
    assert any(name.startswith(field) for name in response.json()["error"]["fields"]), (
        response.json()
    )


def test_unknown_versions_are_404(api_as, rosa, version):
    pairs = [{"prompt": "p", "response_a": "a", "response_b": "b"}]
    for ref in ("nope@1", "tiny-rm@99", "tiny-rm:staging", "999999", "tiny-rm@x", "9" * 40):
        assert api_as(rosa).post(f"{BASE}/{ref}/predict", {"pairs": pairs}).status_code == 404, ref


def test_versions_compare_side_by_side(api_as, rosa, version, snapshot, tiny_encoder):
    other = train_now(
        user=rosa, base_model=tiny_encoder, snapshot=snapshot, config={"seed": 7}
    ).version
    response = api_as(rosa).get(f"{BASE}/versions/compare/?versions={version.ref},{other.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["versions"] == ["tiny-rm@1", "tiny-rm@2"]
    seeds = next(r for r in body["rows"] if r["label"] == "seed")
    assert seeds["values"] == [42, 7]
    assert api_as(rosa).get(f"{BASE}/versions/compare/?versions={version.pk}").status_code == 400
    assert ModelVersion.objects.count() == 2
