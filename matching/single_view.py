"""Single-view update: a track seen by one view only is corrected along that view's rays.

One view cannot triangulate, but it fixes two of a joint's three coordinates: the joint lies on
the camera ray through its detection. The track's predicted joints are moved onto those rays with
the depth kept from the prediction, as in the incremental cross-view tracking of Chen et al.,
"Cross-View Tracking for Multi-Human 3D Pose Estimation at over 100 FPS", CVPR 2020.
"""

from __future__ import annotations

import numpy as np

from calibration.camera import Camera

__all__ = ["single_view_pose"]


def single_view_pose(pred: np.ndarray, cam: Camera, uv: np.ndarray, conf: np.ndarray, min_conf: float) -> np.ndarray:
    """A track's predicted pose corrected by one view: each joint moves onto its camera ray.

    Only the two directions the view observes are corrected; the depth along the ray is kept
    from the prediction. Joints carry half their 2D confidence, marking them single-view.

    Args:
        pred: (J, 4) predicted pose [x, y, z, conf], metres, world frame.
        cam: the view's camera.
        uv: (J, 2) undistorted pixels of the track's detection in that view.
        conf: (J,) their confidences.
        min_conf: joints below this 2D confidence are not corrected.

    Returns:
        (J, 4) pose; joints unseen in the view (below ``min_conf``), unknown in the prediction or
        behind the camera have conf 0.
    """
    rays = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1) @ np.linalg.inv(cam.K).T @ cam.R  # (J, 3)
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    rel = pred[:, :3] - cam.center
    s = (rel * rays).sum(axis=1)
    ok = (pred[:, 3] > 0) & (conf >= min_conf) & (s > 0)
    out = np.zeros_like(pred)
    out[ok, :3] = cam.center + s[ok, None] * rays[ok]
    out[ok, 3] = 0.5 * conf[ok]
    return out
