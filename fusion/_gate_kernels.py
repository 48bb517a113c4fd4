"""Compiled loops of the association gate (:mod:`fusion.association`): unscented pixel predictions,
2D squared Mahalanobis distances, and the gate of every (track, group) pair.

Plain loops compiled by numba (:mod:`core.jit`): at the node's sizes (a few tracks and groups, 17
joints, 4 to 32 views) numpy's per-operation dispatch, not the arithmetic, set the gate's cost. The
definitions (and the papers they come from) are in :mod:`fusion.association`'s docstrings; the sums
are taken in another order than numpy's there, so results agree with it to rounding.
"""

from __future__ import annotations

import numpy as np

from core.jit import kernel

__all__ = ["gate_kernel", "mahalanobis2_kernel", "unscented_pixels_kernel"]


@kernel
def _d2(u: float, v: float, suu: float, suv: float, svv: float, var: float) -> float:
    """Squared Mahalanobis distance of the innovation (u, v) for the covariance [[suu, suv], [suv, svv]]
    + var I, its determinant floored at 1e-12 (NaN stays NaN, as numpy's ``maximum``)."""
    a = suu + var
    c = svv + var
    det = a * c - suv * suv
    if det < 1e-12:
        det = 1e-12
    return (u * u * c - suv * 2.0 * u * v + v * v * a) / det


@kernel
def mahalanobis2_kernel(
    u: np.ndarray, v: np.ndarray, suu: np.ndarray, suv: np.ndarray, svv: np.ndarray, var: np.ndarray, out: np.ndarray
) -> None:
    """:func:`_d2` of (n,) float64 arrays into ``out`` (n,)."""
    for i in range(u.shape[0]):
        out[i] = _d2(u[i], v[i], suu[i], suv[i], svv[i], var[i])


@kernel
def unscented_pixels_kernel(
    pos: np.ndarray,
    cov: np.ndarray,
    projections: np.ndarray,
    wm: np.ndarray,
    wc: np.ndarray,
    scale: float,
    need: np.ndarray,
    out: np.ndarray,
) -> bool:
    """Unscented transform of 3D Gaussians through every camera (7 sigma points, filterpy's order).

    Args:
        pos: (B, 3) means, metres.
        cov: (B, 3, 3) covariances, metres^2 (lower triangle read).
        projections: (C, 3, 4) camera matrices.
        wm, wc: (7,) mean and covariance weights.
        scale: n + lambda; the sigma points are the mean and +- the columns of chol(scale * cov).
        need: (B,) bool, points whose pixels are computed (every covariance is factorised).
        out: (B, C, 6) written for the needed points: [u, v, Suu, Suv, Svv, front] (pixels, pixels^2;
            front 1.0 when every sigma point lies over 1 mm in front of the camera, else 0.0).

    Returns:
        False when a covariance is not positive definite (then ``out`` is incomplete).
    """
    C = projections.shape[0]
    # Work rows over the views (the innermost loops run over them: vectorised by the compiler).
    q = np.empty((3, 4, C))  # per pixel row: A x + A[:, 3], and A L[:, k] for the 3 columns of L
    hu = np.empty((7, C))
    hv = np.empty((7, C))
    mu = np.empty(C)
    mv = np.empty(C)
    front = np.empty(C)
    suu = np.empty(C)
    suv = np.empty(C)
    svv = np.empty(C)
    pd = True
    for b in range(pos.shape[0]):
        # Cholesky factor of scale * cov (lower triangular; LAPACK's potrf fails on NaN as here).
        a00 = scale * cov[b, 0, 0]
        if not a00 > 0.0:
            pd = False
            continue
        l00 = np.sqrt(a00)
        l10 = scale * cov[b, 1, 0] / l00
        l20 = scale * cov[b, 2, 0] / l00
        a11 = scale * cov[b, 1, 1] - l10 * l10
        if not a11 > 0.0:
            pd = False
            continue
        l11 = np.sqrt(a11)
        l21 = (scale * cov[b, 2, 1] - l20 * l10) / l11
        a22 = scale * cov[b, 2, 2] - l20 * l20 - l21 * l21
        if not a22 > 0.0:
            pd = False
            continue
        l22 = np.sqrt(a22)
        if not need[b]:
            continue
        x0, x1, x2 = pos[b, 0], pos[b, 1], pos[b, 2]
        for r in range(3):
            for c in range(C):
                p0, p1, p2 = projections[c, r, 0], projections[c, r, 1], projections[c, r, 2]
                q[r, 0, c] = p0 * x0 + p1 * x1 + p2 * x2 + projections[c, r, 3]
                q[r, 1, c] = p0 * l00 + p1 * l10 + p2 * l20
                q[r, 2, c] = p1 * l11 + p2 * l21
                q[r, 3, c] = p2 * l22
        for c in range(C):  # the centre
            depth = q[2, 0, c]
            front[c] = 1.0 if depth > 1e-3 else 0.0
            depth = 1e-3 if depth < 1e-3 else depth  # behind the camera: a finite pixel, never used
            hu[0, c] = q[0, 0, c] / depth
            hv[0, c] = q[1, 0, c] / depth
            mu[c] = wm[0] * hu[0, c]
            mv[c] = wm[0] * hv[0, c]
        for s in range(1, 7):  # x + L[:, k], then x - L[:, k]
            k = (s - 1) % 3 + 1
            sign = 1.0 if s < 4 else -1.0
            for c in range(C):
                depth = q[2, 0, c] + sign * q[2, k, c]
                front[c] = front[c] if depth > 1e-3 else 0.0
                depth = 1e-3 if depth < 1e-3 else depth
                hu[s, c] = (q[0, 0, c] + sign * q[0, k, c]) / depth
                hv[s, c] = (q[1, 0, c] + sign * q[1, k, c]) / depth
                mu[c] += wm[s] * hu[s, c]
                mv[c] += wm[s] * hv[s, c]
        for c in range(C):
            suu[c] = 0.0
            suv[c] = 0.0
            svv[c] = 0.0
        for s in range(7):
            for c in range(C):
                du = hu[s, c] - mu[c]
                dv = hv[s, c] - mv[c]
                suu[c] += wc[s] * (du * du)
                suv[c] += wc[s] * (du * dv)
                svv[c] += wc[s] * (dv * dv)
        for c in range(C):
            out[b, c, 0] = mu[c]
            out[b, c, 1] = mv[c]
            out[b, c, 2] = suu[c]
            out[b, c, 3] = suv[c]
            out[b, c, 4] = svv[c]
            out[b, c, 5] = front[c]
    return pd


