"""Inter-annotator agreement: Krippendorff's alpha, Fleiss' kappa, Cohen's kappa (one pair,
every pair, their mean) and raw (percent) agreement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import krippendorff
import numpy as np
import numpy.typing as npt

from .arrays import FloatArray, IntArray, as_index, check_same_length, check_sizes
from .consensus import label_counts

__all__ = [
    "AlphaLevel",
    "PairwiseKappaMatrix",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "pairwise_cohen_kappa",
    "pairwise_cohen_kappa_matrix",
    "raw_agreement",
    "reliability_matrix",
]

AlphaLevel = Literal["nominal", "ordinal", "interval", "ratio"]

_ALPHA_LEVELS = ("nominal", "ordinal", "interval", "ratio")


@dataclass
class PairwiseKappaMatrix:
    """Cohen's kappa for every pair among the (most active) annotators.

    Attributes:
        annotators: ``(m,)`` original annotator indices, most active first.
        kappa: ``(m, m)`` symmetric float matrix; ``nan`` on the diagonal and where a pair
            shares fewer than ``min_shared`` items or kappa is undefined.
        shared: ``(m, m)`` int matrix with the number of items both annotators labelled.
    """

    annotators: IntArray
    kappa: FloatArray
    shared: IntArray


def reliability_matrix(
    *,
    item_idx: npt.ArrayLike,
    annotator_idx: npt.ArrayLike,
    label: npt.ArrayLike,
    n_items: int,
    n_annotators: int,
    dtype: npt.DTypeLike = np.float64,
) -> npt.NDArray[np.floating]:
    """Build the coders x units matrix expected by :func:`krippendorff_alpha`.

    Missing (annotator, item) cells are ``np.nan``. The matrix is dense: it needs
    ``n_annotators * n_items * itemsize`` bytes, e.g. 10 x 100,000 x 8 B = 8 MB as float64,
    but 5,000 x 100,000 x 8 B = 4 GB - for large annotator pools use ``dtype=np.float32``,
    restrict to the most active annotators, or compute alpha on a sample of items. If an
    annotator labelled the same item more than once only one of the labels is kept.

    Args:
        item_idx: item index per annotation (matrix column).
        annotator_idx: annotator index per annotation (matrix row).
        label: value per annotation (any integer; it is stored as a float).
        n_items: number of items (columns).
        n_annotators: number of annotators (rows).
        dtype: floating dtype of the result.

    Returns:
        ``(n_annotators, n_items)`` float matrix.
    """
    check_sizes(n_items=n_items, n_annotators=n_annotators)
    items = as_index(item_idx, n_items, "item_idx")
    annotators = as_index(annotator_idx, n_annotators, "annotator_idx")
    values = np.asarray(label)
    check_same_length(item_idx=items, annotator_idx=annotators, label=values)
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise TypeError("dtype must be a floating dtype so missing cells can be NaN")
    matrix = np.full((n_annotators, n_items), np.nan, dtype=dtype)
    matrix[annotators, items] = values
    return matrix


def krippendorff_alpha(
    reliability_data: npt.ArrayLike,
    level: AlphaLevel = "nominal",
    *,
    value_domain: npt.ArrayLike | None = None,
) -> float:
    """Krippendorff's alpha (thin wrapper over the ``krippendorff`` package).

    Args:
        reliability_data: coders x units matrix, ``np.nan`` for missing values (see
            :func:`reliability_matrix`).
        level: level of measurement: ``"nominal"``, ``"ordinal"``, ``"interval"`` or
            ``"ratio"``.
        value_domain: optional ordered list of possible values; matters for ``"ordinal"``
            when some categories are never used. Defaults to the observed values.

    Returns:
        Alpha in ``(-inf, 1]``; 1 = perfect agreement, 0 = chance agreement.

    Raises:
        ValueError: for an unknown level (the package itself raises for degenerate data,
            e.g. fewer than two distinct values).
    """
    if level not in _ALPHA_LEVELS:
        raise ValueError(f"level must be one of {_ALPHA_LEVELS}, got {level!r}")
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"reliability_data must be 2-D (coders x units), got {data.shape}")
    return float(
        krippendorff.alpha(
            reliability_data=data, value_domain=value_domain, level_of_measurement=level
        )
    )


def fleiss_kappa(counts: npt.ArrayLike) -> float:
    """Fleiss' (1971) kappa for a fixed number of raters per subject.

    Args:
        counts: ``(n_subjects, n_categories)`` matrix; ``counts[i, j]`` is the number of
            raters who assigned subject ``i`` to category ``j`` (e.g. from
            :func:`label_counts`). Every row must sum to the same number ``n >= 2``.

    Returns:
        Kappa; ``nan`` if expected agreement is 1 (all ratings in a single category).

    Raises:
        ValueError: if the matrix is not 2-D, is empty, has negative entries, or the rows do
            not all sum to the same number of raters (at least 2).
    """
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(f"counts must be a non-empty 2-D matrix, got shape {table.shape}")
    if (table < 0).any():
        raise ValueError("counts must be non-negative")
    raters = table.sum(axis=1)
    n = raters[0]
    if not np.all(raters == n):
        raise ValueError(
            "fleiss_kappa needs the same number of raters for every subject; got row sums "
            f"between {raters.min():g} and {raters.max():g}"
        )
    if n < 2:
        raise ValueError("fleiss_kappa needs at least two raters per subject")
    n_subjects = table.shape[0]
    p_category = table.sum(axis=0) / (n_subjects * n)
    p_subject = ((table * table).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_subject.mean()
    p_expected = float((p_category**2).sum())
    if np.isclose(p_expected, 1.0):
        return float("nan")
    return float((p_bar - p_expected) / (1.0 - p_expected))


def _kappa_from_tables(tables: FloatArray) -> FloatArray:
    """Cohen's kappa for a stack of ``(..., k, k)`` contingency tables (``nan`` if undefined)."""
    n = tables.sum(axis=(-2, -1))
    safe_n = np.where(n > 0, n, 1.0)
    p_observed = np.trace(tables, axis1=-2, axis2=-1) / safe_n
    rows = tables.sum(axis=-1) / safe_n[..., None]
    cols = tables.sum(axis=-2) / safe_n[..., None]
    p_expected = (rows * cols).sum(axis=-1)
    denom = 1.0 - p_expected
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (p_observed - p_expected) / denom
    return np.where((n > 0) & ~np.isclose(denom, 0.0), kappa, np.nan)


