"""Per-frame reconstruction: matching -> triangulation -> tracking, wired for the node.

The only place where the three stages meet (STYLE §1). Detections arrive in distorted pixels; they are
undistorted once per view, associated across views by epipolar geometry, triangulated by weighted DLT
with per-joint view rejection, and given identities by the tracker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from calibration.camera import CameraRig
from core.config import FusionConfig, MatchingConfig, TriangulationConfig
from core.errors import ShapeError
from core.types import Detections2D
from fusion.tracking import Tracker
from matching.epipolar import EpipolarMatcher
from triangulation.dlt import triangulate_robust

__all__ = ["FrameReconstructor", "FrameResult"]


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Reconstruction of one synchronised frame.

    Attributes:
        track_ids: (P,) int64 identities of the output poses.
        poses: (P, J, 4) [x, y, z, conf], metres, world frame.
        groups: per output pose, its (view index, detection index) pairs.
        reproj_px: (M,) reprojection errors, pixels, of every joint observation used.
        stage_ms: time per stage, milliseconds: matching, triangulation, tracking.
    """

    track_ids: np.ndarray
    poses: np.ndarray
    groups: list[tuple[tuple[int, int], ...]]
    reproj_px: np.ndarray
    stage_ms: dict[str, float] = field(default_factory=dict)


class FrameReconstructor:
    """Turns the 2D detections of all views of a frame into tracked 3D poses.

    Args:
        rig: calibrated cameras; detections are given in this order.
        n_joints: joints per skeleton (J).
        matching, triangulation, fusion: configuration sections.
    """

    def __init__(
        self,
        rig: CameraRig,
        n_joints: int,
        matching: MatchingConfig | None = None,
        triangulation: TriangulationConfig | None = None,
        fusion: FusionConfig | None = None,
    ):
        self.rig = rig
        self.n_joints = n_joints
        self.mcfg = matching or MatchingConfig()
        self.tcfg = triangulation or TriangulationConfig()
        fcfg = fusion or FusionConfig()
        self.matcher = EpipolarMatcher(rig, self.mcfg.min_joint_conf, self.mcfg.min_common_joints, self.mcfg.max_epipolar_px)
        self.tracker = Tracker(fcfg.gate_m, fcfg.max_missed_s, fcfg.min_joints)
        self._P = rig.projections()

    def _prepare(self, dets: Detections2D | None, cam_idx: int) -> tuple[np.ndarray, np.ndarray]:
        J = self.n_joints
        if dets is None or dets.n_people == 0:
            return np.zeros((0, J, 2)), np.zeros((0, J))
        if dets.poses.shape[1] != J:
            raise ShapeError(f"camera {dets.camera}: poses must have {J} joints; got {dets.poses.shape[1]}")
        conf = dets.poses[..., 2].astype(np.float64)
        keep = (dets.boxes[:, 4] >= self.mcfg.min_box_score) & (
            (conf >= self.mcfg.min_joint_conf).sum(axis=1) >= self.mcfg.min_valid_joints
        )
        pts = dets.poses[keep, :, :2].astype(np.float64)
        und = self.rig[cam_idx].undistort_px(pts.reshape(-1, 2)).reshape(pts.shape)
        return und, conf[keep]

    def process(self, views: list[Detections2D | None], stamp_ns: int) -> FrameResult:
        """Reconstruct one frame.

        Args:
            views: per rig camera, its detections or None when the view is missing.
            stamp_ns: frame time, nanoseconds.

        Returns:
            The frame's :class:`FrameResult` (indices in ``groups`` refer to the kept detections).

        Raises:
            ShapeError: wrong number of views or joints.
        """
        if len(views) != len(self.rig):
            raise ShapeError(f"expected {len(self.rig)} views; got {len(views)}")
        t0 = time.perf_counter()
        prepared = [self._prepare(d, c) for c, d in enumerate(views)]
        pts = [p for p, _ in prepared]
        conf = [c for _, c in prepared]
        groups = [g for g in self.matcher.match(pts, conf) if len(g) >= 2]
        t1 = time.perf_counter()
        C, J, G = len(self.rig), self.n_joints, len(groups)
        obs = np.zeros((C, G * J, 2))
        w = np.zeros((C, G * J))
        for g, members in enumerate(groups):
            for c, i in members:
                obs[c, g * J : (g + 1) * J] = pts[c][i]
                w[c, g * J : (g + 1) * J] = conf[c][i]
        tri = triangulate_robust(
            self._P, obs, w, self.tcfg.min_joint_conf, self.tcfg.max_reproj_px, self.tcfg.min_views
        )
        poses = np.concatenate([tri.points, tri.conf[:, None]], axis=1).reshape(G, J, 4)
        reproj = tri.errors[tri.used]
        t2 = time.perf_counter()
        ids = self.tracker.update(poses, stamp_ns)
        keep = ids > 0
        t3 = time.perf_counter()
        return FrameResult(
            track_ids=ids[keep],
            poses=poses[keep],
            groups=[g for g, k in zip(groups, keep) if k],
            reproj_px=reproj,
            stage_ms={
                "matching": (t1 - t0) * 1e3,
                "triangulation": (t2 - t1) * 1e3,
                "tracking": (t3 - t2) * 1e3,
            },
        )
