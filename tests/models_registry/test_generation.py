"""Providers, prompt sets and generation jobs, run in this process against the fake
provider (real HTTP): faults end as responses or recorded errors, reruns duplicate
nothing, pairing makes items once, the token cap and cancel stop a job, and the API key
never shows up in clear text (database, audit rows, logs, downloads)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from annotation import services as annotation_services
from annotation.models import Item
from governance.models import AuditEvent
from models_registry import generation, prompts, providers
from models_registry.generation_models import (
    GeneratedResponse,
    Prompt,
    PromptSet,
    Provider,
)
from tests.models_registry.conftest import API_KEY

pytestmark = pytest.mark.django_db


def raw_rows(sql: str, params: tuple = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def audit_text() -> str:
    """Every audit row's stored text, read raw (no model code in between)."""
    return json.dumps(raw_rows("SELECT canonical, before, after FROM governance_auditevent"),
                      default=str)  # fmt: skip


@pytest.fixture
def prompt_set(rosa):
    return prompts.prompt_set_create(
        user=rosa, name="Questions", prompts=[f"Question number {i}?" for i in range(6)]
    )


@pytest.fixture
def project(rosa):
    return annotation_services.project_create(created_by=rosa, name="Generated pairs", overlap=1)


def run_job(job):
    return generation.generation_job_run(job_id=job.pk, worker="in-process")


# -- providers -----------------------------------------------------------------------------


def test_the_key_is_encrypted_at_rest_masked_and_kept_out_of_the_audit(provider):
    stored = raw_rows("SELECT api_key FROM models_registry_provider WHERE id = %s", (provider.pk,))
    assert API_KEY not in stored[0][0] and stored[0][0].startswith("gAAAA")  # a Fernet token
    assert Provider.objects.get(pk=provider.pk).api_key == API_KEY
    assert provider.api_key_masked.endswith(API_KEY[-4:])
    assert API_KEY[:-4] not in provider.api_key_masked
    providers.provider_update(provider=provider, api_key="sk-another-key-98765", name="fake-2")
    providers.provider_update(provider=provider, api_key="", timeout_seconds=2.0)  # keeps it
    assert Provider.objects.get(pk=provider.pk).api_key == "sk-another-key-98765"
    text = audit_text()
    assert API_KEY not in text and "sk-another-key-98765" not in text
    update = AuditEvent.objects.filter(action="provider.update").order_by("sequence").first()
    assert update.after["api_key_changed"] is True and update.after["has_api_key"] is True


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"base_url": "file:///etc/passwd"}, "base_url"),
        ({"base_url": "https://u:p@example.com/v1"}, "base_url"),
        ({"name": ""}, "name"),
        ({"model_name": "m\x00"}, "model_name"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_concurrency": 1000}, "max_concurrency"),
        ({"requests_per_minute": "many"}, "requests_per_minute"),
    ],
)
def test_bad_provider_settings_name_the_field(ada, fields, error):
    good = {"name": "p", "base_url": "https://example.com/v1", "model_name": "m"}
    with pytest.raises(ValidationError) as exc:
        providers.provider_create(user=ada, **{**good, **fields})
    assert error in exc.value.message_dict


def test_connection_test_reports_success_a_missing_model_and_a_refused_key(provider):
    result = providers.provider_connection_test(provider=provider)
    assert result["ok"] and "fake-model is served" in result["message"]
    providers.provider_update(provider=provider, model_name="other-model")
    result = providers.provider_connection_test(provider=Provider.objects.get(pk=provider.pk))
    assert not result["ok"] and "not among the models (fake-model)" in result["message"]
    providers.provider_update(provider=provider, api_key="sk-wrong-key-000000")
    result = providers.provider_connection_test(provider=Provider.objects.get(pk=provider.pk))
    assert not result["ok"] and "refused the API key" in result["message"]
    stored = Provider.objects.get(pk=provider.pk)
    assert stored.last_test_ok is False and stored.last_test_at is not None


def test_a_provider_in_use_is_not_deleted(provider, prompt_set, rosa):
    generation.generation_job_create(user=rosa, prompt_set=prompt_set, provider=provider)
    from rlhf_platform.errors import Conflict

    with pytest.raises(Conflict):
        providers.provider_delete(provider=provider)


