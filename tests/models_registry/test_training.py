"""Training's pure parts: pairs from snapshot rows, the held-out split, the curriculum."""

from __future__ import annotations

import pytest

from models_registry import training


def test_rankings_expand_to_every_ordered_pair_and_ties_are_left_out():
    rows = [
        {"prompt": "p", "responses": [{"text": "a"}, {"text": "b"}, {"text": "c"}],
         "ranking": [2, 0, 1], "confidence": 0.9},
        {"prompt": "q", "chosen": "x", "rejected": "y", "margin": 0.0, "confidence": 0.5},  # tie
        {"prompt": "r", "chosen": "x", "rejected": "y", "margin": 0.7, "confidence": 0.7},
    ]  # fmt: skip
    pairs = training.preference_pairs(rows)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [
        ("c", "a"),
        ("c", "b"),
        ("a", "b"),
        ("x", "y"),
    ]
    assert pairs[-1]["prompt"] == "r"


def pairs(n: int) -> list[dict]:
    return [{"prompt": f"p{i}", "chosen": "a", "rejected": "b",
             "confidence": [0.5, 0.7, 0.9, 1.0][i % 4], "ref": str(i)} for i in range(n)]  # fmt: skip


def test_the_held_out_split_is_seeded_and_stratified_by_confidence():
    train, held, stratified = training.pairs_split(pairs(80), eval_fraction=0.25, seed=1)
    _again, held_again, _ = training.pairs_split(pairs(80), eval_fraction=0.25, seed=1)
    _other, held_other, _ = training.pairs_split(pairs(80), eval_fraction=0.25, seed=2)
    assert stratified and len(held) == 20 and len(train) == 60
    assert held == held_again and held != held_other
    bands = sorted(p["confidence"] for p in held)
    assert bands.count(0.5) == bands.count(0.7) == bands.count(0.9) == bands.count(1.0) == 5


def test_too_few_pairs_are_refused():
    with pytest.raises(ValueError, match="too few"):
        training.pairs_split(pairs(3), eval_fraction=0.2, seed=0)


def test_the_curriculum_goes_from_easy_to_hard():
    ordered = training.curriculum_order(pairs(8))
    assert [p["confidence"] for p in ordered] == [1.0, 1.0, 0.9, 0.9, 0.7, 0.7, 0.5, 0.5]
