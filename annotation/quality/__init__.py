"""Consensus, agreement and annotator-quality computations for categorical labels.

This package is pure numpy (plus the ``krippendorff`` package for Krippendorff's alpha); it has
no Django dependency so it can run inside Celery workers, management commands or notebooks.

Data representation
-------------------
Annotations are passed as three parallel integer arrays of equal length:

``item_idx``
    Dense item index in ``0 .. n_items - 1``.
``annotator_idx``
    Dense annotator index in ``0 .. n_annotators - 1``.
``label``
    Dense class index in ``0 .. n_classes - 1``.

together with the sizes ``n_items``, ``n_annotators`` and ``n_classes``. Mapping database ids
and label strings to dense indices (e.g. with ``np.unique(..., return_inverse=True)`` or
``pandas.factorize``) is the caller's job.

Every function is vectorised (``np.bincount``, fancy indexing, sorting) - there are no Python
loops over annotations - so the full pipeline (majority vote, Dawid-Skene, agreement metrics,
annotator stats) handles ~1,000,000 annotations in a couple of seconds. The only Python loops
are over classes, EM iterations, or the maximum number of annotators on a single item.

If an annotator labels the same item more than once, every annotation counts as a separate
vote in the consensus functions; deduplicate beforehand if that is not wanted.

Modules
-------
``consensus``
    Consensus estimators: :func:`label_counts`, :func:`majority_vote`, :func:`dawid_skene`.
``agreement``
    Inter-annotator agreement: Krippendorff's alpha, Fleiss' and Cohen's kappa, raw agreement.
``annotators``
    Per-annotator statistics and spam heuristics: :func:`annotator_stats`.
``arrays``
    The array types and input checks the three share.

Callers import the public names from the package (``from annotation import quality``).
"""

from .agreement import (
    AlphaLevel,
    PairwiseKappaMatrix,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    pairwise_cohen_kappa,
    pairwise_cohen_kappa_matrix,
    raw_agreement,
    reliability_matrix,
)
from .annotators import AnnotatorStats, annotator_stats
from .consensus import (
    ConsensusResult,
    DawidSkeneResult,
    dawid_skene,
    label_counts,
    majority_vote,
)

__all__ = [
    "AlphaLevel",
    "AnnotatorStats",
    "ConsensusResult",
    "DawidSkeneResult",
    "PairwiseKappaMatrix",
    "annotator_stats",
    "cohen_kappa",
    "dawid_skene",
    "fleiss_kappa",
    "krippendorff_alpha",
    "label_counts",
    "majority_vote",
    "pairwise_cohen_kappa",
    "pairwise_cohen_kappa_matrix",
    "raw_agreement",
    "reliability_matrix",
]
