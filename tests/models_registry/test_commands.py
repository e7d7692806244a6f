"""Commands: ``predict`` scores JSONL files; ``base_model_build_tiny`` builds from texts."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from models_registry.models import BaseModel, Prediction
from tests.models_registry.conftest import DEMO_FILE, train_now

pytestmark = pytest.mark.django_db


def test_predict_scores_a_jsonl_file_and_stores_every_prediction(
    tmp_path, rosa, snapshot, tiny_encoder
):
    version = train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot).version
    source = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": f"q{i}", "response_a": "yes", "response_b": "no", "item_ref": f"i{i}"}
        for i in range(3)
    ]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = io.StringIO()
    call_command("predict", "tiny-rm@1", str(source), stdout=out, stderr=io.StringIO())
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["item_ref"] for r in results] == ["i0", "i1", "i2"]
    assert all(0 <= r["p_a"] <= 1 for r in results)
    assert Prediction.objects.filter(version=version, source="command").count() == 3


def test_predict_names_the_bad_line(tmp_path, rosa, snapshot, tiny_encoder):
    train_now(user=rosa, base_model=tiny_encoder, snapshot=snapshot)
    source = tmp_path / "bad.jsonl"
    source.write_text('{"prompt": "p", "response_a": "a", "response_b": "b"}\n{"prompt": 1}\n')
    with pytest.raises(CommandError, match="line 2: prompt must be a string"):
        call_command(
            "predict", "tiny-rm@1", str(source), stdout=io.StringIO(), stderr=io.StringIO()
        )
    with pytest.raises(CommandError, match="no such version"):
        call_command("predict", "nope@1", str(source), stdout=io.StringIO())


def test_base_model_build_tiny_from_a_file_registers_a_causal_lm():
    call_command("base_model_build_tiny", "tiny-lm", "--architecture", "causal_lm",
                 "--file", str(DEMO_FILE), "--vocab-size", "500", stdout=io.StringIO())  # fmt: skip
    base = BaseModel.objects.get(name="tiny-lm")
    assert base.architecture == "causal_lm" and base.source == "media"
    assert base.config["model_type"] == "gpt2" and base.config["vocab_size"] <= 500