# -- prompt sets ---------------------------------------------------------------------------


def test_typed_prompts_are_kept_once(rosa):
    prompt_set = prompts.prompt_set_create(
        user=rosa, name="t", prompts=["What is RLHF?", "what is  rlhf", "Define DPO."]
    )
    assert list(prompt_set.prompts.values_list("text", "status")) == [
        ("What is RLHF?", "kept"),
        ("Define DPO.", "kept"),
    ]


def test_import_csv_and_jsonl(rosa):
    csv_file = io.BytesIO(b'prompt,topic\n"Explain, briefly",science\nWhat is 2+2?,math\n')
    imported = prompts.prompt_set_import(user=rosa, name="c", file=csv_file, filename="p.csv")
    assert list(imported.prompts.values_list("text", "topic")) == [
        ("Explain, briefly", "science"),
        ("What is 2+2?", "math"),
    ]
    jsonl = io.BytesIO(b'{"prompt": "One"}\n\n{"prompt": "Two", "topic": "t"}\n')
    imported = prompts.prompt_set_import(user=rosa, name="j", file=jsonl, filename="p.jsonl")
    assert imported.prompts.count() == 2 and imported.source == "imported"


def test_import_rejects_the_file_naming_every_bad_row(rosa):
    jsonl = io.BytesIO(
        b'{"prompt": "fine"}\nnot json\n{"text": "x"}\n[1]\n{"prompt": ""}\n{"prompt": 3}\n'
    )
    with pytest.raises(ValidationError) as exc:
        prompts.prompt_set_import(user=rosa, name="bad", file=jsonl, filename="p.jsonl")
    assert exc.value.message_dict["file"] == [
        "line 2: not JSON (Expecting value)",
        "line 3: prompt: missing",
        "line 4: must be a JSON object with a 'prompt'",
        "line 5: prompt: empty",
        "line 6: prompt: must be text",
    ]
    assert not PromptSet.objects.filter(name="bad").exists()  # all-or-nothing
    with pytest.raises(ValidationError, match="'prompt' column"):
        prompts.prompt_set_import(user=rosa, name="c", file=io.BytesIO(b"q\nx\n"), filename="a.csv")
    with pytest.raises(ValidationError, match="not UTF-8"):
        prompts.prompt_set_import(user=rosa, name="c", file=io.BytesIO(b"\xff\xfe"), filename="a")


def test_near_duplicates_are_found_by_tfidf_cosine():
    texts = [
        "How do I bake sourdough bread at home?",
        "How do I bake sourdough bread at home ?!",  # same after normalisation
        "How can I bake sourdough bread at home?",
        "What is the capital of France?",
    ]
    verdicts = prompts.near_duplicates(texts, threshold=0.6)
    assert verdicts[0] is None and verdicts[3] is None
    assert verdicts[1][0] == 0 and verdicts[1][1] == pytest.approx(1.0)
    assert verdicts[2][0] == 0 and 0.6 <= verdicts[2][1] < 1.0
    earlier = prompts.near_duplicates(["What is the capital of France"], threshold=0.9,
                                      earlier=["what is the capital of france?"])  # fmt: skip
    assert earlier == [(0, pytest.approx(1.0))]


def seeds_and_variations(body):
    """A responder that answers prompt generation: numbered seeds per topic, and
    variations of which one nearly repeats its seed."""
    content = body["messages"][-1]["content"]
    if content.startswith("Rewrite"):
        seed = content.split("Request: ", 1)[1]
        return f"1. {seed} Please answer briefly.\n2. Could you tell me: {seed.lower()}"
    topic = content.split("about ", 1)[1].split(".")[0]
    return (
        "\n".join(f"{i + 1}. Tell me something specific about {topic}, item {i}" for i in range(3))
        + f"\n- Tell me something specific about {topic}, item 0"
    )


