"""Resection of one camera from the 3D people the other cameras triangulate.

:func:`resect_camera` poses a camera that the cross-view association could not place (a start too
far off, or none) from 3D people of unknown identity: RANSAC over person matches with PnP
(:mod:`calibration.people` uses it between rounds).

Convention: cameras as :mod:`calibration.camera`; detections (P, J, 3) [u_px, v_px, conf] in
distorted pixels; 3D people (Q, J, 4) [x, y, z, valid] in the world frame, metres.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from calibration.camera import Camera

__all__ = ["resect_camera"]


def resect_camera(
    cam: Camera,
    poses: Sequence[np.ndarray],
    people: Sequence[np.ndarray],
    min_conf: float = 0.3,
    inlier_px: float = 25.0,
) -> Camera | None:
    """Pose a camera from 3D people with unknown identities in its view (RANSAC over person matches).

    Each hypothesis matches one detection to one 3D person of one frame and solves their joints by
    PnP (SQPnP, Terzakis & Lourakis 2020; resection, Hartley & Zisserman §7.1); it scores the joints
    of all frames that reproject within ``inlier_px`` after a Hungarian match of detections to
    projected people per frame (RANSAC, Fischler & Bolles 1981). The best is refined on its inliers
    (Levenberg-Marquardt PnP). The start pose is not used: it bootstraps as well as it repairs.

    Args:
        cam: the camera (K, distortion and size are kept; its pose is replaced).
        poses: per frame, (P_k, J, 3) [u_px, v_px, conf] detections of this camera, distorted.
        people: per frame, (Q_k, J, 4) [x, y, z, valid] 3D people (world, metres) seen by the others.
        min_conf: 2D confidence below which a joint is not used.
        inlier_px: reprojection distance of an inlier joint, pixels.

    Returns:
        The re-posed camera, or None when no hypothesis gathers 3 frames' worth of inliers.
    """
    frames = [(np.asarray(p, np.float64), np.asarray(q, np.float64)) for p, q in zip(poses, people, strict=True)]
    frames = [(p, q) for p, q in frames if len(p) and len(q)]
    step = max(1, len(frames) // 12)
    best, best_score = None, 0
    for p, q in frames[::step]:
        for det in p:
            for person in q:
                ok = (det[:, 2] >= min_conf) & (person[:, 3] > 0)
                if ok.sum() < 6:
                    continue
                found, rvec, tvec = cv2.solvePnP(person[ok, :3], det[ok, :2], cam.K, cam.dist, flags=cv2.SOLVEPNP_SQPNP)
                if not found:
                    continue
                R = cv2.Rodrigues(rvec)[0]
                obj, img = _pnp_inliers(
                    Camera(cam.name, cam.K, cam.dist, R, tvec.ravel(), cam.size), frames, min_conf, inlier_px
                )
                if len(obj) > best_score:
                    best, best_score = (obj, img, rvec, tvec), len(obj)
    if best is None or best_score < 3 * 6:
        return None
    obj, img, rvec, tvec = best
    _, rvec, tvec = cv2.solvePnP(
        obj, img, cam.K, cam.dist, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
    )
    return Camera(cam.name, cam.K, cam.dist, cv2.Rodrigues(rvec)[0], tvec.ravel(), cam.size)


def _pnp_inliers(cam: Camera, frames: list, min_conf: float, inlier_px: float) -> tuple[np.ndarray, np.ndarray]:
    """3D-2D joint pairs reprojecting within ``inlier_px`` after matching detections to people per frame."""
    obj, img = [], []
    for p, q in frames:
        uv = cam.project(q[..., :3].reshape(-1, 3)).reshape(len(q), -1, 2)
        front = (cam.to_camera(q[..., :3].reshape(-1, 3))[:, 2] > 0).reshape(len(q), -1)
        ok = (p[:, None, :, 2] >= min_conf) & (q[None, :, :, 3] > 0) & front[None]
        d = np.where(ok, np.linalg.norm(p[:, None, :, :2] - uv[None], axis=-1), np.inf)  # (P, Q, J)
        cost = np.array(
            [
                [np.median(dd[k]) if k.sum() >= 3 else 1e6 for dd, k in zip(dr, kr, strict=True)]
                for dr, kr in zip(d, ok, strict=True)
            ]
        )
        for r, c in zip(*linear_sum_assignment(cost), strict=True):
            inl = d[r, c] < inlier_px
            obj.append(q[c, inl, :3])
            img.append(p[r, inl, :2])
    return np.concatenate([np.zeros((0, 3)), *obj]), np.concatenate([np.zeros((0, 2)), *img])
