"""Small vectorised numeric helpers shared by the packages."""

from __future__ import annotations

import numpy as np

__all__ = ["masked_median"]


def masked_median(values: np.ndarray, mask: np.ndarray, min_count: int = 1) -> np.ndarray:
    """Median over the last axis of the entries where ``mask`` is true.

    Args:
        values: (..., K) values.
        mask: (..., K) bool, entries to use.
        min_count: results with fewer usable entries are ``inf``.

    Returns:
        (...) medians; ``inf`` where fewer than ``min_count`` entries are usable.

    Example:
        >>> masked_median(np.array([[1.0, 5.0, 3.0, 100.0]]), np.array([[True, True, True, False]])).tolist()
        [3.0]
    """
    n = mask.sum(axis=-1)
    srt = np.sort(np.where(mask, values, np.inf), axis=-1).reshape(-1, values.shape[-1])
    k = np.maximum(n, 1).reshape(-1)
    rows = np.arange(k.size)
    med = ((srt[rows, (k - 1) // 2] + srt[rows, k // 2]) / 2).reshape(n.shape)
    return np.where(n >= min_count, med, np.inf)
