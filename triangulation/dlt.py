"""Confidence-weighted DLT triangulation with per-joint rejection of inconsistent views.

Reference: Hartley & Zisserman, Multiple View Geometry, 2nd ed., §12.2 (linear triangulation);
confidence weighting of the DLT rows as in Pose2Sim (Pagnon et al. 2021) and EasyMocap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ShapeError
from triangulation._dlt_kernels import robust_dlt

__all__ = ["TriangulationResult", "reprojection_errors", "triangulate_dlt", "triangulate_robust"]


def triangulate_dlt(P: np.ndarray, points_px: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear (DLT) triangulation of N points seen by C cameras (H&Z §12.2).

    Each view contributes the two rows ``w (u P_3 - P_1)`` and ``w (v P_3 - P_2)`` of A; the point
    minimises ``|A X|`` with ``X = (x, y, z, 1)`` (the inhomogeneous method of H&Z §12.2, exact for
    noise-free data and finite points), solved through the normal equations (3 x 3, LU), batched
    over N. A view with weight 0 is ignored.

    Args:
        P: (C, 3, 4) projection matrices for undistorted pixels.
        points_px: (C, N, 2) undistorted pixel coordinates.
        weights: (C, N) non-negative weights (e.g. 2D confidences); 0 means unseen.

    Returns:
        (N, 3) world points, metres. Points with fewer than 2 weighted views are meaningless (0 or
        finite garbage); the caller masks them.

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
    return _dlt(_normal_constants(P), _pixel_terms(points_px), weights)


# (key of P, its constants, reprojection rows, whether the constants are finite)
_LAST_RIG: tuple[tuple, np.ndarray, np.ndarray, bool] | None = None


def _normal_constants(P: np.ndarray) -> np.ndarray:
    """Per-camera constants of the DLT normal equations, (4 C, 12), for :func:`_dlt`.

    Each camera's rows are normalised (``|p3[:3]| = 1``) so that the weights, not the matrix scale,
    set each view's influence. The normal matrix ``A^T A`` of the rows ``w (u p3 - p1)`` and
    ``w (v p3 - p2)`` is, per camera, ``w^2 ((u^2 + v^2) p3 p3^T - u (p1 p3^T + p3 p1^T) - v (p2 p3^T
    + p3 p2^T) + p1 p1^T + p2 p2^T)``: these four 4 x 4 matrices are the constants (row ``k C + c``
    for term k of camera c), of which only what the inhomogeneous system needs is kept: the 3 x 3
    block (columns 0-8, row-major) and minus the first three entries of the last column (9-11).
    """
    Pn = P / np.sqrt((P[:, 2, :3] ** 2).sum(axis=1))[:, None, None]  # (C, 3, 4)
    p1, p2, p3 = Pn[:, 0], Pn[:, 1], Pn[:, 2]  # (C, 4)
    outer = np.einsum("cki,ckl->kcil", np.stack([p3, p1, p2, p1, p2], axis=1), np.stack([p3, p3, p3, p1, p2], axis=1))
    Q = np.stack(
        [outer[0], outer[1] + outer[1].transpose(0, 2, 1), outer[2] + outer[2].transpose(0, 2, 1), outer[3] + outer[4]]
    ).reshape(4 * P.shape[0], 16)  # (4 C, 16): row-major 4 x 4 matrices
    return np.ascontiguousarray(np.concatenate([Q[:, _BLOCK], -Q[:, _LAST]], axis=1))


_BLOCK = np.array([0, 1, 2, 4, 5, 6, 8, 9, 10])  # entries of the 3 x 3 block of a row-major 4 x 4 matrix
_LAST = np.array([3, 7, 11])  # the first three entries of its last column
_EYE = np.array([1.0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])  # identity block, zero right-hand side


def _pixel_terms(points_px: np.ndarray) -> np.ndarray:
    """(4, C, N) per-view factors ``(u^2 + v^2, -u, -v, 1)`` of the constants of :func:`_normal_constants`
    (``points_px`` (C, N, 2)); rows 1 and 2 are also the negated pixels the reprojection needs."""
    u, v = points_px[..., 0], points_px[..., 1]
    out = np.empty((4,) + u.shape)
    np.multiply(u, u, out=out[0])
    out[0] += v * v
    np.negative(u, out=out[1])
    np.negative(v, out=out[2])
    out[3] = 1.0
    return out


def _dlt(Q: np.ndarray, terms: np.ndarray, weights: np.ndarray, few: np.ndarray | bool | None = None) -> np.ndarray:
    """:func:`triangulate_dlt` from the camera constants ``Q`` (4 C, 12) of :func:`_normal_constants`, the
    pixel terms (4, C, N) of :func:`_pixel_terms` and the (C, N) weights: (N, 3). ``few``: (N,) bool, the
    points with fewer than 2 views of non-zero weight, where the caller knows them (None: counted here;
    False: there are none).

    Written for small N (a frame's joints): a handful of array operations. The normal equations of
    every point come from one matrix product, (N, 4 C) x (4 C, 12); the 3 x 3 systems are solved by
    LU (LAPACK, batched). A point with fewer than 2 weighted views (no unique solution) gets 0; a
    batch that LAPACK finds singular all the same is solved by Cramer's rule (finite garbage where
    singular, never NaN).
    """
    a = weights * weights  # (C, N)
    R = (terms * a).reshape(4 * a.shape[0], a.shape[1]).T @ Q  # (N, 12): 3 x 3 block and right-hand side per point
    if few is not False:
        R[np.count_nonzero(a, axis=0) < 2 if few is None else few] = _EYE
    try:
        return np.linalg.solve(R[:, :9].reshape(-1, 3, 3), R[:, 9:, None])[:, :, 0]
    except np.linalg.LinAlgError:  # an exactly singular system with two views or more (degenerate rays)
        return _cramer(R).T


def _cramer(R: np.ndarray) -> np.ndarray:
    """Solve N 3 x 3 systems by Cramer's rule, Jacobi-scaled: (N, 12) rows of :func:`_dlt` -> (3, N).

    Singular systems give finite garbage, never NaN (or an error)."""
    A, b = R[:, :9].T.reshape(3, 3, -1), R[:, 9:].T  # batch axis last: contiguous (N,) rows
    d = 1.0 / np.sqrt(np.maximum(A[[0, 1, 2], [0, 1, 2]], 1e-300))  # (3, N)
    A, b = A * d[:, None] * d[None, :], b * d
    # Columns c0 = (a, b_, c), c1 = (d_, e, f), c2 = (g, h, i) of each matrix.
    (a, d_, g), (b_, e, h), (c, f, i) = A
    k0, k1, k2 = e * i - f * h, f * g - d_ * i, d_ * h - e * g  # (c1 x c2)
    det = a * k0 + b_ * k1 + c * k2
    det[np.abs(det) < 1e-300] = 1e-300
    r0, r1, r2 = b
    out = np.empty((3, A.shape[-1]))
    out[0] = r0 * k0 + r1 * k1 + r2 * k2
    out[1] = a * (r1 * i - r2 * h) + b_ * (r2 * g - r0 * i) + c * (r0 * h - r1 * g)  # c0 . (b x c2)
    out[2] = a * (e * r2 - f * r1) + b_ * (f * r0 - d_ * r2) + c * (d_ * r1 - e * r0)  # c0 . (c1 x b)
    out /= det
    out *= d
    return out


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
    return _reproject(_rows(P), points_w, -np.moveaxis(points_px, -1, 0))


def _reproject(P: np.ndarray, X: np.ndarray, neg_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`reprojection_errors` from the projection rows stacked row-first (3 C, 4) (:func:`_rows`),
    the (N, 3) points and the negated pixels (2, C, N) (rows 1 and 2 of :func:`_pixel_terms`)."""
    proj = (P[:, :3] @ X.T + P[:, 3:]).reshape(3, P.shape[0] // 3, X.shape[0])  # (3, C, N), one product
    depth = proj[2]
    d = proj[:2] / np.where(np.abs(depth) < 1e-12, 1e-12, depth)
    d += neg_px
    return np.hypot(d[0], d[1]), depth


def _rows(P: np.ndarray) -> np.ndarray:
    """(C, 3, 4) projection matrices -> (3 C, 4): the first rows of every camera, then the second ones,
    then the third ones, as :func:`_reproject` takes them."""
    return np.ascontiguousarray(P.transpose(1, 0, 2), dtype=np.float64).reshape(-1, 4)


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

    Cost: one compiled call (:mod:`core.jit`, :func:`triangulation._dlt_kernels.robust_dlt`) loops over
    the points: each point's normal equations (as :func:`_dlt` builds them) solved by LU with partial
    pivoting (Cramer's rule, :func:`_cramer`, where a pivot is exactly 0), its reprojection into the
    views in use, and its rounds, where a dropped view's terms are left out of the sum. The cameras'
    normal-matrix constants (:func:`_normal_constants`) are kept from one call to the next while ``P``
    is the same (a node's rig).

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
    if P.ndim != 3 or P.shape[1:] != (3, 4) or points_px.shape != conf.shape + (2,) or conf.shape[0] != P.shape[0]:
        raise ShapeError(f"expected P (C, 3, 4), points_px (C, N, 2), conf (C, N); got {P.shape}, "
                         f"{points_px.shape}, {conf.shape}")  # fmt: skip
    global _LAST_RIG
    key = (P.shape, P.dtype.str, P.tobytes())
    rig = _LAST_RIG  # read once: another thread may replace it
    if rig is None or rig[0] != key:
        Q = _normal_constants(P)
        rig = _LAST_RIG = (key, Q, _rows(P), bool(np.isfinite(Q).all()))  # kept for the next frame
    C, N = conf.shape
    points, out_conf = np.empty((N, 3)), np.empty(N)
    used, errors = np.empty((C, N), dtype=bool), np.empty((C, N))
    robust_dlt(
        rig[1],
        rig[2],
        np.ascontiguousarray(points_px, dtype=np.float64),
        np.ascontiguousarray(conf, dtype=np.float64),
        float(min_conf),
        float(max_reproj_px),
        int(min_views),
        rig[3],
        points,
        out_conf,
        used,
        errors,
    )
    return TriangulationResult(points=points, conf=out_conf, used=used, errors=errors)
