"""Track-driven cross-view association: live 3D tracks claim their 2D detections in every view first.

Cross-view tracking (Chen et al., "Cross-View Tracking for Multi-Human 3D Pose Estimation at over
100 FPS", CVPR 2020): each live track's predicted 3D pose is projected into every view and claims a
detection there by the Hungarian method (Kuhn 1955) on the median 2D joint distance, gated per view
and track by a distance in metres at the track's depth. A track claimed in two views or more is a
group; a track claimed in one view only releases its detection (it may still update the track
alone). Only the detections no track claimed are grouped across views by a cross-view matcher
(epipolar geometry today, :class:`matching.epipolar.EpipolarMatcher`), which removes the epipolar
ambiguity of people of one height on one epipolar plane once they are tracked.

All views are handled in one batch: detections are padded to (C, P, J), the tracks projected into
every view at once, and the per-view assignments solved together (a view whose tracks' nearest
detections are all different needs no Hungarian search: that assignment is optimal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.config import MatchingConfig
from core.errors import ShapeError
from core.numeric import masked_median, xy_first
from matching.tracks import assign_detections_to_tracks
from matching.unflip import unflip_xy

__all__ = ["Association", "CrossViewMatcher", "TrackDrivenAssociator", "claim_detections", "project_tracks"]

Group = tuple[tuple[int, int], ...]


class CrossViewMatcher(Protocol):
    """What groups the detections no track claimed (e.g. :class:`matching.epipolar.EpipolarMatcher`)."""

    def match(self, points_px: list[np.ndarray], conf: list[np.ndarray], *args, **kwargs) -> list[Group]:
        """Per view (P_c, J, 2) pixels and (P_c, J) confidences -> groups of (view, detection)."""
        ...


def project_tracks(
    P: np.ndarray, focal_px: np.ndarray, preds: np.ndarray, gate_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project T predicted poses into C views, with each track's gate in pixels per view.

    Args:
        P: (C, 3, 4) projection matrices (undistorted pixels).
        focal_px: (C,) focal lengths, pixels.
        preds: (T, J, 4) predicted poses [x, y, z, conf], metres, world frame (conf 0: unknown).
        gate_m: gate in metres at the track's depth.

    Returns:
        uv: (C, T, J, 2) projected joints, pixels.
        valid: (C, T, J) bool, joints known and more than 0.1 m in front of the camera.
        gates: (C, T) gates, pixels (``gate_m`` times focal over the mean depth of the valid joints;
        0 where none is valid).
    """
    xy, valid, gates = _project(P, focal_px, preds, gate_m)
    return np.moveaxis(xy, 0, -1), valid, gates


