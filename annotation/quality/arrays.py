"""Array types and input checks shared by the quality modules.

Every public function takes annotations as parallel integer arrays (see the package docstring);
these checks turn bad input into a ``ValueError``/``TypeError`` that names the argument.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]


def as_index(values: npt.ArrayLike, upper: int, name: str) -> IntArray:
    """Return ``values`` as a 1-D ``intp`` array, checking ``0 <= values < upper``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    arr = arr.astype(np.intp, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ValueError(f"{name} values must lie in [0, {upper}), got [{arr.min()}, {arr.max()}]")
    return arr


def check_sizes(**sizes: int) -> None:
    """Raise ``ValueError`` unless every size is a positive integer."""
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_same_length(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` unless all arrays have the same length."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"annotation arrays must have equal length, got {lengths}")
