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
detections are all different needs no Hungarian search: that assignment is optimal). The loops over
views, tracks, detections and joints are compiled (:mod:`core.jit`, :mod:`matching._claim_kernels`);
the Hungarian search, where needed, is scipy's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.config import MatchingConfig
from core.errors import ShapeError
from matching._claim_kernels import claim_kernel, group_kernel, project_kernel
from matching.tracks import assign_detections_to_tracks
from matching.unflip import unflip_pixels

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
        All contiguous; one compiled loop (:func:`matching._claim_kernels.project_kernel`).
    """
    return project_kernel(_f64(P), _f64(focal_px), _f64(preds), float(gate_m))


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
    Pairs whose joint boxes are further apart than the gate, or with fewer than half their joints
    within it, are not measured (their median cannot be within it), so a frame costs about the
    number of plausible pairs, not C T P.

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
    return _claim(_f64(uv), valid, _f64(gates), _f64(pts), conf, counts, min_conf, min_common)


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
    """:func:`claim_detections` (no shape checks) with ``uv`` (C, T, J, 2), ``gates`` and ``pts`` (C, P, J, 2)
    contiguous float64. Costs and direct claims in one compiled loop over all views
    (:func:`matching._claim_kernels.claim_kernel`); a view whose tracks' nearest detections collide gets
    the Hungarian assignment (:func:`matching.tracks.assign_detections_to_tracks`) on those costs."""
    claimed, cost, hungarian = claim_kernel(
        uv,
        np.ascontiguousarray(valid, dtype=np.bool_),
        gates,
        pts,
        _f64(conf),
        np.ascontiguousarray(counts, dtype=np.int64),
        float(min_conf),
        int(min_common),
    )
    for c in np.flatnonzero(hungarian).tolist():
        n = int(counts[c])
        claimed[c, :n] = assign_detections_to_tracks(cost[c, :, :n], gates[c])
    return claimed


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as a contiguous float64 array (itself when it is one)."""
    return np.ascontiguousarray(a, dtype=np.float64)


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
        counts = np.ascontiguousarray(counts, dtype=np.int64)
        groups: list[Group] = []
        hints: list[int] = []
        singles: list[tuple[int, np.ndarray, int, int]] = []
        n_unflipped = 0
        T = len(track_ids)
        if T:
            uv, valid, gates = project_tracks(self.P, self.focal_px, preds, m.track_gate_m)  # uv (C, T, J, 2)
            claimed = _claim(uv, valid, gates, _f64(pts), conf, counts, m.min_joint_conf, m.min_common_joints)
            n_unflipped = unflip_pixels(pts, conf, claimed, None, uv, valid, self.left, self.right, lifted)
        # The claims by track (by view, then detection); a track claimed in one view releases its detection.
        members, n_views, left_views = group_kernel(claimed, counts, T)
        if T:
            pairs = members.tolist()
            end = 0
            for t, (tid, n) in enumerate(zip(track_ids.tolist(), n_views.tolist(), strict=True)):
                start, end = end, end + n
                if n >= 2:
                    groups.append(tuple(map(tuple, pairs[start:end])))
                    hints.append(tid)
                elif n == 1:
                    c, i = pairs[start]
                    singles.append((tid, preds[t], c, i))
        if left_views >= 2:  # grouping across views needs two views with unclaimed detections
            left_over = (claimed < 0) & (np.arange(claimed.shape[1]) < counts[:, None])  # (C, P)
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
