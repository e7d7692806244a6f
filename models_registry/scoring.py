"""Vote prediction: P(a ≻ b) = calibration(reward(prompt, a) − reward(prompt, b)).

Versions are loaded once per process (artifact hashes checked on load) and kept in a
bounded least-recently-used cache (``settings.MODELS_LOADED_MAX``); pairs are scored in
batches with the same encoding as training (left truncation to the version's
``max_length``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

from .artifacts import artifact_checkout
from .calibration import calibrated_probability
from .models import Kind, ModelVersion


@dataclass
class LoadedVersion:
    """A reward model in memory, with what scoring needs to know about it."""

    version_id: int
    sha256: str
    model: Any
    tokenizer: Any
    max_length: int
    calibration: dict


_cache: OrderedDict[int, LoadedVersion] = OrderedDict()
_lock = threading.Lock()


def _load(version: ModelVersion) -> LoadedVersion:
    import torch
    from transformers import AutoModelForSequenceClassification

    from .training import tokenizer_load

    with artifact_checkout(prefix=version.artifact_path, files=version.artifact_files) as path:
        tokenizer = tokenizer_load(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    model.eval()
    return LoadedVersion(
        version_id=version.pk,
        sha256=version.artifact_sha256,
        model=model,
        tokenizer=tokenizer,
        max_length=int(version.training_config.get("max_length", 256)),
        calibration=version.calibration,
    )


def version_loaded(*, version: ModelVersion) -> LoadedVersion:
    """The version in memory: from the cache, or loaded (and checked) now."""
    if version.kind != Kind.REWARD:
        raise ValueError(f"version: {version.ref} is a {version.kind} model, not a reward model")
    with _lock:
        loaded = _cache.get(version.pk)
        if loaded is not None:
            _cache.move_to_end(version.pk)
            return loaded
        # Loading under the lock: two requests for a cold version load it once.
        loaded = _load(version)
        _cache[version.pk] = loaded
        while len(_cache) > settings.MODELS_LOADED_MAX:
            _cache.popitem(last=False)
        return loaded


def cache_clear() -> None:
    """Forget every loaded version (tests; a worker that must reload)."""
    with _lock:
        _cache.clear()


def pairs_score(*, version: ModelVersion, pairs: list[dict[str, str]]) -> list[dict[str, float]]:
    """Rewards of both responses, their margin and the calibrated P(a ≻ b), per pair."""
    from .training import encode, rewards_compute

    loaded = version_loaded(version=version)
    prompts = [p["prompt"] for p in pairs]
    ids = encode(
        loaded.tokenizer,
        prompts + prompts,
        [p["response_a"] for p in pairs] + [p["response_b"] for p in pairs],
        loaded.max_length,
    )
    rewards = rewards_compute(
        loaded.model, loaded.tokenizer, ids, batch_size=settings.MODELS_PREDICT_BATCH
    )
    reward_a, reward_b = rewards[: len(pairs)], rewards[len(pairs) :]
    margins = reward_a - reward_b
    probs = calibrated_probability(margins, loaded.calibration)
    return [
        {
            "reward_a": float(a),
            "reward_b": float(b),
            "margin": float(m),
            "p_a": float(np.clip(p, 0.0, 1.0)),
        }
        for a, b, m, p in zip(reward_a, reward_b, margins, probs, strict=True)
    ]