@kernel
def _before(a: float, b: float) -> bool:
    """Sort order with NaN last (numpy's)."""
    return a < b or (b != b and a == a)


@kernel
def gate_kernel(
    pos: np.ndarray,
    cov: np.ndarray,
    active: np.ndarray,
    z: np.ndarray,
    var: np.ndarray,
    meas: np.ndarray,
    poses: np.ndarray,
    projections: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    mirror: np.ndarray,
    gate_m: float,
    limits: np.ndarray,
    wm: np.ndarray,
    wc: np.ndarray,
    scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """The gate of :func:`fusion.association.gate_groups` (same arguments, contiguous), with
    ``left``/``right`` (k,) the left/right joint pairs (``mirror[left] > left``), ``limits`` (3,):
    [chi-square gate, swap ratio, minimum inliers], and ``wm``, ``wc``, ``scale`` the unscented
    transform's weights and scale (:func:`unscented_pixels_kernel`).

    Returns:
        swap, inlier (T, G, J, C) bool, cost (T, G), ok (T, G) bool, dist (T, G) metres, and False
        when a track covariance is not positive definite (the rest is then incomplete).
    """
    T, J = active.shape
    G, C = z.shape[0], projections.shape[0]
    gate_d2, swap_ratio, min_inliers = limits[0], limits[1], limits[2]
    swap = np.zeros((T, G, J, C), np.bool_)
    inlier = np.zeros((T, G, J, C), np.bool_)
    cost = np.full((T, G), gate_d2)
    ok = np.zeros((T, G), np.bool_)
    dist = np.empty((T, G))
    # The 3D sanity gate: median joint distance over >= 3 common joints, against gate_m plus three
    # RMS joint position standard deviations of the track.
    near = np.zeros((T, G), np.bool_)
    need = np.zeros(T * J, np.bool_)
    vals = np.empty(J)
    any_pair = False
    for t in range(T):
        tr = 0.0
        n_act = 0
        for j in range(J):
            w = 1.0 if active[t, j] else 0.0
            tr += (cov[t, j, 0, 0] + cov[t, j, 1, 1] + cov[t, j, 2, 2]) * w
            n_act += active[t, j]
        var_m2 = tr / (3.0 * max(n_act, 1))
        if var_m2 < 0.0:
            var_m2 = 0.0
        spread = 3.0 * np.sqrt(var_m2)
        for g in range(G):
            n = 0
            for j in range(J):
                if active[t, j] and poses[g, j, 3] > 0:
                    dx = pos[t, j, 0] - poses[g, j, 0]
                    dy = pos[t, j, 1] - poses[g, j, 1]
                    dz = pos[t, j, 2] - poses[g, j, 2]
                    d = np.sqrt(dx * dx + dy * dy + dz * dz)
                    i = n  # insertion sort of the few distances
                    while i > 0 and _before(d, vals[i - 1]):
                        vals[i] = vals[i - 1]
                        i -= 1
                    vals[i] = d
                    n += 1
            med = np.inf
            if n >= 3:
                med = (vals[(n - 1) // 2] + vals[n // 2]) / 2
            dist[t, g] = med
            if not (np.isfinite(med) and med > gate_m + spread):
                near[t, g] = True
                any_pair = True
                for j in range(J):
                    need[t * J + j] = active[t, j]
    if not any_pair:
        return swap, inlier, cost, ok, dist, True
    ut = np.empty((T * J, C, 6))
    flat_pos, flat_cov = pos.reshape(T * J, 3), cov.reshape(T * J, 3, 3)
    if not unscented_pixels_kernel(flat_pos, flat_cov, projections, wm, wc, scale, need, ut):
        return swap, inlier, cost, ok, dist, False
    d2 = np.empty((J, C))
    usable = np.empty((J, C), np.bool_)
    for t in range(T):
        for g in range(G):
            if not near[t, g]:
                continue
            for j in range(J):
                tj = t * J + j
                for c in range(C):
                    use = meas[g, j, c] and active[t, j] and ut[tj, c, 5] > 0.5
                    usable[j, c] = use
                    if use:
                        d2[j, c] = _d2(z[g, j, c, 0] - ut[tj, c, 0], z[g, j, c, 1] - ut[tj, c, 1], ut[tj, c, 2],
                                       ut[tj, c, 3], ut[tj, c, 4], var[g, j, c])  # fmt: skip
            # Each left/right pair against the other side's observations.
            for k in range(left.shape[0]):
                lj, rj = left[k], right[k]
                ml, mr = mirror[lj], mirror[rj]
                tl, trr = t * J + lj, t * J + rj
                for c in range(C):
                    if not (usable[lj, c] and usable[rj, c]):
                        continue
                    dl = _d2(z[g, ml, c, 0] - ut[tl, c, 0], z[g, ml, c, 1] - ut[tl, c, 1], ut[tl, c, 2],
                             ut[tl, c, 3], ut[tl, c, 4], var[g, ml, c])  # fmt: skip
                    dr = _d2(z[g, mr, c, 0] - ut[trr, c, 0], z[g, mr, c, 1] - ut[trr, c, 1], ut[trr, c, 2],
                             ut[trr, c, 3], ut[trr, c, 4], var[g, mr, c])  # fmt: skip
                    if dl + dr < swap_ratio * (d2[lj, c] + d2[rj, c]):
                        swap[t, g, lj, c] = True
                        swap[t, g, rj, c] = True
                        d2[lj, c] = dl
                        d2[rj, c] = dr
            n_common = 0
            n_in = 0
            total = 0.0
            for j in range(J):
                for c in range(C):
                    if usable[j, c]:
                        n_common += 1
                        if d2[j, c] <= gate_d2:
                            n_in += 1
                            total += d2[j, c]
                            inlier[t, g, j, c] = True
            cost[t, g] = (total + gate_d2 * (n_common - n_in)) / max(n_common, 1)
            ok[t, g] = 2 * n_in >= n_common and n_in >= min_inliers
    return swap, inlier, cost, ok, dist, True
