"""RGB-D lifting: an RGB-D camera's 2D joints to 3D world points with per-joint covariance.

A camera may deliver a depth image registered to its colour image: uint16 millimetres, 0 where the
sensor has no reading (a hole), on the colour image's pixel grid or on a grid of the same field of
view at another resolution. Its worker lifts each 2D keypoint:

1. Robust depth sample (:func:`sample_depth`): the readings of a ``window_px`` square around the
   keypoint, holes and readings outside ``[min_depth_m, max_depth_m]`` excluded; each reading's
   support is the number of readings within ``edge_tol_m + 3 sigma_z`` of it; the *foreground
   surface* is the nearest reading supported by at least ``min_valid_frac`` of the window, and the
   sample is the median of the readings on that surface. Background behind a limb and the flying
   pixels of silhouettes (mixtures of foreground and background depth, Lachat et al. 2015) are far
   from that surface and rejected; a keypoint whose window holds too little of one surface is
   not lifted. A sample farther than ``max_body_depth_m`` from its person's median sample (the
   wall behind an ear on the head's silhouette) is taken again on the window's surface nearest
   that median, and the keypoint is not lifted if that one is still too far.
2. Back-projection (Hartley & Zisserman 2004, §6.1): the undistorted pixel's ray ``r = K^-1 [u,
   v, 1]`` (z component 1), so ``X_cam = z r``; the joint centre lies ``joint_offset_m`` behind the
   visible surface along the ray (Shotton et al. 2011, *Real-time human pose recognition in parts
   from single depth images*, push surface modes back by a learned 0.039 m); then ``X_world =
   R^T (X_cam - t)``.
3. Covariance, to first order (Hartley & Zisserman §5.2.1, forward propagation): the pixel's noise
   ``sigma_px = pixel_noise_px / conf`` (the 2D measurement model of :mod:`fusion.live`) moves the
   point laterally, ``J_uv = z K^-1[:, :2]``; the depth noise moves it along the ray, ``J_z = r``,
   with ``sigma_z = a z^2`` (structured light and ToF: the axial error grows with the square of
   the distance, Khoshelham & Elberink 2012, *Accuracy and resolution of Kinect depth data for
   indoor mapping applications*, Sensors 12(2), eq. 10; OpenPTrack weighs its detections by a
   variance growing with distance, Munaro & Menegatti 2014); the offset's spread adds
   ``joint_offset_std_m`` along the ray. ``cov_cam = sigma_px^2 J_uv J_uv^T + sigma_z^2 r r^T +
   joint_offset_std_m^2 e e^T`` (``e = r / |r|``), ``cov_world = R^T cov_cam R``.

Convention: a depth reading is the z coordinate of the camera frame (OpenCV axes), not the range
along the ray, as Kinect, RealSense and Azure Kinect deliver it. Depth arrives in millimetres and
becomes metres here only. A self-occluded joint takes the depth of its occluder: the tracker's 3D
gate (:mod:`fusion.live`) rejects it where other views disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from calibration.camera import Camera
from core.config import RGBDConfig
from core.errors import ShapeError
from core.numeric import masked_median
from core.types import RGBDDetections

__all__ = ["MM_PER_M", "LiftedJoints", "RGBDDetections", "depth_noise_std", "lift_joints", "sample_depth"]

MM_PER_M: Final = 1000.0
"""Depth images hold millimetres."""


@dataclass(frozen=True, slots=True)
class LiftedJoints:
    """Joints lifted to 3D by :func:`lift_joints`.

    Attributes:
        joints: (P, J, 4) [x, y, z, conf] world frame, metres; conf is the 2D confidence where the
            joint was lifted, 0 elsewhere (coordinates 0).
        cov: (P, J, 3, 3) covariances, world frame, metres^2; 0 where conf is 0.
        depth_m: (P, J) the depth samples, metres (0 where none).
    """

    joints: np.ndarray
    cov: np.ndarray
    depth_m: np.ndarray


def depth_noise_std(z_m: np.ndarray, a_per_m: float) -> np.ndarray:
    """Axial standard deviation of a depth reading, ``a z^2`` (Khoshelham & Elberink 2012, eq. 10).

    Args:
        z_m: (...) depths, metres.
        a_per_m: noise coefficient, 1/metres.

    Returns:
        (...) standard deviations, metres.

    Example:
        >>> depth_noise_std(np.array([1.0, 5.0]), 0.0016).round(4).tolist()
        [0.0016, 0.04]
    """
    return a_per_m * np.asarray(z_m, dtype=np.float64) ** 2


def sample_depth(
    depth_mm: np.ndarray, uv_px: np.ndarray, cfg: RGBDConfig, near_m: np.ndarray | None = None
) -> np.ndarray:
    """Robust depth of the foreground surface around each pixel (see the module docstring, step 1).

    Args:
        depth_mm: (H, W) uint16 depth image, millimetres, 0 = no reading.
        uv_px: (N, 2) pixel positions in the depth image's grid (pixel (0, 0) is the centre of the
            top-left pixel); non-finite rows give 0.
        cfg: ``window_px``, ``edge_tol_m``, ``min_valid_frac``, ``min_depth_m``, ``max_depth_m``,
            ``depth_noise_a_per_m``.
        near_m: (N,) optional depths, metres: where given (> 0), the surface chosen is the
            well-supported one nearest this depth instead of the nearest to the camera.

    Returns:
        (N,) depths, metres; 0 where the window holds too little of one surface (holes, edges,
        outside the image).

    Raises:
        ShapeError: ``depth_mm`` is not a 2D uint16 array, or ``uv_px`` is not (N, 2).

    Example:
        >>> d = np.full((20, 20), 2000, np.uint16)
        >>> d[:, :10] = 3000  # background on the left half; the keypoint sits on the edge
        >>> sample_depth(d, np.array([[10.0, 10.0], [9.0, 10.0]]), RGBDConfig()).tolist()
        [2.0, 2.0]
    """
    if depth_mm.ndim != 2 or depth_mm.dtype != np.uint16:
        raise ShapeError(f"depth image must be (H, W) uint16 millimetres; got {depth_mm.shape} {depth_mm.dtype}")
    uv = np.asarray(uv_px, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ShapeError(f"uv_px must be (N, 2); got {uv.shape}")
    H, W = depth_mm.shape
    r = cfg.window_px // 2
    dv, du = (a.reshape(-1) for a in np.mgrid[-r : r + 1, -r : r + 1])  # (K,) offsets, K = window_px^2
    finite = np.isfinite(uv).all(axis=1)
    centre = np.rint(np.where(finite[:, None], uv, -1e6)).clip(-1e6, 1e6).astype(np.int64)  # (N, 2)
    uu, vv = centre[:, :1] + du, centre[:, 1:] + dv  # (N, K)
    inside = (uu >= 0) & (uu < W) & (vv >= 0) & (vv < H)
    d = np.where(inside, depth_mm[vv.clip(0, H - 1), uu.clip(0, W - 1)], 0).astype(np.float64) / MM_PER_M
    valid = inside & (d > 0) & (d >= cfg.min_depth_m) & (d <= cfg.max_depth_m)
    tol = cfg.edge_tol_m + 3.0 * depth_noise_std(d, cfg.depth_noise_a_per_m)  # (N, K)
    close = (np.abs(d[:, :, None] - d[:, None, :]) <= tol[:, :, None]) & valid[:, :, None] & valid[:, None, :]
    support = close.sum(axis=2)  # (N, K)
    need = max(1, int(np.ceil(cfg.min_valid_frac * du.size)))
    candidate = valid & (support >= need)
    key = d  # the well-supported reading nearest the camera, or nearest ``near_m``
    if near_m is not None:
        near = np.asarray(near_m, dtype=np.float64)[:, None]
        key = np.where(near > 0, np.abs(d - near), d)
    fg = np.argmin(np.where(candidate, key, np.inf), axis=1)
    on_surface = close[np.arange(d.shape[0]), fg]  # (N, K)
    z = masked_median(d, on_surface)
    return np.where(candidate.any(axis=1) & finite, z, 0.0)


def _body_consistent(depth_mm: np.ndarray, uv_depth: np.ndarray, cfg: RGBDConfig, z: np.ndarray) -> np.ndarray:
    """(P, J) depths with each person's outliers (farther than ``max_body_depth_m`` from the person's
    median depth) sampled again on the surface nearest that median, and dropped (0) if still too far."""
    valid = z > 0
    med = np.where(valid.any(axis=1), masked_median(z, valid), 0.0)[:, None]  # (P, 1)
    far = valid & (np.abs(z - med) > cfg.max_body_depth_m)
    if not far.any():
        return z
    idx = np.nonzero(far.reshape(-1))[0]
    near = np.broadcast_to(med, z.shape).reshape(-1)[idx]
    again = sample_depth(depth_mm, uv_depth[idx], cfg, near)
    out = z.reshape(-1).copy()
    out[idx] = np.where(np.abs(again - near) <= cfg.max_body_depth_m, again, 0.0)
    return out.reshape(z.shape)


def lift_joints(
    camera: Camera, depth_mm: np.ndarray, poses: np.ndarray, cfg: RGBDConfig, pixel_noise_px: float
) -> LiftedJoints:
    """Lift one camera frame's 2D joints to 3D world points with their covariance.

    Args:
        camera: the RGB-D camera (its colour intrinsics, distortion and pose).
        depth_mm: (H, W) uint16 depth registered to the colour image, millimetres, 0 = no reading;
            its grid may be the colour grid scaled (same field of view).
        poses: (P, J, 3) [u, v, conf] 2D joints, distorted colour pixels; conf 0 = missing.
        cfg: the ``[rgbd]`` settings.
        pixel_noise_px: standard deviation of a 2D joint of confidence 1, pixels (``[fusion]
            pixel_noise_px``; confidence c gives ``pixel_noise_px / c``).

    Returns:
        :class:`LiftedJoints`.

    Raises:
        ShapeError: ``poses`` is not (P, J, 3), or the depth image is not (H, W) uint16.

    Example:
        >>> cam = Camera("d", np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), np.zeros(5),
        ...              np.eye(3), np.zeros(3), (640, 480))
        >>> depth = np.full((480, 640), 2000, np.uint16)
        >>> out = lift_joints(cam, depth, np.array([[[320.0, 240.0, 1.0]]]), RGBDConfig(joint_offset_m=0.0), 2.0)
        >>> out.joints[0, 0].round(3).tolist(), np.sqrt(np.diag(out.cov[0, 0])).round(4).tolist()
        ([0.0, 0.0, 2.0, 1.0], [0.008, 0.008, 0.0306])
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[2] != 3:
        raise ShapeError(f"poses must be (P, J, 3); got {poses.shape}")
    P, J = poses.shape[:2]
    uv, conf = poses[..., :2].reshape(-1, 2), poses[..., 2].reshape(-1)
    w, h = camera.size
    scale = np.array([depth_mm.shape[1] / w, depth_mm.shape[0] / h]) if depth_mm.ndim == 2 else np.ones(2)
    uv_depth = (uv + 0.5) * scale - 0.5  # pixel centres map onto pixel centres
    z = sample_depth(depth_mm, uv_depth, cfg)
    z = _body_consistent(depth_mm, uv_depth, cfg, np.where(conf > 0, z, 0.0).reshape(P, J)).reshape(-1)
    ok = (conf > 0) & (z > 0)
    K_inv = np.linalg.inv(camera.K)
    ray = np.concatenate([camera.undistort_px(uv), np.ones((uv.shape[0], 1))], axis=1) @ K_inv.T  # (N, 3), z = 1
    e = ray / np.linalg.norm(ray, axis=1, keepdims=True)
    X_cam = z[:, None] * ray + cfg.joint_offset_m * e
    X_w = (X_cam - camera.t) @ camera.R  # R^T (X_cam - t), row-wise
    sigma_px = pixel_noise_px / np.maximum(conf, 1e-6)
    A = K_inv[:, :2]  # (3, 2): d(ray)/d(u, v)
    sigma_z = depth_noise_std(z, cfg.depth_noise_a_per_m)
    cov_cam = (
        ((sigma_px * z) ** 2)[:, None, None] * (A @ A.T)
        + (sigma_z**2)[:, None, None] * ray[:, :, None] * ray[:, None, :]
        + cfg.joint_offset_std_m**2 * e[:, :, None] * e[:, None, :]
    )
    cov_w = camera.R.T @ cov_cam @ camera.R
    joints = np.concatenate([X_w, conf[:, None]], axis=1)
    joints[~ok] = 0.0
    cov_w[~ok] = 0.0
    return LiftedJoints(joints.reshape(P, J, 4), cov_w.reshape(P, J, 3, 3), np.where(ok, z, 0.0).reshape(P, J))
