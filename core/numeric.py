"""Small vectorised numeric helpers shared by the packages."""

from __future__ import annotations

import numpy as np

__all__ = ["masked_median", "pose_distance_matrix", "pose_distances", "xy_first"]


def masked_median(values: np.ndarray, mask: np.ndarray, min_count: int = 1) -> np.ndarray:
    """Median over the last axis of the entries where ``mask`` is true.

    float64 values with a bool mask of the same shape go through a compiled loop (:mod:`core.jit`; one
    call, a Shell sort of each row's usable entries); anything else through numpy, with the same
    results: NaN entries sort last (a median that reaches them is NaN), as in ``np.sort``.

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
    values, mask = np.asarray(values), np.asarray(mask)
    if values.dtype != np.float64 or mask.dtype != np.bool_ or values.shape != mask.shape or not values.size:
        return _masked_median_numpy(values, mask, min_count)
    from core._numeric_kernels import _masked_median_rows  # numba loads on first use: workers never need it

    K = values.shape[-1]
    out = np.empty(values.size // K)
    _masked_median_rows(
        np.ascontiguousarray(values).reshape(-1, K), np.ascontiguousarray(mask).reshape(-1, K), float(min_count), out
    )
    return out.reshape(values.shape[:-1])


def _masked_median_numpy(values: np.ndarray, mask: np.ndarray, min_count: int) -> np.ndarray:
    """:func:`masked_median` in numpy: the unused entries set to ``inf``, the rows sorted."""
    n = mask.sum(axis=-1)
    srt = np.sort(np.where(mask, values, np.inf), axis=-1).reshape(-1, values.shape[-1])
    k = np.maximum(n, 1).reshape(-1)
    rows = np.arange(k.size)
    med = ((srt[rows, (k - 1) // 2] + srt[rows, k // 2]) / 2).reshape(n.shape)
    return np.where(n >= min_count, med, np.inf)


def pose_distance_matrix(a: np.ndarray, b: np.ndarray, min_common: int = 3) -> np.ndarray:
    """Median Euclidean distance over joints valid (conf > 0) in both poses.

    The median, not the mean, so that a few wrong joints (a left/right swap, a misplaced wrist)
    do not push a person out of its own track's gate.

    Args:
        a: (Pa, J, 4) poses, metres.
        b: (Pb, J, 4) poses, metres.
        min_common: pairs with fewer common joints get ``inf``.

    Returns:
        (Pa, Pb) distances, metres.
    """
    return pose_distances(a[:, None], b[None], min_common)


def pose_distances(a: np.ndarray, b: np.ndarray, min_common: int = 3) -> np.ndarray:
    """:func:`pose_distance_matrix` of poses paired by broadcasting: ``a`` (..., J, 4) and ``b`` (..., J, 4)
    poses, metres -> (...) median Euclidean joint distances over joints valid in both, metres (``inf``
    with fewer than ``min_common`` common joints). E.g. (M, J, 4) and (M, J, 4): the M pairs' distances."""
    both = (a[..., 3] > 0) & (b[..., 3] > 0)  # (..., J)
    diff = a[..., :3] - b[..., :3]  # (..., J, 3)
    d = np.sqrt((diff * diff).sum(axis=-1))
    return masked_median(d, both, min_common)


def xy_first(xy: np.ndarray) -> np.ndarray:
    """(..., 2) pixel coordinates as a contiguous (2, ...) array, x then y.

    numpy is slow on a trailing axis of 2 (every strided x or y operation, and reductions over the
    axis before it); with x and y as contiguous blocks, per-joint arithmetic runs on long rows.
    """
    return np.ascontiguousarray(np.moveaxis(xy, -1, 0))
