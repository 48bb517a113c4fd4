"""Where each camera will see the tracked people: the boxes of the node's region-of-interest hints.

A box is the bounding box of a person's joints (conf > 0, in front of the camera) projected with
the camera's lens model, widened on each side by ``margin`` times its width and height, and by the
distance a person moving at ``speed_mps`` covers in the hint's lead time (``lead_frames`` frame
periods, the period measured from the frames' stamps), turned into pixels at the person's nearest
joint's depth (pinhole: ``f * d / z``); then clipped to the image. A box that misses the image is
left out. The node feeds them back to the workers' detectors (:mod:`capture.service.feedback`), as
in Bultmann & Behnke 2021, *Real-Time Multi-View 3D Human Pose Estimation using Semantic Feedback
to Smart Edge Sensors* (RSS), §III-D.

``full`` is set for every camera when nobody is tracked, when the published track set differs from
the previous frame's, or when the tracker holds a track that was not published this frame (a
tentative track: a person who may be entering; a lost one: a person the views missed), and for one
camera when that view had detections no published track claimed (``unclaimed`` counts, where the
reconstructor provides them).

Example:
    >>> import numpy as np
    >>> from calibration.camera import Camera
    >>> cam = Camera("c", np.diag([1000.0, 1000.0, 1.0]) + [[0, 0, 500], [0, 0, 400], [0, 0, 0]],
    ...              np.zeros(5), np.eye(3), np.array([0.0, 0.0, 4.0]), (1000, 800))
    >>> pose = np.zeros((1, 17, 4)); pose[0, :2] = [[-0.2, -0.4, 0, 1], [0.2, 0.4, 0, 1]]
    >>> boxes, which = roi_boxes(cam, pose, lead_s=0.0, margin=0.0)
    >>> boxes.round(1).tolist(), which.tolist()
    ([[450.0, 300.0, 550.0, 500.0]], [0])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np

from calibration.camera import Camera, CameraRig, distort_normalized
from capture import wire
from capture.wire import RoiHint
from core.types import Detections2D

__all__ = ["DEFAULT_LAG_FRAMES", "MARGIN", "SPEED_MPS", "RoiPlanner", "roi_boxes"]

MARGIN: Final = 0.15
"""Each box is widened on each side by this fraction of its width (and height)."""
SPEED_MPS: Final = 2.0
"""Speed limit of a person, metres/second: the motion allowance is this times the hint's lead time."""
DEFAULT_LAG_FRAMES: Final = 2
"""Frames between the node frame of a hint and the worker frame it serves, without ``roi_lag_frames``."""
MIN_DEPTH_M: Final = 0.1
"""Joints nearer to the camera plane than this (metres) are left out of its boxes."""
DEFAULT_PERIOD_S: Final = 1 / 30
"""Frame period assumed until two frames' stamps give one, seconds."""


def _lens(cameras: list[Camera]) -> tuple[np.ndarray, ...]:
    """Stacked R (C, 3, 3), t (C, 3), K (C, 3, 3), dist (C, 5) and size (C, 2) of cameras."""
    return tuple(np.stack([getattr(c, k) for c in cameras]).astype(np.float64) for k in ("R", "t", "K", "dist", "size"))


