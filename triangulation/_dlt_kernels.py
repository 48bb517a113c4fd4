"""Compiled loop (:mod:`core.jit`) of :func:`triangulation.dlt.triangulate_robust`: one call per frame.

Per point, the operations of the numpy code it replaces (the batched rounds of the earlier
``triangulate_robust``, :func:`triangulation.dlt._dlt` and :func:`triangulation.dlt._reproject`):
the weighted normal equations of the DLT rows (Hartley & Zisserman, Multiple View Geometry, §12.2;
confidence weights as in Pose2Sim) from the per-camera constants of
:func:`triangulation.dlt._normal_constants`; their 3 x 3 solve by LU with partial pivoting, as LAPACK's
``gesv`` in ``np.linalg.solve``, or where a pivot is exactly 0 (LAPACK's refusal) by Jacobi-scaled
Cramer's rule as :func:`triangulation.dlt._cramer` (finite garbage, never NaN); the reprojection into
the views in use; and the robust rounds: while the worst view in use is above the bound and more than
``min_views`` remain, it is dropped (its terms left out of the sum) and the point solved again.
Results equal the numpy code's to rounding (sums in another order), with the same views kept.
"""

from __future__ import annotations

import math

import numpy as np

from core.jit import kernel

__all__ = ["robust_dlt"]


@kernel
def _solve(terms: np.ndarray, take: np.ndarray, few: bool, R: np.ndarray, X: np.ndarray) -> None:
    """X (3,) <- the weighted DLT point from the per-view terms (C, 12) of its normal equations (3 x 3
    matrix row-major, right-hand side) summed over the views ``take`` (C,) bool; 0 where ``few`` (fewer
    than 2 weighted views). ``R`` (12,): scratch."""
    if few:
        X[0] = X[1] = X[2] = 0.0
        return
    R[:] = 0.0
    for c in range(take.shape[0]):
        if take[c]:
            for j in range(12):
                R[j] += terms[c, j]
    # LU with partial pivoting (what LAPACK's gesv does); an exactly zero pivot, where LAPACK refuses the
    # system, goes to Cramer's rule as in triangulation.dlt._dlt.
    for k in range(3):
        p = k
        for r in range(k + 1, 3):
            if abs(R[3 * r + k]) > abs(R[3 * p + k]):
                p = r
        if R[3 * p + k] == 0.0:
            _cramer(R, X)
            return
        if p != k:
            for j in range(3):
                R[3 * k + j], R[3 * p + j] = R[3 * p + j], R[3 * k + j]
            R[9 + k], R[9 + p] = R[9 + p], R[9 + k]
        for r in range(k + 1, 3):
            m = R[3 * r + k] / R[4 * k]
            for j in range(k + 1, 3):
                R[3 * r + j] -= m * R[3 * k + j]
            R[9 + r] -= m * R[9 + k]
    X[2] = R[11] / R[8]
    X[1] = (R[10] - R[5] * X[2]) / R[4]
    X[0] = (R[9] - R[1] * X[1] - R[2] * X[2]) / R[0]


@kernel
def _cramer(R: np.ndarray, X: np.ndarray) -> None:
    """X (3,) <- the solution of the 3 x 3 system ``R`` (12,) (row-major matrix, right-hand side) by
    Jacobi-scaled Cramer's rule, the operations of :func:`triangulation.dlt._cramer`: finite garbage
    where singular, never NaN (for finite input)."""
    d0 = 1.0 / math.sqrt(max(R[0], 1e-300))
    d1 = 1.0 / math.sqrt(max(R[4], 1e-300))
    d2 = 1.0 / math.sqrt(max(R[8], 1e-300))
    a_, d_, g = R[0] * d0 * d0, R[1] * d0 * d1, R[2] * d0 * d2
    b_, e, h = R[3] * d1 * d0, R[4] * d1 * d1, R[5] * d1 * d2
    c_, f, i = R[6] * d2 * d0, R[7] * d2 * d1, R[8] * d2 * d2
    r0, r1, r2 = R[9] * d0, R[10] * d1, R[11] * d2
    k0, k1, k2 = e * i - f * h, f * g - d_ * i, d_ * h - e * g
    det = a_ * k0 + b_ * k1 + c_ * k2
    if abs(det) < 1e-300:
        det = 1e-300
    X[0] = (r0 * k0 + r1 * k1 + r2 * k2) / det * d0
    X[1] = (a_ * (r1 * i - r2 * h) + b_ * (r2 * g - r0 * i) + c_ * (r0 * h - r1 * g)) / det * d1
    X[2] = (a_ * (e * r2 - f * r1) + b_ * (f * r0 - d_ * r2) + c_ * (d_ * r1 - e * r0)) / det * d2


