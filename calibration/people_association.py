"""Observations for calibration from people: cross-view association, triangulation, tracks.

The steps that turn per-camera 2D poses into the input of the people bundle adjustment
(:mod:`calibration.people`): :func:`associate_people` groups one frame's detections of the same
person by epipolar distances under a possibly rough rig, greedily, at most one detection per camera,
all pairs agreeing (Hartley & Zisserman §9.2; the simple end of Dong et al. 2019, "Fast and Robust
Multi-Person 3D Pose Estimation from Multiple Views"); :func:`triangulate_weighted` is a
confidence-weighted DLT (Hartley & Zisserman §12.2); :func:`link_tracks` links people over frames
by the nearest 3D centroid (Hungarian, gated); :func:`build_observations` chains them over a take.
The bundle adjustment itself is :mod:`calibration.people_bundle`; re-posing a camera the association
could not place is :mod:`calibration.people_resection`.

Convention: poses are (P, J, 3) [u_px, v_px, conf] in distorted pixels, a missing joint has conf 0;
a group is a tuple of (cam_idx, det_idx) sorted by cam_idx (the ``PersonGroup`` of the style guide).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from calibration.camera import CameraRig, fundamental_matrix
from core.errors import ShapeError

__all__ = [
    "PeopleObservations",
    "associate_people",
    "build_observations",
    "epipolar_costs",
    "fundamental_matrices",
    "link_tracks",
    "triangulate_weighted",
    "undistort_poses",
]

Group = tuple[tuple[int, int], ...]


def undistort_poses(rig: CameraRig, poses: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Undistorted copies of one frame's per-camera poses (``Camera.undistort_px``), conf kept.

    Args:
        rig: the cameras, in the order of ``poses``.
        poses: per camera, (P_c, J, 3) [u_px, v_px, conf] distorted pixels.

    Returns:
        Per camera, (P_c, J, 3) float64, undistorted pixels (same K); missing joints stay 0.

    Raises:
        ShapeError: not one pose array per camera, or an array that is not (P, J, 3).
    """
    if len(poses) != len(rig):
        raise ShapeError(f"need one pose array per camera ({len(rig)}); got {len(poses)}")
    out = []
    for cam, p in zip(rig, poses, strict=True):
        p = np.asarray(p, dtype=np.float64)
        if p.ndim != 3 or p.shape[2] != 3:
            raise ShapeError(f"poses of camera {cam.name!r} must be (P, J, 3); got {p.shape}")
        u = p.copy()
        seen = p[..., 2] > 0
        if seen.any():
            u[seen, :2] = cam.undistort_px(p[seen, :2])
        out.append(u)
    return out


def fundamental_matrices(rig: CameraRig) -> np.ndarray:
    """All pairwise fundamental matrices of a rig: (C, C, 3, 3), ``x_b^T F[a, b] x_a = 0``, zero diagonal.

    See :func:`calibration.camera.fundamental_matrix` (undistorted pixels).
    """
    zero = np.zeros((3, 3))
    return np.array([[zero if a is b else fundamental_matrix(a, b) for b in rig] for a in rig]).reshape(
        len(rig), len(rig), 3, 3
    )