def _rig_boxes(
    lens: tuple[np.ndarray, ...], poses: np.ndarray, lead_s: float, margin: float, speed_mps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (C, P, 4) of every person in every camera and whether each exists (C, P); see :func:`roi_boxes`."""
    R, t, K, dist, size = lens
    C, (P, J) = len(R), poses.shape[:2]
    pc = np.einsum("cij,nj->cni", R, poses[..., :3].reshape(-1, 3)) + t[:, None]  # (C, N, 3)
    z = pc[..., 2]
    zs = np.where(np.abs(z) > 1e-12, z, 1e-12)
    x, y = pc[..., 0] / zs, pc[..., 1] / zs  # (C, N) normalised
    xd, yd, _, _ = distort_normalized(x, y, dist[:, None, :])  # the lens model of Camera.project
    k = K[:, None]
    uv = np.stack([k[..., 0, 0] * xd + k[..., 0, 1] * yd + k[..., 0, 2], k[..., 1, 1] * yd + k[..., 1, 2]], -1)
    pin = np.stack([k[..., 0, 0] * x + k[..., 0, 1] * y + k[..., 0, 2], k[..., 1, 1] * y + k[..., 1, 2]], -1)
    # Points far outside the field of view can fold back into the image under strong distortion:
    # only joints whose pinhole projection lies within one image size of the image take part.
    wh = size[:, None]  # (C, 1, 2)
    near = ((pin > -wh) & (pin < 2 * wh)).all(-1)
    ok = (poses[None, ..., 3] > 0) & (z > MIN_DEPTH_M).reshape(C, P, J) & near.reshape(C, P, J)
    ok &= np.isfinite(uv).all(-1).reshape(C, P, J)
    uv = uv.reshape(C, P, J, 2)
    has = ok.any(-1)  # (C, P)
    lo = np.where(ok[..., None], uv, np.inf).min(-2, initial=np.inf)  # (C, P, 2)
    hi = np.where(ok[..., None], uv, -np.inf).max(-2, initial=-np.inf)
    lo, hi = np.where(has[..., None], lo, 0.0), np.where(has[..., None], hi, 0.0)  # nobody visible: no box
    z_near = np.where(ok, z.reshape(C, P, J), np.inf).min(-1, initial=np.inf)  # (C, P)
    f = np.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None]  # (C, 1, 2)
    reach = speed_mps * lead_s * f / np.where(has, z_near, 1.0)[..., None]  # (C, P, 2) pixels
    pad = margin * (hi - lo) + reach
    lo, hi = np.clip(lo - pad, 0.0, wh), np.clip(hi + pad, 0.0, wh)
    boxes = np.concatenate([lo, hi], -1).astype(np.float32)
    # (float32 may merge the sides of a sub-pixel box)
    return boxes, has & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])


def _check(poses: np.ndarray, lead_s: float, margin: float, speed_mps: float) -> None:
    if poses.ndim != 3 or poses.shape[2] != 4:
        raise ValueError(f"poses must be (P, J, 4); got {poses.shape}")
    if not (lead_s >= 0 and margin >= 0 and speed_mps >= 0):
        raise ValueError(f"lead_s, margin and speed_mps must be >= 0; got {lead_s}, {margin}, {speed_mps}")


def roi_boxes(
    camera: Camera, poses: np.ndarray, lead_s: float, margin: float = MARGIN, speed_mps: float = SPEED_MPS
) -> tuple[np.ndarray, np.ndarray]:
    """Where each person will be in a camera's image: boxes around its projected joints.

    Args:
        camera: the camera (its lens model, ``size`` (width, height) pixels).
        poses: (P, J, 4) [x, y, z, conf] world metres; conf 0 = missing joint.
        lead_s: time until the frame the boxes serve, seconds (>= 0).
        margin: fraction of a box's width (height) added on each side.
        speed_mps: speed limit of a person, metres/second.

    Returns:
        boxes: (K, 4) float32 [x0, y0, x1, y1] calibration pixels, clipped to ``[0, width] x [0,
            height]``, x0 < x1 and y0 < y1; only people with a joint in front of the camera whose
            widened box meets the image.
        which: (K,) int64 the pose each box belongs to.

    Raises:
        ValueError: ``poses`` not (P, J, 4), or a negative ``lead_s``, ``margin`` or ``speed_mps``.
    """
    _check(poses, lead_s, margin, speed_mps)
    boxes, valid = _rig_boxes(_lens([camera]), poses, lead_s, margin, speed_mps)
    which = np.nonzero(valid[0])[0].astype(np.int64)
    return boxes[0, which], which


class RoiPlanner:
    """Turns each processed frame's published poses into one :class:`RoiHint` per camera (no sockets).

    Args:
        rig: the node's cameras, in processing order.
        lead_frames: frame periods between the hint's frame and the frame it serves (with
            ``roi_lag_frames`` = 2: 3, one frame of slack).
        margin: see :func:`roi_boxes`.
        speed_mps: see :func:`roi_boxes`.

    Attributes:
        frames: frames planned; full_hints: hints with ``full`` set; boxes: boxes sent.
    """

    def __init__(self, rig: CameraRig, lead_frames: int = DEFAULT_LAG_FRAMES + 1, margin: float = MARGIN,
                 speed_mps: float = SPEED_MPS) -> None:  # fmt: skip
        if lead_frames < 0:
            raise ValueError(f"lead_frames must be >= 0; got {lead_frames}")
        self.rig = rig
        self._lens = _lens(list(rig))
        self.lead_frames = lead_frames
        self.margin = margin
        self.speed_mps = speed_mps
        self.period_s = DEFAULT_PERIOD_S
        self._prev: tuple[int, int] | None = None  # (frame_idx, stamp_ns) of the last frame
        self._prev_ids: frozenset[int] | None = None
        self.frames = self.full_hints = self.boxes = 0

    def _update_period(self, frame_idx: int, stamp_ns: int) -> None:
        if self._prev is not None and frame_idx > self._prev[0] and stamp_ns > self._prev[1]:
            period = (stamp_ns - self._prev[1]) * 1e-9 / (frame_idx - self._prev[0])
            self.period_s = min(max(period, 1 / 1000), 1.0)
        self._prev = (frame_idx, stamp_ns)

    def plan(
        self,
        frame_idx: int,
        stamp_ns: int,
        track_ids: np.ndarray,
        poses: np.ndarray,
        live_ids: np.ndarray | None = None,
        unclaimed: np.ndarray | None = None,
        views: Mapping[str, Detections2D | None] | None = None,
    ) -> list[RoiHint]:
        """The hints of one processed frame, one per camera of the rig (in its order).

        Args:
            frame_idx: the node frame's index.
            stamp_ns: its time, nanoseconds.
            track_ids: (P,) int64 ids of the published poses.
            poses: (P, J, 4) published poses [x, y, z, conf], world metres.
            live_ids: (T,) ids of every track the tracker holds (tentative and lost ones included);
                None: unknown (then only the published set decides).
            unclaimed: (C,) per view, detections no published pose's group holds; None: unknown.
            views: per camera name, its detections in this frame (None or absent: missing). A
                camera's hint carries its own view's ``frame_idx`` and ``stamp_ns`` (they differ from
                the frame's when the node groups views by time); without a view, the frame's.

        Returns:
            One :class:`RoiHint` per camera; K may be 0.
        """
        self._update_period(frame_idx, stamp_ns)
        ids = frozenset(int(i) for i in track_ids)
        changed = ids != self._prev_ids
        self._prev_ids = ids
        hidden = live_ids is not None and bool(set(int(i) for i in live_ids) - ids)
        full_all = not ids or changed or hidden
        lead_s = self.lead_frames * self.period_s
        _check(poses, lead_s, self.margin, self.speed_mps)
        all_boxes, valid = _rig_boxes(self._lens, poses, lead_s, self.margin, self.speed_mps)
        hints = []
        for c, cam in enumerate(self.rig):
            which = np.nonzero(valid[c])[0]
            boxes = all_boxes[c, which]
            full = full_all or (unclaimed is not None and bool(unclaimed[c] > 0)) or len(boxes) > wire.MAX_ROIS
            view = None if views is None else views.get(cam.name)
            f_idx, f_ns = (frame_idx, stamp_ns) if view is None else (view.frame_idx, view.stamp_ns)
            hints.append(
                RoiHint(cam.name, f_idx, f_ns, boxes[: wire.MAX_ROIS], track_ids[which][: wire.MAX_ROIS], full)
            )
            self.full_hints += full
            self.boxes += min(len(boxes), wire.MAX_ROIS)
        self.frames += 1
        return hints
