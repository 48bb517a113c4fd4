"""Association of a frame's reconstructed people with live tracks, gated on Mahalanobis distance.

The tracks' joints are Gaussian in 3D (a filter each, :mod:`fusion.live`); a frame's group is a
person's 2D joints in the views that saw it, with the triangulated pose when two views agree. Each
observation (track, group, joint, view) is compared in the image: its squared Mahalanobis distance
``d2 = y^T S^-1 y``, where ``y`` is the pixel innovation and ``S`` the covariance of the joint's
predicted pixel (unscented transform of its 3D position marginal; Julier & Uhlmann 1997) plus the
measurement noise. It is an inlier when ``d2`` is within the chi-square 99% quantile for its 2
degrees of freedom (9.21, ``scipy.stats.chi2.ppf``; Bar-Shalom, Li & Kirubarajan 2001, §7.3
"validation gate"). A (track, group) pair is compatible when at least half of the observations
they share, and at least 3, are inliers: the median observation passes its gate, so a few wrong
joints (a swapped arm, a misplaced wrist) do not reject a person's own track. Its cost is the mean
over the shared observations of ``d2``, an outlier counting as the gate (a truncated Mahalanobis
distance). Groups built for a track (hints) take it when compatible; the rest are assigned by the
Hungarian method (Kuhn 1955; ``scipy.optimize.linear_sum_assignment``) among compatible pairs; a
group still unassigned then goes to a free track whose joints lie within ``gate_m`` (3D median
joint distance) of its triangulation, by the Hungarian method on that distance (the fallback that
keeps a person's identity when its filter diverged or its 2D joints are worse than the noise model).
A compatible pair whose 3D median distance exceeds ``gate_m`` plus three times the track's RMS
joint position standard deviation is rejected (a sanity gate, e.g. on a far person that happens to
project onto another); this gate comes first, and only the pairs it lets through are compared in
the image (with 10 people and 32 cameras, about one pair in ten).

Left/right consistency: for each view and left/right joint pair, when the group's swapped pair fits
the track's predicted pair with less than a quarter of the squared distance of the unswapped one,
the pair is marked swapped (2D detectors confuse the sides of people seen from behind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import chdtri

from fusion._gate_kernels import gate_kernel, mahalanobis2_kernel, unscented_pixels_kernel
from fusion.ukf import SigmaWeights

__all__ = [
    "GATE_D2",
    "Gating",
    "assign_groups",
    "gate_groups",
    "mahalanobis2",
    "predicted_pixels",
    "swap_triangulated",
]

GATE_D2: Final = float(chdtri(2, 0.01))  # chi2.ppf(0.99, 2): scipy.special, not scipy.stats (1 s to import)
"""Squared Mahalanobis gate of one 2D observation: chi-square 99% quantile, 2 degrees of freedom."""
_SWAP_RATIO: Final = 0.25
_MIN_INLIERS: Final = 3
_BIG: Final = 1e9
_W3: Final = SigmaWeights(3)
_W3_MEAN: Final = _W3.Wm  # (7,) computed once (the properties build new arrays on every access)
_W3_COV: Final = _W3.Wc
_W3_SCALE: Final = float(_W3.n + _W3.lam)  # sigma points: mean +- columns of chol(scale * cov)
_LIMITS: Final = np.array([GATE_D2, _SWAP_RATIO, _MIN_INLIERS], dtype=np.float64)  # the gate kernel's thresholds


def predicted_pixels(
    pos: np.ndarray, cov: np.ndarray, projections: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted pixels of Gaussian 3D points in every view (unscented transform, alpha 0.5).

    The loop over points and views is compiled (:mod:`core.jit`,
    :func:`fusion._gate_kernels.unscented_pixels_kernel`).

    Args:
        pos: (B, 3) means, metres, world frame.
        cov: (B, 3, 3) covariances, metres^2.
        projections: (C, 3, 4) matrices, world metres to undistorted pixels.

    Returns:
        zp: (B, C, 2) mean pixels; Sh: (B, C, 3) their covariances [uu, uv, vv], pixels^2;
        front: (B, C) bool, every sigma point in front of the camera.

    Raises:
        numpy.linalg.LinAlgError: a covariance is not positive definite.

    Example:
        >>> P = np.array([[[1000.0, 0, 500, 0], [0, 1000, 500, 0], [0, 0, 1, 0]]])
        >>> zp, Sh, front = predicted_pixels(np.array([[0.0, 0, 4]]), np.eye(3)[None] * 1e-4, P)
        >>> zp.round(3).tolist(), Sh.round(2).tolist(), front.tolist()
        ([[[500.0, 500.0]]], [[[6.25, 0.0, 6.25]]], [[True]])
    """
    B, C = pos.shape[0], projections.shape[0]
    out = np.empty((B, C, 6))
    if not unscented_pixels_kernel(_f64(pos), _f64(cov), _f64(projections), _W3_MEAN, _W3_COV, _W3_SCALE,
                                   np.ones(B, bool), out):  # fmt: skip
        raise np.linalg.LinAlgError("Matrix is not positive definite")
    return out[..., :2].copy(), out[..., 2:5].copy(), out[..., 5] > 0.5


