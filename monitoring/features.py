"""What drift reports and error zones compare besides the model's outputs: the outcomes'
item texts (read through ``annotation.selectors``, refs through the registry's
selectors), their text statistics, MiniLM embedding components and the annotators'
agreement on each item.

Language is not a feature: the installable detectors are either large
(``lingua-language-detector``, 96 MB) or unmaintained and non-deterministic unless
seeded (``langdetect``, last release 2021), and a per-row detector would dominate a
1M-row check; the non-ASCII share below catches the common case (text in another
script) at no cost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

from annotation import selectors as annotation_selectors
from models_registry import selectors as registry_selectors
from models_registry.models import ModelVersion

from . import selectors
from .models import Outcome

#: Text statistics (numerical drift columns) computed from the item texts.
TEXT_NUMERICAL = [
    "prompt_chars", "prompt_words", "response_a_chars", "response_b_chars", "response_words",
    "non_ascii_share", "digit_share",
]  # fmt: skip
#: How many principal components of the MiniLM embeddings drift reports compare.
EMBEDDING_COMPONENTS = 3
TEXT_COLUMNS = ["prompt", "response_a", "response_b"]
_CHUNK = 2000  # ids per IN (…) query: SQLite's variable limit


def outcome_texts(
    *,
    version: ModelVersion,
    start: datetime,
    end: datetime,
    limit: int | None = None,
) -> pd.DataFrame:
    """A version's outcomes predicted in [start, end) (the ``limit`` most recent, if
    given) with their item ref and texts; texts are None where no item is named."""
    queryset = Outcome.objects.filter(
        version=version, predicted_at__gte=start, predicted_at__lt=end
    )
    if limit is not None:
        queryset = queryset.order_by("-predicted_at", "-id")[:limit]
    columns = ["prediction_id", "p_a", "margin", "label", "predicted_at"]
    frame = pd.DataFrame(list(queryset.values_list(*columns)), columns=columns)
    ids = frame["prediction_id"].tolist()
    refs: dict[int, str] = {}
    for i in range(0, len(ids), _CHUNK):
        refs.update(
            registry_selectors.prediction_list(version=version)
            .filter(pk__in=ids[i : i + _CHUNK])
            .values_list("pk", "item_ref")
        )
    frame["item_ref"] = frame["prediction_id"].map(refs).fillna("")
    texts = annotation_selectors.item_texts_by_ref(refs=sorted({r for r in frame["item_ref"] if r}))
    for column in TEXT_COLUMNS:
        frame[column] = frame["item_ref"].map(lambda ref, c=column: texts.get(ref, {}).get(c))
    return frame


def text_statistics(frame: pd.DataFrame) -> pd.DataFrame:
    """Lengths, word counts and character shares of each row's texts."""
    prompt, a, b = (frame[c].fillna("").astype(str) for c in TEXT_COLUMNS)
    everything = prompt + " " + a + " " + b
    size = everything.str.len().clip(lower=1)
    return pd.DataFrame(
        {
            "prompt_chars": prompt.str.len().astype(float),
            "prompt_words": prompt.str.count(r"\S+").astype(float),
            "response_a_chars": a.str.len().astype(float),
            "response_b_chars": b.str.len().astype(float),
            "response_words": (a.str.count(r"\S+") + b.str.count(r"\S+")) / 2.0,
            "non_ascii_share": everything.str.count(r"[^\x00-\x7f]") / size,
            "digit_share": everything.str.count(r"[0-9]") / size,
        },
        index=frame.index,
    )


def item_text(frame: pd.DataFrame) -> list[str]:
    """One text per row for clustering and embedding: prompt and both responses."""
    parts = [frame[c].fillna("").astype(str) for c in TEXT_COLUMNS]
    return (parts[0] + "\n" + parts[1] + "\n" + parts[2]).tolist()


def embedding_components(
    reference: pd.DataFrame, current: pd.DataFrame, *, embed=None
) -> tuple[np.ndarray, np.ndarray]:
    """The first principal components of both frames' text embeddings, the components
    fitted on the reference (so the current window is seen in the reference's axes)."""
    from sklearn.decomposition import PCA

    from .embeddings import texts_embed

    embed = embed or texts_embed
    ref = embed(item_text(reference))
    cur = embed(item_text(current))
    pca = PCA(n_components=min(EMBEDDING_COMPONENTS, ref.shape[1], len(ref)), random_state=0)
    pca.fit(ref)
    return pca.transform(ref), pca.transform(cur)


def drift_frames(
    *,
    version: ModelVersion,
    reference: tuple[datetime, datetime],
    current: tuple[datetime, datetime],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[str]], dict[str, Any]]:
    """The two windows' drift columns: the model's outputs (P(a ≻ b), margin, confidence,
    label, error), and — where every outcome of both windows names an item — text
    statistics, the annotators' agreement and MiniLM embedding components.  Returns
    (reference, current, {"numerical", "categorical"}, notes on what was left out)."""
    raw = [outcome_texts(version=version, start=w[0], end=w[1]) for w in (reference, current)]
    frames = [selectors.outcome_columns(f) for f in raw]
    numerical, categorical = list(selectors.DRIFT_NUMERICAL), list(selectors.DRIFT_CATEGORICAL)
    notes: dict[str, Any] = {"language": "not compared (see monitoring/features.py)"}
    if any(f.empty for f in raw) or any(f["prompt"].isna().any() for f in raw):
        notes["texts"] = "left out: some outcomes name no item"
        return frames[0], frames[1], {"numerical": numerical, "categorical": categorical}, notes
    for frame, source in zip(frames, raw, strict=True):
        stats = text_statistics(source)
        for column in TEXT_NUMERICAL:
            frame[column] = stats[column].to_numpy()
    numerical += TEXT_NUMERICAL
    agreements = []
    for source in raw:
        consensus = annotation_selectors.consensus_by_item_ref(refs=source["item_ref"].tolist())
        agreement = {ref: row.get("agreement") for ref, row in consensus.items()}
        agreements.append(source["item_ref"].map(agreement).astype(float))
    if all(a.notna().all() for a in agreements):
        for frame, values in zip(frames, agreements, strict=True):
            frame["agreement"] = values.to_numpy()
        numerical.append("agreement")
    else:
        notes["agreement"] = "left out: some items have no measured agreement"
    rows = len(raw[0]) + len(raw[1])
    if rows > settings.MONITORING_EMBED_MAX_ROWS:
        notes["embedding"] = f"left out: {rows} rows > MONITORING_EMBED_MAX_ROWS"
    else:
        try:
            ref_pcs, cur_pcs = embedding_components(raw[0], raw[1])
        except Exception as exc:  # the report goes on without embeddings
            notes["embedding"] = f"left out: {exc}"[:300]
        else:
            for k in range(ref_pcs.shape[1]):
                frames[0][f"embedding_pc{k + 1}"] = ref_pcs[:, k]
                frames[1][f"embedding_pc{k + 1}"] = cur_pcs[:, k]
                numerical.append(f"embedding_pc{k + 1}")
    return frames[0], frames[1], {"numerical": numerical, "categorical": categorical}, notes
