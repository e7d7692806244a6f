"""The generation pages: admins add a provider and test it, pages show the key masked and
never in clear; researchers type prompts, review, queue a job and read its page."""

from __future__ import annotations

import pytest

from models_registry import generation, prompts
from models_registry.generation_models import GenerationJob, PromptSet, Provider
from tests.models_registry.conftest import API_KEY

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_provider_and_tests_it_and_the_key_stays_masked(client, ada,
                                                                       fake_provider):  # fmt: skip
    client.force_login(ada)
    form = {"name": "fake", "base_url": fake_provider.base_url, "model_name": "fake-model",
            "api_key": API_KEY, "max_concurrency": 8, "timeout_seconds": 2}  # fmt: skip
    answer = client.post("/generation/providers/", form)
    provider = Provider.objects.get(name="fake")
    assert answer.status_code == 302 and answer["Location"].endswith(f"/{provider.pk}/")
    tested = client.post(f"/generation/providers/{provider.pk}/test/", follow=True)
    page = tested.content.decode()
    assert "fake-model is served" in page and "••••••••" + API_KEY[-4:] in page
    for url in ("/generation/providers/", f"/generation/providers/{provider.pk}/"):
        assert API_KEY not in client.get(url).content.decode()
    bad = client.post("/generation/providers/", {**form, "name": "b", "base_url": "ftp://x"})
    assert bad.status_code == 400 and "http:// or https://" in bad.content.decode()


def test_researchers_read_providers_but_may_not_add_or_test_them(client, rosa, provider):
    client.force_login(rosa)
    assert client.get("/generation/providers/").status_code == 200
    assert client.post("/generation/providers/", {"name": "x"}).status_code == 403
    assert client.post(f"/generation/providers/{provider.pk}/test/").status_code == 403


def test_a_researcher_types_prompts_reviews_and_runs_a_job(client, rosa, provider):
    client.force_login(rosa)
    answer = client.post("/generation/prompt-sets/",
                         {"mode": "typed", "typed-name": "Mine", "typed-prompts": "one\ntwo\n"})  # fmt: skip
    prompt_set = PromptSet.objects.get(name="Mine")
    assert answer.status_code == 302 and prompt_set.prompts.count() == 2
    first = prompt_set.prompts.first()
    client.post(f"/generation/prompt-sets/{prompt_set.pk}/", {f"prompt-{first.pk}": "discard"})
    assert prompts.prompt_set_kept(prompt_set=prompt_set).count() == 1
    answer = client.post("/generation/", {
        "prompt_set": prompt_set.pk, "provider": provider.pk, "k": 2, "temperature": 1,
        "top_p": 1, "max_tokens": 32, "concurrency": 2, "pairing": "all",
    })  # fmt: skip
    job = GenerationJob.objects.get()
    assert answer.status_code == 302 and job.k == 2 and job.pairing == "none"
    generation.generation_job_run(job_id=job.pk, worker="t")
    page = client.get(f"/generation/jobs/{job.pk}/").content.decode()
    assert "Succeeded" in page and "Answer " in page
    progress = client.get(f"/generation/jobs/{job.pk}/progress.json").json()
    assert progress["succeeded"] == 2 and progress["finished"] is True
    csv_answer = client.get(f"/generation/jobs/{job.pk}/download/?as=csv")
    assert b"".join(csv_answer.streaming_content).decode().count("\n") == 3


def test_bad_prompt_set_input_is_a_400(client, rosa):
    client.force_login(rosa)
    assert client.post("/generation/prompt-sets/", {"mode": "nope"}).status_code == 400
    answer = client.post("/generation/prompt-sets/",
                         {"mode": "typed", "typed-name": "", "typed-prompts": ""})  # fmt: skip
    assert answer.status_code == 400


def test_annotators_get_no_generation_pages(client, anna):
    client.force_login(anna)
    for url in ("/generation/", "/generation/providers/", "/generation/prompt-sets/"):
        assert client.get(url).status_code == 403
