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
    return _dlt(_normal_constants(P), points_px, weights)


_LAST_RIG: tuple[np.ndarray, np.ndarray] | None = None  # (P, _normal_constants(P)) of the last call


def _normal_constants(P: np.ndarray) -> np.ndarray:
    """Per-camera constants of the DLT normal matrix, (4 C, 16), for :func:`_dlt`.

    Each camera's rows are normalised (``|p3[:3]| = 1``) so that the weights, not the matrix scale,
    set each view's influence. The normal matrix ``A^T A`` of the rows ``w (u p3 - p1)`` and
    ``w (v p3 - p2)`` is, per camera, ``w^2 ((u^2 + v^2) p3 p3^T - u (p1 p3^T + p3 p1^T) - v (p2 p3^T
    + p3 p2^T) + p1 p1^T + p2 p2^T)``: these four 4 x 4 matrices are the constants.
    """
    Pn = P / np.sqrt((P[:, 2, :3] ** 2).sum(axis=1))[:, None, None]  # (C, 3, 4)
    p1, p2, p3 = Pn[:, 0], Pn[:, 1], Pn[:, 2]  # (C, 4)
    outer = np.einsum("cki,ckl->kcil", np.stack([p3, p1, p2, p1, p2], axis=1), np.stack([p3, p3, p3, p1, p2], axis=1))
    Q = np.stack(
        [outer[0], outer[1] + outer[1].transpose(0, 2, 1), outer[2] + outer[2].transpose(0, 2, 1), outer[3] + outer[4]]
    )  # (4, C, 4, 4)
    return Q.reshape(4 * P.shape[0], 16)


def _dlt(Q: np.ndarray, points_px: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`triangulate_dlt` with the camera constants ``Q`` of :func:`_normal_constants`: (N, 3).

    Written for small N (a frame's joints): few array operations, each on contiguous (N,) rows.
    """
    C, N = weights.shape
    a = weights * weights  # (C, N)
    u, v = points_px[..., 0], points_px[..., 1]
    coef = np.empty((4, C, N))
    np.multiply(a, u * u + v * v, out=coef[0])
    np.multiply(-a, u, out=coef[1])
    np.multiply(-a, v, out=coef[2])
    coef[3] = a
    M = Q.T @ coef.reshape(4 * C, N)  # (16, N): row 4 i + j is entry (i, j) of every normal matrix
    # Jacobi scaling (pixels ~1e3 against 1) keeps the 3 x 3 system well conditioned.
    d = 1.0 / np.sqrt(np.maximum(M[_DIAG], 1e-300))  # (4, N)
    Mn = M.reshape(4, 4, N) * d[:, None] * d[None, :]  # (4, 4, N) scaled normal matrices
    # Inhomogeneous form (H&Z §12.2): X = (x, y, z, 1); in scaled unknowns y_i = x_i / d_i the last
    # one is fixed at 1 / d_4 and the first three solve a 3 x 3 linear system (Cramer's rule, batched).
    y = _solve3(Mn[:3, :3], -Mn[:3, 3] / d[3])
    y *= d[:3]
    return y.T


_DIAG = np.array([0, 5, 10, 15])  # rows of the diagonal entries in the (16, N) normal matrices


def _solve3(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve N 3 x 3 systems ``A x = b`` by Cramer's rule, vectorised; (3, 3, N), (3, N) -> (3, N).

    Batch axis last, so that every entry is a contiguous (N,) row. Singular systems (a point seen by
    fewer than 2 views) give finite garbage, never NaN.
    """
    # Columns c0 = (a, b_, c), c1 = (d, e, f), c2 = (g, h, i) of each matrix.
    (a, d, g), (b_, e, h), (c, f, i) = A
    k0, k1, k2 = e * i - f * h, f * g - d * i, d * h - e * g  # (c1 x c2)
    det = a * k0 + b_ * k1 + c * k2
    det[np.abs(det) < 1e-300] = 1e-300
    r0, r1, r2 = b
    out = np.empty((3, A.shape[-1]))
    out[0] = r0 * k0 + r1 * k1 + r2 * k2
    out[1] = a * (r1 * i - r2 * h) + b_ * (r2 * g - r0 * i) + c * (r0 * h - r1 * g)  # c0 . (b x c2)
    out[2] = a * (e * r2 - f * r1) + b_ * (f * r0 - d * r2) + c * (d * r1 - e * r0)  # c0 . (c1 x b)
    out /= det
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
    proj = P[:, :, :3] @ points_w.T  # (C, 3, N), one batched product
    proj += P[:, :, 3:]
    depth = proj[:, 2]
    safe = np.where(np.abs(depth) < 1e-12, 1e-12, depth)
    du = proj[:, 0] / safe - points_px[..., 0]
    dv = proj[:, 1] / safe - points_px[..., 1]
    return np.hypot(du, dv), depth


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

    Cost: each round re-triangulates only the points that lost a view in the previous one, and the
    cameras' normal-matrix constants (:func:`_normal_constants`) are kept from one call to the next
    while ``P`` is the same (a node's rig), so a call costs a few array operations per round.

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
    rig = _LAST_RIG  # read once: another thread may replace it
    if rig is None or rig[0].shape != P.shape or not np.array_equal(rig[0], P):
        rig = _LAST_RIG = (P.copy(), _normal_constants(P))  # per-rig constants, kept for the next frame
    Q = rig[1]
    used = conf >= min_conf  # (C, N)
    w = np.where(used, conf, 0.0)  # weights of the views in use
    n_used = used.sum(axis=0)  # (N,)
    X = _dlt(Q, points_px, w)
    err, depth = reprojection_errors(P, X, points_px)
    act = None  # points that may still lose a view (None: all): only those that just lost one
    for _ in range(max(0, P.shape[0] - min_views)):
        if act is None:
            err_used = np.where(used, err, -1.0)
            worst = np.argmax(err_used, axis=0)  # (N,)
            drop = (err_used[worst, np.arange(worst.size)] > max_reproj_px) & (n_used > min_views)
            act = np.nonzero(drop)[0]
            worst = worst[act]
        else:
            err_used = np.where(used[:, act], err[:, act], -1.0)
            worst = np.argmax(err_used, axis=0)  # (A,)
            drop = (err_used[worst, np.arange(act.size)] > max_reproj_px) & (n_used[act] > min_views)
            act, worst = act[drop], worst[drop]
        if not act.size:
            break
        used[worst, act] = False
        w[worst, act] = 0.0
        n_used[act] -= 1
        # Re-triangulate only the points that lost a view.
        X[act] = _dlt(Q, points_px[:, act], w[:, act])
        err[:, act], depth[:, act] = reprojection_errors(P, X[act], points_px[:, act])
    err_kept = np.where(used, err, 0.0)
    valid = (n_used >= min_views) & (err_kept <= max_reproj_px).all(axis=0) & ((depth > 0) | ~used).all(axis=0)
    used &= valid
    return TriangulationResult(
        points=np.where(valid[:, None], X, 0.0),
        conf=np.where(valid, w.sum(axis=0) / np.maximum(n_used, 1), 0.0),
        used=used,
        errors=np.where(valid, err_kept, 0.0),
    )