def mahalanobis2(y: np.ndarray, Sh: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances of 2D innovations (a compiled loop, :mod:`core.jit`).

    Args:
        y: (..., 2) innovations, pixels.
        Sh: (..., 3) covariances [uu, uv, vv] of the predicted pixels, pixels^2.
        var: (...) measurement noise variance per coordinate, pixels^2 (added to the diagonal).

    Returns:
        (...) squared distances.

    Example:
        >>> float(mahalanobis2(np.array([3.0, 4.0]), np.array([0.0, 0.0, 0.0]), np.array(1.0)))
        25.0
    """
    parts = (y[..., 0], y[..., 1], Sh[..., 0], Sh[..., 1], Sh[..., 2], np.asarray(var, dtype=np.float64))
    shape = np.broadcast_shapes(*(a.shape for a in parts))
    flat = [_f64(np.broadcast_to(a, shape).reshape(-1)) for a in parts]
    out = np.empty(flat[0].shape)
    mahalanobis2_kernel(*flat, out)
    return out.reshape(shape)


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous float64 array (a copy only where needed): one kernel signature."""
    return np.ascontiguousarray(a, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Gating:
    """The gate's verdict on every (track, group) pair.

    Attributes:
        swap: (T, G, J, C) bool, the group's joint in that view is swapped with its left/right
            partner to match the track.
        inlier: (T, G, J, C) bool, observations within their gate (after swaps).
        cost: (T, G) truncated mean squared Mahalanobis distance (``GATE_D2`` for pairs the 3D gate
            rejects: those are not compared in the image, and ``swap`` and ``inlier`` are False).
        ok: (T, G) bool, compatible pairs.
        dist_m: (T, G) 3D median joint distance, metres (inf with fewer than 3 common joints).
    """

    swap: np.ndarray
    inlier: np.ndarray
    cost: np.ndarray
    ok: np.ndarray
    dist_m: np.ndarray


def gate_groups(
    pos: np.ndarray,
    cov: np.ndarray,
    active: np.ndarray,
    z: np.ndarray,
    var: np.ndarray,
    meas: np.ndarray,
    poses: np.ndarray,
    projections: np.ndarray,
    mirror: np.ndarray,
    gate_m: float,
) -> Gating:
    """Gate every group against every track (see the module docstring).

    One compiled loop (:mod:`core.jit`, :func:`fusion._gate_kernels.gate_kernel`) over the pairs, joints
    and views: the 3D gate, the unscented pixel predictions of the tracks with a pair it lets through,
    the swaps and the distances.

    Args:
        pos: (T, J, 3) tracks' predicted joint positions, metres.
        cov: (T, J, 3, 3) their covariances, metres^2.
        active: (T, J) bool, joints the tracks know.
        z: (G, J, C, 2) groups' 2D joints, undistorted pixels.
        var: (G, J, C) their noise variance per coordinate, pixels^2.
        meas: (G, J, C) bool, observations that may be used.
        poses: (G, J, 4) groups' triangulated poses, metres; conf 0 = missing.
        projections: (C, 3, 4) camera matrices.
        mirror: (J,) int, each joint's left/right partner (itself for central joints).
        gate_m: 3D distance gate, metres.

    Returns:
        :class:`Gating`.

    Raises:
        numpy.linalg.LinAlgError: a track's position covariance is not positive definite (checked when
            some pair passes the 3D gate).
    """
    J = active.shape[1]
    left = np.nonzero(mirror > np.arange(J))[0]
    mirror = np.ascontiguousarray(mirror, dtype=np.int64)
    swap, inlier, cost, ok, dist, pd = gate_kernel(
        _f64(pos), _f64(cov), np.ascontiguousarray(active, dtype=bool), _f64(z), _f64(var),
        np.ascontiguousarray(meas, dtype=bool), _f64(poses), _f64(projections), left, mirror[left], mirror,
        float(gate_m), _LIMITS, _W3_MEAN, _W3_COV, _W3_SCALE,
    )  # fmt: skip
    if not pd:
        raise np.linalg.LinAlgError("Matrix is not positive definite")
    return Gating(swap, inlier, cost, ok, dist)


def assign_groups(
    gating: Gating, track_ids: np.ndarray, hint_ids: np.ndarray, gate_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Assign groups to tracks: hints, Mahalanobis Hungarian, then the 3D fallback.

    Args:
        gating: :func:`gate_groups`' verdict.
        track_ids: (T,) int track ids.
        hint_ids: (G,) int track id each group was built for (0: none).
        gate_m: 3D fallback gate, metres.

    Returns:
        assign: (G,) int64 track index per group (-1: none).
        fallback: (G,) bool, assigned by the 3D fallback.

    Example:
        >>> g = Gating(None, None, np.array([[1.0, 9.0]]), np.array([[True, False]]), np.array([[0.1, 0.3]]))
        >>> [a.tolist() for a in assign_groups(g, np.array([7]), np.array([0, 7]), 0.5)]
        [[0, -1], [False, False]]
    """
    cost, ok, dist = gating.cost, gating.ok, gating.dist_m
    T, G = cost.shape
    assign = np.full(G, -1, np.int64)
    free = np.ones(T, bool)
    index = {int(i): k for k, i in enumerate(np.asarray(track_ids).tolist())}
    for g, h in enumerate(np.asarray(hint_ids).tolist()):
        k = index.get(h)
        if k is not None and free[k] and ok[k, g]:
            assign[g], free[k] = k, False
    fallback = np.zeros(G, bool)
    for stage, matrix in enumerate((np.where(ok, cost, _BIG), np.where(dist <= gate_m, dist, _BIG))):
        rows, cols = np.nonzero(free)[0], np.nonzero(assign < 0)[0]
        if not (rows.size and cols.size):
            break
        sub = matrix[np.ix_(rows, cols)]
        r, c = linear_sum_assignment(sub)
        good = sub[r, c] < _BIG
        assign[cols[c[good]]] = rows[r[good]]
        free[rows[r[good]]] = False
        fallback[cols[c[good]]] = stage == 1
    return assign, fallback


def swap_triangulated(poses: np.ndarray, swap: np.ndarray, meas: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Triangulated poses with the left/right swaps of the gate applied.

    A pair is swapped where every view measuring both of its joints was swapped, and dropped (conf 0)
    where only some were (the triangulation mixed the two sides).

    Args:
        poses: (G, J, 4) triangulated poses [x, y, z, conf], metres.
        swap: (G, J, C) bool, swapped observations (:attr:`Gating.swap` of the assigned tracks).
        meas: (G, J, C) bool, observations that may be used.
        pairs: (K, 2) int (left, right) joint pairs.

    Returns:
        (G, J, 4) new poses.
    """
    L, R = pairs[:, 0], pairs[:, 1]
    n_sw = swap[:, L].sum(axis=-1)  # (G, pairs)
    n_meas = (meas[:, L] & meas[:, R]).sum(axis=-1)
    out = poses.copy()
    full = (n_sw > 0) & (n_sw >= n_meas)
    g, k = np.nonzero(full)
    out[g, L[k]], out[g, R[k]] = poses[g, R[k]], poses[g, L[k]]
    g, k = np.nonzero((n_sw > 0) & ~full)
    out[g, L[k], 3] = out[g, R[k], 3] = 0.0
    return out
