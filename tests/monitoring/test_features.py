"""Drift over what the items say: text statistics, annotator agreement and embedding
components join the model's outputs in drift reports, and the fast path still gives
Evidently's verdicts on them."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from annotation import services as annotation_services
from monitoring import drift, features, services
from monitoring.models import DriftReport, Outcome

from .conftest import T0, prediction_make

pytestmark = pytest.mark.django_db

DAY2 = T0 + timedelta(days=1)


def test_text_statistics():
    frame = pd.DataFrame(
        {"prompt": ["two words", None], "response_a": ["abc 123", "é"], "response_b": ["", "x y z"]}
    )
    stats = features.text_statistics(frame)
    assert stats["prompt_chars"].tolist() == [9.0, 0.0]
    assert stats["prompt_words"].tolist() == [2.0, 0.0]
    assert stats["response_words"].tolist() == [1.0, 2.0]
    assert stats["digit_share"].iloc[0] == pytest.approx(3 / len("two words abc 123 "))
    assert stats["non_ascii_share"].iloc[1] == pytest.approx(1 / len(" é x y z"))


@pytest.fixture
def wordy(version, tiny_encoder, settings):
    """Outcomes naming items: short answers on day one, long ones with digits on day two
    (the model's outputs the same on both days)."""
    from models_registry.selectors import base_model_directory

    settings.MONITORING_EMBEDDING_MODEL = str(base_model_directory(base=tiny_encoder))
    project = version.snapshot.project
    rng = np.random.default_rng(5)
    rows, outcomes = [], []
    for day in (0, 1):
        for i in range(60):
            words = rng.integers(3, 8) * (6 if day else 1)
            answer = " ".join(["sure"] * int(words)) + (f" {i * 37}" if day else "")
            rows.append({"external_id": f"w{day}-{i}", "prompt": f"question {i}",
                         "responses": [answer, "no"]})  # fmt: skip
    annotation_services.items_create_bulk(project=project, rows=rows)
    for row in rows:
        day = int(row["external_id"][1])
        at = DAY2 if day else T0
        p = float(rng.uniform(0.55, 0.95))
        prediction = prediction_make(
            version=version, p_a=p, at=at, item_ref=f"{project.pk}:{row['external_id']}"
        )
        outcomes.append(Outcome(prediction=prediction, version=version, project=project, p_a=p,
                                margin=p - 0.5, label=1, predicted_at=at))  # fmt: skip
    Outcome.objects.bulk_create(outcomes)
    return version


def test_drift_frames_carry_text_and_embedding_columns(wordy):
    reference, current, columns, notes = features.drift_frames(
        version=wordy, reference=(T0, DAY2), current=(DAY2, DAY2 + timedelta(days=1))
    )
    assert set(features.TEXT_NUMERICAL) <= set(columns["numerical"])
    assert {"embedding_pc1", "embedding_pc2", "embedding_pc3"} <= set(columns["numerical"])
    assert "agreement" not in columns["numerical"] and "agreement" in notes  # no consensus
    assert "language" in notes
    assert len(reference) == len(current) == 60
    fast = drift.drift_fast(reference, current, **columns)
    evidently, _, _ = drift.drift_evidently(reference, current, **columns)
    for column, verdict in fast["columns"].items():
        assert verdict["drifted"] == evidently["columns"][column]["drifted"], column
    assert fast["columns"]["response_a_chars"]["drifted"]
    assert fast["columns"]["digit_share"]["drifted"]
    assert not fast["columns"]["prompt_words"]["drifted"]
    assert not fast["columns"]["p_a"]["drifted"]


def test_a_drift_report_compares_the_text_features(wordy):
    report = services.drift_report_request(
        version=wordy, method="fast", reference=(T0, DAY2), current=(DAY2, DAY2 + timedelta(1))
    )
    report = services.drift_report_run(report_id=report.pk)
    assert report.status == DriftReport.Status.DONE, report.error
    assert report.result["columns"]["response_words"]["drifted"]
    assert "embedding" not in report.result["notes"]  # the embeddings were compared


def test_outcomes_without_items_leave_the_text_columns_out(version):
    from .conftest import outcomes_make

    outcomes_make(version=version, probs=[0.7] * 5, labels=[1] * 5, at=T0)
    outcomes_make(version=version, probs=[0.7] * 5, labels=[1] * 5, at=DAY2)
    _, _, columns, notes = features.drift_frames(
        version=version, reference=(T0, DAY2), current=(DAY2, DAY2 + timedelta(days=1))
    )
    assert columns["numerical"] == ["p_a", "margin", "confidence"] and "texts" in notes
