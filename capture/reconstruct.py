"""Per-frame reconstruction: matching -> triangulation -> tracking, wired for the node.

The only place where the three stages meet (STYLE §1). Detections arrive in distorted pixels; they are
undistorted once per view, associated across views by epipolar geometry, triangulated by weighted DLT
with per-joint view rejection, and given identities by the tracker. With ``[fusion] filter = "ukf"``
the tracker is :class:`fusion.live.LiveTracker`: it filters every joint on the groups' 2D joints and
the published poses are its filtered ones; with ``"none"`` they are the per-frame triangulations.

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

import numpy as np

from calibration.camera import CameraRig
from core.config import FusionConfig, MatchingConfig, TriangulationConfig
from core.errors import ShapeError
from core.skeleton import Skeleton
from core.types import Detections2D, RGBDDetections
from fusion.live import LiveTracker
from fusion.tracking import Tracker, pose_distance_matrix
from matching.epipolar import EpipolarMatcher
from matching.tracks import assign_detections_to_tracks, joint_distance_matrix_2d
from triangulation.dlt import TriangulationResult, triangulate_robust

__all__ = ["MAX_VIEW_SKEW_S", "FrameReconstructor", "FrameResult"]

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
        self.matcher = EpipolarMatcher(
            rig, self.mcfg.min_joint_conf, self.mcfg.min_common_joints, self.mcfg.max_epipolar_px
        )
        self._P = rig.projections()
        self.live = fcfg.filter == "ukf"
        self.tracker: LiveTracker | Tracker = (
            LiveTracker(self._P, skeleton, fcfg, self.tcfg.min_joint_conf)
            if self.live
            else Tracker(fcfg.gate_m, fcfg.max_missed_s, fcfg.min_joints)
        )
        self.fill_missing_s = fcfg.fill_missing_s
        self._focal = np.array([cam.K[0, 0] for cam in rig])  # (C,) pixels
        self.n_unflipped = 0  # left/right joint pairs swapped back (in 2D, and by the live tracker)

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
        self, dets: Detections2D | None, cam_idx: int
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Kept detections of one view: (P, J, 2) undistorted pixels, (P, J) confidences, and for an
        RGB-D view its lifted joints (P, J, 4) and covariances (P, J, 3, 3) (None otherwise)."""
        J = self.n_joints
        if dets is None or dets.n_people == 0:
            return np.zeros((0, J, 2)), np.zeros((0, J)), None
        if dets.poses.shape[1] != J:
            raise ShapeError(f"camera {dets.camera}: poses must have {J} joints; got {dets.poses.shape[1]}")
        conf = dets.poses[..., 2].astype(np.float64)
        keep = (dets.boxes[:, 4] >= self.mcfg.min_box_score) & (
            (conf >= self.mcfg.min_joint_conf).sum(axis=1) >= self.mcfg.min_valid_joints
        )
        pts = dets.poses[keep, :, :2].astype(np.float64)
        und = self.rig[cam_idx].undistort_px(pts.reshape(-1, 2)).reshape(pts.shape)
        lifted = None
        if isinstance(dets, RGBDDetections):
            lifted = (dets.joints3d[keep].astype(np.float64), dets.joints3d_cov[keep].astype(np.float64))
        return und, conf[keep], lifted

    def _associate(
        self, pts: list[np.ndarray], conf: list[np.ndarray], stamp_ns: int, lifted: list | None = None
    ) -> tuple[list[tuple[tuple[int, int], ...]], list[int], list[tuple[int, np.ndarray, int, int]]]:
        """Groups of (view, detection) per person, the track id each group was built for (0: new),
        and the (track id, predicted (J, 4) pose, view, detection) of tracks claimed in one view only.

        Live tracks are projected into every view and claim detections there first (per-view
        Hungarian, gated); a track claimed in fewer than 2 views releases its detection. The
        remaining detections are grouped across views by epipolar geometry. A detection of an
        RGB-D view (``lifted[c]`` not None) left in no group and claimed by no track is a group of
        its own.
        """
        lifted = lifted or [None] * len(pts)
        C, m = len(self.rig), self.mcfg
        claimed = [np.full(p.shape[0], -1, dtype=np.int64) for p in pts]
        track_ids, preds = self.tracker.predictions(stamp_ns)
        groups: list[tuple[tuple[int, int], ...]] = []
        hints: list[int] = []
        singles: list[tuple[int, np.ndarray, int, int]] = []
        if len(track_ids):
            # Project every track into every view at once.
            Xh = np.concatenate([preds[..., :3], np.ones(preds.shape[:2] + (1,))], axis=-1)  # (T, J, 4)
            proj = Xh[None] @ self._P.transpose(0, 2, 1)[:, None]  # (C, T, J, 3)
            depth = proj[..., 2]
            valid_all = (preds[..., 3] > 0)[None] & (depth > 0.1)  # (C, T, J)
            uv_all = proj[..., :2] / np.where(valid_all, depth, 1.0)[..., None]
            n_valid = valid_all.sum(axis=2)  # (C, T)
            mean_depth = np.where(valid_all, depth, 0.0).sum(axis=2) / np.maximum(n_valid, 1)
            gates = np.where(n_valid > 0, m.track_gate_m * self._focal[:, None] / np.maximum(mean_depth, 1e-3), 0.0)
            for c in range(C):
                if pts[c].shape[0] == 0:
                    continue
                cost = joint_distance_matrix_2d(
                    uv_all[c], valid_all[c], pts[c], conf[c], m.min_joint_conf, m.min_common_joints
                )
                claimed[c] = assign_detections_to_tracks(cost, gates[c])
                self._unflip(pts[c], conf[c], claimed[c], uv_all[c], valid_all[c], lifted[c])
            members: list[list[tuple[int, int]]] = [[] for _ in range(len(track_ids))]
            for c, cl in enumerate(claimed):
                for i, t in enumerate(cl.tolist()):
                    if t >= 0:
                        members[t].append((c, i))
            for t, tid in enumerate(track_ids.tolist()):
                if len(members[t]) >= 2:
                    groups.append(tuple(members[t]))
                    hints.append(tid)
                else:
                    for c, i in members[t]:
                        claimed[c][i] = -1
                        singles.append((tid, preds[t], c, i))
        pool = [np.nonzero(cl < 0)[0] for cl in claimed]
        if sum(idx.size > 0 for idx in pool) >= 2:  # epipolar grouping needs two views with leftovers
            for g in self.matcher.match(
                [p[idx] for p, idx in zip(pts, pool, strict=True)],
                [q[idx] for q, idx in zip(conf, pool, strict=True)],
            ):
                if len(g) >= 2:
                    groups.append(tuple((c, int(pool[c][i])) for c, i in g))
                    hints.append(0)
        used = {m for g in groups for m in g}
        singles = [s for s in singles if (s[2], s[3]) not in used]
        taken = used | {(c, i) for _, _, c, i in singles}
        for c, lift in enumerate(lifted):
            if lift is not None:
                alone = [((c, i),) for i in range(pts[c].shape[0]) if (c, i) not in taken]
                groups += alone
                hints += [0] * len(alone)
        return groups, hints, singles

    def _unflip(
        self,
        pts: np.ndarray,
        conf: np.ndarray,
        claimed: np.ndarray,
        uv: np.ndarray,
        valid: np.ndarray,
        lifted: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Undo left/right swaps of 2D detections claimed by a track, in place.

        2D detectors confuse left and right (mostly on people seen from behind); with two views,
        or with the swap in several views, the swapped limbs triangulate consistently but wrongly.
        For each left/right joint pair, a detection whose swapped pair lies much closer (< half the
        distance) to the track's projected pair is swapped back.

        Args:
            pts: (P, J, 2) detections of one view, pixels (modified).
            conf: (P, J) confidences (modified).
            claimed: (P,) track index of each detection, -1 for none.
            uv: (T, J, 2) tracks projected into the view, pixels.
            valid: (T, J) projected joints that are known.
            lifted: an RGB-D view's lifted joints (P, J, 4) and covariances (P, J, 3, 3) (swapped alike).
        """
        det = np.nonzero(claimed >= 0)[0]
        if det.size == 0 or self._left.size == 0:
            return
        L, R = self._left, self._right
        t = claimed[det]
        P_, U, V, Cf = pts[det], uv[t], valid[t], conf[det]  # gathered once: (D, J, ...)
        dl, dr, ul, ur = P_[:, L], P_[:, R], U[:, L], U[:, R]  # (D, pairs, 2)
        a, b, c, d = dl - ul, dr - ur, dl - ur, dr - ul
        d_keep = np.hypot(a[..., 0], a[..., 1]) + np.hypot(b[..., 0], b[..., 1])
        d_swap = np.hypot(c[..., 0], c[..., 1]) + np.hypot(d[..., 0], d[..., 1])
        usable = V[:, L] & V[:, R] & (Cf[:, L] > 0) & (Cf[:, R] > 0)
        swap = usable & (d_swap < 0.5 * d_keep)  # (D, pairs)
        k, pair = np.nonzero(swap)
        if k.size:
            p, li, ri = det[k], L[pair], R[pair]
            pts[p, li], pts[p, ri] = pts[p, ri], pts[p, li]  # fancy indexing copies the right side
            conf[p, li], conf[p, ri] = conf[p, ri], conf[p, li]
            for arr in lifted or ():
                arr[p, li], arr[p, ri] = arr[p, ri], arr[p, li]
            self.n_unflipped += int(k.size)

    def _single_view_pose(self, pred: np.ndarray, c: int, uv: np.ndarray, conf: np.ndarray) -> np.ndarray:
        """A track's predicted pose corrected by one view: each joint moves onto its camera ray.

        Only the two directions the view observes are corrected; the depth along the ray is kept
        from the prediction. Joints carry half their 2D confidence, marking them single-view.

        Args:
            pred: (J, 4) predicted pose, metres.
            c: view index.
            uv: (J, 2) undistorted pixels of the track's detection in that view.
            conf: (J,) their confidences.

        Returns:
            (J, 4) pose; joints unseen in the view or unknown in the prediction have conf 0.
        """
        cam = self.rig[c]
        rays = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1) @ np.linalg.inv(cam.K).T @ cam.R  # (J, 3)
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        rel = pred[:, :3] - cam.center
        s = (rel * rays).sum(axis=1)
        ok = (pred[:, 3] > 0) & (conf >= self.tcfg.min_joint_conf) & (s > 0)
        out = np.zeros_like(pred)
        out[ok, :3] = cam.center + s[ok, None] * rays[ok]
        out[ok, 3] = 0.5 * conf[ok]
        return out

    def _triangulate(
        self, groups: list[tuple[tuple[int, int], ...]], pts: list[np.ndarray], conf: list[np.ndarray]
    ) -> tuple[TriangulationResult, np.ndarray]:
        """Triangulate every group in one batch; returns the raw result and (G, J, 4) poses."""
        C, J, G = len(self.rig), self.n_joints, len(groups)
        obs = np.zeros((C, G * J, 2))
        w = np.zeros((C, G * J))
        for g, members in enumerate(groups):
            for c, i in members:
                obs[c, g * J : (g + 1) * J] = pts[c][i]
                w[c, g * J : (g + 1) * J] = conf[c][i]
        t = self.tcfg
        tri = triangulate_robust(self._P, obs, w, t.min_joint_conf, t.max_reproj_px, t.min_views)
        return tri, np.concatenate([tri.points, tri.conf[:, None]], axis=1).reshape(G, J, 4)

    def _tri_used(self, tri: TriangulationResult, groups: list) -> np.ndarray:
        """(G, C, J) bool views the robust triangulation kept for each group's joints."""
        return tri.used.reshape(len(self.rig), len(groups), self.n_joints).transpose(1, 0, 2)

    def _merge_duplicates(
        self, groups: list[tuple[tuple[int, int], ...]], hints: list[int], poses: np.ndarray
    ) -> tuple[list[tuple[tuple[int, int], ...]], list[int], bool]:
        """Merge groups of the same person: disjoint views, 3D poses within ``merge_m``.

        A person whose detections are too noisy in some views for the track gate, or ambiguous in
        epipolar geometry, is otherwise split into two groups (a duplicate person). Two tracked
        groups are never merged (they are different tracks); the merged group keeps the track id.
        """
        if len(groups) < 2 or all(h > 0 for h in hints):
            return groups, hints, False  # two tracked groups never merge
        dist = pose_distance_matrix(poses, poses)
        np.fill_diagonal(dist, np.inf)
        groups, hints = list(groups), list(hints)
        alive = [True] * len(groups)
        merged = False
        for flat in np.argsort(dist, axis=None):
            a, b = divmod(int(flat), len(groups))
            if dist[a, b] > self.mcfg.merge_m:
                break
            if a > b or not (alive[a] and alive[b]) or (hints[a] > 0 and hints[b] > 0):
                continue
            if not {c for c, _ in groups[a]}.isdisjoint(c for c, _ in groups[b]):
                continue
            keep, drop = (a, b) if hints[a] > 0 or (hints[b] == 0 and len(groups[a]) >= len(groups[b])) else (b, a)
            groups[keep] = tuple(sorted(groups[keep] + groups[drop]))
            alive[drop] = False
            merged = True
        idx = [g for g in range(len(groups)) if alive[g]]
        return [groups[g] for g in idx], [hints[g] for g in idx], merged

    def _observations(
        self, groups: list[tuple[tuple[int, int], ...]], pts: list[np.ndarray], conf: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(G, C, J, 2) undistorted pixels and (G, C, J) confidences of each group's detections."""
        obs_px = np.zeros((len(groups), len(self.rig), self.n_joints, 2))
        obs_conf = np.zeros((len(groups), len(self.rig), self.n_joints))
        for p, members in enumerate(groups):
            for c, i in members:
                obs_px[p, c], obs_conf[p, c] = pts[c][i], conf[c][i]
        return obs_px, obs_conf

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
        pts: list[np.ndarray],
        conf: list[np.ndarray],
        lifted: list,
        stamp_ns: int,
        t0: float,
        t1: float,
        view_ns: np.ndarray | None = None,
    ) -> FrameResult:
        """The tracking stage with the live UKF tracker: it filters the groups' 2D joints (and lifted
        3D joints), and the published poses are its; a track claimed in one view only is updated by
        that view alone."""
        t2 = time.thread_time()
        singles = [s for s in singles if self.mcfg.single_view_updates or lifted[s[2]] is not None]
        if singles:
            groups = groups + [((c, i),) for _, _, c, i in singles]
            hints = hints + [tid for tid, _, _, _ in singles]
            poses = np.concatenate([poses.reshape(-1, self.n_joints, 4), np.zeros((len(singles), self.n_joints, 4))])
            tri_used = np.concatenate([tri_used, np.zeros((len(singles),) + tri_used.shape[1:], bool)])
        obs_px, obs_conf = self._observations(groups, pts, conf)
        poses = poses.reshape(-1, self.n_joints, 4)
        obs3 = self._observations_3d(groups, lifted)
        if obs3 is not None:
            poses, tri_used = self._lift_singles(groups, poses, tri_used, lifted)
        upd = self.tracker.update(
            poses, obs_px, obs_conf, stamp_ns, np.array(hints, dtype=np.int64), tri_used,
            *(obs3 if obs3 is not None else (None, None)), view_ns,
        )  # fmt: skip
        self.n_unflipped += upd.n_swapped
        keep = upd.track_ids > 0
        out = upd.poses[keep]
        # Reprojection error of the published poses in the observations the filter used.
        seen = upd.used[keep] & (out[:, None, :, 3] > 0)  # (P, C, J)
        q = np.einsum("cij,pnj->pcni", self._P[:, :, :3], out[..., :3]) + self._P[:, :, 3][None, :, None]
        uv = q[..., :2] / np.where(np.abs(q[..., 2:]) > 1e-9, q[..., 2:], 1e-9)
        reproj = np.linalg.norm(uv - upd.obs_px[keep], axis=-1)[seen]
        t3 = time.thread_time()
        return FrameResult(
            track_ids=upd.track_ids[keep],
            poses=out,
            groups=[g for g, k in zip(groups, keep, strict=True) if k],
            reproj_px=reproj,
            obs_px=upd.obs_px[keep],
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
        prepared = [self._prepare(d, c) for c, d in enumerate(views)]
        pts = [p for p, _, _ in prepared]
        conf = [c for _, c, _ in prepared]
        lifted = [m for _, _, m in prepared]
        rgbd = any(m is not None for m in lifted)
        view_ns = self.view_times(views, stamp_ns)
        pred_ns = stamp_ns if view_ns is None else int(view_ns.min())  # gated at the earliest view
        groups, hints, singles = self._associate(pts, conf, pred_ns, lifted)
        t1 = time.thread_time()
        tri, poses = self._triangulate(groups, pts, conf)
        if rgbd:  # a lone RGB-D detection's pose is its lifted joints, also for merging
            poses = self._lift_singles(
                groups, poses.reshape(-1, self.n_joints, 4), self._tri_used(tri, groups), lifted
            )[0]
        groups, hints, merged = self._merge_duplicates(groups, hints, poses)
        if merged:
            tri, poses = self._triangulate(groups, pts, conf)
        reproj = tri.errors[tri.used]
        used = self._tri_used(tri, groups)
        if rgbd:
            poses, used = self._lift_singles(groups, poses.reshape(-1, self.n_joints, 4), used, lifted)
        if self.live:
            return self._process_live(groups, hints, singles, poses, used, pts, conf, lifted, stamp_ns, t0, t1, view_ns)
        singles = [s for s in singles if self.mcfg.single_view_updates or lifted[s[2]] is not None]
        if singles:
            single_poses = np.stack(
                [
                    self._lifted_pose(lifted, c, i)
                    if lifted[c] is not None
                    else self._single_view_pose(pred, c, pts[c][i], conf[c][i])
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
        kept = [g for g, k in zip(groups, keep, strict=True) if k]
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
