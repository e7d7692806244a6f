"""Per-annotator quality statistics (gold accuracy, agreement with consensus, lead time,
label distribution) and the spam heuristics built on them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .arrays import FloatArray, IntArray, as_index, check_same_length, check_sizes

__all__ = ["AnnotatorStats", "annotator_stats"]


@dataclass
class AnnotatorStats:
    """Quality statistics for one annotator (see :func:`annotator_stats`).

    Attributes:
        annotator: dense annotator index.
        n_annotations: number of annotations.
        n_gold: number of annotations on gold items.
        gold_accuracy: share of gold items answered correctly, ``None`` if no gold item seen.
        agreement_with_consensus: share of annotations equal to the item's consensus label
            (over items that have a consensus), ``None`` if there are none. Note the
            annotator's own vote is part of the consensus.
        median_lead_time_ms: median time-to-answer, ``None`` if no lead times are known.
        top_label: most frequent label (lowest index on ties), ``None`` if no annotations.
        top_label_share: share of annotations with ``top_label``, ``None`` if no annotations.
        label_entropy: Shannon entropy (bits) of the annotator's label distribution, ``None``
            if no annotations.
        spammer_flag: ``True`` if any spam heuristic fired.
        spammer_reasons: human-readable reasons, subset of ``"constant answers"``,
            ``"implausibly fast"`` and ``"low gold accuracy"``.
    """

    annotator: int
    n_annotations: int
    n_gold: int
    gold_accuracy: float | None
    agreement_with_consensus: float | None
    median_lead_time_ms: float | None
    top_label: int | None
    top_label_share: float | None
    label_entropy: float | None
    spammer_flag: bool = False
    spammer_reasons: list[str] = field(default_factory=list)


def _group_medians(groups: IntArray, values: FloatArray, n_groups: int) -> FloatArray:
    """Median of ``values`` per group (``nan`` for empty groups), without a Python loop.

    Sorts by (group, value); each group's median then sits at fixed offsets from the group's
    start, found with ``np.searchsorted``.
    """
    order = np.lexsort((values, groups))
    sorted_groups, sorted_values = groups[order], values[order]
    starts = np.searchsorted(sorted_groups, np.arange(n_groups), side="left")
    sizes = np.searchsorted(sorted_groups, np.arange(n_groups), side="right") - starts
    medians = np.full(n_groups, np.nan)
    ok = sizes > 0
    lo = starts[ok] + (sizes[ok] - 1) // 2
    hi = starts[ok] + sizes[ok] // 2
    medians[ok] = (sorted_values[lo] + sorted_values[hi]) / 2.0
    return medians


def annotator_stats(
    *,
    item_idx: npt.ArrayLike,
    annotator_idx: npt.ArrayLike,
    label: npt.ArrayLike,
    n_items: int,
    n_annotators: int,
    n_classes: int,
    consensus_labels: npt.ArrayLike,
    gold_labels: npt.ArrayLike | None = None,
    lead_time_ms: npt.ArrayLike | None = None,
    min_annotations: int = 10,
    constant_share: float = 0.95,
    max_population_share: float = 0.8,
    fast_threshold_ms: float = 1500.0,
    min_gold: int = 5,
    min_gold_accuracy: float = 0.5,
) -> list[AnnotatorStats]:
    """Per-annotator quality statistics and spam heuristics.

    Spam heuristics (each appends a reason to ``spammer_reasons``):

    ``"constant answers"``
        The annotator has at least ``min_annotations`` (default 10) annotations, gives one
        label at least ``constant_share`` (default 0.95) of the time, and that label makes up
        at most ``max_population_share`` (default 0.8) of all *other* annotators' labels -
        i.e. the population's label distribution is not that skewed itself.
    ``"implausibly fast"``
        The annotator has at least ``min_annotations`` annotations and a median lead time
        (over annotations with a finite lead time) below ``fast_threshold_ms`` (default
        1500 ms).
    ``"low gold accuracy"``
        At least ``min_gold`` (default 5) gold items seen and gold accuracy below
        ``min_gold_accuracy`` (default 0.5).

    Args:
        item_idx: item index per annotation.
        annotator_idx: annotator index per annotation.
        label: class index per annotation.
        n_items: number of items.
        n_annotators: number of annotators.
        n_classes: number of classes.
        consensus_labels: ``(n_items,)`` consensus class per item, ``-1`` = no consensus
            (e.g. ``dawid_skene(...).labels``).
        gold_labels: optional ``(n_items,)`` known-correct class per item, ``-1`` = not gold.
        lead_time_ms: optional per-annotation time to answer in milliseconds; ``nan`` for
            unknown.
        min_annotations: minimum annotations before the constant/fast heuristics apply.
        constant_share: top-label share at or above which answers count as constant.
        max_population_share: maximum population share of that label for the constant
            heuristic to fire.
        fast_threshold_ms: median lead time below which an annotator is implausibly fast.
        min_gold: minimum gold items seen before the gold-accuracy heuristic applies.
        min_gold_accuracy: gold accuracy below which an annotator is flagged.

    Returns:
        One :class:`AnnotatorStats` per annotator index ``0 .. n_annotators - 1``.
    """
    check_sizes(n_items=n_items, n_annotators=n_annotators, n_classes=n_classes)
    items = as_index(item_idx, n_items, "item_idx")
    annotators = as_index(annotator_idx, n_annotators, "annotator_idx")
    labels = as_index(label, n_classes, "label")
    check_same_length(item_idx=items, annotator_idx=annotators, label=labels)
    k = n_classes

    consensus = np.asarray(consensus_labels)
    if consensus.shape != (n_items,):
        raise ValueError(f"consensus_labels must have shape ({n_items},), got {consensus.shape}")

    # Label distribution per annotator.
    per_annotator = np.bincount(annotators * k + labels, minlength=n_annotators * k).reshape(
        n_annotators, k
    )
    n_annotations = per_annotator.sum(axis=1)
    safe_n = np.maximum(n_annotations, 1)
    top_label = np.argmax(per_annotator, axis=1)
    top_share = per_annotator[np.arange(n_annotators), top_label] / safe_n
    shares = per_annotator / safe_n[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(shares > 0, shares * np.log2(shares), 0.0).sum(axis=1)

    # Share of the annotator's top label among everybody else's annotations.
    population = per_annotator.sum(axis=0)
    others = population[None, :] - per_annotator
    others_total = np.maximum(others.sum(axis=1), 1)
    others_share_of_top = others[np.arange(n_annotators), top_label] / others_total

    # Agreement with consensus.
    item_consensus = consensus[items]
    with_consensus = item_consensus >= 0
    n_consensus = np.bincount(annotators[with_consensus], minlength=n_annotators)
    n_agree = np.bincount(
        annotators[with_consensus & (labels == item_consensus)], minlength=n_annotators
    )

    # Gold accuracy.
    n_gold = np.zeros(n_annotators, dtype=np.intp)
    n_gold_correct = np.zeros(n_annotators, dtype=np.intp)
    if gold_labels is not None:
        gold = np.asarray(gold_labels)
        if gold.shape != (n_items,):
            raise ValueError(f"gold_labels must have shape ({n_items},), got {gold.shape}")
        item_gold = gold[items]
        is_gold = item_gold >= 0
        n_gold = np.bincount(annotators[is_gold], minlength=n_annotators)
        n_gold_correct = np.bincount(
            annotators[is_gold & (labels == item_gold)], minlength=n_annotators
        )

    # Median lead time.
    medians = np.full(n_annotators, np.nan)
    if lead_time_ms is not None:
        times = np.asarray(lead_time_ms, dtype=np.float64)
        check_same_length(annotator_idx=annotators, lead_time_ms=times)
        finite = np.isfinite(times)
        medians = _group_medians(annotators[finite], times[finite], n_annotators)

    enough = n_annotations >= min_annotations
    flag_constant = (
        enough & (top_share >= constant_share) & (others_share_of_top <= max_population_share)
    )
    flag_fast = enough & (medians < fast_threshold_ms)  # nan compares False
    gold_acc = n_gold_correct / np.maximum(n_gold, 1)
    flag_gold = (n_gold >= min_gold) & (gold_acc < min_gold_accuracy)

    def opt(valid: bool, value: float) -> float | None:
        return float(value) if valid else None

    results = []
    for a in range(n_annotators):
        reasons = [
            reason
            for reason, fired in (
                ("constant answers", flag_constant[a]),
                ("implausibly fast", flag_fast[a]),
                ("low gold accuracy", flag_gold[a]),
            )
            if fired
        ]
        has_any = bool(n_annotations[a] > 0)
        results.append(
            AnnotatorStats(
                annotator=a,
                n_annotations=int(n_annotations[a]),
                n_gold=int(n_gold[a]),
                gold_accuracy=opt(n_gold[a] > 0, gold_acc[a]),
                agreement_with_consensus=opt(
                    n_consensus[a] > 0, n_agree[a] / max(n_consensus[a], 1)
                ),
                median_lead_time_ms=opt(not np.isnan(medians[a]), medians[a]),
                top_label=int(top_label[a]) if has_any else None,
                top_label_share=opt(has_any, top_share[a]),
                label_entropy=opt(has_any, entropy[a]),
                spammer_flag=bool(reasons),
                spammer_reasons=reasons,
            )
        )
    return results
