"""Compiled loops (:mod:`core.jit`) of the joint filters: the masked UKF pixel update of
:func:`fusion.ukf.update` and the linear predict, position update and position spread of
:mod:`fusion.live_tracks`.

Each kernel is one loop over the B filters that does a filter's small linear algebra by hand, in
preallocated outputs: numpy would spend about 1 us of dispatch per batched operation, a few dozen
per frame, on matrices of at most 7 x 7 (or 6 x 6 in the direct form). Solves use Gaussian
elimination with partial pivoting (LAPACK's ``gesv``, as ``numpy.linalg.solve``): the matrices of the
update are symmetric but, with the scaled sigma points' negative centre weights, not always
positive definite. Kernels return a status instead of raising (0 ok, 1 a covariance not positive
definite, 2 a singular system); the Python callers raise ``numpy.linalg.LinAlgError`` as numpy did.
"""

from __future__ import annotations

import math

import numpy as np

from core.jit import kernel

__all__ = ["confidence_kernel", "linear_predict", "masked_update", "position_std_kernel", "position_update"]

OK = 0
NOT_POSITIVE_DEFINITE = 1
SINGULAR = 2


@kernel
def _lu_solve(A, R, n, k):  # pragma: no cover - compiled
    """Solve ``A[:n, :n] X = R[:n, :k]`` in place (X in R; A destroyed); False if a pivot is exactly 0."""
    for j in range(n):
        p, big = j, abs(A[j, j])
        for i in range(j + 1, n):
            if abs(A[i, j]) > big:
                p, big = i, abs(A[i, j])
        if A[p, j] == 0.0:
            return False
        if p != j:
            for c in range(n):
                A[j, c], A[p, c] = A[p, c], A[j, c]
            for c in range(k):
                R[j, c], R[p, c] = R[p, c], R[j, c]
        inv = 1.0 / A[j, j]
        for i in range(j + 1, n):
            f = A[i, j] * inv
            if f != 0.0:
                for c in range(j + 1, n):
                    A[i, c] -= f * A[j, c]
                for c in range(k):
                    R[i, c] -= f * R[j, c]
    for j in range(n - 1, -1, -1):
        inv = 1.0 / A[j, j]
        for c in range(k):
            s = R[j, c]
            for i in range(j + 1, n):
                s -= A[j, i] * R[i, c]
            R[j, c] = s * inv
    return True


