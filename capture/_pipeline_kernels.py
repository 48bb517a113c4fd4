"""Compiled loops of the per-frame reconstruction's glue (:mod:`capture.pipeline`): the padding of
the kept detections into the (C, P, J) layout, the gathering of each group's detections, and the
reprojection error of the published poses.

Plain loops compiled by numba (:mod:`core.jit`): at the node's sizes (a few people, 17 joints, 4 to
32 views) each of these took a dozen numpy operations (concatenate, repeat, cumsum, fancy indexing,
einsum), whose per-call dispatch, not their arithmetic, set the cost. The definitions are those of
:class:`capture.pipeline.FrameReconstructor`'s docstrings; the projections are summed in another
order than ``np.einsum``'s, so reprojection errors agree with the numpy expressions to rounding, the
other outputs exactly (copies and comparisons only).
"""

from __future__ import annotations

import numpy as np

from core.jit import kernel

__all__ = ["gather_members", "pad_detections", "reprojection_errors"]


@kernel
def pad_detections(
    poses: np.ndarray,
    boxes: np.ndarray,
    n: np.ndarray,
    min_box_score: np.float32,
    min_joint_conf: float,
    min_valid_joints: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keep the detections of enough score and confident joints, and pad them per view.

    Args:
        poses: (M, J, 3) float32 [u, v, conf] of all views' detections, view by view (distorted pixels).
        boxes: (M, 5) float32 their boxes; column 4 is the person score.
        n: (C,) int64 detections per view (sum M).
        min_box_score: float32 threshold on the score (compared in float32, as the boxes are).
        min_joint_conf: a joint is confident at or above this confidence (compared in float64).
        min_valid_joints: a detection is kept with at least this many confident joints (and the score).

    Returns:
        pts (C, P, J, 2) float64 pixels and conf (C, P, J) of the kept detections, in their order
        within each view, padded with 0 to P, the most kept in a view; counts (C,) int64 kept per
        view; keep (M,) bool.
    """
    M, J, C = poses.shape[0], poses.shape[1], n.shape[0]
    keep = np.zeros(M, dtype=np.bool_)
    counts = np.zeros(C, dtype=np.int64)
    most = 0
    m = 0
    for c in range(C):
        for _ in range(n[c]):
            if boxes[m, 4] >= min_box_score:
                valid = 0
                for j in range(J):
                    if np.float64(poses[m, j, 2]) >= min_joint_conf:
                        valid += 1
                if valid >= min_valid_joints:
                    keep[m] = True
                    counts[c] += 1
            m += 1
        most = max(most, counts[c])
    pts = np.zeros((C, most, J, 2))
    conf = np.zeros((C, most, J))
    m = 0
    for c in range(C):
        r = 0
        for _ in range(n[c]):
            if keep[m]:
                for j in range(J):
                    pts[c, r, j, 0] = poses[m, j, 0]
                    pts[c, r, j, 1] = poses[m, j, 1]
                    conf[c, r, j] = poses[m, j, 2]
                r += 1
            m += 1
    return pts, conf, counts, keep


@kernel
def gather_members(
    members: np.ndarray, pts: np.ndarray, conf: np.ndarray, n_groups: int, by_view: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's detections, from the padded per-view arrays.

    Args:
        members: (K, 3) int64 (group, view, detection) of every member of the groups.
        pts: (C, P, J, 2) float64 pixels, padded per view.
        conf: (C, P, J) float64 confidences.
        n_groups: G.
        by_view: layout of the outputs: view first (C, G, ...) if True, group first (G, C, ...) if False.

    Returns:
        (C, G, J, 2) or (G, C, J, 2) pixels and (C, G, J) or (G, C, J) confidences; 0 where a view is
        not in a group (a view given twice in a group: its last detection).
    """
    C, J = pts.shape[0], pts.shape[2]
    if by_view:
        obs = np.zeros((C, n_groups, J, 2))
        w = np.zeros((C, n_groups, J))
    else:
        obs = np.zeros((n_groups, C, J, 2))
        w = np.zeros((n_groups, C, J))
    for k in range(members.shape[0]):
        g, c, i = members[k, 0], members[k, 1], members[k, 2]
        a, b = (c, g) if by_view else (g, c)
        for j in range(J):
            obs[a, b, j, 0] = pts[c, i, j, 0]
            obs[a, b, j, 1] = pts[c, i, j, 1]
            w[a, b, j] = conf[c, i, j]
    return obs, w


@kernel
def reprojection_errors(projections: np.ndarray, poses: np.ndarray, used: np.ndarray, obs_px: np.ndarray) -> np.ndarray:
    """Pixel distance between each pose's projected joints and the observations, where used.

    Args:
        projections: (C, 3, 4) float64 camera matrices.
        poses: (P, J, 4) float64 [x, y, z, conf], metres.
        used: (P, C, J) bool observations to measure (only joints of conf > 0 are).
        obs_px: (P, C, J, 2) float64 observed pixels.

    Returns:
        (M,) distances, pixels, in (pose, view, joint) order; the projective depth is floored at 1e-9
        in absolute value (``where(|z| > 1e-9, z, 1e-9)``).
    """
    P, C, J = used.shape[0], used.shape[1], used.shape[2]
    total = 0
    for p in range(P):
        for c in range(C):
            for j in range(J):
                if used[p, c, j] and poses[p, j, 3] > 0:
                    total += 1
    out = np.empty(total)
    k = 0
    for p in range(P):
        for c in range(C):
            for j in range(J):
                if used[p, c, j] and poses[p, j, 3] > 0:
                    x, y, z = poses[p, j, 0], poses[p, j, 1], poses[p, j, 2]
                    q = projections[c]
                    u = q[0, 0] * x + q[0, 1] * y + q[0, 2] * z + q[0, 3]
                    v = q[1, 0] * x + q[1, 1] * y + q[1, 2] * z + q[1, 3]
                    s = q[2, 0] * x + q[2, 1] * y + q[2, 2] * z + q[2, 3]
                    if not abs(s) > 1e-9:
                        s = 1e-9
                    du = u / s - obs_px[p, c, j, 0]
                    dv = v / s - obs_px[p, c, j, 1]
                    out[k] = np.sqrt(du * du + dv * dv)
                    k += 1
    return out
