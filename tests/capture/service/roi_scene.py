"""A small scene for the region-of-interest tests: pinhole cameras and box-shaped people."""

from __future__ import annotations

import numpy as np

from calibration.camera import Camera, CameraRig

F, W, H = 1000.0, 1000, 800


def pinhole(name: str = "c", dist=None, tx: float = 0.0) -> Camera:
    """A camera at x = -tx looking along world +z, principal point (500, 400), f = 1000 px."""
    K = np.array([[F, 0, 500.0], [0, F, 400.0], [0, 0, 1]])
    return Camera(name, K, np.zeros(5) if dist is None else dist, np.eye(3), np.array([tx, 0.0, 0.0]), (W, H))


def person(center, half=(0.2, 0.4, 0.0), n_joints: int = 17) -> np.ndarray:
    """(J, 4) joints: two at the corners center -/+ half, the others at the center (conf 1)."""
    pose = np.zeros((n_joints, 4))
    pose[:, :3], pose[:, 3] = center, 1.0
    pose[0, :3] = np.subtract(center, half)
    pose[1, :3] = np.add(center, half)
    return pose


def two_cameras() -> CameraRig:
    """cam01 = :func:`pinhole`, and cam02 the same 1 m to its right (world +x)."""
    return CameraRig((pinhole("cam01"), pinhole("cam02", tx=-1.0)))
