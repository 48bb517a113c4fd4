"""Confidence-weighted DLT triangulation with per-joint rejection of inconsistent views.

Reference: Hartley & Zisserman, Multiple View Geometry, 2nd ed., §12.2 (linear triangulation);
confidence weighting of the DLT rows as in Pose2Sim (Pagnon et al. 2021) and EasyMocap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ShapeError

__all__ = ["TriangulationResult", "reprojection_errors", "triangulate_dlt", "triangulate_robust"]


def triangulate_dlt(P: np.ndarray, points_px: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear (DLT) triangulation of N points seen by C cameras (H&Z §12.2).

    Each view contributes the two rows ``w (u P_3 - P_1)`` and ``w (v P_3 - P_2)`` of A; the point
    minimises ``|A X|`` with ``X = (x, y, z, 1)`` (the inhomogeneous method of H&Z §12.2, exact for
    noise-free data and finite points), solved through the 4 x 4 normal matrix, batched over N.
    A view with weight 0 is ignored.

    Args:
        P: (C, 3, 4) projection matrices for undistorted pixels.
        points_px: (C, N, 2) undistorted pixel coordinates.
        weights: (C, N) non-negative weights (e.g. 2D confidences); 0 means unseen.

    Returns:
        (N, 3) world points, metres. Points with fewer than 2 weighted views are meaningless;
        the caller masks them.

    Raises:
        ShapeError: inconsistent shapes.

    Example:
        >>> P = np.stack([np.hstack([np.eye(3), [[dx], [0.0], [4.0]]]) for dx in (0.0, -1.0)])
        >>> X = np.array([[0.1, 0.2, 0.3, 1.0]])
        >>> uv = np.stack([(X @ p.T)[:, :2] / (X @ p.T)[:, 2:] for p in P])
        >>> triangulate_dlt(P, uv, np.ones((2, 1))).round(6).tolist()
        [[0.1, 0.2, 0.3]]
    """
    C = P.shape[0]
    if P.shape != (C, 3, 4) or points_px.shape[:1] != (C,) or points_px.shape[2:] != (2,):
        raise ShapeError(f"expected P (C, 3, 4) and points_px (C, N, 2); got {P.shape} and {points_px.shape}")
    N = points_px.shape[1]
    if weights.shape != (C, N):
        raise ShapeError(f"weights must be (C, N) = ({C}, {N}); got {weights.shape}")
    # Normalise each camera's rows so that the weights, not the matrix scale, set each view's influence.
    Pn = P / np.sqrt((P[:, 2, :3] ** 2).sum(axis=1))[:, None, None]  # (C, 3, 4)
    w = weights[..., None]  # (C, N, 1)
    rows_u = w * (points_px[..., 0:1] * Pn[:, None, 2, :] - Pn[:, None, 0, :])  # (C, N, 4)
    rows_v = w * (points_px[..., 1:2] * Pn[:, None, 2, :] - Pn[:, None, 1, :])  # (C, N, 4)
    A = np.concatenate([rows_u, rows_v]).transpose(1, 0, 2)  # (N, 2C, 4)
    M = A.transpose(0, 2, 1) @ A  # (N, 4, 4) normal matrix A^T A
    # Jacobi scaling (pixels ~1e3 against 1) keeps the 3 x 3 system well conditioned.
    d = 1.0 / np.sqrt(np.maximum(np.einsum("nii->ni", M), 1e-300))  # (N, 4)
    Mn = M * d[:, :, None] * d[:, None, :]
    # Inhomogeneous form (H&Z §12.2): X = (x, y, z, 1); in scaled unknowns y_i = x_i / d_i the last
    # one is fixed at 1 / d_4 and the first three solve a 3 x 3 linear system (Cramer's rule, batched).
    y = _solve3(Mn[:, :3, :3], -Mn[:, :3, 3] / d[:, 3:4])
    return y * d[:, :3]