def _project(
    P: np.ndarray, focal_px: np.ndarray, preds: np.ndarray, gate_m: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`project_tracks` with the pixels coordinate-first: xy (2, C, T, J) contiguous, so that the
    per-joint arithmetic downstream runs on contiguous (J,) rows (numpy is slow on a trailing axis of 2)."""
    T, J = preds.shape[:2]
    C = P.shape[0]
    rows = P.reshape(3 * C, 4)
    proj = (rows[:, :3] @ preds[..., :3].reshape(T * J, 3).T + rows[:, 3:]).reshape(C, 3, T, J)
    depth = proj[:, 2]  # (C, T, J)
    valid = (preds[..., 3] > 0)[None] & (depth > 0.1)  # (C, T, J)
    xy = proj[:, :2] / np.where(valid, depth, 1.0)[:, None]  # (C, 2, T, J)
    n_valid = valid.sum(axis=2)  # (C, T)
    mean_depth = np.where(valid, depth, 0.0).sum(axis=2) / np.maximum(n_valid, 1)
    gates = np.where(n_valid > 0, gate_m * focal_px[:, None] / np.maximum(mean_depth, 1e-3), 0.0)
    return xy.transpose(1, 0, 2, 3).copy(), valid, gates


def claim_detections(
    uv: np.ndarray,
    valid: np.ndarray,
    gates: np.ndarray,
    pts: np.ndarray,
    conf: np.ndarray,
    counts: np.ndarray,
    min_conf: float = 0.3,
    min_common: int = 5,
) -> np.ndarray:
    """Each view's one-to-one assignment of detections to projected tracks, all views at once.

    The cost is :func:`matching.tracks.joint_distance_matrix_2d` (median pixel distance over joints
    known in the track and confident in the detection), the assignment that of
    :func:`matching.tracks.assign_detections_to_tracks` (Hungarian within the gates); a view where
    the tracks' nearest admissible detections are all different takes them directly (the optimum).
    Pairs whose joint boxes are further apart than the gate are not measured (they cannot be within
    it), so a frame costs about the number of plausible pairs, not C T P.

    Args:
        uv: (C, T, J, 2) projected tracks, pixels (:func:`project_tracks`).
        valid: (C, T, J) bool, known projected joints.
        gates: (C, T) largest accepted cost per view and track, pixels.
        pts: (C, P, J, 2) detections, padded to P per view, pixels.
        conf: (C, P, J) their confidences (padding 0).
        counts: (C,) real detections per view.
        min_conf: detected joints below this confidence are ignored.
        min_common: pairs with fewer usable joints cannot be assigned.

    Returns:
        (C, P) int64 track index of each detection, -1 where unclaimed (and for padding).

    Raises:
        ShapeError: inconsistent shapes.
    """
    C, T = uv.shape[:2]
    if pts.shape[0] != C or pts.shape[2:] != uv.shape[2:] or conf.shape != pts.shape[:3] or gates.shape != (C, T):
        raise ShapeError(f"inconsistent shapes: uv {uv.shape}, pts {pts.shape}, conf {conf.shape}, gates {gates.shape}")
    return _claim(xy_first(uv), valid, gates, xy_first(pts), conf, counts, min_conf, min_common)


def _claim(
    uv: np.ndarray,
    valid: np.ndarray,
    gates: np.ndarray,
    pts: np.ndarray,
    conf: np.ndarray,
    counts: np.ndarray,
    min_conf: float,
    min_common: int,
) -> np.ndarray:
    """:func:`claim_detections` with coordinate-first pixels: ``uv`` (2, C, T, J), ``pts`` (2, C, P, J)."""
    C, T, J = valid.shape
    P = pts.shape[2]
    claimed = np.full((C, P), -1, dtype=np.int64)
    if T == 0 or P == 0:
        return claimed
    usable = conf >= min_conf  # (C, P, J)
    # A median distance within the gate needs a joint within it, hence boxes (of the known track joints
    # and the usable detected joints) no further apart: only such pairs are measured, the rest cannot
    # be claimed whatever their distance.
    t_lo, t_hi = _boxes(uv, valid)  # (2, C, T)
    d_lo, d_hi = _boxes(pts, usable)  # (2, C, P)
    gap = np.maximum(d_lo[:, :, None] - t_hi[..., None], t_lo[..., None] - d_hi[:, :, None])  # (2, C, T, P)
    near = gap <= gates[:, :, None]
    c_i, t_i, p_i = np.nonzero(near[0] & near[1])
    cost = np.full((C, T, P), np.inf)
    if c_i.size:
        # Gathered as contiguous (J,) rows of x and y.
        a, b = c_i * T + t_i, c_i * P + p_i
        ut, ud = uv.reshape(2, -1, J), pts.reshape(2, -1, J)
        dx = ut[0, a] - ud[0, b]
        dy = ut[1, a] - ud[1, b]
        both = valid.reshape(-1, J)[a] & usable.reshape(-1, J)[b]  # (M, J)
        cost[c_i, t_i, p_i] = masked_median(np.hypot(dx, dy), both, min_common)
    allowed = cost <= gates[:, :, None]  # the gates are finite
    nearest = np.where(allowed, cost, np.inf).argmin(axis=2)  # (C, T)
    has = allowed.any(axis=2)
    hits = np.bincount((np.arange(C)[:, None] * P + nearest)[has], minlength=C * P).reshape(C, P)
    # Distinct nearest detections: every track that can claim one gets its nearest, which is the optimum
    # (no assignment claims more, nor at a lower cost); otherwise the view's Hungarian assignment.
    direct = hits.max(axis=1) <= 1
    c_idx, t_idx = np.nonzero(has & direct[:, None])
    claimed[c_idx, nearest[c_idx, t_idx]] = t_idx
    for c in np.nonzero(~direct & (counts > 0))[0]:
        n = int(counts[c])
        claimed[c, :n] = assign_detections_to_tracks(cost[c, :, :n], gates[c])
    return claimed


def _boxes(xy: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes of the masked joints: (2, C, N, J) pixels (x then y), (C, N, J) bool -> lower and
    upper corners, each (2, C, N) (+-1e300 where no joint is masked in). Reduced over the contiguous
    last axis (J): numpy reduces a middle axis of length J over a trailing axis of 2 very slowly."""
    big = np.float64(1e300)
    return np.where(mask, xy, big).min(axis=-1), np.where(mask, xy, -big).max(axis=-1)


@dataclass(frozen=True, slots=True)
class Association:
    """A frame's association.

    Attributes:
        groups: per person, its (view, detection) pairs (sorted by view).
        hints: per group, the track id it was built for (0: new person).
        singles: (track id, predicted (J, 4) pose, view, detection) of tracks claimed in one view only
            whose detection no group took.
        n_unflipped: left/right joint pairs swapped back in the claimed detections.
    """

    groups: list[Group]
    hints: list[int]
    singles: list[tuple[int, np.ndarray, int, int]]
    n_unflipped: int


class TrackDrivenAssociator:
    """Track claims first, then a cross-view matcher for the rest (Chen et al. 2020).

    Args:
        P: (C, 3, 4) projection matrices of the rig (undistorted pixels).
        focal_px: (C,) focal lengths, pixels.
        left, right: (K,) joint indices of the skeleton's left/right pairs.
        config: the matching thresholds (``track_gate_m``, ``min_joint_conf``, ``min_common_joints``).
        matcher: groups the unclaimed detections; its ``match(points_px, conf)`` returns groups of
            (view, detection), and it is given ``descriptors=`` when descriptors are passed.
    """

    def __init__(
        self,
        P: np.ndarray,
        focal_px: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        config: MatchingConfig,
        matcher: CrossViewMatcher,
    ):
        self.P, self.focal_px = P, focal_px
        self.left, self.right = left, right
        self.config = config
        self.matcher = matcher

    def associate(
        self,
        pts: np.ndarray,
        conf: np.ndarray,
        counts: np.ndarray,
        track_ids: np.ndarray,
        preds: np.ndarray,
        lifted: list | None = None,
        descriptors: list[np.ndarray | None] | None = None,
    ) -> Association:
        """Group a frame's detections per person.

        Live tracks claim detections in every view first; a track claimed in fewer than 2 views
        releases its detection. The remaining detections are grouped by the matcher. A detection of
        an RGB-D view (``lifted[c]`` not None) left in no group and claimed by no track is a group of
        its own. Claimed detections get their left/right swaps undone (:func:`matching.unflip.unflip_claimed`).

        Args:
            pts: (C, P, J, 2) detections padded to P per view, undistorted pixels (unflipped in place).
            conf: (C, P, J) their confidences (padding 0; unflipped in place).
            counts: (C,) real detections per view.
            track_ids: (T,) live track ids.
            preds: (T, J, 4) their predicted poses at the frame time, metres.
            lifted: per view, an RGB-D view's lifted joints and covariances (swapped alike), or None.
            descriptors: per view, (P_c, D) appearance descriptors of its detections, or None; the
                unclaimed ones go to the matcher.

        Returns:
            The frame's :class:`Association`.
        """
        C, m = len(counts), self.config
        lifted = lifted or [None] * C
        claimed = np.full(pts.shape[:2], -1, dtype=np.int64)
        groups: list[Group] = []
        hints: list[int] = []
        singles: list[tuple[int, np.ndarray, int, int]] = []
        n_unflipped = 0
        if len(track_ids):
            uv, valid, gates = _project(self.P, self.focal_px, preds, m.track_gate_m)  # uv (2, C, T, J)
            pts_xy = xy_first(pts)  # (2, C, P, J)
            claimed = _claim(uv, valid, gates, pts_xy, conf, counts, m.min_joint_conf, m.min_common_joints)
            n_unflipped = unflip_xy(pts, conf, claimed, pts_xy, uv, valid, self.left, self.right, lifted)
            c_idx, i_idx = np.nonzero(claimed >= 0)  # by view, then detection
            t_idx = claimed[c_idx, i_idx]
            order = np.argsort(t_idx, kind="stable")
            members = list(zip(c_idx[order].tolist(), i_idx[order].tolist(), strict=True))  # by track, then view
            n_views = np.bincount(t_idx, minlength=len(track_ids)).tolist()
            end = 0
            for t, (tid, n) in enumerate(zip(track_ids.tolist(), n_views, strict=True)):
                start, end = end, end + n
                if n >= 2:
                    groups.append(tuple(members[start:end]))
                    hints.append(tid)
                elif n == 1:
                    c, i = members[start]
                    claimed[c, i] = -1
                    singles.append((tid, preds[t], c, i))
        left_over = (claimed < 0) & (np.arange(claimed.shape[1]) < counts[:, None])  # (C, P) unclaimed detections
        if np.count_nonzero(left_over.any(axis=1)) >= 2:  # grouping across views needs two views with leftovers
            pool = [np.nonzero(row)[0] for row in left_over]
            extra = {}
            if descriptors is not None:
                extra["descriptors"] = [None if d is None else d[idx] for d, idx in zip(descriptors, pool, strict=True)]
            for g in self.matcher.match(
                [pts[c, idx] for c, idx in enumerate(pool)], [conf[c, idx] for c, idx in enumerate(pool)], **extra
            ):
                if len(g) >= 2:
                    groups.append(tuple((c, int(pool[c][i])) for c, i in g))
                    hints.append(0)
        rgbd = any(lift is not None for lift in lifted)
        if singles or rgbd:
            used = {mem for g in groups for mem in g}
            singles = [s for s in singles if (s[2], s[3]) not in used]
        if rgbd:
            taken = used | {(c, i) for _, _, c, i in singles}
            for c, lift in enumerate(lifted):
                if lift is not None:
                    alone = [((c, i),) for i in range(int(counts[c])) if (c, i) not in taken]
                    groups += alone
                    hints += [0] * len(alone)
        return Association(groups, hints, singles, n_unflipped)
