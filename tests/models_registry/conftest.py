"""Models fixtures: a labelled project run by rosa (researcher) with a TRL snapshot of real
demo preference pairs, and tiny config-built base models (seconds to train)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation import services as annotation_services
from annotation.consensus import consensus_recompute
from annotation.exports import dataset_export
from models_registry import services

ROOT = Path(__file__).resolve().parents[2]
DEMO_FILE = ROOT / "rlhf_platform" / "demo_data" / "demo-preferences.jsonl"

# Fast settings for tiny models: a high learning rate, short sequences.
TINY_CONFIG = {
    "epochs": 2, "learning_rate": 3e-3, "batch_size": 8, "max_length": 64, "logging_steps": 1,
    "eval_fraction": 0.25,
}  # fmt: skip


def demo_rows(n: int, *, offset: int = 0) -> list[dict]:
    """The first ``n`` demo preference pairs (polite vs. rude), as TRL rows."""
    with DEMO_FILE.open() as handle:
        rows = [json.loads(line) for line in handle]
    return rows[offset : offset + n]


def labelled_snapshot(*, researcher, annotator, rows: list[dict], name: str = "Models"):
    """A project whose annotator chose the source's preferred response on every item, and
    its TRL snapshot."""
    project = annotation_services.project_create(created_by=researcher, name=name, overlap=1)
    annotation_services.project_member_add(project=project, user=annotator, role="annotator")
    annotation_services.items_create_bulk(
        project=project,
        rows=[
            {
                "external_id": f"p{i}",
                "prompt": r["prompt"],
                "responses": [r["chosen"], r["rejected"]],
            }
            for i, r in enumerate(rows)
        ],
    )
    items_label(project=project, annotator=annotator, choice="A")
    return dataset_export(project=project, fmt="trl", user=researcher)


def items_label(*, project, annotator, choice: str) -> None:
    """The annotator answers ``choice`` on every item still assigned to them; the
    project's consensus is recomputed."""
    while assignment := annotation_services.assignment_next(project=project, annotator=annotator):
        annotation_services.annotation_submit(
            project=project, item_id=assignment.item_id, annotator=annotator,
            answer={"preference": {"choice": choice}}, idempotency_key=f"k{assignment.item_id}",
        )  # fmt: skip
    consensus_recompute(project=project)


@pytest.fixture
def snapshot(rosa, anna):
    return labelled_snapshot(researcher=rosa, annotator=anna, rows=demo_rows(40))


@pytest.fixture
def tiny_encoder(ada):
    texts = [t for r in demo_rows(200) for t in (r["prompt"], r["chosen"], r["rejected"])]
    return services.base_model_build_tiny(
        name="tiny-bert", architecture="encoder", texts=texts, user=ada, vocab_size=800
    )


@pytest.fixture
def tiny_causal_lm(ada):
    texts = [t for r in demo_rows(200) for t in (r["prompt"], r["chosen"], r["rejected"])]
    return services.base_model_build_tiny(
        name="tiny-gpt2", architecture="causal_lm", texts=texts, user=ada, vocab_size=800
    )


def train_now(*, user, base_model, snapshot, config=None, name: str = "tiny-rm", kind="reward"):
    """Queue a job and run it in this process (what the worker does)."""
    job = services.training_job_create(
        user=user, kind=kind, registered_model_name=name, base_model=base_model,
        snapshot_id=snapshot.pk, config={**TINY_CONFIG, **(config or {})},
    )  # fmt: skip
    return services.training_job_run(job_id=job.pk, worker="in-process")


# -- Generation: a fake OpenAI-compatible provider (tests/fake_provider.py) -----------------

API_KEY = "sk-attune-test-0123456789abcdef"


@pytest.fixture
def fake_provider():
    """A running fake provider that checks the API key (see tests/fake_provider.py)."""
    from tests.fake_provider import FakeProvider

    with FakeProvider(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def provider(ada, fake_provider, settings):
    """The fake provider registered by Ada, with a short timeout (timeout faults) and no
    backoff to wait through."""
    from models_registry.providers import provider_create

    settings.GENERATION_BACKOFF_BASE = 0.001
    return provider_create(
        user=ada, name="fake", base_url=fake_provider.base_url, model_name="fake-model",
        api_key=API_KEY, timeout_seconds=0.5,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _loop_scorers_forgotten():
    """Scorers registered for a test's versions never outlive it (ids are reused)."""
    from models_registry import loop

    yield
    loop._scorers.clear()