def test_generated_prompts_arrive_for_review_without_near_duplicates(ada, rosa, provider,
                                                                      fake_provider, settings):  # fmt: skip
    fake_provider.responder = seeds_and_variations
    fake_provider.faults.extend(["429", "malformed"])
    prompt_set = prompts.prompt_set_generate_request(
        user=rosa, name="Gen", provider=provider, topics=["volcanoes", "tax law"],
        settings={"seeds_per_topic": 4, "variations_per_seed": 2, "dedupe_threshold": 0.95},
    )  # fmt: skip
    assert prompt_set.status == "generating"
    prompt_set = prompts.prompt_set_generate(prompt_set_id=prompt_set.pk)
    assert prompt_set.status == "ready", prompt_set.message
    rows = list(prompt_set.prompts.all())
    seeds = [p for p in rows if p.origin == "seed"]
    variations = [p for p in rows if p.origin == "variation"]
    # 3 distinct seeds per topic (the 4th line repeats the 1st exactly: not stored).
    assert len(seeds) == 6 and {p.topic for p in seeds} == {"volcanoes", "tax law"}
    assert all(p.status == "pending" for p in seeds)
    # Each seed got 2 variations (they add words to it: below 0.95 similar), and seeds
    # differing in one word ("item 0", "item 1") are below 0.95 too.
    assert len(variations) == 12 and all(p.parent_id for p in variations)
    assert not [p for p in rows if p.status == "duplicate"]
    # Again with a looser threshold: the variations that only add words are duplicates.
    again = prompts.prompt_set_generate_request(
        user=rosa, name="Gen2", provider=provider, topics=["volcanoes"],
        settings={"seeds_per_topic": 3, "variations_per_seed": 2, "dedupe_threshold": 0.6},
    )  # fmt: skip
    again = prompts.prompt_set_generate(prompt_set_id=again.pk)
    dupes = again.prompts.filter(status="duplicate")
    assert dupes.exists() and all(d.duplicate_of_id and d.similarity >= 0.6 for d in dupes)
    assert "near-duplicates" in again.message


def test_review_keeps_and_discards(rosa, provider, fake_provider):
    fake_provider.responder = seeds_and_variations
    prompt_set = prompts.prompt_set_generate_request(
        user=rosa, name="Gen", provider=provider, topics=["owls"],
        settings={"seeds_per_topic": 3, "variations_per_seed": 0},
    )  # fmt: skip
    prompt_set = prompts.prompt_set_generate(prompt_set_id=prompt_set.pk)
    first, second, third = prompt_set.prompts.order_by("position")
    assert prompts.prompt_set_review(prompt_set=prompt_set, keep=[first.pk, second.pk],
                                     discard=[third.pk]) == {"kept": 2, "discarded": 1}  # fmt: skip
    assert [p.text for p in prompts.prompt_set_kept(prompt_set=prompt_set)] == [
        first.text, second.text]  # fmt: skip
    with pytest.raises(ValidationError):
        prompts.prompt_set_review(prompt_set=prompt_set, keep=[10**9])


def test_a_generation_that_fails_everywhere_fails_the_set(rosa, provider, fake_provider):
    fake_provider.api_key = "sk-rotated-elsewhere"
    prompt_set = prompts.prompt_set_generate_request(
        user=rosa, name="Gen", provider=provider, topics=["owls"]
    )
    prompt_set = prompts.prompt_set_generate(prompt_set_id=prompt_set.pk)
    assert prompt_set.status == "failed" and "HTTP 401" in prompt_set.message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"template": "About {topic.__class__}"}, "template"),
        ({"template": "No placeholder"}, "template"),
        ({"topics": []}, "topics"),
        ({"settings": {"seeds_per_topic": 0}}, "settings.seeds_per_topic"),
        ({"settings": {"bogus": 1}}, "settings.bogus"),
    ],
)
def test_bad_generation_requests_name_the_field(rosa, provider, kwargs, field):
    with pytest.raises(ValidationError) as exc:
        prompts.prompt_set_generate_request(
            **{"user": rosa, "name": "g", "provider": provider, "topics": ["a"], **kwargs}
        )
    assert field in exc.value.message_dict


# -- generation jobs -----------------------------------------------------------------------