def cohen_kappa(a: npt.ArrayLike, b: npt.ArrayLike, *, n_classes: int | None = None) -> float:
    """Cohen's (1960) kappa between two raters' label vectors.

    Args:
        a: labels of rater A per item (non-negative ints; negative values mean "missing").
        b: labels of rater B for the same items.
        n_classes: number of classes; inferred from the data if omitted.

    Returns:
        Kappa over the items both raters labelled; ``nan`` if there are none or if expected
        agreement is 1 (both raters used one and the same single label).
    """
    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-D with equal length, got {x.shape} and {y.shape}")
    if x.size and not (np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer)):
        raise TypeError("a and b must be integer label arrays")
    keep = (x >= 0) & (y >= 0)
    x = x[keep].astype(np.intp)
    y = y[keep].astype(np.intp)
    if x.size == 0:
        return float("nan")
    k = int(max(x.max(), y.max())) + 1 if n_classes is None else n_classes
    if x.max() >= k or y.max() >= k:
        raise ValueError(f"labels must be < n_classes={k}")
    table = np.bincount(x * k + y, minlength=k * k).reshape(k, k).astype(np.float64)
    return float(_kappa_from_tables(table))


def pairwise_cohen_kappa_matrix(
    *,
    item_idx: npt.ArrayLike,
    annotator_idx: npt.ArrayLike,
    label: npt.ArrayLike,
    n_items: int,
    n_annotators: int,
    n_classes: int,
    min_shared: int = 10,
    max_annotators: int = 200,
) -> PairwiseKappaMatrix:
    """Cohen's kappa for every pair of the ``max_annotators`` most active annotators.

    Implementation: annotations are sorted by (item, annotator) and all within-item pairs are
    enumerated by comparing each annotation with the one ``j`` positions later, for
    ``j = 1 .. largest item size - 1`` (only annotations whose item still has a partner ``j``
    places on take part, so the work is proportional to the number of co-annotation pairs).
    One ``np.bincount`` over ``(annotator a, annotator b, label a, label b)`` codes then yields
    every pair's contingency table. Memory is ``O(max_annotators^2 * n_classes^2)``.

    Annotators are ranked by number of annotations (ties: lower index first); annotations of
    annotators outside the top ``max_annotators`` are ignored. Repeated labels by the same
    annotator on one item are not paired with each other.

    Args:
        item_idx: item index per annotation.
        annotator_idx: annotator index per annotation.
        label: class index per annotation.
        n_items: number of items.
        n_annotators: number of annotators.
        n_classes: number of classes.
        min_shared: minimum number of shared items for a pair's kappa to be reported.
        max_annotators: cap on the number of (most active) annotators considered.

    Returns:
        A :class:`PairwiseKappaMatrix`.
    """
    check_sizes(n_items=n_items, n_annotators=n_annotators, n_classes=n_classes)
    items = as_index(item_idx, n_items, "item_idx")
    annotators = as_index(annotator_idx, n_annotators, "annotator_idx")
    labels = as_index(label, n_classes, "label")
    check_same_length(item_idx=items, annotator_idx=annotators, label=labels)
    k = n_classes

    activity = np.bincount(annotators, minlength=n_annotators)
    ranked = np.argsort(-activity, kind="stable")[: max(int(max_annotators), 0)]
    ranked = ranked[activity[ranked] > 0]
    m = len(ranked)
    rank_of = np.full(n_annotators, -1, dtype=np.intp)
    rank_of[ranked] = np.arange(m)

    keep = rank_of[annotators] >= 0
    items, ranks, labels = items[keep], rank_of[annotators[keep]], labels[keep]
    order = np.lexsort((ranks, items))
    items, ranks, labels = items[order], ranks[order], labels[order]

    # Position of each annotation inside its item group and the number still following it.
    n = len(items)
    is_start = np.ones(n, dtype=bool)
    is_start[1:] = items[1:] != items[:-1]
    starts = np.flatnonzero(is_start)
    group_sizes = np.diff(np.append(starts, n))
    group_of = np.cumsum(is_start) - 1
    remaining = (starts + group_sizes)[group_of] - np.arange(n) - 1 if n else np.empty(0, int)

    codes = []
    active = np.flatnonzero(remaining > 0)
    offset = 1
    while active.size:
        partner = active + offset
        ra, rb = ranks[active], ranks[partner]
        distinct = ra != rb  # rank a <= rank b because of the sort
        ra, rb = ra[distinct], rb[distinct]
        la, lb = labels[active][distinct], labels[partner][distinct]
        codes.append(((ra * m + rb) * k + la) * k + lb)
        offset += 1
        active = active[remaining[active] >= offset]

    all_codes = np.concatenate(codes) if codes else np.empty(0, dtype=np.intp)
    tables = np.bincount(all_codes, minlength=m * m * k * k).reshape(m, m, k, k)
    tables = tables + tables.transpose(1, 0, 3, 2)  # symmetrise (a, b) and (b, a)
    shared = tables.sum(axis=(2, 3)).astype(np.intp)
    kappa = _kappa_from_tables(tables.astype(np.float64))
    kappa[shared < min_shared] = np.nan
    np.fill_diagonal(kappa, np.nan)
    return PairwiseKappaMatrix(annotators=ranked.astype(np.intp), kappa=kappa, shared=shared)