@kernel
def masked_update(x, P, z, mask, var, proj, wm, wc, scale, woodbury, x_out, P_out, d2_out, nv_out):  # pragma: no cover
    """The masked UKF update of :func:`fusion.ukf.update` for B filters (see there for the equations).

    Args: x (B, n), P (B, n, n) float64 predicted states and covariances (n >= 3); z (B, C, 2) pixels;
    mask (B, C) bool; var (B, C) pixel variances; proj (C, 3, 4); wm, wc (N,) the folded position
    points' weights (N = 7); scale: n + lambda; woodbury: 2 C > N, use the N x N form of the matrix
    inversion lemma (unless a weight wc is 0). Outputs (written): x_out (B, n), P_out (B, n, n),
    d2_out (B,), nv_out (B,) int64.

    Returns: status (0 ok, 1 a covariance not positive definite, 2 a singular system).
    """
    B, n = x.shape
    C = mask.shape[1]
    N = wm.shape[0]  # 2 d + 1 = 7 distinct points: centre, +- the 3 position columns of L
    d = (N - 1) // 2
    M2 = 2 * C
    for k in range(N):
        if wc[k] == 0.0:
            woodbury = False
    L = np.zeros((n, n))
    X = np.zeros((N, n))  # state deviations of the points (row 0, the centre's, stays 0)
    H = np.empty((M2, N))  # pixel deviations of the points, seen coordinates only (coordinate-major)
    y = np.empty(M2)
    rv = np.empty(M2)
    size = max(N, M2)
    A = np.empty((size, size))
    R = np.empty((size, n + 1))
    cvec = np.empty(N)
    g = np.empty(N)
    Pxz = np.empty((n, M2))
    for b in range(B):
        # Cholesky factor of (n + lambda) P (lower triangle of P, as LAPACK's potrf with UPLO L).
        for j in range(n):
            s = scale * P[b, j, j]
            for k in range(j):
                s -= L[j, k] * L[j, k]
            if not s > 0.0:
                return NOT_POSITIVE_DEFINITE
            ljj = math.sqrt(s)
            L[j, j] = ljj
            for i in range(j + 1, n):
                s = scale * P[b, i, j]
                for k in range(j):
                    s -= L[i, k] * L[j, k]
                L[i, j] = s / ljj
        ns = 0
        for c in range(C):
            if mask[b, c]:
                ns += 1
        nv_out[b] = ns
        if ns == 0:  # no view: the prediction stays, exactly
            for i in range(n):
                x_out[b, i] = x[b, i]
                for j in range(n):
                    P_out[b, i, j] = P[b, i, j]
            d2_out[b] = 0.0
            continue
        for i in range(d):
            for r in range(n):
                X[1 + i, r] = L[r, i]
                X[1 + d + i, r] = -L[r, i]
        # The points' pixels in the seen views ([u, v] per view; unseen coordinates drop out exactly),
        # their weighted mean, the deviations from it and the innovations.
        m = 0
        for c in range(C):
            if not mask[b, c]:
                continue
            mu = 0.0
            mv = 0.0
            for k in range(N):
                px, py, pz = x[b, 0] + X[k, 0], x[b, 1] + X[k, 1], x[b, 2] + X[k, 2]
                q0 = proj[c, 0, 0] * px + proj[c, 0, 1] * py + proj[c, 0, 2] * pz + proj[c, 0, 3]
                q1 = proj[c, 1, 0] * px + proj[c, 1, 1] * py + proj[c, 1, 2] * pz + proj[c, 1, 3]
                q2 = proj[c, 2, 0] * px + proj[c, 2, 1] * py + proj[c, 2, 2] * pz + proj[c, 2, 3]
                u, v = q0 / q2, q1 / q2
                H[m, k] = u
                H[m + 1, k] = v
                mu += wm[k] * u
                mv += wm[k] * v
            for k in range(N):
                H[m, k] -= mu
                H[m + 1, k] -= mv
            y[m], y[m + 1] = z[b, c, 0] - mu, z[b, c, 1] - mv
            rv[m] = rv[m + 1] = var[b, c]
            m += 2
        d2 = 0.0
        if woodbury:
            # M = W^-1 + D R^-1 D^T (N x N), c = D R^-1 y (sums over the coordinates, outermost: independent
            # accumulators); solve M [s | T] = [c | X] (Numerical Recipes 2.7.3).
            for k in range(N):
                cvec[k] = 0.0
                for j in range(k, N):
                    A[k, j] = 0.0
            for i in range(m):
                r_inv = 1.0 / rv[i]
                d2 += y[i] * r_inv * y[i]
                for k in range(N):
                    g[k] = H[i, k] * r_inv
                for k in range(N):
                    gk = g[k]
                    cvec[k] += gk * y[i]
                    for j in range(k, N):
                        A[k, j] += gk * H[i, j]
            for k in range(N):
                for j in range(k + 1, N):
                    A[j, k] = A[k, j]
                A[k, k] += 1.0 / wc[k]
                R[k, 0] = cvec[k]
                for r in range(n):
                    R[k, 1 + r] = X[k, r]
            if not _lu_solve(A, R, N, n + 1):
                return SINGULAR
            # x + X^T s, P + X^T T - X^T W X = P + X^T (T - W X), y^T R^-1 y - c^T s.
            for r in range(n):
                s = 0.0
                for k in range(1, N):
                    s += X[k, r] * R[k, 0]
                x_out[b, r] = x[b, r] + s
            for k in range(N):
                for j in range(n):
                    R[k, 1 + j] -= wc[k] * X[k, j]
            for r in range(n):
                for j in range(n):
                    s = 0.0
                    for k in range(1, N):
                        s += X[k, r] * R[k, 1 + j]
                    P_out[b, r, j] = P[b, r, j] + s
            for k in range(N):
                d2 -= cvec[k] * R[k, 0]
        else:
            # S = D^T W D + R (m x m), Pxz = X^T W D (n x m); solve S [K^T | s] = [Pxz^T | y].
            for i in range(m):
                for k in range(N):
                    g[k] = wc[k] * H[i, k]
                for j in range(i, m):
                    s = 0.0
                    for k in range(N):
                        s += g[k] * H[j, k]
                    A[i, j] = s
                    A[j, i] = s
                A[i, i] += rv[i]
                for r in range(n):
                    s = 0.0
                    for k in range(1, N):
                        s += X[k, r] * g[k]
                    Pxz[r, i] = s
                    R[i, r] = s
                R[i, n] = y[i]
            if not _lu_solve(A, R, m, n + 1):
                return SINGULAR
            # x + Pxz s, P - Pxz S^-1 Pxz^T, y^T s.
            for r in range(n):
                s = 0.0
                for i in range(m):
                    s += Pxz[r, i] * R[i, n]
                x_out[b, r] = x[b, r] + s
                for j in range(n):
                    s = 0.0
                    for i in range(m):
                        s += Pxz[r, i] * R[i, j]
                    P_out[b, r, j] = P[b, r, j] - s
            for i in range(m):
                d2 += y[i] * R[i, n]
        d2_out[b] = d2
    return OK