def test_every_prompt_ends_with_a_response_or_an_error_and_a_retry_duplicates_nothing(
    rosa, provider, fake_provider, project
):
    texts = [f"Question number {i}?" for i in range(8)] + ["Broken one [[fail:500]]"]
    prompt_set = prompts.prompt_set_create(user=rosa, name="Q", prompts=texts)
    fake_provider.faults.extend(["429", "timeout", "malformed", "500", "incomplete", "503"])
    # More retries than queued faults: whichever requests the faults land on (concurrent
    # requests race for them), every ordinary sample ends with a response.
    job = generation.generation_job_create(
        user=rosa, prompt_set=prompt_set, provider=provider, k=3, concurrency=4, max_retries=6,
        sampling={"temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "seed": 11},
        project_id=project.pk,
    )  # fmt: skip
    job = run_job(job)
    assert job.status == "succeeded", job.message
    rows = GeneratedResponse.objects.filter(job=job)
    assert rows.count() == 27 == job.total  # 9 prompts × 3, one row each
    assert job.succeeded == 24 and job.failed == 3
    broken = rows.filter(ok=False)
    assert {r.prompt.text for r in broken} == {"Broken one [[fail:500]]"}
    assert all("HTTP 500" in r.error and r.attempts == 7 for r in broken)
    assert all(r.text and r.latency_ms > 0 and r.total_tokens > 0 for r in rows.filter(ok=True))
    # Sampling settings reached the provider, the seed per sample.
    sent = [b for b in fake_provider.requests if "Question number 0?" in str(b["messages"])]
    assert {b["seed"] for b in sent} == {11, 12, 13}  # (faults made some retries)
    assert {(b["temperature"], b["top_p"], b["max_tokens"]) for b in sent} == {(0.7, 0.9, 64)}
    # Pairs: 3 responses → 3 pairs per prompt, for the 8 prompts that answered.
    items = Item.objects.filter(project=project)
    assert items.count() == job.items_created == 24
    item = items.get(external_id=f"gen{job.pk}-p{rows.first().prompt_id}-s0-s1")
    assert item.metadata["generation_job"] == job.pk and len(item.responses) == 2

    # A retry asks only for the failed samples, and creates no response or item twice.
    chats_before = fake_provider.stats()["chat"]
    job = generation.generation_job_retry(job=job)
    job = run_job(job)
    assert fake_provider.stats()["chat"] - chats_before == 3 * 7  # 3 failed samples × 7 tries
    assert GeneratedResponse.objects.filter(job=job).count() == 27
    assert Item.objects.filter(project=project).count() == 24
    assert job.runs == 2 and job.items_created == 24


def test_chosen_pairings(rosa, provider, prompt_set, project):
    job = generation.generation_job_create(
        user=rosa, prompt_set=prompt_set, provider=provider, k=4, project_id=project.pk,
        pairing="chosen", pairs=[[0, 3], [3, 0], [1, 2]],
    )  # fmt: skip
    assert job.pairs == [[0, 3], [1, 2]]
    run_job(job)
    ids = set(Item.objects.filter(project=project).values_list("external_id", flat=True))
    assert len(ids) == 6 * 2 and all(i.endswith(("-s0-s3", "-s1-s2")) for i in ids)


def test_the_token_cap_stops_the_job_and_a_retry_with_a_higher_cap_finishes_it(
    rosa, provider, prompt_set
):
    job = generation.generation_job_create(
        user=rosa, prompt_set=prompt_set, provider=provider, k=2, concurrency=2,
        sampling={"max_tokens": 16}, token_cap=80,
    )  # fmt: skip
    job = run_job(job)
    assert job.status == "stopped" and "token cap" in job.message
    assert 0 < job.succeeded < 12 and job.tokens_used <= 80
    job = generation.generation_job_retry(job=job, token_cap=100_000)
    job = run_job(job)
    assert job.status == "succeeded" and job.succeeded == 12
    assert GeneratedResponse.objects.filter(job=job).count() == 12


def test_cancel_a_queued_job(rosa, provider, prompt_set, fake_provider):
    """(A running job's cancel is tested with a real worker: test_generation_worker.py.)"""
    job = generation.generation_job_create(user=rosa, prompt_set=prompt_set, provider=provider)
    job = generation.generation_job_cancel(job=job)
    assert job.status == "cancelled"
    assert run_job(job).status == "cancelled"  # a late delivery does nothing
    assert fake_provider.stats()["chat"] == 0


def test_bad_job_settings_name_the_field(rosa, provider, prompt_set, project, anna):
    cases = [
        ({"k": 11}, "k"),
        ({"sampling": {"temperature": 3}}, "sampling.temperature"),
        ({"sampling": {"top_k": 3}}, "sampling.top_k"),
        ({"project_id": project.pk, "k": 1}, "k"),
        ({"project_id": project.pk, "pairing": "chosen", "pairs": [[0, 0]]}, "pairs[0]"),
        ({"pairing": "all"}, "project"),
        ({"token_cap": 0}, "token_cap"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as exc:
            generation.generation_job_create(
                user=rosa, prompt_set=prompt_set, provider=provider, **kwargs
            )
        assert field in exc.value.message_dict, (kwargs, exc.value.message_dict)
    # A project the user may not change is "no such project".
    other = annotation_services.project_create(created_by=anna, name="Not Rosa's")
    with pytest.raises(ValidationError) as exc:
        generation.generation_job_create(user=rosa, prompt_set=prompt_set, provider=provider,
                                         project_id=other.pk)  # fmt: skip
    assert "project" in exc.value.message_dict


def test_the_key_never_reaches_logs_downloads_or_the_audit(rosa, provider, prompt_set,
                                                            fake_provider, caplog):  # fmt: skip
    # Everything, down to httpx's and httpcore's DEBUG lines (which settings quiet).
    for name in ("", "httpx", "httpcore", "models_registry"):
        caplog.set_level(logging.DEBUG, logger=name)
    fake_provider.faults.extend(["500", "429"])
    job = generation.generation_job_create(user=rosa, prompt_set=prompt_set, provider=provider)
    run_job(job)
    providers.provider_connection_test(provider=provider)
    downloads = "".join(generation.generation_results_json(job=job)) + "".join(
        generation.generation_results_csv(job=job)
    )
    assert {"httpx", "httpcore.http11"} <= {r.name for r in caplog.records}
    assert "HTTP 500" in caplog.text or "generation job" in caplog.text or "POST" in caplog.text
    for text in (caplog.text, downloads, audit_text()):
        assert API_KEY not in text
    # The provider did get it.
    assert fake_provider.authorizations[-1] == f"Bearer {API_KEY}"


def test_downloads_hold_every_response(rosa, provider, prompt_set):
    job = run_job(generation.generation_job_create(user=rosa, prompt_set=prompt_set,
                                                   provider=provider, k=2))  # fmt: skip
    document = json.loads("".join(generation.generation_results_json(job=job)))
    assert document["job"]["provider"] == {"name": "fake", "base_url": provider.base_url,
                                           "model": "fake-model"}  # fmt: skip
    assert len(document["responses"]) == 12
    assert {r["sample_index"] for r in document["responses"]} == {0, 1}
    lines = "".join(generation.generation_results_csv(job=job)).splitlines()
    assert lines[0].startswith('"prompt_id","topic","prompt","sample_index","ok","text"')
    assert len(lines) == 13


def test_a_formula_in_a_prompt_is_inert_in_the_csv(rosa, provider):
    prompt_set = prompts.prompt_set_create(user=rosa, name="f", prompts=['=HYPERLINK("x")'])
    job = run_job(generation.generation_job_create(user=rosa, prompt_set=prompt_set,
                                                   provider=provider, k=1))  # fmt: skip
    csv_text = "".join(generation.generation_results_csv(job=job))
    assert '"\'=HYPERLINK(""x"")"' in csv_text


def test_a_set_without_kept_prompts_cannot_be_generated_for(rosa, provider, prompt_set):
    prompt_set.prompts.update(status=Prompt.Status.DISCARDED)
    with pytest.raises(ValidationError, match="no kept prompt"):
        generation.generation_job_create(user=rosa, prompt_set=prompt_set, provider=provider)
