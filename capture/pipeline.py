"""Per-frame reconstruction: matching -> triangulation -> tracking, wired for the node.

The only place where the three stages meet (STYLE §1); each method lives in its package. Detections
arrive in distorted pixels; they are undistorted once per view and padded into one (C, P, J) array;
live tracks claim their detections in every view (:mod:`matching.track_claims`, with the left/right
unflip of :mod:`matching.unflip`) and the rest are grouped across views by the cross-view matcher
(``self.matcher``, :class:`matching.epipolar.EpipolarMatcher`: any object with the same ``match``);
the groups are triangulated by weighted DLT with per-joint view rejection
(:mod:`triangulation.dlt`), duplicate groups merged (:mod:`matching.merge`), a track seen by one view
corrected along its rays (:mod:`matching.single_view`), and identities given by the tracker. With
``[fusion] filter = "ukf"`` the tracker is :class:`fusion.live.LiveTracker`: it filters every joint
on the groups' 2D joints and the published poses are its filtered ones; with ``"none"`` they are the
per-frame triangulations. The detections' appearance descriptors (``Detections2D.embeddings``, where
the workers send them) go with the unclaimed detections to the cross-view matcher.

RGB-D cameras (:class:`fusion.rgbd.RGBDDetections`: detections with their joints lifted to 3D by
the worker) take part in 2D matching and triangulation as any view. In addition their lifted
joints go to the live tracker (each group's views' lifted joints, :meth:`LiveTracker.update`'s
``obs_3d``), and a person seen by an RGB-D camera and no other view is a group of its own whose
pose is its lifted joints: it starts a track, or updates the track that claimed it (also with
``single_view_updates`` off, since its depth is measured, not predicted). With ``"none"`` such a
group's lifted joints are its pose.

Unsynchronised cameras: given ``clock_offsets_ns`` (the node's ``[node] clock_offsets_ms``), each
view's capture time is its detections' ``stamp_ns`` less its camera's clock offset (as
:class:`capture.service.sync.FrameAssembler` corrects them), and with the live filter each view's
observations enter it at that time (:meth:`LiveTracker.update`'s ``view_stamps_ns``). A frame whose
views share one capture time, or one with a view more than ``MAX_VIEW_SKEW_S`` from the frame time
(stamps on another clock), is filtered at the frame time, as without ``clock_offsets_ns``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from calibration.camera import CameraRig
from capture._pipeline_kernels import gather_members, pad_detections, reprojection_errors
from core.config import FusionConfig, MatchingConfig, TriangulationConfig
from core.errors import ShapeError
from core.skeleton import Skeleton
from core.types import Detections2D, RGBDDetections
from fusion.live import LiveTracker
from fusion.reid import group_descriptors
from fusion.tracking import Tracker
from matching.epipolar import EpipolarMatcher
from matching.merge import merge_duplicate_groups
from matching.seed import spread_views
from matching.single_view import single_view_pose
from matching.track_claims import CrossViewMatcher, TrackDrivenAssociator
from triangulation.dlt import TriangulationResult, triangulate_robust
from triangulation.pictorial import triangulate_pictorial

__all__ = ["MAX_VIEW_SKEW_S", "SEED_VIEWS", "UNDISTORT_CRITERIA", "FrameReconstructor", "FrameResult", "make_matcher"]

SEED_VIEWS = 8
"""With no live track, rigs of more cameras start from this many spread views (:mod:`matching.seed`):
their people, triangulated, claim their detections in the other views as tracks would, instead of
every pair of views being grouped (C^2)."""

UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 1e-10)
"""``cv2.undistortPoints`` criteria of :meth:`calibration.camera.Camera.undistort_px`, called directly per frame."""

MAX_VIEW_SKEW_S = 0.25
"""A view's corrected capture time further than this (seconds) from the frame time is taken for a
stamp on another clock: the frame's views then all enter the live filter at the frame time."""


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Reconstruction of one synchronised frame.

    Attributes:
        track_ids: (P,) int64 identities of the output poses.
        poses: (P, J, 4) [x, y, z, conf], metres, world frame.
        groups: per output pose, its (view index, detection index) pairs.
        reproj_px: (M,) reprojection errors, pixels, of every joint observation used.
        obs_px: (P, C, J, 2) each pose's 2D joints in each view of the rig, undistorted pixels (the
            measurements :mod:`fusion.smoothing` filters over time).
        obs_conf: (P, C, J) their confidences; 0 where the view has no detection in the pose's group.
            With the live filter, left/right pairs the tracker swapped are swapped here too.
        stage_ms: CPU time of this thread per stage, milliseconds: matching (with undistortion),
            triangulation, tracking. CPU time, not wall time, so that other processes sharing the
            cores (the detection workers) do not inflate it.
        std_m: (P, J) with the live filter, each published joint's RMS position standard deviation
            per axis, metres (0 where conf is 0; see :func:`fusion.live_tracks.confidence_from_std` for the
            confidence derived from it); None without it.
        raw_poses: (P, J, 4) with the live filter, the frame's own triangulations of the same people
            (conf 0 for a person seen by one view); None without it (``poses`` are then those).
    """

    track_ids: np.ndarray
    poses: np.ndarray
    groups: list[tuple[tuple[int, int], ...]]
    reproj_px: np.ndarray
    obs_px: np.ndarray
    obs_conf: np.ndarray
    stage_ms: dict[str, float] = field(default_factory=dict)
    std_m: np.ndarray | None = None
    raw_poses: np.ndarray | None = None


def make_matcher(rig: CameraRig, m: MatchingConfig) -> CrossViewMatcher:
    """The cross-view matcher ``[matching] method`` names, for the detections no track claims.

    ``"epipolar"``: :class:`matching.epipolar.EpipolarMatcher`; ``"pairwise"`` and ``"multiway"``:
    :class:`matching.multiway.MultiwayMatcher` on Dong et al.'s affinity (the epipolar distance of
    affinity 0.5 is ``max_epipolar_px``; appearance weighted by ``appearance_weight``, compared part by
    part as :mod:`capture.detect.reid` lays its descriptors out), without resp. with SVT where the
    mutual-best pairs are not cycle-consistent.
    """
    if m.method in ("auto", "epipolar"):  # "auto" is epipolar unless the run resolved it (stills)
        return EpipolarMatcher(rig, m.min_joint_conf, m.min_common_joints, m.max_epipolar_px)
    from capture.detect.reid import N_PARTS
    from matching.affinity import AffinityConfig
    from matching.multiway import MultiwayMatcher

    affinity = AffinityConfig(
        min_conf=m.min_joint_conf,
        min_common=m.min_common_joints,
        half_px=m.max_epipolar_px,
        use_appearance=m.appearance_weight > 0,
        appearance_weight=m.appearance_weight,
        cos_floor=m.appearance_floor,
        n_parts=N_PARTS,
    )
    return MultiwayMatcher(rig, affinity, svt=m.method == "multiway")


class FrameReconstructor:
    """Turns the 2D detections of all views of a frame into tracked 3D poses.

    Args:
        rig: calibrated cameras; detections are given in this order.
        skeleton: joints of the detections (J) and their left/right pairs.
        matching, triangulation, fusion: configuration sections.
        clock_offsets_ns: per camera name, its clock's offset, nanoseconds (capture time = stamp -
            offset; missing cameras 0). Given (even empty), with the live filter each view enters
            it at its own capture time; None: every view at the frame time.
    """

    def __init__(
        self,
        rig: CameraRig,
        skeleton: Skeleton,
        matching: MatchingConfig | None = None,
        triangulation: TriangulationConfig | None = None,
        fusion: FusionConfig | None = None,
        clock_offsets_ns: Mapping[str, int] | None = None,
    ):
        self.rig = rig
        self.clock_offsets_ns = None if clock_offsets_ns is None else {k: int(v) for k, v in clock_offsets_ns.items()}
        self.n_joints = skeleton.n_joints
        self._left = np.array([a for a, _ in skeleton.left_right], dtype=np.int64)
        self._right = np.array([b for _, b in skeleton.left_right], dtype=np.int64)
        self.mcfg = matching or MatchingConfig()
        self.tcfg = triangulation or TriangulationConfig()
        fcfg = fusion or FusionConfig()
        self._P = rig.projections()
        self._focal = np.array([cam.K[0, 0] for cam in rig])  # (C,) pixels
        self._distorted = [(c, cam.K, cam.dist) for c, cam in enumerate(rig) if cam.has_distortion]
        centers = np.array([cam.center for cam in rig])
        self._seed = spread_views(centers, SEED_VIEWS) if len(rig) > SEED_VIEWS else None
        matcher = make_matcher(rig, self.mcfg)
        self.associator = TrackDrivenAssociator(self._P, self._focal, self._left, self._right, self.mcfg, matcher)
        self.live = fcfg.filter == "ukf"
        self.tracker: LiveTracker | Tracker = (
            LiveTracker(self._P, skeleton, fcfg, self.tcfg.min_joint_conf)
            if self.live
            else Tracker(fcfg.gate_m, fcfg.max_missed_s, fcfg.min_joints)
        )
        self.fill_missing_s = fcfg.fill_missing_s
        self.n_unflipped = 0  # left/right joint pairs swapped back (in 2D, and by the live tracker)

    @property
    def matcher(self) -> CrossViewMatcher:
        """The cross-view matcher of the detections no track claims (:class:`matching.epipolar.EpipolarMatcher`
        by default); any object with ``match(points_px, conf)`` returning groups of (view, detection) may
        be assigned (it is given ``descriptors=`` when the detections carry embeddings)."""
        return self.associator.matcher

    @matcher.setter
    def matcher(self, matcher: CrossViewMatcher) -> None:
        self.associator.matcher = matcher

    def view_times(self, views: list[Detections2D | None], stamp_ns: int) -> np.ndarray | None:
        """(C,) int64 capture time of each view, nanoseconds on the frame's clock (a missing view:
        ``stamp_ns``), or None when the views enter the filter at the frame time: no live filter or
        no ``clock_offsets_ns``, all present views at one time, or one beyond ``MAX_VIEW_SKEW_S``.
        """
        if not self.live or self.clock_offsets_ns is None:
            return None
        off = self.clock_offsets_ns
        times = np.array([stamp_ns if d is None else d.stamp_ns - off.get(d.camera, 0) for d in views], np.int64)
        present = times[[d is not None for d in views]]
        if present.size < 2 or (present == present[0]).all():
            return None
        if (np.abs(present - stamp_ns) * 1e-9 > MAX_VIEW_SKEW_S).any():
            return None
        return times

    def _prepare(
        self, views: list[Detections2D | None]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray] | None], list | None]:
        """Kept detections of all views, padded to the most per view: (C, P, J, 2) undistorted
        pixels, (C, P, J) confidences (padding 0), (C,) counts, per view for an RGB-D view its
        lifted joints (P_c, J, 4) and covariances (P_c, J, 3, 3) (None otherwise), and per view the
        (P_c, D) appearance descriptors (None for a view without; None when no view has them)."""
        C, J, m = len(views), self.n_joints, self.mcfg
        n = [0 if d is None else d.n_people for d in views]
        present = [d for d, k in zip(views, n, strict=True) if k]
        for d in present:
            if d.poses.shape[1] != J:
                raise ShapeError(f"camera {d.camera}: poses must have {J} joints; got {d.poses.shape[1]}")
        # All views' detections in one (M, J, 3) array, view by view; the kept ones are padded into the
        # (C, P, J) layout by one compiled loop. Scores compared as the boxes are (float32).
        poses = np.concatenate([d.poses for d in present] or [np.zeros((0, J, 3))], dtype=np.float32)
        boxes = np.concatenate([d.boxes for d in present] or [np.zeros((0, 5))], dtype=np.float32)
        thresholds = np.float32(m.min_box_score), float(m.min_joint_conf), float(m.min_valid_joints)
        pts, conf, counts, keep = pad_detections(poses, boxes, np.array(n, np.int64), *thresholds)
        for c, K, dist in self._distorted:  # (view, K, dist): Camera.undistort_px without its checks
            if counts[c]:
                flat = pts[c, : counts[c]].reshape(-1, 1, 2)  # a view: pts is contiguous
                flat[:] = cv2.undistortPoints(flat, K, dist, P=K, criteria=UNDISTORT_CRITERIA)
        lifted: list[tuple[np.ndarray, np.ndarray] | None] = [None] * C
        desc: list[np.ndarray | None] = [None] * C
        first = 0  # first row of each view in the (M,) arrays
        for c, d in enumerate(views):  # per-detection data of the kept detections
            if d is not None and (isinstance(d, RGBDDetections) or d.embeddings is not None):
                k = np.nonzero(keep[first : first + n[c]])[0]  # kept, in order
                if isinstance(d, RGBDDetections) and n[c]:
                    lifted[c] = (d.joints3d[k].astype(np.float64), d.joints3d_cov[k].astype(np.float64))
                if d.embeddings is not None:
                    desc[c] = d.embeddings[k]
            first += n[c]
        return pts, conf, counts, lifted, None if all(e is None for e in desc) else desc

    def _associate(
        self,
        pts: np.ndarray,
        conf: np.ndarray,
        counts: np.ndarray,
        stamp_ns: int,
        lifted: list | None = None,
        descriptors: list[np.ndarray | None] | None = None,
    ) -> tuple[list[tuple[tuple[int, int], ...]], list[int], list[tuple[int, np.ndarray, int, int]]]:
        """Groups of (view, detection) per person, the track id each group was built for (0: new),
        and the (track id, predicted (J, 4) pose, view, detection) of tracks claimed in one view only:
        :meth:`matching.track_claims.TrackDrivenAssociator.associate` with the tracker's predictions.
        With no live track and more than ``SEED_VIEWS`` cameras, the people of the spread seed views
        stand in for the tracks (:mod:`matching.seed`). ``descriptors`` (per view (P_c, D) or None) go
        to the cross-view matcher."""
        track_ids, preds = self.tracker.predictions(stamp_ns)
        seeded = not len(track_ids) and self._seed is not None
        if seeded:
            track_ids, preds = self._seed_people(pts, conf, counts, descriptors)
        assoc = self.associator.associate(pts, conf, counts, track_ids, preds, lifted, descriptors)
        self.n_unflipped += assoc.n_unflipped
        if not seeded:
            return assoc.groups, assoc.hints, assoc.singles
        # The seeds are no tracks: their groups are new people, and a seed seen by one view is nobody.
        return assoc.groups, [max(h, 0) for h in assoc.hints], [s for s in assoc.singles if s[0] > 0]

    def _seed_people(
        self, pts: np.ndarray, conf: np.ndarray, counts: np.ndarray, descriptors: list | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Start-up of a large rig: the people of the spread views ``self._seed``, grouped across those
        views and triangulated, as (G,) negative pseudo track ids and (G, J, 4) poses."""
        seed = np.zeros(len(counts), dtype=bool)
        seed[self._seed] = True
        n = np.where(seed, counts, 0)
        extra = {}
        if descriptors is not None:
            extra["descriptors"] = [None if d is None else d[: n[c]] for c, d in enumerate(descriptors)]
        groups = [
            g
            for g in self.matcher.match(
                [pts[c, : n[c]] for c in range(len(n))], [conf[c, : n[c]] for c in range(len(n))], **extra
            )
            if len(g) >= 2
        ]
        if not groups:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.n_joints, 4))
        return -np.arange(1, len(groups) + 1, dtype=np.int64), self._triangulate(groups, pts, conf)[1]

    @staticmethod
    def _members(groups: list[tuple[tuple[int, int], ...]]) -> np.ndarray:
        """(M, 3) int64 group, view and detection index of every member of the groups."""
        flat = [(g, c, i) for g, members in enumerate(groups) for c, i in members]
        return np.array(flat, dtype=np.int64).reshape(-1, 3)

    def _triangulate(
        self,
        groups: list[tuple[tuple[int, int], ...]],
        pts: np.ndarray,
        conf: np.ndarray,
        members: np.ndarray | None = None,
    ) -> tuple[TriangulationResult, np.ndarray]:
        """Triangulate every group in one batch (``pts`` (C, P, J, 2), ``conf`` (C, P, J) padded per
        view; ``members``: the groups' :meth:`_members`, if known); returns the raw result and (G, J, 4)
        poses. The groups' detections are gathered by a compiled loop (:mod:`capture._pipeline_kernels`)."""
        C, J, G = len(self.rig), self.n_joints, len(groups)
        obs, w = gather_members(self._members(groups) if members is None else members, pts, conf, G, True)
        t = self.tcfg
        triangulate = triangulate_pictorial if t.method == "pictorial" else triangulate_robust
        tri = triangulate(
            self._P, obs.reshape(C, G * J, 2), w.reshape(C, G * J), t.min_joint_conf, t.max_reproj_px, t.min_views
        )
        return tri, np.concatenate([tri.points, tri.conf[:, None]], axis=1).reshape(G, J, 4)

    def _tri_used(self, tri: TriangulationResult, groups: list) -> np.ndarray:
        """(G, C, J) bool views the robust triangulation kept for each group's joints."""
        return tri.used.reshape(len(self.rig), len(groups), self.n_joints).transpose(1, 0, 2)

    def _observations(
        self,
        groups: list[tuple[tuple[int, int], ...]],
        pts: np.ndarray,
        conf: np.ndarray,
        members: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(G, C, J, 2) undistorted pixels and (G, C, J) confidences of each group's detections
        (``pts`` (C, P, J, 2), ``conf`` (C, P, J) padded per view; ``members``: the groups'
        :meth:`_members`, if known), gathered by a compiled loop (:mod:`capture._pipeline_kernels`)."""
        return gather_members(self._members(groups) if members is None else members, pts, conf, len(groups), False)

    def _lift_singles(
        self, groups: list[tuple[tuple[int, int], ...]], poses: np.ndarray, tri_used: np.ndarray, lifted: list
    ) -> tuple[np.ndarray, np.ndarray]:
        """Poses (G, J, 4) and ``tri_used`` (G, C, J) with every one-view group of an RGB-D view given
        its lifted joints (those of 2D confidence >= ``min_joint_conf``) as its pose."""
        poses, tri_used = poses.copy(), tri_used.copy()
        for g, members in enumerate(groups):
            if len(members) == 1 and lifted[members[0][0]] is not None:
                c, i = members[0]
                poses[g] = self._lifted_pose(lifted, c, i)
                tri_used[g] = False
                tri_used[g, c] = poses[g, :, 3] > 0
        return poses, tri_used

    def _lifted_pose(self, lifted: list, c: int, i: int) -> np.ndarray:
        """(J, 4) lifted joints of detection ``i`` of RGB-D view ``c`` (conf < ``min_joint_conf``: 0)."""
        pose = lifted[c][0][i].copy()
        pose[pose[:, 3] < self.tcfg.min_joint_conf] = 0.0
        return pose

    def _observations_3d(
        self, groups: list[tuple[tuple[int, int], ...]], lifted: list
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(G, C, J, 4) lifted joints and (G, C, J, 3, 3) covariances of each group's RGB-D views;
        None when no group has an RGB-D view."""
        if all(m is None for m in lifted):
            return None
        members = [(g, c, i) for g, mem in enumerate(groups) for c, i in mem if lifted[c] is not None]
        if not members:
            return None
        G, C, J = len(groups), len(self.rig), self.n_joints
        obs, cov = np.zeros((G, C, J, 4)), np.zeros((G, C, J, 3, 3))
        for g, c, i in members:
            obs[g, c], cov[g, c] = lifted[c][0][i], lifted[c][1][i]
        return obs, cov

    def _process_live(
        self,
        groups: list[tuple[tuple[int, int], ...]],
        hints: list[int],
        singles: list[tuple[int, np.ndarray, int, int]],
        poses: np.ndarray,
        tri_used: np.ndarray,
        pts: np.ndarray,
        conf: np.ndarray,
        lifted: list,
        stamp_ns: int,
        t0: float,
        t1: float,
        view_ns: np.ndarray | None = None,
        desc: list[np.ndarray | None] | None = None,
        members: np.ndarray | None = None,
    ) -> FrameResult:
        """The tracking stage with the live UKF tracker: it filters the groups' 2D joints (and lifted
        3D joints), and the published poses are its; a track claimed in one view only is updated by
        that view alone. Each group's appearance (the mean of its views' descriptors, ``desc``) goes
        with it, for re-identification (:mod:`fusion.reid`). ``members``: the groups' :meth:`_members`,
        if known. The reprojection errors are a compiled loop (:mod:`capture._pipeline_kernels`)."""
        t2 = time.thread_time()
        singles = [s for s in singles if self.mcfg.single_view_updates or lifted[s[2]] is not None]
        if singles:
            if members is not None:
                extra = [(len(groups) + k, c, i) for k, (_, _, c, i) in enumerate(singles)]
                members = np.concatenate([members, np.array(extra, dtype=np.int64)])
            groups = groups + [((c, i),) for _, _, c, i in singles]
            hints = hints + [tid for tid, _, _, _ in singles]
            poses = np.concatenate([poses.reshape(-1, self.n_joints, 4), np.zeros((len(singles), self.n_joints, 4))])
            tri_used = np.concatenate([tri_used, np.zeros((len(singles),) + tri_used.shape[1:], bool)])
        obs_px, obs_conf = self._observations(groups, pts, conf, members)
        poses = poses.reshape(-1, self.n_joints, 4)
        obs3 = self._observations_3d(groups, lifted)
        if obs3 is not None:
            poses, tri_used = self._lift_singles(groups, poses, tri_used, lifted)
        upd = self.tracker.update(
            poses, obs_px, obs_conf, stamp_ns, np.array(hints, dtype=np.int64), tri_used,
            *(obs3 if obs3 is not None else (None, None)), view_ns, group_descriptors(groups, desc),
        )  # fmt: skip
        self.n_unflipped += upd.n_swapped
        keep = upd.track_ids > 0
        out = np.ascontiguousarray(upd.poses[keep], np.float64)
        obs_out = np.ascontiguousarray(upd.obs_px[keep], np.float64)
        # Reprojection error of the published poses in the observations the filter used (conf > 0).
        reproj = reprojection_errors(self._P, out, np.ascontiguousarray(upd.used[keep], np.bool_), obs_out)
        t3 = time.thread_time()
        return FrameResult(
            track_ids=upd.track_ids[keep],
            poses=out,
            groups=[g for g, k in zip(groups, keep.tolist(), strict=True) if k],
            reproj_px=reproj,
            obs_px=obs_out,
            obs_conf=upd.obs_conf[keep],
            stage_ms={"matching": (t1 - t0) * 1e3, "triangulation": (t2 - t1) * 1e3, "tracking": (t3 - t2) * 1e3},
            std_m=upd.std_m[keep],
            raw_poses=poses[keep],
        )

    def process(self, views: list[Detections2D | None], stamp_ns: int) -> FrameResult:
        """Reconstruct one frame.

        Args:
            views: per rig camera, its detections or None when the view is missing.
            stamp_ns: frame time, nanoseconds (with ``clock_offsets_ns``, on the corrected clock).

        Returns:
            The frame's :class:`FrameResult` (indices in ``groups`` refer to the kept detections).

        Raises:
            ShapeError: wrong number of views or joints.
        """
        if len(views) != len(self.rig):
            raise ShapeError(f"expected {len(self.rig)} views; got {len(views)}")
        t0 = time.thread_time()
        pts, conf, counts, lifted, desc = self._prepare(views)  # (C, P, J, 2), (C, P, J) padded per view
        rgbd = any(m is not None for m in lifted)
        view_ns = self.view_times(views, stamp_ns)
        pred_ns = stamp_ns if view_ns is None else int(view_ns.min())  # gated at the earliest view
        groups, hints, singles = self._associate(pts, conf, counts, pred_ns, lifted, desc)
        t1 = time.thread_time()
        members = self._members(groups)
        tri, poses = self._triangulate(groups, pts, conf, members)
        if rgbd:  # a lone RGB-D detection's pose is its lifted joints, also for merging
            poses = self._lift_singles(
                groups, poses.reshape(-1, self.n_joints, 4), self._tri_used(tri, groups), lifted
            )[0]
        groups, hints, merged = merge_duplicate_groups(groups, hints, poses, self.mcfg.merge_m)
        if merged:
            members = self._members(groups)
            tri, poses = self._triangulate(groups, pts, conf, members)
        used = self._tri_used(tri, groups)
        if rgbd:
            poses, used = self._lift_singles(groups, poses.reshape(-1, self.n_joints, 4), used, lifted)
        if self.live:
            return self._process_live(
                groups, hints, singles, poses, used, pts, conf, lifted, stamp_ns, t0, t1, view_ns, desc, members
            )
        reproj = tri.errors[tri.used]
        singles = [s for s in singles if self.mcfg.single_view_updates or lifted[s[2]] is not None]
        if singles:
            single_poses = np.stack(
                [
                    self._lifted_pose(lifted, c, i)
                    if lifted[c] is not None
                    else single_view_pose(pred, self.rig[c], pts[c][i], conf[c][i], self.tcfg.min_joint_conf)
                    for _, pred, c, i in singles
                ]
            )
            poses = np.concatenate([poses, single_poses]) if len(poses) else single_poses
            groups = groups + [((c, i),) for _, _, c, i in singles]
            hints = hints + [tid for tid, _, _, _ in singles]
        t2 = time.thread_time()
        ids = self.tracker.update(poses, stamp_ns, np.array(hints, dtype=np.int64))
        keep = ids > 0
        if self.fill_missing_s > 0:
            poses = poses.copy()
            for p in np.nonzero(keep)[0]:
                poses[p] = self.tracker.filled(int(ids[p]), poses[p], stamp_ns, self.fill_missing_s)
        t3 = time.thread_time()
        kept = [g for g, k in zip(groups, keep.tolist(), strict=True) if k]
        obs_px, obs_conf = self._observations(kept, pts, conf)
        return FrameResult(
            track_ids=ids[keep],
            poses=poses[keep],
            groups=kept,
            reproj_px=reproj,
            obs_px=obs_px,
            obs_conf=obs_conf,
            stage_ms={
                "matching": (t1 - t0) * 1e3,
                "triangulation": (t2 - t1) * 1e3,
                "tracking": (t3 - t2) * 1e3,
            },
        )