@kernel
def linear_predict(x, P, dt, var, x_out, P_out):  # pragma: no cover - compiled
    """``x' = F x``, ``P' = F P F^T + kron(q, I3)`` of :func:`fusion.live_tracks.predict_linear` for B filters.

    Args: x (B, 6), P (B, 6, 6), dt (B,) seconds, var (B,) acceleration variances; outputs x_out (B, 6),
    P_out (B, 6, 6) (written).
    """
    for b in range(x.shape[0]):
        d = dt[b]
        for i in range(3):
            x_out[b, i] = x[b, i] + d * x[b, 3 + i]
            x_out[b, 3 + i] = x[b, 3 + i]
        # Rows, then columns, of the position gain d times those of the velocity (the numpy order).
        for i in range(6):
            for j in range(6):
                P_out[b, i, j] = P[b, i, j] + d * P[b, i + 3, j] if i < 3 else P[b, i, j]
        for i in range(6):
            for j in range(3):
                P_out[b, i, j] += d * P_out[b, i, j + 3]
        d2 = d * d
        q00, q01, q11 = 0.25 * var[b] * (d2 * d2), 0.5 * var[b] * (d2 * d), var[b] * d2
        for i in range(3):
            P_out[b, i, i] += q00
            P_out[b, i, i + 3] += q01
            P_out[b, i + 3, i] += q01
            P_out[b, i + 3, i + 3] += q11


@kernel
def position_update(x, P, z, R, mask, x_out, P_out, d2_out):  # pragma: no cover - compiled
    """The linear Kalman update with a 3D position of :func:`fusion.live_tracks.update_position` for B filters.

    Args: x (B, 6), P (B, 6, 6), z (B, 3), R (B, 3, 3), mask (B,) bool; outputs x_out, P_out, d2_out
    (written; masked-out filters keep x, P exactly, d2 0).

    Returns: status (0 ok, 2 a singular innovation covariance).
    """
    n = x.shape[1]
    A = np.empty((3, 3))
    Rhs = np.empty((3, n + 1))
    for b in range(x.shape[0]):
        if not mask[b]:
            for i in range(n):
                x_out[b, i] = x[b, i]
                for j in range(n):
                    P_out[b, i, j] = P[b, i, j]
            d2_out[b] = 0.0
            continue
        # S = P_pos + R; solve S [K^T | s] = [P[:3, :] | y].
        for i in range(3):
            for j in range(3):
                A[i, j] = P[b, i, j] + R[b, i, j]
            for j in range(n):
                Rhs[i, j] = P[b, i, j]
            Rhs[i, n] = z[b, i] - x[b, i]
        y0, y1, y2 = Rhs[0, n], Rhs[1, n], Rhs[2, n]
        if not _lu_solve(A, Rhs, 3, n + 1):
            return SINGULAR
        # K = (S^-1 P[:3, :])^T: x + K y, P - K S K^T = P - P[:3, :]^T S^-1 P[:3, :], d2 = y^T S^-1 y.
        for i in range(n):
            x_out[b, i] = x[b, i] + Rhs[0, i] * y0 + Rhs[1, i] * y1 + Rhs[2, i] * y2
            for j in range(n):
                P_out[b, i, j] = P[b, i, j] - (P[b, 0, i] * Rhs[0, j] + P[b, 1, i] * Rhs[1, j] + P[b, 2, i] * Rhs[2, j])
        d2_out[b] = y0 * Rhs[0, n] + y1 * Rhs[1, n] + y2 * Rhs[2, n]
    return OK


@kernel
def position_std_kernel(P, out):  # pragma: no cover - compiled
    """``sqrt(max(trace(P[:3, :3]), 0) / 3)`` of K covariances P (K, 6, 6) into out (K,)."""
    for k in range(P.shape[0]):
        out[k] = math.sqrt(max(P[k, 0, 0] + P[k, 1, 1] + P[k, 2, 2], 0.0) / 3.0)


@kernel
def confidence_kernel(std, scale, out):  # pragma: no cover - compiled
    """``1 / (1 + (std / scale)^2)`` of K standard deviations std (K,) into out (K,)."""
    for k in range(std.shape[0]):
        r = std[k] / scale
        out[k] = 1.0 / (1.0 + r * r)