def pairwise_cohen_kappa(
    *,
    item_idx: npt.ArrayLike,
    annotator_idx: npt.ArrayLike,
    label: npt.ArrayLike,
    n_items: int,
    n_annotators: int,
    n_classes: int,
    min_shared: int = 10,
    max_annotators: int = 200,
) -> float:
    """Mean Cohen's kappa over annotator pairs sharing at least ``min_shared`` items.

    Pairs whose kappa is undefined (both annotators used one identical label throughout) are
    skipped. See :func:`pairwise_cohen_kappa_matrix` for the algorithm and the
    ``max_annotators`` cap.

    Returns:
        The unweighted mean over qualifying pairs, ``nan`` if no pair qualifies.
    """
    result = pairwise_cohen_kappa_matrix(
        item_idx=item_idx,
        annotator_idx=annotator_idx,
        label=label,
        n_items=n_items,
        n_annotators=n_annotators,
        n_classes=n_classes,
        min_shared=min_shared,
        max_annotators=max_annotators,
    )
    upper = result.kappa[np.triu_indices(len(result.annotators), k=1)]
    upper = upper[~np.isnan(upper)]
    return float(upper.mean()) if upper.size else float("nan")


def raw_agreement(
    *,
    item_idx: npt.ArrayLike,
    label: npt.ArrayLike,
    n_items: int,
    n_classes: int,
) -> float:
    """Observed (percent) agreement.

    For every item with at least two labels, the share of annotation pairs on that item that
    agree (``Σ_c n_c (n_c - 1) / (n (n - 1))``); the result is the unweighted mean over those
    items. Each annotation is treated as a separate rater.

    Returns:
        Agreement in ``[0, 1]``; ``nan`` if no item has two or more labels.
    """
    counts = label_counts(
        item_idx=item_idx, label=label, n_items=n_items, n_classes=n_classes
    ).astype(np.float64)
    totals = counts.sum(axis=1)
    multi = totals >= 2
    if not multi.any():
        return float("nan")
    counts, totals = counts[multi], totals[multi]
    agreeing = (counts * (counts - 1)).sum(axis=1)
    return float((agreeing / (totals * (totals - 1))).mean())