@kernel
def _reproject(
    rows: np.ndarray, px: np.ndarray, n: int, used: np.ndarray, X: np.ndarray, err: np.ndarray, depth: np.ndarray
) -> None:
    """err, depth (C,) <- reprojection error (pixels) and depth of the point X (3,) in the views ``used``
    (C,) bool (the others are left as they are), from the projection rows ``rows`` (3 C, 4) of
    :func:`triangulation.dlt._rows` and the pixels ``px`` (C, N, 2) of point ``n``."""
    C = err.shape[0]
    for c in range(C):
        if not used[c]:
            continue
        p, q, s = c, C + c, 2 * C + c  # the camera's rows (indexed, not sliced: a view costs a reference count)
        x = rows[p, 0] * X[0] + rows[p, 1] * X[1] + rows[p, 2] * X[2] + rows[p, 3]
        y = rows[q, 0] * X[0] + rows[q, 1] * X[1] + rows[q, 2] * X[2] + rows[q, 3]
        z = rows[s, 0] * X[0] + rows[s, 1] * X[1] + rows[s, 2] * X[2] + rows[s, 3]
        den = 1e-12 if abs(z) < 1e-12 else z
        dx, dy = x / den - px[c, n, 0], y / den - px[c, n, 1]
        ss = dx * dx + dy * dy  # hypot (libm's is slow) where the squares neither overflow nor underflow
        err[c] = math.sqrt(ss) if 1e-290 < ss < 1e300 else math.hypot(dx, dy)
        depth[c] = z


@kernel
def robust_dlt(
    Q: np.ndarray,
    rows: np.ndarray,
    px: np.ndarray,
    conf: np.ndarray,
    min_conf: float,
    max_px: float,
    min_views: int,
    finite_q: bool,
    points: np.ndarray,
    conf_out: np.ndarray,
    used_out: np.ndarray,
    errors: np.ndarray,
) -> None:
    """The loop of :func:`triangulation.dlt.triangulate_robust`, point by point, into the outputs.

    Args:
        Q: (4 C, 12) normal-equation constants (:func:`triangulation.dlt._normal_constants`).
        rows: (3 C, 4) projection rows (:func:`triangulation.dlt._rows`).
        px: (C, N, 2) undistorted pixels; conf: (C, N) confidences; min_conf, max_px, min_views: as there.
        finite_q: whether ``Q`` is finite (then a view of weight 0 and finite pixels adds exact zeros, skipped).
        points, conf_out, used_out, errors: (N, 3), (N,), (C, N) bool, (C, N) outputs, every entry written.
    """
    C, N = conf.shape
    w = np.empty(C)
    used = np.empty(C, dtype=np.bool_)
    take = np.empty(C, dtype=np.bool_)  # the views whose terms are summed (those that may add non-zeros)
    terms = np.empty((C, 12))
    R = np.empty(12)
    err = np.empty(C)
    depth = np.empty(C)
    X = np.empty(3)
    for n in range(N):
        n_used = 0
        n_weighted = 0
        for c in range(C):
            used[c] = conf[c, n] >= min_conf
            w[c] = conf[c, n] if used[c] else 0.0
            n_used += used[c]
            a = w[c] * w[c]
            n_weighted += a != 0.0
            u, v = px[c, n, 0], px[c, n, 1]
            take[c] = a != 0.0 or not (finite_q and math.isfinite(u) and math.isfinite(v))
            if take[c]:  # the products of triangulation.dlt._dlt: (terms * a) @ Q
                f0, f1, f2 = (u * u + v * v) * a, -u * a, -v * a
                for j in range(12):
                    terms[c, j] = f0 * Q[c, j] + f1 * Q[C + c, j] + f2 * Q[2 * C + c, j] + a * Q[3 * C + c, j]
        # min_conf > 0: every view in use weighs > 0; otherwise the weighted views are counted (as _dlt does).
        _solve(terms, take, n_used < 2 if min_conf > 0 else n_weighted < 2, R, X)
        _reproject(rows, px, n, used, X, err, depth)
        for _ in range(max(0, C - min_views)):
            worst, top, nan = 0, -1.0, False  # np.argmax / max over the errors in use (-1 elsewhere)
            for c in range(C):
                e = err[c] if used[c] else -1.0
                if e != e:
                    nan = True
                if c == 0 or e > top:
                    worst, top = c, e
            if nan or not (top > max_px and n_used > min_views):
                break
            used[worst] = False
            w[worst] = 0.0
            take[worst] = False  # its pixels are finite (else its error is NaN): it adds exact zeros now
            n_used -= 1
            n_weighted = 0
            for c in range(C):
                n_weighted += w[c] * w[c] != 0.0
            _solve(terms, take, min_conf <= 0 and n_weighted < 2, R, X)
            _reproject(rows, px, n, used, X, err, depth)
        valid = n_used >= min_views
        for c in range(C):
            e = err[c] if used[c] else 0.0
            if not e <= max_px or (used[c] and not depth[c] > 0):
                valid = False
        total = 0.0
        for c in range(C):
            total += w[c]
            used_out[c, n] = used[c] and valid
            errors[c, n] = (err[c] if used[c] else 0.0) if valid else 0.0
        conf_out[n] = total / max(n_used, 1) if valid else 0.0
        for k in range(3):
            points[n, k] = X[k] if valid else 0.0
