"""Association of one view's 2D detections with existing 3D tracks.

Each live track's predicted 3D pose is projected into the view; detections are assigned to tracks by
the Hungarian method on the mean 2D joint distance, with a per-track gate in pixels. This is the
"cross-view tracking" idea of Chen et al., CVPR 2020 (associate 2D detections to 3D targets first,
and only the leftovers across views), which removes the epipolar ambiguity of people of one height
on one epipolar plane once they are tracked.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.errors import ShapeError
from core.numeric import masked_median

__all__ = ["assign_detections_to_tracks", "joint_distance_matrix_2d"]


def joint_distance_matrix_2d(
    pred_px: np.ndarray,
    pred_valid: np.ndarray,
    det_px: np.ndarray,
    det_conf: np.ndarray,
    min_conf: float = 0.3,
    min_common: int = 5,
) -> np.ndarray:
    """Median pixel distance between projected track joints and detected joints.

    The median, so that a few wrong joints (a stale or badly triangulated track joint, a
    misplaced wrist) do not push a person out of its own track's gate.

    Args:
        pred_px: (T, J, 2) projected track joints, pixels.
        pred_valid: (T, J) bool, joints of the track that are known and in front of the camera.
        det_px: (P, J, 2) detected joints, pixels (same distortion convention as ``pred_px``).
        det_conf: (P, J) detection confidences.
        min_conf: detected joints below this confidence are ignored.
        min_common: pairs with fewer usable joints get ``inf``.

    Returns:
        (T, P) median distances, pixels.

    Raises:
        ShapeError: inconsistent joint counts.
    """
    if (
        pred_px.shape[1:] != det_px.shape[1:]
        or pred_valid.shape != pred_px.shape[:2]
        or det_conf.shape != det_px.shape[:2]
    ):
        raise ShapeError(f"expected (T, J, 2) and (P, J, 2) with equal J; got {pred_px.shape} and {det_px.shape}")
    both = pred_valid[:, None, :] & (det_conf[None, :, :] >= min_conf)  # (T, P, J)
    diff = pred_px[:, None] - det_px[None]  # (T, P, J, 2)
    d = np.hypot(diff[..., 0], diff[..., 1])
    return masked_median(d, both, min_common)


def assign_detections_to_tracks(cost: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """One-to-one assignment of detections to tracks within per-track gates (Kuhn 1955).

    Args:
        cost: (T, P) distances, e.g. from :func:`joint_distance_matrix_2d` (``inf`` forbidden).
        gate: (T,) largest accepted cost per track, same unit.

    Returns:
        (P,) int64 track index of each detection, -1 where unassigned.

    Example:
        >>> assign_detections_to_tracks(np.array([[1.0, 9.0], [2.0, 50.0]]), np.array([10.0, 10.0])).tolist()
        [1, 0]
    """
    T, P = cost.shape
    out = np.full(P, -1, dtype=np.int64)
    if T == 0 or P == 0:
        return out
    allowed = np.isfinite(cost) & (cost <= gate[:, None])
    rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e9))
    for r, c in zip(rows, cols, strict=True):
        if allowed[r, c]:
            out[c] = r
    return out
