"""Compile (or load from numba's cache) the node's per-frame kernels before the first real frame.

The reconstruction's hot loops are numba kernels (:mod:`core.jit`), compiled on their first call:
a few seconds the first time an installation runs them, tens of milliseconds to load them from the
cache afterwards. Left to the first frame, that time would land on a live frame (and in its
latency figures); :func:`warm_up` spends it at start-up instead, by running a throwaway
:class:`capture.pipeline.FrameReconstructor` over a few synthetic frames of one person in front
of every camera of the rig (start-up association, triangulation, track start, claims, UKF updates,
bone lengths). Nothing of it is kept: the real reconstructor starts empty.
"""

from __future__ import annotations

import time

import numpy as np

from calibration.camera import CameraRig
from core.config import FusionConfig, MatchingConfig, TriangulationConfig
from core.skeleton import Skeleton
from core.types import Detections2D

__all__ = ["stage_point", "warm_up"]

_FRAMES = 12  # past the tracks' confirmation and first bone-length medians
_FPS = 30.0


def stage_point(rig: CameraRig) -> np.ndarray:
    """(3,) the world point closest (least squares) to every camera's optical axis, metres: where the
    rig looks. With parallel axes, 3 m in front of the cameras' mean centre."""
    A, b = np.zeros((3, 3)), np.zeros(3)
    for cam in rig:
        d = cam.R[2]  # optical axis in the world frame (third row of R)
        M = np.eye(3) - np.outer(d, d)
        A += M
        b += M @ cam.center
    if np.linalg.cond(A) < 1e8:
        return np.linalg.solve(A, b)
    return np.mean([cam.center + 3.0 * cam.R[2] for cam in rig], axis=0)


def warm_up(
    rig: CameraRig,
    skeleton: Skeleton,
    matching: MatchingConfig | None = None,
    triangulation: TriangulationConfig | None = None,
    fusion: FusionConfig | None = None,
) -> tuple[float, int]:
    """Run the reconstruction's kernels once on synthetic frames (see the module docstring).

    Args:
        rig: the calibrated cameras (at least 2).
        skeleton: the joints of the detections.
        matching, triangulation, fusion: the node's configuration (the kernels run are those it uses).

    Returns:
        Seconds spent (wall clock), and the number of frames in which the synthetic person was
        tracked (the filter's update ran): all but the first when every stage ran.
    """
    from capture.pipeline import FrameReconstructor  # the module that wires the kernels

    t0 = time.perf_counter()
    J = skeleton.n_joints
    rng = np.random.default_rng(0)
    centre = stage_point(rig)
    body = rng.uniform(-0.3, 0.3, size=(J, 3))  # any spread-out joints: the kernels' types matter, not the pose
    rec = FrameReconstructor(rig, skeleton, matching, triangulation, fusion)
    tracked = 0
    for f in range(_FRAMES):
        X = centre + body + np.array([0.01 * f, 0.0, 0.0])
        views: list[Detections2D | None] = []
        for cam in rig:
            if (cam.to_camera(X)[:, 2] <= 0.1).any():
                views.append(None)
                continue
            uv = cam.project(X)
            poses = np.concatenate([uv, np.full((J, 1), 0.9)], axis=1)[None].astype(np.float32)
            lo, hi = uv.min(axis=0), uv.max(axis=0)
            boxes = np.array([[*lo, *hi, 0.9]], np.float32)
            views.append(Detections2D(cam.name, f, int(f / _FPS * 1e9), poses, boxes))
        tracked += f > 0 and len(rec.process(views, int(f / _FPS * 1e9)).track_ids) == 1
    return time.perf_counter() - t0, tracked