def epipolar_costs(
    F_ab: np.ndarray, poses_a: np.ndarray, poses_b: np.ndarray, min_conf: float, min_joints: int
) -> np.ndarray:
    """Median symmetric epipolar distance between every detection of view a and every one of view b.

    For each joint seen (conf >= ``min_conf``) in both detections, the distance of each point to the
    epipolar line of the other (Hartley & Zisserman §9.2), averaged over the two directions; the
    cost is the median over those joints, robust to a few wrong keypoints.

    Args:
        F_ab: (3, 3) fundamental matrix with ``x_b^T F_ab x_a = 0``.
        poses_a: (P_a, J, 3) undistorted [u_px, v_px, conf] of view a.
        poses_b: (P_b, J, 3) undistorted [u_px, v_px, conf] of view b.
        min_conf: joints below this confidence are not used.
        min_joints: pairs with fewer common joints get an infinite cost.

    Returns:
        (P_a, P_b) costs, pixels (``inf`` where too few joints are common).

    Example:
        >>> F = np.array([[0.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # pure x translation: same rows
        >>> a = np.array([[[10.0, 5.0, 1.0], [20.0, 7.0, 1.0], [30.0, 9.0, 1.0]]])
        >>> b = a + [5.0, 2.0, 0.0]
        >>> epipolar_costs(F, a, b, 0.5, 3).round(6).tolist()
        [[2.0]]
    """
    xa = np.concatenate([poses_a[..., :2], np.ones(poses_a.shape[:2] + (1,))], axis=-1)  # (Pa, J, 3)
    xb = np.concatenate([poses_b[..., :2], np.ones(poses_b.shape[:2] + (1,))], axis=-1)
    lb = xa @ F_ab.T  # lines in b of points of a, (Pa, J, 3)
    la = xb @ F_ab  # lines in a of points of b, (Pb, J, 3)
    num = np.abs(np.einsum("qjk,pjk->pqj", xb, lb))  # (Pa, Pb, J): x_b . l_b == x_a . l_a
    d_b = num / np.maximum(np.linalg.norm(lb[..., :2], axis=-1), 1e-12)[:, None, :]
    d_a = num / np.maximum(np.linalg.norm(la[..., :2], axis=-1), 1e-12)[None, :, :]
    both = (poses_a[:, None, :, 2] >= min_conf) & (poses_b[None, :, :, 2] >= min_conf)
    d = np.sort(np.where(both, 0.5 * (d_a + d_b), np.inf), axis=-1)
    k = both.sum(axis=-1, keepdims=True)
    lo = np.take_along_axis(d, np.maximum(k - 1, 0) // 2, axis=-1)[..., 0]
    hi = np.take_along_axis(d, np.minimum(k // 2, d.shape[-1] - 1), axis=-1)[..., 0]
    return np.where(k[..., 0] >= max(min_joints, 1), 0.5 * (lo + hi), np.inf)


def associate_people(
    F: np.ndarray,
    poses: Sequence[np.ndarray],
    threshold_px: float,
    min_conf: float = 0.3,
    min_joints: int = 5,
) -> list[Group]:
    """Group one frame's detections across views by epipolar consistency.

    Every cross-view pair of detections with a cost (:func:`epipolar_costs`) below ``threshold_px``
    is an edge; edges are taken cheapest first and merge their two groups when the groups share no
    camera and the mean cost over all their cross pairs with a finite cost stays below the
    threshold. Groups of a single detection are dropped.

    Args:
        F: (C, C, 3, 3) fundamental matrices (:func:`fundamental_matrices`).
        poses: per camera, (P_c, J, 3) UNDISTORTED [u_px, v_px, conf] (:func:`undistort_poses`).
        threshold_px: largest median epipolar distance of a pair of the same person, pixels. With
            rough extrinsics make it generous (the error of a few degrees is f * angle pixels).
        min_conf: joints below this confidence are ignored.
        min_joints: fewest joints two detections must share to be compared.

    Returns:
        Groups of at least two views, each a tuple of (cam_idx, det_idx) sorted by cam_idx; no
        detection is in two groups. Order: by the cheapest edge that formed the group.

    Raises:
        ShapeError: ``F`` is not (C, C, 3, 3) for the C pose arrays.
    """
    n_cams = len(poses)
    if F.shape != (n_cams, n_cams, 3, 3):
        raise ShapeError(f"F must be ({n_cams}, {n_cams}, 3, 3) for {n_cams} views; got {F.shape}")
    costs: dict[tuple[int, int], np.ndarray] = {}
    edges = []
    for a in range(n_cams):
        for b in range(a + 1, n_cams):
            if len(poses[a]) == 0 or len(poses[b]) == 0:
                continue
            c = epipolar_costs(F[a, b], poses[a], poses[b], min_conf, min_joints)
            costs[a, b] = c
            for p, q in zip(*np.nonzero(c < threshold_px), strict=True):
                edges.append((float(c[p, q]), a, int(p), b, int(q)))
    edges.sort()
    group_of: dict[tuple[int, int], int] = {}
    groups: list[dict[int, int]] = []
    for _, a, p, b, q in edges:
        ga, gb = group_of.get((a, p)), group_of.get((b, q))
        if ga is not None and ga == gb:
            continue
        members_a = groups[ga] if ga is not None else {a: p}
        members_b = groups[gb] if gb is not None else {b: q}
        if members_a.keys() & members_b.keys():
            continue
        cross = [
            costs[min(i, k), max(i, k)][(di, dk) if i < k else (dk, di)]
            for i, di in members_a.items()
            for k, dk in members_b.items()
        ]
        cross = [c for c in cross if np.isfinite(c)]
        if not cross or float(np.mean(cross)) >= threshold_px:
            continue
        merged = {**members_a, **members_b}
        gid = ga if ga is not None else gb
        if gid is None:
            groups.append(merged)
            gid = len(groups) - 1
        else:
            groups[gid] = merged
            if ga is not None and gb is not None:
                groups[gb] = {}  # absorbed into ga
        for cam, det in merged.items():
            group_of[cam, det] = gid
    return [tuple(sorted(g.items())) for g in groups if len(g) >= 2]


def triangulate_weighted(P: np.ndarray, uv: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Confidence-weighted DLT of N points seen by up to C views (Hartley & Zisserman §12.2).

    Each view contributes the rows ``w (u p3 - p1)`` and ``w (v p3 - p2)`` (scaled by the largest
    entry of the P's for conditioning); the point is the right singular vector of the smallest
    singular value.

    Args:
        P: (C, 3, 4) projection matrices for undistorted pixels.
        uv: (C, N, 2) undistorted pixels.
        w: (C, N) weights (2D confidence); 0 marks a view that does not see the point.

    Returns:
        (N, 3) points, world frame (the frame of ``P``); rows with fewer than two weighted views
        are zeros and must not be read.

    Example:
        >>> K = np.diag([1000.0, 1000.0, 1.0])
        >>> P = np.stack([K @ np.hstack([np.eye(3), [[tx], [0], [4]]]) for tx in (0.0, -1.0)])
        >>> X = np.array([[0.2, -0.1, 0.5]])
        >>> x = np.einsum("cij,nj->cni", P, np.append(X, [[1.0]], axis=1))
        >>> triangulate_weighted(P, x[..., :2] / x[..., 2:], np.ones((2, 1))).round(9).tolist()
        [[0.2, -0.1, 0.5]]
    """
    n_cams, n = w.shape
    if P.shape != (n_cams, 3, 4) or uv.shape != (n_cams, n, 2):
        raise ShapeError(f"P (C, 3, 4), uv (C, N, 2), w (C, N) must agree; got {P.shape}, {uv.shape}, {w.shape}")
    scale = 1.0 / max(float(np.abs(P[:, :2, :3]).max()), 1e-12)
    rows_u = uv[..., 0:1] * P[:, None, 2, :] - P[:, None, 0, :]  # (C, N, 4)
    rows_v = uv[..., 1:2] * P[:, None, 2, :] - P[:, None, 1, :]
    A = np.concatenate([rows_u, rows_v], axis=0) * np.concatenate([w, w], axis=0)[..., None] * scale
    A = A.transpose(1, 0, 2)  # (N, 2C, 4)
    out = np.zeros((n, 3))
    ok = (w > 0).sum(axis=0) >= 2
    if ok.any():
        _, _, vt = np.linalg.svd(A[ok], full_matrices=False)
        X = vt[:, -1, :]
        h = np.where(np.abs(X[:, 3]) < 1e-12, 1e-12, X[:, 3])
        out[ok] = X[:, :3] / h[:, None]
    return out


def link_tracks(frames: Sequence[np.ndarray], gate_m: float, max_gap: int = 3) -> list[np.ndarray]:
    """Identities over frames: nearest 3D person between consecutive frames (Hungarian, gated).

    A person of frame k continues the track whose last position (seen at most ``max_gap`` frames
    earlier) is nearest, when closer than ``gate_m`` (Kuhn 1955 assignment on centroid distances);
    otherwise it starts a new track.

    Args:
        frames: per frame, (P_k, 3) person centroids, metres (world frame).
        gate_m: largest centroid jump between linked frames, metres.
        max_gap: frames a track may go unseen and still be continued.

    Returns:
        Per frame, (P_k,) int64 track ids, numbered from 0 in order of first appearance.

    Example:
        >>> ids = link_tracks([np.array([[0.0, 0, 0], [2.0, 0, 0]]), np.array([[2.1, 0, 0], [0.1, 0, 0]])], 0.5)
        >>> [i.tolist() for i in ids]
        [[0, 1], [1, 0]]
    """
    last: dict[int, tuple[np.ndarray, int]] = {}  # track id -> (position, frame last seen)
    out = []
    for k, cents in enumerate(frames):
        cents = np.asarray(cents, dtype=np.float64).reshape(-1, 3)
        live = [tid for tid, (_, seen) in last.items() if k - seen <= max_gap]
        ids = np.full(len(cents), -1, dtype=np.int64)
        if live and len(cents):
            d = np.linalg.norm(cents[:, None, :] - np.array([last[t][0] for t in live])[None], axis=-1)
            for r, c in zip(*linear_sum_assignment(np.where(d < gate_m, d, 1e6)), strict=True):
                ids[r] = live[c] if d[r, c] < gate_m else -1
        for r in range(len(cents)):
            if ids[r] < 0:
                ids[r] = len(last)
            last[int(ids[r])] = (cents[r], k)
        out.append(ids)
    return out


@dataclass(frozen=True, slots=True)
class PeopleObservations:
    """Everything the people bundle adjustment needs, built by :func:`build_observations`.

    Attributes:
        cam_idx: (M,) int64 observing camera of each 2D observation.
        point_idx: (M,) int64 observed 3D joint.
        uv_px: (M, 2) observed distorted pixels.
        conf: (M,) 2D confidence of the observation.
        points: (N, 3) initial 3D joints (weighted DLT under the rig used), metres.
        point_joint: (N,) int64 skeleton joint index of each 3D joint.
        point_group: (N,) int64 person-frame (group) of each 3D joint.
        group_frame: (G,) int64 index (into the frames given) of each group's frame.
        group_track: (G,) int64 track id of each group.
        group_views: (G,) int64 number of cameras in each group.
        bone_a: (B,) int64 first 3D joint of each bone observation.
        bone_b: (B,) int64 second 3D joint.
        bone_var: (B,) int64 bone-length unknown (one per track and limb) it belongs to.
        bone_init: (L,) initial bone lengths (median over the track), metres.
    """

    cam_idx: np.ndarray
    point_idx: np.ndarray
    uv_px: np.ndarray
    conf: np.ndarray
    points: np.ndarray
    point_joint: np.ndarray
    point_group: np.ndarray
    group_frame: np.ndarray
    group_track: np.ndarray
    group_views: np.ndarray
    bone_a: np.ndarray
    bone_b: np.ndarray
    bone_var: np.ndarray
    bone_init: np.ndarray

    @property
    def n_groups(self) -> int:
        """Number of person-frames G."""
        return int(self.group_frame.shape[0])

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks."""
        return int(np.unique(self.group_track).size)


def build_observations(
    rig: CameraRig,
    frames: Sequence[Sequence[np.ndarray]],
    threshold_px: float,
    limbs: Sequence[tuple[int, int]],
    min_conf: float = 0.3,
    min_joints: int = 5,
    track_gate_m: float = 0.5,
) -> PeopleObservations:
    """Associate, triangulate and track people over frames: the input of the people bundle adjustment.

    Per frame: :func:`associate_people` under ``rig`` (threshold ``threshold_px``), then each
    group's joints seen with conf >= ``min_conf`` by two of its views or more are triangulated
    (:func:`triangulate_weighted`); joints behind an observing camera are dropped, and so are groups
    left with fewer than ``min_joints`` joints. Groups are linked over frames by
    :func:`link_tracks` on their joints' centroids; each (track, limb) seen in two frames or more
    gets a bone-length unknown.

    Args:
        rig: cameras in the order of each frame's pose arrays.
        frames: per frame, per camera, (P, J, 3) [u_px, v_px, conf] distorted pixels.
        threshold_px: association threshold, median epipolar distance, pixels.
        limbs: joint-index pairs whose lengths are kept constant per track.
        min_conf: 2D confidence below which a joint is not used.
        min_joints: fewest common joints for association and fewest 3D joints per group.
        track_gate_m: largest centroid jump between consecutive frames of a track, metres.

    Returns:
        The observations (possibly empty: M = N = G = 0).

    Raises:
        ShapeError: a frame without one (P, J, 3) array per camera.
    """
    F = fundamental_matrices(rig)
    P_all = rig.projections()
    cam_l, pt_l, uv_l, conf_l, X_l, joint_l, pgroup_l = [], [], [], [], [], [], []
    g_frame, g_views, g_cent = [], [], []
    n_points = 0
    for k, raw in enumerate(frames):
        und = undistort_poses(rig, raw)
        for group in associate_people(F, und, threshold_px, min_conf, min_joints):
            cams = np.array([c for c, _ in group])
            u = np.stack([und[c][d] for c, d in group])  # (V, J, 3)
            r = np.stack([np.asarray(raw[c][d], dtype=np.float64) for c, d in group])
            w = np.where(u[..., 2] >= min_conf, u[..., 2], 0.0)
            X = triangulate_weighted(P_all[cams], u[..., :2], w)
            depth = P_all[cams][:, 2, :3] @ X.T + P_all[cams][:, 2, 3:]  # (V, J): P's 3rd row is [R_z | t_z]
            ok = ((w > 0).sum(axis=0) >= 2) & ~((w > 0) & (depth <= 0)).any(axis=0)
            if ok.sum() < min_joints:
                continue
            gid = len(g_frame)
            joints = np.nonzero(ok)[0]
            idx = n_points + np.arange(len(joints))
            for v in range(len(cams)):
                seen = w[v, joints] > 0
                cam_l.append(np.full(seen.sum(), cams[v]))
                pt_l.append(idx[seen])
                uv_l.append(r[v, joints[seen], :2])
                conf_l.append(w[v, joints[seen]])
            X_l.append(X[joints])
            joint_l.append(joints)
            pgroup_l.append(np.full(len(joints), gid))
            g_frame.append(k)
            g_views.append(len(cams))
            g_cent.append(X[joints].mean(axis=0))
            n_points += len(joints)
    g_frame_a = np.array(g_frame, dtype=np.int64)
    per_frame = [np.reshape([g_cent[g] for g in np.nonzero(g_frame_a == k)[0]], (-1, 3)) for k in range(len(frames))]
    g_track = np.concatenate([np.zeros(0, np.int64), *link_tracks(per_frame, track_gate_m)])  # groups are frame-ordered

    def cat(parts: list, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)

    points = cat(X_l, np.float64, (0, 3))
    point_joint = cat(joint_l, np.int64, (0,))
    point_group = cat(pgroup_l, np.int64, (0,))
    bone_a, bone_b, bone_var, bone_init = _bones(points, point_joint, point_group, g_track, limbs)
    return PeopleObservations(
        cam_idx=cat(cam_l, np.int64, (0,)),
        point_idx=cat(pt_l, np.int64, (0,)),
        uv_px=cat(uv_l, np.float64, (0, 2)),
        conf=cat(conf_l, np.float64, (0,)),
        points=points,
        point_joint=point_joint,
        point_group=point_group,
        group_frame=g_frame_a,
        group_track=g_track,
        group_views=np.array(g_views, dtype=np.int64),
        bone_a=bone_a,
        bone_b=bone_b,
        bone_var=bone_var,
        bone_init=bone_init,
    )


def _bones(
    points: np.ndarray, point_joint: np.ndarray, point_group: np.ndarray, group_track: np.ndarray, limbs: Sequence
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bone observations (point pairs) and one length unknown per (track, limb) seen twice or more."""
    n_joints = max([int(point_joint.max(initial=-1))] + [max(limb) for limb in limbs]) + 1
    table = np.full((len(group_track), n_joints), -1)
    table[point_group, point_joint] = np.arange(len(points))
    ends = np.array(limbs, dtype=np.int64).reshape(-1, 2)
    a, b = table[:, ends[:, 0]], table[:, ends[:, 1]]  # (G, limbs)
    g, li = np.nonzero((a >= 0) & (b >= 0))
    _, var, counts = np.unique(group_track[g] * len(ends) + li, return_inverse=True, return_counts=True)
    keep = counts[var] >= 2
    _, var = np.unique(var[keep], return_inverse=True)
    a, b = a[g[keep], li[keep]], b[g[keep], li[keep]]
    lengths = np.linalg.norm(points[a] - points[b], axis=1)
    init = np.array([np.median(lengths[var == v]) for v in range(int(var.max(initial=-1)) + 1)])
    return a, b, var.astype(np.int64), init