def _solve3(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve N 3 x 3 systems ``A x = b`` by Cramer's rule, vectorised; (N, 3, 3), (N, 3) -> (N, 3).

    Singular systems (a point seen by fewer than 2 views) give finite garbage, never NaN.
    """
    # Columns c0 = (a, b_, c), c1 = (d, e, f), c2 = (g, h, i) of each matrix.
    a, b_, c = A[:, 0, 0], A[:, 1, 0], A[:, 2, 0]
    d, e, f = A[:, 0, 1], A[:, 1, 1], A[:, 2, 1]
    g, h, i = A[:, 0, 2], A[:, 1, 2], A[:, 2, 2]
    k0, k1, k2 = e * i - f * h, f * g - d * i, d * h - e * g  # (c1 x c2)
    det = a * k0 + b_ * k1 + c * k2
    det = np.where(np.abs(det) < 1e-300, 1e-300, det)
    r0, r1, r2 = b[:, 0], b[:, 1], b[:, 2]
    x0 = r0 * k0 + r1 * k1 + r2 * k2
    x1 = a * (r1 * i - r2 * h) + b_ * (r2 * g - r0 * i) + c * (r0 * h - r1 * g)  # c0 . (b x c2)
    x2 = a * (e * r2 - f * r1) + b_ * (f * r0 - d * r2) + c * (d * r1 - e * r0)  # c0 . (c1 x b)
    return np.stack([x0, x1, x2], axis=1) / det[:, None]


def reprojection_errors(P: np.ndarray, points_w: np.ndarray, points_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reprojection error of world points in every view, in undistorted pixels.

    Args:
        P: (C, 3, 4) projection matrices.
        points_w: (N, 3) world points, metres.
        points_px: (C, N, 2) observed undistorted pixels.

    Returns:
        errors: (C, N) Euclidean distances, pixels.
        depth: (C, N) depth of each point in each camera (positive in front), in units of P's scale.
    """
    Xh = np.concatenate([points_w, np.ones((points_w.shape[0], 1))], axis=1)  # (N, 4)
    proj = np.einsum("cij,nj->cni", P, Xh)  # (C, N, 3)
    depth = proj[..., 2]
    safe = np.where(np.abs(depth) < 1e-12, 1e-12, depth)
    uv = proj[..., :2] / safe[..., None]
    diff = uv - points_px
    return np.hypot(diff[..., 0], diff[..., 1]), depth


@dataclass(frozen=True, slots=True)
class TriangulationResult:
    """Output of :func:`triangulate_robust`.

    Attributes:
        points: (N, 3) world points, metres (zeros where invalid).
        conf: (N,) confidence: mean weight of the views used; 0 where the point is missing.
        used: (C, N) bool, views kept for each point.
        errors: (C, N) reprojection errors in pixels of the kept views (0 elsewhere).
    """

    points: np.ndarray
    conf: np.ndarray
    used: np.ndarray
    errors: np.ndarray


def triangulate_robust(
    P: np.ndarray,
    points_px: np.ndarray,
    conf: np.ndarray,
    min_conf: float = 0.3,
    max_reproj_px: float = 15.0,
    min_views: int = 2,
) -> TriangulationResult:
    """Weighted DLT with per-point rejection of views whose reprojection error is too large.

    For each point, while its largest reprojection error exceeds ``max_reproj_px`` and more than
    ``min_views`` views remain, the worst view is dropped and the point re-triangulated (all
    points in one batch). Points left with fewer than ``min_views`` views, still above the error
    bound, or behind a camera that sees them are reported missing (conf 0).

    Args:
        P: (C, 3, 4) projection matrices for undistorted pixels.
        points_px: (C, N, 2) undistorted pixel observations.
        conf: (C, N) 2D confidences in [0, 1]; 0 means unseen.
        min_conf: observations below this confidence are not used.
        max_reproj_px: reprojection error bound, pixels.
        min_views: smallest number of views for a valid point (>= 2).

    Returns:
        A :class:`TriangulationResult`.

    Raises:
        ShapeError: inconsistent shapes or ``min_views`` < 2.
    """
    if min_views < 2:
        raise ShapeError(f"min_views must be >= 2; got {min_views}")
    used = conf >= min_conf  # (C, N)
    X = triangulate_dlt(P, points_px, np.where(used, conf, 0.0))
    err, depth = reprojection_errors(P, X, points_px)
    for _ in range(max(0, P.shape[0] - min_views)):
        err_used = np.where(used, err, -1.0)
        worst = np.argmax(err_used, axis=0)  # (N,)
        worst_err = err_used[worst, np.arange(err.shape[1])]
        drop = (worst_err > max_reproj_px) & (used.sum(axis=0) > min_views)
        if not drop.any():
            break
        used[worst[drop], np.nonzero(drop)[0]] = False
        # Re-triangulate only the points that lost a view.
        idx = np.nonzero(drop)[0]
        X[idx] = triangulate_dlt(P, points_px[:, idx], np.where(used[:, idx], conf[:, idx], 0.0))
        err[:, idx], depth[:, idx] = reprojection_errors(P, X[idx], points_px[:, idx])
    n_used = used.sum(axis=0)
    valid = (
        (n_used >= min_views)
        & np.all(np.where(used, err, 0.0) <= max_reproj_px, axis=0)
        & np.all(np.where(used, depth, 1.0) > 0, axis=0)
    )
    used &= valid[None, :]
    mean_conf = np.where(valid, np.where(used, conf, 0.0).sum(axis=0) / np.maximum(n_used, 1), 0.0)
    return TriangulationResult(
        points=np.where(valid[:, None], X, 0.0),
        conf=mean_conf,
        used=used,
        errors=np.where(used, err, 0.0),
    )
