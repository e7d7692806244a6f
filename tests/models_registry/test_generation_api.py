"""The generation API: admins manage providers and the key never comes back; researchers
read providers, build prompt sets, queue jobs and download results; bad input is a 400
naming the field."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from models_registry import generation
from models_registry.generation_models import GenerationJob, Provider
from tests.models_registry.conftest import API_KEY

pytestmark = pytest.mark.django_db


def test_admins_create_providers_and_the_key_never_comes_back(api_as, ada, fake_provider):
    api = api_as(ada)
    body = {"name": "fake", "base_url": fake_provider.base_url + "/", "model_name": "fake-model",
            "api_key": API_KEY, "requests_per_minute": 600, "timeout_seconds": 2}  # fmt: skip
    created = api.post("/api/models/providers/", body, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert created.json()["base_url"] == fake_provider.base_url  # trailing slash dropped
    answers = [
        created,
        api.get("/api/models/providers/"),
        api.get(f"/api/models/providers/{pk}/"),
        api.patch(f"/api/models/providers/{pk}/", {"timeout_seconds": 3}, format="json"),
        api.post(f"/api/models/providers/{pk}/test/"),
    ]
    for answer in answers:
        assert answer.status_code == 200 or answer.status_code == 201
        assert API_KEY not in answer.content.decode()
        assert API_KEY[:-4] not in answer.content.decode()
    assert answers[2].json()["api_key_masked"] == "••••••••" + API_KEY[-4:]
    assert "api_key" not in answers[2].json()
    assert answers[4].json()["ok"] is True
    assert Provider.objects.get(pk=pk).api_key == API_KEY  # a PATCH without a key keeps it


def test_bad_provider_input_is_a_400_naming_the_field(api_as, ada):
    api = api_as(ada)
    for body, field in [
        ({"name": "p", "base_url": "javascript:alert(1)", "model_name": "m"}, "base_url"),
        ({"name": "p", "base_url": "https://x.example/v1?k=1", "model_name": "m"}, "base_url"),
        ({"name": "p", "base_url": "https://x.example/v1", "model_name": ""}, "model_name"),
        ({"name": "p", "base_url": "https://x.example/v1", "model_name": "m",
          "timeout_seconds": -1}, "timeout_seconds"),
        ({"name": "p\x00", "base_url": "https://x.example/v1", "model_name": "m"}, "name"),
    ]:  # fmt: skip
        answer = api.post("/api/models/providers/", body, format="json")
        assert answer.status_code == 400, body
        assert field in answer.json()["error"]["fields"], answer.json()


def test_researchers_read_providers_but_do_not_manage_them(api_as, rosa, provider):
    api = api_as(rosa)
    listed = api.get("/api/models/providers/")
    assert listed.status_code == 200 and listed.json()["results"][0]["name"] == "fake"
    assert API_KEY not in listed.content.decode()
    body = {"name": "mine", "base_url": "https://x.example/v1", "model_name": "m"}
    assert api.post("/api/models/providers/", body, format="json").status_code == 403
    assert api.post(f"/api/models/providers/{provider.pk}/test/").status_code == 403
    assert api.delete(f"/api/models/providers/{provider.pk}/").status_code == 403


def test_annotators_see_nothing_of_generation(api_as, anna, provider):
    api = api_as(anna)
    for path in ("providers", "prompt-sets", "generation-jobs"):
        assert api.get(f"/api/models/{path}/").status_code == 403


def test_prompt_sets_typed_imported_and_reviewed(api_as, rosa):
    api = api_as(rosa)
    typed = api.post("/api/models/prompt-sets/", {"name": "T", "prompts": ["a b c", "d e f"]},
                     format="json")  # fmt: skip
    assert typed.status_code == 201 and typed.json()["counts"] == {"kept": 2}
    upload = SimpleUploadedFile("p.jsonl", b'{"prompt": "one"}\n{"prompt": ""}\n{"x": 1}\n')
    bad = api.post(
        "/api/models/prompt-sets/import/", {"name": "I", "file": upload}, format="multipart"
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["fields"]["file"] == ["line 2: prompt: empty",
                                                     "line 3: prompt: missing"]  # fmt: skip
    upload = SimpleUploadedFile("p.csv", b"prompt\nfirst\nsecond\n")
    good = api.post(
        "/api/models/prompt-sets/import/", {"name": "I", "file": upload}, format="multipart"
    )
    assert good.status_code == 201 and good.json()["source"] == "imported"
    listed = api.get(f"/api/models/prompt-sets/{good.json()['id']}/prompts/")
    first = listed.json()["results"][0]
    review = api.post(f"/api/models/prompt-sets/{good.json()['id']}/review/",
                      {"discard": [first["id"]]}, format="json")  # fmt: skip
    assert review.status_code == 200 and review.json() == {"kept": 0, "discarded": 1}


def test_a_prompt_set_is_generated_through_the_api(api_as, rosa, provider, fake_provider):
    fake_provider.responder = lambda body: "A first generated request\nA second one, longer"
    answer = api_as(rosa).post(
        "/api/models/prompt-sets/generate/",
        {"name": "G", "provider": provider.pk, "topics": ["chess"],
         "settings": {"seeds_per_topic": 2, "variations_per_seed": 0}},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 202 and answer.json()["status"] == "generating"
    bad = api_as(rosa).post("/api/models/prompt-sets/generate/",
                            {"name": "G", "provider": provider.pk, "topics": ["x"],
                             "template": "{topic} {secret}"}, format="json")  # fmt: skip
    assert bad.status_code == 400 and "template" in bad.json()["error"]["fields"]


def test_jobs_are_queued_read_retried_and_downloaded(api_as, rosa, provider, fake_provider):
    api = api_as(rosa)
    prompt_set = api.post("/api/models/prompt-sets/", {"name": "T", "prompts": ["x y", "z w"]},
                          format="json").json()  # fmt: skip
    body = {"prompt_set": prompt_set["id"], "provider": provider.pk, "k": 2,
            "sampling": {"temperature": 0.5, "max_tokens": 20, "seed": 3}, "concurrency": 4}  # fmt: skip
    created = api.post("/api/models/generation-jobs/", body, format="json")
    assert created.status_code == 201, created.json()
    job_id = created.json()["id"]
    assert created.json()["status"] == "queued" and created.json()["total"] == 4
    # Running twice (a redelivered task) does the work once.
    generation.generation_job_run(job_id=job_id, worker="t")
    generation.generation_job_run(job_id=job_id, worker="t")
    assert fake_provider.stats()["chat"] == 4
    assert api.get(f"/api/models/generation-jobs/{job_id}/").json()["succeeded"] == 4
    responses = api.get(f"/api/models/generation-jobs/{job_id}/responses/?ok=true")
    assert responses.json()["count"] == 4
    as_json = api.get(f"/api/models/generation-jobs/{job_id}/download/")
    assert as_json.status_code == 200 and as_json["Content-Type"] == "application/json"
    text = b"".join(as_json.streaming_content).decode()
    assert len(json.loads(text)["responses"]) == 4 and API_KEY not in text
    as_csv = api.get(f"/api/models/generation-jobs/{job_id}/download/?as=csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    assert len(b"".join(as_csv.streaming_content).decode().splitlines()) == 5
    assert api.get(f"/api/models/generation-jobs/{job_id}/download/?as=xml").status_code == 400
    assert api.post(f"/api/models/generation-jobs/{job_id}/cancel/").status_code == 409
    retried = api.post(f"/api/models/generation-jobs/{job_id}/retry/", {}, format="json")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    generation.generation_job_run(job_id=job_id, worker="t")
    assert fake_provider.stats()["chat"] == 4  # nothing was missing
    assert GenerationJob.objects.get(pk=job_id).runs == 2


def test_bad_job_input_is_a_400_naming_the_field(api_as, rosa, provider):
    api = api_as(rosa)
    prompt_set = api.post("/api/models/prompt-sets/", {"name": "T", "prompts": ["x"]},
                          format="json").json()  # fmt: skip
    base = {"prompt_set": prompt_set["id"], "provider": provider.pk}
    for changes, field in [
        ({"k": 0}, "k"),
        ({"sampling": {"top_p": 2}}, "sampling.top_p"),
        ({"provider": 10**9}, "provider"),
        ({"prompt_set": 10**9}, "prompt_set"),
        ({"project": 10**9}, "project"),
        ({"pairs": [[0]]}, "pairs"),
    ]:
        answer = api.post("/api/models/generation-jobs/", {**base, **changes}, format="json")
        assert answer.status_code == 400, changes
        fields = answer.json()["error"]["fields"]
        assert any(name.startswith(field) for name in fields), (changes, fields)
